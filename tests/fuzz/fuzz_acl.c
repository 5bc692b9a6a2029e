/*
 * fuzz_acl.c: mosquitto-format ACL files (broker/acl.c).
 *
 * Input: an ACL file, loaded with acl_load(). Then acl_check() is asked about
 * topics taken from the file itself (the last word of each topic / pattern
 * line) for the anonymous client and for every user the file names (up to 8
 * of each), and about queries the file carries in comment lines, which the
 * loader skips:
 *     #?r alice client-1 sensors/kitchen     (r, w, s or u; "-" for anonymous)
 * Only valid questions are asked (a topic name for read and write, a filter
 * for subscribe, as the broker does). Checked: UNSUBSCRIBE is always
 * granted, and a client that may read a topic may subscribe to it.
 */
#include "config.h"

#include "acl.h"
#include "fuzz.h"
#include "topic.h"

#include <stdbool.h>
#include <string.h>

#define MAX_NAMES 8

struct names {
	char *v[MAX_NAMES];
	size_t n;
};

static void names_add(struct names *s, const char *p, size_t len)
{
	if (s->n < MAX_NAMES && !memchr(p, '\0', len)) {
		s->v[s->n] = strndup(p, len);
		CHECK(s->v[s->n]);
		s->n++;
	}
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
}

static void ask(const struct acl_db *db, const char *user, const char *cid, const char *topic,
		size_t len, int which)
{
	bool name = len > 0 && topic_name_valid(topic, len);
	bool filter = len > 0 && topic_filter_valid(topic, len);

	if ((which == 'r' || which == 0) && name) {
		bool r = acl_check(db, user, cid, topic, len, ACL_READ);
		/* Readable means subscribable ("$share/" would name another filter). */
		if (r && !(len >= 7 && memcmp(topic, "$share/", 7) == 0))
			CHECK(acl_check(db, user, cid, topic, len, ACL_SUBSCRIBE));
	}
	if ((which == 'w' || which == 0) && name)
		(void)acl_check(db, user, cid, topic, len, ACL_WRITE);
	if ((which == 's' || which == 0) && filter)
		(void)acl_check(db, user, cid, topic, len, ACL_SUBSCRIBE);
	if ((which == 'u' || which == 0) && filter)
		CHECK(acl_check(db, user, cid, topic, len, ACL_UNSUBSCRIBE));
}

/* "#?X user cid topic": one explicit question. */
static void query(const struct acl_db *db, const char *s, size_t len)
{
	const char *end = s + len, *f[3];
	size_t fl[3];
	const char *p = s + 4;

	if (len < 5 || s[3] != ' ')
		return;
	for (int i = 0; i < 2; i++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		if (!sp)
			return;
		f[i] = p;
		fl[i] = (size_t)(sp - p);
		p = sp + 1;
	}
	f[2] = p;
	fl[2] = (size_t)(end - p);
	if (memchr(s, '\0', len))
		return;
	char *user = strndup(f[0], fl[0]), *cid = strndup(f[1], fl[1]);
	CHECK(user && cid);
	ask(db, strcmp(user, "-") == 0 ? NULL : user, cid, f[2], fl[2], s[2]);
	free(user);
	free(cid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_file file;
	char err[512];
	const char *text = (const char *)data;
	struct names users = {0}, topics = {0};

	fuzz_file_init(&file, "midge-fuzz-acl");
	fuzz_file_write(&file, data, size);
	struct acl_db *db = acl_load(file.path, err, sizeof(err));
	if (!db) {
		CHECK(err[0] != '\0');
		return 0;
	}
	(void)acl_rule_count(db);
	for (size_t pos = 0; pos < size;) {
		const char *line = text + pos, *nl = memchr(line, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - line) : size - pos;

		pos += len + 1;
		if (len > 3 && line[0] == '#' && line[1] == '?') {
			query(db, line, len);
		} else if (len > 5 && memcmp(line, "user ", 5) == 0) {
			names_add(&users, line + 5, len - 5);
		} else if ((len > 6 && memcmp(line, "topic ", 6) == 0) ||
			   (len > 8 && memcmp(line, "pattern ", 8) == 0)) {
			const char *sp = line + len;
			while (sp > line && sp[-1] != ' ')
				sp--;
			names_add(&topics, sp, (size_t)(line + len - sp));
		}
	}
	for (size_t t = 0; t < topics.n; t++) {
		size_t tl = strlen(topics.v[t]);
		ask(db, NULL, "client-1", topics.v[t], tl, 0);
		for (size_t u = 0; u < users.n; u++)
			ask(db, users.v[u], users.v[u], topics.v[t], tl, 0);
	}
	CHECK(!acl_check(NULL, NULL, "c", "a", 1, ACL_READ));
	names_free(&users);
	names_free(&topics);
	acl_free(db);
	return 0;
}
