/* SPDX-License-Identifier: MIT */
/* The reuse cache: recently freed extents kept whole for the next request
 * of their length. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Most of an allocation's cost is in the free lists: carving a block into
 * the extent and the pieces around it, and on the free, merging the
 * pieces with their buddies again, a few tree operations per order the
 * extent spans.  When extents of one length come and go (swap slots, the
 * small sizes of any churn), that work is undone as soon as it is done.
 * The cache keeps such an extent as it is: its slot turns DESC_CACHED,
 * with a new generation so the freed handle is stale, and goes on the
 * list of its length; its index entry stays.  The next plain request of
 * that length takes the newest one back: a new owner and tag, the type
 * EXTENT again, and nothing else changes.  Both are O(1) and touch one
 * descriptor.
 *
 * A cached extent is free to every caller.  Internally it still counts as
 * an extent (s->extents, s->used_units and the index include it), so the
 * code that drops descriptors and the checker's tiling need no second
 * case; potad_space_stats() moves it to the free side.  Lookups and
 * iteration skip slots of type DESC_CACHED, and a handle never names one.
 *
 * A request whose length has no list takes the shortest cached extent up
 * to 1/32 longer instead, and gives its tail back to the free lists: the
 * long lengths are too many for exact matches to be common, and a tail
 * costs less than carving a new extent and, later, returning the unused
 * cached one.  A bitmap of the non-empty lists finds it.
 *
 * The ring records every slot cached, oldest first, with the generation
 * it was cached at; a slot taken back leaves its entry behind, stale (its
 * type or generation no longer match), and the entry is dropped when it
 * comes up.  So the ring holds every cached slot exactly once, and
 * returning the oldest first costs O(1) amortised.  Generations only grow
 * while the ring holds an entry, except through potad_place(), which may
 * give a slot an older one: it empties the ring first.
 */

#define QMAX_LIMIT 65536u
#define QCAP_LIMIT (1u << 20)

static inline bool ent_live(const struct potad_space *s, const struct qent *e)
{
	const struct desc *d = DESC(s, e->slot);

	return DESC_TYPE(d) == DESC_CACHED && DESC_GEN(d) == e->gen;
}

/* Take slot off the list of its length. */
static void unlink_slot(struct potad_space *s, uint32_t slot)
{
	struct desc *d = DESC(s, slot);
	uint32_t older = d->owner, newer = d->tag;

	if (newer != SLOT_NIL)
		DESC(s, newer)->owner = older;
	else if ((s->qhead[d->len] = older) == SLOT_NIL)
		s->qbits[d->len / 64] &= ~pow2(d->len % 64);
	if (older != SLOT_NIL)
		DESC(s, older)->tag = newer;
	s->qunits -= d->len;
	s->qextents--;
}

/* Return the cached extent in slot to the free lists: 0, or -ENOMEM with
 * it still cached.  Its ring entry goes stale. */
static int return_slot(struct potad_space *s, uint32_t slot)
{
	uint64_t a = desc_start(s, slot);
	int rc =
	    potad__reserve(s, potad__range_need(s, a, a + DESC(s, slot)->len));

	if (rc < 0)
		return rc;
	unlink_slot(s, slot);
	potad__release_slot(s, slot);
	return 0;
}

int potad__cache_return_range(struct potad_space *s, uint64_t a, uint64_t b)
{
	uint64_t key, max = potad__rtree_maxkey(&s->index);
	uint32_t slot;
	int rc;

	if (!s->qextents)
		return 0;
	/* The extent over a, then those that start in [a, b). */
	if (potad__rtree_prev(&s->index, &s->inodes, &s->vals, a - s->ub, &key,
			      &slot) &&
	    DESC_TYPE(DESC(s, slot)) == DESC_CACHED && desc_end(s, slot) > a) {
		rc = return_slot(s, slot);
		if (rc < 0)
			return rc;
	}
	for (key = a - s->ub; key <= max && s->qextents &&
			      potad__rtree_next(&s->index, &s->inodes, &s->vals,
						key, &key, &slot) &&
			      key < b - s->ub;
	     key++) {
		if (DESC_TYPE(DESC(s, slot)) != DESC_CACHED)
			continue;
		rc = return_slot(s, slot);
		if (rc < 0)
			return rc;
		if (key == max)
			break;
	}
	return 0;
}

/* Return the oldest cached extent to the free lists (dropping the stale
 * entries before it).  0; -ENOENT if the ring is empty; -ENOMEM, with the
 * extent still cached and its entry first. */
static int return_oldest(struct potad_space *s)
{
	while (s->qcount) {
		struct qent *e = &s->ring[s->qfirst];
		uint32_t slot = e->slot;
		bool live = ent_live(s, e);

		if (live) {
			int rc = return_slot(s, slot);

			if (rc < 0)
				return rc;
		}
		s->qfirst = s->qfirst + 1 == s->qcap ? 0 : s->qfirst + 1;
		s->qcount--;
		if (live)
			return 0;
	}
	return -ENOENT;
}

int potad_space_drain(struct potad_space *s)
{
	int rc;

	while ((rc = return_oldest(s)) == 0)
		;
	return rc == -ENOENT ? 0 : rc;
}

bool potad__cache_put(struct potad_space *s, uint32_t slot)
{
	struct desc *d = DESC(s, slot);
	uint64_t start, len = d->len;
	uint32_t gen;
	struct qent *e;

	if (len > s->qmax || (s->wide && DESCHI(s, slot)->len))
		return false;
	start = desc_start(s, slot);
	/* A power of two keeps the alignment a plain request gives it. */
	if (!(len & (len - 1)) && (start & (len - 1)))
		return false;
	if (s->npoison && potad__poison_overlaps(s, start, start + len))
		return false;
	while (s->qcount == s->qcap || s->qunits + len > s->qunits_max)
		if (return_oldest(s) < 0)
			return false;
	gen = (DESC_GEN(d) + 1) & GEN_MASK;
	d->word = DESC_CACHED << 28 | gen;
	d->owner = s->qhead[len];
	d->tag = SLOT_NIL;
	if (d->owner != SLOT_NIL)
		DESC(s, d->owner)->tag = slot;
	s->qhead[len] = slot;
	s->qbits[len / 64] |= pow2(len % 64);
	s->qunits += len;
	s->qextents++;
	e = &s->ring[s->qfirst + s->qcount < s->qcap
			 ? s->qfirst + s->qcount
			 : s->qfirst + s->qcount - s->qcap];
	e->slot = slot;
	e->gen = gen;
	s->qcount++;
	return true;
}

/* The shortest length in (len, top] whose list is not empty, or 0. */
static uint64_t next_length(const struct potad_space *s, uint64_t len,
			    uint64_t top)
{
	uint64_t l = len + 1, w;

	if (top > s->qmax)
		top = s->qmax;
	while (l <= top) {
		w = s->qbits[l / 64] & (~0ull << (l % 64));
		if (w) {
			l = l / 64 * 64 + ctz64(w);
			return l <= top ? l : 0;
		}
		l = l / 64 * 64 + 64;
	}
	return 0;
}

int potad__cache_take(struct potad_space *s, const struct potad_alloc_req *r,
		      struct potad_extent *out)
{
	uint64_t len = units_up(s, r->size);
	uint64_t a = r->align >> s->g, u, have;
	uint32_t slot;
	struct desc *d;

	if (len > s->qmax)
		return -ENOENT;
	have = len;
	if (r->flags & POTAD_ALLOC_WHOLE) {
		len = have = pow2(log2_ceil(len));
		if (a < len)
			a = len;
	} else if (s->qhead[len] == SLOT_NIL) {
		/* Next best: the shortest extent up to 1/32 longer, its
		 * tail given back to the free lists (W1 made the fewest
		 * instructions with 1/16 to 1/64; 1/8 and 1/4 cost more in
		 * tails than they saved).  A power of two keeps the
		 * alignment a plain request gives it. */
		have = next_length(s, len, len + len / 32);
		if (!have)
			return -ENOENT;
		if (!(len & (len - 1)) && a < len)
			a = len;
	}
	if (have > s->qmax || (slot = s->qhead[have]) == SLOT_NIL)
		return -ENOENT;
	/* Only the newest of its length is looked at: it must suit the
	 * request's alignment and range, or the free lists serve it. */
	d = DESC(s, slot);
	u = desc_start(s, slot);
	if ((a > 1 && (u & (a - 1))) || (r->min && (u << s->g) < r->min) ||
	    (r->max && ((u + len) << s->g) > r->max))
		return -ENOENT;
	if (have > len &&
	    potad__reserve(s, potad__range_need(s, u + len, u + have)) < 0)
		return -ENOENT;
	unlink_slot(s, slot);
	if (have > len) {
		desc_place(s, slot, u, len);
		s->used_units -= have - len;
		potad__free_range(s, u + len, u + have, false);
		if (s->run_bound != UINT64_MAX || s->clean_bound != UINT64_MAX)
			potad__runs_grew(s, u + len, u + have, true, true);
	}
	d->owner = r->owner;
	d->tag = r->tag;
	d->word = POTAD_TYPE_EXTENT << 28 | DESC_GEN(d);
	potad__desc_fill(s, slot, out);
	return 0;
}

int potad_space_set_cache(struct potad_space *s, uint64_t max_length,
			  uint32_t entries)
{
	uint64_t qmax = max_length >> s->g;
	uint32_t *heads = NULL;
	uint64_t *bits = NULL;
	struct qent *ring = NULL;
	int rc;

	uint64_t most = (s->ue - s->ub) / 64; /* units cached, at most */

	/* No more lists or entries than 1/64 of the units could use. */
	if (entries > QCAP_LIMIT)
		entries = QCAP_LIMIT;
	if (entries > most)
		entries = (uint32_t)most;
	if (qmax > QMAX_LIMIT)
		qmax = QMAX_LIMIT;
	if (qmax > most)
		qmax = most;
	if (qmax == 0 || entries == 0)
		qmax = entries = 0;
	/* Return everything first: the lists and the ring are remade. */
	rc = potad_space_drain(s);
	if (rc < 0)
		return rc;
	if (qmax) {
		heads = malloc((qmax + 1) * sizeof(*heads));
		ring = malloc((size_t)entries * sizeof(*ring));
		bits = calloc(qmax / 64 + 1, sizeof(*bits));
		if (!heads || !ring || !bits) {
			free(heads);
			free(ring);
			free(bits);
			return -ENOMEM;
		}
		for (uint64_t i = 0; i <= qmax; i++)
			heads[i] = SLOT_NIL;
	}
	potad__cache_fini(s);
	s->qmax = (uint32_t)qmax;
	s->qhead = heads;
	s->qbits = bits;
	s->ring = ring;
	s->qcap = entries;
	s->qunits_max = most;
	return 0;
}

void potad__cache_fini(struct potad_space *s)
{
	free(s->qhead);
	free(s->qbits);
	free(s->ring);
	s->qhead = NULL;
	s->qbits = NULL;
	s->ring = NULL;
	s->qmax = s->qcap = s->qfirst = s->qcount = 0;
	s->qunits = s->qextents = 0;
}
