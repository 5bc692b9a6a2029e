/*
 * alloc.c: malloc wrappers that keep the broker's heap figures.
 * Sizes come from malloc_usable_size(), so no header is added to blocks.
 */
#include "config.h"

#include "alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic uint64_t heap_current;
static _Atomic uint64_t heap_peak;
static _Atomic uint64_t heap_limit;

static void account_add(size_t n)
{
	uint64_t now = atomic_fetch_add_explicit(&heap_current, n, memory_order_relaxed) + n;
	uint64_t peak = atomic_load_explicit(&heap_peak, memory_order_relaxed);

	while (now > peak &&
	       !atomic_compare_exchange_weak_explicit(&heap_peak, &peak, now, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static void account_sub(size_t n)
{
	atomic_fetch_sub_explicit(&heap_current, n, memory_order_relaxed);
}

void *mem_malloc(size_t size)
{
	void *p = malloc(size);

	if (p)
		account_add(malloc_usable_size(p));
	return p;
}

void *mem_calloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p)
		account_add(malloc_usable_size(p));
	return p;
}

void *mem_realloc(void *p, size_t size)
{
	size_t old = p ? malloc_usable_size(p) : 0;
	void *q = realloc(p, size);

	if (!q)
		return NULL;
	account_sub(old);
	account_add(malloc_usable_size(q));
	return q;
}

void mem_free(void *p)
{
	if (!p)
		return;
	account_sub(malloc_usable_size(p));
	free(p);
}

char *mem_strdup(const char *s)
{
	return s ? mem_strndup(s, strlen(s)) : NULL;
}

char *mem_strndup(const char *s, size_t n)
{
	char *p = mem_malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

uint64_t mem_current(void)
{
	return atomic_load_explicit(&heap_current, memory_order_relaxed);
}

uint64_t mem_peak(void)
{
	return atomic_load_explicit(&heap_peak, memory_order_relaxed);
}

void mem_set_limit(uint64_t bytes)
{
	atomic_store_explicit(&heap_limit, bytes, memory_order_relaxed);
}

bool mem_limit_reached(size_t extra)
{
	uint64_t limit = atomic_load_explicit(&heap_limit, memory_order_relaxed);

	return limit != 0 && mem_current() + extra > limit;
}
