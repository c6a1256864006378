// fileio.c: checked reads, atomic writes (temporary file + rename), directories.
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fileio.h"

int tms_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno)); return -1; }
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + used, 1, cap - used, fp);
        used += got;
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
