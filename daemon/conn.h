/* SPDX-License-Identifier: MIT */
/* What the listener (server.c) asks of the connections (conn.c). */
#ifndef POTAD_DAEMON_CONN_H
#define POTAD_DAEMON_CONN_H

#include <stddef.h>
#include <uv.h>

#include "daemon.h"

/* The limits connections keep and the loop they run on; before the first. */
void potad__conns_init(const struct potad_config *cfg, uv_loop_t *loop);
/* Take the client waiting on listener: serve it, or refuse it (with a
 * reply) past max_conns. */
void potad__conn_accept(uv_stream_t *listener);
/* Drop the clients that have left replies unread, or a frame half sent,
 * for stall_timeout.  The listener's timer calls it. */
void potad__conns_drop_stalled(void);
/* How many connections are open, closing ones included. */
size_t potad__conns_count(void);
/* Stop reading, send what was answered, close; drained() runs once no
 * connection is left (at once if there is none). */
void potad__conns_finish(void (*drained)(void));
/* Close every connection now, whatever it has not sent. */
void potad__conns_close_all(void);

#endif /* POTAD_DAEMON_CONN_H */
