// fileio.h: checked file operations and atomic writes.
// Every file tms writes goes to "<path>.tmp" first and is renamed into place when
// complete, so a crash never leaves a truncated file under the final name.
#ifndef TMS_FILEIO_H
#define TMS_FILEIO_H
#include <stddef.h>
#include <stdio.h>

// Read a whole file (NUL-terminated). *len may be NULL. Returns 0, or -1 with a message.
int tms_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen);
// The same, refusing a file of more than max bytes without reading further: -2 then
// (the message says so), -1 for other failures.
int tms_read_file_max(const char *path, char **data, size_t *len, size_t max, char *err, size_t errlen);

// An open atomic write: fp writes "<path>.tmp"; tms_atomic_commit flushes, syncs,
// closes and renames it to path; tms_atomic_abort closes and removes it.
typedef struct {
    FILE *fp;
    char path[4096];
    char tmp[4096 + 8];
} tms_atomic_t;

int tms_atomic_open(tms_atomic_t *a, const char *path, char *err, size_t errlen);
int tms_atomic_commit(tms_atomic_t *a, char *err, size_t errlen);
void tms_atomic_abort(tms_atomic_t *a);

// Write a buffer to path atomically.
int tms_write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

// Make a directory (and its parents). Returns 0 when it exists afterwards.
int tms_mkdirs(const char *path, char *err, size_t errlen);
// Remove a directory tree (best effort). Returns 0 on success.
int tms_remove_tree(const char *path);
int tms_path_exists(const char *path);

// path = dir "/" name, checked for length.
int tms_join(char *out, size_t outlen, const char *dir, const char *name);

// SHA-256 of a buffer (OpenSSL's libcrypto) as 64 lowercase hex digits and a terminator.
void tms_sha256_hex(const void *data, size_t len, char hex[65]);

// An exclusive lock that dies with its process: flock() on the file `path`, created if
// missing, holding "pid N on HOST". tms_lock_acquire returns 0 (held), 1 when another
// process holds it (err names the holder), 2 when the file system does not support locks
// (not held; err says so), -1 on a system error (errno set, err says it).
// tms_lock_release unlinks the file while still holding the lock, then closes it; an
// acquirer that opened the file just before checks after flock() that the path still
// names the file it locked and otherwise tries again, so the unlink never lets two
// processes hold the lock. A file left by a SIGKILLed holder is unlocked and reused.
typedef struct {
    int fd;            // -1 when not held
    char path[4096];
} tms_lock_t;

int tms_lock_acquire(tms_lock_t *l, const char *path, char *err, size_t errlen);
void tms_lock_release(tms_lock_t *l);

#endif
