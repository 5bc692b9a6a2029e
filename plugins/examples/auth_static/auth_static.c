/*
 * auth_static.c: an example midge plugin that checks user names and
 * passwords against a fixed list given in its options (user_<name>: <password>).
 *
 * It shows the smallest useful plugin: the version symbol, init that reads
 * options and registers one event, a BASIC_AUTH callback that answers ALLOW,
 * DENY or DEFER, and cleanup. Build it with
 *     cc $(pkg-config --cflags midge-plugin) -shared -fPIC -o auth_static.so auth_static.c
 */
#define _POSIX_C_SOURCE 200809L

#include <midge/plugin.h>

#include <string.h>

/* The broker asks which ABI we speak; this macro answers "the one of our header". */
MIDGE_PLUGIN_DECLARE_VERSION()

#define USER_PREFIX "user_"

struct user {
	char *name;
	char *password;
	size_t password_len;
};

struct auth_static {
	const struct midge_broker_api *api;
	struct user *users;
	int count;
};

/*
 * Compares without stopping at the first difference, so the time taken does
 * not tell an attacker how much of a guess was right. It depends only on the
 * length of what the client sent, which the client knows anyway.
 */
static bool same_password(const struct user *u, const void *given, size_t given_len)
{
	const unsigned char *a = (const unsigned char *)u->password, *b = given;
	unsigned diff = u->password_len != given_len;

	for (size_t i = 0; i < given_len; i++)
		diff |= (unsigned)((i < u->password_len ? a[i] : 0) ^ b[i]);
	return diff == 0;
}

static int on_basic_auth(int event, void *data, void *userdata)
{
	struct midge_evt_basic_auth *e = data;
	struct auth_static *st = userdata;

	(void)event;
	/* No user name: not ours to judge. DEFER lets a later plugin, the
	 * password_file or allow_anonymous decide. */
	if (!e->username)
		return MIDGE_DEFER;
	for (int i = 0; i < st->count; i++) {
		if (strcmp(st->users[i].name, e->username) != 0)
			continue;
		/* A known user is ours: a wrong password is a firm no, not a DEFER,
		 * or a password file further down could let the name in anyway. */
		if (e->password && same_password(&st->users[i], e->password, e->password_len))
			return MIDGE_ALLOW;
		return MIDGE_DENY; /* e->reason stays 0x86, bad user name or password */
	}
	return MIDGE_DEFER; /* someone we do not know: maybe the next check does */
}

static void free_all(struct auth_static *st)
{
	for (int i = 0; i < st->count; i++) {
		st->api->free(st->users[i].name);
		st->api->free(st->users[i].password);
	}
	st->api->free(st->users);
	st->api->free(st);
}

MIDGE_PLUGIN_EXPORT int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
					  const struct midge_option *options, int option_count,
					  void **plugin_data)
{
	struct auth_static *st = api->calloc(1, sizeof(*st));
	int rc;

	if (!st)
		return MIDGE_ERR_NOMEM;
	st->api = api;
	st->users = api->calloc(option_count > 0 ? (size_t)option_count : 1, sizeof(*st->users));
	if (!st->users) {
		api->free(st);
		return MIDGE_ERR_NOMEM;
	}
	/* The options are only lent for the duration of init: keep copies. */
	for (int i = 0; i < option_count; i++) {
		const char *key = options[i].key;
		struct user *u = &st->users[st->count];

		if (strncmp(key, USER_PREFIX, strlen(USER_PREFIX)) != 0 || !key[strlen(USER_PREFIX)]) {
			api->log(self, MIDGE_LOG_WARNING, "ignoring option '%s' (expected user_<name>)", key);
			continue;
		}
		u->name = api->strdup(key + strlen(USER_PREFIX));
		u->password = api->strdup(options[i].value ? options[i].value : "");
		st->count++;
		if (!u->name || !u->password) {
			free_all(st);
			return MIDGE_ERR_NOMEM;
		}
		u->password_len = strlen(u->password);
	}
	if (st->count == 0)
		api->log(self, MIDGE_LOG_WARNING, "no user_<name> options: every login is deferred");

	rc = api->register_event(self, MIDGE_EVT_BASIC_AUTH, on_basic_auth, st);
	if (rc != MIDGE_OK) {
		free_all(st);
		return rc; /* refusing to start beats running without the check */
	}
	api->log(self, MIDGE_LOG_INFO, "%d static user(s)", st->count);
	*plugin_data = st;
	return MIDGE_OK;
}

MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
					      int option_count)
{
	(void)options;
	(void)option_count;
	free_all(plugin_data);
}
