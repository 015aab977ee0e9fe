/* SPDX-License-Identifier: MIT */
/* Counters, the fragmentation score, and the invariant checker. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void potad_space_stats(const struct potad_space *s, struct potad_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->base = s->ub << s->g;
	st->units = s->ue - s->ub;
	st->size = st->units << s->g;
	st->granule = pow2(s->g);
	/* Cached extents count as extents inside the engine (cache.c). */
	st->free_units = s->free_units + s->qunits;
	st->used_units = s->used_units - s->qunits;
	st->poison_units = s->poison_units;
	st->extents = s->extents - s->qextents;
	st->cached_units = s->qunits;
	st->cached_extents = s->qextents;
	st->free_blocks = s->free_blocks;
	if (s->nonempty)
		st->largest_free_block = pow2(log2_floor(s->nonempty)) << s->g;
	st->extent_bytes = potad__extents_bytes(s);
	st->meta_bytes = sizeof(*s) + potad__rpool_bytes(&s->nodes) +
			 st->extent_bytes + s->cappoison * sizeof(struct ival) +
			 s->capchildren * sizeof(s->children[0]);
	if (s->qmax)
		st->meta_bytes += (s->qmax + 1ull) * sizeof(s->qhead[0]) +
				  (s->qmax / 64 + 1ull) * sizeof(s->qbits[0]) +
				  (uint64_t)s->qcap * sizeof(s->ring[0]);
	for (unsigned k = 0; k < POTAD_ORDERS; k++)
		st->free_per_order[k] = s->nclean[k] + s->ndirty[k];
	st->max_order = s->max_order;
	st->children = s->nchildren;
	st->dirty_units = s->dirty_units;
	st->dirty_blocks = s->dirty_blocks;
}

/*
 * Free blocks in address order, merged over all orders and both states:
 * one cursor per tree (2k + 1 for order k's dirty one), kept in a small
 * binary heap by the cursor's address, so each step costs log(trees)
 * comparisons, and each leaf word a tree walk.  Linear in the number of
 * free blocks, for stats and checks only.
 */
#define WALK_TREES (2 * POTAD_ORDERS)

struct walk {
	const struct potad_space *s;
	struct riter it[WALK_TREES]; /* each tree's cursor */
	uint64_t next[WALK_TREES];   /* next block's start unit per tree */
	/* Trees with a block still ahead. */
	unsigned char heap[WALK_TREES];
	unsigned n;
	bool dirty; /* whether the block walk_next() gave is dirty */
};

static void walk_sift(struct walk *w, unsigned i)
{
	for (;;) {
		unsigned c = 2 * i + 1, o = w->heap[i];

		if (c >= w->n)
			return;
		if (c + 1 < w->n &&
		    w->next[w->heap[c + 1]] < w->next[w->heap[c]])
			c++;
		if (w->next[o] <= w->next[w->heap[c]])
			return;
		w->heap[i] = w->heap[c];
		w->heap[c] = (unsigned char)o;
		i = c;
	}
}

/* Move tree c's cursor to its next block. */
static bool walk_step(struct walk *w, unsigned c)
{
	const struct potad_space *s = w->s;
	unsigned k = c / 2;
	uint64_t key;

	if (!potad__rtree_iter(FB_TREE(s, c % 2, k), &s->nodes, &w->it[c],
			       &key))
		return false;
	w->next[c] = funit(s, key, k);
	return true;
}

static void walk_init(struct walk *w, const struct potad_space *s)
{
	w->s = s;
	w->n = 0;
	memset(w->it, 0, sizeof(w->it));
	for (unsigned c = 0; c < WALK_TREES; c++)
		if ((s->nonempty & pow2(c / 2)) && walk_step(w, c))
			w->heap[w->n++] = (unsigned char)c;
	for (unsigned i = w->n / 2; i-- > 0;)
		walk_sift(w, i);
}

/* The next free block in address order; false at the end. */
static bool walk_next(struct walk *w, uint64_t *u, unsigned *k)
{
	unsigned best;

	if (w->n == 0)
		return false;
	best = w->heap[0];
	*u = w->next[best];
	*k = best / 2;
	w->dirty = best % 2;
	if (!walk_step(w, best))
		w->heap[0] = w->heap[--w->n];
	walk_sift(w, 0);
	return true;
}

/* BlueStore's score of one free run of v units: 2^k * 1.1^k at powers of
 * two, linear in between. */
static double run_score(uint64_t v)
{
	unsigned k = log2_floor(v);
	double scale = 1.0, x;

	for (unsigned i = 0; i < k; i++)
		scale *= 1.1;
	x = (double)(v - pow2(k)) / (double)pow2(k);
	return (double)pow2(k) * scale * (1 - x) +
	       2.0 * (double)pow2(k) * scale * 1.1 * x;
}

void potad_space_frag(const struct potad_space *s, uint64_t *largest_run,
		      double *score)
{
	struct walk w;
	uint64_t u, rs = 0, re = 0, big = 0, sum = 0;
	double total = 0, ideal;
	unsigned k;
	bool any = false;

	walk_init(&w, s);
	for (;;) {
		bool more = walk_next(&w, &u, &k);

		if (more && any && u == re) {
			re += pow2(k);
			continue;
		}
		if (any) {
			total += run_score(re - rs);
			sum += re - rs;
			if (re - rs > big)
				big = re - rs;
		}
		if (!more)
			break;
		rs = u;
		re = u + pow2(k);
		any = true;
	}
	if (largest_run)
		*largest_run = big << s->g;
	if (!score)
		return;
	/* All in one run scores `ideal`, all in single units scores `sum`. */
	ideal = sum ? run_score(sum) : 0;
	*score = ideal > (double)sum ? (ideal - total) / (ideal - (double)sum)
				     : 0.0;
	if (*score < 0)
		*score = 0;
	if (*score > 1)
		*score = 1;
}

/*
 * The checker.  It re-derives every counter from the trees, then walks the
 * free blocks, the extents and the poison ranges together in address order
 * and demands that they tile [ub, ue): each unit is in exactly one free
 * block or exactly one extent, or else it is poisoned; no free block is
 * poisoned or has a free buddy in the same state (clean or dirty), and
 * no block is both.  Child spaces must match their
 * hosting extents and are checked the same way.
 */
static int fail(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (msg && len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

/* One state's free blocks: inside the space, in that state only, not
 * poisoned, and with no free buddy in the same state.  *n: how many. */
static int check_tree(const struct potad_space *s, unsigned k, bool dirty,
		      uint64_t *n, char *msg, size_t len)
{
	const struct rtree *t = FB_TREE(s, dirty, k);
	struct riter it = {0};
	uint64_t key, u;

	*n = 0;
	if (!potad__rtree_verify(t, &s->nodes, NULL))
		return fail(msg, len, "order %u: malformed %s tree", k,
			    dirty ? "dirty" : "clean");
	while (potad__rtree_iter(t, &s->nodes, &it, &key)) {
		u = funit(s, key, k);
		if (!block_inside(s, u, k))
			return fail(msg, len,
				    "free block %#" PRIx64
				    " order %u outside the space",
				    u, k);
		if (!dirty && (s->dnonempty & pow2(k)) &&
		    potad__rtree_get(&s->dirty[k], &s->nodes, NULL, key, NULL))
			return fail(msg, len,
				    "free block %#" PRIx64
				    " order %u both clean and dirty",
				    u, k);
		/* Buddies in different states stay apart. */
		if (k < 63 && potad__fb_test(s, u ^ pow2(k), k) &&
		    potad__fb_dirty(s, u ^ pow2(k), k) == dirty)
			return fail(msg, len,
				    "free buddies %#" PRIx64 " and %#" PRIx64
				    " order %u unmerged",
				    u, u ^ pow2(k), k);
		if (s->npoison && potad__poison_overlaps(s, u, u + pow2(k)))
			return fail(msg, len,
				    "free block %#" PRIx64 " order %u is poisoned",
				    u, k);
		(*n)++;
	}
	return 0;
}

static int check_free(const struct potad_space *s, char *msg, size_t len)
{
	uint64_t blocks = 0, units = 0, dblocks = 0, dunits = 0;

	for (unsigned k = 0; k < POTAD_ORDERS; k++) {
		uint64_t c, d;
		int rc = check_tree(s, k, false, &c, msg, len);

		if (rc == 0)
			rc = check_tree(s, k, true, &d, msg, len);
		if (rc < 0)
			return rc;
		if (c != s->nclean[k] || d != s->ndirty[k])
			return fail(msg, len,
				    "order %u: %" PRIu64 " clean and %" PRIu64
				    " dirty blocks, counters %" PRIu64
				    " and %" PRIu64,
				    k, c, d, s->nclean[k], s->ndirty[k]);
		if (!!(c + d) != !!(s->nonempty & pow2(k)) ||
		    !!c != !!(s->cnonempty & pow2(k)) ||
		    !!d != !!(s->dnonempty & pow2(k)))
			return fail(msg, len, "order %u: non-empty bits wrong",
				    k);
		blocks += c + d;
		units += (c + d) << k;
		dblocks += d;
		dunits += d << k;
	}
	if (blocks != s->free_blocks || units != s->free_units)
		return fail(msg, len,
			    "free counters %" PRIu64 " blocks %" PRIu64
			    " units, found %" PRIu64 " and %" PRIu64,
			    s->free_blocks, s->free_units, blocks, units);
	if (dblocks != s->dirty_blocks || dunits != s->dirty_units)
		return fail(msg, len,
			    "dirty counters %" PRIu64 " blocks %" PRIu64
			    " units, found %" PRIu64 " and %" PRIu64,
			    s->dirty_blocks, s->dirty_units, dblocks, dunits);
	return 0;
}

/* The free-slot list holds every free slot once.  potad_place() leaves it
 * dirty, to be rebuilt before the next allocation takes a slot, and until
 * then there is nothing to check. */
static int check_slots(const struct potad_space *s, uint64_t live, char *msg,
		       size_t len)
{
	uint64_t n = 0;

	if (s->slots_dirty)
		return 0;
	for (uint32_t i = s->freeslot; i != SLOT_NIL;
	     i = DESC(s, i)->start) {
		if (i >= s->nslots || DESC_TYPE(DESC(s, i)) != 0)
			return fail(msg, len, "free-slot list: slot %u is live",
				    i);
		if (++n > s->nslots - live)
			return fail(msg, len, "free-slot list: a loop");
	}
	if (n != s->nslots - live)
		return fail(msg, len,
			    "free-slot list: %" PRIu64 " of %" PRIu64
			    " free slots",
			    n, s->nslots - live);
	return 0;
}

static int check_extents(const struct potad_space *s, char *msg, size_t len)
{
	uint64_t key = 0, n = 0, units = 0, end = s->ub, live = 0;
	uint32_t slot, got;

	if (!potad__rtree_verify(&s->index, &s->inodes, &s->vals))
		return fail(msg, len, "extent index: malformed tree");
	while (potad__rtree_next(&s->index, &s->inodes, &s->vals, key, &key,
				 &slot)) {
		uint64_t ds, dl;

		if (slot >= s->nslots)
			return fail(msg, len, "index key %#" PRIx64 ": slot %u",
				    key, slot);
		ds = desc_start(s, slot);
		dl = desc_len(s, slot);
		if (DESC_TYPE(DESC(s, slot)) == 0 || ds - s->ub != key ||
		    dl == 0 || ds < end || s->ue - ds < dl)
			return fail(msg, len,
				    "extent slot %u [%#" PRIx64 ", +%#" PRIx64
				    ") bad or overlapping",
				    slot, ds, dl);
		end = ds + dl;
		units += dl;
		n++;
		if (key == UINT64_MAX)
			break;
		key++;
	}
	for (uint32_t i = 0; i < s->nslots; i++) {
		if (DESC_TYPE(DESC(s, i)) == 0)
			continue;
		live++;
		if (!potad__rtree_get(&s->index, &s->inodes, &s->vals,
				      desc_start(s, i) - s->ub, &got) ||
		    got != i)
			return fail(msg, len, "slot %u missing from the index",
				    i);
	}
	if (n != s->extents || live != n || units != s->used_units)
		return fail(msg, len,
			    "extent counters: %" PRIu64 " extents %" PRIu64
			    " units, found %" PRIu64 " (%" PRIu64
			    " live slots) and %" PRIu64,
			    s->extents, s->used_units, n, live, units);
	return check_slots(s, live, msg, len);
}

/* The reuse cache: each list holds cached slots of its length, linked
 * both ways; every cached slot is on one and has one live ring entry; the
 * counters add up. */
static int check_cache(const struct potad_space *s, char *msg, size_t len)
{
	uint64_t n = 0, units = 0, typed = 0, live = 0;

	for (uint32_t i = 0; i < s->nslots; i++)
		typed += DESC_TYPE(DESC(s, i)) == DESC_CACHED;
	if (typed != s->qextents)
		return fail(msg, len,
			    "cache: %" PRIu64 " cached slots, %" PRIu64
			    " counted",
			    typed, s->qextents);
	if (!s->qmax)
		return s->qunits || s->qcount
			   ? fail(msg, len, "cache: off but not empty")
			   : 0;
	for (uint32_t l = 1; l <= s->qmax; l++) {
		uint32_t newer = SLOT_NIL;

		if (!!(s->qbits[l / 64] & pow2(l % 64)) !=
		    (s->qhead[l] != SLOT_NIL))
			return fail(msg, len, "cache: bit of length %u wrong",
				    l);

		for (uint32_t i = s->qhead[l]; i != SLOT_NIL;
		     newer = i, i = DESC(s, i)->owner) {
			const struct desc *d =
			    i < s->nslots ? DESC(s, i) : NULL;
			uint64_t a;

			if (!d || DESC_TYPE(d) != DESC_CACHED ||
			    desc_len(s, i) != l || d->tag != newer ||
			    ++n > s->qextents)
				return fail(msg, len,
					    "cache: list of length %u broken "
					    "at slot %u",
					    l, i);
			a = desc_start(s, i);
			if ((!(l & (l - 1)) && (a & (l - 1))) ||
			    (s->npoison && potad__poison_overlaps(s, a, a + l)))
				return fail(msg, len,
					    "cache: slot %u should not be "
					    "cached",
					    i);
			units += l;
		}
	}
	for (uint32_t j = 0; j < s->qcount; j++) {
		const struct qent *e = &s->ring[(s->qfirst + j) % s->qcap];
		const struct desc *d;

		if (e->slot >= s->nslots)
			return fail(msg, len, "cache: ring entry %u: slot %u",
				    j, e->slot);
		d = DESC(s, e->slot);
		live += DESC_TYPE(d) == DESC_CACHED && DESC_GEN(d) == e->gen;
	}
	if (n != s->qextents || live != n || units != s->qunits ||
	    s->qcount > s->qcap || s->qfirst >= s->qcap ||
	    s->qunits > s->qunits_max)
		return fail(msg, len,
			    "cache counters: %" PRIu64 " extents %" PRIu64
			    " units, found %" PRIu64 " listed (%" PRIu64
			    " in the ring) and %" PRIu64,
			    s->qextents, s->qunits, n, live, units);
	return 0;
}

/* The longest run of free blocks (of clean ones), as check_tiling() meets
 * them in address order. */
struct runs {
	uint64_t end, run, big;
	uint64_t cend, crun, cbig;
};

static void runs_add(struct runs *r, uint64_t u, uint64_t n, bool dirty)
{
	r->run = u == r->end ? r->run + n : n;
	r->end = u + n;
	if (r->run > r->big)
		r->big = r->run;
	if (dirty)
		return;
	r->crun = u == r->cend ? r->crun + n : n;
	r->cend = u + n;
	if (r->crun > r->cbig)
		r->cbig = r->crun;
}

/* Free blocks, extents and poison tile the space, and no free run (no
 * clean one) is longer than its bound. */
static int check_tiling(const struct potad_space *s, char *msg, size_t len)
{
	struct walk w;
	struct runs r = { 0 };
	uint64_t x = s->ub, fu = 0, ekey = 0, units = 0, pi = 0;
	unsigned fk = 0;
	uint32_t slot = 0;
	bool fmore, emore;

	for (uint64_t i = 0; i < s->npoison; i++) {
		const struct ival *p = &s->poison[i];

		if (p->s >= p->e || p->s < s->ub || p->e > s->ue ||
		    (i && p->s <= s->poison[i - 1].e))
			return fail(msg, len, "poison range %" PRIu64 " malformed",
				    i);
		units += p->e - p->s;
	}
	if (units != s->poison_units)
		return fail(msg, len, "poison counter %" PRIu64 ", found %" PRIu64,
			    s->poison_units, units);
	walk_init(&w, s);
	fmore = walk_next(&w, &fu, &fk);
	emore = potad__rtree_next(&s->index, &s->inodes, &s->vals, 0, &ekey,
				  &slot);
	while (x < s->ue) {
		uint64_t es = emore ? desc_start(s, slot) : s->ue;

		if (fmore && fu == x) {
			runs_add(&r, x, pow2(fk), w.dirty);
			x += pow2(fk);
			fmore = walk_next(&w, &fu, &fk);
		} else if (emore && es == x) {
			x += desc_len(s, slot);
			emore = x - s->ub <= potad__rtree_maxkey(&s->index) &&
				potad__rtree_next(&s->index, &s->inodes,
						  &s->vals, x - s->ub, &ekey,
						  &slot);
		} else {
			/* A gap: it must be poisoned, up to the next piece. */
			uint64_t stop = fmore && fu < es ? fu : es;

			while (pi < s->npoison && s->poison[pi].e <= x)
				pi++;
			if ((fmore && fu < x) || es < x)
				return fail(msg, len,
					    "pieces overlap at unit %#" PRIx64, x);
			if (pi >= s->npoison || s->poison[pi].s > x)
				return fail(msg, len,
					    "unit %#" PRIx64
					    " is neither free, held nor poisoned",
					    x);
			x = s->poison[pi].e < stop ? s->poison[pi].e : stop;
		}
	}
	if (fmore || emore)
		return fail(msg, len, "pieces run past the end of the space");
	if (r.big > s->run_bound || r.cbig > s->clean_bound)
		return fail(msg, len,
			    "a free run of %" PRIu64 " units (clean: %" PRIu64
			    "), over the bound of %" PRIu64 " (%" PRIu64 ")",
			    r.big, r.cbig, s->run_bound, s->clean_bound);
	return 0;
}

static int check_children(const struct potad_space *s, char *msg, size_t len)
{
	uint32_t hosts = 0;
	int rc;

	for (uint32_t i = 0; i < s->nslots; i++)
		hosts += DESC_TYPE(DESC(s, i)) == POTAD_TYPE_CHILD;
	if (hosts != s->nchildren)
		return fail(msg, len, "%u hosting extents, %u children", hosts,
			    s->nchildren);
	for (uint32_t i = 0; i < s->nchildren; i++) {
		const struct potad_space *c = s->children[i];
		uint64_t ds, de;

		if (c->parent != s || c->parent_slot >= s->nslots)
			return fail(msg, len, "child %u: bad parent link", i);
		ds = desc_start(s, c->parent_slot);
		de = desc_end(s, c->parent_slot);
		if (DESC_TYPE(DESC(s, c->parent_slot)) != POTAD_TYPE_CHILD ||
		    (c->ub << c->g) != (ds << s->g) ||
		    (c->ue << c->g) > (de << s->g))
			return fail(msg, len,
				    "child %u does not match its extent", i);
		for (uint64_t j = 0; j < s->npoison; j++) {
			uint64_t a = s->poison[j].s, b = s->poison[j].e;

			if (a < ds)
				a = ds;
			if (b > de)
				b = de;
			a = (a << s->g) >> c->g;
			b = (b << s->g) >> c->g;
			if (b > c->ue)
				b = c->ue;
			if (a < b && potad__poison_count(c, a, b) != b - a)
				return fail(msg, len,
					    "child %u lacks its parent's poison",
					    i);
		}
		rc = potad_space_check(c, msg, len);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int potad_space_check(const struct potad_space *s, char *msg, size_t len)
{
	int rc;

	/* Free and held units are disjoint (poisoned ones may be held), and
	 * the sums may not wrap: a space can hold 2^64 - 1 units. */
	if (s->free_units > s->ue - s->ub ||
	    s->used_units > s->ue - s->ub - s->free_units ||
	    s->poison_units > s->ue - s->ub - s->free_units)
		return fail(msg, len, "unit counters do not add up");
	rc = check_free(s, msg, len);
	if (rc == 0)
		rc = check_extents(s, msg, len);
	if (rc == 0)
		rc = check_cache(s, msg, len);
	if (rc == 0)
		rc = check_tiling(s, msg, len);
	if (rc == 0)
		rc = check_children(s, msg, len);
	if (rc == 0 && msg && len)
		msg[0] = '\0';
	return rc;
}
