// fused_train.cuh: the fused path (issue 12). One launch trains every instance for a chunk
// of steps [step_begin, step_end): block b owns instance b, and keeps its parameters, Adam
// moments and the step's gradient in shared memory for the whole chunk; its batch is drawn
// on chip. Nothing but the final state (and the first step's loss) goes back to global
// memory. For small models (host/cuda_path.h has the size rule), where a step of the gemm
// path moves every activation through global memory and launches a dozen kernels for a few
// thousand multiply-adds per instance.
//
// One step of one instance (B rows, in tiles of R rows; R from the size rule):
//   for each tile:
//     draw      x (R, n)      Philox4x32-10 blocks of the tile's elements, the threads
//                             striding over the blocks: element e = row * n + i of step t's
//                             batch is lane e % 4 of block e / 4 of subsequence t, exactly
//                             as host/philox_data.c and sample.cuh draw it (tms_math.h);
//                             feature sets: a second pass over the sets' uniforms
//     rows      a thread per row (striding): z = W x + b1, h = act(z), y = Wd h + b,
//               out = act(y), the row's loss, dy = TMS_MSE_GRAD, dh = Wd^T dy,
//               dz = dh [z > 0]; h, dy, dz stay in shared memory
//     partials  a thread per (parameter, group of GROUP_ROWS rows): the group's sum of the
//               parameter's per-row gradient, rows in order
//     gradient  the owner of each parameter adds the tile's partials, groups in order
//   divergence: the step's loss or any gradient element not finite -> the instance is
//               frozen (diverged = t + 1) with the state it had before t, as the CPU does
//   Adam:       tms_adam_update on every parameter (its owner), this step's constants
// Parameters are owned by thread p % blockDim.x. Every sum has an order fixed by the
// model and the batch alone (rows within a group, groups within a tile, tiles within the
// batch), not by the block size or the thread order, so the result is the same at every
// launch configuration (test_gpu_fused checks two block sizes, and the emulator three
// thread orders).
//
// The per-element formulas are tms_math.h's, shared with the CPU backend and the gemm path:
// the draw (tms_philox_block, tms_uniform_from_u32, tms_independent_value, tms_set_value,
// tms_target_value), TMS_RELU_IF, TMS_MSE_GRAD, tms_loss_scale, tms_adam_update. The per-step
// lr factor and bias corrections come from the host (tms_step_constants, the CPU's own
// function) in the table the gemm path uses.
#pragma once

#include <math.h>
#include "cuda_common.cuh"
#include "adamw.cuh"
#include "cuda_path.h"
#include "tms.h"
#include "tms_math.h"

// The scalars of a fused launch (the pointers are separate arguments, so the emulator
// checks each against the device allocations).
typedef struct {
    int n, m, B, R;             // features, hidden, batch, tile rows
    int P;                      // parameters per instance
    int local[TMS_NTENSORS];    // offset of each tensor in the instance's concatenated parameters
    int tied, hidden_relu, out_relu;
    int task, sets, set_size;
    int kind;                   // TMS_OPT_*
    float beta1, beta2, eps;
    long long step_begin, step_end; // the steps of this launch
    long long table_base;       // the step of table row 0
    long long report_step;      // write this step's loss (before its update) to loss; -1: none
} fused_args_t;

// ----------------------------------------------------------------------------
// device helpers

// The gradient of parameter p (instance-local index) summed over rows [r0, r1) of the tile.
__device__ __forceinline__ float fused_param_grad(const fused_args_t &a, int p, int r0, int r1, const float *x,
                                                  const float *h, const float *dy, const float *dz) {
    const int n = a.n, m = a.m;
    float s = 0.0f;
    if (p < a.local[TMS_T_W] + m * n) { // W[k][i]: encoder dz_k x_i (+ the tied decoder's h_k dy_i)
        const int k = p / n, i = p % n;
        if (a.tied)
            for (int r = r0; r < r1; r++) s += dz[r * m + k] * x[r * n + i] + h[r * m + k] * dy[r * n + i];
        else
            for (int r = r0; r < r1; r++) s += dz[r * m + k] * x[r * n + i];
    } else if (!a.tied && p < a.local[TMS_T_W2] + n * m) { // W2[i][k]: dy_i h_k
        const int q = p - a.local[TMS_T_W2], i = q / m, k = q % m;
        for (int r = r0; r < r1; r++) s += dy[r * n + i] * h[r * m + k];
    } else if (a.local[TMS_T_B1] >= 0 && p >= a.local[TMS_T_B1] && p < a.local[TMS_T_B1] + m) { // b1[k]: dz_k
        const int k = p - a.local[TMS_T_B1];
        for (int r = r0; r < r1; r++) s += dz[r * m + k];
    } else { // b[i]: dy_i
        const int i = p - a.local[TMS_T_B];
        for (int r = r0; r < r1; r++) s += dy[r * n + i];
    }
    return s;
}

// ----------------------------------------------------------------------------
// kernel

// grid (instances), any block size up to 1024; SMEM_FLOATS >= tms_fused_smem_layout(...).total
template <int SMEM_FLOATS>
__global__ void fused_train_kernel1(float *params,                  // (L.total) flat layout
                                    float *adam_m,                  // (L.total)
                                    float *adam_v,                  // (L.total)
                                    adamw_layout_t layout,
                                    const float *importance,        // (I, n)
                                    const unsigned long long *keys, // (I) Philox keys
                                    const float *density,           // (I)
                                    const float *inst_lr,           // (I) peak lr
                                    const float *inst_weight_decay, // (I)
                                    const tms_step_device_t *table, // (rows) row r: step table_base + r
                                    long long *diverged,            // (I) 0, or 1 + the step it diverged at
                                    float *loss,                    // (I) the report step's loss
                                    fused_args_t a) {
    __shared__ float smem[SMEM_FLOATS];
    __shared__ int bad;         // a step's loss or gradient was not finite (set once: the block
                                // then stops, so it never needs resetting)
    __shared__ double step_loss; // the step's loss sum, owned by thread 0
    const int inst = blockIdx.x, tid = threadIdx.x, T = blockDim.x;
    const int n = a.n, m = a.m, B = a.B, R = a.R, P = a.P;
    const int groups_max = R / TMS_FUSED_GROUP_ROWS;
    if (diverged[inst] != 0) { // frozen before this chunk: nothing to train, NaN to report
        if (tid == 0 && a.report_step >= a.step_begin && a.report_step < a.step_end) loss[inst] = NAN;
        return;
    }
    const tms_fused_smem_t S = tms_fused_smem_layout(n, m, P, R);
    float *p_s = smem + S.params, *m_s = smem + S.adam_m, *v_s = smem + S.adam_v, *g_s = smem + S.grad;
    float *partial = smem + S.partial, *x_s = smem + S.x, *dy_s = smem + S.dy, *h_s = smem + S.h, *dz_s = smem + S.dz;
    float *row_loss = smem + S.row_loss, *imp_s = smem + S.importance;

    // ---- load the instance's state (owner p % T; the barrier below publishes it)
    for (int p = tid; p < P; p += T) {
        const size_t e = adamw_layout_element(layout, inst, p);
        p_s[p] = params[e];
        m_s[p] = adam_m[e];
        v_s[p] = adam_v[e];
    }
    for (int i = tid; i < n; i += T) imp_s[i] = importance[(size_t)inst * n + i];
    const unsigned long long key = keys[inst];
    const float dens = density[inst];
    const float scale = tms_loss_scale(B, n);
    const float *W = p_s + a.local[TMS_T_W];                                 // (m, n)
    const float *W2 = a.tied ? NULL : p_s + a.local[TMS_T_W2];               // (n, m)
    const float *b1 = a.local[TMS_T_B1] >= 0 ? p_s + a.local[TMS_T_B1] : NULL; // (m)
    const float *b = a.local[TMS_T_B] >= 0 ? p_s + a.local[TMS_T_B] : NULL;    // (n)
    if (tid == 0) bad = 0;
    __syncthreads();

    for (long long t = a.step_begin; t < a.step_end; t++) {
        const unsigned long long subsequence = (unsigned long long)t;
        for (int p = tid; p < P; p += T) g_s[p] = 0.0f;
        if (tid == 0) step_loss = 0.0;
        for (int r0 = 0; r0 < B; r0 += R) {
            const int rows = B - r0 < R ? B - r0 : R;
            // ---- draw the tile: elements [e0, e1) of the step's (B, n) grid; e0 = r0 n is a
            // multiple of 4 (R is a multiple of 16), so the tile starts on a Philox block
            const unsigned long long e0 = (unsigned long long)r0 * n, e1 = e0 + (unsigned long long)rows * n;
            for (unsigned long long q = e0 / 4 + tid; 4 * q < e1; q += T) {
                const tms_u32x4 r4 = tms_philox_block(key, subsequence, q);
                for (int l = 0; l < 4; l++) {
                    const unsigned long long e = 4 * q + l;
                    if (e >= e1) break;
                    const float u = tms_uniform_from_u32(r4.v[l]);
                    x_s[e - e0] = a.sets == TMS_SETS_NONE ? tms_independent_value(u, dens, a.task) : u;
                }
            }
            if (a.sets != TMS_SETS_NONE) {
                __syncthreads(); // the raw uniforms are in x_s
                // set-element s = row * G + g of subsequence t + TMS_SUBSEQ_SETS; s0 = r0 G is a
                // multiple of 4 too
                const int k = a.set_size, G = n / k;
                const unsigned long long s0 = (unsigned long long)r0 * G, s1 = s0 + (unsigned long long)rows * G;
                for (unsigned long long q = s0 / 4 + tid; 4 * q < s1; q += T) {
                    const tms_u32x4 r4 = tms_philox_block(key, subsequence + TMS_SUBSEQ_SETS, q);
                    for (int l = 0; l < 4; l++) {
                        const unsigned long long s = 4 * q + l;
                        if (s >= s1) break;
                        const float v = tms_uniform_from_u32(r4.v[l]);
                        const int row = (int)(s / G - (unsigned long long)r0), g = (int)(s % G);
                        for (int j = 0; j < k; j++) {
                            float *xe = x_s + row * n + g * k + j;
                            *xe = tms_set_value(*xe, v, dens, a.task, a.sets, k, j);
                        }
                    }
                }
            }
            __syncthreads(); // the tile's x is complete

            // ---- rows: forward, loss, backward to dz
            for (int r = tid; r < rows; r += T) {
                const float *xr = x_s + r * n;
                float *hr = h_s + r * m, *dyr = dy_s + r * n, *dzr = dz_s + r * m;
                for (int kk = 0; kk < m; kk++) {
                    float z = b1 ? b1[kk] : 0.0f;
                    for (int i = 0; i < n; i++) z += W[kk * n + i] * xr[i];
                    hr[kk] = TMS_RELU_IF(a.hidden_relu, z); // h > 0 exactly where z > 0: the mask
                }
                float lsum = 0.0f;
                for (int i = 0; i < n; i++) {
                    float y = b ? b[i] : 0.0f;
                    if (a.tied)
                        for (int kk = 0; kk < m; kk++) y += W[kk * n + i] * hr[kk];
                    else
                        for (int kk = 0; kk < m; kk++) y += W2[i * m + kk] * hr[kk];
                    const float out = TMS_RELU_IF(a.out_relu, y);
                    const float target = tms_target_value(xr[i], a.task);
                    const float diff = target - out;
                    lsum += imp_s[i] * (diff * diff);
                    const float c = 2 * scale * imp_s[i];
                    dyr[i] = TMS_MSE_GRAD(c, out, target, y, a.out_relu);
                }
                row_loss[r] = lsum;
                for (int kk = 0; kk < m; kk++) {
                    float dh = 0.0f;
                    if (a.tied)
                        for (int i = 0; i < n; i++) dh += W[kk * n + i] * dyr[i];
                    else
                        for (int i = 0; i < n; i++) dh += W2[i * m + kk] * dyr[i];
                    dzr[kk] = a.hidden_relu ? (hr[kk] > 0 ? dh : 0.0f) : dh;
                }
            }
            __syncthreads(); // h, dy, dz and the row losses of the tile are complete

            // ---- partial sums: (parameter, group of rows)
            const int groups = (rows + TMS_FUSED_GROUP_ROWS - 1) / TMS_FUSED_GROUP_ROWS;
            for (int w = tid; w < P * groups; w += T) {
                const int p = w / groups, grp = w % groups;
                const int ra = grp * TMS_FUSED_GROUP_ROWS;
                const int rb = ra + TMS_FUSED_GROUP_ROWS < rows ? ra + TMS_FUSED_GROUP_ROWS : rows;
                partial[p * groups_max + grp] = fused_param_grad(a, p, ra, rb, x_s, h_s, dy_s, dz_s);
            }
            __syncthreads(); // the partials are complete; x, h, dy, dz are free for the next tile
            // ---- the owners add the tile's partials, groups in order; thread 0 the loss
            for (int p = tid; p < P; p += T) {
                float s = 0.0f;
                for (int grp = 0; grp < groups; grp++) s += partial[p * groups_max + grp];
                g_s[p] += s;
            }
            if (tid == 0) {
                float s = 0.0f;
                for (int r = 0; r < rows; r++) s += row_loss[r];
                step_loss += (double)s;
            }
            // the next tile's draw writes x_s only (read by the partials, done); its rows
            // write row_loss and partial only after its own barrier, when these sums are done
        }
        // ---- divergence: the loss (thread 0) or a gradient element (its owner) not finite
        int finite = 1;
        if (tid == 0) {
            const double mean = step_loss / ((double)B * (double)n);
            if (t == a.report_step) loss[inst] = (float)mean;
            finite = isfinite(mean) != 0;
        }
        for (int p = tid; p < P; p += T) finite &= isfinite(g_s[p]) != 0;
        if (!finite) atomicMax(&bad, 1); // an OR over the block (no same-address plain writes)
        __syncthreads(); // bad is final
        if (bad) {
            if (tid == 0) diverged[inst] = t + 1; // frozen with the state it had before step t
            break;
        }

        // ---- Adam / AdamW, each parameter by its owner
        const tms_step_device_t c = table[t - a.table_base];
        tms_adam_step_t st;
        st.lr = (float)((double)inst_lr[inst] * c.lr_factor);
        st.beta1 = a.beta1;
        st.beta2 = a.beta2;
        st.eps = a.eps;
        st.weight_decay = inst_weight_decay[inst];
        st.bias1 = c.bias1;
        st.bias2 = c.bias2;
        st.kind = a.kind;
        for (int p = tid; p < P; p += T) tms_adam_update(&p_s[p], &m_s[p], &v_s[p], g_s[p], &st);
        // no barrier: the next step reads the parameters only after its first tile's draw
        // barrier, which every thread reaches after its updates
    }

    // ---- store the state (each parameter by its owner, who last wrote it)
    for (int p = tid; p < P; p += T) {
        const size_t e = adamw_layout_element(layout, inst, p);
        params[e] = p_s[p];
        adam_m[e] = m_s[p];
        adam_v[e] = v_s[p];
    }
}

// ----------------------------------------------------------------------------
// launcher

// Train every instance for steps [step_begin, step_end) (one window of the constants
// table: table row r holds step table_base + r). `threads`: the block size.
static inline int fused_train(float *params, float *adam_m, float *adam_v, const tms_layout_t *L,
                              const tms_problem_t *P, const tms_fused_plan_t *plan, int threads,
                              const float *importance, const unsigned long long *keys, const float *density,
                              const float *inst_lr, const float *inst_weight_decay,
                              const tms_step_device_t *table, long long table_base, long long *diverged,
                              float *loss, long long step_begin, long long step_end, long long report_step,
                              cudaStream_t stream) {
    const tms_model_t *M = &P->model;
    adamw_layout_t layout;
    fused_args_t a;
    memset(&a, 0, sizeof(a));
    int local = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        layout.offset[t] = L->offset[t];
        layout.per_instance[t] = L->present[t] ? L->per_instance[t] : 0;
        a.local[t] = L->present[t] ? local : -1;
        local += (int)layout.per_instance[t];
    }
    a.n = M->n;
    a.m = M->m;
    a.B = P->batch_size;
    a.R = plan->tile_rows;
    a.P = plan->params;
    a.tied = M->decoder == TMS_DECODER_TIED;
    a.hidden_relu = M->hidden_act == TMS_ACT_RELU;
    a.out_relu = M->output_act == TMS_ACT_RELU;
    a.task = P->data.task;
    a.sets = P->data.sets;
    a.set_size = P->data.set_size > 0 ? P->data.set_size : 1;
    a.kind = P->optimizer;
    a.beta1 = P->beta1;
    a.beta2 = P->beta2;
    a.eps = P->eps;
    a.step_begin = step_begin;
    a.step_end = step_end;
    a.table_base = table_base;
    a.report_step = report_step;
    if (local != plan->params || threads < 1 || threads > 1024) {
        snprintf(tms_cuda_error, sizeof(tms_cuda_error),
                 "fused_train: bad plan (%d parameters, layout %d) or block size %d", plan->params, local, threads);
        return -1;
    }
    const unsigned grid = (unsigned)L->instances;
    switch (plan->smem_floats) {
    case TMS_FUSED_SMEM_CLASS0:
        fused_train_kernel1<TMS_FUSED_SMEM_CLASS0><<<grid, threads, 0, stream>>>(
            params, adam_m, adam_v, layout, importance, keys, density, inst_lr, inst_weight_decay, table, diverged,
            loss, a);
        break;
    case TMS_FUSED_SMEM_CLASS1:
        fused_train_kernel1<TMS_FUSED_SMEM_CLASS1><<<grid, threads, 0, stream>>>(
            params, adam_m, adam_v, layout, importance, keys, density, inst_lr, inst_weight_decay, table, diverged,
            loss, a);
        break;
    case TMS_FUSED_SMEM_CLASS2:
        fused_train_kernel1<TMS_FUSED_SMEM_CLASS2><<<grid, threads, 0, stream>>>(
            params, adam_m, adam_v, layout, importance, keys, density, inst_lr, inst_weight_decay, table, diverged,
            loss, a);
        break;
    case TMS_FUSED_SMEM_FLOATS_MAX:
        fused_train_kernel1<TMS_FUSED_SMEM_FLOATS_MAX><<<grid, threads, 0, stream>>>(
            params, adam_m, adam_v, layout, importance, keys, density, inst_lr, inst_weight_decay, table, diverged,
            loss, a);
        break;
    default:
        snprintf(tms_cuda_error, sizeof(tms_cuda_error), "fused_train: no kernel for %d floats of shared memory",
                 plan->smem_floats);
        return -1;
    }
    cudaCheck(cudaGetLastError());
    return 0;
}
