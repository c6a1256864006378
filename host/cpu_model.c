// cpu_model.c: instantiates the generic model (cpu_model.inc) in float and double,
// and the per-instance optimiser step.
#include "tms.h"

#define REAL float
#define VIEW tms_view_t
#define FN(name) name
#include "cpu_model.inc"
#undef REAL
#undef VIEW
#undef FN

#define REAL double
#define VIEW tms_view_d_t
#define FN(name) name##_d
#include "cpu_model.inc"
#undef REAL
#undef VIEW
#undef FN

void tms_adamw_step(const tms_layout_t *L, int instance, float *params, float *grads,
                    float *adam_m, float *adam_v, const tms_adam_step_t *s) {
    for (int t = 0; t < TMS_NTENSORS; t++) {
        if (!L->present[t]) continue;
        size_t base = L->offset[t] + L->per_instance[t] * (size_t)instance;
        for (size_t e = base; e < base + L->per_instance[t]; e++)
            tms_adam_update(&params[e], &adam_m[e], &adam_v[e], grads[e], s);
    }
}
