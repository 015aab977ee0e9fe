/* SPDX-License-Identifier: MIT */
/* A crash test of the journal: clients allocate and free while the daemon
 * is killed, and what a restarted daemon serves is checked against what it
 * had acknowledged. */

/*
 * Each cycle starts 4 to 8 client threads on the running daemon, each with
 * a connection of its own.  A thread allocates (sizes of 4 KiB to 1 MiB,
 * some aligned, some top-down, some with an idempotency token, a few
 * session-scoped) and frees extents it owns, either one call at a time or
 * pipelined (several requests of several operations in flight).  Every
 * allocation carries a tag unique in the run, so an extent found later
 * names the operation that made it.  After 20 to 300 ms the daemon is
 * killed (SIGKILL; one cycle in eight SIGTERM and then SIGKILL a few
 * milliseconds later, a crash in the middle of a graceful stop).
 *
 * Each thread keeps a ledger: what was acknowledged (allocations with
 * their offset, length and handle; frees) and what was sent without an
 * answer (outcome unknown).  The contract under test is that an
 * acknowledged change is durable, so after `potad --check` has passed on
 * the state directory and the daemon has been restarted on it:
 *
 *   - every acknowledged allocation not acknowledged freed is there with
 *     the same offset, length, handle, tag and label, unless it was
 *     session-scoped (those are freed at start-up);
 *   - every acknowledged free is gone;
 *   - an extent not in the ledger as live must be an allocation whose
 *     outcome is unknown, found by its tag, of the size and alignment
 *     asked; nothing else may be there, no tag twice, no overlap;
 *   - an unknown allocation with a token, retried with the same token,
 *     returns the same extent if it was kept and a new one if not, and
 *     never makes a second one.
 *
 * The space's counters must agree with the list, and `potad --check` must
 * count at least the extents acknowledged live.  Unknown outcomes are then
 * folded into the ledger (present: live, absent: gone), the extents are
 * listed once more and must match exactly, and the next cycle starts on
 * the same daemon.  Each start gets its own checkpoint_bytes (64K to 64M),
 * so that many crashes land in or next to a checkpoint.
 *
 * What this cannot do: a killed process loses nothing the kernel already
 * has, so torn tails are rare here and power loss is not simulated: that
 * takes tests that damage the files on purpose.
 *
 * Usage: crash_test [DAEMON OPTION...], e.g. --journal-io sync; the
 * options are passed to every start of the daemon.  Environment:
 * POTAD_CRASH_CYCLES (default 50), POTAD_SEED (default: from the clock;
 * printed first, so a failure reproduces), POTAD_DAEMON (the binary; else
 * $abs_top_builddir/daemon/potad, else ./daemon/potad),
 * POTAD_CRASH_LOG_LEVEL (the daemon's, default info),
 * POTAD_CRASH_CHECKPOINT (checkpoint_bytes for every start, e.g. 64K;
 * default: one of 64K, 256K, 1M and 64M per start), POTAD_CRASH_KEEP
 * (keep the temporary directory after a pass).  Exits 0 on a pass, 1 on a
 * violation (with the seed, the cycle, the ledger entry and the daemon's
 * log; the state directory is kept), 77 when it cannot run.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <potad/client.h>

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)

#define SPACE "crash"
#define SPACE_SIZE "1G"
#define GRANULE (4 * KiB)

#define THREADS_MIN 4
#define THREADS_MAX 8
/* Live extents a thread aims to hold; beyond it, it frees more. */
#define LIVE_CAP 48
#define DEPTH_MAX 8 /* requests in flight on a pipelined connection */
#define BATCH_MAX 4 /* operations in one pipelined request */
#define KILL_MIN_MS 20
#define KILL_MAX_MS 300
/* Any wait on the daemon is bounded: a hang is a failure. */
#define CALL_TIMEOUT_MS 15000
#define START_TIMEOUT_MS 30000
#define CHECK_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 15000

/*
 * The ledger: one entry per allocation attempt, indexed by tag - 1.
 */
enum rstate {
	R_ALLOC_UNKNOWN, /* sent, no answer (the initial state) */
	R_LIVE,		 /* acknowledged, not freed */
	R_FREE_UNKNOWN,	 /* live, and a free of it sent without answer */
	R_FREED,	 /* free acknowledged */
	R_GONE,		 /* refused, never kept, or a session extent
			  * dropped at start-up */
};

static const char *const rstate_name[] = {
    "alloc-unknown", "live", "free-unknown", "freed", "gone",
};

struct rec {
	uint32_t tag;
	enum rstate st;
	/* What was asked. */
	uint64_t size, align;
	bool top_down, session, tokened;
	char label[16];
	char token[48];
	/* What was answered (R_LIVE, R_FREE_UNKNOWN, R_FREED). */
	uint64_t offset, length, handle;
	/* Where it came from, for messages. */
	int cycle, thread;
	uint64_t req_id;   /* the pipelined request, 0: a synchronous call */
	int free_cycle;	   /* when a free of it was sent, or -1 */
	uint64_t free_req; /* its pipelined request, 0: synchronous */
};

static pthread_mutex_t ledger_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec **recs;
static size_t nrecs, caprecs;
/* Entries settled for good (freed, or never kept) stand in recs as one of
 * these after each cycle, so that a long run keeps 8 bytes per operation. */
static struct rec dead_freed = {.st = R_FREED}, dead_gone = {.st = R_GONE};

static bool is_dead(const struct rec *r)
{
	return r == &dead_freed || r == &dead_gone;
}

/* Counters for the summary line. */
static atomic_ulong n_allocs, n_frees, n_refused;
static unsigned long n_unk_alloc, n_unk_alloc_kept, n_unk_free, n_unk_free_done,
    n_session_dropped, n_retry_same, n_retry_new, n_torn, n_sigterm, n_stale;

/*
 * The run.
 */
static uint64_t seed;
static int cycle = -1, ncycles;
static char **daemon_extra; /* options for the daemon, from our argv */
static int ndaemon_extra;
static const char *daemon_bin;
static const char *log_level = "info";
static char dir[128], sock_path[192], state_dir[192], conf_path[192],
    log_path[192];
static pid_t daemon_pid;
static int nstarts;
static uint32_t my_uid;
static atomic_bool killed; /* set just before the daemon is signalled */

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* splitmix64: small, and good enough to pick operations. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rnd_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + rnd(s) % (hi - lo + 1);
}

/*
 * Failing: a violation names the seed and the cycle, shows the daemon's
 * log and keeps the state directory.
 */
static void print_rec(FILE *f, const struct rec *r)
{
	fprintf(f,
		"  ledger: tag %" PRIu32 " %s; asked size %" PRIu64
		" align %" PRIu64 "%s%s%s%s label %s; made in cycle %d by "
		"thread %d",
		r->tag, rstate_name[r->st], r->size, r->align,
		r->top_down ? " top-down" : "", r->session ? " session" : "",
		r->tokened ? " token " : "", r->tokened ? r->token : "",
		r->label, r->cycle, r->thread);
	if (r->req_id)
		fprintf(f, " in pipelined request %" PRIu64, r->req_id);
	if (r->st != R_ALLOC_UNKNOWN && r->st != R_GONE)
		fprintf(f,
			"; acknowledged at offset %#" PRIx64 " length %" PRIu64
			" handle %#" PRIx64,
			r->offset, r->length, r->handle);
	if (r->free_cycle >= 0)
		fprintf(f, "; free sent in cycle %d", r->free_cycle);
	if (r->free_cycle >= 0 && r->free_req)
		fprintf(f, " in pipelined request %" PRIu64, r->free_req);
	fputc('\n', f);
}

static void print_ext(FILE *f, const char *what,
		      const struct potad_client_extent *e)
{
	fprintf(f,
		"  %s: offset %#" PRIx64 " length %" PRIu64 " handle %#" PRIx64
		" tag %" PRIu32 " label \"%s\" owner %" PRIu32 "%s%s\n",
		what, e->offset, e->length, e->handle, e->tag, e->label,
		e->owner_uid, e->session ? " session" : "",
		e->poisoned ? " poisoned" : "");
}

static void print_log_tail(FILE *f)
{
	char buf[8192];
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)sizeof(buf) - 1)
		lseek(fd, end - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	fprintf(f, "--- the end of the daemon's log (%s) ---\n%s%s", log_path,
		buf, buf[n - 1] == '\n' ? "" : "\n");
	fprintf(f, "--- end of log ---\n");
}

/* The state directory's files and sizes, to show with a failure. */
static void print_state_dir(FILE *f)
{
	DIR *d = opendir(state_dir);
	struct dirent *de;

	fprintf(f, "--- %s ---\n", state_dir);
	if (!d) {
		fprintf(f, "(cannot open it: %s)\n", strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			fprintf(f, "  %s: %s\n", de->d_name, strerror(errno));
		else
			fprintf(f, "  %s: %lld bytes\n", de->d_name,
				(long long)sb.st_size);
	}
	closedir(d);
}

static void reap_daemon(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = 0;
	}
}

static void repro_line(FILE *f)
{
	fprintf(f,
		"crash: reproduce with: POTAD_SEED=%" PRIu64
		" POTAD_CRASH_CYCLES=%d tests/crash_test",
		seed, ncycles);
	for (int i = 0; i < ndaemon_extra; i++)
		fprintf(f, " %s", daemon_extra[i]);
	fputc('\n', f);
}

/* Report a violation of the contract, with r and e (either may be NULL)
 * shown, and exit 1. */
static void __attribute__((format(printf, 3, 4), noreturn))
violation(const struct rec *r, const struct potad_client_extent *e,
	  const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "crash: FAIL: seed %" PRIu64 " cycle %d: ", seed,
		cycle);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (r)
		print_rec(stderr, r);
	if (e)
		print_ext(stderr, "found", e);
	reap_daemon();
	print_log_tail(stderr);
	print_state_dir(stderr);
	fprintf(stderr, "crash: state kept in %s (daemon log %s)\n", dir,
		log_path);
	repro_line(stderr);
	exit(1);
}

/* The test itself could not go on (not the daemon's fault). */
static void __attribute__((format(printf, 1, 2), noreturn))
broken_test(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "crash: ERROR: seed %" PRIu64 " cycle %d: ", seed,
		cycle);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	reap_daemon();
	exit(99);
}

static void __attribute__((format(printf, 1, 2), noreturn))
skip(const char *fmt, ...)
{
	va_list ap;

	printf("crash: SKIP: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	exit(77);
}

static struct rec *rec_new(int thread)
{
	struct rec *r = calloc(1, sizeof(*r));

	if (!r)
		broken_test("out of memory");
	pthread_mutex_lock(&ledger_lock);
	if (nrecs == caprecs) {
		size_t nc = caprecs ? caprecs * 2 : 4096;
		struct rec **p = realloc(recs, nc * sizeof(*p));

		if (!p)
			broken_test("out of memory");
		recs = p;
		caprecs = nc;
	}
	recs[nrecs++] = r;
	r->tag = (uint32_t)nrecs;
	pthread_mutex_unlock(&ledger_lock);
	r->st = R_ALLOC_UNKNOWN;
	r->cycle = cycle;
	r->thread = thread;
	r->free_cycle = -1;
	return r;
}

/* The ledger entry of a tag; NULL when unknown or settled. */
static struct rec *rec_by_tag(uint32_t tag)
{
	struct rec *r = tag >= 1 && tag <= nrecs ? recs[tag - 1] : NULL;

	return r && !is_dead(r) ? r : NULL;
}

/* Drop the entries of operations whose outcome can no longer change. */
static void settle(void)
{
	for (size_t i = 0; i < nrecs; i++) {
		struct rec *r = recs[i];

		if (is_dead(r) || (r->st != R_FREED && r->st != R_GONE))
			continue;
		recs[i] = r->st == R_FREED ? &dead_freed : &dead_gone;
		free(r);
	}
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Whether e is what r asked for; the reason in why if not. */
static bool ext_fits(const struct rec *r, const struct potad_client_extent *e,
		     char *why, size_t n)
{
	uint64_t align = r->align > GRANULE ? r->align : GRANULE;

	if (strcmp(e->space, "") != 0 && strcmp(e->space, SPACE) != 0)
		snprintf(why, n, "space \"%s\", expected \"%s\"", e->space,
			 SPACE);
	else if (e->tag != r->tag)
		snprintf(why, n, "tag %" PRIu32 ", expected %" PRIu32, e->tag,
			 r->tag);
	else if (e->length != round_up(r->size, GRANULE))
		snprintf(why, n, "length %" PRIu64 ", expected %" PRIu64,
			 e->length, round_up(r->size, GRANULE));
	else if (e->offset % align)
		snprintf(why, n,
			 "offset %#" PRIx64 " is not a multiple of %" PRIu64,
			 e->offset, align);
	else if (strcmp(e->label, r->label) != 0)
		snprintf(why, n, "label \"%s\", expected \"%s\"", e->label,
			 r->label);
	else if (e->owner_uid != my_uid)
		snprintf(why, n, "owner uid %" PRIu32 ", expected %" PRIu32,
			 e->owner_uid, my_uid);
	else if (e->session != r->session)
		snprintf(why, n, "session %d, expected %d", e->session,
			 r->session);
	else
		return true;
	return false;
}

/* Whether e is exactly the extent acknowledged for r. */
static bool ext_same(const struct rec *r, const struct potad_client_extent *e,
		     char *why, size_t n)
{
	if (!ext_fits(r, e, why, n))
		return false;
	if (e->offset != r->offset || e->length != r->length ||
	    e->handle != r->handle) {
		snprintf(why, n,
			 "offset %#" PRIx64 " length %" PRIu64
			 " handle %#" PRIx64 ", acknowledged offset %#" PRIx64
			 " length %" PRIu64 " handle %#" PRIx64,
			 e->offset, e->length, e->handle, r->offset, r->length,
			 r->handle);
		return false;
	}
	return true;
}

/*
 * Client threads.
 */
struct op {
	struct rec *r;
	bool is_free;
};

struct req {
	struct op ops[BATCH_MAX];
	int n;
	uint64_t id;
};

struct worker {
	int id;
	pthread_t thread;
	uint64_t rng;
	bool pipelined;
	int depth, batch;
	/* Live extents it may free; others' are not its to touch. */
	struct rec **own;
	size_t nown, capown;
	struct potad_client *c;
	/* A violation seen before the kill, reported by the main thread. */
	char err[1024];
	const struct rec *err_rec;
	unsigned long ops;
};

static pthread_barrier_t ready;

static void own_add(struct worker *w, struct rec *r)
{
	if (w->nown == w->capown) {
		size_t nc = w->capown ? w->capown * 2 : 64;
		struct rec **p = realloc(w->own, nc * sizeof(*p));

		if (!p)
			broken_test("out of memory");
		w->own = p;
		w->capown = nc;
	}
	w->own[w->nown++] = r;
}

/* Take a random extent to free, or NULL when it should allocate. */
static struct rec *pick_free(struct worker *w)
{
	size_t i;
	struct rec *r;

	if (!w->nown || rnd(&w->rng) % LIVE_CAP >= w->nown)
		return NULL;
	i = rnd(&w->rng) % w->nown;
	r = w->own[i];
	w->own[i] = w->own[--w->nown];
	return r;
}

static void fill_alloc(struct worker *w, struct rec *r,
		       struct potad_client_alloc_args *a)
{
	uint64_t x = rnd(&w->rng) % 100;

	/* Half of the sizes whole units, half any byte count. */
	if (rnd(&w->rng) & 1)
		r->size = rnd_range(&w->rng, 1, 256) * GRANULE;
	else
		r->size = rnd_range(&w->rng, 4 * KiB, 1 * MiB);
	if (x < 25)
		r->align = UINT64_C(8192) << rnd_range(&w->rng, 0, 7);
	r->top_down = rnd(&w->rng) % 5 == 0;
	if (x >= 25 && x < 30)
		r->session = true;
	else if (rnd(&w->rng) % 10 < 3)
		r->tokened = true;
	snprintf(r->label, sizeof(r->label), "crash-t%d", w->id);
	if (r->tokened)
		snprintf(r->token, sizeof(r->token),
			 "crash-%016" PRIx64 "-%" PRIu32, seed, r->tag);
	memset(a, 0, sizeof(*a));
	a->space = SPACE;
	a->size = r->size;
	a->align = r->align;
	a->flags = (r->top_down ? POTAD_CLIENT_ALLOC_TOPDOWN : 0) |
		   (r->session ? POTAD_CLIENT_ALLOC_SESSION : 0);
	a->tag = r->tag;
	a->label = r->label;
	a->token = r->tokened ? r->token : NULL;
}

static void __attribute__((format(printf, 3, 4)))
worker_fail(struct worker *w, const struct rec *r, const char *fmt, ...)
{
	va_list ap;

	if (w->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	w->err_rec = r;
}

/* A failure of the connection is expected only after the kill. */
static bool conn_failed(struct worker *w, int rc, const char *what)
{
	/* The error a call returns may be another than the one that broke
	 * the connection (-EPIPE on writing, -ECONNRESET found reading). */
	if (rc >= 0 || !potad_client_error(w->c) ||
	    (rc != potad_client_error(w->c) && rc != -EPIPE &&
	     rc != -ECONNRESET && rc != -EPROTO && rc != -EMSGSIZE &&
	     rc != -ETIMEDOUT))
		return false;
	if (!atomic_load(&killed))
		worker_fail(w, NULL,
			    "thread %d: the connection failed before the "
			    "daemon was killed, during %s: %s (%d)",
			    w->id, what, potad_client_strerror(rc), rc);
	return true;
}

/* The answer to an alloc of r: an extent (rc 0) or a refusal. */
static void alloc_answered(struct worker *w, struct rec *r, int rc,
			   const char *msg, const struct potad_client_extent *e)
{
	char why[256];

	if (rc == -ENOSPC) {
		r->st = R_GONE;
		atomic_fetch_add(&n_refused, 1);
		return;
	}
	if (rc < 0) {
		r->st = R_GONE;
		worker_fail(w, r, "alloc refused: %s (%d): \"%s\"",
			    potad_client_strerror(rc), rc, msg);
		return;
	}
	if (!e) {
		worker_fail(w, r, "alloc answered OK without an extent");
		return;
	}
	if (!ext_fits(r, e, why, sizeof(why))) {
		worker_fail(w, r, "alloc answered an extent with %s", why);
		return;
	}
	r->offset = e->offset;
	r->length = e->length;
	r->handle = e->handle;
	r->st = R_LIVE;
	own_add(w, r);
	atomic_fetch_add(&n_allocs, 1);
}

static void free_answered(struct worker *w, struct rec *r, int rc,
			  const char *msg, const struct potad_client_extent *e)
{
	if (rc < 0) {
		r->st = R_LIVE;
		worker_fail(w, r,
			    "free of a live extent refused: %s (%d): "
			    "\"%s\"",
			    potad_client_strerror(rc), rc, msg);
		return;
	}
	if (e && e->handle != r->handle) {
		worker_fail(w, r,
			    "free answered handle %#" PRIx64
			    ", expected %#" PRIx64,
			    e->handle, r->handle);
		return;
	}
	r->st = R_FREED;
	atomic_fetch_add(&n_frees, 1);
}

/* One call at a time until the connection fails. */
static void run_sync(struct worker *w)
{
	while (!w->err[0] && !atomic_load(&killed)) {
		struct potad_client_extent *e = NULL;
		struct rec *r = pick_free(w);
		int rc;

		w->ops++;
		if (r) {
			r->st = R_FREE_UNKNOWN;
			r->free_cycle = cycle;
			r->free_req = 0;
			rc = potad_client_free(w->c, SPACE, r->handle, &e);
			if (conn_failed(w, rc, "a free")) {
				potad_client_free_result(e);
				return;
			}
			free_answered(w, r, rc, potad_client_errmsg(w->c), e);
		} else {
			struct potad_client_alloc_args a;

			r = rec_new(w->id);
			fill_alloc(w, r, &a);
			rc = potad_client_alloc(w->c, &a, &e);
			if (conn_failed(w, rc, "an alloc")) {
				potad_client_free_result(e);
				return;
			}
			alloc_answered(w, r, rc, potad_client_errmsg(w->c), e);
		}
		potad_client_free_result(e);
	}
}

/* Several requests of several operations in flight; answers come back in
 * the order sent. */
static void run_pipelined(struct worker *w)
{
	struct req fifo[DEPTH_MAX];
	unsigned head = 0, n = 0;
	bool sending = true;

	while (!w->err[0]) {
		if (atomic_load(&killed))
			sending = false;
		while (sending && n < (unsigned)w->depth) {
			struct req *q = &fifo[(head + n) % DEPTH_MAX];
			int k = (int)rnd_range(&w->rng, 1, w->batch), rc;

			q->n = 0;
			for (int i = 0; i < k; i++) {
				struct rec *r = pick_free(w);
				struct op *o = &q->ops[q->n];

				if (r) {
					r->st = R_FREE_UNKNOWN;
					r->free_cycle = cycle;
					rc = potad_client_queue_free(
					    w->c, SPACE, r->handle);
				} else {
					struct potad_client_alloc_args a;

					r = rec_new(w->id);
					fill_alloc(w, r, &a);
					rc = potad_client_queue_alloc(w->c, &a);
				}
				o->r = r;
				o->is_free = r->st == R_FREE_UNKNOWN;
				q->n++;
				if (rc < 0) {
					worker_fail(w, r,
						    "queueing an operation: "
						    "%s (%d)",
						    potad_client_strerror(rc),
						    rc);
					return;
				}
			}
			q->id = 0;
			rc = potad_client_send(w->c, &q->id);
			/* Sent or not, its operations stay unknown unless
			 * answered; ids are only known once sent. */
			for (int i = 0; i < q->n; i++) {
				if (q->ops[i].is_free)
					q->ops[i].r->free_req = q->id;
				else
					q->ops[i].r->req_id = q->id;
			}
			w->ops += (unsigned long)q->n;
			if (rc < 0) {
				potad_client_queue_discard(w->c);
				if (!conn_failed(w, rc, "sending a request"))
					worker_fail(w, NULL, "send: %s (%d)",
						    potad_client_strerror(rc),
						    rc);
				/* Answers to earlier requests may have come
				 * before the failure: read them. */
				sending = false;
				break;
			}
			n++;
		}
		if (!n)
			return;

		struct potad_client_reply *rep = NULL;
		struct req *q = &fifo[head];
		int rc = potad_client_recv(w->c, CALL_TIMEOUT_MS, &rep);

		if (rc < 0) {
			if (rc == -ETIMEDOUT && !atomic_load(&killed))
				worker_fail(w, NULL,
					    "thread %d: no answer to request "
					    "%" PRIu64 " within %d ms",
					    w->id, q->id, CALL_TIMEOUT_MS);
			else if (!conn_failed(w, rc, "a pipelined request") &&
				 rc != -ETIMEDOUT)
				worker_fail(w, NULL, "recv: %s (%d)",
					    potad_client_strerror(rc), rc);
			return;
		}
		if (rep->id != q->id) {
			worker_fail(w, q->ops[0].r,
				    "answer to request %" PRIu64
				    " where %" PRIu64 " was expected",
				    rep->id, q->id);
			potad_client_free_result(rep);
			return;
		}
		if (rep->status == 0 && rep->n_results != (size_t)q->n) {
			worker_fail(w, q->ops[0].r,
				    "request %" PRIu64 ": %zu results for %d "
				    "operations",
				    q->id, rep->n_results, q->n);
			potad_client_free_result(rep);
			return;
		}
		for (int i = 0; i < q->n; i++) {
			struct op *o = &q->ops[i];
			int st =
			    rep->status ? rep->status : rep->results[i].status;
			const char *msg = rep->status ? rep->message
						      : rep->results[i].message;
			const struct potad_client_extent *e =
			    rep->status ? NULL : rep->results[i].extent;

			if (o->is_free)
				free_answered(w, o->r, st, msg, e);
			else
				alloc_answered(w, o->r, st, msg, e);
		}
		potad_client_free_result(rep);
		head = (head + 1) % DEPTH_MAX;
		n--;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct potad_client_hello *h = NULL;
	int rc;

	rc = potad_client_connect(sock_path, &w->c);
	if (rc < 0) {
		worker_fail(w, NULL, "thread %d: connect %s: %s", w->id,
			    sock_path, potad_client_strerror(rc));
		w->c = NULL;
	} else {
		potad_client_set_timeout(w->c, CALL_TIMEOUT_MS);
		rc = potad_client_hello(w->c, "crash_test", &h);
		if (rc < 0)
			worker_fail(w, NULL, "thread %d: hello: %s", w->id,
				    potad_client_strerror(rc));
		potad_client_free_result(h);
	}
	pthread_barrier_wait(&ready);
	if (w->c && !w->err[0]) {
		if (w->pipelined)
			run_pipelined(w);
		else
			run_sync(w);
	}
	if (w->c)
		potad_client_close(w->c);
	w->c = NULL;
	return NULL;
}

/*
 * The daemon.
 */
static const char *choose(uint64_t *s, const char *const *v, size_t n)
{
	return v[rnd(s) % n];
}

/* A configuration for this start: the same space always, and a random
 * checkpoint threshold and preallocation step, so that some runs
 * checkpoint often and crash in the middle of it. */
static void write_config(uint64_t *s)
{
	static const char *const ckpt[] = {"64K", "256K", "1M", "64M"};
	static const char *const chunk[] = {"1M", "8M"};
	const char *fixed = getenv("POTAD_CRASH_CHECKPOINT");
	const char *ck = choose(s, ckpt, 4), *ch = choose(s, chunk, 2);
	FILE *f = fopen(conf_path, "w");

	if (!f)
		broken_test("%s: %s", conf_path, strerror(errno));
	fprintf(f,
		"[daemon]\ncheckpoint_bytes = %s\njournal_chunk = %s\n\n"
		"[space " SPACE "]\nkind = range\nsize = " SPACE_SIZE
		"\ngranule = 4K\nallow = all\n",
		fixed && *fixed ? fixed : ck, ch);
	fclose(f);
}

static void log_note(const char *fmt, ...)
{
	int fd =
	    open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	va_list ap;

	if (fd < 0)
		return;
	va_start(ap, fmt);
	vdprintf(fd, fmt, ap);
	va_end(ap);
	close(fd);
}

/* Start the daemon on the state directory and wait, bounded, for hello;
 * returns a connection to it. */
static struct potad_client *daemon_start(uint64_t *s)
{
	long deadline = now_ms() + START_TIMEOUT_MS;
	struct potad_client *c = NULL;
	char *argv[32];
	int argc = 0, status;

	write_config(s);
	log_note("=== crash_test: start %d, before cycle %d (config: ",
		 ++nstarts, cycle + 1);
	{
		char buf[512];
		int fd = open(conf_path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = '\0';
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		log_note("%s) ===\n", buf);
	}
	argv[argc++] = (char *)"potad";
	argv[argc++] = (char *)"--foreground";
	argv[argc++] = (char *)"--socket";
	argv[argc++] = sock_path;
	argv[argc++] = (char *)"--state-dir";
	argv[argc++] = state_dir;
	argv[argc++] = (char *)"--config";
	argv[argc++] = conf_path;
	argv[argc++] = (char *)"--log-level";
	argv[argc++] = (char *)log_level;
	for (int i = 0; i < ndaemon_extra && argc < 31; i++)
		argv[argc++] = daemon_extra[i];
	argv[argc] = NULL;

	daemon_pid = fork();
	if (daemon_pid < 0)
		broken_test("fork: %s", strerror(errno));
	if (daemon_pid == 0) {
		int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		signal(SIGPIPE, SIG_DFL);
		execv(daemon_bin, argv);
		dprintf(2, "exec %s: %s\n", daemon_bin, strerror(errno));
		_exit(127);
	}
	for (;;) {
		struct potad_client_hello *h = NULL;
		int rc = potad_client_connect(sock_path, &c);

		if (rc == 0) {
			potad_client_set_timeout(c, CALL_TIMEOUT_MS);
			rc = potad_client_hello(c, "crash_test", &h);
			if (rc == 0) {
				bool durable = h->durable;

				my_uid = h->uid;
				potad_client_free_result(h);
				if (!durable)
					violation(
					    NULL, NULL,
					    "hello says durable: false: "
					    "this build of potad keeps no "
					    "journal, so there is nothing "
					    "to crash-test");
				return c;
			}
			potad_client_close(c);
			c = NULL;
		}
		if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
			daemon_pid = 0;
			violation(NULL, NULL,
				  "the daemon exited before serving (%s %d) "
				  "on the state directory the last crash left",
				  WIFEXITED(status) ? "exit status" : "signal",
				  WIFEXITED(status) ? WEXITSTATUS(status)
						    : WTERMSIG(status));
		}
		if (now_ms() > deadline)
			violation(
			    NULL, NULL,
			    "the daemon did not answer hello on %s within "
			    "%d ms",
			    sock_path, START_TIMEOUT_MS);
		usleep(5000);
	}
}

/* Say which journal writer the daemon chose (its info line at start-up),
 * so that a run meant for io_uring shows it did not fall back. */
static void report_writer(void)
{
	static const char *const names[] = {"io_uring writer",
					    "pwrite+fdatasync writer"};
	char buf[16384];
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	const char *found = NULL;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strstr(buf, names[i]))
			found = names[i];
	printf("crash: the daemon's journal writer: %s\n",
	       found ? found
		     : "not in its log (POTAD_CRASH_LOG_LEVEL below info?)");
}

/* Crash the daemon: SIGKILL, or (sigterm) SIGTERM and then SIGKILL a few
 * milliseconds later, in the middle of a graceful stop. */
static void daemon_crash(bool sigterm, unsigned term_ms)
{
	int status;

	atomic_store(&killed, true);
	if (sigterm) {
		kill(daemon_pid, SIGTERM);
		usleep(term_ms * 1000);
	}
	kill(daemon_pid, SIGKILL);
	if (waitpid(daemon_pid, &status, 0) != daemon_pid)
		broken_test("waitpid %d: %s", (int)daemon_pid, strerror(errno));
	daemon_pid = 0;
	if (!sigterm && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		violation(NULL, NULL,
			  "the daemon exited (%s %d) before it was killed",
			  WIFEXITED(status) ? "exit status" : "signal",
			  WIFEXITED(status) ? WEXITSTATUS(status)
					    : WTERMSIG(status));
	if (sigterm && WIFEXITED(status) && WEXITSTATUS(status) != 0)
		violation(NULL, NULL,
			  "after SIGTERM the daemon exited with status %d",
			  WEXITSTATUS(status));
}

/* A JSON member's value text: "key": VALUE, or NULL. */
static const char *json_value(const char *js, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(js, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p++ != ':')
		return NULL;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	return p;
}

/* potad --check on the state directory the crash left: it must pass.
 * Returns the extents it counted. */
static uint64_t run_check(void)
{
	char out[8192];
	size_t len = 0;
	long deadline = now_ms() + CHECK_TIMEOUT_MS;
	const char *v;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		broken_test("pipe: %s", strerror(errno));
	log_note("=== crash_test: potad --check after cycle %d ===\n", cycle);
	pid = fork();
	if (pid < 0)
		broken_test("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		if (fd >= 0)
			dup2(fd, 2);
		execl(daemon_bin, "potad", "--check", "--state-dir", state_dir,
		      "--json", (char *)NULL);
		dprintf(2, "exec %s: %s\n", daemon_bin, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			violation(NULL, NULL,
				  "potad --check did not finish within %d ms",
				  CHECK_TIMEOUT_MS);
		}
		n = read(p[0], out + len, sizeof(out) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(out) - 1)
			break;
	}
	close(p[0]);
	out[len] = '\0';
	waitpid(pid, &status, 0);
	log_note("%s%s", out, len && out[len - 1] == '\n' ? "" : "\n");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		violation(
		    NULL, NULL,
		    "potad --check --state-dir %s --json: %s %d, "
		    "expected exit status 0; it printed: %s",
		    state_dir, WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		    out);
	v = json_value(out, "ok");
	if (!v || strncmp(v, "true", 4) != 0)
		violation(NULL, NULL,
			  "potad --check exited 0 but did not print "
			  "\"ok\":true: %s",
			  out);
	v = json_value(out, "torn");
	if (v && strncmp(v, "null", 4) != 0)
		n_torn++;
	v = json_value(out, "extents");
	return v ? strtoull(v, NULL, 10) : 0;
}

/* SIGTERM, and expect exit status 0 within a bound. */
static void daemon_stop(void)
{
	long deadline = now_ms() + STOP_TIMEOUT_MS;
	int status;

	kill(daemon_pid, SIGTERM);
	for (;;) {
		pid_t p = waitpid(daemon_pid, &status, WNOHANG);

		if (p == daemon_pid)
			break;
		if (now_ms() > deadline)
			violation(NULL, NULL,
				  "the daemon did not stop within %d ms of "
				  "SIGTERM",
				  STOP_TIMEOUT_MS);
		usleep(5000);
	}
	daemon_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		violation(NULL, NULL,
			  "after SIGTERM: expected exit status 0, got %s %d",
			  WIFEXITED(status) ? "exit status" : "signal",
			  WIFEXITED(status) ? WEXITSTATUS(status)
					    : WTERMSIG(status));
}

/*
 * Verifying what the restarted daemon serves.
 */
static struct potad_client_extent *list_extents(struct potad_client *c, int *n)
{
	struct potad_client_extent *v = NULL;
	uint64_t used = 0;
	struct potad_client_space *sp = NULL;
	int rc;

	*n = potad_client_list_extents(c, SPACE, true, my_uid, NULL, &v);
	if (*n < 0)
		violation(NULL, NULL, "listing the extents of %s: %s (\"%s\")",
			  SPACE, potad_client_strerror(*n),
			  potad_client_errmsg(c));
	for (int i = 0; i < *n; i++) {
		used += v[i].length;
		if (i && v[i].offset < v[i - 1].offset + v[i - 1].length) {
			fprintf(stderr, "crash: overlapping extents:\n");
			print_ext(stderr, "first", &v[i - 1]);
			violation(rec_by_tag(v[i].tag), &v[i],
				  "extents overlap or are out of address "
				  "order: %#" PRIx64 "+%" PRIu64
				  " and %#" PRIx64 "+%" PRIu64,
				  v[i - 1].offset, v[i - 1].length, v[i].offset,
				  v[i].length);
		}
	}
	/* The space's counters must agree with its extents. */
	rc = potad_client_space_stat(c, SPACE, false, &sp);
	if (rc < 0)
		violation(NULL, NULL, "stat %s: %s (\"%s\")", SPACE,
			  potad_client_strerror(rc), potad_client_errmsg(c));
	if (sp->extents != (uint64_t)*n || sp->used_bytes != used ||
	    sp->free_bytes + sp->used_bytes != sp->size)
		violation(NULL, NULL,
			  "%s: stat says %" PRIu64 " extents, %" PRIu64
			  " bytes used, %" PRIu64 " free of %" PRIu64
			  "; the list has %d extents of %" PRIu64 " bytes",
			  SPACE, sp->extents, sp->used_bytes, sp->free_bytes,
			  sp->size, *n, used);
	potad_client_free_result(sp);
	return v;
}

/* Index the listed extents by tag: seen[tag - 1] = position + 1. */
static int *index_tags(struct potad_client_extent *v, int n)
{
	int *seen = calloc(nrecs ? nrecs : 1, sizeof(*seen));

	if (!seen)
		broken_test("out of memory");
	for (int i = 0; i < n; i++) {
		const struct rec *r = rec_by_tag(v[i].tag);

		if (v[i].tag >= 1 && v[i].tag <= nrecs &&
		    is_dead(recs[v[i].tag - 1]))
			violation(NULL, &v[i],
				  "an extent with tag %" PRIu32 ", which was "
				  "%s in an earlier cycle",
				  v[i].tag,
				  recs[v[i].tag - 1] == &dead_freed
				      ? "acknowledged freed"
				      : "refused or not kept");
		if (!r)
			violation(NULL, &v[i],
				  "an extent with tag %" PRIu32
				  ", which no operation of this run made",
				  v[i].tag);
		if (seen[r->tag - 1]) {
			print_ext(stderr, "first", &v[seen[r->tag - 1] - 1]);
			violation(r, &v[i], "two extents with tag %" PRIu32,
				  r->tag);
		}
		seen[r->tag - 1] = i + 1;
	}
	return seen;
}

/* Retry a tokened allocation; e (may be NULL) is the extent the daemon
 * kept from the first attempt. */
static void retry_token(struct potad_client *c, struct rec *r,
			const struct potad_client_extent *e)
{
	struct potad_client_alloc_args a = {
	    .space = SPACE,
	    .size = r->size,
	    .align = r->align,
	    .flags = r->top_down ? POTAD_CLIENT_ALLOC_TOPDOWN : 0,
	    .tag = r->tag,
	    .label = r->label,
	    .token = r->token,
	};
	struct potad_client_extent *got = NULL;
	char why[256];
	int rc = potad_client_alloc(c, &a, &got);

	if (rc == -ENOSPC && !e) {
		r->st = R_GONE;
		return;
	}
	if (rc < 0)
		violation(r, e, "retry with token %s: %s (\"%s\")", r->token,
			  potad_client_strerror(rc), potad_client_errmsg(c));
	if (e) {
		if (got->handle != e->handle || got->offset != e->offset ||
		    got->length != e->length) {
			print_ext(stderr, "the retry returned", got);
			violation(r, e,
				  "retry with token %s returned another "
				  "extent than the one kept",
				  r->token);
		}
		r->st = R_LIVE;
		n_retry_same++;
	} else {
		if (!ext_fits(r, got, why, sizeof(why)))
			violation(r, got, "retry with token %s: %s", r->token,
				  why);
		r->offset = got->offset;
		r->length = got->length;
		r->handle = got->handle;
		r->st = R_LIVE;
		n_retry_new++;
	}
	potad_client_free_result(got);
}

/*
 * First pass after a restart: acknowledged outcomes must hold; unknown
 * ones are resolved (and tokened ones retried).
 */
static void verify_and_fold(struct potad_client *c, uint64_t check_extents)
{
	struct potad_client_extent *v;
	uint64_t live_before = 0;
	char why[256];
	int n, *seen;

	v = list_extents(c, &n);
	seen = index_tags(v, n);
	for (size_t i = 0; i < nrecs; i++) {
		struct rec *r = recs[i];
		const struct potad_client_extent *e =
		    seen[i] ? &v[seen[i] - 1] : NULL;

		if (is_dead(r))
			continue;
		/* Session extents may be freed by a graceful stop. */
		if (r->st == R_LIVE && !r->session)
			live_before++;
		switch (r->st) {
		case R_LIVE:
			if (r->session) {
				if (e)
					violation(r, e,
						  "a session extent survived "
						  "the restart");
				r->st = R_GONE;
				n_session_dropped++;
				break;
			}
			if (!e)
				violation(r, NULL,
					  "an acknowledged allocation is "
					  "missing after the restart");
			if (!ext_same(r, e, why, sizeof(why)))
				violation(r, e,
					  "an acknowledged allocation came "
					  "back different: %s",
					  why);
			break;
		case R_FREED:
		case R_GONE:
			if (e)
				violation(r, e,
					  "an extent that is %s is there after "
					  "the restart",
					  r->st == R_FREED
					      ? "acknowledged freed"
					      : "refused or not kept");
			break;
		case R_FREE_UNKNOWN:
			n_unk_free++;
			if (e && r->session)
				violation(r, e,
					  "a session extent survived the "
					  "restart");
			if (e && !ext_same(r, e, why, sizeof(why)))
				violation(r, e,
					  "an extent whose free is unknown "
					  "came back different: %s",
					  why);
			if (e)
				r->st = R_LIVE;
			else
				r->st = r->session ? R_GONE : R_FREED;
			n_unk_free_done += !e;
			break;
		case R_ALLOC_UNKNOWN:
			n_unk_alloc++;
			if (e && r->session)
				violation(r, e,
					  "a session extent survived the "
					  "restart");
			if (e && !ext_fits(r, e, why, sizeof(why)))
				violation(r, e,
					  "an allocation whose outcome is "
					  "unknown came back with %s",
					  why);
			if (e) {
				r->offset = e->offset;
				r->length = e->length;
				r->handle = e->handle;
				n_unk_alloc_kept++;
			}
			if (r->tokened) {
				retry_token(c, r, e);
			} else {
				r->st = e ? R_LIVE : R_GONE;
			}
			break;
		}
	}
	if (check_extents < live_before)
		violation(NULL, NULL,
			  "potad --check counted %" PRIu64
			  " extents, but %" PRIu64
			  " acknowledged extents were live at the crash",
			  check_extents, live_before);
	free(seen);
	potad_client_free_result(v);
}

/* A few live tokened extents: a retry must return them, not a copy. */
static void retry_live_tokens(struct potad_client *c, uint64_t *s)
{
	struct rec *pick[4];
	size_t npick = 0, seen = 0;

	/* Reservoir sampling over the live tokened extents. */
	for (size_t i = 0; i < nrecs; i++) {
		if (is_dead(recs[i]) || recs[i]->st != R_LIVE ||
		    !recs[i]->tokened)
			continue;
		if (npick < 4)
			pick[npick++] = recs[i];
		else if (rnd(s) % (seen + 1) < 4)
			pick[rnd(s) % 4] = recs[i];
		seen++;
	}
	for (size_t k = 0; k < npick; k++) {
		struct rec *r = pick[k];
		struct potad_client_extent e;

		memset(&e, 0, sizeof(e));
		e.offset = r->offset;
		e.length = r->length;
		e.handle = r->handle;
		retry_token(c, r, &e);
	}
}

/* Handles of extents freed before the restart (acknowledged, or dropped
 * at start-up as session extents) must stay stale: a free by one of them
 * must be refused, not free whatever extent now has that slot. */
static void free_stale_handles(struct potad_client *c, uint64_t *s)
{
	struct rec *pick[8];
	size_t npick = 0, seen = 0;

	for (size_t i = 0; i < nrecs; i++) {
		struct rec *r = recs[i];

		if (is_dead(r) || !r->handle ||
		    (r->st != R_FREED && r->st != R_GONE))
			continue;
		if (npick < 8)
			pick[npick++] = r;
		else if (rnd(s) % (seen + 1) < 8)
			pick[rnd(s) % 8] = r;
		seen++;
	}
	for (size_t k = 0; k < npick; k++) {
		struct potad_client_extent *e = NULL;
		int rc = potad_client_free(c, SPACE, pick[k]->handle, &e);

		if (rc == 0) {
			violation(pick[k], e,
				  "a free by handle %#" PRIx64
				  ", freed before the restart, succeeded after "
				  "it",
				  pick[k]->handle);
		}
		if (rc == potad_client_error(c))
			violation(pick[k], NULL,
				  "a free by a stale handle broke the "
				  "connection: %s",
				  potad_client_strerror(rc));
		n_stale++;
	}
}

/* Second pass: with nothing unknown, the daemon's extents must be exactly
 * the ledger's live ones.  Returns how many there are. */
static int verify_exact(struct potad_client *c, const char *when)
{
	struct potad_client_extent *v;
	char why[256];
	int n, *seen;

	v = list_extents(c, &n);
	seen = index_tags(v, n);
	for (size_t i = 0; i < nrecs; i++) {
		struct rec *r = recs[i];
		const struct potad_client_extent *e =
		    seen[i] ? &v[seen[i] - 1] : NULL;

		if (is_dead(r))
			continue;
		if (r->st == R_LIVE) {
			if (!e)
				violation(r, NULL,
					  "%s: a live extent is missing", when);
			if (!ext_same(r, e, why, sizeof(why)))
				violation(r, e, "%s: %s", when, why);
		} else if (e) {
			violation(r, e, "%s: an extent that is %s is there",
				  when, rstate_name[r->st]);
		}
	}
	free(seen);
	potad_client_free_result(v);
	return n;
}

/*
 * One cycle: clients on the running daemon, a crash, the check, a restart
 * and the verification.  Returns the connection to the new daemon.
 */
static struct potad_client *run_cycle(struct potad_client *c)
{
	uint64_t s =
	    seed ^ (UINT64_C(0x5851f42d4c957f2d) * (uint64_t)(cycle + 1));
	int nthreads = (int)rnd_range(&s, THREADS_MIN, THREADS_MAX);
	struct worker w[THREADS_MAX];
	unsigned kill_ms = (unsigned)rnd_range(&s, KILL_MIN_MS, KILL_MAX_MS);
	bool sigterm = rnd(&s) % 8 == 0;
	unsigned term_ms = (unsigned)rnd_range(&s, 0, 5);
	unsigned long a0 = atomic_load(&n_allocs), f0 = atomic_load(&n_frees);
	unsigned long u0 = n_unk_alloc, k0 = n_unk_alloc_kept, ops = 0;
	unsigned long t0 = n_torn;
	uint64_t check_extents;
	int nlive;
	size_t wi = 0;

	memset(w, 0, sizeof(w));
	for (int i = 0; i < nthreads; i++) {
		w[i].id = i;
		w[i].rng = rnd(&s);
		w[i].pipelined = rnd(&s) % 2;
		w[i].depth = (int)rnd_range(&s, 2, DEPTH_MAX);
		w[i].batch = (int)rnd_range(&s, 1, BATCH_MAX);
	}
	/* Share the live extents out; each thread frees only its own. */
	for (size_t i = 0; i < nrecs; i++)
		if (!is_dead(recs[i]) && recs[i]->st == R_LIVE)
			own_add(&w[wi++ % (size_t)nthreads], recs[i]);

	atomic_store(&killed, false);
	if (pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1))
		broken_test("pthread_barrier_init failed");
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]))
			broken_test("pthread_create failed");
	pthread_barrier_wait(&ready);
	usleep(kill_ms * 1000);
	daemon_crash(sigterm, term_ms);
	n_sigterm += sigterm;
	for (int i = 0; i < nthreads; i++)
		pthread_join(w[i].thread, NULL);
	pthread_barrier_destroy(&ready);
	potad_client_close(c);
	for (int i = 0; i < nthreads; i++) {
		ops += w[i].ops;
		free(w[i].own);
	}
	for (int i = 0; i < nthreads; i++)
		if (w[i].err[0])
			violation(w[i].err_rec, NULL, "thread %d (%s): %s", i,
				  w[i].pipelined ? "pipelined" : "synchronous",
				  w[i].err);

	check_extents = run_check();
	c = daemon_start(&s);
	verify_and_fold(c, check_extents);
	retry_live_tokens(c, &s);
	free_stale_handles(c, &s);
	nlive = verify_exact(c, "after folding the unknown outcomes");
	settle();
	printf("cycle %d: %d threads, %s after %u ms, %lu ops sent, "
	       "%lu allocs and %lu frees acknowledged, %lu allocs unknown "
	       "(%lu kept)%s; %d extents live\n",
	       cycle, nthreads, sigterm ? "SIGTERM+SIGKILL" : "SIGKILL",
	       kill_ms, ops, atomic_load(&n_allocs) - a0,
	       atomic_load(&n_frees) - f0, n_unk_alloc - u0,
	       n_unk_alloc_kept - k0, n_torn > t0 ? ", torn tail" : "", nlive);
	return c;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void at_exit(void)
{
	reap_daemon();
}

int main(int argc, char **argv)
{
	static char bin[4096];
	const char *e, *tmp = getenv("TMPDIR");
	struct potad_client *c;
	long t_start = now_ms();
	uint64_t s;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	daemon_extra = argv + 1;
	ndaemon_extra = argc - 1;

	e = getenv("POTAD_SEED");
	seed = e && *e ? strtoull(e, NULL, 0)
		       : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	e = getenv("POTAD_CRASH_CYCLES");
	ncycles = e && *e ? atoi(e) : 50;
	e = getenv("POTAD_CRASH_LOG_LEVEL");
	if (e && *e)
		log_level = e;
	e = getenv("POTAD_DAEMON");
	if (e && *e) {
		daemon_bin = e;
	} else {
		e = getenv("abs_top_builddir");
		snprintf(bin, sizeof(bin), "%s/daemon/potad",
			 e && *e ? e : ".");
		daemon_bin = bin;
	}
	printf("crash: seed %" PRIu64 ", %d cycles, daemon %s", seed, ncycles,
	       daemon_bin);
	for (int i = 0; i < ndaemon_extra; i++)
		printf(" %s", daemon_extra[i]);
	putchar('\n');
	if (access(daemon_bin, X_OK) < 0)
		skip("daemon binary %s: %s (set POTAD_DAEMON)", daemon_bin,
		     strerror(errno));

	snprintf(dir, sizeof(dir), "%s/potad-crash.XXXXXX",
		 tmp && *tmp && strlen(tmp) < 48 ? tmp : "/tmp");
	if (!mkdtemp(dir))
		skip("mkdtemp %s: %s", dir, strerror(errno));
	snprintf(sock_path, sizeof(sock_path), "%s/potad.sock", dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/potad.conf", dir);
	snprintf(log_path, sizeof(log_path), "%s/potad.log", dir);
	atexit(at_exit);

	s = seed;
	c = daemon_start(&s);
	report_writer();
	for (cycle = 0; cycle < ncycles; cycle++)
		c = run_cycle(c);
	potad_client_close(c);
	daemon_stop();

	printf("crash: %d cycles, %lu allocs, %lu frees acknowledged, %lu "
	       "refused (no space); %lu allocs unknown (%lu kept), %lu frees "
	       "unknown (%lu done); %lu session extents dropped at start-up; "
	       "token retries %lu same, %lu new; %lu stale handles refused; "
	       "%lu torn tails; %lu "
	       "SIGTERM crashes; %.1f s ... OK\n",
	       ncycles, atomic_load(&n_allocs), atomic_load(&n_frees),
	       atomic_load(&n_refused), n_unk_alloc, n_unk_alloc_kept,
	       n_unk_free, n_unk_free_done, n_session_dropped, n_retry_same,
	       n_retry_new, n_stale, n_torn, n_sigterm,
	       (now_ms() - t_start) / 1000.0);
	e = getenv("POTAD_CRASH_KEEP");
	if (e && *e)
		printf("crash: state kept in %s\n", dir);
	else if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "crash: could not remove %s: %s\n", dir,
			strerror(errno));
	return 0;
}
