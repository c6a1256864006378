// test_cpu_paths.c: the CPU backend's product paths against each other and against the
// model's gradient in double:
//   - the BLAS path (cpu_blas.c: SGEMM, dense x) and the loops (cpu_model.inc) give the loss
//     and the gradient of the double reference (tms_forward_d / tms_backward_d, which
//     test_grad checks against finite differences) within float rounding, for tied and
//     untied decoders, hidden ReLU with bias, output ReLU or none, the abs task's target,
//     and a tile whose rows are not a multiple of anything; a few coordinates are checked
//     directly against central differences of the double loss too;
//   - the sparse products (x's zeros skipped) match the dense SGEMM ones; the index of
//     nonzeros is exactly x's; tms_sparse_tile's choice follows its measured density limit;
//   - the backend trains to the same bits at 1, 2 and 3 threads, on the BLAS path with one
//     instance (tiles shared among threads), two (split), three (one thread each), and on
//     the loops; and training moves the parameters and lowers the loss.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "cpu_backend.h"
#include "cpu_blas.h"
#include "tms.h"

// ----------------------------------------------------------------------------
// one tile: each path against the double reference

typedef struct {
    const char *name;
    tms_model_t M;
    int task;
    float density;
} model_case_t;

static double loss_d(const tms_model_t *M, const tms_view_d_t *v, const double *imp, const double *x,
                     const double *t, int rows, double *buf) {
    const int n = M->n, m = M->m;
    double *decT = buf, *z = decT + m * n, *h = z + (size_t)m * rows, *y = h + (size_t)m * rows,
           *out = y + (size_t)n * rows;
    tms_decoder_T_d(M, v, decT);
    return tms_forward_d(M, v, decT, imp, x, t, rows, z, h, y, out);
}

static void check_tile(const model_case_t *mc, int rows) {
    const tms_model_t *M = &mc->M;
    const int n = M->n, m = M->m;
    const tms_data_t D = {mc->task, TMS_SETS_NONE, 0, NULL};
    tms_layout_t L;
    tms_layout_init(&L, M, 1);
    const size_t P = L.total, tn = (size_t)n * rows, tm = (size_t)m * rows;
    float *params = malloc(P * sizeof(float));
    double *pd = malloc(P * sizeof(double)), *gd = calloc(P, sizeof(double));
    // parameters: a fixed pseudo-random pattern, biases nonzero so every ReLU case occurs
    for (size_t e = 0; e < P; e++) params[e] = (float)(0.6 * sin(1.7 * (double)e + 0.3));
    for (size_t e = 0; e < P; e++) pd[e] = params[e];
    float *x = malloc(tn * sizeof(float)), *t = malloc(tn * sizeof(float));
    tms_sample_tile(&D, 99, 5, n, 0, rows, mc->density, x, t);
    const float *target = tms_data_has_target(&D) ? t : x;
    float imp[64];
    double impd[64], *xd = malloc(tn * sizeof(double)), *td = malloc(tn * sizeof(double));
    for (int i = 0; i < n; i++) impd[i] = imp[i] = (float)pow(0.9, i);
    for (size_t e = 0; e < tn; e++) {
        xd[e] = x[e];
        td[e] = target[e];
    }
    const double scale = 1.0 / ((double)rows * n);
    // the reference, in double
    tms_view_d_t vd = {pd + L.offset[TMS_T_W], L.present[TMS_T_W2] ? pd + L.offset[TMS_T_W2] : NULL,
                       L.present[TMS_T_B1] ? pd + L.offset[TMS_T_B1] : NULL,
                       L.present[TMS_T_B] ? pd + L.offset[TMS_T_B] : NULL};
    tms_view_d_t gv = {gd + L.offset[TMS_T_W], L.present[TMS_T_W2] ? gd + L.offset[TMS_T_W2] : NULL,
                       L.present[TMS_T_B1] ? gd + L.offset[TMS_T_B1] : NULL,
                       L.present[TMS_T_B] ? gd + L.offset[TMS_T_B] : NULL};
    double *buf = malloc(((size_t)m * n + 2 * tm + 2 * tn) * sizeof(double));
    double *dyd = malloc(tn * sizeof(double)), *dhd = malloc(tm * sizeof(double));
    double ref_loss = loss_d(M, &vd, impd, xd, td, rows, buf) * scale;
    {
        double *decT = buf, *z = decT + m * n, *h = z + tm, *y = h + tm, *out = y + tn;
        tms_backward_d(M, &vd, decT, impd, xd, td, rows, z, y, h, out, scale, dyd, dhd, &gv);
    }
    double gmax = 0;
    for (size_t e = 0; e < P; e++) gmax = fmax(gmax, fabs(gd[e]));
    // central differences of the double loss at a few coordinates, against the reference
    for (size_t e = 0; e < P; e += P / 7 + 1) {
        const double h = 1e-6, keep = pd[e];
        pd[e] = keep + h;
        double lp = loss_d(M, &vd, impd, xd, td, rows, buf) * scale;
        pd[e] = keep - h;
        double lm = loss_d(M, &vd, impd, xd, td, rows, buf) * scale;
        pd[e] = keep;
        double fd = (lp - lm) / (2 * h);
        CHECK(fabs(fd - gd[e]) <= 1e-6 * gmax + 1e-5 * fabs(fd), "%s: finite difference %.9g vs gradient %.9g at %zu",
              mc->name, fd, gd[e], e);
    }
    // the three float paths
    float *z = malloc(tm * sizeof(float)), *h = malloc(tm * sizeof(float)), *y = malloc(tn * sizeof(float)),
          *out = malloc(tn * sizeof(float)), *dy = malloc(tn * sizeof(float)), *dh = malloc(tm * sizeof(float)),
          *decT = malloc((size_t)m * n * sizeof(float));
    float *g[3], *outs[3];
    double losses[3];
    tms_sparse_x_t sx;
    CHECK(tms_sparse_alloc(&sx, n, m, rows) == 0, "sparse alloc");
    tms_view_t v = tms_view(&L, params, 0);
    tms_decoder_T(M, &v, decT);
    for (int path = 0; path < 3; path++) { // 0 loops, 1 SGEMM, 2 SGEMM with sparse x
        g[path] = calloc(P, sizeof(float));
        outs[path] = malloc(tn * sizeof(float));
        tms_view_t gf = tms_view(&L, g[path], 0);
        for (size_t e = 0; e < tn; e++) out[e] = y[e] = NAN; // an unwritten element fails below
        for (size_t e = 0; e < tm; e++) z[e] = h[e] = NAN;
        tms_sparse_x_t *s = NULL;
        if (path == 2) {
            tms_sparse_index(x, n, rows, (size_t)-1, &sx);
            CHECK(sx.sparse == 1, "%s: unlimited index refused", mc->name);
            size_t count = 0, nnz = 0;
            for (size_t e = 0; e < tn; e++) count += x[e] != 0.0f;
            for (int i = 0; i < n; i++)
                for (int j = sx.begin[i]; j < sx.begin[i + 1]; j++, nnz++)
                    CHECK(x[(size_t)i * rows + sx.row[j]] != 0.0f && (j == sx.begin[i] || sx.row[j] > sx.row[j - 1]),
                          "%s: index entry %d of feature %d", mc->name, j, i);
            CHECK(nnz == count && (size_t)sx.begin[n] == count, "%s: %zu nonzeros indexed, x has %zu", mc->name, nnz,
                  count);
            s = &sx;
        }
        if (path == 0) {
            losses[0] = tms_forward(M, &v, decT, imp, x, target, rows, z, h, y, out) * scale;
            tms_backward(M, &v, decT, imp, x, target, rows, z, y, h, out, (float)scale, dy, dh, &gf);
        } else {
            losses[path] = tms_blas_forward(M, &v, decT, imp, x, target, rows, z, h, y, out, s) * scale;
            tms_blas_backward(M, &v, decT, imp, x, target, rows, z, y, h, out, (float)scale, dy, dh, &gf, s);
        }
        memcpy(outs[path], out, tn * sizeof(float));
        static const char *names[] = {"loops", "SGEMM", "sparse"};
        CHECK(fabs(losses[path] - ref_loss) <= 1e-5 * ref_loss + 1e-9, "%s, %s: loss %.9g, reference %.9g", mc->name,
              names[path], losses[path], ref_loss);
        int bad = 0;
        for (size_t e = 0; e < P; e++)
            if (!(fabs(g[path][e] - gd[e]) <= 2e-5 * gmax + 1e-4 * fabs(gd[e]))) {
                if (bad++ < 3)
                    CHECK(0, "%s, %s: gradient[%zu] %.9g, reference %.9g", mc->name, names[path], e, g[path][e], gd[e]);
            }
        CHECK(bad == 0, "%s, %s: %d gradient elements off", mc->name, names[path], bad);
    }
    // sparse vs dense SGEMM: the same products summed in another order
    for (size_t e = 0; e < tn; e++)
        if (!(fabs(outs[2][e] - outs[1][e]) <= 1e-5f * (1.0f + fabsf(outs[1][e])))) {
            CHECK(0, "%s: sparse output %zu %.9g, dense %.9g", mc->name, e, outs[2][e], outs[1][e]);
            break;
        }
    // the sparse rule: an index limited below x's count refuses; tms_sparse_tile follows the
    // measured limit (no sparse products at all for models it never pays for)
    size_t count = 0;
    for (size_t e = 0; e < tn; e++) count += x[e] != 0.0f;
    if (count > 0) {
        tms_sparse_index(x, n, rows, count - 1, &sx);
        CHECK(sx.sparse == 0, "%s: %zu nonzeros indexed under a limit of %zu", mc->name, count, count - 1);
    }
    tms_sparse_tile(M, x, rows, &sx);
    CHECK(sx.sparse == ((double)count <= tms_sparse_max_density(M) * n * rows &&
                        tms_sparse_max_density(M) * n * rows >= 1.0),
          "%s: sparse choice %d at %zu nonzeros of %zu, limit %g", mc->name, sx.sparse, count, tn,
          tms_sparse_max_density(M));
    tms_sparse_free(&sx);
    for (int path = 0; path < 3; path++) { free(g[path]); free(outs[path]); }
    free(z); free(h); free(y); free(out); free(dy); free(dh); free(decT);
    free(params); free(pd); free(gd); free(x); free(t); free(xd); free(td); free(buf); free(dyd); free(dhd);
}

// ----------------------------------------------------------------------------
// the backend: the same bits at any thread count

static void problem_init(tms_problem_t *P, tms_model_t M, int instances, int batch, float density) {
    memset(P, 0, sizeof(*P));
    P->model = M;
    P->instances = instances;
    P->batch_size = batch;
    P->steps = 6;
    P->beta1 = 0.9f; P->beta2 = 0.999f; P->eps = 1e-8f;
    P->optimizer = TMS_OPT_ADAMW;
    P->inst = calloc((size_t)instances, sizeof(tms_instance_t));
    P->importance = malloc(sizeof(float) * M.n * instances);
    for (int i = 0; i < instances; i++) {
        P->inst[i] = (tms_instance_t){density / (float)(i + 1), 3e-3f, 0.01f, 11, i, tms_instance_key(11, (uint64_t)i), i, 0, 0};
        for (int f = 0; f < M.n; f++) P->importance[i * M.n + f] = (float)pow(0.95, f);
    }
}

// trains P's 6 steps with `threads` threads into params (layout L); loss of step 0 and 5
static void train(const tms_problem_t *P, const tms_layout_t *L, int threads, float *params, float *loss0, float *loss5) {
    float *zeros = calloc(L->total, sizeof(float));
    tms_init_params(P, L, params);
    tms_backend_t be;
    char err[256];
    int rc = tms_cpu_backend_create(&be, P, L, params, zeros, zeros, threads, err, sizeof(err));
    CHECK(rc == 0, "backend: %s", err);
    if (rc == 0) {
        CHECK(be.train(&be, 0, 5, loss0) == 0, "train");
        CHECK(be.train(&be, 5, 6, loss5) == 0, "train");
        CHECK(be.get_state(&be, params, NULL, NULL) == 0, "get_state");
        be.destroy(&be);
    }
    free(zeros);
}

static void check_threads(const char *name, tms_model_t M, int instances, int batch, float density) {
    tms_problem_t P;
    problem_init(&P, M, instances, batch, density);
    tms_layout_t L;
    tms_layout_init(&L, &P.model, instances);
    float *init = malloc(L.total * sizeof(float)), *ref = malloc(L.total * sizeof(float)),
          *got = malloc(L.total * sizeof(float));
    float l0[3], l5[3], g0[3], g5[3];
    tms_init_params(&P, &L, init);
    train(&P, &L, 1, ref, l0, l5);
    size_t moved = 0;
    for (size_t e = 0; e < L.total; e++) moved += ref[e] != init[e];
    CHECK(moved > L.total / 2, "%s: training moved %zu of %zu parameters", name, moved, L.total);
    // the densest instance's loss on one fixed set of evaluation samples went down (the
    // sparser ones' can move either way in 6 steps)
    double before[3], after[3];
    CHECK(tms_cpu_eval_loss(&P, &L, init, 8192, 1, before, NULL) == 0 &&
              tms_cpu_eval_loss(&P, &L, ref, 8192, 2, after, NULL) == 0, "eval");
    CHECK(after[0] < before[0], "%s: instance 0's loss %.6g -> %.6g", name, before[0], after[0]);
    for (int i = 0; i < instances; i++) CHECK(isfinite(l0[i]) && isfinite(l5[i]), "%s: loss not finite", name);
    for (int threads = 2; threads <= 3; threads++) {
        train(&P, &L, threads, got, g0, g5);
        CHECK(memcmp(got, ref, L.total * sizeof(float)) == 0, "%s: parameters at %d threads differ from 1 thread", name,
              threads);
        CHECK(memcmp(g0, l0, (size_t)instances * sizeof(float)) == 0 && memcmp(g5, l5, (size_t)instances * sizeof(float)) == 0,
              "%s: losses at %d threads differ from 1 thread", name, threads);
    }
    // the one-off gradient (the CUDA backend's reference) is the training path's: its loss
    // on step 0 is the first step's loss
    float *grads = malloc(L.total * sizeof(float)), gl[3];
    CHECK(tms_cpu_gradient(&P, &L, init, 0, grads, gl) == 0, "cpu gradient");
    CHECK(memcmp(gl, l0, (size_t)instances * sizeof(float)) == 0, "%s: tms_cpu_gradient's loss differs from training's",
          name);
    free(grads);
    free(init); free(ref); free(got);
    free(P.inst); free(P.importance);
}

int main(void) {
    tms_blas_init();
    const tms_model_t tied = {20, 5, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    const tms_model_t untied_relu = {24, 6, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    const tms_model_t linear_out = {30, 7, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_NONE, 1, 0};
    const tms_model_t no_bias = {40, 8, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 0, 0};
    const model_case_t cases[] = {
        {"tied 20x5", tied, TMS_TASK_SPARSE, 0.3f},
        {"untied relu 24x6 abs", untied_relu, TMS_TASK_ABS, 0.2f},
        {"tied linear 30x7 dense", linear_out, TMS_TASK_SPARSE, 1.0f},
        {"untied no bias 40x8 sparse", no_bias, TMS_TASK_SPARSE, 0.02f},
        {"untied relu 24x6 very sparse", untied_relu, TMS_TASK_SPARSE, 0.005f},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        check_tile(&cases[c], 37);
        check_tile(&cases[c], 300);
    }
    // the paths: the smallest models on the loops, the others on SGEMM
    tms_model_t small = tied;
    small.n = 5; small.m = 2;
    CHECK(!tms_blas_path(&small) && tms_blas_path(&tied), "path choice");
    // the sparse rule picks sparse products for a large sparse tile
    {
        tms_model_t big = {400, 30, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
        const int rows = 64;
        float *x = malloc(sizeof(float) * 400 * rows);
        tms_sparse_x_t sx;
        CHECK(tms_sparse_alloc(&sx, 400, 30, rows) == 0, "alloc");
        tms_sample_rows(3, 1, 400, 0, rows, 0.002f, x);
        tms_sparse_tile(&big, x, rows, &sx);
        CHECK(sx.sparse == 1, "400x30 at density 0.002: not sparse");
        tms_sample_rows(3, 1, 400, 0, rows, 0.2f, x);
        tms_sparse_tile(&big, x, rows, &sx);
        CHECK(sx.sparse == 0, "400x30 at density 0.2: sparse");
        tms_sparse_free(&sx);
        free(x);
    }
    // thread counts: BLAS path with 1 instance (split, 4 tiles), 2 instances (split at 3
    // threads), 3 instances (one thread each, or split where threads exceed them), a
    // batch that is not a multiple of the tile; the loops with 3 instances
    check_threads("blas, 1 instance", untied_relu, 1, 1000, 0.3f);
    check_threads("blas, 2 instances", tied, 2, 600, 0.5f);
    check_threads("blas, 3 instances, sparse", (tms_model_t){400, 30, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0},
                  3, 512, 0.01f);
    check_threads("loops, 3 instances", small, 3, 700, 0.3f);
    return check_finish("test_cpu_paths");
}
