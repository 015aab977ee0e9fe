/* SPDX-License-Identifier: MIT */
/* Integration tests of the daemon: the real potad, started per test and
 * spoken to in raw frames (see daemon_harness.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "daemon_harness.h"
#include "wire/frame.h"

/*
 * What is covered, by test case: rpc (round trips, placement, pipelining,
 * batches, backpressure, tokens), concurrency (64 clients at once),
 * malformed (every kind of bad frame and op, limits), access (who may do
 * what, session extents), events (poison, low space), spaces (child
 * spaces and reserves), lifecycle (stopping with clients connected).
 * After every refusal the space must be exactly as it was.
 */

/* Small limits, so that tests reach them quickly. */
static const char small_limits_conf[] =
    "[daemon]\nmax_queue = 64K\nmax_frame = 64K\nmax_connections = 3\n\n"
    "[space default]\nkind = range\nsize = 1G\ngranule = 4K\n"
    "allow = all\n";

/* Hold n extents of 4 KiB, made in batches. */
static void fill_extents(struct cl *c, size_t n)
{
	Potad__V1__Op *ops[250];
	struct res r[250];

	while (n) {
		size_t k = n < 250 ? n : 250;

		for (size_t i = 0; i < k; i++)
			ops[i] = op_alloc((struct aa){.size = 4096});
		call_ops(c, ops, k, r);
		for (size_t i = 0; i < k; i++)
			EXPECT_OK(r[i]);
		n -= k;
	}
}

/*
 * Tests.
 */
START_TEST(hello_and_list)
{
	struct daemon d;
	struct cl c;
	struct res r;

	daemon_start(&d, NULL);
	cl_open(&c, &d);
	r = call(&c, op_hello());
	EXPECT_OK(r);
	EXPECT_EQ(r.body, POTAD__V1__RESULT__BODY_HELLO);
	EXPECT_EQ(r.protocol, 1);
	EXPECT_EQ(r.uid, geteuid());
	EXPECT_EQ(r.gid, getegid());
	EXPECT_EQ(r.admin, geteuid() == 0);
	/* The harness runs the daemon with its journal on. */
	EXPECT_EQ(r.durable, true);
	EXPECT(r.ncaps > 0, "hello: no capabilities listed");

	r = call(&c, op_list());
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 1);
	EXPECT_STR(r.spaces[0].name, "default");
	EXPECT_EQ(r.spaces[0].kind, POTAD__V1__SPACE_KIND__RANGE);
	EXPECT_EQ(r.spaces[0].base, 0);
	EXPECT_EQ(r.spaces[0].size, GiB);
	EXPECT_EQ(r.spaces[0].granule, 4 * KiB);
	EXPECT_EQ(r.spaces[0].free_bytes, GiB);
	EXPECT_EQ(r.spaces[0].extents, 0);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(alloc_free_lookup)
{
	struct daemon d;
	struct cl c;
	struct ext a, b, e;
	struct res r;
	struct sinfo s;

	daemon_start(&d, NULL);
	cl_open(&c, &d);

	/* Lowest address first, lengths trimmed to the granule. */
	a = ALLOC_OK(&c, .size = 4096, .label = "vm-1", .tag = 7);
	EXPECT_EQ(a.offset, 0);
	EXPECT_EQ(a.length, 4096);
	EXPECT_STR(a.space, "default");
	EXPECT_STR(a.label, "vm-1");
	EXPECT_EQ(a.tag, 7);
	EXPECT_EQ(a.owner_uid, geteuid());
	EXPECT(a.handle != 0, "alloc: a zero handle");
	b = ALLOC_OK(&c, .size = 10000);
	EXPECT_EQ(b.length, 12 * KiB);
	EXPECT(b.offset >= a.offset + a.length,
	       "second extent %#" PRIx64 " overlaps the first", b.offset);
	EXPECT(b.handle != a.handle, "two extents share handle %#" PRIx64,
	       a.handle);

	/* Aligned: 8 KiB at 1 MiB alignment. */
	e = ALLOC_OK(&c, .size = 8 * KiB, .align = MiB);
	EXPECT_EQ(e.offset % MiB, 0);
	EXPECT_EQ(e.length, 8 * KiB);
	EXPECT(e.offset >= MiB,
	       "an aligned extent at %#" PRIx64 " over the first two",
	       e.offset);

	/* Lookup: any address inside names the extent. */
	r = call(&c, op_lookup("default", e.offset + 4097));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, e.handle);
	EXPECT_EQ(r.ext.offset, e.offset);
	EXPECT_EQ(r.ext.length, e.length);
	r = call(&c, op_lookup("default", e.offset + e.length));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = call(&c, op_lookup("default", 2 * GiB));
	EXPECT_ST(r, POTAD__V1__STATUS__OUT_OF_RANGE);

	s = stat_ok(&c, "default");
	EXPECT_EQ(s.extents, 3);
	EXPECT_EQ(s.used_bytes, 4 * KiB + 12 * KiB + 8 * KiB);
	EXPECT_EQ(s.free_bytes, GiB - s.used_bytes);
	r = call(&c, op_extents("default"));
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 3);
	EXPECT_EQ(r.exts[0].handle, a.handle);

	/* Free; the handle is then stale, also after its slot is reused. */
	free_ok(&c, "default", e.handle);
	r = call(&c, op_lookup("default", e.offset));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = call(&c, op_free("default", e.handle));
	EXPECT_ST(r, POTAD__V1__STATUS__STALE);
	b = ALLOC_OK(&c, .size = 8 * KiB, .align = MiB);
	EXPECT_EQ(b.offset, e.offset);
	EXPECT(b.handle != e.handle, "a reused slot kept handle %#" PRIx64,
	       e.handle);
	r = call(&c, op_free("default", e.handle));
	EXPECT_ST(r, POTAD__V1__STATUS__STALE);
	r = call(&c, op_lookup("default", b.offset));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, b.handle);

	r = call(&c, op_extents("default"));
	EXPECT_OK(r);
	for (size_t i = 0; i < r.n; i++)
		free_ok(&c, "default", r.exts[i].handle);
	s = stat_ok(&c, "default");
	EXPECT_EQ(s.free_bytes, GiB);
	EXPECT_EQ(s.extents, 0);
	EXPECT_EQ(s.free_blocks, 1);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/* Freeing an extent's tail: the rest keeps its handle, label and token,
 * the tail is free and found by nothing, and what cannot be kept is
 * refused with the state unchanged. */
START_TEST(shrink_tail)
{
	struct daemon d;
	struct cl c;
	struct ext a, b, t;
	struct res r;
	struct sinfo s0;

	daemon_start(&d, NULL);
	cl_open(&c, &d);
	a = ALLOC_OK(&c, .size = 64 * KiB, .label = "vol", .tag = 3,
		     .token = "tok-vol");
	b = ALLOC_OK(&c, .size = 4 * KiB);
	EXPECT_EQ(b.offset, a.offset + a.length);

	r = call(&c, op_shrink("default", a.handle, 16 * KiB));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, a.handle);
	EXPECT_EQ(r.ext.offset, a.offset);
	EXPECT_EQ(r.ext.length, 16 * KiB);
	EXPECT_STR(r.ext.label, "vol");
	EXPECT_EQ(r.ext.tag, 3);
	s0 = stat_ok(&c, "default");
	EXPECT_EQ(s0.used_bytes, 16 * KiB + 4 * KiB);
	r = call(&c, op_lookup("default", a.offset + 16 * KiB - 1));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, a.handle);
	r = call(&c, op_lookup("default", a.offset + 16 * KiB));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	/* The token still names the extent, now shorter. */
	t = ALLOC_OK(&c, .size = 64 * KiB, .token = "tok-vol");
	EXPECT_EQ(t.handle, a.handle);
	EXPECT_EQ(t.length, 16 * KiB);
	/* The freed tail is free space like any other. */
	t = ALLOC_OK(&c, .size = 48 * KiB, .fixed = true,
		     .at = a.offset + 16 * KiB);
	free_ok(&c, "default", t.handle);

	/* Refusals change nothing. */
	s0 = stat_ok(&c, "default");
	r = call(&c, op_shrink("default", a.handle, 16 * KiB));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_shrink("default", a.handle, 20 * KiB));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_shrink("default", a.handle, 6 * KiB));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_shrink("nosuch", a.handle, 4 * KiB));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	EXPECT_SAME(&c, "default", s0, "refused shrinks");
	free_ok(&c, "default", b.handle);
	r = call(&c, op_shrink("default", b.handle, 4 * KiB));
	EXPECT_ST(r, POTAD__V1__STATUS__STALE);

	free_ok(&c, "default", a.handle);
	s0 = stat_ok(&c, "default");
	EXPECT_EQ(s0.free_bytes, GiB);
	EXPECT_EQ(s0.free_blocks, 1);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/* Owners that no extent names any more are forgotten once thousands have
 * piled up (a client that labels each job afresh must not grow the daemon
 * for ever), and those still named keep their labels. */
START_TEST(owner_sweep)
{
	enum { BATCH = 50, JOBS = 5000 };
	struct res *out = xcalloc(BATCH * sizeof(*out));
	Potad__V1__Op *ops[BATCH];
	char labels[BATCH][32];
	struct daemon d;
	struct cl c;
	struct ext keep;
	struct res r;

	daemon_start(&d, "[daemon]\nlog_level = debug\n\n"
			 "[space default]\nkind = range\nsize = 1G\n"
			 "granule = 4K\nallow = all\n");
	cl_open(&c, &d);
	keep = ALLOC_OK(&c, .size = 4096, .label = "keep");
	for (int j = 0; j < JOBS; j += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			snprintf(labels[i], sizeof(labels[i]), "job-%d", j + i);
			ops[i] = op_alloc(
			    (struct aa){.size = 4096, .label = labels[i]});
		}
		call_ops(&c, ops, BATCH, out);
		for (int i = 0; i < BATCH; i++) {
			EXPECT_OK(out[i]);
			EXPECT_STR(out[i].ext.label, labels[i]);
			ops[i] = op_free("default", out[i].ext.handle);
		}
		call_ops(&c, ops, BATCH, out);
		for (int i = 0; i < BATCH; i++)
			EXPECT_OK(out[i]);
	}
	EXPECT(strstr(log_text(&d), "after a sweep") != NULL,
	       "%d labels used and dropped, but no owner sweep logged", JOBS);
	r = call(&c, op_lookup("default", keep.offset));
	EXPECT_OK(r);
	EXPECT_STR(r.ext.label, "keep");
	EXPECT_EQ(r.ext.handle, keep.handle);
	r = ALLOC(&c, .size = 4096, .label = "job-7");
	EXPECT_OK(r);
	EXPECT_STR(r.ext.label, "job-7");
	free_ok(&c, "default", r.ext.handle);
	free_ok(&c, "default", keep.handle);
	cl_close(&c);
	daemon_stop(&d);
	free(out);
}
END_TEST

START_TEST(placement)
{
	struct daemon d;
	struct cl c;
	struct ext e, f;
	struct res r;

	daemon_start(&d, NULL);
	cl_open(&c, &d);

	/* Top-down: the highest address of the space. */
	e = ALLOC_OK(&c, .size = 4096, .top_down = true);
	EXPECT_EQ(e.offset, GiB - 4096);
	e = ALLOC_OK(&c, .size = 64 * KiB, .align = 64 * KiB, .top_down = true);
	EXPECT_EQ(e.offset, GiB - 128 * KiB);

	/* Range [256 MiB, 512 MiB), bottom-up and top-down. */
	e = ALLOC_OK(&c, .size = 4096, .min = 256 * MiB, .max = 512 * MiB);
	EXPECT_EQ(e.offset, 256 * MiB);
	e = ALLOC_OK(&c, .size = 4096, .min = 256 * MiB, .max = 512 * MiB,
		     .top_down = true);
	EXPECT_EQ(e.offset, 512 * MiB - 4096);
	r = ALLOC(&c, .size = 2 * MiB, .min = 256 * MiB,
		  .max = 256 * MiB + MiB);
	EXPECT_ST(r, POTAD__V1__STATUS__TOO_LARGE);
	r = ALLOC(&c, .size = 4096, .min = 512 * MiB, .max = 256 * MiB);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);

	/* Fixed claims. */
	e = ALLOC_OK(&c, .size = 64 * KiB, .fixed = true, .at = 100 * MiB);
	EXPECT_EQ(e.offset, 100 * MiB);
	EXPECT_EQ(e.length, 64 * KiB);
	r = ALLOC(&c, .size = 4096, .fixed = true, .at = 100 * MiB + 60 * KiB);
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);
	r = ALLOC(&c, .size = 8192, .fixed = true, .at = 100 * MiB - 4096);
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);
	r = ALLOC(&c, .size = 4096, .fixed = true, .at = GiB);
	EXPECT_ST(r, POTAD__V1__STATUS__OUT_OF_RANGE);
	r = ALLOC(&c, .size = 4096, .fixed = true, .at = 100 * MiB + 100);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	f = ALLOC_OK(&c, .size = 4096, .fixed = true,
		     .at = 100 * MiB + 64 * KiB);
	EXPECT_EQ(f.offset, 100 * MiB + 64 * KiB);

	/* Whole keeps the power-of-two block; exact trims it. */
	e = ALLOC_OK(&c, .size = 12 * KiB, .whole = true);
	EXPECT_EQ(e.length, 16 * KiB);
	EXPECT_EQ(e.offset % (16 * KiB), 0);
	e = ALLOC_OK(&c, .size = 12 * KiB);
	EXPECT_EQ(e.length, 12 * KiB);

	/* Larger than the space. */
	r = ALLOC(&c, .size = 2 * GiB);
	EXPECT_ST(r, POTAD__V1__STATUS__TOO_LARGE);
	/* The whole space, then nothing more fits. */
	r = call(&c, op_extents("default"));
	for (size_t i = 0; i < r.n; i++)
		free_ok(&c, "default", r.exts[i].handle);
	e = ALLOC_OK(&c, .size = GiB);
	EXPECT_EQ(e.offset, 0);
	EXPECT_EQ(e.length, GiB);
	r = ALLOC(&c, .size = 4096);
	EXPECT_ST(r, POTAD__V1__STATUS__NO_SPACE);
	free_ok(&c, "default", e.handle);
	EXPECT_EQ(stat_ok(&c, "default").free_bytes, GiB);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(pipelined)
{
	enum { N = 100 };
	struct daemon d;
	struct cl c;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	uint64_t handles[N];
	struct sinfo s;

	daemon_start(&d, NULL);
	cl_open(&c, &d);

	/* 100 allocations in one write, before reading anything. */
	for (int i = 0; i < N; i++) {
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *op =
		    op_alloc((struct aa){.size = 4096, .tag = i});

		req.id = 1000 + i;
		req.ops = &op;
		req.n_ops = 1;
		frame_req(&buf, &len, &cap, &req);
		free_op(op);
	}
	write_all(c.fd, buf, len);
	for (int i = 0; i < N; i++) {
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp = cl_response(&c, &m);
		struct res r;

		EXPECT_EQ(resp->id, 1000 + i);
		EXPECT_EQ(resp->n_results, 1);
		copy_res(&r, resp->results[0]);
		potad__v1__server_message__free_unpacked(m, NULL);
		EXPECT_OK(r);
		EXPECT_EQ(r.ext.tag, i);
		/* In order, so lowest-first packs them one after another. */
		EXPECT_EQ(r.ext.offset, (uint64_t)i * 4096);
		handles[i] = r.ext.handle;
	}

	/* 100 frees the same way, answered in order. */
	len = 0;
	for (int i = 0; i < N; i++) {
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *op = op_free("default", handles[i]);

		req.id = 5000 + i;
		req.ops = &op;
		req.n_ops = 1;
		frame_req(&buf, &len, &cap, &req);
		free_op(op);
	}
	write_all(c.fd, buf, len);
	for (int i = 0; i < N; i++) {
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp = cl_response(&c, &m);
		struct res r;

		EXPECT_EQ(resp->id, 5000 + i);
		EXPECT_EQ(resp->n_results, 1);
		copy_res(&r, resp->results[0]);
		potad__v1__server_message__free_unpacked(m, NULL);
		EXPECT_OK(r);
		EXPECT_EQ(r.ext.handle, handles[i]);
	}
	free(buf);
	s = stat_ok(&c, "default");
	EXPECT_EQ(s.free_bytes, GiB);
	EXPECT_EQ(s.extents, 0);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(batched)
{
	enum { N = 40 };
	struct daemon d;
	struct cl c;
	Potad__V1__Op *ops[N + 8];
	struct res r[N + 8];
	size_t n = 0;
	struct sinfo s;

	daemon_start(&d, NULL);
	cl_open(&c, &d);

	/* One Request, many ops: one Result each, in order; a refused op
	 * in the middle does not stop the rest. */
	ops[n++] = op_hello();
	for (int i = 0; i < N / 2; i++)
		ops[n++] = op_alloc((struct aa){.size = 8192, .tag = i});
	ops[n++] = op_alloc((struct aa){.size = 0});
	ops[n++] = op_alloc((struct aa){.space = "nope", .size = 4096});
	for (int i = N / 2; i < N; i++)
		ops[n++] = op_alloc((struct aa){.size = 8192, .tag = i});
	ops[n++] = op_stat("default");
	ops[n++] = op_extents("default");
	call_ops(&c, ops, n, r);
	EXPECT_OK(r[0]);
	EXPECT_EQ(r[0].body, POTAD__V1__RESULT__BODY_HELLO);
	for (int i = 0; i < N; i++) {
		size_t k = (size_t)(i < N / 2 ? 1 + i : 3 + i);

		EXPECT_OK(r[k]);
		EXPECT_EQ(r[k].ext.tag, i);
		EXPECT_EQ(r[k].ext.offset, (uint64_t)i * 8192);
	}
	EXPECT_ST(r[1 + N / 2], POTAD__V1__STATUS__INVALID);
	EXPECT_ST(r[2 + N / 2], POTAD__V1__STATUS__NOT_FOUND);
	/* Later ops see earlier ones. */
	EXPECT_OK(r[3 + N]);
	EXPECT_EQ(r[3 + N].space.extents, N);
	EXPECT_EQ(r[3 + N].space.used_bytes, (uint64_t)N * 8192);
	EXPECT_OK(r[4 + N]);
	EXPECT_EQ(r[4 + N].n, N);

	/* A batch of frees with a double free in it. */
	n = 0;
	for (int i = 0; i < N; i++) {
		size_t k = (size_t)(i < N / 2 ? 1 + i : 3 + i);

		ops[n++] = op_free("default", r[k].ext.handle);
		if (i == 3)
			ops[n++] = op_free("default", r[k].ext.handle);
	}
	{
		struct res fr[N + 1];

		call_ops(&c, ops, n, fr);
		for (size_t i = 0; i < n; i++)
			if (i == 4)
				EXPECT_ST(fr[i], POTAD__V1__STATUS__STALE);
			else
				EXPECT_OK(fr[i]);
	}
	/* An empty request is answered with no results. */
	call_ops(&c, ops, 0, r);
	s = stat_ok(&c, "default");
	EXPECT_EQ(s.free_bytes, GiB);
	EXPECT_EQ(s.extents, 0);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(pipelined_backpressure)
{
	enum { NEXT = 400, NREQ = 600 };
	struct daemon d;
	struct cl c, obs;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	long t0;
	struct res r;

	daemon_start(&d, small_limits_conf);
	cl_open(&c, &d);
	cl_open(&obs, &d);
	fill_extents(&c, NEXT);

	/* One write of requests whose answers fill the queue many times
	 * over: all are answered, without the client writing again. */
	len = 0;
	for (int i = 0; i < 40; i++) {
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *op = op_extents("default");

		req.id = 1 + i;
		req.ops = &op;
		req.n_ops = 1;
		frame_req(&buf, &len, &cap, &req);
		free_op(op);
	}
	write_all(c.fd, buf, len);
	for (int i = 0; i < 40; i++) {
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp = cl_response(&c, &m);

		EXPECT_EQ(resp->id, 1 + i);
		EXPECT_EQ(resp->results[0]->extents->n_extents, NEXT);
		potad__v1__server_message__free_unpacked(m, NULL);
	}

	/* Each answer is ~15 KiB: NREQ of them are ~140 times the queue
	 * limit.  Send them all in bursts that arrive while earlier answers
	 * are still unread, say we are done, and only then read. */
	for (int b = 0; b < 6; b++) {
		len = 0;
		for (int i = b * NREQ / 6; i < (b + 1) * NREQ / 6; i++) {
			Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
			Potad__V1__Op *op = op_extents("default");

			req.id = 10000 + i;
			req.ops = &op;
			req.n_ops = 1;
			frame_req(&buf, &len, &cap, &req);
			free_op(op);
		}
		write_all(c.fd, buf, len);
		usleep(20000);
	}
	free(buf);
	EXPECT(shutdown(c.fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));

	/* Others are served meanwhile. */
	t0 = now_ms();
	r = call(&obs, op_hello());
	EXPECT_OK(r);
	EXPECT(now_ms() - t0 < 2000,
	       "hello took %ld ms while another client was held back",
	       now_ms() - t0);

	/* Every request is answered, in order, and only then the end. */
	for (int i = 0; i < NREQ; i++) {
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp = cl_response(&c, &m);

		EXPECT_EQ(resp->id, 10000 + i);
		EXPECT_EQ(resp->n_results, 1);
		EXPECT_EQ(resp->results[0]->status, POTAD__V1__STATUS__OK);
		EXPECT_EQ(resp->results[0]->extents->n_extents, NEXT);
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	expect_eof(&c, "a half-closed client after its last answer");
	cl_close(&c);
	EXPECT_EQ(stat_ok(&obs, "default").extents, NEXT);
	cl_close(&obs);
	daemon_stop(&d);
}
END_TEST

/* A Request whose packed size is exactly n bytes. */
/* An event raised by a request that waited out backpressure goes out
 * once, and the request is handled once. */
START_TEST(pipelined_with_event)
{
	enum { NEXT = 400, NLIST = 40 };
	struct daemon d;
	struct cl c;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	uint64_t want = 1;
	int events = 0;
	struct res r;

	daemon_start(&d, small_limits_conf);
	cl_open(&c, &d);
	fill_extents(&c, NEXT);
	/* Below a 100% watermark at once: the next allocation tells. */
	r = call(&c, op_subscribe("default", 100));
	EXPECT_OK(r);

	for (int i = 0; i < 2 * NLIST + 2; i++) {
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *op;

		if (i == NLIST)
			op = op_alloc((struct aa){.size = 4096, .tag = 99});
		else if (i == 2 * NLIST + 1)
			op = op_stat("default");
		else
			op = op_extents("default");
		req.id = 1 + i;
		req.ops = &op;
		req.n_ops = 1;
		frame_req(&buf, &len, &cap, &req);
		free_op(op);
	}
	write_all(c.fd, buf, len);
	free(buf);
	/* Let the socket fill, so that the daemon holds back. */
	usleep(300000);

	while (want <= 2 * NLIST + 2) {
		Potad__V1__ServerMessage *m = NULL;
		int rc = cl_recv(&c, IO_TIMEOUT_MS, &m);

		EXPECT(rc == 1, "waiting for answer %" PRIu64 " of %d: %s",
		       want, 2 * NLIST + 2,
		       rc == 0 ? "the daemon closed the connection"
			       : "nothing within the time limit");
		if (m->msg_case == POTAD__V1__SERVER_MESSAGE__MSG_EVENT) {
			EXPECT_EQ(m->event->event_case,
				  POTAD__V1__EVENT__EVENT_LOW_SPACE);
			events++;
		} else {
			EXPECT_EQ(m->response->id, want);
			if (want == 2 * NLIST + 2)
				EXPECT_EQ(
				    m->response->results[0]->space->extents,
				    NEXT + 1);
			want++;
		}
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	EXPECT_EQ(events, 1);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(idempotency_token)
{
	struct daemon d;
	struct cl c;
	struct ext a, b, x;

	daemon_start(&d, NULL);
	cl_open(&c, &d);
	a = ALLOC_OK(&c, .size = 16 * KiB, .token = "tok-1");
	b = ALLOC_OK(&c, .size = 16 * KiB, .token = "tok-1");
	EXPECT_EQ(b.handle, a.handle);
	EXPECT_EQ(b.offset, a.offset);
	EXPECT_EQ(b.length, a.length);
	x = ALLOC_OK(&c, .size = 16 * KiB, .token = "tok-2");
	EXPECT(x.handle != a.handle, "two tokens, one extent");
	EXPECT_EQ(stat_ok(&c, "default").extents, 2);

	/* Across a reconnect too. */
	cl_close(&c);
	cl_open(&c, &d);
	b = ALLOC_OK(&c, .size = 16 * KiB, .token = "tok-1");
	EXPECT_EQ(b.handle, a.handle);
	EXPECT_EQ(stat_ok(&c, "default").extents, 2);

	/* Once freed, the token starts afresh. */
	free_ok(&c, "default", a.handle);
	b = ALLOC_OK(&c, .size = 16 * KiB, .token = "tok-1");
	EXPECT(b.handle != a.handle, "a freed token's handle came back");
	EXPECT_EQ(stat_ok(&c, "default").extents, 2);
	free_ok(&c, "default", b.handle);
	free_ok(&c, "default", x.handle);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/* Listing in pages: a list too large for one reply is refused unpaged,
 * and paged it comes whole, in address order, each extent once, however
 * the pages are cut (by limit or by the reply budget), from any offset and
 * with a filter. */
START_TEST(list_pages)
{
	enum { N = 3000, NLAB = 20 };
	struct daemon d;
	struct cl c;
	struct res r, p;
	uint64_t from = 0, last = 0;
	size_t seen = 0, pages = 0;
	bool any = false;

	daemon_start(&d, small_limits_conf);
	cl_open(&c, &d);
	fill_extents(&c, N);

	r = call(&c, op_extents("default"));
	EXPECT_ST(r, POTAD__V1__STATUS__TOO_LARGE);
	EXPECT(strstr(r.msg, "pages") != NULL, "message: %s", r.msg);

	/* Pages of 16, the whole way. */
	do {
		r = call(&c, op_extents_page("default", from, 16, NULL));
		EXPECT_OK(r);
		EXPECT(r.n >= 1 && r.n <= 16, "page of %zu", r.n);
		for (size_t i = 0; i < r.n; i++) {
			EXPECT(!any || r.exts[i].offset > last,
			       "extent at %#llx after %#llx",
			       (unsigned long long)r.exts[i].offset,
			       (unsigned long long)last);
			EXPECT(r.exts[i].offset >= from, "extent before from");
			last = r.exts[i].offset;
			any = true;
		}
		if (r.more)
			EXPECT(r.next > last, "next %#llx not past %#llx",
			       (unsigned long long)r.next,
			       (unsigned long long)last);
		seen += r.n;
		from = r.next;
		pages++;
	} while (r.more);
	EXPECT_EQ(seen, N);
	EXPECT_EQ(pages, (N + 15) / 16);

	/* A limit the budget cuts short: fewer, more follow, and next is
	 * where the following page starts. */
	r = call(&c, op_extents_page("default", 0, 1000000, NULL));
	EXPECT_OK(r);
	EXPECT(r.n > 16 && r.n < N, "budget page of %zu", r.n);
	EXPECT(r.more, "a budget-cut page says more");
	p = call(&c, op_extents_page("default", r.next, 1, NULL));
	EXPECT_OK(p);
	EXPECT_EQ(p.n, 1);
	EXPECT_EQ(p.exts[0].offset, r.next);

	/* From the middle of an extent: the next one on. */
	r = call(&c, op_extents_page("default", 100 * 4096 + 1, 2, NULL));
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 2);
	EXPECT_EQ(r.exts[0].offset, 101 * 4096);
	/* Past the last extent: empty, nothing more. */
	r = call(&c, op_extents_page("default", (uint64_t)N * 4096, 16, NULL));
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 0);
	EXPECT(!r.more, "more past the end");

	/* A filter, paged by 7: only the labelled ones, all of them. */
	for (int i = 0; i < NLAB; i++)
		ALLOC_OK(&c, .size = 4096, .label = "lab");
	from = 0;
	seen = 0;
	do {
		r = call(&c, op_extents_page("default", from, 7, "lab"));
		EXPECT_OK(r);
		for (size_t i = 0; i < r.n; i++)
			EXPECT_STR(r.exts[i].label, "lab");
		seen += r.n;
		from = r.next;
	} while (r.more);
	EXPECT_EQ(seen, NLAB);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/* Many live tokens: a free forgets exactly the token of the extent it
 * frees (found through the extent, not by a scan), an untokened free
 * forgets none, and a retry of every token afterwards tells them apart. */
START_TEST(token_many)
{
	enum { N = 300 };
	struct daemon d;
	struct cl c;
	struct ext e[N], plain, b;
	char tok[32];

	daemon_start(&d, NULL);
	cl_open(&c, &d);
	for (int i = 0; i < N; i++) {
		snprintf(tok, sizeof(tok), "many-%d", i);
		e[i] = ALLOC_OK(&c, .size = 4 * KiB, .token = tok);
	}
	plain = ALLOC_OK(&c, .size = 4 * KiB);
	free_ok(&c, "default", plain.handle);
	for (int i = 0; i < N; i += 3)
		free_ok(&c, "default", e[i].handle);
	for (int i = 0; i < N; i++) {
		snprintf(tok, sizeof(tok), "many-%d", i);
		b = ALLOC_OK(&c, .size = 4 * KiB, .token = tok);
		if (i % 3 == 0)
			EXPECT(b.handle != e[i].handle,
			       "token %s still named the freed extent %#llx",
			       tok, (unsigned long long)e[i].handle);
		else
			EXPECT(b.handle == e[i].handle,
			       "token %s: handle %#llx, expected %#llx", tok,
			       (unsigned long long)b.handle,
			       (unsigned long long)e[i].handle);
		e[i] = b;
	}
	EXPECT_EQ(stat_ok(&c, "default").extents, N);
	for (int i = 0; i < N; i++)
		free_ok(&c, "default", e[i].handle);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/*
 * Concurrency: 64 processes allocate and free at once.  A shared bitmap of
 * 4 KiB units catches any unit handed to two clients at the same time.
 */
enum { NCLIENTS = 64, ROUNDS = 300, HOLD = 8 };

static void mark(uint64_t *bits, const struct ext *e, bool set)
{
	for (uint64_t u = e->offset / 4096; u < (e->offset + e->length) / 4096;
	     u++) {
		uint64_t bit = UINT64_C(1) << (u % 64);

		if (set) {
			uint64_t old = __atomic_fetch_or(&bits[u / 64], bit,
							 __ATOMIC_SEQ_CST);

			EXPECT(!(old & bit),
			       "unit %#" PRIx64 " of extent [%#" PRIx64
			       ", +%#" PRIx64 ") is already held by "
			       "another client",
			       u * 4096, e->offset, e->length);
		} else {
			__atomic_fetch_and(&bits[u / 64], ~bit,
					   __ATOMIC_SEQ_CST);
		}
	}
}

static void churn(const struct daemon *d, uint64_t *bits, unsigned seed)
{
	static const uint64_t aligns[] = {0, 8 * KiB, 64 * KiB, MiB};
	struct ext held[HOLD];
	size_t nheld = 0;
	struct cl c;

	cl_open(&c, d);
	for (int i = 0; i < ROUNDS; i++) {
		if (nheld == HOLD || (nheld && rand_r(&seed) % 3 == 0)) {
			size_t k = rand_r(&seed) % nheld;

			/* Clear first: once freed, another may get it. */
			mark(bits, &held[k], false);
			free_ok(&c, "default", held[k].handle);
			held[k] = held[--nheld];
		} else {
			uint64_t size = 1 + rand_r(&seed) % (256 * KiB);
			uint64_t align = aligns[rand_r(&seed) % 4];
			struct ext e =
			    ALLOC_OK(&c, .size = size, .align = align);

			EXPECT_EQ(e.length, (size + 4095) / 4096 * 4096);
			if (align)
				EXPECT_EQ(e.offset % align, 0);
			mark(bits, &e, true);
			held[nheld++] = e;
		}
	}
	while (nheld) {
		mark(bits, &held[--nheld], false);
		free_ok(&c, "default", held[nheld].handle);
	}
	cl_close(&c);
}

START_TEST(concurrent_clients)
{
	struct daemon d;
	struct cl c;
	struct sinfo before, after;
	pid_t pids[NCLIENTS];
	int fds[NCLIENTS];
	uint64_t *bits;
	struct res r;

	daemon_start(&d, NULL);
	cl_open(&c, &d);
	before = stat_ok(&c, "default");
	bits = mmap(NULL, GiB / 4096 / 8, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EXPECT(bits != MAP_FAILED, "mmap: %s", strerror(errno));
	for (int i = 0; i < NCLIENTS; i++) {
		pids[i] = helper_fork(&fds[i]);
		if (pids[i] == 0) {
			churn(&d, bits, 0x9e3779b9u * (unsigned)(i + 1));
			_exit(0);
		}
	}
	for (int i = 0; i < NCLIENTS; i++)
		child_expect(pids[i], fds[i], "a concurrent client");
	after = stat_ok(&c, "default");
	EXPECT_EQ(after.free_bytes, before.free_bytes);
	EXPECT_EQ(after.used_bytes, 0);
	EXPECT_EQ(after.extents, 0);
	EXPECT_EQ(after.free_blocks, before.free_blocks);
	r = call(&c, op_extents("default"));
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 0);
	munmap(bits, GiB / 4096 / 8);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/*
 * Malformed input.  Each case is followed by a check, from a connection
 * of its own, that the daemon still answers and the space is unchanged.
 */

START_TEST(malformed_frames)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07};
	/* Field 2 (ops), length 80, but the frame ends after 3 bytes. */
	static const uint8_t short_field[] = {0x12, 0x50, 0x01};
	struct daemon d;
	struct cl obs, c;
	struct ext held;
	struct sinfo s0;
	uint8_t raw[32];
	size_t n;
	struct res r;

	daemon_start(&d, NULL);
	cl_open(&obs, &d);
	held = ALLOC_OK(&obs, .size = 40 * KiB);
	s0 = stat_ok(&obs, "default");

	/* A frame cut short, then close: others are served on. */
	cl_open(&c, &d);
	n = potad__varint_put(100, raw);
	memset(raw + n, 0x08, 10);
	write_all(c.fd, raw, n + 10);
	cl_close(&c);
	EXPECT_SAME(&obs, "default", s0, "a truncated frame");
	/* Half a varint, then close. */
	cl_open(&c, &d);
	write_all(c.fd, "\x80", 1);
	cl_close(&c);
	EXPECT_SAME(&obs, "default", s0, "a truncated length");

	/* A partial frame on an open connection blocks nobody, and the
	 * frame is answered once its last byte arrives. */
	{
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *op = op_hello();
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0;
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp;

		req.id = 77;
		req.ops = &op;
		req.n_ops = 1;
		frame_req(&buf, &len, &cap, &req);
		free_op(op);
		cl_open(&c, &d);
		for (size_t i = 0; i + 1 < len; i++) {
			write_all(c.fd, buf + i, 1);
			if (i % 4 == 0)
				usleep(1000);
		}
		EXPECT_SAME(&obs, "default", s0, "a partial frame");
		write_all(c.fd, buf + len - 1, 1);
		resp = cl_response(&c, &m);
		EXPECT_EQ(resp->id, 77);
		EXPECT_EQ(resp->n_results, 1);
		EXPECT_EQ(resp->results[0]->status, POTAD__V1__STATUS__OK);
		potad__v1__server_message__free_unpacked(m, NULL);
		free(buf);
		cl_close(&c);
	}

	/* A length prefix that is not a varint: INVALID, then closed. */
	cl_open(&c, &d);
	memset(raw, 0xff, 11);
	write_all(c.fd, raw, 11);
	EXPECT_REFUSAL(&c, POTAD__V1__STATUS__INVALID);
	expect_eof(&c, "a bad varint");
	cl_close(&c);
	EXPECT_SAME(&obs, "default", s0, "a bad varint");

	/* Over the 1 MiB frame limit: TOO_LARGE before any body is sent. */
	cl_open(&c, &d);
	n = potad__varint_put(MiB + 1, raw);
	write_all(c.fd, raw, n);
	EXPECT_REFUSAL(&c, POTAD__V1__STATUS__TOO_LARGE);
	expect_eof(&c, "an oversized frame");
	cl_close(&c);
	cl_open(&c, &d);
	n = potad__varint_put(UINT64_MAX, raw);
	write_all(c.fd, raw, n);
	EXPECT_REFUSAL(&c, POTAD__V1__STATUS__TOO_LARGE);
	expect_eof(&c, "a 2^64-1 byte frame");
	cl_close(&c);
	EXPECT_SAME(&obs, "default", s0, "an oversized frame");

	/* Garbage in a well-formed frame: INVALID, and the connection
	 * stays usable. */
	cl_open(&c, &d);
	n = potad__varint_put(sizeof(garbage), raw);
	memcpy(raw + n, garbage, sizeof(garbage));
	write_all(c.fd, raw, n + sizeof(garbage));
	EXPECT_REFUSAL(&c, POTAD__V1__STATUS__INVALID);
	n = potad__varint_put(sizeof(short_field), raw);
	memcpy(raw + n, short_field, sizeof(short_field));
	write_all(c.fd, raw, n + sizeof(short_field));
	EXPECT_REFUSAL(&c, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_hello());
	EXPECT_OK(r);
	r = call(&c, op_lookup("default", held.offset));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, held.handle);
	cl_close(&c);
	EXPECT_SAME(&obs, "default", s0, "garbage protobuf");

	/* Fields the schema does not have are skipped, as protobuf
	 * requires, and of two members of a oneof the last one counts. */
	{
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *op = op_hello();
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp;
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0;
		/* Field 99 (varint 1); then ops { hello {} list_spaces {} }. */
		static const uint8_t extra[] = {0x98, 0x06, 0x01, 0x12, 0x04,
						0x0a, 0x00, 0x12, 0x00};

		req.id = 55;
		req.ops = &op;
		req.n_ops = 1;
		frame_req(&buf, &len, &cap, &req);
		free_op(op);
		/* Grow the frame: its length is one byte, the first. */
		EXPECT(buf[0] + sizeof(extra) < 0x80, "frame too long");
		memcpy(buf + len, extra, sizeof(extra));
		buf[0] += sizeof(extra);
		len += sizeof(extra);
		cl_open(&c, &d);
		write_all(c.fd, buf, len);
		free(buf);
		resp = cl_response(&c, &m);
		EXPECT_EQ(resp->id, 55);
		EXPECT_EQ(resp->n_results, 2);
		EXPECT_EQ(resp->results[0]->status, POTAD__V1__STATUS__OK);
		EXPECT_EQ(resp->results[0]->body_case,
			  POTAD__V1__RESULT__BODY_HELLO);
		EXPECT_EQ(resp->results[1]->status, POTAD__V1__STATUS__OK);
		EXPECT_EQ(resp->results[1]->body_case,
			  POTAD__V1__RESULT__BODY_SPACES);
		potad__v1__server_message__free_unpacked(m, NULL);
		cl_close(&c);
	}

	/* A string that is not UTF-8 (proto3 requires it): the whole
	 * request is refused under its id, and nothing is done. */
	{
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *ops[2];
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp;

		ops[0] = op_alloc((struct aa){.size = 4096});
		ops[1] = op_alloc((struct aa){.size = 4096, .label = "vm\xff"});
		req.id = 66;
		req.ops = ops;
		req.n_ops = 2;
		cl_open(&c, &d);
		cl_send(&c, &req);
		free_op(ops[0]);
		free_op(ops[1]);
		resp = cl_response(&c, &m);
		EXPECT_EQ(resp->id, 66);
		EXPECT(resp->status == POTAD__V1__STATUS__INVALID,
		       "a label that is not UTF-8: expected the request "
		       "refused as INVALID, got %s",
		       status_name(resp->status));
		EXPECT_EQ(resp->n_results, 0);
		potad__v1__server_message__free_unpacked(m, NULL);
		r = call(&c, op_hello());
		EXPECT_OK(r);
		cl_close(&c);
		EXPECT_SAME(&obs, "default", s0, "a string that is not UTF-8");
	}

	/* A zero-length frame is an empty Request: no results. */
	cl_open(&c, &d);
	write_all(c.fd, "\x00", 1);
	{
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp = cl_response(&c, &m);

		EXPECT_EQ(resp->id, 0);
		EXPECT_EQ(resp->status, POTAD__V1__STATUS__OK);
		EXPECT_EQ(resp->n_results, 0);
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	cl_close(&c);

	free_ok(&obs, "default", held.handle);
	cl_close(&obs);
	daemon_stop(&d);
}
END_TEST

START_TEST(malformed_ops)
{
	struct daemon d;
	struct cl c;
	struct ext held, other;
	struct sinfo s0;
	size_t nspaces;
	struct res r;
	Potad__V1__Op *op;
	uint64_t forged;

	daemon_start(&d, admin_conf());
	cl_open(&c, &d);
	held = ALLOC_OK(&c, .size = 40 * KiB);
	other = ALLOC_OK(&c, .size = 4 * KiB);
	free_ok(&c, "default", other.handle);
	s0 = stat_ok(&c, "default");
	nspaces = count_spaces(&c);

	/* An enum value the schema does not have, set in the raw field. */
	op = op_space_add("kind99", MiB);
	op->space_add->kind = 99;
	r = call(&c, op);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	EXPECT_EQ(count_spaces(&c), nspaces);
	/* A device kind without the path its probe needs. */
	op = op_space_add("swap0", MiB);
	op->space_add->kind = POTAD__V1__SPACE_KIND__SWAP;
	r = call(&c, op);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	op = op_space_add("g3", MiB);
	op->space_add->granule = 3;
	r = call(&c, op);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_space_add("default", MiB));
	EXPECT_ST(r, POTAD__V1__STATUS__EXISTS);
	r = call(&c, op_space_add("bad name!", MiB));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_space_add("nosize", 0));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	EXPECT_EQ(count_spaces(&c), nspaces);
	EXPECT_SAME(&c, "default", s0, "refused space_add");

	/* An Op with no operation set. */
	r = call(&c, op_empty());
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);

	/* Refused allocations. */
	r = ALLOC(&c, .size = 0);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = ALLOC(&c, .size = 4096, .align = 3);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = ALLOC(&c, .size = 4096, .align = 12288);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = ALLOC(&c, .space = "no-such-space", .size = 4096);
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = ALLOC(&c, .space = "", .size = 4096);
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = ALLOC(&c, .size = 4096, .min = 2 * GiB, .max = 3 * GiB);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = ALLOC(&c, .size = 4096, .reserve = "default");
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	EXPECT_SAME(&c, "default", s0, "refused allocations");

	/* Stale and forged handles. */
	r = call(&c, op_free("default", other.handle));
	EXPECT_ST(r, POTAD__V1__STATUS__STALE);
	r = call(&c, op_free("default", 0));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	forged = (UINT64_C(1) << 60) | 0xfffffffu;
	r = call(&c, op_free("default", forged));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	/* The live extent's slot with another generation. */
	forged = held.handle ^ (UINT64_C(1) << 40);
	r = call(&c, op_free("default", forged));
	EXPECT_ST(r, POTAD__V1__STATUS__STALE);
	/* A type the engine does not have (the type bits of a known type
	 * do not decide: a child space changes them under a held handle). */
	forged = (held.handle & ~(UINT64_C(0xf) << 60)) | (UINT64_C(15) << 60);
	r = call(&c, op_free("default", forged));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_free("no-such-space", held.handle));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = call(&c, op_free_at("default", held.offset + held.length));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	EXPECT_SAME(&c, "default", s0, "stale and forged handles");

	/* Other refusals. */
	r = call(&c, op_lookup("default", GiB));
	EXPECT_ST(r, POTAD__V1__STATUS__OUT_OF_RANGE);
	r = call(&c, op_lookup("no-such-space", 0));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = call(&c, op_stat("no-such-space"));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = call(&c, op_poison("default", 4096, 0));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_poison("default", 100, 4096));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_poison("default", GiB, 4096));
	EXPECT_ST(r, POTAD__V1__STATUS__OUT_OF_RANGE);
	r = call(&c, op_subscribe("default", 101));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_subscribe("no-such-space", 0));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = call(&c, op_child_add("default", "c0", 0, false, NULL, 0));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_child_add("default", "default", MiB, false, NULL, 0));
	EXPECT_ST(r, POTAD__V1__STATUS__EXISTS);
	r = call(&c, op_child_add("default", "c1", 2 * GiB, false, NULL, 0));
	EXPECT_ST(r, POTAD__V1__STATUS__TOO_LARGE);
	r = call(&c, op_child_add("nope", "c2", MiB, false, NULL, 0));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	/* Carved, then refused: a granule larger than the child. */
	op = op_child_add("default", "c3", 4 * KiB, false, NULL, 0);
	op->child_add->granule = MiB;
	r = call(&c, op);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	op = op_child_add("default", "c4", MiB, false, NULL, 0);
	op->child_add->granule = 3 * KiB;
	r = call(&c, op);
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_child_rm("default"));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	r = call(&c, op_space_rm("default", false));
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);
	r = call(&c, op_space_rm("no-such-space", false));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	EXPECT_EQ(count_spaces(&c), nspaces);
	EXPECT_SAME(&c, "default", s0, "other refusals");

	r = call(&c, op_lookup("default", held.offset));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, held.handle);
	free_ok(&c, "default", held.handle);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

static Potad__V1__Request *request_of_size(size_t n, char **filler)
{
	Potad__V1__Request *req = xcalloc(sizeof(*req));
	Potad__V1__Op *op = op_hello();
	size_t s = n;

	potad__v1__request__init(req);
	req->id = 9;
	req->ops = xcalloc(sizeof(*req->ops));
	req->ops[0] = op;
	req->n_ops = 1;
	*filler = xcalloc(n + 1);
	for (int i = 0; i < 8; i++) {
		size_t got;

		memset(*filler, 'x', s);
		(*filler)[s] = '\0';
		op->hello->client = *filler;
		got = potad__v1__request__get_packed_size(req);
		if (got == n)
			return req;
		s = s + n - got;
	}
	FAIL("cannot build a Request of exactly %zu bytes", n);
}

START_TEST(frame_limit_boundary)
{
	struct daemon d;
	struct cl c;
	Potad__V1__Request *req;
	Potad__V1__ServerMessage *m = NULL;
	Potad__V1__Response *resp;
	char *filler;

	daemon_start(&d, small_limits_conf);

	/* Exactly max_frame (64 KiB): answered. */
	cl_open(&c, &d);
	req = request_of_size(64 * KiB, &filler);
	cl_send(&c, req);
	resp = cl_response(&c, &m);
	EXPECT_EQ(resp->id, 9);
	EXPECT_EQ(resp->n_results, 1);
	EXPECT_EQ(resp->results[0]->status, POTAD__V1__STATUS__OK);
	potad__v1__server_message__free_unpacked(m, NULL);
	/* Twice in a row, so the second starts mid-buffer. */
	cl_send(&c, req);
	cl_send(&c, req);
	for (int i = 0; i < 2; i++) {
		resp = cl_response(&c, &m);
		EXPECT_EQ(resp->id, 9);
		EXPECT_EQ(resp->results[0]->status, POTAD__V1__STATUS__OK);
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	free_op(req->ops[0]);
	free(req->ops);
	free(req);
	free(filler);

	/* One byte more: refused and closed. */
	req = request_of_size(64 * KiB + 1, &filler);
	cl_send(&c, req);
	EXPECT_REFUSAL(&c, POTAD__V1__STATUS__TOO_LARGE);
	expect_eof(&c, "a frame one byte over the limit");
	cl_close(&c);
	free_op(req->ops[0]);
	free(req->ops);
	free(req);
	free(filler);
	daemon_stop(&d);
}
END_TEST

START_TEST(connection_limit)
{
	struct daemon d;
	struct cl c[3], extra;
	long deadline;
	struct res r;

	daemon_start(&d, small_limits_conf);
	for (int i = 0; i < 3; i++) {
		cl_open(&c[i], &d);
		r = call(&c[i], op_hello());
		EXPECT_OK(r);
	}
	/* The fourth is told why, then closed. */
	cl_open(&extra, &d);
	EXPECT_REFUSAL(&extra, POTAD__V1__STATUS__UNAVAILABLE);
	expect_eof(&extra, "a connection over max_connections");
	cl_close(&extra);
	r = call(&c[0], op_hello());
	EXPECT_OK(r);

	/* A place freed is a place to take. */
	cl_close(&c[2]);
	deadline = now_ms() + IO_TIMEOUT_MS;
	for (;;) {
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__ServerMessage *m = NULL;
		Potad__V1__Response *resp;
		bool ok;

		cl_open(&extra, &d);
		req.id = 42;
		cl_send(&extra, &req);
		resp = cl_response(&extra, &m);
		ok = resp->id == 42;
		potad__v1__server_message__free_unpacked(m, NULL);
		cl_close(&extra);
		if (ok)
			break;
		EXPECT(now_ms() < deadline,
		       "no connection accepted within %d ms after one of 3 "
		       "closed",
		       IO_TIMEOUT_MS);
		usleep(5000);
	}
	cl_close(&c[0]);
	cl_close(&c[1]);
	daemon_stop(&d);
}
END_TEST

/*
 * Permissions: a process that dropped to `nobody` against root's daemon.
 */
static void as_nobody(const struct daemon *d, const struct ext *roots,
		      uid_t nuid)
{
	struct cl c;
	struct res r;
	struct ext mine;
	Potad__V1__Op *op;

	cl_open(&c, d);
	r = call(&c, op_hello());
	EXPECT_OK(r);
	EXPECT_EQ(r.uid, nuid);
	EXPECT_EQ(r.admin, false);

	/* The default space is open to all. */
	mine = ALLOC_OK(&c, .size = 8192, .label = "nobody's");
	EXPECT_EQ(mine.owner_uid, nuid);
	r = call(&c, op_lookup("default", mine.offset));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, mine.handle);

	/* Root's extent is not ours to see or free. */
	r = call(&c, op_free("default", roots->handle));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_lookup("default", roots->offset));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_free_at("default", roots->offset));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_shrink("default", roots->handle, 4 * KiB));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_extents("default"));
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 1);
	EXPECT_EQ(r.exts[0].handle, mine.handle);
	op = op_extents("default");
	op->list_extents->by_owner = true;
	op->list_extents->owner_uid = 0;
	r = call(&c, op);
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);

	/* Admin operations. */
	r = call(&c, op_space_add("mine", MiB));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_space_rm("private", true));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_poison("default", roots->offset, 4096));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_poison("default", mine.offset, 4096));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_child_add("default", "mykid", MiB, false, &nuid, 1));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_child_rm("kid"));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);

	/* A space for another uid refuses us; one for us does not. */
	r = ALLOC(&c, .space = "private", .size = 4096);
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_stat("private"));
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);
	r = call(&c, op_list());
	EXPECT_OK(r);
	for (size_t i = 0; i < r.n && i < RES_LIST_MAX; i++)
		EXPECT(strcmp(r.spaces[i].name, "private") != 0,
		       "list_spaces shows nobody the space 'private'");
	r = ALLOC(&c, .space = "kid", .size = 4096);
	EXPECT_OK(r);
	free_ok(&c, "kid", r.ext.handle);
	r = ALLOC(&c, .space = "rsv", .size = 4096);
	EXPECT_ST(r, POTAD__V1__STATUS__PERMISSION);

	free_ok(&c, "default", mine.handle);
	cl_close(&c);
}

START_TEST(permissions)
{
	static const char conf[] =
	    "[daemon]\nsocket_mode = 0666\n\n"
	    "[space default]\nkind = range\nsize = 1G\ngranule = 4K\n"
	    "allow = all\n";
	struct daemon d;
	struct cl c;
	struct passwd *pw;
	struct ext roots;
	struct sinfo s0, k0;
	struct res r;
	Potad__V1__Op *op;
	uint32_t other = 4242, nuid;
	pid_t pid;
	int rfd;

	if (geteuid() != 0) {
		printf("check_daemon: permissions: skipped (needs root to "
		       "act as nobody)\n");
		return;
	}
	pw = getpwnam("nobody");
	if (!pw) {
		printf("check_daemon: permissions: skipped (no user "
		       "nobody)\n");
		return;
	}
	nuid = pw->pw_uid;
	daemon_start(&d, conf);
	cl_open(&c, &d);
	roots = ALLOC_OK(&c, .size = 64 * KiB, .label = "root's");
	op = op_space_add("private", MiB);
	op->space_add->allow_all = false;
	op->space_add->allow_uids = &other;
	op->space_add->n_allow_uids = 1;
	r = call(&c, op);
	EXPECT_OK(r);
	r = call(&c, op_child_add("default", "kid", MiB, false, &nuid, 1));
	EXPECT_OK(r);
	r = call(&c, op_child_add("default", "rsv", MiB, true, &other, 1));
	EXPECT_OK(r);
	s0 = stat_ok(&c, "default");
	k0 = stat_ok(&c, "private");

	pid = helper_fork(&rfd);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
		    setuid(pw->pw_uid) < 0)
			FAIL("dropping to nobody: %s", strerror(errno));
		EXPECT(getuid() == nuid && geteuid() == nuid,
		       "still uid %u after setuid", (unsigned)geteuid());
		as_nobody(&d, &roots, nuid);
		_exit(0);
	}
	child_expect(pid, rfd, "a client running as nobody");

	EXPECT_SAME(&c, "default", s0, "nobody's refused operations");
	EXPECT_SAME(&c, "private", k0, "nobody's refused operations");
	r = call(&c, op_lookup("default", roots.offset));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.handle, roots.handle);
	free_ok(&c, "default", roots.handle);
	r = call(&c, op_child_rm("kid"));
	EXPECT_OK(r);
	r = call(&c, op_child_rm("rsv"));
	EXPECT_OK(r);
	r = call(&c, op_space_rm("private", false));
	EXPECT_OK(r);
	EXPECT_EQ(stat_ok(&c, "default").free_bytes, GiB);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(session_extents)
{
	struct daemon d;
	struct cl a, b;
	struct ext s1, s2, keep;
	struct sinfo st;
	struct res r;

	daemon_start(&d, NULL);
	cl_open(&a, &d);
	cl_open(&b, &d);
	s1 = ALLOC_OK(&a, .size = 64 * KiB, .session = true);
	EXPECT_EQ(s1.session, true);
	s2 = ALLOC_OK(&a, .size = 4 * KiB, .session = true, .label = "x");
	keep = ALLOC_OK(&a, .size = 8 * KiB);
	EXPECT_EQ(keep.session, false);
	r = call(&b, op_lookup("default", s1.offset));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.session, true);
	/* A session extent freed early is not freed twice at close. */
	free_ok(&a, "default", s2.handle);
	st = stat_ok(&b, "default");
	EXPECT_EQ(st.extents, 2);

	cl_close(&a);
	st = wait_extents(&b, "default", 1);
	EXPECT_EQ(st.used_bytes, 8 * KiB);
	r = call(&b, op_lookup("default", s1.offset));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	r = call(&b, op_extents("default"));
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 1);
	EXPECT_EQ(r.exts[0].handle, keep.handle);
	free_ok(&b, "default", keep.handle);
	cl_close(&b);
	daemon_stop(&d);
}
END_TEST

START_TEST(poison_event)
{
	struct daemon d;
	struct cl owner, admin, bystander;
	struct ext e, other, t;
	uint32_t me = (uint32_t)geteuid();
	bool found = false;
	struct res r;
	struct sinfo st;
	Potad__V1__ServerMessage *m;
	Potad__V1__PoisonEvent *pe;

	daemon_start(&d, admin_conf());
	cl_open(&owner, &d);
	cl_open(&admin, &d);
	cl_open(&bystander, &d);
	r = call(&owner, op_subscribe("default", 0));
	EXPECT_OK(r);
	/* Subscribed to another space: hears nothing of this one. */
	r = call(&admin, op_space_add("elsewhere", MiB));
	EXPECT_OK(r);
	r = call(&bystander, op_subscribe("elsewhere", 0));
	EXPECT_OK(r);
	e = ALLOC_OK(&owner, .size = 64 * KiB, .label = "victim");
	other = ALLOC_OK(&owner, .size = 64 * KiB);

	r = call(&admin, op_poison("default", e.offset + 8 * KiB, 4 * KiB));
	EXPECT_OK(r);
	EXPECT_EQ(r.body, POTAD__V1__RESULT__BODY_POISON);
	EXPECT_EQ(r.hits, 1);

	m = cl_event(&owner, IO_TIMEOUT_MS);
	EXPECT(m != NULL, "the owner got no poison event within %d ms",
	       IO_TIMEOUT_MS);
	EXPECT_EQ(m->event->event_case, POTAD__V1__EVENT__EVENT_POISON);
	pe = m->event->poison;
	EXPECT_EQ(pe->offset, e.offset + 8 * KiB);
	EXPECT_EQ(pe->length, 4 * KiB);
	EXPECT(pe->extent != NULL, "a poison event without its extent");
	EXPECT_EQ(pe->extent->offset, e.offset);
	EXPECT_EQ(pe->extent->length, e.length);
	EXPECT_EQ(pe->extent->handle, e.handle);
	EXPECT_EQ(pe->extent->owner_uid, geteuid());
	EXPECT_STR(pe->extent->space, "default");
	EXPECT_STR(pe->extent->label, "victim");
	EXPECT_EQ(pe->extent->poisoned, true);
	potad__v1__server_message__free_unpacked(m, NULL);
	m = cl_event(&owner, 200);
	EXPECT(m == NULL, "a second event for one poisoned extent");
	m = cl_event(&bystander, 200);
	EXPECT(m == NULL, "a subscriber of another space got an event");

	/* The poisoned unit stays out of use after the free. */
	r = call(&owner, op_lookup("default", e.offset));
	EXPECT_OK(r);
	EXPECT_EQ(r.ext.poisoned, true);
	free_ok(&owner, "default", e.handle);
	free_ok(&owner, "default", other.handle);
	st = stat_ok(&owner, "default");
	EXPECT_EQ(st.poisoned_bytes, 4 * KiB);
	EXPECT_EQ(st.free_bytes, GiB - 4 * KiB);
	EXPECT_EQ(st.extents, 0);
	r = ALLOC(&owner, .size = 4096, .fixed = true,
		  .at = e.offset + 8 * KiB);
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);
	/* Poison of free space hits nobody and sends nothing. */
	r = call(&admin, op_poison("default", 512 * MiB, 4 * KiB));
	EXPECT_OK(r);
	EXPECT_EQ(r.hits, 0);
	m = cl_event(&owner, 200);
	EXPECT(m == NULL, "an event for poison that hit no extent");

	/* Poison under a child space names the child's extent. */
	r = call(&admin, op_child_add("default", "tenant", MiB, false, &me, 1));
	EXPECT_OK(r);
	r = call(&owner, op_subscribe(NULL, 0));
	EXPECT_OK(r);
	t = ALLOC_OK(&owner, .space = "tenant", .size = 16 * KiB);
	r = call(&admin, op_poison("default", t.offset + 4 * KiB, 4 * KiB));
	EXPECT_OK(r);
	EXPECT(r.hits >= 1, "poison under a child's extent hit %u extents",
	       r.hits);
	/* The hosting extent (root's) may be reported too. */
	for (int i = 0; i < 3; i++) {
		m = cl_event(&owner, i ? 200 : IO_TIMEOUT_MS);
		if (!m)
			break;
		EXPECT_EQ(m->event->event_case, POTAD__V1__EVENT__EVENT_POISON);
		pe = m->event->poison;
		if (strcmp(pe->extent->space, "tenant") == 0) {
			EXPECT_EQ(pe->extent->handle, t.handle);
			EXPECT_EQ(pe->extent->offset, t.offset);
			EXPECT_EQ(pe->offset, t.offset + 4 * KiB);
			found = true;
		}
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	EXPECT(found, "no poison event named the extent in space 'tenant'");
	free_ok(&owner, "tenant", t.handle);
	EXPECT_EQ(stat_ok(&owner, "tenant").poisoned_bytes, 4 * KiB);
	r = call(&admin, op_child_rm("tenant"));
	EXPECT_OK(r);
	cl_close(&owner);
	cl_close(&admin);
	cl_close(&bystander);
	daemon_stop(&d);
}
END_TEST

/* Expect exactly one low-space event among what c has received. */
static void expect_low(struct cl *c, uint64_t free_bytes, uint64_t size,
		       uint32_t pct)
{
	Potad__V1__ServerMessage *m = cl_event(c, IO_TIMEOUT_MS);
	Potad__V1__LowSpaceEvent *lo;

	EXPECT(m != NULL, "no low-space event within %d ms", IO_TIMEOUT_MS);
	EXPECT_EQ(m->event->event_case, POTAD__V1__EVENT__EVENT_LOW_SPACE);
	lo = m->event->low_space;
	EXPECT_STR(lo->space, "small");
	EXPECT_EQ(lo->free_bytes, free_bytes);
	EXPECT_EQ(lo->size, size);
	EXPECT_EQ(lo->low_water_percent, pct);
	potad__v1__server_message__free_unpacked(m, NULL);
	EXPECT(c->nstash == 0, "%zu more events than the one expected",
	       c->nstash);
}

START_TEST(low_space_event)
{
	struct daemon d;
	struct cl c, quiet;
	struct ext a, b, x;
	struct res r;

	daemon_start(&d, admin_conf());
	cl_open(&c, &d);
	cl_open(&quiet, &d);
	r = call(&c, op_space_add("small", MiB));
	EXPECT_OK(r);
	r = call(&c, op_subscribe("small", 50));
	EXPECT_OK(r);
	r = call(&quiet, op_subscribe("small", 10));
	EXPECT_OK(r);

	/* 50% free is not below a 50% watermark. */
	a = ALLOC_OK(&c, .space = "small", .size = 256 * KiB);
	b = ALLOC_OK(&c, .space = "small", .size = 256 * KiB);
	EXPECT(c.nstash == 0, "a low-space event at 50%% free");
	EXPECT(cl_event(&c, 100) == NULL, "a low-space event at 50%% free");
	x = ALLOC_OK(&c, .space = "small", .size = 4 * KiB);
	expect_low(&c, MiB - 516 * KiB, MiB, 50);
	/* Once per crossing. */
	r = ALLOC(&c, .space = "small", .size = 4 * KiB);
	EXPECT_OK(r);
	EXPECT(cl_event(&c, 100) == NULL,
	       "a second event without a recovery above the watermark");
	free_ok(&c, "small", r.ext.handle);
	/* Back above, then below again: told again. */
	free_ok(&c, "small", x.handle);
	free_ok(&c, "small", b.handle);
	EXPECT(cl_event(&c, 100) == NULL, "an event while above the watermark");
	b = ALLOC_OK(&c, .space = "small", .size = 260 * KiB);
	expect_low(&c, MiB - 516 * KiB, MiB, 50);
	/* A 10% watermark was never crossed. */
	EXPECT(cl_event(&quiet, 100) == NULL,
	       "an event for a watermark (10%%) not crossed");
	free_ok(&c, "small", a.handle);
	free_ok(&c, "small", b.handle);
	r = call(&c, op_space_rm("small", false));
	EXPECT_OK(r);
	cl_close(&c);
	cl_close(&quiet);
	daemon_stop(&d);
}
END_TEST

/* Subscribers that leave, in any order, leave the others subscribed: the
 * daemon fills a leaver's place in its list with the last subscriber, so
 * the first and then the last leaving checks that the moved one is still
 * found.  Each leaver holds a session extent, so that its close can be
 * waited for. */
START_TEST(subscribers_leave)
{
	struct daemon d;
	struct cl a, b, c, w;
	struct ext x;
	struct res r;

	daemon_start(&d, admin_conf());
	cl_open(&a, &d);
	cl_open(&b, &d);
	cl_open(&c, &d);
	cl_open(&w, &d);
	r = call(&w, op_space_add("small", MiB));
	EXPECT_OK(r);
	r = call(&a, op_subscribe("small", 100));
	EXPECT_OK(r);
	r = call(&b, op_subscribe("small", 100));
	EXPECT_OK(r);
	r = call(&c, op_subscribe("small", 100));
	EXPECT_OK(r);
	ALLOC_OK(&a, .space = "small", .size = 4 * KiB, .session = true);
	ALLOC_OK(&c, .space = "small", .size = 4 * KiB, .session = true);
	expect_low(&b, MiB - 4 * KiB, MiB, 100);

	cl_close(&a);
	wait_extents(&w, "small", 1);
	cl_close(&c);
	wait_extents(&w, "small", 0);
	/* Back at 100% free, then below it: b is told again, once. */
	x = ALLOC_OK(&w, .space = "small", .size = 4 * KiB);
	expect_low(&b, MiB - 4 * KiB, MiB, 100);
	EXPECT(cl_event(&b, 200) == NULL, "a second low-space event");
	free_ok(&w, "small", x.handle);
	cl_close(&b);
	cl_close(&w);
	daemon_stop(&d);
}
END_TEST

START_TEST(child_spaces)
{
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo p0, st;
	struct ext e, host;
	uint32_t me = (uint32_t)geteuid();
	int nfill = 0;

	daemon_start(&d, admin_conf());
	cl_open(&c, &d);
	r = call(&c, op_space_add("par", 4 * MiB));
	EXPECT_OK(r);
	p0 = stat_ok(&c, "par");

	/* A reserve of 1 MiB carved out of "par". */
	r = call(&c, op_child_add("par", "par-rsv", MiB, true, &me, 1));
	EXPECT_OK(r);
	EXPECT_STR(r.space.name, "par-rsv");
	EXPECT_STR(r.space.parent, "par");
	EXPECT_EQ(r.space.reserve, true);
	EXPECT_EQ(r.space.size, MiB);
	EXPECT_EQ(r.space.free_bytes, MiB);
	st = stat_ok(&c, "par");
	EXPECT_EQ(st.free_bytes, p0.free_bytes - MiB);
	EXPECT_EQ(st.extents, 1);
	r = call(&c, op_extents("par"));
	EXPECT_OK(r);
	EXPECT_EQ(r.n, 1);
	EXPECT_STR(r.exts[0].child, "par-rsv");
	host = r.exts[0];
	r = call(&c, op_child_add("par", "par-rsv", MiB, true, &me, 1));
	EXPECT_ST(r, POTAD__V1__STATUS__EXISTS);

	/* The hosting extent cannot be freed, nor the parent removed. */
	r = call(&c, op_free("par", host.handle));
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);
	r = call(&c, op_space_rm("par", true));
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);

	/* While the parent has room, the reserve is not touched. */
	e = ALLOC_OK(&c, .space = "par", .size = 64 * KiB,
		     .reserve = "par-rsv");
	EXPECT_STR(e.space, "par");
	EXPECT_EQ(stat_ok(&c, "par-rsv").free_bytes, MiB);
	for (;;) {
		r = ALLOC(&c, .space = "par", .size = 64 * KiB);
		if (r.status != POTAD__V1__STATUS__OK)
			break;
		EXPECT_STR(r.ext.space, "par");
		nfill++;
	}
	EXPECT_ST(r, POTAD__V1__STATUS__NO_SPACE);
	EXPECT_EQ(nfill, (3 * MiB - 64 * KiB) / (64 * KiB));
	EXPECT_EQ(stat_ok(&c, "par").free_bytes, 0);

	/* Full: the reserve serves, and only when named. */
	e = ALLOC_OK(&c, .space = "par", .size = 64 * KiB,
		     .reserve = "par-rsv");
	EXPECT_STR(e.space, "par-rsv");
	st = stat_ok(&c, "par-rsv");
	EXPECT_EQ(st.free_bytes, MiB - 64 * KiB);
	EXPECT_EQ(st.extents, 1);
	r = ALLOC(&c, .space = "par", .size = 64 * KiB, .reserve = "nope");
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);

	/* Not removable while it holds an extent. */
	r = call(&c, op_child_rm("par-rsv"));
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);
	r = call(&c, op_space_rm("par-rsv", true));
	EXPECT_ST(r, POTAD__V1__STATUS__INVALID);
	free_ok(&c, "par-rsv", e.handle);
	r = call(&c, op_child_rm("par-rsv"));
	EXPECT_OK(r);
	r = call(&c, op_stat("par-rsv"));
	EXPECT_ST(r, POTAD__V1__STATUS__NOT_FOUND);
	st = stat_ok(&c, "par");
	EXPECT_EQ(st.free_bytes, MiB);

	/* A tenant child space, allocated in directly. */
	/* Each listing copies at most RES_LIST_MAX; repeat until empty. */
	while ((r = call(&c, op_extents("par"))).n)
		for (size_t i = 0; i < r.n && i < RES_LIST_MAX; i++)
			free_ok(&c, "par", r.exts[i].handle);
	r = call(&c, op_child_add("par", "tenant", 2 * MiB, false, &me, 1));
	EXPECT_OK(r);
	e = ALLOC_OK(&c, .space = "tenant", .size = 4 * KiB);
	EXPECT_STR(e.space, "tenant");
	EXPECT(e.offset >= r.space.base && e.offset < r.space.base + 2 * MiB,
	       "an extent of the tenant at %#" PRIx64 " outside it", e.offset);
	r = call(&c, op_child_rm("tenant"));
	EXPECT_ST(r, POTAD__V1__STATUS__BUSY);
	free_ok(&c, "tenant", e.handle);
	r = call(&c, op_child_rm("tenant"));
	EXPECT_OK(r);
	st = stat_ok(&c, "par");
	EXPECT_EQ(st.free_bytes, 4 * MiB);
	EXPECT_EQ(st.extents, 0);
	r = call(&c, op_space_rm("par", false));
	EXPECT_OK(r);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(sigterm_with_clients)
{
	struct daemon d, d2;
	struct cl idle, partial;
	struct res r;
	int status;

	daemon_start(&d, NULL);
	cl_open(&idle, &d);
	cl_open(&partial, &d);
	r = call(&idle, op_hello());
	EXPECT_OK(r);
	write_all(partial.fd, "\x20\x08", 2);

	/* A second daemon on the same socket refuses to start. */
	d2 = d;
	d2.owner = getpid();
	d2.pid = fork();
	EXPECT(d2.pid >= 0, "fork: %s", strerror(errno));
	if (d2.pid == 0) {
		int lfd = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(lfd, 1);
		dup2(lfd, 2);
		execl(daemon_path(), "potad", "--foreground", "--socket",
		      d.sock, "--state-dir", d.state, (char *)NULL);
		_exit(127);
	}
	status = daemon_wait(&d2, IO_TIMEOUT_MS);
	EXPECT(status != -1, "a second daemon on a live socket kept running");
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
		   WEXITSTATUS(status) != 127,
	       "a second daemon on a live socket: expected a failure exit, "
	       "got status %#x",
	       status);
	r = call(&idle, op_hello());
	EXPECT_OK(r);

	/* SIGTERM with both open: both see the end, the daemon exits 0 and
	 * removes its socket (daemon_stop checks). */
	EXPECT(kill(d.pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	expect_eof(&idle, "an idle connection at SIGTERM");
	expect_eof(&partial, "a connection mid-frame at SIGTERM");
	status = daemon_wait(&d, IO_TIMEOUT_MS);
	EXPECT(status != -1,
	       "the daemon did not stop within %d ms of "
	       "SIGTERM",
	       IO_TIMEOUT_MS);
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "after SIGTERM: expected exit 0, got status %#x; log:\n%s",
	       status, log_tail(&d));
	EXPECT(access(d.sock, F_OK) < 0 && errno == ENOENT,
	       "the socket %s is still there after a graceful stop", d.sock);
	cl_close(&idle);
	cl_close(&partial);
}
END_TEST

/* A client that never reads its answers cannot keep the daemon from
 * stopping. */
START_TEST(sigterm_undrained)
{
	struct daemon d;
	struct cl c;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int status;
	long t0;

	daemon_start(&d, small_limits_conf);
	cl_open(&c, &d);
	fill_extents(&c, 400);
	for (int i = 0; i < 300; i++) {
		Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
		Potad__V1__Op *op = op_extents("default");

		req.id = 1 + i;
		req.ops = &op;
		req.n_ops = 1;
		frame_req(&buf, &len, &cap, &req);
		free_op(op);
	}
	write_all(c.fd, buf, len);
	free(buf);
	usleep(100000);
	t0 = now_ms();
	EXPECT(kill(d.pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	status = daemon_wait(&d, 3 * IO_TIMEOUT_MS);
	EXPECT(status != -1,
	       "the daemon did not stop within %d ms of "
	       "SIGTERM with an undrained client",
	       3 * IO_TIMEOUT_MS);
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "after SIGTERM: expected exit 0, got status %#x; log:\n%s",
	       status, log_tail(&d));
	EXPECT(access(d.sock, F_OK) < 0 && errno == ENOENT,
	       "the socket %s is still there after a graceful stop", d.sock);
	printf("check_daemon: an undrained client delayed the stop by %ld "
	       "ms\n",
	       now_ms() - t0);
	cl_close(&c);
}
END_TEST


/* A handle names an extent only within its space: presented with another
 * space's name it must be refused, not free whatever extent of that space
 * has the same slot and generation. */
START_TEST(handle_of_another_space)
{
	struct daemon d;
	struct cl c;
	struct ext a, b;
	struct sinfo s0;
	struct res r;

	daemon_start(&d, admin_conf());
	cl_open(&c, &d);
	r = call(&c, op_space_add("sa", MiB));
	EXPECT_OK(r);
	r = call(&c, op_space_add("sb", MiB));
	EXPECT_OK(r);
	a = ALLOC_OK(&c, .space = "sa", .size = 4096);
	b = ALLOC_OK(&c, .space = "sb", .size = 4096);
	s0 = stat_ok(&c, "sa");
	r = call(&c, op_free("sa", b.handle));
	EXPECT(r.status != POTAD__V1__STATUS__OK,
	       "free of sb's handle %#" PRIx64 " in space sa: expected a "
	       "refusal (STALE or NOT_FOUND), got OK, which freed sa's "
	       "extent %#" PRIx64 " at %#" PRIx64,
	       b.handle, r.ext.handle, r.ext.offset);
	EXPECT_SAME(&c, "sa", s0, "a handle of another space");
	free_ok(&c, "sa", a.handle);
	free_ok(&c, "sb", b.handle);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc;

	tc = tcase_create("rpc");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hello_and_list);
	tcase_add_test(tc, alloc_free_lookup);
	tcase_add_test(tc, shrink_tail);
	tcase_add_test(tc, owner_sweep);
	tcase_add_test(tc, placement);
	tcase_add_test(tc, pipelined);
	tcase_add_test(tc, batched);
	tcase_add_test(tc, pipelined_backpressure);
	tcase_add_test(tc, pipelined_with_event);
	tcase_add_test(tc, idempotency_token);
	tcase_add_test(tc, token_many);
	tcase_add_test(tc, list_pages);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, concurrent_clients);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, malformed_frames);
	tcase_add_test(tc, malformed_ops);
	tcase_add_test(tc, frame_limit_boundary);
	tcase_add_test(tc, connection_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, permissions);
	tcase_add_test(tc, session_extents);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, poison_event);
	tcase_add_test(tc, low_space_event);
	tcase_add_test(tc, subscribers_leave);
	suite_add_tcase(s, tc);

	tc = tcase_create("spaces");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, child_spaces);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, sigterm_with_clients);
	tcase_add_test(tc, sigterm_undrained);
	suite_add_tcase(s, tc);

	tc = tcase_create("handles");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, handle_of_another_space);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed, rc;

	rc = harness_init();
	if (rc < 0) {
		fprintf(stderr, "check_daemon: no temporary directory: %s\n",
			strerror(-rc));
		return 99;
	}
	sr = srunner_create(daemon_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_fini();
	return failed ? 1 : 0;
}
