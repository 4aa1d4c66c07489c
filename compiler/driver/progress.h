/* progress.h - the progress line of the moss command (progress.c): long
 * work (a large compile, calibration, moss compare over many targets)
 * shows one line on standard error, redrawn in place,
 *
 *   moss: comparing 2/5 targets, rpi4: partition  1.3 s
 *
 * the stage of each level of nested work (outermost first), its done/total
 * and the seconds since the outermost began. Nothing is drawn unless
 * moss_progress_enable(1) was called (main.c: standard error is a terminal
 * and neither -q nor -v was given), before the work has run 0.3 s (so fast
 * compiles print nothing), or more than ten times a second. The line is
 * cleared when the outermost level ends, and by moss_progress_clear()
 * before anything else goes to the terminal (diagnostics, summaries).
 *
 * Environment: MOSS_PROGRESS_DELAY=S starts drawing after S seconds instead
 * of 0.3; S = 0 also draws every update at once (the tests use it, so that
 * short work shows every step).
 *
 * One line per process: the state is this file's, for the one thread that
 * runs the command. Library code below the driver never calls this; it
 * reports through moss_ctx.progress (moss_progress_report below). */
#ifndef MOSS_DRIVER_PROGRESS_H
#define MOSS_DRIVER_PROGRESS_H

#include <stdint.h>

/* |on| nonzero: draw from now on (the caller checked isatty); 0: never. */
void moss_progress_enable(int on);

/* A level of work starts inside the current one: |stage| ("comparing"),
 * |total| items (0: not counted) of |unit| ("targets"; may be NULL). The
 * strings are borrowed until the level ends or is renamed. */
void moss_progress_begin(const char *stage, int64_t total, const char *unit);

/* The innermost level has |done| of its items done. */
void moss_progress_step(int64_t done);

/* The innermost level goes on as |stage|, |done| of |total| |unit|. */
void moss_progress_stage(const char *stage, int64_t done, int64_t total, const char *unit);

/* The innermost level works on |item| now (a target's name; NULL: none). */
void moss_progress_item(const char *item);

/* The innermost level ends; the line is cleared when it was the last. */
void moss_progress_end(void);

/* Erases the line, if drawn, before other output; the next update draws
 * it again. */
void moss_progress_clear(void);

/* moss_ctx.progress for the layers below the driver: the innermost level
 * goes on as step |what|, |done| of |total| (a pass, "kernels"). */
void moss_progress_report(void *user, const char *what, int64_t done, int64_t total);

#endif
