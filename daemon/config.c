/* SPDX-License-Identifier: MIT */
/* The configuration file (INI, read with libinih) and its defaults. */
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon.h"

/*
 * [daemon]          socket, socket_mode, state_dir, admin_group, max_frame,
 *                   max_connections, max_queue, low_water, log_level,
 *                   journal, journal_io, checkpoint_bytes, journal_chunk
 * [space NAME]      kind (range|file), base, size, granule, path,
 *                   allow (uids, @groups, or "all"; space-separated)
 *
 * Every key is listed in potad.conf(5).  Without a file the daemon serves
 * one built-in space, "default": a 1 GiB range with 4 KiB units that anyone
 * may allocate from, so a fresh install answers at once.
 */

int potad__parse_journal_io(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return POTAD_JIO_AUTO;
	if (strcmp(s, "uring") == 0 || strcmp(s, "io_uring") == 0)
		return POTAD_JIO_URING;
	if (strcmp(s, "sync") == 0)
		return POTAD_JIO_SYNC;
	return -1;
}

int potad__parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case 'p': case 'P': shift = 50; end++; break;
	case 'e': case 'E': shift = 60; end++; break;
	default: break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'b' || *end == 'B') && shift)
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

struct loader {
	struct potad_config *cfg;
	struct potad_space_decl *decls;
	size_t ndecls;
	const char *file;
	int err;
};

static struct potad_space_decl *decl_for(struct loader *ld, const char *name)
{
	struct potad_space_decl *d;

	for (size_t i = 0; i < ld->ndecls; i++)
		if (strcmp(ld->decls[i].name, name) == 0)
			return &ld->decls[i];
	d = realloc(ld->decls, (ld->ndecls + 1) * sizeof(*d));
	if (!d)
		return NULL;
	ld->decls = d;
	d = &ld->decls[ld->ndecls++];
	memset(d, 0, sizeof(*d));
	d->name = strdup(name);
	d->granule = 4096;
	return d->name ? d : NULL;
}

/* Parse "1000 @disk all" into d's ACL. */
static int parse_allow(struct potad_space_decl *d, const char *value)
{
	char *copy = strdup(value), *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (char *w = strtok_r(copy, " \t,", &save); w;
	     w = strtok_r(NULL, " \t,", &save)) {
		char *end;
		unsigned long id;

		if (strcmp(w, "all") == 0) {
			d->allow_all = true;
			continue;
		}
		if (*w == '@') {
			struct group *g = getgrnam(w + 1);
			gid_t *t;

			id = strtoul(w + 1, &end, 10);
			if (g)
				id = g->gr_gid;
			else if (*end || end == w + 1) {
				rc = -ENOENT;
				break;
			}
			t = realloc(d->gids, (d->ngids + 1) * sizeof(*t));
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			d->gids = t;
			d->gids[d->ngids++] = (gid_t)id;
		} else {
			struct passwd *pw = getpwnam(w);
			uid_t *t;

			id = strtoul(w, &end, 10);
			if (pw)
				id = pw->pw_uid;
			else if (*end || end == w) {
				rc = -ENOENT;
				break;
			}
			t = realloc(d->uids, (d->nuids + 1) * sizeof(*t));
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			d->uids = t;
			d->uids[d->nuids++] = (uid_t)id;
		}
	}
	free(copy);
	return rc;
}

static int set_str(char **dst, const char *v)
{
	char *p = strdup(v);

	if (!p)
		return 0;
	free(*dst);
	*dst = p;
	return 1;
}

static int daemon_key(struct loader *ld, const char *key, const char *v)
{
	struct potad_config *cfg = ld->cfg;
	uint64_t n;

	if (strcmp(key, "socket") == 0)
		return set_str(&cfg->socket_path, v);
	if (strcmp(key, "state_dir") == 0)
		return set_str(&cfg->state_dir, v);
	if (strcmp(key, "admin_group") == 0)
		return set_str(&cfg->admin_group, v);
	if (strcmp(key, "log_level") == 0) {
		int l = potad__log_parse_level(v);

		if (l < 0)
			return 0;
		cfg->log_level = l;
		return 1;
	}
	if (strcmp(key, "journal") == 0) {
		if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0)
			cfg->journal = true;
		else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0)
			cfg->journal = false;
		else
			return 0;
		return 1;
	}
	if (strcmp(key, "journal_io") == 0) {
		int m = potad__parse_journal_io(v);

		if (m < 0)
			return 0;
		cfg->journal_io = m;
		return 1;
	}
	if (strcmp(key, "socket_mode") == 0) {
		char *end;
		unsigned long m = strtoul(v, &end, 8);

		if (*end || m > 0777)
			return 0;
		cfg->socket_mode = (unsigned)m;
		return 1;
	}
	if (potad__parse_size(v, &n) < 0)
		return 0;
	if (strcmp(key, "max_frame") == 0 && n >= 64)
		cfg->max_frame = n;
	else if (strcmp(key, "max_connections") == 0 && n > 0)
		cfg->max_conns = n;
	else if (strcmp(key, "max_queue") == 0 && n >= 4096)
		cfg->max_queue = n;
	else if (strcmp(key, "low_water") == 0 && n <= 100)
		cfg->low_water = (unsigned)n;
	else if (strcmp(key, "checkpoint_bytes") == 0 && n >= 4096)
		cfg->checkpoint_bytes = n;
	else if (strcmp(key, "journal_chunk") == 0 && n >= 65536 &&
		 n <= (1ull << 34))
		cfg->journal_chunk = n;
	else
		return 0;
	return 1;
}

static int space_key(struct loader *ld, const char *name, const char *key,
		     const char *v)
{
	struct potad_space_decl *d = decl_for(ld, name);

	if (!d)
		return 0;
	if (strcmp(key, "kind") == 0) {
		if (strcasecmp(v, "range") == 0)
			d->kind = POTAD__V1__SPACE_KIND__RANGE;
		else if (strcasecmp(v, "file") == 0)
			d->kind = POTAD__V1__SPACE_KIND__FILE;
		else
			return 0;
		return 1;
	}
	if (strcmp(key, "path") == 0)
		return set_str(&d->path, v);
	if (strcmp(key, "allow") == 0)
		return parse_allow(d, v) == 0;
	if (strcmp(key, "base") == 0)
		return potad__parse_size(v, &d->base) == 0;
	if (strcmp(key, "size") == 0)
		return potad__parse_size(v, &d->size) == 0;
	if (strcmp(key, "granule") == 0)
		return potad__parse_size(v, &d->granule) == 0;
	return 0;
}

static int on_key(void *user, const char *section, const char *key,
		  const char *value)
{
	struct loader *ld = user;
	int ok;

	if (strcmp(section, "daemon") == 0)
		ok = daemon_key(ld, key, value);
	else if (strncmp(section, "space ", 6) == 0 && section[6])
		ok = space_key(ld, section + 6, key, value);
	else
		ok = 0;
	if (!ok)
		log_err("%s: [%s] %s = %s: unknown key or bad value", ld->file,
			section, key, value);
	return ok;
}

int potad__config_load(struct potad_config *cfg, const char *file,
		       struct potad_space_decl **decls, size_t *ndecls)
{
	struct loader ld = { .cfg = cfg, .file = file };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->socket_path = strdup("/run/potad/potad.sock");
	cfg->state_dir = strdup("/var/lib/potad");
	cfg->socket_mode = 0660;
	cfg->max_frame = 1u << 20;
	cfg->max_conns = 1024;
	cfg->max_queue = 4u << 20;
	cfg->low_water = 10;
	cfg->log_level = POTAD_LOG_INFO;
	cfg->journal = true;
	cfg->checkpoint_bytes = 64ull << 20;
	cfg->journal_chunk = 8ull << 20;
	*decls = NULL;
	*ndecls = 0;
	if (!cfg->socket_path || !cfg->state_dir)
		return -ENOMEM;
	if (file) {
		rc = ini_parse(file, on_key, &ld);
		if (rc < 0) {
			log_err("%s: cannot read the configuration file", file);
			rc = -ENOENT;
			goto err;
		}
		if (rc > 0) {
			log_err("%s:%d: configuration error", file, rc);
			rc = -EINVAL;
			goto err;
		}
	}
	if (!file) {
		struct potad_space_decl *d = decl_for(&ld, "default");

		if (!d)
			return -ENOMEM;
		d->kind = POTAD__V1__SPACE_KIND__RANGE;
		d->size = 1ull << 30;
		d->allow_all = true;
	}
	*decls = ld.decls;
	*ndecls = ld.ndecls;
	return 0;
err:
	potad__config_free(NULL, ld.decls, ld.ndecls);
	return rc;
}

void potad__config_free(struct potad_config *cfg,
			struct potad_space_decl *decls, size_t ndecls)
{
	for (size_t i = 0; i < ndecls; i++) {
		free(decls[i].name);
		free(decls[i].path);
		free(decls[i].uids);
		free(decls[i].gids);
	}
	free(decls);
	if (cfg) {
		free(cfg->socket_path);
		free(cfg->state_dir);
		free(cfg->admin_group);
	}
}
