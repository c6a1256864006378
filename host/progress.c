// progress.c: see progress.h.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "progress.h"

double tms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_duration(char *out, size_t len, double s) {
    if (s < 0 || s > 1e7) { snprintf(out, len, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, len, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(out, len, "%02ld:%02ld", t / 60, t % 60);
}

void tms_progress_start(tms_progress_t *p, long total, int quiet) {
    p->total = total;
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
    p->t0 = tms_now();
    p->last_draw = -1.0;
    p->last_decile = 0;
}

static void draw(tms_progress_t *p, long step, double loss, int final) {
    double elapsed = tms_now() - p->t0;
    double rate = elapsed > 0 ? step / elapsed : 0.0;
    char eta[32], spent[32];
    format_duration(eta, sizeof(eta), rate > 0 ? (p->total - step) / rate : -1);
    format_duration(spent, sizeof(spent), elapsed);
    int pct = p->total ? (int)(100.0 * step / p->total) : 100;
    if (p->tty) {
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r[%s] %3d%% %ld/%ld  %.0f steps/s  %s  eta %s  mean loss %.6f%s", bar, pct, step, p->total,
                rate, spent, final ? "00:00" : eta, loss, final ? "\n" : "  ");
    } else {
        fprintf(stderr, "step %ld/%ld (%d%%)  %.0f steps/s  elapsed %s  eta %s  mean loss %.6f\n", step, p->total,
                pct, rate, spent, final ? "00:00" : eta, loss);
    }
    fflush(stderr);
}

void tms_progress_update(tms_progress_t *p, long step, double mean_loss) {
    if (p->quiet) return;
    if (p->tty) {
        double now = tms_now();
        if (now - p->last_draw < 0.1) return;
        p->last_draw = now;
        draw(p, step, mean_loss, 0);
    } else {
        int decile = p->total ? (int)(10 * step / p->total) : 10;
        if (decile > p->last_decile && step < p->total) {
            p->last_decile = decile;
            draw(p, step, mean_loss, 0);
        }
    }
}

void tms_progress_finish(tms_progress_t *p, double mean_loss) {
    if (p->quiet) return;
    draw(p, p->total, mean_loss, 1);
}
