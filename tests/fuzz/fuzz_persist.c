/*
 * fuzz_persist.c: the durable store's loader (broker/persist_*.c over LMDB)
 * and its record codec (broker/persist_codec.c).
 *
 * Byte 0 chooses the mode.
 * Even: the rest is a data.mdb, written into a fresh directory under
 *   /dev/shm and opened with persist_open() as the broker would at start:
 *   - without recovery: it opens or is refused; if it opens, every record is
 *     read with the _iter and _get functions;
 *   - with recovery (on a fresh copy): it must open (unless it is of another
 *     format version), and then hold only decodable records whose references
 *     resolve (retained entries, wills and queue entries name stored
 *     messages); closed and opened again without recovery, it must open.
 * Odd: structured. Byte 1 picks a record kind (header, message, reference
 *   count, retained id, session, subscription, queue entry, key) and whether
 *   to end the record with its correct CRC-32 (bit 0x80, so that mutations
 *   reach the fields); the rest is the record for the pcodec_dec_* decoder.
 *   What decodes must encode back to the same bytes.
 */
#include "config.h"

#include "fuzz.h"
#include "persist.h"
#include "persist_codec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

/* ---- structured mode ---- */

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xFFFFFFFFu;
}

/* Encodes with enc (sized first with NULL) and compares with the decoded input. */
#define SAME_ENCODING(enc_call_null, enc_call_buf, in, len)                      \
	do {                                                                     \
		size_t need_ = (enc_call_null);                                  \
		CHECK(need_ == (len));                                           \
		uint8_t *out_ = malloc(need_);                                   \
		CHECK(out_);                                                     \
		uint8_t *buf_ = out_;                                            \
		CHECK((enc_call_buf) == need_);                                  \
		CHECK(memcmp(buf_, (in), need_) == 0);                           \
		free(out_);                                                      \
	} while (0)

static void structured(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	uint8_t kind = data[0] & 0x7F;
	size_t len = size - 1;
	uint8_t *rec = malloc(len + 4 + 1);
	CHECK(rec);
	memcpy(rec, data + 1, len);
	if (data[0] & 0x80) {
		uint32_t crc = crc32_ieee(rec, len);
		for (int i = 0; i < 4; i++)
			rec[len++] = (uint8_t)(crc >> (24 - 8 * i));
	}
	/* An exact-size copy, so that ASan sees any read past the record. */
	uint8_t *in = malloc(len ? len : 1);
	CHECK(in);
	memcpy(in, rec, len);
	free(rec);

	switch (kind % 8) {
	case 0: {
		struct persist_header h;
		int rc = pcodec_dec_header(in, len, &h);
		if (rc == 0 || rc == -2)
			SAME_ENCODING(pcodec_enc_header(NULL, &h), pcodec_enc_header(buf_, &h), in, len);
		break;
	}
	case 1: {
		struct persist_msg m;
		if (pcodec_dec_msg(in, len, &m) == 0) {
			CHECK(m.qos <= 2 && m.topic_len > 0);
			CHECK(m.topic >= in && m.topic + m.topic_len <= in + len);
			SAME_ENCODING(pcodec_enc_msg(NULL, &m), pcodec_enc_msg(buf_, &m), in, len);
		}
		break;
	}
	case 2: {
		uint32_t refs;
		if (pcodec_dec_refs(in, len, &refs) == 0) {
			CHECK(len == PCODEC_REFS_SIZE);
			SAME_ENCODING(pcodec_enc_refs(NULL, refs), pcodec_enc_refs(buf_, refs), in, len);
		}
		break;
	}
	case 3: {
		uint64_t id;
		if (pcodec_dec_id(in, len, &id) == 0)
			SAME_ENCODING(pcodec_enc_id(NULL, id), pcodec_enc_id(buf_, id), in, len);
		break;
	}
	case 4: {
		struct persist_session s;
		if (pcodec_dec_session(in, len, &s) == 0) {
			CHECK(s.protocol >= 3 && s.protocol <= 5);
			CHECK(!s.qos2_in || s.qos2_in + 2 * s.nqos2_in <= in + len);
			SAME_ENCODING(pcodec_enc_session(NULL, &s), pcodec_enc_session(buf_, &s), in, len);
		}
		break;
	}
	case 5: {
		struct persist_sub s;
		if (pcodec_dec_sub(in, len, &s) == 0)
			SAME_ENCODING(pcodec_enc_sub(NULL, &s), pcodec_enc_sub(buf_, &s), in, len);
		break;
	}
	case 6: {
		struct persist_qentry e;
		if (pcodec_dec_qentry(in, len, &e) == 0)
			SAME_ENCODING(pcodec_enc_qentry(NULL, &e), pcodec_enc_qentry(buf_, &e), in, len);
		break;
	}
	case 7: {
		const uint8_t *cid, *rest;
		size_t cidlen, restlen;
		if (pcodec_split_key(in, len, &cid, &cidlen, &rest, &restlen) == 0) {
			CHECK(2 + cidlen + restlen == len && rest == cid + cidlen);
			uint8_t *k = malloc(2 + cidlen);
			CHECK(k);
			CHECK(pcodec_enc_prefix(k, cid, cidlen) == 2 + cidlen);
			CHECK(memcmp(k, in, 2 + cidlen) == 0);
			free(k);
			if (restlen == 8) {
				uint8_t seq[8];
				pcodec_put_u64(seq, pcodec_get_u64(rest));
				CHECK(memcmp(seq, rest, 8) == 0);
			}
		}
		break;
	}
	}
	free(in);
}

/* ---- store mode ---- */

static char dir[128];

/* Empties the directory (data.mdb, lock.mdb, data.mdb.damaged-*). */
static void clean_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	CHECK(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		CHECK(unlink(path) == 0);
	}
	closedir(d);
}

static void put_store(const uint8_t *data, size_t size)
{
	char path[512];

	clean_dir();
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);
		CHECK(n > 0);
		done += (size_t)n;
	}
	CHECK(close(fd) == 0);
}

/* What the iterations saw, and whether every reference resolved. */
struct walk {
	struct persist *p;
	bool strict;       /* after recovery: references must resolve */
	char **cids;
	size_t *cidlens;
	size_t ncids;
};

static void on_msg(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg)
{
	CHECK(id != 0 && m->qos <= 2 && m->topic_len > 0);
}

static void on_found(uint64_t id, const struct persist_msg *m, uint32_t refs, void *arg)
{
	*(bool *)arg = true;
}

static void must_exist(struct walk *w, uint64_t id)
{
	bool found = false;
	int rc = persist_msg_get(w->p, id, on_found, &found);
	if (w->strict)
		CHECK(rc == 0 && found);
}

static void on_retained(const uint8_t *topic, size_t len, uint64_t msg_id, void *arg)
{
	struct walk *w = arg;
	uint64_t again = 0;

	CHECK(len > 0);
	int rc = persist_retained_get(w->p, topic, len, &again);
	CHECK(rc == 0 && again == msg_id);
	must_exist(w, msg_id);
}

static void on_session(const uint8_t *cid, size_t len, const struct persist_session *s, void *arg)
{
	struct walk *w = arg;

	CHECK(s->protocol >= 3 && s->protocol <= 5);
	if (s->will_id)
		must_exist(w, s->will_id);
	if (w->ncids < 16) {
		w->cids = realloc(w->cids, (w->ncids + 1) * sizeof(*w->cids));
		w->cidlens = realloc(w->cidlens, (w->ncids + 1) * sizeof(*w->cidlens));
		CHECK(w->cids && w->cidlens);
		w->cids[w->ncids] = malloc(len ? len : 1);
		CHECK(w->cids[w->ncids]);
		memcpy(w->cids[w->ncids], cid, len);
		w->cidlens[w->ncids++] = len;
	}
}

static void on_session_get(const uint8_t *cid, size_t len, const struct persist_session *s,
			   void *arg)
{
	*(bool *)arg = true;
}

static void on_sub(const uint8_t *filter, size_t len, const struct persist_sub *s, void *arg)
{
	CHECK(s->qos <= 2);
}

static void on_queue(uint64_t seq, const struct persist_qentry *e, void *arg)
{
	must_exist(arg, e->msg_id);
}

static void walk_store(struct persist *p, bool strict)
{
	struct walk w = {.p = p, .strict = strict};
	uint64_t max_id = 0;

	/* A store opened without recovery may fail reads (damage inside LMDB's own
	 * values); after recovery every read must work. */
#define READ_OK(call)                                                             \
	do {                                                                      \
		long rc_ = (call);                                                \
		if (strict && rc_ < 0)                                            \
			fprintf(stderr, "%s: %ld %s\n", #call, rc_, persist_error(p)); \
		CHECK(!strict || rc_ >= 0);                                       \
	} while (0)
	READ_OK(persist_msg_iter(p, on_msg, &w));
	READ_OK(persist_retained_iter(p, on_retained, &w));
	READ_OK(persist_session_iter(p, on_session, &w));
	for (size_t i = 0; i < w.ncids; i++) {
		bool found = false;
		READ_OK(persist_session_get(p, w.cids[i], w.cidlens[i], on_session_get, &found));
		CHECK(found || !strict);
		READ_OK(persist_sub_iter(p, w.cids[i], w.cidlens[i], on_sub, &w));
		READ_OK(persist_queue_iter(p, w.cids[i], w.cidlens[i], on_queue, &w));
		free(w.cids[i]);
	}
	free(w.cids);
	free(w.cidlens);
	READ_OK(persist_msg_max_id(p, &max_id));
#undef READ_OK
	(void)persist_max_key(p);
	if (strict)
		CHECK(persist_undecodable(p) == 0);
}

static void remove_dir(void)
{
	clean_dir();
	rmdir(dir);
}

static void store(const uint8_t *data, size_t size)
{
	struct persist_options o = {.sync = PERSIST_SYNC_PERIODIC, .map_size = 1u << 20};
	struct persist *p = NULL;
	char err[512];
	int rc;

	if (!dir[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(dir, sizeof(dir), "%s/midge-fuzz-persist.%d", base, (int)getpid());
		CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
		atexit(remove_dir);
	}
	put_store(data, size);
	rc = persist_open(dir, &o, &p, err, sizeof(err));
	if (rc == 0) {
		walk_store(p, false);
		persist_close(p);
	} else {
		CHECK(p == NULL && err[0] != '\0');
	}

	put_store(data, size);
	o.recover = true;
	p = NULL;
	rc = persist_open(dir, &o, &p, err, sizeof(err));
	if (rc != 0) {
		/* Only a store of another version is refused even so. */
		if (rc != PERSIST_EVERSION)
			fprintf(stderr, "recovery failed: %d %s\n", rc, err);
		CHECK(rc == PERSIST_EVERSION);
		return;
	}
	walk_store(p, true);
	persist_close(p);

	o.recover = false;
	p = NULL;
	rc = persist_open(dir, &o, &p, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "reopening a recovered store failed: %d %s\n", rc, err);
	CHECK(rc == 0);
	CHECK(persist_recovered(p) == 0);
	walk_store(p, true);
	persist_close(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		structured(data + 1, size - 1);
	else
		store(data + 1, size - 1);
	return 0;
}
