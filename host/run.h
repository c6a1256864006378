// run.h: the `train`, `render` and `merge` commands: a run directory from a spec (or a
// shard of its grid), its images redrawn from saved weights, and shards merged.
#ifndef TMS_RUN_H
#define TMS_RUN_H

#include "progress.h"

typedef struct {
    const char *spec_path;   // NULL with resume
    char *const *overrides;  // "section.field=value"
    int n_overrides;
    const char *out_dir;     // the run directory (with resume: the one to continue)
    int resume;              // continue out_dir.partial from its checkpoint
    const char *backend;     // "auto", "cpu", "cuda"
    int threads;             // CPU threads; 0 = OpenMP's default
    int force;               // replace an existing run directory
    int quiet;               // no progress output and no messages but errors
    tms_progress_mode_t progress; // --progress (AUTO: a bar on a terminal, else lines)
    int allow_tf32;          // CUDA: TF32 tensor-core GEMMs
    const char *cuda_path;   // CUDA: "auto" (NULL too), "gemm", "fused" (host/cuda_path.h)
    int shard_k, shard_n;    // train grid slice k of n (0, 1: the whole grid)
    long checkpoint_every;   // steps between checkpoints; 0 = only on SIGTERM/SIGINT
    const char *command_line;
} tms_train_opts_t;

// Each returns the process exit code (TMS_EXIT_*), having printed any error.
int tms_cmd_train(const tms_train_opts_t *o);
// instances: NULL (the default selection: the best replicate of every grid point, at most
// output.max_images of them spread over the grid), "best" (all of those), "all", or a list
// "0,5,10-20" of the run's instance numbers (checked against the run: exit 2 when bad).
int tms_cmd_render(const char *run_dir, int threads, const char *instances);
int tms_cmd_merge(const char *out_dir, char *const *shard_dirs, int n_shards, int force, int threads);

// The grid-point-aligned slice k of n: instances [*first, *first + *count) of a grid of
// `instances` in groups of `seeds` replicates (a grid point is never split).
void tms_shard_slice(int instances, int seeds, int k, int n, int *first, int *count);

#endif
