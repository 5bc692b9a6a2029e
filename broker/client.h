/*
 * client.h: one network connection speaking MQTT.
 *
 * Owns the socket (through its transport), the input bytes of a packet not
 * yet complete, the output queue, the keepalive / connect timer, the will
 * and the link to the session. A client lives on one worker; it is never
 * freed inside its own callbacks: client_close() unlinks it and the worker
 * frees it at the top of its next loop turn.
 */
#ifndef MIDGE_CLIENT_H
#define MIDGE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "conn.h"
#include "ev.h"
#include "outq.h"

struct bridge;
struct decision_wait;
struct ext_auth;
struct listener;
struct message;
struct preauth;
struct session;
struct worker;

enum client_state {
	CLIENT_NEW = 0,     /* accepted, waiting for CONNECT */
	CLIENT_PARKED,      /* CONNECT seen, moving to its owning worker */
	CLIENT_ACTIVE,      /* CONNACK sent */
	CLIENT_CLOSING,     /* unlinked, waiting to be freed */
};

enum {
	CLIENT_F_FLUSH_QUEUED = 1u << 0, /* on the worker's flush list */
	CLIENT_F_WANT_WRITE = 1u << 1,   /* waiting for the socket to drain */
	CLIENT_F_READ_PAUSED = 1u << 2,  /* output too large: stop reading */
	CLIENT_F_HELD = 1u << 3,         /* input held while a plugin decides (decision.h) */
	CLIENT_F_READ_MORE = 1u << 4,    /* on the worker's re-read list */
	CLIENT_F_OUT_HELD = 1u << 5,     /* output waits for the store or the cluster (store.h) */
	CLIENT_F_BRIDGE_PEER = 1u << 6,  /* another broker's bridge: no echo, retain as published */
	CLIENT_F_CLOSE_AFTER_FLUSH = 1u << 7, /* an HTTP answer: close once it is written */
	CLIENT_F_HOLD_FAILED = 1u << 8,  /* no memory to hold output for the store: close, write nothing */
	/* The family of the peer address (none of them: unknown). */
	CLIENT_F_ADDR_INET = 1u << 9,
	CLIENT_F_ADDR_INET6 = 1u << 10,
	CLIENT_F_ADDR_UNIX = 1u << 11,
	CLIENT_F_THROTTLED = 1u << 12,   /* input stopped until a subscriber drains (throttle.h) */
	CLIENT_F_CLEAN_START = 1u << 13, /* as the CONNECT asked */
	CLIENT_F_PROBLEM_INFO = 1u << 14, /* MQTT 5: reason strings may go on acks */
};

#define CLIENT_MAX_HOLDS 4

/*
 * Output from out.appended == mark on waits for the worker's store batch seq
 * and its cluster messages up to cseq (store.h; 0: no wait for that one); it
 * fails when one of its cluster messages cfirst..cseq failed.
 */
struct client_hold {
	uint64_t seq, cfirst, cseq, mark;
};

/*
 * What few connections need, allocated the first time one of them does
 * (client_ext()) and freed with the client: an idle connection carries
 * only struct client.
 */
struct client_ext {
	struct client_hold hold[CLIENT_MAX_HOLDS];
	uint64_t cluster_will;          /* its registration with the cluster (cluster.h), 0 = none */
	struct decision_wait *wait;     /* a plugin decision this client's packet waits for */
	struct client_plugin_data *pdata; /* per plugin, indexed by the plugin's index */
	struct ext_auth *xauth;         /* MQTT 5 extended authentication in progress / method */
	struct preauth *preauth;        /* CONNECT decided on another worker (renamed client id) */
	/* MQTT 5 topic aliases of this network connection (topic_alias.c). */
	struct topic_alias_in *alias_in;   /* client -> broker, NULL until first set */
	struct topic_alias_out *alias_out; /* broker -> client, NULL until first used */
	char *address;                  /* the peer address as text, once asked for (client_address()) */
	uint32_t npdata;
	uint32_t will_delay;            /* MQTT 5 Will Delay Interval, seconds (will.h) */
	uint32_t max_packet_out;        /* MQTT 5: the largest packet it takes, 0 = no limit */
	uint16_t topic_alias_max_out;   /* MQTT 5 Topic Alias Maximum of the CONNECT, 0 = none */
	uint8_t nhold;
};

/* Members ordered by size: no padding. */
struct client {
	struct ev_io io;
	struct conn conn;
	struct ev_timer timer;          /* CONNECT timeout, then keepalive */
	struct worker *worker;
	struct listener *listener;
	union {
		struct session *session;
		/* PARKED (which has no session yet): the worker that will adopt it. */
		struct worker *handover;
	};
	struct client *prev;            /* worker's client list */
	struct client *next;
	struct client *flush_next;      /* worker's flush list */
	struct client *reread_next;     /* worker's re-read list */
	struct outq out;
	uint64_t qos0_unsent_bytes;
	uint8_t *inbuf;                 /* bytes of an incomplete packet */
	struct message *will;
	char *username;
	char *id;                       /* client id once known (borrowed from the session when attached) */
	struct bridge *bridge;          /* a bridge's connection to another broker (bridge.h) */
	struct client_ext *ext;         /* NULL until needed */
	uint32_t inlen;
	uint32_t flags;
	uint32_t qos0_unsent;           /* QoS 0 messages queued since the output was last empty */
	uint32_t last_rx;               /* loop time of the last packet in, low 32 bits (client_last_rx()) */
	uint16_t keepalive;             /* seconds, 0 = none */
	uint16_t port;                  /* peer port */
	uint8_t state;
	uint8_t protocol;               /* 3, 4, 5; 0 before CONNECT */
	uint8_t inbuf_log2;             /* inbuf holds 1 << inbuf_log2 bytes; 0 = no inbuf */
	uint8_t addr[16];               /* peer address, binary (its family in flags) */
};

/*
 * The loop time (ms) of the last packet in, given the loop's now. Only the
 * low 32 bits are kept: exact while less than 49 days old, and it is only
 * compared with deadlines 1.5 keepalives (at most 27 hours) away.
 */
static inline int64_t client_last_rx(const struct client *c, int64_t now)
{
	return now - (int64_t)(uint32_t)((uint32_t)now - c->last_rx);
}

static inline void client_set_last_rx(struct client *c, int64_t now)
{
	c->last_rx = (uint32_t)now;
}

static inline bool client_clean_start(const struct client *c)
{
	return c->flags & CLIENT_F_CLEAN_START;
}

/* Room for client_format_address(). */
#define CLIENT_ADDRSTRLEN INET6_ADDRSTRLEN

/* The peer address as text into buf ("unix" for a unix socket, "" when unknown); returns buf. */
const char *client_format_address(const struct client *c, char buf[CLIENT_ADDRSTRLEN]);

/* The same, kept with the client while it lives (plugins); NULL when out of memory. */
const char *client_address(struct client *c);

/* The extension, allocated on first use; NULL when out of memory. */
struct client_ext *client_ext(struct client *c);

static inline struct ext_auth *client_xauth(const struct client *c)
{
	return c->ext ? c->ext->xauth : NULL;
}

static inline struct preauth *client_preauth(const struct client *c)
{
	return c->ext ? c->ext->preauth : NULL;
}

static inline struct decision_wait *client_wait(const struct client *c)
{
	return c->ext ? c->ext->wait : NULL;
}

static inline uint32_t client_will_delay(const struct client *c)
{
	return c->ext ? c->ext->will_delay : 0;
}

/* MQTT 5: the largest packet the client takes, 0 = no limit. */
static inline uint32_t client_max_packet_out(const struct client *c)
{
	return c->ext ? c->ext->max_packet_out : 0;
}

/* MQTT 5: the Topic Alias Maximum of its CONNECT, 0 = none. */
static inline uint16_t client_topic_alias_max_out(const struct client *c)
{
	return c->ext ? c->ext->topic_alias_max_out : 0;
}

/* Creates a client for an accepted descriptor and starts reading (owner thread).
 * Takes fd: on failure it is closed. */
struct client *client_new(struct worker *w, struct listener *l, int fd,
			  const struct sockaddr *addr);

/*
 * A bridge's connection to a remote broker (bridge.h): conn is connecting
 * (non-blocking) to addr; what the bridge queued goes once it is writable.
 * Counts as a connection of listener l. NULL when out of memory (conn closed).
 */
struct client *client_new_bridge(struct worker *w, struct listener *l, struct conn *conn,
				 const struct sockaddr *addr, struct bridge *br);

/* Adopts a client moved from another worker and resumes it. */
void client_adopt(struct worker *w, struct client *c);

/* Queues n bytes of output; returns where to write them, or NULL (no memory). */
uint8_t *client_out(struct client *c, size_t n);
/* Appends part of a message by reference. */
int client_out_ref(struct client *c, struct message *m, const uint8_t *data, size_t len);

/* Writes what can be written now; returns -1 when the connection failed. */
int client_flush(struct client *c);

/*
 * Closes the connection: flushes what it can, publishes the will when
 * `send_will`, detaches the session, and queues the client to be freed.
 * `reason` is logged (NULL for a quiet close). Safe to call twice.
 */
void client_close(struct client *c, const char *reason, bool send_will);

/* Name for logs: the client id, or "<unknown>" before CONNECT. */
const char *client_name(const struct client *c);

/* Frees a client that client_close() has queued (worker only). */
void client_free(struct client *c);

/* Restarts the keepalive timer from the last packet received. */
void client_arm_keepalive(struct client *c);

/* Reads again (the transport holds decoded bytes no fd event will announce). */
void client_read_again(struct client *c);

/* Processes buffered input again (after a CONNECT was completed elsewhere). */
void client_resume_input(struct client *c);

/* Stops (true) or restarts (false) reading c's input while a plugin decides. */
void client_hold_input(struct client *c, bool hold);
/* Stops (true) or restarts (false) c's input for publisher flow control (throttle.h). */
void client_throttle_input(struct client *c, bool on);

/* Per-plugin data (api->client_data / client_set_data). */
struct client_plugin_data {
	void *data;
	void (*free_fn)(void *data);
};
void *client_plugin_data(const struct client *c, unsigned index);
int client_set_plugin_data(struct client *c, unsigned index, void *data,
			   void (*free_fn)(void *data));

#endif
