/*
 * cluster_stub.c: cluster.h for a midge built without libnats. The
 * configuration refuses a cluster section in such a build (conf.c), so
 * b->cluster stays NULL and these are never reached with a cluster.
 */
#include "config.h"

#include "cluster.h"

#include <string.h>

#include "broker.h"
#include "log.h"

int cluster_start(struct broker *b)
{
	(void)b;
	log_err("Error: this midge was built without NATS support: no cluster.");
	return -1;
}

void cluster_stop(struct broker *b)
{
	(void)b;
}

void cluster_publish(struct cluster *c, const struct message *m)
{
	(void)c;
	(void)m;
}

bool cluster_shares_via_nats(const struct cluster *c)
{
	(void)c;
	return false;
}

void cluster_share_unref(struct cluster_share *s)
{
	(void)s;
}

void cluster_get_shared_stats(const struct broker *b, struct cluster_shared_stats *st)
{
	(void)b;
	memset(st, 0, sizeof(*st));
}

void cluster_get_stats(const struct broker *b, struct cluster_stats *st)
{
	(void)b;
	memset(st, 0, sizeof(*st));
}
