// progress.h: progress of a long run on stderr. On a terminal, a bar redrawn in
// place with steps/s, ETA and the mean loss; otherwise (cluster logs, pipes) one
// plain line about every 10% of the run.
#ifndef TMS_PROGRESS_H
#define TMS_PROGRESS_H

typedef struct {
    long total;
    int tty;
    int quiet;
    double t0;          // start time (s)
    double last_draw;   // last redraw (s), terminal only
    int last_decile;    // last 10% mark printed, plain output only
} tms_progress_t;

double tms_now(void); // monotonic seconds
void tms_progress_start(tms_progress_t *p, long total, int quiet);
// step = steps done so far; mean_loss = mean over instances of the latest logged loss
void tms_progress_update(tms_progress_t *p, long step, double mean_loss);
void tms_progress_finish(tms_progress_t *p, double mean_loss);

#endif
