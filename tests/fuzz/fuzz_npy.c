// fuzz_npy.c: libFuzzer target for the .npy reader (host/npy.c): tms_npy_read and
// tms_npy_read_i64 of a file holding the fuzz input, against an expected shape.
//
// Input: one byte choosing the dtype and rank and three bytes of dimensions (each 0..15),
// then the file's bytes. The seeds in corpus/npy/ are files tms and numpy wrote.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fileio.h"
#include "npy.h"

static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    // tmpfs when there is one: the target writes a file per input
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof(path), "%s/tms_fuzz_npy.%ld.npy", dir, (long)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    const int i64 = data[0] & 1, ndim = 1 + (data[0] >> 1) % 3;
    long shape[3];
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = data[1 + d] & 15;
        count *= (size_t)shape[d];
    }
    char err[512] = "";
    if (tms_write_file_atomic(path, data + 4, size - 4, err, sizeof(err))) return 0;
    // the exact size the caller promises; a reader that writes past it trips ASan
    size_t elsize = i64 ? sizeof(int64_t) : sizeof(float);
    void *out = malloc(count ? count * elsize : 1);
    if (!out) return 0;
    int rc = i64 ? tms_npy_read_i64(path, out, shape, ndim, err, sizeof(err))
                 : tms_npy_read(path, out, shape, ndim, err, sizeof(err));
    if (rc != 0 && (strlen(err) == 0)) abort(); // a refusal says why
    free(out);
    unlink(path);
    return 0;
}
