// epilogue.cuh: the hidden layer's bias and ReLU after the encoder GEMM, and the ReLU's
// backward after the dh GEMM. Both run in place on (I, B, m) buffers, flattened.
//
// Forward (hidden_act = relu):  h = relu(z + b1), b1 only when the model has biases.
//   The GEMM writes z into the h buffer and this kernel overwrites it with h; z itself is
//   not kept, because relu(z) > 0 exactly when z > 0, so h is the backward's mask.
//   relu is written `z < 0 ? 0 : z` as on the CPU (host/cpu_model.inc), not fmaxf, so a
//   NaN propagates the same way on both backends.
// Backward: dz = dh * [z > 0] = dh * [h > 0] (the CPU's `!(z > 0) ? 0 : dh`).
// With a linear hidden layer (hidden_act = none) there is no b1 and h = z: no kernel runs.
// The output layer's bias and ReLU are fused into the loss kernel (mse.cuh).
#pragma once

#include "cuda_common.cuh"
#include "tms_math.h"

// ----------------------------------------------------------------------------
// kernels

// 1-D grid over all I * B * m elements.
__global__ void bias_relu_forward_kernel1(float *h,          // (I, B, m) in: z, out: h
                                          const float *b1,   // (I, m) or NULL
                                          long long total, int batch, int m) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    float z = h[e];
    if (b1) {
        const long long inst = e / ((long long)batch * m);
        z += b1[inst * m + e % m];
    }
    h[e] = TMS_RELU_IF(1, z);
}

// 1-D grid over all I * B * m elements.
__global__ void relu_backward_kernel1(float *dh,        // (I, B, m) in: dh, out: dz
                                      const float *h,   // (I, B, m)
                                      long long total) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    if (!(h[e] > 0.0f)) dh[e] = 0.0f;
}

// ----------------------------------------------------------------------------
// launchers

static inline int bias_relu_forward(float *h, const float *b1, int instances, int batch, int m,
                                    cudaStream_t stream) {
    const int block_size = 256;
    const long long total = (long long)instances * batch * m;
    const unsigned grid = (unsigned)CEIL_DIV(total, (long long)block_size);
    bias_relu_forward_kernel1<<<grid, block_size, 0, stream>>>(h, b1, total, batch, m);
    cudaCheck(cudaGetLastError());
    return 0;
}

static inline int relu_backward(float *dh, const float *h, int instances, int batch, int m,
                                cudaStream_t stream) {
    const int block_size = 256;
    const long long total = (long long)instances * batch * m;
    const unsigned grid = (unsigned)CEIL_DIV(total, (long long)block_size);
    relu_backward_kernel1<<<grid, block_size, 0, stream>>>(dh, h, total);
    cudaCheck(cudaGetLastError());
    return 0;
}
