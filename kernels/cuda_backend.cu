// cuda_backend.cu: the CUDA backend (issue 3). Trains every instance of a run at once on
// one GPU, from the same flat layout (tms.h) and the same formulas (tms_math.h) as the CPU
// backend, which is the reference it is tested against (tests/gpu/).
//
// One training step, all I instances at once, on one stream:
//   sample       x (I, B, n)          sample.cuh     cuRAND Philox, bit-identical to the CPU
//                (target |x|, abs task)
//   GEMM         z = x W^T -> h       cuBLAS strided-batched, batch = the instances
//   epilogue     h = relu(z + b1)     epilogue.cuh   (hidden relu only)
//   GEMM         y = h Wd^T           (Wd = W^T tied, W2 untied)
//   loss         dy, loss partials    mse.cuh        (adds b, output relu, fused gradient;
//                                                    against the target: x, or |x| for abs)
//   GEMM         dW2 = dy^T h         (untied)
//   reduction    db = sum_b dy        bias_grad.cuh  (bias)
//   GEMM         dh = dy Wd
//   epilogue     dz = dh [h > 0]      epilogue.cuh   (hidden relu)
//   reduction    db1 = sum_b dz       bias_grad.cuh  (hidden relu and bias)
//   GEMM         dW = dz^T x
//   GEMM         dW += h^T dy         (tied: the decoder's gradient dWd^T lands on W)
//   divergence   loss or gradient     diverge.cuh    not finite: the instance is frozen
//                not finite?                         (diverged[i] = step + 1)
//   optimiser    every parameter      adamw.cuh      one launch, blockIdx.y = instance;
//                                                    frozen instances are skipped
//   step += 1                         step_advance_kernel1
// Every gradient element is overwritten each step (beta = 0 GEMMs, bias kernels that
// store), so nothing is zeroed between steps.
//
// CUDA graph. The step above is captured once (at create) into a graph and train()
// replays it once per step; the host synchronises only at the end of train() (and once
// per TABLE_ROWS steps, below). A captured kernel's arguments are frozen, so nothing
// that changes per step may be an argument. Two things change:
//   - the step index t (the RNG subsequence of the batch, the row of the constants):
//     it lives in device memory (state->step). train() writes step_begin there before
//     the first replay, and the last node of the graph, step_advance_kernel1, adds 1,
//     so replay k sees step_begin + k. Graph replays on one stream run in order, so the
//     increment of one step is visible to the next.
//   - the lr schedule factor and Adam's bias corrections: the host computes them with
//     tms_step_constants (host/layout.c, the function the CPU backend calls, so both use
//     the same rounded numbers) for a window of up to TABLE_ROWS steps (table_rows:
//     TMS_CUDA_TABLE_ROWS overrides it for tests) into a device table, and
//     state->table_base says which step row 0 holds. The AdamW kernel reads
//     table[step - table_base]. Before refilling the table for the next window, train()
//     synchronises the stream, so no replay still in flight reads a row being replaced.
// Per-instance lr, weight decay, density, Philox key and importance never change: they
// are copied to the device at create. What divergence freezes is per-instance state in
// device memory too (diverged, (I)): the check kernel writes it and the AdamW kernel of
// the same replay reads it (diverge.cuh).
//
// Divergence: the CPU backend's rule. An instance whose loss or gradient is not finite at
// step t is frozen with the parameters and Adam moments it had before t; get_diverged()
// returns t + 1 for it (tms_instance_t.diverged_step), train() reports NaN as its loss for
// every later train() call, and an instance frozen before a resume (create() copies
// P->inst[i].diverged_step) stays frozen. The other instances are unaffected.
//
// Evaluation (evaluate()): each instance's loss on `samples` fresh rows of its evaluation
// subsequence (TMS_SUBSEQ_EVAL, the rows the CPU's tms_cpu_eval_loss draws, bit for bit)
// and its standard error, forward only, in chunks of eval_rows rows (buffers allocated at
// create, at most EVAL_BYTES unless the instances need more for 4 rows each;
// TMS_CUDA_EVAL_ROWS overrides it for tests). eval.cuh has the per-sample loss and the
// running mean and spread.
//
// The loss train() reports is that of the batch of step_begin, before its update: the
// graph's loss kernel writes per-block partial sums every step; after the first replay
// train() enqueues the reduction (loss_reduce, outside the graph) and a copy to pinned
// host memory, which run before the second replay overwrites the partials.
//
// Memory: the device memory needed (tms_cuda_backend_bytes) is computed before anything
// is allocated and compared with cudaMemGetInfo's free memory; a problem that does not
// fit fails at once, saying how many instances would. Per instance: parameters, gradients
// and two Adam moments (4 x the parameter count), x and y/dy (B n each; and the target,
// B n, for the abs task), h and dh (B m each), importance, loss partials and a few
// scalars, and the evaluation's buffers for 4 rows. Fixed: the constants table, the
// evaluation's chunk buffers (EVAL_BYTES), the cuBLAS workspace (set explicitly, so cuBLAS
// allocates nothing while the graph is captured) and headroom for allocation granularity.
//
// Precision: fp32 everywhere, cuBLAS in CUBLAS_DEFAULT_MATH (no TF32) unless allow_tf32,
// which selects CUBLAS_TF32_TENSOR_OP_MATH. The GEMMs sum in a different order than the
// CPU loops and nvcc contracts a*b+c into FMAs, so results agree with the CPU to rounding
// (about 1e-6 relative), not bit for bit; the batch is bit-identical.
#ifndef TMS_HAVE_CUDA
#define TMS_HAVE_CUDA // declare the CUDA entry points of tms.h, checked against these definitions
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tms.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "sample.cuh"
#include "epilogue.cuh"
#include "mse.cuh"
#include "bias_grad.cuh"
#include "adamw.cuh"
#include "diverge.cuh"
#include "eval.cuh"
#include "cuda_path.h"
#include "fused_train.cuh"

// Steps of lr factors and bias corrections held on the device at a time (default; the
// environment variable TMS_CUDA_TABLE_ROWS overrides it at create, so that tests cross
// several windows in a short run).
#define TABLE_ROWS 16384
// The evaluation's chunk buffers: about this many bytes, split among the instances (at
// least 4 rows each). TMS_CUDA_EVAL_ROWS sets the rows per chunk instead (tests).
#define EVAL_BYTES ((size_t)16 << 20)
// cuBLAS workspace; NVIDIA recommends 32 MiB on Hopper.
#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)
// Allocation granularity, graph and cuBLAS bookkeeping.
#define HEADROOM_BYTES ((size_t)128 << 20)

// The device-side step counter and the first step of the constants table; and the
// evaluation's subsequence, which sample() reads from device memory like a step.
typedef struct {
    long long step;
    long long table_base;
    long long eval_subsequence; // TMS_SUBSEQ_EVAL
} tms_step_state_t;

typedef struct {
    tms_problem_t P;        // scalars only: inst and importance are NULL (copied to the device)
    tms_layout_t L;
    int I, n, m, B;
    int device;
    int nan_fill;           // TMS_CUDA_NAN_FILL=1 at create
    int table_rows;         // rows of the constants table: TABLE_ROWS or TMS_CUDA_TABLE_ROWS
    int eval_rows;          // evaluation rows per chunk, a multiple of 4
    cudaStream_t stream;
    cublasHandle_t cublas;
    void *cublas_workspace; // (CUBLAS_WORKSPACE_BYTES)
    // optimisation state, flat layout L
    float *params;          // (L.total)
    float *grads;           // (L.total)
    float *adam_m;          // (L.total)
    float *adam_v;          // (L.total)
    // per instance, fixed for the run
    float *importance;      // (I, n)
    unsigned long long *keys; // (I) Philox keys
    float *density;         // (I)
    float *lr;              // (I) peak lr
    float *weight_decay;    // (I)
    // work buffers, each instance's slice contiguous
    float *x;               // (I, B, n)
    float *target;          // (I, B, n) what the output should be: x itself (same pointer), or
                            // its own buffer |x| for the abs task (tms_data_has_target)
    float *h;               // (I, B, m) z, then h = act(z) in place (h > 0 iff z > 0: the mask)
    float *y_dy;            // (I, B, n) y, then dy in place
    float *dh;              // (I, B, m) dh, then dz in place
    float *loss_partial;    // (I, loss_parts)
    float *loss;            // (I)
    int loss_parts;
    long long *diverged;    // (I) 0 healthy, else 1 + the step it diverged at (frozen)
    long long *frozen_at_begin; // (I) diverged as it was before train()'s first step
    // evaluation chunk buffers, each instance's slice contiguous, rows <= eval_rows
    float *eval_x;          // (I, rows, n)
    float *eval_target;     // (I, rows, n) |x| for the abs task; eval_x when the target is x
    float *eval_h;          // (I, rows, m)
    float *eval_y;          // (I, rows, n)
    float *eval_sq;         // (I, rows) per-sample sum over features of I_i (t - out)^2
    double *eval_stats;     // (I, 2) running mean and M2 of eval_sq over the rows so far
    // per-step values the graph reads from device memory
    tms_step_state_t *state;     // (1)
    tms_step_device_t *table;    // (table_rows)
    // pinned host staging
    tms_step_state_t *h_state;   // (1)
    tms_step_device_t *h_table;  // (table_rows)
    float *h_loss;               // (I)
    long long *h_diverged;       // (I)
    double *h_eval_stats;        // (I, 2)
    cudaGraph_t graph;
    cudaGraphExec_t graph_exec;
    // the fused path (fused_train.cuh): train() runs one launch per window of the table
    // instead of the graph; the state, divergence and the evaluation are shared. The step's
    // buffers (grads, x, target, h, y_dy, dh, loss_partial, frozen_at_begin) are not
    // allocated (NULL), and the test hooks refuse a fused backend
    int fused;
    tms_fused_plan_t fused_plan;
    int fused_threads;      // block size: the tile's rows (at least 32), or TMS_CUDA_FUSED_THREADS
} cuda_ctx_t;

// ----------------------------------------------------------------------------
// small kernels of the glue

// The last node of the step graph: the next replay takes the next step.
__global__ void step_advance_kernel1(tms_step_state_t *state) {
    state->step += 1;
}

// ----------------------------------------------------------------------------
// helpers

static int nan_fill(cuda_ctx_t *c, float *buffer, size_t count) {
    if (!c->nan_fill) return 0;
    cudaCheck(cudaMemsetAsync(buffer, 0xFF, count * sizeof(float), c->stream)); // 0xFFFFFFFF is a NaN
    return 0;
}

// C = op(A) op(B) (+ C when beta = 1) for every instance, in cuBLAS's column-major terms;
// the call sites derive the arguments from the row-major shapes. A row-major (r, c) array
// with row stride c is, read column-major with leading dimension c, the c x r matrix:
// its transpose. Strides are in floats between consecutive instances.
static int gemm(cuda_ctx_t *c, cublasOperation_t op_a, cublasOperation_t op_b, int M, int N, int K,
                const float *A, int lda, long long stride_a, const float *B, int ldb,
                long long stride_b, float beta, float *C, int ldc, long long stride_c) {
    const float alpha = 1.0f;
    cublasCheck(cublasSgemmStridedBatched(c->cublas, op_a, op_b, M, N, K, &alpha, A, lda, stride_a,
                                          B, ldb, stride_b, &beta, C, ldc, stride_c, c->I));
    return 0;
}

static int set_step(cuda_ctx_t *c, long long step, long long table_base) {
    // the previous copy from h_state has finished: every caller synchronised the stream
    c->h_state->step = step;
    c->h_state->table_base = table_base;
    c->h_state->eval_subsequence = (long long)TMS_SUBSEQ_EVAL;
    cudaCheck(cudaMemcpyAsync(c->state, c->h_state, sizeof(tms_step_state_t), cudaMemcpyHostToDevice,
                              c->stream));
    return 0;
}

// ----------------------------------------------------------------------------
// one step

// The forward pass up to the decoder GEMM, for `rows` samples per instance: x (I, rows, n)
// -> h (I, rows, m) -> y (I, rows, n), each instance's slice contiguous. Shared by the
// training step (rows = B) and the evaluation's chunks.
static int forward(cuda_ctx_t *c, const float *x, float *h, float *y, int rows) {
    const tms_model_t *M = &c->P.model;
    const tms_layout_t *L = &c->L;
    const int I = c->I, n = c->n, m = c->m;
    const long long Rn = (long long)rows * n, Rm = (long long)rows * m, mn = (long long)m * n;
    const float *W = c->params + L->offset[TMS_T_W];                                 // (I, m, n)
    const float *W2 = L->present[TMS_T_W2] ? c->params + L->offset[TMS_T_W2] : NULL; // (I, n, m)
    const float *b1 = L->present[TMS_T_B1] ? c->params + L->offset[TMS_T_B1] : NULL; // (I, m)

    // z (R, m) = x (R, n) W^T, W (m, n). Column-major: z^T (m x R, ldc m) = W (m x n) x^T (n x R).
    //   W row-major (m, n) reads as W^T (n x m, ld n): op T gives W, lda = n.
    //   x row-major (R, n) reads as x^T (n x R, ld n): op N, ldb = n.
    tmsCheck(nan_fill(c, h, (size_t)I * Rm));
    tmsCheck(gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, m, rows, n, W, n, mn, x, n, Rn, 0.0f, h, m, Rm));
    if (M->hidden_act == TMS_ACT_RELU) tmsCheck(bias_relu_forward(h, b1, I, rows, m, c->stream));

    tmsCheck(nan_fill(c, y, (size_t)I * Rn));
    if (M->decoder == TMS_DECODER_TIED) {
        // y (R, n) = h (R, m) W (m, n)   (Wd = W^T, so Wd^T = W).
        // Column-major: y^T (n x R, ldc n) = W^T (n x m) h^T (m x R).
        //   W row-major (m, n) reads as W^T (n x m, ld n): op N, lda = n.
        //   h row-major (R, m) reads as h^T (m x R, ld m): op N, ldb = m.
        tmsCheck(gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, n, rows, m, W, n, mn, h, m, Rm, 0.0f, y, n, Rn));
    } else {
        // y (R, n) = h (R, m) W2^T, W2 (n, m). Column-major: y^T (n x R, ldc n) = W2 (n x m) h^T.
        //   W2 row-major (n, m) reads as W2^T (m x n, ld m): op T gives W2, lda = m.
        //   h row-major (R, m) reads as h^T (m x R, ld m): op N, ldb = m.
        tmsCheck(gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, m, W2, m, mn, h, m, Rm, 0.0f, y, n, Rn));
    }
    return 0;
}

// Enqueue one step on c->stream for the step in c->state: the batch, forward, loss,
// gradients, and with `update` the optimiser step and the counter increment. Used
// inside the graph capture (update = 1) and eagerly for the gradient hook (update = 0).
static int enqueue_step(cuda_ctx_t *c, int update) {
    const tms_model_t *M = &c->P.model;
    const tms_layout_t *L = &c->L;
    const int I = c->I, n = c->n, m = c->m, B = c->B;
    const long long Bn = (long long)B * n, Bm = (long long)B * m, mn = (long long)m * n;
    const int tied = M->decoder == TMS_DECODER_TIED;
    const int hidden_relu = M->hidden_act == TMS_ACT_RELU;
    cudaStream_t s = c->stream;

    float *W = c->params + L->offset[TMS_T_W];                                     // (I, m, n)
    float *W2 = L->present[TMS_T_W2] ? c->params + L->offset[TMS_T_W2] : NULL;     // (I, n, m)
    float *b = L->present[TMS_T_B] ? c->params + L->offset[TMS_T_B] : NULL;        // (I, n)
    float *gW = c->grads + L->offset[TMS_T_W];                                     // (I, m, n)
    float *gW2 = L->present[TMS_T_W2] ? c->grads + L->offset[TMS_T_W2] : NULL;     // (I, n, m)
    float *gb1 = L->present[TMS_T_B1] ? c->grads + L->offset[TMS_T_B1] : NULL;     // (I, m)
    float *gb = L->present[TMS_T_B] ? c->grads + L->offset[TMS_T_B] : NULL;        // (I, n)
    float *x = c->x, *h = c->h, *y_dy = c->y_dy, *dh = c->dh;
    float *target = c->target != c->x ? c->target : NULL; // NULL: sample writes no target

    // ---- data
    tmsCheck(nan_fill(c, x, (size_t)I * Bn));
    if (target) tmsCheck(nan_fill(c, target, (size_t)I * Bn));
    tmsCheck(sample(x, target, c->keys, c->density, &c->state->step, I, Bn, 0, n, &c->P.data, s));

    // ---- forward: z = x W^T, h = act(z + b1), y = h Wd^T
    tmsCheck(forward(c, x, h, y_dy, B));

    // ---- loss and dy (adds b, applies the output activation; dy overwrites y)
    tmsCheck(nan_fill(c, c->loss_partial, (size_t)I * c->loss_parts));
    tmsCheck(mse_forward_backward(y_dy, c->loss_partial, c->target, b, c->importance, I, B, n,
                                  M->output_act == TMS_ACT_RELU, s));
    float *dy = y_dy;

    // ---- backward
    tmsCheck(nan_fill(c, c->grads, c->L.total));
    if (!tied) {
        // dW2 (n, m) = dy^T (n, B) h (B, m). Column-major: dW2^T (m x n, ldc m) = h^T (m x B) dy (B x n).
        //   h row-major (B, m) reads as h^T (m x B, ld m): op N, lda = m.
        //   dy row-major (B, n) reads as dy^T (n x B, ld n): op T gives dy, ldb = n.
        tmsCheck(gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, m, n, B, h, m, Bm, dy, n, Bn, 0.0f, gW2, m, mn));
    }
    if (gb) tmsCheck(bias_grad(gb, dy, I, B, n, s));

    tmsCheck(nan_fill(c, dh, (size_t)I * Bm));
    if (tied) {
        // dh (B, m) = dy (B, n) Wd (n, m) = dy W^T. Column-major: dh^T (m x B, ldc m) = W (m x n) dy^T.
        //   W row-major (m, n) reads as W^T (n x m, ld n): op T gives W, lda = n.
        //   dy row-major (B, n) reads as dy^T (n x B, ld n): op N, ldb = n.
        tmsCheck(gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, m, B, n, W, n, mn, dy, n, Bn, 0.0f, dh, m, Bm));
    } else {
        // dh (B, m) = dy (B, n) W2 (n, m). Column-major: dh^T (m x B, ldc m) = W2^T (m x n) dy^T (n x B).
        //   W2 row-major (n, m) reads as W2^T (m x n, ld m): op N, lda = m.
        //   dy row-major (B, n) reads as dy^T (n x B, ld n): op N, ldb = n.
        tmsCheck(gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, m, B, n, W2, m, mn, dy, n, Bn, 0.0f, dh, m, Bm));
    }
    if (hidden_relu) tmsCheck(relu_backward(dh, h, I, B, m, s));
    float *dz = dh;
    if (gb1) tmsCheck(bias_grad(gb1, dz, I, B, m, s));

    // dW (m, n) = dz^T (m, B) x (B, n). Column-major: dW^T (n x m, ldc n) = x^T (n x B) dz (B x m).
    //   x row-major (B, n) reads as x^T (n x B, ld n): op N, lda = n.
    //   dz row-major (B, m) reads as dz^T (m x B, ld m): op T gives dz, ldb = m.
    tmsCheck(gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, n, m, B, x, n, Bn, dz, m, Bm, 0.0f, gW, n, mn));
    if (tied) {
        // The decoder's gradient dWd (n, m) = dy^T h lands on W transposed:
        // dW (m, n) += h^T (m, B) dy (B, n). Column-major: dW^T (n x m, ldc n) += dy^T (n x B) h (B x m).
        //   dy row-major (B, n) reads as dy^T (n x B, ld n): op N, lda = n.
        //   h row-major (B, m) reads as h^T (m x B, ld m): op T gives h, ldb = m.
        //   beta = 1 accumulates onto the encoder term written just above.
        tmsCheck(gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, n, m, B, dy, n, Bn, h, m, Bm, 1.0f, gW, n, mn));
    }

    if (!update) return 0;

    // ---- divergence, optimiser and the next step
    tmsCheck(diverge_check(c->diverged, c->grads, c->loss_partial, L, c->loss_parts, &c->state->step, s));
    tmsCheck(adamw_update(c->params, c->adam_m, c->adam_v, c->grads, L, c->lr, c->weight_decay,
                          c->table, &c->state->step, &c->state->table_base, c->diverged, c->P.beta1,
                          c->P.beta2, c->P.eps, c->P.optimizer, s));
    step_advance_kernel1<<<1, 1, 0, s>>>(c->state);
    cudaCheck(cudaGetLastError());
    return 0;
}

// Under lazy module loading (the CUDA 12+ default) a kernel is loaded at its first launch;
// load all of them before the capture, as older drivers cannot load during one.
static int load_kernels(void) {
    cudaFuncAttributes attr;
    cudaCheck(cudaFuncGetAttributes(&attr, sample_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, bias_relu_forward_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, relu_backward_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, mse_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, loss_reduce_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, bias_grad_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, adamw_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, diverge_check_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, step_advance_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, eval_rows_kernel1));
    cudaCheck(cudaFuncGetAttributes(&attr, eval_merge_kernel1));
    return 0;
}

static int capture_step_graph(cuda_ctx_t *c) {
    cudaGraph_t graph = NULL;
    // thread-local mode: an unsafe call from this thread (a cudaMalloc, a sync) during the
    // capture is an error rather than a silent hazard
    cudaCheck(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    const int rc = enqueue_step(c, 1);
    const cudaError_t end = cudaStreamEndCapture(c->stream, &graph);
    if (rc != 0) { // keep enqueue_step's message; the capture is ended either way
        if (graph) cudaGraphDestroy(graph);
        return -1;
    }
    cudaCheck(end);
    c->graph = graph;
    cudaCheck(cudaGraphInstantiate(&c->graph_exec, graph, 0));
    return 0;
}

// ----------------------------------------------------------------------------
// backend interface

// The fused path's train(): per window of the constants table, one launch of the fused
// kernel for all its steps; the kernel writes step_begin's loss (NaN for instances frozen
// before it) into c->loss.
static int train_fused(cuda_ctx_t *c, long step_begin, long step_end, float *loss_first) {
    const long window = c->table_rows;
    tmsCheck(nan_fill(c, c->loss, (size_t)c->I));
    for (long w0 = step_begin; w0 < step_end; w0 += window) {
        const long w1 = step_end - w0 < window ? step_end : w0 + window;
        // the previous window's launch has read its rows
        cudaCheck(cudaStreamSynchronize(c->stream));
        for (long t = w0; t < w1; t++) {
            tms_step_device_t *row = &c->h_table[t - w0];
            tms_step_constants(&c->P, t, &row->lr_factor, &row->bias1, &row->bias2);
        }
        cudaCheck(cudaMemcpyAsync(c->table, c->h_table, (size_t)(w1 - w0) * sizeof(tms_step_device_t),
                                  cudaMemcpyHostToDevice, c->stream));
        tmsCheck(fused_train(c->params, c->adam_m, c->adam_v, &c->L, &c->P, &c->fused_plan, c->fused_threads,
                             c->importance, c->keys, c->density, c->lr, c->weight_decay, c->table, w0, c->diverged,
                             c->loss, w0, w1, step_begin, c->stream));
    }
    cudaCheck(cudaMemcpyAsync(c->h_loss, c->loss, (size_t)c->I * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    if (loss_first) memcpy(loss_first, c->h_loss, (size_t)c->I * sizeof(float));
    return 0;
}

static int train_impl(cuda_ctx_t *c, long step_begin, long step_end, float *loss_first) {
    if (step_end <= step_begin || c->I == 0) return 0;
    if (step_begin < 0) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error), "train: negative step %ld", step_begin);
        return -1;
    }
    cudaCheck(cudaSetDevice(c->device));
    if (c->fused) return train_fused(c, step_begin, step_end, loss_first);
    const long window = c->table_rows;
    for (long w0 = step_begin; w0 < step_end; w0 += window) {
        const long w1 = step_end - w0 < window ? step_end : w0 + window;
        // the previous window's replays have read their rows and the staging copies are done
        cudaCheck(cudaStreamSynchronize(c->stream));
        for (long t = w0; t < w1; t++) {
            tms_step_device_t *row = &c->h_table[t - w0];
            tms_step_constants(&c->P, t, &row->lr_factor, &row->bias1, &row->bias2);
        }
        cudaCheck(cudaMemcpyAsync(c->table, c->h_table, (size_t)(w1 - w0) * sizeof(tms_step_device_t),
                                  cudaMemcpyHostToDevice, c->stream));
        tmsCheck(set_step(c, w0, w0));
        // which instances were frozen before step_begin: their reported loss is NaN (the CPU
        // reports NaN for an instance frozen when train() starts)
        if (w0 == step_begin)
            cudaCheck(cudaMemcpyAsync(c->frozen_at_begin, c->diverged, (size_t)c->I * sizeof(long long),
                                      cudaMemcpyDeviceToDevice, c->stream));
        for (long t = w0; t < w1; t++) {
            cudaCheck(cudaGraphLaunch(c->graph_exec, c->stream));
            if (t == step_begin) {
                // the loss of step_begin's batch, before the next replay overwrites the partials
                // (NaN for the instances frozen before step_begin)
                tmsCheck(nan_fill(c, c->loss, (size_t)c->I));
                tmsCheck(loss_reduce(c->loss, c->loss_partial, c->frozen_at_begin, c->I, c->B, c->n,
                                     c->stream));
                cudaCheck(cudaMemcpyAsync(c->h_loss, c->loss, (size_t)c->I * sizeof(float),
                                          cudaMemcpyDeviceToHost, c->stream));
            }
        }
    }
    cudaCheck(cudaStreamSynchronize(c->stream));
    if (loss_first) memcpy(loss_first, c->h_loss, (size_t)c->I * sizeof(float));
    return 0;
}

static int cuda_train(tms_backend_t *be, long step_begin, long step_end, float *loss_first) {
    if (train_impl((cuda_ctx_t *)be->ctx, step_begin, step_end, loss_first) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return 0;
}

static int get_state_impl(cuda_ctx_t *c, float *params, float *adam_m, float *adam_v) {
    const size_t bytes = c->L.total * sizeof(float);
    if (c->I == 0) return 0;
    cudaCheck(cudaSetDevice(c->device));
    if (params) cudaCheck(cudaMemcpyAsync(params, c->params, bytes, cudaMemcpyDeviceToHost, c->stream));
    if (adam_m) cudaCheck(cudaMemcpyAsync(adam_m, c->adam_m, bytes, cudaMemcpyDeviceToHost, c->stream));
    if (adam_v) cudaCheck(cudaMemcpyAsync(adam_v, c->adam_v, bytes, cudaMemcpyDeviceToHost, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    return 0;
}

static int cuda_get_state(tms_backend_t *be, float *params, float *adam_m, float *adam_v) {
    if (get_state_impl((cuda_ctx_t *)be->ctx, params, adam_m, adam_v) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return 0;
}

static int get_diverged_impl(cuda_ctx_t *c, long *diverged_step) {
    if (c->I == 0) return 0;
    cudaCheck(cudaSetDevice(c->device));
    cudaCheck(cudaMemcpyAsync(c->h_diverged, c->diverged, (size_t)c->I * sizeof(long long),
                              cudaMemcpyDeviceToHost, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    for (int i = 0; i < c->I; i++) diverged_step[i] = (long)c->h_diverged[i];
    return 0;
}

static int cuda_get_diverged(tms_backend_t *be, long *diverged_step) {
    if (get_diverged_impl((cuda_ctx_t *)be->ctx, diverged_step) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return 0;
}

// One chunk of the evaluation: rows [row0, row0 + rows) of every instance's evaluation
// draw, forward, and their losses merged into eval_stats.
static int enqueue_eval_chunk(cuda_ctx_t *c, long row0, int rows) {
    const tms_model_t *M = &c->P.model;
    const int I = c->I, n = c->n;
    const long long Rn = (long long)rows * n;
    float *target = c->eval_target != c->eval_x ? c->eval_target : NULL; // NULL: the target is x
    float *b = c->L.present[TMS_T_B] ? c->params + c->L.offset[TMS_T_B] : NULL; // (I, n)
    tmsCheck(nan_fill(c, c->eval_x, (size_t)I * Rn));
    if (target) tmsCheck(nan_fill(c, target, (size_t)I * Rn));
    // row0 is a multiple of eval_rows, itself a multiple of 4: the element offset row0 n is
    // a multiple of 4, so each thread's four elements are one Philox block, as on the CPU
    tmsCheck(sample(c->eval_x, target, c->keys, c->density, &c->state->eval_subsequence, I, Rn,
                    (long long)row0 * n, n, &c->P.data, c->stream));
    tmsCheck(forward(c, c->eval_x, c->eval_h, c->eval_y, rows));
    tmsCheck(nan_fill(c, c->eval_sq, (size_t)I * rows));
    tmsCheck(eval_rows(c->eval_sq, c->eval_y, c->eval_target, b, c->importance, I, rows, n,
                       M->output_act == TMS_ACT_RELU, c->stream));
    tmsCheck(eval_merge(c->eval_stats, c->eval_sq, I, rows, row0, c->stream));
    return 0;
}

static int evaluate_impl(cuda_ctx_t *c, long samples, double *loss, double *loss_se) {
    if (samples < 1) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error), "evaluate: %ld samples (need at least 1)", samples);
        return -1;
    }
    if (c->I == 0) return 0;
    cudaCheck(cudaSetDevice(c->device));
    cudaCheck(cudaStreamSynchronize(c->stream)); // h_state's last copy is done
    tmsCheck(set_step(c, 0, 0)); // writes eval_subsequence (the step is not used here)
    for (long row0 = 0; row0 < samples; row0 += c->eval_rows) {
        const int rows = (int)(samples - row0 < c->eval_rows ? samples - row0 : c->eval_rows);
        tmsCheck(enqueue_eval_chunk(c, row0, rows));
    }
    cudaCheck(cudaMemcpyAsync(c->h_eval_stats, c->eval_stats, 2 * (size_t)c->I * sizeof(double),
                              cudaMemcpyDeviceToHost, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    // S_r is the sum over features; the loss is the mean over features too
    const double N = (double)samples, n = (double)c->n;
    for (int i = 0; i < c->I; i++) {
        const double mean = c->h_eval_stats[2 * (size_t)i], m2 = c->h_eval_stats[2 * (size_t)i + 1];
        loss[i] = mean / n;
        // the sample standard deviation of the per-sample losses / sqrt(samples); 0 for a single
        // sample, as the CPU's tms_cpu_eval_loss reports it
        if (loss_se) loss_se[i] = samples > 1 ? sqrt(m2 / (N - 1.0)) / sqrt(N) / n : 0.0;
    }
    return 0;
}

static int cuda_evaluate(tms_backend_t *be, long samples, double *loss, double *loss_se) {
    if (evaluate_impl((cuda_ctx_t *)be->ctx, samples, loss, loss_se) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return 0;
}

// Frees what exists. Errors here are reported and otherwise ignored (nothing to undo).
static void cuda_destroy(tms_backend_t *be) {
    cuda_ctx_t *c = (cuda_ctx_t *)be->ctx;
    if (!c) return;
    if (c->stream) { // everything on the device was created after the stream
        cudaError_t first = cudaSuccess;
#define KEEP_FIRST(call)                                  \
    do {                                                  \
        const cudaError_t e_ = (call);                    \
        if (first == cudaSuccess) first = e_;             \
    } while (0)
        KEEP_FIRST(cudaSetDevice(c->device));
        KEEP_FIRST(cudaStreamSynchronize(c->stream));
        if (c->graph_exec) KEEP_FIRST(cudaGraphExecDestroy(c->graph_exec));
        if (c->graph) KEEP_FIRST(cudaGraphDestroy(c->graph));
        if (c->cublas && cublasDestroy(c->cublas) != CUBLAS_STATUS_SUCCESS)
            fprintf(stderr, "tms: CUDA backend: cublasDestroy failed\n");
        void *device_buffers[] = {c->cublas_workspace, c->params, c->grads, c->adam_m, c->adam_v,
                                  c->importance, c->keys, c->density, c->lr, c->weight_decay, c->x,
                                  c->target != c->x ? c->target : NULL, // else it is x, freed once
                                  c->h, c->y_dy, c->dh, c->loss_partial, c->loss, c->diverged,
                                  c->frozen_at_begin,
                                  c->eval_x, c->eval_target != c->eval_x ? c->eval_target : NULL,
                                  c->eval_h, c->eval_y, c->eval_sq, c->eval_stats, c->state, c->table};
        for (size_t k = 0; k < sizeof(device_buffers) / sizeof(device_buffers[0]); k++)
            if (device_buffers[k]) KEEP_FIRST(cudaFree(device_buffers[k]));
        void *host_buffers[] = {c->h_state, c->h_table, c->h_loss, c->h_diverged, c->h_eval_stats};
        for (size_t k = 0; k < sizeof(host_buffers) / sizeof(host_buffers[0]); k++)
            if (host_buffers[k]) KEEP_FIRST(cudaFreeHost(host_buffers[k]));
        KEEP_FIRST(cudaStreamDestroy(c->stream));
#undef KEEP_FIRST
        if (first != cudaSuccess)
            fprintf(stderr, "tms: CUDA backend: while freeing: %s (%s)\n", cudaGetErrorName(first),
                    cudaGetErrorString(first));
    }
    free(c);
    be->ctx = NULL;
}

// ----------------------------------------------------------------------------
// creation

// Floats per evaluation row of one instance: x, the abs task's target, h, y, the sample's loss.
static size_t eval_row_floats(const tms_problem_t *P) {
    const size_t n = (size_t)P->model.n, m = (size_t)P->model.m;
    return n + (tms_data_has_target(&P->data) ? n : 0) + m + n + 1;
}

// Evaluation rows per chunk: as many as EVAL_BYTES holds for all instances, a multiple of
// 4 (the Philox block; see enqueue_eval_chunk), at least 4 and at most 2^24 (the most
// samples a spec may ask for).
static int eval_rows_default(const tms_problem_t *P) {
    const size_t row_bytes = (size_t)P->instances * eval_row_floats(P) * sizeof(float);
    size_t rows = EVAL_BYTES / (row_bytes ? row_bytes : 1);
    if (rows > ((size_t)1 << 24)) rows = (size_t)1 << 24;
    rows -= rows % 4;
    return rows < 4 ? 4 : (int)rows;
}

// A positive integer from the environment variable `name` (a test override), `fallback`
// when it is unset. Returns -1 with a message when it is set but not an integer in
// [1, most] that is a multiple of `multiple`.
static long env_rows(const char *name, long fallback, long most, long multiple) {
    const char *text = getenv(name);
    if (!text || !text[0]) return fallback;
    char *end = NULL;
    const long v = strtol(text, &end, 10);
    if (*end != '\0' || v < 1 || v > most || v % multiple != 0) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error),
                 "%s=%s: expected an integer from 1 to %ld%s", name, text, most,
                 multiple > 1 ? ", a multiple of 4" : "");
        return -1;
    }
    return v;
}

extern "C" void tms_cuda_backend_bytes(const tms_problem_t *P, const tms_layout_t *L, size_t *fixed,
                                       size_t *per_instance) {
    const size_t n = (size_t)P->model.n, m = (size_t)P->model.m, B = (size_t)P->batch_size;
    size_t params = 0;
    for (int t = 0; t < TMS_NTENSORS; t++)
        if (L->present[t]) params += L->per_instance[t];
    const size_t floats = 4 * params                     // params, grads, adam_m, adam_v
                          + 2 * B * n + 2 * B * m        // x, y_dy, h, dh
                          + (tms_data_has_target(&P->data) ? B * n : 0) // the abs task's target
                          + n                            // importance
                          + (size_t)mse_loss_parts((long long)B * n) + 1 // loss partials, loss
                          + 3                            // density, lr, weight_decay
                          + 4 * eval_row_floats(P);      // evaluation rows beyond EVAL_BYTES
    *per_instance = floats * sizeof(float) + sizeof(unsigned long long) // + the key
                    + 2 * sizeof(long long) + 2 * sizeof(double);      // + divergence flags, eval stats
    *fixed = TABLE_ROWS * sizeof(tms_step_device_t) + sizeof(tms_step_state_t) + EVAL_BYTES +
             CUBLAS_WORKSPACE_BYTES + HEADROOM_BYTES;
}

extern "C" int tms_cuda_backend_available(char *device, size_t devlen) {
    int count = 0;
    if (device && devlen) device[0] = '\0';
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError(); // clear it: the caller may go on to use the CPU
        if (device && devlen)
            snprintf(device, devlen, "no CUDA device: %s",
                     e == cudaSuccess ? "none found" : cudaGetErrorString(e));
        return 0;
    }
    int dev = 0;
    cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        cudaGetLastError();
        if (device && devlen) snprintf(device, devlen, "no CUDA device: cannot query device %d", dev);
        return 0;
    }
    // usable = this build has code the device can run
    cudaFuncAttributes attr;
    e = cudaFuncGetAttributes(&attr, sample_kernel1);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (device && devlen)
            snprintf(device, devlen, "%s: no kernel image for compute capability %d.%d "
                     "(rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d)",
                     prop.name, prop.major, prop.minor, prop.major, prop.minor);
        return 0;
    }
    if (device && devlen) snprintf(device, devlen, "%s", prop.name);
    return 1;
}

static int create_impl(tms_backend_t *be, cuda_ctx_t *c, const tms_problem_t *P, const tms_layout_t *L,
                       const float *params, const float *adam_m, const float *adam_v, int allow_tf32, int path) {
    const tms_model_t *M = &P->model;
    if (M->n < 1 || M->m < 1 || P->batch_size < 1 || P->instances < 0 || L->instances != P->instances) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error),
                 "bad problem: n %d, m %d, batch %d, instances %d (layout for %d)", M->n, M->m,
                 P->batch_size, P->instances, L->instances);
        return -1;
    }
    c->P = *P;
    c->P.inst = NULL;       // the caller owns these; their contents are copied below
    c->P.importance = NULL;
    c->L = *L;
    c->I = P->instances;
    c->n = M->n;
    c->m = M->m;
    c->B = P->batch_size;
    c->loss_parts = mse_loss_parts((long long)c->B * c->n);
    const char *fill = getenv("TMS_CUDA_NAN_FILL");
    c->nan_fill = fill && fill[0] && strcmp(fill, "0") != 0;
    const long table_rows = env_rows("TMS_CUDA_TABLE_ROWS", TABLE_ROWS, TABLE_ROWS, 1);
    const long eval_rows = env_rows("TMS_CUDA_EVAL_ROWS", eval_rows_default(P), 1L << 24, 4);
    if (table_rows < 0 || eval_rows < 0) return -1;
    c->table_rows = (int)table_rows;
    c->eval_rows = (int)eval_rows;
    if (path != TMS_CUDA_PATH_GEMM && path != TMS_CUDA_PATH_FUSED) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error), "CUDA path %d: expected gemm or fused", path);
        return -1;
    }
    c->fused = path == TMS_CUDA_PATH_FUSED;
    if (c->fused) {
        char why[512];
        if (tms_cuda_path_select(TMS_CUDA_PATH_FUSED, M, P->batch_size, NULL, why, sizeof(why)) != TMS_CUDA_PATH_FUSED ||
            tms_fused_plan(M, P->batch_size, &c->fused_plan) != 0) {
            snprintf(tms_cuda_error, sizeof(tms_cuda_error), "%s", why);
            return -1;
        }
        const int rows = c->fused_plan.tile_rows;
        const long threads = env_rows("TMS_CUDA_FUSED_THREADS", rows < 32 ? 32 : rows, 1024, 1);
        if (threads < 0) return -1;
        c->fused_threads = (int)threads;
    }

    cudaCheck(cudaGetDevice(&c->device));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, c->device));
    snprintf(be->device, sizeof(be->device), "%.127s", prop.name); // prop.name holds up to 255
    cudaCheck(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    cublasCheck(cublasCreate(&c->cublas));
    cublasCheck(cublasSetStream(c->cublas, c->stream));
    cublasCheck(cublasSetMathMode(c->cublas, allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    // an empty shard (more shards than grid points) is a valid run of no instances: nothing
    // to allocate, and train / get_state / get_diverged / evaluate have nothing to do
    if (c->I == 0) return 0;

    // ---- does it fit?
    size_t fixed = 0, per_instance = 0, free_bytes = 0, total_bytes = 0;
    tms_cuda_backend_bytes(P, L, &fixed, &per_instance);
    if (c->fused) { // the fused path has no step buffers (gradients, batch, activations, loss partials)
        size_t params = 0;
        for (int t = 0; t < TMS_NTENSORS; t++)
            if (L->present[t]) params += L->per_instance[t];
        const size_t Bn = (size_t)c->B * c->n, Bm = (size_t)c->B * c->m;
        per_instance -= (params + 2 * Bn + 2 * Bm + (tms_data_has_target(&P->data) ? Bn : 0) +
                         (size_t)c->loss_parts) * sizeof(float) + sizeof(long long);
    }
    cudaCheck(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double need = (double)fixed + (double)per_instance * (double)c->I;
    if (need > (double)free_bytes) {
        const size_t fit = free_bytes > fixed ? (free_bytes - fixed) / per_instance : 0;
        snprintf(tms_cuda_error, sizeof(tms_cuda_error),
                 "not enough GPU memory: %d instances of this model (n %d, m %d, batch %d) need "
                 "%.2f GiB (%.2f MiB per instance + %.0f MiB fixed), but %s has %.2f GiB free of "
                 "%.2f GiB. At most %zu instances fit: split the run into chunks of at most %zu "
                 "instances%s.",
                 c->I, c->n, c->m, c->B, need / 1073741824.0, (double)per_instance / 1048576.0,
                 (double)fixed / 1048576.0, prop.name, (double)free_bytes / 1073741824.0,
                 (double)total_bytes / 1073741824.0, fit, fit, fit == 0 ? ", or use a smaller batch" : "");
        return -1;
    }

    // ---- allocate
    const size_t I = (size_t)c->I, n = (size_t)c->n, m = (size_t)c->m, B = (size_t)c->B;
    const size_t total = L->total;
    cudaCheck(cudaMalloc(&c->cublas_workspace, CUBLAS_WORKSPACE_BYTES));
    cudaCheck(cudaMalloc(&c->params, total * sizeof(float)));
    cudaCheck(cudaMalloc(&c->adam_m, total * sizeof(float)));
    cudaCheck(cudaMalloc(&c->adam_v, total * sizeof(float)));
    cudaCheck(cudaMalloc(&c->importance, I * n * sizeof(float)));
    cudaCheck(cudaMalloc(&c->keys, I * sizeof(unsigned long long)));
    cudaCheck(cudaMalloc(&c->density, I * sizeof(float)));
    cudaCheck(cudaMalloc(&c->lr, I * sizeof(float)));
    cudaCheck(cudaMalloc(&c->weight_decay, I * sizeof(float)));
    if (!c->fused) { // the step's buffers: the fused path keeps all of this on chip
        cudaCheck(cudaMalloc(&c->grads, total * sizeof(float)));
        cudaCheck(cudaMalloc(&c->x, I * B * n * sizeof(float)));
        if (tms_data_has_target(&P->data)) cudaCheck(cudaMalloc(&c->target, I * B * n * sizeof(float)));
        else c->target = c->x;
        cudaCheck(cudaMalloc(&c->h, I * B * m * sizeof(float)));
        cudaCheck(cudaMalloc(&c->y_dy, I * B * n * sizeof(float)));
        cudaCheck(cudaMalloc(&c->dh, I * B * m * sizeof(float)));
        cudaCheck(cudaMalloc(&c->loss_partial, I * (size_t)c->loss_parts * sizeof(float)));
        cudaCheck(cudaMalloc(&c->frozen_at_begin, I * sizeof(long long)));
    }
    cudaCheck(cudaMalloc(&c->loss, I * sizeof(float)));
    cudaCheck(cudaMalloc(&c->diverged, I * sizeof(long long)));
    const size_t R = (size_t)c->eval_rows;
    cudaCheck(cudaMalloc(&c->eval_x, I * R * n * sizeof(float)));
    if (tms_data_has_target(&P->data)) cudaCheck(cudaMalloc(&c->eval_target, I * R * n * sizeof(float)));
    else c->eval_target = c->eval_x;
    cudaCheck(cudaMalloc(&c->eval_h, I * R * m * sizeof(float)));
    cudaCheck(cudaMalloc(&c->eval_y, I * R * n * sizeof(float)));
    cudaCheck(cudaMalloc(&c->eval_sq, I * R * sizeof(float)));
    cudaCheck(cudaMalloc(&c->eval_stats, 2 * I * sizeof(double)));
    cudaCheck(cudaMalloc(&c->state, sizeof(tms_step_state_t)));
    cudaCheck(cudaMalloc(&c->table, (size_t)c->table_rows * sizeof(tms_step_device_t)));
    cudaCheck(cudaMallocHost(&c->h_state, sizeof(tms_step_state_t)));
    cudaCheck(cudaMallocHost(&c->h_table, (size_t)c->table_rows * sizeof(tms_step_device_t)));
    cudaCheck(cudaMallocHost(&c->h_loss, I * sizeof(float)));
    cudaCheck(cudaMallocHost(&c->h_diverged, I * sizeof(long long)));
    cudaCheck(cudaMallocHost(&c->h_eval_stats, 2 * I * sizeof(double)));
    // after cublasSetStream, which resets the workspace to cuBLAS's own pool
    cublasCheck(cublasSetWorkspace(c->cublas, c->cublas_workspace, CUBLAS_WORKSPACE_BYTES));

    // ---- copy the state and the per-instance settings
    cudaStream_t s = c->stream;
    cudaCheck(cudaMemcpyAsync(c->params, params, total * sizeof(float), cudaMemcpyHostToDevice, s));
    cudaCheck(cudaMemcpyAsync(c->adam_m, adam_m, total * sizeof(float), cudaMemcpyHostToDevice, s));
    cudaCheck(cudaMemcpyAsync(c->adam_v, adam_v, total * sizeof(float), cudaMemcpyHostToDevice, s));
    cudaCheck(cudaMemcpyAsync(c->importance, P->importance, I * n * sizeof(float), cudaMemcpyHostToDevice, s));
    unsigned long long *keys = (unsigned long long *)malloc(I * sizeof(unsigned long long));
    float *settings = (float *)malloc(3 * I * sizeof(float)); // density, lr, weight decay
    if (!keys || !settings) {
        free(keys);
        free(settings);
        snprintf(tms_cuda_error, sizeof(tms_cuda_error), "out of host memory for %zu instances", I);
        return -1;
    }
    for (size_t i = 0; i < I; i++) {
        keys[i] = P->inst[i].key;
        settings[i] = P->inst[i].density;
        settings[I + i] = P->inst[i].lr;
        settings[2 * I + i] = P->inst[i].weight_decay;
        c->h_diverged[i] = P->inst[i].diverged_step; // frozen before a resume stays frozen
    }
    const cudaError_t e0 =
        cudaMemcpyAsync(c->diverged, c->h_diverged, I * sizeof(long long), cudaMemcpyHostToDevice, s);
    const cudaError_t e1 = cudaMemcpyAsync(c->keys, keys, I * sizeof(*keys), cudaMemcpyHostToDevice, s);
    const cudaError_t e2 = cudaMemcpyAsync(c->density, settings, I * sizeof(float), cudaMemcpyHostToDevice, s);
    const cudaError_t e3 = cudaMemcpyAsync(c->lr, settings + I, I * sizeof(float), cudaMemcpyHostToDevice, s);
    const cudaError_t e4 =
        cudaMemcpyAsync(c->weight_decay, settings + 2 * I, I * sizeof(float), cudaMemcpyHostToDevice, s);
    const cudaError_t e5 = cudaStreamSynchronize(s); // pageable sources: finish before freeing them
    free(keys);
    free(settings);
    cudaCheck(e0);
    cudaCheck(e1);
    cudaCheck(e2);
    cudaCheck(e3);
    cudaCheck(e4);
    cudaCheck(e5);

    // the fused path replays no graph (train() launches the fused kernel directly)
    if (c->fused) return 0;
    // ---- run the step once eagerly (gradients only: the state is untouched), which
    // checks every launch outside a capture, then capture it
    tmsCheck(load_kernels());
    tmsCheck(set_step(c, 0, 0));
    tmsCheck(enqueue_step(c, 0));
    cudaCheck(cudaStreamSynchronize(s));
    tmsCheck(capture_step_graph(c));
    return 0;
}

extern "C" int tms_cuda_backend_create_path(tms_backend_t *be, const tms_problem_t *P, const tms_layout_t *L,
                                            const float *params, const float *adam_m, const float *adam_v,
                                            int allow_tf32, int path, char *err, size_t errlen) {
    memset(be, 0, sizeof(*be));
    cuda_ctx_t *c = (cuda_ctx_t *)calloc(1, sizeof(cuda_ctx_t));
    if (!c) {
        snprintf(err, errlen, "out of host memory creating the CUDA backend");
        return -1;
    }
    be->ctx = c;
    be->name = "cuda";
    be->train = cuda_train;
    be->get_state = cuda_get_state;
    be->get_diverged = cuda_get_diverged;
    be->evaluate = cuda_evaluate;
    be->destroy = cuda_destroy;
    if (create_impl(be, c, P, L, params, adam_m, adam_v, allow_tf32, path) != 0) {
        snprintf(err, errlen, "CUDA backend: %s", tms_cuda_error);
        cuda_destroy(be);
        return -1;
    }
    return 0;
}

extern "C" int tms_cuda_backend_create(tms_backend_t *be, const tms_problem_t *P, const tms_layout_t *L,
                                       const float *params, const float *adam_m, const float *adam_v,
                                       int allow_tf32, char *err, size_t errlen) {
    return tms_cuda_backend_create_path(be, P, L, params, adam_m, adam_v, allow_tf32, TMS_CUDA_PATH_GEMM, err,
                                        errlen);
}

// ----------------------------------------------------------------------------
// test and debugging hooks (cuda_backend.h)

static cuda_ctx_t *cuda_ctx(tms_backend_t *be) {
    if (!be || !be->ctx || !be->name || strcmp(be->name, "cuda") != 0) {
        fprintf(stderr, "tms: CUDA backend hook called on a backend that is not CUDA\n");
        return NULL;
    }
    cuda_ctx_t *c = (cuda_ctx_t *)be->ctx;
    if (c->fused) { // its step buffers do not exist: the fused kernel keeps them on chip
        fprintf(stderr, "tms: CUDA backend hook called on the fused path; the hooks need the gemm path\n");
        return NULL;
    }
    return c;
}

static int batch_impl(cuda_ctx_t *c, long step, float *x) {
    const long long Bn = (long long)c->B * c->n;
    cudaCheck(cudaSetDevice(c->device));
    cudaCheck(cudaStreamSynchronize(c->stream));
    tmsCheck(set_step(c, step, step));
    float *target = c->target != c->x ? c->target : NULL;
    tmsCheck(nan_fill(c, c->x, (size_t)c->I * Bn));
    if (target) tmsCheck(nan_fill(c, target, (size_t)c->I * Bn));
    tmsCheck(sample(c->x, target, c->keys, c->density, &c->state->step, c->I, Bn, 0, c->n, &c->P.data,
                    c->stream));
    cudaCheck(cudaMemcpyAsync(x, c->x, (size_t)c->I * Bn * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    return 0;
}

extern "C" int tms_cuda_backend_batch(tms_backend_t *be, long step, float *x) {
    cuda_ctx_t *c = cuda_ctx(be);
    if (!c) return -1;
    if (batch_impl(c, step, x) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return 0;
}

static int gradient_impl(cuda_ctx_t *c, long step, float *grads, float *loss) {
    cudaCheck(cudaSetDevice(c->device));
    cudaCheck(cudaStreamSynchronize(c->stream));
    tmsCheck(set_step(c, step, step));
    tmsCheck(enqueue_step(c, 0));
    tmsCheck(nan_fill(c, c->loss, (size_t)c->I));
    tmsCheck(loss_reduce(c->loss, c->loss_partial, NULL, c->I, c->B, c->n, c->stream)); // the losses computed
    if (grads)
        cudaCheck(cudaMemcpyAsync(grads, c->grads, c->L.total * sizeof(float), cudaMemcpyDeviceToHost,
                                  c->stream));
    if (loss)
        cudaCheck(cudaMemcpyAsync(loss, c->loss, (size_t)c->I * sizeof(float), cudaMemcpyDeviceToHost,
                                  c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    return 0;
}

extern "C" int tms_cuda_backend_gradient(tms_backend_t *be, long step, float *grads, float *loss) {
    cuda_ctx_t *c = cuda_ctx(be);
    if (!c) return -1;
    if (gradient_impl(c, step, grads, loss) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return 0;
}

typedef struct {
    const char *name;
    float *ptr;
    size_t count;
} named_buffer_t;

static int buffer_list(cuda_ctx_t *c, named_buffer_t *list) {
    const size_t I = (size_t)c->I, Bn = (size_t)c->B * c->n, Bm = (size_t)c->B * c->m;
    const named_buffer_t all[] = {
        {"x", c->x, I * Bn},           {"target", c->target, c->target != c->x ? I * Bn : 0}, // 0: it is x
        {"h", c->h, I * Bm},
        {"y_dy", c->y_dy, I * Bn},     {"dh", c->dh, I * Bm},
        {"loss_partial", c->loss_partial, I * (size_t)c->loss_parts},
        {"loss", c->loss, I},          {"grads", c->grads, c->L.total},
        {"params", c->params, c->L.total}, {"adam_m", c->adam_m, c->L.total},
        {"adam_v", c->adam_v, c->L.total},
    };
    const int count = (int)(sizeof(all) / sizeof(all[0]));
    for (int k = 0; k < count; k++) list[k] = all[k];
    return count;
}

#define WORK_BUFFERS 8 // the first entries of buffer_list: everything the step writes but the state

static int fill_nan_impl(cuda_ctx_t *c) {
    named_buffer_t list[16];
    buffer_list(c, list);
    cudaCheck(cudaSetDevice(c->device));
    for (int k = 0; k < WORK_BUFFERS; k++)
        cudaCheck(cudaMemsetAsync(list[k].ptr, 0xFF, list[k].count * sizeof(float), c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    return 0;
}

extern "C" int tms_cuda_backend_fill_nan(tms_backend_t *be) {
    cuda_ctx_t *c = cuda_ctx(be);
    if (!c) return -1;
    if (fill_nan_impl(c) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return 0;
}

static int count_nonfinite_impl(cuda_ctx_t *c, char *report, size_t reportlen, long *result) {
    named_buffer_t list[16];
    const int count = buffer_list(c, list);
    size_t largest = 0;
    for (int k = 0; k < count; k++)
        if (list[k].count > largest) largest = list[k].count;
    float *host = (float *)malloc(largest * sizeof(float));
    if (!host) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error), "out of host memory (%zu floats)", largest);
        return -1;
    }
    size_t used = 0;
    if (report && reportlen) report[0] = '\0';
    long bad_total = 0;
    for (int k = 0; k < count; k++) {
        const cudaError_t e1 = cudaMemcpyAsync(host, list[k].ptr, list[k].count * sizeof(float),
                                               cudaMemcpyDeviceToHost, c->stream);
        const cudaError_t e2 = cudaStreamSynchronize(c->stream);
        if (e1 != cudaSuccess || e2 != cudaSuccess) free(host);
        cudaCheck(e1);
        cudaCheck(e2);
        long bad = 0;
        for (size_t e = 0; e < list[k].count; e++)
            if (!isfinite(host[e])) bad++;
        bad_total += bad;
        if (report && used < reportlen) {
            const int w = snprintf(report + used, reportlen - used, "%s%s %ld/%zu", k ? ", " : "",
                                   list[k].name, bad, list[k].count);
            if (w > 0) used += (size_t)w;
        }
    }
    free(host);
    *result = bad_total;
    return 0;
}

extern "C" long tms_cuda_backend_count_nonfinite(tms_backend_t *be, char *report, size_t reportlen) {
    cuda_ctx_t *c = cuda_ctx(be);
    if (!c) return -1;
    long result = 0;
    if (cudaSetDevice(c->device) != cudaSuccess || count_nonfinite_impl(c, report, reportlen, &result) != 0) {
        fprintf(stderr, "tms: CUDA backend: %s\n", tms_cuda_error);
        return -1;
    }
    return result;
}
