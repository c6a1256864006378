// test_gpu_chunks.c: more instances than a grid's y dimension holds (65,535). Every launcher
// that puts the instance on blockIdx.y launches in chunks of at most 65,535 instances with
// an instance offset (inst0); one that dropped the offset, or the last chunk, would leave
// the instances past 65,535 untrained or train one twice. 65,537 instances of a tiny model
// (n 2, m 1, batch 4; untied, hidden ReLU with bias, output ReLU with bias, so every kernel
// runs: sample, epilogues, loss, bias gradients of b and b1, divergence check, AdamW), one
// step from the same state on the CPU and the GPU: losses, parameters and Adam moments agree
// to 1e-5 relative (floor 1e-5 x the tensor's largest value) over every instance, the last
// two included. The last instance starts
// with a NaN weight, so the divergence check must freeze it (diverged_step 1, its state
// untouched) in the second chunk as on the CPU. Then the evaluation (4 samples) against the
// CPU's, which covers the evaluation kernels' chunking too.
#include "gpu_check.h"

#define INSTANCES 65537

int main(void) {
    gpu_require("test_gpu_chunks");
    tms_model_t model = {2, 1, TMS_DECODER_UNTIED, TMS_ACT_RELU, TMS_ACT_RELU, 1, 0};
    gpu_problem_t g;
    if (problem_make(&g, model, INSTANCES, 4, 10, TMS_OPT_ADAMW, TMS_SCHED_CONSTANT, 0) != 0) {
        CHECK(0, "out of memory");
        return check_finish("test_gpu_chunks");
    }
    const tms_layout_t *L = &g.L;
    const int I = INSTANCES;
    // the biases start at 0; give them values so their gradients and updates are not trivial
    for (size_t e = L->offset[TMS_T_B1]; e < L->total; e++) g.params[e] = 0.01f * (float)(e % 7) - 0.02f;
    g.params[L->offset[TMS_T_W] + (size_t)(I - 1) * 2] = NAN; // the last instance diverges at step 0
    char err[1024];
    tms_backend_t cpu, gpu;
    if (tms_cpu_backend_create(&cpu, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0 ||
        tms_cuda_backend_create(&gpu, &g.P, L, g.params, g.adam_m, g.adam_v, 0, err, sizeof(err)) != 0) {
        CHECK(0, "backend: %s", err);
        return check_finish("test_gpu_chunks");
    }
    float *loss_c = malloc(I * sizeof(float)), *loss_g = malloc(I * sizeof(float));
    float *pc = malloc(L->total * sizeof(float)), *mc = malloc(L->total * sizeof(float));
    float *pg = malloc(L->total * sizeof(float)), *mg = malloc(L->total * sizeof(float));
    long *dc = malloc(I * sizeof(long)), *dg = malloc(I * sizeof(long));
    const long t = 3;
    CHECK(cpu.train(&cpu, t, t + 1, loss_c) == 0, "cpu train");
    CHECK(gpu.train(&gpu, t, t + 1, loss_g) == 0, "gpu train");
    CHECK(cpu.get_state(&cpu, pc, mc, NULL) == 0, "cpu state");
    CHECK(gpu.get_state(&gpu, pg, mg, NULL) == 0, "gpu state");
    CHECK(cpu.get_diverged(&cpu, dc) == 0 && gpu.get_diverged(&gpu, dg) == 0, "get_diverged");
    long bad = compare("loss", loss_g, loss_c, (size_t)(I - 1), 1e-7, 1e-5);
    // the state of the instances the CPU and the GPU both trained (NaN compares unequal,
    // so the frozen last instance is compared on its own below)
    for (int tns = 0; tns < TMS_NTENSORS; tns++) {
        if (!L->present[tns]) continue;
        const size_t count = L->per_instance[tns] * (size_t)(I - 1);
        char name[64];
        snprintf(name, sizeof(name), "params.%s", tms_tensor_names[tns]);
        // floor 1e-5 x the tensor's largest |value| (gpu_step's tolerance): a gradient that is
        // a sum of terms of both signs has a larger relative rounding error than its terms
        const float *rp = pc + L->offset[tns], *rm = mc + L->offset[tns];
        bad += compare(name, pg + L->offset[tns], rp, count, 1e-5 * max_abs(rp, count), 1e-5);
        snprintf(name, sizeof(name), "adam_m.%s", tms_tensor_names[tns]);
        bad += compare(name, mg + L->offset[tns], rm, count, 1e-5 * max_abs(rm, count), 1e-5);
    }
    // the last chunk: instance I - 2 trained (it moved), instance I - 1 frozen at step t
    const size_t w_last = L->offset[TMS_T_W] + (size_t)(I - 2) * 2;
    CHECK(pg[w_last] != g.params[w_last] || pg[w_last + 1] != g.params[w_last + 1],
          "instance %d (second chunk) was not trained", I - 2);
    long healthy = 0;
    for (int i = 0; i < I - 1; i++) healthy += dg[i] == 0;
    CHECK(healthy == I - 1, "%ld of %d healthy instances marked diverged", (long)(I - 1) - healthy, I - 1);
    CHECK(dg[I - 1] == t + 1 && dc[I - 1] == t + 1, "last instance: diverged_step gpu %ld cpu %ld, expected %ld",
          dg[I - 1], dc[I - 1], t + 1);
    CHECK(isnan(loss_g[I - 1]) && isnan(loss_c[I - 1]), "last instance's loss: gpu %g cpu %g", loss_g[I - 1],
          loss_c[I - 1]);
    for (int tns = 0; tns < TMS_NTENSORS; tns++) {
        if (!L->present[tns]) continue;
        const size_t per = L->per_instance[tns], at = L->offset[tns] + per * (size_t)(I - 1);
        CHECK(memcmp(pg + at, g.params + at, per * sizeof(float)) == 0, "frozen instance: %s changed",
              tms_tensor_names[tns]);
        for (size_t e = 0; e < per; e++) CHECK(mg[at + e] == 0.0f, "frozen instance: adam_m.%s moved", tms_tensor_names[tns]);
    }
    // the evaluation over all instances
    double *eg = malloc(I * sizeof(double)), *ec = malloc(I * sizeof(double));
    CHECK(gpu.evaluate(&gpu, 4, eg, NULL) == 0, "gpu evaluate");
    CHECK(cpu_eval_loss(&g, pc, 4, ec) == 0, "cpu eval");
    long ebad = 0;
    for (int i = 0; i < I - 1; i++)
        if (!(fabs(eg[i] - ec[i]) <= 1e-5 * fabs(ec[i]) + 1e-12)) {
            if (ebad < 5) fprintf(stderr, "  MISMATCH eval loss[%d]: gpu %.9g cpu %.9g\n", i, eg[i], ec[i]);
            ebad++;
        }
    CHECK(ebad == 0, "%ld of %d evaluation losses differ", ebad, I - 1);
    CHECK(isnan(eg[I - 1]) && isnan(ec[I - 1]), "the NaN instance's evaluation: gpu %g cpu %g", eg[I - 1], ec[I - 1]);
    printf("  %d instances: one step and the evaluation agree with the CPU (%ld mismatches)\n", I, bad + ebad);
    CHECK(bad == 0, "%ld mismatches with the CPU", bad);
    free(loss_c); free(loss_g); free(pc); free(mc); free(pg); free(mg); free(dc); free(dg); free(eg); free(ec);
    cpu.destroy(&cpu);
    gpu.destroy(&gpu);
    problem_free(&g);
    return check_finish("test_gpu_chunks");
}
