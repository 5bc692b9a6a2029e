/*
 * policy.h: what a configuration's security settings become once loaded.
 *
 * Owns, for one configuration generation, every file the listeners' security
 * settings name, loaded and checked: password files, ACL files, PSK files
 * (each distinct file once), and each TLS listener's SSL_CTX. It is built
 * completely before it is used (a file that fails to load fails the build,
 * so a bad reload keeps the old policy), shared read-only by every worker,
 * and refcounted: work that outlives a reload (a password check on the
 * auth threads) keeps it alive.
 */
#ifndef MIDGE_POLICY_H
#define MIDGE_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "acl.h"
#include "conf.h"
#include "passwd.h"
#include "plugin.h"

typedef struct ssl_ctx_st SSL_CTX;

struct policy_listener {
	const struct config_listener *cfg; /* in the generation's configuration */
	struct passwd_db *passwd;          /* NULL: no password file */
	struct acl_db *acl;                /* NULL: no ACL file, everything allowed */
	SSL_CTX *tls;                      /* NULL: plain listener */
	struct plugin_chain chain;         /* plugins its clients go through, in order */
};

struct policy {
	_Atomic unsigned refs;
	struct policy_listener *listeners; /* one per cfg->listeners[i] */
	size_t nlisteners;
	/* Everything loaded, each once, for freeing. */
	struct passwd_db **passwds;
	size_t npasswds;
	struct acl_db **acls;
	size_t nacls;
	/* Every plugin instance the chains use (for plugin_host_commit). */
	struct midge_plugin **plugins;
	size_t nplugins;
};

/*
 * Loads everything cfg's listeners need, plugins included (loaded into
 * host, or found there on a reload). Returns NULL when anything fails, with
 * one error per failure in diag (file and line where the file says).
 */
struct policy *policy_build(const struct config *cfg, struct plugin_host *host, bool reload,
			    struct config_diag *diag);

static inline struct policy *policy_ref(struct policy *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

/* Drops a reference; frees at zero. Any thread. */
void policy_unref(struct policy *p);

/* One-time OpenSSL set-up for the process (idempotent). */
void policy_tls_global_init(void);

#endif
