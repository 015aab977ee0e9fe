/* SPDX-License-Identifier: MIT */
/* The daemon's loop: the listening socket, signals, and a graceful stop. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "conn.h"
#include "notify.h"
#include "journal.h"

/*
 * The listener hands each client to conn.c (potad__conn_accept()), which
 * does the rest.  On SIGTERM or SIGINT the listener closes, every
 * connection answers what it has read and closes, and the loop's last
 * handles go once the last connection has; after 5 s the ones left are
 * closed with their replies unsent.
 */

static struct {
	uv_loop_t *loop;
	uv_pipe_t listener;
	uv_signal_t sigterm, sigint;
	uv_timer_t stop_timer;
	uv_timer_t stall_timer;
	const struct potad_config *cfg;
	bool stopping;
	bool inherited; /* systemd's socket: not ours to unlink */
} srv;

static void stop_handles(void)
{
	potad__journal_stop();
	uv_close((uv_handle_t *)&srv.sigterm, NULL);
	uv_close((uv_handle_t *)&srv.sigint, NULL);
	uv_close((uv_handle_t *)&srv.stop_timer, NULL);
	uv_close((uv_handle_t *)&srv.stall_timer, NULL);
}

static void on_connection(uv_stream_t *l, int status)
{
	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	potad__conn_accept(l);
}

/* Who is dropped, and why, is conn.c's (potad__conns_drop_stalled()). */
static void on_stall_check(uv_timer_t *t)
{
	potad__conns_drop_stalled();
}

/* Clients that will not take their last replies do not hold us up. */
static void on_stop_timeout(uv_timer_t *t)
{
	log_warn("%zu connection(s) still not drained after 5 s; closing them",
		 potad__conns_count());
	potad__conns_close_all();
}

static void on_signal(uv_signal_t *h, int signum)
{
	if (srv.stopping)
		return;
	srv.stopping = true;
	potad__notify_stopping();
	log_info("%s: stopping; finishing %zu connection(s)",
		 signum == SIGTERM ? "SIGTERM" : "SIGINT",
		 potad__conns_count());
	uv_close((uv_handle_t *)&srv.listener, NULL);
	potad__conns_finish(stop_handles);
	if (potad__conns_count())
		uv_timer_start(&srv.stop_timer, on_stop_timeout, 5000, 0);
}

/* Refuse to steal a live daemon's socket; clear a dead one's. */
static int clear_stale_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd, rc;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode)) {
		log_err("%s exists and is not a socket", path);
		return -EEXIST;
	}
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0) {
		log_err("another potad is serving on %s", path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0)
		return -errno;
	log_info("removed stale socket %s", path);
	return 0;
}

static int mkdir_parents(const char *path)
{
	char *copy = strdup(path), *p;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			rc = -errno;
		*p = '/';
	}
	free(copy);
	return rc;
}

/* The timers and signal handlers that serving needs, however we listen. */
static void start_handles(uv_loop_t *loop)
{
	uv_timer_init(loop, &srv.stop_timer);
	uv_timer_init(loop, &srv.stall_timer);
	uv_timer_start(&srv.stall_timer, on_stall_check, srv.cfg->stall_ms / 6,
		       srv.cfg->stall_ms / 6);
	uv_unref((uv_handle_t *)&srv.stall_timer);
	uv_signal_init(loop, &srv.sigterm);
	uv_signal_init(loop, &srv.sigint);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Serve on the socket systemd passed (potad.socket).  Its path, owner and
 * mode are the socket unit's business, so cfg's socket path and mode are
 * not applied, and the socket is never unlinked: systemd created it and
 * keeps listening on it while potad is restarted.
 */
static int listen_inherited(int fd, uv_loop_t *loop)
{
	int rc;

	uv_pipe_init(loop, &srv.listener, 0);
	rc = uv_pipe_open(&srv.listener, fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv.listener, 128,
			       on_connection);
	if (rc < 0) {
		log_err("cannot listen on the socket systemd passed (fd %d): "
			"%s", fd, uv_strerror(rc));
		uv_close((uv_handle_t *)&srv.listener, NULL);
		uv_run(loop, UV_RUN_NOWAIT);
		return rc;
	}
	srv.inherited = true;
	start_handles(loop);
	log_info("serving on the socket inherited from systemd (fd %d; %s "
		 "is not used; frame limit %zu bytes, up to %zu connections)",
		 fd, srv.cfg->socket_path, srv.cfg->max_frame,
		 srv.cfg->max_conns);
	return 0;
}

int potad__listen(const struct potad_config *cfg, uv_loop_t *loop)
{
	int rc;

	srv.cfg = cfg;
	srv.loop = loop;
	potad__conns_init(cfg, loop);
	rc = potad__notify_listen_fd();
	if (rc >= 0)
		return listen_inherited(rc, loop);
	if (rc != -ENOENT)
		return rc;
	if (strlen(cfg->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		log_err("socket path %s is too long", cfg->socket_path);
		return -ENAMETOOLONG;
	}
	rc = mkdir_parents(cfg->socket_path);
	if (rc == 0)
		rc = clear_stale_socket(cfg->socket_path);
	if (rc < 0) {
		log_err("cannot prepare %s: %s", cfg->socket_path,
			strerror(-rc));
		return rc;
	}
	uv_pipe_init(loop, &srv.listener, 0);
	rc = uv_pipe_bind(&srv.listener, cfg->socket_path);
	if (rc == 0 && chmod(cfg->socket_path, cfg->socket_mode) < 0)
		rc = -errno;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv.listener, 128,
			       on_connection);
	if (rc < 0) {
		log_err("cannot listen on %s: %s", cfg->socket_path,
			uv_strerror(rc));
		uv_close((uv_handle_t *)&srv.listener, NULL);
		uv_run(loop, UV_RUN_NOWAIT);
		return rc;
	}
	start_handles(loop);
	log_info("serving on %s (mode %04o, frame limit %zu bytes, up to %zu "
		 "connections)",
		 cfg->socket_path, cfg->socket_mode, cfg->max_frame,
		 cfg->max_conns);
	return 0;
}

int potad__serve(const struct potad_config *cfg)
{
	int rc = uv_run(srv.loop, UV_RUN_DEFAULT);

	if (srv.stopping && !srv.inherited)
		unlink(cfg->socket_path);
	return rc < 0 ? rc : 0;
}
