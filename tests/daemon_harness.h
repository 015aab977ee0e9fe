/* SPDX-License-Identifier: MIT */
/* A harness for daemon integration tests: start and stop the real potad,
 * speak raw frames to it, and assert with expected and actual values. */
#ifndef POTAD_TESTS_DAEMON_HARNESS_H
#define POTAD_TESTS_DAEMON_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "potad.pb-c.h"

/*
 * Each test starts the daemon from the built tree (POTAD_DAEMON, else
 * $abs_top_builddir/daemon/potad, else ./daemon/potad) on a directory of
 * its own under one temporary root, so tests never share a socket or
 * state.  Check runs each test in a child process; the daemon is bound to
 * that child with PR_SET_PDEATHSIG and killed by an atexit handler when an
 * assertion fails, so no daemon outlives its test.
 *
 * Clients here do not use the client library: they pack Requests with
 * protobuf-c and frame them with lib/wire's varints, so what is tested is
 * the wire itself.  Results are copied into plain structs, so a test may
 * keep as many as it likes without freeing unpacked messages.
 *
 * Helper processes forked by a test (many clients, a client that drops
 * privileges) never call Check: helper_fork() points failures at a pipe,
 * where a failed expectation writes one line and exits 1, and
 * child_expect() turns that into the test's failure.
 */

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* Every wait on the daemon is bounded, so a hang is a failure, not a
 * stuck `make check`. */
#define IO_TIMEOUT_MS 10000

/* Make the temporary root and arm the clean-up; 0 or -errno. */
int harness_init(void);
/* Remove the temporary root and everything under it. */
void harness_fini(void);
/* The temporary root, for files a test makes before its daemon starts. */
const char *harness_root(void);

/*
 * Failing, with messages that show expected and actual values.
 */

/* Where a helper process reports a failure; -1 in the test process. */
extern int fail_fd;

/* Fail the test (or the helper process) with a message at file:line. */
void fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define EXPECT(cond, ...)                                                      \
	do {                                                                   \
		if (!(cond))                                                   \
			FAIL(__VA_ARGS__);                                     \
	} while (0)
#define EXPECT_EQ(actual, expected)                                            \
	do {                                                                   \
		uint64_t a_ = (uint64_t)(actual);                              \
		uint64_t e_ = (uint64_t)(expected);                            \
		if (a_ != e_)                                                  \
			FAIL("%s: expected %" PRIu64 " (%#" PRIx64             \
			     "), got %" PRIu64 " (%#" PRIx64 ")",              \
			     #actual, e_, e_, a_, a_);                         \
	} while (0)
#define EXPECT_STR(actual, expected)                                           \
	do {                                                                   \
		const char *a_ = (actual), *e_ = (expected);                   \
		if (strcmp(a_, e_) != 0)                                       \
			FAIL("%s: expected \"%s\", got \"%s\"", #actual, e_,   \
			     a_);                                              \
	} while (0)

/* The schema's name for a status ("NO_SPACE"). */
const char *status_name(int st);

/*
 * Plain copies of results.
 */
struct ext {
	uint64_t offset, length, handle;
	uint32_t owner_uid, tag;
	bool poisoned, session;
	char space[72], label[72], child[72];
};

struct sinfo {
	char name[72], parent[72];
	int kind;
	bool reserve;
	uint64_t base, size, granule, free_bytes, used_bytes, poisoned_bytes;
	uint64_t extents, free_blocks, largest_free_block;
	/* Real spaces: availability, what the probe recorded, the clean and
	 * dirty books. */
	bool available, discard, isolate;
	char reason[256], identity[256], device[256];
	uint64_t dirty_bytes, discarding_bytes;
	uint32_t bar;
};

/* Lists longer than this are counted in full but copied only this far. */
#define RES_LIST_MAX 16

struct res {
	int status;
	char msg[256];
	int body; /* Potad__V1__Result__BodyCase */
	struct ext ext;
	struct sinfo space;
	size_t n; /* entries in a space or extent list */
	bool more;     /* a paged extent list: more follow ... */
	uint64_t next; /* ... from this offset */
	struct sinfo spaces[RES_LIST_MAX];
	struct ext exts[RES_LIST_MAX];
	uint32_t protocol, uid, gid, hits;
	bool admin, durable;
	size_t ncaps;
};

#define EXPECT_ST(r, want)                                                     \
	do {                                                                   \
		const struct res *r_ = &(r);                                   \
		int w_ = (want);                                               \
		if (r_->status != w_)                                          \
			FAIL("%s: expected status %s, got %s (\"%s\")", #r,    \
			     status_name(w_), status_name(r_->status),         \
			     r_->msg);                                         \
	} while (0)
#define EXPECT_OK(r) EXPECT_ST(r, POTAD__V1__STATUS__OK)

void copy_res(struct res *d, const Potad__V1__Result *r);

/*
 * The daemon under test.
 */
struct daemon {
	pid_t pid;
	pid_t owner; /* the test process that started it */
	char dir[160];
	char sock[256];
	char state[256];
	char conf[256]; /* "" when started without --config */
	char log[256];	/* this start's stdout and stderr */
	/* Extra command-line arguments, NULL-terminated and borrowed
	 * (string literals, or storage that outlives d). */
	const char *args[9];
	int starts; /* starts so far: the first logs to potad.log, the kth
		     * after it to potad.k.log */
};

/* The daemon binary this run tests. */
const char *daemon_path(void);
/* The end of the daemon's log, to show with a failure. */
const char *log_tail(const struct daemon *d);
/* Configuration text for tests that need an admin: NULL (the built-in
 * default) for root, else the default space plus admin_group = the
 * caller's group. */
const char *admin_conf(void);
/* Start the daemon on a fresh directory with configuration text conf
 * (NULL: no --config) and wait, bounded, until its socket accepts. */
void daemon_start(struct daemon *d, const char *conf);
/* The same with extra arguments (NULL-terminated, at most 8, borrowed:
 * d keeps the pointers for restarts). */
void daemon_start_args(struct daemon *d, const char *conf,
		       const char *const *args);
/* Start it again on the same directory, socket, state, configuration and
 * arguments, logging to a fresh file (d->log names it), and wait, bounded,
 * until it serves. */
void daemon_restart(struct daemon *d);
/* The same for a start that may fail: 1 once it serves, 0 when it exited
 * first (reaped, its wait status in *status). */
int daemon_try_restart(struct daemon *d, int *status);
/* SIGKILL, as a crash would stop it, and reap it. */
void daemon_kill(struct daemon *d);
/* The whole of the current start's log, NUL-terminated (static buffer). */
const char *log_text(const struct daemon *d);
/*
 * Run the daemon binary once with the arguments given (NULL-terminated),
 * for a mode that exits by itself (--check), bounded by timeout_ms: its
 * wait status, with its stdout and stderr copied into out and err
 * (NUL-terminated, cut to their sizes; either may be NULL).
 */
int potad_run(char *out, size_t outsz, char *err, size_t errsz, int timeout_ms,
	      ...) __attribute__((sentinel));
/* Wait, bounded, for the daemon to exit and reap it: its wait status, or
 * -1 if it is still running. */
int daemon_wait(struct daemon *d, int timeout_ms);
/* SIGTERM, then expect a graceful stop: exit 0 and the socket removed. */
void daemon_stop(struct daemon *d);

long now_ms(void);
int connect_to(const char *path);

/*
 * A raw client connection.
 */
#define MAX_STASH 64

struct cl {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	uint64_t next_id;
	/* Events that arrived while waiting for a response, oldest first. */
	Potad__V1__ServerMessage *stash[MAX_STASH];
	size_t nstash;
	size_t nresp; /* responses read so far */
	const struct daemon *d; /* whose log a failure shows (cl_open) */
};

void cl_open(struct cl *c, const struct daemon *d);
void cl_close(struct cl *c);
void write_all(int fd, const void *p, size_t n);
/* Append one framed Request to a growing buffer. */
void frame_req(uint8_t **buf, size_t *len, size_t *cap,
	       const Potad__V1__Request *req);
void cl_send(struct cl *c, const Potad__V1__Request *req);
/* Read one ServerMessage: 1 with *out set, 0 at end of stream,
 * -ETIMEDOUT, or -EBADMSG for a bad frame. */
int cl_recv(struct cl *c, int timeout_ms, Potad__V1__ServerMessage **out);
/* The next Response (its message in *keep, to free), stashing events
 * that come before it; a failure names the caller's line. */
Potad__V1__Response *cl_response_at(const char *file, int line, struct cl *c,
				    Potad__V1__ServerMessage **keep);
#define cl_response(c, keep) cl_response_at(__FILE__, __LINE__, (c), (keep))
/* The next event within timeout_ms (a stashed one first), or NULL. */
Potad__V1__ServerMessage *cl_event(struct cl *c, int timeout_ms);
/* Expect the daemon to close the connection. */
void expect_eof(struct cl *c, const char *what);
/* A Response with id 0 refusing a frame: its status. */
int refusal(struct cl *c);

#define EXPECT_REFUSAL(c, want)                                                \
	do {                                                                   \
		int st_ = refusal(c), w_ = (want);                             \
		if (st_ != w_)                                                 \
			FAIL("refused frame: expected status %s, got %s",      \
			     status_name(w_), status_name(st_));               \
	} while (0)

/*
 * Operations.  Each builder returns a heap Op owning its one submessage;
 * strings and arrays are borrowed from the caller.  call_ops() frees them.
 */
void *xcalloc(size_t n);
void free_op(Potad__V1__Op *op);
Potad__V1__Op *op_hello(void);
Potad__V1__Op *op_list(void);
Potad__V1__Op *op_stat(const char *name);

/* Alloc's fields, for designated initialisers; space NULL: "default". */
struct aa {
	const char *space;
	uint64_t size, align, min, max, at;
	bool top_down, whole, fixed, session;
	const char *label, *token, *reserve;
	uint32_t tag;
	bool clean; /* only units no owner has used since a discard */
};

Potad__V1__Op *op_alloc(struct aa a);
Potad__V1__Op *op_free(const char *space, uint64_t handle);
/* Free by offset (admins). */
Potad__V1__Op *op_free_at(const char *space, uint64_t offset);
/* Free the tail: keep the first keep bytes. */
Potad__V1__Op *op_shrink(const char *space, uint64_t handle, uint64_t keep);
Potad__V1__Op *op_lookup(const char *space, uint64_t offset);
Potad__V1__Op *op_extents(const char *space);
/* A page of at most limit extents from offset from, only label's if not
 * NULL. */
Potad__V1__Op *op_extents_page(const char *space, uint64_t from,
			       uint32_t limit, const char *label);
Potad__V1__Op *op_poison(const char *space, uint64_t off, uint64_t len);
/* A RANGE space of size bytes at base 0, 4 KiB units, open to all. */
Potad__V1__Op *op_space_add(const char *name, uint64_t size);
/* SpaceAdd's fields, for designated initialisers: any kind. */
struct sa {
	const char *name;
	int kind; /* POTAD__V1__SPACE_KIND__* */
	const char *path, *pci;
	uint32_t bar;
	uint64_t base, size, granule;
	bool allow_all, force, discard, isolate;
};

Potad__V1__Op *op_space_add_ex(struct sa a);
#define SPACE_ADD(c, ...) call((c), op_space_add_ex((struct sa){__VA_ARGS__}))
Potad__V1__Op *op_space_rm(const char *name, bool force);
Potad__V1__Op *op_child_add(const char *parent, const char *name, uint64_t size,
			    bool reserve, uint32_t *uids, size_t nuids);
Potad__V1__Op *op_child_rm(const char *name);
Potad__V1__Op *op_subscribe(const char *space, uint32_t pct);
/* An Op with no operation set. */
Potad__V1__Op *op_empty(void);

/* Send one Request of n ops (freeing them), read its Response, check the
 * id and the count, and copy the results into out[0..n-1]. */
void call_ops(struct cl *c, Potad__V1__Op **ops, size_t n, struct res *out);
/* The same for one op. */
struct res call(struct cl *c, Potad__V1__Op *op);

#define ALLOC(c, ...) call((c), op_alloc((struct aa){__VA_ARGS__}))
/* An allocation that must succeed: its extent. */
#define ALLOC_OK(c, ...)                                                       \
	alloc_ok_at(__FILE__, __LINE__, (c), (struct aa){__VA_ARGS__})

struct ext alloc_ok_at(const char *file, int line, struct cl *c, struct aa a);
void free_ok(struct cl *c, const char *space, uint64_t handle);
struct sinfo stat_ok(struct cl *c, const char *space);
size_t count_spaces(struct cl *c);

/* A refused or harmless operation must leave the space as it was. */
#define EXPECT_SAME(c, space, before, what)                                    \
	expect_same_at(__FILE__, __LINE__, (c), (space), &(before), (what))

void expect_same_at(const char *file, int line, struct cl *c, const char *space,
		    const struct sinfo *a, const char *what);
/* Poll, bounded, until space holds want extents (a closed connection's
 * session extents go after the client has gone). */
struct sinfo wait_extents(struct cl *c, const char *space, uint64_t want);
/* Poll, bounded by timeout_ms, until space has no dirty bytes and none
 * being discarded: the last stat, which the caller checks. */
struct sinfo poll_clean(struct cl *c, const char *space, int timeout_ms);

/* Fork a helper process: its pid in the parent, with *rfd the read end of
 * its failure pipe; 0 in the child, whose failures go to that pipe. */
pid_t helper_fork(int *rfd);
/* Wait for a helper and fail the test, with what it wrote, unless it
 * exited 0. */
void child_expect(pid_t pid, int rfd, const char *what);

#endif /* POTAD_TESTS_DAEMON_HARNESS_H */
