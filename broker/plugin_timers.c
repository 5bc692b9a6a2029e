/*
 * plugin_timers.c: time for plugins on each worker: the TICK event of every
 * plugin that handles it (the plugin sets its next wake-up) and one-shot
 * timers started through api->timer_start. Both stop calling a plugin that
 * a reload retired.
 */
#include "config.h"

#include "alloc.h"
#include "broker.h"
#include "hooks.h"
#include "plugin.h"
#include "worker.h"


struct plugin_tick {
	struct ev_timer timer;  /* first: the callback finds the tick from it */
	struct midge_plugin *plugin;
	struct worker *worker;
};

struct plugin_timer {
	struct ev_timer timer;  /* first */
	struct plugin_timer *next;
	struct worker *worker;
	struct midge_plugin *plugin;
	uint64_t id;
	void (*cb)(void *arg);
	void *arg;
};

static void on_tick(struct ev_loop *loop, struct ev_timer *t)
{
	struct plugin_tick *tk = (struct plugin_tick *)t;
	struct midge_plugin *p = tk->plugin;
	struct chain_entry e = {p, p->handlers[MIDGE_EVT_TICK].cb,
				p->handlers[MIDGE_EVT_TICK].userdata};
	struct midge_evt_tick evt = {
		.h.size = sizeof(evt),
		.now_ms = ev_now(loop),
		.next_ms = 1000,
	};

	if (p->retired || !e.cb)
		return;
	(void)plugin_call(&e, tk->worker, MIDGE_EVT_TICK, &evt);
	ev_timer_start(loop, t, ev_now(loop) + (evt.next_ms ? evt.next_ms : 1));
}

void worker_plugin_ticks_update(struct worker *w)
{
	struct plugin_host *h = w->broker->plugins;

	worker_plugin_ticks_stop(w);
	if (!h || h->nactive == 0)
		return;
	w->ticks = mem_calloc(h->nactive, sizeof(*w->ticks));
	if (!w->ticks)
		return;
	for (size_t i = 0; i < h->nactive; i++) {
		struct midge_plugin *p = h->active[i];
		if (!p->handlers[MIDGE_EVT_TICK].cb)
			continue;
		struct plugin_tick *tk = mem_calloc(1, sizeof(*tk));
		if (!tk)
			continue;
		tk->plugin = p;
		tk->worker = w;
		ev_timer_init(&tk->timer, on_tick);
		ev_timer_start(w->loop, &tk->timer, ev_now(w->loop) + 1000);
		w->ticks[w->nticks++] = tk;
	}
}

void worker_plugin_ticks_stop(struct worker *w)
{
	for (size_t i = 0; i < w->nticks; i++) {
		ev_timer_stop(w->loop, &w->ticks[i]->timer);
		mem_free(w->ticks[i]);
	}
	mem_free(w->ticks);
	w->ticks = NULL;
	w->nticks = 0;
}

static void timer_unlink(struct worker *w, struct plugin_timer *t)
{
	for (struct plugin_timer **pp = &w->plugin_timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			return;
		}
	}
}

static void on_plugin_timer(struct ev_loop *loop, struct ev_timer *et)
{
	struct plugin_timer *t = (struct plugin_timer *)et;
	struct worker *w = t->worker;

	(void)loop;
	timer_unlink(w, t);
	if (!t->plugin->retired)
		t->cb(t->arg);
	mem_free(t);
}

uint64_t hooks_timer_start(struct midge_plugin *p, uint32_t ms, void (*cb)(void *), void *arg)
{
	struct worker *w = worker_current();
	struct plugin_timer *t;

	if (!w || !cb)
		return 0;
	t = mem_calloc(1, sizeof(*t));
	if (!t)
		return 0;
	t->worker = w;
	t->plugin = p;
	t->id = ++w->next_plugin_timer;
	t->cb = cb;
	t->arg = arg;
	t->next = w->plugin_timers;
	w->plugin_timers = t;
	ev_timer_init(&t->timer, on_plugin_timer);
	ev_timer_start(w->loop, &t->timer, ev_now(w->loop) + ms);
	return t->id;
}

void hooks_timer_cancel(struct midge_plugin *p, uint64_t id)
{
	struct worker *w = worker_current();

	if (!w)
		return;
	for (struct plugin_timer *t = w->plugin_timers; t; t = t->next) {
		if (t->id == id && t->plugin == p) {
			ev_timer_stop(w->loop, &t->timer);
			timer_unlink(w, t);
			mem_free(t);
			return;
		}
	}
}

void hooks_timers_free(struct worker *w)
{
	while (w->plugin_timers) {
		struct plugin_timer *t = w->plugin_timers;
		w->plugin_timers = t->next;
		ev_timer_stop(w->loop, &t->timer);
		mem_free(t);
	}
	worker_plugin_ticks_stop(w);
}
