/* SPDX-License-Identifier: MIT */
/* Allocation: where an extent goes, and taking it out of the free blocks. */
#include <errno.h>

#include "fit.h"
#include "internal.h"

/*
 * The free blocks are kept as space.c describes: one sparse bitmap tree per
 * order, and a mask of the orders that hold any block, so "the smallest
 * free block of order >= k" is one ctz plus one walk down a tree.
 *
 * Allocation takes that block at its lowest (or, top-down, highest)
 * address and carves the extent out of it: what is left on either side is
 * cut into maximal aligned blocks, which cannot merge with anything because
 * their buddies lie inside the block just taken.  That is the buddy split
 * and alloc_pages_exact()'s tail trimming in one step.  When no block of the
 * needed order exists, the extent is assembled from a run of adjacent free
 * blocks (find_run below); this is the only search that may visit many
 * blocks, and it starts from blocks big enough to matter.
 */

/* Whether every unit of [a, b) is free (and clean, if clean). */
static bool range_free(const struct potad_space *s, uint64_t a, uint64_t b,
		       bool clean)
{
	uint64_t u;
	unsigned k;

	while (a < b) {
		if (!potad__fb_find(s, a, &u, &k) ||
		    (clean && potad__fb_dirty(s, u, k)))
			return false;
		a = u + pow2(k);
	}
	return true;
}

/*
 * Clean searches.  A clean request sees only the clean free blocks, which
 * have trees of their own (see space.c), and free runs that end where a
 * dirty block begins as well as where an extent or poison does.  With no
 * dirty block anywhere all of this reduces to the plain searches.
 */

/* The orders a request may take a block of. */
static inline uint64_t usable(const struct potad_space *s, bool clean)
{
	return clean ? s->cnonempty : s->nonempty;
}

/* The first key of order j from `from` on (down: at or below it) in one
 * state's tree. */
static inline bool seek_in(const struct rtree *t, const struct rpool *nodes,
			   uint64_t from, bool down, uint64_t *key)
{
	return down ? potad__rtree_prev(t, nodes, NULL, from, key, NULL)
		    : potad__rtree_next(t, nodes, NULL, from, key, NULL);
}

/* The first key from `from` on (down: at or below it) of a free block of
 * order j, a clean one if clean.  A plain request looks in both trees of
 * an order that has dirty blocks and takes the nearer key. */
static bool fb_seek(const struct potad_space *s, unsigned j, uint64_t from,
		    bool down, bool clean, uint64_t *key)
{
	uint64_t dk;
	bool c, d;

	if (clean || !(s->dnonempty & pow2(j)))
		return seek_in(&s->clean[j], &s->nodes, from, down, key);
	c = (s->cnonempty & pow2(j)) &&
	    seek_in(&s->clean[j], &s->nodes, from, down, key);
	d = seek_in(&s->dirty[j], &s->nodes, from, down, &dk);
	if (d && (!c || (down ? dk > *key : dk < *key)))
		*key = dk;
	return c || d;
}

/* The lowest free block, dirty or clean as asked, that starts at or after
 * x: one search per order that has such blocks. */
bool potad__next_block(const struct potad_space *s, uint64_t x, bool dirty,
		       uint64_t *u, unsigned *k)
{
	bool found = false;

	if (x >= s->ue)
		return false;
	for (uint64_t m = dirty ? s->dnonempty : s->cnonempty; m; m &= m - 1) {
		unsigned j = ctz64(m);
		uint64_t i = (x >> j) + ((x & (pow2(j) - 1)) != 0), key, v;

		if (!seek_in(FB_TREE(s, dirty, j), &s->nodes, i - forigin(s, j),
			     false, &key))
			continue;
		v = funit(s, key, j);
		if (!found || v < *u) {
			*u = v;
			*k = j;
			found = true;
		}
	}
	return found;
}

/* The end of the last dirty block below a, or ub; for a clean unit a. */
static uint64_t dirty_floor(const struct potad_space *s, uint64_t a)
{
	uint64_t x = s->ub, key, e;

	if (a <= s->ub)
		return x;
	for (uint64_t m = s->dnonempty; m; m &= m - 1) {
		unsigned j = ctz64(m);

		if (!potad__rtree_prev(&s->dirty[j], &s->nodes, NULL,
				       fkey(s, a - 1, j), &key, NULL))
			continue;
		e = funit(s, key, j) + pow2(j);
		if (e > x)
			x = e;
	}
	return x;
}

/* The start of the first dirty block at or after b, or ue. */
static uint64_t dirty_ceil(const struct potad_space *s, uint64_t b)
{
	uint64_t x = s->ue, u;
	unsigned k;

	if (potad__next_block(s, b, true, &u, &k))
		x = u;
	return x;
}

/* The first (or last) block of order j that can hold the extent inside
 * [lo, hi).  Only two blocks can be the answer: the one that holds the
 * range's first (last) unit, or the next one inward, which is aligned well
 * enough that if it does not fit no later one does.  For a clean request
 * the same holds of clean blocks. */
static bool fit_order(const struct potad_space *s, unsigned j, uint64_t L,
		      uint64_t A, uint64_t lo, uint64_t hi, bool down,
		      bool clean, uint64_t *u, uint64_t *p)
{
	uint64_t edge = down ? hi - 1 : lo, v = edge & ~(pow2(j) - 1), key;

	if (potad__fb_test(s, v, j) && !(clean && potad__fb_dirty(s, v, j)) &&
	    fit(lo > v ? lo : v, hi < v + pow2(j) ? hi : v + pow2(j), L, A,
		down, p)) {
		*u = v;
		return true;
	}
	key = fkey(s, v, j);
	if (down ? key == 0 || !fb_seek(s, j, key - 1, true, clean, &key)
		 : !fb_seek(s, j, key + 1, false, clean, &key))
		return false;
	v = funit(s, key, j);
	if (down ? v + pow2(j) <= lo : v >= hi)
		return false;
	if (!fit(lo > v ? lo : v, hi < v + pow2(j) ? hi : v + pow2(j), L, A,
		 down, p))
		return false;
	*u = v;
	return true;
}

/*
 * Run edges.  Between two neighbouring extents every unit is free unless it
 * is poisoned, so the free run around a free block ends where the nearest
 * extent (or poisoned range) begins, and one index search finds that: no
 * need to probe the free trees order by order.  A clean run also ends at
 * the nearest dirty block, one search per order that has dirty blocks.
 */

/* The end of the last extent that starts below a, or ub. */
static uint64_t extent_floor(const struct potad_space *s, uint64_t a)
{
	uint64_t key;
	uint32_t slot;

	if (a > s->ub && potad__rtree_prev(&s->index, &s->inodes, &s->vals,
					   a - 1 - s->ub, &key, &slot))
		return desc_end(s, slot);
	return s->ub;
}

/* The start of the first extent at or after b, or ue. */
static uint64_t extent_ceil(const struct potad_space *s, uint64_t b)
{
	uint64_t key;
	uint32_t slot;

	if (b < s->ue && potad__rtree_next(&s->index, &s->inodes, &s->vals,
					   b - s->ub, &key, &slot))
		return s->ub + key;
	return s->ue;
}

/* The first unit of the free run holding free unit a (not below lo). */
static uint64_t run_floor(const struct potad_space *s, uint64_t a, uint64_t lo)
{
	uint64_t x = extent_floor(s, a);

	if (s->npoison)
		x = potad__poison_floor(s, x, a);
	return x < lo ? lo : x;
}

/* One past the last unit of the free run holding free unit b - 1 (not
 * above hi). */
static uint64_t run_ceil(const struct potad_space *s, uint64_t b, uint64_t hi)
{
	uint64_t x = extent_ceil(s, b);

	if (s->npoison)
		x = potad__poison_ceil(s, b, x);
	return x > hi ? hi : x;
}

/* run_floor() of a clean unit a, for a clean request: the clean run. */
static uint64_t span_floor(const struct potad_space *s, uint64_t a, uint64_t lo,
			   bool clean)
{
	uint64_t x = run_floor(s, a, lo), y;

	if (clean && s->dirty_blocks && (y = dirty_floor(s, a)) > x)
		x = y;
	return x;
}

static uint64_t span_ceil(const struct potad_space *s, uint64_t b, uint64_t hi,
			  bool clean)
{
	uint64_t x = run_ceil(s, b, hi), y;

	if (clean && s->dirty_blocks && (y = dirty_ceil(s, b)) < x)
		x = y;
	return x;
}

/*
 * Take [a, b) out of [lo, hi), a stretch known to be wholly free whose
 * ends are block boundaries.  Merging keeps such a stretch cut into its
 * maximal aligned blocks, so those blocks are computed, not searched for.
 * Where the space has dirty blocks or poison, the stretch may not be one
 * state or one run, so each block is tested and any surprise (a stretch
 * that changes from clean to dirty is one) falls back to the general
 * path; otherwise the callers' stretch is the run between two extents and
 * the test would only repeat what merging guarantees.
 */
static int take_in_run(struct potad_space *s, uint64_t a, uint64_t b,
		       uint64_t lo, uint64_t hi)
{
	uint64_t x, ra = a, rb = b;
	unsigned k = 0;
	bool fd = false, ld = false;
	int rc;

	for (x = lo; x < b; x += pow2(k)) {
		k = piece(x, hi);
		if (x + pow2(k) <= a)
			continue;
		if (x < a)
			ra = x;
		rb = x + pow2(k);
		/* Tested only where the stretch may surprise (see above). */
		if ((s->dirty_blocks || s->npoison) &&
		    !potad__fb_test(s, x, k)) {
			rc = potad__take_reserve(s, a, b);
			if (rc == 0)
				potad__take_range(s, a, b);
			return rc;
		}
	}
	/* What is left of the first block (at ra) and of the last (of order
	 * k) keeps its state. */
	if (s->dirty_blocks) {
		fd = potad__fb_dirty(s, ra, piece(ra, hi));
		ld = potad__fb_dirty(s, rb - pow2(k), k);
	}
	rc = potad__reserve(s, potad__range_need(s, ra, a) +
				   potad__range_need(s, b, rb));
	if (rc < 0)
		return rc;
	for (x = ra; x < b; x += pow2(k)) {
		k = piece(x, hi);
		potad__fb_del(s, x, k);
	}
	potad__add_range(s, ra, a, fd);
	potad__add_range(s, b, rb, ld);
	return 0;
}

/* The caller found the extent below a already, so of run_floor() only the
 * poison is left to look at. */
int potad__take_free(struct potad_space *s, uint64_t a, uint64_t b, uint64_t x)
{
	uint64_t lo = s->npoison ? potad__poison_floor(s, x, a) : x;

	return take_in_run(s, a, b, lo, run_ceil(s, b, s->ue));
}

/* The next key of a block that scan_runs() looks at. */
static bool scan_seek(const struct potad_space *s, unsigned j, uint64_t from,
		      bool down, bool clean, bool dirty_only, uint64_t *key)
{
	const struct rtree *t = &s->dirty[j];

	if (!dirty_only)
		return fb_seek(s, j, from, down, clean, key);
	return down ? potad__rtree_prev(t, &s->nodes, NULL, from, key, NULL)
		    : potad__rtree_next(t, &s->nodes, NULL, from, key, NULL);
}

/* A run search: the request, and what find_run() has found so far. */
struct run_search {
	uint64_t L, A, lo, hi;
	bool down, clean;
	bool found;
	uint64_t best, run_lo, run_hi;
	uint64_t longest; /* the longest run looked at */
};

/* One order's part of find_run(): its free blocks (clean ones, for a
 * clean request; only the dirty ones, with dirty_only) in address order,
 * with the run around each, until one fits or a fit already found cannot
 * be beaten. */
static void scan_runs(const struct potad_space *s, unsigned j, bool dirty_only,
		      struct run_search *q)
{
	uint64_t key = fkey(s, q->down ? q->hi - 1 : q->lo, j), v, rs, re, p;
	const bool down = q->down, clean = q->clean;

	while (scan_seek(s, j, key, down, clean, dirty_only, &key)) {
		v = funit(s, key, j);
		if (down ? v + pow2(j) <= q->lo : v >= q->hi)
			break;
		if (q->found && (down ? v + pow2(j) <= q->best : v > q->best))
			break;
		rs = span_floor(s, v, s->ub, clean);
		re = span_ceil(s, v + pow2(j), s->ue, clean);
		if (re - rs > q->longest)
			q->longest = re - rs;
		if (fit(rs > q->lo ? rs : q->lo, re < q->hi ? re : q->hi, q->L,
			q->A, down, &p)) {
			if (!q->found || (down ? p > q->best : p < q->best)) {
				q->best = p;
				q->run_lo = rs;
				q->run_hi = re;
			}
			q->found = true;
			break;
		}
		/* Skip the rest of this run. */
		if (down) {
			if (rs <= q->lo || rs == s->ub)
				break;
			key = fkey(s, rs - 1, j);
		} else {
			if (re >= q->hi || re >= s->ue)
				break;
			key = fkey(s, re, j);
		}
	}
}

/*
 * The slow path: find L units aligned to A inside [lo, hi) in a run of
 * adjacent free blocks.  Any such run contains an aligned block of order
 * m = floor(log2(L + 1)) - 1.  If its units are all clean or all dirty,
 * then, since such buddies are always merged, that block lies inside a
 * free block of order >= m.  So those blocks are visited, each order in
 * address order, with the run around each.  The first fit in an order is
 * that order's best; the best over all orders wins.
 *
 * A clean request looks only at clean blocks and clean runs, so that is
 * the whole search.  A plain one must also find an order-m block whose
 * units are mixed: it is cut where the state changes, so it holds a whole
 * dirty block of an order below m, and the dirty blocks of those orders
 * are visited too.  Each order's scan skips a run once it has looked at
 * it, so it costs one step per run that holds such a block.
 *
 * A search of the whole space that fails has therefore looked at every
 * run (every clean run, for a clean request) of 2^(m+1) - 1 units or more,
 * since each holds an aligned order-m block, so the longest such run is
 * the longest it saw or shorter than that.  run_bound and clean_bound keep
 * it, and until a free (or potad_set_clean()) lengthens a run, a request
 * longer than the bound fails without a search.  That is ZFS's metaslab
 * max-size and ext4's largest-free-order idea, for the whole space: under
 * long churn near full, the large requests that cannot fit are refused in
 * O(1) instead of scanning every run again, and so are the clean requests
 * of a space whose free units have all turned dirty.
 */
static bool find_run(struct potad_space *s, struct run_search *q)
{
	unsigned m = q->L == UINT64_MAX ? 62 : log2_floor(q->L + 1) - 1;
	uint64_t om, *bound = q->clean ? &s->clean_bound : &s->run_bound;

	/* A clean run is a plain run too. */
	if (q->L > s->run_bound || q->L > *bound)
		return false;
	q->found = false;
	q->longest = 0;
	for (om = usable(s, q->clean) & (~0ull << m); om; om &= om - 1)
		scan_runs(s, ctz64(om), false, q);
	if (!q->clean)
		for (om = s->dnonempty & (pow2(m) - 1); om; om &= om - 1)
			scan_runs(s, ctz64(om), true, q);
	if (!q->found && q->lo == s->ub && q->hi == s->ue) {
		uint64_t unseen = pow2(m + 1) - 2;

		*bound = q->longest > unseen ? q->longest : unseen;
	}
	return q->found;
}

/* No unit of [a, b) is held now, so no run that touches it reaches past
 * the extents on either side. */
void potad__runs_grew(struct potad_space *s, uint64_t a, uint64_t b, bool plain,
		      bool clean)
{
	uint64_t len;

	plain = plain && s->run_bound != UINT64_MAX;
	clean = clean && s->clean_bound != UINT64_MAX;
	if (!plain && !clean)
		return;
	len = extent_ceil(s, b) - extent_floor(s, a);
	if (plain && len > s->run_bound)
		s->run_bound = len;
	if (clean && len > s->clean_bound)
		s->clean_bound = len;
}

/*
 * Before splitting a block larger than the needed order, look at the few
 * lowest blocks of an order below: a freed extent of similar size leaves
 * exactly such a block with free space around it, and reusing that hole
 * keeps the large blocks whole.  Bounded, so the fast path stays fast.
 */
#define NEAR_FIT_TRIES 4

static bool near_fit(const struct potad_space *s, unsigned o, uint64_t L,
		     uint64_t A, bool clean, uint64_t *rlo, uint64_t *rhi,
		     uint64_t *p)
{
	uint64_t key = 0;

	if (!(s->nonempty & pow2(o)))
		return false;
	for (int t = 0; t < NEAR_FIT_TRIES; t++, key++) {
		uint64_t v, lo, hi;

		if (!fb_seek(s, o, key, false, clean, &key))
			return false;
		v = funit(s, key, o);
		lo = span_floor(s, v, s->ub, clean);
		hi = span_ceil(s, v + pow2(o), s->ue, clean);
		if (fit(lo, hi, L, A, false, p)) {
			*rlo = lo;
			*rhi = hi;
			return true;
		}
	}
	return false;
}

static int alloc_fixed(struct potad_space *s, uint64_t at, uint64_t L,
		       uint64_t A, const struct potad_alloc_req *r,
		       struct potad_extent *out)
{
	uint64_t u;
	int rc;

	if (at & (pow2(s->g) - 1))
		return -EINVAL;
	u = at >> s->g;
	if (u < s->ub || u >= s->ue || L > s->ue - u)
		return -ERANGE;
	if (u & (A - 1))
		return -EINVAL;
	if (!range_free(s, u, u + L, r->flags & POTAD_ALLOC_CLEAN))
		return -EBUSY;
	rc = potad__extents_reserve(s);
	if (rc == 0)
		rc = potad__take_reserve(s, u, u + L);
	if (rc < 0)
		return rc;
	potad__take_range(s, u, u + L);
	return potad__desc_new(s, u, L, r->owner, r->tag, POTAD_TYPE_EXTENT,
			       out);
}

static int alloc_lists(struct potad_space *s, const struct potad_alloc_req *r,
		       struct potad_extent *out)
{
	const unsigned known = POTAD_ALLOC_TOPDOWN | POTAD_ALLOC_WHOLE |
			       POTAD_ALLOC_FIXED | POTAD_ALLOC_CLEAN;
	bool down, clean;
	uint64_t L, A, lo = s->ub, hi = s->ue, u = 0, p = 0, rlo, rhi;
	unsigned k, j = 0;
	bool d;
	int rc;

	if (!r || !out || (r->flags & ~known) || r->size == 0 ||
	    (r->align & (r->align - 1)))
		return -EINVAL;
	down = r->flags & POTAD_ALLOC_TOPDOWN;
	clean = r->flags & POTAD_ALLOC_CLEAN;
	L = units_up(s, r->size);
	A = r->align >> s->g;
	if (A == 0)
		A = 1;
	if (r->flags & POTAD_ALLOC_WHOLE) {
		k = log2_ceil(L);
		if (k > 63)
			return -E2BIG;
		L = pow2(k);
		if (A < L)
			A = L;
	}
	if (L > s->ue - s->ub)
		return -E2BIG;
	if (r->flags & POTAD_ALLOC_FIXED)
		return alloc_fixed(s, r->at, L, A, r, out);
	if (r->min || r->max) {
		if (r->max && r->min >= r->max)
			return -EINVAL;
		if (units_up(s, r->min) > lo)
			lo = units_up(s, r->min);
		if (r->max && (r->max >> s->g) < hi)
			hi = r->max >> s->g;
		if (lo >= hi)
			return -EINVAL;
		if (L > hi - lo)
			return -E2BIG;
	}
	rc = potad__extents_reserve(s);
	if (rc < 0)
		return rc;
	k = log2_ceil(L);
	if (log2_floor(A) > k)
		k = log2_floor(A);
	if (k <= 63) {
		uint64_t mask = usable(s, clean) & (~0ull << k), key, bu, bp;
		bool found = false;

		if (mask && !down && lo == s->ub && hi == s->ue) {
			/* The common case: best fit by order, lowest address. */
			j = ctz64(mask);
			/* Before splitting a larger block, holes one and two
			 * orders down. */
			for (unsigned o = k; j > k && o > 0 && o + 2 > k; o--)
				if (A <= pow2(o - 1) &&
				    near_fit(s, o - 1, L, A, clean, &rlo, &rhi,
					     &p))
					goto take;
			fb_seek(s, j, 0, false, clean, &key);
			u = p = funit(s, key, j);
			goto carve;
		}
		/* Top-down: the highest aligned position of the range may lie
		 * in a free block of any order; one probe finds out. */
		if (down && hi - lo >= L) {
			uint64_t top = (hi - L) & ~(A - 1), v;
			unsigned o;

			if (top >= lo && potad__fb_find(s, top, &v, &o) &&
			    v + pow2(o) - top >= L &&
			    !(clean && potad__fb_dirty(s, v, o))) {
				u = v;
				p = top;
				j = o;
				goto carve;
			}
		}
		/* Bottom-up: the smallest order that fits.  Top-down: the
		 * highest address any order offers. */
		for (; mask; mask &= mask - 1) {
			unsigned o = ctz64(mask);

			if (!fit_order(s, o, L, A, lo, hi, down, clean, &bu,
				       &bp))
				continue;
			if (!found || bp > p) {
				u = bu;
				p = bp;
				j = o;
				found = true;
			}
			if (!down)
				break;
		}
		if (found)
			goto carve;
	}
	{
		struct run_search q = {.L = L,
				       .A = A,
				       .lo = lo,
				       .hi = hi,
				       .down = down,
				       .clean = clean};

		if (!find_run(s, &q))
			return -ENOSPC;
		p = q.best;
		rlo = q.run_lo;
		rhi = q.run_hi;
	}
	goto take;
carve:
	/* A free stretch below the block (above it, top-down) that is too
	 * small to hold this extent is absorbed by sliding the extent onto
	 * it: exact allocations then pack against each other instead of each
	 * leaving a trimmed tail behind as a hole.  A larger stretch is left
	 * alone, as best fit wants.  A clean request slides over clean units
	 * only. */
	rlo = u;
	rhi = u + pow2(j);
	if (!(L & (L - 1))) {
		/* Only exact sizes slide.  A power of two at the start of
		 * its block keeps the block's alignment and goes back as one
		 * block, as in the Linux buddy allocator; sliding would cut
		 * it into pieces at every order below. */
	} else if (!down) {
		uint64_t q, e;

		/* The run's own edge, so that take_in_run() gets block
		 * boundaries; the range bound only limits the slide.  With
		 * L <= A there is no need to look: p and a slid start q are
		 * both multiples of A, so q < p would mean p - e >= A >= L. */
		rlo = L > A ? span_floor(s, u, s->ub, clean) : u;
		e = rlo < lo ? lo : rlo;
		if (e < p && p - e < L && align_up(e, A, &q) && q < p) {
			p = q;
			goto take;
		}
	} else {
		uint64_t e;

		rhi = span_ceil(s, u + pow2(j), s->ue, clean);
		e = rhi > hi ? hi : rhi;
		if (e - (p + L) < L && ((e - L) & ~(A - 1)) > p) {
			p = (e - L) & ~(A - 1);
			goto take;
		}
	}
	d = potad__fb_dirty(s, u, j);
	rc = potad__reserve(s, potad__range_need(s, u, p) +
				   potad__range_need(s, p + L, u + pow2(j)));
	if (rc < 0)
		return rc;
	potad__fb_del(s, u, j);
	potad__add_range(s, u, p, d);
	potad__add_range(s, p + L, u + pow2(j), d);
	return potad__desc_new(s, p, L, r->owner, r->tag, POTAD_TYPE_EXTENT,
			       out);
take:
	rc = take_in_run(s, p, p + L, rlo, rhi);
	if (rc < 0)
		return rc;
	return potad__desc_new(s, p, L, r->owner, r->tag, POTAD_TYPE_EXTENT,
			       out);
}

int potad_alloc(struct potad_space *s, const struct potad_alloc_req *r,
		struct potad_extent *out)
{
	int rc, drained;

	/* The reuse cache serves requests that name no place of their own
	 * (no POTAD_ALLOC_FIXED) and prefer none (no POTAD_ALLOC_TOPDOWN). */
	if (s->qextents && r && out && r->size &&
	    !(r->flags & ~(POTAD_ALLOC_CLEAN | POTAD_ALLOC_WHOLE)) &&
	    !(r->align & (r->align - 1)) && potad__cache_take(s, r, out) == 0)
		return 0;
	rc = alloc_lists(s, r, out);
	/* Nothing is refused while the cache holds room for it: a claim
	 * (the only call that is refused -EBUSY) needs back the cached
	 * extents it overlaps, any other request all of them. */
	if ((rc == -ENOSPC || rc == -EBUSY) && s->qextents) {
		if (rc == -EBUSY) {
			uint64_t u = r->at >> s->g, L = units_up(s, r->size);

			if (r->flags & POTAD_ALLOC_WHOLE)
				L = pow2(log2_ceil(L));
			drained = potad__cache_return_range(s, u, u + L);
		} else {
			drained = potad_space_drain(s);
		}
		rc = alloc_lists(s, r, out);
		if ((rc == -ENOSPC || rc == -EBUSY) && drained < 0)
			rc = drained;
	}
	return rc;
}

int potad_claim(struct potad_space *s, uint64_t offset, uint64_t length,
		uint32_t owner, uint32_t tag, struct potad_extent *out)
{
	struct potad_alloc_req r = {
		.size = length,
		.at = offset,
		.owner = owner,
		.tag = tag,
		.flags = POTAD_ALLOC_FIXED,
	};

	return potad_alloc(s, &r, out);
}
