/* SPDX-License-Identifier: MIT */
/* Varint length prefixes for the delimited framing. */
#include <errno.h>

#include "frame.h"

size_t potad__varint_put(uint64_t v, uint8_t out[POTAD_VARINT_MAX])
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int potad__varint_get(const uint8_t *p, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < POTAD_VARINT_MAX; i++) {
		if (i == n)
			return 0;
		/* The tenth byte may only hold the 64th bit. */
		if (i == 9 && p[i] > 1)
			return -EBADMSG;
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			return (int)i + 1;
		}
	}
	return -EBADMSG;
}
