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

uint64_t cluster_will_register(struct cluster *c, const char *client_id,
			       const struct message *will, uint32_t delay)
{
	(void)c;
	(void)client_id;
	(void)will;
	(void)delay;
	return 0;
}

void cluster_will_forget(struct cluster *c, const char *client_id, uint64_t reg)
{
	(void)c;
	(void)client_id;
	(void)reg;
}

void cluster_get_stats(const struct broker *b, struct cluster_stats *st)
{
	(void)b;
	memset(st, 0, sizeof(*st));
}
