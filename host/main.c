// main.c: the tms command line.
//   tms train SPEC --out RUNDIR [options]    train a spec, write a run directory
//   tms train --resume RUNDIR [options]     continue a stopped run
//   tms render RUNDIR [--instances ...]      redraw a run's images from its weights
//   tms merge OUT RUNDIR...                  merge the shards of one sweep
//   tms --version | --help
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "render.h"
#include "run.h"
#include "tms.h"
#include "cuda_path.h"

static void usage_main(FILE *f) {
    fprintf(f,
            "tms %s: train toy models of superposition, many instances at once\n"
            "\n"
            "usage:\n"
            "  tms train SPEC.json --out RUNDIR [options]   train, write RUNDIR\n"
            "  tms train --resume RUNDIR [options]          continue a run stopped by a signal or a crash\n"
            "  tms render RUNDIR [--instances LIST|best|all] redraw RUNDIR's images from its weights\n"
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
            "       tms train --resume RUNDIR [--backend NAME] [--cuda-path PATH] [--threads N] [--checkpoint-every N]\n"
            "                 [--progress MODE]\n"
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
            "  --cuda-path PATH     CUDA: auto (default; the gemm path until a GPU has confirmed the fused\n"
            "                       one), gemm (cuBLAS, any size), fused (a chunk of steps per launch, small\n"
            "                       models only)\n"
            "  --progress MODE      auto (default: bar on a terminal, else lines), bar (redrawn in place),\n"
            "                       lines (one line per 10%%), json (one JSON object per line on stderr, at\n"
            "                       most ten a second and the last step: {\"step\", \"steps\", \"loss\",\n"
            "                       \"steps_per_s\", \"elapsed_s\", \"eta_s\"}), none\n"
            "  --quiet              no progress output and no messages but errors\n"
            "  -h, --help           this text\n");
}

static void usage_render(FILE *f) {
    fprintf(f,
            "usage: tms render RUNDIR [--instances LIST|best|all] [--threads N]\n"
            "\n"
            "Draws RUNDIR/images/instance_NNNNN.png and RUNDIR/contact_sheet.png from RUNDIR's saved\n"
            "weights (no training), also for a run trained with output.images or output.contact_sheet\n"
            "false. Captions' losses are read from eval_loss.npy, so they equal instances.csv.\n"
            "\n"
            "options:\n"
            "  --instances WHICH  the instances to draw (default: the best replicate of every grid\n"
            "                     point, at most output.max_images of them spread evenly over the grid,\n"
            "                     as training draws):\n"
            "                       best  the best replicate of every grid point, all of them\n"
            "                       all   every instance\n"
            "                       LIST  instance numbers and ranges, e.g. 0,5,10-20 (instances.csv's\n"
            "                             'instance'), each once\n"
            "                     The contact sheet shows the same instances (at most %d, spread evenly);\n"
            "                     other images already in RUNDIR/images/ stay\n"
            "  --threads N        CPU threads (default: all cores, or OMP_NUM_THREADS)\n"
            "  -h, --help         this text\n", TMS_SHEET_MAX);
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

// A decimal integer in [lo, hi] and nothing else: no sign games, no trailing text, no
// wrap-around (strtol saturates with ERANGE, and the range check comes after). *end_out,
// when given, receives where the digits stop (for "K/N"); otherwise the whole string must
// be the number.
static int parse_long(const char *s, long lo, long hi, long *out, const char **end_out) {
    if (!(*s >= '0' && *s <= '9') && !(*s == '-' && s[1] >= '0' && s[1] <= '9')) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE || v < lo || v > hi) return -1;
    if (end_out) *end_out = end;
    else if (*end) return -1;
    *out = v;
    return 0;
}

#define TMS_MAX_SHARDS 1000000L

// "K/N" or "auto" (Slurm job arrays)
static int parse_shard(const char *s, int *k, int *n) {
    long kk, nn;
    if (strcmp(s, "auto") == 0) {
        const char *id = getenv("SLURM_ARRAY_TASK_ID"), *count = getenv("SLURM_ARRAY_TASK_COUNT");
        const char *min = getenv("SLURM_ARRAY_TASK_MIN");
        long idv, minv = 0;
        if (!id || !count) {
            fprintf(stderr, "tms: --shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set "
                            "(not in a Slurm job array?); give --shard K/N\n");
            return -1;
        }
        if (parse_long(id, 0, 100000000L, &idv, NULL) || (min && parse_long(min, 0, 100000000L, &minv, NULL)) ||
            parse_long(count, 1, TMS_MAX_SHARDS, &nn, NULL)) {
            fprintf(stderr, "tms: --shard auto: SLURM_ARRAY_TASK_ID=%s, SLURM_ARRAY_TASK_MIN=%s, "
                            "SLURM_ARRAY_TASK_COUNT=%s; expected integers (IDs from 0 to 100000000, a count from "
                            "1 to %ld)\n", id, min ? min : "(unset)", count, TMS_MAX_SHARDS);
            return -1;
        }
        kk = idv - minv;
    } else {
        const char *slash;
        if (parse_long(s, 0, TMS_MAX_SHARDS - 1, &kk, &slash) || *slash != '/' ||
            parse_long(slash + 1, 1, TMS_MAX_SHARDS, &nn, NULL)) {
            fprintf(stderr, "tms: --shard %s: expected K/N with integers 0 <= K < N <= %ld (e.g. 0/4), or auto\n", s,
                    TMS_MAX_SHARDS);
            return -1;
        }
    }
    if (kk < 0 || kk >= nn) {
        fprintf(stderr, "tms: --shard %s: shard %ld of %ld is out of range; expected 0 <= K < N\n", s, kk, nn);
        return -1;
    }
    *k = (int)kk;
    *n = (int)nn;
    return 0;
}

static int parse_threads(const char *s, int *out) {
    long v;
    if (parse_long(s, 1, 4096, &v, NULL)) {
        fprintf(stderr, "tms: --threads %s: expected an integer from 1 to 4096\n", s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

// --out RUNDIR (and merge's OUT): a name for a new directory. Trailing slashes are dropped
// ("runs/x/" is runs/x); a name that is not a new directory's ('', '.', '..', '/', or one
// ending in '/.' or '/..') is bad input, refused before anything runs. Returns a copy the
// caller frees, or NULL having printed why.
static char *checked_out_dir(const char *flag, const char *given) {
    size_t len = strlen(given);
    while (len > 1 && given[len - 1] == '/') len--;
    const char *last = given + len;
    while (last > given && last[-1] != '/') last--;
    size_t last_len = (size_t)(given + len - last);
    const char *why = NULL;
    if (len == 0) why = "is empty";
    else if (len == 1 && given[0] == '/') why = "is the root directory";
    else if (last_len == 1 && last[0] == '.') why = "names the current directory";
    else if (last_len == 2 && last[0] == '.' && last[1] == '.') why = "names a parent directory";
    else if (len > 4000) why = "is longer than 4000 characters";
    if (why) {
        fprintf(stderr, "tms: %s '%s' %s; expected a path for a new run directory, e.g. runs/mysweep\n", flag, given,
                why);
        return NULL;
    }
    char *out = malloc(len + 1);
    if (!out) { fprintf(stderr, "tms: out of memory\n"); return NULL; }
    memcpy(out, given, len);
    out[len] = 0;
    return out;
}

static int cmd_train(int argc, char **argv, const char *command_line) {
    tms_train_opts_t o = {0};
    o.backend = "auto";
    o.shard_n = 1;
    o.command_line = command_line;
    char **sets = calloc((size_t)argc, sizeof(char *));
    if (!sets) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    int code = TMS_EXIT_USAGE;
    char *out_dir = NULL;
    int progress_given = 0;
    // a flag that takes one value, given twice, is an error: which one was meant is not for
    // tms to guess (--set is the one that repeats)
    static const char *const single[] = {"--out", "--resume", "--backend", "--threads", "--shard",
                                         "--checkpoint-every", "--cuda-path", "--progress", NULL};
    for (int k = 0; single[k]; k++) {
        int seen = 0;
        for (int i = 0; i < argc; i++) {
            if (!strcmp(argv[i], "--set")) { i++; continue; } // an override's value is not a flag
            if (!strcmp(argv[i], single[k]) && ++seen == 2) {
                fprintf(stderr, "tms train: %s given twice; expected it at most once\n", single[k]);
                goto out;
            }
            if (!strcmp(argv[i], single[k])) i++; // skip its value
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage_train(stdout); code = TMS_EXIT_OK; goto out; }
        else if (!strcmp(a, "--out") && has_value) o.out_dir = argv[++i];
        else if (!strcmp(a, "--set") && has_value) sets[o.n_overrides++] = argv[++i];
        else if (!strcmp(a, "--backend") && has_value) o.backend = argv[++i];
        else if (!strcmp(a, "--cuda-path") && has_value) {
            o.cuda_path = argv[++i];
            if (tms_cuda_path_parse(o.cuda_path) < 0) {
                fprintf(stderr, "tms train: --cuda-path '%s': expected one of: auto, fused, gemm\n", o.cuda_path);
                goto out;
            }
        }
        else if (!strcmp(a, "--threads") && has_value) { if (parse_threads(argv[++i], &o.threads)) goto out; }
        else if (!strcmp(a, "--resume") && has_value) { o.resume = 1; o.out_dir = argv[++i]; }
        else if (!strcmp(a, "--shard") && has_value) { if (parse_shard(argv[++i], &o.shard_k, &o.shard_n)) goto out; }
        else if (!strcmp(a, "--checkpoint-every") && has_value) {
            if (parse_long(argv[++i], 1, 1000000000L, &o.checkpoint_every, NULL)) {
                fprintf(stderr, "tms: --checkpoint-every %s: expected an integer from 1 to 1000000000 (steps)\n",
                        argv[i]);
                goto out;
            }
        }
        else if (!strcmp(a, "--progress") && has_value) {
            if (tms_progress_parse(argv[++i], &o.progress)) {
                fprintf(stderr, "tms train: --progress %s: expected auto, bar, lines, json or none\n", argv[i]);
                goto out;
            }
            progress_given = 1;
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
    if (o.quiet && progress_given) {
        fprintf(stderr, "tms train: --quiet and --progress together: --quiet turns progress off (for no progress "
                        "but the other messages, --progress none)\n");
        goto out;
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
    if (o.allow_tf32 && o.backend && !strcmp(o.backend, "cpu")) {
        fprintf(stderr, "tms train: --tf32 with --backend cpu: TF32 is a CUDA tensor-core mode; the CPU backend "
                        "always computes in full fp32 (drop --tf32, or use --backend cuda)\n");
        goto out;
    }
    if (o.cuda_path && strcmp(o.cuda_path, "auto") && o.backend && !strcmp(o.backend, "cpu")) {
        fprintf(stderr, "tms train: --cuda-path %s with --backend cpu: the path chooses how the CUDA backend trains; "
                        "the CPU backend has one (drop --cuda-path, or use --backend cuda)\n", o.cuda_path);
        goto out;
    }
    if (o.allow_tf32 && o.cuda_path && !strcmp(o.cuda_path, "fused")) {
        fprintf(stderr, "tms train: --tf32 with --cuda-path fused: the fused path has no GEMMs for TF32 to speed up "
                        "and always computes in full fp32 (drop --tf32, or use --cuda-path gemm)\n");
        goto out;
    }
    if (!(out_dir = checked_out_dir(o.resume ? "--resume" : "--out", o.out_dir))) goto out;
    o.out_dir = out_dir;
    o.overrides = sets;
    code = tms_cmd_train(&o);
out:
    free(sets);
    free(out_dir);
    return code;
}

static int cmd_render(int argc, char **argv) {
    const char *dir = NULL, *instances = NULL;
    int threads = 0, seen_threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage_render(stdout); return TMS_EXIT_OK; }
        if ((!strcmp(argv[i], "--threads") || !strcmp(argv[i], "--instances")) && i + 1 >= argc) {
            fprintf(stderr, "tms render: %s needs a value (see tms render --help)\n", argv[i]);
            return TMS_EXIT_USAGE;
        }
        if (!strcmp(argv[i], "--threads")) {
            if (seen_threads++) { fprintf(stderr, "tms render: --threads given twice; expected it at most once\n"); return TMS_EXIT_USAGE; }
            if (parse_threads(argv[++i], &threads)) return TMS_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--instances")) {
            if (instances) { fprintf(stderr, "tms render: --instances given twice; expected it at most once\n"); return TMS_EXIT_USAGE; }
            instances = argv[++i];
        } else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "tms render: unexpected argument: %s (see tms render --help)\n", argv[i]);
            return TMS_EXIT_USAGE;
        } else {
            dir = argv[i];
        }
    }
    if (!dir) { usage_render(stderr); return TMS_EXIT_USAGE; }
    return tms_cmd_render(dir, threads, instances);
}

static int cmd_merge(int argc, char **argv) {
    char **dirs = calloc((size_t)argc + 1, sizeof(char *));
    const char *out = NULL;
    char *out_dir = NULL;
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
    if (!(out_dir = checked_out_dir("merge OUT", out))) goto out;
    code = tms_cmd_merge(out_dir, dirs, n, force, threads);
out:
    free(dirs);
    free(out_dir);
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
