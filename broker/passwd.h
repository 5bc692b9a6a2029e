/*
 * passwd.h: mosquitto-format password files ("user:hash" lines).
 *
 * Owns reading a password file into an immutable table, checking a password
 * against it, and making the three hash formats mosquitto reads and writes:
 * "$6$" (salted SHA-512), "$7$" (PBKDF2-HMAC-SHA512) and "$argon2id$"
 * (libargon2's encoded form). Loading never fails open: any line it cannot
 * read with certainty refuses the whole file. It does not decide who may
 * connect (auth.c does) and does not log; midge_passwd edits files with the
 * line helpers at the end.
 */
#ifndef MIDGE_PASSWD_H
#define MIDGE_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

struct passwd_db;

/*
 * Loads a password file. Blank lines and lines whose first non-blank
 * character is '#' are skipped; blanks around the user name and the hash are
 * ignored (as mosquitto does). Returns NULL on any error with a message in
 * err: "FILE:LINE: message" for a line that is malformed, holds a plain-text
 * password, an unknown or damaged hash, or repeats a user; "FILE: message"
 * when the file cannot be read. Any thread; the result is owned by the caller.
 */
struct passwd_db *passwd_load(const char *path, char *err, size_t errlen);

/* Frees a table loaded by passwd_load (NULL is fine), clearing its hashes. */
void passwd_free(struct passwd_db *db);

/* Number of users in the table. */
size_t passwd_count(const struct passwd_db *db);

/* Whether the table has an entry for user (a NUL-terminated name). */
bool passwd_has_user(const struct passwd_db *db, const char *user);

enum passwd_result { PASSWD_OK = 0, PASSWD_NO_USER, PASSWD_MISMATCH };

/*
 * Checks a password (pwlen bytes, any content; pw NULL means the client sent
 * none, which never matches). May be slow (PBKDF2 with many iterations,
 * argon2id): the broker calls it off its event loops. Thread-safe on a loaded
 * table; compares in constant time. For an unknown user it spends about the
 * same work as for a known one before answering PASSWD_NO_USER, so timing
 * does not tell which user names exist. Unlike mosquitto, a password holding
 * a NUL byte is hashed whole rather than cut at the NUL.
 */
enum passwd_result passwd_check(const struct passwd_db *db, const char *user, const void *pw,
				size_t pwlen);

/*
 * Checks a password against one hash in any format a password file holds.
 * Returns 1 (match), 0 (no match, or pw NULL) or -1 (not a hash we read).
 * May be slow, like passwd_check(). Any thread.
 */
int passwd_verify_hash(const char *hash, size_t hlen, const void *pw, size_t pwlen);

enum passwd_hash_kind { PASSWD_SHA512_PBKDF2, PASSWD_SHA512, PASSWD_ARGON2ID };

/*
 * midge_passwd's default PBKDF2 iteration count (see passwd.c for why), the
 * argon2id costs mosquitto 2.1 uses, and the longest line passwd_hash writes.
 */
#define PASSWD_DEFAULT_ITERATIONS 210000
#define PASSWD_ARGON2_T_COST 1
#define PASSWD_ARGON2_M_COST 47104 /* KiB */
#define PASSWD_ARGON2_PARALLELISM 1
#define PASSWD_HASH_MAX 256

/*
 * Writes "$7$<iterations>$<salt>$<hash>", "$6$<salt>$<hash>" or
 * "$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>" for the password into out
 * (NUL-terminated), with a fresh random salt. iterations: PBKDF2 rounds or
 * the argon2id time cost; 0 picks the default; ignored for "$6$". The salt is
 * 12 bytes for "$6$"/"$7$" (mosquitto 2.0 refuses any other length) and 64
 * for argon2id. Returns 0, or -1 on error (out too small, bad arguments, no
 * randomness). Any thread; clears its intermediate buffers.
 */
int passwd_hash(enum passwd_hash_kind kind, int iterations, const void *pw, size_t pwlen,
		char *out, size_t outlen);

/*
 * Line helpers, shared by passwd_load and midge_passwd so that the tool
 * reads files exactly as the broker does.
 */
enum passwd_line { PASSWD_LINE_SKIP, PASSWD_LINE_ENTRY, PASSWD_LINE_BAD };

/*
 * Splits one line (len bytes, no newline; a trailing '\r' is a blank).
 * ENTRY: the user and hash spans are set (hash may be empty or plain
 * text; see passwd_hash_valid). SKIP: blank or comment. BAD: *why says
 * what is wrong (no ':', empty user name, NUL byte, ...).
 */
enum passwd_line passwd_split_line(const char *line, size_t len, const char **user, size_t *ulen,
				   const char **hash, size_t *hlen, const char **why);

/* Whether hash (hlen bytes) is a complete, well-formed hash of a known kind; *why if not. */
bool passwd_hash_valid(const char *hash, size_t hlen, const char **why);

/* Whether hash starts like one of the known kinds ("$6$", "$7$", "$argon2id$"). */
bool passwd_hash_known_prefix(const char *hash, size_t hlen);

/*
 * Whether a user name can be written to and read back from a file
 * unchanged: 1-65535 bytes, no ':', no control characters, not starting
 * with '#', no blanks at either end. *why if not.
 */
bool passwd_user_valid(const char *user, const char **why);

#endif
