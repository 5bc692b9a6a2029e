/*
 * authpool.h: password checks off the event loops.
 *
 * Owns a few threads that verify passwords against a loaded password file
 * (PBKDF2 with many iterations or argon2id costs milliseconds: never on a
 * loop thread), and a bounded cache of successful checks so a client that
 * reconnects is answered at once. The built-in password plugin answers
 * DELAYED; each finished check completes that plugin request the way any
 * plugin does (plugin_api_complete()).
 */
#ifndef MIDGE_AUTHPOOL_H
#define MIDGE_AUTHPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct passwd_db;
struct policy;

struct auth_job {
	struct auth_job *next;
	uint64_t request;          /* the plugin request the answer completes */
	struct policy *policy;     /* referenced: keeps db alive across a reload */
	const struct passwd_db *db;
	char *username;
	uint8_t *password;
	size_t pwlen;
	bool has_password;         /* false: the CONNECT carried none (never matches) */
	int result;                /* enum passwd_result, once done */
	uint64_t epoch;            /* cache epoch at submission */
};

struct authpool;

/* Starts n verification threads; NULL on failure. */
struct authpool *authpool_start(unsigned n);
/* Finishes queued jobs (their answers go to the workers' inboxes) and joins. */
void authpool_stop(struct authpool *p);

/*
 * Queues a check of password for username in db; the job copies both.
 * Returns 0, or -1 (out of memory / stopping) with nothing queued.
 */
int authpool_submit(struct authpool *p, uint64_t request, struct policy *pol,
		    const struct passwd_db *db, const char *username, const void *pw, size_t pwlen,
		    bool has_password);

/* Forgets every cached check (on reload: files may have changed). */
void authpool_cache_clear(struct authpool *p);

/* Whether this exact user name and password passed a check against db before. */
bool authpool_cached(struct authpool *p, const struct passwd_db *db, const char *username,
		     const void *pw, size_t pwlen);

#endif
