// test_closed_form.c: dense runs reach the closed-form optima of REFERENCE.md.
// With p = 1 the best a ReLU model with m < n hidden dimensions can do is keep the m
// most important features and set the others' bias to the mean 1/2, each costing
// I_i * (1/3 - 1/4) = I_i / 12; per instance (mean over features) that is
// sum of the ignored I_i / (12 n).
#include <math.h>
#include <stdlib.h>
#include "check.h"
#include "cpu_backend.h"
#include "spec.h"
#include "tms.h"

// Train `seeds` replicates with the notebook's recipe; return the best eval loss.
static double best_dense_loss(int n, int m, double decay, long steps, int seeds) {
    tms_problem_t P = {0};
    P.model = (tms_model_t){n, m, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    P.instances = seeds;
    P.batch_size = 1024;
    P.steps = steps;
    P.optimizer = TMS_OPT_ADAMW;
    P.beta1 = 0.9f; P.beta2 = 0.999f; P.eps = 1e-8f;
    P.schedule = TMS_SCHED_CONSTANT;
    P.inst = calloc((size_t)seeds, sizeof(tms_instance_t));
    P.importance = malloc(sizeof(float) * n * seeds);
    for (int i = 0; i < seeds; i++) {
        P.inst[i] = (tms_instance_t){1.0f, 1e-3f, 0.01f, 0, i, tms_instance_key(0, (uint64_t)i), 0, 0, 0};
        for (int f = 0; f < n; f++) P.importance[i * n + f] = (float)pow(decay, f);
    }
    tms_layout_t L;
    tms_layout_init(&L, &P.model, seeds);
    float *params = calloc(L.total, sizeof(float)), *am = calloc(L.total, sizeof(float)), *av = calloc(L.total, sizeof(float));
    float *first = malloc(sizeof(float) * seeds);
    double *loss = malloc(sizeof(double) * seeds);
    tms_init_params(&P, &L, params);
    tms_backend_t be;
    char err[256];
    double best = INFINITY;
    if (tms_cpu_backend_create(&be, &P, &L, params, am, av, 0, err, sizeof(err)) == 0) {
        be.train(&be, 0, steps, first);
        be.get_state(&be, params, am, av);
        be.destroy(&be);
        tms_cpu_eval_loss(&P, &L, params, 65536, 0, loss, NULL);
        for (int i = 0; i < seeds; i++) best = fmin(best, loss[i]);
    } else {
        CHECK(0, "backend: %s", err);
    }
    free(params); free(am); free(av); free(first); free(loss);
    tms_problem_free(&P);
    return best;
}

int main(void) {
    // n=5, m=2, I = 0.9^i: (0.9^2 + 0.9^3 + 0.9^4) / 60 = 0.036585
    double want5 = (pow(0.9, 2) + pow(0.9, 3) + pow(0.9, 4)) / 60.0;
    double got5 = best_dense_loss(5, 2, 0.9, 10000, 4);
    printf("n=5  m=2 I=0.9^i: best loss %.6f, closed form %.6f (%+.2f%%)\n", got5, want5, 100 * (got5 / want5 - 1));
    CHECK(fabs(got5 / want5 - 1) < 0.03, "n=5 m=2: %.6f is not within 3%% of %.6f", got5, want5);
    // n=20, m=5, I = 0.7^i: sum_{i=5..19} 0.7^i / 240 = 0.0023233
    double want20 = 0;
    for (int i = 5; i < 20; i++) want20 += pow(0.7, i);
    want20 /= 240.0;
    double got20 = best_dense_loss(20, 5, 0.7, 10000, 2);
    printf("n=20 m=5 I=0.7^i: best loss %.6f, closed form %.6f (%+.2f%%)\n", got20, want20, 100 * (got20 / want20 - 1));
    CHECK(fabs(got20 / want20 - 1) < 0.03, "n=20 m=5: %.6f is not within 3%% of %.6f", got20, want20);
    return check_finish("test_closed_form");
}
