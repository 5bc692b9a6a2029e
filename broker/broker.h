/*
 * broker.h: the root object: configuration, workers, listeners and the
 * routing state they share.
 *
 * Owns the ordered start-up and shutdown of everything, the subscription
 * trie and the retained store (each under its own read-write lock: the only
 * state workers share), and process-wide counters. There is no global
 * broker: every function that needs it is handed a struct broker *.
 */
#ifndef MIDGE_BROKER_H
#define MIDGE_BROKER_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "ev.h"
#include "listener.h"
#include "retain.h"
#include "subtree.h"

struct authpool;
struct listener;
struct plugin_host;
struct policy;
struct sys_state;
struct worker;

/* A configuration and the policy loaded from it: what a reload swaps as one. */
struct generation {
	struct config *cfg;
	struct policy *policy;
};

struct broker {
	struct config *cfg;          /* current configuration (worker 0 swaps it on reload) */
	struct policy *policy;       /* loaded from cfg */
	struct generation *gen_old;  /* previous ones, freed once every worker switched */
	struct generation *gen_next; /* the one being handed to the workers */
	_Atomic unsigned cfg_switched;
	struct authpool *authpool;
	struct plugin_host *plugins;  /* every loaded plugin */
	const char *config_path;     /* NULL: built-in defaults */
	int cli_port;
	bool verbose;

	struct worker *workers;
	unsigned nworkers;
	struct listener *listeners;
	unsigned nlisteners;

	pthread_rwlock_t sub_lock;
	struct subtree subs;
	pthread_rwlock_t retain_lock;
	struct retain_store retained;

	_Atomic uint64_t next_session_id;
	_Atomic int64_t clients_connected;   /* gauge across workers */
	_Atomic int64_t clients_max;          /* peak of clients_connected */
	_Atomic int64_t connections;          /* open sockets across listeners */
	int64_t start_time;                   /* wall clock, seconds */
	struct sys_state *sys;
	struct store *store;                  /* durable store, NULL when persistence is off */
	struct cluster *cluster;              /* cluster.h; NULL without a cluster section */
	struct bridge *bridges;               /* bridge.h */
	size_t nbridges;
	struct listener bridge_listener;      /* what bridge connections count as */
	struct ev_timer watchdog;             /* systemd's watchdog, on worker 0 */
	int64_t watchdog_ms;
	_Atomic bool stopping;
	_Atomic bool running;                 /* the loops run: signals may wake worker 0 */

	/* Set by signal handlers, acted on by worker 0. */
	volatile sig_atomic_t sig_stop;
	volatile sig_atomic_t sig_reload;
};

/*
 * cli_port: the -p option (0 for none), re-applied to reloaded configurations.
 * Takes over policy (built from cfg by the caller).
 */
int broker_init(struct broker *b, struct config *cfg, struct policy *policy,
		struct plugin_host *plugins, const char *config_path, int cli_port, bool verbose);

/* Worker threads a configuration asks for (workers: 0 = one per core, at most 256). */
unsigned broker_worker_count(const struct config *cfg);
/* Runs until SIGTERM/SIGINT; returns the exit status. */
int broker_run(struct broker *b);
void broker_fini(struct broker *b);

/* Worker 0 calls this when woken: acts on signals (stop, reload). */
void broker_on_wake(struct broker *b);

/* Asks every worker to stop (any thread, async-signal-unsafe). */
void broker_request_stop(struct broker *b);

/* Publishes a message from the broker itself ($SYS, wills, log lines) from worker w. */
void broker_publish(struct worker *w, const char *topic, const void *payload, size_t len,
		    uint8_t qos, bool retain);

#endif
