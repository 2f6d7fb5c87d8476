/* netc stats: per-layer parameters and multiply-accumulates, with totals,
 * and the activation memory of the emitted program with and without the
 * memory plan. */
#ifndef NETC_STATS_H
#define NETC_STATS_H

#include <stdio.h>

#include "ir.h"

/* Prints the table for g's inference nodes (call before any pass, so that
 * batchnorms are counted as the net declares them). */
void stats_print(Graph *g, FILE *f);

/* Prints the activation memory of g as it will be emitted (call after the
 * passes named by `pipeline`, which the text mentions): the memory plan's
 * peak, the arena without a plan, the kept part and the lower bound. */
void stats_print_memory(Graph *g, const char *pipeline, FILE *f);

#endif
