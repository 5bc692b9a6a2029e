/*
 * persist_recover.c: the record check that persist_open() runs with
 * options.recover: drops undecodable records and references to missing
 * messages, and recomputes every message's reference count from the records
 * that name it (see persist_options.recover). Subscriptions and queue
 * entries of a client without a session go too. One write transaction.
 */
#include "config.h"

#include "persist_int.h"
#include "persist_codec.h"

#include "alloc.h"

#include <stddef.h>
#include <string.h>

enum rkind { RK_MSGS, RK_RETAINED, RK_SESSIONS, RK_SUBS, RK_QUEUE, RK_ORPHANS };

/* Whether client cid has a (decodable) session. */
static bool has_session(struct pwctx *w, const uint8_t *cid, size_t len)
{
	MDB_val key = { len, (void *)cid }, val;
	struct persist_session s;
	return len > 0 && mdb_get(w->txn, w->p->sessions, &key, &val) == 0 &&
	       pcodec_dec_session(val.mv_data, val.mv_size, &s) == 0;
}

/* Sorts one record: 0 keep, 1 delete, 2 rewrite (a session whose will is missing). Takes
 * the references of records it keeps. */
static int judge(struct pwctx *w, enum rkind k, MDB_val *key, MDB_val *val, int *verdict)
{
	const uint8_t *cid, *rest;
	size_t cidlen, restlen;
	struct persist_msg m;
	struct persist_session s;
	struct persist_sub sub;
	struct persist_qentry e;
	uint64_t id = 0;
	uint32_t refs;

	*verdict = 0;
	switch (k) {
	case RK_MSGS:
		/* a message keyed 0 (damage: ids count from 1) could never be named */
		*verdict = key->mv_size != 8 || pcodec_get_u64(key->mv_data) == 0 ||
			   pcodec_dec_msg(val->mv_data, val->mv_size, &m) != 0;
		return 0;
	case RK_RETAINED:
		if (pcodec_dec_id(val->mv_data, val->mv_size, &id) != 0 || !pw_msg_exists(w, id)) {
			*verdict = 1;
			return 0;
		}
		break;
	case RK_SESSIONS:
		if (pcodec_dec_session(val->mv_data, val->mv_size, &s) != 0) {
			*verdict = 1;
			return 0;
		}
		if (s.will_id && !pw_msg_exists(w, s.will_id)) {
			*verdict = 2;
			return 0;
		}
		id = s.will_id;
		break;
	case RK_SUBS:
		*verdict = pcodec_split_key(key->mv_data, key->mv_size, &cid, &cidlen, &rest, &restlen) != 0 ||
			   restlen == 0 || pcodec_dec_sub(val->mv_data, val->mv_size, &sub) != 0 ||
			   !has_session(w, cid, cidlen);
		return 0;
	case RK_QUEUE:
		if (pcodec_split_key(key->mv_data, key->mv_size, &cid, &cidlen, &rest, &restlen) != 0 ||
		    restlen != 8 || pcodec_dec_qentry(val->mv_data, val->mv_size, &e) != 0 ||
		    !pw_msg_exists(w, e.msg_id) || !has_session(w, cid, cidlen)) {
			*verdict = 1;
			return 0;
		}
		id = e.msg_id;
		break;
	case RK_ORPHANS:
		*verdict = pcodec_dec_refs(val->mv_data, val->mv_size, &refs) != 0 || refs == 0;
		return 0;
	}
	return id ? pw_ref(w, id, 1) : 0;
}

static MDB_dbi dbi_of(struct persist *p, enum rkind k)
{
	static const size_t offs[] = {
		offsetof(struct persist, msgs), offsetof(struct persist, retained),
		offsetof(struct persist, sessions), offsetof(struct persist, subs),
		offsetof(struct persist, queue), offsetof(struct persist, refs),
	};
	MDB_dbi d;
	memcpy(&d, (const char *)p + offs[k], sizeof(d));
	return d;
}

/* Rewrites session key without its will. */
static int drop_will(struct pwctx *w, MDB_val *key)
{
	MDB_val val;
	struct persist_session s;
	uint8_t *buf;
	int rc;

	if (mdb_get(w->txn, w->p->sessions, key, &val) != 0 ||
	    pcodec_dec_session(val.mv_data, val.mv_size, &s) != 0)
		return 0;
	s.will_id = 0;
	if (!(buf = mem_malloc(val.mv_size)))
		return persist_fail(w->p, PERSIST_ENOMEM, "out of memory");
	val.mv_data = buf;
	val.mv_size = pcodec_enc_session(buf, &s);
	rc = mdb_put(w->txn, w->p->sessions, key, &val, 0);
	mem_free(buf);
	return rc == 0 ? 0 : persist_mdb_fail(w->p, rc, "rewriting a session");
}

static int check_kind(struct pwctx *w, enum rkind k)
{
	struct keylist del = { 0 }, fix = { 0 };
	MDB_dbi dbi = dbi_of(w->p, k);
	MDB_cursor *c;
	MDB_val key, val;
	size_t off;
	int rc = mdb_cursor_open(w->txn, dbi, &c), verdict;

	if (rc != 0)
		return persist_mdb_fail(w->p, rc, "recovery: opening a cursor");
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if ((rc = judge(w, k, &key, &val, &verdict)) != 0)
			break;
		if (verdict && keylist_add(verdict == 1 ? &del : &fix, key.mv_data, key.mv_size) != 0) {
			rc = persist_fail(w->p, PERSIST_ENOMEM, "out of memory");
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	else if (rc > 0)
		rc = persist_mdb_fail(w->p, rc, "recovery: reading records");
	for (off = 0; rc == 0 && keylist_next(&del, &off, &key);) {
		if ((rc = mdb_del(w->txn, dbi, &key, NULL)) == 0 && k == RK_ORPHANS)
			rc = mdb_del(w->txn, w->p->msgs, &key, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
		if (rc != 0)
			rc = persist_mdb_fail(w->p, rc, "recovery: deleting a record");
		else if (k != RK_ORPHANS)
			w->p->recovered++;
	}
	for (off = 0; rc == 0 && keylist_next(&fix, &off, &key); w->p->recovered++)
		rc = drop_will(w, &key);
	mem_free(del.bytes);
	mem_free(fix.bytes);
	return rc;
}

/* Gives every (decodable) message a reference count of zero. */
static int zero_refs(struct pwctx *w)
{
	MDB_cursor *c;
	MDB_val key, val, rv;
	uint8_t v[PCODEC_REFS_SIZE];
	int rc;

	if ((rc = mdb_drop(w->txn, w->p->refs, 0)) != 0)
		return persist_mdb_fail(w->p, rc, "recovery: clearing reference counts");
	if ((rc = mdb_cursor_open(w->txn, w->p->msgs, &c)) != 0)
		return persist_mdb_fail(w->p, rc, "recovery: opening a cursor");
	rv.mv_data = v;
	rv.mv_size = pcodec_enc_refs(v, 0);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT))
		if ((rc = mdb_put(w->txn, w->p->refs, &key, &rv, 0)) != 0)
			break;
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : persist_mdb_fail(w->p, rc, "recovery: reference counts");
}

int persist_recover_records(struct persist *p)
{
	struct pwctx w = { p, NULL, 0 };
	int rc = mdb_txn_begin(p->env, NULL, 0, &w.txn);

	if (rc != 0)
		return persist_mdb_fail(p, rc, "recovery: starting a transaction");
	rc = check_kind(&w, RK_MSGS);
	if (rc == 0)
		rc = zero_refs(&w);
	for (enum rkind k = RK_RETAINED; rc == 0 && k <= RK_ORPHANS; k++)
		rc = check_kind(&w, k);
	if (rc != 0) {
		mdb_txn_abort(w.txn);
		return rc;
	}
	rc = mdb_txn_commit(w.txn);
	return rc == 0 ? 0 : persist_mdb_fail(p, rc, "recovery: committing");
}
