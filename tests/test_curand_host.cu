// test_curand_host.cu: our Philox draws (sparse, the abs task, feature sets with their
// second subsequence) equal cuRAND's, element by element, by
// compiling cuRAND's own device header for the host (QUALIFIERS redefined), so the
// ground truth is the header NVIDIA ships, with no GPU needed.
#define QUALIFIERS static inline __host__ __device__
#include <curand_kernel.h>
#include <stdio.h>
#include <stdlib.h>
#include "tms.h"

int main(void) {
    int failures = 0;
    const uint64_t seeds[] = {0, 1, 0xdeadbeefcafef00dull, tms_instance_key(3, 2)};
    const uint64_t steps[] = {0, 1, 9999, 123456789ull, TMS_SUBSEQ_EVAL};
    const int n = 5, rows = 37; // n * rows = 185: not a multiple of 4
    float x[5 * 37];
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 5; t++) {
            const float density = 0.37f;
            tms_sample_rows(seeds[s], steps[t], n, 0, rows, density, x);
            for (int e = 0; e < n * rows; e++) {
                const float got = x[(e % n) * rows + e / n]; // element e = r * n + i sits at x[i * rows + r]
                curandStatePhilox4_32_10_t st;
                curand_init(seeds[s], steps[t], (unsigned long long)e, &st);
                float u = curand_uniform(&st);
                float want = u <= density ? u / density : 0.0f;
                if (got != want) {
                    if (failures++ < 5)
                        fprintf(stderr, "FAIL seed %llx step %llu element %d: tms %.9g curand %.9g\n",
                                (unsigned long long)seeds[s], (unsigned long long)steps[t], e, got, want);
                }
            }
            // the block form the GPU kernel uses: curand_init(seed, step, 4q) + curand_uniform4
            curandStatePhilox4_32_10_t st;
            curand_init(seeds[s], steps[t], 4 * 9, &st);
            float4 u4 = curand_uniform4(&st);
            tms_u32x4 r = tms_philox_block(seeds[s], steps[t], 9);
            if (u4.x != tms_uniform_from_u32(r.v[0]) || u4.w != tms_uniform_from_u32(r.v[3])) {
                failures++;
                fprintf(stderr, "FAIL curand_uniform4 block differs\n");
            }
        }
    // the new draws: the abs task, and feature sets, whose set uniforms come from the
    // subsequence step + TMS_SUBSEQ_SETS, element row * G + set
    const tms_data_t modes[] = {{TMS_TASK_ABS, TMS_SETS_NONE, 1, NULL},
                                {TMS_TASK_SPARSE, TMS_SETS_CORRELATED, 3, NULL},
                                {TMS_TASK_ABS, TMS_SETS_ANTICORRELATED, 2, NULL},
                                {TMS_TASK_SPARSE, TMS_SETS_ANTICORRELATED, 3, NULL}};
    const int n6 = 6, rows6 = 41; // 6 features: sets of 2 and of 3
    float x6[6 * 41], t6[6 * 41];
    int mode_draws = 0;
    for (int md = 0; md < 4; md++)
        for (int s = 0; s < 4; s++)
            for (int t = 0; t < 5; t++) {
                const tms_data_t *D = &modes[md];
                const float density = D->sets == TMS_SETS_ANTICORRELATED ? 0.9f / D->set_size : 0.37f;
                tms_sample_tile(D, seeds[s], steps[t], n6, 0, rows6, density, x6, t6);
                for (int e = 0; e < n6 * rows6; e++) {
                    const int r = e / n6, i = e % n6;
                    curandStatePhilox4_32_10_t st;
                    curand_init(seeds[s], steps[t], (unsigned long long)e, &st);
                    const float u = curand_uniform(&st);
                    float want;
                    if (D->sets == TMS_SETS_NONE) {
                        want = u <= density ? tms_task_value(u / density, D->task) : 0.0f;
                    } else {
                        const int k = D->set_size;
                        curand_init(seeds[s], steps[t] + TMS_SUBSEQ_SETS, (unsigned long long)(r * (n6 / k) + i / k), &st);
                        const float v = curand_uniform(&st);
                        const int on = D->sets == TMS_SETS_CORRELATED ? v <= density
                                                                      : (v / density <= (float)k && (int)ceilf(v / density) - 1 == i % k);
                        want = on ? tms_task_value(u, D->task) : 0.0f;
                    }
                    // the target is written only when it is not x itself
                    const float got = x6[i * rows6 + r], got_t = tms_data_has_target(D) ? t6[i * rows6 + r] : got;
                    const float want_t = D->task == TMS_TASK_ABS ? fabsf(want) : want;
                    if (got != want || got_t != want_t) {
                        if (failures++ < 10)
                            fprintf(stderr, "FAIL mode %d seed %llx step %llu element %d: tms %.9g (target %.9g), "
                                    "curand %.9g (target %.9g)\n", md, (unsigned long long)seeds[s],
                                    (unsigned long long)steps[t], e, got, got_t, want, want_t);
                    }
                    mode_draws++;
                }
            }
    if (failures) {
        fprintf(stderr, "test_curand_host: %d mismatches\n", failures);
        return 1;
    }
    printf("test_curand_host: %d sparse draws and %d abs / feature-set draws equal cuRAND's\n", 4 * 5 * n * rows,
           mode_draws);
    return 0;
}
