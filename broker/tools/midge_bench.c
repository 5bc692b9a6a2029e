/*
 * midge_bench.c: a load generator for MQTT brokers (midge, mosquitto, ...):
 * the command line and the report. One thread drives every connection from
 * one epoll instance (bench_net.c); the scenarios are in bench_flow.c
 * (messages) and bench_conn.c (connections). Packets are encoded and framed
 * by the broker's own codec. --pid adds the broker's CPU time and memory
 * from /proc.
 */
#include "config.h"

#include "bench.h"

#include <midge/mqtt.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS 100000u
#define MAX_COUNT 1000000000ull
#define MAX_SIZE (64u * 1024u * 1024u)
#define MIN_SIZE 16u /* publisher index, sequence number, send time */

static const char *const scenario_names[] = {
	[SC_FANIN] = "fanin",
	[SC_FANOUT] = "fanout",
	[SC_PAIRS] = "pairs",
	[SC_CONNECT] = "connect",
	[SC_IDLE] = "idle",
};

static void usage(FILE *f)
{
	fputs("Usage: midge_bench fanin|fanout|pairs|connect|idle [options]\n"
	      "\n"
	      "A load generator for MQTT brokers on this machine: one thread, epoll,\n"
	      "thousands of connections. Every run is bounded by its counts and a time cap.\n"
	      "\n"
	      "Scenarios:\n"
	      "  fanin    --publishers N (100) each on bench/in/<i> -> 1 subscriber on\n"
	      "           bench/in/#\n"
	      "  fanout   1 publisher on bench/out -> --subscribers N (1000) on bench/out\n"
	      "  pairs    --pairs N (500): publisher i -> subscriber i on bench/pair/<i>\n"
	      "  connect  --connections N (10000), --concurrency C (100) at a time: TCP\n"
	      "           connect, CONNECT (clean), CONNACK, DISCONNECT. Connections/s and\n"
	      "           CONNACK latency.\n"
	      "  idle     opens --connections N (10000) (--subscribe: one subscription each\n"
	      "           to its own topic), waits for the broker's RSS to settle, reports\n"
	      "           the RSS per connection (needs --pid), closes them.\n"
	      "\n"
	      "Message scenarios (fanin, fanout, pairs):\n"
	      "  -q QOS           0, 1 or 2, of publishing and subscribing (default 0)\n"
	      "  -s BYTES         payload size, at least 16 (default 16): publisher index,\n"
	      "                   sequence number, send time\n"
	      "  -n N             messages published in all (default 100000)\n"
	      "  --retain         publish retained messages\n"
	      "  -V 311|5         MQTT version (default 311)\n"
	      "  --window W       closed loop (default): each publisher has at most W\n"
	      "                   messages sent and not yet delivered to all its subscribers,\n"
	      "                   and at QoS 1/2 at most W unacknowledged (default 32)\n"
	      "  --rate R         open loop: R messages/s in all, publishers in turn;\n"
	      "                   latency counts from when each message was due\n"
	      "  --drain S        after publishing, wait at most S s for deliveries (default\n"
	      "                   10; QoS 0 stops after 1 s without one)\n"
	      "  --persistent-sub subscribers keep their session (clean session 0)\n"
	      "  Reports sent, delivered, expected deliveries, lost, duplicate and\n"
	      "  out-of-order messages (each subscriber follows each publisher's sequence),\n"
	      "  delivered/s and latency p50/p99/p99.9. Loss at QoS 0 is reported; any\n"
	      "  loss, duplicate or reordering at QoS 1/2 fails the run.\n"
	      "\n"
	      "Common options:\n"
	      "  -h HOST          broker address, loopback only (default 127.0.0.1)\n"
	      "  -p PORT          broker port (default 1883)\n"
	      "  --sub-port PORT  message scenarios: subscribers connect to this port, of\n"
	      "                   another node of a midge cluster (cross-node throughput\n"
	      "                   and latency); publishing starts 1 s after they subscribed\n"
	      "  --connections N  connect, idle: connections (default 10000)\n"
	      "  --concurrency C  connection attempts in flight (default 100)\n"
	      "  --subscribe      idle: one subscription per connection\n"
	      "  -u USER, -P PASSWORD  credentials in CONNECT\n"
	      "  --duration S     time cap of the measured phase (default 10; message\n"
	      "                   scenarios stop publishing then and drain)\n"
	      "  --timeout S      nothing from the broker for S s fails the run (default 5)\n"
	      "  --pid PID        the broker's process: its CPU time (utime + stime) over the\n"
	      "                   measured phase and rates per broker CPU-second; idle: VmRSS\n"
	      "  --json           one JSON object line instead of the text report\n"
	      "  --help           this help\n"
	      "\n"
	      "JSON keys: scenario, version, ok, error, wall_s, broker_cpu_s, bench_cpu_s\n"
	      "  (midge_bench's own CPU time over the measured phase), then\n"
	      "  message scenarios: qos, size, publishers, subscribers, window, rate, sent,\n"
	      "    delivered, expected, lost, duplicates, reordered, stale, acked,\n"
	      "    delivered_per_s, delivered_per_cpu_s, lat_p50_us, lat_p99_us, lat_p999_us\n"
	      "  connect: connections, refused, failed, connections_per_s,\n"
	      "    connections_per_cpu_s, lat_p50_us, lat_p99_us\n"
	      "  idle: connections, subscribe, rss_before, rss_after, rss_per_conn\n"
	      "Unmeasured values are null.\n"
	      "\n"
	      "Broker settings: give the broker unlimited queues (max_queued_messages 0)\n"
	      "and in-flight windows (mosquitto: max_inflight_messages 0), or QoS 1/2 runs\n"
	      "lose messages to its limits.\n"
	      "\n"
	      "Exit status: 0 when the run completed; 1 on bad options, connection errors,\n"
	      "refusals, a broker that stops answering, QoS 1/2 loss, duplicates or\n"
	      "reordering. The report is printed anyway, then the error on stderr.\n",
	      f);
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_secs(const char *s, double max, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v > 0) || v > max)
		return false;
	*out = v;
	return true;
}

__attribute__((format(printf, 1, 2)))
static _Noreturn void bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("midge_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry midge_bench --help.\n", stderr);
	exit(1);
}

static unsigned clients_value(const char *name, const char *val)
{
	uint64_t v;

	if (!parse_u64(val, 1, MAX_CLIENTS, &v))
		bad_usage("bad %s '%s' (1 to %u)", name, val, MAX_CLIENTS);
	return (unsigned)v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	bool have_scenario = false;
	unsigned publishers = 100, subscribers = 1000, pairs = 500;

	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = "1883";
	o->connections = 10000;
	o->concurrency = 100;
	o->count = 100000;
	o->size = MIN_SIZE;
	o->proto = MQTT_PROTO_V311;
	o->window = 32;
	o->duration = 10;
	o->drain = 10;
	o->timeout = 5;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char name[32];
		uint64_t v = 0;

		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (a[0] != '-') {
			bool found = false;

			if (have_scenario)
				bad_usage("unexpected argument '%s'", a);
			for (unsigned k = 0; k < sizeof(scenario_names) / sizeof(*scenario_names); k++) {
				if (strcmp(a, scenario_names[k]) == 0) {
					o->scenario = (enum scenario)k;
					found = true;
				}
			}
			if (!found)
				bad_usage("unknown scenario '%s' (fanin, fanout, pairs, connect or idle)",
					  a);
			have_scenario = true;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--retain") == 0) {
			o->retain = true;
			continue;
		}
		if (strcmp(a, "--subscribe") == 0) {
			o->subscribe = true;
			continue;
		}
		if (strcmp(a, "--persistent-sub") == 0) {
			o->persistent_sub = true;
			continue;
		}
		/* Every other option takes a value: "-x V", "--xx V" or "--xx=V". */
		eq = a[1] == '-' ? strchr(a, '=') : NULL;
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", a);
			if (i + 1 >= argc)
				bad_usage("option %s needs a value", a);
			val = argv[++i];
		}
		if (strcmp(name, "-h") == 0 || strcmp(name, "--host") == 0) {
			o->host = val;
		} else if (strcmp(name, "-p") == 0 || strcmp(name, "--port") == 0) {
			if (!parse_u64(val, 1, 65535, &v))
				bad_usage("bad port '%s'", val);
			o->port = val;
		} else if (strcmp(name, "--sub-port") == 0) {
			if (!parse_u64(val, 1, 65535, &v))
				bad_usage("bad port '%s'", val);
			o->sub_port = val;
		} else if (strcmp(name, "--publishers") == 0) {
			publishers = clients_value(name, val);
		} else if (strcmp(name, "--subscribers") == 0) {
			subscribers = clients_value(name, val);
		} else if (strcmp(name, "--pairs") == 0) {
			pairs = clients_value(name, val);
		} else if (strcmp(name, "--connections") == 0) {
			o->connections = clients_value(name, val);
		} else if (strcmp(name, "--concurrency") == 0) {
			o->concurrency = clients_value(name, val);
		} else if (strcmp(name, "-n") == 0 || strcmp(name, "--count") == 0) {
			if (!parse_u64(val, 1, MAX_COUNT, &v))
				bad_usage("bad -n '%s' (1 to %llu)", val, (unsigned long long)MAX_COUNT);
			o->count = v;
		} else if (strcmp(name, "-s") == 0 || strcmp(name, "--size") == 0) {
			if (!parse_u64(val, MIN_SIZE, MAX_SIZE, &v))
				bad_usage("bad -s '%s' (%u to %u)", val, MIN_SIZE, MAX_SIZE);
			o->size = (uint32_t)v;
		} else if (strcmp(name, "-q") == 0 || strcmp(name, "--qos") == 0) {
			if (!parse_u64(val, 0, 2, &v))
				bad_usage("bad -q '%s' (0, 1 or 2)", val);
			o->qos = (uint8_t)v;
		} else if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
			if (strcmp(val, "311") == 0 || strcmp(val, "mqttv311") == 0)
				o->proto = MQTT_PROTO_V311;
			else if (strcmp(val, "5") == 0 || strcmp(val, "mqttv5") == 0)
				o->proto = MQTT_PROTO_V5;
			else
				bad_usage("bad -V '%s' (311 or 5)", val);
		} else if (strcmp(name, "--window") == 0) {
			if (!parse_u64(val, 1, 65534, &v))
				bad_usage("bad --window '%s' (1 to 65534)", val);
			o->window = (unsigned)v;
		} else if (strcmp(name, "--rate") == 0) {
			if (!parse_secs(val, 1e9, &o->rate))
				bad_usage("bad --rate '%s' (messages per second)", val);
		} else if (strcmp(name, "--duration") == 0) {
			if (!parse_secs(val, 86400, &o->duration))
				bad_usage("bad --duration '%s' (seconds, up to 86400)", val);
		} else if (strcmp(name, "--drain") == 0) {
			if (!parse_secs(val, 86400, &o->drain))
				bad_usage("bad --drain '%s' (seconds, up to 86400)", val);
		} else if (strcmp(name, "--timeout") == 0) {
			if (!parse_secs(val, 86400, &o->timeout))
				bad_usage("bad --timeout '%s' (seconds, up to 86400)", val);
		} else if (strcmp(name, "--pid") == 0) {
			if (!parse_u64(val, 1, INT_MAX, &v))
				bad_usage("bad --pid '%s'", val);
			o->pid = (long)v;
		} else if (strcmp(name, "-u") == 0 || strcmp(name, "--username") == 0) {
			o->user = val;
		} else if (strcmp(name, "-P") == 0 || strcmp(name, "--password") == 0) {
			o->password = val;
		} else {
			bad_usage("unknown option '%s'", name);
		}
	}
	if (!have_scenario)
		bad_usage("a scenario is needed: fanin, fanout, pairs, connect or idle");
	switch (o->scenario) {
	case SC_FANIN:
		o->publishers = publishers;
		o->subscribers = 1;
		break;
	case SC_FANOUT:
		o->publishers = 1;
		o->subscribers = subscribers;
		break;
	case SC_PAIRS:
		o->publishers = o->subscribers = pairs;
		break;
	case SC_IDLE:
		if (!o->pid)
			bad_usage("idle needs --pid: it reads the broker's memory");
		break;
	case SC_CONNECT:
		break;
	}
	if ((o->user && strlen(o->user) > 65535) || (o->password && strlen(o->password) > 65535))
		bad_usage("user name or password longer than 65535 bytes");
	if (o->password && !o->user && o->proto != MQTT_PROTO_V5)
		bad_usage("-P needs -u (MQTT 3.1.1 has no password without a user name)");
}

/* ---- Report ---- */

static void json_num(const char *key, double v, int decimals, bool valid)
{
	if (valid)
		printf(",\"%s\":%.*f", key, decimals, v);
	else
		printf(",\"%s\":null", key);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned)(unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static bool is_flow(const struct opts *o)
{
	return o->scenario == SC_FANIN || o->scenario == SC_FANOUT || o->scenario == SC_PAIRS;
}

static void report_json(const struct opts *o, const struct result *r)
{
	bool cpu = r->broker_cpu_s >= 0, lat = r->lat.n > 0;
	double count = (double)(is_flow(o) ? r->delivered : r->connections);

	printf("{\"scenario\":\"%s\",\"version\":\"%s\",\"ok\":%s,\"error\":",
	       scenario_names[o->scenario], o->proto == MQTT_PROTO_V5 ? "5" : "311",
	       r->ok ? "true" : "false");
	if (r->ok)
		printf("null");
	else
		json_str(r->err);
	json_num("wall_s", r->wall_s, 6, true);
	json_num("broker_cpu_s", r->broker_cpu_s, 4, cpu);
	json_num("bench_cpu_s", r->bench_cpu_s, 4, o->scenario != SC_IDLE);
	if (is_flow(o)) {
		json_num("qos", o->qos, 0, true);
		json_num("size", o->size, 0, true);
		json_num("publishers", o->publishers, 0, true);
		json_num("subscribers", o->subscribers, 0, true);
		json_num("window", o->window, 0, true);
		json_num("rate", o->rate, 1, o->rate > 0);
		json_num("sent", (double)r->sent, 0, true);
		json_num("delivered", (double)r->delivered, 0, true);
		json_num("expected", (double)r->expected, 0, true);
		json_num("lost", (double)r->lost, 0, true);
		json_num("duplicates", (double)r->duplicates, 0, true);
		json_num("reordered", (double)r->reordered, 0, true);
		json_num("stale", (double)r->stale, 0, true);
		json_num("acked", (double)r->acked, 0, true);
		json_num("delivered_per_s", r->wall_s > 0 ? count / r->wall_s : 0, 1, true);
		json_num("delivered_per_cpu_s", cpu && r->broker_cpu_s > 0 ? count / r->broker_cpu_s : 0,
			 1, cpu && r->broker_cpu_s > 0);
		json_num("lat_p50_us", hist_percentile_us(&r->lat, 50), 1, lat);
		json_num("lat_p99_us", hist_percentile_us(&r->lat, 99), 1, lat);
		json_num("lat_p999_us", hist_percentile_us(&r->lat, 99.9), 1, lat);
	} else if (o->scenario == SC_CONNECT) {
		json_num("connections", (double)r->connections, 0, true);
		json_num("refused", (double)r->refused, 0, true);
		json_num("failed", (double)r->failed, 0, true);
		json_num("concurrency", o->concurrency, 0, true);
		json_num("connections_per_s", r->wall_s > 0 ? count / r->wall_s : 0, 1, true);
		json_num("connections_per_cpu_s", cpu && r->broker_cpu_s > 0 ? count / r->broker_cpu_s : 0,
			 1, cpu && r->broker_cpu_s > 0);
		json_num("lat_p50_us", hist_percentile_us(&r->lat, 50), 1, lat);
		json_num("lat_p99_us", hist_percentile_us(&r->lat, 99), 1, lat);
	} else {
		bool rss = r->rss_after > 0 && r->connections > 0;

		json_num("connections", (double)r->connections, 0, true);
		printf(",\"subscribe\":%s", o->subscribe ? "true" : "false");
		json_num("rss_before", (double)r->rss_before, 0, r->rss_before > 0);
		json_num("rss_after", (double)r->rss_after, 0, r->rss_after > 0);
		json_num("rss_per_conn", rss ? ((double)r->rss_after - (double)r->rss_before) /
			 (double)r->connections : 0, 1, rss);
	}
	printf("}\n");
}

static void report_text(const struct opts *o, const struct result *r)
{
	bool cpu = r->broker_cpu_s >= 0;
	double count = (double)(is_flow(o) ? r->delivered : r->connections);

	printf("midge_bench %s: %s port %s%s%s, MQTT %s\n", scenario_names[o->scenario], o->host,
	       o->port, o->sub_port ? ", subscribers on port " : "", o->sub_port ? o->sub_port : "",
	       o->proto == MQTT_PROTO_V5 ? "5" : "3.1.1");
	if (is_flow(o)) {
		printf("  %u publishers -> %u subscribers, QoS %u, %u-byte payloads%s, ",
		       o->publishers, o->subscribers, o->qos, o->size, o->retain ? ", retained" : "");
		if (o->rate > 0)
			printf("open loop at %.0f msgs/s\n", o->rate);
		else
			printf("closed loop, window %u\n", o->window);
		printf("  sent         %" PRIu64 "%s\n", r->sent,
		       o->qos ? "" : " (written to the sockets)");
		if (o->qos)
			printf("  acked        %" PRIu64 "\n", r->acked);
		printf("  delivered    %" PRIu64 " of %" PRIu64 " expected in %.3f s: %.0f msgs/s\n",
		       r->delivered, r->expected, r->wall_s, r->wall_s > 0 ? count / r->wall_s : 0);
		printf("  lost %" PRIu64 ", duplicates %" PRIu64 ", out of order %" PRIu64,
		       r->lost, r->duplicates, r->reordered);
		if (r->stale)
			printf(", %" PRIu64 " not of this run (retained)", r->stale);
		printf("\n");
		if (r->lat.n)
			printf("  latency      p50 %.1f us, p99 %.1f us, p99.9 %.1f us%s\n",
			       hist_percentile_us(&r->lat, 50), hist_percentile_us(&r->lat, 99),
			       hist_percentile_us(&r->lat, 99.9),
			       o->rate > 0 ? " (from when each message was due)" : "");
	} else if (o->scenario == SC_CONNECT) {
		printf("  connections  %" PRIu64 " in %.3f s: %.0f /s (%u at a time)\n",
		       r->connections, r->wall_s, r->wall_s > 0 ? count / r->wall_s : 0,
		       o->concurrency);
		if (r->refused || r->failed)
			printf("  refused      %" PRIu64 ", closed before CONNACK %" PRIu64 "\n",
			       r->refused, r->failed);
		if (r->lat.n)
			printf("  latency      p50 %.1f us, p99 %.1f us (CONNECT to CONNACK)\n",
			       hist_percentile_us(&r->lat, 50), hist_percentile_us(&r->lat, 99));
	} else {
		printf("  connections  %" PRIu64 "%s, set up in %.3f s\n", r->connections,
		       o->subscribe ? " with one subscription each" : "", r->wall_s);
		if (r->rss_after && r->connections)
			printf("  broker RSS   %.1f MB before, %.1f MB after: %.0f bytes per "
			       "connection\n", (double)r->rss_before / 1048576.0,
			       (double)r->rss_after / 1048576.0,
			       ((double)r->rss_after - (double)r->rss_before) /
			       (double)r->connections);
	}
	if (cpu && o->scenario != SC_IDLE)
		printf("  broker CPU   %.3f s: %.0f %s per broker CPU-second\n", r->broker_cpu_s,
		       r->broker_cpu_s > 0 ? count / r->broker_cpu_s : 0,
		       is_flow(o) ? "deliveries" : "connections");
	if (o->scenario != SC_IDLE)
		printf("  midge_bench  %.2f s CPU over the measured phase%s\n", r->bench_cpu_s,
		       r->bench_cpu_s > 0.9 * r->wall_s && r->wall_s > 0 ?
		       ": the generator may be the limit" : "");
}

int main(int argc, char **argv)
{
	struct opts o;
	struct result r;
	unsigned long nofile;

	parse_args(argc, argv, &o);
	/* Thousands of connections: take every file descriptor we are allowed. */
	nofile = raise_nofile();
	{
		unsigned long need = o.scenario == SC_CONNECT ? o.concurrency :
				     o.scenario == SC_IDLE ? o.connections :
				     (unsigned long)o.publishers + o.subscribers;

		if (nofile && need + 16 > nofile) {
			fprintf(stderr, "midge_bench: %lu connections need more open files than the "
				"limit of %lu (ulimit -Hn)\n", need, nofile);
			return 1;
		}
	}
	memset(&r, 0, sizeof(r));
	r.broker_cpu_s = -1;
	hist_init(&r.lat);
	switch (o.scenario) {
	case SC_CONNECT:
		run_connect(&o, &r);
		break;
	case SC_IDLE:
		run_idle(&o, &r);
		break;
	default:
		run_flow(&o, &r);
		if (r.ok && o.qos > 0 && (r.lost || r.duplicates || r.reordered)) {
			r.ok = false;
			snprintf(r.err, sizeof(r.err), "QoS %u: %" PRIu64 " lost, %" PRIu64
				 " duplicates, %" PRIu64 " out of order", o.qos, r.lost,
				 r.duplicates, r.reordered);
		}
		break;
	}
	if (o.json)
		report_json(&o, &r);
	else
		report_text(&o, &r);
	fflush(stdout);
	hist_free(&r.lat);
	if (!r.ok) {
		fprintf(stderr, "midge_bench: %s\n", r.err);
		return 1;
	}
	return 0;
}
