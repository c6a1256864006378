// test_gpu_fused.c: the fused CUDA path (kernels/fused_train.cuh, --cuda-path fused) against
// the CPU backend, the reference. Exits 77 without a GPU; CI runs it under the emulated CUDA
// of tests/emu in the forward, reverse and shuffled thread orders (emu_gpu_fused_*), with
// the whole runs of part 5 shortened there (TMS_EMU set: the emulator runs every CUDA
// thread as a fiber).
//   1. Every model variant, one chunk of CHUNK steps from a warmed state (nonzero biases and
//      Adam moments): tied/untied x hidden ReLU or none x output ReLU or none x bias on/off,
//      each on the sparse task and the abs task (tied abs models without b1, the privileged
//      basis model), and correlated and anticorrelated feature sets; AdamW and Adam
//      alternate, the lr schedule cycles constant / linear / cosine with warm-up. Loss,
//      parameters and both Adam moments to 1e-5 relative (floor 1e-5 x the tensor's largest
//      |value|), as test_gpu_step holds the gemm path. n = 7 (rows straddle Philox blocks),
//      batch 45 (tiles of 32 + 13 rows: a partial tile and a partial group). The chunk
//      starts at a step whose batches keep every ReLU input 1e-6 clear of the kink for the
//      whole chunk (min_kink_distance), where rounding could legitimately flip a mask.
//   2. Launch configuration: the same run at two block sizes (32 threads, fewer than the
//      tile's 64 rows; 96, more) is bit-identical: parameters, moments, losses.
//   3. Chunks and table windows: 20 steps in one train() call against four calls of 5, with
//      TMS_CUDA_TABLE_ROWS=7 (so one call spans several launches) and a linear lr decay:
//      bit-identical, and each call's reported loss against the CPU's to 1e-4.
//   4. Divergence, as test_gpu_diverge checks the gemm path: instances with lr 1e5, a NaN
//      weight, an infinite importance and one frozen before a resume freeze at the CPU's
//      steps with the state they had, report NaN after; the healthy ones match the CPU;
//      a resume from the state at step 12 (with the divergence steps) ends bit-identical.
//   5. Whole runs: the pentagon spec (n 5, m 2, tied, output ReLU, bias, densities 1, 0.2,
//      0.1, 0.05) and the phase diagram of 2 features in 1 dimension (11 densities x 11
//      importance ratios) trained on both backends; the final evaluation loss (evaluate()
//      against tms_cpu_eval_loss) to 2e-2 relative, and the same features represented
//      (||W_i|| > 0.5) in every pentagon instance and in at least 97% of the phase diagram's:
//      a phase-diagram point on the boundary between two solutions can be tipped either way
//      by a rounding difference, which is a property of the point, not an error. On a GPU at
//      the specs' sizes (10,000 steps, batch 1,024); under the emulator at 300 steps, batch
//      64, and 12 of the phase diagram's points (the check is then the same comparison on
//      shorter runs, not the converged geometry); TMS_GPU_FUSED_SHORT=1 makes a GPU run them
//      short too (for compute-sanitizer).
//   6. An empty shard (0 instances) creates, trains and evaluates without error.
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include "cuda_path.h"
#include "geometry.h"
#include "gpu_check.h"

#define EPS 1e-5
#define TOL 1e-5
#define CHUNK 2
#define WARM_STEPS 2
#define MAX_SEARCH 60
#define KINK 1e-6

// Short whole runs: under the emulator (the device says so; TMS_EMU too), or on a GPU with
// TMS_GPU_FUSED_SHORT=1 (e.g. under compute-sanitizer, which makes the full runs take hours).
static int emulated(void) {
    const char *e = getenv("TMS_EMU"), *s = getenv("TMS_GPU_FUSED_SHORT");
    char device[256] = "";
    tms_cuda_backend_available(device, sizeof(device));
    return strstr(device, "emulated CUDA") != NULL || (e && e[0] && strcmp(e, "0") != 0) ||
           (s && s[0] && strcmp(s, "0") != 0);
}

// A fused backend from a state; threads > 0 sets the block size (TMS_CUDA_FUSED_THREADS).
static int fused_create(tms_backend_t *be, const gpu_problem_t *g, const float *p, const float *m, const float *v,
                        int threads) {
    char err[1024], text[32];
    if (threads > 0) {
        snprintf(text, sizeof(text), "%d", threads);
        setenv("TMS_CUDA_FUSED_THREADS", text, 1);
    } else {
        unsetenv("TMS_CUDA_FUSED_THREADS");
    }
    const int rc = tms_cuda_backend_create_path(be, &g->P, &g->L, p, m, v, 0, TMS_CUDA_PATH_FUSED, err, sizeof(err));
    unsetenv("TMS_CUDA_FUSED_THREADS");
    if (rc != 0) CHECK(0, "fused backend: %s", err);
    return rc;
}

static int cpu_create(tms_backend_t *be, const gpu_problem_t *g, const float *p, const float *m, const float *v) {
    char err[1024];
    const int rc = tms_cpu_backend_create(be, &g->P, &g->L, p, m, v, 1, err, sizeof(err));
    if (rc != 0) CHECK(0, "cpu backend: %s", err);
    return rc;
}

typedef struct {
    float *p, *m, *v;
} state_t;

static int state_alloc(state_t *s, const tms_layout_t *L) {
    s->p = malloc(L->total * sizeof(float));
    s->m = malloc(L->total * sizeof(float));
    s->v = malloc(L->total * sizeof(float));
    return s->p && s->m && s->v ? 0 : -1;
}

static void state_free(state_t *s) {
    free(s->p);
    free(s->m);
    free(s->v);
}

static int bits_equal(const float *a, const float *b, size_t count) {
    return memcmp(a, b, count * sizeof(float)) == 0;
}

// ----------------------------------------------------------------------------
// 1. every variant, one chunk

static void check_variant(tms_model_t model, tms_data_t data, int optimizer, int schedule, const char *what) {
    gpu_problem_t g;
    char mname[128];
    printf("%s, %s, %s, schedule %d, %s\n", model_name(&model, mname, sizeof(mname)), what,
           optimizer == TMS_OPT_ADAM ? "adam" : "adamw", schedule, "fused");
    if (problem_make(&g, model, 3, 45, WARM_STEPS + MAX_SEARCH + CHUNK, optimizer, schedule, 3) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    g.P.data = data;
    if (data.sets == TMS_SETS_ANTICORRELATED)
        for (int i = 0; i < g.P.instances; i++) g.inst[i].density = 0.2f / (float)(i + 1); // k density <= 1
    const tms_layout_t *L = &g.L;
    const int I = g.P.instances;
    state_t warm = {0}, cs = {0}, gs = {0};
    if (state_alloc(&warm, L) || state_alloc(&cs, L) || state_alloc(&gs, L)) {
        CHECK(0, "out of memory");
        goto done;
    }
    // the warmed state: the CPU's, after WARM_STEPS steps from the initialisation
    tms_backend_t cpu, gpu;
    float *loss_c = calloc((size_t)I, sizeof(float)), *loss_g = calloc((size_t)I, sizeof(float));
    if (!loss_c || !loss_g || cpu_create(&cpu, &g, g.params, g.adam_m, g.adam_v)) goto done2;
    CHECK(cpu.train(&cpu, 0, WARM_STEPS, loss_c) == 0, "warm-up");
    CHECK(cpu.get_state(&cpu, warm.p, warm.m, warm.v) == 0, "warm state");
    cpu.destroy(&cpu);
    // a start step whose CHUNK batches stay clear of the ReLU kinks along the CPU's path
    long t0 = -1;
    for (long t = WARM_STEPS; t0 < 0 && t < WARM_STEPS + MAX_SEARCH; t++) {
        if (cpu_create(&cpu, &g, warm.p, warm.m, warm.v)) goto done2;
        double least = 1e30;
        for (long s = t; s < t + CHUNK && least >= KINK; s++) {
            CHECK(cpu.get_state(&cpu, cs.p, NULL, NULL) == 0, "cpu state");
            const double d = min_kink_distance(&g, cs.p, s);
            if (d < least) least = d;
            CHECK(cpu.train(&cpu, s, s + 1, loss_c) == 0, "cpu step");
        }
        cpu.destroy(&cpu);
        if (least >= KINK) t0 = t;
    }
    CHECK(t0 >= 0, "no chunk of %d steps clear of the ReLU kinks in %d tries", CHUNK, MAX_SEARCH);
    if (t0 < 0) goto done2;
    if (cpu_create(&cpu, &g, warm.p, warm.m, warm.v)) goto done2;
    if (fused_create(&gpu, &g, warm.p, warm.m, warm.v, 0)) {
        cpu.destroy(&cpu);
        goto done2;
    }
    for (int i = 0; i < I; i++) loss_g[i] = NAN;
    CHECK(cpu.train(&cpu, t0, t0 + CHUNK, loss_c) == 0, "cpu chunk");
    CHECK(gpu.train(&gpu, t0, t0 + CHUNK, loss_g) == 0, "fused chunk");
    CHECK(cpu.get_state(&cpu, cs.p, cs.m, cs.v) == 0, "cpu state");
    CHECK(gpu.get_state(&gpu, gs.p, gs.m, gs.v) == 0, "fused state");
    long bad = compare("loss", loss_g, loss_c, (size_t)I, 1e-7, EPS);
    bad += compare_state("params", L, gs.p, cs.p, TOL, EPS);
    bad += compare_state("adam_m", L, gs.m, cs.m, TOL, EPS);
    bad += compare_state("adam_v", L, gs.v, cs.v, TOL, EPS);
    CHECK(bad == 0, "%s, %s: %ld mismatches in the chunk [%ld, %ld)", mname, what, bad, t0, t0 + CHUNK);
    cpu.destroy(&cpu);
    gpu.destroy(&gpu);
done2:
    free(loss_c);
    free(loss_g);
done:
    state_free(&warm);
    state_free(&cs);
    state_free(&gs);
    problem_free(&g);
}

static void check_variants(void) {
    const tms_data_t sparse = {TMS_TASK_SPARSE, TMS_SETS_NONE, 0, NULL}, abs_task = {TMS_TASK_ABS, TMS_SETS_NONE, 0, NULL};
    const int schedules[3] = {TMS_SCHED_CONSTANT, TMS_SCHED_LINEAR, TMS_SCHED_COSINE};
    for (int task = 0; task < 2; task++)
        for (int combo = 0; combo < 16; combo++) {
            tms_model_t model = {7, 3, combo & 1 ? TMS_DECODER_UNTIED : TMS_DECODER_TIED,
                                 combo & 2 ? TMS_ACT_RELU : TMS_ACT_NONE, combo & 4 ? TMS_ACT_NONE : TMS_ACT_RELU,
                                 combo & 8 ? 0 : 1, task == 1 && !(combo & 1)};
            const int optimizer = ((combo ^ (combo >> 1) ^ (combo >> 2) ^ (combo >> 3) ^ task) & 1) ? TMS_OPT_ADAM
                                                                                                   : TMS_OPT_ADAMW;
            check_variant(model, task ? abs_task : sparse, optimizer, schedules[(combo + task) % 3],
                          task ? "abs task" : "sparse task");
        }
    // feature sets: n 8 in sets of 4 (correlated) and 2 (anticorrelated), the paper's models
    const tms_model_t relu_model = {8, 3, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    const tms_model_t untied_relu = {8, 3, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    check_variant(relu_model, (tms_data_t){TMS_TASK_SPARSE, TMS_SETS_CORRELATED, 4, NULL}, TMS_OPT_ADAMW,
                  TMS_SCHED_COSINE, "correlated sets of 4");
    check_variant(untied_relu, (tms_data_t){TMS_TASK_SPARSE, TMS_SETS_ANTICORRELATED, 2, NULL}, TMS_OPT_ADAM,
                  TMS_SCHED_LINEAR, "anticorrelated sets of 2");
    check_variant(relu_model, (tms_data_t){TMS_TASK_ABS, TMS_SETS_CORRELATED, 2, NULL}, TMS_OPT_ADAMW,
                  TMS_SCHED_CONSTANT, "abs task, correlated sets of 2");
}

// ----------------------------------------------------------------------------
// 2. two block sizes, 3. chunks and table windows

static int run_fused(const gpu_problem_t *g, int threads, const long *calls, int ncalls, state_t *out, float *losses,
                     long *diverged) {
    tms_backend_t be;
    if (fused_create(&be, g, g->params, g->adam_m, g->adam_v, threads)) return -1;
    int rc = 0;
    for (int k = 0; k < ncalls && rc == 0; k++)
        rc = be.train(&be, calls[k], calls[k + 1], losses + (size_t)k * g->P.instances);
    if (rc == 0) rc = be.get_state(&be, out->p, out->m, out->v);
    if (rc == 0 && diverged) rc = be.get_diverged(&be, diverged);
    be.destroy(&be);
    return rc;
}

static void check_block_sizes(tms_data_t data, const char *what) {
    tms_model_t model = {8, 3, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    gpu_problem_t g;
    if (problem_make(&g, model, 3, 100, 6, TMS_OPT_ADAMW, TMS_SCHED_COSINE, 2) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    g.P.data = data;
    for (int i = 0; i < g.P.instances; i++) g.inst[i].density = 0.4f / (float)(i + 1);
    tms_fused_plan_t plan;
    CHECK(tms_fused_plan(&model, 100, &plan) == 0 && plan.tile_rows == 64, "tile of 64 rows expected (got %d)",
          plan.tile_rows);
    const long calls[3] = {0, 4, 6};
    state_t a = {0}, b = {0};
    float loss_a[6], loss_b[6];
    if (state_alloc(&a, &g.L) || state_alloc(&b, &g.L)) {
        CHECK(0, "out of memory");
    } else if (run_fused(&g, 32, calls, 2, &a, loss_a, NULL) == 0 && run_fused(&g, 96, calls, 2, &b, loss_b, NULL) == 0) {
        const int same = bits_equal(a.p, b.p, g.L.total) && bits_equal(a.m, b.m, g.L.total) &&
                         bits_equal(a.v, b.v, g.L.total) && bits_equal(loss_a, loss_b, 6);
        CHECK(same, "%s: 32 and 96 threads per block differ", what);
        const int moved = !bits_equal(a.p, g.params, g.L.total);
        CHECK(moved, "%s: no parameter changed", what);
        printf("block sizes 32 and 96, %s: %s\n", what, same ? "bit-identical" : "DIFFERENT");
    }
    state_free(&a);
    state_free(&b);
    problem_free(&g);
}

static void check_chunks(void) {
    tms_model_t model = {6, 2, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    gpu_problem_t g;
    const long steps = 20;
    if (problem_make(&g, model, 3, 40, steps, TMS_OPT_ADAMW, TMS_SCHED_LINEAR, 3) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    setenv("TMS_CUDA_TABLE_ROWS", "7", 1);
    const long one[2] = {0, steps}, four[5] = {0, 5, 10, 15, 20};
    state_t a = {0}, b = {0}, c = {0};
    float loss_one[3], loss_four[12], loss_cpu[12];
    if (state_alloc(&a, &g.L) || state_alloc(&b, &g.L) || state_alloc(&c, &g.L)) {
        CHECK(0, "out of memory");
    } else if (run_fused(&g, 0, one, 1, &a, loss_one, NULL) == 0 && run_fused(&g, 0, four, 4, &b, loss_four, NULL) == 0) {
        const int same = bits_equal(a.p, b.p, g.L.total) && bits_equal(a.m, b.m, g.L.total) &&
                         bits_equal(a.v, b.v, g.L.total) && bits_equal(loss_one, loss_four, 3);
        CHECK(same, "20 steps in one call and in four calls of 5 differ (table windows of 7)");
        printf("chunks: one call of 20 and four of 5 (table windows of 7): %s\n", same ? "bit-identical" : "DIFFERENT");
        tms_backend_t cpu;
        if (cpu_create(&cpu, &g, g.params, g.adam_m, g.adam_v) == 0) {
            for (int k = 0; k < 4; k++) CHECK(cpu.train(&cpu, four[k], four[k + 1], loss_cpu + 3 * k) == 0, "cpu");
            CHECK(cpu.get_state(&cpu, c.p, c.m, c.v) == 0, "cpu state");
            cpu.destroy(&cpu);
            long bad = compare("losses of the four calls", loss_four, loss_cpu, 12, 1e-7, 1e-4);
            bad += compare_state("params after 20 steps", &g.L, b.p, c.p, 1e-4, 1e-4);
            CHECK(bad == 0, "chunks: %ld mismatches against the CPU", bad);
        }
    }
    unsetenv("TMS_CUDA_TABLE_ROWS");
    state_free(&a);
    state_free(&b);
    state_free(&c);
    problem_free(&g);
}

// ----------------------------------------------------------------------------
// 4. divergence

#define DSTEPS 30
#define DCALL 10
#define RESUME_AT 12

static void make_diverging(gpu_problem_t *g, int bad) {
    tms_model_t model = {5, 2, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    CHECK(problem_make(g, model, 6, 48, DSTEPS, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) == 0, "problem");
    if (!bad) return;
    g->inst[1].lr = 1e5f;
    g->params[g->L.offset[TMS_T_W] + 2 * 10 + 3] = NAN; // instance 2, W[0][3]
    g->inst[4].diverged_step = 3;
    g->importance[5 * 5 + 0] = INFINITY; // instance 5, feature 0
}

static int instance_equal(const tms_layout_t *L, const float *a, const float *b, int i) {
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!L->present[t]) continue;
        const size_t per = L->per_instance[t], at = L->offset[t] + per * (size_t)i;
        if (memcmp(a + at, b + at, per * sizeof(float)) != 0) return 0;
    }
    return 1;
}

static void check_divergence(void) {
    gpu_problem_t g, sane;
    make_diverging(&g, 1);
    make_diverging(&sane, 0);
    const int I = 6;
    const long calls[4] = {0, DCALL, 2 * DCALL, DSTEPS};
    state_t f = {0}, c = {0}, s = {0}, r = {0};
    float loss_f[3 * 6], loss_c[3 * 6], loss_s[3 * 6], loss_r[2 * 6];
    long div_f[6], div_c[6], div_r[6], div_s[6];
    if (state_alloc(&f, &g.L) || state_alloc(&c, &g.L) || state_alloc(&s, &g.L) || state_alloc(&r, &g.L)) {
        CHECK(0, "out of memory");
        goto done;
    }
    if (run_fused(&g, 0, calls, 3, &f, loss_f, div_f) || run_fused(&sane, 0, calls, 3, &s, loss_s, div_s)) goto done;
    tms_backend_t cpu;
    if (cpu_create(&cpu, &g, g.params, g.adam_m, g.adam_v)) goto done;
    for (int k = 0; k < 3; k++) CHECK(cpu.train(&cpu, calls[k], calls[k + 1], loss_c + k * I) == 0, "cpu");
    CHECK(cpu.get_state(&cpu, c.p, c.m, c.v) == 0 && cpu.get_diverged(&cpu, div_c) == 0, "cpu state");
    cpu.destroy(&cpu);
    for (int i = 0; i < I; i++) {
        CHECK(div_f[i] == div_c[i], "instance %d: diverged_step %ld on the fused path, %ld on the CPU", i, div_f[i],
              div_c[i]);
        for (int k = 0; k < 3; k++) {
            const int frozen_before = div_c[i] != 0 && div_c[i] - 1 < calls[k];
            if (frozen_before) CHECK(isnan(loss_f[k * I + i]), "instance %d call %d: loss %g, expected NaN", i, k,
                                     loss_f[k * I + i]);
        }
    }
    printf("divergence steps: fused %ld %ld %ld %ld %ld %ld, cpu %ld %ld %ld %ld %ld %ld\n", div_f[0], div_f[1],
           div_f[2], div_f[3], div_f[4], div_f[5], div_c[0], div_c[1], div_c[2], div_c[3], div_c[4], div_c[5]);
    CHECK(div_c[0] == 0 && div_c[1] > 1 && div_c[2] == 1 && div_c[3] == 0 && div_c[4] == 3 && div_c[5] == 1,
          "the CPU's divergence steps are not the ones this test is built on");
    for (int i = 2; i < I; i += 1)
        if (i != 3) CHECK(instance_equal(&g.L, f.p, g.params, i), "frozen instance %d changed", i);
    // the healthy instances: as on the CPU, and bit for bit as in a run without the bad slots
    for (int i = 0; i < I; i += 3) {
        CHECK(instance_equal(&g.L, f.p, s.p, i) && instance_equal(&g.L, f.m, s.m, i) &&
                  instance_equal(&g.L, f.v, s.v, i),
              "healthy instance %d differs from the same instance in a run without diverging neighbours", i);
        for (int t = 0; t < TMS_NTENSORS; t++) {
            if (!g.L.present[t]) continue;
            const size_t per = g.L.per_instance[t], at = g.L.offset[t] + per * (size_t)i;
            CHECK(compare("healthy params", f.p + at, c.p + at, per, 1e-4 * max_abs(c.p + at, per), 1e-4) == 0,
                  "healthy instance %d against the CPU", i);
        }
    }
    // resume: stop at RESUME_AT, a new backend from that state and the divergence steps
    {
        const long first[2] = {0, RESUME_AT};
        float l1[6];
        state_t mid = {0};
        if (state_alloc(&mid, &g.L) || run_fused(&g, 0, first, 1, &mid, l1, div_r)) {
            state_free(&mid);
            goto done;
        }
        for (int i = 0; i < I; i++) g.inst[i].diverged_step = div_r[i];
        tms_backend_t be;
        if (fused_create(&be, &g, mid.p, mid.m, mid.v, 0) == 0) {
            CHECK(be.train(&be, RESUME_AT, 2 * DCALL, loss_r) == 0 && be.train(&be, 2 * DCALL, DSTEPS, loss_r + I) == 0,
                  "resumed train");
            CHECK(be.get_state(&be, r.p, r.m, r.v) == 0 && be.get_diverged(&be, div_r) == 0, "resumed state");
            be.destroy(&be);
            CHECK(bits_equal(r.p, f.p, g.L.total) && bits_equal(r.m, f.m, g.L.total) && bits_equal(r.v, f.v, g.L.total),
                  "resumed at step %d: not bit-identical to the uninterrupted run", RESUME_AT);
            CHECK(memcmp(div_r, div_f, sizeof(div_r)) == 0, "resumed: divergence steps differ");
            printf("resume at step %d: bit-identical\n", RESUME_AT);
        }
        state_free(&mid);
    }
done:
    state_free(&f);
    state_free(&c);
    state_free(&s);
    state_free(&r);
    problem_free(&g);
    problem_free(&sane);
}

// ----------------------------------------------------------------------------
// 5. whole runs

static int represented(const tms_layout_t *L, const float *params, int i, int m, int n, int *mask) {
    float norm[64];
    tms_feature_geometry(params + L->offset[TMS_T_W] + (size_t)i * m * n, m, n, norm, NULL, NULL);
    int count = 0;
    for (int f = 0; f < n; f++) {
        mask[f] = norm[f] > 0.5f;
        count += mask[f];
    }
    return count;
}

// Train g on both backends, compare the evaluation losses and the represented features.
// Returns the number of instances whose represented features differ.
static int whole_run(gpu_problem_t *g, const char *what, int eval_samples) {
    const tms_layout_t *L = &g->L;
    const int I = g->P.instances, n = g->P.model.n, m = g->P.model.m;
    state_t c = {0}, f = {0};
    double *eval_c = malloc((size_t)I * sizeof(double)), *eval_f = malloc((size_t)I * sizeof(double));
    float *loss = malloc((size_t)I * sizeof(float));
    int differ = -1;
    if (state_alloc(&c, L) || state_alloc(&f, L) || !eval_c || !eval_f || !loss) goto done;
    tms_backend_t cpu, gpu;
    if (cpu_create(&cpu, g, g->params, g->adam_m, g->adam_v)) goto done;
    CHECK(cpu.train(&cpu, 0, g->P.steps, loss) == 0, "cpu run");
    CHECK(cpu.get_state(&cpu, c.p, c.m, c.v) == 0, "cpu state");
    cpu.destroy(&cpu);
    if (fused_create(&gpu, g, g->params, g->adam_m, g->adam_v, 0)) goto done;
    CHECK(gpu.train(&gpu, 0, g->P.steps, loss) == 0, "fused run");
    CHECK(gpu.get_state(&gpu, f.p, f.m, f.v) == 0, "fused state");
    CHECK(gpu.evaluate(&gpu, eval_samples, eval_f, NULL) == 0, "fused evaluate");
    gpu.destroy(&gpu);
    CHECK(tms_cpu_eval_loss(&g->P, L, c.p, eval_samples, 0, eval_c, NULL) == 0, "cpu evaluate");
    differ = 0;
    long loss_bad = 0;
    int counts_c = 0, counts_f = 0;
    for (int i = 0; i < I; i++) {
        int mc[64], mf[64];
        counts_c += represented(L, c.p, i, m, n, mc);
        counts_f += represented(L, f.p, i, m, n, mf);
        if (memcmp(mc, mf, (size_t)n * sizeof(int)) != 0) differ++;
        if (!(fabs(eval_f[i] - eval_c[i]) <= 2e-2 * fabs(eval_c[i]) + 1e-7)) {
            if (loss_bad < 5)
                fprintf(stderr, "  MISMATCH %s instance %d: evaluation loss fused %.6g cpu %.6g\n", what, i, eval_f[i],
                        eval_c[i]);
            loss_bad++;
        }
    }
    printf("%s: %d instances, %ld steps, batch %d: represented features %d (cpu) %d (fused), %d instances differ, "
           "%ld evaluation losses beyond 2e-2\n",
           what, I, g->P.steps, g->P.batch_size, counts_c, counts_f, differ, loss_bad);
    CHECK(loss_bad == 0, "%s: %ld evaluation losses differ by more than 2e-2 relative", what, loss_bad);
done:
    state_free(&c);
    state_free(&f);
    free(eval_c);
    free(eval_f);
    free(loss);
    return differ;
}

static void check_whole_runs(void) {
    const int emu = emulated();
    const long steps = emu ? 300 : 10000;
    const int batch = emu ? 64 : 1024, samples = emu ? 1024 : 16384;
    // the pentagon spec (experiments/pentagon.json): 4 densities x 4 seeds (1 seed emulated)
    {
        const float densities[4] = {1.0f, 0.2f, 0.1f, 0.05f};
        const int seeds = emu ? 1 : 4, I = 4 * seeds;
        tms_model_t model = {5, 2, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
        gpu_problem_t g;
        if (problem_make(&g, model, I, batch, steps, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) != 0) {
            CHECK(0, "out of memory");
            return;
        }
        for (int i = 0; i < I; i++) {
            g.inst[i].density = densities[i / seeds];
            g.inst[i].lr = 1e-3f;
            g.inst[i].weight_decay = 0.01f;
            g.inst[i].seed = 0;
            g.inst[i].replicate = i % seeds;
            g.inst[i].key = tms_instance_key(0, (uint64_t)(i % seeds));
            for (int f = 0; f < 5; f++) g.importance[i * 5 + f] = 1.0f;
        }
        tms_init_params(&g.P, &g.L, g.params);
        const int differ = whole_run(&g, "pentagon", samples);
        CHECK(differ == 0, "pentagon: %d instances represent other features than on the CPU", differ);
        problem_free(&g);
    }
    // the phase diagram of 2 features in 1 dimension (experiments/specs/phase_2_1.json), one seed
    {
        const float densities[11] = {1.0f, 0.631f, 0.3981f, 0.2512f, 0.1585f, 0.1f, 0.0631f, 0.0398f, 0.0251f,
                                     0.0158f, 0.01f};
        const float ratios[11] = {0.1f, 0.1585f, 0.2512f, 0.3981f, 0.631f, 1.0f, 1.5849f, 2.5119f, 3.9811f,
                                  6.3096f, 10.0f};
        const int I = emu ? 12 : 121;
        tms_model_t model = {2, 1, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
        gpu_problem_t g;
        if (problem_make(&g, model, I, batch, steps, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) != 0) {
            CHECK(0, "out of memory");
            return;
        }
        for (int i = 0; i < I; i++) {
            const int point = emu ? (i * 10) % 121 : i; // emulated: 12 points spread over the grid
            g.inst[i].density = densities[point / 11];
            g.inst[i].lr = 1e-3f;
            g.inst[i].weight_decay = 0.01f;
            g.inst[i].seed = 0;
            g.inst[i].replicate = 0;
            g.inst[i].key = tms_instance_key((uint64_t)point, 0);
            g.importance[i * 2 + 0] = 1.0f;
            g.importance[i * 2 + 1] = ratios[point % 11];
        }
        tms_init_params(&g.P, &g.L, g.params);
        const int differ = whole_run(&g, "phase diagram 2 -> 1", samples);
        CHECK(differ >= 0 && differ <= I * 3 / 100, "phase diagram: %d of %d instances represent other features "
              "than on the CPU (at most 3%% may: boundary points)", differ, I);
        problem_free(&g);
    }
}

// An empty shard (more shards than grid points) is a valid run of no instances on the fused
// path too: create, train, get_state, get_diverged and evaluate do nothing and succeed.
static void check_empty(void) {
    tms_model_t model = {5, 2, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    gpu_problem_t g;
    if (problem_make(&g, model, 0, 64, 10, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    tms_backend_t be;
    float loss[1], p[1], mm[1], v[1];
    long div[1];
    double eval[1];
    if (fused_create(&be, &g, p, mm, v, 0) == 0) {
        CHECK(be.train(&be, 0, 10, loss) == 0 && be.get_state(&be, p, mm, v) == 0 && be.get_diverged(&be, div) == 0 &&
                  be.evaluate(&be, 64, eval, NULL) == 0,
              "a fused backend of 0 instances must train, report and evaluate nothing without error");
        be.destroy(&be);
        printf("empty shard: 0 instances train on the fused path\n");
    }
    problem_free(&g);
}

int main(void) {
    gpu_require("test_gpu_fused");
    check_empty();
    check_variants();
    check_block_sizes((tms_data_t){TMS_TASK_SPARSE, TMS_SETS_NONE, 0, NULL}, "independent features");
    check_block_sizes((tms_data_t){TMS_TASK_ABS, TMS_SETS_ANTICORRELATED, 2, NULL}, "abs task, anticorrelated sets");
    check_chunks();
    check_divergence();
    check_whole_runs();
    return check_finish("test_gpu_fused");
}
