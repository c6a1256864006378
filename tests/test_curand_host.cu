// test_curand_host.cu: our Philox draw equals cuRAND's, element by element, by
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
    if (failures) {
        fprintf(stderr, "test_curand_host: %d mismatches\n", failures);
        return 1;
    }
    printf("test_curand_host: %d draws equal cuRAND's\n", 4 * 5 * n * rows);
    return 0;
}
