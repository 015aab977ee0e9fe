/* SPDX-License-Identifier: MIT */
/* Where L units aligned to A fit inside [a, b): arithmetic the allocator
 * and the benchmark's candidate engine (bench/refseg*.c) share. */
#ifndef POTAD_ENGINE_FIT_H
#define POTAD_ENGINE_FIT_H

#include <stdbool.h>
#include <stdint.h>

/* x rounded up to a multiple of a (a power of two); false if that wraps. */
static inline bool align_up(uint64_t x, uint64_t a, uint64_t *r)
{
	uint64_t y = x & ~(a - 1);

	if (y < x) {
		y += a;
		if (y < x)
			return false;
	}
	*r = y;
	return true;
}

/* Fit L units aligned to A inside [a, b); lowest or (down) highest
 * position in *p. */
static inline bool fit(uint64_t a, uint64_t b, uint64_t L, uint64_t A,
		       bool down, uint64_t *p)
{
	uint64_t x;

	if (b <= a || b - a < L)
		return false;
	if (down) {
		x = (b - L) & ~(A - 1);
		if (x < a)
			return false;
	} else if (!align_up(a, A, &x) || x > b - L) {
		return false;
	}
	*p = x;
	return true;
}

#endif /* POTAD_ENGINE_FIT_H */
