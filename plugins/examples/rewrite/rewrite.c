/*
 * rewrite.c: an example midge plugin that changes messages as they come in
 * (MIDGE_EVT_MESSAGE_IN): it moves topics from one prefix to another,
 * upper-cases payloads under a prefix and drops messages under a prefix.
 * The new topic and payload live in buffers of the worker thread
 * (h.worker_data): no locks, and nothing changes owner, since the broker
 * copies them when the callback returns. Build it with
 *     cc $(pkg-config --cflags midge-plugin) -shared -fPIC -o rewrite.so rewrite.c
 */
#define _POSIX_C_SOURCE 200809L

#include <midge/plugin.h>

#include <string.h>

MIDGE_PLUGIN_DECLARE_VERSION()

/* The options; NULL when not given. Read-only after init, so workers share them freely. */
struct rewrite {
	const struct midge_broker_api *api;
	char *from_prefix;
	char *to_prefix;
	char *upper_payload_prefix;
	char *drop_prefix;
};

/* One per worker thread: only that thread touches it. */
struct worker_bufs {
	char *topic;
	size_t topic_cap;
	char *payload;
	size_t payload_cap;
};

static bool starts_with(const char *s, const char *prefix)
{
	return prefix && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Grows a worker buffer; it is reused for every message, so this rarely allocates. */
static bool reserve(const struct midge_broker_api *api, char **buf, size_t *cap, size_t need)
{
	char *grown;

	if (need <= *cap)
		return true;
	grown = api->realloc(*buf, need);
	if (!grown)
		return false;
	*buf = grown;
	*cap = need;
	return true;
}

static int on_worker(int event, void *data, void *userdata)
{
	struct midge_evt_worker *e = data;
	struct rewrite *st = userdata;
	struct worker_bufs *w = e->h.worker_data;

	if (event == MIDGE_EVT_WORKER_START) {
		e->h.worker_data = st->api->calloc(1, sizeof(struct worker_bufs));
		return e->h.worker_data ? MIDGE_OK : MIDGE_ERR_NOMEM;
	}
	if (w) { /* WORKER_STOP: the last event this thread sends us */
		st->api->free(w->topic);
		st->api->free(w->payload);
		st->api->free(w);
		e->h.worker_data = NULL;
	}
	return MIDGE_OK;
}

static int on_message_in(int event, void *data, void *userdata)
{
	struct midge_evt_message *e = data;
	struct rewrite *st = userdata;
	struct worker_bufs *w = e->h.worker_data;
	/* Every prefix is compared with the topic as it was published. */
	const char *topic = e->topic;
	bool move = starts_with(topic, st->from_prefix);
	bool upper = starts_with(topic, st->upper_payload_prefix) && e->payload_len > 0;

	(void)event;
	if (starts_with(topic, st->drop_prefix)) {
		e->reason = MQTT_RC_PAYLOAD_FORMAT_INVALID; /* what an MQTT 5 publisher reads */
		return MIDGE_DENY;
	}
	if (!move && !upper)
		return MIDGE_DEFER; /* nothing to do: DEFER says "no opinion" */
	if (!w)
		return MIDGE_ERR_STATE; /* no WORKER_START on this thread: a broker bug */

	if (move) {
		const char *rest = topic + strlen(st->from_prefix);
		size_t to_len = strlen(st->to_prefix), rest_len = strlen(rest);

		if (to_len + rest_len == 0) { /* "legacy/" -> "" on the topic "legacy/" itself */
			e->reason = MQTT_RC_TOPIC_NAME_INVALID;
			return MIDGE_DENY;
		}
		/* A failed allocation is an error (treated as DENY): passing the
		 * message on under its old topic would break the promise of the rule. */
		if (!reserve(st->api, &w->topic, &w->topic_cap, to_len + rest_len + 1))
			return MIDGE_ERR_NOMEM;
		memcpy(w->topic, st->to_prefix, to_len);
		memcpy(w->topic + to_len, rest, rest_len + 1);
		e->topic = w->topic; /* the broker checks the new topic against the ACL again */
	}
	if (upper) {
		const char *in = e->payload;

		if (!reserve(st->api, &w->payload, &w->payload_cap, e->payload_len))
			return MIDGE_ERR_NOMEM;
		/* ASCII only: toupper() would depend on the locale and could break
		 * UTF-8 sequences; bytes above 0x7f pass unchanged. */
		for (uint32_t i = 0; i < e->payload_len; i++)
			w->payload[i] = in[i] >= 'a' && in[i] <= 'z' ? (char)(in[i] - 'a' + 'A') : in[i];
		e->payload = w->payload;
	}
	/* For MESSAGE_IN, ALLOW and DEFER both mean "go on" (the next plugin
	 * sees the message as we left it); DENY would drop it. */
	return MIDGE_ALLOW;
}

static void rewrite_free(struct rewrite *st)
{
	st->api->free(st->from_prefix);
	st->api->free(st->to_prefix);
	st->api->free(st->upper_payload_prefix);
	st->api->free(st->drop_prefix);
	st->api->free(st);
}

MIDGE_PLUGIN_EXPORT int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
					  const struct midge_option *options, int option_count,
					  void **plugin_data)
{
	struct rewrite *st = api->calloc(1, sizeof(*st));
	int rc = MIDGE_OK;

	if (!st)
		return MIDGE_ERR_NOMEM;
	st->api = api;
	for (int i = 0; i < option_count && rc == MIDGE_OK; i++) {
		const char *key = options[i].key, *value = options[i].value ? options[i].value : "";
		char **slot = strcmp(key, "from_prefix") == 0            ? &st->from_prefix
			      : strcmp(key, "to_prefix") == 0            ? &st->to_prefix
			      : strcmp(key, "upper_payload_prefix") == 0 ? &st->upper_payload_prefix
			      : strcmp(key, "drop_prefix") == 0          ? &st->drop_prefix
									 : NULL;

		if (!slot) {
			api->log(self, MIDGE_LOG_ERR, "unknown option '%s'", key);
			rc = MIDGE_ERR_INVAL;
		} else {
			api->free(*slot); /* given twice: the last one wins */
			*slot = api->strdup(value);
			if (!*slot)
				rc = MIDGE_ERR_NOMEM;
		}
	}
	/* Check what can be checked now rather than fail on every message later. */
	if (rc == MIDGE_OK && !st->from_prefix != !st->to_prefix) {
		api->log(self, MIDGE_LOG_ERR, "from_prefix and to_prefix go together");
		rc = MIDGE_ERR_INVAL;
	}
	if (rc == MIDGE_OK && st->to_prefix && strpbrk(st->to_prefix, "+#")) {
		api->log(self, MIDGE_LOG_ERR, "to_prefix '%s' has a wildcard", st->to_prefix);
		rc = MIDGE_ERR_INVAL;
	}
	if (rc == MIDGE_OK)
		rc = api->register_event(self, MIDGE_EVT_MESSAGE_IN, on_message_in, st);
	/* WORKER_START / WORKER_STOP bring the per-worker buffers to life and end them. */
	if (rc == MIDGE_OK)
		rc = api->register_event(self, MIDGE_EVT_WORKER_START, on_worker, st);
	if (rc == MIDGE_OK)
		rc = api->register_event(self, MIDGE_EVT_WORKER_STOP, on_worker, st);
	if (rc != MIDGE_OK) {
		rewrite_free(st);
		return rc;
	}
	*plugin_data = st;
	return MIDGE_OK;
}

MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
					      int option_count)
{
	(void)options;
	(void)option_count;
	rewrite_free(plugin_data);
}
