// geometry.c: feature norms, superposition, dimensionality and D* of one instance.
#include <math.h>
#include <stddef.h>
#include "geometry.h"

static double column_dot(const float *W, int m, int n, int i, int j) {
    double s = 0.0;
    for (int k = 0; k < m; k++) s += (double)W[(size_t)k * n + i] * (double)W[(size_t)k * n + j];
    return s;
}

void tms_feature_geometry(const float *W, int m, int n, float *norm, float *superposition,
                          float *dimensionality) {
    for (int i = 0; i < n; i++) {
        double sq = column_dot(W, m, n, i, i);
        double len = sqrt(sq);
        double interference = 0.0; // sum over j != i of (W^_i . W_j)^2
        if (len > 0.0) {
            for (int j = 0; j < n; j++) {
                if (j == i) continue;
                double d = column_dot(W, m, n, i, j) / len;
                interference += d * d;
            }
        }
        if (norm) norm[i] = (float)len;
        if (superposition) superposition[i] = (float)interference;
        // sum over all j of (W^_i . W_j)^2 = ||W_i||^2 + interference
        if (dimensionality) dimensionality[i] = len > 0.0 ? (float)(sq / (sq + interference)) : 0.0f;
    }
}

float tms_dims_per_feature(const float *W, int m, int n) {
    double fro = 0.0;
    for (size_t e = 0; e < (size_t)m * n; e++) fro += (double)W[e] * (double)W[e];
    return fro > 0.0 ? (float)(m / fro) : 0.0f;
}

void tms_gram(const float *W, int m, int n, float *gram) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) // n * n can pass 2^31: index in size_t
            gram[(size_t)i * n + j] = (float)column_dot(W, m, n, i, j);
}
