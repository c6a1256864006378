// fused_floor.cu: the floor of the fused path's benchmark (bench_fused.sh): a kernel that
// generates exactly the Philox numbers a fused training run draws (every element of every
// instance's batch at every step, Philox4x32-10 blocks of 4 as kernels/fused_train.cuh draws
// them, the same launch shape: a block per instance, the fused path's block size) and does
// nothing else with them but add them up, so the compiler cannot drop the work. A training
// run cannot be faster than this on the same GPU; the issue's target is the fused path within
// 3x of it.
//
//   fused_floor INSTANCES N M BATCH STEPS [DENSITY]   -> one JSON line on stdout
//
// Exit 1 (with a message) when no GPU is usable or a CUDA call fails; 2 on bad arguments.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cuda_runtime.h>
#include "cuda_path.h"
#include "tms.h"
#include "tms_math.h"

#define CHECK_CUDA(call)                                                                                   \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) {                                                                           \
            fprintf(stderr, "fused_floor: %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            return 1;                                                                                      \
        }                                                                                                  \
    } while (0)

// grid (instances), block (threads): the sum of every value instance blockIdx.x draws in
// steps [0, steps), per thread, then written once
__global__ void philox_floor_kernel1(float *sums, int n, int batch, long long steps, float density) {
    const int inst = blockIdx.x;
    const unsigned long long key = tms_instance_key(0, (unsigned long long)inst);
    const unsigned long long elements = (unsigned long long)batch * n;
    float acc = 0.0f;
    for (long long t = 0; t < steps; t++)
        for (unsigned long long q = threadIdx.x; 4 * q < elements; q += blockDim.x) {
            const tms_u32x4 r4 = tms_philox_block(key, (unsigned long long)t, q);
            for (int l = 0; l < 4; l++)
                if (4 * q + l < elements)
                    acc += tms_independent_value(tms_uniform_from_u32(r4.v[l]), density, TMS_TASK_SPARSE);
        }
    sums[(size_t)inst * blockDim.x + threadIdx.x] = acc;
}

static long arg(const char *text, long lo, long hi, const char *name) {
    char *end = NULL;
    const long v = strtol(text, &end, 10);
    if (!text[0] || *end || v < lo || v > hi) {
        fprintf(stderr, "fused_floor: %s '%s': expected an integer from %ld to %ld\n", name, text, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: fused_floor INSTANCES N M BATCH STEPS [DENSITY]\n");
        return 2;
    }
    const int instances = (int)arg(argv[1], 1, 1 << 24, "INSTANCES"), n = (int)arg(argv[2], 1, 1 << 20, "N");
    const int m = (int)arg(argv[3], 1, 1 << 20, "M"), batch = (int)arg(argv[4], 1, 1 << 24, "BATCH");
    const long steps = arg(argv[5], 1, 1L << 40, "STEPS");
    const float density = argc == 7 ? strtof(argv[6], NULL) : 0.05f;
    // the fused path's launch shape for this model (tied, output ReLU, bias: the paper's)
    const tms_model_t model = {n, m, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
    tms_fused_plan_t plan;
    const int fits = tms_fused_plan(&model, batch, &plan) == 0;
    const int threads = fits ? (plan.tile_rows < 32 ? 32 : plan.tile_rows) : 256;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        fprintf(stderr, "fused_floor: no usable CUDA GPU\n");
        return 1;
    }
    cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    float *sums = NULL;
    CHECK_CUDA(cudaMalloc(&sums, (size_t)instances * threads * sizeof(float)));
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    philox_floor_kernel1<<<instances, threads>>>(sums, n, batch, 1, density); // warm-up (module load)
    CHECK_CUDA(cudaGetLastError());
    CHECK_CUDA(cudaDeviceSynchronize());
    CHECK_CUDA(cudaEventRecord(start));
    philox_floor_kernel1<<<instances, threads>>>(sums, n, batch, steps, density);
    CHECK_CUDA(cudaGetLastError());
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    // the mean of the values drawn: density * E[u / density | u <= density] = density / 2
    float *host = (float *)malloc((size_t)instances * threads * sizeof(float));
    if (!host) return 1;
    CHECK_CUDA(cudaMemcpy(host, sums, (size_t)instances * threads * sizeof(float), cudaMemcpyDeviceToHost));
    double total = 0.0;
    for (size_t k = 0; k < (size_t)instances * threads; k++) total += host[k];
    const double mean = total / ((double)instances * steps * batch * n);
    printf("{\"impl\": \"philox_floor\", \"device_name\": \"%s\", \"instances\": %d, \"n_features\": %d, "
           "\"n_hidden\": %d, \"batch_size\": %d, \"steps\": %ld, \"threads\": %d, \"wall_seconds\": %.6f, "
           "\"uniforms_per_second\": %.6g, \"mean_value\": %.6f, \"expected_mean_value\": %.6f}\n",
           prop.name, instances, n, m, batch, steps, threads, ms / 1000.0,
           (double)instances * steps * batch * n / (ms / 1000.0), mean, density / 2.0);
    free(host);
    cudaFree(sums);
    return 0;
}
