/*
 * bridge_topic.c: a bridge's topic rules (mosquitto's "topic pattern
 * direction qos local-prefix remote-prefix") and the mapping of topics
 * between the two brokers: a local topic local_prefix + x is remote_prefix + x
 * on the other side, for an x the pattern matches.
 */
#include "config.h"

#include "bridge_int.h"

#include "alloc.h"
#include "message.h"
#include "session.h"
#include "topic.h"

#include <string.h>

static char *join(const char *a, const char *b)
{
	size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
	char *s = mem_malloc(la + lb + 1);

	if (!s)
		return NULL;
	if (la)
		memcpy(s, a, la);
	if (lb)
		memcpy(s + la, b, lb);
	s[la + lb] = '\0';
	return s;
}

int bridge_topics_init(struct bridge *br, const struct config_bridge *cb)
{
	br->topics = mem_calloc(cb->ntopics ? cb->ntopics : 1, sizeof(*br->topics));
	if (!br->topics)
		return -1;
	for (size_t i = 0; i < cb->ntopics; i++) {
		const struct config_bridge_topic *t = &cb->topics[i];
		struct bridge_topic *bt = &br->topics[br->ntopics++];

		bt->direction = t->direction;
		bt->qos = (uint8_t)(t->qos >= 0 && t->qos <= 2 ? t->qos : 0);
		bt->local_prefix = join(t->local_prefix, NULL);
		bt->remote_prefix = join(t->remote_prefix, NULL);
		bt->local_filter = join(t->local_prefix, t->pattern);
		bt->remote_filter = join(t->remote_prefix, t->pattern);
		if (!bt->local_prefix || !bt->remote_prefix || !bt->local_filter || !bt->remote_filter)
			return -1;
	}
	return 0;
}

void bridge_topics_free(struct bridge *br)
{
	for (size_t i = 0; i < br->ntopics; i++) {
		mem_free(br->topics[i].local_prefix);
		mem_free(br->topics[i].remote_prefix);
		mem_free(br->topics[i].local_filter);
		mem_free(br->topics[i].remote_filter);
	}
	mem_free(br->topics);
	br->topics = NULL;
	br->ntopics = 0;
}

/* Maps topic from one side's prefix to the other's; NULL when out of memory. */
static char *remap(const char *topic, size_t len, const char *from, const char *to)
{
	size_t lf = strlen(from), lt = strlen(to);
	char *s = mem_malloc(lt + len - lf + 1);

	if (!s)
		return NULL;
	memcpy(s, to, lt);
	memcpy(s + lt, topic + lf, len - lf);
	s[lt + len - lf] = '\0';
	return s;
}

static bool rule_matches(const char *filter, const char *prefix, const char *topic, size_t len)
{
	size_t lp = strlen(prefix);

	return len >= lp && memcmp(topic, prefix, lp) == 0 &&
	       topic_matches(filter, strlen(filter), topic, len);
}

char *bridge_topic_in(const struct bridge *br, const char *topic, size_t len, uint8_t *qos)
{
	for (size_t i = 0; i < br->ntopics; i++) {
		const struct bridge_topic *t = &br->topics[i];
		if (t->direction == BRIDGE_OUT ||
		    !rule_matches(t->remote_filter, t->remote_prefix, topic, len))
			continue;
		*qos = t->qos;
		return remap(topic, len, t->remote_prefix, t->local_prefix);
	}
	return NULL;
}

struct message *bridge_outgoing(struct session *s, struct message *m)
{
	struct bridge *br = s->bridge;
	const char *topic = m->topic;
	const void *payload = m->payload;
	uint32_t payload_len = m->payload_len;
	char *mapped = NULL;
	struct message *out;
	size_t i;

	for (i = 0; i < br->ntopics; i++) {
		const struct bridge_topic *t = &br->topics[i];
		if (t->direction != BRIDGE_IN &&
		    rule_matches(t->local_filter, t->local_prefix, m->topic, m->topic_len))
			break;
	}
	if (i == br->ntopics)
		return NULL; /* a subscription left over from an older configuration */
	if (strcmp(br->topics[i].local_prefix, br->topics[i].remote_prefix) != 0) {
		if (!(mapped = remap(m->topic, m->topic_len, br->topics[i].local_prefix,
				     br->topics[i].remote_prefix)))
			return NULL;
		topic = mapped;
	}
	/* A plugin may stop the message or point topic / payload at its own version. */
	if (bridge_event(br, 3, true, &topic, &payload, &payload_len, m->qos, m->retain) != 0) {
		mem_free(mapped);
		return NULL;
	}
	if (topic == m->topic && payload == (const void *)m->payload) {
		out = message_ref(m);
	} else {
		out = message_new(topic, strlen(topic), payload, payload_len, m->qos, m->retain,
				  m->props, m->props_len);
		if (out) {
			out->expires = m->expires;
			out->created = m->created;
			out->origin = m->origin;
		}
	}
	mem_free(mapped);
	if (out)
		atomic_fetch_add_explicit(&br->messages_out, 1, memory_order_relaxed);
	return out;
}
