/*
 * bench.h: what midge_bench's parts share.
 *
 * bench_util.c: clocks, buffers, the latency histogram and /proc readings;
 * bench_net.c: sockets on one epoll instance, framing, the MQTT packets a
 * client sends; bench_flow.c: the message scenarios (fanin, fanout, pairs);
 * bench_conn.c: the connection scenarios (connect storm, idle connections);
 * midge_bench.c: the command line and the report.
 */
#ifndef MIDGE_BENCH_H
#define MIDGE_BENCH_H

#include "codec.h"
#include "packet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define NS_PER_US 1000ull

enum scenario { SC_FANIN, SC_FANOUT, SC_PAIRS, SC_CONNECT, SC_IDLE };

struct opts {
	enum scenario scenario;
	const char *host;
	const char *port;
	const char *sub_port; /* NULL: subscribers use port too; else another node's */
	unsigned publishers;  /* resolved from the scenario's own option */
	unsigned subscribers;
	unsigned connections; /* connect, idle */
	unsigned concurrency; /* connection attempts in flight */
	uint64_t count;       /* -n: messages published in all */
	uint32_t size;
	uint8_t qos;
	bool retain;
	int proto;            /* MQTT_PROTO_V311 or MQTT_PROTO_V5 */
	unsigned window;
	double rate;          /* open loop: messages/s in all; 0: closed loop */
	double duration;
	double drain;
	double timeout;
	long pid;             /* 0: none */
	bool json;
	bool subscribe;       /* idle: one subscription each */
	bool persistent_sub;  /* subscribers keep their session */
	const char *user;
	const char *password;
};

/* ---- bench_util.c ---- */

uint64_t now_ns(void);
double secs(uint64_t ns);
void *xrealloc(void *p, size_t n);
void *xcalloc(size_t n, size_t size);

/* Bytes p[off..len) are pending. */
struct buf {
	uint8_t *p;
	size_t off, len, cap;
};

static inline size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_free(struct buf *b);

/*
 * Latency histogram in nanoseconds: exact below 128 ns, then 64 buckets per
 * power of two (within 1.6 %), so memory is fixed whatever the count.
 */
#define HIST_BUCKETS (128u + 57u * 64u)
struct hist {
	uint64_t n;
	uint64_t max;
	uint64_t *counts;
};
void hist_init(struct hist *h);
void hist_free(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
/* The value at percentile p (0..100) in microseconds; -1 when empty. */
double hist_percentile_us(const struct hist *h, double p);

/*
 * CPU time of a process in nanoseconds: the sum of its threads' run time
 * from /proc/PID/task/ * /schedstat (exact), else utime + stime from
 * /proc/PID/stat (in clock ticks, 10 ms: too coarse for short runs).
 */
bool read_cpu_ns(long pid, unsigned long long *ns);
/* VmRSS of a process in bytes, from /proc/PID/status. */
bool read_rss(long pid, uint64_t *bytes);
/* CPU seconds this process used so far (user + system). */
double self_cpu_s(void);
/* Raises the soft limit of open files to the hard one; returns the new limit. */
unsigned long raise_nofile(void);

/* ---- bench_net.c ---- */

enum cstate {
	CS_IDLE,       /* no socket */
	CS_CONNECTING, /* TCP connect in progress */
	CS_CONNACK,    /* CONNECT sent, waiting for CONNACK */
	CS_SUBACK,     /* SUBSCRIBE sent, waiting for SUBACK */
	CS_READY,      /* connected (and subscribed) */
	CS_CLOSING,    /* DISCONNECT sent: waiting for the broker to close */
};

struct conn {
	int fd;
	uint8_t state;     /* enum cstate */
	uint8_t kind;      /* the scenario's own tag */
	bool pollout;      /* EPOLLOUT is registered: the last write would have blocked */
	bool alt;          /* connects to --sub-port (another node of a cluster) */
	uint32_t index;    /* in the scenario's arrays */
	uint16_t recv_max; /* the broker's Receive Maximum (MQTT 5), else 65535 */
	uint64_t t_state;  /* when the current state began */
	struct buf in, out;
};

struct net;

/* What a scenario does on the events of its connections. */
struct net_handlers {
	/* The TCP connection is up (send CONNECT). */
	void (*connected)(struct net *n, struct conn *c);
	/* One complete packet; body is f->remaining bytes. */
	void (*packet)(struct net *n, struct conn *c, const struct mqtt_frame *f,
		       const uint8_t *body, uint64_t now);
	/* The broker closed the connection, or the socket failed (err 0: end of stream). */
	void (*closed)(struct net *n, struct conn *c, int err);
	/* Optional: some of a backlog that waited for EPOLLOUT is written. */
	void (*flushed)(struct net *n, struct conn *c);
};

struct net {
	const struct opts *o;
	const struct net_handlers *h;
	void *ctx; /* the scenario's state */
	int epfd;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct sockaddr_storage alt_addr; /* --sub-port: the same host, that port */
	socklen_t alt_addrlen;            /* 0: none */
	uint8_t *scratch; /* reads land here first, so idle connections hold no buffer */
	uint64_t last_rx; /* last byte received on any connection */
	unsigned tag;     /* our pid, in client ids */
	bool failed;
	char err[512];
};

bool net_init(struct net *n, const struct opts *o, const struct net_handlers *h, void *ctx);
void net_free(struct net *n);
__attribute__((format(printf, 2, 3)))
void net_fail(struct net *n, const char *fmt, ...);
/* Starts a non-blocking TCP connect; false (and net_fail) when it cannot. */
bool net_open(struct net *n, struct conn *c);
void net_close(struct net *n, struct conn *c);
/* Writes what is pending; false when the connection is gone. */
bool net_flush(struct net *n, struct conn *c);
/* Waits up to timeout_ns (0: poll) for events and handles them; false on error. */
bool net_wait(struct net *n, uint64_t timeout_ns);
/* A file descriptor the loop also watches (a timer); its events only wake net_wait. */
bool net_watch_fd(struct net *n, int fd);
void net_set_state(struct conn *c, enum cstate s, uint64_t now);

void queue_connect(struct net *n, struct conn *c, const char *client_id, bool clean,
		   uint16_t keepalive);
void queue_subscribe(struct net *n, struct conn *c, const char *filter, uint8_t qos);
void queue_ack(struct net *n, struct conn *c, uint8_t type, uint16_t id);
void queue_disconnect(struct net *n, struct conn *c);
/*
 * Decodes a CONNACK; on success sets c->recv_max and returns true. A refusal
 * returns false with *code set; a malformed one fails the run.
 */
bool take_connack(struct net *n, struct conn *c, const uint8_t *body, uint32_t len,
		  uint8_t flags, uint8_t *code);
const char *connack_text(int proto, uint8_t code);

/* ---- Scenarios: their results ---- */

struct result {
	double wall_s;
	double broker_cpu_s; /* < 0: not measured */
	double bench_cpu_s;  /* ours, over the same phase: near wall_s means we were the limit */
	struct hist lat;
	/* Message scenarios. */
	uint64_t sent, delivered, expected, lost, duplicates, reordered, stale, acked;
	/* Connection scenarios. */
	uint64_t connections, refused, failed;
	uint64_t rss_before, rss_after;
	bool ok;
	char err[512];
};

void run_flow(const struct opts *o, struct result *res);
void run_connect(const struct opts *o, struct result *res);
void run_idle(const struct opts *o, struct result *res);

#endif
