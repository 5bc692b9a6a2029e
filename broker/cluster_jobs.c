/*
 * cluster_jobs.c: the cluster's own thread. It sets up what the cluster keeps
 * in JetStream (streams, key-value buckets, consumers) as soon as NATS and
 * JetStream answer, retrying each step until it succeeds, and runs the
 * cluster's periodic work every CLUSTER_TICK_MS. Nothing here runs on a
 * worker: a slow or absent JetStream never stalls MQTT clients.
 *
 * A part of the cluster adds itself to `jobs` below: a setup step (run
 * until it returns 0, in table order, only while connected) and/or a tick.
 */
#include "config.h"

#include "cluster_int.h"
#include "cluster_wills.h"

#include <errno.h>
#include <time.h>

#include "log.h"

struct cluster_job {
	const char *what;                               /* for the log */
	int (*setup)(struct cluster *c);                /* 0 when done; NULL: none */
	void (*tick)(struct cluster *c, int64_t now_ms); /* NULL: none */
};

int cluster_bucket_open(struct cluster *c, kvStore **kv, kvConfig *kc)
{
	if (*kv)
		return 0;
	/* Another node made it already (the usual case): binding is one request. */
	if (js_KeyValue(kv, c->js, kc->Bucket) == NATS_OK)
		return 0;
	if (js_CreateKeyValue(kv, c->js, kc) == NATS_OK)
		return 0;
	/* Made meanwhile by another node, maybe with other limits: used as it is. */
	return js_KeyValue(kv, c->js, kc->Bucket) == NATS_OK ? 0 : -1;
}

natsStatus cluster_kv_purge(struct cluster *c, const char *subj, const void *data, size_t len)
{
	natsMsg *msg = NULL;
	natsStatus s = natsMsg_Create(&msg, subj, NULL, (const char *)data, (int)len);

	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "KV-Operation", "PURGE");
	/* The marker replaces every earlier value of the key in the stream. */
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Nats-Rollup", "sub");
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(c->nc, msg);
	natsMsg_Destroy(msg);
	return s;
}

static const struct cluster_job jobs[] = {
	{"the QoS 1/2 message stream", cluster_qos_stream_setup, cluster_qos_tick},
	{"session registry", cluster_session_setup, NULL},
	{"retained messages", cluster_retain_setup, NULL},
	{"wills registry and node heartbeats", cluster_nodes_setup, cluster_nodes_tick},
	{NULL, NULL, NULL},
};

/* The table ends with an empty entry (so it may be empty). */
static const size_t NJOBS = sizeof(jobs) / sizeof(jobs[0]) - 1;

int64_t cluster_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_setup(struct cluster *c, bool *done, int64_t now, int64_t *next_warn)
{
	for (size_t i = 0; i < NJOBS; i++) {
		if (done[i] || !jobs[i].setup)
			continue;
		if (!atomic_load(&c->connected))
			return;
		if (jobs[i].setup(c) == 0) {
			done[i] = true;
			log_info("Cluster: %s ready.", jobs[i].what);
			continue;
		}
		if (now >= *next_warn) {
			log_warn("Warning: cluster: %s not ready yet (%s); retrying.", jobs[i].what,
				 nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "JetStream not answering");
			*next_warn = now + 10000;
		}
		return; /* later steps may depend on this one */
	}
	atomic_store(&c->setup_done, true);
}

static bool stop_asked(struct cluster *c)
{
	pthread_mutex_lock(&c->jobs_lock);
	bool stop = c->jobs_stop;
	pthread_mutex_unlock(&c->jobs_lock);
	return stop;
}

static void *jobs_main(void *arg)
{
	struct cluster *c = arg;
	bool done[sizeof(jobs) / sizeof(jobs[0])] = {false};
	int64_t next_warn = cluster_now_ms() + 5000;

	pthread_mutex_lock(&c->jobs_lock);
	while (!c->jobs_stop) {
		pthread_mutex_unlock(&c->jobs_lock);
		int64_t now = cluster_now_ms();
		if (!atomic_load(&c->setup_done))
			run_setup(c, done, now, &next_warn);
		/* Ticks may wait on JetStream (seconds while it elects a leader): a stop is
		 * looked for between them. */
		for (size_t i = 0; i < NJOBS && !stop_asked(c); i++)
			if (jobs[i].tick && (done[i] || !jobs[i].setup))
				jobs[i].tick(c, now);
		pthread_mutex_lock(&c->jobs_lock);
		if (c->jobs_stop)
			break;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += CLUSTER_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		int rc = 0;
		while (!c->jobs_stop && !c->jobs_kick && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&c->jobs_cond, &c->jobs_lock, &until);
		c->jobs_kick = false;
	}
	pthread_mutex_unlock(&c->jobs_lock);
	return NULL;
}

void cluster_jobs_kick(struct cluster *c)
{
	pthread_mutex_lock(&c->jobs_lock);
	c->jobs_kick = true;
	pthread_cond_signal(&c->jobs_cond);
	pthread_mutex_unlock(&c->jobs_lock);
}

int cluster_jobs_start(struct cluster *c)
{
	if (pthread_create(&c->jobs_thread, NULL, jobs_main, c) != 0) {
		log_err("Error: cluster: unable to start its thread.");
		return -1;
	}
	c->jobs_running = true;
	return 0;
}

void cluster_jobs_stop(struct cluster *c)
{
	if (!c->jobs_running)
		return;
	pthread_mutex_lock(&c->jobs_lock);
	c->jobs_stop = true;
	pthread_cond_signal(&c->jobs_cond);
	pthread_mutex_unlock(&c->jobs_lock);
	pthread_join(c->jobs_thread, NULL);
	c->jobs_running = false;
}
