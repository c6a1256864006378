// main.c: the tms command line.
//   tms train SPEC --out RUNDIR [options]    train a spec, write a run directory
//   tms train --resume RUNDIR [options]     continue a stopped run
//   tms render RUNDIR                        redraw a run's images from its weights
//   tms merge OUT RUNDIR...                  merge the shards of one sweep
//   tms --version | --help
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "tms.h"

static void usage_main(FILE *f) {
    fprintf(f,
            "tms %s: train toy models of superposition, many instances at once\n"
            "\n"
            "usage:\n"
            "  tms train SPEC.json --out RUNDIR [options]   train, write RUNDIR\n"
            "  tms train --resume RUNDIR [options]          continue a run stopped by a signal or a crash\n"
            "  tms render RUNDIR                            redraw RUNDIR's images from its weights\n"
            "  tms merge OUT RUNDIR...                      merge the shard run directories of one sweep\n"
            "  tms --version\n"
            "\n"
            "'tms COMMAND --help' describes a command. Exit codes: 0 success, 1 runtime failure,\n"
            "2 bad input, 3 stopped by SIGTERM/SIGINT with a checkpoint saved (continue with --resume).\n",
            TMS_VERSION);
}

static void usage_train(FILE *f) {
    fprintf(f,
            "usage: tms train SPEC.json --out RUNDIR [options]\n"
            "       tms train --resume RUNDIR [--backend NAME] [--threads N] [--checkpoint-every N]\n"
            "\n"
            "Trains every instance of the spec's grid (or one shard of it) and writes RUNDIR (built\n"
            "as RUNDIR.partial, renamed when complete). The README lists every spec field.\n"
            "SIGTERM or SIGINT saves a checkpoint in RUNDIR.partial and exits with code 3;\n"
            "--resume RUNDIR continues it, with the same result as an uninterrupted run.\n"
            "\n"
            "options:\n"
            "  --out RUNDIR         run directory to write (required)\n"
            "  --resume RUNDIR      continue RUNDIR.partial from its last checkpoint (no SPEC, no --set)\n"
            "  --shard K/N          train only grid slice K of N (0 <= K < N; slices never split a\n"
            "                       grid point's seeds); 'auto' takes K and N from SLURM_ARRAY_TASK_ID,\n"
            "                       SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT. Merge with tms merge\n"
            "  --checkpoint-every N save a checkpoint every N steps (default: only on SIGTERM/SIGINT)\n"
            "  --set KEY=VALUE      override a spec field, e.g. --set train.steps=2000,\n"
            "                       --set data.density=[1,0.1] (VALUE is JSON, or a bare word); repeatable\n"
            "  --backend NAME       auto (default: cuda when a GPU is usable, else cpu), cpu, cuda\n"
            "  --threads N          CPU threads (default: all cores, or OMP_NUM_THREADS)\n"
            "  --force              replace RUNDIR if it exists\n"
            "  --tf32               CUDA: allow TF32 tensor-core GEMMs (default: off, full fp32)\n"
            "  --quiet              no progress output\n"
            "  -h, --help           this text\n");
}

static void usage_render(FILE *f) {
    fprintf(f,
            "usage: tms render RUNDIR [--threads N]\n"
            "\n"
            "Redraws RUNDIR/images/*.png and RUNDIR/contact_sheet.png from RUNDIR's saved weights\n"
            "(as the spec's output settings say). Captions' losses are recomputed on the same\n"
            "evaluation batch, so they equal instances.csv.\n");
}

static void usage_merge(FILE *f) {
    fprintf(f,
            "usage: tms merge OUT RUNDIR... [--force] [--threads N]\n"
            "\n"
            "Combines the complete shard run directories of one sweep (tms train --shard K/N) into\n"
            "OUT, equal to the run a single process would have written (manifest aside: it lists the\n"
            "shards under merged_from). Refuses shards of different specs or tms builds, a shard\n"
            "given twice, and missing shards, naming them.\n");
}

// "K/N" or "auto" (Slurm job arrays)
static int parse_shard(const char *s, int *k, int *n) {
    if (strcmp(s, "auto") == 0) {
        const char *id = getenv("SLURM_ARRAY_TASK_ID"), *count = getenv("SLURM_ARRAY_TASK_COUNT");
        const char *min = getenv("SLURM_ARRAY_TASK_MIN");
        if (!id || !count) {
            fprintf(stderr, "tms: --shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set "
                            "(not in a Slurm job array?); give --shard K/N\n");
            return -1;
        }
        *k = atoi(id) - (min ? atoi(min) : 0);
        *n = atoi(count);
    } else {
        char *end;
        long a = strtol(s, &end, 10);
        long b = *end == '/' ? strtol(end + 1, &end, 10) : -1;
        if (*end || b < 1 || b > 1000000) {
            fprintf(stderr, "tms: --shard %s: expected K/N with 0 <= K < N (e.g. 0/4), or auto\n", s);
            return -1;
        }
        *k = (int)a;
        *n = (int)b;
    }
    if (*n < 1 || *k < 0 || *k >= *n) {
        fprintf(stderr, "tms: --shard: shard %d of %d is out of range; expected 0 <= K < N\n", *k, *n);
        return -1;
    }
    return 0;
}

static int parse_threads(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 4096) {
        fprintf(stderr, "tms: --threads %s: expected an integer from 1 to 4096\n", s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int cmd_train(int argc, char **argv, const char *command_line) {
    tms_train_opts_t o = {0};
    o.backend = "auto";
    o.shard_n = 1;
    o.command_line = command_line;
    char **sets = calloc((size_t)argc, sizeof(char *));
    if (!sets) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    int code = TMS_EXIT_USAGE;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage_train(stdout); code = TMS_EXIT_OK; goto out; }
        else if (!strcmp(a, "--out") && has_value) o.out_dir = argv[++i];
        else if (!strcmp(a, "--set") && has_value) sets[o.n_overrides++] = argv[++i];
        else if (!strcmp(a, "--backend") && has_value) o.backend = argv[++i];
        else if (!strcmp(a, "--threads") && has_value) { if (parse_threads(argv[++i], &o.threads)) goto out; }
        else if (!strcmp(a, "--resume") && has_value) { o.resume = 1; o.out_dir = argv[++i]; }
        else if (!strcmp(a, "--shard") && has_value) { if (parse_shard(argv[++i], &o.shard_k, &o.shard_n)) goto out; }
        else if (!strcmp(a, "--checkpoint-every") && has_value) {
            char *end;
            o.checkpoint_every = strtol(argv[++i], &end, 10);
            if (*end || o.checkpoint_every < 1) {
                fprintf(stderr, "tms: --checkpoint-every %s: expected a positive number of steps\n", argv[i]);
                goto out;
            }
        }
        else if (!strcmp(a, "--force")) o.force = 1;
        else if (!strcmp(a, "--tf32")) o.allow_tf32 = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tms train: unknown option or missing value: %s (see tms train --help)\n", a);
            goto out;
        } else if (!o.spec_path) o.spec_path = a;
        else { fprintf(stderr, "tms train: unexpected argument: %s (one SPEC at a time)\n", a); goto out; }
    }
    if (o.resume && (o.spec_path || o.n_overrides || o.shard_n != 1)) {
        fprintf(stderr, "tms train: --resume takes the spec, overrides and shard from RUNDIR.partial/manifest.json; "
                        "give no SPEC, --set or --shard with it\n");
        goto out;
    }
    if (!o.resume && (!o.spec_path || !o.out_dir)) {
        fprintf(stderr, "tms train: needs SPEC and --out RUNDIR\n\n");
        usage_train(stderr);
        goto out;
    }
    o.overrides = sets;
    code = tms_cmd_train(&o);
out:
    free(sets);
    return code;
}

static int cmd_render(int argc, char **argv) {
    const char *dir = NULL;
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage_render(stdout); return TMS_EXIT_OK; }
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (parse_threads(argv[++i], &threads)) return TMS_EXIT_USAGE;
        } else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "tms render: unexpected argument: %s (see tms render --help)\n", argv[i]);
            return TMS_EXIT_USAGE;
        } else {
            dir = argv[i];
        }
    }
    if (!dir) { usage_render(stderr); return TMS_EXIT_USAGE; }
    return tms_cmd_render(dir, threads);
}

static int cmd_merge(int argc, char **argv) {
    char **dirs = calloc((size_t)argc + 1, sizeof(char *));
    const char *out = NULL;
    int n = 0, force = 0, threads = 0, code = TMS_EXIT_USAGE;
    if (!dirs) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage_merge(stdout); code = TMS_EXIT_OK; goto out; }
        if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) { if (parse_threads(argv[++i], &threads)) goto out; }
        else if (argv[i][0] == '-') { fprintf(stderr, "tms merge: unknown option %s (see tms merge --help)\n", argv[i]); goto out; }
        else if (!out) out = argv[i];
        else dirs[n++] = argv[i];
    }
    if (!out || n == 0) { usage_merge(stderr); goto out; }
    code = tms_cmd_merge(out, dirs, n, force, threads);
out:
    free(dirs);
    return code;
}

int main(int argc, char **argv) {
    // a file-size limit (ulimit -f) then fails the write with EFBIG, reported like a
    // full disk, instead of killing the process mid-file
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) { usage_main(stderr); return TMS_EXIT_USAGE; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("tms %s (commit %s)\n", TMS_VERSION, TMS_GIT_COMMIT);
        return TMS_EXIT_OK;
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage_main(stdout); return TMS_EXIT_OK; }
    // the command line as typed, for the manifest
    size_t len = 1;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
    char *line = malloc(len);
    if (!line) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    line[0] = 0;
    for (int i = 0; i < argc; i++) { strcat(line, argv[i]); if (i + 1 < argc) strcat(line, " "); }
    int code;
    if (!strcmp(cmd, "train")) code = cmd_train(argc - 2, argv + 2, line);
    else if (!strcmp(cmd, "render")) code = cmd_render(argc - 2, argv + 2);
    else if (!strcmp(cmd, "merge")) code = cmd_merge(argc - 2, argv + 2);
    else {
        fprintf(stderr, "tms: unknown command '%s'; commands: train, render, merge (see tms --help)\n", cmd);
        code = TMS_EXIT_USAGE;
    }
    free(line);
    return code;
}
