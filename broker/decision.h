/*
 * decision.h: plugin decisions that may come later (MIDGE_DELAYED).
 *
 * A packet whose handling asks delayable questions (CONNECT, AUTH,
 * SUBSCRIBE) records every answer it gets. When a plugin answers DELAYED,
 * the client's input is held (the packet stays unconsumed), the answers so
 * far move into a wait object with a timeout, and the request id goes to the
 * plugin. When the answer arrives (api->complete() from any thread, through
 * the worker's inbox) or the timeout denies, the packet is handled again
 * from the start and each question gets its recorded answer instead of
 * asking the plugins twice. Owns the per-worker table of waits and the
 * request ids; does not know what the questions are.
 */
#ifndef MIDGE_DECISION_H
#define MIDGE_DECISION_H

#include <stdbool.h>
#include <stdint.h>

#include "ev.h"

struct client;
struct midge_plugin;
struct worker;

/* One answer. data / username are owned by whoever holds the decision. */
struct decision {
	int verdict;                 /* enum hook_verdict */
	uint8_t reason;              /* MQTT 5 reason on DENY, 0 = the question's default */
	uint8_t *data;               /* EXT_AUTH out data */
	uint32_t data_len;
	char *username;              /* a rename asked for with the answer */
	char *topic;                 /* SUBSCRIBE: the filter to subscribe to instead */
	int qos;                     /* SUBSCRIBE: the QoS to grant at most, -1 unchanged */
	struct midge_plugin *plugin; /* who answered (EXT_AUTH CONTINUE goes back to it) */
};

struct decision_wait {
	uint64_t id;                 /* request id given to the plugin */
	struct client *client;
	struct ev_timer timer;
	struct decision *memo;       /* answers of the packet, in the order asked */
	uint32_t len;
	uint32_t cap;
	uint32_t cursor;             /* next answer to replay */
	bool pending;                /* the last question still waits for its answer */
	struct midge_plugin *plugin; /* who delayed */
	struct decision_wait *hnext;
};

/* Per-worker state. */
struct decision_table {
	struct decision_wait *buckets[256];
	uint64_t next_seq;
	struct decision *scratch;    /* answers of the packet being handled, before any wait */
	uint32_t scratch_len;
	uint32_t scratch_cap;
};

void decision_table_fini(struct decision_table *t);

/* A new request id for a question about to be asked on w. */
uint64_t decision_request_id(struct worker *w);

/* Around each packet of c: forget answers of the last one / drop a finished wait. */
void decision_packet_begin(struct client *c);
void decision_packet_end(struct client *c);

/* The recorded answer for the next question when c's packet is replayed (a copy
 * the caller frees with decision_free_data()). */
bool decision_replay(struct client *c, struct decision *out);
/* Records a copy of the answer to a question just asked. */
void decision_record(struct client *c, const struct decision *d);

/*
 * A plugin answered DELAYED to request `id`: holds c's input and starts the
 * timeout. Returns -1 (out of memory) when it could not: answer DENY then.
 */
int decision_park(struct client *c, uint64_t id, struct midge_plugin *p);

/* Whether a client of w still waits for the answer to request id. */
bool decision_pending(struct worker *w, uint64_t id);

/* An answer arrived on w (inbox) for id: resumes the client. Takes over d's data. */
void decision_answer(struct worker *w, uint64_t id, struct decision *d);

/* c goes away: forget its wait. */
void decision_client_gone(struct client *c);

void decision_free_data(struct decision *d);

/* Dry runs: waits (up to plugin_timeout) for the answer to request id in w's inbox. */
void decision_wait_sync(struct worker *w, uint64_t id, struct decision *out);

#endif
