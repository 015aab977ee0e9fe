/* SPDX-License-Identifier: MIT */
/* The engine benchmark's yardsticks: W1's stream (and W3's, W4's) through
 * the reference allocator of reftlsf.c (X1) and through the candidate
 * shape of refseg.c beside the engine (X2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-bench.h"
#include "refseg.h"  /* X2's candidate design */
#include "reftlsf.h" /* X1's reference allocator */

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
		x->d[n] =
		    (struct refdesc){(uint32_t)x->a.node[n].off, (uint32_t)len,
				     0, 0, x->d[n].word + 1};
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
	struct refstate x = {.indexed = indexed};
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
void wl_reference(struct run *r, struct result *res, int quick)
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

/* The end of an X2 pass: refseg.c's tree checked and let go, and the
 * engine's space too when it ran beside it. */
static void seg_done(struct run *r, struct refseg *t, const char *pass,
		     bool check)
{
	const char *why = refseg_check(t);

	if (why)
		die("%s: run %d, %s: %s", r->wl, r->runno, pass, why);
	refseg_fini(t);
	if (check)
		space_check_destroy(r);
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
	*bytes = refseg_bytes(&t);
	seg_done(r, &t, "churn", check);
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
	seg_done(r, &t, "rings", check);
	return (double)r->ns / (double)(4 * iters);
}

/* W4's aging through refseg.c: fill 1 TiB to 90%, churn `goal` bytes,
 * then 256 MiB extents until one fails.  Returns the churn's ns per
 * operation; *enospc, *util and *bpe get the refusals, the utilisation
 * after the 256 MiB extents and the bytes per live extent then.  With check,
 * the engine takes the same requests beside it: every placement and every
 * refusal must agree. */
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
		len =
		    phase == 2 ? (uint32_t)(256 * MIB >> GRANULE_SHIFT) : want;
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
	seg_done(r, &t, "aging", check);
	free(slot);
	free(lens);
	free(h);
	return cops ? (double)r->ns / (double)cops : 0;
}

/*
 * A mixed stream through refseg.c and the engine side by side, untimed:
 * frees, plain, range-bounded and top-down allocations at random
 * alignments, and fixed claims, in a space of 2^16 units at base 1 (a
 * small one, so that it fills, fragments and refuses).  Every placement
 * and every refusal must agree.  Returns the requests compared.
 *
 * With clean, the clean half of the port bench/NOTES.md plans for clean
 * and dirty: half the frees are dirty and leave a mark in refseg.c's
 * tree where the extent was, so that its gaps are the clean free space;
 * now and then the dirty run at a random place is marked clean, as a
 * discard that completes does, which takes its marks out; and every
 * request is clean (POTAD_ALLOC_CLEAN), so refseg.c must place it where
 * the engine does among the dirty units.
 */
static uint64_t seg_stream(struct run *r, uint64_t steps, bool clean)
{
	enum { CAP = 1 << 15 };
	const uint32_t ub = 1, units = 1u << 16;
	const char *pass = clean ? "clean" : "mixed";
	static uint64_t h[CAP];
	static uint32_t sl[CAP];
	uint64_t i, compared = 0, off, len;
	uint32_t n = 0;
	struct refseg t;
	int rc;

	if (refseg_init(&t, ub, ub + units, CAP))
		die("%s: out of memory", r->wl);
	space_new(r, (uint64_t)ub << GRANULE_SHIFT,
		  (uint64_t)units << GRANULE_SHIFT);
	stream_init(r->pk, PICK_SEED + clean, 0);
	set_phase(r, clean ? "clean (beside the engine)"
			   : "mixed (beside the engine)");
	for (i = 0; i < steps; i++) {
		uint64_t op = next_pick(r, 100), kind = next_pick(r, 10);
		uint32_t L =
		    1 + (uint32_t)next_pick(r, 1ull << next_pick(r, 14));
		uint32_t A = next_pick(r, 3) ? 1 : 1u << next_pick(r, 13);
		uint32_t lo = ub, hi = ub + units, q;
		bool down = kind == 3 || kind == 4, claim = kind == 5;
		struct potad_alloc_req req = {0};
		struct potad_extent e;

		if (n && (op < 30 || n == CAP)) {
			uint64_t v = next_pick(r, n);
			bool dirty = clean && next_pick(r, 2);

			rc = potad_free_ex(r->s, h[v],
					   dirty ? POTAD_FREE_DIRTY : 0, NULL);
			count_op(r);
			if (rc < 0)
				engine_error(r, "potad_free_ex", rc);
			if (dirty)
				refseg_free_dirty(&t, sl[v]);
			else
				refseg_free(&t, sl[v]);
			n--;
			h[v] = h[n];
			sl[v] = sl[n];
			continue;
		}
		if (clean && op < 35) {
			off = (uint64_t)(ub + next_pick(r, units))
			      << GRANULE_SHIFT;
			if (potad_dirty_next(r->s, off, &off, &len) < 0)
				continue;
			rc = potad_set_clean(r->s, off, len, 1);
			count_op(r);
			if (rc < 0)
				engine_error(r, "potad_set_clean", rc);
			refseg_unmark(&t, (uint32_t)(off >> GRANULE_SHIFT),
				      (uint32_t)((off + len) >> GRANULE_SHIFT));
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
			req.at = (uint64_t)lo << GRANULE_SHIFT;
			req.flags = POTAD_ALLOC_FIXED;
			q = refseg_claim(&t, lo, L, 0, 0);
		} else {
			if (L > hi - lo)
				continue;
			req.align = (uint64_t)A << GRANULE_SHIFT;
			req.min = lo > ub ? (uint64_t)lo << GRANULE_SHIFT : 0;
			req.max =
			    hi < ub + units ? (uint64_t)hi << GRANULE_SHIFT : 0;
			req.flags = down ? POTAD_ALLOC_TOPDOWN : 0;
			q = refseg_alloc_in(&t, L, A, lo, hi, down, 0, 0);
		}
		req.size = (uint64_t)L << GRANULE_SHIFT;
		if (clean)
			req.flags |= POTAD_ALLOC_CLEAN;
		rc = potad_alloc(r->s, &req, &e);
		count_op(r);
		compared++;
		if ((rc == 0) != (q != REFSEG_NIL) ||
		    (rc == 0 && e.offset >> GRANULE_SHIFT != t.desc[q].start))
			die("%s: %s, request %llu (%u units at %u, [%u, "
			    "%u)%s%s): "
			    "the engine says %d at unit %llu, refseg.c %s %u",
			    r->wl, pass, (unsigned long long)i, L, A, lo, hi,
			    down ? ", top-down" : "", claim ? ", claim" : "",
			    rc,
			    rc ? 0ull
			       : (unsigned long long)(e.offset >>
						      GRANULE_SHIFT),
			    q == REFSEG_NIL ? "refuses" : "puts it at",
			    q == REFSEG_NIL ? 0 : t.desc[q].start);
		if (rc == 0) {
			h[n] = e.handle;
			sl[n++] = q;
		}
	}
	seg_done(r, &t, pass, true);
	return compared;
}

/* W1's stream through the candidate design of refseg.c: the extents in
 * one address-ordered B+ tree that is also the index, free space as the
 * gaps between them, buddy orders summarised per node.  It places every
 * extent where the engine does, which a second, shorter pass beside the
 * engine checks (same_steps); it has descriptors and lookup, but not the
 * engine's other paths. */
void wl_segments(struct run *r, struct result *res, int quick)
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
	res->aging_ns =
	    seg_aging(r, 3 * TIB / (quick ? 10 : 1), false, &res->aging_enospc,
		      &res->aging_util_256m, &res->aging_bpe);
	{
		uint64_t enospc;
		double util, bpe;

		seg_aging(r, 3 * TIB / (quick ? 100 : 10), true, &enospc, &util,
			  &bpe);
	}
	res->same_mixed = seg_stream(r, quick ? 20000 : 200000, false);
	res->same_clean = seg_stream(r, quick ? 20000 : 200000, true);
	r->meta_peak = res->extent_bytes; /* not the engine's */
}
