// test_cuda_path.c: the CUDA path selection (host/cuda_path.c), with or without CUDA.
//   - the fused kernel's shared-memory layout: the arrays are disjoint, in bounds, and their
//     sizes are the documented formula (4 P + P R / 16 + R (2 n + 2 m) + R + n floats),
//     written out here independently for known models;
//   - the size rule: the tile is the largest of 256..16 rows that fits (capped by the batch),
//     the class the smallest that holds it; the boundary of what fits is where the formula
//     crosses the limit, found by brute force over n and m;
//   - the selection: gemm always gives gemm; fused gives fused when the model fits, else -1
//     with a message naming the limit; auto follows the measured rule: with the rule as
//     committed (not confirmed on a GPU) every model goes to gemm; with a confirmed rule, the
//     fitting models up to its parameter count go to fused and the others to gemm;
//   - the flag's values are parsed strictly.
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "cuda_path.h"
#include "tms.h"

static long params_of(const tms_model_t *M) {
    long P = (long)M->m * M->n;                               // W
    if (M->decoder == TMS_DECODER_UNTIED) P += (long)M->n * M->m; // W2
    if (M->hidden_act == TMS_ACT_RELU && M->bias && !M->no_hidden_bias) P += M->m; // b1
    if (M->bias) P += M->n;                                   // b
    return P;
}

static long formula(const tms_model_t *M, long R) {
    const long P = params_of(M);
    return 4 * P + P * (R / 16) + R * (2L * M->n + 2L * M->m) + R + M->n;
}

static void check_layout(int n, int m, int P, int R) {
    const tms_fused_smem_t s = tms_fused_smem_layout(n, m, P, R);
    // [start, size] of each array, in the struct's order
    const long arrays[][2] = {{s.params, P},         {s.adam_m, P},      {s.adam_v, P},
                              {s.grad, P},           {s.partial, (long)P * (R / 16)},
                              {s.x, (long)R * n},    {s.dy, (long)R * n}, {s.h, (long)R * m},
                              {s.dz, (long)R * m},   {s.row_loss, R},    {s.importance, n}};
    const int count = (int)(sizeof(arrays) / sizeof(arrays[0]));
    long sum = 0;
    for (int a = 0; a < count; a++) {
        sum += arrays[a][1];
        CHECK(arrays[a][0] >= 0 && arrays[a][0] + arrays[a][1] <= s.total, "array %d out of bounds", a);
        for (int b = a + 1; b < count; b++)
            CHECK(arrays[a][0] + arrays[a][1] <= arrays[b][0] || arrays[b][0] + arrays[b][1] <= arrays[a][0],
                  "arrays %d and %d overlap (n %d m %d R %d)", a, b, n, m, R);
    }
    CHECK(sum == s.total, "layout total %ld, arrays sum to %ld", s.total, sum);
}

int main(void) {
    // ---- layout
    check_layout(5, 2, 15, 256);
    check_layout(20, 10, 430, 16);
    check_layout(7, 3, 52, 32);

    // ---- the paper's 5 -> 2 (tied, output ReLU, bias): P = 15, tile 256, 4145 floats, 24 KiB class
    tms_model_t pent = {5, 2, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    tms_fused_plan_t plan;
    CHECK(tms_fused_plan(&pent, 1024, &plan) == 0, "5 -> 2 must fit");
    CHECK(plan.params == 15 && plan.tile_rows == 256, "5 -> 2: P %d tile %d", plan.params, plan.tile_rows);
    CHECK(plan.need_floats == 60 + 15 * 16 + 256 * 14 + 256 + 5, "5 -> 2: %ld floats", plan.need_floats);
    CHECK(plan.smem_floats == 6144, "5 -> 2: class %d", plan.smem_floats);
    // a small batch caps the tile: 45 rows -> 48 -> tile 32
    CHECK(tms_fused_plan(&pent, 45, &plan) == 0 && plan.tile_rows == 32, "batch 45: tile %d", plan.tile_rows);
    CHECK(tms_fused_plan(&pent, 1, &plan) == 0 && plan.tile_rows == 16, "batch 1: tile %d", plan.tile_rows);
    // 2 -> 1 (the phase diagram): the smallest class
    tms_model_t phase = {2, 1, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    CHECK(tms_fused_plan(&phase, 1024, &plan) == 0 && plan.smem_floats == 3072 && plan.tile_rows == 256,
          "2 -> 1: class %d tile %d", plan.smem_floats, plan.tile_rows);

    // ---- the size rule, against the formula, over every n, m up to 200 x 64 (untied with
    // both biases: the largest variant) and a tied model without biases
    const int decoders[2] = {TMS_DECODER_UNTIED, TMS_DECODER_TIED};
    for (int d = 0; d < 2; d++) {
        int largest_n_at_m4 = 0;
        for (int n = 1; n <= 200; n++)
            for (int m = 1; m <= 64; m++) {
                tms_model_t M = {n, m, decoders[d], d ? TMS_ACT_NONE : TMS_ACT_RELU, TMS_ACT_RELU, d ? 0 : 1, 0};
                long want_R = 0;
                for (long R = 256; R >= 16 && !want_R; R /= 2)
                    if (formula(&M, R) <= TMS_FUSED_SMEM_FLOATS_MAX) want_R = R;
                const int fits = tms_fused_plan(&M, 4096, &plan) == 0;
                CHECK(fits == (want_R > 0), "n %d m %d: fits %d, formula says %d", n, m, fits, want_R > 0);
                if (fits) {
                    CHECK(plan.tile_rows == want_R && plan.need_floats == formula(&M, want_R),
                          "n %d m %d: tile %d (want %ld), %ld floats", n, m, plan.tile_rows, want_R, plan.need_floats);
                    CHECK(plan.smem_floats >= plan.need_floats, "n %d m %d: class below the need", n, m);
                    if (m == 4) largest_n_at_m4 = n;
                }
            }
        printf("%s: the largest n at m = 4 the fused path takes: %d\n", d ? "tied, no bias" : "untied, biases",
               largest_n_at_m4);
        CHECK(largest_n_at_m4 > 20, "the fused path must take the paper's 20 -> 4 models");
    }

    // ---- selection
    char why[512];
    tms_model_t big = {400, 40, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_GEMM, &pent, 1024, NULL, why, sizeof(why)) == TMS_CUDA_PATH_GEMM, "gemm");
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_FUSED, &pent, 1024, NULL, why, sizeof(why)) == TMS_CUDA_PATH_FUSED,
          "fused 5 -> 2");
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_FUSED, &big, 1024, NULL, why, sizeof(why)) == -1, "fused 400 -> 40");
    printf("message: %s\n", why);
    CHECK(strstr(why, "--cuda-path fused") && strstr(why, "n 400, m 40") && strstr(why, "12032 floats") &&
              strstr(why, "47 KiB") && strstr(why, "--cuda-path gemm"),
          "the message must name the flag, the model, the limit and the way out: %s", why);
    // auto under the committed rule: gemm for everything, until a GPU confirms the fused path
    CHECK(!tms_fused_measured_rule.confirmed, "the rule says confirmed, but no GPU has run the fused path");
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_AUTO, &pent, 1024, NULL, NULL, 0) == TMS_CUDA_PATH_GEMM, "auto, rule");
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_AUTO, &big, 1024, NULL, NULL, 0) == TMS_CUDA_PATH_GEMM, "auto big");
    // auto under a confirmed rule
    const tms_fused_rule_t rule = {1, 100};
    tms_model_t mid = {20, 5, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0}; // 120 parameters: fits
    CHECK(tms_fused_plan(&mid, 1024, &plan) == 0 && plan.params == 120, "20 -> 5 fits with 120 parameters");
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_AUTO, &pent, 1024, &rule, NULL, 0) == TMS_CUDA_PATH_FUSED, "rule: 5->2");
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_AUTO, &mid, 1024, &rule, NULL, 0) == TMS_CUDA_PATH_GEMM, "rule: 20->5");
    CHECK(tms_cuda_path_select(TMS_CUDA_PATH_AUTO, &big, 1024, &(tms_fused_rule_t){1, 1L << 40}, NULL, 0) ==
              TMS_CUDA_PATH_GEMM, "rule: a model that does not fit is never fused");

    // ---- parsing
    CHECK(tms_cuda_path_parse("auto") == TMS_CUDA_PATH_AUTO && tms_cuda_path_parse("gemm") == TMS_CUDA_PATH_GEMM &&
              tms_cuda_path_parse("fused") == TMS_CUDA_PATH_FUSED, "parse");
    const char *wrong[] = {"", "Fused", " fused", "fused ", "cublas", "2", NULL};
    for (int k = 0; wrong[k]; k++) CHECK(tms_cuda_path_parse(wrong[k]) == -1, "'%s' parsed", wrong[k]);
    CHECK(tms_cuda_path_parse(NULL) == -1, "NULL parsed");
    CHECK(!strcmp(tms_cuda_path_name(TMS_CUDA_PATH_FUSED), "fused") && !strcmp(tms_cuda_path_name(TMS_CUDA_PATH_GEMM),
                                                                                 "gemm"), "names");
    return check_finish("test_cuda_path");
}
