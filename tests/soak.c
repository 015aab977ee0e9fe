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

#include "soak.h"
#include "wire/frame.h"

/*
 * The daemon (started by the harness, journal on) serves two range spaces
 * to NGOOD well-behaved clients, each keeping DEPTH requests in flight:
 * allocations of random sizes and alignments, some labelled, some scoped
 * to the session, frees of its own extents, and now and then a Lookup, a
 * ListExtents of its own label or a SpaceStat; once in a while it hangs
 * up and comes back (its session extents go, the rest it frees later).
 * Every response is checked, in order, against a model: one owner per
 * unit of each space, so an extent that overlaps anyone's live extent
 * fails the test the moment it is handed out.
 *
 * Beside them, misbehaving clients: some connect and never send, some send
 * half a frame and stall, some pipeline requests and never read (the
 * daemon must stop reading them and drop them after stall_timeout, set
 * short here), some send bad frames, some connect and hang up in a tight
 * loop (tests/soak_bad.c).  They reconnect as they go, so the churn lasts
 * the whole run.
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

#define RSS_SLACK (64 * MiB)
#define TICK_MS 250 /* how often RSS is sampled */
#define STR_(x) #x
#define STR(x) STR_(x)

static const struct {
	const char *name;
	uint64_t size;
} spaces[2] = {{"soak-a", 128 * MiB}, {"soak-b", 16 * MiB}};

/* Small limits, so that non-readers are dropped within a short run. */
/* clang-format off */
static const char conf[] = "[daemon]\n"
			   "max_queue = 64K\n"
			   "stall_timeout = " STR(STALL_S) "\n"
			   "max_connections = 1024\n\n"
			   "[space soak-a]\nkind = range\nsize = 128M\n"
			   "granule = 4K\nallow = all\n\n"
			   "[space soak-b]\nkind = range\nsize = 16M\n"
			   "granule = 4K\nallow = all\n";
/* clang-format on */

static const char *const kind_name[] = {"good", "silent",  "half-frame",
					"deaf", "garbage", "churn"};

struct soak soak;

uint64_t rnd(void)
{
	/* xorshift64*: enough for choosing, and replayable from the seed. */
	soak.rng ^= soak.rng >> 12;
	soak.rng ^= soak.rng << 25;
	soak.rng ^= soak.rng >> 27;
	return soak.rng * UINT64_C(2685821657736338717);
}

const char *who(const struct client *c)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%s client %d", kind_name[c->kind], c->n);
	return buf;
}

/*
 * The model: who holds each unit of each space.  A unit whose free has
 * been sent but not answered, or whose session has been hung up, is marked
 * FREEING: the daemon may already have freed it and handed it to another
 * client whose reply this process happens to read first (both wait for
 * the same commit), so taking it is no overlap.  Taking any other held
 * unit is.  (What this cannot see: a unit handed out before a free that
 * was sent earlier had been done.)
 */
#define FREEING 0x8000

static void model_take(const struct client *c, uint8_t sp, uint64_t off,
		       uint64_t len)
{
	for (uint64_t u = off / GRANULE; u < (off + len) / GRANULE; u++) {
		uint16_t o = soak.owner[sp][u];

		EXPECT(
		    o == 0 || (o & FREEING),
		    "%s: extent [%#" PRIx64 ", +%#" PRIx64 ") in %s "
		    "overlaps a live extent of good client %d at unit %" PRIu64,
		    who(c), off, len, spaces[sp].name, o - 1, u);
		soak.owner[sp][u] = (uint16_t)(c->n + 1);
	}
}

/* Mark l's units FREEING (set) or free them (!set), leaving alone those
 * another client has taken since. */
static void model_give(const struct client *c, const struct live *l, bool set)
{
	uint16_t mine = (uint16_t)(c->n + 1);

	for (uint64_t u = l->offset / GRANULE;
	     u < (l->offset + l->length) / GRANULE; u++) {
		uint16_t *o = &soak.owner[l->sp][u];

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
	bool session = rnd() % 5 == 0;
	uint64_t id = queue_op(
	    c, op_alloc((struct aa){.space = spaces[sp].name,
				    .size = size,
				    .align = align,
				    .top_down = top,
				    .session = session,
				    .label = labeled ? c->label : NULL}));

	p = push(c, POTAD__V1__OP__OP_ALLOC, id);
	p->sp = sp;
	p->size = size;
	p->align = align;
	p->labeled = labeled;
	p->session = session;
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

	if (c->quiesce || (!soak.draining && rnd() % 4096 == 0)) {
		c->quiesce = true;
		return false;
	}
	if (soak.draining) {
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

/*
 * Hang up with nothing in flight and come back under a new label: the
 * daemon frees the session extents once it sees the close (another client
 * may get their units from then on), the others stay ours to free from
 * the new connection.
 */
static void good_reconnect(struct client *c)
{
	for (unsigned i = 0; i < c->nlive;) {
		struct live *l = &c->live[i];

		if (!l->session) {
			i++;
			continue;
		}
		model_give(c, l, true);
		*l = c->live[--c->nlive];
	}
	c_close(c);
	c->fd = soak_connect();
	c->quiesce = false;
	c->gen++;
	snprintf(c->label, sizeof(c->label), "soak-%d.%u", c->n, c->gen);
	soak.good_reconnects++;
}

/* Keep DEPTH requests in flight.  Only a drained client may be left with
 * none: nothing but a response calls back in here. */
static void good_refill(struct client *c)
{
	for (;;) {
		while (c->npend < DEPTH && good_one(c))
			;
		if (!c->quiesce || c->npend)
			break;
		/* It may choose to hang up again at once. */
		good_reconnect(c);
	}
	EXPECT(c->npend || (soak.draining && !c->nlive),
	       "%s: nothing in flight, %u extents held", who(c), c->nlive);
	EXPECT(flush_out(c) == 0, "%s: write: the daemon hung up; log:\n%s",
	       who(c), log_tail(&soak.d));
}

static void check_alloc(struct client *c, const struct pend *p,
			const Potad__V1__Result *r)
{
	const Potad__V1__Extent *e = r->extent;
	uint64_t want = (p->size + GRANULE - 1) / GRANULE * GRANULE;
	struct live *l;

	c->nallocs--;
	if (r->status == POTAD__V1__STATUS__NO_SPACE) {
		soak.nospace++;
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
	EXPECT_EQ(e->session, p->session);
	model_take(c, p->sp, e->offset, e->length);
	EXPECT(c->nlive < MAXLIVE, "%s: more live extents than asked for",
	       who(c));
	l = &c->live[c->nlive++];
	*l = (struct live){.handle = e->handle,
			   .offset = e->offset,
			   .length = e->length,
			   .sp = p->sp,
			   .labeled = p->labeled,
			   .session = p->session,
			   .gen = c->gen};
	soak.allocs++;
	soak.sessions += p->session;
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
	soak.frees++;
}

static void check_query(struct client *c, const struct pend *p,
			const Potad__V1__Result *r)
{
	size_t want = 0;

	EXPECT(r->status == POTAD__V1__STATUS__OK,
	       "%s: query (op %d) on %s: expected OK, got %s (\"%s\")", who(c),
	       p->op, spaces[p->sp].name, status_name(r->status), r->message);
	switch (p->op) {
	case POTAD__V1__OP__OP_LOOKUP:
		EXPECT(r->body_case == POTAD__V1__RESULT__BODY_EXTENT &&
			   r->extent->handle == p->handle &&
			   r->extent->offset == p->offset,
		       "%s: Lookup %#" PRIx64 ": not its extent %#" PRIx64,
		       who(c), p->offset, p->handle);
		soak.lookups++;
		break;
	case POTAD__V1__OP__OP_LIST_EXTENTS:
		/* Its label is its own: the list is exactly its labelled
		 * extents there, as the responses so far left them. */
		for (unsigned i = 0; i < c->nlive; i++)
			want += c->live[i].labeled &&
				c->live[i].gen == c->gen &&
				c->live[i].sp == p->sp;
		EXPECT(r->body_case == POTAD__V1__RESULT__BODY_EXTENTS,
		       "%s: ListExtents: no list", who(c));
		EXPECT_EQ(r->extents->n_extents, want);
		for (size_t i = 0; i < want; i++)
			EXPECT_STR(r->extents->extents[i]->label, c->label);
		soak.lists++;
		break;
	default:
		EXPECT(r->body_case == POTAD__V1__RESULT__BODY_SPACE,
		       "%s: SpaceStat: no space info", who(c));
		EXPECT_EQ(r->space->size, spaces[p->sp].size);
		EXPECT(r->space->free_bytes <= r->space->size,
		       "%s: SpaceStat: %" PRIu64 " bytes free of %" PRIu64,
		       who(c), r->space->free_bytes, r->space->size);
		soak.stats++;
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
	soak.ops++;
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
	EXPECT(rc > 0,
	       "%s: the daemon closed the connection (%s) with %u "
	       "requests in flight; log:\n%s",
	       who(c), rc ? strerror(-rc) : "end of stream", c->npend,
	       log_tail(&soak.d));
	good_refill(c);
}

/*
 * The run.
 */
static long rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)soak.d.pid);
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

	if (!soak.rss_first)
		soak.rss_first = kib;
	if (now < soak.warm)
		soak.rss_base = kib;
	if (kib > soak.rss_max)
		soak.rss_max = kib;
	soak.rss_last = kib;
	EXPECT(now < soak.warm ||
		   (kib - soak.rss_base) * (long)KiB < (long)RSS_SLACK,
	       "daemon RSS grew from %ld KiB after warm-up to %ld KiB (limit "
	       "+%ld KiB)",
	       soak.rss_base, kib, (long)(RSS_SLACK / KiB));
}

/* Every well-behaved client is answered within IO_TIMEOUT_MS; a second in
 * which one completed nothing is only counted. */
static void check_progress(long now)
{
	bool window = now >= soak.next_window;

	for (int i = 0; i < NGOOD; i++) {
		struct client *c = &soak.c[i];
		long gap = c->npend ? now - c->progress : 0;

		if (gap > soak.max_gap)
			soak.max_gap = gap;
		EXPECT(gap <= IO_TIMEOUT_MS,
		       "%s: no response for %ld ms (%u in flight); log:\n%s",
		       who(c), gap, c->npend, log_tail(&soak.d));
		if (window && !soak.draining) {
			soak.empty_windows += c->window_ops == 0;
			c->window_ops = 0;
		}
	}
	if (window)
		soak.next_window = now + 1000;
}

/* The run is over: good clients free what they hold, non-readers wait to
 * be dropped; silent and half-frame ones stay connected, for the daemon
 * to close when it stops. */
static void start_drain(long now)
{
	soak.draining = true;
	soak.drain_start = now;
	for (int i = NGOOD; i < NCLIENTS; i++)
		if (soak.c[i].kind == GARBAGE)
			c_close(&soak.c[i]);
}

/* Drained: the good clients hold nothing and every non-reader has been
 * dropped.  Bounded: a non-reader must go within stall_timeout plus the
 * usual slack. */
static bool drained(long now)
{
	bool done = true;

	for (int i = 0; i < NCLIENTS; i++) {
		struct client *c = &soak.c[i];

		if (c->kind == GOOD ? !c->npend && !c->nlive
				    : c->kind != DEAF || c->fd < 0)
			continue;
		done = false;
		if (now - soak.drain_start > IO_TIMEOUT_MS + STALL_S * 3000)
			FAIL(
			    "%s: still %s %ld ms after the run ended; log:\n%s",
			    who(c),
			    c->kind == GOOD ? "holding extents" : "connected",
			    now - soak.drain_start, log_tail(&soak.d));
	}
	return done;
}

static void loop(void)
{
	for (;;) {
		long now = now_ms();
		int rc;

		if (!soak.draining && now >= soak.end)
			start_drain(now);
		if (soak.draining && drained(now))
			return;
		for (int i = 0; i < NCLIENTS; i++) {
			struct client *c = &soak.c[i];

			if (c->kind != GOOD)
				bad_tick(c, now);
			soak.pfd[i].fd = c->fd;
			soak.pfd[i].events = c->kind == DEAF ? 0 : POLLIN;
			if (c->kind == GOOD && c->olen)
				soak.pfd[i].events |= POLLOUT;
			soak.pfd[i].revents = 0;
		}
		rc = poll(soak.pfd, NCLIENTS, 20);
		EXPECT(rc >= 0 || errno == EINTR, "poll: %s", strerror(errno));
		now = now_ms();
		for (int i = 0; i < NCLIENTS && rc > 0; i++) {
			struct client *c = &soak.c[i];

			if (!soak.pfd[i].revents || c->fd < 0)
				continue;
			if (c->kind == GOOD)
				good_io(c, soak.pfd[i].revents);
			else
				bad_io(c, soak.pfd[i].revents, now);
		}
		check_progress(now);
		if (now >= soak.next_tick) {
			sample(now);
			soak.next_tick = now + TICK_MS;
		}
	}
}

/* Everything freed: the spaces must be whole; then a graceful stop, with
 * the idle clients still connected, and a clean offline check of what the
 * journal kept. */
static void finish(void)
{
	char out[4096], err[4096];
	struct cl cl;
	int st;

	for (int i = NGOOD; i < NCLIENTS; i++)
		soak.idle_left += soak.c[i].fd >= 0;

	cl_open(&cl, &soak.d);
	for (int sp = 0; sp < 2; sp++) {
		/* Session extents of the last hang-ups may still be going. */
		struct sinfo si = wait_extents(&cl, spaces[sp].name, 0);

		EXPECT_EQ(si.free_bytes, spaces[sp].size);
		EXPECT_EQ(si.used_bytes, 0);
		EXPECT_EQ(si.extents, 0);
	}
	cl_close(&cl);
	soak.rss_last = rss_kib();
	daemon_stop(&soak.d);
	for (int i = 0; i < NCLIENTS; i++)
		c_close(&soak.c[i]);
	st = potad_run(out, sizeof(out), err, sizeof(err), 60000, "--check",
		       "--state-dir", soak.d.state, (char *)NULL);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "potad --check: expected exit 0, got status %#x:\n%s%s", st, out,
	       err);
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
		soak.owner[sp] = calloc(spaces[sp].size / GRANULE, 2);
		EXPECT(soak.owner[sp] != NULL, "out of memory");
	}
	bad_init();
	for (int k = GOOD; k <= CHURN; k++) {
		static const int count[] = {NGOOD, NSILENT,  NHALF,
					    NDEAF, NGARBAGE, NCHURN};

		for (int n = 0; n < count[k]; n++, i++) {
			soak.c[i].kind = (enum kind)k;
			soak.c[i].n = n;
			soak.c[i].fd = -1;
			snprintf(soak.c[i].label, sizeof(soak.c[i].label),
				 "soak-%d.0", n);
		}
	}
}

int main(void)
{
	const char *env = getenv("POTAD_SOAK_SECONDS");
	long secs = env && *env ? atol(env) : 8;
	long now;

	env = getenv("POTAD_SOAK_SEED");
	soak.rng = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	soak.rng = soak.rng ? soak.rng : 1;
	EXPECT(secs > 0, "POTAD_SOAK_SECONDS=%ld", secs);
	/* Failures print one line and exit 1 (no Check runner here); the
	 * daemon dies with us (PR_SET_PDEATHSIG) and its log stays. */
	fail_fd = STDERR_FILENO;
	EXPECT(harness_init() == 0, "harness_init: %s", strerror(errno));
	printf("soak: %ld s, seed %#" PRIx64 "\n", secs, soak.rng);
	setup();
	daemon_start(&soak.d, conf);
	printf("soak: daemon pid %d, log %s\n", (int)soak.d.pid, soak.d.log);
	fflush(stdout);
	now = now_ms();
	soak.start = now;
	soak.end = now + secs * 1000;
	soak.warm = now + (secs < 8 ? secs * 250 : 2000);
	soak.next_window = now + 1000;
	for (int i = 0; i < NCLIENTS; i++) {
		if (soak.c[i].kind == GOOD) {
			soak.c[i].fd = soak_connect();
			good_refill(&soak.c[i]);
		} else if (soak.c[i].kind != CHURN) {
			bad_open(&soak.c[i], now);
		}
	}
	loop();
	now = now_ms();
	finish();
	printf("soak: %d good, %d silent, %d half-frame, %d deaf, %d garbage, "
	       "%d churn clients; %" PRIu64 " ops in %.1f s (%.0f/s): %" PRIu64
	       " allocs (%" PRIu64 " session), %" PRIu64 " NO_SPACE, %" PRIu64
	       " frees, %" PRIu64 " lookups, %" PRIu64 " lists, %" PRIu64
	       " stats, %" PRIu64 " hang-ups\n",
	       NGOOD, NSILENT, NHALF, NDEAF, NGARBAGE, NCHURN, soak.ops,
	       (now - soak.start) / 1000.0,
	       soak.ops * 1000.0 / (now - soak.start), soak.allocs,
	       soak.sessions, soak.nospace, soak.frees, soak.lookups,
	       soak.lists, soak.stats, soak.good_reconnects);
	printf("soak: daemon RSS %ld KiB first, %ld after warm-up, %ld max, "
	       "%ld last; %" PRIu64 " non-readers dropped (%" PRIu64
	       " KiB sent unread), %" PRIu64 " bad frames refused, %" PRIu64
	       " churn connects, %" PRIu64 " idle reconnects, %" PRIu64
	       " half frames dropped, %d idle at SIGTERM; longest wait %ld ms, "
	       "%" PRIu64 " client-seconds with no op done\n",
	       soak.rss_first, soak.rss_base, soak.rss_max, soak.rss_last,
	       soak.drops, soak.deaf_bytes / KiB, soak.refusals, soak.churns,
	       soak.reconnects, soak.half_drops, soak.idle_left, soak.max_gap,
	       soak.empty_windows);
	/* Half-frame clients wait 1 to 6 s before they reconnect and
	 * stall_timeout is 2 s: many of them are dropped in any run. */
	EXPECT(soak.half_drops > 0,
	       "no half-frame client was dropped in %.1f s",
	       (now - soak.start) / 1000.0);
	harness_fini();
	return 0;
}
