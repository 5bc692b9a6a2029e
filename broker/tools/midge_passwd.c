/*
 * midge_passwd.c: create and edit password files, as mosquitto_passwd does.
 *
 * mosquitto_passwd 2.0's command line, messages and exit codes (0 done,
 * 1 error, 2 passwords differ), plus "-H argon2id" and a stronger default
 * (passwd.c says why). Unlike it, edits go through a temporary file and
 * rename() keeping the mode (new files 0600), keep comments, blank lines and
 * line order, refuse a file the broker would misread instead of truncating
 * it, and -U leaves hashed lines alone. Lines are split by passwd.c's own
 * splitter, so the tool and the broker agree on what a line means.
 */
#include "config.h"

#include "passwd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define PW_MAX 65535

enum mode { MODE_UPDATE, MODE_CREATE, MODE_DELETE, MODE_HASH_FILE };

struct opts {
	enum mode mode;
	enum passwd_hash_kind kind;
	int iterations; /* 0: the default for the kind */
	bool batch;
	const char *file;
	const char *user;
	const char *password; /* -b */
};

/* A growable byte buffer; its contents are cleared when freed (they hold hashes). */
struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 1024;
		char *np;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		np = malloc(ncap);
		if (!np)
			return -1;
		if (b->p) {
			memcpy(np, b->p, b->len);
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void buf_free(struct buf *b)
{
	if (b->p) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

static void print_usage(void)
{
	printf("midge_passwd is a tool for managing password files for midge (and mosquitto).\n\n");
	printf("Usage: midge_passwd [-H sha512-pbkdf2 | -H sha512 | -H argon2id] [-I iterations] [-c | -D] passwordfile username\n");
	printf("       midge_passwd [-H hash] [-I iterations] [-c] -b passwordfile username password\n");
	printf("       midge_passwd [-H hash] [-I iterations] -U passwordfile\n");
	printf(" -b : run in batch mode to allow passing passwords on the command line.\n");
	printf(" -c : create a new password file. This will overwrite existing files.\n");
	printf(" -D : delete the username rather than adding/updating its password.\n");
	printf(" -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which mosquitto 2.0\n");
	printf("      and later also read. argon2id needs mosquitto 2.1 or midge.\n");
	printf(" -I : PBKDF2 iterations (default %d), or argon2id passes (default %d).\n",
	       PASSWD_DEFAULT_ITERATIONS, PASSWD_ARGON2_T_COST);
	printf(" -U : update a plain text password file to use hashed passwords.\n");
	printf("\nSee https://mosquitto.org/ for the file format.\n\n");
}

/* -I: a whole number from 1 to INT_MAX; anything else is refused as mosquitto does. */
static bool parse_iterations(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

static bool user_name_ok(const char *user)
{
	size_t n = strlen(user);
	const char *why;

	if (n > PW_MAX) {
		fprintf(stderr, "Error: Username must be less than 65536 characters long.\n");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)user[i] < 0x20 || user[i] == 0x7F) {
			fprintf(stderr, "Error: Username must not contain control characters.\n");
			return false;
		}
	}
	if (strchr(user, ':')) {
		fprintf(stderr, "Error: Username must not contain the ':' character.\n");
		return false;
	}
	if (!passwd_user_valid(user, &why)) {
		fprintf(stderr, "Error: Invalid username: %s.\n", why);
		return false;
	}
	return true;
}

/* 0: run; -1: exit 1 (message printed); 1: usage printed, exit 1; 2: help, exit 0. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	bool create = false, del = false, hash_file = false;
	int i, left;

	if (argc == 1)
		return 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return 2;
		if (!strcmp(a, "-H")) {
			if (i + 1 == argc) {
				fprintf(stderr, "Error: -H argument given but not enough other arguments.\n");
				return -1;
			}
			a = argv[++i];
			if (!strcmp(a, "sha512-pbkdf2")) {
				o->kind = PASSWD_SHA512_PBKDF2;
			} else if (!strcmp(a, "sha512")) {
				o->kind = PASSWD_SHA512;
			} else if (!strcmp(a, "argon2id")) {
				o->kind = PASSWD_ARGON2ID;
			} else {
				fprintf(stderr, "Error: Unknown hash type '%s'\n", a);
				return -1;
			}
		} else if (!strcmp(a, "-I")) {
			if (i + 1 == argc) {
				fprintf(stderr, "Error: -I argument given but not enough other arguments.\n");
				return -1;
			}
			if (!parse_iterations(argv[++i], &o->iterations)) {
				fprintf(stderr, "Error: Number of iterations must be > 0.\n");
				return -1;
			}
		} else if (!strcmp(a, "-b")) {
			o->batch = true;
		} else if (!strcmp(a, "-c")) {
			create = true;
		} else if (!strcmp(a, "-D")) {
			del = true;
		} else if (!strcmp(a, "-U")) {
			hash_file = true;
		} else {
			break;
		}
	}
	if (create && del) {
		fprintf(stderr, "Error: -c and -D cannot be used together.\n");
		return -1;
	}
	if (create && hash_file) {
		fprintf(stderr, "Error: -c and -U cannot be used together.\n");
		return -1;
	}
	if (del && hash_file) {
		fprintf(stderr, "Error: -D and -U cannot be used together.\n");
		return -1;
	}
	if (del && o->batch) {
		fprintf(stderr, "Error: -b and -D cannot be used together.\n");
		return -1;
	}
	left = argc - i;
	if (hash_file) {
		if (left != 1) {
			fprintf(stderr, "Error: -U argument given but password file missing.\n");
			return -1;
		}
		o->mode = MODE_HASH_FILE;
	} else if (create) {
		if (left != (o->batch ? 3 : 2)) {
			fprintf(stderr, o->batch ? "Error: -c argument given but password file, username, or password missing.\n"
						 : "Error: -c argument given but password file or username missing.\n");
			return -1;
		}
		o->mode = MODE_CREATE;
	} else if (del) {
		if (left != 2) {
			fprintf(stderr, "Error: -D argument given but password file or username missing.\n");
			return -1;
		}
		o->mode = MODE_DELETE;
	} else if (left != (o->batch ? 3 : 2)) {
		return 1;
	}
	o->file = argv[i];
	if (o->mode != MODE_HASH_FILE) {
		o->user = argv[i + 1];
		if (!user_name_ok(o->user))
			return -1;
	}
	if (o->batch && o->mode != MODE_HASH_FILE) {
		o->password = argv[i + 2];
		if (strlen(o->password) > PW_MAX) {
			fprintf(stderr, "Error: Password must be less than 65536 characters long.\n");
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ prompting */

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

static void restore_tty(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_saved = 0;
	}
}

static void on_signal(int sig)
{
	/* Give the terminal its echo back, then die of the signal as usual. */
	restore_tty();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Prints prompt on stdout and reads one line from stdin, without echo when
 * stdin is a terminal (as mosquitto_passwd does). A final "\n" or "\r\n" is
 * dropped. Returns the length, or -1 if the line is too long.
 */
static long read_password(const char *prompt, char *out, size_t outlen)
{
	bool tty = isatty(STDIN_FILENO);
	size_t n = 0;
	bool too_long = false;
	int c;

	/* Echo goes off before the prompt shows, so nothing typed after it echoes. */
	if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios tio = saved_tio;
		tio.c_lflag &= (tcflag_t)~ECHO;
		tio_saved = 1;
		tcsetattr(STDIN_FILENO, TCSANOW, &tio);
	}
	printf("%s", prompt);
	fflush(stdout);
	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 < outlen)
			out[n++] = (char)c;
		else
			too_long = true;
	}
	restore_tty();
	if (n && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	/* mosquitto_passwd ends the prompt line after a non-empty answer only. */
	if (n || tty)
		printf("\n");
	fflush(stdout);
	return too_long ? -1 : (long)n;
}

/* 0 with the password in out; 1 error (message printed); 2 the two differ. */
static int get_password(char *out, size_t outlen)
{
	char again[PW_MAX + 2];
	struct sigaction sa;
	long n;
	int rc = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	n = read_password("Password: ", out, outlen);
	if (n < 0) {
		fprintf(stderr, "Error: Password must be less than 65536 characters long.\n");
		goto out;
	}
	if (n == 0) {
		fprintf(stderr, "Error: Empty password.\n");
		goto out;
	}
	n = read_password("Reenter password: ", again, sizeof(again));
	if (n == 0) {
		fprintf(stderr, "Error: Empty password.\n");
		goto out;
	}
	if (n < 0 || strcmp(out, again) != 0) {
		fprintf(stderr, "Error: Passwords do not match.\n");
		rc = 2;
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(again, sizeof(again));
	if (rc)
		OPENSSL_cleanse(out, outlen);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	return rc;
}

/* ------------------------------------------------------------ files */

/* The whole of an existing file; -1 with a mosquitto_passwd message if unreadable. */
static int read_file(const char *path, struct buf *b, struct stat *st)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, st) < 0) {
		fprintf(stderr, "Error: Unable to open password file %s. %s.\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_add(b, chunk, (size_t)n) < 0) {
			fprintf(stderr, "Error: Unable to read password file %s. %s.\n", path,
				n < 0 ? strerror(errno) : "Out of memory");
			OPENSSL_cleanse(chunk, sizeof(chunk));
			close(fd);
			return -1;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Replaces path with data: a temporary file beside it, fsync, rename, so a
 * crash leaves the old file or the new one, never half of one. old: the
 * file's stat when it exists (its mode, and its owner when we are root, carry
 * over); NULL makes a new file with mode 0600. A symlink is followed, so its
 * target is what gets replaced.
 */
static int replace_file(const char *path, const struct buf *data, const struct stat *old)
{
	char *real = realpath(path, NULL), *tmp = NULL, *slash;
	const char *target = real ? real : path;
	int fd = -1, dfd, rc = -1;

	tmp = malloc(strlen(target) + sizeof(".tmp.XXXXXX"));
	if (!tmp) {
		fprintf(stderr, "Error: Out of memory.\n");
		goto out;
	}
	sprintf(tmp, "%s.tmp.XXXXXX", target);
	fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "Error: Unable to open file %s for writing. %s.\n", target,
			strerror(errno));
		goto out;
	}
	if (fchmod(fd, old ? old->st_mode & 07777 : 0600) < 0 ||
	    (old && geteuid() == 0 && fchown(fd, old->st_uid, old->st_gid) < 0) ||
	    write_all(fd, data->p ? data->p : "", data->len) < 0 || fsync(fd) < 0) {
		fprintf(stderr, "Error: Unable to write file %s. %s.\n", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		fprintf(stderr, "Error: Unable to write file %s. %s.\n", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, target) < 0) {
		fprintf(stderr, "Error: Unable to replace %s. %s.\n", target, strerror(errno));
		goto out;
	}
	/* Make the rename itself durable: fsync the directory (tmp's buffer is reused). */
	slash = strrchr(tmp, '/');
	if (slash == tmp)
		slash[1] = '\0'; /* the root directory */
	else if (slash)
		*slash = '\0';
	dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(tmp);
	tmp = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(real);
	return rc;
}

/* Appends "user:<hash of password>\n". */
static int add_entry(struct buf *out, const struct opts *o, const char *user, size_t ulen,
		     const char *pw, size_t pwlen)
{
	char hash[PASSWD_HASH_MAX];
	int rc = -1;

	if (passwd_hash(o->kind, o->iterations, pw, pwlen, hash, sizeof(hash)) < 0) {
		fprintf(stderr, "Error: Unable to hash password.\n");
		goto out;
	}
	if (buf_add(out, user, ulen) < 0 || buf_add(out, ":", 1) < 0 ||
	    buf_add(out, hash, strlen(hash)) < 0 || buf_add(out, "\n", 1) < 0) {
		fprintf(stderr, "Error: Out of memory.\n");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

/* -U: hashes the plain-text passwords of one entry line; hashed lines stay as they are. */
static int hash_line(struct buf *out, const struct opts *o, unsigned lineno, const char *raw,
		     size_t rawlen, const char *user, size_t ulen, const char *val, size_t vlen)
{
	if (passwd_hash_valid(val, vlen, NULL))
		return buf_add(out, raw, rawlen) < 0 || buf_add(out, "\n", 1) < 0 ? -1 : 0;
	/* An empty value, or one that looks like a damaged hash or has another ':'
	 * in it, is not a password we can be sure of: hashing it would lock the
	 * user out (mosquitto_passwd -U re-hashes hashes). */
	if (vlen == 0 || memchr(val, ':', vlen) || passwd_hash_known_prefix(val, vlen)) {
		fprintf(stderr, "Error: Corrupt password file at line %u.\n", lineno);
		return -1;
	}
	return add_entry(out, o, user, ulen, val, vlen);
}

/*
 * Builds the new contents of an existing file: update (or add) o->user with
 * password pw, delete it, or hash every plain-text password. Other lines are
 * copied unchanged. Returns 0, or 1 after printing why.
 */
static int edit_lines(const struct buf *in, const struct opts *o, const char *pw, struct buf *out)
{
	size_t ulen = o->user ? strlen(o->user) : 0;
	bool found = false;
	unsigned lineno = 0;

	for (size_t pos = 0; pos < in->len;) {
		const char *raw = in->p + pos, *nl, *user, *val, *why;
		size_t rawlen, len, vlen;
		enum passwd_line kind;
		bool mine;

		nl = memchr(raw, '\n', in->len - pos);
		rawlen = nl ? (size_t)(nl - raw) : in->len - pos;
		pos += rawlen + 1;
		lineno++;
		kind = passwd_split_line(raw, rawlen, &user, &len, &val, &vlen, &why);
		if (kind == PASSWD_LINE_BAD) {
			fprintf(stderr, "Error: Corrupt password file at line %u.\n", lineno);
			return 1;
		}
		if (kind == PASSWD_LINE_ENTRY && o->mode == MODE_HASH_FILE) {
			if (hash_line(out, o, lineno, raw, rawlen, user, len, val, vlen) < 0)
				return 1;
			continue;
		}
		mine = kind == PASSWD_LINE_ENTRY && len == ulen && !memcmp(user, o->user, ulen);
		if (!mine) {
			if (buf_add(out, raw, rawlen) < 0 || buf_add(out, "\n", 1) < 0)
				goto oom;
			continue;
		}
		/* The user's line is replaced where it is; any repeat of it goes. */
		if (!found && o->mode == MODE_UPDATE &&
		    add_entry(out, o, o->user, ulen, pw, strlen(pw)) < 0)
			return 1;
		found = true;
	}
	if (o->mode == MODE_DELETE && !found) {
		fprintf(stderr, "Warning: User %s not found in password file.\n", o->user);
		return 1;
	}
	if (o->mode == MODE_UPDATE && !found && add_entry(out, o, o->user, ulen, pw, strlen(pw)) < 0)
		return 1;
	return 0;
oom:
	fprintf(stderr, "Error: Out of memory.\n");
	return 1;
}

static int run(const struct opts *o)
{
	static char pwbuf[PW_MAX + 2];
	struct buf in = {0}, out = {0};
	struct stat st;
	bool exists = false;
	const char *pw = o->password;
	int rc = 1;

	if (o->mode != MODE_CREATE) {
		/* Like mosquitto_passwd: a missing file is an error before any prompt. */
		if (read_file(o->file, &in, &st) < 0)
			goto out;
		exists = true;
	} else {
		exists = stat(o->file, &st) == 0 && S_ISREG(st.st_mode);
	}
	if (!pw && (o->mode == MODE_CREATE || o->mode == MODE_UPDATE)) {
		rc = get_password(pwbuf, sizeof(pwbuf));
		if (rc)
			goto out;
		rc = 1;
		pw = pwbuf;
	}
	if (o->mode == MODE_CREATE) {
		if (add_entry(&out, o, o->user, strlen(o->user), pw, strlen(pw)) < 0)
			goto out;
	} else if (edit_lines(&in, o, pw, &out)) {
		goto out;
	}
	if (replace_file(o->file, &out, exists ? &st : NULL) < 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(pwbuf, sizeof(pwbuf));
	buf_free(&in);
	buf_free(&out);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = {.mode = MODE_UPDATE, .kind = PASSWD_SHA512_PBKDF2};

	switch (parse_args(argc, argv, &o)) {
	case 0:
		break;
	case 2:
		print_usage();
		return 0;
	case 1:
		print_usage();
		return 1;
	default:
		return 1;
	}
	return run(&o);
}
