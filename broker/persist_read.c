/*
 * persist_read.c: reading the durable store. Each call runs in its own LMDB
 * read transaction (MDB_NOTLS: any thread, concurrently with the writer) and
 * decodes every record before handing a view of it to the callback;
 * undecodable records are skipped by walks and reported by gets.
 */
#include "config.h"

#include "persist_int.h"
#include "persist_codec.h"

#include <string.h>

static int rbegin(struct persist *p, MDB_txn **txn)
{
	int rc = mdb_txn_begin(p->env, NULL, MDB_RDONLY, txn);
	return rc == 0 ? 0 : persist_mdb_fail(NULL, rc, "");
}

static int get(struct persist *p, MDB_dbi dbi, const void *k, size_t klen, MDB_txn **txn,
	       MDB_val *val)
{
	MDB_val key = { klen, (void *)k };
	int rc;

	if (klen == 0 || klen > PERSIST_KEY_MAX)
		return PERSIST_ENOTFOUND;
	if ((rc = rbegin(p, txn)) != 0)
		return rc;
	rc = mdb_get(*txn, dbi, &key, val);
	if (rc == 0)
		return 0;
	mdb_txn_abort(*txn);
	return rc == MDB_NOTFOUND ? PERSIST_ENOTFOUND : persist_mdb_fail(NULL, rc, "");
}

/* The references of message key k (0 when the count is missing or undecodable). */
static uint32_t refs_of(struct persist *p, MDB_txn *txn, MDB_val *k)
{
	MDB_val val;
	uint32_t refs = 0;
	if (mdb_get(txn, p->refs, k, &val) != 0 || pcodec_dec_refs(val.mv_data, val.mv_size, &refs) != 0)
		return 0;
	return refs;
}

int persist_msg_get(struct persist *p, uint64_t id, persist_msg_fn fn, void *arg)
{
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	MDB_txn *txn;
	struct persist_msg m;
	int rc;

	pcodec_put_u64(k, id);
	if ((rc = get(p, p->msgs, k, 8, &txn, &val)) != 0)
		return rc;
	rc = pcodec_dec_msg(val.mv_data, val.mv_size, &m) == 0 ? 0 : PERSIST_EDAMAGED;
	if (rc == 0)
		fn(id, &m, refs_of(p, txn, &key), arg);
	mdb_txn_abort(txn);
	return rc;
}

int persist_retained_get(struct persist *p, const void *topic, size_t len, uint64_t *msg_id)
{
	MDB_val val;
	MDB_txn *txn;
	int rc = get(p, p->retained, topic, len, &txn, &val);

	if (rc != 0)
		return rc;
	rc = pcodec_dec_id(val.mv_data, val.mv_size, msg_id) == 0 ? 0 : PERSIST_EDAMAGED;
	mdb_txn_abort(txn);
	return rc;
}

int persist_session_get(struct persist *p, const void *cid, size_t len, persist_session_fn fn,
			void *arg)
{
	MDB_val val;
	MDB_txn *txn;
	struct persist_session s;
	int rc = get(p, p->sessions, cid, len, &txn, &val);

	if (rc != 0)
		return rc;
	rc = pcodec_dec_session(val.mv_data, val.mv_size, &s) == 0 ? 0 : PERSIST_EDAMAGED;
	if (rc == 0)
		fn(cid, len, &s, arg);
	mdb_txn_abort(txn);
	return rc;
}

enum rwalk { RW_MSGS, RW_RETAINED, RW_SESSIONS, RW_SUBS, RW_QUEUE };

struct rwalk_cb {
	persist_msg_fn msg;
	persist_retained_fn ret;
	persist_session_fn sess;
	persist_sub_fn sub;
	persist_queue_fn q;
	void *arg;
};

/* Decodes one record and calls back; returns whether it was good. */
static bool visit(struct persist *p, MDB_txn *txn, enum rwalk what, MDB_val *key, MDB_val *val,
		  const struct rwalk_cb *cb)
{
	const uint8_t *cid, *rest;
	size_t cidlen, restlen;
	struct persist_msg m;
	struct persist_session s;
	struct persist_sub sub;
	struct persist_qentry e;
	uint64_t id;

	switch (what) {
	case RW_MSGS:
		/* message ids count from 1 (0 is "no message", e.g. no will): a record keyed 0 is damage */
		if (key->mv_size != 8 || pcodec_get_u64(key->mv_data) == 0 ||
		    pcodec_dec_msg(val->mv_data, val->mv_size, &m) != 0)
			return false;
		cb->msg(pcodec_get_u64(key->mv_data), &m, refs_of(p, txn, key), cb->arg);
		return true;
	case RW_RETAINED:
		if (pcodec_dec_id(val->mv_data, val->mv_size, &id) != 0)
			return false;
		cb->ret(key->mv_data, key->mv_size, id, cb->arg);
		return true;
	case RW_SESSIONS:
		if (pcodec_dec_session(val->mv_data, val->mv_size, &s) != 0)
			return false;
		cb->sess(key->mv_data, key->mv_size, &s, cb->arg);
		return true;
	case RW_SUBS:
		if (pcodec_split_key(key->mv_data, key->mv_size, &cid, &cidlen, &rest, &restlen) != 0 ||
		    restlen == 0 || pcodec_dec_sub(val->mv_data, val->mv_size, &sub) != 0)
			return false;
		cb->sub(rest, restlen, &sub, cb->arg);
		return true;
	case RW_QUEUE:
		if (pcodec_split_key(key->mv_data, key->mv_size, &cid, &cidlen, &rest, &restlen) != 0 ||
		    restlen != 8 || pcodec_dec_qentry(val->mv_data, val->mv_size, &e) != 0)
			return false;
		cb->q(pcodec_get_u64(rest), &e, cb->arg);
		return true;
	}
	return false;
}

/* Walks dbi (only keys starting with prefix when plen > 0). */
static long walk(struct persist *p, MDB_dbi dbi, enum rwalk what, const uint8_t *prefix, size_t plen,
		 const struct rwalk_cb *cb)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val key = { plen, (void *)prefix }, val;
	long n = 0;
	int rc;

	if ((rc = rbegin(p, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0) {
		mdb_txn_abort(txn);
		return persist_mdb_fail(NULL, rc, "");
	}
	for (rc = mdb_cursor_get(c, &key, &val, plen ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if (plen && (key.mv_size < plen || memcmp(key.mv_data, prefix, plen) != 0))
			break;
		if (visit(p, txn, what, &key, &val, cb))
			n++;
		else
			atomic_fetch_add_explicit(&p->undecodable, 1, memory_order_relaxed);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? n : persist_mdb_fail(NULL, rc, "");
}

long persist_msg_iter(struct persist *p, persist_msg_fn fn, void *arg)
{
	struct rwalk_cb cb = { .msg = fn, .arg = arg };
	return walk(p, p->msgs, RW_MSGS, NULL, 0, &cb);
}

long persist_retained_iter(struct persist *p, persist_retained_fn fn, void *arg)
{
	struct rwalk_cb cb = { .ret = fn, .arg = arg };
	return walk(p, p->retained, RW_RETAINED, NULL, 0, &cb);
}

long persist_session_iter(struct persist *p, persist_session_fn fn, void *arg)
{
	struct rwalk_cb cb = { .sess = fn, .arg = arg };
	return walk(p, p->sessions, RW_SESSIONS, NULL, 0, &cb);
}

long persist_sub_iter(struct persist *p, const void *cid, size_t len, persist_sub_fn fn, void *arg)
{
	uint8_t prefix[2 + PERSIST_KEY_MAX];
	struct rwalk_cb cb = { .sub = fn, .arg = arg };
	if (len > PERSIST_KEY_MAX)
		return 0;
	return walk(p, p->subs, RW_SUBS, prefix, pcodec_enc_prefix(prefix, cid, len), &cb);
}

long persist_queue_iter(struct persist *p, const void *cid, size_t len, persist_queue_fn fn,
			void *arg)
{
	uint8_t prefix[2 + PERSIST_KEY_MAX];
	struct rwalk_cb cb = { .q = fn, .arg = arg };
	if (len > PERSIST_KEY_MAX)
		return 0;
	return walk(p, p->queue, RW_QUEUE, prefix, pcodec_enc_prefix(prefix, cid, len), &cb);
}

int persist_msg_max_id(struct persist *p, uint64_t *id)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val key, val;
	int rc;

	*id = 0;
	if ((rc = rbegin(p, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, p->msgs, &c)) == 0) {
		rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
		if (rc == 0 && key.mv_size == 8)
			*id = pcodec_get_u64(key.mv_data);
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : persist_mdb_fail(NULL, rc, "");
}
