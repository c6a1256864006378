// cpu_backend.h: CPU helpers beyond the backend interface in tms.h.
#ifndef TMS_CPU_BACKEND_H
#define TMS_CPU_BACKEND_H
#include "tms.h"
#ifdef __cplusplus
extern "C" {
#endif

// Rows per tile the CPU uses for a batch.
int tms_cpu_tile_rows(const tms_model_t *M, int batch);

// Each instance's loss (mean over batch and features) on `samples` fresh samples drawn
// from the evaluation subsequence (TMS_SUBSEQ_EVAL), never used in training, and the
// standard error of that mean (the sample standard deviation of the per-sample loss over
// sqrt(samples)). loss, loss_se: (instances); loss_se may be NULL. Returns 0, or -1 when
// out of memory.
int tms_cpu_eval_loss(const tms_problem_t *P, const tms_layout_t *L, const float *params,
                      long samples, int threads, double *loss, double *loss_se);

// Bytes the CPU backend allocates for P with `threads` threads (parameters, gradients,
// Adam moments, per-thread scratch, divergence), checked against the memory available
// before anything is allocated.
size_t tms_cpu_backend_bytes(const tms_problem_t *P, const tms_layout_t *L, int threads);

// The gradient (flat layout, overwritten) of every instance's loss on step `step`'s
// batch, and the losses (instances); the reference the CUDA backend's gradients are
// checked against. Returns 0, or -1 when out of memory.
int tms_cpu_gradient(const tms_problem_t *P, const tms_layout_t *L, const float *params,
                     long step, float *grads, float *loss);

#ifdef __cplusplus
}
#endif
#endif
