/* SPDX-License-Identifier: MIT */
/* The daemon test harness: launching potad, raw-frame clients, operation
 * builders and assertions (see daemon_harness.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "daemon_harness.h"
#include "wire/frame.h"

/* Short enough that every socket path fits in sun_path (108 bytes). */
static char tmp_root[80];

/*
 * Failing.  In a helper child (fail_fd >= 0) a failure is a line on a
 * pipe and _exit(1); in the test process it is a Check failure.
 */
int fail_fd = -1;

void fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fail_fd >= 0) {
		dprintf(fail_fd, "[pid %d] %s:%d: %s\n", (int)getpid(), file,
			line, msg);
		_exit(1);
	}
	ck_abort_msg("%s:%d: %s", file, line, msg);
	abort(); /* not reached: ck_abort_msg does not return */
}

const char *status_name(int st)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &potad__v1__status__descriptor, st);

	return v ? v->name : "(unknown status)";
}

/*
 * Plain copies of results.
 */
static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static void copy_ext(struct ext *d, const Potad__V1__Extent *e)
{
	memset(d, 0, sizeof(*d));
	if (!e)
		return;
	d->offset = e->offset;
	d->length = e->length;
	d->handle = e->handle;
	d->owner_uid = e->owner_uid;
	d->tag = e->tag;
	d->poisoned = e->poisoned;
	d->session = e->session;
	copy_str(d->space, sizeof(d->space), e->space);
	copy_str(d->label, sizeof(d->label), e->label);
	copy_str(d->child, sizeof(d->child), e->child);
}

static void copy_space(struct sinfo *d, const Potad__V1__SpaceInfo *s)
{
	memset(d, 0, sizeof(*d));
	if (!s)
		return;
	copy_str(d->name, sizeof(d->name), s->name);
	copy_str(d->parent, sizeof(d->parent), s->parent);
	d->kind = s->kind;
	d->reserve = s->reserve;
	d->base = s->base_offset;
	d->size = s->size;
	d->granule = s->granule;
	d->free_bytes = s->free_bytes;
	d->used_bytes = s->used_bytes;
	d->poisoned_bytes = s->poisoned_bytes;
	d->extents = s->extents;
	d->free_blocks = s->free_blocks;
	d->largest_free_block = s->largest_free_block;
	d->available = s->available;
	copy_str(d->reason, sizeof(d->reason), s->reason);
	copy_str(d->identity, sizeof(d->identity), s->identity);
	copy_str(d->device, sizeof(d->device), s->device);
	d->discard = s->discard;
	d->isolate = s->isolate;
	d->dirty_bytes = s->dirty_bytes;
	d->discarding_bytes = s->discarding_bytes;
	d->bar = s->bar;
}

void copy_res(struct res *d, const Potad__V1__Result *r)
{
	memset(d, 0, sizeof(*d));
	d->status = r->status;
	copy_str(d->msg, sizeof(d->msg), r->message);
	d->body = r->body_case;
	switch (r->body_case) {
	case POTAD__V1__RESULT__BODY_HELLO:
		d->protocol = r->hello->protocol;
		d->uid = r->hello->uid;
		d->gid = r->hello->gid;
		d->admin = r->hello->admin;
		d->durable = r->hello->durable;
		d->ncaps = r->hello->n_capabilities;
		break;
	case POTAD__V1__RESULT__BODY_SPACES:
		d->n = r->spaces->n_spaces;
		for (size_t i = 0; i < d->n && i < RES_LIST_MAX; i++)
			copy_space(&d->spaces[i], r->spaces->spaces[i]);
		break;
	case POTAD__V1__RESULT__BODY_SPACE:
		copy_space(&d->space, r->space);
		break;
	case POTAD__V1__RESULT__BODY_EXTENT:
		copy_ext(&d->ext, r->extent);
		break;
	case POTAD__V1__RESULT__BODY_EXTENTS:
		d->n = r->extents->n_extents;
		for (size_t i = 0; i < d->n && i < RES_LIST_MAX; i++)
			copy_ext(&d->exts[i], r->extents->extents[i]);
		d->more = r->extents->more;
		d->next = r->extents->next;
		break;
	case POTAD__V1__RESULT__BODY_POISON:
		d->hits = r->poison->extents_hit;
		break;
	default:
		break;
	}
}

/*
 * The daemon under test.
 */
/* The daemon to kill if the test process exits early. */
static pid_t live_pid, live_owner;

const char *daemon_path(void)
{
	static char path[4096];
	const char *p = getenv("POTAD_DAEMON");

	if (p && *p)
		return p;
	p = getenv("abs_top_builddir");
	if (p && *p) {
		snprintf(path, sizeof(path), "%s/daemon/potad", p);
		return path;
	}
	return "./daemon/potad";
}

/* The last lines the daemon logged, to show with a failure. */
const char *log_tail(const struct daemon *d)
{
	static char buf[2048];
	int fd = open(d->log, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)sizeof(buf) - 1)
		lseek(fd, end - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* A failed test exits through here (Check calls exit() in its child):
 * kill the daemon at once rather than leave it to PDEATHSIG. */
static void reap_at_exit(void)
{
	if (live_pid > 0 && live_owner == getpid()) {
		kill(live_pid, SIGKILL);
		waitpid(live_pid, NULL, 0);
		live_pid = 0;
	}
}

int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The configuration for tests that need an admin: none for root (the
 * built-in default space), else the caller's own group as admin_group
 * plus the same default space. */
const char *admin_conf(void)
{
	static char buf[512];
	struct group *g;

	if (geteuid() == 0)
		return NULL;
	g = getgrgid(getegid());
	EXPECT(g != NULL, "getgrgid(%u): no name for my group",
	       (unsigned)getegid());
	snprintf(buf, sizeof(buf),
		 "[daemon]\nadmin_group = %s\n\n"
		 "[space default]\nkind = range\nsize = 1G\ngranule = 4K\n"
		 "allow = all\n",
		 g->gr_name);
	return buf;
}

/* d's process is gone (waited for): nothing is left to kill at exit. */
static void reaped(struct daemon *d)
{
	if (d->pid > 0 && d->pid == live_pid)
		live_pid = 0;
	d->pid = 0;
}

/* Fork and exec the daemon on d's directory, with stdout and stderr going
 * to the log of this start. */
static void daemon_spawn(struct daemon *d)
{
	const char *bin = daemon_path();
	const char *argv[32];
	int argc = 0;

	EXPECT(access(bin, X_OK) == 0,
	       "daemon binary %s: %s (set POTAD_DAEMON)", bin, strerror(errno));
	if (d->starts == 0)
		snprintf(d->log, sizeof(d->log), "%s/potad.log", d->dir);
	else
		snprintf(d->log, sizeof(d->log), "%s/potad.%d.log", d->dir,
			 d->starts);
	d->starts++;
	argv[argc++] = "potad";
	argv[argc++] = "--foreground";
	argv[argc++] = "--socket";
	argv[argc++] = d->sock;
	argv[argc++] = "--state-dir";
	argv[argc++] = d->state;
	if (d->conf[0]) {
		argv[argc++] = "--config";
		argv[argc++] = d->conf;
	}
	for (int i = 0; i < 8 && d->args[i]; i++)
		argv[argc++] = d->args[i];
	argv[argc] = NULL;
	d->owner = getpid();
	d->pid = fork();
	EXPECT(d->pid >= 0, "fork: %s", strerror(errno));
	if (d->pid == 0) {
		int lfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != d->owner)
			_exit(127);
		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
		}
		signal(SIGPIPE, SIG_DFL);
		/* Log lines as on a terminal, whatever runs the tests. */
		unsetenv("JOURNAL_STREAM");
		execv(bin, (char *const *)argv);
		dprintf(2, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	live_pid = d->pid;
	live_owner = d->owner;
}

/* Wait, bounded, until the daemon's socket accepts (1) or it exits (0,
 * with *status).  Not serving in time is a failure. */
static int daemon_wait_serving(struct daemon *d, int *status)
{
	long deadline = now_ms() + IO_TIMEOUT_MS;
	int fd;

	for (;;) {
		fd = connect_to(d->sock);
		if (fd >= 0) {
			close(fd);
			return 1;
		}
		if (waitpid(d->pid, status, WNOHANG) == d->pid) {
			reaped(d);
			return 0;
		}
		if (now_ms() > deadline)
			FAIL("the daemon did not accept on %s within %d ms; "
			     "its log:\n%s",
			     d->sock, IO_TIMEOUT_MS, log_tail(d));
		usleep(5000);
	}
}

void daemon_start_args(struct daemon *d, const char *conf,
		       const char *const *args)
{
	static int n;
	int status;

	memset(d, 0, sizeof(*d));
	for (int i = 0; args && args[i]; i++) {
		EXPECT(i < 8, "more than 8 extra daemon arguments");
		d->args[i] = args[i];
	}
	snprintf(d->dir, sizeof(d->dir), "%s/d%d.%d", tmp_root, (int)getpid(),
		 n++);
	EXPECT(mkdir(d->dir, 0755) == 0, "mkdir %s: %s", d->dir,
	       strerror(errno));
	/* A peer that drops to `nobody` must reach the socket. */
	chmod(d->dir, 0755);
	snprintf(d->sock, sizeof(d->sock), "%s/potad.sock", d->dir);
	snprintf(d->state, sizeof(d->state), "%s/state", d->dir);
	if (conf) {
		FILE *f;

		snprintf(d->conf, sizeof(d->conf), "%s/potad.conf", d->dir);
		f = fopen(d->conf, "w");
		EXPECT(f != NULL, "%s: %s", d->conf, strerror(errno));
		fputs(conf, f);
		fclose(f);
	}
	daemon_spawn(d);
	if (!daemon_wait_serving(d, &status))
		FAIL("the daemon exited before serving (status %#x); "
		     "its log:\n%s",
		     status, log_tail(d));
}

/* Start the daemon on a fresh directory and wait (bounded) until its
 * socket accepts.  conf: configuration text, or NULL for none. */
void daemon_start(struct daemon *d, const char *conf)
{
	daemon_start_args(d, conf, NULL);
}

int daemon_try_restart(struct daemon *d, int *status)
{
	EXPECT(d->pid <= 0, "restart: the daemon (pid %d) is still running",
	       (int)d->pid);
	daemon_spawn(d);
	return daemon_wait_serving(d, status);
}

void daemon_restart(struct daemon *d)
{
	int status;

	if (!daemon_try_restart(d, &status))
		FAIL("the restarted daemon exited before serving (%s %d); "
		     "its log:\n%s",
		     WIFEXITED(status) ? "exit" : "signal",
		     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		     log_tail(d));
}

void daemon_kill(struct daemon *d)
{
	int status;

	EXPECT(d->pid > 0, "the daemon is not running");
	EXPECT(kill(d->pid, SIGKILL) == 0, "kill: %s", strerror(errno));
	status = daemon_wait(d, IO_TIMEOUT_MS);
	EXPECT(status != -1, "the daemon outlived SIGKILL by %d ms",
	       IO_TIMEOUT_MS);
	EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	       "expected death by SIGKILL, got status %#x; its log:\n%s",
	       status, log_tail(d));
}

/* Read at most n - 1 bytes of path into buf, NUL-terminated. */
static void slurp(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t k;

	while (fd >= 0 && len < n - 1 &&
	       (k = read(fd, buf + len, n - 1 - len)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		len += (size_t)k;
	}
	if (fd >= 0)
		close(fd);
	buf[len] = '\0';
}

const char *log_text(const struct daemon *d)
{
	static char buf[256 * 1024];

	slurp(d->log, buf, sizeof(buf));
	return buf;
}

int potad_run(char *out, size_t outsz, char *err, size_t errsz, int timeout_ms,
	      ...)
{
	static int n;
	const char *bin = daemon_path();
	const char *argv[32];
	char opath[256], epath[256];
	int argc = 0, status;
	long deadline = now_ms() + timeout_ms;
	va_list ap;
	pid_t pid;

	argv[argc++] = "potad";
	va_start(ap, timeout_ms);
	while (argc < 31 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(opath, sizeof(opath), "%s/run%d.%d.out", tmp_root,
		 (int)getpid(), n);
	snprintf(epath, sizeof(epath), "%s/run%d.%d.err", tmp_root,
		 (int)getpid(), n++);
	pid = fork();
	EXPECT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int ofd = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int efd = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ofd < 0 || efd < 0)
			_exit(127);
		dup2(ofd, 1);
		dup2(efd, 2);
		signal(SIGPIPE, SIG_DFL);
		unsetenv("JOURNAL_STREAM");
		execv(bin, (char *const *)argv);
		dprintf(2, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	for (;;) {
		pid_t p = waitpid(pid, &status, WNOHANG);

		if (p == pid)
			break;
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			FAIL("potad %s did not exit within %d ms", argv[1],
			     timeout_ms);
		}
		usleep(2000);
	}
	if (out && outsz)
		slurp(opath, out, outsz);
	if (err && errsz)
		slurp(epath, err, errsz);
	unlink(opath);
	unlink(epath);
	return status;
}

/* Wait (bounded) for the daemon to exit; its wait status or -1. */
int daemon_wait(struct daemon *d, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t p = waitpid(d->pid, &status, WNOHANG);

		if (p == d->pid) {
			reaped(d);
			return status;
		}
		if (now_ms() > deadline)
			return -1;
		usleep(2000);
	}
}

/* SIGTERM, then expect a graceful stop: exit 0 and the socket gone. */
void daemon_stop(struct daemon *d)
{
	int status;
	struct stat sb;

	EXPECT(d->pid > 0, "the daemon is not running");
	EXPECT(kill(d->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	status = daemon_wait(d, IO_TIMEOUT_MS);
	if (status == -1) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		reaped(d);
		FAIL("the daemon did not stop within %d ms of SIGTERM; its "
		     "log:\n%s",
		     IO_TIMEOUT_MS, log_tail(d));
	}
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "after SIGTERM: expected exit status 0, got %s %d; its "
	       "log:\n%s",
	       WIFEXITED(status) ? "exit" : "signal",
	       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
	       log_tail(d));
	EXPECT(lstat(d->sock, &sb) < 0 && errno == ENOENT,
	       "after a graceful stop the socket %s should be gone", d->sock);
}

/*
 * A raw client connection.
 */
void cl_open(struct cl *c, const struct daemon *d)
{
	memset(c, 0, sizeof(*c));
	c->fd = connect_to(d->sock);
	EXPECT(c->fd >= 0, "connect %s: %s", d->sock, strerror(-c->fd));
	c->next_id = 1;
	c->d = d;
}

void cl_close(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (size_t i = 0; i < c->nstash; i++)
		potad__v1__server_message__free_unpacked(c->stash[i], NULL);
	c->nstash = 0;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		EXPECT(k > 0, "send %zu bytes: %s", n, strerror(errno));
		b += k;
		n -= (size_t)k;
	}
}

/* Append one framed Request to a growing buffer. */
void frame_req(uint8_t **buf, size_t *len, size_t *cap,
	       const Potad__V1__Request *req)
{
	size_t size = potad__v1__request__get_packed_size(req);
	size_t need = *len + POTAD_VARINT_MAX + size;

	if (need > *cap) {
		size_t nc = *cap ? *cap : 4096;

		while (nc < need)
			nc *= 2;
		*buf = realloc(*buf, nc);
		EXPECT(*buf != NULL, "out of memory");
		*cap = nc;
	}
	*len += potad__varint_put(size, *buf + *len);
	*len += potad__v1__request__pack(req, *buf + *len);
}

void cl_send(struct cl *c, const Potad__V1__Request *req)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	frame_req(&buf, &len, &cap, req);
	write_all(c->fd, buf, len);
	free(buf);
}

/* Read one ServerMessage.  Returns 1 with *out set, 0 at end of stream
 * (with nothing pending), -ETIMEDOUT, or -EBADMSG for a bad frame. */
int cl_recv(struct cl *c, int timeout_ms, Potad__V1__ServerMessage **out)
{
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		uint64_t len = 0;
		int k = potad__varint_get(c->buf, c->len, &len);
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		long left;
		ssize_t n;

		if (k < 0 || len > 64 * MiB)
			return -EBADMSG;
		if (k > 0 && c->len - (size_t)k >= len) {
			*out = potad__v1__server_message__unpack(
			    NULL, (size_t)len, c->buf + k);
			if (!*out)
				return -EBADMSG;
			memmove(c->buf, c->buf + k + len,
				c->len - (size_t)k - (size_t)len);
			c->len -= (size_t)k + (size_t)len;
			return 1;
		}
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 131072;
			c->buf = realloc(c->buf, c->cap);
			EXPECT(c->buf != NULL, "out of memory");
		}
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return -ETIMEDOUT;
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && errno == ECONNRESET)
			n = 0;
		EXPECT(n >= 0, "read: %s", strerror(errno));
		if (n == 0)
			return c->len ? -EBADMSG : 0;
		c->len += (size_t)n;
	}
}

Potad__V1__Response *cl_response_at(const char *file, int line, struct cl *c,
				    Potad__V1__ServerMessage **keep)
{
	for (;;) {
		Potad__V1__ServerMessage *m = NULL;
		int rc = cl_recv(c, IO_TIMEOUT_MS, &m);

		if (rc == 0)
			fail_at(file, line,
				"the daemon closed the connection instead of "
				"answering (after %zu answers on it); its "
				"log:\n%s",
				c->nresp, c->d ? log_tail(c->d) : "");
		if (rc == -ETIMEDOUT)
			fail_at(file, line,
				"no answer within %d ms (after %zu answers on "
				"this connection); its log:\n%s",
				IO_TIMEOUT_MS, c->nresp,
				c->d ? log_tail(c->d) : "");
		if (rc != 1)
			fail_at(file, line,
				"undecodable ServerMessage from the daemon");
		if (m->msg_case == POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE) {
			c->nresp++;
			*keep = m;
			return m->response;
		}
		EXPECT(m->msg_case == POTAD__V1__SERVER_MESSAGE__MSG_EVENT,
		       "a ServerMessage with neither response nor event "
		       "(case %d)",
		       (int)m->msg_case);
		EXPECT(c->nstash < MAX_STASH, "more than %d unread events",
		       MAX_STASH);
		c->stash[c->nstash++] = m;
	}
}

/* The next event: a stashed one, or one read within timeout_ms.  NULL if
 * none came.  A response arriving instead is a failure. */
Potad__V1__ServerMessage *cl_event(struct cl *c, int timeout_ms)
{
	Potad__V1__ServerMessage *m = NULL;
	int rc;

	if (c->nstash) {
		m = c->stash[0];
		memmove(c->stash, c->stash + 1,
			(c->nstash - 1) * sizeof(c->stash[0]));
		c->nstash--;
		return m;
	}
	rc = cl_recv(c, timeout_ms, &m);
	if (rc == -ETIMEDOUT)
		return NULL;
	EXPECT(rc == 1, "waiting for an event: %s",
	       rc == 0 ? "end of stream" : "undecodable message");
	EXPECT(m->msg_case == POTAD__V1__SERVER_MESSAGE__MSG_EVENT,
	       "expected an event, got a ServerMessage of case %d",
	       (int)m->msg_case);
	return m;
}

/* After the daemon refused the connection: expect end of stream. */
void expect_eof(struct cl *c, const char *what)
{
	Potad__V1__ServerMessage *m = NULL;
	int rc = cl_recv(c, IO_TIMEOUT_MS, &m);

	if (rc == 1)
		potad__v1__server_message__free_unpacked(m, NULL);
	EXPECT(rc == 0,
	       "%s: expected the daemon to close the connection, got %s", what,
	       rc == 1		  ? "another message"
	       : rc == -ETIMEDOUT ? "nothing (still open)"
				  : "a bad frame");
}

/*
 * Operations.  Each builder returns a heap Op owning its one submessage;
 * strings and arrays are borrowed from the caller.
 */
void *xcalloc(size_t n)
{
	void *p = calloc(1, n);

	EXPECT(p != NULL, "out of memory");
	return p;
}

static Potad__V1__Op *new_op(Potad__V1__Op__OpCase oc, void *sub)
{
	Potad__V1__Op *op = xcalloc(sizeof(*op));

	potad__v1__op__init(op);
	op->op_case = oc;
	op->hello = sub; /* every member of the oneof is a pointer */
	return op;
}

void free_op(Potad__V1__Op *op)
{
	free(op->hello);
	free(op);
}

Potad__V1__Op *op_hello(void)
{
	Potad__V1__Hello *m = xcalloc(sizeof(*m));

	potad__v1__hello__init(m);
	m->protocol = POTAD_PROTOCOL;
	m->client = "check_daemon";
	return new_op(POTAD__V1__OP__OP_HELLO, m);
}

Potad__V1__Op *op_list(void)
{
	Potad__V1__ListSpaces *m = xcalloc(sizeof(*m));

	potad__v1__list_spaces__init(m);
	return new_op(POTAD__V1__OP__OP_LIST_SPACES, m);
}

Potad__V1__Op *op_stat(const char *name)
{
	Potad__V1__SpaceStat *m = xcalloc(sizeof(*m));

	potad__v1__space_stat__init(m);
	m->name = (char *)name;
	return new_op(POTAD__V1__OP__OP_SPACE_STAT, m);
}

Potad__V1__Op *op_alloc(struct aa a)
{
	Potad__V1__Alloc *m = xcalloc(sizeof(*m));

	potad__v1__alloc__init(m);
	m->space = (char *)(a.space ? a.space : "default");
	m->size = a.size;
	m->align = a.align;
	m->min = a.min;
	m->max = a.max;
	m->at = a.at;
	m->top_down = a.top_down;
	m->whole = a.whole;
	m->fixed = a.fixed;
	m->session = a.session;
	if (a.label)
		m->label = (char *)a.label;
	if (a.token)
		m->token = (char *)a.token;
	if (a.reserve)
		m->reserve = (char *)a.reserve;
	m->tag = a.tag;
	m->clean = a.clean;
	return new_op(POTAD__V1__OP__OP_ALLOC, m);
}

Potad__V1__Op *op_free(const char *space, uint64_t handle)
{
	Potad__V1__Free *m = xcalloc(sizeof(*m));

	potad__v1__free__init(m);
	m->space = (char *)space;
	m->handle = handle;
	return new_op(POTAD__V1__OP__OP_FREE, m);
}

Potad__V1__Op *op_free_at(const char *space, uint64_t offset)
{
	Potad__V1__Op *op = op_free(space, 0);

	op->free->by_offset = true;
	op->free->offset = offset;
	return op;
}

Potad__V1__Op *op_shrink(const char *space, uint64_t handle, uint64_t keep)
{
	Potad__V1__Op *op = op_free(space, handle);

	op->free->keep = keep;
	return op;
}

Potad__V1__Op *op_lookup(const char *space, uint64_t offset)
{
	Potad__V1__Lookup *m = xcalloc(sizeof(*m));

	potad__v1__lookup__init(m);
	m->space = (char *)space;
	m->offset = offset;
	return new_op(POTAD__V1__OP__OP_LOOKUP, m);
}

Potad__V1__Op *op_extents(const char *space)
{
	Potad__V1__ListExtents *m = xcalloc(sizeof(*m));

	potad__v1__list_extents__init(m);
	m->space = (char *)space;
	return new_op(POTAD__V1__OP__OP_LIST_EXTENTS, m);
}

Potad__V1__Op *op_extents_page(const char *space, uint64_t from,
			       uint32_t limit, const char *label)
{
	Potad__V1__Op *op = op_extents(space);

	op->list_extents->from = from;
	op->list_extents->limit = limit;
	op->list_extents->label = (char *)label;
	return op;
}

Potad__V1__Op *op_poison(const char *space, uint64_t off, uint64_t len)
{
	Potad__V1__Poison *m = xcalloc(sizeof(*m));

	potad__v1__poison__init(m);
	m->space = (char *)space;
	m->offset = off;
	m->length = len;
	return new_op(POTAD__V1__OP__OP_POISON, m);
}

/* A RANGE space of size bytes at base 0, 4 KiB units, open to all. */
Potad__V1__Op *op_space_add(const char *name, uint64_t size)
{
	Potad__V1__SpaceAdd *m = xcalloc(sizeof(*m));

	potad__v1__space_add__init(m);
	m->name = (char *)name;
	m->kind = POTAD__V1__SPACE_KIND__RANGE;
	m->size = size;
	m->granule = 4096;
	m->allow_all = true;
	return new_op(POTAD__V1__OP__OP_SPACE_ADD, m);
}

Potad__V1__Op *op_space_add_ex(struct sa a)
{
	Potad__V1__SpaceAdd *m = xcalloc(sizeof(*m));

	potad__v1__space_add__init(m);
	m->name = (char *)a.name;
	m->kind = a.kind;
	if (a.path)
		m->path = (char *)a.path;
	if (a.pci)
		m->pci = (char *)a.pci;
	m->bar = a.bar;
	m->base_offset = a.base;
	m->size = a.size;
	m->granule = a.granule;
	m->allow_all = a.allow_all;
	m->force = a.force;
	m->discard = a.discard;
	m->isolate = a.isolate;
	return new_op(POTAD__V1__OP__OP_SPACE_ADD, m);
}

Potad__V1__Op *op_space_rm(const char *name, bool force)
{
	Potad__V1__SpaceRemove *m = xcalloc(sizeof(*m));

	potad__v1__space_remove__init(m);
	m->name = (char *)name;
	m->force = force;
	return new_op(POTAD__V1__OP__OP_SPACE_REMOVE, m);
}

Potad__V1__Op *op_child_add(const char *parent, const char *name, uint64_t size,
			    bool reserve, uint32_t *uids, size_t nuids)
{
	Potad__V1__ChildAdd *m = xcalloc(sizeof(*m));

	potad__v1__child_add__init(m);
	m->parent = (char *)parent;
	m->name = (char *)name;
	m->size = size;
	m->reserve = reserve;
	m->allow_uids = uids;
	m->n_allow_uids = nuids;
	return new_op(POTAD__V1__OP__OP_CHILD_ADD, m);
}

Potad__V1__Op *op_child_rm(const char *name)
{
	Potad__V1__ChildRemove *m = xcalloc(sizeof(*m));

	potad__v1__child_remove__init(m);
	m->name = (char *)name;
	return new_op(POTAD__V1__OP__OP_CHILD_REMOVE, m);
}

Potad__V1__Op *op_subscribe(const char *space, uint32_t pct)
{
	Potad__V1__Subscribe *m = xcalloc(sizeof(*m));

	potad__v1__subscribe__init(m);
	m->space = (char *)(space ? space : "");
	m->low_water_percent = pct;
	return new_op(POTAD__V1__OP__OP_SUBSCRIBE, m);
}

Potad__V1__Op *op_empty(void)
{
	Potad__V1__Op *op = xcalloc(sizeof(*op));

	potad__v1__op__init(op);
	return op;
}

/* Send one Request of n ops (freeing them), read its Response, check the
 * id and the count, and copy the results into out[0..n-1]. */
void call_ops(struct cl *c, Potad__V1__Op **ops, size_t n, struct res *out)
{
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;
	Potad__V1__ServerMessage *keep = NULL;
	Potad__V1__Response *resp;

	req.id = c->next_id++;
	req.ops = ops;
	req.n_ops = n;
	cl_send(c, &req);
	for (size_t i = 0; i < n; i++)
		free_op(ops[i]);
	resp = cl_response(c, &keep);
	EXPECT_EQ(resp->id, req.id);
	EXPECT(resp->status == POTAD__V1__STATUS__OK,
	       "request %" PRIu64 " refused as a whole: %s (\"%s\")", req.id,
	       status_name(resp->status), resp->message);
	EXPECT_EQ(resp->n_results, n);
	for (size_t i = 0; i < n; i++)
		copy_res(&out[i], resp->results[i]);
	potad__v1__server_message__free_unpacked(keep, NULL);
}

struct res call(struct cl *c, Potad__V1__Op *op)
{
	struct res r;

	call_ops(c, &op, 1, &r);
	return r;
}

struct ext alloc_ok_at(const char *file, int line, struct cl *c, struct aa a)
{
	struct res r = call(c, op_alloc(a));

	if (r.status != POTAD__V1__STATUS__OK)
		fail_at(file, line,
			"alloc of %" PRIu64 " bytes in %s: expected OK, got "
			"%s (\"%s\")",
			a.size, a.space ? a.space : "default",
			status_name(r.status), r.msg);
	if (r.body != POTAD__V1__RESULT__BODY_EXTENT)
		fail_at(file, line, "alloc: OK without an extent (body %d)",
			r.body);
	return r.ext;
}

void free_ok(struct cl *c, const char *space, uint64_t handle)
{
	struct res r = call(c, op_free(space, handle));

	EXPECT(r.status == POTAD__V1__STATUS__OK,
	       "free of handle %#" PRIx64 " in %s: expected OK, got %s "
	       "(\"%s\")",
	       handle, space, status_name(r.status), r.msg);
	EXPECT_EQ(r.ext.handle, handle);
}

struct sinfo stat_ok(struct cl *c, const char *space)
{
	struct res r = call(c, op_stat(space));

	EXPECT(r.status == POTAD__V1__STATUS__OK &&
		   r.body == POTAD__V1__RESULT__BODY_SPACE,
	       "stat %s: expected OK with a space, got %s (\"%s\")", space,
	       status_name(r.status), r.msg);
	return r.space;
}

size_t count_spaces(struct cl *c)
{
	struct res r = call(c, op_list());

	EXPECT_OK(r);
	return r.n;
}

void expect_same_at(const char *file, int line, struct cl *c, const char *space,
		    const struct sinfo *a, const char *what)
{
	struct sinfo b = stat_ok(c, space);

#define SAME(f)                                                                \
	if (a->f != b.f)                                                       \
	fail_at(file, line,                                                    \
		"after %s: %s." #f " changed: before %" PRIu64                 \
		", after %" PRIu64,                                            \
		what, space, (uint64_t)a->f, (uint64_t)b.f)
	SAME(size);
	SAME(free_bytes);
	SAME(used_bytes);
	SAME(poisoned_bytes);
	SAME(extents);
	SAME(free_blocks);
	SAME(largest_free_block);
#undef SAME
}

/* Poll (bounded) until space holds `want` extents: closing a connection
 * is handled by the daemon after the client has gone. */
struct sinfo wait_extents(struct cl *c, const char *space, uint64_t want)
{
	long deadline = now_ms() + IO_TIMEOUT_MS;
	struct sinfo s;

	for (;;) {
		s = stat_ok(c, space);
		if (s.extents == want || now_ms() > deadline)
			break;
		usleep(2000);
	}
	EXPECT(s.extents == want,
	       "%s: expected %" PRIu64 " extents within "
	       "%d ms, still %" PRIu64,
	       space, want, IO_TIMEOUT_MS, s.extents);
	return s;
}

struct sinfo poll_clean(struct cl *c, const char *space, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	struct sinfo s;

	for (;;) {
		s = stat_ok(c, space);
		if ((!s.dirty_bytes && !s.discarding_bytes) ||
		    now_ms() > deadline)
			return s;
		usleep(10000);
	}
}

/*
 * Helper processes: fn runs in a forked child with failures going to a
 * pipe; the test asserts the child exited 0 and shows what it wrote.
 */
void child_expect(pid_t pid, int rfd, const char *what)
{
	char buf[4096];
	size_t len = 0;
	int status;
	ssize_t n;

	while (len < sizeof(buf) - 1 &&
	       (n = read(rfd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(rfd);
	EXPECT(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "%s: the helper process failed (%s %d): %s", what,
	       WIFEXITED(status) ? "exit" : "signal",
	       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
	       len ? buf : "(no message)");
}

/* Fork a helper; returns its pid in the parent, sets *rfd to the read end
 * of its failure pipe.  In the child fail_fd is set and 0 is returned. */
pid_t helper_fork(int *rfd)
{
	int p[2];
	pid_t pid;

	EXPECT(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	pid = fork();
	EXPECT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		fail_fd = p[1];
		return 0;
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

/* A Response with id 0 refusing the frame: its status. */
int refusal(struct cl *c)
{
	Potad__V1__ServerMessage *m = NULL;
	Potad__V1__Response *resp = cl_response(c, &m);
	int st = resp->status;

	EXPECT_EQ(resp->id, 0);
	EXPECT_EQ(resp->n_results, 0);
	EXPECT(resp->message && *resp->message,
	       "a refused frame should say why");
	potad__v1__server_message__free_unpacked(m, NULL);
	return st;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int harness_init(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(tmp_root, sizeof(tmp_root), "%s/potad-check.XXXXXX",
		 tmp && *tmp && strlen(tmp) < 48 ? tmp : "/tmp");
	if (!mkdtemp(tmp_root))
		return -errno;
	/* A peer that drops to `nobody` must reach the sockets. */
	chmod(tmp_root, 0755);
	signal(SIGPIPE, SIG_IGN);
	atexit(reap_at_exit);
	return 0;
}

const char *harness_root(void)
{
	return tmp_root;
}

void harness_fini(void)
{
	if (tmp_root[0] && nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "could not remove %s: %s\n", tmp_root,
			strerror(errno));
}
