// cuda_path.h: which of the CUDA backend's two paths trains a run, and the size rule of
// the fused one (issue 12).
//
//   gemm  (kernels/cuda_backend.cu): every step is a captured graph of cuBLAS strided-batched
//         GEMMs and small kernels, activations in global memory. Any size.
//   fused (kernels/fused_train.cuh): one launch trains every instance for a whole chunk of
//         steps; a thread block owns an instance, keeps its parameters, Adam moments and
//         gradient in shared memory for the chunk and draws its batch on chip, a tile of
//         rows at a time. Only models whose block fits in shared memory (the size rule).
//
// `tms train --cuda-path auto|fused|gemm` asks for one (run.c); tms_cuda_path_select turns
// the request into the path that runs, and the manifest records it ("cuda_path").
//
// The size rule. The fused kernel's shared memory (floats), for a model with P parameters
// per instance and a tile of R rows (tms_fused_smem_layout, the one formula the host and
// the kernel both use):
//   4 P                     parameters, Adam m and v, the step's gradient
//   P * R / GROUP_ROWS      per-group partial sums of the gradient (fixed groups of rows)
//   R (2 n + 2 m)           the tile: x, h, dy, dz
//   R + n                   per-row losses, importance
// The tile R is the largest of 256, 128, 64, 32, 16 rows (no larger than the batch rounded
// up to 16) whose block fits in TMS_FUSED_SMEM_FLOATS_MAX floats (47 KiB, under the 48 KiB
// a block may use without opting in); a model that does not fit at R = 16 is too large for
// the fused path. The tile and the groups depend only on the model and the batch, never on
// the block size, so the result is the same at every launch configuration.
//
// `auto` picks the fused path only for models the measured rule (tms_fused_measured_rule,
// cuda_path.c) covers. Until a real GPU run has confirmed the fused path (results and
// speed), the rule covers nothing: auto is the gemm path.
#ifndef TMS_CUDA_PATH_H
#define TMS_CUDA_PATH_H

#include <stddef.h>
#include "tms.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TMS_CUDA_PATH_AUTO = 0, TMS_CUDA_PATH_GEMM = 1, TMS_CUDA_PATH_FUSED = 2 };

#define TMS_FUSED_GROUP_ROWS 16    // rows per partial sum of the gradient
#define TMS_FUSED_MAX_TILE_ROWS 256
#define TMS_FUSED_SMEM_FLOATS_MAX 12032 // 47 KiB: the largest shared-memory class of the kernel

// The shared-memory classes the kernel is instantiated for (floats): 6, 12, 24 and 47 KiB.
// A block uses the smallest that holds its layout, so small models keep more blocks
// resident per SM.
#define TMS_FUSED_SMEM_CLASS0 1536
#define TMS_FUSED_SMEM_CLASS1 3072
#define TMS_FUSED_SMEM_CLASS2 6144

// Offsets (floats) of the fused kernel's shared arrays; total is the size.
typedef struct {
    int params, adam_m, adam_v, grad; // (P) each
    int partial;                      // (P, R / TMS_FUSED_GROUP_ROWS)
    int x, dy;                        // (R, n) each
    int h, dz;                        // (R, m) each
    int row_loss;                     // (R)
    int importance;                   // (n)
    long total;
} tms_fused_smem_t;

static inline TMS_HD tms_fused_smem_t tms_fused_smem_layout(int n, int m, int params, int rows) {
    tms_fused_smem_t s;
    long at = 0;
    s.params = (int)at; at += params;
    s.adam_m = (int)at; at += params;
    s.adam_v = (int)at; at += params;
    s.grad = (int)at; at += params;
    s.partial = (int)at; at += (long)params * (rows / TMS_FUSED_GROUP_ROWS);
    s.x = (int)at; at += (long)rows * n;
    s.dy = (int)at; at += (long)rows * n;
    s.h = (int)at; at += (long)rows * m;
    s.dz = (int)at; at += (long)rows * m;
    s.row_loss = (int)at; at += rows;
    s.importance = (int)at; at += n;
    s.total = at;
    return s;
}

typedef struct {
    int tile_rows;   // R
    int params;      // P, parameters per instance
    int smem_floats; // the class the kernel is launched with (>= the layout's total)
    long need_floats; // the layout's total at R
} tms_fused_plan_t;

// The fused kernel's plan for this model and batch. Returns 0 when it fits; -1 when the
// model is too large for the fused path (plan->need_floats then says what R = 16 needs).
int tms_fused_plan(const tms_model_t *M, int batch, tms_fused_plan_t *plan);

// The measured rule `auto` follows (cuda_path.c). `confirmed` is 0 until a real GPU run has
// confirmed the fused path's results and speed; then auto picks fused for every model that
// fits and has at most max_params parameters per instance (the crossover the benchmark
// experiments/bench/bench_fused.sh measured against the gemm path).
typedef struct {
    int confirmed;
    long max_params;
} tms_fused_rule_t;
extern const tms_fused_rule_t tms_fused_measured_rule;

// "auto", "fused", "gemm" -> TMS_CUDA_PATH_*; -1 for anything else.
int tms_cuda_path_parse(const char *text);
const char *tms_cuda_path_name(int path);

// The path that trains a model on the CUDA backend, for a request (TMS_CUDA_PATH_*), under
// `rule` (NULL: tms_fused_measured_rule). Returns TMS_CUDA_PATH_GEMM or _FUSED; -1 when
// fused was asked for a model too large for it, with the reason (naming the limit) in why.
int tms_cuda_path_select(int requested, const tms_model_t *M, int batch, const tms_fused_rule_t *rule, char *why,
                         size_t whylen);

#ifdef TMS_HAVE_CUDA
// tms_cuda_backend_create with the path chosen: TMS_CUDA_PATH_GEMM (what
// tms_cuda_backend_create makes) or TMS_CUDA_PATH_FUSED (the model must fit: tms_fused_plan).
int tms_cuda_backend_create_path(tms_backend_t *be, const tms_problem_t *P, const tms_layout_t *L,
                                 const float *params, const float *adam_m, const float *adam_v, int allow_tf32,
                                 int path, char *err, size_t errlen);
#endif

#ifdef __cplusplus
}
#endif
#endif // TMS_CUDA_PATH_H
