/*
 * persist_codec.c: encoding and bounds-checked decoding of the durable
 * store's records and keys (layouts in persist_codec.h and below). Integers
 * are big-endian; byte strings are a 4-byte length then the bytes.
 */
#include "config.h"

#include "persist_codec.h"

#include <stdatomic.h>
#include <string.h>

/* --- writing: w.p == NULL only counts --- */

struct wr {
	uint8_t *p;
	size_t n;
};

static void w_u8(struct wr *w, uint8_t v)
{
	if (w->p)
		w->p[w->n] = v;
	w->n++;
}

static void w_be(struct wr *w, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		w_u8(w, (uint8_t)(v >> (8 * (bytes - 1 - i))));
}

static void w_bytes(struct wr *w, const void *b, size_t len)
{
	w_be(w, (uint64_t)len, 4);
	if (w->p && len)
		memcpy(w->p + w->n, b, len);
	w->n += len;
}

/* Every record ends with a CRC-32 (IEEE) of its other bytes: a flipped bit in a
 * stored value makes the record undecodable instead of silently different. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	static _Atomic int ready;
	uint32_t c = 0xFFFFFFFFu;

	if (!atomic_load_explicit(&ready, memory_order_acquire)) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t v = i;
			for (int k = 0; k < 8; k++)
				v = v & 1 ? 0xEDB88320u ^ (v >> 1) : v >> 1;
			table[i] = v;
		}
		atomic_store_explicit(&ready, 1, memory_order_release);
	}
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* Ends a record: appends the CRC; returns the record's size. */
static size_t w_end(struct wr *w)
{
	uint32_t crc = w->p ? crc32_of(w->p, w->n) : 0;
	w_be(w, crc, 4);
	return w->n;
}

/* --- reading: every step checks what is left; a failed step sticks --- */

struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static uint64_t r_be(struct rd *r, unsigned bytes)
{
	uint64_t v = 0;
	if (r->bad || r->left < bytes) {
		r->bad = true;
		return 0;
	}
	for (unsigned i = 0; i < bytes; i++)
		v = (v << 8) | r->p[i];
	r->p += bytes;
	r->left -= bytes;
	return v;
}

static const uint8_t *r_bytes(struct rd *r, size_t *len)
{
	size_t n = (size_t)r_be(r, 4);
	const uint8_t *b;
	if (r->bad || n > r->left) {
		r->bad = true;
		*len = 0;
		return NULL;
	}
	b = r->p;
	r->p += n;
	r->left -= n;
	*len = n;
	return b;
}

/* Starts a record: checks its CRC and its version byte. */
static struct rd r_start(const uint8_t *in, size_t len)
{
	struct rd r = { in, len, in == NULL || len < 5 };
	if (!r.bad) {
		const uint8_t *t = in + len - 4;
		uint32_t want = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
		r.left = len - 4;
		r.bad = crc32_of(in, len - 4) != want;
	}
	if (r_be(&r, 1) != PERSIST_RECORD_V1)
		r.bad = true;
	return r;
}

/* Ends a record: nothing may be left over. */
static int r_end(const struct rd *r)
{
	return r->bad || r->left != 0 ? -1 : 0;
}

/* --- records --- */

size_t pcodec_enc_header(uint8_t *out, const struct persist_header *h)
{
	struct wr w = { out, 0 };
	w_u8(&w, PERSIST_RECORD_V1);
	for (size_t i = 0; i < PERSIST_MAGIC_LEN; i++)
		w_u8(&w, (uint8_t)PERSIST_MAGIC[i]);
	w_be(&w, h->format, 4);
	w_be(&w, (uint64_t)h->created, 8);
	return w_end(&w);
}

int pcodec_dec_header(const uint8_t *in, size_t len, struct persist_header *h)
{
	struct rd r = r_start(in, len);
	if (r.bad || r.left < PERSIST_MAGIC_LEN || memcmp(r.p, PERSIST_MAGIC, PERSIST_MAGIC_LEN) != 0)
		return -1;
	r.p += PERSIST_MAGIC_LEN;
	r.left -= PERSIST_MAGIC_LEN;
	h->format = (uint32_t)r_be(&r, 4);
	h->created = (int64_t)r_be(&r, 8);
	if (r_end(&r) != 0)
		return -1;
	return h->format == PERSIST_FORMAT_VERSION ? 0 : -2;
}

size_t pcodec_enc_msg(uint8_t *out, const struct persist_msg *m)
{
	struct wr w = { out, 0 };
	w_u8(&w, PERSIST_RECORD_V1);
	w_u8(&w, m->qos);
	w_u8(&w, m->retain ? 1 : 0);
	w_be(&w, (uint64_t)m->expiry, 8);
	w_bytes(&w, m->topic, m->topic_len);
	w_bytes(&w, m->payload, m->payload_len);
	w_bytes(&w, m->props, m->props_len);
	return w_end(&w);
}

int pcodec_dec_msg(const uint8_t *in, size_t len, struct persist_msg *m)
{
	struct rd r = r_start(in, len);
	uint64_t qos = r_be(&r, 1), retain = r_be(&r, 1);
	m->expiry = (int64_t)r_be(&r, 8);
	m->topic = r_bytes(&r, &m->topic_len);
	m->payload = r_bytes(&r, &m->payload_len);
	m->props = r_bytes(&r, &m->props_len);
	if (r_end(&r) != 0 || qos > 2 || retain > 1 || m->topic_len == 0 || m->expiry < 0)
		return -1;
	m->qos = (uint8_t)qos;
	m->retain = retain == 1;
	return 0;
}

size_t pcodec_enc_refs(uint8_t *out, uint32_t refs)
{
	struct wr w = { out, 0 };
	w_u8(&w, PERSIST_RECORD_V1);
	w_be(&w, refs, 4);
	return w_end(&w);
}

int pcodec_dec_refs(const uint8_t *in, size_t len, uint32_t *refs)
{
	struct rd r = r_start(in, len);
	*refs = (uint32_t)r_be(&r, 4);
	return r_end(&r);
}

size_t pcodec_enc_id(uint8_t *out, uint64_t id)
{
	struct wr w = { out, 0 };
	w_u8(&w, PERSIST_RECORD_V1);
	w_be(&w, id, 8);
	return w_end(&w);
}

int pcodec_dec_id(const uint8_t *in, size_t len, uint64_t *id)
{
	struct rd r = r_start(in, len);
	*id = r_be(&r, 8);
	return r_end(&r) != 0 || *id == 0 ? -1 : 0;
}

size_t pcodec_enc_session(uint8_t *out, const struct persist_session *s)
{
	struct wr w = { out, 0 };
	w_u8(&w, PERSIST_RECORD_V1);
	w_be(&w, s->expiry_interval, 4);
	w_be(&w, (uint64_t)s->disconnect_time, 8);
	w_u8(&w, s->protocol);
	w_u8(&w, s->username ? 1 : 0);
	if (s->username)
		w_bytes(&w, s->username, s->username_len);
	w_be(&w, s->will_id, 8);
	w_be(&w, s->will_delay, 4);
	w_be(&w, s->listener, 2);
	w_bytes(&w, s->qos2_in, s->nqos2_in * 2);
	return w_end(&w);
}

int pcodec_dec_session(const uint8_t *in, size_t len, struct persist_session *s)
{
	struct rd r = r_start(in, len);
	uint64_t has_user;
	s->expiry_interval = (uint32_t)r_be(&r, 4);
	s->disconnect_time = (int64_t)r_be(&r, 8);
	s->protocol = (uint8_t)r_be(&r, 1);
	has_user = r_be(&r, 1);
	s->username = NULL;
	s->username_len = 0;
	if (has_user == 1)
		s->username = (const char *)r_bytes(&r, &s->username_len);
	s->will_id = r_be(&r, 8);
	s->will_delay = (uint32_t)r_be(&r, 4);
	s->listener = (uint16_t)r_be(&r, 2);
	s->qos2_in = r_bytes(&r, &s->nqos2_in);
	if (s->nqos2_in % 2 != 0)
		r.bad = true;
	s->nqos2_in /= 2;
	if (r_end(&r) != 0 || has_user > 1 || s->disconnect_time < 0 || s->protocol < 3 ||
	    s->protocol > 5)
		return -1;
	return 0;
}

size_t pcodec_enc_sub(uint8_t *out, const struct persist_sub *s)
{
	struct wr w = { out, 0 };
	w_u8(&w, PERSIST_RECORD_V1);
	w_u8(&w, s->qos);
	w_u8(&w, s->options);
	w_be(&w, s->sub_id, 4);
	return w_end(&w);
}

int pcodec_dec_sub(const uint8_t *in, size_t len, struct persist_sub *s)
{
	struct rd r = r_start(in, len);
	s->qos = (uint8_t)r_be(&r, 1);
	s->options = (uint8_t)r_be(&r, 1);
	s->sub_id = (uint32_t)r_be(&r, 4);
	return r_end(&r) != 0 || s->qos > 2 || s->sub_id > 268435455u ? -1 : 0;
}

size_t pcodec_enc_qentry(uint8_t *out, const struct persist_qentry *e)
{
	struct wr w = { out, 0 };
	w_u8(&w, PERSIST_RECORD_V1);
	w_be(&w, e->msg_id, 8);
	w_u8(&w, e->qos);
	w_u8(&w, e->retain ? 1 : 0);
	w_u8(&w, e->state);
	w_be(&w, e->packet_id, 2);
	w_u8(&w, e->flags);
	return w_end(&w);
}

int pcodec_dec_qentry(const uint8_t *in, size_t len, struct persist_qentry *e)
{
	struct rd r = r_start(in, len);
	uint64_t retain;
	e->msg_id = r_be(&r, 8);
	e->qos = (uint8_t)r_be(&r, 1);
	retain = r_be(&r, 1);
	e->state = (uint8_t)r_be(&r, 1);
	e->packet_id = (uint16_t)r_be(&r, 2);
	e->flags = (uint8_t)r_be(&r, 1);
	e->retain = retain == 1;
	if (r_end(&r) != 0 || e->msg_id == 0 || e->qos > 2 || retain > 1 ||
	    e->state > PERSIST_Q_INFLIGHT || (e->flags & ~(PERSIST_QF_DUP | PERSIST_QF_PUBREL)) != 0 ||
	    (e->state == PERSIST_Q_INFLIGHT && e->packet_id == 0))
		return -1;
	return 0;
}

/* --- keys --- */

void pcodec_put_u64(uint8_t *out, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t pcodec_get_u64(const uint8_t *in)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

size_t pcodec_enc_prefix(uint8_t *out, const void *cid, size_t len)
{
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	if (len)
		memcpy(out + 2, cid, len);
	return 2 + len;
}

int pcodec_split_key(const uint8_t *key, size_t klen, const uint8_t **cid, size_t *cidlen,
		     const uint8_t **rest, size_t *restlen)
{
	size_t n;
	if (key == NULL || klen < 2)
		return -1;
	n = ((size_t)key[0] << 8) | key[1];
	if (n > klen - 2)
		return -1;
	*cid = key + 2;
	*cidlen = n;
	*rest = key + 2 + n;
	*restlen = klen - 2 - n;
	return 0;
}
