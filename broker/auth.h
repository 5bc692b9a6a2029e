/*
 * auth.h: the broker's authentication and authorisation decision points.
 *
 * Owns the answers to "may this client connect" and "may it publish to /
 * subscribe to / receive this topic", from the listener's policy (password
 * file, ACL file, allow_anonymous, clientid_prefixes). Handlers ask here and
 * turn the answers into CONNACK / SUBACK / PUBACK codes. A password check
 * that costs real CPU is handed to the auth threads and answered later.
 */
#ifndef MIDGE_AUTH_H
#define MIDGE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "packet.h"

struct client;
struct config_security;
struct message;
struct policy_listener;
struct session;

enum auth_result {
	AUTH_OK = 0,
	AUTH_BAD_CREDENTIALS, /* CONNACK 4 / 0x86 */
	AUTH_NOT_AUTHORIZED,  /* CONNACK 5 / 0x87 */
	AUTH_PENDING,         /* the client is parked until the auth threads answer */
};

/*
 * Decides whether c may connect with this user name (NULL for none) and
 * password (NULL for none). On AUTH_PENDING the caller stops processing:
 * the CONNECT is handled again when the answer arrives.
 */
enum auth_result auth_connect(struct client *c, const struct policy_listener *pl,
			      const char *username, const struct mqtt_bytes *password);

/* Whether a client id is acceptable under clientid_prefixes. */
bool auth_clientid_allowed(const struct config_security *sec, const char *client_id);

/* ACL decisions for c (its listener's ACL file; no file: everything allowed). */
bool auth_may_publish(const struct client *c, const char *topic, size_t len);
bool auth_may_subscribe(const struct client *c, const char *filter, size_t len);
/* Whether session s may receive m (checked per delivered message, on s's worker). */
bool auth_may_receive(const struct session *s, const struct message *m);

#endif
