/*
 * probe.c: the plugin behind midge's plugin integration tests
 * (tests/integration/test_20_plugins.py).
 *
 * It registers every event of <midge/plugin.h>, appends one line per call
 * to the file named by the option `log_file` ("<event> key=value ..."), and
 * answers according to its other options (listed above probe_conf below), so
 * that one plugin can drive every event test. Values in the log are
 * percent-escaped (space, '%', control and non-ASCII bytes become %XX).
 */
#define _POSIX_C_SOURCE 200809L

#include <midge/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

MIDGE_PLUGIN_DECLARE_VERSION()

/* The names used in the log (and by the tests), indexed by event id. */
static const char *const event_names[MIDGE_EVT_LIMIT] = {
	[MIDGE_EVT_BASIC_AUTH] = "basic_auth",
	[MIDGE_EVT_EXT_AUTH_START] = "ext_auth_start",
	[MIDGE_EVT_EXT_AUTH_CONTINUE] = "ext_auth_continue",
	[MIDGE_EVT_ACL_CHECK] = "acl_check",
	[MIDGE_EVT_MESSAGE_IN] = "message_in",
	[MIDGE_EVT_MESSAGE_OUT] = "message_out",
	[MIDGE_EVT_CONNECT] = "connect",
	[MIDGE_EVT_DISCONNECT] = "disconnect",
	[MIDGE_EVT_SUBSCRIBE] = "subscribe",
	[MIDGE_EVT_UNSUBSCRIBE] = "unsubscribe",
	[MIDGE_EVT_WILL] = "will",
	[MIDGE_EVT_TICK] = "tick",
	[MIDGE_EVT_RELOAD] = "reload",
	[MIDGE_EVT_BRIDGE] = "bridge",
	[MIDGE_EVT_PSK_KEY] = "psk_key",
	[MIDGE_EVT_WORKER_START] = "worker_start",
	[MIDGE_EVT_WORKER_STOP] = "worker_stop",
};

static const char *const access_names[] = {
	[MIDGE_ACL_SUBSCRIBE] = "subscribe",
	[MIDGE_ACL_UNSUBSCRIBE] = "unsubscribe",
	[MIDGE_ACL_PUBLISH] = "publish",
	[MIDGE_ACL_DELIVER] = "deliver",
};

/*
 * The options, copied, plus the few that are parsed once. Lists (user
 * names, topics, filters, pairs) are words separated by spaces or commas.
 *
 *   log_file F               where the lines go (default: the broker's log)
 *   decision allow|deny|defer  BASIC_AUTH and ACL_CHECK answer (default defer)
 *   auth_decision, acl_decision  the same for one of the two only
 *   allow_user, deny_user L  BASIC_AUTH ALLOW / DENY for these users
 *   delay_user L             BASIC_AUTH DELAYED, completed ALLOW after delay_ms
 *   hang_user L              BASIC_AUTH DELAYED, never completed
 *   delay_ms N               (default 100)
 *   delay_subscribe L        ACL SUBSCRIBE on these filters: DELAYED, then ALLOW
 *   hang_subscribe L         ACL SUBSCRIBE on these filters: DELAYED forever
 *   deny_topic L             ACL DENY for publish, subscribe and deliver on exactly these
 *   deny_out_topic L         MESSAGE_OUT DENY for these topics
 *   deny_out_client L        MESSAGE_OUT DENY for these subscribers (client ids)
 *   drop_in_topic L          MESSAGE_IN DENY (0x97, quota exceeded) for these topics
 *   rewrite_from T, rewrite_to T2  MESSAGE_IN: topic T becomes T2
 *   bridge_drop_topic L      BRIDGE MESSAGE DENY for these topics (as the event names them)
 *   bridge_rewrite_from T, bridge_rewrite_to T2  BRIDGE MESSAGE: topic T crosses as T2
 *   payload_suffix S         MESSAGE_IN: S appended to every payload
 *   add_user_property N=V    MESSAGE_IN: one more user property
 *   deny_will true           WILL DENY
 *   tick_ms N                TICK: next_ms
 *   ext_method M             EXT_AUTH for method M (see on_ext_auth)
 *   psk_identity I, psk_key HEX  PSK_KEY answer for identity I
 *   kick_on_publish_topic L  a client publishing there is kicked (no will)
 *   publish_on_connect T     CONNECT: publish "hello <id>" on T
 *   set_username_for L       pairs <client id>=<user>: renamed during BASIC_AUTH
 *   timer_ms N               WORKER_START: a one-shot timer logging "timer worker=N"
 *   fail_init true           init fails (MIDGE_ERR_INVAL)
 */
struct probe_conf {
	struct midge_option *opts;
	int nopts;
	int auth_decision;
	int acl_decision;
	unsigned delay_ms;
	unsigned tick_ms;
	unsigned timer_ms;
	bool deny_will;
	bool fail_init;
};

/* A decision that a helper thread completes at `due`. */
struct pending {
	struct pending *next;
	uint64_t request;
	int result;
	struct timespec due; /* CLOCK_MONOTONIC */
};

struct probe {
	midge_plugin *self;
	const struct midge_broker_api *api;
	int log_fd;                 /* -1: lines go to api->log */

	/* RELOAD (main thread) swaps conf while workers read it. */
	pthread_rwlock_t lock;
	struct probe_conf *conf;

	/* Delayed completions: one helper thread, a queue sorted by due time. */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct pending *queue;
	bool stopping;
	pthread_t thread;
};

/* Per-worker state: the buffers MESSAGE_IN rewrites point into, and the timer. */
struct worker {
	struct probe *p;
	unsigned index;
	uint64_t timer;
	char *topic;
	size_t topic_cap;
	unsigned char *payload;
	size_t payload_cap;
	struct midge_property *props;
	size_t props_cap;
};

/* ---- Options --------------------------------------------------------------- */

static const char *opt(const struct probe_conf *c, const char *key)
{
	const char *found = NULL;

	for (int i = 0; i < c->nopts; i++) /* the last one wins */
		if (strcmp(c->opts[i].key, key) == 0)
			found = c->opts[i].value;
	return found;
}

static bool is_sep(char ch)
{
	return ch == ' ' || ch == ',' || ch == '\t';
}

/* Whether `word` is one of the words of `list` (NULL: an empty list). */
static bool in_list(const char *list, const char *word)
{
	size_t n;

	if (!list || !word)
		return false;
	n = strlen(word);
	while (*list) {
		const char *end;

		while (is_sep(*list))
			list++;
		end = list;
		while (*end && !is_sep(*end))
			end++;
		if (end > list && (size_t)(end - list) == n && memcmp(list, word, n) == 0)
			return true;
		list = end;
	}
	return false;
}

/* In a list of key=value words, the value for `key` copied to out. */
static bool pair_lookup(const char *list, const char *key, char *out, size_t outsz)
{
	size_t klen;

	if (!list || !key)
		return false;
	klen = strlen(key);
	while (*list) {
		const char *end;

		while (is_sep(*list))
			list++;
		end = list;
		while (*end && !is_sep(*end))
			end++;
		if ((size_t)(end - list) > klen && memcmp(list, key, klen) == 0 && list[klen] == '=') {
			size_t vlen = (size_t)(end - list) - klen - 1;

			if (vlen >= outsz)
				return false;
			memcpy(out, list + klen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		list = end;
	}
	return false;
}

static int parse_decision(const char *v, int def)
{
	if (!v)
		return def;
	if (strcmp(v, "allow") == 0)
		return MIDGE_ALLOW;
	if (strcmp(v, "deny") == 0)
		return MIDGE_DENY;
	if (strcmp(v, "defer") == 0)
		return MIDGE_DEFER;
	return -1;
}

static bool parse_uint(const char *v, unsigned def, unsigned *out)
{
	char *end;
	unsigned long n;

	if (!v) {
		*out = def;
		return true;
	}
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || n > 86400000UL)
		return false;
	*out = (unsigned)n;
	return true;
}

static bool parse_bool(const char *v)
{
	return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0);
}

static void conf_free(struct probe_conf *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nopts; i++) {
		free((char *)c->opts[i].key);
		free((char *)c->opts[i].value);
	}
	free(c->opts);
	free(c);
}

/* A conf from the broker's options; NULL with *why set when they are wrong. */
static struct probe_conf *conf_new(const struct midge_option *options, int n, const char **why)
{
	struct probe_conf *c = calloc(1, sizeof(*c));
	int decision;

	*why = "out of memory";
	if (!c)
		return NULL;
	c->opts = calloc(n > 0 ? (size_t)n : 1, sizeof(*c->opts));
	if (!c->opts)
		goto fail;
	for (int i = 0; i < n; i++) {
		c->opts[i].key = strdup(options[i].key ? options[i].key : "");
		c->opts[i].value = strdup(options[i].value ? options[i].value : "");
		c->nopts = i + 1;
		if (!c->opts[i].key || !c->opts[i].value)
			goto fail;
	}
	*why = "decision, auth_decision and acl_decision are allow, deny or defer";
	decision = parse_decision(opt(c, "decision"), MIDGE_DEFER);
	if (decision < 0)
		goto fail;
	c->auth_decision = parse_decision(opt(c, "auth_decision"), decision);
	c->acl_decision = parse_decision(opt(c, "acl_decision"), decision);
	if (c->auth_decision < 0 || c->acl_decision < 0)
		goto fail;
	*why = "delay_ms, tick_ms and timer_ms are numbers of milliseconds";
	if (!parse_uint(opt(c, "delay_ms"), 100, &c->delay_ms) ||
	    !parse_uint(opt(c, "tick_ms"), 0, &c->tick_ms) ||
	    !parse_uint(opt(c, "timer_ms"), 0, &c->timer_ms))
		goto fail;
	c->deny_will = parse_bool(opt(c, "deny_will"));
	c->fail_init = opt(c, "fail_init") != NULL && strcmp(opt(c, "fail_init"), "false") != 0;
	return c;
fail:
	conf_free(c);
	return NULL;
}

/* ---- Log lines ------------------------------------------------------------- */

struct line {
	char buf[8192];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 2 - l->len) /* room for '\n' and '\0' */
		n = sizeof(l->buf) - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_escaped(struct line *l, const void *data, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = data;

	for (size_t i = 0; i < n; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '%') {
			char esc[3] = {'%', hex[s[i] >> 4], hex[s[i] & 15]};
			put(l, esc, 3);
		} else {
			put(l, (const char *)&s[i], 1);
		}
	}
}

static void line_start(struct line *l, const char *name)
{
	l->len = 0;
	put(l, name, strlen(name));
}

/* " key=value"; a NULL value is written as nothing after '='. */
static void field(struct line *l, const char *key, const char *value)
{
	put(l, " ", 1);
	put(l, key, strlen(key));
	put(l, "=", 1);
	if (value)
		put_escaped(l, value, strlen(value));
}

static void field_bytes(struct line *l, const char *key, const void *data, size_t n)
{
	put(l, " ", 1);
	put(l, key, strlen(key));
	put(l, "=", 1);
	if (data)
		put_escaped(l, data, n);
}

static void field_num(struct line *l, const char *key, unsigned long long n)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", n);
	field(l, key, num);
}

static void field_hex(struct line *l, const char *key, const void *data, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = data;

	put(l, " ", 1);
	put(l, key, strlen(key));
	put(l, "=", 1);
	for (size_t i = 0; s && i < n; i++) {
		char two[2] = {hex[s[i] >> 4], hex[s[i] & 15]};
		put(l, two, 2);
	}
}

/* Writes the line with one write(): O_APPEND keeps lines of several threads whole. */
static void emit(struct probe *p, struct line *l)
{
	if (p->log_fd < 0) {
		l->buf[l->len] = '\0';
		p->api->log(p->self, MIDGE_LOG_INFO, "%s", l->buf);
		return;
	}
	l->buf[l->len++] = '\n';
	while (write(p->log_fd, l->buf, l->len) < 0 && errno == EINTR)
		;
}

/* ---- Delayed completions ------------------------------------------------------ */

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *completer(void *arg)
{
	struct probe *p = arg;

	pthread_mutex_lock(&p->qlock);
	while (!p->stopping) {
		struct pending *first = p->queue;
		struct timespec now;
		struct line l;

		if (!first) {
			pthread_cond_wait(&p->qcond, &p->qlock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ts_before(&now, &first->due)) {
			pthread_cond_timedwait(&p->qcond, &p->qlock, &first->due);
			continue;
		}
		p->queue = first->next;
		pthread_mutex_unlock(&p->qlock);
		/* Outside the lock: complete() may take the broker's locks. */
		p->api->complete(first->request, first->result, NULL);
		line_start(&l, "completed");
		field_num(&l, "request", first->request);
		field(&l, "result", first->result == MIDGE_ALLOW ? "allow" : "deny");
		emit(p, &l);
		free(first);
		pthread_mutex_lock(&p->qlock);
	}
	pthread_mutex_unlock(&p->qlock);
	return NULL;
}

/* Queues a completion; MIDGE_DELAYED, or DENY when it cannot be queued. */
static int delay(struct probe *p, uint64_t request, int result, unsigned ms)
{
	struct pending *item = calloc(1, sizeof(*item)), **at;

	if (!item)
		return MIDGE_DENY;
	item->request = request;
	item->result = result;
	clock_gettime(CLOCK_MONOTONIC, &item->due);
	item->due.tv_sec += ms / 1000;
	item->due.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (item->due.tv_nsec >= 1000000000L) {
		item->due.tv_sec++;
		item->due.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->qlock);
	for (at = &p->queue; *at && !ts_before(&item->due, &(*at)->due); at = &(*at)->next)
		;
	item->next = *at;
	*at = item;
	pthread_cond_signal(&p->qcond);
	pthread_mutex_unlock(&p->qlock);
	return MIDGE_DELAYED;
}

/* ---- Events ------------------------------------------------------------------ */

static const char *decision_name(int d)
{
	switch (d) {
	case MIDGE_ALLOW: return "allow";
	case MIDGE_DENY: return "deny";
	case MIDGE_DEFER: return "defer";
	case MIDGE_DELAYED: return "delayed";
	case MIDGE_CONTINUE: return "continue";
	default: return "error";
	}
}

static int on_basic_auth(struct probe *p, const struct probe_conf *c, struct midge_evt_basic_auth *e)
{
	const char *id = p->api->client_id(e->client);
	char newname[256];
	struct line l;
	int rc;

	line_start(&l, "basic_auth");
	field(&l, "id", id);
	field(&l, "user", e->username);
	field_num(&l, "password_len", e->password ? e->password_len : 0);
	if (id && pair_lookup(opt(c, "set_username_for"), id, newname, sizeof(newname))) {
		rc = p->api->client_set_username(e->client, newname);
		field(&l, "renamed", newname);
		field(&l, "rename", rc == MIDGE_OK ? "ok" : "error");
	}
	if (e->username && in_list(opt(c, "deny_user"), e->username))
		rc = MIDGE_DENY;
	else if (e->username && in_list(opt(c, "allow_user"), e->username))
		rc = MIDGE_ALLOW;
	else if (e->username && in_list(opt(c, "delay_user"), e->username))
		rc = delay(p, e->h.request, MIDGE_ALLOW, c->delay_ms);
	else if (e->username && in_list(opt(c, "hang_user"), e->username))
		rc = MIDGE_DELAYED; /* never completed: the broker's timeout must answer */
	else
		rc = c->auth_decision;
	field(&l, "result", decision_name(rc));
	if (rc == MIDGE_DELAYED)
		field_num(&l, "request", e->h.request);
	emit(p, &l);
	return rc;
}

static int on_ext_auth(struct probe *p, const struct probe_conf *c, struct midge_evt_ext_auth *e)
{
	static const char welcome[] = "welcome", challenge[] = "challenge", done[] = "done";
	bool start = e->h.event == MIDGE_EVT_EXT_AUTH_START;
	const char *mine = opt(c, "ext_method");
	struct line l;
	int rc;

	line_start(&l, start ? "ext_auth_start" : "ext_auth_continue");
	field(&l, "id", p->api->client_id(e->client));
	field(&l, "method", e->method);
	field_hex(&l, "data", e->data, e->data ? e->data_len : 0);
	field_num(&l, "reauth", e->reauth);
	if (!mine || !e->method || strcmp(mine, e->method) != 0) {
		rc = start ? MIDGE_DEFER : MIDGE_DENY;
	} else if (start && e->data && e->data_len == 2 && memcmp(e->data, "ok", 2) == 0) {
		e->out_data = welcome;
		e->out_data_len = sizeof(welcome) - 1;
		rc = MIDGE_ALLOW;
	} else if (start && e->data && e->data_len == 4 && memcmp(e->data, "step", 4) == 0) {
		e->out_data = challenge;
		e->out_data_len = sizeof(challenge) - 1;
		rc = MIDGE_CONTINUE;
	} else if (!start && e->data && e->data_len == 6 && memcmp(e->data, "answer", 6) == 0) {
		e->out_data = done;
		e->out_data_len = sizeof(done) - 1;
		rc = MIDGE_ALLOW;
	} else {
		rc = MIDGE_DENY;
	}
	field(&l, "result", decision_name(rc));
	emit(p, &l);
	return rc;
}

static int on_acl(struct probe *p, const struct probe_conf *c, struct midge_evt_acl *e)
{
	bool known = e->access >= MIDGE_ACL_SUBSCRIBE && e->access <= MIDGE_ACL_DELIVER;
	struct line l;
	int rc;

	line_start(&l, "acl_check");
	field(&l, "id", e->client_id);
	field(&l, "user", e->username);
	field(&l, "access", known ? access_names[e->access] : "unknown");
	field(&l, "topic", e->topic);
	field_num(&l, "qos", e->qos);
	if (e->access != MIDGE_ACL_UNSUBSCRIBE && in_list(opt(c, "deny_topic"), e->topic))
		rc = MIDGE_DENY;
	else if (e->access == MIDGE_ACL_SUBSCRIBE && in_list(opt(c, "delay_subscribe"), e->topic))
		rc = delay(p, e->h.request, MIDGE_ALLOW, c->delay_ms);
	else if (e->access == MIDGE_ACL_SUBSCRIBE && in_list(opt(c, "hang_subscribe"), e->topic))
		rc = MIDGE_DELAYED;
	else
		rc = c->acl_decision;
	field(&l, "result", decision_name(rc));
	emit(p, &l);
	return rc;
}

/* Makes *buf hold at least `need` bytes (worker-owned, reused for every message). */
static bool reserve(void **buf, size_t *cap, size_t need)
{
	void *grown;

	if (need <= *cap)
		return true;
	grown = realloc(*buf, need);
	if (!grown)
		return false;
	*buf = grown;
	*cap = need;
	return true;
}

/* MESSAGE_IN: kick, drop, or rewrite into this worker's buffers. */
static int rewrite_in(struct probe *p, const struct probe_conf *c, struct worker *w,
		      struct midge_evt_message *e, struct line *l)
{
	const char *from = opt(c, "rewrite_from"), *to = opt(c, "rewrite_to");
	const char *suffix = opt(c, "payload_suffix"), *prop = opt(c, "add_user_property");

	if (e->client_id && in_list(opt(c, "kick_on_publish_topic"), e->topic)) {
		p->api->kick_client(p->self, e->client_id, false);
		field(l, "kicked", e->client_id);
	}
	if (in_list(opt(c, "drop_in_topic"), e->topic)) {
		e->reason = MQTT_RC_QUOTA_EXCEEDED;
		return MIDGE_DENY;
	}
	if (!w && ((from && to) || suffix || prop)) {
		field(l, "error", "no_worker_data");
		return MIDGE_ALLOW;
	}
	if (from && to && strcmp(e->topic, from) == 0) {
		size_t n = strlen(to) + 1;

		if (!reserve((void **)&w->topic, &w->topic_cap, n))
			return MIDGE_ERR_NOMEM;
		memcpy(w->topic, to, n);
		e->topic = w->topic;
		field(l, "rewritten", e->topic);
	}
	if (suffix) {
		size_t n = strlen(suffix);

		if (!reserve((void **)&w->payload, &w->payload_cap, e->payload_len + n + 1))
			return MIDGE_ERR_NOMEM;
		if (e->payload_len)
			memmove(w->payload, e->payload, e->payload_len);
		memcpy(w->payload + e->payload_len, suffix, n);
		e->payload = w->payload;
		e->payload_len += (uint32_t)n;
	}
	if (prop && strchr(prop, '=')) {
		const char *eq = strchr(prop, '=');
		size_t n = (size_t)e->property_count + 1;
		struct midge_property *props;

		if (!reserve((void **)&w->props, &w->props_cap, n * sizeof(*w->props)))
			return MIDGE_ERR_NOMEM;
		props = w->props;
		if (e->property_count)
			memmove(props, e->properties, e->property_count * sizeof(*props));
		props[n - 1] = (struct midge_property){
			.identifier = MQTT_PROP_USER_PROPERTY,
			.name = prop,
			.name_len = (uint32_t)(eq - prop),
			.value = eq + 1,
			.value_len = (uint32_t)strlen(eq + 1),
		};
		e->properties = props;
		e->property_count = (uint32_t)n;
	}
	return MIDGE_ALLOW;
}

static int on_message(struct probe *p, const struct probe_conf *c, struct worker *w,
		      struct midge_evt_message *e)
{
	int event = (int)e->h.event;
	struct line l;
	int rc = MIDGE_ALLOW;

	line_start(&l, event_names[event]);
	field(&l, "id", e->client_id);
	field(&l, "user", e->username);
	field(&l, "topic", e->topic);
	field_num(&l, "qos", e->qos);
	field_num(&l, "retain", e->retain);
	field_bytes(&l, "payload", e->payload, e->payload ? e->payload_len : 0);
	field_num(&l, "properties", e->property_count);
	for (uint32_t i = 0; e->properties && i < e->property_count; i++) {
		const struct midge_property *pr = &e->properties[i];

		if (pr->identifier == MQTT_PROP_USER_PROPERTY) {
			put(&l, " up=", 4);
			put_escaped(&l, pr->name, pr->name_len);
			put(&l, ":", 1);
			put_escaped(&l, pr->value, pr->value_len);
		}
	}
	if (event == MIDGE_EVT_MESSAGE_IN) {
		rc = rewrite_in(p, c, w, e, &l);
	} else if (event == MIDGE_EVT_MESSAGE_OUT) {
		if (in_list(opt(c, "deny_out_topic"), e->topic) ||
		    (e->client_id && in_list(opt(c, "deny_out_client"), e->client_id)))
			rc = MIDGE_DENY;
	} else if (c->deny_will) { /* WILL */
		rc = MIDGE_DENY;
	}
	field(&l, "result", decision_name(rc));
	emit(p, &l);
	return rc;
}

static int on_client(struct probe *p, const struct probe_conf *c, struct midge_evt_client *e)
{
	const char *topic = opt(c, "publish_on_connect");
	struct line l;

	if (e->h.event == MIDGE_EVT_CONNECT) {
		line_start(&l, "connect");
		field(&l, "id", e->client_id);
		field(&l, "user", e->username);
		field_num(&l, "session_present", e->session_present);
		if (e->client) {
			field_num(&l, "protocol", (unsigned long long)p->api->client_protocol(e->client));
			field_num(&l, "listener", (unsigned long long)p->api->client_listener_port(e->client));
		}
	} else {
		line_start(&l, "disconnect");
		field(&l, "id", e->client_id);
		field(&l, "user", e->username);
		field_num(&l, "will_sent", e->will_sent);
		field_num(&l, "reason", e->reason);
	}
	emit(p, &l);
	if (e->h.event == MIDGE_EVT_CONNECT && topic && *topic) {
		char hello[512];
		int n = snprintf(hello, sizeof(hello), "hello %s", e->client_id ? e->client_id : "");
		size_t len = n < 0 ? 0 : (size_t)n >= sizeof(hello) ? sizeof(hello) - 1 : (size_t)n;
		int rc = p->api->publish(p->self, topic, hello, (uint32_t)len, 0, false, NULL, 0);

		line_start(&l, "published");
		field(&l, "topic", topic);
		field(&l, "rc", rc == MIDGE_OK ? "ok" : "error");
		emit(p, &l);
	}
	return MIDGE_OK;
}

static int on_subscribe(struct probe *p, struct midge_evt_subscribe *e)
{
	struct line l;

	line_start(&l, e->h.event == MIDGE_EVT_SUBSCRIBE ? "subscribe" : "unsubscribe");
	field(&l, "id", e->client ? p->api->client_id(e->client) : NULL);
	field(&l, "filter", e->filter);
	if (e->h.event == MIDGE_EVT_SUBSCRIBE) {
		field_num(&l, "qos", e->qos);
		field_num(&l, "options", e->options);
		field_num(&l, "subscription_id", e->subscription_id);
	}
	emit(p, &l);
	return MIDGE_OK;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int on_psk(struct probe *p, const struct probe_conf *c, struct midge_evt_psk_key *e)
{
	const char *identity = opt(c, "psk_identity"), *hex = opt(c, "psk_key");
	struct line l;
	int rc = MIDGE_DEFER;

	line_start(&l, "psk_key");
	field(&l, "identity", e->identity);
	field(&l, "hint", e->hint);
	field_num(&l, "port", (unsigned long long)e->listener_port);
	if (identity && hex && e->identity && strcmp(identity, e->identity) == 0) {
		size_t n = strlen(hex) / 2;

		rc = MIDGE_DENY; /* a key we cannot give is a refusal, not "ask someone else" */
		if (strlen(hex) % 2 == 0 && n > 0 && n <= e->key_max) {
			rc = MIDGE_ALLOW;
			for (size_t i = 0; i < n; i++) {
				int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

				if (hi < 0 || lo < 0) {
					rc = MIDGE_DENY;
					break;
				}
				e->key[i] = (uint8_t)(hi << 4 | lo);
			}
			e->key_len = rc == MIDGE_ALLOW ? (uint32_t)n : 0;
		}
	}
	field(&l, "result", decision_name(rc));
	emit(p, &l);
	return rc;
}

static int on_bridge(struct probe *p, const struct probe_conf *c, struct midge_evt_bridge *e)
{
	static const char *const what[] = {"?", "connecting", "state", "message"};
	struct line l;

	line_start(&l, "bridge");
	field(&l, "name", e->name);
	field(&l, "what", e->what >= 1 && e->what <= 3 ? what[e->what] : "?");
	if (e->what == MIDGE_BRIDGE_CONNECTING) {
		field(&l, "address", e->address);
		field_num(&l, "port", (unsigned long long)e->port);
	} else if (e->what == MIDGE_BRIDGE_STATE) {
		field_num(&l, "connected", e->connected);
	} else {
		const char *from = opt(c, "bridge_rewrite_from"), *to = opt(c, "bridge_rewrite_to");
		field(&l, "direction", e->outgoing ? "out" : "in");
		field(&l, "topic", e->topic);
		if (in_list(opt(c, "bridge_drop_topic"), e->topic)) {
			field(&l, "result", "deny");
			emit(p, &l);
			return MIDGE_DENY;
		}
		if (from && to && e->topic && strcmp(e->topic, from) == 0) {
			e->topic = to; /* the options outlive the call */
			field(&l, "rewritten", to);
		}
	}
	emit(p, &l);
	return MIDGE_ALLOW;
}

static void on_timer(void *arg)
{
	struct worker *w = arg;
	struct line l;

	w->timer = 0;
	line_start(&l, "timer");
	field_num(&l, "worker", w->index);
	emit(w->p, &l);
}

static int on_worker(struct probe *p, const struct probe_conf *c, struct midge_evt_worker *e)
{
	struct worker *w = e->h.worker_data;
	struct line l;

	line_start(&l, e->h.event == MIDGE_EVT_WORKER_START ? "worker_start" : "worker_stop");
	field_num(&l, "worker", e->h.worker);
	field_num(&l, "count", e->worker_count);
	emit(p, &l);
	if (e->h.event == MIDGE_EVT_WORKER_START) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return MIDGE_ERR_NOMEM;
		w->p = p;
		w->index = e->h.worker;
		if (c->timer_ms)
			w->timer = p->api->timer_start(p->self, c->timer_ms, on_timer, w);
		e->h.worker_data = w;
		return MIDGE_OK;
	}
	if (w) {
		if (w->timer) /* same thread as the timer: cancelling here is allowed */
			p->api->timer_cancel(p->self, w->timer);
		free(w->topic);
		free(w->payload);
		free(w->props);
		free(w);
		e->h.worker_data = NULL;
	}
	return MIDGE_OK;
}

static int on_reload(struct probe *p, struct midge_evt_reload *e)
{
	struct probe_conf *next, *old;
	const char *why;
	struct line l;

	line_start(&l, "reload");
	for (int i = 0; i < e->option_count; i++) {
		char key[128];

		snprintf(key, sizeof(key), "opt_%s", e->options[i].key);
		field(&l, key, e->options[i].value);
	}
	emit(p, &l);
	next = conf_new(e->options, e->option_count, &why);
	if (!next) {
		p->api->log(p->self, MIDGE_LOG_WARNING, "reload: %s; keeping the old options", why);
		return MIDGE_ERR_INVAL;
	}
	pthread_rwlock_wrlock(&p->lock);
	old = p->conf;
	p->conf = next;
	pthread_rwlock_unlock(&p->lock);
	conf_free(old);
	return MIDGE_OK;
}

/* The one callback of every event: the event id says which struct data is. */
static int on_event(int event, void *data, void *userdata)
{
	struct probe *p = userdata;
	struct midge_evt_header *h = data;
	const struct probe_conf *c;
	int rc = MIDGE_OK;

	if (event == MIDGE_EVT_RELOAD) /* takes the write lock itself */
		return on_reload(p, data);
	pthread_rwlock_rdlock(&p->lock);
	c = p->conf;
	switch (event) {
	case MIDGE_EVT_BASIC_AUTH:
		rc = on_basic_auth(p, c, data);
		break;
	case MIDGE_EVT_EXT_AUTH_START:
	case MIDGE_EVT_EXT_AUTH_CONTINUE:
		rc = on_ext_auth(p, c, data);
		break;
	case MIDGE_EVT_ACL_CHECK:
		rc = on_acl(p, c, data);
		break;
	case MIDGE_EVT_MESSAGE_IN:
	case MIDGE_EVT_MESSAGE_OUT:
	case MIDGE_EVT_WILL:
		rc = on_message(p, c, h->worker_data, data);
		break;
	case MIDGE_EVT_CONNECT:
	case MIDGE_EVT_DISCONNECT:
		rc = on_client(p, c, data);
		break;
	case MIDGE_EVT_SUBSCRIBE:
	case MIDGE_EVT_UNSUBSCRIBE:
		rc = on_subscribe(p, data);
		break;
	case MIDGE_EVT_TICK: {
		struct midge_evt_tick *t = data;
		struct line l;

		line_start(&l, "tick");
		field_num(&l, "worker", t->h.worker);
		emit(p, &l);
		if (c->tick_ms)
			t->next_ms = c->tick_ms;
		break;
	}
	case MIDGE_EVT_BRIDGE:
		rc = on_bridge(p, c, data);
		break;
	case MIDGE_EVT_PSK_KEY:
		rc = on_psk(p, c, data);
		break;
	case MIDGE_EVT_WORKER_START:
	case MIDGE_EVT_WORKER_STOP:
		rc = on_worker(p, c, data);
		break;
	default:
		break;
	}
	pthread_rwlock_unlock(&p->lock);
	return rc;
}

/* ---- Life ---------------------------------------------------------------------- */

static void probe_free(struct probe *p)
{
	if (p->log_fd >= 0)
		close(p->log_fd);
	while (p->queue) {
		struct pending *next = p->queue->next;

		free(p->queue);
		p->queue = next;
	}
	conf_free(p->conf);
	pthread_cond_destroy(&p->qcond);
	pthread_mutex_destroy(&p->qlock);
	pthread_rwlock_destroy(&p->lock);
	free(p);
}

MIDGE_PLUGIN_EXPORT int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
					  const struct midge_option *options, int option_count,
					  void **plugin_data)
{
	struct probe *p = calloc(1, sizeof(*p));
	pthread_condattr_t cattr;
	const char *why, *file;
	struct line l;

	if (!p)
		return MIDGE_ERR_NOMEM;
	p->self = self;
	p->api = api;
	p->log_fd = -1;
	pthread_rwlock_init(&p->lock, NULL);
	pthread_mutex_init(&p->qlock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC); /* due times are monotonic */
	pthread_cond_init(&p->qcond, &cattr);
	pthread_condattr_destroy(&cattr);

	p->conf = conf_new(options, option_count, &why);
	if (!p->conf) {
		api->log(self, MIDGE_LOG_ERR, "bad options: %s", why);
		probe_free(p);
		return MIDGE_ERR_INVAL;
	}
	if (p->conf->fail_init) {
		api->log(self, MIDGE_LOG_ERR, "fail_init is set: refusing to start (a test)");
		probe_free(p);
		return MIDGE_ERR_INVAL;
	}
	file = opt(p->conf, "log_file");
	if (file) {
		p->log_fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (p->log_fd < 0) {
			api->log(self, MIDGE_LOG_ERR, "cannot open log_file %s: %s", file, strerror(errno));
			probe_free(p);
			return MIDGE_ERR_INVAL;
		}
	}
	for (int ev = 1; ev < MIDGE_EVT_LIMIT; ev++) {
		int rc;

		if (!event_names[ev])
			continue;
		rc = api->register_event(self, ev, on_event, p);
		if (rc == MIDGE_ERR_UNSUPPORTED) {
			api->log(self, MIDGE_LOG_WARNING, "this broker has no event %s", event_names[ev]);
		} else if (rc != MIDGE_OK) {
			api->log(self, MIDGE_LOG_ERR, "register_event(%s) failed: %d", event_names[ev], rc);
			probe_free(p);
			return rc < 0 ? rc : MIDGE_ERR_STATE;
		}
	}
	if (pthread_create(&p->thread, NULL, completer, p) != 0) {
		probe_free(p);
		return MIDGE_ERR_NOMEM;
	}
	line_start(&l, "init");
	field_num(&l, "abi", api->abi_version);
	field(&l, "broker", api->broker_version);
	field(&l, "name", api->plugin_name(self));
	for (int i = 0; i < option_count; i++) {
		char key[128];

		snprintf(key, sizeof(key), "opt_%s", options[i].key);
		field(&l, key, options[i].value);
	}
	emit(p, &l);
	*plugin_data = p;
	return MIDGE_OK;
}

MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
					      int option_count)
{
	struct probe *p = plugin_data;
	struct line l;

	(void)options;
	(void)option_count;
	if (!p)
		return;
	pthread_mutex_lock(&p->qlock);
	p->stopping = true;
	pthread_cond_signal(&p->qcond);
	pthread_mutex_unlock(&p->qlock);
	pthread_join(p->thread, NULL);
	line_start(&l, "cleanup");
	emit(p, &l);
	probe_free(p);
}
