/* SPDX-License-Identifier: MIT */
/* The journal's on-disk format: file headers, framed records, payloads.
 * Shared by the daemon and any tool that reads a state directory; the
 * format is described in potad-journal(5). */
#ifndef POTAD_JOURNAL_H
#define POTAD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), as iSCSI and ext4 use it: crc32c(0, "123456789",
 * 9) == 0xe3069283.  Pass the previous value to continue a sum. */
uint32_t potad__crc32c(uint32_t crc, const void *p, size_t n);
/* The same sum from the table alone, whatever the CPU (for tests). */
uint32_t potad__crc32c_soft(uint32_t crc, const void *p, size_t n);

/*
 * Files.  Every file starts with a 32-byte header; records follow at
 * offset 32, each padded to a multiple of 8 bytes.
 */
#define POTAD_J_MAGIC_LOG "POTADLOG"
#define POTAD_J_MAGIC_SNAP "POTADSNP"
#define POTAD_J_VERSION 2 /* 2: SPACE carries identity and bar; CLEAN */
#define POTAD_J_HDR 32
#define POTAD_J_REC_HDR 24

struct potad_jfile {
	bool snapshot; /* POTADSNP, else POTADLOG */
	uint32_t version;
	uint64_t seq;  /* log: first record's seq; snapshot: covers < seq */
	uint64_t salt; /* random per file, seeds every record's CRC */
};

void potad__jfile_encode(const struct potad_jfile *f,
			 uint8_t out[POTAD_J_HDR]);
/* 0, or -EBADMSG (bad magic or CRC), -EPROTO (unknown version). */
int potad__jfile_decode(const uint8_t *p, size_t n, struct potad_jfile *f);

/*
 * Records: u32 payload length, u32 CRC-32C (seeded from the file's salt,
 * over the rest of the header and the payload), u64 seq, u16 type,
 * u16 flags, u32 lag, payload.  The lag is seq minus the highest seq that
 * was durable when the record was written (>= 1; capped at 2^32 - 1): it
 * tells recovery which records a crash could have caught in flight.
 */
enum potad_jtype {
	POTAD_J_SPACE = 1,     /* a space (or child space) registered */
	POTAD_J_SPACE_DEL = 2, /* a space removed */
	POTAD_J_ACL = 3,       /* a space's ACL replaced */
	POTAD_J_ALLOC = 4,     /* an extent allocated */
	POTAD_J_FREE = 5,      /* an extent freed */
	POTAD_J_POISON = 6,    /* a range poisoned */
	POTAD_J_TOKEN = 7,     /* snapshot: an idempotency token */
	POTAD_J_EXTENTS = 8,   /* snapshot: a batch of a space's extents */
	POTAD_J_END = 9,       /* snapshot: the last record */
	POTAD_J_CLEAN = 10,    /* free ranges of a space made clean (a
				* discard completed) or, in a snapshot,
				* dirty */
	POTAD_J_SHRINK = 11,   /* an extent's tail freed */
};

struct potad_jrec {
	uint64_t seq;
	unsigned type;
	unsigned flags;
	uint32_t lag;       /* seq - the durable seq when it was written */
	const uint8_t *payload;
	uint32_t len;       /* payload bytes */
	size_t size;        /* the whole record on disk, padded */
};

/* Bytes a record with a payload of len bytes takes on disk. */
static inline size_t potad__jrec_size(size_t len)
{
	return (POTAD_J_REC_HDR + len + 7) & ~(size_t)7;
}

/* Frame the payload already at out + POTAD_J_REC_HDR (len bytes): fill the
 * header but its lag and CRC, zero the padding.  Returns the size. */
size_t potad__jrec_frame(uint8_t *out, uint64_t seq, unsigned type,
			 uint32_t len);
/* Set a framed record's lag (from durable, the highest durable seq) and
 * its CRC for a file with this salt; returns its size on disk. */
size_t potad__jrec_sum(uint8_t *rec, uint64_t salt, uint64_t durable);
/* All at once. */
size_t potad__jrec_seal(uint8_t *out, uint64_t salt, uint64_t seq,
			unsigned type, uint64_t durable, uint32_t len);
/* Whether a valid record starts at p (n bytes available); fills r. */
bool potad__jrec_parse(const uint8_t *p, size_t n, uint64_t salt,
		       struct potad_jrec *r);

/*
 * Reading a whole file: potad__jscan() walks records from offset 32 and
 * says how the file ends.
 */
enum potad_jend {
	POTAD_JEND_CLEAN,   /* only zeros (or nothing) after the last record */
	POTAD_JEND_TORN,    /* an incomplete or bad record, and nothing valid
			     * after it but records written while it was not
			     * yet durable */
	POTAD_JEND_DAMAGED, /* a bad record with records after it that were
			     * written once it was durable, or a record out
			     * of sequence */
};

struct potad_jscan {
	const uint8_t *buf; /* the file */
	size_t len;
	uint64_t salt;
	uint64_t next_seq; /* expected next seq */
	size_t off;        /* next record's offset */
	/* Set when potad__jscan_next() returns false: */
	enum potad_jend end;
	size_t bad_off;    /* TORN/DAMAGED: offset of the first bad byte */
	size_t dirty_end;  /* TORN: end of the non-zero bytes after bad_off */
	const char *why;   /* DAMAGED/TORN: what was wrong */
};

void potad__jscan_init(struct potad_jscan *s, const uint8_t *buf, size_t len,
		       uint64_t salt, uint64_t first_seq);
/* The next record in *r, or false at the end (see s->end). */
bool potad__jscan_next(struct potad_jscan *s, struct potad_jrec *r);

/*
 * Payloads: little-endian integers and u16-length strings, read and
 * written through a cursor that remembers overruns.
 */
struct potad_jcur {
	uint8_t *p;          /* writing */
	const uint8_t *r;    /* reading */
	size_t left;
	bool bad;
};

void potad__jput_u8(struct potad_jcur *c, uint8_t v);
void potad__jput_u16(struct potad_jcur *c, uint16_t v);
void potad__jput_u32(struct potad_jcur *c, uint32_t v);
void potad__jput_u64(struct potad_jcur *c, uint64_t v);
void potad__jput_str(struct potad_jcur *c, const char *s);
uint8_t potad__jget_u8(struct potad_jcur *c);
uint16_t potad__jget_u16(struct potad_jcur *c);
uint32_t potad__jget_u32(struct potad_jcur *c);
uint64_t potad__jget_u64(struct potad_jcur *c);
/* A string's bytes (not terminated) and length; NULL when short. */
const char *potad__jget_str(struct potad_jcur *c, uint16_t *len);

/* Longest label, token or name a record holds. */
#define POTAD_J_STR_MAX 4096

/* POTAD_J_SPACE */
#define POTAD_JS_RESERVE (1u << 0)
#define POTAD_JS_ALLOW_ALL (1u << 1)
#define POTAD_JS_FORCE (1u << 2)   /* blockdev taken despite a filesystem */
#define POTAD_JS_DISCARD (1u << 3) /* discard dirty free space */
#define POTAD_JS_ISOLATE (1u << 4) /* hand out only clean units */
struct potad_jspace {
	uint64_t id, salt;
	uint64_t base, size;
	uint64_t parent; /* 0: top-level */
	uint64_t host;   /* engine handle of the hosting extent in parent */
	uint32_t kind;   /* potad.v1.SpaceKind */
	uint32_t genfloor;
	unsigned granule_shift;
	unsigned flags; /* POTAD_JS_* */
	const char *name, *source; /* NUL-terminated */
	const char *identity;      /* what the probe recorded ("" for range) */
	unsigned bar;              /* pcibar */
	const uint32_t *uids, *gids;
	uint16_t nuids, ngids;
};

/* POTAD_J_ALLOC, and one entry of POTAD_J_EXTENTS */
#define POTAD_JA_SESSION (1u << 0)
struct potad_jalloc {
	uint64_t space; /* not in EXTENTS entries: the batch names it */
	uint64_t handle;
	uint64_t offset, length;
	uint32_t tag, uid;
	unsigned flags; /* POTAD_JA_* */
	const char *label, *token; /* token: ALLOC only */
};

/* Encoders return the payload's size; call with out == NULL to learn it. */
size_t potad__jenc_space(uint8_t *out, const struct potad_jspace *s);
size_t potad__jenc_acl(uint8_t *out, const struct potad_jspace *s);
size_t potad__jenc_alloc(uint8_t *out, const struct potad_jalloc *a);
size_t potad__jenc_extent(uint8_t *out, const struct potad_jalloc *a);
size_t potad__jenc_ids(uint8_t *out, uint64_t a, uint64_t b, uint64_t c);
/* CLEAN: u64 space, u8 clean (1: these free ranges became clean; 0: they
 * are dirty), u32 n, then n pairs of u64 offset, length (bytes). */
size_t potad__jenc_clean(uint8_t *out, uint64_t space, bool clean,
			 const uint64_t (*ranges)[2], uint32_t n);

/*
 * Decoders: 0 or -EBADMSG.  Strings point into scratch (at least as long
 * as the payload plus 2 bytes per string), where they are terminated.
 */
int potad__jdec_space(const struct potad_jrec *r, struct potad_jspace *s,
		      char *scratch);
int potad__jdec_acl(const struct potad_jrec *r, struct potad_jspace *s,
		    char *scratch);
int potad__jdec_alloc(const struct potad_jrec *r, struct potad_jalloc *a,
		      char *scratch);
int potad__jdec_extent(struct potad_jcur *c, struct potad_jalloc *a,
		       char *scratch);
int potad__jdec_ids(const struct potad_jrec *r, uint64_t *a, uint64_t *b,
		    uint64_t *c);
/* The fixed part of a CLEAN record; then read n pairs from *cur with
 * potad__jget_u64() (cur->bad tells an overrun). */
int potad__jdec_clean(const struct potad_jrec *r, uint64_t *space,
		      bool *clean, uint32_t *n, struct potad_jcur *cur);

/* A record type's name, for messages. */
const char *potad__jtype_name(unsigned type);

#endif /* POTAD_JOURNAL_H */
