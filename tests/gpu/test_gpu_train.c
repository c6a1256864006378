// test_gpu_train.c: long runs.
//   1. 2,000 steps of the paper's model (n 5, m 2, output ReLU, bias), tied and untied, on
//      the CPU and the GPU from the same initial state: the loss curve (every 50 steps, the
//      loss of the batch train() reports) and the final parameters agree to 1e-3 relative.
//      The GPU's arithmetic differs from the CPU's only by rounding (GEMM summation order,
//      FMA), so the runs stay close unless training amplifies rounding; these settings
//      (dense to moderately sparse inputs, batch 1024) converge rather than wander.
//   2. The graph's per-step constants and step counter: 40,000 steps with a linear lr decay
//      (a different lr every step) in one train() call, which crosses the device table's
//      window (TABLE_ROWS = 16,384 steps, cuda_backend.cu), against the same run in 40
//      calls of 1,000 steps: the GPU is deterministic, so the two must agree bit for bit.
#include "gpu_check.h"

#define CURVE_EVERY 50

static void check_against_cpu(int decoder) {
    tms_model_t model = {5, 2, decoder, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    const long steps = 2000;
    gpu_problem_t g;
    if (problem_make(&g, model, 4, 1024, steps, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    for (int i = 0; i < 4; i++) { // the recipe's settings: lr 1e-3, weight decay 0.01
        g.inst[i].lr = 1e-3f;
        g.inst[i].weight_decay = 0.01f;
    }
    const tms_layout_t *L = &g.L;
    const int I = g.P.instances;
    char err[1024], mname[128];
    printf("%s, %ld steps\n", model_name(&model, mname, sizeof(mname)), steps);
    tms_backend_t cpu, gpu;
    if (tms_cpu_backend_create(&cpu, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "cpu backend: %s", err);
        problem_free(&g);
        return;
    }
    if (tms_cuda_backend_create(&gpu, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "cuda backend: %s", err);
        cpu.destroy(&cpu);
        problem_free(&g);
        return;
    }
    const int points = (int)(steps / CURVE_EVERY);
    float *curve_c = malloc((size_t)points * I * sizeof(float)), *curve_g = malloc((size_t)points * I * sizeof(float));
    for (int k = 0; k < points; k++) {
        const long t = (long)k * CURVE_EVERY;
        CHECK(cpu.train(&cpu, t, t + CURVE_EVERY, curve_c + (size_t)k * I) == 0, "cpu train at %ld", t);
        CHECK(gpu.train(&gpu, t, t + CURVE_EVERY, curve_g + (size_t)k * I) == 0, "gpu train at %ld", t);
    }
    long bad = compare("loss curve", curve_g, curve_c, (size_t)points * I, 1e-7, 1e-3);
    printf("  loss at step 0: %.6f (cpu) %.6f (gpu); at step %ld: %.6f (cpu) %.6f (gpu)\n", curve_c[0], curve_g[0],
           (long)(points - 1) * CURVE_EVERY, curve_c[(size_t)(points - 1) * I], curve_g[(size_t)(points - 1) * I]);
    float *pc = malloc(L->total * sizeof(float)), *pg = malloc(L->total * sizeof(float));
    CHECK(cpu.get_state(&cpu, pc, NULL, NULL) == 0, "cpu state");
    CHECK(gpu.get_state(&gpu, pg, NULL, NULL) == 0, "gpu state");
    bad += compare_state("final params", L, pg, pc, 1e-4, 1e-3);
    CHECK(bad == 0, "%s: %ld mismatches after %ld steps", mname, bad, steps);
    free(curve_c); free(curve_g); free(pc); free(pg);
    cpu.destroy(&cpu);
    gpu.destroy(&gpu);
    problem_free(&g);
}

static void check_windows(void) {
    tms_model_t model = {5, 2, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    const long steps = 40000, chunk = 1000;
    gpu_problem_t g;
    if (problem_make(&g, model, 3, 64, steps, TMS_OPT_ADAMW, TMS_SCHED_LINEAR, 100) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    const tms_layout_t *L = &g.L;
    const int I = g.P.instances;
    char err[1024];
    printf("graph replay: %ld steps in one call against %ld calls of %ld\n", steps, steps / chunk, chunk);
    tms_backend_t one, many;
    if (tms_cuda_backend_create(&one, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0 ||
        tms_cuda_backend_create(&many, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "cuda backend: %s", err);
        problem_free(&g);
        return;
    }
    float *loss_one = malloc(I * sizeof(float)), *loss_many = malloc(I * sizeof(float));
    CHECK(one.train(&one, 0, steps, loss_one) == 0, "train in one call");
    for (long t = 0; t < steps; t += chunk) {
        CHECK(many.train(&many, t, t + chunk, loss_many) == 0, "train at %ld", t);
        if (t == 0) CHECK(memcmp(loss_one, loss_many, I * sizeof(float)) == 0, "loss at step 0 differs");
    }
    float *p1 = malloc(L->total * sizeof(float)), *p2 = malloc(L->total * sizeof(float));
    float *m1 = malloc(L->total * sizeof(float)), *m2 = malloc(L->total * sizeof(float));
    CHECK(one.get_state(&one, p1, m1, NULL) == 0, "state");
    CHECK(many.get_state(&many, p2, m2, NULL) == 0, "state");
    long bad = compare_state("params, one call vs chunks", L, p1, p2, 0.0, 0.0);
    bad += compare_state("adam_m, one call vs chunks", L, m1, m2, 0.0, 0.0);
    CHECK(bad == 0, "one call and chunked calls differ");
    // the run did train: the parameters moved
    long moved = 0;
    for (size_t e = 0; e < L->total; e++) moved += p1[e] != g.params[e];
    CHECK(moved > 0, "no parameter changed in %ld steps", steps);
    free(loss_one); free(loss_many); free(p1); free(p2); free(m1); free(m2);
    one.destroy(&one);
    many.destroy(&many);
    problem_free(&g);
}

int main(void) {
    gpu_require("test_gpu_train");
    check_against_cpu(TMS_DECODER_TIED);
    check_against_cpu(TMS_DECODER_UNTIED);
    check_windows();
    return check_finish("test_gpu_train");
}
