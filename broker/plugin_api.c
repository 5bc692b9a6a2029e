/*
 * plugin_api.c: the struct midge_broker_api handed to plugins: the
 * broker's services, each checked for the thread and moment it may be used
 * (see midge/plugin.h for the contract of every function).
 */
#include "config.h"

#include "plugin.h"

#include "alloc.h"
#include "broker.h"
#include "client.h"
#include "conn.h"
#include "connect_state.h"
#include "decision.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "passwd.h"
#include "session.h"
#include "topic.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

/* The process's broker, for the functions that take no handle (publish, complete). */
static struct broker *api_broker;

void plugin_api_set_broker(struct broker *b)
{
	api_broker = b;
}

static struct client *C(const midge_client *c)
{
	return (struct client *)c;
}

static int api_register_event(midge_plugin *self, int event, midge_event_cb cb, void *userdata)
{
	if (!self)
		return MIDGE_ERR_INVAL;
	if (event <= 0 || event >= MIDGE_EVT_LIMIT)
		return MIDGE_ERR_UNSUPPORTED;
	if (!self->in_init)
		return MIDGE_ERR_STATE;
	self->handlers[event].cb = cb;
	self->handlers[event].userdata = userdata;
	return MIDGE_OK;
}

static void api_log(midge_plugin *self, int level, const char *fmt, ...)
{
	static const uint32_t types[] = {LOG_T_ERR, LOG_T_ERR, LOG_T_WARNING, LOG_T_NOTICE,
					 LOG_T_INFO, LOG_T_DEBUG};
	uint32_t type = level >= 1 && level <= 5 ? types[level] : LOG_T_INFO;
	char line[1024];
	va_list ap;

	if (!log_enabled(type))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_msg(type, "Plugin %s: %s", self ? self->name : "?", line);
}

static void *api_malloc(size_t n) { return mem_malloc(n); }
static void *api_calloc(size_t n, size_t s) { return mem_calloc(n, s); }
static void *api_realloc(void *p, size_t n) { return mem_realloc(p, n); }
static void api_free(void *p) { mem_free(p); }
static char *api_strdup(const char *s) { return s ? mem_strdup(s) : NULL; }

static const char *api_client_id(const midge_client *c)
{
	struct hook_auth_names *n = hooks_auth_names();

	/* During authentication the id is the one the CONNECT is deciding on. */
	if (c && !C(c)->id && n && n->client == C(c) && n->id)
		return n->id;
	if (c && !C(c)->id && client_xauth(C(c)) && C(c)->ext->xauth->client_id)
		return C(c)->ext->xauth->client_id;
	return c ? C(c)->id : NULL;
}

static const char *api_client_username(const midge_client *c)
{
	return c ? C(c)->username : NULL;
}

static const char *api_client_address(const midge_client *c)
{
	return c ? client_address(C(c)) : NULL;
}

static int api_client_port(const midge_client *c)
{
	return c && C(c)->port ? C(c)->port : -1;
}

static int api_client_protocol(const midge_client *c)
{
	return c ? C(c)->protocol : -1;
}

static int api_client_listener_port(const midge_client *c)
{
	return c ? C(c)->listener->port : -1;
}

static const char *api_client_cert_subject(const midge_client *c)
{
	return c ? conn_peer_identity(&C(c)->conn, CONN_ID_CERT_SUBJECT) : NULL;
}

static int api_client_clean_start(const midge_client *c)
{
	return c ? client_clean_start(C(c)) : -1;
}

static int api_client_keepalive(const midge_client *c)
{
	return c ? C(c)->keepalive : -1;
}

static int api_client_set_username(midge_client *c, const char *username)
{
	struct hook_auth_names *n = hooks_auth_names();
	char *copy = NULL;

	if (!n || n->client != C(c) || !n->username)
		return MIDGE_ERR_STATE;
	if (username && !(copy = mem_strdup(username)))
		return MIDGE_ERR_NOMEM;
	/* The client borrows the CONNECT's user name until it is accepted. */
	if (C(c)->username == *n->username)
		C(c)->username = copy;
	/* The event in progress still points at the first name: it lives until the chain ends. */
	if (!n->replaced)
		n->replaced = *n->username;
	else
		mem_free(*n->username);
	*n->username = copy;
	return MIDGE_OK;
}

static int api_client_set_id(midge_client *c, const char *client_id)
{
	struct hook_auth_names *n = hooks_auth_names();
	size_t len;

	if (!n || n->client != C(c) || !n->id)
		return MIDGE_ERR_STATE;
	if (!client_id || !(len = strlen(client_id)) || len >= n->id_size || len > UINT16_MAX)
		return MIDGE_ERR_INVAL;
	memcpy(n->id, client_id, len + 1);
	n->id_changed = true;
	return MIDGE_OK;
}

static void *api_client_data(const midge_client *c, midge_plugin *self)
{
	return c && self ? client_plugin_data(C(c), self->index) : NULL;
}

static int api_client_set_data(midge_client *c, midge_plugin *self, void *data,
			       void (*free_fn)(void *data))
{
	if (!c || !self)
		return MIDGE_ERR_INVAL;
	return client_set_plugin_data(C(c), self->index, data, free_fn) < 0 ? MIDGE_ERR_NOMEM
									     : MIDGE_OK;
}

static int api_publish(midge_plugin *self, const char *topic, const void *payload,
		       uint32_t payload_len, int qos, bool retain,
		       const struct midge_property *properties, uint32_t property_count)
{
	struct broker *b = api_broker;
	struct message *m;
	size_t tlen = topic ? strlen(topic) : 0;

	(void)self;
	if (!b || !topic || !tlen || tlen > UINT16_MAX || !topic_name_valid(topic, tlen) ||
	    qos < 0 || qos > 2 || (payload_len && !payload))
		return MIDGE_ERR_INVAL;
	m = plugin_message_new(topic, tlen, payload, payload_len, (uint8_t)qos, retain, properties,
			       property_count);
	if (!m)
		return MIDGE_ERR_NOMEM;
	struct worker *w = worker_current();
	if (w && w->broker == b) {
		/* Routed before the loop sleeps: never inside the routing that called us. */
		worker_defer_publish(w, m);
		return MIDGE_OK;
	}
	worker_post(&b->workers[0], &(struct inbox_item){.kind = INBOX_PUBLISH, .msg = m});
	return MIDGE_OK;
}

static int api_kick_client(midge_plugin *self, const char *client_id, bool send_will)
{
	struct broker *b = api_broker;
	char *id;

	(void)self;
	if (!b || !client_id || !*client_id)
		return MIDGE_ERR_INVAL;
	id = mem_strdup(client_id);
	if (!id)
		return MIDGE_ERR_NOMEM;
	struct worker *owner = worker_for_hash(b, session_id_hash(id, strlen(id)));
	worker_post(owner, &(struct inbox_item){.kind = INBOX_KICK, .retain = send_will, .ptr = id});
	return MIDGE_OK;
}

static bool api_topic_matches(const char *filter, const char *topic)
{
	return filter && topic && topic_matches(filter, strlen(filter), topic, strlen(topic));
}

static bool api_topic_valid(const char *topic)
{
	return topic && *topic && topic_name_valid(topic, strlen(topic));
}

static bool api_filter_valid(const char *filter)
{
	return filter && *filter && topic_filter_valid(filter, strlen(filter));
}

int plugin_api_complete(uint64_t request, int result, const struct midge_completion *extra)
{
	struct broker *b = api_broker;
	struct decision *d;
	unsigned wi = (unsigned)(request & 0xFF);

	if (!b || request == 0 || wi >= b->nworkers)
		return MIDGE_ERR_NOT_FOUND;
	if (result != MIDGE_ALLOW && result != MIDGE_DENY && result != MIDGE_CONTINUE)
		return MIDGE_ERR_INVAL;
	d = mem_calloc(1, sizeof(*d));
	if (!d)
		return MIDGE_ERR_NOMEM;
	d->qos = -1;
	d->verdict = result == MIDGE_ALLOW ? HOOK_ALLOW
		     : result == MIDGE_CONTINUE ? HOOK_CONTINUE : HOOK_DENY;
	if (extra && MIDGE_HAS_FIELD(extra->size, struct midge_completion, username)) {
		d->reason = extra->reason;
		if (extra->auth_data) {
			d->data = mem_malloc(extra->auth_data_len ? extra->auth_data_len : 1);
			if (d->data) {
				memcpy(d->data, extra->auth_data, extra->auth_data_len);
				d->data_len = extra->auth_data_len;
			}
		}
		if (extra->username)
			d->username = mem_strdup(extra->username);
	}
	worker_post(&b->workers[wi], &(struct inbox_item){.kind = INBOX_DECIDED, .subid = 0,
							   .ptr = d, .id = request});
	return MIDGE_OK;
}

static uint64_t api_timer_start(midge_plugin *self, uint32_t delay_ms, void (*cb)(void *arg),
				void *arg)
{
	return self ? hooks_timer_start(self, delay_ms, cb, arg) : 0;
}

static void api_timer_cancel(midge_plugin *self, uint64_t id)
{
	if (self)
		hooks_timer_cancel(self, id);
}

static int api_password_verify(const char *hash, const void *password, size_t password_len)
{
	int rc;

	if (!hash)
		return MIDGE_ERR_INVAL;
	rc = passwd_verify_hash(hash, strlen(hash), password, password_len);
	return rc < 0 ? MIDGE_ERR_INVAL : rc;
}

static int api_password_hash(const void *password, size_t password_len, const char *method,
			     char *out, size_t out_size)
{
	enum passwd_hash_kind kind;

	if (!method || strcmp(method, "pbkdf2") == 0 || strcmp(method, "sha512-pbkdf2") == 0)
		kind = PASSWD_SHA512_PBKDF2;
	else if (strcmp(method, "sha512") == 0)
		kind = PASSWD_SHA512;
	else if (strcmp(method, "argon2id") == 0)
		kind = PASSWD_ARGON2ID;
	else
		return MIDGE_ERR_INVAL;
	if (!out || (!password && password_len))
		return MIDGE_ERR_INVAL;
	return passwd_hash(kind, 0, password ? password : "", password_len, out, out_size) < 0
		       ? MIDGE_ERR_INVAL
		       : MIDGE_OK;
}

static int api_explaining(void)
{
	return hooks_explaining();
}

static void api_explain(midge_plugin *self, const char *fmt, ...)
{
	char text[448], line[512];
	va_list ap;

	if (!hooks_explaining())
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: %s", self ? self->name : "?", text);
	hooks_explain_set(line);
}

static const char *api_plugin_name(const midge_plugin *self)
{
	return self ? self->name : NULL;
}

static unsigned api_worker_count(void)
{
	return api_broker ? api_broker->nworkers : 1;
}

static const struct midge_broker_api api_table = {
	.size = sizeof(struct midge_broker_api),
	.abi_version = MIDGE_PLUGIN_ABI_VERSION,
	.broker_version = PACKAGE_VERSION,
	.register_event = api_register_event,
	.log = api_log,
	.malloc = api_malloc,
	.calloc = api_calloc,
	.realloc = api_realloc,
	.free = api_free,
	.strdup = api_strdup,
	.client_id = api_client_id,
	.client_username = api_client_username,
	.client_address = api_client_address,
	.client_port = api_client_port,
	.client_protocol = api_client_protocol,
	.client_listener_port = api_client_listener_port,
	.client_cert_subject = api_client_cert_subject,
	.client_keepalive = api_client_keepalive,
	.client_set_username = api_client_set_username,
	.client_set_id = api_client_set_id,
	.client_data = api_client_data,
	.client_set_data = api_client_set_data,
	.publish = api_publish,
	.kick_client = api_kick_client,
	.topic_matches = api_topic_matches,
	.topic_valid = api_topic_valid,
	.filter_valid = api_filter_valid,
	.complete = plugin_api_complete,
	.timer_start = api_timer_start,
	.timer_cancel = api_timer_cancel,
	.plugin_name = api_plugin_name,
	.worker_count = api_worker_count,
	.password_verify = api_password_verify,
	.password_hash = api_password_hash,
	.client_clean_start = api_client_clean_start,
	.explaining = api_explaining,
	.explain = api_explain,
};

const struct midge_broker_api *plugin_api_table(void)
{
	return &api_table;
}
