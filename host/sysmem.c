// sysmem.c: the memory this process can still allocate (see sysmem.h).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "sysmem.h"

// The number after `key` in a "key: value kB" file such as /proc/meminfo, in bytes; -1 if absent.
static double kb_field(const char *path, const char *key) {
    FILE *fp = fopen(path, "r");
    if (!fp) return -1.0;
    char line[256];
    double v = -1.0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), fp))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtod(line + klen + 1, NULL) * 1024.0;
            break;
        }
    fclose(fp);
    return v;
}

// A file holding one number ("max" means no limit); -1 if absent or unlimited.
static double number_file(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) return -1.0;
    char buf[64] = "";
    int ok = fgets(buf, sizeof(buf), fp) != NULL;
    fclose(fp);
    if (!ok || strncmp(buf, "max", 3) == 0) return -1.0;
    char *end;
    double v = strtod(buf, &end);
    return end == buf ? -1.0 : v;
}

// The process's cgroup (v2: "0::/path"; v1: the memory controller's line) limit minus usage.
static double cgroup_room(void) {
    FILE *fp = fopen("/proc/self/cgroup", "r");
    if (!fp) return -1.0;
    char line[1024], v2[1024] = "", v1[1024] = "";
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "0::", 3) == 0) snprintf(v2, sizeof(v2), "%s", line + 3);
        char *ctl = strchr(line, ':');
        char *path = ctl ? strchr(ctl + 1, ':') : NULL;
        if (ctl && path && strncmp(ctl + 1, "memory:", 7) == 0) snprintf(v1, sizeof(v1), "%s", path + 1);
    }
    fclose(fp);
    double best = -1.0;
    char a[1200], b[1200];
    if (v2[0]) {
        // the limit of this cgroup and of every ancestor applies; walk up to the root
        char path[1024];
        snprintf(path, sizeof(path), "%s", v2);
        for (;;) {
            snprintf(a, sizeof(a), "/sys/fs/cgroup%s/memory.max", strcmp(path, "/") ? path : "");
            snprintf(b, sizeof(b), "/sys/fs/cgroup%s/memory.current", strcmp(path, "/") ? path : "");
            double max = number_file(a), cur = number_file(b);
            if (max >= 0.0) {
                double room = max - (cur > 0.0 ? cur : 0.0);
                if (room < 0.0) room = 0.0;
                if (best < 0.0 || room < best) best = room;
            }
            char *slash = strrchr(path, '/');
            if (!slash || slash == path) break;
            *slash = 0;
        }
    }
    if (v1[0]) {
        snprintf(a, sizeof(a), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", v1);
        snprintf(b, sizeof(b), "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", v1);
        double max = number_file(a), cur = number_file(b);
        if (max < 0.0) { // a container without a cgroup namespace: its own cgroup is the mount's root
            max = number_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
            cur = number_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
        }
        if (max >= 0.0 && max < 1e18) { // v1 reports "no limit" as a huge number
            double room = max - (cur > 0.0 ? cur : 0.0);
            if (room < 0.0) room = 0.0;
            if (best < 0.0 || room < best) best = room;
        }
    }
    return best;
}

size_t tms_memory_available(const char **limit) {
    double best = -1.0;
    const char *which = "nothing (no limit could be read)";
    double avail = kb_field("/proc/meminfo", "MemAvailable");
    if (avail >= 0.0) { best = avail; which = "MemAvailable"; }
    double cg = cgroup_room();
    if (cg >= 0.0 && (best < 0.0 || cg < best)) { best = cg; which = "the cgroup memory limit"; }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        double used = kb_field("/proc/self/status", "VmSize");
        double room = (double)rl.rlim_cur - (used > 0.0 ? used : 0.0);
        if (room < 0.0) room = 0.0;
        if (best < 0.0 || room < best) { best = room; which = "the address-space limit (ulimit -v)"; }
    }
    if (limit) *limit = which;
    if (best < 0.0 || best >= (double)SIZE_MAX) return SIZE_MAX;
    return (size_t)best;
}

void tms_format_bytes(char *out, size_t outlen, double bytes) {
    if (bytes >= 1024.0 * 1024 * 1024) snprintf(out, outlen, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024.0 * 1024) snprintf(out, outlen, "%.1f MiB", bytes / (1024.0 * 1024));
    else snprintf(out, outlen, "%.0f bytes", bytes);
}
