/*
 * plugin.h: the plugin host: loading plugins, their per-listener call
 * chains, per-worker state and statistics.
 *
 * Owns every loaded plugin instance (struct midge_plugin) for the life of
 * the process: a reload keeps instances whose configuration entry stays,
 * loads new ones and retires removed ones (never called again, unloaded at
 * exit, so no worker can be inside a plugin that goes away). Owns the
 * chains a configuration generation builds: per listener and per event,
 * the callbacks to call in order. It does not decide anything itself:
 * hooks.c runs the chains and turns answers into broker behaviour.
 */
#ifndef MIDGE_PLUGIN_HOST_H
#define MIDGE_PLUGIN_HOST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <midge/plugin.h>

struct broker;
struct config;
struct config_diag;
struct config_plugin;
struct worker;

/* Call statistics of one plugin, one event, on one worker (single writer). */
struct plugin_stat {
	_Atomic uint64_t calls;
	_Atomic uint64_t errors;
	_Atomic uint64_t nanoseconds;
};

struct midge_plugin {
	char *name;                  /* configured name, or the file name without ".so" */
	char *path;
	char *key;                   /* identity across reloads */
	void *dl;                    /* NULL for built-in plugins */
	midge_plugin_init_fn init;
	midge_plugin_cleanup_fn cleanup;
	void *data;                  /* plugin_data from init */
	struct midge_option *opts;   /* owned copies */
	const struct config_plugin *cfg_entry; /* where the latest build found it */
	int nopts;
	int abi;
	unsigned index;              /* slot in per-client data arrays */
	bool in_init;                /* register_event is allowed */
	bool retired;                /* removed by a reload: never called again */
	bool deny_special_chars;
	struct {
		midge_event_cb cb;
		void *userdata;
	} handlers[MIDGE_EVT_LIMIT];
	unsigned nworkers;
	void **worker_data;          /* per worker, set by WORKER_START */
	bool *worker_started;        /* per worker */
	struct plugin_stat *stats;   /* [worker * MIDGE_EVT_LIMIT + event] */
	uint64_t sys_published_calls[MIDGE_EVT_LIMIT]; /* $SYS: calls when last published */
	struct midge_plugin *next_in_host;
};

/* One callback in a chain. */
struct chain_entry {
	struct midge_plugin *plugin;
	midge_event_cb cb;
	void *userdata;
};

/* What a listener's clients go through, per event, in order. */
struct plugin_chain {
	struct chain_entry *entries[MIDGE_EVT_LIMIT];
	uint16_t count[MIDGE_EVT_LIMIT];
};

struct plugin_host {
	struct midge_plugin *head;   /* every instance ever loaded, newest first */
	unsigned nplugins;           /* also the next index */
	unsigned nworkers;
	struct broker *broker;       /* set once the broker exists */
	/* Every instance a generation uses, to start per worker and to tick. */
	struct midge_plugin **active;
	size_t nactive;
};

static inline bool chain_has(const struct plugin_chain *ch, int event)
{
	return ch && ch->count[event] > 0;
}

/* A host for n workers. */
struct plugin_host *plugin_host_new(unsigned nworkers);
/* Calls cleanup and unloads every plugin (main thread, workers stopped). */
void plugin_host_free(struct plugin_host *h);

/*
 * Loads (or finds, on reload) the instance for one configuration entry;
 * scope names where the entry sits ("global", "listener 2") so equal
 * entries in different places are different instances. NULL with an error
 * in diag on failure. New instances are initialised here (main thread).
 */
struct midge_plugin *plugin_instance(struct plugin_host *h, const struct config_plugin *cp,
				     const char *scope, unsigned occurrence, bool reload,
				     struct config_diag *diag);

/* Registers a plugin implemented inside the broker (the password/ACL files). */
struct midge_plugin *plugin_builtin(struct plugin_host *h, const char *name,
				    int (*init)(struct midge_plugin *self));

/* Appends p's handlers to chain (for every event p registered). */
int plugin_chain_add(struct plugin_chain *ch, struct midge_plugin *p);
void plugin_chain_free(struct plugin_chain *ch);

/*
 * After a reload built a new generation: `used` lists the instances it
 * uses. Kept ones get MIDGE_EVT_RELOAD with their new options; ones no
 * longer used are retired. Main thread.
 */
void plugin_host_commit(struct plugin_host *h, struct midge_plugin **used, size_t nused,
			bool reload);

/* Starts (WORKER_START) every active plugin not yet started on w; w's thread. */
void plugin_host_worker_start(struct plugin_host *h, struct worker *w);
/* WORKER_STOP for every plugin started on w; w's thread, after its last event. */
void plugin_host_worker_stop(struct plugin_host *h, struct worker *w);

/*
 * Calls one entry: fills the header, times the call, counts it. Returns the
 * callback's answer (negative: an error, counted).
 */
int plugin_call(const struct chain_entry *e, struct worker *w, int event, void *evt);

/* Event name for logs, $SYS and --plugin-check ("basic_auth", ...). */
const char *plugin_event_name(int event);

/* A plugin's counters for one event, summed over the workers (any thread). */
void plugin_stats_sum(const struct midge_plugin *p, int event, uint64_t *calls, uint64_t *errors,
		      uint64_t *nanoseconds);

/*
 * --plugin-check: loads path, initialises it without options, prints its
 * ABI version and events to stdout. Returns 0, or 1 with the reason on stderr.
 */
int plugin_check_file(const char *path);

/* api->complete(), also used by the built-in password check's threads. Any thread. */
int plugin_api_complete(uint64_t request, int result, const struct midge_completion *extra);

/* The API table handed to plugins (plugin_api.c). */
const struct midge_broker_api *plugin_api_table(void);
/* Gives the context-free API functions (publish, kick, complete) their broker. */
void plugin_api_set_broker(struct broker *b);

#endif
