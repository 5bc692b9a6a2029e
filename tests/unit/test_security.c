/*
 * test_security.c: unit tests of password files (passwd.c) and ACL files (acl.c).
 *
 * Hashes are checked against vectors made outside midge (Python's hashlib,
 * the argon2 reference strings), files from mosquitto_passwd 2.0.11 and
 * OpenSSL / libargon2 called directly; refusals by their "FILE:LINE:" text.
 * CRYPTO_memcmp and PKCS5_PBKDF2_HMAC are wrapped (hidden: only midge's
 * objects bind to them) to watch constant-time compares and the work done
 * for unknown users. The ACL tables encode mosquitto 2.0.11's observed
 * behaviour (acl.c lists it), and SUBSCRIBE is compared with brute force.
 */
#include "config.h"

#include "tests.h"

#include "acl.h"
#include "passwd.h"
#include "topic.h"

#include <argon2.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* ------------------------------------------------------------ wrapped OpenSSL calls */

static unsigned memcmp_calls;
static size_t memcmp_len;
static unsigned pbkdf2_calls;
static int pbkdf2_iter;

/* Constant-time like the real one: any test binary caller still gets a correct answer. */
__attribute__((visibility("hidden"))) int CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	memcmp_calls++;
	memcmp_len = len;
	for (size_t i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d != 0;
}

typedef int (*pbkdf2_fn)(const char *, int, const unsigned char *, int, int, const EVP_MD *, int,
			 unsigned char *);

__attribute__((visibility("hidden"))) int PKCS5_PBKDF2_HMAC(const char *pass, int passlen,
							      const unsigned char *salt, int saltlen,
							      int iter, const EVP_MD *digest,
							      int keylen, unsigned char *out)
{
	static pbkdf2_fn real;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "PKCS5_PBKDF2_HMAC");
	pbkdf2_calls++;
	pbkdf2_iter = iter;
	return real(pass, passlen, salt, saltlen, iter, digest, keylen, out);
}

/* ------------------------------------------------------------ files */

static char tmp_path[64];

static const char *write_tmp_len(const char *text, size_t len)
{
	int fd;

	strcpy(tmp_path, "/tmp/midge-security-XXXXXX");
	fd = mkstemp(tmp_path);
	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	ck_assert(write(fd, text, len) == (ssize_t)len);
	close(fd);
	return tmp_path;
}

static const char *write_tmp(const char *text)
{
	return write_tmp_len(text, strlen(text));
}

static struct passwd_db *pw_load_text(const char *text, char *err, size_t errlen)
{
	const char *path = write_tmp(text);
	struct passwd_db *db = passwd_load(path, err, errlen);

	unlink(path);
	return db;
}

static struct acl_db *acl_load_text_len(const char *text, size_t len, char *err, size_t errlen)
{
	const char *path = write_tmp_len(text, len);
	struct acl_db *db = acl_load(path, err, errlen);

	unlink(path);
	return db;
}

static struct acl_db *acl_load_text(const char *text, char *err, size_t errlen)
{
	return acl_load_text_len(text, strlen(text), err, errlen);
}

/* err must read "<tmp_path>:<line>: ..." and contain want. */
static void check_err(struct fails *f, const char *what, const char *err, unsigned line,
		      const char *want)
{
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "%s:%u: ", tmp_path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want))
		fail_note(f, "%s: got \"%s\", want \"%s...%s\"", what, err, prefix, want);
}

/* ------------------------------------------------------------ password vectors */

/*
 * Computed with Python's hashlib, salts bytes 1..12 and 64..127:
 * sha512(pw + salt) and pbkdf2_hmac("sha512", pw, salt, n, 64).
 */
#define SALT12 "AQIDBAUGBwgJCgsM"
#define SALT64 "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+fw=="
#define V6_12 "$6$" SALT12 "$VAE4iiG4X8R0u8r7L6jZAUj8HcNCmOJkImcb96pY+1NnTcLQalDWS+60RpHU0swm8QXqKGBl65uEAilSL4tDvQ=="
#define V6_64 "$6$" SALT64 "$gUT+L335m7A8y5o4Kv6GHELJB0k0Q7ksEp0TajKytvinePYmH/53UM1lfIdnt7Qu3yn//RtXRclWYDwb6b8iSQ=="
#define V7_101 "$7$101$" SALT12 "$vi3gtTBBsyA0ndLJ0V/YApuRViDA9ghC166cp1AjnIEUVevnLN/JRt4mV1VV33uV0F7F5qO0R1SqlyHqKHWWdg=="
#define V7_1000_64 "$7$1000$" SALT64 "$4MzvBL0i8D/KsjWIcT1q1cGenk4+BJc9Y3HbhNVNOSz/thYNzyLY7YKnv0poq20duzmVsW4arP8JpC/JbqS2iQ=="
#define V7_EMPTY "$7$1$" SALT12 "$nIOcnEy6B+Fm04/hxJXmQHgYYkyIpts2REC/xId6XjbdM6gkhTztVgTyOpyt/a85p8/CsHRiPbmHYIOoZNJFxw=="
#define V7_NUL "$7$5$" SALT12 "$rfKM1AESx9wjhRa0WDSJq9PKJXz2sVqkeLQTCZnWiRIM4gV/NKQ3MBeb67pTZLam5nC+7gg6rGM3w2gxFadUrA=="
#define V7_UTF8 "$7$3$" SALT12 "$/ZjpqxUKLmjbBax+cgEdIKqiL9QRrTB674Jl1H4mZenVM5L6Z0LVBwto6pdhztXmkRP6bnswRmYR5ACeSzdJcw=="
/* The argon2 reference implementation's test strings for "password" / "somesalt". */
#define A2_256 "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
#define A2_65536 "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

struct pw_case {
	const char *user;
	const char *pw;
	size_t len;
	enum passwd_result want;
};

#define PW(u, p, w) {u, p, sizeof(p) - 1, w}

static void check_pw_cases(struct passwd_db *db, const struct pw_case *c, size_t n)
{
	struct fails f = {0};

	for (size_t i = 0; i < n; i++) {
		enum passwd_result got = passwd_check(db, c[i].user, c[i].pw, c[i].len);
		if (got != c[i].want)
			fail_note(&f, "%s/%.*s: got %d, want %d", c[i].user, (int)c[i].len, c[i].pw,
				  got, c[i].want);
	}
	FAILS_CHECK(&f);
}

START_TEST(test_pw_vectors)
{
	static const struct pw_case cases[] = {
		PW("s12", "password", PASSWD_OK),
		PW("s12", "Password", PASSWD_MISMATCH),
		PW("s64", "hunter2", PASSWD_OK),
		PW("s64", "hunter3", PASSWD_MISMATCH),
		PW("p101", "password", PASSWD_OK),
		PW("p101", "password ", PASSWD_MISMATCH),
		PW("p101", "", PASSWD_MISMATCH),
		PW("p1000", "correct horse", PASSWD_OK),
		PW("p1000", "correct horsE", PASSWD_MISMATCH),
		PW("empty", "", PASSWD_OK),
		PW("empty", "x", PASSWD_MISMATCH),
		PW("nul", "a\0b", PASSWD_OK),
		PW("nul", "a", PASSWD_MISMATCH), /* mosquitto would cut at the NUL */
		PW("utf8", "p\xC3\xA4ssw\xC3\xB6rd", PASSWD_OK),
		PW("a2small", "password", PASSWD_OK),
		PW("a2small", "passwore", PASSWD_MISMATCH),
		PW("a2ref", "password", PASSWD_OK),
		PW("a2ref", "sassword", PASSWD_MISMATCH),
		PW("nobody", "password", PASSWD_NO_USER),
		PW("S12", "password", PASSWD_NO_USER),
	};
	char err[256] = "";
	struct passwd_db *db = pw_load_text("s12:" V6_12 "\n"
					    "s64:" V6_64 "\n"
					    "p101:" V7_101 "\n"
					    "p1000:" V7_1000_64 "\n"
					    "empty:" V7_EMPTY "\n"
					    "nul:" V7_NUL "\n"
					    "utf8:" V7_UTF8 "\n"
					    "a2small:" A2_256 "\n"
					    "a2ref:" A2_65536 "\n",
					    err, sizeof(err));

	ck_assert_msg(db != NULL, "%s", err);
	ck_assert_uint_eq(passwd_count(db), 9);
	ck_assert(passwd_has_user(db, "a2ref"));
	ck_assert(!passwd_has_user(db, "a2re"));
	ck_assert(!passwd_has_user(db, NULL));
	check_pw_cases(db, cases, sizeof(cases) / sizeof(cases[0]));
	/* No password at all never matches, not even the empty password's hash. */
	ck_assert_int_eq(passwd_check(db, "empty", NULL, 0), PASSWD_MISMATCH);
	ck_assert_int_eq(passwd_check(db, NULL, "password", 8), PASSWD_NO_USER);
	passwd_free(db);
	passwd_free(NULL);
	ck_assert_int_eq(passwd_check(NULL, "s12", "password", 8), PASSWD_NO_USER);
}
END_TEST

/* ------------------------------------------------------------ passwd_hash */

static size_t b64_decode_openssl(const char *s, size_t len, unsigned char *out)
{
	int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	size_t pad = 0;

	ck_assert_int_ge(n, 0);
	while (pad < len && s[len - 1 - pad] == '=')
		pad++;
	return (size_t)n - pad;
}

/* Recomputes a "$6$"/"$7$" string made by passwd_hash with OpenSSL directly. */
static void verify_with_openssl(const char *enc, const char *pw, int want_iter)
{
	unsigned char salt[96], hash[96], mine[64];
	const char *p = enc + 3, *d1, *d2;
	int iter = 0;
	size_t slen, hlen;

	if (enc[1] == '7') {
		iter = atoi(p);
		ck_assert_int_eq(iter, want_iter);
		p = strchr(p, '$') + 1;
	}
	d1 = strchr(p, '$');
	ck_assert_ptr_nonnull(d1);
	d2 = d1 + 1;
	ck_assert_ptr_null(strchr(d2, '$'));
	ck_assert_uint_eq((size_t)(d1 - p), 16); /* 12 bytes: what mosquitto 2.0 takes */
	ck_assert_uint_eq(strlen(d2), 88);
	slen = b64_decode_openssl(p, (size_t)(d1 - p), salt);
	hlen = b64_decode_openssl(d2, strlen(d2), hash);
	ck_assert_uint_eq(slen, 12);
	ck_assert_uint_eq(hlen, 64);
	if (enc[1] == '7') {
		ck_assert(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)slen, iter, EVP_sha512(),
					    64, mine) == 1);
	} else {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned int n = 0;
		ck_assert(EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1);
		ck_assert(EVP_DigestUpdate(ctx, pw, strlen(pw)) == 1);
		ck_assert(EVP_DigestUpdate(ctx, salt, slen) == 1);
		ck_assert(EVP_DigestFinal_ex(ctx, mine, &n) == 1);
		EVP_MD_CTX_free(ctx);
	}
	ck_assert(memcmp(mine, hash, 64) == 0);
}

START_TEST(test_pw_hash_formats)
{
	char a[PASSWD_HASH_MAX], b[PASSWD_HASH_MAX], err[256] = "", file[1024];
	struct passwd_db *db;

	ck_assert_int_eq(passwd_hash(PASSWD_SHA512_PBKDF2, 0, "s3cret", 6, a, sizeof(a)), 0);
	ck_assert_msg(strncmp(a, "$7$210000$", 10) == 0, "%s", a);
	verify_with_openssl(a, "s3cret", PASSWD_DEFAULT_ITERATIONS);
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512_PBKDF2, 1000, "s3cret", 6, b, sizeof(b)), 0);
	verify_with_openssl(b, "s3cret", 1000);
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512_PBKDF2, 7, "s3cret", 6, b, sizeof(b)), 0);
	verify_with_openssl(b, "s3cret", 7); /* -I lowers as well as raises */
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512, 0, "s3cret", 6, b, sizeof(b)), 0);
	ck_assert_msg(strncmp(b, "$6$", 3) == 0, "%s", b);
	verify_with_openssl(b, "s3cret", 0);
	/* Fresh salt every time. */
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512, 0, "s3cret", 6, a, sizeof(a)), 0);
	ck_assert_str_ne(a, b);

	ck_assert_int_eq(passwd_hash(PASSWD_ARGON2ID, 0, "s3cret", 6, a, sizeof(a)), 0);
	ck_assert_msg(strncmp(a, "$argon2id$v=19$m=47104,t=1,p=1$", 31) == 0, "%s", a);
	ck_assert_int_eq(argon2id_verify(a, "s3cret", 6), ARGON2_OK);
	ck_assert_int_ne(argon2id_verify(a, "s3creT", 6), ARGON2_OK);
	ck_assert_int_eq(passwd_hash(PASSWD_ARGON2ID, 2, "s3cret", 6, b, sizeof(b)), 0);
	ck_assert_msg(strstr(b, ",t=2,") != NULL, "%s", b);
	ck_assert_int_eq(argon2id_verify(b, "s3cret", 6), ARGON2_OK);

	/* And they load back. */
	snprintf(file, sizeof(file), "x:%s\ny:%s\n", a, b);
	db = pw_load_text(file, err, sizeof(err));
	ck_assert_msg(db != NULL, "%s", err);
	ck_assert_int_eq(passwd_check(db, "x", "s3cret", 6), PASSWD_OK);
	ck_assert_int_eq(passwd_check(db, "y", "s3cret", 6), PASSWD_OK);
	ck_assert_int_eq(passwd_check(db, "y", "s3cre", 5), PASSWD_MISMATCH);
	passwd_free(db);
}
END_TEST

START_TEST(test_pw_hash_errors)
{
	char out[PASSWD_HASH_MAX];

	ck_assert_int_eq(passwd_hash(PASSWD_SHA512_PBKDF2, 5, "pw", 2, out, 40), -1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(passwd_hash(PASSWD_ARGON2ID, 1, "pw", 2, out, 100), -1);
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512, 0, "pw", 2, out, 0), -1);
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512_PBKDF2, -1, "pw", 2, out, sizeof(out)), -1);
	ck_assert_int_eq(passwd_hash((enum passwd_hash_kind)42, 1, "pw", 2, out, sizeof(out)), -1);
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512, 0, NULL, 2, out, sizeof(out)), -1);
	/* The empty password is a password. */
	ck_assert_int_eq(passwd_hash(PASSWD_SHA512_PBKDF2, 1, NULL, 0, out, sizeof(out)), 0);
}
END_TEST

/* ------------------------------------------------------------ mosquitto_passwd files */

struct fixture_user {
	const char *user, *pw;
};

static void check_users(struct passwd_db *db, const struct fixture_user *u, size_t n)
{
	struct fails f = {0};

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(u[i].pw);
		if (passwd_check(db, u[i].user, u[i].pw, len) != PASSWD_OK)
			fail_note(&f, "%s refused", u[i].user);
		if (passwd_check(db, u[i].user, "wrong", 5) != PASSWD_MISMATCH)
			fail_note(&f, "%s takes a wrong password", u[i].user);
	}
	FAILS_CHECK(&f);
}

START_TEST(test_pw_mosquitto_fixture)
{
	/* Made by Debian's mosquitto_passwd 2.0.11: -c -b; -b; -H sha512 -b; -I 5000 -b; -b with "". */
	static const struct fixture_user users[] = {
		{"alice", "alice-pw"},
		{"bob", "b0b:with$colon"},
		{"carol", "carol pw"},
		{"dave", "d\xC3\xA4v\xC3\xA9"},
		{"eve smith", ""},
	};
	char path[512], err[512] = "";
	struct passwd_db *db;

	snprintf(path, sizeof(path), "%s/mosquitto-2.0.11.passwd", test_data_dir());
	db = passwd_load(path, err, sizeof(err));
	ck_assert_msg(db != NULL, "%s", err);
	ck_assert_uint_eq(passwd_count(db), 5);
	check_users(db, users, sizeof(users) / sizeof(users[0]));
	passwd_free(db);
}
END_TEST

#define MOSQUITTO_PASSWD "/usr/bin/mosquitto_passwd"

static int run_tool(char *const argv[])
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_pw_mosquitto_live)
{
	static const struct fixture_user users[] = {
		{"u1", "p1"}, {"u2", "p2 with spaces"}, {"u3", "p3"}, {"u4", "p4"},
	};
	char dir[] = "/tmp/midge-mosqpw-XXXXXX", file[64], err[256] = "";
	struct passwd_db *db;

	if (access(MOSQUITTO_PASSWD, X_OK) != 0) {
		fprintf(stderr, "test_pw_mosquitto_live: skipped, no %s\n", MOSQUITTO_PASSWD);
		return;
	}
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/pw", dir);
	{
		char *c1[] = {MOSQUITTO_PASSWD, "-c", "-b", file, "u1", "p1", NULL};
		char *c2[] = {MOSQUITTO_PASSWD, "-H", "sha512", "-b", file, "u2", "p2 with spaces", NULL};
		char *c3[] = {MOSQUITTO_PASSWD, "-I", "7", "-b", file, "u3", "p3", NULL};
		char *c4[] = {MOSQUITTO_PASSWD, "-H", "sha512-pbkdf2", "-b", file, "u4", "p4", NULL};
		ck_assert_int_eq(run_tool(c1), 0);
		ck_assert_int_eq(run_tool(c2), 0);
		ck_assert_int_eq(run_tool(c3), 0);
		ck_assert_int_eq(run_tool(c4), 0);
	}
	db = passwd_load(file, err, sizeof(err));
	unlink(file);
	rmdir(dir);
	ck_assert_msg(db != NULL, "%s", err);
	ck_assert_uint_eq(passwd_count(db), 4);
	check_users(db, users, sizeof(users) / sizeof(users[0]));
	passwd_free(db);
}
END_TEST

/* ------------------------------------------------------------ what loads, what does not */

START_TEST(test_pw_accepted_layouts)
{
	static const char *const files[] = {
		"u:" V7_101 "\n",
		"u:" V7_101,				   /* no final newline */
		"# a comment\n\nu:" V7_101 "\n\n",	   /* comments, blank lines */
		"   # indented comment\n\t\nu:" V7_101 "\n", /* mosquitto skips it too */
		"u:" V7_101 "\r\n",			   /* CRLF */
		"u:" V7_101 "  \t \n",			   /* trailing blanks */
		"  u:" V7_101 "\n",			   /* leading blanks */
		"u \t: " V7_101 "\n",			   /* blanks around ':' */
		"#u:" V6_12 "\nu:" V7_101 "\n",		   /* a commented-out entry */
	};
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char err[256] = "";
		struct passwd_db *db = pw_load_text(files[i], err, sizeof(err));
		if (!db) {
			fail_note(&f, "file %zu refused: %s", i, err);
			continue;
		}
		if (passwd_count(db) != 1 || passwd_check(db, "u", "password", 8) != PASSWD_OK)
			fail_note(&f, "file %zu: count %zu", i, passwd_count(db));
		passwd_free(db);
	}
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_pw_empty_file)
{
	char err[256] = "";
	struct passwd_db *db = pw_load_text("# nobody yet\n", err, sizeof(err));

	ck_assert_msg(db != NULL, "%s", err);
	ck_assert_uint_eq(passwd_count(db), 0);
	ck_assert_int_eq(passwd_check(db, "u", "x", 1), PASSWD_NO_USER);
	passwd_free(db);
}
END_TEST

struct refusal {
	const char *text;
	unsigned line;
	const char *want;
};

START_TEST(test_pw_refusals)
{
	static const struct refusal cases[] = {
		{"u:secret\n", 1, "plain-text password"},
		{"ok:" V7_101 "\nu:secret\n", 2, "user \"u\": plain-text password"},
		{"u\n", 1, "no ':'"},
		{"u:\n", 1, "empty password hash"},
		{"u:   \n", 1, "empty password hash"},
		{":" V7_101 "\n", 1, "empty user name"},
		{"u\x01x:" V7_101 "\n", 1, "control character"},
		{"u:$5$abc$def\n", 1, "unknown password hash type"},
		{"u:$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "unknown password hash type"},
		{"u:$\n", 1, "unknown password hash type"},
		{"u:$6$" SALT12 "$VAE4iiG4X8R0u8r7L6jZAUj8HcNCmOJkImcb96pY\n", 1, "hash is not"},
		{"u:$6$" SALT12 "$VAE4iiG4X8R0u8r7L6jZAUj8HcNCmOJkImcb96pY+1NnTcLQalDWS+60RpHU0sw=\n", 1,
		 "hash is not 64 bytes"},
		{"u:$6$" SALT12 "$VAE4iiG4X8R0u8r7L6jZAUj8HcNCmOJkImcb96pY+1NnTcLQalDWS+60RpHU0swm8QXqKGBl65uEAilSL4tDvQ\n",
		 1, "hash is not valid base64"}, /* padding missing */
		{"u:$6$" SALT12 "$VAE4iiG4X8R0u8r7L6jZAUj8HcNCmOJkImcb96pY+1NnTcLQalDWS+60RpHU0swm8QXqKGBl65uEAilSL4tDvR==\n",
		 1, "hash is not valid base64"}, /* non-zero unused bits */
		{"u:$6$AQIDBAUGBwgJCgsMDQ4PEA==$VAE4iiG4X8R0u8r7L6jZAUj8HcNCmOJkImcb96pY+1NnTcLQalDWS+60RpHU0swm8QXqKGBl65uEAilSL4tDvQ==\n",
		 1, "salt is neither 12 nor 64 bytes"},
		{"u:$6$AQID BAUGBwgJCgsM$VAE4iiG4X8R0u8r7L6jZAUj8HcNCmOJkImcb96pY+1NnTcLQalDWS+60RpHU0swm8QXqKGBl65uEAilSL4tDvQ==\n",
		 1, "salt is not valid base64"},
		{"u:$6$" SALT12 "\n", 1, "not $6$salt$hash"},
		{"u:" V7_101 "$\n", 1, "not $7$iterations$salt$hash"},
		{"u:" V7_101 "$extra\n", 1, "not $7$iterations$salt$hash"},
		{"u:" V7_101 ":extra\n", 1, "not valid base64"},
		{"u:$7$0$" SALT12 "$x\n", 1, "iteration count"},
		{"u:$7$-5$" SALT12 "$x\n", 1, "iteration count"},
		{"u:$7$+5$" SALT12 "$x\n", 1, "iteration count"},
		{"u:$7$abc$" SALT12 "$x\n", 1, "iteration count"},
		{"u:$7$2147483648$" SALT12 "$x\n", 1, "iteration count"},
		{"u:$argon2id$v=16$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "not version 19"},
		{"u:$argon2id$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "argon2id hash is not"},
		{"u:$argon2id$v=19$m=256,t=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "parameters are not"},
		{"u:$argon2id$v=19$t=2,m=256,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "parameters are not"},
		{"u:$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "parameters are not"},
		{"u:$argon2id$v=19$m=4,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "out of range"},
		{"u:$argon2id$v=19$m=99999999,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "out of range"},
		{"u:$argon2id$v=19$m=256,t=2,p=1$c29tZQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "salt is shorter than 8 bytes"},
		{"u:$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA\n", 1,
		 "hash is shorter than 16 bytes"},
		{"u:$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\n", 1,
		 "salt is not valid base64"},
		{"a:" V7_101 "\nb:" V6_12 "\na:" V6_64 "\n", 3, "\"a\" already has a password on line 1"},
	};
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512] = "", what[32];
		struct passwd_db *db = pw_load_text(cases[i].text, err, sizeof(err));
		snprintf(what, sizeof(what), "case %zu", i);
		if (db) {
			fail_note(&f, "%s loaded", what);
			passwd_free(db);
			continue;
		}
		check_err(&f, what, err, cases[i].line, cases[i].want);
	}
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_pw_file_errors)
{
	char err[512] = "", dir[] = "/tmp/midge-pwdir-XXXXXX";
	struct passwd_db *db;
	const char *path;

	db = passwd_load("/nonexistent/midge.passwd", err, sizeof(err));
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, "/nonexistent/midge.passwd: cannot open") == err, "%s", err);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	db = passwd_load(dir, err, sizeof(err));
	rmdir(dir);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, "not a regular file") != NULL, "%s", err);
	/* A NUL byte is never part of a password file. */
	path = write_tmp_len("u:" V7_101 "\nv\0:x\n", sizeof("u:" V7_101 "\nv\0:x\n") - 1);
	db = passwd_load(path, err, sizeof(err));
	unlink(path);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, ":2: NUL byte") != NULL, "%s", err);
	/* No err buffer is fine. */
	ck_assert_ptr_null(passwd_load("/nonexistent/midge.passwd", NULL, 0));
}
END_TEST

/* ------------------------------------------------------------ timing properties */

START_TEST(test_pw_constant_time_compare)
{
	char err[256] = "";
	struct passwd_db *db = pw_load_text("p:" V7_101 "\ns:" V6_12 "\na:" A2_256 "\n", err,
					    sizeof(err));

	ck_assert_msg(db != NULL, "%s", err);
	memcmp_calls = 0;
	ck_assert_int_eq(passwd_check(db, "p", "password", 8), PASSWD_OK);
	ck_assert_uint_eq(memcmp_calls, 1);
	ck_assert_uint_eq(memcmp_len, 64);
	ck_assert_int_eq(passwd_check(db, "p", "passworX", 8), PASSWD_MISMATCH);
	ck_assert_uint_eq(memcmp_calls, 2);
	ck_assert_uint_eq(memcmp_len, 64);
	ck_assert_int_eq(passwd_check(db, "s", "x", 1), PASSWD_MISMATCH);
	ck_assert_uint_eq(memcmp_calls, 3);
	ck_assert_int_eq(passwd_check(db, "a", "password", 8), PASSWD_OK);
	ck_assert_uint_eq(memcmp_calls, 4);
	ck_assert_uint_eq(memcmp_len, 32);
	passwd_free(db);
}
END_TEST

START_TEST(test_pw_unknown_user_costs_a_hash)
{
	char err[256] = "";
	struct passwd_db *db = pw_load_text("p:" V7_101 "\nq:" V7_1000_64 "\n", err, sizeof(err));

	ck_assert_msg(db != NULL, "%s", err);
	pbkdf2_calls = 0;
	ck_assert_int_eq(passwd_check(db, "nobody", "password", 8), PASSWD_NO_USER);
	ck_assert_uint_eq(pbkdf2_calls, 1);
	ck_assert_int_eq(pbkdf2_iter, 101); /* the first entry's cost */
	ck_assert_int_eq(passwd_check(db, "q", "x", 1), PASSWD_MISMATCH);
	ck_assert_uint_eq(pbkdf2_calls, 2);
	ck_assert_int_eq(pbkdf2_iter, 1000);
	/* Without a password there is nothing to hash, known user or not. */
	ck_assert_int_eq(passwd_check(db, "p", NULL, 0), PASSWD_MISMATCH);
	ck_assert_int_eq(passwd_check(db, "nobody", NULL, 0), PASSWD_NO_USER);
	ck_assert_uint_eq(pbkdf2_calls, 2);
	passwd_free(db);
}
END_TEST

/* ------------------------------------------------------------ line helpers */

START_TEST(test_pw_line_helpers)
{
	const char *u, *h, *why = NULL;
	size_t ul, hl;

	ck_assert_int_eq(passwd_split_line(" bob : x y \r", 12, &u, &ul, &h, &hl, &why),
			 PASSWD_LINE_ENTRY);
	ck_assert_uint_eq(ul, 3);
	ck_assert(memcmp(u, "bob", 3) == 0);
	ck_assert_uint_eq(hl, 3);
	ck_assert(memcmp(h, "x y", 3) == 0);
	ck_assert_int_eq(passwd_split_line("  # c", 5, &u, &ul, &h, &hl, &why), PASSWD_LINE_SKIP);
	ck_assert_int_eq(passwd_split_line(" \t\r", 3, &u, &ul, &h, &hl, &why), PASSWD_LINE_SKIP);
	ck_assert_int_eq(passwd_split_line("bob", 3, &u, &ul, &h, &hl, &why), PASSWD_LINE_BAD);
	ck_assert_ptr_nonnull(why);

	ck_assert(passwd_hash_valid(V7_101, strlen(V7_101), NULL));
	ck_assert(passwd_hash_valid(A2_256, strlen(A2_256), &why));
	ck_assert(!passwd_hash_valid("secret", 6, &why));
	ck_assert(passwd_hash_known_prefix("$7$x", 4));
	ck_assert(passwd_hash_known_prefix("$argon2id$", 10));
	ck_assert(!passwd_hash_known_prefix("$argon2i$", 9));
	ck_assert(!passwd_hash_known_prefix("$5$", 3));

	ck_assert(passwd_user_valid("eve smith", &why));
	ck_assert(passwd_user_valid("d\xC3\xA4v\xC3\xA9", &why));
	ck_assert(!passwd_user_valid("", &why));
	ck_assert(!passwd_user_valid("a:b", &why));
	ck_assert(!passwd_user_valid("#a", &why));
	ck_assert(!passwd_user_valid(" a", &why));
	ck_assert(!passwd_user_valid("a ", &why));
	ck_assert(!passwd_user_valid("a\tb", &why));
}
END_TEST

/* ------------------------------------------------------------ ACL tables */

enum { R = ACL_READ, W = ACL_WRITE, S = ACL_SUBSCRIBE, U = ACL_UNSUBSCRIBE };

struct acl_case {
	const char *user; /* NULL: anonymous */
	const char *cid;
	const char *topic;
	int access;
	bool allow;
};

struct acl_table {
	const char *name;
	const char *file;
	const struct acl_case *cases;
	size_t n;
};

#define ACL_TABLE(name, file, ...)                                                       \
	{                                                                                \
		name, file, (const struct acl_case[]){__VA_ARGS__},                      \
			sizeof((const struct acl_case[]){__VA_ARGS__}) / sizeof(struct acl_case) \
	}

static const struct acl_table acl_tables[] = {
	ACL_TABLE("access words; anonymous rules; a user's section",
		  "topic read a/#\ntopic write w/#\ntopic rw/#\ntopic readwrite both/+\n"
		  "user u1\ntopic read u/#\n",
		  {NULL, "c", "a/b", R, true}, {NULL, "c", "a/b", W, false},
		  {NULL, "c", "a", R, true}, /* a/# covers a */
		  {NULL, "c", "w/b", R, false}, {NULL, "c", "w/b", W, true},
		  {NULL, "c", "rw/b", R, true}, {NULL, "c", "rw/b", W, true}, /* no word: readwrite */
		  {NULL, "c", "both/x", R, true}, {NULL, "c", "both/x", W, true},
		  {NULL, "c", "x", R, false}, {NULL, "c", "u/b", R, false},
		  {"u1", "c", "u/b", R, true}, {"u1", "c", "u/b", W, false},
		  {"u1", "c", "a/b", R, false}, /* anonymous rules are not everyone's */
		  {"u2", "c", "u/b", R, false}, {"u2", "c", "a/b", R, false}),
	ACL_TABLE("topics and user names with spaces",
		  "topic read a b/c d\ntopic write  x y\nuser John Smith\ntopic read q\n",
		  {NULL, "c", "a b/c d", R, true}, {NULL, "c", "x y", W, true},
		  {NULL, "c", " x y", W, false}, {"John Smith", "c", "q", R, true},
		  {"John", "c", "q", R, false}),
	ACL_TABLE("comments, blank lines, CRLF and trailing blanks",
		  "# comment\n\n   \ntopic read a/b   \r\nuser  u1  \ntopic read q\t\n",
		  {NULL, "c", "a/b", R, true}, {NULL, "c", "a/b   ", R, false},
		  {"u1", "c", "q", R, true}, {"u1  ", "c", "q", R, false}),
	ACL_TABLE("a user named twice gets both blocks",
		  "user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n",
		  {"u", "c", "a", R, true}, {"u", "c", "c", R, true}, {"u", "c", "b", R, false},
		  {"v", "c", "b", R, true}, {"v", "c", "c", R, false}, {NULL, "c", "a", R, false}),
	ACL_TABLE("deny wins in any order",
		  "topic read a/#\ntopic deny a/b\ntopic deny z/b\ntopic read z/#\n"
		  "topic readwrite d/#\ntopic deny d/+/x\n",
		  {NULL, "c", "a/b", R, false}, {NULL, "c", "a/c", R, true},
		  {NULL, "c", "z/b", R, false}, {NULL, "c", "z/c", R, true},
		  {NULL, "c", "d/b/x", W, false}, {NULL, "c", "d/b/x", R, false},
		  {NULL, "c", "d/b/y", W, true}),
	ACL_TABLE("a rule without the access bit does not stop the search",
		  "topic write a/#\ntopic read a/b\n",
		  {NULL, "c", "a/b", R, true}, {NULL, "c", "a/b", W, true},
		  {NULL, "c", "a/c", R, false}),
	ACL_TABLE("+ in a rule",
		  "topic read a/+/c\n",
		  {NULL, "c", "a/b/c", R, true}, {NULL, "c", "a//c", R, true},
		  {NULL, "c", "a/b/c/d", R, false}, {NULL, "c", "a/c", R, false}),
	ACL_TABLE("wildcard rules do not reach $ topics",
		  "topic read #\ntopic read +/x\n",
		  {NULL, "c", "$SYS/broker/version", R, false}, {NULL, "c", "$t/x", R, false},
		  {NULL, "c", "y/x", R, true}, {NULL, "c", "any/thing", R, true}),
	ACL_TABLE("$ rules reach $ topics",
		  "topic read $SYS/#\ntopic read $t/+\n",
		  {NULL, "c", "$SYS/broker/version", R, true}, {NULL, "c", "$t/x", R, true},
		  {NULL, "c", "$t/x/y", R, false}, {NULL, "c", "SYS/x", R, false}),
	ACL_TABLE("patterns: %c and %u as whole levels",
		  "pattern readwrite p/%c/x\npattern readwrite q/%u/x\n",
		  {NULL, "c1", "p/c1/x", R, true}, {"u1", "c1", "p/c1/x", W, true},
		  {NULL, "c1", "q/u1/x", R, false}, {NULL, "c1", "q/%u/x", R, false},
		  {"u1", "c1", "q/u1/x", R, true}, {"u1", "c1", "q/c1/x", R, false},
		  {"u1", "c2", "p/c1/x", R, false}),
	ACL_TABLE("patterns: %c and %u inside a level (mosquitto 2.0.11)",
		  "pattern read p/x%c/y\npattern read q/%u-s\npattern read r/%c%u\n"
		  "pattern read %c\npattern read %u/#\n",
		  {"u1", "c1", "p/xc1/y", R, true}, {"u1", "c1", "p/x%c/y", R, false},
		  {"u1", "c1", "q/u1-s", R, true}, {"u1", "c1", "q/%u-s", R, false},
		  {"u1", "c1", "r/c1u1", R, true}, {"u1", "c1", "r/%c%u", R, false},
		  {"u1", "c1", "c1", R, true}, {"u1", "c1", "u1/a/b", R, true},
		  {"u1", "c1", "u1", R, true}, {NULL, "c1", "c1", R, true}),
	ACL_TABLE("patterns apply to every client wherever they are",
		  "pattern read p/%u\nuser u1\ntopic read a\npattern read c/%c\n",
		  {"u1", "c9", "p/u1", R, true}, {"u2", "c9", "p/u2", R, true},
		  {NULL, "c9", "p/", R, false}, {"u2", "c9", "c/c9", R, true},
		  {NULL, "c9", "c/c9", R, true}, {"u1", "c9", "a", R, true}),
	ACL_TABLE("ids with + or # (and midge: /) get no pattern access",
		  "pattern read p/%c/#\npattern read q/%u/#\npattern read fixed/#\ntopic read t\n"
		  "user u+x\ntopic read t\nuser +\ntopic read t\n",
		  {NULL, "+", "p/other/1", R, false}, {NULL, "+", "fixed/1", R, false},
		  {NULL, "+", "t", R, true}, /* topic rules still apply */
		  {"+", "c", "q/zz/1", R, false}, {"+", "c", "t", R, true},
		  {NULL, "#", "t", R, true}, {NULL, "#", "p/x/1", R, false},
		  {"u+x", "c", "t", R, true}, {"u+x", "c", "p/c/1", R, false},
		  {NULL, "a/b", "p/a/b/1", R, false}, {NULL, "a", "p/a/1", R, true},
		  {NULL, "a/b", "fixed/1", R, false}, {"a/b", "c", "fixed/1", R, false},
		  {"a", "c", "q/a/1", R, true}),
	ACL_TABLE("a pattern deny does not take back a topic grant",
		  "pattern deny a/%u\nuser u1\ntopic read a/#\n",
		  {"u1", "c", "a/u1", R, true}, {"u2", "c", "a/u2", R, false}),
	ACL_TABLE("a topic deny beats a pattern grant",
		  "pattern read a/%u\nuser u1\ntopic deny a/u1\n",
		  {"u1", "c", "a/u1", R, false}, {"u2", "c", "a/u2", R, true}),
	ACL_TABLE("pattern deny beats pattern grant",
		  "pattern read a/#\npattern deny a/%c\n",
		  {"u1", "c1", "a/c1", R, false}, {"u1", "c1", "a/x", R, true}),
	ACL_TABLE("%c is literal in topic rules; other % sequences are literal",
		  "topic read a/%c\npattern read b/%x/%c\npattern read c/%%c\n",
		  {NULL, "c1", "a/c1", R, false}, {NULL, "c1", "a/%c", R, true},
		  {NULL, "c1", "b/%x/c1", R, true}, {NULL, "c1", "c/%c1", R, true}),
	ACL_TABLE("pattern access bits",
		  "pattern write p/%c\n",
		  {NULL, "c1", "p/c1", R, false}, {NULL, "c1", "p/c1", W, true}),
	ACL_TABLE("an empty file refuses everything",
		  "",
		  {NULL, "c", "a", R, false}, {NULL, "c", "a", W, false}, {"u", "c", "a", R, false}),
	ACL_TABLE("user sections only: anonymous and unknown users get nothing",
		  "user u\ntopic a\n",
		  {NULL, "c", "a", R, false}, {"u", "c", "a", R, true}, {"u", "c", "a", W, true},
		  {"v", "c", "a", R, false}),
	ACL_TABLE("a one-word topic that is a keyword; a tab is not a separator",
		  "topic user\ntopic read\tb\n",
		  {NULL, "c", "user", W, true}, {NULL, "c", "b", R, false},
		  {NULL, "c", "read\tb", R, true}),
	ACL_TABLE("SUBSCRIBE: granted when the filter overlaps what may be read",
		  "topic read a/#\ntopic write w/#\ntopic readwrite rw/#\ntopic deny rw/secret\n"
		  "topic read $SYS/broker/#\ntopic read x/+/z\n",
		  {NULL, "c", "a/b", S, true}, {NULL, "c", "a/+", S, true}, {NULL, "c", "a/#", S, true},
		  {NULL, "c", "a", S, true}, {NULL, "c", "#", S, true}, {NULL, "c", "+/b", S, true},
		  {NULL, "c", "+", S, true}, {NULL, "c", "+/+/+", S, true},
		  {NULL, "c", "b/#", S, false}, {NULL, "c", "w/x", S, false}, /* write only */
		  {NULL, "c", "rw/secret", S, false}, /* the deny covers it */
		  {NULL, "c", "rw/#", S, true}, {NULL, "c", "rw/+", S, true},
		  {NULL, "c", "$SYS/#", S, true}, {NULL, "c", "$SYS/broker/uptime", S, true},
		  {NULL, "c", "$SYS/other", S, false},
		  {NULL, "c", "x/y/z", S, true}, {NULL, "c", "x/#", S, true}, {NULL, "c", "+/+/z", S, true},
		  {NULL, "c", "x/y", S, false}, {NULL, "c", "x/y/z/w", S, false},
		  {NULL, "c", "a/#/b", S, false}, /* not a filter */
		  {NULL, "c", "$share/g/a/b", S, true}, {NULL, "c", "$share/g/b/#", S, false},
		  {NULL, "c", "$share/g", S, false}, {NULL, "c", "$share/g+/a", S, false},
		  {"u", "c", "a/b", S, false}, /* a user without a section */
		  {NULL, "c", "zzz", U, true}, {"u", "c", "#", U, true}),
	ACL_TABLE("SUBSCRIBE: $ topics need $ rules",
		  "user admin\ntopic read #\nuser sysmon\ntopic read $SYS/#\n",
		  {"admin", "c", "$SYS/#", S, false}, {"admin", "c", "$SYS/broker/uptime", S, false},
		  {"admin", "c", "#", S, true}, {"sysmon", "c", "$SYS/#", S, true},
		  {"sysmon", "c", "#", S, false}, {"sysmon", "c", "+/broker/uptime", S, false}),
	ACL_TABLE("SUBSCRIBE: denies",
		  "topic read a/#\ntopic deny a/+\ntopic deny a/b/#\ntopic read b/#\ntopic deny #\n"
		  "topic read $t/#\n",
		  {NULL, "c", "a/x", S, false}, {NULL, "c", "a/b", S, false},
		  {NULL, "c", "a/b/c", S, false}, {NULL, "c", "a/+/c", S, false}, /* deny # */
		  {NULL, "c", "b/x", S, false}, {NULL, "c", "a", S, false},
		  {NULL, "c", "$t/x", S, true}, {NULL, "c", "$t/x", R, true}), /* # misses $t */
	ACL_TABLE("SUBSCRIBE: a deny covering only part of the overlap",
		  "topic read a/#\ntopic deny a/+\ntopic deny a/b/#\n",
		  {NULL, "c", "a/x", S, false}, {NULL, "c", "a/b/c", S, false},
		  {NULL, "c", "a/+/c", S, true}, {NULL, "c", "a/#", S, true}, {NULL, "c", "a", S, true},
		  {NULL, "c", "#", S, true}),
	ACL_TABLE("SUBSCRIBE: patterns",
		  "pattern read sensors/%u/#\npattern read dev/%c\npattern read p/x%c\n"
		  "user bob\ntopic readwrite bob/#\npattern deny sensors/%u/secret\n",
		  {"bob", "c1", "sensors/bob/#", S, true}, {"bob", "c1", "sensors/alice/#", S, false},
		  {"bob", "c1", "sensors/#", S, true}, {"bob", "c1", "sensors/+/t", S, true},
		  {"bob", "c1", "sensors/bob/secret", S, false}, {"bob", "c1", "dev/c1", S, true},
		  {"bob", "c1", "dev/c2", S, false}, {"bob", "c1", "dev/+", S, true},
		  {"bob", "c1", "p/xc1", S, true}, {"bob", "c1", "p/+", S, true},
		  {"bob", "c1", "p/xc2", S, false}, {"bob", "c1", "bob/x", S, true},
		  {NULL, "c1", "sensors/#", S, false}, {NULL, "c1", "dev/c1", S, true},
		  {"+", "c1", "sensors/#", S, false}, {"+", "c1", "dev/c1", S, false},
		  {"carol", "a/b", "dev/#", S, false}, {"carol", "c1", "sensors/carol/x", S, true}),
	ACL_TABLE("SUBSCRIBE: a %u deny is not an anonymous client's",
		  "pattern read s/%c/#\npattern deny s/%c/%u\n",
		  {NULL, "c1", "s/c1/%u", S, true}, {NULL, "c1", "s/c1/%u", R, true},
		  {"u", "c1", "s/c1/u", S, false}, {"u", "c1", "s/c1/u", R, false},
		  {"u", "c1", "s/c1/%u", S, true}),
	ACL_TABLE("SUBSCRIBE: topic deny beats pattern grant, not the other way",
		  "pattern read a/%u/#\nuser u1\ntopic deny a/u1/#\nuser u2\ntopic read a/u2/x\n"
		  "pattern deny a/%u/x\n",
		  {"u1", "c", "a/u1/#", S, false}, {"u1", "c", "a/#", S, false},
		  {"u2", "c", "a/u2/x", S, true}, {"u2", "c", "a/u2/y", S, true},
		  {"u3", "c", "a/u3/x", S, false}, {"u3", "c", "a/u3/#", S, true}),
	ACL_TABLE("topics with wildcards and other access values are refused",
		  "topic readwrite #\n",
		  {NULL, "c", "a/+", R, false}, {NULL, "c", "a/#", W, false},
		  {NULL, "c", "a", R | W, false}, {NULL, "c", "a", 0, false},
		  {NULL, "c", "", R, false}, {NULL, "c", "a", R, true}),
};

START_TEST(test_acl_tables)
{
	const struct acl_table *t = &acl_tables[_i];
	char err[512] = "";
	struct acl_db *db = acl_load_text(t->file, err, sizeof(err));
	struct fails f = {0};

	ck_assert_msg(db != NULL, "%s: %s", t->name, err);
	for (size_t i = 0; i < t->n; i++) {
		const struct acl_case *c = &t->cases[i];
		/* A heap copy without terminator, so reading past len shows under ASan. */
		size_t len = strlen(c->topic);
		char *topic = malloc(len ? len : 1);
		bool got;

		memcpy(topic, c->topic, len);
		got = acl_check(db, c->user, c->cid, topic, len, (enum acl_access)c->access);
		free(topic);
		if (got != c->allow)
			fail_note(&f, "%s%s/%s %s %d: got %s", c->user ? "" : "(anon)",
				  c->user ? c->user : "", c->cid, c->topic, c->access,
				  got ? "allow" : "deny");
	}
	acl_free(db);
	ck_assert_msg(f.n == 0, "%s: %u failing: %s", t->name, f.n, f.text);
}
END_TEST

/*
 * SUBSCRIBE against brute force: over random ACLs and filters built from a
 * few levels, a filter that matches some topic READ allows (among all
 * topics of up to 4 levels) must be granted. The other way round the check
 * may grant when unsure (a filter covered only by several denies together);
 * the count of those is printed, not asserted.
 */
static const char *const sub_levels[] = {"a", "b", "$x", ""};

static size_t random_filter(char *out, bool wildcards, size_t maxlev)
{
	size_t n = 1 + test_rng((uint32_t)maxlev), len = 0;

	for (size_t i = 0; i < n; i++) {
		const char *l;
		uint32_t r = test_rng(wildcards ? 7 : 4);
		if (r == 4 || r == 5)
			l = "+";
		else if (r == 6)
			l = i + 1 == n ? "#" : "+";
		else if (r == 2 && i > 0)
			l = "a";
		else
			l = sub_levels[r];
		len += (size_t)sprintf(out + len, "%s%s", i ? "/" : "", l);
	}
	if (len == 0) /* a single empty level is not a filter */
		len = (size_t)sprintf(out, "b");
	return len;
}

START_TEST(test_acl_subscribe_vs_brute_force)
{
	static const char *const kinds[] = {"topic read ", "topic deny ", "topic readwrite ",
					    "topic write ", "pattern read ", "pattern deny "};
	char universe[340][16];
	size_t nu = 0, loose = 0, checked = 0;
	struct fails f = {0};

	/* Every topic of 1 to 4 levels, '$x' first only. */
	for (size_t depth = 1; depth <= 4; depth++) {
		size_t combos = 1;
		for (size_t d = 0; d < depth; d++)
			combos *= 4;
		for (size_t c = 0; c < combos; c++) {
			size_t v = c, len = 0;
			bool ok = true;
			for (size_t d = 0; d < depth; d++, v /= 4) {
				if (v % 4 == 2 && d > 0)
					ok = false;
				len += (size_t)sprintf(universe[nu] + len, "%s%s", d ? "/" : "",
						       sub_levels[v % 4]);
			}
			if (ok && len > 0)
				nu++;
		}
	}
	test_rng_seed(0x5eed5);
	for (int round = 0; round < 400; round++) {
		char text[512], filter[64], err[256];
		size_t tl = 0, nrules = 1 + test_rng(4);
		struct acl_db *db;

		for (size_t i = 0; i < nrules; i++) {
			uint32_t k = test_rng(6);
			char rule[64];
			random_filter(rule, true, 3);
			if (k >= 4) { /* put %c (client "a") in a pattern's first literal level */
				char *p = strchr(rule, 'a');
				if (p) {
					memmove(p + 2, p + 1, strlen(p + 1) + 1);
					memcpy(p, "%c", 2);
				}
			}
			tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "%s%s\n", kinds[k], rule);
		}
		db = acl_load_text(text, err, sizeof(err));
		ck_assert_msg(db != NULL, "%s\n%s", err, text);
		for (int j = 0; j < 30; j++) {
			size_t flen = random_filter(filter, true, 3);
			bool granted = acl_check(db, NULL, "a", filter, flen, ACL_SUBSCRIBE);
			const char *witness = NULL;
			for (size_t t = 0; t < nu && !witness; t++) {
				size_t ulen = strlen(universe[t]);
				if (topic_matches(filter, flen, universe[t], ulen) &&
				    acl_check(db, NULL, "a", universe[t], ulen, ACL_READ))
					witness = universe[t];
			}
			checked++;
			if (witness && !granted)
				fail_note(&f, "refused %s though %s is readable under:\n%s", filter,
					  witness, text);
			if (!witness && granted)
				loose++;
		}
		acl_free(db);
	}
	fprintf(stderr, "test_acl_subscribe_vs_brute_force: %zu filters, %zu granted with no "
			"readable topic of up to 4 levels\n", checked, loose);
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_acl_load_errors)
{
	static const struct refusal cases[] = {
		{"topic read a\nfoo bar\n", 2, "unknown keyword \"foo\""},
		{"  # indented comment\n", 1, "unknown keyword \"#\""},
		{"topic\tread\ta\n", 1, "unknown keyword"},
		{"Topic read a\n", 1, "unknown keyword \"Topic\""},
		{"topic reed a\n", 1, "unknown access \"reed\""},
		{"topic READ a\n", 1, "unknown access \"READ\""},
		{"topic\n", 1, "topic rule without a topic"},
		{"\ntopic   \n", 2, "topic rule without a topic"},
		{"pattern\n", 1, "pattern rule without a topic"},
		{"user\n", 1, "user without a name"},
		{"user   \n", 1, "user without a name"},
		{"topic read\n", 1, "\"read\" with no topic"},
		{"topic deny\n", 1, "\"deny\" with no topic"},
		{"pattern readwrite \n", 1, "\"readwrite\" with no topic"},
		{"topic read a/#/b\n", 1, "invalid topic filter \"a/#/b\""},
		{"topic read a+\n", 1, "invalid topic filter"},
		{"pattern write #/%c\n", 1, "invalid topic filter"},
	};
	struct fails f = {0};
	char err[512];
	struct acl_db *db;
	char *big;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char what[32];
		err[0] = '\0';
		db = acl_load_text(cases[i].text, err, sizeof(err));
		snprintf(what, sizeof(what), "case %zu", i);
		if (db) {
			fail_note(&f, "%s loaded", what);
			acl_free(db);
			continue;
		}
		check_err(&f, what, err, cases[i].line, cases[i].want);
	}
	FAILS_CHECK(&f);

	db = acl_load_text_len("topic read a\n\ntopic read b\0c\n", 29, err, sizeof(err));
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, ":3: NUL byte") != NULL, "%s", err);

	big = malloc(70000);
	memcpy(big, "topic read ", 11);
	memset(big + 11, 'x', 70000 - 12);
	big[70000 - 1] = '\n';
	db = acl_load_text_len(big, 70000, err, sizeof(err));
	free(big);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, ":1: invalid topic filter") != NULL, "%s", err);

	db = acl_load("/nonexistent/midge.acl", err, sizeof(err));
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, "/nonexistent/midge.acl: cannot open") == err, "%s", err);
	ck_assert_ptr_null(acl_load("/nonexistent/midge.acl", NULL, 0));
}
END_TEST

START_TEST(test_acl_counts_and_null)
{
	char err[256] = "";
	struct acl_db *db = acl_load_text("topic a\npattern b/%c\nuser u\ntopic c\nuser u\ntopic d\n",
					  err, sizeof(err));

	ck_assert_msg(db != NULL, "%s", err);
	ck_assert_uint_eq(acl_rule_count(db), 4);
	ck_assert(!acl_check(db, "u", NULL, "b/x", 3, ACL_READ)); /* no id: no patterns */
	ck_assert(acl_check(db, "u", "x", "b/x", 3, ACL_READ));
	ck_assert(!acl_check(NULL, "u", "x", "c", 1, ACL_READ));
	ck_assert(!acl_check(NULL, "u", "x", "c", 1, ACL_SUBSCRIBE));
	ck_assert_uint_eq(acl_rule_count(NULL), 0);
	acl_free(db);
	acl_free(NULL);
}
END_TEST

/* ------------------------------------------------------------ threads */

struct thread_arg {
	struct passwd_db *pw;
	struct acl_db *acl;
	unsigned bad;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < 200; i++) {
		char cid[16];
		snprintf(cid, sizeof(cid), "c%d", i % 7);
		if (passwd_check(a->pw, "u", "password", 8) != PASSWD_OK ||
		    passwd_check(a->pw, "u", "passworc", 8) != PASSWD_MISMATCH ||
		    !acl_check(a->acl, "u", cid, "x/u", 3, ACL_READ) ||
		    acl_check(a->acl, "u", cid, "y/u", 3, ACL_READ))
			a->bad++;
	}
	return NULL;
}

START_TEST(test_concurrent_checks)
{
	char err[256] = "";
	struct thread_arg args[4];
	pthread_t th[4];
	struct passwd_db *pw = pw_load_text("u:" V6_12 "\n", err, sizeof(err));
	struct acl_db *acl = acl_load_text("pattern read x/%u\n", err, sizeof(err));

	ck_assert_ptr_nonnull(pw);
	ck_assert_ptr_nonnull(acl);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){pw, acl, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_uint_eq(args[i].bad, 0);
	}
	passwd_free(pw);
	acl_free(acl);
}
END_TEST

Suite *suite_security(void)
{
	Suite *s = suite_create("security");
	TCase *tc;

	tc = tcase_create("passwd");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pw_vectors);
	tcase_add_test(tc, test_pw_hash_formats);
	tcase_add_test(tc, test_pw_hash_errors);
	tcase_add_test(tc, test_pw_mosquitto_fixture);
	tcase_add_test(tc, test_pw_mosquitto_live);
	tcase_add_test(tc, test_pw_accepted_layouts);
	tcase_add_test(tc, test_pw_empty_file);
	tcase_add_test(tc, test_pw_refusals);
	tcase_add_test(tc, test_pw_file_errors);
	tcase_add_test(tc, test_pw_constant_time_compare);
	tcase_add_test(tc, test_pw_unknown_user_costs_a_hash);
	tcase_add_test(tc, test_pw_line_helpers);
	suite_add_tcase(s, tc);

	tc = tcase_create("acl");
	tcase_add_loop_test(tc, test_acl_tables, 0, (int)(sizeof(acl_tables) / sizeof(acl_tables[0])));
	tcase_add_test(tc, test_acl_subscribe_vs_brute_force);
	tcase_add_test(tc, test_acl_load_errors);
	tcase_add_test(tc, test_acl_counts_and_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_concurrent_checks);
	suite_add_tcase(s, tc);
	return s;
}
