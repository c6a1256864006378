// diverge.cuh: divergence detection, the CPU backend's rule (host/cpu_backend.c, cpu_train)
// on the GPU. An instance whose loss or gradient on a step's batch is not finite is frozen
// at that step: its parameters and Adam moments keep the values they had before the step
// (adamw.cuh skips a frozen instance), and diverged[inst] records 1 + the step, the
// tms_instance_t.diverged_step convention. The other instances are not affected: every
// per-instance slice is computed on its own.
//
// The check runs inside the captured step graph, after the gradients and before AdamW, so
// the step is read from the device counter (a graph's arguments are frozen), and the
// result stays in device memory (diverged, (I)) where the AdamW kernel of the same replay
// reads it. An instance frozen earlier (by this run, or before a resume: create() copies
// tms_instance_t.diverged_step) keeps its first step: the check never overwrites a nonzero
// entry.
//
// "The loss is not finite" is read from the loss kernel's per-block partial sums
// (mse.cuh): a sum of finite non-negative terms is finite unless a float partial sum
// overflows, as the CPU's float lane sums would; a NaN or an infinity anywhere in the
// batch reaches its block's partial.
#pragma once

#include "cuda_common.cuh"
#include "adamw.cuh"

// ----------------------------------------------------------------------------
// kernels

// grid (I), one block per instance, any block size
__global__ void diverge_check_kernel1(long long *diverged,         // (I) 0, or 1 + the step it diverged at
                                      const float *grads,          // (L.total) flat layout
                                      const float *loss_partial,   // (I, parts)
                                      adamw_layout_t layout, long long per_instance_total, int parts,
                                      const long long *step) {     // (1) the step being taken
    __shared__ int any_bad;
    const int inst = blockIdx.x;
    if (threadIdx.x == 0) any_bad = 0;
    __syncthreads();
    int bad = 0;
    for (long long j = threadIdx.x; j < per_instance_total; j += blockDim.x)
        if (!isfinite(grads[adamw_layout_element(layout, inst, j)])) bad = 1;
    for (int j = threadIdx.x; j < parts; j += blockDim.x)
        if (!isfinite(loss_partial[(size_t)inst * parts + j])) bad = 1;
    if (bad) atomicMax(&any_bad, 1); // an OR over the block, without a warp reduction's full warps
    __syncthreads();
    if (threadIdx.x == 0 && any_bad && diverged[inst] == 0) diverged[inst] = *step + 1;
}

// ----------------------------------------------------------------------------
// launcher

static inline int diverge_check(long long *diverged, const float *grads, const float *loss_partial,
                                const tms_layout_t *L, int parts, const long long *step,
                                cudaStream_t stream) {
    adamw_layout_t layout;
    long long per_instance_total = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        layout.offset[t] = L->offset[t];
        layout.per_instance[t] = L->present[t] ? L->per_instance[t] : 0;
        per_instance_total += (long long)layout.per_instance[t];
    }
    // a thread per element up to 256 (a tiny model's block is smaller than a warp: it takes a
    // warp's slot on the GPU all the same, and spares the emulator idle threads)
    const long long work = per_instance_total > parts ? per_instance_total : parts;
    const long long block_size = work < 256 ? work : 256;
    diverge_check_kernel1<<<L->instances, (unsigned)block_size, 0, stream>>>(
        diverged, grads, loss_partial, layout, per_instance_total, parts, step);
    cudaCheck(cudaGetLastError());
    return 0;
}
