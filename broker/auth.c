/*
 * auth.c: connection, publish, subscribe and delivery decisions (see auth.h).
 */
#include "config.h"

#include "auth.h"

#include "authpool.h"
#include "broker.h"
#include "client.h"
#include "conf.h"
#include "listener.h"
#include "message.h"
#include "policy.h"
#include "session.h"
#include "worker.h"

#include <string.h>

static enum auth_result verdict(int passwd_result)
{
	return passwd_result == PASSWD_OK ? AUTH_OK : AUTH_BAD_CREDENTIALS;
}

enum auth_result auth_connect(struct client *c, const struct policy_listener *pl,
			      const char *username, const struct mqtt_bytes *password)
{
	const struct config_security *sec = &pl->cfg->security;
	struct worker *w = c->worker;

	/* The second pass of a CONNECT whose password the auth threads checked. */
	if (c->auth_verdict >= 0) {
		int v = c->auth_verdict;
		c->auth_verdict = -1;
		return verdict(v);
	}
	if (!username)
		return sec->allow_anonymous == 1 ? AUTH_OK : AUTH_NOT_AUTHORIZED;
	if (!pl->passwd) {
		/* A user name nothing can check is refused unless anonymous access is on,
		 * as in mosquitto: it never widens access. */
		return sec->allow_anonymous == 1 ? AUTH_OK : AUTH_NOT_AUTHORIZED;
	}
	/* Unknown users and missing passwords go through the same full check as a
	 * wrong password: the answer and its timing must not tell which users exist. */
	if (password && authpool_cached(w->broker->authpool, pl->passwd, username, password->data,
					password->len))
		return AUTH_OK;
	if (authpool_submit(w->broker->authpool, w, c, w->policy, pl->passwd, username,
			    password ? password->data : NULL, password ? password->len : 0,
			    password != NULL) < 0)
		return AUTH_NOT_AUTHORIZED;
	c->flags |= CLIENT_F_AUTH_WAIT;
	return AUTH_PENDING;
}

bool auth_clientid_allowed(const struct config_security *sec, const char *client_id)
{
	if (sec->clientid_prefixes.count == 0)
		return true;
	for (size_t i = 0; i < sec->clientid_prefixes.count; i++) {
		const char *p = sec->clientid_prefixes.items[i];
		if (strncmp(client_id, p, strlen(p)) == 0)
			return true;
	}
	return false;
}

static const struct acl_db *client_acl(const struct client *c)
{
	return c->worker->policy->listeners[c->listener->index].acl;
}

bool auth_may_publish(const struct client *c, const char *topic, size_t len)
{
	const struct acl_db *acl = client_acl(c);

	/* $SYS belongs to the broker: no client writes there, whatever the ACL says
	 * (as in mosquitto). */
	if (len >= 4 && memcmp(topic, "$SYS", 4) == 0 && (len == 4 || topic[4] == '/'))
		return false;
	return !acl || acl_check(acl, c->username, c->id, topic, len, ACL_WRITE);
}

bool auth_may_subscribe(const struct client *c, const char *filter, size_t len)
{
	const struct acl_db *acl = client_acl(c);

	return !acl || acl_check(acl, c->username, c->id, filter, len, ACL_SUBSCRIBE);
}

bool auth_may_receive(const struct session *s, const struct message *m)
{
	const struct policy *p = s->worker->policy;
	const struct acl_db *acl;

	if (s->listener >= p->nlisteners)
		return false;
	acl = p->listeners[s->listener].acl;
	return !acl || acl_check(acl, s->username, s->client_id, m->topic, m->topic_len, ACL_READ);
}
