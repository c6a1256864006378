// adamw.cuh: one AdamW / Adam step for every parameter of every instance, in one launch.
//
// blockIdx.y picks the instance (as llm.c's adamw_kernel3 picks a slice); threads run over
// the instance's parameters as if its tensors were concatenated (W, W2, b1, b), and each
// element is mapped back to its place in the flat layout (tms.h: tensor after tensor,
// instance on each tensor's leading axis). Consecutive threads stay inside one tensor of
// one instance most of the time, so the accesses are coalesced.
//
// The update itself is tms_adam_update (tms_math.h), the formula the CPU backend uses.
// Per instance: lr and weight decay. Per step: the lr schedule factor and the bias
// corrections 1 - beta^t. This kernel is replayed from a CUDA graph, whose arguments are
// frozen at capture, so the per-step numbers are not arguments: the host fills a table of
// tms_step_device_t rows, a window of steps starting at *table_base, with
// tms_step_constants (host/layout.c, the CPU's own function, so both backends use the
// same rounded numbers), and the kernel reads the row of the step in the device step
// counter, table[*step - *table_base]. lr = (float)(instance lr * factor) is formed in
// double as on the CPU (host/cpu_backend.c).
// An instance frozen by divergence (diverged[inst] != 0, diverge.cuh, which runs just
// before in the same graph) is skipped: its parameters and moments stay as they are.
#pragma once

#include "cuda_common.cuh"
#include "tms.h"

// The per-step constants of tms_step_constants, one row per step.
typedef struct {
    double lr_factor;
    float bias1, bias2; // 1 - beta1^(t+1), 1 - beta2^(t+1)
} tms_step_device_t;

// The flat layout, as the kernel needs it (per_instance is 0 for absent tensors).
typedef struct {
    unsigned long long offset[TMS_NTENSORS];
    unsigned long long per_instance[TMS_NTENSORS];
} adamw_layout_t;

// The flat-layout index of element j of instance inst's parameters, counted as if its
// tensors were concatenated (W, W2, b1, b); j < the sum of layout.per_instance.
__device__ __forceinline__ size_t adamw_layout_element(const adamw_layout_t &layout, int inst, long long j) {
#pragma unroll
    for (int t = 0; t < TMS_NTENSORS; t++) {
        const long long count = (long long)layout.per_instance[t];
        if (j < count) return layout.offset[t] + (size_t)inst * count + j;
        j -= count;
    }
    return 0; // not reached for j in range
}

// ----------------------------------------------------------------------------
// kernels

// grid (CEIL_DIV(per_instance_total, blockDim.x), instances in this chunk)
__global__ void adamw_kernel1(float *params,                  // (L.total) flat layout
                              float *adam_m,                  // (L.total)
                              float *adam_v,                  // (L.total)
                              const float *grads,             // (L.total)
                              adamw_layout_t layout, long long per_instance_total,
                              const float *inst_lr,           // (I) peak lr
                              const float *inst_weight_decay, // (I)
                              const tms_step_device_t *table, // (rows) row r: step table_base + r
                              const long long *step,          // (1) the step being taken
                              const long long *table_base,    // (1) the step of table row 0
                              const long long *diverged,      // (I) nonzero: frozen
                              float beta1, float beta2, float eps, int kind, int inst0) {
    const int inst = inst0 + blockIdx.y;
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= per_instance_total || diverged[inst] != 0) return;
    const size_t e = adamw_layout_element(layout, inst, j);
    const tms_step_device_t c = table[*step - *table_base];
    tms_adam_step_t s;
    s.lr = (float)((double)inst_lr[inst] * c.lr_factor);
    s.beta1 = beta1;
    s.beta2 = beta2;
    s.eps = eps;
    s.weight_decay = inst_weight_decay[inst];
    s.bias1 = c.bias1;
    s.bias2 = c.bias2;
    s.kind = kind;
    tms_adam_update(&params[e], &adam_m[e], &adam_v[e], grads[e], &s);
}

// ----------------------------------------------------------------------------
// launcher

static inline int adamw_update(float *params, float *adam_m, float *adam_v, const float *grads,
                               const tms_layout_t *L, const float *inst_lr,
                               const float *inst_weight_decay, const tms_step_device_t *table,
                               const long long *step, const long long *table_base,
                               const long long *diverged, float beta1, float beta2, float eps, int kind,
                               cudaStream_t stream) {
    adamw_layout_t layout;
    long long per_instance_total = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        layout.offset[t] = L->offset[t];
        layout.per_instance[t] = L->present[t] ? L->per_instance[t] : 0;
        per_instance_total += (long long)layout.per_instance[t];
    }
    // tiny models (n = 5, m = 2: 15 parameters) get a block of just their parameters, not 256
    // threads (smaller than a warp: no reduction here, so any block size works)
    const long long block_size = per_instance_total < 256 ? per_instance_total : 256;
    const unsigned grid_x = (unsigned)CEIL_DIV(per_instance_total, block_size);
    for (int inst0 = 0; inst0 < L->instances; inst0 += TMS_MAX_GRID_Y) {
        const int chunk = L->instances - inst0 < TMS_MAX_GRID_Y ? L->instances - inst0 : TMS_MAX_GRID_Y;
        adamw_kernel1<<<dim3(grid_x, chunk), (unsigned)block_size, 0, stream>>>(
            params, adam_m, adam_v, grads, layout, per_instance_total, inst_lr, inst_weight_decay,
            table, step, table_base, diverged, beta1, beta2, eps, kind, inst0);
        cudaCheck(cudaGetLastError());
    }
    return 0;
}
