/* netc stats: per-layer parameters and multiply-accumulates, with totals. */
#ifndef NETC_STATS_H
#define NETC_STATS_H

#include <stdio.h>

#include "ir.h"

/* Prints the table for g's inference nodes (call before any pass, so that
 * batchnorms are counted as the net declares them). */
void stats_print(Graph *g, FILE *f);

#endif
