// sample.cuh: draws one step's sparse input batch for every instance with cuRAND's
// device API (Philox4x32-10), bit-identical to the CPU backend (host/philox_data.c).
//
// The scheme (tms_math.h): element e = row * n + i of instance k's batch at step t uses
// the uniform that curand_init(key_k, t, e) + curand_uniform would return, which is
// lane e % 4 of Philox block e / 4 of subsequence t. Thread q of an instance calls
// curand_init(key, t, 4 q) and curand_uniform4 once: the offset is a multiple of 4,
// so the state's lane index is 0 and the four floats are exactly lanes 0..3 of block q.
// curand_uniform computes u32 * 2^-32 + 2^-33; the product is exact, so the FMA the
// device uses and the two roundings of the CPU agree (see tms_uniform_from_u32).
// x = tms_sparse_value(u, density) is the shared formula (an IEEE division on both).
//
// The step t is read from device memory (the backend's step counter), not passed by
// value, because this kernel is replayed from a CUDA graph whose arguments are frozen.
#pragma once

#include <curand_kernel.h>
#include "cuda_common.cuh"
#include "tms_math.h"

// ----------------------------------------------------------------------------
// kernels

// grid (CEIL_DIV(CEIL_DIV(per_instance, 4), blockDim.x), instances in this chunk)
__global__ void sample_kernel1(float *x,                        // (I, per_instance)
                               const unsigned long long *keys,  // (I) Philox keys
                               const float *density,            // (I)
                               const long long *step,           // (1) the step: subsequence
                               int inst0, long long per_instance) {
    const int inst = inst0 + blockIdx.y;
    const long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long e = 4 * q;
    if (e >= per_instance) return;
    curandStatePhilox4_32_10_t state;
    curand_init(keys[inst], (unsigned long long)*step, (unsigned long long)e, &state);
    const float4 u = curand_uniform4(&state);
    const float p = density[inst];
    float *xi = x + (size_t)inst * per_instance;
    if (per_instance % 4 == 0) {
        // every instance's slice starts 16-byte aligned (cudaMalloc base, 4 | per_instance)
        float4 v = make_float4(tms_sparse_value(u.x, p), tms_sparse_value(u.y, p),
                               tms_sparse_value(u.z, p), tms_sparse_value(u.w, p));
        *reinterpret_cast<float4 *>(xi + e) = v;
    } else {
        xi[e] = tms_sparse_value(u.x, p);
        if (e + 1 < per_instance) xi[e + 1] = tms_sparse_value(u.y, p);
        if (e + 2 < per_instance) xi[e + 2] = tms_sparse_value(u.z, p);
        if (e + 3 < per_instance) xi[e + 3] = tms_sparse_value(u.w, p);
    }
}

// ----------------------------------------------------------------------------
// launcher

// x (instances, batch * n) for the step in *step.
static inline int sample(float *x, const unsigned long long *keys, const float *density,
                         const long long *step, int instances, long long per_instance,
                         cudaStream_t stream) {
    const int block_size = 256;
    const long long quads = CEIL_DIV(per_instance, 4LL);
    const unsigned grid_x = (unsigned)CEIL_DIV(quads, (long long)block_size);
    for (int inst0 = 0; inst0 < instances; inst0 += TMS_MAX_GRID_Y) {
        const int chunk = instances - inst0 < TMS_MAX_GRID_Y ? instances - inst0 : TMS_MAX_GRID_Y;
        sample_kernel1<<<dim3(grid_x, chunk), block_size, 0, stream>>>(x, keys, density, step, inst0,
                                                                       per_instance);
        cudaCheck(cudaGetLastError());
    }
    return 0;
}
