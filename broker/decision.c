/*
 * decision.c: holding a packet while a plugin decides, and replaying it
 * with the recorded answers (see decision.h).
 */
#include "config.h"

#include "decision.h"

#include "alloc.h"
#include "client.h"
#include "hooks.h"
#include "log.h"
#include "plugin.h"
#include "worker.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

void decision_free_data(struct decision *d)
{
	mem_free(d->data);
	mem_free(d->username);
	mem_free(d->topic);
	d->data = NULL;
	d->username = NULL;
	d->topic = NULL;
	d->data_len = 0;
}

static struct decision_wait **bucket(struct decision_table *t, uint64_t id)
{
	return &t->buckets[(id >> 8) % 256];
}

static void unlink_wait(struct decision_table *t, struct decision_wait *dw)
{
	for (struct decision_wait **pp = bucket(t, dw->id); *pp; pp = &(*pp)->hnext) {
		if (*pp == dw) {
			*pp = dw->hnext;
			dw->hnext = NULL;
			return;
		}
	}
}

static void wait_free(struct decision_wait *dw)
{
	for (uint32_t i = 0; i < dw->len; i++)
		decision_free_data(&dw->memo[i]);
	mem_free(dw->memo);
	mem_free(dw);
}

static void scratch_clear(struct decision_table *t)
{
	for (uint32_t i = 0; i < t->scratch_len; i++)
		decision_free_data(&t->scratch[i]);
	t->scratch_len = 0;
}

void decision_table_fini(struct decision_table *t)
{
	scratch_clear(t);
	mem_free(t->scratch);
	t->scratch = NULL;
	t->scratch_cap = 0;
	/* Waits belong to clients, which are all gone by now. */
}

uint64_t decision_request_id(struct worker *w)
{
	/* The low byte names the worker, so any thread can route an answer. */
	return (++w->decisions.next_seq << 8) | (w->index & 0xFF);
}

void decision_packet_begin(struct client *c)
{
	scratch_clear(&c->worker->decisions);
}

void decision_packet_end(struct client *c)
{
	struct decision_wait *dw = client_wait(c);

	if (dw && !dw->pending) {
		c->ext->wait = NULL;
		wait_free(dw);
	}
}

/* A copy the caller owns (data and user name duplicated). */
static int copy_decision(struct decision *out, const struct decision *d)
{
	*out = *d;
	out->data = NULL;
	out->username = NULL;
	out->topic = NULL;
	if (d->data && !(out->data = mem_malloc(d->data_len ? d->data_len : 1)))
		return -1;
	if (d->data)
		memcpy(out->data, d->data, d->data_len);
	if ((d->username && !(out->username = mem_strdup(d->username))) ||
	    (d->topic && !(out->topic = mem_strdup(d->topic)))) {
		decision_free_data(out);
		return -1;
	}
	return 0;
}

bool decision_replay(struct client *c, struct decision *out)
{
	struct decision_wait *dw = client_wait(c);

	if (!dw || dw->pending || dw->cursor >= dw->len)
		return false;
	if (copy_decision(out, &dw->memo[dw->cursor]) < 0) {
		*out = (struct decision){.verdict = HOOK_DENY, .qos = -1};
		log_err("Error: out of memory replaying a plugin decision for %s.", client_name(c));
	}
	dw->cursor++;
	return true;
}

static int push(struct decision **v, uint32_t *len, uint32_t *cap, struct decision *d)
{
	if (*len == *cap) {
		uint32_t ncap = *cap ? *cap * 2 : 8;
		struct decision *grown = mem_realloc(*v, ncap * sizeof(*grown));
		if (!grown)
			return -1;
		*v = grown;
		*cap = ncap;
	}
	(*v)[(*len)++] = *d;
	return 0;
}

void decision_record(struct client *c, const struct decision *d)
{
	struct decision_table *t = &c->worker->decisions;
	struct decision_wait *dw = client_wait(c);
	struct decision copy;

	/* Without a copy a replay asks the plugins again: still correct, just slower. */
	if (copy_decision(&copy, d) < 0)
		return;
	if (dw) {
		if (push(&dw->memo, &dw->len, &dw->cap, &copy) == 0) {
			dw->cursor = dw->len;
			return;
		}
	} else if (push(&t->scratch, &t->scratch_len, &t->scratch_cap, &copy) == 0) {
		return;
	}
	decision_free_data(&copy);
}

static void on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
	struct decision_wait *dw = (struct decision_wait *)((char *)t -
							     offsetof(struct decision_wait, timer));
	struct worker *w = ev_userdata(loop);
	struct decision d = {.verdict = HOOK_DENY, .qos = -1};

	/* No plugin: the cluster asked about the client id (cluster_session_claim()). */
	if (!dw->plugin)
		log_warn("Warning: the cluster did not answer for client %s within %d s: deciding "
			 "locally.", client_name(dw->client), w->cfg->plugin_timeout);
	else
		log_warn("Warning: plugin %s did not answer for client %s within %d s: denied.",
			 dw->plugin->name, client_name(dw->client), w->cfg->plugin_timeout);
	decision_answer(w, dw->id, &d);
}

int decision_park(struct client *c, uint64_t id, struct midge_plugin *p)
{
	struct worker *w = c->worker;
	struct decision_table *t = &w->decisions;
	struct client_ext *x = client_ext(c);
	struct decision_wait *dw;

	if (!x)
		return -1;
	dw = x->wait;
	if (!dw) {
		dw = mem_calloc(1, sizeof(*dw));
		if (!dw)
			return -1;
		/* What was answered before the delay is replayed, not asked again. */
		dw->memo = t->scratch;
		dw->len = t->scratch_len;
		dw->cap = t->scratch_cap;
		t->scratch = NULL;
		t->scratch_len = t->scratch_cap = 0;
		dw->client = c;
		x->wait = dw;
	}
	dw->id = id;
	dw->plugin = p;
	dw->pending = true;
	dw->hnext = *bucket(t, id);
	*bucket(t, id) = dw;
	ev_timer_init(&dw->timer, on_timeout);
	ev_timer_start(w->loop, &dw->timer,
		       ev_now(w->loop) + (int64_t)w->cfg->plugin_timeout * 1000);
	client_hold_input(c, true);
	return 0;
}

bool decision_pending(struct worker *w, uint64_t id)
{
	struct decision_wait *dw = *bucket(&w->decisions, id);

	while (dw && dw->id != id)
		dw = dw->hnext;
	return dw && dw->pending;
}

void decision_answer(struct worker *w, uint64_t id, struct decision *d)
{
	struct decision_table *t = &w->decisions;
	struct decision_wait *dw = *bucket(t, id);

	while (dw && dw->id != id)
		dw = dw->hnext;
	if (!dw || !dw->pending) {
		decision_free_data(d); /* late: the timeout answered, or the client left */
		return;
	}
	unlink_wait(t, dw);
	ev_timer_stop(w->loop, &dw->timer);
	dw->pending = false;
	if (!d->plugin)
		d->plugin = dw->plugin;
	if (push(&dw->memo, &dw->len, &dw->cap, d) < 0) {
		decision_free_data(d);
		client_close(dw->client, "could not record a plugin's answer (out of memory).", false);
		return;
	}
	d->data = NULL;
	d->username = NULL;
	d->topic = NULL;
	dw->cursor = 0;
	client_hold_input(dw->client, false);
	client_resume_input(dw->client);
}

void decision_client_gone(struct client *c)
{
	struct decision_wait *dw = client_wait(c);

	if (!dw)
		return;
	c->ext->wait = NULL;
	if (dw->pending) {
		unlink_wait(&c->worker->decisions, dw);
		ev_timer_stop(c->worker->loop, &dw->timer);
	}
	wait_free(dw);
}

void decision_wait_sync(struct worker *w, uint64_t id, struct decision *out)
{
	uint64_t deadline = (uint64_t)ev_monotonic_ms() + (uint64_t)w->cfg->plugin_timeout * 1000;

	*out = (struct decision){.verdict = HOOK_DENY, .qos = -1};
	while ((uint64_t)ev_monotonic_ms() < deadline) {
		bool found = false;
		pthread_mutex_lock(&w->inbox_lock);
		for (size_t i = 0; i < w->inbox.len; i++) {
			struct inbox_item *it = &w->inbox.items[i];
			if (it->kind != INBOX_DECIDED || it->id != id)
				continue;
			struct decision *d = it->ptr;
			*out = *d;
			mem_free(d);
			memmove(it, it + 1, (w->inbox.len - i - 1) * sizeof(*it));
			w->inbox.len--;
			found = true;
			break;
		}
		pthread_mutex_unlock(&w->inbox_lock);
		if (found)
			return;
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	log_warn("Warning: no answer within plugin_timeout (%d s): denied.", w->cfg->plugin_timeout);
}
