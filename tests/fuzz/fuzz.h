/*
 * fuzz.h: helpers shared by the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * CHECK() aborts with the failed condition, so libFuzzer reports a broken
 * invariant as a crash. fuzz_file_*() keep one memfd per process for the
 * targets whose code under test reads a file by name: each input is written
 * to it and read back through "/proc/self/fd/N".
 */
#ifndef MIDGE_FUZZ_H
#define MIDGE_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)

struct fuzz_file {
	int fd;
	char path[64];
};

/* Creates the memfd once (at the first input); aborts if the system has none. */
static inline void fuzz_file_init(struct fuzz_file *f, const char *name)
{
	if (f->path[0])
		return;
	f->fd = memfd_create(name, MFD_CLOEXEC);
	CHECK(f->fd >= 0);
	snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's content with data[0, size). */
static inline void fuzz_file_write(struct fuzz_file *f, const void *data, size_t size)
{
	CHECK(ftruncate(f->fd, 0) == 0);
	for (size_t done = 0; done < size;) {
		ssize_t n = pwrite(f->fd, (const char *)data + done, size - done, (off_t)done);
		CHECK(n > 0);
		done += (size_t)n;
	}
}

#endif
