/* SPDX-License-Identifier: MIT */
/*
 * potad-bench-engine: measures the POTAD engine in-process on four fixed
 * workloads and prints one key=value (or JSON) line per workload.
 *
 * Definitions, so that numbers from different builds can be compared:
 *
 * - An operation is one potad_alloc() or one potad_free() call, whether it
 *   succeeds or not (in R1, one potad_place() call).  A churn step (free
 *   one extent, allocate another) is two operations.
 * - Only the measured phase is timed, with clock_gettime(CLOCK_MONOTONIC).
 *   Setup (creating the space, the initial population) is not.  Refilling
 *   the random-number buffers and sampling the statistics pause the clock,
 *   so the time is engine calls plus the loop's own bookkeeping.
 * - Each workload runs --runs times (default 5), each on a fresh space
 *   with the same seeds, so every run makes the same calls.  ns_per_op is
 *   the median over the runs (ns_min and ns_max show the spread), and
 *   ops_per_s is 1e9 / ns_per_op.
 * - Sizes come from xorshift64* seeded 42: 70% in [4 KiB, 64 KiB), 25% in
 *   [64 KiB, 4 MiB), 5% in [4 MiB, 256 MiB), uniform in log2 inside the
 *   class, rounded up to 4 KiB.  The victim of each free comes from a
 *   second xorshift64* seeded 43, so the size sequence does not depend on
 *   how many frees a workload makes.
 * - meta_peak is the largest stats.meta_bytes seen, sampled every 4096
 *   operations (setup included) and at the end of the measured phase.
 * - bytes_per_extent is stats.extent_bytes / stats.extents, live is
 *   stats.extents and util is used bytes / space size, all at the end of
 *   the measured phase.
 * - Every space uses a 4 KiB granule.
 *
 * The workloads:
 *
 * W1 churn    A 2^40-byte space holding 100,000 live extents (setup), then
 *             2,000,000 steps that each free a random live extent and
 *             allocate a new one.  -ENOSPC is an error here.
 * W2 fill     A 64 GiB space; allocate until the first -ENOSPC (that call
 *             is counted).  util is taken at the failure.
 * W3 aligned  A 1 GiB space based at 4 KiB, so that 1 MiB alignment is
 *             not the space's own alignment; rings of 1,024 live 4 KiB
 *             extents and 64 live 8 MiB extents at 1 MiB alignment (setup),
 *             then 1,000,000 iterations that each replace the oldest 4 KiB
 *             extent and the oldest 8 MiB one (four operations).  Every
 *             8 MiB result is checked for alignment.
 * W4 aging    A 1 TiB space filled to 90% with the size mix (setup), then
 *             churned until three times the capacity has been allocated:
 *             each operation either allocates the next size, when it fits
 *             under the 90% mark, or frees a random live extent.  An
 *             -ENOSPC there is counted (enospc=), a random extent is freed
 *             and the same size is tried again, so the live population
 *             keeps the size mix; util= then shows how far below 90% the
 *             space had to drain for the large sizes to fit.  Then frag=
 *             (potad_space_frag's score), largest_free= (bytes) and
 *             util_256m= (utilisation after allocating 256 MiB extents
 *             until the first -ENOSPC) are printed; ns_per_op is the churn,
 *             refused allocations included.
 * R1 restore  Crash recovery.  A 64 GiB space gets 1,000,000 allocations
 *             of 4 KiB to 64 KiB (uniform in log2, rounded up to 4 KiB,
 *             from the stream seeded 43), then 100,000 steps that free a
 *             random extent and allocate another, and 64 random poisoned
 *             units (setup).  It is snapshotted as a journal would:
 *             potad_space_gen_max(), the poison through potad_poison_next()
 *             and the extents through potad_extent_foreach().  The measured
 *             phase rebuilds it in a fresh space: potad_space_new(),
 *             potad_space_set_gen_floor(), potad_poison() per range and
 *             potad_place() per extent in address order.  An operation is
 *             one placed extent; total_ms is the whole rebuild.  The copy
 *             must equal the original (extents, counters, free lists).
 *             Then first_alloc_ms times one allocation in the copy, which
 *             rebuilds the free-slot list that placing left dirty.
 * L1 list     The same population as R1 (without poison), listed: an
 *             operation is one extent visited by one walk of the whole
 *             space with potad_extent_foreach_from(); next_ns is the same
 *             list taken with a potad_extent_next() call per extent, as a
 *             paged lister did.
 * I1 index    The extent index alone (the radix map, no descriptors, no
 *             free space): W1's own index operations, recorded from a W1
 *             run through the engine (setup), replayed on a fresh map.  An
 *             operation is one insert or remove: the floor W1 cannot go
 *             under with this index.
 * X1 reference W1's setup and steps (same sizes, same victims) through the
 *             two-level segregated-fit allocator of reftlsf.c (TLSF's and
 *             OffsetAllocator's design: free runs in size bins, neighbour
 *             links, O(1) both ways) instead of the engine.  No
 *             descriptors, lookup or alignment: a yardstick for what W1's
 *             free-space work costs on this machine, not a competitor.
 *             bytes_per_extent: its nodes (free and held) per live run.
 *             indexed_ns: a second pass that also writes a 20-byte
 *             descriptor per run and keeps the engine's radix map from
 *             first unit to run (I1's index), as any design with lookup by
 *             address must.
 * X2 segments W1's setup and steps through the candidate design of
 *             refseg.c: the extents in one address-ordered B+ tree that is
 *             also the index, free space as the gaps between them, each
 *             node summarising which buddy orders its gaps hold.  It keeps
 *             descriptors and answers lookups, and places every extent
 *             exactly where the engine does: a second pass (setup and a
 *             tenth of the steps, untimed) runs the engine beside it and
 *             stops at the first placement that differs; same_steps says
 *             how many steps agreed.  aligned_ns: W3's rings through it
 *             (an operation: one alloc or free; its 8 MiB extents at
 *             1 MiB alignment are within what it does), the median of
 *             three passes, checked against the engine the same way over
 *             a tenth of the iterations.  aging_*: W4 through it (its
 *             churn's ns per operation, refusals, utilisation after the
 *             256 MiB extents, bytes per live extent at the end), checked
 *             against the engine, refusals included, over a tenth of the
 *             churn.  same_mixed: requests of a mixed stream (frees,
 *             plain, range-bounded and top-down allocations at random
 *             alignments, fixed claims) in a small space that fills and
 *             fragments, placed or refused alike by both.  It has none of the engine's other
 *             paths (alignment, ranges, top-down, clean/dirty, poison,
 *             child spaces): a measure of what the engine would gain from
 *             this shape, not a finished engine.
 *
 * --quick divides the step counts (W1 steps, W3 iterations, W4 churned
 * bytes, R1 and L1 extents and steps) by 10 for a smoke run.  After each
 * workload's last run the space is verified with potad_space_check(),
 * outside the timed region (X1 checks its own allocator after every run).
 * Any unexpected engine error stops the program
 * with a message naming the workload, run, phase, operation number and
 * errno.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <potad/engine.h>

#include "engine/radix.h" /* I1 measures the index on its own */
#include "reftlsf.h"        /* X1's reference allocator */
#include "refseg.h"         /* X2's candidate design */

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TIB (1ull << 40)

#define GRANULE_SHIFT 12
#define GRANULE (1ull << GRANULE_SHIFT)
#define SIZE_SEED 42
#define PICK_SEED 43
#define SAMPLE_EVERY 4096
#define STREAM_LEN 4096
#define MAX_RUNS 101

/* One xorshift64* generator whose output is drawn ahead into a buffer, so
 * that the log2/exp2 arithmetic of the size mix stays out of the clock. */
struct stream {
	uint64_t x;
	int sizes; /* 1: the buffer holds sizes; 0: raw 64-bit values */
	unsigned pos;
	uint64_t buf[STREAM_LEN];
};

/* What one run of one workload measured. */
struct result {
	double ns_per_op;
	uint64_t ops;
	uint64_t extent_bytes;
	uint64_t extents;
	uint64_t used;
	uint64_t size;
	/* Workload-specific results. */
	uint64_t enospc;
	uint64_t largest_free;
	double frag;
	double util_256m;
	double total_ms;
	double first_alloc_ms;
	double next_ns;
	double indexed_ns;
	uint64_t same_steps;
	double aligned_ns;
	double aging_ns;
	uint64_t aging_enospc;
	double aging_util_256m;
	double aging_bpe;
	uint64_t same_mixed;
};

/* The state of one run: the space, its streams, the clock. */
struct run {
	const char *wl;     /* "W1 churn", for messages */
	int runno;          /* 1-based */
	const char *phase;  /* "setup", "measure" ... */
	struct potad_space *s;
	struct stream *sz;
	struct stream *pk;
	uint64_t ops;       /* operations in the current phase */
	uint64_t all_ops;   /* operations since the space was made */
	uint64_t meta_peak;
	uint64_t ns;        /* accumulated time of the measured phase */
	uint64_t t0;
	int timing;
	uint64_t used;      /* bytes held by extents, kept by the caller */
};

struct workload {
	const char *id;
	const char *name;
	void (*fn)(struct run *r, struct result *res, int quick);
};

static int opt_json;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						      noreturn));

static void die(const char *fmt, ...)
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

static uint64_t now_ns(void)
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

static void stream_init(struct stream *st, uint64_t seed, int sizes)
{
	st->x = seed;
	st->sizes = sizes;
	st->pos = STREAM_LEN;
}

static void clock_pause(struct run *r)
{
	if (r->timing)
		r->ns += now_ns() - r->t0;
}

static void clock_resume(struct run *r)
{
	if (r->timing)
		r->t0 = now_ns();
}

static void clock_start(struct run *r)
{
	r->ns = 0;
	r->timing = 1;
	r->t0 = now_ns();
}

static void clock_stop(struct run *r)
{
	clock_pause(r);
	r->timing = 0;
}

/* Refills a stream with the clock paused: the generator is not the engine. */
static void stream_refill(struct run *r, struct stream *st)
{
	unsigned i;

	clock_pause(r);
	for (i = 0; i < STREAM_LEN; i++)
		st->buf[i] = st->sizes ? mix_size(&st->x) : xorshift64s(&st->x);
	st->pos = 0;
	clock_resume(r);
}

static inline uint64_t next_size(struct run *r)
{
	if (r->sz->pos == STREAM_LEN)
		stream_refill(r, r->sz);
	return r->sz->buf[r->sz->pos++];
}

/* A victim index in [0, n). */
static inline uint64_t next_pick(struct run *r, uint64_t n)
{
	if (r->pk->pos == STREAM_LEN)
		stream_refill(r, r->pk);
	return r->pk->buf[r->pk->pos++] % n;
}

static void sample_meta(struct run *r)
{
	struct potad_stats st;

	potad_space_stats(r->s, &st);
	if (st.meta_bytes > r->meta_peak)
		r->meta_peak = st.meta_bytes;
}

/* Counts an operation and samples the metadata every SAMPLE_EVERY of them,
 * with the clock paused. */
static inline void count_op(struct run *r)
{
	r->ops++;
	if (++r->all_ops % SAMPLE_EVERY == 0) {
		clock_pause(r);
		sample_meta(r);
		clock_resume(r);
	}
}

static void set_phase(struct run *r, const char *phase)
{
	r->phase = phase;
	r->ops = 0;
}

static void engine_error(struct run *r, const char *call, int rc)
{
	die("%s: run %d, phase %s, operation %llu: %s failed: %s (errno %d)",
	    r->wl, r->runno, r->phase, (unsigned long long)r->ops, call,
	    strerror(-rc), -rc);
}

/* Allocates size bytes at align.  Returns 0, or -ENOSPC when enospc_ok;
 * any other failure ends the program. */
static int do_alloc(struct run *r, uint64_t size, uint64_t align,
		    int enospc_ok, struct potad_extent *e)
{
	struct potad_alloc_req req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.size = size;
	req.align = align;
	rc = potad_alloc(r->s, &req, e);
	count_op(r);
	if (rc == -ENOSPC && enospc_ok)
		return rc;
	if (rc < 0) {
		char call[96];

		snprintf(call, sizeof(call),
			 "potad_alloc(size %llu, align %llu)",
			 (unsigned long long)size, (unsigned long long)align);
		engine_error(r, call, rc);
	}
	r->used += e->length;
	return 0;
}

static void do_free(struct run *r, uint64_t handle, uint64_t length)
{
	int rc;

	rc = potad_free(r->s, handle, NULL);
	count_op(r);
	if (rc < 0) {
		char call[64];

		snprintf(call, sizeof(call), "potad_free(%#llx)",
			 (unsigned long long)handle);
		engine_error(r, call, rc);
	}
	r->used -= length;
}

static void space_new(struct run *r, uint64_t base, uint64_t size)
{
	int rc;

	rc = potad_space_new(&r->s, base, size, GRANULE_SHIFT);
	if (rc < 0)
		die("%s: potad_space_new(%llu, %llu, %d) failed: %s", r->wl,
		    (unsigned long long)base, (unsigned long long)size,
		    GRANULE_SHIFT, strerror(-rc));
}

/* Records the end-of-measured-phase counters shared by every workload. */
static void finish_measure(struct run *r, struct result *res)
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

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p)
		die("out of memory (%zu x %zu bytes)", n, sz);
	return p;
}

/* A set of live extents that supports removing a random member. */
struct liveset {
	uint64_t *h;
	uint64_t *len;
	size_t n, cap;
};

static void live_push(struct liveset *l, const struct potad_extent *e)
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

static void live_free_random(struct run *r, struct liveset *l)
{
	uint64_t i = next_pick(r, l->n);

	do_free(r, l->h[i], l->len[i]);
	l->n--;
	l->h[i] = l->h[l->n];
	l->len[i] = l->len[l->n];
}

static void live_release(struct liveset *l)
{
	free(l->h);
	free(l->len);
	memset(l, 0, sizeof(*l));
}

/* W1's population: live extents of the size mix, their handles in h, their
 * lengths in len and (if start is not NULL) their first units in start. */
static void w1_fill(struct run *r, uint64_t live, uint64_t *h, uint64_t *len,
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

/* One W1 step: free a random extent of the arrays w1_fill() filled and
 * allocate one in its place.  With start, *freed gets the first unit of
 * the extent freed and *made that of the one allocated. */
static inline void w1_step(struct run *r, uint64_t live, uint64_t *h,
			   uint64_t *len, uint64_t *start, uint64_t *freed,
			   uint64_t *made)
{
	uint64_t v = next_pick(r, live);
	struct potad_extent e;

	do_free(r, h[v], len[v]);
	do_alloc(r, next_size(r), 0, 0, &e);
	h[v] = e.handle;
	len[v] = e.length;
	if (start) {
		*freed = start[v];
		*made = start[v] = e.offset >> GRANULE_SHIFT;
	}
}

static void wl_churn(struct run *r, struct result *res, int quick)
{
	const uint64_t live = 100000;
	uint64_t steps = 2000000 / (quick ? 10 : 1), i, *h, *len;

	h = xcalloc(live, sizeof(*h));
	len = xcalloc(live, sizeof(*len));
	space_new(r, 0, TIB);

	set_phase(r, "setup");
	w1_fill(r, live, h, len, NULL);

	set_phase(r, "measure");
	clock_start(r);
	for (i = 0; i < steps; i++)
		w1_step(r, live, h, len, NULL, NULL, NULL);
	clock_stop(r);
	finish_measure(r, res);
	free(h);
	free(len);
}

static void wl_fill(struct run *r, struct result *res, int quick)
{
	struct potad_extent e;

	space_new(r, 0, 64 * GIB);
	set_phase(r, "measure");
	clock_start(r);
	while (do_alloc(r, next_size(r), 0, 1, &e) == 0)
		;
	clock_stop(r);
	finish_measure(r, res);
}

static void wl_aligned(struct run *r, struct result *res, int quick)
{
	enum { SMALL = 1024, BIG = 64 };
	const uint64_t base = 4 * KIB, small = 4 * KIB, big = 8 * MIB;
	const uint64_t align = MIB;
	uint64_t iters = 1000000 / (quick ? 10 : 1), i;
	uint64_t hs[SMALL], hb[BIG];
	struct potad_extent e;
	unsigned a = 0, b = 0;

	space_new(r, base, GIB);

	/* The rings are built interleaved, as the loop will keep them. */
	set_phase(r, "setup");
	for (i = 0; i < SMALL; i++) {
		do_alloc(r, small, 0, 0, &e);
		hs[i] = e.handle;
		if (i % (SMALL / BIG) == 0) {
			do_alloc(r, big, align, 0, &e);
			if (e.offset % align)
				die("%s: run %d, setup: 8 MiB extent at %#llx "
				    "is not 1 MiB aligned",
				    r->wl, r->runno,
				    (unsigned long long)e.offset);
			hb[i / (SMALL / BIG)] = e.handle;
		}
	}

	set_phase(r, "measure");
	clock_start(r);
	for (i = 0; i < iters; i++) {
		do_free(r, hs[a], small);
		do_alloc(r, small, 0, 0, &e);
		hs[a] = e.handle;
		a = (a + 1) % SMALL;

		do_free(r, hb[b], big);
		do_alloc(r, big, align, 0, &e);
		if (e.offset % align)
			die("%s: run %d, iteration %llu: 8 MiB extent at "
			    "%#llx is not 1 MiB aligned",
			    r->wl, r->runno, (unsigned long long)i,
			    (unsigned long long)e.offset);
		hb[b] = e.handle;
		b = (b + 1) % BIG;
	}
	clock_stop(r);
	finish_measure(r, res);
}

static void wl_aging(struct run *r, struct result *res, int quick)
{
	const uint64_t size = TIB, target = size / 10 * 9;
	uint64_t churn_goal = 3 * size / (quick ? 10 : 1), churned = 0, want;
	struct liveset l = { 0 };
	struct potad_extent e;
	struct potad_stats st;

	space_new(r, 0, size);

	set_phase(r, "fill");
	while (r->used < target) {
		do_alloc(r, next_size(r), 0, 0, &e);
		live_push(&l, &e);
	}

	/* Each operation allocates the pending size when it fits under the
	 * mark, else frees a random extent, so the space stays just under
	 * 90% full while its free space is cut up. */
	set_phase(r, "churn");
	clock_start(r);
	want = next_size(r);
	while (churned < churn_goal) {
		if (r->used + want > target) {
			live_free_random(r, &l);
			continue;
		}
		if (do_alloc(r, want, 0, 1, &e) < 0) {
			/* Make room and retry the same size: dropping it would
			 * bias the live population toward small extents. */
			res->enospc++;
			live_free_random(r, &l);
			continue;
		}
		live_push(&l, &e);
		churned += e.length;
		want = next_size(r);
	}
	clock_stop(r);
	finish_measure(r, res);

	potad_space_frag(r->s, &res->largest_free, &res->frag);

	set_phase(r, "alloc-256m");
	while (do_alloc(r, 256 * MIB, 0, 1, &e) == 0)
		live_push(&l, &e);
	potad_space_stats(r->s, &st);
	res->util_256m = (double)(st.used_units * st.granule) / (double)st.size;
	live_release(&l);
}

/* A size of 4 KiB to 64 KiB, uniform in log2, from the pick stream. */
static uint64_t small_size(struct run *r)
{
	double u = (double)(next_pick(r, UINT64_MAX) >> 11) * 0x1p-53;
	uint64_t v = (uint64_t)ceil(exp2(12 + 4 * u));

	return (v + GRANULE - 1) & ~(GRANULE - 1);
}

/* What a journal's snapshot of a space holds. */
struct snapshot {
	uint32_t gen_max;
	uint64_t *ps, *pl;
	size_t np;
	struct potad_extent *e;
	size_t n, cap;
};

static int snap_extent(const struct potad_extent *e, void *arg)
{
	struct snapshot *sn = arg;

	if (sn->n == sn->cap)
		die("R1 restore: more extents than the %zu counted", sn->cap);
	sn->e[sn->n++] = *e;
	return 0;
}

static void snap_take(struct potad_space *s, struct snapshot *sn)
{
	struct potad_stats st;
	uint64_t off = 0, a, l;
	size_t cap = 0;

	potad_space_stats(s, &st);
	sn->gen_max = potad_space_gen_max(s);
	while (potad_poison_next(s, off, &a, &l) == 0) {
		if (sn->np == cap) {
			cap = cap ? 2 * cap : 64;
			sn->ps = realloc(sn->ps, cap * sizeof(*sn->ps));
			sn->pl = realloc(sn->pl, cap * sizeof(*sn->pl));
			if (!sn->ps || !sn->pl)
				die("out of memory (%zu poison ranges)", cap);
		}
		sn->ps[sn->np] = a;
		sn->pl[sn->np++] = l;
		off = a + l;
	}
	sn->cap = st.extents;
	sn->e = xcalloc(sn->cap ? sn->cap : 1, sizeof(*sn->e));
	potad_extent_foreach(s, 0, 0, snap_extent, sn);
}

static void snap_release(struct snapshot *sn)
{
	free(sn->ps);
	free(sn->pl);
	free(sn->e);
	memset(sn, 0, sizeof(*sn));
}

static int cmp_extent(const struct potad_extent *a,
		      const struct potad_extent *b)
{
	return a->offset != b->offset || a->length != b->length ||
	       a->handle != b->handle || a->owner != b->owner ||
	       a->tag != b->tag || a->type != b->type || a->flags != b->flags;
}

/* The rebuilt space must be the original: same counters and free lists,
 * and the same extents in the same order. */
static void restore_verify(struct run *r, struct potad_space *a,
			   const struct snapshot *sn)
{
	struct potad_stats x, y;
	struct snapshot again = { 0 };

	potad_space_stats(a, &x);
	potad_space_stats(r->s, &y);
	if (x.free_units != y.free_units || x.used_units != y.used_units ||
	    x.poison_units != y.poison_units || x.extents != y.extents ||
	    x.free_blocks != y.free_blocks ||
	    memcmp(x.free_per_order, y.free_per_order,
		   sizeof(x.free_per_order)))
		die("%s: run %d: the restored space's counters differ", r->wl,
		    r->runno);
	snap_take(r->s, &again);
	if (again.n != sn->n || again.np != sn->np ||
	    again.gen_max < sn->gen_max)
		die("%s: run %d: restored %zu extents and %zu poison ranges "
		    "of %zu and %zu",
		    r->wl, r->runno, again.n, again.np, sn->n, sn->np);
	for (size_t i = 0; i < sn->n; i++)
		if (cmp_extent(&again.e[i], &sn->e[i]))
			die("%s: run %d: restored extent %zu differs", r->wl,
			    r->runno, i);
	snap_release(&again);
}

/* n allocations of 4K-64K, then steps that each free a random one and
 * allocate another: R1's and L1's population. */
static void fill_small(struct run *r, struct liveset *l, uint64_t n,
		       uint64_t steps)
{
	struct potad_extent e;
	uint64_t i;

	for (i = 0; i < n; i++) {
		do_alloc(r, small_size(r), 0, 0, &e);
		live_push(l, &e);
	}
	for (i = 0; i < steps; i++) {
		live_free_random(r, l);
		do_alloc(r, small_size(r), 0, 0, &e);
		live_push(l, &e);
	}
}

static int count_one(const struct potad_extent *e, void *arg)
{
	(void)e;
	++*(uint64_t *)arg;
	return 0;
}

/* Listing: every extent in address order, by one in-order walk of the
 * index (potad_extent_foreach_from), and, for comparison, by a search per
 * extent (potad_extent_next). */
static void wl_list(struct run *r, struct result *res, int quick)
{
	uint64_t n = 1000000 / (quick ? 10 : 1), seen = 0, off = 0, t0;
	struct liveset l = { 0 };
	struct potad_extent e;
	int rc;

	space_new(r, 0, 64 * GIB);
	set_phase(r, "setup");
	fill_small(r, &l, n, n / 10);
	live_release(&l);

	set_phase(r, "measure");
	clock_start(r);
	rc = potad_extent_foreach_from(r->s, 0, 0, 0, count_one, &seen);
	clock_stop(r);
	if (rc != 0 || seen != n)
		die("%s: run %d: the walk saw %llu of %llu extents", r->wl,
		    r->runno, (unsigned long long)seen,
		    (unsigned long long)n);
	r->ops = seen;
	finish_measure(r, res);
	t0 = now_ns();
	for (seen = 0; potad_extent_next(r->s, off, &e) == 0; seen++)
		off = e.offset + 1;
	res->next_ns = (double)(now_ns() - t0) / (double)(seen ? seen : 1);
	if (seen != n)
		die("%s: run %d: potad_extent_next saw %llu of %llu extents",
		    r->wl, r->runno, (unsigned long long)seen,
		    (unsigned long long)n);
}

/* Put key (with value val) in I1's map. */
static void index_put(struct run *r, struct rtree *t, struct rpool *nodes,
		      struct rpool *vals, uint64_t key, uint32_t val)
{
	if (potad__rpool_reserve(nodes, potad__rtree_insert_need(t)) ||
	    potad__rpool_reserve(vals, 64))
		die("%s: out of memory", r->wl);
	potad__rtree_insert(t, nodes, vals, key, val);
}

/* The extent index alone: W1's own index operations (the start of every
 * extent its setup allocates, then per step the start it frees and the
 * one it allocates, recorded from a W1 run through the engine), replayed
 * on a fresh radix map of the kind that indexes extents, with no
 * descriptors and no free space: the part of W1 that any free-space
 * design leaves to the index. */
static void wl_index(struct run *r, struct result *res, int quick)
{
	const uint64_t live = 100000;
	uint64_t steps = 2000000 / (quick ? 10 : 1), i, *h, *len, *start, *rm,
		 *in;
	struct rpool nodes, vals;
	struct rtree t;

	h = xcalloc(live, sizeof(*h));
	len = xcalloc(live, sizeof(*len));
	start = xcalloc(live, sizeof(*start));
	rm = xcalloc(steps, sizeof(*rm));
	in = xcalloc(steps, sizeof(*in));
	space_new(r, 0, TIB);
	set_phase(r, "setup");
	w1_fill(r, live, h, len, start);
	potad__rpool_init(&nodes, sizeof(struct rnode));
	potad__rpool_init(&vals, sizeof(uint32_t));
	potad__rtree_init(&t, (TIB >> GRANULE_SHIFT) - 1, true);
	for (i = 0; i < live; i++)
		index_put(r, &t, &nodes, &vals, start[i], (uint32_t)i);
	for (i = 0; i < steps; i++)
		w1_step(r, live, h, len, start, &rm[i], &in[i]);

	set_phase(r, "measure");
	clock_start(r);
	for (i = 0; i < steps; i++) {
		if (!potad__rtree_remove(&t, &nodes, &vals, rm[i]))
			die("%s: key %#llx was not in the index", r->wl,
			    (unsigned long long)rm[i]);
		count_op(r);
		index_put(r, &t, &nodes, &vals, in[i], (uint32_t)i);
		count_op(r);
	}
	clock_stop(r);
	res->ops = r->ops;
	res->ns_per_op = (double)r->ns / (double)r->ops;
	res->extent_bytes =
	    potad__rpool_bytes(&nodes) + potad__rpool_bytes(&vals);
	res->extents = live;
	res->size = 1; /* util: the index holds no space */
	r->meta_peak = res->extent_bytes;
	if (!potad__rtree_verify(&t, &nodes, &vals))
		die("%s: the index is malformed", r->wl);
	potad__rtree_clear(&t, &nodes, &vals);
	potad__rpool_fini(&nodes);
	potad__rpool_fini(&vals);
	free(h);
	free(len);
	free(start);
	free(rm);
	free(in);
}

/* A 20-byte record like the engine's descriptor, for X1's indexed pass. */
struct refdesc {
	uint32_t start, len, owner, tag, word;
};

/* X1's allocator and, in its indexed pass, what the engine keeps per
 * extent besides free space. */
struct refstate {
	struct reftlsf a;
	bool indexed;
	struct refdesc *d; /* by node */
	struct rpool nodes, vals;
	struct rtree t;
};

/* A run of len units from X1's allocator, described and indexed in the
 * indexed pass; `what` and `i` name the call if it fails. */
static uint32_t ref_take(struct run *r, struct refstate *x, uint64_t len,
			 const char *what, uint64_t i)
{
	uint32_t n = reftlsf_alloc(&x->a, len);

	if (n == REFTLSF_NIL)
		die("%s: %s %llu failed", r->wl, what, (unsigned long long)i);
	if (x->indexed) {
		x->d[n] = (struct refdesc){ (uint32_t)x->a.node[n].off,
					    (uint32_t)len, 0, 0,
					    x->d[n].word + 1 };
		index_put(r, &x->t, &x->nodes, &x->vals, x->a.node[n].off, n);
	}
	r->used += len << GRANULE_SHIFT;
	return n;
}

/* One pass of W1's setup and steps through reftlsf.c; with `indexed`, each
 * run held also gets a descriptor written and an entry in a radix map of
 * the kind that indexes extents, keyed by its first unit, as the engine
 * keeps them.  Returns the ns per operation; *bytes gets the allocator's
 * memory (and the index's). */
static double ref_pass(struct run *r, uint64_t steps, bool indexed,
		       uint64_t *bytes)
{
	const uint64_t live = 100000;
	uint64_t i, v, *len;
	uint32_t *h, n;
	struct refstate x = { .indexed = indexed };
	const char *why;

	h = xcalloc(live, sizeof(*h));
	len = xcalloc(live, sizeof(*len));
	x.d = xcalloc(2 * live + 2, sizeof(*x.d));
	if (reftlsf_init(&x.a, TIB >> GRANULE_SHIFT, 2 * (uint32_t)live + 2))
		die("%s: out of memory", r->wl);
	potad__rpool_init(&x.nodes, sizeof(struct rnode));
	potad__rpool_init(&x.vals, sizeof(uint32_t));
	potad__rtree_init(&x.t, (TIB >> GRANULE_SHIFT) - 1, true);
	stream_init(r->sz, SIZE_SEED, 1);
	stream_init(r->pk, PICK_SEED, 0);
	r->used = 0;

	set_phase(r, indexed ? "setup (indexed)" : "setup");
	for (i = 0; i < live; i++) {
		len[i] = next_size(r) >> GRANULE_SHIFT;
		h[i] = ref_take(r, &x, len[i], "setup allocation", i);
	}

	set_phase(r, indexed ? "measure (indexed)" : "measure");
	clock_start(r);
	for (i = 0; i < steps; i++) {
		v = next_pick(r, live);
		n = h[v];
		if (indexed && (x.d[n].len != len[v] ||
				!potad__rtree_remove(&x.t, &x.nodes, &x.vals,
						     x.d[n].start)))
			die("%s: step %llu: run %u is not indexed", r->wl,
			    (unsigned long long)i, n);
		reftlsf_free(&x.a, n);
		r->used -= len[v] << GRANULE_SHIFT;
		len[v] = next_size(r) >> GRANULE_SHIFT;
		h[v] = ref_take(r, &x, len[v], "allocation", i);
	}
	clock_stop(r);
	why = reftlsf_check(&x.a);
	if (why)
		die("%s: run %d: %s", r->wl, r->runno, why);
	if (indexed && !potad__rtree_verify(&x.t, &x.nodes, &x.vals))
		die("%s: the index is malformed", r->wl);
	*bytes = reftlsf_bytes(&x.a);
	if (indexed)
		*bytes += (2 * live + 2) * sizeof(*x.d) +
			  potad__rpool_bytes(&x.nodes) +
			  potad__rpool_bytes(&x.vals);
	potad__rtree_clear(&x.t, &x.nodes, &x.vals);
	potad__rpool_fini(&x.nodes);
	potad__rpool_fini(&x.vals);
	reftlsf_fini(&x.a);
	free(h);
	free(len);
	free(x.d);
	return (double)r->ns / (double)(2 * steps);
}

/* W1's stream through the reference allocator of reftlsf.c instead of the
 * engine: the same sizes, the same victims, the same 2^40-byte space in
 * 4 KiB units.  It keeps no descriptors, cannot look an address up and
 * knows no alignment, so it is not a competitor but a yardstick: what W1's
 * free-space work costs on this machine in the leanest design known.  A
 * second pass adds what the engine keeps per extent besides free space (a
 * descriptor and an index entry), for indexed_ns. */
static void wl_reference(struct run *r, struct result *res, int quick)
{
	uint64_t steps = 2000000 / (quick ? 10 : 1), bytes;

	res->ns_per_op = ref_pass(r, steps, false, &bytes);
	res->extent_bytes = bytes;
	res->used = r->used;
	res->indexed_ns = ref_pass(r, steps, true, &bytes);
	res->ops = 2 * steps;
	res->extents = 100000;
	res->size = TIB;
	r->meta_peak = res->extent_bytes;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Check the engine's space and let it go. */
static void space_check_destroy(struct run *r)
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

/* W1's setup and `steps` steps through refseg.c; the ns per operation.
 * With check, the engine takes the same stream beside it and every
 * placement must agree. */
static double seg_pass(struct run *r, uint64_t steps, bool check,
		       uint64_t *bytes)
{
	const uint64_t live = 100000;
	uint64_t i, v, *h = NULL, *len;
	uint32_t *slot;
	struct refseg t;
	struct potad_extent e;
	const char *why;

	slot = xcalloc(live, sizeof(*slot));
	len = xcalloc(live, sizeof(*len));
	if (check) {
		h = xcalloc(live, sizeof(*h));
		space_new(r, 0, TIB);
	}
	if (refseg_init(&t, 0, TIB >> GRANULE_SHIFT, 2 * (uint32_t)live))
		die("%s: out of memory", r->wl);
	stream_init(r->sz, SIZE_SEED, 1);
	stream_init(r->pk, PICK_SEED, 0);
	r->used = 0;

	set_phase(r, check ? "setup (beside the engine)" : "setup");
	for (i = 0; i < live + steps; i++) {
		if (i == live) {
			set_phase(r, check ? "steps (beside the engine)"
					   : "measure");
			if (!check)
				clock_start(r);
		}
		v = i;
		if (i >= live) {
			v = next_pick(r, live);
			refseg_free(&t, slot[v]);
			if (check)
				do_free(r, h[v], len[v] << GRANULE_SHIFT);
			else
				r->used -= len[v] << GRANULE_SHIFT;
		}
		len[v] = next_size(r) >> GRANULE_SHIFT;
		slot[v] = refseg_alloc(&t, (uint32_t)len[v], 1, 0, 0);
		if (slot[v] == REFSEG_NIL)
			die("%s: step %llu: refseg_alloc(%llu) failed", r->wl,
			    (unsigned long long)i, (unsigned long long)len[v]);
		if (!check) {
			r->used += len[v] << GRANULE_SHIFT;
			continue;
		}
		do_alloc(r, len[v] << GRANULE_SHIFT, 0, 0, &e);
		h[v] = e.handle;
		if (e.offset >> GRANULE_SHIFT != t.desc[slot[v]].start)
			die("%s: step %llu: the engine put %llu units at unit "
			    "%llu, refseg.c at %u",
			    r->wl, (unsigned long long)i,
			    (unsigned long long)len[v],
			    (unsigned long long)(e.offset >> GRANULE_SHIFT),
			    t.desc[slot[v]].start);
	}
	if (!check)
		clock_stop(r);
	why = refseg_check(&t);
	if (why)
		die("%s: run %d: %s", r->wl, r->runno, why);
	if (check)
		space_check_destroy(r);
	*bytes = refseg_bytes(&t);
	refseg_fini(&t);
	free(slot);
	free(len);
	free(h);
	return (double)r->ns / (double)(2 * steps);
}

/* W3's rings through refseg.c (the same units: base 4 KiB, 1 GiB, rings of
 * 1,024 x 4 KiB and 64 x 8 MiB at 1 MiB); the ns per operation.  With
 * check, the engine takes the same requests beside it and every placement
 * must agree. */
static double seg_rings(struct run *r, uint64_t iters, bool check)
{
	enum { SMALL = 1024, BIG = 64 };
	const uint32_t big = (uint32_t)(8 * MIB >> GRANULE_SHIFT),
		       align = (uint32_t)(MIB >> GRANULE_SHIFT);
	uint32_t ss[SMALL], sb[BIG], *sl;
	uint64_t hs[SMALL], hb[BIG], *h, i;
	unsigned a = 0, b = 0, len, al;
	struct refseg t;
	struct potad_extent e;
	const char *why;

	if (refseg_init(&t, 1, 1 + (GIB >> GRANULE_SHIFT), SMALL + BIG))
		die("%s: out of memory", r->wl);
	if (check)
		space_new(r, GRANULE, GIB);
	set_phase(r, check ? "rings (beside the engine)" : "rings");
	for (i = 0; i < SMALL + BIG + 2 * iters; i++) {
		bool setup = i < SMALL + BIG;
		bool small;

		if (setup) {
			/* W3's setup order: small 0, big 0, small 1..16,
			 * big 1, ... */
			small = i % (SMALL / BIG + 1) != 1;
		} else {
			small = (i - SMALL - BIG) % 2 == 0;
		}
		if (i == SMALL + BIG && !check)
			clock_start(r);
		sl = small ? &ss[a] : &sb[b];
		h = small ? &hs[a] : &hb[b];
		len = small ? 1 : big;
		al = small ? 1 : align;
		if (!setup) {
			refseg_free(&t, *sl);
			if (check)
				do_free(r, *h, (uint64_t)len << GRANULE_SHIFT);
		}
		*sl = refseg_alloc(&t, len, al, 0, 0);
		if (*sl == REFSEG_NIL)
			die("%s: rings, step %llu: refseg_alloc(%u, align %u) "
			    "failed",
			    r->wl, (unsigned long long)i, len, al);
		if (check) {
			do_alloc(r, (uint64_t)len << GRANULE_SHIFT,
				 (uint64_t)al << GRANULE_SHIFT, 0, &e);
			*h = e.handle;
			if (e.offset >> GRANULE_SHIFT != t.desc[*sl].start)
				die("%s: rings, step %llu: the engine put %u "
				    "units at unit %llu, refseg.c at %u",
				    r->wl, (unsigned long long)i, len,
				    (unsigned long long)(e.offset >>
							 GRANULE_SHIFT),
				    t.desc[*sl].start);
		}
		if (small)
			a = (a + 1) % SMALL;
		else
			b = (b + 1) % BIG;
	}
	if (!check)
		clock_stop(r);
	why = refseg_check(&t);
	if (why)
		die("%s: rings: %s", r->wl, why);
	refseg_fini(&t);
	if (check)
		space_check_destroy(r);
	return (double)r->ns / (double)(4 * iters);
}

/* W4's aging through refseg.c: fill 1 TiB to 90%, churn `goal` bytes,
 * then 256 MiB extents until one fails.  Returns the churn's ns per
 * operation; *enospc, *util and *bpe get the refusals, the utilisation
 * after the 256 MiB extents and the bytes per live extent then.  With check, the engine takes the same
 * requests beside it: every placement and every refusal must agree. */
static double seg_aging(struct run *r, uint64_t goal, bool check,
			uint64_t *enospc, double *util, double *bpe)
{
	/* W4's mark, in bytes as W4 keeps it. */
	const uint64_t units = TIB >> GRANULE_SHIFT, target = TIB / 10 * 9;
	const uint32_t cap = 1u << 21;
	uint32_t *slot = xcalloc(cap, sizeof(*slot)), len, want;
	uint64_t *h = check ? xcalloc(cap, sizeof(*h)) : NULL, used = 0;
	uint64_t churned = 0, ops = 0, cops = 0, n = 0, v;
	uint32_t *lens = xcalloc(cap, sizeof(*lens));
	struct potad_extent e;
	struct refseg t;
	int phase = 0, rc = 0; /* fill, churn, 256 MiB */
	const char *why;

	if (refseg_init(&t, 0, units, cap))
		die("%s: out of memory", r->wl);
	if (check)
		space_new(r, 0, TIB);
	stream_init(r->sz, SIZE_SEED, 1);
	stream_init(r->pk, PICK_SEED, 0);
	*enospc = 0;
	set_phase(r, check ? "aging (beside the engine)" : "aging");
	want = (uint32_t)(next_size(r) >> GRANULE_SHIFT);
	for (;;) {
		if (phase == 0 && used << GRANULE_SHIFT >= target) {
			phase = 1;
			if (!check)
				clock_start(r);
		}
		if (phase == 1 && churned >= goal) {
			phase = 2;
			if (!check)
				clock_stop(r);
		}
		len = phase == 2 ? (uint32_t)(256 * MIB >> GRANULE_SHIFT)
				 : want;
		if (phase == 1 && (used + len) << GRANULE_SHIFT > target)
			goto free_one;
		if (n == cap)
			die("%s: aging: more than %u extents", r->wl, cap);
		slot[n] = refseg_alloc(&t, len, 1, 0, 0);
		ops++;
		cops += phase == 1;
		if (check) {
			rc = do_alloc(r, (uint64_t)len << GRANULE_SHIFT, 0, 1,
				      &e);
			if ((rc < 0) != (slot[n] == REFSEG_NIL) ||
			    (rc == 0 && e.offset >> GRANULE_SHIFT !=
					    t.desc[slot[n]].start))
				die("%s: aging, operation %llu: %u units: the "
				    "engine says %d at unit %llu, refseg.c "
				    "%s at unit %u",
				    r->wl, (unsigned long long)ops, len, rc,
				    rc ? 0ull
				       : (unsigned long long)(e.offset >>
							      GRANULE_SHIFT),
				    slot[n] == REFSEG_NIL ? "refuses" : "puts",
				    slot[n] == REFSEG_NIL
					? 0
					: t.desc[slot[n]].start);
			h[n] = e.handle;
		}
		if (slot[n] == REFSEG_NIL) {
			if (phase == 2)
				break;
			if (phase == 1)
				++*enospc;
			goto free_one;
		}
		lens[n++] = len;
		used += len;
		if (phase == 1)
			churned += (uint64_t)len << GRANULE_SHIFT;
		if (phase < 2)
			want = (uint32_t)(next_size(r) >> GRANULE_SHIFT);
		continue;
free_one:
		/* Make room and retry the same size, as W4 does. */
		v = next_pick(r, n);
		refseg_free(&t, slot[v]);
		if (check)
			do_free(r, h[v], (uint64_t)lens[v] << GRANULE_SHIFT);
		ops++;
		cops += phase == 1;
		used -= lens[v];
		n--;
		slot[v] = slot[n];
		lens[v] = lens[n];
		if (check)
			h[v] = h[n];
	}
	*util = (double)used / (double)units;
	*bpe = (double)refseg_bytes(&t) / (double)n;
	why = refseg_check(&t);
	if (why)
		die("%s: aging: %s", r->wl, why);
	refseg_fini(&t);
	if (check)
		space_check_destroy(r);
	free(slot);
	free(lens);
	free(h);
	return cops ? (double)r->ns / (double)cops : 0;
}

/* A mixed stream through refseg.c and the engine side by side, untimed:
 * frees, plain, range-bounded and top-down allocations at random
 * alignments, and fixed claims, in a space of 2^16 units at base 1 (a
 * small one, so that it fills, fragments and refuses).  Every placement
 * and every refusal must agree.  Returns the requests compared. */
static uint64_t seg_mixed(struct run *r, uint64_t steps)
{
	enum { CAP = 1 << 15 };
	const uint32_t ub = 1, units = 1u << 16;
	static uint64_t h[CAP];
	static uint32_t sl[CAP];
	uint64_t i, compared = 0;
	uint32_t n = 0;
	struct refseg t;
	const char *why;

	if (refseg_init(&t, ub, ub + units, CAP))
		die("%s: out of memory", r->wl);
	space_new(r, (uint64_t)ub << GRANULE_SHIFT,
		  (uint64_t)units << GRANULE_SHIFT);
	stream_init(r->pk, PICK_SEED, 0);
	set_phase(r, "mixed (beside the engine)");
	for (i = 0; i < steps; i++) {
		uint64_t op = next_pick(r, 100), kind = next_pick(r, 10);
		uint32_t L = 1 + (uint32_t)next_pick(r, 1ull
							   << next_pick(r, 14));
		uint32_t A = next_pick(r, 3) ? 1 : 1u << next_pick(r, 13);
		uint32_t lo = ub, hi = ub + units, q;
		bool down = kind == 3 || kind == 4, claim = kind == 5;
		struct potad_alloc_req req = { 0 };
		struct potad_extent e;
		int rc;

		if (n && (op < 30 || n == CAP)) {
			uint64_t v = next_pick(r, n);

			refseg_free(&t, sl[v]);
			do_free(r, h[v], 0);
			n--;
			h[v] = h[n];
			sl[v] = sl[n];
			continue;
		}
		if (kind < 3 || (down && kind == 4)) {
			lo = ub + (uint32_t)next_pick(r, units);
			hi = lo + 1 + (uint32_t)next_pick(r, ub + units - lo);
		}
		if (claim) {
			lo = (ub + (uint32_t)next_pick(r, units)) & ~(A - 1);
			if (lo < ub || lo >= ub + units || L > ub + units - lo)
				continue;
			rc = potad_claim(r->s, (uint64_t)lo << GRANULE_SHIFT,
					 (uint64_t)L << GRANULE_SHIFT, 0, 0, &e);
			q = refseg_claim(&t, lo, L, 0, 0);
		} else {
			if (L > hi - lo)
				continue;
			req.size = (uint64_t)L << GRANULE_SHIFT;
			req.align = (uint64_t)A << GRANULE_SHIFT;
			req.min = lo > ub ? (uint64_t)lo << GRANULE_SHIFT : 0;
			req.max = hi < ub + units ? (uint64_t)hi << GRANULE_SHIFT
						  : 0;
			req.flags = down ? POTAD_ALLOC_TOPDOWN : 0;
			rc = potad_alloc(r->s, &req, &e);
			q = refseg_alloc_in(&t, L, A, lo, hi, down, 0, 0);
		}
		compared++;
		if ((rc == 0) != (q != REFSEG_NIL) ||
		    (rc == 0 && e.offset >> GRANULE_SHIFT != t.desc[q].start))
			die("%s: mixed, request %llu (%u units at %u, [%u, %u)%s%s): "
			    "the engine says %d at unit %llu, refseg.c %s %u",
			    r->wl, (unsigned long long)i, L, A, lo, hi,
			    down ? ", top-down" : "", claim ? ", claim" : "", rc,
			    rc ? 0ull
			       : (unsigned long long)(e.offset >> GRANULE_SHIFT),
			    q == REFSEG_NIL ? "refuses" : "puts it at",
			    q == REFSEG_NIL ? 0 : t.desc[q].start);
		if (rc == 0) {
			h[n] = e.handle;
			sl[n++] = q;
		}
	}
	why = refseg_check(&t);
	if (why)
		die("%s: mixed: %s", r->wl, why);
	refseg_fini(&t);
	space_check_destroy(r);
	return compared;
}

/* W1's stream through the candidate design of refseg.c: the extents in
 * one address-ordered B+ tree that is also the index, free space as the
 * gaps between them, buddy orders summarised per node.  It places every
 * extent where the engine does, which a second, shorter pass beside the
 * engine checks (same_steps); it has descriptors and lookup, but not the
 * engine's other paths. */
static void wl_segments(struct run *r, struct result *res, int quick)
{
	uint64_t steps = 2000000 / (quick ? 10 : 1), bytes;

	res->ns_per_op = seg_pass(r, steps, false, &bytes);
	res->extent_bytes = bytes;
	res->used = r->used;
	res->ops = 2 * steps;
	res->extents = 100000;
	res->size = TIB;
	seg_pass(r, steps / 10, true, &bytes);
	res->same_steps = steps / 10;
	{
		/* The rings are short: the median of three passes. */
		double ns[3];

		for (int k = 0; k < 3; k++)
			ns[k] = seg_rings(r, steps / 2, false);
		qsort(ns, 3, sizeof(ns[0]), cmp_double);
		res->aligned_ns = ns[1];
	}
	seg_rings(r, steps / 20, true);
	res->aging_ns = seg_aging(r, 3 * TIB / (quick ? 10 : 1), false,
				  &res->aging_enospc, &res->aging_util_256m,
				  &res->aging_bpe);
	{
		uint64_t enospc;
		double util, bpe;

		seg_aging(r, 3 * TIB / (quick ? 100 : 10), true, &enospc,
			  &util, &bpe);
	}
	res->same_mixed = seg_mixed(r, quick ? 20000 : 200000);
	r->meta_peak = res->extent_bytes; /* not the engine's */
}

static void wl_restore(struct run *r, struct result *res, int quick)
{
	const uint64_t size = 64 * GIB;
	uint64_t n = 1000000 / (quick ? 10 : 1), steps = n / 10, i;
	struct potad_space *a;
	struct snapshot sn = { 0 };
	struct liveset l = { 0 };
	struct potad_extent e;
	uint64_t used, t0;
	int rc;

	space_new(r, 0, size);
	set_phase(r, "setup");
	fill_small(r, &l, n, steps);
	for (i = 0; i < 64; i++) {
		rc = potad_poison(r->s, next_pick(r, size >> GRANULE_SHIFT)
						<< GRANULE_SHIFT,
				  GRANULE, NULL, NULL);
		if (rc < 0)
			engine_error(r, "potad_poison", rc);
	}
	live_release(&l);
	snap_take(r->s, &sn);
	a = r->s;
	r->s = NULL;
	used = r->used;

	set_phase(r, "measure");
	clock_start(r);
	rc = potad_space_new(&r->s, 0, size, GRANULE_SHIFT);
	if (rc < 0)
		engine_error(r, "potad_space_new", rc);
	potad_space_set_gen_floor(r->s, sn.gen_max);
	for (i = 0; i < sn.np; i++) {
		rc = potad_poison(r->s, sn.ps[i], sn.pl[i], NULL, NULL);
		if (rc < 0)
			engine_error(r, "potad_poison", rc);
	}
	for (i = 0; i < sn.n; i++) {
		rc = potad_place(r->s, &sn.e[i]);
		count_op(r);
		if (rc < 0)
			engine_error(r, "potad_place", rc);
	}
	clock_stop(r);
	res->total_ms = (double)r->ns / 1e6;
	r->used = used;
	finish_measure(r, res);

	restore_verify(r, a, &sn);
	snap_release(&sn);

	/* The first allocation after placing rebuilds the free-slot list. */
	t0 = now_ns();
	do_alloc(r, GRANULE, 0, 0, &e);
	res->first_alloc_ms = (double)(now_ns() - t0) / 1e6;
	do_free(r, e.handle, e.length);
	rc = potad_space_destroy(a);
	if (rc < 0)
		die("%s: potad_space_destroy: %s", r->wl, strerror(-rc));
}

static const struct workload workloads[] = {
	{ "W1", "churn", wl_churn },
	{ "W2", "fill", wl_fill },
	{ "W3", "aligned", wl_aligned },
	{ "W4", "aging", wl_aging },
	{ "R1", "restore", wl_restore },
	{ "L1", "list", wl_list },
	{ "I1", "index", wl_index },
	{ "X1", "reference", wl_reference },
	{ "X2", "segments", wl_segments },
};

#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static void run_workload(const struct workload *w, int runs, int quick)
{
	struct result res[MAX_RUNS], *last;
	double ns[MAX_RUNS], med;
	struct stream *sz, *pk;
	uint64_t meta_peak = 0;
	char label[64], msg[512];
	int i, rc;

	snprintf(label, sizeof(label), "%s %s", w->id, w->name);
	sz = xcalloc(1, sizeof(*sz));
	pk = xcalloc(1, sizeof(*pk));
	for (i = 0; i < runs; i++) {
		struct run r;

		memset(&r, 0, sizeof(r));
		memset(&res[i], 0, sizeof(res[i]));
		r.wl = label;
		r.runno = i + 1;
		r.phase = "start";
		stream_init(sz, SIZE_SEED, 1);
		stream_init(pk, PICK_SEED, 0);
		r.sz = sz;
		r.pk = pk;
		w->fn(&r, &res[i], quick);
		ns[i] = res[i].ns_per_op;
		if (r.meta_peak > meta_peak)
			meta_peak = r.meta_peak;
		if (!r.s) /* X1 checks its own allocator */
			continue;
		if (i == runs - 1) {
			rc = potad_space_check(r.s, msg, sizeof(msg));
			if (rc < 0)
				die("%s: potad_space_check after the last "
				    "run: %s",
				    label, msg);
		}
		rc = potad_space_destroy(r.s);
		if (rc < 0)
			die("%s: potad_space_destroy: %s", label,
			    strerror(-rc));
	}
	free(sz);
	free(pk);

	qsort(ns, (size_t)runs, sizeof(ns[0]), cmp_double);
	med = runs % 2 ? ns[runs / 2] : (ns[runs / 2 - 1] + ns[runs / 2]) / 2;
	last = &res[runs - 1];

	if (opt_json) {
		printf("{\"workload\":\"%s\",\"name\":\"%s\",\"runs\":%d,"
		       "\"ops\":%llu,\"ns_per_op\":%.1f,\"ns_min\":%.1f,"
		       "\"ns_max\":%.1f,\"ops_per_s\":%.0f,\"meta_peak\":%llu,"
		       "\"extent_bytes\":%llu,\"bytes_per_extent\":%.1f,"
		       "\"live\":%llu,\"util\":%.4f",
		       w->id, w->name, runs, (unsigned long long)last->ops,
		       med, ns[0], ns[runs - 1], med > 0 ? 1e9 / med : 0.0,
		       (unsigned long long)meta_peak,
		       (unsigned long long)last->extent_bytes,
		       last->extents ? (double)last->extent_bytes /
					       (double)last->extents
				     : 0.0,
		       (unsigned long long)last->extents,
		       (double)last->used / (double)last->size);
		if (w->fn == wl_aging)
			printf(",\"enospc\":%llu,\"frag\":%.4f,"
			       "\"largest_free\":%llu,\"util_256m\":%.4f",
			       (unsigned long long)last->enospc, last->frag,
			       (unsigned long long)last->largest_free,
			       last->util_256m);
		if (w->fn == wl_restore)
			printf(",\"total_ms\":%.1f,\"first_alloc_ms\":%.2f",
			       last->total_ms, last->first_alloc_ms);
		if (w->fn == wl_list)
			printf(",\"next_ns\":%.1f", last->next_ns);
		if (w->fn == wl_reference)
			printf(",\"indexed_ns\":%.1f", last->indexed_ns);
		if (w->fn == wl_segments)
			printf(",\"aligned_ns\":%.1f,\"aging_ns\":%.1f,"
			       "\"aging_enospc\":%llu,\"aging_util_256m\":%.4f,"
			       "\"aging_bytes_per_extent\":%.1f,"
			       "\"same_steps\":%llu,\"same_mixed\":%llu",
			       last->aligned_ns, last->aging_ns,
			       (unsigned long long)last->aging_enospc,
			       last->aging_util_256m, last->aging_bpe,
			       (unsigned long long)last->same_steps,
			       (unsigned long long)last->same_mixed);
		printf("}\n");
	} else {
		printf("%s %s ns_per_op=%.1f ops_per_s=%.0f ops=%llu runs=%d "
		       "ns_min=%.1f ns_max=%.1f bytes_per_extent=%.1f "
		       "meta_peak=%llu live=%llu util=%.4f",
		       w->id, w->name, med, med > 0 ? 1e9 / med : 0.0,
		       (unsigned long long)last->ops, runs, ns[0],
		       ns[runs - 1],
		       last->extents ? (double)last->extent_bytes /
					       (double)last->extents
				     : 0.0,
		       (unsigned long long)meta_peak,
		       (unsigned long long)last->extents,
		       (double)last->used / (double)last->size);
		if (w->fn == wl_aging)
			printf(" enospc=%llu frag=%.4f largest_free=%llu "
			       "util_256m=%.4f",
			       (unsigned long long)last->enospc, last->frag,
			       (unsigned long long)last->largest_free,
			       last->util_256m);
		if (w->fn == wl_restore)
			printf(" total_ms=%.1f first_alloc_ms=%.2f",
			       last->total_ms, last->first_alloc_ms);
		if (w->fn == wl_list)
			printf(" next_ns=%.1f", last->next_ns);
		if (w->fn == wl_reference)
			printf(" indexed_ns=%.1f", last->indexed_ns);
		if (w->fn == wl_segments)
			printf(" aligned_ns=%.1f aging_ns=%.1f aging_enospc=%llu "
			       "aging_util_256m=%.4f aging_bytes_per_extent=%.1f "
			       "same_steps=%llu same_mixed=%llu",
			       last->aligned_ns, last->aging_ns,
			       (unsigned long long)last->aging_enospc,
			       last->aging_util_256m, last->aging_bpe,
			       (unsigned long long)last->same_steps,
			       (unsigned long long)last->same_mixed);
		printf("\n");
	}
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: potad-bench-engine [--runs N] [--quick]\n"
"                          [--only W1|W2|W3|W4|R1|L1|I1|X1|X2]\n"
"                          [--json]\n"
"\n"
"Measures the POTAD engine in-process and prints one line per workload:\n"
"  W1 churn    2^40-byte space, 100,000 live extents, 2,000,000 steps that\n"
"              free a random extent and allocate a new one\n"
"  W2 fill     64 GiB space, allocate until the first -ENOSPC\n"
"  W3 aligned  1 GiB space at base 4 KiB, rings of 1,024 x 4 KiB and\n"
"              64 x 8 MiB (1 MiB aligned), 1,000,000 iterations that\n"
"              replace the oldest of each (4 operations)\n"
"  W4 aging    1 TiB space filled to 90%%, churned for 3x its capacity;\n"
"              then frag, largest_free, util_256m\n"
"  R1 restore  64 GiB space, 1,000,000 extents of 4K-64K, 100,000 churn\n"
"              steps, 64 poisoned units; snapshot, then rebuild it in a\n"
"              fresh space with potad_place (an operation: one extent)\n"
"  L1 list     R1's extents (no poison) walked in address order with\n"
"              potad_extent_foreach_from (an operation: one extent)\n"
"  I1 index    the extent index alone: W1's index inserts and removes,\n"
"              recorded from a W1 run and replayed on a fresh map (an\n"
"              operation: one insert or remove; bytes_per_extent: the\n"
"              index's bytes per key)\n"
"  X1 reference W1's stream through a two-level segregated-fit allocator\n"
"              (TLSF/OffsetAllocator design, bench/reftlsf.c): no\n"
"              descriptors, lookup or alignment; a yardstick, not a rival;\n"
"              indexed_ns adds a descriptor and the extent index per run\n"
"  X2 segments W1's stream through a candidate design (bench/refseg.c):\n"
"              extents in one B+ tree that is also the index, free space\n"
"              as the gaps; places as the engine does (same_steps: steps\n"
"              checked against the engine, untimed); aligned_ns: W3's\n"
"              rings through it; aging_*: W4 through it; same_mixed:\n"
"              ranges, top-down and claims checked against the engine\n"
"\n"
"Definitions:\n"
"  operation         one potad_alloc or potad_free call (a churn step is 2)\n"
"  ns_per_op         measured phase only (CLOCK_MONOTONIC), median of runs;\n"
"                    ns_min/ns_max give the spread; ops_per_s = 1e9/ns_per_op\n"
"  sizes             xorshift64* seeded 42: 70%% 4K-64K, 25%% 64K-4M,\n"
"                    5%% 4M-256M, uniform in log2, rounded up to 4K; victims\n"
"                    from a second xorshift64* seeded 43; granule 4K\n"
"  meta_peak         max stats.meta_bytes, sampled every 4096 operations\n"
"                    and at the end of the measured phase (bytes)\n"
"  bytes_per_extent  stats.extent_bytes / stats.extents, end of measured\n"
"                    phase; live = stats.extents; util = used / size there\n"
"  enospc            W4: allocations refused during the churn; each one\n"
"                    frees a random extent and retries the same size\n"
"  util              W4: after the churn, which keeps at most 90%% used\n"
"  frag              W4: potad_space_frag score after the churn, 0..1\n"
"  largest_free      W4: largest free run after the churn (bytes)\n"
"  util_256m         W4: used / size after allocating 256 MiB extents\n"
"                    until the first -ENOSPC\n"
"  total_ms          R1: the whole rebuild (space, poison, placements),\n"
"                    last run\n"
"  first_alloc_ms    R1: the first allocation after it, which rebuilds\n"
"                    the free-slot list (untimed otherwise), last run\n"
"  next_ns           L1: ns per extent listed with potad_extent_next\n"
"                    instead, last run\n"
"\n"
"Options:\n"
"  --runs N    runs per workload, each on a fresh space (default 5)\n"
"  --quick     divide step counts by 10, for a smoke run\n"
"  --only W    run one workload (W1..W4, R1, L1, I1, X1, X2 or its name)\n"
"  --json      one JSON object per line instead of key=value pairs\n"
"  --help      show this text\n"
"\n"
"Each workload's space is checked with potad_space_check after its last\n"
"run; an unexpected engine error stops the program with exit status 1.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "runs", required_argument, NULL, 'r' },
		{ "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *only = NULL;
	int runs = 5, quick = 0, c, found = 0;
	size_t i;
	char *end;
	long v;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'r':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 1 ||
			    v > MAX_RUNS) {
				fprintf(stderr, "potad-bench-engine: --runs "
						"wants 1..%d, not '%s'\n",
					MAX_RUNS, optarg);
				return 2;
			}
			runs = (int)v;
			break;
		case 'q':
			quick = 1;
			break;
		case 'o':
			only = optarg;
			break;
		case 'j':
			opt_json = 1;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"potad-bench-engine: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}

	for (i = 0; i < NWORKLOADS; i++) {
		const struct workload *w = &workloads[i];

		if (only && strcasecmp(only, w->id) &&
		    strcasecmp(only, w->name))
			continue;
		found = 1;
		run_workload(w, runs, quick);
	}
	if (!found) {
		fprintf(stderr, "potad-bench-engine: no workload '%s' "
				"(W1, W2, W3, W4, R1, L1, I1, X1 or X2)\n",
			only);
		return 2;
	}
	return EXIT_SUCCESS;
}
