// bias_grad.cuh: the bias gradients, column sums over the batch of a per-instance
// (B, cols) gradient: db = sum_b dy (I, n) and db1 = sum_b dz (I, m).
//
// A block owns 32 columns of one instance: threadIdx.x picks the column (a warp reads 32
// consecutive floats of a row), threadIdx.y strides over the rows, and the 8 partial sums
// of a column are added in shared memory in a fixed order, so the result is deterministic
// (no atomics). The output is overwritten, not accumulated.
#pragma once

#include "cuda_common.cuh"

#define BIAS_GRAD_COLS 32
#define BIAS_GRAD_ROWS 8

// ----------------------------------------------------------------------------
// kernels

// grid (CEIL_DIV(cols, 32), instances in this chunk), block (min(cols, 32), 8)
__global__ void bias_grad_kernel1(float *dbias,      // (I, cols)
                                  const float *d,    // (I, rows, cols)
                                  int inst0, int rows, int cols) {
    __shared__ float partial[BIAS_GRAD_ROWS][BIAS_GRAD_COLS + 1];
    const int inst = inst0 + blockIdx.y;
    const int col = blockIdx.x * BIAS_GRAD_COLS + threadIdx.x;
    const float *di = d + (size_t)inst * rows * cols;
    float sum = 0.0f;
    if (col < cols)
        for (int r = threadIdx.y; r < rows; r += BIAS_GRAD_ROWS) sum += di[(size_t)r * cols + col];
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        float total = 0.0f;
        for (int k = 0; k < BIAS_GRAD_ROWS; k++) total += partial[k][threadIdx.x];
        dbias[(size_t)inst * cols + col] = total;
    }
}

// ----------------------------------------------------------------------------
// launcher

static inline int bias_grad(float *dbias, const float *d, int instances, int rows, int cols,
                            cudaStream_t stream) {
    // fewer than 32 columns (n = 5, m = 2): one block of just those columns
    const dim3 block(cols < BIAS_GRAD_COLS ? cols : BIAS_GRAD_COLS, BIAS_GRAD_ROWS);
    const unsigned grid_x = CEIL_DIV(cols, BIAS_GRAD_COLS);
    for (int inst0 = 0; inst0 < instances; inst0 += TMS_MAX_GRID_Y) {
        const int chunk = instances - inst0 < TMS_MAX_GRID_Y ? instances - inst0 : TMS_MAX_GRID_Y;
        bias_grad_kernel1<<<dim3(grid_x, chunk), block, 0, stream>>>(dbias, d, inst0, rows, cols);
        cudaCheck(cudaGetLastError());
    }
    return 0;
}
