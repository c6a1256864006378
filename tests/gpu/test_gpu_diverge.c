// test_gpu_diverge.c: divergence freezing on the GPU, against the CPU backend's rule
// (host/cpu_backend.c): an instance whose loss or gradient is not finite at step t is frozen
// with the state it had before t, get_diverged() gives t + 1, and train() reports NaN as its
// loss from then on; the other instances are not affected; an instance frozen before a
// resume (tms_instance_t.diverged_step at create) stays frozen.
// Six instances (untied, hidden ReLU, bias: every tensor), 30 steps in three train() calls
// of 10 (so the freezing happens inside the captured graph, mid-call, and is read back by
// later calls):
//   0, 3  healthy;
//   1     lr 1e5: diverges on its own after a few steps;
//   2     a NaN weight from the start: frozen at step 0;
//   4     diverged_step 3 at create (frozen before a resume): never trained;
//   5     an infinite importance on feature 0: its loss is infinite at step 0.
// Checks: the divergence steps equal the CPU's; frozen instances keep their state bit for
// bit (2, 4, 5 from the start; 1 the CPU's frozen state to 1e-4); their losses are NaN
// after the step they froze at, as on the CPU; the healthy instances match the CPU to
// 1e-4 and, bit for bit, a GPU run of the same shapes with sane settings in the bad slots
// (whatever diverges in one instance cannot reach another). Resume: the same run stopped
// after 12 steps (get_state, get_diverged), a new backend created from that state with the
// divergence steps, trained on to 30, ends bit-identical to the uninterrupted GPU run.
#include "gpu_check.h"

#define STEPS 30
#define CALL 10
#define RESUME_AT 12

static void make(gpu_problem_t *g, int bad) {
    tms_model_t model = {5, 2, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    CHECK(problem_make(g, model, 6, 64, STEPS, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) == 0, "problem");
    if (!bad) return;
    g->inst[1].lr = 1e5f;
    g->params[g->L.offset[TMS_T_W] + 2 * 10 + 3] = NAN;     // instance 2, W[0][3]
    g->inst[4].diverged_step = 3;
    g->importance[5 * 5 + 0] = INFINITY;                    // instance 5, feature 0
}

// Train [0, STEPS) in calls of CALL; losses (STEPS / CALL, I): the loss each call reports.
static int run(tms_backend_t *be, long from, long to, float *losses, int I) {
    for (long t = from; t < to; t += CALL) {
        const long end = t + CALL < to ? t + CALL : to;
        if (be->train(be, t, end, losses + (t / CALL) * I) != 0) return -1;
    }
    return 0;
}

static int instance_equal(const tms_layout_t *L, const float *a, const float *b, int i) {
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!L->present[t]) continue;
        const size_t per = L->per_instance[t], at = L->offset[t] + per * (size_t)i;
        if (memcmp(a + at, b + at, per * sizeof(float)) != 0) return 0;
    }
    return 1;
}

static long compare_instance(const char *what, const tms_layout_t *L, const float *got, const float *ref, int i,
                             double eps) {
    long bad = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!L->present[t]) continue;
        const size_t per = L->per_instance[t], at = L->offset[t] + per * (size_t)i;
        char name[64];
        snprintf(name, sizeof(name), "%s %s of instance %d", what, tms_tensor_names[t], i);
        bad += compare(name, got + at, ref + at, per, eps * max_abs(ref + at, per) + 1e-30, eps);
    }
    return bad;
}

int main(void) {
    gpu_require("test_gpu_diverge");
    gpu_problem_t g, sane;
    make(&g, 1);
    make(&sane, 0);
    const tms_layout_t *L = &g.L;
    const int I = g.P.instances, calls = STEPS / CALL;
    char err[1024];
    tms_backend_t cpu, gpu, gpu_sane;
    if (tms_cpu_backend_create(&cpu, &g.P, L, g.params, g.adam_m, g.adam_v, 1, err, sizeof(err)) != 0 ||
        tms_cuda_backend_create(&gpu, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0 ||
        tms_cuda_backend_create(&gpu_sane, &sane.P, L, sane.params, sane.adam_m, sane.adam_v, 0, err,
                                sizeof(err)) != 0) {
        CHECK(0, "backend: %s", err);
        return check_finish("test_gpu_diverge");
    }
    CHECK(gpu.get_diverged != NULL, "the CUDA backend has no get_diverged");
    float *lc = malloc((size_t)calls * I * sizeof(float)), *lg = malloc((size_t)calls * I * sizeof(float));
    float *ls = malloc((size_t)calls * I * sizeof(float));
    CHECK(run(&cpu, 0, STEPS, lc, I) == 0, "cpu train");
    CHECK(run(&gpu, 0, STEPS, lg, I) == 0, "gpu train");
    CHECK(run(&gpu_sane, 0, STEPS, ls, I) == 0, "gpu train, sane settings");
    float *pc = malloc(L->total * sizeof(float)), *mc = malloc(L->total * sizeof(float));
    float *pg = malloc(L->total * sizeof(float)), *mg = malloc(L->total * sizeof(float));
    float *vg = malloc(L->total * sizeof(float));
    float *ps = malloc(L->total * sizeof(float)), *ms = malloc(L->total * sizeof(float));
    long dc[6], dg[6], ds[6];
    CHECK(cpu.get_state(&cpu, pc, mc, NULL) == 0 && cpu.get_diverged(&cpu, dc) == 0, "cpu state");
    CHECK(gpu.get_state(&gpu, pg, mg, vg) == 0 && gpu.get_diverged(&gpu, dg) == 0, "gpu state");
    CHECK(gpu_sane.get_state(&gpu_sane, ps, ms, NULL) == 0 && gpu_sane.get_diverged(&gpu_sane, ds) == 0, "state");
    long bad = 0;

    // the divergence steps
    printf("  diverged_step cpu:");
    for (int i = 0; i < I; i++) printf(" %ld", dc[i]);
    printf("\n  diverged_step gpu:");
    for (int i = 0; i < I; i++) printf(" %ld", dg[i]);
    printf("\n");
    for (int i = 0; i < I; i++) CHECK(dg[i] == dc[i], "instance %d: diverged_step gpu %ld, cpu %ld", i, dg[i], dc[i]);
    CHECK(dc[0] == 0 && dc[3] == 0, "healthy instances marked diverged on the CPU");
    CHECK(dc[1] > 1 && dc[1] <= STEPS, "instance 1 (lr 1e5) did not diverge after step 0 on the CPU: %ld", dc[1]);
    CHECK(dg[2] == 1 && dg[4] == 3 && dg[5] == 1, "instances 2, 4, 5: diverged_step %ld %ld %ld, expected 1 3 1",
          dg[2], dg[4], dg[5]);
    for (int i = 0; i < I; i++) CHECK(ds[i] == 0, "sane run: instance %d diverged", i);

    // frozen from the start: the state is the initial one, bit for bit; moments still zero
    for (int i = 2; i < I; i++) {
        if (i == 3) continue;
        CHECK(instance_equal(L, pg, g.params, i), "instance %d: frozen parameters changed", i);
        CHECK(instance_equal(L, mg, g.adam_m, i) && instance_equal(L, vg, g.adam_v, i),
              "instance %d: frozen Adam moments changed", i);
    }
    // instance 1: frozen where the CPU froze it (Adam at lr 1e5 amplifies rounding: 1e-4)
    bad += compare_instance("frozen", L, pg, pc, 1, 1e-4);
    // losses: NaN from the call after the step it froze at (the call's first step), as on the CPU
    for (int k = 0; k < calls; k++)
        for (int i = 0; i < I; i++) {
            const float c = lc[k * I + i], gv = lg[k * I + i];
            // frozen when the call starts (instance 4 always: it was frozen at create)
            const int frozen_before = i == 4 || (dc[i] != 0 && dc[i] <= (long)k * CALL);
            CHECK(isnan(c) == frozen_before || i == 2 || i == 5, "cpu loss of instance %d, call %d: %g", i, k, c);
            if (isfinite(c)) bad += compare("loss", &gv, &c, 1, 1e-7, 1e-4);
            else CHECK((isnan(c) && isnan(gv)) || gv == c, "instance %d, call %d: gpu loss %g, cpu loss %g", i, k, gv, c);
        }
    // the healthy instances: the CPU's to 1e-4; a sane run's bit for bit
    for (int i = 0; i < I; i += 3) {
        bad += compare_instance("healthy", L, pg, pc, i, 1e-4);
        CHECK(instance_equal(L, pg, ps, i) && instance_equal(L, mg, ms, i),
              "healthy instance %d differs from the same instance in a run without divergence", i);
        for (int k = 0; k < calls; k++)
            CHECK(memcmp(&lg[k * I + i], &ls[k * I + i], sizeof(float)) == 0,
                  "healthy instance %d's loss differs from the run without divergence", i);
    }

    // resume after RESUME_AT steps from the state and divergence steps read back
    {
        tms_backend_t first, second;
        float *p = malloc(L->total * sizeof(float)), *m = malloc(L->total * sizeof(float));
        float *v = malloc(L->total * sizeof(float)), *lr = malloc((size_t)calls * I * sizeof(float));
        long d[6], d2[6];
        CHECK(tms_cuda_backend_create(&first, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) == 0,
              "%s", err);
        CHECK(run(&first, 0, RESUME_AT, lr, I) == 0, "train to the stop");
        CHECK(first.get_state(&first, p, m, v) == 0 && first.get_diverged(&first, d) == 0, "state at the stop");
        first.destroy(&first);
        int frozen = 0;
        for (int i = 0; i < I; i++) {
            g.inst[i].diverged_step = d[i];
            frozen += d[i] != 0;
        }
        CHECK(frozen == 4, "at step %d, %d instances frozen, expected 4", RESUME_AT, frozen);
        CHECK(tms_cuda_backend_create(&second, &g.P, L, p, m, v, 0, err, sizeof(err)) == 0, "%s", err);
        // train() from RESUME_AT to STEPS in calls ending where the uninterrupted run's end
        float loss[6];
        CHECK(second.train(&second, RESUME_AT, 20, loss) == 0 && second.train(&second, 20, STEPS, loss) == 0,
              "train after the resume");
        CHECK(memcmp(loss, lg + 2 * I, sizeof(loss)) == 0, "the last call's losses differ after a resume");
        CHECK(second.get_state(&second, p, m, v) == 0 && second.get_diverged(&second, d2) == 0, "state");
        CHECK(memcmp(p, pg, L->total * sizeof(float)) == 0, "parameters differ after a resume");
        CHECK(memcmp(m, mg, L->total * sizeof(float)) == 0, "adam_m differs after a resume");
        CHECK(memcmp(v, vg, L->total * sizeof(float)) == 0, "adam_v differs after a resume");
        CHECK(memcmp(d2, dg, sizeof(d2)) == 0, "divergence steps differ after a resume");
        second.destroy(&second);
        free(p); free(m); free(v); free(lr);
    }
    CHECK(bad == 0, "%ld mismatches with the CPU", bad);
    free(lc); free(lg); free(ls); free(pc); free(mc); free(pg); free(mg); free(vg); free(ps); free(ms);
    cpu.destroy(&cpu);
    gpu.destroy(&gpu);
    gpu_sane.destroy(&gpu_sane);
    problem_free(&g);
    problem_free(&sane);
    return check_finish("test_gpu_diverge");
}
