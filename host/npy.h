// npy.h: float32 and int64 arrays in numpy's .npy format, little-endian, C order.
// tms writes version 1.0; it reads versions 1.0, 2.0 and 3.0 with any header numpy
// writes for such an array (the header is parsed, not compared as text), so a file that
// numpy re-saved with the same dtype and shape loads.
//
// Checksums cover the array's data bytes only (the element values, little-endian, in C
// order: hashlib.sha256(np.load(f).tobytes()).hexdigest() in Python), not the header, so
// they survive numpy re-saving the same array and catch any change of a value.
#ifndef TMS_NPY_H
#define TMS_NPY_H
#include <stddef.h>
#include <stdint.h>

typedef enum { TMS_NPY_F32 = 0, TMS_NPY_I64 = 1 } tms_npy_dtype_t;

enum { TMS_NPY_MAX_DIMS = 8 };

// A parsed header dict: {'descr': ..., 'fortran_order': ..., 'shape': (...)}.
typedef struct {
    char descr[16];
    int fortran_order;
    int ndim;
    long shape[TMS_NPY_MAX_DIMS];
} tms_npy_header_t;

// Parse the header dict text (the bytes after the header length, `len` of them; trailing
// spaces and the newline are allowed). Exactly the keys descr, fortran_order and shape,
// each once; descr a string, fortran_order True or False, shape a tuple of at most 8
// non-negative integers. Returns 0, or -1 with what is wrong in err.
int tms_npy_parse_header(const char *text, size_t len, tms_npy_header_t *h, char *err, size_t errlen);

// Write data with the given shape (ndim <= 8) to path, atomically. sha256 (may be NULL)
// receives the checksum of the data bytes as 64 hex digits.
int tms_npy_save(const char *path, tms_npy_dtype_t dtype, const void *data, const long *shape, int ndim,
                 char sha256[65], char *err, size_t errlen);

// Read a C-order little-endian array whose dtype and shape must be exactly these into data
// (which holds the product of shape). With sha256 non-NULL the data bytes must have that
// checksum. The file's size is checked against the header before anything is read.
// Returns 0; -2 when the file is missing or its content is not what was expected (the
// message names the file and what is wrong); -1 on an I/O error.
int tms_npy_load(const char *path, tms_npy_dtype_t dtype, void *data, const long *shape, int ndim,
                 const char *sha256, char *err, size_t errlen);

// Shorthands without checksums.
int tms_npy_write(const char *path, const float *data, const long *shape, int ndim, char *err, size_t errlen);
int tms_npy_read(const char *path, float *data, const long *shape, int ndim, char *err, size_t errlen);
int tms_npy_write_i64(const char *path, const int64_t *data, const long *shape, int ndim, char *err, size_t errlen);
int tms_npy_read_i64(const char *path, int64_t *data, const long *shape, int ndim, char *err, size_t errlen);

#endif
