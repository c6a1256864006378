// layout.c: the flat parameter layout, per-step optimiser constants and the
// Xavier-normal initialisation, shared by every backend.
#include <math.h>
#include "tms.h"

const char *const tms_tensor_names[TMS_NTENSORS] = {"W", "W2", "b1", "b"};

void tms_layout_init(tms_layout_t *L, const tms_model_t *M, int instances) {
    L->instances = instances;
    L->present[TMS_T_W] = 1;
    L->present[TMS_T_W2] = M->decoder == TMS_DECODER_UNTIED;
    L->present[TMS_T_B1] = M->hidden_act == TMS_ACT_RELU && M->bias && !M->no_hidden_bias;
    L->present[TMS_T_B] = M->bias;
    L->per_instance[TMS_T_W] = (size_t)M->m * M->n;
    L->per_instance[TMS_T_W2] = L->present[TMS_T_W2] ? (size_t)M->n * M->m : 0;
    L->per_instance[TMS_T_B1] = L->present[TMS_T_B1] ? (size_t)M->m : 0;
    L->per_instance[TMS_T_B] = L->present[TMS_T_B] ? (size_t)M->n : 0;
    size_t offset = 0;
    for (int t = 0; t < TMS_NTENSORS; t++) {
        L->offset[t] = offset;
        offset += L->per_instance[t] * (size_t)instances;
    }
    L->total = offset;
}

tms_view_t tms_view(const tms_layout_t *L, float *buffer, int instance) {
    float *slice[TMS_NTENSORS];
    for (int t = 0; t < TMS_NTENSORS; t++)
        slice[t] = L->present[t] ? buffer + L->offset[t] + L->per_instance[t] * (size_t)instance : NULL;
    tms_view_t v = {slice[TMS_T_W], slice[TMS_T_W2], slice[TMS_T_B1], slice[TMS_T_B]};
    return v;
}

void tms_step_constants(const tms_problem_t *P, long t, double *lr_factor, float *bias1, float *bias2) {
    *lr_factor = tms_lr_factor(P->schedule, t, P->steps, P->warmup_steps);
    // Adam counts steps from 1
    *bias1 = (float)(1.0 - pow((double)P->beta1, (double)(t + 1)));
    *bias2 = (float)(1.0 - pow((double)P->beta2, (double)(t + 1)));
}

// ----------------------------------------------------------------------------
// initialisation

// Standard normals by Box-Muller from the instance's init subsequence: normal k uses
// block k / 2 (lanes 0, 1 for even k; lanes 2, 3 for odd k).
static float init_normal(uint64_t key, uint64_t k) {
    tms_u32x4 r = tms_philox_block(key, TMS_SUBSEQ_INIT, k / 2);
    int lane = (int)(k % 2) * 2;
    double u1 = tms_uniform_from_u32(r.v[lane]);     // (0, 1]: log is finite
    double u2 = tms_uniform_from_u32(r.v[lane + 1]);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void tms_init_params(const tms_problem_t *P, const tms_layout_t *L, float *params) {
    const int n = P->model.n, m = P->model.m;
    // Xavier-normal per instance: fan_in + fan_out = n + m for both W (m, n) and W2 (n, m).
    // (The notebook applies it to the (instances, n, m) tensor, giving sqrt(2 / (m (n + I))).)
    const double std = sqrt(2.0 / (double)(n + m));
    for (int i = 0; i < P->instances; i++) {
        tms_view_t v = tms_view(L, params, i);
        uint64_t key = P->inst[i].key;
        uint64_t k = 0;
        for (size_t e = 0; e < (size_t)m * n; e++) v.W[e] = (float)(std * init_normal(key, k++));
        if (v.W2)
            for (size_t e = 0; e < (size_t)n * m; e++) v.W2[e] = (float)(std * init_normal(key, k++));
        if (v.b1)
            for (int e = 0; e < m; e++) v.b1[e] = 0.0f;
        if (v.b)
            for (int e = 0; e < n; e++) v.b[e] = 0.0f;
    }
}
