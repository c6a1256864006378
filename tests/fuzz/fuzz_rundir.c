// fuzz_rundir.c: libFuzzer target for the readers of a run directory (host/run.c):
// manifest.json (read_manifest, the resolved spec and shard in it: run_from_manifest)
// and the checkpoint (read_checkpoint: checkpoint.json and the state's .npy files), as
// `tms train --resume`, `tms render` and `tms merge` read them.
//
// Input: manifest.json's text, a NUL byte, checkpoint.json's text, and optionally a NUL
// byte, one byte choosing a file of the checkpoint and that file's new bytes. The target
// writes them into a scratch run directory (the other checkpoint files written by tms
// itself, so that a damaged file is met among valid ones) and reads it back.
//
// run.c's readers are internal (static): this file includes run.c, and the target links
// the rest of the library without it (tests/fuzz/CMakeLists.txt).
#include "../../host/run.c"

#include <stdint.h>

static char scratch[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof(scratch), "%s/tms_fuzz_rundir.%ld", dir, (long)getpid());
    return 0;
}

// The next NUL-terminated part of the input, copied (the input has no terminator).
static char *next_part(const uint8_t *data, size_t size, size_t *at) {
    if (*at > size) return NULL;
    const uint8_t *end = memchr(data + *at, 0, size - *at);
    size_t len = end ? (size_t)(end - (data + *at)) : size - *at;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, data + *at, len);
    s[len] = 0;
    *at += len + 1;
    return s;
}

static int write_text(const char *dir, const char *name, const void *text, size_t len) {
    char path[4096], err[512];
    return tms_join(path, sizeof(path), dir, name) || tms_write_file_atomic(path, text, len, err, sizeof(err));
}

// Bytes of memory run_setup allocates for the spec in r, at most; the target skips
// bigger runs (a valid spec may ask for gigabytes; that is not what is fuzzed here).
static double run_bytes(const run_t *r) {
    const tms_spec_t *s = &r->spec;
    double instances = (double)s->n_density * s->n_importance * s->n_lr * s->n_weight_decay * s->n_seed * s->seeds;
    double per = 2.0 * s->model.n * s->model.m + s->model.n + s->model.m;
    double logs = s->log_every > 0 ? ceil((double)s->steps / (double)s->log_every) : 1e18;
    return instances * (3.0 * per + logs + (double)s->model.n + 8.0) * 4.0;
}

// run.c seals manifest.json and checkpoint.json with a SHA-256 of their content. A
// hostile writer can compute it too; the target re-seals what it writes, so the fuzzer
// reaches the readers behind the checksum (an input with "sha256": "keep" keeps its own).
static char *sealed(const char *text, const char *spec_sha, const run_t *r) {
    cJSON *j = cJSON_Parse(text);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return strdup(text); }
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(j, "sha256");
    if (cJSON_IsString(keep) && strcmp(keep->valuestring, "keep") == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "sha256");
        char *out = cJSON_Print(j);
        cJSON_Delete(j);
        return out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "sha256");
    if (r) { // checkpoint.json: the real spec and file checksums where the input has none
        if (!cJSON_GetObjectItemCaseSensitive(j, "spec_sha256")) cJSON_AddStringToObject(j, "spec_sha256", spec_sha);
        if (!cJSON_GetObjectItemCaseSensitive(j, "files")) {
            cJSON *files = cJSON_AddObjectToObject(j, "files");
            for (int f = 0; files && f < r->n_sums; f++) cJSON_AddStringToObject(files, r->sums[f].name, r->sums[f].sha256);
        }
    }
    char *out = json_seal(j) ? NULL : cJSON_Print(j);
    cJSON_Delete(j);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t at = 0;
    char *manifest = next_part(data, size, &at), *ck_json = next_part(data, size, &at), *text = NULL;
    const int damage = at < size;                  // a checkpoint file to overwrite
    const int which = damage ? data[at] : 0;
    const uint8_t *bytes = damage ? data + at + 1 : NULL;
    const size_t nbytes = damage ? size - at - 1 : 0;
    char ckdir[4096];
    run_t *r = calloc(1, sizeof(run_t)), *probe = calloc(1, sizeof(run_t));
    cJSON *m = NULL;
    if (!manifest || !ck_json || !r || !probe) goto out;
    tms_remove_tree(scratch);
    if (tms_join(ckdir, sizeof(ckdir), scratch, "checkpoint") || tms_mkdirs(ckdir, r->err, sizeof(r->err))) goto out;
    text = sealed(manifest, NULL, NULL);
    if (!text || write_text(scratch, "manifest.json", text, strlen(text))) goto out;
    free(text);
    text = NULL;
    m = read_manifest(scratch, r->err, sizeof(r->err));
    if (!m) goto out;
    manifest_string(m, "status");
    manifest_string(m, "tms_version");
    // the spec alone first, to skip runs too big for a fuzzing process
    if (spec_from_manifest(probe, m, scratch) || run_bytes(probe) > 64.0 * (1 << 20)) goto out;
    r->threads = 1;
    if (run_from_manifest(r, m, scratch)) goto out;
    // a checkpoint as tms writes it, then the fuzzed checkpoint.json and one damaged file
    static const char *const files[] = {"W.npy", "W2.npy", "b1.npy", "b.npy", "loss.npy", "diverged_step.npy",
                                        "optimizer/adam_m_W.npy", "optimizer/adam_v_W.npy", "optimizer/adam_m_b.npy"};
    const char *victim = files[which % (sizeof(files) / sizeof(files[0]))];
    r->wall_seconds = 0.0;
    int have;
    char spec_sha[65];
    if (state_io(r, ckdir, 0, r->P.instances, STATE_TRAINING, 1, NULL) ||
        json_sha256(cJSON_GetObjectItemCaseSensitive(m, "spec"), spec_sha))
        goto out;
    text = sealed(ck_json, spec_sha, r);
    if (!text || write_text(ckdir, "checkpoint.json", text, strlen(text))) goto out;
    if (damage && write_text(ckdir, victim, bytes, nbytes)) goto out;
    have = read_checkpoint(r, scratch, spec_sha);
    if (have == 1 && (r->steps_done < 0 || r->steps_done > r->spec.steps)) abort(); // resumed outside the run
out:
    cJSON_Delete(m);
    if (r) run_free(r);
    if (probe) run_free(probe);
    free(r);
    free(probe);
    free(manifest);
    free(ck_json);
    free(text);
    tms_remove_tree(scratch);
    return 0;
}
