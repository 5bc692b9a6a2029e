/*
 * dryrun.c: midge --test-auth and --test-acl: the real decision chain
 * (plugins, Lua scripts, password file, ACL file) run offline for one
 * question, printing the answer and what decided it.
 *
 * It loads the configuration as the broker would, builds one worker with
 * no sockets and a client that exists only in memory, asks the chain of a
 * listener (the first, or --listener PORT), waits for delayed answers, and
 * exits 0 for allow, 1 for deny, 2 for a usage or configuration error.
 */
#include "config.h"

#include "dryrun.h"

#include "alloc.h"
#include "auth.h"
#include "authpool.h"
#include "broker.h"
#include "client.h"
#include "conf.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "plugin.h"
#include "policy.h"
#include "worker.h"

#include <getopt.h>
#include <midge/mqtt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dry_args {
	bool acl;
	const char *config;
	const char *username;
	const char *password;
	const char *client_id;
	const char *topic;
	const char *access;
	int listener_port;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: midge --test-auth -c CONFIG [--username U] [--password P] [--client-id C]\n"
		"             [--listener PORT]\n"
		"       midge --test-acl -c CONFIG [--username U] --client-id C --topic T\n"
		"             --access read|write|subscribe|unsubscribe [--listener PORT]\n"
		"\n"
		"Runs the configuration's decision chain (plugins, Lua scripts, password and\n"
		"ACL files) for one question without starting the broker, and prints the\n"
		"answer and what decided it. Exit status: 0 allow, 1 deny, 2 error.\n");
}

static int parse(int argc, char **argv, struct dry_args *a)
{
	static const struct option opts[] = {
		{"test-auth", no_argument, NULL, 'A'},  {"test-acl", no_argument, NULL, 'L'},
		{"config-file", required_argument, NULL, 'c'},
		{"username", required_argument, NULL, 'u'},
		{"password", required_argument, NULL, 'P'},
		{"client-id", required_argument, NULL, 'i'},
		{"topic", required_argument, NULL, 't'},
		{"access", required_argument, NULL, 'a'},
		{"listener", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:u:P:i:t:a:l:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'A': a->acl = false; break;
		case 'L': a->acl = true; break;
		case 'c': a->config = optarg; break;
		case 'u': a->username = optarg; break;
		case 'P': a->password = optarg; break;
		case 'i': a->client_id = optarg; break;
		case 't': a->topic = optarg; break;
		case 'a': a->access = optarg; break;
		case 'l': a->listener_port = atoi(optarg); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!a->config) {
		fprintf(stderr, "Error: -c CONFIG is required.\n");
		return -1;
	}
	if (a->acl && (!a->topic || !a->access || !a->client_id)) {
		fprintf(stderr, "Error: --test-acl needs --client-id, --topic and --access.\n");
		return -1;
	}
	return 0;
}

/* The "why" part of the answer line. */
static void print_answer(bool allowed, const struct decision *d, int verdict, const char *rule)
{
	const char *why = hooks_explanation();

	if (d->plugin && why[0])
		printf("%s (by %s)\n", allowed ? "allow" : "deny", why);
	else if (d->plugin)
		printf("%s (by %s)\n", allowed ? "allow" : "deny", d->plugin->name);
	else if (verdict == HOOK_NONE)
		printf("%s (%s)\n", allowed ? "allow" : "deny", rule);
	else
		printf("%s (every plugin deferred)\n", allowed ? "allow" : "deny");
}

static int ask_auth(struct client *c, const struct dry_args *a, const struct config_listener *lc)
{
	struct decision d;
	char id[65536 + 64];
	char *username = a->username ? mem_strdup(a->username) : NULL;
	struct hook_auth_names names = {.client = c, .username = &username, .id = id,
					.id_size = sizeof(id)};
	int v, rc;

	snprintf(id, sizeof(id), "%s", a->client_id ? a->client_id : "midge-test-auth");
	c->username = username;
	v = hook_basic_auth(c, &names, username, a->password, a->password ? strlen(a->password) : 0,
			    a->password != NULL, &d);
	bool allowed = v == HOOK_ALLOW || (v == HOOK_NONE && lc->security.allow_anonymous == 1);
	print_answer(allowed, &d, v,
		     lc->security.allow_anonymous == 1 ? "allow_anonymous true" : "no plugin, "
		     "no password_file and allow_anonymous is not true");
	if (allowed && (names.id_changed || (username && a->username &&
					     strcmp(username, a->username) != 0)))
		printf("as client id '%s', user '%s'\n", id, username ? username : "");
	if (!allowed && d.reason)
		printf("reason code 0x%02x\n", d.reason);
	rc = allowed ? 0 : 1;
	c->username = NULL;
	mem_free(username);
	decision_free_data(&d);
	return rc;
}

static int ask_acl(struct client *c, const struct dry_args *a)
{
	static const struct {
		const char *name;
		int access;
	} kinds[] = {
		{"read", MIDGE_ACL_DELIVER},        {"deliver", MIDGE_ACL_DELIVER},
		{"write", MIDGE_ACL_PUBLISH},       {"publish", MIDGE_ACL_PUBLISH},
		{"subscribe", MIDGE_ACL_SUBSCRIBE}, {"unsubscribe", MIDGE_ACL_UNSUBSCRIBE},
	};
	struct acl_question q = {
		.listener = c->listener->index,
		.client = c,
		.client_id = a->client_id,
		.username = a->username,
		.topic = a->topic,
	};
	struct decision d;
	struct message *m = NULL;
	int v;

	q.access = 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(a->access, kinds[i].name) == 0)
			q.access = kinds[i].access;
	if (!q.access) {
		fprintf(stderr, "Error: --access is read, write, subscribe or unsubscribe.\n");
		return 2;
	}
	if (q.access == MIDGE_ACL_PUBLISH || q.access == MIDGE_ACL_DELIVER) {
		m = message_new(a->topic, strlen(a->topic), "", 0, 0, false, NULL, 0);
		q.msg = m;
	}
	if (q.access == MIDGE_ACL_PUBLISH && strncmp(a->topic, "$SYS", 4) == 0 &&
	    (a->topic[4] == '\0' || a->topic[4] == '/')) {
		printf("deny (no client publishes to $SYS)\n");
		message_unref(m);
		return 1;
	}
	c->id = (char *)a->client_id;
	c->username = (char *)a->username;
	v = hook_acl(c->worker, &q, &d);
	bool allowed = v == HOOK_ALLOW || v == HOOK_NONE;
	struct midge_plugin *vetoed = NULL;
	if (allowed && q.access == MIDGE_ACL_DELIVER) {
		/* Reading is also what MESSAGE_OUT plugins (Lua's on_deliver) let through. */
		const char *acl_why = hooks_explanation();
		char saved[512];
		snprintf(saved, sizeof(saved), "%s", acl_why);
		hooks_explain_enable(true);
		if (!hook_delivery_allowed(c, m, &vetoed)) {
			allowed = false;
			d.plugin = vetoed;
			v = HOOK_DENY;
		} else {
			hooks_explain_set(saved);
		}
	}
	print_answer(allowed, &d, v, "no ACL: everything is allowed");
	if (allowed && d.topic)
		printf("subscribes to '%s' instead\n", d.topic);
	c->id = NULL;
	c->username = NULL;
	decision_free_data(&d);
	message_unref(m);
	return allowed ? 0 : 1;
}

/* The pieces of a broker the chain needs: one worker, listeners without sockets. */
static int run(const struct dry_args *a, struct config *cfg, struct policy *policy,
	       struct plugin_host *host)
{
	struct broker *b = mem_calloc(1, sizeof(*b));
	struct client *c = mem_calloc(1, sizeof(*c));
	unsigned li = 0;
	int rc = 2;

	if (!b || !c)
		goto out;
	for (size_t i = 0; a->listener_port && i < cfg->nlisteners; i++)
		if (cfg->listeners[i].port == a->listener_port)
			li = (unsigned)i;
	b->cfg = cfg;
	b->policy = policy;
	b->plugins = host;
	host->broker = b;
	b->nworkers = 1;
	b->nlisteners = (unsigned)cfg->nlisteners;
	b->listeners = mem_calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*b->listeners));
	b->workers = mem_calloc(1, sizeof(*b->workers));
	b->authpool = authpool_start(1);
	if (!b->listeners || !b->workers || !b->authpool)
		goto out;
	for (unsigned i = 0; i < b->nlisteners; i++) {
		b->listeners[i].index = i;
		b->listeners[i].port = (uint16_t)cfg->listeners[i].port;
	}
	if (worker_init(&b->workers[0], b, 0) < 0)
		goto out;
	plugin_api_set_broker(b);
	worker_set_current(&b->workers[0]);
	plugin_host_worker_start(host, &b->workers[0]);
	c->worker = &b->workers[0];
	c->listener = &b->listeners[li];
	c->conn.type = &conn_type_tcp;
	c->conn.fd = -1;
	c->state = CLIENT_NEW;
	c->protocol = MQTT_PROTO_V311;
	c->flags |= CLIENT_F_CLEAN_START;
	c->keepalive = 60;
	c->addr[0] = 127; /* 127.0.0.1 */
	c->addr[3] = 1;
	c->flags |= CLIENT_F_ADDR_INET;
	hooks_explain_enable(true);
	rc = a->acl ? ask_acl(c, a) : ask_auth(c, a, &cfg->listeners[li]);
	hooks_explain_enable(false);
	hooks_timers_free(&b->workers[0]);
	plugin_host_worker_stop(host, &b->workers[0]);
	worker_set_current(NULL);
out:
	if (b) {
		authpool_stop(b->authpool);
		plugin_host_free(host);
		if (b->workers) {
			if (b->workers[0].loop)
				worker_fini(&b->workers[0]);
			mem_free(b->workers);
		}
		mem_free(b->listeners);
		plugin_api_set_broker(NULL);
		mem_free(b);
	} else {
		plugin_host_free(host);
	}
	if (c) {
		if (c->ext) {
			mem_free(c->ext->pdata);
			mem_free(c->ext->address); /* a plugin asked for client_address */
		}
		mem_free(c->ext);
		mem_free(c);
	}
	return rc;
}

int dryrun_main(int argc, char **argv)
{
	struct dry_args a = {0};
	struct config_diag diag = {0};
	struct config *cfg;
	struct plugin_host *host;
	struct policy *policy;
	int rc;

	if (parse(argc, argv, &a) < 0)
		return 2;
	cfg = mem_malloc(sizeof(*cfg));
	if (!cfg)
		return 2;
	config_init(cfg);
	rc = config_load(cfg, a.config, CONFIG_FORMAT_AUTO, &diag);
	config_diag_print(&diag, stderr);
	config_diag_free(&diag);
	if (rc < 0 || config_apply_command_line(cfg, 0, true) < 0) {
		config_free(cfg);
		mem_free(cfg);
		return 2;
	}
	host = plugin_host_new(1);
	policy = host ? policy_build(cfg, host, false, &diag) : NULL;
	for (size_t i = 0; i < diag.nerrors; i++)
		fprintf(stderr, "Error: %s\n", diag.errors[i].message);
	config_diag_free(&diag);
	if (!policy) {
		plugin_host_free(host);
		config_free(cfg);
		mem_free(cfg);
		return 2;
	}
	plugin_host_commit(host, policy->plugins, policy->nplugins, false);
	rc = run(&a, cfg, policy, host);
	policy_unref(policy);
	config_free(cfg);
	mem_free(cfg);
	return rc;
}

bool dryrun_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--test-auth") == 0 || strcmp(argv[i], "--test-acl") == 0)
			return true;
	return false;
}
