/* SPDX-License-Identifier: MIT */
/* A candidate design for the engine: extents in an address-ordered B+ tree,
 * free space as the gaps between them. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "refseg.h"
#include "refseg_int.h"

/*
 * The engine today keeps one sparse bitmap tree per buddy order, so an
 * exact extent costs a tree operation per block it is cut into, on both
 * allocation and free, plus one in the extent index.  Here the extents are
 * the only records: entries (start, length, slot) in the leaves of one B+
 * tree keyed by start, which is also the index that answers "which extent
 * holds x".  The free space between two extents is a gap, and the buddy
 * allocator's view of it, the maximal aligned power-of-two blocks that
 * merging would leave, is computed from its two ends (gap_split()) rather
 * than stored.  Each leaf counts, per order, the gaps that hold a block of
 * that order, and each inner node keeps its children's masks of such
 * orders, so "the lowest free block of the smallest order >= k" is a ctz
 * at the root and a walk down along the first child whose mask has the
 * bit: the engine's placement, found in one descent.
 *
 * An allocation is one entry inserted; a free is one entry removed and two
 * gaps joined.  Only a leaf changes, and its ancestors' masks when a
 * count crosses zero.  Separators are kept tight (a child's key is its
 * first start), because a new entry may land in the gap that runs up to
 * the next leaf's first start.
 *
 * A sentinel entry of length 0 at the space's first unit owns the gap before
 * the first extent, so every gap has an owner.  An entry may also be a mark,
 * with no descriptor: the range a dirty free left, which ends a gap as an
 * extent does, so that the gaps are the clean free space (the clean half of
 * the port bench/NOTES.md plans).  This is the part of the engine the
 * benchmark checks it against, for a space below unit 2^32: no plain
 * requests over dirty space, poison or child spaces.  A leaf less than half
 * full is folded into a sibling; an inner node goes only when empty.
 */

/* The lowest block of order j in [a, b), which must hold one. */
static inline uint32_t gap_block(uint32_t a, uint32_t b, unsigned j)
{
	uint32_t m;
	uint64_t lo, hi;

	gap_split(a, b, &m, &lo, &hi);
	if (lo & bit(j))
		return a + (uint32_t)(lo & (bit(j) - 1));
	return m + (uint32_t)(hi >> (j + 1) << (j + 1));
}

/* Count gap [a, b) into leaf l and the space's totals (d = 1) or out of
 * them (d = -1). */
static void gap_count(struct refseg *t, struct refseg_leaf *l, uint32_t a,
		      uint32_t b, int d)
{
	uint32_t m;
	uint64_t lo, hi, o;

	if (a >= b)
		return;
	gap_split(a, b, &m, &lo, &hi);
	t->free_units += (uint64_t)(int64_t)d * (b - a);
	for (o = lo | hi; o; o &= o - 1) {
		unsigned k = ctz(o);

		l->cnt[k] = (uint8_t)(l->cnt[k] + d);
		if (l->cnt[k])
			l->mask |= bit(k);
		else
			l->mask &= ~bit(k);
	}
	for (o = lo; o; o &= o - 1)
		t->nfree[ctz(o)] += (uint64_t)(int64_t)d;
	for (o = hi; o; o &= o - 1)
		t->nfree[ctz(o)] += (uint64_t)(int64_t)d;
}

static inline void gap_in(struct refseg *t, struct refseg_leaf *l, uint32_t a,
			  uint32_t b)
{
	gap_count(t, l, a, b, 1);
}

static inline void gap_out(struct refseg *t, struct refseg_leaf *l, uint32_t a,
			   uint32_t b)
{
	gap_count(t, l, a, b, -1);
}

int refseg_init(struct refseg *t, uint64_t ub, uint64_t ue, uint32_t cap)
{
	struct refseg_leaf *l;

	memset(t, 0, sizeof(*t));
	if (ub >= ue || ue > UINT32_MAX || cap == 0)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	t->desc = calloc(cap, sizeof(*t->desc));
	if (!l || !t->desc) {
		free(l);
		free(t->desc);
		return -ENOMEM;
	}
	t->root = l;
	t->leaves = 1;
	t->ub = ub;
	t->ue = ue;
	t->capslots = cap;
	t->freeslot = REFSEG_NIL;
	l->n = 1;
	l->e[0].start = (uint32_t)ub;
	l->e[0].len = 0;
	l->e[0].slot = REFSEG_NIL;
	l->end = (uint32_t)ue;
	gap_in(t, l, (uint32_t)ub, (uint32_t)ue);
	l->e[0].ord = (uint32_t)gap_orders((uint32_t)ub, (uint32_t)ue);
	l->gmax = t->gmax = (uint32_t)(ue - ub);
	t->mask = l->mask;
	return 0;
}

void refseg_fini(struct refseg *t)
{
	if (t->root)
		refseg__free_node(t->root, t->height);
	free(t->desc);
	memset(t, 0, sizeof(*t));
}

static uint32_t slot_take(struct refseg *t)
{
	uint32_t s = t->freeslot;

	if (s != REFSEG_NIL) {
		t->freeslot = t->desc[s].start;
		return s;
	}
	return t->nslots < t->capslots ? t->nslots++ : REFSEG_NIL;
}

/* Down from n, the node at level lvl of the path, along the first
 * children whose masks have order j (n's has). */
static struct refseg_leaf *descend(struct path *pa, unsigned lvl, void *n,
				   unsigned j)
{
	for (; lvl < pa->h; lvl++) {
		struct refseg_inner *in = n;
		unsigned i = ctz(in->has[j]);

		pa->node[lvl] = in;
		pa->idx[lvl] = i;
		n = in->child[i];
	}
	return n;
}

/* The leaf at the end of pa has mask m and longest gap g now: carry them
 * up. */
static void carry_up(struct refseg *t, const struct path *pa, uint64_t m,
		     uint32_t g)
{
	for (unsigned lvl = pa->h; lvl-- > 0;)
		if (!carry_step(pa->node[lvl], pa->idx[lvl], &m, &g))
			return;
	t->mask = m;
	t->gmax = g;
}

/* pp: the path to the leaf before the one at the end of pa (which must
 * have one), found by stepping left where pa last can and going down the
 * last children. */
static void left_path(const struct path *pa, struct path *pp)
{
	unsigned lvl = pa->h;
	void *n;

	*pp = *pa;
	while (pp->idx[--lvl] == 0)
		;
	n = pp->node[lvl]->child[--pp->idx[lvl]];
	for (lvl++; lvl < pp->h; lvl++) {
		struct refseg_inner *in = n;

		pp->node[lvl] = in;
		pp->idx[lvl] = in->n - 1;
		n = in->child[in->n - 1];
	}
}

/* The leaf at the end of pa has first key `key` now: separators stay
 * tight (refseg__set_low() without the searches). */
static void set_low_path(const struct path *pa, uint32_t key)
{
	for (unsigned lvl = pa->h; lvl-- > 0;) {
		pa->node[lvl]->key[pa->idx[lvl]] = key;
		if (pa->idx[lvl])
			return;
	}
}

/* The first gap of l from entry *ip on that holds a block of order j. */
static bool leaf_seek(const struct refseg_leaf *l, unsigned j, unsigned *ip)
{
	uint32_t b = (uint32_t)bit(j);

	for (unsigned i = *ip; i < l->n; i++)
		if (l->e[i].ord & b) {
			*ip = i;
			return true;
		}
	return false;
}

/* The next gap after entry *ip of *lp that holds a block of order j:
 * along the leaf, then up the path to the first ancestor with a later
 * child that has the order and down its first such children.  False if
 * none. */
bool refseg__next_gap(unsigned j, struct path *pa, struct refseg_leaf **lp,
		      unsigned *ip)
{
	struct refseg_leaf *l = *lp;
	unsigned i = *ip + 1;

	if (leaf_seek(l, j, &i))
		goto found;
	for (unsigned lvl = pa->h; lvl-- > 0;) {
		struct refseg_inner *p = pa->node[lvl];
		uint64_t later = (uint64_t)p->has[j] >>
				 (pa->idx[lvl] + 1) << (pa->idx[lvl] + 1);
		unsigned k = ctz(later | bit(63));

		if (later) {
			pa->idx[lvl] = k;
			l = descend(pa, lvl + 1, p->child[k], j);
			i = 0;
			if (leaf_seek(l, j, &i))
				goto found;
			return false; /* a mask that lies: refseg_check() says
				       */
		}
	}
	return false;
found:
	*lp = l;
	*ip = i;
	return true;
}

/* The longest of l's gaps. */
static uint32_t leaf_gmax(const struct refseg_leaf *l)
{
	uint32_t g = 0;

	for (unsigned i = 0; i < l->n; i++)
		if (gap_end(l, i) - ent_end(l, i) > g)
			g = gap_end(l, i) - ent_end(l, i);
	return g;
}

/* Put an extent [q, q + len) in slot s into the gap of entry i of l, at
 * the end of path pa. */
static void leaf_put(struct refseg *t, struct path *pa, struct refseg_leaf *l,
		     unsigned i, uint32_t q, uint32_t len, uint32_t s)
{
	uint32_t a, b;
	unsigned n;
	bool split = l->n == LEAF;

	if (split) {
		struct refseg_leaf *r = refseg__leaf_split(t, l);

		if (i >= l->n) {
			i -= l->n;
			l = r;
		}
	}
	a = ent_end(l, i);
	b = gap_end(l, i);
	gap_out(t, l, a, b);
	gap_in(t, l, a, q);
	gap_in(t, l, q + len, b);
	l->e[i].ord = (uint32_t)gap_orders(a, q);
	i++;
	n = l->n - i;
	ent_move(l, i + 1, l, i, n);
	l->e[i].start = q;
	l->e[i].len = len;
	l->e[i].slot = s;
	l->e[i].ord = (uint32_t)gap_orders(q + len, b);
	l->n++;
	if (split || !pa) /* no path, or a stale one */
		refseg__carry(t, l, l->mask, l->gmax);
	else
		carry_up(t, pa, l->mask, l->gmax);
}

/* Tries at the holes below the needed order, as the engine's near_fit(). */
#define NEAR_FIT_TRIES 4

/* The first of the lowest NEAR_FIT_TRIES blocks of order o whose gap holds
 * len units from its first multiple of align; *p gets that unit. */
static bool near_fit(const struct refseg *t, unsigned o, uint32_t len,
		     uint32_t align, struct path *pa, struct refseg_leaf **lp,
		     unsigned *ip, uint32_t *p)
{
	struct refseg_leaf *l;
	unsigned i = 0, tries = 0;

	if (!(t->mask & bit(o)))
		return false;
	pa->h = t->height;
	l = descend(pa, 0, t->root, o);
	if (!leaf_seek(l, o, &i))
		return false;
	for (;;) {
		uint32_t a = ent_end(l, i), b = gap_end(l, i), m;
		uint64_t lo, hi, x;

		if (fit(a, b, len, align, false, &x)) {
			*lp = l;
			*ip = i;
			*p = (uint32_t)x;
			return true;
		}
		gap_split(a, b, &m, &lo, &hi);
		tries += !!(lo & bit(o)) + !!(hi & bit(o));
		if (tries >= NEAR_FIT_TRIES || !refseg__next_gap(o, pa, &l, &i))
			return false;
	}
}

/* The lowest gap under n (at level lvl of pa) where len units fit at a
 * multiple of align: down the children whose longest gap is long enough,
 * in address order.  Alignment can make a long enough gap miss, so this
 * may look at several; it is the engine's slow path (run assembly), which
 * may be linear. */
static bool fit_under(struct refseg *t, struct path *pa, unsigned lvl, void *n,
		      uint32_t len, uint32_t align, struct refseg_leaf **lp,
		      unsigned *ip, uint32_t *p)
{
	if (lvl == pa->h) {
		struct refseg_leaf *l = n;
		uint32_t g;

		for (unsigned i = 0; i < l->n; i++) {
			uint64_t x;

			if (fit(ent_end(l, i), gap_end(l, i), len, align, false,
				&x)) {
				*lp = l;
				*ip = i;
				*p = (uint32_t)x;
				return true;
			}
		}
		/* A bound found loose is made exact on the way. */
		g = leaf_gmax(l);
		if (g < l->gmax) {
			l->gmax = g;
			refseg__carry(t, l, l->mask, g);
		}
		return false;
	}
	for (unsigned i = 0; i < ((struct refseg_inner *)n)->n; i++) {
		struct refseg_inner *in = n;

		if (in->gmax[i] < len)
			continue;
		pa->node[lvl] = in;
		pa->idx[lvl] = i;
		if (fit_under(t, pa, lvl + 1, in->child[i], len, align, lp, ip,
			      p))
			return true;
	}
	return false;
}

/* Where the engine's fast path puts len units at align in a space with a
 * free block of order >= k (mask: those orders): l, *ip, *pa and *p. */
static void place_fast(struct refseg *t, uint32_t len, uint32_t align,
		       unsigned k, uint64_t mask, struct path *pa,
		       struct refseg_leaf **lp, unsigned *ip, uint32_t *p)
{
	unsigned j = ctz(mask), i = 0;
	struct refseg_leaf *l;
	uint32_t a, b;

	/* Before splitting a larger block, holes one and two orders down. */
	for (unsigned o = k; j > k && o > 0 && o + 2 > k; o--)
		if (align <= bit(o - 1) &&
		    near_fit(t, o - 1, len, align, pa, lp, ip, p))
			return;
	pa->h = t->height;
	l = descend(pa, 0, t->root, j);
	leaf_seek(l, j, &i);
	a = ent_end(l, i);
	b = gap_end(l, i);
	*p = gap_block(a, b, j);
	/* Exact sizes slide onto the free units below their block when
	 * those are too few to hold them, as the engine's do. */
	*p = (uint32_t)slide(a, b, *p, *p, len, align, t->ub, t->ue, false);
	*lp = l;
	*ip = i;
}

/* Put the extent [p, p + len) into the gap of entry i of l (at the end of
 * pa, or NULL): its slot. */
static uint32_t put(struct refseg *t, struct path *pa, struct refseg_leaf *l,
		    unsigned i, uint32_t p, uint32_t len, uint32_t owner,
		    uint32_t tag)
{
	uint32_t s = slot_take(t);

	leaf_put(t, pa, l, i, p, len, s);
	t->desc[s] = (struct refseg_desc){p, owner, tag, t->desc[s].word + 1};
	return s;
}

uint32_t refseg_alloc(struct refseg *t, uint32_t len, uint32_t align,
		      uint32_t owner, uint32_t tag)
{
	return refseg_alloc_in(t, len, align, (uint32_t)t->ub, (uint32_t)t->ue,
			       false, owner, tag);
}

uint32_t refseg_alloc_in(struct refseg *t, uint32_t len, uint32_t align,
			 uint32_t lo, uint32_t hi, bool down, uint32_t owner,
			 uint32_t tag)
{
	unsigned k = len <= 1 ? 0 : 32 - (unsigned)__builtin_clz(len - 1);
	uint64_t m;
	struct refseg_leaf *l;
	struct path pa, *path = &pa; /* NULL: found without one */
	unsigned i = 0;
	uint32_t p;

	if (len == 0 || align == 0 || (align & (align - 1)) || lo >= hi ||
	    lo < t->ub || hi > t->ue || len > hi - lo)
		return REFSEG_NIL;
	if (31 - (unsigned)__builtin_clz(align) > k)
		k = 31 - (unsigned)__builtin_clz(align);
	m = t->mask & (~0ull << k);
	if (t->nslots == t->capslots && t->freeslot == REFSEG_NIL)
		return REFSEG_NIL;
	if (down || lo != t->ub || hi != t->ue) {
		if (!refseg__place_bounded(t, len, align, lo, hi, down, m, &l,
					   &i, &p))
			return REFSEG_NIL;
		path = NULL;
	} else if (m) {
		place_fast(t, len, align, k, m, &pa, &l, &i, &p);
	} else {
		/* No block of the order: the lowest run that holds it. */
		pa.h = t->height;
		if (t->gmax < len ||
		    !fit_under(t, &pa, 0, t->root, len, align, &l, &i, &p))
			return REFSEG_NIL;
	}
	return put(t, path, l, i, p, len, owner, tag);
}

uint32_t refseg_claim(struct refseg *t, uint32_t at, uint32_t len,
		      uint32_t owner, uint32_t tag)
{
	struct refseg_leaf *l;
	struct path pa;
	unsigned i;

	if (len == 0 || at < t->ub || at >= t->ue || len > t->ue - at ||
	    (t->nslots == t->capslots && t->freeslot == REFSEG_NIL) ||
	    !refseg__gap_at(t, at, &pa, &l, &i) ||
	    (uint64_t)at + len > gap_end(l, i))
		return REFSEG_NIL;
	return put(t, NULL, l, i, at, len, owner, tag);
}

/* The slot's descriptor is free again. */
static void slot_put(struct refseg *t, uint32_t s)
{
	struct refseg_desc *d = &t->desc[s];

	d->start = t->freeslot;
	d->word++;
	t->freeslot = s;
}

/* The leaf and index of the entry that starts at x in slot s, and the
 * path to it. */
static inline struct refseg_leaf *ent_find(const struct refseg *t, uint32_t x,
					   uint32_t s, struct path *pa,
					   unsigned *ip)
{
	struct refseg_leaf *l = find_path(t, x, pa);
	unsigned i = 0;

	while (l->e[i].start != x || l->e[i].slot != s)
		i++;
	*ip = i;
	return l;
}

/* Take entry i of l (at the end of pa) out: the gap before it grows over
 * it and the gap after it. */
static inline void ent_remove(struct refseg *t, struct path *pa,
			      struct refseg_leaf *l, unsigned i)
{
	struct refseg_leaf *pl;
	unsigned n, pi;
	uint32_t a1, a2, b2, start = l->e[i].start;

	a2 = ent_end(l, i);
	b2 = gap_end(l, i);
	gap_out(t, l, a2, b2);
	/* The gap before the extent grows over it and the gap after. */
	pl = i ? l : l->prev;
	pi = i ? i - 1 : pl->n - 1;
	a1 = ent_end(pl, pi);
	gap_out(t, pl, a1, start);
	gap_in(t, pl, a1, b2);
	pl->e[pi].ord = (uint32_t)gap_orders(a1, b2);
	if (b2 - a1 > pl->gmax)
		pl->gmax = b2 - a1;
	n = l->n - i - 1;
	ent_move(l, i, l, i + 1, n);
	l->n--;
	if (pl != l) {
		struct path pp;

		pl->end = l->n ? l->e[0].start : l->end;
		left_path(pa, &pp);
		carry_up(t, &pp, pl->mask, pl->gmax);
	}
	if (l->n == 0) {
		pl->next = l->next;
		if (l->next)
			l->next->prev = pl;
		refseg__drop_child(t, l->parent, l);
		free(l);
		t->leaves--;
	} else {
		if (i == 0)
			set_low_path(pa, l->e[0].start);
		carry_up(t, pa, l->mask, l->gmax);
		if (l->n < LEAF / 2)
			refseg__leaf_merge(t, l);
	}
}

void refseg_free(struct refseg *t, uint32_t s)
{
	struct path pa;
	unsigned i;
	struct refseg_leaf *l = ent_find(t, t->desc[s].start, s, &pa, &i);

	ent_remove(t, &pa, l, i);
	slot_put(t, s);
}

/* Entry i of l (at the end of pa) grows to end at e, over the start of
 * its own gap: a mark taking in the range it merged with. */
static void ent_grow(struct refseg *t, struct path *pa, struct refseg_leaf *l,
		     unsigned i, uint32_t e)
{
	uint32_t a = ent_end(l, i), b = gap_end(l, i);

	gap_out(t, l, a, b);
	gap_in(t, l, e, b);
	l->e[i].len = e - l->e[i].start;
	l->e[i].ord = (uint32_t)gap_orders(e, b);
	carry_up(t, pa, l->mask, l->gmax);
}

/* If the entry after the mark at x is a mark that touches it, make them
 * one.  Whether it did. */
static bool mark_join_next(struct refseg *t, uint32_t x)
{
	struct path pa;
	unsigned i;
	struct refseg_leaf *l = ent_find(t, x, REFSEG_MARK, &pa, &i), *nl;
	unsigned ni = i + 1;
	uint32_t e;

	nl = ni < l->n ? l : l->next;
	if (ni >= l->n)
		ni = 0;
	if (!nl || nl->e[ni].slot != REFSEG_MARK ||
	    nl->e[ni].start != ent_end(l, i))
		return false;
	e = ent_end(nl, ni);
	refseg_unmark(t, nl->e[ni].start, e);
	l = ent_find(t, x, REFSEG_MARK, &pa, &i);
	ent_grow(t, &pa, l, i, e);
	return true;
}

void refseg_free_dirty(struct refseg *t, uint32_t s)
{
	struct path pa;
	unsigned i;
	uint32_t x = t->desc[s].start;
	struct refseg_leaf *l = ent_find(t, x, s, &pa, &i), *pl;
	unsigned pi = i ? i - 1 : 0;

	slot_put(t, s);
	l->e[i].slot = REFSEG_MARK;
	/* A dirty run is one mark, as the engine's dirty blocks tile one. */
	pl = i ? l : l->prev;
	if (pl && !i)
		pi = pl->n - 1;
	if (pl && pl->e[pi].slot == REFSEG_MARK && ent_end(pl, pi) == x) {
		x = pl->e[pi].start;
		mark_join_next(t, x);
	}
	mark_join_next(t, x);
}

void refseg_unmark(struct refseg *t, uint32_t a, uint32_t b)
{
	while (a < b) {
		struct path pa;
		unsigned i;
		struct refseg_leaf *l = ent_find(t, a, REFSEG_MARK, &pa, &i);

		a = ent_end(l, i);
		ent_remove(t, &pa, l, i);
	}
}

uint32_t refseg_lookup(const struct refseg *t, uint32_t x)
{
	struct path pa;
	const struct refseg_leaf *l = find_path(t, x, &pa);
	unsigned i = l->n;

	while (i > 0 && l->e[i - 1].start > x)
		i--;
	if (i == 0 || x >= ent_end(l, i - 1))
		return REFSEG_NIL;
	return l->e[i - 1].slot;
}

uint64_t refseg_bytes(const struct refseg *t)
{
	return t->leaves * sizeof(struct refseg_leaf) +
	       t->inners * sizeof(struct refseg_inner) +
	       (uint64_t)t->nslots * sizeof(*t->desc) + sizeof(*t);
}
