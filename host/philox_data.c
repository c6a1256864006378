// philox_data.c: the sparse input batches, drawn on the CPU exactly as the CUDA
// backend draws them with cuRAND (see tms_math.h for the scheme).
#include "tms.h"

void tms_sample_rows(uint64_t key, uint64_t subsequence, int n, long row_begin, int rows,
                     float density, float *x) {
    uint64_t e0 = (uint64_t)row_begin * (uint64_t)n;
    uint64_t e1 = e0 + (uint64_t)rows * (uint64_t)n;
    uint64_t e = e0;
    // head: the part of a block before the first 4-aligned element
    if (e & 3) {
        tms_u32x4 r = tms_philox_block(key, subsequence, e >> 2);
        for (; (e & 3) && e < e1; e++) x[e - e0] = tms_sparse_value(tms_uniform_from_u32(r.v[e & 3]), density);
    }
    // whole blocks
    for (; e + 4 <= e1; e += 4) {
        tms_u32x4 r = tms_philox_block(key, subsequence, e >> 2);
        float *dst = x + (e - e0);
        for (int lane = 0; lane < 4; lane++) dst[lane] = tms_sparse_value(tms_uniform_from_u32(r.v[lane]), density);
    }
    // tail
    if (e < e1) {
        tms_u32x4 r = tms_philox_block(key, subsequence, e >> 2);
        for (; e < e1; e++) x[e - e0] = tms_sparse_value(tms_uniform_from_u32(r.v[e & 3]), density);
    }
}
