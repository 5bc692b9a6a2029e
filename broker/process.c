/*
 * process.c: daemon mode, pid file and privilege drop (see process.h).
 */
#include "config.h"

#include "process.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int process_daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		log_err("Error: unable to fork: %s.", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	/* A second fork: the daemon can never reacquire a controlling terminal. */
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

int process_write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		log_err("Error: unable to write pid file %s: %s.", path, strerror(errno));
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0) {
		log_err("Error: unable to write pid file %s: %s.", path, strerror(errno));
		return -1;
	}
	return 0;
}

void process_remove_pidfile(const char *path)
{
	if (path && unlink(path) < 0 && errno != ENOENT)
		log_warn("Warning: unable to remove pid file %s: %s.", path, strerror(errno));
}

int process_drop_privileges(const char *user, bool is_default)
{
	struct passwd *pw;

	if (geteuid() != 0 || !user || strcmp(user, "root") == 0)
		return 0;
	pw = getpwnam(user);
	if (!pw && is_default) {
		log_warn("Warning: unable to drop privileges to '%s' because this user does not exist. "
			 "Trying 'nobody' instead.", user);
		pw = getpwnam("nobody");
	}
	if (!pw) {
		log_err("Error: unable to drop privileges to '%s': no such user.", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_err("Error: unable to drop privileges to '%s': %s.", pw->pw_name, strerror(errno));
		return -1;
	}
	return 0;
}
