// test_grad.c: the analytic gradient of every model combination against central
// finite differences, in double precision; then the float path (what trains)
// against the double path on the same data. Both tasks: sparse (the target is x) and
// abs (x in [-1, 1], the target |x|, so the loss's target differs from the input).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "tms.h"

static double rnd(void) { // deterministic uniform in [-1, 1) (a small LCG is enough here)
    static uint64_t s = 88172645463325252ull;
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

#define N 6
#define M 3
#define ROWS 9

typedef struct {
    double W[M * N], W2[N * M], b1[M], b[N];
} params_d;

static tms_view_d_t view_of(params_d *p, const tms_model_t *mod) {
    tms_view_d_t v = {p->W, mod->decoder == TMS_DECODER_UNTIED ? p->W2 : NULL,
                      (mod->hidden_act == TMS_ACT_RELU && mod->bias) ? p->b1 : NULL, mod->bias ? p->b : NULL};
    return v;
}

static double loss_of(const tms_model_t *mod, params_d *p, const double *imp, const double *x, const double *t,
                      double scale, double *min_abs_pre) {
    double z[ROWS * M], h[ROWS * M], y[ROWS * N], out[ROWS * N], decT[M * N];
    tms_view_d_t v = view_of(p, mod);
    tms_decoder_T_d(mod, &v, decT);
    double l = tms_forward_d(mod, &v, decT, imp, x, t, ROWS, z, h, y, out) * scale;
    if (min_abs_pre) {
        double mn = 1e9;
        for (int e = 0; e < ROWS * M; e++) mn = fmin(mn, fabs(z[e]));
        for (int e = 0; e < ROWS * N; e++) mn = fmin(mn, fabs(y[e]));
        *min_abs_pre = mn;
    }
    return l;
}

static void check_combination(int decoder, int hidden, int output, int bias, int task) {
    tms_model_t mod = {N, M, decoder, hidden, output, bias, 0};
    params_d p, g;
    double imp[N], x[ROWS * N], t[ROWS * N]; // t: the target
    double min_pre = 0;
    // draw until no pre-activation sits within 1e-3 of a ReLU kink
    for (int attempt = 0; attempt < 100 && min_pre < 1e-3; attempt++) {
        for (int e = 0; e < M * N; e++) { p.W[e] = rnd(); p.W2[e] = rnd(); }
        for (int k = 0; k < M; k++) p.b1[k] = 0.3 * rnd();
        for (int i = 0; i < N; i++) { p.b[i] = 0.3 * rnd(); imp[i] = pow(0.8, i); }
        for (int e = 0; e < ROWS * N; e++) {
            double u = rnd();
            x[e] = u < -0.3 ? 0.0 : task == TMS_TASK_ABS ? rnd() : (u + 1) / 2;
            t[e] = task == TMS_TASK_ABS ? fabs(x[e]) : x[e];
        }
        loss_of(&mod, &p, imp, x, t, 1.0, &min_pre);
    }
    const double scale = 1.0 / (ROWS * N);
    // the loss against a plain sample-by-sample computation: the encoder reads x, the
    // loss compares the output with the target
    {
        double want = 0;
        for (int r = 0; r < ROWS; r++) {
            double h[M];
            for (int k = 0; k < M; k++) {
                double zk = hidden == TMS_ACT_RELU && bias ? p.b1[k] : 0;
                for (int i = 0; i < N; i++) zk += p.W[k * N + i] * x[i * ROWS + r];
                h[k] = hidden == TMS_ACT_RELU && zk < 0 ? 0 : zk;
            }
            for (int i = 0; i < N; i++) {
                double yi = bias ? p.b[i] : 0;
                for (int k = 0; k < M; k++) yi += (decoder == TMS_DECODER_UNTIED ? p.W2[i * M + k] : p.W[k * N + i]) * h[k];
                double out = output == TMS_ACT_RELU && yi < 0 ? 0 : yi, d = t[i * ROWS + r] - out;
                want += imp[i] * d * d;
            }
        }
        want *= scale;
        double got = loss_of(&mod, &p, imp, x, t, scale, NULL);
        CHECK(fabs(got - want) <= 1e-12 * fabs(want), "task %d decoder %d hidden %d output %d bias %d: loss %.15g, "
              "sample by sample %.15g", task, decoder, hidden, output, bias, got, want);
    }
    // analytic
    memset(&g, 0, sizeof(g));
    {
        double z[ROWS * M], h[ROWS * M], y[ROWS * N], out[ROWS * N], decT[M * N], dy[ROWS * N], dh[ROWS * M];
        tms_view_d_t v = view_of(&p, &mod), gv = view_of(&g, &mod);
        tms_decoder_T_d(&mod, &v, decT);
        tms_forward_d(&mod, &v, decT, imp, x, t, ROWS, z, h, y, out);
        tms_backward_d(&mod, &v, decT, imp, x, t, ROWS, z, y, h, out, scale, dy, dh, &gv);
    }
    // finite differences over every parameter that exists
    struct { double *param, *grad; int count; int present; const char *name; } tensors[] = {
        {p.W, g.W, M * N, 1, "W"},
        {p.W2, g.W2, N * M, decoder == TMS_DECODER_UNTIED, "W2"},
        {p.b1, g.b1, M, hidden == TMS_ACT_RELU && bias, "b1"},
        {p.b, g.b, N, bias, "b"},
    };
    const double eps = 1e-6;
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        if (!tensors[k].present) continue;
        for (int e = 0; e < tensors[k].count; e++) {
            double keep = tensors[k].param[e];
            tensors[k].param[e] = keep + eps;
            double lp = loss_of(&mod, &p, imp, x, t, scale, NULL);
            tensors[k].param[e] = keep - eps;
            double lm = loss_of(&mod, &p, imp, x, t, scale, NULL);
            tensors[k].param[e] = keep;
            double fd = (lp - lm) / (2 * eps), an = tensors[k].grad[e];
            worst = fmax(worst, fabs(fd - an));
            CHECK(fabs(fd - an) <= 1e-8 + 1e-5 * fabs(an),
                  "task %d decoder %d hidden %d output %d bias %d: d loss / d %s[%d]: analytic %.10g, finite difference %.10g",
                  task, decoder, hidden, output, bias, tensors[k].name, e, an, fd);
        }
    }
    // the float path on the same data agrees with the double path
    {
        float pf[2 * M * N + M + N], gf[2 * M * N + M + N], impf[N], xf[ROWS * N], tf[ROWS * N];
        float *Wf = pf, *W2f = pf + M * N, *b1f = pf + 2 * M * N, *bf = b1f + M;
        for (int e = 0; e < M * N; e++) { Wf[e] = (float)p.W[e]; W2f[e] = (float)p.W2[e]; }
        for (int k = 0; k < M; k++) b1f[k] = (float)p.b1[k];
        for (int i = 0; i < N; i++) { bf[i] = (float)p.b[i]; impf[i] = (float)imp[i]; }
        for (int e = 0; e < ROWS * N; e++) { xf[e] = (float)x[e]; tf[e] = (float)t[e]; }
        memset(gf, 0, sizeof(gf));
        tms_view_t v = {Wf, decoder == TMS_DECODER_UNTIED ? W2f : NULL, (hidden == TMS_ACT_RELU && bias) ? b1f : NULL,
                        bias ? bf : NULL};
        tms_view_t gv = {gf, v.W2 ? gf + M * N : NULL, v.b1 ? gf + 2 * M * N : NULL, v.b ? gf + 2 * M * N + M : NULL};
        float z[ROWS * M], h[ROWS * M], y[ROWS * N], out[ROWS * N], decT[M * N], dy[ROWS * N], dh[ROWS * M];
        tms_decoder_T(&mod, &v, decT);
        double lf = tms_forward(&mod, &v, decT, impf, xf, tf, ROWS, z, h, y, out) * scale;
        tms_backward(&mod, &v, decT, impf, xf, tf, ROWS, z, y, h, out, (float)scale, dy, dh, &gv);
        double ld = loss_of(&mod, &p, imp, x, t, scale, NULL);
        CHECK(fabs(lf - ld) <= 1e-5 * fabs(ld), "float loss %.9g vs double %.9g", lf, ld);
        for (int k = 0; k < 4; k++) {
            if (!tensors[k].present) continue;
            float *gft = k == 0 ? gv.W : k == 1 ? gv.W2 : k == 2 ? gv.b1 : gv.b;
            for (int e = 0; e < tensors[k].count; e++)
                CHECK(fabs(gft[e] - tensors[k].grad[e]) <= 1e-6 + 1e-4 * fabs(tensors[k].grad[e]),
                      "float gradient %s[%d] %.9g vs double %.9g", tensors[k].name, e, gft[e], tensors[k].grad[e]);
        }
    }
    printf("task %-6s decoder %-6s hidden %-4s output %-4s bias %d: largest |analytic - finite difference| %.2e\n",
           task == TMS_TASK_ABS ? "abs" : "sparse", decoder ? "untied" : "tied", hidden ? "relu" : "none",
           output ? "relu" : "none", bias, worst);
}

int main(void) {
    for (int task = TMS_TASK_SPARSE; task <= TMS_TASK_ABS; task++)
        for (int decoder = 0; decoder < 2; decoder++)
            for (int hidden = 0; hidden < 2; hidden++)
                for (int output = 0; output < 2; output++)
                    for (int bias = 0; bias < 2; bias++) check_combination(decoder, hidden, output, bias, task);
    return check_finish("test_grad");
}
