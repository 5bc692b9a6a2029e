/*
 * cluster_stub.c: cluster.h for a midge built without libnats. The
 * configuration refuses a cluster section in such a build (conf.c), so
 * b->cluster stays NULL and these are never reached with a cluster.
 */
#include "config.h"

#include "cluster.h"

#include <string.h>

#include "alloc.h"
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

void cluster_publish(struct cluster *c, const struct message *m, unsigned worker,
		     bool groups_served)
{
	(void)c;
	(void)m;
	(void)worker;
	(void)groups_served;
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

bool cluster_session_ready(struct cluster *c)
{
	(void)c;
	return false;
}

int cluster_session_claim(struct cluster *c, uint64_t request, const char *id, bool clean_start,
			  bool persistent)
{
	(void)c;
	(void)request;
	(void)id;
	(void)clean_start;
	(void)persistent;
	return -1;
}

void cluster_session_ended(struct cluster *c, const struct session *s)
{
	(void)c;
	(void)s;
}

void cluster_session_changed(struct cluster *c, struct session *s)
{
	(void)c;
	(void)s;
}

void cluster_session_replayed(struct worker *w, void *batch)
{
	(void)w;
	cluster_replayed_free(batch);
}

void cluster_replayed_free(void *batch)
{
	(void)batch; /* never made without NATS */
}

void cluster_session_claimed(struct worker *w, uint64_t request, void *claimed)
{
	(void)w;
	(void)request;
	cluster_session_claimed_free(claimed);
}

void cluster_session_claimed_free(void *claimed)
{
	mem_free(claimed);
}

void cluster_session_serve(struct worker *w, void *request)
{
	(void)w;
	cluster_session_request_free(request);
}

void cluster_session_request_free(void *request)
{
	mem_free(request);
}

struct session *cluster_session_install(struct worker *w, const char *id, const uint8_t *data,
					size_t len)
{
	(void)w;
	(void)id;
	(void)data;
	(void)len;
	return NULL;
}
