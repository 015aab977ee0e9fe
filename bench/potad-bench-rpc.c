/* SPDX-License-Identifier: MIT */
/*
 * potad-bench-rpc: measures potad's request rate and latency over its Unix
 * socket, next to a trivial echo server on the same kind of socket, and
 * prints one key=value (or JSON) line per scenario.
 *
 * Definitions, so that numbers from different builds can be compared:
 *
 * - An operation is one potad.v1.Request holding one Op: an Alloc of 4 KiB
 *   in the space (default "default"), or the Free of the extent that the
 *   previous allocation on the same pipeline slot returned.  Slots
 *   alternate alloc, free, alloc, ... so the space never fills; both kinds
 *   count as operations, and allocs_per_s counts the allocations alone
 *   (about half of ops_per_s).
 * - Every client is a forked process with its own connection.  With depth
 *   1 it sends a request and waits for its response; with depth D it keeps
 *   D requests in flight: it reads whatever has arrived, and for every
 *   response in that read queues the slot's next request, then sends them
 *   all with one write.  The load generator's own processes share the
 *   machine's cores with the server under test.
 * - A scenario (a number of clients and a depth) measures the daemon and
 *   the echo server in turn, --rounds times each, for --seconds / rounds
 *   a time, so that the others' load on a shared machine drifts into both
 *   alike.  Each time fresh clients connect and wait for a common start;
 *   after a warm-up (a fifth of the slice, between 0.1 s and 0.5 s) the
 *   measured window begins, and an operation counts when its response is
 *   read inside it.  ops_per_s is the count over the windows' total
 *   length.  After a window the clients stop sending, collect the
 *   responses still in flight and free what they hold, uncounted.
 * - Latency is from the write that sent a request to the read that
 *   returned its response (one CLOCK_MONOTONIC reading for each write and
 *   each read), for every counted operation.  The samples go into a
 *   log-linear histogram exact below 512 ns and within 0.2% above; p50 and
 *   p99 are the nearest-rank percentiles of the samples of all clients,
 *   reported as their bucket's midpoint.
 * - server_cpu is the CPU time (user + system, all threads, in clock
 *   ticks) of the process on the other end of the socket (SO_PEERCRED)
 *   over the window, in cores; server_ns_per_op divides it by the counted
 *   operations.  It moves less than ops_per_s when others load the
 *   machine, and shows when the single-threaded server is saturated.
 * - Every response's id, status and body are checked; anything but OK ends
 *   the run with a message naming the client, the operation and the
 *   daemon's status and message.  (Against --socket, extents that the
 *   other clients held at that moment stay allocated.)
 *
 * The echo server is a forked child that serves the same traffic the
 * cheapest honest way, with the daemon's I/O pattern: one thread, one
 * level-triggered epoll loop, one read per ready connection into a 64 KiB
 * buffer, the frames in it cut by their varint lengths, and one write
 * with a reply for each.  It does not decode protobuf: it reads the
 * request's id (protobuf-c writes field 1 first) and answers with a
 * canned ServerMessage carrying that id and the Result of a real
 * allocation captured from the daemon at start-up, so its replies have
 * the daemon's size and the clients decode them exactly as they decode
 * the daemon's.  ratio is ops_per_s over the echo's ops_per_s for the
 * same clients and depth: the share of the bare socket round trip that
 * potad keeps.
 *
 * Where the processes run matters as much as what they do: a synchronous
 * round trip between two CPUs costs two cross-CPU wake-ups, which on a
 * virtual machine can take tens of microseconds, while on one CPU it is
 * two context switches.  The scheduler picks either, and may change its
 * mind between runs, so --pin fixes it: "same" puts the server, the echo
 * server and the clients on the first CPU this program may use (the
 * software path alone), "split" puts the servers there and the clients on
 * the others, and "none" (the default) leaves it to the scheduler.  A
 * daemon given with --socket is never moved.
 *
 * Durability: the daemon this program starts keeps its state in memory
 * only (--memory-only) unless --durable is given; then every change is in
 * the journal and synced before it is answered, so the figures include a
 * data sync per commit batch.  Replies waiting on the same sync share it,
 * which is what pipelining and many clients buy there.  The state
 * directory is made on a disk under /var/tmp (or --state-dir), never on
 * /tmp, which may be tmpfs where a sync costs nothing; its file system is
 * printed with the figures, and a tmpfs one draws a warning.  Every line
 * says durable=yes or no as the daemon's hello reports it, so figures of
 * the two modes are not mixed up; against --socket that is the other
 * daemon's own setting.
 *
 * Redis: with --redis the same clients, counts, depths, slices and rounds
 * also drive a redis-server (from PATH, or --redis-server) with the
 * journal the daemon is held against: --appendonly yes --appendfsync
 * always, no snapshots, TCP off, its directory made beside the daemon's
 * state directory (under /var/tmp or --state-dir, even without
 * --durable) and its Unix socket in it.  Redis's operation is one
 * "SET key value" in RESP, with a key per client and a 16-byte value,
 * answered "+OK"; a client pipelines them as it does its requests to
 * potad, and they are timed and counted the same way.  Redis, too, syncs
 * its file before it answers the writes of one event-loop pass and shares
 * the sync among them.  vs_redis is ops_per_s over Redis's ops_per_s:
 * at least 1 is what "durable potad keeps up with Redis" means, and only
 * with --durable is it that comparison.  Without redis-server the
 * comparison is skipped with a line saying so and the run goes on, as it
 * does when Redis fails to start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "potad.pb-c.h"
#include "wire/frame.h"

#define PROG "potad-bench-rpc"
#define ALLOC_SIZE 4096
#define MAX_CLIENTS 256
#define MAX_DEPTH 1024
#define MAX_LIST 16
#define RBUF_SIZE 65536
/* Replies to one alloc are ~50 bytes; anything near this is a bug. */
#define MAX_REPLY 16384

/* Log-linear latency histogram: see the definitions above. */
#define HIST_SUB_BITS 8
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_NS ((1ull << 40) - 1)
#define HIST_N ((40 - HIST_SUB_BITS + 2) * HIST_SUB)

/* What Redis stores per operation: SET potad-bench:<client> <value>. */
#define REDIS_KEY "potad-bench:"
#define REDIS_VALUE "0123456789abcdef"

static const char usage[] =
    "Usage: " PROG " [--daemon PATH | --socket PATH] [--space NAME]\n"
    "         [--seconds S | --quick] [--clients LIST] [--depth LIST]\n"
    "         [--rounds N] [--pin none|same|split] [--json]\n"
    "         [--durable [--state-dir DIR] [--journal-io auto|uring|sync]]\n"
    "         [--redis [--redis-server PATH]] [--hold N]\n"
    "\n"
    "Measure potad's operations/s and p50/p99 latency for each number\n"
    "of clients and pipeline depth, and the same traffic against a\n"
    "trivial echo server on a Unix socket; print one line per scenario\n"
    "with the ratio.  An operation is one request: an alloc of 4K, or\n"
    "the free of the previous one.\n"
    "\n"
    "  --daemon PATH   start this potad on a temporary socket (default:\n"
    "                  ../daemon/potad beside this program, else\n"
    "                  ./daemon/potad)\n"
    "  --socket PATH   use the potad already serving on PATH instead\n"
    "  --space NAME    allocate in NAME (default \"default\", which the\n"
    "                  daemon started without a config serves)\n"
    "  --seconds S     measured time per scenario and server (default 2)\n"
    "  --quick         0.5 seconds per scenario\n"
    "  --rounds N      measure the daemon and the echo server in turn,\n"
    "                  N times each, S/N seconds a time (default 3)\n"
    "  --pin MODE      none: leave placement to the scheduler (default);\n"
    "                  same: servers and clients on one CPU; split:\n"
    "                  servers on one CPU, clients on the others\n"
    "  --clients LIST  comma-separated client counts (default 1,32)\n"
    "  --depth LIST    comma-separated requests in flight per client\n"
    "                  (default 1,16)\n"
    "  --durable       run the daemon with its journal: every change is\n"
    "                  synced to its state directory before it is answered\n"
    "                  (default: --memory-only, nothing written)\n"
    "  --state-dir DIR with --durable: make the state directory in DIR,\n"
    "                  and with --redis Redis's (default /var/tmp; it\n"
    "                  should be a real disk)\n"
    "  --journal-io M  with --durable: the daemon's writer, auto, uring\n"
    "                  or sync\n"
    "  --redis         also measure redis-server, with --appendonly yes\n"
    "                  --appendfsync always, on the same traffic: one\n"
    "                  SET of a 16-byte value per operation (skipped,\n"
    "                  with a line saying why, when there is none)\n"
    "  --redis-server PATH\n"
    "                  the redis-server to run (implies --redis; default:\n"
    "                  redis-server on PATH)\n"
    "  --hold N        before measuring, allocate N extents of 4K, each\n"
    "                  with its own idempotency token, and keep them, so\n"
    "                  every measured operation runs beside N live tokens\n"
    "  --json          one JSON object per line instead of key=value\n"
    "  --help          this text\n"
    "\n"
    "Output: an rpc-env line (cpus, load, pin, durable, journal_io, the\n"
    "state directory's file system, and redis=yes|no with Redis's version\n"
    "and file system), then per scenario: durable, clients, depth,\n"
    "ops_per_s, allocs_per_s, p50_us, p99_us, server_cpu (cores the\n"
    "server used), server_ns_per_op (its CPU time per operation), the\n"
    "same for the echo server as echo_*, ratio = ops_per_s /\n"
    "echo_ops_per_s, and when Redis ran redis_ops_per_s, redis_p50_us,\n"
    "redis_p99_us, redis_cpu, redis_ns_per_op and vs_redis = ops_per_s /\n"
    "redis_ops_per_s.\n"
    "Exit status: 0; 1 when an operation or a server fails; 2 on bad\n"
    "usage; 130 when interrupted.\n";

enum pin { PIN_NONE, PIN_SAME, PIN_SPLIT };

/* What a server speaks: potad's protocol (the daemon and the echo
 * server) or RESP (Redis). */
enum kind { KIND_POTAD, KIND_REDIS };

struct opts {
	enum pin pin;
	const char *daemon;
	const char *socket;
	const char *space;
	bool durable;
	const char *state_parent; /* --state-dir, where --durable makes one */
	const char *journal_io;
	bool redis;
	const char *redis_server; /* --redis-server */
	double seconds;
	int rounds;
	bool json;
	int clients[MAX_LIST], nclients;
	int depth[MAX_LIST], ndepth;
	unsigned long hold; /* --hold: tokened extents kept while measuring */
};

/* What a client hands back through shared memory. */
struct cres {
	uint64_t ops, allocs;
	char err[512];
	uint64_t hist[HIST_N];
};

struct shared {
	int64_t t_start, t_end; /* CLOCK_MONOTONIC ns, common to all */
	struct cres res[];
};

/* One server's sums over a scenario's rounds, then its figures. */
struct result {
	uint64_t ops, allocs;
	double window, cpu_s; /* seconds measured; server CPU seconds */
	bool cpu_known;
	uint64_t hist[HIST_N];
	double ops_per_s, allocs_per_s, p50_us, p99_us;
	double cpu, ns_per_op; /* the server's; negative if unknown */
};

static struct opts o = {
    .space = "default",
    .seconds = 2.0,
    .rounds = 3,
};
static char tmpdir[256], daemon_sock[300], echo_sock[300];
static char statedir[4096]; /* made by --durable, removed at the end */
static char state_fs[32] = "-";
/* Redis's directory and socket; redis_pid > 0 when it runs. */
static char redisdir[4096], redis_sock[4200];
static char redis_fs[32] = "-", redis_version[32] = "-";
static pid_t redis_pid = -1;
/* What the daemon's hello says: 1 durable, 0 not, -1 unknown. */
static int server_durable = -1;
static pid_t daemon_pid = -1, echo_pid = -1;
static pid_t client_pids[MAX_CLIENTS];
static int nclient_pids;
static volatile sig_atomic_t interrupted;
static cpu_set_t server_cpus, client_cpus;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void warn(const char *f, ...) __attribute__((format(printf, 1, 2)));

static void warn(const char *f, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static unsigned hist_idx(uint64_t v)
{
	unsigned e;

	if (v > HIST_MAX_NS)
		v = HIST_MAX_NS;
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	e = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
	return e * HIST_SUB + (unsigned)(v >> e);
}

/* The midpoint of bucket i, in ns. */
static double hist_mid(unsigned i)
{
	unsigned e;

	if (i < 2 * HIST_SUB)
		return i;
	e = i / HIST_SUB - 1;
	return (double)((uint64_t)(i - e * HIST_SUB) << e) +
	       (double)(1ull << e) / 2;
}

static double hist_pct(const uint64_t *h, uint64_t n, double p)
{
	uint64_t rank = (uint64_t)(p * (double)n), seen = 0;

	/* Nearest rank: the smallest value with p of the samples at or
	 * below it. */
	if ((double)rank < p * (double)n || rank < 1)
		rank++;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += h[i];
		if (seen >= rank)
			return hist_mid(i);
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/*
 * The client: requests are packed with protobuf-c and responses unpacked
 * with it into a bump arena that is reset per response, so the steady
 * state never calls malloc.
 */
struct flight {
	uint64_t id;
	int64_t t_send;
	unsigned slot;
	bool is_free;
};

struct client {
	int fd, index;
	enum kind kind;
	unsigned depth;
	const char *space;
	char set[96]; /* KIND_REDIS: the one command it sends */
	size_t setlen;
	uint64_t next_id;
	uint8_t *rbuf;
	size_t rlen;
	uint8_t *wbuf;
	size_t wlen, wcap;
	struct flight *ring; /* FIFO of requests in flight, depth long */
	unsigned head, count;
	uint64_t *handle; /* per slot; 0: holds nothing, so allocate */
	int canned_fd;	  /* >= 0: write the first alloc's reply here */
	char *err;
	size_t arena_used;
	max_align_t arena[MAX_REPLY / sizeof(max_align_t) * 4];
};

static void *arena_alloc(void *data, size_t n)
{
	struct client *c = data;
	size_t need =
	    (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (c->arena_used + need > sizeof(c->arena))
		return NULL;
	p = (char *)c->arena + c->arena_used;
	c->arena_used += need;
	return p;
}

static void arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

static void client_fail(struct client *c, const char *f, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Leave a message for the parent, which prints it, and stop. */
static void client_fail(struct client *c, const char *f, ...)
{
	size_t size = sizeof(((struct cres *)0)->err);
	va_list ap;
	int n = c->index < 0 ? snprintf(c->err, size, "start-up: ")
			     : snprintf(c->err, size, "client %d: ", c->index);

	va_start(ap, f);
	vsnprintf(c->err + n, size - (size_t)n, f, ap);
	va_end(ap);
	if (c->index < 0)
		warn("%s", c->err);
	_exit(1);
}

/*
 * The wire format, by hand, for the only request the clients send and the
 * fields of the reply they check; protobuf-c's generic packing and
 * unpacking would cost the clients more CPU than the daemon spends on a
 * request, on the cores the daemon needs.  Start-up checks both against
 * protobuf-c (encoder_selftest(), capture mode of client_check()), and any
 * reply the fast path does not accept is decoded again with protobuf-c
 * for the error message.
 */
enum {
	WT_VARINT = 0,
	WT_I64 = 1,
	WT_LEN = 2,
	WT_I32 = 5,
};

/* Append tag and varint, or tag and length-delimited bytes. */
static uint8_t *put_uint(uint8_t *p, unsigned field, uint64_t v)
{
	p += potad__varint_put((uint64_t)field << 3 | WT_VARINT, p);
	return p + potad__varint_put(v, p);
}

static uint8_t *put_len(uint8_t *p, unsigned field, size_t n)
{
	p += potad__varint_put((uint64_t)field << 3 | WT_LEN, p);
	return p + potad__varint_put(n, p);
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* The most bytes encode_request() writes for a space name of slen. */
#define ENCODE_MAX(slen) ((slen) + 8 * POTAD_VARINT_MAX)

/* Frame Request{id, ops: [Op{alloc: {space, size}} or Op{free: {space,
 * handle}}]} at out; returns the end. */
static uint8_t *encode_request(uint8_t *out, uint64_t id, const char *space,
			       size_t slen, bool is_free, uint64_t handle)
{
	uint64_t arg = is_free ? handle : ALLOC_SIZE;
	size_t body = 1 + varint_len(slen) + slen + 1 + varint_len(arg);
	size_t op = 1 + varint_len(body) + body;
	size_t req = 1 + varint_len(id) + 1 + varint_len(op) + op;

	out += potad__varint_put(req, out);
	out = put_uint(out, 1, id);		   /* Request.id */
	out = put_len(out, 2, op);		   /* Request.ops */
	out = put_len(out, is_free ? 7 : 6, body); /* Op.free, Op.alloc */
	out = put_len(out, 1, slen);		   /* Alloc.space, Free.space */
	memcpy(out, space, slen);
	out += slen;
	return put_uint(out, 2, arg); /* Alloc.size, Free.handle */
}

/*
 * Queue the next request of slot s: free what it holds, else allocate.
 * Redis's slots hold nothing and send the client's SET each time.
 */
static void client_queue(struct client *c, unsigned s)
{
	size_t slen = strlen(c->space);
	size_t most = c->kind == KIND_REDIS ? c->setlen : ENCODE_MAX(slen);
	struct flight *fl;

	if (c->wlen + most > c->wcap) {
		size_t cap = c->wcap * 2 + most;
		uint8_t *t = realloc(c->wbuf, cap);

		if (!t)
			client_fail(c, "out of memory");
		c->wbuf = t;
		c->wcap = cap;
	}
	fl = &c->ring[(c->head + c->count) % c->depth];
	fl->id = ++c->next_id;
	fl->slot = s;
	fl->is_free = c->handle[s] != 0;
	if (c->kind == KIND_REDIS) {
		memcpy(c->wbuf + c->wlen, c->set, c->setlen);
		c->wlen += c->setlen;
	} else {
		c->wlen =
		    (size_t)(encode_request(c->wbuf + c->wlen, fl->id, c->space,
					    slen, fl->is_free, c->handle[s]) -
			     c->wbuf);
	}
	c->count++;
}

/* Stamp the requests queued since the ring held `before`, and send them. */
static void client_send(struct client *c, unsigned before)
{
	int64_t t = now_ns();
	int rc;

	for (unsigned i = before; i < c->count; i++)
		c->ring[(c->head + i) % c->depth].t_send = t;
	rc = write_all(c->fd, c->wbuf, c->wlen);
	if (rc == -EPIPE || rc == -ECONNRESET)
		client_fail(c, "the server closed the connection");
	if (rc < 0)
		client_fail(c, "write: %s", strerror(-rc));
	c->wlen = 0;
}

static const char *status_name(int st)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &potad__v1__status__descriptor, st);

	return v ? v->name : "?";
}

/* Hand the echo server this reply, packed without its id. */
static void client_keep(struct client *c, Potad__V1__Response *r)
{
	uint8_t buf[MAX_REPLY];
	size_t n;

	r->id = 0;
	if (potad__v1__response__get_packed_size(r) > sizeof(buf))
		client_fail(c, "a reply of over %d bytes", MAX_REPLY);
	n = potad__v1__response__pack(r, buf);
	if (write_all(c->canned_fd, buf, n) < 0)
		client_fail(c, "cannot pass the reply on");
	close(c->canned_fd);
	c->canned_fd = -1;
}

/* A cursor over protobuf wire-format bytes. */
struct pb {
	const uint8_t *p, *end;
};

/* Step to the next field: its number, wire type and value (varint) or
 * bytes (length-delimited).  1, 0 at the end, -1 when malformed. */
static int pb_next(struct pb *r, unsigned *field, unsigned *wt, uint64_t *v,
		   struct pb *sub)
{
	size_t left = (size_t)(r->end - r->p), skip;
	uint64_t key, len;
	int k;

	if (!left)
		return 0;
	k = potad__varint_get(r->p, left, &key);
	if (k <= 0 || (key >> 3) > UINT32_MAX)
		return -1;
	r->p += k;
	left -= (size_t)k;
	*field = (unsigned)(key >> 3);
	*wt = (unsigned)(key & 7);
	switch (*wt) {
	case WT_VARINT:
		k = potad__varint_get(r->p, left, v);
		if (k <= 0)
			return -1;
		r->p += k;
		return 1;
	case WT_LEN:
		k = potad__varint_get(r->p, left, &len);
		if (k <= 0 || len > left - (size_t)k)
			return -1;
		sub->p = r->p + k;
		sub->end = sub->p + len;
		r->p = sub->end;
		return 1;
	case WT_I64:
	case WT_I32:
		skip = *wt == WT_I64 ? 8 : 4;
		if (left < skip)
			return -1;
		r->p += skip;
		return 1;
	default:
		return -1;
	}
}

enum { FAST_NO, FAST_OK, FAST_EVENT };

/*
 * FAST_OK when p is a ServerMessage holding a Response with this id,
 * status OK and one Result with status OK; *handle is its extent's handle
 * (0 when it has no extent of at least 4K).  FAST_EVENT for an Event;
 * FAST_NO for anything else, which protobuf-c then explains.
 */
static int fast_check(const uint8_t *p, size_t n, uint64_t id, uint64_t *handle)
{
	struct pb m = {p, p + n}, resp = {NULL, NULL}, res = {NULL, NULL};
	struct pb ext = {NULL, NULL}, sub;
	uint64_t v, rid = 0, st = 0, rst = 0, len = 0, h = 0;
	unsigned f, wt, nres = 0;
	int k;

	while ((k = pb_next(&m, &f, &wt, &v, &sub)) > 0) {
		if (f == 2) /* ServerMessage.event */
			return FAST_EVENT;
		if (f == 1 && wt == WT_LEN) /* ServerMessage.response */
			resp = sub;
	}
	if (k < 0 || !resp.p)
		return FAST_NO;
	while ((k = pb_next(&resp, &f, &wt, &v, &sub)) > 0) {
		if (f == 1 && wt == WT_VARINT) /* Response.id */
			rid = v;
		else if (f == 2 && wt == WT_LEN && nres++ == 0)
			res = sub;		    /* Response.results */
		else if (f == 3 && wt == WT_VARINT) /* Response.status */
			st = v;
	}
	if (k < 0 || rid != id || st != 0 || nres != 1)
		return FAST_NO;
	while ((k = pb_next(&res, &f, &wt, &v, &sub)) > 0) {
		if (f == 1 && wt == WT_VARINT) /* Result.status */
			rst = v;
		else if (f == 6 && wt == WT_LEN) /* Result.extent */
			ext = sub;
	}
	if (k < 0 || rst != 0)
		return FAST_NO;
	while (ext.p && (k = pb_next(&ext, &f, &wt, &v, &sub)) > 0) {
		if (f == 3 && wt == WT_VARINT) /* Extent.length */
			len = v;
		else if (f == 4 && wt == WT_VARINT) /* Extent.handle */
			h = v;
	}
	if (ext.p && k < 0)
		return FAST_NO;
	*handle = len >= ALLOC_SIZE ? h : 0;
	return FAST_OK;
}

/*
 * The same with protobuf-c, which also names what went wrong: ends the
 * client with a message, or returns FAST_OK (and *handle as above) or
 * FAST_EVENT.
 */
static int slow_check(struct client *c, const uint8_t *p, size_t n,
		      const struct flight *fl, uint64_t *handle)
{
	ProtobufCAllocator pa = {arena_alloc, arena_free, c};
	const char *what = fl->is_free ? "free" : "alloc";
	Potad__V1__ServerMessage *m;
	Potad__V1__Response *r;
	Potad__V1__Result *res;

	c->arena_used = 0;
	m = potad__v1__server_message__unpack(&pa, n, p);
	if (!m)
		client_fail(c, "undecodable reply of %zu bytes to %s #%llu", n,
			    what, (unsigned long long)fl->id);
	if (m->msg_case != POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE)
		return FAST_EVENT;
	r = m->response;
	if (r->status != POTAD__V1__STATUS__OK)
		client_fail(c, "%s #%llu refused: %s: %s", what,
			    (unsigned long long)fl->id, status_name(r->status),
			    r->message);
	if (r->id != fl->id)
		client_fail(c, "reply id %llu, expected %llu (out of order)",
			    (unsigned long long)r->id,
			    (unsigned long long)fl->id);
	if (r->n_results != 1)
		client_fail(c, "%s #%llu: %zu results, expected 1", what,
			    (unsigned long long)fl->id, r->n_results);
	res = r->results[0];
	if (res->status != POTAD__V1__STATUS__OK)
		client_fail(c, "%s of %s in '%s' failed: %s: %s", what,
			    fl->is_free ? "an extent" : "4K", c->space,
			    status_name(res->status), res->message);
	*handle = 0;
	if (res->body_case == POTAD__V1__RESULT__BODY_EXTENT &&
	    res->extent->length >= ALLOC_SIZE)
		*handle = res->extent->handle;
	if (!fl->is_free && c->canned_fd >= 0)
		client_keep(c, r);
	return FAST_OK;
}

/* Check one response frame against the oldest request in flight. */
static struct flight client_check(struct client *c, const uint8_t *p, size_t n)
{
	struct flight fl = c->ring[c->head];
	uint64_t handle = 0, h2 = 0;
	int k = fast_check(p, n, fl.id, &handle);

	/* At start-up (canned_fd) both decoders must agree. */
	if (k == FAST_NO || c->canned_fd >= 0) {
		int k2 = slow_check(c, p, n, &fl, &h2);

		if (k2 != k || h2 != handle)
			client_fail(c,
				    "reply to #%llu: the fast decoder and "
				    "protobuf-c disagree (a bug in " PROG ")",
				    (unsigned long long)fl.id);
	}
	if (k == FAST_EVENT) {
		fl.slot = UINT32_MAX; /* not an answer */
		return fl;
	}
	if (!fl.is_free && !handle)
		client_fail(c, "alloc #%llu: OK without an extent of 4K",
			    (unsigned long long)fl.id);
	c->handle[fl.slot] = fl.is_free ? 0 : handle;
	c->head = (c->head + 1) % c->depth;
	c->count--;
	return fl;
}

/* Decode what encode_request() makes with protobuf-c, and compare. */
static void encoder_selftest(struct client *c)
{
	static const struct {
		uint64_t id, handle;
		bool is_free;
	} t[] = {
	    {1, 0, false},
	    {(1ull << 35) + 3, 0xfedcba9876543210ull, true},
	    {UINT64_MAX, 1, true},
	};
	ProtobufCAllocator pa = {arena_alloc, arena_free, c};
	size_t slen = strlen(c->space);
	uint8_t *buf = malloc(ENCODE_MAX(slen));

	for (size_t i = 0; buf && i < sizeof(t) / sizeof(t[0]); i++) {
		uint8_t *end = encode_request(buf, t[i].id, c->space, slen,
					      t[i].is_free, t[i].handle);
		Potad__V1__Request *rq;
		const Potad__V1__Op *op;
		uint64_t len;
		int k = potad__varint_get(buf, (size_t)(end - buf), &len);

		c->arena_used = 0;
		rq = k > 0 && len == (uint64_t)(end - buf - k)
			 ? potad__v1__request__unpack(&pa, len, buf + k)
			 : NULL;
		op = rq && rq->n_ops == 1 ? rq->ops[0] : NULL;
		if (!op || rq->id != t[i].id ||
		    (t[i].is_free ? op->op_case != POTAD__V1__OP__OP_FREE ||
					strcmp(op->free->space, c->space) ||
					op->free->handle != t[i].handle
				  : op->op_case != POTAD__V1__OP__OP_ALLOC ||
					strcmp(op->alloc->space, c->space) ||
					op->alloc->size != ALLOC_SIZE))
			client_fail(c, "the request encoder disagrees with "
				       "protobuf-c (a bug in " PROG ")");
	}
	free(buf);
}

/*
 * The length of the complete reply frame at p, or 0 while it is not all
 * there; *fl is the request it answers, checked by client_check().
 */
static size_t potad_next(struct client *c, const uint8_t *p, size_t n,
			 struct flight *fl)
{
	uint64_t len;
	int k = potad__varint_get(p, n, &len);

	if (k < 0 || (k > 0 && len > MAX_REPLY))
		client_fail(c, "bad frame length from the server");
	if (k == 0 || n - (size_t)k < len)
		return 0;
	if (!c->count)
		client_fail(c, "a reply with nothing in flight");
	*fl = client_check(c, p + k, (size_t)len);
	return (size_t)k + (size_t)len;
}

/*
 * The same for Redis: every reply to SET is "+OK\r\n"; an error (or
 * anything else) ends the client with the line Redis sent.
 */
static size_t redis_next(struct client *c, const uint8_t *p, size_t n,
			 struct flight *fl)
{
	const uint8_t *nl = memchr(p, '\n', n);
	size_t len, shown;

	if (!nl) {
		if (n > MAX_REPLY)
			client_fail(c, "a reply line of over %d bytes",
				    MAX_REPLY);
		return 0;
	}
	len = (size_t)(nl - p) + 1;
	if (!c->count)
		client_fail(c, "a reply with nothing in flight");
	*fl = c->ring[c->head];
	if (len != 5 || memcmp(p, "+OK\r\n", 5) != 0) {
		shown = len - 1 - (len > 1 && p[len - 2] == '\r');
		client_fail(c, "SET #%llu: Redis answered \"%.*s\"",
			    (unsigned long long)fl->id,
			    (int)(shown > 200 ? 200 : shown), (const char *)p);
	}
	c->head = (c->head + 1) % c->depth;
	c->count--;
	return len;
}

/*
 * Read once and settle every complete response in it; those read inside
 * [t_start, t_end) count in r.  Before t_end each answered slot queues its
 * next request.  Returns how many were queued.
 */
static unsigned client_read(struct client *c, struct cres *r, int64_t t_start,
			    int64_t t_end)
{
	unsigned queued = 0;
	size_t off = 0;
	ssize_t n;
	int64_t t;

	do
		n = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		client_fail(c, "read: %s", strerror(errno));
	if (n == 0)
		client_fail(c, "the server closed the connection");
	t = now_ns();
	c->rlen += (size_t)n;
	for (;;) {
		struct flight fl;
		size_t used =
		    c->kind == KIND_REDIS
			? redis_next(c, c->rbuf + off, c->rlen - off, &fl)
			: potad_next(c, c->rbuf + off, c->rlen - off, &fl);

		if (!used)
			break;
		off += used;
		if (fl.slot == UINT32_MAX)
			continue;
		if (t >= t_start && t < t_end) {
			r->ops++;
			r->allocs += !fl.is_free;
			r->hist[hist_idx((uint64_t)(t - fl.t_send))]++;
		}
		if (t < t_end) {
			client_queue(c, fl.slot);
			queued++;
		}
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	return queued;
}

static void client_init(struct client *c, int fd, int index, enum kind kind,
			unsigned depth, char *err)
{
	char key[32];
	int klen;

	memset(c, 0, offsetof(struct client, arena));
	c->fd = fd;
	c->index = index;
	c->kind = kind;
	c->depth = depth;
	klen = snprintf(key, sizeof(key), REDIS_KEY "%d", index);
	c->setlen = (size_t)snprintf(
	    c->set, sizeof(c->set),
	    "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%zu\r\n" REDIS_VALUE "\r\n", klen,
	    key, strlen(REDIS_VALUE));
	c->space = o.space;
	c->err = err;
	c->canned_fd = -1;
	c->rbuf = malloc(RBUF_SIZE);
	c->ring = calloc(depth, sizeof(*c->ring));
	c->handle = calloc(depth, sizeof(*c->handle));
	if (!c->rbuf || !c->ring || !c->handle)
		client_fail(c, "out of memory");
}

/* Free whatever the slots still hold, uncounted, then wait for it. */
static void client_drain(struct client *c)
{
	unsigned before;

	while (c->count)
		client_read(c, NULL, 0, 0);
	before = c->count;
	for (unsigned s = 0; s < c->depth; s++)
		if (c->handle[s])
			client_queue(c, s);
	if (c->count > before)
		client_send(c, before);
	while (c->count)
		client_read(c, NULL, 0, 0);
}

/* Move the calling process where --pin wants a server or a client. */
static void pin_self(bool server)
{
	if (o.pin != PIN_NONE)
		sched_setaffinity(0, sizeof(cpu_set_t),
				  server ? &server_cpus : &client_cpus);
}

/* Split the CPUs we may use per --pin; -1 after a message. */
static int pin_plan(void)
{
	cpu_set_t all;
	int first = -1, others = 0;

	CPU_ZERO(&server_cpus);
	CPU_ZERO(&client_cpus);
	if (o.pin == PIN_NONE)
		return 0;
	if (sched_getaffinity(0, sizeof(all), &all) < 0) {
		warn("sched_getaffinity: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &all))
			continue;
		if (first < 0) {
			first = i;
			continue;
		}
		CPU_SET(i, &client_cpus);
		others++;
	}
	CPU_SET(first, &server_cpus);
	if (o.pin == PIN_SAME) {
		CPU_ZERO(&client_cpus);
		CPU_SET(first, &client_cpus);
	} else if (others == 0) {
		warn("--pin split needs two CPUs; this process may use one");
		return -1;
	}
	return 0;
}

static void child_signals(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void client_main(int index, const char *path, enum kind kind,
			unsigned depth, int ready_fd, int go_fd,
			struct shared *sh)
{
	struct cres *r = &sh->res[index];
	struct client *c = malloc(sizeof(*c));
	int fd;
	char b;

	child_signals();
	pin_self(false);
	if (!c) {
		snprintf(r->err, sizeof(r->err), "client %d: out of memory",
			 index);
		_exit(1);
	}
	fd = connect_to(path);
	if (fd < 0) {
		snprintf(r->err, sizeof(r->err), "client %d: connect %s: %s",
			 index, path, strerror(-fd));
		_exit(1);
	}
	client_init(c, fd, index, kind, depth, r->err);
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	close(ready_fd);
	/* The parent closes its end to start everyone at once. */
	while (read(go_fd, &b, 1) < 0 && errno == EINTR)
		;
	for (unsigned s = 0; s < depth; s++)
		client_queue(c, s);
	client_send(c, 0);
	/* Past t_end nothing new is queued and the ring runs dry. */
	while (c->count) {
		unsigned queued = client_read(c, r, sh->t_start, sh->t_end);

		if (queued)
			client_send(c, c->count - queued);
	}
	client_drain(c);
	close(fd);
	_exit(0);
}

/*
 * The echo server.  canned is a packed Response with id 0 (so without
 * field 1) holding the daemon's Result; each reply is that with the
 * request's id put in front, inside a ServerMessage.
 */
struct econn {
	int fd;
	bool blocked; /* waiting for EPOLLOUT */
	size_t rlen, olen, ooff, ocap;
	uint8_t *obuf;
	uint8_t rbuf[RBUF_SIZE];
};

static void echo_close(int ep, struct econn *e)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
	close(e->fd);
	free(e->obuf);
	free(e);
}

/* Write what is queued; false if the connection is gone. */
static bool echo_flush(int ep, struct econn *e)
{
	struct epoll_event ev = {.data.ptr = e};

	while (e->ooff < e->olen) {
		ssize_t k = write(e->fd, e->obuf + e->ooff, e->olen - e->ooff);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k < 0)
			return false;
		e->ooff += (size_t)k;
	}
	if (e->ooff == e->olen)
		e->ooff = e->olen = 0;
	/* Like the daemon, stop reading while replies are stuck. */
	if ((e->olen != 0) != e->blocked) {
		e->blocked = e->olen != 0;
		ev.events = e->blocked ? EPOLLOUT : EPOLLIN;
		epoll_ctl(ep, EPOLL_CTL_MOD, e->fd, &ev);
	}
	return true;
}

/* Read once, answer every complete frame, write once. */
static bool echo_read(int ep, struct econn *e, const uint8_t *canned,
		      size_t clen)
{
	size_t off = 0;
	ssize_t n = read(e->fd, e->rbuf + e->rlen, sizeof(e->rbuf) - e->rlen);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	e->rlen += (size_t)n;
	for (;;) {
		uint64_t len, id = 0;
		int k = potad__varint_get(e->rbuf + off, e->rlen - off, &len);
		const uint8_t *p;
		uint8_t idv[POTAD_VARINT_MAX], lv[POTAD_VARINT_MAX];
		size_t il = 0, rl, ll, need;

		if (k < 0 ||
		    (k > 0 && len > sizeof(e->rbuf) - POTAD_VARINT_MAX))
			return false;
		if (k == 0 || e->rlen - off - (size_t)k < len)
			break;
		p = e->rbuf + off + k;
		if (len > 1 && p[0] == 0x08 &&
		    potad__varint_get(p + 1, len - 1, &id) <= 0)
			id = 0;
		if (id)
			il = potad__varint_put(id, idv);
		/* Response: [08 id] canned; ServerMessage: 0a len Response. */
		rl = (il ? 1 + il : 0) + clen;
		ll = potad__varint_put(rl, lv);
		need = POTAD_VARINT_MAX + 1 + ll + rl;
		if (e->olen + need > e->ocap) {
			size_t cap = e->ocap * 2 + need + 4096;
			uint8_t *t = realloc(e->obuf, cap);

			if (!t)
				return false;
			e->obuf = t;
			e->ocap = cap;
		}
		e->olen += potad__varint_put(1 + ll + rl, e->obuf + e->olen);
		e->obuf[e->olen++] = 0x0a;
		memcpy(e->obuf + e->olen, lv, ll);
		e->olen += ll;
		if (il) {
			e->obuf[e->olen++] = 0x08;
			memcpy(e->obuf + e->olen, idv, il);
			e->olen += il;
		}
		memcpy(e->obuf + e->olen, canned, clen);
		e->olen += clen;
		off += (size_t)k + (size_t)len;
	}
	memmove(e->rbuf, e->rbuf + off, e->rlen - off);
	e->rlen -= off;
	return echo_flush(ep, e);
}

static void echo_main(int lfd, const uint8_t *canned, size_t clen)
{
	struct epoll_event ev = {.events = EPOLLIN}, evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	child_signals();
	pin_self(true);
	ev.data.ptr = NULL;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		_exit(1);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(1);
		for (int i = 0; i < n; i++) {
			struct econn *e = evs[i].data.ptr;
			int fd;

			if (e) {
				bool ok = evs[i].events & EPOLLOUT
					      ? echo_flush(ep, e)
					      : echo_read(ep, e, canned, clen);

				if (!ok)
					echo_close(ep, e);
				continue;
			}
			fd = accept4(lfd, NULL, NULL,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			e = calloc(1, sizeof(*e));
			ev.events = EPOLLIN;
			ev.data.ptr = e;
			if (!e || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
				close(fd);
				free(e);
				continue;
			}
			e->fd = fd;
		}
	}
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 512) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/*
 * Start-up.
 */

/*
 * One alloc of 4K and its free, in a child so that a failure ends only it;
 * the alloc's reply, packed without its id, comes back through a pipe.
 */
static int capture_reply(const char *path, uint8_t *canned, size_t cap,
			 size_t *clen)
{
	int pfd[2], st;
	size_t got = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		static char err[sizeof(((struct cres *)0)->err)];
		struct client *c = malloc(sizeof(*c));
		int fd;

		child_signals();
		close(pfd[0]);
		fd = connect_to(path);
		if (!c || fd < 0) {
			warn("connect %s: %s", path,
			     strerror(c ? -fd : ENOMEM));
			_exit(1);
		}
		client_init(c, fd, -1, KIND_POTAD, 1, err);
		encoder_selftest(c);
		c->canned_fd = pfd[1];
		client_queue(c, 0);
		client_send(c, 0);
		while (c->count)
			client_read(c, NULL, 0, 0);
		client_drain(c);
		_exit(0);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return -errno;
	}
	for (;;) {
		ssize_t n = read(pfd[0], canned + got, cap - got);

		if (n < 0 && errno == EINTR && !interrupted)
			continue;
		if (n <= 0 || (got += (size_t)n) == cap)
			break;
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (interrupted)
		return -EINTR;
	if (!WIFEXITED(st) || WEXITSTATUS(st) || !got || got == cap)
		return -EIO;
	*clen = got;
	return 0;
}

/*
 * --hold: n tokened extents, allocated 1,000 to a request on a connection
 * of their own and kept (they are not session extents, so closing it
 * leaves them).  Plain blocking reads: this is setup, not measured.
 */
/* Send req on fd and read its answer, within 10 s, through buf (cap
 * bytes): 0 with *out a Response of one Result per operation (free it
 * with potad__v1__server_message__free_unpacked), or -errno, -EPROTO or
 * -ETIMEDOUT.  Plain blocking I/O, for setup and queries, not for what is
 * measured. */
static int ask(int fd, const Potad__V1__Request *req, uint8_t *buf,
	       size_t cap, Potad__V1__ServerMessage **out)
{
	Potad__V1__ServerMessage *m;
	size_t n = potad__v1__request__get_packed_size(req), len;
	int64_t deadline = now_ns() + 10 * 1000000000ll;
	int rc;

	if (n + POTAD_VARINT_MAX > cap)
		return -EMSGSIZE;
	len = potad__varint_put(n, buf);
	potad__v1__request__pack(req, buf + len);
	rc = write_all(fd, buf, len + n);
	len = 0;
	while (rc == 0) {
		uint64_t flen;
		int k = potad__varint_get(buf, len, &flen);
		ssize_t got;

		if (k < 0 || (k > 0 && flen > cap - (size_t)k))
			return -EPROTO;
		if (k > 0 && len - (size_t)k >= flen) {
			m = potad__v1__server_message__unpack(NULL, flen,
							      buf + k);
			if (!m ||
			    m->msg_case !=
				POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE ||
			    m->response->n_results != req->n_ops) {
				if (m)
					potad__v1__server_message__free_unpacked(
					    m, NULL);
				return -EPROTO;
			}
			*out = m;
			return 0;
		}
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -ECONNRESET;
		len += (size_t)got;
	}
	return rc;
}

static int hold_tokens(const char *path, unsigned long n)
{
	enum { BATCH = 1000, CAP = 4u << 20 };
	static Potad__V1__Op ops[BATCH], *opp[BATCH];
	static Potad__V1__Alloc al[BATCH];
	static char tok[BATCH][32];
	uint8_t *buf = malloc(CAP);
	int fd = connect_to(path), rc = 0;
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
	Potad__V1__ServerMessage *m;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return fd < 0 ? fd : -ENOMEM;
	}
	for (unsigned long done = 0; done < n && !rc; done += req.n_ops) {
		req.id = done + 1;
		req.n_ops = n - done < BATCH ? n - done : BATCH;
		req.ops = opp;
		for (size_t i = 0; i < req.n_ops; i++) {
			potad__v1__alloc__init(&al[i]);
			al[i].space = (char *)o.space;
			al[i].size = ALLOC_SIZE;
			snprintf(tok[i], sizeof(tok[i]), "hold-%lu", done + i);
			al[i].token = tok[i];
			potad__v1__op__init(&ops[i]);
			ops[i].op_case = POTAD__V1__OP__OP_ALLOC;
			ops[i].alloc = &al[i];
			opp[i] = &ops[i];
		}
		rc = ask(fd, &req, buf, CAP, &m);
		if (rc)
			break;
		for (size_t i = 0; !rc && i < req.n_ops; i++)
			if (m->response->results[i]->status !=
			    POTAD__V1__STATUS__OK) {
				warn("--hold: allocation %lu: %s",
				     done + i + 1,
				     m->response->results[i]->message);
				rc = -ENOSPC;
			}
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	close(fd);
	free(buf);
	return rc;
}

/* ../daemon/potad beside this program (the build tree), else the cwd's. */
static const char *default_daemon(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	char *slash;

	if (n > 0) {
		path[n] = '\0';
		/* libtool may run us from bench/.libs/. */
		for (int up = 0; up < 3 && (slash = strrchr(path, '/')); up++) {
			*slash = '\0';
			strcpy(slash, "/daemon/potad");
			if (access(path, X_OK) == 0)
				return path;
			*slash = '\0';
		}
	}
	return "./daemon/potad";
}

/* The name of the file system path is on, for the figures. */
static void fs_name(const char *path, char *out, size_t n)
{
	static const struct {
		long magic;
		const char *name;
	} fs[] = {
	    {0xEF53, "ext4"},	   {0x58465342, "xfs"},
	    {0x9123683E, "btrfs"}, {0x01021994, "tmpfs"},
	    {0x858458f6, "ramfs"}, {0x794c7630, "overlay"},
	    {0x2fc12fc1, "zfs"},   {0x6969, "nfs"},
	    {0xF2F52010, "f2fs"},
	};
	struct statfs sf;

	if (statfs(path, &sf) < 0) {
		snprintf(out, n, "?");
		return;
	}
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		if ((long)sf.f_type == fs[i].magic) {
			snprintf(out, n, "%s", fs[i].name);
			return;
		}
	snprintf(out, n, "%#lx", (long)sf.f_type);
}

/*
 * A fresh directory name.XXXXXX for files that must reach a disk, under
 * --state-dir or else /var/tmp (never /tmp, see --durable), in dir; the
 * name of its file system in fs.  A tmpfs draws a warning that these are
 * not the figures of a durable `who`.  0, or -errno with the template
 * left in dir.
 */
static int make_disk_dir(const char *name, char *dir, size_t n, char *fs,
			 size_t fsn, const char *who)
{
	const char *parent = o.state_parent ? o.state_parent : "/var/tmp";

	snprintf(dir, n, "%s/%s.XXXXXX", parent, name);
	if (!mkdtemp(dir))
		return -errno;
	fs_name(dir, fs, fsn);
	if (strcmp(fs, "tmpfs") == 0 || strcmp(fs, "ramfs") == 0)
		warn("warning: %s is on %s, where a data sync costs nothing; "
		     "these are not the figures of a durable %s (use "
		     "--state-dir on a disk)",
		     dir, fs, who);
	return 0;
}

/* The daemon's state directory: a throwaway one beside the socket when it
 * keeps nothing, else a fresh one on disk (see --durable). */
static int make_state_dir(void)
{
	int rc;

	if (!o.durable) {
		snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
		return mkdir(statedir, 0700) < 0 ? -errno : 0;
	}
	rc = make_disk_dir(PROG, statedir, sizeof(statedir), state_fs,
			   sizeof(state_fs), "daemon");
	if (rc < 0) {
		warn("mkdtemp %s: %s", statedir, strerror(-rc));
		statedir[0] = '\0';
	}
	return rc;
}

static int start_daemon(const char *exe)
{
	const char *argv[16];
	int argc = 0, rc;
	int64_t deadline;

	rc = make_state_dir();
	if (rc < 0)
		return rc;
	argv[argc++] = exe;
	argv[argc++] = "--foreground";
	argv[argc++] = "--socket";
	argv[argc++] = daemon_sock;
	argv[argc++] = "--state-dir";
	argv[argc++] = statedir;
	argv[argc++] = "--log-level";
	argv[argc++] = "warn";
	if (!o.durable) {
		argv[argc++] = "--memory-only";
	} else if (o.journal_io) {
		argv[argc++] = "--journal-io";
		argv[argc++] = o.journal_io;
	}
	argv[argc] = NULL;
	daemon_pid = fork();
	if (daemon_pid < 0)
		return -errno;
	if (daemon_pid == 0) {
		child_signals();
		pin_self(true);
		/* Let the daemon see its own SIGTERM; ours is for us. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(exe, (char *const *)argv);
		warn("cannot run %s: %s", exe, strerror(errno));
		_exit(127);
	}
	/* Serving once a connection goes through. */
	deadline = now_ns() + 10 * 1000000000ll;
	while (!interrupted && now_ns() < deadline) {
		struct timespec ts = {0, 20 * 1000000};
		int st, fd = connect_to(daemon_sock);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
			daemon_pid = -1;
			warn("%s exited (%s %d) before serving", exe,
			     WIFEXITED(st) ? "status" : "signal",
			     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			return -ECHILD;
		}
		nanosleep(&ts, NULL);
	}
	if (!interrupted)
		warn("%s is not serving on %s after 10 s", exe, daemon_sock);
	return interrupted ? -EINTR : -ETIMEDOUT;
}

static int start_echo(const uint8_t *canned, size_t clen)
{
	int lfd = listen_on(echo_sock);

	if (lfd < 0)
		return lfd;
	echo_pid = fork();
	if (echo_pid == 0)
		echo_main(lfd, canned, clen);
	close(lfd);
	return echo_pid < 0 ? -errno : 0;
}

/* Stop a server this program started: SIGTERM lets it finish its
 * connections and clean up; SIGKILL after 3 s. */
static void stop_server(pid_t *pid)
{
	int64_t deadline = now_ns() + 3 * 1000000000ll;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	while (waitpid(*pid, NULL, WNOHANG) == 0) {
		struct timespec ts = {0, 10 * 1000000};

		if (now_ns() > deadline) {
			kill(*pid, SIGKILL);
			waitpid(*pid, NULL, 0);
			break;
		}
		nanosleep(&ts, NULL);
	}
	*pid = -1;
}

/*
 * Redis, for --redis.
 */

/* The redis-server to run, in exe: --redis-server's, else the first on
 * PATH.  0, or -1 with the reason in why. */
static int find_redis(char *exe, size_t n, char *why, size_t wn)
{
	const char *path = getenv("PATH"), *p, *colon;

	if (o.redis_server) {
		snprintf(exe, n, "%s", o.redis_server);
		if (access(exe, X_OK) == 0)
			return 0;
		snprintf(why, wn, "cannot run --redis-server %s: %s", exe,
			 strerror(errno));
		return -1;
	}
	for (p = path ? path : ""; *p; p = *colon ? colon + 1 : colon) {
		colon = strchrnul(p, ':');
		/* An empty entry is the current directory. */
		if (colon == p)
			snprintf(exe, n, "./redis-server");
		else
			snprintf(exe, n, "%.*s/redis-server", (int)(colon - p),
				 p);
		if (access(exe, X_OK) == 0)
			return 0;
	}
	snprintf(why, wn,
		 "no redis-server on PATH (install the Debian package "
		 "redis-server, or give --redis-server PATH)");
	return -1;
}

/*
 * Send one RESP command to the Redis at path and read its reply, one
 * line or one bulk string, into buf, NUL-terminated: its length, or
 * -errno.
 */
static int redis_ask(const char *path, const char *cmd, char *buf, size_t cap)
{
	struct timeval tv = {.tv_sec = 2};
	int fd = connect_to(path), rc;
	size_t len = 0;

	buf[0] = '\0';
	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc = write_all(fd, cmd, strlen(cmd));
	while (rc == 0) {
		char *eol = memchr(buf, '\n', len);
		size_t need = eol ? (size_t)(eol - buf) + 1 : 0;
		ssize_t got;

		/* "$n" heads a bulk string of n bytes and CRLF. */
		if (eol && buf[0] == '$' && atol(buf + 1) > 0)
			need += (size_t)atol(buf + 1) + 2;
		if (eol && len >= need) {
			rc = (int)need;
			break;
		}
		if (need >= cap || len + 1 >= cap) {
			rc = -EMSGSIZE;
			break;
		}
		got = read(fd, buf + len, cap - 1 - len);
		if (got < 0 && errno == EINTR && !interrupted)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : -ECONNRESET;
			break;
		}
		len += (size_t)got;
		buf[len] = '\0';
	}
	close(fd);
	return rc;
}

/* The last line of the file at path, for a message; "" if none. */
static void last_line(const char *path, char *out, size_t n)
{
	char buf[4096], *p, *nl;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
	off_t at =
	    size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
	ssize_t got = fd < 0 ? -1 : pread(fd, buf, sizeof(buf) - 1, at);

	out[0] = '\0';
	if (fd >= 0)
		close(fd);
	if (got <= 0)
		return;
	buf[got] = '\0';
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
		buf[--got] = '\0';
	nl = strrchr(buf, '\n');
	p = nl ? nl + 1 : buf;
	len = strlen(p) < n ? strlen(p) : n - 1;
	memcpy(out, p, len);
	out[len] = '\0';
}

/*
 * Start redis-server with an fsync'ed append-only file in a fresh
 * directory on disk and wait until it answers PING.  Whatever keeps it
 * from running skips the comparison with one line saying why; the run
 * goes on without it.
 */
static void start_redis(void)
{
	static const char ping[] = "*1\r\n$4\r\nPING\r\n";
	static const char info[] = "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n";
	char exe[4096], why[16384], log[4200], line[512], reply[8192], *v;
	const char *argv[24];
	int argc = 0, rc, st;
	bool up = false;
	int64_t deadline;

	if (find_redis(exe, sizeof(exe), why, sizeof(why)) < 0)
		goto skip;
	rc = make_disk_dir(PROG "-redis", redisdir, sizeof(redisdir), redis_fs,
			   sizeof(redis_fs), "Redis");
	if (rc < 0) {
		snprintf(why, sizeof(why), "mkdtemp %s: %s", redisdir,
			 strerror(-rc));
		redisdir[0] = '\0';
		goto skip;
	}
	snprintf(redis_sock, sizeof(redis_sock), "%s/redis.sock", redisdir);
	snprintf(log, sizeof(log), "%s/redis.log", redisdir);
	if (strlen(redis_sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(why, sizeof(why), "the socket path %s is too long",
			 redis_sock);
		goto skip;
	}
	argv[argc++] = exe;
	argv[argc++] = "--port";
	argv[argc++] = "0";
	argv[argc++] = "--unixsocket";
	argv[argc++] = redis_sock;
	argv[argc++] = "--unixsocketperm";
	argv[argc++] = "700";
	argv[argc++] = "--dir";
	argv[argc++] = redisdir;
	argv[argc++] = "--appendonly";
	argv[argc++] = "yes";
	argv[argc++] = "--appendfsync";
	argv[argc++] = "always";
	argv[argc++] = "--save";
	argv[argc++] = "";
	argv[argc++] = "--daemonize";
	argv[argc++] = "no";
	argv[argc] = NULL;
	redis_pid = fork();
	if (redis_pid < 0) {
		snprintf(why, sizeof(why), "fork: %s", strerror(errno));
		goto skip;
	}
	if (redis_pid == 0) {
		int fd =
		    open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		child_signals();
		pin_self(true);
		/* Let Redis see its own SIGTERM; ours is for us. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* Its banner and log go to its directory, not our output. */
		if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 ||
		    dup2(fd, 2) < 0)
			_exit(126);
		execv(exe, (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	deadline = now_ns() + 10 * 1000000000ll;
	while (!interrupted && now_ns() < deadline) {
		struct timespec ts = {0, 20 * 1000000};

		if (redis_ask(redis_sock, ping, reply, sizeof(reply)) > 0 &&
		    strcmp(reply, "+PONG\r\n") == 0) {
			up = true;
			break;
		}
		if (waitpid(redis_pid, &st, WNOHANG) == redis_pid) {
			redis_pid = -1;
			last_line(log, line, sizeof(line));
			snprintf(why, sizeof(why),
				 "%s exited (%s %d) before serving%s%s", exe,
				 WIFEXITED(st) ? "status" : "signal",
				 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
				 line[0] ? ": " : "", line);
			goto skip;
		}
		nanosleep(&ts, NULL);
	}
	if (interrupted)
		return;
	if (!up) {
		snprintf(why, sizeof(why),
			 "%s does not answer PING on %s after 10 s", exe,
			 redis_sock);
		goto skip;
	}
	if (redis_ask(redis_sock, info, reply, sizeof(reply)) > 0 &&
	    (v = strstr(reply, "redis_version:")))
		snprintf(redis_version, sizeof(redis_version), "%.*s",
			 (int)strcspn(v + 14, "\r\n"), v + 14);
	return;
skip:
	stop_server(&redis_pid);
	strcpy(redis_fs, "-");
	warn("--redis: %s; skipping the Redis comparison", why);
}

/*
 * Whether the daemon at path says it is durable: 1, 0, or -errno.  One
 * Hello, packed and unpacked with protobuf-c.
 */
static int query_durable(const char *path)
{
	Potad__V1__Hello hello = POTAD__V1__HELLO__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT, *ops[1] = {&op};
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
	Potad__V1__ServerMessage *m;
	uint8_t buf[4096];
	int fd = connect_to(path), rc;

	if (fd < 0)
		return fd;
	hello.protocol = 1;
	hello.client = PROG;
	op.op_case = POTAD__V1__OP__OP_HELLO;
	op.hello = &hello;
	req.id = 1;
	req.n_ops = 1;
	req.ops = ops;
	rc = ask(fd, &req, buf, sizeof(buf), &m);
	if (rc == 0) {
		rc = m->response->results[0]->body_case ==
			     POTAD__V1__RESULT__BODY_HELLO
			 ? m->response->results[0]->hello->durable
			 : -EPROTO;
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	close(fd);
	return rc;
}

/*
 * Scenarios.
 */

/* The pid on the other end of the socket at path, or -1. */
static pid_t server_pid(const char *path)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = connect_to(path);
	pid_t pid = -1;

	if (fd < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		pid = cred.pid;
	close(fd);
	return pid;
}

/* CPU time of every thread of pid in seconds (clock-tick resolution), or
 * a negative number. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pid <= 0 || fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* utime and stime are fields 14 and 15; the name may hold spaces. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Sleep until CLOCK_MONOTONIC reaches t; false if interrupted. */
static bool sleep_until(int64_t t)
{
	struct timespec ts = {.tv_sec = t / 1000000000,
			      .tv_nsec = t % 1000000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		if (interrupted)
			return false;
	return true;
}
static void kill_clients(void)
{
	for (int i = 0; i < nclient_pids; i++) {
		kill(client_pids[i], SIGKILL);
		waitpid(client_pids[i], NULL, 0);
	}
	nclient_pids = 0;
}

/*
 * Which server pid was, forgotten now that it has exited; NULL if none.
 * run_one() reaps any child, so it hears of servers exiting first.
 */
static const char *server_exited(pid_t pid)
{
	if (pid == daemon_pid) {
		daemon_pid = -1;
		return "daemon";
	}
	if (pid == echo_pid) {
		echo_pid = -1;
		return "echo server";
	}
	if (pid == redis_pid) {
		redis_pid = -1;
		return "redis-server";
	}
	return NULL;
}

/* Run `clients` clients of `depth` against the server of this kind at
 * path; 0, or -1 after a message. */
static int run_one(const char *path, enum kind kind, pid_t server, int clients,
		   int depth, double seconds, struct shared *sh,
		   struct result *acc)
{
	int ready[2], go[2], rc = -1, got = 0;
	double warmup = seconds / 5, cpu0, cpu1;
	int64_t stall;

	memset(sh->res, 0, (size_t)clients * sizeof(sh->res[0]));
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
		warn("pipe: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < clients; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			client_main(i, path, kind, (unsigned)depth, ready[1],
				    go[0], sh);
		}
		if (pid < 0) {
			warn("fork: %s", strerror(errno));
			goto out;
		}
		client_pids[nclient_pids++] = pid;
	}
	close(ready[1]);
	ready[1] = -1;
	/* Each client writes one byte once connected; EOF when all have. */
	for (;;) {
		char b[MAX_CLIENTS];
		ssize_t n = read(ready[0], b, sizeof(b));

		if (n < 0 && errno == EINTR && !interrupted)
			continue;
		if (n <= 0)
			break;
		got += (int)n;
	}
	if (interrupted)
		goto out;
	if (got < clients)
		goto failed;
	warmup = warmup < 0.1 ? 0.1 : warmup > 0.5 ? 0.5 : warmup;
	sh->t_start = now_ns() + (int64_t)(warmup * 1e9);
	sh->t_end = sh->t_start + (int64_t)(seconds * 1e9);
	close(go[1]);
	go[1] = -1;
	/* A client that fails now is noticed at t_end. */
	if (!sleep_until(sh->t_start))
		goto out;
	cpu0 = proc_cpu(server);
	if (!sleep_until(sh->t_end))
		goto out;
	cpu1 = proc_cpu(server);
	/* Clients finish just after t_end; give a stalled server 10 s. */
	stall = sh->t_end + 10 * 1000000000ll;
	while (nclient_pids && !interrupted) {
		struct timespec ts = {0, 10 * 1000000};
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		const char *gone;

		if (pid > 0) {
			for (int i = 0; i < nclient_pids; i++)
				if (client_pids[i] == pid)
					client_pids[i] =
					    client_pids[--nclient_pids];
			gone = server_exited(pid);
			if (gone) {
				warn("the %s exited during the run", gone);
				goto failed;
			}
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				goto failed;
			continue;
		}
		if (now_ns() > stall) {
			warn("%d client(s) still waiting for replies 10 s "
			     "after the end; is the server stuck?",
			     nclient_pids);
			goto failed;
		}
		nanosleep(&ts, NULL);
	}
	if (interrupted)
		goto out;
	for (int i = 0; i < clients; i++) {
		acc->ops += sh->res[i].ops;
		acc->allocs += sh->res[i].allocs;
		for (unsigned b = 0; b < HIST_N; b++)
			acc->hist[b] += sh->res[i].hist[b];
	}
	acc->window += (double)(sh->t_end - sh->t_start) / 1e9;
	if (cpu0 < 0 || cpu1 < cpu0)
		acc->cpu_known = false;
	acc->cpu_s += cpu1 - cpu0;
	rc = 0;
	goto out;
failed:
	/* A ^C reaches the clients too; that is no failure of theirs. */
	if (interrupted)
		goto out;
	for (int i = 0; i < clients; i++)
		if (sh->res[i].err[0]) {
			warn("%s", sh->res[i].err);
			break;
		}
	warn("%d client(s) at depth %d against %s failed", clients, depth,
	     path);
out:
	kill_clients();
	close(ready[0]);
	if (ready[1] >= 0)
		close(ready[1]);
	close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	return rc;
}

static void result_start(struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->cpu_known = true;
}

static void result_finish(struct result *r)
{
	r->ops_per_s = (double)r->ops / r->window;
	r->allocs_per_s = (double)r->allocs / r->window;
	r->p50_us = hist_pct(r->hist, r->ops, 0.50) / 1000;
	r->p99_us = hist_pct(r->hist, r->ops, 0.99) / 1000;
	r->cpu = r->ns_per_op = -1;
	if (r->cpu_known) {
		r->cpu = r->cpu_s / r->window;
		r->ns_per_op = r->ops ? r->cpu_s * 1e9 / (double)r->ops : 0;
	}
}

static void print_env(void)
{
	static const char *pins[] = {"none", "same", "split"};
	double load[3] = {-1, -1, -1};

	const char *jio = o.socket || !o.durable ? "-"
			  : o.journal_io	 ? o.journal_io
						 : "auto";

	getloadavg(load, 3);
	if (o.json)
		printf("{\"bench\":\"rpc-env\",\"cpus\":%ld,\"load1\":%.2f,"
		       "\"load5\":%.2f,\"seconds\":%g,\"rounds\":%d,"
		       "\"size\":%d,"
		       "\"pin\":\"%s\",\"server\":\"%s\",\"durable\":%s,"
		       "\"journal_io\":\"%s\",\"state_dir\":\"%s\","
		       "\"state_fs\":\"%s\",\"redis\":%s,"
		       "\"redis_version\":\"%s\",\"redis_fs\":\"%s\","
		       "\"hold\":%lu}\n",
		       sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1],
		       o.seconds, o.rounds, ALLOC_SIZE, pins[o.pin],
		       o.socket ? "external" : "spawned",
		       server_durable < 0   ? "null"
		       : server_durable > 0 ? "true"
					    : "false",
		       jio, o.socket ? "" : statedir, state_fs,
		       redis_pid > 0 ? "true" : "false", redis_version,
		       redis_fs, o.hold);
	else
		printf("rpc-env cpus=%ld load1=%.2f load5=%.2f seconds=%g "
		       "rounds=%d size=4K pin=%s server=%s durable=%s "
		       "journal_io=%s state_dir=%s state_fs=%s redis=%s "
		       "redis_version=%s redis_fs=%s hold=%lu\n",
		       sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1],
		       o.seconds, o.rounds, pins[o.pin],
		       o.socket ? o.socket : "spawned",
		       server_durable < 0   ? "?"
		       : server_durable > 0 ? "yes"
					    : "no",
		       jio, o.socket ? "-" : statedir, state_fs,
		       redis_pid > 0 ? "yes" : "no", redis_version, redis_fs,
		       o.hold);
	fflush(stdout);
}

/* One line for a scenario; rd is Redis's figures, or NULL. */
static void print_result(int clients, int depth, const struct result *d,
			 const struct result *e, const struct result *rd)
{
	double ratio = e->ops_per_s > 0 ? d->ops_per_s / e->ops_per_s : 0;
	double vs = rd && rd->ops_per_s > 0 ? d->ops_per_s / rd->ops_per_s : 0;

	if (o.json)
		printf("{\"bench\":\"rpc\",\"durable\":%s,"
		       "\"clients\":%d,\"depth\":%d,"
		       "\"ops\":%llu,\"ops_per_s\":%.0f,\"allocs_per_s\":%.0f,"
		       "\"p50_us\":%.2f,\"p99_us\":%.2f,\"server_cpu\":%.2f,"
		       "\"server_ns_per_op\":%.0f,\"echo_ops_per_s\":%.0f,"
		       "\"echo_p50_us\":%.2f,\"echo_p99_us\":%.2f,"
		       "\"echo_cpu\":%.2f,\"echo_ns_per_op\":%.0f,"
		       "\"ratio\":%.3f",
		       server_durable > 0 ? "true" : "false", clients, depth,
		       (unsigned long long)d->ops, d->ops_per_s,
		       d->allocs_per_s, d->p50_us, d->p99_us, d->cpu,
		       d->ns_per_op, e->ops_per_s, e->p50_us, e->p99_us, e->cpu,
		       e->ns_per_op, ratio);
	else
		printf("rpc durable=%s clients=%d depth=%d ops_per_s=%.0f "
		       "allocs_per_s=%.0f p50_us=%.2f p99_us=%.2f "
		       "server_cpu=%.2f server_ns_per_op=%.0f "
		       "echo_ops_per_s=%.0f echo_p50_us=%.2f echo_p99_us=%.2f "
		       "echo_cpu=%.2f echo_ns_per_op=%.0f ratio=%.3f",
		       server_durable > 0 ? "yes" : "no", clients, depth,
		       d->ops_per_s, d->allocs_per_s, d->p50_us, d->p99_us,
		       d->cpu, d->ns_per_op, e->ops_per_s, e->p50_us, e->p99_us,
		       e->cpu, e->ns_per_op, ratio);
	if (rd && o.json)
		printf(",\"redis_ops_per_s\":%.0f,\"redis_p50_us\":%.2f,"
		       "\"redis_p99_us\":%.2f,\"redis_cpu\":%.2f,"
		       "\"redis_ns_per_op\":%.0f,\"vs_redis\":%.3f",
		       rd->ops_per_s, rd->p50_us, rd->p99_us, rd->cpu,
		       rd->ns_per_op, vs);
	else if (rd)
		printf(" redis_ops_per_s=%.0f redis_p50_us=%.2f "
		       "redis_p99_us=%.2f redis_cpu=%.2f redis_ns_per_op=%.0f "
		       "vs_redis=%.3f",
		       rd->ops_per_s, rd->p50_us, rd->p99_us, rd->cpu,
		       rd->ns_per_op, vs);
	fputs(o.json ? "}\n" : "\n", stdout);
	fflush(stdout);
}

/* Alternate the daemon, the echo server and Redis (when it runs) for
 * --rounds slices each, so that a change in the machine's load weighs on
 * all alike. */
static int run_scenario(const char *target, pid_t dpid, int clients, int depth,
			struct shared *sh)
{
	static struct result d, e, rd;
	double slice = o.seconds / o.rounds;
	bool redis = redis_pid > 0;

	result_start(&d);
	result_start(&e);
	result_start(&rd);
	for (int r = 0; r < o.rounds; r++)
		if (run_one(target, KIND_POTAD, dpid, clients, depth, slice, sh,
			    &d) < 0 ||
		    run_one(echo_sock, KIND_POTAD, echo_pid, clients, depth,
			    slice, sh, &e) < 0 ||
		    (redis && run_one(redis_sock, KIND_REDIS, redis_pid,
				      clients, depth, slice, sh, &rd) < 0))
			return -1;
	result_finish(&d);
	result_finish(&e);
	if (redis)
		result_finish(&rd);
	print_result(clients, depth, &d, &e, redis ? &rd : NULL);
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	kill_clients();
	if (echo_pid > 0) {
		kill(echo_pid, SIGKILL);
		waitpid(echo_pid, NULL, 0);
		echo_pid = -1;
	}
	stop_server(&daemon_pid);
	stop_server(&redis_pid);
	if (o.durable && statedir[0]) {
		nftw(statedir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		statedir[0] = '\0';
	}
	if (redisdir[0]) {
		nftw(redisdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		redisdir[0] = '\0';
	}
	if (tmpdir[0]) {
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		tmpdir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int parse_list(const char *arg, int *v, int *n, int max,
		      const char *what)
{
	char *end;

	*n = 0;
	do {
		long x = strtol(arg, &end, 10);

		if (end == arg || x < 1 || x > max || *n == MAX_LIST ||
		    (*end && *end != ',')) {
			warn("bad --%s '%s': up to %d comma-separated counts "
			     "in 1..%d",
			     what, arg, MAX_LIST, max);
			return -1;
		}
		v[(*n)++] = (int)x;
		arg = end + 1;
	} while (*end);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"daemon", required_argument, NULL, 'd'},
	    {"socket", required_argument, NULL, 's'},
	    {"space", required_argument, NULL, 'S'},
	    {"seconds", required_argument, NULL, 't'},
	    {"quick", no_argument, NULL, 'q'},
	    {"pin", required_argument, NULL, 'p'},
	    {"rounds", required_argument, NULL, 'r'},
	    {"clients", required_argument, NULL, 'c'},
	    {"depth", required_argument, NULL, 'D'},
	    {"json", no_argument, NULL, 'j'},
	    {"durable", no_argument, NULL, 'u'},
	    {"state-dir", required_argument, NULL, 'P'},
	    {"journal-io", required_argument, NULL, 'J'},
	    {"redis", no_argument, NULL, 'R'},
	    {"redis-server", required_argument, NULL, 'E'},
	    {"hold", required_argument, NULL, 'H'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sigaction sa = {.sa_handler = on_signal};
	uint8_t canned[MAX_REPLY];
	size_t clen = 0, shsize;
	struct shared *sh;
	const char *target;
	pid_t dpid;
	int opt, rc, status = 1, maxc = 0;
	char *end;

	o.clients[0] = 1;
	o.clients[1] = 32;
	o.nclients = 2;
	o.depth[0] = 1;
	o.depth[1] = 16;
	o.ndepth = 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.daemon = optarg;
			break;
		case 's':
			o.socket = optarg;
			break;
		case 'S':
			o.space = optarg;
			break;
		case 't':
			o.seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(o.seconds >= 0.05) ||
			    o.seconds > 3600) {
				warn("bad --seconds '%s'", optarg);
				return 2;
			}
			break;
		case 'r':
			o.rounds = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end || o.rounds < 1 ||
			    o.rounds > 100) {
				warn("bad --rounds '%s': 1..100", optarg);
				return 2;
			}
			break;
		case 'p':
			if (strcmp(optarg, "none") == 0)
				o.pin = PIN_NONE;
			else if (strcmp(optarg, "same") == 0)
				o.pin = PIN_SAME;
			else if (strcmp(optarg, "split") == 0)
				o.pin = PIN_SPLIT;
			else {
				warn("bad --pin '%s': none, same or split",
				     optarg);
				return 2;
			}
			break;
		case 'q':
			o.seconds = 0.5;
			break;
		case 'c':
			if (parse_list(optarg, o.clients, &o.nclients,
				       MAX_CLIENTS, "clients") < 0)
				return 2;
			break;
		case 'D':
			if (parse_list(optarg, o.depth, &o.ndepth, MAX_DEPTH,
				       "depth") < 0)
				return 2;
			break;
		case 'j':
			o.json = true;
			break;
		case 'u':
			o.durable = true;
			break;
		case 'P':
			o.state_parent = optarg;
			break;
		case 'J':
			if (strcmp(optarg, "auto") && strcmp(optarg, "uring") &&
			    strcmp(optarg, "sync")) {
				warn("bad --journal-io '%s': auto, uring or "
				     "sync",
				     optarg);
				return 2;
			}
			o.journal_io = optarg;
			break;
		case 'E':
			o.redis_server = optarg;
			/* fall through */
		case 'R':
			o.redis = true;
			break;
		case 'H':
			o.hold = strtoul(optarg, &end, 10);
			if (*end || !*optarg) {
				warn("bad --hold '%s'", optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		warn("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (o.daemon && o.socket) {
		warn("--daemon and --socket exclude each other");
		return 2;
	}
	if (o.socket && (o.durable || o.journal_io)) {
		warn("--durable and --journal-io set up the daemon this "
		     "program starts, not one given with --socket");
		return 2;
	}
	if (!o.durable && o.journal_io) {
		warn("--journal-io goes with --durable");
		return 2;
	}
	if (!o.durable && !o.redis && o.state_parent) {
		warn("--state-dir goes with --durable or --redis");
		return 2;
	}
	if (pin_plan() < 0)
		return 1;
	for (int i = 0; i < o.nclients; i++)
		maxc = o.clients[i] > maxc ? o.clients[i] : maxc;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	shsize = sizeof(*sh) + (size_t)maxc * sizeof(sh->res[0]);
	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		warn("mmap: %s", strerror(errno));
		return 1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/" PROG ".XXXXXX",
		 getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 64
		     ? getenv("TMPDIR")
		     : "/tmp");
	if (!mkdtemp(tmpdir)) {
		warn("mkdtemp %s: %s", tmpdir, strerror(errno));
		tmpdir[0] = '\0';
		return 1;
	}
	snprintf(daemon_sock, sizeof(daemon_sock), "%s/potad.sock", tmpdir);
	snprintf(echo_sock, sizeof(echo_sock), "%s/echo.sock", tmpdir);
	target = o.socket ? o.socket : daemon_sock;
	if (!o.socket) {
		const char *exe = o.daemon ? o.daemon : default_daemon();

		rc = start_daemon(exe);
		if (rc < 0) {
			if (rc != -EINTR && rc != -ECHILD && rc != -ETIMEDOUT)
				warn("cannot start %s: %s", exe, strerror(-rc));
			goto out;
		}
	}
	/* The capturing child has said why it failed. */
	if (capture_reply(target, canned, sizeof(canned), &clen) < 0)
		goto out;
	rc = start_echo(canned, clen);
	if (rc < 0) {
		warn("cannot start the echo server on %s: %s", echo_sock,
		     strerror(-rc));
		goto out;
	}
	if (o.hold) {
		rc = hold_tokens(target, o.hold);
		if (rc < 0) {
			warn("--hold %lu: %s", o.hold, strerror(-rc));
			goto out;
		}
	}
	dpid = server_pid(target);
	server_durable = query_durable(target);
	if (server_durable < 0) {
		warn("hello to %s: %s", target, strerror(-server_durable));
		server_durable = -1;
	} else if (!o.socket && server_durable != o.durable) {
		warn("the daemon says durable=%s, expected %s",
		     server_durable ? "true" : "false",
		     o.durable ? "true" : "false");
		goto out;
	}
	if (o.redis) {
		start_redis();
		if (interrupted)
			goto out;
		if (redis_pid > 0 && server_durable == 0)
			warn("note: the daemon keeps nothing on disk, so "
			     "vs_redis sets it against a Redis that syncs "
			     "every write (use --durable)");
	}
	print_env();
	for (int i = 0; i < o.nclients; i++)
		for (int j = 0; j < o.ndepth; j++)
			if (run_scenario(target, dpid, o.clients[i], o.depth[j],
					 sh) < 0)
				goto out;
	status = 0;
out:
	cleanup();
	if (interrupted) {
		warn("interrupted");
		status = 130;
	}
	return status;
}
