// emu_runtime.cpp: the emulated CUDA runtime and cuBLAS of tests/emu (test-only; never
// linked into the product). It implements the runtime and cuBLAS entry points the backend
// calls, with NVIDIA's headers for the types, and runs kernels on the CPU:
//
// Kernels. Every CUDA thread is a fiber (Boost.Context's fcontext: a switch costs a few
// nanoseconds, where ucontext's swapcontext makes a system call). Blocks run one after the
// other, each to completion; inside a block the scheduler runs one thread until it exits or
// waits in __syncthreads or a shuffle, in the order TMS_EMU_ORDER selects (forward, reverse,
// shuffle[:seed]; blocks in the same order). A warp's first thread that exits without ever
// waiting proves that no lane of that warp may wait (every __syncthreads and full-mask
// shuffle needs it), so the rest of that warp runs as plain calls on the scheduler's stack,
// and a wait there is reported as the error it is. Checked, each failing the launch
// (cudaErrorLaunchFailure, a message on stderr): threads of a block at different
// __syncthreads, a thread that exits while others wait or after passing fewer barriers,
// a shuffle whose mask is not the full warp or whose warp is partial or has exited lanes,
// and deadlocks. A pointer argument that is neither device nor pinned memory, or lies in
// freed memory, fails the launch with cudaErrorIllegalAddress.
//
// Streams. Work is queued and runs only when the host synchronises (stream/device
// synchronise, stream query, a synchronous copy, a copy to pageable memory, cudaFree):
// the most adversarial legal schedule. cudaMemcpyAsync from pageable host memory stages
// (snapshots) the source at the call; from pinned memory it reads it when the queue runs;
// device-to-pageable copies synchronise; device-to-pinned copies land when the queue runs.
//
// Capture. Between cudaStreamBeginCapture and EndCapture, work on the stream is recorded
// (arguments frozen by value); calls that the capture modes forbid (synchronising the
// capturing stream or the device, synchronous copies, cudaMalloc/cudaFree in the global and
// thread-local modes, the legacy stream) fail with cudaErrorStreamCaptureUnsupported or
// cudaErrorStreamCaptureImplicit and invalidate the capture (EndCapture then returns
// cudaErrorStreamCaptureInvalidated).
//
// Memory. Device and pinned memory are malloc'd (AddressSanitizer watches them) and
// registered with their ranges; copies, memsets, GEMM operands and kernel pointer arguments
// are checked against them.
#include "emu_prelude.h"

#undef warpSize // the built-in, not wanted here (cudaDeviceProp has a field of that name)

#include <boost/context/detail/fcontext.hpp>
#include <cublas_v2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <sys/mman.h>

// This file itself is built without instrumentation (it is the emulator, not the code under
// test, and it runs on every fiber switch); TMS_EMU_ASAN says the program around it has
// AddressSanitizer, which must be told about every switch of stacks.
#if defined(__SANITIZE_ADDRESS__) || defined(TMS_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

namespace bctx = boost::context::detail;

uint3 emu_threadIdx, emu_blockIdx;
dim3 emu_blockDim, emu_gridDim;

namespace emu {

// ----------------------------------------------------------------------------
// diagnostics

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tests/emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static cudaError_t last_error = cudaSuccess;   // cudaGetLastError's
static cudaError_t sticky_error = cudaSuccess; // a failed kernel or copy: every later sync returns it

static cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess && last_error == cudaSuccess) last_error = e;
    return e;
}

static void set_sticky(cudaError_t e) {
    if (sticky_error == cudaSuccess) sticky_error = e;
    set_error(e);
}

// ----------------------------------------------------------------------------
// memory

enum mem_kind { MEM_DEVICE, MEM_PINNED };

struct allocation {
    size_t size;
    mem_kind kind;
};

static std::map<uintptr_t, allocation> &allocations() {
    static std::map<uintptr_t, allocation> m;
    return m;
}
static size_t device_bytes_used = 0;
static const size_t DEVICE_BYTES_TOTAL = (size_t)16 << 30; // the emulated device's memory

// The allocation holding [p, p + bytes), or NULL. bytes = 0 asks only for p.
static const allocation *find_range(const void *p, size_t bytes, uintptr_t *base_out = nullptr) {
    if (!p) return nullptr;
    const uintptr_t a = (uintptr_t)p;
    auto &m = allocations();
    auto it = m.upper_bound(a);
    if (it == m.begin()) return nullptr;
    --it;
    const uintptr_t base = it->first;
    const size_t size = it->second.size;
    if (a >= base + (size ? size : 1)) return nullptr;
    if (bytes && (a - base) + bytes > size) return nullptr;
    if (base_out) *base_out = base;
    return &it->second;
}

static bool is_device(const void *p, size_t bytes) {
    const allocation *al = find_range(p, bytes);
    return al && al->kind == MEM_DEVICE;
}

static bool is_pinned(const void *p, size_t bytes) {
    const allocation *al = find_range(p, bytes);
    return al && al->kind == MEM_PINNED;
}

// ----------------------------------------------------------------------------
// order of blocks and threads

enum order_kind { ORDER_FORWARD, ORDER_REVERSE, ORDER_SHUFFLE };

struct order_config {
    order_kind kind = ORDER_FORWARD;
    std::mt19937_64 rng;
    bool read = false;
};

static order_config &order() {
    static order_config o;
    if (!o.read) {
        o.read = true;
        const char *s = getenv("TMS_EMU_ORDER");
        unsigned long long seed = 1;
        if (!s || !*s || !strcmp(s, "forward"))
            o.kind = ORDER_FORWARD;
        else if (!strcmp(s, "reverse"))
            o.kind = ORDER_REVERSE;
        else if (!strncmp(s, "shuffle", 7) && (s[7] == '\0' || s[7] == ':')) {
            o.kind = ORDER_SHUFFLE;
            if (s[7] == ':') seed = strtoull(s + 8, nullptr, 10);
        } else {
            say("TMS_EMU_ORDER is '%s'; allowed: forward, reverse, shuffle or shuffle:SEED", s);
            exit(2);
        }
        o.rng.seed(seed);
    }
    return o;
}

static void permute(std::vector<int> &v) {
    order_config &o = order();
    if (o.kind == ORDER_REVERSE)
        std::reverse(v.begin(), v.end());
    else if (o.kind == ORDER_SHUFFLE)
        std::shuffle(v.begin(), v.end(), o.rng);
}

// ----------------------------------------------------------------------------
// fibers

#if EMU_ASAN
static const size_t FIBER_STACK = 256 << 10;
#else
static const size_t FIBER_STACK = 64 << 10;
#endif

struct fiber {
    char *stack = nullptr; // (FIBER_STACK), lowest address
    bctx::fcontext_t ctx = nullptr;
    bool idle = true; // parked in fiber_main's loop, ready for a new thread
    void *fake_stack = nullptr;
};

enum thread_state { T_NEW, T_RUNNABLE, T_AT_BARRIER, T_AT_SHUFFLE, T_EXITED };

struct cuda_thread {
    uint3 tid;
    int state;
    int warp, lane;
    int barriers; // __syncthreads passed
    int waits;    // barriers and shuffles reached
    site_t site;  // the __syncthreads or shuffle it waits at
    int shfl_parity;
    fiber *f;
};

struct warp_state {
    int size; // threads in this warp (32 but for a partial last warp)
    int mode; // 0 undecided, 1 fibers, 2 direct (plain calls)
    int arrived, exited;
    int gen;
    uint64_t value[2][32];
};

struct emu_fault {}; // thrown by a primitive reached in a plain (direct) call

// The kernel being run.
struct block_run {
    const launch_site *site;
    const std::function<void()> *body;
    dim3 grid, block;
    uint3 bid;
    std::vector<cuda_thread> threads;
    std::vector<warp_state> warps;
    std::vector<int> runnable; // a queue: runnable[head..] (reused, no allocation per block)
    size_t head = 0;
    std::vector<int> released; // scratch of after_stop
    int arrived = 0, exited = 0, barrier_gen = 0;
    bool failed = false;
    std::string error;
    cuda_thread *cur = nullptr;
    bool direct = false; // cur runs as a plain call, not on a fiber
};

static block_run *run = nullptr;
static std::vector<fiber *> fiber_pool; // idle fibers
static std::vector<fiber *> fiber_all;
static bctx::fcontext_t sched_ctx = nullptr;
static fiber *cur_fiber = nullptr;
#if EMU_ASAN
static const void *main_stack_bottom = nullptr;
static size_t main_stack_size = 0;
#endif
static unsigned long long stats_threads = 0, stats_fiber_threads = 0, stats_switches = 0, stats_launches = 0;

static void fail_block(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_block(const char *fmt, ...) {
    if (run->failed) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    run->failed = true;
    run->error = buf;
}

static void set_builtins(const cuda_thread *t) {
    emu_threadIdx = t->tid;
    emu_blockIdx = run->bid;
    emu_blockDim = run->block;
    emu_gridDim = run->grid;
}

// fiber -> scheduler, and back when the scheduler resumes this fiber
static void yield_to_scheduler() {
    fiber *self = cur_fiber;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(&self->fake_stack, main_stack_bottom, main_stack_size);
#endif
    bctx::transfer_t t = bctx::jump_fcontext(sched_ctx, nullptr);
    sched_ctx = t.fctx;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(self->fake_stack, &main_stack_bottom, &main_stack_size);
#endif
    cur_fiber = self;
}

static void fiber_main(bctx::transfer_t t) {
    sched_ctx = t.fctx;
    fiber *self = (fiber *)t.data;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &main_stack_bottom, &main_stack_size);
#endif
    cur_fiber = self;
    for (;;) {
        cuda_thread *th = run->cur;
        (*run->body)();
        th->state = T_EXITED;
        self->idle = true;
        yield_to_scheduler();
    }
}

static void fiber_reset(fiber *f) {
#if EMU_ASAN
    __asan_unpoison_memory_region(f->stack, FIBER_STACK);
#endif
    f->ctx = bctx::make_fcontext(f->stack + FIBER_STACK, FIBER_STACK, fiber_main);
    f->idle = true;
    f->fake_stack = nullptr;
}

static fiber *fiber_get() {
    if (!fiber_pool.empty()) {
        fiber *f = fiber_pool.back();
        fiber_pool.pop_back();
        return f;
    }
    fiber *f = new fiber;
    void *mem = mmap(nullptr, FIBER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        say("out of memory for a fiber stack");
        abort();
    }
    f->stack = (char *)mem;
    fiber_reset(f);
    fiber_all.push_back(f);
    return f;
}

// scheduler -> the fiber of thread t, until it exits or waits
static void resume(cuda_thread *t) {
    run->cur = t;
    run->direct = false;
    set_builtins(t);
    fiber *f = t->f;
    f->idle = false;
    cur_fiber = f;
    stats_switches++;
#if EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f->stack, FIBER_STACK);
#endif
    bctx::transfer_t r = bctx::jump_fcontext(f->ctx, f);
    f->ctx = r.fctx;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    cur_fiber = nullptr;
    run->cur = nullptr;
}

static const char *order_name() {
    switch (order().kind) {
    case ORDER_REVERSE: return "reverse";
    case ORDER_SHUFFLE: return "shuffle";
    default: return "forward";
    }
}

static bool same_site(site_t a, site_t b) {
    return a.line == b.line && (a.file == b.file || (a.file && b.file && !strcmp(a.file, b.file)));
}

static void push_released(std::vector<int> &ids) {
    permute(ids);
    run->runnable.insert(run->runnable.end(), ids.begin(), ids.end());
}

// After thread t stopped (exited or waits): complete a barrier or a shuffle if it can.
static void after_stop(cuda_thread *t) {
    block_run &R = *run;
    warp_state &w = R.warps[t->warp];
    if (t->state == T_EXITED) {
        R.exited++;
        w.exited++;
        if (t->f) {
            fiber_pool.push_back(t->f);
            t->f = nullptr;
        }
        if (R.arrived > 0)
            fail_block("thread (%u,%u,%u) exited while %d thread(s) of its block wait at a __syncthreads",
                       t->tid.x, t->tid.y, t->tid.z, R.arrived);
        if (w.arrived > 0)
            fail_block("thread (%u,%u,%u) exited while %d lane(s) of its warp wait in a full-mask shuffle",
                       t->tid.x, t->tid.y, t->tid.z, w.arrived);
        // a waiting barrier may now be complete without it: that is the error above
        return;
    }
    if (t->state == T_AT_SHUFFLE) {
        if (w.exited > 0) {
            fail_block("thread (%u,%u,%u) shuffles with a full mask but %d lane(s) of its warp have exited",
                       t->tid.x, t->tid.y, t->tid.z, w.exited);
            return;
        }
        if (w.arrived == w.size) {
            std::vector<int> &ids = R.released;
            ids.clear();
            const int base = t->warp * 32;
            for (int l = 0; l < w.size; l++) {
                cuda_thread &o = R.threads[base + l];
                if (o.state != T_AT_SHUFFLE || !same_site(o.site, t->site)) {
                    fail_block("the lanes of warp %d meet at different shuffles (lane %d elsewhere)", t->warp,
                               l);
                    return;
                }
                o.state = T_RUNNABLE;
                ids.push_back(base + l);
            }
            w.arrived = 0;
            w.gen++;
            push_released(ids);
        }
        return;
    }
    if (t->state == T_AT_BARRIER) {
        const int live = (int)R.threads.size() - R.exited;
        if (R.exited > 0) {
            fail_block("thread (%u,%u,%u) reached __syncthreads after %d thread(s) of its block exited",
                       t->tid.x, t->tid.y, t->tid.z, R.exited);
            return;
        }
        if (R.arrived == live) {
            std::vector<int> &ids = R.released;
            ids.clear();
            for (size_t k = 0; k < R.threads.size(); k++) {
                cuda_thread &o = R.threads[k];
                if (o.state == T_EXITED) continue;
                if (!same_site(o.site, t->site)) {
                    fail_block(
                        "divergent __syncthreads: thread (%u,%u,%u) waits at %s:%d, thread (%u,%u,%u) at "
                        "%s:%d",
                        t->tid.x, t->tid.y, t->tid.z, t->site.file, t->site.line, o.tid.x, o.tid.y, o.tid.z,
                        o.site.file ? o.site.file : "(none)", o.site.line);
                    return;
                }
                o.state = T_RUNNABLE;
                o.barriers++;
                ids.push_back((int)k);
            }
            R.arrived = 0;
            R.barrier_gen++;
            push_released(ids);
        }
    }
}

static void run_direct(cuda_thread *t) {
    run->cur = t;
    run->direct = true;
    set_builtins(t);
    try {
        (*run->body)();
    } catch (emu_fault &) {
        // fail_block has the message
    }
    t->state = T_EXITED;
    run->cur = nullptr;
    run->direct = false;
}

static void run_one_block() {
    block_run &R = *run;
    const int nthreads = (int)(R.block.x * R.block.y * R.block.z);
    R.threads.resize(nthreads);
    const int nwarps = (nthreads + 31) / 32;
    R.warps.assign(nwarps, warp_state());
    for (int w = 0; w < nwarps; w++)
        R.warps[w].size = w == nwarps - 1 ? nthreads - 32 * w : 32;
    for (int k = 0; k < nthreads; k++) {
        cuda_thread &t = R.threads[k];
        t.tid = make_uint3(k % R.block.x, (k / R.block.x) % R.block.y, k / (R.block.x * R.block.y));
        t.state = T_NEW;
        t.warp = k / 32;
        t.lane = k % 32;
        t.barriers = t.waits = 0;
        t.site = site_t{nullptr, 0};
        t.shfl_parity = 0;
        t.f = nullptr;
    }
    R.arrived = R.exited = R.barrier_gen = 0;
    R.runnable.resize(nthreads);
    R.head = 0;
    for (int k = 0; k < nthreads; k++)
        R.runnable[k] = k;
    permute(R.runnable);

    while (R.head < R.runnable.size() && !R.failed) {
        const int id = R.runnable[R.head++];
        cuda_thread *t = &R.threads[id];
        warp_state &w = R.warps[t->warp];
        stats_threads += t->state == T_NEW;
        if (t->state == T_NEW && w.mode == 2) {
            run_direct(t);
            after_stop(t);
            continue;
        }
        if (t->state == T_NEW) {
            t->f = fiber_get();
            t->state = T_RUNNABLE;
            stats_fiber_threads++;
        }
        resume(t);
        if (w.mode == 0) w.mode = (t->state == T_EXITED && t->waits == 0) ? 2 : 1;
        after_stop(t);
    }
    if (!R.failed && R.exited != nthreads) {
        int at_barrier = 0, at_shuffle = 0;
        for (auto &t : R.threads) {
            at_barrier += t.state == T_AT_BARRIER;
            at_shuffle += t.state == T_AT_SHUFFLE;
        }
        fail_block("deadlock: %d thread(s) wait at __syncthreads and %d in shuffles, none can go on",
                   at_barrier, at_shuffle);
    }
    if (!R.failed) {
        const int b0 = R.threads[0].barriers;
        for (auto &t : R.threads)
            if (t.barriers != b0) {
                fail_block(
                    "threads (0,0,0) and (%u,%u,%u) passed %d and %d __syncthreads: every thread of a block "
                    "must reach every barrier",
                    t.tid.x, t.tid.y, t.tid.z, b0, t.barriers);
                break;
            }
    }
    if (R.failed) { // abandon the fibers still holding threads
        for (auto &t : R.threads)
            if (t.f) {
                fiber_reset(t.f);
                fiber_pool.push_back(t.f);
                t.f = nullptr;
            }
    }
}

void syncthreads(site_t site) {
    if (!run || !run->cur) {
        say("__syncthreads called outside a kernel");
        abort();
    }
    cuda_thread *t = run->cur;
    t->waits++;
    if (run->direct) {
        fail_block(
            "thread (%u,%u,%u) reached __syncthreads, but lane %d's first thread of warp %d exited without "
            "reaching it",
            t->tid.x, t->tid.y, t->tid.z, t->lane, t->warp);
        throw emu_fault();
    }
    t->state = T_AT_BARRIER;
    t->site = site;
    run->arrived++;
    yield_to_scheduler();
}

uint64_t shfl(unsigned mask, uint64_t value, int kind, int lane_arg, int width, site_t site) {
    if (!run || !run->cur) {
        say("a shuffle called outside a kernel");
        abort();
    }
    cuda_thread *t = run->cur;
    t->waits++;
    if (run->direct) {
        fail_block("thread (%u,%u,%u) shuffles, but another lane of warp %d exited without shuffling",
                   t->tid.x, t->tid.y, t->tid.z, t->warp);
        throw emu_fault();
    }
    if (mask != 0xffffffffu || width != 32) {
        fail_block("shuffle with mask 0x%08x width %d: the emulator supports the full warp only", mask,
                   width);
        t->state = T_AT_SHUFFLE;
        yield_to_scheduler();
        return value;
    }
    warp_state &w = run->warps[t->warp];
    const int parity = w.gen & 1;
    w.value[parity][t->lane] = value;
    t->state = T_AT_SHUFFLE;
    t->site = site;
    w.arrived++;
    if (w.size != 32) fail_block("warp %d has %d threads: a full-mask shuffle needs 32", t->warp, w.size);
    yield_to_scheduler();
    int src;
    switch (kind) {
    case SHFL_XOR: src = t->lane ^ lane_arg; break;
    case SHFL_DOWN: src = t->lane + lane_arg < 32 ? t->lane + lane_arg : t->lane; break;
    case SHFL_UP: src = t->lane - lane_arg >= 0 ? t->lane - lane_arg : t->lane; break;
    default: src = lane_arg & 31; break;
    }
    return w.value[parity][src & 31];
}

// ----------------------------------------------------------------------------
// streams and queued work

struct queued_op {
    std::string what;
    std::function<cudaError_t()> run; // returns an error that becomes sticky
};

} // namespace emu

struct CUstream_st {
    std::deque<emu::queued_op> queue;
    unsigned flags = 0;
    bool capturing = false;
    bool invalidated = false;
    cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
    std::vector<emu::queued_op> captured;
};

struct CUgraph_st {
    std::vector<emu::queued_op> nodes;
};

struct CUgraphExec_st {
    std::vector<emu::queued_op> nodes;
};

struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
    void *workspace = nullptr;
    size_t workspace_bytes = 0;
};

namespace emu {

static CUstream_st legacy_stream;
static std::vector<CUstream_st *> &streams() {
    static std::vector<CUstream_st *> s;
    return s;
}

static CUstream_st *stream_of(cudaStream_t s) {
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &legacy_stream;
    return s;
}

static bool valid_stream(cudaStream_t s) {
    CUstream_st *st = stream_of(s);
    if (st == &legacy_stream) return true;
    for (auto *x : streams())
        if (x == st) return true;
    return false;
}

// Is a capture that forbids unsafe calls active (this process has one thread of CUDA calls)?
static CUstream_st *strict_capture() {
    for (auto *x : streams())
        if (x->capturing && x->mode != cudaStreamCaptureModeRelaxed) return x;
    return nullptr;
}

static void invalidate_captures() {
    for (auto *x : streams())
        if (x->capturing) x->invalidated = true;
}

// A call the active capture forbids: fail it and invalidate the capture.
static cudaError_t capture_forbids(const char *call) {
    if (!strict_capture()) return cudaSuccess;
    say("%s during a stream capture (mode global/thread-local): cudaErrorStreamCaptureUnsupported; the "
        "capture is "
        "invalidated",
        call);
    invalidate_captures();
    return set_error(cudaErrorStreamCaptureUnsupported);
}

static cudaError_t run_queue(CUstream_st *st) {
    while (!st->queue.empty()) {
        queued_op op = std::move(st->queue.front());
        st->queue.pop_front();
        if (sticky_error != cudaSuccess) continue; // a failed context runs nothing more
        const cudaError_t e = op.run();
        if (e != cudaSuccess) {
            say("queued %s failed: %s", op.what.c_str(), cudaGetErrorName(e));
            set_sticky(e);
        }
    }
    return sticky_error;
}

static cudaError_t run_all() {
    run_queue(&legacy_stream);
    for (auto *x : streams())
        run_queue(x);
    return sticky_error;
}

// the legacy stream's implicit synchronisation: it waits for the blocking streams
static cudaError_t run_legacy() {
    for (auto *x : streams())
        if (!(x->flags & cudaStreamNonBlocking)) run_queue(x);
    return run_queue(&legacy_stream);
}

static cudaError_t enqueue(cudaStream_t s, queued_op op) {
    if (!valid_stream(s)) return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *st = stream_of(s);
    if (st == &legacy_stream && strict_capture()) {
        say("%s on the legacy stream during a capture: cudaErrorStreamCaptureImplicit", op.what.c_str());
        invalidate_captures();
        return set_error(cudaErrorStreamCaptureImplicit);
    }
    if (st->capturing) {
        if (st->invalidated) return set_error(cudaErrorStreamCaptureInvalidated);
        st->captured.push_back(std::move(op));
        return cudaSuccess;
    }
    if (sticky_error != cudaSuccess) return sticky_error;
    st->queue.push_back(std::move(op));
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// launches

static void run_kernel(const launch_site &site, dim3 grid, dim3 block, const std::function<void()> &body,
                       cudaError_t *err) {
    const unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
    std::vector<unsigned long long> ids(nblocks);
    for (unsigned long long b = 0; b < nblocks; b++)
        ids[b] = b;
    order_config &o = order();
    if (o.kind == ORDER_REVERSE)
        std::reverse(ids.begin(), ids.end());
    else if (o.kind == ORDER_SHUFFLE)
        std::shuffle(ids.begin(), ids.end(), o.rng);
    static block_run R; // reused: its vectors keep their capacity (kernels launch no kernels)
    R.failed = false;
    R.error.clear();
    R.site = &site;
    R.body = &body;
    R.grid = grid;
    R.block = block;
    block_run *saved = run;
    run = &R;
    stats_launches++;
    for (unsigned long long b : ids) {
        R.bid = make_uint3((unsigned)(b % grid.x), (unsigned)((b / grid.x) % grid.y),
                           (unsigned)(b / ((unsigned long long)grid.x * grid.y)));
        run_one_block();
        if (R.failed) {
            say("ERROR in kernel %s (launched at %s:%d) <<<(%u,%u,%u), (%u,%u,%u)>>> block (%u,%u,%u), order "
                "%s: %s",
                site.kernel, site.file, site.line, grid.x, grid.y, grid.z, block.x, block.y, block.z, R.bid.x,
                R.bid.y, R.bid.z, order_name(), R.error.c_str());
            *err = cudaErrorLaunchFailure;
            break;
        }
    }
    run = saved;
}

cudaError_t enqueue_launch(const launch_site &site, const void *kernel, dim3 grid, dim3 block, size_t shmem,
                           cudaStream_t stream, std::function<void()> body,
                           std::vector<pointer_arg> pointers) {
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (!kernel || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 ||
        grid.z > 65535 || threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 ||
        block.z > 64 || shmem > 48 * 1024) {
        say("launch of %s at %s:%d: invalid configuration <<<(%u,%u,%u), (%u,%u,%u), %zu>>>: "
            "cudaErrorInvalidConfiguration",
            site.kernel, site.file, site.line, grid.x, grid.y, grid.z, block.x, block.y, block.z, shmem);
        return set_error(cudaErrorInvalidConfiguration);
    }
    auto body_p = std::make_shared<std::function<void()>>(std::move(body));
    queued_op op;
    op.what = std::string("kernel ") + site.kernel;
    op.run = [site, grid, block, body_p, pointers]() -> cudaError_t {
        for (const pointer_arg &p : pointers) {
            if (!p.ptr) continue;
            const allocation *al = find_range(p.ptr, 0);
            if (!al) {
                say("ERROR in kernel %s (launched at %s:%d): argument %d = %p is not device memory (a host "
                    "pointer, "
                    "or freed): cudaErrorIllegalAddress",
                    site.kernel, site.file, site.line, p.index + 1, p.ptr);
                return cudaErrorIllegalAddress;
            }
        }
        cudaError_t err = cudaSuccess;
        run_kernel(site, grid, block, *body_p, &err);
        return err;
    };
    return set_error(enqueue(stream, std::move(op)));
}

// ----------------------------------------------------------------------------
// statistics at exit (TMS_EMU_STATS=1)

struct stats_printer {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    ~stats_printer() {
        const char *s = getenv("TMS_EMU_STATS");
        if (!s || strcmp(s, "1")) return;
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double cpu = (double)clock() / CLOCKS_PER_SEC; // the whole process, the CPU reference too
        fprintf(stderr,
                "tests/emu: %llu launches, %llu CUDA threads (%llu on fibers, %llu fiber switches); process: "
                "%.2f s CPU, %.2f s wall; %.3g CUDA threads per CPU second; order %s\n",
                stats_launches, stats_threads, stats_fiber_threads, stats_switches, cpu, wall,
                stats_threads / (cpu > 0 ? cpu : 1), order_name());
    }
};
static stats_printer printer;

// the fiber stacks go at exit (LeakSanitizer checks the rest)
struct fiber_reaper {
    ~fiber_reaper() {
        for (fiber *f : fiber_all) {
            munmap(f->stack, FIBER_STACK);
            delete f;
        }
        fiber_all.clear();
        fiber_pool.clear();
    }
};
static fiber_reaper reaper;

// ----------------------------------------------------------------------------
// GEMM

static float tf32(float x) {
    // TF32 keeps 10 mantissa bits: round to nearest (ties away), as the tensor cores' conversion
    if (!std::isfinite(x)) return x;
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x1000u) & 0xFFFFE000u;
    memcpy(&x, &u, 4);
    return x;
}

} // namespace emu

using namespace emu;

// ----------------------------------------------------------------------------
// the runtime API

extern "C" {

cudaError_t cudaGetLastError(void) {
    const cudaError_t e = last_error;
    last_error = sticky_error;
    return e;
}

cudaError_t cudaPeekAtLastError(void) {
    return last_error;
}

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define NAME(x)                                                                                              \
    case x: return #x;
        NAME(cudaSuccess)
        NAME(cudaErrorInvalidValue) NAME(cudaErrorMemoryAllocation) NAME(cudaErrorInitializationError)
            NAME(cudaErrorInvalidConfiguration) NAME(cudaErrorInvalidDevice)
                NAME(cudaErrorInvalidResourceHandle) NAME(cudaErrorNotReady) NAME(cudaErrorIllegalAddress)
                    NAME(cudaErrorLaunchFailure) NAME(cudaErrorNoDevice) NAME(cudaErrorInvalidDeviceFunction)
                        NAME(cudaErrorStreamCaptureUnsupported) NAME(cudaErrorStreamCaptureInvalidated)
                            NAME(cudaErrorStreamCaptureImplicit) NAME(cudaErrorStreamCaptureUnmatched)
                                NAME(cudaErrorIllegalState) NAME(cudaErrorNotSupported)
#undef NAME
                                    default : return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure (tests/emu: see its message above)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return "an error of the emulated CUDA runtime (tests/emu)";
    }
}

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return set_error(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    if (!device) return set_error(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (!prop) return set_error(cudaErrorInvalidValue);
    if (device != 0) return set_error(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof(*prop));
    snprintf(prop->name, sizeof(prop->name), "emulated CUDA (tests/emu)");
    prop->totalGlobalMem = DEVICE_BYTES_TOTAL;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    prop->unifiedAddressing = 1;
    return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
    if (!attr || !func) return set_error(cudaErrorInvalidDeviceFunction);
    memset(attr, 0, sizeof(*attr));
    attr->maxThreadsPerBlock = 1024;
    attr->ptxVersion = attr->binaryVersion = 90;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    if (!free_bytes || !total) return set_error(cudaErrorInvalidValue);
    *total = DEVICE_BYTES_TOTAL;
    *free_bytes = DEVICE_BYTES_TOTAL - device_bytes_used;
    return cudaSuccess;
}

static cudaError_t alloc_impl(void **p, size_t size, mem_kind kind, const char *call) {
    if (!p) return set_error(cudaErrorInvalidValue);
    *p = nullptr;
    const cudaError_t c = capture_forbids(call);
    if (c != cudaSuccess) return c;
    if (kind == MEM_DEVICE && size > DEVICE_BYTES_TOTAL - device_bytes_used)
        return set_error(cudaErrorMemoryAllocation);
    // malloc, so that AddressSanitizer sees every access out of the allocation
    void *mem = malloc(size ? size : 1);
    if (!mem) return set_error(cudaErrorMemoryAllocation);
    // not zero, so an element nobody wrote shows (skipped for the cuBLAS workspace and the like:
    // touching 32 MiB per backend costs more than the tests' whole problems)
    if (kind == MEM_DEVICE && size <= ((size_t)16 << 20)) memset(mem, 0xA5, size);
    allocations()[(uintptr_t)mem] = allocation{size, kind};
    if (kind == MEM_DEVICE) device_bytes_used += size;
    *p = mem;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t size) {
    return alloc_impl(p, size, MEM_DEVICE, "cudaMalloc");
}

cudaError_t cudaMallocHost(void **p, size_t size) {
    return alloc_impl(p, size, MEM_PINNED, "cudaMallocHost");
}

cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int) {
    return alloc_impl(p, size, MEM_PINNED, "cudaHostAlloc");
}

static cudaError_t free_impl(void *p, mem_kind kind, const char *call) {
    if (!p) return cudaSuccess;
    const cudaError_t c = capture_forbids(call);
    if (c != cudaSuccess) return c;
    run_all(); // cudaFree synchronises: queued work may still use the memory
    auto &m = allocations();
    auto it = m.find((uintptr_t)p);
    if (it == m.end() || it->second.kind != kind) {
        say("%s(%p): not the start of a %s allocation: cudaErrorInvalidValue", call, p,
            kind == MEM_DEVICE ? "device" : "pinned host");
        return set_error(cudaErrorInvalidValue);
    }
    if (kind == MEM_DEVICE) device_bytes_used -= it->second.size;
    m.erase(it);
    free(p);
    return sticky_error;
}

cudaError_t cudaFree(void *p) {
    return free_impl(p, MEM_DEVICE, "cudaFree");
}

cudaError_t cudaFreeHost(void *p) {
    return free_impl(p, MEM_PINNED, "cudaFreeHost");
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    if (!s) return set_error(cudaErrorInvalidValue);
    CUstream_st *st = new CUstream_st;
    st->flags = flags;
    streams().push_back(st);
    *s = st;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) {
    return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s || !valid_stream(s) || stream_of(s) == &legacy_stream)
        return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *st = stream_of(s);
    if (st->capturing) {
        say("cudaStreamDestroy of a capturing stream");
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    run_queue(st); // queued work completes before the stream's resources go
    auto &v = streams();
    v.erase(std::find(v.begin(), v.end(), st));
    delete st;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (!valid_stream(s)) return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *st = stream_of(s);
    if (st->capturing) {
        say("cudaStreamSynchronize of the capturing stream: cudaErrorStreamCaptureUnsupported; the capture "
            "is "
            "invalidated");
        invalidate_captures();
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    if (st == &legacy_stream) {
        const cudaError_t c = capture_forbids("cudaStreamSynchronize(legacy stream)");
        if (c != cudaSuccess) return c;
        return run_legacy();
    }
    return run_queue(st);
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
    if (!valid_stream(s)) return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *st = stream_of(s);
    if (st->capturing) {
        say("cudaStreamQuery of the capturing stream: cudaErrorStreamCaptureUnsupported");
        invalidate_captures();
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    return st == &legacy_stream ? run_legacy() : run_queue(st);
}

cudaError_t cudaDeviceSynchronize(void) {
    const cudaError_t c = capture_forbids("cudaDeviceSynchronize");
    if (c != cudaSuccess) return c;
    return run_all();
}

// Is [p, p + bytes) where the direction says it is? Prints why not.
static bool check_side(const char *call, const char *which, const void *p, size_t bytes, bool device) {
    if (device) {
        if (is_device(p, bytes)) return true;
        const allocation *al = find_range(p, 0);
        say("%s: the %s %p (%zu bytes) is %s: cudaErrorInvalidValue", call, which, p, bytes,
            al && al->kind == MEM_DEVICE ? "a device pointer whose range runs past its allocation"
                                         : "not device memory");
        return false;
    }
    if (find_range(p, 0) && !is_pinned(p, 0)) {
        say("%s: the %s %p is device memory, but the direction says host: cudaErrorInvalidValue", call, which,
            p);
        return false;
    }
    if (is_pinned(p, 0) && !is_pinned(p, bytes)) {
        say("%s: the %s %p (%zu bytes) runs past its pinned allocation: cudaErrorInvalidValue", call, which,
            p, bytes);
        return false;
    }
    return true;
}

static cudaError_t memcpy_impl(void *dst, const void *src, size_t count, cudaMemcpyKind kind,
                               cudaStream_t stream, bool async, const char *call) {
    if (count == 0) return cudaSuccess;
    if (!dst || !src) return set_error(cudaErrorInvalidValue);
    if (kind == cudaMemcpyDefault) {
        const bool dd = find_range(dst, 0) && !is_pinned(dst, 0),
                   sd = find_range(src, 0) && !is_pinned(src, 0);
        kind = dd ? (sd ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                  : (sd ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    }
    const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (!check_side(call, "destination", dst, count, dst_dev) ||
        !check_side(call, "source", src, count, src_dev))
        return set_error(cudaErrorInvalidValue);
    if (!async) {
        const cudaError_t c = capture_forbids(call);
        if (c != cudaSuccess) return c;
        run_legacy();
        if (sticky_error != cudaSuccess) return sticky_error;
        memcpy(dst, src, count);
        return cudaSuccess;
    }
    queued_op op;
    op.what = call;
    if (!src_dev && !is_pinned(src, count)) {
        // pageable source: the driver stages it at the call, so later host writes do not reach the copy
        auto staged = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + count);
        op.run = [dst, staged, count]() -> cudaError_t {
            if (!find_range(dst, count)) return cudaErrorIllegalAddress;
            memcpy(dst, staged->data(), count);
            return cudaSuccess;
        };
    } else {
        op.run = [dst, src, count, src_dev, dst_dev]() -> cudaError_t {
            if ((dst_dev && !is_device(dst, count)) || (src_dev && !is_device(src, count)))
                return cudaErrorIllegalAddress; // freed while queued
            memcpy(dst, src, count);
            return cudaSuccess;
        };
    }
    const bool to_pageable = !dst_dev && !is_pinned(dst, count);
    CUstream_st *st = stream_of(stream);
    if (to_pageable && st->capturing) {
        say("%s to pageable host memory during a capture (it would synchronise): "
            "cudaErrorStreamCaptureUnsupported",
            call);
        invalidate_captures();
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    const cudaError_t e = enqueue(stream, std::move(op));
    if (e != cudaSuccess) return e;
    if (to_pageable) // a copy to pageable memory returns once it is done
        return st == &legacy_stream ? run_legacy() : run_queue(st);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind) {
    return memcpy_impl(dst, src, count, kind, nullptr, false, "cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    return memcpy_impl(dst, src, count, kind, stream, true, "cudaMemcpyAsync");
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t count, cudaStream_t stream) {
    if (count == 0) return cudaSuccess;
    if (!check_side("cudaMemsetAsync", "destination", p, count, true))
        return set_error(cudaErrorInvalidValue);
    queued_op op;
    op.what = "cudaMemsetAsync";
    op.run = [p, value, count]() -> cudaError_t {
        if (!is_device(p, count)) return cudaErrorIllegalAddress;
        memset(p, value, count);
        return cudaSuccess;
    };
    return set_error(enqueue(stream, std::move(op)));
}

cudaError_t cudaMemset(void *p, int value, size_t count) {
    const cudaError_t c = capture_forbids("cudaMemset");
    if (c != cudaSuccess) return c;
    const cudaError_t e = cudaMemsetAsync(p, value, count, nullptr);
    if (e != cudaSuccess) return e;
    return run_legacy();
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
    if (!valid_stream(s)) return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *st = stream_of(s);
    if (st == &legacy_stream || st->capturing) return set_error(cudaErrorStreamCaptureUnsupported);
    st->capturing = true;
    st->invalidated = false;
    st->mode = mode;
    st->captured.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    if (!valid_stream(s) || !graph) return set_error(cudaErrorInvalidValue);
    CUstream_st *st = stream_of(s);
    *graph = nullptr;
    if (!st->capturing) return set_error(cudaErrorIllegalState);
    st->capturing = false;
    if (st->invalidated) {
        st->captured.clear();
        return set_error(cudaErrorStreamCaptureInvalidated);
    }
    CUgraph_st *g = new CUgraph_st;
    g->nodes = std::move(st->captured);
    st->captured.clear();
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status) {
    if (!valid_stream(s) || !status) return set_error(cudaErrorInvalidValue);
    CUstream_st *st = stream_of(s);
    *status = !st->capturing    ? cudaStreamCaptureStatusNone
              : st->invalidated ? cudaStreamCaptureStatusInvalidated
                                : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    if (!exec || !graph) return set_error(cudaErrorInvalidValue);
    CUgraphExec_st *x = new CUgraphExec_st;
    x->nodes = graph->nodes;
    *exec = x;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (!exec) return set_error(cudaErrorInvalidValue);
    for (const queued_op &n : exec->nodes) {
        const cudaError_t e = enqueue(stream, n);
        if (e != cudaSuccess) return set_error(e);
    }
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    if (!graph) return set_error(cudaErrorInvalidValue);
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    if (!exec) return set_error(cudaErrorInvalidValue);
    delete exec;
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// cuBLAS

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_stream(stream)) return CUBLAS_STATUS_INVALID_VALUE;
    handle->stream = stream;
    // as documented: setting a stream resets the user workspace to cuBLAS's own pool
    handle->workspace = nullptr;
    handle->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t bytes) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !is_device(workspace, bytes)) {
        say("cublasSetWorkspace: %p (%zu bytes) is not a device allocation of that size", workspace, bytes);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    handle->workspace = workspace;
    handle->workspace_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
#define NAME(x)                                                                                              \
    case x: return #x;
        NAME(CUBLAS_STATUS_SUCCESS)
        NAME(CUBLAS_STATUS_NOT_INITIALIZED) NAME(CUBLAS_STATUS_ALLOC_FAILED) NAME(CUBLAS_STATUS_INVALID_VALUE)
            NAME(CUBLAS_STATUS_ARCH_MISMATCH) NAME(CUBLAS_STATUS_MAPPING_ERROR)
                NAME(CUBLAS_STATUS_EXECUTION_FAILED) NAME(CUBLAS_STATUS_INTERNAL_ERROR)
                    NAME(CUBLAS_STATUS_NOT_SUPPORTED) NAME(CUBLAS_STATUS_LICENSE_ERROR)
#undef NAME
                        default : return "CUBLAS_STATUS_UNKNOWN";
    }
}

const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "the GPU program failed to execute (tests/emu: see its message)";
    default: return "an error of the emulated cuBLAS (tests/emu)";
    }
}

// Operand X (rows x cols of a column-major matrix with leading dimension ld) of every batch
// lies inside one device allocation.
static bool operand_in_bounds(const char *name, const float *X, int rows, int cols, int ld, long long stride,
                              int batch) {
    if (rows == 0 || cols == 0 || batch == 0) return true;
    const size_t extent = ((size_t)(cols - 1) * (size_t)ld + (size_t)rows) * sizeof(float);
    for (int b = 0; b < batch; b++) {
        const float *p = X + (long long)b * stride;
        if (!is_device(p, extent)) {
            const allocation *al = find_range(X, 0);
            say("cublasSgemmStridedBatched: operand %s of batch %d (%p, %d x %d, ld %d, %zu bytes, stride "
                "%lld "
                "floats) is %s: CUBLAS_STATUS_EXECUTION_FAILED",
                name, b, (const void *)p, rows, cols, ld, extent, stride,
                al ? "outside its device allocation" : "not device memory");
            return false;
        }
    }
    return true;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k, const float *alpha,
                                         const float *A, int lda, long long int strideA, const float *B,
                                         int ldb, long long int strideB, const float *beta, float *C, int ldc,
                                         long long int strideC, int batchCount) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    const auto op_ok = [](cublasOperation_t o) {
        return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C;
    };
    // the documented checks (cuBLAS manual, cublas<t>gemmStridedBatched: m, n, k, batchCount < 0;
    // lda < max(1, m) for op N else max(1, k); ldb < max(1, k) for op N else max(1, n); ldc < max(1, m))
    if (!op_ok(transa) || !op_ok(transb) || m < 0 || n < 0 || k < 0 || batchCount < 0 ||
        lda < std::max(1, transa == CUBLAS_OP_N ? m : k) ||
        ldb < std::max(1, transb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m) || !alpha || !beta) {
        say("cublasSgemmStridedBatched(op %d %d, m %d n %d k %d, lda %d ldb %d ldc %d, batch %d): "
            "CUBLAS_STATUS_INVALID_VALUE",
            (int)transa, (int)transb, m, n, k, lda, ldb, ldc, batchCount);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
    const float a = *alpha, b = *beta; // host pointer mode: read at the call
    const bool reads_ab = k > 0 && a != 0.0f;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    if (reads_ab && (!operand_in_bounds("A", A, ta ? k : m, ta ? m : k, lda, strideA, batchCount) ||
                     !operand_in_bounds("B", B, tb ? n : k, tb ? k : n, ldb, strideB, batchCount)))
        return CUBLAS_STATUS_EXECUTION_FAILED;
    if (!operand_in_bounds("C", C, m, n, ldc, strideC, batchCount)) return CUBLAS_STATUS_EXECUTION_FAILED;
    const bool round_tf32 = handle->math == CUBLAS_TF32_TENSOR_OP_MATH;
    queued_op op;
    op.what = "cublasSgemmStridedBatched";
    op.run = [=]() -> cudaError_t {
        // re-checked when it runs: an operand freed in between is an illegal access
        if ((reads_ab && (!operand_in_bounds("A", A, ta ? k : m, ta ? m : k, lda, strideA, batchCount) ||
                          !operand_in_bounds("B", B, tb ? n : k, tb ? k : n, ldb, strideB, batchCount))) ||
            !operand_in_bounds("C", C, m, n, ldc, strideC, batchCount))
            return cudaErrorIllegalAddress;
        for (int bt = 0; bt < batchCount; bt++) {
            const float *Ab = A + (long long)bt * strideA, *Bb = B + (long long)bt * strideB;
            float *Cb = C + (long long)bt * strideC;
            // op(A)(i, l) = Ab[i * ai + l * al], op(B)(l, j) = Bb[l * bl + j * bj]
            const size_t ai = ta ? (size_t)lda : 1, al = ta ? 1 : (size_t)lda;
            const size_t bl = tb ? (size_t)ldb : 1, bj = tb ? 1 : (size_t)ldb;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) {
                    float sum = 0.0f;
                    const float *ap = Ab + i * ai, *bp = Bb + j * bj;
                    if (reads_ab && round_tf32)
                        for (int l = 0; l < k; l++)
                            sum += tf32(ap[l * al]) * tf32(bp[l * bl]);
                    else if (reads_ab)
                        for (int l = 0; l < k; l++)
                            sum += ap[l * al] * bp[l * bl];
                    float &c = Cb[i + (size_t)j * ldc];
                    // beta = 0: C is not read (it may hold NaN), as documented
                    c = b == 0.0f ? a * sum : a * sum + b * c;
                }
        }
        return cudaSuccess;
    };
    const cudaError_t e = enqueue(handle->stream, std::move(op));
    if (e != cudaSuccess) {
        say("cublasSgemmStridedBatched: could not enqueue: %s", cudaGetErrorName(e));
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
