/* SPDX-License-Identifier: MIT */
/* The checker of refseg.c's tree: every summary recomputed from the gaps. */
#include <string.h>

#include "refseg.h"
#include "refseg_int.h"

/* The leftmost leaf under n (h levels above the leaves). */
static const struct refseg_leaf *descend_first(const void *n, unsigned h)
{
	while (h--)
		n = ((const struct refseg_inner *)n)->child[0];
	return n;
}

/* Check the subtree under n (h levels above the leaves): parents, tight
 * keys, masks, longest gaps; *mask and *gmax get its own. */
static const char *check_node(const void *n, unsigned h,
			      const struct refseg_inner *parent,
			      uint32_t *first, uint64_t *mask, uint32_t *gmax)
{
	const struct refseg_inner *in = n;
	const char *why;

	if (parent_of(n) != parent)
		return "a node's parent link is wrong";
	if (h == 0) {
		const struct refseg_leaf *l = n;
		struct refseg_leaf c = *l;

		if (l->n == 0)
			return "an empty leaf";
		refseg__recount(&c);
		if (memcmp(c.cnt, l->cnt, sizeof(c.cnt)) || c.mask != l->mask ||
		    memcmp(c.e, l->e, l->n * sizeof(*l->e)))
			return "a leaf's order counts disagree with its gaps";
		if (c.gmax > l->gmax)
			return "a leaf's bound on its longest gap is too low";
		*first = l->e[0].start;
		*mask = l->mask;
		*gmax = l->gmax;
		return NULL;
	}
	if (in->n == 0)
		return "an empty inner node";
	{
		struct refseg_inner c = *in;

		refseg__inner_rebuild(&c);
		if (memcmp(c.has, in->has, sizeof(c.has)) || c.own != in->own ||
		    c.gown != in->gown)
			return "an inner node's order words or longest gap "
			       "disagree with its children's";
	}
	*mask = 0;
	*gmax = in->gown;
	for (unsigned i = 0; i < in->n; i++) {
		uint32_t f, g;
		uint64_t m;

		why = check_node(in->child[i], h - 1, in, &f, &m, &g);
		if (why)
			return why;
		if (f != in->key[i])
			return "a separator is not its child's first key";
		if (i && in->key[i] < in->key[i - 1])
			return "separators out of order";
		if (m != in->mask[i] || g != in->gmax[i])
			return "a child's mask or longest gap is stale in its "
			       "parent";
		*mask |= m;
		if (i == 0)
			*first = f;
	}
	return NULL;
}

const char *refseg_check(const struct refseg *t)
{
	const struct refseg_leaf *l, *prev = NULL;
	uint64_t free_units = 0, nfree[REFSEG_ORDERS] = {0}, live = 0, mask;
	uint64_t mark_end = UINT64_MAX; /* the end of a mark just before */
	uint32_t first, at = (uint32_t)t->ub, s, gmax;
	const char *why =
	    check_node(t->root, t->height, NULL, &first, &mask, &gmax);

	if (why)
		return why;
	if (mask != t->mask || gmax != t->gmax)
		return "the space's mask or longest gap disagrees with the "
		       "root's";
	l = descend_first(t->root, t->height);
	for (; l; prev = l, l = l->next) {
		if (l->prev != prev)
			return "a leaf's back link is wrong";
		if (l->end != (l->next ? l->next->e[0].start : t->ue))
			return "a leaf's end is not the next leaf's start";
		for (unsigned i = 0; i < l->n; i++) {
			uint32_t a = ent_end(l, i), b = gap_end(l, i), m;
			uint64_t lo, hi;

			if (l->e[i].start < at || a > b || b > t->ue)
				return "entries overlap or leave the space";
			at = b;
			if (a < b) {
				gap_split(a, b, &m, &lo, &hi);
				free_units += b - a;
				for (uint64_t o = lo; o; o &= o - 1)
					nfree[ctz(o)]++;
				for (uint64_t o = hi; o; o &= o - 1)
					nfree[ctz(o)]++;
			}
			s = l->e[i].slot;
			if (!prev && i == 0) {
				if (s != REFSEG_NIL || l->e[0].len ||
				    l->e[0].start != t->ub)
					return "the sentinel has moved";
				continue;
			}
			if (s == REFSEG_MARK) {
				if (l->e[i].len == 0)
					return "an empty mark";
				if (mark_end == l->e[i].start)
					return "two marks touch";
				mark_end = a;
				continue;
			}
			mark_end = UINT64_MAX;
			if (s >= t->nslots || t->desc[s].start != l->e[i].start)
				return "an entry and its descriptor disagree";
			if (refseg_lookup(t, l->e[i].start + l->e[i].len / 2) !=
			    s)
				return "lookup misses an extent";
			live++;
		}
	}
	if (at != t->ue || free_units != t->free_units ||
	    memcmp(nfree, t->nfree, sizeof(nfree)))
		return "the gaps disagree with the free-space totals";
	for (s = t->freeslot; s != REFSEG_NIL; s = t->desc[s].start)
		live++;
	return live == t->nslots ? NULL : "a slot is neither live nor free";
}
