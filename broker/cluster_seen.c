/*
 * cluster_seen.c: the cluster ids (origin instance, sequence) of the messages
 * a session got live while the stream's messages for it are on the way
 * (cluster.h, cluster_seen_add()), so that the replay does not deliver them
 * twice. An open-addressing set of SEEN_SLOTS; beyond SEEN_MAX ids it stops
 * remembering (the replay then gives duplicates, never losses).
 */
#include "config.h"

#include "cluster.h"

#include "alloc.h"
#include "message.h"
#include "session.h"

#define SEEN_SLOTS 8192
#define SEEN_MAX (SEEN_SLOTS / 2)

struct cluster_seen {
	size_t count;
	struct { uint64_t instance, seq; } slot[SEEN_SLOTS]; /* instance 0 = free */
};

static size_t slot_of(uint64_t instance, uint64_t seq)
{
	uint64_t h = (instance ^ (seq * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;

	return (size_t)(h >> 51) % SEEN_SLOTS;
}

void cluster_seen_add(struct session *s, const struct message *m)
{
	struct session_cluster *sc;
	struct cluster_seen *set;

	if (!m->cluster_instance)
		return; /* published on this node: not told apart (a duplicate at worst) */
	if (!(sc = session_cluster(s)))
		return;
	if (!(set = sc->seen) && !(set = sc->seen = mem_calloc(1, sizeof(*set))))
		return;
	if (set->count >= SEEN_MAX)
		return;
	for (size_t i = slot_of(m->cluster_instance, m->cluster_seq);; i = (i + 1) % SEEN_SLOTS) {
		if (set->slot[i].instance == m->cluster_instance && set->slot[i].seq == m->cluster_seq)
			return;
		if (!set->slot[i].instance) {
			set->slot[i].instance = m->cluster_instance;
			set->slot[i].seq = m->cluster_seq;
			set->count++;
			return;
		}
	}
}

bool cluster_seen(const struct session *s, uint64_t instance, uint64_t seq)
{
	const struct session_cluster *sc = session_cluster_of(s);
	const struct cluster_seen *set = sc ? sc->seen : NULL;

	if (!set || !instance)
		return false;
	for (size_t i = slot_of(instance, seq); set->slot[i].instance; i = (i + 1) % SEEN_SLOTS)
		if (set->slot[i].instance == instance && set->slot[i].seq == seq)
			return true;
	return false;
}

void cluster_seen_free(struct session *s)
{
	struct session_cluster *sc = session_cluster_of(s);

	if (sc) {
		mem_free(sc->seen);
		sc->seen = NULL;
	}
}
