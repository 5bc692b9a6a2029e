/*
 * persist_apply.c: the store's writer: applying batches in one LMDB write
 * transaction (persist_commit_many), the reference counting that retained
 * entries, queue entries and wills take on their messages, and the purge of
 * what has expired. One thread at a time (LMDB serialises writers anyway).
 */
#include "config.h"

#include "persist_int.h"
#include "persist_codec.h"

#include "alloc.h"

#include <string.h>

static MDB_val mval(const void *p, size_t n)
{
	MDB_val v = { n, (void *)p };
	return v;
}

bool pw_msg_exists(struct pwctx *w, uint64_t id)
{
	uint8_t k[8];
	MDB_val key, val;
	pcodec_put_u64(k, id);
	key = mval(k, 8);
	return id != 0 && mdb_get(w->txn, w->p->refs, &key, &val) == 0;
}

int pw_ref(struct pwctx *w, uint64_t id, int delta)
{
	uint8_t k[8], v[PCODEC_REFS_SIZE];
	MDB_val key, val;
	uint32_t refs;
	int rc;

	if (id == 0)
		return 0;
	pcodec_put_u64(k, id);
	key = mval(k, 8);
	rc = mdb_get(w->txn, w->p->refs, &key, &val);
	if (rc == MDB_NOTFOUND || (rc == 0 && pcodec_dec_refs(val.mv_data, val.mv_size, &refs) != 0)) {
		w->p->anomalies++;
		return 0;
	}
	if (rc != 0)
		return persist_mdb_fail(w->p, rc, "reading a reference count");
	if (delta < 0 && refs <= (uint32_t)-delta) {
		if ((rc = mdb_del(w->txn, w->p->refs, &key, NULL)) != 0)
			return persist_mdb_fail(w->p, rc, "deleting a message");
		rc = mdb_del(w->txn, w->p->msgs, &key, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return persist_mdb_fail(w->p, rc, "deleting a message");
		if (refs < (uint32_t)-delta)
			w->p->anomalies++;
		w->msgs_deleted++;
		return 0;
	}
	refs = delta < 0 ? refs - (uint32_t)-delta : refs + (uint32_t)delta;
	val = mval(v, pcodec_enc_refs(v, refs));
	if ((rc = mdb_put(w->txn, w->p->refs, &key, &val, 0)) != 0)
		return persist_mdb_fail(w->p, rc, "writing a reference count");
	return 0;
}

/* The message id a stored record names (0 when there is none or it is undecodable). */
static uint64_t old_ref(struct pwctx *w, MDB_dbi dbi, MDB_val *key, bool *found)
{
	MDB_val val;
	uint64_t id = 0;
	struct persist_session s;
	struct persist_qentry e;

	*found = mdb_get(w->txn, dbi, key, &val) == 0;
	if (!*found)
		return 0;
	if (dbi == w->p->retained) {
		if (pcodec_dec_id(val.mv_data, val.mv_size, &id) != 0)
			id = 0;
	} else if (dbi == w->p->sessions) {
		if (pcodec_dec_session(val.mv_data, val.mv_size, &s) == 0)
			id = s.will_id;
	} else if (dbi == w->p->queue) {
		if (pcodec_dec_qentry(val.mv_data, val.mv_size, &e) == 0)
			id = e.msg_id;
	}
	return id;
}

/* Puts a record that names message `ref`, moving the reference from the record it replaces. */
static int put_ref(struct pwctx *w, MDB_dbi dbi, MDB_val *key, MDB_val *val, uint64_t ref)
{
	bool found;
	uint64_t old = old_ref(w, dbi, key, &found);
	int rc;

	if ((rc = mdb_put(w->txn, dbi, key, val, 0)) != 0)
		return persist_mdb_fail(w->p, rc, "writing a record");
	if (ref && (rc = pw_ref(w, ref, 1)) != 0)
		return rc;
	return old ? pw_ref(w, old, -1) : 0;
}

/* Deletes a record, dropping the reference it held. */
static int del_ref(struct pwctx *w, MDB_dbi dbi, MDB_val *key)
{
	bool found;
	uint64_t old = old_ref(w, dbi, key, &found);
	int rc;

	if (!found) {
		w->p->anomalies++;
		return 0;
	}
	if ((rc = mdb_del(w->txn, dbi, key, NULL)) != 0)
		return persist_mdb_fail(w->p, rc, "deleting a record");
	return old ? pw_ref(w, old, -1) : 0;
}

/* Deletes every record of dbi whose key starts with prefix, dropping their references. */
static int del_prefix(struct pwctx *w, MDB_dbi dbi, const uint8_t *prefix, size_t plen)
{
	MDB_cursor *c;
	MDB_val key = mval(prefix, plen), val;
	int rc = mdb_cursor_open(w->txn, dbi, &c);

	if (rc != 0)
		return persist_mdb_fail(w->p, rc, "opening a cursor");
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= plen && memcmp(key.mv_data, prefix, plen) == 0) {
		struct persist_qentry e;
		uint64_t ref = 0;
		if (dbi == w->p->queue && pcodec_dec_qentry(val.mv_data, val.mv_size, &e) == 0)
			ref = e.msg_id;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		if (ref && (rc = pw_ref(w, ref, -1)) != 0) {
			mdb_cursor_close(c);
			return rc;
		}
		key = mval(prefix, plen); /* seek again: plain, whatever LMDB does after a delete */
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : persist_mdb_fail(w->p, rc, "deleting records");
}

int pw_session_delete(struct pwctx *w, const uint8_t *cid, size_t len)
{
	uint8_t prefix[2 + PERSIST_KEY_MAX];
	MDB_val key = mval(cid, len);
	size_t plen;
	int rc;

	if ((rc = del_ref(w, w->p->sessions, &key)) != 0)
		return rc;
	if (len > PERSIST_KEY_MAX)
		return 0;
	plen = pcodec_enc_prefix(prefix, cid, len);
	if ((rc = del_prefix(w, w->p->subs, prefix, plen)) != 0)
		return rc;
	return del_prefix(w, w->p->queue, prefix, plen);
}

/* A session whose will names a missing message is stored without its will. */
static int put_session(struct pwctx *w, MDB_val *key, MDB_val *val, uint64_t will)
{
	struct persist_session s;
	uint8_t *buf;
	MDB_val v2;
	int rc;

	if (will == 0 || pw_msg_exists(w, will))
		return put_ref(w, w->p->sessions, key, val, will);
	w->p->anomalies++;
	if (pcodec_dec_session(val->mv_data, val->mv_size, &s) != 0)
		return 0;
	s.will_id = 0;
	if (!(buf = mem_malloc(val->mv_size)))
		return persist_fail(w->p, PERSIST_ENOMEM, "out of memory");
	v2 = mval(buf, pcodec_enc_session(buf, &s));
	rc = put_ref(w, w->p->sessions, key, &v2, 0);
	mem_free(buf);
	return rc;
}

/* Whether the session owning a subscription or queue key is stored. */
static bool owner_exists(struct pwctx *w, const MDB_val *key)
{
	const uint8_t *cid, *rest;
	size_t cidlen, restlen;
	MDB_val k, v;

	if (pcodec_split_key(key->mv_data, key->mv_size, &cid, &cidlen, &rest, &restlen) != 0)
		return false;
	k = mval(cid, cidlen);
	return mdb_get(w->txn, w->p->sessions, &k, &v) == 0;
}

static int apply_op(struct pwctx *w, const struct persist_batch *b, const struct pop *op)
{
	struct persist *p = w->p;
	MDB_val key = mval(b->bytes + op->koff, op->klen);
	MDB_val val = mval(b->bytes + op->voff, op->vlen), old;
	uint8_t v[PCODEC_REFS_SIZE];
	int rc;

	switch (op->kind) {
	case POP_MSG_PUT:
		if ((rc = mdb_put(w->txn, p->msgs, &key, &val, 0)) != 0)
			return persist_mdb_fail(p, rc, "writing a message");
		if (mdb_get(w->txn, p->refs, &key, &old) == 0)
			return 0;
		val = mval(v, pcodec_enc_refs(v, 0));
		if ((rc = mdb_put(w->txn, p->refs, &key, &val, 0)) != 0)
			return persist_mdb_fail(p, rc, "writing a reference count");
		return 0;
	case POP_MSG_REF:
		return pw_ref(w, op->ref, 1);
	case POP_MSG_UNREF:
		return pw_ref(w, op->ref, -1);
	case POP_RET_SET:
	case POP_Q_PUT:
		/* A queue entry for a session deleted meanwhile (another worker's batch came first). */
		if (!pw_msg_exists(w, op->ref) || (op->kind == POP_Q_PUT && !owner_exists(w, &key))) {
			p->anomalies++;
			return 0;
		}
		return put_ref(w, op->kind == POP_RET_SET ? p->retained : p->queue, &key, &val, op->ref);
	case POP_RET_CLEAR:
		return del_ref(w, p->retained, &key);
	case POP_Q_DEL:
		return del_ref(w, p->queue, &key);
	case POP_SESS_PUT:
		return put_session(w, &key, &val, op->ref);
	case POP_SESS_DEL:
		return pw_session_delete(w, key.mv_data, key.mv_size);
	case POP_SUB_PUT:
		if (!owner_exists(w, &key)) {
			p->anomalies++;
			return 0;
		}
		if ((rc = mdb_put(w->txn, p->subs, &key, &val, 0)) != 0)
			return persist_mdb_fail(p, rc, "writing a subscription");
		return 0;
	case POP_SUB_DEL:
		return del_ref(w, p->subs, &key);
	}
	return persist_fail(p, PERSIST_EINVAL, "unknown batch operation");
}

/* Commits, or aborts when rc says so. */
static int finish(struct pwctx *w, int rc)
{
	if (rc != 0) {
		mdb_txn_abort(w->txn);
		return rc;
	}
	rc = mdb_txn_commit(w->txn);
	return rc == 0 ? 0 : persist_mdb_fail(w->p, rc, "committing");
}

static int begin(struct persist *p, struct pwctx *w)
{
	int rc;
	w->p = p;
	w->msgs_deleted = 0;
	rc = mdb_txn_begin(p->env, NULL, 0, &w->txn);
	return rc == 0 ? 0 : persist_mdb_fail(p, rc, "starting a write transaction");
}

int persist_commit_many(struct persist *p, struct persist_batch *const *b, size_t n)
{
	struct pwctx w;
	uint64_t anomalies = p->anomalies;
	int rc = begin(p, &w);

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		for (size_t j = 0; j < b[i]->n && rc == 0; j++)
			rc = apply_op(&w, b[i], &b[i]->ops[j]);
	if (rc != 0)
		p->anomalies = anomalies;
	return finish(&w, rc);
}

int persist_commit(struct persist *p, struct persist_batch *b)
{
	return persist_commit_many(p, &b, 1);
}

uint64_t persist_anomalies(const struct persist *p)
{
	return p->anomalies;
}

/* --- purge --- */

int keylist_add(struct keylist *l, const void *k, size_t len)
{
	if (l->size - l->used < len + sizeof(size_t)) {
		size_t size = l->size ? l->size * 2 : 4096;
		uint8_t *bytes;
		while (size - l->used < len + sizeof(size_t))
			size *= 2;
		if (!(bytes = mem_realloc(l->bytes, size)))
			return -1;
		l->bytes = bytes;
		l->size = size;
	}
	memcpy(l->bytes + l->used, &len, sizeof(size_t));
	memcpy(l->bytes + l->used + sizeof(size_t), k, len);
	l->used += sizeof(size_t) + len;
	l->n++;
	return 0;
}

bool keylist_next(const struct keylist *l, size_t *off, MDB_val *key)
{
	size_t len;
	if (*off >= l->used)
		return false;
	memcpy(&len, l->bytes + *off, sizeof(size_t));
	*key = mval(l->bytes + *off + sizeof(size_t), len);
	*off += sizeof(size_t) + len;
	return true;
}

/* Whether message id has expired at now. */
static bool msg_expired(struct pwctx *w, uint64_t id, int64_t now)
{
	uint8_t k[8];
	MDB_val key, val;
	struct persist_msg m;
	pcodec_put_u64(k, id);
	key = mval(k, 8);
	return mdb_get(w->txn, w->p->msgs, &key, &val) == 0 &&
	       pcodec_dec_msg(val.mv_data, val.mv_size, &m) == 0 && m.expiry != 0 && m.expiry <= now;
}

enum walk { WALK_SESSIONS, WALK_RETAINED, WALK_QUEUE, WALK_ORPHANS };

/* Gathers the keys of one kind of expired record. */
static int gather(struct pwctx *w, enum walk what, int64_t now, struct keylist *l)
{
	static const char *const names[] = { "sessions", "retained", "queue", "refs" };
	MDB_dbi dbi = what == WALK_SESSIONS ? w->p->sessions : what == WALK_RETAINED ? w->p->retained :
		      what == WALK_QUEUE ? w->p->queue : w->p->refs;
	MDB_cursor *c;
	MDB_val key, val;
	int rc = mdb_cursor_open(w->txn, dbi, &c);

	if (rc != 0)
		return persist_mdb_fail(w->p, rc, "opening a cursor");
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct persist_session s;
		struct persist_qentry e;
		uint64_t id;
		uint32_t refs;
		bool hit = false;

		switch (what) {
		case WALK_SESSIONS:
			hit = pcodec_dec_session(val.mv_data, val.mv_size, &s) == 0 &&
			      s.disconnect_time != 0 && s.expiry_interval != PERSIST_NO_EXPIRY &&
			      s.disconnect_time + (int64_t)s.expiry_interval <= now;
			break;
		case WALK_RETAINED:
			hit = pcodec_dec_id(val.mv_data, val.mv_size, &id) == 0 && msg_expired(w, id, now);
			break;
		case WALK_QUEUE:
			hit = pcodec_dec_qentry(val.mv_data, val.mv_size, &e) == 0 &&
			      e.state == PERSIST_Q_QUEUED && msg_expired(w, e.msg_id, now);
			break;
		case WALK_ORPHANS:
			hit = pcodec_dec_refs(val.mv_data, val.mv_size, &refs) == 0 && refs == 0;
			break;
		}
		if (hit && keylist_add(l, key.mv_data, key.mv_size) != 0) {
			mdb_cursor_close(c);
			return persist_fail(w->p, PERSIST_ENOMEM, "out of memory");
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : persist_mdb_fail(w->p, rc, names[what]);
}

static int purge_walk(struct pwctx *w, enum walk what, int64_t now, size_t *count)
{
	struct keylist l = { 0 };
	MDB_val key;
	size_t off = 0;
	int rc = gather(w, what, now, &l);

	while (rc == 0 && keylist_next(&l, &off, &key)) {
		switch (what) {
		case WALK_SESSIONS:
			rc = pw_session_delete(w, key.mv_data, key.mv_size);
			break;
		case WALK_RETAINED:
			rc = del_ref(w, w->p->retained, &key);
			break;
		case WALK_QUEUE:
			rc = del_ref(w, w->p->queue, &key);
			break;
		case WALK_ORPHANS:
			if ((rc = mdb_del(w->txn, w->p->refs, &key, NULL)) == 0) {
				rc = mdb_del(w->txn, w->p->msgs, &key, NULL);
				rc = rc == MDB_NOTFOUND ? 0 : rc;
			}
			if (rc != 0)
				rc = persist_mdb_fail(w->p, rc, "deleting a message");
			else
				w->msgs_deleted++;
			break;
		}
	}
	*count = l.n;
	mem_free(l.bytes);
	return rc;
}

int persist_purge(struct persist *p, int64_t now, struct persist_purge_stats *st)
{
	struct persist_purge_stats s = { 0 };
	struct pwctx w;
	size_t orphans;
	int rc = begin(p, &w);

	if (rc != 0)
		return rc;
	rc = purge_walk(&w, WALK_SESSIONS, now, &s.sessions);
	if (rc == 0)
		rc = purge_walk(&w, WALK_RETAINED, now, &s.retained);
	if (rc == 0)
		rc = purge_walk(&w, WALK_QUEUE, now, &s.queued);
	if (rc == 0)
		rc = purge_walk(&w, WALK_ORPHANS, now, &orphans);
	s.messages = w.msgs_deleted;
	if ((rc = finish(&w, rc)) == 0 && st)
		*st = s;
	return rc;
}
