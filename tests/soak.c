/* SPDX-License-Identifier: MIT */
/* A bounded soak test: hundreds of clients, well-behaved and not, driven
 * from one process against the real daemon. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "wire/frame.h"

/*
 * The daemon (started by the harness, journal on) serves two range spaces
 * to NGOOD well-behaved clients, each keeping DEPTH requests in flight:
 * allocations of random sizes and alignments, some labelled, frees of its
 * own extents, and now and then a Lookup, a ListExtents of its own label
 * or a SpaceStat.  Every response is checked, in order, against a model:
 * one owner per unit of each space, so an extent that overlaps anyone's
 * live extent fails the test the moment it is handed out.
 *
 * Beside them, misbehaving clients: some connect and never send, some send
 * half a frame and stall, some pipeline requests and never read (the
 * daemon must stop reading them and drop them after stall_timeout, set
 * short here), some send bad frames, some connect and hang up in a tight
 * loop.  They reconnect as they go, so the churn lasts the whole run.
 *
 * What is asserted is outcomes, not speed: every well-behaved response
 * arrives, in order, and is right; no well-behaved client waits longer
 * than IO_TIMEOUT_MS for one; every non-reader is dropped; the daemon's
 * RSS grows by less than RSS_SLACK after warm-up; at the end everything is
 * freed, the spaces are whole again, SIGTERM stops the daemon with exit 0
 * and `potad --check` passes on its state directory.  Figures are printed
 * but never judged.  POTAD_SOAK_SECONDS sets the run (default 8);
 * POTAD_SOAK_SEED replays one.
 */

#define NGOOD 200
#define NSILENT 50
#define NHALF 30
#define NDEAF 30
#define NGARBAGE 4
#define NCHURN 4
#define NCLIENTS (NGOOD + NSILENT + NHALF + NDEAF + NGARBAGE + NCHURN)

#define DEPTH 4		 /* requests in flight per good client */
#define MAXLIVE 6	 /* extents a good client holds at most */
#define GRANULE (4 * KiB)
#define STALL_S 2	 /* the daemon's stall_timeout for this run */
#define RSS_SLACK (64 * MiB)
#define TICK_MS 250	 /* how often RSS is sampled */
#define DEAF_BLOB 65536	 /* requests a non-reader has ready to send */
#define STR_(x) #x
#define STR(x) STR_(x)

static const struct {
	const char *name;
	uint64_t size;
} spaces[2] = {{"soak-a", 128 * MiB}, {"soak-b", 16 * MiB}};

/* Small limits, so that non-readers are dropped within a short run. */
static const char conf[] = "[daemon]\n"
			   "max_queue = 64K\n"
			   "stall_timeout = " STR(STALL_S) "\n"
			   "max_connections = 1024\n\n"
			   "[space soak-a]\nkind = range\nsize = 128M\n"
			   "granule = 4K\nallow = all\n\n"
			   "[space soak-b]\nkind = range\nsize = 16M\n"
			   "granule = 4K\nallow = all\n";

enum kind { GOOD, SILENT, HALF, DEAF, GARBAGE, CHURN };

static const char *const kind_name[] = {"good",	 "silent",  "half-frame",
					"deaf",	 "garbage", "churn"};

struct live {
	uint64_t handle, offset, length;
	uint8_t sp;
	bool labeled, freeing;
};

/* A request in flight: what its response must say. */
struct pend {
	uint64_t id;
	int op; /* Potad__V1__Op__OpCase */
	uint8_t sp;
	bool labeled;
	uint64_t size, align, handle, offset;
};

struct client {
	enum kind kind;
	int n; /* its number among its kind */
	int fd;
	uint8_t *out, *in;
	size_t olen, ocap, ilen, icap;
	struct pend pend[DEPTH];
	unsigned head, npend, nallocs;
	struct live live[MAXLIVE];
	unsigned nlive;
	uint64_t next_id, ops, window_ops;
	long progress; /* last response, or first request after none */
	long next_at;  /* misbehaving ones: when to act again */
	int garbage;   /* bad frames sent so far */
	bool want_eof; /* a bad frame the daemon closes after refusing */
	bool answered;
	char label[16];
};

static struct {
	struct daemon d;
	struct client c[NCLIENTS];
	struct pollfd pfd[NCLIENTS];
	uint16_t *owner[2]; /* per unit: the good client holding it, plus 1 */
	uint8_t deaf_blob[DEAF_BLOB]; /* ListSpaces frames, back to back */
	size_t deaf_len, frame_len;  /* all of them, and one */
	uint64_t rng;
	long start, end, warm, drain_start, next_tick, next_window;
	bool draining;
	/* Figures for the summary. */
	uint64_t ops, allocs, nospace, frees, lookups, lists, stats;
	uint64_t drops, deaf_bytes, refusals, churns, reconnects, empty_windows;
	long rss_first, rss_base, rss_max, rss_last, max_gap;
} s;

static uint64_t rnd(void)
{
	/* xorshift64*: enough for choosing, and replayable from the seed. */
	s.rng ^= s.rng >> 12;
	s.rng ^= s.rng << 25;
	s.rng ^= s.rng >> 27;
	return s.rng * UINT64_C(2685821657736338717);
}

static const char *who(const struct client *c)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%s client %d", kind_name[c->kind], c->n);
	return buf;
}

/*
 * Sockets.
 */

/* Connect with a bounded wait (a full backlog blocks connect() on a Unix
 * socket), then make the socket non-blocking. */
static int soak_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
	const char *path = s.d.sock;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	EXPECT(fd >= 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	EXPECT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	       "connect %s: %s; daemon log:\n%s", s.d.sock, strerror(errno),
	       log_tail(&s.d));
	EXPECT(fcntl(fd, F_SETFL, O_NONBLOCK) == 0, "fcntl: %s",
	       strerror(errno));
	return fd;
}

static void c_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->olen = 0;
	c->ilen = 0;
}

/* Write what c has queued; 0, or -errno when the daemon has gone. */
static int flush_out(struct client *c)
{
	while (c->olen) {
		ssize_t n = write(c->fd, c->out, c->olen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		memmove(c->out, c->out + n, c->olen - (size_t)n);
		c->olen -= (size_t)n;
	}
	return 0;
}

/* Queue one Request of one op (freed here); its id. */
static uint64_t queue_op(struct client *c, Potad__V1__Op *op)
{
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;

	req.id = ++c->next_id;
	req.ops = &op;
	req.n_ops = 1;
	frame_req(&c->out, &c->olen, &c->ocap, &req);
	free_op(op);
	return req.id;
}

/* Read what has arrived; 0 at end of stream, -errno, else 1. */
static int fill_in(struct client *c)
{
	for (;;) {
		ssize_t n;

		if (c->icap - c->ilen < 65536) {
			c->icap = c->icap ? c->icap * 2 : 131072;
			c->in = realloc(c->in, c->icap);
			EXPECT(c->in != NULL, "out of memory");
		}
		n = read(c->fd, c->in + c->ilen, c->icap - c->ilen);
		if (n > 0) {
			c->ilen += (size_t)n;
			continue;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 1 : -errno;
	}
}

/* The next whole ServerMessage at *pos in c's input, or NULL. */
static Potad__V1__ServerMessage *next_msg(struct client *c, size_t *pos)
{
	Potad__V1__ServerMessage *m;
	uint64_t len;
	int k = potad__varint_get(c->in + *pos, c->ilen - *pos, &len);

	if (k == 0)
		return NULL;
	EXPECT(k > 0 && len < (1u << 24), "%s: bad frame from the daemon",
	       who(c));
	if (c->ilen - *pos - (size_t)k < len)
		return NULL;
	m = potad__v1__server_message__unpack(NULL, len, c->in + *pos + k);
	EXPECT(m != NULL, "%s: undecodable frame from the daemon", who(c));
	*pos += (size_t)k + len;
	return m;
}

static void drop_consumed(struct client *c, size_t pos)
{
	memmove(c->in, c->in + pos, c->ilen - pos);
	c->ilen -= pos;
}

/*
 * The model: who holds each unit of each space.  A unit whose free has
 * been sent but not answered is marked FREEING: the daemon may already
 * have freed it and handed it to another client whose reply this process
 * happens to read first (both wait for the same commit), so taking it is
 * no overlap.  Taking any other held unit is.
 */
#define FREEING 0x8000

static void model_take(const struct client *c, uint8_t sp, uint64_t off,
		       uint64_t len)
{
	for (uint64_t u = off / GRANULE; u < (off + len) / GRANULE; u++) {
		uint16_t o = s.owner[sp][u];

		EXPECT(o == 0 || (o & FREEING),
		       "%s: extent [%#" PRIx64 ", +%#" PRIx64 ") in %s "
		       "overlaps a live extent of good client %d at unit %" PRIu64,
		       who(c), off, len, spaces[sp].name, o - 1, u);
		s.owner[sp][u] = (uint16_t)(c->n + 1);
	}
}

/* Mark l's units FREEING (set) or free them (!set), leaving alone those
 * another client has taken since. */
static void model_give(const struct client *c, const struct live *l,
		       bool set)
{
	uint16_t mine = (uint16_t)(c->n + 1);

	for (uint64_t u = l->offset / GRANULE;
	     u < (l->offset + l->length) / GRANULE; u++) {
		uint16_t *o = &s.owner[l->sp][u];

		EXPECT(*o == (set ? mine : (mine | FREEING)) ||
			   (!set && (*o & ~FREEING) != mine),
		       "%s: model: unit %" PRIu64 " of %s is not its own",
		       who(c), u, spaces[l->sp].name);
		if (set)
			*o |= FREEING;
		else if (*o == (mine | FREEING))
			*o = 0;
	}
}

static struct live *find_live(struct client *c, uint64_t handle)
{
	for (unsigned i = 0; i < c->nlive; i++)
		if (c->live[i].handle == handle)
			return &c->live[i];
	FAIL("%s: handle %#" PRIx64 " is not live in the model", who(c),
	     handle);
}

/*
 * Well-behaved clients.
 */
static struct pend *push(struct client *c, int op, uint64_t id)
{
	struct pend *p = &c->pend[(c->head + c->npend) % DEPTH];

	memset(p, 0, sizeof(*p));
	p->op = op;
	p->id = id;
	if (!c->npend++)
		c->progress = now_ms();
	return p;
}

static void send_alloc(struct client *c)
{
	struct pend *p;
	uint8_t sp = rnd() % 4 == 0; /* soak-b is small: NO_SPACE there */
	uint64_t size = 1 + rnd() % (GRANULE << (rnd() % 8));
	uint64_t align = rnd() % 2 ? 0 : GRANULE << (rnd() % 6);
	bool labeled = rnd() % 2, top = rnd() % 8 == 0;
	uint64_t id = queue_op(
	    c, op_alloc((struct aa){.space = spaces[sp].name,
				    .size = size,
				    .align = align,
				    .top_down = top,
				    .label = labeled ? c->label : NULL}));

	p = push(c, POTAD__V1__OP__OP_ALLOC, id);
	p->sp = sp;
	p->size = size;
	p->align = align;
	p->labeled = labeled;
	c->nallocs++;
}

static void send_free(struct client *c, struct live *l)
{
	uint64_t id = queue_op(c, op_free(spaces[l->sp].name, l->handle));

	push(c, POTAD__V1__OP__OP_FREE, id)->handle = l->handle;
	l->freeing = true;
	model_give(c, l, true);
}

static void send_query(struct client *c, struct live *l, unsigned r)
{
	uint8_t sp = l ? l->sp : rnd() % 2;
	Potad__V1__Op *op;
	struct pend *p;
	int kind;

	if (l && r < 50) {
		op = op_lookup(spaces[sp].name, l->offset);
		kind = POTAD__V1__OP__OP_LOOKUP;
	} else if (r < 80) {
		op = op_extents(spaces[sp].name);
		op->list_extents->label = c->label;
		kind = POTAD__V1__OP__OP_LIST_EXTENTS;
	} else {
		op = op_stat(spaces[sp].name);
		kind = POTAD__V1__OP__OP_SPACE_STAT;
	}
	p = push(c, kind, queue_op(c, op));
	p->sp = sp;
	if (l) {
		p->handle = l->handle;
		p->offset = l->offset;
	}
}

/* A live extent with no free sent yet, at random, or NULL. */
static struct live *pick_live(struct client *c)
{
	unsigned k = c->nlive ? (unsigned)(rnd() % c->nlive) : 0;

	for (unsigned i = 0; i < c->nlive; i++) {
		struct live *l = &c->live[(k + i) % c->nlive];

		if (!l->freeing)
			return l;
	}
	return NULL;
}

/* Send one more request; false when there is nothing left to do. */
static bool good_one(struct client *c)
{
	struct live *l = pick_live(c);
	unsigned r = (unsigned)(rnd() % 100);
	bool full = c->nlive + c->nallocs >= MAXLIVE;

	if (s.draining) {
		if (l)
			send_free(c, l);
		return l != NULL;
	}
	if (l && (r < 35 || full))
		send_free(c, l);
	else if (!full && r < 92)
		send_alloc(c);
	else
		send_query(c, l, (unsigned)(rnd() % 100));
	return true;
}

static void good_refill(struct client *c)
{
	while (c->npend < DEPTH && good_one(c))
		;
	EXPECT(flush_out(c) == 0, "%s: write: the daemon hung up; log:\n%s",
	       who(c), log_tail(&s.d));
}

static void check_alloc(struct client *c, const struct pend *p,
			const Potad__V1__Result *r)
{
	const Potad__V1__Extent *e = r->extent;
	uint64_t want = (p->size + GRANULE - 1) / GRANULE * GRANULE;
	struct live *l;

	c->nallocs--;
	if (r->status == POTAD__V1__STATUS__NO_SPACE) {
		s.nospace++;
		return;
	}
	EXPECT(r->status == POTAD__V1__STATUS__OK &&
		   r->body_case == POTAD__V1__RESULT__BODY_EXTENT,
	       "%s: Alloc %" PRIu64 " align %" PRIu64 " in %s: expected OK "
	       "or NO_SPACE, got %s (\"%s\")",
	       who(c), p->size, p->align, spaces[p->sp].name,
	       status_name(r->status), r->message);
	EXPECT(e->length == want && e->offset % GRANULE == 0 &&
		   (!p->align || e->offset % p->align == 0) &&
		   e->offset + e->length <= spaces[p->sp].size && e->handle,
	       "%s: Alloc %" PRIu64 " align %" PRIu64 " in %s: got "
	       "[%#" PRIx64 ", +%#" PRIx64 ") handle %#" PRIx64,
	       who(c), p->size, p->align, spaces[p->sp].name, e->offset,
	       e->length, e->handle);
	EXPECT_STR(e->label ? e->label : "", p->labeled ? c->label : "");
	model_take(c, p->sp, e->offset, e->length);
	EXPECT(c->nlive < MAXLIVE, "%s: more live extents than asked for",
	       who(c));
	l = &c->live[c->nlive++];
	*l = (struct live){.handle = e->handle, .offset = e->offset,
			   .length = e->length, .sp = p->sp,
			   .labeled = p->labeled};
	s.allocs++;
}

static void check_free(struct client *c, const struct pend *p,
		       const Potad__V1__Result *r)
{
	struct live *l = find_live(c, p->handle);

	EXPECT(r->status == POTAD__V1__STATUS__OK,
	       "%s: Free of its own extent %#" PRIx64 ": expected OK, got %s "
	       "(\"%s\")",
	       who(c), p->handle, status_name(r->status), r->message);
	model_give(c, l, false);
	*l = c->live[--c->nlive];
	s.frees++;
}

static void check_query(struct client *c, const struct pend *p,
			const Potad__V1__Result *r)
{
	size_t want = 0;

	EXPECT(r->status == POTAD__V1__STATUS__OK,
	       "%s: query (op %d) on %s: expected OK, got %s (\"%s\")",
	       who(c), p->op, spaces[p->sp].name, status_name(r->status),
	       r->message);
	switch (p->op) {
	case POTAD__V1__OP__OP_LOOKUP:
		EXPECT(r->body_case == POTAD__V1__RESULT__BODY_EXTENT &&
			   r->extent->handle == p->handle &&
			   r->extent->offset == p->offset,
		       "%s: Lookup %#" PRIx64 ": not its extent %#" PRIx64,
		       who(c), p->offset, p->handle);
		s.lookups++;
		break;
	case POTAD__V1__OP__OP_LIST_EXTENTS:
		/* Its label is its own: the list is exactly its labelled
		 * extents there, as the responses so far left them. */
		for (unsigned i = 0; i < c->nlive; i++)
			want += c->live[i].labeled && c->live[i].sp == p->sp;
		EXPECT(r->body_case == POTAD__V1__RESULT__BODY_EXTENTS,
		       "%s: ListExtents: no list", who(c));
		EXPECT_EQ(r->extents->n_extents, want);
		for (size_t i = 0; i < want; i++)
			EXPECT_STR(r->extents->extents[i]->label, c->label);
		s.lists++;
		break;
	default:
		EXPECT(r->body_case == POTAD__V1__RESULT__BODY_SPACE,
		       "%s: SpaceStat: no space info", who(c));
		EXPECT_EQ(r->space->size, spaces[p->sp].size);
		EXPECT(r->space->free_bytes <= r->space->size,
		       "%s: SpaceStat: %" PRIu64 " bytes free of %" PRIu64,
		       who(c), r->space->free_bytes, r->space->size);
		s.stats++;
		break;
	}
}

static void good_response(struct client *c, const Potad__V1__Response *resp)
{
	struct pend *p = &c->pend[c->head];

	EXPECT(c->npend > 0, "%s: a response (id %" PRIu64 ") to nothing",
	       who(c), resp->id);
	EXPECT(resp->id == p->id && resp->status == POTAD__V1__STATUS__OK &&
		   resp->n_results == 1,
	       "%s: expected the response to request %" PRIu64 " (OK, 1 "
	       "result), got id %" PRIu64 " %s with %zu results (\"%s\")",
	       who(c), p->id, resp->id, status_name(resp->status),
	       resp->n_results, resp->message ? resp->message : "");
	if (p->op == POTAD__V1__OP__OP_ALLOC)
		check_alloc(c, p, resp->results[0]);
	else if (p->op == POTAD__V1__OP__OP_FREE)
		check_free(c, p, resp->results[0]);
	else
		check_query(c, p, resp->results[0]);
	c->head = (c->head + 1) % DEPTH;
	c->npend--;
	c->ops++;
	c->window_ops++;
	s.ops++;
	c->progress = now_ms();
}

static void good_io(struct client *c, short revents)
{
	Potad__V1__ServerMessage *m;
	size_t pos = 0;
	int rc;

	if (revents & POLLOUT)
		EXPECT(flush_out(c) == 0, "%s: write: the daemon hung up",
		       who(c));
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	rc = fill_in(c);
	while ((m = next_msg(c, &pos))) {
		/* Events are not asked for; any that come are not ours to
		 * judge here. */
		if (m->msg_case == POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE)
			good_response(c, m->response);
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	drop_consumed(c, pos);
	EXPECT(rc > 0, "%s: the daemon closed the connection (%s) with %u "
	       "requests in flight; log:\n%s",
	       who(c), rc ? strerror(-rc) : "end of stream", c->npend,
	       log_tail(&s.d));
	good_refill(c);
}

/*
 * Misbehaving clients.
 */

/* A ListSpaces request, framed: what non-readers and churners send. */
static size_t frame_list(uint8_t *buf, size_t cap)
{
	uint8_t *b = NULL;
	size_t len = 0, bcap = 0;
	Potad__V1__Op *op = op_list();
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;

	req.id = 1;
	req.ops = &op;
	req.n_ops = 1;
	frame_req(&b, &len, &bcap, &req);
	free_op(op);
	EXPECT(len <= cap, "frame of %zu bytes", len);
	memcpy(buf, b, len);
	free(b);
	return len;
}

static void queue_bytes(struct client *c, const void *p, size_t n)
{
	if (c->ocap < c->olen + n) {
		c->ocap = c->olen + n;
		c->out = realloc(c->out, c->ocap);
		EXPECT(c->out != NULL, "out of memory");
	}
	memcpy(c->out + c->olen, p, n);
	c->olen += n;
}

/* The next bad frame: what the daemon must answer, and whether it then
 * closes the connection. */
static void send_garbage(struct client *c)
{
	static const uint8_t endless[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0x01};
	/* Field 1 with wire type 7, which no protobuf has. */
	static const uint8_t badwire[9] = {8, 0x0f, 1, 2, 3, 4, 5, 6, 7};
	uint8_t big[POTAD_VARINT_MAX];

	switch (c->garbage++ % 4) {
	case 0:
		queue_bytes(c, endless, sizeof(endless));
		c->want_eof = true;
		break;
	case 1:
		queue_bytes(c, big, potad__varint_put(64 * MiB, big));
		c->want_eof = true;
		break;
	case 2:
		queue_bytes(c, badwire, sizeof(badwire));
		c->want_eof = false;
		break;
	default:
		/* An overlong UTF-8 form in a label: refused, not allocated. */
		queue_op(c, op_alloc((struct aa){.space = "soak-a",
						 .size = GRANULE,
						 .label = "\xc0\xaf"}));
		c->want_eof = false;
		break;
	}
}

/* (Re)connect a misbehaving client and start its misbehaviour. */
static void mis_open(struct client *c, long now)
{
	c_close(c);
	c->fd = soak_connect();
	c->answered = false;
	c->next_at = now + 1000 + (long)(rnd() % 5000);
	switch (c->kind) {
	case HALF:
		/* Half of a real frame, or half of a large one (the daemon
		 * holds what it has of it), then nothing. */
		if (c->n % 2) {
			uint8_t big[60000] = {0};
			size_t k = potad__varint_put(sizeof(big) - 8, big);

			queue_bytes(c, big, k + sizeof(big) / 2);
		} else {
			queue_bytes(c, s.deaf_blob, s.frame_len / 2);
		}
		break;
	case DEAF:
		c->next_at = now + 100;
		break;
	case GARBAGE:
		send_garbage(c);
		c->next_at = now + IO_TIMEOUT_MS;
		break;
	default:
		break;
	}
	EXPECT(flush_out(c) == 0, "%s: write: %s", who(c), strerror(errno));
}

/* A non-reader: send until the socket takes no more. */
static void deaf_push(struct client *c)
{
	for (;;) {
		ssize_t n = write(c->fd, s.deaf_blob, s.deaf_len);

		if (n > 0) {
			s.deaf_bytes += (uint64_t)n;
			if ((size_t)n == s.deaf_len)
				continue;
		}
		if (n < 0 && errno != EAGAIN) {
			/* EPIPE, ECONNRESET: dropped, seen from this side. */
			s.drops++;
			c_close(c);
		}
		return;
	}
}

static void garbage_io(struct client *c, long now)
{
	Potad__V1__ServerMessage *m;
	size_t pos = 0;
	int rc = fill_in(c);

	int k = (c->garbage - 1) % 4; /* the bad frame sent last */

	while ((m = next_msg(c, &pos))) {
		const Potad__V1__Response *r = m->response;
		Potad__V1__Status want = k == 1
					     ? POTAD__V1__STATUS__TOO_LARGE
					     : POTAD__V1__STATUS__INVALID;

		EXPECT(m->msg_case == POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE &&
			   r->status == want && !c->answered,
		       "%s: bad frame %d: expected one %s refusal, got %s",
		       who(c), k, status_name(want),
		       r ? status_name(r->status) : "an event");
		c->answered = true;
		s.refusals++;
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	drop_consumed(c, pos);
	if (rc > 0 && !(c->answered && !c->want_eof))
		return;
	EXPECT(c->answered, "%s: bad frame %d: closed without a refusal",
	       who(c), k);
	c_close(c);
	c->next_at = now + 20;
}

/* A connection that should hear nothing: any bytes are a failure; the
 * daemon closing it is only counted. */
static void quiet_io(struct client *c)
{
	int rc = fill_in(c);

	EXPECT(c->ilen == 0, "%s: the daemon sent %zu bytes to a client that "
	       "asked nothing", who(c), c->ilen);
	if (rc <= 0)
		c_close(c);
}

/* Timed actions of misbehaving clients. */
static void mis_tick(struct client *c, long now)
{
	int fd;

	if (s.draining || now < c->next_at)
		return;
	switch (c->kind) {
	case SILENT:
	case HALF:
		s.reconnects++;
		mis_open(c, now);
		break;
	case DEAF:
		if (c->fd < 0)
			mis_open(c, now);
		deaf_push(c);
		c->next_at = now + 100;
		break;
	case GARBAGE:
		EXPECT(c->fd < 0, "%s: no reply to bad frame %d within %d ms",
		       who(c), (c->garbage - 1) % 4, IO_TIMEOUT_MS);
		mis_open(c, now);
		break;
	case CHURN:
		/* Connect, maybe ask, hang up at once. */
		fd = soak_connect();
		if (rnd() % 2 && write(fd, s.deaf_blob, s.frame_len) < 0)
			FAIL("%s: write: %s", who(c), strerror(errno));
		close(fd);
		s.churns++;
		c->next_at = now + 2;
		break;
	default:
		break;
	}
}

static void mis_io(struct client *c, short revents, long now)
{
	if (c->kind == DEAF) {
		/* It never reads: a hang-up is the daemon dropping it. */
		if (revents & (POLLHUP | POLLERR)) {
			s.drops++;
			c_close(c);
			c->next_at = now + 50;
		}
	} else if (c->kind == GARBAGE) {
		garbage_io(c, now);
	} else {
		quiet_io(c);
	}
}

/*
 * The run.
 */
static long rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)s.d.pid);
	f = fopen(path, "r");
	EXPECT(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	EXPECT(kib > 0, "no VmRSS in %s", path);
	return kib;
}

static void sample(long now)
{
	long kib = rss_kib();

	if (!s.rss_first)
		s.rss_first = kib;
	if (now < s.warm)
		s.rss_base = kib;
	if (kib > s.rss_max)
		s.rss_max = kib;
	s.rss_last = kib;
	EXPECT(now < s.warm || (kib - s.rss_base) * (long)KiB < (long)RSS_SLACK,
	       "daemon RSS grew from %ld KiB after warm-up to %ld KiB (limit "
	       "+%ld KiB)", s.rss_base, kib, (long)(RSS_SLACK / KiB));
}

/* Every well-behaved client is answered within IO_TIMEOUT_MS; a second in
 * which one completed nothing is only counted. */
static void check_progress(long now)
{
	bool window = now >= s.next_window;

	for (int i = 0; i < NGOOD; i++) {
		struct client *c = &s.c[i];
		long gap = c->npend ? now - c->progress : 0;

		if (gap > s.max_gap)
			s.max_gap = gap;
		EXPECT(gap <= IO_TIMEOUT_MS,
		       "%s: no response for %ld ms (%u in flight); log:\n%s",
		       who(c), gap, c->npend, log_tail(&s.d));
		if (window && !s.draining) {
			s.empty_windows += c->window_ops == 0;
			c->window_ops = 0;
		}
	}
	if (window)
		s.next_window = now + 1000;
}

static void start_drain(long now)
{
	s.draining = true;
	s.drain_start = now;
	for (int i = NGOOD; i < NCLIENTS; i++)
		if (s.c[i].kind != DEAF)
			c_close(&s.c[i]);
}

/* Drained: the good clients hold nothing and every non-reader has been
 * dropped.  Bounded: a non-reader must go within stall_timeout plus the
 * usual slack. */
static bool drained(long now)
{
	bool done = true;

	for (int i = 0; i < NCLIENTS; i++) {
		struct client *c = &s.c[i];

		if (c->kind == GOOD ? !c->npend && !c->nlive : c->fd < 0)
			continue;
		done = false;
		if (now - s.drain_start > IO_TIMEOUT_MS + STALL_S * 3000)
			FAIL("%s: still %s %ld ms after the run ended; log:\n%s",
			     who(c), c->kind == GOOD ? "holding extents"
						     : "connected",
			     now - s.drain_start, log_tail(&s.d));
	}
	return done;
}

static void loop(void)
{
	for (;;) {
		long now = now_ms();
		int rc;

		if (!s.draining && now >= s.end)
			start_drain(now);
		if (s.draining && drained(now))
			return;
		for (int i = 0; i < NCLIENTS; i++) {
			struct client *c = &s.c[i];

			if (c->kind != GOOD)
				mis_tick(c, now);
			s.pfd[i].fd = c->fd;
			s.pfd[i].events = c->kind == DEAF ? 0 : POLLIN;
			if (c->kind == GOOD && c->olen)
				s.pfd[i].events |= POLLOUT;
			s.pfd[i].revents = 0;
		}
		rc = poll(s.pfd, NCLIENTS, 20);
		EXPECT(rc >= 0 || errno == EINTR, "poll: %s", strerror(errno));
		now = now_ms();
		for (int i = 0; i < NCLIENTS && rc > 0; i++) {
			struct client *c = &s.c[i];

			if (!s.pfd[i].revents || c->fd < 0)
				continue;
			if (c->kind == GOOD)
				good_io(c, s.pfd[i].revents);
			else
				mis_io(c, s.pfd[i].revents, now);
		}
		check_progress(now);
		if (now >= s.next_tick) {
			sample(now);
			s.next_tick = now + TICK_MS;
		}
	}
}

/* Everything freed: the spaces must be whole; then a graceful stop and a
 * clean offline check of what the journal kept. */
static void finish(void)
{
	char out[4096], err[4096];
	struct cl cl;
	int st;

	cl_open(&cl, &s.d);
	for (int sp = 0; sp < 2; sp++) {
		struct sinfo si = stat_ok(&cl, spaces[sp].name);

		EXPECT_EQ(si.free_bytes, spaces[sp].size);
		EXPECT_EQ(si.used_bytes, 0);
		EXPECT_EQ(si.extents, 0);
	}
	cl_close(&cl);
	s.rss_last = rss_kib();
	daemon_stop(&s.d);
	st = potad_run(out, sizeof(out), err, sizeof(err), 60000, "--check",
		       "--state-dir", s.d.state, (char *)NULL);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "potad --check: expected exit 0, got status %#x:\n%s%s", st,
	       out, err);
}

static void setup(void)
{
	int i = 0;
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < NCLIENTS + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < NCLIENTS + 64) {
		printf("SKIP: soak needs %d open files, the limit is %lu\n",
		       NCLIENTS + 64, (unsigned long)rl.rlim_cur);
		exit(77);
	}
	for (int sp = 0; sp < 2; sp++) {
		s.owner[sp] = calloc(spaces[sp].size / GRANULE, 2);
		EXPECT(s.owner[sp] != NULL, "out of memory");
	}
	s.frame_len = frame_list(s.deaf_blob, sizeof(s.deaf_blob));
	s.deaf_len = s.frame_len;
	while (s.deaf_len * 2 <= sizeof(s.deaf_blob)) {
		memcpy(s.deaf_blob + s.deaf_len, s.deaf_blob, s.deaf_len);
		s.deaf_len *= 2;
	}
	for (int k = GOOD; k <= CHURN; k++) {
		static const int count[] = {NGOOD,    NSILENT,  NHALF,
					    NDEAF,    NGARBAGE, NCHURN};

		for (int n = 0; n < count[k]; n++, i++) {
			s.c[i].kind = (enum kind)k;
			s.c[i].n = n;
			s.c[i].fd = -1;
			snprintf(s.c[i].label, sizeof(s.c[i].label), "soak-%d",
				 n);
		}
	}
}

int main(void)
{
	const char *env = getenv("POTAD_SOAK_SECONDS");
	long secs = env && *env ? atol(env) : 8;
	long now;

	env = getenv("POTAD_SOAK_SEED");
	s.rng = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	s.rng = s.rng ? s.rng : 1;
	EXPECT(secs > 0, "POTAD_SOAK_SECONDS=%ld", secs);
	/* Failures print one line and exit 1 (no Check runner here); the
	 * daemon dies with us (PR_SET_PDEATHSIG) and its log stays. */
	fail_fd = STDERR_FILENO;
	EXPECT(harness_init() == 0, "harness_init: %s", strerror(errno));
	printf("soak: %ld s, seed %#" PRIx64 "\n", secs, s.rng);
	setup();
	daemon_start(&s.d, conf);
	printf("soak: daemon pid %d, log %s\n", (int)s.d.pid, s.d.log);
	fflush(stdout);
	now = now_ms();
	s.start = now;
	s.end = now + secs * 1000;
	s.warm = now + (secs < 8 ? secs * 250 : 2000);
	s.next_window = now + 1000;
	for (int i = 0; i < NCLIENTS; i++) {
		if (s.c[i].kind == GOOD) {
			s.c[i].fd = soak_connect();
			good_refill(&s.c[i]);
		} else if (s.c[i].kind != CHURN) {
			mis_open(&s.c[i], now);
		}
	}
	loop();
	now = now_ms();
	finish();
	printf("soak: %d good, %d silent, %d half-frame, %d deaf, %d garbage, "
	       "%d churn clients; %" PRIu64 " ops in %.1f s (%.0f/s): %" PRIu64
	       " allocs, %" PRIu64 " NO_SPACE, %" PRIu64 " frees, %" PRIu64
	       " lookups, %" PRIu64 " lists, %" PRIu64 " stats\n",
	       NGOOD, NSILENT, NHALF, NDEAF, NGARBAGE, NCHURN, s.ops,
	       (now - s.start) / 1000.0, s.ops * 1000.0 / (now - s.start),
	       s.allocs, s.nospace, s.frees, s.lookups, s.lists, s.stats);
	printf("soak: daemon RSS %ld KiB first, %ld after warm-up, %ld max, "
	       "%ld last; %" PRIu64 " non-readers dropped (%" PRIu64
	       " KiB sent unread), %" PRIu64 " bad frames refused, %" PRIu64
	       " churn connects, %" PRIu64 " idle reconnects; longest wait "
	       "%ld ms, %" PRIu64 " client-seconds with no op done\n",
	       s.rss_first, s.rss_base, s.rss_max, s.rss_last, s.drops,
	       s.deaf_bytes / KiB, s.refusals, s.churns, s.reconnects,
	       s.max_gap, s.empty_windows);
	harness_fini();
	return 0;
}
