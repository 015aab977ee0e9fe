/* SPDX-License-Identifier: MIT */
/*
 * check_random: a randomized differential test of the engine against the
 * deliberately simple reference model in refmodel.c.
 *
 * Each test case drives one shape of space through a long random sequence
 * of allocations (random sizes, alignments, ranges and flags), frees,
 * claims, poison, lookups, iterations and deliberately bad calls.  Every
 * call goes to the engine, and its outcome is predicted from the model.
 *
 * The model cannot say where an allocation lands, but it can say whether
 * it must succeed: the engine assembles an extent from adjacent free
 * blocks when no single block fits, so -ENOSPC is right if and only if no
 * run of free, unpoisoned units of the right length starts on the
 * alignment inside the range.  Where an allocation lands is checked
 * instead: aligned, inside the range, over free and unpoisoned units only.
 * The model also knows which free units are dirty (freed with
 * POTAD_FREE_DIRTY or marked with potad_set_clean()), so the same holds of
 * POTAD_ALLOC_CLEAN requests over clean units, and it predicts the runs
 * potad_dirty_next() lists and how many free and dirty blocks there are.
 * The counters are compared with the model after every step and
 * potad_space_check() runs every few steps, so a failed call that changed
 * something is caught where it happened.
 *
 * The replay case also snapshots each space as the daemon's journal does,
 * restores it into a fresh one with potad_place() and replays the calls
 * logged after the snapshot; see "Journal replay" below.
 *
 * Environment:
 *   POTAD_SEED=N        the seed (default DEFAULT_SEED); each case mixes in
 *                       its own name, so a case replays on its own
 *   POTAD_RANDOM_OPS=X  scales every case's number of steps (default 1:
 *                       about 3.4 million steps, a minute on one core)
 *   POTAD_TRACE=N       print every engine call from step N on
 *   CK_RUN_CASE=name    Check's own: run one case
 * A failure prints the seed, the case, the step, the last calls and the
 * command that replays it.  The calls do not depend on POTAD_RANDOM_OPS,
 * which only says when to stop.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <potad/engine.h>

#include "refmodel.h"

#define DEFAULT_SEED 0x9e3779b97f4a7c15ull
#define TRACE_RING 16
#define DEAD_RING 64

static uint64_t seed_base = DEFAULT_SEED;
static double ops_scale = 1.0;		 /* POTAD_RANDOM_OPS */
static uint64_t trace_from = UINT64_MAX; /* POTAD_TRACE */

/* One engine call, kept so a failure can show what led to it. */
struct op_rec {
	uint64_t step;
	const char *space;
	const char *fmt; /* the call and its arguments, in printf form */
	uint64_t arg[5];
	int rc;
};

/* What the poison callback and potad_extent_foreach() reported. */
struct report {
	struct potad_space *s;
	struct potad_extent e;
};

struct reports {
	struct report *v;
	size_t n, cap;
	size_t stop_after; /* foreach: stop after this many (0: never) */
};

/* One space under test and its model. */
struct rig {
	const char *name; /* "space", "parent" or "child", for messages */
	struct potad_space *s;
	struct ref_model m;
	uint64_t base, end; /* usable bytes [base, end) */
	uint64_t gran;
	uint64_t units;
	unsigned shift;
	unsigned check_every;
	uint64_t poison_budget;	  /* units poison may take before it stops */
	uint64_t dead[DEAD_RING]; /* handles freed lately */
	unsigned n_dead;
	struct rig *child; /* the child space hosted here, if any */
	uint64_t host;	   /* the extent hosting it */
	int cache;	   /* the reuse cache may be on */
};

/* One test case's state. */
struct run {
	const char *tcase;
	uint64_t rng;
	uint64_t step;
	uint64_t steps;	     /* how many this case makes */
	int filling;	     /* allocations outweigh frees */
	uint64_t phase_left; /* steps until filling flips */
	struct op_rec ring[TRACE_RING];
	unsigned ring_pos;
	struct reports rep;
};

static struct run *crashing_run; /* for the signal handler */

/*
 * Random numbers.
 */

/* xorshift64* (Vigna, 2014): tiny, fast and good enough to pick inputs. */
static uint64_t rnd(struct run *r)
{
	uint64_t x = r->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n) for n > 0, by multiply-shift (no modulo bias to
 * speak of, no division). */
static uint64_t below(struct run *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static uint64_t between(struct run *r, uint64_t lo, uint64_t hi)
{
	if (hi - lo == UINT64_MAX)
		return rnd(r);
	return lo + below(r, hi - lo + 1);
}

/* True with probability pm per mille. */
static int chance(struct run *r, unsigned pm)
{
	return below(r, 1000) < pm;
}

static unsigned bit_length(uint64_t n)
{
	return n ? 64 - (unsigned)__builtin_clzll(n) : 0;
}

/* In [1, n], every bit length equally likely, so small and huge values
 * both come up in a space of 2^63 units. */
static uint64_t log_uniform(struct run *r, uint64_t n)
{
	unsigned k = (unsigned)below(r, bit_length(n));
	uint64_t lo = 1ull << k, hi = lo - 1 + lo;

	return between(r, lo, hi < n ? hi : n);
}

/* splitmix64's finaliser, to turn the seed and a case name into a
 * well-mixed, non-zero xorshift state. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x ? x : 1;
}

static uint64_t case_seed(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return mix64(seed_base ^ h);
}

static uint64_t pow2_ceil(uint64_t n)
{
	return n <= 1 ? 1 : 1ull << bit_length(n - 1);
}

/*
 * Outcomes and failures.
 */

/* What the engine may return, as a set. */
enum {
	R_OK = 1u << 0,
	R_EINVAL = 1u << 1,
	R_E2BIG = 1u << 2,
	R_ERANGE = 1u << 3,
	R_EBUSY = 1u << 4,
	R_ENOSPC = 1u << 5,
	R_ESTALE = 1u << 6,
	R_ENOENT = 1u << 7,
	R_OTHER = 1u << 8,
};

static const struct {
	int err;
	unsigned bit;
	const char *name;
} codes[] = {
    {0, R_OK, "0"},
    {EINVAL, R_EINVAL, "EINVAL"},
    {E2BIG, R_E2BIG, "E2BIG"},
    {ERANGE, R_ERANGE, "ERANGE"},
    {EBUSY, R_EBUSY, "EBUSY"},
    {ENOSPC, R_ENOSPC, "ENOSPC"},
    {ESTALE, R_ESTALE, "ESTALE"},
    {ENOENT, R_ENOENT, "ENOENT"},
};

#define N_CODES (sizeof(codes) / sizeof(codes[0]))

static unsigned outcome(int rc)
{
	for (size_t i = 0; i < N_CODES; i++)
		if (-rc == codes[i].err)
			return codes[i].bit;
	return R_OTHER;
}

static const char *rc_name(int rc)
{
	for (size_t i = 0; i < N_CODES; i++)
		if (-rc == codes[i].err)
			return codes[i].name;
	if (rc > 0)
		return "ok";
	return rc == -ENOMEM ? "ENOMEM" : rc == -EUCLEAN ? "EUCLEAN" : "?";
}

static const char *want_names(unsigned want)
{
	static char buf[128];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_CODES; i++)
		if (want & codes[i].bit)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"%s%s", len ? " or " : "",
						codes[i].name);
	return buf;
}

static void print_rec(FILE *f, const struct op_rec *o, int with_rc)
{
	fprintf(f, "  step %" PRIu64 " %s: ", o->step, o->space);
	fprintf(f, o->fmt, o->arg[0], o->arg[1], o->arg[2], o->arg[3],
		o->arg[4]);
	if (with_rc)
		fprintf(f, " = %d (%s)", o->rc, rc_name(o->rc));
	fputc('\n', f);
}

static void dump_ring(const struct run *r)
{
	fprintf(stderr, "last calls, oldest first:\n");
	for (unsigned i = 0; i < TRACE_RING; i++) {
		const struct op_rec *o =
		    &r->ring[(r->ring_pos + i) % TRACE_RING];

		if (o->fmt != NULL)
			print_rec(stderr, o, 1);
	}
}

static void print_replay(const struct run *r)
{
	fprintf(
	    stderr,
	    "replay: CK_RUN_CASE=%s POTAD_SEED=%#" PRIx64
	    " POTAD_RANDOM_OPS=%g POTAD_TRACE=%" PRIu64 " tests/check_random\n",
	    r->tcase, seed_base, ops_scale, r->step > 20 ? r->step - 20 : 0);
}

static void mismatch(struct run *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print everything needed to replay the failure, then fail the test. */
static void mismatch(struct run *r, int line, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr,
		"check_random: case %s, seed %#" PRIx64 ", step %" PRIu64
		" (check_random.c:%d): %s\n",
		r->tcase, seed_base, r->step, line, what);
	dump_ring(r);
	print_replay(r);
	crashing_run = NULL;
	ck_abort_msg("case %s seed %#" PRIx64 " step %" PRIu64 ": %s", r->tcase,
		     seed_base, r->step, what);
}

#define EXPECT(r, cond, ...)                                                   \
	do {                                                                   \
		if (!(cond))                                                   \
			mismatch((r), __LINE__, __VA_ARGS__);                  \
	} while (0)

/* The call's result must be one of the outcomes in want. */
#define EXPECT_RC(r, rc, want, what)                                           \
	EXPECT(r, outcome(rc) & (want), "%s returned %d (%s), expected %s",    \
	       (what), (rc), rc_name(rc), want_names(want))

/* A crash inside the engine should still say how to replay it. */
static void on_crash(int sig)
{
	if (crashing_run != NULL) {
		fprintf(stderr,
			"check_random: case %s, seed %#" PRIx64
			", step %" PRIu64 ": signal %d\n",
			crashing_run->tcase, seed_base, crashing_run->step,
			sig);
		dump_ring(crashing_run);
		print_replay(crashing_run);
	}
	raise(sig);
}

static void run_init(struct run *r, const char *tcase, uint64_t steps)
{
	struct sigaction sa;
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL};

	memset(r, 0, sizeof(*r));
	r->tcase = tcase;
	r->rng = case_seed(tcase);
	r->steps = (uint64_t)((double)steps * ops_scale);
	if (r->steps == 0)
		r->steps = 1;
	r->filling = 1;
	r->phase_left = 2000;
	crashing_run = r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sa.sa_flags = (int)SA_RESETHAND;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void run_fini(struct run *r)
{
	free(r->rep.v);
	crashing_run = NULL;
}

/* Record a call before it is made; the result comes with done(). */
static void note(struct run *r, const char *space, const char *fmt, uint64_t a0,
		 uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	struct op_rec *o = &r->ring[r->ring_pos];

	o->step = r->step;
	o->space = space;
	o->fmt = fmt;
	o->arg[0] = a0;
	o->arg[1] = a1;
	o->arg[2] = a2;
	o->arg[3] = a3;
	o->arg[4] = a4;
	o->rc = 0;
	if (r->step >= trace_from) {
		print_rec(stderr, o, 0);
		fflush(stderr);
	}
}

static int done(struct run *r, int rc)
{
	r->ring[r->ring_pos].rc = rc;
	r->ring_pos = (r->ring_pos + 1) % TRACE_RING;
	if (r->step >= trace_from)
		fprintf(stderr, "    = %d (%s)\n", rc, rc_name(rc));
	return rc;
}

static void fmt_desc(char *buf, size_t len, const struct potad_extent *e)
{
	snprintf(buf, len,
		 "{offset %#" PRIx64 " length %#" PRIx64 " handle %#" PRIx64
		 " owner %u tag %#x type %u flags %#x}",
		 e->offset, e->length, e->handle, e->owner, e->tag, e->type,
		 e->flags);
}

/* The descriptor must equal the model's, flags compared under mask. */
static void expect_desc(struct run *r, int line, const char *what,
			const struct potad_extent *got,
			const struct potad_extent *want, unsigned mask)
{
	char g[160], w[160];

	if (got->offset == want->offset && got->length == want->length &&
	    got->handle == want->handle && got->owner == want->owner &&
	    got->tag == want->tag && got->type == want->type &&
	    (got->flags & mask) == (want->flags & mask))
		return;
	fmt_desc(g, sizeof(g), got);
	fmt_desc(w, sizeof(w), want);
	mismatch(r, line, "%s: engine says %s, model says %s", what, g, w);
}

#define EXPECT_DESC(r, got, want, mask, what)                                  \
	expect_desc((r), __LINE__, (what), (got), (want), (mask))

/*
 * Whole-space checks, run after every step.
 */

static void check_stats(struct run *r, const struct rig *g)
{
	struct potad_stats st;
	struct ref_stats rs;
	uint64_t blocks = 0, units = 0;
	int top = -1;

	potad_space_stats(g->s, &st);
	ref_stats(&g->m, &rs);
	EXPECT(r,
	       st.base == g->base && st.size == g->end - g->base &&
		   st.granule == g->gran && st.units == rs.units,
	       "%s stats: base %#" PRIx64 " size %#" PRIx64 " granule %#" PRIx64
	       " units %" PRIu64 ", expected %#" PRIx64 " %#" PRIx64
	       " %#" PRIx64 " %" PRIu64,
	       g->name, st.base, st.size, st.granule, st.units, g->base,
	       g->end - g->base, g->gran, rs.units);
	EXPECT(
	    r,
	    st.free_units == rs.free_units && st.used_units == rs.used_units &&
		st.poison_units == rs.poison_units && st.extents == rs.extents,
	    "%s stats: free %" PRIu64 " used %" PRIu64 " poison %" PRIu64
	    " extents %" PRIu64 ", model says %" PRIu64 " %" PRIu64 " %" PRIu64
	    " %" PRIu64,
	    g->name, st.free_units, st.used_units, st.poison_units, st.extents,
	    rs.free_units, rs.used_units, rs.poison_units, rs.extents);
	for (int k = 0; k < POTAD_ORDERS; k++) {
		blocks += st.free_per_order[k];
		units += st.free_per_order[k] << k;
		if (st.free_per_order[k])
			top = k;
	}
	EXPECT(r,
	       blocks == st.free_blocks &&
		   units + st.cached_units == st.free_units,
	       "%s stats: free_per_order adds up to %" PRIu64
	       " blocks and %" PRIu64 " units, but free_blocks is %" PRIu64
	       " and free_units %" PRIu64,
	       g->name, blocks, units, st.free_blocks, st.free_units);
	EXPECT(r, st.largest_free_block == (top < 0 ? 0 : g->gran << top),
	       "%s stats: largest_free_block %#" PRIx64
	       " but the highest order with a free block is %d",
	       g->name, st.largest_free_block, top);
	EXPECT(r, st.children == (g->child != NULL),
	       "%s stats: children %u, expected %d", g->name, st.children,
	       g->child != NULL);
	EXPECT(r, st.dirty_units == rs.dirty_units,
	       "%s stats: dirty_units %" PRIu64 ", model says %" PRIu64,
	       g->name, st.dirty_units, rs.dirty_units);
}

/* The fragmentation walk, and the number of free and dirty blocks: free
 * units all clean or all dirty are cut into their maximal aligned blocks,
 * so the model knows how many there are, a check of the merging rules from
 * the outside. */
static void check_frag(struct run *r, const struct rig *g)
{
	uint64_t run_bytes = 0, want, fb, db, run;
	struct potad_stats st;
	double score = -1;

	/* Cached extents stay out of the free lists until drained. */
	if (g->cache) {
		note(r, g->name, "space_drain", 0, 0, 0, 0, 0);
		EXPECT_RC(r, done(r, potad_space_drain(g->s)), R_OK,
			  "space_drain");
	}
	potad_space_stats(g->s, &st);
	EXPECT(r, st.cached_extents == 0 && st.cached_units == 0,
	       "%s stats: %" PRIu64 " cached extents (%" PRIu64
	       " units) after a drain",
	       g->name, st.cached_extents, st.cached_units);
	ref_blocks(&g->m, &fb, &db, &run);
	EXPECT(r, st.free_blocks == fb && st.dirty_blocks == db,
	       "%s stats: %" PRIu64 " free blocks, %" PRIu64
	       " dirty; the model says %" PRIu64 " and %" PRIu64,
	       g->name, st.free_blocks, st.dirty_blocks, fb, db);
	potad_space_frag(g->s, &run_bytes, &score);
	want = run << g->shift;
	EXPECT(r, run_bytes == want,
	       "%s: potad_space_frag says the largest free run is %#" PRIx64
	       " bytes, the model %#" PRIx64,
	       g->name, run_bytes, want);
	EXPECT(r, score >= 0.0 && score <= 1.0,
	       "%s: fragmentation score %g is outside [0, 1]", g->name, score);
}

static void check_space(struct run *r, const struct rig *g)
{
	char msg[512] = "";
	int rc = potad_space_check(g->s, msg, sizeof(msg));

	EXPECT(r, rc == 0, "%s: potad_space_check returned %d: %s", g->name, rc,
	       msg);
}

/* The checks after each step, for a space and the child it hosts. */
static void verify(struct run *r, const struct rig *g, int full)
{
	for (; g != NULL; g = g->child) {
		check_stats(r, g);
		if (full || r->step % g->check_every == 0) {
			check_frag(r, g);
			check_space(r, g);
		}
	}
}

/*
 * Operations.  Each predicts the outcome from the model, makes the call,
 * compares and brings the model up to date.
 */

static int is_dead(const struct rig *g, uint64_t h)
{
	unsigned n = g->n_dead < DEAD_RING ? g->n_dead : DEAD_RING;

	for (unsigned i = 0; i < n; i++)
		if (g->dead[i] == h)
			return 1;
	return 0;
}

/* Check a new extent against what was asked and against the model, then
 * record it.  [lo, hi) is the acceptable range in units. */
static void accept_extent(struct run *r, struct rig *g,
			  const struct potad_extent *e, uint64_t lo,
			  uint64_t hi, uint64_t len, uint64_t align_units,
			  uint32_t owner, uint32_t tag)
{
	struct ref_extent x;
	uint64_t p = e->offset >> g->shift;
	long i;

	EXPECT(r, (e->offset & (g->gran - 1)) == 0,
	       "%s: extent at %#" PRIx64 " is not on the granule", g->name,
	       e->offset);
	EXPECT(r, e->length == len << g->shift,
	       "%s: extent length %#" PRIx64 ", expected %#" PRIx64, g->name,
	       e->length, len << g->shift);
	EXPECT(r, p >= lo && p <= hi - len,
	       "%s: extent [%#" PRIx64 ", +%#" PRIx64
	       ") lies outside the range, units [%#" PRIx64 ", %#" PRIx64 ")",
	       g->name, e->offset, e->length, lo, hi);
	EXPECT(r, (p & (align_units - 1)) == 0,
	       "%s: extent at %#" PRIx64 " (unit %#" PRIx64
	       ") is not aligned to %#" PRIx64 " units",
	       g->name, e->offset, p, align_units);
	i = ref_find_unit(&g->m, p);
	if (i < 0) {
		size_t j = ref_first_ending_after(&g->m, p);

		if (j < g->m.n_ext && g->m.ext[j].start < p + len)
			i = (long)j;
	}
	EXPECT(
	    r, i < 0,
	    "%s: extent [%#" PRIx64 ", +%#" PRIx64
	    ") overlaps the live extent at %#" PRIx64 " (handle %#" PRIx64 ")",
	    g->name, e->offset, e->length, i < 0 ? 0 : g->m.ext[i].desc.offset,
	    i < 0 ? 0 : g->m.ext[i].desc.handle);
	EXPECT(r, !ref_any_poisoned(&g->m, p, p + len),
	       "%s: extent [%#" PRIx64 ", +%#" PRIx64 ") holds poisoned units",
	       g->name, e->offset, e->length);
	EXPECT(r, ref_find_handle(&g->m, e->handle) < 0,
	       "%s: handle %#" PRIx64 " is already live", g->name, e->handle);
	EXPECT(r, !is_dead(g, e->handle),
	       "%s: handle %#" PRIx64 " was freed and is issued again", g->name,
	       e->handle);
	EXPECT(r,
	       e->owner == owner && e->tag == tag &&
		   e->type == POTAD_TYPE_EXTENT &&
		   POTAD_HANDLE_TYPE(e->handle) == POTAD_TYPE_EXTENT &&
		   e->flags == 0,
	       "%s: new extent has owner %u tag %#x type %u handle %#" PRIx64
	       " flags %#x; asked for owner %u tag %#x",
	       g->name, e->owner, e->tag, e->type, e->handle, e->flags, owner,
	       tag);
	x.start = p;
	x.end = p + len;
	x.desc = *e;
	ref_insert(&g->m, &x);
}

/* An allocation without POTAD_ALLOC_FIXED.  ragged: min or max is not on
 * the granule, where rounding the range lets a few outcomes be right. */
static int do_alloc(struct run *r, struct rig *g,
		    const struct potad_alloc_req *q, int ragged,
		    struct potad_extent *out)
{
	const struct ref_model *m = &g->m;
	int whole = (q->flags & POTAD_ALLOC_WHOLE) != 0;
	int clean = (q->flags & POTAD_ALLOC_CLEAN) != 0;
	uint64_t units, len, au, minb, maxb, lo, hi, at = 0;
	unsigned want;
	int rc;

	units = (q->size >> g->shift) + ((q->size & (g->gran - 1)) != 0);
	len = units;
	if (whole)
		len = units > (1ull << 63) ? 0 : pow2_ceil(units);
	au = q->align > g->gran ? q->align >> g->shift : 1;
	if (whole && len > au)
		au = len;
	minb = q->min ? q->min : g->base;
	maxb = q->max ? q->max : g->end;
	lo = (minb >> g->shift) + ((minb & (g->gran - 1)) != 0);
	hi = maxb >> g->shift;
	if (lo < m->first)
		lo = m->first;
	if (hi > m->last)
		hi = m->last;

	/* When a request is wrong in more than one way, any of the errors
	 * that apply is right. */
	want = 0;
	if (len == 0 || len > m->last - m->first)
		want |= R_E2BIG;
	if (minb > maxb)
		want |= R_EINVAL;
	else if (lo >= hi)
		want |= ragged ? R_EINVAL | R_E2BIG | R_ENOSPC : R_EINVAL;
	else if (len > hi - lo)
		want |= ragged ? R_E2BIG | R_ENOSPC : R_E2BIG;
	if (want == 0)
		want = (clean ? ref_fit_clean(m, lo, hi, len, au, &at)
			      : ref_fit(m, lo, hi, len, au, &at))
			   ? R_OK
			   : R_ENOSPC;

	note(r, g->name,
	     "alloc size %#" PRIx64 " align %#" PRIx64 " min %#" PRIx64
	     " max %#" PRIx64 " flags %#" PRIx64,
	     q->size, q->align, q->min, q->max, q->flags);
	rc = done(r, potad_alloc(g->s, q, out));
	if (rc != 0 && want == R_OK)
		mismatch(r, __LINE__,
			 "%s: alloc returned %d (%s), but %" PRIu64
			 " %sunits at %" PRIu64 "-unit alignment fit in units "
			 "[%#" PRIx64 ", %#" PRIx64 "): the model finds room "
			 "at unit %#" PRIx64,
			 g->name, rc, rc_name(rc), len, clean ? "clean " : "",
			 au, lo, hi, at);
	EXPECT(r, outcome(rc) & want,
	       "%s: alloc returned %d (%s), expected %s: %" PRIu64
	       " units at %" PRIu64 "-unit alignment in units [%#" PRIx64
	       ", %#" PRIx64 ")",
	       g->name, rc, rc_name(rc), want_names(want), len, au, lo, hi);
	if (rc != 0)
		return rc;
	EXPECT(r,
	       !clean || !ref_any_dirty(m, out->offset >> g->shift,
					(out->offset >> g->shift) + len),
	       "%s: clean alloc returned [%#" PRIx64 ", +%#" PRIx64
	       ") over dirty units",
	       g->name, out->offset, out->length);
	accept_extent(r, g, out, lo, hi, len, au, q->owner, q->tag);
	EXPECT(r, out->offset >= minb && out->length <= maxb - out->offset,
	       "%s: extent [%#" PRIx64 ", +%#" PRIx64
	       ") is outside [min, max) = [%#" PRIx64 ", %#" PRIx64 ")",
	       g->name, out->offset, out->length, minb, maxb);
	EXPECT(r, q->align <= 1 || (out->offset & (q->align - 1)) == 0,
	       "%s: extent at %#" PRIx64 " is not aligned to %#" PRIx64,
	       g->name, out->offset, q->align);
	return 0;
}

/* A claim of exactly [at, at + size) in units, through potad_claim() or
 * potad_alloc() with POTAD_ALLOC_FIXED, and POTAD_ALLOC_CLEAN if clean. */
static int do_fixed(struct run *r, struct rig *g, uint64_t at, uint64_t size,
		    int via_claim, int clean, struct potad_extent *out)
{
	const struct ref_model *m = &g->m;
	uint64_t len = (size >> g->shift) + ((size & (g->gran - 1)) != 0);
	uint32_t owner = (uint32_t)below(r, 4), tag = (uint32_t)rnd(r);
	unsigned want;
	int rc;

	if (len > m->last - m->first)
		want = R_E2BIG | R_ERANGE;
	else if (at < m->first || at >= m->last)
		want = R_ERANGE;
	else if (len > m->last - at)
		want = R_ERANGE | R_E2BIG | R_EBUSY;
	else if (ref_any_held(m, at, at + len) ||
		 ref_any_poisoned(m, at, at + len) ||
		 (clean && ref_any_dirty(m, at, at + len)))
		want = R_EBUSY;
	else
		want = R_OK;

	if (via_claim) {
		note(r, g->name, "claim offset %#" PRIx64 " length %#" PRIx64,
		     at << g->shift, size, 0, 0, 0);
		rc = done(r, potad_claim(g->s, at << g->shift, size, owner, tag,
					 out));
	} else {
		struct potad_alloc_req q = {0};

		q.size = size;
		q.at = at << g->shift;
		q.owner = owner;
		q.tag = tag;
		q.flags = POTAD_ALLOC_FIXED | (clean ? POTAD_ALLOC_CLEAN : 0);
		note(r, g->name,
		     "alloc FIXED at %#" PRIx64 " size %#" PRIx64
		     " flags %#" PRIx64,
		     q.at, size, q.flags, 0, 0);
		rc = done(r, potad_alloc(g->s, &q, out));
	}
	EXPECT(r, outcome(rc) & want,
	       "%s: claim of units [%#" PRIx64 ", +%#" PRIx64
	       ") returned %d (%s), expected %s",
	       g->name, at, len, rc, rc_name(rc), want_names(want));
	if (rc != 0)
		return rc;
	EXPECT(r, out->offset == at << g->shift,
	       "%s: claim at %#" PRIx64 " returned an extent at %#" PRIx64,
	       g->name, at << g->shift, out->offset);
	accept_extent(r, g, out, at, at + len, len, 1, owner, tag);
	return 0;
}

static void remember_dead(struct rig *g, uint64_t h)
{
	g->dead[g->n_dead % DEAD_RING] = h;
	g->n_dead++;
}

/* Free the model's extent i, which must succeed unless it hosts a
 * child space: through potad_free(), or potad_free_ex() clean or dirty.
 * Returns the flags it used. */
static unsigned do_free(struct run *r, struct rig *g, size_t i)
{
	struct potad_extent want = g->m.ext[i].desc, e;
	int use_out = chance(r, 900), rc;
	unsigned flags = chance(r, 300) ? POTAD_FREE_DIRTY : 0;

	if (flags || chance(r, 500)) {
		note(r, g->name, "free_ex handle %#" PRIx64 " flags %#" PRIx64,
		     want.handle, flags, 0, 0, 0);
		rc = done(r, potad_free_ex(g->s, want.handle, flags,
					   use_out ? &e : NULL));
	} else {
		note(r, g->name, "free handle %#" PRIx64, want.handle, 0, 0, 0,
		     0);
		rc =
		    done(r, potad_free(g->s, want.handle, use_out ? &e : NULL));
	}
	if (g->child != NULL && want.handle == g->host) {
		EXPECT_RC(r, rc, R_EBUSY, "free of the extent hosting a child");
		return flags;
	}
	EXPECT_RC(r, rc, R_OK, "free of a live handle");
	if (use_out)
		EXPECT_DESC(r, &e, &want, ~0u, "freed descriptor");
	ref_remove(&g->m, i, flags & POTAD_FREE_DIRTY);
	remember_dead(g, want.handle);

	note(r, g->name, "get handle %#" PRIx64, want.handle, 0, 0, 0, 0);
	rc = done(r, potad_get(g->s, want.handle, &e));
	EXPECT_RC(r, rc, R_ESTALE, "get of a freed handle");
	return flags;
}

/* Shrink the model's extent i to a random shorter length through
 * potad_shrink(), clean or dirty: refused for an extent of one unit (no
 * shorter length) and for the host of a child space.  0 and the flags
 * and bytes kept, or -1 when it was refused. */
static int do_shrink(struct run *r, struct rig *g, size_t i, unsigned *flags,
		     uint64_t *keep)
{
	struct ref_extent x = g->m.ext[i];
	uint64_t units = x.end - x.start, k;
	struct potad_extent e;
	unsigned fl = chance(r, 300) ? POTAD_FREE_DIRTY : 0;
	int rc;

	k = units < 2 ? units : 1 + below(r, units - 1);
	note(r, g->name,
	     "shrink handle %#" PRIx64 " length %#" PRIx64 " flags %#" PRIx64,
	     x.desc.handle, k << g->shift, fl, 0, 0);
	rc = done(r, potad_shrink(g->s, x.desc.handle, k << g->shift, fl, &e));
	if (k == units) {
		EXPECT_RC(r, rc, R_EINVAL, "shrink to the same length");
		return -1;
	}
	if (g->child != NULL && x.desc.handle == g->host) {
		EXPECT_RC(r, rc, R_EBUSY, "shrink of the extent hosting a child");
		return -1;
	}
	EXPECT_RC(r, rc, R_OK, "shrink of a live extent");
	ref_shrink(&g->m, i, x.start + k, fl & POTAD_FREE_DIRTY);
	EXPECT_DESC(r, &e, &g->m.ext[i].desc, ~0u, "shrunk descriptor");
	*flags = fl;
	*keep = k << g->shift;
	return 0;
}

static void push_report(struct reports *rep, struct potad_space *s,
			const struct potad_extent *e)
{
	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? 2 * rep->cap : 64;
		struct report *v = realloc(rep->v, cap * sizeof(*v));

		ck_assert_msg(v != NULL, "out of memory");
		rep->v = v;
		rep->cap = cap;
	}
	rep->v[rep->n].s = s;
	rep->v[rep->n].e = *e;
	rep->n++;
}

static void on_poison(struct potad_space *s, const struct potad_extent *e,
		      void *arg)
{
	push_report(arg, s, e);
}

static int on_extent(const struct potad_extent *e, void *arg)
{
	struct reports *rep = arg;

	push_report(rep, NULL, e);
	return rep->stop_after && rep->n == rep->stop_after ? 42 : 0;
}

/* Whether the model's extent k of g hosts g's child space. */
static int is_host(const struct rig *g, size_t k)
{
	return g->child != NULL && g->m.ext[k].desc.handle == g->host;
}

/* Poison units [start, start + len) of g, passing bytes as the length,
 * and check the extents reported here and in the child space it reaches.
 * The contract leaves open whether the extent hosting a child is reported
 * along with the child's own extents, so either is accepted. */
static void do_poison(struct run *r, struct rig *g, uint64_t start,
		      uint64_t len, uint64_t bytes)
{
	struct ref_model *m = &g->m;
	struct rig *c = g->child;
	uint64_t cs = 0, ce = 0;
	size_t k0, k, k_end, kc0 = 0, kc = 0, kc_end = 0;
	int rc;

	k0 = ref_first_ending_after(m, start);
	for (k_end = k0; k_end < m->n_ext && m->ext[k_end].start < start + len;
	     k_end++)
		;
	if (c != NULL) {
		/* A child unit is 2^d parent units, and poison in any of
		 * them poisons it whole. */
		unsigned d = c->shift - g->shift;

		cs = start >> d;
		ce = ((start + len - 1) >> d) + 1;
		if (cs < c->m.first)
			cs = c->m.first;
		if (ce > c->m.last)
			ce = c->m.last;
		if (cs < ce) {
			kc0 = ref_first_ending_after(&c->m, cs);
			for (kc_end = kc0;
			     kc_end < c->m.n_ext && c->m.ext[kc_end].start < ce;
			     kc_end++)
				;
		}
	}

	r->rep.n = 0;
	r->rep.stop_after = 0;
	note(r, g->name, "poison offset %#" PRIx64 " length %#" PRIx64,
	     start << g->shift, bytes, 0, 0, 0);
	rc = done(r, potad_poison(g->s, start << g->shift, bytes, on_poison,
				  &r->rep));
	EXPECT(r, rc >= 0 && (size_t)rc == r->rep.n,
	       "%s: poison returned %d (%s) after %zu reports", g->name, rc,
	       rc_name(rc), r->rep.n);

	k = k0;
	kc = kc0;
	for (size_t j = 0; j < r->rep.n; j++) {
		const struct report *p = &r->rep.v[j];

		if (p->s == g->s) {
			if (k < k_end && is_host(g, k) &&
			    p->e.handle != g->host)
				k++;
			EXPECT(r, k < k_end,
			       "%s: poison of units [%#" PRIx64 ", +%#" PRIx64
			       ") reported the extent at %#" PRIx64
			       ", which the model does not expect",
			       g->name, start, len, p->e.offset);
			EXPECT_DESC(r, &p->e, &m->ext[k].desc,
				    ~POTAD_EXTENT_POISONED, "poison report");
			k++;
		} else if (c != NULL && p->s == c->s) {
			EXPECT(r, kc < kc_end,
			       "child: poison of parent units [%#" PRIx64
			       ", +%#" PRIx64
			       ") reported the extent at %#" PRIx64
			       ", which the model does not expect",
			       start, len, p->e.offset);
			EXPECT_DESC(r, &p->e, &c->m.ext[kc].desc,
				    ~POTAD_EXTENT_POISONED,
				    "poison report in the child");
			kc++;
		} else {
			mismatch(r, __LINE__,
				 "%s: poison reported an extent at %#" PRIx64
				 " in an unknown space %p",
				 g->name, p->e.offset, (void *)p->s);
		}
	}
	if (k < k_end && is_host(g, k))
		k++;
	EXPECT(r, k == k_end && kc == kc_end,
	       "%s: poison of units [%#" PRIx64 ", +%#" PRIx64
	       ") left out extents: %zu of %zu reported here, %zu of %zu in "
	       "the child",
	       g->name, start, len, k - k0, k_end - k0, kc - kc0, kc_end - kc0);

	ref_poison(m, start, start + len);
	if (c != NULL && cs < ce)
		ref_poison(&c->m, cs, ce);
}

/*
 * Random inputs.
 */

/* A length in units for a new extent: mostly small ones, which collide
 * and fragment, now and then one sized against the whole space. */
static uint64_t rand_units(struct run *r, const struct rig *g)
{
	uint64_t n = g->units;
	uint64_t pm = below(r, 1000);

	if (pm < 650)
		return log_uniform(r, n < 16 ? n : 16);
	if (pm < 900)
		return log_uniform(r, n < 256 ? n : 256);
	if (pm < 985)
		return log_uniform(r, n);
	return between(r, 1, n);
}

/* A size in bytes that rounds up to units; half the time not a multiple
 * of the granule. */
static uint64_t size_for(struct run *r, const struct rig *g, uint64_t units)
{
	uint64_t bytes = units << g->shift;

	if (g->gran > 1 && chance(r, 500))
		bytes -= below(r, g->gran);
	return bytes;
}

/* 0, or a power of two from below the granule to well above the size. */
static uint64_t rand_align(struct run *r, const struct rig *g, uint64_t units)
{
	unsigned top = g->shift + bit_length(units) + 3;

	if (chance(r, 450))
		return 0;
	if (top > 63 || chance(r, 50))
		top = 63;
	return 1ull << below(r, top + 1);
}

/* A random [min, max) for an allocation.  Returns 1 when min or max was
 * moved off the granule. */
static int rand_range(struct run *r, const struct rig *g,
		      struct potad_alloc_req *q)
{
	const struct ref_model *m = &g->m;
	uint64_t lo = between(r, m->first, m->last - 1);
	uint64_t hi = between(r, lo + 1, m->last);
	int ragged = 0;

	q->min = lo << g->shift;
	q->max = hi << g->shift;
	if (chance(r, 200))
		q->min = 0;
	else if (chance(r, 200))
		q->max = 0;
	if (g->gran > 1 && chance(r, 100)) {
		if (q->min)
			q->min += below(r, g->gran);
		if (q->max)
			q->max -= below(r, g->gran);
		ragged = 1;
	}
	/* A range reaching past the space is cut to it, not refused. */
	if (g->base > 0 && chance(r, 30))
		q->min = between(r, 1, g->base);
	if (g->end < UINT64_MAX && chance(r, 30))
		q->max = between(r, g->end, UINT64_MAX);
	return ragged;
}

/* A unit somewhere in a random poisoned range, or 0 when there is none. */
static int rand_poisoned_unit(struct run *r, const struct rig *g, uint64_t *u)
{
	const struct ref_range *pr;

	if (g->m.n_poison == 0)
		return 0;
	pr = &g->m.poison[below(r, g->m.n_poison)];
	*u = between(r, pr->start, pr->end - 1);
	return 1;
}

/*
 * The operations a step picks from.
 */

/* A random allocation request; returns 1 when min or max is ragged. */
static int rand_req(struct run *r, const struct rig *g,
		    struct potad_alloc_req *q)
{
	uint64_t units = rand_units(r, g);
	int ragged = 0;

	memset(q, 0, sizeof(*q));
	q->size = size_for(r, g, units);
	q->align = rand_align(r, g, units);
	q->owner = (uint32_t)below(r, 4);
	q->tag = (uint32_t)rnd(r);
	if (chance(r, 300))
		q->flags |= POTAD_ALLOC_TOPDOWN;
	if (chance(r, 150))
		q->flags |= POTAD_ALLOC_WHOLE;
	if (chance(r, 250))
		q->flags |= POTAD_ALLOC_CLEAN;
	if (chance(r, 200))
		ragged = rand_range(r, g, q);
	return ragged;
}

/* A random allocation, checked against the model; its result. */
static int rand_alloc(struct run *r, struct rig *g, struct potad_extent *e)
{
	struct potad_alloc_req q;
	int ragged = rand_req(r, g, &q);

	return do_alloc(r, g, &q, ragged, e);
}

static void op_alloc(struct run *r, struct rig *g)
{
	struct potad_extent e;

	rand_alloc(r, g, &e);
}

/* A random claim, checked against the model; its result. */
static int rand_claim(struct run *r, struct rig *g, struct potad_extent *e)
{
	const struct ref_model *m = &g->m;
	uint64_t len, at = 0, pick = below(r, 100);
	int via_claim;

	len = chance(r, 700) ? log_uniform(r, g->units < 16 ? g->units : 16)
			     : rand_units(r, g);
	if (pick < 45 &&
	    ref_fit(m, between(r, m->first, m->last - 1), m->last, 1, 1, &at)) {
		/* A free unit: the claim works if the run is long enough. */
	} else if (pick < 60 && m->n_ext > 0) {
		const struct ref_extent *x = &m->ext[below(r, m->n_ext)];

		/* Right after it, or ending right where it starts. */
		if (chance(r, 500))
			at = x->end;
		else
			at = x->start >= len ? x->start - len : 0;
	} else if (pick < 95) {
		at = between(r, m->first, m->last - 1);
	} else {
		switch (below(r, 3)) {
		case 0:
			at = m->first > 0 ? m->first - 1 : m->last;
			break;
		case 1:
			at = m->last;
			break;
		default:
			at = m->last - 1;
			len = between(r, 1, g->units);
			break;
		}
	}
	via_claim = chance(r, 500);
	return do_fixed(r, g, at, size_for(r, g, len), via_claim,
			!via_claim && chance(r, 300), e);
}

static void op_claim(struct run *r, struct rig *g)
{
	struct potad_extent e;

	rand_claim(r, g, &e);
}

static void op_free(struct run *r, struct rig *g)
{
	if (g->m.n_ext > 0)
		do_free(r, g, below(r, g->m.n_ext));
}

static void op_shrink(struct run *r, struct rig *g)
{
	unsigned flags;
	uint64_t keep;

	if (g->m.n_ext > 0)
		do_shrink(r, g, below(r, g->m.n_ext), &flags, &keep);
}

/* Handles that are not live or not well formed change nothing. */
static void op_bad_handle(struct run *r, struct rig *g)
{
	const struct ref_model *m = &g->m;
	uint64_t h, live = 0, gen;
	struct potad_extent e;
	unsigned want;
	int rc;

	if (m->n_ext > 0)
		live = m->ext[below(r, m->n_ext)].desc.handle;
	switch (below(r, 6)) {
	case 0: /* double free, or a slot since reused */
		if (g->n_dead == 0)
			return;
		h = g->dead[below(r, g->n_dead < DEAD_RING ? g->n_dead
							   : DEAD_RING)];
		want = R_ESTALE;
		break;
	case 1: /* a live slot under another generation */
		if (live == 0)
			return;
		gen =
		    (POTAD_HANDLE_GEN(live) + 1 + below(r, 1000)) & 0x0fffffffu;
		h = (live & ~(0x0fffffffull << 32)) | gen << 32;
		want = R_ESTALE;
		break;
	case 2: /* type 0 */
		h = live ? live & ~(0xfull << 60) : rnd(r) & ~(0xfull << 60);
		want = R_EINVAL;
		break;
	case 3: /* a type that does not exist */
		h = (live ? live : rnd(r)) & ~(0xfull << 60);
		h |= between(r, 3, 15) << 60;
		want = R_EINVAL;
		break;
	case 4: /* a slot never issued */
		h = (uint64_t)POTAD_TYPE_EXTENT << 60 |
		    (rnd(r) & 0x0fffffffull) << 32 |
		    (0xffffff00u | below(r, 256));
		want = R_EINVAL;
		break;
	default:
		h = 0;
		want = R_EINVAL;
		break;
	}
	note(r, g->name, "free handle %#" PRIx64, h, 0, 0, 0, 0);
	rc = done(r, potad_free(g->s, h, &e));
	EXPECT_RC(r, rc, want, "free of a bad handle");
	note(r, g->name, "get handle %#" PRIx64, h, 0, 0, 0, 0);
	rc = done(r, potad_get(g->s, h, &e));
	EXPECT_RC(r, rc, want, "get of a bad handle");
	EXPECT(r, potad_child_of(g->s, h) == NULL,
	       "%s: potad_child_of(%#" PRIx64 ") is not NULL", g->name, h);
}

static void op_get(struct run *r, struct rig *g)
{
	const struct ref_extent *x;
	struct potad_extent e;
	struct potad_space *want;
	uint64_t h;
	int rc;

	if (g->m.n_ext == 0)
		return;
	x = &g->m.ext[below(r, g->m.n_ext)];
	/* An extent's type changes under the handles callers hold when a
	 * child space is made over it, so the type bits only have to name a
	 * known type: with the other one they still name the extent. */
	h = x->desc.handle;
	if (chance(r, 200))
		h ^= 3ull << 60;
	note(r, g->name, "get handle %#" PRIx64, h, 0, 0, 0, 0);
	rc = done(r, potad_get(g->s, h, &e));
	EXPECT_RC(r, rc, R_OK, "get of a live handle");
	EXPECT_DESC(r, &e, &x->desc, ~0u, "get");
	want =
	    g->child != NULL && x->desc.handle == g->host ? g->child->s : NULL;
	EXPECT(r, potad_child_of(g->s, x->desc.handle) == want,
	       "%s: potad_child_of(%#" PRIx64 ") is not %p", g->name,
	       x->desc.handle, (void *)want);
}

static void op_lookup(struct run *r, struct rig *g)
{
	const struct ref_model *m = &g->m;
	uint64_t off, u, pick = below(r, 100);
	struct potad_extent e;
	long i;
	int rc;

	if (pick < 70) {
		off = between(r, g->base, g->end - 1);
	} else if (pick < 85 && m->n_ext > 0) {
		const struct ref_extent *x = &m->ext[below(r, m->n_ext)];

		off = chance(r, 500) ? x->desc.offset
				     : x->desc.offset + x->desc.length - 1;
	} else if (pick < 92 && rand_poisoned_unit(r, g, &u)) {
		off = (u << g->shift) + below(r, g->gran);
	} else if (g->base > 0 && chance(r, 500)) {
		off = between(r, 0, g->base - 1);
	} else if (g->end < UINT64_MAX) {
		off = between(r, g->end, UINT64_MAX);
	} else {
		off = between(r, g->base, g->end - 1);
	}

	note(r, g->name, "lookup offset %#" PRIx64, off, 0, 0, 0, 0);
	rc = done(r, potad_lookup(g->s, off, &e));
	if (off < g->base || off >= g->end) {
		EXPECT_RC(r, rc, R_ERANGE, "lookup outside the space");
		return;
	}
	i = ref_find_unit(m, off >> g->shift);
	if (i < 0) {
		EXPECT_RC(r, rc, R_ENOENT, "lookup of a unit no extent holds");
		return;
	}
	EXPECT_RC(r, rc, R_OK, "lookup of a held unit");
	EXPECT_DESC(r, &e, &m->ext[i].desc, ~0u, "lookup");
}

static void op_next(struct run *r, struct rig *g)
{
	uint64_t off = between(r, g->base, g->end - 1);
	size_t i = ref_first_from_addr(&g->m, off);
	struct potad_extent e;
	int rc;

	note(r, g->name, "extent_next offset %#" PRIx64, off, 0, 0, 0, 0);
	rc = done(r, potad_extent_next(g->s, off, &e));
	if (i == g->m.n_ext) {
		EXPECT_RC(r, rc, R_ENOENT, "extent_next past the last extent");
		return;
	}
	EXPECT_RC(r, rc, R_OK, "extent_next");
	EXPECT_DESC(r, &e, &g->m.ext[i].desc, ~0u, "extent_next");
}

/* Random poison, checked against the model.  Returns 0 when it made no
 * call, else 1 with the unit and the byte length it passed. */
static int rand_poison(struct run *r, struct rig *g, uint64_t *at,
		       uint64_t *nbytes)
{
	const struct ref_model *m = &g->m;
	uint64_t start, len, bytes, pick = below(r, 100);

	len = chance(r, 950) ? between(r, 1, 4) : between(r, 1, 64);
	if (m->poison_units + len > g->poison_budget) {
		/* Over budget: poison what is poisoned already, which must
		 * change nothing but the flags of extents there. */
		const struct ref_range *pr;

		if (m->n_poison == 0)
			return 0;
		pr = &m->poison[below(r, m->n_poison)];
		start = between(r, pr->start, pr->end - 1);
		if (len > pr->end - start)
			len = pr->end - start;
	} else if (pick < 40 && m->n_ext > 0) {
		const struct ref_extent *x = &m->ext[below(r, m->n_ext)];

		start = between(r, x->start, x->end - 1);
	} else if (pick < 60 && g->child != NULL) {
		const struct ref_extent *x =
		    &m->ext[ref_find_handle(m, g->host)];

		start = between(r, x->start, x->end - 1);
	} else {
		start = between(r, m->first, m->last - 1);
	}
	if (len > m->last - start)
		len = m->last - start;
	bytes = len << g->shift;
	if (g->gran > 1 && chance(r, 200))
		bytes -= below(r, g->gran);
	do_poison(r, g, start, len, bytes);
	*at = start;
	*nbytes = bytes;
	return 1;
}

static void op_poison(struct run *r, struct rig *g)
{
	uint64_t at, bytes;

	rand_poison(r, g, &at, &bytes);
}

static void op_is_poisoned(struct run *r, struct rig *g)
{
	uint64_t off, len, u, first, last;
	int want, rc;

	if (chance(r, 500) && rand_poisoned_unit(r, g, &u))
		off = (u << g->shift) + below(r, g->gran);
	else
		off = between(r, g->base, g->end - 1);
	len = g->end - off;
	if (chance(r, 900) && len > 8 * g->gran)
		len = 8 * g->gran;
	len = between(r, 1, len);
	first = off >> g->shift;
	last = ((off + len - 1) >> g->shift) + 1;
	want = ref_any_poisoned(&g->m, first, last);

	note(r, g->name, "is_poisoned offset %#" PRIx64 " length %#" PRIx64,
	     off, len, 0, 0, 0);
	rc = done(r, potad_is_poisoned(g->s, off, len));
	EXPECT(r, rc == want,
	       "%s: is_poisoned of units [%#" PRIx64 ", %#" PRIx64
	       ") returned %d, expected %d",
	       g->name, first, last, rc, want);
}

/* Mark a random range clean or dirty, mostly around dirty runs and the
 * units next to them, where blocks split and merge; now and then the whole
 * space clean, as a discard of all of it would, which also keeps the
 * checks from slowing down as clean and dirty blocks pile up side by side.
 * Returns 1 with the call's arguments (units, and the flag), 0 if it made
 * none. */
static int rand_set_clean(struct run *r, struct rig *g, uint64_t *at,
			  uint64_t *len, int *clean)
{
	struct ref_model *m = &g->m;
	uint64_t start, n, pick = below(r, 100);
	int rc;

	*clean = chance(r, 650);
	if (pick < 4) {
		start = m->first;
		n = m->last - m->first;
		*clean = 1;
	} else if (pick < 40 && m->n_dirty > 0) {
		const struct ref_range *d = &m->dirty[below(r, m->n_dirty)];

		start = between(
		    r, d->start > m->first + 4 ? d->start - 4 : m->first,
		    d->end - 1);
		n = log_uniform(r, 2 * (d->end - d->start) + 8);
	} else if (pick < 70) {
		start = between(r, m->first, m->last - 1);
		n = log_uniform(r, g->units < 64 ? g->units : 64);
	} else {
		start = between(r, m->first, m->last - 1);
		n = log_uniform(r, g->units);
	}
	if (n > m->last - start)
		n = m->last - start;
	note(r, g->name,
	     "set_clean offset %#" PRIx64 " length %#" PRIx64 " clean %" PRIu64,
	     start << g->shift, n << g->shift, (uint64_t)*clean, 0, 0);
	rc = done(
	    r, potad_set_clean(g->s, start << g->shift, n << g->shift, *clean));
	EXPECT_RC(r, rc, R_OK, "set_clean");
	ref_set_clean(m, start, start + n, *clean);
	*at = start;
	*len = n;
	return 1;
}

static void op_set_clean(struct run *r, struct rig *g)
{
	uint64_t at, len;
	int clean;

	rand_set_clean(r, g, &at, &len, &clean);
}

/* One potad_dirty_next() from a random offset, often inside a run. */
static void op_dirty_next(struct run *r, struct rig *g)
{
	const struct ref_model *m = &g->m;
	uint64_t off, a = 0, l = 0, ws, we;
	int rc, want;

	if (m->n_dirty > 0 && chance(r, 500)) {
		const struct ref_range *d = &m->dirty[below(r, m->n_dirty)];

		off = (between(r, d->start, d->end - 1) << g->shift) +
		      below(r, g->gran);
	} else if (g->base > 0 && chance(r, 50)) {
		off = between(r, 0, g->base - 1);
	} else {
		off = between(r, g->base, g->end - 1);
	}
	want = ref_dirty_next(m, off >> g->shift, &ws, &we);
	note(r, g->name, "dirty_next offset %#" PRIx64, off, 0, 0, 0, 0);
	rc = done(r, potad_dirty_next(g->s, off, &a, &l));
	if (!want) {
		EXPECT_RC(r, rc, R_ENOENT, "dirty_next past the last run");
		return;
	}
	EXPECT_RC(r, rc, R_OK, "dirty_next");
	EXPECT(r, a == ws << g->shift && l == (we - ws) << g->shift,
	       "%s: dirty_next(%#" PRIx64 ") gave [%#" PRIx64 ", +%#" PRIx64
	       "), the model's run is units [%#" PRIx64 ", %#" PRIx64 ")",
	       g->name, off, a, l, ws, we);
}

/* Walk every dirty run with potad_dirty_next() and compare with the
 * model's list, which holds exactly those runs. */
static void walk_dirty(struct run *r, struct rig *g)
{
	const struct ref_model *m = &g->m;
	uint64_t off = g->base, a, l;
	size_t i = 0;
	int rc;

	note(r, g->name, "dirty_next walk from %#" PRIx64, off, 0, 0, 0, 0);
	while ((rc = potad_dirty_next(g->s, off, &a, &l)) == 0) {
		EXPECT(r,
		       i < m->n_dirty && a == m->dirty[i].start << g->shift &&
			   l == (m->dirty[i].end - m->dirty[i].start)
				    << g->shift,
		       "%s: dirty_next(%#" PRIx64 ") gave [%#" PRIx64
		       ", +%#" PRIx64 "), the model's run %zu of %zu is units "
		       "[%#" PRIx64 ", %#" PRIx64 ")",
		       g->name, off, a, l, i, m->n_dirty,
		       i < m->n_dirty ? m->dirty[i].start : 0,
		       i < m->n_dirty ? m->dirty[i].end : 0);
		off = a + l;
		i++;
	}
	done(r, rc);
	EXPECT_RC(r, rc, R_ENOENT, "dirty_next after the last run");
	EXPECT(r, i == m->n_dirty,
	       "%s: dirty_next listed %zu runs, the model has %zu", g->name, i,
	       m->n_dirty);
}

/* Walk every extent with potad_extent_next() and potad_extent_foreach()
 * and compare with the model. */
static void op_walk(struct run *r, struct rig *g)
{
	const struct ref_model *m = &g->m;
	uint32_t owner = (uint32_t)below(r, 4);
	int owner_only = chance(r, 500);
	uint64_t off = g->base;
	size_t i = 0, n = 0;
	struct potad_extent e;
	int rc;

	for (;;) {
		note(r, g->name, "extent_next offset %#" PRIx64, off, 0, 0, 0,
		     0);
		rc = done(r, potad_extent_next(g->s, off, &e));
		if (rc == -ENOENT)
			break;
		EXPECT_RC(r, rc, R_OK, "extent_next while walking");
		EXPECT(r, i < m->n_ext,
		       "%s: extent_next found an extent at %#" PRIx64
		       " after the model's last",
		       g->name, e.offset);
		EXPECT_DESC(r, &e, &m->ext[i].desc, ~0u, "walk");
		i++;
		off = e.offset + 1;
	}
	EXPECT(r, i == m->n_ext,
	       "%s: extent_next walked %zu extents, the model has %zu", g->name,
	       i, m->n_ext);

	for (i = 0; i < m->n_ext; i++)
		n += !owner_only || m->ext[i].desc.owner == owner;
	r->rep.n = 0;
	r->rep.stop_after = n > 0 && chance(r, 300) ? between(r, 1, n) : 0;
	note(r, g->name,
	     "extent_foreach owner_only %" PRIu64 " owner %" PRIu64
	     " (stops after %" PRIu64 ")",
	     (uint64_t)owner_only, owner, r->rep.stop_after, 0, 0);
	rc = done(r, potad_extent_foreach(g->s, owner_only, owner, on_extent,
					  &r->rep));
	if (r->rep.stop_after) {
		EXPECT(r, rc == 42 && r->rep.n == r->rep.stop_after,
		       "%s: foreach stopped with %d after %zu calls, expected "
		       "42 after %zu",
		       g->name, rc, r->rep.n, r->rep.stop_after);
		n = r->rep.stop_after;
	} else {
		EXPECT(r, rc == 0 && r->rep.n == n,
		       "%s: foreach returned %d after %zu calls, expected 0 "
		       "after %zu",
		       g->name, rc, r->rep.n, n);
	}
	for (i = 0, n = 0; n < r->rep.n; i++) {
		if (owner_only && m->ext[i].desc.owner != owner)
			continue;
		EXPECT_DESC(r, &r->rep.v[n].e, &m->ext[i].desc, ~0u, "foreach");
		n++;
	}
	walk_dirty(r, g);
}

/* Calls that are wrong in exactly one way, and the error each gets. */
static void op_probe(struct run *r, struct rig *g)
{
	const struct ref_model *m = &g->m;
	struct potad_alloc_req q = {0};
	struct potad_extent e;
	uint64_t u = between(r, m->first, m->last - 1), off, len;
	unsigned want;
	int rc;

	q.size = g->gran;
	switch (below(r, 14)) {
	case 0:
		q.size = 0;
		want = R_EINVAL;
		break;
	case 1:
		q.align = (3 + 2 * below(r, 1000)) << below(r, 50);
		want = R_EINVAL;
		break;
	case 2:
		q.flags = 1u << between(r, 4, 31);
		want = R_EINVAL;
		break;
	case 3: /* min > max, both inside the space */
		if (g->units < 3)
			return;
		q.min = between(r, m->first + 2, m->last - 1) << g->shift;
		q.max = q.min - between(r, 1, q.min - g->base - 1);
		want = R_EINVAL;
		break;
	case 4: /* a range that misses the space */
		if (g->end < UINT64_MAX && chance(r, 500)) {
			q.min = between(r, g->end, UINT64_MAX - 1);
			q.max = between(r, q.min + 1, UINT64_MAX);
		} else if (g->base > 1) {
			q.min = between(r, 1, g->base - 1);
			q.max = between(r, q.min + 1, g->base);
		} else {
			return;
		}
		want = R_EINVAL;
		break;
	case 5: /* larger than the space */
		if (g->units >= UINT64_MAX >> g->shift)
			return;
		q.size = (g->units + 1) << g->shift;
		if (chance(r, 300))
			q.size = UINT64_MAX;
		want = R_E2BIG;
		break;
	case 6: /* a whole power of two larger than the space */
		if (g->units > 1ull << 62)
			return;
		q.size = (pow2_ceil(g->units + 1) / 2 + 1) << g->shift;
		q.flags = POTAD_ALLOC_WHOLE;
		want = R_E2BIG;
		break;
	case 7: /* FIXED off the granule */
		if (g->gran == 1)
			return;
		q.at = (u << g->shift) + between(r, 1, g->gran - 1);
		q.flags = POTAD_ALLOC_FIXED;
		want = R_EINVAL;
		break;
	case 8: /* FIXED outside the space */
		q.at = m->first > 0 && chance(r, 500)
			   ? (m->first - 1) << g->shift
			   : g->end;
		q.flags = POTAD_ALLOC_FIXED;
		want = R_ERANGE;
		break;
	case 9:
		note(r, g->name, "claim offset %#" PRIx64 " length 0",
		     u << g->shift, 0, 0, 0, 0);
		rc = done(r, potad_claim(g->s, u << g->shift, 0, 0, 0, &e));
		EXPECT_RC(r, rc, R_EINVAL, "claim of length 0");
		return;
	case 10: /* a free with an unknown flag frees nothing */
		if (m->n_ext == 0)
			return;
		off = m->ext[below(r, m->n_ext)].desc.handle;
		len = 1ull << between(r, 1, 31);
		note(r, g->name, "free_ex handle %#" PRIx64 " flags %#" PRIx64,
		     off, len, 0, 0, 0);
		rc = done(r, potad_free_ex(g->s, off, (unsigned)len, &e));
		EXPECT_RC(r, rc, R_EINVAL, "free_ex with an unknown flag");
		return;
	case 11: /* set_clean: length 0, off the granule, outside */
		off = u << g->shift;
		len = g->gran;
		if (chance(r, 300)) {
			len = 0;
			want = R_EINVAL;
		} else if (g->gran > 1 && chance(r, 500)) {
			if (chance(r, 500))
				off += between(r, 1, g->gran - 1);
			else
				len += between(r, 1, g->gran - 1);
			want = R_EINVAL;
		} else if (g->base > 0 && chance(r, 300)) {
			off = between(r, 0, g->base - 1) & ~(g->gran - 1);
			want = R_ERANGE;
		} else if (chance(r, 500) && g->end <= UINT64_MAX - g->gran) {
			off = g->end;
			want = R_ERANGE;
		} else {
			/* Runs past the end. */
			len = (m->last - u + 1) << g->shift;
			if (len == 0 || (len >> g->shift) != m->last - u + 1)
				return;
			want = R_ERANGE;
		}
		note(r, g->name,
		     "set_clean offset %#" PRIx64 " length %#" PRIx64, off, len,
		     0, 0, 0);
		rc = done(r, potad_set_clean(g->s, off, len, (int)below(r, 2)));
		EXPECT_RC(r, rc, want, "bad set_clean");
		return;
	default: /* poison: length 0, off the granule, outside */
		off = u << g->shift;
		len = g->gran;
		if (chance(r, 300)) {
			len = 0;
			want = R_EINVAL;
		} else if (g->gran > 1 && chance(r, 500)) {
			off += between(r, 1, g->gran - 1);
			want = R_EINVAL;
		} else if (g->base > 0 && chance(r, 300)) {
			off = between(r, 0, g->base - 1);
			off &= ~(g->gran - 1);
			want = R_ERANGE;
		} else {
			off = g->end;
			want = R_ERANGE;
		}
		note(r, g->name, "poison offset %#" PRIx64 " length %#" PRIx64,
		     off, len, 0, 0, 0);
		rc = done(r, potad_poison(g->s, off, len, on_poison, &r->rep));
		EXPECT_RC(r, rc, want, "bad poison");
		return;
	}
	if (q.flags & POTAD_ALLOC_FIXED)
		note(r, g->name,
		     "alloc size %#" PRIx64 " at %#" PRIx64 " flags %#" PRIx64,
		     q.size, q.at, q.flags, 0, 0);
	else
		note(r, g->name,
		     "alloc size %#" PRIx64 " align %#" PRIx64 " min %#" PRIx64
		     " max %#" PRIx64 " flags %#" PRIx64,
		     q.size, q.align, q.min, q.max, q.flags);
	rc = done(r, potad_alloc(g->s, &q, &e));
	EXPECT_RC(r, rc, want, "bad alloc");
}

enum {
	OP_ALLOC,
	OP_CLAIM,
	OP_FREE,
	OP_BAD_HANDLE,
	OP_GET,
	OP_LOOKUP,
	OP_NEXT,
	OP_POISON,
	OP_IS_POISONED,
	OP_PROBE,
	OP_WALK,
	OP_SET_CLEAN,
	OP_DIRTY_NEXT,
	OP_SHRINK,
	N_OPS
};

static void (*const ops[N_OPS])(struct run *, struct rig *) = {
    [OP_ALLOC] = op_alloc,
    [OP_CLAIM] = op_claim,
    [OP_FREE] = op_free,
    [OP_BAD_HANDLE] = op_bad_handle,
    [OP_GET] = op_get,
    [OP_LOOKUP] = op_lookup,
    [OP_NEXT] = op_next,
    [OP_POISON] = op_poison,
    [OP_IS_POISONED] = op_is_poisoned,
    [OP_PROBE] = op_probe,
    [OP_WALK] = op_walk,
    [OP_SET_CLEAN] = op_set_clean,
    [OP_DIRTY_NEXT] = op_dirty_next,
    [OP_SHRINK] = op_shrink,
};

/* Relative weights while draining the space and while filling it; the
 * phases alternate so that both a nearly empty and a full, fragmented
 * space are exercised. */
static const unsigned mix[2][N_OPS] = {
    {120, 40, 380, 30, 40, 160, 60, 8, 50, 20, 2, 25, 30, 40},
    {330, 70, 110, 30, 40, 160, 60, 8, 50, 20, 2, 25, 30, 30},
};

static void step(struct run *r, struct rig *g)
{
	const unsigned *w = mix[r->filling];
	unsigned total = 0, pick, op;

	if (--r->phase_left == 0) {
		r->filling = !r->filling;
		r->phase_left = between(r, 500, 4000);
	}
	for (op = 0; op < N_OPS; op++)
		total += w[op];
	pick = (unsigned)below(r, total);
	for (op = 0; pick >= w[op]; op++)
		pick -= w[op];
	ops[op](r, g);
}

/*
 * Spaces.
 */

struct shape {
	uint64_t base, size;
	unsigned shift;
};

/* Fill in a rig for a space that exists already. */
static void rig_adopt(struct rig *g, const char *name, struct potad_space *s,
		      uint64_t base, uint64_t size, unsigned shift,
		      unsigned check_every)
{
	memset(g, 0, sizeof(*g));
	g->name = name;
	g->s = s;
	g->shift = shift;
	g->gran = 1ull << shift;
	g->base = base;
	g->units = size >> shift;
	g->end = base + (g->units << shift);
	g->check_every = check_every;
	g->poison_budget = g->units / 32 + 1;
	ref_init(&g->m, base, size, shift);
}

static void rig_open(struct run *r, struct rig *g, const char *name,
		     const struct shape *sh, unsigned check_every)
{
	struct potad_space *s = NULL;
	int rc;

	note(r, name,
	     "space_new base %#" PRIx64 " size %#" PRIx64 " shift %" PRIu64,
	     sh->base, sh->size, sh->shift, 0, 0);
	rc = done(r, potad_space_new(&s, sh->base, sh->size, sh->shift));
	EXPECT_RC(r, rc, R_OK, "space_new");
	rig_adopt(g, name, s, sh->base, sh->size, sh->shift, check_every);
	EXPECT(r, potad_space_parent(s) == NULL, "a new space has a parent");
	verify(r, g, 1);
}

static void rig_close(struct run *r, struct rig *g)
{
	int rc;

	op_walk(r, g);
	verify(r, g, 1);
	note(r, g->name, "space_destroy", 0, 0, 0, 0, 0);
	rc = done(r, potad_space_destroy(g->s));
	EXPECT_RC(r, rc, R_OK, "space_destroy");
	ref_fini(&g->m);
}

/* Spaces potad_space_new() must refuse. */
static void probe_space_new(struct run *r)
{
	static const struct shape bad[] = {
	    {0, 4096, POTAD_GRANULE_SHIFT_MAX + 1}, /* granule */
	    {512, 1 << 20, 12},			    /* unaligned base */
	    {UINT64_MAX - 10, 100, 0},		    /* wraps */
	    {1ull << 40, 4095, 12},		    /* under a unit */
	    {4096, 0, 12},			    /* empty */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct potad_space *s = NULL;
		int rc;

		note(r, "new",
		     "space_new base %#" PRIx64 " size %#" PRIx64
		     " shift %" PRIu64,
		     bad[i].base, bad[i].size, bad[i].shift, 0, 0);
		rc = done(r, potad_space_new(&s, bad[i].base, bad[i].size,
					     bad[i].shift));
		if (rc == 0)
			potad_space_destroy(s);
		EXPECT_RC(r, rc, R_EINVAL, "space_new of a bad shape");
	}
}

/* Small spaces where everything collides: 64 to 4096 units, based at 0,
 * on a large power of two or on an odd unit. */
static void shape_small(struct run *r, struct shape *sh, unsigned shift)
{
	uint64_t units = between(r, 64, 4096), first;

	switch (below(r, 3)) {
	case 0:
		first = 0;
		break;
	case 1:
		first = below(r, 1024) << 20;
		break;
	default:
		first = 2 * below(r, 1u << 20) + 1;
		break;
	}
	sh->shift = shift;
	sh->base = first << shift;
	sh->size = units << shift;
	if (chance(r, 300))
		sh->size += below(r, 1ull << shift);
}

static void shape_small_byte(struct run *r, struct shape *sh)
{
	shape_small(r, sh, 0);
}

static void shape_small_page(struct run *r, struct shape *sh)
{
	shape_small(r, sh, 12);
}

/* An odd number of units (never a power of two) at an odd unit, so no
 * block larger than one unit is aligned at the base, and a size that is
 * not a whole number of units. */
static void shape_odd(struct run *r, struct shape *sh)
{
	static const unsigned shifts[] = {0, 9, 12, 16, 21, 30};
	unsigned shift = shifts[below(r, sizeof(shifts) / sizeof(shifts[0]))];
	uint64_t units = between(r, 1u << 10, 1u << 22) | 1;

	sh->shift = shift;
	sh->base = (2 * below(r, 1ull << (61 - shift)) + 1) << shift;
	sh->size = (units << shift) + below(r, 1ull << shift);
}

/* Spaces reaching the top of the 64-bit range: base + size = 2^64 - 1. */
static void shape_huge(struct run *r, struct shape *sh)
{
	sh->shift = 0;
	switch (below(r, 4)) {
	case 0:
		sh->base = 0;
		break;
	case 1:
		sh->base = 1;
		break;
	case 2:
		sh->base = UINT64_MAX -
			   between(r, 1ull << 40, (1ull << 63) + (1ull << 62));
		break;
	default:
		sh->shift = 12;
		sh->base = UINT64_MAX - between(r, 1ull << 40, 1ull << 63);
		sh->base &= ~4095ull;
		break;
	}
	sh->size = UINT64_MAX - sh->base;
}

/* Run a case: steps in all, on a fresh space of the given shape every
 * round_steps, checked in full every check_every steps. */
/* Half the spaces of the rounds and child cases run with the reuse cache
 * on (potad_space_set_cache()), of random limits, and now and then change
 * them: every outcome the model predicts must stay the same. */
static void maybe_cache(struct run *r, struct rig *g)
{
	uint64_t units = between(r, 0, 64), entries = between(r, 0, 64);
	int rc;

	note(r, g->name, "space_set_cache units %" PRIu64 " entries %" PRIu64,
	     units, entries, 0, 0, 0);
	rc = done(r, potad_space_set_cache(g->s, units << g->shift,
					   (uint32_t)entries));
	EXPECT_RC(r, rc, R_OK, "space_set_cache");
	g->cache |= units && entries;
}

static void run_rounds(const char *tcase,
		       void (*shape)(struct run *, struct shape *),
		       uint64_t steps, uint64_t round_steps,
		       unsigned check_every)
{
	struct run r;
	struct rig g;
	struct shape sh;

	run_init(&r, tcase, steps);
	probe_space_new(&r);
	while (r.step < r.steps) {
		shape(&r, &sh);
		rig_open(&r, &g, "space", &sh, check_every);
		if (chance(&r, 500))
			maybe_cache(&r, &g);
		for (uint64_t k = 0; k < round_steps && r.step < r.steps;
		     k++, r.step++) {
			if (g.cache && chance(&r, 1))
				maybe_cache(&r, &g);
			step(&r, &g);
			verify(&r, &g, 0);
		}
		rig_close(&r, &g);
	}
	run_fini(&r);
}

/*
 * Child spaces.
 */

/* Copy the parent's poison inside the host into the child, in child
 * units: poison starts there when the child is made. */
static void inherit_poison(struct rig *p, struct rig *c)
{
	unsigned d = c->shift - p->shift;

	for (size_t j = 0; j < p->m.n_poison; j++) {
		uint64_t s = p->m.poison[j].start >> d;
		uint64_t e = ((p->m.poison[j].end - 1) >> d) + 1;

		if (s < c->m.first)
			s = c->m.first;
		if (e > c->m.last)
			e = c->m.last;
		if (s < e)
			ref_poison(&c->m, s, e);
	}
}

/* Allocate a host extent in p and make a child space c over it. */
static void child_open(struct run *r, struct rig *p, struct rig *c)
{
	struct potad_alloc_req q = {0};
	struct potad_extent host, e;
	struct potad_space *cs = NULL;
	unsigned cshift = p->shift + (unsigned)below(r, 5), tz;
	uint64_t cunits = between(r, 16, 2048);
	uint64_t most = (p->units << p->shift) / 2 >> cshift;
	long i;
	int rc;

	if (cunits > most)
		cunits = most;
	if (cunits == 0)
		return;
	q.size = cunits << cshift;
	if (chance(r, 300))
		q.size += below(r, 1ull << cshift);
	q.align = 1ull << cshift;
	q.owner = (uint32_t)below(r, 4);
	q.tag = (uint32_t)rnd(r);
	if (chance(r, 300))
		q.flags |= POTAD_ALLOC_TOPDOWN;
	if (do_alloc(r, p, &q, 0, &host) != 0)
		return;

	if (chance(r, 300)) {
		uint64_t start = (host.offset >> p->shift) +
				 below(r, host.length >> p->shift);
		uint64_t len = between(r, 1, 4), end;

		i = ref_find_handle(&p->m, host.handle);
		end = p->m.ext[i].end;
		if (len > end - start)
			len = end - start;
		do_poison(r, p, start, len, len << p->shift);
	}

	/* The child's granule may not be finer than the parent's, and the
	 * host must start on it. */
	if (p->shift > 0) {
		note(r, p->name, "child_new handle %#" PRIx64 " shift %" PRIu64,
		     host.handle, p->shift - 1, 0, 0, 0);
		rc = done(
		    r, potad_child_new(p->s, host.handle, p->shift - 1, &cs));
		EXPECT_RC(r, rc, R_EINVAL, "child_new with a finer granule");
	}
	tz = (unsigned)__builtin_ctzll(host.offset);
	if (tz + 1 <= POTAD_GRANULE_SHIFT_MAX) {
		note(r, p->name, "child_new handle %#" PRIx64 " shift %" PRIu64,
		     host.handle, tz + 1, 0, 0, 0);
		rc = done(r, potad_child_new(p->s, host.handle, tz + 1, &cs));
		EXPECT_RC(r, rc, R_EINVAL,
			  "child_new with the host off the granule");
	}

	note(r, p->name, "child_new handle %#" PRIx64 " shift %" PRIu64,
	     host.handle, cshift, 0, 0, 0);
	rc = done(r, potad_child_new(p->s, host.handle, cshift, &cs));
	EXPECT_RC(r, rc, R_OK, "child_new");

	/* The host is now of type CHILD; the rest of it must not change. */
	i = ref_find_handle(&p->m, host.handle);
	note(r, p->name, "get handle %#" PRIx64, host.handle, 0, 0, 0, 0);
	rc = done(r, potad_get(p->s, host.handle, &e));
	EXPECT_RC(r, rc, R_OK, "get of a host");
	p->m.ext[i].desc.type = POTAD_TYPE_CHILD;
	p->m.ext[i].desc.handle = e.handle;
	EXPECT_DESC(r, &e, &p->m.ext[i].desc, ~0u, "host after child_new");
	p->host = e.handle;

	rig_adopt(c, "child", cs, host.offset, host.length, cshift, 8);
	inherit_poison(p, c);
	p->child = c;

	EXPECT(r, potad_child_of(p->s, p->host) == cs,
	       "potad_child_of(host) is not the child");
	EXPECT(r, potad_space_parent(cs) == p->s,
	       "potad_space_parent(child) is not the parent");

	note(r, p->name, "child_new handle %#" PRIx64 " (again)", p->host, 0, 0,
	     0, 0);
	rc = done(r, potad_child_new(p->s, p->host, cshift, &cs));
	EXPECT_RC(r, rc, R_EBUSY, "a second child_new on one host");
	note(r, p->name, "space_destroy (with a child)", 0, 0, 0, 0, 0);
	rc = done(r, potad_space_destroy(p->s));
	EXPECT_RC(r, rc, R_EBUSY, "space_destroy of a parent");
	verify(r, p, 1);
}

/* Destroy p's child space, which frees its host in p. */
static void child_close(struct run *r, struct rig *p)
{
	struct rig *c = p->child;
	unsigned d = c->shift - p->shift;
	struct potad_extent e;
	long i;
	int rc, dirty;

	op_walk(r, c);
	verify(r, c, 1);
	/* The host comes back dirty if the child leaves data in it. */
	dirty = c->m.n_ext > 0 || c->m.dirty_units > 0;
	note(r, c->name, "space_destroy", 0, 0, 0, 0, 0);
	rc = done(r, potad_space_destroy(c->s));
	EXPECT_RC(r, rc, R_OK, "space_destroy of a child");
	/* The child's poison, in its own coarser units, stays poisoned in
	 * the parent. */
	for (size_t j = 0; j < c->m.n_poison; j++)
		ref_poison(&p->m, c->m.poison[j].start << d,
			   c->m.poison[j].end << d);
	ref_fini(&c->m);
	p->child = NULL;

	i = ref_find_handle(&p->m, p->host);
	ref_remove(&p->m, (size_t)i, dirty);
	remember_dead(p, p->host);
	note(r, p->name, "get handle %#" PRIx64, p->host, 0, 0, 0, 0);
	rc = done(r, potad_get(p->s, p->host, &e));
	EXPECT_RC(r, rc, R_ESTALE, "get of a destroyed child's host");
	verify(r, p, 1);
}

/*
 * Journal replay.  A space, and the child space it may host, is driven at
 * random and snapshotted as the daemon's journal does: its highest
 * generation, its poison through potad_poison_next(), its extents through
 * potad_extent_foreach() and its dirty runs through potad_dirty_next().  A
 * fresh copy is rebuilt from that with potad_place(), then the calls made on
 * the original after the snapshot are logged and replayed onto the copy.  Each
 * time the copy must be the original: extents, handles, counters, free blocks,
 * poison; a handle that was stale must stay stale; and the same allocations
 * made on both afterwards must land in the same places, since placement may
 * depend on nothing but the free space.
 */

struct evec {
	struct potad_extent *v;
	size_t n, cap;
};

static void evec_push(struct evec *ev, const struct potad_extent *e)
{
	if (ev->n == ev->cap) {
		size_t cap = ev->cap ? 2 * ev->cap : 64;
		struct potad_extent *v = realloc(ev->v, cap * sizeof(*v));

		ck_assert_msg(v != NULL, "out of memory");
		ev->v = v;
		ev->cap = cap;
	}
	ev->v[ev->n++] = *e;
}

static int on_snap(const struct potad_extent *e, void *arg)
{
	evec_push(arg, e);
	return 0;
}

/* One space's snapshot; poison ranges and dirty runs as offset and
 * length. */
struct snap {
	uint32_t gen_max;
	struct evec ext;
	struct evec poison;
	struct evec dirty;
};

/* One logged call: LOG_PLACE an extent (e), LOG_FREE a handle (e.handle)
 * with free flags (e.flags), LOG_SHRINK one (e.handle) to e.length bytes
 * with free flags (e.flags), LOG_POISON bytes (e.offset, e.length) that
 * hit rc extents, LOG_CLEAN bytes (e.offset, e.length) made clean if rc. */
enum { LOG_PLACE, LOG_FREE, LOG_SHRINK, LOG_POISON, LOG_CLEAN };

struct logrec {
	int op;
	int in_child;
	int rc;
	struct potad_extent e;
};

struct logv {
	struct logrec *v;
	size_t n, cap;
};

static void log_push(struct logv *lv, const struct logrec *l)
{
	if (lv->n == lv->cap) {
		size_t cap = lv->cap ? 2 * lv->cap : 64;
		struct logrec *v = realloc(lv->v, cap * sizeof(*v));

		ck_assert_msg(v != NULL, "out of memory");
		lv->v = v;
		lv->cap = cap;
	}
	lv->v[lv->n++] = *l;
}

/* Snapshot g, checking the poison list against the model. */
static void snap_take(struct run *r, const struct rig *g, struct snap *sn)
{
	struct potad_extent p = {0};
	uint64_t off = g->base, a, l, a2, l2;
	size_t j = 0;
	int rc;

	sn->gen_max = potad_space_gen_max(g->s);
	sn->ext.n = 0;
	sn->poison.n = 0;
	note(r, g->name, "snapshot (poison_next from %#" PRIx64 ")", off, 0, 0,
	     0, 0);
	while ((rc = potad_poison_next(g->s, off, &a, &l)) == 0) {
		const struct ref_range *pr =
		    j < g->m.n_poison ? &g->m.poison[j] : NULL;

		EXPECT(r,
		       pr != NULL && a == pr->start << g->shift &&
			   l == (pr->end - pr->start) << g->shift,
		       "%s: poison_next(%#" PRIx64 ") gave [%#" PRIx64
		       ", +%#" PRIx64 "), the model's range %zu is units "
		       "[%#" PRIx64 ", %#" PRIx64 ")",
		       g->name, off, a, l, j, pr ? pr->start : 0,
		       pr ? pr->end : 0);
		/* Any offset inside the range finds the whole of it. */
		rc = potad_poison_next(g->s, a + below(r, l), &a2, &l2);
		EXPECT(r, rc == 0 && a2 == a && l2 == l,
		       "%s: poison_next inside [%#" PRIx64 ", +%#" PRIx64
		       ") returned %d with [%#" PRIx64 ", +%#" PRIx64 ")",
		       g->name, a, l, rc, a2, l2);
		p.offset = a;
		p.length = l;
		evec_push(&sn->poison, &p);
		off = a + l;
		j++;
	}
	EXPECT_RC(r, rc, R_ENOENT, "poison_next after the last range");
	EXPECT(r, j == g->m.n_poison,
	       "%s: poison_next listed %zu ranges, the model has %zu", g->name,
	       j, g->m.n_poison);
	rc = potad_extent_foreach(g->s, 0, 0, on_snap, &sn->ext);
	EXPECT(r, rc == 0 && sn->ext.n == g->m.n_ext,
	       "%s: foreach returned %d with %zu extents, the model has %zu",
	       g->name, rc, sn->ext.n, g->m.n_ext);
	sn->dirty.n = 0;
	off = g->base;
	j = 0;
	while (potad_dirty_next(g->s, off, &a, &l) == 0) {
		EXPECT(r,
		       j < g->m.n_dirty &&
			   a == g->m.dirty[j].start << g->shift &&
			   l == (g->m.dirty[j].end - g->m.dirty[j].start)
				    << g->shift,
		       "%s: dirty_next(%#" PRIx64 ") gave [%#" PRIx64
		       ", +%#" PRIx64 "), not the model's run %zu",
		       g->name, off, a, l, j);
		p.offset = a;
		p.length = l;
		evec_push(&sn->dirty, &p);
		off = a + l;
		j++;
	}
	EXPECT(r, j == g->m.n_dirty,
	       "%s: dirty_next listed %zu runs, the model has %zu", g->name, j,
	       g->m.n_dirty);
}

/* Rebuild a snapshot into s, a space with nothing in it yet. */
static void snap_restore(struct run *r, const char *name, struct potad_space *s,
			 const struct snap *sn)
{
	int rc;

	note(r, name, "set_gen_floor %" PRIu64, sn->gen_max, 0, 0, 0, 0);
	potad_space_set_gen_floor(s, sn->gen_max);
	for (size_t i = 0; i < sn->poison.n; i++) {
		const struct potad_extent *p = &sn->poison.v[i];

		note(r, name, "poison offset %#" PRIx64 " length %#" PRIx64,
		     p->offset, p->length, 0, 0, 0);
		rc = done(r, potad_poison(s, p->offset, p->length, NULL, NULL));
		EXPECT(r, rc >= 0, "%s: restoring poison returned %d (%s)",
		       name, rc, rc_name(rc));
	}
	for (size_t i = 0; i < sn->ext.n; i++) {
		struct potad_extent e = sn->ext.v[i];

		/* A host is placed as an extent; child_new makes it one. */
		if (e.type == POTAD_TYPE_CHILD) {
			e.handle &= ~(0xfull << 60);
			e.handle |= (uint64_t)POTAD_TYPE_EXTENT << 60;
			e.type = POTAD_TYPE_EXTENT;
		}
		note(r, name,
		     "place offset %#" PRIx64 " length %#" PRIx64
		     " handle %#" PRIx64,
		     e.offset, e.length, e.handle, 0, 0);
		rc = done(r, potad_place(s, &e));
		EXPECT_RC(r, rc, R_OK, "place of a snapshotted extent");
	}
	/* Every free unit is clean in a new space. */
	for (size_t i = 0; i < sn->dirty.n; i++) {
		const struct potad_extent *d = &sn->dirty.v[i];

		note(r, name,
		     "set_clean offset %#" PRIx64 " length %#" PRIx64
		     " clean 0",
		     d->offset, d->length, 0, 0, 0);
		rc = done(r, potad_set_clean(s, d->offset, d->length, 0));
		EXPECT_RC(r, rc, R_OK, "set_clean of a snapshotted dirty run");
	}
}

/* b must be a, but for the handles of extents allocated on each apart. */
static void same_spaces(struct run *r, const char *what,
			const struct potad_space *a,
			const struct potad_space *b, int same_handles)
{
	struct potad_stats x, y;
	struct evec ea = {0}, eb = {0};
	uint64_t off = 0, pa, la, pb, lb, ra, rb;
	double fa, fb;
	char msg[512] = "";
	int rc;

	potad_space_stats(a, &x);
	potad_space_stats(b, &y);
	EXPECT(r,
	       x.base == y.base && x.size == y.size && x.units == y.units &&
		   x.free_units == y.free_units &&
		   x.used_units == y.used_units &&
		   x.poison_units == y.poison_units && x.extents == y.extents &&
		   x.free_blocks == y.free_blocks &&
		   x.largest_free_block == y.largest_free_block &&
		   x.children == y.children && x.dirty_units == y.dirty_units &&
		   x.dirty_blocks == y.dirty_blocks,
	       "%s: counters differ: free %" PRIu64 "/%" PRIu64 " used %" PRIu64
	       "/%" PRIu64 " poison %" PRIu64 "/%" PRIu64 " extents %" PRIu64
	       "/%" PRIu64 " blocks %" PRIu64 "/%" PRIu64 " dirty %" PRIu64
	       "/%" PRIu64 " dirty blocks %" PRIu64 "/%" PRIu64,
	       what, x.free_units, y.free_units, x.used_units, y.used_units,
	       x.poison_units, y.poison_units, x.extents, y.extents,
	       x.free_blocks, y.free_blocks, x.dirty_units, y.dirty_units,
	       x.dirty_blocks, y.dirty_blocks);
	for (unsigned k = 0; k < POTAD_ORDERS; k++)
		EXPECT(r, x.free_per_order[k] == y.free_per_order[k],
		       "%s: %" PRIu64 " and %" PRIu64
		       " free blocks of order %u",
		       what, x.free_per_order[k], y.free_per_order[k], k);
	potad_extent_foreach(a, 0, 0, on_snap, &ea);
	potad_extent_foreach(b, 0, 0, on_snap, &eb);
	EXPECT(r, ea.n == eb.n, "%s: %zu and %zu extents", what, ea.n, eb.n);
	for (size_t i = 0; i < ea.n; i++) {
		if (!same_handles)
			eb.v[i].handle = ea.v[i].handle;
		EXPECT_DESC(r, &eb.v[i], &ea.v[i], ~0u, what);
	}
	free(ea.v);
	free(eb.v);
	while ((rc = potad_poison_next(a, off, &pa, &la)) == 0) {
		rc = potad_poison_next(b, off, &pb, &lb);
		EXPECT(r, rc == 0 && pa == pb && la == lb,
		       "%s: poison [%#" PRIx64 ", +%#" PRIx64
		       ") in one, [%#" PRIx64 ", +%#" PRIx64 ") in the other",
		       what, pa, la, pb, lb);
		off = pa + la;
	}
	EXPECT(r, potad_poison_next(b, off, &pb, &lb) == -ENOENT,
	       "%s: the copy has poison past the original's", what);
	off = 0;
	while ((rc = potad_dirty_next(a, off, &pa, &la)) == 0) {
		rc = potad_dirty_next(b, off, &pb, &lb);
		EXPECT(r, rc == 0 && pa == pb && la == lb,
		       "%s: dirty run [%#" PRIx64 ", +%#" PRIx64
		       ") in one, [%#" PRIx64 ", +%#" PRIx64 ") in the other",
		       what, pa, la, pb, lb);
		off = pa + la;
	}
	EXPECT(r, potad_dirty_next(b, off, &pb, &lb) == -ENOENT,
	       "%s: the copy has dirty runs past the original's", what);
	potad_space_frag(a, &ra, &fa);
	potad_space_frag(b, &rb, &fb);
	EXPECT(r, ra == rb && fa == fb,
	       "%s: frag %#" PRIx64 " %g and %#" PRIx64 " %g", what, ra, fa, rb,
	       fb);
	rc = potad_space_check(b, msg, sizeof(msg));
	EXPECT(r, rc == 0, "%s: potad_space_check of the copy: %d: %s", what,
	       rc, msg);
}

/* Every handle freed lately in g's space is stale in the copy b. */
static void stale_stays(struct run *r, const struct rig *g,
			const struct potad_space *b)
{
	unsigned n = g->n_dead < DEAD_RING ? g->n_dead : DEAD_RING;
	struct potad_extent e;
	int rc;

	for (unsigned i = 0; i < n; i++) {
		note(r, g->name, "get (copy) handle %#" PRIx64, g->dead[i], 0,
		     0, 0, 0);
		rc = done(r, potad_get(b, g->dead[i], &e));
		EXPECT_RC(r, rc, R_ESTALE, "get of a stale handle in the copy");
	}
}

/* One call on the original after the snapshot, logged. */
static void log_step(struct run *r, struct rig *p, struct logv *lv)
{
	struct rig *g = p->child != NULL && chance(r, 300) ? p->child : p;
	struct logrec l;
	uint64_t pick = below(r, 100), at, bytes;
	size_t i;

	memset(&l, 0, sizeof(l));
	l.in_child = g != p;
	if (pick < (r->filling ? 55u : 30u)) {
		if (rand_alloc(r, g, &l.e) != 0)
			return;
		l.op = LOG_PLACE;
	} else if (pick < (r->filling ? 65u : 40u)) {
		if (rand_claim(r, g, &l.e) != 0)
			return;
		l.op = LOG_PLACE;
	} else if (pick < 90) {
		if (g->m.n_ext == 0)
			return;
		i = below(r, g->m.n_ext);
		if (is_host(g, i))
			return;
		l.e.handle = g->m.ext[i].desc.handle;
		l.e.flags = do_free(r, g, i);
		l.op = LOG_FREE;
	} else if (pick < 95) {
		if (g->m.n_ext == 0)
			return;
		i = below(r, g->m.n_ext);
		l.e.handle = g->m.ext[i].desc.handle;
		if (do_shrink(r, g, i, &l.e.flags, &l.e.length) < 0)
			return;
		l.op = LOG_SHRINK;
	} else if (pick < 97) {
		if (!rand_set_clean(r, g, &at, &bytes, &l.rc))
			return;
		l.op = LOG_CLEAN;
		l.e.offset = at << g->shift;
		l.e.length = bytes << g->shift;
	} else {
		if (!rand_poison(r, g, &at, &bytes))
			return;
		l.op = LOG_POISON;
		l.e.offset = at << g->shift;
		l.e.length = bytes;
		l.rc = (int)r->rep.n;
	}
	log_push(lv, &l);
}

static void log_replay(struct run *r, struct potad_space *b,
		       struct potad_space *bc, const struct logv *lv)
{
	for (size_t i = 0; i < lv->n; i++) {
		const struct logrec *l = &lv->v[i];
		struct potad_space *s = l->in_child ? bc : b;
		const char *name = l->in_child ? "child copy" : "copy";
		int rc;

		switch (l->op) {
		case LOG_PLACE:
			note(r, name,
			     "place offset %#" PRIx64 " length %#" PRIx64
			     " handle %#" PRIx64,
			     l->e.offset, l->e.length, l->e.handle, 0, 0);
			rc = done(r, potad_place(s, &l->e));
			EXPECT_RC(r, rc, R_OK, "place of a logged allocation");
			break;
		case LOG_FREE:
			note(r, name,
			     "free_ex handle %#" PRIx64 " flags %#" PRIx64,
			     l->e.handle, l->e.flags, 0, 0, 0);
			rc = done(
			    r, potad_free_ex(s, l->e.handle, l->e.flags, NULL));
			EXPECT_RC(r, rc, R_OK, "free of a logged handle");
			break;
		case LOG_SHRINK:
			note(r, name,
			     "shrink handle %#" PRIx64 " length %#" PRIx64
			     " flags %#" PRIx64,
			     l->e.handle, l->e.length, l->e.flags, 0, 0);
			rc = done(r, potad_shrink(s, l->e.handle, l->e.length,
						  l->e.flags, NULL));
			EXPECT_RC(r, rc, R_OK, "shrink of a logged handle");
			break;
		case LOG_CLEAN:
			note(r, name,
			     "set_clean offset %#" PRIx64 " length %#" PRIx64
			     " clean %" PRIu64,
			     l->e.offset, l->e.length, (uint64_t)l->rc, 0, 0);
			rc = done(r, potad_set_clean(s, l->e.offset,
						     l->e.length, l->rc));
			EXPECT_RC(r, rc, R_OK, "logged set_clean");
			break;
		default:
			note(r, name,
			     "poison offset %#" PRIx64 " length %#" PRIx64,
			     l->e.offset, l->e.length, 0, 0, 0);
			rc = done(r, potad_poison(s, l->e.offset, l->e.length,
						  NULL, NULL));
			EXPECT(r, rc == l->rc,
			       "%s: logged poison returned %d (%s), the "
			       "original %d",
			       name, rc, rc_name(rc), l->rc);
			break;
		}
	}
}

/* The same random calls on the original (whose model is left behind
 * from here on) and on the copy must get the same answers. */
static void same_future(struct run *r, struct rig *g, struct potad_space *b,
			uint64_t steps)
{
	struct evec ha = {0}, hb = {0};
	struct potad_alloc_req q;
	struct potad_extent ea, eb;
	int ra, rb;

	potad_extent_foreach(g->s, 0, 0, on_snap, &ha);
	potad_extent_foreach(b, 0, 0, on_snap, &hb);
	for (uint64_t k = 0; k < steps; k++, r->step++) {
		uint64_t pick = below(r, 100), u, len;
		size_t i;

		if (pick < 60) {
			rand_req(r, g, &q);
			note(r, g->name,
			     "alloc (both) size %#" PRIx64 " align %#" PRIx64
			     " min %#" PRIx64 " max %#" PRIx64
			     " flags %#" PRIx64,
			     q.size, q.align, q.min, q.max, q.flags);
			ra = potad_alloc(g->s, &q, &ea);
			rb = done(r, potad_alloc(b, &q, &eb));
			EXPECT(r,
			       ra == rb &&
				   (ra != 0 || (ea.offset == eb.offset &&
						ea.length == eb.length)),
			       "%s: alloc gave %d [%#" PRIx64 ", +%#" PRIx64
			       ") in the original, %d [%#" PRIx64 ", +%#" PRIx64
			       ") in the copy",
			       g->name, ra, ea.offset, ea.length, rb, eb.offset,
			       eb.length);
			if (ra != 0)
				continue;
			EXPECT(r, !is_dead(g, eb.handle),
			       "%s: the copy issued stale handle %#" PRIx64,
			       g->name, eb.handle);
			evec_push(&ha, &ea);
			evec_push(&hb, &eb);
		} else if (pick < 90) {
			unsigned fl;

			if (ha.n == 0)
				continue;
			fl = chance(r, 500) ? POTAD_FREE_DIRTY : 0;
			i = below(r, ha.n);
			note(r, g->name,
			     "free (both) handles %#" PRIx64 " and %#" PRIx64
			     " flags %#" PRIx64,
			     ha.v[i].handle, hb.v[i].handle, fl, 0, 0);
			ra = potad_free_ex(g->s, ha.v[i].handle, fl, NULL);
			rb =
			    done(r, potad_free_ex(b, hb.v[i].handle, fl, NULL));
			EXPECT(r, ra == rb,
			       "%s: free returned %d in the original, %d in "
			       "the copy",
			       g->name, ra, rb);
			if (ra != 0)
				continue;
			ha.v[i] = ha.v[--ha.n];
			hb.v[i] = hb.v[--hb.n];
		} else if (pick < 95) {
			int clean = chance(r, 500);

			u = between(r, g->m.first, g->m.last - 1);
			len = log_uniform(r, g->units);
			if (len > g->m.last - u)
				len = g->m.last - u;
			note(r, g->name,
			     "set_clean (both) offset %#" PRIx64
			     " length %#" PRIx64 " clean %" PRIu64,
			     u << g->shift, len << g->shift, (uint64_t)clean, 0,
			     0);
			ra = potad_set_clean(g->s, u << g->shift,
					     len << g->shift, clean);
			rb = done(r, potad_set_clean(b, u << g->shift,
						     len << g->shift, clean));
			EXPECT(r, ra == 0 && rb == 0,
			       "%s: set_clean returned %d in the original, %d "
			       "in the copy",
			       g->name, ra, rb);
		} else {
			u = between(r, g->m.first, g->m.last - 1);
			len = between(r, 1, 4);
			if (len > g->m.last - u)
				len = g->m.last - u;
			note(r, g->name,
			     "poison (both) offset %#" PRIx64
			     " length %#" PRIx64,
			     u << g->shift, len << g->shift, 0, 0, 0);
			ra = potad_poison(g->s, u << g->shift, len << g->shift,
					  NULL, NULL);
			rb = done(r, potad_poison(b, u << g->shift,
						  len << g->shift, NULL, NULL));
			EXPECT(r, ra == rb,
			       "%s: poison returned %d in the original, %d in "
			       "the copy",
			       g->name, ra, rb);
		}
	}
	same_spaces(r, "after the same calls on both", g->s, b, 0);
	free(ha.v);
	free(hb.v);
}

/* A parent shape as the child case uses: room for a child space. */
static void shape_parent(struct run *r, struct shape *sh)
{
	sh->shift = chance(r, 500) ? 12 : 9;
	sh->base = (2 * below(r, 1u << 24) + 1) << sh->shift;
	sh->size = between(r, 4096, 65536) << sh->shift;
}

static void replay_round(struct run *r)
{
	struct rig p, c;
	struct shape sh;
	struct snap sp = {0}, sc = {0};
	struct logv lv = {0};
	struct potad_space *b = NULL, *bc = NULL;
	int kids = chance(r, 500), rc;
	uint64_t k1 = between(r, 200, 3000), k2 = between(r, 100, 1500);

	switch (kids ? 4 : below(r, 4)) {
	case 0:
		shape_small_page(r, &sh);
		break;
	case 1:
		shape_small_byte(r, &sh);
		break;
	case 2:
		shape_odd(r, &sh);
		break;
	case 3:
		shape_huge(r, &sh);
		break;
	default:
		shape_parent(r, &sh);
		break;
	}
	rig_open(r, &p, "space", &sh, 64);
	for (uint64_t k = 0; k < k1; k++, r->step++) {
		if (kids && p.child == NULL && chance(r, 20))
			child_open(r, &p, &c);
		else if (p.child != NULL && chance(r, 1))
			child_close(r, &p);
		if (p.child != NULL && chance(r, 300))
			step(r, p.child);
		else
			step(r, &p);
		verify(r, &p, 0);
	}
	verify(r, &p, 1);

	/* Snapshot and restore. */
	snap_take(r, &p, &sp);
	if (p.child != NULL)
		snap_take(r, p.child, &sc);
	note(r, "copy",
	     "space_new base %#" PRIx64 " size %#" PRIx64 " shift %" PRIu64,
	     sh.base, sh.size, sh.shift, 0, 0);
	rc = done(r, potad_space_new(&b, sh.base, sh.size, sh.shift));
	EXPECT_RC(r, rc, R_OK, "space_new of the copy");
	snap_restore(r, "copy", b, &sp);
	if (p.child != NULL) {
		note(r, "copy", "child_new handle %#" PRIx64 " shift %" PRIu64,
		     p.host, p.child->shift, 0, 0, 0);
		rc = done(r, potad_child_new(b, p.host, p.child->shift, &bc));
		EXPECT_RC(r, rc, R_OK, "child_new in the copy");
		snap_restore(r, "child copy", bc, &sc);
		same_spaces(r, "child restored", p.child->s, bc, 1);
		EXPECT(r, potad_space_gen_max(bc) == sc.gen_max,
		       "child copy: gen_max %u, snapshot %u",
		       potad_space_gen_max(bc), sc.gen_max);
		stale_stays(r, p.child, bc);
	}
	same_spaces(r, "restored", p.s, b, 1);
	EXPECT(r, potad_space_gen_max(b) == sp.gen_max,
	       "copy: gen_max %u, snapshot %u", potad_space_gen_max(b),
	       sp.gen_max);
	stale_stays(r, &p, b);

	/* Log what the original does next, then replay it. */
	for (uint64_t k = 0; k < k2; k++, r->step++) {
		if (--r->phase_left == 0) {
			r->filling = !r->filling;
			r->phase_left = between(r, 500, 4000);
		}
		log_step(r, &p, &lv);
		verify(r, &p, 0);
	}
	verify(r, &p, 1);
	log_replay(r, b, bc, &lv);
	same_spaces(r, "log replayed", p.s, b, 1);
	EXPECT(r, potad_space_gen_max(b) >= potad_space_gen_max(p.s),
	       "copy: gen_max %u below the original's %u",
	       potad_space_gen_max(b), potad_space_gen_max(p.s));
	stale_stays(r, &p, b);
	if (p.child != NULL) {
		same_spaces(r, "child log replayed", p.child->s, bc, 1);
		stale_stays(r, p.child, bc);
	}

	/* From here on the models fall behind. */
	same_future(r, &p, b, 300);
	if (p.child != NULL) {
		same_future(r, p.child, bc, 100);
		same_spaces(r, "parent after child calls", p.s, b, 0);
		EXPECT_RC(r, potad_space_destroy(p.child->s), R_OK,
			  "space_destroy of a child");
		EXPECT_RC(r, potad_space_destroy(bc), R_OK,
			  "space_destroy of the child copy");
		ref_fini(&p.child->m);
	}
	EXPECT_RC(r, potad_space_destroy(p.s), R_OK, "space_destroy");
	EXPECT_RC(r, potad_space_destroy(b), R_OK, "space_destroy of the copy");
	ref_fini(&p.m);
	free(sp.ext.v);
	free(sp.poison.v);
	free(sp.dirty.v);
	free(sc.ext.v);
	free(sc.poison.v);
	free(sc.dirty.v);
	free(lv.v);
}

/*
 * Test cases.
 */

/* The oracle is only as good as the model, so the model is checked first
 * against a brute-force map of tiny spaces: one byte per unit. */
enum { HELD = 1, BAD = 2, DIRTY = 4 };

struct unit_map {
	uint64_t first, n;
	size_t live;
	unsigned char u[160];
};

/* One random change, made to the model and to the map alike. */
static void map_change(struct run *r, struct ref_model *m, struct unit_map *map)
{
	uint64_t s = below(r, map->n), l = between(r, 1, map->n - s);
	uint64_t pick = below(r, 12), fresh = 0, u;
	int busy = 0;

	for (u = s; u < s + l; u++)
		busy |= map->u[u] & (HELD | BAD);
	if (pick < 5 && !busy) {
		struct ref_extent x = {.start = map->first + s,
				       .end = map->first + s + l};

		ref_insert(m, &x);
		for (u = s; u < s + l; u++)
			map->u[u] = HELD;
		map->live++;
	} else if (pick < 8 && m->n_ext > 0) {
		size_t i = below(r, m->n_ext);
		int dirty = chance(r, 500);

		for (u = m->ext[i].start; u < m->ext[i].end; u++) {
			unsigned char *c = &map->u[u - map->first];

			*c &= ~HELD;
			if (dirty && !(*c & BAD))
				*c |= DIRTY;
		}
		ref_remove(m, i, dirty);
		map->live--;
	} else if (pick >= 10) {
		int clean = chance(r, 500);

		for (u = s; u < s + l; u++)
			if (clean)
				map->u[u] &= ~DIRTY;
			else if (!(map->u[u] & (HELD | BAD)))
				map->u[u] |= DIRTY;
		ref_set_clean(m, map->first + s, map->first + s + l, clean);
	} else if (pick == 9) {
		if (l > 8)
			l = between(r, 1, 8);
		for (u = s; u < s + l; u++)
			fresh += !(map->u[u] & BAD);
		EXPECT(r,
		       ref_poison(m, map->first + s, map->first + s + l) ==
			   fresh,
		       "model: ref_poison does not count %" PRIu64 " new units",
		       fresh);
		for (u = s; u < s + l; u++)
			map->u[u] = (map->u[u] | BAD) & ~DIRTY;
	}
}

/* The maximal aligned blocks [a, b) is cut into. */
static uint64_t map_pieces(uint64_t a, uint64_t b)
{
	uint64_t n = 0;

	while (a < b) {
		uint64_t k = 1;

		while (a % (2 * k) == 0 && a + 2 * k <= b)
			k *= 2;
		a += k;
		n++;
	}
	return n;
}

/* Everything the model answers must agree with the map. */
static void map_compare(struct run *r, const struct ref_model *m,
			const struct unit_map *map)
{
	uint64_t held = 0, bad = 0, free_units = 0, run = 0, best = 0;
	uint64_t lo, hi, len, align, s, l, u, at = 0, want_at = 0;
	struct ref_stats st;
	int want, any_held = 0, any_bad = 0, any_dirty = 0;

	uint64_t dirty = 0, fb = 0, db = 0, mfb, mdb, ws = 0, we = 0, a, b;

	for (u = 0; u < map->n; u++) {
		int fr = (map->u[u] & (HELD | BAD)) == 0;

		held += (map->u[u] & HELD) != 0;
		bad += (map->u[u] & BAD) != 0;
		dirty += (map->u[u] & DIRTY) != 0;
		free_units += fr;
		run = fr ? run + 1 : 0;
		best = run > best ? run : best;
		EXPECT(r, fr || !(map->u[u] & DIRTY),
		       "map: unit %" PRIu64 " is dirty and not free", u);
	}
	/* Blocks: runs of free units in one state, in absolute units. */
	for (u = 0; u < map->n;) {
		uint64_t v = u;

		if (map->u[u] & (HELD | BAD)) {
			u++;
			continue;
		}
		while (v < map->n && map->u[v] == map->u[u])
			v++;
		fb += map_pieces(map->first + u, map->first + v);
		if (map->u[u] & DIRTY)
			db += map_pieces(map->first + u, map->first + v);
		u = v;
	}
	ref_stats(m, &st);
	EXPECT(r,
	       st.units == map->n && st.used_units == held &&
		   st.poison_units == bad && st.free_units == free_units &&
		   st.extents == map->live && st.dirty_units == dirty,
	       "model: stats disagree with the unit map");
	ref_blocks(m, &mfb, &mdb, &a);
	EXPECT(r, a == best,
	       "model: ref_blocks finds a longest run of %" PRIu64
	       ", the map %" PRIu64,
	       a, best);
	EXPECT(r, mfb == fb && mdb == db,
	       "model: %" PRIu64 " free and %" PRIu64
	       " dirty blocks, the map's %" PRIu64 " and %" PRIu64,
	       mfb, mdb, fb, db);
	EXPECT(r, ref_largest_free_run(m) == best,
	       "model: largest free run %" PRIu64 ", the map's %" PRIu64,
	       ref_largest_free_run(m), best);

	/* Extents only ever go onto unpoisoned units, so an extent holds a
	 * poisoned unit exactly when poison reached it. */
	for (size_t i = 0; i < m->n_ext; i++) {
		int hit = 0;

		for (u = m->ext[i].start; u < m->ext[i].end; u++)
			hit |= (map->u[u - map->first] & BAD) != 0;
		EXPECT(r,
		       hit == !!(m->ext[i].desc.flags & POTAD_EXTENT_POISONED),
		       "model: extent %zu's poisoned flag is wrong", i);
	}

	lo = map->first + below(r, map->n + 1);
	hi = between(r, lo, map->first + map->n);
	len = between(r, 1, map->n);
	align = 1ull << below(r, 9);
	want = 0;
	for (u = (lo + align - 1) & ~(align - 1); !want && u + len <= hi;
	     u += align) {
		uint64_t v = u;

		while (v < u + len && !(map->u[v - map->first] & (HELD | BAD)))
			v++;
		if (v == u + len) {
			want = 1;
			want_at = u;
		}
	}
	EXPECT(r,
	       ref_fit(m, lo, hi, len, align, &at) == want &&
		   (!want || at == want_at),
	       "model: ref_fit(%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
	       ") disagrees with the map (%d at %" PRIu64 ")",
	       lo, hi, len, align, want, want_at);
	want = 0;
	for (u = (lo + align - 1) & ~(align - 1); !want && u + len <= hi;
	     u += align) {
		uint64_t v = u;

		while (v < u + len && map->u[v - map->first] == 0)
			v++;
		if (v == u + len) {
			want = 1;
			want_at = u;
		}
	}
	EXPECT(r,
	       ref_fit_clean(m, lo, hi, len, align, &at) == want &&
		   (!want || at == want_at),
	       "model: ref_fit_clean(%" PRIu64 ", %" PRIu64 ", %" PRIu64
	       ", %" PRIu64 ") disagrees with the map (%d at %" PRIu64 ")",
	       lo, hi, len, align, want, want_at);

	/* The first dirty run that ends after a random unit. */
	u = below(r, map->n + 2);
	for (a = u < map->n ? u : map->n; a < map->n; a++)
		if (map->u[a] & DIRTY)
			break;
	if (a < map->n) {
		for (ws = a; ws > 0 && (map->u[ws - 1] & DIRTY); ws--)
			;
		for (we = a; we < map->n && (map->u[we] & DIRTY); we++)
			;
	}
	want = a < map->n;
	EXPECT(r,
	       ref_dirty_next(m, map->first + u, &a, &b) == want &&
		   (!want || (a == map->first + ws && b == map->first + we)),
	       "model: ref_dirty_next(%" PRIu64 ") disagrees with the map",
	       map->first + u);

	s = below(r, map->n);
	l = between(r, 1, map->n - s);
	for (u = s; u < s + l; u++) {
		any_held |= (map->u[u] & HELD) != 0;
		any_bad |= (map->u[u] & BAD) != 0;
		any_dirty |= (map->u[u] & DIRTY) != 0;
	}
	EXPECT(r,
	       ref_any_dirty(m, map->first + s, map->first + s + l) ==
		   any_dirty,
	       "model: ref_any_dirty disagrees with the map");
	EXPECT(r,
	       ref_any_held(m, map->first + s, map->first + s + l) == any_held,
	       "model: ref_any_held disagrees with the map");
	EXPECT(r,
	       ref_any_poisoned(m, map->first + s, map->first + s + l) ==
		   any_bad,
	       "model: ref_any_poisoned disagrees with the map");
	EXPECT(r,
	       (ref_find_unit(m, map->first + s) >= 0) ==
		   ((map->u[s] & HELD) != 0),
	       "model: ref_find_unit disagrees with the map");
}

START_TEST(test_model)
{
	struct run r;

	run_init(&r, "model", 1);
	for (unsigned round = 0; round < 1000; round++) {
		struct unit_map map = {0};
		struct ref_model m;

		map.first = below(&r, 1000);
		map.n = between(&r, 1, sizeof(map.u));
		ref_init(&m, map.first, map.n, 0);
		for (unsigned k = 0; k < 200; k++, r.step++) {
			map_change(&r, &m, &map);
			map_compare(&r, &m, &map);
		}
		ref_fini(&m);
	}
	run_fini(&r);
}
END_TEST

START_TEST(test_small_byte)
{
	run_rounds("small_byte", shape_small_byte, 1000000, 20000, 4);
}
END_TEST

START_TEST(test_small_page)
{
	run_rounds("small_page", shape_small_page, 1000000, 20000, 4);
}
END_TEST

START_TEST(test_odd)
{
	run_rounds("odd", shape_odd, 300000, 40000, 32);
}
END_TEST

START_TEST(test_huge)
{
	run_rounds("huge", shape_huge, 500000, 8000, 64);
}
END_TEST

START_TEST(test_child)
{
	struct run r;
	struct rig parent, child;
	struct shape sh;

	run_init(&r, "child", 600000);
	while (r.step < r.steps) {
		sh.shift = chance(&r, 500) ? 12 : 9;
		sh.base = (2 * below(&r, 1u << 24) + 1) << sh.shift;
		sh.size = between(&r, 4096, 65536) << sh.shift;
		rig_open(&r, &parent, "parent", &sh, 16);
		if (chance(&r, 500))
			maybe_cache(&r, &parent);
		for (uint64_t k = 0; k < 30000 && r.step < r.steps;
		     k++, r.step++) {
			if (parent.child == NULL && chance(&r, 20)) {
				child_open(&r, &parent, &child);
				if (parent.child != NULL && chance(&r, 500))
					maybe_cache(&r, &child);
			} else if (parent.child != NULL && chance(&r, 1))
				child_close(&r, &parent);
			if (parent.child != NULL && chance(&r, 500))
				step(&r, parent.child);
			else
				step(&r, &parent);
			verify(&r, &parent, 0);
		}
		if (parent.child != NULL)
			child_close(&r, &parent);
		rig_close(&r, &parent);
	}
	run_fini(&r);
}
END_TEST

START_TEST(test_replay)
{
	struct run r;

	run_init(&r, "replay", 1000000);
	while (r.step < r.steps)
		replay_round(&r);
	run_fini(&r);
}
END_TEST

static void add_case(Suite *su, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	/* Check's default of 4 s is for unit tests; make check raises it
	 * through CK_DEFAULT_TIMEOUT, a run by hand needs it here. */
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test);
	suite_add_tcase(su, tc);
}

int main(void)
{
	Suite *su = suite_create("random");
	SRunner *sr;
	const char *v;
	int failed;

	v = getenv("POTAD_SEED");
	if (v != NULL && *v)
		seed_base = strtoull(v, NULL, 0);
	v = getenv("POTAD_RANDOM_OPS");
	if (v != NULL && *v)
		ops_scale = strtod(v, NULL);
	v = getenv("POTAD_TRACE");
	if (v != NULL && *v)
		trace_from = strtoull(v, NULL, 0);
	if (!(ops_scale > 0)) {
		fprintf(stderr, "check_random: POTAD_RANDOM_OPS must be a "
				"positive scale factor\n");
		return EXIT_FAILURE;
	}
	printf("check_random: POTAD_SEED=%#" PRIx64 " POTAD_RANDOM_OPS=%g\n",
	       seed_base, ops_scale);
	fflush(stdout);

	add_case(su, "model", test_model);
	add_case(su, "small_byte", test_small_byte);
	add_case(su, "small_page", test_small_page);
	add_case(su, "odd", test_odd);
	add_case(su, "huge", test_huge);
	add_case(su, "child", test_child);
	add_case(su, "replay", test_replay);

	sr = srunner_create(su);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
