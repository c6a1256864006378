// main.c: the tms command line.
//   tms train SPEC --out RUNDIR [options]    train a spec, write a run directory
//   tms render RUNDIR                        redraw a run's images from its weights
//   tms --version | --help
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
            "  tms render RUNDIR                            redraw RUNDIR's images from its weights\n"
            "  tms --version\n"
            "\n"
            "'tms COMMAND --help' describes a command. Exit codes: 0 success, 2 bad input, 1 runtime failure.\n",
            TMS_VERSION);
}

static void usage_train(FILE *f) {
    fprintf(f,
            "usage: tms train SPEC.json --out RUNDIR [options]\n"
            "\n"
            "Trains every instance of the spec's grid and writes RUNDIR (built as RUNDIR.partial,\n"
            "renamed when complete). The README lists every spec field.\n"
            "\n"
            "options:\n"
            "  --out RUNDIR         run directory to write (required)\n"
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
        else if (!strcmp(a, "--force")) o.force = 1;
        else if (!strcmp(a, "--tf32")) o.allow_tf32 = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tms train: unknown option or missing value: %s (see tms train --help)\n", a);
            goto out;
        } else if (!o.spec_path) o.spec_path = a;
        else { fprintf(stderr, "tms train: unexpected argument: %s (one SPEC at a time)\n", a); goto out; }
    }
    if (!o.spec_path || !o.out_dir) {
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

int main(int argc, char **argv) {
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
    else {
        fprintf(stderr, "tms: unknown command '%s'; commands: train, render (see tms --help)\n", cmd);
        code = TMS_EXIT_USAGE;
    }
    free(line);
    return code;
}
