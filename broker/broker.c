/*
 * broker.c: ordered start-up and shutdown, signals, configuration reload
 * (see broker.h).
 */
#include "config.h"

#include "broker.h"
#include "cluster.h"

#include "alloc.h"
#include "authpool.h"
#include "plugin.h"
#include "bridge.h"
#include "policy.h"
#include "sdnotify.h"
#include "store.h"
#include "client.h"
#include "conf_reload.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "route.h"
#include "sys.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Signal handlers need to find the broker; this is the only file-level pointer to it. */
static struct broker *signal_target;

static void on_signal(int sig)
{
	struct broker *b = signal_target;
	int saved = errno;

	if (!b)
		return;
	if (sig == SIGHUP)
		b->sig_reload = 1;
	else
		b->sig_stop = 1;
	/* Before the loops run, the flag alone is enough: broker_run looks at it. */
	if (atomic_load(&b->running))
		ev_async_send(&b->workers[0].wake);
	errno = saved;
}

static int install_signals(struct broker *b)
{
	struct sigaction sa = {0};

	signal_target = b;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	return 0;
}

unsigned broker_worker_count(const struct config *cfg)
{
	long n = cfg->workers;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > 256)
		n = 256;
	return (unsigned)n;
}

int broker_init(struct broker *b, struct config *cfg, struct policy *policy,
		struct plugin_host *plugins, const char *config_path, int cli_port, bool verbose)
{
	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->policy = policy;
	b->plugins = plugins;
	plugins->broker = b;
	plugin_api_set_broker(b);
	b->config_path = config_path;
	b->cli_port = cli_port;
	/* Signals are taken from the start: a SIGTERM while the listeners open stops
	 * the broker cleanly instead of killing it. */
	if (install_signals(b) < 0)
		log_err("Error: unable to install signal handlers: %s.", strerror(errno));
	b->verbose = verbose;
	b->start_time = time(NULL);
	pthread_rwlock_init(&b->sub_lock, NULL);
	pthread_rwlock_init(&b->retain_lock, NULL);
	if (subtree_init(&b->subs) < 0 || retain_init(&b->retained) < 0)
		return -1;
	mem_set_limit(cfg->memory_limit);
	if (listeners_open(b) < 0)
		return -1;
	b->authpool = authpool_start(2);
	if (!b->authpool)
		return -1;
	b->nworkers = broker_worker_count(cfg);
	b->workers = mem_calloc(b->nworkers, sizeof(*b->workers));
	if (!b->workers)
		return -1;
	for (unsigned i = 0; i < b->nworkers; i++) {
		if (worker_init(&b->workers[i], b, i) < 0) {
			log_err("Error: unable to start worker %u: %s.", i, strerror(errno));
			return -1;
		}
	}
	/* The cluster follows subscription interest from the first one restored on. */
	if (cfg->cluster.enabled && cluster_start(b) < 0)
		return -1;
	/* Restores sessions into the workers before their threads start; opened, like
	 * the listeners, before privileges are dropped. */
	if (store_open(b) < 0)
		return -1;
	return bridges_init(b);
}

void broker_request_stop(struct broker *b)
{
	struct inbox_item stop = {.kind = INBOX_STOP};

	if (atomic_exchange(&b->stopping, true))
		return;
	for (unsigned i = 0; i < b->nworkers; i++)
		worker_post(&b->workers[i], &stop);
}

static void generation_free(struct generation *g)
{
	if (!g)
		return;
	policy_unref(g->policy);
	config_free(g->cfg);
	mem_free(g->cfg);
	mem_free(g);
}

/* Frees the previous generation once every worker has switched away from it. */
static void release_old_config(struct broker *b)
{
	if (b->gen_old && atomic_load(&b->cfg_switched) == b->nworkers) {
		generation_free(b->gen_old);
		b->gen_old = NULL;
		mem_free(b->gen_next);
		b->gen_next = NULL;
	}
}

static void log_config_error(const struct config_error *e)
{
	if (e->loc.file && e->loc.line > 0)
		log_err("Error: %s:%d: %s", e->loc.file, e->loc.line, e->message);
	else
		log_err("Error: %s", e->message);
}

static void reload(struct broker *b)
{
	struct config *next;
	struct config_diag diag = {0};
	struct inbox_item item = {.kind = INBOX_CONFIG};

	release_old_config(b);
	if (!b->config_path) {
		log_notice("Reload requested, but no configuration file is in use.");
		log_reopen();
		return;
	}
	if (b->gen_old) {
		log_warn("Warning: reload ignored: the previous reload is still being applied.");
		return;
	}
	log_notice("Reloading config.");
	next = mem_malloc(sizeof(*next));
	if (!next)
		return;
	config_init(next);
	struct policy *policy = NULL;
	if (config_load(next, b->config_path, CONFIG_FORMAT_AUTO, &diag) < 0 ||
	    config_apply_command_line(next, b->cli_port, true) < 0 ||
	    config_reload_merge(next, b->cfg, &diag) < 0 ||
	    !(policy = policy_build(next, b->plugins, true, &diag))) {
		for (size_t i = 0; i < diag.nerrors; i++)
			log_config_error(&diag.errors[i]);
		log_err("Error: reload failed; the current configuration stays in use.");
		config_diag_free(&diag);
		config_free(next);
		mem_free(next);
		return;
	}
	for (size_t i = 0; i < diag.nwarnings; i++)
		log_warn("Warning: %s:%d: %s", diag.warnings[i].loc.file ? diag.warnings[i].loc.file : "-",
			 diag.warnings[i].loc.line, diag.warnings[i].message);
	config_diag_free(&diag);
	log_configure(next, b->verbose);
	mem_set_limit(next->memory_limit);
	/* The workers switch one by one; the old generation goes when the last has. */
	b->gen_old = mem_malloc(sizeof(*b->gen_old));
	b->gen_next = mem_malloc(sizeof(*b->gen_next));
	if (!b->gen_old || !b->gen_next) {
		mem_free(b->gen_old);
		mem_free(b->gen_next);
		b->gen_old = b->gen_next = NULL;
		policy_unref(policy);
		config_free(next);
		mem_free(next);
		log_err("Error: out of memory; the current configuration stays in use.");
		return;
	}
	*b->gen_old = (struct generation){b->cfg, b->policy};
	*b->gen_next = (struct generation){next, policy};
	b->cfg = next;
	b->policy = policy;
	plugin_host_commit(b->plugins, policy->plugins, policy->nplugins, true);
	authpool_cache_clear(b->authpool);
	atomic_store(&b->cfg_switched, 0);
	item.ptr = b->gen_next;
	for (unsigned i = 0; i < b->nworkers; i++)
		worker_post(&b->workers[i], &item);
}

void broker_on_wake(struct broker *b)
{
	if (b->sig_stop) {
		b->sig_stop = 0;
		log_notice("midge version %s terminating", PACKAGE_VERSION);
		(void)sd_notify_send("STOPPING=1");
		broker_request_stop(b);
	}
	if (b->sig_reload) {
		b->sig_reload = 0;
		/* systemd waits for READY=1 after RELOADING=1, whatever the outcome. */
		(void)sd_notify_send("RELOADING=1");
		reload(b);
		(void)sd_notify_send("READY=1");
	}
	release_old_config(b);
}

void broker_publish(struct worker *w, const char *topic, const void *payload, size_t len,
		    uint8_t qos, bool retain)
{
	struct message *m = message_new(topic, strlen(topic), payload, len, qos, retain, NULL, 0);

	if (!m)
		return;
	route_publish(w, m, NULL);
	message_unref(m);
}

/* log_dest topic: each line goes to $SYS/broker/log/<level letter>, as in mosquitto. */
static void log_to_topic(uint32_t type, const char *line, void *data)
{
	struct worker *w = worker_current();
	char topic[32];
	char level;

	(void)data;
	if (!w)
		return; /* not on a worker thread: nowhere to route from */
	switch (type) {
	case LOG_T_ERR: level = 'E'; break;
	case LOG_T_WARNING: level = 'W'; break;
	case LOG_T_NOTICE: level = 'N'; break;
	case LOG_T_INFO: level = 'I'; break;
	case LOG_T_DEBUG: level = 'D'; break;
	case LOG_T_SUBSCRIBE: level = 'M'; break;
	case LOG_T_UNSUBSCRIBE: level = 'U'; break;
	default: level = 'I'; break;
	}
	snprintf(topic, sizeof(topic), "$SYS/broker/log/%c", level);
	/* Routed before the loop sleeps, never from inside the code that logged. */
	struct message *m = message_new(topic, strlen(topic), line, strlen(line), 2, false, NULL, 0);
	if (m)
		worker_defer_publish(w, m);
}

static void on_watchdog(struct ev_loop *loop, struct ev_timer *t)
{
	struct broker *b = (struct broker *)((char *)t - offsetof(struct broker, watchdog));

	(void)sd_notify_send("WATCHDOG=1");
	ev_timer_start(loop, t, ev_now(loop) + b->watchdog_ms);
}

int broker_run(struct broker *b)
{
	sigset_t all, old;

	/* Workers never take signals: handlers run on the main thread (worker 0). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 1; i < b->nworkers; i++) {
		if (worker_start(&b->workers[i]) < 0) {
			log_err("Error: unable to start worker thread %u.", i);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			broker_request_stop(b);
			b->nworkers = i; /* only join what started */
			worker_run(&b->workers[0]);
			goto join;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	log_set_topic_sink(log_to_topic, b);
	atomic_store(&b->running, true);
	/* A signal that came before the loops ran was only noted. */
	if (b->sig_stop || b->sig_reload)
		ev_async_send(&b->workers[0].wake);
	if (sys_start(b, &b->workers[0]) < 0)
		log_err("Error: out of memory starting $SYS.");
	log_notice("midge version %s running", PACKAGE_VERSION);
	/* systemd (Type=notify): ready now; the watchdog is fed by worker 0's loop, so a
	 * stuck loop stops feeding it. */
	(void)sd_notify_send("READY=1\nSTATUS=running");
	int64_t wd = sd_watchdog_ms();
	if (wd > 0) {
		b->watchdog_ms = wd / 2 > 0 ? wd / 2 : 1;
		ev_timer_init(&b->watchdog, on_watchdog);
		ev_timer_start(b->workers[0].loop, &b->watchdog,
			       ev_now(b->workers[0].loop) + b->watchdog_ms);
	}
	worker_run(&b->workers[0]);
join:
	for (unsigned i = 1; i < b->nworkers; i++)
		if (b->workers[i].threaded)
			pthread_join(b->workers[i].thread, NULL);
	atomic_store(&b->running, false);
	return 0;
}

void broker_fini(struct broker *b)
{
	signal_target = NULL;
	sys_stop(b);
	/* No worker publishes any more; nothing arrives from NATS after this. */
	cluster_stop(b);
	/* Answers of checks still running land in the inboxes, which worker_fini drains. */
	authpool_stop(b->authpool);
	b->authpool = NULL;
	/* Plugins clean up while the inboxes their late answers go to still exist; no
	 * worker runs any more, and the chains still pointing at them are only freed. */
	plugin_host_free(b->plugins);
	b->plugins = NULL;
	/* What the workers handed over is committed; ending their sessions below is not
	 * recorded (they live on in the store). */
	store_close(b);
	bridges_join(b);
	if (b->workers) {
		for (unsigned i = 0; i < b->nworkers; i++)
			worker_fini(&b->workers[i]);
		mem_free(b->workers);
		b->workers = NULL;
	}
	listeners_close(b);
	bridges_free(b);
	subtree_free(&b->subs);
	retain_free(&b->retained);
	pthread_rwlock_destroy(&b->sub_lock);
	pthread_rwlock_destroy(&b->retain_lock);
	generation_free(b->gen_old);
	b->gen_old = NULL;
	mem_free(b->gen_next);
	b->gen_next = NULL;
	policy_unref(b->policy);
	b->policy = NULL;
	plugin_api_set_broker(NULL);
}
