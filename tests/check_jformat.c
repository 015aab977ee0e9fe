/* SPDX-License-Identifier: MIT */
/* Unit tests of the journal format: CRC-32C, framing, payloads, and how
 * the scanner tells a clean end, a torn tail and damage apart. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"

#define SALT 0x1234567890abcdefull

START_TEST(crc_vectors)
{
	static const char *v = "123456789";
	uint8_t zeros[32] = {0}, buf[4099];

	ck_assert_uint_eq(potad__crc32c(0, v, 9), 0xe3069283u);
	ck_assert_uint_eq(potad__crc32c_soft(0, v, 9), 0xe3069283u);
	/* iSCSI test vector: 32 bytes of zeros. */
	ck_assert_uint_eq(potad__crc32c(0, zeros, 32), 0x8a9136aau);
	/* Split sums equal one sum; hardware and table agree at every
	 * alignment and length. */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++) {
		for (size_t n = 0; n < 300; n += 7) {
			uint32_t a = potad__crc32c(0, buf + off, n);

			ck_assert_uint_eq(a, potad__crc32c_soft(0, buf + off, n));
			ck_assert_uint_eq(
			    a, potad__crc32c(potad__crc32c(0, buf + off, n / 3),
					     buf + off + n / 3, n - n / 3));
		}
	}
}
END_TEST

START_TEST(file_header)
{
	struct potad_jfile f = {.seq = 77, .salt = SALT}, g;
	uint8_t h[POTAD_J_HDR];

	potad__jfile_encode(&f, h);
	ck_assert_int_eq(potad__jfile_decode(h, sizeof(h), &g), 0);
	ck_assert(!g.snapshot);
	ck_assert_uint_eq(g.seq, 77);
	ck_assert_uint_eq(g.salt, SALT);
	h[20] ^= 1;
	ck_assert_int_eq(potad__jfile_decode(h, sizeof(h), &g), -EBADMSG);
	ck_assert_int_eq(potad__jfile_decode(h, 16, &g), -EBADMSG);
}
END_TEST

/* A log image: header, then records with the given lags. */
struct img {
	uint8_t buf[8192];
	size_t len;
	size_t off[32];
};

static void build(struct img *m, int n, const uint32_t *lag)
{
	struct potad_jfile f = {.seq = 1, .salt = SALT};

	memset(m, 0, sizeof(*m));
	potad__jfile_encode(&f, m->buf);
	m->len = POTAD_J_HDR;
	for (int i = 0; i < n; i++) {
		uint8_t *p = m->buf + m->len + POTAD_J_REC_HDR;
		size_t len = potad__jenc_ids(p, (uint64_t)i, 2, 3);

		m->off[i] = m->len;
		m->len += potad__jrec_seal(m->buf + m->len, SALT,
					   (uint64_t)i + 1, POTAD_J_FREE,
					   (uint64_t)i + 1 - lag[i], (uint32_t)len);
	}
}

static int scan(const struct img *m, size_t len, struct potad_jscan *s)
{
	struct potad_jrec r;
	int n = 0;

	potad__jscan_init(s, m->buf, len, SALT, 1);
	while (potad__jscan_next(s, &r)) {
		uint64_t a, b, c;

		ck_assert_int_eq(potad__jdec_ids(&r, &a, &b, &c), 0);
		ck_assert_uint_eq(a, (uint64_t)n);
		n++;
	}
	return n;
}

/* Records 1-2 in batch one, 3-5 in batch two, written once batch one was
 * durable. */
static const uint32_t two_batches[] = {1, 2, 1, 2, 3};
/* Batch two (3-4) written while batch one (1-2) was still in flight,
 * batch three (5) once batch one was durable. */
static const uint32_t overlapped[] = {1, 2, 3, 4, 3};

START_TEST(scan_clean)
{
	struct img m;
	struct potad_jscan s;

	build(&m, 5, two_batches);
	/* With the zeros of preallocation after the records, and without. */
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 5);
	ck_assert_int_eq(s.end, POTAD_JEND_CLEAN);
	ck_assert_uint_eq(s.bad_off, m.len);
	ck_assert_int_eq(scan(&m, m.len, &s), 5);
	ck_assert_int_eq(s.end, POTAD_JEND_CLEAN);
}
END_TEST

START_TEST(scan_torn)
{
	struct img m;
	struct potad_jscan s;

	/* The last record cut short. */
	build(&m, 5, two_batches);
	ck_assert_int_eq(scan(&m, m.len - 8, &s), 4);
	ck_assert_int_eq(s.end, POTAD_JEND_TORN);
	ck_assert_uint_eq(s.bad_off, m.off[4]);
	/* The last record's CRC broken, zeros after it. */
	build(&m, 5, two_batches);
	m.buf[m.off[4] + 30] ^= 0x40;
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 4);
	ck_assert_int_eq(s.end, POTAD_JEND_TORN);
	ck_assert_uint_eq(s.bad_off, m.off[4]);
	ck_assert_uint_ge(s.dirty_end, m.off[4] + 32);
	/* A hole inside the unsynced batch: records 4 and 5 came through,
	 * record 3 did not.  Still a torn tail, cut at record 3. */
	build(&m, 5, two_batches);
	memset(m.buf + m.off[2], 0, m.off[3] - m.off[2]);
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 2);
	ck_assert_int_eq(s.end, POTAD_JEND_TORN);
	ck_assert_uint_eq(s.bad_off, m.off[2]);
	ck_assert_uint_eq(s.dirty_end, m.len);
}
END_TEST

START_TEST(scan_damaged)
{
	struct img m;
	struct potad_jscan s;

	/* A record of the first, committed batch goes bad while the second
	 * batch is intact: damage, not a torn tail. */
	build(&m, 5, two_batches);
	m.buf[m.off[1] + 25] ^= 1;
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 1);
	ck_assert_int_eq(s.end, POTAD_JEND_DAMAGED);
	ck_assert_uint_eq(s.bad_off, m.off[1]);
	/* Two batches in flight at once: a hole in the first, the second
	 * whole — torn, cut at the hole.  But the batch written once the
	 * first was durable makes a hole there damage. */
	build(&m, 4, overlapped);
	memset(m.buf + m.off[0] + 24, 0xee, 8);
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 0);
	ck_assert_int_eq(s.end, POTAD_JEND_TORN);
	build(&m, 5, overlapped);
	memset(m.buf + m.off[2] + 24, 0xee, 8);
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 2);
	ck_assert_int_eq(s.end, POTAD_JEND_TORN);
	build(&m, 5, overlapped);
	memset(m.buf + m.off[1] + 24, 0xee, 8);
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 1);
	ck_assert_int_eq(s.end, POTAD_JEND_DAMAGED);
	/* A valid record out of sequence. */
	build(&m, 5, two_batches);
	memcpy(m.buf + m.off[4], m.buf + m.off[3], m.off[4] - m.off[3]);
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 4);
	ck_assert_int_eq(s.end, POTAD_JEND_DAMAGED);
	ck_assert_uint_eq(s.bad_off, m.off[4]);
	/* A record written under another file's salt is not valid here. */
	build(&m, 5, two_batches);
	potad__jrec_sum(m.buf + m.off[4], SALT + 1, 4);
	ck_assert_int_eq(scan(&m, sizeof(m.buf), &s), 4);
	ck_assert_int_eq(s.end, POTAD_JEND_TORN);
}
END_TEST

START_TEST(payload_roundtrip)
{
	static const uint32_t uids[] = {0, 1000, 4294967294u};
	static const uint32_t gids[] = {27};
	struct potad_jspace js = {
		.id = 9, .salt = 5ull << 32, .base = 1ull << 40,
		.size = 1ull << 30, .parent = 3, .host = 0x1000000200000007ull,
		.kind = 2, .genfloor = 17, .granule_shift = 21,
		.flags = POTAD_JS_RESERVE, .name = "pmem0.t1",
		.source = "/dev/dax0.0", .uids = uids, .nuids = 3,
		.gids = gids, .ngids = 1,
	}, out;
	struct potad_jalloc a = {
		.space = 9, .handle = 0x10000001000000ffull, .offset = 4096,
		.length = 12288, .tag = 3, .uid = 1000,
		.flags = POTAD_JA_SESSION, .label = "vm-17", .token = "t-1",
	}, b;
	uint8_t rec[1024];
	char scratch[1024];
	struct potad_jrec r;
	size_t n;

	n = potad__jenc_space(rec + POTAD_J_REC_HDR, &js);
	ck_assert_uint_eq(n, potad__jenc_space(NULL, &js));
	potad__jrec_seal(rec, SALT, 1, POTAD_J_SPACE, 0, (uint32_t)n);
	ck_assert(potad__jrec_parse(rec, sizeof(rec), SALT, &r));
	ck_assert_uint_eq(r.lag, 1);
	ck_assert(potad__jrec_parse(rec, sizeof(rec), SALT, &r));
	ck_assert_int_eq(potad__jdec_space(&r, &out, scratch), 0);
	ck_assert_uint_eq(out.id, 9);
	ck_assert_uint_eq(out.host, js.host);
	ck_assert_uint_eq(out.genfloor, 17);
	ck_assert_uint_eq(out.granule_shift, 21);
	ck_assert_str_eq(out.name, "pmem0.t1");
	ck_assert_str_eq(out.source, "/dev/dax0.0");
	ck_assert_uint_eq(out.nuids, 3);
	ck_assert_uint_eq(out.uids[2], 4294967294u);
	ck_assert_uint_eq(out.gids[0], 27);
	/* A payload one byte short is refused. */
	r.len--;
	ck_assert_int_eq(potad__jdec_space(&r, &out, scratch), -EBADMSG);

	n = potad__jenc_alloc(rec + POTAD_J_REC_HDR, &a);
	potad__jrec_seal(rec, SALT, 2, POTAD_J_ALLOC, 0, (uint32_t)n);
	ck_assert(potad__jrec_parse(rec, sizeof(rec), SALT, &r));
	ck_assert_int_eq(potad__jdec_alloc(&r, &b, scratch), 0);
	ck_assert_uint_eq(b.handle, a.handle);
	ck_assert_uint_eq(b.length, 12288);
	ck_assert_uint_eq(b.flags, POTAD_JA_SESSION);
	ck_assert_str_eq(b.label, "vm-17");
	ck_assert_str_eq(b.token, "t-1");
	r.len++;
	ck_assert_int_eq(potad__jdec_alloc(&r, &b, scratch), -EBADMSG);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("jformat");
	TCase *tc = tcase_create("format");

	tcase_add_test(tc, crc_vectors);
	tcase_add_test(tc, file_header);
	tcase_add_test(tc, scan_clean);
	tcase_add_test(tc, scan_torn);
	tcase_add_test(tc, scan_damaged);
	tcase_add_test(tc, payload_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
