/* SPDX-License-Identifier: MIT */
/* Check unit tests for every operation and refusal of the POTAD engine. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <potad/engine.h>

/* The checker tests corrupt a space through the engine's internals. */
#include "engine/internal.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)
#define P2(k) (UINT64_C(1) << (k))

/* Error names make a failed assertion readable without errno tables. */
static const char *ename(int rc)
{
	switch (rc) {
	case 0:
		return "0";
	case -EINVAL:
		return "-EINVAL";
	case -E2BIG:
		return "-E2BIG";
	case -ERANGE:
		return "-ERANGE";
	case -EBUSY:
		return "-EBUSY";
	case -ENOSPC:
		return "-ENOSPC";
	case -ENOMEM:
		return "-ENOMEM";
	case -ESTALE:
		return "-ESTALE";
	case -ENOENT:
		return "-ENOENT";
	case -EUCLEAN:
		return "-EUCLEAN";
	}
	return rc > 0 ? "positive" : "unexpected errno";
}

/* Every assertion prints the expression, the expected and the actual
 * value, so a failure in a loop can be read without a debugger. */
#define ASSERT_RC(expr, want)                                                  \
	do {                                                                   \
		int rc_ = (expr);                                              \
		int want_ = (want);                                            \
		ck_assert_msg(rc_ == want_,                                    \
			      "%s: expected %d (%s), got %d (%s)", #expr,      \
			      want_, ename(want_), rc_, ename(rc_));           \
	} while (0)

#define ASSERT_U64(actual, expected)                                           \
	do {                                                                   \
		uint64_t a_ = (actual);                                        \
		uint64_t e_ = (expected);                                      \
		ck_assert_msg(a_ == e_,                                        \
			      "%s: expected %" PRIu64 " (%#" PRIx64            \
			      "), got %" PRIu64 " (%#" PRIx64 ")",             \
			      #actual, e_, e_, a_, a_);                        \
	} while (0)

#define CHECK_OK(s) check_ok_at((s), __FILE__, __LINE__)

static void check_ok_at(const struct potad_space *s, const char *file, int line)
{
	char msg[512] = "";
	int rc = potad_space_check(s, msg, sizeof(msg));

	ck_assert_msg(rc == 0,
		      "%s:%d: potad_space_check: expected 0, got %d (%s): %s",
		      file, line, rc, ename(rc), msg);
}

static struct potad_space *mk(uint64_t base, uint64_t size, unsigned g)
{
	struct potad_space *s = NULL;
	int rc = potad_space_new(&s, base, size, g);

	ck_assert_msg(rc == 0,
		      "potad_space_new(%#" PRIx64 ", %#" PRIx64
		      ", %u): expected 0, got %d (%s)",
		      base, size, g, rc, ename(rc));
	ck_assert_ptr_nonnull(s);
	CHECK_OK(s);
	return s;
}

static void destroy(struct potad_space *s)
{
	ASSERT_RC(potad_space_destroy(s), 0);
}

static struct potad_stats stats(const struct potad_space *s)
{
	struct potad_stats st;

	memset(&st, 0xa5, sizeof(st));
	potad_space_stats(s, &st);
	return st;
}

#define SAME(f)                                                                \
	ck_assert_msg(a->f == b->f,                                            \
		      "%s: stats." #f " changed: before %" PRIu64              \
		      ", after %" PRIu64,                                      \
		      what, (uint64_t)a->f, (uint64_t)b->f)

/* A refused call must leave the space exactly as it was. */
static void stats_same(const struct potad_stats *a, const struct potad_stats *b,
		       const char *what)
{
	SAME(base);
	SAME(size);
	SAME(granule);
	SAME(units);
	SAME(free_units);
	SAME(used_units);
	SAME(poison_units);
	SAME(extents);
	SAME(free_blocks);
	SAME(largest_free_block);
	SAME(meta_bytes);
	SAME(extent_bytes);
	SAME(max_order);
	SAME(children);
	SAME(dirty_units);
	SAME(dirty_blocks);
	for (unsigned k = 0; k < POTAD_ORDERS; k++)
		ck_assert_msg(a->free_per_order[k] == b->free_per_order[k],
			      "%s: stats.free_per_order[%u] changed: before "
			      "%" PRIu64 ", after %" PRIu64,
			      what, k, a->free_per_order[k],
			      b->free_per_order[k]);
}

static struct potad_alloc_req req_of(uint64_t size, uint64_t align,
				     unsigned flags)
{
	struct potad_alloc_req r;

	memset(&r, 0, sizeof(r));
	r.size = size;
	r.align = align;
	r.flags = flags;
	return r;
}

/* Check what every successful allocation must satisfy, whatever the
 * placement policy chose. */
static void extent_sane(const struct potad_space *s,
			const struct potad_alloc_req *r,
			const struct potad_extent *e)
{
	struct potad_stats st = stats(s);
	uint64_t g = st.granule;
	uint64_t want_len = (r->size + g - 1) / g * g;
	uint64_t align = r->align > g ? r->align : g;
	uint64_t lo = r->min ? r->min : st.base;
	uint64_t hi = r->max ? r->max : st.base + st.size;

	if (r->flags & POTAD_ALLOC_WHOLE) {
		uint64_t u = want_len / g, p = 1;

		while (p < u)
			p <<= 1;
		want_len = p * g;
		if (want_len > align)
			align = want_len;
	}
	ck_assert_msg(e->length == want_len,
		      "size %#" PRIx64 " flags %#x: length expected %#" PRIx64
		      ", got %#" PRIx64,
		      r->size, r->flags, want_len, e->length);
	ck_assert_msg(e->offset % align == 0,
		      "offset %#" PRIx64 " is not a multiple of %#" PRIx64,
		      e->offset, align);
	ck_assert_msg(e->offset >= lo && e->offset - lo <= hi - lo &&
			  e->length <= hi - e->offset,
		      "extent [%#" PRIx64 " +%#" PRIx64 ") outside [%#" PRIx64
		      ", %#" PRIx64 ")",
		      e->offset, e->length, lo, hi);
	ck_assert_uint_eq(e->type, POTAD_TYPE_EXTENT);
	ck_assert_uint_eq(POTAD_HANDLE_TYPE(e->handle), POTAD_TYPE_EXTENT);
	ck_assert_uint_eq(e->owner, r->owner);
	ck_assert_uint_eq(e->tag, r->tag);
	if (r->flags & POTAD_ALLOC_FIXED)
		ASSERT_U64(e->offset, r->at);
}

/* Allocate and demand success. */
static struct potad_extent must(struct potad_space *s,
				const struct potad_alloc_req *r)
{
	struct potad_extent e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = potad_alloc(s, r, &e);
	ck_assert_msg(rc == 0,
		      "potad_alloc(size %#" PRIx64 ", align %#" PRIx64
		      ", min %#" PRIx64 ", max %#" PRIx64 ", at %#" PRIx64
		      ", flags %#x): expected 0, got %d (%s)",
		      r->size, r->align, r->min, r->max, r->at, r->flags, rc,
		      ename(rc));
	extent_sane(s, r, &e);
	CHECK_OK(s);
	return e;
}

static struct potad_extent must_alloc(struct potad_space *s, uint64_t size,
				      uint64_t align, unsigned flags)
{
	struct potad_alloc_req r = req_of(size, align, flags);

	return must(s, &r);
}

static struct potad_extent must_claim(struct potad_space *s, uint64_t at,
				      uint64_t len)
{
	struct potad_extent e;
	int rc = potad_claim(s, at, len, 0, 0, &e);

	ck_assert_msg(rc == 0,
		      "potad_claim(%#" PRIx64 ", %#" PRIx64
		      "): expected 0, got %d (%s)",
		      at, len, rc, ename(rc));
	ASSERT_U64(e.offset, at);
	ASSERT_U64(e.length, len);
	CHECK_OK(s);
	return e;
}

static void must_free(struct potad_space *s, uint64_t handle)
{
	ASSERT_RC(potad_free(s, handle, NULL), 0);
	CHECK_OK(s);
}

/* A refused allocation: the wanted error, and nothing changed. */
static void refuse(struct potad_space *s, const struct potad_alloc_req *r,
		   int want, const char *what)
{
	struct potad_stats a = stats(s), b;
	struct potad_extent e;
	int rc = potad_alloc(s, r, &e);

	ck_assert_msg(rc == want,
		      "%s: potad_alloc expected %d (%s), got %d (%s)", what,
		      want, ename(want), rc, ename(rc));
	b = stats(s);
	stats_same(&a, &b, what);
	CHECK_OK(s);
}

/* Free space as runs of absolute unit numbers [lo, hi). */
struct run {
	uint64_t lo, hi;
};

static unsigned floor_log2(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

/* The largest aligned block that starts at p and fits in len units: fully
 * merged free space decomposes like this and in no other way. */
static unsigned order_at(uint64_t p, uint64_t len)
{
	unsigned a = p ? (unsigned)__builtin_ctzll(p) : 63;
	unsigned b = floor_log2(len);

	return a < b ? a : b;
}

static void expect_free_at(const struct potad_space *s, const struct run *runs,
			   size_t n, const char *file, int line)
{
	uint64_t per[POTAD_ORDERS] = {0};
	uint64_t units = 0, blocks = 0, largest = 0;
	struct potad_stats st = stats(s);
	unsigned g = (unsigned)__builtin_ctzll(st.granule);

	for (size_t i = 0; i < n; i++) {
		uint64_t p = runs[i].lo;

		while (p < runs[i].hi) {
			unsigned k = order_at(p, runs[i].hi - p);

			per[k]++;
			blocks++;
			units += P2(k);
			if ((P2(k) << g) > largest)
				largest = P2(k) << g;
			p += P2(k);
		}
	}
	ck_assert_msg(st.free_units == units,
		      "%s:%d: free_units expected %" PRIu64 ", got %" PRIu64,
		      file, line, units, st.free_units);
	ck_assert_msg(st.free_blocks == blocks,
		      "%s:%d: free_blocks expected %" PRIu64 ", got %" PRIu64,
		      file, line, blocks, st.free_blocks);
	ck_assert_msg(st.largest_free_block == largest,
		      "%s:%d: largest_free_block expected %#" PRIx64
		      ", got %#" PRIx64,
		      file, line, largest, st.largest_free_block);
	for (unsigned k = 0; k < POTAD_ORDERS; k++)
		ck_assert_msg(st.free_per_order[k] == per[k],
			      "%s:%d: free_per_order[%u] expected %" PRIu64
			      ", got %" PRIu64,
			      file, line, k, per[k], st.free_per_order[k]);
	CHECK_OK(s);
}

#define EXPECT_FREE(s, ...)                                                    \
	do {                                                                   \
		const struct run runs_[] = {__VA_ARGS__};                      \
		expect_free_at((s), runs_, sizeof(runs_) / sizeof(runs_[0]),   \
			       __FILE__, __LINE__);                            \
	} while (0)

#define EXPECT_NO_FREE(s) expect_free_at((s), NULL, 0, __FILE__, __LINE__)

/* Collect every extent through potad_extent_next, proving they come in
 * address order and do not overlap. */
static size_t list_extents(const struct potad_space *s,
			   struct potad_extent *out, size_t max)
{
	struct potad_stats st = stats(s);
	struct potad_extent e;
	uint64_t from = st.base;
	size_t n = 0;
	int rc;

	while ((rc = potad_extent_next(s, from, &e)) == 0) {
		ck_assert_msg(n < max, "more than %zu extents", max);
		ck_assert_msg(e.offset >= from,
			      "extent_next(%#" PRIx64
			      ") went back to %#" PRIx64,
			      from, e.offset);
		if (n)
			ck_assert_msg(
			    out[n - 1].offset + out[n - 1].length <= e.offset,
			    "extents at %#" PRIx64 " and %#" PRIx64 " overlap",
			    out[n - 1].offset, e.offset);
		out[n++] = e;
		if (e.offset == UINT64_MAX)
			break;
		from = e.offset + 1;
	}
	if (rc)
		ASSERT_RC(rc, -ENOENT);
	ck_assert_msg(
	    n == st.extents,
	    "extent_next walked %zu extents, stats.extents is %" PRIu64, n,
	    st.extents);
	return n;
}

static void same_extent(const struct potad_extent *a,
			const struct potad_extent *b)
{
	ASSERT_U64(a->offset, b->offset);
	ASSERT_U64(a->length, b->length);
	ASSERT_U64(a->handle, b->handle);
	ck_assert_uint_eq(a->owner, b->owner);
	ck_assert_uint_eq(a->tag, b->tag);
	ck_assert_uint_eq(a->type, b->type);
	ck_assert_uint_eq(a->flags, b->flags);
}

/*
 * potad_space_new
 */

START_TEST(new_every_granule)
{
	for (unsigned g = 0; g <= POTAD_GRANULE_SHIFT_MAX; g++) {
		/* 13 units from unit 3, plus a partial unit that must be
		 * rounded away. */
		uint64_t base = UINT64_C(3) << g;
		uint64_t size = (UINT64_C(13) << g) + (P2(g) - 1);
		struct potad_space *s = mk(base, size, g);
		struct potad_stats st = stats(s);
		struct potad_extent e, f;

		ck_assert_msg(st.granule == P2(g),
			      "g %u: granule expected %" PRIu64
			      ", got %" PRIu64,
			      g, P2(g), st.granule);
		ASSERT_U64(st.base, base);
		ASSERT_U64(st.size, UINT64_C(13) << g);
		ASSERT_U64(st.units, 13);
		ASSERT_U64(st.used_units, 0);
		ASSERT_U64(st.poison_units, 0);
		ASSERT_U64(st.extents, 0);
		ck_assert_uint_eq(st.children, 0);
		ck_assert_ptr_null(potad_space_parent(s));
		/* 3 | 4-7 | 8-15: one block each of orders 0, 2 and 3. */
		EXPECT_FREE(s, {3, 16});
		ASSERT_U64(st.free_per_order[0], 1);
		ASSERT_U64(st.free_per_order[2], 1);
		ASSERT_U64(st.free_per_order[3], 1);

		/* One byte takes one unit: the order-0 block at unit 3. */
		e = must_alloc(s, 1, 0, 0);
		ASSERT_U64(e.offset, base);
		ASSERT_U64(e.length, P2(g));
		EXPECT_FREE(s, {4, 16});
		ASSERT_RC(potad_free(s, e.handle, &f), 0);
		same_extent(&e, &f);
		EXPECT_FREE(s, {3, 16});
		destroy(s);
	}
}
END_TEST

START_TEST(new_refusals)
{
	struct potad_space *s = NULL;
	int rc;

	ASSERT_RC(potad_space_new(&s, 0, MiB, POTAD_GRANULE_SHIFT_MAX + 1),
		  -EINVAL);
	ASSERT_RC(potad_space_new(&s, 0, P2(40), 31), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 0, MiB, 64), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 0, MiB, 200), -EINVAL);
	/* The base must sit on the granule. */
	ASSERT_RC(potad_space_new(&s, 4097, MiB, 12), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 2048, MiB, 12), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 1, 16, 1), -EINVAL);
	/* Less than one unit, before or after rounding. */
	ASSERT_RC(potad_space_new(&s, 0, 0, 0), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 0, 0, 12), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 4096, 4095, 12), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 0, GiB - 1, 30), -EINVAL);
	/* Ranges that wrap past 2^64 - 1. */
	ASSERT_RC(potad_space_new(&s, P2(63), P2(63) + 4096, 12), -EINVAL);
	ASSERT_RC(potad_space_new(&s, UINT64_MAX - 4095, 8192, 12), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 4096, UINT64_MAX, 12), -EINVAL);
	ASSERT_RC(potad_space_new(&s, 2, UINT64_MAX - 0, 0), -EINVAL);
	ASSERT_RC(potad_space_new(&s, UINT64_MAX, 2, 0), -EINVAL);

	/* base + size == 2^64 exactly: the header allows either answer,
	 * but an accepted space must be consistent. */
	s = NULL;
	rc = potad_space_new(&s, UINT64_MAX - 4095, 4096, 12);
	if (rc == 0) {
		CHECK_OK(s);
		destroy(s);
	} else {
		ASSERT_RC(rc, -EINVAL);
	}
}
END_TEST

/* A size that is not a power of two is seeded with the maximal aligned
 * power-of-two blocks, like memblock handing pages to the buddy system. */
START_TEST(new_seeding)
{
	static const struct {
		uint64_t base_u, units;
		unsigned g;
	} cases[] = {
	    {3, 13, 12},   {5, 100, 12},     {0, 1, 0},	    {1, 1, 9},
	    {7, 1000, 9},  {0, 1000, 12},    {1023, 2, 12}, {3, 12345, 21},
	    {0, 65535, 0}, {12345, 678, 16}, {64, 63, 30},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned g = cases[i].g;
		struct potad_space *s =
		    mk(cases[i].base_u << g, cases[i].units << g, g);
		struct potad_stats st = stats(s);

		ASSERT_U64(st.units, cases[i].units);
		EXPECT_FREE(
		    s, {cases[i].base_u, cases[i].base_u + cases[i].units});
		destroy(s);
	}
}
END_TEST

START_TEST(new_largest_sizes)
{
	struct potad_space *s;
	struct potad_stats st;

	/* size = 2^64 - 1 - base: the end is the last representable
	 * address, rounded down to the granule. */
	s = mk(4096, UINT64_MAX - 4096, 12);
	st = stats(s);
	ASSERT_U64(st.size, UINT64_MAX - 8191);
	ASSERT_U64(st.units, P2(52) - 2);
	EXPECT_FREE(s, {1, P2(52) - 1});
	for (unsigned k = 0; k <= 50; k++)
		ASSERT_U64(st.free_per_order[k], 2);
	ASSERT_U64(st.largest_free_block, P2(62));
	destroy(s);

	/* The whole 64-bit byte range but its last byte. */
	s = mk(0, UINT64_MAX, 0);
	st = stats(s);
	ASSERT_U64(st.units, UINT64_MAX);
	ASSERT_U64(st.free_units, UINT64_MAX);
	for (unsigned k = 0; k < POTAD_ORDERS; k++)
		ASSERT_U64(st.free_per_order[k], 1);
	ASSERT_U64(st.largest_free_block, P2(63));
	ck_assert_uint_eq(st.max_order, 63);
	destroy(s);
}
END_TEST

/* Metadata grows with fragments, not with the size of the space. */
START_TEST(new_meta_small)
{
	for (unsigned g = 0; g <= 1; g++) {
		struct potad_space *s = mk(0, P2(63), g);
		struct potad_stats st = stats(s);

		ck_assert_msg(st.meta_bytes < 16 * KiB,
			      "granule %u, 2^63 bytes: meta_bytes expected "
			      "< 16384, got %" PRIu64,
			      g, st.meta_bytes);
		ck_assert_msg(st.extent_bytes <= st.meta_bytes,
			      "extent_bytes %" PRIu64 " > meta_bytes %" PRIu64,
			      st.extent_bytes, st.meta_bytes);
		ASSERT_U64(st.free_per_order[63 - g], 1);
		ASSERT_U64(st.free_blocks, 1);
		ck_assert_uint_eq(st.max_order, 63 - g);
		destroy(s);
	}
}
END_TEST

/*
 * potad_alloc and potad_claim
 */

START_TEST(alloc_exact_trim)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent e, f;
	struct potad_stats st;
	struct potad_alloc_req r = req_of(12 * KiB, 0, 0);

	r.owner = 7;
	r.tag = 99;
	e = must(s, &r);
	ASSERT_U64(e.offset, 0);
	ASSERT_U64(e.length, 12 * KiB);
	ck_assert_uint_eq(e.flags, 0);
	st = stats(s);
	ASSERT_U64(st.used_units, 3);
	ASSERT_U64(st.extents, 1);
	/* The fourth unit of the order-2 block went back: a 4 KiB block. */
	ASSERT_U64(st.free_per_order[0], 1);
	EXPECT_FREE(s, {3, 256});
	ASSERT_RC(potad_lookup(s, 12 * KiB, &f), -ENOENT);

	/* The smallest fitting block is that 4 KiB tail. */
	f = must_alloc(s, 1, 0, 0);
	ASSERT_U64(f.offset, 12 * KiB);
	ASSERT_U64(f.length, 4 * KiB);
	must_free(s, e.handle);
	must_free(s, f.handle);
	EXPECT_FREE(s, {0, 256});
	destroy(s);
}
END_TEST

START_TEST(alloc_whole)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent e;

	e = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_WHOLE);
	ASSERT_U64(e.offset, 0);
	ASSERT_U64(e.length, 16 * KiB);
	EXPECT_FREE(s, {4, 256});
	ASSERT_U64(stats(s).used_units, 4);
	must_free(s, e.handle);
	EXPECT_FREE(s, {0, 256});
	destroy(s);

	/* Units 3..15: the only order-2 block is units 4-7, naturally
	 * aligned in absolute unit numbers; a WHOLE request must take it. */
	s = mk(3 * 4 * KiB, 13 * 4 * KiB, 12);
	e = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_WHOLE);
	ASSERT_U64(e.offset, 16 * KiB);
	ASSERT_U64(e.length, 16 * KiB);
	EXPECT_FREE(s, {3, 4}, {8, 16});
	must_free(s, e.handle);
	/* An exact request has no such constraint (where it lands is
	 * alloc_smallest_block_first's business). */
	e = must_alloc(s, 12 * KiB, 0, 0);
	ASSERT_U64(e.length, 12 * KiB);
	EXPECT_FREE(s, {3, e.offset >> 12}, {(e.offset >> 12) + 3, 16});
	must_free(s, e.handle);
	EXPECT_FREE(s, {3, 16});
	destroy(s);
}
END_TEST

/* No MAX_ORDER: a 1 TiB extent comes out of a 1.5 TiB space. */
START_TEST(alloc_no_max_order)
{
	struct potad_space *s = mk(0, TiB + TiB / 2, 12);
	struct potad_extent e, f;
	struct potad_alloc_req r = req_of(TiB, 0, 0);

	e = must(s, &r);
	ASSERT_U64(e.offset, 0);
	ASSERT_U64(e.length, TiB);
	ASSERT_U64(stats(s).used_units, P2(28));
	EXPECT_FREE(s, {P2(28), P2(28) + P2(27)});
	refuse(s, &r, -ENOSPC, "second 1 TiB from 0.5 TiB free");
	must_free(s, e.handle);
	EXPECT_FREE(s, {0, P2(28) + P2(27)});

	/* The whole space, assembled from its two blocks. */
	r.size = TiB + TiB / 2;
	e = must(s, &r);
	ASSERT_U64(e.offset, 0);
	EXPECT_NO_FREE(s);
	must_free(s, e.handle);
	destroy(s);

	/* A 2^63-byte space hands out 1 TiB at either end. */
	s = mk(0, P2(63), 12);
	e = must_alloc(s, TiB, 0, 0);
	ASSERT_U64(e.offset, 0);
	f = must_alloc(s, TiB, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(f.offset, P2(63) - TiB);
	must_free(s, e.handle);
	must_free(s, f.handle);
	EXPECT_FREE(s, {0, P2(51)});
	destroy(s);
}
END_TEST

START_TEST(alloc_alignment)
{
	/* Units 3..258 (base 12 KiB, 1 MiB long). */
	struct potad_space *s = mk(12 * KiB, MiB, 12);
	struct potad_extent a, b, c, d, e;
	struct potad_alloc_req r;

	/* Alignment above size is absolute: 64 KiB is unit 16. */
	a = must_alloc(s, 4 * KiB, 64 * KiB, 0);
	ASSERT_U64(a.offset, 64 * KiB);
	ASSERT_U64(a.length, 4 * KiB);
	/* The only 1 MiB boundary inside the space is unit 256. */
	b = must_alloc(s, 4 * KiB, MiB, 0);
	ASSERT_U64(b.offset, MiB);
	/* No 2 MiB boundary lies inside [12 KiB, 1 MiB + 12 KiB). */
	r = req_of(4 * KiB, 2 * MiB, 0);
	refuse(s, &r, -ENOSPC, "align 2 MiB with no 2 MiB boundary");
	/* Alignment below size. */
	c = must_alloc(s, 64 * KiB, 8 * KiB, 0);
	/* Alignment below the granule is trivially met. */
	d = must_alloc(s, 4 * KiB, 512, 0);
	e = must_alloc(s, 1, 1, 0);
	ASSERT_U64(d.offset, 12 * KiB);
	must_free(s, a.handle);
	must_free(s, b.handle);
	must_free(s, c.handle);
	must_free(s, d.handle);
	must_free(s, e.handle);
	EXPECT_FREE(s, {3, 259});

	/* Every power of two up to the space's own size. */
	for (unsigned k = 0; k <= 20; k++) {
		e = must_alloc(s, 4 * KiB, P2(k), 0);
		must_free(s, e.handle);
	}
	destroy(s);
}
END_TEST

/* The documented default takes the smallest free block of a large enough
 * order, at the lowest address among those, before splitting a bigger one
 * (the buddy allocator's best fit by order). */
START_TEST(alloc_smallest_block_first)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b, c;

	/* Holding unit 254 leaves unit 255 as a lone order-0 block at the
	 * top, while units 0-127 are one order-7 block. */
	a = must_claim(s, 254 * 4 * KiB, 4 * KiB);
	EXPECT_FREE(s, {0, 254}, {255, 256});
	b = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(b.offset, 255 * 4 * KiB);
	/* Now 252-253 is the only order-1 block. */
	c = must_alloc(s, 8 * KiB, 0, 0);
	ASSERT_U64(c.offset, 252 * 4 * KiB);
	must_free(s, a.handle);
	must_free(s, b.handle);
	must_free(s, c.handle);
	EXPECT_FREE(s, {0, 256});
	destroy(s);
}
END_TEST

/* An alignment above the size is met, bottom-up, from blocks of the
 * alignment's order (the "needed order"), as the buddy allocator does;
 * top-down first tries the highest aligned position of the range, which
 * may lie in a smaller free block. */
START_TEST(alloc_align_small_block)
{
	struct potad_space *s = mk(0, 256 * KiB, 12);
	struct potad_extent h[3], a;

	/* Free: unit 16 (order 0, on a 64 KiB boundary) and 32-47 (order
	 * 4).  Only the order-4 block is of the needed order. */
	h[0] = must_claim(s, 0, 16 * 4 * KiB);
	h[1] = must_claim(s, 17 * 4 * KiB, 15 * 4 * KiB);
	h[2] = must_claim(s, 48 * 4 * KiB, 16 * 4 * KiB);
	EXPECT_FREE(s, {16, 17}, {32, 48});
	a = must_alloc(s, 4 * KiB, 64 * KiB, 0);
	ASSERT_U64(a.offset, 128 * KiB);
	must_free(s, a.handle);
	/* Top-down prefers the higher of the two. */
	a = must_alloc(s, 4 * KiB, 64 * KiB, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(a.offset, 128 * KiB);
	must_free(s, a.handle);
	for (int i = 0; i < 3; i++)
		must_free(s, h[i].handle);
	EXPECT_FREE(s, {0, 64});
	destroy(s);
}
END_TEST

/* The same, top-down: 1.5 MiB is an order-8 block at 0 and an order-7
 * block at 1 MiB, both on a 1 MiB boundary; the higher one wins. */
START_TEST(alloc_align_small_block_topdown)
{
	struct potad_space *s = mk(0, MiB + MiB / 2, 12);
	struct potad_extent a;

	a = must_alloc(s, 4 * KiB, MiB, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(a.offset, MiB);
	must_free(s, a.handle);
	destroy(s);
}
END_TEST

/* Fill a 64 MiB space with 1 MiB extents, one per MiB in address order. */
static void fill_mib(struct potad_space *s, struct potad_extent *mib, int n)
{
	for (int i = 0; i < n; i++) {
		mib[i] = must_alloc(s, MiB, 0, 0);
		ck_assert_msg(mib[i].offset == (uint64_t)i * MiB,
			      "1 MiB extent %d: offset expected %#" PRIx64
			      ", got %#" PRIx64,
			      i, (uint64_t)i * MiB, mib[i].offset);
	}
	EXPECT_NO_FREE(s);
}

/* The CMA case: 8 MiB at 1 MiB alignment when no free 8 MiB block exists
 * but eight adjacent free 1 MiB pieces do, split across blocks that are
 * not buddies of one another. */
START_TEST(alloc_cma)
{
	struct potad_space *s = mk(0, 64 * MiB, 12);
	struct potad_extent mib[64], e, x;
	struct potad_alloc_req r;

	fill_mib(s, mib, 64);
	/* Free MiB 1..8: blocks 1 (1M), 2-3 (2M), 4-7 (4M), 8 (1M); 1 and 8
	 * cannot merge because MiB 0 and 9 are held. */
	for (int i = 1; i <= 8; i++)
		must_free(s, mib[i].handle);
	EXPECT_FREE(s, {256, 9 * 256});
	ASSERT_U64(stats(s).free_per_order[8], 2);
	ASSERT_U64(stats(s).free_per_order[11], 0);
	ASSERT_U64(stats(s).largest_free_block, 4 * MiB);

	/* Starting on a 2 MiB boundary, the run holds only 7 MiB. */
	r = req_of(8 * MiB, 2 * MiB, 0);
	refuse(s, &r, -ENOSPC, "8 MiB at 2 MiB align over MiB 1..8");
	r = req_of(8 * MiB + 4 * KiB, MiB, 0);
	refuse(s, &r, -ENOSPC, "8 MiB + 4 KiB over an 8 MiB run");

	e = must_alloc(s, 8 * MiB, MiB, 0);
	ASSERT_U64(e.offset, MiB);
	ASSERT_U64(e.length, 8 * MiB);
	EXPECT_NO_FREE(s);
	ASSERT_RC(potad_lookup(s, MiB, &x), 0);
	ASSERT_U64(x.handle, e.handle);
	ASSERT_RC(potad_lookup(s, 9 * MiB - 1, &x), 0);
	ASSERT_U64(x.handle, e.handle);
	must_free(s, e.handle);
	EXPECT_FREE(s, {256, 9 * 256});

	/* Also with the default alignment (the granule). */
	e = must_alloc(s, 8 * MiB, 0, 0);
	ASSERT_U64(e.offset, MiB);
	must_free(s, e.handle);

	/* MiB 2..9: on a 2 MiB boundary now, but not on a 4 MiB one. */
	must_claim(s, MiB, MiB);
	must_free(s, mib[9].handle);
	EXPECT_FREE(s, {512, 10 * 256});
	r = req_of(8 * MiB, 4 * MiB, 0);
	refuse(s, &r, -ENOSPC, "8 MiB at 4 MiB align over MiB 2..9");
	e = must_alloc(s, 8 * MiB, 2 * MiB, 0);
	ASSERT_U64(e.offset, 2 * MiB);
	EXPECT_NO_FREE(s);
	must_free(s, e.handle);

	/* An odd number of units assembled too: 7 MiB + 4 KiB. */
	e = must_alloc(s, 7 * MiB + 4 * KiB, 0, 0);
	must_free(s, e.handle);
	EXPECT_FREE(s, {512, 10 * 256});
	destroy(s);
}
END_TEST

/* A search of the whole space that fails remembers how long the longest
 * free run is, so the same request fails again without a search; every
 * way a run can grow afterwards must let it succeed again, and searches
 * that saw only part of the free space must not lower the bound.  The
 * checker (after every call here) holds the bound to the longest run. */
START_TEST(alloc_run_bound)
{
	struct potad_space *s = mk(0, 64 * MiB, 12);
	struct potad_extent mib[64], e;
	struct potad_alloc_req r = req_of(2 * MiB, 0, 0),
			       r3 = req_of(3 * MiB, 0, 0), c, low;

	/* Every odd MiB free: runs of 1 MiB only.  Refused by a search,
	 * then by the bound. */
	fill_mib(s, mib, 64);
	for (int i = 1; i < 64; i += 2)
		must_free(s, mib[i].handle);
	refuse(s, &r, -ENOSPC, "2 MiB over 1 MiB runs");
	refuse(s, &r, -ENOSPC, "2 MiB over 1 MiB runs, again");
	refuse(s, &r3, -ENOSPC, "3 MiB over 1 MiB runs");

	/* A free that joins three runs: MiB 3..5, no 4 MiB block in it. */
	must_free(s, mib[4].handle);
	e = must_alloc(s, 3 * MiB, 0, 0);
	ASSERT_U64(e.offset, 3 * MiB);
	refuse(s, &r3, -ENOSPC, "3 MiB with the 3 MiB run held");
	must_free(s, mib[6].handle);
	refuse(s, &r3, -ENOSPC, "3 MiB over MiB 6..7");

	/* A shrink gives the tail back: MiB 5..7. */
	ASSERT_RC(potad_shrink(s, e.handle, 2 * MiB, 0, NULL), 0);
	CHECK_OK(s);
	e = must_alloc(s, 3 * MiB, 0, 0);
	ASSERT_U64(e.offset, 5 * MiB);
	refuse(s, &r3, -ENOSPC, "3 MiB with every run 1 MiB long again");

	/* MiB 9..11, the middle one dirty.  A clean search sees only clean
	 * runs, and one inside a range only the runs there: neither may
	 * lower the bound. */
	ASSERT_RC(potad_free_ex(s, mib[10].handle, POTAD_FREE_DIRTY, NULL), 0);
	CHECK_OK(s);
	c = req_of(3 * MiB, 0, POTAD_ALLOC_CLEAN);
	refuse(s, &c, -ENOSPC, "3 MiB clean over 1 MiB clean runs");
	low = r3;
	low.max = 8 * MiB;
	refuse(s, &low, -ENOSPC, "3 MiB below 8 MiB");
	e = must_alloc(s, 3 * MiB, 0, 0);
	ASSERT_U64(e.offset, 9 * MiB);

	/* The clean bound: a dirty free lengthens a run, not a clean one. */
	ASSERT_RC(potad_free_ex(s, e.handle, POTAD_FREE_DIRTY, NULL), 0);
	CHECK_OK(s);
	refuse(s, &c, -ENOSPC, "3 MiB clean over MiB 9..11 dirty");
	refuse(s, &c, -ENOSPC, "3 MiB clean over MiB 9..11 dirty, again");
	e = must_alloc(s, 3 * MiB, 0, 0);
	ASSERT_U64(e.offset, 9 * MiB);
	ASSERT_RC(potad_free_ex(s, e.handle, POTAD_FREE_DIRTY, NULL), 0);
	CHECK_OK(s);
	/* Cleaning it does. */
	ASSERT_RC(potad_set_clean(s, 9 * MiB, 3 * MiB, 1), 0);
	CHECK_OK(s);
	e = must(s, &c);
	ASSERT_U64(e.offset, 9 * MiB);
	refuse(s, &c, -ENOSPC, "3 MiB clean, the clean run held");
	/* And so does a clean free. */
	must_free(s, e.handle);
	e = must(s, &c);
	ASSERT_U64(e.offset, 9 * MiB);
	destroy(s);
}
END_TEST

START_TEST(alloc_range)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b, c, d, e;
	struct potad_alloc_req r;

	r = req_of(4 * KiB, 0, 0);
	r.min = 256 * KiB;
	r.max = 512 * KiB;
	a = must(s, &r);
	ASSERT_U64(a.offset, 256 * KiB);
	r.flags = POTAD_ALLOC_TOPDOWN;
	b = must(s, &r);
	ASSERT_U64(b.offset, 512 * KiB - 4 * KiB);
	/* Fill the rest of the range, then it is full. */
	r.flags = 0;
	r.size = 256 * KiB - 8 * KiB;
	c = must(s, &r);
	ASSERT_U64(c.offset, 260 * KiB);
	r.size = 4 * KiB;
	refuse(s, &r, -ENOSPC, "full range [256K, 512K)");
	/* A range smaller than the request. */
	r.size = 8 * KiB;
	r.min = 0;
	r.max = 4 * KiB;
	refuse(s, &r, -E2BIG, "8 KiB in a 4 KiB range");
	/* min > max. */
	r.size = 4 * KiB;
	r.min = 512 * KiB;
	r.max = 256 * KiB;
	refuse(s, &r, -EINVAL, "min > max");
	/* Only max given; only min given. */
	r.min = 0;
	r.max = 8 * KiB;
	r.flags = POTAD_ALLOC_TOPDOWN;
	d = must(s, &r);
	ASSERT_U64(d.offset, 4 * KiB);
	r.min = MiB - 4 * KiB;
	r.max = 0;
	r.flags = 0;
	e = must(s, &r);
	ASSERT_U64(e.offset, MiB - 4 * KiB);
	must_free(s, a.handle);
	must_free(s, b.handle);
	must_free(s, c.handle);
	must_free(s, d.handle);
	must_free(s, e.handle);
	EXPECT_FREE(s, {0, 256});
	destroy(s);

	/* A range that misses the space entirely. */
	s = mk(MiB, MiB, 12);
	r = req_of(4 * KiB, 0, 0);
	r.min = 4 * MiB;
	r.max = 8 * MiB;
	refuse(s, &r, -EINVAL, "range above the space");
	r.min = 4 * KiB;
	r.max = 512 * KiB;
	refuse(s, &r, -EINVAL, "range below the space");
	destroy(s);
}
END_TEST

START_TEST(alloc_topdown)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b;

	/* In a fresh space the top block is carved from its top. */
	b = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(b.offset, MiB - 12 * KiB);
	EXPECT_FREE(s, {0, 253});
	must_free(s, b.handle);
	a = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(a.offset, MiB - 4 * KiB);
	EXPECT_FREE(s, {0, 255});
	/* Under a the free blocks are 252-253 and 254 (too small alone) and
	 * 248-251: whether the engine takes the top of that block or
	 * assembles the run at 252, the extent lies in [992K, 1020K). */
	b = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	ck_assert_msg(
	    b.offset >= MiB - 32 * KiB && b.offset + b.length <= MiB - 4 * KiB,
	    "12 KiB top-down under a 4 KiB extent at the top: "
	    "expected inside [%#" PRIx64 ", %#" PRIx64 "), got %#" PRIx64,
	    MiB - 32 * KiB, MiB - 4 * KiB, b.offset);
	EXPECT_FREE(s, {0, b.offset >> 12}, {(b.offset >> 12) + 3, 255});
	must_free(s, a.handle);
	must_free(s, b.handle);
	b = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_TOPDOWN | POTAD_ALLOC_WHOLE);
	ASSERT_U64(b.offset, MiB - 16 * KiB);
	ASSERT_U64(b.length, 16 * KiB);
	must_free(s, b.handle);
	a = must_alloc(s, 4 * KiB, 64 * KiB, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(a.offset, MiB - 64 * KiB);
	must_free(s, a.handle);
	EXPECT_FREE(s, {0, 256});
	destroy(s);

	/* With an unaligned base: units 3..15. */
	s = mk(3 * 4 * KiB, 13 * 4 * KiB, 12);
	a = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(a.offset, 15 * 4 * KiB);
	must_free(s, a.handle);
	destroy(s);
}
END_TEST

START_TEST(alloc_fixed)
{
	struct potad_space *s = mk(64 * KiB, MiB, 12);
	struct potad_extent a, b, e;
	struct potad_alloc_req r;
	uint64_t end = 64 * KiB + MiB;

	a = must_claim(s, 100 * KiB, 12 * KiB);
	ck_assert_uint_eq(a.type, POTAD_TYPE_EXTENT);
	/* Units 25..27 held: 25 is its own order-0 block (24 is free). */
	EXPECT_FREE(s, {16, 25}, {28, 272});
	ASSERT_RC(potad_claim(s, 108 * KiB, 4 * KiB, 0, 0, &e), -EBUSY);
	ASSERT_RC(potad_claim(s, 96 * KiB, 8 * KiB, 0, 0, &e), -EBUSY);
	ASSERT_RC(potad_claim(s, 64 * KiB, MiB, 0, 0, &e), -EBUSY);
	r = req_of(8 * KiB, 0, POTAD_ALLOC_FIXED);
	r.at = 96 * KiB;
	refuse(s, &r, -EBUSY, "FIXED over a held unit");
	r.at = 200 * KiB;
	b = must(s, &r);
	ASSERT_U64(b.offset, 200 * KiB);
	ASSERT_U64(b.length, 8 * KiB);
	/* Right next to held extents on both sides. */
	e = must_claim(s, 96 * KiB, 4 * KiB);
	must_free(s, e.handle);
	e = must_claim(s, 112 * KiB, 88 * KiB);
	must_free(s, e.handle);
	/* Refusals. */
	ASSERT_RC(potad_claim(s, 300 * KiB, 0, 0, 0, &e), -EINVAL);
	r.at = 300 * KiB + 1;
	refuse(s, &r, -EINVAL, "FIXED off the granule");
	r.at = 300 * KiB;
	r.align = 8 * KiB;
	refuse(s, &r, -EINVAL, "FIXED off the requested alignment");
	r.align = 0;
	r.at = end;
	refuse(s, &r, -ERANGE, "FIXED at the end");
	r.at = end - 4 * KiB;
	refuse(s, &r, -ERANGE, "FIXED across the end");
	r.at = 0;
	refuse(s, &r, -ERANGE, "FIXED below the base");
	r.at = 60 * KiB;
	refuse(s, &r, -ERANGE, "FIXED starting below the base");
	r.at = UINT64_MAX - 4095;
	refuse(s, &r, -ERANGE, "FIXED near 2^64");
	must_free(s, a.handle);
	must_free(s, b.handle);
	EXPECT_FREE(s, {16, 272});
	/* The whole space in one claim. */
	a = must_claim(s, 64 * KiB, MiB);
	EXPECT_NO_FREE(s);
	must_free(s, a.handle);
	EXPECT_FREE(s, {16, 272});
	destroy(s);
}
END_TEST

START_TEST(alloc_refusals)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b, full;
	struct potad_alloc_req r;

	/* Some state, so that "unchanged" means something. */
	a = must_alloc(s, 12 * KiB, 0, 0);
	b = must_alloc(s, 64 * KiB, 0, POTAD_ALLOC_TOPDOWN);

	r = req_of(0, 0, 0);
	refuse(s, &r, -EINVAL, "size 0");
	r = req_of(4 * KiB, 3, 0);
	refuse(s, &r, -EINVAL, "align 3");
	r = req_of(4 * KiB, 6 * KiB, 0);
	refuse(s, &r, -EINVAL, "align 6 KiB");
	r = req_of(4 * KiB, P2(63) + 1, 0);
	refuse(s, &r, -EINVAL, "align 2^63 + 1");
	r = req_of(4 * KiB, UINT64_MAX, 0);
	refuse(s, &r, -EINVAL, "align 2^64 - 1");
	r = req_of(4 * KiB, 0, 1u << 4);
	refuse(s, &r, -EINVAL, "flag bit 4");
	r = req_of(4 * KiB, 0, 1u << 31);
	refuse(s, &r, -EINVAL, "flag bit 31");
	r = req_of(4 * KiB, 0, 0);
	r.min = 8 * KiB;
	r.max = 4 * KiB;
	refuse(s, &r, -EINVAL, "min > max");
	r = req_of(MiB + 4 * KiB, 0, 0);
	refuse(s, &r, -E2BIG, "1 MiB + 4 KiB in a 1 MiB space");
	r = req_of(MiB + 1, 0, 0);
	refuse(s, &r, -E2BIG, "1 MiB + 1 byte in a 1 MiB space");
	/* Rounding up to the granule must not wrap to zero. */
	r = req_of(UINT64_MAX, 0, 0);
	refuse(s, &r, -E2BIG, "size 2^64 - 1");
	r = req_of(UINT64_MAX - 100, 0, POTAD_ALLOC_WHOLE);
	refuse(s, &r, -E2BIG, "WHOLE size near 2^64");
	r = req_of(4 * KiB, 0, POTAD_ALLOC_FIXED);
	r.at = 4097;
	refuse(s, &r, -EINVAL, "FIXED unaligned");
	r.at = MiB;
	refuse(s, &r, -ERANGE, "FIXED past the end");
	r.at = 0;
	refuse(s, &r, -EBUSY, "FIXED over a held extent");

	must_free(s, a.handle);
	must_free(s, b.handle);
	full = must_claim(s, 0, MiB);
	r = req_of(4 * KiB, 0, 0);
	refuse(s, &r, -ENOSPC, "full space");
	r.flags = POTAD_ALLOC_TOPDOWN;
	refuse(s, &r, -ENOSPC, "full space, top-down");
	r = req_of(4 * KiB, 0, POTAD_ALLOC_FIXED);
	r.at = 512 * KiB;
	refuse(s, &r, -EBUSY, "FIXED in a full space");
	must_free(s, full.handle);
	EXPECT_FREE(s, {0, 256});
	destroy(s);
}
END_TEST

/*
 * potad_free and handles
 */

START_TEST(free_merges_back)
{
	struct potad_space *s = mk(12 * KiB, 4 * MiB, 12);
	struct potad_stats before = stats(s), after;
	struct potad_extent e[12], f;
	static const int order[12] = {5, 0, 11, 3, 7, 1, 9, 2, 10, 4, 8, 6};

	e[0] = must_alloc(s, 4 * KiB, 0, 0);
	e[1] = must_alloc(s, 12 * KiB, 0, 0);
	e[2] = must_alloc(s, 100 * KiB, 0, 0);
	e[3] = must_alloc(s, 64 * KiB, 0, POTAD_ALLOC_WHOLE);
	e[4] = must_alloc(s, 20 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	e[5] = must_alloc(s, 4 * KiB, 256 * KiB, 0);
	e[6] = must_alloc(s, 300 * KiB, 0, POTAD_ALLOC_WHOLE);
	e[7] = must_claim(s, 2 * MiB + 4 * KiB, 36 * KiB);
	e[8] = must_alloc(s, 1, 0, POTAD_ALLOC_TOPDOWN);
	e[9] = must_alloc(s, MiB, 0, 0);
	e[10] = must_alloc(s, 8 * KiB, 0, 0);
	e[11] = must_alloc(s, 44 * KiB, 16 * KiB, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(stats(s).extents, 12);
	for (int i = 0; i < 12; i++) {
		ASSERT_RC(potad_free(s, e[order[i]].handle, &f), 0);
		same_extent(&e[order[i]], &f);
		CHECK_OK(s);
	}
	after = stats(s);
	ASSERT_U64(after.extents, 0);
	ASSERT_U64(after.used_units, 0);
	for (unsigned k = 0; k < POTAD_ORDERS; k++)
		ck_assert_msg(
		    after.free_per_order[k] == before.free_per_order[k],
		    "free_per_order[%u]: expected %" PRIu64
		    " (initial), got %" PRIu64,
		    k, before.free_per_order[k], after.free_per_order[k]);
	EXPECT_FREE(s, {3, 3 + 1024});
	destroy(s);
}
END_TEST

/* A refused free or get: the wanted error, and nothing changed. */
static void refuse_handle(struct potad_space *s, uint64_t h, int want,
			  const char *what)
{
	struct potad_stats a = stats(s), b;
	struct potad_extent e;
	int rc;

	rc = potad_get(s, h, &e);
	ck_assert_msg(rc == want,
		      "%s: potad_get(%#" PRIx64
		      ") expected %d (%s), got %d (%s)",
		      what, h, want, ename(want), rc, ename(rc));
	rc = potad_free(s, h, &e);
	ck_assert_msg(rc == want,
		      "%s: potad_free(%#" PRIx64
		      ") expected %d (%s), got %d (%s)",
		      what, h, want, ename(want), rc, ename(rc));
	b = stats(s);
	stats_same(&a, &b, what);
	CHECK_OK(s);
}

static uint64_t with_type(uint64_t h, uint64_t type)
{
	return (h & ~(UINT64_C(0xf) << 60)) | (type << 60);
}

static uint64_t with_slot(uint64_t h, uint32_t slot)
{
	return (h & ~UINT64_C(0xffffffff)) | slot;
}

static uint64_t with_gen(uint64_t h, uint32_t gen)
{
	return (h & ~(UINT64_C(0x0fffffff) << 32)) |
	       ((uint64_t)(gen & 0x0fffffffu) << 32);
}

START_TEST(free_double)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, keep, g;

	keep = must_alloc(s, 4 * KiB, 0, 0);
	a = must_alloc(s, 8 * KiB, 0, 0);
	ASSERT_RC(potad_get(s, a.handle, &g), 0);
	same_extent(&a, &g);
	must_free(s, a.handle);
	refuse_handle(s, a.handle, -ESTALE, "double free");
	must_free(s, keep.handle);
	refuse_handle(s, keep.handle, -ESTALE, "double free of the last");
	EXPECT_FREE(s, {0, 256});
	destroy(s);
}
END_TEST

START_TEST(free_forged)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a = must_alloc(s, 4 * KiB, 0, 0);
	uint64_t h = a.handle;

	refuse_handle(s, 0, -EINVAL, "handle 0");
	refuse_handle(s, with_type(h, 0), -EINVAL, "type 0");
	refuse_handle(s, with_type(h, 0xf), -EINVAL, "type 0xF");
	refuse_handle(s, with_type(h, 3), -EINVAL, "type 3");
	refuse_handle(s, with_slot(h, 0xfffffff0u), -EINVAL,
		      "slot 0xfffffff0 never issued");
	refuse_handle(s, with_slot(h, POTAD_HANDLE_SLOT(h) + 100000), -EINVAL,
		      "slot 100000 past the only one issued");
	refuse_handle(s, UINT64_MAX, -EINVAL, "all ones");
	/* The live extent survived all of that. */
	ASSERT_U64(stats(s).extents, 1);
	must_free(s, h);
	destroy(s);
}
END_TEST

START_TEST(free_stale_generation)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b[256], g;
	uint64_t h;
	int n = 0, found = -1;

	a = must_alloc(s, 4 * KiB, 0, 0);
	h = a.handle;
	/* A forged generation on a live slot is stale. */
	refuse_handle(s, with_gen(h, POTAD_HANDLE_GEN(h) + 1), -ESTALE,
		      "generation + 1 on a live slot");
	must_free(s, h);
	/* Allocate until the slot comes back. */
	while (found < 0 && n < 256) {
		b[n] = must_alloc(s, 4 * KiB, 0, 0);
		if (POTAD_HANDLE_SLOT(b[n].handle) == POTAD_HANDLE_SLOT(h))
			found = n;
		n++;
	}
	ck_assert_msg(found >= 0, "slot %u was not reused in %d allocations",
		      POTAD_HANDLE_SLOT(h), n);
	ck_assert_msg(POTAD_HANDLE_GEN(b[found].handle) != POTAD_HANDLE_GEN(h),
		      "reused slot %u kept generation %u", POTAD_HANDLE_SLOT(h),
		      POTAD_HANDLE_GEN(h));
	refuse_handle(s, h, -ESTALE, "old generation after slot reuse");
	ASSERT_RC(potad_get(s, b[found].handle, &g), 0);
	same_extent(&b[found], &g);
	for (int i = 0; i < n; i++)
		must_free(s, b[i].handle);
	EXPECT_FREE(s, {0, 256});
	destroy(s);
}
END_TEST

START_TEST(free_child_host_busy)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL;
	struct potad_extent a, g;
	struct potad_stats before, after;

	a = must_alloc(s, MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, a.handle, 12, &c), 0);
	CHECK_OK(s);
	before = stats(s);
	ASSERT_RC(potad_free(s, a.handle, &g), -EBUSY);
	after = stats(s);
	stats_same(&before, &after, "free of a child-hosting extent");
	CHECK_OK(s);
	ASSERT_RC(potad_get(s, a.handle, &g), 0);
	ck_assert_uint_eq(g.type, POTAD_TYPE_CHILD);
	ck_assert_ptr_eq(potad_child_of(s, a.handle), c);
	/* Destroying the child frees the hosting extent. */
	destroy(c);
	refuse_handle(s, a.handle, -ESTALE, "host freed with its child");
	ck_assert_ptr_null(potad_child_of(s, a.handle));
	EXPECT_FREE(s, {0, 4096});
	destroy(s);
}
END_TEST

/* A refused shrink: the wanted error, and nothing changed. */
static void refuse_shrink(struct potad_space *s, uint64_t h, uint64_t len,
			  unsigned flags, int want, const char *what)
{
	struct potad_stats a = stats(s), b;
	struct potad_extent e;
	int rc = potad_shrink(s, h, len, flags, &e);

	ck_assert_msg(rc == want,
		      "%s: potad_shrink(%#" PRIx64 ", %" PRIu64
		      ", %#x) expected %d (%s), got %d (%s)",
		      what, h, len, flags, want, ename(want), rc, ename(rc));
	b = stats(s);
	stats_same(&a, &b, what);
	CHECK_OK(s);
}

START_TEST(shrink_tail)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b, g;
	struct potad_alloc_req r = req_of(64 * KiB, 0, 0);

	r.owner = 7;
	r.tag = 9;
	a = must(s, &r);
	b = must_alloc(s, 64 * KiB, 0, 0);
	ASSERT_U64(a.offset, 0);
	ASSERT_U64(b.offset, 64 * KiB);

	/* Keep 12K: the tail [12K, 64K) is free again, and merges with
	 * nothing but itself since b follows it. */
	ASSERT_RC(potad_shrink(s, a.handle, 12 * KiB, 0, &g), 0);
	ASSERT_U64(g.offset, 0);
	ASSERT_U64(g.length, 12 * KiB);
	ASSERT_U64(g.handle, a.handle);
	ASSERT_U64(g.owner, 7);
	ASSERT_U64(g.tag, 9);
	CHECK_OK(s);
	EXPECT_FREE(s, {3, 16}, {32, 256});
	ASSERT_U64(stats(s).used_units, 3 + 16);
	ASSERT_RC(potad_get(s, a.handle, &g), 0);
	ASSERT_U64(g.length, 12 * KiB);
	ASSERT_RC(potad_lookup(s, 12 * KiB - 1, &g), 0);
	ASSERT_U64(g.handle, a.handle);
	ASSERT_RC(potad_lookup(s, 12 * KiB, &g), -ENOENT);

	/* The freed tail is allocated like any free space. */
	g = must_claim(s, 12 * KiB, 52 * KiB);
	must_free(s, g.handle);

	refuse_shrink(s, a.handle, 12 * KiB, 0, -EINVAL, "not shorter");
	refuse_shrink(s, a.handle, 16 * KiB, 0, -EINVAL, "longer");
	refuse_shrink(s, a.handle, 0, 0, -EINVAL, "to nothing");
	refuse_shrink(s, a.handle, 6 * KiB, 0, -EINVAL, "off the granule");
	refuse_shrink(s, a.handle, 4 * KiB, 0x80, -EINVAL, "unknown flag");
	refuse_shrink(s, with_type(a.handle, 0), 4 * KiB, 0, -EINVAL,
		      "forged type");

	/* A dirty tail stays apart from the clean space beside it. */
	ASSERT_RC(potad_shrink(s, a.handle, 4 * KiB, POTAD_FREE_DIRTY, &g), 0);
	ASSERT_U64(g.length, 4 * KiB);
	CHECK_OK(s);
	ASSERT_U64(stats(s).dirty_units, 2);
	EXPECT_FREE(s, {1, 3}, {3, 16}, {32, 256});

	/* Freeing what is left merges everything of one state back. */
	must_free(s, a.handle);
	refuse_shrink(s, a.handle, 4 * KiB, 0, -ESTALE, "after the free");
	must_free(s, b.handle);
	ASSERT_U64(stats(s).dirty_units, 2);
	ASSERT_RC(potad_set_clean(s, 0, MiB, 1), 0);
	EXPECT_FREE(s, {0, 256});
	destroy(s);
}
END_TEST

START_TEST(shrink_poison_and_child)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL;
	struct potad_extent a, h, g;

	/* A poisoned unit in the tail stays poisoned, and the extent that
	 * kept the rest is no longer marked poisoned. */
	a = must_alloc(s, 64 * KiB, 0, 0);
	/* One extent hit. */
	ASSERT_RC(potad_poison(s, 8 * KiB, 4 * KiB, NULL, NULL), 1);
	ASSERT_RC(potad_get(s, a.handle, &g), 0);
	ck_assert_uint_eq(g.flags, POTAD_EXTENT_POISONED);
	ASSERT_RC(potad_shrink(s, a.handle, 4 * KiB, 0, &g), 0);
	ck_assert_uint_eq(g.flags, 0);
	CHECK_OK(s);
	ASSERT_U64(stats(s).poison_units, 1);
	ASSERT_U64(stats(s).used_units, 1);
	ASSERT_RC(potad_is_poisoned(s, 8 * KiB, 4 * KiB), 1);
	EXPECT_FREE(s, {1, 2}, {3, 4096});

	/* An extent that hosts a child space keeps its length. */
	h = must_alloc(s, MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, h.handle, 12, &c), 0);
	refuse_shrink(s, h.handle, 4 * KiB, 0, -EBUSY, "child host");
	destroy(c);
	must_free(s, a.handle);
	destroy(s);
}
END_TEST

/*
 * Lookup, get and iteration
 */

/* Descriptors keep 32 bits of an extent's start and length, and a space of
 * 2^32 units or more keeps the high halves apart: both sides of that line,
 * with extents whose start and length need every bit. */
/* Every extent of a small space at an unaligned base freed between random
 * neighbours, so that its pieces merge with each other and with free
 * buddies on either side, or with none: the checker finds any buddies left
 * apart, and the free units must add up. */
START_TEST(free_every_range)
{
	const uint64_t base = 5, n = 48;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (uint64_t a = base; a < base + n; a++) {
		for (uint64_t b = a + 1; b <= base + n; b++) {
			for (int trial = 0; trial < 8; trial++) {
				struct potad_space *s = mk(base, n, 0);
				struct potad_extent e;
				uint64_t held = 0;

				e = must_claim(s, a, b - a);
				for (uint64_t u = base; u < base + n; u++) {
					if (u >= a && u < b)
						continue;
					x ^= x << 13;
					x ^= x >> 7;
					x ^= x << 17;
					if (x & 1)
						continue;
					must_claim(s, u, 1);
					held++;
				}
				must_free(s, e.handle);
				ASSERT_U64(stats(s).free_units, n - held);
				destroy(s);
			}
		}
	}
}
END_TEST

START_TEST(desc_widths)
{
	/* 2^32 - 1 units, high in the address space: the narrow layout. */
	uint64_t base = P2(63), n = P2(32) - 1;
	struct potad_space *s = mk(base, n, 0), *w;
	struct potad_extent a, b, g;
	uint64_t narrow, wide;

	a = must_alloc(s, P2(31) + P2(30), 0, 0);
	ASSERT_U64(a.offset, base);
	ASSERT_U64(a.length, P2(31) + P2(30));
	b = must_claim(s, base + n - 1, 1);
	ASSERT_RC(potad_lookup(s, base + n - 1, &g), 0);
	ASSERT_U64(g.handle, b.handle);
	ASSERT_RC(potad_lookup(s, base + a.length - 1, &g), 0);
	ASSERT_U64(g.handle, a.handle);
	ASSERT_RC(potad_shrink(s, a.handle, P2(31) + 1, 0, &g), 0);
	ASSERT_U64(g.length, P2(31) + 1);
	CHECK_OK(s);
	narrow = stats(s).extent_bytes;

	/* 2^33 units: extents past unit 2^32 and longer than 2^32 units. */
	w = mk(0, P2(33), 0);
	a = must_alloc(w, P2(32) + 3, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(a.offset, P2(33) - P2(32) - 3);
	ASSERT_U64(a.length, P2(32) + 3);
	b = must_claim(w, P2(32) - P2(20), 5);
	ASSERT_RC(potad_lookup(w, P2(33) - 1, &g), 0);
	ASSERT_U64(g.handle, a.handle);
	ASSERT_U64(g.length, P2(32) + 3);
	ASSERT_RC(potad_shrink(w, a.handle, P2(32) + 1, 0, &g), 0);
	ASSERT_U64(g.offset, a.offset);
	ASSERT_U64(g.length, P2(32) + 1);
	ASSERT_RC(potad_lookup(w, a.offset + P2(32) + 1, &g), -ENOENT);
	ASSERT_U64(stats(w).used_units, P2(32) + 1 + 5);
	CHECK_OK(w);
	wide = stats(w).extent_bytes;

	/* Same two extents, same index shape: the narrow slab is smaller. */
	ck_assert_msg(narrow < wide,
		      "extent_bytes: narrow %" PRIu64 ", wide %" PRIu64,
		      narrow, wide);
	must_free(w, a.handle);
	must_free(w, b.handle);
	EXPECT_FREE(w, {0, P2(33)});
	destroy(w);
	destroy(s);
}
END_TEST

START_TEST(lookup_points)
{
	uint64_t base = 64 * KiB, end = base + MiB;
	struct potad_space *s = mk(base, MiB, 12);
	struct potad_extent e[3], x;
	struct potad_alloc_req r;

	for (int i = 0; i < 3; i++) {
		r = req_of((uint64_t)(i + 1) * 12 * KiB, 0, 0);
		r.owner = 10 + i;
		r.tag = 100 + i;
		e[i] = must(s, &r);
	}
	for (int i = 0; i < 3; i++) {
		uint64_t pts[4] = {e[i].offset, e[i].offset + 1,
				   e[i].offset + e[i].length / 2,
				   e[i].offset + e[i].length - 1};

		for (int j = 0; j < 4; j++) {
			memset(&x, 0, sizeof(x));
			ASSERT_RC(potad_lookup(s, pts[j], &x), 0);
			same_extent(&e[i], &x);
		}
		ASSERT_RC(potad_get(s, e[i].handle, &x), 0);
		same_extent(&e[i], &x);
		ASSERT_U64(x.owner, 10 + i);
		ASSERT_U64(x.tag, 100 + i);
	}
	ASSERT_RC(potad_lookup(s, end - 1, &x), -ENOENT);
	ASSERT_RC(potad_lookup(s, end - 4 * KiB, &x), -ENOENT);
	ASSERT_RC(potad_lookup(s, end, &x), -ERANGE);
	ASSERT_RC(potad_lookup(s, base - 1, &x), -ERANGE);
	ASSERT_RC(potad_lookup(s, 0, &x), -ERANGE);
	ASSERT_RC(potad_lookup(s, UINT64_MAX, &x), -ERANGE);
	/* A freed extent's bytes are free again. */
	must_free(s, e[1].handle);
	ASSERT_RC(potad_lookup(s, e[1].offset, &x), -ENOENT);
	ASSERT_RC(potad_lookup(s, e[1].offset + e[1].length - 1, &x), -ENOENT);
	ASSERT_RC(potad_lookup(s, e[2].offset, &x), 0);
	same_extent(&e[2], &x);
	destroy(s);
}
END_TEST

START_TEST(extent_next_walk)
{
	uint64_t base = 64 * KiB;
	struct potad_space *s = mk(base, MiB, 12);
	struct potad_extent e[4], all[8], x;

	e[0] = must_claim(s, base + 8 * KiB, 4 * KiB);
	e[1] = must_claim(s, base + 12 * KiB, 20 * KiB);
	e[2] = must_claim(s, base + 512 * KiB, 4 * KiB);
	e[3] = must_claim(s, base + MiB - 4 * KiB, 4 * KiB);
	ASSERT_U64(list_extents(s, all, 8), 4);
	for (int i = 0; i < 4; i++)
		same_extent(&e[i], &all[i]);
	/* An offset below the base starts from the first extent. */
	ASSERT_RC(potad_extent_next(s, 0, &x), 0);
	same_extent(&e[0], &x);
	ASSERT_RC(potad_extent_next(s, base, &x), 0);
	same_extent(&e[0], &x);
	ASSERT_RC(potad_extent_next(s, e[0].offset, &x), 0);
	same_extent(&e[0], &x);
	/* Starting inside an extent skips to the next one. */
	ASSERT_RC(potad_extent_next(s, e[1].offset + 1, &x), 0);
	same_extent(&e[2], &x);
	ASSERT_RC(potad_extent_next(s, e[3].offset, &x), 0);
	same_extent(&e[3], &x);
	ASSERT_RC(potad_extent_next(s, e[3].offset + 1, &x), -ENOENT);
	ASSERT_RC(potad_extent_next(s, UINT64_MAX, &x), -ENOENT);
	for (int i = 0; i < 4; i++)
		must_free(s, e[i].handle);
	ASSERT_RC(potad_extent_next(s, base, &x), -ENOENT);
	destroy(s);
}
END_TEST

struct walk {
	int calls;
	int stop_after;
	int ret;
	struct potad_extent seen[16];
};

static int walk_fn(const struct potad_extent *e, void *arg)
{
	struct walk *w = arg;

	ck_assert_msg(w->calls < 16, "too many callbacks: %d", w->calls);
	w->seen[w->calls++] = *e;
	if (w->stop_after && w->calls == w->stop_after)
		return w->ret;
	return 0;
}

START_TEST(extent_foreach_owner)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent e[6];
	struct potad_alloc_req r;
	struct walk w;
	static const uint32_t owners[6] = {1, 2, 1, 3, 1, 2};

	for (int i = 0; i < 6; i++) {
		r = req_of(4 * KiB, 0, POTAD_ALLOC_FIXED);
		r.at = (uint64_t)(5 - i) * 64 * KiB;
		r.owner = owners[5 - i];
		e[5 - i] = must(s, &r);
	}
	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach(s, 0, 0, walk_fn, &w), 0);
	ck_assert_int_eq(w.calls, 6);
	for (int i = 0; i < 6; i++)
		same_extent(&e[i], &w.seen[i]);

	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach(s, 1, 1, walk_fn, &w), 0);
	ck_assert_int_eq(w.calls, 3);
	same_extent(&e[0], &w.seen[0]);
	same_extent(&e[2], &w.seen[1]);
	same_extent(&e[4], &w.seen[2]);

	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach(s, 1, 2, walk_fn, &w), 0);
	ck_assert_int_eq(w.calls, 2);
	same_extent(&e[1], &w.seen[0]);
	same_extent(&e[5], &w.seen[1]);

	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach(s, 1, 42, walk_fn, &w), 0);
	ck_assert_int_eq(w.calls, 0);

	/* Owner 0 with owner_only set means owner 0, not everyone. */
	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach(s, 1, 0, walk_fn, &w), 0);
	ck_assert_int_eq(w.calls, 0);

	/* Early stop returns the callback's value. */
	memset(&w, 0, sizeof(w));
	w.stop_after = 2;
	w.ret = 42;
	ASSERT_RC(potad_extent_foreach(s, 0, 0, walk_fn, &w), 42);
	ck_assert_int_eq(w.calls, 2);
	memset(&w, 0, sizeof(w));
	w.stop_after = 2;
	w.ret = -5;
	ASSERT_RC(potad_extent_foreach(s, 1, 1, walk_fn, &w), -5);
	ck_assert_int_eq(w.calls, 2);
	same_extent(&e[2], &w.seen[1]);

	/* From an offset: the extents that start at or after it. */
	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach_from(s, e[2].offset, 0, 0, walk_fn,
					    &w), 0);
	ck_assert_int_eq(w.calls, 4);
	same_extent(&e[2], &w.seen[0]);
	same_extent(&e[5], &w.seen[3]);
	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach_from(s, e[2].offset + 1, 1, 1, walk_fn,
					    &w), 0);
	ck_assert_int_eq(w.calls, 1);
	same_extent(&e[4], &w.seen[0]);
	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach_from(s, e[5].offset + 1, 0, 0, walk_fn,
					    &w), 0);
	ASSERT_RC(potad_extent_foreach_from(s, UINT64_MAX, 0, 0, walk_fn, &w),
		  0);
	ck_assert_int_eq(w.calls, 0);
	for (int i = 0; i < 6; i++)
		must_free(s, e[i].handle);
	memset(&w, 0, sizeof(w));
	ASSERT_RC(potad_extent_foreach(s, 0, 0, walk_fn, &w), 0);
	ck_assert_int_eq(w.calls, 0);
	destroy(s);
}
END_TEST

/*
 * Poison
 */

struct hits {
	int n;
	struct potad_space *sp[16];
	struct potad_extent e[16];
};

static void hit_fn(struct potad_space *s, const struct potad_extent *e,
		   void *arg)
{
	struct hits *h = arg;

	ck_assert_msg(h->n < 16, "too many poison callbacks: %d", h->n);
	h->sp[h->n] = s;
	h->e[h->n++] = *e;
}

/* Allocate single units until the space is full; none may touch poison
 * and none may overlap another. */
static int fill_units(struct potad_space *s, uint64_t *handles, int max)
{
	struct potad_alloc_req r = req_of(1, 0, 0);
	struct potad_extent e;
	int n = 0, rc;

	while ((rc = potad_alloc(s, &r, &e)) == 0) {
		ck_assert_msg(n < max, "more than %d units handed out", max);
		ck_assert_msg(!potad_is_poisoned(s, e.offset, e.length),
			      "extent at %#" PRIx64 " is poisoned", e.offset);
		handles[n++] = e.handle;
	}
	ASSERT_RC(rc, -ENOSPC);
	CHECK_OK(s);
	return n;
}

static void free_all(struct potad_space *s, const uint64_t *handles, int n)
{
	for (int i = 0; i < n; i++)
		ASSERT_RC(potad_free(s, handles[i], NULL), 0);
	CHECK_OK(s);
}

START_TEST(poison_free_space)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent all[256], e;
	struct potad_stats st;
	struct hits h;
	uint64_t handles[256];
	int n;

	memset(&h, 0, sizeof(h));
	ASSERT_RC(potad_poison(s, 512 * KiB, 8 * KiB, hit_fn, &h), 0);
	ck_assert_int_eq(h.n, 0);
	CHECK_OK(s);
	st = stats(s);
	ASSERT_U64(st.poison_units, 2);
	ASSERT_U64(st.used_units, 0);
	EXPECT_FREE(s, {0, 128}, {130, 256});
	ck_assert_int_eq(potad_is_poisoned(s, 512 * KiB, 8 * KiB), 1);
	ck_assert_int_eq(potad_is_poisoned(s, 516 * KiB, 1), 1);
	ck_assert_int_eq(potad_is_poisoned(s, 0, MiB), 1);
	ck_assert_int_eq(potad_is_poisoned(s, 504 * KiB, 8 * KiB), 0);
	ck_assert_int_eq(potad_is_poisoned(s, 520 * KiB, 4 * KiB), 0);
	ck_assert_int_eq(potad_is_poisoned(s, 508 * KiB, 8 * KiB), 1);
	ASSERT_RC(potad_lookup(s, 512 * KiB, &e), -ENOENT);
	ASSERT_RC(potad_claim(s, 512 * KiB, 4 * KiB, 0, 0, &e), -EBUSY);
	ASSERT_RC(potad_claim(s, 508 * KiB, 8 * KiB, 0, 0, &e), -EBUSY);
	CHECK_OK(s);

	/* One byte poisons the unit that holds it. */
	ASSERT_RC(potad_poison(s, 600 * KiB, 1, NULL, NULL), 0);
	ASSERT_U64(stats(s).poison_units, 3);
	ck_assert_int_eq(potad_is_poisoned(s, 600 * KiB + 4095, 1), 1);
	ck_assert_int_eq(potad_is_poisoned(s, 604 * KiB, 1), 0);
	EXPECT_FREE(s, {0, 128}, {130, 150}, {151, 256});

	/* Poisoning poisoned units again changes nothing. */
	ASSERT_RC(potad_poison(s, 512 * KiB, 4 * KiB, NULL, NULL), 0);
	ASSERT_U64(stats(s).poison_units, 3);
	EXPECT_FREE(s, {0, 128}, {130, 150}, {151, 256});

	n = fill_units(s, handles, 256);
	ck_assert_int_eq(n, 253);
	ASSERT_U64(list_extents(s, all, 256), 253);
	for (int i = 0; i < n; i++)
		ck_assert_msg((all[i].offset + all[i].length <= 512 * KiB ||
			       all[i].offset >= 520 * KiB) &&
				  all[i].offset != 600 * KiB,
			      "extent at %#" PRIx64 " overlaps the poison",
			      all[i].offset);
	free_all(s, handles, n);
	EXPECT_FREE(s, {0, 128}, {130, 150}, {151, 256});
	/* A large request cannot straddle the poison. */
	e = must_alloc(s, 512 * KiB, 0, 0);
	ASSERT_U64(e.offset, 0);
	{
		struct potad_alloc_req r = req_of(424 * KiB, 0, 0);

		refuse(s, &r, -ENOSPC, "424 KiB with 420 KiB free at most");
	}
	must_free(s, e.handle);
	destroy(s);
}
END_TEST

START_TEST(poison_extents)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b, c, d, x;
	struct potad_stats st;
	struct hits h;
	uint64_t handles[256];
	int n;

	a = must_claim(s, 0, 16 * KiB);
	b = must_claim(s, 16 * KiB, 16 * KiB);
	c = must_claim(s, 32 * KiB, 16 * KiB);
	d = must_claim(s, 64 * KiB, 16 * KiB);

	/* Over the tail of a and the head of b. */
	memset(&h, 0, sizeof(h));
	ASSERT_RC(potad_poison(s, 8 * KiB, 16 * KiB, hit_fn, &h), 2);
	ck_assert_int_eq(h.n, 2);
	ck_assert_ptr_eq(h.sp[0], s);
	ck_assert_ptr_eq(h.sp[1], s);
	ASSERT_U64(h.e[0].handle, a.handle);
	ASSERT_U64(h.e[1].handle, b.handle);
	ck_assert_msg(h.e[0].flags & POTAD_EXTENT_POISONED,
		      "reported extent lacks POISONED: flags %#x",
		      h.e[0].flags);
	ck_assert_msg(h.e[1].flags & POTAD_EXTENT_POISONED,
		      "reported extent lacks POISONED: flags %#x",
		      h.e[1].flags);
	CHECK_OK(s);
	st = stats(s);
	ASSERT_U64(st.poison_units, 4);
	ASSERT_U64(st.used_units, 16);
	EXPECT_FREE(s, {12, 16}, {20, 256});
	ASSERT_RC(potad_get(s, a.handle, &x), 0);
	ck_assert_msg(x.flags & POTAD_EXTENT_POISONED, "a: flags %#x", x.flags);
	ASSERT_RC(potad_get(s, c.handle, &x), 0);
	ck_assert_msg(!(x.flags & POTAD_EXTENT_POISONED), "c: flags %#x",
		      x.flags);
	/* Held poisoned units still belong to their extent. */
	ASSERT_RC(potad_lookup(s, 8 * KiB, &x), 0);
	ASSERT_U64(x.handle, a.handle);

	/* A range over c, free space and d reports each once, in order. */
	memset(&h, 0, sizeof(h));
	ASSERT_RC(potad_poison(s, 44 * KiB, 24 * KiB, hit_fn, &h), 2);
	ck_assert_int_eq(h.n, 2);
	ASSERT_U64(h.e[0].handle, c.handle);
	ASSERT_U64(h.e[1].handle, d.handle);
	/* Each extent of [0, 80K) has unpoisoned units left: one report
	 * each, and none for the poisoned free units 12..15. */
	memset(&h, 0, sizeof(h));
	ASSERT_RC(potad_poison(s, 0, 4 * KiB, NULL, NULL), 1);
	ASSERT_RC(potad_poison(s, 0, 80 * KiB, hit_fn, &h), 4);
	ck_assert_int_eq(h.n, 4);
	ASSERT_U64(h.e[0].handle, a.handle);
	ASSERT_U64(h.e[1].handle, b.handle);
	ASSERT_U64(h.e[2].handle, c.handle);
	ASSERT_U64(h.e[3].handle, d.handle);
	CHECK_OK(s);
	/* Everything in [0, 80K) is poisoned now: 20 units. */
	st = stats(s);
	ASSERT_U64(st.poison_units, 20);
	ASSERT_U64(st.used_units, 16);
	EXPECT_FREE(s, {20, 256});
	must_free(s, a.handle);
	must_free(s, b.handle);
	must_free(s, c.handle);
	must_free(s, d.handle);
	st = stats(s);
	ASSERT_U64(st.poison_units, 20);
	ASSERT_U64(st.used_units, 0);
	EXPECT_FREE(s, {20, 256});
	destroy(s);

	/* Freeing a partly poisoned extent returns only its good units. */
	s = mk(0, MiB, 12);
	a = must_claim(s, 0, 16 * KiB);
	ASSERT_RC(potad_poison(s, 8 * KiB, 4 * KiB, NULL, NULL), 1);
	must_free(s, a.handle);
	st = stats(s);
	ASSERT_U64(st.poison_units, 1);
	ASSERT_U64(st.free_units, 255);
	EXPECT_FREE(s, {0, 2}, {3, 256});
	ASSERT_RC(potad_lookup(s, 8 * KiB, &x), -ENOENT);
	ASSERT_RC(potad_claim(s, 0, 16 * KiB, 0, 0, &x), -EBUSY);
	n = fill_units(s, handles, 256);
	ck_assert_int_eq(n, 255);
	free_all(s, handles, n);
	EXPECT_FREE(s, {0, 2}, {3, 256});
	destroy(s);
}
END_TEST

/* A refused poison: the wanted error, and nothing changed. */
static void refuse_poison(struct potad_space *s, uint64_t off, uint64_t len,
			  int want, const char *what)
{
	struct potad_stats a = stats(s), b;
	struct hits h;
	int rc;

	memset(&h, 0, sizeof(h));
	rc = potad_poison(s, off, len, hit_fn, &h);
	ck_assert_msg(rc == want,
		      "%s: potad_poison(%#" PRIx64 ", %#" PRIx64
		      ") expected %d (%s), got %d (%s)",
		      what, off, len, want, ename(want), rc, ename(rc));
	ck_assert_int_eq(h.n, 0);
	b = stats(s);
	stats_same(&a, &b, what);
	CHECK_OK(s);
}

START_TEST(poison_refusals)
{
	uint64_t base = 64 * KiB, end = base + MiB;
	struct potad_space *s = mk(base, MiB, 12);
	struct potad_extent a = must_alloc(s, 64 * KiB, 0, 0);

	refuse_poison(s, a.offset, 0, -EINVAL, "length 0");
	refuse_poison(s, a.offset + 1, 4 * KiB, -EINVAL, "unaligned offset");
	refuse_poison(s, a.offset + 2048, 4 * KiB, -EINVAL,
		      "offset on half a unit");
	refuse_poison(s, end, 4 * KiB, -ERANGE, "at the end");
	refuse_poison(s, end - 4 * KiB, 8 * KiB, -ERANGE, "across the end");
	refuse_poison(s, 0, 4 * KiB, -ERANGE, "below the base");
	refuse_poison(s, base - 4 * KiB, 8 * KiB, -ERANGE,
		      "starting below the base");
	refuse_poison(s, base, UINT64_MAX - 4095, -ERANGE,
		      "length wrapping past 2^64");
	refuse_poison(s, UINT64_MAX - 4095, 4 * KiB, -ERANGE, "near 2^64");
	ck_assert_int_eq(potad_is_poisoned(s, base, MiB), 0);
	must_free(s, a.handle);
	destroy(s);
}
END_TEST

/*
 * Child spaces
 */

START_TEST(child_basic)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL, *c2 = NULL;
	struct potad_extent a, x, b, ce, d;
	struct potad_stats ps, cs, before, after;

	a = must_alloc(s, MiB, 0, 0);
	x = must_alloc(s, MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, a.handle, 12, &c), 0);
	ck_assert_ptr_nonnull(c);
	CHECK_OK(s);
	CHECK_OK(c);
	ck_assert_ptr_eq(potad_space_parent(c), s);
	ck_assert_ptr_null(potad_space_parent(s));
	ck_assert_ptr_eq(potad_child_of(s, a.handle), c);
	ck_assert_ptr_null(potad_child_of(s, x.handle));
	ASSERT_RC(potad_get(s, a.handle, &b), 0);
	ck_assert_uint_eq(b.type, POTAD_TYPE_CHILD);
	ASSERT_RC(potad_lookup(s, a.offset + 4 * KiB, &b), 0);
	ck_assert_uint_eq(b.type, POTAD_TYPE_CHILD);
	ps = stats(s);
	ck_assert_uint_eq(ps.children, 1);
	ASSERT_U64(ps.extents, 2);
	cs = stats(c);
	ASSERT_U64(cs.base, a.offset);
	ASSERT_U64(cs.size, MiB);
	ASSERT_U64(cs.granule, 4 * KiB);
	ASSERT_U64(cs.units, 256);
	ASSERT_U64(cs.extents, 0);
	EXPECT_FREE(c, {0, 256});

	/* Allocation in the child leaves the parent alone. */
	ce = must_alloc(c, 64 * KiB, 0, 0);
	ASSERT_U64(ce.offset, a.offset);
	after = stats(s);
	stats_same(&ps, &after, "parent after a child allocation");
	ASSERT_RC(potad_lookup(c, ce.offset, &b), 0);
	same_extent(&ce, &b);

	/* Refusals: second child, smaller granule, bad handles. */
	before = stats(s);
	ASSERT_RC(potad_child_new(s, a.handle, 12, &c2), -EBUSY);
	ASSERT_RC(potad_child_new(s, x.handle, 11, &c2), -EINVAL);
	ASSERT_RC(potad_child_new(s, x.handle, 31, &c2), -EINVAL);
	ASSERT_RC(potad_child_new(s, with_type(x.handle, 0), 12, &c2), -EINVAL);
	after = stats(s);
	stats_same(&before, &after, "refused potad_child_new");
	CHECK_OK(s);
	ck_assert_ptr_null(potad_child_of(s, x.handle));
	d = must_alloc(s, 4 * KiB, 0, 0);
	must_free(s, d.handle);
	before = stats(s);
	ASSERT_RC(potad_child_new(s, d.handle, 12, &c2), -ESTALE);
	after = stats(s);
	stats_same(&before, &after, "potad_child_new on a freed handle");
	/* A child granule the extent's base is not aligned to. */
	d = must_claim(s, 5 * MiB + 4 * KiB, 64 * KiB);
	before = stats(s);
	ASSERT_RC(potad_child_new(s, d.handle, 13, &c2), -EINVAL);
	after = stats(s);
	stats_same(&before, &after, "refused potad_child_new");
	CHECK_OK(s);
	must_free(s, d.handle);

	/* A coarser child granule over an aligned extent. */
	d = must_alloc(s, 4 * MiB, 2 * MiB, 0);
	ASSERT_RC(potad_child_new(s, d.handle, 21, &c2), 0);
	cs = stats(c2);
	ASSERT_U64(cs.granule, 2 * MiB);
	ASSERT_U64(cs.units, 2);
	ck_assert_uint_eq(stats(s).children, 2);
	destroy(c2);
	ASSERT_RC(potad_get(s, d.handle, &b), -ESTALE);

	must_free(c, ce.handle);
	destroy(c);
	ck_assert_uint_eq(stats(s).children, 0);
	must_free(s, x.handle);
	EXPECT_FREE(s, {0, 4096});
	destroy(s);
}
END_TEST

START_TEST(child_poison)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL, *z = NULL;
	struct potad_extent a, e1, e2, e3, zz;
	struct potad_stats cs;
	struct hits h;
	uint64_t handles[256];
	int rc, n, seen1 = -1, seen2 = -1;

	a = must_alloc(s, MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, a.handle, 12, &c), 0);
	e1 = must_alloc(c, 64 * KiB, 0, 0);
	e2 = must_alloc(c, 64 * KiB, 0, 0);
	e3 = must_alloc(c, 64 * KiB, 0, 0);
	ASSERT_U64(e2.offset, a.offset + 64 * KiB);

	/* Poison in the parent over the end of e1 and the start of e2. */
	memset(&h, 0, sizeof(h));
	rc = potad_poison(s, a.offset + 32 * KiB, 64 * KiB, hit_fn, &h);
	ck_assert_msg(rc >= 2,
		      "poison reaching a child: expected >= 2 "
		      "reports, got %d (%s)",
		      rc, ename(rc));
	ck_assert_int_eq(rc, h.n);
	for (int i = 0; i < h.n; i++) {
		if (h.sp[i] == c && h.e[i].handle == e1.handle)
			seen1 = i;
		if (h.sp[i] == c && h.e[i].handle == e2.handle)
			seen2 = i;
		ck_assert_msg(h.sp[i] != c || h.e[i].handle != e3.handle,
			      "e3 reported but not poisoned");
		ck_assert_msg(h.e[i].flags & POTAD_EXTENT_POISONED,
			      "report %d lacks POISONED: flags %#x", i,
			      h.e[i].flags);
	}
	ck_assert_msg(seen1 >= 0,
		      "child extent e1 not reported with the child");
	ck_assert_msg(seen2 > seen1,
		      "child extent e2 not reported after e1 "
		      "(e1 at %d, e2 at %d)",
		      seen1, seen2);
	CHECK_OK(s);
	CHECK_OK(c);
	ck_assert_int_eq(potad_is_poisoned(c, a.offset + 32 * KiB, 4 * KiB), 1);
	ck_assert_int_eq(potad_is_poisoned(s, a.offset + 32 * KiB, 4 * KiB), 1);
	ck_assert_int_eq(potad_is_poisoned(c, a.offset + 128 * KiB, 64 * KiB),
			 0);
	ASSERT_U64(stats(c).poison_units, 16);
	ASSERT_U64(stats(s).poison_units, 16);

	/* Poison in the parent over the child's free space. */
	memset(&h, 0, sizeof(h));
	rc = potad_poison(s, a.offset + 512 * KiB, 4 * KiB, hit_fn, &h);
	ck_assert_int_eq(rc, h.n);
	for (int i = 0; i < h.n; i++)
		ck_assert_msg(h.sp[i] != c,
			      "a free child unit was reported as an extent");
	CHECK_OK(s);
	CHECK_OK(c);
	cs = stats(c);
	ASSERT_U64(cs.poison_units, 17);
	EXPECT_FREE(c, {(a.offset >> 12) + 48, (a.offset >> 12) + 128},
		    {(a.offset >> 12) + 129, (a.offset >> 12) + 256});

	/* The child never hands out its poisoned units. */
	must_free(c, e1.handle);
	must_free(c, e2.handle);
	cs = stats(c);
	ASSERT_U64(cs.poison_units, 17);
	n = fill_units(c, handles, 256);
	ck_assert_int_eq(n, 256 - 16 - 17);
	free_all(c, handles, n);
	must_free(c, e3.handle);

	/* Destroying the child leaves the poisoned units poisoned in the
	 * parent. */
	destroy(c);
	ASSERT_U64(stats(s).poison_units, 17);
	ASSERT_U64(stats(s).free_units, 4096 - 17);
	ASSERT_RC(potad_lookup(s, a.offset + 32 * KiB, &e1), -ENOENT);
	CHECK_OK(s);

	/* An extent poisoned before it hosts a child passes it on. */
	zz = must_alloc(s, MiB, MiB, 0);
	ASSERT_RC(potad_poison(s, zz.offset + 4 * KiB, 4 * KiB, NULL, NULL), 1);
	ASSERT_RC(potad_child_new(s, zz.handle, 12, &z), 0);
	cs = stats(z);
	ASSERT_U64(cs.poison_units, 1);
	ASSERT_U64(cs.free_units, 255);
	ck_assert_int_eq(potad_is_poisoned(z, zz.offset + 4 * KiB, 1), 1);
	CHECK_OK(z);
	destroy(z);
	destroy(s);
}
END_TEST

START_TEST(child_destroy)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL, *gc = NULL;
	struct potad_extent a, b, ce;
	struct potad_stats before, after;
	struct hits h;
	int found = 0;

	before = stats(s);
	a = must_alloc(s, 2 * MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, a.handle, 12, &c), 0);
	ce = must_alloc(c, MiB, 0, 0);
	ASSERT_RC(potad_child_new(c, ce.handle, 12, &gc), 0);
	ck_assert_ptr_eq(potad_space_parent(gc), c);
	ck_assert_ptr_eq(potad_child_of(c, ce.handle), gc);
	b = must_alloc(gc, 4 * KiB, 0, 0);
	CHECK_OK(gc);

	/* Poison in the top space reaches the grandchild's extent. */
	memset(&h, 0, sizeof(h));
	ck_assert_int_ge(potad_poison(s, b.offset, 4 * KiB, hit_fn, &h), 1);
	for (int i = 0; i < h.n; i++)
		if (h.sp[i] == gc && h.e[i].handle == b.handle)
			found = 1;
	ck_assert_msg(found, "grandchild extent not reported with its space");
	ck_assert_int_eq(potad_is_poisoned(gc, b.offset, 4 * KiB), 1);

	ASSERT_RC(potad_space_destroy(s), -EBUSY);
	CHECK_OK(s);
	ASSERT_RC(potad_space_destroy(c), -EBUSY);
	CHECK_OK(c);
	destroy(gc);
	ASSERT_RC(potad_get(c, ce.handle, &b), -ESTALE);
	ck_assert_uint_eq(stats(c).children, 0);
	destroy(c);
	after = stats(s);
	ck_assert_uint_eq(after.children, 0);
	ASSERT_U64(after.extents, 0);
	ASSERT_U64(after.poison_units, 1);
	ASSERT_U64(after.free_units, before.free_units - 1);
	ASSERT_RC(potad_get(s, a.handle, &b), -ESTALE);
	destroy(s);
}
END_TEST

/*
 * Statistics and fragmentation
 */

START_TEST(stats_buddyinfo)
{
	struct potad_space *s = mk(0, 64 * MiB, 12);
	struct potad_extent mib[64];
	struct potad_stats st;

	st = stats(s);
	ASSERT_U64(st.free_per_order[14], 1);
	ASSERT_U64(st.free_blocks, 1);
	ASSERT_U64(st.largest_free_block, 64 * MiB);
	ck_assert_uint_eq(st.max_order, 14);
	fill_mib(s, mib, 64);
	st = stats(s);
	ASSERT_U64(st.largest_free_block, 0);
	ASSERT_U64(st.used_units, 16384);
	ASSERT_U64(st.extents, 64);
	ck_assert_msg(st.extent_bytes > 0 && st.extent_bytes <= st.meta_bytes,
		      "extent_bytes %" PRIu64 ", meta_bytes %" PRIu64,
		      st.extent_bytes, st.meta_bytes);
	/* Free MiB 3, 5..7 and 16..31: blocks of 1 M, 1 M + 2 M, 16 M. */
	must_free(s, mib[3].handle);
	for (int i = 5; i <= 7; i++)
		must_free(s, mib[i].handle);
	for (int i = 16; i <= 31; i++)
		must_free(s, mib[i].handle);
	st = stats(s);
	ASSERT_U64(st.free_per_order[8], 2);
	ASSERT_U64(st.free_per_order[9], 1);
	ASSERT_U64(st.free_per_order[12], 1);
	ASSERT_U64(st.free_blocks, 4);
	ASSERT_U64(st.largest_free_block, 16 * MiB);
	EXPECT_FREE(s, {3 * 256, 4 * 256}, {5 * 256, 8 * 256},
		    {16 * 256, 32 * 256});
	destroy(s);
}
END_TEST

START_TEST(frag_score)
{
	struct potad_space *s;
	struct potad_extent u[64];
	uint64_t run;
	double score;

	/* One free run scores 0, however many blocks it takes. */
	s = mk(0, MiB, 12);
	potad_space_frag(s, &run, &score);
	ASSERT_U64(run, MiB);
	ck_assert_double_eq_tol(score, 0.0, 1e-9);
	destroy(s);
	s = mk(3 * 4 * KiB, 13 * 4 * KiB, 12);
	potad_space_frag(s, &run, &score);
	ASSERT_U64(run, 13 * 4 * KiB);
	ck_assert_double_eq_tol(score, 0.0, 1e-9);
	u[0] = must_alloc(s, 4 * KiB, 0, 0);
	potad_space_frag(s, &run, &score);
	ASSERT_U64(run, 12 * 4 * KiB);
	ck_assert_double_eq_tol(score, 0.0, 1e-9);
	destroy(s);

	/* Every other unit free: all free space in single units scores 1. */
	s = mk(0, 256 * KiB, 12);
	for (int i = 0; i < 64; i++)
		u[i] = must_alloc(s, 4 * KiB, 0, 0);
	potad_space_frag(s, &run, &score);
	ASSERT_U64(run, 0);
	ck_assert_msg(score >= 0.0 && score <= 1.0, "score of a full space: %f",
		      score);
	for (int i = 0; i < 64; i += 2)
		must_free(s, u[i].handle);
	potad_space_frag(s, &run, &score);
	ASSERT_U64(run, 4 * KiB);
	ck_assert_double_eq_tol(score, 1.0, 1e-9);

	/* Runs of 3 and 5 units among singles: strictly between. */
	must_free(s, u[1].handle);
	must_free(s, u[11].handle);
	must_free(s, u[13].handle);
	potad_space_frag(s, &run, &score);
	/* Units 0..2 and 10..14 are free runs now. */
	ASSERT_U64(run, 5 * 4 * KiB);
	ck_assert_msg(score > 0.0 && score < 1.0,
		      "mixed runs: expected 0 < score < 1, got %f", score);
	/* 0-1 | 2 and 10-11 | 12-13 | 14: the largest block is 2 units. */
	ASSERT_U64(stats(s).largest_free_block, 2 * 4 * KiB);
	/* Freeing the rest merges everything back into one run. */
	for (int i = 3; i < 64; i += 2)
		if (i != 11 && i != 13)
			must_free(s, u[i].handle);
	potad_space_frag(s, &run, &score);
	ASSERT_U64(run, 256 * KiB);
	ck_assert_double_eq_tol(score, 0.0, 1e-9);
	EXPECT_FREE(s, {0, 64});
	destroy(s);
}
END_TEST

/* The largest run can be longer than the largest block. */
START_TEST(frag_largest_run)
{
	struct potad_space *s = mk(0, 64 * MiB, 12);
	struct potad_extent mib[64];
	uint64_t run;
	double score;

	fill_mib(s, mib, 64);
	for (int i = 1; i <= 8; i++)
		must_free(s, mib[i].handle);
	must_free(s, mib[20].handle);
	potad_space_frag(s, &run, &score);
	ASSERT_U64(run, 8 * MiB);
	ASSERT_U64(stats(s).largest_free_block, 4 * MiB);
	ck_assert_msg(score > 0.0 && score < 1.0,
		      "runs of 8 MiB and 1 MiB: expected 0 < score < 1, got %f",
		      score);
	destroy(s);
}
END_TEST

/*
 * 64-bit edges
 */

START_TEST(edge_top_byte_granule)
{
	uint64_t base = UINT64_MAX - MiB; /* 2^64 - 2^20 - 1 */
	struct potad_space *s = mk(base, MiB, 0);
	struct potad_extent a, b, x;
	struct potad_stats st = stats(s);
	struct potad_alloc_req r;

	ASSERT_U64(st.units, MiB);
	EXPECT_FREE(s, {base, UINT64_MAX});
	ASSERT_U64(st.free_per_order[0], 2);
	for (unsigned k = 1; k < 20; k++)
		ASSERT_U64(st.free_per_order[k], 1);

	a = must_alloc(s, 1, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(a.offset, UINT64_MAX - 1);
	ASSERT_RC(potad_lookup(s, UINT64_MAX - 1, &x), 0);
	same_extent(&a, &x);
	ASSERT_RC(potad_lookup(s, UINT64_MAX, &x), -ERANGE);
	ASSERT_RC(potad_extent_next(s, UINT64_MAX - 1, &x), 0);
	same_extent(&a, &x);
	ASSERT_RC(potad_extent_next(s, UINT64_MAX, &x), -ENOENT);
	b = must_alloc(s, 1, 0, 0);
	ASSERT_U64(b.offset, base);
	r = req_of(1, 0, POTAD_ALLOC_FIXED);
	r.at = UINT64_MAX;
	refuse(s, &r, -ERANGE, "FIXED at 2^64 - 1");
	r.at = UINT64_MAX - 1;
	refuse(s, &r, -EBUSY, "FIXED over the last unit");
	r.at = UINT64_MAX - 2;
	r.size = 2;
	refuse(s, &r, -EBUSY, "FIXED across the last unit");
	must_free(s, a.handle);
	must_free(s, b.handle);
	r.size = 3;
	refuse(s, &r, -ERANGE, "FIXED across 2^64 - 1");

	/* The whole space, assembled across 21 blocks. */
	a = must_alloc(s, MiB, 0, 0);
	ASSERT_U64(a.offset, base);
	EXPECT_NO_FREE(s);
	ASSERT_RC(potad_lookup(s, UINT64_MAX - 1, &x), 0);
	ASSERT_U64(x.handle, a.handle);
	must_free(s, a.handle);
	EXPECT_FREE(s, {base, UINT64_MAX});

	/* A range up to the very end, top-down. */
	r = req_of(16, 16, POTAD_ALLOC_TOPDOWN);
	r.min = UINT64_MAX - 64;
	r.max = UINT64_MAX;
	a = must(s, &r);
	ASSERT_U64(a.offset, UINT64_MAX - 31);
	must_free(s, a.handle);

	/* Poison the last unit. */
	refuse_poison(s, UINT64_MAX, 1, -ERANGE, "poison at 2^64 - 1");
	refuse_poison(s, UINT64_MAX - 1, 2, -ERANGE, "poison across 2^64 - 1");
	ASSERT_RC(potad_poison(s, UINT64_MAX - 1, 1, NULL, NULL), 0);
	CHECK_OK(s);
	ck_assert_int_eq(potad_is_poisoned(s, UINT64_MAX - 1, 1), 1);
	ck_assert_int_eq(potad_is_poisoned(s, UINT64_MAX - 2, 1), 0);
	EXPECT_FREE(s, {base, UINT64_MAX - 1});
	r = req_of(MiB, 0, 0);
	refuse(s, &r, -ENOSPC, "whole space with its last unit poisoned");
	a = must_alloc(s, MiB - 1, 0, 0);
	ASSERT_U64(a.offset, base);
	must_free(s, a.handle);
	destroy(s);
}
END_TEST

START_TEST(edge_top_page_granule)
{
	/* Units 1 .. 2^52 - 2: the largest block is 2^50 units (2^62 bytes),
	 * two of them, at 2^62 and 2^63. */
	struct potad_space *s = mk(4096, UINT64_MAX - 4096, 12);
	uint64_t end = UINT64_MAX - 4095;
	struct potad_extent a, b, c, x;
	struct potad_alloc_req r;

	/* 2^63 bytes fit only as a run across many blocks. */
	a = must_alloc(s, P2(63), 0, 0);
	must_free(s, a.handle);
	r = req_of(P2(63), 0, POTAD_ALLOC_WHOLE);
	refuse(s, &r, -ENOSPC, "WHOLE 2^63 with no 2^63 block inside");
	r = req_of(P2(63), P2(63), 0);
	refuse(s, &r, -ENOSPC, "2^63 at 2^63 alignment");
	r = req_of(UINT64_MAX, 0, 0);
	refuse(s, &r, -E2BIG, "size 2^64 - 1");
	r = req_of(end, 0, 0);
	refuse(s, &r, -E2BIG, "size up to the end, from 0");

	a = must_alloc(s, P2(62), 0, POTAD_ALLOC_WHOLE);
	ASSERT_U64(a.offset, P2(62));
	b = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(b.offset, end - 4096);
	c = must_alloc(s, P2(62), P2(62), 0);
	ASSERT_U64(c.offset, P2(63));
	ASSERT_RC(potad_lookup(s, UINT64_MAX, &x), -ERANGE);
	ASSERT_RC(potad_lookup(s, end, &x), -ERANGE);
	ASSERT_RC(potad_lookup(s, end - 1, &x), 0);
	same_extent(&b, &x);
	ASSERT_RC(potad_lookup(s, end - 4097, &x), -ENOENT);
	ASSERT_RC(potad_lookup(s, P2(63) - 1, &x), 0);
	same_extent(&a, &x);
	ASSERT_RC(potad_lookup(s, P2(63) + P2(62) - 1, &x), 0);
	same_extent(&c, &x);
	ASSERT_RC(potad_lookup(s, P2(63) + P2(62), &x), -ENOENT);
	ASSERT_RC(potad_extent_next(s, c.offset + 1, &x), 0);
	same_extent(&b, &x);
	ASSERT_RC(potad_extent_next(s, b.offset + 1, &x), -ENOENT);
	r = req_of(P2(62), P2(62), 0);
	refuse(s, &r, -ENOSPC, "a third 2^62 block");
	must_free(s, a.handle);
	must_free(s, b.handle);
	must_free(s, c.handle);
	EXPECT_FREE(s, {1, P2(52) - 1});
	destroy(s);
}
END_TEST

START_TEST(edge_whole_range)
{
	struct potad_space *s = mk(0, UINT64_MAX, 0);
	struct potad_extent a, b;
	struct potad_alloc_req r;

	a = must_alloc(s, P2(63), 0, 0);
	ASSERT_U64(a.offset, 0);
	b = must_alloc(s, 1, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(b.offset, UINT64_MAX - 1);
	must_free(s, a.handle);
	must_free(s, b.handle);
	/* All 2^64 - 1 bytes in one extent, assembled from 64 blocks. */
	a = must_alloc(s, UINT64_MAX, 0, 0);
	ASSERT_U64(a.offset, 0);
	ASSERT_U64(a.length, UINT64_MAX);
	EXPECT_NO_FREE(s);
	must_free(s, a.handle);
	/* WHOLE would need a 2^64-byte block. */
	r = req_of(UINT64_MAX, 0, POTAD_ALLOC_WHOLE);
	refuse(s, &r, -E2BIG, "WHOLE 2^64 - 1");
	r = req_of(P2(63) + 1, 0, POTAD_ALLOC_WHOLE);
	refuse(s, &r, -E2BIG, "WHOLE just above 2^63");
	r = req_of(1, P2(63), POTAD_ALLOC_TOPDOWN);
	a = must(s, &r);
	ASSERT_U64(a.offset, P2(63));
	must_free(s, a.handle);
	EXPECT_FREE(s, {0, UINT64_MAX});
	destroy(s);
}
END_TEST

/*
 * Journal replay: potad_place, generations, potad_poison_next
 */

static uint64_t mkhandle(unsigned type, uint32_t gen, uint32_t slot)
{
	return (uint64_t)type << 60 | (uint64_t)(gen & 0x0fffffffu) << 32 |
	       slot;
}

static struct potad_extent rec(uint64_t offset, uint64_t length, uint32_t gen,
			       uint32_t slot)
{
	struct potad_extent e;

	memset(&e, 0, sizeof(e));
	e.offset = offset;
	e.length = length;
	e.handle = mkhandle(POTAD_TYPE_EXTENT, gen, slot);
	e.owner = slot + 1;
	e.tag = 0x7a00 + gen;
	e.type = POTAD_TYPE_EXTENT;
	return e;
}

/* Place e and read it back by handle and by address. */
static void must_place(struct potad_space *s, const struct potad_extent *e)
{
	struct potad_extent g;
	int rc = potad_place(s, e);

	ck_assert_msg(rc == 0,
		      "potad_place([%#" PRIx64 ", +%#" PRIx64
		      ") handle %#" PRIx64 "): expected 0, got %d (%s)",
		      e->offset, e->length, e->handle, rc, ename(rc));
	CHECK_OK(s);
	ASSERT_RC(potad_get(s, e->handle, &g), 0);
	ASSERT_U64(g.offset, e->offset);
	ASSERT_U64(g.length, e->length);
	ASSERT_U64(g.handle, e->handle);
	ck_assert_uint_eq(g.owner, e->owner);
	ck_assert_uint_eq(g.tag, e->tag);
	ck_assert_uint_eq(g.type, POTAD_TYPE_EXTENT);
	ASSERT_U64(potad_is_poisoned(s, e->offset, e->length)
		       ? POTAD_EXTENT_POISONED
		       : 0,
		   g.flags);
	ASSERT_RC(potad_lookup(s, e->offset + e->length - 1, &g), 0);
	ASSERT_U64(g.handle, e->handle);
}

/* A refused placement: the wanted error, and nothing changed. */
static void refuse_place(struct potad_space *s, const struct potad_extent *e,
			 int want, const char *what)
{
	struct potad_stats a = stats(s), b;
	struct potad_extent g;
	int before = e ? potad_get(s, e->handle, &g) : 0, rc;

	rc = potad_place(s, e);
	ck_assert_msg(rc == want,
		      "%s: potad_place expected %d (%s), got %d (%s)", what,
		      want, ename(want), rc, ename(rc));
	b = stats(s);
	stats_same(&a, &b, what);
	if (e)
		ASSERT_RC(potad_get(s, e->handle, &g), before);
	CHECK_OK(s);
}

/* Two spaces hold the same free blocks, extents and poison. */
static void same_space(const struct potad_space *x, const struct potad_space *y)
{
	struct potad_stats a = stats(x), b = stats(y);
	size_t max = a.extents + 1, n;
	struct potad_extent *ex = calloc(max, sizeof(*ex));
	struct potad_extent *ey = calloc(max, sizeof(*ey));
	uint64_t off = 0, ps, pl, qs, ql;
	int rc;

	ck_assert_ptr_nonnull(ex);
	ck_assert_ptr_nonnull(ey);
	a.meta_bytes = b.meta_bytes;
	a.extent_bytes = b.extent_bytes;
	stats_same(&a, &b, "same_space");
	n = list_extents(x, ex, max);
	ASSERT_U64(list_extents(y, ey, max), n);
	for (size_t i = 0; i < n; i++)
		same_extent(&ex[i], &ey[i]);
	free(ex);
	free(ey);
	while ((rc = potad_poison_next(x, off, &ps, &pl)) == 0) {
		ASSERT_RC(potad_poison_next(y, off, &qs, &ql), 0);
		ASSERT_U64(qs, ps);
		ASSERT_U64(ql, pl);
		off = ps + pl;
	}
	ASSERT_RC(rc, -ENOENT);
	ASSERT_RC(potad_poison_next(y, off, &qs, &ql), -ENOENT);
	CHECK_OK(x);
	CHECK_OK(y);
}

START_TEST(place_fresh)
{
	struct potad_space *s = mk(0, MiB, 12), *ref = mk(0, MiB, 12);
	struct potad_extent e1 = rec(40 * KiB, 12 * KiB, 7, 5);
	struct potad_extent e2 = rec(MiB - 8 * KiB, 8 * KiB, 0, 0);
	struct potad_extent e3 = rec(0, 4 * KiB, 0x0fffffff, 300);
	struct potad_extent c, g;
	struct potad_stats st, rs;

	/* The free lists end up as a claim of the same range leaves them. */
	must_place(s, &e1);
	must_claim(ref, 40 * KiB, 12 * KiB);
	st = stats(s);
	rs = stats(ref);
	rs.meta_bytes = st.meta_bytes;
	rs.extent_bytes = st.extent_bytes;
	stats_same(&rs, &st, "placed and claimed");
	EXPECT_FREE(s, {0, 10}, {13, 256});
	ASSERT_U64(st.extents, 1);
	ASSERT_U64(st.used_units, 3);

	/* Slot 0 below it, slot 300 in a second slab chunk. */
	must_place(s, &e2);
	must_place(s, &e3);
	EXPECT_FREE(s, {1, 10}, {13, 254});
	st = stats(s);
	ASSERT_U64(st.extents, 3);
	ASSERT_U64(st.used_units, 6);
	ASSERT_U64(potad_space_gen_max(s), 0x0fffffff);
	/* Slots made on the way are free at the floor (0). */
	ASSERT_RC(potad_get(s, mkhandle(POTAD_TYPE_EXTENT, 0, 299), &g),
		  -ESTALE);
	ASSERT_RC(potad_get(s, mkhandle(POTAD_TYPE_EXTENT, 0, 301), &g),
		  -EINVAL);

	ASSERT_RC(potad_free(s, e1.handle, &g), 0);
	same_extent(&e1, &g);
	CHECK_OK(s);
	ASSERT_RC(potad_get(s, e1.handle, &g), -ESTALE);
	EXPECT_FREE(s, {1, 254});
	must_free(s, e2.handle);
	must_free(s, e3.handle);
	EXPECT_FREE(s, {0, 256});

	/* The rebuilt free-slot list hands out the lowest slot first. */
	c = must_alloc(s, 4 * KiB, 0, 0);
	ck_assert_uint_eq(POTAD_HANDLE_SLOT(c.handle), 0);
	ck_assert_uint_eq(POTAD_HANDLE_GEN(c.handle), 1);
	c = must_alloc(s, 4 * KiB, 0, 0);
	ck_assert_uint_eq(POTAD_HANDLE_SLOT(c.handle), 1);
	ck_assert_uint_eq(POTAD_HANDLE_GEN(c.handle), 0);
	destroy(s);
	destroy(ref);
}
END_TEST

START_TEST(place_poisoned)
{
	struct potad_space *a = mk(0, MiB, 12), *b = mk(0, MiB, 12);
	struct potad_extent x, y, g;
	uint64_t off = 0, ps, pl;
	struct hits h;

	/* In a: an extent over units 8..15, then poison across it, past its
	 * end and in free space. */
	x = must_claim(a, 32 * KiB, 32 * KiB);
	ASSERT_RC(potad_poison(a, 40 * KiB, 8 * KiB, NULL, NULL), 1);
	ASSERT_RC(potad_poison(a, 60 * KiB, 12 * KiB, NULL, NULL), 1);
	ASSERT_RC(potad_poison(a, 400 * KiB, 4 * KiB, NULL, NULL), 0);
	CHECK_OK(a);

	/* In b: the poison first, as a snapshot restores it, then the
	 * extent over poisoned and free units. */
	while (potad_poison_next(a, off, &ps, &pl) == 0) {
		memset(&h, 0, sizeof(h));
		ASSERT_RC(potad_poison(b, ps, pl, hit_fn, &h), 0);
		off = ps + pl;
	}
	ASSERT_RC(potad_get(a, x.handle, &g), 0);
	ck_assert_uint_eq(g.flags, POTAD_EXTENT_POISONED);
	must_place(b, &g);
	same_space(a, b);
	EXPECT_FREE(b, {0, 8}, {18, 100}, {101, 256});
	ASSERT_U64(stats(b).poison_units, 6);
	ASSERT_U64(stats(b).used_units, 8);

	/* Freed, its poisoned units stay out of the free lists. */
	must_free(a, x.handle);
	must_free(b, x.handle);
	same_space(a, b);
	EXPECT_FREE(b, {0, 10}, {12, 15}, {18, 100}, {101, 256});

	/* An extent wholly over poison takes no free block at all. */
	y = rec(60 * KiB, 12 * KiB, 3, 2);
	must_place(b, &y);
	EXPECT_FREE(b, {0, 10}, {12, 15}, {18, 100}, {101, 256});
	ASSERT_U64(stats(b).used_units, 3);
	ASSERT_U64(stats(b).poison_units, 6);
	/* One over poison with free units on both sides. */
	y = rec(36 * KiB, 16 * KiB, 4, 3);
	must_place(b, &y);
	EXPECT_FREE(b, {0, 9}, {13, 15}, {18, 100}, {101, 256});
	destroy(a);
	destroy(b);
}
END_TEST

START_TEST(place_refusals)
{
	uint64_t base = 64 * KiB, end = base + 4 * MiB;
	struct potad_space *s = mk(base, 4 * MiB, 12), *c = NULL;
	struct potad_extent a, p, h, e;
	uint32_t as;

	a = must_claim(s, base + 64 * KiB, 16 * KiB);
	as = POTAD_HANDLE_SLOT(a.handle);
	p = rec(base + 256 * KiB, 8 * KiB, 4, 7);
	must_place(s, &p);
	h = must_claim(s, base + MiB, MiB);
	ASSERT_RC(potad_child_new(s, h.handle, 12, &c), 0);
	CHECK_OK(s);

	refuse_place(s, NULL, -EINVAL, "no extent");
	e = rec(base, 4 * KiB, 1, 20);
	e.handle = mkhandle(0, 1, 20);
	refuse_place(s, &e, -EINVAL, "type 0");
	e.handle = mkhandle(POTAD_TYPE_CHILD, 1, 20);
	refuse_place(s, &e, -EINVAL, "type CHILD");
	e.handle = mkhandle(3, 1, 20);
	refuse_place(s, &e, -EINVAL, "type 3");
	e.handle = mkhandle(0xf, 1, 20);
	refuse_place(s, &e, -EINVAL, "type 0xF");
	e = rec(base, 4 * KiB, 1, UINT32_MAX);
	refuse_place(s, &e, -EINVAL, "slot UINT32_MAX");
	e = rec(base, 4 * KiB, 1, 0xffffff00u);
	refuse_place(s, &e, -EINVAL, "slot past the slab's limit");
	e = rec(base, 0, 1, 20);
	refuse_place(s, &e, -EINVAL, "length 0");
	e = rec(base + 1, 4 * KiB, 1, 20);
	refuse_place(s, &e, -EINVAL, "unaligned offset");
	e = rec(base + 2048, 4 * KiB, 1, 20);
	refuse_place(s, &e, -EINVAL, "offset on half a unit");
	e = rec(base, 4 * KiB + 1, 1, 20);
	refuse_place(s, &e, -EINVAL, "unaligned length");

	e = rec(0, 4 * KiB, 1, 20);
	refuse_place(s, &e, -ERANGE, "below the base");
	e = rec(base - 4 * KiB, 8 * KiB, 1, 20);
	refuse_place(s, &e, -ERANGE, "starting below the base");
	e = rec(end, 4 * KiB, 1, 20);
	refuse_place(s, &e, -ERANGE, "at the end");
	e = rec(end - 4 * KiB, 8 * KiB, 1, 20);
	refuse_place(s, &e, -ERANGE, "across the end");
	e = rec(base, UINT64_MAX - 4095, 1, 20);
	refuse_place(s, &e, -ERANGE, "length wrapping past 2^64");
	e = rec(UINT64_MAX - 4095, 4 * KiB, 1, 20);
	refuse_place(s, &e, -ERANGE, "near 2^64");

	e = rec(base + 512 * KiB, 4 * KiB, 9, as);
	refuse_place(s, &e, -EEXIST, "the slot of an allocated extent");
	e = rec(base + 512 * KiB, 4 * KiB, 4, 7);
	refuse_place(s, &e, -EEXIST, "the slot of a placed extent");
	e = rec(base + 512 * KiB, 4 * KiB, 5, 7);
	refuse_place(s, &e, -EEXIST, "a placed slot, another generation");
	e = rec(a.offset, a.length, 9, as);
	refuse_place(s, &e, -EEXIST, "slot and range both taken");

	e = rec(a.offset - 4 * KiB, 8 * KiB, 1, 20);
	refuse_place(s, &e, -EBUSY, "over the head of an extent");
	e = rec(a.offset + 12 * KiB, 8 * KiB, 1, 20);
	refuse_place(s, &e, -EBUSY, "over the tail of an extent");
	e = rec(a.offset + 4 * KiB, 4 * KiB, 1, 20);
	refuse_place(s, &e, -EBUSY, "inside an extent");
	e = rec(base, 512 * KiB, 1, 20);
	refuse_place(s, &e, -EBUSY, "over two extents");
	e = rec(p.offset, p.length, 1, 20);
	refuse_place(s, &e, -EBUSY, "exactly a placed extent");
	e = rec(h.offset + 64 * KiB, 4 * KiB, 1, 20);
	refuse_place(s, &e, -EBUSY, "inside a child's host");
	e = rec(h.offset - 4 * KiB, 8 * KiB, 1, 20);
	refuse_place(s, &e, -EBUSY, "into a child's host");

	/* Right next to each of them is fine. */
	e = rec(a.offset - 4 * KiB, 4 * KiB, 1, 20);
	must_place(s, &e);
	e = rec(a.offset + a.length, 4 * KiB, 1, 21);
	must_place(s, &e);
	e = rec(h.offset - 4 * KiB, 4 * KiB, 1, 22);
	must_place(s, &e);
	e = rec(h.offset + h.length, 4 * KiB, 1, 23);
	must_place(s, &e);
	ASSERT_U64(stats(s).extents, 7);
	destroy(c);
	destroy(s);
}
END_TEST

START_TEST(place_handles)
{
	struct potad_space *s = mk(0, 4 * MiB, 12);
	struct potad_extent x = rec(0, 8 * KiB, 9, 3);
	struct potad_extent y = rec(64 * KiB, 4 * KiB, 150, 0);
	struct potad_extent z = rec(128 * KiB, 4 * KiB, 0, 10);
	struct potad_extent w = rec(256 * KiB, 4 * KiB, 5, 20);
	struct potad_extent e, g;
	static const uint32_t want[] = {1, 2, 4, 5, 6, 7, 8, 9, 11};

	potad_space_set_gen_floor(s, 100);
	ASSERT_U64(potad_space_gen_max(s), 100);
	must_place(s, &x);
	must_place(s, &y);
	must_place(s, &z);
	ASSERT_U64(potad_space_gen_max(s), 150);

	/* Stale: another generation, a free slot made at the floor, a slot
	 * not made yet under the floor.  Malformed: a slot not made yet at
	 * or above the floor, which no space ever issued. */
	refuse_handle(s, mkhandle(POTAD_TYPE_EXTENT, 8, 3), -ESTALE,
		      "placed slot, older generation");
	refuse_handle(s, mkhandle(POTAD_TYPE_EXTENT, 10, 3), -ESTALE,
		      "placed slot, newer generation");
	refuse_handle(s, mkhandle(POTAD_TYPE_EXTENT, 99, 1), -ESTALE,
		      "a slot made free at the floor, under it");
	refuse_handle(s, mkhandle(POTAD_TYPE_EXTENT, 100, 1), -ESTALE,
		      "a slot made free at the floor, at it");
	refuse_handle(s, mkhandle(POTAD_TYPE_EXTENT, 99, 11), -ESTALE,
		      "a slot not made yet, under the floor");
	refuse_handle(s, mkhandle(POTAD_TYPE_EXTENT, 100, 11), -EINVAL,
		      "a slot not made yet, at the floor");

	/* Allocation takes the free slots lowest first, at the floor, then
	 * new ones, also at the floor; never a live one. */
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		e = must_alloc(s, 4 * KiB, 0, 0);
		ck_assert_msg(POTAD_HANDLE_SLOT(e.handle) == want[i] &&
				  POTAD_HANDLE_GEN(e.handle) == 100,
			      "allocation %u: handle %#" PRIx64
			      ", expected slot %u generation 100",
			      i, e.handle, want[i]);
	}
	ASSERT_RC(potad_get(s, x.handle, &g), 0);
	same_extent(&x, &g);

	/* A freed placed slot is reused with the next generation. */
	must_free(s, x.handle);
	e = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(e.handle, mkhandle(POTAD_TYPE_EXTENT, 10, 3));
	refuse_handle(s, x.handle, -ESTALE, "freed placed extent");

	/* A free while the list is dirty, then allocations. */
	must_place(s, &w);
	must_free(s, y.handle);
	CHECK_OK(s);
	e = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(e.handle, mkhandle(POTAD_TYPE_EXTENT, 151, 0));
	e = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(e.handle, mkhandle(POTAD_TYPE_EXTENT, 100, 12));
	ASSERT_RC(potad_get(s, w.handle, &g), 0);
	same_extent(&w, &g);
	ASSERT_RC(potad_get(s, z.handle, &g), 0);
	same_extent(&z, &g);
	ASSERT_U64(potad_space_gen_max(s), 151);
	destroy(s);

	/* The floor keeps 28 bits. */
	s = mk(0, MiB, 12);
	potad_space_set_gen_floor(s, UINT32_MAX);
	ASSERT_U64(potad_space_gen_max(s), 0x0fffffff);
	e = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(POTAD_HANDLE_GEN(e.handle), 0x0fffffff);
	destroy(s);
}
END_TEST

START_TEST(place_gen_max)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent a, b;

	ASSERT_U64(potad_space_gen_max(s), 0);
	a = must_alloc(s, 4 * KiB, 0, 0);
	b = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(potad_space_gen_max(s), 0);
	must_free(s, a.handle);
	ASSERT_U64(potad_space_gen_max(s), 1);
	a = must_alloc(s, 4 * KiB, 0, 0);
	must_free(s, a.handle);
	ASSERT_U64(potad_space_gen_max(s), 2);
	/* A free slot's generation counts as much as a live one's. */
	must_free(s, b.handle);
	ASSERT_U64(potad_space_gen_max(s), 2);
	potad_space_set_gen_floor(s, 7);
	ASSERT_U64(potad_space_gen_max(s), 7);
	destroy(s);
}
END_TEST

/* Snapshot a space and restore it elsewhere: every stale handle stays
 * stale, every live one stays live, and allocation goes on alike. */
struct snapshot {
	uint32_t gen_max;
	size_t n, np;
	struct potad_extent e[512];
	uint64_t ps[64], pl[64];
};

static int snap_fn(const struct potad_extent *e, void *arg)
{
	struct snapshot *sn = arg;

	ck_assert_msg(sn->n < 512, "snapshot: more than 512 extents");
	sn->e[sn->n++] = *e;
	return 0;
}

static void snap_take(const struct potad_space *s, struct snapshot *sn)
{
	uint64_t off = 0;

	sn->n = sn->np = 0;
	sn->gen_max = potad_space_gen_max(s);
	while (potad_poison_next(s, off, &sn->ps[sn->np], &sn->pl[sn->np]) ==
	       0) {
		off = sn->ps[sn->np] + sn->pl[sn->np];
		ck_assert_msg(++sn->np < 64,
			      "snapshot: too many poison ranges");
	}
	ASSERT_RC(potad_extent_foreach(s, 0, 0, snap_fn, sn), 0);
}

static struct potad_space *snap_restore(const struct snapshot *sn,
					uint64_t base, uint64_t size)
{
	struct potad_space *s = mk(base, size, 12);

	potad_space_set_gen_floor(s, sn->gen_max);
	for (size_t i = 0; i < sn->np; i++)
		ck_assert_int_ge(
		    potad_poison(s, sn->ps[i], sn->pl[i], NULL, NULL), 0);
	for (size_t i = 0; i < sn->n; i++)
		must_place(s, &sn->e[i]);
	return s;
}

START_TEST(place_restore)
{
	struct potad_space *a = mk(0, 64 * MiB, 12), *b;
	struct potad_extent live[512], dead[2048], ea, eb;
	struct snapshot *sn = calloc(1, sizeof(*sn));
	uint64_t seed = 12345;
	size_t nl = 0, nd = 0;

	ck_assert_ptr_nonnull(sn);
	/* Churn, so that slots carry generations and holes are left. */
	for (int i = 0; i < 2000; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		if (nl < 400 && (nl == 0 || (seed >> 33) % 3)) {
			uint64_t size = ((seed >> 40) % 16 + 1) * 4 * KiB;

			live[nl++] = must_alloc(a, size, 0, 0);
		} else {
			size_t k = (seed >> 20) % nl;

			must_free(a, live[k].handle);
			if (nd < 2048)
				dead[nd++] = live[k];
			live[k] = live[--nl];
		}
	}
	ASSERT_RC(potad_poison(a, 60 * MiB, 64 * KiB, NULL, NULL), 0);
	ck_assert_int_ge(potad_poison(a, live[0].offset, 4 * KiB, NULL, NULL),
			 1);
	snap_take(a, sn);
	ASSERT_U64(sn->n, nl);
	b = snap_restore(sn, 0, 64 * MiB);
	same_space(a, b);
	ASSERT_U64(potad_space_gen_max(b), sn->gen_max);
	for (size_t i = 0; i < nd; i++)
		refuse_handle(b, dead[i].handle, -ESTALE,
			      "stale handle after a restore");
	for (size_t i = 0; i < nl; i++) {
		ASSERT_RC(potad_get(a, live[i].handle, &ea), 0);
		ASSERT_RC(potad_get(b, live[i].handle, &eb), 0);
		same_extent(&ea, &eb);
	}
	/* The same requests land in the same places, and no new handle is
	 * one that was stale. */
	for (int i = 0; i < 300; i++) {
		uint64_t size = (uint64_t)(i % 23 + 1) * 4 * KiB;

		ea = must_alloc(a, size, 0, 0);
		eb = must_alloc(b, size, 0, 0);
		ASSERT_U64(eb.offset, ea.offset);
		ASSERT_U64(eb.length, ea.length);
		for (size_t k = 0; k < nd; k++)
			ck_assert_msg(eb.handle != dead[k].handle,
				      "stale handle %#" PRIx64 " issued again",
				      eb.handle);
		if (i % 3 == 0 && nl) {
			must_free(a, live[nl - 1].handle);
			must_free(b, live[nl - 1].handle);
			nl--;
		}
	}
	for (size_t i = 0; i < nd; i++)
		refuse_handle(b, dead[i].handle, -ESTALE,
			      "stale handle after more allocations");
	destroy(a);
	destroy(b);
	free(sn);
}
END_TEST

START_TEST(poison_next_walk)
{
	uint64_t base = 64 * KiB, s0, l0;
	struct potad_space *s = mk(base, MiB, 12);

	ASSERT_RC(potad_poison_next(s, 0, &s0, &l0), -ENOENT);
	ASSERT_RC(potad_poison(s, base + 8 * KiB, 4 * KiB, NULL, NULL), 0);
	ASSERT_RC(potad_poison(s, base + 100 * KiB, 1, NULL, NULL), 0);
	ASSERT_RC(potad_poison(s, base + MiB - 4 * KiB, 4 * KiB, NULL, NULL),
		  0);

	ASSERT_RC(potad_poison_next(s, 0, &s0, &l0), 0);
	ASSERT_U64(s0, base + 8 * KiB);
	ASSERT_U64(l0, 4 * KiB);
	/* A range that holds the offset is returned whole. */
	ASSERT_RC(potad_poison_next(s, base + 12 * KiB - 1, &s0, &l0), 0);
	ASSERT_U64(s0, base + 8 * KiB);
	ASSERT_U64(l0, 4 * KiB);
	ASSERT_RC(potad_poison_next(s, base + 12 * KiB, &s0, &l0), 0);
	ASSERT_U64(s0, base + 100 * KiB);
	ASSERT_U64(l0, 4 * KiB);
	ASSERT_RC(potad_poison_next(s, s0 + l0, &s0, &l0), 0);
	ASSERT_U64(s0, base + MiB - 4 * KiB);
	ASSERT_U64(l0, 4 * KiB);
	ASSERT_RC(potad_poison_next(s, s0 + l0, &s0, &l0), -ENOENT);
	ASSERT_RC(potad_poison_next(s, UINT64_MAX, &s0, &l0), -ENOENT);
	ASSERT_RC(potad_poison_next(s, base, NULL, NULL), 0);

	/* Ranges that touch come back as one. */
	ASSERT_RC(potad_poison(s, base + 12 * KiB, 8 * KiB, NULL, NULL), 0);
	ASSERT_RC(potad_poison_next(s, 0, &s0, &l0), 0);
	ASSERT_U64(s0, base + 8 * KiB);
	ASSERT_U64(l0, 12 * KiB);
	destroy(s);
}
END_TEST

START_TEST(poison_again_same)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL;
	struct potad_extent a, b, h;
	struct potad_stats s1, s2, c1, c2;
	uint64_t off = 0, cs[16], cl[16];
	int n = 0, hits;

	a = must_claim(s, 0, 64 * KiB);
	b = must_claim(s, 128 * KiB, 64 * KiB);
	h = must_claim(s, MiB, MiB);
	ASSERT_RC(potad_child_new(s, h.handle, 13, &c), 0);
	must_claim(c, MiB + 64 * KiB, 64 * KiB);

	/* Over a, free space, b and (forwarded) the child. */
	hits = potad_poison(s, 32 * KiB, 128 * KiB, NULL, NULL);
	ASSERT_RC(hits, 2);
	ASSERT_RC(potad_poison(s, MiB + 60 * KiB, 12 * KiB, NULL, NULL), 2);
	CHECK_OK(s);
	s1 = stats(s);
	c1 = stats(c);
	ASSERT_RC(potad_poison(s, 32 * KiB, 128 * KiB, NULL, NULL), hits);
	ASSERT_RC(potad_poison(s, 40 * KiB, 8 * KiB, NULL, NULL), 1);
	ASSERT_RC(potad_poison(s, MiB + 60 * KiB, 12 * KiB, NULL, NULL), 2);
	s2 = stats(s);
	c2 = stats(c);
	s1.meta_bytes = s2.meta_bytes;
	c1.meta_bytes = c2.meta_bytes;
	stats_same(&s1, &s2, "parent poisoned again");
	stats_same(&c1, &c2, "child poisoned again through its parent");
	CHECK_OK(s);

	/* The child's poison applied to it once more, as a restore does
	 * after potad_child_new has copied the parent's. */
	while (potad_poison_next(c, off, &cs[n], &cl[n]) == 0) {
		off = cs[n] + cl[n];
		n++;
	}
	ck_assert_int_eq(n, 1);
	for (int i = 0; i < n; i++)
		ck_assert_int_ge(potad_poison(c, cs[i], cl[i], NULL, NULL), 0);
	c2 = stats(c);
	c1.meta_bytes = c2.meta_bytes;
	stats_same(&c1, &c2, "child poisoned again");
	CHECK_OK(s);
	CHECK_OK(c);
	must_free(s, a.handle);
	must_free(s, b.handle);
	destroy(c);
	destroy(s);
}
END_TEST

/*
 * Clean and dirty free units
 */

/* Dirty runs in absolute units, as potad_dirty_next() must list them. */
static void expect_dirty_at(const struct potad_space *s, const struct run *runs,
			    size_t n, const char *file, int line)
{
	struct potad_stats st = stats(s);
	uint64_t g = st.granule, off = st.base, a, l, a2, l2, units = 0;
	size_t i = 0;
	int rc;

	while ((rc = potad_dirty_next(s, off, &a, &l)) == 0) {
		ck_assert_msg(i < n,
			      "%s:%d: dirty run [%#" PRIx64 ", +%#" PRIx64
			      ") not expected",
			      file, line, a, l);
		ck_assert_msg(
		    a == runs[i].lo * g && l == (runs[i].hi - runs[i].lo) * g,
		    "%s:%d: dirty run %zu expected units [%" PRIu64 ", %" PRIu64
		    "), got [%" PRIu64 ", %" PRIu64 ")",
		    file, line, i, runs[i].lo, runs[i].hi, a / g, (a + l) / g);
		/* From its last byte, the whole run again. */
		ASSERT_RC(potad_dirty_next(s, a + l - 1, &a2, &l2), 0);
		ASSERT_U64(a2, a);
		ASSERT_U64(l2, l);
		units += l / g;
		off = a + l;
		i++;
	}
	ck_assert_msg(rc == -ENOENT && i == n,
		      "%s:%d: dirty_next ended with %d (%s) after %zu runs, "
		      "expected -ENOENT after %zu",
		      file, line, rc, ename(rc), i, n);
	ck_assert_msg(st.dirty_units == units,
		      "%s:%d: dirty_units expected %" PRIu64 ", got %" PRIu64,
		      file, line, units, st.dirty_units);
	CHECK_OK(s);
}

#define EXPECT_DIRTY(s, ...)                                                   \
	do {                                                                   \
		const struct run runs_[] = {__VA_ARGS__};                      \
		expect_dirty_at((s), runs_, sizeof(runs_) / sizeof(runs_[0]),  \
				__FILE__, __LINE__);                           \
	} while (0)

#define EXPECT_NO_DIRTY(s) expect_dirty_at((s), NULL, 0, __FILE__, __LINE__)

static void must_free_dirty(struct potad_space *s, uint64_t handle)
{
	ASSERT_RC(potad_free_ex(s, handle, POTAD_FREE_DIRTY, NULL), 0);
	CHECK_OK(s);
}

static void must_set_clean(struct potad_space *s, uint64_t off, uint64_t len,
			   int clean)
{
	int rc = potad_set_clean(s, off, len, clean);

	ck_assert_msg(rc == 0,
		      "potad_set_clean(%#" PRIx64 ", %#" PRIx64
		      ", %d): expected 0, got %d (%s)",
		      off, len, clean, rc, ename(rc));
	CHECK_OK(s);
}

/* Free blocks and dirty blocks, and the free blocks of order k. */
#define EXPECT_BLOCKS(s, nfree, ndirty)                                        \
	do {                                                                   \
		struct potad_stats st_ = stats(s);                             \
		ASSERT_U64(st_.free_blocks, (nfree));                          \
		ASSERT_U64(st_.dirty_blocks, (ndirty));                        \
	} while (0)

START_TEST(clean_fresh)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL;
	struct potad_extent a, b;
	uint64_t x = 1, y = 1;

	EXPECT_NO_DIRTY(s);
	EXPECT_BLOCKS(s, 1, 0);
	ASSERT_RC(potad_dirty_next(s, 0, &x, &y), -ENOENT);
	ASSERT_U64(x, 1);
	ASSERT_RC(potad_dirty_next(s, 0, NULL, NULL), -ENOENT);

	/* A child is clean even over units that were dirty. */
	a = must_alloc(s, 4 * MiB, 0, 0);
	must_free_dirty(s, a.handle);
	EXPECT_DIRTY(s, {0, 1024});
	b = must_alloc(s, 4 * MiB, 0, 0);
	ASSERT_U64(b.offset, 0);
	EXPECT_NO_DIRTY(s);
	ASSERT_RC(potad_child_new(s, b.handle, 12, &c), 0);
	EXPECT_NO_DIRTY(c);
	ASSERT_U64(stats(c).free_units, 1024);
	/* With nothing in it, it hands its host back clean. */
	destroy(c);
	EXPECT_NO_DIRTY(s);
	EXPECT_FREE(s, {0, 4096});
	destroy(s);
}
END_TEST

START_TEST(clean_free_dirty)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_extent a, c, p, q;
	struct potad_stats st;

	a = must_alloc(s, MiB, 0, 0);
	ASSERT_U64(a.offset, 0);
	must_free_dirty(s, a.handle);
	/* The dirty block stays apart from its clean buddy. */
	st = stats(s);
	ASSERT_U64(st.dirty_units, 256);
	ASSERT_U64(st.dirty_blocks, 1);
	ASSERT_U64(st.free_blocks, 5);
	ASSERT_U64(st.free_per_order[8], 2);
	ASSERT_U64(st.free_per_order[9], 1);
	ASSERT_U64(st.free_per_order[10], 1);
	ASSERT_U64(st.free_per_order[11], 1);
	EXPECT_DIRTY(s, {0, 256});

	/* A clean request avoids it, a plain one takes it. */
	c = must_alloc(s, MiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(c.offset, MiB);
	p = must_alloc(s, MiB, 0, 0);
	ASSERT_U64(p.offset, 0);
	EXPECT_NO_DIRTY(s);

	/* What is left of a dirty block is dirty, of a clean one clean. */
	must_free_dirty(s, p.handle);
	p = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(p.offset, 0);
	q = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(q.offset, 2 * MiB);
	EXPECT_DIRTY(s, {1, 256});
	EXPECT_BLOCKS(s, 8 + 9 + 2, 8);

	/* Freed clean, the unit cannot merge with its dirty buddy. */
	must_free(s, p.handle);
	EXPECT_DIRTY(s, {1, 256});
	ASSERT_U64(stats(s).free_per_order[0], 3);
	must_free(s, q.handle);
	must_free(s, c.handle);
	must_set_clean(s, 0, 16 * MiB, 1);
	EXPECT_FREE(s, {0, 4096});
	destroy(s);
}
END_TEST

START_TEST(clean_merge_rules)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_extent a, b;
	struct potad_stats st;

	a = must_alloc(s, MiB, 0, 0);
	b = must_alloc(s, MiB, 0, 0);
	ASSERT_U64(b.offset, MiB);
	must_free_dirty(s, a.handle);
	must_free(s, b.handle);
	st = stats(s);
	ASSERT_U64(st.free_per_order[8], 2);
	ASSERT_U64(st.free_blocks, 5);
	ASSERT_U64(st.dirty_blocks, 1);

	/* Made clean, the buddies merge, and so on up. */
	must_set_clean(s, 0, MiB, 1);
	EXPECT_NO_DIRTY(s);
	EXPECT_FREE(s, {0, 4096});

	/* All dirty: still one block. */
	must_set_clean(s, 0, 16 * MiB, 0);
	EXPECT_BLOCKS(s, 1, 1);
	EXPECT_DIRTY(s, {0, 4096});

	/* A clean hole splits it; the pieces keep their state. */
	must_set_clean(s, MiB, MiB, 1);
	EXPECT_BLOCKS(s, 5, 4);
	st = stats(s);
	ASSERT_U64(st.free_per_order[8], 2);
	ASSERT_U64(st.dirty_units, 4096 - 256);
	EXPECT_DIRTY(s, {0, 256}, {512, 4096});
	must_set_clean(s, 0, 16 * MiB, 1);
	EXPECT_FREE(s, {0, 4096});

	/* Two dirty buddies merge with each other, not with clean ones. */
	a = must_alloc(s, MiB, 0, 0);
	b = must_alloc(s, MiB, 0, 0);
	must_free_dirty(s, a.handle);
	must_free_dirty(s, b.handle);
	EXPECT_BLOCKS(s, 4, 1);
	ASSERT_U64(stats(s).free_per_order[9], 2);
	EXPECT_DIRTY(s, {0, 512});
	destroy(s);
}
END_TEST

START_TEST(clean_split_keeps_state)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_alloc_req r;
	struct potad_extent e, f, pl;

	/* The first extent sets up the slab, which a refusal must not. */
	e = must_alloc(s, 4 * KiB, 0, 0);
	must_free(s, e.handle);
	must_set_clean(s, 0, 16 * MiB, 0);
	r = req_of(4 * KiB, 0, POTAD_ALLOC_CLEAN);
	refuse(s, &r, -ENOSPC, "clean, all dirty");
	r = req_of(4 * KiB, 0, POTAD_ALLOC_CLEAN | POTAD_ALLOC_TOPDOWN);
	refuse(s, &r, -ENOSPC, "clean top-down, all dirty");
	r.min = MiB;
	r.max = 2 * MiB;
	refuse(s, &r, -ENOSPC, "clean in a range, all dirty");

	e = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(e.offset, 0);
	EXPECT_BLOCKS(s, 12, 12);
	EXPECT_DIRTY(s, {1, 4096});
	must_free(s, e.handle);
	EXPECT_BLOCKS(s, 13, 12);
	e = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(e.offset, 0);

	/* Poison takes dirty units out for good; the rest stays dirty. */
	ck_assert_int_eq(potad_poison(s, 100 * 4 * KiB, 4 * KiB, NULL, NULL),
			 0);
	EXPECT_DIRTY(s, {1, 100}, {101, 4096});

	/* So does an extent put back from a journal. */
	pl = rec(2000 * 4 * KiB, 10 * 4 * KiB, 3, 7);
	must_place(s, &pl);
	EXPECT_DIRTY(s, {1, 100}, {101, 2000}, {2010, 4096});

	/* Top-down takes the highest dirty units and leaves the rest so. */
	f = must_alloc(s, 8 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(f.offset, 16 * MiB - 8 * KiB);
	EXPECT_DIRTY(s, {1, 100}, {101, 2000}, {2010, 4094});
	destroy(s);
}
END_TEST

START_TEST(clean_fixed)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_alloc_req r;
	struct potad_extent a, e;

	a = must_alloc(s, MiB, 0, 0);
	must_free_dirty(s, a.handle);
	r = req_of(4 * KiB, 0, POTAD_ALLOC_FIXED | POTAD_ALLOC_CLEAN);
	r.at = 0;
	refuse(s, &r, -EBUSY, "clean claim of a dirty unit");
	r.at = MiB - 4 * KiB;
	r.size = 8 * KiB;
	refuse(s, &r, -EBUSY, "clean claim over dirty and clean units");
	r.at = MiB;
	r.size = 4 * KiB;
	e = must(s, &r);
	ASSERT_U64(e.offset, MiB);
	r = req_of(4 * KiB, 0, POTAD_ALLOC_FIXED);
	r.at = 8 * KiB;
	e = must(s, &r);
	ASSERT_U64(e.offset, 8 * KiB);
	EXPECT_DIRTY(s, {0, 2}, {3, 256});
	destroy(s);
}
END_TEST

/* Run assembly sees only clean runs for a clean request, and for a plain
 * one finds runs that mix clean and dirty units. */
START_TEST(clean_cma)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_extent mib[16], e, f;
	struct potad_alloc_req r;

	fill_mib(s, mib, 16);
	must_free_dirty(s, mib[1].handle);
	must_free_dirty(s, mib[2].handle);
	must_free(s, mib[5].handle);
	must_free(s, mib[6].handle);
	e = must_alloc(s, 2 * MiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(e.offset, 5 * MiB);
	r = req_of(2 * MiB, 0, POTAD_ALLOC_CLEAN);
	refuse(s, &r, -ENOSPC, "clean 2 MiB with only dirty runs");
	f = must_alloc(s, 2 * MiB, 0, 0);
	ASSERT_U64(f.offset, MiB);
	EXPECT_NO_DIRTY(s);

	/* A run cut by two dirty units into pieces below 1 MiB each. */
	must_free(s, mib[9].handle);
	must_free(s, mib[10].handle);
	must_set_clean(s, 9 * MiB, 4 * KiB, 0);
	must_set_clean(s, 10 * MiB, 4 * KiB, 0);
	EXPECT_DIRTY(s, {2304, 2305}, {2560, 2561});
	EXPECT_BLOCKS(s, 18, 2);
	refuse(s, &r, -ENOSPC, "clean 2 MiB in a mixed run");
	r.size = MiB;
	refuse(s, &r, -ENOSPC, "clean 1 MiB in a mixed run");
	r = req_of(2 * MiB, 0, POTAD_ALLOC_CLEAN | POTAD_ALLOC_TOPDOWN);
	refuse(s, &r, -ENOSPC, "clean 2 MiB top-down in a mixed run");

	/* A clean extent of an exact size slides down onto the clean units
	 * below its block, and onto no dirty one: with units [2304, 2369)
	 * dirty, 100 units take the order-7 block at 2432 and the 63 clean
	 * units under it. */
	must_set_clean(s, 9 * MiB, 65 * 4 * KiB, 0);
	e = must_alloc(s, 400 * KiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(e.offset, 2369 * 4 * KiB);
	must_free(s, e.handle);
	must_set_clean(s, 9 * MiB + 4 * KiB, 64 * 4 * KiB, 1);
	EXPECT_DIRTY(s, {2304, 2305}, {2560, 2561});
	EXPECT_BLOCKS(s, 18, 2);

	/* A power of two does not slide: 512 KiB keeps its block's
	 * alignment. */
	e = must_alloc(s, 512 * KiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(e.offset, 2432 * 4 * KiB);
	must_free(s, e.handle);
	EXPECT_BLOCKS(s, 18, 2);

	f = must_alloc(s, 2 * MiB, 0, 0);
	ASSERT_U64(f.offset, 9 * MiB);
	EXPECT_NO_DIRTY(s);
	EXPECT_NO_FREE(s);
	destroy(s);
}
END_TEST

START_TEST(clean_set_clean_held_poisoned)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_extent a, g;
	struct potad_stats before, after;
	static const struct {
		uint64_t off, len;
		int want;
	} bad[] = {
	    {0, 0, -EINVAL},
	    {1, 4 * KiB, -EINVAL},
	    {0, 4 * KiB + 1, -EINVAL},
	    {16 * MiB, 4 * KiB, -ERANGE},
	    {15 * MiB, 2 * MiB, -ERANGE},
	};

	a = must_alloc(s, MiB, 0, 0);
	ck_assert_int_eq(potad_poison(s, 2 * MiB, 4 * KiB, NULL, NULL), 0);
	must_set_clean(s, 0, 16 * MiB, 0);
	EXPECT_DIRTY(s, {256, 512}, {513, 4096});
	ASSERT_RC(potad_get(s, a.handle, &g), 0);
	ASSERT_U64(stats(s).poison_units, 1);
	ck_assert_int_eq(potad_is_poisoned(s, 2 * MiB, 4 * KiB), 1);

	/* The extent's units come back clean, next to dirty ones. */
	must_free(s, a.handle);
	EXPECT_DIRTY(s, {256, 512}, {513, 4096});
	ASSERT_U64(stats(s).free_per_order[8], 3);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int clean = 0; clean <= 1; clean++) {
			before = stats(s);
			ASSERT_RC(
			    potad_set_clean(s, bad[i].off, bad[i].len, clean),
			    bad[i].want);
			after = stats(s);
			stats_same(&before, &after, "refused set_clean");
		}
	}
	EXPECT_DIRTY(s, {256, 512}, {513, 4096});

	must_set_clean(s, 0, 16 * MiB, 1);
	EXPECT_NO_DIRTY(s);
	EXPECT_FREE(s, {0, 512}, {513, 4096});
	ASSERT_U64(stats(s).poison_units, 1);
	destroy(s);
}
END_TEST

START_TEST(clean_dirty_next_walk)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *t;
	uint64_t a = 0, l = 0;

	must_set_clean(s, MiB, 4 * KiB, 0);
	must_set_clean(s, 770 * 4 * KiB, MiB, 0);
	must_set_clean(s, 15 * MiB, MiB, 0);
	EXPECT_DIRTY(s, {256, 257}, {770, 1026}, {3840, 4096});
	ASSERT_RC(potad_dirty_next(s, 800 * 4 * KiB + 5, &a, &l), 0);
	ASSERT_U64(a, 770 * 4 * KiB);
	ASSERT_U64(l, MiB);
	ASSERT_RC(potad_dirty_next(s, 1026 * 4 * KiB - 1, &a, NULL), 0);
	ASSERT_U64(a, 770 * 4 * KiB);
	ASSERT_RC(potad_dirty_next(s, 1026 * 4 * KiB, NULL, &l), 0);
	ASSERT_U64(l, MiB);
	ASSERT_RC(potad_dirty_next(s, 16 * MiB - 1, &a, &l), 0);
	ASSERT_U64(a, 15 * MiB);
	ASSERT_RC(potad_dirty_next(s, 16 * MiB, &a, &l), -ENOENT);
	ASSERT_RC(potad_dirty_next(s, UINT64_MAX, &a, &l), -ENOENT);
	/* Joining runs makes one. */
	must_set_clean(s, MiB, 3 * MiB, 0);
	EXPECT_DIRTY(s, {256, 1026}, {3840, 4096});
	destroy(s);

	/* Below the base, the first run. */
	t = mk(GiB, 16 * MiB, 12);
	must_set_clean(t, GiB + 4 * KiB, 4 * KiB, 0);
	ASSERT_RC(potad_dirty_next(t, 0, &a, &l), 0);
	ASSERT_U64(a, GiB + 4 * KiB);
	ASSERT_U64(l, 4 * KiB);
	destroy(t);
}
END_TEST

START_TEST(clean_child_destroy)
{
	struct potad_space *s = mk(0, 16 * MiB, 12), *c = NULL;
	struct potad_extent h, e;

	/* An extent left in the child: the host comes back dirty. */
	h = must_alloc(s, 2 * MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, h.handle, 12, &c), 0);
	e = must_alloc(c, 4 * KiB, 0, 0);
	destroy(c);
	EXPECT_DIRTY(s, {0, 512});
	must_set_clean(s, 0, 16 * MiB, 1);

	/* Dirty free units in the child: dirty. */
	h = must_alloc(s, 2 * MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, h.handle, 12, &c), 0);
	e = must_alloc(c, 4 * KiB, 0, 0);
	must_free_dirty(c, e.handle);
	EXPECT_DIRTY(c, {0, 1});
	destroy(c);
	EXPECT_DIRTY(s, {0, 512});
	must_set_clean(s, 0, 16 * MiB, 1);

	/* Everything freed clean: clean. */
	h = must_alloc(s, 2 * MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, h.handle, 12, &c), 0);
	e = must_alloc(c, 4 * KiB, 0, 0);
	must_free(c, e.handle);
	destroy(c);
	EXPECT_NO_DIRTY(s);
	EXPECT_FREE(s, {0, 4096});
	destroy(s);
}
END_TEST

START_TEST(clean_free_ex_flags)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_extent a, g;
	struct potad_stats before, after;

	a = must_alloc(s, MiB, 0, 0);
	before = stats(s);
	ASSERT_RC(potad_free_ex(s, a.handle, 1u << 1, &g), -EINVAL);
	ASSERT_RC(potad_free_ex(s, a.handle, ~0u, NULL), -EINVAL);
	ASSERT_RC(potad_free_ex(s, a.handle, POTAD_FREE_DIRTY | 1u << 31, NULL),
		  -EINVAL);
	after = stats(s);
	stats_same(&before, &after, "free_ex with an unknown flag");
	ASSERT_RC(potad_get(s, a.handle, &g), 0);
	CHECK_OK(s);

	ASSERT_RC(potad_free_ex(s, a.handle, 0, &g), 0);
	same_extent(&g, &a);
	EXPECT_NO_DIRTY(s);
	ASSERT_RC(potad_free_ex(s, a.handle, POTAD_FREE_DIRTY, NULL), -ESTALE);
	EXPECT_FREE(s, {0, 4096});
	destroy(s);
}
END_TEST

/* A clean search over an order crowded with dirty blocks, up and down. */
START_TEST(clean_search_skips_dirty)
{
	struct potad_space *s = mk(0, MiB, 12);
	struct potad_extent u[256], e;

	for (int i = 0; i < 256; i++)
		u[i] = must_claim(s, (uint64_t)i * 4 * KiB, 4 * KiB);
	for (int i = 0; i < 200; i += 2)
		must_free_dirty(s, u[i].handle);
	must_free(s, u[201].handle);
	EXPECT_BLOCKS(s, 101, 100);

	e = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(e.offset, 201 * 4 * KiB);
	must_free(s, e.handle);
	e = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_CLEAN | POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(e.offset, 201 * 4 * KiB);
	must_free(s, e.handle);

	/* Dirty blocks above it too, for the search downwards. */
	for (int i = 202; i < 252; i += 2)
		must_free_dirty(s, u[i].handle);
	e = must_alloc(s, 4 * KiB, 0, POTAD_ALLOC_CLEAN | POTAD_ALLOC_TOPDOWN);
	ASSERT_U64(e.offset, 201 * 4 * KiB);
	e = must_alloc(s, 4 * KiB, 0, 0);
	ASSERT_U64(e.offset, 0);
	destroy(s);
}
END_TEST

/*
 * The radix trees alone, white-box, against a sorted array: sets (with
 * their singletons, pairing and leaf-word searches) and a map, over key
 * ranges from one leaf to the full 64 bits.  Keys come in clusters (dense
 * leaves), scattered (singletons at every level) and as buddies of keys
 * already present (pairing), so chains are made, expanded and pruned.
 */
struct kmodel {
	uint64_t *k;
	uint32_t *v;
	size_t n;
};

static size_t km_find(const struct kmodel *m, uint64_t key)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->k[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool km_has(const struct kmodel *m, uint64_t key)
{
	size_t i = km_find(m, key);

	return i < m->n && m->k[i] == key;
}

static void km_put(struct kmodel *m, uint64_t key, uint32_t val)
{
	size_t i = km_find(m, key);

	if (i < m->n && m->k[i] == key) {
		m->v[i] = val;
		return;
	}
	memmove(m->k + i + 1, m->k + i, (m->n - i) * sizeof(*m->k));
	memmove(m->v + i + 1, m->v + i, (m->n - i) * sizeof(*m->v));
	m->k[i] = key;
	m->v[i] = val;
	m->n++;
}

static bool km_del(struct kmodel *m, uint64_t key)
{
	size_t i = km_find(m, key);

	if (i == m->n || m->k[i] != key)
		return false;
	memmove(m->k + i, m->k + i + 1, (m->n - i - 1) * sizeof(*m->k));
	memmove(m->v + i, m->v + i + 1, (m->n - i - 1) * sizeof(*m->v));
	m->n--;
	return true;
}

static uint64_t rx_next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

static uint64_t rx_key(uint64_t *x, uint64_t maxkey, const struct kmodel *m)
{
	uint64_t r = rx_next(x), c;

	switch (r % 10) {
	case 0: case 1: case 2: /* a buddy of a key present */
		if (m->n)
			return m->k[(r >> 8) % m->n] ^ 1;
		/* fall through */
	case 3: case 4: case 5: /* near one of a few cluster centres */
		c = (rx_next(x) % 4) * (maxkey / 4);
		r = rx_next(x) % 300;
		return r > maxkey - c ? maxkey : c + r;
	default: /* anywhere */
		return maxkey == UINT64_MAX ? rx_next(x)
					    : rx_next(x) % (maxkey + 1);
	}
}

/* potad__rtree_walk()'s callback: each key must be the model's next. */
struct walk_keys {
	const struct kmodel *m;
	bool map;
	size_t at, seen, stop;
};

static int walk_key(uint64_t key, uint32_t val, void *arg)
{
	struct walk_keys *w = arg;

	ck_assert_msg(w->at < w->m->n && key == w->m->k[w->at],
		      "walk: key %zu is %#" PRIx64, w->at, key);
	if (w->map)
		ck_assert_uint_eq(val, w->m->v[w->at]);
	w->at++;
	return ++w->seen == w->stop ? 7 : 0;
}

/* cap > 0 keeps the tree at most cap keys big: once it holds cap, an
 * insert becomes the removal of a key present, so the tree keeps passing
 * through its smallest shapes (empty, one key in the root). */
static void radix_round(uint64_t maxkey, bool map, unsigned steps,
			size_t cap)
{
	struct walk_keys wk;
	struct rpool nodes, vals;
	struct rtree a;
	struct kmodel ma = { 0 };
	uint64_t x = 0x9e3779b97f4a7c15ull ^ maxkey, key, got, from;
	uint32_t val, gv;

	ma.k = calloc(steps + 1, sizeof(*ma.k));
	ma.v = calloc(steps + 1, sizeof(*ma.v));
	ck_assert(ma.k && ma.v);
	potad__rpool_init(&nodes, sizeof(struct rnode));
	potad__rpool_init(&vals, sizeof(uint32_t));
	potad__rtree_init(&a, maxkey, map);
	for (unsigned i = 0; i < steps; i++) {
		unsigned op = (unsigned)(rx_next(&x) % 8);
		bool had, r;

		key = rx_key(&x, maxkey, &ma);
		val = (uint32_t)rx_next(&x);
		if (cap && ma.n >= cap && op <= 2) {
			op = 3;
			key = ma.k[val % ma.n];
		}
		ck_assert_int_eq(potad__rpool_reserve(&nodes, 2 *
				 potad__rtree_insert_need(&a)), 0);
		ck_assert_int_eq(potad__rpool_reserve(&vals, 64), 0);
		had = km_has(&ma, key);
		if (op <= 2) {
			potad__rtree_insert(&a, &nodes, &vals, key, val);
			km_put(&ma, key, val);
		} else if (op <= 4) {
			r = potad__rtree_remove(&a, &nodes, &vals, key);
			ck_assert_msg(r == km_del(&ma, key),
				      "remove %#" PRIx64 ": %d, had %d", key,
				      r, had);
		} else if (op == 5 && !map) {
			bool partner = km_has(&ma, key ^ 1);

			r = potad__rtree_pair(&a, &nodes, key);
			ck_assert_msg(r == partner, "pair %#" PRIx64
				      ": %d, partner present %d", key, r,
				      partner);
			if (partner)
				km_del(&ma, key ^ 1);
			else
				km_put(&ma, key, 0);
		} else {
			r = potad__rtree_get(&a, &nodes, &vals, key, &gv);
			ck_assert_msg(r == had, "get %#" PRIx64 ": %d, had %d",
				      key, r, had);
			if (r && map)
				ck_assert_uint_eq(gv, ma.v[km_find(&ma, key)]);
		}
		/* Searches from a random point, both ways, every step. */
		from = rx_key(&x, maxkey, &ma);
		{
			size_t j = km_find(&ma, from);
			bool want = j < ma.n;

			r = potad__rtree_next(&a, &nodes, &vals, from, &got,
					      &gv);
			ck_assert_msg(r == want && (!r || got == ma.k[j]),
				      "next(%#" PRIx64 "): %d %#" PRIx64
				      ", model %d %#" PRIx64, from, r, got,
				      want, want ? ma.k[j] : 0);
			if (r && map)
				ck_assert_uint_eq(gv, ma.v[j]);
			want = (j < ma.n && ma.k[j] == from) || j > 0;
			if (j < ma.n && ma.k[j] == from)
				j++;
			r = potad__rtree_prev(&a, &nodes, &vals, from, &got,
					      &gv);
			ck_assert_msg(r == want && (!r || got == ma.k[j - 1]),
				      "prev(%#" PRIx64 "): %d %#" PRIx64
				      ", model %d", from, r, got, want);
		}
		/* The smallest key, which next() finds without a search. */
		r = potad__rtree_next(&a, &nodes, &vals, 0, &got, &gv);
		ck_assert_msg(r == (ma.n > 0) && (!r || got == ma.k[0]),
			      "next(0): %d %#" PRIx64 ", model %d %#" PRIx64, r,
			      got, ma.n > 0, ma.n > 0 ? ma.k[0] : 0);
		if (r && map)
			ck_assert_uint_eq(gv, ma.v[0]);
		if (i % 512 == 0 || i == steps - 1) {
			struct riter it = { 0 };
			size_t j = 0;

			ck_assert(potad__rtree_verify(&a, &nodes, &vals));
			while (potad__rtree_iter(&a, &nodes, &it, &got)) {
				ck_assert_msg(j < ma.n && got == ma.k[j],
					      "iter: key %zu is %#" PRIx64, j,
					      got);
				j++;
			}
			ck_assert_uint_eq(j, ma.n);
			/* The in-order walk, from a random key, stopped
			 * after a random number of keys. */
			from = rx_key(&x, maxkey, &ma);
			wk.m = &ma;
			wk.map = map;
			wk.at = km_find(&ma, from);
			wk.stop = (size_t)(rx_next(&x) % 200);
			wk.seen = 0;
			r = potad__rtree_walk(&a, &nodes, &vals, from, walk_key,
					      &wk) == 7;
			ck_assert_msg(r == (wk.stop && wk.seen == wk.stop),
				      "walk from %#" PRIx64 ": stopped %d "
				      "after %zu keys, stop %zu", from, r,
				      wk.seen, wk.stop);
			if (!r)
				ck_assert_uint_eq(wk.at, ma.n);
		}
	}
	potad__rtree_clear(&a, &nodes, &vals);
	ck_assert_uint_eq(nodes.live, 0);
	ck_assert_uint_eq(vals.live, 0);
	potad__rpool_fini(&nodes);
	potad__rpool_fini(&vals);
	free(ma.k);
	free(ma.v);
}

START_TEST(radix_model)
{
	static const uint64_t maxkeys[] = { 63, 4095, (1ull << 30) - 1,
					    (1ull << 45) + 12345, UINT64_MAX };

	for (size_t i = 0; i < sizeof(maxkeys) / sizeof(maxkeys[0]); i++) {
		radix_round(maxkeys[i], false, 20000, 0);
		radix_round(maxkeys[i], true, 20000, 0);
		radix_round(maxkeys[i], false, 5000, 2);
		radix_round(maxkeys[i], true, 5000, 2);
	}
}
END_TEST

/* The checker must notice free-block trees that disagree with each other
 * or with the counters.  White-box: it corrupts the space through the
 * engine's internals. */
static void expect_corrupt(const struct potad_space *s, const char *what)
{
	char msg[512] = "";
	int rc = potad_space_check(s, msg, sizeof(msg));

	ck_assert_msg(rc == -EUCLEAN && strstr(msg, what),
		      "potad_space_check: expected -EUCLEAN with \"%s\", got "
		      "%d (%s): %s",
		      what, rc, ename(rc), msg);
}

/* Add (or remove) a free block of order k at u to the tree of its state,
 * with the counters of blocks kept consistent, so that only the checker's
 * look at the trees themselves can tell; free_units stays as it was, so
 * that a block too many shows in the trees' sum, not in the space's. */
static void fb_poke(struct potad_space *s, uint64_t u, unsigned k, bool dirty,
		    int add)
{
	uint64_t key = fkey(s, u, k);
	int d = add ? 1 : -1;

	if (add) {
		ASSERT_RC(potad__reserve(s, 1024), 0);
		potad__rtree_insert(FB_TREE(s, dirty, k), &s->nodes, NULL, key,
				    0);
	} else {
		ck_assert(potad__rtree_remove(FB_TREE(s, dirty, k), &s->nodes,
					      NULL, key));
	}
	s->free_blocks += (uint64_t)d;
	if (dirty) {
		s->ndirty[k] += (uint64_t)d;
		s->dirty_blocks += (uint64_t)d;
		s->dirty_units += (uint64_t)d * pow2(k);
	} else {
		s->nclean[k] += (uint64_t)d;
	}
	s->nonempty = s->cnonempty = s->dnonempty = 0;
	for (unsigned j = 0; j < POTAD_ORDERS; j++) {
		s->nonempty |= s->nclean[j] + s->ndirty[j] ? pow2(j) : 0;
		s->cnonempty |= s->nclean[j] ? pow2(j) : 0;
		s->dnonempty |= s->ndirty[j] ? pow2(j) : 0;
	}
}

START_TEST(clean_check_catches)
{
	struct potad_space *s = mk(0, 16 * MiB, 12);
	struct potad_extent a, b;

	/* Units [0, 256) dirty, [256, 512) clean, the rest clean. */
	a = must_alloc(s, MiB, 0, 0);
	b = must_alloc(s, MiB, 0, 0);
	must_free_dirty(s, a.handle);
	must_free(s, b.handle);

	s->dirty_units++;
	expect_corrupt(s, "dirty counters");
	s->dirty_units--;
	CHECK_OK(s);
	s->ndirty[8]++;
	expect_corrupt(s, "dirty blocks, counters");
	s->ndirty[8]--;
	CHECK_OK(s);
	s->cnonempty &= ~pow2(8);
	expect_corrupt(s, "non-empty bits");
	s->cnonempty |= pow2(8);
	CHECK_OK(s);

	/* A dirty block inside a clean one. */
	fb_poke(s, 768, 8, true, 1);
	expect_corrupt(s, "free counters");
	fb_poke(s, 768, 8, true, 0);
	CHECK_OK(s);

	/* A block in both trees. */
	fb_poke(s, 256, 8, true, 1);
	expect_corrupt(s, "both clean and dirty");
	fb_poke(s, 256, 8, true, 0);
	CHECK_OK(s);

	/* Both buddies dirty and left apart. */
	fb_poke(s, 256, 8, false, 0);
	fb_poke(s, 256, 8, true, 1);
	expect_corrupt(s, "unmerged");
	fb_poke(s, 256, 8, true, 0);
	fb_poke(s, 256, 8, false, 1);
	CHECK_OK(s);
	destroy(s);
}
END_TEST

/*
 * The reuse cache (potad_space_set_cache()).
 */

static int count_one(const struct potad_extent *e, void *arg)
{
	(void)e;
	++*(int *)arg;
	return 0;
}

START_TEST(cache_reuse)
{
	struct potad_space *s = mk(0, GiB, 12);
	struct potad_extent a, b, c, e, f;
	struct potad_stats st0, st;
	int n = 0;

	ASSERT_RC(potad_space_set_cache(s, 64 * KiB, 16), 0);
	a = must_alloc(s, 12 * KiB, 0, 0);
	b = must_alloc(s, 20 * KiB, 0, 0);
	st0 = stats(s);
	must_free(s, a.handle);

	/* Free to every caller, but not back in the free lists. */
	st = stats(s);
	ASSERT_U64(st.cached_extents, 1);
	ASSERT_U64(st.cached_units, 3);
	ASSERT_U64(st.free_units, st0.free_units + 3);
	ASSERT_U64(st.used_units, st0.used_units - 3);
	ASSERT_U64(st.extents, 1);
	ASSERT_U64(st.free_blocks, st0.free_blocks);
	ASSERT_RC(potad_get(s, a.handle, &e), -ESTALE);
	ASSERT_RC(potad_free(s, a.handle, NULL), -ESTALE);
	ASSERT_RC(potad_lookup(s, a.offset, &e), -ENOENT);
	ASSERT_RC(potad_lookup(s, a.offset + 8 * KiB, &e), -ENOENT);
	ASSERT_RC(potad_extent_next(s, 0, &e), 0);
	ASSERT_U64(e.offset, b.offset);
	ASSERT_RC(potad_extent_foreach(s, 0, 0, count_one, &n), 0);
	ck_assert_int_eq(n, 1);
	/* A handle forged from the slot and its new generation is refused
	 * as well: no handle names a cached slot. */
	ASSERT_RC(potad_free(s, a.handle + (1ull << 32), NULL), -ESTALE);

	/* Another length does not take it; the same length does, with a
	 * new handle, owner and tag. */
	c = must_alloc(s, 8 * KiB, 0, 0);
	ck_assert(c.offset != a.offset);
	{
		struct potad_alloc_req r = req_of(12 * KiB - 100, 0, 0);

		r.owner = 7;
		r.tag = 9;
		e = must(s, &r);
	}
	ASSERT_U64(e.offset, a.offset);
	ck_assert(e.handle != a.handle);
	ck_assert_uint_eq(e.owner, 7);
	ck_assert_uint_eq(e.tag, 9);
	ASSERT_U64(stats(s).cached_extents, 0);
	ASSERT_RC(potad_lookup(s, a.offset + 4 * KiB, &a), 0);
	ASSERT_U64(a.handle, e.handle);

	/* Top-down requests leave the cache alone; aligned and ranged ones
	 * take the newest extent of their length if it suits them. */
	must_free(s, e.handle);
	e = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_TOPDOWN);
	ck_assert(e.offset != a.offset);
	ASSERT_U64(a.offset % (64 * KiB), 0);
	e = must_alloc(s, 12 * KiB, 64 * KiB, 0);
	ASSERT_U64(e.offset, a.offset);
	must_free(s, e.handle);
	{
		struct potad_alloc_req r = req_of(12 * KiB, 0, 0);

		r.min = a.offset + 4 * KiB;
		e = must(s, &r);
		ck_assert(e.offset != a.offset);
		r.min = 0;
		r.max = a.offset + 8 * KiB;
		refuse(s, &r, -E2BIG, "12 KiB below 8 KiB");
		r.max = a.offset + 12 * KiB;
		ASSERT_U64(must(s, &r).offset, a.offset);
	}
	e = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_WHOLE);
	must_free(s, e.handle);
	ASSERT_U64(stats(s).cached_extents, 1);
	ASSERT_U64(must_alloc(s, 13 * KiB, 0, POTAD_ALLOC_WHOLE).offset,
		   e.offset);
	f = must_alloc(s, 12 * KiB, 0, 0);
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 1);
	/* A clean request may take it: a plain free leaves clean units. */
	e = must_alloc(s, 12 * KiB, 0, POTAD_ALLOC_CLEAN);
	ASSERT_U64(e.offset, f.offset);

	/* Dirty frees, shrinks and extents longer than the limit are not
	 * cached. */
	ASSERT_RC(potad_free_ex(s, e.handle, POTAD_FREE_DIRTY, NULL), 0);
	c = must_alloc(s, 128 * KiB, 0, 0);
	ASSERT_RC(potad_shrink(s, c.handle, 64 * KiB, 0, NULL), 0);
	must_free(s, c.handle);
	ASSERT_U64(stats(s).cached_extents, 1); /* the 64 KiB head */
	ASSERT_RC(potad_space_drain(s), 0);
	CHECK_OK(s);
	ASSERT_U64(stats(s).cached_extents, 0);
	ASSERT_U64(stats(s).cached_units, 0);
	destroy(s);
}
END_TEST

START_TEST(cache_longer_fits)
{
	struct potad_space *s = mk(0, GiB, 12);
	struct potad_extent a, b, e;
	struct potad_stats st0, st;

	ASSERT_RC(potad_space_set_cache(s, 1 * MiB, 16), 0);
	/* 66 units cached: a request for 65 takes it, and gives the last
	 * unit back to the free lists; one for 64 (a power of two) or 63
	 * (more than 1/32 shorter) does not. */
	a = must_alloc(s, 66 * 4 * KiB, 0, 0);
	b = must_alloc(s, 4 * KiB, 0, 0);
	must_free(s, a.handle);
	st0 = stats(s);
	ASSERT_U64(st0.cached_units, 66);
	e = must_alloc(s, 63 * 4 * KiB, 0, 0);
	ck_assert(e.offset != a.offset);
	must_free(s, e.handle);
	ASSERT_RC(potad_space_drain(s), 0);
	must_free(s, b.handle);
	a = must_alloc(s, 66 * 4 * KiB, 0, 0);
	b = must_alloc(s, 4 * KiB, 0, 0);
	must_free(s, a.handle);
	st0 = stats(s);
	e = must_alloc(s, 65 * 4 * KiB, 0, 0);
	ASSERT_U64(e.offset, a.offset);
	ASSERT_U64(e.length, 65 * 4 * KiB);
	st = stats(s);
	ASSERT_U64(st.cached_extents, 0);
	ASSERT_U64(st.free_units, st0.free_units - 65);
	ASSERT_RC(potad_lookup(s, a.offset + 65 * 4 * KiB, &e), -ENOENT);
	destroy(s);
}
END_TEST

START_TEST(cache_returns_for_room)
{
	struct potad_space *s = mk(0, 4 * MiB, 12);
	struct potad_extent e[341], f;
	struct potad_stats st;
	int i;

	ASSERT_RC(potad_space_set_cache(s, 16 * KiB, 1024), 0);
	for (i = 0; i < 341; i++)
		e[i] = must_claim(s, (uint64_t)i * 12 * KiB, 12 * KiB);
	/* 341 x 12 KiB: one unit of 1,024 is left.  Free four in a row
	 * into the cache: 48 KiB of free units, none in the free lists. */
	for (i = 100; i < 104; i++)
		must_free(s, e[i].handle);
	st = stats(s);
	ASSERT_U64(st.cached_extents, 4);
	/* 48 KiB fits only over them: the cache goes back first. */
	f = must_alloc(s, 48 * KiB, 0, 0);
	ASSERT_U64(f.offset, e[100].offset);
	ASSERT_U64(stats(s).cached_extents, 0);
	must_free(s, f.handle);
	/* A claim over a cached extent, and one across two. */
	must_free(s, e[10].handle);
	must_free(s, e[11].handle);
	must_free(s, e[200].handle);
	ASSERT_U64(stats(s).cached_extents, 3);
	/* Only the two it overlaps go back. */
	f = must_claim(s, e[10].offset + 4 * KiB, 16 * KiB);
	ASSERT_U64(stats(s).cached_extents, 1);
	ASSERT_U64(must_alloc(s, 12 * KiB, 0, 0).offset, e[200].offset);
	must_free(s, f.handle);
	/* A refusal that no drain can help still refuses. */
	{
		struct potad_alloc_req r = req_of(2 * MiB, 0, 0);

		ASSERT_RC(potad_alloc(s, &r, &f), -ENOSPC);
	}
	CHECK_OK(s);
	destroy(s);
}
END_TEST

START_TEST(cache_limits)
{
	struct potad_space *s = mk(0, GiB, 12);
	struct potad_extent e[8], f;
	struct potad_stats st;
	int i;

	/* The ring holds two: a third free returns the oldest. */
	ASSERT_RC(potad_space_set_cache(s, 64 * KiB, 2), 0);
	for (i = 0; i < 3; i++)
		e[i] = must_alloc(s, 12 * KiB, 0, 0);
	for (i = 0; i < 3; i++)
		must_free(s, e[i].handle);
	st = stats(s);
	ASSERT_U64(st.cached_extents, 2);
	ASSERT_U64(st.cached_units, 6);
	/* Newest first: e[2], then e[1]; e[0] went back to the lists. */
	ASSERT_U64(must_alloc(s, 12 * KiB, 0, 0).offset, e[2].offset);
	ASSERT_U64(must_alloc(s, 12 * KiB, 0, 0).offset, e[1].offset);
	ASSERT_U64(stats(s).cached_extents, 0);

	/* A power of two off its own alignment is not cached: a plain
	 * request for it would have been aligned. */
	ASSERT_RC(potad_space_set_cache(s, 64 * KiB, 64), 0);
	f = must_claim(s, 512 * MiB + 4 * KiB, 16 * KiB);
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 0);
	f = must_claim(s, 512 * MiB + 16 * KiB, 16 * KiB);
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 1);
	ASSERT_U64(must_alloc(s, 16 * KiB, 0, 0).offset, 512 * MiB + 16 * KiB);

	/* Poison reaches a cached extent's units: it goes back first, and
	 * the poisoned unit stays out. */
	f = must_alloc(s, 12 * KiB, 0, 0);
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 1);
	ASSERT_RC(potad_poison(s, f.offset + 4 * KiB, 4 * KiB, NULL, NULL), 0);
	CHECK_OK(s);
	st = stats(s);
	ASSERT_U64(st.cached_extents, 0);
	ASSERT_U64(st.poison_units, 1);
	e[3] = must_alloc(s, 12 * KiB, 0, 0);
	ck_assert(e[3].offset != f.offset);
	/* An extent with a poisoned unit is never cached. */
	f = must_claim(s, 768 * MiB, 12 * KiB);
	ASSERT_RC(potad_poison(s, 768 * MiB, 4 * KiB, NULL, NULL), 1);
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 0);

	/* potad_set_clean() and potad_place() see the free lists whole. */
	f = must_alloc(s, 12 * KiB, 0, 0);
	must_free(s, f.handle);
	ASSERT_RC(potad_set_clean(s, f.offset, 12 * KiB, 0), 0);
	CHECK_OK(s);
	st = stats(s);
	ASSERT_U64(st.cached_extents, 0);
	ASSERT_U64(st.dirty_units, 3);
	f = must_alloc(s, 12 * KiB, 0, 0);
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 1);
	ASSERT_RC(potad_place(s, &f), 0);
	CHECK_OK(s);
	ASSERT_U64(stats(s).cached_extents, 0);
	ASSERT_RC(potad_lookup(s, f.offset, &e[4]), 0);
	ASSERT_U64(e[4].handle, f.handle);

	/* Turning it off returns what it holds. */
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 1);
	ASSERT_RC(potad_space_set_cache(s, 0, 0), 0);
	CHECK_OK(s);
	ASSERT_U64(stats(s).cached_extents, 0);
	f = must_alloc(s, 12 * KiB, 0, 0);
	must_free(s, f.handle);
	ASSERT_U64(stats(s).cached_extents, 0);

	/* At most 1/64 of the space's units: a 64-unit space caches
	 * nothing above one unit. */
	{
		struct potad_space *t = mk(0, 64 * 4 * KiB, 12);

		ASSERT_RC(potad_space_set_cache(t, 64 * KiB, 16), 0);
		f = must_alloc(t, 8 * KiB, 0, 0);
		must_free(t, f.handle);
		ASSERT_U64(stats(t).cached_extents, 0);
		f = must_alloc(t, 4 * KiB, 0, 0);
		must_free(t, f.handle);
		ASSERT_U64(stats(t).cached_extents, 1);
		destroy(t);
	}
	destroy(s);
}
END_TEST

START_TEST(cache_child_destroy_clean)
{
	struct potad_space *s = mk(0, GiB, 12), *c;
	struct potad_extent host, e;

	host = must_alloc(s, 64 * MiB, 0, 0);
	ASSERT_RC(potad_child_new(s, host.handle, 12, &c), 0);
	ASSERT_RC(potad_space_set_cache(c, 64 * KiB, 16), 0);
	e = must_alloc(c, 12 * KiB, 0, 0);
	must_free(c, e.handle);
	ASSERT_U64(stats(c).cached_extents, 1);
	/* Only cached extents left: the host comes back clean. */
	ASSERT_RC(potad_space_destroy(c), 0);
	CHECK_OK(s);
	ASSERT_U64(stats(s).dirty_units, 0);
	destroy(s);
}
END_TEST

START_TEST(cache_check_catches)
{
	struct potad_space *s = mk(0, GiB, 12);
	struct potad_extent e = {0};
	char msg[256];
	uint32_t slot;

	ASSERT_RC(potad_space_set_cache(s, 64 * KiB, 16), 0);
	e = must_alloc(s, 12 * KiB, 0, 0);
	slot = POTAD_HANDLE_SLOT(e.handle);
	must_free(s, e.handle);
	s->qextents++;
	ck_assert_int_eq(potad_space_check(s, msg, sizeof(msg)), -EUCLEAN);
	s->qextents--;
	s->qunits--;
	ck_assert_int_eq(potad_space_check(s, msg, sizeof(msg)), -EUCLEAN);
	s->qunits++;
	DESC(s, slot)->tag = slot;
	ck_assert_int_eq(potad_space_check(s, msg, sizeof(msg)), -EUCLEAN);
	ck_assert_msg(strstr(msg, "list of length 3") != NULL, "%s", msg);
	DESC(s, slot)->tag = SLOT_NIL;
	s->ring[s->qfirst].gen++;
	ck_assert_int_eq(potad_space_check(s, msg, sizeof(msg)), -EUCLEAN);
	s->ring[s->qfirst].gen--;
	CHECK_OK(s);
	destroy(s);
}
END_TEST

static Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc;

	tc = tcase_create("space_new");
	tcase_add_test(tc, new_every_granule);
	tcase_add_test(tc, new_refusals);
	tcase_add_test(tc, new_seeding);
	tcase_add_test(tc, new_largest_sizes);
	tcase_add_test(tc, new_meta_small);
	suite_add_tcase(s, tc);

	tc = tcase_create("alloc");
	tcase_add_test(tc, alloc_exact_trim);
	tcase_add_test(tc, alloc_whole);
	tcase_add_test(tc, alloc_no_max_order);
	tcase_add_test(tc, alloc_alignment);
	tcase_add_test(tc, alloc_smallest_block_first);
	tcase_add_test(tc, alloc_align_small_block);
	tcase_add_test(tc, alloc_align_small_block_topdown);
	tcase_add_test(tc, alloc_cma);
	tcase_add_test(tc, alloc_run_bound);
	tcase_add_test(tc, alloc_range);
	tcase_add_test(tc, alloc_topdown);
	tcase_add_test(tc, alloc_fixed);
	tcase_add_test(tc, alloc_refusals);
	suite_add_tcase(s, tc);

	tc = tcase_create("free");
	tcase_add_test(tc, free_merges_back);
	tcase_add_test(tc, free_double);
	tcase_add_test(tc, free_forged);
	tcase_add_test(tc, free_stale_generation);
	tcase_add_test(tc, free_child_host_busy);
	tcase_add_test(tc, free_every_range);
	tcase_add_test(tc, desc_widths);
	tcase_add_test(tc, shrink_tail);
	tcase_add_test(tc, shrink_poison_and_child);
	suite_add_tcase(s, tc);

	tc = tcase_create("lookup");
	tcase_add_test(tc, lookup_points);
	tcase_add_test(tc, extent_next_walk);
	tcase_add_test(tc, extent_foreach_owner);
	suite_add_tcase(s, tc);

	tc = tcase_create("poison");
	tcase_add_test(tc, poison_free_space);
	tcase_add_test(tc, poison_extents);
	tcase_add_test(tc, poison_refusals);
	suite_add_tcase(s, tc);

	tc = tcase_create("child");
	tcase_add_test(tc, child_basic);
	tcase_add_test(tc, child_poison);
	tcase_add_test(tc, child_destroy);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	tcase_add_test(tc, stats_buddyinfo);
	tcase_add_test(tc, frag_score);
	tcase_add_test(tc, frag_largest_run);
	suite_add_tcase(s, tc);

	tc = tcase_create("replay");
	tcase_add_test(tc, place_fresh);
	tcase_add_test(tc, place_poisoned);
	tcase_add_test(tc, place_refusals);
	tcase_add_test(tc, place_handles);
	tcase_add_test(tc, place_gen_max);
	tcase_add_test(tc, place_restore);
	tcase_add_test(tc, poison_next_walk);
	tcase_add_test(tc, poison_again_same);
	suite_add_tcase(s, tc);

	tc = tcase_create("clean");
	tcase_add_test(tc, clean_fresh);
	tcase_add_test(tc, clean_free_dirty);
	tcase_add_test(tc, clean_merge_rules);
	tcase_add_test(tc, clean_split_keeps_state);
	tcase_add_test(tc, clean_fixed);
	tcase_add_test(tc, clean_cma);
	tcase_add_test(tc, clean_set_clean_held_poisoned);
	tcase_add_test(tc, clean_dirty_next_walk);
	tcase_add_test(tc, clean_child_destroy);
	tcase_add_test(tc, clean_free_ex_flags);
	tcase_add_test(tc, clean_search_skips_dirty);
	tcase_add_test(tc, clean_check_catches);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_test(tc, cache_reuse);
	tcase_add_test(tc, cache_longer_fits);
	tcase_add_test(tc, cache_returns_for_room);
	tcase_add_test(tc, cache_limits);
	tcase_add_test(tc, cache_child_destroy_clean);
	tcase_add_test(tc, cache_check_catches);
	suite_add_tcase(s, tc);

	tc = tcase_create("radix");
	tcase_add_test(tc, radix_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("edge64");
	tcase_add_test(tc, edge_top_byte_granule);
	tcase_add_test(tc, edge_top_page_granule);
	tcase_add_test(tc, edge_whole_range);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(engine_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
