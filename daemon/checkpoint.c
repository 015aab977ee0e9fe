/* SPDX-License-Identifier: MIT */
/* Checkpoints: the snapshot written by a forked copy of the daemon (or on
 * the thread pool), and the logs it covers removed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "journal.h"

/*
 * The journal decides when (journal.c: between batches, with a new log
 * already started at new_start) and this file writes the state of that
 * moment.  The snapshot is built from a forked copy of the daemon (copy on
 * write, as Redis's BGSAVE does), so the loop pauses only for the fork, a
 * few milliseconds at a million extents instead of some tens building the
 * snapshot; the child writes it, syncs it, renames it into place and
 * reports through a pipe.  Where fork is refused (or checkpoint_fork = no)
 * the snapshot is built on the loop and written on the thread pool.  Once
 * it is in place, the logs older than new_start go, off the loop.
 */

static struct {
	uv_loop_t *loop;
	const char *dir; /* the journal's */
	int dirfd, lockfd;
	bool fork_ok;
	bool busy;  /* from the start until the end is told */
	pid_t cpid; /* its child, or 0 when written in-process */
	int cpipe;  /* the child's report, read end */
	uv_poll_t cpoll;
	bool cpoll_open;
	uv_work_t cwork;
	uint8_t *snap;
	size_t snaplen;
	uint64_t snap_seq, snap_extents, new_start, t0;
	time_t wall; /* when the newest snapshot was written; 0: none */
	int err;
	const char *what;
} C = {.dirfd = -1, .lockfd = -1, .cpipe = -1};

void potad__ckpt_init(uv_loop_t *loop, const char *dir, int dirfd,
		      int lockfd, bool fork_ok)
{
	struct stat st;

	C.loop = loop;
	C.dir = dir;
	C.dirfd = dirfd;
	C.lockfd = lockfd;
	C.fork_ok = fork_ok;
	if (fstatat(dirfd, "snapshot", &st, 0) == 0)
		C.wall = st.st_mtime;
}

bool potad__ckpt_busy(void)
{
	return C.busy || C.cpoll_open;
}

time_t potad__journal_checkpointed(void)
{
	return C.wall;
}

/* Remove the logs the snapshot covers: every one older than new_start. */
static void drop_old_logs(uint64_t new_start)
{
	DIR *d = opendir(C.dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		unsigned long long s;
		char *end;

		if (strncmp(e->d_name, "journal.", 8) || strlen(e->d_name) != 24)
			continue;
		s = strtoull(e->d_name + 8, &end, 16);
		if (*end || s >= new_start)
			continue;
		if (unlinkat(C.dirfd, e->d_name, 0) < 0)
			log_warn("journal: cannot remove %s/%s: %s", C.dir,
				 e->d_name, strerror(errno));
	}
	closedir(d);
}

static void ckpt_work(uv_work_t *w)
{
	char tmp[] = "snapshot.tmp";
	size_t done = 0;
	int fd;

	C.what = "create snapshot.tmp";
	fd = openat(C.dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0640);
	if (fd < 0)
		goto fail;
	C.what = "write snapshot.tmp";
	while (done < C.snaplen) {
		ssize_t n = pwrite(fd, C.snap + done, C.snaplen - done,
				   (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			goto fail;
		}
		done += (size_t)n;
	}
	C.what = "sync snapshot.tmp";
	if (fsync(fd) < 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	C.what = "rename snapshot.tmp to snapshot";
	if (renameat(C.dirfd, tmp, C.dirfd, "snapshot") < 0)
		goto fail;
	C.what = "sync the state directory";
	if (fsync(C.dirfd) < 0)
		goto fail;
	C.err = 0;
	if (w)
		drop_old_logs(C.new_start);
	return;
fail:
	C.err = errno ? errno : EIO;
}

/* After a forked checkpoint: the logs its snapshot covers go, off the
 * loop, as in-process ones do. */
static void drop_work(uv_work_t *w)
{
	drop_old_logs(C.new_start);
}

static void ckpt_done(uv_work_t *w, int status)
{
	double ms = (double)(uv_hrtime() - C.t0) / 1e6;

	C.busy = false;
	if (C.err) {
		log_err("journal: checkpoint failed (%s: %s); the logs are kept "
			"and it is tried again later",
			C.what, strerror(C.err));
	} else {
		C.wall = time(NULL);
		log_info("journal: checkpoint at seq %llu: %llu extents, %zu "
			 "bytes, %.1f ms; older logs removed",
			 (unsigned long long)C.snap_seq,
			 (unsigned long long)C.snap_extents, C.snaplen, ms);
	}
	free(C.snap);
	C.snap = NULL;
	potad__journal_ckpt_done(C.err);
}

/* What a checkpoint's child reports before it exits.  cwhat points at a
 * string literal, which lies at the same address in both processes. */
struct ckpt_report {
	int err;
	const char *what;
	size_t len;
	uint64_t extents;
};

/* The child of a forked checkpoint: its memory is the daemon's at the
 * fork, frozen, so the snapshot is built and written from it while the
 * daemon serves on.  It takes no lock another thread may have held at
 * the fork (stdio's among them: it does not log) and touches nothing the
 * daemon shares with it but the state directory. */
static void __attribute__((noreturn)) ckpt_child(int wfd, pid_t parent)
{
	struct ckpt_report r = {0};
	int keep[] = {C.dirfd, C.lockfd, wfd}, lo = 3, rc;
	sigset_t all;

	/* A snapshot renamed into place after the daemon died could race
	 * the next daemon's recovery: die with it, and keep its lock until
	 * then. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	/* libuv's handlers would write to the daemon's signal pipe. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	/* Client sockets must close when the daemon closes them. */
	for (size_t i = 0; i < 3; i++)
		for (size_t j = i + 1; j < 3; j++)
			if (keep[j] < keep[i]) {
				int t = keep[i];

				keep[i] = keep[j];
				keep[j] = t;
			}
	for (size_t i = 0; i < 3; i++) {
		if (keep[i] < lo)
			continue;
		if (keep[i] > lo)
			close_range((unsigned)lo, (unsigned)keep[i] - 1, 0);
		lo = keep[i] + 1;
	}
	close_range((unsigned)lo, ~0u, 0);

	rc = potad__snapshot_build(C.snap_seq, &C.snap, &C.snaplen,
				   &C.snap_extents);
	if (rc < 0) {
		r.err = -rc;
		r.what = "build the snapshot";
	} else {
		ckpt_work(NULL);
		r.err = C.err;
		r.what = C.what;
		r.len = C.snaplen;
		r.extents = C.snap_extents;
	}
	if (write(wfd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(1);
	_exit(0);
}

static void cpoll_closed(uv_handle_t *h)
{
	C.cpoll_open = false;
}

/* The child's report came, or it died: reap it and finish as an
 * in-process checkpoint does. */
static void ckpt_reaped(uv_poll_t *h, int status, int events)
{
	struct ckpt_report r;
	ssize_t n;
	int st = 0;

	n = read(C.cpipe, &r, sizeof(r));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	uv_close((uv_handle_t *)&C.cpoll, cpoll_closed);
	close(C.cpipe);
	C.cpipe = -1;
	while (waitpid(C.cpid, &st, 0) < 0 && errno == EINTR)
		;
	C.cpid = 0;
	if (n == (ssize_t)sizeof(r)) {
		C.err = r.err;
		C.what = r.what;
		C.snaplen = r.len;
		C.snap_extents = r.extents;
	} else {
		C.err = ECHILD;
		C.what = WIFSIGNALED(st) ? "the writer was killed by a signal"
					  : "the writer exited without a word";
	}
	if (C.err)
		ckpt_done(NULL, 0);
	else
		uv_queue_work(C.loop, &C.cwork, drop_work, ckpt_done);
}

/* Fork the checkpoint's writer; false if that cannot be done, and the
 * checkpoint is then written in-process. */
static bool ckpt_fork(void)
{
	int p[2];
	pid_t pid, self = getpid();

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_warn("journal: cannot make a pipe for the checkpoint "
			 "writer (%s); writing it in-process", strerror(errno));
		return false;
	}
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		ckpt_child(p[1], self);
	}
	close(p[1]);
	if (pid < 0) {
		log_warn("journal: cannot fork the checkpoint writer (%s); "
			 "writing it in-process", strerror(errno));
		close(p[0]);
		return false;
	}
	C.cpid = pid;
	C.cpipe = p[0];
	uv_poll_init(C.loop, &C.cpoll, p[0]);
	uv_poll_start(&C.cpoll, UV_READABLE | UV_DISCONNECT, ckpt_reaped);
	C.cpoll_open = true;
	return true;
}

int potad__ckpt_start(uint64_t snap_seq, uint64_t new_start,
		      const char *log_path, uint64_t t0)
{
	bool forked;
	int rc;

	C.snap_seq = snap_seq;
	C.new_start = new_start;
	forked = C.fork_ok && ckpt_fork();
	if (!forked) {
		rc = potad__snapshot_build(snap_seq, &C.snap, &C.snaplen,
					   &C.snap_extents);
		if (rc < 0)
			return rc;
	}
	C.busy = true;
	C.t0 = t0;
	log_debug("journal: checkpoint started at seq %llu (%.1f ms on the "
		  "loop, %s); now writing %s",
		  (unsigned long long)snap_seq,
		  (double)(uv_hrtime() - t0) / 1e6,
		  forked ? "forked" : "in-process", log_path);
	if (!forked)
		uv_queue_work(C.loop, &C.cwork, ckpt_work, ckpt_done);
	return 0;
}
