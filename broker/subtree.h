/*
 * subtree.h: the subscription trie.
 *
 * Owns the tree of topic-filter levels and, at each node, the subscribers
 * whose filter ends there. Matching a topic walks level by level with an
 * explicit frontier (no recursion, so a topic of 10k levels costs memory,
 * not stack). It stores session pointers but never dereferences them; the
 * caller serialises access (the broker's routing lock).
 */
#ifndef MIDGE_SUBTREE_H
#define MIDGE_SUBTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct subnode;

/* Subscription options kept per subscriber. */
enum {
	SUBOPT_NO_LOCAL = 1u << 0,
	SUBOPT_RETAIN_AS_PUBLISHED = 1u << 1,
};

struct subscriber {
	struct session *session;
	uint32_t subid;   /* MQTT 5 subscription identifier, 0 = none */
	uint8_t qos;      /* granted QoS */
	uint8_t flags;    /* SUBOPT_* */
};

/*
 * Called when a filter gets its first subscriber (on = true; shared groups
 * count under their inner filter) and when it loses its last, under the
 * caller's write lock. The cluster (cluster.h) follows interest with it.
 */
typedef void (*subtree_interest_fn)(void *arg, const char *filter, size_t len, bool on);

/*
 * Called when shared group <group> at a filter gets its first member and
 * when it loses its last, under the caller's write lock, with interest_arg.
 * While set, shared groups no longer count as interest in their filter: the
 * cluster follows them with NATS queue subscriptions instead.
 */
typedef void (*subtree_shared_fn)(void *arg, const char *group, size_t glen, const char *filter,
				  size_t flen, bool on);

struct subtree {
	struct subnode *root;
	size_t count;        /* subscriptions, shared ones included */
	size_t shared_count; /* shared subscriptions ($share/<group>/...) */
	subtree_interest_fn interest; /* NULL: nobody follows interest */
	subtree_shared_fn shared_interest; /* NULL: groups count as interest in their filter */
	void *interest_arg;
};

/* Scratch space for matching, reused across calls (one per worker). */
struct match_ctx {
	struct subnode **frontier;
	struct subnode **next;
	size_t frontier_cap;
	const struct subscriber **found;
	size_t nfound;
	size_t found_cap;
	size_t nodes_matched; /* leaf nodes that contributed subscribers */
	/* Shared groups prefer members for which this says true (online ones). */
	bool (*preferred)(const struct session *s);
	/* Shared groups are left out (the cluster picks their member elsewhere). */
	bool skip_groups;
};

int subtree_init(struct subtree *t);
void subtree_free(struct subtree *t);

/*
 * Adds or updates session's subscription to a valid filter. Returns 1 when
 * it was new, 0 when an existing one was updated, -1 on allocation failure.
 */
int subtree_add(struct subtree *t, const char *filter, size_t len, const struct subscriber *sub);

/* Removes session's subscription; returns true if there was one. */
bool subtree_remove(struct subtree *t, const char *filter, size_t len, const struct session *s);

/*
 * Shared subscriptions: one member of each group gets each message, in
 * turn, preferring members ctx->preferred() accepts. Same results as above.
 */
int subtree_add_shared(struct subtree *t, const char *group, size_t glen, const char *filter,
		       size_t flen, const struct subscriber *sub);
bool subtree_remove_shared(struct subtree *t, const char *group, size_t glen, const char *filter,
			   size_t flen, const struct session *s);

/* Either of the above, by the form of the filter ("$share/<group>/<filter>" or not). */
int subtree_add_any(struct subtree *t, const char *filter, size_t len, const struct subscriber *sub);
bool subtree_remove_any(struct subtree *t, const char *filter, size_t len, const struct session *s);

/*
 * Collects every subscriber whose filter matches a valid topic name (and one
 * member of each matching shared group) into
 * ctx->found (pointers valid until the tree changes). Returns -1 on
 * allocation failure (with what was found so far).
 */
int subtree_match(const struct subtree *t, const char *topic, size_t len, struct match_ctx *ctx);

/*
 * The member of shared group <group> at exactly filter whose turn it is
 * (preferring ctx->preferred ones), when that filter matches the topic name
 * by MQTT's rules; NULL otherwise. Valid until the tree changes.
 */
const struct subscriber *subtree_pick_shared(const struct subtree *t, const char *group,
					     size_t glen, const char *filter, size_t flen,
					     const char *topic, size_t tlen, struct match_ctx *ctx);

void match_ctx_free(struct match_ctx *ctx);

#endif
