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
 * - W1-W4 and D1 run their spaces as potad runs every space, with the
 *   reuse cache on at POTAD_CACHE_UNITS and POTAD_CACHE_ENTRIES
 *   (potad_space_set_cache(3)); --no-cache leaves it off, the engine's
 *   default.  The other workloads never turn it on: R1 and L1 restore
 *   and list, I1 replays index operations, and X2 checks its placements
 *   against the engine's own best fit.
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
 * D1 isolate  W1's setup and stream in a space run as the daemon runs an
 *             isolated device: every free comes back dirty
 *             (POTAD_FREE_DIRTY) and every allocation takes clean units
 *             only (POTAD_ALLOC_CLEAN).  When one is refused (enospc=),
 *             the dirty runs from a rolling cursor on are marked clean, as
 *             completed discards are, until 64 GiB have been (discards=:
 *             the potad_set_clean() calls), and it is retried.  An
 *             operation is one allocation, free or potad_set_clean().
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
 *             fragments, placed or refused alike by both.  same_clean:
 *             the same for clean requests (POTAD_ALLOC_CLEAN) in a stream
 *             whose frees are half dirty and whose dirty runs are now and
 *             then marked clean: a dirty free leaves a mark in refseg.c's
 *             tree, so that its gaps are the clean free space.  It has
 *             none of the engine's other paths (plain requests over dirty
 *             space, poison, child spaces, restore): a measure of what
 *             the engine would gain from this shape, not a finished
 *             engine.
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

#include "engine-bench.h"



static int opt_json;
static int opt_cache = 1; /* --no-cache clears it */

/* Run the space as potad runs its spaces: with the reuse cache on, at the
 * daemon's limits (unless --no-cache). */
static void as_daemon(struct run *r)
{
	int rc;

	if (!opt_cache)
		return;
	rc = potad_space_set_cache(r->s,
				   (uint64_t)POTAD_CACHE_UNITS << GRANULE_SHIFT,
				   POTAD_CACHE_ENTRIES);
	if (rc < 0)
		engine_error(r, "potad_space_set_cache", rc);
}

/* W1's space and its live extents (setup): the handles in *h, the
 * lengths in *len. */
static void w1_setup(struct run *r, uint64_t live, uint64_t **h, uint64_t **len)
{
	*h = xcalloc(live, sizeof(**h));
	*len = xcalloc(live, sizeof(**len));
	space_new(r, 0, TIB);
	as_daemon(r);
	set_phase(r, "setup");
	w1_fill(r, live, *h, *len, NULL);
}

static void wl_churn(struct run *r, struct result *res, int quick)
{
	const uint64_t live = 100000;
	uint64_t steps = 2000000 / (quick ? 10 : 1), i, *h, *len;

	w1_setup(r, live, &h, &len);
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
	as_daemon(r);
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
	as_daemon(r);

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
	as_daemon(r);

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

/* Mark the dirty runs from *cursor on clean, as a discard that completes
 * does, until at least `bytes` have been, wrapping around once. */
static void discard_some(struct run *r, struct result *res, uint64_t *cursor,
			 uint64_t bytes)
{
	uint64_t done = 0, a, l;
	int wrapped = 0, rc;

	while (done < bytes) {
		if (potad_dirty_next(r->s, *cursor, &a, &l) < 0) {
			if (wrapped++)
				break;
			*cursor = 0;
			continue;
		}
		rc = potad_set_clean(r->s, a, l, 1);
		count_op(r);
		if (rc < 0)
			engine_error(r, "potad_set_clean", rc);
		res->discards++;
		done += l;
		*cursor = a + l;
	}
	if (done == 0)
		die("%s: a clean allocation was refused with no dirty space "
		    "left to discard",
		    r->wl);
}

static void wl_isolate(struct run *r, struct result *res, int quick)
{
	const uint64_t live = 100000;
	uint64_t steps = 2000000 / (quick ? 10 : 1), i, *h, *len, cursor = 0;
	struct potad_alloc_req req;
	struct potad_extent e;
	int rc;

	w1_setup(r, live, &h, &len);
	set_phase(r, "measure");
	memset(&req, 0, sizeof(req));
	req.flags = POTAD_ALLOC_CLEAN;
	clock_start(r);
	for (i = 0; i < steps; i++) {
		uint64_t v = next_pick(r, live);

		rc = potad_free_ex(r->s, h[v], POTAD_FREE_DIRTY, NULL);
		count_op(r);
		if (rc < 0)
			engine_error(r, "potad_free_ex", rc);
		r->used -= len[v];
		req.size = next_size(r);
		while ((rc = potad_alloc(r->s, &req, &e)) == -ENOSPC) {
			count_op(r);
			res->enospc++;
			discard_some(r, res, &cursor, 64 * GIB);
		}
		count_op(r);
		if (rc < 0)
			engine_error(r, "potad_alloc(clean)", rc);
		r->used += e.length;
		h[v] = e.handle;
		len[v] = e.length;
	}
	clock_stop(r);
	finish_measure(r, res);
	free(h);
	free(len);
}

static const struct workload workloads[] = {
	{ "W1", "churn", wl_churn },
	{ "W2", "fill", wl_fill },
	{ "W3", "aligned", wl_aligned },
	{ "W4", "aging", wl_aging },
	{ "D1", "isolate", wl_isolate },
	{ "R1", "restore", wl_restore },
	{ "L1", "list", wl_list },
	{ "I1", "index", wl_index },
	{ "X1", "reference", wl_reference },
	{ "X2", "segments", wl_segments },
};

#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* One workload's own figure: `,"key":value` in JSON, ` key=value` in
 * text. */
static void put_kv(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put_kv(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf(opt_json ? ",\"%s\":" : " %s=", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

/* The figures only some workloads have, after the common ones. */
static void put_extras(const struct workload *w, const struct result *last)
{
	if (w->fn == wl_churn || w->fn == wl_fill || w->fn == wl_aligned ||
	    w->fn == wl_aging || w->fn == wl_isolate)
		put_kv("cache", opt_json ? "\"%s\"" : "%s",
		       opt_cache ? "on" : "off");
	if (w->fn == wl_aging) {
		put_kv("enospc", "%llu", (unsigned long long)last->enospc);
		put_kv("frag", "%.4f", last->frag);
		put_kv("largest_free", "%llu",
		       (unsigned long long)last->largest_free);
		put_kv("util_256m", "%.4f", last->util_256m);
	}
	if (w->fn == wl_isolate) {
		put_kv("enospc", "%llu", (unsigned long long)last->enospc);
		put_kv("discards", "%llu", (unsigned long long)last->discards);
	}
	if (w->fn == wl_restore) {
		put_kv("total_ms", "%.1f", last->total_ms);
		put_kv("first_alloc_ms", "%.2f", last->first_alloc_ms);
	}
	if (w->fn == wl_list)
		put_kv("next_ns", "%.1f", last->next_ns);
	if (w->fn == wl_reference)
		put_kv("indexed_ns", "%.1f", last->indexed_ns);
	if (w->fn == wl_segments) {
		put_kv("aligned_ns", "%.1f", last->aligned_ns);
		put_kv("aging_ns", "%.1f", last->aging_ns);
		put_kv("aging_enospc", "%llu",
		       (unsigned long long)last->aging_enospc);
		put_kv("aging_util_256m", "%.4f", last->aging_util_256m);
		put_kv("aging_bytes_per_extent", "%.1f", last->aging_bpe);
		put_kv("same_steps", "%llu",
		       (unsigned long long)last->same_steps);
		put_kv("same_mixed", "%llu",
		       (unsigned long long)last->same_mixed);
		put_kv("same_clean", "%llu",
		       (unsigned long long)last->same_clean);
	}
}

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
		put_extras(w, last);
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
		put_extras(w, last);
		printf("\n");
	}
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: potad-bench-engine [--runs N] [--quick]\n"
"                          [--only W1|W2|W3|W4|D1|R1|L1|I1|X1|X2]\n"
"                          [--json] [--no-cache]\n"
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
"  D1 isolate  W1's stream with every free dirty and every allocation\n"
"              clean-only, as in an isolated device's space; a refused\n"
"              one marks 64 GiB of dirty runs clean (a discard) and\n"
"              retries (an operation: alloc, free or set_clean)\n"
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
"              ranges, top-down and claims checked against the engine;\n"
"              same_clean: clean requests among dirty frees, the same\n"
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
"  enospc            D1: clean allocations refused; discards: the\n"
"                    potad_set_clean calls that made room for them\n"
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
"  cache             W1-W4, D1: whether the reuse cache was on\n"
"\n"
"Options:\n"
"  --runs N    runs per workload, each on a fresh space (default 5)\n"
"  --quick     divide step counts by 10, for a smoke run\n"
"  --only W    run one workload (W1..W4, D1, R1, L1, I1, X1, X2 or its\n"
"              name)\n"
"  --json      one JSON object per line instead of key=value pairs\n"
"  --no-cache  run W1-W4 and D1 without the reuse cache (the engine's\n"
"              default) instead of at the limits potad sets on every\n"
"              space (POTAD_CACHE_UNITS, POTAD_CACHE_ENTRIES)\n"
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
		{ "no-cache", no_argument, NULL, 'n' },
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
		case 'n':
			opt_cache = 0;
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
				"(W1, W2, W3, W4, D1, R1, L1, I1, X1 or X2)\n",
			only);
		return 2;
	}
	return EXIT_SUCCESS;
}
