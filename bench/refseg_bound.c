/* SPDX-License-Identifier: MIT */
/* refseg.c's range-bounded and top-down placement, as the engine's. */
#include "refseg.h"
#include "refseg_int.h"

/*
 * Ranges and top-down, as the engine's alloc.c places them: a probe at
 * the highest aligned unit of the range (top-down), then per order the
 * block holding the range's edge or the next one inward, then the run
 * search.  Its gaps are visited in address order from the range's edge,
 * skipping leaves whose bound is too short: like the engine's, that is
 * the slow path, linear in what it skips.
 */

/* The leaf and entry whose gap holds x, or whose extent does (x is then
 * not free); pa gets the path. */
bool refseg__gap_at(const struct refseg *t, uint32_t x, struct path *pa,
		    struct refseg_leaf **lp, unsigned *ip)
{
	struct refseg_leaf *l = find_path(t, x, pa);
	unsigned i = l->n - 1;

	while (i > 0 && l->e[i].start > x)
		i--;
	*lp = l;
	*ip = i;
	return x >= ent_end(l, i) && x < gap_end(l, i);
}

/* The block of [a, b)'s buddy cut that holds x: *v, of order *o. */
static void block_at(uint32_t a, uint32_t b, uint32_t x, uint32_t *v,
		     unsigned *o)
{
	uint32_t m;
	uint64_t lo, hi, pos, r;

	gap_split(a, b, &m, &lo, &hi);
	pos = x < m ? a : m;
	for (r = x < m ? lo : hi; r;) {
		unsigned k = x < m ? ctz(r) : 63 - (unsigned)__builtin_clzll(r);

		if (x < pos + bit(k)) {
			*v = (uint32_t)pos;
			*o = k;
			return;
		}
		pos += bit(k);
		r &= ~bit(k);
	}
}

/* The first (or, down, last) block of order o in [a, b), if it has one. */
static bool gap_block_dir(uint32_t a, uint32_t b, unsigned o, bool down,
			  uint32_t *v)
{
	uint32_t m;
	uint64_t lo, hi;

	gap_split(a, b, &m, &lo, &hi);
	if ((lo & bit(o)) && (!down || !(hi & bit(o)))) {
		*v = a + (uint32_t)(lo & (bit(o) - 1));
		return true;
	}
	if (hi & bit(o)) {
		*v = m + (uint32_t)(hi >> (o + 1) << (o + 1));
		return true;
	}
	return false;
}

/* Down from n, the node at level lvl of the path, along the last children
 * whose masks have order j. */
static struct refseg_leaf *descend_last(struct path *pa, unsigned lvl, void *n,
					unsigned j)
{
	for (; lvl < pa->h; lvl++) {
		struct refseg_inner *in = n;
		unsigned i = 31 - (unsigned)__builtin_clz(in->has[j]);

		pa->node[lvl] = in;
		pa->idx[lvl] = i;
		n = in->child[i];
	}
	return n;
}

/* The gap before entry *ip of *lp nearest it that holds a block of order
 * j, as refseg__next_gap() going the other way. */
static bool prev_gap(unsigned j, struct path *pa, struct refseg_leaf **lp,
		     unsigned *ip)
{
	struct refseg_leaf *l = *lp;
	unsigned i = *ip;

	while (i-- > 0)
		if (l->e[i].ord & bit(j))
			goto found;
	for (unsigned lvl = pa->h; lvl-- > 0;) {
		struct refseg_inner *p = pa->node[lvl];
		uint32_t earlier = p->has[j] & ((1u << pa->idx[lvl]) - 1);

		if (earlier) {
			unsigned k = 31 - (unsigned)__builtin_clz(earlier);

			pa->idx[lvl] = k;
			l = descend_last(pa, lvl + 1, p->child[k], j);
			for (i = l->n; i-- > 0;)
				if (l->e[i].ord & bit(j))
					goto found;
			return false;
		}
	}
	return false;
found:
	*lp = l;
	*ip = i;
	return true;
}

/* The first block of order o that starts at or after x (down: the last
 * that starts at or before x): *v. */
static bool block_from(const struct refseg *t, uint32_t x, unsigned o,
		       bool down, uint32_t *v)
{
	struct refseg_leaf *l;
	struct path pa;
	unsigned i;
	uint32_t m;
	uint64_t lo, hi, a, b, c[2];
	int n = 0;

	refseg__gap_at(t, x, &pa, &l, &i);
	a = ent_end(l, i);
	b = gap_end(l, i);
	if (a < b) {
		gap_split((uint32_t)a, (uint32_t)b, &m, &lo, &hi);
		if (lo & bit(o))
			c[n++] = a + (lo & (bit(o) - 1));
		if (hi & bit(o))
			c[n++] = m + (hi >> (o + 1) << (o + 1));
		for (int q = 0; q < n; q++) {
			uint64_t y = c[down ? n - 1 - q : q];

			if (down ? y <= x : y >= x) {
				*v = (uint32_t)y;
				return true;
			}
		}
	}
	if (!(down ? prev_gap(o, &pa, &l, &i)
		   : refseg__next_gap(o, &pa, &l, &i)))
		return false;
	return gap_block_dir(ent_end(l, i), gap_end(l, i), o, down, v);
}

/* The engine's fit_order(): of the blocks of order o, the one holding the
 * range's edge, or the next one inward, if it holds the extent. */
static bool fit_order(const struct refseg *t, unsigned o, uint32_t L,
		      uint32_t A, uint32_t lo, uint32_t hi, bool down,
		      uint32_t *u, uint64_t *p)
{
	struct refseg_leaf *l;
	struct path pa;
	unsigned i, k;
	uint32_t edge = down ? hi - 1 : lo, v = edge & ~(uint32_t)(bit(o) - 1),
		 w;

	if (v >= t->ub && refseg__gap_at(t, v, &pa, &l, &i)) {
		block_at(ent_end(l, i), gap_end(l, i), v, &w, &k);
		if (w == v && k == o &&
		    fit(lo > v ? lo : v, hi < v + bit(o) ? hi : v + bit(o), L,
			A, down, p)) {
			*u = v;
			return true;
		}
	}
	if (down ? v == 0 || !block_from(t, v - 1, o, true, &w)
		 : v + bit(o) > UINT32_MAX ||
		       !block_from(t, (uint32_t)(v + bit(o)), o, false, &w))
		return false;
	if (down ? w + bit(o) <= lo : w >= hi)
		return false;
	if (!fit(lo > w ? lo : w, hi < w + bit(o) ? hi : w + bit(o), L, A, down,
		 p))
		return false;
	*u = w;
	return true;
}

/* The engine's find_run() in [lo, hi): the lowest (down: highest) place
 * any gap offers. */
static bool run_in(const struct refseg *t, uint32_t L, uint32_t A, uint32_t lo,
		   uint32_t hi, bool down, struct refseg_leaf **lp,
		   unsigned *ip, uint64_t *p)
{
	struct refseg_leaf *l;
	struct path pa;
	unsigned i;

	refseg__gap_at(t, down ? hi - 1 : lo, &pa, &l, &i);
	for (;;) {
		uint32_t a = ent_end(l, i), b = gap_end(l, i);

		if (down ? b <= lo : a >= hi)
			return false;
		if (fit(a > lo ? a : lo, b < hi ? b : hi, L, A, down, p)) {
			*lp = l;
			*ip = i;
			return true;
		}
		/* The next gap, past leaves too short to hold L. */
		if (down ? i > 0 : i + 1 < l->n) {
			i += down ? -1u : 1;
			continue;
		}
		do
			l = down ? l->prev : l->next;
		while (l && l->gmax < L);
		if (!l)
			return false;
		i = down ? l->n - 1 : 0;
	}
}

/* Where the engine puts len units at align in [lo, hi) when the range is
 * not the whole space or the request is top-down: *lp, *ip, *p. */
bool refseg__place_bounded(const struct refseg *t, uint32_t L, uint32_t A,
			   uint32_t lo, uint32_t hi, bool down, uint64_t mask,
			   struct refseg_leaf **lp, unsigned *ip, uint32_t *pp)
{
	struct refseg_leaf *l;
	struct path pa;
	unsigned i;
	uint32_t u = 0, bu, v;
	uint64_t p = 0, bp;
	bool found = false;

	if (down && hi - lo >= L) {
		/* The highest aligned place of the range may lie in a free
		 * block of any order; one probe finds out. */
		uint32_t top = (hi - L) & ~(A - 1);
		unsigned o;

		if (top >= lo && refseg__gap_at(t, top, &pa, &l, &i)) {
			block_at(ent_end(l, i), gap_end(l, i), top, &v, &o);
			if (v + bit(o) - top >= L) {
				u = v;
				p = top;
				goto carve;
			}
		}
	}
	for (; mask; mask &= mask - 1) {
		unsigned o = ctz(mask);

		if (!fit_order(t, o, L, A, lo, hi, down, &bu, &bp))
			continue;
		if (!found || bp > p) {
			u = bu;
			p = bp;
			found = true;
		}
		if (!down)
			break;
	}
	if (!found) {
		if (!run_in(t, L, A, lo, hi, down, lp, ip, &p))
			return false;
		*pp = (uint32_t)p;
		return true;
	}
carve:
	refseg__gap_at(t, u, &pa, &l, &i);
	p = slide(ent_end(l, i), gap_end(l, i), u, p, L, A, lo, hi, down);
	*lp = l;
	*ip = i;
	*pp = (uint32_t)p;
	return true;
}
