/* SPDX-License-Identifier: MIT */
/* A bump arena for one request's decoding and its response. */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/*
 * A request is unpacked into the arena and its response is built there;
 * both are dropped together after the response is packed.  The first chunk
 * stays for the next request, so a steady stream of small requests never
 * calls malloc.
 */
struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	max_align_t data[];
};

#define CHUNK_MIN 8192

void *potad__arena_alloc(struct potad_arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t need = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (!c || a->used + need > c->size) {
		size_t size = need > CHUNK_MIN ? need : CHUNK_MIN;

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		a->total += size;
		c->next = a->head;
		a->head = c;
		a->used = 0;
	}
	p = (char *)c->data + a->used;
	a->used += need;
	return p;
}

char *potad__arena_strdup(struct potad_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = potad__arena_alloc(a, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

size_t potad__arena_bytes(const struct potad_arena *a)
{
	return a->total;
}

void potad__arena_reset(struct potad_arena *a)
{
	struct arena_chunk *c = a->head;

	/* Keep the oldest chunk (the last in the list). */
	while (c && c->next) {
		struct arena_chunk *n = c->next;

		a->total -= c->size;
		free(c);
		c = n;
	}
	a->head = c;
	a->used = 0;
}

void potad__arena_free(struct potad_arena *a)
{
	potad__arena_reset(a);
	free(a->head);
	a->head = NULL;
	a->total = 0;
}

static void *pb_alloc(void *data, size_t n)
{
	return potad__arena_alloc(data, n);
}

static void pb_free(void *data, void *p)
{
	/* Freed with the arena. */
}

void potad__arena_allocator(struct potad_arena *a, ProtobufCAllocator *pa)
{
	pa->alloc = pb_alloc;
	pa->free = pb_free;
	pa->allocator_data = a;
}
