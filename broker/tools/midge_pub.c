/*
 * midge_pub.c: publish messages to an MQTT broker, with mosquitto_pub's
 * options, defaults, output and exit statuses (see usage()). The connection,
 * the shared options and the QoS flows are mqttc.c's.
 */
#include "config.h"

#include "mqttc.h"
#include "topic.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL "midge_pub"
#define LINE_READ 65536u

enum mode { MODE_NONE, MODE_MESSAGE, MODE_FILE, MODE_LINES, MODE_NULL, MODE_STDIN };

struct pub {
	struct mqttc_cfg cfg;
	const char *topic;
	enum mode mode;
	const char *message;
	const char *file;
	bool retain;
	unsigned long long repeat;
	double repeat_delay;
	unsigned long long max_inflight;
	struct mqttc_buf payload; /* -f / -s */
	struct mqttc_buf lines;   /* -l: bytes read, not yet published */
	size_t lines_off;
};

static void usage(void)
{
	printf("midge_pub is a simple MQTT client that publishes a message on a single topic and exits.\n"
	       "midge_pub version " PACKAGE_VERSION ", with mosquitto_pub's options.\n"
	       "\n"
	       "Usage: midge_pub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}\n"
	       "                 {-f file | -l | -n | -m message | -s}\n"
	       "                 [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time]\n"
	       "                 [-x session-expiry] [-A bind_address] [--nodelay]\n"
	       "                 [-i id] [-I id_prefix] [-d] [--quiet] [-M max_inflight]\n"
	       "                 [-V mqttv5|mqttv311|mqttv31]\n"
	       "                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]\n"
	       "                 [{--cafile file | --capath dir} [--cert file] [--key file]\n"
	       "                   [--ciphers ciphers] [--insecure] [--tls-alpn protocol]\n"
	       "                   [--tls-version version] [--tls-use-os-certs]]\n"
	       "                 [--psk hex-key --psk-identity identity [--ciphers ciphers]]\n"
	       "                 [-D command identifier value]\n"
	       "       midge_pub --help\n"
	       "\n"
	       " -A : bind the outgoing socket to this host/ip address.\n"
	       " -c : disable clean session/enable persistent client mode (needs -i).\n"
	       " -d : enable debug messages (every packet sent and received).\n"
	       " -D : define an MQTT v5 property: -D command identifier value, or\n"
	       "      -D command user-property name value. command: connect, publish,\n"
	       "      subscribe, unsubscribe, disconnect or will; identifier: the property's\n"
	       "      name with '-' between words (content-type, message-expiry-interval,\n"
	       "      payload-format-indicator, response-topic, correlation-data, topic-alias,\n"
	       "      session-expiry-interval, receive-maximum, maximum-packet-size,\n"
	       "      topic-alias-maximum, request-response-information,\n"
	       "      request-problem-information, will-delay-interval, user-property, ...).\n"
	       "      Implies -V mqttv5 unless -V is given.\n"
	       " -f : send the contents of a file as the message.\n"
	       " -h : mqtt host to connect to. Defaults to localhost.\n"
	       " -i : id to use for this client. Defaults to an id the broker assigns\n"
	       "      (mosq- and random characters with MQTT 3.1).\n"
	       " -I : define the client id as id_prefix appended with the process id.\n"
	       " -k : keep alive in seconds for this client. Defaults to 60.\n"
	       " -L : specify user, password, hostname, port and topic as a URL in the form:\n"
	       "      mqtt(s)://[username[:password]@]host[:port]/topic, or\n"
	       "      ws(s)://[username[:password]@]host[:port][/path] for MQTT over WebSockets\n"
	       "      (path defaults to /mqtt; give the topic with -t).\n"
	       " -l : read messages from stdin, sending a separate message for each line.\n"
	       " -m : message payload to send.\n"
	       " -M : the maximum inflight messages for QoS 1/2 (default 20).\n"
	       " -n : send a null (zero length) message.\n"
	       " -p : network port to connect to. Defaults to 1883 for plain MQTT, 8883 for\n"
	       "      MQTT over TLS, 80 / 443 for WebSockets / over TLS.\n"
	       " -P : provide a password\n"
	       " -q : quality of service level to use for all messages. Defaults to 0.\n"
	       " -r : message should be retained.\n"
	       " -s : read message from stdin, sending the entire input as a message.\n"
	       " -t : mqtt topic to publish to.\n"
	       " -u : provide a username\n"
	       " -V : specify the version of the MQTT protocol to use when connecting.\n"
	       "      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.\n"
	       " -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5):\n"
	       "      0-4294967294 seconds, or -1 / 4294967295 for a session that does not\n"
	       "      expire. Defaults to -1 with -c, 0 without.\n"
	       " --help : display this message.\n"
	       " --nodelay : disable Nagle's algorithm.\n"
	       " --quiet : don't print error messages.\n"
	       " --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.\n"
	       " --repeat-delay : if using --repeat, wait time seconds between publishes.\n"
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
	       "Exit status: 0 on success; the CONNACK code when the broker refuses the\n"
	       "connection; 7 when the connection is lost; 1 for other errors.\n");
}

static int only_one_mode(struct pub *p, enum mode m)
{
	if (p->mode != MODE_NONE) {
		mqttc_usage_error(&p->cfg, "Only one type of message can be sent at once.");
		return -1;
	}
	p->mode = m;
	return 1;
}

/* Options of midge_pub itself: 1 taken, 0 not ours, -1 error printed. */
static int pub_option(struct pub *p, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	bool needs_value = !strcmp(a, "-t") || !strcmp(a, "--topic") || !strcmp(a, "-m") ||
			   !strcmp(a, "--message") || !strcmp(a, "-f") || !strcmp(a, "--file") ||
			   !strcmp(a, "--repeat") || !strcmp(a, "--repeat-delay") || !strcmp(a, "-M");
	const char *v = NULL;

	if (needs_value) {
		if (*i + 1 >= argc) {
			mqttc_usage_error(&p->cfg, "%s argument given but no value specified.", a);
			return -1;
		}
		v = argv[++*i];
	}
	if (!strcmp(a, "-t") || !strcmp(a, "--topic")) {
		p->topic = v;
	} else if (!strcmp(a, "-m") || !strcmp(a, "--message")) {
		p->message = v;
		return only_one_mode(p, MODE_MESSAGE);
	} else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
		p->file = v;
		return only_one_mode(p, MODE_FILE);
	} else if (!strcmp(a, "-l") || !strcmp(a, "--stdin-line")) {
		return only_one_mode(p, MODE_LINES);
	} else if (!strcmp(a, "-n") || !strcmp(a, "--null-message")) {
		return only_one_mode(p, MODE_NULL);
	} else if (!strcmp(a, "-s") || !strcmp(a, "--stdin-file")) {
		return only_one_mode(p, MODE_STDIN);
	} else if (!strcmp(a, "-r") || !strcmp(a, "--retain")) {
		p->retain = true;
	} else if (!strcmp(a, "--repeat")) {
		if (!mqttc_parse_uint(v, 1, 1000000000ull, &p->repeat)) {
			mqttc_usage_error(&p->cfg, "--repeat argument must be >0.");
			return -1;
		}
	} else if (!strcmp(a, "--repeat-delay")) {
		char *end;

		errno = 0;
		p->repeat_delay = strtod(v, &end);
		if (errno || *end || end == v || !(p->repeat_delay >= 0) || p->repeat_delay > 86400.0 * 365) {
			mqttc_usage_error(&p->cfg, "--repeat-delay argument must be >=0.0.");
			return -1;
		}
	} else if (!strcmp(a, "-M")) {
		if (!mqttc_parse_uint(v, 1, 65535, &p->max_inflight)) {
			mqttc_usage_error(&p->cfg, "Maximum inflight messages must be greater than 0.");
			return -1;
		}
	} else {
		return 0;
	}
	return 1;
}

static bool read_all(FILE *f, struct mqttc_buf *b)
{
	for (;;) {
		size_t n;

		if (b->cap - b->len < 65536) {
			size_t cap = b->cap ? b->cap * 2 : 65536;
			uint8_t *q = realloc(b->p, cap);

			if (!q)
				return false;
			b->p = q;
			b->cap = cap;
		}
		n = fread(b->p + b->len, 1, b->cap - b->len, f);
		b->len += n;
		if (n == 0)
			return !ferror(f);
	}
}

static int load_payload(struct pub *p)
{
	if (p->mode == MODE_FILE) {
		FILE *f = fopen(p->file, "rb");
		bool ok;

		if (!f) {
			fprintf(stderr, "Error: Unable to open file \"%s\".\n", p->file);
			fprintf(stderr, "Error loading input file \"%s\".\n", p->file);
			return -1;
		}
		ok = read_all(f, &p->payload);
		fclose(f);
		if (!ok) {
			fprintf(stderr, "Error loading input file \"%s\".\n", p->file);
			return -1;
		}
	} else if (p->mode == MODE_STDIN) {
		if (!read_all(stdin, &p->payload)) {
			fputs("Error loading input from stdin.\n", stderr);
			return -1;
		}
	}
	if (p->payload.len > MQTT_MAX_REMAINING_LENGTH) {
		fputs("Error: Message too large.\n", stderr);
		return -1;
	}
	return 0;
}

static struct mqtt_bytes props_of(const struct mqttc_cfg *cfg, enum mqttc_cmd cmd)
{
	return (struct mqtt_bytes){cfg->props[cmd].p, (uint32_t)cfg->props[cmd].len};
}

/* Handles what the broker sends while we publish; 0, or an exit status. */
static int on_event(struct pub *p, const struct mqttc_event *ev)
{
	if (ev->type == MQTTC_EV_PUBLISHED && ev->reason >= 0x80)
		mqttc_err(&p->cfg, "Warning: Publish %u failed: %s.\n", ev->mid,
			  mqttc_reason_string(ev->reason));
	if (ev->type == MQTTC_EV_DISCONNECT) {
		mqttc_err(&p->cfg, "Error: The broker disconnected us: %s.\n",
			  mqttc_reason_string(ev->reason));
		return MQTTC_EXIT_CONN_LOST;
	}
	return 0;
}

/*
 * Serves the connection until nothing is in flight and, with a deadline
 * (mqttc_now_ms() time, 0 for none), until the deadline.
 */
static int drain(struct pub *p, struct mqttc *c, uint64_t deadline)
{
	for (;;) {
		struct mqttc_event ev;
		int timeout = -1, rc;

		if (deadline) {
			uint64_t now = mqttc_now_ms();

			if (now >= deadline)
				deadline = 0;
			else
				timeout = (int)(deadline - now);
		}
		if (!deadline && mqttc_inflight_count(c) == 0)
			return 0;
		rc = mqttc_poll(c, timeout, &ev);
		if (rc)
			return rc;
		rc = on_event(p, &ev);
		if (rc)
			return rc;
	}
}

/* -m, -f, -s, -n: one message, --repeat times. */
static int publish_single(struct pub *p, struct mqttc *c)
{
	const void *data = p->payload.p;
	uint32_t len = (uint32_t)p->payload.len;
	unsigned long long n = p->repeat ? p->repeat : 1;

	if (p->mode == MODE_MESSAGE) {
		data = p->message;
		len = (uint32_t)strlen(p->message);
	} else if (p->mode == MODE_NULL) {
		data = "";
		len = 0;
	}
	for (unsigned long long i = 0; i < n; i++) {
		int rc = mqttc_publish(c, p->topic, data ? data : "", len, p->cfg.qos, p->retain,
				       props_of(&p->cfg, MQTTC_CMD_PUBLISH), NULL);

		if (rc)
			return rc;
		/* The next one after this one is delivered, then the delay. */
		rc = drain(p, c, 0);
		if (rc)
			return rc;
		if (i + 1 < n && p->repeat_delay > 0) {
			rc = drain(p, c, mqttc_now_ms() + (uint64_t)llround(p->repeat_delay * 1000));
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* The next line of p->lines ("\n" removed), or at the end of input the rest. */
static bool next_line(struct pub *p, bool eof, const uint8_t **line, uint32_t *len)
{
	uint8_t *start = p->lines.p + p->lines_off;
	size_t avail = p->lines.len - p->lines_off;
	uint8_t *nl = avail ? memchr(start, '\n', avail) : NULL;

	if (nl) {
		*line = start;
		*len = (uint32_t)(nl - start);
		p->lines_off += (size_t)(nl - start) + 1;
		return true;
	}
	if (eof && avail) {
		*line = start;
		*len = (uint32_t)avail;
		p->lines_off += avail;
		return true;
	}
	return false;
}

/* -l: a message per line of stdin, up to -M of them in flight. */
static int publish_lines(struct pub *p, struct mqttc *c)
{
	size_t window = mqttc_inflight_limit(c, p->max_inflight ? p->max_inflight : 20);
	bool eof = false;

	for (;;) {
		const uint8_t *line;
		uint32_t len;
		struct mqttc_event ev;
		bool want_input;
		int rc;

		while ((p->cfg.qos == 0 || mqttc_inflight_count(c) < window) &&
		       next_line(p, eof, &line, &len)) {
			if (len > MQTT_MAX_REMAINING_LENGTH - 65536u) {
				mqttc_err(&p->cfg, "Error: Line too long.\n");
				return MQTTC_EXIT_ERROR;
			}
			rc = mqttc_publish(c, p->topic, line, len, p->cfg.qos, p->retain,
					   props_of(&p->cfg, MQTTC_CMD_PUBLISH), NULL);
			if (rc)
				return rc;
		}
		if (p->lines_off == p->lines.len) {
			p->lines.len = p->lines_off = 0;
		} else if (p->lines_off > 0 && p->lines_off >= p->lines.len / 2) {
			memmove(p->lines.p, p->lines.p + p->lines_off, p->lines.len - p->lines_off);
			p->lines.len -= p->lines_off;
			p->lines_off = 0;
		}
		if (eof && p->lines.len == p->lines_off && mqttc_inflight_count(c) == 0)
			return 0;
		want_input = !eof && (p->cfg.qos == 0 || mqttc_inflight_count(c) < window);
		c->watch_fd = want_input ? STDIN_FILENO : -1;
		rc = mqttc_poll(c, -1, &ev);
		c->watch_fd = -1;
		if (rc)
			return rc;
		rc = on_event(p, &ev);
		if (rc)
			return rc;
		if (c->watch_ready) {
			ssize_t n;

			if (p->lines.cap - p->lines.len < LINE_READ) {
				size_t cap = p->lines.cap ? p->lines.cap * 2 : LINE_READ * 2;
				uint8_t *q = realloc(p->lines.p, cap);

				if (!q) {
					fputs("Error: Out of memory.\n", stderr);
					return MQTTC_EXIT_ERROR;
				}
				p->lines.p = q;
				p->lines.cap = cap;
			}
			n = read(STDIN_FILENO, p->lines.p + p->lines.len, p->lines.cap - p->lines.len);
			if (n > 0)
				p->lines.len += (size_t)n;
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				eof = true;
		}
	}
}

static void pub_free(struct pub *p)
{
	free(p->payload.p);
	free(p->lines.p);
	mqttc_cfg_free(&p->cfg);
}

int main(int argc, char **argv)
{
	struct pub p;
	struct mqttc c;
	uint8_t connack = 0;
	int rc;

	memset(&p, 0, sizeof(p));
	mqttc_cfg_init(&p.cfg, TOOL, false);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			usage();
			pub_free(&p);
			return 1; /* as mosquitto_pub */
		}
		rc = pub_option(&p, argc, argv, &i);
		if (rc == 0)
			rc = mqttc_cfg_option(&p.cfg, argc, argv, &i);
		if (rc == 0) {
			mqttc_usage_error(&p.cfg, "Unknown option '%s'.", argv[i]);
			rc = -1;
		}
		if (rc < 0) {
			pub_free(&p);
			return 1;
		}
	}
	if (!p.topic)
		p.topic = p.cfg.url_topic;
	if (mqttc_cfg_finish(&p.cfg) < 0) {
		pub_free(&p);
		return 1;
	}
	if (!p.topic || p.mode == MODE_NONE) {
		mqttc_usage_error(&p.cfg, "Both topic and message must be supplied.");
		pub_free(&p);
		return 1;
	}
	if (!*p.topic || strlen(p.topic) > 65535 ||
	    !mqtt_utf8_valid((const uint8_t *)p.topic, strlen(p.topic)) ||
	    !topic_name_valid(p.topic, strlen(p.topic))) {
		mqttc_usage_error(&p.cfg, "Invalid publish topic '%s', does it contain '+' or '#'?", p.topic);
		pub_free(&p);
		return 1;
	}
	if (load_payload(&p) < 0) {
		pub_free(&p);
		return 1;
	}

	rc = mqttc_open(&c, &p.cfg, &connack);
	if (rc == 0) {
		rc = p.mode == MODE_LINES ? publish_lines(&p, &c) : publish_single(&p, &c);
		if (rc == 0)
			rc = mqttc_disconnect(&c, 0, props_of(&p.cfg, MQTTC_CMD_DISCONNECT));
	} else if (connack) {
		mqttc_err(&p.cfg, "Error: The connection was refused.\n");
	}
	mqttc_close(&c);
	pub_free(&p);
	return rc;
}
