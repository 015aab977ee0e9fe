/* SPDX-License-Identifier: MIT */
/* A deliberately simple reference model of one potad space, for the
 * randomized differential test. */
#ifndef POTAD_TESTS_REFMODEL_H
#define POTAD_TESTS_REFMODEL_H

#include <stddef.h>
#include <stdint.h>

#include <potad/engine.h>

/*
 * The model keeps three sorted arrays: the live extents, the poisoned unit
 * ranges and the dirty free unit ranges.  Every query walks them linearly.  It
 * is meant to be obviously right rather than fast, so that a disagreement with
 * the engine points at the engine.
 *
 * All positions are absolute unit numbers (address >> granule_shift), like
 * the engine's, and every range is half-open [start, end).  A space ends at
 * most at 2^64 - 1 bytes, so an end unit always fits in 64 bits.
 */

/* One live extent: where it is in units and what the engine should say. */
struct ref_extent {
	uint64_t start;
	uint64_t end;
	struct potad_extent desc;
};

/* A run of poisoned units. */
struct ref_range {
	uint64_t start;
	uint64_t end;
};

struct ref_model {
	unsigned shift;		/* granule_shift */
	uint64_t first;		/* the space's first unit */
	uint64_t last;		/* one past its last unit */
	struct ref_extent *ext; /* sorted by start, never overlapping */
	size_t n_ext, cap_ext;
	struct ref_range *poison; /* sorted, disjoint and not adjacent */
	size_t n_poison, cap_poison;
	uint64_t used_units;   /* sum of the extents' lengths */
	uint64_t poison_units; /* sum of the poisoned ranges' lengths */
	/* Free units that are dirty: sorted, disjoint and not adjacent, so
	 * each range is a whole run of dirty free units. */
	struct ref_range *dirty;
	size_t n_dirty, cap_dirty;
	uint64_t dirty_units;
};

/* What potad_space_stats() should report, as far as the model knows. */
struct ref_stats {
	uint64_t units;
	uint64_t free_units;
	uint64_t used_units;
	uint64_t poison_units;
	uint64_t extents;
	uint64_t dirty_units;
};

/* Set up a model of the space potad_space_new(base, size, shift) makes. */
void ref_init(struct ref_model *m, uint64_t base, uint64_t size,
	      unsigned shift);

/* Release the model's arrays. */
void ref_fini(struct ref_model *m);

/* Index of the extent holding unit u, or -1. */
long ref_find_unit(const struct ref_model *m, uint64_t u);

/* Index of the live extent whose descriptor has this handle, or -1. */
long ref_find_handle(const struct ref_model *m, uint64_t handle);

/* Index of the first extent that ends after unit u (n_ext if none): the
 * first one that holds u or lies above it. */
size_t ref_first_ending_after(const struct ref_model *m, uint64_t u);

/* Index of the first extent whose descriptor starts at or after the byte
 * address off (n_ext if none), as potad_extent_next() sees it. */
size_t ref_first_from_addr(const struct ref_model *m, uint64_t off);

/* Whether any unit of [start, end) is held by an extent: 1 or 0. */
int ref_any_held(const struct ref_model *m, uint64_t start, uint64_t end);

/* Whether any unit of [start, end) is poisoned: 1 or 0. */
int ref_any_poisoned(const struct ref_model *m, uint64_t start, uint64_t end);

/* Find the lowest p in [lo, hi - len] that is a multiple of align and
 * such that [p, p + len) is neither held nor poisoned.  Returns 1 and sets
 * *at, or 0 when there is none.  align is in units, a power of two. */
int ref_fit(const struct ref_model *m, uint64_t lo, uint64_t hi, uint64_t len,
	    uint64_t align, uint64_t *at);

/* The longest run of free (neither held nor poisoned) units. */
uint64_t ref_largest_free_run(const struct ref_model *m);

/* ref_fit() over clean free units only. */
int ref_fit_clean(const struct ref_model *m, uint64_t lo, uint64_t hi,
		  uint64_t len, uint64_t align, uint64_t *at);

/* Whether any unit of [start, end) is free and dirty: 1 or 0. */
int ref_any_dirty(const struct ref_model *m, uint64_t start, uint64_t end);

/* The first run of dirty free units that ends after unit u: 1 and the run
 * in [*start, *end), or 0 when there is none. */
int ref_dirty_next(const struct ref_model *m, uint64_t u, uint64_t *start,
		   uint64_t *end);

/* How many free blocks, and how many dirty ones, the engine should have:
 * every run of free units all clean or all dirty cut into its maximal
 * aligned blocks; and the longest run of free units, all in one pass. */
void ref_blocks(const struct ref_model *m, uint64_t *free_blocks,
		uint64_t *dirty_blocks, uint64_t *largest_run);

/* Record a new extent; its units must be free (clean or dirty). */
void ref_insert(struct ref_model *m, const struct ref_extent *e);

/* Forget the extent at index i; its poisoned units stay poisoned and the
 * others become free, dirty if dirty. */
void ref_remove(struct ref_model *m, size_t i, int dirty);

/* Shrink the extent at index i to end at unit end, giving the rest back
 * (dirty if dirty; its poisoned units stay poisoned), and say whether
 * what is left is still poisoned. */
void ref_shrink(struct ref_model *m, size_t i, uint64_t end, int dirty);

/* Poison [start, end) and flag every extent it reaches as poisoned.
 * Returns the number of units that were not poisoned before. */
uint64_t ref_poison(struct ref_model *m, uint64_t start, uint64_t end);

/* Make the free units of [start, end) clean or dirty. */
void ref_set_clean(struct ref_model *m, uint64_t start, uint64_t end,
		   int clean);

/* Poisoned units that lie inside extents. */
uint64_t ref_poison_held(const struct ref_model *m);

/* The counters the engine should report. */
void ref_stats(const struct ref_model *m, struct ref_stats *st);

#endif /* POTAD_TESTS_REFMODEL_H */
