/*
 * passwd.c: mosquitto-format password files.
 *
 * A file is read whole, split into lines with the same rules midge_passwd
 * uses, and each "user:hash" entry decoded into binary salt and digest up
 * front, so passwd_check only derives and compares. The table is sorted by
 * user name and never changes after loading, which is what makes checks
 * thread-safe. See passwd.h for the contract; what mosquitto 2.0.11 itself
 * accepts is noted where midge is stricter.
 */
#include "config.h"

#include "passwd.h"

#include "alloc.h"

#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/*
 * Why 210000 PBKDF2 iterations by default: it is the OWASP Password Storage
 * Cheat Sheet figure for PBKDF2-HMAC-SHA512, about 0.2 s of one core per
 * check on a 2020s x86 core, where mosquitto_passwd's 101 costs almost
 * nothing to an offline guesser. The files must still load in mosquitto 2.0,
 * so argon2id cannot be the default; "$7$" with any count can. midge checks
 * passwords off its event loops; mosquitto 2.0 hashes on its only loop, so a
 * file shared with it by many reconnecting clients may want a lower -I.
 */
_Static_assert(PASSWD_DEFAULT_ITERATIONS >= 100000, "PBKDF2 default too weak");

#define SALT_MAX 64
#define DIGEST_LEN 64		/* SHA-512, and mosquitto's PBKDF2 output length */
#define MOSQ_SALT_LEN 12	/* what mosquitto 2.0 writes and accepts */
#define ARGON2_SALT_MIN 8	/* ARGON2_MIN_SALT_LENGTH */
#define ARGON2_HASH_MIN 16	/* shorter digests are refused, not merely weak */
#define ARGON2_M_MAX 4194304u	/* KiB: a file asking for more than 4 GiB per check is an error */
#define USER_MAX 65535
#define FILE_MAX (64u << 20)

struct pw_entry {
	char *user;
	unsigned line;
	enum passwd_hash_kind kind;
	uint32_t t_cost; /* PBKDF2 iterations, or argon2 passes */
	uint32_t m_cost; /* argon2 KiB */
	uint32_t lanes;	 /* argon2 parallelism */
	size_t salt_len;
	size_t hash_len;
	unsigned char salt[SALT_MAX];
	unsigned char hash[DIGEST_LEN];
};

struct passwd_db {
	struct pw_entry *entries; /* sorted by user */
	size_t count;
	bool have_dummy;
	struct pw_entry dummy; /* the first entry's costs: the work done for unknown users */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ base64 */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes standard base64. padded: the length is a multiple of 4 and ends
 * in the '=' the data needs ("$6$"/"$7$", as OpenSSL writes them); else no
 * '=' at all (argon2's encoded form). Refuses any other character and
 * non-zero unused bits, so one hash has one spelling. Returns the decoded
 * length, or -1.
 */
static long b64_decode(const char *s, size_t len, bool padded, unsigned char *out, size_t outmax)
{
	size_t pad = 0, n, o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	if (padded) {
		if (len == 0 || len % 4 != 0)
			return -1;
		while (pad < 2 && s[len - 1 - pad] == '=')
			pad++;
	}
	n = len - pad;
	if (n % 4 == 1)
		return -1;
	if (n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > outmax)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1;
	return (long)o;
}

static size_t b64_encode(const unsigned char *in, size_t len, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

/* ------------------------------------------------------------ hash parsing */

/* Splits s at sep into exactly nfields non-empty fields. */
static bool split_fields(const char *s, size_t len, char sep, size_t nfields, const char **f,
			 size_t *flen)
{
	size_t k = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != sep)
			continue;
		if (k == nfields || i == start)
			return false;
		f[k] = s + start;
		flen[k] = i - start;
		k++;
		start = i + 1;
	}
	return k == nfields;
}

/* A decimal number of 1..max without sign or blanks. */
static bool parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v == 0 || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool decode_salt_hash(const char *salt, size_t slen, const char *hash, size_t hlen,
			     struct pw_entry *e, const char **why)
{
	long n = b64_decode(salt, slen, true, e->salt, sizeof(e->salt));

	/* mosquitto 2.0 takes only 12-byte salts, 2.1 writes 64-byte ones. */
	if (n != MOSQ_SALT_LEN && n != SALT_MAX) {
		*why = n < 0 ? "salt is not valid base64" : "salt is neither 12 nor 64 bytes";
		return false;
	}
	e->salt_len = (size_t)n;
	n = b64_decode(hash, hlen, true, e->hash, sizeof(e->hash));
	if (n != DIGEST_LEN) {
		*why = n < 0 ? "hash is not valid base64" : "hash is not 64 bytes";
		return false;
	}
	e->hash_len = DIGEST_LEN;
	return true;
}

/* "v=19$m=M,t=T,p=P$salt$hash", after "$argon2id$": exactly what libargon2 writes. */
static bool parse_argon2id(const char *s, size_t len, struct pw_entry *e, const char **why)
{
	const char *f[4], *p[3];
	size_t fl[4], pl[3];
	static const char keys[3] = {'m', 't', 'p'};
	uint32_t v[3];
	long n;

	if (!split_fields(s, len, '$', 4, f, fl)) {
		*why = "argon2id hash is not $argon2id$v=19$m=..,t=..,p=..$salt$hash";
		return false;
	}
	if (fl[0] != 4 || memcmp(f[0], "v=19", 4) != 0) {
		*why = "argon2id hash is not version 19";
		return false;
	}
	if (!split_fields(f[1], fl[1], ',', 3, p, pl)) {
		*why = "argon2id parameters are not m=<KiB>,t=<passes>,p=<lanes>";
		return false;
	}
	for (size_t k = 0; k < 3; k++) {
		if (pl[k] < 3 || p[k][0] != keys[k] || p[k][1] != '=' ||
		    !parse_u32(p[k] + 2, pl[k] - 2, UINT32_MAX, &v[k])) {
			*why = "argon2id parameters are not m=<KiB>,t=<passes>,p=<lanes>";
			return false;
		}
	}
	e->m_cost = v[0];
	e->t_cost = v[1];
	e->lanes = v[2];
	if (e->lanes > ARGON2_MAX_LANES || e->m_cost < 8 * e->lanes || e->m_cost > ARGON2_M_MAX) {
		*why = "argon2id parameters out of range";
		return false;
	}
	n = b64_decode(f[2], fl[2], false, e->salt, sizeof(e->salt));
	if (n < ARGON2_SALT_MIN) {
		*why = n < 0 ? "argon2id salt is not valid base64 (or longer than 64 bytes)"
			     : "argon2id salt is shorter than 8 bytes";
		return false;
	}
	e->salt_len = (size_t)n;
	n = b64_decode(f[3], fl[3], false, e->hash, sizeof(e->hash));
	if (n < ARGON2_HASH_MIN) {
		*why = n < 0 ? "argon2id hash is not valid base64 (or longer than 64 bytes)"
			     : "argon2id hash is shorter than 16 bytes";
		return false;
	}
	e->hash_len = (size_t)n;
	e->kind = PASSWD_ARGON2ID;
	return true;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

bool passwd_hash_known_prefix(const char *hash, size_t hlen)
{
	return has_prefix(hash, hlen, "$6$") || has_prefix(hash, hlen, "$7$") ||
	       has_prefix(hash, hlen, "$argon2id$");
}

static bool parse_hash(const char *s, size_t len, struct pw_entry *e, const char **why)
{
	const char *f[3];
	size_t fl[3];

	if (len == 0) {
		*why = "empty password hash";
		return false;
	}
	if (s[0] != '$') {
		*why = "plain-text password (hash the file with midge_passwd -U)";
		return false;
	}
	if (has_prefix(s, len, "$6$")) {
		if (!split_fields(s + 3, len - 3, '$', 2, f, fl)) {
			*why = "sha512 hash is not $6$salt$hash";
			return false;
		}
		e->kind = PASSWD_SHA512;
		return decode_salt_hash(f[0], fl[0], f[1], fl[1], e, why);
	}
	if (has_prefix(s, len, "$7$")) {
		if (!split_fields(s + 3, len - 3, '$', 3, f, fl)) {
			*why = "sha512-pbkdf2 hash is not $7$iterations$salt$hash";
			return false;
		}
		if (!parse_u32(f[0], fl[0], INT_MAX, &e->t_cost)) {
			*why = "sha512-pbkdf2 iteration count is not a number from 1 to 2147483647";
			return false;
		}
		e->kind = PASSWD_SHA512_PBKDF2;
		return decode_salt_hash(f[1], fl[1], f[2], fl[2], e, why);
	}
	if (has_prefix(s, len, "$argon2id$"))
		return parse_argon2id(s + 10, len - 10, e, why);
	*why = "unknown password hash type (not $6$, $7$ or $argon2id$)";
	return false;
}

bool passwd_hash_valid(const char *hash, size_t hlen, const char **why)
{
	struct pw_entry e;
	const char *dummy;
	bool ok;

	ok = parse_hash(hash, hlen, &e, why ? why : &dummy);
	OPENSSL_cleanse(&e, sizeof(e));
	return ok;
}

/* ------------------------------------------------------------ lines */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *len)
{
	while (*len && is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && is_blank((*s)[*len - 1]))
		(*len)--;
}

static bool user_ok(const char *u, size_t n, const char **why)
{
	if (n == 0) {
		*why = "empty user name";
		return false;
	}
	if (n > USER_MAX) {
		*why = "user name longer than 65535 bytes";
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c < 0x20 || c == 0x7F) {
			*why = "control character in user name";
			return false;
		}
		if (c == ':') {
			*why = "':' in user name";
			return false;
		}
	}
	return true;
}

bool passwd_user_valid(const char *user, const char **why)
{
	size_t n = strlen(user);

	if (!user_ok(user, n, why))
		return false;
	if (user[0] == '#') {
		*why = "user name starts with '#' (the line would read as a comment)";
		return false;
	}
	if (user[0] == ' ' || user[n - 1] == ' ') {
		*why = "user name begins or ends with a space";
		return false;
	}
	return true;
}

enum passwd_line passwd_split_line(const char *line, size_t len, const char **user, size_t *ulen,
				   const char **hash, size_t *hlen, const char **why)
{
	const char *colon;

	if (memchr(line, '\0', len)) {
		*why = "NUL byte in line";
		return PASSWD_LINE_BAD;
	}
	trim(&line, &len);
	/* mosquitto 2.0.11 skips blank lines and lines starting with '#'. */
	if (len == 0 || line[0] == '#')
		return PASSWD_LINE_SKIP;
	colon = memchr(line, ':', len);
	if (!colon) {
		/* mosquitto 2.0.11 ignores such a line; it is more likely a mistake. */
		*why = "no ':' between user name and password hash";
		return PASSWD_LINE_BAD;
	}
	*user = line;
	*ulen = (size_t)(colon - line);
	*hash = colon + 1;
	*hlen = len - *ulen - 1;
	trim(user, ulen);
	trim(hash, hlen);
	if (!user_ok(*user, *ulen, why))
		return PASSWD_LINE_BAD;
	return PASSWD_LINE_ENTRY;
}

/* ------------------------------------------------------------ loading */

static int read_whole(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "%s: cannot open password file: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t n;
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *nbuf;
			if (ncap > FILE_MAX + 1) {
				set_err(err, errlen, "%s: password file larger than 64 MiB", path);
				goto out;
			}
			nbuf = mem_malloc(ncap);
			if (!nbuf) {
				set_err(err, errlen, "%s: out of memory", path);
				goto out;
			}
			if (buf) {
				memcpy(nbuf, buf, len);
				OPENSSL_cleanse(buf, cap);
				mem_free(buf);
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_err(err, errlen, "%s: cannot read password file: %s", path,
				strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, cap);
		mem_free(buf);
	}
	close(fd);
	return rc;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct pw_entry *x = a, *y = b;

	return strcmp(x->user, y->user);
}

static void entries_free(struct pw_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mem_free(entries[i].user);
	if (entries) {
		OPENSSL_cleanse(entries, n * sizeof(*entries));
		mem_free(entries);
	}
}

/* Parses every line of buf into db->entries; 0 or -1 with err set. */
static int parse_lines(struct passwd_db *db, const char *path, const char *buf, size_t len,
		       char *err, size_t errlen)
{
	size_t cap = 0;
	unsigned lineno = 0;

	for (size_t pos = 0; pos < len;) {
		const char *line = buf + pos, *nl, *user, *hash, *why;
		size_t llen, ulen, hlen;
		struct pw_entry *e;

		nl = memchr(line, '\n', len - pos);
		llen = nl ? (size_t)(nl - line) : len - pos;
		pos += llen + 1;
		lineno++;
		switch (passwd_split_line(line, llen, &user, &ulen, &hash, &hlen, &why)) {
		case PASSWD_LINE_SKIP:
			continue;
		case PASSWD_LINE_BAD:
			set_err(err, errlen, "%s:%u: %s", path, lineno, why);
			return -1;
		case PASSWD_LINE_ENTRY:
			break;
		}
		if (db->count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct pw_entry *n = mem_calloc(ncap, sizeof(*n));
			if (!n) {
				set_err(err, errlen, "%s:%u: out of memory", path, lineno);
				return -1;
			}
			if (db->entries) {
				memcpy(n, db->entries, db->count * sizeof(*n));
				OPENSSL_cleanse(db->entries, cap * sizeof(*n));
				mem_free(db->entries);
			}
			db->entries = n;
			cap = ncap;
		}
		e = &db->entries[db->count];
		if (!parse_hash(hash, hlen, e, &why)) {
			set_err(err, errlen, "%s:%u: user \"%.*s\": %s", path, lineno,
				(int)(ulen > 64 ? 64 : ulen), user, why);
			return -1;
		}
		e->user = mem_strndup(user, ulen);
		if (!e->user) {
			set_err(err, errlen, "%s:%u: out of memory", path, lineno);
			return -1;
		}
		e->line = lineno;
		db->count++;
	}
	return 0;
}

struct passwd_db *passwd_load(const char *path, char *err, size_t errlen)
{
	struct passwd_db *db = NULL;
	char *buf = NULL;
	size_t len = 0;

	if (read_whole(path, &buf, &len, err, errlen) < 0)
		return NULL;
	db = mem_calloc(1, sizeof(*db));
	if (!db) {
		set_err(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (parse_lines(db, path, buf, len, err, errlen) < 0)
		goto fail;
	if (db->count) {
		/* Unknown users cost what the first user in the file costs. */
		db->dummy = db->entries[0];
		db->dummy.user = NULL;
		db->have_dummy = true;
	}
	if (db->count > 1)
		qsort(db->entries, db->count, sizeof(*db->entries), entry_cmp);
	for (size_t i = 1; i < db->count; i++) {
		const struct pw_entry *a = &db->entries[i - 1], *b = &db->entries[i];
		if (strcmp(a->user, b->user) == 0) {
			/* mosquitto 2.0.11 silently keeps the last one. */
			set_err(err, errlen, "%s:%u: user \"%s\" already has a password on line %u",
				path, a->line > b->line ? a->line : b->line, a->user,
				a->line < b->line ? a->line : b->line);
			goto fail;
		}
	}
	OPENSSL_cleanse(buf, len);
	mem_free(buf);
	return db;
fail:
	if (buf) {
		OPENSSL_cleanse(buf, len);
		mem_free(buf);
	}
	passwd_free(db);
	return NULL;
}

void passwd_free(struct passwd_db *db)
{
	if (!db)
		return;
	entries_free(db->entries, db->count);
	OPENSSL_cleanse(db, sizeof(*db));
	mem_free(db);
}

size_t passwd_count(const struct passwd_db *db)
{
	return db ? db->count : 0;
}

static const struct pw_entry *find(const struct passwd_db *db, const char *user)
{
	struct pw_entry key;

	if (!db || !user || db->count == 0)
		return NULL;
	key.user = (char *)user;
	return bsearch(&key, db->entries, db->count, sizeof(*db->entries), entry_cmp);
}

bool passwd_has_user(const struct passwd_db *db, const char *user)
{
	return find(db, user) != NULL;
}

/* ------------------------------------------------------------ hashing */

/* The digest of pw under e's kind, salt and costs, e->hash_len bytes into out. */
static int derive(const struct pw_entry *e, const void *pw, size_t pwlen, unsigned char *out)
{
	static const char empty[1] = "";
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	int ok;

	if (!pw)
		pw = empty;
	switch (e->kind) {
	case PASSWD_SHA512:
		ctx = EVP_MD_CTX_new();
		ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
		     EVP_DigestUpdate(ctx, pw, pwlen) == 1 &&
		     EVP_DigestUpdate(ctx, e->salt, e->salt_len) == 1 &&
		     EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == e->hash_len;
		EVP_MD_CTX_free(ctx);
		return ok ? 0 : -1;
	case PASSWD_SHA512_PBKDF2:
		if (pwlen > INT_MAX || e->t_cost > INT_MAX)
			return -1;
		ok = PKCS5_PBKDF2_HMAC(pw, (int)pwlen, e->salt, (int)e->salt_len, (int)e->t_cost,
				       EVP_sha512(), (int)e->hash_len, out);
		return ok == 1 ? 0 : -1;
	case PASSWD_ARGON2ID:
		if (pwlen > ARGON2_MAX_PWD_LENGTH)
			return -1;
		ok = argon2id_hash_raw(e->t_cost, e->m_cost, e->lanes, pw, pwlen, e->salt,
				       e->salt_len, out, e->hash_len);
		return ok == ARGON2_OK ? 0 : -1;
	}
	return -1;
}

enum passwd_result passwd_check(const struct passwd_db *db, const char *user, const void *pw,
				size_t pwlen)
{
	const struct pw_entry *e = find(db, user);
	unsigned char out[DIGEST_LEN];
	enum passwd_result res = PASSWD_MISMATCH;

	if (!e) {
		if (pw && db && db->have_dummy && derive(&db->dummy, pw, pwlen, out) == 0)
			OPENSSL_cleanse(out, sizeof(out));
		return PASSWD_NO_USER;
	}
	if (!pw)
		return PASSWD_MISMATCH;
	if (derive(e, pw, pwlen, out) == 0 && CRYPTO_memcmp(out, e->hash, e->hash_len) == 0)
		res = PASSWD_OK;
	OPENSSL_cleanse(out, sizeof(out));
	return res;
}

int passwd_verify_hash(const char *hash, size_t hlen, const void *pw, size_t pwlen)
{
	struct pw_entry e;
	unsigned char out[DIGEST_LEN];
	const char *why;
	int res = 0;

	memset(&e, 0, sizeof(e));
	if (!hash || !parse_hash(hash, hlen, &e, &why))
		return -1;
	if (pw && derive(&e, pw, pwlen, out) == 0 && CRYPTO_memcmp(out, e.hash, e.hash_len) == 0)
		res = 1;
	OPENSSL_cleanse(out, sizeof(out));
	OPENSSL_cleanse(&e, sizeof(e));
	return res;
}

static int hash_argon2id(uint32_t t_cost, const void *pw, size_t pwlen, char *out, size_t outlen)
{
	unsigned char salt[SALT_MAX];
	size_t need;
	int rc;

	need = argon2_encodedlen(t_cost, PASSWD_ARGON2_M_COST, PASSWD_ARGON2_PARALLELISM,
				 sizeof(salt), DIGEST_LEN, Argon2_id);
	if (need > outlen || pwlen > ARGON2_MAX_PWD_LENGTH ||
	    RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	/* libargon2 wipes its working memory itself (FLAG_clear_internal_memory). */
	rc = argon2id_hash_encoded(t_cost, PASSWD_ARGON2_M_COST, PASSWD_ARGON2_PARALLELISM, pw,
				   pwlen, salt, sizeof(salt), DIGEST_LEN, out, outlen);
	return rc == ARGON2_OK ? 0 : -1;
}

int passwd_hash(enum passwd_hash_kind kind, int iterations, const void *pw, size_t pwlen,
		char *out, size_t outlen)
{
	static const char empty[1] = "";
	struct pw_entry e;
	char salt64[SALT_MAX * 4 / 3 + 4], hash64[DIGEST_LEN * 4 / 3 + 4];
	unsigned char digest[DIGEST_LEN];
	int n = -1;

	if (!out || outlen == 0 || iterations < 0 || (!pw && pwlen))
		return -1;
	out[0] = '\0';
	if (!pw)
		pw = empty;
	if (kind == PASSWD_ARGON2ID)
		return hash_argon2id(iterations ? (uint32_t)iterations : PASSWD_ARGON2_T_COST, pw,
				     pwlen, out, outlen);
	if (kind != PASSWD_SHA512 && kind != PASSWD_SHA512_PBKDF2)
		return -1;
	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.t_cost = iterations ? (uint32_t)iterations : PASSWD_DEFAULT_ITERATIONS;
	e.salt_len = MOSQ_SALT_LEN;
	e.hash_len = DIGEST_LEN;
	if (RAND_bytes(e.salt, (int)e.salt_len) != 1 || derive(&e, pw, pwlen, digest) < 0)
		goto out;
	b64_encode(e.salt, e.salt_len, salt64);
	b64_encode(digest, sizeof(digest), hash64);
	if (kind == PASSWD_SHA512)
		n = snprintf(out, outlen, "$6$%s$%s", salt64, hash64);
	else
		n = snprintf(out, outlen, "$7$%u$%s$%s", (unsigned)e.t_cost, salt64, hash64);
	if (n < 0 || (size_t)n >= outlen) {
		OPENSSL_cleanse(out, outlen);
		out[0] = '\0';
		n = -1;
	}
out:
	OPENSSL_cleanse(digest, sizeof(digest));
	OPENSSL_cleanse(hash64, sizeof(hash64));
	OPENSSL_cleanse(&e, sizeof(e));
	return n < 0 ? -1 : 0;
}
