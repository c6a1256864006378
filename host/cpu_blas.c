// cpu_blas.c: the model's forward and backward for one instance and a tile of samples
// with the products done by OpenBLAS's SGEMM (dense x) or by loops over x's nonzeros
// (sparse x). The header (cpu_blas.h) says when each is used and what that does to the
// results; cpu_model.inc has the formulas.
//
// Every tile is feature-major, i.e. row-major (features, rows): x (n, rows) is X^T for
// the batch X (rows, n). With W (m, n) and decT (m, n) row-major, each product is one
// row-major SGEMM with no copy:
//   z   (m, rows) = W (m, n) . x (n, rows)                 NoTrans, NoTrans
//   y   (n, rows) = decT^T (n, m) . h (m, rows)            Trans (decT), NoTrans
//   dh  (m, rows) = decT (m, n) . dy (n, rows)             NoTrans, NoTrans
//   dDec          = h (m, rows) . dy^T (rows, n) -> (m, n)  tied: += into gW
//                   dy (n, rows) . h^T (rows, m) -> (n, m)  untied: += into gW2
//   dW  (m, n)   += dz (m, rows) . x^T (rows, n)           NoTrans, Trans
// (leading dimensions: the row length of each row-major matrix as stored.)
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_blas.h"

// OpenBLAS's own thread-count control (its cblas.h declares it; repeated here so the
// file does not depend on which cblas.h the include path finds first)
void openblas_set_num_threads(int num_threads);

void tms_blas_init(void) {
    static int done = 0;
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
}

int tms_blas_path(const tms_model_t *M) {
    return (long)M->n * M->m >= TMS_BLAS_MIN_NM;
}

double tms_sparse_max_density(const tms_model_t *M) {
    if ((long)M->n * M->m >= 100000) return 0.035;
    if (M->m >= 30) return 0.01;
    return 0.0;
}

// ----------------------------------------------------------------------------
// sparse x

int tms_sparse_alloc(tms_sparse_x_t *s, int n, int m, int tile) {
    memset(s, 0, sizeof(*s));
    s->begin = malloc(((size_t)n + 1) * sizeof(int));
    s->row = malloc((size_t)n * tile * sizeof(int));
    s->zs = malloc((size_t)tile * m * sizeof(float));
    s->acc = malloc((size_t)m * sizeof(float));
    if (!s->begin || !s->row || !s->zs || !s->acc) {
        tms_sparse_free(s);
        return -1;
    }
    return 0;
}

void tms_sparse_free(tms_sparse_x_t *s) {
    free(s->begin); free(s->row); free(s->zs); free(s->acc);
    memset(s, 0, sizeof(*s));
}

size_t tms_sparse_bytes(int n, int m, int tile) {
    return ((size_t)n + 1 + (size_t)n * tile) * sizeof(int) + ((size_t)tile * m + m) * sizeof(float);
}

void tms_sparse_index(const float *x, int n, int rows, size_t max_nonzeros, tms_sparse_x_t *s) {
    size_t nnz = 0;
    s->sparse = 0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * rows;
        s->begin[i] = (int)nnz;
        for (int r = 0; r < rows; r++)
            if (xi[r] != 0.0f) {
                if (nnz >= max_nonzeros) return; // too dense
                s->row[nnz++] = r;
            }
    }
    s->begin[n] = (int)nnz;
    s->sparse = 1;
}

void tms_sparse_tile(const tms_model_t *M, const float *x, int rows, tms_sparse_x_t *s) {
    const double limit = tms_sparse_max_density(M) * (double)M->n * (double)rows;
    if (limit < 1.0) {
        s->sparse = 0;
        return;
    }
    tms_sparse_index(x, M->n, rows, (size_t)limit, s);
}

// z (m, rows) = W x (+ b1) over x's nonzeros: each nonzero x_ir adds x_ir W[:, i] to sample
// r's z, kept sample-major in zs so that update runs over m contiguous floats; summed over
// i in ascending order (fixed), then transposed into z.
static void sparse_forward_z(int n, int m, int rows, const float *W, const float *b1, const float *x,
                             tms_sparse_x_t *s, float *z) {
    float *zs = s->zs, *wcol = s->acc;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < m; k++) zs[(size_t)r * m + k] = b1 ? b1[k] : 0.0f;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < m; k++) wcol[k] = W[(size_t)k * n + i];
        const float *xi = x + (size_t)i * rows;
        for (int j = s->begin[i]; j < s->begin[i + 1]; j++) {
            const int r = s->row[j];
            const float v = xi[r];
            float *zr = zs + (size_t)r * m;
            for (int k = 0; k < m; k++) zr[k] += wcol[k] * v;
        }
    }
    for (int k = 0; k < m; k++)
        for (int r = 0; r < rows; r++) z[(size_t)k * rows + r] = zs[(size_t)r * m + k];
}

// gW (m, n) += dz x^T over x's nonzeros: dz transposed to sample-major, then feature i's
// column sum_r x_ir dz[:, r] over its nonzero rows (ascending).
static void sparse_grad_w(int n, int m, int rows, const float *dz, const float *x, tms_sparse_x_t *s,
                          float *gW) {
    float *dzs = s->zs, *acc = s->acc;
    for (int k = 0; k < m; k++)
        for (int r = 0; r < rows; r++) dzs[(size_t)r * m + k] = dz[(size_t)k * rows + r];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < m; k++) acc[k] = 0.0f;
        const float *xi = x + (size_t)i * rows;
        for (int j = s->begin[i]; j < s->begin[i + 1]; j++) {
            const int r = s->row[j];
            const float v = xi[r];
            const float *dr = dzs + (size_t)r * m;
            for (int k = 0; k < m; k++) acc[k] += v * dr[k];
        }
        for (int k = 0; k < m; k++) gW[(size_t)k * n + i] += acc[k];
    }
}

// ----------------------------------------------------------------------------
// forward and backward

#define LANES 8

static float sum_rows(const float *a, int rows) {
    float acc[LANES] = {0};
    int r = 0;
    for (; r + LANES <= rows; r += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[r + j];
    for (int j = 0; r < rows; r++, j++) acc[j] += a[r];
    float s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

double tms_blas_forward(const tms_model_t *M, const tms_view_t *p, const float *decT,
                        const float *importance, const float *x, const float *target, int rows,
                        float *z, float *h, float *y, float *out, tms_sparse_x_t *sx) {
    const int n = M->n, m = M->m;
    const int hidden_relu = M->hidden_act == TMS_ACT_RELU;
    const int out_relu = M->output_act == TMS_ACT_RELU;
    if (sx && sx->sparse) {
        sparse_forward_z(n, m, rows, p->W, p->b1, x, sx, z);
    } else {
        if (p->b1)
            for (int k = 0; k < m; k++)
                for (int r = 0; r < rows; r++) z[(size_t)k * rows + r] = p->b1[k];
        // z (m, rows) = W (m, n) . x (n, rows) (+ z holding b1)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, rows, n, 1.0f, p->W, n, x, rows,
                    p->b1 ? 1.0f : 0.0f, z, rows);
    }
    for (size_t e = 0; e < (size_t)m * rows; e++) h[e] = TMS_RELU_IF(hidden_relu, z[e]);
    if (p->b)
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++) y[(size_t)i * rows + r] = p->b[i];
    // y (n, rows) = decT^T (n, m) . h (m, rows) (+ y holding b); decT is (m, n), lda n
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, rows, m, 1.0f, decT, n, h, rows,
                p->b ? 1.0f : 0.0f, y, rows);
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        const float *yi = y + (size_t)i * rows, *ti = target + (size_t)i * rows;
        float *oi = out + (size_t)i * rows;
        float acc[LANES] = {0};
        int r = 0;
        for (; r < rows; r++) oi[r] = TMS_RELU_IF(out_relu, yi[r]);
        for (r = 0; r + LANES <= rows; r += LANES)
            for (int j = 0; j < LANES; j++) {
                float diff = ti[r + j] - oi[r + j];
                acc[j] += diff * diff;
            }
        for (int j = 0; r < rows; r++, j++) {
            float diff = ti[r] - oi[r];
            acc[j] += diff * diff;
        }
        float s = 0;
        for (int j = 0; j < LANES; j++) s += acc[j];
        loss += (double)importance[i] * (double)s;
    }
    return loss;
}

void tms_blas_backward(const tms_model_t *M, const tms_view_t *p, const float *decT,
                       const float *importance, const float *x, const float *target, int rows,
                       const float *z, const float *y, const float *h, const float *out,
                       float scale, float *dy, float *dh, tms_view_t *g, tms_sparse_x_t *sx) {
    const int n = M->n, m = M->m;
    const int hidden_relu = M->hidden_act == TMS_ACT_RELU;
    const int out_relu = M->output_act == TMS_ACT_RELU;
    (void)p;
    for (int i = 0; i < n; i++) {
        const float c = 2 * scale * importance[i];
        const float *ti = target + (size_t)i * rows, *yi = y + (size_t)i * rows, *oi = out + (size_t)i * rows;
        float *dyi = dy + (size_t)i * rows;
        for (int r = 0; r < rows; r++) dyi[r] = TMS_MSE_GRAD(c, oi[r], ti[r], yi[r], out_relu);
        if (g->b) g->b[i] += sum_rows(dyi, rows);
    }
    if (M->decoder == TMS_DECODER_TIED)
        // gW (m, n) += h (m, rows) . dy^T (rows, n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, rows, 1.0f, h, rows, dy, rows, 1.0f, g->W, n);
    else
        // gW2 (n, m) += dy (n, rows) . h^T (rows, m)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, rows, 1.0f, dy, rows, h, rows, 1.0f, g->W2, m);
    // dh (m, rows) = decT (m, n) . dy (n, rows)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, rows, n, 1.0f, decT, n, dy, rows, 0.0f, dh, rows);
    if (hidden_relu)
        for (size_t e = 0; e < (size_t)m * rows; e++) dh[e] = z[e] > 0 ? dh[e] : 0;
    if (g->b1)
        for (int k = 0; k < m; k++) g->b1[k] += sum_rows(dh + (size_t)k * rows, rows);
    if (sx && sx->sparse)
        sparse_grad_w(n, m, rows, dh, x, sx, g->W);
    else
        // gW (m, n) += dz (m, rows) . x^T (rows, n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, rows, 1.0f, dh, rows, x, rows, 1.0f, g->W, n);
}
