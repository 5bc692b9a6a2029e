/*
 * metrics.h: the broker's state in the Prometheus text format (/metrics) and
 * its liveness and readiness (/health, /ready), for the HTTP side (http.h).
 *
 * Reads counters any thread may read (workers' relaxed atomics, broker
 * gauges, the retained and subscription counts under their locks, plugin
 * and store statistics), so it runs on whichever worker got the request.
 */
#ifndef MIDGE_METRICS_H
#define MIDGE_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct broker;

/* A growable text buffer. */
struct textbuf {
	char *p;
	size_t len, cap;
	bool failed;  /* out of memory: the text is incomplete */
};
void textbuf_printf(struct textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void textbuf_free(struct textbuf *t);

/* Appends every metric; t->failed when memory ran out. */
void metrics_render(struct broker *b, struct textbuf *t);

/* Ready: the listeners are open and, with persistence, the store too. */
/* Whether the node works with less than it should (NATS away), and why (/health: 503). */
bool metrics_degraded(const struct broker *b, const char **why);

bool metrics_ready(const struct broker *b, const char **why);

#endif
