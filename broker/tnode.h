/*
 * tnode.h: the node header shared by the topic-level trees.
 *
 * Owns a node's level string and its children, kept in a small
 * open-addressing hash table keyed by level. The subscription trie and the
 * retained store embed a struct tnode as the first member of their nodes
 * and add their own payload; neither duplicates this table code.
 */
#ifndef MIDGE_TNODE_H
#define MIDGE_TNODE_H

#include <stddef.h>
#include <stdint.h>

struct tnode {
	struct tnode *parent;
	struct tnode **table;  /* capacity is a power of two, load <= 1/2 */
	uint32_t table_cap;
	uint32_t nchildren;
	uint32_t level_hash;
	uint32_t level_len;
	char *level;           /* stored right after the owner's struct */
};

uint32_t tnode_hash(const char *level, size_t len);

/* Allocates (zeroed) an owner node of `size` bytes with the level appended. */
struct tnode *tnode_new(size_t size, struct tnode *parent, const char *level, size_t len);

struct tnode *tnode_find(const struct tnode *n, const char *level, size_t len, uint32_t hash);
int tnode_insert(struct tnode *n, struct tnode *child);
void tnode_erase(struct tnode *n, struct tnode *child);

/* Calls fn for each child; the table must not change meanwhile. */
#define TNODE_FOREACH_CHILD(n, c)                                                    \
	for (uint32_t tnode_i_ = 0; tnode_i_ < (n)->table_cap; tnode_i_++)           \
		if (((c) = (n)->table[tnode_i_]) != NULL)

/* Takes any one child out of the table (for teardown); NULL when none. */
struct tnode *tnode_pop_child(struct tnode *n);

/* Frees the child table (the node itself belongs to its owner). */
void tnode_release(struct tnode *n);

/* Splits off the next level of a topic: returns where it stops (a '/' or end). */
static inline const char *tnode_next_level(const char *p, const char *end, size_t *len)
{
	const char *q = p;

	while (q < end && *q != '/')
		q++;
	*len = (size_t)(q - p);
	return q;
}

#endif
