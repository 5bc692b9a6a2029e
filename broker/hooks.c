/*
 * hooks.c: running the plugin chains and applying the chaining rules (see
 * hooks.h and the "Decisions and chaining" section of midge/plugin.h).
 */
#include "config.h"

#include "hooks.h"

#include "alloc.h"
#include "bridge_int.h"
#include "broker.h"
#include "client.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "policy.h"
#include "property.h"
#include "session.h"
#include "topic.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static _Thread_local unsigned current_listener;
static _Thread_local bool explain_on;
static _Thread_local char explanation[512];
static _Thread_local struct hook_auth_names *current_names;

const struct plugin_chain *hooks_chain(const struct worker *w, unsigned index)
{
	const struct policy *p = w->policy;

	if (!p || index >= p->nlisteners)
		return NULL;
	return &p->listeners[index].chain;
}

void hooks_explain_enable(bool on)
{
	explain_on = on;
	explanation[0] = '\0';
}

bool hooks_explaining(void)
{
	return explain_on;
}

void hooks_explain_set(const char *text)
{
	if (explain_on)
		snprintf(explanation, sizeof(explanation), "%s", text);
}

const char *hooks_explanation(void)
{
	return explanation;
}

unsigned hooks_current_listener(void)
{
	return current_listener;
}

struct hook_auth_names *hooks_auth_names(void)
{
	return current_names;
}

static bool has_special(const char *s)
{
	return s && strpbrk(s, "+#") != NULL;
}

/* Keeps a copy of what a plugin wrote into the event (valid until it returns). */
static int take_bytes(uint8_t **dst, uint32_t *dlen, const void *src, uint32_t len)
{
	mem_free(*dst);
	*dst = NULL;
	*dlen = 0;
	if (!src)
		return 0;
	*dst = mem_malloc(len ? len : 1);
	if (!*dst)
		return -1;
	memcpy(*dst, src, len);
	*dlen = len;
	return 0;
}

/*
 * Runs a decision chain over evt. `request` is set when delaying is allowed.
 * Fills d (verdict, reason from reason_field after a DENY, plugin). Returns
 * the verdict; HOOK_NONE when nobody decided: *any_handler says whether some
 * handler deferred (rather than none being there, or all abstaining).
 */
static int run_decision(struct worker *w, const struct plugin_chain *ch, int event, void *evt,
			struct client *delay_client, struct midge_plugin *only,
			const uint8_t *reason_field, struct decision *d, bool *any_handler,
			bool (*skip)(const struct chain_entry *e, void *evt))
{
	struct midge_evt_header *h = evt;

	*any_handler = false;
	d->verdict = HOOK_NONE;
	if (!chain_has(ch, event))
		return HOOK_NONE;
	h->size = h->size ? h->size : sizeof(*h);
	h->request = delay_client ? decision_request_id(w) : 0;
	for (uint16_t i = 0; i < ch->count[event]; i++) {
		const struct chain_entry *e = &ch->entries[event][i];
		int rc;

		if (only && e->plugin != only)
			continue;
		explanation[0] = '\0';
		if (skip && skip(e, evt)) {
			d->verdict = HOOK_DENY;
			d->plugin = e->plugin;
			return HOOK_DENY;
		}
		rc = plugin_call(e, w, event, evt);
		if (rc == MIDGE_ABSTAIN)
			continue;
		*any_handler = true;
		if (rc == MIDGE_DEFER)
			continue;
		d->plugin = e->plugin;
		switch (rc) {
		case MIDGE_ALLOW:
			d->verdict = HOOK_ALLOW;
			return HOOK_ALLOW;
		case MIDGE_CONTINUE:
			if (event == MIDGE_EVT_EXT_AUTH_START || event == MIDGE_EVT_EXT_AUTH_CONTINUE) {
				d->verdict = HOOK_CONTINUE;
				return HOOK_CONTINUE;
			}
			break;
		case MIDGE_DELAYED:
			if (delay_client && explain_on) {
				/* A dry run waits here for the answer instead of holding a client. */
				decision_wait_sync(w, h->request, d);
				if (!d->plugin)
					d->plugin = e->plugin;
				return d->verdict;
			}
			if (delay_client) {
				if (decision_park(delay_client, h->request, e->plugin) == 0) {
					d->verdict = HOOK_PENDING;
					return HOOK_PENDING;
				}
				log_err("Error: out of memory waiting for plugin %s: denied.",
					e->plugin->name);
			} else {
				log_err("Error: plugin %s answered DELAYED to %s, which cannot wait: "
					"denied.", e->plugin->name, plugin_event_name(event));
			}
			d->verdict = HOOK_DENY;
			return HOOK_DENY;
		case MIDGE_DENY:
			d->verdict = HOOK_DENY;
			d->reason = reason_field ? *reason_field : 0;
			return HOOK_DENY;
		default:
			break;
		}
		/* An error, or an answer this event does not take. */
		log_err("Error: plugin %s failed in %s (%d): denied.", e->plugin->name,
			plugin_event_name(event), rc);
		d->verdict = HOOK_DENY;
		return HOOK_DENY;
	}
	return HOOK_NONE;
}

/* --- authentication --- */

static void release_replaced(struct hook_auth_names *names)
{
	if (names && names->replaced) {
		mem_free(names->replaced);
		names->replaced = NULL;
	}
}

int hook_basic_auth(struct client *c, struct hook_auth_names *names, const char *username,
		    const void *password, uint32_t password_len, bool has_password,
		    struct decision *d)
{
	struct worker *w = c->worker;
	const struct plugin_chain *ch = hooks_chain(w, c->listener->index);
	struct midge_evt_basic_auth evt = {
		.h.size = sizeof(evt),
		.client = (midge_client *)c,
		.username = username,
		.password = has_password ? password : NULL,
		.password_len = has_password ? password_len : 0,
	};
	bool any;
	int v;

	*d = (struct decision){.qos = -1};
	if (decision_replay(c, d))
		return d->verdict;
	if (!chain_has(ch, MIDGE_EVT_BASIC_AUTH))
		return HOOK_NONE;
	current_listener = c->listener->index;
	current_names = names;
	v = run_decision(w, ch, MIDGE_EVT_BASIC_AUTH, &evt, c, NULL, &evt.reason, d, &any, NULL);
	current_names = NULL;
	release_replaced(names);
	if (v == HOOK_NONE && any)
		d->verdict = v = HOOK_DENY; /* everyone deferred */
	if (v != HOOK_PENDING)
		decision_record(c, d);
	return v;
}

int hook_ext_auth(struct client *c, struct hook_auth_names *names, int event,
		  struct midge_plugin *only, const char *method, const void *data,
		  uint32_t data_len, bool reauth, struct decision *d)
{
	struct worker *w = c->worker;
	const struct plugin_chain *ch = hooks_chain(w, c->listener->index);
	struct midge_evt_ext_auth evt = {
		.h.size = sizeof(evt),
		.client = (midge_client *)c,
		.method = method,
		.data = data,
		.data_len = data ? data_len : 0,
		.reauth = reauth,
	};
	bool any;
	int v;

	*d = (struct decision){.qos = -1};
	if (decision_replay(c, d))
		return d->verdict;
	current_listener = c->listener->index;
	current_names = names;
	v = run_decision(w, ch, event, &evt, c, only, &evt.reason, d, &any, NULL);
	current_names = NULL;
	release_replaced(names);
	if ((v == HOOK_ALLOW || v == HOOK_CONTINUE) &&
	    take_bytes(&d->data, &d->data_len, evt.out_data, evt.out_data_len) < 0)
		v = d->verdict = HOOK_DENY;
	if (v != HOOK_PENDING)
		decision_record(c, d);
	return v;
}

#define MAX_PROPS 64

/* The message's forwardable properties as an array (borrowing its bytes). */
static uint32_t props_view(const struct message *m, struct midge_property *out, uint32_t max)
{
	struct mqtt_props props = {.raw = {m->props, m->props_len}};
	struct mqtt_prop p;
	uint32_t pos = 0, n = 0;

	if (m->expires > 0 && n < max) {
		int64_t left = m->expires - (int64_t)time(NULL);
		out[n++] = (struct midge_property){.identifier = MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
						   .number = left > 0 ? (uint32_t)left : 0};
	}
	while (n < max && m->props_len && mqtt_props_next(&props, &pos, &p)) {
		out[n] = (struct midge_property){.identifier = p.id, .number = p.value};
		if (p.id == MQTT_PROP_USER_PROPERTY) {
			out[n].name = (const char *)p.data.data;
			out[n].name_len = p.data.len;
			out[n].value = p.data2.data;
			out[n].value_len = p.data2.len;
		} else if (p.data.data) {
			out[n].value = p.data.data;
			out[n].value_len = p.data.len;
		}
		n++;
	}
	return n;
}

/* --- ACL --- */

static bool special_chars_denied(const struct chain_entry *e, void *evt)
{
	const struct midge_evt_acl *a = evt;

	return e->plugin->deny_special_chars &&
	       (has_special(a->client_id) || has_special(a->username));
}

int hook_acl(struct worker *w, const struct acl_question *q, struct decision *d)
{
	const struct plugin_chain *ch = hooks_chain(w, q->listener);
	bool delayable = q->access == MIDGE_ACL_SUBSCRIBE && q->client;
	struct midge_property view[MAX_PROPS];
	bool any;
	int v;

	*d = (struct decision){.qos = -1};
	if (delayable && decision_replay(q->client, d))
		return d->verdict;
	/* Most brokers have no ACL plugin: every delivery passes here, so first this. */
	if (!chain_has(ch, MIDGE_EVT_ACL_CHECK))
		return HOOK_NONE;
	struct midge_evt_acl evt = {
		.new_qos = -1,
		.h.size = sizeof(evt),
		.client = (midge_client *)q->client,
		.client_id = q->client_id,
		.username = q->username,
		.access = q->access,
		.topic = q->topic,
		.payload = q->payload,
		.payload_len = q->payload_len,
		.qos = q->qos,
		.retain = q->retain,
	};
	if (q->msg) {
		evt.properties = view;
		evt.property_count = props_view(q->msg, view, MAX_PROPS);
	}
	current_listener = q->listener;
	v = run_decision(w, ch, MIDGE_EVT_ACL_CHECK, &evt, delayable ? q->client : NULL, NULL,
			 &evt.reason, d, &any, special_chars_denied);
	if (v == HOOK_NONE && any)
		d->verdict = v = q->access == MIDGE_ACL_UNSUBSCRIBE ? HOOK_ALLOW : HOOK_DENY;
	if (v == HOOK_ALLOW && q->access == MIDGE_ACL_SUBSCRIBE) {
		/* A subscription the plugin moves elsewhere or grants at a lower QoS. */
		if (evt.new_qos >= 0 && evt.new_qos <= 2)
			d->qos = evt.new_qos;
		if (evt.new_topic && strcmp(evt.new_topic, q->topic) != 0 &&
		    !(d->topic = mem_strdup(evt.new_topic)))
			d->verdict = v = HOOK_DENY;
	}
	if (delayable && v != HOOK_PENDING)
		decision_record(q->client, d);
	return v;
}

/* --- messages --- */

/* Encodes properties a plugin gave (forwardable kinds only). Returns bytes, or -1. */
static int64_t props_encode(const struct midge_property *pr, uint32_t n, uint8_t **out)
{
	struct pkt_writer wr;
	uint64_t size = 0;

	*out = NULL;
	for (uint32_t i = 0; i < n; i++) {
		if (pr[i].value_len > UINT16_MAX || pr[i].name_len > UINT16_MAX)
			return -1;
		switch (pr[i].identifier) {
		case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR: size += mqtt_prop_size_u8(); break;
		case MQTT_PROP_CONTENT_TYPE:
		case MQTT_PROP_RESPONSE_TOPIC:
		case MQTT_PROP_CORRELATION_DATA: size += mqtt_prop_size_bin(pr[i].value_len); break;
		case MQTT_PROP_USER_PROPERTY:
			size += mqtt_prop_size_pair(pr[i].name_len, pr[i].value_len);
			break;
		default: break; /* per hop or not a message property: not forwarded */
		}
	}
	if (size > 65536 * 4)
		return -1;
	if (size == 0)
		return 0;
	*out = mem_malloc(size);
	if (!*out)
		return -1;
	pkt_writer_init(&wr, *out, (uint32_t)size);
	for (uint32_t i = 0; i < n; i++) {
		switch (pr[i].identifier) {
		case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
			pkt_write_prop_u8(&wr, pr[i].identifier, (uint8_t)pr[i].number);
			break;
		case MQTT_PROP_CONTENT_TYPE:
		case MQTT_PROP_RESPONSE_TOPIC:
		case MQTT_PROP_CORRELATION_DATA:
			pkt_write_prop_bin(&wr, pr[i].identifier, pr[i].value, (uint16_t)pr[i].value_len);
			break;
		case MQTT_PROP_USER_PROPERTY:
			pkt_write_prop_pair(&wr, pr[i].identifier, pr[i].name, (uint16_t)pr[i].name_len,
					    pr[i].value, (uint16_t)pr[i].value_len);
			break;
		default:
			break;
		}
	}
	return (int64_t)size;
}

static void message_event(struct midge_evt_message *evt, midge_client *client, const char *id,
			  const char *username, const struct message *m,
			  struct midge_property *props)
{
	*evt = (struct midge_evt_message){
		.h.size = sizeof(*evt),
		.client = client,
		.client_id = id,
		.username = username,
		.topic = m->topic,
		.payload = m->payload,
		.payload_len = m->payload_len,
		.qos = m->qos,
		.retain = m->retain,
		.properties = props,
	};
	evt->property_count = props_view(m, props, MAX_PROPS);
}

/* Builds the message a plugin's rewrite describes; NULL when it is not valid. */
static struct message *rewritten(const struct message *old, const struct midge_evt_message *evt,
				 const struct midge_property *view)
{
	size_t tlen = evt->topic ? strlen(evt->topic) : 0;
	struct message *m;
	uint8_t *props = NULL;
	int64_t plen;

	if (!evt->topic || tlen == 0 || tlen > UINT16_MAX || !topic_name_valid(evt->topic, tlen) ||
	    evt->qos > 2 || (evt->payload_len && !evt->payload))
		return NULL;
	if (evt->properties == view) {
		/* Properties untouched: keep the bytes as they are. */
		m = message_new(evt->topic, tlen, evt->payload, evt->payload_len, evt->qos,
				evt->retain, old->props, old->props_len);
	} else {
		plen = props_encode(evt->properties, evt->property_count, &props);
		if (plen < 0)
			return NULL;
		m = message_new(evt->topic, tlen, evt->payload, evt->payload_len, evt->qos,
				evt->retain, props, (size_t)plen);
		mem_free(props);
	}
	if (m) {
		m->expires = old->expires;
		m->origin = old->origin;
		m->created = old->created;
	}
	return m;
}

struct message *plugin_message_new(const char *topic, size_t topic_len, const void *payload,
				   uint32_t payload_len, uint8_t qos, bool retain,
				   const struct midge_property *props, uint32_t nprops)
{
	uint8_t *raw = NULL;
	int64_t len = props_encode(props, nprops, &raw);
	struct message *m;

	if (len < 0)
		return NULL;
	m = message_new(topic, topic_len, payload, payload_len, qos, retain, raw, (size_t)len);
	mem_free(raw);
	return m;
}

int hook_message_in(struct client *c, struct message **mp, uint8_t *reason, bool *topic_changed)
{
	struct worker *w = c->worker;
	const struct plugin_chain *ch = hooks_chain(w, c->listener->index);
	struct midge_property view[MAX_PROPS];
	struct midge_evt_message evt;

	*topic_changed = false;
	if (!chain_has(ch, MIDGE_EVT_MESSAGE_IN))
		return HOOK_ALLOW;
	current_listener = c->listener->index;
	for (uint16_t i = 0; i < ch->count[MIDGE_EVT_MESSAGE_IN]; i++) {
		const struct chain_entry *e = &ch->entries[MIDGE_EVT_MESSAGE_IN][i];
		struct message *m = *mp;
		int rc;

		message_event(&evt, (midge_client *)c, c->id, c->username, m, view);
		rc = plugin_call(e, w, MIDGE_EVT_MESSAGE_IN, &evt);
		if (rc == MIDGE_DENY) {
			*reason = evt.reason ? evt.reason : MQTT_RC_NOT_AUTHORIZED;
			return HOOK_DENY;
		}
		if (rc != MIDGE_ALLOW && rc != MIDGE_DEFER) {
			log_err("Error: plugin %s failed in message_in (%d): message dropped.",
				e->plugin->name, rc);
			*reason = MQTT_RC_IMPLEMENTATION_SPECIFIC;
			return HOOK_DENY;
		}
		bool changed = evt.topic != m->topic || evt.payload != (const void *)m->payload ||
			       evt.payload_len != m->payload_len || evt.qos != m->qos ||
			       evt.retain != m->retain || evt.properties != view ||
			       evt.property_count != props_view(m, view, MAX_PROPS);
		if (!changed)
			continue;
		struct message *n = rewritten(m, &evt, view);
		if (!n) {
			log_err("Error: plugin %s rewrote a message into an invalid one: dropped.",
				e->plugin->name);
			*reason = MQTT_RC_IMPLEMENTATION_SPECIFIC;
			return HOOK_DENY;
		}
		if (strcmp(n->topic, m->topic) != 0)
			*topic_changed = true;
		message_unref(m);
		*mp = n;
	}
	return HOOK_ALLOW;
}

/* MESSAGE_OUT / WILL: every plugin may veto; nothing is rewritten. */
static bool message_allowed(struct worker *w, unsigned listener, int event, struct client *c,
			    const char *id, const char *username, const struct message *m,
			    struct midge_plugin **who)
{
	const struct plugin_chain *ch = hooks_chain(w, listener);
	struct midge_property view[MAX_PROPS];
	struct midge_evt_message evt;

	if (!chain_has(ch, event))
		return true;
	current_listener = listener;
	for (uint16_t i = 0; i < ch->count[event]; i++) {
		message_event(&evt, (midge_client *)c, id, username, m, view);
		int rc = plugin_call(&ch->entries[event][i], w, event, &evt);
		if (rc == MIDGE_DENY || rc < 0) {
			if (who)
				*who = ch->entries[event][i].plugin;
			return false;
		}
	}
	return true;
}

bool hook_message_out(struct session *s, struct message **mp)
{
	struct worker *w = s->worker;
	const struct plugin_chain *ch = hooks_chain(w, s->listener);
	struct midge_property view[MAX_PROPS];
	struct midge_evt_message evt;
	struct message *orig = *mp;

	if (!chain_has(ch, MIDGE_EVT_MESSAGE_OUT))
		return true;
	current_listener = s->listener;
	for (uint16_t i = 0; i < ch->count[MIDGE_EVT_MESSAGE_OUT]; i++) {
		const struct chain_entry *e = &ch->entries[MIDGE_EVT_MESSAGE_OUT][i];
		struct message *m = *mp;
		message_event(&evt, (midge_client *)s->client, s->client_id, s->username, m, view);
		int rc = plugin_call(e, w, MIDGE_EVT_MESSAGE_OUT, &evt);
		if (rc == MIDGE_DENY || rc < 0)
			goto refused;
		if (evt.topic == m->topic && evt.payload == (const void *)m->payload &&
		    evt.payload_len == m->payload_len)
			continue;
		/* Topic and payload only: QoS and retain belong to the subscription. */
		evt.qos = m->qos;
		evt.retain = m->retain;
		evt.properties = view;
		struct message *n = rewritten(m, &evt, view);
		if (!n) {
			log_err("Error: plugin %s rewrote a message for %s into an invalid one: "
				"not delivered.", e->plugin->name, s->client_id);
			goto refused;
		}
		if (m != orig)
			message_unref(m);
		*mp = n;
	}
	return true;
refused:
	if (*mp != orig)
		message_unref(*mp);
	*mp = orig;
	return false;
}

bool hook_delivery_allowed(struct client *c, const struct message *m, struct midge_plugin **who)
{
	return message_allowed(c->worker, c->listener->index, MIDGE_EVT_MESSAGE_OUT, c, c->id,
			       c->username, m, who);
}

bool hook_will(struct client *c, const struct message *will)
{
	return message_allowed(c->worker, c->listener->index, MIDGE_EVT_WILL, c, c->id,
			       c->username, will, NULL);
}

/* --- notifications --- */

static void notify(struct client *c, int event, void *evt)
{
	struct worker *w = c->worker;
	const struct plugin_chain *ch = hooks_chain(w, c->listener->index);

	if (!chain_has(ch, event))
		return;
	current_listener = c->listener->index;
	for (uint16_t i = 0; i < ch->count[event]; i++)
		(void)plugin_call(&ch->entries[event][i], w, event, evt);
}

void hook_connect(struct client *c, bool session_present)
{
	struct midge_evt_client evt = {
		.h.size = sizeof(evt),
		.client = (midge_client *)c,
		.client_id = c->id,
		.username = c->username,
		.session_present = session_present,
	};

	notify(c, MIDGE_EVT_CONNECT, &evt);
}

void hook_disconnect(struct client *c, uint8_t reason, bool will_sent)
{
	struct midge_evt_client evt = {
		.h.size = sizeof(evt),
		.client = (midge_client *)c,
		.client_id = c->id,
		.username = c->username,
		.reason = reason,
		.will_sent = will_sent,
	};

	notify(c, MIDGE_EVT_DISCONNECT, &evt);
}

void hook_subscribe(struct client *c, const char *filter, uint8_t qos, uint8_t options,
		    uint32_t subid)
{
	struct midge_evt_subscribe evt = {
		.h.size = sizeof(evt),
		.client = (midge_client *)c,
		.filter = filter,
		.qos = qos,
		.options = options,
		.subscription_id = subid,
	};

	notify(c, MIDGE_EVT_SUBSCRIBE, &evt);
}

void hook_unsubscribe(struct client *c, const char *filter)
{
	struct midge_evt_subscribe evt = {
		.h.size = sizeof(evt),
		.client = (midge_client *)c,
		.filter = filter,
	};

	notify(c, MIDGE_EVT_UNSUBSCRIBE, &evt);
}

int hook_psk_key(struct worker *w, unsigned listener, int port, const char *identity,
		 const char *hint, uint8_t *key, uint32_t key_max, uint32_t *key_len)
{
	const struct plugin_chain *ch = hooks_chain(w, listener);
	struct midge_evt_psk_key evt = {
		.h.size = sizeof(evt),
		.identity = identity,
		.hint = hint,
		.listener_port = port,
		.key = key,
		.key_max = key_max,
	};

	if (!chain_has(ch, MIDGE_EVT_PSK_KEY))
		return HOOK_NONE;
	current_listener = listener;
	for (uint16_t i = 0; i < ch->count[MIDGE_EVT_PSK_KEY]; i++) {
		int rc = plugin_call(&ch->entries[MIDGE_EVT_PSK_KEY][i], w, MIDGE_EVT_PSK_KEY, &evt);
		if (rc == MIDGE_DEFER)
			continue;
		if (rc == MIDGE_ALLOW && evt.key_len > 0 && evt.key_len <= key_max) {
			*key_len = evt.key_len;
			return HOOK_ALLOW;
		}
		return HOOK_DENY;
	}
	return HOOK_NONE;
}

/*
 * MIDGE_EVT_BRIDGE, on the bridge's worker, through the global chain. For a
 * crossing message, DENY (or a failed call) stops it and a plugin may point
 * topic / payload at its own version (valid until the next plugin is called:
 * the next one sees it, the broker copies what is left at the end).
 */
int bridge_event(struct bridge *br, int what, bool outgoing, const char **topic,
		 const void **payload, uint32_t *payload_len, uint8_t qos, bool retain)
{
	struct worker *w = br->worker;
	/* Global plugins are in every listener's chain; a bridge has no listener of its own. */
	const struct plugin_chain *ch = hooks_chain(w, 0);
	struct midge_evt_bridge evt = {
		.h.size = sizeof(evt),
		.name = br->name,
		.what = what,
		.address = br->addr_host,
		.port = br->addr_port,
		.connected = atomic_load(&br->connected),
		.outgoing = outgoing,
		.qos = qos,
		.retain = retain,
	};

	if (!chain_has(ch, MIDGE_EVT_BRIDGE))
		return 0;
	current_listener = 0;
	for (uint16_t i = 0; i < ch->count[MIDGE_EVT_BRIDGE]; i++) {
		if (topic) {
			evt.topic = *topic;
			evt.payload = *payload;
			evt.payload_len = *payload_len;
		}
		int rc = plugin_call(&ch->entries[MIDGE_EVT_BRIDGE][i], w, MIDGE_EVT_BRIDGE, &evt);
		if (what != MIDGE_BRIDGE_MESSAGE)
			continue;
		if (rc == MIDGE_DENY || rc < 0)
			return -1;
		if (topic && evt.topic && (evt.payload || evt.payload_len == 0)) {
			*topic = evt.topic;
			*payload = evt.payload;
			*payload_len = evt.payload_len;
		}
	}
	return 0;
}
