/*
 * persist_int.h: internals shared by the durable store's files (persist_*.c):
 * the open store, a batch's operations, and the writer's helpers. Not for
 * the rest of the broker, which uses persist.h.
 */
#ifndef MIDGE_PERSIST_INT_H
#define MIDGE_PERSIST_INT_H

#include "persist.h"

#include <lmdb.h>
#include <stdatomic.h>

/* The longest key a batch accepts: LMDB's default (and Debian's) compile-time limit. */
#define PERSIST_KEY_MAX 511u

struct persist {
	MDB_env *env;
	MDB_dbi meta, msgs, refs, retained, sessions, subs, queue;
	enum persist_sync sync;
	uint64_t anomalies;
	uint64_t recovered;
	_Atomic uint64_t undecodable;  /* records the iterators skipped */
	char err[512];
};

enum pop_kind {
	POP_MSG_PUT, POP_MSG_REF, POP_MSG_UNREF,
	POP_RET_SET, POP_RET_CLEAR,
	POP_SESS_PUT, POP_SESS_DEL,
	POP_SUB_PUT, POP_SUB_DEL,
	POP_Q_PUT, POP_Q_DEL,
};

/* One operation: key and value are ranges of the batch's bytes; ref is the message the
 * new record names (0 = none). */
struct pop {
	enum pop_kind kind;
	size_t koff, klen, voff, vlen;
	uint64_t ref;
};

struct persist_batch {
	struct pop *ops;
	size_t n, cap;
	uint8_t *bytes;
	size_t used, size;
};

/* Records an error sentence in p->err and returns code. */
int persist_fail(struct persist *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Maps an LMDB result to a PERSIST_* one (recording it in p->err when p is not NULL). */
int persist_mdb_fail(struct persist *p, int rc, const char *what);

/* The writer's context for one write transaction. */
struct pwctx {
	struct persist *p;
	MDB_txn *txn;
	size_t msgs_deleted;
};

/* Adds delta to message id's references, deleting it at 0. Missing message: an anomaly. */
int pw_ref(struct pwctx *w, uint64_t id, int delta);
/* Whether message id is stored. */
bool pw_msg_exists(struct pwctx *w, uint64_t id);
/* Deletes a session (by its key) with its subscriptions and queue, dropping references. */
int pw_session_delete(struct pwctx *w, const uint8_t *cid, size_t len);

/* Keys gathered during a walk, to change once the walk is over. */
struct keylist {
	uint8_t *bytes;
	size_t used, size;
	size_t n;
};
int keylist_add(struct keylist *l, const void *k, size_t len);
/* Iterates: *off starts at 0. */
bool keylist_next(const struct keylist *l, size_t *off, MDB_val *key);

/* Checks the structure of an LMDB data file before LMDB maps it (persist_check.c): NULL
 * when usable (or missing), else why not. */
const char *persist_check_file(const char *path);

/* Recovery at open (persist_recover.c): checks every record (see persist_options.recover). */
int persist_recover_records(struct persist *p);

#endif
