/*
 * handle_subscribe.c: SUBSCRIBE: filter validation, granted QoS, the
 * session's list and the shared trie, SUBACK, then retained messages.
 */
#include "config.h"

#include "alloc.h"
#include "auth.h"
#include "broker.h"
#include "client.h"
#include "cluster.h"
#include "conf.h"
#include "dispatch.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "route.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "subtree.h"
#include "topic.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

/* What one filter of the packet became, kept until retained messages are sent. */
struct granted {
	char *filter;     /* with the listener's mount point; NULL when refused */
	size_t len;
	bool is_new;
	uint8_t retain_handling;
	uint8_t code;     /* SUBACK code, or SUBSCRIBE_OK while still to be applied */
	struct mqtt_sub_options o;
};

/* check_one() results that are not SUBACK codes. */
#define SUBSCRIBE_PROTOCOL_ERROR 0xFF
#define SUBSCRIBE_PENDING 0xFE
#define SUBSCRIBE_OK 0xFD

static uint8_t refused_code(const struct client *c, uint8_t v5_code)
{
	return c->protocol == MQTT_PROTO_V5 ? v5_code : MQTT_SUBACK_FAILURE;
}

static uint8_t granted_qos(const struct client *c, const struct mqtt_sub_options *o)
{
	const struct config_listener *lcfg = &c->worker->cfg->listeners[c->listener->index];

	return o->qos < lcfg->max_qos ? o->qos : (uint8_t)lcfg->max_qos;
}

/*
 * A plugin moved the subscription to `to`: the new filter is validated and
 * checked again (its own rewrites are not taken).
 */
static uint8_t move_subscription(struct client *c, struct granted *g, const char *to,
				 const char *mount, size_t mlen)
{
	size_t tlen = strlen(to);
	const char *group, *inner;
	size_t glen, ilen;
	bool valid;
	bool shared = topic_shared_parse(to, tlen, &group, &glen, &inner, &ilen, &valid);
	char *filter;

	if ((shared ? !valid : !topic_filter_valid(to, tlen)) || mlen + tlen > UINT16_MAX ||
	    (shared && g->o.no_local))
		return refused_code(c, MQTT_RC_TOPIC_FILTER_INVALID);
	filter = mem_malloc(mlen + tlen + 1);
	if (!filter)
		return refused_code(c, MQTT_RC_UNSPECIFIED);
	mem_free(g->filter);
	g->filter = filter;
	g->len = topic_mount(mount, mlen, to, tlen, g->filter);
	g->filter[g->len] = '\0';
	g->retain_handling = shared ? 2 : g->o.retain_handling;
	const char *checked = shared ? g->filter + (g->len - mlen - ilen) : g->filter;
	uint8_t reason;
	switch (auth_subscribe(c, checked, shared ? mlen + ilen : g->len, g->o.qos, NULL, NULL,
			       &reason)) {
	case HOOK_ALLOW:
		return SUBSCRIBE_OK;
	case HOOK_PENDING:
		return SUBSCRIBE_PENDING;
	default:
		return refused_code(c, reason);
	}
}

/*
 * Validates one filter and asks whether the client may subscribe. Nothing
 * changes yet: a plugin may answer later, and the packet is then handled
 * again from the start.
 */
static uint8_t check_one(struct client *c, const struct mqtt_bytes *f, struct granted *g)
{
	struct worker *w = c->worker;
	const char *mount = w->cfg->listeners[c->listener->index].mount_point;
	size_t mlen = mount ? strlen(mount) : 0;
	const char *group, *inner;
	size_t glen, ilen;
	bool valid;

	bool shared = topic_shared_parse((const char *)f->data, f->len, &group, &glen, &inner,
					 &ilen, &valid);
	if (shared ? !valid : !topic_filter_valid((const char *)f->data, f->len))
		return refused_code(c, MQTT_RC_TOPIC_FILTER_INVALID);
	if (shared && g->o.no_local)
		return SUBSCRIBE_PROTOCOL_ERROR; /* [MQTT-3.8.3-4] */
	if (mlen + f->len > UINT16_MAX)
		return refused_code(c, MQTT_RC_TOPIC_FILTER_INVALID);
	g->filter = mem_malloc(mlen + f->len + 1);
	if (!g->filter)
		return refused_code(c, MQTT_RC_UNSPECIFIED);
	g->len = topic_mount(mount, mlen, (const char *)f->data, f->len, g->filter);
	g->filter[g->len] = '\0';
	/* Retained messages go to new non-shared subscriptions only. */
	g->retain_handling = shared ? 2 : g->o.retain_handling;
	/* A shared subscription is checked for the filter it reads. */
	const char *checked = shared ? g->filter + (g->len - mlen - ilen) : g->filter;
	char *moved = NULL;
	int qos = -1;
	uint8_t reason;
	switch (auth_subscribe(c, checked, shared ? mlen + ilen : g->len, g->o.qos, &moved, &qos,
			       &reason)) {
	case HOOK_ALLOW:
		if (qos >= 0)
			g->o.qos = (uint8_t)qos;
		if (!moved)
			return SUBSCRIBE_OK;
		break;
	case HOOK_PENDING:
		return SUBSCRIBE_PENDING;
	default:
		return refused_code(c, reason);
	}
	uint8_t rc = move_subscription(c, g, moved, mount, mlen);
	mem_free(moved);
	return rc;
}

/* Subscribes to one checked filter; returns the SUBACK code. */
static uint8_t apply_one(struct client *c, uint32_t subid, struct granted *g)
{
	struct worker *w = c->worker;
	struct subscriber sub;
	uint8_t qos = granted_qos(c, &g->o);
	int added;

	sub.session = c->session;
	sub.subid = subid;
	sub.qos = qos;
	sub.flags = (uint8_t)((g->o.no_local ? SUBOPT_NO_LOCAL : 0) |
			      (g->o.retain_as_published ? SUBOPT_RETAIN_AS_PUBLISHED : 0));
	/* A bridge from another broker gets nothing back of what it sent, and retain flags
	 * as published (what MQTT 5 subscription options say, for MQTT 3.1.1 bridges). */
	if (c->flags & CLIENT_F_BRIDGE_PEER)
		sub.flags |= SUBOPT_NO_LOCAL | SUBOPT_RETAIN_AS_PUBLISHED;
	if (session_sub_put(c->session, g->filter, g->len, qos, sub.flags, subid) < 0)
		return refused_code(c, MQTT_RC_UNSPECIFIED);
	pthread_rwlock_wrlock(&w->broker->sub_lock);
	added = subtree_add_any(&w->broker->subs, g->filter, g->len, &sub);
	pthread_rwlock_unlock(&w->broker->sub_lock);
	if (added < 0) {
		session_sub_remove(c->session, g->filter, g->len);
		return refused_code(c, MQTT_RC_UNSPECIFIED);
	}
	g->is_new = added == 1;
	store_sub_save(c->session, g->filter, g->len, qos, sub.flags, subid);
	if (log_enabled(LOG_T_SUBSCRIBE))
		log_msg(LOG_T_SUBSCRIBE, "%s %u %s", client_name(c), qos, g->filter);
	uint8_t options = (uint8_t)(g->o.qos | (g->o.no_local ? 0x04 : 0) |
				    (g->o.retain_as_published ? 0x08 : 0) |
				    (g->o.retain_handling << 4));
	hook_subscribe(c, g->filter, qos, options, subid);
	return qos;
}

int handle_subscribe(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_subscribe sp;
	struct mqtt_bytes f;
	struct granted *g = NULL;
	uint8_t *codes = NULL;
	uint32_t pos = 0, i = 0, n = 0;
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
	/* First every check, then every change: a held packet has changed nothing. */
	while (n < sp.count && mqtt_subscribe_next(&sp, c->protocol, &pos, &f, &g[n].o)) {
		codes[n] = check_one(c, &f, &g[n]);
		if (codes[n] == SUBSCRIBE_PROTOCOL_ERROR) {
			rc = client_fail(c, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription");
			goto out;
		}
		if (codes[n] == SUBSCRIBE_PENDING) {
			rc = DISPATCH_STOP;
			n++;
			goto out;
		}
		n++;
	}
	for (i = 0; i < n; i++) {
		if (codes[i] == SUBSCRIBE_OK)
			codes[i] = apply_one(c, sp.props.subscription_id, &g[i]);
		if (codes[i] >= 0x80) {
			mem_free(g[i].filter);
			g[i].filter = NULL;
		}
	}
	if (c->worker->broker->cluster)
		cluster_session_changed(c->worker->broker->cluster, c->session);
	store_hold(c);
	if (send_suback(c, MQTT_SUBACK, sp.packet_id, codes, n) < 0) {
		rc = client_fail(c, 0, "out of memory");
		goto out;
	}
	/* Retained messages follow the SUBACK [MQTT-3.3.1-9 / 3.8.4]. */
	for (i = 0; i < n && c->state == CLIENT_ACTIVE; i++) {
		if (!g[i].filter || g[i].retain_handling == 2 ||
		    (g[i].retain_handling == 1 && !g[i].is_new))
			continue;
		route_retained(c->worker, c->session, g[i].filter, g[i].len, codes[i],
			       sp.props.subscription_id);
	}
	rc = c->state == CLIENT_CLOSING ? DISPATCH_STOP : DISPATCH_CONTINUE;
out:
	for (i = 0; g && i < n; i++)
		mem_free(g[i].filter);
	mem_free(g);
	mem_free(codes);
	return rc;
}
