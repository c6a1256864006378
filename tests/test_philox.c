// test_philox.c: Philox4x32-10 against the known-answer vectors published with
// Random123 (kat_vectors), the counter/key mapping of curand_init, and the
// statistics of the batches: sparse, the abs task, correlated and anticorrelated sets.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "tms.h"

static void kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
    tms_u32x4 ctr = {{c0, c1, c2, c3}};
    tms_u32x4 out = tms_philox4x32_10(ctr, k0, k1);
    CHECK(out.v[0] == r0 && out.v[1] == r1 && out.v[2] == r2 && out.v[3] == r3,
          "philox4x32_10 KAT ctr %08x..: got %08x %08x %08x %08x want %08x %08x %08x %08x", c0, out.v[0], out.v[1],
          out.v[2], out.v[3], r0, r1, r2, r3);
}

// 5-sigma bound on a binomial fraction
static int near_fraction(double frac, double p, long trials) {
    return fabs(frac - p) <= 5 * sqrt(p * (1 - p) / trials) + 1e-9;
}

// The abs task: active values uniform on (-1, 1], the target |x|; the active fraction is
// the density; inactive features and their targets are 0.
static void check_abs_task(void) {
    const tms_data_t D = {TMS_TASK_ABS, TMS_SETS_NONE, 1, NULL};
    const int n = 5, rows = 100000;
    const long N = (long)n * rows;
    const float density = 0.2f;
    float *x = malloc(sizeof(float) * N), *t = malloc(sizeof(float) * N), *plain = malloc(sizeof(float) * N);
    tms_sample_tile(&D, tms_instance_key(3, 0), 5, n, 0, rows, density, x, t);
    tms_sample_rows(tms_instance_key(3, 0), 5, n, 0, rows, density, plain);
    long active = 0, bins[10] = {0}, same_pattern = 0;
    double sum = 0;
    for (long e = 0; e < N; e++) {
        CHECK(t[e] == fabsf(x[e]), "abs target %g for x %g", t[e], x[e]);
        // the same uniforms as the sparse draw: the same elements active, x = 2 a - 1 from its magnitude a
        same_pattern += x[e] == (plain[e] == 0.0f ? 0.0f : 2.0f * plain[e] - 1.0f);
        if (plain[e] == 0.0f) { CHECK(x[e] == 0.0f, "an inactive abs feature is %g", x[e]); continue; }
        CHECK(x[e] > -1.0f && x[e] <= 1.0f, "active abs value %g outside (-1, 1]", x[e]);
        active++;
        sum += x[e];
        int b = (int)((x[e] + 1.0f) * 5.0f);
        bins[b > 9 ? 9 : b]++;
    }
    CHECK(same_pattern == N, "abs task: x = 2a - 1 of the sparse draw's magnitude a in only %ld of %ld elements", same_pattern, N);
    CHECK(near_fraction((double)active / N, density, N), "abs task: active fraction %g, density %g",
          (double)active / N, density);
    CHECK(fabs(sum / active) < 5 * sqrt(1.0 / 3.0 / active), "abs task: mean active value %g, want 0", sum / active);
    double chi2 = 0, expect = active / 10.0;
    for (int b = 0; b < 10; b++) chi2 += (bins[b] - expect) * (bins[b] - expect) / expect;
    CHECK(chi2 < 33.7, "abs task: chi-square %g over 10 bins says not uniform on (-1, 1]", chi2);
    free(x); free(t); free(plain);
}

// data.relative_density: feature i of the draw is, bit for bit, feature i of the plain draw
// at density * relative_density[i] (the same uniforms), for both tasks and across tiles; so
// each feature's active fraction is its own density (checked too, within 5 sigma).
static void check_relative_density(void) {
    float rel[5] = {0.2f, 1.0f, 4.0f, 1.0f, 19.0f};
    const int n = 5, rows = 40000;
    const float density = 0.05f;
    float *x = malloc(sizeof(float) * n * rows), *plain = malloc(sizeof(float) * n * rows);
    float *tile = malloc(sizeof(float) * n * 333), *t = malloc(sizeof(float) * n * rows);
    for (int task = TMS_TASK_SPARSE; task <= TMS_TASK_ABS; task++) {
        const tms_data_t D = {task, TMS_SETS_NONE, 1, rel}, P = {task, TMS_SETS_NONE, 1, NULL};
        tms_sample_tile(&D, tms_instance_key(7, 1), 11, n, 0, rows, density, x, t);
        for (int i = 0; i < n; i++) {
            const float p = density * rel[i];
            tms_sample_tile(&P, tms_instance_key(7, 1), 11, n, 0, rows, p, plain, NULL);
            long same = 0, active = 0;
            for (int r = 0; r < rows; r++) {
                same += memcmp(&x[(size_t)i * rows + r], &plain[(size_t)i * rows + r], sizeof(float)) == 0;
                active += x[(size_t)i * rows + r] != 0.0f;
            }
            CHECK(same == rows, "task %d, feature %d (x%g): %ld of %d rows equal the plain draw at density %g", task, i,
                  rel[i], same, rows, p);
            CHECK(near_fraction((double)active / rows, p, rows), "task %d, feature %d: active fraction %g, want %g", task,
                  i, (double)active / rows, p);
        }
        if (task == TMS_TASK_ABS)
            for (long e = 0; e < (long)n * rows; e++) CHECK(t[e] == fabsf(x[e]), "relative density, abs target %g", t[e]);
        // a tile of rows 1000..1332 is the same rows of the whole batch
        tms_sample_tile(&D, tms_instance_key(7, 1), 11, n, 1000, 333, density, tile, NULL);
        int tiled = 1;
        for (int i = 0; i < n; i++)
            for (int r = 0; r < 333; r++) tiled &= tile[(size_t)i * 333 + r] == x[(size_t)i * rows + 1000 + r];
        CHECK(tiled, "task %d: a tile of the relative-density draw differs from the whole batch's rows", task);
    }
    free(x); free(plain); free(tile); free(t);
}

// Correlated and anticorrelated sets: each feature's marginal density is the density;
// correlated sets are all active or all inactive; anticorrelated sets have at most one
// active feature, the set being active with probability k * density; features of
// different sets are independent; active magnitudes uniform on (0, 1]; tiling does not
// change the batch.
static void check_feature_sets(void) {
    const int kinds[] = {TMS_SETS_CORRELATED, TMS_SETS_ANTICORRELATED};
    const int sizes[] = {2, 3};
    const float densities[] = {0.3f, 0.05f};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int d = 0; d < 2; d++) {
                const tms_data_t D = {TMS_TASK_SPARSE, kinds[a], sizes[b], NULL};
                const int k = sizes[b], n = 2 * k * 2, G = n / k, rows = 60000; // 4 sets
                const float p = densities[d];
                const char *name = kinds[a] == TMS_SETS_CORRELATED ? "correlated" : "anticorrelated";
                float *x = malloc(sizeof(float) * n * rows);
                tms_sample_tile(&D, tms_instance_key(11, (uint64_t)(4 * a + 2 * b + d)), 17, n, 0, rows, p, x, NULL);
                long active_feature[12] = {0}, active_set = 0, bad_set = 0, cross = 0, bins[10] = {0}, active = 0;
                double sum = 0;
                for (int r = 0; r < rows; r++) {
                    for (int g = 0; g < G; g++) {
                        int count = 0;
                        for (int j = 0; j < k; j++) {
                            float v = x[(size_t)(g * k + j) * rows + r];
                            if (v == 0.0f) continue;
                            CHECK(v > 0.0f && v <= 1.0f, "%s: active value %g outside (0, 1]", name, v);
                            count++;
                            active++;
                            active_feature[g * k + j]++;
                            sum += v;
                            int bin = (int)(v * 10.0f);
                            bins[bin > 9 ? 9 : bin]++;
                        }
                        active_set += count > 0;
                        if (kinds[a] == TMS_SETS_CORRELATED) bad_set += count != 0 && count != k;
                        else bad_set += count > 1;
                    }
                    // features 0 and k are in different sets: independent
                    cross += x[r] != 0.0f && x[(size_t)k * rows + r] != 0.0f;
                }
                CHECK(bad_set == 0, "%s k=%d p=%g: %ld sets break the rule", name, k, p, bad_set);
                for (int i = 0; i < n; i++)
                    CHECK(near_fraction((double)active_feature[i] / rows, p, rows),
                          "%s k=%d p=%g: feature %d active in %g of rows", name, k, p, i, (double)active_feature[i] / rows);
                double set_p = kinds[a] == TMS_SETS_CORRELATED ? p : k * p;
                CHECK(near_fraction((double)active_set / ((long)rows * G), set_p, (long)rows * G),
                      "%s k=%d p=%g: sets active in %g, want %g", name, k, p, (double)active_set / ((long)rows * G), set_p);
                CHECK(near_fraction((double)cross / rows, (double)p * p, rows),
                      "%s k=%d p=%g: features of two sets co-occur in %g of rows, want %g", name, k, p,
                      (double)cross / rows, (double)p * p);
                CHECK(fabs(sum / active - 0.5) < 5 * sqrt(1.0 / 12.0 / active), "%s: mean active value %g", name,
                      sum / active);
                double chi2 = 0, expect = active / 10.0;
                for (int bin = 0; bin < 10; bin++) chi2 += (bins[bin] - expect) * (bins[bin] - expect) / expect;
                CHECK(chi2 < 33.7, "%s: chi-square %g says active values not uniform", name, chi2);
                // tiles: rows split unevenly give the same batch
                float *part = malloc(sizeof(float) * n * 1000);
                int r0 = 0, pieces[] = {1, 7, 333, 659}, same = 1;
                for (int q = 0; q < 4; q++) {
                    tms_sample_tile(&D, tms_instance_key(11, (uint64_t)(4 * a + 2 * b + d)), 17, n, r0, pieces[q], p,
                                    part, NULL);
                    for (int r = 0; r < pieces[q]; r++)
                        for (int i = 0; i < n; i++) same &= part[i * pieces[q] + r] == x[(size_t)i * rows + r0 + r];
                    r0 += pieces[q];
                }
                CHECK(same, "%s: tiling changes the batch", name);
                printf("%-14s k=%d density %-4g: features active %.4f..%.4f, sets active %.4f (want %.4f), "
                       "rule broken in %ld sets\n", name, k, p, (double)active_feature[0] / rows,
                       (double)active_feature[n - 1] / rows, (double)active_set / ((long)rows * G), set_p, bad_set);
                free(part);
                free(x);
            }
}

int main(void) {
    // Random123 kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> output[4]
    kat(0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8);
    kat(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
        0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd);
    kat(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
        0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1);

    // curand_init(seed, subsequence, offset): key = seed (low word first), counter
    // words 2..3 = subsequence, words 0..1 = offset / 4.
    {
        uint64_t seed = 0x299f31d0a4093822ull, subseq = 0x0370734413198a2eull, block = 0x85a308d3243f6a88ull;
        tms_u32x4 r = tms_philox_block(seed, subseq, block);
        CHECK(r.v[0] == 0xd16cfe09 && r.v[3] == 0x24126ea1, "tms_philox_block maps seed/subsequence/block wrongly");
    }

    // uniform conversion: (0, 1], exactly as curand_uniform
    CHECK(tms_uniform_from_u32(0) == 2.3283064e-10f / 2.0f, "uniform(0) = 2^-33");
    CHECK(tms_uniform_from_u32(0xffffffffu) == 1.0f, "uniform(2^32-1) rounds to 1");
    CHECK(tms_uniform_from_u32(0x80000000u) == 0.5f + 2.3283064e-10f / 2.0f, "uniform(2^31)");

    // the batch sampler (SSE2, and AVX2 where the CPU has it, four and eight blocks at a
    // time) equals the scalar reference element by element: element e = row * n + i is lane
    // e % 4 of block e / 4; widths and row offsets that start and end mid-block
    {
        int bad = 0;
        for (int n = 1; n <= 37; n += 6)
            for (int r0 = 0; r0 < 5; r0++) {
                const int rows = 301;
                float *x = malloc(sizeof(float) * n * rows);
                tms_sample_rows(0x123456789abcdefull, 77, n, r0, rows, 0.4f, x);
                for (int r = 0; r < rows; r++)
                    for (int i = 0; i < n; i++) {
                        uint64_t e = (uint64_t)(r0 + r) * n + i;
                        tms_u32x4 b = tms_philox_block(0x123456789abcdefull, 77, e / 4);
                        bad += tms_sparse_value(tms_uniform_from_u32(b.v[e % 4]), 0.4f) != x[i * rows + r];
                    }
                free(x);
            }
        CHECK(bad == 0, "the batch sampler differs from the scalar Philox in %d elements", bad);
    }

    // a batch does not depend on how its rows are split into tiles (tiles are
    // feature-major: x[i * rows + r])
    {
        const int n = 7, rows = 300;
        float *whole = malloc(sizeof(float) * n * rows), *part = malloc(sizeof(float) * n * rows);
        tms_sample_rows(42, 3, n, 0, rows, 0.3f, whole);
        int r0 = 0, sizes[] = {1, 2, 5, 64, 13, 215}, same = 1;
        for (int s = 0; s < 6; s++) {
            tms_sample_rows(42, 3, n, r0, sizes[s], 0.3f, part);
            for (int r = 0; r < sizes[s]; r++)
                for (int i = 0; i < n; i++) same &= part[i * sizes[s] + r] == whole[i * rows + r0 + r];
            r0 += sizes[s];
        }
        CHECK(r0 == rows && same, "tiling changes the batch");
        free(whole);
        free(part);
    }

    // statistics: active fraction near the density; active values uniform on (0, 1]
    const float densities[] = {1.0f, 0.3f, 0.05f, 0.001f};
    for (int d = 0; d < 4; d++) {
        const int n = 5, rows = 200000;
        const long N = (long)n * rows;
        float *x = malloc(sizeof(float) * N);
        tms_sample_rows(tms_instance_key(7, d), 11, n, 0, rows, densities[d], x);
        long active = 0;
        long bins[10] = {0};
        double sum = 0;
        for (long e = 0; e < N; e++) {
            if (x[e] == 0.0f) continue;
            CHECK(x[e] > 0.0f && x[e] <= 1.0f, "active value %g outside (0, 1]", x[e]);
            active++;
            sum += x[e];
            int b = (int)(x[e] * 10.0f);
            bins[b > 9 ? 9 : b]++;
        }
        double p = densities[d];
        double sd = sqrt(p * (1 - p) / N);
        double frac = (double)active / N;
        CHECK(fabs(frac - p) <= 5 * sd + 1e-9, "density %g: active fraction %g (5 sigma = %g)", p, frac, 5 * sd);
        if (active > 1000) {
            double mean = sum / active, sd_mean = sqrt(1.0 / 12.0 / active);
            CHECK(fabs(mean - 0.5) < 5 * sd_mean, "density %g: mean active value %g", p, mean);
            // chi-square over 10 equal bins, 9 degrees of freedom: P(chi2 > 33.7) = 1e-4
            double chi2 = 0, expect = active / 10.0;
            for (int b = 0; b < 10; b++) chi2 += (bins[b] - expect) * (bins[b] - expect) / expect;
            CHECK(chi2 < 33.7, "density %g: chi-square %g over 10 bins says not uniform", p, chi2);
        }
        free(x);
    }
    // different instance keys and steps give different batches
    {
        float a[64], b[64], c[64];
        tms_sample_rows(tms_instance_key(0, 0), 0, 8, 0, 8, 1.0f, a);
        tms_sample_rows(tms_instance_key(0, 1), 0, 8, 0, 8, 1.0f, b);
        tms_sample_rows(tms_instance_key(0, 0), 1, 8, 0, 8, 1.0f, c);
        int ab = 0, ac = 0;
        for (int e = 0; e < 64; e++) { ab += a[e] == b[e]; ac += a[e] == c[e]; }
        CHECK(ab < 2 && ac < 2, "replicates or steps share random numbers (%d, %d equal of 64)", ab, ac);
    }
    check_abs_task();
    check_feature_sets();
    check_relative_density();
    return check_finish("test_philox");
}
