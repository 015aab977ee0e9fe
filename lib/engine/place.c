/* SPDX-License-Identifier: MIT */
/* Journal replay: putting extents back where, and under the handles, a
 * journal recorded them. */
#include <errno.h>

#include "internal.h"

/*
 * A restore rebuilds a space from a snapshot (its poison, then its extents)
 * and replays the allocations logged after it.  Clients hold handles
 * across the restart, so each extent must come back in its own slot with
 * its own generation, and no handle that was stale before may become live.
 *
 * Placing an extent is a fixed claim with a given slot.  Overlap with
 * extents is one predecessor search in the index: the last extent that
 * starts before the range's end is the only one that can reach into it.
 * Every other unit of the range is then free or poisoned, since free
 * blocks, extents and poison tile the space; the free ones come out of the
 * free lists as an allocation would take them, so the buddy invariants
 * hold and the free set ends up as if the extent had been allocated.
 *
 * Slots are the other half.  The slot named by the handle may lie past the
 * end of the slab, which then grows; the slots made on the way start free
 * at the space's generation floor.  Unlinking a given slot from the
 * singly linked free-slot list would cost a walk per extent, so placing
 * only marks the list dirty and the next allocation rebuilds it in one
 * pass.  The floor is what keeps stale handles stale: the snapshot stores
 * potad_space_gen_max(), and any stale handle a client can hold carries a
 * lower generation than that.
 */

int potad_place(struct potad_space *s, const struct potad_extent *e)
{
	uint64_t a, b, key, prev_end;
	uint32_t slot, other, had, word;
	bool poisoned;
	int rc;

	if (!e || POTAD_HANDLE_TYPE(e->handle) != POTAD_TYPE_EXTENT)
		return -EINVAL;
	slot = POTAD_HANDLE_SLOT(e->handle);
	if (slot / SLAB_CHUNK >= SLAB_LIMIT)
		return -EINVAL;
	if (e->length == 0 || ((e->offset | e->length) & (pow2(s->g) - 1)))
		return -EINVAL;
	a = e->offset >> s->g;
	if (a < s->ub || a >= s->ue || (e->length >> s->g) > s->ue - a)
		return -ERANGE;
	b = a + (e->length >> s->g);
	/* Cached extents are free: their slots and units may be named.  The
	 * whole ring goes, stale entries too: a slot placed with an older
	 * generation would bring one back to life (cache.c). */
	rc = potad_space_drain(s);
	if (rc < 0)
		return rc;
	if (slot < s->nslots && DESC_TYPE(DESC(s, slot)) != 0)
		return -EEXIST;
	prev_end = s->ub;
	if (potad__rtree_prev(&s->index, &s->inodes, &s->vals, b - 1 - s->ub,
			      &key, &other)) {
		prev_end = desc_end(s, other);
		if (prev_end > a)
			return -EBUSY;
	}

	/* Reserve everything, the slab last since it can give its chunks
	 * back, then take the free units: that step fails, if at all,
	 * before it changes anything, and nothing after it can fail. */
	rc = potad__index_reserve(s);
	if (rc < 0)
		return rc;
	poisoned = s->npoison && potad__poison_overlaps(s, a, b);
	if (poisoned) {
		rc = potad__reserve(s, potad__take_unpoisoned_need(s, a, b));
		if (rc < 0)
			return rc;
	}
	had = s->nslabs;
	rc = potad__slab_reserve(s, (uint64_t)slot + 1);
	if (rc < 0)
		return rc;
	if (poisoned) {
		potad__take_unpoisoned(s, a, b);
	} else {
		rc = potad__take_free(s, a, b, prev_end);
		if (rc < 0) {
			potad__slab_trim(s, had);
			return rc;
		}
	}
	word = (uint32_t)POTAD_TYPE_EXTENT << 28 | POTAD_HANDLE_GEN(e->handle);
	potad__desc_put(s, slot, a, b - a, e->owner, e->tag, word);
	return 0;
}

uint32_t potad_space_gen_max(const struct potad_space *s)
{
	/* Slots not made yet will start at the floor, so it counts too: a
	 * space restored with a floor hands the floor on to its own next
	 * snapshot even where it never made the slots that needed it. */
	uint32_t max = s->genfloor;

	for (uint32_t c = 0; (uint64_t)c * SLAB_CHUNK < s->nslots; c++) {
		const struct desc *d = s->slab[c];
		uint32_t n = s->nslots - c * SLAB_CHUNK;

		if (n > SLAB_CHUNK)
			n = SLAB_CHUNK;
		for (uint32_t i = 0; i < n; i++)
			if (DESC_GEN(&d[i]) > max)
				max = DESC_GEN(&d[i]);
	}
	return max;
}

void potad_space_set_gen_floor(struct potad_space *s, uint32_t gen)
{
	s->genfloor = gen & GEN_MASK;
}
