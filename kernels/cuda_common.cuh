// cuda_common.cuh: error checks and small helpers shared by the kernels and the
// backend glue (cuda_backend.cu, the only translation unit that includes the .cuh files).
//
// Every CUDA, cuBLAS and cuRAND call goes through cudaCheck / cublasCheck / curandCheck.
// On failure the macro records "file:line: the call: ERROR_NAME (text). hint: ..." in
// tms_cuda_error and makes the calling function return -1. The backend is a library,
// so it does not exit(): create() copies the message into its err buffer, train()
// prints it to stderr. Functions that use the macros return int (0 on success), and
// their callers chain them with tmsCheck.
#pragma once

#include <stdio.h>
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <curand.h>

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

// gridDim.y holds at most 65535; kernels that put the instance on blockIdx.y are
// launched once per chunk of at most this many instances (argument inst0).
#define TMS_MAX_GRID_Y 65535

// ----------------------------------------------------------------------------
// error reporting

static thread_local char tms_cuda_error[1024];

static inline void tms_cuda_fail(const char *file, int line, const char *call, const char *name,
                                 const char *text, const char *hint) {
    snprintf(tms_cuda_error, sizeof(tms_cuda_error), "%s:%d: %s: %s (%s). hint: %s", file, line,
             call, name, text, hint);
}

static inline const char *tms_cuda_hint(cudaError_t e) {
    switch (e) {
    case cudaErrorMemoryAllocation:
        return "the GPU is out of memory: train fewer instances per run, a smaller batch or a smaller model";
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
        return "no usable GPU or NVIDIA driver: check nvidia-smi, or use --backend cpu";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDeviceFunction:
        return "the kernels were not built for this GPU: rebuild with "
               "-DCMAKE_CUDA_ARCHITECTURES=<its compute capability, e.g. 80 or 90>";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
        return "a kernel touched memory out of bounds: rerun under compute-sanitizer to find it";
    case cudaErrorInvalidConfiguration:
        return "a launch had an invalid grid or block: check the launcher's CEIL_DIV and instance chunks";
    case cudaErrorStreamCaptureUnsupported:
    case cudaErrorStreamCaptureInvalidated:
    case cudaErrorStreamCaptureImplicit:
        return "a call that is not allowed during CUDA graph capture ran inside the capture of the step";
    default:
        return "rerun with CUDA_LAUNCH_BLOCKING=1 or under compute-sanitizer to find the failing call";
    }
}

static inline const char *tms_cublas_hint(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "cuBLAS could not start: is the NVIDIA driver loaded and a GPU visible (nvidia-smi)?";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "cuBLAS ran out of device memory: train fewer instances per run";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "a GEMM size, leading dimension or stride is wrong: see the derivation beside the call";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "this GPU lacks a feature the call needs (TF32 needs compute capability 8.0+)";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "a cuBLAS kernel failed to launch or run: rerun under compute-sanitizer";
    default:
        return "see the cuBLAS documentation for this status";
    }
}

static inline const char *tms_curand_name(curandStatus_t s) {
    switch (s) {
    case CURAND_STATUS_VERSION_MISMATCH: return "CURAND_STATUS_VERSION_MISMATCH";
    case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_TYPE_ERROR: return "CURAND_STATUS_TYPE_ERROR";
    case CURAND_STATUS_OUT_OF_RANGE: return "CURAND_STATUS_OUT_OF_RANGE";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE";
    case CURAND_STATUS_ARCH_MISMATCH: return "CURAND_STATUS_ARCH_MISMATCH";
    case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR";
    default: return "CURAND_STATUS_(other)";
    }
}

#define cudaCheck(call)                                                                     \
    do {                                                                                    \
        cudaError_t cuda_status_ = (call);                                                  \
        if (cuda_status_ != cudaSuccess) {                                                  \
            tms_cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorName(cuda_status_),        \
                          cudaGetErrorString(cuda_status_), tms_cuda_hint(cuda_status_));   \
            return -1;                                                                      \
        }                                                                                   \
    } while (0)

#define cublasCheck(call)                                                                   \
    do {                                                                                    \
        cublasStatus_t cublas_status_ = (call);                                             \
        if (cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                      \
            tms_cuda_fail(__FILE__, __LINE__, #call, cublasGetStatusName(cublas_status_),   \
                          cublasGetStatusString(cublas_status_),                            \
                          tms_cublas_hint(cublas_status_));                                 \
            return -1;                                                                      \
        }                                                                                   \
    } while (0)

// Only the host API returns a status; the data kernel uses the device API (sample.cuh),
// which cannot fail. Kept for host-API calls (e.g. a benchmark's curandGenerate).
#define curandCheck(call)                                                                   \
    do {                                                                                    \
        curandStatus_t curand_status_ = (call);                                             \
        if (curand_status_ != CURAND_STATUS_SUCCESS) {                                      \
            tms_cuda_fail(__FILE__, __LINE__, #call, tms_curand_name(curand_status_),       \
                          "cuRAND host API error", "see the cuRAND documentation");          \
            return -1;                                                                      \
        }                                                                                   \
    } while (0)

// Chain a call of a function that follows the convention above (int, 0 = success, the
// message already recorded).
#define tmsCheck(call)                                                                      \
    do {                                                                                    \
        if ((call) != 0) return -1;                                                         \
    } while (0)

// ----------------------------------------------------------------------------
// reductions

// Sum of val over the warp, in every lane.
__device__ __forceinline__ float warpReduceSum(float val) {
    for (int offset = 16; offset > 0; offset /= 2) val += __shfl_xor_sync(0xffffffffu, val, offset);
    return val;
}

__device__ __forceinline__ double warpReduceSumD(double val) {
    for (int offset = 16; offset > 0; offset /= 2) val += __shfl_xor_sync(0xffffffffu, val, offset);
    return val;
}

// Sum of val over a 1-D block whose size is a multiple of 32 (at most 1024). The result
// is valid in thread 0. Every thread of the block must call it. The order of the sum
// is fixed by the block shape, so results are deterministic.
__device__ __forceinline__ float blockReduceSum(float val) {
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    val = warpReduceSum(val);
    if (lane == 0) warp_sums[warp] = val;
    __syncthreads();
    val = lane < warps ? warp_sums[lane] : 0.0f;
    if (warp == 0) val = warpReduceSum(val);
    return val;
}

__device__ __forceinline__ double blockReduceSumD(double val) {
    __shared__ double warp_sums_d[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    val = warpReduceSumD(val);
    if (lane == 0) warp_sums_d[warp] = val;
    __syncthreads();
    val = lane < warps ? warp_sums_d[lane] : 0.0;
    if (warp == 0) val = warpReduceSumD(val);
    return val;
}
