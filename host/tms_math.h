// tms_math.h: the formulas both backends share, written once.
// Every function here is `static inline` and compiles as C (the CPU backend) and
// as CUDA (the kernels), so the two backends cannot drift apart:
//   - Philox4x32-10 and the uniform draw, exactly as cuRAND's device API computes them
//     (curand_init(seed, subsequence, offset) + curand_uniform; see
//     /usr/local/cuda/include/curand_philox4x32_x.h and curand_kernel.h);
//   - the feature draw: independent or in (anti)correlated sets, and the task's target;
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
// The feature draw. Element e = row * n + i of the batch of step `step` for an instance
// with Philox key `seed` uses the uniform u_e that curand_init(seed, step, e) +
// curand_uniform would return: lane e % 4 of block e / 4 in subsequence `step`.
//
// Independent features (the default): one uniform per element. The feature is active
// when u <= density, and its magnitude u / density is then uniform on (0, 1].
// Inactive features are 0.
//
// Feature sets (data.feature_sets): features i = g * k + j, j < k, form set g of size k
// (consecutive features; n = G * k). Each (row, set) has a second uniform v, element
// s = row * G + g of subsequence step + TMS_SUBSEQ_SETS (the same curand_init mapping),
// which decides which features of the set are active; an active feature's magnitude is
// its own u_e, uniform on (0, 1]. Every feature is active with probability `density`:
//   correlated:     the whole set is active when v <= density (features co-occur);
//   anticorrelated: feature j is active when j < v / density <= j + 1, so at most one
//                   feature of a set is active, the set with probability k * density
//                   (the spec requires k * density <= 1).
//
// The task (data.task) maps a magnitude a in (0, 1] to the input value:
//   sparse: x = a, the target is x itself;
//   abs:    x = 2a - 1, uniform on (-1, 1], the target is |x| (the paper's computation
//           of |x|). 2a is exact, so 2a - 1 rounds once with or without an FMA.

enum { TMS_TASK_SPARSE = 0, TMS_TASK_ABS = 1 };
enum { TMS_SETS_NONE = 0, TMS_SETS_CORRELATED = 1, TMS_SETS_ANTICORRELATED = 2 };

static inline TMS_HD float tms_sparse_value(float u, float density) {
    float value = u / density; // computed either way: a select, not a branch
    return u <= density ? value : 0.0f;
}

static inline TMS_HD float tms_task_value(float magnitude, int task) {
    return task == TMS_TASK_ABS ? 2.0f * magnitude - 1.0f : magnitude;
}

// The value the model is trained to output for input value x.
static inline TMS_HD float tms_target_value(float x, int task) {
    return task == TMS_TASK_ABS ? fabsf(x) : x;
}

// Independent features: the value from the element's uniform u.
static inline TMS_HD float tms_independent_value(float u, float density, int task) {
    float value = tms_task_value(u / density, task);
    return u <= density ? value : 0.0f;
}

// Feature sets: is feature j of a set active, given the set's uniform v?
static inline TMS_HD int tms_set_active(float v, float density, int sets, int set_size, int j) {
    if (sets == TMS_SETS_CORRELATED) return v <= density;
    float q = v / density; // in (0, 1 / density]; compared before the int conversion,
    return q <= (float)set_size && (int)ceilf(q) - 1 == j; // which overflows for huge q
}

// Feature sets: the value of feature j of a set from its own uniform u and the set's v.
static inline TMS_HD float tms_set_value(float u, float v, float density, int task, int sets,
                                         int set_size, int j) {
    float value = tms_task_value(u, task);
    return tms_set_active(v, density, sets, set_size, j) ? value : 0.0f;
}

// Subsequences above this are reserved for draws that are not training batches, so
// they never collide with a step number.
#define TMS_SUBSEQ_INIT ((uint64_t)1 << 62)        // parameter initialisation
#define TMS_SUBSEQ_EVAL (((uint64_t)1 << 62) + 1)  // the final evaluation batch
// The set uniforms of the batch in subsequence s live in subsequence s + TMS_SUBSEQ_SETS
// (steps stay far below 2^61, and the evaluation batch's land above 2^62 + 2^61).
#define TMS_SUBSEQ_SETS ((uint64_t)1 << 61)

// The set uniform v of set-element s (= row * G + g) of the batch in subsequence `subsequence`.
static inline TMS_HD float tms_set_uniform(uint64_t seed, uint64_t subsequence, uint64_t s) {
    tms_u32x4 r = tms_philox_block(seed, subsequence + TMS_SUBSEQ_SETS, s / 4);
    return tms_uniform_from_u32(r.v[s % 4]);
}

// ----------------------------------------------------------------------------
// The activation and the loss gradient, as macros so the float and double CPU paths
// and the kernels share one spelling (and so one rounding and one choice at 0).
//   TMS_RELU_IF(on, v): ReLU when `on`, identity otherwise; written v < 0 ? 0 : v, not fmax.
//   TMS_MSE_GRAD(c, out, t, y, out_relu): d/dy of (c/2) (t - out)^2 with out = act(y) and t
//     the target (x itself, or |x| for the abs task),
//     c = 2 * scale * I_i; the ReLU passes the gradient only where y > 0.

// scale of the loss: mean over the batch and the features, 1 / (batch * n)
static inline TMS_HD float tms_loss_scale(long batch, int n) { return 1.0f / ((float)batch * (float)n); }

#define TMS_RELU_IF(on, v) (((on) && (v) < 0) ? 0 : (v))
#define TMS_MSE_GRAD(c, out, t, y, out_relu) (((out_relu) && !((y) > 0)) ? 0 : (c) * ((out) - (t)))

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
