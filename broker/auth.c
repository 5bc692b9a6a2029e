/*
 * auth.c: publish, subscribe, unsubscribe and delivery decisions (see auth.h).
 */
#include "config.h"

#include "auth.h"

#include "client.h"
#include "conf.h"
#include "hooks.h"
#include "listener.h"
#include "message.h"
#include "policy.h"
#include "session.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <string.h>

bool auth_clientid_allowed(const struct config_security *sec, const char *client_id)
{
	if (sec->clientid_prefixes.count == 0)
		return true;
	for (size_t i = 0; i < sec->clientid_prefixes.count; i++) {
		const char *p = sec->clientid_prefixes.items[i];
		if (strncmp(client_id, p, strlen(p)) == 0)
			return true;
	}
	return false;
}

static bool is_sys(const char *topic, size_t len)
{
	return len >= 4 && memcmp(topic, "$SYS", 4) == 0 && (len == 4 || topic[4] == '/');
}

/* Asks the chain: 0 when allowed (no handler at all means no ACL), else the reason code. */
static uint8_t ask_reason(struct worker *w, const struct acl_question *q)
{
	struct decision d;
	int v = hook_acl(w, q, &d);
	uint8_t reason = d.reason >= 0x80 ? d.reason : MQTT_RC_NOT_AUTHORIZED;

	decision_free_data(&d);
	return v == HOOK_NONE || v == HOOK_ALLOW ? 0 : reason;
}

static bool ask(struct worker *w, const struct acl_question *q)
{
	return ask_reason(w, q) == 0;
}

static struct acl_question client_question(const struct client *c, int access, const char *topic)
{
	return (struct acl_question){
		.listener = c->listener->index,
		.client = (struct client *)c,
		.client_id = c->id,
		.username = c->username,
		.access = access,
		.topic = topic,
	};
}

uint8_t auth_publish_refusal(const struct client *c, const struct message *m)
{
	struct acl_question q = client_question(c, MIDGE_ACL_PUBLISH, m->topic);

	/* $SYS belongs to the broker: no client writes there, whatever the ACL says
	 * (as in mosquitto), except the state other brokers' bridges report in
	 * $SYS/broker/connection/ (subject to the ACL). */
	if (is_sys(m->topic, m->topic_len) &&
	    strncmp(m->topic, "$SYS/broker/connection/", 23) != 0)
		return MQTT_RC_NOT_AUTHORIZED;
	q.payload = m->payload;
	q.payload_len = m->payload_len;
	q.qos = m->qos;
	q.retain = m->retain;
	q.msg = m;
	return ask_reason(c->worker, &q);
}

bool auth_may_publish_message(const struct client *c, const struct message *m)
{
	return auth_publish_refusal(c, m) == 0;
}

bool auth_may_publish(const struct client *c, const char *topic, size_t len)
{
	struct acl_question q = client_question(c, MIDGE_ACL_PUBLISH, topic);

	(void)len;
	if (is_sys(topic, len))
		return false;
	return ask(c->worker, &q);
}

bool auth_may_unsubscribe(const struct client *c, const char *filter)
{
	struct acl_question q = client_question(c, MIDGE_ACL_UNSUBSCRIBE, filter);

	return ask(c->worker, &q);
}

int auth_subscribe(struct client *c, const char *filter, size_t len, uint8_t qos,
		   char **new_filter, int *new_qos, uint8_t *reason)
{
	struct acl_question q = client_question(c, MIDGE_ACL_SUBSCRIBE, filter);
	struct decision d;
	int v;

	(void)len;
	q.qos = qos;
	v = hook_acl(c->worker, &q, &d);
	if (reason)
		*reason = d.reason >= 0x80 ? d.reason : MQTT_RC_NOT_AUTHORIZED;
	if (v == HOOK_ALLOW && new_filter && new_qos) {
		*new_filter = d.topic;
		*new_qos = d.qos;
		d.topic = NULL;
	}
	decision_free_data(&d);
	return v == HOOK_NONE ? HOOK_ALLOW : v;
}

bool auth_may_receive(const struct session *s, const struct message *m)
{
	struct acl_question q = {
		.listener = s->listener,
		.client = s->client,
		.client_id = s->client_id,
		.username = s->username,
		.access = MIDGE_ACL_DELIVER,
		.topic = m->topic,
		.payload = m->payload,
		.payload_len = m->payload_len,
		.qos = m->qos,
		.retain = m->retain,
		.msg = m,
	};

	/* A bridge's session takes what its configured topics say (no listener, no ACL). */
	if (s->bridge)
		return true;
	if (s->listener >= s->worker->policy->nlisteners)
		return false;
	return ask(s->worker, &q);
}
