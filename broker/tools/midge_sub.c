/*
 * midge_sub.c: subscribe to topics on an MQTT broker and print the messages,
 * with mosquitto_sub's options, output formats (-v, -N, -F) and exit
 * statuses (see usage()). The connection, the shared options and the QoS
 * flows are mqttc.c's.
 */
#include "config.h"

#include "mqttc.h"
#include "topic.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOOL "midge_sub"

struct sub {
	struct mqttc_cfg cfg;
	const char **topics;
	size_t ntopics;
	const char **filter_out;
	size_t nfilter_out;
	const char **unsub;
	size_t nunsub;
	bool verbose;
	bool eol;
	const char *format;
	unsigned long long count;     /* -C */
	unsigned long long timeout;   /* -W, seconds */
	bool no_retain;               /* -R */
	bool retained_only;
	bool remove_retained;
	bool exit_after_sub;          /* -E */
	bool retain_as_published;
	double random_filter;         /* percent; 100 prints everything */
	unsigned long long printed;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void usage(void)
{
	printf("midge_sub is a simple MQTT client that subscribes to a set of topics and prints every message it receives.\n"
	       "midge_sub version " PACKAGE_VERSION ", with mosquitto_sub's options.\n"
	       "\n"
	       "Usage: midge_sub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}\n"
	       "                 [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]\n"
	       "                 [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained]\n"
	       "                 [-T filter_out] [-U topic ...] [-F format] [-W timeout_secs]\n"
	       "                 [-A bind_address] [--nodelay] [-i id] [-I id_prefix]\n"
	       "                 [-d] [-N] [--quiet] [-v] [-V mqttv5|mqttv311|mqttv31]\n"
	       "                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]\n"
	       "                 [{--cafile file | --capath dir} [--cert file] [--key file]\n"
	       "                   [--ciphers ciphers] [--insecure] [--tls-alpn protocol]\n"
	       "                   [--tls-version version] [--tls-use-os-certs]]\n"
	       "                 [--psk hex-key --psk-identity identity [--ciphers ciphers]]\n"
	       "                 [-D command identifier value]\n"
	       "       midge_sub --help\n"
	       "\n"
	       " -A : bind the outgoing socket to this host/ip address.\n"
	       " -c : disable clean session/enable persistent client mode (needs -i).\n"
	       " -C : disconnect and exit after receiving the 'msg_count' messages.\n"
	       " -d : enable debug messages (every packet sent and received).\n"
	       " -D : define an MQTT v5 property: -D command identifier value, or\n"
	       "      -D command user-property name value. command: connect, subscribe,\n"
	       "      unsubscribe, disconnect or will (publish is accepted and unused);\n"
	       "      identifier: the property's name with '-' between words\n"
	       "      (subscription-identifier, session-expiry-interval, receive-maximum,\n"
	       "      maximum-packet-size, topic-alias-maximum, request-response-information,\n"
	       "      request-problem-information, user-property, ...).\n"
	       "      Implies -V mqttv5 unless -V is given.\n"
	       " -E : exit once all subscriptions have been acknowledged by the broker.\n"
	       " -F : output format (see below).\n"
	       " -h : mqtt host to connect to. Defaults to localhost.\n"
	       " -i : id to use for this client. Defaults to an id the broker assigns\n"
	       "      (mosq- and random characters with MQTT 3.1).\n"
	       " -I : define the client id as id_prefix appended with the process id.\n"
	       " -k : keep alive in seconds for this client. Defaults to 60.\n"
	       " -L : specify user, password, hostname, port and topic as a URL in the form:\n"
	       "      mqtt(s)://[username[:password]@]host[:port]/topic, or\n"
	       "      ws(s)://[username[:password]@]host[:port][/path] for MQTT over WebSockets\n"
	       "      (path defaults to /mqtt; give the topics with -t).\n"
	       " -N : do not add an end of line character when printing the payload.\n"
	       " -p : network port to connect to. Defaults to 1883 for plain MQTT, 8883 for\n"
	       "      MQTT over TLS, 80 / 443 for WebSockets / over TLS.\n"
	       " -P : provide a password\n"
	       " -q : quality of service level to use for the subscription. Defaults to 0.\n"
	       " -R : do not print stale messages (those with retain set).\n"
	       " -t : mqtt topic to subscribe to. May be repeated multiple times.\n"
	       " -T : topic string to filter out of results. May be repeated.\n"
	       " -u : provide a username\n"
	       " -U : unsubscribe from a topic. May be repeated.\n"
	       " -v : print published messages verbosely (topic and payload).\n"
	       " -V : specify the version of the MQTT protocol to use when connecting.\n"
	       "      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.\n"
	       " -W : Specifies a timeout in seconds how long to process incoming MQTT messages.\n"
	       " -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5):\n"
	       "      0-4294967294 seconds, or -1 / 4294967295 for a session that does not\n"
	       "      expire. Defaults to -1 with -c, 0 without.\n"
	       " --help : display this message.\n"
	       " --nodelay : disable Nagle's algorithm.\n"
	       " --quiet : don't print error messages.\n"
	       " --random-filter : only print a percentage of received messages.\n"
	       " --retained-only : only handle messages with the retained flag set, and exit when the\n"
	       "                   first non-retained message is received.\n"
	       " --remove-retained : send a message to the server to clear any received retained messages\n"
	       "                     Use -T to filter out messages you do not want to be cleared.\n"
	       " --retain-as-published : subscribe with the retain as published option (MQTT v5).\n"
	       " --unix : connect to a broker through a unix domain socket.\n"
	       " --will-payload : payload for the client Will.\n"
	       " --will-qos : QoS level for the client Will.\n"
	       " --will-retain : if given, make the client Will retained.\n"
	       " --will-topic : the topic on which to publish the client Will.\n"
	       " --cafile : path to a file containing trusted CA certificates (enables TLS).\n"
	       " --capath : path to a directory containing trusted CA certificates (enables TLS).\n"
	       " --cert : client certificate for authentication, if required by server.\n"
	       " --key : client private key for authentication, if required by server.\n"
	       " --ciphers : openssl compatible list of TLS ciphers to support.\n"
	       " --tls-version : the lowest TLS version to use: tlsv1.3, tlsv1.2 or tlsv1.1.\n"
	       "                 Defaults to tlsv1.2.\n"
	       " --tls-alpn : the TLS ALPN protocol to ask for.\n"
	       " --tls-use-os-certs : trust the system's CA certificates (enables TLS).\n"
	       " --insecure : do not check that the server certificate hostname matches the\n"
	       "              remote hostname. Do not use this option in production.\n"
	       " --psk : pre-shared-key in hexadecimal (no leading 0x) to enable TLS-PSK mode.\n"
	       " --psk-identity : client identity string for TLS-PSK mode.\n"
	       "\n"
	       "Output format (-F), as mosquitto_sub's: %%t topic, %%p payload, %%q QoS,\n"
	       "%%r retained flag, %%m message id, %%l payload length, %%x / %%X payload in\n"
	       "hexadecimal, %%I ISO-8601 time, %%U Unix time with nanoseconds, %%j JSON of\n"
	       "the message, %%J the same with the payload as JSON, %%%% a %%; MQTT v5\n"
	       "properties %%C content-type, %%D correlation-data, %%E message-expiry-interval,\n"
	       "%%F payload-format-indicator, %%R response-topic, %%S subscription-identifier,\n"
	       "%%A topic-alias, %%P user properties (key:value ...). Flags: %%-10t left\n"
	       "aligned, %%08l zero padded, %%10.10t width and maximum width. @X is strftime's\n"
	       "%%X, @N nanoseconds, @@ a @. Escapes: \\\\ \\0 \\a \\e \\n \\r \\t \\v.\n"
	       "A newline follows each message unless -N.\n"
	       "\n"
	       "Exit status: 0 on success; the CONNACK code when the broker refuses the\n"
	       "connection; 27 when -W ran out; 7 when the connection is lost; 1 for other\n"
	       "errors.\n");
}

static bool add(const char ***list, size_t *n, const char *v)
{
	const char **l = realloc(*list, (*n + 1) * sizeof(**list));

	if (!l)
		return false;
	l[(*n)++] = v;
	*list = l;
	return true;
}

/* Options of midge_sub itself: 1 taken, 0 not ours, -1 error printed. */
static int sub_option(struct sub *s, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v = NULL;
	static const char *const with_value[] = {
		"-t", "--topic", "-T", "--filter-out", "-U", "--unsubscribe", "-C", "-W", "-F",
		"--random-filter",
	};

	for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
		if (strcmp(a, with_value[k]) == 0) {
			if (*i + 1 >= argc) {
				mqttc_usage_error(&s->cfg, "%s argument given but no value specified.", a);
				return -1;
			}
			v = argv[++*i];
			break;
		}
	}
	if (!strcmp(a, "-t") || !strcmp(a, "--topic")) {
		if (!add(&s->topics, &s->ntopics, v))
			return -1;
	} else if (!strcmp(a, "-T") || !strcmp(a, "--filter-out")) {
		if (!add(&s->filter_out, &s->nfilter_out, v))
			return -1;
	} else if (!strcmp(a, "-U") || !strcmp(a, "--unsubscribe")) {
		if (!add(&s->unsub, &s->nunsub, v))
			return -1;
	} else if (!strcmp(a, "-C")) {
		if (!mqttc_parse_uint(v, 1, ~0ull, &s->count)) {
			mqttc_usage_error(&s->cfg, "Invalid message count \"%s\".", v);
			return -1;
		}
	} else if (!strcmp(a, "-W")) {
		if (!mqttc_parse_uint(v, 1, 3600u * 24 * 365 * 10, &s->timeout)) {
			mqttc_usage_error(&s->cfg, "Invalid timeout \"%s\".", v);
			return -1;
		}
	} else if (!strcmp(a, "-F")) {
		s->format = v;
	} else if (!strcmp(a, "--random-filter")) {
		char *end;

		errno = 0;
		s->random_filter = strtod(v, &end);
		if (errno || *end || end == v || !(s->random_filter >= 0.1) || s->random_filter > 100.0) {
			mqttc_usage_error(&s->cfg, "Invalid --random-filter \"%s\" (0.1 to 100.0).", v);
			return -1;
		}
	} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
		s->verbose = true;
	} else if (!strcmp(a, "-N")) {
		s->eol = false;
	} else if (!strcmp(a, "-R")) {
		s->no_retain = true;
	} else if (!strcmp(a, "--retained-only")) {
		s->retained_only = true;
	} else if (!strcmp(a, "--remove-retained")) {
		s->remove_retained = true;
	} else if (!strcmp(a, "-E")) {
		s->exit_after_sub = true;
	} else if (!strcmp(a, "--retain-as-published")) {
		s->retain_as_published = true;
	} else {
		return 0;
	}
	return 1;
}

static bool filter_ok(const char *f)
{
	size_t n = strlen(f);

	return n > 0 && n <= 65535 && mqtt_utf8_valid((const uint8_t *)f, n) && topic_filter_valid(f, n);
}

/* ---- output ---- */

/* The time of the message being printed, read on first use. */
struct msg_time {
	bool have;
	struct timespec ts;
	struct tm tm;
};

static const struct tm *msg_tm(struct msg_time *t)
{
	if (!t->have) {
		clock_gettime(CLOCK_REALTIME, &t->ts);
		localtime_r(&t->ts.tv_sec, &t->tm);
		t->have = true;
	}
	return &t->tm;
}

static void put_padded(const char *s, size_t n, char align, char pad, int width, int precision)
{
	size_t shown = precision >= 0 && (size_t)precision < n ? (size_t)precision : n;
	int fill = width > (int)shown ? width - (int)shown : 0;

	if (align != '-')
		for (int i = 0; i < fill; i++)
			putchar(pad);
	fwrite(s, 1, shown, stdout);
	if (align == '-')
		for (int i = 0; i < fill; i++)
			putchar(' ');
}

static void put_int(unsigned long long v, char align, char pad, int width)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", v);

	put_padded(buf, (size_t)n, align, align == '-' ? ' ' : pad, width, -1);
}

static void put_hex(const uint8_t *p, size_t n, bool upper, char align, char pad, int width)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *d = upper ? up : lo;
	int fill = width > (int)(2 * n) ? width - (int)(2 * n) : 0;

	if (align != '-')
		for (int i = 0; i < fill; i++)
			putchar(pad);
	for (size_t i = 0; i < n; i++) {
		putchar(d[p[i] >> 4]);
		putchar(d[p[i] & 15]);
	}
	if (align == '-')
		for (int i = 0; i < fill; i++)
			putchar(' ');
}

static void json_string(const uint8_t *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];

		switch (ch) {
		case '"': fputs("\\\"", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		case '\b': fputs("\\b", stdout); break;
		case '\f': fputs("\\f", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\r': fputs("\\r", stdout); break;
		case '\t': fputs("\\t", stdout); break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				printf("\\u%04x", ch);
			else
				putchar(ch);
		}
	}
	putchar('"');
}

/* A small JSON syntax check (RFC 8259), for %J. */
static size_t json_ws(const uint8_t *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

static size_t json_value(const uint8_t *p, size_t n, size_t i, int depth);

static size_t json_str_end(const uint8_t *p, size_t n, size_t i)
{
	if (i >= n || p[i] != '"')
		return 0;
	for (i++; i < n; i++) {
		if (p[i] == '"')
			return i + 1;
		if (p[i] < 0x20)
			return 0;
		if (p[i] == '\\') {
			if (++i >= n)
				return 0;
			if (p[i] == 'u') {
				for (int k = 1; k <= 4; k++)
					if (i + (size_t)k >= n || !strchr("0123456789abcdefABCDEF", p[i + k]) ||
					    !p[i + k])
						return 0;
				i += 4;
			} else if (!strchr("\"\\/bfnrt", p[i]) || !p[i]) {
				return 0;
			}
		}
	}
	return 0;
}

static size_t json_number_end(const uint8_t *p, size_t n, size_t i)
{
	size_t start;

	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0') {
		i++;
	} else {
		start = i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	if (i < n && p[i] == '.') {
		start = ++i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		start = i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	return i;
}

static size_t json_value(const uint8_t *p, size_t n, size_t i, int depth)
{
	i = json_ws(p, n, i);
	if (i >= n || depth > 512)
		return 0;
	if (p[i] == '{' || p[i] == '[') {
		uint8_t close = p[i] == '{' ? '}' : ']';
		bool object = p[i] == '{';

		i = json_ws(p, n, i + 1);
		if (i < n && p[i] == close)
			return i + 1;
		for (;;) {
			if (object) {
				i = json_str_end(p, n, json_ws(p, n, i));
				if (!i)
					return 0;
				i = json_ws(p, n, i);
				if (i >= n || p[i] != ':')
					return 0;
				i++;
			}
			i = json_value(p, n, i, depth + 1);
			if (!i)
				return 0;
			i = json_ws(p, n, i);
			if (i < n && p[i] == ',') {
				i++;
				continue;
			}
			return i < n && p[i] == close ? i + 1 : 0;
		}
	}
	if (p[i] == '"')
		return json_str_end(p, n, i);
	if (n - i >= 4 && !memcmp(p + i, "true", 4))
		return i + 4;
	if (n - i >= 5 && !memcmp(p + i, "false", 5))
		return i + 5;
	if (n - i >= 4 && !memcmp(p + i, "null", 4))
		return i + 4;
	return json_number_end(p, n, i);
}

static bool json_valid(const uint8_t *p, size_t n)
{
	size_t end = json_value(p, n, 0, 0);

	return end && json_ws(p, n, end) == n;
}

static void json_message(const struct sub *s, const struct mqtt_publish *m, struct msg_time *t,
			 bool raw_payload)
{
	char tst[64], zone[8];
	const struct tm *tm = msg_tm(t);
	struct mqtt_prop prop;
	uint32_t pos = 0;
	bool any = false, users = false;

	strftime(tst, sizeof(tst), "%Y-%m-%dT%H:%M:%S", tm);
	strftime(zone, sizeof(zone), "%z", tm);
	printf("{\"tst\":\"%s.%06ld%s\",\"topic\":", tst, t->ts.tv_nsec / 1000, zone);
	json_string(m->topic.data, m->topic.len);
	printf(",\"qos\":%d,\"retain\":%d,\"payloadlen\":%u,", m->qos, m->retain ? 1 : 0,
	       m->payload.len);
	if (m->qos > 0)
		printf("\"mid\":%u,", m->packet_id);
	if (s->cfg.protocol == MQTT_PROTO_V5) {
		while (mqtt_props_next(&m->props, &pos, &prop)) {
			const char *name = mqtt_prop_name(prop.id);

			if (prop.id == MQTT_PROP_TOPIC_ALIAS)
				continue;
			if (prop.id == MQTT_PROP_USER_PROPERTY && users)
				continue;
			printf("%s", any ? "," : "\"properties\":{");
			any = true;
			switch (prop.id) {
			case MQTT_PROP_CONTENT_TYPE:
			case MQTT_PROP_RESPONSE_TOPIC:
			case MQTT_PROP_CORRELATION_DATA:
				printf("\"%s\":", name);
				json_string(prop.data.data, prop.data.len);
				break;
			case MQTT_PROP_USER_PROPERTY: {
				uint32_t p2 = 0;
				struct mqtt_prop u;
				bool first = true;

				users = true;
				fputs("\"user-properties\":{", stdout);
				while (mqtt_props_next(&m->props, &p2, &u)) {
					if (u.id != MQTT_PROP_USER_PROPERTY)
						continue;
					if (!first)
						putchar(',');
					first = false;
					json_string(u.data.data, u.data.len);
					putchar(':');
					json_string(u.data2.data, u.data2.len);
				}
				putchar('}');
				break;
			}
			default:
				printf("\"%s\":%u", name, prop.value);
				break;
			}
		}
		if (any)
			fputs("},", stdout);
	}
	fputs("\"payload\":", stdout);
	if (raw_payload) {
		fwrite(m->payload.data, 1, m->payload.len, stdout);
	} else if (mqtt_utf8_valid(m->payload.data, m->payload.len)) {
		json_string(m->payload.data, m->payload.len);
	} else {
		putchar('[');
		for (uint32_t i = 0; i < m->payload.len; i++)
			printf("%s%u", i ? "," : "", m->payload.data[i]);
		putchar(']');
	}
	putchar('}');
}

/* The first property `id` of the message: false when absent. */
static bool find_prop(const struct mqtt_publish *m, int id, struct mqtt_prop *out)
{
	uint32_t pos = 0;

	while (mqtt_props_next(&m->props, &pos, out))
		if (out->id == id)
			return true;
	return false;
}

static void put_prop(const struct mqtt_publish *m, int id, char conv, char align, char pad,
		     int width, int precision)
{
	struct mqtt_prop prop;

	if (!find_prop(m, id, &prop)) {
		/* Blank of the field's width, as mosquitto_sub. */
		for (int i = 0; i < width; i++)
			putchar(conv == 'C' || conv == 'R' ? ' ' : pad);
		return;
	}
	switch (mqtt_prop_type(id)) {
	case MQTT_PROP_TYPE_STRING:
		put_padded((const char *)prop.data.data, prop.data.len, align, ' ', width, precision);
		break;
	case MQTT_PROP_TYPE_BINARY:
		fwrite(prop.data.data, 1, prop.data.len, stdout);
		break;
	default:
		put_int(prop.value, align, pad, width);
		break;
	}
}

static void put_conversion(const struct sub *s, const struct mqtt_publish *m, struct msg_time *t,
			   char conv, char align, char pad, int width, int precision)
{
	char buf[128];
	struct mqtt_prop prop;
	uint32_t pos = 0;
	bool first = true;

	switch (conv) {
	case '%':
		putchar('%');
		break;
	case 't':
		put_padded((const char *)m->topic.data, m->topic.len, align, ' ', width, precision);
		break;
	case 'p':
		put_padded((const char *)m->payload.data, m->payload.len, align, pad, width, -1);
		break;
	case 'x':
	case 'X':
		put_hex(m->payload.data, m->payload.len, conv == 'X', align, pad, width);
		break;
	case 'q':
		putchar('0' + m->qos);
		break;
	case 'r':
		putchar(m->retain ? '1' : '0');
		break;
	case 'm':
		put_int(m->packet_id, align, pad, width);
		break;
	case 'l':
		put_int(m->payload.len, align, pad, width);
		break;
	case 'I':
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", msg_tm(t));
		put_padded(buf, strlen(buf), align, ' ', width, precision);
		break;
	case 'U':
		msg_tm(t);
		printf("%lld.%09ld", (long long)t->ts.tv_sec, t->ts.tv_nsec);
		break;
	case 'j':
		json_message(s, m, t, false);
		break;
	case 'J':
		if (!json_valid(m->payload.data, m->payload.len)) {
			fflush(stdout);
			mqttc_err(&s->cfg, "Error: Message payload is not valid JSON on topic %.*s.\n",
				  (int)m->topic.len, (const char *)m->topic.data);
			break;
		}
		json_message(s, m, t, true);
		break;
	case 'A':
		put_prop(m, MQTT_PROP_TOPIC_ALIAS, conv, align, pad, width, precision);
		break;
	case 'C':
		put_prop(m, MQTT_PROP_CONTENT_TYPE, conv, align, pad, width, precision);
		break;
	case 'D':
		put_prop(m, MQTT_PROP_CORRELATION_DATA, conv, align, pad, width, precision);
		break;
	case 'E':
		put_prop(m, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, conv, align, pad, width, precision);
		break;
	case 'F':
		put_prop(m, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, conv, align, pad, width, precision);
		break;
	case 'R':
		if (find_prop(m, MQTT_PROP_RESPONSE_TOPIC, &prop))
			put_prop(m, MQTT_PROP_RESPONSE_TOPIC, conv, align, pad, width, precision);
		break;
	case 'S':
		put_prop(m, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, conv, align, pad, width, precision);
		break;
	case 'P':
		while (mqtt_props_next(&m->props, &pos, &prop)) {
			if (prop.id != MQTT_PROP_USER_PROPERTY)
				continue;
			printf("%s%.*s:%.*s", first ? "" : " ", (int)prop.data.len,
			       (const char *)prop.data.data, (int)prop.data2.len,
			       (const char *)prop.data2.data);
			first = false;
		}
		break;
	default:
		break; /* unknown: nothing, as mosquitto_sub */
	}
}

static void print_formatted(const struct sub *s, const struct mqtt_publish *m)
{
	const char *f = s->format;
	struct msg_time t = {0};
	char buf[128], spec[3] = {'%', 0, 0};

	for (size_t i = 0; f[i]; i++) {
		char ch = f[i];

		if (ch == '%' && f[i + 1]) {
			char align = 0, pad = ' ';
			int width = 0, precision = -1;

			i++;
			if (f[i] == '-') {
				align = '-';
				i++;
			}
			if (f[i] == '0') {
				pad = '0';
				i++;
			}
			while (f[i] >= '0' && f[i] <= '9') {
				if (width < 100000)
					width = width * 10 + (f[i] - '0');
				i++;
			}
			if (f[i] == '.') {
				precision = 0;
				i++;
				while (f[i] >= '0' && f[i] <= '9') {
					if (precision < 100000)
						precision = precision * 10 + (f[i] - '0');
					i++;
				}
			}
			if (!f[i])
				break;
			put_conversion(s, m, &t, f[i], align, pad, width, precision);
		} else if (ch == '@' && f[i + 1]) {
			i++;
			if (f[i] == '@') {
				putchar('@');
			} else if (f[i] == 'N') {
				msg_tm(&t);
				printf("%09ld", t.ts.tv_nsec);
			} else {
				spec[1] = f[i];
				/* @X is strftime's %X, whatever X is: the format is built here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
				if (strftime(buf, sizeof(buf), spec, msg_tm(&t)) > 0)
					fputs(buf, stdout);
#pragma GCC diagnostic pop
			}
		} else if (ch == '\\' && f[i + 1]) {
			i++;
			switch (f[i]) {
			case '\\': putchar('\\'); break;
			case '0': putchar('\0'); break;
			case 'a': putchar('\a'); break;
			case 'e': putchar('\033'); break;
			case 'n': putchar('\n'); break;
			case 'r': putchar('\r'); break;
			case 't': putchar('\t'); break;
			case 'v': putchar('\v'); break;
			default: break;
			}
		} else {
			putchar(ch);
		}
	}
	if (s->eol)
		putchar('\n');
}

static void print_message(const struct sub *s, const struct mqtt_publish *m)
{
	if (s->random_filter < 100.0 && (double)(random() % 10000) >= s->random_filter * 100.0)
		return;
	if (s->format) {
		print_formatted(s, m);
	} else if (s->verbose) {
		if (m->payload.len) {
			printf("%.*s ", (int)m->topic.len, (const char *)m->topic.data);
			fwrite(m->payload.data, 1, m->payload.len, stdout);
			if (s->eol)
				putchar('\n');
		} else if (s->eol) {
			printf("%.*s (null)\n", (int)m->topic.len, (const char *)m->topic.data);
		}
	} else if (m->payload.len) {
		fwrite(m->payload.data, 1, m->payload.len, stdout);
		if (s->eol)
			putchar('\n');
	}
	fflush(stdout);
}

/* ---- the run ---- */

static struct mqtt_bytes props_of(const struct mqttc_cfg *cfg, enum mqttc_cmd cmd)
{
	return (struct mqtt_bytes){cfg->props[cmd].p, (uint32_t)cfg->props[cmd].len};
}

static bool filtered_out(const struct sub *s, const struct mqtt_bytes *topic)
{
	for (size_t i = 0; i < s->nfilter_out; i++)
		if (topic_matches(s->filter_out[i], strlen(s->filter_out[i]),
				  (const char *)topic->data, topic->len))
			return true;
	return false;
}

/*
 * One message. *processing turns false when the run is over (-C reached,
 * --retained-only saw a fresh message). Returns 0 or an exit status.
 */
static int on_message(struct sub *s, struct mqttc *c, const struct mqtt_publish *m,
		      bool *processing)
{
	if (!*processing)
		return 0;
	if (s->retained_only && !m->retain) {
		*processing = false;
		return 0;
	}
	if (filtered_out(s, &m->topic))
		return 0;
	if (s->remove_retained && m->retain) {
		/* As the man page says: even with -R. */
		int rc = mqttc_publish(c, (const char *)m->topic.data, "", 0, 1, true,
				       (struct mqtt_bytes){NULL, 0}, NULL);

		if (rc)
			return rc;
	}
	if (s->no_retain && m->retain)
		return 0;
	print_message(s, m);
	if (s->count && ++s->printed == s->count)
		*processing = false;
	return 0;
}

static int run(struct sub *s, struct mqttc *c)
{
	uint64_t deadline = s->timeout ? mqttc_now_ms() + s->timeout * 1000u : 0;
	uint8_t options = s->retain_as_published ? 0x08 : 0;
	bool processing = true;
	int rc;

	rc = mqttc_subscribe(c, s->topics, s->ntopics, s->cfg.qos, options,
			     props_of(&s->cfg, MQTTC_CMD_SUBSCRIBE), NULL);
	for (size_t i = 0; !rc && i < s->nunsub; i++)
		rc = mqttc_unsubscribe(c, s->unsub[i], props_of(&s->cfg, MQTTC_CMD_UNSUBSCRIBE), NULL);
	while (!rc) {
		struct mqttc_event ev;
		int timeout = -1;

		if (stop_signal) {
			/* As mosquitto_sub: an MQTT 5 client leaves its will to the broker. */
			uint8_t reason = s->cfg.protocol == MQTT_PROTO_V5 ? MQTT_RC_DISCONNECT_WITH_WILL : 0;

			return mqttc_disconnect(c, reason, props_of(&s->cfg, MQTTC_CMD_DISCONNECT));
		}
		if (!processing && mqttc_inflight_count(c) == 0)
			break;
		if (deadline) {
			uint64_t now = mqttc_now_ms();

			if (now >= deadline) {
				mqttc_err(&s->cfg, "Timed out\n");
				mqttc_disconnect(c, 0, props_of(&s->cfg, MQTTC_CMD_DISCONNECT));
				return MQTTC_EXIT_TIMEOUT;
			}
			timeout = (int)(deadline - now);
		}
		rc = mqttc_poll(c, timeout, &ev);
		if (rc)
			break;
		switch (ev.type) {
		case MQTTC_EV_MESSAGE:
			rc = on_message(s, c, &ev.msg, &processing);
			break;
		case MQTTC_EV_SUBACK: {
			bool any = false;

			if (s->cfg.debug && !s->cfg.quiet) {
				printf("Subscribed (mid: %u):", ev.mid);
				for (uint32_t i = 0; i < ev.codes.len; i++)
					printf("%s %u", i ? "," : "", ev.codes.data[i]);
				putchar('\n');
				fflush(stdout);
			}
			for (uint32_t i = 0; i < ev.codes.len; i++)
				any |= ev.codes.data[i] < 0x80;
			if (!any) {
				mqttc_err(&s->cfg, "All subscription requests were denied.\n");
				processing = false;
			}
			if (s->exit_after_sub)
				processing = false;
			break;
		}
		case MQTTC_EV_DISCONNECT:
			mqttc_err(&s->cfg, "Error: The broker disconnected us: %s.\n",
				  mqttc_reason_string(ev.reason));
			return MQTTC_EXIT_CONN_LOST;
		default:
			break;
		}
	}
	if (rc)
		return rc;
	return mqttc_disconnect(c, 0, props_of(&s->cfg, MQTTC_CMD_DISCONNECT));
}

static void sub_free(struct sub *s)
{
	free(s->topics);
	free(s->filter_out);
	free(s->unsub);
	mqttc_cfg_free(&s->cfg);
}

/* mosquitto_sub's check of -F: known conversions and escapes only. */
static int check_format(struct sub *s)
{
	const char *f = s->format;

	for (size_t i = 0; f[i]; i++) {
		if (f[i] == '%') {
			i++;
			if (f[i] == '-')
				i++;
			if (f[i] == '0')
				i++;
			while (f[i] >= '0' && f[i] <= '9')
				i++;
			if (f[i] == '.') {
				i++;
				while (f[i] >= '0' && f[i] <= '9')
					i++;
			}
			if (!f[i]) {
				mqttc_usage_error(&s->cfg, "Incomplete format specifier.");
				return -1;
			}
			if (!strchr("%ACDEFIjJlmPpqRrStUxX", f[i])) {
				mqttc_usage_error(&s->cfg, "Invalid format specifier '%c'.", f[i]);
				return -1;
			}
		} else if (f[i] == '@') {
			if (!f[++i]) {
				mqttc_usage_error(&s->cfg, "Incomplete format specifier.");
				return -1;
			}
		} else if (f[i] == '\\') {
			if (!f[++i]) {
				mqttc_usage_error(&s->cfg, "Incomplete escape specifier.");
				return -1;
			}
			if (!strchr("\\0aenrtv", f[i])) {
				mqttc_usage_error(&s->cfg, "Invalid escape specifier '%c'.", f[i]);
				return -1;
			}
		}
	}
	return 0;
}

static int check_filters(struct sub *s, const char **list, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		if (!filter_ok(list[i])) {
			mqttc_usage_error(&s->cfg, "Invalid %s topic '%s', are all '+' and '#' wildcards "
					  "correct?", what, list[i]);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sub s;
	struct mqttc c;
	struct sigaction sa;
	sigset_t block, orig;
	uint8_t connack = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	s.eol = true;
	s.random_filter = 100.0;
	mqttc_cfg_init(&s.cfg, TOOL, true);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			usage();
			sub_free(&s);
			return 1; /* as mosquitto_sub */
		}
		rc = sub_option(&s, argc, argv, &i);
		if (rc == 0)
			rc = mqttc_cfg_option(&s.cfg, argc, argv, &i);
		if (rc == 0) {
			mqttc_usage_error(&s.cfg, "Unknown option '%s'.", argv[i]);
			rc = -1;
		}
		if (rc < 0) {
			sub_free(&s);
			return 1;
		}
	}
	if (s.cfg.url_topic) {
		/* The URL's topic comes first, then the -t ones. */
		const char **l = realloc(s.topics, (s.ntopics + 1) * sizeof(*l));

		if (!l) {
			sub_free(&s);
			return 1;
		}
		memmove(l + 1, l, s.ntopics * sizeof(*l));
		l[0] = s.cfg.url_topic;
		s.topics = l;
		s.ntopics++;
	}
	if (mqttc_cfg_finish(&s.cfg) < 0) {
		sub_free(&s);
		return 1;
	}
	if (s.ntopics == 0) {
		mqttc_usage_error(&s.cfg, "You must specify a topic to subscribe to.");
		sub_free(&s);
		return 1;
	}
	if (check_filters(&s, s.topics, s.ntopics, "subscription") < 0 ||
	    check_filters(&s, s.filter_out, s.nfilter_out, "filter") < 0 ||
	    check_filters(&s, s.unsub, s.nunsub, "unsubscribe") < 0) {
		sub_free(&s);
		return 1;
	}
	if (s.format && check_format(&s) < 0) {
		sub_free(&s);
		return 1;
	}
	if (s.no_retain && s.retained_only) {
		mqttc_usage_error(&s.cfg, "Combining '-R' and '--retained-only' makes no sense.");
		sub_free(&s);
		return 1;
	}
	if (s.retain_as_published && s.cfg.protocol != MQTT_PROTO_V5) {
		mqttc_usage_error(&s.cfg, "--retain-as-published needs MQTT v5 (-V mqttv5).");
		sub_free(&s);
		return 1;
	}
	if (s.random_filter < 100.0)
		srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	rc = mqttc_open(&c, &s.cfg, &connack);
	if (rc == 0) {
		/* SIGINT / SIGTERM end the run cleanly; they only arrive while waiting. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigemptyset(&block);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
		sigprocmask(SIG_BLOCK, &block, &orig);
		c.poll_mask = &orig;
		rc = run(&s, &c);
	}
	mqttc_close(&c);
	sub_free(&s);
	return rc;
}
