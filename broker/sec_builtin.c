/*
 * sec_builtin.c: password_file and acl_file checks as plugins (see
 * sec_builtin.h).
 */
#include "config.h"

#include "sec_builtin.h"

#include "acl.h"
#include "authpool.h"
#include "broker.h"
#include "hooks.h"
#include "plugin.h"
#include "policy.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

static const struct policy_listener *current_listener_policy(void)
{
	struct worker *w = worker_current();
	unsigned i = hooks_current_listener();

	if (!w || !w->policy || i >= w->policy->nlisteners)
		return NULL;
	return &w->policy->listeners[i];
}

static int on_basic_auth(int event, void *data, void *userdata)
{
	struct midge_evt_basic_auth *a = data;
	const struct policy_listener *pl = current_listener_policy();
	struct worker *w = worker_current();
	struct authpool *pool = w ? w->broker->authpool : NULL;

	(void)event;
	(void)userdata;
	if (!pl || !pl->passwd || !pool)
		return MIDGE_DEFER;
	if (hooks_explaining()) {
		char why[512];
		snprintf(why, sizeof(why), "password_file %s", pl->cfg->security.password_file);
		hooks_explain_set(why);
	}
	if (!a->username) {
		if (pl->cfg->security.allow_anonymous == 1)
			return MIDGE_ALLOW;
		a->reason = MQTT_RC_NOT_AUTHORIZED;
		return MIDGE_DENY;
	}
	/* Unknown users and missing passwords take the same full check as a wrong
	 * password: neither the answer nor its timing tells which users exist. */
	if (a->password &&
	    authpool_cached(pool, pl->passwd, a->username, a->password, a->password_len))
		return MIDGE_ALLOW;
	if (authpool_submit(pool, a->h.request, w->policy, pl->passwd, a->username, a->password,
			    a->password_len, a->password != NULL) < 0)
		return MIDGE_ERR_NOMEM;
	return MIDGE_DELAYED;
}

static int on_acl_check(int event, void *data, void *userdata)
{
	struct midge_evt_acl *q = data;
	const struct policy_listener *pl = current_listener_policy();
	int access;

	(void)event;
	(void)userdata;
	if (!pl || !pl->acl)
		return MIDGE_DEFER;
	if (hooks_explaining()) {
		char why[512];
		snprintf(why, sizeof(why), "acl_file %s", pl->cfg->security.acl_file);
		hooks_explain_set(why);
	}
	switch (q->access) {
	case MIDGE_ACL_PUBLISH: access = ACL_WRITE; break;
	case MIDGE_ACL_SUBSCRIBE: access = ACL_SUBSCRIBE; break;
	case MIDGE_ACL_DELIVER: access = ACL_READ; break;
	default: return MIDGE_DEFER; /* unsubscribing is never refused by the ACL file */
	}
	return acl_check(pl->acl, q->username, q->client_id, q->topic, strlen(q->topic), access)
		       ? MIDGE_ALLOW
		       : MIDGE_DENY;
}

static int init_password(struct midge_plugin *self)
{
	return plugin_api_table()->register_event(self, MIDGE_EVT_BASIC_AUTH, on_basic_auth, NULL);
}

static int init_acl(struct midge_plugin *self)
{
	return plugin_api_table()->register_event(self, MIDGE_EVT_ACL_CHECK, on_acl_check, NULL);
}

struct midge_plugin *sec_builtin_password(struct plugin_host *host)
{
	return plugin_builtin(host, "password_file", init_password);
}

struct midge_plugin *sec_builtin_acl(struct plugin_host *host)
{
	return plugin_builtin(host, "acl_file", init_acl);
}
