// test_gpu_batch.c: the batch the GPU draws (cuRAND device API, sample.cuh) equals the
// CPU's (tms_sample_rows, host/philox_data.c) bit for bit. The GPU's batch is row-major
// (batch, n), the CPU's tile feature-major (n, batch); element (r, i) is compared with
// element (r, i), i.e. Philox element e = r * n + i on both. Several shapes (n not a
// multiple of 4, batch * n not a multiple of 4, a single feature), densities, keys, and
// steps, including one above 2^32 (the subsequence's high word); and the other data modes
// (the abs task, correlated and anticorrelated feature sets, whose set uniforms come from
// a second subsequence), which must match tms_sample_tile bit for bit too.
#include <stdint.h>
#include "gpu_check.h"

static void check_shape(int n, int batch, int instances, tms_data_t data) {
    tms_model_t model = {n, 1, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    gpu_problem_t g;
    CHECK(problem_make(&g, model, instances, batch, 10, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) == 0, "problem");
    g.P.data = data;
    tms_backend_t be;
    char err[1024];
    if (tms_cuda_backend_create(&be, &g.P, &g.L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "n %d batch %d: %s", n, batch, err);
        problem_free(&g);
        return;
    }
    const size_t per = (size_t)batch * n;
    float *gpu = malloc((size_t)instances * per * sizeof(float));
    float *cpu = malloc(per * sizeof(float));
    const long steps[] = {0, 1, 9999, 123456789L, (1L << 33) + 5};
    long mismatches = 0, active = 0, total = 0;
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        CHECK(tms_cuda_backend_batch(&be, steps[s], gpu) == 0, "batch at step %ld", steps[s]);
        for (int i = 0; i < instances; i++) {
            tms_sample_tile(&data, g.inst[i].key, (uint64_t)steps[s], n, 0, batch, g.inst[i].density, cpu, NULL);
            const float *gi = gpu + (size_t)i * per;
            for (size_t e = 0; e < per; e++) {
                const size_t r = e / (size_t)n, f = e % (size_t)n;
                const float want = cpu[f * (size_t)batch + r]; // feature-major tile
                uint32_t a, b;
                memcpy(&a, &gi[e], 4);
                memcpy(&b, &want, 4);
                if (a != b) {
                    if (mismatches < 5)
                        fprintf(stderr, "  MISMATCH n %d batch %d step %ld instance %d row %zu feature %zu: "
                                "gpu %.9g (0x%08x) cpu %.9g (0x%08x)\n", n, batch, steps[s], i, r, f, gi[e], a,
                                want, b);
                    mismatches++;
                }
                active += want != 0.0f;
                total++;
            }
        }
    }
    CHECK(mismatches == 0, "n %d batch %d: %ld of %ld elements differ", n, batch, mismatches, total);
    // not vacuous: instance 0 has density 1, so at least its elements are active
    CHECK(active >= total / instances / 2, "n %d batch %d: only %ld of %ld elements active", n, batch, active, total);
    printf("  task %d sets %d (k %d) n %d batch %d instances %d: %ld elements compared, %ld differ\n", data.task,
           data.sets, data.set_size, n, batch, instances, total, mismatches);
    free(gpu);
    free(cpu);
    be.destroy(&be);
    problem_free(&g);
}

int main(void) {
    gpu_require("test_gpu_batch");
    const tms_data_t sparse = {TMS_TASK_SPARSE, TMS_SETS_NONE, 1, NULL};
    check_shape(5, 1024, 3, sparse);   // the paper's shape
    check_shape(7, 1024, 4, sparse);   // n not a multiple of 4
    check_shape(7, 3, 5, sparse);      // batch * n = 21: a partial last block of four
    check_shape(1, 1, 2, sparse);      // a single element per instance
    check_shape(100, 256, 7, sparse);  // wider
    const tms_data_t abs_task = {TMS_TASK_ABS, TMS_SETS_NONE, 1, NULL};
    const tms_data_t correlated = {TMS_TASK_SPARSE, TMS_SETS_CORRELATED, 3, NULL};
    const tms_data_t anticorrelated = {TMS_TASK_SPARSE, TMS_SETS_ANTICORRELATED, 2, NULL};
    const tms_data_t abs_anticorrelated = {TMS_TASK_ABS, TMS_SETS_ANTICORRELATED, 3, NULL};
    check_shape(7, 1024, 4, abs_task);
    check_shape(6, 1024, 5, correlated);         // sets of 3: a set straddles blocks of four
    check_shape(6, 7, 3, anticorrelated);        // batch * n = 42: a partial last block
    check_shape(9, 333, 7, abs_anticorrelated);
    check_shape(100, 256, 3, (tms_data_t){TMS_TASK_SPARSE, TMS_SETS_CORRELATED, 20, NULL});
    return check_finish("test_gpu_batch");
}
