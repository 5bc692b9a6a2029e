/*
 * persist_batch.c: building batches of store operations (persist.h). Keys
 * and values are encoded here, on the caller's thread, into the batch's one
 * byte buffer, so that the writer only runs LMDB.
 */
#include "config.h"

#include "persist_int.h"
#include "persist_codec.h"

#include "alloc.h"

#include <string.h>

struct persist_batch *persist_batch_new(void)
{
	return mem_calloc(1, sizeof(struct persist_batch));
}

void persist_batch_free(struct persist_batch *b)
{
	if (!b)
		return;
	mem_free(b->ops);
	mem_free(b->bytes);
	mem_free(b);
}

void persist_batch_reset(struct persist_batch *b)
{
	b->n = 0;
	b->used = 0;
}

size_t persist_batch_count(const struct persist_batch *b)
{
	return b->n;
}

/* Reserves room for one more op with klen + vlen bytes; returns it, or NULL. */
static struct pop *op_add(struct persist_batch *b, enum pop_kind kind, size_t klen, size_t vlen)
{
	struct pop *op;
	if (klen == 0 || klen > PERSIST_KEY_MAX || vlen > SIZE_MAX / 2 - klen)
		return NULL;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct pop *ops = mem_realloc(b->ops, cap * sizeof(*ops));
		if (!ops)
			return NULL;
		b->ops = ops;
		b->cap = cap;
	}
	if (b->size - b->used < klen + vlen) {
		size_t size = b->size ? b->size : 1024;
		uint8_t *bytes;
		while (size - b->used < klen + vlen) {
			if (size > SIZE_MAX / 2)
				return NULL;
			size *= 2;
		}
		bytes = mem_realloc(b->bytes, size);
		if (!bytes)
			return NULL;
		b->bytes = bytes;
		b->size = size;
	}
	op = &b->ops[b->n++];
	op->kind = kind;
	op->koff = b->used;
	op->klen = klen;
	op->voff = b->used + klen;
	op->vlen = vlen;
	op->ref = 0;
	b->used += klen + vlen;
	return op;
}

static uint8_t *op_key(struct persist_batch *b, struct pop *op)
{
	return b->bytes + op->koff;
}

static uint8_t *op_val(struct persist_batch *b, struct pop *op)
{
	return b->bytes + op->voff;
}

/* A failed add: ENOMEM unless the sizes were the reason. */
static int add_fail(size_t klen)
{
	return klen == 0 || klen > PERSIST_KEY_MAX ? PERSIST_EINVAL : PERSIST_ENOMEM;
}

static int id_op(struct persist_batch *b, enum pop_kind kind, uint64_t id)
{
	struct pop *op;
	if (id == 0)
		return PERSIST_EINVAL;
	op = op_add(b, kind, 8, 0);
	if (!op)
		return PERSIST_ENOMEM;
	pcodec_put_u64(op_key(b, op), id);
	op->ref = id;
	return 0;
}

int persist_msg_put(struct persist_batch *b, uint64_t id, const struct persist_msg *m)
{
	struct pop *op;
	if (id == 0 || m->qos > 2 || m->topic_len == 0 || m->expiry < 0 ||
	    m->topic_len > UINT32_MAX || m->payload_len > UINT32_MAX || m->props_len > UINT32_MAX)
		return PERSIST_EINVAL;
	op = op_add(b, POP_MSG_PUT, 8, pcodec_enc_msg(NULL, m));
	if (!op)
		return PERSIST_ENOMEM;
	pcodec_put_u64(op_key(b, op), id);
	pcodec_enc_msg(op_val(b, op), m);
	op->ref = id;
	return 0;
}

int persist_msg_ref(struct persist_batch *b, uint64_t id)
{
	return id_op(b, POP_MSG_REF, id);
}

int persist_msg_unref(struct persist_batch *b, uint64_t id)
{
	return id_op(b, POP_MSG_UNREF, id);
}

int persist_retained_set(struct persist_batch *b, const void *topic, size_t len, uint64_t msg_id)
{
	struct pop *op;
	if (msg_id == 0)
		return PERSIST_EINVAL;
	op = op_add(b, POP_RET_SET, len, pcodec_enc_id(NULL, msg_id));
	if (!op)
		return add_fail(len);
	memcpy(op_key(b, op), topic, len);
	pcodec_enc_id(op_val(b, op), msg_id);
	op->ref = msg_id;
	return 0;
}

int persist_retained_clear(struct persist_batch *b, const void *topic, size_t len)
{
	struct pop *op = op_add(b, POP_RET_CLEAR, len, 0);
	if (!op)
		return add_fail(len);
	memcpy(op_key(b, op), topic, len);
	return 0;
}

int persist_session_put(struct persist_batch *b, const void *cid, size_t len,
			const struct persist_session *s)
{
	struct pop *op;
	if (s->protocol < 3 || s->protocol > 5 || s->disconnect_time < 0 ||
	    (s->username && s->username_len > UINT32_MAX) || s->nqos2_in > 65535 ||
	    (s->nqos2_in && !s->qos2_in))
		return PERSIST_EINVAL;
	op = op_add(b, POP_SESS_PUT, len, pcodec_enc_session(NULL, s));
	if (!op)
		return add_fail(len);
	memcpy(op_key(b, op), cid, len);
	pcodec_enc_session(op_val(b, op), s);
	op->ref = s->will_id;
	return 0;
}

int persist_session_delete(struct persist_batch *b, const void *cid, size_t len)
{
	struct pop *op = op_add(b, POP_SESS_DEL, len, 0);
	if (!op)
		return add_fail(len);
	memcpy(op_key(b, op), cid, len);
	return 0;
}

/* Client prefix then rest: the key of a subscription or queue entry. */
static struct pop *client_op(struct persist_batch *b, enum pop_kind kind, const void *cid,
			     size_t len, const void *rest, size_t rlen, size_t vlen)
{
	struct pop *op;
	if (len > 0xffff || len > PERSIST_KEY_MAX)
		return NULL;
	op = op_add(b, kind, 2 + len + rlen, vlen);
	if (!op)
		return NULL;
	pcodec_enc_prefix(op_key(b, op), cid, len);
	if (rlen)
		memcpy(op_key(b, op) + 2 + len, rest, rlen);
	return op;
}

int persist_sub_put(struct persist_batch *b, const void *cid, size_t len, const void *filter,
		    size_t flen, const struct persist_sub *s)
{
	struct pop *op;
	if (flen == 0 || s->qos > 2 || s->sub_id > 268435455u)
		return PERSIST_EINVAL;
	op = client_op(b, POP_SUB_PUT, cid, len, filter, flen, pcodec_enc_sub(NULL, s));
	if (!op)
		return add_fail(2 + len + flen);
	pcodec_enc_sub(op_val(b, op), s);
	return 0;
}

int persist_sub_delete(struct persist_batch *b, const void *cid, size_t len, const void *filter,
		       size_t flen)
{
	if (flen == 0)
		return PERSIST_EINVAL;
	if (!client_op(b, POP_SUB_DEL, cid, len, filter, flen, 0))
		return add_fail(2 + len + flen);
	return 0;
}

int persist_queue_put(struct persist_batch *b, const void *cid, size_t len, uint64_t seq,
		      const struct persist_qentry *e)
{
	uint8_t k[8];
	struct pop *op;
	if (e->msg_id == 0 || e->qos > 2 || e->state > PERSIST_Q_INFLIGHT ||
	    (e->flags & ~(PERSIST_QF_DUP | PERSIST_QF_PUBREL)) != 0 ||
	    (e->state == PERSIST_Q_INFLIGHT && e->packet_id == 0))
		return PERSIST_EINVAL;
	pcodec_put_u64(k, seq);
	op = client_op(b, POP_Q_PUT, cid, len, k, 8, pcodec_enc_qentry(NULL, e));
	if (!op)
		return add_fail(2 + len + 8);
	pcodec_enc_qentry(op_val(b, op), e);
	op->ref = e->msg_id;
	return 0;
}

int persist_queue_delete(struct persist_batch *b, const void *cid, size_t len, uint64_t seq)
{
	uint8_t k[8];
	pcodec_put_u64(k, seq);
	if (!client_op(b, POP_Q_DEL, cid, len, k, 8, 0))
		return add_fail(2 + len + 8);
	return 0;
}
