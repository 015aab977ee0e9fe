/* SPDX-License-Identifier: MIT */
/* potad's side of systemd: socket activation and sd_notify status. */

/*
 * libsystemd is optional.  Built with it, potad serves on a socket that
 * systemd passes (potad.socket) instead of binding its own, and tells the
 * service manager when it is ready, what it serves and when it stops
 * (Type=notify).  Built without it, the same calls do nothing; one log line
 * at start says so when the environment shows that systemd expected more.
 *
 * Whether we run under a service manager is decided once, before
 * sd_listen_fds() clears LISTEN_PID, so that main.c can stay in the
 * foreground: systemd tracks the process it started, not a fork.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon.h"
#include "journal.h"
#include "notify.h"

/* The STATUS= line is refreshed this often while serving. */
#define STATUS_MS 30000

static struct {
	bool managed;
	bool timer_on;
	uv_timer_t timer;
} nt;

static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

void potad__notify_init(void)
{
	const char *pid = getenv("LISTEN_PID");

	nt.managed = env_set("NOTIFY_SOCKET") ||
		     (pid && strtol(pid, NULL, 10) == (long)getpid());
#ifndef HAVE_LIBSYSTEMD
	if (env_set("NOTIFY_SOCKET") || env_set("LISTEN_FDS"))
		log_warn("potad was built without libsystemd: no readiness "
			 "notification and no socket activation (NOTIFY_SOCKET "
			 "or LISTEN_FDS is ignored)");
#endif
}

bool potad__notify_managed(void)
{
	return nt.managed;
}

int potad__notify_listen_fd(void)
{
#ifdef HAVE_LIBSYSTEMD
	int n = sd_listen_fds(1), fd = SD_LISTEN_FDS_START;

	if (n <= 0)
		return n < 0 ? n : -ENOENT;
	if (n > 1) {
		log_err("systemd passed %d sockets; potad takes one", n);
		return -EINVAL;
	}
	if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
		log_err("the socket systemd passed (fd %d) is not a listening "
			"Unix stream socket", fd);
		return -ENOTSOCK;
	}
	return fd;
#else
	return -ENOENT;
#endif
}

#ifdef HAVE_LIBSYSTEMD
/* The last checkpoint, for STATUS: "checkpoint 12:04:31", "no
 * checkpoint yet" or "journal off". */
static void checkpoint_words(char *buf, size_t len)
{
	time_t t = potad__journal_checkpointed();
	struct tm tm;

	if (!potad__journal_on())
		snprintf(buf, len, "journal off");
	else if (!t || !localtime_r(&t, &tm))
		snprintf(buf, len, "no checkpoint yet");
	else
		strftime(buf, len, "last checkpoint %F %T", &tm);
}

static void send_status(void)
{
	struct potad_stats st;
	uint64_t extents = 0;
	size_t n = potad__space_count();
	char ckpt[64];

	for (size_t i = 0; i < n; i++) {
		potad_space_stats(potad__space_at(i)->eng, &st);
		extents += st.extents;
	}
	checkpoint_words(ckpt, sizeof(ckpt));
	sd_notifyf(0, "STATUS=serving %zu space(s), %llu extent(s); %s", n,
		   (unsigned long long)extents, ckpt);
}

static void on_status_timer(uv_timer_t *t)
{
	send_status();
}
#endif

void potad__notify_ready(struct uv_loop_s *loop)
{
#ifdef HAVE_LIBSYSTEMD
	if (!env_set("NOTIFY_SOCKET"))
		return;
	send_status();
	sd_notify(0, "READY=1");
	uv_timer_init(loop, &nt.timer);
	uv_timer_start(&nt.timer, on_status_timer, STATUS_MS, STATUS_MS);
	uv_unref((uv_handle_t *)&nt.timer);
	nt.timer_on = true;
#endif
}

void potad__notify_stopping(void)
{
#ifdef HAVE_LIBSYSTEMD
	if (nt.timer_on) {
		uv_close((uv_handle_t *)&nt.timer, NULL);
		nt.timer_on = false;
	}
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
#endif
}
