// npy.h: float32 and int64 arrays in numpy's .npy format (version 1.0), little-endian, C order.
// numpy.load reads them directly; tms reads back only files of this exact form.
#ifndef TMS_NPY_H
#define TMS_NPY_H
#include <stddef.h>
#include <stdint.h>

// Write data with the given shape (ndim <= 8) to path, atomically.
int tms_npy_write(const char *path, const float *data, const long *shape, int ndim, char *err, size_t errlen);

// Read a float32 C-order array whose shape must equal `shape`. data must hold the product.
int tms_npy_read(const char *path, float *data, const long *shape, int ndim, char *err, size_t errlen);

// The same for int64 ('<i8') arrays.
int tms_npy_write_i64(const char *path, const int64_t *data, const long *shape, int ndim, char *err, size_t errlen);
int tms_npy_read_i64(const char *path, int64_t *data, const long *shape, int ndim, char *err, size_t errlen);

#endif
