/* SPDX-License-Identifier: MIT */
/* Logging to stderr, one line per event, with levels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void potad__log(int l, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (l > level)
		return;
	/* Under systemd, journald reads a <N> prefix as the priority (and
	 * stamps the time itself); a terminal gets the level spelled out. */
	if (getenv("JOURNAL_STREAM"))
		n = snprintf(line, sizeof(line), "<%d>%s: ", syslog_prio[l],
			     names[l]);
	else
		n = snprintf(line, sizeof(line), "potad: %s: ", names[l]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line so lines from a crash-looping daemon stay whole. */
	n = (int)strlen(line);
	if (n < (int)sizeof(line) - 1)
		line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to say it. */
	}
}
