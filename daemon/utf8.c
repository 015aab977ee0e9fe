/* SPDX-License-Identifier: MIT */
/* Whether every string in a decoded protobuf message is valid UTF-8. */
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_ok(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s++, n, min;
		uint32_t cp;

		if (c < 0x80)
			continue;
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			min = 0x80;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			min = 0x800;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			min = 0x10000;
			cp = c & 0x07;
		} else {
			return false;
		}
		while (n--) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*s++ & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/*
 * proto3 strings must be UTF-8, and stock protobuf libraries reject a
 * message that breaks the rule.  The daemon echoes labels and names back
 * to every client that lists or looks up, so one bad string would break
 * everyone's replies: refuse the request instead.  protobuf-c does not
 * check, so walk every string field through the descriptors.
 */
bool potad__strings_ok(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t count = 1;
		const void *const *items;

		if (f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t which = *(const uint32_t *)((const char *)m +
							     f->quantifier_offset);

			if (which != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)((const char *)m +
						  f->quantifier_offset);
			items = *(const void *const *const *)base;
		} else {
			items = (const void *const *)base;
		}
		for (size_t k = 0; k < count; k++) {
			const void *v = items[k];

			if (!v)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING
				    ? !utf8_ok(v)
				    : !potad__strings_ok(v))
				return false;
		}
	}
	return true;
}
