/*
 * fuzz_config.h: the body of fuzz_config_yaml.c and fuzz_config_mosq.c,
 * which differ only in the front end they drive (broker/conf.h).
 *
 * Each input is a configuration file, written to a memfd and loaded with
 * config_init / config_load(format) / config_diag_print / config_diag_free /
 * config_free. A file that loads is loaded a second time and merged into the
 * first as a SIGHUP reload would (config_apply_command_line,
 * config_reload_merge): an unchanged file must reload without an error or a
 * warning. A file that fails must say why (at least one error, each with a
 * message). include_dir may name /tmp/midge-fuzz-include, which the first
 * input fills with one small file of each syntax (the seeds use it).
 */
#ifndef MIDGE_FUZZ_CONFIG_H
#define MIDGE_FUZZ_CONFIG_H

#include "conf.h"
#include "conf_reload.h"
#include "fuzz.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#define FUZZ_INCLUDE_DIR "/tmp/midge-fuzz-include"

/* Writes a file atomically (several fuzzers may start at once). */
static void fuzz_put_file(const char *dir, const char *name, const char *text)
{
	char tmp[256], path[256];
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d", dir, name, (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(tmp, "w");
	CHECK(f);
	fputs(text, f);
	CHECK(fclose(f) == 0);
	CHECK(rename(tmp, path) == 0);
}

static FILE *fuzz_config_setup(struct fuzz_file *file)
{
	static FILE *devnull;

	if (devnull)
		return devnull;
	fuzz_file_init(file, "midge-fuzz-config");
	devnull = fopen("/dev/null", "w");
	CHECK(devnull);
	log_init_default();
	CHECK(mkdir(FUZZ_INCLUDE_DIR, 0755) == 0 || errno == EEXIST);
	fuzz_put_file(FUZZ_INCLUDE_DIR, "10-limits.conf",
		      "max_inflight_messages 5\nmax_queued_messages 50\nlistener 1884 127.0.0.1\n"
		      "allow_anonymous true\n");
	fuzz_put_file(FUZZ_INCLUDE_DIR, "20-more.yaml",
		      "retain_available: false\nmessage_size_limit: 1024\n");
	setenv("MIDGE_FUZZ_PORT", "1885", 1);
	setenv("MIDGE_FUZZ_EMPTY", "", 1);
	return devnull;
}

static void fuzz_config_one(const uint8_t *data, size_t size, enum config_format format)
{
	static struct fuzz_file file;
	FILE *devnull = fuzz_config_setup(&file);
	struct config a, b;
	struct config_diag da = {0}, db = {0}, dm = {0};

	fuzz_file_write(&file, data, size);
	config_init(&a);
	int rc = config_load(&a, file.path, format, &da);
	config_diag_print(&da, devnull);
	if (rc < 0) {
		CHECK(da.nerrors > 0);
		for (size_t i = 0; i < da.nerrors; i++)
			CHECK(da.errors[i].message != NULL);
	} else {
		CHECK(da.nerrors == 0);
		CHECK(config_apply_command_line(&a, 0, true) == 0);
		config_init(&b);
		CHECK(config_load(&b, file.path, format, &db) == 0);
		CHECK(db.nwarnings == da.nwarnings);
		CHECK(config_apply_command_line(&b, 0, true) == 0);
		CHECK(config_reload_merge(&b, &a, &dm) == 0);
		config_diag_print(&dm, devnull);
		CHECK(dm.nerrors == 0 && dm.nwarnings == 0);
		config_diag_free(&dm);
		config_diag_free(&db);
		config_free(&b);
	}
	for (size_t i = 0; i < da.nerrors; i++)
		if (da.errors[i].key)
			(void)config_option_reloadable(da.errors[i].key);
	config_diag_free(&da);
	config_free(&a);
}

#endif
