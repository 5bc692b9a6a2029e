/*
 * persist.h: the durable store, over LMDB (the broker's side is store.h).
 *
 * Owns the on-disk records: messages (stored once, by a 64-bit id chosen by
 * the broker, with a reference count), retained topics, sessions, their
 * subscriptions and their queues. Every change goes into a batch (a list of
 * operations, built on any thread); one writer thread applies batches in one
 * LMDB write transaction (persist_commit). Reads open their own read
 * transaction and may run on any thread, concurrently with the writer.
 */
#ifndef MIDGE_PERSIST_H
#define MIDGE_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The store's format version (the header record); a store of another version is refused. */
#define PERSIST_FORMAT_VERSION 1u

/* Results: 0, or one of these (negative). persist_error() has the details. */
enum {
	PERSIST_OK = 0,
	PERSIST_ENOTFOUND = -1, /* no such record */
	PERSIST_EINVAL = -2,    /* bad argument (e.g. a key longer than persist_max_key()) */
	PERSIST_ENOMEM = -3,
	PERSIST_EIO = -4,       /* LMDB or the file system failed */
	PERSIST_EFULL = -5,     /* the map is full: reopen with a larger map_size */
	PERSIST_EVERSION = -6,  /* the store has an unknown format version */
	PERSIST_EDAMAGED = -7,  /* the store's header or LMDB's own pages are damaged */
};

enum persist_sync {
	/* Each commit is durable when persist_commit() returns (LMDB's default: data and meta fsync). */
	PERSIST_SYNC_ALWAYS = 0,
	/* One fsync per commit (MDB_NOMETASYNC): a system crash may undo the last
	 * commit, never corrupt the store. A process crash loses nothing. */
	PERSIST_SYNC_BATCH,
	/* No fsync at commit (MDB_NOSYNC); the broker calls persist_sync() on a timer.
	 * A system crash loses the commits since the last sync and, on file systems
	 * that reorder writes, may damage the store. A process crash loses nothing. */
	PERSIST_SYNC_PERIODIC,
};

struct persist_options {
	enum persist_sync sync;
	size_t map_size; /* the most the data file may grow to; 0 = 1 GiB */
	/*
	 * Start anyway when the store is damaged. What it does:
	 *  - LMDB refuses the data file (bad meta pages, truncated): the file is
	 *    renamed to data.mdb.damaged-<unix time> and an empty store is created;
	 *  - the header record is missing or undecodable: it is rewritten;
	 *  - then every record is checked: undecodable records are deleted, queue
	 *    and retained entries naming a missing message are deleted, so are
	 *    subscriptions and queue entries of a client without a session, a will
	 *    naming a missing message is dropped, and every message's reference
	 *    count is recomputed from the records that name it (unreferenced
	 *    messages are deleted). persist_recovered() counts what was dropped.
	 * A store of a newer format version is refused even so (never destroyed).
	 */
	bool recover;
};

struct persist;

/* A stored message. Views point into the store: valid only during the callback. */
struct persist_msg {
	uint8_t qos;         /* 0..2 */
	bool retain;
	int64_t expiry;      /* wall-clock time (unix seconds) it expires at; 0 = never */
	const uint8_t *topic;
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *props; /* the MQTT 5 properties to forward, encoded */
	size_t props_len;
};

#define PERSIST_NO_EXPIRY UINT32_MAX /* session expiry interval: never */

struct persist_session {
	uint32_t expiry_interval;  /* seconds after disconnect_time; PERSIST_NO_EXPIRY = never */
	int64_t disconnect_time;   /* unix seconds; 0 = connected (never expires) */
	uint8_t protocol;          /* MQTT protocol level: 3, 4 or 5 */
	const char *username;      /* NULL = none; not NUL-terminated in views */
	size_t username_len;
	uint64_t will_id;          /* message id of the will; 0 = no will */
	uint32_t will_delay;       /* seconds */
	uint16_t listener;         /* index of the listener it last connected on */
	/* Incoming QoS 2 packet ids awaiting PUBREL: 2 bytes each, big-endian (nqos2_in of them). */
	const uint8_t *qos2_in;
	size_t nqos2_in;
};

struct persist_sub {
	uint8_t qos;
	uint8_t options;           /* MQTT 5 subscription options byte (no local, RAP, retain handling) */
	uint32_t sub_id;           /* subscription identifier; 0 = none */
};

enum persist_qstate {
	PERSIST_Q_QUEUED = 0,      /* not sent yet */
	PERSIST_Q_INFLIGHT = 1,    /* sent with packet_id; awaiting PUBACK/PUBREC/PUBCOMP */
};
#define PERSIST_QF_DUP 0x01u     /* resend with DUP */
#define PERSIST_QF_PUBREL 0x02u  /* QoS 2: PUBREC received, PUBREL sent (awaiting PUBCOMP) */

struct persist_qentry {
	uint64_t msg_id;
	uint8_t qos;
	bool retain;
	uint8_t state;             /* enum persist_qstate */
	uint16_t packet_id;        /* when inflight */
	uint8_t flags;             /* PERSIST_QF_* */
};

/* --- opening --- */

/*
 * Opens (creating if need be) the store in directory dir (created 0700 if
 * missing). First checks the structure of the whole data file (every page
 * LMDB would use: it reads them all, so the cost grows with the store), since
 * LMDB itself would crash on damaged pages; records are checked as read. On failure returns a negative result, *out stays NULL and err
 * (errlen bytes) says why in a sentence naming the directory. One process
 * may open a directory once (an LMDB rule).
 */
int persist_open(const char *dir, const struct persist_options *o, struct persist **out,
		 char *err, size_t errlen);
/* Syncs and closes; no batch may be applied and no read be running. NULL is fine. */
void persist_close(struct persist *p);
/* The last error of this store as a sentence (the writer's; reads report in their results). */
const char *persist_error(const struct persist *p);
/* Flushes commits to disk (PERSIST_SYNC_PERIODIC calls this on a timer). */
int persist_sync(struct persist *p);
/* The longest key LMDB takes: client id + filter (+2), topic, client id (+10) are limited by it. */
size_t persist_max_key(const struct persist *p);
/* With options.recover: how many records the open dropped or repaired. */
uint64_t persist_recovered(const struct persist *p);
/* Undecodable records the _iter functions skipped so far (any thread). */
uint64_t persist_undecodable(const struct persist *p);

/* --- batches: any thread may build one; persist_commit() applies it --- */

struct persist_batch;

struct persist_batch *persist_batch_new(void);
void persist_batch_free(struct persist_batch *b);
void persist_batch_reset(struct persist_batch *b);
size_t persist_batch_count(const struct persist_batch *b);

/*
 * References: every retained entry, queue entry and session will holds one
 * reference to its message, taken and dropped by the store itself as those
 * records are set, replaced and deleted. persist_msg_ref/unref are for other
 * holders (in-memory ones: recovery recounts references from the stored
 * records only). A message at zero references is deleted when a reference is
 * dropped, or by persist_purge() if it was never referenced. persist_msg_put()
 * of a stored id replaces the message and keeps its references. Keys (topic,
 * client id + 2, client id + filter + 2, client id + 10) are limited to 511
 * bytes by LMDB: longer ones are refused (the broker keeps those in memory).
 * Each add function returns 0, PERSIST_ENOMEM, or PERSIST_EINVAL (key too long
 * for LMDB, or a field out of range).
 */
int persist_msg_put(struct persist_batch *b, uint64_t id, const struct persist_msg *m);
int persist_msg_ref(struct persist_batch *b, uint64_t id);
int persist_msg_unref(struct persist_batch *b, uint64_t id);

int persist_retained_set(struct persist_batch *b, const void *topic, size_t len, uint64_t msg_id);
int persist_retained_clear(struct persist_batch *b, const void *topic, size_t len);

int persist_session_put(struct persist_batch *b, const void *cid, size_t len,
			const struct persist_session *s);
/* Deletes the session with its subscriptions and queue. */
int persist_session_delete(struct persist_batch *b, const void *cid, size_t len);

int persist_sub_put(struct persist_batch *b, const void *cid, size_t len, const void *filter,
		    size_t flen, const struct persist_sub *s);
int persist_sub_delete(struct persist_batch *b, const void *cid, size_t len, const void *filter,
		       size_t flen);

/* Adds or replaces entry seq of the client's queue (ordered by seq). */
int persist_queue_put(struct persist_batch *b, const void *cid, size_t len, uint64_t seq,
		      const struct persist_qentry *e);
int persist_queue_delete(struct persist_batch *b, const void *cid, size_t len, uint64_t seq);

/* --- the writer (one thread at a time) --- */

/*
 * Applies the batches in order in one write transaction and commits it
 * (durable per the sync mode). All or nothing: on failure nothing is applied.
 * Inconsistent operations (a reference to a missing message, deleting what
 * is not there) are skipped and counted in persist_anomalies().
 */
int persist_commit_many(struct persist *p, struct persist_batch *const *b, size_t n);
int persist_commit(struct persist *p, struct persist_batch *b);
uint64_t persist_anomalies(const struct persist *p);

struct persist_purge_stats {
	size_t sessions;  /* expired sessions deleted (with subscriptions and queues) */
	size_t retained;  /* retained entries whose message expired */
	size_t queued;    /* queued (not inflight) entries whose message expired */
	size_t messages;  /* messages deleted (expired or unreferenced) */
};
/* Removes what has expired at wall-clock time now, in one write transaction (writer only). */
int persist_purge(struct persist *p, int64_t now, struct persist_purge_stats *st);

/* --- reads: any thread; callbacks see views valid only during the call --- */

typedef void (*persist_msg_fn)(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg);
typedef void (*persist_retained_fn)(const uint8_t *topic, size_t len, uint64_t msg_id, void *arg);
typedef void (*persist_session_fn)(const uint8_t *cid, size_t len, const struct persist_session *s,
				   void *arg);
typedef void (*persist_sub_fn)(const uint8_t *filter, size_t len, const struct persist_sub *s,
			       void *arg);
typedef void (*persist_queue_fn)(uint64_t seq, const struct persist_qentry *e, void *arg);

/*
 * _get: 0 after calling fn, PERSIST_ENOTFOUND, PERSIST_EDAMAGED (record undecodable), or
 * PERSIST_EIO. _iter: the number of records passed to fn (undecodable ones are
 * skipped and not counted), or a negative result.
 */
int persist_msg_get(struct persist *p, uint64_t id, persist_msg_fn fn, void *arg);
long persist_msg_iter(struct persist *p, persist_msg_fn fn, void *arg);
int persist_retained_get(struct persist *p, const void *topic, size_t len, uint64_t *msg_id);
long persist_retained_iter(struct persist *p, persist_retained_fn fn, void *arg);
int persist_session_get(struct persist *p, const void *cid, size_t len, persist_session_fn fn,
			void *arg);
long persist_session_iter(struct persist *p, persist_session_fn fn, void *arg);
long persist_sub_iter(struct persist *p, const void *cid, size_t len, persist_sub_fn fn, void *arg);
long persist_queue_iter(struct persist *p, const void *cid, size_t len, persist_queue_fn fn,
			void *arg);
/* The largest message id stored (0 when none), so that a restarted broker continues after it. */
int persist_msg_max_id(struct persist *p, uint64_t *id);

#endif
