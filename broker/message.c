/*
 * message.c: allocation and release of refcounted messages.
 */
#include "config.h"

#include "message.h"

#include "alloc.h"

#include <string.h>
#include <time.h>

static _Atomic uint64_t live_count;
static _Atomic uint64_t live_bytes;

struct message *message_new(const char *topic, size_t topic_len, const void *payload,
			     size_t payload_len, uint8_t qos, bool retain,
			     const void *props, size_t props_len)
{
	struct message *m;

	if (topic_len > UINT16_MAX || payload_len > UINT32_MAX || props_len > UINT32_MAX)
		return NULL;
	m = mem_malloc(sizeof(*m) + topic_len + 1 + payload_len + props_len);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic_len;
	m->payload_len = (uint32_t)payload_len;
	m->props_len = (uint32_t)props_len;
	m->created = time(NULL);
	m->expires = 0;
	m->origin = 0;
	m->cluster_instance = m->cluster_seq = 0;
	atomic_init(&m->store_id, 0);
	m->topic = (char *)m->data;
	memcpy(m->topic, topic, topic_len);
	m->topic[topic_len] = '\0';
	m->payload = m->data + topic_len + 1;
	if (payload_len)
		memcpy(m->payload, payload, payload_len);
	m->props = m->payload + payload_len;
	if (props_len)
		memcpy(m->props, props, props_len);
	atomic_fetch_add_explicit(&live_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&live_bytes, message_size(m), memory_order_relaxed);
	return m;
}

void message_unref(struct message *m)
{
	if (!m)
		return;
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	atomic_fetch_sub_explicit(&live_count, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&live_bytes, message_size(m), memory_order_relaxed);
	mem_free(m);
}

uint64_t message_live_count(void)
{
	return atomic_load_explicit(&live_count, memory_order_relaxed);
}

uint64_t message_live_bytes(void)
{
	return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}
