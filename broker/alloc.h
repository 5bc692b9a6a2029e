/*
 * alloc.h: the broker's allocator wrappers, with accounting.
 *
 * Owns the count of bytes the broker has allocated (current and peak) for
 * $SYS/broker/heap/... and the global memory_limit, which callers consult
 * with mem_limit_reached() before taking on new work. Any thread may call
 * these. Leaf modules of the codec do not allocate and do not use this.
 */
#ifndef MIDGE_ALLOC_H
#define MIDGE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *mem_malloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *p, size_t size);
void mem_free(void *p);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);

uint64_t mem_current(void);
uint64_t mem_peak(void);

/* 0 disables the limit. */
void mem_set_limit(uint64_t bytes);
/* Whether allocating `extra` more bytes would cross memory_limit. */
bool mem_limit_reached(size_t extra);

#endif
