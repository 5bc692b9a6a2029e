/*
 * subtree.c: the subscription trie (see subtree.h).
 *
 * Children live in the shared tnode table; the '+' and '#' children are
 * instead reachable through direct pointers, since every match visits them.
 * Those and shared groups live in a node's extension, allocated only while
 * it has any: most nodes (a leaf per distinct filter) have none.
 * Nodes left without children or subscribers are pruned on removal.
 */
#include "config.h"

#include "subtree.h"

#include "alloc.h"
#include "tnode.h"
#include "topic.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* Subscribers of one shared group ($share/<name>/<filter>) at one filter. */
struct shared_group {
	char *name;
	size_t name_len;
	struct subscriber *members;
	uint32_t nmembers;
	uint32_t cap;
	_Atomic uint32_t next; /* round-robin cursor: matching runs under a read lock */
};

/* What fewer nodes have: wildcard children and shared groups. */
struct subnode_ext {
	struct subnode *plus;
	struct subnode *hash;
	struct shared_group *groups;
	uint32_t ngroups;
};

struct subnode {
	struct tnode t; /* first: a subnode is a tnode */
	struct subnode_ext *x; /* NULL while the node has none of it */
	struct subscriber *subs;
	uint32_t nsubs;
	uint32_t subs_cap;
};

static struct subnode *node_new(struct subnode *parent, const char *level, size_t len)
{
	return (struct subnode *)tnode_new(sizeof(struct subnode), parent ? &parent->t : NULL,
					   level, len);
}

static struct subnode_ext *node_ext(struct subnode *n)
{
	if (!n->x)
		n->x = mem_calloc(1, sizeof(*n->x));
	return n->x;
}

/* Frees the extension once it holds nothing. */
static void node_ext_trim(struct subnode *n)
{
	struct subnode_ext *x = n->x;

	if (x && !x->plus && !x->hash && x->ngroups == 0) {
		mem_free(x->groups);
		mem_free(x);
		n->x = NULL;
	}
}

static void node_destroy(struct subnode *n)
{
	tnode_release(&n->t);
	mem_free(n->subs);
	if (n->x) {
		for (uint32_t i = 0; i < n->x->ngroups; i++) {
			mem_free(n->x->groups[i].name);
			mem_free(n->x->groups[i].members);
		}
		mem_free(n->x->groups);
		mem_free(n->x);
	}
	mem_free(n);
}

int subtree_init(struct subtree *t)
{
	t->root = node_new(NULL, "", 0);
	t->count = 0;
	t->shared_count = 0;
	t->interest = NULL;
	t->shared_interest = NULL;
	t->interest_arg = NULL;
	return t->root ? 0 : -1;
}

void subtree_free(struct subtree *t)
{
	/* Iterative: a filter of 10k levels must not become 10k stack frames. */
	struct subnode *cur = t->root;

	while (cur) {
		struct subnode *child = NULL;
		if (cur->x && (child = cur->x->plus) != NULL) {
			cur->x->plus = NULL;
		} else if (cur->x && (child = cur->x->hash) != NULL) {
			cur->x->hash = NULL;
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
	t->shared_count = 0;
}

/* Finds the child for one filter level, creating it when `create`. */
static struct subnode *step(struct subnode *n, const char *level, size_t len, bool create)
{
	struct subnode **wild = NULL;
	struct subnode *c;
	uint32_t h;

	if (len == 1 && (level[0] == '+' || level[0] == '#')) {
		struct subnode_ext *x = create ? node_ext(n) : n->x;
		if (!x)
			return NULL;
		wild = level[0] == '+' ? &x->plus : &x->hash;
		if (!*wild && create)
			*wild = node_new(n, level, len);
		if (!*wild)
			node_ext_trim(n);
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
	return n->nsubs == 0 && n->t.nchildren == 0 && !n->x;
}

/* Frees empty nodes from n upwards (never the root). */
static void prune(struct subnode *n)
{
	while (n->t.parent && node_is_empty(n)) {
		struct subnode *parent = (struct subnode *)n->t.parent;
		if (parent->x && parent->x->plus == n)
			parent->x->plus = NULL;
		else if (parent->x && parent->x->hash == n)
			parent->x->hash = NULL;
		else
			tnode_erase(&parent->t, &n->t);
		node_ext_trim(parent);
		node_destroy(n);
		n = parent;
	}
}

/* Adds or updates sub in a subscriber array; 1 new, 0 updated, -1 out of memory. */
static int members_put(struct subscriber **arr, uint32_t *n, uint32_t *cap,
		       const struct subscriber *sub)
{
	for (uint32_t i = 0; i < *n; i++) {
		if ((*arr)[i].session == sub->session) {
			(*arr)[i] = *sub;
			return 0;
		}
	}
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 1;
		struct subscriber *a = mem_realloc(*arr, c * sizeof(*a));
		if (!a)
			return -1;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = *sub;
	return 1;
}

/* Removes s from a subscriber array, keeping the order (round robin stays fair). */
static bool members_remove(struct subscriber **arr, uint32_t *n, uint32_t *cap,
			   const struct session *s)
{
	for (uint32_t i = 0; i < *n; i++) {
		if ((*arr)[i].session != s)
			continue;
		memmove(&(*arr)[i], &(*arr)[i + 1], (*n - i - 1) * sizeof(**arr));
		if (--*n == 0) {
			mem_free(*arr);
			*arr = NULL;
			*cap = 0;
		}
		return true;
	}
	return false;
}

/* Whether t->interest should consider the filter of n followed. */
static bool has_interest(const struct subtree *t, const struct subnode *n)
{
	return n->nsubs > 0 || (!t->shared_interest && n->x && n->x->ngroups > 0);
}

int subtree_add(struct subtree *t, const char *filter, size_t len, const struct subscriber *sub)
{
	struct subnode *n = walk(t->root, filter, len, true);
	bool had;
	int rc;

	if (!n)
		return -1;
	had = has_interest(t, n);
	rc = members_put(&n->subs, &n->nsubs, &n->subs_cap, sub);
	if (rc < 0)
		prune(n);
	if (rc == 1) {
		t->count++;
		if (t->interest && !had)
			t->interest(t->interest_arg, filter, len, true);
	}
	return rc;
}

bool subtree_remove(struct subtree *t, const char *filter, size_t len, const struct session *s)
{
	struct subnode *n = walk(t->root, filter, len, false);

	if (!n || !members_remove(&n->subs, &n->nsubs, &n->subs_cap, s))
		return false;
	t->count--;
	if (t->interest && !has_interest(t, n))
		t->interest(t->interest_arg, filter, len, false);
	prune(n);
	return true;
}

static struct shared_group *group_find(struct subnode *n, const char *name, size_t len)
{
	const struct subnode_ext *x = n->x;

	for (uint32_t i = 0; x && i < x->ngroups; i++)
		if (x->groups[i].name_len == len && memcmp(x->groups[i].name, name, len) == 0)
			return &x->groups[i];
	return NULL;
}

static struct shared_group *group_add(struct subnode *n, const char *name, size_t len)
{
	struct subnode_ext *x = node_ext(n);
	struct shared_group *groups, *g;

	if (!x)
		return NULL;
	groups = mem_realloc(x->groups, (x->ngroups + 1) * sizeof(*groups));
	if (!groups) {
		node_ext_trim(n);
		return NULL;
	}
	x->groups = groups;
	g = &groups[x->ngroups];
	memset(g, 0, sizeof(*g));
	g->name = mem_strndup(name, len);
	if (!g->name) {
		node_ext_trim(n);
		return NULL;
	}
	g->name_len = len;
	atomic_init(&g->next, 0);
	x->ngroups++;
	return g;
}

static void group_drop(struct subnode *n, struct shared_group *g)
{
	struct subnode_ext *x = n->x;

	mem_free(g->name);
	mem_free(g->members);
	*g = x->groups[--x->ngroups];
	if (x->ngroups == 0) {
		mem_free(x->groups);
		x->groups = NULL;
		node_ext_trim(n);
	}
}

int subtree_add_shared(struct subtree *t, const char *group, size_t glen, const char *filter,
		       size_t flen, const struct subscriber *sub)
{
	struct subnode *n = walk(t->root, filter, flen, true);
	struct shared_group *g;
	int rc;

	if (!n)
		return -1;
	bool had = has_interest(t, n);
	g = group_find(n, group, glen);
	bool new_group = !g;
	if (!g)
		g = group_add(n, group, glen);
	if (!g) {
		prune(n);
		return -1;
	}
	rc = members_put(&g->members, &g->nmembers, &g->cap, sub);
	if (rc < 0 && g->nmembers == 0) {
		group_drop(n, g);
		prune(n);
	}
	if (rc == 1) {
		t->count++;
		t->shared_count++;
		if (t->interest && !had && has_interest(t, n))
			t->interest(t->interest_arg, filter, flen, true);
		if (t->shared_interest && new_group)
			t->shared_interest(t->interest_arg, group, glen, filter, flen, true);
	}
	return rc;
}

bool subtree_remove_shared(struct subtree *t, const char *group, size_t glen, const char *filter,
			   size_t flen, const struct session *s)
{
	struct subnode *n = walk(t->root, filter, flen, false);
	struct shared_group *g = n ? group_find(n, group, glen) : NULL;

	if (!g || !members_remove(&g->members, &g->nmembers, &g->cap, s))
		return false;
	bool was = has_interest(t, n);
	if (g->nmembers == 0) {
		group_drop(n, g);
		if (t->shared_interest)
			t->shared_interest(t->interest_arg, group, glen, filter, flen, false);
	}
	t->count--;
	t->shared_count--;
	if (t->interest && was && !has_interest(t, n))
		t->interest(t->interest_arg, filter, flen, false);
	prune(n);
	return true;
}

/* The member of a shared group whose turn it is, preferring ctx->preferred ones. */
static const struct subscriber *group_pick(struct match_ctx *ctx, struct shared_group *g)
{
	uint32_t start = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);

	for (uint32_t k = 0; ctx->preferred && k < g->nmembers; k++) {
		const struct subscriber *m = &g->members[(start + k) % g->nmembers];
		if (ctx->preferred(m->session))
			return m;
	}
	return &g->members[start % g->nmembers];
}

int subtree_add_any(struct subtree *t, const char *filter, size_t len, const struct subscriber *sub)
{
	const char *group, *inner;
	size_t glen, ilen;
	bool valid;

	if (topic_shared_parse(filter, len, &group, &glen, &inner, &ilen, &valid))
		return valid ? subtree_add_shared(t, group, glen, inner, ilen, sub) : -1;
	return subtree_add(t, filter, len, sub);
}

bool subtree_remove_any(struct subtree *t, const char *filter, size_t len, const struct session *s)
{
	const char *group, *inner;
	size_t glen, ilen;
	bool valid;

	if (topic_shared_parse(filter, len, &group, &glen, &inner, &ilen, &valid))
		return valid && subtree_remove_shared(t, group, glen, inner, ilen, s);
	return subtree_remove(t, filter, len, s);
}

static int found_add(struct match_ctx *ctx, const struct subnode *n)
{
	uint32_t ngroups = n->x && !ctx->skip_groups ? n->x->ngroups : 0;
	size_t want = n->nsubs + ngroups;

	if (want == 0)
		return 0;
	if (ctx->nfound + want > ctx->found_cap) {
		size_t cap = ctx->found_cap ? ctx->found_cap : 16;
		while (cap < ctx->nfound + want)
			cap *= 2;
		const struct subscriber **found = mem_realloc(ctx->found, cap * sizeof(*found));
		if (!found)
			return -1;
		ctx->found = found;
		ctx->found_cap = cap;
	}
	for (uint32_t i = 0; i < n->nsubs; i++)
		ctx->found[ctx->nfound++] = &n->subs[i];
	for (uint32_t i = 0; i < ngroups; i++)
		ctx->found[ctx->nfound++] = group_pick(ctx, &n->x->groups[i]);
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
			const struct subnode_ext *x = wild_ok ? n->x : NULL;
			struct subnode *c;

			if (x && x->hash && found_add(ctx, x->hash) < 0)
				return -1;
			if (x && x->plus)
				ctx->next[nnext++] = x->plus;
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
		if (found_add(ctx, n) < 0 || (n->x && n->x->hash && found_add(ctx, n->x->hash) < 0))
			return -1;
	}
	return 0;
}

/* The node of exactly filter, without changing the tree. */
static const struct subnode *find(const struct subnode *n, const char *filter, size_t len)
{
	const char *p = filter, *end = filter + len;

	for (;;) {
		size_t l;
		const char *stop = tnode_next_level(p, end, &l);
		if (l == 1 && (p[0] == '+' || p[0] == '#'))
			n = !n->x ? NULL : p[0] == '+' ? n->x->plus : n->x->hash;
		else
			n = (const struct subnode *)tnode_find(&n->t, p, l, tnode_hash(p, l));
		if (!n || stop == end)
			return n;
		p = stop + 1;
	}
}

const struct subscriber *subtree_pick_shared(const struct subtree *t, const char *group,
					     size_t glen, const char *filter, size_t flen,
					     const char *topic, size_t tlen, struct match_ctx *ctx)
{
	const struct subnode *n;
	struct shared_group *g;

	/* NATS matches more broadly than MQTT (e.g. '+' against "$SYS"). */
	if (!topic_matches(filter, flen, topic, tlen))
		return NULL;
	n = find(t->root, filter, flen);
	g = n ? group_find((struct subnode *)n, group, glen) : NULL;
	return g && g->nmembers > 0 ? group_pick(ctx, g) : NULL;
}

void match_ctx_free(struct match_ctx *ctx)
{
	mem_free(ctx->frontier);
	mem_free(ctx->next);
	mem_free(ctx->found);
	*ctx = (struct match_ctx){0};
}
