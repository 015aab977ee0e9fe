/* SPDX-License-Identifier: MIT */
/* The engine's private view of a space, shared by its source files. */
#ifndef POTAD_ENGINE_INTERNAL_H
#define POTAD_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "potad/engine.h"
#include "radix.h"

/*
 * All arithmetic inside the engine is in absolute units (address >>
 * granule shift).  A space covers units [ub, ue); ue <= 2^64 - 1, so
 * u + len never wraps for a range inside the space.
 */

/*
 * One descriptor: 20 bytes, kept in a slab and named by slot number.  start
 * (counted from the space's first unit) and len hold the low 32 bits; a
 * space of 2^32 units or more keeps their high halves in a parallel slab of
 * struct deschi, so a space that small never pays for them.  Read them
 * through desc_start() and desc_len().
 */
struct desc {
	uint32_t start; /* next free slot while the slot is free */
	uint32_t len;
	uint32_t owner;
	uint32_t tag;
	uint32_t word; /* type (4 bits) << 28 | generation (28 bits) */
};

struct deschi {
	uint32_t start, len;
};

#define SLAB_CHUNK 256 /* descriptors per slab chunk */
#define DESC(s, i) (&(s)->slab[(i) / SLAB_CHUNK][(i) % SLAB_CHUNK])
#define DESCHI(s, i) (&(s)->hislab[(i) / SLAB_CHUNK][(i) % SLAB_CHUNK])
#define DESC_TYPE(d) ((d)->word >> 28)
#define DESC_GEN(d) ((d)->word & GEN_MASK)
#define GEN_MASK 0x0fffffffu
/* The type of a slot whose extent was freed into the reuse cache (see
 * cache.c): no handle names it, and lookups pass over it. */
#define DESC_CACHED 3u
#define SLOT_NIL UINT32_MAX
/* Most slab chunks a space may have: every slot number stays below
 * SLOT_NIL, which ends the free-slot list. */
#define SLAB_LIMIT ((SLOT_NIL - 1) / SLAB_CHUNK)

/* A poisoned range of units [s, e). */
struct ival {
	uint64_t s, e;
};

struct potad_space {
	uint64_t ub, ue;   /* units [ub, ue) */
	unsigned g;        /* granule shift */
	unsigned max_order;
	uint64_t nonempty;  /* bit k set: order k has free blocks */
	uint64_t cnonempty; /* bit k set: order k has clean free blocks */
	uint64_t free_units, used_units, poison_units, free_blocks;
	uint64_t nclean[POTAD_ORDERS];	  /* clean free blocks per order */
	struct rtree clean[POTAD_ORDERS]; /* the clean ones; key: fkey() */
	uint64_t dnonempty; /* bit k set: order k has dirty free blocks */
	/* No free run (no clean one) is longer than this many units: set
	 * when a search of the whole space fails, raised by frees (and by
	 * potad_set_clean()); UINT64_MAX until then (see find_run() in
	 * alloc.c). */
	uint64_t run_bound, clean_bound;
	uint64_t dirty_blocks, dirty_units;
	struct rpool nodes;

	/* Descriptors, in chunks that never move, and the address index
	 * over them with its own pools (so its cost can be told apart).
	 * Free slots form a list through freeslot; potad_place() takes slots
	 * out of its middle, so it only marks the list dirty and the next
	 * allocation rebuilds it.  New slots start at generation genfloor. */
	struct desc **slab;
	struct deschi **hislab; /* NULL unless wide */
	bool wide;              /* ue - ub > UINT32_MAX */
	uint32_t nslots, nslabs, capslabs, freeslot;
	uint32_t genfloor;
	bool slots_dirty;
	uint64_t extents;
	struct rtree index; /* key: start - ub, value: slot */
	struct rpool inodes, vals;

	/* Poisoned units, sorted and disjoint. */
	struct ival *poison;
	uint64_t npoison, cappoison;

	/* Child spaces: the parent and the slot of the extent we live in. */
	struct potad_space *parent;
	uint32_t parent_slot;
	struct potad_space **children;
	uint32_t nchildren, capchildren;

	/* The dirty free blocks, beside the clean ones: same keys, same
	 * pool.  Clean is the default, so a space that never saw a dirty
	 * free keeps these empty and pays one mask test for them; they come
	 * last so as not to push the hot fields apart. */
	uint64_t ndirty[POTAD_ORDERS];
	struct rtree dirty[POTAD_ORDERS];

	/* The reuse cache (cache.c).  Per length in units, 1 .. qmax, the
	 * most recently cached slot, the list going on through each slot's
	 * owner (older) and tag (newer) fields; and a ring of the slots in
	 * the order they came, whose entries go stale when their slot is
	 * taken back, so that the oldest can be returned first. */
	uint32_t qmax; /* 0: the cache is off */
	uint32_t *qhead;
	uint64_t *qbits; /* bit l: the list of length l is not empty */
	struct qent *ring;
	uint32_t qcap, qfirst, qcount; /* ring slots, oldest entry, entries */
	uint64_t qunits, qextents, qunits_max;
};

/* One entry of the reuse cache's ring: a slot and the generation it was
 * cached at. */
struct qent {
	uint32_t slot, gen;
};

static inline uint64_t pow2(unsigned k)
{
	return 1ull << k;
}

/* Convert a byte size (or offset) to units, rounding up. */
static inline uint64_t units_up(const struct potad_space *s, uint64_t bytes)
{
	return (bytes >> s->g) + ((bytes & (pow2(s->g) - 1)) != 0);
}

static inline unsigned ctz64(uint64_t x)
{
	return x ? (unsigned)__builtin_ctzll(x) : 64;
}

static inline unsigned log2_floor(uint64_t x)
{
	return 63 - (unsigned)__builtin_clzll(x);
}

/* ceil(log2(x)) for x >= 1; 64 for x > 2^63. */
static inline unsigned log2_ceil(uint64_t x)
{
	return x <= 1 ? 0 : log2_floor(x - 1) + 1;
}

/* The first unit and the length of the extent in slot i. */
static inline uint64_t desc_start(const struct potad_space *s, uint32_t i)
{
	uint64_t v = DESC(s, i)->start;

	if (s->wide)
		v |= (uint64_t)DESCHI(s, i)->start << 32;
	return s->ub + v;
}

static inline uint64_t desc_len(const struct potad_space *s, uint32_t i)
{
	uint64_t v = DESC(s, i)->len;

	if (s->wide)
		v |= (uint64_t)DESCHI(s, i)->len << 32;
	return v;
}

static inline uint64_t desc_end(const struct potad_space *s, uint32_t i)
{
	return desc_start(s, i) + desc_len(s, i);
}

/* Set where the extent in slot i lies: [start, start + len). */
static inline void desc_place(struct potad_space *s, uint32_t i,
			      uint64_t start, uint64_t len)
{
	start -= s->ub;
	DESC(s, i)->start = (uint32_t)start;
	DESC(s, i)->len = (uint32_t)len;
	if (s->wide) {
		DESCHI(s, i)->start = (uint32_t)(start >> 32);
		DESCHI(s, i)->len = (uint32_t)(len >> 32);
	}
}

/* Keys count blocks from the first 64-aligned block index at or below the
 * space's first block, so that buddies share a leaf word (their keys
 * differ only in bit 0) and a key never goes negative. */
static inline uint64_t forigin(const struct potad_space *s, unsigned k)
{
	return (s->ub >> k) & ~63ull;
}

static inline uint64_t fkey(const struct potad_space *s, uint64_t u,
			    unsigned k)
{
	return (u >> k) - forigin(s, k);
}

static inline uint64_t funit(const struct potad_space *s, uint64_t key,
			     unsigned k)
{
	return (key + forigin(s, k)) << k;
}

/* Whether the order-k block at u lies inside the space. */
static inline bool block_inside(const struct potad_space *s, uint64_t u,
				unsigned k)
{
	return u >= s->ub && u < s->ue && s->ue - u >= pow2(k);
}

/* The order of the first maximal aligned block of [a, b). */
static inline unsigned piece(uint64_t a, uint64_t b)
{
	unsigned k = log2_floor(b - a), t = ctz64(a);

	return t < k ? t : k;
}

/* The tree of the free blocks of order k that are dirty, or clean. */
#define FB_TREE(s, d, k) ((d) ? &(s)->dirty[k] : &(s)->clean[k])

/* Free-block primitives (space.c). */
bool potad__fb_test(const struct potad_space *s, uint64_t u, unsigned k);
/* Whether the free block of order k at u is dirty. */
static inline bool potad__fb_dirty(const struct potad_space *s, uint64_t u,
				   unsigned k)
{
	return (s->dnonempty & pow2(k)) &&
	       potad__rtree_get(&s->dirty[k], &s->nodes, NULL, fkey(s, u, k),
				NULL);
}
bool potad__fb_find(const struct potad_space *s, uint64_t x, uint64_t *u,
		    unsigned *k);
/* Node-pool elements that inserting [a, b)'s blocks may need. */
uint64_t potad__range_need(const struct potad_space *s, uint64_t a, uint64_t b);
/* Free [a, b), clean or dirty, merging with buddies of its cleanliness. */
void potad__free_range(struct potad_space *s, uint64_t a, uint64_t b,
		       bool dirty);
uint64_t potad__take_need(const struct potad_space *s, uint64_t a, uint64_t b);
int potad__take_reserve(struct potad_space *s, uint64_t a, uint64_t b);
void potad__take_range(struct potad_space *s, uint64_t a, uint64_t b);
/* Take [a, b), every unit of it free, out of the free lists; x is the end
 * of the last extent below a (or ub).  -ENOMEM leaves them as they were. */
int potad__take_free(struct potad_space *s, uint64_t a, uint64_t b, uint64_t x);
int potad__reserve(struct potad_space *s, uint64_t inserts);
/* Put [a, b) back as maximal aligned blocks that need no merging. */
void potad__add_range(struct potad_space *s, uint64_t a, uint64_t b,
		      bool dirty);
/* Take a free block out of the lists; whether it was dirty. */
bool potad__fb_del(struct potad_space *s, uint64_t u, unsigned k);

/* Allocation (alloc.c). */
/* The lowest free block, dirty or clean as asked, at or after x. */
bool potad__next_block(const struct potad_space *s, uint64_t x, bool dirty,
		       uint64_t *u, unsigned *k);
/* The units of [a, b) have just become free (plain), or clean (clean):
 * raise the bounds on the runs they may have lengthened. */
void potad__runs_grew(struct potad_space *s, uint64_t a, uint64_t b, bool plain,
		      bool clean);

/* The reuse cache (cache.c). */
/* Take a cached extent for r into *out: 0, or -ENOENT for none. */
int potad__cache_take(struct potad_space *s, const struct potad_alloc_req *r,
		      struct potad_extent *out);
/* Cache the live extent in slot (just found through its handle) instead of
 * freeing it, if it qualifies and room can be made; whether it did. */
bool potad__cache_put(struct potad_space *s, uint32_t slot);
void potad__cache_fini(struct potad_space *s);
/* Return the cached extents that overlap units [a, b) to the free lists
 * (a < b, inside the space): 0, or -ENOMEM with some still cached. */
int potad__cache_return_range(struct potad_space *s, uint64_t a, uint64_t b);
/* Free the extent in slot, live or cached (no poison in it), as
 * potad_free() does once it has checked the handle; its insertions must
 * have been reserved. */
void potad__release_slot(struct potad_space *s, uint32_t slot);

/* Descriptors (extent.c). */
int potad__desc_new(struct potad_space *s, uint64_t start, uint64_t len,
		    uint32_t owner, uint32_t tag, unsigned type,
		    struct potad_extent *out);
void potad__desc_drop(struct potad_space *s, uint32_t slot);
int potad__desc_find(const struct potad_space *s, uint64_t handle,
		     uint32_t *slot);
void potad__desc_fill(const struct potad_space *s, uint32_t slot,
		      struct potad_extent *out);
bool potad__desc_covering(const struct potad_space *s, uint64_t u,
			  uint32_t *slot);
uint64_t potad__desc_handle(const struct potad_space *s, uint32_t slot);
/* Value-pool elements an index insert may need: one leaf's array. */
#define INDEX_VAL_NEED 64
/* Whether an index insert can be made without calling malloc. */
static inline bool potad__index_ready(const struct potad_space *s)
{
	return potad__rpool_ready(&s->inodes,
				  potad__rtree_insert_need(&s->index)) &&
	       potad__rpool_ready(&s->vals, INDEX_VAL_NEED);
}
/* Room for one more extent: a free slot and an index insert; -ENOMEM.
 * Inline for the usual case, where both are at hand. */
int potad__extents_grow(struct potad_space *s);
static inline int potad__extents_reserve(struct potad_space *s)
{
	if (!s->slots_dirty && s->freeslot != SLOT_NIL &&
	    potad__index_ready(s))
		return 0;
	return potad__extents_grow(s);
}
/* Room for one more key in the extent index. */
int potad__index_reserve(struct potad_space *s);
/* Make the slab hold n slots; on failure it is as it was. */
int potad__slab_reserve(struct potad_space *s, uint64_t n);
/* Free the slab chunks from the n-th on (none may hold a slot in use). */
void potad__slab_trim(struct potad_space *s, uint32_t n);
/* Make the free slot `slot` (the slab holds it) live with this descriptor;
 * the index must have room. */
void potad__desc_put(struct potad_space *s, uint32_t slot, uint64_t start,
		     uint64_t len, uint32_t owner, uint32_t tag, uint32_t word);
uint64_t potad__extents_bytes(const struct potad_space *s);
void potad__extents_fini(struct potad_space *s);

/* Poison (poison.c). */
bool potad__poison_overlaps(const struct potad_space *s, uint64_t a,
			    uint64_t b);
void potad__free_unpoisoned(struct potad_space *s, uint64_t a, uint64_t b,
			    bool dirty);
uint64_t potad__unpoisoned_need(const struct potad_space *s, uint64_t a,
				uint64_t b);
/* Take the unpoisoned units of [a, b), all free, out of the free lists,
 * and what that needs reserved first. */
void potad__take_unpoisoned(struct potad_space *s, uint64_t a, uint64_t b);
uint64_t potad__take_unpoisoned_need(const struct potad_space *s, uint64_t a,
				     uint64_t b);
/* The run edge after poison: the end of the last poisoned range in [x, a),
 * or x; the start of the first poisoned range in [b, x), or x. */
uint64_t potad__poison_floor(const struct potad_space *s, uint64_t x,
			     uint64_t a);
uint64_t potad__poison_ceil(const struct potad_space *s, uint64_t b,
			    uint64_t x);
uint64_t potad__poison_count(const struct potad_space *s, uint64_t a,
			     uint64_t b);
int potad__poison_room(struct potad_space *s, uint64_t more);
int potad__poison_add(struct potad_space *s, uint64_t a, uint64_t b);
int potad__poison_units(struct potad_space *s, uint64_t a, uint64_t b,
			potad_poison_fn fn, void *arg);
/* Units [a, b) of parent p, as units of its child c (rounded outwards,
 * clipped to c).  False if they miss c. */
bool potad__to_child(const struct potad_space *p, const struct potad_space *c,
		     uint64_t a, uint64_t b, uint64_t *ca, uint64_t *cb);
struct potad_space *potad__child_at(const struct potad_space *s,
				    uint32_t slot);

#endif /* POTAD_ENGINE_INTERNAL_H */
