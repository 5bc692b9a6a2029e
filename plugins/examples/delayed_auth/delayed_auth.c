/*
 * delayed_auth.c: an example midge plugin that answers logins later, from its
 * own thread, as a plugin asking a remote service would: BASIC_AUTH returns
 * MIDGE_DELAYED at once and queues the request id, user name and a copy of
 * the password; a helper thread waits `delay_ms` (the "network"), checks the
 * user_<name>: <password> options and calls api->complete(). The client waits
 * meanwhile; the worker thread does not. Build it with
 *   cc $(pkg-config --cflags midge-plugin) -shared -fPIC -pthread -o delayed_auth.so delayed_auth.c
 */
#define _POSIX_C_SOURCE 200809L

#include <midge/plugin.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

MIDGE_PLUGIN_DECLARE_VERSION()

#define USER_PREFIX "user_"

struct user {
	char *name;
	char *password;
	size_t password_len;
};

/* One login on its way to an answer. Everything in it is our own copy:
 * what the broker passed to the callback is only lent until it returns. */
struct job {
	struct job *next;
	uint64_t request;     /* h.request, the id complete() needs */
	char *username;
	char *password;       /* NULL when the CONNECT had none */
	size_t password_len;
	struct timespec due;  /* CLOCK_MONOTONIC */
};

struct delayed_auth {
	midge_plugin *self;
	const struct midge_broker_api *api;
	struct user *users;   /* read-only after init: shared by all threads without a lock */
	int count;
	unsigned delay_ms;
	char *never_answer_user;

	/* The queue between the worker threads (producers) and our thread. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head, *tail;
	bool stopping;
	bool thread_started;
	pthread_t thread;
};

/* Constant time in the contents: see auth_static.c. */
static bool same_password(const struct user *u, const char *given, size_t given_len)
{
	const unsigned char *a = (const unsigned char *)u->password, *b = (const unsigned char *)given;
	unsigned diff = u->password_len != given_len;

	for (size_t i = 0; i < given_len; i++)
		diff |= (unsigned)((i < u->password_len ? a[i] : 0) ^ b[i]);
	return diff == 0;
}

static void job_free(const struct midge_broker_api *api, struct job *j)
{
	if (j->password) /* do not leave passwords lying around in freed memory */
		memset(j->password, 0, j->password_len);
	api->free(j->password);
	api->free(j->username);
	api->free(j);
}

/*
 * complete() can only say ALLOW or DENY: unlike the callback, a late answer
 * cannot DEFER to the next plugin. So here an unknown user is a DENY.
 */
static int decide(const struct delayed_auth *st, const struct job *j)
{
	for (int i = 0; i < st->count; i++)
		if (strcmp(st->users[i].name, j->username) == 0)
			return j->password && same_password(&st->users[i], j->password, j->password_len)
				       ? MIDGE_ALLOW
				       : MIDGE_DENY;
	return MIDGE_DENY;
}

static void *answer_thread(void *arg)
{
	struct delayed_auth *st = arg;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		struct job *j;

		while (!st->stopping && !st->head)
			pthread_cond_wait(&st->wake, &st->lock);
		if (st->stopping)
			break;
		/* Every job waits the same delay, so the oldest is due first. */
		j = st->head;
		if (pthread_cond_timedwait(&st->wake, &st->lock, &j->due) != ETIMEDOUT)
			continue; /* woken early (a new job or stopping): look again */
		st->head = j->next;
		if (!st->head)
			st->tail = NULL;
		/* Never hold our lock while calling into the broker. */
		pthread_mutex_unlock(&st->lock);
		st->api->complete(j->request, decide(st, j), NULL);
		job_free(st->api, j);
		pthread_mutex_lock(&st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static int on_basic_auth(int event, void *data, void *userdata)
{
	struct midge_evt_basic_auth *e = data;
	struct delayed_auth *st = userdata;
	const struct midge_broker_api *api = st->api;
	struct job *j;

	(void)event;
	if (!e->username)
		return MIDGE_DEFER; /* anonymous: not for us */
	if (st->never_answer_user && strcmp(e->username, st->never_answer_user) == 0) {
		/* A test aid: the broker's plugin_timeout has to answer this one. */
		api->log(st->self, MIDGE_LOG_DEBUG, "never answering %s (never_answer_user)", e->username);
		return MIDGE_DELAYED;
	}
	j = api->calloc(1, sizeof(*j));
	if (!j)
		return MIDGE_ERR_NOMEM; /* an error counts as DENY */
	j->request = e->h.request;
	j->username = api->strdup(e->username);
	if (e->password) {
		j->password = api->malloc(e->password_len ? e->password_len : 1);
		if (j->password)
			memcpy(j->password, e->password, e->password_len);
		j->password_len = e->password_len;
	}
	if (!j->username || (e->password && !j->password)) {
		job_free(api, j);
		return MIDGE_ERR_NOMEM;
	}
	clock_gettime(CLOCK_MONOTONIC, &j->due);
	j->due.tv_sec += st->delay_ms / 1000;
	j->due.tv_nsec += (long)(st->delay_ms % 1000) * 1000000L;
	if (j->due.tv_nsec >= 1000000000L) {
		j->due.tv_sec++;
		j->due.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&st->lock);
	if (st->tail)
		st->tail->next = j;
	else
		st->head = j;
	st->tail = j;
	pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
	/* From here on the request belongs to our thread: exactly one complete() will follow. */
	return MIDGE_DELAYED;
}

static void delayed_free(struct delayed_auth *st)
{
	const struct midge_broker_api *api = st->api;

	while (st->head) {
		struct job *next = st->head->next;

		job_free(api, st->head);
		st->head = next;
	}
	for (int i = 0; i < st->count; i++) {
		api->free(st->users[i].name);
		api->free(st->users[i].password);
	}
	api->free(st->users);
	api->free(st->never_answer_user);
	pthread_cond_destroy(&st->wake);
	pthread_mutex_destroy(&st->lock);
	api->free(st);
}

static int read_options(struct delayed_auth *st, const struct midge_option *options, int count)
{
	const struct midge_broker_api *api = st->api;

	st->delay_ms = 50;
	st->users = api->calloc(count > 0 ? (size_t)count : 1, sizeof(*st->users));
	if (!st->users)
		return MIDGE_ERR_NOMEM;
	for (int i = 0; i < count; i++) {
		const char *key = options[i].key, *value = options[i].value ? options[i].value : "";

		if (strcmp(key, "delay_ms") == 0) {
			char *end;
			unsigned long ms = strtoul(value, &end, 10);

			if (end == value || *end || ms > 600000) {
				api->log(st->self, MIDGE_LOG_ERR, "delay_ms '%s' is not a number of milliseconds",
					 value);
				return MIDGE_ERR_INVAL;
			}
			st->delay_ms = (unsigned)ms;
		} else if (strcmp(key, "never_answer_user") == 0) {
			api->free(st->never_answer_user);
			st->never_answer_user = api->strdup(value);
			if (!st->never_answer_user)
				return MIDGE_ERR_NOMEM;
		} else if (strncmp(key, USER_PREFIX, strlen(USER_PREFIX)) == 0 && key[strlen(USER_PREFIX)]) {
			struct user *u = &st->users[st->count++];

			u->name = api->strdup(key + strlen(USER_PREFIX));
			u->password = api->strdup(value);
			if (!u->name || !u->password)
				return MIDGE_ERR_NOMEM;
			u->password_len = strlen(u->password);
		} else {
			api->log(st->self, MIDGE_LOG_WARNING, "ignoring unknown option '%s'", key);
		}
	}
	return MIDGE_OK;
}

MIDGE_PLUGIN_EXPORT int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
					  const struct midge_option *options, int option_count,
					  void **plugin_data)
{
	struct delayed_auth *st = api->calloc(1, sizeof(*st));
	pthread_condattr_t attr;
	int rc;

	if (!st)
		return MIDGE_ERR_NOMEM;
	st->self = self;
	st->api = api;
	pthread_mutex_init(&st->lock, NULL);
	/* Due times come from the monotonic clock: a change of the wall clock
	 * must not stretch or skip the delay. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&st->wake, &attr);
	pthread_condattr_destroy(&attr);

	rc = read_options(st, options, option_count);
	if (rc == MIDGE_OK)
		rc = api->register_event(self, MIDGE_EVT_BASIC_AUTH, on_basic_auth, st);
	/* Start the thread last: init has nothing to undo in it when it fails. */
	if (rc == MIDGE_OK && pthread_create(&st->thread, NULL, answer_thread, st) != 0)
		rc = MIDGE_ERR_NOMEM;
	if (rc != MIDGE_OK) {
		delayed_free(st);
		return rc;
	}
	st->thread_started = true;
	api->log(self, MIDGE_LOG_INFO, "%d user(s), answering after %u ms", st->count, st->delay_ms);
	*plugin_data = st;
	return MIDGE_OK;
}

/* Runs after every worker stopped: no new job can arrive, so stop the thread and free. */
MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
					      int option_count)
{
	struct delayed_auth *st = plugin_data;

	(void)options;
	(void)option_count;
	if (st->thread_started) {
		pthread_mutex_lock(&st->lock);
		st->stopping = true;
		pthread_cond_signal(&st->wake);
		pthread_mutex_unlock(&st->lock);
		pthread_join(st->thread, NULL);
	}
	delayed_free(st); /* jobs still queued were for clients that are gone */
}
