/* SPDX-License-Identifier: MIT */
/* Snapshots: the daemon's whole state written as journal records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon.h"
#include "journal.h"
#include "journal/journal.h"

/*
 * A snapshot file is a file header (its seq: the first log seq it does not
 * cover) and one commit batch of records numbered from 1: for each space in
 * registration order (so a parent comes before its children) a SPACE
 * record, its poison as POISON records, its extents in address order as
 * EXTENTS records of up to 4096 entries; then every idempotency token as a
 * TOKEN record; then END with the counts.  Restoring it is replaying it.
 * Poison comes before the extents so that restore can place extents over
 * poisoned units, and a child's SPACE record comes after the parent's
 * extents, which include the one that hosts it.
 */

#define PER_RECORD 4096

struct out {
	uint8_t *p;
	size_t len, cap;
	uint64_t seq;
	uint64_t salt;
	int err;
	/* the EXTENTS record being filled */
	size_t ext_at; /* offset of its header, 0: none open */
	uint32_t ext_n;
	uint64_t space;
	const struct pspace *ps;
	uint64_t extents;
};

static uint8_t *room(struct out *o, size_t n)
{
	if (o->err)
		return NULL;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 1 << 20;
		uint8_t *t;

		while (cap < o->len + n)
			cap *= 2;
		t = realloc(o->p, cap);
		if (!t) {
			o->err = -ENOMEM;
			return NULL;
		}
		o->p = t;
		o->cap = cap;
	}
	return o->p + o->len;
}

/* Start a record of up to n payload bytes; returns its payload. */
static uint8_t *start(struct out *o, size_t n)
{
	uint8_t *p = room(o, potad__jrec_size(n));

	return p ? p + POTAD_J_REC_HDR : NULL;
}

static void finish(struct out *o, unsigned type, size_t len)
{
	if (o->err)
		return;
	/* One batch, written with nothing durable. */
	o->len += potad__jrec_seal(o->p + o->len, o->salt, o->seq, type, 0,
				   (uint32_t)len);
	o->seq++;
}

static void close_extents(struct out *o)
{
	uint8_t *p;
	size_t len;

	if (!o->ext_n || o->err)
		return;
	p = o->p + o->ext_at + POTAD_J_REC_HDR;
	len = o->len - o->ext_at - POTAD_J_REC_HDR;
	/* The count sits after the space id. */
	p[8] = (uint8_t)o->ext_n;
	p[9] = (uint8_t)(o->ext_n >> 8);
	p[10] = (uint8_t)(o->ext_n >> 16);
	p[11] = (uint8_t)(o->ext_n >> 24);
	o->len = o->ext_at;
	finish(o, POTAD_J_EXTENTS, len);
	o->ext_n = 0;
}

static int one_extent(const struct potad_extent *e, void *arg)
{
	struct out *o = arg;
	const struct powner *ow = potad__owner(e->owner);
	struct potad_jalloc a = {
		.handle = e->handle,
		.offset = e->offset,
		.length = e->length,
		.tag = e->tag,
		.uid = ow ? (uint32_t)ow->uid : 0,
		.flags = ow && ow->conn ? POTAD_JA_SESSION : 0,
		.label = ow ? ow->label : NULL,
	};
	size_t n = potad__jenc_extent(NULL, &a);
	uint8_t *p;

	if (e->handle == o->ps->discard_handle)
		return 0; /* a discard's hold: written as dirty free space */
	if (o->ext_n == PER_RECORD)
		close_extents(o);
	if (!o->ext_n) {
		struct potad_jcur c;

		p = room(o, POTAD_J_REC_HDR + 12);
		if (!p)
			return 1;
		o->ext_at = o->len;
		c = (struct potad_jcur){.p = p + POTAD_J_REC_HDR};
		potad__jput_u64(&c, o->space);
		potad__jput_u32(&c, 0);
		o->len += POTAD_J_REC_HDR + 12;
	}
	/* Keep room for the padding finish() adds. */
	p = room(o, n + 8);
	if (!p)
		return 1;
	potad__jenc_extent(p, &a);
	o->len += n;
	o->ext_n++;
	o->extents++;
	return 0;
}

static int one_token(uid_t uid, const char *token, const struct pspace *ps,
		     uint64_t handle, void *arg)
{
	struct out *o = arg;
	struct potad_jalloc a = {
		.space = ps->id, .handle = handle, .uid = (uint32_t)uid,
		.token = token,
	};
	size_t n = potad__jenc_alloc(NULL, &a);
	uint8_t *p = start(o, n);

	if (!p)
		return 1;
	potad__jenc_alloc(p, &a);
	finish(o, POTAD_J_TOKEN, n);
	return 0;
}

static bool dirty_range(struct out *o, const struct pspace *ps, uint64_t off,
			uint64_t len)
{
	const uint64_t r[1][2] = {{off, len}};
	size_t n = potad__jenc_clean(NULL, ps->id, false, r, 1);
	uint8_t *p = start(o, n);

	if (!p)
		return false;
	potad__jenc_clean(p, ps->id, false, r, 1);
	finish(o, POTAD_J_CLEAN, n);
	return true;
}

static void one_space(struct out *o, const struct pspace *ps)
{
	struct potad_jspace js;
	uint64_t off = 0, s, l;
	size_t n;
	uint8_t *p;

	potad__jspace_of(ps, &js);
	js.genfloor = potad_space_gen_max(ps->eng);
	n = potad__jenc_space(NULL, &js);
	p = start(o, n);
	if (!p)
		return;
	potad__jenc_space(p, &js);
	finish(o, POTAD_J_SPACE, n);
	while (potad_poison_next(ps->eng, off, &s, &l) == 0) {
		p = start(o, 24);
		if (!p)
			return;
		potad__jenc_ids(p, ps->id, s, l);
		finish(o, POTAD_J_POISON, 24);
		off = s + l;
	}
	/* Dirty free space, and the range being discarded, which is held
	 * by an extent no one owns: after a restore it is dirty and free. */
	off = 0;
	while (potad_dirty_next(ps->eng, off, &s, &l) == 0) {
		if (!dirty_range(o, ps, s, l))
			return;
		off = s + l;
	}
	if (ps->discard_handle &&
	    !dirty_range(o, ps, ps->discard_off, ps->discard_len))
		return;
	o->space = ps->id;
	o->ps = ps;
	potad_extent_foreach(ps->eng, 0, 0, one_extent, o);
	close_extents(o);
}

int potad__snapshot_build(uint64_t next_seq, uint8_t **buf, size_t *len,
			  uint64_t *extents)
{
	struct out o = {.seq = 1};
	struct potad_jfile h = {.snapshot = true, .seq = next_seq};
	size_t nspaces = potad__space_count();
	uint8_t *p;

	if (getrandom(&o.salt, sizeof(o.salt), 0) != sizeof(o.salt) || !o.salt)
		o.salt = next_seq * 0x9e3779b97f4a7c15ull | 1;
	h.salt = o.salt;
	if (!room(&o, POTAD_J_HDR))
		return -ENOMEM;
	potad__jfile_encode(&h, o.p);
	o.len = POTAD_J_HDR;
	for (size_t i = 0; i < nspaces && !o.err; i++)
		one_space(&o, potad__space_at(i));
	potad__token_foreach(one_token, &o);
	p = start(&o, 24);
	if (p) {
		potad__jenc_ids(p, nspaces, o.extents, potad__space_next_id());
		finish(&o, POTAD_J_END, 24);
	}
	if (o.err) {
		free(o.p);
		return o.err;
	}
	*buf = o.p;
	*len = o.len;
	*extents = o.extents;
	return 0;
}

void potad__jspace_of(const struct pspace *ps, struct potad_jspace *js)
{
	struct potad_stats st;

	potad_space_stats(ps->eng, &st);
	memset(js, 0, sizeof(*js));
	js->id = ps->id;
	js->salt = ps->salt;
	js->base = st.base;
	js->size = st.size;
	js->parent = ps->parent ? ps->parent->id : 0;
	js->host = ps->host_handle;
	js->kind = (uint32_t)ps->kind;
	js->granule_shift = (unsigned)__builtin_ctzll(st.granule);
	js->flags = (ps->reserve ? POTAD_JS_RESERVE : 0) |
		    (ps->allow_all ? POTAD_JS_ALLOW_ALL : 0) |
		    (ps->force ? POTAD_JS_FORCE : 0) |
		    (ps->discard ? POTAD_JS_DISCARD : 0) |
		    (ps->isolate ? POTAD_JS_ISOLATE : 0);
	js->name = ps->name;
	js->source = ps->source;
	js->identity = ps->identity ? ps->identity : "";
	js->bar = ps->bar;
	/* uid_t and gid_t are 32-bit on Linux. */
	js->uids = (const uint32_t *)ps->uids;
	js->nuids = (uint16_t)ps->nuids;
	js->gids = (const uint32_t *)ps->gids;
	js->ngids = (uint16_t)ps->ngids;
}
