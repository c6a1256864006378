// npy.c: the .npy format, version 1.0 (numpy/lib/format.py describes it):
//   "\x93NUMPY" 0x01 0x00, a little-endian uint16 header length, then an ASCII dict
//   {'descr': '<f4', 'fortran_order': False, 'shape': (a, b), } padded with spaces and
//   ended by '\n' so that the data starts at a multiple of 64 bytes, then the data.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fileio.h"
#include "npy.h"

// The complete header (magic through '\n') for a shape; returns its length.
static size_t npy_header(char *out, size_t outlen, const char *descr, const long *shape, int ndim) {
    char dict[512], dims[400] = "";
    size_t used = 0;
    for (int d = 0; d < ndim; d++)
        used += (size_t)snprintf(dims + used, sizeof(dims) - used, "%ld%s", shape[d], (ndim == 1 || d < ndim - 1) ? "," : "");
    int dl = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    size_t total = 10 + (size_t)dl + 1;
    size_t padded = (total + 63) / 64 * 64;
    if (padded > outlen) return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)(padded - 10);
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, (size_t)dl);
    memset(out + 10 + dl, ' ', padded - 10 - (size_t)dl - 1);
    out[padded - 1] = '\n';
    return padded;
}

static size_t element_count(const long *shape, int ndim) {
    size_t count = 1;
    for (int d = 0; d < ndim; d++) count *= (size_t)shape[d];
    return count;
}

static int npy_write(const char *path, const char *descr, const void *data, size_t elsize, const long *shape,
                     int ndim, char *err, size_t errlen) {
    char header[640];
    size_t hl = ndim <= 8 ? npy_header(header, sizeof(header), descr, shape, ndim) : 0;
    if (!hl) { snprintf(err, errlen, "%s: unsupported array shape", path); return -1; }
    size_t count = element_count(shape, ndim);
    tms_atomic_t a;
    if (tms_atomic_open(&a, path, err, errlen)) return -1;
    // x86-64 and aarch64 are little-endian, as '<f4' and '<i8' say
    if (fwrite(header, 1, hl, a.fp) != hl || (count && fwrite(data, elsize, count, a.fp) != count)) {
        snprintf(err, errlen, "cannot write %s", a.tmp);
        tms_atomic_abort(&a);
        return -1;
    }
    return tms_atomic_commit(&a, err, errlen);
}

static int npy_read(const char *path, const char *descr, void *data, size_t elsize, const long *shape, int ndim,
                    char *err, size_t errlen) {
    char expect[640], got[640];
    size_t hl = npy_header(expect, sizeof(expect), descr, shape, ndim);
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, errlen, "cannot open %s", path); return -1; }
    size_t count = element_count(shape, ndim);
    int ok = hl && fread(got, 1, hl, fp) == hl && memcmp(got, expect, hl) == 0;
    if (!ok) {
        fclose(fp);
        snprintf(err, errlen, "%s: not a %s array of the expected shape (written by another program, or the run's spec changed?)",
                 path, descr);
        return -1;
    }
    ok = fread(data, elsize, count, fp) == count && fgetc(fp) == EOF;
    fclose(fp);
    if (!ok) { snprintf(err, errlen, "%s: truncated or has trailing data", path); return -1; }
    return 0;
}

int tms_npy_write(const char *path, const float *data, const long *shape, int ndim, char *err, size_t errlen) {
    return npy_write(path, "<f4", data, sizeof(float), shape, ndim, err, errlen);
}

int tms_npy_read(const char *path, float *data, const long *shape, int ndim, char *err, size_t errlen) {
    return npy_read(path, "<f4", data, sizeof(float), shape, ndim, err, errlen);
}

int tms_npy_write_i64(const char *path, const int64_t *data, const long *shape, int ndim, char *err, size_t errlen) {
    return npy_write(path, "<i8", data, sizeof(int64_t), shape, ndim, err, errlen);
}

int tms_npy_read_i64(const char *path, int64_t *data, const long *shape, int ndim, char *err, size_t errlen) {
    return npy_read(path, "<i8", data, sizeof(int64_t), shape, ndim, err, errlen);
}
