// philox_data.c: the input batches (independent sparse features, correlated or
// anticorrelated feature sets, the abs task's targets), drawn on the CPU exactly as the
// CUDA backend draws them with cuRAND (see tms_math.h for the scheme and the formulas).
//
// The draw is most of the CPU backend's time for small models, so blocks are
// computed four at a time with SSE2 where the compiler targets it (every x86-64),
// eight at a time with AVX2 where the CPU has it (about 20% less CPU time for the whole
// draw, measured): the same rounds as tms_philox4x32_10, one block per 32-bit lane, with
// the 32x32->64-bit products done by _mm_mul_epu32 on the even and odd lanes.
// test_philox and test_curand_host check this path against the scalar reference
// and against cuRAND's own header.
#include <string.h>
#include "tms.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define CHUNK_BLOCKS 256 // blocks per chunk: 1024 uniforms, 4 KiB on the stack

#ifdef __SSE2__
// lo and hi 32-bit halves of a * m for four lanes
static inline void mulhilo4(__m128i a, __m128i m, __m128i *lo, __m128i *hi) {
    __m128i p02 = _mm_mul_epu32(a, m);                     // [lo0 hi0 lo2 hi2]
    __m128i p13 = _mm_mul_epu32(_mm_srli_epi64(a, 32), m); // [lo1 hi1 lo3 hi3]
    __m128i t0 = _mm_shuffle_epi32(p02, _MM_SHUFFLE(3, 1, 2, 0)); // [lo0 lo2 hi0 hi2]
    __m128i t1 = _mm_shuffle_epi32(p13, _MM_SHUFFLE(3, 1, 2, 0)); // [lo1 lo3 hi1 hi3]
    *lo = _mm_unpacklo_epi32(t0, t1);
    *hi = _mm_unpackhi_epi32(t0, t1);
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define TMS_PHILOX_AVX2 1
// The same rounds as the SSE2 loop below, eight blocks at a time in AVX2's 256-bit
// registers, for CPUs that have it (checked at run time: the build targets plain x86-64).
// AVX2's shuffles and unpacks work within each 128-bit half, so every step is the SSE2
// one applied to blocks j..j+3 (low half) and j+4..j+7 (high half). Returns the blocks done.
__attribute__((target("avx2"))) static int philox_blocks_avx2(uint64_t key, uint64_t subsequence, uint64_t q0,
                                                              int count, uint32_t *words) {
    const __m256i m0 = _mm256_set1_epi32((int)TMS_PHILOX_M0), m1 = _mm256_set1_epi32((int)TMS_PHILOX_M1);
    int j = 0;
    for (; j + 8 <= count; j += 8) {
        uint32_t lo[8], hi[8];
        for (int l = 0; l < 8; l++) {
            uint64_t q = q0 + (uint64_t)(j + l);
            lo[l] = (uint32_t)q;
            hi[l] = (uint32_t)(q >> 32);
        }
        __m256i c0 = _mm256_loadu_si256((const __m256i *)lo), c1 = _mm256_loadu_si256((const __m256i *)hi);
        __m256i c2 = _mm256_set1_epi32((int)(uint32_t)subsequence);
        __m256i c3 = _mm256_set1_epi32((int)(uint32_t)(subsequence >> 32));
        uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
        for (int round = 0; round < 10; round++) {
            if (round > 0) { k0 += TMS_PHILOX_W0; k1 += TMS_PHILOX_W1; }
            // lo and hi halves of c0 * m0 and c2 * m1, as mulhilo4 computes them
            __m256i p02 = _mm256_mul_epu32(c0, m0), p13 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
            __m256i t0 = _mm256_shuffle_epi32(p02, _MM_SHUFFLE(3, 1, 2, 0));
            __m256i t1 = _mm256_shuffle_epi32(p13, _MM_SHUFFLE(3, 1, 2, 0));
            __m256i lo0 = _mm256_unpacklo_epi32(t0, t1), hi0 = _mm256_unpackhi_epi32(t0, t1);
            p02 = _mm256_mul_epu32(c2, m1);
            p13 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
            t0 = _mm256_shuffle_epi32(p02, _MM_SHUFFLE(3, 1, 2, 0));
            t1 = _mm256_shuffle_epi32(p13, _MM_SHUFFLE(3, 1, 2, 0));
            __m256i lo1 = _mm256_unpacklo_epi32(t0, t1), hi1 = _mm256_unpackhi_epi32(t0, t1);
            __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
            __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
            c0 = n0;
            c1 = lo1;
            c2 = n2;
            c3 = lo0;
        }
        __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpacklo_epi32(c2, c3);
        __m256i t2 = _mm256_unpackhi_epi32(c0, c1), t3 = _mm256_unpackhi_epi32(c2, c3);
        __m256i b04 = _mm256_unpacklo_epi64(t0, t1), b15 = _mm256_unpackhi_epi64(t0, t1);
        __m256i b26 = _mm256_unpacklo_epi64(t2, t3), b37 = _mm256_unpackhi_epi64(t2, t3);
        _mm_storeu_si128((__m128i *)(words + 4 * j + 0), _mm256_castsi256_si128(b04));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 4), _mm256_castsi256_si128(b15));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 8), _mm256_castsi256_si128(b26));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 12), _mm256_castsi256_si128(b37));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 16), _mm256_extracti128_si256(b04, 1));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 20), _mm256_extracti128_si256(b15, 1));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 24), _mm256_extracti128_si256(b26, 1));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 28), _mm256_extracti128_si256(b37, 1));
    }
    return j;
}
#endif

// words[4 * j + w] = word w of block q0 + j, for j < count
static void philox_blocks(uint64_t key, uint64_t subsequence, uint64_t q0, int count, uint32_t *words) {
    int j = 0;
#ifdef TMS_PHILOX_AVX2
    if (__builtin_cpu_supports("avx2")) j = philox_blocks_avx2(key, subsequence, q0, count, words);
#endif
#ifdef __SSE2__
    const __m128i m0 = _mm_set1_epi32((int)TMS_PHILOX_M0), m1 = _mm_set1_epi32((int)TMS_PHILOX_M1);
    for (; j + 4 <= count; j += 4) {
        uint32_t lo[4], hi[4];
        for (int l = 0; l < 4; l++) {
            uint64_t q = q0 + (uint64_t)(j + l);
            lo[l] = (uint32_t)q;
            hi[l] = (uint32_t)(q >> 32);
        }
        __m128i c0 = _mm_loadu_si128((const __m128i *)lo), c1 = _mm_loadu_si128((const __m128i *)hi);
        __m128i c2 = _mm_set1_epi32((int)(uint32_t)subsequence);
        __m128i c3 = _mm_set1_epi32((int)(uint32_t)(subsequence >> 32));
        uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
        for (int round = 0; round < 10; round++) {
            if (round > 0) { k0 += TMS_PHILOX_W0; k1 += TMS_PHILOX_W1; }
            __m128i lo0, hi0, lo1, hi1;
            mulhilo4(c0, m0, &lo0, &hi0);
            mulhilo4(c2, m1, &lo1, &hi1);
            __m128i n0 = _mm_xor_si128(_mm_xor_si128(hi1, c1), _mm_set1_epi32((int)k0));
            __m128i n2 = _mm_xor_si128(_mm_xor_si128(hi0, c3), _mm_set1_epi32((int)k1));
            c0 = n0;
            c1 = lo1;
            c2 = n2;
            c3 = lo0;
        }
        // transpose the four lanes back to four blocks of four words
        __m128i t0 = _mm_unpacklo_epi32(c0, c1), t1 = _mm_unpacklo_epi32(c2, c3);
        __m128i t2 = _mm_unpackhi_epi32(c0, c1), t3 = _mm_unpackhi_epi32(c2, c3);
        _mm_storeu_si128((__m128i *)(words + 4 * j + 0), _mm_unpacklo_epi64(t0, t1));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 4), _mm_unpackhi_epi64(t0, t1));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 8), _mm_unpacklo_epi64(t2, t3));
        _mm_storeu_si128((__m128i *)(words + 4 * j + 12), _mm_unpackhi_epi64(t2, t3));
    }
#endif
    for (; j < count; j++) {
        tms_u32x4 r = tms_philox_block(key, subsequence, q0 + (uint64_t)j);
        memcpy(words + 4 * j, r.v, sizeof(r.v));
    }
}

// Element stream -> feature-major tile. Writes rows [row_begin, row_begin + rows) of the
// (rows, n) element grid of `subsequence`, element e = row * n + i to x[i * rows + r]:
// with `values` the independent features' values (tms_independent_value), otherwise the
// raw uniforms u_e.
static void fill_tile(uint64_t key, uint64_t subsequence, int n, long row_begin, int rows,
                      int values_wanted, float density, int task, float *x) {
    const uint64_t e0 = (uint64_t)row_begin * (uint64_t)n;
    const uint64_t e1 = e0 + (uint64_t)rows * (uint64_t)n;
    uint32_t words[4 * CHUNK_BLOCKS];
    float values[4 * CHUNK_BLOCKS];
    int r = 0, i = 0;
    for (uint64_t q = e0 >> 2; q * 4 < e1; q += CHUNK_BLOCKS) {
        uint64_t q_end = (e1 + 3) >> 2;
        int count = q_end - q < CHUNK_BLOCKS ? (int)(q_end - q) : CHUNK_BLOCKS;
        philox_blocks(key, subsequence, q, count, words);
        // separate loops, so each vectorises
        if (values_wanted && task == TMS_TASK_SPARSE)
            for (int w = 0; w < 4 * count; w++) values[w] = tms_sparse_value(tms_uniform_from_u32(words[w]), density);
        else if (values_wanted)
            for (int w = 0; w < 4 * count; w++)
                values[w] = tms_independent_value(tms_uniform_from_u32(words[w]), density, task);
        else
            for (int w = 0; w < 4 * count; w++) values[w] = tms_uniform_from_u32(words[w]);
        uint64_t first = q * 4 < e0 ? e0 : q * 4;
        uint64_t last = (q + (uint64_t)count) * 4 < e1 ? (q + (uint64_t)count) * 4 : e1;
        for (uint64_t e = first; e < last; e++) {
            x[(size_t)i * rows + r] = values[e - q * 4];
            if (++i == n) { i = 0; r++; }
        }
    }
}

// Feature sets: x holds the raw uniforms u_e; replace them by the values, drawing each
// (row, set)'s uniform v (tms_set_uniform) from the sets' subsequence.
static void apply_sets(const tms_data_t *D, uint64_t key, uint64_t subsequence, int n, long row_begin,
                       int rows, float density, float *x) {
    const int k = D->set_size, G = n / k;
    const uint64_t s0 = (uint64_t)row_begin * (uint64_t)G, s1 = s0 + (uint64_t)rows * (uint64_t)G;
    uint32_t words[4 * CHUNK_BLOCKS];
    for (uint64_t q = s0 >> 2; q * 4 < s1; q += CHUNK_BLOCKS) {
        uint64_t q_end = (s1 + 3) >> 2;
        int count = q_end - q < CHUNK_BLOCKS ? (int)(q_end - q) : CHUNK_BLOCKS;
        philox_blocks(key, subsequence + TMS_SUBSEQ_SETS, q, count, words);
        uint64_t first = q * 4 < s0 ? s0 : q * 4;
        uint64_t last = (q + (uint64_t)count) * 4 < s1 ? (q + (uint64_t)count) * 4 : s1;
        for (uint64_t s = first; s < last; s++) {
            const float v = tms_uniform_from_u32(words[s - q * 4]);
            const size_t r = (size_t)(s / (uint64_t)G - (uint64_t)row_begin);
            const int g = (int)(s % (uint64_t)G);
            for (int j = 0; j < k; j++) {
                float *xe = x + (size_t)(g * k + j) * rows + r;
                *xe = tms_set_value(*xe, v, density, D->task, D->sets, k, j);
            }
        }
    }
}

void tms_sample_tile(const tms_data_t *D, uint64_t key, uint64_t subsequence, int n, long row_begin,
                     int rows, float density, float *x, float *target) {
    if (D->relative_density) { // data.relative_density: feature i's own density, from the raw uniforms
        fill_tile(key, subsequence, n, row_begin, rows, 0, density, D->task, x);
        for (int i = 0; i < n; i++) {
            const float p = density * D->relative_density[i];
            float *xi = x + (size_t)i * rows;
            for (int r = 0; r < rows; r++) xi[r] = tms_independent_value(xi[r], p, D->task);
        }
    } else if (D->sets == TMS_SETS_NONE) {
        fill_tile(key, subsequence, n, row_begin, rows, 1, density, D->task, x);
    } else {
        fill_tile(key, subsequence, n, row_begin, rows, 0, density, D->task, x);
        apply_sets(D, key, subsequence, n, row_begin, rows, density, x);
    }
    if (target && tms_data_has_target(D))
        for (size_t e = 0; e < (size_t)rows * n; e++) target[e] = tms_target_value(x[e], D->task);
}

void tms_sample_rows(uint64_t key, uint64_t subsequence, int n, long row_begin, int rows,
                     float density, float *x) {
    const tms_data_t sparse = {0};
    tms_sample_tile(&sparse, key, subsequence, n, row_begin, rows, density, x, NULL);
}
