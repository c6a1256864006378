// run.c: the run driver. Trains a spec (or one shard of its grid) on a backend and
// writes the run directory:
//   manifest.json, W.npy / W2.npy / b1.npy / b.npy, optimizer/*.npy, loss.npy,
//   eval_loss.npy, diverged_step.npy, instances.csv, features.csv, loss.csv,
//   images/*.png, contact_sheet.png, and with output.snapshots: snapshots/steps.npy and
//   snapshots/W.npy, ... (every instance's parameters at those steps).
// The directory is built as "<out>.partial" and renamed to "<out>" only when every
// file is written, so nothing under the final name is ever half-written. While it
// trains, "<out>.partial/checkpoint/" holds the latest checkpoint (every
// --checkpoint-every steps, and on SIGTERM/SIGINT); `train --resume <out>` continues
// from it, bit for bit as if never stopped. A run that fails keeps "<out>.partial"
// with manifest.json saying "status": "failed" and why.
//
// Integrity: one process at a time writes <out> (train, --resume, merge, render take
// "<out>.lock", a flock that dies with its process); manifest.json and
// checkpoint/checkpoint.json carry a SHA-256 of their own content ("sha256"), and of every
// array file they list ("files"), and everything read back is checked against them and
// against the spec before it is used.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
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
#include "sysmem.h"
#include "tms.h"
#include "cuda_path.h"

typedef struct {
    char err[1024];
    tms_spec_t spec;
    tms_problem_t P;                  // this run's instances: the shard's slice of the grid
    tms_layout_t L;
    int shard_k, shard_n;             // 0, 1 when the run is the whole grid
    int first_instance;               // global grid index of P.inst[0]
    int grid_instances;               // instances in the whole grid
    float *params, *adam_m, *adam_v;  // flat layout
    float *eval_loss;                 // (instances) mean over batch and features, eval batch
    float *eval_loss_se;              // (instances) its standard error
    float *loss_log;                  // (instances, n_logs): training loss at steps 0, L, 2L, ...
    int n_logs;
    // output.snapshots: per tensor t, (n_snapshots, instances, per_instance[t]) floats from
    // snapshots + n_snapshots * L.offset[t], so each tensor's snapshots are one array in the
    // order of its .npy file; snapshots_taken of them are filled (the steps <= steps_done)
    float *snapshots;
    int snapshots_taken;
    char backend_name[16];
    char device[128];
    int threads, tf32;
    char cuda_path[8];                // CUDA: the path that trained, "gemm" or "fused" (cuda_path.h)
    long steps_done;
    long checkpoint_every;
    double wall_seconds;              // training time, summed over resumes
    char start_time[32];
    const char *command;
    cJSON *sources;                   // merge: the shards it came from
    tms_lock_t lock;                  // "<out>.lock" while this process writes <out>
    char made_parent[4096];           // the parent directory of <out> when this process created it
    struct { char name[48]; char sha256[65]; } sums[32]; // the array files last written, relative to their directory
    int n_sums;
    int cpu_backend_follows;          // train on the CPU: its memory is checked with the run's
} run_t;

// manifest.json and checkpoint.json are a few kB (a merge of a million shards: some
// hundred MB); a larger one is damaged and is not read into memory
#define TMS_MAX_JSON ((size_t)1 << 30)

static run_t *run_new(void) {
    run_t *r = calloc(1, sizeof(run_t));
    if (r) r->lock.fd = -1;
    return r;
}

static void run_free(run_t *r) {
    tms_spec_free(&r->spec);
    tms_problem_free(&r->P);
    free(r->params); free(r->adam_m); free(r->adam_v);
    free(r->eval_loss); free(r->eval_loss_se); free(r->loss_log); free(r->snapshots);
    cJSON_Delete(r->sources);
}

// ----------------------------------------------------------------------------
// the writer's lock and JSON checksums

// Take "<out>.lock", creating out's parent directory if needed. Returns TMS_EXIT_OK, or
// the exit code having printed why not: 2 when another process holds it.
static int lock_out(run_t *r, const char *out, const char *who) {
    char path[4096 + 8], parent[4096], msg[1024];
    snprintf(parent, sizeof(parent), "%s", out);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) *slash = 0;
    else snprintf(parent, sizeof(parent), "%s", slash ? "/" : ".");
    struct stat st;
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) { // tms_mkdirs says why when it cannot be made
        int existed = tms_path_exists(parent);
        if (tms_mkdirs(parent, msg, sizeof(msg))) { fprintf(stderr, "%s: %s\n", who, msg); return TMS_EXIT_RUNTIME; }
        if (!existed) snprintf(r->made_parent, sizeof(r->made_parent), "%s", parent);
    }
    snprintf(path, sizeof(path), "%s.lock", out);
    int rc = tms_lock_acquire(&r->lock, path, msg, sizeof(msg));
    if (rc == 1) {
        fprintf(stderr, "%s: %s is being written by another process: %s. Refusing to write it too; "
                        "wait for that process to end (or stop it), then run this again\n", who, out, msg);
        return TMS_EXIT_USAGE;
    }
    if (rc == 2) { // refusing to run at all there would make tms useless on such a cluster
        fprintf(stderr, "%s: warning: %s; a second process writing %s at the same time would not be detected\n", who,
                msg, out);
        return TMS_EXIT_OK;
    }
    if (rc) { fprintf(stderr, "%s: %s\n", who, msg); return TMS_EXIT_RUNTIME; }
    return TMS_EXIT_OK;
}

// Release the lock; after a refusal also remove the parent directory lock_out created.
static void unlock_out(run_t *r, int refused) {
    tms_lock_release(&r->lock);
    if (refused && r->made_parent[0]) rmdir(r->made_parent); // only when empty
    r->made_parent[0] = 0;
}

// The SHA-256 of a JSON value as cJSON prints it compactly after a round trip through its
// own text: the value as any later reader parses it from a file, so the same whether v was
// built in memory (raw number text, doubles cJSON prints with 15 digits) or parsed back from
// any formatting of its print (for a parsed value the round trip changes nothing).
// Returns -1 when out of memory.
static int json_sha256(const cJSON *v, char hex[65]) {
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    cJSON *back = text ? cJSON_Parse(text) : NULL;
    cJSON_free(text);
    text = back ? cJSON_PrintUnformatted(back) : NULL;
    cJSON_Delete(back);
    if (!text) return -1;
    tms_sha256_hex(text, strlen(text), hex);
    cJSON_free(text);
    return 0;
}

// Add "sha256": the checksum of the object as it is (without that key).
static int json_seal(cJSON *o) {
    char hex[65];
    if (json_sha256(o, hex)) return -1;
    return cJSON_AddStringToObject(o, "sha256", hex) ? 0 : -1;
}

// Check and remove the "sha256" json_seal added. Returns 0, or -1 with a message naming path.
static int json_unseal(cJSON *o, const char *path, char *err, size_t errlen) {
    cJSON *seal = cJSON_DetachItemFromObjectCaseSensitive(o, "sha256");
    char hex[65];
    int rc = -1;
    if (!cJSON_IsString(seal))
        snprintf(err, errlen, "%s has no checksum (\"sha256\"): written by a tms without checksums, or damaged; "
                              "tms does not trust it", path);
    else if (json_sha256(o, hex))
        snprintf(err, errlen, "out of memory checking %s", path);
    else if (strcmp(hex, seal->valuestring) != 0)
        snprintf(err, errlen, "%s: its content does not match its checksum (\"sha256\"): the file is damaged or was "
                              "edited; tms does not trust it", path);
    else
        rc = 0;
    cJSON_Delete(seal);
    return rc;
}

// An integer field within [lo, hi]. Returns 0, or -1 with a message naming it.
static int json_long(const cJSON *o, const char *key, long lo, long hi, long *out, const char *where, char *err,
                     size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)lo && v->valuedouble <= (double)hi) ||
        v->valuedouble != floor(v->valuedouble)) {
        char *text = v ? cJSON_PrintUnformatted(v) : NULL;
        snprintf(err, errlen, "%s: \"%s\" is %s; expected an integer in [%ld, %ld]", where, key, text ? text : "missing", lo, hi);
        cJSON_free(text);
        return -1;
    }
    *out = (long)v->valuedouble;
    return 0;
}

// A finite, non-negative number.
static int json_seconds(const cJSON *o, const char *key, double *out, const char *where, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a non-negative number of seconds", where, key);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static void utc_now(char *out, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// ----------------------------------------------------------------------------
// the instances of a run: the grid, or one shard of it

void tms_shard_slice(int instances, int seeds, int k, int n, int *first, int *count) {
    long points = instances / seeds;
    long p0 = points * k / n, p1 = points * (k + 1) / n;
    *first = (int)(p0 * seeds);
    *count = (int)((p1 - p0) * seeds);
}

// Build the problem of shard k/n of r->spec and allocate the run's state.
static int run_setup(run_t *r, int k, int n) {
    if (tms_problem_build(&r->P, &r->spec)) { snprintf(r->err, sizeof(r->err), "out of memory building the grid"); return -1; }
    r->grid_instances = r->P.instances;
    r->shard_k = k;
    r->shard_n = n;
    int first, count;
    // count may be 0: a shard beyond the grid's points (--shard K/N with N larger than the
    // grid, as a Slurm array sized for a bigger sweep gives) is a valid run of 0 instances,
    // and merges with the others
    tms_shard_slice(r->P.instances, r->spec.seeds, k, n, &first, &count);
    const int nf = r->P.model.n;
    memmove(r->P.inst, r->P.inst + first, (size_t)count * sizeof(tms_instance_t));
    memmove(r->P.importance, r->P.importance + (size_t)first * nf, (size_t)count * nf * sizeof(float));
    r->P.instances = count;
    r->first_instance = first;
    tms_layout_init(&r->L, &r->P.model, count);
    size_t total = r->L.total ? r->L.total : 1;
    r->n_logs = (int)((r->spec.steps + r->spec.log_every - 1) / r->spec.log_every);
    {
        // parameters, Adam moments, the loss log and the eval losses, checked before they are
        // allocated (the backend checks its own share when it is created)
        const char *limit;
        // and the snapshots, which stay in memory until the run ends
        double need = ((3.0 + r->spec.n_snapshots) * total + (double)count * (r->n_logs + 2)) * sizeof(float);
        // and the CPU backend's, in the same check: pages allocated but not yet touched do not
        // count as used in a cgroup, so two checks in sequence would both pass and the run
        // would then outgrow its limit
        if (r->cpu_backend_follows)
            need += (double)tms_cpu_backend_bytes(&r->P, &r->L, r->threads < count ? r->threads : count);
        // drawing: each thread's instance picture (its surfaces, W^T W, ...), then the sheet
        if ((r->spec.images || r->spec.contact_sheet) && count > 0 && r->spec.max_images > 0) {
            double pictures = r->spec.images ? (r->threads > 0 ? r->threads : 1) * tms_render_instance_bytes(&r->P.model) : 0.0;
            double sheet = r->spec.contact_sheet ? tms_render_contact_sheet_bytes(&r->P.model, r->spec.max_images) : 0.0;
            need += pictures > sheet ? pictures : sheet;
        }
        size_t avail = tms_memory_available(&limit);
        if (need > (double)avail) {
            char a[32], b[32];
            tms_format_bytes(a, sizeof(a), need);
            tms_format_bytes(b, sizeof(b), (double)avail);
            snprintf(r->err, sizeof(r->err), "not enough memory: %d instances of n=%d, m=%d need %s for their "
                     "parameters, Adam moments, loss log (%d log points), snapshots (%d), images and backend but %s leaves "
                     "%s; train fewer instances at a time (--shard K/N), a smaller model, a larger train.log_every, "
                     "fewer output.snapshots or output.images false", count, nf, r->P.model.m, a, r->n_logs,
                     r->spec.n_snapshots, limit, b);
            return -1;
        }
    }
    r->params = calloc(total, sizeof(float));
    r->adam_m = calloc(total, sizeof(float));
    r->adam_v = calloc(total, sizeof(float));
    r->eval_loss = calloc((size_t)(count ? count : 1), sizeof(float));
    r->eval_loss_se = calloc((size_t)(count ? count : 1), sizeof(float));
    r->loss_log = malloc((size_t)(count ? count : 1) * r->n_logs * sizeof(float));
    r->snapshots = calloc((size_t)(r->spec.n_snapshots ? r->spec.n_snapshots : 1) * total, sizeof(float));
    if (!r->params || !r->adam_m || !r->adam_v || !r->eval_loss || !r->eval_loss_se || !r->loss_log || !r->snapshots) {
        snprintf(r->err, sizeof(r->err), "out of memory for %d instances (%zu parameters)", count, r->L.total);
        return -1;
    }
    for (size_t e = 0; e < (size_t)count * r->n_logs; e++) r->loss_log[e] = NAN;
    r->snapshots_taken = r->spec.n_snapshots; // a complete run's files hold them all; training counts from 0
    return 0;
}

// How many of the spec's snapshot steps are at most `step` (those taken once `step` steps are done).
static int snapshots_upto(const run_t *r, long step) {
    int k = 0;
    while (k < r->spec.n_snapshots && r->spec.snapshot_steps[k] <= step) k++;
    return k;
}

// ----------------------------------------------------------------------------
// manifest

// The shape of tensor t with instances leading: W (I, m, n), W2 (I, n, m), b1 (I, m), b (I, n).
static int tensor_shape(const tms_problem_t *P, int t, long instances, long shape[3]) {
    shape[0] = instances;
    if (t == TMS_T_W) { shape[1] = P->model.m; shape[2] = P->model.n; return 3; }
    if (t == TMS_T_W2) { shape[1] = P->model.n; shape[2] = P->model.m; return 3; }
    shape[1] = t == TMS_T_B1 ? P->model.m : P->model.n;
    return 2;
}

static int write_manifest(const run_t *r, const char *dir, const char *status, const char *error) {
    cJSON *m = cJSON_CreateObject();
    if (!m) return -1;
    cJSON_AddStringToObject(m, "tms_version", TMS_VERSION);
    cJSON_AddStringToObject(m, "git_commit", TMS_GIT_COMMIT);
    cJSON_AddStringToObject(m, "status", status);
    if (error) cJSON_AddStringToObject(m, "error", error);
    if (r->command) cJSON_AddStringToObject(m, "command", r->command);
    cJSON_AddStringToObject(m, "backend", r->backend_name);
    cJSON_AddStringToObject(m, "device", r->device);
    if (strcmp(r->backend_name, "cpu") == 0) cJSON_AddNumberToObject(m, "threads", r->threads);
    if (strcmp(r->backend_name, "cuda") == 0) cJSON_AddBoolToObject(m, "tf32", r->tf32);
    if (strcmp(r->backend_name, "cuda") == 0) cJSON_AddStringToObject(m, "cuda_path", r->cuda_path);
    cJSON_AddStringToObject(m, "start_time", r->start_time);
    cJSON_AddNumberToObject(m, "wall_seconds", r->wall_seconds);
    cJSON_AddNumberToObject(m, "steps_completed", (double)r->steps_done);
    cJSON_AddNumberToObject(m, "checkpoint_every", (double)r->checkpoint_every);
    cJSON_AddNumberToObject(m, "instances", r->P.instances);
    cJSON *shard = cJSON_AddObjectToObject(m, "shard");
    cJSON_AddNumberToObject(shard, "index", r->shard_k);
    cJSON_AddNumberToObject(shard, "count", r->shard_n);
    cJSON_AddNumberToObject(shard, "first_instance", r->first_instance);
    cJSON_AddNumberToObject(shard, "grid_instances", r->grid_instances);
    int diverged = 0;
    for (int i = 0; i < r->P.instances; i++) diverged += r->P.inst[i].diverged_step != 0;
    cJSON_AddNumberToObject(m, "diverged_instances", diverged);
    cJSON_AddStringToObject(m, "init", "xavier_normal per instance: std = sqrt(2 / (n_features + n_hidden))");
    cJSON_AddStringToObject(m, "loss_normalisation",
                            "loss_mean_features = mean over batch and features of I_i (t_i - x'_i)^2 (the notebook's), "
                            "target t = x, or |x| for data.task abs; "
                            "loss_sum_features = n_features * loss_mean_features (the paper's)");
    cJSON *tensors = cJSON_AddObjectToObject(m, "tensors");
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!r->L.present[t]) continue;
        long shape[3];
        int nd = tensor_shape(&r->P, t, r->P.instances, shape);
        double dims[3] = {(double)shape[0], (double)shape[1], (double)shape[2]};
        cJSON_AddItemToObject(tensors, tms_tensor_names[t], cJSON_CreateDoubleArray(dims, nd));
    }
    if (r->spec.n_snapshots > 0) { // additive: the steps output.snapshots resolved to, and the files
        cJSON *snap = cJSON_AddObjectToObject(m, "snapshots");
        cJSON *steps = cJSON_AddArrayToObject(snap, "steps");
        for (int k = 0; k < r->spec.n_snapshots; k++)
            cJSON_AddItemToArray(steps, cJSON_CreateNumber((double)r->spec.snapshot_steps[k]));
        cJSON_AddNumberToObject(snap, "taken", r->snapshots_taken);
        cJSON_AddStringToObject(snap, "layout", "snapshots/steps.npy (snapshot,) int64, and per parameter "
                                "snapshots/NAME.npy float32 shaped (snapshot, instance, ...): the parameters after "
                                "that many steps (0: the initialisation)");
    }
    if (strcmp(status, "complete") == 0) { // the arrays written last (write_outputs), with their checksums
        cJSON *files = cJSON_AddObjectToObject(m, "files");
        for (int f = 0; f < r->n_sums; f++) cJSON_AddStringToObject(files, r->sums[f].name, r->sums[f].sha256);
    }
    if (r->sources) cJSON_AddItemReferenceToObject(m, "merged_from", r->sources);
    cJSON_AddItemReferenceToObject(m, "spec", r->spec.resolved);
    char *text = json_seal(m) ? NULL : cJSON_Print(m);
    cJSON_Delete(m);
    if (!text) { fprintf(stderr, "tms: out of memory writing manifest.json\n"); return -1; }
    char path[4096], err[512];
    int rc = tms_join(path, sizeof(path), dir, "manifest.json");
    size_t len = strlen(text);
    text[len] = '\n'; // cJSON_Print leaves room for the terminator; reuse it for a newline
    if (!rc) rc = tms_write_file_atomic(path, text, len + 1, err, sizeof(err));
    if (rc) fprintf(stderr, "tms: %s\n", err);
    cJSON_free(text);
    return rc;
}

// Parse DIR/manifest.json and check its checksum. Returns NULL with a message in err.
static cJSON *read_manifest(const char *dir, char *err, size_t errlen) {
    char path[4096], msg[1024] = "path too long";
    char *text = NULL;
    if (tms_join(path, sizeof(path), dir, "manifest.json") ||
        tms_read_file_max(path, &text, NULL, TMS_MAX_JSON, msg, sizeof(msg))) {
        snprintf(err, errlen, "%s is not a run directory (%s)", dir, msg);
        return NULL;
    }
    cJSON *m = cJSON_Parse(text);
    free(text);
    if (!m || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "status")) ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "spec"))) {
        snprintf(err, errlen, "%s is not a tms manifest (damaged?)", path);
        cJSON_Delete(m);
        return NULL;
    }
    if (json_unseal(m, path, err, errlen)) { cJSON_Delete(m); return NULL; }
    return m;
}

static const char *manifest_string(const cJSON *m, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double manifest_number(const cJSON *m, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

// r->spec from a manifest's resolved spec.
static int spec_from_manifest(run_t *r, const cJSON *m, const char *dir) {
    char msg[1024];
    // from the parsed numbers, not a reprint of them (cJSON prints some doubles inexactly)
    int rc = tms_spec_from_json(&r->spec, cJSON_GetObjectItemCaseSensitive(m, "spec"), msg, sizeof(msg));
    if (rc) snprintf(r->err, sizeof(r->err), "%s: the spec in manifest.json is not valid: %s", dir, msg);
    return rc;
}

// Set up r from a manifest: its spec and shard, every number checked against the spec's
// grid before use. Returns 0; -2 when the manifest is inconsistent (r->err says how);
// -1 out of memory.
static int run_from_manifest(run_t *r, const cJSON *m, const char *dir) {
    char where[4200];
    snprintf(where, sizeof(where), "%s/manifest.json", dir);
    if (spec_from_manifest(r, m, dir)) return -2;
    const cJSON *shard = cJSON_GetObjectItemCaseSensitive(m, "shard");
    long n, k, first, count, grid, steps, every;
    if (!cJSON_IsObject(shard)) { snprintf(r->err, sizeof(r->err), "%s: no \"shard\" object", where); return -2; }
    if (json_long(shard, "count", 1, INT_MAX, &n, where, r->err, sizeof(r->err)) ||
        json_long(shard, "index", 0, n - 1, &k, where, r->err, sizeof(r->err)) ||
        json_long(m, "steps_completed", 0, r->spec.steps, &steps, where, r->err, sizeof(r->err)) ||
        json_long(m, "checkpoint_every", 0, (long)1 << 53, &every, where, r->err, sizeof(r->err)) ||
        json_seconds(m, "wall_seconds", &r->wall_seconds, where, r->err, sizeof(r->err)))
        return -2;
    int rc = run_setup(r, (int)k, (int)n);
    if (rc) return rc == -2 ? -2 : -1;
    if (json_long(shard, "first_instance", r->first_instance, r->first_instance, &first, where, r->err, sizeof(r->err)) ||
        json_long(m, "instances", r->P.instances, r->P.instances, &count, where, r->err, sizeof(r->err)) ||
        json_long(shard, "grid_instances", r->grid_instances, r->grid_instances, &grid, where, r->err, sizeof(r->err))) {
        size_t used = strlen(r->err);
        snprintf(r->err + used, sizeof(r->err) - used, " (the values shard %ld/%ld of its spec's grid has)", k, n);
        return -2;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// state files: parameters, Adam moments, the loss log, divergence, eval losses.
// Instances [first, first + count) of r's buffers go to (or come from) a directory
// whose arrays hold exactly those instances (a run's own, or one shard's).

enum { STATE_TRAINING = 0, STATE_FINAL = 1 };

// One array file `name` (relative to dir) of shape (shape, nd): written, its checksum added
// to r->sums; or read, checked against the checksum `files` records for it. Returns 0,
// -2 when a file read is missing or not what was recorded, -1 on another failure.
static int array_io(run_t *r, const char *dir, const char *name, tms_npy_dtype_t dtype, void *data, const long *shape,
                    int nd, int writing, const cJSON *files) {
    char path[4096];
    if (tms_join(path, sizeof(path), dir, name)) {
        snprintf(r->err, sizeof(r->err), "path too long: %s", dir);
        return -1;
    }
    if (writing) {
        if (r->n_sums >= (int)(sizeof(r->sums) / sizeof(r->sums[0]))) {
            snprintf(r->err, sizeof(r->err), "too many files");
            return -1;
        }
        snprintf(r->sums[r->n_sums].name, sizeof(r->sums[0].name), "%s", name);
        if (tms_npy_save(path, dtype, data, shape, nd, r->sums[r->n_sums].sha256, r->err, sizeof(r->err))) return -1;
        r->n_sums++;
        return 0;
    }
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(files, name);
    if (!cJSON_IsString(sum) || strlen(sum->valuestring) != 64) {
        snprintf(r->err, sizeof(r->err), "%s: no checksum recorded for it (\"files\" of the manifest or checkpoint.json); "
                                         "tms does not trust it", path);
        return -2;
    }
    return tms_npy_load(path, dtype, data, shape, nd, sum->valuestring, r->err, sizeof(r->err));
}

static int tensors_io(run_t *r, const char *dir, float *buffer, const char *prefix, int first, int count, int writing,
                      const cJSON *files) {
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!r->L.present[t]) continue;
        long shape[3];
        int nd = tensor_shape(&r->P, t, count, shape);
        char name[64];
        snprintf(name, sizeof(name), "%s%s.npy", prefix, tms_tensor_names[t]);
        float *data = buffer + r->L.offset[t] + r->L.per_instance[t] * (size_t)first;
        int rc = array_io(r, dir, name, TMS_NPY_F32, data, shape, nd, writing, files);
        if (rc) return rc;
    }
    return 0;
}

// The snapshots taken so far of instances [first, first + count): snapshots/steps.npy and
// snapshots/NAME.npy (taken, count, ...). Reading a slice of the run's instances (a shard,
// for merge) goes through a scratch buffer: the file's rows are the slice's, the buffer's
// every instance's. Returns as array_io.
static int snapshots_io(run_t *r, const char *dir, int first, int count, int writing, const cJSON *files) {
    const int taken = r->snapshots_taken, total = r->P.instances;
    const int S = r->spec.n_snapshots;
    char sdir[4096];
    if (tms_join(sdir, sizeof(sdir), dir, "snapshots")) { snprintf(r->err, sizeof(r->err), "path too long"); return -1; }
    if (writing && tms_mkdirs(sdir, r->err, sizeof(r->err))) return -1;
    int64_t *steps = malloc((size_t)(taken ? taken : 1) * sizeof(int64_t));
    if (!steps) { snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    for (int k = 0; k < taken; k++) steps[k] = r->spec.snapshot_steps[k];
    long sshape[1] = {taken};
    int rc = array_io(r, dir, "snapshots/steps.npy", TMS_NPY_I64, steps, sshape, 1, writing, files);
    for (int k = 0; k < taken && !writing && !rc; k++)
        if (steps[k] != r->spec.snapshot_steps[k]) {
            snprintf(r->err, sizeof(r->err), "%s/snapshots/steps.npy: snapshot %d is of step %lld, but the spec's "
                     "output.snapshots says %ld", dir, k, (long long)steps[k], r->spec.snapshot_steps[k]);
            rc = -2;
        }
    free(steps);
    for (int t = 0; t < TMS_NTENSORS && !rc; t++) {
        if (!r->L.present[t]) continue;
        long shape[4], inner[3];
        int nd = tensor_shape(&r->P, t, count, inner);
        shape[0] = taken;
        for (int d = 0; d < nd; d++) shape[d + 1] = inner[d];
        const size_t per = r->L.per_instance[t];
        float *all = r->snapshots + (size_t)S * r->L.offset[t]; // (S, total, per)
        char name[64];
        snprintf(name, sizeof(name), "snapshots/%s.npy", tms_tensor_names[t]);
        if (writing || (first == 0 && count == total)) {
            rc = array_io(r, dir, name, TMS_NPY_F32, all, shape, nd + 1, writing, files);
            continue;
        }
        const size_t floats = (size_t)taken * count * per;
        float *part = malloc((floats ? floats : 1) * sizeof(float));
        if (!part) { snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
        rc = array_io(r, dir, name, TMS_NPY_F32, part, shape, nd + 1, 0, files);
        for (int k = 0; k < taken && !rc; k++)
            memcpy(all + ((size_t)k * total + first) * per, part + (size_t)k * count * per, (size_t)count * per * sizeof(float));
        free(part);
    }
    return rc;
}

// The state files of instances [first, first + count) in dir. Writing records their
// checksums in r->sums (names relative to dir); reading checks them against `files`.
// Returns 0, -2 (a file missing, damaged or not matching the spec), -1 (other failure).
static int state_io(run_t *r, const char *dir, int first, int count, int what, int writing, const cJSON *files) {
    char optdir[4096];
    int rc;
    if (writing) r->n_sums = 0;
    if ((rc = tensors_io(r, dir, r->params, "", first, count, writing, files))) return rc;
    if (tms_join(optdir, sizeof(optdir), dir, "optimizer")) {
        snprintf(r->err, sizeof(r->err), "path too long");
        return -1;
    }
    if (writing && tms_mkdirs(optdir, r->err, sizeof(r->err))) return -1;
    if ((rc = tensors_io(r, dir, r->adam_m, "optimizer/adam_m_", first, count, writing, files))) return rc;
    if ((rc = tensors_io(r, dir, r->adam_v, "optimizer/adam_v_", first, count, writing, files))) return rc;
    long shape[2] = {count, r->n_logs};
    rc = array_io(r, dir, "loss.npy", TMS_NPY_F32, r->loss_log + (size_t)first * r->n_logs, shape, 2, writing, files);
    if (rc) return rc;
    int64_t *div = malloc((size_t)(count ? count : 1) * sizeof(int64_t));
    if (!div) { snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    for (int i = 0; i < count && writing; i++) div[i] = r->P.inst[first + i].diverged_step;
    rc = array_io(r, dir, "diverged_step.npy", TMS_NPY_I64, div, shape, 1, writing, files);
    for (int i = 0; i < count && !writing && !rc; i++) {
        // 0 healthy, s + 1 diverged at step s < steps, -1 diverged at an unknown step
        if (div[i] < -1 || div[i] > r->spec.steps) {
            snprintf(r->err, sizeof(r->err), "%s/diverged_step.npy: instance %d holds %lld, outside [-1, %ld]", dir,
                     r->first_instance + first + i, (long long)div[i], r->spec.steps);
            rc = -2;
            break;
        }
        r->P.inst[first + i].diverged_step = (long)div[i];
    }
    free(div);
    if (rc) return rc;
    if (r->spec.n_snapshots > 0 && (rc = snapshots_io(r, dir, first, count, writing, files))) return rc;
    if (what == STATE_FINAL) {
        rc = array_io(r, dir, "eval_loss.npy", TMS_NPY_F32, r->eval_loss + first, shape, 1, writing, files);
        if (rc) return rc;
        return array_io(r, dir, "eval_loss_se.npy", TMS_NPY_F32, r->eval_loss_se + first, shape, 1, writing, files);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// tables and images

// csv output through an atomic file; fprintf errors are caught at commit (ferror)
static int csv_open(run_t *r, tms_atomic_t *a, const char *dir, const char *name) {
    char path[4096];
    if (tms_join(path, sizeof(path), dir, name)) { snprintf(r->err, sizeof(r->err), "path too long"); return -1; }
    return tms_atomic_open(a, path, r->err, sizeof(r->err));
}

// best_of_replicates: 1 for the replicate with the lowest final loss of each grid point
// (a diverged replicate, whose loss is NaN, is never the best unless all are)
static void best_replicates(const run_t *r, int *best) {
    const tms_problem_t *P = &r->P;
    for (int i = 0; i < P->instances; i++) best[i] = 0;
    int i = 0;
    while (i < P->instances) {
        int j = i, arg = i;
        while (j < P->instances && P->inst[j].grid_point == P->inst[i].grid_point) {
            if (r->eval_loss[j] < r->eval_loss[arg] || isnan(r->eval_loss[arg])) arg = j;
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
    // Hyperparameters are written from the spec's doubles, not the float copies training
    // uses, and every number as the shortest text that reads back as the same value: pandas'
    // inst[inst.density == 0.05] selects the density-0.05 rows. Computed values (losses,
    // geometry) are floats and read back as the same float.
    fprintf(ai.fp, "instance,grid_point,density,importance_decay,importance_index,lr,weight_decay,seed,replicate,"
                   "philox_key,loss_mean_features,loss_sum_features,loss_mean_features_se,loss_sum_features_se,"
                   "dims_per_feature,n_represented,best_of_replicates,diverged,diverged_step\n");
    fprintf(af.fp, "instance,feature,importance,norm,superposition,dimensionality,bias\n");
    const tms_spec_t *sp = &r->spec;
    for (int i = 0; i < P->instances; i++) {
        const tms_instance_t *in = &P->inst[i];
        tms_view_t v = tms_view(&r->L, r->params, i);
        tms_feature_geometry(v.W, m, n, norm, sup, dim);
        int represented = 0;
        for (int f = 0; f < n; f++) represented += norm[f] > 0.5f;
        // the grid point's axes: point = (((density * I + importance) * L + lr) * D + wd) * S + seed
        long point = in->grid_point;
        point /= sp->n_seed;
        const int wd_i = (int)(point % sp->n_weight_decay); point /= sp->n_weight_decay;
        const int lr_i = (int)(point % sp->n_lr); point /= sp->n_lr;
        point /= sp->n_importance;
        const int density_i = (int)point;
        char density[32], lr[32], wd[32], decay[32] = "", dstep[32] = "", text[5][32];
        tms_format_double(density, sizeof(density), sp->density[density_i]);
        tms_format_double(lr, sizeof(lr), sp->lr[lr_i]);
        tms_format_double(wd, sizeof(wd), sp->weight_decay[wd_i]);
        if (!sp->importance_explicit)
            tms_format_double(decay, sizeof(decay), sp->importance_decay[in->importance_index]);
        if (in->diverged_step > 0) snprintf(dstep, sizeof(dstep), "%ld", in->diverged_step - 1);
        tms_format_float(text[0], sizeof(text[0]), r->eval_loss[i]);
        tms_format_float(text[1], sizeof(text[1]), r->eval_loss[i] * n);
        tms_format_float(text[2], sizeof(text[2]), r->eval_loss_se[i]);
        tms_format_float(text[3], sizeof(text[3]), r->eval_loss_se[i] * n);
        tms_format_float(text[4], sizeof(text[4]), tms_dims_per_feature(v.W, m, n));
        fprintf(ai.fp, "%d,%d,%s,%s,%d,%s,%s,%llu,%d,%llu,%s,%s,%s,%s,%s,%d,%d,%d,%s\n", r->first_instance + i,
                in->grid_point, density, decay, in->importance_index, lr, wd, (unsigned long long)in->seed,
                in->replicate, (unsigned long long)in->key, text[0], text[1], text[2], text[3], text[4], represented,
                best[i], in->diverged_step != 0, dstep);
        for (int f = 0; f < n; f++) {
            char imp[32], bias[32] = "";
            // the importance as the spec gives it: the listed value, or r^f in double
            tms_format_double(imp, sizeof(imp), sp->importance_explicit
                                                    ? sp->importance_values[(size_t)in->importance_index * n + f]
                                                    : pow(sp->importance_decay[in->importance_index], (double)f));
            if (v.b) tms_format_float(bias, sizeof(bias), v.b[f]);
            tms_format_float(text[0], sizeof(text[0]), norm[f]);
            tms_format_float(text[1], sizeof(text[1]), sup[f]);
            tms_format_float(text[2], sizeof(text[2]), dim[f]);
            fprintf(af.fp, "%d,%d,%s,%s,%s,%s,%s\n", r->first_instance + i, f, imp, text[0], text[1], text[2], bias);
        }
    }
    if (csv_open(r, &al, dir, "loss.csv")) goto out2;
    fprintf(al.fp, "instance,step,loss_mean_features,loss_sum_features\n");
    for (int i = 0; i < P->instances; i++)
        for (int k = 0; k < r->n_logs; k++) {
            float l = r->loss_log[(size_t)i * r->n_logs + k];
            char a[32], b[32];
            tms_format_float(a, sizeof(a), l);
            tms_format_float(b, sizeof(b), l * n);
            fprintf(al.fp, "%d,%ld,%s,%s\n", r->first_instance + i, (long)k * r->spec.log_every, a, b);
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
    // the grid's axes that vary, with the spec's names
    char lr[32] = "", wd[32] = "", imp[32] = "";
    if (r->spec.n_lr > 1) snprintf(lr, sizeof(lr), "  lr %.3g", in->lr);
    if (r->spec.n_weight_decay > 1) snprintf(wd, sizeof(wd), "  weight_decay %.3g", in->weight_decay);
    if (r->spec.n_importance > 1) snprintf(imp, sizeof(imp), "  importance #%d", in->importance_index);
    snprintf(label, labellen, "#%d  density %.3g%s%s%s  seed %llu  rep %d%s", r->first_instance + i, in->density, lr,
             wd, imp, (unsigned long long)in->seed, in->replicate, in->diverged_step ? "  DIVERGED" : "");
    tms_render_item_t item = {&r->P.model, v.W, v.W2, v.b, r->P.importance + (size_t)i * r->P.model.n,
                              in->density, r->eval_loss[i], label};
    return item;
}

// ----------------------------------------------------------------------------
// which instances get pictures

// k of `total` spread evenly over them, first and last included: the (k' * (total - 1) /
// (k - 1))-th for k' = 0 .. k - 1 (strictly increasing when k <= total).
static long spread_pick(long kk, long k, long total) { return k > 1 ? kk * (total - 1) / (k - 1) : 0; }

// The best replicate of every grid point (every instance when seeds == 1); when there are
// more than cap (cap < 0: no cap), cap of them spread evenly over the grid, so a sweep whose
// slowest axis is density gets pictures at every density. *sel (local indices, ascending)
// is the caller's to free. -1 on out of memory.
static int select_best(run_t *r, long cap, int **sel, int *count) {
    const int I = r->P.instances;
    int *best = malloc((size_t)(I ? I : 1) * sizeof(int));
    if (!best) { snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    best_replicates(r, best);
    long points = 0;
    for (int i = 0; i < I; i++) points += best[i];
    long take = cap >= 0 && cap < points ? cap : points;
    *sel = malloc((size_t)(take ? take : 1) * sizeof(int));
    if (!*sel) { free(best); snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    long g = 0, k = 0;
    for (int i = 0; i < I && k < take; i++)
        if (best[i]) {
            if (g == spread_pick(k, take, points)) (*sel)[k++] = i;
            g++;
        }
    *count = (int)k;
    free(best);
    return 0;
}

// --instances LIST: comma-separated instance numbers and ranges A-B (the grid's indices, as
// in instances.csv), each listed once, within the run's instances. Returns 0, or -2 with
// the message in r->err (bad input).
static int parse_instance_list(run_t *r, const char *list, int **sel, int *count) {
    const long lo = r->first_instance, hi = (long)r->first_instance + r->P.instances - 1;
    char *mark = calloc((size_t)(r->P.instances ? r->P.instances : 1), 1);
    if (!mark) { snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    const char *p = list;
    int rc = 0;
    if (!*p) rc = -2;
    while (*p && !rc) {
        long a, b;
        char *end;
        const char *item = p;
        if (!(*p >= '0' && *p <= '9')) { rc = -2; break; }
        errno = 0;
        a = strtol(p, &end, 10);
        if (errno == ERANGE) a = LONG_MAX;
        b = a;
        p = end;
        if (*p == '-') {
            p++;
            if (!(*p >= '0' && *p <= '9')) { rc = -2; break; }
            errno = 0;
            b = strtol(p, &end, 10);
            if (errno == ERANGE) b = LONG_MAX;
            p = end;
        }
        if (*p && *p != ',') { rc = -2; break; }
        int item_len = (int)(p - item);
        if (*p == ',') {
            p++;
            if (!*p) { rc = -2; break; } // a trailing comma
        }
        if (b < a) {
            snprintf(r->err, sizeof(r->err), "--instances %s: the range %.*s is empty (its end is before its start)",
                     list, item_len, item);
            rc = -3;
            break;
        }
        if (a < lo || b > hi) {
            snprintf(r->err, sizeof(r->err), "--instances %s: %.*s is outside the run's instances %ld-%ld", list,
                     item_len, item, lo, hi);
            rc = -3;
            break;
        }
        for (long i = a; i <= b && !rc; i++) {
            if (mark[i - lo]) {
                snprintf(r->err, sizeof(r->err), "--instances %s: instance %ld is listed twice", list, i);
                rc = -3;
            }
            mark[i - lo] = 1;
        }
    }
    if (rc == -2)
        snprintf(r->err, sizeof(r->err), "--instances '%s': expected instance numbers and ranges separated by "
                 "commas (e.g. 0,5,10-20), best or all", list);
    if (rc) { free(mark); return -2; }
    int k = 0;
    for (int i = 0; i < r->P.instances; i++) k += mark[i];
    *sel = malloc((size_t)(k ? k : 1) * sizeof(int));
    if (!*sel) { free(mark); snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    *count = 0;
    for (int i = 0; i < r->P.instances; i++)
        if (mark[i]) (*sel)[(*count)++] = i;
    free(mark);
    return 0;
}

// A selection by name: NULL (the default: select_best capped at output.max_images), "best"
// (every grid point's best replicate), "all", or a list. 0, -1 (out of memory), -2 (bad list).
static int select_instances(run_t *r, const char *how, int **sel, int *count) {
    if (!how) return select_best(r, r->spec.max_images, sel, count);
    if (!strcmp(how, "best")) return select_best(r, -1, sel, count);
    if (!strcmp(how, "all")) {
        *sel = malloc((size_t)(r->P.instances ? r->P.instances : 1) * sizeof(int));
        if (!*sel) { snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
        for (int i = 0; i < r->P.instances; i++) (*sel)[i] = i;
        *count = r->P.instances;
        return 0;
    }
    return parse_instance_list(r, how, sel, count);
}

// Images of the selected instances (sel: local indices, ascending), and a contact sheet of
// them (at most TMS_SHEET_MAX, spread evenly over the selection). *on_sheet: how many.
static int write_images(run_t *r, const char *dir, const int *sel, int count, int *on_sheet) {
    const tms_spec_t *s = &r->spec;
    char imgdir[4096], path[4096];
    if (on_sheet) *on_sheet = 0;
    if (s->images && count > 0) {
        if (tms_join(imgdir, sizeof(imgdir), dir, "images") || tms_mkdirs(imgdir, r->err, sizeof(r->err))) return -1;
        int failed = 0;
        #pragma omp parallel for schedule(dynamic, 1) num_threads(r->threads) reduction(|:failed)
        for (int k = 0; k < count; k++) {
            char label[128], err[512], ipath[4096], iname[64];
            tms_render_item_t item = render_item(r, sel[k], label, sizeof(label));
            snprintf(iname, sizeof(iname), "instance_%05d.png", r->first_instance + sel[k]);
            if (tms_join(ipath, sizeof(ipath), imgdir, iname) || tms_render_instance(ipath, &item, err, sizeof(err))) {
                #pragma omp critical
                snprintf(r->err, sizeof(r->err), "%s", err);
                failed = 1;
            }
        }
        if (failed) return -1;
    }
    if (s->contact_sheet && count > 0) {
        int take = count < TMS_SHEET_MAX ? count : TMS_SHEET_MAX;
        tms_render_item_t *items = malloc((size_t)take * sizeof(*items));
        char (*labels)[128] = malloc((size_t)take * sizeof(*labels));
        if (!items || !labels) {
            free(items); free(labels);
            snprintf(r->err, sizeof(r->err), "out of memory");
            return -1;
        }
        for (int k = 0; k < take; k++)
            items[k] = render_item(r, sel[spread_pick(k, take, count)], labels[k], sizeof(labels[k]));
        char title[256];
        if (take < count) snprintf(title, sizeof(title), "%s (%d of %d pictured instances)", s->name, take, count);
        else snprintf(title, sizeof(title), "%s", s->name);
        int rc = tms_join(path, sizeof(path), dir, "contact_sheet.png") ? -1
                 : tms_render_contact_sheet(path, items, take, title, r->err, sizeof(r->err));
        free(items); free(labels);
        if (rc) return -1;
        if (on_sheet) *on_sheet = take;
    }
    return 0;
}

// the pictures a training run draws: the default selection
static int write_default_images(run_t *r, const char *dir) {
    if (!r->spec.images && !r->spec.contact_sheet) return 0;
    int *sel = NULL, count = 0;
    if (select_instances(r, NULL, &sel, &count)) return -1;
    int rc = write_images(r, dir, sel, count, NULL);
    free(sel);
    return rc;
}

static int write_outputs(run_t *r, const char *dir) {
    if (state_io(r, dir, 0, r->P.instances, STATE_FINAL, 1, NULL)) return -1;
    if (write_tables(r, dir)) return -1;
    if (write_default_images(r, dir)) return -1;
    return 0;
}

// Rename `partial` to `out`: an existing `out` (only with force) is moved aside first
// and removed after. Returns 0, or -1 with a message.
static int publish(run_t *r, const char *partial, const char *out) {
    char old[4096 + 32] = "";
    if (tms_path_exists(out)) {
        snprintf(old, sizeof(old), "%s.old-%ld", out, (long)getpid());
        if (rename(out, old) != 0) {
            snprintf(r->err, sizeof(r->err), "cannot move the existing %s aside: %s", out, strerror(errno));
            return -1;
        }
    }
    if (rename(partial, out) != 0) {
        snprintf(r->err, sizeof(r->err), "cannot rename %s to %s: %s", partial, out, strerror(errno));
        if (old[0]) rename(old, out);
        return -1;
    }
    if (old[0]) tms_remove_tree(old);
    return 0;
}

// ----------------------------------------------------------------------------
// checkpoints

static volatile sig_atomic_t stop_signal = 0;
static void on_stop_signal(int sig) { stop_signal = sig; }

static void install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

// The backend's state into r (parameters, moments, divergence).
static int pull_state(run_t *r, tms_backend_t *be) {
    if (be->get_state(be, r->params, r->adam_m, r->adam_v)) {
        snprintf(r->err, sizeof(r->err), "could not copy the state back from the %s backend", be->name);
        return -1;
    }
    if (be->get_diverged) {
        long *div = malloc((size_t)r->P.instances * sizeof(long));
        if (!div || be->get_diverged(be, div)) { free(div); snprintf(r->err, sizeof(r->err), "could not read divergence"); return -1; }
        for (int i = 0; i < r->P.instances; i++) r->P.inst[i].diverged_step = div[i];
        free(div);
    } else {
        // a backend that does not detect divergence: mark non-finite instances, step unknown
        for (int i = 0; i < r->P.instances; i++) {
            tms_view_t v = tms_view(&r->L, r->params, i);
            int finite = 1;
            for (size_t e = 0; e < (size_t)r->P.model.m * r->P.model.n; e++) finite &= isfinite(v.W[e]) != 0;
            if (!finite && r->P.inst[i].diverged_step == 0) r->P.inst[i].diverged_step = -1;
        }
    }
    return 0;
}

// Write the checkpoint of step r->steps_done into partial/checkpoint/: the files go to
// checkpoint.new/ (checkpoint.json last), which then swaps places with checkpoint/ in
// one rename (RENAME_EXCHANGE), so there is always one complete checkpoint.
static int write_checkpoint(run_t *r, tms_backend_t *be, const char *partial) {
    char fresh[4096], current[4096], path[4096];
    if (pull_state(r, be)) return -1;
    if (tms_join(fresh, sizeof(fresh), partial, "checkpoint.new") || tms_join(current, sizeof(current), partial, "checkpoint") ||
        tms_join(path, sizeof(path), fresh, "checkpoint.json")) {
        snprintf(r->err, sizeof(r->err), "path too long");
        return -1;
    }
    tms_remove_tree(fresh);
    if (tms_mkdirs(fresh, r->err, sizeof(r->err))) return -1;
    if (state_io(r, fresh, 0, r->P.instances, STATE_TRAINING, 1, NULL)) return -1;
    // checkpoint.json: the step, the training time, the checksum of the spec it belongs to
    // and of every array file, sealed with its own checksum
    char spec_sha[65];
    cJSON *c = cJSON_CreateObject();
    char *text = NULL;
    if (c && !json_sha256(r->spec.resolved, spec_sha) && cJSON_AddNumberToObject(c, "step", (double)r->steps_done) &&
        cJSON_AddNumberToObject(c, "wall_seconds", r->wall_seconds) && cJSON_AddStringToObject(c, "spec_sha256", spec_sha)) {
        cJSON *files = cJSON_AddObjectToObject(c, "files");
        for (int f = 0; files && f < r->n_sums; f++) cJSON_AddStringToObject(files, r->sums[f].name, r->sums[f].sha256);
        if (files && !json_seal(c)) text = cJSON_Print(c);
    }
    cJSON_Delete(c);
    if (!text) { snprintf(r->err, sizeof(r->err), "out of memory writing %s", path); return -1; }
    int rc = tms_write_file_atomic(path, text, strlen(text), r->err, sizeof(r->err));
    cJSON_free(text);
    if (rc) return -1;
    if (tms_path_exists(current)) {
        if (renameat2(AT_FDCWD, fresh, AT_FDCWD, current, RENAME_EXCHANGE) != 0) {
            snprintf(r->err, sizeof(r->err), "cannot swap in the checkpoint %s: %s", current, strerror(errno));
            return -1;
        }
        tms_remove_tree(fresh); // now the previous checkpoint
    } else if (rename(fresh, current) != 0) {
        snprintf(r->err, sizeof(r->err), "cannot rename %s to %s: %s", fresh, current, strerror(errno));
        return -1;
    }
    return write_manifest(r, partial, "running", NULL);
}

// Load partial/checkpoint/ if there is one (returns 1), else leave r as it is (0), after
// checking checkpoint.json's own checksum, that it belongs to the spec whose checksum is
// spec_sha (the manifest's), its step and time, and every array file against its checksum.
// Returns -2 when the checkpoint is damaged or inconsistent (r->err says what), -1 on
// another failure; r's state is then not to be used.
static int read_checkpoint(run_t *r, const char *partial, const char *spec_sha) {
    char current[4096], path[4096], msg[512];
    char *text = NULL;
    if (tms_join(current, sizeof(current), partial, "checkpoint") || tms_join(path, sizeof(path), current, "checkpoint.json")) {
        snprintf(r->err, sizeof(r->err), "path too long");
        return -1;
    }
    if (!tms_path_exists(current)) return 0;
    // checkpoint/ only ever appears complete (see write_checkpoint)
    if (tms_read_file_max(path, &text, NULL, TMS_MAX_JSON, msg, sizeof(msg))) {
        snprintf(r->err, sizeof(r->err), "%s (the checkpoint is damaged)", msg);
        return -2;
    }
    cJSON *c = cJSON_Parse(text);
    free(text);
    long step;
    int rc = -2;
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(c, "spec_sha256");
    if (!cJSON_IsObject(c)) snprintf(r->err, sizeof(r->err), "%s is not valid JSON (damaged)", path);
    else if (json_unseal(c, path, r->err, sizeof(r->err))) {}
    else if (!cJSON_IsString(sha) || strcmp(sha->valuestring, spec_sha) != 0)
        snprintf(r->err, sizeof(r->err), "%s belongs to another spec than manifest.json's (their checksums differ)", path);
    else if (json_long(c, "step", 0, r->spec.steps, &step, path, r->err, sizeof(r->err)) ||
             json_seconds(c, "wall_seconds", &r->wall_seconds, path, r->err, sizeof(r->err))) {}
    else {
        r->snapshots_taken = snapshots_upto(r, step); // the checkpoint holds those up to its step
        rc = state_io(r, current, 0, r->P.instances, STATE_TRAINING, 0, cJSON_GetObjectItemCaseSensitive(c, "files"));
    }
    cJSON_Delete(c);
    if (rc) return rc;
    r->steps_done = step;
    return 1;
}

// Remove partial/checkpoint/ (and the leftovers checkpoint.new/, checkpoint.old/ of a
// crash): renamed away first, so that a crash while removing it never leaves a
// checkpoint/ with some of its files gone.
static void remove_checkpoint(const char *partial) {
    char current[4096], old[4096], fresh[4096];
    if (tms_join(current, sizeof(current), partial, "checkpoint") || tms_join(old, sizeof(old), partial, "checkpoint.old") ||
        tms_join(fresh, sizeof(fresh), partial, "checkpoint.new"))
        return;
    tms_remove_tree(old);
    if (tms_path_exists(current) && rename(current, old) == 0) tms_remove_tree(old);
    tms_remove_tree(fresh);
}

// ----------------------------------------------------------------------------
// train

static int create_backend(run_t *r, tms_backend_t *be, const tms_train_opts_t *o, int *usage_error) {
    const char *want = o->backend ? o->backend : "auto";
    *usage_error = 0;
    if (strcmp(want, "cpu") && strcmp(want, "cuda") && strcmp(want, "auto")) {
        snprintf(r->err, sizeof(r->err), "--backend %s: expected one of: auto, cpu, cuda", want);
        *usage_error = 1;
        return -1;
    }
    // --cuda-path (main.c checked its value): fused on a model too large for it is a usage
    // error, known from the spec alone, whether or not a GPU is here
    const int want_path = tms_cuda_path_parse(o->cuda_path ? o->cuda_path : "auto");
    if (want_path < 0) {
        snprintf(r->err, sizeof(r->err), "--cuda-path %s: expected one of: auto, fused, gemm", o->cuda_path);
        *usage_error = 1;
        return -1;
    }
    if (want_path == TMS_CUDA_PATH_FUSED &&
        tms_cuda_path_select(want_path, &r->P.model, r->P.batch_size, NULL, r->err, sizeof(r->err)) < 0) {
        *usage_error = 1;
        return -1;
    }
    if (r->P.data.relative_density && strcmp(want, "cpu") != 0) {
        // only the CPU's sampler draws per-feature densities: never let a GPU train the wrong data
        if (strcmp(want, "cuda") == 0) {
            snprintf(r->err, sizeof(r->err), "--backend cuda: the spec's data.relative_density is drawn only by the CPU "
                     "backend; use --backend cpu");
            *usage_error = 1;
            return -1;
        }
        if (!o->quiet) fprintf(stderr, "tms: data.relative_density: training on the CPU (only its sampler draws it)\n");
        want = "cpu";
    }
#ifdef TMS_HAVE_CUDA
    // only auto and cuda ask CUDA: the query initialises the driver (time, and GPU memory
    // for a context on a shared node), which --backend cpu must not cost
    char gpu[128] = "";
    const int have_gpu = strcmp(want, "cpu") != 0 && tms_cuda_backend_available(gpu, sizeof(gpu));
    if (strcmp(want, "cuda") == 0 && !have_gpu) {
        snprintf(r->err, sizeof(r->err), "--backend cuda: no CUDA GPU is usable on this machine (%s; use --backend cpu)",
                 gpu);
        return -1;
    }
    if (have_gpu) {
        snprintf(r->backend_name, sizeof(r->backend_name), "cuda");
        r->tf32 = o->allow_tf32;
        const int path = tms_cuda_path_select(want_path, &r->P.model, r->P.batch_size, NULL, NULL, 0);
        snprintf(r->cuda_path, sizeof(r->cuda_path), "%s", tms_cuda_path_name(path));
        if (path == TMS_CUDA_PATH_FUSED && o->allow_tf32) // auto chose fused (fused itself refuses --tf32)
            fprintf(stderr, "tms: --tf32 has no effect: the fused CUDA path has no GEMMs (always full fp32)\n");
        if (tms_cuda_backend_create_path(be, &r->P, &r->L, r->params, r->adam_m, r->adam_v, o->allow_tf32, path,
                                         r->err, sizeof(r->err)))
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
    // auto fell back to the CPU: say so, with the reason, rather than ignore the flag silently
    const char *why = r->P.data.relative_density ? "data.relative_density is drawn only by the CPU" : "no usable GPU";
    if (o->allow_tf32)
        fprintf(stderr, "tms: --tf32 has no effect: %s, so the CPU backend trains (always full fp32)\n", why);
    if (want_path != TMS_CUDA_PATH_AUTO)
        fprintf(stderr, "tms: --cuda-path %s has no effect: %s, so the CPU backend trains\n", tms_cuda_path_name(want_path),
                why);
    if (tms_cpu_backend_create(be, &r->P, &r->L, r->params, r->adam_m, r->adam_v, r->threads, r->err, sizeof(r->err)))
        return -1;
    snprintf(r->device, sizeof(r->device), "%s", be->device);
    return 0;
}

// Record the backend's parameters now as snapshot r->snapshots_taken, through the backend
// interface (every backend: get_state copies the whole state to the host; the moments land
// in r->adam_m/v, which are only ever read right after a get_state of their own).
static int take_snapshot(run_t *r, tms_backend_t *be) {
    const int k = r->snapshots_taken, S = r->spec.n_snapshots, I = r->P.instances;
    if (be->get_state(be, r->params, r->adam_m, r->adam_v)) {
        snprintf(r->err, sizeof(r->err), "could not copy the snapshot of step %ld back from the %s backend",
                 r->spec.snapshot_steps[k], be->name);
        return -1;
    }
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!r->L.present[t]) continue;
        const size_t n = (size_t)I * r->L.per_instance[t];
        memcpy(r->snapshots + (size_t)S * r->L.offset[t] + (size_t)k * n, r->params + r->L.offset[t], n * sizeof(float));
    }
    r->snapshots_taken = k + 1;
    return 0;
}

// Train from r->steps_done to the end, in chunks that end at every log point, every
// checkpoint and every snapshot. Returns 0 when done, 1 when stopped by a signal
// (checkpoint saved), -1 on failure.
static int train_loop(run_t *r, tms_backend_t *be, const char *partial, tms_progress_mode_t progress) {
    const tms_problem_t *P = &r->P;
    const long every = r->spec.log_every, ck = r->checkpoint_every;
    float *loss = malloc((size_t)P->instances * sizeof(float));
    if (!loss) { snprintf(r->err, sizeof(r->err), "out of memory"); return -1; }
    tms_progress_t prog;
    tms_progress_start(&prog, r->steps_done, P->steps, progress);
    double mean = NAN;
    int rc = 0;
    // a snapshot of step 0 is the initialisation
    if (r->snapshots_taken < r->spec.n_snapshots && r->spec.snapshot_steps[r->snapshots_taken] <= r->steps_done &&
        take_snapshot(r, be)) {
        free(loss);
        return -1;
    }
    while (r->steps_done < P->steps) {
        long begin = r->steps_done;
        long end = (begin / every + 1) * every;
        if (ck > 0 && (begin / ck + 1) * ck < end) end = (begin / ck + 1) * ck;
        if (r->snapshots_taken < r->spec.n_snapshots && r->spec.snapshot_steps[r->snapshots_taken] < end)
            end = r->spec.snapshot_steps[r->snapshots_taken];
        if (end > P->steps) end = P->steps;
        double t0 = tms_now();
        if (be->train(be, begin, end, loss)) {
            snprintf(r->err, sizeof(r->err), "the %s backend failed at step %ld", be->name, begin);
            rc = -1;
            break;
        }
        r->steps_done = end;
        if (r->snapshots_taken < r->spec.n_snapshots && r->spec.snapshot_steps[r->snapshots_taken] == end &&
            take_snapshot(r, be)) {
            rc = -1;
            break;
        }
        r->wall_seconds += tms_now() - t0; // the snapshot's copy counts as training time
        if (begin % every == 0) {
            double sum = 0.0;
            int healthy = 0;
            for (int i = 0; i < P->instances; i++) {
                r->loss_log[(size_t)i * r->n_logs + begin / every] = loss[i];
                if (isfinite(loss[i])) { sum += loss[i]; healthy++; }
            }
            mean = healthy ? sum / healthy : NAN;
        }
        tms_progress_update(&prog, end, mean);
        if (stop_signal) {
            if (write_checkpoint(r, be, partial)) { rc = -1; break; }
            rc = 1;
            break;
        }
        if (ck > 0 && end % ck == 0 && end < P->steps && write_checkpoint(r, be, partial)) { rc = -1; break; }
    }
    if (rc == 0) tms_progress_finish(&prog, mean);
    else tms_progress_abort(&prog);
    free(loss);
    return rc;
}

// Train r (state set up, staging directory `partial` in place) to the end, write the
// outputs and publish them as o->out_dir.
static int run_training(run_t *r, tms_backend_t *be, const tms_train_opts_t *o, const char *partial) {
    if (!o->quiet && r->P.instances == 0)
        fprintf(stderr, "tms: shard %d/%d of %s is empty (the grid has %d grid points); writing a run directory "
                "of 0 instances, which tms merge combines with the other shards\n", r->shard_k, r->shard_n,
                r->spec.name, r->grid_instances / r->spec.seeds);
    else if (!o->quiet)
        fprintf(stderr, "tms: training %s: %d instance%s of n=%d, m=%d for %ld steps on %s%s\n", r->spec.name,
                r->P.instances, r->P.instances == 1 ? "" : "s", r->P.model.n, r->P.model.m, r->P.steps, r->device,
                r->steps_done ? " (resumed)" : "");
    install_stop_handlers();
    int rc = train_loop(r, be, partial, o->quiet || r->P.instances == 0 ? TMS_PROGRESS_NONE : o->progress);
    if (rc == 1) {
        be->destroy(be); // the checkpoint holds the state; free the backend (a GPU's memory) before exiting
        be->ctx = NULL;
        write_manifest(r, partial, "interrupted", NULL);
        fprintf(stderr, "tms: stopped by signal %d at step %ld; checkpoint saved in %s/checkpoint; continue with: tms train --resume %s\n",
                (int)stop_signal, r->steps_done, partial, o->out_dir);
        return TMS_EXIT_INTERRUPTED;
    }
    if (rc < 0 || pull_state(r, be)) goto failed;
    // the final loss and its standard error, by the backend on its own parameters (the CPU's
    // reference evaluation of the pulled parameters for a backend without one)
    double *eval = malloc((size_t)(r->P.instances ? r->P.instances : 1) * 2 * sizeof(double));
    double *eval_se = eval ? eval + (r->P.instances ? r->P.instances : 1) : NULL;
    if (!eval || (be->evaluate ? be->evaluate(be, r->spec.eval_samples, eval, eval_se)
                               : tms_cpu_eval_loss(&r->P, &r->L, r->params, r->spec.eval_samples, r->threads, eval,
                                                   eval_se))) {
        free(eval);
        snprintf(r->err, sizeof(r->err), "the %s backend could not evaluate the final loss", be->name);
        goto failed;
    }
    be->destroy(be);
    be->ctx = NULL;
    for (int i = 0; i < r->P.instances; i++) {
        r->eval_loss[i] = (float)eval[i];
        r->eval_loss_se[i] = (float)eval_se[i];
    }
    free(eval);
    if (write_outputs(r, partial)) goto failed;
    remove_checkpoint(partial);
    if (write_manifest(r, partial, "complete", NULL)) goto failed;
    if (publish(r, partial, o->out_dir)) goto failed;
    if (!o->quiet) {
        double best = INFINITY, best_se = NAN, mean = 0.0;
        int healthy = 0, diverged = 0;
        for (int i = 0; i < r->P.instances; i++) {
            diverged += r->P.inst[i].diverged_step != 0;
            if (!isfinite(r->eval_loss[i])) continue;
            mean += r->eval_loss[i];
            healthy++;
            if (r->eval_loss[i] < best) { best = r->eval_loss[i]; best_se = r->eval_loss_se[i]; }
        }
        mean = healthy ? mean / healthy : NAN;
        if (!healthy)
            fprintf(stderr, "tms: done in %.2f s; %s\n", r->wall_seconds,
                    r->P.instances ? "no instance has a finite final loss" : "no instances (an empty shard)");
        else fprintf(stderr,
                "tms: done in %.2f s (%.0f instance-steps/s). final loss on %ld fresh samples, mean over features: "
                "mean %.6g, best %.6g +- %.2g (sum over features: best %.6g)\n",
                r->wall_seconds, r->wall_seconds > 0 ? (double)r->P.instances * r->P.steps / r->wall_seconds : 0.0,
                r->spec.eval_samples, mean, best, best_se, best * r->P.model.n);
        if (diverged)
            fprintf(stderr, "tms: %d instance%s diverged (loss or gradient not finite) and were frozen; see instances.csv\n",
                    diverged, diverged == 1 ? "" : "s");
        fprintf(stderr, "tms: wrote %s/\n", o->out_dir);
    }
    return TMS_EXIT_OK;
failed:
    fprintf(stderr, "tms: %s\n", r->err);
    if (be->ctx) be->destroy(be);
    be->ctx = NULL;
    write_manifest(r, partial, "failed", r->err);
    fprintf(stderr, "tms: the incomplete run is in %s (manifest.json says \"failed\"; tms train --resume %s retries)\n",
            partial, o->out_dir);
    return TMS_EXIT_RUNTIME;
}

static int train_fresh(run_t *r, const tms_train_opts_t *o, const char *partial) {
    if (tms_spec_load(&r->spec, o->spec_path, o->overrides, o->n_overrides, r->err, sizeof(r->err))) {
        fprintf(stderr, "tms: %s\n", r->err);
        return TMS_EXIT_USAGE;
    }
    if (tms_path_exists(o->out_dir) && !o->force) {
        fprintf(stderr, "tms: %s already exists; choose another --out or pass --force to replace it\n", o->out_dir);
        return TMS_EXIT_USAGE;
    }
    int rc = run_setup(r, o->shard_k, o->shard_n);
    if (rc) {
        fprintf(stderr, "tms: %s\n", r->err);
        return rc == -2 ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
    }
    // one writer of --out at a time; under the lock, look again: another run may have
    // finished it since
    int code = lock_out(r, o->out_dir, "tms");
    if (code != TMS_EXIT_OK) return code;
    if (tms_path_exists(o->out_dir) && !o->force) {
        fprintf(stderr, "tms: %s already exists (another run just finished it); choose another --out or pass --force to replace it\n",
                o->out_dir);
        return TMS_EXIT_USAGE;
    }
    tms_init_params(&r->P, &r->L, r->params);
    r->snapshots_taken = 0;
    tms_backend_t be = {0};
    int usage_error;
    if (create_backend(r, &be, o, &usage_error)) {
        fprintf(stderr, "tms: %s\n", r->err);
        return usage_error ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
    }
    // a stale .partial is from an earlier run of the same --out that failed or was
    // stopped (we hold the lock: no process is writing it); a fresh start replaces it
    // (--resume continues it instead)
    if (tms_remove_tree(partial) != 0) {
        fprintf(stderr, "tms: cannot remove the stale %s: %s\n", partial, strerror(errno));
        be.destroy(&be);
        return TMS_EXIT_RUNTIME;
    }
    // The staging directory appears under its .partial name only with its manifest in it
    // (built as .partial.new, then renamed): a process killed at any moment leaves either
    // no .partial or one whose manifest says where it stands, never an empty one that
    // --resume could not read. A leftover .partial.new is removed here (we hold the lock).
    char fresh[4096];
    if (snprintf(fresh, sizeof(fresh), "%s.new", partial) >= (int)sizeof(fresh)) {
        fprintf(stderr, "tms: the path %s.new is too long\n", partial);
        be.destroy(&be);
        return TMS_EXIT_USAGE;
    }
    if (tms_remove_tree(fresh) != 0) {
        fprintf(stderr, "tms: cannot remove the stale %s: %s\n", fresh, strerror(errno));
        be.destroy(&be);
        return TMS_EXIT_RUNTIME;
    }
    if (tms_mkdirs(fresh, r->err, sizeof(r->err)) || write_manifest(r, fresh, "running", NULL)) {
        fprintf(stderr, "tms: %s\n", r->err);
        tms_remove_tree(fresh);
        be.destroy(&be);
        return TMS_EXIT_RUNTIME;
    }
    if (rename(fresh, partial) != 0) {
        fprintf(stderr, "tms: cannot rename %s to %s: %s\n", fresh, partial, strerror(errno));
        tms_remove_tree(fresh);
        be.destroy(&be);
        return TMS_EXIT_RUNTIME;
    }
    return run_training(r, &be, o, partial);
}

// A .partial whose manifest says complete: the process stopped between writing it and the
// final rename. Check its files and publish it.
static int publish_complete_partial(run_t *r, const cJSON *m, const tms_train_opts_t *o, const char *partial) {
    int rc = run_from_manifest(r, m, partial);
    if (!rc) rc = state_io(r, partial, 0, r->P.instances, STATE_FINAL, 0, cJSON_GetObjectItemCaseSensitive(m, "files"));
    if (!rc && publish(r, partial, o->out_dir)) rc = -1;
    if (rc) {
        fprintf(stderr, "tms: --resume: %s\ntms: %s is left as it was\n", r->err, partial);
        return rc == -2 ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
    }
    fprintf(stderr, "tms: %s was complete but not yet renamed; its files check out: published as %s/\n", partial, o->out_dir);
    return TMS_EXIT_OK;
}

static int train_resume(run_t *r, const tms_train_opts_t *o, const char *partial) {
    // the lock first: nothing is read while another process may be writing it
    int code = lock_out(r, o->out_dir, "tms");
    if (code != TMS_EXIT_OK) return code;
    if (!tms_path_exists(partial)) {
        cJSON *done = tms_path_exists(o->out_dir) ? read_manifest(o->out_dir, r->err, sizeof(r->err)) : NULL;
        int complete = done && strcmp(manifest_string(done, "status"), "complete") == 0;
        cJSON_Delete(done);
        if (complete) {
            fprintf(stderr, "tms: %s is already complete; nothing to resume\n", o->out_dir);
            return TMS_EXIT_OK;
        }
        fprintf(stderr, "tms: --resume %s: there is no %s to continue\n", o->out_dir, partial);
        return TMS_EXIT_USAGE;
    }
    // everything is checked before anything is written: a damaged or edited .partial is
    // refused (exit 2) and left as it was
    cJSON *m = read_manifest(partial, r->err, sizeof(r->err));
    if (!m) { fprintf(stderr, "tms: --resume: %s\ntms: %s is left as it was\n", r->err, partial); return TMS_EXIT_USAGE; }
    if (strcmp(manifest_string(m, "tms_version"), TMS_VERSION) != 0) {
        fprintf(stderr, "tms: --resume: %s was written by tms %s; this is tms %s\n", partial,
                manifest_string(m, "tms_version"), TMS_VERSION);
        cJSON_Delete(m);
        return TMS_EXIT_USAGE;
    }
    const char *status = manifest_string(m, "status");
    if (strcmp(status, "complete") == 0) {
        code = publish_complete_partial(r, m, o, partial);
        cJSON_Delete(m);
        return code;
    }
    if (strcmp(status, "running") && strcmp(status, "interrupted") && strcmp(status, "failed")) {
        fprintf(stderr, "tms: --resume: %s/manifest.json: unknown status \"%s\"\n", partial, status);
        cJSON_Delete(m);
        return TMS_EXIT_USAGE;
    }
    snprintf(r->start_time, sizeof(r->start_time), "%s", manifest_string(m, "start_time"));
    char spec_sha[65];
    int rc = run_from_manifest(r, m, partial);
    if (!rc && json_sha256(cJSON_GetObjectItemCaseSensitive(m, "spec"), spec_sha)) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        rc = -1;
    }
    r->checkpoint_every = o->checkpoint_every ? o->checkpoint_every : (long)manifest_number(m, "checkpoint_every", 0);
    cJSON_Delete(m);
    if (rc) {
        fprintf(stderr, "tms: --resume: %s\ntms: %s is left as it was\n", r->err, partial);
        return rc == -2 ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
    }
    r->wall_seconds = 0.0;
    int have = read_checkpoint(r, partial, spec_sha);
    if (have < 0) {
        fprintf(stderr, "tms: --resume: %s\ntms: %s is left as it was\n", r->err, partial);
        return have == -2 ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
    }
    if (have == 0) { // stopped before its first checkpoint: start again from the beginning
        tms_init_params(&r->P, &r->L, r->params);
        for (size_t e = 0; e < (size_t)r->P.instances * r->n_logs; e++) r->loss_log[e] = NAN;
        for (int i = 0; i < r->P.instances; i++) r->P.inst[i].diverged_step = 0;
        r->steps_done = 0;
        r->snapshots_taken = 0;
    }
    // a crash between writing a checkpoint and swapping it in leaves checkpoint.new/, one
    // while removing it at the end checkpoint.old/
    char stale[4096];
    if (tms_join(stale, sizeof(stale), partial, "checkpoint.new") == 0) tms_remove_tree(stale);
    if (tms_join(stale, sizeof(stale), partial, "checkpoint.old") == 0) tms_remove_tree(stale);
    tms_backend_t be = {0};
    int usage_error;
    if (create_backend(r, &be, o, &usage_error)) {
        fprintf(stderr, "tms: %s\n", r->err);
        return usage_error ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
    }
    if (!o->quiet) fprintf(stderr, "tms: resuming %s from step %ld\n", partial, r->steps_done);
    return run_training(r, &be, o, partial);
}

int tms_cmd_train(const tms_train_opts_t *o) {
    run_t *r = run_new();
    if (!r) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    char partial[4096];
    int code;
    utc_now(r->start_time, sizeof(r->start_time));
    r->threads = o->threads > 0 ? o->threads : omp_get_max_threads();
    r->command = o->command_line;
    r->checkpoint_every = o->checkpoint_every;
    r->cpu_backend_follows = o->backend && !strcmp(o->backend, "cpu");
#ifndef TMS_HAVE_CUDA
    r->cpu_backend_follows |= !o->backend || !strcmp(o->backend, "auto");
#else
    if (!o->backend || !strcmp(o->backend, "auto")) {
        char gpu[128];
        r->cpu_backend_follows = !tms_cuda_backend_available(gpu, sizeof(gpu));
    }
#endif
    if (!o->out_dir || !o->out_dir[0] ||
        snprintf(partial, sizeof(partial), "%s.partial", o->out_dir) >= (int)sizeof(partial)) {
        fprintf(stderr, "tms: train needs --out RUNDIR (a path of at most 4000 characters)\n");
        code = TMS_EXIT_USAGE;
    } else {
        code = o->resume ? train_resume(r, o, partial) : train_fresh(r, o, partial);
    }
    unlock_out(r, code == TMS_EXIT_USAGE);
    run_free(r);
    free(r);
    return code;
}

// ----------------------------------------------------------------------------
// render: redraw images and the contact sheet from a run directory

int tms_cmd_render(const char *dir, int threads, const char *instances) {
    run_t *r = run_new();
    if (!r) { fprintf(stderr, "tms: out of memory\n"); return TMS_EXIT_RUNTIME; }
    int code = TMS_EXIT_RUNTIME, rc, *sel = NULL, count = 0;
    r->threads = threads > 0 ? threads : omp_get_max_threads();
    cJSON *m = NULL;
    if (!tms_path_exists(dir)) {
        fprintf(stderr, "tms: %s is not a run directory (it does not exist)\n", dir);
        code = TMS_EXIT_USAGE;
    } else if ((code = lock_out(r, dir, "tms render")) != TMS_EXIT_OK) {
        // refused or failed, message printed
    } else if (!(m = read_manifest(dir, r->err, sizeof(r->err)))) {
        fprintf(stderr, "tms: %s\n", r->err);
        code = TMS_EXIT_USAGE;
    } else if (strcmp(manifest_string(m, "status"), "complete") != 0) {
        fprintf(stderr, "tms: %s: the run's status is \"%s\"; only complete runs can be rendered\n", dir,
                manifest_string(m, "status"));
        code = TMS_EXIT_USAGE;
    } else if ((rc = run_from_manifest(r, m, dir)) ||
               (rc = state_io(r, dir, 0, r->P.instances, STATE_FINAL, 0, cJSON_GetObjectItemCaseSensitive(m, "files"))) ||
               (rc = select_instances(r, instances, &sel, &count))) {
        fprintf(stderr, "tms: %s\n", r->err);
        code = rc == -2 ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
    } else {
        // render draws what it is asked for: the instance images and the contact sheet, even
        // when training skipped them (output.images / output.contact_sheet false only spare
        // the training run the time); without --instances, output.max_images caps the default
        // selection as in training
        r->spec.images = r->spec.contact_sheet = 1;
        const char *limit;
        int busy = r->threads < count ? r->threads : count;
        double pictures = busy * tms_render_instance_bytes(&r->P.model);
        double sheet = tms_render_contact_sheet_bytes(&r->P.model, count);
        double need = pictures > sheet ? pictures : sheet;
        size_t avail = tms_memory_available(&limit);
        int on_sheet = 0;
        if (count > 0 && need > (double)avail) {
            char a[32], b[32];
            tms_format_bytes(a, sizeof(a), need);
            tms_format_bytes(b, sizeof(b), (double)avail);
            fprintf(stderr, "tms: not enough memory: drawing pictures of n=%d on %d threads needs %s but %s leaves %s; "
                    "use fewer --threads\n", r->P.model.n, busy, a, limit, b);
            code = TMS_EXIT_RUNTIME;
        } else if (write_images(r, dir, sel, count, &on_sheet)) {
            fprintf(stderr, "tms: %s\n", r->err);
            code = TMS_EXIT_RUNTIME;
        } else {
            if (count > 0)
                fprintf(stderr, "tms: drew %d instance image%s (%s/images/) and %s/contact_sheet.png (%d of them)\n",
                        count, count == 1 ? "" : "s", dir, dir, on_sheet);
            else
                fprintf(stderr, "tms: drew nothing: %s\n", r->P.instances == 0 ? "the run has no instances"
                                                                     : "its output.max_images is 0");
            code = TMS_EXIT_OK;
        }
    }
    free(sel);
    cJSON_Delete(m);
    unlock_out(r, code == TMS_EXIT_USAGE);
    run_free(r);
    free(r);
    return code;
}

// ----------------------------------------------------------------------------
// merge: shard run directories into one, equal to the single-process run

typedef struct { long index; int dir; } shard_ref_t;

static int shard_ref_cmp(const void *a, const void *b) {
    const shard_ref_t *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

// Every input is checked before the output is written: the manifests' checksums, one spec,
// version and build, complete, shard numbers consistent with the spec's grid and each shard
// present once, every array's shape against the spec and its data against its checksum.
// Inputs that do not belong together or are damaged: exit 2, nothing written.
int tms_cmd_merge(const char *out, char *const *dirs, int n_dirs, int force, int threads) {
    run_t *r = run_new();
    cJSON **m = calloc((size_t)(n_dirs > 0 ? n_dirs : 1), sizeof(cJSON *));
    shard_ref_t *refs = calloc((size_t)(n_dirs > 0 ? n_dirs : 1), sizeof(shard_ref_t));
    char partial[4096], where[4200];
    int code = TMS_EXIT_USAGE, rc;
    long n = 1;
    if (!r || !m || !refs) { fprintf(stderr, "tms: out of memory\n"); free(r); free(m); free(refs); return TMS_EXIT_RUNTIME; }
    r->threads = threads > 0 ? threads : omp_get_max_threads();
    if (n_dirs <= 0) { fprintf(stderr, "tms merge: needs OUT and at least one RUNDIR\n"); goto done; }
    if (snprintf(partial, sizeof(partial), "%s.partial", out) >= (int)sizeof(partial)) {
        fprintf(stderr, "tms merge: OUT path too long\n");
        goto done;
    }
    if (tms_path_exists(out) && !force) {
        fprintf(stderr, "tms merge: %s already exists; choose another OUT or pass --force to replace it\n", out);
        goto done;
    }
    if ((code = lock_out(r, out, "tms merge")) != TMS_EXIT_OK) goto done;
    code = TMS_EXIT_USAGE;
    if (tms_path_exists(out) && !force) {
        fprintf(stderr, "tms merge: %s already exists (another process just wrote it); choose another OUT or pass --force\n", out);
        goto done;
    }
    for (int d = 0; d < n_dirs; d++) {
        m[d] = read_manifest(dirs[d], r->err, sizeof(r->err));
        if (!m[d]) { fprintf(stderr, "tms merge: %s\n", r->err); goto done; }
        if (strcmp(manifest_string(m[d], "status"), "complete") != 0) {
            fprintf(stderr, "tms merge: %s: status \"%s\"; only complete shards can be merged (resume it first)\n",
                    dirs[d], manifest_string(m[d], "status"));
            goto done;
        }
        if (d == 0) continue;
        const char *what = NULL;
        if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(m[0], "spec"), cJSON_GetObjectItemCaseSensitive(m[d], "spec"), 1))
            what = "a different spec";
        else if (strcmp(manifest_string(m[0], "tms_version"), manifest_string(m[d], "tms_version")) != 0)
            what = "a different tms version";
        else if (strcmp(manifest_string(m[0], "git_commit"), manifest_string(m[d], "git_commit")) != 0)
            what = "a different tms build (git commit)";
        if (what) {
            fprintf(stderr, "tms merge: %s was trained from %s than %s; shards of one sweep only\n", dirs[d], what, dirs[0]);
            goto done;
        }
    }
    // the whole grid from the (common) spec; every shard's numbers are checked against it
    if (spec_from_manifest(r, m[0], dirs[0])) { fprintf(stderr, "tms merge: %s\n", r->err); goto done; }
    if (run_setup(r, 0, 1)) { fprintf(stderr, "tms merge: %s\n", r->err); code = TMS_EXIT_RUNTIME; goto done; }
    snprintf(where, sizeof(where), "%s/manifest.json", dirs[0]);
    const cJSON *sh0 = cJSON_GetObjectItemCaseSensitive(m[0], "shard");
    if (json_long(sh0, "count", 1, INT_MAX, &n, where, r->err, sizeof(r->err))) {
        fprintf(stderr, "tms merge: %s\n", r->err);
        goto done;
    }
    for (int d = 0; d < n_dirs; d++) {
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(m[d], "shard");
        long k, count, steps;
        snprintf(where, sizeof(where), "%s/manifest.json", dirs[d]);
        if (json_long(sh, "count", 1, INT_MAX, &count, where, r->err, sizeof(r->err)) ||
            json_long(sh, "index", 0, count - 1, &k, where, r->err, sizeof(r->err)) ||
            json_long(m[d], "steps_completed", r->spec.steps, r->spec.steps, &steps, where, r->err, sizeof(r->err))) {
            fprintf(stderr, "tms merge: %s\n", r->err);
            goto done;
        }
        if (count != n) {
            fprintf(stderr, "tms merge: %s is shard %ld/%ld, but %s is one of %ld shards\n", dirs[d], k, count, dirs[0], n);
            goto done;
        }
        refs[d].index = k;
        refs[d].dir = d;
    }
    // every shard k/N exactly once: sorted by k, a duplicate is a neighbour and a missing
    // shard a gap (never an array of N entries: N comes from a file)
    qsort(refs, (size_t)n_dirs, sizeof(refs[0]), shard_ref_cmp);
    for (int j = 1; j < n_dirs; j++)
        if (refs[j].index == refs[j - 1].index) {
            int a = refs[j - 1].dir < refs[j].dir ? refs[j - 1].dir : refs[j].dir;
            int b = refs[j - 1].dir < refs[j].dir ? refs[j].dir : refs[j - 1].dir;
            fprintf(stderr, "tms merge: %s and %s are both shard %ld/%ld\n", dirs[a], dirs[b], refs[j].index, n);
            goto done;
        }
    if (n_dirs != n) {
        char missing[512] = "";
        long absent = n - n_dirs, listed = 0;
        long next = 0;
        for (int j = 0; j <= n_dirs && listed < 8; j++) {
            long upto = j < n_dirs ? refs[j].index : n;
            for (long k = next; k < upto && listed < 8; k++, listed++) {
                size_t used = strlen(missing);
                snprintf(missing + used, sizeof(missing) - used, "%s%ld/%ld", used ? ", " : "", k, n);
            }
            next = upto + 1;
        }
        fprintf(stderr, "tms merge: missing shard%s %s", absent > 1 ? "s" : "", missing);
        if (absent > listed) fprintf(stderr, " and %ld more", absent - listed);
        fprintf(stderr, "\n");
        goto done;
    }

    // the whole grid, filled shard by shard
    r->sources = cJSON_CreateArray();
    double wall = 0.0;
    for (int j = 0; j < n_dirs; j++) {
        const int k = (int)refs[j].index, d = refs[j].dir;
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(m[d], "shard");
        int first, count;
        long v;
        double seconds;
        tms_shard_slice(r->P.instances, r->spec.seeds, k, (int)n, &first, &count);
        snprintf(where, sizeof(where), "%s/manifest.json", dirs[d]);
        if (json_long(sh, "first_instance", first, first, &v, where, r->err, sizeof(r->err)) ||
            json_long(m[d], "instances", count, count, &v, where, r->err, sizeof(r->err)) ||
            json_long(sh, "grid_instances", r->P.instances, r->P.instances, &v, where, r->err, sizeof(r->err)) ||
            json_seconds(m[d], "wall_seconds", &seconds, where, r->err, sizeof(r->err))) {
            fprintf(stderr, "tms merge: %s (shard %d/%ld of the spec's grid holds instances %d..%d of %d)\n", r->err, k, n,
                    first, first + count - 1, r->P.instances);
            goto done;
        }
        rc = state_io(r, dirs[d], first, count, STATE_FINAL, 0, cJSON_GetObjectItemCaseSensitive(m[d], "files"));
        if (rc) {
            fprintf(stderr, "tms merge: %s\n", r->err);
            code = rc == -2 ? TMS_EXIT_USAGE : TMS_EXIT_RUNTIME;
            goto done;
        }
        wall += seconds;
        cJSON *src = cJSON_CreateObject();
        cJSON_AddStringToObject(src, "path", dirs[d]);
        cJSON_AddNumberToObject(src, "shard", k);
        cJSON_AddStringToObject(src, "backend", manifest_string(m[d], "backend"));
        cJSON_AddStringToObject(src, "device", manifest_string(m[d], "device"));
        cJSON_AddNumberToObject(src, "wall_seconds", seconds);
        cJSON_AddItemToArray(r->sources, src);
    }
    code = TMS_EXIT_RUNTIME;
    r->wall_seconds = wall;
    r->steps_done = r->spec.steps;
    snprintf(r->backend_name, sizeof(r->backend_name), "%s", manifest_string(m[0], "backend"));
    snprintf(r->device, sizeof(r->device), "%s", manifest_string(m[0], "device"));
    for (int d = 1; d < n_dirs; d++) {
        if (strcmp(manifest_string(m[d], "backend"), r->backend_name) != 0) snprintf(r->backend_name, sizeof(r->backend_name), "mixed");
        if (strcmp(manifest_string(m[d], "device"), r->device) != 0) snprintf(r->device, sizeof(r->device), "mixed (see merged_from)");
    }
    snprintf(r->start_time, sizeof(r->start_time), "%s", manifest_string(m[0], "start_time"));
    tms_remove_tree(partial); // a leftover of an earlier merge; we hold the lock
    if (tms_mkdirs(partial, r->err, sizeof(r->err)) || write_outputs(r, partial) ||
        write_manifest(r, partial, "complete", NULL) || publish(r, partial, out)) {
        fprintf(stderr, "tms merge: %s\n", r->err);
        tms_remove_tree(partial);
        goto done;
    }
    fprintf(stderr, "tms: merged %ld shard%s (%d instances) into %s/\n", n, n == 1 ? "" : "s", r->P.instances, out);
    code = TMS_EXIT_OK;
done:
    for (int d = 0; d < n_dirs; d++) cJSON_Delete(m[d]);
    free(m);
    free(refs);
    unlock_out(r, code == TMS_EXIT_USAGE);
    run_free(r);
    free(r);
    return code;
}
