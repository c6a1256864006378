// progress.c: see progress.h.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "progress.h"

double tms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tms_progress_parse(const char *s, tms_progress_mode_t *mode) {
    static const char *const names[] = {"auto", "bar", "lines", "json", "none"};
    for (int k = 0; k < 5; k++)
        if (!strcmp(s, names[k])) { *mode = (tms_progress_mode_t)k; return 0; }
    return -1;
}

static void format_duration(char *out, size_t len, double s) {
    if (s < 0 || s > 1e7) { snprintf(out, len, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, len, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(out, len, "%02ld:%02ld", t / 60, t % 60);
}

void tms_progress_start(tms_progress_t *p, long first, long total, tms_progress_mode_t mode) {
    p->total = total;
    p->first = first;
    if (mode == TMS_PROGRESS_AUTO) mode = isatty(fileno(stderr)) ? TMS_PROGRESS_BAR : TMS_PROGRESS_LINES;
    p->mode = mode;
    p->t0 = tms_now();
    p->last_draw = -1.0;
    p->last_decile = total ? (int)(10 * first / total) : 0;
}

// a JSON number, or null for what JSON cannot hold (NaN, infinities)
static void json_number(char *out, size_t len, double v, const char *fmt) {
    if (isfinite(v)) snprintf(out, len, fmt, v);
    else snprintf(out, len, "null");
}

static void draw(tms_progress_t *p, long step, double loss, int final) {
    double elapsed = tms_now() - p->t0;
    double rate = elapsed > 0 ? (double)(step - p->first) / elapsed : 0.0;
    double eta_s = rate > 0 ? (double)(p->total - step) / rate : NAN;
    if (final) eta_s = 0.0;
    if (p->mode == TMS_PROGRESS_JSON) {
        char l[40], r[40], e[40];
        json_number(l, sizeof(l), loss, "%.9g");
        json_number(r, sizeof(r), rate, "%.1f");
        json_number(e, sizeof(e), eta_s, "%.3f");
        fprintf(stderr, "{\"step\": %ld, \"steps\": %ld, \"loss\": %s, \"steps_per_s\": %s, \"elapsed_s\": %.3f, "
                "\"eta_s\": %s}\n", step, p->total, l, r, elapsed, e);
        fflush(stderr);
        return;
    }
    char eta[32], spent[32];
    format_duration(eta, sizeof(eta), isnan(eta_s) ? -1 : eta_s);
    format_duration(spent, sizeof(spent), elapsed);
    int pct = p->total ? (int)(100.0 * step / p->total) : 100;
    if (p->mode == TMS_PROGRESS_BAR) {
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r[%s] %3d%% %ld/%ld  %.0f steps/s  %s  eta %s  mean loss %.6f%s", bar, pct, step, p->total,
                rate, spent, eta, loss, final ? "\n" : "  ");
    } else {
        fprintf(stderr, "step %ld/%ld (%d%%)  %.0f steps/s  elapsed %s  eta %s  mean loss %.6f\n", step, p->total,
                pct, rate, spent, eta, loss);
    }
    fflush(stderr);
}

void tms_progress_update(tms_progress_t *p, long step, double mean_loss) {
    switch (p->mode) {
    case TMS_PROGRESS_BAR:
    case TMS_PROGRESS_JSON: {
        if (step >= p->total) return; // tms_progress_finish draws the last step, once
        double now = tms_now();
        if (now - p->last_draw < 0.1) return;
        p->last_draw = now;
        draw(p, step, mean_loss, 0);
        break;
    }
    case TMS_PROGRESS_LINES: {
        int decile = p->total ? (int)(10 * step / p->total) : 10;
        if (decile > p->last_decile && step < p->total) {
            p->last_decile = decile;
            draw(p, step, mean_loss, 0);
        }
        break;
    }
    default:
        break;
    }
}

void tms_progress_finish(tms_progress_t *p, double mean_loss) {
    if (p->mode == TMS_PROGRESS_NONE) return;
    draw(p, p->total, mean_loss, 1);
}

void tms_progress_abort(tms_progress_t *p) {
    if (p->mode == TMS_PROGRESS_BAR) fprintf(stderr, "\n");
}
