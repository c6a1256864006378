// tms.h: the model configuration, the flat parameter layout every backend shares,
// and the backend interface.
//
// A run trains I independent instances of one model shape side by side. All
// instances' parameters live in one flat float buffer, tensor after tensor, each
// tensor with the instance on its leading axis (the same order as the .npy files):
//   W  (I, m, n)   encoder; column W[:, i] is feature i's direction
//   W2 (I, n, m)   decoder, untied models only (tied models use W^T)
//   b1 (I, m)      hidden bias, hidden ReLU with bias only
//   b  (I, n)      output bias, bias on only
// Gradients and the Adam moments use the same layout.
#ifndef TMS_H
#define TMS_H

#include <stddef.h>
#include <stdint.h>
#include "tms_math.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TMS_VERSION "0.1.0"

// exit codes of the tms binary
// 3: stopped by SIGTERM or SIGINT after saving a checkpoint; `tms train --resume RUNDIR` continues
enum { TMS_EXIT_OK = 0, TMS_EXIT_RUNTIME = 1, TMS_EXIT_USAGE = 2, TMS_EXIT_INTERRUPTED = 3 };

enum { TMS_DECODER_TIED = 0, TMS_DECODER_UNTIED = 1 };
enum { TMS_ACT_NONE = 0, TMS_ACT_RELU = 1 };

typedef struct {
    int n;                 // features
    int m;                 // hidden dimensions
    int decoder;           // TMS_DECODER_*
    int hidden_act;        // TMS_ACT_*: h = act(W x [+ b1])
    int output_act;        // TMS_ACT_*: x' = act(Wd h + b)
    int bias;              // 1: b (and b1 with a hidden ReLU) are parameters; 0: none
    int no_hidden_bias;    // 1: no b1 even with bias on, h = ReLU(W x) (model.hidden_bias false:
                           // the paper's privileged-basis model); 0 (the default): b1 with bias
} tms_model_t;

enum { TMS_T_W = 0, TMS_T_W2, TMS_T_B1, TMS_T_B, TMS_NTENSORS };

typedef struct {
    int present[TMS_NTENSORS];
    size_t per_instance[TMS_NTENSORS]; // floats per instance (0 when absent)
    size_t offset[TMS_NTENSORS];       // offset of the tensor in the flat buffer
    size_t total;                      // floats in the whole buffer
    int instances;
} tms_layout_t;

extern const char *const tms_tensor_names[TMS_NTENSORS]; // "W", "W2", "b1", "b"

void tms_layout_init(tms_layout_t *L, const tms_model_t *model, int instances);

// Pointers to one instance's tensors inside a flat buffer (NULL where absent).
typedef struct {
    float *W;   // (m, n)
    float *W2;  // (n, m) or NULL
    float *b1;  // (m) or NULL
    float *b;   // (n) or NULL
} tms_view_t;

tms_view_t tms_view(const tms_layout_t *L, float *buffer, int instance);

// Per-instance hyperparameters, one entry per instance of the run.
typedef struct {
    float density;        // probability a feature is active (1 - sparsity)
    float lr;             // peak learning rate
    float weight_decay;
    uint64_t seed;        // the user-facing seed of this grid point
    int replicate;        // 0..seeds-1
    uint64_t key;         // Philox key = tms_instance_key(seed, replicate)
    int grid_point;       // index of the grid point (instances that differ only by replicate share it)
    int importance_index; // which importance setting of the grid (for the csv label)
    long diverged_step;   // 0: healthy; else 1 + the step whose loss or gradient was not finite
                          // (the instance is frozen from then on)
} tms_instance_t;

// The data every instance of a run draws (tms_math.h has the formulas). All zero is the
// paper's default: independent sparse features, the target is the input.
typedef struct {
    int task;              // TMS_TASK_SPARSE (x in (0, 1], target x) or TMS_TASK_ABS (x in (-1, 1], target |x|)
    int sets;              // TMS_SETS_NONE (independent), TMS_SETS_CORRELATED, TMS_SETS_ANTICORRELATED
    int set_size;          // k: features per set (consecutive features; n is a multiple of k)
    float *relative_density; // (n) or NULL (all 1): feature i is active with probability
                             // density * relative_density[i] (in float); independent features
                             // only, and only the CPU backend draws it (data.relative_density)
} tms_data_t;

// 1 when the target differs from the input (the model needs a separate target buffer).
static inline int tms_data_has_target(const tms_data_t *D) { return D->task != TMS_TASK_SPARSE; }

typedef struct {
    tms_model_t model;
    tms_data_t data;
    int instances;
    tms_instance_t *inst;   // (instances)
    float *importance;      // (instances, n)
    int batch_size;
    long steps;
    int optimizer;          // TMS_OPT_*
    float beta1, beta2, eps;
    int schedule;           // TMS_SCHED_*
    long warmup_steps;
} tms_problem_t;

// Adam bias corrections and the lr multiplier for step t (0-based).
void tms_step_constants(const tms_problem_t *P, long t, double *lr_factor, float *bias1, float *bias2);

// Xavier-normal initialisation of every instance, per instance: std sqrt(2 / (n + m))
// for W and W2, biases zero. Draws its normals from Philox (subsequence
// TMS_SUBSEQ_INIT of the instance's key), so it depends only on the instance's key.
void tms_init_params(const tms_problem_t *P, const tms_layout_t *L, float *params);

// ----------------------------------------------------------------------------
// Backends. A backend owns the parameters and optimiser state while it trains.

typedef struct tms_backend tms_backend_t;
struct tms_backend {
    const char *name;        // "cpu", "cuda"
    char device[128];        // "CPU: 2 threads", "NVIDIA H100 80GB HBM3"
    void *ctx;
    // Run steps [step_begin, step_end). loss_first gets each instance's loss
    // (mean over batch and features) on the batch of step_begin, before its update
    // (NaN for an instance frozen by divergence before step_begin). An instance whose
    // loss or gradient is not finite is frozen, if the backend detects divergence.
    int (*train)(tms_backend_t *be, long step_begin, long step_end, float *loss_first);
    // Copy parameters and Adam moments (flat layout) back to the host.
    int (*get_state)(tms_backend_t *be, float *params, float *adam_m, float *adam_v);
    // Each instance's divergence (tms_instance_t.diverged_step convention), or NULL when
    // the backend does not detect divergence.
    int (*get_diverged)(tms_backend_t *be, long *diverged_step);
    // Each instance's loss (mean over features) with its current parameters on `samples`
    // fresh samples of the evaluation subsequences (TMS_SUBSEQ_EVAL), and the standard error
    // of that mean (sample standard deviation of the per-sample loss / sqrt(samples));
    // loss, loss_se: (instances), loss_se may be NULL. Called by the run driver before
    // destroy. NULL: the driver evaluates the pulled parameters with tms_cpu_eval_loss.
    int (*evaluate)(tms_backend_t *be, long samples, double *loss, double *loss_se);
    void (*destroy)(tms_backend_t *be);
};

// Create a backend that trains P starting from the given state (host buffers, copied).
// Return 0 on success; on failure write a message to err and return nonzero.
int tms_cpu_backend_create(tms_backend_t *be, const tms_problem_t *P, const tms_layout_t *L,
                           const float *params, const float *adam_m, const float *adam_v,
                           int threads, char *err, size_t errlen);
#ifdef TMS_HAVE_CUDA
int tms_cuda_backend_available(char *device, size_t devlen); // 1 if a usable GPU is present
int tms_cuda_backend_create(tms_backend_t *be, const tms_problem_t *P, const tms_layout_t *L,
                            const float *params, const float *adam_m, const float *adam_v,
                            int allow_tf32, char *err, size_t errlen);
#endif

// ----------------------------------------------------------------------------
// The CPU model: one instance, a block of `rows` samples. Written once over a
// generic real type (cpu_model.inc) and instantiated for float (training, suffix
// none) and double (the gradient check, suffix _d).
//
// Both directions use the decoder transposed, decT (m, n): decT[k*n + i] = Wd[i][k],
// so every inner loop runs over contiguous features. For a tied decoder decT is W
// itself; for an untied one it is W2 transposed (tms_decoder_T).

typedef struct {
    double *W, *W2, *b1, *b;
} tms_view_d_t;

// Draw rows [row_begin, row_begin + rows) of step `subsequence`'s batch into feature-major
// tiles: x[i * rows + r] is feature i of row row_begin + r, and target (n, rows) the same
// for the values the model should output. target may be NULL when the task's target is
// x itself (!tms_data_has_target(D)); otherwise it is written.
void tms_sample_tile(const tms_data_t *D, uint64_t key, uint64_t subsequence, int n, long row_begin,
                     int rows, float density, float *x, float *target);
// The default data (independent sparse features): tms_sample_tile with D all zero.
void tms_sample_rows(uint64_t key, uint64_t subsequence, int n, long row_begin, int rows,
                     float density, float *x);

// decT (m, n) from a view (copies W for tied decoders).
void tms_decoder_T(const tms_model_t *M, const tms_view_t *p, float *decT);
void tms_decoder_T_d(const tms_model_t *M, const tms_view_d_t *p, double *decT);

// Activations of a tile, all feature-major like x (n, rows): z (m, rows), h (m, rows),
// y (n, rows), out (n, rows). target (n, rows) is what out should be: x itself for the
// sparse task (pass x), |x| for the abs task.
// Returns the sum over the block of sum_i I_i (target_i - out_i)^2 (not yet divided).
double tms_forward(const tms_model_t *M, const tms_view_t *p, const float *decT,
                   const float *importance, const float *x, const float *target, int rows,
                   float *z, float *h, float *y, float *out);
double tms_forward_d(const tms_model_t *M, const tms_view_d_t *p, const double *decT,
                     const double *importance, const double *x, const double *target, int rows,
                     double *z, double *h, double *y, double *out);

// Accumulate (+=) into g the gradient of scale * sum_{rows, i} I_i (target_i - out_i)^2.
// The loss (mean over batch and features) uses scale = 1 / (batch * n).
// dy (n, rows) and dh (m, rows) are scratch.
void tms_backward(const tms_model_t *M, const tms_view_t *p, const float *decT,
                  const float *importance, const float *x, const float *target, int rows,
                  const float *z, const float *y, const float *h, const float *out,
                  float scale, float *dy, float *dh, tms_view_t *g);
void tms_backward_d(const tms_model_t *M, const tms_view_d_t *p, const double *decT,
                    const double *importance, const double *x, const double *target, int rows,
                    const double *z, const double *y, const double *h, const double *out,
                    double scale, double *dy, double *dh, tms_view_d_t *g);

// One optimiser step over every element of one instance's slice of each tensor.
void tms_adamw_step(const tms_layout_t *L, int instance, float *params, float *grads,
                    float *adam_m, float *adam_v, const tms_adam_step_t *s);

#ifdef __cplusplus
}
#endif
#endif // TMS_H
