/*
 * main.c: the midge program: command line, configuration loading, daemon
 * mode and pid file, then the broker's init/run/fini. No protocol logic.
 */
#include "config.h"

#include "alloc.h"
#include "broker.h"
#include "conf.h"
#include "dryrun.h"
#include "log.h"
#include "plugin.h"
#include "policy.h"
#include "process.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
	const char *config_path;
	const char *convert;  /* --convert FILE */
	int port;
	bool daemon;
	bool test_only;
	bool verbose;
	const char *plugin_check;
};

static void usage(FILE *out)
{
	fprintf(out,
		"midge version %s: an MQTT 5.0/3.1.1/3.1 broker.\n"
		"\n"
		"Usage: midge [-c config_file] [-d] [-h] [-p port] [-t] [-v] [--version]\n"
		"\n"
		" -c, --config-file FILE  load the configuration from FILE: YAML (.yaml, .yml) or\n"
		"                         mosquitto.conf syntax (.conf); other names by content.\n"
		"                         Without it midge listens on 127.0.0.1 port 1883 only.\n"
		" -d, --daemon            run in the background.\n"
		" -h, --help              show this help.\n"
		" -p, --port PORT         listen on PORT (on 127.0.0.1 when there is no -c).\n"
		" -t, --test-config       check the configuration, print every error, and exit\n"
		"                         0 when it is valid, 1 when it is not.\n"
		" -v, --verbose           log everything (log_type all) to stderr.\n"
		"     --convert FILE      print FILE (a mosquitto.conf, or YAML) as midge YAML: what\n"
		"                         it configures, options at their defaults left out.\n"
		"     --plugin-check FILE load plugin FILE, print its ABI version and events, exit.\n"
		"     --test-auth, --test-acl  run the authentication / ACL chain offline for\n"
		"                         one question (see midge --test-auth --help).\n"
		"     --version           print the version and exit.\n",
		PACKAGE_VERSION);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"config-file", required_argument, NULL, 'c'},
		{"daemon", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"test-config", no_argument, NULL, 't'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"plugin-check", required_argument, NULL, 'P'},
		{"convert", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:dhp:tv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'd':
			o->daemon = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'p': {
			char *end;
			long port = strtol(optarg, &end, 10);
			if (*end || port < 1 || port > 65535) {
				fprintf(stderr, "Error: invalid port '%s' (1-65535).\n", optarg);
				return -1;
			}
			o->port = (int)port;
			break;
		}
		case 't':
			o->test_only = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'P':
			o->plugin_check = optarg;
			break;
		case 'C':
			o->convert = optarg;
			break;
		case 'V':
			printf("midge version %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "Error: unexpected argument '%s'.\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/* --convert: the file as midge YAML on stdout; its problems on stderr. */
static int convert(const char *path)
{
	struct config cfg;
	struct config_diag diag = {0};
	int rc;

	config_init(&cfg);
	rc = config_load(&cfg, path, CONFIG_FORMAT_AUTO, &diag);
	config_diag_print(&diag, stderr);
	config_diag_free(&diag);
	if (rc == 0)
		rc = config_emit_yaml(&cfg, stdout);
	config_free(&cfg);
	return rc == 0 ? 0 : 1;
}

/* Loads the configuration (or the defaults); prints problems; -1 on errors. */
static int load_config(struct config *cfg, const struct options *o)
{
	struct config_diag diag = {0};
	int rc = 0;

	config_init(cfg);
	if (o->config_path)
		rc = config_load(cfg, o->config_path, CONFIG_FORMAT_AUTO, &diag);
	config_diag_print(&diag, stderr);
	config_diag_free(&diag);
	if (rc < 0)
		return -1;
	if (config_apply_command_line(cfg, o->port, o->config_path != NULL) < 0) {
		fprintf(stderr, "Error: out of memory.\n");
		return -1;
	}
	return 0;
}

/* Loads the password, ACL, PSK and TLS files and the plugins; prints every problem. */
static struct policy *load_policy(const struct config *cfg, struct plugin_host *host)
{
	struct config_diag diag = {0};
	struct policy *p = policy_build(cfg, host, false, &diag);

	for (size_t i = 0; i < diag.nerrors; i++) {
		const struct config_error *e = &diag.errors[i];
		if (e->loc.file && e->loc.line > 0)
			fprintf(stderr, "Error: %s:%d: %s\n", e->loc.file, e->loc.line, e->message);
		else
			fprintf(stderr, "Error: %s\n", e->message);
	}
	config_diag_free(&diag);
	if (p)
		plugin_host_commit(host, p->plugins, p->nplugins, false);
	return p;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct config *cfg;
	struct policy *policy = NULL;
	struct plugin_host *plugins = NULL;
	struct broker b;
	int rc = 1;

	log_init_default();
	if (dryrun_requested(argc, argv))
		return dryrun_main(argc, argv);
	if (parse_args(argc, argv, &o) < 0)
		return 1;
	if (o.plugin_check)
		return plugin_check_file(o.plugin_check);
	if (o.convert)
		return convert(o.convert);
	cfg = mem_malloc(sizeof(*cfg));
	if (!cfg)
		return 1;
	if (load_config(cfg, &o) < 0) {
		if (o.test_only)
			fprintf(stderr, "Configuration file %s is not valid.\n", o.config_path);
		goto out_cfg;
	}
	/* Plugins may start threads in init, which a fork would lose. */
	if (!o.test_only && (o.daemon || cfg->daemon)) {
		if (process_daemonize() < 0)
			goto out_cfg;
	}
	/* The files and plugins the configuration names are part of it: -t checks them too. */
	plugins = plugin_host_new(broker_worker_count(cfg));
	policy = plugins ? load_policy(cfg, plugins) : NULL;
	if (!policy) {
		if (o.test_only)
			fprintf(stderr, "Configuration file %s is not valid.\n", o.config_path);
		goto out_cfg;
	}
	if (o.test_only) {
		printf("Configuration file %s is valid.\n", o.config_path ? o.config_path : "(defaults)");
		rc = 0;
		goto out_cfg;
	}
	log_configure(cfg, o.verbose);
	log_notice("midge version %s starting", PACKAGE_VERSION);
	if (o.config_path)
		log_notice("Config loaded from %s.", o.config_path);
	else
		log_notice("Using default config.");
	if (cfg->pid_file && process_write_pidfile(cfg->pid_file) < 0)
		goto out_cfg;
	rc = broker_init(&b, cfg, policy, plugins, o.config_path, o.port, o.verbose);
	policy = NULL; /* the broker owns both now */
	plugins = NULL;
	if (rc < 0) {
		rc = 1;
		goto out_broker;
	}
	rc = 1;
	if (process_drop_privileges(cfg->user, cfg->user && strcmp(cfg->user, "midge") == 0) < 0)
		goto out_broker;
	rc = broker_run(&b);
out_broker:
	broker_fini(&b);
	/* A reload may have replaced the configuration the broker ends with. */
	if (b.cfg != cfg) {
		process_remove_pidfile(b.cfg->pid_file);
		config_free(b.cfg);
		mem_free(b.cfg);
		cfg = NULL;
	} else {
		process_remove_pidfile(cfg->pid_file);
	}
	log_close();
out_cfg:
	policy_unref(policy);
	plugin_host_free(plugins);
	if (cfg) {
		config_free(cfg);
		mem_free(cfg);
	}
	return rc;
}
