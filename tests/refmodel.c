/* SPDX-License-Identifier: MIT */
/* The reference model of a potad space: sorted arrays of live extents,
 * poisoned unit ranges and dirty free unit ranges, searched linearly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refmodel.h"

/* The tests cannot go on without memory, so running out ends the program
 * with a message rather than an error every caller must handle. */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	p = realloc(p, n * elem);
	if (p == NULL) {
		fprintf(stderr, "refmodel: out of memory\n");
		abort();
	}
	*cap = n;
	return p;
}

void ref_init(struct ref_model *m, uint64_t base, uint64_t size, unsigned shift)
{
	memset(m, 0, sizeof(*m));
	m->shift = shift;
	m->first = base >> shift;
	m->last = m->first + (size >> shift);
}

void ref_fini(struct ref_model *m)
{
	free(m->ext);
	free(m->poison);
	free(m->dirty);
	memset(m, 0, sizeof(*m));
}

size_t ref_first_ending_after(const struct ref_model *m, uint64_t u)
{
	size_t lo = 0, hi = m->n_ext;

	/* Extents are disjoint and sorted by start, so their ends are sorted
	 * too and a binary search on the end is valid. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->ext[mid].end <= u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t first_poison_ending_after(const struct ref_model *m, uint64_t u)
{
	size_t lo = 0, hi = m->n_poison;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->poison[mid].end <= u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t first_dirty_ending_after(const struct ref_model *m, uint64_t u)
{
	size_t lo = 0, hi = m->n_dirty;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->dirty[mid].end <= u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Take [a, b) out of the dirty list, cutting the ranges it splits. */
static void dirty_cut(struct ref_model *m, uint64_t a, uint64_t b)
{
	size_t i = first_dirty_ending_after(m, a), j;
	struct ref_range left = {0, 0}, right = {0, 0};
	size_t keep = 0;

	for (j = i; j < m->n_dirty && m->dirty[j].start < b; j++) {
		uint64_t lo = m->dirty[j].start > a ? m->dirty[j].start : a;
		uint64_t hi = m->dirty[j].end < b ? m->dirty[j].end : b;

		m->dirty_units -= hi - lo;
	}
	if (i == j)
		return;
	if (m->dirty[i].start < a) {
		left.start = m->dirty[i].start;
		left.end = a;
		keep++;
	}
	if (m->dirty[j - 1].end > b) {
		right.start = b;
		right.end = m->dirty[j - 1].end;
		keep++;
	}
	m->dirty =
	    grow(m->dirty, &m->cap_dirty, m->n_dirty + 1, sizeof(*m->dirty));
	memmove(&m->dirty[i + keep], &m->dirty[j],
		(m->n_dirty - j) * sizeof(*m->dirty));
	m->n_dirty = m->n_dirty - (j - i) + keep;
	if (left.end)
		m->dirty[i++] = left;
	if (right.end)
		m->dirty[i] = right;
}

/* Add [a, b), whose units are free, to the dirty list, merging it with the
 * ranges it overlaps or touches. */
static void dirty_add(struct ref_model *m, uint64_t a, uint64_t b)
{
	size_t i, j;

	if (a >= b)
		return;
	dirty_cut(m, a, b);
	m->dirty_units += b - a;
	i = a > 0 ? first_dirty_ending_after(m, a - 1) : 0;
	j = i;
	if (j < m->n_dirty && m->dirty[j].start <= a) {
		a = m->dirty[j].start;
		j++;
	}
	if (j < m->n_dirty && m->dirty[j].start == b) {
		b = m->dirty[j].end;
		j++;
	}
	if (j == i) {
		m->dirty = grow(m->dirty, &m->cap_dirty, m->n_dirty + 1,
				sizeof(*m->dirty));
		memmove(&m->dirty[i + 1], &m->dirty[i],
			(m->n_dirty - i) * sizeof(*m->dirty));
		m->n_dirty++;
	} else {
		memmove(&m->dirty[i + 1], &m->dirty[j],
			(m->n_dirty - j) * sizeof(*m->dirty));
		m->n_dirty -= j - i - 1;
	}
	m->dirty[i].start = a;
	m->dirty[i].end = b;
}

size_t ref_first_from_addr(const struct ref_model *m, uint64_t off)
{
	size_t i;

	for (i = ref_first_ending_after(m, off >> m->shift); i < m->n_ext; i++)
		if (m->ext[i].desc.offset >= off)
			break;
	return i;
}

long ref_find_unit(const struct ref_model *m, uint64_t u)
{
	size_t i = ref_first_ending_after(m, u);

	if (i < m->n_ext && m->ext[i].start <= u)
		return (long)i;
	return -1;
}

long ref_find_handle(const struct ref_model *m, uint64_t handle)
{
	for (size_t i = 0; i < m->n_ext; i++)
		if (m->ext[i].desc.handle == handle)
			return (long)i;
	return -1;
}

int ref_any_held(const struct ref_model *m, uint64_t start, uint64_t end)
{
	size_t i = ref_first_ending_after(m, start);

	return i < m->n_ext && m->ext[i].start < end;
}

int ref_any_poisoned(const struct ref_model *m, uint64_t start, uint64_t end)
{
	size_t j = first_poison_ending_after(m, start);

	return j < m->n_poison && m->poison[j].start < end;
}

/* The first free run that starts at or after unit pos: sets [*a, *b) and
 * returns 1, or returns 0 when no unit from pos to the space's end is
 * free.  A run ends where the next extent or poisoned range begins. */
static int next_gap(const struct ref_model *m, uint64_t pos, uint64_t *a,
		    uint64_t *b)
{
	size_t i = ref_first_ending_after(m, pos);
	size_t j = first_poison_ending_after(m, pos);
	uint64_t end;

	if (pos < m->first)
		pos = m->first;
	for (;;) {
		while (i < m->n_ext && m->ext[i].end <= pos)
			i++;
		while (j < m->n_poison && m->poison[j].end <= pos)
			j++;
		if (pos >= m->last)
			return 0;
		if (i < m->n_ext && m->ext[i].start <= pos) {
			pos = m->ext[i].end;
			continue;
		}
		if (j < m->n_poison && m->poison[j].start <= pos) {
			pos = m->poison[j].end;
			continue;
		}
		break;
	}
	end = m->last;
	if (i < m->n_ext && m->ext[i].start < end)
		end = m->ext[i].start;
	if (j < m->n_poison && m->poison[j].start < end)
		end = m->poison[j].start;
	*a = pos;
	*b = end;
	return 1;
}

/* next_gap() over clean units: a run also ends where dirty units begin. */
static int next_clean_gap(const struct ref_model *m, uint64_t pos, uint64_t *a,
			  uint64_t *b)
{
	while (next_gap(m, pos, a, b)) {
		size_t d = first_dirty_ending_after(m, *a);

		if (d < m->n_dirty && m->dirty[d].start <= *a) {
			/* A dirty run lies inside one free run. */
			pos = m->dirty[d].end;
			continue;
		}
		if (d < m->n_dirty && m->dirty[d].start < *b)
			*b = m->dirty[d].start;
		return 1;
	}
	return 0;
}

static int fit_in(const struct ref_model *m, uint64_t lo, uint64_t hi,
		  uint64_t len, uint64_t align, int clean, uint64_t *at)
{
	uint64_t a, b, p, pos = lo;

	while (pos < hi &&
	       (clean ? next_clean_gap(m, pos, &a, &b)
		      : next_gap(m, pos, &a, &b)) &&
	       a < hi) {
		if (b > hi)
			b = hi;
		/* Round a up to the alignment without wrapping past 2^64:
		 * a wrap means no aligned start is left in the space. */
		p = a;
		if (p & (align - 1)) {
			uint64_t add = align - (p & (align - 1));

			if (p > UINT64_MAX - add)
				return 0;
			p += add;
		}
		if (p <= b && b - p >= len) {
			*at = p;
			return 1;
		}
		pos = b;
	}
	return 0;
}

int ref_fit(const struct ref_model *m, uint64_t lo, uint64_t hi, uint64_t len,
	    uint64_t align, uint64_t *at)
{
	return fit_in(m, lo, hi, len, align, 0, at);
}

int ref_fit_clean(const struct ref_model *m, uint64_t lo, uint64_t hi,
		  uint64_t len, uint64_t align, uint64_t *at)
{
	return fit_in(m, lo, hi, len, align, 1, at);
}

int ref_any_dirty(const struct ref_model *m, uint64_t start, uint64_t end)
{
	size_t d = first_dirty_ending_after(m, start);

	return d < m->n_dirty && m->dirty[d].start < end;
}

int ref_dirty_next(const struct ref_model *m, uint64_t u, uint64_t *start,
		   uint64_t *end)
{
	size_t d = first_dirty_ending_after(m, u);

	if (d >= m->n_dirty)
		return 0;
	*start = m->dirty[d].start;
	*end = m->dirty[d].end;
	return 1;
}

/* The number of maximal aligned blocks [a, b) is cut into. */
static uint64_t pieces(uint64_t a, uint64_t b)
{
	uint64_t n = 0;

	while (a < b) {
		unsigned k = 63 - (unsigned)__builtin_clzll(b - a);

		if (a && (unsigned)__builtin_ctzll(a) < k)
			k = (unsigned)__builtin_ctzll(a);
		a += 1ull << k;
		n++;
	}
	return n;
}

void ref_blocks(const struct ref_model *m, uint64_t *free_blocks,
		uint64_t *dirty_blocks, uint64_t *largest_run)
{
	uint64_t pos = m->first, end, a;
	size_t i = 0, j = 0, d = 0;

	*free_blocks = 0;
	*dirty_blocks = 0;
	*largest_run = 0;
	/* One pass over the three lists side by side, free run by free
	 * run, each cut where the state changes. */
	for (;;) {
		while (i < m->n_ext && m->ext[i].end <= pos)
			i++;
		while (j < m->n_poison && m->poison[j].end <= pos)
			j++;
		if (pos >= m->last)
			break;
		if (i < m->n_ext && m->ext[i].start <= pos) {
			pos = m->ext[i].end;
			continue;
		}
		if (j < m->n_poison && m->poison[j].start <= pos) {
			pos = m->poison[j].end;
			continue;
		}
		end = m->last;
		if (i < m->n_ext && m->ext[i].start < end)
			end = m->ext[i].start;
		if (j < m->n_poison && m->poison[j].start < end)
			end = m->poison[j].start;
		if (end - pos > *largest_run)
			*largest_run = end - pos;
		while (d < m->n_dirty && m->dirty[d].end <= pos)
			d++;
		for (a = pos; d < m->n_dirty && m->dirty[d].start < end; d++) {
			uint64_t n = pieces(m->dirty[d].start, m->dirty[d].end);

			*free_blocks += pieces(a, m->dirty[d].start) + n;
			*dirty_blocks += n;
			a = m->dirty[d].end;
		}
		*free_blocks += pieces(a, end);
		pos = end;
	}
}

uint64_t ref_largest_free_run(const struct ref_model *m)
{
	uint64_t a, b, best = 0, pos = m->first;

	while (next_gap(m, pos, &a, &b)) {
		if (b - a > best)
			best = b - a;
		pos = b;
	}
	return best;
}

void ref_insert(struct ref_model *m, const struct ref_extent *e)
{
	size_t i = ref_first_ending_after(m, e->start);

	m->ext = grow(m->ext, &m->cap_ext, m->n_ext + 1, sizeof(*m->ext));
	memmove(&m->ext[i + 1], &m->ext[i], (m->n_ext - i) * sizeof(*m->ext));
	m->ext[i] = *e;
	m->n_ext++;
	m->used_units += e->end - e->start;
	dirty_cut(m, e->start, e->end);
}

/* Mark the unpoisoned units of [a, b), free ones, dirty. */
static void dirty_add_unpoisoned(struct ref_model *m, uint64_t a, uint64_t b)
{
	for (size_t j = first_poison_ending_after(m, a);
	     a < b && j < m->n_poison && m->poison[j].start < b; j++) {
		dirty_add(m, a,
			  m->poison[j].start > a ? m->poison[j].start : a);
		a = m->poison[j].end;
	}
	if (a < b)
		dirty_add(m, a, b);
}

void ref_remove(struct ref_model *m, size_t i, int dirty)
{
	uint64_t a = m->ext[i].start, b = m->ext[i].end;

	m->used_units -= m->ext[i].end - m->ext[i].start;
	memmove(&m->ext[i], &m->ext[i + 1],
		(m->n_ext - i - 1) * sizeof(*m->ext));
	m->n_ext--;
	if (dirty)
		dirty_add_unpoisoned(m, a, b);
}

void ref_shrink(struct ref_model *m, size_t i, uint64_t end, int dirty)
{
	struct ref_extent *x = &m->ext[i];
	uint64_t b = x->end;

	m->used_units -= b - end;
	x->end = end;
	x->desc.length = (end - x->start) << m->shift;
	x->desc.flags &= ~POTAD_EXTENT_POISONED;
	if (ref_any_poisoned(m, x->start, end))
		x->desc.flags |= POTAD_EXTENT_POISONED;
	if (dirty)
		dirty_add_unpoisoned(m, end, b);
}

void ref_set_clean(struct ref_model *m, uint64_t start, uint64_t end, int clean)
{
	uint64_t a, b, pos = start;

	if (clean) {
		dirty_cut(m, start, end);
		return;
	}
	while (pos < end && next_gap(m, pos, &a, &b) && a < end) {
		dirty_add(m, a, b < end ? b : end);
		pos = b;
	}
}

uint64_t ref_poison(struct ref_model *m, uint64_t start, uint64_t end)
{
	uint64_t before = 0, lo = start, hi = end;
	size_t i, j, k;

	/* Merge every range that overlaps or touches [start, end) into one,
	 * so the list stays disjoint and not adjacent. */
	j = start > 0 ? first_poison_ending_after(m, start - 1)
		      : first_poison_ending_after(m, 0);
	for (k = j; k < m->n_poison && m->poison[k].start <= end; k++) {
		before += m->poison[k].end - m->poison[k].start;
		if (m->poison[k].start < lo)
			lo = m->poison[k].start;
		if (m->poison[k].end > hi)
			hi = m->poison[k].end;
	}
	if (k == j) {
		m->poison = grow(m->poison, &m->cap_poison, m->n_poison + 1,
				 sizeof(*m->poison));
		memmove(&m->poison[j + 1], &m->poison[j],
			(m->n_poison - j) * sizeof(*m->poison));
		m->n_poison++;
	} else {
		memmove(&m->poison[j + 1], &m->poison[k],
			(m->n_poison - k) * sizeof(*m->poison));
		m->n_poison -= k - j - 1;
	}
	m->poison[j].start = lo;
	m->poison[j].end = hi;
	m->poison_units += (hi - lo) - before;
	dirty_cut(m, start, end);

	for (i = ref_first_ending_after(m, start);
	     i < m->n_ext && m->ext[i].start < end; i++)
		m->ext[i].desc.flags |= POTAD_EXTENT_POISONED;
	return (hi - lo) - before;
}

uint64_t ref_poison_held(const struct ref_model *m)
{
	uint64_t held = 0;
	size_t i = 0, j = 0;

	/* Both lists are sorted and disjoint: walk them side by side and add
	 * up the overlap of each pair that meets. */
	while (i < m->n_ext && j < m->n_poison) {
		const struct ref_extent *e = &m->ext[i];
		const struct ref_range *r = &m->poison[j];
		uint64_t lo = e->start > r->start ? e->start : r->start;
		uint64_t hi = e->end < r->end ? e->end : r->end;

		if (lo < hi)
			held += hi - lo;
		if (e->end < r->end)
			i++;
		else
			j++;
	}
	return held;
}

void ref_stats(const struct ref_model *m, struct ref_stats *st)
{
	uint64_t held = ref_poison_held(m);

	st->units = m->last - m->first;
	st->used_units = m->used_units;
	st->poison_units = m->poison_units;
	st->free_units = st->units - m->used_units - (m->poison_units - held);
	st->extents = m->n_ext;
	st->dirty_units = m->dirty_units;
}
