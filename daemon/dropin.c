/* SPDX-License-Identifier: MIT */
/* potad --unit-dropin: the systemd drop-in that opens the sandbox of
 * potad.service to exactly the devices and files potad's spaces use. */

/*
 * potad.service starts with DevicePolicy=closed and a read-only file
 * system, so a space on a block device, a device-DAX node or a file
 * outside /var/lib/potad cannot be opened until the administrator lets
 * it through.  The spaces that matter are the configuration's and the
 * ones registered at run time, which only the journal knows; this prints
 * one DeviceAllow= or ReadWritePaths= line for each, from both.  The
 * state directory is only read (the same read-only recovery as --check),
 * so it is safe while the daemon runs.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "journal.h"

struct dropin {
	char **lines;
	size_t n;
};

/* Add "KEY=VALUE" once; a repeat (a space both declared and journaled)
 * is dropped. */
static void add_line(struct dropin *d, const char *key, const char *value)
{
	char *line, **t;

	if (asprintf(&line, "%s=%s", key, value) < 0)
		return;
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->lines[i], line) == 0) {
			free(line);
			return;
		}
	}
	t = realloc(d->lines, (d->n + 1) * sizeof(*t));
	if (!t) {
		free(line);
		return;
	}
	d->lines = t;
	d->lines[d->n++] = line;
}

/* What a space of this kind at path needs from the sandbox.  Device
 * nodes are named by their resolved path (a /dev/disk/by-id link is not
 * what the device cgroup sees); files need write access for discard. */
static void add_space(struct dropin *d, int kind, const char *path)
{
	char real[PATH_MAX], rw[PATH_MAX + 3];
	const char *p;

	if (!path || !*path)
		return;
	p = realpath(path, real) ? real : path;
	switch (kind) {
	case POTAD__V1__SPACE_KIND__BLOCKDEV:
	case POTAD__V1__SPACE_KIND__DEVDAX:
		snprintf(rw, sizeof(rw), "%s rw", p);
		add_line(d, "DeviceAllow", rw);
		break;
	case POTAD__V1__SPACE_KIND__FILE:
	case POTAD__V1__SPACE_KIND__SWAP:
		add_line(d, "ReadWritePaths", p);
		break;
	default: /* range, pcibar: nothing to open */
		break;
	}
}

int potad__print_dropin(const struct potad_config *cfg, const char *config,
			const struct potad_space_decl *decls, size_t ndecls)
{
	struct potad_recovery r = {.check = true};
	struct dropin d = {0};
	int rc = 0;

	for (size_t i = 0; i < ndecls; i++)
		if (!decls[i].parent)
			add_space(&d, decls[i].kind, decls[i].path);
	if (cfg->journal) {
		rc = potad__recover(cfg->state_dir, &r);
		if (rc < 0)
			fprintf(stderr, "potad: %s: %s; only the configuration's "
				"spaces are listed\n", cfg->state_dir, r.error);
		for (size_t i = 0; rc == 0 && i < potad__space_count(); i++) {
			struct pspace *ps = potad__space_at(i);

			if (!ps->parent)
				add_space(&d, ps->kind, ps->source);
		}
		free(r.last_log);
		potad__registry_fini();
	}
	printf("# potad.service drop-in for the spaces of %s and %s,\n"
	       "# made by potad --unit-dropin.  Install it with:\n"
	       "#   mkdir -p /etc/systemd/system/potad.service.d\n"
	       "#   potad --unit-dropin > "
	       "/etc/systemd/system/potad.service.d/spaces.conf\n"
	       "#   systemctl daemon-reload && systemctl restart potad\n"
	       "[Service]\n",
	       config ? config : "the built-in configuration",
	       cfg->journal ? cfg->state_dir : "no journal");
	if (!d.n)
		printf("# No space needs a device or a path.\n");
	for (size_t i = 0; i < d.n; i++) {
		printf("%s\n", d.lines[i]);
		free(d.lines[i]);
	}
	free(d.lines);
	return rc < 0 ? 1 : 0;
}
