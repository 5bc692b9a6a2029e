/*
 * cluster_codec.c: the envelope one message crosses NATS in (layout in
 * cluster_wire.h), bounds-checked reader, length-first writer; and the
 * JetStream message id made of the envelope's instance and sequence.
 */
#include "config.h"

#include "cluster_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "topic.h"

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get_be(const uint8_t **p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | *(*p)++;
	return v;
}

size_t cluster_env_size(const struct cluster_env *e)
{
	return CLUSTER_ENV_HEADER + e->node_len + e->topic_len + e->props_len + e->payload_len;
}

void cluster_env_encode(const struct cluster_env *e, uint8_t *out)
{
	uint8_t *p = out;

	*p++ = 'M';
	*p++ = 'G';
	*p++ = 1;
	*p++ = (uint8_t)((e->qos & 3) | (e->retain ? 4 : 0) | (e->groups_served ? 8 : 0));
	p = put_be(p, e->instance, 8);
	p = put_be(p, e->seq, 8);
	p = put_be(p, e->expiry, 4);
	p = put_be(p, e->node_len, 1);
	p = put_be(p, e->topic_len, 2);
	p = put_be(p, e->props_len, 4);
	p = put_be(p, e->payload_len, 4);
	memcpy(p, e->node, e->node_len);
	p += e->node_len;
	memcpy(p, e->topic, e->topic_len);
	p += e->topic_len;
	if (e->props_len)
		memcpy(p, e->props, e->props_len);
	p += e->props_len;
	if (e->payload_len)
		memcpy(p, e->payload, e->payload_len);
}

int cluster_env_decode(const uint8_t *buf, size_t len, struct cluster_env *e)
{
	const uint8_t *p = buf;
	uint8_t flags;

	if (len < CLUSTER_ENV_HEADER || p[0] != 'M' || p[1] != 'G' || p[2] != 1)
		return -1;
	flags = p[3];
	if ((flags & 3) > 2 || (flags & ~15u))
		return -1;
	p += 4;
	memset(e, 0, sizeof(*e));
	e->qos = flags & 3;
	e->retain = (flags & 4) != 0;
	e->groups_served = (flags & 8) != 0;
	e->instance = get_be(&p, 8);
	e->seq = get_be(&p, 8);
	e->expiry = (uint32_t)get_be(&p, 4);
	e->node_len = (size_t)get_be(&p, 1);
	e->topic_len = (size_t)get_be(&p, 2);
	e->props_len = (size_t)get_be(&p, 4);
	e->payload_len = (size_t)get_be(&p, 4);
	/* Each part is at most 2^32 - 1, so the sum cannot wrap a 64-bit size_t. */
	if (e->node_len == 0 || e->topic_len == 0 ||
	    (uint64_t)CLUSTER_ENV_HEADER + e->node_len + e->topic_len + e->props_len +
			    e->payload_len != len)
		return -1;
	e->node = (const char *)p;
	p += e->node_len;
	e->topic = (const char *)p;
	p += e->topic_len;
	e->props = e->props_len ? p : NULL;
	p += e->props_len;
	e->payload = e->payload_len ? p : NULL;
	if (!topic_name_valid(e->topic, e->topic_len))
		return -1;
	return 0;
}

size_t cluster_msg_id(char *out, uint64_t instance, uint64_t seq)
{
	int n = snprintf(out, CLUSTER_MSG_ID_MAX, "%016" PRIx64 "-%" PRIu64, instance, seq);

	return n > 0 ? (size_t)n : 0;
}

int cluster_msg_id_parse(const char *s, uint64_t *instance, uint64_t *seq)
{
	uint64_t inst = 0, sq = 0;
	int i = 0;

	for (; i < 16; i++) {
		char ch = s[i];
		int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		inst = inst << 4 | (uint64_t)v;
	}
	if (s[i++] != '-' || s[i] < '0' || s[i] > '9')
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (sq > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		sq = sq * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[i] != '\0')
		return -1;
	*instance = inst;
	*seq = sq;
	return 0;
}
