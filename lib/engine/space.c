/* SPDX-License-Identifier: MIT */
/* The POTAD core: a space's free blocks, freeing, and clean and dirty. */
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
 * Allocation (alloc.c) carves each extent out of such a block, or out of
 * a run of adjacent ones; this file keeps the blocks themselves.
 *
 * Freeing cuts the extent into maximal aligned blocks and merges each with
 * its buddy while the buddy is free at the same order, as the Linux buddy
 * allocator does, but testing the buddy in the tree instead of in a struct
 * page: nothing is stored per unit.
 *
 * Every mutating entry point first reserves the memory its tree inserts may
 * need, so it either fails before it changes anything or cannot fail.
 *
 * Clean and dirty.  A freed extent still holds its owner's data, so each
 * free block is clean (never used since the space was made, or discarded)
 * or dirty, and each state has its own tree per order: clean[k] and
 * dirty[k] split the free blocks between them.  Buddies merge only when
 * both have the same state (a small dirty free must not turn a large clean
 * block dirty), which is one pairing walk in the state's tree, as in a
 * space with one state.  So the invariant is that no two free buddies of
 * the same state are left unmerged, and a split block leaves its own state
 * to what remains of it.  Within a stretch of free units all clean or all
 * dirty the blocks are therefore still the stretch's maximal aligned
 * pieces, which the run assembly and potad_dirty_next() rely on.
 *
 * A clean request searches clean[k] alone, in O(log) whatever the dirty
 * blocks around it.  A plain request searches both trees of an order and
 * takes the nearer block, but only for the orders that have dirty blocks:
 * a space that never saw a dirty free pays one mask test for them.  (Until
 * 2026-12-07 dirty[k] was a subset of one tree of all free blocks, so that
 * plain requests searched one tree; a clean request then skipped dirty
 * blocks a leaf word at a time, and an isolated space on a device, where
 * every free is dirty and every allocation clean, slowed down with every
 * dirty block: 186 us per operation at 138,000 of them.)
 */

bool potad__fb_test(const struct potad_space *s, uint64_t u, unsigned k)
{
	uint64_t key;

	if (!(s->nonempty & pow2(k)) || !block_inside(s, u, k))
		return false;
	key = fkey(s, u, k);
	if ((s->cnonempty & pow2(k)) &&
	    potad__rtree_get(&s->clean[k], &s->nodes, NULL, key, NULL))
		return true;
	return (s->dnonempty & pow2(k)) &&
	       potad__rtree_get(&s->dirty[k], &s->nodes, NULL, key, NULL);
}

/* The dirty half of count_in() and count_out(): out of line, so that the
 * clean paths stay as small as they were before dirty blocks existed. */
static __attribute__((noinline)) void dirty_in(struct potad_space *s,
					       unsigned k)
{
	s->ndirty[k]++;
	s->dirty_blocks++;
	s->dirty_units += pow2(k);
	s->dnonempty |= pow2(k);
}

static __attribute__((noinline)) void dirty_out(struct potad_space *s,
						unsigned k)
{
	if (--s->ndirty[k] == 0) {
		s->dnonempty &= ~pow2(k);
		s->nonempty = s->cnonempty | s->dnonempty;
	}
	s->dirty_blocks--;
	s->dirty_units -= pow2(k);
}

/* The counters of a block of order k that goes into a tree or leaves it. */
static inline void count_in(struct potad_space *s, unsigned k, bool dirty)
{
	s->free_blocks++;
	s->free_units += pow2(k);
	s->nonempty |= pow2(k);
	if (dirty) {
		dirty_in(s, k);
	} else {
		s->nclean[k]++;
		s->cnonempty |= pow2(k);
	}
}

static inline void count_out(struct potad_space *s, unsigned k, bool dirty)
{
	s->free_blocks--;
	s->free_units -= pow2(k);
	if (dirty) {
		dirty_out(s, k);
	} else if (--s->nclean[k] == 0) {
		s->cnonempty &= ~pow2(k);
		s->nonempty = s->cnonempty | s->dnonempty;
	}
}

static inline void fb_add(struct potad_space *s, uint64_t u, unsigned k,
			  bool dirty)
{
	potad__rtree_insert(FB_TREE(s, dirty, k), &s->nodes, NULL,
			    fkey(s, u, k), 0);
	count_in(s, k, dirty);
}

/* Take a free block out of the lists; whether it was dirty, so that what
 * is put back of it can keep that. */
bool potad__fb_del(struct potad_space *s, uint64_t u, unsigned k)
{
	uint64_t key = fkey(s, u, k);

	if ((s->cnonempty & pow2(k)) &&
	    potad__rtree_remove(&s->clean[k], &s->nodes, NULL, key)) {
		count_out(s, k, false);
		return false;
	}
	if ((s->dnonempty & pow2(k)) &&
	    potad__rtree_remove(&s->dirty[k], &s->nodes, NULL, key)) {
		count_out(s, k, true);
		return true;
	}
	return false;
}

/* If the buddy of (u, k) is free in the same state, take it out and return
 * true; otherwise put (u, k) in.  One walk either way. */
static inline bool pair_or_add(struct potad_space *s, uint64_t u, unsigned k,
			       bool dirty)
{
	uint64_t m = dirty ? s->dnonempty : s->cnonempty;

	if (k >= 63 || !(m & pow2(k)) || !block_inside(s, u ^ pow2(k), k)) {
		fb_add(s, u, k, dirty);
		return false;
	}
	if (!potad__rtree_pair(FB_TREE(s, dirty, k), &s->nodes,
			       fkey(s, u, k))) {
		count_in(s, k, dirty);
		return false;
	}
	count_out(s, k, dirty);
	return true;
}

/* Insert a free block, merging it with its buddy for as long as it can:
 * each order costs one walk down its tree, which either takes the buddy
 * out or puts the block in. */
static void fb_free(struct potad_space *s, uint64_t u, unsigned k, bool dirty)
{
	while (pair_or_add(s, u, k, dirty)) {
		u &= ~pow2(k);
		k++;
	}
}

/* The blocks of [a, b) without cutting it: m, the most aligned unit in
 * (a, b], splits it into [a, m), one block per bit of m - a, and [m, b),
 * one per bit of b - m.  A tree is no deeper than those of lower orders,
 * so each half's smallest block bounds what any of its inserts may need;
 * the clean and the dirty tree of an order have the same depth. */
uint64_t potad__range_need(const struct potad_space *s, uint64_t a, uint64_t b)
{
	uint64_t m, need = 0;

	if (a >= b)
		return 0;
	m = b & ~(pow2(log2_floor(a ^ b)) - 1);
	if (m > a)
		need += (uint64_t)__builtin_popcountll(m - a) *
			potad__rtree_insert_need(&s->clean[ctz64(m - a)]);
	if (b > m)
		need += (uint64_t)__builtin_popcountll(b - m) *
			potad__rtree_insert_need(&s->clean[ctz64(b - m)]);
	return need;
}

/* Put [a, b) back as maximal aligned blocks that need no merging. */
void potad__add_range(struct potad_space *s, uint64_t a, uint64_t b, bool dirty)
{
	while (a < b) {
		unsigned k = piece(a, b);

		fb_add(s, a, k, dirty);
		a += pow2(k);
	}
}

/* free_pieces()'s step for a block (*u, k) whose buddy lies to its left:
 * merge with the block waiting below it (one of the *n), or else with a
 * free buddy below the range, unless a block that stays lies below.
 * False when the block stays (it is then in its tree). */
static bool merge_left(struct potad_space *s, uint64_t *u, unsigned k,
		       unsigned *n, bool stays, bool dirty)
{
	if (*n > 0) {
		(*n)--;
	} else if (stays) {
		fb_add(s, *u, k, dirty);
		return false;
	} else if (!pair_or_add(s, *u, k, dirty)) {
		return false;
	}
	*u -= pow2(k);
	return true;
}

/*
 * Freeing [a, b), all in one state.  Freeing each piece with
 * fb_free() would put a piece in only to take it out again when the next
 * piece turns out to be its buddy; here the pieces merge with each other
 * in registers, and the trees see only the buddies outside [a, b) and the
 * blocks that stay.
 *
 * From left to right, a piece whose buddy lies to its right (a left
 * child) waits: later pieces, or free blocks past b, may complete that
 * buddy.  A piece whose buddy lies to its left merges with the block
 * waiting below it, which is always that buddy (the waiting block ends
 * where it starts, and a left child's end is aligned exactly to its own
 * order); with nothing waiting, the buddy lies below a and is looked up.
 * If it is not free, the piece stays, and so does every later piece whose
 * buddy lies to its left: that buddy now holds a block that stays.  At
 * the end the rightmost waiting block merges with free buddies past b and
 * then with the waiting blocks below it, until one merge fails; what
 * still waits then stays, since each one's buddy holds a block that does.
 * The result is the one the buddy invariant allows, as with fb_free().
 */
static void free_pieces(struct potad_space *s, uint64_t a, uint64_t b,
			bool dirty)
{
	struct {
		uint64_t u;
		unsigned k;
	} wait[2 * POTAD_ORDERS];
	unsigned n = 0, k;
	bool stays = false; /* a block below the waiting ones stays */
	uint64_t u;

	while (a < b) {
		k = piece(a, b);
		u = a;
		a += pow2(k);
		for (;;) {
			if (k >= 63 || !(u & pow2(k))) {
				wait[n].u = u;
				wait[n++].k = k;
				break;
			}
			if (!merge_left(s, &u, k, &n, stays, dirty)) {
				stays = true;
				break;
			}
			k++;
		}
	}
	if (n > 0) {
		n--;
		u = wait[n].u;
		k = wait[n].k;
		for (;;) {
			if (k >= 63 || !(u & pow2(k))) {
				if (!pair_or_add(s, u, k, dirty))
					break;
			} else if (!merge_left(s, &u, k, &n, stays, dirty)) {
				break;
			}
			k++;
		}
	}
	while (n > 0) {
		n--;
		fb_add(s, wait[n].u, wait[n].k, dirty);
	}
}

void potad__free_range(struct potad_space *s, uint64_t a, uint64_t b,
		       bool dirty)
{
	unsigned k;

	if (a >= b)
		return;
	/* One piece has nothing to merge with in registers. */
	k = piece(a, b);
	if (a + pow2(k) != b)
		free_pieces(s, a, b, dirty);
	else
		fb_free(s, a, k, dirty);
}

bool potad__fb_find(const struct potad_space *s, uint64_t x, uint64_t *u,
		    unsigned *k)
{
	for (uint64_t m = s->nonempty; m; m &= m - 1) {
		unsigned j = ctz64(m);
		uint64_t v = x & ~(pow2(j) - 1);

		if (potad__fb_test(s, v, j)) {
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

/* What taking the free units of [a, b) out will insert: only the free
 * blocks at either edge leave pieces behind, in their own state. */
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
		bool d = potad__fb_del(s, u, k);

		e = u + pow2(k);
		if (u < a)
			potad__add_range(s, u, a, d);
		if (e > b)
			potad__add_range(s, b, e, d);
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
	s->wide = n > UINT32_MAX;
	s->max_order = log2_floor(n);
	s->freeslot = SLOT_NIL;
	s->run_bound = s->clean_bound = UINT64_MAX;
	potad__rpool_init(&s->nodes, sizeof(struct rnode));
	potad__rpool_init(&s->inodes, sizeof(struct rnode));
	potad__rpool_init(&s->vals, sizeof(uint32_t));
	for (unsigned k = 0; k < POTAD_ORDERS; k++) {
		potad__rtree_init(&s->clean[k],
				  ((s->ue - 1) >> k) - forigin(s, k), false);
		potad__rtree_init(&s->dirty[k],
				  ((s->ue - 1) >> k) - forigin(s, k), false);
	}
	potad__rtree_init(&s->index, n - 1, true);
	/* Seeding inserts into empty trees: exactly one single-node array
	 * per level below each root, not the worst case. */
	for (uint64_t a = s->ub; a < s->ue; a += pow2(piece(a, s->ue)))
		need += s->clean[piece(a, s->ue)].depth - 1u;
	if (potad__reserve(s, need) < 0) {
		potad__rpool_fini(&s->nodes);
		free(s);
		return -ENOMEM;
	}
	potad__add_range(s, s->ub, s->ue, false);
	*out = s;
	return 0;
}


/*
 * Freeing.  A free gives back the whole extent and its descriptor; a
 * shrink gives back the tail, [start + length, end), and the descriptor,
 * with its index key, keeps the head.  Either way the units go back as
 * maximal aligned pieces merged with their buddies, and poisoned ones stay
 * out.  Merging only moves a block up to a shallower order, so the pieces'
 * own orders bound what the inserts need.
 */
static int release(struct potad_space *s, uint64_t handle, bool whole,
		   uint64_t length, bool dirty, struct potad_extent *out)
{
	uint32_t slot;
	struct desc *d;
	uint64_t start, a, b;
	bool poisoned;
	int rc;

	rc = potad__desc_find(s, handle, &slot);
	if (rc < 0)
		return rc;
	d = DESC(s, slot);
	if (DESC_TYPE(d) == POTAD_TYPE_CHILD)
		return -EBUSY;
	if (!whole && (length == 0 || (length & (pow2(s->g) - 1)) ||
		       (length >> s->g) >= desc_len(s, slot)))
		return -EINVAL;
	if (whole && !dirty && s->qmax) {
		if (out)
			potad__desc_fill(s, slot, out);
		if (potad__cache_put(s, slot))
			return 0;
	}
	start = desc_start(s, slot);
	a = start + (whole ? 0 : length >> s->g);
	b = desc_end(s, slot);
	poisoned = s->npoison && potad__poison_overlaps(s, a, b);
	rc = potad__reserve(s, poisoned ? potad__unpoisoned_need(s, a, b)
					: potad__range_need(s, a, b));
	if (rc < 0)
		return rc;
	if (whole && out)
		potad__desc_fill(s, slot, out);
	if (!whole) {
		desc_place(s, slot, start, a - start);
		s->used_units -= b - a;
	}
	if (poisoned)
		potad__free_unpoisoned(s, a, b, dirty);
	else
		potad__free_range(s, a, b, dirty);
	if (whole)
		potad__desc_drop(s, slot);
	else if (out)
		potad__desc_fill(s, slot, out);
	/* Until a search fails there is no bound to keep. */
	if (s->run_bound != UINT64_MAX || s->clean_bound != UINT64_MAX)
		potad__runs_grew(s, a, b, true, !dirty);
	return 0;
}

void potad__release_slot(struct potad_space *s, uint32_t slot)
{
	uint64_t a = desc_start(s, slot), b = desc_end(s, slot);

	potad__free_range(s, a, b, false);
	potad__desc_drop(s, slot);
	if (s->run_bound != UINT64_MAX || s->clean_bound != UINT64_MAX)
		potad__runs_grew(s, a, b, true, true);
}

int potad_shrink(struct potad_space *s, uint64_t handle, uint64_t length,
		 unsigned flags, struct potad_extent *out)
{
	if (flags & ~POTAD_FREE_DIRTY)
		return -EINVAL;
	return release(s, handle, false, length, flags & POTAD_FREE_DIRTY,
		       out);
}

int potad_free_ex(struct potad_space *s, uint64_t handle, unsigned flags,
		  struct potad_extent *out)
{
	if (flags & ~POTAD_FREE_DIRTY)
		return -EINVAL;
	return release(s, handle, true, 0, flags & POTAD_FREE_DIRTY, out);
}

int potad_free(struct potad_space *s, uint64_t handle,
	       struct potad_extent *out)
{
	return release(s, handle, true, 0, false, out);
}

/*
 * Changing the state of free units.  Only the blocks of the other state
 * are visited (found through the dirty trees, or past them), each taken
 * out, what lies outside the range put back in its old state and the rest
 * freed in the new one, merging as a free does.  Merging never touches a
 * block of the old state, so a first pass finds the same blocks the second
 * changes and can reserve for all of them.  The reservation is the cost of
 * freeing each block changed: a range with many runs to change is better
 * changed run by run.
 */

/* The first free block of [x, b) whose state is not `dirty`. */
static bool flip_next(const struct potad_space *s, uint64_t x, uint64_t b,
		      bool dirty, uint64_t *u, unsigned *k)
{
	/* Only the block that holds x can start below it. */
	if (potad__fb_find(s, x, u, k)) {
		if (potad__fb_dirty(s, *u, *k) != dirty)
			return true;
		x = *u + pow2(*k);
	}
	return x < b && potad__next_block(s, x, !dirty, u, k) && *u < b;
}

int potad_set_clean(struct potad_space *s, uint64_t offset, uint64_t length,
		    int clean)
{
	uint64_t a, b, x, u, e, ia, ib, need = 0;
	bool dirty = !clean;
	unsigned k;
	int rc;

	if (length == 0 || ((offset | length) & (pow2(s->g) - 1)))
		return -EINVAL;
	a = offset >> s->g;
	if (a < s->ub || a >= s->ue || (length >> s->g) > s->ue - a)
		return -ERANGE;
	b = a + (length >> s->g);
	/* Cached units are clean and free, but not in the free lists. */
	rc = potad__cache_return_range(s, a, b);
	if (rc < 0)
		return rc;
	for (x = a; x < b && flip_next(s, x, b, dirty, &u, &k); x = e) {
		e = u + pow2(k);
		ia = u > a ? u : a;
		ib = e < b ? e : b;
		need += potad__range_need(s, u, ia) +
			potad__range_need(s, ib, e) +
			potad__range_need(s, ia, ib);
	}
	rc = potad__reserve(s, need);
	if (rc < 0)
		return rc;
	for (x = a; x < b && flip_next(s, x, b, dirty, &u, &k); x = e) {
		e = u + pow2(k);
		ia = u > a ? u : a;
		ib = e < b ? e : b;
		potad__fb_del(s, u, k);
		potad__add_range(s, u, ia, !dirty);
		potad__add_range(s, ib, e, !dirty);
		potad__free_range(s, ia, ib, dirty);
	}
	if (clean)
		potad__runs_grew(s, a, b, false, true);
	return 0;
}

/* The order of a dirty block that starts at u (ends there, with end), if
 * any: only orders u is aligned to can hold one. */
static bool dirty_at(const struct potad_space *s, uint64_t u, bool end,
		     unsigned *k)
{
	uint64_t m = s->dnonempty;

	if (u && ctz64(u) < 63)
		m &= pow2(ctz64(u) + 1) - 1;
	for (; m; m &= m - 1) {
		unsigned j = ctz64(m);
		uint64_t v = end ? u - pow2(j) : u;

		if ((end ? u - s->ub < pow2(j) : !block_inside(s, v, j)))
			continue;
		if (potad__rtree_get(&s->dirty[j], &s->nodes, NULL,
				     fkey(s, v, j), NULL)) {
			*k = j;
			return true;
		}
	}
	return false;
}

/* A run of dirty units is cut into its maximal aligned blocks (dirty
 * buddies merge), so it is at most two blocks per order long. */
int potad_dirty_next(const struct potad_space *s, uint64_t offset,
		     uint64_t *start, uint64_t *length)
{
	uint64_t x = offset >> s->g, u, y;
	unsigned k;

	if (!s->dirty_blocks)
		return -ENOENT;
	if (x < s->ub)
		x = s->ub;
	if (!(potad__fb_find(s, x, &u, &k) && potad__fb_dirty(s, u, k)) &&
	    !potad__next_block(s, x, true, &u, &k))
		return -ENOENT;
	y = u + pow2(k);
	while (u > s->ub && dirty_at(s, u, true, &k))
		u -= pow2(k);
	while (y < s->ue && dirty_at(s, y, false, &k))
		y += pow2(k);
	if (start)
		*start = u << s->g;
	if (length)
		*length = (y - u) << s->g;
	return 0;
}
