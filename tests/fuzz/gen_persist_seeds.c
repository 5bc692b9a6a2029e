/*
 * gen_persist_seeds.c: writes the seed corpus of fuzz_persist (not a fuzz
 * target; build.sh builds it next to them). Usage: gen_persist_seeds DIR.
 *
 * Store seeds ("store-*"): byte 0x00, then the data.mdb of a small store made
 * with the persist_* calls the broker uses, compacted: empty; messages and
 * retained entries; sessions with wills, subscriptions and queues; and some
 * with damage recovery must repair (a queue entry naming no message, a
 * subscription of no session, a flipped byte in a record or a page header, a
 * truncated file).
 * Record seeds ("rec-*"): byte 0x01, a kind byte (fuzz_persist.c), one
 * encoded record; with bit 0x80 in the kind and the CRC left off, as the
 * fuzzer fixes it.
 */
#include "config.h"

#include "persist.h"
#include "persist_codec.h"

#include <dirent.h>
#include <lmdb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *outdir;
static char work[256];

static void die(const char *what)
{
	fprintf(stderr, "gen_persist_seeds: %s\n", what);
	exit(1);
}

static void put(const char *name, uint8_t mode, uint8_t kind, bool with_kind, const void *p,
		size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		die(path);
	fputc(mode, f);
	if (with_kind)
		fputc(kind, f);
	if (n && fwrite(p, 1, n, f) != n)
		die("write");
	if (fclose(f) != 0)
		die("close");
}

static void clean(void)
{
	DIR *d = opendir(work);
	struct dirent *de;
	char path[512];

	if (!d)
		die("opendir");
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", work, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static struct persist *open_store(void)
{
	struct persist_options o = {PERSIST_SYNC_ALWAYS, 1u << 20, false};
	struct persist *p;
	char err[512];

	clean();
	if (persist_open(work, &o, &p, err, sizeof(err)) != 0)
		die(err);
	return p;
}

static void commit(struct persist *p, struct persist_batch *b)
{
	if (persist_commit(p, b) != 0)
		die(persist_error(p));
	persist_batch_reset(b);
}

/*
 * Closes the store and writes its data.mdb, compacted by LMDB (no free pages), as
 * a seed; cut to `keep` bytes (0: whole); with the byte after the first `flip`
 * string inverted (NULL: none), or the byte at `flip_at` (0: none).
 */
static void save(struct persist *p, const char *name, size_t keep, const char *flip,
		 size_t flip_at)
{
	char path[512], copy[300];
	MDB_env *env;

	persist_close(p);
	snprintf(copy, sizeof(copy), "%s/copy", work);
	if (mkdir(copy, 0700) != 0 && errno != EEXIST)
		die("mkdir");
	snprintf(path, sizeof(path), "%s/data.mdb", copy);
	unlink(path);
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
	    mdb_env_open(env, work, MDB_RDONLY, 0600) || mdb_env_copy2(env, copy, MDB_CP_COMPACT))
		die("compacting");
	mdb_env_close(env);
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path);
	static uint8_t buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	unlink(path);
	rmdir(copy);
	if (keep && keep < n)
		n = keep;
	if (flip) {
		uint8_t *at = memmem(buf, n, flip, strlen(flip));
		if (!at)
			die("flip");
		at[strlen(flip)] ^= 0xFF;
	}
	if (flip_at && flip_at < n)
		buf[flip_at] ^= 0xFF;
	put(name, 0x00, 0, false, buf, n);
}

static struct persist_msg msg(const char *topic, const char *payload, uint8_t qos, bool retain)
{
	return (struct persist_msg){qos, retain, 0, (const uint8_t *)topic, strlen(topic),
				    (const uint8_t *)payload, strlen(payload), NULL, 0};
}

static void fill(struct persist *p, bool sessions)
{
	struct persist_batch *b = persist_batch_new();
	static const uint8_t props[] = {0x03, 0x00, 0x04, 't', 'e', 'x', 't'}; /* content type */
	struct persist_msg m1 = msg("sensors/kitchen", "21.5", 1, true);
	struct persist_msg m2 = msg("sensors/hall", "19", 0, true);
	struct persist_msg m3 = msg("cmd/light", "on", 2, false);
	m3.props = props;
	m3.props_len = sizeof(props);
	m3.expiry = 4102444800; /* 2100 */

	if (!b)
		die("batch");
	if (persist_msg_put(b, 1, &m1) || persist_msg_put(b, 2, &m2) || persist_msg_put(b, 3, &m3) ||
	    persist_retained_set(b, "sensors/kitchen", 15, 1) ||
	    persist_retained_set(b, "sensors/hall", 12, 2))
		die("add");
	commit(p, b);
	if (sessions) {
		struct persist_msg will = msg("clients/alice/state", "gone", 1, true);
		static const uint8_t qos2[] = {0x00, 0x07, 0x01, 0x00};
		struct persist_session alice = {3600, 1700000000, 5, "alice", 5, 10, 30, 0, qos2, 2};
		struct persist_session bob = {PERSIST_NO_EXPIRY, 0, 4, NULL, 0, 0, 0, 1, NULL, 0};
		struct persist_sub s1 = {1, 0x04, 7}, s2 = {2, 0x2c, 0}, s3 = {0, 0, 0};
		struct persist_qentry q1 = {3, 2, false, PERSIST_Q_INFLIGHT, 17, PERSIST_QF_PUBREL};
		struct persist_qentry q2 = {1, 1, true, PERSIST_Q_QUEUED, 0, 0};
		struct persist_qentry q3 = {3, 1, false, PERSIST_Q_INFLIGHT, 18, PERSIST_QF_DUP};
		if (persist_msg_put(b, 10, &will) || persist_session_put(b, "alice", 5, &alice) ||
		    persist_session_put(b, "bob", 3, &bob) ||
		    persist_sub_put(b, "alice", 5, "cmd/#", 5, &s1) ||
		    persist_sub_put(b, "alice", 5, "$share/g/sensors/+", 18, &s2) ||
		    persist_sub_put(b, "bob", 3, "sensors/kitchen", 15, &s3) ||
		    persist_queue_put(b, "alice", 5, 1, &q1) || persist_queue_put(b, "alice", 5, 2, &q2) ||
		    persist_queue_put(b, "bob", 3, 1, &q3))
			die("add");
		commit(p, b);
	}
	persist_batch_free(b);
}

static void records(void)
{
	static const uint8_t props[] = {0x26, 0, 1, 'k', 0, 1, 'v'};
	uint8_t buf[512];
	size_t n;
	struct persist_header h = {PERSIST_FORMAT_VERSION, 1700000000};
	struct persist_msg m = msg("a/b", "hello", 2, true);
	struct persist_session s = {60, 1700000000, 5, "user", 4, 9, 5, 2, (const uint8_t *)"\0\1", 1};
	struct persist_sub sub = {2, 0x1c, 12345};
	struct persist_qentry q = {9, 2, true, PERSIST_Q_INFLIGHT, 65535, PERSIST_QF_DUP};
	m.props = props;
	m.props_len = sizeof(props);

#define REC(name, kind, enc)                                                    \
	do {                                                                    \
		n = (enc);                                                      \
		put("rec-" name, 0x01, kind, true, buf, n);                     \
		put("rec-" name "-nocrc", 0x01, 0x80 | (kind), true, buf, n - 4); \
	} while (0)
	REC("header", 0, pcodec_enc_header(buf, &h));
	REC("msg", 1, pcodec_enc_msg(buf, &m));
	REC("refs", 2, pcodec_enc_refs(buf, 3));
	REC("id", 3, pcodec_enc_id(buf, 42));
	REC("session", 4, pcodec_enc_session(buf, &s));
	REC("sub", 5, pcodec_enc_sub(buf, &sub));
	REC("qentry", 6, pcodec_enc_qentry(buf, &q));
#undef REC
	n = pcodec_enc_prefix(buf, "client-1", 8);
	pcodec_put_u64(buf + n, 77);
	put("rec-key-queue", 0x01, 7, true, buf, n + 8);
	n = pcodec_enc_prefix(buf, "client-1", 8);
	memcpy(buf + n, "sensors/#", 9);
	put("rec-key-sub", 0x01, 7, true, buf, n + 9);
}

int main(int argc, char **argv)
{
	struct persist *p;

	if (argc != 2)
		die("usage: gen_persist_seeds DIR");
	outdir = argv[1];
	snprintf(work, sizeof(work), "/tmp/midge-gen-persist.%d", (int)getpid());
	if (mkdir(work, 0700) != 0 && errno != EEXIST)
		die("mkdir");

	save(open_store(), "store-empty", 0, NULL, 0);
	p = open_store();
	fill(p, false);
	save(p, "store-retained", 0, NULL, 0);
	p = open_store();
	fill(p, true);
	save(p, "store-sessions", 0, NULL, 0);

	/* Damage for recovery: references to nothing, a subscription of no session. */
	p = open_store();
	fill(p, true);
	struct persist_batch *b = persist_batch_new();
	struct persist_qentry orphan = {99, 1, false, PERSIST_Q_QUEUED, 0, 0};
	struct persist_sub sub = {1, 0, 0};
	if (!b || persist_session_delete(b, "bob", 3) || persist_queue_put(b, "alice", 5, 3, &orphan) ||
	    persist_sub_put(b, "carol", 5, "x/y", 3, &sub))
		die("add");
	commit(p, b);
	persist_batch_free(b);
	save(p, "store-dangling", 0, NULL, 0);

	/* Byte damage: inside a record (its CRC fails), in a page header (the file
	 * check refuses it), a truncated file. */
	p = open_store();
	fill(p, true);
	save(p, "store-bad-record", 0, "21.", 0);
	p = open_store();
	fill(p, true);
	save(p, "store-bad-page", 0, NULL, 3 * 4096 + 12);
	p = open_store();
	fill(p, true);
	save(p, "store-truncated", 3 * 4096 + 100, NULL, 0);

	records();
	clean();
	rmdir(work);
	return 0;
}
