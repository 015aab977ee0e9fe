/* SPDX-License-Identifier: MIT */
/* The engine benchmark's harness: streams drawn ahead of the clock, the
 * clock, the operation counters, and calls that stop on engine errors. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine-bench.h"

void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("potad-bench-engine: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift64s(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/* A double uniform in [0, 1) from the top 53 bits. */
static double unit_interval(uint64_t *x)
{
	return (double)(xorshift64s(x) >> 11) * 0x1p-53;
}

/* The size mix: a class, then a size uniform in log2 inside it. */
static uint64_t mix_size(uint64_t *x)
{
	double c = unit_interval(x), u = unit_interval(x), lo, hi, b;
	uint64_t v;

	if (c < 0.70) {
		lo = 12;
		hi = 16;
	} else if (c < 0.95) {
		lo = 16;
		hi = 22;
	} else {
		lo = 22;
		hi = 28;
	}
	b = ceil(exp2(lo + (hi - lo) * u));
	v = (uint64_t)b;
	return (v + GRANULE - 1) & ~(GRANULE - 1);
}

void stream_init(struct stream *st, uint64_t seed, int sizes)
{
	st->x = seed;
	st->sizes = sizes;
	st->pos = STREAM_LEN;
}

void clock_pause(struct run *r)
{
	if (r->timing)
		r->ns += now_ns() - r->t0;
}

void clock_resume(struct run *r)
{
	if (r->timing)
		r->t0 = now_ns();
}

void clock_start(struct run *r)
{
	r->ns = 0;
	r->timing = 1;
	r->t0 = now_ns();
}

void clock_stop(struct run *r)
{
	clock_pause(r);
	r->timing = 0;
}

/* Refills a stream with the clock paused: the generator is not the engine. */
void stream_refill(struct run *r, struct stream *st)
{
	unsigned i;

	clock_pause(r);
	for (i = 0; i < STREAM_LEN; i++)
		st->buf[i] = st->sizes ? mix_size(&st->x) : xorshift64s(&st->x);
	st->pos = 0;
	clock_resume(r);
}

void sample_meta(struct run *r)
{
	struct potad_stats st;

	potad_space_stats(r->s, &st);
	if (st.meta_bytes > r->meta_peak)
		r->meta_peak = st.meta_bytes;
}

void set_phase(struct run *r, const char *phase)
{
	r->phase = phase;
	r->ops = 0;
}

void engine_error(struct run *r, const char *call, int rc)
{
	die("%s: run %d, phase %s, operation %llu: %s failed: %s (errno %d)",
	    r->wl, r->runno, r->phase, (unsigned long long)r->ops, call,
	    strerror(-rc), -rc);
}

void space_new(struct run *r, uint64_t base, uint64_t size)
{
	int rc;

	rc = potad_space_new(&r->s, base, size, GRANULE_SHIFT);
	if (rc < 0)
		die("%s: potad_space_new(%llu, %llu, %d) failed: %s", r->wl,
		    (unsigned long long)base, (unsigned long long)size,
		    GRANULE_SHIFT, strerror(-rc));
}

/* Records the end-of-measured-phase counters shared by every workload. */
void finish_measure(struct run *r, struct result *res)
{
	struct potad_stats st;

	sample_meta(r);
	potad_space_stats(r->s, &st);
	res->ops = r->ops;
	res->ns_per_op = r->ops ? (double)r->ns / (double)r->ops : 0;
	res->extent_bytes = st.extent_bytes;
	res->extents = st.extents;
	res->used = st.used_units * st.granule;
	res->size = st.size;
	if (res->used != r->used)
		die("%s: run %d: stats say %llu bytes used, the extents held "
		    "add up to %llu",
		    r->wl, r->runno, (unsigned long long)res->used,
		    (unsigned long long)r->used);
}

void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p)
		die("out of memory (%zu x %zu bytes)", n, sz);
	return p;
}

void live_push(struct liveset *l, const struct potad_extent *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->h = realloc(l->h, l->cap * sizeof(*l->h));
		l->len = realloc(l->len, l->cap * sizeof(*l->len));
		if (!l->h || !l->len)
			die("out of memory (%zu live extents)", l->cap);
	}
	l->h[l->n] = e->handle;
	l->len[l->n] = e->length;
	l->n++;
}

void live_free_random(struct run *r, struct liveset *l)
{
	uint64_t i = next_pick(r, l->n);

	do_free(r, l->h[i], l->len[i]);
	l->n--;
	l->h[i] = l->h[l->n];
	l->len[i] = l->len[l->n];
}

void live_release(struct liveset *l)
{
	free(l->h);
	free(l->len);
	memset(l, 0, sizeof(*l));
}

/* W1's population: live extents of the size mix, their handles in h, their
 * lengths in len and (if start is not NULL) their first units in start. */
void w1_fill(struct run *r, uint64_t live, uint64_t *h, uint64_t *len,
	     uint64_t *start)
{
	struct potad_extent e;

	for (uint64_t i = 0; i < live; i++) {
		do_alloc(r, next_size(r), 0, 0, &e);
		h[i] = e.handle;
		len[i] = e.length;
		if (start)
			start[i] = e.offset >> GRANULE_SHIFT;
	}
}

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Check the engine's space and let it go. */
void space_check_destroy(struct run *r)
{
	char msg[512];
	int rc = potad_space_check(r->s, msg, sizeof(msg));

	if (rc < 0)
		die("%s: potad_space_check: %s", r->wl, msg);
	rc = potad_space_destroy(r->s);
	if (rc < 0)
		die("%s: potad_space_destroy: %s", r->wl, strerror(-rc));
	r->s = NULL;
}

/* Put key (with value val) in I1's map. */
void index_put(struct run *r, struct rtree *t, struct rpool *nodes,
	       struct rpool *vals, uint64_t key, uint32_t val)
{
	if (potad__rpool_reserve(nodes, potad__rtree_insert_need(t)) ||
	    potad__rpool_reserve(vals, 64))
		die("%s: out of memory", r->wl);
	potad__rtree_insert(t, nodes, vals, key, val);
}
