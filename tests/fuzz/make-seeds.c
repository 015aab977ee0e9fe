/* SPDX-License-Identifier: MIT */
/* Writes the fuzz targets' seed corpora (tests/fuzz/corpus/): engine
 * programs, framed requests, and state directories made with the
 * journal's own encoders.  Run by `make fuzz-seeds`; the output is
 * committed, so only a change of format needs a new run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "journal/journal.h"
#include "potad.pb-c.h"
#include "wire/frame.h"

static const char *outdir;

static void put(const char *target, const char *name, const void *p,
		size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/*
 * Engine programs (see fuzz_engine.c): geometry, then opcode bytes with
 * their arguments.  Pseudo-random bodies from a fixed seed, so the files
 * only change when this program does.
 */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint8_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 24);
}

static void engine_seeds(void)
{
	/* alloc, alloc, child_new, alloc (in the child), poison, walk,
	 * destroy the child, free, place, walk. */
	static const uint8_t hand[] = {
		12, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, /* 4 KiB units */
		0, 0, 0x00, 0x04, 0, 0x00, 0, 0, 0, 0,
		0, 0, 0x00, 0x08, 0, 0x00, 0, 0, 0, 0,
		6, 0, 1, 1,
		0, 1, 0x00, 0x01, 0, 0x08, 0, 0, 0, 0,
		5, 0, 2, 0, 0, 0, 1,
		10, 1, 1,
		7, 1,
		2, 0, 0, 0,
		8, 0, 5, 0, 9, 3, 0, 0, 0, 0x02,
		10, 0, 1,
	};
	/* The reuse cache on (16 units, 8 entries): alloc, alloc, free,
	 * free, alloc (taken back from the cache), walk, a claim over a
	 * cached extent, drain, walk. */
	static const uint8_t cache[] = {
		12, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, /* 4 KiB units */
		13, 0, 0, 16, 8,
		0, 0, 0x00, 0x03, 0, 0x00, 0, 0, 0, 0,
		0, 0, 0x00, 0x05, 0, 0x00, 0, 0, 0, 0,
		2, 0, 0, 0,
		2, 0, 0, 0,
		0, 0, 0x00, 0x03, 0, 0x00, 0, 0, 0, 0,
		10, 0, 1,
		4, 0, 0, 0, 0, 0, 0x02, 0, 0, 0,
		13, 0, 1, 0, 0,
		10, 0, 1,
	};
	char name[32];

	put("engine", "hand-child", hand, sizeof(hand));
	put("engine", "hand-cache", cache, sizeof(cache));
	for (int i = 0; i < 12; i++) {
		uint8_t b[512];
		size_t n = 64 + (size_t)i * 36;

		for (size_t k = 0; k < n; k++)
			b[k] = rnd();
		/* Small granules and spaces for half of them. */
		if (i & 1) {
			b[0] = (uint8_t)(i % 4);
			b[3] &= 0x0f;
		}
		snprintf(name, sizeof(name), "random-%02d", i);
		put("engine", name, b, n);
	}
}

/*
 * Requests (see fuzz_rpc.c): a flags byte (bit 0: admin), the read size
 * byte, then frames.
 */
struct frames {
	uint8_t b[4096];
	size_t n;
};

static void frame(struct frames *f, Potad__V1__Op **ops, size_t nops,
		  uint64_t id)
{
	Potad__V1__Request rq = POTAD__V1__REQUEST__INIT;
	size_t len;

	rq.id = id;
	rq.ops = ops;
	rq.n_ops = nops;
	len = potad__v1__request__get_packed_size(&rq);
	if (f->n + POTAD_VARINT_MAX + len > sizeof(f->b))
		abort();
	f->n += potad__varint_put(len, f->b + f->n);
	f->n += potad__v1__request__pack(&rq, f->b + f->n);
}

static Potad__V1__Op *op_alloc(Potad__V1__Op *op, Potad__V1__Alloc *a,
			       const char *space, uint64_t size)
{
	potad__v1__op__init(op);
	potad__v1__alloc__init(a);
	a->space = (char *)space;
	a->size = size;
	op->op_case = POTAD__V1__OP__OP_ALLOC;
	op->alloc = a;
	return op;
}

static void rpc_seed(const char *name, bool admin, uint8_t chunk,
		     const struct frames *f)
{
	uint8_t b[4096 + 2];

	b[0] = admin;
	b[1] = chunk;
	memcpy(b + 2, f->b, f->n);
	put("rpc", name, b, f->n + 2);
}

static void rpc_seeds(void)
{
	Potad__V1__Op op[8], *ops[8];
	Potad__V1__Hello hello = POTAD__V1__HELLO__INIT;
	Potad__V1__ListSpaces ls = POTAD__V1__LIST_SPACES__INIT;
	Potad__V1__Alloc al[4];
	Potad__V1__Free fr = POTAD__V1__FREE__INIT;
	Potad__V1__Lookup lk = POTAD__V1__LOOKUP__INIT;
	Potad__V1__ListExtents le = POTAD__V1__LIST_EXTENTS__INIT;
	Potad__V1__SpaceStat st = POTAD__V1__SPACE_STAT__INIT;
	Potad__V1__Poison po = POTAD__V1__POISON__INIT;
	Potad__V1__ChildAdd ca = POTAD__V1__CHILD_ADD__INIT;
	Potad__V1__ChildRemove cr = POTAD__V1__CHILD_REMOVE__INIT;
	Potad__V1__SpaceAdd sa = POTAD__V1__SPACE_ADD__INIT;
	Potad__V1__SpaceRemove sr = POTAD__V1__SPACE_REMOVE__INIT;
	Potad__V1__Subscribe sub = POTAD__V1__SUBSCRIBE__INIT;
	struct frames f;

	for (int i = 0; i < 8; i++) {
		ops[i] = &op[i];
		potad__v1__op__init(&op[i]);
	}

	/* Hello and a list, for both kinds of peer, whole and in pieces. */
	memset(&f, 0, sizeof(f));
	hello.protocol = 1;
	hello.client = "seed";
	op[0].op_case = POTAD__V1__OP__OP_HELLO;
	op[0].hello = &hello;
	op[1].op_case = POTAD__V1__OP__OP_LIST_SPACES;
	op[1].list_spaces = &ls;
	frame(&f, ops, 2, 1);
	rpc_seed("hello-user", false, 0xff, &f);
	rpc_seed("hello-admin-split", true, 2, &f);

	/* Allocations of every shape, then lookups, lists and frees. */
	memset(&f, 0, sizeof(f));
	op_alloc(&op[0], &al[0], "a", 8192);
	op_alloc(&op[1], &al[1], "a", 1 << 20);
	al[1].align = 1 << 20;
	al[1].top_down = true;
	al[1].label = "vm-17";
	al[1].token = "tok-1";
	op_alloc(&op[2], &al[2], "a", 4096);
	al[2].fixed = true;
	al[2].at = 0x100000 + (64 << 12);
	al[2].session = true;
	al[2].clean = true;
	op_alloc(&op[3], &al[3], "b", 512);
	al[3].whole = true;
	frame(&f, ops, 4, 2);
	frame(&f, ops, 2, 3); /* the token again: the same extent */
	potad__v1__op__init(&op[0]);
	op[0].op_case = POTAD__V1__OP__OP_LOOKUP;
	op[0].lookup = &lk;
	lk.space = "a";
	lk.offset = 0x100000;
	op[1].op_case = POTAD__V1__OP__OP_LIST_EXTENTS;
	op[1].list_extents = &le;
	le.space = "a";
	potad__v1__op__init(&op[2]);
	op[2].op_case = POTAD__V1__OP__OP_FREE;
	op[2].free = &fr;
	fr.space = "a";
	fr.by_offset = true;
	fr.offset = 0x100000;
	potad__v1__op__init(&op[3]);
	op[3].op_case = POTAD__V1__OP__OP_SPACE_STAT;
	op[3].space_stat = &st;
	st.name = "a";
	st.fragmentation = true;
	/* The aligned extent keeps a head first (admins find it by
	 * offset), then goes. */
	fr.keep = 0x10000;
	frame(&f, ops + 2, 1, 5);
	fr.keep = 0;
	frame(&f, ops, 4, 4);
	rpc_seed("alloc-admin", true, 0xff, &f);
	rpc_seed("alloc-user", false, 0xff, &f);
	rpc_seed("alloc-user-split", false, 7, &f);

	/* Child spaces, poison with a subscriber, and removal. */
	memset(&f, 0, sizeof(f));
	potad__v1__op__init(&op[0]);
	op[0].op_case = POTAD__V1__OP__OP_SUBSCRIBE;
	op[0].subscribe = &sub;
	sub.low_water_percent = 90;
	op_alloc(&op[1], &al[0], "a", 1 << 16);
	al[0].label = "victim";
	potad__v1__op__init(&op[2]);
	op[2].op_case = POTAD__V1__OP__OP_POISON;
	op[2].poison = &po;
	po.space = "a";
	po.offset = 0x100000;
	po.length = 4096;
	potad__v1__op__init(&op[3]);
	op[3].op_case = POTAD__V1__OP__OP_CHILD_ADD;
	op[3].child_add = &ca;
	ca.parent = "a";
	ca.name = "kid";
	ca.size = 1 << 20;
	ca.reserve = true;
	op_alloc(&op[4], &al[1], "kid", 4096);
	memset(&al[1], 0, sizeof(al[1]));
	potad__v1__alloc__init(&al[1]);
	al[1].space = "a";
	al[1].size = 4096;
	al[1].reserve = "kid";
	potad__v1__op__init(&op[5]);
	op[5].op_case = POTAD__V1__OP__OP_CHILD_REMOVE;
	op[5].child_remove = &cr;
	cr.name = "kid";
	frame(&f, ops, 6, 5);
	rpc_seed("child-poison-admin", true, 0xff, &f);
	rpc_seed("child-poison-user", false, 13, &f);

	/* Registering and removing spaces; a file kind is refused. */
	memset(&f, 0, sizeof(f));
	potad__v1__op__init(&op[0]);
	op[0].op_case = POTAD__V1__OP__OP_SPACE_ADD;
	op[0].space_add = &sa;
	sa.name = "c";
	sa.kind = POTAD__V1__SPACE_KIND__RANGE;
	sa.base_offset = 1 << 30;
	sa.size = 1 << 30;
	sa.granule = 1 << 16;
	sa.allow_all = true;
	op_alloc(&op[1], &al[0], "c", 3 << 16);
	potad__v1__op__init(&op[2]);
	op[2].op_case = POTAD__V1__OP__OP_SPACE_REMOVE;
	op[2].space_remove = &sr;
	sr.name = "c";
	sr.force = true;
	frame(&f, ops, 3, 6);
	sa.kind = POTAD__V1__SPACE_KIND__FILE;
	sa.path = "/nonexistent/potad-fuzz";
	frame(&f, ops, 1, 7);
	rpc_seed("space-add-admin", true, 0xff, &f);
	rpc_seed("space-add-user", false, 0xff, &f);

	/* Frames the server refuses: not UTF-8, not a request, too long,
	 * a length prefix that is not a varint. */
	memset(&f, 0, sizeof(f));
	hello.client = "\xc0\xaf";
	potad__v1__op__init(&op[0]);
	op[0].op_case = POTAD__V1__OP__OP_HELLO;
	op[0].hello = &hello;
	frame(&f, ops, 1, 8);
	memcpy(f.b + f.n, "\x03\xff\xff\xff", 4);
	f.n += 4;
	rpc_seed("bad-frames", false, 0xff, &f);
	memset(&f, 0, sizeof(f));
	f.n = potad__varint_put(1 << 20, f.b);
	rpc_seed("too-large", true, 0xff, &f);
	memset(f.b, 0xff, 11);
	f.n = 11;
	rpc_seed("bad-varint", true, 0xff, &f);
}

/*
 * State directories (see fuzz_replay.c): a flags byte, then the snapshot
 * and the logs, separated by "@@FILE@@".
 */
struct jbuf {
	uint8_t b[4096];
	size_t n;
	uint64_t salt, seq;
};

static void jstart(struct jbuf *j, bool snapshot, uint64_t seq,
		   uint64_t first)
{
	struct potad_jfile h = {.snapshot = snapshot, .seq = seq,
				.salt = 0x5eed0000u + seq};

	potad__jfile_encode(&h, j->b);
	j->n = POTAD_J_HDR;
	j->salt = h.salt;
	j->seq = first;
}

/* Room for a payload of len bytes; seal() frames it. */
static uint8_t *jroom(struct jbuf *j, size_t len)
{
	if (j->n + potad__jrec_size(len) > sizeof(j->b))
		abort();
	return j->b + j->n + POTAD_J_REC_HDR;
}

static void seal(struct jbuf *j, unsigned type, size_t len)
{
	j->n += potad__jrec_seal(j->b + j->n, j->salt, j->seq, type,
				 j->seq - 1, (uint32_t)len);
	j->seq++;
}

static void rec_space(struct jbuf *j, const struct potad_jspace *s)
{
	size_t n = potad__jenc_space(NULL, s);

	potad__jenc_space(jroom(j, n), s);
	seal(j, POTAD_J_SPACE, n);
}

static void rec_alloc(struct jbuf *j, unsigned type,
		      const struct potad_jalloc *a)
{
	size_t n = potad__jenc_alloc(NULL, a);

	potad__jenc_alloc(jroom(j, n), a);
	seal(j, type, n);
}

static void rec_ids(struct jbuf *j, unsigned type, uint64_t a, uint64_t b,
		    uint64_t c)
{
	potad__jenc_ids(jroom(j, 24), a, b, c);
	seal(j, type, 24);
}

#define H(slot, gen) ((uint64_t)1 << 60 | (uint64_t)(gen) << 32 | (slot))

static const uint32_t uids[] = {1000, 1001};
static const struct potad_jspace space_a = {
	.id = 1, .salt = 1ull << 32, .base = 0x100000, .size = 1 << 24,
	.kind = 1, .granule_shift = 12, .flags = POTAD_JS_ALLOW_ALL,
	.name = "a", .source = "", .identity = "",
};

/* A log that registers spaces and changes them in every way. */
static void log_records(struct jbuf *j)
{
	struct potad_jspace kid = {
		.id = 2, .salt = 2ull << 32, .parent = 1, .host = H(1, 1),
		.kind = 1, .granule_shift = 13, .flags = POTAD_JS_RESERVE,
		.name = "kid", .source = "", .identity = "", .uids = uids,
		.nuids = 2,
	};
	struct potad_jalloc a = {
		.space = 1, .handle = H(0, 1), .offset = 0x100000,
		.length = 0x4000, .uid = 1000, .label = "vm", .token = "t1",
	};
	const uint64_t dirty[1][2] = {{0x200000, 0x10000}};
	size_t n;

	rec_space(j, &space_a);
	rec_alloc(j, POTAD_J_ALLOC, &a);
	a.handle = H(1, 1);
	a.offset = 0x400000;
	a.length = 0x100000;
	a.token = "";
	a.flags = POTAD_JA_SESSION;
	rec_alloc(j, POTAD_J_ALLOC, &a);
	rec_space(j, &kid);
	rec_ids(j, POTAD_J_POISON, 1, 0x101000, 0x1000);
	rec_ids(j, POTAD_J_SHRINK, 1, H(0, 1), 0x1000);
	rec_ids(j, POTAD_J_FREE, 1, H(0, 1), 0);
	n = potad__jenc_clean(NULL, 1, false, dirty, 1);
	potad__jenc_clean(jroom(j, n), 1, false, dirty, 1);
	seal(j, POTAD_J_CLEAN, n);
	n = potad__jenc_acl(NULL, &kid);
	potad__jenc_acl(jroom(j, n), &kid);
	seal(j, POTAD_J_ACL, n);
}

static void replay_seed(const char *name, uint8_t flags,
			const struct jbuf *snap, const struct jbuf *log1,
			const struct jbuf *log2)
{
	static uint8_t b[3 * 4096 + 64];
	size_t n = 0;

	b[n++] = flags;
	if (snap) {
		memcpy(b + n, snap->b, snap->n);
		n += snap->n;
	}
	for (int i = 0; i < 2; i++) {
		const struct jbuf *l = i ? log2 : log1;

		if (!l)
			continue;
		memcpy(b + n, "@@FILE@@", 8);
		n += 8;
		memcpy(b + n, l->b, l->n);
		n += l->n;
	}
	put("replay", name, b, n);
}

static void replay_seeds(void)
{
	static struct jbuf log, snap, log2, torn;
	struct potad_jalloc a = {
		.handle = H(0, 3), .offset = 0x100000, .length = 0x2000,
		.uid = 1000, .label = "vm",
	};
	struct potad_jalloc tok = {
		.space = 1, .handle = H(0, 3), .uid = 1000, .token = "t1",
		.label = "",
	};
	uint8_t *p;
	size_t n, m;

	jstart(&log, false, 1, 1);
	log_records(&log);
	replay_seed("log", 0, NULL, &log, NULL);
	replay_seed("log-reseal", 1, NULL, &log, NULL);
	replay_seed("log-torn", 3, NULL, &log, NULL);

	/* A snapshot of one space with two extents and a token, then a
	 * log after it. */
	jstart(&snap, true, 10, 1);
	rec_space(&snap, &space_a);
	rec_ids(&snap, POTAD_J_POISON, 1, 0x800000, 0x3000);
	n = potad__jenc_extent(NULL, &a);
	p = jroom(&snap, 12 + 2 * n);
	m = 12;
	p[0] = 1; /* u64 space, u32 count: little-endian */
	memset(p + 1, 0, 7);
	memcpy(p + 8, "\x02\0\0\0", 4);
	m += potad__jenc_extent(p + m, &a);
	a.handle = H(5, 1);
	a.offset = 0x801000;
	a.length = 0x4000;
	a.flags = POTAD_JA_SESSION;
	m += potad__jenc_extent(p + m, &a);
	seal(&snap, POTAD_J_EXTENTS, m);
	rec_alloc(&snap, POTAD_J_TOKEN, &tok);
	rec_ids(&snap, POTAD_J_END, 1, 2, 2);
	jstart(&log2, false, 10, 10);
	a.space = 1;
	a.handle = H(1, 1);
	a.offset = 0x900000;
	a.token = "t2";
	rec_alloc(&log2, POTAD_J_ALLOC, &a);
	rec_ids(&log2, POTAD_J_FREE, 1, H(0, 3), 0);
	rec_ids(&log2, POTAD_J_SPACE_DEL, 1, 0, 0);
	replay_seed("snapshot", 0, &snap, NULL, NULL);
	replay_seed("snapshot-log", 0, &snap, &log2, NULL);
	replay_seed("snapshot-log-reseal", 1, &snap, &log2, NULL);

	/* Two logs in a row, the second with garbage after its records. */
	jstart(&torn, false, log.seq, log.seq);
	rec_ids(&torn, POTAD_J_POISON, 1, 0x900000, 0x1000);
	memset(torn.b + torn.n, 0xa5, 40);
	torn.n += 40;
	replay_seed("two-logs-torn", 0, NULL, &log, &torn);
	replay_seed("two-logs-torn-reseal", 5, NULL, &log, &torn);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make-seeds DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
		perror(outdir);
		return 1;
	}
	engine_seeds();
	rpc_seeds();
	replay_seeds();
	return 0;
}
