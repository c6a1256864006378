// test_eval.c: the final evaluation's loss and standard error (tms_cpu_eval_loss and the
// CPU backend's evaluate) against a sample-by-sample computation written here from the
// model's definition, in double: x drawn one row at a time, h = W x, x' = ReLU(W^T h + b),
// q = (1/n) sum_f I_f (x_f - x'_f)^2; loss = mean q, se = sd(q) / sqrt(samples).
#include <math.h>
#include <stdlib.h>
#include "check.h"
#include "cpu_backend.h"
#include "tms.h"

int main(void) {
    const int n = 5, m = 2, I = 3;
    const long samples = 20000;
    const float density[3] = {1.0f, 0.1f, 0.05f};
    tms_problem_t P = {0};
    P.model = (tms_model_t){n, m, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    P.instances = I;
    P.batch_size = 1024;
    P.steps = 1;
    P.inst = calloc(I, sizeof(tms_instance_t));
    P.importance = malloc(sizeof(float) * n * I);
    for (int i = 0; i < I; i++) {
        P.inst[i] = (tms_instance_t){density[i], 1e-3f, 0.01f, 7, i, tms_instance_key(7, (uint64_t)i), i, 0, 0};
        for (int f = 0; f < n; f++) P.importance[i * n + f] = (float)pow(0.8, f);
    }
    tms_layout_t L;
    tms_layout_init(&L, &P.model, I);
    float *params = calloc(L.total, sizeof(float)), *zeros = calloc(L.total, sizeof(float));
    tms_init_params(&P, &L, params);
    for (int i = 0; i < I; i++) { // a nonzero bias, so the ReLU and b both matter
        tms_view_t v = tms_view(&L, params, i);
        for (int f = 0; f < n; f++) v.b[f] = 0.05f * (float)(f - 2);
    }
    double loss[3], se[3], loss2[3], se2[3];
    CHECK(tms_cpu_eval_loss(&P, &L, params, samples, 2, loss, se) == 0, "eval failed");
    tms_backend_t be;
    char err[256];
    CHECK(tms_cpu_backend_create(&be, &P, &L, params, zeros, zeros, 1, err, sizeof(err)) == 0, "%s", err);
    CHECK(be.evaluate && be.evaluate(&be, samples, loss2, se2) == 0, "backend evaluate");
    be.destroy(&be);
    float x[5];
    for (int i = 0; i < I; i++) {
        tms_view_t v = tms_view(&L, params, i);
        double sum = 0.0, sum2 = 0.0;
        for (long r = 0; r < samples; r++) {
            tms_sample_rows(P.inst[i].key, TMS_SUBSEQ_EVAL, n, r, 1, density[i], x);
            double h[2] = {0, 0}, q = 0.0;
            for (int k = 0; k < m; k++)
                for (int f = 0; f < n; f++) h[k] += (double)v.W[k * n + f] * x[f];
            for (int f = 0; f < n; f++) {
                double y = v.b[f];
                for (int k = 0; k < m; k++) y += (double)v.W[k * n + f] * h[k];
                double d = x[f] - (y > 0 ? y : 0);
                q += P.importance[i * n + f] * d * d;
            }
            q /= n;
            sum += q;
            sum2 += q * q;
        }
        double mean = sum / samples, sd = sqrt((sum2 - sum * mean) / (samples - 1)), want_se = sd / sqrt((double)samples);
        printf("instance %d (density %.2f): loss %.8g (reference %.8g), se %.4g (reference %.4g)\n", i, density[i],
               loss[i], mean, se[i], want_se);
        CHECK(fabs(loss[i] - mean) <= 1e-5 * mean, "instance %d: loss %.9g, reference %.9g", i, loss[i], mean);
        CHECK(fabs(se[i] - want_se) <= 1e-4 * want_se, "instance %d: se %.9g, reference %.9g", i, se[i], want_se);
        CHECK(loss2[i] == loss[i] && se2[i] == se[i], "instance %d: the backend's evaluate differs", i);
        CHECK(se[i] > 0 && se[i] < 0.1 * loss[i], "instance %d: se %.3g implausible for loss %.3g", i, se[i], loss[i]);
    }
    // NULL standard errors are allowed
    CHECK(tms_cpu_eval_loss(&P, &L, params, 8192, 1, loss, NULL) == 0, "eval without se");
    free(params); free(zeros);
    free(P.inst);
    free(P.importance);
    return check_finish("test_eval");
}
