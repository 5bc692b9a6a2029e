/*
 * topic_alias.c: MQTT 5 topic aliases of one network connection (see
 * topic_alias.h). Inbound, an array indexed by alias holds the topics the
 * client set. Outbound, the broker gives the next free alias to each new
 * topic it sends; once all are taken it reassigns the least recently used
 * one (the PUBLISH then carries the new topic with that alias, which is how
 * a sender changes a mapping [3.3.2.3.4]). A hash of the topics finds the
 * alias of a topic without walking the table.
 */
#include "config.h"

#include "topic_alias.h"

#include "alloc.h"
#include "client.h"
#include "conf.h"
#include "listener.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

/* --- inbound: client -> broker --- */

struct alias_in_entry {
	uint8_t *topic;    /* NULL: not set */
	uint16_t len;
};

struct topic_alias_in {
	uint32_t cap;                 /* entries allocated, aliases 1..cap */
	struct alias_in_entry *e;     /* e[alias - 1] */
};

/* Makes room for alias (<= max); the array grows with the aliases in use. */
static struct topic_alias_in *in_table(struct client *c, uint16_t max, uint16_t alias)
{
	struct client_ext *x = client_ext(c);
	struct topic_alias_in *t;

	if (!x)
		return NULL;
	t = x->alias_in;
	if (!t) {
		t = mem_calloc(1, sizeof(*t));
		if (!t)
			return NULL;
		x->alias_in = t;
	}
	if (alias > t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 8;
		if (cap < alias)
			cap = alias;
		if (cap > max)
			cap = max;
		struct alias_in_entry *e = mem_realloc(t->e, cap * sizeof(*e));
		if (!e)
			return NULL;
		memset(e + t->cap, 0, (cap - t->cap) * sizeof(*e));
		t->e = e;
		t->cap = cap;
	}
	return t;
}

enum topic_alias_result topic_alias_inbound(struct client *c, uint16_t max, uint16_t alias,
					    struct mqtt_bytes *topic)
{
	struct topic_alias_in *t;
	struct alias_in_entry *e;

	/* [MQTT-3.3.2-8], and above what the CONNACK announced [MQTT-3.3.2-9]. */
	if (alias == 0 || alias > max)
		return TOPIC_ALIAS_INVALID;
	if (topic->len == 0) {
		/* Using a mapping: the connection must have set it before. */
		t = c->ext ? c->ext->alias_in : NULL;
		if (!t || alias > t->cap || !t->e[alias - 1].topic)
			return TOPIC_ALIAS_UNKNOWN;
		e = &t->e[alias - 1];
		topic->data = e->topic;
		topic->len = e->len;
		return TOPIC_ALIAS_OK;
	}
	/* Setting or replacing a mapping. */
	t = in_table(c, max, alias);
	if (!t)
		return TOPIC_ALIAS_NOMEM;
	e = &t->e[alias - 1];
	if (e->topic && e->len == topic->len && memcmp(e->topic, topic->data, topic->len) == 0)
		return TOPIC_ALIAS_OK; /* the same mapping again */
	uint8_t *copy = mem_malloc(topic->len);
	if (!copy)
		return TOPIC_ALIAS_NOMEM;
	memcpy(copy, topic->data, topic->len);
	mem_free(e->topic);
	e->topic = copy;
	e->len = (uint16_t)topic->len;
	return TOPIC_ALIAS_OK;
}

static void in_free(struct topic_alias_in *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->cap; i++)
		mem_free(t->e[i].topic);
	mem_free(t->e);
	mem_free(t);
}

/* --- outbound: broker -> client --- */

/* Aliases are 1..65535; 0 ends a chain or list. */
struct alias_out_entry {
	char *topic;
	uint32_t hash;
	uint16_t len;
	uint16_t hnext;   /* next alias in the same hash bucket */
	uint16_t older;   /* least recently used order: neighbours */
	uint16_t newer;
};

struct topic_alias_out {
	uint32_t max;             /* aliases 1..max may be used */
	uint32_t used;            /* aliases 1..used are mapped */
	uint32_t cap;             /* entries allocated */
	uint32_t mask;            /* buckets - 1 */
	uint16_t oldest;
	uint16_t newest;
	uint16_t *buckets;        /* first alias of each chain */
	struct alias_out_entry *e; /* e[alias - 1] */
};

#define OUT_MAX_BUCKETS 4096u

static uint32_t topic_hash(const char *s, uint16_t len)
{
	/* FNV-1a, 32 bits. */
	uint32_t h = 2166136261u;

	for (uint16_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

/* The most the broker may use towards c: 0 when the client or the listener says none. */
static uint32_t out_max(const struct client *c)
{
	const struct config_listener *l;
	uint32_t max = client_topic_alias_max_out(c);

	if (c->protocol != MQTT_PROTO_V5 || max == 0 || !c->listener)
		return 0;
	l = &c->worker->cfg->listeners[c->listener->index];
	if (l->max_topic_alias_broker <= 0)
		return 0;
	if ((uint32_t)l->max_topic_alias_broker < max)
		max = (uint32_t)l->max_topic_alias_broker;
	return max;
}

static struct topic_alias_out *out_table(struct client *c)
{
	struct topic_alias_out *t = c->ext ? c->ext->alias_out : NULL;
	uint32_t max, nb = 4;

	if (t)
		return t;
	max = out_max(c);
	if (max == 0 || !client_ext(c))
		return NULL;
	while (nb < max && nb < OUT_MAX_BUCKETS)
		nb *= 2;
	t = mem_calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->buckets = mem_calloc(nb, sizeof(*t->buckets));
	if (!t->buckets) {
		mem_free(t);
		return NULL;
	}
	t->max = max;
	t->mask = nb - 1;
	c->ext->alias_out = t;
	return t;
}

static struct alias_out_entry *ent(struct topic_alias_out *t, uint16_t alias)
{
	return &t->e[alias - 1];
}

static void lru_unlink(struct topic_alias_out *t, uint16_t a)
{
	struct alias_out_entry *x = ent(t, a);

	if (x->older)
		ent(t, x->older)->newer = x->newer;
	else
		t->oldest = x->newer;
	if (x->newer)
		ent(t, x->newer)->older = x->older;
	else
		t->newest = x->older;
	x->older = x->newer = 0;
}

static void lru_push_newest(struct topic_alias_out *t, uint16_t a)
{
	struct alias_out_entry *x = ent(t, a);

	x->older = t->newest;
	x->newer = 0;
	if (t->newest)
		ent(t, t->newest)->newer = a;
	else
		t->oldest = a;
	t->newest = a;
}

static void bucket_unlink(struct topic_alias_out *t, uint16_t a)
{
	uint16_t *link = &t->buckets[ent(t, a)->hash & t->mask];

	while (*link && *link != a)
		link = &ent(t, *link)->hnext;
	if (*link)
		*link = ent(t, a)->hnext;
	ent(t, a)->hnext = 0;
}

void topic_alias_pick(struct client *c, const char *topic, uint16_t len,
		      struct topic_alias_pick *pick)
{
	struct topic_alias_out *t;
	uint32_t h;
	uint16_t a;

	*pick = (struct topic_alias_pick){.alias = 0, .send_topic = true};
	if (len == 0 || client_topic_alias_max_out(c) == 0 || !(t = out_table(c)))
		return;
	h = topic_hash(topic, len);
	for (a = t->buckets[h & t->mask]; a; a = ent(t, a)->hnext) {
		struct alias_out_entry *x = ent(t, a);
		if (x->hash == h && x->len == len && memcmp(x->topic, topic, len) == 0) {
			pick->alias = a;
			pick->send_topic = false;
			return;
		}
	}
	/* A new mapping: the next unused alias, else the least recently used one. */
	if (t->used < t->max) {
		if (t->used == t->cap) {
			uint32_t cap = t->cap ? t->cap * 2 : 8;
			if (cap > t->max)
				cap = t->max;
			struct alias_out_entry *e = mem_realloc(t->e, cap * sizeof(*e));
			if (!e)
				return; /* the full topic, without an alias */
			t->e = e;
			t->cap = cap;
		}
		a = (uint16_t)(t->used + 1);
	} else {
		a = t->oldest;
	}
	pick->copy = mem_malloc((size_t)len + 1);
	if (!pick->copy)
		return;
	memcpy(pick->copy, topic, len);
	pick->copy[len] = '\0';
	pick->alias = a;
	pick->fresh = true;
	pick->len = len;
	pick->hash = h;
}

void topic_alias_commit(struct client *c, struct topic_alias_pick *pick)
{
	struct topic_alias_out *t = c->ext ? c->ext->alias_out : NULL;
	struct alias_out_entry *x;
	uint16_t a = pick->alias;

	if (a == 0 || !t)
		return;
	if (!pick->fresh) {
		lru_unlink(t, a);
		lru_push_newest(t, a);
		return;
	}
	x = ent(t, a);
	if (a == t->used + 1) {
		t->used++;
		memset(x, 0, sizeof(*x));
	} else {
		/* Reassigned: the client replaces its mapping when it reads this PUBLISH. */
		bucket_unlink(t, a);
		lru_unlink(t, a);
		mem_free(x->topic);
	}
	x->topic = pick->copy;
	x->len = pick->len;
	x->hash = pick->hash;
	x->hnext = t->buckets[x->hash & t->mask];
	t->buckets[x->hash & t->mask] = a;
	lru_push_newest(t, a);
	pick->copy = NULL;
	pick->fresh = false;
}

void topic_alias_abort(struct topic_alias_pick *pick)
{
	mem_free(pick->copy);
	pick->copy = NULL;
	pick->fresh = false;
	pick->alias = 0;
}

static void out_free(struct topic_alias_out *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->used; i++)
		mem_free(t->e[i].topic);
	mem_free(t->e);
	mem_free(t->buckets);
	mem_free(t);
}

void topic_alias_free(struct client *c)
{
	if (!c->ext)
		return;
	in_free(c->ext->alias_in);
	c->ext->alias_in = NULL;
	out_free(c->ext->alias_out);
	c->ext->alias_out = NULL;
}
