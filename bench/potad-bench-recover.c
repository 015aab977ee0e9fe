/* SPDX-License-Identifier: MIT */
/*
 * potad-bench-recover: measures how long potad takes to come back with a
 * large state: it fills a state directory with live extents through the
 * daemon, stops it, then times restarts and potad --check on it, and
 * prints key=value (or JSON) lines.
 *
 * Definitions, so that numbers from different builds can be compared:
 *
 * - The state: one RANGE space "bench" of 4 KiB units, sized to the next
 *   power of two at or above twice the extents (8 GiB for a million), and
 *   --extents allocations of 4 KiB in it (tag = their number, no label),
 *   none freed.  They go in through the socket like any client's: requests
 *   of --batch allocations each, --depth requests in flight on one
 *   connection.  fill_s is the time from the first request to the last
 *   answer; every answer is checked.
 * - The stop: SIGTERM (a graceful stop; the daemon may checkpoint on its
 *   way out) or, with --stop kill, SIGKILL (a crash: the log as written).
 *   Every restart ends the same way, so each one starts from a state of
 *   the same shape.  The state directory's files are listed after the fill
 *   (snapshot_bytes; logs and log_bytes, their apparent sizes, which
 *   include preallocation).
 * - A restart is timed from just before fork() to the first answered
 *   Hello on the socket, polled every 0.2 ms: exec, recovery (snapshot
 *   load and log replay, which the daemon also reports in its log as
 *   "recovered ... in N ms": daemon_ms), and binding the socket.  The
 *   first restart also checks, with space stat, that every extent is back.
 * - potad --check is timed from fork() to its exit, and its JSON count of
 *   extents must match.
 * - min and median (the lower middle one for an even count) over the runs.
 *
 * The state directory is made under /var/tmp (or --state-dir), on disk:
 * recovery reads it, so a tmpfs one would flatter it.  Its file system is
 * printed with the figures.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define PROG "potad-bench-recover"
#define UNIT 4096
#define MAX_RUNS 100

static const char usage[] =
    "Usage: " PROG " [--daemon PATH] [--state-dir DIR] [--extents N]\n"
    "         [--batch K] [--depth D] [--restarts N] [--checks N]\n"
    "         [--stop term|kill] [--journal-io auto|uring|sync]\n"
    "         [--checkpoint-bytes SIZE] [--keep] [--json]\n"
    "\n"
    "Fill a potad state directory with N live extents through the daemon,\n"
    "stop it, and time restarts (exec to the first answered hello) and\n"
    "potad --check on it.\n"
    "\n"
    "  --daemon PATH     the potad to run (default: ../daemon/potad beside\n"
    "                    this program, else ./daemon/potad)\n"
    "  --state-dir DIR   make the state directory in DIR (default\n"
    "                    /var/tmp; it should be a real disk)\n"
    "  --extents N       live extents of 4K to fill it with (default\n"
    "                    1000000)\n"
    "  --batch K         allocations per request (default 1000)\n"
    "  --depth D         requests in flight while filling (default 8)\n"
    "  --restarts N      timed restarts (default 5)\n"
    "  --checks N        timed runs of potad --check (default 3)\n"
    "  --stop MODE       term: stop with SIGTERM (default); kill: SIGKILL,\n"
    "                    so each restart replays the log as a crash left it\n"
    "  --journal-io M    the daemon's writer: auto, uring or sync\n"
    "  --checkpoint-bytes SIZE  the daemon's checkpoint_bytes (default:\n"
    "                    the daemon's own, 64M)\n"
    "  --keep            leave the state directory in place and say where\n"
    "  --json            one JSON object per line instead of key=value\n"
    "  --help            this text\n"
    "\n"
    "Output: a recover-env line (cpus, load, the state directory and its\n"
    "file system), recover-fill (extents, fill_s, allocs_per_s, stop_ms,\n"
    "snapshot_bytes, logs, log_bytes), recover-restart (runs, min_ms,\n"
    "median_ms, max_ms, daemon_min_ms, daemon_median_ms) and recover-check\n"
    "(runs, min_ms, median_ms, max_ms).\n"
    "Exit status: 0; 1 when the daemon or a check fails; 2 on bad usage;\n"
    "130 when interrupted.\n";

static struct {
	const char *daemon, *state_parent, *journal_io, *ckpt;
	uint64_t extents;
	unsigned batch, depth, restarts, checks;
	bool kill, keep, json;
} o = {
    .state_parent = "/var/tmp",
    .extents = 1000000,
    .batch = 1000,
    .depth = 8,
    .restarts = 5,
    .checks = 3,
};

static char tmpdir[256], sock[320], conf[320], logpath[320];
static char statedir[4096], state_fs[32] = "?";
static pid_t daemon_pid = -1;
static volatile sig_atomic_t interrupted;

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

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(long ns)
{
	struct timespec ts = {0, ns};

	nanosleep(&ts, NULL);
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

static const char *status_name(int st)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &potad__v1__status__descriptor, st);

	return v ? v->name : "?";
}

/*
 * A connection: framed Requests out, ServerMessages in.
 */
struct conn {
	int fd;
	uint8_t *rbuf, *wbuf;
	size_t rlen, rcap, wcap;
};

static int conn_send(struct conn *c, const Potad__V1__Request *req)
{
	size_t n = potad__v1__request__get_packed_size(req);
	size_t k;

	if (n + POTAD_VARINT_MAX > c->wcap) {
		uint8_t *t = realloc(c->wbuf, n + POTAD_VARINT_MAX);

		if (!t)
			return -ENOMEM;
		c->wbuf = t;
		c->wcap = n + POTAD_VARINT_MAX;
	}
	k = potad__varint_put(n, c->wbuf);
	potad__v1__request__pack(req, c->wbuf + k);
	return write_all(c->fd, c->wbuf, k + n);
}

/* The next ServerMessage that is a Response, within deadline (ns, 0: no
 * limit); events are skipped.  0 with *out, or -errno. */
static int conn_recv(struct conn *c, int64_t deadline,
		     Potad__V1__ServerMessage **out)
{
	for (;;) {
		uint64_t len;
		int k = potad__varint_get(c->rbuf, c->rlen, &len);
		ssize_t n;

		if (k < 0 || (k > 0 && len > (64u << 20)))
			return -EPROTO;
		if (k > 0 && c->rlen - (size_t)k >= len) {
			Potad__V1__ServerMessage *m =
			    potad__v1__server_message__unpack(NULL, len,
							      c->rbuf + k);

			memmove(c->rbuf, c->rbuf + k + len,
				c->rlen - (size_t)k - len);
			c->rlen -= (size_t)k + len;
			if (!m) {
				warn("an undecodable message from the daemon");
				return -EPROTO;
			}
			if (m->msg_case ==
			    POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE) {
				*out = m;
				return 0;
			}
			potad__v1__server_message__free_unpacked(m, NULL);
			continue;
		}
		if (c->rcap - c->rlen < 65536) {
			size_t cap = c->rcap ? c->rcap * 2 : 1 << 20;
			uint8_t *t = realloc(c->rbuf, cap);

			if (!t)
				return -ENOMEM;
			c->rbuf = t;
			c->rcap = cap;
		}
		if (deadline && now_ns() > deadline)
			return -ETIMEDOUT;
		n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n < 0 && errno == EINTR) {
			if (interrupted)
				return -EINTR;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		c->rlen += (size_t)n;
	}
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* One op, its Result checked OK; *out keeps the message (to free). */
static int call_one(struct conn *c, Potad__V1__Op *op,
		    Potad__V1__ServerMessage **out, int64_t deadline)
{
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
	Potad__V1__Op *ops[1] = {op};
	Potad__V1__Response *r;
	int rc;

	req.id = 1;
	req.n_ops = 1;
	req.ops = ops;
	rc = conn_send(c, &req);
	if (rc == 0)
		rc = conn_recv(c, deadline, out);
	if (rc < 0)
		return rc;
	r = (*out)->response;
	if (r->status || r->n_results != 1 || r->results[0]->status) {
		warn("%s refused: %s: %s",
		     op->op_case == POTAD__V1__OP__OP_HELLO ? "hello" : "stat",
		     status_name(r->status	? (int)r->status
				 : r->n_results ? (int)r->results[0]->status
						: -1),
		     r->status	    ? r->message
		     : r->n_results ? r->results[0]->message
				    : "");
		potad__v1__server_message__free_unpacked(*out, NULL);
		return -EPROTO;
	}
	return 0;
}

/* The extents space "bench" holds, or -errno. */
static int64_t bench_extents(struct conn *c)
{
	Potad__V1__SpaceStat st = POTAD__V1__SPACE_STAT__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;
	Potad__V1__ServerMessage *m;
	int64_t n;
	int rc;

	st.name = "bench";
	op.op_case = POTAD__V1__OP__OP_SPACE_STAT;
	op.space_stat = &st;
	rc = call_one(c, &op, &m, now_ns() + 60 * 1000000000ll);
	if (rc < 0)
		return rc;
	n = (int64_t)m->response->results[0]->space->extents;
	potad__v1__server_message__free_unpacked(m, NULL);
	return n;
}

/*
 * The daemon.
 */
static void child_signals(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static pid_t spawn_daemon(void)
{
	const char *argv[16];
	int argc = 0;
	pid_t pid;

	argv[argc++] = o.daemon;
	argv[argc++] = "--foreground";
	argv[argc++] = "--socket";
	argv[argc++] = sock;
	argv[argc++] = "--state-dir";
	argv[argc++] = statedir;
	argv[argc++] = "--config";
	argv[argc++] = conf;
	if (o.journal_io) {
		argv[argc++] = "--journal-io";
		argv[argc++] = o.journal_io;
	}
	argv[argc] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);

		child_signals();
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		unsetenv("JOURNAL_STREAM");
		execv(o.daemon, (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", o.daemon, strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Show the end of the daemon's log after a failure. */
static void show_log(void)
{
	char buf[4096];
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
	ssize_t n;

	if (fd < 0)
		return;
	lseek(fd,
	      end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0,
	      SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		fprintf(stderr, "--- the daemon's log ends:\n%s", buf);
	}
}

/* Start the daemon and wait for its first answered Hello: 0 with c
 * connected, or -errno after a message.  *ns gets the time it took. */
static int start_and_hello(struct conn *c, int64_t *ns)
{
	Potad__V1__Hello h = POTAD__V1__HELLO__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;
	int64_t t0 = now_ns(), deadline = t0 + 300 * 1000000000ll;
	int rc;

	h.protocol = 1;
	h.client = PROG;
	op.op_case = POTAD__V1__OP__OP_HELLO;
	op.hello = &h;
	daemon_pid = spawn_daemon();
	if (daemon_pid < 0)
		return -errno;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	while (!interrupted) {
		Potad__V1__ServerMessage *m;
		int st;

		c->fd = connect_to(sock);
		if (c->fd >= 0) {
			rc = call_one(c, &op, &m, deadline);
			if (rc == 0) {
				*ns = now_ns() - t0;
				potad__v1__server_message__free_unpacked(m,
									 NULL);
				return 0;
			}
			conn_close(c);
			if (rc != -ECONNRESET && rc != -EPIPE)
				return rc;
		}
		if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
			daemon_pid = -1;
			warn("%s exited (%s %d) before serving", o.daemon,
			     WIFEXITED(st) ? "status" : "signal",
			     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			show_log();
			return -ECHILD;
		}
		if (now_ns() > deadline) {
			warn("%s is not serving after 300 s", o.daemon);
			show_log();
			return -ETIMEDOUT;
		}
		sleep_ns(200 * 1000);
	}
	return -EINTR;
}

/* Stop the daemon the way --stop says; its exit checked.  *ns (may be
 * NULL) gets how long it took. */
static int stop_daemon(int64_t *ns)
{
	int64_t t0 = now_ns();
	int st;

	if (daemon_pid <= 0)
		return 0;
	kill(daemon_pid, o.kill ? SIGKILL : SIGTERM);
	while (waitpid(daemon_pid, &st, 0) < 0 && errno == EINTR)
		;
	daemon_pid = -1;
	if (ns)
		*ns = now_ns() - t0;
	if (o.kill ? !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		   : !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		warn("the daemon stopped with %s %d",
		     WIFEXITED(st) ? "status" : "signal",
		     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		show_log();
		return -EIO;
	}
	return 0;
}

/* "recovered ... in N ms" from the daemon's log, or -1. */
static double daemon_recover_ms(void)
{
	char buf[8192], *p, *q;
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "recovered");
	if (!p)
		return -1;
	q = strchr(p, '\n');
	if (q)
		*q = '\0';
	/* The " in N ms" of that line (a path in it may hold " in "). */
	for (q = strstr(p, " in "); q; q = strstr(q + 4, " in ")) {
		char *end;
		double v = strtod(q + 4, &end);

		if (end > q + 4 && strncmp(end, " ms", 3) == 0)
			return v;
	}
	return -1;
}

/*
 * Filling: requests of --batch allocations, --depth in flight.
 */
static int fill(struct conn *c, double *secs)
{
	unsigned k = o.batch;
	Potad__V1__Alloc *al = calloc(k, sizeof(*al));
	Potad__V1__Op *op = calloc(k, sizeof(*op));
	Potad__V1__Op **ops = calloc(k, sizeof(*ops));
	uint64_t sent = 0, done = 0, id = 0;
	unsigned inflight = 0;
	int64_t t0 = now_ns();
	int rc = -ENOMEM;

	if (!al || !op || !ops)
		goto out;
	for (unsigned i = 0; i < k; i++) {
		potad__v1__alloc__init(&al[i]);
		al[i].space = "bench";
		al[i].size = UNIT;
		potad__v1__op__init(&op[i]);
		op[i].op_case = POTAD__V1__OP__OP_ALLOC;
		op[i].alloc = &al[i];
		ops[i] = &op[i];
	}
	rc = 0;
	while (done < o.extents && rc == 0 && !interrupted) {
		Potad__V1__ServerMessage *m;
		Potad__V1__Response *r;

		while (inflight < o.depth && sent < o.extents) {
			Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
			uint64_t n =
			    o.extents - sent < k ? o.extents - sent : k;

			for (uint64_t i = 0; i < n; i++)
				al[i].tag = (uint32_t)(sent + i);
			req.id = ++id;
			req.n_ops = n;
			req.ops = ops;
			rc = conn_send(c, &req);
			if (rc < 0)
				goto out;
			sent += n;
			inflight++;
		}
		rc = conn_recv(c, 0, &m);
		if (rc < 0)
			break;
		r = m->response;
		if (r->status) {
			warn("request %llu refused: %s: %s",
			     (unsigned long long)r->id, status_name(r->status),
			     r->message);
			rc = -EPROTO;
		}
		for (size_t i = 0; rc == 0 && i < r->n_results; i++)
			if (r->results[i]->status) {
				warn("allocation %llu of %llu failed: %s: %s",
				     (unsigned long long)(done + i),
				     (unsigned long long)o.extents,
				     status_name(r->results[i]->status),
				     r->results[i]->message);
				rc = -EPROTO;
			}
		done += r->n_results;
		inflight--;
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	*secs = (double)(now_ns() - t0) / 1e9;
out:
	free(al);
	free(op);
	free(ops);
	if (interrupted)
		return -EINTR;
	if (rc < 0 && rc != -EPROTO)
		warn("filling: %s", strerror(-rc));
	return rc;
}

/* Sizes of what the state directory holds. */
static void state_files(uint64_t *snap, unsigned *logs, uint64_t *log_bytes)
{
	DIR *d = opendir(statedir);
	struct dirent *de;

	*snap = 0;
	*logs = 0;
	*log_bytes = 0;
	while (d && (de = readdir(d))) {
		char path[8192];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", statedir, de->d_name);
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (strcmp(de->d_name, "snapshot") == 0)
			*snap = (uint64_t)sb.st_size;
		else if (strncmp(de->d_name, "journal.", 8) == 0) {
			(*logs)++;
			*log_bytes += (uint64_t)sb.st_size;
		}
	}
	if (d)
		closedir(d);
}

/* One timed potad --check: its time, or -1 after a message. */
static double run_check(void)
{
	char out[4096], *p;
	int pfd[2], st;
	size_t len = 0;
	int64_t t0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	t0 = now_ns();
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		child_signals();
		dup2(pfd[1], 1);
		if (null >= 0)
			dup2(null, 2);
		execl(o.daemon, o.daemon, "--check", "--state-dir", statedir,
		      "--json", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t n = read(pfd[0], out + len, sizeof(out) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == sizeof(out) - 1)
			break;
	}
	close(pfd[0]);
	out[len] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		warn("potad --check failed (status %#x): %s", st, out);
		return -1;
	}
	p = strstr(out, "\"extents\":");
	if (!p || strtoull(p + 10, NULL, 10) != o.extents) {
		warn("potad --check counts other than %llu extents: %s",
		     (unsigned long long)o.extents, out);
		return -1;
	}
	return (double)(now_ns() - t0) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* min, lower median, max of v[0..n-1] (sorted in place). */
static void stats(double *v, unsigned n, double *min, double *med, double *max)
{
	qsort(v, n, sizeof(v[0]), cmp_double);
	*min = v[0];
	*med = v[(n - 1) / 2];
	*max = v[n - 1];
}

/*
 * Start-up and clean-up.
 */
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

	if (statfs(path, &sf) < 0)
		return;
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		if ((long)sf.f_type == fs[i].magic) {
			snprintf(out, n, "%s", fs[i].name);
			return;
		}
	snprintf(out, n, "%#lx", (long)sf.f_type);
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
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = -1;
	}
	if (statedir[0] && !o.keep)
		nftw(statedir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	else if (statedir[0])
		warn("kept the state directory %s", statedir);
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	statedir[0] = tmpdir[0] = '\0';
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int parse_count(const char *arg, uint64_t min, uint64_t max,
		       uint64_t *out, const char *what)
{
	char *end;
	unsigned long long v = strtoull(arg, &end, 10);

	if (end == arg || *end || v < min || v > max) {
		warn("bad --%s '%s': %llu..%llu", what, arg,
		     (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

static int write_conf(void)
{
	uint64_t size = 1;
	FILE *f = fopen(conf, "w");

	while (size < 2 * o.extents * UNIT)
		size <<= 1;
	if (!f)
		return -errno;
	fprintf(f, "[daemon]\nmax_queue = 256M\n");
	if (o.ckpt)
		fprintf(f, "checkpoint_bytes = %s\n", o.ckpt);
	fprintf(f,
		"\n[space bench]\nkind = range\nsize = %llu\ngranule = 4K\n"
		"allow = all\n",
		(unsigned long long)size);
	return fclose(f) == 0 ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"daemon", required_argument, NULL, 'd'},
	    {"state-dir", required_argument, NULL, 'P'},
	    {"extents", required_argument, NULL, 'n'},
	    {"batch", required_argument, NULL, 'b'},
	    {"depth", required_argument, NULL, 'D'},
	    {"restarts", required_argument, NULL, 'r'},
	    {"checks", required_argument, NULL, 'c'},
	    {"stop", required_argument, NULL, 's'},
	    {"journal-io", required_argument, NULL, 'J'},
	    {"checkpoint-bytes", required_argument, NULL, 'C'},
	    {"keep", no_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sigaction sa = {.sa_handler = on_signal};
	double restart_ms[MAX_RUNS], daemon_ms[MAX_RUNS], check_ms[MAX_RUNS];
	double fill_s = 0, rmin, rmed, rmax, dmin = -1, dmed = -1, dmax;
	double cmin = -1, cmed = -1, cmax = -1, load[3] = {-1, -1, -1};
	uint64_t v, snap, log_bytes;
	unsigned logs, ndaemon = 0;
	int64_t stop_ns = 0, t;
	struct conn c = {.fd = -1};
	int opt, rc, status = 1;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.daemon = optarg;
			break;
		case 'P':
			o.state_parent = optarg;
			break;
		case 'n':
			if (parse_count(optarg, 1, 1ull << 26, &o.extents,
					"extents") < 0)
				return 2;
			break;
		case 'b':
			if (parse_count(optarg, 1, 20000, &v, "batch") < 0)
				return 2;
			o.batch = (unsigned)v;
			break;
		case 'D':
			if (parse_count(optarg, 1, 1024, &v, "depth") < 0)
				return 2;
			o.depth = (unsigned)v;
			break;
		case 'r':
			if (parse_count(optarg, 1, MAX_RUNS, &v, "restarts") <
			    0)
				return 2;
			o.restarts = (unsigned)v;
			break;
		case 'c':
			if (parse_count(optarg, 0, MAX_RUNS, &v, "checks") < 0)
				return 2;
			o.checks = (unsigned)v;
			break;
		case 's':
			if (strcmp(optarg, "term") && strcmp(optarg, "kill")) {
				warn("bad --stop '%s': term or kill", optarg);
				return 2;
			}
			o.kill = strcmp(optarg, "kill") == 0;
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
		case 'C':
			o.ckpt = optarg;
			break;
		case 'k':
			o.keep = true;
			break;
		case 'j':
			o.json = true;
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
	if (!o.daemon)
		o.daemon = default_daemon();
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	atexit(cleanup);

	snprintf(tmpdir, sizeof(tmpdir), "%s/" PROG ".XXXXXX",
		 getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 64
		     ? getenv("TMPDIR")
		     : "/tmp");
	if (!mkdtemp(tmpdir)) {
		warn("mkdtemp %s: %s", tmpdir, strerror(errno));
		tmpdir[0] = '\0';
		return 1;
	}
	snprintf(sock, sizeof(sock), "%s/potad.sock", tmpdir);
	snprintf(conf, sizeof(conf), "%s/potad.conf", tmpdir);
	snprintf(logpath, sizeof(logpath), "%s/potad.log", tmpdir);
	snprintf(statedir, sizeof(statedir), "%s/" PROG ".XXXXXX",
		 o.state_parent);
	if (!mkdtemp(statedir)) {
		warn("mkdtemp %s: %s", statedir, strerror(errno));
		statedir[0] = '\0';
		return 1;
	}
	fs_name(statedir, state_fs, sizeof(state_fs));
	if (strcmp(state_fs, "tmpfs") == 0 || strcmp(state_fs, "ramfs") == 0)
		warn("warning: %s is on %s: recovery reads from memory there",
		     statedir, state_fs);
	rc = write_conf();
	if (rc < 0) {
		warn("%s: %s", conf, strerror(-rc));
		return 1;
	}
	getloadavg(load, 3);
	if (o.json)
		printf(
		    "{\"bench\":\"recover-env\",\"cpus\":%ld,\"load1\":%.2f,"
		    "\"load5\":%.2f,\"state_dir\":\"%s\",\"state_fs\":\"%s\","
		    "\"journal_io\":\"%s\",\"stop\":\"%s\","
		    "\"checkpoint_bytes\":\"%s\"}\n",
		    sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], statedir,
		    state_fs, o.journal_io ? o.journal_io : "auto",
		    o.kill ? "kill" : "term", o.ckpt ? o.ckpt : "default");
	else
		printf("recover-env cpus=%ld load1=%.2f load5=%.2f "
		       "state_dir=%s state_fs=%s journal_io=%s stop=%s "
		       "checkpoint_bytes=%s\n",
		       sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1],
		       statedir, state_fs, o.journal_io ? o.journal_io : "auto",
		       o.kill ? "kill" : "term", o.ckpt ? o.ckpt : "default");
	fflush(stdout);

	/* Fill. */
	if (start_and_hello(&c, &t) < 0)
		goto out;
	if (fill(&c, &fill_s) < 0)
		goto out;
	if (bench_extents(&c) != (int64_t)o.extents) {
		warn("after filling, space bench does not hold %llu extents",
		     (unsigned long long)o.extents);
		goto out;
	}
	conn_close(&c);
	if (stop_daemon(&stop_ns) < 0)
		goto out;
	state_files(&snap, &logs, &log_bytes);
	if (o.json)
		printf("{\"bench\":\"recover-fill\",\"extents\":%llu,"
		       "\"batch\":%u,\"depth\":%u,\"fill_s\":%.3f,"
		       "\"allocs_per_s\":%.0f,\"stop_ms\":%.1f,"
		       "\"snapshot_bytes\":%llu,\"logs\":%u,"
		       "\"log_bytes\":%llu}\n",
		       (unsigned long long)o.extents, o.batch, o.depth, fill_s,
		       (double)o.extents / fill_s, (double)stop_ns / 1e6,
		       (unsigned long long)snap, logs,
		       (unsigned long long)log_bytes);
	else
		printf("recover-fill extents=%llu batch=%u depth=%u "
		       "fill_s=%.3f allocs_per_s=%.0f stop_ms=%.1f "
		       "snapshot_bytes=%llu logs=%u log_bytes=%llu\n",
		       (unsigned long long)o.extents, o.batch, o.depth, fill_s,
		       (double)o.extents / fill_s, (double)stop_ns / 1e6,
		       (unsigned long long)snap, logs,
		       (unsigned long long)log_bytes);
	fflush(stdout);

	/* Restarts. */
	for (unsigned i = 0; i < o.restarts; i++) {
		double dm;

		if (start_and_hello(&c, &t) < 0)
			goto out;
		restart_ms[i] = (double)t / 1e6;
		dm = daemon_recover_ms();
		if (dm >= 0)
			daemon_ms[ndaemon++] = dm;
		if (i == 0 && bench_extents(&c) != (int64_t)o.extents) {
			warn("after a restart, space bench does not hold %llu "
			     "extents",
			     (unsigned long long)o.extents);
			goto out;
		}
		conn_close(&c);
		if (stop_daemon(NULL) < 0)
			goto out;
	}
	stats(restart_ms, o.restarts, &rmin, &rmed, &rmax);
	if (ndaemon)
		stats(daemon_ms, ndaemon, &dmin, &dmed, &dmax);
	if (o.json)
		printf("{\"bench\":\"recover-restart\",\"extents\":%llu,"
		       "\"runs\":%u,\"min_ms\":%.1f,\"median_ms\":%.1f,"
		       "\"max_ms\":%.1f,\"daemon_min_ms\":%.1f,"
		       "\"daemon_median_ms\":%.1f}\n",
		       (unsigned long long)o.extents, o.restarts, rmin, rmed,
		       rmax, dmin, dmed);
	else
		printf("recover-restart extents=%llu runs=%u min_ms=%.1f "
		       "median_ms=%.1f max_ms=%.1f daemon_min_ms=%.1f "
		       "daemon_median_ms=%.1f\n",
		       (unsigned long long)o.extents, o.restarts, rmin, rmed,
		       rmax, dmin, dmed);
	fflush(stdout);

	/* potad --check. */
	for (unsigned i = 0; i < o.checks; i++) {
		check_ms[i] = run_check();
		if (check_ms[i] < 0 || interrupted)
			goto out;
	}
	if (o.checks) {
		stats(check_ms, o.checks, &cmin, &cmed, &cmax);
		if (o.json)
			printf("{\"bench\":\"recover-check\",\"extents\":%llu,"
			       "\"runs\":%u,\"min_ms\":%.1f,\"median_ms\":%.1f,"
			       "\"max_ms\":%.1f}\n",
			       (unsigned long long)o.extents, o.checks, cmin,
			       cmed, cmax);
		else
			printf("recover-check extents=%llu runs=%u min_ms=%.1f "
			       "median_ms=%.1f max_ms=%.1f\n",
			       (unsigned long long)o.extents, o.checks, cmin,
			       cmed, cmax);
	}
	status = 0;
out:
	conn_close(&c);
	if (interrupted) {
		warn("interrupted");
		status = 130;
	}
	cleanup();
	return status;
}
