/*
 * retain.h: the retained-message store.
 *
 * Owns one retained message per topic, in a tree of topic levels so that a
 * subscription with wildcards visits only the branches it can match. The
 * store holds a reference to each message. Walks are iterative (deep topics
 * cost heap, not stack). The caller serialises access (the retain lock).
 */
#ifndef MIDGE_RETAIN_H
#define MIDGE_RETAIN_H

#include <stddef.h>
#include <stdint.h>

struct message;
struct retain_node;

struct retain_store {
	struct retain_node *root;
	size_t count;
	size_t bytes;
	int64_t next_expiry;  /* earliest expiry among stored messages (or past), 0 = none */
	int64_t last_sweep;   /* when retain_expire() last ran */
};

int retain_init(struct retain_store *r);
void retain_free(struct retain_store *r);

/*
 * Stores m under its topic, replacing any earlier message (takes a new
 * reference), or removes the topic's message when m's payload is empty.
 * Returns 0, or -1 when out of memory (the store is unchanged).
 */
int retain_set(struct retain_store *r, struct message *m);

typedef void (*retain_fn)(struct message *m, void *arg);

/*
 * Calls fn for each retained message whose topic matches a valid filter
 * (unexpired at wall-clock time `now`). fn must not change the store.
 * Returns -1 when out of memory.
 */
int retain_match(const struct retain_store *r, const char *filter, size_t len, int64_t now,
		 retain_fn fn, void *arg);

/* Removes messages whose expiry has passed (wall-clock time `now`); returns how many. */
size_t retain_expire(struct retain_store *r, int64_t now);

/*
 * retain_expire(), but only when a stored message has expired since the
 * last sweep, and at most once a second: cheap enough to call before every
 * retain_set(), which is how expired messages leave the store (they are
 * never delivered meanwhile: retain_match() skips them).
 */
size_t retain_expire_due(struct retain_store *r, int64_t now);

#endif
