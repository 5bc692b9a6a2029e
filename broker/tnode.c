/*
 * tnode.c: child tables of topic-level trees (see tnode.h).
 */
#include "config.h"

#include "tnode.h"

#include "alloc.h"

#include <string.h>

uint32_t tnode_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

struct tnode *tnode_new(size_t size, struct tnode *parent, const char *level, size_t len)
{
	struct tnode *n = mem_calloc(1, size + len + 1);

	if (!n)
		return NULL;
	n->parent = parent;
	n->level = (char *)n + size;
	memcpy(n->level, level, len);
	n->level_len = (uint32_t)len;
	n->level_hash = tnode_hash(level, len);
	return n;
}

struct tnode *tnode_find(const struct tnode *n, const char *level, size_t len, uint32_t hash)
{
	uint32_t mask;

	if (!n->table_cap)
		return NULL;
	mask = n->table_cap - 1;
	for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
		struct tnode *c = n->table[i];
		if (!c)
			return NULL;
		if (c->level_hash == hash && c->level_len == len && memcmp(c->level, level, len) == 0)
			return c;
	}
}

static void table_put(struct tnode **table, uint32_t cap, struct tnode *c)
{
	uint32_t mask = cap - 1;
	uint32_t i = c->level_hash & mask;

	while (table[i])
		i = (i + 1) & mask;
	table[i] = c;
}

int tnode_insert(struct tnode *n, struct tnode *child)
{
	if ((n->nchildren + 1) * 2 > n->table_cap) {
		uint32_t cap = n->table_cap ? n->table_cap * 2 : 4;
		struct tnode **table = mem_calloc(cap, sizeof(*table));
		if (!table)
			return -1;
		for (uint32_t i = 0; i < n->table_cap; i++)
			if (n->table[i])
				table_put(table, cap, n->table[i]);
		mem_free(n->table);
		n->table = table;
		n->table_cap = cap;
	}
	table_put(n->table, n->table_cap, child);
	n->nchildren++;
	return 0;
}

void tnode_erase(struct tnode *n, struct tnode *child)
{
	uint32_t mask = n->table_cap - 1;
	uint32_t i = child->level_hash & mask;

	while (n->table[i] != child)
		i = (i + 1) & mask;
	n->table[i] = NULL;
	n->nchildren--;
	/* Re-place the rest of the probe run so lookups still find it. */
	for (i = (i + 1) & mask; n->table[i]; i = (i + 1) & mask) {
		struct tnode *moved = n->table[i];
		n->table[i] = NULL;
		table_put(n->table, n->table_cap, moved);
	}
	if (n->nchildren == 0)
		tnode_release(n);
}

struct tnode *tnode_pop_child(struct tnode *n)
{
	for (uint32_t i = 0; i < n->table_cap; i++) {
		struct tnode *c = n->table[i];
		if (c) {
			n->table[i] = NULL;
			n->nchildren--;
			return c;
		}
	}
	return NULL;
}

void tnode_release(struct tnode *n)
{
	mem_free(n->table);
	n->table = NULL;
	n->table_cap = 0;
	n->nchildren = 0;
}
