// fuzz_spec.c: libFuzzer target for the spec parser (host/spec.c): tms_spec_parse on the
// input, with --set overrides, then the grid expansion when the grid is small.
//
// Input: the spec text, optionally followed by a NUL byte and NUL-separated overrides
// ("section.field=value", as --set gives them), so the fuzzer mutates both at once:
//   {"model": {"n_features": 5, "n_hidden": 2}}\0train.steps=10\0data.density=[1,0.1]
// Crashes, sanitizer reports and leaks are the findings; any return value is fine.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "spec.h"

#define MAX_OVERRIDES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // NUL-terminated copy: the parser reads a C string, as tms_spec_load hands it one
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *overrides[MAX_OVERRIDES];
    int n_overrides = 0;
    size_t len = strlen(text);
    for (size_t at = len + 1; at <= size && n_overrides < MAX_OVERRIDES; at += strlen(text + at) + 1)
        overrides[n_overrides++] = text + at;
    tms_spec_t spec;
    char err[1024] = "";
    if (tms_spec_parse(&spec, text, "fuzz", overrides, n_overrides, err, sizeof(err)) == 0) {
        // the message buffer is never used on success; the grid is built only when small
        // (a grid of 10 million instances is valid, and would only measure malloc)
        long instances = tms_spec_instances(&spec);
        if (instances >= 1 && instances * (long)spec.model.n <= (1L << 20)) {
            tms_problem_t P;
            if (tms_problem_build(&P, &spec) == 0) {
                if (P.instances != instances) abort(); // the grid must be what was counted
                tms_problem_free(&P);
            }
        }
        tms_spec_free(&spec);
    } else if (strlen(err) == 0) {
        abort(); // every refusal says why
    }
    free(text);
    return 0;
}
