/*
 * store_int.h: what store.c, store_record.c and store_restore.c share. Not
 * for the rest of the broker, which uses store.h.
 */
#ifndef MIDGE_STORE_INT_H
#define MIDGE_STORE_INT_H

#include "persist.h"
#include "persist_writer.h"
#include "store.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct store {
	struct persist *p;
	struct persist_writer *writer;
	bool hold;                    /* acknowledgements wait for durability (always, batch) */
	_Atomic bool closed;          /* shutting down: changes are no longer recorded */
	_Atomic uint64_t last_msg_id; /* ids handed out so far (continues after the stored ones) */
	_Atomic uint64_t last_seq;    /* queue sequence numbers, likewise */
	_Atomic int64_t last_error_log;
};

/* The open store, or NULL when off or closing. */
struct store *store_of(const struct broker *b);
/* This turn's batch of w (created on first use), or NULL when out of memory. */
struct persist_batch *store_batch(struct worker *w);
/* Logs a failure to record a change, at most once a second. */
void store_log_failure(struct store *st, const char *what, int rc);

/* Restores retained messages and sessions into the broker (store_restore.c). */
int store_restore(struct broker *b, struct store *st, const char *dir);

#endif
