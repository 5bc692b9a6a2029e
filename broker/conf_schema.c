/*
 * conf_schema.c: the one table of configuration options, and the table-
 * driven operations on it: lookup and suggestions, defaults, the generic
 * setters (text to field), freeing and the listener merge.
 *
 * It knows every option's type, place, default and range; it does not know
 * files or sections: conf.c decides which struct a value goes to, and the
 * special setters live in conf.c (plugins, include_dir: state across lines)
 * and conf_mosq.c (mosquitto's multi-word values: listener, topic, ...).
 */
#include "config.h"

#include "conf_schema.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "packet.h"
#include "topic.h"

/* Enum fields are written through int pointers. */
_Static_assert(sizeof(enum listener_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(enum socket_domain) == sizeof(int), "enum size");
_Static_assert(sizeof(enum bridge_start_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum bridge_reload_type) == sizeof(int), "enum size");

/*
 * OPT(name, TYPE, place, field, ...): place is GL (struct config), LI (struct
 * config_listener), SE (struct config_security) or BR (struct config_bridge).
 * The offset macros check with _Generic that the field has the C type the
 * option type writes, so a table/struct mismatch does not compile.
 */
#define ST_GL struct config
#define ST_LI struct config_listener
#define ST_SE struct config_security
#define ST_BR struct config_bridge
#define SC_GL CONF_SC_GLOBAL
#define SC_LI CONF_SC_LISTENER
#define SC_SE CONF_SC_SECURITY
#define SC_BR CONF_SC_BRIDGE
#define TYPED(S, f, T) _Generic(((S *)0)->f, T: offsetof(S, f))
#define OFF_BOOL(S, f) TYPED(S, f, bool)
#define OFF_TRIBOOL(S, f) TYPED(S, f, int)
#define OFF_INT(S, f) TYPED(S, f, int)
#define OFF_UINT32(S, f) TYPED(S, f, uint32_t)
#define OFF_SIZE(S, f) TYPED(S, f, uint64_t)
#define OFF_DURATION(S, f) TYPED(S, f, int64_t)
#define OFF_STRING(S, f) TYPED(S, f, char *)
#define OFF_STRLIST(S, f) TYPED(S, f, struct config_strlist)
#define OFF_ENUM(S, f) _Generic(+((S *)0)->f, int: offsetof(S, f), unsigned int: offsetof(S, f))
#define OFF_SPECIAL(S, f) offsetof(S, f) /* the setter knows the field */
#define OPT(n, ty, pl, f, ...)                                                           \
	{ .name = (n), .type = CONF_T_##ty, .scope = SC_##pl, .off = OFF_##ty(ST_##pl, f),  \
	  __VA_ARGS__ }
/* Options without a field of their own (sections, specials that find their target). */
#define OPTX(n, ty, ...) { .name = (n), .type = CONF_T_##ty, .scope = CONF_SC_NONE, __VA_ARGS__ }
#define GDEF(f) .off2 = TYPED(struct config, f, int)
#define LCOPY(f) .off2 = TYPED(struct config_listener, f, int)
#define RANGE(a, b) .min = (a), .max = (b)
#define ALIAS(n, target) \
	{ .name = (n), .type = CONF_T_SPECIAL, .flags = CONF_F_ALIAS, .alias_of = (target) }
#define LEGACY(n, h) OPTX(n, LEGACY, .group = "legacy", .help = (h))

#define RL CONF_F_RELOADABLE
#define REP CONF_F_REPEATABLE
#define DEPR CONF_F_DEPRECATED
#define MERGED CONF_F_MERGED
#define CLAMP CONF_F_CLAMP
#define NEEDL CONF_F_NEED_LISTENER

#define MQTT_MAX_PACKET 268435460 /* 268435455 remaining length + 5 header bytes */

static const struct conf_name n_workers[] = {{"auto", 0}, {NULL, 0}};
static const struct conf_name n_protocol[] = {
	{"mqtt", LISTENER_MQTT}, {"websockets", LISTENER_WEBSOCKETS}, {"http", LISTENER_HTTP},
	{NULL, 0}};
static const struct conf_name n_domain[] = {
	{"ipv4", SOCKET_DOMAIN_IPV4}, {"ipv6", SOCKET_DOMAIN_IPV6}, {NULL, 0}};
static const struct conf_name n_tls_version[] = {
	{"tlsv1.3", 0}, {"tlsv1.2", 0}, {"tlsv1.1", 0}, {NULL, 0}};
static const struct conf_name n_keyform[] = {{"pem", 0}, {"engine", 0}, {NULL, 0}};
static const struct conf_name n_versions[] = {{"3", 3}, {"4", 4}, {"5", 5}, {NULL, 0}};
static const struct conf_name n_bridge_proto[] = {
	{"mqttv31", 3}, {"mqttv311", 4}, {"mqttv50", 5}, {NULL, 0}};
static const struct conf_name n_log_format[] = {
	{"text", LOG_FORMAT_TEXT}, {"json", LOG_FORMAT_JSON}, {NULL, 0}};
static const struct conf_name n_sync[] = {
	{"always", STORE_SYNC_ALWAYS}, {"batch", STORE_SYNC_BATCH}, {"periodic", STORE_SYNC_PERIODIC},
	{NULL, 0}};
static const struct conf_name n_start_type[] = {
	{"automatic", BRIDGE_START_AUTOMATIC}, {"lazy", BRIDGE_START_LAZY},
	{"once", BRIDGE_START_ONCE}, {NULL, 0}};
static const struct conf_name n_reload_type[] = {
	{"lazy", BRIDGE_RELOAD_LAZY}, {"immediate", BRIDGE_RELOAD_IMMEDIATE}, {NULL, 0}};
static const struct conf_name n_facility[] = {
	{"0", 0}, {"1", 0}, {"2", 0}, {"3", 0}, {"4", 0}, {"5", 0}, {"6", 0}, {"7", 0},
	{"local0", 0}, {"local1", 0}, {"local2", 0}, {"local3", 0}, {"local4", 0},
	{"local5", 0}, {"local6", 0}, {"local7", 0}, {"daemon", 0}, {"user", 0}, {NULL, 0}};

static const char *check_topic_prefix(const char *s)
{
	if (!topic_name_valid(s, strlen(s)))
		return "a topic must not contain '+' or '#'";
	return NULL;
}

static const char *check_hex(const char *s)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return "give the key in hexadecimal without '0x'";
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return "expected hexadecimal digits";
	return NULL;
}

static const char *check_sha1(const char *s)
{
	if (strlen(s) != 40 || check_hex(s))
		return "expected a SHA1 hash as 40 hexadecimal digits";
	return NULL;
}

static const struct conf_option options[] = {
	/* Process */
	OPTX("include_dir", SPECIAL, .flags = REP, .set = conf_set_include_dir, .group = "process",
	     .help = "also read every configuration file of this directory, in order"),
	OPT("user", STRING, GL, user, .def = "midge", .group = "process",
	    .help = "user to switch to when started as root"),
	OPT("pid_file", STRING, GL, pid_file, .group = "process",
	    .help = "write the process id to this file"),
	OPT("workers", INT, GL, workers, .def = "0", RANGE(0, 1024), .names = n_workers,
	    .group = "process", .help = "event loop threads (0 or auto = one per core)"),
	OPT("plugin_timeout", INT, GL, plugin_timeout, .def = "10", RANGE(1, 3600), .flags = RL,
	    .group = "plugins", .help = "seconds a plugin may take to answer a delayed decision"),
	OPT("connect_timeout", INT, GL, connect_timeout, .def = "10", RANGE(1, 3600), .flags = RL,
	    .group = "process", .help = "seconds a new connection may take to send CONNECT"),
	OPT("sys_interval", INT, GL, sys_interval, .def = "10", RANGE(0, 65535), .flags = RL,
	    .group = "process", .help = "seconds between $SYS updates (0 = no $SYS topics)"),
	OPT("set_tcp_nodelay", BOOL, GL, set_tcp_nodelay, .def = "false", .flags = RL,
	    .group = "process", .help = "disable Nagle's algorithm on client sockets"),
	OPT("enable_control_api", BOOL, GL, enable_control_api, .def = "false", .group = "process",
	    .help = "answer requests on the $CONTROL topics"),
	OPT("memory_limit", SIZE, GL, memory_limit, .def = "0", RANGE(0, INT64_MAX), .flags = RL,
	    .group = "process", .help = "heap bytes the broker may allocate (0 = no limit)"),

	/* Listeners */
	OPTX("listener", SPECIAL, .flags = REP | CONF_F_MOSQ_ONLY, .set = conf_set_listener,
	     .group = "listeners",
	     .help = "start a listener: listener <port> [<address> | <unix socket path>]"),
	OPTX("listeners", SECTION, .flags = CONF_F_YAML_ONLY, .group = "listeners",
	     .help = "the listeners, each a mapping of listener options"),
	OPT("port", INT, LI, port, RANGE(0, 65535), .flags = CONF_F_DEFLT,
	    .set = conf_set_default_listener, .group = "listeners",
	    .help = "TCP port (0 = any free port)"),
	OPT("bind_address", STRING, LI, bind_address, .flags = CONF_F_DEFLT,
	    .set = conf_set_default_listener, .group = "listeners",
	    .help = "address or host name to listen on (default: all)"),
	OPT("unix_socket_path", STRING, LI, unix_path, .flags = CONF_F_YAML_ONLY,
	    .group = "listeners", .help = "listen on this unix socket instead of TCP"),
	OPT("bind_interface", STRING, LI, bind_interface, .group = "listeners",
	    .help = "listen only on this network interface"),
	OPT("socket_domain", ENUM, LI, socket_domain, .names = n_domain, .group = "listeners",
	    .help = "restrict to ipv4 or ipv6 (default: both)"),
	OPT("protocol", ENUM, LI, protocol, .def = "mqtt", .names = n_protocol,
	    .group = "listeners", .help = "mqtt, websockets, or http (/metrics, /health, /ready)"),
	OPT("max_connections", INT, LI, max_connections, GDEF(max_connections), .def = "-1",
	    RANGE(-1, INT_MAX), .flags = MERGED | CLAMP, .group = "listeners",
	    .help = "clients connected at once on a listener (-1 = no limit)"),
	OPT("max_qos", INT, LI, max_qos, GDEF(max_qos), .def = "2", RANGE(0, 2), .flags = MERGED,
	    .group = "listeners", .help = "highest QoS clients of a listener may use"),
	OPT("max_topic_alias", INT, LI, max_topic_alias, GDEF(max_topic_alias), .def = "10",
	    RANGE(0, 65535), .flags = MERGED, .group = "listeners",
	    .help = "topic aliases an MQTT 5 client may create (0 = none)"),
	OPT("max_topic_alias_broker", INT, LI, max_topic_alias_broker, .def = "10", RANGE(0, 65535),
	    .group = "listeners", .help = "topic aliases the broker may use towards a client"),
	OPT("mount_point", STRING, LI, mount_point, .flags = NEEDL, .check = check_topic_prefix,
	    .group = "listeners", .help = "prefix added to the topics of this listener's clients"),
	OPT("use_username_as_clientid", BOOL, LI, use_username_as_clientid, .def = "false",
	    .group = "listeners", .help = "replace the client id with the username"),
	OPT("http_dir", STRING, LI, http_dir, .group = "listeners",
	    .help = "directory served over HTTP by a websockets listener"),
	OPT("websockets_headers_size", INT, GL, websockets_headers_size,
	    LCOPY(websockets_headers_size),
	    .def = "0", RANGE(0, 65535), .flags = MERGED, .group = "listeners",
	    .help = "websockets HTTP header buffer (0 = 1024 bytes)"),
	OPT("websockets_origin", STRING, LI, websockets_origin, .group = "listeners",
	    .help = "the websockets Origin header accepted (default: any)"),
	OPT("accept_protocol_versions", STRLIST, LI, accept_protocol_versions,
	    .flags = NEEDL | CONF_F_SPLIT, .names = n_versions, .group = "listeners",
	    .help = "MQTT protocol levels accepted, e.g. 4,5 (default: 3,4,5)"),
	OPT("enable_proxy_protocol", SPECIAL, LI, proxy_protocol_version,
	    .set = conf_set_proxy_protocol, .group = "listeners",
	    .help = "expect a PROXY protocol header, version 1 or 2"),
	OPT("proxy_protocol_v2_require_tls", BOOL, LI, proxy_protocol_v2_require_tls,
	    .def = "false", .group = "listeners",
	    .help = "refuse PROXY v2 connections that did not use TLS"),
	OPT("listener_allow_anonymous", TRIBOOL, LI, security.allow_anonymous, .flags = NEEDL,
	    .group = "listeners", .help = "allow_anonymous for this listener only"),
	OPT("listener_auto_id_prefix", STRING, LI, security.auto_id_prefix, .flags = NEEDL,
	    .group = "listeners", .help = "auto_id_prefix for this listener only"),
	/* Listener TLS and PSK */
	OPT("cafile", STRING, LI, cafile, .group = "listeners",
	    .help = "PEM CA certificates trusted for client certificates"),
	OPT("capath", STRING, LI, capath, .group = "listeners",
	    .help = "directory of PEM CA certificates (openssl rehash)"),
	OPT("certfile", STRING, LI, certfile, .flags = RL, .group = "listeners",
	    .help = "PEM server certificate; with keyfile, enables TLS"),
	OPT("keyfile", STRING, LI, keyfile, .flags = RL, .group = "listeners",
	    .help = "PEM server private key"),
	OPT("ciphers", STRING, LI, ciphers, .group = "listeners",
	    .help = "TLS 1.2 cipher list, colon separated"),
	OPT("ciphers_tls1.3", STRING, LI, ciphers_tls13, .group = "listeners",
	    .help = "TLS 1.3 cipher suites, colon separated"),
	OPT("crlfile", STRING, LI, crlfile, .group = "listeners",
	    .help = "PEM certificate revocation list"),
	OPT("dhparamfile", STRING, LI, dhparamfile, .group = "listeners",
	    .help = "DH parameters for ephemeral DH key exchange"),
	OPT("require_certificate", BOOL, LI, require_certificate, .def = "false",
	    .group = "listeners", .help = "clients must present a valid certificate"),
	OPT("tls_engine", STRING, LI, tls_engine, .group = "listeners",
	    .help = "OpenSSL engine id"),
	OPT("tls_engine_kpass_sha1", STRING, LI, tls_engine_kpass_sha1, .check = check_sha1,
	    .group = "listeners", .help = "hex SHA1 of the private key password for the engine"),
	OPT("tls_keyform", STRING, LI, tls_keyform, .names = n_keyform, .group = "listeners",
	    .help = "pem or engine (default pem)"),
	OPT("tls_version", STRING, LI, tls_version, .names = n_tls_version, .group = "listeners",
	    .help = "minimum TLS version: tlsv1.3, tlsv1.2 or tlsv1.1"),
	OPT("use_identity_as_username", BOOL, LI, use_identity_as_username, .def = "false",
	    .group = "listeners", .help = "username from the certificate CN (or the PSK identity)"),
	OPT("use_subject_as_username", BOOL, LI, use_subject_as_username, .def = "false",
	    .group = "listeners", .help = "username from the whole certificate subject"),
	OPT("disable_client_cert_date_checks", BOOL, LI, disable_client_cert_date_checks,
	    .def = "false", .flags = NEEDL, .group = "listeners",
	    .help = "accept expired or not yet valid client certificates"),
	OPT("psk_hint", STRING, LI, psk_hint, .group = "listeners",
	    .help = "enables TLS-PSK on the listener; sent to clients"),

	/* Limits */
	OPT("max_inflight_messages", INT, GL, max_inflight_messages, .def = "20", RANGE(0, 65535),
	    .flags = RL | CLAMP, .group = "limits",
	    .help = "outgoing QoS 1 and 2 messages in flight per client (0 = no limit)"),
	OPT("max_inflight_bytes", SIZE, GL, max_inflight_bytes, .def = "0", RANGE(0, INT64_MAX),
	    .flags = RL | CLAMP, .group = "limits",
	    .help = "bytes of outgoing QoS 1 and 2 messages in flight per client (0 = no limit)"),
	OPT("max_queued_messages", INT, GL, max_queued_messages, .def = "1000", RANGE(0, INT_MAX),
	    .flags = RL | CLAMP, .group = "limits",
	    .help = "QoS 1 and 2 messages queued per client beyond those in flight (0 = no limit)"),
	OPT("max_queued_bytes", SIZE, GL, max_queued_bytes, .def = "0", RANGE(0, INT64_MAX),
	    .flags = RL | CLAMP, .group = "limits",
	    .help = "bytes queued per client beyond those in flight (0 = no limit)"),
	OPT("backpressure", BOOL, GL, backpressure, .def = "true", .flags = RL, .group = "limits",
	    .help = "a QoS 1/2 message for an online client whose queue is full is kept and its "
		    "publisher is read no more until the queue drains (false: it is dropped)"),
	OPT("backpressure_timeout", INT, GL, backpressure_timeout, .def = "2", RANGE(1, 3600),
	    .flags = RL, .group = "limits",
	    .help = "seconds a publisher waits for a client that takes nothing; then that "
		    "client's queue limits drop messages again until it drains"),
	OPT("queue_qos0_messages", BOOL, GL, queue_qos0_messages, .def = "false", .flags = RL,
	    .group = "limits", .help = "queue QoS 0 messages for disconnected persistent clients"),
	OPT("message_size_limit", UINT32, GL, message_size_limit, .def = "0", RANGE(0, 268435455),
	    .flags = RL, .group = "limits", .help = "largest payload accepted (0 = no limit)"),
	OPT("max_packet_size", UINT32, GL, max_packet_size, .def = "0", RANGE(20, MQTT_MAX_PACKET),
	    .flags = RL | CONF_F_ZERO_OK, .group = "limits",
	    .help = "largest packet accepted, at least 20 (0 = no limit)"),
	OPT("max_keepalive", INT, GL, max_keepalive, .def = "65535", RANGE(10, 65535), .flags = RL,
	    .group = "limits", .help = "longest keepalive granted to MQTT 5 clients, in seconds"),
	OPT("persistent_client_expiration", DURATION, GL, persistent_client_expiration,
	    RANGE(1, INT64_MAX), .flags = RL, .group = "limits",
	    .help = "drop persistent sessions unused for this long, e.g. 14d (default: never)"),
	OPT("upgrade_outgoing_qos", BOOL, GL, upgrade_outgoing_qos, .def = "false", .flags = RL,
	    .group = "limits", .help = "deliver at the subscription's QoS (non-standard)"),
	OPT("server_moved", STRING, GL, server_moved, .flags = RL, .group = "limits",
	    .help = "refuse new clients: this broker moved to HOST[:PORT] (MQTT 5: 0x9D)"),
	OPT("use_another_server", STRING, GL, use_another_server, .flags = RL, .group = "limits",
	    .help = "refuse new clients for now: use HOST[:PORT] (MQTT 5: 0x9C)"),
	OPT("response_information", STRING, GL, response_information, .flags = RL,
	    .group = "limits", .help = "Response Information for MQTT 5 clients that ask for it"),
	OPT("retain_available", BOOL, GL, retain_available, .def = "true", .flags = RL,
	    .group = "limits", .help = "support retained messages"),
	OPT("retain_expiry_interval", INT, GL, retain_expiry_interval, .def = "0",
	    RANGE(0, INT_MAX),
	    .flags = RL, .group = "limits", .help = "retained message lifetime in s (0 = forever)"),
	OPT("check_retain_source", BOOL, GL, check_retain_source, .def = "true", .group = "limits",
	    .help = "re-check the publisher's access before sending a retained message"),
	OPT("global_max_clients", INT, GL, global_max_clients, .def = "-1", RANGE(-1, INT_MAX),
	    .flags = CLAMP, .group = "limits", .help = "sessions at once (-1 = no limit)"),
	OPT("global_max_connections", INT, GL, global_max_connections, .def = "-1",
	    RANGE(-1, INT_MAX), .flags = CLAMP, .group = "limits",
	    .help = "network connections at once, all listeners (-1 = no limit)"),
	OPT("packet_buffer_size", UINT32, GL, packet_buffer_size, .def = "4096",
	    RANGE(1, MQTT_MAX_PACKET), .group = "limits",
	    .help = "initial packet buffer per client, in bytes"),

	/* Security: global, or per listener */
	OPT("per_listener_settings", BOOL, GL, per_listener_settings, .def = "false", .flags = RL,
	    .set = conf_set_per_listener, .group = "security",
	    .help = "mosquitto.conf: security options apply to the listener they follow"),
	OPT("allow_anonymous", TRIBOOL, SE, allow_anonymous, .flags = RL, .group = "security",
	    .help = "accept clients without a username (default false; true with no listener)"),
	OPT("allow_zero_length_clientid", TRIBOOL, SE, allow_zero_length_clientid, .def = "true",
	    .flags = RL, .group = "security",
	    .help = "give clients with an empty client id a generated one"),
	OPT("auto_id_prefix", STRING, SE, auto_id_prefix, .def = "auto-", .flags = RL,
	    .group = "security", .help = "prefix of generated client ids"),
	OPT("password_file", STRING, SE, password_file, .flags = RL, .group = "security",
	    .help = "username:password file (midge_passwd / mosquitto_passwd format)"),
	OPT("acl_file", STRING, SE, acl_file, .flags = RL, .group = "security",
	    .help = "access control list file (mosquitto syntax)"),
	OPT("psk_file", STRING, SE, psk_file, .flags = RL, .group = "security",
	    .help = "identity:key file for TLS-PSK listeners"),
	OPT("clientid_prefixes", STRLIST, SE, clientid_prefixes,
	    .flags = RL | DEPR | CONF_F_MOSQ_GLOBAL, .group = "security",
	    .help = "only client ids starting with this prefix may connect"),
	/* Scope none: it follows the current plugin wherever that is; the field is global. */
	OPTX("auth_plugin_deny_special_chars", BOOL,
	     .off = OFF_BOOL(struct config, auth_plugin_deny_special_chars), .def = "true",
	     .set = conf_set_deny_special, .group = "plugins",
	     .help = "refuse ACL checks for usernames or client ids with + or #"),

	OPT("plugin_dir", STRING, GL, plugin_dir, .group = "plugins",
	    .help = "where a plugin given by name (path: lua) is found (default: the install's)"),
	OPTX("plugin_name", SPECIAL, .set = conf_set_plugin_name, .group = "plugins",
	     .help = "name of the plugin above in logs and $SYS (default: its file name)"),

	/* Plugins */
	OPTX("plugins", SECTION, .flags = CONF_F_YAML_ONLY, .group = "plugins",
	     .help = "plugins, each {path: ..., options: {key: value}}"),
	OPT("plugin", SPECIAL, SE, plugins, .flags = REP, .set = conf_set_plugin,
	    .group = "plugins",
	    .help = "load a plugin (a security option: per listener with per_listener_settings)"),
	OPT("global_plugin", SPECIAL, GL, security, .flags = REP, .set = conf_set_plugin,
	    .group = "plugins", .help = "load a plugin for every listener"),
	OPT("plugin_load", SPECIAL, GL, security, .flags = REP, .set = conf_set_plugin_load,
	    .group = "plugins", .help = "load a named plugin: plugin_load <name> <path>"),
	OPT("plugin_use", SPECIAL, LI, security, .flags = REP | NEEDL, .set = conf_set_plugin_use,
	    .group = "plugins",
	    .help = "use a plugin_load plugin on this listener: plugin_use <name>"),
	OPTX("plugin_opt_", SPECIAL, .flags = REP | RL | CONF_F_PREFIX, .set = conf_set_plugin_opt,
	     .group = "plugins", .help = "plugin_opt_<key> <value>: option for the plugin above"),

	/* Logging */
	OPTX("log_dest", SPECIAL, .def = "stderr", .flags = REP | RL, .set = conf_set_log_dest,
	     .group = "logging",
	     .help = "stdout, stderr, syslog, topic, dlt, none or file <path> (repeatable)"),
	OPTX("log_type", SPECIAL, .def = "error warning notice information", .flags = REP | RL,
	     .set = conf_set_log_type, .group = "logging",
	     .help = "error warning notice information debug subscribe unsubscribe all none"),
	OPT("log_facility", STRING, GL, log_facility, .names = n_facility, .group = "logging",
	    .help = "syslog facility: 0..7 for local0..local7 (default daemon)"),
	OPT("client_events", BOOL, GL, client_events, .def = "false", .flags = RL,
	    .group = "logging",
	    .help = "publish $SYS/broker/clients/connected/<id> and .../disconnected/<id> events"),
	OPT("log_format", ENUM, GL, log_format, .def = "text", .names = n_log_format, .flags = RL,
	    .group = "logging", .help = "text, or json: one object per line with stable keys"),
	OPT("log_timestamp", BOOL, GL, log_timestamp, .def = "true", .flags = RL,
	    .group = "logging", .help = "prefix log lines with a timestamp"),
	OPT("log_timestamp_format", STRING, GL, log_timestamp_format, .flags = RL,
	    .group = "logging",
	    .help = "strftime format of the timestamp (default: seconds since the epoch)"),
	OPT("connection_messages", BOOL, GL, connection_messages, .def = "true", .flags = RL,
	    .group = "logging", .help = "log client connections and disconnections"),
	OPT("websockets_log_level", INT, GL, websockets_log_level, .def = "0", RANGE(0, INT_MAX),
	    .group = "logging", .help = "websockets library log level bit mask"),

	/* Persistence */
	OPT("persistence", BOOL, GL, persistence, .def = "false", .flags = RL,
	    .group = "persistence",
	    .help = "keep sessions, subscriptions and messages across restarts"),
	OPT("persistence_file", STRING, GL, persistence_file, .def = "mosquitto.db", .flags = RL,
	    .group = "persistence", .help = "name of the persistence file"),
	OPT("persistence_location", STRING, GL, persistence_location, .flags = RL,
	    .group = "persistence", .help = "directory of the persistence file (default: current)"),
	OPT("autosave_interval", INT, GL, autosave_interval, .def = "1800", RANGE(0, INT_MAX),
	    .flags = RL | CLAMP, .group = "persistence",
	    .help = "seconds (or changes) between saves; 0 = on exit only"),
	OPT("autosave_on_changes", BOOL, GL, autosave_on_changes, .def = "false", .flags = RL,
	    .group = "persistence", .help = "count autosave_interval in changes, not seconds"),
	OPT("sync", ENUM, GL, sync, .names = n_sync, .group = "persistence",
	    .help = "always, batch or periodic (default: batch; periodic for a mosquitto.conf)"),
	OPT("persistence_recover", BOOL, GL, persistence_recover, .def = "false",
	    .group = "persistence", .help = "start on a damaged store after dropping what is damaged"),
	OPT("persistence_max_size", SIZE, GL, persistence_max_size, .def = "1073741824",
	    RANGE(1048576, INT64_MAX), .group = "persistence",
	    .help = "the most the store may grow to"),

	/* Bridges */
	OPTX("connection", SPECIAL, .flags = REP | CONF_F_MOSQ_ONLY, .set = conf_set_connection,
	     .group = "bridges", .help = "start a bridge: connection <name>"),
	OPTX("bridges", SECTION, .flags = CONF_F_YAML_ONLY, .group = "bridges",
	     .help = "the bridges, each a mapping with name and bridge options"),
	OPT("name", STRING, BR, name, .flags = CONF_F_YAML_ONLY, .group = "bridges",
	    .help = "bridge name (used in the default client ids)"),
	OPTX("topics", SECTION, .flags = CONF_F_YAML_ONLY, .group = "bridges",
	     .help = "bridge topics: strings in topic syntax or {pattern, direction, qos, ...}"),
	OPT("address", SPECIAL, BR, addresses, .flags = CONF_F_ONCE | CONF_F_LIST,
	    .set = conf_set_address, .group = "bridges",
	    .help = "remote broker(s): host[:port] ... (port 1883 by default)"),
	OPT("topic", SPECIAL, BR, topics, .flags = REP, .set = conf_set_topic, .group = "bridges",
	    .help = "topic <pattern> [[[out|in|both] qos] local-prefix remote-prefix]"),
	OPT("bridge_attempt_unsubscribe", BOOL, BR, attempt_unsubscribe, .def = "true",
	    .group = "bridges", .help = "unsubscribe on the remote for out-only topics"),
	OPT("bridge_bind_address", STRING, BR, bind_address, .group = "bridges",
	    .help = "local address of the bridge's connection"),
	OPT("bridge_max_packet_size", UINT32, BR, max_packet_size, .def = "0",
	    RANGE(0, MQTT_MAX_PACKET), .flags = CLAMP, .group = "bridges",
	    .help = "largest packet sent to the remote broker (0 = no limit)"),
	OPT("bridge_outgoing_retain", BOOL, BR, outgoing_retain, .def = "true", .group = "bridges",
	    .help = "keep the retain flag on messages sent to the remote"),
	OPT("bridge_protocol_version", ENUM, BR, protocol_version, .def = "mqttv311",
	    .names = n_bridge_proto, .group = "bridges", .help = "mqttv31, mqttv311 or mqttv50"),
	OPT("cleansession", BOOL, BR, cleansession, .def = "false", .group = "bridges",
	    .help = "clean session on the remote broker"),
	OPT("local_cleansession", TRIBOOL, BR, local_cleansession, .group = "bridges",
	    .help = "clean session on the local side (default: same as cleansession)"),
	OPT("keepalive_interval", INT, BR, keepalive_interval, .def = "60", RANGE(5, 65535),
	    .flags = CLAMP, .group = "bridges", .help = "keepalive towards the remote, in seconds"),
	OPT("idle_timeout", INT, BR, idle_timeout, .def = "60", RANGE(1, INT_MAX), .flags = CLAMP,
	    .group = "bridges", .help = "seconds a lazy bridge stays connected while idle"),
	OPT("local_clientid", STRING, BR, local_clientid, .group = "bridges",
	    .help = "client id on the local broker (default local.<remote_clientid>)"),
	OPT("local_username", STRING, BR, local_username, .group = "bridges",
	    .help = "username on the local broker"),
	OPT("local_password", STRING, BR, local_password, .group = "bridges",
	    .help = "password on the local broker"),
	OPT("notifications", BOOL, BR, notifications, .def = "true", .group = "bridges",
	    .help = "publish the bridge state (1/0) as a retained message"),
	OPT("notifications_local_only", BOOL, BR, notifications_local_only, .def = "false",
	    .group = "bridges", .help = "publish the state on the local broker only"),
	OPT("notification_topic", STRING, BR, notification_topic, .check = check_topic_prefix,
	    .group = "bridges", .help = "state topic (default $SYS/broker/connection/<id>/state)"),
	OPT("remote_clientid", STRING, BR, remote_clientid, .group = "bridges",
	    .help = "client id on the remote broker (default <hostname>.<name>)"),
	OPT("remote_username", STRING, BR, remote_username, .group = "bridges",
	    .help = "username on the remote broker"),
	OPT("remote_password", STRING, BR, remote_password, .group = "bridges",
	    .help = "password on the remote broker"),
	OPT("restart_timeout", SPECIAL, BR, restart_timeout_base, .def = "5 30",
	    .set = conf_set_restart_timeout, .group = "bridges",
	    .help = "reconnect delay: <seconds>, or <base> <cap> for jittered back-off"),
	OPT("round_robin", BOOL, BR, round_robin, .def = "false", .group = "bridges",
	    .help = "treat all addresses as equals instead of first = main"),
	OPT("start_type", ENUM, BR, start_type, .def = "automatic", .names = n_start_type,
	    .group = "bridges", .help = "automatic, lazy or once"),
	OPT("threshold", INT, BR, threshold, .def = "10", RANGE(1, INT_MAX), .flags = CLAMP,
	    .group = "bridges", .help = "queued messages that start a lazy bridge"),
	OPT("try_private", BOOL, BR, try_private, .def = "true", .group = "bridges",
	    .help = "tell the remote broker that this is a bridge"),
	OPT("bridge_max_topic_alias", INT, BR, max_topic_alias, .def = "10", RANGE(0, 65535),
	    .group = "bridges", .help = "topic aliases the bridge may use (MQTT 5)"),
	OPT("bridge_receive_maximum", INT, BR, receive_maximum, .def = "65535", RANGE(1, 65535),
	    .group = "bridges", .help = "messages the remote may have in flight (MQTT 5)"),
	OPT("bridge_session_expiry_interval", UINT32, BR, session_expiry_interval, .def = "0",
	    RANGE(0, UINT32_MAX), .group = "bridges",
	    .help = "session expiry on the remote (MQTT 5)"),
	OPT("bridge_tcp_keepalive", SPECIAL, BR, tcp_keepalive, .set = conf_set_tcp_keepalive,
	    .group = "bridges", .help = "TCP keepalive: <idle> <interval> <count> (default off)"),
	OPT("bridge_tcp_user_timeout", INT, BR, tcp_user_timeout, .def = "0", RANGE(0, INT_MAX),
	    .group = "bridges", .help = "TCP_USER_TIMEOUT in milliseconds (0 = system default)"),
	OPT("bridge_reload_type", ENUM, BR, reload_type, .def = "lazy", .names = n_reload_type,
	    .group = "bridges", .help = "on reload: lazy (on reconnect) or immediate"),
	/* Bridge TLS and PSK */
	OPT("bridge_cafile", STRING, BR, cafile, .group = "bridges",
	    .help = "PEM CA certificates for the remote's certificate"),
	OPT("bridge_capath", STRING, BR, capath, .group = "bridges",
	    .help = "directory of PEM CA certificates for the remote"),
	OPT("bridge_certfile", STRING, BR, certfile, .group = "bridges",
	    .help = "PEM client certificate of the bridge"),
	OPT("bridge_keyfile", STRING, BR, keyfile, .group = "bridges",
	    .help = "PEM private key of the bridge"),
	OPT("bridge_alpn", STRING, BR, alpn, .group = "bridges", .help = "TLS ALPN protocol"),
	OPT("bridge_insecure", BOOL, BR, insecure, .def = "false", .group = "bridges",
	    .help = "skip the remote host name check (testing only)"),
	OPT("bridge_require_ocsp", BOOL, BR, require_ocsp, .def = "false", .group = "bridges",
	    .help = "require OCSP stapling from the remote"),
	OPT("bridge_tls_version", STRING, BR, tls_version, .names = n_tls_version,
	    .group = "bridges", .help = "TLS version: tlsv1.3, tlsv1.2 or tlsv1.1"),
	OPT("bridge_ciphers", STRING, BR, ciphers, .group = "bridges",
	    .help = "TLS 1.2 cipher list for the bridge"),
	OPT("bridge_ciphers_tls1.3", STRING, BR, ciphers_tls13, .group = "bridges",
	    .help = "TLS 1.3 cipher suites for the bridge"),
	OPT("bridge_tls_use_os_certs", BOOL, BR, tls_use_os_certs, .def = "false",
	    .group = "bridges", .help = "trust the system's CA certificates"),
	OPT("bridge_identity", STRING, BR, identity, .group = "bridges",
	    .help = "TLS-PSK identity of the bridge"),
	OPT("bridge_psk", STRING, BR, psk, .check = check_hex, .group = "bridges",
	    .help = "TLS-PSK key in hexadecimal"),

	/* Cluster (cluster.h): YAML writes these without 'cluster_' in a 'cluster:' mapping,
	 * and nats_tls_<x> as <x> in its 'nats_tls:' mapping. */
	OPTX("cluster", SECTION, .flags = CONF_F_YAML_ONLY, .group = "cluster",
	     .help = "join a cluster of midge nodes over NATS (a mapping of the keys below)"),
	OPT("cluster_node_name", STRING, GL, cluster.node_name, .flags = CONF_F_CLUSTER,
	    .group = "cluster", .help = "this node's name, unique in the cluster (default: host name)"),
	OPT("cluster_nats_servers", STRLIST, GL, cluster.nats_servers,
	    .flags = CONF_F_CLUSTER | CONF_F_SPLIT, .group = "cluster",
	    .help = "NATS servers: nats://host:port or tls://host:port, a list"),
	OPT("cluster_nats_user", STRING, GL, cluster.nats_user, .flags = CONF_F_CLUSTER,
	    .group = "cluster", .help = "user name for NATS (with nats_password)"),
	OPT("cluster_nats_password", STRING, GL, cluster.nats_password, .flags = CONF_F_CLUSTER,
	    .group = "cluster", .help = "password for NATS"),
	OPT("cluster_nats_token", STRING, GL, cluster.nats_token, .flags = CONF_F_CLUSTER,
	    .group = "cluster", .help = "token for NATS (instead of user and password)"),
	OPT("cluster_nats_tls_cafile", STRING, GL, cluster.nats_tls_cafile,
	    .flags = CONF_F_CLUSTER, .group = "cluster",
	    .help = "PEM CA certificates that sign the NATS servers' (turns TLS on)"),
	OPT("cluster_nats_tls_certfile", STRING, GL, cluster.nats_tls_certfile,
	    .flags = CONF_F_CLUSTER, .group = "cluster", .help = "PEM client certificate for NATS"),
	OPT("cluster_nats_tls_keyfile", STRING, GL, cluster.nats_tls_keyfile,
	    .flags = CONF_F_CLUSTER, .group = "cluster", .help = "PEM private key for NATS"),
	OPT("cluster_subject_prefix", STRING, GL, cluster.subject_prefix, .def = "midge",
	    .flags = CONF_F_CLUSTER, .group = "cluster",
	    .help = "first NATS subject token(s) of this cluster's messages"),
	OPT("cluster_replicas", INT, GL, cluster.replicas, .def = "0", RANGE(0, 5),
	    .flags = CONF_F_CLUSTER, .group = "cluster",
	    .help = "copies JetStream keeps of the cluster's messages, retained messages and "
		    "sessions (0: one per NATS server listed, at most 3)"),
	OPT("cluster_stream_max_age", DURATION, GL, cluster.stream_max_age,
	    RANGE(1, 9223372036), .flags = CONF_F_CLUSTER, .group = "cluster",
	    .help = "how long the JetStream stream keeps QoS 1/2 messages, e.g. 2d (default: 1h)"),
	OPT("cluster_node_timeout", INT, GL, cluster.node_timeout, .def = "3", RANGE(1, 3600),
	    .flags = CONF_F_CLUSTER, .group = "cluster",
	    .help = "seconds without a heartbeat after which a node is gone and another node "
		    "fires its clients' wills"),

	/* mosquitto 1.x and rsmb options that no longer do anything */
	LEGACY("allow_duplicate_messages", "duplicates are always suppressed"),
	LEGACY("retry_interval", "QoS retries happen on reconnection, as MQTT 3.1.1 and 5 require"),
	LEGACY("store_clean_interval", "the message store is cleaned as messages are released"),
	LEGACY("trace_level", "rsmb option"),
	LEGACY("trace_output", "rsmb option"),
	LEGACY("ffdc_output", "rsmb option"),
	LEGACY("max_log_entries", "rsmb option"),

	/* Other names */
	ALIAS("auth_plugin", "plugin"),
	{.name = "auth_opt_", .type = CONF_T_SPECIAL, .flags = CONF_F_ALIAS | CONF_F_PREFIX,
	 .alias_of = "plugin_opt_"},
	ALIAS("addresses", "address"),
	ALIAS("clientid", "remote_clientid"),
	ALIAS("username", "remote_username"),
	ALIAS("password", "remote_password"),
	ALIAS("maximum_qos", "max_qos"),
	ALIAS("retained_persistence", "persistence"),
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

size_t conf_schema_count(void)
{
	return NOPTIONS;
}

const struct conf_option *conf_schema_at(size_t i)
{
	return i < NOPTIONS ? &options[i] : NULL;
}

size_t conf_schema_index(const struct conf_option *opt)
{
	return (size_t)(opt - options);
}

const struct conf_option *conf_schema_find(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (!(options[i].flags & CONF_F_PREFIX) && strcmp(options[i].name, name) == 0)
			return &options[i];
	for (size_t i = 0; i < NOPTIONS; i++) {
		size_t n = strlen(options[i].name);
		if ((options[i].flags & CONF_F_PREFIX) && strncmp(options[i].name, name, n) == 0)
			return &options[i];
	}
	return NULL;
}

const struct conf_option *conf_schema_canonical(const struct conf_option *opt)
{
	if (opt && (opt->flags & CONF_F_ALIAS)) {
		const struct conf_option *c = conf_schema_find(opt->alias_of);
		return c ? c : opt;
	}
	return opt;
}

/* Optimal string alignment distance (an adjacent swap costs one). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[64][64];

	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *conf_closest(const char *name, const char *const *cands, size_t n)
{
	size_t len = strlen(name);
	size_t limit = len <= 4 ? 1 : len <= 10 ? 2 : 3;
	size_t best = SIZE_MAX;
	const char *found = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(name, cands[i]);
		if (d < best) {
			best = d;
			found = cands[i];
		}
	}
	return best <= limit ? found : NULL;
}

const char *conf_schema_suggest(const char *name, enum conf_syntax syntax)
{
	const char *cands[NOPTIONS];
	size_t n = 0;
	uint32_t other = syntax == CONF_SYNTAX_YAML ? CONF_F_MOSQ_ONLY : CONF_F_YAML_ONLY;

	for (size_t i = 0; i < NOPTIONS; i++)
		if (!(options[i].flags & (other | CONF_F_PREFIX)))
			cands[n++] = options[i].name;
	return conf_closest(name, cands, n);
}

/* Whether a listener-scope offset falls inside its security struct (owned there). */
static bool in_listener_security(size_t off)
{
	size_t start = offsetof(struct config_listener, security);

	return off >= start && off < start + sizeof(struct config_security);
}

static void *field_at(void *base, size_t off)
{
	return (char *)base + off;
}

static int64_t name_value(const struct conf_name *names, const char *s, bool *found)
{
	for (; names && names->name; names++) {
		if (strcmp(names->name, s) == 0) {
			*found = true;
			return names->value;
		}
	}
	*found = false;
	return 0;
}

/* Writes a default: the table's defaults are trusted, so nothing is checked. */
static void apply_default(const struct conf_option *opt, void *field)
{
	const char *d = opt->def;
	bool found;

	if (opt->type == CONF_T_TRIBOOL && !d) {
		*(int *)field = -1;
		return;
	}
	if (!d)
		return;
	switch (opt->type) {
	case CONF_T_BOOL:
		*(bool *)field = strcmp(d, "true") == 0;
		break;
	case CONF_T_TRIBOOL:
		*(int *)field = strcmp(d, "true") == 0;
		break;
	case CONF_T_INT:
		*(int *)field = (int)strtol(d, NULL, 10);
		break;
	case CONF_T_UINT32:
		*(uint32_t *)field = (uint32_t)strtoul(d, NULL, 10);
		break;
	case CONF_T_SIZE:
		*(uint64_t *)field = strtoull(d, NULL, 10);
		break;
	case CONF_T_ENUM:
		*(int *)field = (int)name_value(opt->names, d, &found);
		break;
	case CONF_T_STRING:
		*(char **)field = mem_strdup(d);
		break;
	default:
		break;
	}
}

void conf_schema_defaults_global(struct config *cfg)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct conf_option *o = &options[i];

		if (o->flags & CONF_F_ALIAS)
			continue;
		if (o->scope == CONF_SC_GLOBAL ||
		    (o->scope == CONF_SC_NONE && o->type == CONF_T_BOOL))
			apply_default(o, field_at(cfg, o->off));
		else if (o->scope == CONF_SC_SECURITY)
			apply_default(o, field_at(&cfg->security, o->off));
		else if (o->scope == CONF_SC_LISTENER && (o->flags & CONF_F_MERGED))
			apply_default(o, field_at(cfg, o->off2));
	}
}

void conf_schema_defaults_listener(struct config_listener *l)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct conf_option *o = &options[i];

		if (o->flags & CONF_F_ALIAS)
			continue;
		if (o->scope == CONF_SC_LISTENER && !in_listener_security(o->off)) {
			if (o->flags & CONF_F_MERGED)
				*(int *)field_at(l, o->off) = CONF_UNSET_INT;
			else
				apply_default(o, field_at(l, o->off));
		} else if (o->scope == CONF_SC_GLOBAL && (o->flags & CONF_F_MERGED)) {
			*(int *)field_at(l, o->off2) = CONF_UNSET_INT;
		} else if (o->scope == CONF_SC_SECURITY && o->type == CONF_T_TRIBOOL) {
			*(int *)field_at(&l->security, o->off) = -1;
		}
	}
}

void conf_schema_defaults_bridge(struct config_bridge *b)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (!(options[i].flags & CONF_F_ALIAS) && options[i].scope == CONF_SC_BRIDGE)
			apply_default(&options[i], field_at(b, options[i].off));
}

void strlist_free(struct config_strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		mem_free(l->items[i]);
	mem_free(l->items);
	l->items = NULL;
	l->count = 0;
}

int strlist_add(struct config_strlist *l, const char *s)
{
	char **items = mem_realloc(l->items, (l->count + 1) * sizeof(*items));
	char *copy;

	if (!items)
		return -1;
	l->items = items;
	copy = mem_strdup(s);
	if (!copy)
		return -1;
	l->items[l->count++] = copy;
	return 0;
}

void conf_schema_free_fields(enum conf_scope scope, void *base)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct conf_option *o = &options[i];

		if ((o->flags & CONF_F_ALIAS) || o->scope != scope)
			continue;
		if (scope == CONF_SC_LISTENER && in_listener_security(o->off))
			continue;
		if (o->type == CONF_T_STRING) {
			char **p = field_at(base, o->off);
			mem_free(*p);
			*p = NULL;
		} else if (o->type == CONF_T_STRLIST) {
			strlist_free(field_at(base, o->off));
		}
	}
}

static void merge_field(const struct conf_option *o, void *dst, const void *src)
{
	switch (o->type) {
	case CONF_T_INT:
	case CONF_T_ENUM:
		if (*(int *)dst == CONF_UNSET_INT)
			*(int *)dst = *(const int *)src;
		break;
	case CONF_T_TRIBOOL:
		if (*(int *)dst == -1)
			*(int *)dst = *(const int *)src;
		break;
	case CONF_T_STRING:
		if (!*(char **)dst && *(char *const *)src)
			*(char **)dst = mem_strdup(*(char *const *)src);
		break;
	case CONF_T_STRLIST: {
		struct config_strlist *d = dst;
		const struct config_strlist *s = src;
		if (d->count == 0)
			for (size_t i = 0; i < s->count; i++)
				strlist_add(d, s->items[i]);
		break;
	}
	default:
		break;
	}
}

void conf_schema_merge_listener(struct config_listener *l, const struct config *cfg)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct conf_option *o = &options[i];

		if (o->flags & CONF_F_ALIAS)
			continue;
		if (o->scope == CONF_SC_SECURITY)
			merge_field(o, field_at(&l->security, o->off),
				    (const char *)&cfg->security + o->off);
		else if (o->scope == CONF_SC_LISTENER && (o->flags & CONF_F_MERGED))
			merge_field(o, field_at(l, o->off), (const char *)cfg + o->off2);
		else if (o->scope == CONF_SC_GLOBAL && (o->flags & CONF_F_MERGED))
			merge_field(o, field_at(l, o->off2), (const char *)cfg + o->off);
	}
}

/* ---- Value parsing ---------------------------------------------------- */

/*
 * The single token of a scalar value. mosquitto.conf allows a trailing
 * '#' comment after it; YAML hands over the scalar as it is.
 */
static const char *scalar(struct conf_ctx *ctx, const struct conf_value *v, char *buf,
			  size_t size)
{
	struct conf_split sp;
	int n;

	buf[0] = '\0';
	if (ctx->syntax == CONF_SYNTAX_YAML) {
		if (strlen(v->text) >= size) {
			conf_error(ctx, &v->loc, v->key, "value of '%s' is too long", v->key);
			return NULL;
		}
		return strcpy(buf, v->text);
	}
	n = conf_split(ctx, v, 1, &sp);
	if (n == 0)
		conf_error(ctx, &v->loc, v->key, "missing value for '%s'", v->key);
	else if (n == 1 && strlen(sp.tok[0]) >= size)
		conf_error(ctx, &v->loc, v->key, "value of '%s' is too long", v->key);
	else if (n == 1)
		strcpy(buf, sp.tok[0]);
	conf_split_free(&sp);
	return n == 1 && buf[0] ? buf : NULL;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long x;

	if (!*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = x;
	return 0;
}

static void range_text(const struct conf_option *opt, int64_t min, int64_t max, char *buf,
		       size_t size)
{
	if (opt && (opt->flags & CONF_F_ZERO_OK))
		snprintf(buf, size, "0 or %lld..%lld", (long long)min, (long long)max);
	else
		snprintf(buf, size, "%lld..%lld", (long long)min, (long long)max);
}

int conf_parse_int(struct conf_ctx *ctx, const char *key, const char *tok,
		   const struct config_loc *loc, int64_t min, int64_t max, int64_t *out)
{
	char range[64];

	range_text(NULL, min, max, range, sizeof(range));
	if (parse_i64(tok, out) < 0) {
		conf_error(ctx, loc, key,
			   "invalid value '%s' for '%s': expected an integer (accepted: %s)", tok,
			   key, range);
		return -1;
	}
	if (*out < min || *out > max) {
		conf_error(ctx, loc, key, "value %s for '%s' is out of range (accepted: %s)", tok,
			   key, range);
		return -1;
	}
	return 0;
}

/* Integer types: named values, then the number, range and mosquitto's clamping. */
static int parse_number(struct conf_ctx *ctx, const struct conf_option *opt,
			const struct conf_value *v, const char *tok, int64_t *out)
{
	char range[64];
	bool found;

	*out = name_value(opt->names, tok, &found);
	if (found)
		return 0;
	range_text(opt, opt->min, opt->max, range, sizeof(range));
	if (parse_i64(tok, out) < 0) {
		conf_error(ctx, &v->loc, v->key,
			   "invalid value '%s' for '%s': expected an integer (accepted: %s)", tok,
			   v->key, range);
		return -1;
	}
	if ((opt->flags & CONF_F_ZERO_OK) && *out == 0)
		return 0;
	if (*out < opt->min && (opt->flags & CONF_F_CLAMP) && ctx->syntax == CONF_SYNTAX_MOSQ) {
		conf_warn(ctx, &v->loc, v->key, "value %s for '%s' is below %lld; using %lld", tok,
			  v->key, (long long)opt->min, (long long)opt->min);
		*out = opt->min;
		return 0;
	}
	if (*out < opt->min || *out > opt->max) {
		conf_error(ctx, &v->loc, v->key, "value %s for '%s' is out of range (accepted: %s)",
			   tok, v->key, range);
		return -1;
	}
	return 0;
}

static int parse_duration(struct conf_ctx *ctx, const struct conf_value *v, const char *tok,
			  int64_t *out)
{
	static const struct {
		char unit;
		int64_t seconds;
	} units[] = {{'s', 1}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}, {'m', 30 * 86400},
		     {'y', 365 * 86400}};
	size_t len = strlen(tok);
	char num[32];
	int64_t n;

	if (len >= 2 && len < sizeof(num)) {
		memcpy(num, tok, len - 1);
		num[len - 1] = '\0';
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (tok[len - 1] != units[i].unit)
				continue;
			if (parse_i64(num, &n) == 0 && n > 0 && n <= INT64_MAX / units[i].seconds) {
				*out = n * units[i].seconds;
				return 0;
			}
		}
	}
	conf_error(ctx, &v->loc, v->key,
		   "invalid value '%s' for '%s' (accepted: a positive number followed by s, h, d, w, "
		   "m or y, e.g. 14d)", tok, v->key);
	return -1;
}

int conf_parse_bool(struct conf_ctx *ctx, const char *key, const struct conf_value *v, bool *out)
{
	/* mosquitto takes exactly these; YAML adds its usual spellings, any case. */
	static const struct conf_name mosq[] = {
		{"true", 1}, {"false", 0}, {"1", 1}, {"0", 0}, {NULL, 0}};
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	char buf[16];
	const char *tok = scalar(ctx, v, buf, sizeof(buf));
	bool found;

	if (!tok)
		return -1;
	if (ctx->syntax == CONF_SYNTAX_MOSQ) {
		*out = name_value(mosq, tok, &found) != 0;
		if (found)
			return 0;
		conf_error(ctx, &v->loc, key, "invalid value '%s' for '%s' (accepted: true, false)",
			   tok, key);
		return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(tok, yes[i]) == 0 || strcasecmp(tok, no[i]) == 0) {
			*out = strcasecmp(tok, yes[i]) == 0;
			return 0;
		}
	}
	conf_error(ctx, &v->loc, key,
		   "invalid value '%s' for '%s' (accepted: true/false, yes/no, on/off)", tok, key);
	return -1;
}

static void names_text(const struct conf_name *names, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; names && names->name && used < size; names++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
					 names->name);
}

/* Checks a word against the option's accepted names; reports and returns -1 if absent. */
static int check_name(struct conf_ctx *ctx, const struct conf_option *opt,
		      const struct conf_value *v, const char *s, int *value)
{
	char list[256];
	bool found;
	int64_t x = name_value(opt->names, s, &found);

	if (found) {
		if (value)
			*value = (int)x;
		return 0;
	}
	names_text(opt->names, list, sizeof(list));
	conf_error(ctx, &v->loc, v->key, "invalid value '%s' for '%s' (accepted: %s)", s, v->key,
		   list);
	return -1;
}

static int set_string(struct conf_ctx *ctx, const struct conf_option *opt, void *field,
		      const struct conf_value *v)
{
	const char *why;
	char **p = field;
	char *copy;

	if (!mqtt_utf8_valid((const uint8_t *)v->text, strlen(v->text))) {
		conf_error(ctx, &v->loc, v->key, "invalid UTF-8 in the value of '%s'", v->key);
		return -1;
	}
	if (opt->names && check_name(ctx, opt, v, v->text, NULL) < 0)
		return -1;
	if (opt->check && (why = opt->check(v->text)) != NULL) {
		conf_error(ctx, &v->loc, v->key, "invalid value '%s' for '%s': %s", v->text, v->key,
			   why);
		return -1;
	}
	copy = mem_strdup(v->text);
	if (!copy)
		return -1;
	mem_free(*p);
	*p = copy;
	return 0;
}

static int set_strlist(struct conf_ctx *ctx, const struct conf_option *opt, void *field,
		       const struct conf_value *v)
{
	struct config_strlist *l = field;
	char item[256];
	const char *p = v->text;
	struct conf_value one = *v;

	if (!(opt->flags & CONF_F_SPLIT)) {
		one.text = v->text;
		if (opt->names && check_name(ctx, opt, &one, v->text, NULL) < 0)
			return -1;
		return strlist_add(l, v->text);
	}
	while (*p) {
		size_t n = strcspn(p, ", \t");
		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(item))
			n = sizeof(item) - 1;
		memcpy(item, p, n);
		item[n] = '\0';
		one.loc.column = v->loc.column + (int)(p - v->text);
		if (opt->names && check_name(ctx, opt, &one, item, NULL) < 0)
			return -1;
		if (strlist_add(l, item) < 0)
			return -1;
		p += n;
	}
	return 0;
}

static int set_size(struct conf_ctx *ctx, const struct conf_option *opt, void *field,
		    const struct conf_value *v, const char *tok)
{
	int64_t x;

	/* mosquitto reads these with atol and clamps negatives to 0 */
	if (tok[0] == '-' && (opt->flags & CONF_F_CLAMP) && ctx->syntax == CONF_SYNTAX_MOSQ &&
	    parse_i64(tok, &x) == 0) {
		conf_warn(ctx, &v->loc, v->key, "value %s for '%s' is below 0; using 0", tok,
			  v->key);
		*(uint64_t *)field = 0;
		return 0;
	}
	if (tok[0] == '-' || tok[0] == '+') {
		conf_error(ctx, &v->loc, v->key,
			   "invalid value '%s' for '%s': expected a number of bytes", tok, v->key);
		return -1;
	}
	if (parse_number(ctx, opt, v, tok, &x) < 0)
		return -1;
	*(uint64_t *)field = (uint64_t)x;
	return 0;
}

int conf_set_generic(struct conf_ctx *ctx, const struct conf_option *opt,
		     const struct conf_target *t, const struct conf_value *v)
{
	void *field = field_at(t->base, t->off);
	char tok[128];
	int64_t x;
	bool b;
	int e;

	switch (opt->type) {
	case CONF_T_BOOL:
		if (conf_parse_bool(ctx, v->key, v, &b) < 0)
			return -1;
		*(bool *)field = b;
		return 0;
	case CONF_T_TRIBOOL:
		if (conf_parse_bool(ctx, v->key, v, &b) < 0)
			return -1;
		*(int *)field = b;
		return 0;
	case CONF_T_STRING:
		return set_string(ctx, opt, field, v);
	case CONF_T_STRLIST:
		return set_strlist(ctx, opt, field, v);
	default:
		break;
	}
	if (!scalar(ctx, v, tok, sizeof(tok)))
		return -1;
	switch (opt->type) {
	case CONF_T_ENUM:
		if (check_name(ctx, opt, v, tok, &e) < 0)
			return -1;
		*(int *)field = e;
		return 0;
	case CONF_T_DURATION:
		if (parse_duration(ctx, v, tok, &x) < 0)
			return -1;
		*(int64_t *)field = x;
		return 0;
	case CONF_T_SIZE:
		return set_size(ctx, opt, field, v, tok);
	case CONF_T_INT:
		if (parse_number(ctx, opt, v, tok, &x) < 0)
			return -1;
		*(int *)field = (int)x;
		return 0;
	case CONF_T_UINT32:
		if (parse_number(ctx, opt, v, tok, &x) < 0)
			return -1;
		*(uint32_t *)field = (uint32_t)x;
		return 0;
	default:
		conf_error(ctx, &v->loc, v->key, "'%s' cannot be set this way", v->key);
		return -1;
	}
}
