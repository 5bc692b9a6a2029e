/*
 * acl.h: mosquitto-format ACL files (acl_file).
 *
 * Owns reading an ACL file into an immutable table and answering "may this
 * client read / write this topic" the way mosquitto 2.0.11 answers it for an
 * acl_file (the rules, measured against the real broker, are summed up in
 * acl.c). It does not know about clients, sessions or $SYS write rules: the
 * caller passes the user name and client id, and keeps refusing client
 * publishes to $SYS itself, as mosquitto does outside its ACL file.
 */
#ifndef MIDGE_ACL_H
#define MIDGE_ACL_H

#include <stdbool.h>
#include <stddef.h>

struct acl_db;

/*
 * Loads an ACL file. NULL on error with "FILE:LINE: message" in err (or
 * "FILE: message" when it cannot be read): an unknown keyword, an access word
 * other than read, write, readwrite or deny, a missing topic or user name, an
 * invalid topic filter. Any thread; the result is owned by the caller.
 */
struct acl_db *acl_load(const char *path, char *err, size_t errlen);

/* Frees a table (NULL is fine). */
void acl_free(struct acl_db *db);

/* Number of topic and pattern rules, for log lines. */
size_t acl_rule_count(const struct acl_db *db);

enum acl_access { ACL_READ = 1, ACL_WRITE = 2, ACL_SUBSCRIBE = 4, ACL_UNSUBSCRIBE = 8 };

/*
 * Whether the client may do `access` on topic (len bytes, not necessarily
 * NUL-terminated). username NULL = anonymous; client_id is the id in use
 * (the broker's assigned id for an empty one). Exactly one access bit.
 *
 * READ: asked for every message about to be delivered (retained ones too)
 * with the message's topic; this is what keeps data from a client.
 * WRITE: every PUBLISH (and will) with its topic.
 * SUBSCRIBE: topic is the filter ("$share/<group>/" is looked through). Granted
 * when some topic the filter matches could be read: "topic read a/#" grants
 * "a/b", "a/+", "a/#", "#" and "+/b", and refuses "b/#", "$SYS/#" and a filter
 * a deny covers. mosquitto 2.0.11 grants every subscription (and delivers
 * nothing from the useless ones); a grant here still leaves every message to
 * READ, and unsure cases grant.
 * UNSUBSCRIBE: always allowed, as in mosquitto.
 * Thread-safe on a loaded table; does not allocate. NULL db: false.
 */
bool acl_check(const struct acl_db *db, const char *username, const char *client_id,
	       const char *topic, size_t len, enum acl_access access);

#endif
