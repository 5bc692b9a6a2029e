/*
 * cluster_interest.c: NATS subscriptions that follow this node's filters.
 *
 * The subscription trie calls cluster_interest() when a filter gets its
 * first subscriber and when it loses its last (subtree.h), under the
 * broker's sub_lock, so the table here needs no lock of its own. Each filter
 * holds the one or two subscriptions cluster_wire.h maps it to, for QoS 0
 * messages ("m") and for QoS 1/2 ones ("q"): up to four. libnats keeps them
 * across reconnections.
 */
#include "config.h"

#include "cluster_int.h"

#include <string.h>

#include "alloc.h"
#include "cluster_wire.h"
#include "log.h"
#include "tnode.h"

struct interest_entry {
	struct interest_entry *next;
	natsSubscription *subs[4];
	size_t len;
	char filter[];
};

static struct interest_entry **slot(struct cluster *c, const char *filter, size_t len)
{
	struct interest_entry **e = &c->interest[tnode_hash(filter, len) % CLUSTER_INTEREST_BUCKETS];

	while (*e && !((*e)->len == len && memcmp((*e)->filter, filter, len) == 0))
		e = &(*e)->next;
	return e;
}

static void entry_free(struct interest_entry *e)
{
	for (int i = 0; i < 4; i++) {
		if (e->subs[i]) {
			natsSubscription_Unsubscribe(e->subs[i]);
			natsSubscription_Destroy(e->subs[i]);
		}
	}
	mem_free(e);
}

void cluster_interest(void *arg, const char *filter, size_t len, bool on)
{
	struct cluster *c = arg;
	struct interest_entry **at = slot(c, filter, len), *e = *at;
	size_t max = cluster_subject_max(c->prefix, len);
	char *subj[2] = {NULL, NULL};

	if (!on) {
		if (e) {
			*at = e->next;
			entry_free(e);
			atomic_fetch_sub(&c->interest_count, 1);
		}
		return;
	}
	if (e)
		return;
	e = mem_calloc(1, sizeof(*e) + len + 1);
	subj[0] = mem_malloc(max);
	subj[1] = mem_malloc(max);
	if (!e || !subj[0] || !subj[1]) {
		log_err("Error: out of memory following the cluster interest in %.*s.", (int)len,
			filter);
		mem_free(e);
		goto out;
	}
	memcpy(e->filter, filter, len);
	e->len = len;
	static const char *const kinds[2] = {CLUSTER_KIND_MSG, CLUSTER_KIND_QOS};
	for (int k = 0; k < 2; k++) {
		int n = cluster_subjects_for_filter(subj, c->prefix, kinds[k], filter, len);
		for (int i = 0; i < n; i++)
			e->subs[2 * k + i] = cluster_subscribe(c, subj[i]);
	}
	e->next = NULL;
	*at = e;
	atomic_fetch_add(&c->interest_count, 1);
out:
	mem_free(subj[0]);
	mem_free(subj[1]);
}

void cluster_interest_clear(struct cluster *c)
{
	for (size_t i = 0; i < CLUSTER_INTEREST_BUCKETS; i++) {
		while (c->interest[i]) {
			struct interest_entry *e = c->interest[i];
			c->interest[i] = e->next;
			entry_free(e);
		}
	}
	atomic_store(&c->interest_count, 0);
}
