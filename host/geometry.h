// geometry.h: the measures of a trained instance's geometry (REFERENCE.md).
// All take one instance's W (m, n), row-major: column i is feature i's direction W_i.
#ifndef TMS_GEOMETRY_H
#define TMS_GEOMETRY_H

#ifdef __cplusplus
extern "C" {
#endif

// Per feature i:
//   norm[i]           = ||W_i||
//   superposition[i]  = sum_{j != i} (W^_i . W_j)^2,   W^_i = W_i / ||W_i||
//   dimensionality[i] = ||W_i||^2 / sum_j (W^_i . W_j)^2   (0 for a zero column)
// Any output pointer may be NULL.
void tms_feature_geometry(const float *W, int m, int n, float *norm, float *superposition,
                          float *dimensionality);

// Dimensions per feature D* = m / ||W||_F^2 (0 when W is zero).
float tms_dims_per_feature(const float *W, int m, int n);

// W^T W (n, n), row-major.
void tms_gram(const float *W, int m, int n, float *gram);

#ifdef __cplusplus
}
#endif
#endif
