/*
 * handle_unsubscribe.c: UNSUBSCRIBE -> UNSUBACK.
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
#include "send.h"
#include "session.h"
#include "store.h"
#include "subtree.h"
#include "topic.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

/* Removes one subscription; returns the MQTT 5 UNSUBACK code. */
static uint8_t unsubscribe_one(struct client *c, const struct mqtt_bytes *f)
{
	struct worker *w = c->worker;
	const char *mount = w->cfg->listeners[c->listener->index].mount_point;
	size_t mlen = mount ? strlen(mount) : 0;
	char *filter;
	bool had;

	const char *group, *inner;
	size_t glen, ilen;
	bool valid;
	if (topic_shared_parse((const char *)f->data, f->len, &group, &glen, &inner, &ilen, &valid)
		    ? !valid : !topic_filter_valid((const char *)f->data, f->len))
		return MQTT_RC_TOPIC_FILTER_INVALID;
	if (mlen + f->len > UINT16_MAX)
		return MQTT_RC_NO_SUBSCRIPTION_EXISTED;
	filter = mem_malloc(mlen + f->len + 1);
	if (!filter)
		return MQTT_RC_UNSPECIFIED;
	filter[topic_mount(mount, mlen, (const char *)f->data, f->len, filter)] = '\0';
	if (!auth_may_unsubscribe(c, filter)) {
		/* The subscription stays; MQTT 5 clients learn why. */
		mem_free(filter);
		return MQTT_RC_NOT_AUTHORIZED;
	}
	had = session_sub_remove(c->session, filter, mlen + f->len);
	if (had) {
		pthread_rwlock_wrlock(&w->broker->sub_lock);
		subtree_remove_any(&w->broker->subs, filter, mlen + f->len, c->session);
		pthread_rwlock_unlock(&w->broker->sub_lock);
		store_sub_forget(c->session, filter, mlen + f->len);
	}
	if (log_enabled(LOG_T_UNSUBSCRIBE))
		log_msg(LOG_T_UNSUBSCRIBE, "%s %s", client_name(c), filter);
	if (had)
		hook_unsubscribe(c, filter);
	mem_free(filter);
	return had ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
}

int handle_unsubscribe(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct mqtt_unsubscribe up;
	struct mqtt_bytes f;
	uint8_t *codes;
	uint32_t pos = 0, i = 0;
	int rc = mqtt_decode_unsubscribe(body, len, flags, c->protocol, &up);

	if (rc == MQTT_ERR_PROTOCOL)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "UNSUBSCRIBE breaks the protocol");
	if (rc != MQTT_OK)
		return client_fail(c, MQTT_RC_MALFORMED_PACKET, "malformed UNSUBSCRIBE");
	codes = mem_malloc(up.count);
	if (!codes)
		return client_fail(c, MQTT_RC_UNSPECIFIED, "out of memory");
	while (i < up.count && mqtt_unsubscribe_next(&up, &pos, &f))
		codes[i++] = unsubscribe_one(c, &f);
	if (c->worker->broker->cluster)
		cluster_session_changed(c->worker->broker->cluster, c->session);
	store_hold(c);
	rc = send_suback(c, MQTT_UNSUBACK, up.packet_id, codes, up.count);
	mem_free(codes);
	if (rc < 0)
		return client_fail(c, 0, "out of memory");
	return DISPATCH_CONTINUE;
}
