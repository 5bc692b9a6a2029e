/*
 * plugin.c: loading plugins, version negotiation, chains, per-worker start
 * and stop, call statistics (see plugin.h).
 */
#include "config.h"

#include "plugin.h"

#include "alloc.h"
#include "broker.h"
#include "conf.h"
#include "log.h"
#include "worker.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The ABI versions this broker speaks, newest first. */
static const int supported_versions[] = {MIDGE_PLUGIN_ABI_VERSION};

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

const char *plugin_event_name(int event)
{
	if (event <= 0 || event >= MIDGE_EVT_LIMIT || !event_names[event])
		return "unknown";
	return event_names[event];
}

static void diag_add(struct config_diag *diag, const struct config_loc *loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void diag_add(struct config_diag *diag, const struct config_loc *loc, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	struct config_error *grown;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!diag) {
		log_err("Error: %s", msg);
		return;
	}
	grown = mem_realloc(diag->errors, (diag->nerrors + 1) * sizeof(*grown));
	if (!grown)
		return;
	diag->errors = grown;
	grown[diag->nerrors++] = (struct config_error){
		.loc = loc ? *loc : (struct config_loc){0},
		.key = mem_strdup("plugin"),
		.message = mem_strdup(msg),
	};
}

struct plugin_host *plugin_host_new(unsigned nworkers)
{
	struct plugin_host *h = mem_calloc(1, sizeof(*h));

	if (h)
		h->nworkers = nworkers;
	return h;
}

static void free_options(struct midge_option *opts, int n)
{
	for (int i = 0; i < n; i++) {
		mem_free((char *)opts[i].key);
		mem_free((char *)opts[i].value);
	}
	mem_free(opts);
}

static int copy_options(const struct config_plugin *cp, struct midge_option **out, int *nout)
{
	struct midge_option *o = mem_calloc(cp->nopts + 1, sizeof(*o));

	*out = NULL;
	*nout = 0;
	if (!o)
		return -1;
	for (size_t i = 0; i < cp->nopts; i++) {
		o[i].key = mem_strdup(cp->opts[i].key);
		o[i].value = mem_strdup(cp->opts[i].value ? cp->opts[i].value : "");
		if (!o[i].key || !o[i].value) {
			free_options(o, (int)i + 1);
			return -1;
		}
	}
	*out = o;
	*nout = (int)cp->nopts;
	return 0;
}

static void plugin_free(struct midge_plugin *p)
{
	if (p->cleanup)
		p->cleanup(p->data, p->opts, p->nopts);
	if (p->dl)
		dlclose(p->dl);
	free_options(p->opts, p->nopts);
	mem_free(p->worker_data);
	mem_free(p->worker_started);
	mem_free(p->stats);
	mem_free(p->name);
	mem_free(p->path);
	mem_free(p->key);
	mem_free(p);
}

void plugin_host_free(struct plugin_host *h)
{
	if (!h)
		return;
	/* Oldest first is the configuration order; cleanup in reverse, like a stack. */
	while (h->head) {
		struct midge_plugin *p = h->head;
		h->head = p->next_in_host;
		plugin_free(p);
	}
	mem_free(h->active);
	mem_free(h);
}

static struct midge_plugin *plugin_alloc(struct plugin_host *h, const char *name,
					 const char *path, const char *key)
{
	struct midge_plugin *p = mem_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->nworkers = h->nworkers;
	p->name = mem_strdup(name);
	p->path = mem_strdup(path ? path : "");
	p->key = mem_strdup(key);
	p->worker_data = mem_calloc(h->nworkers, sizeof(*p->worker_data));
	p->worker_started = mem_calloc(h->nworkers, sizeof(*p->worker_started));
	p->stats = mem_calloc((size_t)h->nworkers * MIDGE_EVT_LIMIT, sizeof(*p->stats));
	if (!p->name || !p->path || !p->key || !p->worker_data || !p->worker_started || !p->stats) {
		plugin_free(p);
		return NULL;
	}
	return p;
}

static void host_add(struct plugin_host *h, struct midge_plugin *p)
{
	p->index = h->nplugins++;
	p->next_in_host = h->head;
	h->head = p;
}

/* "/usr/lib/midge/auth.so" -> "auth" */
static char *name_from_path(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base ? base + 1 : path;
	len = strlen(base);
	if (len > 3 && strcmp(base + len - 3, ".so") == 0)
		len -= 3;
	return mem_strndup(base, len);
}

/*
 * dlopen + version negotiation. Fills p->dl, init, cleanup, abi; returns 0,
 * or -1 with the reason in err.
 */
static int open_plugin(struct midge_plugin *p, char *err, size_t errlen)
{
	midge_plugin_version_fn version;
	int v;

	p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		snprintf(err, errlen, "%s", dlerror());
		return -1;
	}
	version = (midge_plugin_version_fn)(uintptr_t)dlsym(p->dl, "midge_plugin_version");
	if (!version) {
		snprintf(err, errlen, "missing symbol midge_plugin_version (not a midge plugin)");
		return -1;
	}
	v = version((int)(sizeof(supported_versions) / sizeof(supported_versions[0])),
		    supported_versions);
	bool known = false;
	for (size_t i = 0; i < sizeof(supported_versions) / sizeof(supported_versions[0]); i++)
		known = known || supported_versions[i] == v;
	if (!known) {
		snprintf(err, errlen, "unsupported ABI version %d (this broker speaks %d)", v,
			 MIDGE_PLUGIN_ABI_VERSION);
		return -1;
	}
	p->abi = v;
	p->init = (midge_plugin_init_fn)(uintptr_t)dlsym(p->dl, "midge_plugin_init");
	p->cleanup = (midge_plugin_cleanup_fn)(uintptr_t)dlsym(p->dl, "midge_plugin_cleanup");
	if (!p->init) {
		snprintf(err, errlen, "missing symbol midge_plugin_init");
		return -1;
	}
	if (!p->cleanup) {
		snprintf(err, errlen, "missing symbol midge_plugin_cleanup");
		return -1;
	}
	return 0;
}

static int init_plugin(struct midge_plugin *p)
{
	int rc;

	p->in_init = true;
	rc = p->init(p, plugin_api_table(), p->opts, p->nopts, &p->data);
	p->in_init = false;
	return rc;
}

struct midge_plugin *plugin_instance(struct plugin_host *h, const struct config_plugin *cp,
				     const char *scope, unsigned occurrence, bool reload,
				     struct config_diag *diag)
{
	char key[1200];
	char err[512];
	struct midge_plugin *p;
	char *name;
	int rc;

	if (cp->name)
		snprintf(key, sizeof(key), "named:%s:%s", cp->name, cp->path);
	else
		snprintf(key, sizeof(key), "%s:%s#%u", scope, cp->path, occurrence);
	(void)reload;
	for (p = h->head; p; p = p->next_in_host) {
		if (!p->retired && strcmp(p->key, key) == 0) {
			/* Its new options take effect at commit, with the RELOAD event. */
			p->cfg_entry = cp;
			return p;
		}
	}
	name = cp->label ? mem_strdup(cp->label)
	       : cp->name ? mem_strdup(cp->name) : name_from_path(cp->path);
	if (!name) {
		diag_add(diag, &cp->loc, "out of memory loading plugin %s", cp->path);
		return NULL;
	}
	p = plugin_alloc(h, name, cp->path, key);
	mem_free(name);
	if (!p) {
		diag_add(diag, &cp->loc, "out of memory loading plugin %s", cp->path);
		return NULL;
	}
	p->deny_special_chars = cp->deny_special_chars > 0;
	if (copy_options(cp, &p->opts, &p->nopts) < 0) {
		plugin_free(p);
		diag_add(diag, &cp->loc, "out of memory loading plugin %s", cp->path);
		return NULL;
	}
	if (open_plugin(p, err, sizeof(err)) < 0) {
		diag_add(diag, &cp->loc, "plugin %s: %s", cp->path, err);
		p->cleanup = NULL; /* never initialised */
		plugin_free(p);
		return NULL;
	}
	rc = init_plugin(p);
	if (rc != MIDGE_OK) {
		diag_add(diag, &cp->loc, "plugin %s: midge_plugin_init failed (%d)", cp->path, rc);
		p->cleanup = NULL;
		plugin_free(p);
		return NULL;
	}
	p->cfg_entry = cp;
	host_add(h, p);
	log_info("Plugin %s loaded from %s (ABI %d).", p->name, p->path, p->abi);
	return p;
}

struct midge_plugin *plugin_builtin(struct plugin_host *h, const char *name,
				    int (*init)(struct midge_plugin *self))
{
	char key[128];
	struct midge_plugin *p;

	snprintf(key, sizeof(key), "builtin:%s", name);
	for (p = h->head; p; p = p->next_in_host)
		if (strcmp(p->key, key) == 0)
			return p;
	p = plugin_alloc(h, name, NULL, key);
	if (!p)
		return NULL;
	p->abi = MIDGE_PLUGIN_ABI_VERSION;
	p->in_init = true;
	int rc = init(p);
	p->in_init = false;
	if (rc != MIDGE_OK) {
		plugin_free(p);
		return NULL;
	}
	host_add(h, p);
	return p;
}

int plugin_chain_add(struct plugin_chain *ch, struct midge_plugin *p)
{
	for (int e = 1; e < MIDGE_EVT_LIMIT; e++) {
		struct chain_entry *grown;

		if (!p->handlers[e].cb)
			continue;
		grown = mem_realloc(ch->entries[e], (ch->count[e] + 1u) * sizeof(*grown));
		if (!grown)
			return -1;
		ch->entries[e] = grown;
		grown[ch->count[e]++] = (struct chain_entry){p, p->handlers[e].cb,
							     p->handlers[e].userdata};
	}
	return 0;
}

void plugin_chain_free(struct plugin_chain *ch)
{
	for (int e = 0; e < MIDGE_EVT_LIMIT; e++) {
		mem_free(ch->entries[e]);
		ch->entries[e] = NULL;
		ch->count[e] = 0;
	}
}

/* Takes the options of the entry the last build found p for. */
static bool take_new_options(struct midge_plugin *p)
{
	struct midge_option *o;
	int n;

	if (!p->cfg_entry || copy_options(p->cfg_entry, &o, &n) < 0)
		return false;
	free_options(p->opts, p->nopts);
	p->opts = o;
	p->nopts = n;
	return true;
}

static void fire_reload(struct plugin_host *h, struct midge_plugin *p)
{
	struct worker *w = &h->broker->workers[0];
	struct chain_entry e = {p, p->handlers[MIDGE_EVT_RELOAD].cb,
				p->handlers[MIDGE_EVT_RELOAD].userdata};
	struct midge_evt_reload evt = {
		.h.size = sizeof(evt),
		.options = p->opts,
		.option_count = p->nopts,
	};

	if (!e.cb)
		return;
	int rc = plugin_call(&e, w, MIDGE_EVT_RELOAD, &evt);
	if (rc < 0)
		log_err("Error: plugin %s could not apply the reloaded options (%d).", p->name, rc);
}

void plugin_host_commit(struct plugin_host *h, struct midge_plugin **used, size_t nused,
			bool reload)
{
	struct midge_plugin **active = mem_malloc((nused ? nused : 1) * sizeof(*active));
	size_t nactive = 0;

	if (!active)
		return;
	for (size_t i = 0; i < nused; i++) {
		bool dup = false;
		for (size_t j = 0; j < nactive && !dup; j++)
			dup = active[j] == used[i];
		if (!dup)
			active[nactive++] = used[i];
	}
	for (struct midge_plugin *p = h->head; p; p = p->next_in_host) {
		bool in_use = false;
		for (size_t j = 0; j < nactive && !in_use; j++)
			in_use = active[j] == p;
		if (!in_use && !p->retired && reload) {
			p->retired = true;
			log_notice("Plugin %s is no longer configured: it is not called any more.",
				   p->name);
		}
	}
	if (reload && h->broker) {
		for (size_t i = 0; i < nactive; i++) {
			struct midge_plugin *p = active[i];
			if (p->dl && take_new_options(p))
				fire_reload(h, p);
		}
	}
	mem_free(h->active);
	h->active = active;
	h->nactive = nactive;
}

static void call_worker_event(struct midge_plugin *p, struct worker *w, int event)
{
	struct chain_entry e = {p, p->handlers[event].cb, p->handlers[event].userdata};
	struct midge_evt_worker evt = {
		.h.size = sizeof(evt),
		.worker_count = p->nworkers,
	};

	if (!e.cb)
		return;
	evt.h.worker_data = p->worker_data[w->index];
	/* plugin_call() hands the stored pointer in; START's answer is read back. */
	(void)plugin_call(&e, w, event, &evt);
	p->worker_data[w->index] = evt.h.worker_data;
}

void worker_plugin_ticks_update(struct worker *w);

void plugin_host_worker_start(struct plugin_host *h, struct worker *w)
{
	for (size_t i = 0; i < h->nactive; i++) {
		struct midge_plugin *p = h->active[i];
		if (p->worker_started[w->index] || p->retired)
			continue;
		p->worker_started[w->index] = true;
		call_worker_event(p, w, MIDGE_EVT_WORKER_START);
	}
	worker_plugin_ticks_update(w);
}

void plugin_host_worker_stop(struct plugin_host *h, struct worker *w)
{
	for (struct midge_plugin *p = h->head; p; p = p->next_in_host) {
		if (!p->worker_started[w->index])
			continue;
		call_worker_event(p, w, MIDGE_EVT_WORKER_STOP);
		p->worker_started[w->index] = false;
		p->worker_data[w->index] = NULL;
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int plugin_call(const struct chain_entry *e, struct worker *w, int event, void *evt)
{
	struct midge_evt_header *h = evt;
	struct midge_plugin *p = e->plugin;
	struct plugin_stat *st = &p->stats[(size_t)w->index * MIDGE_EVT_LIMIT + event];
	uint64_t t0 = now_ns();
	int rc;

	h->event = (uint32_t)event;
	h->plugin = p;
	h->worker = w->index;
	if (event != MIDGE_EVT_WORKER_START && event != MIDGE_EVT_WORKER_STOP)
		h->worker_data = p->worker_data[w->index];
	rc = e->cb(event, evt, e->userdata);
	STAT_ADD(st->calls, 1);
	STAT_ADD(st->nanoseconds, now_ns() - t0);
	if (rc < 0)
		STAT_ADD(st->errors, 1);
	return rc;
}

int plugin_check_file(const char *path)
{
	struct plugin_host *h = plugin_host_new(1);
	struct midge_plugin *p;
	char err[512];
	int rc;

	if (!h)
		return 1;
	char *name = name_from_path(path);
	p = name ? plugin_alloc(h, name, path, "check") : NULL;
	mem_free(name);
	if (!p) {
		plugin_host_free(h);
		return 1;
	}
	p->opts = mem_calloc(1, sizeof(*p->opts));
	if (open_plugin(p, err, sizeof(err)) < 0) {
		fprintf(stderr, "Error: cannot use plugin %s: %s\n", path, err);
		p->cleanup = NULL;
		plugin_free(p);
		plugin_host_free(h);
		return 1;
	}
	rc = init_plugin(p);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "Error: cannot use plugin %s: midge_plugin_init failed (%d)\n", path,
			rc);
		p->cleanup = NULL;
		plugin_free(p);
		plugin_host_free(h);
		return 1;
	}
	printf("plugin: %s\n", path);
	printf("abi version: %d\n", p->abi);
	printf("events:");
	for (int e = 1; e < MIDGE_EVT_LIMIT; e++)
		if (p->handlers[e].cb)
			printf(" %s", plugin_event_name(e));
	printf("\n");
	host_add(h, p);
	plugin_host_free(h);
	return 0;
}

void plugin_stats_sum(const struct midge_plugin *p, int event, uint64_t *calls, uint64_t *errors,
		      uint64_t *nanoseconds)
{
	*calls = *errors = *nanoseconds = 0;
	for (unsigned k = 0; k < p->nworkers; k++) {
		const struct plugin_stat *s = &p->stats[(size_t)k * MIDGE_EVT_LIMIT + event];
		*calls += atomic_load_explicit(&s->calls, memory_order_relaxed);
		*errors += atomic_load_explicit(&s->errors, memory_order_relaxed);
		*nanoseconds += atomic_load_explicit(&s->nanoseconds, memory_order_relaxed);
	}
}
