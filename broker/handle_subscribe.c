/*
 * handle_subscribe.c: SUBSCRIBE: filter validation, granted QoS, the
 * session's list and the shared trie, SUBACK, then retained messages.
 */
#include "config.h"

#include "alloc.h"
#include "auth.h"
#include "broker.h"
#include "client.h"
#include "conf.h"
#include "dispatch.h"
#include "listener.h"
#include "log.h"
#include "route.h"
#include "send.h"
#include "session.h"
#include "subtree.h"
#include "topic.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

/* What one filter of the packet became, kept until retained messages are sent. */
struct granted {
	char *filter; /* with the listener's mount point; NULL when refused */
	size_t len;
	bool is_new;
	uint8_t retain_handling;
};

/* subscribe_one() result that ends the connection instead of answering. */
#define SUBSCRIBE_PROTOCOL_ERROR 0xFF

static uint8_t refused_code(const struct client *c, uint8_t v5_code)
{
	return c->protocol == MQTT_PROTO_V5 ? v5_code : MQTT_SUBACK_FAILURE;
}

/* Subscribes to one filter; returns the SUBACK code. */
static uint8_t subscribe_one(struct client *c, const struct mqtt_bytes *f,
			     const struct mqtt_sub_options *o, uint32_t subid, struct granted *g)
{
	struct worker *w = c->worker;
	const struct config_listener *lcfg = &w->cfg->listeners[c->listener->index];
	const char *mount = lcfg->mount_point;
	size_t mlen = mount ? strlen(mount) : 0;
	const char *group, *inner;
	size_t glen, ilen;
	bool valid;
	struct subscriber sub;
	uint8_t qos = o->qos < lcfg->max_qos ? o->qos : (uint8_t)lcfg->max_qos;
	int added;

	bool shared = topic_shared_parse((const char *)f->data, f->len, &group, &glen, &inner,
					 &ilen, &valid);
	if (shared ? !valid : !topic_filter_valid((const char *)f->data, f->len))
		return refused_code(c, MQTT_RC_TOPIC_FILTER_INVALID);
	if (shared && o->no_local)
		return SUBSCRIBE_PROTOCOL_ERROR; /* [MQTT-3.8.3-4] */
	if (mlen + f->len > UINT16_MAX)
		return refused_code(c, MQTT_RC_TOPIC_FILTER_INVALID);
	g->filter = mem_malloc(mlen + f->len + 1);
	if (!g->filter)
		return refused_code(c, MQTT_RC_UNSPECIFIED);
	g->len = topic_mount(mount, mlen, (const char *)f->data, f->len, g->filter);
	g->filter[g->len] = '\0';
	/* A shared subscription is checked for the filter it reads. */
	if (!auth_may_subscribe(c, shared ? g->filter + (g->len - mlen - ilen) : g->filter,
				shared ? mlen + ilen : g->len)) {
		mem_free(g->filter);
		g->filter = NULL;
		return refused_code(c, MQTT_RC_NOT_AUTHORIZED);
	}
	/* Retained messages go to new non-shared subscriptions only. */
	g->retain_handling = shared ? 2 : o->retain_handling;

	sub.session = c->session;
	sub.subid = subid;
	sub.qos = qos;
	sub.flags = (uint8_t)((o->no_local ? SUBOPT_NO_LOCAL : 0) |
			      (o->retain_as_published ? SUBOPT_RETAIN_AS_PUBLISHED : 0));
	if (session_sub_put(c->session, g->filter, g->len, qos, sub.flags, subid) < 0)
		goto fail;
	pthread_rwlock_wrlock(&w->broker->sub_lock);
	added = subtree_add_any(&w->broker->subs, g->filter, g->len, &sub);
	pthread_rwlock_unlock(&w->broker->sub_lock);
	if (added < 0) {
		session_sub_remove(c->session, g->filter, g->len);
		goto fail;
	}
	g->is_new = added == 1;
	if (log_enabled(LOG_T_SUBSCRIBE))
		log_msg(LOG_T_SUBSCRIBE, "%s %u %s", client_name(c), qos, g->filter);
	return qos;
fail:
	mem_free(g->filter);
	g->filter = NULL;
	return refused_code(c, MQTT_RC_UNSPECIFIED);
}

int handle_subscribe(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_subscribe sp;
	struct mqtt_bytes f;
	struct mqtt_sub_options o;
	struct granted *g = NULL;
	uint8_t *codes = NULL;
	uint32_t pos = 0, i = 0;
	int rc = mqtt_decode_subscribe(body, len, flags, c->protocol, &sp);

	if (rc == MQTT_ERR_PROTOCOL)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "SUBSCRIBE breaks the protocol");
	if (rc != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed SUBSCRIBE");
	codes = mem_malloc(sp.count);
	g = mem_calloc(sp.count, sizeof(*g));
	if (!codes || !g) {
		rc = client_fail(c, MQTT_RC_UNSPECIFIED, "out of memory");
		goto out;
	}
	while (mqtt_subscribe_next(&sp, c->protocol, &pos, &f, &o) && i < sp.count) {
		codes[i] = subscribe_one(c, &f, &o, sp.props.subscription_id, &g[i]);
		if (codes[i] == SUBSCRIBE_PROTOCOL_ERROR) {
			rc = client_fail(c, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription");
			goto out;
		}
		i++;
	}
	if (send_suback(c, MQTT_SUBACK, sp.packet_id, codes, sp.count) < 0) {
		rc = client_fail(c, 0, "out of memory");
		goto out;
	}
	/* Retained messages follow the SUBACK [MQTT-3.3.1-9 / 3.8.4]. */
	for (i = 0; i < sp.count && c->state == CLIENT_ACTIVE; i++) {
		if (!g[i].filter || g[i].retain_handling == 2 ||
		    (g[i].retain_handling == 1 && !g[i].is_new))
			continue;
		route_retained(c->worker, c->session, g[i].filter, g[i].len, codes[i],
			       sp.props.subscription_id);
	}
	rc = c->state == CLIENT_CLOSING ? DISPATCH_STOP : DISPATCH_CONTINUE;
out:
	for (i = 0; g && i < sp.count; i++)
		mem_free(g[i].filter);
	mem_free(g);
	mem_free(codes);
	return rc;
}
