/* SPDX-License-Identifier: MIT */
/* Logging to stderr, one line per event, with levels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

static int level = POTAD_LOG_INFO;
static const char *const names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { 3, 4, 6, 7 };

void potad__log_set_level(int l)
{
	level = l;
}

int potad__log_level(void)
{
	return level;
}

int potad__log_parse_level(const char *s)
{
	for (int i = 0; i <= POTAD_LOG_DEBUG; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return POTAD_LOG_WARN;
	return -1;
}

static void vlog(int l, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	/* Under systemd, journald reads a <N> prefix as the priority (and
	 * stamps the time itself); a terminal gets the level spelled out. */
	if (getenv("JOURNAL_STREAM"))
		n = snprintf(line, sizeof(line), "<%d>%s: ", syslog_prio[l],
			     names[l]);
	else
		n = snprintf(line, sizeof(line), "potad: %s: ", names[l]);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line so lines from a crash-looping daemon stay whole. */
	n = (int)strlen(line);
	if (n < (int)sizeof(line) - 1)
		line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to say it. */
	}
}

void potad__log(int l, const char *fmt, ...)
{
	va_list ap;

	if (l > level)
		return;
	va_start(ap, fmt);
	vlog(l, fmt, ap);
	va_end(ap);
}

/* Misbehaving clients can cause warnings as fast as they can connect:
 * CLIENT_BURST lines per CLIENT_WINDOW seconds, then silence, counted,
 * until the next window says how many were left out. */
#define CLIENT_BURST 10
#define CLIENT_WINDOW 60
void potad__log_client(const char *fmt, ...)
{
	static time_t window;
	static unsigned lines, dropped;
	time_t now = time(NULL);
	va_list ap;

	if (POTAD_LOG_WARN > level)
		return;
	if (now - window >= CLIENT_WINDOW) {
		if (dropped)
			potad__log(POTAD_LOG_WARN, "%u more warning(s) about "
				   "clients in the last %d s were not logged",
				   dropped, CLIENT_WINDOW);
		window = now;
		lines = dropped = 0;
	}
	if (lines >= CLIENT_BURST) {
		dropped++;
		return;
	}
	lines++;
	va_start(ap, fmt);
	vlog(POTAD_LOG_WARN, fmt, ap);
	va_end(ap);
}
