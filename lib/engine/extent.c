/* SPDX-License-Identifier: MIT */
/* Descriptors: the slab, handles, and the address index over extents. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * A descriptor is 20 bytes in a slab indexed by slot (28 in a space of 2^32
 * units or more, whose high halves of start and length live in a second
 * slab of the same shape); a free slot links to the next free one through
 * its start field.  The handle a caller holds is
 * type . generation . slot: the slot finds the descriptor in O(1), the
 * generation (bumped on every free) refuses a stale handle, and the type
 * bits make a zero or random word unlikely to pass.  The index maps each
 * extent's first unit to its slot in a radix map, so "which extent covers
 * unit u" is one predecessor search.
 */

uint64_t potad__desc_handle(const struct potad_space *s, uint32_t slot)
{
	const struct desc *d = DESC(s, slot);

	return (uint64_t)DESC_TYPE(d) << 60 | (uint64_t)DESC_GEN(d) << 32 | slot;
}

int potad__slab_reserve(struct potad_space *s, uint64_t n)
{
	uint64_t want = n / SLAB_CHUNK + (n % SLAB_CHUNK != 0);
	uint32_t had = s->nslabs;

	if (want <= s->nslabs)
		return 0;
	if (want > SLAB_LIMIT)
		return -ENOMEM;
	if (want > s->capslabs) {
		uint64_t cap = s->capslabs ? s->capslabs : 1;
		struct desc **t;
		struct deschi **h;

		while (cap < want)
			cap *= 2;
		t = realloc(s->slab, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->slab = t;
		if (s->wide) {
			h = realloc(s->hislab, cap * sizeof(*h));
			if (!h)
				return -ENOMEM;
			s->hislab = h;
		}
		s->capslabs = (uint32_t)cap;
	}
	while (s->nslabs < want) {
		s->slab[s->nslabs] = malloc(SLAB_CHUNK * sizeof(struct desc));
		if (s->slab[s->nslabs] && s->wide) {
			s->hislab[s->nslabs] =
				malloc(SLAB_CHUNK * sizeof(struct deschi));
			if (!s->hislab[s->nslabs]) {
				free(s->slab[s->nslabs]);
				s->slab[s->nslabs] = NULL;
			}
		}
		if (!s->slab[s->nslabs]) {
			potad__slab_trim(s, had);
			return -ENOMEM;
		}
		s->nslabs++;
	}
	return 0;
}

void potad__slab_trim(struct potad_space *s, uint32_t n)
{
	while (s->nslabs > n) {
		free(s->slab[--s->nslabs]);
		if (s->wide)
			free(s->hislab[s->nslabs]);
	}
}

/* Thread every free slot onto the list again, lowest first, after
 * potad_place() took slots out of the middle of it or made new ones past
 * its end.  Linear in the slots, once per restore, instead of a linear
 * unlink per placed extent. */
static void slots_rebuild(struct potad_space *s)
{
	uint32_t head = SLOT_NIL;

	for (uint32_t i = s->nslots; i-- > 0;) {
		struct desc *d = DESC(s, i);

		if (DESC_TYPE(d) == 0) {
			d->start = head;
			head = i;
		}
	}
	s->freeslot = head;
	s->slots_dirty = false;
}

int potad__index_reserve(struct potad_space *s)
{
	int rc = potad__rpool_reserve(&s->inodes,
				      potad__rtree_insert_need(&s->index));

	if (rc == 0)
		rc = potad__rpool_reserve(&s->vals, INDEX_VAL_NEED);
	return rc;
}

int potad__extents_grow(struct potad_space *s)
{
	int rc;

	/* Whether a free slot exists is only known from a clean list. */
	if (s->slots_dirty)
		slots_rebuild(s);
	if (s->freeslot == SLOT_NIL) {
		rc = potad__slab_reserve(s, (uint64_t)s->nslots + 1);
		if (rc < 0)
			return rc;
	}
	return potad__index_reserve(s);
}

uint64_t potad__extents_bytes(const struct potad_space *s)
{
	uint64_t per = sizeof(struct desc), ptrs = sizeof(s->slab[0]);

	if (s->wide) {
		per += sizeof(struct deschi);
		ptrs += sizeof(s->hislab[0]);
	}
	return (uint64_t)s->nslabs * SLAB_CHUNK * per + s->capslabs * ptrs +
	       potad__rpool_bytes(&s->inodes) + potad__rpool_bytes(&s->vals);
}

void potad__extents_fini(struct potad_space *s)
{
	potad__slab_trim(s, 0);
	free(s->slab);
	free(s->hislab);
	potad__rpool_fini(&s->inodes);
	potad__rpool_fini(&s->vals);
}

void potad__desc_fill(const struct potad_space *s, uint32_t slot,
		      struct potad_extent *out)
{
	const struct desc *d = DESC(s, slot);
	uint64_t start = desc_start(s, slot), len = desc_len(s, slot);

	out->offset = start << s->g;
	out->length = len << s->g;
	out->handle = potad__desc_handle(s, slot);
	out->owner = d->owner;
	out->tag = d->tag;
	out->type = DESC_TYPE(d);
	out->flags = 0;
	if (s->npoison && potad__poison_overlaps(s, start, start + len))
		out->flags |= POTAD_EXTENT_POISONED;
}

/* Fill the free slot `slot` and index it. */
static void desc_set(struct potad_space *s, uint32_t slot, uint64_t start,
		     uint64_t len, uint32_t owner, uint32_t tag, uint32_t word)
{
	struct desc *d = DESC(s, slot);

	desc_place(s, slot, start, len);
	d->owner = owner;
	d->tag = tag;
	d->word = word;
	potad__rtree_insert(&s->index, &s->inodes, &s->vals, start - s->ub,
			    slot);
	s->used_units += len;
	s->extents++;
}

int potad__desc_new(struct potad_space *s, uint64_t start, uint64_t len,
		    uint32_t owner, uint32_t tag, unsigned type,
		    struct potad_extent *out)
{
	uint32_t slot;
	struct desc *d;

	/* potad__extents_reserve() has run and cleaned the list; this only
	 * keeps a caller that skipped it from taking a live slot. */
	if (s->slots_dirty)
		slots_rebuild(s);
	slot = s->freeslot;
	if (slot != SLOT_NIL) {
		d = DESC(s, slot);
		s->freeslot = d->start;
	} else {
		slot = s->nslots++;
		d = DESC(s, slot);
		d->word = s->genfloor;
	}
	desc_set(s, slot, start, len, owner, tag,
		 (uint32_t)type << 28 | DESC_GEN(d));
	if (out)
		potad__desc_fill(s, slot, out);
	return 0;
}

void potad__desc_put(struct potad_space *s, uint32_t slot, uint64_t start,
		     uint64_t len, uint32_t owner, uint32_t tag, uint32_t word)
{
	/* Only a slot appended right at the end leaves the list intact. */
	if (slot != s->nslots)
		s->slots_dirty = true;
	for (; s->nslots <= slot; s->nslots++)
		DESC(s, s->nslots)->word = s->genfloor;
	desc_set(s, slot, start, len, owner, tag, word);
}

void potad__desc_drop(struct potad_space *s, uint32_t slot)
{
	struct desc *d = DESC(s, slot);

	potad__rtree_remove(&s->index, &s->inodes, &s->vals,
			    desc_start(s, slot) - s->ub);
	s->used_units -= desc_len(s, slot);
	s->extents--;
	d->word = (DESC_GEN(d) + 1) & GEN_MASK;
	/* While the list is dirty this link is thrown away by the rebuild,
	 * which finds the slot free anyway. */
	d->start = s->freeslot;
	s->freeslot = slot;
}

int potad__desc_find(const struct potad_space *s, uint64_t handle,
		     uint32_t *slot)
{
	unsigned type = POTAD_HANDLE_TYPE(handle);
	uint32_t i = POTAD_HANDLE_SLOT(handle);
	const struct desc *d;

	/* The slot and generation decide; the type bits must only name a
	 * known type, since creating a child space changes an extent's type
	 * under a handle the caller already holds. */
	if (type != POTAD_TYPE_EXTENT && type != POTAD_TYPE_CHILD)
		return -EINVAL;
	/* A slot not made yet will start at the generation floor, so a
	 * lower generation names a slot of the space this one was restored
	 * from: stale, not malformed. */
	if (i >= s->nslots) {
		if (POTAD_HANDLE_GEN(handle) < s->genfloor &&
		    i / SLAB_CHUNK < SLAB_LIMIT)
			return -ESTALE;
		return -EINVAL;
	}
	d = DESC(s, i);
	if (DESC_TYPE(d) == 0 || DESC_TYPE(d) == DESC_CACHED ||
	    DESC_GEN(d) != POTAD_HANDLE_GEN(handle))
		return -ESTALE;
	*slot = i;
	return 0;
}

bool potad__desc_covering(const struct potad_space *s, uint64_t u,
			  uint32_t *slot)
{
	uint64_t key;
	uint32_t i;

	if (!potad__rtree_prev(&s->index, &s->inodes, &s->vals, u - s->ub, &key,
			       &i))
		return false;
	if (u - desc_start(s, i) >= desc_len(s, i) ||
	    DESC_TYPE(DESC(s, i)) == DESC_CACHED)
		return false;
	*slot = i;
	return true;
}

int potad_get(const struct potad_space *s, uint64_t handle,
	      struct potad_extent *out)
{
	uint32_t slot;
	int rc = potad__desc_find(s, handle, &slot);

	if (rc == 0 && out)
		potad__desc_fill(s, slot, out);
	return rc;
}

int potad_lookup(const struct potad_space *s, uint64_t offset,
		 struct potad_extent *out)
{
	uint64_t u = offset >> s->g;
	uint32_t slot;

	if (u < s->ub || u >= s->ue)
		return -ERANGE;
	if (!potad__desc_covering(s, u, &slot))
		return -ENOENT;
	if (out)
		potad__desc_fill(s, slot, out);
	return 0;
}

/* The index key of the first unit at or after byte offset that an extent
 * could start at; false when offset lies past the space. */
static bool first_key(const struct potad_space *s, uint64_t offset,
		      uint64_t *key)
{
	uint64_t u = units_up(s, offset);

	if ((offset >> s->g) >= s->ue)
		return false;
	*key = (u < s->ub ? s->ub : u) - s->ub;
	return true;
}

int potad_extent_next(const struct potad_space *s, uint64_t offset,
		      struct potad_extent *out)
{
	uint64_t key;
	uint32_t slot;

	if (!first_key(s, offset, &key))
		return -ENOENT;
	do {
		if (!potad__rtree_next(&s->index, &s->inodes, &s->vals, key,
				       &key, &slot))
			return -ENOENT;
		/* Past a cached extent: its key is below the maximum. */
		key++;
	} while (DESC_TYPE(DESC(s, slot)) == DESC_CACHED);
	if (out)
		potad__desc_fill(s, slot, out);
	return 0;
}

struct foreach_ctx {
	const struct potad_space *s;
	int owner_only;
	uint32_t owner;
	potad_extent_fn fn;
	void *arg;
};

static int foreach_one(uint64_t key, uint32_t slot, void *arg)
{
	const struct foreach_ctx *c = arg;
	struct potad_extent e;

	(void)key;
	if (DESC_TYPE(DESC(c->s, slot)) == DESC_CACHED ||
	    (c->owner_only && DESC(c->s, slot)->owner != c->owner))
		return 0;
	potad__desc_fill(c->s, slot, &e);
	return c->fn(&e, c->arg);
}

int potad_extent_foreach_from(const struct potad_space *s, uint64_t offset,
			      int owner_only, uint32_t owner,
			      potad_extent_fn fn, void *arg)
{
	struct foreach_ctx c = { s, owner_only, owner, fn, arg };
	uint64_t key;

	if (!first_key(s, offset, &key))
		return 0;
	return potad__rtree_walk(&s->index, &s->inodes, &s->vals, key,
				 foreach_one, &c);
}

int potad_extent_foreach(const struct potad_space *s, int owner_only,
			 uint32_t owner, potad_extent_fn fn, void *arg)
{
	return potad_extent_foreach_from(s, 0, owner_only, owner, fn, arg);
}
