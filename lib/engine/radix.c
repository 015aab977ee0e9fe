/* SPDX-License-Identifier: MIT */
/* Sparse 64-ary bitmap radix trees and the chunked pools their arrays live
 * in. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "radix.h"

/*
 * Every operation walks from the root along the key's base-64 digits, at
 * most 11 levels for a 64-bit key and far fewer for the key ranges a space
 * really has (a tree is only as deep as its largest key needs).  At each
 * level the child is found with one popcount over the node's word; "next"
 * and "prev" climb back only as far as the first level that has a sibling
 * on the wanted side, then descend along ctz/clz.
 *
 * A set is usually sparse where its keys are (a free list of one order has
 * a block here and there), so most keys would sit alone in a chain of
 * one-child nodes down to a leaf with one bit.  Such a chain is cut short:
 * a node whose subtree would hold a single key is a singleton, its word
 * holding that key's low digits (its own and those below it) and its
 * reference the mark SINGLE.  Inserting beside a singleton turns it back
 * into a node with one child, a level at a time; nothing merges two chains
 * back into one on removal, since the next removal there usually takes the
 * whole subtree away.  The root of a set is a singleton too while the set
 * holds one key, so a set that keeps going from empty to one key and back
 * (a free list of one order, often) allocates nothing for it.  Maps (the
 * extent index) keep their values in the reference, so they never use
 * singletons; their keys are denser anyway (packed extents share leaves),
 * and singletons there measured no gain.
 *
 * Arrays are resized by moving them to a run of the next capacity class.
 * Insertion can therefore need up to one fresh run per level; the caller
 * reserves that much before it changes anything, so an engine operation
 * never fails half-way.  Removal never allocates: it shrinks an array only
 * when a smaller run is already at hand.
 */

#define NIL UINT32_MAX
#define REF_IDX(r) ((r) & 0x0fffffffu)
#define REF_CLS(r) ((r) >> 28)
#define MKREF(i, c) ((uint32_t)(i) | ((uint32_t)(c) << 28))
#define IDX_LIMIT 0x0fffffffu
/* A singleton's reference: class 15, which no array has. */
#define SINGLE UINT32_MAX

static const uint8_t cap_of[RPOOL_CLASSES] = { 1,  2,  3,  4,  6,  8,
					       12, 16, 24, 32, 48, 64 };

/* The smallest class that holds n elements, for n <= 64. */
static const uint8_t cls_of[65] = {
	0, 0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7,
	7, 8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9,
	9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
	10, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11,
	11,
};

static inline unsigned cls_for(unsigned n)
{
	return cls_of[n];
}

static inline unsigned popc(uint64_t x)
{
	return (unsigned)__builtin_popcountll(x);
}

static inline uint64_t bit(unsigned i)
{
	return 1ull << i;
}

/* Bits strictly above i. */
static inline uint64_t above(unsigned i)
{
	return i == 63 ? 0 : ~0ull << (i + 1);
}

/* Bits strictly below i. */
static inline uint64_t below(unsigned i)
{
	return bit(i) - 1;
}

static inline unsigned rank(uint64_t bits, unsigned i)
{
	return popc(bits & below(i));
}

static inline unsigned digit(uint64_t key, unsigned lvl)
{
	return (unsigned)(key >> (6 * lvl)) & 63;
}

/* The key bits a node at level lvl spans: its own digit and those below. */
static inline uint64_t span_mask(unsigned lvl)
{
	unsigned s = 6 * (lvl + 1);

	return s >= 64 ? ~0ull : (1ull << s) - 1;
}

/* Whether n, a node at level lvl, is a singleton.  Leaves never are, and
 * a map's inner nodes always hold arrays. */
static inline bool single(const struct rnode *n, unsigned lvl)
{
	return lvl > 0 && n->ref == SINGLE;
}

/* key with every digit at or below lvl cleared. */
static inline uint64_t keep_above(uint64_t key, unsigned lvl)
{
	unsigned s = 6 * (lvl + 1);

	return s >= 64 ? 0 : key >> s << s;
}

static inline void *pel(const struct rpool *p, uint32_t i)
{
	return p->chunks[i / RPOOL_CHUNK] + (size_t)(i % RPOOL_CHUNK) * p->elem;
}

/* The hot paths know the element type, so they skip the multiply. */
static inline struct rnode *node_at(const struct rpool *p, uint32_t i)
{
	return (struct rnode *)p->chunks[i / RPOOL_CHUNK] + i % RPOOL_CHUNK;
}

static inline uint32_t *val_at(const struct rpool *p, uint32_t i)
{
	return (uint32_t *)p->chunks[i / RPOOL_CHUNK] + i % RPOOL_CHUNK;
}

void potad__rpool_init(struct rpool *p, uint32_t elem)
{
	memset(p, 0, sizeof(*p));
	p->elem = elem;
	for (unsigned c = 0; c < RPOOL_CLASSES; c++)
		p->freel[c] = NIL;
}

void potad__rpool_fini(struct rpool *p)
{
	for (uint32_t c = 0; c < p->nchunks; c++)
		free(p->chunks[c]);
	free(p->chunks);
	potad__rpool_init(p, p->elem);
}

uint64_t potad__rpool_bytes(const struct rpool *p)
{
	return (uint64_t)p->nchunks * RPOOL_CHUNK * p->elem +
	       (uint64_t)p->capchunks * sizeof(p->chunks[0]);
}

static int add_chunk(struct rpool *p)
{
	if ((uint64_t)(p->nchunks + 1) * RPOOL_CHUNK > IDX_LIMIT)
		return -ENOMEM;
	if (p->nchunks == p->capchunks) {
		uint32_t cap = p->capchunks ? 2 * p->capchunks : 4;
		unsigned char **t = realloc(p->chunks, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		p->chunks = t;
		p->capchunks = cap;
	}
	p->chunks[p->nchunks] = malloc((size_t)RPOOL_CHUNK * p->elem);
	if (!p->chunks[p->nchunks])
		return -ENOMEM;
	p->nchunks++;
	return 0;
}

static void push_run(struct rpool *p, uint32_t i, unsigned c)
{
	*(uint32_t *)pel(p, i) = p->freel[c];
	p->freel[c] = i;
	p->spare += cap_of[c];
}

int potad__rpool_grow(struct rpool *p, uint64_t n)
{
	while (!potad__rpool_ready(p, n))
		if (add_chunk(p) < 0)
			return -ENOMEM;
	return 0;
}

/* A run of class c, or NIL.  With grow false, never calls malloc. */
static uint32_t alloc_run(struct rpool *p, unsigned c, bool grow)
{
	uint32_t n = cap_of[c], i = p->freel[c];

	if (i != NIL) {
		p->freel[c] = *(uint32_t *)pel(p, i);
		p->spare -= n;
		p->live += n;
		return i;
	}
	if (p->bump % RPOOL_CHUNK + n > RPOOL_CHUNK) {
		/* Hand the rest of this chunk to the free lists. */
		uint32_t rest = RPOOL_CHUNK - p->bump % RPOOL_CHUNK;

		while (rest) {
			unsigned k = RPOOL_CLASSES - 1;

			while (cap_of[k] > rest)
				k--;
			push_run(p, p->bump, k);
			p->bump += cap_of[k];
			rest -= cap_of[k];
		}
	}
	if (p->bump + n > (uint64_t)p->nchunks * RPOOL_CHUNK &&
	    (!grow || add_chunk(p) < 0))
		return NIL;
	i = p->bump;
	p->bump += n;
	p->live += n;
	return i;
}

static void free_run(struct rpool *p, uint32_t i, unsigned c)
{
	p->live -= cap_of[c];
	push_run(p, i, c);
}

/* Zero one element: a node or a value, each of a size the compiler knows,
 * so no call to memset for 4 or 12 bytes. */
static inline void zero_elem(void *e, size_t es)
{
	static const struct rnode zn;
	static const uint32_t zv;

	if (es == sizeof(struct rnode))
		memcpy(e, &zn, sizeof(zn));
	else
		memcpy(e, &zv, sizeof(zv));
}

/* Open a zeroed slot at pos in the array of cnt elements named by *ref. */
static void *arr_insert(struct rpool *p, uint32_t *ref, unsigned cnt,
			unsigned pos)
{
	size_t es = p->elem;
	unsigned char *a, *b;
	uint32_t i, j;
	unsigned c;

	if (cnt == 0) {
		i = alloc_run(p, 0, true);
		*ref = MKREF(i, 0);
		a = pel(p, i);
		zero_elem(a, es);
		return a;
	}
	c = REF_CLS(*ref);
	i = REF_IDX(*ref);
	a = pel(p, i);
	if (cnt < cap_of[c]) {
		memmove(a + (pos + 1) * es, a + pos * es, (cnt - pos) * es);
		zero_elem(a + pos * es, es);
		return a + pos * es;
	}
	j = alloc_run(p, c + 1, true);
	b = pel(p, j);
	memcpy(b, a, pos * es);
	zero_elem(b + pos * es, es);
	memcpy(b + (pos + 1) * es, a + pos * es, (cnt - pos) * es);
	free_run(p, i, c);
	*ref = MKREF(j, c + 1);
	return b + pos * es;
}

/* Close the slot at pos in an array that holds cnt elements. */
static void arr_remove(struct rpool *p, uint32_t *ref, unsigned cnt,
		       unsigned pos)
{
	size_t es = p->elem;
	unsigned c = REF_CLS(*ref), want;
	uint32_t i = REF_IDX(*ref), j;
	unsigned char *a = pel(p, i);

	if (cnt == 1) {
		free_run(p, i, c);
		*ref = 0;
		return;
	}
	memmove(a + pos * es, a + (pos + 1) * es, (cnt - pos - 1) * es);
	want = cls_for(cnt - 1);
	if (want + 2 > c)
		return;
	j = alloc_run(p, want, false);
	if (j == NIL)
		return;
	memcpy(pel(p, j), a, (cnt - 1) * es);
	free_run(p, i, c);
	*ref = MKREF(j, want);
}

static inline struct rnode *kids(const struct rpool *np, const struct rnode *n)
{
	return node_at(np, REF_IDX(n->ref));
}

static inline uint32_t leaf_val(const struct rpool *vp, const struct rnode *n,
				unsigned i)
{
	if (popc(n->bits) == 1)
		return n->ref;
	return val_at(vp, REF_IDX(n->ref))[rank(n->bits, i)];
}

void potad__rtree_init(struct rtree *t, uint64_t maxkey, bool map)
{
	unsigned d = 1;

	while (d < 11 && (maxkey >> (6 * d)) != 0)
		d++;
	memset(t, 0, sizeof(*t));
	t->depth = (uint8_t)d;
	t->map = map;
}


static void clear_node(struct rnode *n, unsigned lvl, bool map,
		       struct rpool *np, struct rpool *vp)
{
	unsigned cnt = popc(n->bits);

	if (single(n, lvl)) {
		/* No array below it. */
	} else if (lvl == 0) {
		if (map && cnt >= 2)
			free_run(vp, REF_IDX(n->ref), REF_CLS(n->ref));
	} else if (cnt) {
		struct rnode *k = kids(np, n);

		for (unsigned i = 0; i < cnt; i++)
			clear_node(&k[i], lvl - 1, map, np, vp);
		free_run(np, REF_IDX(n->ref), REF_CLS(n->ref));
	}
	n->bits = 0;
	n->ref = 0;
}

void potad__rtree_clear(struct rtree *t, struct rpool *nodes,
			struct rpool *vals)
{
	clear_node(&t->root, t->depth - 1u, t->map, nodes, vals);
}

bool potad__rtree_get(const struct rtree *t, const struct rpool *nodes,
		      const struct rpool *vals, uint64_t key, uint32_t *val)
{
	const struct rnode *n = &t->root;
	unsigned i;

	if (key > potad__rtree_maxkey(t))
		return false;
	for (unsigned lvl = t->depth - 1u; lvl > 0; lvl--) {
		if (single(n, lvl))
			return n->bits == (key & span_mask(lvl));
		i = digit(key, lvl);
		if (!(n->bits & bit(i)))
			return false;
		n = kids(nodes, n) + rank(n->bits, i);
	}
	i = key & 63;
	if (!(n->bits & bit(i)))
		return false;
	if (t->map && val)
		*val = leaf_val(vals, n, i);
	return true;
}

/* Insert key below node n, which sits at level lvl on key's path. */
static void insert_from(const struct rtree *t, struct rpool *nodes,
			struct rpool *vals, struct rnode *n, unsigned lvl,
			uint64_t key, uint32_t val)
{
	unsigned i, r, cnt;
	struct rnode *c;

	/* A set holding one key keeps it in the root. */
	if (!t->map && lvl > 0 && lvl == t->depth - 1u && n->bits == 0 &&
	    n->ref == 0) {
		n->bits = key & span_mask(lvl);
		n->ref = SINGLE;
		return;
	}
	for (; lvl > 0; lvl--) {
		if (single(n, lvl)) {
			uint64_t old = n->bits;

			if (old == (key & span_mask(lvl)))
				return;
			/* Give the key already here a child of its own, then
			 * go on as with any node. */
			n->bits = 0;
			n->ref = 0;
			c = arr_insert(nodes, &n->ref, 0, 0);
			n->bits = bit(digit(old, lvl));
			if (lvl > 1) {
				c->bits = old & span_mask(lvl - 1);
				c->ref = SINGLE;
			} else {
				c->bits = bit(old & 63);
			}
		}
		i = digit(key, lvl);
		r = rank(n->bits, i);
		if (!(n->bits & bit(i))) {
			c = arr_insert(nodes, &n->ref, popc(n->bits), r);
			n->bits |= bit(i);
			if (!t->map && lvl > 1) {
				c->bits = key & span_mask(lvl - 1);
				c->ref = SINGLE;
				return;
			}
			n = c;
		} else {
			n = kids(nodes, n) + r;
		}
	}
	i = key & 63;
	if (!t->map) {
		n->bits |= bit(i);
		return;
	}
	cnt = popc(n->bits);
	r = rank(n->bits, i);
	if (n->bits & bit(i)) {
		if (cnt == 1)
			n->ref = val;
		else
			val_at(vals, REF_IDX(n->ref))[r] = val;
		return;
	}
	if (cnt == 0) {
		n->ref = val;
	} else if (cnt == 1) {
		uint32_t old = n->ref, j = alloc_run(vals, cls_for(2), true);
		uint32_t *a = val_at(vals, j);

		a[r] = val;
		a[1 - r] = old;
		n->ref = MKREF(j, cls_for(2));
	} else {
		*(uint32_t *)arr_insert(vals, &n->ref, cnt, r) = val;
	}
	n->bits |= bit(i);
}

void potad__rtree_insert(struct rtree *t, struct rpool *nodes,
			 struct rpool *vals, uint64_t key, uint32_t val)
{
	insert_from(t, nodes, vals, &t->root, t->depth - 1u, key, val);
}

/* After n, a node at level from, lost its last key, drop it and the nodes
 * left empty above it.  A singleton being dropped has had its word
 * cleared; so has a singleton root, which then becomes an empty root. */
static void prune(const struct rtree *t, struct rpool *nodes,
		  struct rnode **path, const unsigned *idx, struct rnode *n,
		  unsigned from)
{
	for (unsigned lvl = from + 1; lvl < t->depth && n->bits == 0; lvl++) {
		struct rnode *p = path[lvl];

		arr_remove(nodes, &p->ref, popc(p->bits),
			   rank(p->bits, idx[lvl]));
		p->bits &= ~bit(idx[lvl]);
		n = p;
	}
	/* Only the root stops the climb while empty. */
	if (n->bits == 0)
		n->ref = 0;
}

bool potad__rtree_pair(struct rtree *t, struct rpool *nodes, uint64_t key)
{
	struct rnode *path[11], *n = &t->root;
	unsigned idx[11], i, lvl;

	for (lvl = t->depth - 1u; lvl > 0; lvl--) {
		if (single(n, lvl) && n->bits == ((key & span_mask(lvl)) ^ 1)) {
			n->bits = 0;
			prune(t, nodes, path, idx, n, lvl);
			return true;
		}
		i = digit(key, lvl);
		if (single(n, lvl) || !(n->bits & bit(i))) {
			insert_from(t, nodes, NULL, n, lvl, key, 0);
			return false;
		}
		path[lvl] = n;
		idx[lvl] = i;
		n = kids(nodes, n) + rank(n->bits, i);
	}
	i = (key & 63) ^ 1;
	if (!(n->bits & bit(i))) {
		n->bits |= bit(i ^ 1);
		return false;
	}
	n->bits &= ~bit(i);
	if (n->bits == 0)
		prune(t, nodes, path, idx, n, 0);
	return true;
}

bool potad__rtree_remove(struct rtree *t, struct rpool *nodes,
			 struct rpool *vals, uint64_t key)
{
	struct rnode *path[11], *n = &t->root;
	unsigned idx[11], i, lvl;

	if (key > potad__rtree_maxkey(t))
		return false;
	for (lvl = t->depth - 1u; lvl > 0; lvl--) {
		if (single(n, lvl)) {
			if (n->bits != (key & span_mask(lvl)))
				return false;
			n->bits = 0;
			prune(t, nodes, path, idx, n, lvl);
			return true;
		}
		i = digit(key, lvl);
		if (!(n->bits & bit(i)))
			return false;
		path[lvl] = n;
		idx[lvl] = i;
		n = kids(nodes, n) + rank(n->bits, i);
	}
	i = key & 63;
	if (!(n->bits & bit(i)))
		return false;
	if (t->map) {
		unsigned cnt = popc(n->bits), r = rank(n->bits, i);

		if (cnt == 2) {
			uint32_t *a = val_at(vals, REF_IDX(n->ref));
			uint32_t other = a[1 - r];

			free_run(vals, REF_IDX(n->ref), REF_CLS(n->ref));
			n->ref = other;
		} else if (cnt > 2) {
			arr_remove(vals, &n->ref, cnt, r);
		}
	}
	n->bits &= ~bit(i);
	if (n->bits == 0)
		prune(t, nodes, path, idx, n, 0);
	return true;
}

/* Descend from n (a node at level lvl) to its smallest (or largest) key;
 * *leaf (if not NULL) gets that key's leaf word. */
static void descend(const struct rtree *t, const struct rpool *np,
		    const struct rpool *vp, const struct rnode *n, unsigned lvl,
		    uint64_t key, bool largest, uint64_t *out, uint32_t *val,
		    uint64_t *leaf)
{
	unsigned i;

	for (; lvl > 0; lvl--) {
		if (single(n, lvl)) {
			*out = key | n->bits;
			if (leaf)
				*leaf = bit(n->bits & 63);
			return;
		}
		if (largest) {
			i = 63 - (unsigned)__builtin_clzll(n->bits);
			key |= (uint64_t)i << (6 * lvl);
			n = kids(np, n) + popc(n->bits) - 1;
		} else {
			i = (unsigned)__builtin_ctzll(n->bits);
			key |= (uint64_t)i << (6 * lvl);
			n = kids(np, n);
		}
	}
	i = largest ? 63 - (unsigned)__builtin_clzll(n->bits)
		    : (unsigned)__builtin_ctzll(n->bits);
	*out = key | i;
	if (t->map && val)
		*val = leaf_val(vp, n, i);
	if (leaf)
		*leaf = n->bits;
}

/*
 * One search for both directions.  Walk down along `from`; at the first
 * level where from's own child is missing, or at the leaf, look for a set
 * bit on the wanted side; failing that, climb the recorded path to the
 * nearest level that has one, then descend to the extreme key below it.
 */
static bool seek(const struct rtree *t, const struct rpool *np,
		 const struct rpool *vp, uint64_t from, bool down,
		 uint64_t *key, uint32_t *val, uint64_t *leaf)
{
	const struct rnode *path[11], *n = &t->root;
	unsigned idx[11], i, lvl;
	uint64_t m;

	for (lvl = t->depth - 1u;; lvl--) {
		if (single(n, lvl)) {
			uint64_t k = keep_above(from, lvl) | n->bits;

			if (down ? k > from : k < from)
				break;
			*key = k;
			if (leaf)
				*leaf = bit(k & 63);
			return true;
		}
		i = digit(from, lvl);
		if (lvl == 0) {
			m = down ? n->bits & (below(i) | bit(i))
				 : n->bits & (bit(i) | above(i));
			if (m) {
				i = down ? 63 - (unsigned)__builtin_clzll(m)
					 : (unsigned)__builtin_ctzll(m);
				*key = (from & ~63ull) | i;
				if (t->map && val)
					*val = leaf_val(vp, n, i);
				if (leaf)
					*leaf = n->bits;
				return true;
			}
			break;
		}
		if (!(n->bits & bit(i))) {
			m = n->bits & (down ? below(i) : above(i));
			if (m) {
				unsigned j = down ? 63 - (unsigned)__builtin_clzll(m)
						  : (unsigned)__builtin_ctzll(m);

				descend(t, np, vp, kids(np, n) + rank(n->bits, j),
					lvl - 1,
					keep_above(from, lvl) |
						(uint64_t)j << (6 * lvl),
					down, key, val, leaf);
				return true;
			}
			break;
		}
		path[lvl] = n;
		idx[lvl] = i;
		n = kids(np, n) + rank(n->bits, i);
	}
	/* Nothing on the wanted side at or below level lvl: climb. */
	for (lvl = lvl + 1; lvl < t->depth; lvl++) {
		const struct rnode *p = path[lvl];

		m = p->bits & (down ? below(idx[lvl]) : above(idx[lvl]));
		if (m) {
			unsigned j = down ? 63 - (unsigned)__builtin_clzll(m)
					  : (unsigned)__builtin_ctzll(m);

			descend(t, np, vp, kids(np, p) + rank(p->bits, j),
				lvl - 1,
				keep_above(from, lvl) | (uint64_t)j << (6 * lvl),
				down, key, val, leaf);
			return true;
		}
	}
	return false;
}

bool potad__rtree_next(const struct rtree *t, const struct rpool *nodes,
		       const struct rpool *vals, uint64_t from, uint64_t *key,
		       uint32_t *val)
{
	const struct rnode *r = &t->root;

	if (from > potad__rtree_maxkey(t))
		return false;
	/* The smallest key (a free list's lowest block, asked for on every
	 * best-fit allocation) is straight down the first children. */
	if (from == 0) {
		if (r->bits == 0 && !single(r, t->depth - 1u))
			return false;
		descend(t, nodes, vals, r, t->depth - 1u, 0, false, key, val,
			NULL);
		return true;
	}
	return seek(t, nodes, vals, from, false, key, val, NULL);
}

bool potad__rtree_prev(const struct rtree *t, const struct rpool *nodes,
		       const struct rpool *vals, uint64_t from, uint64_t *key,
		       uint32_t *val)
{
	uint64_t max = potad__rtree_maxkey(t);

	return seek(t, nodes, vals, from > max ? max : from, true, key, val,
		    NULL);
}

bool potad__rtree_iter(const struct rtree *t, const struct rpool *nodes,
		       struct riter *it, uint64_t *key)
{
	uint64_t k, w;

	if (!it->rest) {
		if (it->done || it->from > potad__rtree_maxkey(t) ||
		    !seek(t, nodes, NULL, it->from, false, &k, NULL, &w)) {
			it->done = true;
			return false;
		}
		it->base = k & ~63ull;
		it->rest = w & (bit(k & 63) | above(k & 63));
		it->from = it->base + 64;
		it->done = it->from == 0;
	}
	*key = it->base | (unsigned)__builtin_ctzll(it->rest);
	it->rest &= it->rest - 1;
	return true;
}

/* The subtree at n (level lvl, keys prefix | its digits), from key `from`
 * on, in order: every node below the path to `from` is visited once. */
static int walk_node(const struct rtree *t, const struct rpool *np,
		     const struct rpool *vp, const struct rnode *n,
		     unsigned lvl, uint64_t prefix, uint64_t from,
		     potad__rtree_fn fn, void *arg)
{
	uint64_t m;
	int rc;

	if (single(n, lvl)) {
		uint64_t k = prefix | n->bits;

		return k >= from ? fn(k, 0, arg) : 0;
	}
	/* Digits below from's own at this level hold only smaller keys;
	 * once past it, every key of a child is larger. */
	m = n->bits;
	if (keep_above(from, lvl) == prefix)
		m &= ~below(digit(from, lvl));
	for (; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		uint64_t k = prefix | (uint64_t)i << (6 * lvl);

		if (lvl == 0)
			rc = fn(k, t->map ? leaf_val(vp, n, i) : 0, arg);
		else
			rc = walk_node(t, np, vp,
				       kids(np, n) + rank(n->bits, i), lvl - 1,
				       k, from, fn, arg);
		if (rc)
			return rc;
	}
	return 0;
}

int potad__rtree_walk(const struct rtree *t, const struct rpool *nodes,
		      const struct rpool *vals, uint64_t from,
		      potad__rtree_fn fn, void *arg)
{
	if (from > potad__rtree_maxkey(t))
		return 0;
	return walk_node(t, nodes, vals, &t->root, t->depth - 1u, 0, from, fn,
			 arg);
}

static bool verify_node(const struct rnode *n, unsigned lvl, bool map,
			bool root, const struct rpool *np,
			const struct rpool *vp)
{
	unsigned cnt = popc(n->bits);
	const struct rpool *p = lvl ? np : vp;

	if (single(n, lvl))
		return !map && (n->bits & ~span_mask(lvl)) == 0;
	if (!root && cnt == 0)
		return false;
	if (lvl == 0 && (!map || cnt < 2))
		return true;
	if (cnt == 0)
		return true;
	if (REF_CLS(n->ref) >= RPOOL_CLASSES ||
	    cap_of[REF_CLS(n->ref)] < cnt ||
	    (uint64_t)REF_IDX(n->ref) + cnt > p->bump)
		return false;
	if (lvl == 0)
		return true;
	for (unsigned i = 0; i < cnt; i++)
		if (!verify_node(kids(np, n) + i, lvl - 1, map, false, np, vp))
			return false;
	return true;
}

bool potad__rtree_verify(const struct rtree *t, const struct rpool *nodes,
			 const struct rpool *vals)
{
	return verify_node(&t->root, t->depth - 1u, t->map, true, nodes, vals);
}
