// cuda_path.c: the CUDA path of a run (gemm or fused), the fused kernel's size rule and the
// measured rule `auto` follows (cuda_path.h). Plain C: the selection and its messages are
// the same, and tested, whether or not this build has CUDA.
#include <stdio.h>
#include <string.h>
#include "cuda_path.h"

// The rule `auto` follows. Not yet measured: no real GPU has run the fused path (issue 12
// was built and tested under the emulated CUDA of tests/emu only), so auto stays on the
// gemm path. The GPU verification (issue 11) sets it from experiments/bench/bench_fused.sh:
// confirmed = 1 once tests/gpu/test_gpu_fused passes on the GPU, and max_params = the
// largest parameter count per instance at which the fused path beat the gemm path there.
const tms_fused_rule_t tms_fused_measured_rule = {.confirmed = 0, .max_params = 0};

static long model_params(const tms_model_t *M) {
    tms_layout_t L;
    tms_layout_init(&L, M, 1);
    return (long)L.total;
}

int tms_fused_plan(const tms_model_t *M, int batch, tms_fused_plan_t *plan) {
    static const int classes[] = {TMS_FUSED_SMEM_CLASS0, TMS_FUSED_SMEM_CLASS1, TMS_FUSED_SMEM_CLASS2,
                                  TMS_FUSED_SMEM_FLOATS_MAX};
    memset(plan, 0, sizeof(*plan));
    const long P = model_params(M);
    plan->params = (int)(P < 2147483647L ? P : 2147483647L);
    // no tile beyond the batch rounded up to whole groups
    long cap = ((long)(batch > 0 ? batch : 1) + TMS_FUSED_GROUP_ROWS - 1) / TMS_FUSED_GROUP_ROWS * TMS_FUSED_GROUP_ROWS;
    if (cap > TMS_FUSED_MAX_TILE_ROWS) cap = TMS_FUSED_MAX_TILE_ROWS;
    for (long R = TMS_FUSED_MAX_TILE_ROWS; R >= TMS_FUSED_GROUP_ROWS; R /= 2) {
        if (R > cap) continue;
        // in long arithmetic first: a huge model must not overflow the int offsets
        const double need = 4.0 * P + (double)P * (R / TMS_FUSED_GROUP_ROWS) + (double)R * (2.0 * M->n + 2.0 * M->m) +
                            (double)R + M->n;
        plan->tile_rows = (int)R;
        plan->need_floats = need > 1e15 ? (long)1e15 : (long)need;
        if (need > TMS_FUSED_SMEM_FLOATS_MAX) continue;
        const tms_fused_smem_t s = tms_fused_smem_layout(M->n, M->m, (int)P, (int)R);
        plan->need_floats = s.total;
        for (int c = 0; c < 4; c++)
            if (s.total <= classes[c]) { plan->smem_floats = classes[c]; break; }
        return 0;
    }
    return -1;
}

int tms_cuda_path_parse(const char *text) {
    if (!text) return -1;
    if (!strcmp(text, "auto")) return TMS_CUDA_PATH_AUTO;
    if (!strcmp(text, "gemm")) return TMS_CUDA_PATH_GEMM;
    if (!strcmp(text, "fused")) return TMS_CUDA_PATH_FUSED;
    return -1;
}

const char *tms_cuda_path_name(int path) {
    switch (path) {
    case TMS_CUDA_PATH_AUTO: return "auto";
    case TMS_CUDA_PATH_GEMM: return "gemm";
    case TMS_CUDA_PATH_FUSED: return "fused";
    default: return "?";
    }
}

int tms_cuda_path_select(int requested, const tms_model_t *M, int batch, const tms_fused_rule_t *rule, char *why,
                         size_t whylen) {
    if (!rule) rule = &tms_fused_measured_rule;
    if (why && whylen) why[0] = '\0';
    if (requested == TMS_CUDA_PATH_GEMM) return TMS_CUDA_PATH_GEMM;
    tms_fused_plan_t plan;
    const int fits = tms_fused_plan(M, batch, &plan) == 0;
    if (requested == TMS_CUDA_PATH_FUSED) {
        if (fits) return TMS_CUDA_PATH_FUSED;
        if (why && whylen)
            snprintf(why, whylen,
                     "--cuda-path fused: the model (n %d, m %d, %ld parameters per instance) is too large for the "
                     "fused path: its thread block needs %ld floats (%.1f KiB) of shared memory with the smallest "
                     "tile (%d rows), over the fused kernel's limit of %d floats (%.0f KiB); use --cuda-path gemm "
                     "(or auto)",
                     M->n, M->m, (long)plan.params, plan.need_floats, plan.need_floats * 4.0 / 1024.0,
                     TMS_FUSED_GROUP_ROWS, TMS_FUSED_SMEM_FLOATS_MAX, TMS_FUSED_SMEM_FLOATS_MAX * 4.0 / 1024.0);
        return -1;
    }
    // auto: the measured rule
    if (rule->confirmed && fits && plan.params <= rule->max_params) return TMS_CUDA_PATH_FUSED;
    return TMS_CUDA_PATH_GEMM;
}
