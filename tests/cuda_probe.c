// cuda_probe.c: a stand-in for the CUDA runtime's entry points that start CUDA, for
// test_backend_select.sh. Preloaded (LD_PRELOAD) into a tms linked against the shared
// libcudart / libcublas, it takes the place of every call below: it appends the call's name
// to the file named by TMS_CUDA_PROBE_LOG and fails as if there were no GPU, so that a
// run that asks CUDA anything falls back to (or stays on) the CPU and leaves a trace.
// Only the calls that initialise the driver or a context are here; the error-string
// helpers and the fat-binary registration at load time are left to the real library.
#include <stdio.h>
#include <stdlib.h>

#define NO_DEVICE 100 // cudaErrorNoDevice
#define NOT_INITIALIZED 1 // CUBLAS_STATUS_NOT_INITIALIZED

static void record(const char *call) {
    const char *path = getenv("TMS_CUDA_PROBE_LOG");
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%s\n", call);
    fclose(f);
}

// The signatures only need to be ABI-compatible for a call that ignores its arguments.
int cudaGetDeviceCount(void *count) { (void)count; record("cudaGetDeviceCount"); return NO_DEVICE; }
int cudaGetDevice(void *device) { (void)device; record("cudaGetDevice"); return NO_DEVICE; }
int cudaSetDevice(int device) { (void)device; record("cudaSetDevice"); return NO_DEVICE; }
int cudaGetDeviceProperties(void *prop, int device) { (void)prop; (void)device; record("cudaGetDeviceProperties"); return NO_DEVICE; }
int cudaFuncGetAttributes(void *attr, const void *func) { (void)attr; (void)func; record("cudaFuncGetAttributes"); return NO_DEVICE; }
int cudaMalloc(void **ptr, size_t size) { (void)ptr; (void)size; record("cudaMalloc"); return NO_DEVICE; }
int cudaHostAlloc(void **ptr, size_t size, unsigned flags) { (void)ptr; (void)size; (void)flags; record("cudaHostAlloc"); return NO_DEVICE; }
int cudaMemGetInfo(size_t *free_bytes, size_t *total) { (void)free_bytes; (void)total; record("cudaMemGetInfo"); return NO_DEVICE; }
int cudaStreamCreateWithFlags(void *stream, unsigned flags) { (void)stream; (void)flags; record("cudaStreamCreateWithFlags"); return NO_DEVICE; }
int cudaFree(void *ptr) { (void)ptr; record("cudaFree"); return NO_DEVICE; }
int cublasCreate_v2(void *handle) { (void)handle; record("cublasCreate_v2"); return NOT_INITIALIZED; }
