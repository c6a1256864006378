// test_gpu_eval.c: the final evaluation on the GPU (the backend's evaluate()) against the CPU.
// For trained parameters (20 GPU steps from the initial state, so biases are nonzero), every
// instance's loss and standard error on `samples` fresh samples must match a reference
// computed here on the CPU sample by sample: rows r of the evaluation subsequence
// (TMS_SUBSEQ_EVAL) drawn by tms_sample_tile, run forward by tms_forward one row at a
// time, S_r / n the sample's loss; the loss is the mean and the standard error the sample
// standard deviation / sqrt(samples). The loss must also match the CPU backend's own
// evaluation (tms_cpu_eval_loss). Tolerances: 1e-5 relative on the loss, 1e-4 on the
// standard error (a difference of two close sums); a batch that differed by a single
// sample would move the loss by ~1/samples, far more.
// Chunks: TMS_CUDA_EVAL_ROWS=12 with 101 samples gives 8 full chunks and a 5-row tail (and
// with n = 7, chunk starts whose element offset r n is not a multiple of 8); 8 samples, one
// partial chunk; the default chunking with 1000 samples. Model variants: tied with output
// ReLU and bias, untied with hidden ReLU and hidden bias (no output ReLU), and the abs task
// on anticorrelated feature sets (a separate target buffer). Evaluating leaves the
// parameters alone, and training after it goes on as before.
#define _POSIX_C_SOURCE 200809L
#include "gpu_check.h"

// The reference: loss (mean over samples and features) and its standard error, double.
static int reference(const gpu_problem_t *g, const float *params, long samples, double *loss, double *se) {
    const tms_model_t *M = &g->P.model;
    const int n = M->n, m = M->m;
    float *x = malloc(n * sizeof(float)), *t = malloc(n * sizeof(float)), *z = malloc(m * sizeof(float));
    float *h = malloc(m * sizeof(float)), *y = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    float *decT = malloc((size_t)m * n * sizeof(float));
    double *s = malloc((size_t)samples * sizeof(double));
    if (!x || !t || !z || !h || !y || !out || !decT || !s) return -1;
    const int has_target = tms_data_has_target(&g->P.data);
    for (int i = 0; i < g->P.instances; i++) {
        tms_view_t v = tms_view(&g->L, (float *)params, i);
        tms_decoder_T(M, &v, decT);
        double sum = 0.0;
        for (long r = 0; r < samples; r++) {
            tms_sample_tile(&g->P.data, g->inst[i].key, TMS_SUBSEQ_EVAL, n, r, 1, g->inst[i].density, x,
                            has_target ? t : NULL);
            s[r] = tms_forward(M, &v, decT, g->importance + (size_t)i * n, x, has_target ? t : x, 1, z, h, y, out) / n;
            sum += s[r];
        }
        const double mean = sum / samples;
        double sq = 0.0;
        for (long r = 0; r < samples; r++) sq += (s[r] - mean) * (s[r] - mean);
        loss[i] = mean;
        se[i] = samples > 1 ? sqrt(sq / (samples - 1)) / sqrt((double)samples) : NAN;
    }
    free(x); free(t); free(z); free(h); free(y); free(out); free(decT); free(s);
    return 0;
}

static long compare_d(const char *what, const double *got, const double *ref, int count, double eps) {
    long bad = 0;
    for (int i = 0; i < count; i++) {
        const double d = fabs(got[i] - ref[i]);
        if (!(d <= eps * fabs(ref[i]) + 1e-12)) {
            fprintf(stderr, "  MISMATCH %s[%d]: gpu %.9g reference %.9g (relative %.2e)\n", what, i, got[i], ref[i],
                    d / fabs(ref[i]));
            bad++;
        }
    }
    if (!bad) printf("  %s: %d values agree to %.0e relative\n", what, count, eps);
    return bad;
}

static void check(tms_model_t model, tms_data_t data, const char *eval_rows, long samples) {
    char mname[128], err[1024];
    printf("%s, task %d sets %d, %ld samples, TMS_CUDA_EVAL_ROWS=%s\n", model_name(&model, mname, sizeof(mname)),
           data.task, data.sets, samples, eval_rows ? eval_rows : "(default)");
    if (eval_rows) setenv("TMS_CUDA_EVAL_ROWS", eval_rows, 1);
    else unsetenv("TMS_CUDA_EVAL_ROWS");
    gpu_problem_t g;
    if (problem_make(&g, model, 3, 32, 100, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    g.P.data = data;
    for (int i = 0; i < 3; i++) g.inst[i].lr = 1e-2f; // move the parameters (biases too) in 20 steps
    const tms_layout_t *L = &g.L;
    const int I = g.P.instances;
    tms_backend_t gpu;
    if (tms_cuda_backend_create(&gpu, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "cuda backend: %s", err);
        problem_free(&g);
        return;
    }
    CHECK(gpu.evaluate != NULL, "the CUDA backend has no evaluate");
    float *loss = malloc(I * sizeof(float)), *p = malloc(L->total * sizeof(float));
    float *p_after = malloc(L->total * sizeof(float));
    double got[3], got_se[3], ref[3], ref_se[3], cpu[3];
    CHECK(gpu.train(&gpu, 0, 20, loss) == 0, "gpu train");
    CHECK(gpu.get_state(&gpu, p, NULL, NULL) == 0, "gpu state");
    CHECK(gpu.evaluate(&gpu, samples, got, got_se) == 0, "gpu evaluate");
    CHECK(reference(&g, p, samples, ref, ref_se) == 0, "out of memory");
    long bad = compare_d("loss", got, ref, I, 1e-5);
    bad += compare_d("standard error", got_se, ref_se, I, 1e-4);
    CHECK(cpu_eval_loss(&g, p, samples, cpu) == 0, "cpu eval");
    bad += compare_d("loss against tms_cpu_eval_loss", got, cpu, I, 1e-5);
    // NULL standard error is allowed; the losses do not change
    double again[3];
    CHECK(gpu.evaluate(&gpu, samples, again, NULL) == 0, "gpu evaluate without loss_se");
    CHECK(memcmp(again, got, sizeof(again)) == 0, "a second evaluation differs");
    // the state is untouched, and training goes on
    CHECK(gpu.get_state(&gpu, p_after, NULL, NULL) == 0, "gpu state");
    CHECK(memcmp(p, p_after, L->total * sizeof(float)) == 0, "evaluate changed the parameters");
    tms_backend_t cpu_be;
    CHECK(tms_cpu_backend_create(&cpu_be, &g.P, L, g.params, g.adam_m, g.adam_v, 1, err, sizeof(err)) == 0, "%s", err);
    float *loss_c = malloc(I * sizeof(float));
    CHECK(cpu_be.train(&cpu_be, 0, 21, loss_c) == 0, "cpu train");
    CHECK(gpu.train(&gpu, 20, 21, loss) == 0, "gpu train after evaluate");
    CHECK(cpu_be.train(&cpu_be, 21, 22, loss_c) == 0, "cpu train");
    CHECK(gpu.train(&gpu, 21, 22, loss) == 0, "gpu train after evaluate");
    bad += compare("loss of step 21 after evaluate", loss, loss_c, (size_t)I, 1e-7, 1e-4);
    CHECK(bad == 0, "%s: %ld mismatches", mname, bad);
    cpu_be.destroy(&cpu_be);
    gpu.destroy(&gpu);
    free(loss); free(loss_c); free(p); free(p_after);
    problem_free(&g);
}

int main(void) {
    gpu_require("test_gpu_eval");
    const tms_data_t sparse = {TMS_TASK_SPARSE, TMS_SETS_NONE, 1, NULL};
    const tms_model_t tied = {7, 3, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    const tms_model_t untied = {7, 3, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_NONE, 1, 0};
    check(tied, sparse, "12", 101);
    check(untied, sparse, "12", 101);
    check(tied, sparse, "12", 8);
    check(untied, sparse, NULL, 1000);
    const tms_model_t abs_model = {6, 3, TMS_DECODER_TIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 1};
    check(abs_model, (tms_data_t){TMS_TASK_ABS, TMS_SETS_ANTICORRELATED, 3, NULL}, "12", 101);
    // a bad override is refused at create, naming it
    setenv("TMS_CUDA_EVAL_ROWS", "6", 1);
    gpu_problem_t g;
    CHECK(problem_make(&g, tied, 2, 8, 10, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) == 0, "problem");
    tms_backend_t be;
    char err[1024] = "";
    const int rc = tms_cuda_backend_create(&be, &g.P, &g.L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err));
    CHECK(rc != 0 && strstr(err, "TMS_CUDA_EVAL_ROWS=6") != NULL, "TMS_CUDA_EVAL_ROWS=6 accepted (%s)", err);
    if (rc == 0) be.destroy(&be);
    problem_free(&g);
    unsetenv("TMS_CUDA_EVAL_ROWS");
    return check_finish("test_gpu_eval");
}
