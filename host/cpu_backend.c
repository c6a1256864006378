// cpu_backend.c: the CPU backend. Instances train in parallel (OpenMP, one instance
// per task); each instance runs its steps alone, in a fixed order, so its result
// does not depend on the thread count. A batch is processed in tiles of rows that
// fit in cache, drawn, run forward and backward one tile at a time.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tms.h"
#include "cpu_backend.h"

typedef struct {
    float *x, *z, *h, *y, *out, *dy, *dh; // (tile, n) or (tile, m)
    float *target;                        // (tile, n): the abs task's |x|; NULL when the target is x
    float *decT;                          // (m, n)
} tile_scratch_t;

typedef struct {
    tms_problem_t P;
    tms_layout_t L;
    float *params, *grads, *adam_m, *adam_v; // flat layout
    int threads;
    int tile;                                // rows per tile
    tile_scratch_t *scratch;                 // one per thread
    long *diverged;                          // (instances) tms_instance_t.diverged_step convention
} cpu_ctx_t;

int tms_cpu_tile_rows(const tms_model_t *M, int batch) {
    int tile = 8192 / (M->n + M->m);
    if (tile < 16) tile = 16;
    return tile < batch ? tile : batch;
}

static void scratch_free(tile_scratch_t *s) {
    free(s->x); free(s->z); free(s->h); free(s->y); free(s->out); free(s->dy); free(s->dh); free(s->decT);
    free(s->target);
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
    return 0;
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

static int cpu_train(tms_backend_t *be, long step_begin, long step_end, float *loss_first) {
    cpu_ctx_t *c = be->ctx;
    const tms_problem_t *P = &c->P;
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
            double lr_factor;
            tms_adam_step_t st;
            tms_step_constants(P, t, &lr_factor, &st.bias1, &st.bias2);
            st.lr = (float)(P->inst[i].lr * lr_factor);
            st.beta1 = P->beta1; st.beta2 = P->beta2; st.eps = P->eps;
            st.weight_decay = P->inst[i].weight_decay;
            st.kind = P->optimizer;
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

static void cpu_destroy(tms_backend_t *be) {
    cpu_ctx_t *c = be->ctx;
    if (!c) return;
    if (c->scratch)
        for (int t = 0; t < c->threads; t++) scratch_free(&c->scratch[t]);
    free(c->scratch);
    free(c->params); free(c->grads); free(c->adam_m); free(c->adam_v); free(c->diverged);
    free(c);
    be->ctx = NULL;
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
    be->destroy = cpu_destroy;
    c->P = *P; // shallow: inst and importance stay owned by the caller
    c->L = *L;
    c->threads = threads > 0 ? threads : omp_get_max_threads();
    if (c->threads > P->instances) c->threads = P->instances;
    if (c->threads < 1) c->threads = 1;
    c->tile = tms_cpu_tile_rows(&P->model, P->batch_size);
    snprintf(be->device, sizeof(be->device), "CPU, %d thread%s", c->threads, c->threads == 1 ? "" : "s");
    size_t bytes = L->total * sizeof(float);
    c->params = malloc(bytes); c->grads = calloc(L->total, sizeof(float));
    c->adam_m = malloc(bytes); c->adam_v = malloc(bytes);
    c->scratch = calloc((size_t)c->threads, sizeof(tile_scratch_t));
    c->diverged = malloc((size_t)(P->instances > 0 ? P->instances : 1) * sizeof(long));
    if (!c->params || !c->grads || !c->adam_m || !c->adam_v || !c->scratch || !c->diverged) goto oom;
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

// ----------------------------------------------------------------------------
// evaluation and one-off gradients, used by the run driver and the tests

int tms_cpu_eval_loss(const tms_problem_t *P, const tms_layout_t *L, const float *params,
                      long samples, int threads, double *loss) {
    int failed = 0;
    int tile = tms_cpu_tile_rows(&P->model, (int)(samples < 1L << 30 ? samples : 1L << 30));
    if (threads <= 0) threads = omp_get_max_threads();
    #pragma omp parallel num_threads(threads) reduction(|:failed)
    {
        tile_scratch_t s;
        if (scratch_alloc(&s, &P->model, &P->data, tile)) {
            failed = 1;
        } else {
            #pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < P->instances; i++)
                loss[i] = instance_pass(P, L, (float *)params, NULL, i, TMS_SUBSEQ_EVAL, samples, tile, &s);
            scratch_free(&s);
        }
    }
    return failed ? -1 : 0;
}

int tms_cpu_gradient(const tms_problem_t *P, const tms_layout_t *L, const float *params,
                     long step, float *grads, float *loss) {
    tile_scratch_t s;
    int tile = tms_cpu_tile_rows(&P->model, P->batch_size);
    if (scratch_alloc(&s, &P->model, &P->data, tile)) return -1;
    memset(grads, 0, L->total * sizeof(float));
    for (int i = 0; i < P->instances; i++) {
        double l = instance_pass(P, L, (float *)params, grads, i, (uint64_t)step, P->batch_size, tile, &s);
        if (loss) loss[i] = (float)l;
    }
    scratch_free(&s);
    return 0;
}
