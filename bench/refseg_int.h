/* SPDX-License-Identifier: MIT */
/* What refseg.c and its checker share: a gap's buddy blocks by arithmetic,
 * and the nodes' summaries rebuilt from scratch. */
#ifndef POTAD_BENCH_REFSEG_INT_H
#define POTAD_BENCH_REFSEG_INT_H

#include <stdint.h>

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

static struct refseg_inner *parent_of(const void *c)
{
	return *(struct refseg_inner *const *)c;
}

/* A leaf's counts and cached gap orders from its gaps, after entries moved
 * between leaves (the space's totals do not change). */
void refseg__recount(struct refseg_leaf *l);
/* An inner node's transposed masks and union from its children's masks,
 * after children moved. */
void refseg__inner_rebuild(struct refseg_inner *in);

#endif /* POTAD_BENCH_REFSEG_INT_H */
