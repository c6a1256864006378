// emu_prelude.h: force-included (g++ -include) ahead of the rewritten kernels/ sources when
// they are compiled for the host as C++ by tests/emu (never by the product build). It
// makes the CUDA dialect of kernels/ compile with g++ and run on the emulator:
//   - __global__, __device__, __host__ expand to nothing; __shared__ to `static`, which is
//     one object shared by every thread of a block because the emulator runs the blocks of
//     a launch one after the other, each to completion;
//   - NVIDIA's own headers give the types (cuda_runtime_api.h, vector types, cublas_v2.h)
//     and, with QUALIFIERS defined for the host, the cuRAND device functions;
//   - threadIdx, blockIdx, blockDim, gridDim, warpSize read the emulator's per-fiber values;
//   - __syncthreads and the warp shuffles call the emulator, which runs each CUDA thread as
//     a fiber (emu_runtime.cpp);
//   - `k<<<grid, block, shmem, stream>>>(args)` has been rewritten by rewrite_launches.py
//     into `::emu::launch(k, "k", __FILE__, __LINE__, grid, block, shmem, stream)(args)`,
//     which freezes the arguments by value and enqueues the launch on the stream.
#ifndef TMS_EMU_PRELUDE_H
#define TMS_EMU_PRELUDE_H

#ifdef __CUDACC__
#error "emu_prelude.h is for the host compiler only"
#endif

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define QUALIFIERS static inline

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cuda_runtime.h>
#include <device_launch_parameters.h> // these declare the built-ins (curand_mtgp32_kernel.h too):
#include <curand_kernel.h>            // included before the macros below rename them

#ifdef __cplusplus
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// the per-thread built-ins, set by the emulator's scheduler on every switch to a CUDA thread
extern uint3 emu_threadIdx, emu_blockIdx;
extern dim3 emu_blockDim, emu_gridDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim
#define warpSize 32

// nvcc's typed overload (cuda_runtime.h has it only for nvcc)
template <class T> static inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *attr, T *entry) {
    return ::cudaFuncGetAttributes(attr, (const void *)entry);
}

namespace emu {

// One argument of a launch that is a pointer: checked against the device allocations when
// the kernel runs (a host or freed pointer fails the launch).
struct pointer_arg {
    int index;
    const void *ptr;
};

struct launch_site {
    const char *kernel, *file;
    int line;
};

// Queue a launch (the body runs one CUDA thread with the frozen arguments). Returns the
// launch's configuration error (also kept for cudaGetLastError).
cudaError_t enqueue_launch(const launch_site &site, const void *kernel, dim3 grid, dim3 block, size_t shmem,
                           cudaStream_t stream, std::function<void()> body,
                           std::vector<pointer_arg> pointers);

template <typename... P> struct launcher {
    void (*kernel)(P...);
    launch_site site;
    dim3 grid, block;
    size_t shmem;
    cudaStream_t stream;

    template <typename... A> void operator()(A &&...a) const {
        static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
        // frozen by value at the launch, converted to the parameter types as nvcc would
        auto args = std::make_shared<std::tuple<std::decay_t<P>...>>(std::forward<A>(a)...);
        std::vector<pointer_arg> pointers;
        collect(*args, pointers, std::index_sequence_for<P...>{});
        void (*k)(P...) = kernel;
        enqueue_launch(
            site, (const void *)kernel, grid, block, shmem, stream, [k, args]() { std::apply(k, *args); },
            std::move(pointers));
    }

  private:
    template <typename T, size_t... I>
    static void collect(const T &args, std::vector<pointer_arg> &out, std::index_sequence<I...>) {
        (add(out, (int)I, std::get<I>(args)), ...);
    }
    template <typename V> static void add(std::vector<pointer_arg> &out, int index, const V &v) {
        if constexpr (std::is_pointer_v<V>) out.push_back({index, (const void *)v});
    }
};

template <typename... P>
launcher<P...> launch(void (*kernel)(P...), const char *name, const char *file, int line, dim3 grid,
                      dim3 block, size_t shmem = 0, cudaStream_t stream = 0) {
    return launcher<P...>{kernel, {name, file, line}, grid, block, shmem, stream};
}

// the primitives behind __syncthreads and the shuffles
struct site_t {
    const char *file;
    int line;
};
void syncthreads(site_t site);
uint64_t shfl(unsigned mask, uint64_t value, int kind, int lane_arg, int width, site_t site);
enum { SHFL_IDX, SHFL_XOR, SHFL_DOWN, SHFL_UP };

} // namespace emu

// A barrier or shuffle is identified by its source line (__FILE__, __LINE__): the compiler
// may duplicate a call into several code paths, so a return address would not do.
#define __syncthreads() ::emu::syncthreads(::emu::site_t{__FILE__, __LINE__})

template <int KIND, typename T>
static inline T emu_shfl(emu::site_t site, unsigned mask, T var, int lane_arg, int width = 32) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of an unsupported type");
    uint64_t in = 0, out;
    memcpy(&in, &var, sizeof(T));
    out = emu::shfl(mask, in, KIND, lane_arg, width, site);
    T r;
    memcpy(&r, &out, sizeof(T));
    return r;
}
#define __shfl_xor_sync(...) emu_shfl<::emu::SHFL_XOR>(::emu::site_t{__FILE__, __LINE__}, __VA_ARGS__)
#define __shfl_sync(...) emu_shfl<::emu::SHFL_IDX>(::emu::site_t{__FILE__, __LINE__}, __VA_ARGS__)
#define __shfl_down_sync(...) emu_shfl<::emu::SHFL_DOWN>(::emu::site_t{__FILE__, __LINE__}, __VA_ARGS__)
#define __shfl_up_sync(...) emu_shfl<::emu::SHFL_UP>(::emu::site_t{__FILE__, __LINE__}, __VA_ARGS__)

// Atomics: the emulator runs one CUDA thread at a time and switches only inside
// __syncthreads and the shuffles, so a read-modify-write is atomic by construction.
template <typename T> static inline T atomicAdd(T *address, T val) {
    T old = *address;
    *address = old + val;
    return old;
}
template <typename T> static inline T atomicMax(T *address, T val) {
    T old = *address;
    if (val > old) *address = val;
    return old;
}
template <typename T> static inline T atomicMin(T *address, T val) {
    T old = *address;
    if (val < old) *address = val;
    return old;
}
template <typename T> static inline T atomicExch(T *address, T val) {
    T old = *address;
    *address = val;
    return old;
}
template <typename T> static inline T atomicCAS(T *address, T compare, T val) {
    T old = *address;
    if (old == compare) *address = val;
    return old;
}
#endif // __cplusplus

#endif // TMS_EMU_PRELUDE_H
