// mse.cuh: the output layer's epilogue fused with the importance-weighted MSE loss and
// its gradient, and the per-instance loss reduction.
//
// Per instance, element (b, i) of the batch, with y the decoder GEMM's output:
//   y    += b_i                          (bias on)
//   out   = relu(y) or y                 (output_act)
//   loss  = (1 / (B n)) sum_{b,i} I_i (t_bi - out_bi)^2
//   dy    = (2 / (B n)) I_i (out - t) [y > 0 if output relu]
// with t the target: the batch x itself for the sparse task, |x| for the abs task (the
// caller passes the target buffer, which is x when they are the same).
// dy is formed as host/cpu_model.inc forms it (scale = tms_loss_scale(B, n),
// dy = (2 * scale * I_i) * (out - t)), so given the same y it is the CPU's dy bit for bit;
// the loss is summed in a different order (blocks here, feature by feature there).
// dy overwrites y in place: the backward needs only dy, h and x, and the ReLU mask is
// taken from y before it is overwritten.
//
// The loss is reduced in two deterministic stages: mse_kernel1 writes one float partial
// sum per block, (I, parts); loss_reduce_kernel1 adds an instance's partials in double
// and divides by B n (the CPU divides its double sum by B n too). The training graph runs
// only the first stage; the backend runs the second, outside the graph, after the step
// whose loss train() reports.
#pragma once

#include "cuda_common.cuh"
#include "tms_math.h"

#define MSE_BLOCK_SIZE 256

// Threads per block of mse_kernel1: 256, or fewer (whole warps) when an instance's batch
// has fewer elements, so tiny problems (n = 2, batch 4) do not start 256 threads per
// instance to use 8.
static inline int mse_block_size(long long per_instance) {
    const long long warps = CEIL_DIV(per_instance, 32LL);
    return warps * 32 < MSE_BLOCK_SIZE ? (int)(warps * 32) : MSE_BLOCK_SIZE;
}

// Partial sums per instance: one per block of mse_kernel1.
static inline int mse_loss_parts(long long per_instance) {
    return (int)CEIL_DIV(per_instance, (long long)mse_block_size(per_instance));
}

// ----------------------------------------------------------------------------
// kernels

// grid (mse_loss_parts(B n), instances in this chunk), block mse_block_size(B n)
__global__ void mse_kernel1(float *y_dy,              // (I, B, n) in: y = h Wd^T, out: dy
                            float *loss_partial,      // (I, gridDim.x)
                            const float *target,      // (I, B, n) x, or |x| for the abs task
                            const float *bias,        // (I, n) or NULL
                            const float *importance,  // (I, n)
                            int inst0, int batch, int n, int output_relu, float two_scale) {
    const int inst = inst0 + blockIdx.y;
    const long long per_instance = (long long)batch * n;
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    float sq = 0.0f;
    if (e < per_instance) {
        const int i = (int)(e % n);
        const size_t idx = (size_t)inst * per_instance + e;
        float y = y_dy[idx];
        if (bias) y += bias[(size_t)inst * n + i];
        const float out = TMS_RELU_IF(output_relu, y);
        const float tv = target[idx];
        const float imp = importance[(size_t)inst * n + i];
        const float d = tv - out;
        sq = imp * d * d;
        y_dy[idx] = TMS_MSE_GRAD(two_scale * imp, out, tv, y, output_relu);
    }
    const float block_sum = blockReduceSum(sq);
    if (threadIdx.x == 0) loss_partial[(size_t)inst * gridDim.x + blockIdx.x] = block_sum;
}

// grid (I), block a multiple of 32: loss (I) = sum of the instance's partials / (B n), or
// NaN for an instance that was frozen by divergence before this batch's step (frozen: the
// divergence flags as they were before the step; one that diverges at this step itself
// reports this step's loss, as on the CPU)
__global__ void loss_reduce_kernel1(float *loss,                // (I)
                                    const float *loss_partial,  // (I, parts)
                                    const long long *frozen,    // (I) nonzero: frozen before the step
                                    int parts, double per_instance) {
    const float *p = loss_partial + (size_t)blockIdx.x * parts;
    double sum = 0.0;
    for (int j = threadIdx.x; j < parts; j += blockDim.x) sum += (double)p[j];
    sum = blockReduceSumD(sum);
    if (threadIdx.x == 0)
        loss[blockIdx.x] = frozen && frozen[blockIdx.x] != 0 ? NAN : (float)(sum / per_instance);
}

// ----------------------------------------------------------------------------
// launchers

// y_dy: y in, dy out; loss_partial (instances, mse_loss_parts(batch * n)); target (instances,
// batch, n) what the output should be.
static inline int mse_forward_backward(float *y_dy, float *loss_partial, const float *target,
                                       const float *bias, const float *importance, int instances,
                                       int batch, int n, int output_relu, cudaStream_t stream) {
    const int parts = mse_loss_parts((long long)batch * n);
    const int block_size = mse_block_size((long long)batch * n);
    // the CPU's scale: host/cpu_backend.c, instance_pass()
    const float scale = tms_loss_scale(batch, n);
    const float two_scale = 2.0f * scale;
    for (int inst0 = 0; inst0 < instances; inst0 += TMS_MAX_GRID_Y) {
        const int chunk = instances - inst0 < TMS_MAX_GRID_Y ? instances - inst0 : TMS_MAX_GRID_Y;
        mse_kernel1<<<dim3(parts, chunk), block_size, 0, stream>>>(
            y_dy, loss_partial, target, bias, importance, inst0, batch, n, output_relu, two_scale);
        cudaCheck(cudaGetLastError());
    }
    return 0;
}

// loss (instances) of the batch whose partials mse_kernel1 wrote, NaN for the instances
// frozen before its step (frozen, (instances): nonzero for those; NULL: none).
static inline int loss_reduce(float *loss, const float *loss_partial, const long long *frozen,
                              int instances, int batch, int n, cudaStream_t stream) {
    const int parts = mse_loss_parts((long long)batch * n);
    const int block_size = parts < 256 ? (int)CEIL_DIV(parts, 32) * 32 : 256;
    loss_reduce_kernel1<<<instances, block_size, 0, stream>>>(loss, loss_partial, frozen, parts,
                                                              (double)batch * (double)n);
    cudaCheck(cudaGetLastError());
    return 0;
}
