/*
 * persist_lmdb.c: opening and closing the durable store: the LMDB
 * environment and its named databases, the header record (format version),
 * a check of the data file before LMDB maps it, what `recover` does with a
 * damaged store, syncing, and error sentences. The data file is checked
 * (persist_check.c) before LMDB maps it.
 */
#include "config.h"

#include "persist_int.h"
#include "persist_codec.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define HEADER_KEY "header"

int persist_fail(struct persist *p, int code, const char *fmt, ...)
{
	va_list ap;
	if (p) {
		va_start(ap, fmt);
		vsnprintf(p->err, sizeof(p->err), fmt, ap);
		va_end(ap);
	}
	return code;
}

int persist_mdb_fail(struct persist *p, int rc, const char *what)
{
	int code = rc == MDB_MAP_FULL ? PERSIST_EFULL :
		   rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_PAGE_NOTFOUND ||
				   rc == MDB_INCOMPATIBLE ? PERSIST_EDAMAGED :
		   rc == ENOMEM ? PERSIST_ENOMEM : PERSIST_EIO;
	return persist_fail(p, code, "%s: %s", what, mdb_strerror(rc));
}

const char *persist_error(const struct persist *p)
{
	return p->err;
}

size_t persist_max_key(const struct persist *p)
{
	size_t n = (size_t)mdb_env_get_maxkeysize(p->env);
	return n < PERSIST_KEY_MAX ? n : PERSIST_KEY_MAX;
}

uint64_t persist_undecodable(const struct persist *p)
{
	return atomic_load_explicit(&p->undecodable, memory_order_relaxed);
}

uint64_t persist_recovered(const struct persist *p)
{
	return p->recovered;
}

int persist_sync(struct persist *p)
{
	int rc = mdb_env_sync(p->env, 1);
	return rc == 0 ? 0 : persist_mdb_fail(p, rc, "syncing");
}

/* Moves a damaged data file aside (recover); the lock file goes too. */
static int move_aside(const char *dir, char *err, size_t errlen)
{
	char from[4096], to[4200];
	snprintf(from, sizeof(from), "%s/data.mdb", dir);
	snprintf(to, sizeof(to), "%s/data.mdb.damaged-%lld", dir, (long long)time(NULL));
	if (rename(from, to) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot move the damaged store %s aside: %s", from, strerror(errno));
		return PERSIST_EIO;
	}
	snprintf(from, sizeof(from), "%s/lock.mdb", dir);
	unlink(from);
	return 0;
}

static int env_open(struct persist *p, const char *dir, const struct persist_options *o)
{
	unsigned flags = MDB_NOTLS;
	int rc;

	if (o->sync == PERSIST_SYNC_BATCH)
		flags |= MDB_NOMETASYNC;
	else if (o->sync == PERSIST_SYNC_PERIODIC)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_create(&p->env)) != 0)
		return rc;
	if ((rc = mdb_env_set_maxdbs(p->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(p->env, o->map_size ? o->map_size : DEFAULT_MAP_SIZE)) != 0 ||
	    (rc = mdb_env_open(p->env, dir, flags, 0600)) != 0) {
		mdb_env_close(p->env);
		p->env = NULL;
	}
	return rc;
}

/* Opens the named databases and checks (or writes) the header. */
static int open_dbs(struct persist *p, const char *dir, bool recover, bool *repair)
{
	MDB_txn *txn;
	MDB_val key = { sizeof(HEADER_KEY) - 1, (void *)HEADER_KEY }, val;
	struct persist_header h = { PERSIST_FORMAT_VERSION, (int64_t)time(NULL) };
	uint8_t hbuf[64];
	bool fresh = false;
	int rc = mdb_txn_begin(p->env, NULL, 0, &txn);

	if (rc != 0)
		return persist_mdb_fail(p, rc, "starting a transaction");
	rc = mdb_dbi_open(txn, "meta", 0, &p->meta);
	if (rc == MDB_NOTFOUND) {
		MDB_dbi main_dbi;
		MDB_stat st;
		if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0 ||
		    (rc = mdb_stat(txn, main_dbi, &st)) != 0)
			goto lmdb_fail;
		fresh = st.ms_entries == 0;
		if (!fresh && !recover) {
			mdb_txn_abort(txn);
			return persist_fail(p, PERSIST_EDAMAGED,
					    "%s is not a midge store or its header is damaged (no meta database)", dir);
		}
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &p->meta);
	}
	if (rc != 0)
		goto lmdb_fail;
	rc = mdb_get(txn, p->meta, &key, &val);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto lmdb_fail;
	if (rc == 0) {
		int d = pcodec_dec_header(val.mv_data, val.mv_size, &h);
		if (d == -2) {
			mdb_txn_abort(txn);
			return persist_fail(p, PERSIST_EVERSION,
					    "the store in %s has format version %u; this midge reads version %u",
					    dir, (unsigned)h.format, PERSIST_FORMAT_VERSION);
		}
		if (d != 0 && !recover) {
			mdb_txn_abort(txn);
			return persist_fail(p, PERSIST_EDAMAGED, "the header of the store in %s is damaged", dir);
		}
		*repair = d != 0;
	} else if (!fresh && !recover) {
		mdb_txn_abort(txn);
		return persist_fail(p, PERSIST_EDAMAGED, "the store in %s has no header record", dir);
	} else {
		*repair = !fresh;
	}
	if (fresh || *repair) {
		h.format = PERSIST_FORMAT_VERSION;
		h.created = (int64_t)time(NULL);
		val.mv_data = hbuf;
		val.mv_size = pcodec_enc_header(hbuf, &h);
		if ((rc = mdb_put(txn, p->meta, &key, &val, 0)) != 0)
			goto lmdb_fail;
	}
	if ((rc = mdb_dbi_open(txn, "msgs", MDB_CREATE, &p->msgs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "refs", MDB_CREATE, &p->refs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "retained", MDB_CREATE, &p->retained)) != 0 ||
	    (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &p->sessions)) != 0 ||
	    (rc = mdb_dbi_open(txn, "subs", MDB_CREATE, &p->subs)) != 0 ||
	    (rc = mdb_dbi_open(txn, "queue", MDB_CREATE, &p->queue)) != 0)
		goto lmdb_fail;
	if ((rc = mdb_txn_commit(txn)) != 0)
		return persist_mdb_fail(p, rc, "committing the header");
	return 0;
lmdb_fail:
	mdb_txn_abort(txn);
	rc = persist_mdb_fail(p, rc, "opening the store's databases");
	if (rc == PERSIST_EIO || rc == PERSIST_EDAMAGED) {
		char why[sizeof(p->err)];
		snprintf(why, sizeof(why), "%s", p->err);
		rc = persist_fail(p, PERSIST_EDAMAGED, "the store in %s is damaged (%s)", dir, why);
	}
	return rc;
}

int persist_open(const char *dir, const struct persist_options *o, struct persist **out,
		 char *err, size_t errlen)
{
	struct persist *p;
	char path[4096];
	const char *why;
	bool repair = false;
	int rc;

	*out = NULL;
	if (strlen(dir) > 4000 || o->sync > PERSIST_SYNC_PERIODIC) {
		snprintf(err, errlen, "bad persistence options");
		return PERSIST_EINVAL;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create the store directory %s: %s", dir, strerror(errno));
		return PERSIST_EIO;
	}
	if (!(p = mem_calloc(1, sizeof(*p)))) {
		snprintf(err, errlen, "out of memory");
		return PERSIST_ENOMEM;
	}
	p->sync = o->sync;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	why = persist_check_file(path);
	rc = why ? MDB_INVALID : env_open(p, dir, o);
	if (rc != 0 && rc != MDB_INVALID && rc != MDB_VERSION_MISMATCH && rc != MDB_CORRUPTED) {
		snprintf(err, errlen, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
		mem_free(p);
		return rc == ENOMEM ? PERSIST_ENOMEM : PERSIST_EIO;
	}
	if (rc != 0) {
		if (!o->recover) {
			snprintf(err, errlen, "the store in %s is damaged (%s); start with recovery to move it aside",
				 dir, why ? why : mdb_strerror(rc));
			mem_free(p);
			return PERSIST_EDAMAGED;
		}
		if (move_aside(dir, err, errlen) != 0) {
			mem_free(p);
			return PERSIST_EIO;
		}
		if ((rc = env_open(p, dir, o)) != 0) {
			snprintf(err, errlen, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
			mem_free(p);
			return PERSIST_EIO;
		}
		p->recovered++;
	}
	if (mdb_env_get_maxkeysize(p->env) < (int)PERSIST_KEY_MAX) {
		snprintf(err, errlen, "this LMDB takes keys of %d bytes at most; midge needs %u",
			 mdb_env_get_maxkeysize(p->env), PERSIST_KEY_MAX);
		persist_close(p);
		return PERSIST_EINVAL;
	}
	rc = open_dbs(p, dir, o->recover, &repair);
	if (rc == 0 && repair)
		p->recovered++;
	if (rc == 0 && o->recover)
		rc = persist_recover_records(p);
	if (rc != 0) {
		snprintf(err, errlen, "%s", p->err);
		persist_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

void persist_close(struct persist *p)
{
	if (!p)
		return;
	if (p->env) {
		if (p->sync != PERSIST_SYNC_ALWAYS)
			mdb_env_sync(p->env, 1);
		mdb_env_close(p->env);
	}
	mem_free(p);
}
