// sample.cuh: draws one step's input batch (and, for the abs task, its target) for every
// instance with cuRAND's device API (Philox4x32-10), bit-identical to the CPU backend
// (host/philox_data.c).
//
// The scheme (tms_math.h): element e = row * n + i of instance k's batch at step t uses
// the uniform that curand_init(key_k, t, e) + curand_uniform would return, which is
// lane e % 4 of Philox block e / 4 of subsequence t. Thread q of an instance calls
// curand_init(key, t, 4 q) and curand_uniform4 once: the offset is a multiple of 4,
// so the state's lane index is 0 and the four floats are exactly lanes 0..3 of block q.
// curand_uniform computes u32 * 2^-32 + 2^-33; the product is exact, so the FMA the
// device uses and the two roundings of the CPU agree (see tms_uniform_from_u32).
// x = tms_independent_value(u, density, task) is the shared formula (an IEEE division on
// both). With feature sets (tms_math.h), element e = row * n + i also reads its set's
// uniform v, element row * G + i / k of subsequence t + TMS_SUBSEQ_SETS, computed with
// tms_set_uniform (the Philox block cuRAND's curand_init + curand_uniform would give, checked
// against cuRAND's header by test_curand_host), and x = tms_set_value(u, v, ...). For the
// abs task the kernel also writes the target |x| (tms_target_value).
//
// The step t is read from device memory (the backend's step counter), not passed by
// value, because this kernel is replayed from a CUDA graph whose arguments are frozen.
#pragma once

#include <curand_kernel.h>
#include "cuda_common.cuh"
#include "tms.h"
#include "tms_math.h"

// ----------------------------------------------------------------------------
// kernels

// grid (CEIL_DIV(CEIL_DIV(per_instance, 4), blockDim.x), instances in this chunk)
// Writes elements [elem0, elem0 + per_instance) of each instance's draw (elem0 a multiple
// of 4: 0 for a training batch, row0 * n for a chunk of the evaluation's rows).
__global__ void sample_kernel1(float *x,                        // (I, per_instance) = (I, B, n)
                               float *target,                   // (I, per_instance), or NULL: target is x
                               const unsigned long long *keys,  // (I) Philox keys
                               const float *density,            // (I)
                               const long long *step,           // (1) the step: subsequence
                               int inst0, long long per_instance, long long elem0, int n, int task,
                               int sets, int set_size) {
    const int inst = inst0 + blockIdx.y;
    const long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long e = 4 * q; // in the buffer; elem0 + e in the draw
    if (e >= per_instance) return;
    const unsigned long long key = keys[inst];
    const unsigned long long subsequence = (unsigned long long)*step;
    curandStatePhilox4_32_10_t state;
    curand_init(key, subsequence, (unsigned long long)(elem0 + e), &state);
    const float4 u4 = curand_uniform4(&state);
    const float u[4] = {u4.x, u4.y, u4.z, u4.w};
    const float p = density[inst];
    float v[4];
    if (sets == TMS_SETS_NONE) {
        for (int l = 0; l < 4; l++) v[l] = tms_independent_value(u[l], p, task);
    } else {
        const int sets_per_row = n / set_size;
        for (int l = 0; l < 4; l++) {
            const long long el = elem0 + (e + l < per_instance ? e + l : e); // past the end: not stored
            const long long row = el / n;
            const int i = (int)(el % n);
            const unsigned long long s = (unsigned long long)row * sets_per_row + i / set_size;
            const float vs = tms_set_uniform(key, subsequence, s);
            v[l] = tms_set_value(u[l], vs, p, task, sets, set_size, i % set_size);
        }
    }
    float *xi = x + (size_t)inst * per_instance;
    float *ti = target ? target + (size_t)inst * per_instance : NULL;
    if (per_instance % 4 == 0) {
        // every instance's slice starts 16-byte aligned (cudaMalloc base, 4 | per_instance)
        *reinterpret_cast<float4 *>(xi + e) = make_float4(v[0], v[1], v[2], v[3]);
        if (ti)
            *reinterpret_cast<float4 *>(ti + e) =
                make_float4(tms_target_value(v[0], task), tms_target_value(v[1], task),
                            tms_target_value(v[2], task), tms_target_value(v[3], task));
    } else {
        for (int l = 0; l < 4 && e + l < per_instance; l++) {
            xi[e + l] = v[l];
            if (ti) ti[e + l] = tms_target_value(v[l], task);
        }
    }
}

// ----------------------------------------------------------------------------
// launcher

// x (instances, per_instance) for the subsequence in *step (the step, or TMS_SUBSEQ_EVAL):
// elements [elem0, elem0 + per_instance) of each instance's draw, elem0 a multiple of 4
// (so every thread's four elements are one Philox block) and of n (whole rows); and
// target (same shape) when the data's target is not x (tms_data_has_target); target is
// NULL otherwise.
static inline int sample(float *x, float *target, const unsigned long long *keys, const float *density,
                         const long long *step, int instances, long long per_instance, long long elem0,
                         int n, const tms_data_t *data, cudaStream_t stream) {
    if (elem0 % 4 != 0 || elem0 % n != 0) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error),
                 "sample: element offset %lld is not a multiple of 4 and of n = %d", elem0, n);
        return -1;
    }
    const long long quads = CEIL_DIV(per_instance, 4LL);
    // 256 threads, or one per block of four for a small batch (no reduction: any block size)
    const int block_size = quads < 256 ? (int)quads : 256;
    const unsigned grid_x = (unsigned)CEIL_DIV(quads, (long long)block_size);
    for (int inst0 = 0; inst0 < instances; inst0 += TMS_MAX_GRID_Y) {
        const int chunk = instances - inst0 < TMS_MAX_GRID_Y ? instances - inst0 : TMS_MAX_GRID_Y;
        sample_kernel1<<<dim3(grid_x, chunk), block_size, 0, stream>>>(
            x, target, keys, density, step, inst0, per_instance, elem0, n, data->task, data->sets,
            data->set_size);
        cudaCheck(cudaGetLastError());
    }
    return 0;
}
