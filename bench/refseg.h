/* SPDX-License-Identifier: MIT */
/* A candidate design for the engine, for the benchmarks: the extents in one
 * B+ tree keyed by address, free space as the gaps between them, and each
 * node's summary of which buddy orders its gaps hold. */
#ifndef POTAD_BENCH_REFSEG_H
#define POTAD_BENCH_REFSEG_H

#include <stdbool.h>
#include <stdint.h>

#define REFSEG_LEAF 32	/* entries per leaf */
#define REFSEG_INNER 32 /* children per inner node */
#define REFSEG_ORDERS 33
#define REFSEG_NIL UINT32_MAX
/* The slot of a mark: an entry with no descriptor that ends a gap as an
 * extent does (a dirty free range, in the port bench/NOTES.md plans). */
#define REFSEG_MARK (UINT32_MAX - 1)
#define REFSEG_MAXH 12 /* inner levels at most */

/* Extents in address order.  The gap after entry i runs to the next
 * entry's start, or to `end` (the next leaf's first start) for the last
 * one.  cnt[k]: how many of those gaps hold a free block of order k;
 * mask: the orders whose count is not zero. */
struct refseg_inner;

struct refseg_leaf {
	struct refseg_inner *parent; /* first, as in an inner node */
	uint32_t n, end;
	uint64_t mask;
	/* A bound on its longest gap: never below it.  Frees raise it at
	 * once; allocations leave it, and a search that finds it loose
	 * lowers it, so the hot paths never rescan a leaf for it. */
	uint32_t gmax;
	struct refseg_leaf *prev, *next;
	struct refseg_ent {
		uint32_t start, len, slot;
		uint32_t ord; /* the orders this entry's gap holds */
	} e[REFSEG_LEAF];
	uint8_t cnt[REFSEG_ORDERS];
};

/* key[i]: no key in child i's subtree is below it, none in child i - 1's
 * reaches it.  mask[i]: the orders child i's gaps hold. */
struct refseg_inner {
	struct refseg_inner *parent;
	uint32_t n;
	uint32_t key[REFSEG_INNER];
	uint64_t mask[REFSEG_INNER];
	void *child[REFSEG_INNER];
	/* The masks transposed: has[k] bit i, child i has order k; and
	 * their union. */
	uint32_t has[REFSEG_ORDERS];
	uint64_t own;
	/* Each child's bound on its longest gap, and the largest. */
	uint32_t gmax[REFSEG_INNER];
	uint32_t gown;
};

/* A descriptor: the engine's, less the length, which the extent's entry
 * holds (a free finds the entry by start anyway). */
struct refseg_desc {
	uint32_t start, owner, tag, word;
};

struct refseg {
	void *root;
	unsigned height; /* inner levels above the leaves */
	uint64_t mask;	 /* the orders that have a free block anywhere */
	uint32_t gmax;	 /* the root's bound on the longest gap */
	uint64_t ub, ue; /* units [ub, ue) */
	uint64_t free_units;
	uint64_t nfree[REFSEG_ORDERS]; /* free blocks per order */
	uint64_t leaves, inners;
	struct refseg_desc *desc;
	uint32_t nslots, capslots, freeslot;
};

/* A free space of units [ub, ue) (ue at most 2^32 - 1) able to describe
 * `cap` extents; -EINVAL, -ENOMEM. */
int refseg_init(struct refseg *t, uint64_t ub, uint64_t ue, uint32_t cap);
void refseg_fini(struct refseg *t);
/* An extent of len units at a multiple of align (a power of two) placed as
 * the engine places it (the smallest buddy order that has a free block,
 * its lowest block, exact sizes slid onto the free units below that
 * block): its slot, or REFSEG_NIL, also where the engine would go on to
 * assemble a run of smaller blocks, which this does not do. */
uint32_t refseg_alloc(struct refseg *t, uint32_t len, uint32_t align,
		      uint32_t owner, uint32_t tag);
/* refseg_alloc() inside units [lo, hi), lowest or (down) highest, as the
 * engine places a range-bounded or top-down request. */
uint32_t refseg_alloc_in(struct refseg *t, uint32_t len, uint32_t align,
			 uint32_t lo, uint32_t hi, bool down, uint32_t owner,
			 uint32_t tag);
/* Claim units [at, at + len), all free; REFSEG_NIL if any is not. */
uint32_t refseg_claim(struct refseg *t, uint32_t at, uint32_t len,
		      uint32_t owner, uint32_t tag);
/* Free the extent in slot s, merging the gaps on either side. */
void refseg_free(struct refseg *t, uint32_t s);
/* Free the extent in slot s as a dirty free would: its descriptor goes,
 * its entry stays as a mark, so the gaps (the clean free space) do not
 * change, and a mark it touches takes it in: a dirty run is one mark. */
void refseg_free_dirty(struct refseg *t, uint32_t s);
/* Remove the marks that tile units [a, b) exactly (one, for a whole dirty
 * run), as marking them clean would, merging the gaps around each. */
void refseg_unmark(struct refseg *t, uint32_t a, uint32_t b);
/* The slot of the extent holding unit x, or REFSEG_NIL. */
uint32_t refseg_lookup(const struct refseg *t, uint32_t x);
uint64_t refseg_bytes(const struct refseg *t);
/* Whether entries, gaps, counts, masks, keys and descriptors agree: NULL,
 * or what is wrong. */
const char *refseg_check(const struct refseg *t);

#endif /* POTAD_BENCH_REFSEG_H */
