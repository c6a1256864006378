// fileio.c: checked reads, atomic writes (temporary file + rename), directories.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "fileio.h"

int tms_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    return tms_read_file_max(path, data, len, SIZE_MAX, err, errlen);
}

int tms_read_file_max(const char *path, char **data, size_t *len, size_t max, char *err, size_t errlen) {
    *data = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno)); return -1; }
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + used, 1, cap - used, fp);
        used += got;
        if (used > max) {
            snprintf(err, errlen, "cannot read %s: larger than %zu bytes (damaged?)", path, max);
            free(buf);
            fclose(fp);
            return -2;
        }
        if (got == 0 || used < cap) {
            if (ferror(fp)) break;
            if (feof(fp)) {
                fclose(fp);
                buf[used] = 0;
                *data = buf;
                if (len) *len = used;
                return 0;
            }
        }
        if (used == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
            cap *= 2;
        }
    }
    snprintf(err, errlen, "cannot read %s: %s", path, buf ? strerror(errno) : "out of memory");
    free(buf);
    fclose(fp);
    return -1;
}

int tms_atomic_open(tms_atomic_t *a, const char *path, char *err, size_t errlen) {
    a->fp = NULL;
    if (strlen(path) >= sizeof(a->path)) { snprintf(err, errlen, "path too long: %s", path); return -1; }
    snprintf(a->path, sizeof(a->path), "%s", path);
    snprintf(a->tmp, sizeof(a->tmp), "%s.tmp", path);
    a->fp = fopen(a->tmp, "wb");
    if (!a->fp) { snprintf(err, errlen, "cannot write %s: %s", a->tmp, strerror(errno)); return -1; }
    return 0;
}

int tms_atomic_commit(tms_atomic_t *a, char *err, size_t errlen) {
    int bad = ferror(a->fp) || fflush(a->fp) != 0 || fsync(fileno(a->fp)) != 0;
    int saved = errno;
    if (fclose(a->fp) != 0 && !bad) { bad = 1; saved = errno; }
    a->fp = NULL;
    if (bad) {
        snprintf(err, errlen, "cannot write %s: %s", a->tmp, strerror(saved));
        unlink(a->tmp);
        return -1;
    }
    if (rename(a->tmp, a->path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", a->tmp, a->path, strerror(errno));
        unlink(a->tmp);
        return -1;
    }
    return 0;
}

void tms_atomic_abort(tms_atomic_t *a) {
    if (a->fp) fclose(a->fp);
    a->fp = NULL;
    unlink(a->tmp);
}

int tms_write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    tms_atomic_t a;
    if (tms_atomic_open(&a, path, err, errlen)) return -1;
    if (len && fwrite(data, 1, len, a.fp) != len) {
        snprintf(err, errlen, "cannot write %s: %s", a.tmp, strerror(errno));
        tms_atomic_abort(&a);
        return -1;
    }
    return tms_atomic_commit(&a, err, errlen);
}

int tms_mkdirs(const char *path, char *err, size_t errlen) {
    char buf[4096];
    if (strlen(path) >= sizeof(buf)) { snprintf(err, errlen, "path too long: %s", path); return -1; }
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot create directory %s: a file of that name exists", buf);
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int tms_remove_tree(const char *path) {
    if (!tms_path_exists(path)) return 0;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int tms_path_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int tms_join(char *out, size_t outlen, const char *dir, const char *name) {
    int k = snprintf(out, outlen, "%s/%s", dir, name);
    return (k < 0 || (size_t)k >= outlen) ? -1 : 0;
}

void tms_sha256_hex(const void *data, size_t len, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char digits[] = "0123456789abcdef";
    // EVP_Digest fails only when libcrypto cannot allocate its context; an all-'x' digest
    // then matches no recorded checksum, so nothing is trusted by mistake
    if (!EVP_Digest(len ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        memset(hex, 'x', 64);
        hex[64] = 0;
        return;
    }
    for (unsigned int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
}

int tms_lock_acquire(tms_lock_t *l, const char *path, char *err, size_t errlen) {
    l->fd = -1;
    if (strlen(path) >= sizeof(l->path)) {
        snprintf(err, errlen, "path too long: %s", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(l->path, sizeof(l->path), "%s", path);
    for (int attempt = 0; attempt < 1000; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0) {
            snprintf(err, errlen, "cannot create the lock file %s: %s", path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int saved = errno;
            if (saved == ENOSYS || saved == ENOLCK || saved == EOPNOTSUPP || saved == EINVAL) {
                // a file system without locks (Lustre mounted without -o flock, NFS without a
                // lock manager): the caller decides whether to go on unguarded
                close(fd);
                unlink(path);
                snprintf(err, errlen, "the file system of %s does not support locks (flock: %s)", path, strerror(saved));
                errno = saved;
                return 2;
            }
            if (saved != EWOULDBLOCK) {
                close(fd);
                snprintf(err, errlen, "cannot lock %s: %s", path, strerror(saved));
                errno = saved;
                return -1;
            }
            char holder[128];
            ssize_t got = pread(fd, holder, sizeof(holder) - 1, 0);
            close(fd);
            holder[got > 0 ? got : 0] = 0;
            holder[strcspn(holder, "\n")] = 0;
            snprintf(err, errlen, "held by another tms process (%s; lock file %s)", holder[0] ? holder : "pid not yet written", path);
            return 1;
        }
        // the previous holder may have unlinked the file between our open() and flock():
        // the lock is ours only if the path still names the file we locked
        struct stat have, now;
        if (fstat(fd, &have) == 0 && stat(path, &now) == 0 && have.st_dev == now.st_dev && have.st_ino == now.st_ino) {
            char host[256] = "", text[400];
            if (gethostname(host, sizeof(host) - 1) != 0) snprintf(host, sizeof(host), "unknown host");
            host[sizeof(host) - 1] = 0;
            int len = snprintf(text, sizeof(text), "pid %ld on %s\n", (long)getpid(), host);
            // who holds the lock is for messages only; the lock is the flock itself
            if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) { /* message loses the pid */ }
            l->fd = fd;
            return 0;
        }
        close(fd);
    }
    snprintf(err, errlen, "cannot lock %s: it keeps being replaced", path);
    errno = EAGAIN;
    return -1;
}

void tms_lock_release(tms_lock_t *l) {
    if (l->fd < 0) return;
    unlink(l->path); // while still locked: see tms_lock_acquire
    close(l->fd);
    l->fd = -1;
}
