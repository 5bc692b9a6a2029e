/*
 * handle_connect.c: CONNECT: validation, client identifier rules, hand-over
 * to the worker that owns the session, authentication, session takeover or
 * resumption, CONNACK.
 */
#include "config.h"

#include "alloc.h"
#include "auth.h"
#include "broker.h"
#include "client.h"
#include "client_events.h"
#include "cluster.h"
#include "conf.h"
#include "connect_state.h"
#include "decision.h"
#include "hooks.h"
#include "deliver.h"
#include "dispatch.h"
#include "listener.h"
#include "policy.h"
#include "log.h"
#include "message.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "will.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct connect_ctx {
	struct mqtt_connect pkt;
	const struct config_listener *lcfg;
	const struct config_security *sec;
	char id[65536 + 64];   /* NUL-terminated client id (or the assigned one) */
	bool assigned;
	char *username;
	/* Extended authentication that succeeded: for the CONNACK. */
	const char *auth_method;
	const uint8_t *auth_data;
	uint32_t auth_data_len;
	bool renamed;          /* a plugin chose another client id */
	const uint8_t *body;   /* the CONNECT, for an extended authentication that goes on */
	uint32_t body_len;
	uint8_t flags;
	uint8_t *moved;        /* the session another cluster node handed over (encoded) */
	uint32_t moved_len;
	bool taken_over;       /* see struct preauth */
	bool taken_clean_start;
};

/* handle_connect() result while an extended authentication exchange goes on. */
#define CONNECT_AUTHENTICATING 0x7F

/*
 * Refuses the connection with a CONNACK code, then closes it. One log line
 * names the address, client id and user name (never the password), so
 * tools like fail2ban can act on it.
 */
static int refuse(struct client *c, const struct connect_ctx *x, uint8_t v3_code, uint8_t v5_code,
		  const char *why)
{
	uint8_t code = c->protocol == MQTT_PROTO_V5 ? v5_code : v3_code;

	const char *id = x && x->id[0] ? x->id : NULL;
	const char *user = x ? x->username : NULL;
	char a[CLIENT_ADDRSTRLEN];
	struct log_kv kv[] = {
		{"address", client_format_address(c, a), 0}, {"port", NULL, c->port}, {"client_id", id, 0},
		{"username", user, 0},      {"reason", why, 0},      {"code", NULL, code},
	};

	(void)send_connack(c, false, code, (struct mqtt_bytes){0});
	log_event(LOG_T_NOTICE, "connect_refused", kv, sizeof(kv) / sizeof(kv[0]),
		  "Refused client %s from %s:%u (username %s): %s.", id ? id : "<none>", a,
		  c->port, user ? user : "<none>", why);
	c->username = NULL; /* it was borrowed from the CONNECT being refused */
	client_close(c, NULL, false);
	return DISPATCH_STOP;
}

static void assign_id(const char *prefix, char *out, size_t size)
{
	uint8_t r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)out;
		memcpy(r, &t, sizeof(t));
		memcpy(r + 8, &t, sizeof(t));
	}
	r[6] = (r[6] & 0x0F) | 0x40; /* version 4 UUID layout */
	r[8] = (r[8] & 0x3F) | 0x80;
	snprintf(out, size,
		 "%s%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 prefix ? prefix : "", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
		 r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* Applies the client identifier rules; returns DISPATCH_CONTINUE or a refusal. */
static int choose_client_id(struct client *c, struct connect_ctx *x)
{
	const struct mqtt_connect *p = &x->pkt;

	if (x->lcfg->use_username_as_clientid) {
		if (!p->has_username)
			return refuse(c, x, MQTT_CONNACK_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
				      "not authorised (no user name to use as client id)");
		memcpy(x->id, p->username.data, p->username.len);
		x->id[p->username.len] = '\0';
		return DISPATCH_CONTINUE;
	}
	if (p->client_id.len > 0) {
		/* MQTT 3.1 asked for at most 23 characters; like mosquitto we take longer ids. */
		memcpy(x->id, p->client_id.data, p->client_id.len);
		x->id[p->client_id.len] = '\0';
		return DISPATCH_CONTINUE;
	}
	/* A zero-length id: MQTT 3.1 never allows it; 3.1.1 only with a clean session. */
	if (p->protocol == MQTT_PROTO_V31 || (p->protocol == MQTT_PROTO_V311 && !p->clean_start) ||
	    x->sec->allow_zero_length_clientid == 0)
		return refuse(c, x, MQTT_CONNACK_REFUSED_IDENTIFIER_REJECTED, MQTT_RC_CLIENTID_NOT_VALID,
			      "client id rejected");
	assign_id(x->sec->auto_id_prefix, x->id, sizeof(x->id));
	x->assigned = true;
	return DISPATCH_CONTINUE;
}

static struct message *make_will(const struct mqtt_connect *p)
{
	const struct mqtt_will *will = &p->will;
	uint8_t *props = NULL;
	uint32_t plen = 0;
	struct message *m;

	if (p->protocol == MQTT_PROTO_V5 && will->props.raw.len > 0) {
		props = mem_malloc(will->props.raw.len);
		if (!props)
			return NULL;
		plen = mqtt_props_copy_forwardable(&will->props, props);
	}
	m = message_new((const char *)will->topic.data, will->topic.len, will->payload.data,
			will->payload.len, will->qos, will->retain, props, plen);
	mem_free(props);
	if (m && mqtt_props_has(&will->props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL))
		m->expires = m->created + will->props.message_expiry;
	return m;
}

/* Takes over or drops an existing session for the id; returns it if it lives on. */
static struct session *take_session(struct client *c, struct connect_ctx *x)
{
	struct worker *w = c->worker;
	struct session *s = session_find(&w->sessions, x->id);

	if (s && s->client) {
		struct client *old = s->client;
		/* The old will goes out unless its session lives on in the new connection. */
		bool continues = s->expiry_interval > 0 && !x->pkt.clean_start;
		if (w->cfg->connection_messages)
			log_notice("Client %s already connected, closing old connection.", x->id);
		(void)send_disconnect(old, MQTT_RC_SESSION_TAKEN_OVER);
		client_close(old, NULL, !continues);
		/* Closing may have ended a clean session: look again. */
		s = session_find(&w->sessions, x->id);
	}
	if (s && x->pkt.clean_start) {
		session_destroy(s);
		s = NULL;
	}
	return s;
}

static uint32_t session_expiry(const struct config *cfg, const struct mqtt_connect *p)
{
	if (p->protocol == MQTT_PROTO_V5)
		return p->props.session_expiry;
	if (p->clean_start)
		return 0;
	if (cfg->persistent_client_expiration > 0 &&
	    cfg->persistent_client_expiration < (int64_t)SESSION_EXPIRY_NEVER)
		return (uint32_t)cfg->persistent_client_expiration;
	return SESSION_EXPIRY_NEVER;
}

/* CONNACK properties of MQTT 5: the identifier we assigned, extended authentication. */
/*
 * The keep alive the client must use: MQTT 5 clients asking for none, or for
 * more than max_keepalive, are told max_keepalive (Server Keep Alive).
 */
static uint16_t server_keepalive(const struct config *cfg, const struct mqtt_connect *p)
{
	if (p->protocol == MQTT_PROTO_V5 && cfg->max_keepalive > 0 &&
	    (p->keepalive == 0 || p->keepalive > cfg->max_keepalive))
		return (uint16_t)cfg->max_keepalive;
	return p->keepalive;
}

/*
 * CONNACK properties of MQTT 5: the server's limits where they differ from
 * the protocol's defaults (in mosquitto's order), the identifier we
 * assigned, and extended authentication.
 */
static struct mqtt_bytes connack_props(const struct connect_ctx *x, const struct config *cfg,
				       uint8_t *buf, size_t size)
{
	struct pkt_writer w;
	size_t idlen = strlen(x->id);
	struct mqtt_bytes auth = {0};
	uint16_t keepalive = server_keepalive(cfg, &x->pkt);

	pkt_writer_init(&w, buf, (uint32_t)size);
	if (x->lcfg->max_topic_alias > 0)
		pkt_write_prop_u16(&w, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, (uint16_t)x->lcfg->max_topic_alias);
	if (keepalive != x->pkt.keepalive)
		pkt_write_prop_u16(&w, MQTT_PROP_SERVER_KEEP_ALIVE, keepalive);
	if (!cfg->retain_available)
		pkt_write_prop_u8(&w, MQTT_PROP_RETAIN_AVAILABLE, 0);
	if (cfg->max_packet_size > 0)
		pkt_write_prop_u32(&w, MQTT_PROP_MAXIMUM_PACKET_SIZE, cfg->max_packet_size);
	if (cfg->max_inflight_messages > 0 && cfg->max_inflight_messages < 65535)
		pkt_write_prop_u16(&w, MQTT_PROP_RECEIVE_MAXIMUM, (uint16_t)cfg->max_inflight_messages);
	if (x->lcfg->max_qos < 2)
		pkt_write_prop_u8(&w, MQTT_PROP_MAXIMUM_QOS, (uint8_t)x->lcfg->max_qos);
	if (x->pkt.protocol == MQTT_PROTO_V5 && x->pkt.props.request_response_info &&
	    cfg->response_information) {
		size_t rlen = strlen(cfg->response_information);
		if (rlen <= UINT16_MAX && w.pos + mqtt_prop_size_bin((uint32_t)rlen) <= size)
			pkt_write_prop_bin(&w, MQTT_PROP_RESPONSE_INFORMATION, cfg->response_information,
					   (uint16_t)rlen);
	}
	if (x->assigned && w.pos + mqtt_prop_size_bin((uint32_t)idlen) <= size)
		pkt_write_prop_bin(&w, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, x->id, (uint16_t)idlen);
	if (x->auth_method)
		auth = auth_props_encode(x->auth_method, x->auth_data, x->auth_data_len, buf + w.pos,
					 size - w.pos);
	return (struct mqtt_bytes){buf, w.pos + auth.len};
}

static void log_connected(struct client *c, const struct connect_ctx *x)
{
	static const int proto_number[6] = {0, 0, 0, 1, 2, 5};

	if (!c->worker->cfg->connection_messages)
		return;
	char a[CLIENT_ADDRSTRLEN];
	struct log_kv kv[] = {
		{"address", client_format_address(c, a), 0}, {"port", NULL, c->port},     {"client_id", x->id, 0},
		{"username", c->username, 0}, {"protocol", NULL, c->protocol},
		{"clean_start", NULL, x->pkt.clean_start}, {"keepalive", NULL, x->pkt.keepalive},
	};
	if (c->username)
		log_event(LOG_T_NOTICE, "client_connected", kv, sizeof(kv) / sizeof(kv[0]),
			  "New client connected from %s:%u as %s (p%d, c%d, k%u, u'%s').", a,
			  c->port, x->id, proto_number[c->protocol], x->pkt.clean_start ? 1 : 0,
			  x->pkt.keepalive, c->username);
	else
		log_event(LOG_T_NOTICE, "client_connected", kv, sizeof(kv) / sizeof(kv[0]),
			  "New client connected from %s:%u as %s (p%d, c%d, k%u).", a, c->port,
			  x->id, proto_number[c->protocol], x->pkt.clean_start ? 1 : 0,
			  x->pkt.keepalive);
}

/* Everything after the checks: session, CONNACK, resumption. */
static int accept_client(struct client *c, struct connect_ctx *x)
{
	struct worker *w = c->worker;
	struct broker *b = w->broker;
	struct session *bridged = session_find(&w->sessions, x->id);

	/* A bridge's own session is not for clients (it would take the bridge's messages). */
	if (bridged && bridged->bridge)
		return refuse(c, x, MQTT_CONNACK_REFUSED_IDENTIFIER_REJECTED,
			      MQTT_RC_CLIENTID_NOT_VALID, "its client id is a bridge's local id");
	struct session *s = take_session(c, x);

	if (x->moved) { /* another node's copy is the newer one */
		if (s)
			session_destroy(s);
		s = cluster_session_install(w, x->id, x->moved, x->moved_len);
	}
	bool present = s != NULL;
	size_t props_size = 192 + (x->auth_method ? strlen(x->auth_method) + x->auth_data_len + 6 : 0) +
			    (w->cfg->response_information ? strlen(w->cfg->response_information) + 3 : 0);
	uint8_t *props_buf;
	int rc;

	if (!s)
		s = session_new(w, x->id);
	if (!s)
		return refuse(c, x, MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
			      "out of memory");
	session_take_over(s); /* expiry stopped, a waiting will dropped [MQTT-3.1.3-9] */
	s->protocol = c->protocol;
	s->expiry_interval = session_expiry(w->cfg, &x->pkt);
	s->client = c;
	atomic_store_explicit(&s->online, true, memory_order_relaxed);
	c->session = s;
	c->id = s->client_id;
	c->username = x->username;
	x->username = NULL;
	mem_free(s->username);
	s->username = c->username ? mem_strdup(c->username) : NULL;
	s->listener = (uint16_t)c->listener->index;
	c->keepalive = server_keepalive(w->cfg, &x->pkt);
	c->state = CLIENT_ACTIVE;
	/* What the client can take (MQTT 5): at most so many QoS 1/2 in flight
	 * [MQTT-3.3.4-9], no packet above its maximum [MQTT-3.1.2-24]. */
	s->receive_max = 65535;
	if (x->pkt.protocol == MQTT_PROTO_V5) {
		if (mqtt_props_has(&x->pkt.props, MQTT_PROP_RECEIVE_MAXIMUM))
			s->receive_max = x->pkt.props.receive_maximum;
		if (mqtt_props_has(&x->pkt.props, MQTT_PROP_MAXIMUM_PACKET_SIZE) &&
		    x->pkt.props.max_packet_size) {
			if (!client_ext(c))
				return client_fail(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
			c->ext->max_packet_out = x->pkt.props.max_packet_size;
		}
		if (!mqtt_props_has(&x->pkt.props, MQTT_PROP_REQUEST_PROBLEM_INFORMATION) ||
		    x->pkt.props.request_problem_info)
			c->flags |= CLIENT_F_PROBLEM_INFO;
	}
	if (x->pkt.has_will) {
		c->will = make_will(&x->pkt);
		if (!c->will)
			return client_fail(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory storing the will");
		/* 0 when absent (and before MQTT 5) */
		if (x->pkt.will.props.will_delay) {
			if (!client_ext(c))
				return client_fail(c, MQTT_RC_SERVER_UNAVAILABLE,
						   "out of memory storing the will");
			c->ext->will_delay = x->pkt.will.props.will_delay;
		}
	}
	/* Where the client is, and its will, which another node fires should this one
	 * die (the lesser delay wins, as here). That node has no connection to ask the
	 * ACL about, so it is asked now: a will the client may not publish stays here. */
	if (b->cluster) {
		uint32_t delay = client_will_delay(c);
		if (s->expiry_interval < delay)
			delay = s->expiry_interval;
		const struct message *will =
			c->will && auth_may_publish_message(c, c->will) ? c->will : NULL;
		/* (Without memory for it, the client goes unregistered: another node would
		 * take it for gone elsewhere and fire no will.) */
		if (client_ext(c))
			c->ext->cluster_will = cluster_will_register(b->cluster, s->client_id, will,
								     delay);
	}
	store_session_save(s);
	if (b->cluster)
		cluster_session_changed(b->cluster, s);
	STAT_ADD(w->stats.clients_connected, 1);
	STAT_ADD(w->stats.connections, 1);
	int64_t now_connected = atomic_fetch_add(&b->clients_connected, 1) + 1;
	int64_t max = atomic_load(&b->clients_max);
	while (now_connected > max && !atomic_compare_exchange_weak(&b->clients_max, &max, now_connected))
		;
	props_buf = mem_malloc(props_size);
	rc = props_buf ? send_connack(c, present, MQTT_RC_SUCCESS,
				      connack_props(x, w->cfg, props_buf, props_size))
		       : -1;
	mem_free(props_buf);
	if (rc < 0)
		return client_fail(c, 0, "out of memory");
	log_connected(c, x);
	client_event_connected(c);
	client_arm_keepalive(c);
	hook_connect(c, present);
	if (present && c->state == CLIENT_ACTIVE)
		session_resume(s);
	return DISPATCH_CONTINUE;
}

static int decode_error(struct client *c, enum mqtt_connect_err err)
{
	switch (err) {
	case MQTT_CONNECT_BAD_NAME:
		c->protocol = 0;
		return client_fail(c, 0, "invalid protocol name in CONNECT");
	case MQTT_CONNECT_BAD_VERSION:
		/* The answer uses 3.1.1 framing: a client of an unknown version can read it. */
		c->protocol = MQTT_PROTO_V311;
		return refuse(c, NULL, MQTT_CONNACK_REFUSED_PROTOCOL_VERSION,
			      MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol version");
	case MQTT_CONNECT_PROTOCOL:
		if (c->protocol == MQTT_PROTO_V5)
			(void)send_connack(c, false, MQTT_RC_PROTOCOL_ERROR, (struct mqtt_bytes){0});
		return client_fail(c, 0, "protocol error in CONNECT");
	default:
		if (c->protocol == MQTT_PROTO_V5)
			(void)send_connack(c, false, MQTT_RC_MALFORMED_PACKET, (struct mqtt_bytes){0});
		return client_fail(c, 0, "malformed CONNECT");
	}
}

/* The CONNACK code of MQTT 3.1/3.1.1 closest to an MQTT 5 refusal reason. */
static uint8_t v3_code(uint8_t v5)
{
	switch (v5) {
	case MQTT_RC_BAD_USERNAME_OR_PASSWORD: return MQTT_CONNACK_REFUSED_BAD_USERNAME_PASSWORD;
	case MQTT_RC_CLIENTID_NOT_VALID: return MQTT_CONNACK_REFUSED_IDENTIFIER_REJECTED;
	case MQTT_RC_SERVER_UNAVAILABLE:
	case MQTT_RC_SERVER_BUSY: return MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE;
	default: return MQTT_CONNACK_REFUSED_NOT_AUTHORIZED;
	}
}

static int refuse_reason(struct client *c, struct connect_ctx *x, uint8_t v5, const char *why)
{
	if (v5 < 0x80)
		v5 = MQTT_RC_NOT_AUTHORIZED;
	return refuse(c, x, v3_code(v5), v5, why);
}

/* A rename that came with a delayed answer. */
static int apply_username(struct connect_ctx *x, const char *name)
{
	char *copy;

	if (!name)
		return 0;
	if (!(copy = mem_strdup(name)))
		return -1;
	mem_free(x->username);
	x->username = copy;
	return 0;
}

/*
 * MQTT 5 extended authentication at CONNECT. Returns DISPATCH_CONTINUE when
 * the client is authenticated, CONNECT_AUTHENTICATING while AUTH packets go
 * back and forth, or a refusal / DISPATCH_STOP (held for a plugin).
 */
static int extended_auth(struct client *c, struct connect_ctx *x, struct hook_auth_names *names)
{
	const struct mqtt_props *props = &x->pkt.props;
	struct ext_auth *xa = client_xauth(c);
	struct decision d;
	char *method;
	int v;

	if (xa && xa->done) {
		/* The CONNECT again, after the AUTH exchange succeeded. */
		x->auth_method = xa->method;
		x->auth_data = xa->out_data;
		x->auth_data_len = xa->out_len;
		return apply_username(x, xa->username) < 0
			       ? refuse_reason(c, x, MQTT_RC_SERVER_UNAVAILABLE, "out of memory")
			       : DISPATCH_CONTINUE;
	}
	method = mem_strndup((const char *)props->auth_method.data, props->auth_method.len);
	if (!method)
		return refuse_reason(c, x, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	v = hook_ext_auth(c, names, MIDGE_EVT_EXT_AUTH_START, NULL, method,
			  mqtt_props_has(props, MQTT_PROP_AUTHENTICATION_DATA) ? props->auth_data.data
									     : NULL,
			  props->auth_data.len, false, &d);
	int rc;
	switch (v) {
	case HOOK_PENDING:
		rc = DISPATCH_STOP;
		break;
	case HOOK_ALLOW:
	case HOOK_CONTINUE:
		xa = mem_calloc(1, sizeof(*xa));
		if (!xa || !client_ext(c) || apply_username(x, d.username) < 0) {
			mem_free(xa);
			rc = refuse_reason(c, x, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
			break;
		}
		ext_auth_free(c->ext->xauth);
		c->ext->xauth = xa;
		xa->method = method;
		method = NULL;
		xa->plugin = d.plugin;
		if (v == HOOK_ALLOW) {
			xa->out_data = d.data;
			xa->out_len = d.data_len;
			d.data = NULL;
			x->auth_method = xa->method;
			x->auth_data = xa->out_data;
			x->auth_data_len = xa->out_len;
			rc = DISPATCH_CONTINUE;
			break;
		}
		/* Another round: keep the CONNECT until the exchange ends. */
		xa->in_progress = true;
		xa->client_id = mem_strdup(x->id);
		xa->connect = mem_malloc(x->body_len ? x->body_len : 1);
		if (!xa->connect) {
			rc = refuse_reason(c, x, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
			break;
		}
		memcpy(xa->connect, x->body, x->body_len);
		xa->connect_len = x->body_len;
		xa->connect_flags = x->flags;
		rc = send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION, xa->method, d.data, d.data_len) < 0
			     ? client_fail(c, 0, "out of memory")
			     : CONNECT_AUTHENTICATING;
		break;
	case HOOK_DENY:
		rc = refuse_reason(c, x, d.reason ? d.reason : MQTT_RC_NOT_AUTHORIZED,
				   "not authorised (extended authentication)");
		break;
	default:
		rc = refuse(c, x, MQTT_CONNACK_REFUSED_NOT_AUTHORIZED, MQTT_RC_BAD_AUTHENTICATION_METHOD,
			    "unsupported authentication method");
		break;
	}
	mem_free(method);
	decision_free_data(&d);
	return rc;
}

/* The listener's own rule when no plugin has an opinion (no password file either). */
static int default_auth(struct client *c, struct connect_ctx *x)
{
	/* A user name nothing can check is refused unless anonymous access is on,
	 * as in mosquitto: it never widens access. */
	if (x->sec->allow_anonymous == 1)
		return DISPATCH_CONTINUE;
	return refuse(c, x, MQTT_CONNACK_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
		      "not authorised");
}

/*
 * Who the client is: the certificate or PSK identity when the listener says
 * so, otherwise what the plugin chain (password file included) decides.
 * Holds the client (DISPATCH_STOP) while a plugin decides later.
 */
static int authenticate(struct client *c, struct connect_ctx *x)
{
	const struct mqtt_connect *p = &x->pkt;
	const char *identity = NULL;
	struct hook_auth_names names = {.client = c, .username = &x->username, .id = x->id,
					.id_size = sizeof(x->id)};
	struct decision d;
	int rc;

	if (x->lcfg->use_identity_as_username || x->lcfg->use_subject_as_username) {
		identity = conn_peer_identity(&c->conn, CONN_ID_PSK);
		if (!identity)
			identity = conn_peer_identity(&c->conn, x->lcfg->use_subject_as_username ?
						      CONN_ID_CERT_SUBJECT : CONN_ID_CERT_CN);
		if (!identity)
			return refuse(c, x, MQTT_CONNACK_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
				      "not authorised (no certificate or PSK identity)");
		x->username = mem_strdup(identity);
	} else if (p->has_username) {
		x->username = mem_strndup((const char *)p->username.data, p->username.len);
	}
	if ((identity || p->has_username) && !x->username)
		return refuse(c, x, MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
			      "out of memory");
	c->username = x->username; /* borrowed until accepted: plugins and ACL checks read it */
	if (identity)
		return DISPATCH_CONTINUE; /* the TLS handshake authenticated it */
	if (p->protocol == MQTT_PROTO_V5 && mqtt_props_has(&p->props, MQTT_PROP_AUTHENTICATION_METHOD))
		rc = extended_auth(c, x, &names);
	else {
		int v = hook_basic_auth(c, &names, x->username, p->password.data, p->password.len,
					p->has_password, &d);
		if (v == HOOK_ALLOW && apply_username(x, d.username) < 0)
			v = HOOK_DENY;
		switch (v) {
		case HOOK_ALLOW:
			rc = DISPATCH_CONTINUE;
			break;
		case HOOK_PENDING:
			rc = DISPATCH_STOP;
			break;
		case HOOK_DENY:
			rc = refuse_reason(c, x, d.reason ? d.reason : x->username
							       ? MQTT_RC_BAD_USERNAME_OR_PASSWORD
							       : MQTT_RC_NOT_AUTHORIZED,
					   x->username ? "bad user name or password" : "not authorised");
			break;
		default:
			rc = default_auth(c, x);
			break;
		}
		decision_free_data(&d);
	}
	if (c->state != CLIENT_CLOSING)
		c->username = x->username;
	if (rc == DISPATCH_CONTINUE && names.id_changed)
		x->assigned = false; /* the plugin's id is not one the client must learn */
	if (rc == DISPATCH_CONTINUE && names.id_changed)
		x->renamed = true;
	return rc;
}

/* A plugin renamed the client to an id another worker owns: move the decided CONNECT there. */
static int move_renamed(struct client *c, struct connect_ctx *x, struct worker *owner)
{
	struct preauth *pa = mem_calloc(1, sizeof(*pa));

	if (!pa || !client_ext(c) || !(pa->client_id = mem_strdup(x->id)) ||
	    (x->username && !(pa->username = mem_strdup(x->username)))) {
		preauth_free(pa);
		return refuse_reason(c, x, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	}
	pa->has_username = x->username != NULL;
	preauth_free(c->ext->preauth);
	c->ext->preauth = pa;
	c->username = NULL;
	c->state = CLIENT_PARKED;
	c->handover = owner;
	return DISPATCH_STOP;
}

/* The CONNECT arrives decided from another worker: take the id and user it was given. */
static int take_preauth(struct client *c, struct connect_ctx *x)
{
	struct preauth *pa = c->ext->preauth;
	size_t len = strlen(pa->client_id);

	c->ext->preauth = NULL;
	memcpy(x->id, pa->client_id, len + 1);
	x->taken_over = pa->taken_over;
	x->taken_clean_start = pa->taken_clean_start;
	x->username = pa->username;
	pa->username = NULL;
	c->username = x->username;
	if (client_xauth(c) && c->ext->xauth->out_data) {
		x->auth_method = c->ext->xauth->method;
		x->auth_data = c->ext->xauth->out_data;
		x->auth_data_len = c->ext->xauth->out_len;
	}
	preauth_free(pa);
	return DISPATCH_CONTINUE;
}

/* server_moved / use_another_server: every new client is sent elsewhere. */
static int redirect(struct client *c, struct connect_ctx *x, const struct config *cfg)
{
	const char *to = cfg->server_moved ? cfg->server_moved : cfg->use_another_server;
	uint8_t code = cfg->server_moved ? MQTT_RC_SERVER_MOVED : MQTT_RC_USE_ANOTHER_SERVER;
	size_t len = strlen(to);
	uint8_t buf[3 + 1024];
	struct pkt_writer w;

	if (c->protocol != MQTT_PROTO_V5 || len > 1024)
		return refuse(c, x, MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE, code, "server moved");
	pkt_writer_init(&w, buf, sizeof(buf));
	pkt_write_prop_bin(&w, MQTT_PROP_SERVER_REFERENCE, to, (uint16_t)len);
	(void)send_connack(c, false, code, (struct mqtt_bytes){buf, w.pos});
	char a[CLIENT_ADDRSTRLEN];
	log_notice("Refused client %s from %s:%u: the server is at %s now.", x->id,
		   client_format_address(c, a),
		   c->port, to);
	client_close(c, NULL, false);
	return DISPATCH_STOP;
}

/*
 * With a cluster, the node holding this client id closes its connection and
 * hands over the session before we accept (cluster_session_claim()). The
 * CONNECT waits as for a plugin's delayed answer, already authenticated (a
 * preauth record), and comes back here with the answer. DISPATCH_CONTINUE
 * when it has the answer or cannot ask (then the takeover is local only).
 */
static int claim_across_cluster(struct client *c, struct connect_ctx *x)
{
	struct worker *w = c->worker;
	struct cluster *cl = w->broker->cluster;
	struct decision d;
	struct preauth *pa;

	if (decision_replay(c, &d)) {
		x->moved = d.data; /* HOOK_DENY: the wait timed out, no session came */
		x->moved_len = d.data_len;
		d.data = NULL;
		decision_free_data(&d);
		return DISPATCH_CONTINUE;
	}
	if (!cluster_session_ready(cl)) {
		log_info("Cluster: not connected; client %s is taken over on this node only.", x->id);
		return DISPATCH_CONTINUE;
	}
	pa = mem_calloc(1, sizeof(*pa));
	if (!pa || !client_ext(c) || !(pa->client_id = mem_strdup(x->id)) ||
	    (x->username && !(pa->username = mem_strdup(x->username)))) {
		preauth_free(pa);
		return DISPATCH_CONTINUE;
	}
	pa->has_username = x->username != NULL;
	/* The answer must be the first one the replay reads: no earlier ones kept. */
	decision_client_gone(c);
	decision_packet_begin(c);
	uint64_t id = decision_request_id(w);
	if (cluster_session_claim(cl, id, x->id, x->pkt.clean_start,
				  session_expiry(w->cfg, &x->pkt) > 0) < 0) {
		preauth_free(pa);
		return DISPATCH_CONTINUE;
	}
	if (decision_park(c, id, NULL) < 0) {
		preauth_free(pa); /* the answer comes to no wait and is dropped */
		return DISPATCH_CONTINUE;
	}
	preauth_free(c->ext->preauth);
	c->ext->preauth = pa;
	c->username = NULL;
	return DISPATCH_STOP;
}

/*
 * The same id connected to another node while this CONNECT waited for the
 * cluster's answer, and that node went on: the later connection stays, so this
 * one, just accepted, goes as a taken-over one (and its fresh session with it,
 * unless the other connection continues it).
 */
static int close_taken_over(struct client *c, struct connect_ctx *x)
{
	struct worker *w = c->worker;
	struct session *s = c->session;
	bool continues = s && s->expiry_interval > 0 && !x->taken_clean_start;

	if (w->cfg->connection_messages)
		log_notice("Client %s connected to another node, closing old connection.", x->id);
	(void)send_disconnect(c, MQTT_RC_SESSION_TAKEN_OVER);
	client_close(c, NULL, !continues);
	s = session_find(&w->sessions, x->id);
	if (s && !s->client && !s->bridge)
		session_destroy(s); /* the registry names the other node */
	return DISPATCH_STOP;
}

static int check_and_accept(struct client *c, struct connect_ctx *x)
{
	struct worker *w = c->worker;
	const struct mqtt_connect *p = &x->pkt;
	int rc;

	if (client_preauth(c)) {
		rc = take_preauth(c, x);
		goto checked;
	}
	rc = choose_client_id(c, x);
	if (rc != DISPATCH_CONTINUE)
		return rc;
	if (w->cfg->server_moved || w->cfg->use_another_server)
		return redirect(c, x, w->cfg);
	/* The worker owning this id's session handles the rest of the CONNECT. */
	if (!x->assigned && w->broker->nworkers > 1) {
		struct worker *owner = worker_for_hash(w->broker, session_id_hash(x->id, strlen(x->id)));
		if (owner != w) {
			c->state = CLIENT_PARKED;
			c->handover = owner;
			return DISPATCH_STOP;
		}
	}
	if (!auth_clientid_allowed(x->sec, x->id))
		return refuse(c, x, MQTT_CONNACK_REFUSED_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
			      "not authorised (client id prefix)");
	rc = authenticate(c, x);
	if (rc != DISPATCH_CONTINUE)
		return rc;
	if (x->renamed && w->broker->nworkers > 1) {
		struct worker *owner = worker_for_hash(w->broker, session_id_hash(x->id, strlen(x->id)));
		if (owner != w)
			return move_renamed(c, x, owner);
	}
checked:
	if (p->has_will && p->will.retain && !w->cfg->retain_available) {
		/* MQTT 5 has a code for it; older clients are closed, as mosquitto does. */
		if (p->protocol == MQTT_PROTO_V5)
			return refuse(c, x, 0, MQTT_RC_RETAIN_NOT_SUPPORTED, "retain not available");
		return client_fail(c, 0, "retained will while retain_available is false");
	}
	if (p->has_will && w->cfg->message_size_limit &&
	    p->will.payload.len > w->cfg->message_size_limit)
		return refuse(c, x, MQTT_CONNACK_REFUSED_NOT_AUTHORIZED, MQTT_RC_PACKET_TOO_LARGE,
			      "will payload above message_size_limit");
	if (mem_limit_reached(0))
		return refuse(c, x, MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE, MQTT_RC_SERVER_BUSY,
			      "memory_limit reached");
	/* An assigned id is new everywhere. */
	if (w->broker->cluster && !x->assigned) {
		rc = claim_across_cluster(c, x);
		if (rc != DISPATCH_CONTINUE)
			return rc;
	}
	rc = accept_client(c, x);
	if (x->taken_over && c->state == CLIENT_ACTIVE)
		return close_taken_over(c, x);
	return rc;
}

int handle_connect(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len)
{
	struct connect_ctx *x;
	enum mqtt_connect_err err;
	int rc;

	if (c->state != CLIENT_NEW)
		return client_fail(c, MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
	/* Big enough for any client id; CONNECT is rare, so the heap is fine. */
	x = mem_malloc(sizeof(*x));
	if (!x)
		return client_fail(c, 0, "out of memory");
	x->assigned = false;
	x->renamed = false;
	x->username = NULL;
	x->auth_method = NULL;
	x->auth_data = NULL;
	x->auth_data_len = 0;
	x->body = body;
	x->body_len = len;
	x->flags = flags;
	x->moved = NULL;
	x->moved_len = 0;
	x->taken_over = false;
	x->taken_clean_start = false;
	err = mqtt_decode_connect(body, len, flags, &x->pkt);
	c->protocol = x->pkt.protocol;
	if (err == MQTT_CONNECT_OK) {
		/* Plugins deciding on the CONNECT may ask for these. */
		c->keepalive = x->pkt.keepalive;
		if (x->pkt.clean_start)
			c->flags |= CLIENT_F_CLEAN_START;
		if (x->pkt.bridge)
			c->flags |= CLIENT_F_BRIDGE_PEER;
		if (x->pkt.props.topic_alias_maximum) { /* 0 when absent */
			if (!client_ext(c)) {
				rc = client_fail(c, 0, "out of memory");
				goto out;
			}
			c->ext->topic_alias_max_out = x->pkt.props.topic_alias_maximum;
		}
	}
	if (err != MQTT_CONNECT_OK) {
		rc = decode_error(c, err);
		goto out;
	}
	x->lcfg = &c->worker->cfg->listeners[c->listener->index];
	x->sec = &x->lcfg->security;
	rc = check_and_accept(c, x);
	if (rc == CONNECT_AUTHENTICATING)
		rc = DISPATCH_CONTINUE; /* AUTH packets follow */
	else if (client_xauth(c) && c->state == CLIENT_ACTIVE)
		c->ext->xauth->done = false; /* kept: its method is the one re-authentication must use */
out:
	/* The client borrowed the user name unless it was accepted (which takes it). */
	if (c->username == x->username)
		c->username = NULL;
	mem_free(x->username);
	mem_free(x->moved);
	mem_free(x);
	return rc;
}

void preauth_free(struct preauth *p)
{
	if (!p)
		return;
	mem_free(p->client_id);
	mem_free(p->username);
	mem_free(p->auth_data);
	mem_free(p);
}
