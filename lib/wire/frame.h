/* SPDX-License-Identifier: MIT */
/* Delimited framing: each protobuf message preceded by its length as a
 * base-128 varint.  Shared by the daemon and the client library. */
#ifndef POTAD_WIRE_FRAME_H
#define POTAD_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* A varint is at most 10 bytes. */
#define POTAD_VARINT_MAX 10
/* Protocol version spoken by this tree. */
#define POTAD_PROTOCOL 1

/* Write v as a varint into out; returns the number of bytes (1..10). */
size_t potad__varint_put(uint64_t v, uint8_t out[POTAD_VARINT_MAX]);

/* Read a varint from the n bytes at p.  Returns the number of bytes used,
 * 0 if more bytes are needed, or -EBADMSG for a varint longer than 10
 * bytes or one that overflows 64 bits. */
int potad__varint_get(const uint8_t *p, size_t n, uint64_t *v);

#endif /* POTAD_WIRE_FRAME_H */
