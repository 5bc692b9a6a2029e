/*
 * retain.c: the retained-message tree (see retain.h).
 */
#include "config.h"

#include "retain.h"

#include "alloc.h"
#include "message.h"
#include "tnode.h"

#include <stdbool.h>
#include <string.h>

struct retain_node {
	struct tnode t; /* first: a retain_node is a tnode */
	struct message *msg;
};

/* A pending step of a walk: a node and the rest of the filter (NULL = everything below). */
struct walk_item {
	struct retain_node *node;
	const char *rest;
};

struct walk_stack {
	struct walk_item *items;
	size_t len;
	size_t cap;
};

static int push(struct walk_stack *s, struct retain_node *node, const char *rest)
{
	if (s->len == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct walk_item *items = mem_realloc(s->items, cap * sizeof(*items));
		if (!items)
			return -1;
		s->items = items;
		s->cap = cap;
	}
	s->items[s->len].node = node;
	s->items[s->len].rest = rest;
	s->len++;
	return 0;
}

static struct retain_node *node_new(struct retain_node *parent, const char *level, size_t len)
{
	return (struct retain_node *)tnode_new(sizeof(struct retain_node),
					       parent ? &parent->t : NULL, level, len);
}

int retain_init(struct retain_store *r)
{
	r->root = node_new(NULL, "", 0);
	r->count = 0;
	r->bytes = 0;
	r->next_expiry = 0;
	r->last_sweep = 0;
	return r->root ? 0 : -1;
}

void retain_free(struct retain_store *r)
{
	struct retain_node *cur = r->root;

	while (cur) {
		struct retain_node *child = (struct retain_node *)tnode_pop_child(&cur->t);
		if (child) {
			cur = child;
			continue;
		}
		struct retain_node *parent = (struct retain_node *)cur->t.parent;
		message_unref(cur->msg);
		tnode_release(&cur->t);
		mem_free(cur);
		cur = parent;
	}
	r->root = NULL;
	r->count = 0;
	r->bytes = 0;
}

static void prune(struct retain_node *n)
{
	while (n->t.parent && !n->msg && n->t.nchildren == 0) {
		struct retain_node *parent = (struct retain_node *)n->t.parent;
		tnode_erase(&parent->t, &n->t);
		tnode_release(&n->t);
		mem_free(n);
		n = parent;
	}
}

static struct retain_node *find(struct retain_node *root, const char *topic, size_t len,
				bool create)
{
	const char *p = topic, *end = topic + len;
	struct retain_node *n = root;

	for (;;) {
		size_t l;
		const char *stop = tnode_next_level(p, end, &l);
		struct retain_node *c = (struct retain_node *)tnode_find(&n->t, p, l, tnode_hash(p, l));

		if (!c) {
			if (!create)
				return NULL;
			c = node_new(n, p, l);
			if (!c || tnode_insert(&n->t, &c->t) < 0) {
				mem_free(c);
				prune(n);
				return NULL;
			}
		}
		n = c;
		if (stop == end)
			return n;
		p = stop + 1;
	}
}

static void drop(struct retain_store *r, struct retain_node *n)
{
	if (!n->msg)
		return;
	r->count--;
	r->bytes -= message_size(n->msg);
	message_unref(n->msg);
	n->msg = NULL;
}

int retain_set(struct retain_store *r, struct message *m)
{
	struct retain_node *n;

	if (m->payload_len == 0) {
		n = find(r->root, m->topic, m->topic_len, false);
		if (n) {
			drop(r, n);
			prune(n);
		}
		return 0;
	}
	n = find(r->root, m->topic, m->topic_len, true);
	if (!n)
		return -1;
	drop(r, n);
	n->msg = message_ref(m);
	r->count++;
	r->bytes += message_size(m);
	if (m->expires && (!r->next_expiry || m->expires < r->next_expiry))
		r->next_expiry = m->expires;
	return 0;
}

static bool live(const struct message *m, int64_t now)
{
	return m && (m->expires == 0 || now < m->expires);
}

/* Steps into the children of n matching one filter level. */
static int expand(struct walk_stack *s, struct retain_node *n, const char *level, size_t l,
		  const char *next, bool at_root)
{
	struct tnode *c;

	if (l == 1 && level[0] == '#') {
		/* "a/#" matches "a" itself, then everything below. */
		TNODE_FOREACH_CHILD(&n->t, c)
			if (!(at_root && c->level_len > 0 && c->level[0] == '$') &&
			    push(s, (struct retain_node *)c, NULL) < 0)
				return -1;
		return 0;
	}
	if (l == 1 && level[0] == '+') {
		TNODE_FOREACH_CHILD(&n->t, c)
			if (!(at_root && c->level_len > 0 && c->level[0] == '$') &&
			    push(s, (struct retain_node *)c, next) < 0)
				return -1;
		return 0;
	}
	c = tnode_find(&n->t, level, l, tnode_hash(level, l));
	if (c && push(s, (struct retain_node *)c, next) < 0)
		return -1;
	return 0;
}

int retain_match(const struct retain_store *r, const char *filter, size_t len, int64_t now,
		 retain_fn fn, void *arg)
{
	const char *end = filter + len;
	struct walk_stack s = {0};
	const char sentinel = '\0';
	int rc = 0;

	/* rest == &sentinel means "the filter is used up: this node itself". */
	{
		size_t l;
		const char *stop = tnode_next_level(filter, end, &l);
		rc = expand(&s, r->root, filter, l, stop == end ? &sentinel : stop + 1, true);
		if (l == 1 && filter[0] == '#' && live(r->root->msg, now))
			fn(r->root->msg, arg);
	}
	while (rc == 0 && s.len > 0) {
		struct walk_item it = s.items[--s.len];
		struct retain_node *n = it.node;
		struct tnode *c;

		if (!it.rest) {
			/* Under '#': this node and everything below. */
			if (live(n->msg, now))
				fn(n->msg, arg);
			TNODE_FOREACH_CHILD(&n->t, c)
				if ((rc = push(&s, (struct retain_node *)c, NULL)) < 0)
					break;
			continue;
		}
		if (it.rest == &sentinel) {
			if (live(n->msg, now))
				fn(n->msg, arg);
			continue;
		}
		size_t l;
		const char *stop = tnode_next_level(it.rest, end, &l);
		/* "a/#" matches "a": the parent of a trailing '#' level. */
		if (l == 1 && it.rest[0] == '#' && live(n->msg, now))
			fn(n->msg, arg);
		rc = expand(&s, n, it.rest, l, stop == end ? &sentinel : stop + 1, false);
	}
	mem_free(s.items);
	return rc;
}

size_t retain_expire_due(struct retain_store *r, int64_t now)
{
	if (!r->next_expiry || now < r->next_expiry || now == r->last_sweep)
		return 0;
	return retain_expire(r, now);
}

size_t retain_expire(struct retain_store *r, int64_t now)
{
	struct walk_stack s = {0};
	struct message **dead = NULL;
	size_t ndead = 0, dead_cap = 0, removed = 0;
	int64_t next = 0;
	bool complete = false;
	struct tnode *c;

	/* Collect first, remove after: pruning while walking would free nodes
	 * still on the stack. */
	r->last_sweep = now;
	if (push(&s, r->root, NULL) < 0)
		return 0;
	while (s.len > 0) {
		struct retain_node *n = s.items[--s.len].node;
		if (n->msg && live(n->msg, now) && n->msg->expires &&
		    (!next || n->msg->expires < next))
			next = n->msg->expires;
		if (n->msg && !live(n->msg, now)) {
			if (ndead == dead_cap) {
				size_t cap = dead_cap ? dead_cap * 2 : 16;
				struct message **d = mem_realloc(dead, cap * sizeof(*d));
				if (!d)
					goto out;
				dead = d;
				dead_cap = cap;
			}
			dead[ndead++] = n->msg;
		}
		TNODE_FOREACH_CHILD(&n->t, c)
			if (push(&s, (struct retain_node *)c, NULL) < 0)
				goto out;
	}
	complete = true;
out:
	/* A walk cut short (out of memory) leaves the next sweep due. */
	if (complete)
		r->next_expiry = next;
	for (size_t i = 0; i < ndead; i++) {
		struct retain_node *n = find(r->root, dead[i]->topic, dead[i]->topic_len, false);
		if (n && n->msg == dead[i]) {
			drop(r, n);
			prune(n);
			removed++;
		}
	}
	mem_free(dead);
	mem_free(s.items);
	return removed;
}
