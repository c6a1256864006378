// test_gpu_nanfill.c: every element a step should write is written. With
// TMS_CUDA_NAN_FILL=1 the backend fills each output with NaN right before the kernel or
// GEMM that writes it (inside the captured graph too); this test also fills every work
// buffer with NaN itself first. After a gradient pass and after training steps, no device
// buffer may hold a NaN (an unwritten gradient element would also poison its parameter),
// and the results must still match the CPU; so must the evaluation's losses (its buffers
// are NaN-filled before each writer too). Every model combination; shapes chosen so that
// no dimension is a multiple of the kernels' block sizes.
#define _POSIX_C_SOURCE 200809L
#include "gpu_check.h"

static void check_combination(int combo) {
    tms_model_t model = {7, 3, combo & 1 ? TMS_DECODER_UNTIED : TMS_DECODER_TIED,
                         combo & 2 ? TMS_ACT_RELU : TMS_ACT_NONE, combo & 4 ? TMS_ACT_NONE : TMS_ACT_RELU,
                         combo & 8 ? 0 : 1, 0};
    char mname[128], err[1024], report[1024];
    printf("%s\n", model_name(&model, mname, sizeof(mname)));
    gpu_problem_t g;
    if (problem_make(&g, model, 3, 21, 10, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    const tms_layout_t *L = &g.L;
    const int I = g.P.instances, n = model.n, m = model.m, B = g.P.batch_size;
    tms_backend_t gpu;
    if (tms_cuda_backend_create(&gpu, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "cuda backend: %s", err);
        problem_free(&g);
        return;
    }
    // the fill and the count work: x, h, y_dy, dh, loss partials, loss, grads are all NaN
    CHECK(tms_cuda_backend_fill_nan(&gpu) == 0, "fill");
    long bad = tms_cuda_backend_count_nonfinite(&gpu, report, sizeof(report));
    const long at_least = (long)I * (2L * B * n + 2L * B * m + 1) + (long)L->total;
    CHECK(bad >= at_least, "after filling, %ld non-finite values, expected at least %ld (%s)", bad, at_least, report);

    // a gradient pass writes every work buffer
    float *gc = malloc(L->total * sizeof(float)), *gg = malloc(L->total * sizeof(float));
    float *lc = malloc(I * sizeof(float)), *lg = malloc(I * sizeof(float));
    CHECK(tms_cuda_backend_gradient(&gpu, 3, gg, lg) == 0, "gpu gradient");
    bad = tms_cuda_backend_count_nonfinite(&gpu, report, sizeof(report));
    CHECK(bad == 0, "%s: after a gradient pass: %s", mname, report);
    CHECK(tms_cpu_gradient(&g.P, L, g.params, 3, gc, lc) == 0, "cpu gradient");
    long mismatches = compare_state("grad", L, gg, gc, 1e-5, 1e-5);
    mismatches += compare("loss", lg, lc, (size_t)I, 1e-7, 1e-5);

    // training steps through the graph (its own NaN fills before each writer)
    CHECK(tms_cuda_backend_fill_nan(&gpu) == 0, "fill");
    float *loss = malloc(I * sizeof(float));
    CHECK(gpu.train(&gpu, 0, 3, loss) == 0, "gpu train");
    bad = tms_cuda_backend_count_nonfinite(&gpu, report, sizeof(report));
    CHECK(bad == 0, "%s: after 3 training steps: %s", mname, report);
    tms_backend_t cpu;
    float *pc = malloc(L->total * sizeof(float)), *pg = malloc(L->total * sizeof(float));
    float *loss_c = malloc(I * sizeof(float));
    CHECK(tms_cpu_backend_create(&cpu, &g.P, L, g.params, g.adam_m, g.adam_v, 1, err, sizeof(err)) == 0, "%s", err);
    CHECK(cpu.train(&cpu, 0, 3, loss_c) == 0, "cpu train");
    CHECK(cpu.get_state(&cpu, pc, NULL, NULL) == 0, "cpu state");
    CHECK(gpu.get_state(&gpu, pg, NULL, NULL) == 0, "gpu state");
    mismatches += compare_state("params after 3 steps", L, pg, pc, 1e-5, 1e-5);
    mismatches += compare("loss of step 0", loss, loss_c, (size_t)I, 1e-7, 1e-5);
    // the evaluation's buffers are NaN-filled before each writer too: an unwritten element
    // would make a loss NaN (37 samples: chunk rows that are not a multiple of any block)
    double ec[3], eg[3];
    float fc[3], fg[3];
    CHECK(cpu_eval_loss(&g, pg, 37, ec) == 0, "cpu eval");
    CHECK(gpu.evaluate(&gpu, 37, eg, NULL) == 0, "gpu evaluate");
    for (int i = 0; i < 3; i++) {
        fc[i] = (float)ec[i];
        fg[i] = (float)eg[i];
    }
    mismatches += compare("evaluation loss", fg, fc, 3, 1e-7, 1e-5);
    CHECK(mismatches == 0, "%s: %ld mismatches with the CPU", mname, mismatches);
    cpu.destroy(&cpu);
    gpu.destroy(&gpu);
    free(gc); free(gg); free(lc); free(lg); free(loss); free(pc); free(pg); free(loss_c);
    problem_free(&g);
}

int main(void) {
    gpu_require("test_gpu_nanfill");
    if (setenv("TMS_CUDA_NAN_FILL", "1", 1) != 0) {
        perror("setenv");
        return 1;
    }
    for (int combo = 0; combo < 16; combo++) check_combination(combo);
    return check_finish("test_gpu_nanfill");
}
