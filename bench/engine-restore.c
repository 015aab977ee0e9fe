/* SPDX-License-Identifier: MIT */
/* The engine benchmark's R1 (restore), L1 (list) and I1 (index) workloads. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-bench.h"

/* A size of 4 KiB to 64 KiB, uniform in log2, from the pick stream. */
static uint64_t small_size(struct run *r)
{
	double u = (double)(next_pick(r, UINT64_MAX) >> 11) * 0x1p-53;
	uint64_t v = (uint64_t)ceil(exp2(12 + 4 * u));

	return (v + GRANULE - 1) & ~(GRANULE - 1);
}

/* What a journal's snapshot of a space holds. */
struct snapshot {
	uint32_t gen_max;
	uint64_t *ps, *pl;
	size_t np;
	struct potad_extent *e;
	size_t n, cap;
};

static int snap_extent(const struct potad_extent *e, void *arg)
{
	struct snapshot *sn = arg;

	if (sn->n == sn->cap)
		die("R1 restore: more extents than the %zu counted", sn->cap);
	sn->e[sn->n++] = *e;
	return 0;
}

static void snap_take(struct potad_space *s, struct snapshot *sn)
{
	struct potad_stats st;
	uint64_t off = 0, a, l;
	size_t cap = 0;

	potad_space_stats(s, &st);
	sn->gen_max = potad_space_gen_max(s);
	while (potad_poison_next(s, off, &a, &l) == 0) {
		if (sn->np == cap) {
			cap = cap ? 2 * cap : 64;
			sn->ps = realloc(sn->ps, cap * sizeof(*sn->ps));
			sn->pl = realloc(sn->pl, cap * sizeof(*sn->pl));
			if (!sn->ps || !sn->pl)
				die("out of memory (%zu poison ranges)", cap);
		}
		sn->ps[sn->np] = a;
		sn->pl[sn->np++] = l;
		off = a + l;
	}
	sn->cap = st.extents;
	sn->e = xcalloc(sn->cap ? sn->cap : 1, sizeof(*sn->e));
	potad_extent_foreach(s, 0, 0, snap_extent, sn);
}

static void snap_release(struct snapshot *sn)
{
	free(sn->ps);
	free(sn->pl);
	free(sn->e);
	memset(sn, 0, sizeof(*sn));
}

static int cmp_extent(const struct potad_extent *a,
		      const struct potad_extent *b)
{
	return a->offset != b->offset || a->length != b->length ||
	       a->handle != b->handle || a->owner != b->owner ||
	       a->tag != b->tag || a->type != b->type || a->flags != b->flags;
}

/* The rebuilt space must be the original: same counters and free lists,
 * and the same extents in the same order. */
static void restore_verify(struct run *r, struct potad_space *a,
			   const struct snapshot *sn)
{
	struct potad_stats x, y;
	struct snapshot again = {0};

	potad_space_stats(a, &x);
	potad_space_stats(r->s, &y);
	if (x.free_units != y.free_units || x.used_units != y.used_units ||
	    x.poison_units != y.poison_units || x.extents != y.extents ||
	    x.free_blocks != y.free_blocks ||
	    memcmp(x.free_per_order, y.free_per_order,
		   sizeof(x.free_per_order)))
		die("%s: run %d: the restored space's counters differ", r->wl,
		    r->runno);
	snap_take(r->s, &again);
	if (again.n != sn->n || again.np != sn->np ||
	    again.gen_max < sn->gen_max)
		die("%s: run %d: restored %zu extents and %zu poison ranges "
		    "of %zu and %zu",
		    r->wl, r->runno, again.n, again.np, sn->n, sn->np);
	for (size_t i = 0; i < sn->n; i++)
		if (cmp_extent(&again.e[i], &sn->e[i]))
			die("%s: run %d: restored extent %zu differs", r->wl,
			    r->runno, i);
	snap_release(&again);
}

/* n allocations of 4K-64K, then steps that each free a random one and
 * allocate another: R1's and L1's population. */
static void fill_small(struct run *r, struct liveset *l, uint64_t n,
		       uint64_t steps)
{
	struct potad_extent e;
	uint64_t i;

	for (i = 0; i < n; i++) {
		do_alloc(r, small_size(r), 0, 0, &e);
		live_push(l, &e);
	}
	for (i = 0; i < steps; i++) {
		live_free_random(r, l);
		do_alloc(r, small_size(r), 0, 0, &e);
		live_push(l, &e);
	}
}

static int count_one(const struct potad_extent *e, void *arg)
{
	(void)e;
	++*(uint64_t *)arg;
	return 0;
}

/* Listing: every extent in address order, by one in-order walk of the
 * index (potad_extent_foreach_from), and, for comparison, by a search per
 * extent (potad_extent_next). */
void wl_list(struct run *r, struct result *res, int quick)
{
	uint64_t n = 1000000 / (quick ? 10 : 1), seen = 0, off = 0, t0;
	struct liveset l = {0};
	struct potad_extent e;
	int rc;

	space_new(r, 0, 64 * GIB);
	set_phase(r, "setup");
	fill_small(r, &l, n, n / 10);
	live_release(&l);

	set_phase(r, "measure");
	clock_start(r);
	rc = potad_extent_foreach_from(r->s, 0, 0, 0, count_one, &seen);
	clock_stop(r);
	if (rc != 0 || seen != n)
		die("%s: run %d: the walk saw %llu of %llu extents", r->wl,
		    r->runno, (unsigned long long)seen, (unsigned long long)n);
	r->ops = seen;
	finish_measure(r, res);
	t0 = now_ns();
	for (seen = 0; potad_extent_next(r->s, off, &e) == 0; seen++)
		off = e.offset + 1;
	res->next_ns = (double)(now_ns() - t0) / (double)(seen ? seen : 1);
	if (seen != n)
		die("%s: run %d: potad_extent_next saw %llu of %llu extents",
		    r->wl, r->runno, (unsigned long long)seen,
		    (unsigned long long)n);
}

/* The extent index alone: W1's own index operations (the start of every
 * extent its setup allocates, then per step the start it frees and the
 * one it allocates, recorded from a W1 run through the engine), replayed
 * on a fresh radix map of the kind that indexes extents, with no
 * descriptors and no free space: the part of W1 that any free-space
 * design leaves to the index. */
void wl_index(struct run *r, struct result *res, int quick)
{
	const uint64_t live = 100000;
	uint64_t steps = 2000000 / (quick ? 10 : 1), i, *h, *len, *start, *rm,
		 *in;
	struct rpool nodes, vals;
	struct rtree t;

	h = xcalloc(live, sizeof(*h));
	len = xcalloc(live, sizeof(*len));
	start = xcalloc(live, sizeof(*start));
	rm = xcalloc(steps, sizeof(*rm));
	in = xcalloc(steps, sizeof(*in));
	space_new(r, 0, TIB);
	set_phase(r, "setup");
	w1_fill(r, live, h, len, start);
	potad__rpool_init(&nodes, sizeof(struct rnode));
	potad__rpool_init(&vals, sizeof(uint32_t));
	potad__rtree_init(&t, (TIB >> GRANULE_SHIFT) - 1, true);
	for (i = 0; i < live; i++)
		index_put(r, &t, &nodes, &vals, start[i], (uint32_t)i);
	for (i = 0; i < steps; i++)
		w1_step(r, live, h, len, start, &rm[i], &in[i]);

	set_phase(r, "measure");
	clock_start(r);
	for (i = 0; i < steps; i++) {
		if (!potad__rtree_remove(&t, &nodes, &vals, rm[i]))
			die("%s: key %#llx was not in the index", r->wl,
			    (unsigned long long)rm[i]);
		count_op(r);
		index_put(r, &t, &nodes, &vals, in[i], (uint32_t)i);
		count_op(r);
	}
	clock_stop(r);
	res->ops = r->ops;
	res->ns_per_op = (double)r->ns / (double)r->ops;
	res->extent_bytes =
	    potad__rpool_bytes(&nodes) + potad__rpool_bytes(&vals);
	res->extents = live;
	res->size = 1; /* util: the index holds no space */
	r->meta_peak = res->extent_bytes;
	if (!potad__rtree_verify(&t, &nodes, &vals))
		die("%s: the index is malformed", r->wl);
	potad__rtree_clear(&t, &nodes, &vals);
	potad__rpool_fini(&nodes);
	potad__rpool_fini(&vals);
	free(h);
	free(len);
	free(start);
	free(rm);
	free(in);
}

void wl_restore(struct run *r, struct result *res, int quick)
{
	const uint64_t size = 64 * GIB;
	uint64_t n = 1000000 / (quick ? 10 : 1), steps = n / 10, i;
	struct potad_space *a;
	struct snapshot sn = {0};
	struct liveset l = {0};
	struct potad_extent e;
	uint64_t used, t0;
	int rc;

	space_new(r, 0, size);
	set_phase(r, "setup");
	fill_small(r, &l, n, steps);
	for (i = 0; i < 64; i++) {
		rc = potad_poison(
		    r->s, next_pick(r, size >> GRANULE_SHIFT) << GRANULE_SHIFT,
		    GRANULE, NULL, NULL);
		if (rc < 0)
			engine_error(r, "potad_poison", rc);
	}
	live_release(&l);
	snap_take(r->s, &sn);
	a = r->s;
	r->s = NULL;
	used = r->used;

	set_phase(r, "measure");
	clock_start(r);
	rc = potad_space_new(&r->s, 0, size, GRANULE_SHIFT);
	if (rc < 0)
		engine_error(r, "potad_space_new", rc);
	potad_space_set_gen_floor(r->s, sn.gen_max);
	for (i = 0; i < sn.np; i++) {
		rc = potad_poison(r->s, sn.ps[i], sn.pl[i], NULL, NULL);
		if (rc < 0)
			engine_error(r, "potad_poison", rc);
	}
	for (i = 0; i < sn.n; i++) {
		rc = potad_place(r->s, &sn.e[i]);
		count_op(r);
		if (rc < 0)
			engine_error(r, "potad_place", rc);
	}
	clock_stop(r);
	res->total_ms = (double)r->ns / 1e6;
	r->used = used;
	finish_measure(r, res);

	restore_verify(r, a, &sn);
	snap_release(&sn);

	/* The first allocation after placing rebuilds the free-slot list. */
	t0 = now_ns();
	do_alloc(r, GRANULE, 0, 0, &e);
	res->first_alloc_ms = (double)(now_ns() - t0) / 1e6;
	do_free(r, e.handle, e.length);
	rc = potad_space_destroy(a);
	if (rc < 0)
		die("%s: potad_space_destroy: %s", r->wl, strerror(-rc));
}
