/* SPDX-License-Identifier: MIT */
/* Sparse 64-ary bitmap radix trees over 64-bit keys, for free-block sets and
 * the extent index. */
#ifndef POTAD_RADIX_H
#define POTAD_RADIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A node is a 64-bit word plus a 32-bit reference.  In a leaf the word holds
 * one bit per key.  In an inner node it says which of the 64 children exist,
 * and the reference names a packed array holding only those children, in
 * order: child i sits at popcount(word & ((1 << i) - 1)).  An isolated key
 * therefore costs one 12-byte node per level below the root, and a dense
 * region costs little more than its bitmap.
 *
 * In a map (the extent index) a leaf's reference names a packed array of
 * 32-bit values, one per set bit; a leaf holding exactly one key stores
 * its value in the reference itself.
 *
 * Arrays live in pools of fixed-size chunks that never move, so a pointer
 * to a node stays valid until that node's own array is resized.  Array
 * capacities come in classes 1, 2, 3, 4, 6, 8, 12, ... 64 to keep the slack
 * near a quarter.
 */
struct rnode {
	uint64_t bits;
	uint32_t ref;
} __attribute__((packed, aligned(4)));

#define RPOOL_CLASSES 12
#define RPOOL_CHUNK 512 /* elements per chunk */

struct rpool {
	unsigned char **chunks; /* chunk table; chunks never move */
	uint32_t nchunks, capchunks;
	uint32_t elem;      /* bytes per element: 12 (nodes) or 4 (values) */
	uint32_t bump;      /* next unused element index in the last chunk */
	uint32_t freel[RPOOL_CLASSES]; /* per-class free runs (index or NIL) */
	uint64_t live;      /* elements handed out */
	uint64_t spare;     /* elements on the free lists */
};

struct rtree {
	struct rnode root;
	uint8_t depth; /* levels including the leaf level; 1..11 */
	uint8_t map;   /* leaves carry values */
};

/* Initialise a pool of elem-byte elements; allocates nothing. */
void potad__rpool_init(struct rpool *p, uint32_t elem);
/* Release every chunk. */
void potad__rpool_fini(struct rpool *p);
/* Whether the next `n` elements can be handed out without calling malloc.
 * A run never straddles two chunks, so each chunk boundary crossed may
 * strand up to 63 elements on the free lists. */
static inline bool potad__rpool_ready(const struct rpool *p, uint64_t n)
{
	return n == 0 || (uint64_t)p->nchunks * RPOOL_CHUNK - p->bump >=
				 n + 64 * (n / RPOOL_CHUNK + 2);
}
/* Add chunks until potad__rpool_ready(p, n); -ENOMEM if that cannot be
 * arranged. */
int potad__rpool_grow(struct rpool *p, uint64_t n);
/* Make sure the next `n` elements can be handed out without calling
 * malloc; -ENOMEM if that cannot be arranged. */
static inline int potad__rpool_reserve(struct rpool *p, uint64_t n)
{
	return potad__rpool_ready(p, n) ? 0 : potad__rpool_grow(p, n);
}
/* Bytes held from the system. */
uint64_t potad__rpool_bytes(const struct rpool *p);

/* An empty tree able to hold keys 0..maxkey. */
void potad__rtree_init(struct rtree *t, uint64_t maxkey, bool map);
/* Free every node of t (its pools stay). */
void potad__rtree_clear(struct rtree *t, struct rpool *nodes,
			struct rpool *vals);
/* Elements a single insert may need from the node pool, at most. */
static inline uint64_t potad__rtree_insert_need(const struct rtree *t)
{
	return 64u * (uint64_t)(t->depth - 1);
}

/* Whether key is present; for maps, *val gets its value (val may be NULL). */
bool potad__rtree_get(const struct rtree *t, const struct rpool *nodes,
		      const struct rpool *vals, uint64_t key, uint32_t *val);
/* Add key (with val in a map; replaced if present).  The pools must have
 * been reserved: this never fails. */
void potad__rtree_insert(struct rtree *t, struct rpool *nodes,
			 struct rpool *vals, uint64_t key, uint32_t val);
/* For a set whose keys pair up as (2i, 2i + 1): if key's partner is
 * present, remove it and return true; otherwise add key and return false.
 * One walk down instead of a failed remove and an insert: the buddy
 * allocator's merge step.  Needs the same reservation as an insert. */
bool potad__rtree_pair(struct rtree *t, struct rpool *nodes, uint64_t key);
/* Remove key; false if it was absent.  Never fails. */
bool potad__rtree_remove(struct rtree *t, struct rpool *nodes,
			 struct rpool *vals, uint64_t key);
/* Smallest key >= from (next) or largest key <= from (prev); false if none.
 * For maps *val gets its value (val may be NULL). */
bool potad__rtree_next(const struct rtree *t, const struct rpool *nodes,
		       const struct rpool *vals, uint64_t from, uint64_t *key,
		       uint32_t *val);
bool potad__rtree_prev(const struct rtree *t, const struct rpool *nodes,
		       const struct rpool *vals, uint64_t from, uint64_t *key,
		       uint32_t *val);
/* A cursor over a tree's keys in order, from key `from` on: one walk down
 * per leaf word rather than per key.  Zero it, set from, and call
 * potad__rtree_iter() until it returns false; the tree must not change in
 * between. */
struct riter {
	uint64_t from, base, rest;
	bool done;
};
bool potad__rtree_iter(const struct rtree *t, const struct rpool *nodes,
		       struct riter *it, uint64_t *key);
/* Call fn(key, value, arg) for every key >= from in order (value 0 in a
 * set), until fn returns nonzero, which is then returned; 0 after the last
 * key.  One visit per node: O(keys) for the whole tree, not a search per
 * key.  fn must not change the tree. */
typedef int (*potad__rtree_fn)(uint64_t key, uint32_t val, void *arg);
int potad__rtree_walk(const struct rtree *t, const struct rpool *nodes,
		      const struct rpool *vals, uint64_t from,
		      potad__rtree_fn fn, void *arg);
/* Structural self-check (no empty nodes, arrays inside their pool). */
bool potad__rtree_verify(const struct rtree *t, const struct rpool *nodes,
			 const struct rpool *vals);
/* Largest key the tree can hold. */
static inline uint64_t potad__rtree_maxkey(const struct rtree *t)
{
	return t->depth >= 11 ? UINT64_MAX : (1ull << (6 * t->depth)) - 1;
}

#endif /* POTAD_RADIX_H */
