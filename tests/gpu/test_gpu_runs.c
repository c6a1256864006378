// test_gpu_runs.c: whole runs on the GPU.
//   1. Data modes against the CPU: correlated feature sets, anticorrelated sets, the abs
//      task, and the abs task on correlated sets, 150 steps each (4 instances, n 6 in sets of
//      3, batch 64): the loss curve (the loss of every 15th step's batch) and the final
//      evaluation (evaluate() against tms_cpu_eval_loss on the CPU's parameters) agree to
//      1e-3 relative. Short runs on purpose: the backends differ only by rounding, which
//      Adam amplifies over long runs (test_gpu_train); 150 steps keep it below 1e-4.
//   2. TF32 (allow_tf32 = 1): GEMM inputs rounded to 10-bit mantissas, so the run only has
//      to stay close: loss curve and final evaluation within 1e-2 relative of the CPU's.
//      (An emulated GPU may compute TF32 in full fp32; then this checks only that it runs.)
//   3. Shards: a run of 6 instances, and the same instances trained as two separate
//      backends of 2 and 4 instances (what `--shard` does): parameters, Adam moments, losses
//      and evaluation losses bit-identical, GPU against GPU. (On a real GPU this relies on
//      cuBLAS computing each instance of a strided-batched GEMM the same way whatever the
//      batch count, which NVIDIA does not document; this test is the check.)
//   4. An empty shard: a backend of 0 instances is created, trains, reports and evaluates
//      nothing without error.
#include "gpu_check.h"

#define STEPS 150
#define EVERY 15
#define EVAL_SAMPLES 2048

static void run_against_cpu(const char *label, tms_model_t model, tms_data_t data, int tf32, double eps) {
    char err[1024], mname[128];
    printf("%s: %s, task %d, sets %d (k %d)%s\n", label, model_name(&model, mname, sizeof(mname)), data.task,
           data.sets, data.set_size, tf32 ? ", TF32" : "");
    gpu_problem_t g;
    if (problem_make(&g, model, 4, 64, STEPS, TMS_OPT_ADAMW, TMS_SCHED_COSINE, 10) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    g.P.data = data;
    for (int i = 0; i < 4; i++) g.inst[i].density = 0.3f / (float)(1 + i); // k density <= 1 for the sets
    const tms_layout_t *L = &g.L;
    const int I = g.P.instances, points = STEPS / EVERY;
    tms_backend_t cpu, gpu;
    if (tms_cpu_backend_create(&cpu, &g.P, L, g.params, g.adam_m, g.adam_v, 1, err, sizeof(err)) != 0 ||
        tms_cuda_backend_create(&gpu, &g.P, L, g.params, g.adam_m, g.adam_v, tf32, err, sizeof(err)) != 0) {
        CHECK(0, "backend: %s", err);
        problem_free(&g);
        return;
    }
    float *cc = malloc((size_t)points * I * sizeof(float)), *cg = malloc((size_t)points * I * sizeof(float));
    double e0[4];
    CHECK(gpu.evaluate(&gpu, EVAL_SAMPLES, e0, NULL) == 0, "gpu evaluate before training");
    for (int k = 0; k < points; k++) {
        CHECK(cpu.train(&cpu, (long)k * EVERY, (long)(k + 1) * EVERY, cc + (size_t)k * I) == 0, "cpu train");
        CHECK(gpu.train(&gpu, (long)k * EVERY, (long)(k + 1) * EVERY, cg + (size_t)k * I) == 0, "gpu train");
    }
    long bad = compare("loss curve", cg, cc, (size_t)points * I, 1e-7, eps);
    float *pc = malloc(L->total * sizeof(float));
    double ec[4], eg[4];
    CHECK(cpu.get_state(&cpu, pc, NULL, NULL) == 0, "cpu state");
    CHECK(cpu_eval_loss(&g, pc, EVAL_SAMPLES, ec) == 0, "cpu eval");
    CHECK(gpu.evaluate(&gpu, EVAL_SAMPLES, eg, NULL) == 0, "gpu evaluate");
    float fc[4] = {0}, fg[4] = {0};
    for (int i = 0; i < I; i++) {
        fc[i] = (float)ec[i];
        fg[i] = (float)eg[i];
    }
    bad += compare("final evaluation", fg, fc, (size_t)I, 1e-7, eps);
    double before = 0.0, after = 0.0;
    for (int i = 0; i < I; i++) {
        before += e0[i] / I;
        after += ec[i] / I;
    }
    printf("  evaluation loss, mean over instances: %.5f before, %.5f after (cpu), %.5f after (gpu)\n", before, after,
           (eg[0] + eg[1] + eg[2] + eg[3]) / 4);
    CHECK(after < before, "%s: the run did not learn (evaluation loss %g before, %g after)", label, before, after);
    CHECK(bad == 0, "%s: %ld mismatches", label, bad);
    free(cc); free(cg); free(pc);
    cpu.destroy(&cpu);
    gpu.destroy(&gpu);
    problem_free(&g);
}

// Instances [first, first + count) of g as their own problem (what `--shard` trains).
static void slice(const gpu_problem_t *g, int first, int count, tms_problem_t *P, tms_layout_t *L, float *params) {
    *P = g->P;
    P->instances = count;
    P->inst = g->inst + first;
    P->importance = g->importance + (size_t)first * g->P.model.n;
    tms_layout_init(L, &g->P.model, count);
    for (int t = 0; t < TMS_NTENSORS; t++)
        if (L->present[t])
            memcpy(params + L->offset[t], g->params + g->L.offset[t] + g->L.per_instance[t] * (size_t)first,
                   L->per_instance[t] * (size_t)count * sizeof(float));
}

static void check_shards(void) {
    tms_model_t model = {6, 3, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    printf("shards: 6 instances in one backend against 2 + 4 in two\n");
    gpu_problem_t g;
    if (problem_make(&g, model, 6, 64, 100, TMS_OPT_ADAMW, TMS_SCHED_LINEAR, 5) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    const tms_layout_t *L = &g.L;
    char err[1024];
    tms_backend_t full;
    if (tms_cuda_backend_create(&full, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "cuda backend: %s", err);
        problem_free(&g);
        return;
    }
    float loss_full[6], *pf = malloc(L->total * sizeof(float)), *mf = malloc(L->total * sizeof(float));
    float *vf = malloc(L->total * sizeof(float));
    double ef[6];
    CHECK(full.train(&full, 0, 50, loss_full) == 0 && full.train(&full, 50, 100, loss_full) == 0, "train");
    CHECK(full.get_state(&full, pf, mf, vf) == 0 && full.evaluate(&full, 512, ef, NULL) == 0, "state");
    const int firsts[2] = {0, 2}, counts[2] = {2, 4};
    long differ = 0;
    for (int s = 0; s < 2; s++) {
        tms_problem_t P;
        tms_layout_t Ls;
        float *p = malloc(L->total * sizeof(float)), *zeros = calloc(L->total, sizeof(float));
        float *ps = malloc(L->total * sizeof(float)), *ms = malloc(L->total * sizeof(float));
        float *vs = malloc(L->total * sizeof(float)), loss[6];
        double es[6];
        slice(&g, firsts[s], counts[s], &P, &Ls, p);
        tms_backend_t shard;
        if (tms_cuda_backend_create(&shard, &P, &Ls, p, zeros, zeros, 0, err, sizeof(err)) != 0) {
            CHECK(0, "cuda backend: %s", err);
            continue;
        }
        CHECK(shard.train(&shard, 0, 50, loss) == 0 && shard.train(&shard, 50, 100, loss) == 0, "train");
        CHECK(shard.get_state(&shard, ps, ms, vs) == 0 && shard.evaluate(&shard, 512, es, NULL) == 0, "state");
        differ += memcmp(loss, loss_full + firsts[s], counts[s] * sizeof(float)) != 0;
        differ += memcmp(es, ef + firsts[s], counts[s] * sizeof(double)) != 0;
        for (int t = 0; t < TMS_NTENSORS; t++) {
            if (!Ls.present[t]) continue;
            const size_t bytes = Ls.per_instance[t] * (size_t)counts[s] * sizeof(float);
            const size_t at = L->offset[t] + L->per_instance[t] * (size_t)firsts[s];
            differ += memcmp(ps + Ls.offset[t], pf + at, bytes) != 0;
            differ += memcmp(ms + Ls.offset[t], mf + at, bytes) != 0;
            differ += memcmp(vs + Ls.offset[t], vf + at, bytes) != 0;
        }
        shard.destroy(&shard);
        free(p); free(zeros); free(ps); free(ms); free(vs);
    }
    CHECK(differ == 0, "shards: %ld buffers differ from the single run", differ);
    if (differ == 0) printf("  both shards bit-identical to the single run (parameters, moments, losses, evaluation)\n");
    full.destroy(&full);
    free(pf); free(mf); free(vf);
    problem_free(&g);
}

// An empty shard (more shards than grid points) is a run of no instances: every call succeeds.
static void check_empty(void) {
    tms_model_t model = {5, 2, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    tms_problem_t P;
    memset(&P, 0, sizeof(P));
    P.model = model;
    P.batch_size = 16;
    P.steps = 10;
    P.beta1 = 0.9f;
    P.beta2 = 0.999f;
    P.eps = 1e-8f;
    tms_layout_t L;
    tms_layout_init(&L, &model, 0);
    float none[1] = {0};
    double loss[1] = {-1};
    long diverged[1] = {-7};
    char err[1024];
    tms_backend_t be;
    if (tms_cuda_backend_create(&be, &P, &L, none, none, none, 0, err, sizeof(err)) != 0) {
        CHECK(0, "0 instances: %s", err);
        return;
    }
    CHECK(be.train(&be, 0, 10, (float *)none) == 0, "0 instances: train");
    CHECK(be.get_state(&be, none, none, none) == 0, "0 instances: get_state");
    CHECK(be.get_diverged(&be, diverged) == 0 && diverged[0] == -7, "0 instances: get_diverged");
    CHECK(be.evaluate(&be, 100, loss, NULL) == 0 && loss[0] == -1, "0 instances: evaluate");
    be.destroy(&be);
    printf("empty shard: a backend of 0 instances trains, reports and evaluates nothing\n");
}

int main(void) {
    gpu_require("test_gpu_runs");
    const tms_model_t tied = {6, 3, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    const tms_model_t untied = {6, 3, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    const tms_model_t privileged = {6, 3, TMS_DECODER_TIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 1};
    run_against_cpu("correlated sets", tied, (tms_data_t){TMS_TASK_SPARSE, TMS_SETS_CORRELATED, 3, NULL}, 0, 1e-3);
    run_against_cpu("anticorrelated sets", untied, (tms_data_t){TMS_TASK_SPARSE, TMS_SETS_ANTICORRELATED, 3, NULL}, 0, 1e-3);
    run_against_cpu("abs task", privileged, (tms_data_t){TMS_TASK_ABS, TMS_SETS_NONE, 1, NULL}, 0, 1e-3);
    run_against_cpu("abs task, correlated sets", untied, (tms_data_t){TMS_TASK_ABS, TMS_SETS_CORRELATED, 3, NULL}, 0, 1e-3);
    run_against_cpu("tf32", untied, (tms_data_t){TMS_TASK_SPARSE, TMS_SETS_NONE, 1, NULL}, 1, 1e-2);
    check_shards();
    check_empty();
    return check_finish("test_gpu_runs");
}
