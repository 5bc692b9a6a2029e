/*
 * worker.c: a worker's event loop duties: accepting, the inbox from other
 * workers, batched output before sleeping, and freeing closed clients.
 */
#include "config.h"

#include "worker.h"

#include "alloc.h"
#include "bridge.h"
#include "broker.h"
#include "client.h"
#include "cluster.h"
#include "deliver.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "plugin.h"
#include "route.h"
#include "persist.h"
#include "session.h"
#include "send.h"
#include "store.h"

#include <midge/mqtt.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUFFER_SIZE (64 * 1024)
#define ACCEPTS_PER_EVENT 64
#define ACCEPT_RETRY_MS 100

static __thread struct worker *current_worker;

struct worker *worker_current(void)
{
	return current_worker;
}

void worker_set_current(struct worker *w)
{
	current_worker = w;
}

static struct worker *worker_of_loop(struct ev_loop *loop)
{
	return ev_userdata(loop);
}

struct worker *worker_for_hash(struct broker *b, uint32_t hash)
{
	/* FNV-1a's low bits follow the parity of the id's bytes ("pub-1" and
	 * "sub-1" always differ), so the mixed high bits pick the worker. */
	uint32_t mixed = hash * 0x9E3779B1u;
	return &b->workers[((uint64_t)mixed * b->nworkers) >> 32];
}

/* --- client lists --- */

void worker_link_client(struct worker *w, struct client *c)
{
	c->prev = NULL;
	c->next = w->clients;
	if (w->clients)
		w->clients->prev = c;
	w->clients = c;
	w->nclients++;
}

void worker_unlink_client(struct worker *w, struct client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (w->clients == c)
		w->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	w->nclients--;
	/* A client on the flush list is skipped there once it is closing or gone. */
}

void worker_schedule_read(struct worker *w, struct client *c)
{
	if (c->flags & CLIENT_F_READ_MORE)
		return;
	c->flags |= CLIENT_F_READ_MORE;
	c->reread_next = w->reread_head;
	w->reread_head = c;
}

void worker_unschedule_read(struct worker *w, struct client *c)
{
	if (!(c->flags & CLIENT_F_READ_MORE))
		return;
	for (struct client **pp = &w->reread_head; *pp; pp = &(*pp)->reread_next) {
		if (*pp == c) {
			*pp = c->reread_next;
			break;
		}
	}
	c->reread_next = NULL;
	c->flags &= ~CLIENT_F_READ_MORE;
}

void worker_schedule_flush(struct worker *w, struct client *c)
{
	if (c->flags & CLIENT_F_FLUSH_QUEUED)
		return;
	c->flags |= CLIENT_F_FLUSH_QUEUED;
	c->flush_next = w->flush_head;
	w->flush_head = c;
}

/* --- accepting --- */

static void accept_resume(struct ev_loop *loop, struct ev_timer *t)
{
	struct worker *w = worker_of_loop(loop);

	w->accept_paused = false;
	for (size_t i = 0; i < w->nlisten_io; i++)
		(void)ev_io_set(loop, &w->listen_io[i], EV_READ | EV_EXCLUSIVE);
}

void worker_pause_accept(struct worker *w)
{
	if (w->accept_paused)
		return;
	w->accept_paused = true;
	for (size_t i = 0; i < w->nlisten_io; i++)
		ev_io_stop(w->loop, &w->listen_io[i]);
	ev_timer_start(w->loop, &w->accept_retry, ev_now(w->loop) + ACCEPT_RETRY_MS);
}

/* Which listener a listening socket belongs to. */
static struct listener *listener_of_fd(struct broker *b, int fd)
{
	for (unsigned i = 0; i < b->nlisteners; i++)
		for (int k = 0; k < b->listeners[i].nfds; k++)
			if (b->listeners[i].fds[k] == fd)
				return &b->listeners[i];
	return NULL;
}

static bool over_limits(struct worker *w, struct listener *l)
{
	const struct config *cfg = w->cfg;
	int max = cfg->listeners[l->index].max_connections;

	if (max >= 0 && atomic_load(&l->connections) >= max)
		return true;
	/* memory_limit is answered at CONNECT, with CONNACK 3, so clients learn why. */
	return cfg->global_max_connections >= 0 &&
	       atomic_load(&w->broker->connections) >= cfg->global_max_connections;
}

static void on_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct worker *w = worker_of_loop(loop);
	struct listener *l = listener_of_fd(w->broker, io->fd);

	for (int i = 0; i < ACCEPTS_PER_EVENT && l; i++) {
		struct sockaddr_storage addr;
		socklen_t alen = sizeof(addr);
		int fd = accept4(io->fd, (struct sockaddr *)&addr, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_err("Error: unable to accept a connection: %s.", strerror(errno));
				worker_pause_accept(w);
			}
			return;
		}
		if (over_limits(w, l)) {
			close(fd);
			continue;
		}
		atomic_fetch_add(&l->connections, 1);
		atomic_fetch_add(&w->broker->connections, 1);
		STAT_ADD(w->stats.sockets, 1);
		if (!client_new(w, l, fd, (struct sockaddr *)&addr)) {
			atomic_fetch_sub(&l->connections, 1);
			atomic_fetch_sub(&w->broker->connections, 1);
			log_err("Error: out of memory accepting a connection.");
		}
	}
}

/* --- inbox --- */

static int vec_push(struct item_vec *v, const struct inbox_item *item)
{
	if (v->len == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct inbox_item *items = mem_realloc(v->items, cap * sizeof(*items));
		if (!items)
			return -1;
		v->items = items;
		v->cap = cap;
	}
	v->items[v->len++] = *item;
	return 0;
}

/* Releases what an item that will not be processed holds. */
static void item_drop(struct worker *w, struct inbox_item *it)
{
	if (it->kind == INBOX_DECIDED) {
		decision_free_data(it->ptr);
		mem_free(it->ptr);
		return;
	}
	if (it->kind == INBOX_KICK) {
		mem_free(it->ptr);
		return;
	}
	if (it->kind == INBOX_BRIDGE) {
		bridge_job_free(it->ptr);
		return;
	}
	if (it->kind == INBOX_CLUSTER_SESSION) {
		cluster_session_request_free(it->ptr);
		return;
	}
	if (it->kind == INBOX_CLUSTER_CLAIMED) {
		cluster_session_claimed_free(it->ptr);
		return;
	}
	if (it->kind == INBOX_CLUSTER_REPLAYED) {
		cluster_replayed_free(it->ptr);
		return;
	}
	if (it->kind == INBOX_PUBLISH || it->kind == INBOX_CLUSTER ||
	    it->kind == INBOX_CLUSTER_RETAINED) {
		message_unref(it->msg);
		return;
	}
	if (it->kind == INBOX_CLUSTER_SHARED) {
		message_unref(it->msg);
		cluster_share_unref(it->ptr);
		return;
	}
	if (it->kind == INBOX_ADOPT) {
		struct client *c = it->ptr;
		conn_close(&c->conn);
		atomic_fetch_sub(&c->listener->connections, 1);
		atomic_fetch_sub(&w->broker->connections, 1);
		client_free(c);
		return;
	}
	if (it->kind != INBOX_DELIVER)
		return;
	message_unref(it->msg);
	session_unref(it->session);
	STAT_DROP(w, DROP_NO_MEMORY);
}

void worker_post(struct worker *target, const struct inbox_item *item)
{
	int rc;

	pthread_mutex_lock(&target->inbox_lock);
	rc = vec_push(&target->inbox, item);
	pthread_mutex_unlock(&target->inbox_lock);
	if (rc < 0) {
		log_err("Error: out of memory passing work between workers.");
		struct inbox_item copy = *item;
		item_drop(target, &copy);
		return;
	}
	ev_async_send(&target->wake);
}

void worker_outbox_add(struct worker *w, const struct inbox_item *item)
{
	struct item_vec *v = &w->outbox[item->session->worker->index];

	if (vec_push(v, item) < 0) {
		struct inbox_item copy = *item;
		item_drop(w, &copy);
	}
}

/* Moves every outbox into its worker's inbox: one lock and one wake-up per worker. */
static void flush_outboxes(struct worker *w)
{
	for (unsigned i = 0; i < w->broker->nworkers; i++) {
		struct item_vec *v = &w->outbox[i];
		struct worker *t = &w->broker->workers[i];
		size_t done = 0;

		if (v->len == 0)
			continue;
		pthread_mutex_lock(&t->inbox_lock);
		if (t->inbox.len == 0 && t->inbox.cap < v->len) {
			/* Swap whole buffers when the inbox is empty: no copy. */
			struct item_vec tmp = t->inbox;
			t->inbox = *v;
			*v = tmp;
			done = t->inbox.len;
		} else {
			for (; done < v->len; done++)
				if (vec_push(&t->inbox, &v->items[done]) < 0)
					break;
		}
		pthread_mutex_unlock(&t->inbox_lock);
		for (size_t k = done; k < v->len; k++)
			item_drop(w, &v->items[k]);
		v->len = 0;
		ev_async_send(&t->wake);
	}
}

static void close_all_clients(struct worker *w)
{
	while (w->clients) {
		struct client *c = w->clients;
		if (c->state == CLIENT_ACTIVE)
			send_disconnect(c, MQTT_RC_SERVER_SHUTTING_DOWN);
		client_close(c, NULL, false);
	}
}

/* A reloaded ACL applies to live subscriptions too. */
static void recheck_subscriptions(struct worker *w)
{
	for (size_t i = 0; i < w->sessions.nbuckets; i++)
		for (struct session *s = w->sessions.buckets[i]; s; s = s->hnext)
			session_recheck_subscriptions(s);
}

/* A plugin asked to disconnect the client with this id, if it is ours and connected. */
static void kick(struct worker *w, const char *id, bool send_will)
{
	struct session *s = session_find(&w->sessions, id);
	struct client *c = s ? s->client : NULL;

	if (!c || c->state != CLIENT_ACTIVE)
		return;
	(void)send_disconnect(c, MQTT_RC_ADMINISTRATIVE_ACTION);
	client_close(c, "was disconnected by a plugin.", send_will);
}

static void on_wake(struct ev_loop *loop, struct ev_async *a)
{
	struct worker *w = worker_of_loop(loop);
	struct item_vec *work = &w->inbox_work;

	pthread_mutex_lock(&w->inbox_lock);
	struct item_vec tmp = w->inbox;
	w->inbox = *work;
	*work = tmp;
	pthread_mutex_unlock(&w->inbox_lock);

	for (size_t i = 0; i < work->len; i++) {
		struct inbox_item *it = &work->items[i];

		switch (it->kind) {
		case INBOX_DELIVER:
			session_deliver(it->session, it->msg, it->qos, it->retain, it->subid, it->id);
			message_unref(it->msg);
			session_unref(it->session);
			break;
		case INBOX_ADOPT:
			client_adopt(w, it->ptr);
			break;
		case INBOX_CONFIG: {
			const struct generation *g = it->ptr;
			w->cfg = g->cfg;
			w->policy = g->policy;
			/* Plugins the reload added start here before their first event. */
			plugin_host_worker_start(w->broker->plugins, w);
			recheck_subscriptions(w);
			/* The last worker to switch tells worker 0, which frees the old one. */
			if (atomic_fetch_add(&w->broker->cfg_switched, 1) + 1 == w->broker->nworkers)
				ev_async_send(&w->broker->workers[0].wake);
			break;
		}
		case INBOX_DECIDED:
			decision_answer(w, it->id, it->ptr);
			mem_free(it->ptr);
			break;
		case INBOX_PUBLISH:
			worker_defer_publish(w, it->msg);
			break;
		case INBOX_KICK:
			kick(w, it->ptr, it->retain);
			mem_free(it->ptr);
			break;
		case INBOX_BRIDGE:
			bridge_resolved(w, it->ptr);
			break;
		case INBOX_CLUSTER:
			route_publish_local(w, it->msg);
			message_unref(it->msg);
			break;
		case INBOX_CLUSTER_SHARED: {
			struct cluster_share *sh = it->ptr;
			route_publish_shared(w, it->msg, sh->group, sh->glen, sh->filter, sh->flen);
			message_unref(it->msg);
			cluster_share_unref(sh);
			break;
		}
		case INBOX_CLUSTER_SESSION:
			cluster_session_serve(w, it->ptr);
			break;
		case INBOX_CLUSTER_CLAIMED:
			cluster_session_claimed(w, it->id, it->ptr);
			break;
		case INBOX_CLUSTER_REPLAYED:
			cluster_session_replayed(w, it->ptr);
			break;
		case INBOX_CLUSTER_RETAINED:
			route_retain_local(w, it->msg);
			message_unref(it->msg);
			break;
		case INBOX_STOP:
			bridges_worker_stop(w);
			close_all_clients(w);
			ev_loop_stop(loop);
			break;
		}
	}
	work->len = 0;
	store_on_wake(w);
	if (w->index == 0)
		broker_on_wake(w->broker);
}

/* --- before sleeping --- */

void worker_defer_publish(struct worker *w, struct message *m)
{
	if (w->ndeferred == w->deferred_cap) {
		size_t cap = w->deferred_cap ? w->deferred_cap * 2 : 16;
		struct message **d = mem_realloc(w->deferred, cap * sizeof(*d));
		if (!d) {
			message_unref(m);
			return;
		}
		w->deferred = d;
		w->deferred_cap = cap;
	}
	w->deferred[w->ndeferred++] = m;
}

/* Routes what was deferred; lines logged meanwhile wait for the next turn. */
static void route_deferred(struct worker *w)
{
	size_t n = w->ndeferred;

	for (size_t i = 0; i < n; i++) {
		route_publish(w, w->deferred[i], NULL);
		message_unref(w->deferred[i]);
	}
	memmove(w->deferred, w->deferred + n, (w->ndeferred - n) * sizeof(*w->deferred));
	w->ndeferred -= n;
}

static void before_sleep(struct ev_loop *loop, void *data)
{
	struct worker *w = data;

	/* Input a transport decoded but no event announces; one turn each, then sleep
	 * without waiting if more is left. */
	struct client *rr = w->reread_head;
	w->reread_head = NULL;
	while (rr) {
		struct client *c = rr;
		rr = c->reread_next;
		c->reread_next = NULL;
		c->flags &= ~CLIENT_F_READ_MORE;
		if (c->state != CLIENT_CLOSING)
			client_read_again(c);
	}
	if (w->reread_head)
		ev_dont_sleep(loop);
	if (w->ndeferred)
		route_deferred(w);
	/* Before the outboxes: a worker learning of a stored message finds it stored. */
	store_turn_end(w);
	flush_outboxes(w);
	while (w->flush_head) {
		struct client *c = w->flush_head;
		w->flush_head = c->flush_next;
		c->flush_next = NULL;
		c->flags &= ~CLIENT_F_FLUSH_QUEUED;
		if (c->state == CLIENT_CLOSING)
			continue;
		if (client_flush(c) < 0)
			client_close(c, "connection error.", true);
	}
	/* What writing changed (messages put in flight) goes now, not at the next wake-up. */
	store_turn_end(w);
	/* Nothing refers to these any more: events of this turn are all handled
	 * (a plugin answer still on its way finds no wait and is dropped). */
	while (w->dead_head) {
		struct client *c = w->dead_head;
		w->dead_head = c->next;
		client_free(c);
	}
}

/* --- setup --- */

int worker_init(struct worker *w, struct broker *b, unsigned index)
{
	memset(w, 0, sizeof(*w));
	w->broker = b;
	w->index = index;
	w->cfg = b->cfg;
	w->policy = b->policy;
	w->loop = ev_loop_new(NULL);
	if (!w->loop)
		return -1;
	ev_set_userdata(w->loop, w);
	pthread_mutex_init(&w->inbox_lock, NULL);
	if (ev_async_init(w->loop, &w->wake, on_wake) < 0)
		return -1;
	w->rbuf_size = READ_BUFFER_SIZE;
	w->rbuf = mem_malloc(w->rbuf_size);
	w->outbox = mem_calloc(b->nworkers, sizeof(*w->outbox));
	if (!w->rbuf || !w->outbox)
		return -1;
	session_table_init(&w->sessions);
	ev_timer_init(&w->accept_retry, accept_resume);
	throttle_init(w);
	for (unsigned i = 0; i < b->nlisteners; i++)
		w->nlisten_io += (size_t)b->listeners[i].nfds;
	w->listen_io = mem_calloc(w->nlisten_io ? w->nlisten_io : 1, sizeof(*w->listen_io));
	if (!w->listen_io)
		return -1;
	size_t k = 0;
	for (unsigned i = 0; i < b->nlisteners; i++) {
		for (int j = 0; j < b->listeners[i].nfds; j++, k++) {
			ev_io_init(&w->listen_io[k], b->listeners[i].fds[j], on_accept);
			/* Every worker watches every socket; only one is woken per connection. */
			if (ev_io_set(w->loop, &w->listen_io[k], EV_READ | EV_EXCLUSIVE) < 0)
				return -1;
		}
	}
	ev_add_before_sleep(w->loop, before_sleep, w);
	return 0;
}

static void *thread_main(void *arg)
{
	worker_run(arg);
	return NULL;
}

int worker_start(struct worker *w)
{
	if (w->index == 0)
		return 0;
	w->threaded = true;
	return pthread_create(&w->thread, NULL, thread_main, w) == 0 ? 0 : -1;
}

void worker_run(struct worker *w)
{
	current_worker = w;
	plugin_host_worker_start(w->broker->plugins, w);
	bridges_worker_start(w);
	cluster_marks_start(w);
	if (ev_run(w->loop) < 0)
		log_err("Error: event loop of worker %u failed: %s.", w->index, strerror(errno));
	/* Final flush of what the last turn queued (DISCONNECTs at shutdown). */
	before_sleep(w->loop, w);
	hooks_timers_free(w);
	plugin_host_worker_stop(w->broker->plugins, w);
	current_worker = NULL;
}

/* Ends every session this worker owns (at shutdown, after its clients are closed). */
static void destroy_sessions(struct worker *w)
{
	for (size_t i = 0; i < w->sessions.nbuckets; i++) {
		while (w->sessions.buckets && w->sessions.buckets[i]) {
			struct session *s = w->sessions.buckets[i];
			s->client = NULL;
			session_destroy(s);
		}
	}
}

void worker_fini(struct worker *w)
{
	if (!w->loop)
		return;
	throttle_fini(w);
	destroy_sessions(w);
	session_table_free(&w->sessions);
	for (size_t i = 0; i < w->nlisten_io; i++)
		ev_io_stop(w->loop, &w->listen_io[i]);
	mem_free(w->listen_io);
	for (size_t i = 0; i < w->inbox.len; i++)
		item_drop(w, &w->inbox.items[i]);
	mem_free(w->inbox.items);
	mem_free(w->inbox_work.items);
	for (unsigned i = 0; w->outbox && i < w->broker->nworkers; i++) {
		for (size_t k = 0; k < w->outbox[i].len; k++)
			item_drop(w, &w->outbox[i].items[k]);
		mem_free(w->outbox[i].items);
	}
	mem_free(w->outbox);
	mem_free(w->route_buf.items);
	if (w->store.batch)
		persist_batch_free(w->store.batch);
	mem_free(w->store.held);
	decision_table_fini(&w->decisions);
	for (size_t i = 0; i < w->ndeferred; i++)
		message_unref(w->deferred[i]);
	mem_free(w->deferred);
	match_ctx_free(&w->match);
	mem_free(w->rbuf);
	ev_async_close(w->loop, &w->wake);
	pthread_mutex_destroy(&w->inbox_lock);
	ev_loop_free(w->loop);
	w->loop = NULL;
}
