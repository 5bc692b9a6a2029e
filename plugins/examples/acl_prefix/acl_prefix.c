/*
 * acl_prefix.c: an example midge plugin giving every client a private
 * topic tree, <prefix>/<client id>/# (option `prefix`, default "clients").
 *
 * Inside its tree a client may publish, subscribe and receive: ALLOW.
 * Everything else gets DEFER, so the plugin composes with others: a later
 * plugin or the acl_file decides the rest (and when all of them defer the
 * answer is DENY). Build it with
 *     cc $(pkg-config --cflags midge-plugin) -shared -fPIC -o acl_prefix.so acl_prefix.c
 */
#define _POSIX_C_SOURCE 200809L

#include <midge/plugin.h>

#include <string.h>

MIDGE_PLUGIN_DECLARE_VERSION()

struct acl_prefix {
	const struct midge_broker_api *api;
	char *prefix; /* without a trailing '/' */
};

/*
 * Whether `topic` lies in <prefix>/<id>, the level itself or below it.
 * Plain string logic serves topics and filters alike: wildcards can only
 * come after <prefix>/<id>/, so a filter that starts there cannot match
 * anything outside the tree.
 */
static bool in_tree(const char *topic, const char *prefix, const char *id)
{
	size_t plen = strlen(prefix), ilen = strlen(id);

	if (strncmp(topic, prefix, plen) != 0 || topic[plen] != '/')
		return false;
	topic += plen + 1;
	if (strncmp(topic, id, ilen) != 0)
		return false;
	return topic[ilen] == '\0' || topic[ilen] == '/';
}

static int on_acl_check(int event, void *data, void *userdata)
{
	struct midge_evt_acl *e = data;
	struct acl_prefix *st = userdata;

	(void)event;
	/* An id with wildcards or '/' would turn the client's tree into a filter
	 * over other clients' trees (id "+" would match every client), and an
	 * empty id into "clients//...": such clients get no tree at all. */
	if (!e->client_id || !*e->client_id || strpbrk(e->client_id, "+#/"))
		return MIDGE_DEFER;
	if (in_tree(e->topic, st->prefix, e->client_id))
		return MIDGE_ALLOW; /* publish, subscribe, unsubscribe and deliver alike */
	return MIDGE_DEFER;         /* not ours: let the next check decide */
}

MIDGE_PLUGIN_EXPORT int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
					  const struct midge_option *options, int option_count,
					  void **plugin_data)
{
	const char *prefix = "clients";
	struct acl_prefix *st;
	size_t len;
	int rc;

	for (int i = 0; i < option_count; i++) {
		if (strcmp(options[i].key, "prefix") == 0 && options[i].value) {
			prefix = options[i].value;
		} else {
			api->log(self, MIDGE_LOG_ERR, "unknown option '%s' (only 'prefix')", options[i].key);
			return MIDGE_ERR_INVAL; /* a typo here would silently change access */
		}
	}
	/* The tree must be a plain topic: a wildcard in it would widen access. */
	if (!*prefix || !api->topic_valid(prefix)) {
		api->log(self, MIDGE_LOG_ERR, "prefix '%s' is not a topic name", prefix);
		return MIDGE_ERR_INVAL;
	}
	st = api->calloc(1, sizeof(*st));
	if (!st)
		return MIDGE_ERR_NOMEM;
	st->api = api;
	st->prefix = api->strdup(prefix);
	if (!st->prefix) {
		api->free(st);
		return MIDGE_ERR_NOMEM;
	}
	len = strlen(st->prefix);
	while (len > 0 && st->prefix[len - 1] == '/') /* "clients/" means "clients" */
		st->prefix[--len] = '\0';
	if (len == 0) {
		api->log(self, MIDGE_LOG_ERR, "prefix '%s' is empty", prefix);
		api->free(st->prefix);
		api->free(st);
		return MIDGE_ERR_INVAL;
	}

	rc = api->register_event(self, MIDGE_EVT_ACL_CHECK, on_acl_check, st);
	if (rc != MIDGE_OK) {
		api->free(st->prefix);
		api->free(st);
		return rc;
	}
	api->log(self, MIDGE_LOG_INFO, "clients own %s/<client id>/#", st->prefix);
	*plugin_data = st;
	return MIDGE_OK;
}

MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
					      int option_count)
{
	struct acl_prefix *st = plugin_data;

	(void)options;
	(void)option_count;
	st->api->free(st->prefix);
	st->api->free(st);
}
