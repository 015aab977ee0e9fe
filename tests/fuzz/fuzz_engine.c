/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the input is a program of engine calls on a fresh
 * space, checked after every step against the engine's own checker and a
 * small model of which extents are live. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "potad/engine.h"

/*
 * The first bytes choose the geometry: a granule of 2^0..2^12 bytes, at
 * most 2^20 units, a base that is any multiple of the granule (blocks are
 * aligned in absolute units, so an odd base matters).  Then each step is
 * an opcode byte and its arguments, read until the input runs out; bytes
 * past the end read as zeros, so every input is a valid program.
 *
 * The model keeps, per space, the live extents (handle, offset, length,
 * whether they host a child) and a ring of handles that were freed.  The
 * engine must agree with it: live extents never overlap and are found by
 * lookup, a live handle frees (unless it hosts a child), a dead one is
 * refused, a new extent avoids poisoned units, and the counters match.
 * Any disagreement, or a failed potad_space_check(), traps: libFuzzer
 * saves the input, and replay-main.c replays it in `make check`.
 */

#define NSPACES 4  /* the top space and up to three child spaces */
#define NLIVE 128  /* extents the model follows per space */
#define NDEAD 16   /* freed handles remembered per space */
#define SLOTS 1024 /* slots potad_place() may name */

struct mext {
	uint64_t handle, off, len;
	int child; /* index of the space it hosts, or -1 */
};

struct mspace {
	struct potad_space *s;
	int parent; /* -1 for the top space */
	uint64_t base, size, granule;
	struct mext live[NLIVE];
	size_t n;
	uint64_t dead[NDEAD];
	size_t ndead;
};

struct input {
	const uint8_t *p;
	size_t left;
};

static struct mspace sp[NSPACES];

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz-engine: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                             \
			__builtin_trap();                                     \
		}                                                             \
	} while (0)

static uint64_t get(struct input *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v |= (uint64_t)(in->left ? *in->p : 0) << (8 * i);
		if (in->left) {
			in->p++;
			in->left--;
		}
	}
	return v;
}

/* A space index in use, chosen by the input, or -1. */
static int pick_space(struct input *in)
{
	int i = (int)(get(in, 1) % NSPACES);

	for (int k = 0; k < NSPACES; k++, i = (i + 1) % NSPACES)
		if (sp[i].s)
			return i;
	return -1;
}

/* An address in m's range (or just past it, now and then). */
static uint64_t pick_addr(struct input *in, const struct mspace *m)
{
	uint64_t units = m->size / m->granule;

	return m->base + get(in, 4) % (units + 2) * m->granule;
}

static uint64_t pick_len(struct input *in, const struct mspace *m)
{
	uint64_t units = m->size / m->granule;
	unsigned b = (unsigned)get(in, 1);

	/* Mostly small extents, sometimes up to the whole space. */
	if (b & 0x80)
		return (1 + get(in, 4) % units) * m->granule;
	return (1 + b % 16) * m->granule;
}

/* The engine tells handles apart by slot and generation only: a child
 * space changes its host's type bits under a handle the caller holds. */
#define SAME(a, b) ((((a) ^ (b)) & ~(0xfull << 60)) == 0)

static int find_live(const struct mspace *m, uint64_t handle)
{
	for (size_t i = 0; i < m->n; i++)
		if (SAME(m->live[i].handle, handle))
			return (int)i;
	return -1;
}

static int find_slot(const struct mspace *m, uint32_t slot)
{
	for (size_t i = 0; i < m->n; i++)
		if (POTAD_HANDLE_SLOT(m->live[i].handle) == slot)
			return (int)i;
	return -1;
}

/* The live extent that covers addr, or -1. */
static int covering(const struct mspace *m, uint64_t addr)
{
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->live[i].off &&
		    addr - m->live[i].off < m->live[i].len)
			return (int)i;
	return -1;
}

static bool overlaps_live(const struct mspace *m, uint64_t off, uint64_t len)
{
	for (size_t i = 0; i < m->n; i++)
		if (off < m->live[i].off + m->live[i].len &&
		    m->live[i].off < off + len)
			return true;
	return false;
}

static void forget_dead(struct mspace *m, uint64_t handle)
{
	for (size_t i = 0; i < m->ndead && i < NDEAD; i++)
		if (SAME(m->dead[i], handle))
			m->dead[i] = 0;
}

/* A new extent e in space i: check it against the model, then add it. */
static void add_live(int i, const struct potad_extent *e)
{
	struct mspace *m = &sp[i];
	struct potad_extent got;

	CHECK(e->length && e->length % m->granule == 0);
	CHECK(e->offset >= m->base && e->offset - m->base <= m->size &&
	      e->length <= m->base + m->size - e->offset);
	CHECK(!overlaps_live(m, e->offset, e->length));
	CHECK(find_live(m, e->handle) < 0);
	CHECK(potad_lookup(m->s, e->offset + e->length - 1, &got) == 0 &&
	      got.handle == e->handle && got.offset == e->offset);
	forget_dead(m, e->handle);
	if (m->n == NLIVE) {
		/* The model is full: let the engine free it straight away. */
		CHECK(potad_free(m->s, e->handle, NULL) == 0);
		return;
	}
	m->live[m->n++] = (struct mext){e->handle, e->offset, e->length, -1};
}

static void drop_live(int i, size_t k)
{
	struct mspace *m = &sp[i];

	m->dead[m->ndead++ % NDEAD] = m->live[k].handle;
	if (m->ndead == 2 * NDEAD)
		m->ndead = NDEAD;
	m->live[k] = m->live[--m->n];
}

static void op_alloc(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	struct potad_alloc_req rq = {0};
	struct potad_extent e;
	unsigned how = (unsigned)get(in, 1);
	uint64_t need;
	bool fixed;
	int rc;

	rq.size = pick_len(in, m) - get(in, 1) % m->granule;
	rq.flags = (unsigned)get(in, 1);
	rq.flags &= rq.flags & 0x80 ? 0x1f : 0xf; /* rarely an unknown flag */
	if (how & 1)
		rq.align = 1ull << get(in, 1) % 40;
	if (how & 2) {
		rq.min = pick_addr(in, m);
		rq.max = rq.min + pick_len(in, m) * 4;
	}
	rq.at = pick_addr(in, m);
	rq.owner = how >> 4;
	rc = potad_alloc(m->s, &rq, &e);
	if (rc < 0) {
		CHECK(rc == -EINVAL || rc == -E2BIG || rc == -ERANGE ||
		      rc == -EBUSY || rc == -ENOSPC);
		return;
	}
	need = (rq.size + m->granule - 1) / m->granule * m->granule;
	fixed = rq.flags & POTAD_ALLOC_FIXED;
	CHECK(e.length >= need);
	CHECK(!(rq.flags & POTAD_ALLOC_FIXED) || e.offset == rq.at);
	CHECK(!rq.align || e.offset % rq.align == 0);
	/* A fixed request names its address; the range bounds a search. */
	CHECK(fixed || !rq.min || e.offset >= rq.min);
	CHECK(fixed || !rq.max || e.offset + e.length <= rq.max);
	CHECK(potad_is_poisoned(m->s, e.offset, e.length) == 0);
	CHECK(e.type == POTAD_TYPE_EXTENT && e.owner == rq.owner);
	add_live(i, &e);
}

static void op_claim(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	uint64_t off = pick_addr(in, m), len = pick_len(in, m);
	struct potad_extent e;
	int rc = potad_claim(m->s, off, len, 7, 0, &e);

	if (rc < 0) {
		CHECK(rc == -ERANGE || rc == -EBUSY || rc == -E2BIG);
		return;
	}
	CHECK(e.offset == off && e.length == len);
	add_live(i, &e);
}

static void op_free(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	size_t k = get(in, 1) % (m->n + 1);
	unsigned flags = (unsigned)get(in, 1) & 3;
	struct potad_extent e;
	uint64_t h;
	int rc;

	if (k == m->n) {
		/* A handle freed before, unless something took it again. */
		if (!m->ndead)
			return;
		h = m->dead[get(in, 1) % (m->ndead < NDEAD ? m->ndead : NDEAD)];
		if (!h || find_live(m, h) >= 0)
			return;
		rc = potad_free_ex(m->s, h, flags & 1, NULL);
		CHECK(rc == -ESTALE || rc == -EINVAL);
		return;
	}
	h = m->live[k].handle;
	rc = potad_free_ex(m->s, h, flags, &e);
	if (flags & 2) {
		CHECK(rc == -EINVAL); /* an unknown flag */
		return;
	}
	if (m->live[k].child >= 0) {
		CHECK(rc == -EBUSY);
		return;
	}
	CHECK(rc == 0 && e.handle == h && e.offset == m->live[k].off &&
	      e.length == m->live[k].len);
	drop_live(i, k);
	CHECK(potad_get(m->s, h, &e) == -ESTALE);
}

/* Keep a head of a live extent and free its tail. */
static void op_shrink(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	size_t k;
	uint64_t units, keep;
	unsigned flags = (unsigned)get(in, 1) & 1;
	struct potad_extent e;
	int rc;

	if (!m->n)
		return;
	k = get(in, 1) % m->n;
	units = m->live[k].len / m->granule;
	keep = 1 + get(in, 3) % units; /* units itself: nothing to free */
	rc = potad_shrink(m->s, m->live[k].handle, keep * m->granule, flags,
			  &e);
	if (m->live[k].child >= 0) {
		CHECK(rc == -EBUSY);
		return;
	}
	if (keep == units) {
		CHECK(rc == -EINVAL);
		return;
	}
	CHECK(rc == 0 && e.handle == m->live[k].handle &&
	      e.offset == m->live[k].off && e.length == keep * m->granule);
	m->live[k].len = e.length;
}

static void op_lookup(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	uint64_t a = pick_addr(in, m) + get(in, 1) % m->granule;
	struct potad_extent e;
	int k = covering(m, a), rc = potad_lookup(m->s, a, &e);

	if (a - m->base >= m->size) {
		CHECK(rc == -ERANGE);
	} else if (k < 0) {
		CHECK(rc == -ENOENT);
	} else {
		CHECK(rc == 0 && e.handle == m->live[k].handle &&
		      e.offset == m->live[k].off &&
		      e.length == m->live[k].len);
		CHECK(potad_get(m->s, e.handle, &e) == 0);
	}
}

static void op_poison(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	uint64_t off = pick_addr(in, m), len = (1 + get(in, 1) % 4) * m->granule;
	int hit = 0, rc;

	for (size_t k = 0; k < m->n; k++)
		hit += m->live[k].child < 0 && off < m->live[k].off +
		       m->live[k].len && m->live[k].off < off + len;
	rc = potad_poison(m->s, off, len, NULL, NULL);
	if (rc < 0) {
		CHECK(rc == -ERANGE || rc == -EINVAL);
		return;
	}
	CHECK(rc >= hit);
	CHECK(potad_is_poisoned(m->s, off, len) == 1);
}

static void op_child_new(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	size_t k;
	int c = -1, rc;
	unsigned g;
	struct potad_space *cs;

	for (int j = 0; j < NSPACES; j++)
		if (!sp[j].s)
			c = j;
	if (c < 0 || !m->n)
		return;
	k = get(in, 1) % m->n;
	g = (unsigned)__builtin_ctzll(m->granule) + (unsigned)get(in, 1) % 3;
	rc = potad_child_new(m->s, m->live[k].handle, g, &cs);
	if (m->live[k].child >= 0) {
		CHECK(rc == -EBUSY);
		return;
	}
	if (rc < 0) {
		/* Only a base or size off the child's granule is refused. */
		CHECK(rc == -EINVAL && g > (unsigned)__builtin_ctzll(m->granule));
		return;
	}
	memset(&sp[c], 0, sizeof(sp[c]));
	sp[c].s = cs;
	sp[c].parent = i;
	sp[c].granule = 1ull << g;
	sp[c].base = m->live[k].off;
	sp[c].size = m->live[k].len / sp[c].granule * sp[c].granule;
	m->live[k].child = c;
	m->live[k].handle = (m->live[k].handle & ~(0xfull << 60)) |
			    (uint64_t)POTAD_TYPE_CHILD << 60;
	CHECK(potad_child_of(m->s, m->live[k].handle) == cs);
	CHECK(potad_space_parent(cs) == m->s);
}

static void op_destroy(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	struct mspace *p;
	int rc;

	if (m->parent < 0)
		return;
	rc = potad_space_destroy(m->s);
	for (int j = 0; j < NSPACES; j++) {
		if (sp[j].s && sp[j].parent == i) {
			CHECK(rc == -EBUSY);
			return;
		}
	}
	CHECK(rc == 0);
	p = &sp[m->parent];
	for (size_t k = 0; k < p->n; k++)
		if (p->live[k].child == i) {
			drop_live(m->parent, k);
			break;
		}
	memset(m, 0, sizeof(*m));
}

static void op_place(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	struct potad_extent e = {0};
	uint32_t slot = (uint32_t)(get(in, 2) % SLOTS);
	uint32_t gen = (uint32_t)get(in, 1);
	int rc;

	e.handle = (uint64_t)POTAD_TYPE_EXTENT << 60 | (uint64_t)gen << 32 | slot;
	e.offset = pick_addr(in, m);
	e.length = pick_len(in, m);
	e.owner = 3;
	rc = potad_place(m->s, &e);
	if (rc < 0) {
		CHECK(rc == -ERANGE || rc == -EEXIST || rc == -EBUSY);
		CHECK(rc == -ERANGE || rc == -EEXIST ||
		      find_slot(m, slot) < 0);
		CHECK(rc != -EBUSY || overlaps_live(m, e.offset, e.length) ||
		      potad_is_poisoned(m->s, e.offset, e.length) == 1);
		return;
	}
	CHECK(find_slot(m, slot) < 0);
	e.type = POTAD_TYPE_EXTENT;
	add_live(i, &e);
}

static void op_clean(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	uint64_t off = pick_addr(in, m), len = pick_len(in, m), s, l;
	int rc = potad_set_clean(m->s, off, len, (int)(get(in, 1) & 1));

	CHECK(rc == 0 || rc == -ERANGE);
	rc = potad_dirty_next(m->s, off, &s, &l);
	CHECK(rc == -ENOENT || (rc == 0 && l && !overlaps_live(m, s, l)));
}

/* The reuse cache: new limits (0 turns it off), or a drain.  Neither
 * changes what the model sees. */
static void op_cache(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	uint64_t how = get(in, 1), units = get(in, 1) % 65;
	uint32_t entries = (uint32_t)(get(in, 1) % 65);

	if (how & 1)
		CHECK(potad_space_drain(m->s) == 0);
	else
		CHECK(potad_space_set_cache(m->s, units * m->granule,
					    entries) == 0);
}

/* The counters, the iterators and the model agree. */
static int count_fn(const struct potad_extent *e, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

static void op_walk(struct input *in, int i)
{
	struct mspace *m = &sp[i];
	struct potad_stats st;
	struct potad_extent e;
	uint64_t off = 0, run;
	size_t n = 0, seen = 0;
	double score;

	potad_space_stats(m->s, &st);
	CHECK(st.extents == m->n);
	CHECK(st.free_units + st.used_units <= st.units);
	potad_extent_foreach(m->s, 0, 0, count_fn, &n);
	CHECK(n == m->n);
	while (potad_extent_next(m->s, off, &e) == 0) {
		int k = find_live(m, e.handle);

		CHECK(k >= 0 && m->live[k].off == e.offset);
		off = e.offset + 1;
		seen++;
	}
	CHECK(seen == m->n);
	if (get(in, 1) & 1) {
		potad_space_frag(m->s, &run, &score);
		CHECK(run <= st.free_units * st.granule);
		CHECK(score >= 0.0 && score <= 1.0);
	}
}

static void check_all(void)
{
	char msg[256];

	for (int i = 0; i < NSPACES; i++) {
		if (!sp[i].s)
			continue;
		if (potad_space_check(sp[i].s, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "fuzz-engine: space %d: %s\n", i, msg);
			__builtin_trap();
		}
	}
}

/* Children before parents, so each destroy succeeds. */
static void teardown(void)
{
	bool left = true;

	while (left) {
		left = false;
		for (int i = NSPACES; i-- > 0;) {
			bool parent = false;

			if (!sp[i].s)
				continue;
			for (int j = 0; j < NSPACES; j++)
				parent |= sp[j].s && sp[j].parent == i && j != i;
			if (parent) {
				left = true;
				continue;
			}
			CHECK(potad_space_destroy(sp[i].s) == 0);
			sp[i].s = NULL;
		}
	}
	memset(sp, 0, sizeof(sp));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	unsigned g = (unsigned)get(&in, 1) % 13;
	uint64_t units = 1 + get(&in, 3) % (1u << 20);
	uint64_t base = (get(&in, 3) % (1u << 20)) << g;
	unsigned steps = 0;
	int i;

	memset(sp, 0, sizeof(sp));
	if (potad_space_new(&sp[0].s, base, units << g, g) < 0)
		__builtin_trap();
	sp[0].parent = -1;
	sp[0].base = base;
	sp[0].size = units << g;
	sp[0].granule = 1ull << g;
	while (in.left && steps++ < 4096) {
		unsigned op = (unsigned)get(&in, 1);

		i = pick_space(&in);
		switch (op % 14) {
		case 0:
		case 1:
			op_alloc(&in, i);
			break;
		case 2:
			op_free(&in, i);
			break;
		case 3:
			op_lookup(&in, i);
			break;
		case 4:
			op_claim(&in, i);
			break;
		case 5:
			op_poison(&in, i);
			break;
		case 6:
			op_child_new(&in, i);
			break;
		case 7:
			op_destroy(&in, i);
			break;
		case 8:
			op_place(&in, i);
			break;
		case 9:
			op_clean(&in, i);
			break;
		case 10:
			op_walk(&in, i);
			break;
		case 11:
			potad_space_set_gen_floor(sp[i].s, (uint32_t)get(&in, 1));
			break;
		case 12:
			op_shrink(&in, i);
			break;
		case 13:
			op_cache(&in, i);
			break;
		}
		check_all();
	}
	for (i = 0; i < NSPACES; i++)
		if (sp[i].s)
			op_walk(&in, i);
	teardown();
	return 0;
}
