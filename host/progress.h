// progress.h: progress of a long run on stderr, in one of four forms (tms train --progress):
//   bar    a bar redrawn in place (\r) with steps/s, ETA and the mean loss (a terminal's)
//   lines  one plain line about every 10% of the run (cluster logs, pipes)
//   json   one JSON object per line, at most ten a second and always the last step, for
//          programs that drive tms (tmslab.train):
//          {"step": 1000, "steps": 10000, "loss": 0.0218, "steps_per_s": 4084.2,
//           "elapsed_s": 0.245, "eta_s": 2.2}
//          loss: the mean over instances of each one's latest logged training loss (null
//          when none is finite); steps_per_s counts the steps of this process (a resumed run
//          starts from its checkpoint's step); eta_s is null before the rate is known
//   none   nothing
// auto is bar on a terminal, lines otherwise.
#ifndef TMS_PROGRESS_H
#define TMS_PROGRESS_H

typedef enum {
    TMS_PROGRESS_AUTO = 0,
    TMS_PROGRESS_BAR,
    TMS_PROGRESS_LINES,
    TMS_PROGRESS_JSON,
    TMS_PROGRESS_NONE,
} tms_progress_mode_t;

typedef struct {
    long total;
    long first;         // the step this process started from (a resume's checkpoint)
    tms_progress_mode_t mode; // never AUTO once started
    double t0;          // start time (s)
    double last_draw;   // last redraw (s): bar and json
    int last_decile;    // last 10% mark printed: lines
} tms_progress_t;

double tms_now(void); // monotonic seconds
// "auto", "bar", "lines", "json", "none" -> 0 and *mode; anything else -1
int tms_progress_parse(const char *s, tms_progress_mode_t *mode);
// first = the step training starts from (0, or a resumed run's checkpoint step)
void tms_progress_start(tms_progress_t *p, long first, long total, tms_progress_mode_t mode);
// step = steps done so far; mean_loss = mean over instances of the latest logged loss
void tms_progress_update(tms_progress_t *p, long step, double mean_loss);
void tms_progress_finish(tms_progress_t *p, double mean_loss);
// an interrupted run: end the bar's line (the messages that follow start on their own)
void tms_progress_abort(tms_progress_t *p);

#endif
