/*
 * authpool.c: verification threads and the cache of good checks (see
 * authpool.h). The cache stores, per (password file, user name), an HMAC of
 * the password under a key drawn at start-up, never the password itself;
 * it only remembers successes, so a wrong password is checked in full every
 * time.
 */
#include "config.h"

#include "authpool.h"

#include "alloc.h"
#include "passwd.h"
#include "plugin.h"
#include "policy.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#define CACHE_SLOTS 4096
#define DIGEST_LEN 32

struct cache_slot {
	const struct passwd_db *db;
	uint32_t user_hash;
	char *username;
	uint8_t digest[DIGEST_LEN];
};

struct authpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct auth_job *head;
	struct auth_job *tail;
	bool stopping;
	pthread_t *threads;
	unsigned nthreads;
	uint8_t key[32];
	pthread_mutex_t cache_lock;
	uint64_t epoch;              /* bumped by a clear; older jobs do not fill the cache */
	struct cache_slot cache[CACHE_SLOTS];
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void digest(const struct authpool *p, const void *pw, size_t pwlen, uint8_t out[DIGEST_LEN])
{
	unsigned int len = DIGEST_LEN;

	HMAC(EVP_sha256(), p->key, sizeof(p->key), pw, pwlen, out, &len);
}

static struct cache_slot *slot_for(struct authpool *p, const struct passwd_db *db, uint32_t h)
{
	return &p->cache[(h ^ (uint32_t)((uintptr_t)db >> 4)) % CACHE_SLOTS];
}

bool authpool_cached(struct authpool *p, const struct passwd_db *db, const char *username,
		     const void *pw, size_t pwlen)
{
	uint32_t h = name_hash(username);
	uint8_t d[DIGEST_LEN];
	bool hit;

	digest(p, pw, pwlen, d);
	pthread_mutex_lock(&p->cache_lock);
	struct cache_slot *s = slot_for(p, db, h);
	/* db pointers are unique while a policy lives; a reload brings new ones. */
	hit = s->db == db && s->user_hash == h && s->username && strcmp(s->username, username) == 0 &&
	      CRYPTO_memcmp(s->digest, d, DIGEST_LEN) == 0;
	pthread_mutex_unlock(&p->cache_lock);
	OPENSSL_cleanse(d, sizeof(d));
	return hit;
}

static void cache_put(struct authpool *p, const struct auth_job *job)
{
	uint32_t h = name_hash(job->username);
	char *name = mem_strdup(job->username);
	char *old;

	if (!name)
		return;
	pthread_mutex_lock(&p->cache_lock);
	if (job->epoch != p->epoch) {
		/* Checked against a file a reload replaced: its pointer may be reused. */
		pthread_mutex_unlock(&p->cache_lock);
		mem_free(name);
		return;
	}
	struct cache_slot *s = slot_for(p, job->db, h);
	old = s->username;
	s->db = job->db;
	s->user_hash = h;
	s->username = name;
	digest(p, job->password, job->pwlen, s->digest);
	pthread_mutex_unlock(&p->cache_lock);
	mem_free(old);
}

void authpool_cache_clear(struct authpool *p)
{
	pthread_mutex_lock(&p->cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		mem_free(p->cache[i].username);
		p->cache[i] = (struct cache_slot){0};
	}
	p->epoch++;
	pthread_mutex_unlock(&p->cache_lock);
}

static void auth_job_free(struct auth_job *job)
{
	if (!job)
		return;
	if (job->password) {
		OPENSSL_cleanse(job->password, job->pwlen);
		mem_free(job->password);
	}
	mem_free(job->username);
	policy_unref(job->policy);
	mem_free(job);
}

static void *thread_main(void *arg)
{
	struct authpool *p = arg;

	for (;;) {
		struct auth_job *job;

		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		job = p->head;
		if (job) {
			p->head = job->next;
			if (!p->head)
				p->tail = NULL;
		}
		pthread_mutex_unlock(&p->lock);
		if (!job)
			return NULL; /* stopping, and nothing left */
		job->result = passwd_check(job->db, job->username,
					   job->has_password ? job->password : NULL, job->pwlen);
		if (job->result == PASSWD_OK)
			cache_put(p, job);
		(void)plugin_api_complete(job->request,
					  job->result == PASSWD_OK ? MIDGE_ALLOW : MIDGE_DENY, NULL);
		auth_job_free(job);
	}
}

struct authpool *authpool_start(unsigned n)
{
	struct authpool *p = mem_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_mutex_init(&p->cache_lock, NULL);
	if (RAND_bytes(p->key, sizeof(p->key)) != 1)
		goto fail;
	p->threads = mem_calloc(n, sizeof(*p->threads));
	if (!p->threads)
		goto fail;
	for (; p->nthreads < n; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, thread_main, p) != 0)
			goto fail;
	return p;
fail:
	authpool_stop(p);
	return NULL;
}

void authpool_stop(struct authpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	mem_free(p->threads);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		mem_free(p->cache[i].username);
	OPENSSL_cleanse(p->key, sizeof(p->key));
	OPENSSL_cleanse(p->cache, sizeof(p->cache));
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->cache_lock);
	mem_free(p);
}

int authpool_submit(struct authpool *p, uint64_t request, struct policy *pol,
		    const struct passwd_db *db, const char *username, const void *pw, size_t pwlen,
		    bool has_password)
{
	struct auth_job *job = mem_calloc(1, sizeof(*job));

	if (!job)
		return -1;
	job->request = request;
	job->policy = policy_ref(pol);
	job->db = db;
	job->username = mem_strdup(username);
	job->password = mem_malloc(pwlen ? pwlen : 1);
	job->pwlen = pwlen;
	job->has_password = has_password;
	if (!job->username || !job->password) {
		auth_job_free(job);
		return -1;
	}
	if (pwlen)
		memcpy(job->password, pw, pwlen);
	pthread_mutex_lock(&p->cache_lock);
	job->epoch = p->epoch;
	pthread_mutex_unlock(&p->cache_lock);
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		auth_job_free(job);
		return -1;
	}
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}
