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

void cluster_publish(struct cluster *c, const struct message *m, unsigned worker)
{
	(void)c;
	(void)m;
	(void)worker;
}

uint64_t cluster_take_submitted(struct cluster *c, unsigned worker)
{
	(void)c;
	(void)worker;
	return 0;
}

uint64_t cluster_confirmed(struct cluster *c, unsigned worker, const uint64_t **failed,
			   size_t *nfailed)
{
	(void)c;
	(void)worker;
	*failed = NULL;
	*nfailed = 0;
	return 0;
}

void cluster_get_stats(const struct broker *b, struct cluster_stats *st)
{
	(void)b;
	memset(st, 0, sizeof(*st));
}
