// run.c: the run driver. Trains a spec on a backend and writes the run directory:
//   manifest.json, W.npy / W2.npy / b1.npy / b.npy, optimizer/*.npy, instances.csv,
//   features.csv, loss.csv, images/*.png, contact_sheet.png.
// The directory is built as "<out>.partial" and renamed to "<out>" only when every
// file is written, so nothing under the final name is ever half-written. A run that
// fails keeps "<out>.partial" with manifest.json saying "status": "failed" and why.
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <omp.h>
#include "cpu_backend.h"
#include "fileio.h"
#include "geometry.h"
#include "npy.h"
#include "progress.h"
#include "render.h"
#include "run.h"
#include "spec.h"
#include "tms.h"

typedef struct {
    char err[1024];
    tms_spec_t spec;
    tms_problem_t P;
    tms_layout_t L;
    float *params, *adam_m, *adam_v;  // flat layout
    double *final_loss;               // (instances) mean over batch and features, eval batch
    float *loss_log;                  // (n_logs, instances)
    long *log_steps;                  // (n_logs)
    int n_logs;
    char backend_name[16];
    char device[128];
    int threads;
    long steps_done;
    double wall_seconds;
    char start_time[32];
} run_t;

static void run_free(run_t *r) {
    tms_spec_free(&r->spec);
    tms_problem_free(&r->P);
    free(r->params); free(r->adam_m); free(r->adam_v);
    free(r->final_loss); free(r->loss_log); free(r->log_steps);
}

// ----------------------------------------------------------------------------
// manifest

// The shape of tensor t with instances leading: W (I, m, n), W2 (I, n, m), b1 (I, m), b (I, n).
static int tensor_shape(const tms_problem_t *P, int t, long shape[3]) {
    shape[0] = P->instances;
    if (t == TMS_T_W) { shape[1] = P->model.m; shape[2] = P->model.n; return 3; }
    if (t == TMS_T_W2) { shape[1] = P->model.n; shape[2] = P->model.m; return 3; }
    shape[1] = t == TMS_T_B1 ? P->model.m : P->model.n;
    return 2;
}

static int write_manifest(const run_t *r, const char *dir, const char *status, const char *error,
                          const tms_train_opts_t *o) {
    cJSON *m = cJSON_CreateObject();
    if (!m) return -1;
    cJSON_AddStringToObject(m, "tms_version", TMS_VERSION);
    cJSON_AddStringToObject(m, "git_commit", TMS_GIT_COMMIT);
    cJSON_AddStringToObject(m, "status", status);
    if (error) cJSON_AddStringToObject(m, "error", error);
    if (o && o->command_line) cJSON_AddStringToObject(m, "command", o->command_line);
    cJSON_AddStringToObject(m, "backend", r->backend_name);
    cJSON_AddStringToObject(m, "device", r->device);
    if (strcmp(r->backend_name, "cpu") == 0) cJSON_AddNumberToObject(m, "threads", r->threads);
    if (o && strcmp(r->backend_name, "cuda") == 0) cJSON_AddBoolToObject(m, "tf32", o->allow_tf32);
    cJSON_AddStringToObject(m, "start_time", r->start_time);
    cJSON_AddNumberToObject(m, "wall_seconds", r->wall_seconds);
    cJSON_AddNumberToObject(m, "steps_completed", (double)r->steps_done);
    cJSON_AddNumberToObject(m, "instances", r->P.instances);
    cJSON_AddStringToObject(m, "init", "xavier_normal per instance: std = sqrt(2 / (n_features + n_hidden))");
    cJSON_AddStringToObject(m, "loss_normalisation",
                            "loss_mean_features = mean over batch and features of I_i (x_i - x'_i)^2 (the notebook's); "
                            "loss_sum_features = n_features * loss_mean_features (the paper's)");
    cJSON *tensors = cJSON_AddObjectToObject(m, "tensors");
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!r->L.present[t]) continue;
        long shape[3];
        int nd = tensor_shape(&r->P, t, shape);
        double dims[3] = {(double)shape[0], (double)shape[1], (double)shape[2]};
        cJSON_AddItemToObject(tensors, tms_tensor_names[t], cJSON_CreateDoubleArray(dims, nd));
    }
    cJSON_AddItemReferenceToObject(m, "spec", r->spec.resolved);
    char *text = cJSON_Print(m);
    cJSON_Delete(m);
    if (!text) return -1;
    char path[4096], err[512];
    int rc = tms_join(path, sizeof(path), dir, "manifest.json");
    size_t len = strlen(text);
    text[len] = '\n'; // cJSON_Print leaves room for the terminator; reuse it for a newline
    if (!rc) rc = tms_write_file_atomic(path, text, len + 1, err, sizeof(err));
    if (rc) fprintf(stderr, "tms: %s\n", err);
    cJSON_free(text);
    return rc;
}

// ----------------------------------------------------------------------------
// outputs

static int write_tensors(run_t *r, const char *dir, const float *buffer, const char *prefix) {
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!r->L.present[t]) continue;
        long shape[3];
        int nd = tensor_shape(&r->P, t, shape);
        char name[64], path[4096];
        snprintf(name, sizeof(name), "%s%s.npy", prefix, tms_tensor_names[t]);
        if (tms_join(path, sizeof(path), dir, name)) { snprintf(r->err, sizeof(r->err), "path too long"); return -1; }
        if (tms_npy_write(path, buffer + r->L.offset[t], shape, nd, r->err, sizeof(r->err))) return -1;
    }
    return 0;
}

// csv output through an atomic file; fprintf errors are caught at commit (ferror)
static int csv_open(run_t *r, tms_atomic_t *a, const char *dir, const char *name) {
    char path[4096];
    if (tms_join(path, sizeof(path), dir, name)) { snprintf(r->err, sizeof(r->err), "path too long"); return -1; }
    return tms_atomic_open(a, path, r->err, sizeof(r->err));
}

// best_of_replicates: 1 for the replicate with the lowest final loss of each grid point
static void best_replicates(const run_t *r, int *best) {
    const tms_problem_t *P = &r->P;
    for (int i = 0; i < P->instances; i++) best[i] = 0;
    int i = 0;
    while (i < P->instances) {
        int j = i, arg = i;
        while (j < P->instances && P->inst[j].grid_point == P->inst[i].grid_point) {
            if (r->final_loss[j] < r->final_loss[arg]) arg = j;
            j++;
        }
        best[arg] = 1;
        i = j;
    }
}

static int write_tables(run_t *r, const char *dir) {
    const tms_problem_t *P = &r->P;
    const int n = P->model.n, m = P->model.m;
    int *best = malloc((size_t)P->instances * sizeof(int));
    float *norm = malloc((size_t)n * 3 * sizeof(float));
    if (!best || !norm) { free(best); free(norm); snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    float *sup = norm + n, *dim = norm + 2 * n;
    best_replicates(r, best);
    tms_atomic_t ai, af, al;
    int rc = -1;
    if (csv_open(r, &ai, dir, "instances.csv")) goto out0;
    if (csv_open(r, &af, dir, "features.csv")) goto out1;
    fprintf(ai.fp, "instance,grid_point,density,importance_decay,importance_index,lr,weight_decay,seed,replicate,"
                   "philox_key,loss_mean_features,loss_sum_features,dims_per_feature,n_represented,best_of_replicates\n");
    fprintf(af.fp, "instance,feature,importance,norm,superposition,dimensionality,bias\n");
    for (int i = 0; i < P->instances; i++) {
        const tms_instance_t *in = &P->inst[i];
        tms_view_t v = tms_view(&r->L, r->params, i);
        tms_feature_geometry(v.W, m, n, norm, sup, dim);
        int represented = 0;
        for (int f = 0; f < n; f++) represented += norm[f] > 0.5f;
        char decay[32] = "";
        if (!r->spec.importance_explicit) snprintf(decay, sizeof(decay), "%.9g", r->spec.importance_decay[in->importance_index]);
        fprintf(ai.fp, "%d,%d,%.9g,%s,%d,%.9g,%.9g,%llu,%d,%llu,%.9g,%.9g,%.9g,%d,%d\n", i, in->grid_point,
                in->density, decay, in->importance_index, in->lr, in->weight_decay, (unsigned long long)in->seed,
                in->replicate, (unsigned long long)in->key, r->final_loss[i], r->final_loss[i] * n,
                tms_dims_per_feature(v.W, m, n), represented, best[i]);
        const float *imp = P->importance + (size_t)i * n;
        for (int f = 0; f < n; f++) {
            char bias[32] = "";
            if (v.b) snprintf(bias, sizeof(bias), "%.9g", v.b[f]);
            fprintf(af.fp, "%d,%d,%.9g,%.9g,%.9g,%.9g,%s\n", i, f, imp[f], norm[f], sup[f], dim[f], bias);
        }
    }
    if (csv_open(r, &al, dir, "loss.csv")) goto out2;
    fprintf(al.fp, "step,instance,loss_mean_features,loss_sum_features\n");
    for (int k = 0; k < r->n_logs; k++)
        for (int i = 0; i < P->instances; i++) {
            float l = r->loss_log[(size_t)k * P->instances + i];
            fprintf(al.fp, "%ld,%d,%.9g,%.9g\n", r->log_steps[k], i, l, l * n);
        }
    if (tms_atomic_commit(&al, r->err, sizeof(r->err))) goto out2;
    if (tms_atomic_commit(&af, r->err, sizeof(r->err))) goto out1;
    if (tms_atomic_commit(&ai, r->err, sizeof(r->err))) goto out0;
    rc = 0;
    goto out0;
out2:
    tms_atomic_abort(&af);
out1:
    tms_atomic_abort(&ai);
out0:
    free(best);
    free(norm);
    return rc;
}

static tms_render_item_t render_item(const run_t *r, int i, char *label, size_t labellen) {
    tms_view_t v = tms_view(&r->L, r->params, i);
    const tms_instance_t *in = &r->P.inst[i];
    snprintf(label, labellen, "#%d p=%.3g seed %llu rep %d", i, in->density, (unsigned long long)in->seed, in->replicate);
    tms_render_item_t item = {&r->P.model, v.W, v.W2, v.b, r->P.importance + (size_t)i * r->P.model.n,
                              in->density, (float)r->final_loss[i], label};
    return item;
}

// Images: one per instance (the first max_images), and a contact sheet of at most
// max_images instances (the best replicate of each grid point when seeds > 1).
static int write_images(run_t *r, const char *dir) {
    const tms_spec_t *s = &r->spec;
    if (!s->images && !s->contact_sheet) return 0;
    char imgdir[4096], path[4096], name[64];
    int limit = s->max_images < r->P.instances ? s->max_images : r->P.instances;
    if (s->images && limit > 0) {
        if (tms_join(imgdir, sizeof(imgdir), dir, "images") || tms_mkdirs(imgdir, r->err, sizeof(r->err))) return -1;
        int failed = 0;
        #pragma omp parallel for schedule(dynamic, 1) num_threads(r->threads) reduction(|:failed)
        for (int i = 0; i < limit; i++) {
            char label[96], err[512], ipath[4096], iname[64];
            tms_render_item_t item = render_item(r, i, label, sizeof(label));
            snprintf(iname, sizeof(iname), "instance_%05d.png", i);
            if (tms_join(ipath, sizeof(ipath), imgdir, iname) || tms_render_instance(ipath, &item, err, sizeof(err))) {
                #pragma omp critical
                snprintf(r->err, sizeof(r->err), "%s", err);
                failed = 1;
            }
        }
        if (failed) return -1;
    }
    if (s->contact_sheet && limit > 0) {
        int *best = malloc((size_t)r->P.instances * sizeof(int));
        tms_render_item_t *items = malloc((size_t)limit * sizeof(*items));
        char (*labels)[96] = malloc((size_t)limit * sizeof(*labels));
        if (!best || !items || !labels) {
            free(best); free(items); free(labels);
            snprintf(r->err, sizeof(r->err), "out of memory");
            return -1;
        }
        best_replicates(r, best);
        int count = 0;
        for (int i = 0; i < r->P.instances && count < limit; i++)
            if (s->seeds == 1 || best[i]) { items[count] = render_item(r, i, labels[count], sizeof(labels[count])); count++; }
        snprintf(name, sizeof(name), "contact_sheet.png");
        int rc = tms_join(path, sizeof(path), dir, name) ? -1 : tms_render_contact_sheet(path, items, count, r->err, sizeof(r->err));
        free(best); free(items); free(labels);
        if (rc) return -1;
    }
    return 0;
}

static int write_outputs(run_t *r, const char *dir) {
    char optdir[4096];
    if (write_tensors(r, dir, r->params, "")) return -1;
    if (tms_join(optdir, sizeof(optdir), dir, "optimizer") || tms_mkdirs(optdir, r->err, sizeof(r->err))) return -1;
    if (write_tensors(r, optdir, r->adam_m, "adam_m_")) return -1;
    if (write_tensors(r, optdir, r->adam_v, "adam_v_")) return -1;
    if (write_tables(r, dir)) return -1;
    if (write_images(r, dir)) return -1;
    return 0;
}

// ----------------------------------------------------------------------------
// train

static int alloc_state(run_t *r) {
    r->params = calloc(r->L.total ? r->L.total : 1, sizeof(float));
    r->adam_m = calloc(r->L.total ? r->L.total : 1, sizeof(float));
    r->adam_v = calloc(r->L.total ? r->L.total : 1, sizeof(float));
    r->final_loss = calloc((size_t)r->P.instances, sizeof(double));
    if (!r->params || !r->adam_m || !r->adam_v || !r->final_loss) {
        snprintf(r->err, sizeof(r->err), "out of memory for %d instances (%zu parameters)", r->P.instances, r->L.total);
        return -1;
    }
    return 0;
}

static int create_backend(run_t *r, tms_backend_t *be, const tms_train_opts_t *o, int *usage_error) {
    const char *want = o->backend ? o->backend : "auto";
    *usage_error = 0;
    if (strcmp(want, "cpu") && strcmp(want, "cuda") && strcmp(want, "auto")) {
        snprintf(r->err, sizeof(r->err), "--backend %s: expected one of: auto, cpu, cuda", want);
        *usage_error = 1;
        return -1;
    }
#ifdef TMS_HAVE_CUDA
    char gpu[128] = "";
    int have_gpu = tms_cuda_backend_available(gpu, sizeof(gpu));
    if (strcmp(want, "cuda") == 0 && !have_gpu) {
        snprintf(r->err, sizeof(r->err), "--backend cuda: no CUDA GPU is usable on this machine (use --backend cpu)");
        return -1;
    }
    if (have_gpu && strcmp(want, "cpu") != 0) {
        snprintf(r->backend_name, sizeof(r->backend_name), "cuda");
        if (tms_cuda_backend_create(be, &r->P, &r->L, r->params, r->adam_m, r->adam_v, o->allow_tf32, r->err,
                                    sizeof(r->err)))
            return -1;
        snprintf(r->device, sizeof(r->device), "%s", be->device);
        return 0;
    }
#else
    if (strcmp(want, "cuda") == 0) {
        snprintf(r->err, sizeof(r->err),
                 "--backend cuda: this tms was built without CUDA (no nvcc at configure time); use --backend cpu");
        *usage_error = 1;
        return -1;
    }
#endif
    snprintf(r->backend_name, sizeof(r->backend_name), "cpu");
    if (tms_cpu_backend_create(be, &r->P, &r->L, r->params, r->adam_m, r->adam_v, r->threads, r->err, sizeof(r->err)))
        return -1;
    snprintf(r->device, sizeof(r->device), "%s", be->device);
    return 0;
}

static int train_loop(run_t *r, tms_backend_t *be, int quiet) {
    const tms_problem_t *P = &r->P;
    long every = r->spec.log_every;
    r->n_logs = (int)((P->steps + every - 1) / every);
    r->loss_log = malloc((size_t)r->n_logs * P->instances * sizeof(float));
    r->log_steps = malloc((size_t)r->n_logs * sizeof(long));
    if (!r->loss_log || !r->log_steps) { snprintf(r->err, sizeof(r->err), "out of memory for the loss log"); return -1; }
    tms_progress_t prog;
    tms_progress_start(&prog, P->steps, quiet);
    double mean = NAN;
    for (int k = 0; k < r->n_logs; k++) {
        long begin = (long)k * every, end = begin + every < P->steps ? begin + every : P->steps;
        float *loss = r->loss_log + (size_t)k * P->instances;
        if (be->train(be, begin, end, loss)) {
            snprintf(r->err, sizeof(r->err), "the %s backend failed at step %ld", be->name, begin);
            return -1;
        }
        r->log_steps[k] = begin;
        r->steps_done = end;
        double sum = 0.0;
        for (int i = 0; i < P->instances; i++) sum += loss[i];
        mean = sum / P->instances;
        tms_progress_update(&prog, end, mean);
    }
    tms_progress_finish(&prog, mean);
    return 0;
}

static void utc_now(char *out, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int tms_cmd_train(const tms_train_opts_t *o) {
    run_t *r = calloc(1, sizeof(run_t));
    if (!r) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    int code = TMS_EXIT_RUNTIME;
    char partial[4096], old[4096];
    int staged = 0;
    tms_backend_t be = {0};
    utc_now(r->start_time, sizeof(r->start_time));
    r->threads = o->threads > 0 ? o->threads : omp_get_max_threads();

    if (tms_spec_load(&r->spec, o->spec_path, o->overrides, o->n_overrides, r->err, sizeof(r->err))) {
        fprintf(stderr, "tms: %s\n", r->err);
        code = TMS_EXIT_USAGE;
        goto done;
    }
    if (!o->out_dir || !o->out_dir[0]) {
        fprintf(stderr, "tms: train needs --out RUNDIR\n");
        code = TMS_EXIT_USAGE;
        goto done;
    }
    if (snprintf(partial, sizeof(partial), "%s.partial", o->out_dir) >= (int)sizeof(partial)) {
        fprintf(stderr, "tms: --out path too long\n");
        code = TMS_EXIT_USAGE;
        goto done;
    }
    if (tms_path_exists(o->out_dir) && !o->force) {
        fprintf(stderr, "tms: %s already exists; choose another --out or pass --force to replace it\n", o->out_dir);
        code = TMS_EXIT_USAGE;
        goto done;
    }
    if (tms_problem_build(&r->P, &r->spec)) { fprintf(stderr, "tms: out of memory building the grid\n"); goto done; }
    tms_layout_init(&r->L, &r->P.model, r->P.instances);
    if (alloc_state(r)) { fprintf(stderr, "tms: %s\n", r->err); goto done; }
    tms_init_params(&r->P, &r->L, r->params);

    int usage_error;
    if (create_backend(r, &be, o, &usage_error)) {
        fprintf(stderr, "tms: %s\n", r->err);
        code = usage_error ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
        goto done;
    }

    // a stale .partial is from an earlier failed run of the same --out: replace it
    if (tms_remove_tree(partial) != 0) {
        fprintf(stderr, "tms: cannot remove the stale %s: %s\n", partial, strerror(errno));
        goto done;
    }
    if (tms_mkdirs(partial, r->err, sizeof(r->err))) { fprintf(stderr, "tms: %s\n", r->err); goto done; }
    staged = 1;
    if (write_manifest(r, partial, "running", NULL, o)) goto done;
    if (!o->quiet)
        fprintf(stderr, "tms: training %s: %d instance%s of n=%d, m=%d for %ld steps on %s\n", r->spec.name,
                r->P.instances, r->P.instances == 1 ? "" : "s", r->P.model.n, r->P.model.m, r->P.steps, r->device);

    double t0 = tms_now();
    if (train_loop(r, &be, o->quiet)) goto failed;
    if (be.get_state(&be, r->params, r->adam_m, r->adam_v)) {
        snprintf(r->err, sizeof(r->err), "could not copy the state back from the %s backend", be.name);
        goto failed;
    }
    r->wall_seconds = tms_now() - t0;
    be.destroy(&be);
    if (tms_cpu_eval_loss(&r->P, &r->L, r->params, r->spec.eval_samples, r->threads, r->final_loss)) {
        snprintf(r->err, sizeof(r->err), "out of memory evaluating the final loss");
        goto failed;
    }
    if (write_outputs(r, partial)) goto failed;
    if (write_manifest(r, partial, "complete", NULL, o)) goto failed;

    // publish: move an existing run aside (only with --force), rename, then delete it
    old[0] = 0;
    if (tms_path_exists(o->out_dir)) {
        snprintf(old, sizeof(old), "%s.old-%ld", o->out_dir, (long)getpid());
        if (rename(o->out_dir, old) != 0) {
            snprintf(r->err, sizeof(r->err), "cannot move the existing %s aside: %s", o->out_dir, strerror(errno));
            goto failed;
        }
    }
    if (rename(partial, o->out_dir) != 0) {
        snprintf(r->err, sizeof(r->err), "cannot rename %s to %s: %s", partial, o->out_dir, strerror(errno));
        if (old[0]) rename(old, o->out_dir);
        goto failed;
    }
    if (old[0]) tms_remove_tree(old);
    if (!o->quiet) {
        double best = INFINITY, mean = 0.0;
        for (int i = 0; i < r->P.instances; i++) {
            mean += r->final_loss[i];
            if (r->final_loss[i] < best) best = r->final_loss[i];
        }
        mean /= r->P.instances;
        fprintf(stderr,
                "tms: done in %.2f s (%.0f instance-steps/s). final loss on %ld fresh samples, mean over features: "
                "mean %.6g, best %.6g (sum over features: best %.6g)\n",
                r->wall_seconds, r->wall_seconds > 0 ? (double)r->P.instances * r->P.steps / r->wall_seconds : 0.0,
                r->spec.eval_samples, mean, best, best * r->P.model.n);
        fprintf(stderr, "tms: wrote %s/\n", o->out_dir);
    }
    code = TMS_EXIT_OK;
    goto done;

failed:
    fprintf(stderr, "tms: %s\n", r->err);
    if (be.destroy) be.destroy(&be);
    if (staged) {
        write_manifest(r, partial, "failed", r->err, o);
        fprintf(stderr, "tms: the incomplete run is in %s (manifest.json says \"failed\")\n", partial);
    }
    code = TMS_EXIT_RUNTIME;
    run_free(r);
    free(r);
    return code;
done:
    if (be.destroy && be.ctx) be.destroy(&be);
    run_free(r);
    free(r);
    return code;
}

// ----------------------------------------------------------------------------
// render: redraw images and the contact sheet from a run directory

int tms_cmd_render(const char *dir, int threads) {
    run_t *r = calloc(1, sizeof(run_t));
    if (!r) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    int code = TMS_EXIT_RUNTIME;
    char path[4096], msg[1024];
    char *text = NULL;
    cJSON *manifest = NULL;
    r->threads = threads > 0 ? threads : omp_get_max_threads();
    if (tms_join(path, sizeof(path), dir, "manifest.json") || tms_read_file(path, &text, NULL, msg, sizeof(msg))) {
        fprintf(stderr, "tms: %s is not a run directory (%s)\n", dir, msg);
        code = TMS_EXIT_USAGE;
        goto done;
    }
    manifest = cJSON_Parse(text);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(manifest, "status");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(manifest, "spec");
    if (!manifest || !cJSON_IsString(status) || !cJSON_IsObject(spec)) {
        fprintf(stderr, "tms: %s: manifest.json is not a tms manifest\n", dir);
        code = TMS_EXIT_USAGE;
        goto done;
    }
    if (strcmp(status->valuestring, "complete") != 0) {
        fprintf(stderr, "tms: %s: the run's status is \"%s\"; only complete runs can be rendered\n", dir, status->valuestring);
        code = TMS_EXIT_USAGE;
        goto done;
    }
    char *spec_text = cJSON_PrintUnformatted(spec);
    int rc = spec_text ? tms_spec_parse(&r->spec, spec_text, NULL, NULL, 0, msg, sizeof(msg)) : -1;
    cJSON_free(spec_text);
    if (rc) { fprintf(stderr, "tms: %s: the spec in manifest.json is not valid: %s\n", dir, msg); goto done; }
    if (tms_problem_build(&r->P, &r->spec)) { fprintf(stderr, "tms: out of memory\n"); goto done; }
    tms_layout_init(&r->L, &r->P.model, r->P.instances);
    if (alloc_state(r)) { fprintf(stderr, "tms: %s\n", r->err); goto done; }
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!r->L.present[t]) continue;
        long shape[3];
        int nd = tensor_shape(&r->P, t, shape);
        char name[32];
        snprintf(name, sizeof(name), "%s.npy", tms_tensor_names[t]);
        if (tms_join(path, sizeof(path), dir, name) ||
            tms_npy_read(path, r->params + r->L.offset[t], shape, nd, msg, sizeof(msg))) {
            fprintf(stderr, "tms: %s\n", msg);
            goto done;
        }
    }
    // the losses in the captions are recomputed on the same evaluation batch
    if (tms_cpu_eval_loss(&r->P, &r->L, r->params, r->spec.eval_samples, r->threads, r->final_loss)) {
        fprintf(stderr, "tms: out of memory\n");
        goto done;
    }
    if (write_images(r, dir)) { fprintf(stderr, "tms: %s\n", r->err); goto done; }
    fprintf(stderr, "tms: redrew the images of %s\n", dir);
    code = TMS_EXIT_OK;
done:
    cJSON_Delete(manifest);
    free(text);
    run_free(r);
    free(r);
    return code;
}
