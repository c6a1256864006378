// test_adam.c: Adam and AdamW steps against values worked out by hand, and the
// learning-rate schedules at known points.
#include <math.h>
#include "check.h"
#include "tms.h"

static int close(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

int main(void) {
    // AdamW, lr 0.1, wd 0.01, betas (0.9, 0.999), eps 1e-8; p = 1, g = 0.5 at step 1:
    //   decay:  p = 1 - 0.1 * 0.01 * 1           = 0.999
    //   m = 0.05, v = 0.00025; mhat = 0.5, vhat = 0.25
    //   p -= 0.1 * 0.5 / (0.5 + 1e-8)            -> 0.999 - 0.09999999800 = 0.89900000200
    tms_adam_step_t s = {0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 0, 0, TMS_OPT_ADAMW};
    s.bias1 = 1.0f - 0.9f;
    s.bias2 = 1.0f - 0.999f;
    float p = 1.0f, m = 0.0f, v = 0.0f;
    tms_adam_update(&p, &m, &v, 0.5f, &s);
    CHECK(close(p, 0.899000002, 1e-6), "adamw step 1: p = %.9g, expected 0.899000002", p);
    CHECK(close(m, 0.05, 1e-6) && close(v, 0.00025, 1e-5), "adamw step 1 moments: m %.9g v %.9g", m, v);
    // step 2 with g = -0.25:
    //   decay:  p = 0.899000002 * (1 - 0.001)    = 0.898101002
    //   m = 0.9 * 0.05 - 0.1 * 0.25 = 0.02;  v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225
    //   mhat = 0.02 / 0.19 = 0.105263158;  vhat = 0.00031225 / 0.001999 = 0.156203102
    //   p -= 0.1 * 0.105263158 / (0.395225382 + 1e-8) = 0.026633946  -> 0.871467056
    s.bias1 = (float)(1.0 - 0.81);
    s.bias2 = (float)(1.0 - 0.999 * 0.999);
    tms_adam_update(&p, &m, &v, -0.25f, &s);
    CHECK(close(p, 0.871467056, 2e-6), "adamw step 2: p = %.9g, expected 0.871467056", p);
    CHECK(close(m, 0.02, 1e-5) && close(v, 0.00031225, 1e-5), "adamw step 2 moments: m %.9g v %.9g", m, v);

    // Adam (torch.optim.Adam): L2 in the gradient. p = 2, g = 0.1, wd 0.5, lr 0.01:
    //   g' = 0.1 + 0.5 * 2 = 1.1; m = 0.11, v = 0.00121; mhat = 1.1, vhat = 1.21
    //   p -= 0.01 * 1.1 / (1.1 + 1e-8) -> 2 - 0.00999999991 = 1.99000000009
    tms_adam_step_t a = {0.01f, 0.9f, 0.999f, 1e-8f, 0.5f, 1.0f - 0.9f, 1.0f - 0.999f, TMS_OPT_ADAM};
    p = 2.0f; m = 0.0f; v = 0.0f;
    tms_adam_update(&p, &m, &v, 0.1f, &a);
    CHECK(close(p, 1.99, 1e-6), "adam step 1: p = %.9g, expected 1.99000000009", p);
    CHECK(close(m, 0.11, 1e-6) && close(v, 0.00121, 1e-5), "adam moments: m %.9g v %.9g", m, v);

    // the per-step constants tms_step_constants hands the backends
    tms_problem_t P = {0};
    P.beta1 = 0.9f; P.beta2 = 0.999f; P.steps = 100; P.schedule = TMS_SCHED_CONSTANT;
    double f;
    float b1, b2;
    tms_step_constants(&P, 0, &f, &b1, &b2);
    CHECK(f == 1.0 && close(b1, 0.1, 1e-6) && close(b2, 0.001, 1e-4), "step 0 constants %g %g %g", f, b1, b2);
    tms_step_constants(&P, 9, &f, &b1, &b2);
    CHECK(close(b1, 1 - pow(0.9, 10), 1e-6) && close(b2, 1 - pow(0.999, 10), 1e-5), "step 9 bias corrections");

    // schedules (REFERENCE.md): linear 1 - t/T; cosine cos(pi/2 * t/(T-1)); warm-up (t+1)/w
    CHECK(tms_lr_factor(TMS_SCHED_CONSTANT, 57, 100, 0) == 1.0, "constant");
    CHECK(close(tms_lr_factor(TMS_SCHED_LINEAR, 0, 100, 0), 1.0, 1e-12), "linear at 0");
    CHECK(close(tms_lr_factor(TMS_SCHED_LINEAR, 25, 100, 0), 0.75, 1e-12), "linear at 25");
    CHECK(close(tms_lr_factor(TMS_SCHED_LINEAR, 99, 100, 0), 0.01, 1e-12), "linear at 99");
    CHECK(close(tms_lr_factor(TMS_SCHED_COSINE, 0, 101, 0), 1.0, 1e-12), "cosine at 0");
    CHECK(close(tms_lr_factor(TMS_SCHED_COSINE, 50, 101, 0), sqrt(0.5), 1e-12), "cosine at the middle: cos(pi/4)");
    CHECK(fabs(tms_lr_factor(TMS_SCHED_COSINE, 100, 101, 0)) < 1e-12, "cosine reaches 0 at T-1");
    CHECK(close(tms_lr_factor(TMS_SCHED_LINEAR, 0, 110, 10), 0.1, 1e-12), "warm-up step 0 = 1/10");
    CHECK(close(tms_lr_factor(TMS_SCHED_LINEAR, 9, 110, 10), 1.0, 1e-12), "warm-up ends at 1");
    CHECK(close(tms_lr_factor(TMS_SCHED_LINEAR, 60, 110, 10), 0.5, 1e-12), "linear after warm-up: halfway");
    CHECK(close(tms_lr_factor(TMS_SCHED_COSINE, 10, 111, 10), 1.0, 1e-12), "cosine after warm-up starts at 1");
    return check_finish("test_adam");
}
