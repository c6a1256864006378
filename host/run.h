// run.h: the `train` and `render` commands: a run directory from a spec, and its
// images redrawn from saved weights.
#ifndef TMS_RUN_H
#define TMS_RUN_H

typedef struct {
    const char *spec_path;
    char *const *overrides;  // "section.field=value"
    int n_overrides;
    const char *out_dir;
    const char *backend;     // "auto", "cpu", "cuda"
    int threads;             // CPU threads; 0 = OpenMP's default
    int force;               // replace an existing run directory
    int quiet;               // no progress output
    int allow_tf32;          // CUDA: TF32 tensor-core GEMMs
    const char *command_line;
} tms_train_opts_t;

// Each returns the process exit code (TMS_EXIT_*), having printed any error.
int tms_cmd_train(const tms_train_opts_t *o);
int tms_cmd_render(const char *run_dir, int threads);

#endif
