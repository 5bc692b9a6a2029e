/*
 * fuzz_broker.c: byte streams from four clients through a whole in-process
 * broker (broker.h): the read path, framing, every packet handler, sessions,
 * subscriptions, routing and delivery, retained messages, wills, topic
 * aliases, the ACL and the WebSocket transport.
 *
 * Each input gets a fresh broker (one worker, no persistence, logging off;
 * listener 0 plain MQTT with an ACL file, listener 1 WebSockets), built as
 * broker/main.c builds it: config_load of the YAML below, policy_build, a
 * plugin host, broker_init. Four clients are made with client_new() on
 * socketpair(2) descriptors, as the worker's accept would (clients 0-2 on
 * listener 0, client 3 on the WebSocket listener); the harness holds the
 * other ends. The input is a list of chunks:
 *     [h][n][n bytes]   h & 3: the client; h & 4: then close its end;
 *                       h & 8: do not run the loop after this chunk
 * Each chunk is written to the client, the loop runs (ev_run_once without
 * waiting) and everything the broker wrote is read back and checked: on the
 * MQTT listener it must be well-framed MQTT of server-to-client types that
 * decodes in the protocol the client's CONNECT chose, starting with CONNACK
 * (or AUTH) and within the client's Maximum Packet Size. At the end every end
 * is closed, the loop runs until the worker has freed every client, and the
 * broker is torn down with broker_fini (LeakSanitizer watches all of it).
 * MIDGE_FUZZ_VERBOSE=1 prints what each client received (for writing seeds).
 */
#include "config.h"

#include "broker.h"
#include "bridge.h"
#include "client.h"
#include "codec.h"
#include "conf.h"
#include "fuzz.h"
#include "hooks.h"
#include "log.h"
#include "plugin.h"
#include "policy.h"
#include "worker.h"

#include <errno.h>
#include <midge/mqtt.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#define NCLIENTS 4
#define WS_CLIENT 3
#define TURNS 3     /* loop turns after each chunk: read, route, flush */
#define END_TURNS 100

static const char acl_text[] =
	"# anonymous clients: everything but $SYS\n"
	"topic readwrite #\n"
	"user alice\n"
	"topic read sensors/#\n"
	"topic write cmd/+/set\n"
	"topic deny sensors/secret\n"
	"pattern readwrite clients/%c/#\n"
	"pattern read users/%u/inbox\n";

static const char yaml_fmt[] =
	"workers: 1\n"
	"persistence: false\n"
	"log_dest: none\n"
	"sys_interval: 0\n"
	"connection_messages: false\n"
	"max_inflight_messages: 4\n"
	"max_queued_messages: 8\n"
	"retain_available: true\n"
	"listeners:\n"
	"  - port: 0\n"
	"    bind_address: 127.0.0.1\n"
	"    allow_anonymous: true\n"
	"    acl_file: %s\n"
	"    max_topic_alias: 4\n"
	"  - port: 0\n"
	"    bind_address: 127.0.0.1\n"
	"    protocol: websockets\n"
	"    allow_anonymous: true\n";

static struct config cfg;
static struct fuzz_file acl_file, yaml_file;
static bool verbose; /* MIDGE_FUZZ_VERBOSE=1: what each client got, for writing seeds */

/* Loads the configuration once; every input builds its broker from it. */
static void setup(void)
{
	static bool done;
	struct config_diag diag = {0};
	char yaml[sizeof(yaml_fmt) + 64];

	if (done)
		return;
	done = true;
	verbose = getenv("MIDGE_FUZZ_VERBOSE") != NULL;
	log_init_default();
	fuzz_file_init(&acl_file, "midge-fuzz-acl");
	fuzz_file_write(&acl_file, acl_text, sizeof(acl_text) - 1);
	snprintf(yaml, sizeof(yaml), yaml_fmt, acl_file.path);
	fuzz_file_init(&yaml_file, "midge-fuzz-broker.yaml");
	fuzz_file_write(&yaml_file, yaml, strlen(yaml));
	config_init(&cfg);
	if (config_load(&cfg, yaml_file.path, CONFIG_FORMAT_YAML, &diag) != 0) {
		config_diag_print(&diag, stderr);
		abort();
	}
	config_diag_free(&diag);
	CHECK(cfg.nlisteners == 2);
	log_configure(&cfg, false);
}

/* What the harness knows of one client: its end, and what the broker sent it. */
struct peer {
	int fd;              /* the harness's end, -1 once closed */
	uint8_t *in;         /* what the client sent, until its first packet is whole */
	size_t nin;
	int proto;           /* from a CONNECT that decoded, else 0 */
	uint32_t max_packet; /* its Maximum Packet Size, 0 for none */
	uint8_t *out;        /* what the broker sent, not yet a whole packet */
	size_t nout;
	unsigned packets;    /* packets the broker sent */
	int index;
	bool disconnected;   /* the broker sent DISCONNECT */
};

/* Finds the protocol from the client's first packet, when it is a CONNECT. */
static void learn_protocol(struct peer *p, const uint8_t *data, size_t n)
{
	struct mqtt_frame f;
	struct mqtt_connect c;

	if (p->proto || p->nin > 65536)
		return;
	p->in = realloc(p->in, p->nin + n + 1);
	CHECK(p->in);
	memcpy(p->in + p->nin, data, n);
	p->nin += n;
	if (mqtt_frame_parse(p->in, p->nin, MQTT_MAX_REMAINING_LENGTH, &f) != MQTT_OK ||
	    f.header_len + (size_t)f.remaining > p->nin)
		return;
	if (f.type == MQTT_CONNECT &&
	    mqtt_decode_connect(p->in + f.header_len, f.remaining, f.flags, &c) == MQTT_CONNECT_OK) {
		p->proto = c.protocol;
		if (c.protocol == MQTT_PROTO_V5 && mqtt_props_has(&c.props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
			p->max_packet = c.props.max_packet_size;
	}
	p->nin = 65537; /* decided */
}

/* Checks one packet the broker sent to a client whose protocol is known. */
static void check_packet(struct peer *p, const struct mqtt_frame *f, const uint8_t *body)
{
	union {
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;
		struct mqtt_suback suback;
		struct mqtt_reason_packet reason;
	} u;
	int rc = MQTT_ERR_MALFORMED;

	if (verbose)
		fprintf(stderr, "client %d <- type %u, %u bytes\n", p->index, f->type, f->remaining);
	CHECK(!p->disconnected);
	if (p->packets++ == 0)
		CHECK(f->type == MQTT_CONNACK || f->type == MQTT_AUTH);
	if (p->max_packet)
		CHECK(f->header_len + (uint64_t)f->remaining <= p->max_packet);
	switch (f->type) {
	case MQTT_CONNACK:
		rc = mqtt_decode_connack(body, f->remaining, f->flags, p->proto, &u.connack);
		break;
	case MQTT_PUBLISH:
		rc = mqtt_decode_publish(body, f->remaining, f->flags, p->proto, &u.publish);
		if (rc == MQTT_OK && p->proto != MQTT_PROTO_V5)
			CHECK(u.publish.topic.len > 0);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		rc = mqtt_decode_ack(f->type, body, f->remaining, f->flags, p->proto, &u.ack);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		rc = mqtt_decode_suback(f->type, body, f->remaining, f->flags, p->proto, &u.suback);
		break;
	case MQTT_PINGRESP:
		rc = mqtt_decode_empty(f->remaining, f->flags);
		break;
	case MQTT_DISCONNECT:
		CHECK(p->proto == MQTT_PROTO_V5);
		rc = mqtt_decode_disconnect(body, f->remaining, f->flags, p->proto, &u.reason);
		p->disconnected = true;
		break;
	case MQTT_AUTH:
		rc = mqtt_decode_auth(body, f->remaining, f->flags, p->proto, &u.reason);
		break;
	default:
		/* CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, type 0: never from a server */
		break;
	}
	if (rc != MQTT_OK)
		fprintf(stderr, "broker sent a bad packet: type %u flags %x length %u to a v%d client\n",
			f->type, f->flags, f->remaining, p->proto);
	CHECK(rc == MQTT_OK);
	if (verbose && f->type == MQTT_CONNACK)
		fprintf(stderr, "client %d: CONNACK code %u\n", p->index, u.connack.code);
}

/* Reads what the broker wrote to client i and checks it packet by packet. */
static void drain(struct peer *p, bool mqtt)
{
	uint8_t buf[16384];
	ssize_t n;

	if (p->fd < 0)
		return;
	while ((n = read(p->fd, buf, sizeof(buf))) > 0) {
		if (!mqtt || !p->proto)
			continue;
		p->out = realloc(p->out, p->nout + (size_t)n);
		CHECK(p->out);
		memcpy(p->out + p->nout, buf, (size_t)n);
		p->nout += (size_t)n;
		size_t pos = 0;
		struct mqtt_frame f;
		for (;;) {
			int rc = mqtt_frame_parse(p->out + pos, p->nout - pos, MQTT_MAX_REMAINING_LENGTH, &f);
			CHECK(rc == MQTT_OK || rc == MQTT_ERR_INCOMPLETE);
			if (rc != MQTT_OK || f.header_len + (size_t)f.remaining > p->nout - pos)
				break;
			check_packet(p, &f, p->out + pos + f.header_len);
			pos += f.header_len + f.remaining;
		}
		memmove(p->out, p->out + pos, p->nout - pos);
		p->nout -= pos;
	}
	CHECK(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET);
}

static void write_all(struct peer *p, const uint8_t *data, size_t n)
{
	while (n > 0 && p->fd >= 0) {
		ssize_t k = write(p->fd, data, n);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* the broker stopped reading (paused): the rest is dropped */
		if (k < 0)
			return; /* the broker closed the connection */
		data += k;
		n -= (size_t)k;
	}
}

static struct client *add_client(struct broker *b, struct worker *w, struct listener *l, int *mine)
{
	int sv[2];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	/* What the worker's accept does around client_new(). */
	atomic_fetch_add(&l->connections, 1);
	atomic_fetch_add(&b->connections, 1);
	STAT_ADD(w->stats.sockets, 1);
	struct client *c = client_new(w, l, sv[0], (struct sockaddr *)&addr);
	CHECK(c);
	*mine = sv[1];
	return c;
}

static void turns(struct worker *w, int n)
{
	for (int i = 0; i < n; i++)
		CHECK(ev_run_once(w->loop, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_diag diag = {0};
	struct broker b;
	struct peer peers[NCLIENTS] = {0};
	struct sigaction old[3];
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};

	setup();
	struct plugin_host *plugins = plugin_host_new(1);
	CHECK(plugins);
	struct policy *policy = policy_build(&cfg, plugins, false, &diag);
	CHECK(policy);
	config_diag_free(&diag);
	plugin_host_commit(plugins, policy->plugins, policy->nplugins, false);
	/* broker_init takes SIGINT/SIGTERM/SIGHUP; libFuzzer keeps them. */
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], NULL, &old[i]);
	CHECK(broker_init(&b, &cfg, policy, plugins, NULL, 0, false) == 0);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);

	/* What worker_run() does around its loop. */
	struct worker *w = &b.workers[0];
	worker_set_current(w);
	plugin_host_worker_start(b.plugins, w);
	bridges_worker_start(w);
	for (int i = 0; i < NCLIENTS; i++) {
		peers[i].index = i;
		add_client(&b, w, &b.listeners[i == WS_CLIENT ? 1 : 0], &peers[i].fd);
	}

	for (size_t pos = 0; pos + 2 <= size;) {
		uint8_t h = data[pos];
		size_t n = data[pos + 1];
		struct peer *p = &peers[h & 3];

		pos += 2;
		if (n > size - pos)
			n = size - pos;
		if ((h & 3) != WS_CLIENT)
			learn_protocol(p, data + pos, n);
		write_all(p, data + pos, n);
		pos += n;
		if ((h & 4) && p->fd >= 0) {
			close(p->fd);
			p->fd = -1;
		}
		if (!(h & 8)) {
			turns(w, TURNS);
			for (int i = 0; i < NCLIENTS; i++)
				drain(&peers[i], i != WS_CLIENT);
		}
	}

	/* Every client goes; the worker frees them at its next turns. */
	turns(w, TURNS);
	for (int i = 0; i < NCLIENTS; i++) {
		drain(&peers[i], i != WS_CLIENT);
		if (peers[i].fd >= 0)
			close(peers[i].fd);
		free(peers[i].in);
		free(peers[i].out);
	}
	int t = 0;
	while ((w->clients || w->dead_head) && t++ < END_TURNS)
		turns(w, 1);
	CHECK(!w->clients && !w->dead_head);

	bridges_worker_stop(w);
	hooks_timers_free(w);
	plugin_host_worker_stop(b.plugins, w);
	worker_set_current(NULL);
	broker_fini(&b);
	return 0;
}
