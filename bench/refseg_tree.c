/* SPDX-License-Identifier: MIT */
/* The shape of refseg.c's B+ tree: splits, folds, and the summaries carried
 * up to the root. */
#include <stdlib.h>
#include <string.h>

#include "refseg.h"
#include "refseg_int.h"

/*
 * Every node starts with its parent link, so that a change can be carried
 * up from any node; refseg.c carries the common one (a leaf's new
 * summary) along the path it came down instead.  Separators stay tight: a
 * child's key is its first start, because a new entry may land in the gap
 * that runs up to the next leaf's first start.  Underfull nodes are folded
 * into a sibling under the same parent, so that leaves stay about two
 * thirds full however the frees fall.
 */

/* A leaf's counts from its gaps, after entries moved between leaves (the
 * space's totals do not change). */
void refseg__recount(struct refseg_leaf *l)
{
	memset(l->cnt, 0, sizeof(l->cnt));
	l->mask = 0;
	l->gmax = 0;
	for (unsigned i = 0; i < l->n; i++) {
		uint32_t g = gap_end(l, i) - ent_end(l, i);

		if (g > l->gmax)
			l->gmax = g;
	}
	for (unsigned i = 0; i < l->n; i++)
		for (uint64_t o = l->e[i].ord =
			 (uint32_t)gap_orders(ent_end(l, i), gap_end(l, i));
		     o; o &= o - 1) {
			l->cnt[ctz(o)]++;
			l->mask |= bit(ctz(o));
		}
}

/* The longest of in's children's longest gaps. */
static uint32_t inner_gmax(const struct refseg_inner *in)
{
	uint32_t g = 0;

	for (unsigned i = 0; i < in->n; i++)
		if (in->gmax[i] > g)
			g = in->gmax[i];
	return g;
}

/* Child i of in has mask m and longest gap g now. */
void refseg__inner_set(struct refseg_inner *in, unsigned i, uint64_t m,
		       uint32_t g)
{
	uint64_t d = in->mask[i] ^ m;
	uint32_t old = in->gmax[i];

	in->gmax[i] = g;
	if (g > in->gown)
		in->gown = g;
	else if (g < old && old == in->gown)
		in->gown = inner_gmax(in);
	in->mask[i] = m;
	for (; d; d &= d - 1) {
		unsigned k = ctz(d);

		in->has[k] ^= 1u << i;
		if (in->has[k])
			in->own |= bit(k);
		else
			in->own &= ~bit(k);
	}
}

/* has[] and own from mask[], after children moved. */
void refseg__inner_rebuild(struct refseg_inner *in)
{
	memset(in->has, 0, sizeof(in->has));
	in->own = 0;
	in->gown = inner_gmax(in);
	for (unsigned i = 0; i < in->n; i++) {
		in->own |= in->mask[i];
		for (uint64_t o = in->mask[i]; o; o &= o - 1)
			in->has[ctz(o)] |= 1u << i;
	}
}

static unsigned child_index(const struct refseg_inner *in, const void *c)
{
	unsigned i = 0;

	while (in->child[i] != c)
		i++;
	return i;
}

static void set_parent(void *c, struct refseg_inner *p)
{
	*(struct refseg_inner **)c = p;
}

/* Node c's mask is now m and its longest gap g: carry them up as far as
 * they change anything. */
void refseg__carry(struct refseg *t, void *c, uint64_t m, uint32_t g)
{
	struct refseg_inner *p;

	for (p = parent_of(c); p; c = p, p = parent_of(p))
		if (!carry_step(p, child_index(p, c), &m, &g))
			return;
	t->mask = m;
	t->gmax = g;
}

/* Node c's first key is now key: separators stay tight. */
void refseg__set_low(void *c, uint32_t key)
{
	struct refseg_inner *p;

	for (p = parent_of(c); p; c = p, p = parent_of(p)) {
		unsigned i = child_index(p, c);

		p->key[i] = key;
		if (i)
			return;
	}
}

static void new_root(struct refseg *t, void *a, uint32_t ka, uint64_t ma,
		     uint32_t ga, void *b, uint32_t kb, uint64_t mb,
		     uint32_t gb)
{
	struct refseg_inner *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	r->n = 2;
	r->key[0] = ka;
	r->key[1] = kb;
	r->mask[0] = ma;
	r->mask[1] = mb;
	r->gmax[0] = ga;
	r->gmax[1] = gb;
	r->child[0] = a;
	r->child[1] = b;
	refseg__inner_rebuild(r);
	set_parent(a, r);
	set_parent(b, r);
	t->root = r;
	t->height++;
	t->inners++;
	t->mask = ma | mb;
	t->gmax = ga > gb ? ga : gb;
}

static void inner_put(struct refseg *t, struct refseg_inner *in, unsigned pos,
		      uint32_t key, void *c, uint64_t m, uint32_t g);

/* Move the upper half of a full inner node to a new one beside it. */
static struct refseg_inner *inner_split(struct refseg *t,
					struct refseg_inner *in)
{
	struct refseg_inner *r = calloc(1, sizeof(*r));
	unsigned half = in->n / 2, i;

	if (!r)
		abort();
	t->inners++;
	r->n = in->n - half;
	memcpy(r->key, in->key + half, r->n * sizeof(*r->key));
	memcpy(r->mask, in->mask + half, r->n * sizeof(*r->mask));
	memcpy(r->gmax, in->gmax + half, r->n * sizeof(*r->gmax));
	memcpy(r->child, in->child + half, r->n * sizeof(*r->child));
	in->n = half;
	refseg__inner_rebuild(in);
	refseg__inner_rebuild(r);
	for (i = 0; i < r->n; i++)
		set_parent(r->child[i], r);
	if (!in->parent) {
		new_root(t, in, in->key[0], in->own, in->gown, r, r->key[0],
			 r->own, r->gown);
	} else {
		struct refseg_inner *p = in->parent;
		unsigned at = child_index(p, in);

		r->parent = p;
		refseg__inner_set(p, at, in->own, in->gown);
		inner_put(t, p, at + 1, r->key[0], r, r->own, r->gown);
	}
	return r;
}

/* Put child c (first key `key`, mask m, longest gap g) at position pos of
 * in. */
static void inner_put(struct refseg *t, struct refseg_inner *in, unsigned pos,
		      uint32_t key, void *c, uint64_t m, uint32_t g)
{
	unsigned n;

	if (in->n == INNER) {
		struct refseg_inner *r = inner_split(t, in);

		if (pos > in->n) {
			pos -= in->n;
			in = r;
		}
	}
	n = in->n - pos;
	memmove(in->key + pos + 1, in->key + pos, n * sizeof(*in->key));
	memmove(in->mask + pos + 1, in->mask + pos, n * sizeof(*in->mask));
	memmove(in->gmax + pos + 1, in->gmax + pos, n * sizeof(*in->gmax));
	memmove(in->child + pos + 1, in->child + pos, n * sizeof(*in->child));
	in->key[pos] = key;
	in->mask[pos] = m;
	in->gmax[pos] = g;
	in->child[pos] = c;
	in->n++;
	refseg__inner_rebuild(in);
	set_parent(c, in);
	refseg__carry(t, in, in->own, in->gown);
}

/* Move the upper half of a full leaf to a new leaf after it. */
struct refseg_leaf *refseg__leaf_split(struct refseg *t, struct refseg_leaf *l)
{
	struct refseg_leaf *r = calloc(1, sizeof(*r));
	unsigned half = l->n / 2;

	if (!r)
		abort();
	t->leaves++;
	r->n = l->n - half;
	ent_move(r, 0, l, half, r->n);
	l->n = half;
	r->end = l->end;
	l->end = r->e[0].start;
	r->next = l->next;
	if (r->next)
		r->next->prev = r;
	r->prev = l;
	l->next = r;
	refseg__recount(l);
	refseg__recount(r);
	if (!l->parent) {
		new_root(t, l, l->e[0].start, l->mask, l->gmax, r,
			 r->e[0].start, r->mask, r->gmax);
	} else {
		struct refseg_inner *p = l->parent;
		unsigned at = child_index(p, l);

		refseg__inner_set(p, at, l->mask, l->gmax);
		inner_put(t, p, at + 1, r->e[0].start, r, r->mask, r->gmax);
	}
	return r;
}

/* Fold an inner node less than a quarter full into a sibling under the
 * same parent when the two fit in seven eighths of a node, as leaves are
 * folded. */
static void inner_merge(struct refseg *t, struct refseg_inner *in)
{
	struct refseg_inner *gp = in->parent, *a, *b;
	unsigned i;

	if (!gp || gp->n < 2)
		return;
	i = child_index(gp, in);
	a = i ? gp->child[i - 1] : in;
	b = i ? in : gp->child[i + 1];
	if (a->n + b->n > INNER * 7 / 8)
		return;
	memcpy(a->key + a->n, b->key, b->n * sizeof(*b->key));
	memcpy(a->mask + a->n, b->mask, b->n * sizeof(*b->mask));
	memcpy(a->gmax + a->n, b->gmax, b->n * sizeof(*b->gmax));
	memcpy(a->child + a->n, b->child, b->n * sizeof(*b->child));
	for (i = 0; i < b->n; i++)
		set_parent(b->child[i], a);
	a->n += b->n;
	refseg__inner_rebuild(a);
	refseg__carry(t, a, a->own, a->gown);
	refseg__drop_child(t, gp, b);
	free(b);
	t->inners--;
}

/* Take child c out of p; an inner node left empty goes too, and one left
 * nearly empty is folded into a sibling. */
void refseg__drop_child(struct refseg *t, struct refseg_inner *p, void *c)
{
	unsigned i = child_index(p, c), n = p->n - i - 1;

	memmove(p->key + i, p->key + i + 1, n * sizeof(*p->key));
	memmove(p->mask + i, p->mask + i + 1, n * sizeof(*p->mask));
	memmove(p->gmax + i, p->gmax + i + 1, n * sizeof(*p->gmax));
	memmove(p->child + i, p->child + i + 1, n * sizeof(*p->child));
	p->n--;
	refseg__inner_rebuild(p);
	if (p->n == 0) {
		/* Never the root: the leftmost leaf, with the sentinel,
		 * stays. */
		refseg__drop_child(t, p->parent, p);
		free(p);
		t->inners--;
		return;
	}
	if (i == 0)
		refseg__set_low(p, p->key[0]);
	refseg__carry(t, p, p->own, p->gown);
	if (p->n < INNER / 4)
		inner_merge(t, p);
}

/* Fold a leaf less than half full into a sibling under the same parent
 * when the two fit in seven eighths of a leaf (room for a few inserts
 * before the next split), so that leaves stay about two thirds full
 * however the frees fall. */
void refseg__leaf_merge(struct refseg *t, struct refseg_leaf *l)
{
	struct refseg_leaf *a = l->prev, *b = l;

	if (!l->parent)
		return;
	if (l->next && l->next->parent == l->parent &&
	    l->n + l->next->n <= LEAF * 7 / 8) {
		a = l;
		b = l->next;
	} else if (!a || a->parent != l->parent || a->n + l->n > LEAF * 7 / 8) {
		return;
	}
	ent_move(a, a->n, b, 0, b->n);
	a->n += b->n;
	a->end = b->end;
	a->next = b->next;
	if (a->next)
		a->next->prev = a;
	refseg__recount(a);
	refseg__carry(t, a, a->mask, a->gmax);
	refseg__drop_child(t, b->parent, b);
	free(b);
	t->leaves--;
}

void refseg__free_node(void *n, unsigned h)
{
	if (h) {
		struct refseg_inner *in = n;

		for (unsigned i = 0; i < in->n; i++)
			refseg__free_node(in->child[i], h - 1);
	}
	free(n);
}
