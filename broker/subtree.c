/*
 * subtree.c: the subscription trie (see subtree.h).
 *
 * Children live in the shared tnode table; the '+' and '#' children are
 * also reachable through direct pointers, since every match visits them.
 * Nodes left without children or subscribers are pruned on removal.
 */
#include "config.h"

#include "subtree.h"

#include "alloc.h"
#include "tnode.h"

#include <stdbool.h>
#include <string.h>

struct subnode {
	struct tnode t; /* first: a subnode is a tnode */
	struct subnode *plus;
	struct subnode *hash;
	struct subscriber *subs;
	uint32_t nsubs;
	uint32_t subs_cap;
};

static struct subnode *node_new(struct subnode *parent, const char *level, size_t len)
{
	return (struct subnode *)tnode_new(sizeof(struct subnode), parent ? &parent->t : NULL,
					   level, len);
}

static void node_destroy(struct subnode *n)
{
	tnode_release(&n->t);
	mem_free(n->subs);
	mem_free(n);
}

int subtree_init(struct subtree *t)
{
	t->root = node_new(NULL, "", 0);
	t->count = 0;
	return t->root ? 0 : -1;
}

void subtree_free(struct subtree *t)
{
	/* Iterative: a filter of 10k levels must not become 10k stack frames. */
	struct subnode *cur = t->root;

	while (cur) {
		struct subnode *child = cur->plus;
		if (child) {
			cur->plus = NULL;
		} else if ((child = cur->hash) != NULL) {
			cur->hash = NULL;
		} else {
			child = (struct subnode *)tnode_pop_child(&cur->t);
		}
		if (child) {
			cur = child;
			continue;
		}
		struct subnode *parent = (struct subnode *)cur->t.parent;
		node_destroy(cur);
		cur = parent;
	}
	t->root = NULL;
	t->count = 0;
}

/* Finds the child for one filter level, creating it when `create`. */
static struct subnode *step(struct subnode *n, const char *level, size_t len, bool create)
{
	struct subnode **wild = NULL;
	struct subnode *c;
	uint32_t h;

	if (len == 1 && level[0] == '+')
		wild = &n->plus;
	else if (len == 1 && level[0] == '#')
		wild = &n->hash;
	if (wild) {
		if (!*wild && create)
			*wild = node_new(n, level, len);
		return *wild;
	}
	h = tnode_hash(level, len);
	c = (struct subnode *)tnode_find(&n->t, level, len, h);
	if (c || !create)
		return c;
	c = node_new(n, level, len);
	if (c && tnode_insert(&n->t, &c->t) < 0) {
		node_destroy(c);
		c = NULL;
	}
	return c;
}

static struct subnode *walk(struct subnode *root, const char *filter, size_t len, bool create)
{
	const char *p = filter, *end = filter + len;
	struct subnode *n = root;

	for (;;) {
		size_t l;
		const char *stop = tnode_next_level(p, end, &l);
		n = step(n, p, l, create);
		if (!n || stop == end)
			return n;
		p = stop + 1;
	}
}

static bool node_is_empty(const struct subnode *n)
{
	return n->nsubs == 0 && n->t.nchildren == 0 && !n->plus && !n->hash;
}

/* Frees empty nodes from n upwards (never the root). */
static void prune(struct subnode *n)
{
	while (n->t.parent && node_is_empty(n)) {
		struct subnode *parent = (struct subnode *)n->t.parent;
		if (parent->plus == n)
			parent->plus = NULL;
		else if (parent->hash == n)
			parent->hash = NULL;
		else
			tnode_erase(&parent->t, &n->t);
		node_destroy(n);
		n = parent;
	}
}

int subtree_add(struct subtree *t, const char *filter, size_t len, const struct subscriber *sub)
{
	struct subnode *n = walk(t->root, filter, len, true);

	if (!n)
		return -1;
	for (uint32_t i = 0; i < n->nsubs; i++) {
		if (n->subs[i].session == sub->session) {
			n->subs[i] = *sub;
			return 0;
		}
	}
	if (n->nsubs == n->subs_cap) {
		uint32_t cap = n->subs_cap ? n->subs_cap * 2 : 1;
		struct subscriber *subs = mem_realloc(n->subs, cap * sizeof(*subs));
		if (!subs) {
			prune(n);
			return -1;
		}
		n->subs = subs;
		n->subs_cap = cap;
	}
	n->subs[n->nsubs++] = *sub;
	t->count++;
	return 1;
}

bool subtree_remove(struct subtree *t, const char *filter, size_t len, const struct session *s)
{
	struct subnode *n = walk(t->root, filter, len, false);

	if (!n)
		return false;
	for (uint32_t i = 0; i < n->nsubs; i++) {
		if (n->subs[i].session != s)
			continue;
		n->subs[i] = n->subs[--n->nsubs];
		if (n->nsubs == 0) {
			mem_free(n->subs);
			n->subs = NULL;
			n->subs_cap = 0;
		}
		t->count--;
		prune(n);
		return true;
	}
	return false;
}

static int found_add(struct match_ctx *ctx, const struct subnode *n)
{
	if (n->nsubs == 0)
		return 0;
	if (ctx->nfound + n->nsubs > ctx->found_cap) {
		size_t cap = ctx->found_cap ? ctx->found_cap : 16;
		while (cap < ctx->nfound + n->nsubs)
			cap *= 2;
		const struct subscriber **found = mem_realloc(ctx->found, cap * sizeof(*found));
		if (!found)
			return -1;
		ctx->found = found;
		ctx->found_cap = cap;
	}
	for (uint32_t i = 0; i < n->nsubs; i++)
		ctx->found[ctx->nfound++] = &n->subs[i];
	ctx->nodes_matched++;
	return 0;
}

static int frontier_reserve(struct match_ctx *ctx, size_t n)
{
	size_t cap;

	if (n <= ctx->frontier_cap)
		return 0;
	cap = ctx->frontier_cap ? ctx->frontier_cap : 8;
	while (cap < n)
		cap *= 2;
	struct subnode **a = mem_realloc(ctx->frontier, cap * sizeof(*a));
	if (!a)
		return -1;
	ctx->frontier = a;
	struct subnode **b = mem_realloc(ctx->next, cap * sizeof(*b));
	if (!b)
		return -1;
	ctx->next = b;
	ctx->frontier_cap = cap;
	return 0;
}

int subtree_match(const struct subtree *t, const char *topic, size_t len, struct match_ctx *ctx)
{
	const char *p = topic, *end = topic + len;
	bool dollar = len > 0 && topic[0] == '$';
	size_t nfront = 1;

	ctx->nfound = 0;
	ctx->nodes_matched = 0;
	if (frontier_reserve(ctx, 8) < 0)
		return -1;
	ctx->frontier[0] = t->root;
	for (bool first = true;; first = false) {
		size_t l, nnext = 0;
		const char *stop = tnode_next_level(p, end, &l);
		uint32_t h = tnode_hash(p, l);
		/* A leading wildcard never matches a '$' topic [MQTT-4.7.2-1]. */
		bool wild_ok = !(first && dollar);

		/* Each node adds at most two: its '+' child and the exact child. */
		if (frontier_reserve(ctx, nfront * 2) < 0)
			return -1;
		for (size_t i = 0; i < nfront; i++) {
			struct subnode *n = ctx->frontier[i];
			struct subnode *c;

			if (wild_ok && n->hash && found_add(ctx, n->hash) < 0)
				return -1;
			if (wild_ok && n->plus)
				ctx->next[nnext++] = n->plus;
			c = (struct subnode *)tnode_find(&n->t, p, l, h);
			if (c)
				ctx->next[nnext++] = c;
		}
		struct subnode **swap = ctx->frontier;
		ctx->frontier = ctx->next;
		ctx->next = swap;
		nfront = nnext;
		if (nfront == 0 || stop == end)
			break;
		p = stop + 1;
	}
	for (size_t i = 0; i < nfront; i++) {
		struct subnode *n = ctx->frontier[i];
		/* "a/#" also matches "a" itself. */
		if (found_add(ctx, n) < 0 || (n->hash && found_add(ctx, n->hash) < 0))
			return -1;
	}
	return 0;
}

void match_ctx_free(struct match_ctx *ctx)
{
	mem_free(ctx->frontier);
	mem_free(ctx->next);
	mem_free(ctx->found);
	*ctx = (struct match_ctx){0};
}
