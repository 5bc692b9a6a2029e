/*
 * mqttc_args.c: the command-line options midge_pub and midge_sub share,
 * with mosquitto_pub / mosquitto_sub's names, defaults and messages:
 * broker address (-h -p --unix -A -L), session (-i -I -k -c -x -V),
 * credentials (-u -P), will (--will-*), MQTT 5 properties (-D), TLS
 * (--cafile --capath --cert --key --insecure --tls-version --ciphers
 * --tls-alpn --tls-use-os-certs --psk --psk-identity), -d, --quiet,
 * --nodelay. See mqttc.h.
 */
#include "config.h"

#include "mqttc.h"
#include "topic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <openssl/rand.h>

static const char *const cmd_names[MQTTC_CMD_COUNT] = {
	[MQTTC_CMD_CONNECT] = "connect",
	[MQTTC_CMD_PUBLISH] = "publish",
	[MQTTC_CMD_SUBSCRIBE] = "subscribe",
	[MQTTC_CMD_UNSUBSCRIBE] = "unsubscribe",
	[MQTTC_CMD_DISCONNECT] = "disconnect",
	[MQTTC_CMD_WILL] = "will",
};

/* The packet type property.c's table knows each command by. */
static const int cmd_packet[MQTTC_CMD_COUNT] = {
	[MQTTC_CMD_CONNECT] = MQTT_CONNECT,
	[MQTTC_CMD_PUBLISH] = MQTT_PUBLISH,
	[MQTTC_CMD_SUBSCRIBE] = MQTT_SUBSCRIBE,
	[MQTTC_CMD_UNSUBSCRIBE] = MQTT_UNSUBSCRIBE,
	[MQTTC_CMD_DISCONNECT] = MQTT_DISCONNECT,
	[MQTTC_CMD_WILL] = MQTT_PROPS_WILL,
};

void mqttc_cfg_init(struct mqttc_cfg *cfg, const char *tool, bool is_sub)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tool = tool;
	cfg->is_sub = is_sub;
	cfg->host = "localhost";
	cfg->protocol = MQTT_PROTO_V311;
	cfg->keepalive = 60;
	cfg->clean = true;
}

void mqttc_cfg_free(struct mqttc_cfg *cfg)
{
	for (int i = 0; i < MQTTC_CMD_COUNT; i++)
		free(cfg->props[i].p);
	free(cfg->id_owned);
	free(cfg->url_copy);
	memset(cfg->props, 0, sizeof(cfg->props));
	cfg->id_owned = cfg->url_copy = NULL;
}

void mqttc_usage_error(const struct mqttc_cfg *cfg, const char *fmt, ...)
{
	va_list ap;

	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\nUse '%s --help' to see usage.\n", cfg->tool);
}

void mqttc_err(const struct mqttc_cfg *cfg, const char *fmt, ...)
{
	va_list ap;

	if (cfg->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

bool mqttc_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		      unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* ---- -D / --property ---- */

static uint8_t *props_grow(struct mqttc_buf *b, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		uint8_t *p;

		while (cap - b->len < n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			fputs("Error: Out of memory.\n", stderr);
			exit(MQTTC_EXIT_ERROR);
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

static int prop_id_by_name(const char *name)
{
	for (int id = 1; id < 64; id++)
		if (mqtt_prop_type(id) != MQTT_PROP_TYPE_NONE && strcmp(mqtt_prop_name(id), name) == 0)
			return id;
	return 0;
}

/* Values MQTT forbids although their type allows them. */
static bool prop_value_ok(int id, unsigned long long v)
{
	switch (id) {
	case MQTT_PROP_RECEIVE_MAXIMUM:
	case MQTT_PROP_MAXIMUM_PACKET_SIZE:
	case MQTT_PROP_TOPIC_ALIAS:
	case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
		return v != 0;
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
	case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
	case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
		return v <= 1;
	default:
		return true;
	}
}

static bool prop_string_ok(const char *s)
{
	size_t n = strlen(s);

	return n <= 65535 && mqtt_utf8_valid((const uint8_t *)s, n);
}

/* -D COMMAND NAME VALUE, or -D COMMAND user-property KEY VALUE. */
static int option_property(struct mqttc_cfg *cfg, int argc, char **argv, int *i)
{
	const char *cmd_s, *name, *value, *key = NULL;
	int cmd = -1, id;
	enum mqtt_prop_type type;
	unsigned long long v = 0, max = 0;
	struct mqttc_buf *b;
	struct pkt_writer w;
	uint32_t size;

	if (*i + 3 >= argc) {
		mqttc_usage_error(cfg, "--property argument given but not enough arguments specified.");
		return -1;
	}
	cmd_s = argv[*i + 1];
	name = argv[*i + 2];
	for (int k = 0; k < MQTTC_CMD_COUNT; k++)
		if (strcasecmp(cmd_s, cmd_names[k]) == 0)
			cmd = k;
	if (cmd < 0) {
		mqttc_usage_error(cfg, "Invalid command '%s' given in --property argument "
				  "(connect, publish, subscribe, unsubscribe, disconnect or will).",
				  cmd_s);
		return -1;
	}
	id = prop_id_by_name(name);
	if (!id) {
		mqttc_usage_error(cfg, "Invalid property name given in --property argument.");
		return -1;
	}
	if (!mqtt_prop_allowed(id, cmd_packet[cmd])) {
		mqttc_usage_error(cfg, "%s property not allowed for %s in --property argument.", name,
				  cmd_names[cmd]);
		return -1;
	}
	type = mqtt_prop_type(id);
	if (type == MQTT_PROP_TYPE_PAIR) {
		if (*i + 4 >= argc) {
			mqttc_usage_error(cfg, "--property argument given but not enough arguments specified.");
			return -1;
		}
		key = argv[*i + 3];
		value = argv[*i + 4];
		*i += 4;
	} else {
		value = argv[*i + 3];
		*i += 3;
	}
	/* Single-valued properties once; a SUBSCRIBE carries one subscription identifier. */
	if (id != MQTT_PROP_USER_PROPERTY &&
	    (id != MQTT_PROP_SUBSCRIPTION_IDENTIFIER || cmd == MQTTC_CMD_SUBSCRIBE)) {
		if ((cfg->props_seen[cmd] >> id) & 1u) {
			mqttc_usage_error(cfg, "Duplicate %s property for %s in --property argument.",
					  name, cmd_names[cmd]);
			return -1;
		}
		cfg->props_seen[cmd] |= 1ull << id;
	}
	switch (type) {
	case MQTT_PROP_TYPE_BYTE: max = 255; break;
	case MQTT_PROP_TYPE_U16: max = 65535; break;
	case MQTT_PROP_TYPE_U32: max = 4294967295ull; break;
	case MQTT_PROP_TYPE_VARINT: max = 268435455; break;
	default: break;
	}
	if (max) {
		if (!mqttc_parse_uint(value, 0, ~0ull, &v)) {
			mqttc_usage_error(cfg, "Property value (%s) is not a number for property %s.",
					  value, name);
			return -1;
		}
		if (v > max || !prop_value_ok(id, v)) {
			mqttc_usage_error(cfg, "Property value (%s) out of range for property %s.",
					  value, name);
			return -1;
		}
	} else if ((type == MQTT_PROP_TYPE_STRING || type == MQTT_PROP_TYPE_PAIR) &&
		   (!prop_string_ok(value) || (key && !prop_string_ok(key)))) {
		mqttc_usage_error(cfg, "Property value for %s is not valid UTF-8 of at most 65535 bytes.",
				  name);
		return -1;
	} else if (type == MQTT_PROP_TYPE_BINARY && strlen(value) > 65535) {
		mqttc_usage_error(cfg, "Property value for %s is longer than 65535 bytes.", name);
		return -1;
	}

	switch (type) {
	case MQTT_PROP_TYPE_BYTE: size = mqtt_prop_size_u8(); break;
	case MQTT_PROP_TYPE_U16: size = mqtt_prop_size_u16(); break;
	case MQTT_PROP_TYPE_U32: size = mqtt_prop_size_u32(); break;
	case MQTT_PROP_TYPE_VARINT: size = mqtt_prop_size_varint((uint32_t)v); break;
	case MQTT_PROP_TYPE_PAIR:
		size = mqtt_prop_size_pair((uint32_t)strlen(key), (uint32_t)strlen(value));
		break;
	default: size = mqtt_prop_size_bin((uint32_t)strlen(value)); break;
	}
	b = &cfg->props[cmd];
	pkt_writer_init(&w, props_grow(b, size), size);
	switch (type) {
	case MQTT_PROP_TYPE_BYTE: pkt_write_prop_u8(&w, (uint8_t)id, (uint8_t)v); break;
	case MQTT_PROP_TYPE_U16: pkt_write_prop_u16(&w, (uint8_t)id, (uint16_t)v); break;
	case MQTT_PROP_TYPE_U32: pkt_write_prop_u32(&w, (uint8_t)id, (uint32_t)v); break;
	case MQTT_PROP_TYPE_VARINT: pkt_write_prop_varint(&w, (uint8_t)id, (uint32_t)v); break;
	case MQTT_PROP_TYPE_PAIR:
		pkt_write_prop_pair(&w, (uint8_t)id, key, (uint16_t)strlen(key), value,
				    (uint16_t)strlen(value));
		break;
	default:
		pkt_write_prop_bin(&w, (uint8_t)id, value, (uint16_t)strlen(value));
		break;
	}
	b->len += size;
	if (cmd == MQTTC_CMD_CONNECT && id == MQTT_PROP_TOPIC_ALIAS_MAXIMUM)
		cfg->topic_alias_max = (uint16_t)v;
	cfg->props_given = true;
	return 1;
}

/* ---- -L URL ---- */

/* scheme://[user[:password]@]host[:port][/rest]; host may be [IPv6]. */
static int option_url(struct mqttc_cfg *cfg, const char *url)
{
	char *s, *p, *at, *slash, *colon, *host, *path = NULL;
	unsigned long long port = 0;

	free(cfg->url_copy);
	cfg->url_copy = s = strdup(url);
	if (!s) {
		fputs("Error: Out of memory.\n", stderr);
		return -1;
	}
	cfg->ws = false;
	cfg->tls_url = false;
	if (strncmp(s, "mqtt://", 7) == 0) {
		p = s + 7;
	} else if (strncmp(s, "mqtts://", 8) == 0) {
		p = s + 8;
		cfg->tls_url = true;
	} else if (strncmp(s, "ws://", 5) == 0) {
		p = s + 5;
		cfg->ws = true;
	} else if (strncmp(s, "wss://", 6) == 0) {
		p = s + 6;
		cfg->ws = cfg->tls_url = true;
	} else {
		mqttc_usage_error(cfg, "unsupported URL scheme (mqtt://, mqtts://, ws:// or wss://).");
		return -1;
	}
	slash = strchr(p, '/');
	if (slash) {
		*slash = '\0';
		path = slash + 1;
	}
	at = strrchr(p, '@');
	if (at) {
		*at = '\0';
		colon = strchr(p, ':');
		if (colon) {
			*colon = '\0';
			cfg->password = colon + 1;
		}
		cfg->username = p;
		p = at + 1;
	}
	host = p;
	if (*host == '[') {
		char *close = strchr(host, ']');

		if (!close) {
			mqttc_usage_error(cfg, "Invalid URL for -L argument specified - bad host.");
			return -1;
		}
		*close = '\0';
		host++;
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strrchr(host, ':');
	}
	if (colon) {
		*colon = '\0';
		if (!mqttc_parse_uint(colon + 1, 1, 65535, &port)) {
			mqttc_usage_error(cfg, "Invalid URL for -L argument specified - bad port.");
			return -1;
		}
	}
	if (!*host) {
		mqttc_usage_error(cfg, "Invalid URL for -L argument specified - host missing.");
		return -1;
	}
	cfg->host = host;
	cfg->port = (int)port;
	cfg->unix_path = NULL;
	if (cfg->ws) {
		/* The path is the HTTP request's; the topics come from -t. */
		if (path) {
			path[-1] = '/';
			cfg->ws_path = path - 1;
		} else {
			cfg->ws_path = "/mqtt";
		}
		cfg->url_topic = NULL;
		return 1;
	}
	if (!path || !*path) {
		mqttc_usage_error(cfg, "Invalid URL for -L argument specified - topic missing.");
		return -1;
	}
	cfg->url_topic = path;
	return 1;
}

/* ---- The options ---- */

enum arg_kind { A_FLAG, A_VALUE };

struct opt {
	const char *shortname, *longname, *longname2;
	enum arg_kind kind;
	const char *what; /* for "given but no ... specified" */
	int key;
};

enum {
	O_HOST = 1, O_PORT, O_UNIX, O_BIND, O_URL, O_USER, O_PASS, O_ID, O_ID_PREFIX, O_KEEPALIVE,
	O_QOS, O_VERSION, O_DEBUG, O_QUIET, O_CLEAN, O_EXPIRY, O_PROPERTY, O_WILL_TOPIC,
	O_WILL_PAYLOAD, O_WILL_QOS, O_WILL_RETAIN, O_CAFILE, O_CAPATH, O_CERT, O_KEY, O_CIPHERS,
	O_INSECURE, O_TLS_VERSION, O_ALPN, O_OS_CERTS, O_PSK, O_PSK_ID, O_NODELAY,
};

static const struct opt opts[] = {
	{"-h", "--host", NULL, A_VALUE, "host", O_HOST},
	{"-p", "--port", NULL, A_VALUE, "port", O_PORT},
	{NULL, "--unix", NULL, A_VALUE, "socket path", O_UNIX},
	{"-A", NULL, NULL, A_VALUE, "address", O_BIND},
	{"-L", "--url", NULL, A_VALUE, "URL", O_URL},
	{"-u", "--username", NULL, A_VALUE, "username", O_USER},
	{"-P", "--pw", "--password", A_VALUE, "password", O_PASS},
	{"-i", "--id", NULL, A_VALUE, "id", O_ID},
	{"-I", "--id-prefix", NULL, A_VALUE, "id prefix", O_ID_PREFIX},
	{"-k", "--keepalive", NULL, A_VALUE, "keepalive", O_KEEPALIVE},
	{"-q", "--qos", NULL, A_VALUE, "QoS", O_QOS},
	{"-V", "--protocol-version", NULL, A_VALUE, "version", O_VERSION},
	{"-d", "--debug", NULL, A_FLAG, NULL, O_DEBUG},
	{NULL, "--quiet", NULL, A_FLAG, NULL, O_QUIET},
	{"-c", "--disable-clean-session", NULL, A_FLAG, NULL, O_CLEAN},
	{"-x", NULL, NULL, A_VALUE, "session expiry interval", O_EXPIRY},
	{"-D", "--property", NULL, A_FLAG, NULL, O_PROPERTY},
	{NULL, "--will-topic", NULL, A_VALUE, "will topic", O_WILL_TOPIC},
	{NULL, "--will-payload", NULL, A_VALUE, "will payload", O_WILL_PAYLOAD},
	{NULL, "--will-qos", NULL, A_VALUE, "will QoS", O_WILL_QOS},
	{NULL, "--will-retain", NULL, A_FLAG, NULL, O_WILL_RETAIN},
	{NULL, "--cafile", NULL, A_VALUE, "certificate file", O_CAFILE},
	{NULL, "--capath", NULL, A_VALUE, "certificate path", O_CAPATH},
	{NULL, "--cert", NULL, A_VALUE, "certificate file", O_CERT},
	{NULL, "--key", NULL, A_VALUE, "key file", O_KEY},
	{NULL, "--ciphers", NULL, A_VALUE, "ciphers", O_CIPHERS},
	{NULL, "--insecure", NULL, A_FLAG, NULL, O_INSECURE},
	{NULL, "--tls-version", NULL, A_VALUE, "version", O_TLS_VERSION},
	{NULL, "--tls-alpn", NULL, A_VALUE, "protocol", O_ALPN},
	{NULL, "--tls-use-os-certs", NULL, A_FLAG, NULL, O_OS_CERTS},
	{NULL, "--psk", NULL, A_VALUE, "key", O_PSK},
	{NULL, "--psk-identity", NULL, A_VALUE, "identity", O_PSK_ID},
	{NULL, "--nodelay", NULL, A_FLAG, NULL, O_NODELAY},
};

static bool name_is(const char *a, const char *name)
{
	return name && strcmp(a, name) == 0;
}

static int bad_qos(const struct mqttc_cfg *cfg, const char *what, const char *v, int *out)
{
	unsigned long long q;

	if (!mqttc_parse_uint(v, 0, 2, &q)) {
		mqttc_usage_error(cfg, "Invalid %s given: %s", what, v);
		return -1;
	}
	*out = (int)q;
	return 1;
}

int mqttc_cfg_option(struct mqttc_cfg *cfg, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v = NULL;
	const struct opt *o = NULL;
	unsigned long long n;

	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		if (name_is(a, opts[k].shortname) || name_is(a, opts[k].longname) ||
		    name_is(a, opts[k].longname2)) {
			o = &opts[k];
			break;
		}
	}
	if (!o)
		return 0;
	if (o->kind == A_VALUE) {
		if (*i + 1 >= argc) {
			mqttc_usage_error(cfg, "%s argument given but no %s specified.", a, o->what);
			return -1;
		}
		v = argv[++*i];
	}
	switch (o->key) {
	case O_HOST:
		cfg->host = v;
		cfg->unix_path = NULL;
		break;
	case O_PORT:
		if (!mqttc_parse_uint(v, 1, 65535, &n)) {
			mqttc_usage_error(cfg, "Invalid port given: %s", v);
			return -1;
		}
		cfg->port = (int)n;
		break;
	case O_UNIX:
		cfg->unix_path = v;
		break;
	case O_BIND:
		cfg->bind_address = v;
		break;
	case O_URL:
		return option_url(cfg, v);
	case O_USER:
		cfg->username = v;
		break;
	case O_PASS:
		cfg->password = v;
		break;
	case O_ID:
		cfg->id = v;
		break;
	case O_ID_PREFIX:
		cfg->id_prefix = v;
		break;
	case O_KEEPALIVE:
		if (!mqttc_parse_uint(v, 5, 65535, &n)) {
			mqttc_usage_error(cfg, "Invalid keepalive given, it must be between 5 and 65535 inclusive.");
			return -1;
		}
		cfg->keepalive = (int)n;
		break;
	case O_QOS:
		return bad_qos(cfg, "QoS", v, &cfg->qos);
	case O_VERSION:
		if (!strcmp(v, "mqttv31") || !strcmp(v, "31")) {
			cfg->protocol = MQTT_PROTO_V31;
		} else if (!strcmp(v, "mqttv311") || !strcmp(v, "311")) {
			cfg->protocol = MQTT_PROTO_V311;
		} else if (!strcmp(v, "mqttv5") || !strcmp(v, "5")) {
			cfg->protocol = MQTT_PROTO_V5;
		} else {
			mqttc_usage_error(cfg, "Invalid protocol version argument given.");
			return -1;
		}
		cfg->protocol_given = true;
		break;
	case O_DEBUG:
		cfg->debug = true;
		break;
	case O_QUIET:
		cfg->quiet = true;
		break;
	case O_CLEAN:
		cfg->clean = false;
		break;
	case O_EXPIRY:
		if (!strcmp(v, "-1") || !strcmp(v, "\xe2\x88\x9e")) { /* "∞" */
			n = 4294967295ull;
		} else if (!mqttc_parse_uint(v, 0, 4294967295ull, &n)) {
			mqttc_usage_error(cfg, "session-expiry-interval not a number.");
			return -1;
		}
		cfg->session_expiry = (uint32_t)n;
		cfg->session_expiry_given = true;
		break;
	case O_PROPERTY:
		return option_property(cfg, argc, argv, i);
	case O_WILL_TOPIC:
		cfg->will_topic = v;
		break;
	case O_WILL_PAYLOAD:
		cfg->will_payload = v;
		cfg->will_payload_given = true;
		break;
	case O_WILL_QOS:
		if (!mqttc_parse_uint(v, 0, 2, &n)) {
			mqttc_usage_error(cfg, "Invalid will QoS %s.", v);
			return -1;
		}
		cfg->will_qos = (int)n;
		cfg->will_qos_given = true;
		break;
	case O_WILL_RETAIN:
		cfg->will_retain = true;
		cfg->will_retain_given = true;
		break;
	case O_CAFILE:
		cfg->cafile = v;
		break;
	case O_CAPATH:
		cfg->capath = v;
		break;
	case O_CERT:
		cfg->certfile = v;
		break;
	case O_KEY:
		cfg->keyfile = v;
		break;
	case O_CIPHERS:
		cfg->ciphers = v;
		break;
	case O_INSECURE:
		cfg->insecure = true;
		break;
	case O_TLS_VERSION:
		if (strcmp(v, "tlsv1.3") && strcmp(v, "tlsv1.2") && strcmp(v, "tlsv1.1")) {
			mqttc_usage_error(cfg, "Invalid --tls-version '%s' (tlsv1.3, tlsv1.2 or tlsv1.1).", v);
			return -1;
		}
		cfg->tls_version = v;
		break;
	case O_ALPN:
		if (strlen(v) == 0 || strlen(v) > 255) {
			mqttc_usage_error(cfg, "Invalid --tls-alpn '%s'.", v);
			return -1;
		}
		cfg->alpn = v;
		break;
	case O_OS_CERTS:
		cfg->os_certs = true;
		break;
	case O_PSK:
		cfg->psk = v;
		break;
	case O_PSK_ID:
		cfg->psk_identity = v;
		break;
	case O_NODELAY:
		cfg->nodelay = true;
		break;
	default:
		return 0;
	}
	return 1;
}

static bool is_hex(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2 || n > 512)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
			return false;
	return true;
}

/* "mosq-" and 18 random letters and digits, libmosquitto's id for MQTT 3.1 clients. */
static char *random_id(void)
{
	static const char alnum[] =
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	unsigned char r[18];
	char *id = malloc(5 + sizeof(r) + 1);

	if (!id)
		return NULL;
	if (RAND_bytes(r, sizeof(r)) != 1) {
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)rand();
	}
	memcpy(id, "mosq-", 5);
	for (size_t i = 0; i < sizeof(r); i++)
		id[5 + i] = alnum[r[i] % (sizeof(alnum) - 1)];
	id[5 + sizeof(r)] = '\0';
	return id;
}

int mqttc_cfg_finish(struct mqttc_cfg *cfg)
{
	if (cfg->props_given && !cfg->protocol_given)
		cfg->protocol = MQTT_PROTO_V5;
	if (cfg->id && cfg->id_prefix) {
		mqttc_usage_error(cfg, "-i and -I argument cannot be used together.");
		return -1;
	}
	if (cfg->id && strlen(cfg->id) > 65535) {
		mqttc_usage_error(cfg, "Client id longer than 65535 bytes.");
		return -1;
	}
	if (cfg->id_prefix) {
		size_t n = strlen(cfg->id_prefix) + 24;

		cfg->id_owned = malloc(n);
		if (!cfg->id_owned) {
			fputs("Error: Out of memory.\n", stderr);
			return -1;
		}
		snprintf(cfg->id_owned, n, "%s%ld", cfg->id_prefix, (long)getpid());
		cfg->id = cfg->id_owned;
	}
	if (!cfg->clean && !cfg->id) {
		mqttc_usage_error(cfg, "You must provide a client id if you are using the -c option.");
		return -1;
	}
	if (cfg->protocol == MQTT_PROTO_V5) {
		if (!cfg->session_expiry_given && !cfg->clean)
			cfg->session_expiry = 4294967295u;
		if (cfg->session_expiry == 4294967295u && !cfg->id) {
			mqttc_usage_error(cfg, "You must provide a client id if you are using an "
					  "infinite session expiry interval.");
			return -1;
		}
		if (cfg->session_expiry &&
		    ((cfg->props_seen[MQTTC_CMD_CONNECT] >> MQTT_PROP_SESSION_EXPIRY_INTERVAL) & 1u)) {
			mqttc_usage_error(cfg, "-x (or -c) and -D connect session-expiry-interval "
					  "cannot be used together.");
			return -1;
		}
	}
	if (!cfg->id && cfg->protocol == MQTT_PROTO_V31) {
		/* MQTT 3.1 has no empty client id. */
		cfg->id_owned = random_id();
		if (!cfg->id_owned) {
			fputs("Error: Out of memory.\n", stderr);
			return -1;
		}
		cfg->id = cfg->id_owned;
	}
	if (!cfg->will_topic) {
		if (cfg->will_payload_given) {
			mqttc_usage_error(cfg, "Will payload given, but no will topic given.");
			return -1;
		}
		if (cfg->will_retain_given) {
			mqttc_usage_error(cfg, "Will retain given, but no will topic given.");
			return -1;
		}
		if (cfg->will_qos_given) {
			mqttc_usage_error(cfg, "Will QoS given, but no will topic given.");
			return -1;
		}
	} else {
		size_t n = strlen(cfg->will_topic);

		if (n == 0 || n > 65535 || !mqtt_utf8_valid((const uint8_t *)cfg->will_topic, n) ||
		    !topic_name_valid(cfg->will_topic, n)) {
			mqttc_usage_error(cfg, "Invalid will topic '%s', does it contain '+' or '#'?",
					  cfg->will_topic);
			return -1;
		}
		if (cfg->will_payload && strlen(cfg->will_payload) > 65535) {
			mqttc_usage_error(cfg, "Will payload longer than 65535 bytes.");
			return -1;
		}
	}
	if (cfg->password && !cfg->username && cfg->protocol != MQTT_PROTO_V5) {
		fputs("Error: Problem setting username and/or password (MQTT 3.1 and 3.1.1 have no "
		      "password without a username).\n", stderr);
		return -1;
	}
	if ((cfg->username && strlen(cfg->username) > 65535) ||
	    (cfg->password && strlen(cfg->password) > 65535)) {
		mqttc_usage_error(cfg, "User name or password longer than 65535 bytes.");
		return -1;
	}
	if (cfg->username && !mqtt_utf8_valid((const uint8_t *)cfg->username, strlen(cfg->username))) {
		mqttc_usage_error(cfg, "The user name is not valid UTF-8.");
		return -1;
	}
	/* TLS. */
	if ((cfg->certfile && !cfg->keyfile) || (!cfg->certfile && cfg->keyfile)) {
		mqttc_usage_error(cfg, "Both certfile and keyfile must be provided if one of them is set.");
		return -1;
	}
	if (cfg->psk && !cfg->psk_identity) {
		mqttc_usage_error(cfg, "--psk-identity required if --psk used.");
		return -1;
	}
	if (cfg->psk_identity && !cfg->psk) {
		mqttc_usage_error(cfg, "--psk required if --psk-identity used.");
		return -1;
	}
	if (cfg->psk && !is_hex(cfg->psk)) {
		mqttc_usage_error(cfg, "--psk must be an even number of hexadecimal digits (no 0x), "
				  "at most 256 bytes.");
		return -1;
	}
	if (cfg->psk && (cfg->cafile || cfg->capath)) {
		mqttc_usage_error(cfg, "Only one of --psk or --cafile/--capath may be used at once.");
		return -1;
	}
	if (cfg->tls_url && !cfg->cafile && !cfg->capath && !cfg->psk)
		cfg->os_certs = true;
	cfg->tls = cfg->tls_url || cfg->cafile || cfg->capath || cfg->psk || cfg->os_certs;
	if (cfg->certfile && !cfg->tls) {
		mqttc_usage_error(cfg, "--cert needs --cafile, --capath or --tls-use-os-certs.");
		return -1;
	}
	if (cfg->unix_path && cfg->ws) {
		mqttc_usage_error(cfg, "--unix and a ws:// or wss:// URL cannot be used together.");
		return -1;
	}
	if (!cfg->port) {
		if (cfg->ws)
			cfg->port = cfg->tls ? 443 : 80;
		else
			cfg->port = cfg->tls ? 8883 : 1883;
	}
	return 0;
}
