/* SPDX-License-Identifier: MIT */
/*
 * The POTAD engine: a Power Of Two Allocator with Descriptor for address
 * spaces that are not RAM.
 *
 * A space is the address range [base, base + size) cut into units of
 * 2^granule_shift bytes.  Blocks of order k are 2^k units aligned to 2^k
 * units *in absolute addresses* (like page frame numbers), so an aligned
 * request is aligned in the caller's address space, not merely relative to
 * base.  Every address, offset and length in this API is in bytes; an
 * "offset" is an address inside [base, base + size).
 *
 * The engine does no I/O, takes no locks and keeps no globals: one thread
 * owns a space and everything reachable from it.  Functions return >= 0 on
 * success and a negative errno value on failure; a failed call leaves the
 * space exactly as it was.
 *
 * A free unit is clean (never used since its space was made, or marked
 * clean with potad_set_clean(), e.g. after a discard) or dirty (it may
 * still hold what an earlier owner wrote).  Free blocks merge only with
 * buddies in the same state, and a request with POTAD_ALLOC_CLEAN gets
 * clean units only.
 */
#ifndef POTAD_ENGINE_H
#define POTAD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POTAD_API __attribute__((visibility("default")))

/* Largest granule: 1 GiB. */
#define POTAD_GRANULE_SHIFT_MAX 30
/* Orders run from 0 to 63: a block can be 2^63 units. */
#define POTAD_ORDERS 64

struct potad_space;

/* Descriptor types, kept in the top 4 bits of a handle.  0 is never used,
 * so a zero handle is always invalid. */
enum potad_type {
	POTAD_TYPE_EXTENT = 1, /* an ordinary allocation */
	POTAD_TYPE_CHILD = 2,  /* an allocation that hosts a child space */
};

/* Descriptor flags (struct potad_extent.flags). */
#define POTAD_EXTENT_POISONED (1u << 0) /* part of it has been poisoned */

/* The record of one extent: what lookup, iteration and poison report. */
struct potad_extent {
	uint64_t offset; /* first byte, an address inside the space */
	uint64_t length; /* bytes, a multiple of the granule */
	uint64_t handle; /* type(4) . generation(28) . slot(32) */
	uint32_t owner;  /* caller-assigned owner number */
	uint32_t tag;    /* caller-assigned tag */
	unsigned type;   /* enum potad_type */
	unsigned flags;  /* POTAD_EXTENT_* */
};

/* Allocation flags (struct potad_alloc_req.flags). */
#define POTAD_ALLOC_TOPDOWN (1u << 0) /* highest fitting address first */
#define POTAD_ALLOC_WHOLE (1u << 1)   /* keep the whole 2^k block */
#define POTAD_ALLOC_FIXED (1u << 2)   /* exactly at .at, or -EBUSY */
#define POTAD_ALLOC_CLEAN (1u << 3)   /* only clean units */

/* Free flags (potad_free_ex()). */
#define POTAD_FREE_DIRTY (1u << 0) /* the units come back dirty */

/* An allocation request.  Zero-initialise it, then set what you need. */
struct potad_alloc_req {
	uint64_t size;  /* bytes, > 0; rounded up to the granule */
	uint64_t align; /* a power of two, or 0 for "the granule" */
	uint64_t min;   /* lowest acceptable address (0: the space's base) */
	uint64_t max;   /* end of the acceptable range (0: the space's end) */
	uint64_t at;    /* the address, with POTAD_ALLOC_FIXED */
	uint32_t owner;
	uint32_t tag;
	unsigned flags; /* POTAD_ALLOC_* */
};

/* A space's counters; filled by potad_space_stats() in O(orders). */
struct potad_stats {
	uint64_t base;         /* first usable address */
	uint64_t size;         /* usable bytes (size rounded down to granule) */
	uint64_t granule;      /* bytes per unit */
	uint64_t units;        /* usable units */
	uint64_t free_units;   /* units in free blocks */
	uint64_t used_units;   /* units held by extents (poisoned ones too) */
	uint64_t poison_units; /* poisoned units, free or held */
	uint64_t extents;      /* live descriptors */
	uint64_t free_blocks;  /* blocks on the free lists */
	uint64_t largest_free_block; /* bytes in the largest free block */
	uint64_t meta_bytes;   /* engine memory held for this space */
	uint64_t extent_bytes; /* of which descriptors and their index */
	uint64_t free_per_order[POTAD_ORDERS]; /* free blocks of each order */
	unsigned max_order;    /* largest order a block of this space can have */
	unsigned children;     /* child spaces carved from this one */
	uint64_t dirty_units;  /* free units that are dirty */
	uint64_t dirty_blocks; /* of the free blocks, those that are dirty */
	/* Free units and extents in the reuse cache (potad_space_set_cache()):
	 * counted in free_units, not in the free blocks above. */
	uint64_t cached_units, cached_extents;
};

/*
 * Space lifecycle.
 */

/* Create a space over [base, base + size) with 2^granule_shift-byte units.
 * base must be a multiple of the granule; a size that is not is rounded
 * down.  -EINVAL for a bad granule, an unaligned base, a range that wraps
 * past 2^64 - 1, or a space of less than one unit; -ENOMEM. */
POTAD_API int potad_space_new(struct potad_space **out, uint64_t base,
			      uint64_t size, unsigned granule_shift);

/* Destroy a space and everything in it.  A child space is detached from
 * its parent and its hosting extent freed there (poisoned units stay
 * poisoned in the parent): dirty if the child had live extents or dirty
 * free units, else clean.  -EBUSY if the space still has child spaces. */
POTAD_API int potad_space_destroy(struct potad_space *s);

/*
 * The reuse cache, after the quantum caches of Bonwick's vmem and the
 * per-CPU lists of the Linux page allocator (potad_space_set_cache(3)).
 * With it on, an extent of at most max_length bytes freed without flags
 * does not go back to the free lists: its units stay out of them,
 * unmerged, on a list of extents of its exact length, and the next
 * allocation of that length takes the most recently freed one back in
 * O(1), without the free lists or the extent index.  A request with
 * POTAD_ALLOC_FIXED or POTAD_ALLOC_TOPDOWN never does; any other takes the
 * newest one of its length, or else of the shortest cached length up to
 * 1/32 longer (giving the tail back to the free lists), if it starts on
 * the request's alignment and lies inside its range.  The freed handle
 * is stale at once, the units count as free (and clean), and lookups and
 * iteration pass over them.  At most `entries` extents, and at most 1/64
 * of the space's units, are held; beyond that the oldest go back to the
 * free lists.  A power of two is cached only on its own alignment, and an
 * extent with poisoned units never.
 *
 * Cached units are not in the per-order counts, the largest free block or
 * potad_space_frag()'s walk.  Anything that needs the free lists whole
 * returns cached extents to them first: a refused claim, potad_poison()
 * and potad_set_clean() those in their range; any other allocation that
 * would fail (so no request is refused while the cache holds room for
 * it), potad_place() and potad_space_drain() all of them.
 *
 * Off by default.  max_length is rounded down to the granule and held to
 * 65,536 units, entries to 2^20, and both to 1/64 of the space's units.
 * 0 for either turns the cache off, returning what it holds.  -ENOMEM
 * (the space keeps its cache, less what the first step returned).
 */
/* The limits potad, the daemon, sets on every space: extents of up to
 * 4,096 units, 65,536 entries (at most 528 KiB of lists and ring per
 * space, less in a space of fewer than 2^22 units). */
#define POTAD_CACHE_UNITS 4096u
#define POTAD_CACHE_ENTRIES 65536u
POTAD_API int potad_space_set_cache(struct potad_space *s, uint64_t max_length,
				    uint32_t entries);

/* Return every cached extent to the free lists, merging as a free does.
 * 0, or -ENOMEM with the rest still cached. */
POTAD_API int potad_space_drain(struct potad_space *s);

/* The space's parent, or NULL for a top-level space. */
POTAD_API struct potad_space *potad_space_parent(const struct potad_space *s);

/*
 * Allocation.
 */

/* Allocate an extent as req asks and describe it in *out.
 * The needed order is the larger of ceil(log2(units)) and log2(align in
 * units).  Bottom-up (the default) takes the smallest free block of at least
 * that order, at the lowest address (best fit by order), and gives what the
 * extent does not use back to the free lists (exact allocation).  Before
 * it splits a block larger than needed, it tries the few lowest blocks one
 * and two orders down for a free run long enough, to reuse holes.  If a
 * free stretch smaller than the extent lies just below that block, an
 * extent whose length in units is not a power of two slides down onto it,
 * so that exact extents pack without holes; a power of two keeps its
 * block's alignment and goes back as one block.  Top-down takes the
 * highest aligned position of the range if it is free, else the highest
 * position any block of the needed order offers, sliding up the same way.
 * With POTAD_ALLOC_WHOLE the extent is the whole block.  When no
 * block of the needed order fits, the extent is assembled from adjacent free
 * blocks that start on the alignment (the CMA case), so the call fails with
 * -ENOSPC only if no aligned run of free units of that length exists.
 * With POTAD_ALLOC_CLEAN every unit of the extent is clean, on every path
 * above (FIXED included), and -ENOSPC means that no aligned run of clean
 * free units of that length exists; without it clean and dirty units are
 * taken alike.  Clean and dirty free blocks are kept apart, so a clean
 * search costs the same however many dirty blocks the space has.  A search
 * of the whole space that fails leaves the length of the longest free run
 * (the longest clean one, for a clean request) behind as a bound, which
 * frees (and potad_set_clean()) raise; until then a request longer than
 * the bound fails at once, without a search.
 * -EINVAL: size 0, align not a power of two, min > max, a range that misses
 *          the space, an unknown flag, FIXED with an unaligned address;
 * -E2BIG:  larger than the space (or than its range);
 * -ERANGE: FIXED outside the space;
 * -EBUSY:  FIXED over a unit that is taken or poisoned (or dirty, with
 *          POTAD_ALLOC_CLEAN);
 * -ENOSPC: no fitting free extent; -ENOMEM. */
POTAD_API int potad_alloc(struct potad_space *s,
			  const struct potad_alloc_req *req,
			  struct potad_extent *out);

/* Claim exactly [offset, offset + length): potad_alloc() with
 * POTAD_ALLOC_FIXED. */
POTAD_API int potad_claim(struct potad_space *s, uint64_t offset,
			  uint64_t length, uint32_t owner, uint32_t tag,
			  struct potad_extent *out);

/* Free an extent by handle, merging its blocks with their free buddies.
 * Poisoned units stay out of the free lists.  If out is not NULL it gets
 * the freed descriptor.  -EINVAL for a malformed handle (bad type, slot out
 * of range), -ESTALE for a handle that is not live (double free, stale
 * generation, or a slot out of range with a generation below the floor set
 * by potad_space_set_gen_floor()), -EBUSY for an extent that hosts a child
 * space. */
POTAD_API int potad_free(struct potad_space *s, uint64_t handle,
			 struct potad_extent *out);

/* potad_free() with flags: potad_free(s, h, out) is potad_free_ex(s, h, 0,
 * out), and the units come back clean; with POTAD_FREE_DIRTY they come back
 * dirty.  Errors as potad_free(), and -EINVAL also for an unknown flag. */
POTAD_API int potad_free_ex(struct potad_space *s, uint64_t handle,
			    unsigned flags, struct potad_extent *out);

/* Free the tail of an extent: keep its first length bytes, under the same
 * handle, owner and tag, and give the rest back as potad_free_ex() would
 * (flags as there; poisoned units of the tail stay out of the free lists).
 * If out is not NULL it gets the extent as it is now.  -EINVAL for a length
 * of 0, off the granule, or not shorter than the extent, and for a bad
 * handle or flag; -ESTALE, -EBUSY as potad_free(); -ENOMEM (the space
 * unchanged). */
POTAD_API int potad_shrink(struct potad_space *s, uint64_t handle,
			   uint64_t length, unsigned flags,
			   struct potad_extent *out);

/* Mark the free units of [offset, offset + length) clean (clean != 0) or
 * dirty; units held by extents and poisoned units are left as they are.
 * Blocks are split and merged so that no two free buddies in the same
 * state are left apart.  Costs, and reserves memory, in proportion to the
 * free blocks whose state changes.  Returns 0; -EINVAL for length 0 or an
 * offset or length off the granule, -ERANGE outside the space, -ENOMEM
 * (the space unchanged). */
POTAD_API int potad_set_clean(struct potad_space *s, uint64_t offset,
			      uint64_t length, int clean);

/* The first run of adjacent dirty free units that ends after offset, whole
 * (it may start before offset), in bytes: its first byte in *start and its
 * length in *length (either may be NULL).  -ENOENT when there is none.
 * Iterate with offset = start + length.  O(log) per call plus the blocks
 * of the run. */
POTAD_API int potad_dirty_next(const struct potad_space *s, uint64_t offset,
			       uint64_t *start, uint64_t *length);

/* Describe the live extent named by handle; errors as potad_free(). */
POTAD_API int potad_get(const struct potad_space *s, uint64_t handle,
			struct potad_extent *out);

/* The extent covering offset.  -ENOENT if offset is free or poisoned and
 * not held; -ERANGE if it lies outside the space. */
POTAD_API int potad_lookup(const struct potad_space *s, uint64_t offset,
			   struct potad_extent *out);

/* The first extent that starts at or after offset, in address order;
 * -ENOENT when there is none.  Iterate with offset = prev.offset + 1. */
POTAD_API int potad_extent_next(const struct potad_space *s, uint64_t offset,
				struct potad_extent *out);

/* Call fn for each extent in address order, only owner's when owner_only
 * is set.  Stops early and returns fn's value when fn returns non-zero. */
typedef int (*potad_extent_fn)(const struct potad_extent *e, void *arg);
POTAD_API int potad_extent_foreach(const struct potad_space *s,
				   int owner_only, uint32_t owner,
				   potad_extent_fn fn, void *arg);

/* potad_extent_foreach() over the extents that start at or after offset:
 * one visit per extent, so a long walk in pieces costs O(extents) in all,
 * not a search per extent as potad_extent_next() does. */
POTAD_API int potad_extent_foreach_from(const struct potad_space *s,
					uint64_t offset, int owner_only,
					uint32_t owner, potad_extent_fn fn,
					void *arg);

/*
 * Poison and child spaces.
 */

/* Called once per extent that a poison call hits, in address order, with
 * the space that holds it (a child space for poison that reaches one). */
typedef void (*potad_poison_fn)(struct potad_space *s,
				const struct potad_extent *e, void *arg);

/* Mark [offset, offset + length) bad: free units there leave the free
 * lists for good; each extent hit is reported to fn (may be NULL) and keeps
 * its poisoned units out of the free lists when it is later freed.  Poison
 * that reaches an extent hosting a child space is applied to the child too.
 * Returns the number of extents reported; -EINVAL for length 0 or an
 * unaligned offset, -ERANGE outside the space; -ENOMEM. */
POTAD_API int potad_poison(struct potad_space *s, uint64_t offset,
			   uint64_t length, potad_poison_fn fn, void *arg);

/* Whether any unit of [offset, offset + length) is poisoned: 1 or 0. */
POTAD_API int potad_is_poisoned(const struct potad_space *s, uint64_t offset,
				uint64_t length);

/* Create a child space over the live extent named by handle (which becomes
 * type POTAD_TYPE_CHILD and cannot be freed while the child lives).  The
 * child's granule must be >= the parent's and its base aligned to it; the
 * extent's poisoned units start poisoned in the child, and every free unit
 * of the child starts clean.  -EINVAL, -ESTALE as potad_free(); -EBUSY if it
 * already hosts a child. */
POTAD_API int potad_child_new(struct potad_space *parent, uint64_t handle,
			      unsigned granule_shift,
			      struct potad_space **out);

/* The child space hosted by the extent named by handle, or NULL. */
POTAD_API struct potad_space *potad_child_of(const struct potad_space *parent,
					     uint64_t handle);

/*
 * Journal replay.
 */

/* Put back an extent exactly as a journal recorded it: [e->offset,
 * e->offset + e->length) under handle e->handle (its slot and generation),
 * with e->owner and e->tag; e->type and e->flags are not read.  The handle
 * must be of type POTAD_TYPE_EXTENT (a host becomes POTAD_TYPE_CHILD again
 * through potad_child_new()).  Every unit of the range must be free or
 * poisoned and not held, so poison may be restored first; poisoned units
 * stay poisoned inside the extent.  The free lists end up as if the extent
 * had been allocated: what is left of the free blocks it cuts keeps their
 * state.  Slots between the last one and the named one are
 * made free at the generation floor.  Checked in this order:
 * -EINVAL: a bad handle type, a slot that no slab can hold (UINT32_MAX
 *          among them), length 0, an offset or length off the granule;
 * -ERANGE: outside the space;
 * -EEXIST: the slot is live;
 * -EBUSY:  a unit of the range is held by an extent; -ENOMEM. */
POTAD_API int potad_place(struct potad_space *s, const struct potad_extent *e);

/* The highest generation any slot of the space carries, live or free, or
 * the generation floor if that is higher; O(slots).  A snapshot stores it:
 * every stale handle a client may hold has a lower generation. */
POTAD_API uint32_t potad_space_gen_max(const struct potad_space *s);

/* Slots made from now on (by potad_place() or by allocation) start at
 * generation gen (28 bits; higher bits are dropped).  Restore a snapshot
 * with its potad_space_gen_max() so that no stale handle becomes live. */
POTAD_API void potad_space_set_gen_floor(struct potad_space *s, uint32_t gen);

/* The first poisoned range that ends after offset, whole, in bytes: its
 * first byte in *start and its length in *length (either may be NULL).
 * -ENOENT when there is none.  Iterate with offset = start + length. */
POTAD_API int potad_poison_next(const struct potad_space *s, uint64_t offset,
				uint64_t *start, uint64_t *length);

/*
 * Statistics and checking.
 */

/* Counters in O(orders). */
POTAD_API void potad_space_stats(const struct potad_space *s,
				 struct potad_stats *st);

/* Walk the free space once: the largest run of adjacent free units (bytes)
 * and the fragmentation score in [0, 1] as Ceph BlueStore computes it:
 * each free run of v units scores 2^k * 1.1^k interpolated linearly between
 * powers of two, normalised between all free space in one run (0) and all
 * of it in single units (1).  Linear in the number of free blocks. */
POTAD_API void potad_space_frag(const struct potad_space *s,
				uint64_t *largest_run, double *score);

/* Verify every invariant: free blocks, extents, poison and child spaces
 * tile the space exactly, no two free buddies in the same state are left
 * unmerged, the dirty blocks are free blocks, and every index and counter
 * agrees with the others.  Returns 0, or -EUCLEAN with the first
 * violation written to msg (if msg is not NULL).  Linear; for tests. */
POTAD_API int potad_space_check(const struct potad_space *s, char *msg,
				size_t msglen);

/* Handle layout, for callers that print or validate handles. */
#define POTAD_HANDLE_TYPE(h) ((unsigned)((h) >> 60))
#define POTAD_HANDLE_GEN(h) ((uint32_t)(((h) >> 32) & 0x0fffffffu))
#define POTAD_HANDLE_SLOT(h) ((uint32_t)(h))

#ifdef __cplusplus
}
#endif

#endif /* POTAD_ENGINE_H */
