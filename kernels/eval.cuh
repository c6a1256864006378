// eval.cuh: the final evaluation's loss per sample and its running mean and spread, for
// every instance at once (the backend's evaluate(), cuda_backend.cu).
//
// The evaluation draws `samples` fresh rows from subsequence TMS_SUBSEQ_EVAL of each
// instance's key, the rows the CPU's tms_cpu_eval_loss draws (row r is elements r n ..
// r n + n - 1 of that subsequence, sample.cuh with an element offset), and runs them
// forward in chunks of rows so that memory stays bounded whatever `samples` is. After the
// decoder GEMM of a chunk (y = h Wd^T, (I, rows, n)):
//   eval_rows_kernel1     per sample r: S_r = sum_i I_i (t_ri - out_ri)^2, out = act(y + b)
//                         (the loss of sample r, mean over features, is S_r / n)
//   eval_merge_kernel1    per instance: the chunk's mean and sum of squared deviations of
//                         S_r (two passes, in double), merged into the running (mean, M2)
//                         of all rows so far (Chan, Golub and LeVeque's pairwise update)
// The host then has mean(S) / n (the loss, mean over samples and features) and
// sqrt(M2 / (samples - 1)) / sqrt(samples) / n (its standard error). Every sum runs in a
// fixed order (no atomics), so the result does not depend on the launch's schedule; it
// matches the CPU's to rounding (the CPU sums features per tile first), not bit for bit.
#pragma once

#include "cuda_common.cuh"
#include "tms_math.h"

// ----------------------------------------------------------------------------
// kernels

// grid (CEIL_DIV(rows, blockDim.x), instances in this chunk), one thread per sample
__global__ void eval_rows_kernel1(float *sample_sq,          // (I, rows) out: S_r
                                  const float *y,            // (I, rows, n) h Wd^T
                                  const float *target,       // (I, rows, n) x, or |x| for the abs task
                                  const float *bias,         // (I, n) or NULL
                                  const float *importance,   // (I, n)
                                  int inst0, int rows, int n, int output_relu) {
    const int inst = inst0 + blockIdx.y;
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const size_t row = ((size_t)inst * rows + r) * n;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        float v = y[row + i];
        if (bias) v += bias[(size_t)inst * n + i];
        const float out = TMS_RELU_IF(output_relu, v);
        const float d = target[row + i] - out;
        sum += importance[(size_t)inst * n + i] * d * d;
    }
    sample_sq[(size_t)inst * rows + r] = sum;
}

// grid (I), block a multiple of 32. stats (I, 2): running (mean, M2) of S over the
// `before` rows of earlier chunks; this chunk adds `rows` more.
__global__ void eval_merge_kernel1(double *stats,            // (I, 2) in/out: mean, M2
                                   const float *sample_sq,   // (I, rows)
                                   int rows, long long before) {
    __shared__ double chunk_mean;
    const float *s = sample_sq + (size_t)blockIdx.x * rows;
    double sum = 0.0;
    for (int r = threadIdx.x; r < rows; r += blockDim.x) sum += (double)s[r];
    sum = blockReduceSumD(sum);
    if (threadIdx.x == 0) chunk_mean = sum / rows;
    // after this barrier every thread sees chunk_mean, and warp 0 has read the reduction's
    // shared scratch, which the second reduction reuses
    __syncthreads();
    const double mean_b = chunk_mean;
    double sq = 0.0;
    for (int r = threadIdx.x; r < rows; r += blockDim.x) {
        const double d = (double)s[r] - mean_b;
        sq += d * d;
    }
    sq = blockReduceSumD(sq);
    if (threadIdx.x == 0) {
        double *st = stats + 2 * (size_t)blockIdx.x;
        if (before == 0) {
            st[0] = mean_b;
            st[1] = sq;
        } else {
            const double na = (double)before, nb = (double)rows, total = na + nb;
            const double delta = mean_b - st[0];
            st[0] += delta * nb / total;
            st[1] += sq + delta * delta * na * nb / total;
        }
    }
}

// ----------------------------------------------------------------------------
// launchers

static inline int eval_rows(float *sample_sq, const float *y, const float *target, const float *bias,
                            const float *importance, int instances, int rows, int n, int output_relu,
                            cudaStream_t stream) {
    const int block_size = rows < 256 ? rows : 256; // no reduction: any block size
    const unsigned grid_x = (unsigned)CEIL_DIV(rows, block_size);
    for (int inst0 = 0; inst0 < instances; inst0 += TMS_MAX_GRID_Y) {
        const int chunk = instances - inst0 < TMS_MAX_GRID_Y ? instances - inst0 : TMS_MAX_GRID_Y;
        eval_rows_kernel1<<<dim3(grid_x, chunk), block_size, 0, stream>>>(sample_sq, y, target, bias,
                                                                          importance, inst0, rows, n,
                                                                          output_relu);
        cudaCheck(cudaGetLastError());
    }
    return 0;
}

static inline int eval_merge(double *stats, const float *sample_sq, int instances, int rows, long long before,
                             cudaStream_t stream) {
    const int block_size = rows < 256 ? (int)CEIL_DIV(rows, 32) * 32 : 256;
    eval_merge_kernel1<<<instances, block_size, 0, stream>>>(stats, sample_sq, rows, before);
    cudaCheck(cudaGetLastError());
    return 0;
}
