/*
 * hooks.h: the broker's calls into the plugin chains.
 *
 * One function per event: it builds the event struct, calls the chain of
 * the client's listener in order, applies the chaining rules (ALLOW / DENY
 * / DEFER / DELAYED) and returns a verdict the handlers act on. Owns the
 * rules for what an answer means when nobody decides, the copying of
 * values plugins write into events, and the auth-time renames. It does not
 * send packets: handlers turn verdicts into CONNACK / SUBACK / PUBACK codes.
 */
#ifndef MIDGE_HOOKS_H
#define MIDGE_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decision.h"
#include "plugin.h"

struct client;
struct message;
struct session;
struct worker;

enum hook_verdict {
	HOOK_NONE = 0,  /* the chain has no handler: the caller's own rule applies */
	HOOK_ALLOW,
	HOOK_DENY,
	HOOK_PENDING,   /* delayed: the client's input is held until the answer */
	HOOK_CONTINUE,  /* extended auth: another AUTH round */
};

/* The chain of listener `index` in w's current generation (NULL: none). */
const struct plugin_chain *hooks_chain(const struct worker *w, unsigned index);

/*
 * Dry runs: with explaining on (this thread), plugins may explain their
 * answer (api->explain) and a DELAYED answer is waited for on the spot.
 */
void hooks_explain_enable(bool on);
bool hooks_explaining(void);
void hooks_explain_set(const char *text);
const char *hooks_explanation(void);

/* The listener whose chain is running on this thread (for the built-in plugins). */
unsigned hooks_current_listener(void);

/* What BASIC_AUTH / EXT_AUTH may rename, in the CONNECT being handled. */
struct hook_auth_names {
	struct client *client;
	char **username;         /* replaced by a fresh copy on rename (old one freed) */
	char *id;                /* the client id buffer */
	size_t id_size;
	bool id_changed;
	char *replaced;          /* the user name the event still shows, freed after the chain */
};

/* For the API: the names an auth event running now on this thread may change. */
struct hook_auth_names *hooks_auth_names(void);

int hook_basic_auth(struct client *c, struct hook_auth_names *names, const char *username,
		    const void *password, uint32_t password_len, bool has_password,
		    struct decision *d);

/* EXT_AUTH_START (only == NULL) or EXT_AUTH_CONTINUE (to `only`). */
int hook_ext_auth(struct client *c, struct hook_auth_names *names, int event,
		  struct midge_plugin *only, const char *method, const void *data,
		  uint32_t data_len, bool reauth, struct decision *d);

/* An ACL question; see enum midge_acl_access. Delayable for SUBSCRIBE only. */
struct acl_question {
	unsigned listener;
	struct client *client;       /* NULL for an offline session */
	const char *client_id;
	const char *username;
	int access;
	const char *topic;
	const void *payload;
	uint32_t payload_len;
	uint8_t qos;
	bool retain;
	const struct message *msg;   /* PUBLISH / DELIVER: for its properties; may be NULL */
};
int hook_acl(struct worker *w, const struct acl_question *q, struct decision *d);

/*
 * MESSAGE_IN for a client's PUBLISH: may replace *m with a rewritten copy
 * (the old reference is dropped). HOOK_DENY with *reason set drops it.
 */
int hook_message_in(struct client *c, struct message **m, uint8_t *reason, bool *topic_changed);
/* A message from plugin-given parts (api->publish); NULL when invalid or out of memory. */
struct message *plugin_message_new(const char *topic, size_t topic_len, const void *payload,
				   uint32_t payload_len, uint8_t qos, bool retain,
				   const struct midge_property *props, uint32_t nprops);

/*
 * MESSAGE_OUT: false skips this subscriber. A plugin may give this
 * subscriber another topic or payload: *m is then a new message the caller
 * unrefs (the one passed in is left alone).
 */
bool hook_message_out(struct session *s, struct message **m);
/* MESSAGE_OUT for a client (dry runs): false and *who when a plugin vetoes. */
bool hook_delivery_allowed(struct client *c, const struct message *m, struct midge_plugin **who);
/* WILL: false suppresses the will. */
bool hook_will(struct client *c, const struct message *will);

void hook_connect(struct client *c, bool session_present);
void hook_disconnect(struct client *c, uint8_t reason, bool will_sent);
void hook_subscribe(struct client *c, const char *filter, uint8_t qos, uint8_t options,
		    uint32_t subid);
void hook_unsubscribe(struct client *c, const char *filter);

/* PSK_KEY: HOOK_ALLOW with the key in key/key_len, HOOK_DENY, or HOOK_NONE. */
int hook_psk_key(struct worker *w, unsigned listener, int port, const char *identity,
		 const char *hint, uint8_t *key, uint32_t key_max, uint32_t *key_len);

/* Re-arms w's TICK timers for the plugins of its generation (w's thread). */
void worker_plugin_ticks_update(struct worker *w);
void worker_plugin_ticks_stop(struct worker *w);

/* Per-worker plugin timers (api->timer_start). */
uint64_t hooks_timer_start(struct midge_plugin *p, uint32_t ms, void (*cb)(void *), void *arg);
void hooks_timer_cancel(struct midge_plugin *p, uint64_t id);
void hooks_timers_free(struct worker *w);

#endif
