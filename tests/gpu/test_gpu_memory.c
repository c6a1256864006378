// test_gpu_memory.c: a problem too big for the GPU fails at create, at once and cleanly,
// with a message that says how many instances would fit; a normal problem created right
// after still works (the failed create freed what it had taken).
// The big problem: batch 2^20 of n 1000, m 100, 64 instances, about 9 GiB of activations
// per instance, about 590 GiB in all: more than any single GPU has.
#include "gpu_check.h"

int main(void) {
    gpu_require("test_gpu_memory");
    char err[1024];
    {
        tms_model_t model = {1000, 100, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
        gpu_problem_t g;
        CHECK(problem_make(&g, model, 64, 1 << 20, 10, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) == 0, "problem");
        size_t fixed = 0, per_instance = 0;
        tms_cuda_backend_bytes(&g.P, &g.L, &fixed, &per_instance);
        printf("  big problem: %.2f GiB per instance, %.0f MiB fixed\n", per_instance / 1073741824.0, fixed / 1048576.0);
        CHECK(per_instance > ((size_t)8 << 30), "per-instance estimate %zu bytes is too small", per_instance);
        tms_backend_t be;
        err[0] = '\0';
        const int rc = tms_cuda_backend_create(&be, &g.P, &g.L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err));
        CHECK(rc != 0, "a 590 GiB problem was accepted");
        printf("  message: %s\n", err);
        CHECK(strstr(err, "instances fit") != NULL, "the message does not say how many instances fit: %s", err);
        if (rc == 0) be.destroy(&be);
        problem_free(&g);
    }
    {
        tms_model_t model = {5, 2, TMS_DECODER_TIED, TMS_ACT_NONE, TMS_ACT_RELU, 1, 0};
        gpu_problem_t g;
        CHECK(problem_make(&g, model, 4, 256, 10, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) == 0, "problem");
        tms_backend_t be;
        float loss[4] = {NAN, NAN, NAN, NAN};
        if (tms_cuda_backend_create(&be, &g.P, &g.L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) == 0) {
            CHECK(be.train(&be, 0, 5, loss) == 0, "train after a failed create");
            for (int i = 0; i < 4; i++) CHECK(isfinite(loss[i]) && loss[i] > 0, "loss[%d] = %g", i, loss[i]);
            be.destroy(&be);
        } else {
            CHECK(0, "a small problem after a failed create: %s", err);
        }
        problem_free(&g);
    }
    return check_finish("test_gpu_memory");
}
