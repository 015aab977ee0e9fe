/* SPDX-License-Identifier: MIT */
/* What refseg.c, its tree upkeep (refseg_tree.c) and its checker share: a
 * gap's buddy blocks by arithmetic, and the tree's shape. */
#ifndef POTAD_BENCH_REFSEG_INT_H
#define POTAD_BENCH_REFSEG_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/fit.h" /* fit(), align_up(), as the engine has them */
#include "refseg.h"

static inline uint64_t bit(unsigned k)
{
	return 1ull << k;
}

static inline unsigned ctz(uint64_t x)
{
	return (unsigned)__builtin_ctzll(x);
}

/*
 * [a, b) as buddy merging leaves it: blocks of rising order from a up to
 * m, the boundary aligned to the highest bit in which a and b - 1 differ,
 * then blocks of falling order.  *lo: the orders below m, one block per
 * bit, in rising order from a; *hi: the orders from m on, falling.  When
 * both halves are that bit's whole block, [a, b) is one block of the next
 * order.
 */
static inline void gap_split(uint32_t a, uint32_t b, uint32_t *m, uint64_t *lo,
			     uint64_t *hi)
{
	uint32_t x = a ^ (b - 1);
	unsigned h;

	if (!x) {
		*m = a;
		*lo = 0;
		*hi = 1;
		return;
	}
	h = 31 - (unsigned)__builtin_clz(x);
	*m = (b - 1) & ~((1u << h) - 1);
	*lo = *m - a;
	*hi = b - *m;
	if (*lo == bit(h) && *hi == bit(h)) {
		*lo = bit(h + 1);
		*hi = 0;
		*m = b;
	}
}

static inline uint64_t gap_orders(uint32_t a, uint32_t b)
{
	uint32_t m;
	uint64_t lo, hi;

	if (a >= b)
		return 0;
	gap_split(a, b, &m, &lo, &hi);
	return lo | hi;
}

static inline uint32_t ent_end(const struct refseg_leaf *l, unsigned i)
{
	return l->e[i].start + l->e[i].len;
}

static inline uint32_t gap_end(const struct refseg_leaf *l, unsigned i)
{
	return i + 1 < l->n ? l->e[i + 1].start : l->end;
}

static inline struct refseg_inner *parent_of(const void *c)
{
	return *(struct refseg_inner *const *)c;
}

#define LEAF REFSEG_LEAF
#define INNER REFSEG_INNER

/* Move n entries of src from si to dst at di; the two may be one leaf. */
static inline void ent_move(struct refseg_leaf *dst, unsigned di,
			    const struct refseg_leaf *src, unsigned si,
			    unsigned n)
{
	memmove(dst->e + di, src->e + si, n * sizeof(*dst->e));
}

/* The last child of in whose key is <= x (child 0 if none is): a binary
 * search the compiler turns into conditional moves. */
static inline unsigned child_for(const struct refseg_inner *in, uint32_t x)
{
	unsigned base = 0, len = in->n;

	while (len > 1) {
		unsigned half = len / 2;

		base = in->key[base + half] <= x ? base + half : base;
		len -= half;
	}
	return base;
}

/* The inner nodes on the way down to a leaf and the child taken at each,
 * so that a leaf's new mask goes up without searching for it. */
struct path {
	unsigned h;
	struct refseg_inner *node[REFSEG_MAXH];
	unsigned idx[REFSEG_MAXH];
};

/* Searches (refseg.c, refseg_bound.c). */

/* The leaf whose keys cover x: at each level the last child whose key is
 * <= x. */
static inline struct refseg_leaf *find_path(const struct refseg *t, uint32_t x,
					    struct path *pa)
{
	void *n = t->root;

	pa->h = t->height;
	for (unsigned h = 0; h < t->height; h++) {
		struct refseg_inner *in = n;
		unsigned i = child_for(in, x);

		pa->node[h] = in;
		pa->idx[h] = i;
		n = in->child[i];
	}
	return n;
}
/* The next gap after entry *ip of *lp that holds a block of order j,
 * along the path; false if none. */
bool refseg__next_gap(unsigned j, struct path *pa, struct refseg_leaf **lp,
		      unsigned *ip);
/* The leaf and entry whose gap holds x, or whose extent does (x is then
 * not free); pa gets the path. */
bool refseg__gap_at(const struct refseg *t, uint32_t x, struct path *pa,
		    struct refseg_leaf **lp, unsigned *ip);
/* The engine's slide of an exact size: [p, p + L) placed in the block at
 * u of gap [a, b) moves up onto the free units below the block (down:
 * above it) when they are too few to hold it, within [lo, hi), at a
 * multiple of A.  The place after it. */
static inline uint64_t slide(uint64_t a, uint64_t b, uint64_t u, uint64_t p,
			     uint64_t L, uint64_t A, uint64_t lo, uint64_t hi,
			     bool down)
{
	uint64_t e, q;

	if (!(L & (L - 1)))
		return p; /* a power of two keeps its block's alignment */
	if (!down) {
		/* With L <= A a slid start would be a whole alignment
		 * lower than p, so the run's edge is not even looked at. */
		e = L > A ? a : u;
		if (e < lo)
			e = lo;
		if (e < p && p - e < L && align_up(e, A, &q) && q < p)
			return q;
		return p;
	}
	e = b > hi ? hi : b;
	if (e - (p + L) < L && ((e - L) & ~(A - 1)) > p)
		return (e - L) & ~(A - 1);
	return p;
}

/* Where the engine puts L units at a multiple of A in [lo, hi) when the
 * range is not the whole space or the request is top-down (mask: the
 * orders >= the needed one that have a free block): *lp, *ip, *pp. */
bool refseg__place_bounded(const struct refseg *t, uint32_t L, uint32_t A,
			   uint32_t lo, uint32_t hi, bool down, uint64_t mask,
			   struct refseg_leaf **lp, unsigned *ip, uint32_t *pp);

/* The tree's shape (refseg_tree.c). */

/* A leaf's counts and cached gap orders from its gaps, after entries moved
 * between leaves (the space's totals do not change). */
void refseg__recount(struct refseg_leaf *l);
/* An inner node's transposed masks and union from its children's masks,
 * after children moved. */
void refseg__inner_rebuild(struct refseg_inner *in);
/* Child i of in has mask m and longest-gap bound g now. */
void refseg__inner_set(struct refseg_inner *in, unsigned i, uint64_t m,
		       uint32_t g);
/* Child i of p has mask *m and bound *g now: record it, and give p's own
 * in *m and *g for the level above; false, and nothing to carry further,
 * if p already had them.  One level of refseg__carry() and of refseg.c's
 * carry up a path. */
static inline bool carry_step(struct refseg_inner *p, unsigned i, uint64_t *m,
			      uint32_t *g)
{
	if (p->mask[i] == *m && p->gmax[i] == *g)
		return false;
	refseg__inner_set(p, i, *m, *g);
	*m = p->own;
	*g = p->gown;
	return true;
}
/* Node c's mask is now m and its bound g: carry them up as far as they
 * change anything, finding c in each parent. */
void refseg__carry(struct refseg *t, void *c, uint64_t m, uint32_t g);
/* Node c's first key is now key: separators stay tight. */
void refseg__set_low(void *c, uint32_t key);
/* Move the upper half of a full leaf to a new leaf after it. */
struct refseg_leaf *refseg__leaf_split(struct refseg *t, struct refseg_leaf *l);
/* Take child c out of p; an inner node left empty goes too, and one left
 * nearly empty is folded into a sibling. */
void refseg__drop_child(struct refseg *t, struct refseg_inner *p, void *c);
/* Fold a leaf less than half full into a sibling, when they fit. */
void refseg__leaf_merge(struct refseg *t, struct refseg_leaf *l);
/* Free the subtree under n, h levels above the leaves. */
void refseg__free_node(void *n, unsigned h);

#endif /* POTAD_BENCH_REFSEG_INT_H */
