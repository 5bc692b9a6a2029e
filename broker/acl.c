/*
 * acl.c: mosquitto-format ACL files.
 *
 * A file is parsed into sections (anonymous, one per user, patterns) of
 * rules with their deny rules first; checks walk them without allocating.
 * The semantics are mosquitto 2.0.11's, measured against the real broker
 * and listed below, with the few places where midge is stricter.
 */
#include "config.h"

#include "acl.h"

#include "alloc.h"
#include "topic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * What mosquitto 2.0.11 does with an acl_file, as probed with real clients:
 * - Lines: "#" in column 1 is a comment; blank lines are skipped; trailing
 *   white space goes; words are separated by spaces only (a tab makes an
 *   unknown keyword). "topic|pattern [read|write|readwrite|deny] <topic>":
 *   the topic is the rest of the line, spaces included; no access word means
 *   readwrite. "user <name>" (the rest of the line) starts that user's rules;
 *   a user named twice gets both blocks. Anything else is a load error.
 * - topic rules before the first "user" line are the anonymous client's;
 *   a client with a user name and no section has none. pattern rules apply to
 *   every client wherever they appear, with %c (client id) and %u (user name)
 *   replaced anywhere in the topic, not only as a whole level; a pattern with
 *   %u never matches an anonymous client.
 * - A check looks at the client's topic rules: a matching deny refuses, a
 *   matching rule with the access bit allows. Only then the patterns, in the
 *   same way; nothing matching refuses. So a pattern deny cannot take back
 *   what a topic rule granted. A client whose user name or id contains '+'
 *   or '#' gets no pattern access at all.
 * - A rule only matches a '$' topic if it starts with '$' itself.
 * - SUBSCRIBE and UNSUBSCRIBE are always granted; READ filters deliveries
 *   (retained messages too).
 * Where midge is stricter: a SUBSCRIBE whose filter could never deliver
 * anything (no READ rule overlaps it, or a deny covers the overlap) is
 * refused; "topic read" (an access word and no topic) is an error, where
 * mosquitto grants readwrite on a topic named "read"; a user name or client
 * id with '/' gets no pattern access either (mosquitto 2.0.11 lets client
 * "a/b" into pattern "p/%c/#"'s "p/a/b/...", part of client a's tree); a
 * NUL byte in the file is an error.
 */

#define TOPIC_MAX 65535
#define LINE_MAX_LEN (1u << 20)

struct acl_rule {
	char *topic;
	size_t len;
	unsigned access; /* ACL_READ | ACL_WRITE; 0 for deny */
	bool uses_user;	 /* a pattern with %u */
};

struct acl_section {
	char *user; /* NULL: the anonymous section */
	size_t seq; /* order of the "user" line, to merge repeats stably */
	struct acl_rule *rules;
	size_t count, cap;
};

struct acl_db {
	struct acl_section anon;
	struct acl_section *users; /* sorted by name after loading */
	size_t nusers, users_cap;
	struct acl_section patterns;
};

/* ------------------------------------------------------------ loading */

struct acl_parser {
	struct acl_db *db;
	struct acl_section *cur; /* where topic rules go */
	size_t cur_index;	 /* index in db->users, or SIZE_MAX for anon */
	const char *path;
	unsigned line;
	char *err;
	size_t errlen;
};

static void perr(struct acl_parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void perr(struct acl_parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!ps->err || ps->errlen == 0)
		return;
	n = snprintf(ps->err, ps->errlen, "%s:%u: ", ps->path, ps->line);
	if (n < 0 || (size_t)n >= ps->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int add_rule(struct acl_parser *ps, struct acl_section *sec, const char *topic, size_t len,
		    unsigned access, bool pattern)
{
	struct acl_rule *r;

	if (sec->count == sec->cap) {
		size_t ncap = sec->cap ? sec->cap * 2 : 8;
		struct acl_rule *n = mem_realloc(sec->rules, ncap * sizeof(*n));
		if (!n)
			goto oom;
		sec->rules = n;
		sec->cap = ncap;
	}
	r = &sec->rules[sec->count];
	r->topic = mem_strndup(topic, len);
	if (!r->topic)
		goto oom;
	r->len = len;
	r->access = access;
	r->uses_user = pattern && strstr(r->topic, "%u") != NULL;
	sec->count++;
	return 0;
oom:
	perr(ps, "out of memory");
	return -1;
}

static int start_user(struct acl_parser *ps, const char *name, size_t len)
{
	struct acl_db *db = ps->db;
	struct acl_section *s;

	if (db->nusers == db->users_cap) {
		size_t ncap = db->users_cap ? db->users_cap * 2 : 8;
		struct acl_section *n = mem_realloc(db->users, ncap * sizeof(*n));
		if (!n)
			goto oom;
		db->users = n;
		db->users_cap = ncap;
	}
	s = &db->users[db->nusers];
	memset(s, 0, sizeof(*s));
	s->user = mem_strndup(name, len);
	if (!s->user)
		goto oom;
	s->seq = db->nusers;
	ps->cur_index = db->nusers++;
	return 0;
oom:
	perr(ps, "out of memory");
	return -1;
}

static bool word_is(const char *w, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(w, s, n) == 0;
}

/* The access bits of an access word; -1 if it is not one. */
static int access_of(const char *w, size_t n)
{
	if (word_is(w, n, "read"))
		return ACL_READ;
	if (word_is(w, n, "write"))
		return ACL_WRITE;
	if (word_is(w, n, "readwrite"))
		return ACL_READ | ACL_WRITE;
	if (word_is(w, n, "deny"))
		return 0;
	return -1;
}

static size_t skip_spaces(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] == ' ')
		i++;
	return i;
}

static size_t word_end(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] != ' ')
		i++;
	return i;
}

/* "topic ..." or "pattern ...": s[i..len) is what follows the keyword. */
static int parse_rule(struct acl_parser *ps, const char *s, size_t i, size_t len, bool pattern)
{
	size_t a0 = skip_spaces(s, i, len), a1 = word_end(s, a0, len);
	size_t t0 = skip_spaces(s, a1, len);
	const char *topic = s + t0;
	size_t tlen = len - t0;
	int access = ACL_READ | ACL_WRITE;
	struct acl_section *sec;

	if (a0 == len) {
		perr(ps, "%s rule without a topic", pattern ? "pattern" : "topic");
		return -1;
	}
	if (t0 == len) {
		/* One word: the topic, readwrite. An access word alone is a mistake. */
		if (access_of(s + a0, a1 - a0) >= 0) {
			perr(ps, "\"%.*s\" with no topic after it", (int)(a1 - a0), s + a0);
			return -1;
		}
		topic = s + a0;
		tlen = a1 - a0;
	} else {
		access = access_of(s + a0, a1 - a0);
		if (access < 0) {
			perr(ps, "unknown access \"%.*s\" (read, write, readwrite or deny)",
			     (int)(a1 - a0 > 64 ? 64 : a1 - a0), s + a0);
			return -1;
		}
	}
	if (tlen > TOPIC_MAX || !topic_filter_valid(topic, tlen)) {
		perr(ps, "invalid topic filter \"%.*s\"", (int)(tlen > 200 ? 200 : tlen), topic);
		return -1;
	}
	if (pattern)
		sec = &ps->db->patterns;
	else if (ps->cur_index == SIZE_MAX)
		sec = &ps->db->anon;
	else
		sec = &ps->db->users[ps->cur_index];
	return add_rule(ps, sec, topic, tlen, (unsigned)access, pattern);
}

static int parse_line(struct acl_parser *ps, const char *s, size_t len)
{
	size_t k0, k1, i;

	if (memchr(s, '\0', len)) {
		perr(ps, "NUL byte in line");
		return -1;
	}
	while (len && (s[len - 1] == ' ' || (s[len - 1] >= '\t' && s[len - 1] <= '\r')))
		len--;
	if (len == 0 || s[0] == '#')
		return 0;
	k0 = skip_spaces(s, 0, len);
	if (k0 == len)
		return 0;
	k1 = word_end(s, k0, len);
	if (word_is(s + k0, k1 - k0, "topic"))
		return parse_rule(ps, s, k1, len, false);
	if (word_is(s + k0, k1 - k0, "pattern"))
		return parse_rule(ps, s, k1, len, true);
	if (word_is(s + k0, k1 - k0, "user")) {
		i = skip_spaces(s, k1, len);
		if (i == len) {
			perr(ps, "user without a name");
			return -1;
		}
		return start_user(ps, s + i, len - i);
	}
	perr(ps, "unknown keyword \"%.*s\" (topic, pattern or user)",
	     (int)(k1 - k0 > 64 ? 64 : k1 - k0), s + k0);
	return -1;
}

static int read_lines(struct acl_parser *ps, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	errno = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		ps->line++;
		if ((size_t)n > LINE_MAX_LEN) {
			perr(ps, "line longer than 1 MiB");
			rc = -1;
			break;
		}
		if (n && line[n - 1] == '\n')
			n--;
		rc = parse_line(ps, line, (size_t)n);
		if (rc < 0)
			break;
	}
	if (rc == 0 && ferror(f)) {
		snprintf(ps->err, ps->errlen, "%s: cannot read ACL file: %s", ps->path,
			 strerror(errno ? errno : EIO));
		rc = -1;
	}
	free(line);
	return rc;
}

static int section_cmp(const void *a, const void *b)
{
	const struct acl_section *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Deny rules first, so that the first decisive match is the answer. */
static void denies_first(struct acl_section *s)
{
	size_t d = 0;

	for (size_t i = 0; i < s->count; i++) {
		if (s->rules[i].access == 0) {
			struct acl_rule r = s->rules[i];
			memmove(&s->rules[d + 1], &s->rules[d], (i - d) * sizeof(r));
			s->rules[d++] = r;
		}
	}
}

static void section_free(struct acl_section *s)
{
	for (size_t i = 0; i < s->count; i++)
		mem_free(s->rules[i].topic);
	mem_free(s->rules);
	mem_free(s->user);
	memset(s, 0, sizeof(*s));
}

/* Sorts user sections by name and folds repeated names into one section. */
static int merge_users(struct acl_parser *ps)
{
	struct acl_db *db = ps->db;
	size_t out = 0;

	if (db->nusers > 1)
		qsort(db->users, db->nusers, sizeof(*db->users), section_cmp);
	for (size_t i = 0; i < db->nusers; i++) {
		struct acl_section *dst, *src = &db->users[i];
		if (out == 0 || strcmp(db->users[out - 1].user, src->user) != 0) {
			db->users[out++] = *src;
			continue;
		}
		dst = &db->users[out - 1];
		for (size_t k = 0; k < src->count; k++) {
			struct acl_rule *r = &src->rules[k];
			if (add_rule(ps, dst, r->topic, r->len, r->access, false) < 0) {
				/* Keep the table consistent for acl_free. */
				for (size_t j = i; j < db->nusers; j++)
					db->users[out++] = db->users[j];
				db->nusers = out;
				return -1;
			}
		}
		section_free(src);
	}
	db->nusers = out;
	for (size_t i = 0; i < db->nusers; i++)
		denies_first(&db->users[i]);
	denies_first(&db->anon);
	denies_first(&db->patterns);
	return 0;
}

struct acl_db *acl_load(const char *path, char *err, size_t errlen)
{
	struct acl_parser ps = {.path = path, .err = err, .errlen = errlen, .cur_index = SIZE_MAX};
	char dummy[1];
	FILE *f;

	if (!err || errlen == 0) {
		ps.err = dummy;
		ps.errlen = sizeof(dummy);
	}
	f = fopen(path, "re");
	if (!f) {
		snprintf(ps.err, ps.errlen, "%s: cannot open ACL file: %s", path, strerror(errno));
		return NULL;
	}
	ps.db = mem_calloc(1, sizeof(*ps.db));
	if (!ps.db) {
		snprintf(ps.err, ps.errlen, "%s: out of memory", path);
		goto fail;
	}
	if (read_lines(&ps, f) < 0 || merge_users(&ps) < 0)
		goto fail;
	fclose(f);
	return ps.db;
fail:
	fclose(f);
	acl_free(ps.db);
	return NULL;
}

void acl_free(struct acl_db *db)
{
	if (!db)
		return;
	section_free(&db->anon);
	section_free(&db->patterns);
	for (size_t i = 0; i < db->nusers; i++)
		section_free(&db->users[i]);
	mem_free(db->users);
	mem_free(db);
}

size_t acl_rule_count(const struct acl_db *db)
{
	size_t n;

	if (!db)
		return 0;
	n = db->anon.count + db->patterns.count;
	for (size_t i = 0; i < db->nusers; i++)
		n += db->users[i].count;
	return n;
}

/* ------------------------------------------------------------ checking */

/*
 * Whether one level of a pattern (n bytes), with %c and %u replaced, equals
 * one level of the topic. user is NULL for an anonymous client (the caller
 * has skipped patterns with %u then, so "%u" stays literal here).
 */
static bool level_equal(const char *p, size_t n, const char *t, size_t tn, const char *cid,
			size_t clen, const char *user, size_t ulen)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const char *sub = NULL;
		size_t slen = 0;

		if (p[i] == '%' && i + 1 < n && p[i + 1] == 'c') {
			sub = cid;
			slen = clen;
		} else if (p[i] == '%' && i + 1 < n && p[i + 1] == 'u' && user) {
			sub = user;
			slen = ulen;
		}
		if (sub) {
			if (tn - k < slen || memcmp(t + k, sub, slen) != 0)
				return false;
			k += slen;
			i++;
			continue;
		}
		if (k == tn || t[k] != p[i])
			return false;
		k++;
	}
	return k == tn;
}

/*
 * topic_matches() for a pattern whose %c / %u are replaced as it goes, so
 * that checking allocates nothing. The replacements hold no '/', '+' or
 * '#' (acl_check refuses such ids first), so each pattern level stays one
 * level.
 */
static bool pattern_matches(const struct acl_rule *r, const char *t, size_t tlen, const char *cid,
			    size_t clen, const char *user, size_t ulen)
{
	const char *p = r->topic;
	size_t plen = r->len, pi = 0, ti = 0;

	for (bool first = true;; first = false) {
		size_t pe = pi, te = ti;

		while (pe < plen && p[pe] != '/')
			pe++;
		while (te < tlen && t[te] != '/')
			te++;
		if (pe - pi == 1 && (p[pi] == '#' || p[pi] == '+')) {
			if (first && t[0] == '$')
				return false;
			if (p[pi] == '#')
				return true;
		} else if (!level_equal(p + pi, pe - pi, t + ti, te - ti, cid, clen, user, ulen)) {
			return false;
		}
		if (pe == plen && te == tlen)
			return true;
		if (te == tlen)
			return plen - pe == 2 && p[pe + 1] == '#';
		if (pe == plen)
			return false;
		pi = pe + 1;
		ti = te + 1;
	}
}

/* The first decisive rule of a section: 1 allow, 0 deny, -1 none. */
static int check_section(const struct acl_section *s, const char *topic, size_t len,
			 unsigned access)
{
	for (size_t i = 0; i < s->count; i++) {
		const struct acl_rule *r = &s->rules[i];
		if (!topic_matches(r->topic, r->len, topic, len))
			continue;
		if (r->access == 0)
			return 0;
		if (r->access & access)
			return 1;
	}
	return -1;
}

/* ------------------------------------------------------------ SUBSCRIBE */

/*
 * A SUBSCRIBE is granted when some topic the filter matches could be read:
 * a READ rule overlaps the filter, and no single deny that would be looked
 * at first covers the whole overlap. Unsure cases grant, which is safe
 * because every delivery is READ-checked; what this refuses could never
 * deliver anything. Filters are walked level by level, patterns with their
 * %c / %u replaced on the fly, so nothing is allocated.
 */
struct flt {
	const char *s;
	size_t len;
	const char *cid, *user; /* cid NULL: no replacement (not a pattern) */
	size_t clen, ulen;
};

enum lkind { L_END, L_LIT, L_PLUS, L_HASH };

struct lvl {
	enum lkind kind;
	const struct flt *f;
	const char *s;
	size_t n;
};

struct cur {
	const struct flt *f;
	size_t pos;
	bool end;
};

/* Both filters at once: the levels of the topics that match both. */
struct meet {
	struct cur a, b;
	bool a_all, b_all; /* passed a '#': matches everything from here */
	bool first, empty;
};

static void cur_init(struct cur *c, const struct flt *f)
{
	c->f = f;
	c->pos = 0;
	c->end = false;
}

static struct lvl cur_next(struct cur *c)
{
	struct lvl l = {L_END, c->f, NULL, 0};
	size_t e = c->pos;

	if (c->end)
		return l;
	while (e < c->f->len && c->f->s[e] != '/')
		e++;
	l.s = c->f->s + c->pos;
	l.n = e - c->pos;
	l.kind = l.n != 1 ? L_LIT : l.s[0] == '+' ? L_PLUS : l.s[0] == '#' ? L_HASH : L_LIT;
	if (e == c->f->len)
		c->end = true;
	else
		c->pos = e + 1;
	return l;
}

/* The bytes of a level with %c / %u replaced, one at a time. */
struct xit {
	const struct lvl *l;
	size_t i;
	const char *sub;
	size_t slen, si;
};

static int xnext(struct xit *x)
{
	const struct flt *f = x->l->f;

	for (;;) {
		char c;
		if (x->sub && x->si < x->slen)
			return (unsigned char)x->sub[x->si++];
		x->sub = NULL;
		if (x->i >= x->l->n)
			return -1;
		c = x->l->s[x->i];
		if (c == '%' && f->cid && x->i + 1 < x->l->n) {
			char d = x->l->s[x->i + 1];
			if (d == 'c' || (d == 'u' && f->user)) {
				x->sub = d == 'c' ? f->cid : f->user;
				x->slen = d == 'c' ? f->clen : f->ulen;
				x->si = 0;
				x->i += 2;
				continue;
			}
		}
		x->i++;
		return (unsigned char)c;
	}
}

static bool lvl_eq(const struct lvl *a, const struct lvl *b)
{
	struct xit x = {a, 0, NULL, 0, 0}, y = {b, 0, NULL, 0, 0};
	int c;

	do {
		c = xnext(&x);
		if (c != xnext(&y))
			return false;
	} while (c >= 0);
	return true;
}

static bool lvl_dollar(const struct lvl *l)
{
	struct xit x = {l, 0, NULL, 0, 0};

	return xnext(&x) == '$';
}

static void meet_init(struct meet *m, const struct flt *a, const struct flt *b)
{
	cur_init(&m->a, a);
	cur_init(&m->b, b);
	m->a_all = m->b_all = m->empty = false;
	m->first = true;
}

/* The next level of the overlap: L_LIT, L_PLUS, L_HASH (all from here) or L_END. */
static struct lvl meet_next(struct meet *m)
{
	struct lvl none = {L_END, NULL, NULL, 0}, all = {L_HASH, NULL, NULL, 0};
	struct lvl la = m->a_all ? all : cur_next(&m->a);
	struct lvl lb = m->b_all ? all : cur_next(&m->b);
	bool first = m->first;

	m->first = false;
	if (m->empty)
		return none;
	m->a_all = la.kind == L_HASH;
	m->b_all = lb.kind == L_HASH;
	if (la.kind == L_HASH && lb.kind == L_HASH)
		return all;
	if (la.kind == L_END || lb.kind == L_END) {
		/* "a/#" also matches "a"; otherwise both must end together. */
		if (la.kind != L_HASH && lb.kind != L_HASH && la.kind != lb.kind)
			m->empty = true;
		return none;
	}
	if (la.kind == L_LIT && lb.kind == L_LIT) {
		if (!lvl_eq(&la, &lb))
			m->empty = true;
		return la;
	}
	if (la.kind != L_LIT && lb.kind != L_LIT)
		return la.kind == L_PLUS ? la : lb; /* '+' with '+' or '#' */
	/* A literal against a wildcard; a leading wildcard never matches '$'. */
	if (first && lvl_dollar(la.kind == L_LIT ? &la : &lb))
		m->empty = true;
	return la.kind == L_LIT ? la : lb;
}

static bool overlap(const struct flt *a, const struct flt *b)
{
	struct meet m;
	struct lvl l;

	meet_init(&m, a, b);
	do
		l = meet_next(&m);
	while (!m.empty && l.kind != L_END && l.kind != L_HASH);
	return !m.empty;
}

/* Whether every topic matching both a and b also matches d. */
static bool covers(const struct flt *d, const struct flt *a, const struct flt *b)
{
	struct cur c;
	struct meet m;

	cur_init(&c, d);
	meet_init(&m, a, b);
	for (bool first = true;; first = false) {
		struct lvl ld = cur_next(&c), li = meet_next(&m);

		if (m.empty)
			return true;
		if (ld.kind == L_HASH)
			return !(first && li.kind == L_LIT && lvl_dollar(&li));
		if (li.kind == L_END)
			return ld.kind == L_END;
		if (li.kind == L_HASH || ld.kind == L_END)
			return false;
		if (ld.kind == L_PLUS) {
			if (first && li.kind == L_LIT && lvl_dollar(&li))
				return false;
			continue;
		}
		if (li.kind != L_LIT || !lvl_eq(&ld, &li))
			return false;
	}
}

static struct flt rule_flt(const struct acl_rule *r, const struct flt *who)
{
	struct flt f = *who;

	f.s = r->topic;
	f.len = r->len;
	return f;
}

/* Whether a deny of s (denies come first) covers the overlap of f and g. */
static bool denied(const struct acl_section *s, const struct flt *who, const struct flt *f,
		   const struct flt *g)
{
	for (size_t i = 0; s && i < s->count && s->rules[i].access == 0; i++) {
		struct flt d = rule_flt(&s->rules[i], who);
		if (s->rules[i].uses_user && !who->user)
			continue; /* as in acl_check: not for anonymous clients */
		if (covers(&d, f, g))
			return true;
	}
	return false;
}

static bool may_subscribe(const struct acl_db *db, const struct acl_section *sec,
			  const char *username, const char *cid, const char *filter, size_t len)
{
	const struct flt plain = {NULL, 0, NULL, NULL, 0, 0};
	struct flt f = {filter, len, NULL, NULL, 0, 0}, who;

	if (!topic_filter_valid(filter, len))
		return false;
	for (size_t i = 0; sec && i < sec->count; i++) {
		struct flt g = rule_flt(&sec->rules[i], &plain);
		if ((sec->rules[i].access & ACL_READ) && overlap(&f, &g) &&
		    !denied(sec, &plain, &f, &g))
			return true;
	}
	if (db->patterns.count == 0 || !cid || strpbrk(cid, "+#/") ||
	    (username && strpbrk(username, "+#/")))
		return false;
	who = (struct flt){NULL, 0, cid, username, strlen(cid), username ? strlen(username) : 0};
	for (size_t i = 0; i < db->patterns.count; i++) {
		const struct acl_rule *r = &db->patterns.rules[i];
		struct flt g = rule_flt(r, &who);
		if (!(r->access & ACL_READ) || (r->uses_user && !username) || !overlap(&f, &g))
			continue;
		if (!denied(sec, &plain, &f, &g) && !denied(&db->patterns, &who, &f, &g))
			return true;
	}
	return false;
}

static int section_name_cmp(const void *a, const void *b)
{
	const struct acl_section *x = a, *y = b;

	return strcmp(x->user, y->user);
}

static const struct acl_section *user_section(const struct acl_db *db, const char *username)
{
	struct acl_section key;

	if (!username)
		return &db->anon;
	if (db->nusers == 0)
		return NULL;
	key.user = (char *)username;
	/* Repeated names were merged at load, so a name finds one section. */
	return bsearch(&key, db->users, db->nusers, sizeof(*db->users), section_name_cmp);
}

bool acl_check(const struct acl_db *db, const char *username, const char *client_id,
	       const char *topic, size_t len, enum acl_access access)
{
	const struct acl_section *sec;
	size_t clen, ulen;
	int verdict;

	if (!db || !topic || len == 0)
		return false;
	if (access == ACL_UNSUBSCRIBE)
		return true;
	sec = user_section(db, username);
	if (access == ACL_SUBSCRIBE) {
		const char *group, *filter;
		size_t glen, flen;
		bool valid;
		/* A shared subscription reads what its filter part matches. */
		if (topic_shared_parse(topic, len, &group, &glen, &filter, &flen, &valid)) {
			if (!valid)
				return false;
			topic = filter;
			len = flen;
		}
		return may_subscribe(db, sec, username, client_id, topic, len);
	}
	if ((access != ACL_READ && access != ACL_WRITE) || !topic_name_valid(topic, len))
		return false;
	if (sec) {
		verdict = check_section(sec, topic, len, (unsigned)access);
		if (verdict >= 0)
			return verdict == 1;
	}
	if (db->patterns.count == 0 || !client_id)
		return false;
	/* An id that could turn a pattern into a wildcard or another client's
	 * levels gets no pattern access ('/' is midge's addition). */
	if (strpbrk(client_id, "+#/") || (username && strpbrk(username, "+#/")))
		return false;
	clen = strlen(client_id);
	ulen = username ? strlen(username) : 0;
	for (size_t i = 0; i < db->patterns.count; i++) {
		const struct acl_rule *r = &db->patterns.rules[i];
		if (r->uses_user && !username)
			continue;
		if (!pattern_matches(r, topic, len, client_id, clen, username, ulen))
			continue;
		if (r->access == 0)
			return false;
		if (r->access & (unsigned)access)
			return true;
	}
	return false;
}
