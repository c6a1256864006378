// cpu_backend.c: the CPU backend. Instances train in parallel (OpenMP, one instance
// per task); each instance runs its steps alone, in a fixed order, so its result
// does not depend on the thread count. A batch is processed in tiles of rows that
// fit in cache, drawn, run forward and backward one tile at a time.
//
// Two paths compute a tile (tms_blas_path decides by the model's shape): small models run
// the loops of cpu_model.inc, which accumulate every tile's gradient straight into the
// instance's; larger ones run SGEMM and sparse products (cpu_blas.c) on tiles of
// TMS_BLAS_TILE rows, each tile's gradient computed on its own and the tiles' gradients
// added in tile order. On that path, when there are fewer instances than threads, the
// threads share one instance's tiles instead (split mode): the same tiles, the same sums in
// the same order, so the result is the same bits at any thread count on both paths.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tms.h"
#include "cpu_backend.h"
#include "cpu_blas.h"
#include "sysmem.h"

typedef struct {
    float *x, *z, *h, *y, *out, *dy, *dh; // (tile, n) or (tile, m)
    float *target;                        // (tile, n): the abs task's |x|; NULL when the target is x
    float *decT;                          // (m, n)
    // BLAS path only
    tms_sparse_x_t sx;                    // x's nonzeros
    float *gtile;                         // (one instance's parameters): a tile's gradient
} tile_scratch_t;

typedef struct {
    tms_problem_t P;
    tms_layout_t L;
    float *params, *grads, *adam_m, *adam_v; // flat layout
    int threads;
    int tile;                                // rows per tile
    tile_scratch_t *scratch;                 // one per thread
    long *diverged;                          // (instances) tms_instance_t.diverged_step convention
    int blas;                                // the model runs on the BLAS path
    int split;                               // BLAS path with fewer instances than threads: the
                                             // threads share each instance's tiles
    float *tile_grads;                       // split: (tiles, one instance's parameters)
    double *tile_loss;                       // split: (tiles)
} cpu_ctx_t;

int tms_cpu_tile_rows(const tms_model_t *M, int batch) {
    if (tms_blas_path(M)) return TMS_BLAS_TILE < batch ? TMS_BLAS_TILE : batch;
    int tile = 8192 / (M->n + M->m);
    if (tile < 16) tile = 16;
    return tile < batch ? tile : batch;
}

// floats of one instance's parameters (every tensor)
static size_t instance_floats(const tms_layout_t *L) {
    size_t f = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) f += L->per_instance[t];
    return f;
}

static void scratch_free(tile_scratch_t *s) {
    free(s->x); free(s->z); free(s->h); free(s->y); free(s->out); free(s->dy); free(s->dh); free(s->decT);
    free(s->target); free(s->gtile);
    tms_sparse_free(&s->sx);
}

static int scratch_alloc(tile_scratch_t *s, const tms_model_t *M, const tms_data_t *D, int tile) {
    size_t tn = (size_t)tile * M->n, tm = (size_t)tile * M->m;
    memset(s, 0, sizeof(*s));
    s->x = malloc(tn * sizeof(float)); s->y = malloc(tn * sizeof(float));
    s->out = malloc(tn * sizeof(float)); s->dy = malloc(tn * sizeof(float));
    s->z = malloc(tm * sizeof(float)); s->h = malloc(tm * sizeof(float)); s->dh = malloc(tm * sizeof(float));
    s->decT = malloc((size_t)M->m * M->n * sizeof(float));
    if (tms_data_has_target(D)) s->target = malloc(tn * sizeof(float));
    if (!s->x || !s->y || !s->out || !s->dy || !s->z || !s->h || !s->dh || !s->decT ||
        (tms_data_has_target(D) && !s->target)) {
        scratch_free(s);
        return -1;
    }
    if (tms_blas_path(M)) {
        tms_layout_t L1;
        tms_layout_init(&L1, M, 1);
        s->gtile = malloc(instance_floats(&L1) * sizeof(float));
        if (!s->gtile || tms_sparse_alloc(&s->sx, M->n, M->m, tile)) {
            scratch_free(s);
            return -1;
        }
    }
    return 0;
}

// Bytes scratch_alloc takes for one thread.
static double scratch_bytes(const tms_model_t *M, const tms_data_t *D, int tile) {
    const int n = M->n, m = M->m;
    // x, y, out, dy (tile, n), z, h, dh (tile, m), decT (m, n), target (tile, n)
    const double tn = 4.0 + tms_data_has_target(D);
    double bytes = (tn * tile * n + 3.0 * tile * m + (double)m * n) * sizeof(float);
    if (tms_blas_path(M)) {
        tms_layout_t L1;
        tms_layout_init(&L1, M, 1);
        bytes += (double)instance_floats(&L1) * sizeof(float) + (double)tms_sparse_bytes(n, m, tile);
    }
    return bytes;
}

// One tile of instance i (rows [r0, r0 + nr) of the batch of `subsequence`) on the BLAS
// path: its loss sum, and if g_tile is not NULL its gradient, written (not added) there.
static double blas_tile(const tms_problem_t *P, const tms_view_t *p, const float *decT, int i,
                        uint64_t subsequence, long r0, int nr, float scale, tile_scratch_t *s,
                        float *g_tile) {
    const tms_model_t *M = &P->model;
    const float *importance = P->importance + (size_t)i * M->n;
    tms_sample_tile(&P->data, P->inst[i].key, subsequence, M->n, r0, nr, P->inst[i].density, s->x, s->target);
    const float *target = s->target ? s->target : s->x;
    tms_sparse_tile(M, s->x, nr, &s->sx);
    double loss = tms_blas_forward(M, p, decT, importance, s->x, target, nr, s->z, s->h, s->y, s->out, &s->sx);
    if (g_tile) {
        tms_layout_t L1;
        tms_layout_init(&L1, M, 1);
        memset(g_tile, 0, instance_floats(&L1) * sizeof(float));
        tms_view_t g = tms_view(&L1, g_tile, 0);
        tms_blas_backward(M, p, decT, importance, s->x, target, nr, s->z, s->y, s->h, s->out, scale,
                          s->dy, s->dh, &g, &s->sx);
    }
    return loss;
}

// Add a tile's gradient (one instance's parameters, layout of one instance) into
// instance i's slice of grads.
static void add_tile_grad(const tms_layout_t *L, float *grads, int i, const float *g_tile) {
    size_t o = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        float *d = grads + L->offset[t] + L->per_instance[t] * (size_t)i;
        for (size_t e = 0; e < L->per_instance[t]; e++) d[e] += g_tile[o + e];
        o += L->per_instance[t];
    }
}

// ----------------------------------------------------------------------------
// one instance

// Loss (mean over the batch and features) of instance i on the batch of step
// `subsequence`, with `rows` samples; if grads is not NULL, also accumulate the
// gradient of that loss into it.
static double instance_pass(const tms_problem_t *P, const tms_layout_t *L, float *params,
                            float *grads, int i, uint64_t subsequence, long rows, int tile,
                            tile_scratch_t *s) {
    const tms_model_t *M = &P->model;
    tms_view_t p = tms_view(L, params, i);
    const float *importance = P->importance + (size_t)i * M->n;
    const float *decT = p.W;
    if (M->decoder == TMS_DECODER_UNTIED) {
        tms_decoder_T(M, &p, s->decT);
        decT = s->decT;
    }
    tms_view_t g;
    if (grads) g = tms_view(L, grads, i);
    const float scale = tms_loss_scale(rows, M->n);
    double loss = 0.0;
    if (tms_blas_path(M)) {
        for (long r0 = 0; r0 < rows; r0 += tile) {
            int nr = (int)(rows - r0 < tile ? rows - r0 : tile);
            loss += blas_tile(P, &p, decT, i, subsequence, r0, nr, scale, s, grads ? s->gtile : NULL);
            if (grads) add_tile_grad(L, grads, i, s->gtile);
        }
        return loss / ((double)rows * (double)M->n);
    }
    for (long r0 = 0; r0 < rows; r0 += tile) {
        int nr = (int)(rows - r0 < tile ? rows - r0 : tile);
        tms_sample_tile(&P->data, P->inst[i].key, subsequence, M->n, r0, nr, P->inst[i].density, s->x, s->target);
        const float *target = s->target ? s->target : s->x; // the sparse task's target is x itself
        loss += tms_forward(M, &p, decT, importance, s->x, target, nr, s->z, s->h, s->y, s->out);
        if (grads)
            tms_backward(M, &p, decT, importance, s->x, target, nr, s->z, s->y, s->h, s->out, scale, s->dy, s->dh, &g);
    }
    return loss / ((double)rows * (double)M->n);
}

static void zero_instance(const tms_layout_t *L, float *buffer, int i) {
    for (int t = 0; t < TMS_NTENSORS; t++)
        if (L->present[t])
            memset(buffer + L->offset[t] + L->per_instance[t] * (size_t)i, 0, L->per_instance[t] * sizeof(float));
}

static int instance_finite(const tms_layout_t *L, const float *buffer, int i) {
    int finite = 1;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        const float *p = buffer + L->offset[t] + L->per_instance[t] * (size_t)i;
        for (size_t e = 0; e < L->per_instance[t]; e++) finite &= isfinite(p[e]) != 0;
    }
    return finite;
}

// ----------------------------------------------------------------------------
// backend interface

// The optimizer constants of instance i at step t (its learning rate under the schedule,
// the bias corrections, its weight decay): one place for both training paths below.
static tms_adam_step_t adam_step_of(const tms_problem_t *P, int i, long t) {
    double lr_factor;
    tms_adam_step_t st;
    tms_step_constants(P, t, &lr_factor, &st.bias1, &st.bias2);
    st.lr = (float)(P->inst[i].lr * lr_factor);
    st.beta1 = P->beta1; st.beta2 = P->beta2; st.eps = P->eps;
    st.weight_decay = P->inst[i].weight_decay;
    st.kind = P->optimizer;
    return st;
}

// Split mode: the instances one after another, each step's tiles shared among the threads.
// The same tiles, sums and order as instance_pass on the BLAS path (the gradient starts at
// zero and gets each tile's added in tile order; the loss likewise), then the same
// divergence check and optimiser step: the same bits as one thread running cpu_train.
static void split_train(cpu_ctx_t *c, long step_begin, long step_end, float *loss_first) {
    const tms_problem_t *P = &c->P;
    const tms_model_t *M = &P->model;
    const int tile = c->tile, tiles = (P->batch_size + tile - 1) / tile;
    const float scale = tms_loss_scale(P->batch_size, M->n);
    tms_layout_t L1;
    tms_layout_init(&L1, M, 1);
    const size_t per = instance_floats(&L1);
    for (int i = 0; i < P->instances; i++) {
        if (c->diverged[i]) {
            loss_first[i] = NAN;
            continue;
        }
        for (long t = step_begin; t < step_end; t++) {
            tms_view_t p = tms_view(&c->L, c->params, i);
            const float *decT = p.W;
            if (M->decoder == TMS_DECODER_UNTIED) {
                tms_decoder_T(M, &p, c->scratch[0].decT); // read-only while the tiles run
                decT = c->scratch[0].decT;
            }
            #pragma omp parallel for schedule(dynamic, 1) num_threads(c->threads)
            for (int j = 0; j < tiles; j++) {
                const long r0 = (long)j * tile;
                const int nr = (int)(P->batch_size - r0 < tile ? P->batch_size - r0 : tile);
                c->tile_loss[j] = blas_tile(P, &p, decT, i, (uint64_t)t, r0, nr, scale,
                                            &c->scratch[omp_get_thread_num()], c->tile_grads + (size_t)j * per);
            }
            double loss = 0.0;
            for (int j = 0; j < tiles; j++) loss += c->tile_loss[j];
            loss /= (double)P->batch_size * (double)M->n;
            if (t == step_begin) loss_first[i] = (float)loss;
            int finite = isfinite(loss) != 0;
            size_t o = 0;
            for (int ts = 0; ts < TMS_NTENSORS; ts++) {
                float *d = c->grads + c->L.offset[ts] + c->L.per_instance[ts] * (size_t)i;
                const float *src = c->tile_grads + o;
                const long count = (long)c->L.per_instance[ts];
                #pragma omp parallel for schedule(static) num_threads(c->threads) reduction(&& : finite)
                for (long e = 0; e < count; e++) {
                    float acc = 0.0f;
                    for (int j = 0; j < tiles; j++) acc += src[(size_t)j * per + e];
                    d[e] = acc;
                    finite = finite && isfinite(acc);
                }
                o += c->L.per_instance[ts];
            }
            if (!finite) {
                c->diverged[i] = t + 1;
                break;
            }
            const tms_adam_step_t st = adam_step_of(P, i, t);
            // tms_adamw_step's update, element by element (each element alone: any split of
            // the elements among threads gives the same bits)
            for (int ts = 0; ts < TMS_NTENSORS; ts++) {
                const size_t base = c->L.offset[ts] + c->L.per_instance[ts] * (size_t)i;
                float *pp = c->params + base, *gg = c->grads + base, *mm = c->adam_m + base, *vv = c->adam_v + base;
                const long count = (long)c->L.per_instance[ts];
                #pragma omp parallel for schedule(static) num_threads(c->threads)
                for (long e = 0; e < count; e++) tms_adam_update(&pp[e], &mm[e], &vv[e], gg[e], &st);
            }
        }
    }
}

static int cpu_train(tms_backend_t *be, long step_begin, long step_end, float *loss_first) {
    cpu_ctx_t *c = be->ctx;
    const tms_problem_t *P = &c->P;
    if (c->split) {
        split_train(c, step_begin, step_end, loss_first);
        return 0;
    }
    #pragma omp parallel for schedule(dynamic, 1) num_threads(c->threads)
    for (int i = 0; i < P->instances; i++) {
        tile_scratch_t *s = &c->scratch[omp_get_thread_num()];
        if (c->diverged[i]) {
            loss_first[i] = NAN;
            continue;
        }
        for (long t = step_begin; t < step_end; t++) {
            zero_instance(&c->L, c->grads, i);
            double loss = instance_pass(P, &c->L, c->params, c->grads, i, (uint64_t)t, P->batch_size, c->tile, s);
            if (t == step_begin) loss_first[i] = (float)loss;
            if (!isfinite(loss) || !instance_finite(&c->L, c->grads, i)) {
                // diverged: freeze the instance with the parameters it had at step t
                c->diverged[i] = t + 1;
                break;
            }
            const tms_adam_step_t st = adam_step_of(P, i, t);
            tms_adamw_step(&c->L, i, c->params, c->grads, c->adam_m, c->adam_v, &st);
        }
    }
    return 0;
}

static int cpu_get_state(tms_backend_t *be, float *params, float *adam_m, float *adam_v) {
    cpu_ctx_t *c = be->ctx;
    size_t bytes = c->L.total * sizeof(float);
    if (params) memcpy(params, c->params, bytes);
    if (adam_m) memcpy(adam_m, c->adam_m, bytes);
    if (adam_v) memcpy(adam_v, c->adam_v, bytes);
    return 0;
}

static int cpu_get_diverged(tms_backend_t *be, long *diverged_step) {
    cpu_ctx_t *c = be->ctx;
    memcpy(diverged_step, c->diverged, (size_t)c->P.instances * sizeof(long));
    return 0;
}

static int cpu_evaluate(tms_backend_t *be, long samples, double *loss, double *loss_se) {
    cpu_ctx_t *c = be->ctx;
    return tms_cpu_eval_loss(&c->P, &c->L, c->params, samples, c->threads, loss, loss_se);
}

static void cpu_destroy(tms_backend_t *be) {
    cpu_ctx_t *c = be->ctx;
    if (!c) return;
    if (c->scratch)
        for (int t = 0; t < c->threads; t++) scratch_free(&c->scratch[t]);
    free(c->scratch);
    free(c->params); free(c->grads); free(c->adam_m); free(c->adam_v); free(c->diverged);
    free(c->tile_grads); free(c->tile_loss);
    free(c);
    be->ctx = NULL;
}

// Threads the backend runs, from those asked for (0: every core): one per instance at most,
// except on the BLAS path with fewer instances than threads, where the threads share each
// instance's tiles (*split = 1), as many as there are tiles at most.
static int backend_threads(const tms_problem_t *P, int threads, int *split) {
    if (threads <= 0) threads = omp_get_max_threads();
    *split = 0;
    if (tms_blas_path(&P->model) && P->instances < threads) {
        const int tile = tms_cpu_tile_rows(&P->model, P->batch_size);
        const int tiles = (P->batch_size + tile - 1) / tile;
        if (tiles > 1) {
            *split = 1;
            return threads < tiles ? threads : tiles;
        }
    }
    if (threads > P->instances) threads = P->instances;
    return threads < 1 ? 1 : threads;
}

int tms_cpu_backend_create(tms_backend_t *be, const tms_problem_t *P, const tms_layout_t *L,
                           const float *params, const float *adam_m, const float *adam_v,
                           int threads, char *err, size_t errlen) {
    memset(be, 0, sizeof(*be));
    cpu_ctx_t *c = calloc(1, sizeof(*c));
    if (!c) { snprintf(err, errlen, "out of memory creating the CPU backend"); return -1; }
    be->ctx = c;
    be->name = "cpu";
    be->train = cpu_train;
    be->get_state = cpu_get_state;
    be->get_diverged = cpu_get_diverged;
    be->evaluate = cpu_evaluate;
    be->destroy = cpu_destroy;
    c->P = *P; // shallow: inst and importance stay owned by the caller
    c->L = *L;
    tms_blas_init();
    c->blas = tms_blas_path(&P->model);
    c->threads = backend_threads(P, threads, &c->split);
    c->tile = tms_cpu_tile_rows(&P->model, P->batch_size);
    snprintf(be->device, sizeof(be->device), "CPU, %d thread%s", c->threads, c->threads == 1 ? "" : "s");
    // all of it up front, against what this process may still allocate: a run too big for
    // the machine, its cgroup (Slurm) or ulimit -v fails here, not OOM-killed mid-training
    const char *limit;
    size_t need = tms_cpu_backend_bytes(P, L, c->threads), avail = tms_memory_available(&limit);
    if (need > avail) {
        char a[32], b[32];
        tms_format_bytes(a, sizeof(a), (double)need);
        tms_format_bytes(b, sizeof(b), (double)avail);
        snprintf(err, errlen, "not enough memory: the CPU backend needs %s for %d instances of n=%d, m=%d "
                 "(parameters, gradients, Adam moments, scratch for %d threads) but %s leaves %s; train fewer "
                 "instances at a time (--shard K/N) or a smaller model", a, P->instances, P->model.n, P->model.m,
                 c->threads, limit, b);
        free(c);
        be->ctx = NULL;
        return -1;
    }
    size_t bytes = L->total * sizeof(float);
    c->params = malloc(bytes); c->grads = calloc(L->total, sizeof(float));
    c->adam_m = malloc(bytes); c->adam_v = malloc(bytes);
    c->scratch = calloc((size_t)c->threads, sizeof(tile_scratch_t));
    c->diverged = malloc((size_t)(P->instances > 0 ? P->instances : 1) * sizeof(long));
    if (!c->params || !c->grads || !c->adam_m || !c->adam_v || !c->scratch || !c->diverged) goto oom;
    if (c->split) {
        tms_layout_t L1;
        tms_layout_init(&L1, &P->model, 1);
        const int tiles = (P->batch_size + c->tile - 1) / c->tile;
        c->tile_grads = malloc((size_t)tiles * instance_floats(&L1) * sizeof(float));
        c->tile_loss = malloc((size_t)tiles * sizeof(double));
        if (!c->tile_grads || !c->tile_loss) goto oom;
    }
    for (int i = 0; i < P->instances; i++) c->diverged[i] = P->inst[i].diverged_step;
    for (int t = 0; t < c->threads; t++)
        if (scratch_alloc(&c->scratch[t], &P->model, &P->data, c->tile)) goto oom;
    memcpy(c->params, params, bytes);
    memcpy(c->adam_m, adam_m, bytes);
    memcpy(c->adam_v, adam_v, bytes);
    return 0;
oom:
    snprintf(err, errlen, "out of memory creating the CPU backend (%zu parameters)", L->total);
    cpu_destroy(be);
    return -1;
}

size_t tms_cpu_backend_bytes(const tms_problem_t *P, const tms_layout_t *L, int threads) {
    int split;
    threads = backend_threads(P, threads, &split);
    int tile = tms_cpu_tile_rows(&P->model, P->batch_size);
    // params, grads, adam_m, adam_v
    double bytes = 4.0 * (double)L->total * sizeof(float);
    bytes += threads * scratch_bytes(&P->model, &P->data, tile) + (double)P->instances * sizeof(long) +
             threads * sizeof(tile_scratch_t);
    if (split) { // every tile's gradient and loss
        tms_layout_t L1;
        tms_layout_init(&L1, &P->model, 1);
        const int tiles = (P->batch_size + tile - 1) / tile;
        bytes += (double)tiles * ((double)instance_floats(&L1) * sizeof(float) + sizeof(double));
    }
    // the final evaluation's scratch (its tile can be larger than training's) and per-sample losses
    int eval_tile = tms_cpu_tile_rows(&P->model, 1 << 30);
    bytes += threads * (scratch_bytes(&P->model, &P->data, eval_tile) + eval_tile * sizeof(double));
    return bytes >= (double)SIZE_MAX ? SIZE_MAX : (size_t)bytes;
}

// ----------------------------------------------------------------------------
// evaluation and one-off gradients, used by the run driver and the tests

// Instance i's loss on `samples` rows of the evaluation subsequence, as instance_pass
// computes it (the mean of tms_forward's sums), and the standard error of that mean: the
// sample standard deviation of the per-sample loss q_r = (1/n) sum_f I_f (t_f - x'_f)^2,
// over sqrt(samples). q_r is summed in double from the outputs tms_forward leaves in s->out.
static double instance_eval(const tms_problem_t *P, const tms_layout_t *L, const float *params, int i,
                            long samples, int tile, tile_scratch_t *s, double *q, double *se) {
    const tms_model_t *M = &P->model;
    const int n = M->n;
    tms_view_t p = tms_view(L, (float *)params, i);
    const float *importance = P->importance + (size_t)i * n;
    const float *decT = p.W;
    if (M->decoder == TMS_DECODER_UNTIED) {
        tms_decoder_T(M, &p, s->decT);
        decT = s->decT;
    }
    double loss = 0.0, sum_q = 0.0, sum_q2 = 0.0;
    for (long r0 = 0; r0 < samples; r0 += tile) {
        int nr = (int)(samples - r0 < tile ? samples - r0 : tile);
        tms_sample_tile(&P->data, P->inst[i].key, TMS_SUBSEQ_EVAL, n, r0, nr, P->inst[i].density, s->x, s->target);
        const float *target = s->target ? s->target : s->x;
        if (tms_blas_path(M)) {
            tms_sparse_tile(M, s->x, nr, &s->sx);
            loss += tms_blas_forward(M, &p, decT, importance, s->x, target, nr, s->z, s->h, s->y, s->out, &s->sx);
        } else {
            loss += tms_forward(M, &p, decT, importance, s->x, target, nr, s->z, s->h, s->y, s->out);
        }
        // per-sample losses q (tile), accumulated feature by feature
        for (int r = 0; r < nr; r++) q[r] = 0.0;
        for (int f = 0; f < n; f++) {
            const float *o = s->out + (size_t)f * nr, *t = target + (size_t)f * nr;
            const double w = importance[f];
            for (int r = 0; r < nr; r++) {
                double d = (double)t[r] - (double)o[r];
                q[r] += w * d * d;
            }
        }
        for (int r = 0; r < nr; r++) {
            double qr = q[r] / n;
            sum_q += qr;
            sum_q2 += qr * qr;
        }
    }
    if (se) {
        // sample variance from the sums: both are O(samples * q^2) in double, far above the
        // rounding that the subtraction loses for any samples tms allows (<= 2^28)
        double mean_q = sum_q / (double)samples;
        double var = samples > 1 ? (sum_q2 - sum_q * mean_q) / (double)(samples - 1) : 0.0;
        *se = var > 0.0 ? sqrt(var / (double)samples) : 0.0;
    }
    return loss / ((double)samples * (double)n);
}

int tms_cpu_eval_loss(const tms_problem_t *P, const tms_layout_t *L, const float *params,
                      long samples, int threads, double *loss, double *loss_se) {
    int tile = tms_cpu_tile_rows(&P->model, (int)(samples < 1L << 30 ? samples : 1L << 30));
    tms_blas_init();
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads > P->instances) threads = P->instances > 0 ? P->instances : 1;
    // every thread's scratch allocated up front, so a failure is known before any work
    // (a thread leaving a worksharing loop early would be undefined behaviour)
    tile_scratch_t *s = calloc((size_t)threads, sizeof(tile_scratch_t));
    double *q = malloc((size_t)threads * tile * sizeof(double)); // (threads, tile) per-sample losses
    int made = 0, rc = -1;
    if (!s || !q) goto out;
    for (; made < threads; made++)
        if (scratch_alloc(&s[made], &P->model, &P->data, tile)) goto out;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int i = 0; i < P->instances; i++) {
        const int t = omp_get_thread_num();
        loss[i] = instance_eval(P, L, params, i, samples, tile, &s[t], q + (size_t)t * tile,
                                loss_se ? &loss_se[i] : NULL);
    }
    rc = 0;
out:
    for (int t = 0; t < made; t++) scratch_free(&s[t]);
    free(s);
    free(q);
    return rc;
}

int tms_cpu_gradient(const tms_problem_t *P, const tms_layout_t *L, const float *params,
                     long step, float *grads, float *loss) {
    tile_scratch_t s;
    int tile = tms_cpu_tile_rows(&P->model, P->batch_size);
    tms_blas_init();
    if (scratch_alloc(&s, &P->model, &P->data, tile)) return -1;
    memset(grads, 0, L->total * sizeof(float));
    for (int i = 0; i < P->instances; i++) {
        double l = instance_pass(P, L, (float *)params, grads, i, (uint64_t)step, P->batch_size, tile, &s);
        if (loss) loss[i] = (float)l;
    }
    scratch_free(&s);
    return 0;
}
