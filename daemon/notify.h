/* SPDX-License-Identifier: MIT */
/* potad's side of systemd: socket activation and readiness (notify.c). */
#ifndef POTAD_DAEMON_NOTIFY_H
#define POTAD_DAEMON_NOTIFY_H

#include <stdbool.h>

struct uv_loop_s;

/* Note whether a service manager started us; call before anything else. */
void potad__notify_init(void);
/* True when started by systemd (NOTIFY_SOCKET, or LISTEN_PID is ours). */
bool potad__notify_managed(void);
/* The listening socket systemd passed, or -ENOENT when there is none. */
int potad__notify_listen_fd(void);
/* Tell systemd we serve (READY=1, STATUS=) and keep the status fresh. */
void potad__notify_ready(struct uv_loop_s *loop);
/* Tell systemd we are stopping (STOPPING=1). */
void potad__notify_stopping(void);

#endif
