// npy.c: the .npy format (numpy/lib/format.py and NEP 1 describe it):
//   "\x93NUMPY", a version byte pair (1.0: a little-endian uint16 header length; 2.0 and
//   3.0: uint32), then a Python dict literal
//   {'descr': '<f4', 'fortran_order': False, 'shape': (a, b), } padded with spaces and
//   ended by '\n' so that the data starts at a multiple of 64 bytes, then the data.
// tms writes version 1.0 and reads any version numpy writes for a plain array, parsing
// the dict (a fixed little grammar, below) rather than comparing its text.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fileio.h"
#include "npy.h"

static const char *const npy_descr[] = {"<f4", "<i8"};
static const char *const npy_type_name[] = {"float32", "int64"};
static const size_t npy_elsize[] = {4, 8};
enum { NPY_MAX_HEADER = 65536 }; // numpy's own headers are a few hundred bytes

// The complete header (magic through '\n') for a shape; returns its length.
static size_t npy_header(char *out, size_t outlen, const char *descr, const long *shape, int ndim) {
    char dict[512], dims[400] = "";
    size_t used = 0;
    for (int d = 0; d < ndim && used < sizeof(dims); d++)
        used += (size_t)snprintf(dims + used, sizeof(dims) - used, "%ld%s", shape[d], (ndim == 1 || d < ndim - 1) ? "," : "");
    if (used >= sizeof(dims)) return 0;
    int dl = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    if (dl < 0 || (size_t)dl >= sizeof(dict)) return 0;
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

// The number of bytes of an array of this shape, or 0 with *overflow set when it does not fit.
static size_t data_bytes(const long *shape, int ndim, size_t elsize, int *overflow) {
    size_t bytes = elsize;
    *overflow = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || __builtin_mul_overflow(bytes, (size_t)shape[d], &bytes)) { *overflow = 1; return 0; }
    }
    return bytes;
}

static void shape_text(char *out, size_t outlen, const long *shape, int ndim) {
    size_t used = (size_t)snprintf(out, outlen, "(");
    for (int d = 0; d < ndim && used < outlen; d++)
        used += (size_t)snprintf(out + used, outlen - used, "%ld%s", shape[d], d < ndim - 1 ? ", " : ndim == 1 ? "," : "");
    if (used < outlen) snprintf(out + used, outlen - used, ")");
}

// ----------------------------------------------------------------------------
// the header dict: '{' (key ':' value ',')* [key ':' value] '}' with optional whitespace,
// keys and strings in single or double quotes, no escapes

typedef struct {
    const char *p, *end;
    char *err;
    size_t errlen;
} cursor_t;

static void skip_space(cursor_t *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int expect_char(cursor_t *c, char ch, const char *where) {
    skip_space(c);
    if (c->p >= c->end || *c->p != ch) {
        snprintf(c->err, c->errlen, "header: expected '%c' %s", ch, where);
        return -1;
    }
    c->p++;
    return 0;
}

static int parse_string(cursor_t *c, char *out, size_t outlen) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) {
        snprintf(c->err, c->errlen, "header: expected a quoted string");
        return -1;
    }
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\' || ch < 0x20 || ch > 0x7e || n + 1 >= outlen) {
            snprintf(c->err, c->errlen, "header: a string with an escape, a control character or more than %zu characters", outlen - 1);
            return -1;
        }
        out[n++] = (char)ch;
        c->p++;
    }
    if (c->p >= c->end) { snprintf(c->err, c->errlen, "header: unterminated string"); return -1; }
    c->p++;
    out[n] = 0;
    return 0;
}

static int parse_bool(cursor_t *c, int *value) {
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) { *value = 1; c->p += 4; return 0; }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) { *value = 0; c->p += 5; return 0; }
    snprintf(c->err, c->errlen, "header: fortran_order must be True or False");
    return -1;
}

// '(' ')' | '(' int ',' ')' | '(' int (',' int)+ [','] ')'
static int parse_shape(cursor_t *c, long *shape, int *ndim) {
    if (expect_char(c, '(', "to open the shape")) return -1;
    *ndim = 0;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == ')') { c->p++; break; }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            snprintf(c->err, c->errlen, "header: the shape holds a non-integer");
            return -1;
        }
        long v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (long)1 << 50) {
                snprintf(c->err, c->errlen, "header: a dimension of the shape is absurdly large");
                return -1;
            }
            v = v * 10 + (*c->p++ - '0');
        }
        if (*ndim >= TMS_NPY_MAX_DIMS) {
            snprintf(c->err, c->errlen, "header: more than %d dimensions", TMS_NPY_MAX_DIMS);
            return -1;
        }
        shape[(*ndim)++] = v;
        skip_space(c);
        if (c->p < c->end && *c->p == ',') { c->p++; continue; }
        if (c->p < c->end && *c->p == ')') {
            if (*ndim == 1) {
                snprintf(c->err, c->errlen, "header: a 1-tuple shape needs its comma, as in (5,)");
                return -1;
            }
            c->p++;
            break;
        }
        snprintf(c->err, c->errlen, "header: expected ',' or ')' in the shape");
        return -1;
    }
    return 0;
}

int tms_npy_parse_header(const char *text, size_t len, tms_npy_header_t *h, char *err, size_t errlen) {
    cursor_t c = {text, text + len, err, errlen};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    memset(h, 0, sizeof(*h));
    if (expect_char(&c, '{', "at the start")) return -1;
    for (;;) {
        skip_space(&c);
        if (c.p < c.end && *c.p == '}') { c.p++; break; }
        char key[32];
        if (parse_string(&c, key, sizeof(key)) || expect_char(&c, ':', "after a key")) return -1;
        int rc, *seen;
        if (strcmp(key, "descr") == 0) { seen = &seen_descr; rc = parse_string(&c, h->descr, sizeof(h->descr)); }
        else if (strcmp(key, "fortran_order") == 0) { seen = &seen_order; rc = parse_bool(&c, &h->fortran_order); }
        else if (strcmp(key, "shape") == 0) { seen = &seen_shape; rc = parse_shape(&c, h->shape, &h->ndim); }
        else { snprintf(err, errlen, "header: unknown key '%s'", key); return -1; }
        if (rc) return -1;
        if ((*seen)++) { snprintf(err, errlen, "header: key '%s' twice", key); return -1; }
        skip_space(&c);
        if (c.p < c.end && *c.p == ',') { c.p++; continue; }
        if (expect_char(&c, '}', "or ',' after a value")) return -1;
        break;
    }
    skip_space(&c);
    if (c.p != c.end) { snprintf(err, errlen, "header: unexpected text after the dict"); return -1; }
    if (!seen_descr || !seen_order || !seen_shape) {
        snprintf(err, errlen, "header: missing key '%s'", !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------

int tms_npy_save(const char *path, tms_npy_dtype_t dtype, const void *data, const long *shape, int ndim,
                 char sha256[65], char *err, size_t errlen) {
    char header[640];
    int overflow;
    size_t hl = ndim >= 0 && ndim <= TMS_NPY_MAX_DIMS ? npy_header(header, sizeof(header), npy_descr[dtype], shape, ndim) : 0;
    size_t bytes = data_bytes(shape, ndim, npy_elsize[dtype], &overflow);
    if (!hl || overflow) { snprintf(err, errlen, "%s: unsupported array shape", path); return -1; }
    if (sha256) tms_sha256_hex(data, bytes, sha256);
    tms_atomic_t a;
    if (tms_atomic_open(&a, path, err, errlen)) return -1;
    // x86-64 and aarch64 are little-endian, as '<f4' and '<i8' say
    if (fwrite(header, 1, hl, a.fp) != hl || (bytes && fwrite(data, 1, bytes, a.fp) != bytes)) {
        snprintf(err, errlen, "cannot write %s: %s", a.tmp, strerror(errno));
        tms_atomic_abort(&a);
        return -1;
    }
    return tms_atomic_commit(&a, err, errlen);
}

int tms_npy_load(const char *path, tms_npy_dtype_t dtype, void *data, const long *shape, int ndim,
                 const char *sha256, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT || errno == ENOTDIR ? -2 : -1;
    }
    int rc = -2;
    char *htext = NULL, msg[256], have[200], want[200];
    unsigned char pre[12];
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
        goto out;
    }
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        snprintf(err, errlen, "%s is not a .npy file", path);
        goto out;
    }
    size_t hlen, offset;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        offset = 10;
    } else if ((pre[6] == 2 || pre[6] == 3) && fread(pre + 10, 1, 2, fp) == 2) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        offset = 12;
    } else {
        snprintf(err, errlen, "%s: .npy format version %d.%d (tms reads 1.0, 2.0 and 3.0)", path, pre[6], pre[7]);
        goto out;
    }
    if (hlen > NPY_MAX_HEADER || (size_t)st.st_size < offset + hlen) {
        snprintf(err, errlen, "%s: a header of %zu bytes in a file of %lld bytes (damaged)", path, hlen, (long long)st.st_size);
        goto out;
    }
    htext = malloc(hlen ? hlen : 1);
    if (!htext) { snprintf(err, errlen, "out of memory reading %s", path); rc = -1; goto out; }
    if (fread(htext, 1, hlen, fp) != hlen) { snprintf(err, errlen, "%s: truncated header", path); goto out; }
    tms_npy_header_t h;
    if (tms_npy_parse_header(htext, hlen, &h, msg, sizeof(msg))) {
        snprintf(err, errlen, "%s: %s", path, msg);
        goto out;
    }
    if (strcmp(h.descr, npy_descr[dtype]) != 0) {
        const char *why = h.descr[0] == '>' ? " (big-endian; save it with a.astype('<...'))" : "";
        snprintf(err, errlen, "%s: dtype '%s'%s where tms expects '%s' (%s)", path, h.descr, why, npy_descr[dtype],
                 npy_type_name[dtype]);
        goto out;
    }
    if (h.fortran_order) {
        snprintf(err, errlen, "%s: fortran_order True; tms reads C-order arrays (save np.ascontiguousarray(a))", path);
        goto out;
    }
    int same = h.ndim == ndim;
    for (int d = 0; d < ndim && same; d++) same = h.shape[d] == shape[d];
    if (!same) {
        shape_text(have, sizeof(have), h.shape, h.ndim);
        shape_text(want, sizeof(want), shape, ndim);
        snprintf(err, errlen, "%s: shape %s where the run's spec gives %s", path, have, want);
        goto out;
    }
    int overflow;
    size_t bytes = data_bytes(shape, ndim, npy_elsize[dtype], &overflow);
    if (overflow || (size_t)st.st_size != offset + hlen + bytes) {
        snprintf(err, errlen, "%s: %lld bytes where its header says %zu (%s)", path, (long long)st.st_size, offset + hlen + bytes,
                 (size_t)st.st_size < offset + hlen + bytes ? "truncated" : "trailing data");
        goto out;
    }
    if (bytes && fread(data, 1, bytes, fp) != bytes) {
        snprintf(err, errlen, "cannot read %s: %s", path, ferror(fp) ? strerror(errno) : "truncated while reading");
        rc = ferror(fp) ? -1 : -2;
        goto out;
    }
    if (sha256) {
        char got[65];
        tms_sha256_hex(data, bytes, got);
        if (strcmp(got, sha256) != 0) {
            snprintf(err, errlen, "%s: the data's SHA-256 is %.12s..., the recorded checksum %.12s...: the file is damaged or was edited",
                     path, got, sha256);
            goto out;
        }
    }
    rc = 0;
out:
    free(htext);
    fclose(fp);
    return rc;
}

int tms_npy_write(const char *path, const float *data, const long *shape, int ndim, char *err, size_t errlen) {
    return tms_npy_save(path, TMS_NPY_F32, data, shape, ndim, NULL, err, errlen);
}

int tms_npy_read(const char *path, float *data, const long *shape, int ndim, char *err, size_t errlen) {
    return tms_npy_load(path, TMS_NPY_F32, data, shape, ndim, NULL, err, errlen) ? -1 : 0;
}

int tms_npy_write_i64(const char *path, const int64_t *data, const long *shape, int ndim, char *err, size_t errlen) {
    return tms_npy_save(path, TMS_NPY_I64, data, shape, ndim, NULL, err, errlen);
}

int tms_npy_read_i64(const char *path, int64_t *data, const long *shape, int ndim, char *err, size_t errlen) {
    return tms_npy_load(path, TMS_NPY_I64, data, shape, ndim, NULL, err, errlen) ? -1 : 0;
}
