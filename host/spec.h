// spec.h: the run specification (a JSON file plus --set overrides), validated into
// plain values, and its expansion into the instance grid.
#ifndef TMS_SPEC_H
#define TMS_SPEC_H
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "tms.h"

#define TMS_MAX_LIST 4096                 // values per grid axis
#define TMS_MAX_INSTANCES 10000000L       // instances in a grid (product of the axes x seeds)
#define TMS_SPEC_MAX_BYTES (16L << 20)    // a spec file larger than this is refused unread
// train.eval_samples: the default is TMS_EVAL_SAMPLES_MAX, lowered to an eighth of the
// samples training draws (steps * batch_size / 8) for short runs, never below the minimum
#define TMS_EVAL_SAMPLES_MIN 8192L
#define TMS_EVAL_SAMPLES_MAX (1L << 20)
#define TMS_MAX_SNAPSHOTS 4096            // output.snapshots: at most this many steps recorded

enum { TMS_SPACING_LOG = 0, TMS_SPACING_LINEAR = 1 };

// The steps a count of snapshots records over a run of `steps` steps, strictly increasing and
// ending at `steps`: log-spaced from 1 (1, 10, 100, 1000, 10000 for 5 over 10000 steps) or
// evenly spaced (steps/count, 2 steps/count, ..., steps), rounded to integers and moved up
// where rounding would repeat one. When count >= steps, every step 1..steps. Returns how
// many it wrote (min(count, steps)).
int tms_snapshot_steps(long steps, int count, int spacing, long *out);

typedef struct {
    char name[128];
    tms_model_t model;
    // data
    int n_density;
    double density[TMS_MAX_LIST];
    int importance_explicit;        // 0: importance_decay lists r (I_i = r^i); 1: explicit vectors
    int n_importance;               // grid points along importance
    double *importance_decay;       // (n_importance) when !importance_explicit
    double *importance_values;      // (n_importance, n) when importance_explicit
    int batch_size;
    tms_data_t data;                // task and feature sets (data.relative_density: spec-owned floats)
    double *relative_density;       // (n) data.relative_density as given, or NULL
    // optimizer
    int optimizer;
    int n_lr;
    double lr[TMS_MAX_LIST];
    double beta1, beta2, eps;
    int n_weight_decay;
    double weight_decay[TMS_MAX_LIST];
    int schedule;
    long warmup_steps;
    // train
    long steps;
    int n_seed;
    uint64_t seed[TMS_MAX_LIST];
    int seeds;                      // replicates per grid point
    long log_every;
    long eval_samples;
    // output
    int images;
    int contact_sheet;
    int max_images;
    // output.snapshots: every instance's parameters recorded after these steps of training
    // (0 = the initialisation), strictly increasing, each in [0, steps]; none by default
    int n_snapshots;
    long *snapshot_steps;           // (n_snapshots)
    int snapshots_listed;           // 1: output.snapshots was a list of steps; 0: a count
    int snapshot_spacing;           // TMS_SPACING_*: how a count is spread over [1, steps]
    // the whole spec with every default filled in, for the manifest
    cJSON *resolved;
} tms_spec_t;

// Load `path`, apply the overrides ("section.field=value", value parsed as JSON and
// taken as a string when it is not JSON), validate. On error returns -1 with one
// message in err naming the field, the value and what is allowed.
int tms_spec_load(tms_spec_t *spec, const char *path, char *const *overrides, int n_overrides,
                  char *err, size_t errlen);
// The same from a JSON text already in memory (used by the tests and by render/resume).
int tms_spec_parse(tms_spec_t *spec, const char *json_text, const char *default_name,
                   char *const *overrides, int n_overrides, char *err, size_t errlen);
// The same from a spec already parsed (a manifest's resolved spec): its numbers are used as
// parsed, never printed and read back (cJSON's printer is not exact for every double).
int tms_spec_from_json(tms_spec_t *spec, const cJSON *json, char *err, size_t errlen);
void tms_spec_free(tms_spec_t *spec);

// Instances in the grid; only meaningful for a validated spec (at most TMS_MAX_INSTANCES).
long tms_spec_instances(const tms_spec_t *spec);

// The shortest decimal text that reads back (strtod / strtof) as exactly x: 0.05 -> "0.05".
void tms_format_double(char *out, size_t outlen, double x);
void tms_format_float(char *out, size_t outlen, float x);

// Expand the grid: instance order is density (slowest), importance, lr,
// weight_decay, seed, replicate (fastest). Fills P (allocating P->inst and
// P->importance; free with tms_problem_free). Returns 0, or -1 when out of memory.
int tms_problem_build(tms_problem_t *P, const tms_spec_t *spec);
void tms_problem_free(tms_problem_t *P);

#endif
