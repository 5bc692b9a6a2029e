/*
 * bridge.c: the life of a bridge (see bridge.h): its settings, its local
 * session and subscriptions, connecting (resolving names off the loop),
 * reconnecting with back-off, the lazy and once start types, state
 * notifications, and shutdown.
 */
#include "config.h"

#include "bridge_int.h"

#include "alloc.h"
#include "broker.h"
#include "client.h"
#include "conn_tls.h"
#include "deliver.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "send.h"
#include "session.h"
#include "store.h"
#include "subtree.h"
#include "worker.h"

#include <midge/mqtt.h>
#include <midge/plugin.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The listener index bridges present to plugins and ACLs: none of the configured ones. */
#define BRIDGE_LISTENER 0xFFFFu
/* How often a lazy bridge checks its queue, ms. */
#define LAZY_CHECK_MS 1000

static char *dup_or_null(const char *s)
{
	return s ? mem_strdup(s) : NULL;
}

static void on_bridge_timer(struct ev_loop *loop, struct ev_timer *t);

/* --- settings --- */

static int copy_settings(struct bridge *br, const struct config_bridge *cb)
{
	char host[256] = "localhost", buf[600];

	br->name = mem_strdup(cb->name);
	if (cb->remote_clientid) {
		br->remote_id = mem_strdup(cb->remote_clientid);
	} else {
		gethostname(host, sizeof(host) - 1);
		snprintf(buf, sizeof(buf), "%s.%s", host, cb->name);
		br->remote_id = mem_strdup(buf);
	}
	if (!br->name || !br->remote_id)
		return -1;
	if (cb->local_clientid) {
		br->local_id = mem_strdup(cb->local_clientid);
	} else {
		snprintf(buf, sizeof(buf), "local.%s", br->remote_id);
		br->local_id = mem_strdup(buf);
	}
	if (cb->notifications) {
		if (cb->notification_topic) {
			br->notify_topic = mem_strdup(cb->notification_topic);
		} else {
			snprintf(buf, sizeof(buf), "$SYS/broker/connection/%s/state", br->remote_id);
			br->notify_topic = mem_strdup(buf);
		}
		if (!br->notify_topic)
			return -1;
	}
	br->notify_local_only = cb->notifications_local_only;
	br->hosts = mem_calloc(cb->naddresses, sizeof(*br->hosts));
	br->ports = mem_calloc(cb->naddresses, sizeof(*br->ports));
	if (!br->local_id || !br->hosts || !br->ports)
		return -1;
	for (size_t i = 0; i < cb->naddresses; i++, br->naddrs++) {
		if (!(br->hosts[i] = mem_strdup(cb->addresses[i].host)))
			return -1;
		br->ports[i] = cb->addresses[i].port > 0 ? cb->addresses[i].port : 1883;
	}
	br->round_robin = cb->round_robin;
	br->username = dup_or_null(cb->remote_username);
	br->password = dup_or_null(cb->remote_password);
	br->bind_address = dup_or_null(cb->bind_address);
	if ((cb->remote_username && !br->username) || (cb->remote_password && !br->password) ||
	    (cb->bind_address && !br->bind_address))
		return -1;
	br->clean_remote = cb->cleansession;
	br->clean_local = cb->local_cleansession < 0 ? cb->cleansession : cb->local_cleansession != 0;
	br->keepalive = (uint16_t)cb->keepalive_interval;
	br->start_type = cb->start_type;
	br->restart_base = cb->restart_timeout_base > 0 ? cb->restart_timeout_base : 1;
	br->restart_cap = cb->restart_timeout_cap;
	br->idle_timeout = cb->idle_timeout;
	br->threshold = cb->threshold;
	br->try_private = cb->try_private;
	br->protocol = (uint8_t)cb->protocol_version;
	br->outgoing_retain = cb->outgoing_retain;
	br->attempt_unsubscribe = cb->attempt_unsubscribe;
	br->max_packet_size = cb->max_packet_size;
	br->session_expiry = cb->session_expiry_interval;
	br->receive_maximum = (uint16_t)cb->receive_maximum;
	br->tls_verify_name = !cb->insecure;
	br->backoff = br->restart_base;
	return bridge_topics_init(br, cb);
}

static bool uses_tls(const struct config_bridge *cb)
{
	return cb->cafile || cb->capath || cb->certfile || cb->psk || cb->tls_use_os_certs;
}

int bridges_init(struct broker *b)
{
	const struct config *cfg = b->cfg;

	b->bridge_listener.index = BRIDGE_LISTENER;
	if (!cfg->nbridges)
		return 0;
	b->bridges = mem_calloc(cfg->nbridges, sizeof(*b->bridges));
	if (!b->bridges)
		return -1;
	for (size_t i = 0; i < cfg->nbridges; i++) {
		const struct config_bridge *cb = &cfg->bridges[i];
		struct bridge *br = &b->bridges[i];
		char err[300];

		b->nbridges++;
		br->broker = b;
		br->index = (unsigned)i;
		if (copy_settings(br, cb) < 0) {
			log_err("Error: out of memory setting up bridge %s.", cb->name);
			return -1;
		}
		if (uses_tls(cb) && !(br->tls = bridge_tls_ctx(cb, err, sizeof(err)))) {
			log_err("Error: bridge %s: %s", cb->name, err);
			return -1;
		}
		br->worker = worker_for_hash(b, session_id_hash(br->local_id, strlen(br->local_id)));
	}
	return 0;
}

void bridges_free(struct broker *b)
{
	for (size_t i = 0; i < b->nbridges; i++) {
		struct bridge *br = &b->bridges[i];
		mem_free(br->name);
		mem_free(br->remote_id);
		mem_free(br->local_id);
		mem_free(br->notify_topic);
		for (size_t k = 0; k < br->naddrs; k++)
			mem_free(br->hosts[k]);
		mem_free(br->hosts);
		mem_free(br->ports);
		mem_free(br->username);
		mem_free(br->password);
		mem_free(br->bind_address);
		bridge_topics_free(br);
		bridge_tls_free(br->tls);
	}
	mem_free(b->bridges);
	b->bridges = NULL;
	b->nbridges = 0;
}

/* --- the local session --- */

static void subscribe_locally(struct bridge *br, struct session *s)
{
	struct broker *b = br->broker;
	uint8_t flags = SUBOPT_NO_LOCAL | (br->outgoing_retain ? SUBOPT_RETAIN_AS_PUBLISHED : 0);

	/* Subscriptions a stored session kept from an older configuration go. */
	for (struct session_sub *sub = s->subs, *next; sub; sub = next) {
		bool wanted = false;
		next = sub->next; /* sub may go */
		for (size_t k = 0; k < br->ntopics && !wanted; k++)
			wanted = br->topics[k].direction != BRIDGE_IN &&
				 strcmp(br->topics[k].local_filter, sub->filter) == 0;
		if (wanted)
			continue;
		pthread_rwlock_wrlock(&b->sub_lock);
		subtree_remove_any(&b->subs, sub->filter, sub->len, s);
		pthread_rwlock_unlock(&b->sub_lock);
		store_sub_forget(s, sub->filter, sub->len);
		session_sub_remove(s, sub->filter, sub->len);
	}
	for (size_t k = 0; k < br->ntopics; k++) {
		const struct bridge_topic *t = &br->topics[k];
		size_t len = strlen(t->local_filter);
		struct subscriber sub = {.session = s, .qos = t->qos, .flags = flags};
		if (t->direction == BRIDGE_IN)
			continue;
		if (session_sub_put(s, t->local_filter, len, t->qos, flags, 0) < 0) {
			log_err("Error: out of memory subscribing bridge %s to %s.", br->name,
				t->local_filter);
			continue;
		}
		pthread_rwlock_wrlock(&b->sub_lock);
		int rc = subtree_add_any(&b->subs, t->local_filter, len, &sub);
		pthread_rwlock_unlock(&b->sub_lock);
		if (rc < 0)
			log_err("Error: out of memory subscribing bridge %s to %s.", br->name,
				t->local_filter);
		store_sub_save(s, t->local_filter, len, t->qos, flags, 0);
	}
}

/* The bridge's session on this broker (a stored one is taken over). */
static struct session *local_session(struct bridge *br)
{
	struct worker *w = br->worker;
	struct session *s = br->session;

	if (s)
		return s;
	s = session_find(&w->sessions, br->local_id);
	if (s && s->client) {
		/* A client took the bridge's id: the bridge wins, as it would on a CONNECT. */
		(void)send_disconnect(s->client, MQTT_RC_SESSION_TAKEN_OVER);
		client_close(s->client, "was disconnected: its id belongs to a bridge.", true);
		s = session_find(&w->sessions, br->local_id);
	}
	if (!s && !(s = session_new(w, br->local_id)))
		return NULL;
	s->bridge = br;
	s->expiry_interval = br->clean_local ? 0 : SESSION_EXPIRY_NEVER;
	s->protocol = br->protocol;
	s->listener = BRIDGE_LISTENER;
	/* A lazy bridge counts what waits for it, QoS 0 included. */
	s->queue_qos0 = br->start_type == BRIDGE_START_LAZY;
	br->session = s;
	store_session_save(s);
	subscribe_locally(br, s);
	return s;
}

void bridge_session_gone(struct session *s)
{
	if (s->bridge && s->bridge->session == s)
		s->bridge->session = NULL;
	s->bridge = NULL;
}

/* --- notifications and plugin events --- */

void bridge_notify_local(struct bridge *br, bool up)
{
	if (br->notify_topic)
		broker_publish(br->worker, br->notify_topic, up ? "1" : "0", 1, 1, true);
}

static void state_changed(struct bridge *br, bool up)
{
	atomic_store(&br->connected, up);
	bridge_notify_local(br, up);
	(void)bridge_event(br, MIDGE_BRIDGE_STATE, false, NULL, NULL, NULL, 0, false);
}

/* --- connecting --- */

static void schedule(struct bridge *br, int64_t ms)
{
	struct ev_loop *loop = br->worker->loop;

	ev_timer_start(loop, &br->timer, ev_now(loop) + ms);
}

/* After a failed or ended connection: when to try again, if at all. */
static void retry_later(struct bridge *br, bool was_up)
{
	br->state = BRIDGE_IDLE;
	if (br->stopping)
		return;
	switch (br->start_type) {
	case BRIDGE_START_ONCE:
		br->state = BRIDGE_STOPPED;
		log_notice("Bridge %s will not reconnect (start_type once).", br->name);
		return;
	case BRIDGE_START_LAZY:
		schedule(br, LAZY_CHECK_MS);
		return;
	case BRIDGE_START_AUTOMATIC:
		break;
	}
	if (was_up) {
		br->backoff = br->restart_base;
	} else if (br->restart_cap > 0) {
		/* Jittered exponential back-off between base and cap. */
		int hi = br->backoff * 3 > br->restart_cap ? br->restart_cap : br->backoff * 3;
		br->backoff = hi > br->restart_base ? br->restart_base + rand() % (hi - br->restart_base + 1)
						    : br->restart_base;
	}
	if (!br->round_robin && was_up)
		br->addr_next = 0; /* the first address is the main one */
	schedule(br, (int64_t)br->backoff * 1000);
}

static int open_socket(struct bridge *br, const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (br->bind_address) {
		struct addrinfo hints = {.ai_family = sa->sa_family, .ai_flags = AI_NUMERICHOST |
										AI_PASSIVE}, *res;
		if (getaddrinfo(br->bind_address, NULL, &hints, &res) != 0) {
			close(fd);
			errno = EADDRNOTAVAIL;
			return -1;
		}
		int rc = bind(fd, res->ai_addr, res->ai_addrlen);
		freeaddrinfo(res);
		if (rc < 0) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void connect_to(struct bridge *br, const struct sockaddr *sa, socklen_t len)
{
	struct worker *w = br->worker;
	struct conn conn;
	int fd = open_socket(br, sa, len);

	if (fd < 0) {
		log_notice("Bridge %s: cannot connect to %s:%d: %s.", br->name, br->addr_host,
			   br->addr_port, strerror(errno));
		retry_later(br, false);
		return;
	}
	if (!br->tls) {
		conn_tcp_init(&conn, fd);
	} else if (conn_tls_init_client(&conn, fd, br->tls, br->addr_host, br->tls_verify_name) < 0) {
		close(fd);
		log_err("Error: bridge %s: unable to start TLS.", br->name);
		retry_later(br, false);
		return;
	}
	br->client = client_new_bridge(w, &br->broker->bridge_listener, &conn, sa, br);
	if (!br->client) {
		log_err("Error: out of memory connecting bridge %s.", br->name);
		retry_later(br, false);
		return;
	}
	br->state = BRIDGE_CONNECTING;
	if (bridge_send_connect(br) < 0)
		client_close(br->client, "could not send CONNECT (out of memory).", false);
}

struct resolve_job {
	struct broker *broker;
	unsigned bridge;
	uint64_t gen;
	char *host;
	int port;
	int rc;
	struct sockaddr_storage addr;
	socklen_t len;
};

static bool numeric(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
		return true;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return true;
	}
	return false;
}

/* A host name is resolved on a thread of its own: the loop never waits for DNS. */
static void *resolve_main(void *arg)
{
	struct resolve_job *job = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	char port[16];

	snprintf(port, sizeof(port), "%d", job->port);
	job->rc = getaddrinfo(job->host, port, &hints, &res);
	if (job->rc == 0 && res) {
		memcpy(&job->addr, res->ai_addr, res->ai_addrlen);
		job->len = res->ai_addrlen;
	}
	if (res)
		freeaddrinfo(res);
	struct bridge *br = &job->broker->bridges[job->bridge];
	struct inbox_item item = {.kind = INBOX_BRIDGE, .ptr = job};
	worker_post(br->worker, &item);
	return NULL;
}

void bridge_job_free(void *p)
{
	struct resolve_job *job = p;

	if (job) {
		mem_free(job->host);
		mem_free(job);
	}
}

void bridge_resolved(struct worker *w, void *p)
{
	struct resolve_job *job = p;
	struct bridge *br = &w->broker->bridges[job->bridge];

	pthread_join(br->resolver, NULL);
	br->resolver_running = false;
	if (br->state == BRIDGE_RESOLVING && job->gen == br->resolve_gen && !br->stopping) {
		if (job->rc != 0) {
			log_notice("Bridge %s: cannot resolve %s: %s.", br->name, br->addr_host,
				   gai_strerror(job->rc));
			retry_later(br, false);
		} else {
			connect_to(br, (const struct sockaddr *)&job->addr, job->len);
		}
	}
	bridge_job_free(job);
}

static void bridge_connect(struct bridge *br)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i = br->addr_next % br->naddrs;
	const char *host = br->hosts[i];

	if (br->stopping || br->client || br->resolver_running)
		return;
	if (!local_session(br)) {
		log_err("Error: out of memory setting up bridge %s.", br->name);
		retry_later(br, false);
		return;
	}
	br->addr_next = i + 1;
	br->addr_host = host;
	br->addr_port = br->ports[i];
	log_notice("Connecting bridge %s (%s:%d)", br->name, host, br->ports[i]);
	(void)bridge_event(br, MIDGE_BRIDGE_CONNECTING, false, NULL, NULL, NULL, 0, false);
	if (numeric(host, br->ports[i], &ss, &len)) {
		connect_to(br, (const struct sockaddr *)&ss, len);
		return;
	}
	struct resolve_job *job = mem_calloc(1, sizeof(*job));
	if (!job || !(job->host = mem_strdup(host))) {
		mem_free(job);
		retry_later(br, false);
		return;
	}
	job->broker = br->broker;
	job->bridge = br->index;
	job->port = br->ports[i];
	job->gen = ++br->resolve_gen;
	br->state = BRIDGE_RESOLVING;
	if (pthread_create(&br->resolver, NULL, resolve_main, job) != 0) {
		bridge_job_free(job);
		retry_later(br, false);
		return;
	}
	br->resolver_running = true;
}

/* --- state changes from the connection --- */

void bridge_up(struct bridge *br)
{
	struct client *c = br->client;
	struct worker *w = br->worker;
	struct session *s = local_session(br);

	if (!s) {
		client_close(c, "could not set up its session (out of memory).", false);
		return;
	}
	br->state = BRIDGE_UP;
	br->backoff = br->restart_base;
	br->last_traffic = ev_now(w->loop);
	atomic_fetch_add(&br->connects, 1);
	c->state = CLIENT_ACTIVE;
	c->protocol = br->protocol;
	c->keepalive = br->keepalive;
	c->id = s->client_id;
	c->session = s;
	s->client = c;
	atomic_store_explicit(&s->online, true, memory_order_relaxed);
	STAT_ADD(w->stats.clients_connected, 1);
	atomic_fetch_add(&w->broker->clients_connected, 1);
	log_notice("Bridge %s connected to %s:%d.", br->name, br->addr_host, br->addr_port);
	if (bridge_send_subscriptions(br) < 0 || bridge_send_notification(br, true) < 0) {
		client_close(c, "could not subscribe (out of memory).", false);
		return;
	}
	bridge_on_timer(c); /* keepalive from here */
	state_changed(br, true);
	session_resume(s);
	if (br->start_type == BRIDGE_START_LAZY)
		schedule(br, (int64_t)br->idle_timeout * 1000);
}

void bridge_refused(struct bridge *br, uint8_t code)
{
	/* A remote that does not know the bridge flag refuses the protocol level: ask again
	 * without it. */
	if ((code == MQTT_CONNACK_REFUSED_PROTOCOL_VERSION || code == 0x84) && br->try_private &&
	    !br->private_refused && br->protocol != MQTT_PROTO_V5) {
		br->private_refused = true;
		br->backoff = 0;
		log_notice("Bridge %s: the remote refused the bridge protocol flag; trying without it.",
			   br->name);
		return;
	}
	log_notice("Bridge %s: connection refused by %s:%d (code %u).", br->name, br->addr_host,
		   br->addr_port, code);
}

void bridge_client_closed(struct client *c)
{
	struct bridge *br = c->bridge;
	bool was_up = br->state == BRIDGE_UP;

	if (br->client != c)
		return;
	br->client = NULL;
	ev_timer_stop(br->worker->loop, &br->timer);
	if (was_up) {
		log_notice("Bridge %s disconnected from %s:%d.", br->name, br->addr_host, br->addr_port);
		state_changed(br, false);
	}
	if (br->backoff == 0) { /* refused the flag: again at once, without it */
		br->backoff = br->restart_base;
		br->state = BRIDGE_IDLE;
		schedule(br, 0);
		return;
	}
	retry_later(br, was_up);
}

void bridge_on_timer(struct client *c)
{
	struct bridge *br = c->bridge;
	struct ev_loop *loop = c->worker->loop;
	int64_t now = ev_now(loop);
	int64_t last_rx = client_last_rx(c, now);

	if (br->state != BRIDGE_UP) {
		/* No CONNACK within the keepalive (10 s at least). */
		int64_t limit = (br->keepalive > 10 ? br->keepalive : 10) * 1000;
		if (now >= last_rx + limit) {
			client_close(c, "(bridge): the remote did not answer CONNECT.", false);
			return;
		}
		ev_timer_start(loop, &c->timer, last_rx + limit);
		return;
	}
	if (br->keepalive == 0)
		return;
	/* A PINGREQ every keepalive; nothing heard for 1.5 keepalives ends the connection. */
	if (now >= last_rx + (int64_t)br->keepalive * 1500) {
		client_close(c, "(bridge): the remote stopped answering.", false);
		return;
	}
	uint8_t *p = client_out(c, 2);
	if (p) {
		p[0] = MQTT_PINGREQ << 4;
		p[1] = 0;
		worker_schedule_flush(c->worker, c);
	}
	ev_timer_start(loop, &c->timer, now + (int64_t)br->keepalive * 1000);
}

static void on_bridge_timer(struct ev_loop *loop, struct ev_timer *t)
{
	struct bridge *br = (struct bridge *)((char *)t - offsetof(struct bridge, timer));
	int64_t now = ev_now(loop);

	if (br->stopping)
		return;
	if (br->state == BRIDGE_UP) {
		/* lazy: an idle bridge goes down until messages pile up again */
		if (br->start_type != BRIDGE_START_LAZY || !br->client)
			return;
		int64_t idle_until = br->last_traffic + (int64_t)br->idle_timeout * 1000;
		if (now < idle_until) {
			ev_timer_start(loop, t, idle_until);
			return;
		}
		log_notice("Bridge %s has been idle for %d s: disconnecting (start_type lazy).",
			   br->name, br->idle_timeout);
		(void)bridge_send_notification(br, false);
		(void)send_disconnect(br->client, MQTT_RC_SUCCESS);
		client_close(br->client, NULL, false);
		return;
	}
	if (br->state != BRIDGE_IDLE)
		return;
	if (br->start_type == BRIDGE_START_LAZY) {
		struct session *s = local_session(br);
		if (!s || session_queued(s) + session_inflight(s) < (uint32_t)br->threshold) {
			schedule(br, LAZY_CHECK_MS);
			return;
		}
	}
	bridge_connect(br);
}

/* --- start and stop --- */

void bridges_worker_start(struct worker *w)
{
	struct broker *b = w->broker;

	for (size_t i = 0; i < b->nbridges; i++) {
		struct bridge *br = &b->bridges[i];
		if (br->worker != w)
			continue;
		ev_timer_init(&br->timer, on_bridge_timer);
		if (!local_session(br)) {
			log_err("Error: out of memory setting up bridge %s.", br->name);
			continue;
		}
		/* Down until connected (a stored "1" from an earlier run is stale). */
		bridge_notify_local(br, false);
		if (br->start_type == BRIDGE_START_LAZY)
			schedule(br, LAZY_CHECK_MS);
		else
			bridge_connect(br);
	}
}

void bridges_worker_stop(struct worker *w)
{
	struct broker *b = w->broker;

	for (size_t i = 0; i < b->nbridges; i++) {
		struct bridge *br = &b->bridges[i];
		if (br->worker != w)
			continue;
		br->stopping = true;
		ev_timer_stop(w->loop, &br->timer);
		if (br->client && br->state == BRIDGE_UP) {
			(void)bridge_send_notification(br, false);
			(void)send_disconnect(br->client, MQTT_RC_SUCCESS);
		}
		if (br->client)
			client_close(br->client, NULL, false);
		br->state = BRIDGE_STOPPED;
	}
}

void bridges_join(struct broker *b)
{
	for (size_t i = 0; i < b->nbridges; i++) {
		if (b->bridges[i].resolver_running) {
			pthread_join(b->bridges[i].resolver, NULL);
			b->bridges[i].resolver_running = false;
		}
	}
}

/* --- $SYS --- */

size_t bridges_count(const struct broker *b)
{
	return b->nbridges;
}

void bridge_stats(const struct broker *b, size_t i, struct bridge_stats *out)
{
	struct bridge *br = &b->bridges[i];

	out->name = br->name;
	out->connected = atomic_load(&br->connected);
	out->messages_out = atomic_load(&br->messages_out);
	out->messages_in = atomic_load(&br->messages_in);
	out->connects = atomic_load(&br->connects);
}
