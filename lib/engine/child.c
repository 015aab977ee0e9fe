/* SPDX-License-Identifier: MIT */
/* Child spaces carved from an extent of a parent, and space teardown. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * A child space (a reserve, a tenant's namespace) covers exactly one live
 * extent of its parent, like a vmem arena importing from its source.  The
 * hosting extent becomes POTAD_TYPE_CHILD and cannot be freed while the
 * child lives.  Poison flows down: the parent's poison code forwards any
 * range that reaches a hosting extent to the child.  When the child goes,
 * its poison flows back up into the parent before the extent is freed, so
 * bad units never return to a free list.  A child starts all clean, like
 * any new space, and its host goes back dirty if the child leaves data in
 * it.
 */

int potad_child_new(struct potad_space *parent, uint64_t handle,
		    unsigned granule_shift, struct potad_space **out)
{
	struct potad_space *c;
	struct desc *d;
	uint32_t slot;
	uint64_t base, size;
	int rc;

	if (!out)
		return -EINVAL;
	rc = potad__desc_find(parent, handle, &slot);
	if (rc < 0)
		return rc;
	d = DESC(parent, slot);
	if (DESC_TYPE(d) == POTAD_TYPE_CHILD)
		return -EBUSY;
	if (granule_shift < parent->g || granule_shift > POTAD_GRANULE_SHIFT_MAX)
		return -EINVAL;
	base = desc_start(parent, slot) << parent->g;
	size = desc_len(parent, slot) << parent->g;
	if (parent->nchildren == parent->capchildren) {
		uint32_t cap = parent->capchildren ? parent->capchildren * 2 : 4;
		struct potad_space **t =
			realloc(parent->children, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		parent->children = t;
		parent->capchildren = cap;
	}
	rc = potad_space_new(&c, base, size, granule_shift);
	if (rc < 0)
		return rc;
	/* The extent's poisoned units start poisoned in the child. */
	for (uint64_t i = 0; i < parent->npoison; i++) {
		uint64_t lo, hi;

		if (potad__to_child(parent, c, parent->poison[i].s,
				    parent->poison[i].e, &lo, &hi)) {
			rc = potad__poison_units(c, lo, hi, NULL, NULL);
			if (rc < 0) {
				potad_space_destroy(c);
				return rc;
			}
		}
	}
	c->parent = parent;
	c->parent_slot = slot;
	parent->children[parent->nchildren++] = c;
	d->word = (uint32_t)POTAD_TYPE_CHILD << 28 | DESC_GEN(d);
	*out = c;
	return 0;
}

struct potad_space *potad_child_of(const struct potad_space *parent,
				   uint64_t handle)
{
	uint32_t slot;

	if (potad__desc_find(parent, handle, &slot) < 0 ||
	    DESC_TYPE(DESC(parent, slot)) != POTAD_TYPE_CHILD)
		return NULL;
	return potad__child_at(parent, slot);
}

struct potad_space *potad_space_parent(const struct potad_space *s)
{
	return s->parent;
}

/* Hand the child's poison to its parent and free the hosting extent. */
static int detach(struct potad_space *c)
{
	struct potad_space *p = c->parent;
	struct desc *d = DESC(p, c->parent_slot);
	uint64_t handle;
	int rc;

	for (uint64_t i = 0; i < c->npoison; i++) {
		uint64_t a = (c->poison[i].s << c->g) >> p->g;
		uint64_t b = (c->poison[i].e << c->g) >> p->g;

		/* These units are held by the hosting extent, so adding them
		 * touches no free block; room is all that can fail. */
		rc = potad__poison_room(p, 1);
		if (rc < 0)
			return rc;
		potad__poison_add(p, a, b);
	}
	d->word = (uint32_t)POTAD_TYPE_EXTENT << 28 | DESC_GEN(d);
	handle = potad__desc_handle(p, c->parent_slot);
	/* Live extents may have written anything, and dirty free units hold
	 * what freed ones did; only a child with neither (cached extents
	 * are free and clean) hands back clean units. */
	rc = potad_free_ex(
	    p, handle,
	    c->dirty_units || c->extents > c->qextents ? POTAD_FREE_DIRTY : 0,
	    NULL);
	if (rc < 0) {
		d->word = (uint32_t)POTAD_TYPE_CHILD << 28 | DESC_GEN(d);
		return rc;
	}
	for (uint32_t i = 0; i < p->nchildren; i++) {
		if (p->children[i] == c) {
			p->children[i] = p->children[--p->nchildren];
			break;
		}
	}
	return 0;
}

int potad_space_destroy(struct potad_space *s)
{
	int rc;

	if (!s)
		return 0;
	if (s->nchildren)
		return -EBUSY;
	if (s->parent) {
		rc = detach(s);
		if (rc < 0)
			return rc;
	}
	potad__rpool_fini(&s->nodes);
	potad__extents_fini(s);
	potad__cache_fini(s);
	free(s->poison);
	free(s->children);
	free(s);
	return 0;
}
