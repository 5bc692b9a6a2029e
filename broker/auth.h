/*
 * auth.h: the broker's authorisation decision points.
 *
 * Owns the answers to "may this client publish to / subscribe to /
 * unsubscribe from / receive this topic", asked of the listener's plugin
 * chain (where the ACL file is a plugin too), plus the rules that hold
 * whatever plugins say ($SYS is the broker's; clientid_prefixes).
 * Handlers turn the answers into SUBACK / PUBACK / UNSUBACK codes.
 * Authentication itself is in handle_connect.c and hooks.c.
 */
#ifndef MIDGE_AUTH_H
#define MIDGE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct config_security;
struct message;
struct session;

/* Whether a client id is acceptable under clientid_prefixes. */
bool auth_clientid_allowed(const struct config_security *sec, const char *client_id);

/* ACL decisions for c (no handler on the listener: everything allowed). */
bool auth_may_publish(const struct client *c, const char *topic, size_t len);
bool auth_may_publish_message(const struct client *c, const struct message *m);
/* 0 when c may publish m, else the MQTT 5 reason code of the refusal. */
uint8_t auth_publish_refusal(const struct client *c, const struct message *m);
bool auth_may_unsubscribe(const struct client *c, const char *filter);
/*
 * A SUBSCRIBE check, which a plugin may answer later: HOOK_ALLOW,
 * HOOK_DENY or HOOK_PENDING (the client's input is held; the SUBSCRIBE is
 * handled again when the answer is in). On ALLOW a plugin may move the
 * subscription: *new_filter (the caller frees it) and *new_qos (-1:
 * unchanged); pass NULLs to ignore rewrites.
 */
int auth_subscribe(struct client *c, const char *filter, size_t len, uint8_t qos,
		   char **new_filter, int *new_qos, uint8_t *reason);
/* Whether session s may receive m (checked per delivered message, on s's worker). */
bool auth_may_receive(const struct session *s, const struct message *m);

#endif
