/*
 * test_config.c: unit tests of the configuration module (conf*.c).
 *
 * Covers the defaults; every kind of type, range and placement error with
 * its exact line, column and message in both syntaxes; unknown options and
 * their suggestion; the two front ends loading equivalent files into equal
 * structs (compared field by field through the option table); mosquitto's
 * per_listener_settings, listener, default listener and bridge rules;
 * include_dir order; ${ENV} expansion; legacy options; Debian's example
 * mosquitto.conf, the files of tests/unit/data and etc/midge.yaml.
 * Files are written under /tmp with mkstemps() and removed after loading.
 */
#include "config.h"

#include "tests.h"

#include "conf.h"
#include "conf_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEBIAN_EXAMPLE "/usr/share/doc/mosquitto/examples/mosquitto.conf"

/* ---- helpers -------------------------------------------------------------- */

struct loaded {
	struct config cfg;
	struct config_diag diag;
	char path[256];
	int rc;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* Writes text to a fresh /tmp file ending in suffix ("" for none) and loads it. */
static void load_text(struct loaded *ld, const char *suffix, const char *text)
{
	int fd;

	snprintf(ld->path, sizeof(ld->path), "/tmp/midge-conf-XXXXXX%s", suffix);
	fd = mkstemps(ld->path, (int)strlen(suffix));
	ck_assert_int_ge(fd, 0);
	close(fd);
	write_file(ld->path, text);
	config_init(&ld->cfg);
	ld->rc = config_load(&ld->cfg, ld->path, CONFIG_FORMAT_AUTO, &ld->diag);
	unlink(ld->path);
}

static void load_path(struct loaded *ld, const char *path)
{
	snprintf(ld->path, sizeof(ld->path), "%s", path);
	config_init(&ld->cfg);
	ld->rc = config_load(&ld->cfg, path, CONFIG_FORMAT_AUTO, &ld->diag);
}

static void unload(struct loaded *ld)
{
	config_free(&ld->cfg);
	config_diag_free(&ld->diag);
}

/* "line:column: message", what the tables below spell out. */
static const char *where(const struct config_error *e)
{
	static char buf[2][600];
	static int i;

	i ^= 1;
	snprintf(buf[i], sizeof(buf[i]), "%d:%d: %s", e->loc.line, e->loc.column, e->message);
	return buf[i];
}

static void data_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", test_data_dir(), name);
}

/* Every error and warning, for failure messages. */
static const char *all_diag(const struct config_diag *d)
{
	static char buf[4096];
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->nerrors && used < sizeof(buf); i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "[E %s] ",
					 where(&d->errors[i]));
	for (size_t i = 0; i < d->nwarnings && used < sizeof(buf); i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "[W %s] ",
					 where(&d->warnings[i]));
	return buf;
}

#define ck_assert_clean(ld)                                                                    \
	ck_assert_msg((ld)->rc == 0 && (ld)->diag.nerrors == 0, "%s: %s", (ld)->path,           \
		      all_diag(&(ld)->diag))

/* ---- defaults ------------------------------------------------------------- */

START_TEST(test_defaults)
{
	struct config cfg;

	config_init(&cfg);
	ck_assert_int_eq(cfg.max_inflight_messages, 20);
	ck_assert_uint_eq(cfg.max_inflight_bytes, 0);
	ck_assert_int_eq(cfg.max_queued_messages, 1000);
	ck_assert_uint_eq(cfg.max_queued_bytes, 0);
	ck_assert_int_eq(cfg.max_keepalive, 65535);
	ck_assert_uint_eq(cfg.max_packet_size, 0);
	ck_assert_uint_eq(cfg.message_size_limit, 0);
	ck_assert_int_eq(cfg.sys_interval, 10);
	ck_assert_int_eq(cfg.autosave_interval, 1800);
	ck_assert_int_eq(cfg.connect_timeout, 10);
	ck_assert_int_eq(cfg.workers, 0);
	ck_assert_int_eq(cfg.max_connections, -1);
	ck_assert_int_eq(cfg.max_qos, 2);
	ck_assert_int_eq(cfg.max_topic_alias, 10);
	ck_assert_int_eq(cfg.global_max_clients, -1);
	ck_assert_int_eq(cfg.global_max_connections, -1);
	ck_assert_uint_eq(cfg.packet_buffer_size, 4096);
	ck_assert_int_eq(cfg.persistent_client_expiration, 0);
	ck_assert_str_eq(cfg.user, "midge");
	ck_assert_str_eq(cfg.persistence_file, "mosquitto.db");
	ck_assert_ptr_null(cfg.persistence_location);
	ck_assert_ptr_null(cfg.pid_file);
	ck_assert(!cfg.persistence && !cfg.autosave_on_changes && !cfg.per_listener_settings);
	ck_assert(cfg.retain_available && cfg.connection_messages && cfg.log_timestamp);
	ck_assert(cfg.check_retain_source && cfg.auth_plugin_deny_special_chars);
	ck_assert(!cfg.queue_qos0_messages && !cfg.upgrade_outgoing_qos && !cfg.set_tcp_nodelay);
	ck_assert_uint_eq(cfg.log_dest, LOG_DEST_STDERR);
	ck_assert_uint_eq(cfg.log_type, LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO);
	ck_assert_int_eq(cfg.security.allow_anonymous, -1);
	ck_assert_int_eq(cfg.security.allow_zero_length_clientid, 1);
	ck_assert_str_eq(cfg.security.auto_id_prefix, "auto-");
	ck_assert_uint_eq(cfg.nlisteners, 0);
	ck_assert_uint_eq(cfg.nbridges, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(test_section_defaults)
{
	struct loaded ld;
	const struct config_listener *l;
	const struct config_bridge *b;

	load_text(&ld, ".conf", "listener 1883\nconnection b\naddress h\ntopic x\n");
	ck_assert_clean(&ld);
	l = &ld.cfg.listeners[0];
	ck_assert_int_eq(l->protocol, LISTENER_MQTT);
	ck_assert_int_eq(l->socket_domain, SOCKET_DOMAIN_ANY);
	ck_assert_int_eq(l->max_connections, -1);
	ck_assert_int_eq(l->max_qos, 2);
	ck_assert_int_eq(l->max_topic_alias, 10);
	ck_assert_int_eq(l->max_topic_alias_broker, 10);
	ck_assert_int_eq(l->websockets_headers_size, 0);
	ck_assert_int_eq(l->security.allow_anonymous, 0);
	ck_assert_int_eq(l->security.allow_zero_length_clientid, 1);
	ck_assert_str_eq(l->security.auto_id_prefix, "auto-");
	b = &ld.cfg.bridges[0];
	ck_assert_str_eq(b->name, "b");
	ck_assert_int_eq(b->keepalive_interval, 60);
	ck_assert_int_eq(b->idle_timeout, 60);
	ck_assert_int_eq(b->threshold, 10);
	ck_assert_int_eq(b->restart_timeout_base, 5);
	ck_assert_int_eq(b->restart_timeout_cap, 30);
	ck_assert_int_eq(b->protocol_version, 4);
	ck_assert_int_eq(b->start_type, BRIDGE_START_AUTOMATIC);
	ck_assert_int_eq(b->local_cleansession, -1);
	ck_assert(b->notifications && b->try_private);
	ck_assert(b->attempt_unsubscribe && b->outgoing_retain);
	ck_assert(!b->cleansession && !b->round_robin && !b->insecure);
	ck_assert_str_eq(b->addresses[0].host, "h");
	ck_assert_int_eq(b->addresses[0].port, 1883);
	ck_assert_int_eq(b->topics[0].direction, BRIDGE_OUT);
	ck_assert_int_eq(b->topics[0].qos, 0);
	unload(&ld);
}
END_TEST

START_TEST(test_default_listener)
{
	static const struct {
		const char *text;
		int port;
		int expect_port;
		int anonymous;
	} cases[] = {
		{"", 0, 1883, 1},
		{"", 1884, 1884, 1},
		{"allow_anonymous false\n", 0, 1883, 0},
		{"password_file /etc/pw\n", -5, 1883, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct loaded ld;

		load_text(&ld, ".conf", cases[i].text);
		ck_assert_clean(&ld);
		config_add_default_listener(&ld.cfg, cases[i].port);
		ck_assert_uint_eq(ld.cfg.nlisteners, 1);
		ck_assert_int_eq(ld.cfg.listeners[0].port, cases[i].expect_port);
		ck_assert_str_eq(ld.cfg.listeners[0].bind_address, "127.0.0.1");
		ck_assert_int_eq(ld.cfg.listeners[0].security.allow_anonymous, cases[i].anonymous);
		ck_assert_int_eq(ld.cfg.listeners[0].max_connections, -1);
		/* once there is a listener, nothing is added */
		config_add_default_listener(&ld.cfg, 1999);
		ck_assert_uint_eq(ld.cfg.nlisteners, 1);
		unload(&ld);
	}
}
END_TEST

START_TEST(test_port_listener)
{
	struct loaded ld;
	const struct config_listener *l;

	load_text(&ld, ".conf", "listener 1883 127.0.0.1\npassword_file /etc/pw\n");
	ck_assert_clean(&ld);
	ck_assert_int_eq(config_add_port_listener(&ld.cfg, 1884), 0);
	ck_assert_uint_eq(ld.cfg.nlisteners, 2);
	l = &ld.cfg.listeners[1];
	ck_assert_int_eq(l->port, 1884);
	ck_assert_ptr_null(l->bind_address);
	ck_assert_str_eq(l->security.password_file, "/etc/pw");
	ck_assert_int_eq(l->security.allow_anonymous, 0);
	/* a port already listened on every address is not added twice */
	ck_assert_int_eq(config_add_port_listener(&ld.cfg, 1884), 0);
	ck_assert_uint_eq(ld.cfg.nlisteners, 2);
	unload(&ld);
}
END_TEST

/* ---- errors: place, line, column, message -------------------------------- */

struct err_case {
	const char *suffix;
	const char *text;
	const char *expect; /* "line:column: message"; '@' stands for the file name */
	size_t nerrors;
};

static const struct err_case err_cases[] = {
	/* mosquitto.conf: types and ranges */
	{".conf", "max_inflight_messages 70000\n",
	 "1:23: value 70000 for 'max_inflight_messages' is out of range (accepted: 0..65535)", 1},
	{".conf", "max_inflight_messages abc\n",
	 "1:23: invalid value 'abc' for 'max_inflight_messages': expected an integer (accepted: "
	 "0..65535)", 1},
	{".conf", "allow_anonymous yes\n",
	 "1:17: invalid value 'yes' for 'allow_anonymous' (accepted: true, false)", 1},
	{".conf", "allow_anonymous TRUE\n",
	 "1:17: invalid value 'TRUE' for 'allow_anonymous' (accepted: true, false)", 1},
	{".conf", "max_keepalive 5\n",
	 "1:15: value 5 for 'max_keepalive' is out of range (accepted: 10..65535)", 1},
	{".conf", "max_packet_size 10\n",
	 "1:17: value 10 for 'max_packet_size' is out of range (accepted: 0 or 20..268435460)", 1},
	{".conf", "message_size_limit 300000000\n",
	 "1:20: value 300000000 for 'message_size_limit' is out of range "
	 "(accepted: 0..268435455)", 1},
	{".conf", "memory_limit -1\n",
	 "1:14: invalid value '-1' for 'memory_limit': expected a number of bytes", 1},
	{".conf", "sys_interval -1\n",
	 "1:14: value -1 for 'sys_interval' is out of range (accepted: 0..65535)", 1},
	{".conf", "workers many\n",
	 "1:9: invalid value 'many' for 'workers': expected an integer (accepted: 0..1024)", 1},
	{".conf", "connect_timeout 0\n",
	 "1:17: value 0 for 'connect_timeout' is out of range (accepted: 1..3600)", 1},
	{".conf", "persistent_client_expiration 100\n",
	 "1:30: invalid value '100' for 'persistent_client_expiration' (accepted: a positive "
	 "number followed by s, h, d, w, m or y, e.g. 14d)", 1},
	{".conf", "persistent_client_expiration 0d\n",
	 "1:30: invalid value '0d' for 'persistent_client_expiration' (accepted: a positive "
	 "number followed by s, h, d, w, m or y, e.g. 14d)", 1},
	{".conf", "log_facility 9\n",
	 "1:14: invalid value '9' for 'log_facility' (accepted: 0, 1, 2, 3, 4, 5, 6, 7, local0, "
	 "local1, local2, local3, local4, local5, local6, local7, daemon, user)", 1},
	{".conf", "log_dest fax\n",
	 "1:10: invalid value 'fax' for 'log_dest' (accepted: stdout, stderr, syslog, topic, dlt, "
	 "none, file <path>)", 1},
	{".conf", "log_dest syslog file\n",
	 "1:17: 'log_dest file' needs a file name", 1},
	{".conf", "log_dest file /a\nlog_dest file /b\n",
	 "2:10: only one 'log_dest file' may be given", 1},
	{".conf", "log_type verbose\n",
	 "1:10: invalid value 'verbose' for 'log_type' (accepted: debug, error, warning, notice, "
	 "information, subscribe, unsubscribe, websockets, none, all)", 1},
	{".conf", "listener 1883\nprotocol mqttsn\n",
	 "2:10: invalid value 'mqttsn' for 'protocol' (accepted: mqtt, websockets, http)", 1},
	{".conf", "listener 1883\nsocket_domain ipv5\n",
	 "2:15: invalid value 'ipv5' for 'socket_domain' (accepted: ipv4, ipv6)", 1},
	{".conf", "listener 1883\nmax_qos 3\n",
	 "2:9: value 3 for 'max_qos' is out of range (accepted: 0..2)", 1},
	{".conf", "listener 1883\ntls_version tlsv9\n",
	 "2:13: invalid value 'tlsv9' for 'tls_version' (accepted: tlsv1.3, tlsv1.2, tlsv1.1)", 1},
	{".conf", "listener 1883\ntls_engine_kpass_sha1 abc\n",
	 "2:23: invalid value 'abc' for 'tls_engine_kpass_sha1': expected a SHA1 hash as 40 "
	 "hexadecimal digits", 1},
	{".conf", "listener 1883\nmount_point a/#\n",
	 "2:13: invalid value 'a/#' for 'mount_point': a topic must not contain '+' or '#'", 1},
	{".conf", "listener 1883\naccept_protocol_versions 4,6\n",
	 "2:28: invalid value '6' for 'accept_protocol_versions' (accepted: 3, 4, 5)", 1},
	{".conf", "listener 1883\nenable_proxy_protocol 3\n",
	 "2:23: value 3 for 'enable_proxy_protocol' is out of range (accepted: 1..2)", 1},
	{".conf", "listener 70000\n",
	 "1:10: value 70000 for 'listener' is out of range (accepted: 0..65535)", 1},
	{".conf", "listener 1883x\n",
	 "1:10: invalid value '1883x' for 'listener': expected an integer (accepted: 0..65535)", 1},
	{".conf", "listener 0\n",
	 "1:10: a listener on port 0 needs a unix socket path", 1},
	{".conf", "listener 1883 ::1 extra\n",
	 "1:19: unexpected 'extra' after the value of 'listener'", 1},
	{".conf", "port 0\n",
	 "1:6: value 0 for 'port' is out of range (accepted: 1..65535)", 1},
	{".conf", "allow_anonymous\n",
	 "1:16: missing value for 'allow_anonymous'", 1},
	{".conf", "pid_file   \n",
	 "1:9: missing value for 'pid_file'", 1},
	{".conf", "max_queued_messages 10 20\n",
	 "1:24: unexpected '20' after the value of 'max_queued_messages'", 1},
	{".conf", "pid_file /a\npid_file /b\n",
	 "2:1: duplicate value for 'pid_file' (first set at @:1)", 1},
	{".conf", "connection b\naddress h:0\ntopic x\n",
	 "2:9: value 0 for 'address' is out of range (accepted: 1..65535)", 2},
	{".conf", "connection b\naddress h\naddress i\ntopic x\n",
	 "3:1: duplicate value for 'address' (first set at @:2)", 1},
	{".conf", "connection b\naddress h\ntopic # sideways\n",
	 "3:9: invalid topic direction 'sideways' (accepted: out, in, both)", 2},
	{".conf", "connection b\naddress h\ntopic # both 3\n",
	 "3:14: value 3 for 'topic' is out of range (accepted: 0..2)", 2},
	{".conf", "connection b\naddress h\ntopic \"\" in 0 \"\" r/\n",
	 "3:7: an empty topic pattern needs both a local and a remote prefix", 2},
	{".conf", "connection b\naddress h\ntopic a/+/b in 0 l/+ r/\n",
	 "3:18: invalid local prefix 'l/+': a prefix must not contain '+' or '#'", 2},
	{".conf", "connection b\naddress h\ntopic a/#/b\n",
	 "3:7: invalid topic pattern 'a/#/b'", 2},
	{".conf", "connection b\naddress h\ntopic x\nbridge_protocol_version mqttv6\n",
	 "4:25: invalid value 'mqttv6' for 'bridge_protocol_version' (accepted: mqttv31, "
	 "mqttv311, mqttv50)", 1},
	{".conf", "connection b\naddress h\ntopic x\nstart_type manual\n",
	 "4:12: invalid value 'manual' for 'start_type' (accepted: automatic, lazy, once)", 1},
	{".conf", "connection b\naddress h\ntopic x\nrestart_timeout 10 5\n",
	 "4:20: the back-off cap (5) of 'restart_timeout' is lower than its base (10)", 1},
	{".conf", "connection b\naddress h\ntopic x\nkeepalive_interval 70000\n",
	 "4:20: value 70000 for 'keepalive_interval' is out of range (accepted: 5..65535)", 1},
	{".conf", "connection b\naddress h\ntopic x\nbridge_psk 0xab\nbridge_identity i\n",
	 "4:12: invalid value '0xab' for 'bridge_psk': give the key in hexadecimal "
	 "without '0x'", 2},
	/* mosquitto.conf: placement */
	{".conf", "cleansession true\n",
	 "1:1: 'cleansession' is a bridge option: it must follow a 'connection' line", 1},
	{".conf", "mount_point a/\n",
	 "1:1: 'mount_point' must follow a 'listener' line", 1},
	{".conf", "plugin_opt_key value\n",
	 "1:1: 'plugin_opt_key' needs a plugin: put it after a 'plugin' line", 1},
	{".conf", "auth_plugin_deny_special_chars false\n",
	 "1:1: 'auth_plugin_deny_special_chars' needs a plugin: put it after a 'plugin' line", 1},
	{".conf", "allow_anonymous true\nper_listener_settings true\n",
	 "2:23: 'per_listener_settings' must come before every other security option", 1},
	{".conf", "listeners 1883\n",
	 "1:1: 'listeners' is only valid in YAML files", 1},
	{".conf", "listener 1883\nplugin_use dynsec\n",
	 "2:12: no 'plugin_load' named 'dynsec'", 1},
	/* mosquitto.conf: checks after parsing */
	{".conf", "listener 1883\ncertfile /c\n",
	 "1:1: listener on port 1883: 'certfile' is set but 'keyfile' is missing", 1},
	{".conf", "listener 1883\npsk_hint h\ncafile /ca\n",
	 "1:1: listener on port 1883: cannot use both certificate and PSK encryption", 1},
	{".conf", "listener 1883\nlistener 1883\n",
	 "2:1: this listener is declared twice (first at @:1)", 1},
	{".conf", "connection b\n",
	 "1:1: bridge 'b' has no 'address'", 2},
	{".conf", "connection b\naddress h\n",
	 "1:1: bridge 'b' has no 'topic'", 1},
	{".conf", "connection b\naddress h\ntopic x\nconnection b\naddress i\ntopic y\n",
	 "4:1: duplicate bridge name 'b' (first at @:1)", 1},
	{".conf", "connection b\naddress h\ntopic x\nbridge_psk 00ff\n",
	 "1:1: bridge 'b': 'bridge_psk' and 'bridge_identity' go together", 1},
	/* YAML */
	{".yaml", "max_inflight_messages: 70000\n",
	 "1:24: value 70000 for 'max_inflight_messages' is out of range (accepted: 0..65535)", 1},
	{".yaml", "max_inflight_messages: -3\n",
	 "1:24: value -3 for 'max_inflight_messages' is out of range (accepted: 0..65535)", 1},
	{".yaml", "allow_anonymous: maybe\n",
	 "1:18: invalid value 'maybe' for 'allow_anonymous' "
	 "(accepted: true/false, yes/no, on/off)", 1},
	{".yaml", "max_inflight_messages: [1, 2]\n",
	 "1:1: 'max_inflight_messages' takes a single value, not a list", 1},
	{".yaml", "max_keepalive: {a: 1}\n",
	 "1:16: 'max_keepalive' expects a value, not a mapping", 1},
	{".yaml", "log_type: [error, [debug]]\n",
	 "1:19: 'log_type' expects a value here, not a list", 1},
	{".yaml", "sys_interval: 1\nsys_interval: 2\n",
	 "2:1: duplicate key 'sys_interval' (first at line 1)", 1},
	{".yaml", "pid_file:\n",
	 "1:10: missing value for 'pid_file'", 1},
	{".yaml", "cafile: /x\n",
	 "1:1: 'cafile' is a listener option: put it in a 'listeners:' entry", 1},
	{".yaml", "listeners:\n  - port: 1883\n    persistence: true\n",
	 "3:5: 'persistence' is a global option: move it to the top level", 1},
	{".yaml", "listener: 1883\n",
	 "1:1: 'listener' is mosquitto.conf syntax: YAML declares listeners and bridges under "
	 "'listeners:' and 'bridges:'", 1},
	{".yaml", "listeners:\n  - port: 99999\n",
	 "2:11: value 99999 for 'port' is out of range (accepted: 0..65535)", 2},
	{".yaml", "listeners:\n  - bind_address: 127.0.0.1\n",
	 "2:5: listener has no 'port'", 1},
	{".yaml", "listeners:\n  - port: 1\n    unix_socket_path: /s\n",
	 "2:5: a unix socket listener takes no port", 1},
	{".yaml", "listeners: 1883\n",
	 "1:12: 'listeners' expects a list, not a value", 1},
	{".yaml", "listeners:\n  - 1883\n",
	 "2:5: a listener entry must be a mapping of options, not a value", 1},
	{".yaml", "bridges:\n  - name: b\n    addresses: h\n    topics: [{pattern: x, qos: 9}]\n",
	 "4:32: value 9 for 'topic' is out of range (accepted: 0..2)", 2},
	{".yaml",
	 "bridges:\n  - name: b\n    addresses: h\n    topics: [{pattern: x, directon: in}]\n",
	 "4:27: unknown key 'directon' in a bridge topic (did you mean 'direction'?)", 2},
	{".yaml", "bridges:\n  - addresses: h\n    topic: x\n",
	 "2:5: bridge has no 'name'", 1},
	{".yaml", "plugins:\n  - path: /p.so\n    colour: red\n",
	 "3:5: unknown key 'colour' in a plugin entry", 1},
	{".yaml", "plugins:\n  - options: {a: b}\n",
	 "2:5: a plugin entry needs a 'path' (or a 'name')", 1},
	{".yaml", "topics:\n  - x\n",
	 "1:1: 'topics' does not belong here", 1},
	{".yaml", "persistent_client_expiration: 3x\n",
	 "1:31: invalid value '3x' for 'persistent_client_expiration' (accepted: a positive "
	 "number followed by s, h, d, w, m or y, e.g. 14d)", 1},
	{".yaml", "- a\n- b\n",
	 "1:1: the top level must be a mapping of 'option: value'", 1},
	{".yaml", "sys_interval: 1\n---\nsys_interval: 2\n",
	 "2:1: only one YAML document per file is read", 1},
	{".yaml", "pid_file: ${MIDGE_TEST_SURELY_UNSET}\n",
	 "1:11: environment variable 'MIDGE_TEST_SURELY_UNSET' is not set (write "
	 "${MIDGE_TEST_SURELY_UNSET:-default} to give a default)", 1},
	{".yaml", "pid_file: \"/run/${MIDGE_TEST_SURELY_UNSET}\"\n",
	 "1:17: environment variable 'MIDGE_TEST_SURELY_UNSET' is not set (write "
	 "${MIDGE_TEST_SURELY_UNSET:-default} to give a default)", 1},
	{".yaml", "pid_file: /run/${MIDGE_TEST\n",
	 "1:16: unterminated '${' in value", 1},
	{".yaml", "pid_file: ${1BAD}\n",
	 "1:11: invalid environment variable name '1BAD'", 1},
};

/* Replaces each '@' of pattern with file. */
static void expand_at(char *out, size_t size, const char *pattern, const char *file)
{
	size_t used = 0;

	for (; *pattern && used + 1 < size; pattern++) {
		if (*pattern == '@')
			used += (size_t)snprintf(out + used, size - used, "%s", file);
		else
			out[used++] = *pattern;
	}
	out[used < size ? used : size - 1] = '\0';
}

START_TEST(test_error_table)
{
	const struct err_case *c = &err_cases[_i];
	struct loaded ld;
	char expect[700];

	load_text(&ld, c->suffix, c->text);
	expand_at(expect, sizeof(expect), c->expect, ld.path);
	ck_assert_int_eq(ld.rc, -1);
	ck_assert_msg(ld.diag.nerrors == c->nerrors, "case %d (%s): %zu errors: %s", _i, c->text,
		      ld.diag.nerrors, all_diag(&ld.diag));
	ck_assert_str_eq(where(&ld.diag.errors[0]), expect);
	ck_assert_str_eq(ld.diag.errors[0].loc.file, ld.path);
	unload(&ld);
}
END_TEST

START_TEST(test_yaml_syntax_error)
{
	struct loaded ld;

	load_text(&ld, ".yaml", "listeners:\n  - port: [1883\n");
	ck_assert_int_eq(ld.rc, -1);
	ck_assert_uint_eq(ld.diag.nerrors, 1);
	ck_assert_msg(strncmp(ld.diag.errors[0].message, "YAML syntax error: ", 19) == 0, "%s",
		      ld.diag.errors[0].message);
	ck_assert_int_eq(ld.diag.errors[0].loc.line, 3);
	ck_assert_int_ge(ld.diag.errors[0].loc.column, 1);
	unload(&ld);
}
END_TEST

START_TEST(test_unknown_option)
{
	static const struct {
		const char *suffix, *text, *key, *expect;
	} cases[] = {
		{".conf", "max_inflight_mesages 5\n", "max_inflight_mesages",
		 "1:1: unknown option 'max_inflight_mesages' "
		 "(did you mean 'max_inflight_messages'?)"},
		{".conf", "  alow_anonymous true\n", "alow_anonymous",
		 "1:3: unknown option 'alow_anonymous' (did you mean 'allow_anonymous'?)"},
		{".conf", "prot 1883\n", "prot",
		 "1:1: unknown option 'prot' (did you mean 'port'?)"},
		{".conf", "frobnicate 1\n", "frobnicate", "1:1: unknown option 'frobnicate'"},
		{".conf", "listners 1883\n", "listners",
		 "1:1: unknown option 'listners' (did you mean 'listener'?)"},
		{".yaml", "listners:\n  - port: 1\n", "listners",
		 "1:1: unknown option 'listners' (did you mean 'listeners'?)"},
		{".yaml", "max_inflight_mesages: 5\n", "max_inflight_mesages",
		 "1:1: unknown option 'max_inflight_mesages' "
		 "(did you mean 'max_inflight_messages'?)"},
		{".yaml", "listeners:\n  - port: 1883\n    max_conections: 5\n", "max_conections",
		 "3:5: unknown option 'max_conections' (did you mean 'max_connections'?)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct loaded ld;

		load_text(&ld, cases[i].suffix, cases[i].text);
		ck_assert_int_eq(ld.rc, -1);
		ck_assert_uint_eq(ld.diag.nerrors, 1);
		ck_assert_str_eq(where(&ld.diag.errors[0]), cases[i].expect);
		ck_assert_str_eq(ld.diag.errors[0].key, cases[i].key);
		unload(&ld);
	}
}
END_TEST

START_TEST(test_typo_yaml_file)
{
	struct loaded ld;
	char path[256], expect[700];
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	data_path(path, sizeof(path), "typo.yaml");
	load_path(&ld, path);
	ck_assert_int_eq(ld.rc, -1);
	ck_assert_uint_eq(ld.diag.nerrors, 1);
	f = open_memstream(&text, &size);
	ck_assert_ptr_nonnull(f);
	config_diag_print(&ld.diag, f);
	fclose(f);
	snprintf(expect, sizeof(expect), "%s:6:1: error: unknown option 'max_inflight_mesages' (did you "
		 "mean 'max_inflight_messages'?)\n", path);
	ck_assert_str_eq(text, expect);
	free(text);
	unload(&ld);
}
END_TEST

START_TEST(test_all_errors_collected)
{
	struct loaded ld;

	load_text(&ld, ".conf",
		  "max_qos 9\nbogus 1\nmax_keepalive 1\nlistener 1884\nmount_point +\n"
		  "sys_interval 5\n");
	ck_assert_int_eq(ld.rc, -1);
	ck_assert_uint_eq(ld.diag.nerrors, 4);
	ck_assert_int_eq(ld.diag.errors[0].loc.line, 1);
	ck_assert_int_eq(ld.diag.errors[1].loc.line, 2);
	ck_assert_int_eq(ld.diag.errors[2].loc.line, 3);
	ck_assert_int_eq(ld.diag.errors[3].loc.line, 5);
	ck_assert_int_eq(ld.cfg.sys_interval, 5); /* lines after errors still count */
	unload(&ld);
}
END_TEST

START_TEST(test_diag_print)
{
	struct loaded ld;
	char *text = NULL, expect[2048];
	size_t size = 0;
	FILE *f;

	load_text(&ld, ".conf", "retry_interval 10\nmax_qos 7\n");
	f = open_memstream(&text, &size);
	ck_assert_ptr_nonnull(f);
	config_diag_print(&ld.diag, f);
	fclose(f);
	snprintf(expect, sizeof(expect),
		 "%s:2:9: error: value 7 for 'max_qos' is out of range (accepted: 0..2)\n"
		 "%s:1:1: warning: 'retry_interval' no longer applies and is ignored (QoS retries "
		 "happen on reconnection, as MQTT 3.1.1 and 5 require)\n"
		 "%s:2:1: warning: 'max_qos' before any 'listener' line configures the default "
		 "listener (port 1883 on every address unless 'port'/'bind_address' say "
		 "otherwise)\n",
		 ld.path, ld.path, ld.path);
	ck_assert_str_eq(text, expect);
	free(text);
	/* the diagnostics keep their file names after the configuration is gone */
	config_free(&ld.cfg);
	ck_assert_str_eq(ld.diag.errors[0].loc.file, ld.path);
	config_diag_free(&ld.diag);
}
END_TEST

START_TEST(test_missing_file)
{
	struct config cfg;
	struct config_diag diag;

	config_init(&cfg);
	ck_assert_int_eq(config_load(&cfg, "/nonexistent/midge.yaml", CONFIG_FORMAT_AUTO, &diag),
			 -1);
	ck_assert_uint_eq(diag.nerrors, 1);
	ck_assert_str_eq(diag.errors[0].message, "cannot open configuration file "
			 "'/nonexistent/midge.yaml': No such file or directory");
	ck_assert_int_eq(diag.errors[0].loc.line, 0);
	config_free(&cfg);
	config_diag_free(&diag);
}
END_TEST

/* ---- warnings: legacy, deprecated, clamped ----------------------------------- */

START_TEST(test_legacy_and_clamp_warnings)
{
	struct loaded ld;

	load_text(&ld, ".conf", "retry_interval 20\nstore_clean_interval 10\n"
		  "allow_duplicate_messages false\ntrace_level 2\nffdc_output /x\n"
		  "max_inflight_messages -3\nmax_queued_messages -1\nmax_inflight_bytes -4\n"
		  "clientid_prefixes x-\nbind_address 0.0.0.0\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.diag.nwarnings, 10);
	ck_assert_str_eq(where(&ld.diag.warnings[0]),
			 "1:1: 'retry_interval' no longer applies and is ignored (QoS retries "
			 "happen on reconnection, as MQTT 3.1.1 and 5 require)");
	ck_assert_int_eq(ld.diag.warnings[4].loc.line, 5);
	ck_assert_str_eq(where(&ld.diag.warnings[5]),
			 "6:23: value -3 for 'max_inflight_messages' is below 0; using 0");
	ck_assert_str_eq(where(&ld.diag.warnings[8]),
			 "9:1: 'clientid_prefixes' is deprecated and will be removed in a future "
			 "version");
	ck_assert_str_eq(where(&ld.diag.warnings[9]),
			 "10:14: 'bind_address' is deprecated and sets the default listener: use "
			 "'listener' instead");
	ck_assert_int_eq(ld.cfg.max_inflight_messages, 0);
	ck_assert_int_eq(ld.cfg.max_queued_messages, 0);
	ck_assert_uint_eq(ld.cfg.max_inflight_bytes, 0);
	ck_assert_str_eq(ld.cfg.security.clientid_prefixes.items[0], "x-");
	/* the default listener: bind_address without port means 1883 */
	ck_assert_uint_eq(ld.cfg.nlisteners, 1);
	ck_assert_int_eq(ld.cfg.listeners[0].port, 1883);
	ck_assert_str_eq(ld.cfg.listeners[0].bind_address, "0.0.0.0");
	unload(&ld);
}
END_TEST

/* ---- both front ends: identical structs --------------------------------------- */

static void same_field(const struct conf_option *o, const void *a, const void *b, const char *what)
{
	switch (o->type) {
	case CONF_T_BOOL:
		ck_assert_msg(*(const bool *)a == *(const bool *)b, "%s %s", what, o->name);
		break;
	case CONF_T_TRIBOOL:
	case CONF_T_INT:
	case CONF_T_ENUM:
		ck_assert_msg(*(const int *)a == *(const int *)b, "%s %s: %d != %d", what, o->name,
			      *(const int *)a, *(const int *)b);
		break;
	case CONF_T_UINT32:
		ck_assert_msg(*(const uint32_t *)a == *(const uint32_t *)b, "%s %s", what, o->name);
		break;
	case CONF_T_SIZE:
	case CONF_T_DURATION:
		ck_assert_msg(*(const int64_t *)a == *(const int64_t *)b, "%s %s", what, o->name);
		break;
	case CONF_T_STRING: {
		const char *x = *(char *const *)a, *y = *(char *const *)b;
		ck_assert_msg((!x && !y) || (x && y && strcmp(x, y) == 0), "%s %s: %s != %s", what,
			      o->name, x ? x : "(null)", y ? y : "(null)");
		break;
	}
	case CONF_T_STRLIST: {
		const struct config_strlist *x = a, *y = b;
		ck_assert_msg(x->count == y->count, "%s %s", what, o->name);
		for (size_t i = 0; i < x->count; i++)
			ck_assert_str_eq(x->items[i], y->items[i]);
		break;
	}
	default:
		break;
	}
}

/* Compares every field the table describes for one struct type. */
static void same_scope(enum conf_scope scope, const void *a, const void *b, const char *what)
{
	for (size_t i = 0; i < conf_schema_count(); i++) {
		const struct conf_option *o = conf_schema_at(i);

		if (o->flags & CONF_F_ALIAS)
			continue;
		if (o->scope == scope)
			same_field(o, (const char *)a + o->off, (const char *)b + o->off, what);
		if ((o->flags & CONF_F_MERGED) && scope == CONF_SC_LISTENER &&
		    o->scope == CONF_SC_GLOBAL)
			same_field(o, (const char *)a + o->off2, (const char *)b + o->off2, what);
	}
}

static void same_plugins(const struct config_security *a, const struct config_security *b)
{
	ck_assert_uint_eq(a->nplugins, b->nplugins);
	for (size_t i = 0; i < a->nplugins; i++) {
		const struct config_plugin *x = &a->plugins[i], *y = &b->plugins[i];
		ck_assert_str_eq(x->path, y->path);
		ck_assert_int_eq(x->deny_special_chars, y->deny_special_chars);
		ck_assert_uint_eq(x->nopts, y->nopts);
		for (size_t j = 0; j < x->nopts; j++) {
			ck_assert_str_eq(x->opts[j].key, y->opts[j].key);
			ck_assert_str_eq(x->opts[j].value, y->opts[j].value);
		}
	}
}

static void same_config(const struct config *a, const struct config *b)
{
	same_scope(CONF_SC_GLOBAL, a, b, "global");
	same_scope(CONF_SC_SECURITY, &a->security, &b->security, "security");
	same_plugins(&a->security, &b->security);
	ck_assert_uint_eq(a->log_dest, b->log_dest);
	ck_assert_uint_eq(a->log_type, b->log_type);
	ck_assert_pstr_eq(a->log_file, b->log_file);
	ck_assert_uint_eq(a->nlisteners, b->nlisteners);
	for (size_t i = 0; i < a->nlisteners; i++) {
		const struct config_listener *x = &a->listeners[i], *y = &b->listeners[i];
		same_scope(CONF_SC_LISTENER, x, y, "listener");
		same_scope(CONF_SC_SECURITY, &x->security, &y->security, "listener security");
		same_plugins(&x->security, &y->security);
		ck_assert_int_eq(x->enable_proxy_protocol, y->enable_proxy_protocol);
	}
	ck_assert_uint_eq(a->nbridges, b->nbridges);
	for (size_t i = 0; i < a->nbridges; i++) {
		const struct config_bridge *x = &a->bridges[i], *y = &b->bridges[i];
		same_scope(CONF_SC_BRIDGE, x, y, "bridge");
		ck_assert_int_eq(x->restart_timeout_base, y->restart_timeout_base);
		ck_assert_int_eq(x->restart_timeout_cap, y->restart_timeout_cap);
		ck_assert_int_eq(x->tcp_keepalive, y->tcp_keepalive);
		ck_assert_uint_eq(x->naddresses, y->naddresses);
		for (size_t j = 0; j < x->naddresses; j++) {
			ck_assert_str_eq(x->addresses[j].host, y->addresses[j].host);
			ck_assert_int_eq(x->addresses[j].port, y->addresses[j].port);
		}
		ck_assert_uint_eq(x->ntopics, y->ntopics);
		for (size_t j = 0; j < x->ntopics; j++) {
			const struct config_bridge_topic *s = &x->topics[j], *t = &y->topics[j];
			ck_assert_str_eq(s->pattern, t->pattern);
			ck_assert_int_eq(s->direction, t->direction);
			ck_assert_int_eq(s->qos, t->qos);
			ck_assert_pstr_eq(s->local_prefix, t->local_prefix);
			ck_assert_pstr_eq(s->remote_prefix, t->remote_prefix);
		}
	}
}

START_TEST(test_front_ends_equivalent)
{
	struct loaded conf, yaml;
	char path[256];

	data_path(path, sizeof(path), "equiv.conf");
	load_path(&conf, path);
	data_path(path, sizeof(path), "equiv.yaml");
	load_path(&yaml, path);
	ck_assert_clean(&conf);
	ck_assert_clean(&yaml);
	same_config(&conf.cfg, &yaml.cfg);
	/* and a few values, so that equal is not equally wrong */
	ck_assert_uint_eq(conf.cfg.nlisteners, 3);
	ck_assert_int_eq(conf.cfg.persistent_client_expiration, 14 * 86400);
	ck_assert_str_eq(conf.cfg.log_file, "/var/log/midge test.log");
	ck_assert_uint_eq(conf.cfg.log_type, LOG_T_ERR | LOG_T_WARNING | LOG_T_SUBSCRIBE);
	ck_assert_uint_eq(conf.cfg.log_dest, LOG_DEST_STDOUT | LOG_DEST_FILE);
	ck_assert_int_eq(conf.cfg.listeners[1].security.plugins[0].deny_special_chars, 0);
	ck_assert_str_eq(conf.cfg.listeners[1].security.plugins[0].opts[1].value, "on");
	ck_assert_str_eq(conf.cfg.listeners[2].unix_path, "/run/midge.sock");
	ck_assert_int_eq(conf.cfg.listeners[2].port, 0);
	ck_assert_str_eq(conf.cfg.listeners[2].security.clientid_prefixes.items[0], "dev-");
	ck_assert_int_eq(conf.cfg.bridges[0].protocol_version, 5);
	ck_assert_int_eq(conf.cfg.sync, STORE_SYNC_PERIODIC);
	unload(&conf);
	unload(&yaml);
}
END_TEST

/* sync: crash-safe groups of commits by default, a mosquitto.conf's saves on a timer. */
START_TEST(test_sync_defaults)
{
	struct loaded ld;

	load_text(&ld, ".yaml", "persistence: true\n");
	ck_assert_clean(&ld);
	ck_assert_int_eq(ld.cfg.sync, STORE_SYNC_BATCH);
	ck_assert_uint_eq(ld.cfg.persistence_max_size, 1073741824u);
	unload(&ld);
	load_text(&ld, ".conf", "persistence true\n");
	ck_assert_clean(&ld);
	ck_assert_int_eq(ld.cfg.sync, STORE_SYNC_PERIODIC);
	unload(&ld);
	load_text(&ld, ".conf", "persistence true\nsync always\npersistence_recover true\n");
	ck_assert_clean(&ld);
	ck_assert_int_eq(ld.cfg.sync, STORE_SYNC_ALWAYS);
	ck_assert(ld.cfg.persistence_recover);
	unload(&ld);
	load_text(&ld, ".yaml", "sync: sometimes\n");
	ck_assert_uint_eq(ld.diag.nerrors, 1);
	unload(&ld);
}
END_TEST

/* ---- midge --convert: the YAML it writes means the same ---------------------- */

static void midge_yaml_path(char *buf, size_t size);

static void converts_to_same(const char *path)
{
	struct loaded conf, yaml;
	char out[256];
	FILE *f;

	load_path(&conf, path);
	ck_assert_int_eq(conf.rc, 0);
	snprintf(out, sizeof(out), "%s/midge-converted-XXXXXX.yaml",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemps(out, 5);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(config_emit_yaml(&conf.cfg, f), 0);
	fclose(f);
	load_path(&yaml, out);
	ck_assert_msg(yaml.rc == 0 && yaml.diag.nerrors == 0, "%s: %s", out, all_diag(&yaml.diag));
	same_config(&conf.cfg, &yaml.cfg);
	unlink(out);
	unload(&conf);
	unload(&yaml);
}

START_TEST(test_convert_roundtrip)
{
	char path[256];

	data_path(path, sizeof(path), "equiv.conf");
	converts_to_same(path);
	data_path(path, sizeof(path), "legacy.conf");
	converts_to_same(path);
	midge_yaml_path(path, sizeof(path));
	converts_to_same(path);
	if (access(DEBIAN_EXAMPLE, R_OK) == 0)
		converts_to_same(DEBIAN_EXAMPLE);
}
END_TEST

/* ---- mosquitto rules ------------------------------------------------------ */

START_TEST(test_security_global)
{
	struct loaded ld;

	/* per_listener_settings false: security options are global wherever they are */
	load_text(&ld, ".conf",
		  "listener 1883\npassword_file /etc/pw\nplugin /p.so\nlistener 1884\n"
		  "allow_anonymous true\nauto_id_prefix gen-\n");
	ck_assert_clean(&ld);
	ck_assert_str_eq(ld.cfg.security.password_file, "/etc/pw");
	ck_assert_int_eq(ld.cfg.security.allow_anonymous, 1);
	ck_assert_uint_eq(ld.cfg.security.nplugins, 1);
	for (size_t i = 0; i < 2; i++) {
		const struct config_security *s = &ld.cfg.listeners[i].security;
		ck_assert_str_eq(s->password_file, "/etc/pw");
		ck_assert_int_eq(s->allow_anonymous, 1);
		ck_assert_str_eq(s->auto_id_prefix, "gen-");
		ck_assert_uint_eq(s->nplugins, 0); /* global plugins stay in the global list */
	}
	unload(&ld);
}
END_TEST

START_TEST(test_security_per_listener)
{
	struct loaded ld;
	const struct config_security *a, *b;

	load_text(&ld, ".conf",
		  "per_listener_settings true\nclientid_prefixes dev-\nlistener 1883\n"
		  "password_file /etc/pw\nplugin /p.so\nplugin_opt_db /var/db\nlistener 1884\n"
		  "allow_anonymous true\nacl_file /etc/acl\n");
	ck_assert_clean(&ld);
	a = &ld.cfg.listeners[0].security;
	b = &ld.cfg.listeners[1].security;
	ck_assert_ptr_null(ld.cfg.security.password_file);
	ck_assert_int_eq(ld.cfg.security.allow_anonymous, -1);
	ck_assert_str_eq(a->password_file, "/etc/pw");
	ck_assert_int_eq(a->allow_anonymous, 0);
	ck_assert_ptr_null(a->acl_file);
	ck_assert_uint_eq(a->nplugins, 1);
	ck_assert_str_eq(a->plugins[0].opts[0].key, "db");
	ck_assert_str_eq(a->plugins[0].opts[0].value, "/var/db");
	ck_assert_int_eq(a->plugins[0].deny_special_chars, 1);
	ck_assert_ptr_null(b->password_file);
	ck_assert_int_eq(b->allow_anonymous, 1);
	ck_assert_str_eq(b->acl_file, "/etc/acl");
	ck_assert_uint_eq(b->nplugins, 0);
	/* clientid_prefixes is global in mosquitto even per listener, then merged */
	ck_assert_str_eq(ld.cfg.security.clientid_prefixes.items[0], "dev-");
	ck_assert_str_eq(b->clientid_prefixes.items[0], "dev-");
	unload(&ld);
}
END_TEST

START_TEST(test_per_listener_default_listener)
{
	struct loaded ld;

	/* before any listener, per-listener security goes to mosquitto's default listener */
	load_text(&ld, ".conf",
		  "per_listener_settings true\npassword_file /etc/pw\nlistener 1884\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.nlisteners, 2);
	ck_assert_int_eq(ld.cfg.listeners[0].port, 1884);
	ck_assert_ptr_null(ld.cfg.listeners[0].security.password_file);
	ck_assert_int_eq(ld.cfg.listeners[1].port, 1883);
	ck_assert_ptr_null(ld.cfg.listeners[1].bind_address);
	ck_assert_str_eq(ld.cfg.listeners[1].security.password_file, "/etc/pw");
	ck_assert_uint_eq(ld.diag.nwarnings, 1);
	ck_assert_int_eq(ld.diag.warnings[0].loc.line, 2);
	unload(&ld);
	/* once true, per_listener_settings stays true (mosquitto) */
	load_text(&ld, ".conf", "per_listener_settings true\nper_listener_settings false\n");
	ck_assert_clean(&ld);
	ck_assert(ld.cfg.per_listener_settings);
	unload(&ld);
}
END_TEST

START_TEST(test_yaml_security_per_listener)
{
	struct loaded ld;

	/* YAML: security options in a listener entry always belong to it */
	load_text(&ld, ".yaml", "password_file: /etc/global\nlisteners:\n  - port: 1883\n"
		  "    password_file: /etc/own\n    plugins: [/a.so]\n  - port: 1884\n");
	ck_assert_clean(&ld);
	ck_assert(!ld.cfg.per_listener_settings);
	ck_assert_str_eq(ld.cfg.listeners[0].security.password_file, "/etc/own");
	ck_assert_str_eq(ld.cfg.listeners[0].security.plugins[0].path, "/a.so");
	ck_assert_str_eq(ld.cfg.listeners[1].security.password_file, "/etc/global");
	ck_assert_str_eq(ld.cfg.security.password_file, "/etc/global");
	unload(&ld);
}
END_TEST

START_TEST(test_listener_sections)
{
	struct loaded ld;
	const struct config_listener *l;

	load_text(&ld, ".conf", "max_connections 50\nlistener 1883 127.0.0.1\nmax_connections 10\n"
		  "listener 0 /run/m.sock\nprotocol websockets\nconnection b\naddress h\ntopic x\n"
		  "max_qos 1\nlistener 8883 ::1 # TLS\nmax_topic_alias 0\n"
		  "websockets_headers_size 2048\n"
		  "enable_proxy_protocol 2\naccept_protocol_versions 4, 5\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.nlisteners, 4);
	l = ld.cfg.listeners;
	ck_assert_int_eq(l[0].port, 1883);
	ck_assert_str_eq(l[0].bind_address, "127.0.0.1");
	ck_assert_int_eq(l[0].max_connections, 10);
	ck_assert_str_eq(l[1].unix_path, "/run/m.sock");
	ck_assert_int_eq(l[1].port, 0);
	ck_assert_int_eq(l[1].protocol, LISTENER_WEBSOCKETS);
	/* after 'connection', listener options still go to the last listener, as in mosquitto */
	ck_assert_int_eq(l[1].max_qos, 1);
	ck_assert_str_eq(l[2].bind_address, "::1");
	ck_assert_int_eq(l[2].max_topic_alias, 0);
	ck_assert_int_eq(l[2].proxy_protocol_version, 2);
	ck_assert(l[2].enable_proxy_protocol);
	ck_assert_uint_eq(l[2].accept_protocol_versions.count, 2);
	ck_assert_str_eq(l[2].accept_protocol_versions.items[1], "5");
	/* websockets_headers_size is global in mosquitto, merged into every listener */
	ck_assert_int_eq(ld.cfg.websockets_headers_size, 2048);
	ck_assert_int_eq(l[0].websockets_headers_size, 2048);
	/* max_connections before any listener made mosquitto's default listener, last */
	ck_assert_int_eq(l[3].port, 1883);
	ck_assert_ptr_null(l[3].bind_address);
	ck_assert_int_eq(l[3].max_connections, 50);
	unload(&ld);
}
END_TEST

START_TEST(test_yaml_listener_defaults_merge)
{
	struct loaded ld;

	load_text(&ld, ".yaml", "max_connections: 7\nmax_qos: 1\nlisteners:\n  - port: 1\n"
		  "  - port: 2\n    max_connections: 9\n    websockets_headers_size: 512\n");
	ck_assert_clean(&ld);
	ck_assert_int_eq(ld.cfg.listeners[0].max_connections, 7);
	ck_assert_int_eq(ld.cfg.listeners[0].max_qos, 1);
	ck_assert_int_eq(ld.cfg.listeners[0].websockets_headers_size, 0);
	ck_assert_int_eq(ld.cfg.listeners[1].max_connections, 9);
	ck_assert_int_eq(ld.cfg.listeners[1].websockets_headers_size, 512);
	unload(&ld);
}
END_TEST

START_TEST(test_bridge_sections)
{
	struct loaded ld;
	const struct config_bridge *b;

	load_text(&ld, ".conf", "connection one\naddresses h1:1884 [::1]:1885 fe80::1:1886 h4\n"
		  "topic # both 2 local/ remote/\ntopic \"\" in 1 l/x r/x\n"
		  "topic a/+ out 0 \"\" r/\n"
		  "topic b in\nclientid rc\nusername ru\npassword rp\nrestart_timeout 20\n"
		  "bridge_tcp_keepalive 60 10 5\nlocal_cleansession true\n"
		  "bridge_reload_type immediate\n"
		  "connection two\naddress 10.0.0.1\ntopic #\nkeepalive_interval 2\n"
		  "idle_timeout 0\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.diag.nwarnings, 2); /* keepalive 2 -> 5, idle_timeout 0 -> 1 */
	ck_assert_uint_eq(ld.cfg.nbridges, 2);
	b = &ld.cfg.bridges[0];
	ck_assert_uint_eq(b->naddresses, 4);
	ck_assert_str_eq(b->addresses[0].host, "h1");
	ck_assert_int_eq(b->addresses[0].port, 1884);
	ck_assert_str_eq(b->addresses[1].host, "::1");
	ck_assert_int_eq(b->addresses[1].port, 1885);
	ck_assert_str_eq(b->addresses[2].host, "fe80::1");
	ck_assert_int_eq(b->addresses[2].port, 1886);
	ck_assert_int_eq(b->addresses[3].port, 1883);
	ck_assert_uint_eq(b->ntopics, 4);
	ck_assert_str_eq(b->topics[0].pattern, "#");
	ck_assert_int_eq(b->topics[0].direction, BRIDGE_BOTH);
	ck_assert_int_eq(b->topics[0].qos, 2);
	ck_assert_str_eq(b->topics[0].local_prefix, "local/");
	ck_assert_str_eq(b->topics[1].pattern, "");
	ck_assert_str_eq(b->topics[1].remote_prefix, "r/x");
	ck_assert_ptr_null(b->topics[2].local_prefix);
	ck_assert_str_eq(b->topics[2].remote_prefix, "r/");
	ck_assert_int_eq(b->topics[3].direction, BRIDGE_IN);
	ck_assert_int_eq(b->topics[3].qos, 0);
	ck_assert_str_eq(b->remote_clientid, "rc");
	ck_assert_str_eq(b->remote_username, "ru");
	ck_assert_str_eq(b->remote_password, "rp");
	ck_assert_int_eq(b->restart_timeout_base, 20);
	ck_assert_int_eq(b->restart_timeout_cap, 0);
	ck_assert_int_eq(b->tcp_keepalive, 60);
	ck_assert_int_eq(b->tcp_keepalive_interval, 10);
	ck_assert_int_eq(b->tcp_keepalive_count, 5);
	ck_assert_int_eq(b->local_cleansession, 1);
	ck_assert_int_eq(b->reload_type, BRIDGE_RELOAD_IMMEDIATE);
	b = &ld.cfg.bridges[1];
	ck_assert_int_eq(b->keepalive_interval, 5);
	ck_assert_int_eq(b->idle_timeout, 1);
	unload(&ld);
}
END_TEST

START_TEST(test_logging_options)
{
	struct loaded ld;

	load_text(&ld, ".conf", "log_dest none\nlog_dest syslog\nlog_dest file /var/log/m m.log\n"
		  "log_type debug\nlog_type subscribe unsubscribe\nlog_facility 5\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.log_dest, LOG_DEST_SYSLOG | LOG_DEST_FILE);
	ck_assert_str_eq(ld.cfg.log_file, "/var/log/m m.log");
	/* the first log_type replaced the default set */
	ck_assert_uint_eq(ld.cfg.log_type, LOG_T_DEBUG | LOG_T_SUBSCRIBE | LOG_T_UNSUBSCRIBE);
	ck_assert_str_eq(ld.cfg.log_facility, "5");
	unload(&ld);
	load_text(&ld, ".yaml", "log_dest: none\nlog_type: [all]\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.log_dest, 0);
	ck_assert_uint_eq(ld.cfg.log_type, LOG_T_ALL);
	unload(&ld);
}
END_TEST

START_TEST(test_plugins)
{
	struct loaded ld;
	const struct config_plugin *p;

	load_text(&ld, ".conf", "auth_plugin /a.so\nauth_opt_one 1\nplugin_opt_two two words\n"
		  "auth_plugin_deny_special_chars false\nglobal_plugin /g.so\n"
		  "plugin_load dyn /usr/lib/dyn sec.so\nplugin_opt_cfg /etc/dyn.json\n"
		  "listener 1883\nplugin_use dyn\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.security.nplugins, 3);
	p = &ld.cfg.security.plugins[0];
	ck_assert_str_eq(p->path, "/a.so");
	ck_assert_uint_eq(p->nopts, 2);
	ck_assert_str_eq(p->opts[0].key, "one");
	ck_assert_str_eq(p->opts[1].value, "two words");
	ck_assert_int_eq(p->deny_special_chars, 0);
	ck_assert_int_eq(ld.cfg.security.plugins[1].deny_special_chars, 1);
	p = &ld.cfg.security.plugins[2];
	ck_assert_str_eq(p->name, "dyn");
	ck_assert_str_eq(p->path, "/usr/lib/dyn sec.so");
	ck_assert_str_eq(p->opts[0].key, "cfg");
	p = &ld.cfg.listeners[0].security.plugins[0];
	ck_assert_str_eq(p->name, "dyn");
	ck_assert_ptr_null(p->path);
	unload(&ld);
	/* YAML: path, options and deny_special_chars; a global default for the others */
	load_text(&ld, ".yaml", "auth_plugin_deny_special_chars: no\nplugins:\n"
		  "  - path: /a.so\n    options: {k: v, n: 3}\n  - /b.so\n"
		  "  - {path: /c.so, deny_special_chars: true}\n");
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.security.nplugins, 3);
	ck_assert_str_eq(ld.cfg.security.plugins[0].opts[1].value, "3");
	ck_assert_int_eq(ld.cfg.security.plugins[0].deny_special_chars, 0);
	ck_assert_str_eq(ld.cfg.security.plugins[1].path, "/b.so");
	ck_assert_int_eq(ld.cfg.security.plugins[2].deny_special_chars, 1);
	unload(&ld);
}
END_TEST

/* ---- include_dir ------------------------------------------------------------ */

START_TEST(test_include_dir_order)
{
	/* ports in the order mosquitto 2.0 reads: 00, 01, A, a, B, b; 0 = not a listener */
	static const struct {
		const char *name;
		int port;
	} files[] = {
		{"b.conf", 2005}, {"A.conf", 2002}, {"01.conf", 2001}, {"a.conf", 2003},
		{"B.conf", 2004}, {"00.conf", 2000}, {"c.yaml", 0}, {"notes.txt", 0},
	};
	char dir[] = "/tmp/midge-incl-XXXXXX";
	char path[256], text[256];
	struct loaded ld;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		if (files[i].port)
			snprintf(text, sizeof(text), "listener %d\n", files[i].port);
		else
			snprintf(text, sizeof(text), "this is: not read\n");
		write_file(path, text);
	}
	snprintf(text, sizeof(text), "include_dir %s\n", dir);
	load_text(&ld, ".conf", text);
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.nlisteners, 6);
	for (size_t i = 0; i < 6; i++)
		ck_assert_int_eq(ld.cfg.listeners[i].port, 2000 + (int)i);
	ck_assert_uint_eq(ld.cfg.files.count, 7);
	unload(&ld);
	/* a YAML main file also reads the .yaml files, each with its own front end */
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	write_file(path, "listeners:\n  - port: 2006\n");
	snprintf(text, sizeof(text), "include_dir: %s\n", dir);
	load_text(&ld, ".yaml", text);
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.cfg.nlisteners, 7);
	ck_assert_int_eq(ld.cfg.listeners[6].port, 2006);
	unload(&ld);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		unlink(path);
	}
	rmdir(dir);
}
END_TEST

START_TEST(test_include_dir_errors)
{
	char dir[] = "/tmp/midge-incl-XXXXXX";
	char path[256], text[256];
	struct loaded ld;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.conf", dir);
	write_file(path, "include_dir /tmp\nmax_qos 5\n");
	snprintf(text, sizeof(text), "include_dir %s\n", dir);
	load_text(&ld, ".conf", text);
	/* errors in an included file name that file; nested include_dir is ignored */
	ck_assert_uint_eq(ld.diag.nerrors, 1);
	ck_assert_str_eq(ld.diag.errors[0].loc.file, path);
	ck_assert_str_eq(where(&ld.diag.errors[0]),
			 "2:9: value 5 for 'max_qos' is out of range (accepted: 0..2)");
	ck_assert_str_eq(ld.diag.warnings[0].loc.file, path);
	ck_assert_str_eq(ld.diag.warnings[0].message,
			 "'include_dir' is only read in the main configuration file; ignored");
	unload(&ld);
	unlink(path);
	rmdir(dir);
	load_text(&ld, ".conf", "include_dir /nonexistent/midge.d\n");
	ck_assert_int_eq(ld.rc, -1);
	ck_assert_str_eq(where(&ld.diag.errors[0]), "1:13: cannot open include_dir "
			 "'/nonexistent/midge.d': No such file or directory");
	unload(&ld);
}
END_TEST

/* ---- ${ENV} ---------------------------------------------------------------------- */

START_TEST(test_env_expansion)
{
	struct loaded ld;

	setenv("MIDGE_TEST_PORT", "1999", 1);
	setenv("MIDGE_TEST_EMPTY", "", 1);
	unsetenv("MIDGE_TEST_UNSET");
	load_text(&ld, ".yaml", "listeners:\n  - port: ${MIDGE_TEST_PORT}\n"
		  "pid_file: /run/${MIDGE_TEST_UNSET:-midge}-${MIDGE_TEST_PORT}.pid\n"
		  "user: ${MIDGE_TEST_EMPTY:-nobody}\nauto_id_prefix: \"$${literal}\"\n"
		  "persistence_location: ${MIDGE_TEST_UNSET:-}/x\n");
	ck_assert_clean(&ld);
	ck_assert_int_eq(ld.cfg.listeners[0].port, 1999);
	ck_assert_str_eq(ld.cfg.pid_file, "/run/midge-1999.pid");
	ck_assert_str_eq(ld.cfg.user, "nobody");
	ck_assert_str_eq(ld.cfg.security.auto_id_prefix, "${literal}");
	ck_assert_str_eq(ld.cfg.persistence_location, "/x");
	unload(&ld);
	unsetenv("MIDGE_TEST_PORT");
	unsetenv("MIDGE_TEST_EMPTY");
}
END_TEST

/* ---- format detection ------------------------------------------------------------ */

START_TEST(test_format_detection)
{
	static const struct {
		const char *text;
		bool yaml;
	} cases[] = {
		{"# comment\n\nmax_connections: 1\n", true},
		{"---\nmax_connections: 1\n", true},
		{"%YAML 1.1\n---\nmax_connections: 1\n", true},
		{"max_connections 1\n", false},
		{"  # indented comment\nmax_connections 1 # trailing comment\n", false},
	};
	struct loaded ld;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_text(&ld, "", cases[i].text);
		ck_assert_clean(&ld);
		if (cases[i].yaml) {
			/* YAML top level: the default of every listener */
			ck_assert_int_eq(ld.cfg.max_connections, 1);
			ck_assert_uint_eq(ld.cfg.nlisteners, 0);
		} else {
			/* mosquitto.conf: configures the default listener */
			ck_assert_uint_eq(ld.cfg.nlisteners, 1);
			ck_assert_int_eq(ld.cfg.listeners[0].max_connections, 1);
		}
		unload(&ld);
	}
	/* a sequence is YAML too: refused for its shape, not read as mosquitto.conf */
	load_text(&ld, "", "# a list\n- 1\n");
	ck_assert_int_eq(ld.rc, -1);
	ck_assert_str_eq(where(&ld.diag.errors[0]),
			 "2:1: the top level must be a mapping of 'option: value'");
	unload(&ld);
}
END_TEST

/* ---- reference files ------------------------------------------------------------- */

START_TEST(test_debian_example)
{
	struct loaded ld;

	if (access(DEBIAN_EXAMPLE, R_OK) != 0) {
		fprintf(stderr, "test_debian_example: skipped, %s is not installed\n",
			DEBIAN_EXAMPLE);
		return;
	}
	load_path(&ld, DEBIAN_EXAMPLE);
	ck_assert_clean(&ld);
	ck_assert_uint_eq(ld.diag.nwarnings, 0);
	unload(&ld);
}
END_TEST

START_TEST(test_legacy_conf)
{
	static const char *const legacy[] = {
		"retry_interval", "store_clean_interval", "allow_duplicate_messages", "trace_level",
		"trace_output", "ffdc_output", "max_log_entries"};
	struct loaded ld;
	char path[256];

	data_path(path, sizeof(path), "legacy.conf");
	load_path(&ld, path);
	ck_assert_clean(&ld);
	ck_assert_msg(ld.diag.nwarnings == 7, "%s", all_diag(&ld.diag));
	for (size_t i = 0; i < 7; i++) {
		ck_assert_str_eq(ld.diag.warnings[i].key, legacy[i]);
		ck_assert_str_eq(ld.diag.warnings[i].loc.file, path);
		ck_assert_int_eq(ld.diag.warnings[i].loc.line, 84 + (int)i);
	}
	ck_assert_uint_eq(ld.cfg.nlisteners, 2);
	ck_assert_str_eq(ld.cfg.listeners[1].psk_hint, "legacy-hint");
	ck_assert_int_eq(ld.cfg.persistent_client_expiration, 365 * 86400);
	ck_assert_str_eq(ld.cfg.user, "mosquitto");
	ck_assert_str_eq(ld.cfg.bridges[0].remote_clientid, "legacy-remote");
	ck_assert_uint_eq(ld.cfg.log_type, LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO);
	unload(&ld);
}
END_TEST

static void midge_yaml_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/../../../etc/midge.yaml", test_data_dir());
}

START_TEST(test_midge_yaml)
{
	struct loaded ld;
	char path[256];

	midge_yaml_path(path, sizeof(path));
	load_path(&ld, path);
	ck_assert_clean(&ld);
	ck_assert_msg(ld.diag.nwarnings == 0, "%s", all_diag(&ld.diag));
	ck_assert_uint_eq(ld.cfg.nlisteners, 1);
	ck_assert_int_eq(ld.cfg.listeners[0].port, 1883);
	ck_assert_str_eq(ld.cfg.listeners[0].bind_address, "127.0.0.1");
	ck_assert_int_eq(ld.cfg.listeners[0].security.allow_anonymous, 1);
	ck_assert_uint_eq(ld.cfg.log_dest, LOG_DEST_STDERR);
	ck_assert_uint_eq(ld.cfg.nbridges, 0);
	/* crash-safe persistence is on by default */
	ck_assert(ld.cfg.persistence);
	ck_assert_int_eq(ld.cfg.sync, STORE_SYNC_BATCH);
	ck_assert_str_eq(ld.cfg.persistence_file, "midge.db");
	unload(&ld);
}
END_TEST

START_TEST(test_midge_yaml_lists_every_option)
{
	char path[256], key[80];
	struct stat st;
	char *text;
	FILE *f;

	midge_yaml_path(path, sizeof(path));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	text = calloc(1, (size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	for (size_t i = 0; i < conf_schema_count(); i++) {
		const struct conf_option *o = conf_schema_at(i);
		bool found = false;

		if ((o->flags & (CONF_F_ALIAS | CONF_F_MOSQ_ONLY)) || o->type == CONF_T_LEGACY)
			continue;
		snprintf(key, sizeof(key), (o->flags & CONF_F_PREFIX) ? "%s" : "%s:", o->name);
		for (const char *p = strstr(text, key); p && !found; p = strstr(p + 1, key))
			found = p == text || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '{';
		ck_assert_msg(found, "etc/midge.yaml does not list '%s'", o->name);
	}
	free(text);
}
END_TEST

/* ---- the table itself ------------------------------------------------------------- */

START_TEST(test_schema_table)
{
	size_t n = conf_schema_count();

	for (size_t i = 0; i < n; i++) {
		const struct conf_option *o = conf_schema_at(i);

		if (o->flags & CONF_F_PREFIX) {
			char name[64];
			snprintf(name, sizeof(name), "%skey", o->name);
			ck_assert_ptr_eq(conf_schema_find(name), o);
		} else {
			ck_assert_ptr_eq(conf_schema_find(o->name), o);
		}
		if (o->flags & CONF_F_ALIAS) {
			ck_assert_msg(conf_schema_canonical(o) != o, "alias %s has no target",
				      o->name);
			continue;
		}
		ck_assert_msg(o->help && o->group, "%s lacks help or group", o->name);
		for (size_t j = 0; j < i; j++) {
			const struct conf_option *p = conf_schema_at(j);
			ck_assert_msg(strcmp(o->name, p->name) != 0, "%s twice", o->name);
			/* two owned fields at one place would be freed twice */
			if (!(p->flags & CONF_F_ALIAS) && p->scope == o->scope &&
			    p->off == o->off &&
			    (o->type == CONF_T_STRING || o->type == CONF_T_STRLIST))
				ck_abort_msg("%s and %s share a field", o->name, p->name);
		}
	}
	ck_assert(config_option_reloadable("password_file"));
	ck_assert(config_option_reloadable("acl_file"));
	ck_assert(config_option_reloadable("plugin_opt_anything"));
	ck_assert(config_option_reloadable("auth_opt_anything"));
	ck_assert(config_option_reloadable("retained_persistence"));
	ck_assert(!config_option_reloadable("listener"));
	ck_assert(!config_option_reloadable("user"));
	ck_assert(!config_option_reloadable("no_such_option"));
}
END_TEST

Suite *suite_config(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("defaults");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_section_defaults);
	tcase_add_test(tc, test_default_listener);
	tcase_add_test(tc, test_port_listener);
	tcase_add_test(tc, test_schema_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_error_table, 0, sizeof(err_cases) / sizeof(err_cases[0]));
	tcase_add_test(tc, test_yaml_syntax_error);
	tcase_add_test(tc, test_unknown_option);
	tcase_add_test(tc, test_typo_yaml_file);
	tcase_add_test(tc, test_all_errors_collected);
	tcase_add_test(tc, test_diag_print);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_legacy_and_clamp_warnings);
	suite_add_tcase(s, tc);

	tc = tcase_create("semantics");
	tcase_add_test(tc, test_front_ends_equivalent);
	tcase_add_test(tc, test_sync_defaults);
	tcase_add_test(tc, test_convert_roundtrip);
	tcase_add_test(tc, test_security_global);
	tcase_add_test(tc, test_security_per_listener);
	tcase_add_test(tc, test_per_listener_default_listener);
	tcase_add_test(tc, test_yaml_security_per_listener);
	tcase_add_test(tc, test_listener_sections);
	tcase_add_test(tc, test_yaml_listener_defaults_merge);
	tcase_add_test(tc, test_bridge_sections);
	tcase_add_test(tc, test_logging_options);
	tcase_add_test(tc, test_plugins);
	tcase_add_test(tc, test_include_dir_order);
	tcase_add_test(tc, test_include_dir_errors);
	tcase_add_test(tc, test_env_expansion);
	tcase_add_test(tc, test_format_detection);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_test(tc, test_debian_example);
	tcase_add_test(tc, test_legacy_conf);
	tcase_add_test(tc, test_midge_yaml);
	tcase_add_test(tc, test_midge_yaml_lists_every_option);
	suite_add_tcase(s, tc);
	return s;
}
