// tms_math.h: the formulas both backends share, written once.
// Every function here is `static inline` and compiles as C (the CPU backend) and
// as CUDA (the kernels), so the two backends cannot drift apart:
//   - Philox4x32-10 and the uniform draw, exactly as cuRAND's device API computes them
//     (curand_init(seed, subsequence, offset) + curand_uniform; see
//     /usr/local/cuda/include/curand_philox4x32_x.h and curand_kernel.h);
//   - the sparse feature draw (one uniform per element);
//   - the Adam / AdamW update of one element;
//   - the learning-rate schedule.
#ifndef TMS_MATH_H
#define TMS_MATH_H

#include <stdint.h>
#include <math.h>

#ifdef __CUDACC__
#define TMS_HD __host__ __device__
#else
#define TMS_HD
#endif

// ----------------------------------------------------------------------------
// Philox4x32-10 (Salmon et al. 2011), the round function as cuRAND writes it.

#define TMS_PHILOX_W0 0x9E3779B9u
#define TMS_PHILOX_W1 0xBB67AE85u
#define TMS_PHILOX_M0 0xD2511F53u
#define TMS_PHILOX_M1 0xCD9E8D57u

typedef struct { uint32_t v[4]; } tms_u32x4;

static inline TMS_HD tms_u32x4 tms_philox4x32_10(tms_u32x4 ctr, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += TMS_PHILOX_W0; k1 += TMS_PHILOX_W1; }
        uint64_t p0 = (uint64_t)TMS_PHILOX_M0 * ctr.v[0];
        uint64_t p1 = (uint64_t)TMS_PHILOX_M1 * ctr.v[2];
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        tms_u32x4 next;
        next.v[0] = hi1 ^ ctr.v[1] ^ k0;
        next.v[1] = lo1;
        next.v[2] = hi0 ^ ctr.v[3] ^ k1;
        next.v[3] = lo0;
        ctr = next;
    }
    return ctr;
}

// The block of four 32-bit outputs that curand_init(seed, subsequence, 4*block) puts
// in its state: skipahead_sequence adds `subsequence` to counter words 2..3 and
// skipahead adds `block` to words 0..1 (with carry into word 2; block < 2^64 so
// never in practice for us). The seed is the key, low word first.
static inline TMS_HD tms_u32x4 tms_philox_block(uint64_t seed, uint64_t subsequence, uint64_t block) {
    tms_u32x4 ctr;
    ctr.v[0] = (uint32_t)block;
    ctr.v[1] = (uint32_t)(block >> 32);
    ctr.v[2] = (uint32_t)subsequence;
    ctr.v[3] = (uint32_t)(subsequence >> 32);
    return tms_philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
}

// curand_uniform: x * 2^-32 + 2^-33, in float. The product is exact (a power of two),
// so a fused multiply-add on the device and two roundings on the host agree.
// Range (0, 1]: 1.0f occurs when x rounds up to 2^32.
// (float)x is formed as hi * 65536 + lo from two exact 16-bit halves: one rounding
// of the exact x, so bit-identical to the direct conversion, and vectorisable on
// SSE2, which has no unsigned-to-float instruction.
static inline TMS_HD float tms_uniform_from_u32(uint32_t x) {
    float xf = (float)(int32_t)(x >> 16) * 65536.0f + (float)(int32_t)(x & 0xffffu);
    return xf * 2.3283064e-10f + (2.3283064e-10f / 2.0f);
}

// ----------------------------------------------------------------------------
// The sparse feature draw. Element e of the batch of step `step` for an instance with
// Philox key `seed` uses the uniform curand_init(seed, step, e) + curand_uniform
// would return: lane e % 4 of block e / 4 in subsequence `step`.
// One uniform per element: the feature is active when u <= density, and its value
// u / density is then uniform on (0, 1]. Inactive features are 0.

static inline TMS_HD float tms_sparse_value(float u, float density) {
    float value = u / density; // computed either way: a select, not a branch
    return u <= density ? value : 0.0f;
}

// Subsequences above this are reserved for draws that are not training batches, so
// they never collide with a step number.
#define TMS_SUBSEQ_INIT ((uint64_t)1 << 62)        // parameter initialisation
#define TMS_SUBSEQ_EVAL (((uint64_t)1 << 62) + 1)  // the final evaluation batch

// ----------------------------------------------------------------------------
// The activation and the loss gradient, as macros so the float and double CPU paths
// and the kernels share one spelling (and so one rounding and one choice at 0).
//   TMS_RELU_IF(on, v): ReLU when `on`, identity otherwise; written v < 0 ? 0 : v, not fmax.
//   TMS_MSE_GRAD(c, out, x, y, out_relu): d/dy of (c/2) (x - out)^2 with out = act(y),
//     c = 2 * scale * I_i; the ReLU passes the gradient only where y > 0.

#define TMS_RELU_IF(on, v) (((on) && (v) < 0) ? 0 : (v))
#define TMS_MSE_GRAD(c, out, x, y, out_relu) (((out_relu) && !((y) > 0)) ? 0 : (c) * ((out) - (x)))

// ----------------------------------------------------------------------------
// Adam and AdamW for one element (torch.optim semantics, which the notebook uses).
//   adamw: p -= lr * wd * p   (decoupled, before the Adam step)
//   adam:  g += wd * p        (L2 folded into the gradient, as torch.optim.Adam)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// t counts from 1. bias1 = 1 - b1^t and bias2 = 1 - b2^t are computed once per step
// by the caller (in double, then rounded), so every backend uses the same numbers.

enum { TMS_OPT_ADAMW = 0, TMS_OPT_ADAM = 1 };

typedef struct {
    float lr;        // this step's learning rate (schedule applied)
    float beta1, beta2, eps;
    float weight_decay;
    float bias1, bias2; // 1 - beta^t
    int kind;           // TMS_OPT_ADAMW or TMS_OPT_ADAM
} tms_adam_step_t;

static inline TMS_HD void tms_adam_update(float *p, float *m, float *v, float g, const tms_adam_step_t *s) {
    float param = *p;
    if (s->kind == TMS_OPT_ADAMW) {
        param -= s->lr * s->weight_decay * param;
    } else {
        g += s->weight_decay * param;
    }
    float mt = s->beta1 * *m + (1.0f - s->beta1) * g;
    float vt = s->beta2 * *v + (1.0f - s->beta2) * g * g;
    float mhat = mt / s->bias1;
    float vhat = vt / s->bias2;
    param -= s->lr * mhat / (sqrtf(vhat) + s->eps);
    *m = mt;
    *v = vt;
    *p = param;
}

// ----------------------------------------------------------------------------
// Learning-rate multiplier at step t (0-based) of T, after `warmup` warm-up steps.
// Warm-up is linear from lr/warmup to lr. After it, with s = t - warmup and
// S = T - warmup steps left:
//   constant: 1;  linear: 1 - s/S;  cosine: cos(pi/2 * s/(S-1))  (REFERENCE.md).

enum { TMS_SCHED_CONSTANT = 0, TMS_SCHED_LINEAR = 1, TMS_SCHED_COSINE = 2 };

static inline double tms_lr_factor(int schedule, long t, long T, long warmup) {
    if (t < warmup) return (double)(t + 1) / (double)warmup;
    double s = (double)(t - warmup);
    double S = (double)(T - warmup);
    switch (schedule) {
    case TMS_SCHED_LINEAR: return 1.0 - s / S;
    case TMS_SCHED_COSINE: return S > 1.0 ? cos(1.5707963267948966 * s / (S - 1.0)) : 1.0;
    default: return 1.0;
    }
}

// ----------------------------------------------------------------------------
// splitmix64 (Steele et al. 2014): turns a user seed and a replicate index into a
// well-mixed 64-bit Philox key.

static inline TMS_HD uint64_t tms_splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline TMS_HD uint64_t tms_instance_key(uint64_t seed, uint64_t replicate) {
    return tms_splitmix64(tms_splitmix64(seed) + replicate);
}

#endif // TMS_MATH_H
