// cpu_crossover.c: where each CPU product path wins, measured on this machine. Built as
// build/cpu_crossover; experiments/bench/README.md says how its numbers set the constants of
// host/cpu_blas.h (TMS_BLAS_MIN_M, TMS_BLAS_MIN_N, TMS_SPARSE_MAX_DENSITY).
//
//   build/cpu_crossover paths [N:M...]  # loops (cpu_model.inc) vs SGEMM, one forward + backward
//                                # of a batch of 1024, over a grid of (n, m) or the shapes given,
//                                # x at density 1
//   build/cpu_crossover sparse   # SGEMM vs the sparse products, for shapes and densities
//   build/cpu_crossover ceiling N:M THREADS SECONDS   # the SGEMM ceiling of an N -> M model
//                                # (bench.py cpu runs it beside each shape)
//
// One thread (what each instance gets when instances are spread over cores). The variants
// of one cell run interleaved, REPS rounds, and each prints the median of its rounds in
// microseconds per batch; "ratio" is loops / SGEMM (paths) or SGEMM / sparse (sparse): above
// 1, the second wins.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include "tms.h"
#include "cpu_blas.h"
#include "cpu_backend.h"

#define BATCH 1024
#define REPS 7

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    tms_model_t M;
    float *W, *b, *decT, *imp;
    float *x, *z, *h, *y, *out, *dy, *dh, *gW, *gb;
    tms_sparse_x_t sx;
} cell_t;

static void cell_init(cell_t *c, int n, int m, int rows, float density) {
    memset(c, 0, sizeof(*c));
    c->M = (tms_model_t){.n = n, .m = m, .decoder = TMS_DECODER_TIED, .output_act = TMS_ACT_RELU, .bias = 1};
    size_t tn = (size_t)rows * n, tm = (size_t)rows * m;
    c->W = malloc((size_t)m * n * sizeof(float)); c->decT = c->W;
    c->gW = calloc((size_t)m * n, sizeof(float));
    c->b = calloc((size_t)n, sizeof(float)); c->gb = calloc((size_t)n, sizeof(float));
    c->imp = malloc((size_t)n * sizeof(float));
    c->x = malloc(tn * sizeof(float)); c->y = malloc(tn * sizeof(float)); c->out = malloc(tn * sizeof(float));
    c->dy = malloc(tn * sizeof(float));
    c->z = malloc(tm * sizeof(float)); c->h = malloc(tm * sizeof(float)); c->dh = malloc(tm * sizeof(float));
    if (!c->W || !c->gW || !c->b || !c->gb || !c->imp || !c->x || !c->y || !c->out || !c->dy || !c->z || !c->h ||
        !c->dh || tms_sparse_alloc(&c->sx, n, m, rows)) {
        fprintf(stderr, "cpu_crossover: out of memory\n");
        exit(1);
    }
    for (size_t e = 0; e < (size_t)m * n; e++) c->W[e] = (float)((double)((e * 2654435761u) % 1000) / 1000.0 - 0.5) * 0.1f;
    for (int i = 0; i < n; i++) c->imp[i] = 1.0f;
    tms_sample_rows(12345, 1, n, 0, rows, density, c->x);
}

static void cell_free(cell_t *c) {
    free(c->W); free(c->gW); free(c->b); free(c->gb); free(c->imp); free(c->x); free(c->y); free(c->out);
    free(c->dy); free(c->z); free(c->h); free(c->dh);
    tms_sparse_free(&c->sx);
}

enum { LOOPS, DENSE, SPARSE };

// one forward + backward of a batch of BATCH rows in tiles of c's rows (the same tile again)
static double batch_seconds(cell_t *c, int rows, int how) {
    tms_view_t p = {c->W, NULL, NULL, c->b}, g = {c->gW, NULL, NULL, c->gb};
    const float scale = tms_loss_scale(BATCH, c->M.n);
    double t0 = now();
    for (int r0 = 0; r0 < BATCH; r0 += rows) {
        if (how == LOOPS) {
            tms_forward(&c->M, &p, c->decT, c->imp, c->x, c->x, rows, c->z, c->h, c->y, c->out);
            tms_backward(&c->M, &p, c->decT, c->imp, c->x, c->x, rows, c->z, c->y, c->h, c->out, scale, c->dy, c->dh, &g);
        } else {
            tms_sparse_x_t *sx = NULL;
            if (how == SPARSE) {
                tms_sparse_index(c->x, c->M.n, rows, (size_t)-1, &c->sx); // counted in: the backend does it
                sx = &c->sx;
            }
            tms_blas_forward(&c->M, &p, c->decT, c->imp, c->x, c->x, rows, c->z, c->h, c->y, c->out, sx);
            tms_blas_backward(&c->M, &p, c->decT, c->imp, c->x, c->x, rows, c->z, c->y, c->h, c->out, scale, c->dy,
                              c->dh, &g, sx);
        }
    }
    return now() - t0;
}

// median seconds per batch of variants a and b, interleaved; enough repetitions of each
// round to take ~20 ms
static void race(cell_t *ca, int rows_a, int how_a, cell_t *cb, int rows_b, int how_b, double *ma, double *mb) {
    double ta[REPS], tb[REPS];
    int inner = 1;
    double once = batch_seconds(ca, rows_a, how_a) + batch_seconds(cb, rows_b, how_b);
    if (once < 0.02) inner = (int)(0.02 / (once > 1e-7 ? once : 1e-7)) + 1;
    for (int r = 0; r < REPS; r++) {
        ta[r] = tb[r] = 0;
        for (int k = 0; k < inner; k++) {
            ta[r] += batch_seconds(ca, rows_a, how_a);
            tb[r] += batch_seconds(cb, rows_b, how_b);
        }
        ta[r] /= inner;
        tb[r] /= inner;
    }
    qsort(ta, REPS, sizeof(double), cmp_double);
    qsort(tb, REPS, sizeof(double), cmp_double);
    *ma = ta[REPS / 2];
    *mb = tb[REPS / 2];
}

static void path_cell(int n, int m);

// shapes: "N:M" arguments, or the default grid
static void paths(int argc, char **argv) {
    static const int ns[] = {5, 10, 20, 40, 100, 400, 1000};
    static const int ms[] = {2, 3, 4, 8, 20, 40, 100};
    printf("| n | m | loops us/batch | SGEMM us/batch | loops/SGEMM |\n| ---: | ---: | ---: | ---: | ---: |\n");
    if (argc > 0) {
        for (int a = 0; a < argc; a++) {
            int n, m;
            if (sscanf(argv[a], "%d:%d", &n, &m) != 2 || n < 1 || m < 1 || n > 100000 || m > 100000) {
                fprintf(stderr, "cpu_crossover: shape '%s': expected N:M, two positive integers\n", argv[a]);
                exit(2);
            }
            path_cell(n, m);
        }
        return;
    }
    for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++)
        for (size_t b = 0; b < sizeof(ms) / sizeof(ms[0]); b++)
            if (ms[b] < ns[a]) path_cell(ns[a], ms[b]);
}

static void path_cell(int n, int m) {
    {
            const int loop_rows = 8192 / (n + m) < 16 ? 16 : 8192 / (n + m); // as tms_cpu_tile_rows' loops
            const int lr = loop_rows < BATCH ? loop_rows : BATCH;
            cell_t cl, cd;
            cell_init(&cl, n, m, lr, 1.0f);
            cell_init(&cd, n, m, TMS_BLAS_TILE, 1.0f);
            double tl, td;
            race(&cl, lr, LOOPS, &cd, TMS_BLAS_TILE, DENSE, &tl, &td);
            printf("| %d | %d | %.1f | %.1f | %.2f |\n", n, m, 1e6 * tl, 1e6 * td, tl / td);
            fflush(stdout);
            cell_free(&cl);
            cell_free(&cd);
        }
}

static void sparse(void) {
    static const int shapes[][2] = {{20, 5}, {100, 20}, {100, 40}, {400, 30}, {1000, 100}, {2000, 400}};
    static const float densities[] = {0.002f, 0.005f, 0.01f, 0.02f, 0.035f, 0.05f, 0.1f};
    printf("| n | m | density | SGEMM us/batch | sparse us/batch | SGEMM/sparse |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t a = 0; a < sizeof(shapes) / sizeof(shapes[0]); a++)
        for (size_t d = 0; d < sizeof(densities) / sizeof(densities[0]); d++) {
            const int n = shapes[a][0], m = shapes[a][1];
            cell_t c;
            cell_init(&c, n, m, TMS_BLAS_TILE, densities[d]);
            double td, ts;
            race(&c, TMS_BLAS_TILE, DENSE, &c, TMS_BLAS_TILE, SPARSE, &td, &ts);
            printf("| %d | %d | %g | %.1f | %.1f | %.2f |\n", n, m, densities[d], 1e6 * td, 1e6 * ts, td / ts);
            fflush(stdout);
            cell_free(&c);
        }
}

// The SGEMM ceiling of an n -> m model: the five products of one forward + backward of a
// batch of BATCH rows (z = W x, y = Wd h, dDec = h dy^T, dh = Wd^T dy, dW = dz x^T), each one
// OpenBLAS SGEMM over the whole batch on `threads` threads, run for about `seconds`. Prints
// one JSON line: the FLOP/s of those products (10 BATCH n m FLOPs a batch).
void openblas_set_num_threads(int num_threads);
static int ceiling(int argc, char **argv) {
    int n, m, threads;
    double seconds;
    if (argc != 3 || sscanf(argv[0], "%d:%d", &n, &m) != 2 || n < 1 || m < 1 || n > 100000 || m > 100000 ||
        sscanf(argv[1], "%d", &threads) != 1 || threads < 1 || threads > 4096 || sscanf(argv[2], "%lf", &seconds) != 1 ||
        !(seconds > 0 && seconds < 3600)) {
        fprintf(stderr, "usage: cpu_crossover ceiling N:M THREADS SECONDS\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    const size_t tn = (size_t)BATCH * n, tm = (size_t)BATCH * m;
    float *W = malloc((size_t)m * n * sizeof(float)), *gW = malloc((size_t)m * n * sizeof(float));
    float *x = malloc(tn * sizeof(float)), *dy = malloc(tn * sizeof(float)), *y = malloc(tn * sizeof(float));
    float *h = malloc(tm * sizeof(float)), *dh = malloc(tm * sizeof(float));
    if (!W || !gW || !x || !dy || !y || !h || !dh) {
        fprintf(stderr, "cpu_crossover: out of memory\n");
        return 1;
    }
    for (size_t e = 0; e < (size_t)m * n; e++) W[e] = gW[e] = 0.01f * (float)(e % 7);
    for (size_t e = 0; e < tn; e++) x[e] = dy[e] = 0.1f * (float)(e % 5);
    for (size_t e = 0; e < tm; e++) h[e] = 0.1f * (float)(e % 3);
    long batches = 0;
    double t0 = now(), t = 0;
    do { // the products of cpu_blas.c, whole batch at once (row-major, feature-major tiles)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, BATCH, n, 1.0f, W, n, x, BATCH, 0.0f, h, BATCH);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, BATCH, m, 1.0f, W, n, h, BATCH, 0.0f, y, BATCH);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, BATCH, 1.0f, h, BATCH, dy, BATCH, 1.0f, gW, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, BATCH, n, 1.0f, W, n, dy, BATCH, 0.0f, dh, BATCH);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, BATCH, 1.0f, dh, BATCH, x, BATCH, 1.0f, gW, n);
        batches++;
        t = now() - t0;
    } while (t < seconds);
    printf("{\"n\": %d, \"m\": %d, \"batch\": %d, \"threads\": %d, \"batches\": %ld, \"seconds\": %.6f, "
           "\"flop_per_second\": %.6e}\n", n, m, BATCH, threads, batches, t, 10.0 * BATCH * n * m * batches / t);
    free(W); free(gW); free(x); free(dy); free(y); free(h); free(dh);
    return 0;
}

int main(int argc, char **argv) {
    tms_blas_init();
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "paths")) paths(argc - 2, argv + 2);
    else if (!strcmp(what, "sparse")) sparse();
    else if (!strcmp(what, "ceiling")) return ceiling(argc - 2, argv + 2);
    else {
        fprintf(stderr, "usage: cpu_crossover paths [N:M...] | sparse | ceiling N:M THREADS SECONDS\n");
        return 2;
    }
    return 0;
}
