/* SPDX-License-Identifier: MIT */
/* Poison: ranges reported bad, kept out of the free lists for good. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Poisoned units are a sorted array of disjoint, non-touching ranges.
 * Poison is rare (media errors, bad swap pages), so an array with binary
 * search beats any tree here, and the hot paths only look at it when it is
 * not empty.  A poisoned unit is either held by an extent (which keeps it
 * until it is freed, then drops it) or neither free nor held.
 *
 * Poisoning happens in two passes over the space and every child space it
 * reaches: the first reserves all the memory the second will need, so a
 * poison call either fails before changing anything or completes.
 */

/* Index of the first range that ends after u. */
static uint64_t first_after(const struct potad_space *s, uint64_t u)
{
	uint64_t lo = 0, hi = s->npoison;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (s->poison[mid].e <= u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool potad__poison_overlaps(const struct potad_space *s, uint64_t a,
			    uint64_t b)
{
	uint64_t i = first_after(s, a);

	return i < s->npoison && s->poison[i].s < b;
}

uint64_t potad__poison_floor(const struct potad_space *s, uint64_t x,
			     uint64_t a)
{
	/* The last range that starts below a, if it reaches past x. */
	uint64_t i = first_after(s, a);

	if (i > 0 && s->poison[i - 1].e > x)
		x = s->poison[i - 1].e;
	return x;
}

uint64_t potad__poison_ceil(const struct potad_space *s, uint64_t b,
			    uint64_t x)
{
	uint64_t i = first_after(s, b);

	if (i < s->npoison && s->poison[i].s < x)
		x = s->poison[i].s > b ? s->poison[i].s : b;
	return x;
}

uint64_t potad__poison_count(const struct potad_space *s, uint64_t a,
			     uint64_t b)
{
	uint64_t n = 0;

	for (uint64_t i = first_after(s, a);
	     i < s->npoison && s->poison[i].s < b; i++) {
		uint64_t x = s->poison[i].s > a ? s->poison[i].s : a;
		uint64_t y = s->poison[i].e < b ? s->poison[i].e : b;

		n += y - x;
	}
	return n;
}

/* Call fn on each unpoisoned stretch of [a, b); sum what it returns.  The
 * flag goes to fn untouched: whether freed units come back dirty. */
static uint64_t each_gap(struct potad_space *s, uint64_t a, uint64_t b,
			 uint64_t (*fn)(struct potad_space *, uint64_t,
					uint64_t, bool),
			 bool dirty)
{
	uint64_t sum = 0;

	for (uint64_t i = first_after(s, a); a < b; i++) {
		uint64_t ps = i < s->npoison ? s->poison[i].s : b;

		if (ps > b)
			ps = b;
		if (ps > a)
			sum += fn(s, a, ps, dirty);
		if (i >= s->npoison)
			break;
		a = s->poison[i].e;
	}
	return sum;
}

static uint64_t gap_need(struct potad_space *s, uint64_t a, uint64_t b,
			 bool unused)
{
	(void)unused;
	return potad__range_need(s, a, b);
}

static uint64_t gap_free(struct potad_space *s, uint64_t a, uint64_t b,
			 bool dirty)
{
	potad__free_range(s, a, b, dirty);
	return 0;
}

uint64_t potad__unpoisoned_need(const struct potad_space *s, uint64_t a,
				uint64_t b)
{
	return each_gap((struct potad_space *)s, a, b, gap_need, false);
}

void potad__free_unpoisoned(struct potad_space *s, uint64_t a, uint64_t b,
			    bool dirty)
{
	each_gap(s, a, b, gap_free, dirty);
}

static uint64_t gap_take_need(struct potad_space *s, uint64_t a, uint64_t b,
			      bool unused)
{
	(void)unused;
	return potad__take_need(s, a, b);
}

static uint64_t gap_take(struct potad_space *s, uint64_t a, uint64_t b,
			 bool unused)
{
	(void)unused;
	potad__take_range(s, a, b);
	return 0;
}

/* The stretches lie in different free blocks (poison parts them), so what
 * each one needs can be added up before any of them is taken. */
uint64_t potad__take_unpoisoned_need(const struct potad_space *s, uint64_t a,
				     uint64_t b)
{
	return each_gap((struct potad_space *)s, a, b, gap_take_need, false);
}

void potad__take_unpoisoned(struct potad_space *s, uint64_t a, uint64_t b)
{
	each_gap(s, a, b, gap_take, false);
}

int potad__poison_room(struct potad_space *s, uint64_t more)
{
	uint64_t cap = s->cappoison;
	struct ival *t;

	if (s->npoison + more <= cap)
		return 0;
	while (cap < s->npoison + more)
		cap = cap ? cap * 2 : 4;
	t = realloc(s->poison, cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	s->poison = t;
	s->cappoison = cap;
	return 0;
}

/* Add [a, b) to the set (room for one more range must be there). */
int potad__poison_add(struct potad_space *s, uint64_t a, uint64_t b)
{
	uint64_t i, j;

	s->poison_units += (b - a) - potad__poison_count(s, a, b);
	/* Ranges that overlap or touch [a, b) merge into it. */
	i = a ? first_after(s, a - 1) : 0;
	for (j = i; j < s->npoison && s->poison[j].s <= b; j++)
		;
	if (i < j) {
		if (s->poison[i].s < a)
			a = s->poison[i].s;
		if (s->poison[j - 1].e > b)
			b = s->poison[j - 1].e;
	}
	memmove(&s->poison[i + 1], &s->poison[j],
		(s->npoison - j) * sizeof(s->poison[0]));
	s->npoison = s->npoison - (j - i) + 1;
	s->poison[i].s = a;
	s->poison[i].e = b;
	return 0;
}

struct potad_space *potad__child_at(const struct potad_space *s,
				    uint32_t slot)
{
	for (uint32_t i = 0; i < s->nchildren; i++)
		if (s->children[i]->parent_slot == slot)
			return s->children[i];
	return NULL;
}

bool potad__to_child(const struct potad_space *p, const struct potad_space *c,
		     uint64_t a, uint64_t b, uint64_t *ca, uint64_t *cb)
{
	uint64_t lo = (a << p->g) >> c->g;
	uint64_t hi = ((b << p->g) >> c->g) +
		      (((b << p->g) & (pow2(c->g) - 1)) != 0);

	if (lo < c->ub)
		lo = c->ub;
	if (hi > c->ue)
		hi = c->ue;
	*ca = lo;
	*cb = hi;
	return lo < hi;
}

/* The first extent that holds or follows unit u. */
static bool extent_from(const struct potad_space *s, uint64_t u,
			uint32_t *slot)
{
	uint64_t key;

	if (potad__desc_covering(s, u, slot))
		return true;
	return potad__rtree_next(&s->index, &s->inodes, &s->vals, u - s->ub,
				 &key, slot);
}

/* Pass one: reserve everything pass two needs, here and in children. */
static int poison_prepare(struct potad_space *s, uint64_t a, uint64_t b)
{
	uint64_t ca, cb;
	uint32_t slot;
	int rc;

	/* A cached extent takes no poison: it goes back to the free lists
	 * first, where its units can be taken out. */
	rc = potad__cache_return_range(s, a, b);
	if (rc == 0)
		rc = potad__poison_room(s, 1);
	if (rc == 0)
		rc = potad__take_reserve(s, a, b);
	if (rc < 0)
		return rc;
	for (bool more = extent_from(s, a, &slot);
	     more && desc_start(s, slot) < b;) {
		const struct desc *d = DESC(s, slot);
		uint64_t key = desc_end(s, slot) - s->ub;

		if (DESC_TYPE(d) == POTAD_TYPE_CHILD) {
			struct potad_space *c = potad__child_at(s, slot);

			if (c && potad__to_child(s, c, a, b, &ca, &cb)) {
				rc = poison_prepare(c, ca, cb);
				if (rc < 0)
					return rc;
			}
		}
		more = key <= potad__rtree_maxkey(&s->index) &&
		       potad__rtree_next(&s->index, &s->inodes, &s->vals, key,
					 &key, &slot);
	}
	return 0;
}

/* Pass two: take the free units out, record the range, report extents. */
static int poison_apply(struct potad_space *s, uint64_t a, uint64_t b,
			potad_poison_fn fn, void *arg)
{
	uint64_t x = a, u, ca, cb;
	unsigned k;
	uint32_t slot;
	int hits = 0;

	while (x < b) {
		if (potad__desc_covering(s, x, &slot)) {
			x = desc_end(s, slot);
		} else if (potad__fb_find(s, x, &u, &k)) {
			potad__take_range(s, x,
					  u + pow2(k) < b ? u + pow2(k) : b);
			x = u + pow2(k);
		} else {
			/* Neither held nor free: already poisoned. */
			uint64_t i = first_after(s, x);

			if (i >= s->npoison || s->poison[i].s > x)
				break;
			x = s->poison[i].e;
		}
	}
	potad__poison_add(s, a, b);
	for (bool more = extent_from(s, a, &slot);
	     more && desc_start(s, slot) < b;) {
		const struct desc *d = DESC(s, slot);
		uint64_t key = desc_end(s, slot) - s->ub;
		struct potad_extent e;

		potad__desc_fill(s, slot, &e);
		if (fn)
			fn(s, &e, arg);
		hits++;
		if (DESC_TYPE(d) == POTAD_TYPE_CHILD) {
			struct potad_space *c = potad__child_at(s, slot);

			if (c && potad__to_child(s, c, a, b, &ca, &cb))
				hits += poison_apply(c, ca, cb, fn, arg);
		}
		more = key <= potad__rtree_maxkey(&s->index) &&
		       potad__rtree_next(&s->index, &s->inodes, &s->vals, key,
					 &key, &slot);
	}
	return hits;
}

int potad__poison_units(struct potad_space *s, uint64_t a, uint64_t b,
			potad_poison_fn fn, void *arg)
{
	int rc = poison_prepare(s, a, b);

	return rc < 0 ? rc : poison_apply(s, a, b, fn, arg);
}

int potad_poison(struct potad_space *s, uint64_t offset, uint64_t length,
		 potad_poison_fn fn, void *arg)
{
	uint64_t u, n;

	if (length == 0 || (offset & (pow2(s->g) - 1)))
		return -EINVAL;
	u = offset >> s->g;
	n = units_up(s, length);
	if (u < s->ub || u >= s->ue || n > s->ue - u)
		return -ERANGE;
	return potad__poison_units(s, u, u + n, fn, arg);
}

int potad_is_poisoned(const struct potad_space *s, uint64_t offset,
		      uint64_t length)
{
	uint64_t a = offset >> s->g;
	uint64_t b = ((offset + length - 1) >> s->g) + 1;

	if (length == 0 || offset + length - 1 < offset)
		return 0;
	return s->npoison && potad__poison_overlaps(s, a, b);
}

int potad_poison_next(const struct potad_space *s, uint64_t offset,
		      uint64_t *start, uint64_t *length)
{
	/* A range of units [a, e) ends after byte offset exactly when
	 * e > offset >> g. */
	uint64_t i = first_after(s, offset >> s->g);

	if (i >= s->npoison)
		return -ENOENT;
	if (start)
		*start = s->poison[i].s << s->g;
	if (length)
		*length = (s->poison[i].e - s->poison[i].s) << s->g;
	return 0;
}
