/*
 * policy.c: loading a configuration's security files and TLS contexts
 * (see policy.h).
 */
#include "config.h"

#include "policy.h"

#include "alloc.h"
#include "log.h"
#include "sec_builtin.h"
#include "tls_ctx.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

/* Adds an error that names no line (the message carries file:line when known). */
static void diag_error(struct config_diag *diag, const char *key, const char *msg)
{
	struct config_error *grown = mem_realloc(diag->errors, (diag->nerrors + 1) * sizeof(*grown));

	if (!grown)
		return;
	diag->errors = grown;
	grown[diag->nerrors++] = (struct config_error){.key = mem_strdup(key),
						       .message = mem_strdup(msg)};
}

/* The already loaded file at path in paths/objs, so each file loads once. */
static void *find_loaded(char **paths, void **objs, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(paths[i], path) == 0)
			return objs[i];
	return NULL;
}

struct loaded {
	char **paths;
	void **objs;
	size_t n;
};

static int remember(struct loaded *l, const char *path, void *obj)
{
	char **paths = mem_realloc(l->paths, (l->n + 1) * sizeof(*paths));
	void **objs;

	if (!paths)
		return -1;
	l->paths = paths;
	objs = mem_realloc(l->objs, (l->n + 1) * sizeof(*objs));
	if (!objs)
		return -1;
	l->objs = objs;
	paths[l->n] = (char *)path;
	objs[l->n] = obj;
	l->n++;
	return 0;
}

static int load_listener(struct policy *p, size_t i, const struct config_listener *lc,
			 struct loaded *pw, struct loaded *acls, struct config_diag *diag)
{
	struct policy_listener *pl = &p->listeners[i];
	const struct config_security *sec = &lc->security;
	char err[512];
	int rc = 0;

	pl->cfg = lc;
	if (sec->password_file) {
		pl->passwd = find_loaded(pw->paths, pw->objs, pw->n, sec->password_file);
		if (!pl->passwd) {
			err[0] = '\0';
			pl->passwd = passwd_load(sec->password_file, err, sizeof(err));
			if (!pl->passwd || remember(pw, sec->password_file, pl->passwd) < 0) {
				diag_error(diag, "password_file", err[0] ? err : "out of memory");
				passwd_free(pl->passwd);
				pl->passwd = NULL;
				rc = -1;
			}
		}
	}
	if (sec->acl_file) {
		pl->acl = find_loaded(acls->paths, acls->objs, acls->n, sec->acl_file);
		if (!pl->acl) {
			err[0] = '\0';
			pl->acl = acl_load(sec->acl_file, err, sizeof(err));
			if (!pl->acl || remember(acls, sec->acl_file, pl->acl) < 0) {
				diag_error(diag, "acl_file", err[0] ? err : "out of memory");
				acl_free(pl->acl);
				pl->acl = NULL;
				rc = -1;
			}
		}
	}
	if (tls_listener_enabled(lc)) {
		pl->tls = tls_ctx_build(lc, (unsigned)i, err, sizeof(err));
		if (!pl->tls) {
			char msg[640];
			snprintf(msg, sizeof(msg), "listener on port %d: %s", lc->port, err);
			diag_error(diag, "certfile", msg);
			rc = -1;
		}
	}
	return rc;
}

static int use_plugin(struct policy *p, struct plugin_chain *ch, struct midge_plugin *pl)
{
	bool known = false;

	if (plugin_chain_add(ch, pl) < 0)
		return -1;
	for (size_t i = 0; i < p->nplugins && !known; i++)
		known = p->plugins[i] == pl;
	if (!known) {
		struct midge_plugin **grown =
			mem_realloc(p->plugins, (p->nplugins + 1) * sizeof(*grown));
		if (!grown)
			return -1;
		p->plugins = grown;
		grown[p->nplugins++] = pl;
	}
	return 0;
}

/* The global plugin_load entry a plugin_use names. */
static const struct config_plugin *named_plugin(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->security.nplugins; i++) {
		const struct config_plugin *cp = &cfg->security.plugins[i];
		if (cp->name && cp->path && strcmp(cp->name, name) == 0)
			return cp;
	}
	return NULL;
}

/*
 * A listener's chain: the global plugins (plugin_load ones only where a
 * listener uses them), the listener's own, then the password and ACL files.
 */
static int build_chain(struct policy *p, size_t li, const struct config *cfg,
		       struct plugin_host *host, bool reload, struct config_diag *diag)
{
	struct policy_listener *pl = &p->listeners[li];
	const struct config_security *own = &cfg->listeners[li].security;
	char scope[32];
	int rc = 0;

	for (size_t i = 0; i < cfg->security.nplugins; i++) {
		const struct config_plugin *cp = &cfg->security.plugins[i];
		if (cp->name)
			continue;
		struct midge_plugin *inst = plugin_instance(host, cp, "global", (unsigned)i, reload,
							    diag);
		if (!inst || use_plugin(p, &pl->chain, inst) < 0)
			rc = -1;
	}
	snprintf(scope, sizeof(scope), "listener %zu", li);
	for (size_t i = 0; i < own->nplugins; i++) {
		const struct config_plugin *cp = &own->plugins[i];
		if (!cp->path)
			cp = named_plugin(cfg, cp->name);
		if (!cp)
			continue; /* the configuration check reported it */
		struct midge_plugin *inst = plugin_instance(host, cp, scope, (unsigned)i, reload, diag);
		if (!inst || use_plugin(p, &pl->chain, inst) < 0)
			rc = -1;
	}
	if (pl->passwd) {
		struct midge_plugin *b = sec_builtin_password(host);
		if (!b || use_plugin(p, &pl->chain, b) < 0)
			rc = -1;
	}
	if (pl->acl) {
		struct midge_plugin *b = sec_builtin_acl(host);
		if (!b || use_plugin(p, &pl->chain, b) < 0)
			rc = -1;
	}
	return rc;
}

static void policy_free(struct policy *p)
{
	for (size_t i = 0; i < p->nlisteners; i++) {
		SSL_CTX_free(p->listeners[i].tls);
		plugin_chain_free(&p->listeners[i].chain);
	}
	mem_free(p->plugins);
	for (size_t i = 0; i < p->npasswds; i++)
		passwd_free(p->passwds[i]);
	for (size_t i = 0; i < p->nacls; i++)
		acl_free(p->acls[i]);
	mem_free(p->passwds);
	mem_free(p->acls);
	mem_free(p->listeners);
	mem_free(p);
}

struct policy *policy_build(const struct config *cfg, struct plugin_host *host, bool reload,
			    struct config_diag *diag)
{
	struct policy *p = mem_calloc(1, sizeof(*p));
	struct loaded pw = {0}, acls = {0};
	int rc = 0;

	if (!p)
		return NULL;
	atomic_init(&p->refs, 1);
	policy_tls_global_init();
	p->listeners = mem_calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*p->listeners));
	if (!p->listeners) {
		mem_free(p);
		return NULL;
	}
	p->nlisteners = cfg->nlisteners;
	for (size_t i = 0; i < cfg->nlisteners; i++)
		if (load_listener(p, i, &cfg->listeners[i], &pw, &acls, diag) < 0)
			rc = -1;
	/* The loaded objects now belong to the policy; the path arrays were borrowed. */
	p->passwds = (struct passwd_db **)pw.objs;
	p->npasswds = pw.n;
	p->acls = (struct acl_db **)acls.objs;
	p->nacls = acls.n;
	mem_free(pw.paths);
	mem_free(acls.paths);
	for (size_t i = 0; host && rc == 0 && i < cfg->nlisteners; i++)
		if (build_chain(p, i, cfg, host, reload, diag) < 0)
			rc = -1;
	if (rc < 0) {
		policy_free(p);
		return NULL;
	}
	return p;
}

void policy_unref(struct policy *p)
{
	if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		policy_free(p);
}

void policy_tls_global_init(void)
{
	/* OpenSSL 3 initialises itself; loading the error strings once keeps logs readable. */
	OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
}
