/* SPDX-License-Identifier: MIT */
/* A reference allocator for the benchmarks: two-level segregated fit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reftlsf.h"

/*
 * The design of TLSF (Masmano et al., 2004) and of Sebastian Aaltonen's
 * OffsetAllocator, out of band: every run of units, free or held, is a node
 * linked to its neighbours in address order, and every free run sits in a
 * list of runs of about its length.  A length maps to a bin by its exponent
 * and the three bits below its leading one, so a bin's lengths are within
 * 12.5% of each other.  An allocation rounds its length up to the next bin
 * boundary, finds the first non-empty bin at or above it with two bit
 * scans (a word of groups, a byte of bins per group), takes that bin's
 * first run and gives its tail back as a new free run.  A free merges the
 * node with its free neighbours through the links.  Both are O(1): no
 * search, no tree.
 *
 * It keeps no owner, tag or generation, cannot find the run that holds an
 * address, and has no alignment, range, clean/dirty or poison: the
 * benchmark runs it on W1's stream to show what the free-space part of
 * that workload costs in the leanest design known, on the same machine.
 */

static unsigned bin_down(uint64_t len)
{
	unsigned e = 63 - (unsigned)__builtin_clzll(len);

	if (e < 3)
		return (unsigned)len;
	return ((e - 2) << 3) | (unsigned)((len >> (e - 3)) & 7);
}

/* The first bin whose every run is at least len long. */
static unsigned bin_up(uint64_t len)
{
	unsigned e = 63 - (unsigned)__builtin_clzll(len);
	unsigned b = bin_down(len);

	if (e >= 3 && (len & ((1ull << (e - 3)) - 1)))
		b++;
	return b;
}

static void bin_add(struct reftlsf *t, uint32_t i)
{
	struct reftlsf_node *n = &t->node[i];
	unsigned b = bin_down(n->len);

	n->bin_prev = REFTLSF_NIL;
	n->bin_next = t->head[b];
	if (t->head[b] != REFTLSF_NIL)
		t->node[t->head[b]].bin_prev = i;
	t->head[b] = i;
	t->binmask[b >> 3] |= (uint8_t)(1u << (b & 7));
	t->groups |= 1ull << (b >> 3);
}

static void bin_del(struct reftlsf *t, uint32_t i)
{
	struct reftlsf_node *n = &t->node[i];
	unsigned b = bin_down(n->len);

	if (n->bin_prev != REFTLSF_NIL)
		t->node[n->bin_prev].bin_next = n->bin_next;
	else
		t->head[b] = n->bin_next;
	if (n->bin_next != REFTLSF_NIL)
		t->node[n->bin_next].bin_prev = n->bin_prev;
	if (t->head[b] == REFTLSF_NIL) {
		t->binmask[b >> 3] &= (uint8_t) ~(1u << (b & 7));
		if (!t->binmask[b >> 3])
			t->groups &= ~(1ull << (b >> 3));
	}
}

int reftlsf_init(struct reftlsf *t, uint64_t units, uint32_t cap)
{
	uint32_t i;

	memset(t, 0, sizeof(*t));
	t->node = calloc(cap, sizeof(*t->node));
	t->spare = calloc(cap, sizeof(*t->spare));
	if (!t->node || !t->spare || cap == 0 || units == 0) {
		reftlsf_fini(t);
		return -ENOMEM;
	}
	t->cap = cap;
	t->units = units;
	for (i = 0; i < cap; i++)
		t->spare[i] = cap - 1 - i;
	t->nspare = cap - 1; /* node 0 is the whole space */
	for (i = 0; i < REFTLSF_BINS; i++)
		t->head[i] = REFTLSF_NIL;
	t->node[0] = (struct reftlsf_node){
	    .off = 0, .len = units, .prev = REFTLSF_NIL, .next = REFTLSF_NIL};
	bin_add(t, 0);
	return 0;
}

void reftlsf_fini(struct reftlsf *t)
{
	free(t->node);
	free(t->spare);
	memset(t, 0, sizeof(*t));
}

uint32_t reftlsf_alloc(struct reftlsf *t, uint64_t len)
{
	unsigned b = bin_up(len), g = b >> 3, found;
	uint32_t i, r;
	uint64_t above, rest;
	unsigned in = t->binmask[g] & (0xffu << (b & 7));

	if (in) {
		found = (g << 3) | (unsigned)__builtin_ctz(in);
	} else {
		above = g == 63 ? 0 : t->groups & (~0ull << (g + 1));
		if (!above)
			return REFTLSF_NIL;
		g = (unsigned)__builtin_ctzll(above);
		found = (g << 3) | (unsigned)__builtin_ctz(t->binmask[g]);
	}
	i = t->head[found];
	rest = t->node[i].len - len;
	if (rest && t->nspare == 0)
		return REFTLSF_NIL;
	bin_del(t, i);
	t->node[i].used = true;
	if (rest) {
		r = t->spare[--t->nspare];
		t->node[r] = (struct reftlsf_node){.off = t->node[i].off + len,
						   .len = rest,
						   .prev = i,
						   .next = t->node[i].next};
		if (t->node[i].next != REFTLSF_NIL)
			t->node[t->node[i].next].prev = r;
		t->node[i].next = r;
		t->node[i].len = len;
		bin_add(t, r);
	}
	return i;
}

void reftlsf_free(struct reftlsf *t, uint32_t i)
{
	struct reftlsf_node *n = &t->node[i];
	uint32_t p = n->prev, q = n->next;

	n->used = false;
	if (p != REFTLSF_NIL && !t->node[p].used) {
		bin_del(t, p);
		n->off = t->node[p].off;
		n->len += t->node[p].len;
		n->prev = t->node[p].prev;
		if (n->prev != REFTLSF_NIL)
			t->node[n->prev].next = i;
		t->node[p].len = 0; /* spare: reftlsf_check() skips it */
		t->spare[t->nspare++] = p;
	}
	if (q != REFTLSF_NIL && !t->node[q].used) {
		bin_del(t, q);
		n->len += t->node[q].len;
		n->next = t->node[q].next;
		if (n->next != REFTLSF_NIL)
			t->node[n->next].prev = i;
		t->node[q].len = 0;
		t->spare[t->nspare++] = q;
	}
	bin_add(t, i);
}

uint64_t reftlsf_bytes(const struct reftlsf *t)
{
	return (uint64_t)(t->cap - t->nspare) *
		   (sizeof(*t->node) + sizeof(*t->spare)) +
	       sizeof(*t);
}

const char *reftlsf_check(const struct reftlsf *t)
{
	uint64_t at = 0, nfree = 0, inbins = 0;
	uint32_t i, first = REFTLSF_NIL, prev = REFTLSF_NIL;
	unsigned b;

	/* The run at offset 0 has no predecessor; find it among the nodes in
	 * use (spare ones have length 0). */
	for (i = 0; i < t->cap && first == REFTLSF_NIL; i++)
		if (t->node[i].off == 0 && t->node[i].len &&
		    t->node[i].prev == REFTLSF_NIL)
			first = i;
	for (i = first; i != REFTLSF_NIL; prev = i, i = t->node[i].next) {
		if (t->node[i].off != at || t->node[i].prev != prev)
			return "the runs do not tile the space in order";
		if (!t->node[i].used) {
			if (prev != REFTLSF_NIL && !t->node[prev].used)
				return "two free runs touch";
			nfree++;
		}
		at += t->node[i].len;
	}
	if (at != t->units)
		return "the runs do not cover the space";
	for (b = 0; b < REFTLSF_BINS; b++) {
		bool set = t->binmask[b >> 3] & (1u << (b & 7));

		if (set != (t->head[b] != REFTLSF_NIL) ||
		    (set && !(t->groups & (1ull << (b >> 3)))))
			return "a bin's mask bits disagree with its list";
		for (i = t->head[b]; i != REFTLSF_NIL;
		     i = t->node[i].bin_next) {
			if (t->node[i].used || bin_down(t->node[i].len) != b)
				return "a bin holds a run that is not its own";
			inbins++;
		}
	}
	return inbins == nfree ? NULL : "a free run is missing from the bins";
}
