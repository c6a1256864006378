// gpu_check.h: helpers shared by the GPU tests: skip without a GPU (exit 77, which CTest
// reports as skipped), build a small problem with varied per-instance settings, and
// compare two buffers with the tolerance tol + |ref| * eps, printing the first mismatches.
// A test counts its failures and exits nonzero if there is any (check_finish).
#ifndef TMS_GPU_CHECK_H
#define TMS_GPU_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../check.h"
#include "cpu_backend.h"
#include "cuda_backend.h"
#include "tms.h"

#define GPU_SKIP 77

// Exit 77 when there is no usable GPU; call first.
static inline void gpu_require(const char *test) {
    char device[256];
    if (!tms_cuda_backend_available(device, sizeof(device))) {
        printf("%s: skipped: %s\n", test, device);
        exit(GPU_SKIP);
    }
    printf("%s: on %s\n", test, device);
}

// ----------------------------------------------------------------------------
// problems

typedef struct {
    tms_problem_t P;
    tms_layout_t L;
    tms_instance_t *inst;   // (instances)
    float *importance;      // (instances, n)
    float *params, *adam_m, *adam_v; // initial state, flat layout
} gpu_problem_t;

static const float gpu_densities[] = {1.0f, 0.3f, 0.1f, 0.03f, 0.5f, 0.01f, 0.2f};

// Instances differ in density, lr, weight decay, key and importance, so a kernel that
// reads another instance's setting (or the wrong one) fails the comparison.
static inline int problem_make(gpu_problem_t *g, tms_model_t model, int instances, int batch,
                               long steps, int optimizer, int schedule, long warmup) {
    memset(g, 0, sizeof(*g));
    g->inst = (tms_instance_t *)calloc((size_t)instances, sizeof(tms_instance_t));
    g->importance = (float *)malloc((size_t)instances * model.n * sizeof(float));
    if (!g->inst || !g->importance) return -1;
    for (int i = 0; i < instances; i++) {
        tms_instance_t *in = &g->inst[i];
        in->density = gpu_densities[i % (int)(sizeof(gpu_densities) / sizeof(gpu_densities[0]))];
        in->lr = 1e-3f * (1.0f + 0.5f * (float)(i % 3));
        in->weight_decay = (i % 2) ? 0.01f : 0.0f;
        in->seed = 1234u + (uint64_t)(i / 2);
        in->replicate = i % 2;
        in->key = tms_instance_key(in->seed, (uint64_t)in->replicate);
        in->grid_point = i / 2;
        const double r = (i % 2) ? 0.7 : 0.9;
        for (int f = 0; f < model.n; f++) g->importance[(size_t)i * model.n + f] = (float)pow(r, f);
    }
    g->P.model = model;
    g->P.instances = instances;
    g->P.inst = g->inst;
    g->P.importance = g->importance;
    g->P.batch_size = batch;
    g->P.steps = steps;
    g->P.optimizer = optimizer;
    g->P.beta1 = 0.9f;
    g->P.beta2 = 0.999f;
    g->P.eps = 1e-8f;
    g->P.schedule = schedule;
    g->P.warmup_steps = warmup;
    tms_layout_init(&g->L, &model, instances);
    g->params = (float *)malloc(g->L.total * sizeof(float));
    g->adam_m = (float *)calloc(g->L.total, sizeof(float));
    g->adam_v = (float *)calloc(g->L.total, sizeof(float));
    if (!g->params || !g->adam_m || !g->adam_v) return -1;
    tms_init_params(&g->P, &g->L, g->params);
    return 0;
}

static inline void problem_free(gpu_problem_t *g) {
    free(g->inst);
    free(g->importance);
    free(g->params);
    free(g->adam_m);
    free(g->adam_v);
    memset(g, 0, sizeof(*g));
}

static inline const char *model_name(const tms_model_t *M, char *buf, size_t len) {
    snprintf(buf, len, "%s hidden=%s output=%s bias=%s%s", M->decoder == TMS_DECODER_TIED ? "tied" : "untied",
             M->hidden_act == TMS_ACT_RELU ? "relu" : "none", M->output_act == TMS_ACT_RELU ? "relu" : "none",
             M->bias ? "on" : "off", M->no_hidden_bias ? " (no b1)" : "");
    return buf;
}

// The smallest |pre-activation| a ReLU sees on step `step`'s batch over all instances (z
// with a hidden ReLU, y with an output ReLU), computed on the CPU; 1e30 with no ReLU.
// The backends round differently (~1e-7), so a value that close to 0 can land on
// different sides of the kink and flip a mask: a true difference of the two functions,
// not an error. Exact zeros are skipped: they come from all-zero rows, which both
// backends compute exactly. Returns -1 when out of memory.
static inline double min_kink_distance(const gpu_problem_t *g, const float *params, long step) {
    const tms_model_t *M = &g->P.model;
    const int hidden_relu = M->hidden_act == TMS_ACT_RELU, output_relu = M->output_act == TMS_ACT_RELU;
    if (!hidden_relu && !output_relu) return 1e30;
    const int n = M->n, m = M->m, B = g->P.batch_size;
    float *x = malloc((size_t)B * n * sizeof(float)), *y = malloc((size_t)B * n * sizeof(float));
    float *out = malloc((size_t)B * n * sizeof(float)), *z = malloc((size_t)B * m * sizeof(float));
    float *h = malloc((size_t)B * m * sizeof(float)), *decT = malloc((size_t)m * n * sizeof(float));
    float *target = malloc((size_t)B * n * sizeof(float));
    double least = 1e30;
    if (!x || !y || !out || !z || !h || !decT || !target) least = -1;
    for (int i = 0; least >= 0 && i < g->P.instances; i++) {
        tms_view_t v = tms_view(&g->L, (float *)params, i);
        tms_decoder_T(M, &v, decT);
        tms_sample_tile(&g->P.data, g->inst[i].key, (uint64_t)step, n, 0, B, g->inst[i].density, x, target);
        tms_forward(M, &v, decT, g->importance + (size_t)i * n, x, tms_data_has_target(&g->P.data) ? target : x, B,
                    z, h, y, out);
        if (hidden_relu)
            for (size_t e = 0; e < (size_t)B * m; e++)
                if (z[e] != 0.0f && fabs(z[e]) < least) least = fabs(z[e]);
        if (output_relu)
            for (size_t e = 0; e < (size_t)B * n; e++)
                if (y[e] != 0.0f && fabs(y[e]) < least) least = fabs(y[e]);
    }
    free(x); free(y); free(out); free(z); free(h); free(decT); free(target);
    return least;
}

// The CPU backend's evaluation (tms_cpu_eval_loss), the reference of the GPU's evaluate():
// each instance's loss on `samples` rows of the evaluation subsequence. The one place the
// GPU tests call it.
static inline int cpu_eval_loss(const gpu_problem_t *g, const float *params, long samples, double *loss) {
    return tms_cpu_eval_loss(&g->P, &g->L, params, samples, 0, loss, NULL);
}

// ----------------------------------------------------------------------------
// comparisons

static inline float max_abs(const float *a, size_t count) {
    float m = 0.0f;
    for (size_t e = 0; e < count; e++)
        if (fabsf(a[e]) > m) m = fabsf(a[e]);
    return m;
}

// Elements with !(|got - ref| <= tol + |ref| * eps) (NaN fails); prints the first few.
// Returns the number of mismatches; also reports the largest relative error.
static inline long compare(const char *what, const float *got, const float *ref, size_t count,
                           double tol, double eps) {
    long bad = 0;
    double worst = 0.0;
    for (size_t e = 0; e < count; e++) {
        const double d = fabs((double)got[e] - (double)ref[e]);
        const double rel = d / (fabs((double)ref[e]) + 1e-30);
        if (rel > worst && fabs((double)ref[e]) > tol) worst = rel;
        if (!(d <= tol + fabs((double)ref[e]) * eps)) {
            if (bad < 5)
                fprintf(stderr, "  MISMATCH %s[%zu]: gpu %.9g cpu %.9g (diff %.3g, allowed %.3g)\n", what, e,
                        got[e], ref[e], d, tol + fabs((double)ref[e]) * eps);
            bad++;
        }
    }
    if (bad) fprintf(stderr, "  %s: %ld of %zu elements differ\n", what, bad, count);
    else printf("  %s: %zu elements agree, worst relative error %.2e\n", what, count, worst);
    return bad;
}

// Compare two flat-layout buffers tensor by tensor, each with the floor tol = tol_scale *
// max |ref| over the tensor (so a tensor of small numbers is held to its own scale).
static inline long compare_state(const char *what, const tms_layout_t *L, const float *got, const float *ref,
                                 double tol_scale, double eps) {
    long bad = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!L->present[t]) continue;
        const size_t count = L->per_instance[t] * (size_t)L->instances;
        const float *g = got + L->offset[t], *r = ref + L->offset[t];
        char name[64];
        snprintf(name, sizeof(name), "%s.%s", what, tms_tensor_names[t]);
        bad += compare(name, g, r, count, tol_scale * max_abs(r, count) + 1e-30, eps);
    }
    return bad;
}

#endif // TMS_GPU_CHECK_H
