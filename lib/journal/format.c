/* SPDX-License-Identifier: MIT */
/* Journal files and records: headers, framing, the scanner, payloads. */
#include <errno.h>
#include <string.h>

#include "journal/journal.h"

/*
 * A log is written in commit batches, each one write and one data sync;
 * a few may be in flight at once.  After a crash the batches in flight
 * can be partly on disk, in any order of their sectors, and nothing else.
 * Each record carries its lag: how far its seq is past the highest seq
 * that was durable when it was written.  So a reader that meets a bad
 * record at seq E can tell the two cases apart: a valid record after it
 * that was written while E was not yet durable (seq - lag < E) may have
 * been in flight with it, and the tail is torn; one written after E was
 * durable means a synced record went bad, which is damage, and start-up
 * must stop rather than guess.
 */

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint32_t seed(uint64_t salt)
{
	return (uint32_t)salt ^ (uint32_t)(salt >> 32);
}

/*
 * File header: magic[8], u32 version, u32 CRC-32C of bytes 0..31 with
 * this field zero, u64 seq, u64 salt.
 */
void potad__jfile_encode(const struct potad_jfile *f, uint8_t out[POTAD_J_HDR])
{
	memcpy(out, f->snapshot ? POTAD_J_MAGIC_SNAP : POTAD_J_MAGIC_LOG, 8);
	le32(out + 8, f->version ? f->version : POTAD_J_VERSION);
	le32(out + 12, 0);
	le64(out + 16, f->seq);
	le64(out + 24, f->salt);
	le32(out + 12, potad__crc32c(0, out, POTAD_J_HDR));
}

int potad__jfile_decode(const uint8_t *p, size_t n, struct potad_jfile *f)
{
	uint8_t tmp[POTAD_J_HDR];

	if (n < POTAD_J_HDR)
		return -EBADMSG;
	if (memcmp(p, POTAD_J_MAGIC_SNAP, 8) == 0)
		f->snapshot = true;
	else if (memcmp(p, POTAD_J_MAGIC_LOG, 8) == 0)
		f->snapshot = false;
	else
		return -EBADMSG;
	memcpy(tmp, p, POTAD_J_HDR);
	le32(tmp + 12, 0);
	if (potad__crc32c(0, tmp, POTAD_J_HDR) != rd32(p + 12))
		return -EBADMSG;
	f->version = rd32(p + 8);
	f->seq = rd64(p + 16);
	f->salt = rd64(p + 24);
	return f->version == POTAD_J_VERSION ? 0 : -EPROTO;
}

size_t potad__jrec_frame(uint8_t *out, uint64_t seq, unsigned type,
			 uint32_t len)
{
	size_t size = potad__jrec_size(len);

	le32(out, len);
	le32(out + 4, 0);
	le64(out + 8, seq);
	le16(out + 16, (uint16_t)type);
	le16(out + 18, 0);
	le32(out + 20, 0);
	memset(out + POTAD_J_REC_HDR + len, 0,
	       size - POTAD_J_REC_HDR - len);
	return size;
}

size_t potad__jrec_sum(uint8_t *rec, uint64_t salt, uint64_t durable)
{
	uint32_t len = rd32(rec);
	uint64_t lag = rd64(rec + 8) - durable;

	le32(rec + 20, lag > UINT32_MAX ? UINT32_MAX : (uint32_t)lag);
	le32(rec + 4, potad__crc32c(seed(salt), rec + 8,
				    POTAD_J_REC_HDR - 8 + len));
	return potad__jrec_size(len);
}

size_t potad__jrec_seal(uint8_t *out, uint64_t salt, uint64_t seq,
			unsigned type, uint64_t durable, uint32_t len)
{
	potad__jrec_frame(out, seq, type, len);
	return potad__jrec_sum(out, salt, durable);
}

bool potad__jrec_parse(const uint8_t *p, size_t n, uint64_t salt,
		       struct potad_jrec *r)
{
	uint32_t len;

	if (n < POTAD_J_REC_HDR)
		return false;
	len = rd32(p);
	if (len > n - POTAD_J_REC_HDR || potad__jrec_size(len) > n)
		return false;
	if (rd32(p + 4) == 0 && len == 0)
		return false;
	if (potad__crc32c(seed(salt), p + 8, POTAD_J_REC_HDR - 8 + len) !=
	    rd32(p + 4))
		return false;
	r->len = len;
	r->seq = rd64(p + 8);
	r->type = rd16(p + 16);
	r->flags = rd16(p + 18);
	r->lag = rd32(p + 20);
	r->payload = p + POTAD_J_REC_HDR;
	r->size = potad__jrec_size(len);
	return true;
}

void potad__jscan_init(struct potad_jscan *s, const uint8_t *buf, size_t len,
		       uint64_t salt, uint64_t first_seq)
{
	memset(s, 0, sizeof(*s));
	s->buf = buf;
	s->len = len;
	s->salt = salt;
	s->next_seq = first_seq;
	s->off = POTAD_J_HDR;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Decide how the file ends, given a bad record at s->off. */
static void classify(struct potad_jscan *s)
{
	struct potad_jrec r;
	size_t end = s->off;

	s->bad_off = s->off;
	if (all_zero(s->buf + s->off, s->len - s->off)) {
		s->end = POTAD_JEND_CLEAN;
		return;
	}
	for (size_t o = s->off; o < s->len; o += 8) {
		if (!all_zero(s->buf + o, s->len - o < 8 ? s->len - o : 8))
			end = o + 8;
		if (o == s->off || !potad__jrec_parse(s->buf + o, s->len - o,
						      s->salt, &r))
			continue;
		if (r.seq >= s->next_seq && r.lag &&
		    r.seq - r.lag < s->next_seq)
			continue; /* in flight with the bad one */
		s->end = POTAD_JEND_DAMAGED;
		s->why = r.seq < s->next_seq
				 ? "a bad record followed by an older one"
				 : "a bad record followed by records written "
				   "after it was synced";
		return;
	}
	s->end = POTAD_JEND_TORN;
	s->dirty_end = end < s->len ? end : s->len;
	s->why = s->len - s->off < POTAD_J_REC_HDR ||
			 rd32(s->buf + s->off) >
			     s->len - s->off - POTAD_J_REC_HDR
		     ? "the last record is incomplete"
		     : "the last record fails its CRC";
}

bool potad__jscan_next(struct potad_jscan *s, struct potad_jrec *r)
{
	if (s->off >= s->len) {
		s->end = POTAD_JEND_CLEAN;
		s->bad_off = s->len;
		return false;
	}
	if (!potad__jrec_parse(s->buf + s->off, s->len - s->off, s->salt, r)) {
		classify(s);
		return false;
	}
	if (r->seq != s->next_seq) {
		s->end = POTAD_JEND_DAMAGED;
		s->bad_off = s->off;
		s->why = "a record out of sequence";
		return false;
	}
	s->off += r->size;
	s->next_seq++;
	return true;
}

/*
 * Payload cursors.
 */
static uint8_t *wr(struct potad_jcur *c, size_t n)
{
	uint8_t *p = c->p;

	if (c->p)
		c->p += n;
	c->left += n; /* writers count what they wrote */
	return p;
}

void potad__jput_u8(struct potad_jcur *c, uint8_t v)
{
	uint8_t *p = wr(c, 1);

	if (p)
		*p = v;
}

void potad__jput_u16(struct potad_jcur *c, uint16_t v)
{
	uint8_t *p = wr(c, 2);

	if (p)
		le16(p, v);
}

void potad__jput_u32(struct potad_jcur *c, uint32_t v)
{
	uint8_t *p = wr(c, 4);

	if (p)
		le32(p, v);
}

void potad__jput_u64(struct potad_jcur *c, uint64_t v)
{
	uint8_t *p = wr(c, 8);

	if (p)
		le64(p, v);
}

void potad__jput_str(struct potad_jcur *c, const char *s)
{
	size_t n = s ? strnlen(s, POTAD_J_STR_MAX) : 0;
	uint8_t *p;

	potad__jput_u16(c, (uint16_t)n);
	p = wr(c, n);
	if (p && n)
		memcpy(p, s, n);
}

static const uint8_t *rd(struct potad_jcur *c, size_t n)
{
	const uint8_t *p = c->r;

	if (c->bad || c->left < n) {
		c->bad = true;
		return NULL;
	}
	c->r += n;
	c->left -= n;
	return p;
}

uint8_t potad__jget_u8(struct potad_jcur *c)
{
	const uint8_t *p = rd(c, 1);

	return p ? *p : 0;
}

uint16_t potad__jget_u16(struct potad_jcur *c)
{
	const uint8_t *p = rd(c, 2);

	return p ? rd16(p) : 0;
}

uint32_t potad__jget_u32(struct potad_jcur *c)
{
	const uint8_t *p = rd(c, 4);

	return p ? rd32(p) : 0;
}

uint64_t potad__jget_u64(struct potad_jcur *c)
{
	const uint8_t *p = rd(c, 8);

	return p ? rd64(p) : 0;
}

const char *potad__jget_str(struct potad_jcur *c, uint16_t *len)
{
	uint16_t n = potad__jget_u16(c);
	const uint8_t *p = rd(c, n);

	*len = p ? n : 0;
	return (const char *)p;
}

/* A terminated copy of the next string, taken from *scratch. */
static const char *get_str(struct potad_jcur *c, char **scratch)
{
	uint16_t n;
	const char *s = potad__jget_str(c, &n);
	char *out = *scratch;

	if (!s)
		return "";
	if (memchr(s, 0, n)) {
		c->bad = true;
		return "";
	}
	memcpy(out, s, n);
	out[n] = '\0';
	*scratch += n + 1;
	return out;
}

static struct potad_jcur writer(uint8_t *out)
{
	struct potad_jcur c = {.p = out};

	return c;
}

static struct potad_jcur reader(const struct potad_jrec *r)
{
	struct potad_jcur c = {.r = r->payload, .left = r->len};

	return c;
}

/*
 * SPACE: u64 id, salt, base, size, parent, host; u32 kind, genfloor;
 * u8 granule shift, flags; then the ACL part: u16 nuids, ngids; str name,
 * source, identity; u8 bar; u32 uids[], gids[].  ACL: u64 id, u8 flags,
 * then the ACL part without the strings and the bar.
 */
static void put_acl(struct potad_jcur *c, const struct potad_jspace *s,
		    bool names)
{
	potad__jput_u16(c, s->nuids);
	potad__jput_u16(c, s->ngids);
	if (names) {
		potad__jput_str(c, s->name);
		potad__jput_str(c, s->source);
		potad__jput_str(c, s->identity);
		potad__jput_u8(c, (uint8_t)s->bar);
	}
	for (unsigned i = 0; i < s->nuids; i++)
		potad__jput_u32(c, s->uids[i]);
	for (unsigned i = 0; i < s->ngids; i++)
		potad__jput_u32(c, s->gids[i]);
}

size_t potad__jenc_space(uint8_t *out, const struct potad_jspace *s)
{
	struct potad_jcur c = writer(out);

	potad__jput_u64(&c, s->id);
	potad__jput_u64(&c, s->salt);
	potad__jput_u64(&c, s->base);
	potad__jput_u64(&c, s->size);
	potad__jput_u64(&c, s->parent);
	potad__jput_u64(&c, s->host);
	potad__jput_u32(&c, s->kind);
	potad__jput_u32(&c, s->genfloor);
	potad__jput_u8(&c, (uint8_t)s->granule_shift);
	potad__jput_u8(&c, (uint8_t)s->flags);
	put_acl(&c, s, true);
	return c.left;
}

size_t potad__jenc_acl(uint8_t *out, const struct potad_jspace *s)
{
	struct potad_jcur c = writer(out);

	potad__jput_u64(&c, s->id);
	potad__jput_u8(&c, (uint8_t)s->flags);
	put_acl(&c, s, false);
	return c.left;
}

/* The ACL arrays are read in place: the payload is 4-byte aligned (records
 * are 8-aligned and the fixed part before them is a multiple of 4) only by
 * accident, so they are copied into scratch instead. */
static int get_acl(struct potad_jcur *c, struct potad_jspace *s,
		   char *scratch, bool names)
{
	uint32_t *ids;

	s->nuids = potad__jget_u16(c);
	s->ngids = potad__jget_u16(c);
	if (names) {
		s->name = get_str(c, &scratch);
		s->source = get_str(c, &scratch);
		s->identity = get_str(c, &scratch);
		s->bar = potad__jget_u8(c);
	}
	scratch += (4 - ((uintptr_t)scratch & 3)) & 3;
	ids = (uint32_t *)(void *)scratch;
	if (c->bad || c->left != 4u * (s->nuids + s->ngids))
		return -EBADMSG;
	for (unsigned i = 0; i < (unsigned)s->nuids + s->ngids; i++)
		ids[i] = potad__jget_u32(c);
	s->uids = ids;
	s->gids = ids + s->nuids;
	return c->bad ? -EBADMSG : 0;
}

int potad__jdec_space(const struct potad_jrec *r, struct potad_jspace *s,
		      char *scratch)
{
	struct potad_jcur c = reader(r);

	memset(s, 0, sizeof(*s));
	s->id = potad__jget_u64(&c);
	s->salt = potad__jget_u64(&c);
	s->base = potad__jget_u64(&c);
	s->size = potad__jget_u64(&c);
	s->parent = potad__jget_u64(&c);
	s->host = potad__jget_u64(&c);
	s->kind = potad__jget_u32(&c);
	s->genfloor = potad__jget_u32(&c);
	s->granule_shift = potad__jget_u8(&c);
	s->flags = potad__jget_u8(&c);
	return get_acl(&c, s, scratch, true);
}

int potad__jdec_acl(const struct potad_jrec *r, struct potad_jspace *s,
		    char *scratch)
{
	struct potad_jcur c = reader(r);

	memset(s, 0, sizeof(*s));
	s->id = potad__jget_u64(&c);
	s->flags = potad__jget_u8(&c);
	return get_acl(&c, s, scratch, false);
}

/*
 * ALLOC (and TOKEN): u64 space, handle, offset, length; u32 tag, uid;
 * u8 flags; str label, token.  An EXTENTS entry is the same without the
 * space and the token.
 */
static void put_extent(struct potad_jcur *c, const struct potad_jalloc *a)
{
	potad__jput_u64(c, a->handle);
	potad__jput_u64(c, a->offset);
	potad__jput_u64(c, a->length);
	potad__jput_u32(c, a->tag);
	potad__jput_u32(c, a->uid);
	potad__jput_u8(c, (uint8_t)a->flags);
	potad__jput_str(c, a->label);
}

size_t potad__jenc_alloc(uint8_t *out, const struct potad_jalloc *a)
{
	struct potad_jcur c = writer(out);

	potad__jput_u64(&c, a->space);
	put_extent(&c, a);
	potad__jput_str(&c, a->token);
	return c.left;
}

size_t potad__jenc_extent(uint8_t *out, const struct potad_jalloc *a)
{
	struct potad_jcur c = writer(out);

	put_extent(&c, a);
	return c.left;
}

static void get_extent(struct potad_jcur *c, struct potad_jalloc *a,
		       char **scratch)
{
	a->handle = potad__jget_u64(c);
	a->offset = potad__jget_u64(c);
	a->length = potad__jget_u64(c);
	a->tag = potad__jget_u32(c);
	a->uid = potad__jget_u32(c);
	a->flags = potad__jget_u8(c);
	a->label = get_str(c, scratch);
}

int potad__jdec_alloc(const struct potad_jrec *r, struct potad_jalloc *a,
		      char *scratch)
{
	struct potad_jcur c = reader(r);

	memset(a, 0, sizeof(*a));
	a->space = potad__jget_u64(&c);
	get_extent(&c, a, &scratch);
	a->token = get_str(&c, &scratch);
	return c.bad || c.left ? -EBADMSG : 0;
}

int potad__jdec_extent(struct potad_jcur *c, struct potad_jalloc *a,
		       char *scratch)
{
	memset(a, 0, sizeof(*a));
	get_extent(c, a, &scratch);
	return c->bad ? -EBADMSG : 0;
}

/* FREE (space, handle, 0), POISON (space, offset, length), SPACE_DEL
 * (id, 0, 0), END (spaces, extents, next space id): three u64s. */
size_t potad__jenc_ids(uint8_t *out, uint64_t a, uint64_t b, uint64_t c)
{
	if (out) {
		le64(out, a);
		le64(out + 8, b);
		le64(out + 16, c);
	}
	return 24;
}

int potad__jdec_ids(const struct potad_jrec *r, uint64_t *a, uint64_t *b,
		    uint64_t *c)
{
	if (r->len != 24)
		return -EBADMSG;
	*a = rd64(r->payload);
	*b = rd64(r->payload + 8);
	*c = rd64(r->payload + 16);
	return 0;
}

size_t potad__jenc_clean(uint8_t *out, uint64_t space, bool clean,
			 const uint64_t (*ranges)[2], uint32_t n)
{
	struct potad_jcur c = writer(out);

	potad__jput_u64(&c, space);
	potad__jput_u8(&c, clean ? 1 : 0);
	potad__jput_u32(&c, n);
	for (uint32_t i = 0; i < n; i++) {
		potad__jput_u64(&c, ranges[i][0]);
		potad__jput_u64(&c, ranges[i][1]);
	}
	return c.left;
}

int potad__jdec_clean(const struct potad_jrec *r, uint64_t *space,
		      bool *clean, uint32_t *n, struct potad_jcur *cur)
{
	uint8_t v;

	*cur = reader(r);
	*space = potad__jget_u64(cur);
	v = potad__jget_u8(cur);
	*n = potad__jget_u32(cur);
	if (cur->bad || v > 1 || cur->left != 16ull * *n)
		return -EBADMSG;
	*clean = v;
	return 0;
}

const char *potad__jtype_name(unsigned type)
{
	static const char *names[] = {
		[POTAD_J_SPACE] = "space",   [POTAD_J_SPACE_DEL] = "space-del",
		[POTAD_J_ACL] = "acl",       [POTAD_J_ALLOC] = "alloc",
		[POTAD_J_FREE] = "free",     [POTAD_J_POISON] = "poison",
		[POTAD_J_TOKEN] = "token",   [POTAD_J_EXTENTS] = "extents",
		[POTAD_J_END] = "end",       [POTAD_J_CLEAN] = "clean",
		[POTAD_J_SHRINK] = "shrink",
	};

	return type < sizeof(names) / sizeof(names[0]) && names[type]
		       ? names[type]
		       : "unknown";
}
