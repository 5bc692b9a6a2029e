/*
 * fuzz_passwd.c: mosquitto-format password files (broker/passwd.c).
 *
 * Input: a password file. It is loaded with passwd_load(); each line is also
 * split with passwd_split_line() and its parts given to passwd_user_valid(),
 * passwd_hash_valid() and passwd_hash_known_prefix(). A file that loads must
 * hold every user its lines name; then passwords ("secret", "", the user
 * name) are checked with passwd_check() and passwd_verify_hash(), for known
 * users and an unknown one, but only against cheap hashes: "$6$", "$7$" with
 * at most 64 iterations, argon2id with at most 64 KiB and 2 passes on 1 lane
 * (a fuzzed "$7$2000000000$..." would spend the run in PBKDF2). Finally a
 * "$6$" and a 3-iteration "$7$" hash of the first user's name are made with
 * passwd_hash() and must verify.
 */
#include "config.h"

#include "fuzz.h"
#include "passwd.h"

#include <stdbool.h>
#include <string.h>

/* Parses a decimal number of at most 9 digits at s[0, n); -1 if it is not one. */
static long number(const char *s, size_t n)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Whether checking a password against this hash is cheap (see the header). */
static bool cheap(const char *h, size_t n)
{
	if (n >= 3 && memcmp(h, "$6$", 3) == 0)
		return true;
	if (n >= 3 && memcmp(h, "$7$", 3) == 0) {
		const char *end = memchr(h + 3, '$', n - 3);
		long it = end ? number(h + 3, (size_t)(end - h - 3)) : -1;
		return it >= 0 && it <= 64;
	}
	if (n >= 10 && memcmp(h, "$argon2id$", 10) == 0) {
		/* $argon2id$v=19$m=M,t=T,p=P$salt$hash */
		const char *v = memchr(h + 10, '$', n - 10);
		if (!v)
			return false;
		const char *p = v + 1, *end = memchr(p, '$', (size_t)(h + n - p));
		if (!end)
			return false;
		long m = -1, t = -1, l = -1;
		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *f_end = comma ? comma : end;
			if (f_end - p >= 2 && p[1] == '=') {
				long x = number(p + 2, (size_t)(f_end - p - 2));
				if (p[0] == 'm')
					m = x;
				else if (p[0] == 't')
					t = x;
				else if (p[0] == 'p')
					l = x;
			}
			p = f_end + 1;
		}
		return m >= 0 && m <= 64 && t >= 0 && t <= 2 && l == 1;
	}
	return false;
}

static void try_passwords(const struct passwd_db *db, const char *user, const char *hash,
			  size_t hlen)
{
	static const char *const pws[] = {"secret", ""};
	enum passwd_result r;

	for (size_t i = 0; i < 3; i++) {
		const char *pw = i < 2 ? pws[i] : user;
		int v = passwd_verify_hash(hash, hlen, pw, strlen(pw));
		CHECK(v == 1 || v == 0);
		r = passwd_check(db, user, pw, strlen(pw));
		CHECK(r == (v ? PASSWD_OK : PASSWD_MISMATCH));
	}
	/* No password never matches. */
	CHECK(passwd_verify_hash(hash, hlen, NULL, 0) == 0);
	CHECK(passwd_check(db, user, NULL, 0) == PASSWD_MISMATCH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_file file;
	char err[512];
	const char *text = (const char *)data;
	char *first_user = NULL, *user = NULL;
	bool first_cheap = false;

	fuzz_file_init(&file, "midge-fuzz-passwd");
	fuzz_file_write(&file, data, size);
	struct passwd_db *db = passwd_load(file.path, err, sizeof(err));
	if (!db)
		CHECK(err[0] != '\0');

	size_t entries = 0;
	for (size_t pos = 0; pos < size;) {
		const char *nl = memchr(text + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - text - pos) : size - pos;
		const char *u, *h, *why;
		size_t ulen, hlen;

		if (passwd_split_line(text + pos, len, &u, &ulen, &h, &hlen, &why) ==
		    PASSWD_LINE_ENTRY) {
			bool valid = passwd_hash_valid(h, hlen, &why);
			(void)passwd_hash_known_prefix(h, hlen);
			user = strndup(u, ulen);
			CHECK(user);
			if (strlen(user) == ulen)
				(void)passwd_user_valid(user, &why);
			if (db) {
				/* A file that loaded has only good lines. */
				CHECK(valid && strlen(user) == ulen);
				CHECK(passwd_has_user(db, user));
				if (entries == 0) {
					first_user = strdup(user);
					first_cheap = cheap(h, hlen);
				}
				if (cheap(h, hlen))
					try_passwords(db, user, h, hlen);
			}
			entries++;
			free(user);
		}
		pos += len + 1;
	}
	if (db) {
		CHECK(passwd_count(db) == entries);
		/* An unknown user costs what the first user costs: only when that is cheap. */
		if (first_cheap || entries == 0) {
			CHECK(passwd_check(db, "", "secret", 6) == PASSWD_NO_USER);
			CHECK(passwd_has_user(db, "") == false);
		}
	}
	if (first_user) {
		char hash[PASSWD_HASH_MAX];
		size_t ulen = strlen(first_user);
		CHECK(passwd_hash(PASSWD_SHA512, 0, first_user, ulen, hash, sizeof(hash)) == 0);
		CHECK(passwd_verify_hash(hash, strlen(hash), first_user, ulen) == 1);
		CHECK(passwd_hash(PASSWD_SHA512_PBKDF2, 3, first_user, ulen, hash, sizeof(hash)) == 0);
		CHECK(passwd_verify_hash(hash, strlen(hash), first_user, ulen) == 1);
		CHECK(passwd_verify_hash(hash, strlen(hash), "x", 1) == 0 || ulen == 1);
	}
	free(first_user);
	passwd_free(db);
	return 0;
}
