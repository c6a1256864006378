// sysmem.h: how much memory this process can still allocate, so a run too big for the
// machine (or for its Slurm cgroup, or for `ulimit -v`) is refused at once with the
// numbers, instead of being OOM-killed after minutes of training.
#ifndef TMS_SYSMEM_H
#define TMS_SYSMEM_H
#include <stddef.h>

// The least of: MemAvailable (/proc/meminfo); the cgroup's limit minus its usage (cgroup v2
// memory.max - memory.current, or v1 memory.limit_in_bytes - memory.usage_in_bytes, for the
// process's own cgroup); RLIMIT_AS minus the address space in use (VmSize). A source that
// cannot be read is skipped; SIZE_MAX when none can. *limit (may be NULL) names the one
// that binds: "MemAvailable", "the cgroup memory limit", "the address-space limit (ulimit -v)".
size_t tms_memory_available(const char **limit);

// "1.50 GiB", "12.0 MiB", "512 bytes"
void tms_format_bytes(char *out, size_t outlen, double bytes);

#endif
