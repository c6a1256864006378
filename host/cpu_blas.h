// cpu_blas.h: the CPU model's products through a BLAS (OpenBLAS's CBLAS SGEMM), and
// sparse products that skip the zeros of x, for the models where they beat the
// cache-tiled loops of cpu_model.inc.
//
// Same tiles as cpu_model.inc (feature-major: x (n, rows), z, h, dh (m, rows), y, out,
// dy (n, rows)), same formulas (the derivation is at the top of cpu_model.inc), so
// tms_blas_forward / tms_blas_backward take the arguments tms_forward / tms_backward take.
// They differ from the loops in rounding only: SGEMM sums in its own order (and with FMA
// where the CPU has it), the same order on every call with the same shapes, and OpenBLAS
// runs on one thread here (tms_blas_init), so the result does not depend on the thread
// count; it may differ between CPUs for which OpenBLAS picks different kernels.
//
#ifndef TMS_CPU_BLAS_H
#define TMS_CPU_BLAS_H
#include "tms.h"
#ifdef __cplusplus
extern "C" {
#endif

// Rows per tile on the BLAS path: large enough that SGEMM runs near its peak, small
// enough that a batch splits into tiles the threads share when there are few instances.
#define TMS_BLAS_TILE 256

// The crossovers, measured with experiments/bench/cpu_crossover on a 2-core Intel Xeon
// (experiments/bench/README.md has the tables):
// - SGEMM beat the loops at every shape measured above n m = 10 (4x3, 6x2 and up: 1.2x to
//   12x for a forward + backward); at 5x2 and 3x2 the two were within the machine's noise
//   (0.2x to 2.2x from run to run), so the smallest models (n m <= 10: the notebook's 5 -> 2,
//   the pentagon) keep the loops and the results they always had.
#define TMS_BLAS_MIN_NM 11
// - The sparse products beat SGEMM only where x is very sparse and the model large: by 5%
//   to 26% at density <= 1% with m >= 30 (400x30, 100x40), 5% to 36% at density <= 3.5%
//   with n m >= 100,000 (1000x100, 2000x400); never at 20x5, even at density 0.2%.
double tms_sparse_max_density(const tms_model_t *M);

// OpenBLAS on one thread: tms runs its own threads (instances, or tiles of a batch) and
// calls SGEMM from inside them. Call once before any product; idempotent.
void tms_blas_init(void);

// 1 when M's products run on the BLAS path, 0 when on the loops of cpu_model.inc.
int tms_blas_path(const tms_model_t *M);

// The nonzeros of a tile's x, feature by feature: feature i's are at rows
// row[begin[i]] .. row[begin[i+1] - 1] (ascending). Scratch for the sparse products too.
typedef struct {
    int *begin;   // (n + 1)
    int *row;     // (n * tile)
    float *zs;    // (tile, m): z or dz sample-major
    float *acc;   // (m)
    int sparse;   // 1: the products with x skip its zeros (tms_sparse_tile decided)
} tms_sparse_x_t;

int tms_sparse_alloc(tms_sparse_x_t *s, int n, int m, int tile); // 0, or -1 out of memory
void tms_sparse_free(tms_sparse_x_t *s);
size_t tms_sparse_bytes(int n, int m, int tile);

// Index x's nonzeros into s when they are few enough for the sparse products to win
// (tms_sparse_max_density of M, counted in this tile's own x, so it depends only on the
// data), and set s->sparse accordingly.
void tms_sparse_tile(const tms_model_t *M, const float *x, int rows, tms_sparse_x_t *s);

// Index x's nonzeros into s (s->sparse = 1) if there are at most max_nonzeros of them;
// otherwise s->sparse = 0. tms_sparse_tile with the limit given by the caller (benchmarks, tests).
void tms_sparse_index(const float *x, int n, int rows, size_t max_nonzeros, tms_sparse_x_t *s);

// As tms_forward and tms_backward (tms.h), on the BLAS path. sx: x's nonzeros
// (tms_sparse_tile), or NULL for dense products.
double tms_blas_forward(const tms_model_t *M, const tms_view_t *p, const float *decT,
                        const float *importance, const float *x, const float *target, int rows,
                        float *z, float *h, float *y, float *out, tms_sparse_x_t *sx);
void tms_blas_backward(const tms_model_t *M, const tms_view_t *p, const float *decT,
                       const float *importance, const float *x, const float *target, int rows,
                       const float *z, const float *y, const float *h, const float *out,
                       float scale, float *dy, float *dh, tms_view_t *g, tms_sparse_x_t *sx);

#ifdef __cplusplus
}
#endif
#endif
