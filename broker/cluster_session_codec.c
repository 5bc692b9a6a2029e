/*
 * cluster_session_codec.c: registry keys and values, hand-over requests and
 * replies, and a session's encoding (layouts in cluster_session_wire.h).
 * Appending writer that remembers an allocation failure; bounds-checked
 * reader.
 */
#include "config.h"

#include "cluster_session_wire.h"

#include <string.h>

#include "alloc.h"
#include "topic.h"

/* ---- Keys -------------------------------------------------------------------------- */

static const char HEX[] = "0123456789ABCDEF";

static bool key_plain(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '/';
}

static size_t hashed_key(char *out, const char *id, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)id[i]) * 0x100000001b3ull;
	out[0] = '=';
	for (int i = 0; i < 16; i++)
		out[1 + i] = HEX[(h >> (60 - 4 * i)) & 0xF];
	out[17] = '\0';
	return 17;
}

size_t cluster_key_encode(char *out, const char *id, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)id[i];
		if (n + (key_plain(ch) ? 1 : 3) > CLUSTER_SESSION_KEY_MAX)
			return hashed_key(out, id, len);
		if (key_plain(ch)) {
			out[n++] = (char)ch;
			continue;
		}
		out[n++] = '_';
		out[n++] = HEX[ch >> 4];
		out[n++] = HEX[ch & 0xF];
	}
	out[n] = '\0';
	return n;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

long cluster_key_decode(char *out, const char *key)
{
	size_t n = 0;

	if (!key[0])
		return -1;
	for (const char *p = key; *p; p++) {
		if (key_plain((unsigned char)*p)) {
			out[n++] = *p;
			continue;
		}
		if (*p != '_')
			return -1; /* '=' (hashed) or a byte never written */
		int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);
		if (lo < 0)
			return -1;
		unsigned char ch = (unsigned char)(hi << 4 | lo);
		if (key_plain(ch))
			return -1; /* one id, one key: plain bytes are never escaped */
		out[n++] = (char)ch;
		p += 2;
	}
	return (long)n;
}

/* ---- Writer and reader -------------------------------------------------------------- */

static void put_bytes(struct wire_out *o, const void *data, size_t len)
{
	if (o->failed || len == 0)
		return;
	if (o->len + len > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < o->len + len)
			cap *= 2;
		uint8_t *grown = mem_realloc(o->data, cap);
		if (!grown) {
			o->failed = true;
			return;
		}
		o->data = grown;
		o->cap = cap;
	}
	memcpy(o->data + o->len, data, len);
	o->len += len;
}

static void put_be(struct wire_out *o, uint64_t v, int bytes)
{
	uint8_t b[8];

	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	put_bytes(o, b, (size_t)bytes);
}

static void put_magic(struct wire_out *o, const char magic[2])
{
	put_bytes(o, magic, 2);
	put_be(o, 1, 1);
}

static const uint8_t *get_bytes(struct wire_in *in, size_t len)
{
	const uint8_t *p = in->p;

	if (in->bad || len > in->left) {
		in->bad = true;
		return NULL;
	}
	in->p += len;
	in->left -= len;
	return p;
}

static uint64_t get_be(struct wire_in *in, int bytes)
{
	const uint8_t *p = get_bytes(in, (size_t)bytes);
	uint64_t v = 0;

	for (int i = 0; p && i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* The version of a value with that magic, up to max_version; 0 (in->bad) otherwise. */
static int get_magic_upto(struct wire_in *in, const char magic[2], int max_version)
{
	const uint8_t *p = get_bytes(in, 3);

	if (!p || p[0] != (uint8_t)magic[0] || p[1] != (uint8_t)magic[1] || p[2] < 1 ||
	    p[2] > max_version)
		in->bad = true;
	return in->bad ? 0 : p[2];
}

static bool get_magic(struct wire_in *in, const char magic[2])
{
	return get_magic_upto(in, magic, 1) == 1;
}

/* ---- Registry value, request, reply -------------------------------------------------- */

void session_reg_encode(struct wire_out *o, const struct session_reg *r)
{
	put_bytes(o, "SR", 2);
	put_be(o, 2, 1); /* version 2: replay_from */
	put_be(o, r->persistent ? 1 : 0, 1);
	put_be(o, r->instance, 8);
	put_be(o, r->node_len, 1);
	put_be(o, r->id_len, 2);
	put_bytes(o, r->node, r->node_len);
	put_bytes(o, r->id, r->id_len);
	put_be(o, (uint64_t)(r->replay_from > 0 ? r->replay_from : 0), 8);
	put_be(o, r->nsubs, 4);
}

int session_reg_decode(const uint8_t *buf, size_t len, struct session_reg *r)
{
	struct wire_in in = {buf, len, false};

	int version = get_magic_upto(&in, "SR", 2);

	if (!version)
		return -1;
	r->persistent = get_be(&in, 1) & 1;
	r->instance = get_be(&in, 8);
	r->node_len = (size_t)get_be(&in, 1);
	r->id_len = (size_t)get_be(&in, 2);
	r->node = (const char *)get_bytes(&in, r->node_len);
	r->id = (const char *)get_bytes(&in, r->id_len);
	/* Version 1 had no watermark: nothing known to replay. */
	r->replay_from = version >= 2 ? (int64_t)(get_be(&in, 8) & INT64_MAX) : 0;
	r->nsubs = (uint32_t)get_be(&in, 4);
	/* The subscriptions are read one by one; later versions may append more. */
	r->subs = in.p;
	r->subs_len = in.left;
	return in.bad || r->node_len == 0 || r->id_len == 0 ? -1 : 0;
}

void session_req_encode(struct wire_out *o, const struct session_req *r)
{
	put_magic(o, "SQ");
	put_be(o, r->clean_start ? 1 : 0, 1);
	put_be(o, r->id_len, 2);
	put_bytes(o, r->id, r->id_len);
}

int session_req_decode(const uint8_t *buf, size_t len, struct session_req *r)
{
	struct wire_in in = {buf, len, false};

	if (!get_magic(&in, "SQ"))
		return -1;
	r->clean_start = get_be(&in, 1) & 1;
	r->id_len = (size_t)get_be(&in, 2);
	r->id = (const char *)get_bytes(&in, r->id_len);
	if (in.bad || r->id_len == 0 || memchr(r->id, '\0', r->id_len))
		return -1;
	return 0;
}

void session_reply_begin(struct wire_out *o, enum session_reply_status status)
{
	put_magic(o, "SA");
	put_be(o, (uint64_t)status, 1);
}

int session_reply_decode(const uint8_t *buf, size_t len, enum session_reply_status *status,
			 const uint8_t **session, size_t *session_len)
{
	struct wire_in in = {buf, len, false};

	if (!get_magic(&in, "SA"))
		return -1;
	uint64_t st = get_be(&in, 1);
	if (in.bad || st > SESSION_REPLY_MOVED)
		return -1;
	*status = (enum session_reply_status)st;
	*session = in.p;
	*session_len = in.left;
	return *status == SESSION_REPLY_MOVED && in.left == 0 ? -1 : 0;
}

/* ---- Session ------------------------------------------------------------------------- */

void session_wire_head_put(struct wire_out *o, const struct session_wire_head *h)
{
	put_magic(o, "SS");
	put_be(o, h->flags, 1);
	put_be(o, h->expiry_interval, 4);
	put_be(o, h->protocol, 1);
	put_be(o, h->last_mid, 2);
	put_be(o, h->nsubs, 4);
	put_be(o, h->nqos2, 4);
	put_be(o, h->nmsgs, 4);
}

void session_wire_sub_put(struct wire_out *o, const struct session_wire_sub *s)
{
	put_be(o, s->len, 2);
	put_bytes(o, s->filter, s->len);
	put_be(o, s->qos, 1);
	put_be(o, s->options, 1);
	put_be(o, s->subid, 4);
}

void session_wire_qos2_put(struct wire_out *o, uint16_t mid)
{
	put_be(o, mid, 2);
}

/* In a message's retain byte: its cluster id follows the payload. */
#define MSG_F_CLUSTER_ID 0x02

void session_wire_msg_put(struct wire_out *o, const struct session_wire_msg *m)
{
	put_be(o, m->state, 1);
	put_be(o, m->mid, 2);
	put_be(o, m->qos, 1);
	put_be(o, m->retain, 1);
	put_be(o, m->subid, 4);
	put_be(o, m->msg_qos, 1);
	put_be(o, (m->msg_retain ? 1 : 0) | (m->cluster_instance ? MSG_F_CLUSTER_ID : 0), 1);
	put_be(o, m->expiry, 4);
	put_be(o, m->topic_len, 2);
	put_be(o, m->props_len, 4);
	put_be(o, m->payload_len, 4);
	put_bytes(o, m->topic, m->topic_len);
	put_bytes(o, m->props, m->props_len);
	put_bytes(o, m->payload, m->payload_len);
	if (m->cluster_instance) {
		put_be(o, m->cluster_instance, 8);
		put_be(o, m->cluster_seq, 8);
	}
}

int session_wire_head_get(struct wire_in *in, struct session_wire_head *h)
{
	if (!get_magic(in, "SS"))
		return -1;
	h->flags = (uint8_t)get_be(in, 1);
	h->expiry_interval = (uint32_t)get_be(in, 4);
	h->protocol = (uint8_t)get_be(in, 1);
	h->last_mid = (uint16_t)get_be(in, 2);
	h->nsubs = (uint32_t)get_be(in, 4);
	h->nqos2 = (uint32_t)get_be(in, 4);
	h->nmsgs = (uint32_t)get_be(in, 4);
	return in->bad ? -1 : 0;
}

/* After the messages, so that a reader that knows no flags stops before it. */
void session_wire_tail_put(struct wire_out *o, const struct session_wire_head *h)
{
	if (h->flags & SESSION_WIRE_F_MARK)
		put_be(o, (uint64_t)(h->replay_from > 0 ? h->replay_from : 0), 8);
	if (h->flags & SESSION_WIRE_F_WINDOW)
		put_be(o, (uint64_t)(h->window_from > 0 ? h->window_from : 0), 8);
}

int session_wire_tail_get(struct wire_in *in, struct session_wire_head *h)
{
	h->replay_from = h->window_from = 0;
	if (h->flags & SESSION_WIRE_F_MARK)
		h->replay_from = (int64_t)(get_be(in, 8) & INT64_MAX);
	if (h->flags & SESSION_WIRE_F_WINDOW)
		h->window_from = (int64_t)(get_be(in, 8) & INT64_MAX);
	return in->bad ? -1 : 0;
}

bool session_wire_replay_info(const uint8_t *data, size_t len, int64_t *replay_from,
			      bool *exact, const uint8_t **subs, size_t *subs_len,
			      uint32_t *nsubs)
{
	struct wire_in in = {data, len, false};
	struct session_wire_head h;
	struct session_wire_sub s;
	struct session_wire_msg m;
	uint16_t mid;

	if (session_wire_head_get(&in, &h) < 0 ||
	    !(h.flags & (SESSION_WIRE_F_REPLAY | SESSION_WIRE_F_WINDOW)))
		return false;
	*subs = in.p;
	for (uint32_t i = 0; i < h.nsubs; i++)
		if (session_wire_sub_get(&in, &s) < 0)
			return false;
	*subs_len = (size_t)(in.p - *subs);
	*nsubs = h.nsubs;
	for (uint32_t i = 0; i < h.nqos2; i++)
		if (session_wire_qos2_get(&in, &mid) < 0)
			return false;
	for (uint32_t i = 0; i < h.nmsgs; i++)
		if (session_wire_msg_get(&in, &m) < 0)
			return false;
	if (session_wire_tail_get(&in, &h) < 0)
		return false;
	/* The watermark reaches further back than the window, which it covers. */
	*exact = !(h.flags & SESSION_WIRE_F_REPLAY) || h.replay_from <= 0;
	*replay_from = *exact ? h.window_from : h.replay_from;
	return *replay_from > 0;
}

int session_wire_sub_get(struct wire_in *in, struct session_wire_sub *s)
{
	s->len = (uint16_t)get_be(in, 2);
	s->filter = (const char *)get_bytes(in, s->len);
	s->qos = (uint8_t)get_be(in, 1);
	s->options = (uint8_t)get_be(in, 1);
	s->subid = (uint32_t)get_be(in, 4);
	if (!in->bad && (s->len == 0 || s->qos > 2 || memchr(s->filter, '\0', s->len)))
		in->bad = true;
	return in->bad ? -1 : 0;
}

int session_wire_qos2_get(struct wire_in *in, uint16_t *mid)
{
	*mid = (uint16_t)get_be(in, 2);
	if (!in->bad && *mid == 0)
		in->bad = true;
	return in->bad ? -1 : 0;
}

int session_wire_msg_get(struct wire_in *in, struct session_wire_msg *m)
{
	m->state = (uint8_t)get_be(in, 1);
	m->mid = (uint16_t)get_be(in, 2);
	m->qos = (uint8_t)get_be(in, 1);
	m->retain = (uint8_t)get_be(in, 1);
	m->subid = (uint32_t)get_be(in, 4);
	m->msg_qos = (uint8_t)get_be(in, 1);
	uint8_t bits = (uint8_t)get_be(in, 1);
	m->msg_retain = bits & 1;
	m->expiry = (uint32_t)get_be(in, 4);
	m->topic_len = (uint16_t)get_be(in, 2);
	m->props_len = (uint32_t)get_be(in, 4);
	m->payload_len = (uint32_t)get_be(in, 4);
	m->topic = (const char *)get_bytes(in, m->topic_len);
	m->props = get_bytes(in, m->props_len);
	m->payload = get_bytes(in, m->payload_len);
	m->cluster_instance = m->cluster_seq = 0;
	if (bits & MSG_F_CLUSTER_ID) {
		m->cluster_instance = get_be(in, 8);
		m->cluster_seq = get_be(in, 8);
	}
	if (in->bad)
		return -1;
	/* QoS 0 only waits queued (queue_qos0_messages); one in flight names its packet id. */
	if (m->state > 3 || m->qos > 2 || m->msg_qos > 2 ||
	    (m->state != 0 && (m->mid == 0 || m->qos == 0)) || m->topic_len == 0 ||
	    !topic_name_valid(m->topic, m->topic_len))
		in->bad = true;
	return in->bad ? -1 : 0;
}
