/* Timers and a one-line progress bar on stderr.  On a terminal the line is
 * redrawn in place with \r at most 10 times a second; otherwise (a log file,
 * a pipe) only the final line is printed. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "netrt.h"

double netrt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void netrt_progress_start(netrt_progress *p, const char *label, int64_t total) {
    p->label = label ? label : "";
    p->total = total;
    p->done = 0;
    p->start = netrt_now();
    p->last_draw = 0;
    p->tty = isatty(fileno(stderr)) != 0;
}

static void draw(netrt_progress *p, double now, const char *extra) {
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int filled = p->total > 0 ? (int)(WIDTH * (p->done < p->total ? p->done : p->total) / p->total)
                              : WIDTH;
    if (filled < 0) filled = 0;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
    fprintf(stderr, "%s%s%s[%s] %lld/%lld  %.1f items/s  %.1fs%s%s%s", p->tty ? "\r" : "", p->label,
            p->label[0] ? " " : "", bar, (long long)p->done, (long long)p->total, rate, elapsed,
            extra && extra[0] ? "  " : "", extra ? extra : "", p->tty ? "\033[K" : "");
    fflush(stderr);
}

void netrt_progress_update(netrt_progress *p, int64_t done, const char *extra) {
    p->done = done;
    if (!p->tty) return;
    double now = netrt_now();
    if (now - p->last_draw < 0.1 && done < p->total) return;
    p->last_draw = now;
    draw(p, now, extra);
}

void netrt_progress_finish(netrt_progress *p, const char *extra) {
    draw(p, netrt_now(), extra);
    fputc('\n', stderr);
    fflush(stderr);
}
