// cuda_backend.h: the CUDA backend's entry points beyond the backend interface in tms.h
// (tms_cuda_backend_available, tms_cuda_backend_create): memory sizing for the run
// driver, and the hooks the GPU tests (tests/gpu/) use to compare with the CPU backend.
//
// Debugging: with the environment variable TMS_CUDA_NAN_FILL=1 set when the backend is
// created, every buffer a kernel or GEMM writes is filled with NaN (bytes 0xFF) just
// before it is written, inside the captured step too, so an element a kernel fails to
// write shows up as a NaN (tms_cuda_backend_count_nonfinite) or poisons the parameters.
//
// All functions that take a backend require one made by tms_cuda_backend_create and
// return 0 on success; on failure they print the reason to stderr and return -1.
#ifndef TMS_CUDA_BACKEND_H
#define TMS_CUDA_BACKEND_H

#include <stddef.h>
#include "tms.h"

#ifdef __cplusplus
extern "C" {
#endif

// Device memory the backend needs for problem P: fixed bytes plus bytes per instance.
// tms_cuda_backend_create refuses a problem with fixed + instances * per_instance above
// the free device memory, and says how many instances would fit.
void tms_cuda_backend_bytes(const tms_problem_t *P, const tms_layout_t *L, size_t *fixed,
                            size_t *per_instance);

// The batch the backend draws at `step`: x (instances, batch, n), host memory.
int tms_cuda_backend_batch(tms_backend_t *be, long step, float *x);

// The gradient (flat layout, the CPU's tms_cpu_gradient) of every instance's loss on the
// batch of `step`, and the losses (instances), from the current parameters; the
// parameters and Adam moments are not changed. grads (L.total), loss (instances) or NULL.
int tms_cuda_backend_gradient(tms_backend_t *be, long step, float *grads, float *loss);

// Fill every work buffer the step writes (batch, activations, gradients, losses) with NaN.
int tms_cuda_backend_fill_nan(tms_backend_t *be);

// Count the non-finite values in every device buffer (work buffers, parameters, Adam
// moments); writes one "name nonfinite/total" entry per buffer into report (may be NULL).
// Returns the count, or -1 on error.
long tms_cuda_backend_count_nonfinite(tms_backend_t *be, char *report, size_t reportlen);

#ifdef __cplusplus
}
#endif
#endif // TMS_CUDA_BACKEND_H
