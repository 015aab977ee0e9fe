/* SPDX-License-Identifier: MIT */
/* The POTAD core: a space's free blocks, allocation and freeing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Free space is a set of blocks, one sparse bitmap tree per order, keyed by
 * the block's index at that order relative to the space's first block.
 * A 64-bit mask says which orders hold any block, so "the smallest free
 * block of order >= k" is one ctz plus one walk down a tree.
 *
 * Allocation takes that block at its lowest (or, top-down, highest)
 * address and carves the extent out of it: what is left on either side is
 * cut into maximal aligned blocks, which cannot merge with anything because
 * their buddies lie inside the block just taken.  That is the buddy split
 * and alloc_pages_exact()'s tail trimming in one step.  When no block of the
 * needed order exists, the extent is assembled from a run of adjacent free
 * blocks (find_run below); this is the only search that may visit many
 * blocks, and it starts from blocks big enough to matter.
 *
 * Freeing cuts the extent into maximal aligned blocks and merges each with
 * its buddy while the buddy is free at the same order, as the Linux buddy
 * allocator does, but testing the buddy in the tree instead of in a struct
 * page: nothing is stored per unit.
 *
 * Every mutating entry point first reserves the memory its tree inserts may
 * need, so it either fails before it changes anything or cannot fail.
 */

bool potad__fb_test(const struct potad_space *s, uint64_t u, unsigned k)
{
	if (!(s->nonempty & pow2(k)) || !block_inside(s, u, k))
		return false;
	return potad__rtree_get(&s->freeset[k], &s->nodes, NULL, fkey(s, u, k),
				NULL);
}

static void fb_add(struct potad_space *s, uint64_t u, unsigned k)
{
	potad__rtree_insert(&s->freeset[k], &s->nodes, NULL, fkey(s, u, k), 0);
	s->nfree[k]++;
	s->free_blocks++;
	s->free_units += pow2(k);
	s->nonempty |= pow2(k);
}

static bool fb_del(struct potad_space *s, uint64_t u, unsigned k)
{
	if (!potad__rtree_remove(&s->freeset[k], &s->nodes, NULL,
				 fkey(s, u, k)))
		return false;
	if (--s->nfree[k] == 0)
		s->nonempty &= ~pow2(k);
	s->free_blocks--;
	s->free_units -= pow2(k);
	return true;
}

/* Insert a free block, merging it with its buddy for as long as it can:
 * each order costs one walk down its tree, which either takes the buddy
 * out or puts the block in. */
static void fb_free(struct potad_space *s, uint64_t u, unsigned k)
{
	while (k < 63 && (s->nonempty & pow2(k)) &&
	       block_inside(s, u ^ pow2(k), k)) {
		if (!potad__rtree_pair(&s->freeset[k], &s->nodes,
				       fkey(s, u, k))) {
			s->nfree[k]++;
			s->free_blocks++;
			s->free_units += pow2(k);
			return;
		}
		if (--s->nfree[k] == 0)
			s->nonempty &= ~pow2(k);
		s->free_blocks--;
		s->free_units -= pow2(k);
		u &= ~pow2(k);
		k++;
	}
	fb_add(s, u, k);
}

/* The order of the first maximal aligned block of [a, b). */
static inline unsigned piece(uint64_t a, uint64_t b)
{
	unsigned k = log2_floor(b - a), t = ctz64(a);

	return t < k ? t : k;
}

/* Node-pool elements that inserting [a, b)'s blocks may need. */
uint64_t potad__range_need(const struct potad_space *s, uint64_t a,
			   uint64_t b)
{
	uint64_t need = 0;

	while (a < b) {
		unsigned k = piece(a, b);

		need += potad__rtree_insert_need(&s->freeset[k]);
		a += pow2(k);
	}
	return need;
}

/* Put [a, b) back as maximal aligned blocks that need no merging. */
static void add_range(struct potad_space *s, uint64_t a, uint64_t b)
{
	while (a < b) {
		unsigned k = piece(a, b);

		fb_add(s, a, k);
		a += pow2(k);
	}
}

void potad__free_range(struct potad_space *s, uint64_t a, uint64_t b)
{
	while (a < b) {
		unsigned k = piece(a, b);

		fb_free(s, a, k);
		a += pow2(k);
	}
}

bool potad__fb_find(const struct potad_space *s, uint64_t x, uint64_t *u,
		    unsigned *k)
{
	for (uint64_t m = s->nonempty; m; m &= m - 1) {
		unsigned j = ctz64(m);
		uint64_t v = x & ~(pow2(j) - 1);

		if (block_inside(s, v, j) &&
		    potad__rtree_get(&s->freeset[j], &s->nodes, NULL,
				     fkey(s, v, j), NULL)) {
			*u = v;
			*k = j;
			return true;
		}
	}
	return false;
}

int potad__reserve(struct potad_space *s, uint64_t need)
{
	return potad__rpool_reserve(&s->nodes, need);
}

/* Whether every unit of [a, b) is free. */
static bool range_free(const struct potad_space *s, uint64_t a, uint64_t b)
{
	uint64_t u;
	unsigned k;

	while (a < b) {
		if (!potad__fb_find(s, a, &u, &k))
			return false;
		a = u + pow2(k);
	}
	return true;
}

/* What taking the free units of [a, b) out will insert: only the free
 * blocks at either edge leave pieces behind. */
uint64_t potad__take_need(const struct potad_space *s, uint64_t a, uint64_t b)
{
	uint64_t u, need = 0;
	unsigned k;

	if (potad__fb_find(s, a, &u, &k)) {
		need += potad__range_need(s, u, a);
		if (u + pow2(k) > b)
			need += potad__range_need(s, b, u + pow2(k));
	}
	if (potad__fb_find(s, b - 1, &u, &k) && u >= a)
		need += potad__range_need(s, b, u + pow2(k));
	return need;
}

int potad__take_reserve(struct potad_space *s, uint64_t a, uint64_t b)
{
	return potad__reserve(s, potad__take_need(s, a, b));
}

void potad__take_range(struct potad_space *s, uint64_t a, uint64_t b)
{
	uint64_t x = a, u, e;
	unsigned k;

	while (x < b && potad__fb_find(s, x, &u, &k)) {
		fb_del(s, u, k);
		e = u + pow2(k);
		if (u < a)
			add_range(s, u, a);
		if (e > b)
			add_range(s, b, e);
		x = e;
	}
}

int potad_space_new(struct potad_space **out, uint64_t base, uint64_t size,
		    unsigned granule_shift)
{
	struct potad_space *s;
	uint64_t n, need = 0;

	if (!out || granule_shift > POTAD_GRANULE_SHIFT_MAX)
		return -EINVAL;
	if ((base & (pow2(granule_shift) - 1)) || size > UINT64_MAX - base)
		return -EINVAL;
	n = size >> granule_shift;
	if (n == 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->g = granule_shift;
	s->ub = base >> granule_shift;
	s->ue = s->ub + n;
	s->max_order = log2_floor(n);
	s->freeslot = SLOT_NIL;
	potad__rpool_init(&s->nodes, sizeof(struct rnode));
	potad__rpool_init(&s->inodes, sizeof(struct rnode));
	potad__rpool_init(&s->vals, sizeof(uint32_t));
	for (unsigned k = 0; k < POTAD_ORDERS; k++)
		potad__rtree_init(&s->freeset[k],
				  ((s->ue - 1) >> k) - forigin(s, k), false);
	potad__rtree_init(&s->index, n - 1, true);
	/* Seeding inserts into empty trees: exactly one single-node array
	 * per level below each root, not the worst case. */
	for (uint64_t a = s->ub; a < s->ue; a += pow2(piece(a, s->ue)))
		need += s->freeset[piece(a, s->ue)].depth - 1u;
	if (potad__reserve(s, need) < 0) {
		potad__rpool_fini(&s->nodes);
		free(s);
		return -ENOMEM;
	}
	add_range(s, s->ub, s->ue);
	*out = s;
	return 0;
}

/* Convert a byte size to units, rounding up. */
static inline uint64_t units_up(const struct potad_space *s, uint64_t bytes)
{
	return (bytes >> s->g) + ((bytes & (pow2(s->g) - 1)) != 0);
}

static bool align_up(uint64_t x, uint64_t a, uint64_t *r)
{
	uint64_t y = x & ~(a - 1);

	if (y < x) {
		y += a;
		if (y < x)
			return false;
	}
	*r = y;
	return true;
}

/* Fit L units aligned to A inside [a, b); lowest or highest position. */
static bool fit(uint64_t a, uint64_t b, uint64_t L, uint64_t A, bool down,
		uint64_t *p)
{
	uint64_t x;

	if (b <= a || b - a < L)
		return false;
	if (down) {
		x = (b - L) & ~(A - 1);
		if (x < a)
			return false;
	} else if (!align_up(a, A, &x) || x > b - L) {
		return false;
	}
	*p = x;
	return true;
}

/* The first (or last) block of order j that can hold the extent inside
 * [lo, hi).  Only two blocks can be the answer: the one that holds the
 * range's first (last) unit, or the next one inward, which is aligned well
 * enough that if it does not fit no later one does. */
static bool fit_order(const struct potad_space *s, unsigned j, uint64_t L,
		      uint64_t A, uint64_t lo, uint64_t hi, bool down,
		      uint64_t *u, uint64_t *p)
{
	uint64_t edge = down ? hi - 1 : lo, v = edge & ~(pow2(j) - 1), key;

	if (potad__fb_test(s, v, j) &&
	    fit(lo > v ? lo : v, hi < v + pow2(j) ? hi : v + pow2(j), L, A,
		down, p)) {
		*u = v;
		return true;
	}
	key = fkey(s, v, j);
	if (down ? key == 0 ||
			   !potad__rtree_prev(&s->freeset[j], &s->nodes, NULL,
					      key - 1, &key, NULL)
		 : !potad__rtree_next(&s->freeset[j], &s->nodes, NULL, key + 1,
				      &key, NULL))
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
 * need to probe the free trees order by order.
 */

/* The first unit of the free run holding free unit a (not below lo). */
static uint64_t run_floor(const struct potad_space *s, uint64_t a,
			  uint64_t lo)
{
	uint64_t x = s->ub, key;
	uint32_t slot;

	if (a > s->ub && potad__rtree_prev(&s->index, &s->inodes, &s->vals,
					   a - 1 - s->ub, &key, &slot))
		x = DESC(s, slot)->start + DESC(s, slot)->len;
	if (s->npoison)
		x = potad__poison_floor(s, x, a);
	return x < lo ? lo : x;
}

/* One past the last unit of the free run holding free unit b - 1 (not
 * above hi). */
static uint64_t run_ceil(const struct potad_space *s, uint64_t b,
			 uint64_t hi)
{
	uint64_t x = s->ue, key;
	uint32_t slot;

	if (b < s->ue && potad__rtree_next(&s->index, &s->inodes, &s->vals,
					   b - s->ub, &key, &slot))
		x = s->ub + key;
	if (s->npoison)
		x = potad__poison_ceil(s, b, x);
	return x > hi ? hi : x;
}

/*
 * Take [a, b) out of [lo, hi), a stretch known to be wholly free whose
 * ends are block boundaries.  Merging keeps such a stretch cut into its
 * maximal aligned blocks, so those blocks are computed, not searched for;
 * each is still tested, and any surprise falls back to the general path.
 */
static int take_in_run(struct potad_space *s, uint64_t a, uint64_t b,
		       uint64_t lo, uint64_t hi)
{
	uint64_t x, ra = a, rb = b;
	unsigned k;
	int rc;

	for (x = lo; x < b; x += pow2(k)) {
		k = piece(x, hi);
		if (x + pow2(k) <= a)
			continue;
		if (x < a)
			ra = x;
		rb = x + pow2(k);
		if (!potad__fb_test(s, x, k)) {
			rc = potad__take_reserve(s, a, b);
			if (rc == 0)
				potad__take_range(s, a, b);
			return rc;
		}
	}
	rc = potad__reserve(s, potad__range_need(s, ra, a) +
				       potad__range_need(s, b, rb));
	if (rc < 0)
		return rc;
	for (x = ra; x < b; x += pow2(k)) {
		k = piece(x, hi);
		fb_del(s, x, k);
	}
	add_range(s, ra, a);
	add_range(s, b, rb);
	return 0;
}

/* The caller found the extent below a already, so of run_floor() only the
 * poison is left to look at. */
int potad__take_free(struct potad_space *s, uint64_t a, uint64_t b, uint64_t x)
{
	uint64_t lo = s->npoison ? potad__poison_floor(s, x, a) : x;

	return take_in_run(s, a, b, lo, run_ceil(s, b, s->ue));
}

/*
 * The slow path: find L units aligned to A inside [lo, hi) in a run of
 * adjacent free blocks.  Any such run contains an aligned block of order
 * m = floor(log2(L + 1)) - 1, and since free buddies are always merged,
 * that block lies inside a free block of order >= m.  So only those blocks
 * are visited, each order in address order, with the run around each.
 * The first fit in an order is that order's best; the best over all orders
 * wins.
 */
static bool find_run(const struct potad_space *s, uint64_t L, uint64_t A,
		     uint64_t lo, uint64_t hi, bool down, uint64_t *best,
		     uint64_t *run_lo, uint64_t *run_hi)
{
	unsigned m = L == UINT64_MAX ? 62 : log2_floor(L + 1) - 1;
	bool found = false;

	for (uint64_t om = s->nonempty & (~0ull << m); om; om &= om - 1) {
		unsigned j = ctz64(om);
		const struct rtree *t = &s->freeset[j];
		uint64_t key = fkey(s, down ? hi - 1 : lo, j), v, rs, re, p;

		while (down ? potad__rtree_prev(t, &s->nodes, NULL, key, &key,
						NULL)
			    : potad__rtree_next(t, &s->nodes, NULL, key, &key,
						NULL)) {
			v = funit(s, key, j);
			if (down ? v + pow2(j) <= lo : v >= hi)
				break;
			if (found && (down ? v + pow2(j) <= *best : v > *best))
				break;
			rs = run_floor(s, v, s->ub);
			re = run_ceil(s, v + pow2(j), s->ue);
			if (fit(rs > lo ? rs : lo, re < hi ? re : hi, L, A, down,
				&p)) {
				if (!found || (down ? p > *best : p < *best)) {
					*best = p;
					*run_lo = rs;
					*run_hi = re;
				}
				found = true;
				break;
			}
			/* Skip the rest of this run. */
			if (down) {
				if (rs <= lo || rs == s->ub)
					break;
				key = fkey(s, rs - 1, j);
			} else {
				if (re >= hi || re >= s->ue)
					break;
				key = fkey(s, re, j);
			}
		}
	}
	return found;
}

/*
 * Before splitting a block larger than the needed order, look at the few
 * lowest blocks of an order below: a freed extent of similar size leaves
 * exactly such a block with free space around it, and reusing that hole
 * keeps the large blocks whole.  Bounded, so the fast path stays fast.
 */
#define NEAR_FIT_TRIES 4

static bool near_fit(const struct potad_space *s, unsigned o, uint64_t L,
		     uint64_t A, uint64_t *rlo, uint64_t *rhi, uint64_t *p)
{
	uint64_t key = 0;

	if (!(s->nonempty & pow2(o)))
		return false;
	for (int t = 0; t < NEAR_FIT_TRIES; t++, key++) {
		uint64_t v, lo, hi;

		if (!potad__rtree_next(&s->freeset[o], &s->nodes, NULL, key,
				       &key, NULL))
			return false;
		v = funit(s, key, o);
		lo = run_floor(s, v, s->ub);
		hi = run_ceil(s, v + pow2(o), s->ue);
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
	if (!range_free(s, u, u + L))
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

int potad_alloc(struct potad_space *s, const struct potad_alloc_req *r,
		struct potad_extent *out)
{
	const unsigned known =
		POTAD_ALLOC_TOPDOWN | POTAD_ALLOC_WHOLE | POTAD_ALLOC_FIXED;
	bool down;
	uint64_t L, A, lo = s->ub, hi = s->ue, u = 0, p = 0, rlo, rhi;
	unsigned k, j;
	int rc;

	if (!r || !out || (r->flags & ~known) || r->size == 0 ||
	    (r->align & (r->align - 1)))
		return -EINVAL;
	down = r->flags & POTAD_ALLOC_TOPDOWN;
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
		uint64_t mask = s->nonempty & (~0ull << k), key, bu, bp;
		bool found = false;

		if (mask && !down && lo == s->ub && hi == s->ue) {
			/* The common case: best fit by order, lowest address. */
			j = ctz64(mask);
			/* Before splitting a larger block, holes one and two
			 * orders down. */
			for (unsigned o = k; j > k && o > 0 && o + 2 > k; o--)
				if (A <= pow2(o - 1) &&
				    near_fit(s, o - 1, L, A, &rlo, &rhi, &p))
					goto take;
			potad__rtree_next(&s->freeset[j], &s->nodes, NULL, 0, &key,
					  NULL);
			u = p = funit(s, key, j);
			goto carve;
		}
		/* Top-down: the highest aligned position of the range may lie
		 * in a free block of any order; one probe finds out. */
		if (down && hi - lo >= L) {
			uint64_t top = (hi - L) & ~(A - 1), v;
			unsigned o;

			if (top >= lo && potad__fb_find(s, top, &v, &o) &&
			    v + pow2(o) - top >= L) {
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

			if (!fit_order(s, o, L, A, lo, hi, down, &bu, &bp))
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
	if (!find_run(s, L, A, lo, hi, down, &p, &rlo, &rhi))
		return -ENOSPC;
	goto take;
carve:
	/* A free stretch below the block (above it, top-down) that is too
	 * small to hold this extent is absorbed by sliding the extent onto
	 * it: exact allocations then pack against each other instead of each
	 * leaving a trimmed tail behind as a hole.  A larger stretch is left
	 * alone, as best fit wants. */
	rlo = u;
	rhi = u + pow2(j);
	if (!down) {
		uint64_t q;

		rlo = run_floor(s, u, lo);
		if (rlo < p && p - rlo < L && align_up(rlo, A, &q) && q < p) {
			p = q;
			goto take;
		}
	} else {
		rhi = run_ceil(s, u + pow2(j), hi);
		if (rhi - (p + L) < L && ((rhi - L) & ~(A - 1)) > p) {
			p = (rhi - L) & ~(A - 1);
			goto take;
		}
	}
	rc = potad__reserve(s, potad__range_need(s, u, p) +
				       potad__range_need(s, p + L, u + pow2(j)));
	if (rc < 0)
		return rc;
	fb_del(s, u, j);
	add_range(s, u, p);
	add_range(s, p + L, u + pow2(j));
	return potad__desc_new(s, p, L, r->owner, r->tag, POTAD_TYPE_EXTENT,
			       out);
take:
	rc = take_in_run(s, p, p + L, rlo, rhi);
	if (rc < 0)
		return rc;
	return potad__desc_new(s, p, L, r->owner, r->tag, POTAD_TYPE_EXTENT,
			       out);
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

int potad_free(struct potad_space *s, uint64_t handle,
	       struct potad_extent *out)
{
	uint32_t slot;
	uint64_t a, b;
	bool poisoned;
	int rc;

	rc = potad__desc_find(s, handle, &slot);
	if (rc < 0)
		return rc;
	if (DESC_TYPE(DESC(s, slot)) == POTAD_TYPE_CHILD)
		return -EBUSY;
	a = DESC(s, slot)->start;
	b = a + DESC(s, slot)->len;
	/* Merging only moves a block up to a shallower order, so the pieces'
	 * own orders bound what the inserts need. */
	poisoned = s->npoison && potad__poison_overlaps(s, a, b);
	rc = potad__reserve(s, poisoned ? potad__unpoisoned_need(s, a, b)
					: potad__range_need(s, a, b));
	if (rc < 0)
		return rc;
	if (out)
		potad__desc_fill(s, slot, out);
	if (poisoned)
		potad__free_unpoisoned(s, a, b);
	else
		potad__free_range(s, a, b);
	potad__desc_drop(s, slot);
	return 0;
}
