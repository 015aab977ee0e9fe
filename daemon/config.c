/* SPDX-License-Identifier: MIT */
/* The configuration file (INI, read with libinih) and its defaults. */
#include <ctype.h>
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
 *                   max_connections, max_queue, stall_timeout, low_water,
 *                   log_level,
 *                   journal, journal_io, checkpoint_bytes, checkpoint_fork,
 *                   journal_chunk, sysfs_root
 * [space NAME]      kind (range|file|swap|blockdev|devdax|pcibar), base,
 *                   size, granule, path, pci, bar, force, discard, isolate,
 *                   allow (uids, @groups, or "all"; space-separated)
 * [child NAME]      parent, size, align, granule, allow: a child space
 * [reserve NAME]    carved from parent when absent ([reserve]: a strict
 *                   reserve)
 *
 * Every key is listed in potad.conf(5).  Without a file the daemon serves
 * one built-in space, "default": a 1 GiB range with 4 KiB units that anyone
 * may allocate from, so a fresh install answers at once.
 *
 * Keys are checked one at a time as libinih reads them; what depends on
 * several keys of one section (a kind and what it needs, discard and
 * isolate) is checked once the whole file is read, because INI keys come
 * in any order.  A child's parent is not looked for here: it may be a
 * space the journal holds, so the daemon judges it at start.
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

/* The section a declaration came from: the keys it takes and how it is
 * named in messages. */
enum sect { SECT_SPACE, SECT_CHILD, SECT_RESERVE };

static const char *const sect_names[] = {
	[SECT_SPACE] = "space",
	[SECT_CHILD] = "child",
	[SECT_RESERVE] = "reserve",
};

struct loader {
	struct potad_config *cfg;
	struct potad_space_decl *decls;
	enum sect *sects; /* parallel to decls */
	size_t ndecls;
	const char *file;
	const char *why; /* what a key's value should be, when it is not */
	const char *dup; /* the name last found declared twice */
};

/* The declaration of name, made on its first key.  A name declared in two
 * kinds of section is refused: both would be registered as one space. */
static struct potad_space_decl *decl_for(struct loader *ld, enum sect sect,
					 const char *name)
{
	struct potad_space_decl *d;
	enum sect *t;

	for (size_t i = 0; i < ld->ndecls; i++) {
		if (strcmp(ld->decls[i].name, name))
			continue;
		if (ld->sects[i] == sect)
			return &ld->decls[i];
		/* Once per section, not once per key in it. */
		if (ld->dup != ld->decls[i].name)
			log_err("%s: [%s %s]: %s is also declared as [%s %s]",
				ld->file, sect_names[sect], name, name,
				sect_names[ld->sects[i]], name);
		ld->dup = ld->decls[i].name;
		return NULL;
	}
	d = realloc(ld->decls, (ld->ndecls + 1) * sizeof(*d));
	if (!d)
		return NULL;
	ld->decls = d;
	t = realloc(ld->sects, (ld->ndecls + 1) * sizeof(*t));
	if (!t)
		return NULL;
	ld->sects = t;
	ld->sects[ld->ndecls] = sect;
	d = &ld->decls[ld->ndecls];
	memset(d, 0, sizeof(*d));
	d->name = strdup(name);
	if (!d->name)
		return NULL;
	d->reserve = sect == SECT_RESERVE;
	ld->ndecls++;
	return d;
}

/* yes/no, on/off, true/false, 1/0 (any case). */
static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"yes", "on", "true", "1"};
	static const char *const no[] = {"no", "off", "false", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* A power of two from 1 to 1G, or 0 for the default; the same bounds
 * potad__granule_shift() applies, checked here so that a typo is reported
 * with its key rather than at registration. */
static int parse_granule(const char *v, uint64_t *out)
{
	uint64_t g;
	unsigned shift;

	if (potad__parse_size(v, &g) < 0)
		return -EINVAL;
	if (g && potad__granule_shift(g, &shift) < 0)
		return -EINVAL;
	*out = g;
	return 0;
}

/* "DDDD:BB:DD.F" in hex, as sysfs names PCI functions under
 * /sys/bus/pci/devices: anything else could never be found there. */
static bool pci_address_ok(const char *v)
{
	static const char shape[] = "hhhh:hh:hh.f";

	if (strlen(v) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (shape[i] == 'h' && !isxdigit(ch))
			return false;
		if (shape[i] == 'f' && (ch < '0' || ch > '7'))
			return false;
		if ((shape[i] == ':' || shape[i] == '.') && ch != shape[i])
			return false;
	}
	/* A device number is five bits. */
	return strtoul(v + 8, NULL, 16) <= 0x1f;
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

/* What a bad value should have been, for the message. */
static const char why_bool[] = "expected yes or no";
static const char why_granule[] = "expected a power of two from 1 to 1G";
static const char why_allow[] = "no such user or group";

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
	if (strcmp(key, "sysfs_root") == 0)
		return *v && set_str(&cfg->sysfs_root, v);
	if (strcmp(key, "journal") == 0) {
		ld->why = why_bool;
		return parse_bool(v, &cfg->journal) == 0;
	}
	if (strcmp(key, "checkpoint_fork") == 0) {
		ld->why = why_bool;
		return parse_bool(v, &cfg->checkpoint_fork) == 0;
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
	if (strcmp(key, "stall_timeout") == 0) {
		/* Whole seconds: a size suffix would make no sense here. */
		char *end;
		unsigned long s = strtoul(v, &end, 10);

		if (*end || s < 1 || s > 86400)
			return 0;
		cfg->stall_ms = (unsigned)s * 1000;
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

static const struct {
	const char *name;
	int kind;
} kinds[] = {
	{"range", POTAD__V1__SPACE_KIND__RANGE},
	{"file", POTAD__V1__SPACE_KIND__FILE},
	{"swap", POTAD__V1__SPACE_KIND__SWAP},
	{"blockdev", POTAD__V1__SPACE_KIND__BLOCKDEV},
	{"devdax", POTAD__V1__SPACE_KIND__DEVDAX},
	{"pcibar", POTAD__V1__SPACE_KIND__PCIBAR},
};

static const char *kind_word(int kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == kind)
			return kinds[i].name;
	return "?";
}

static int space_key(struct loader *ld, struct potad_space_decl *d,
		     const char *key, const char *v)
{
	if (strcmp(key, "kind") == 0) {
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			if (strcasecmp(v, kinds[i].name) == 0) {
				d->kind = kinds[i].kind;
				return 1;
			}
		}
		ld->why = "expected range, file, swap, blockdev, devdax or "
			  "pcibar";
		return 0;
	}
	if (strcmp(key, "path") == 0)
		return *v && set_str(&d->path, v);
	if (strcmp(key, "pci") == 0) {
		ld->why = "expected a PCI function as DDDD:BB:DD.F in hex, "
			  "e.g. 0000:03:00.0";
		return pci_address_ok(v) && set_str(&d->pci, v);
	}
	if (strcmp(key, "bar") == 0) {
		ld->why = "expected a BAR number from 0 to 5";
		if (v[0] < '0' || v[0] > '5' || v[1])
			return 0;
		d->bar = (unsigned)(v[0] - '0');
		return 1;
	}
	ld->why = why_bool;
	if (strcmp(key, "force") == 0)
		return parse_bool(v, &d->force) == 0;
	if (strcmp(key, "discard") == 0)
		return parse_bool(v, &d->discard) == 0;
	if (strcmp(key, "isolate") == 0)
		return parse_bool(v, &d->isolate) == 0;
	ld->why = NULL;
	if (strcmp(key, "allow") == 0) {
		ld->why = why_allow;
		return parse_allow(d, v) == 0;
	}
	if (strcmp(key, "base") == 0)
		return potad__parse_size(v, &d->base) == 0;
	if (strcmp(key, "size") == 0)
		return potad__parse_size(v, &d->size) == 0;
	if (strcmp(key, "granule") == 0) {
		ld->why = why_granule;
		return parse_granule(v, &d->granule) == 0;
	}
	return 0;
}

/* [child NAME] and [reserve NAME]: where the child lives and its shape;
 * its kind and policy are its parent's. */
static int child_key(struct loader *ld, struct potad_space_decl *d,
		     const char *key, const char *v)
{
	if (strcmp(key, "parent") == 0)
		return *v && set_str(&d->parent, v);
	if (strcmp(key, "size") == 0) {
		ld->why = "expected a size above 0";
		return potad__parse_size(v, &d->size) == 0 && d->size;
	}
	if (strcmp(key, "align") == 0) {
		ld->why = "expected a power of two";
		return potad__parse_size(v, &d->align) == 0 && d->align &&
		       !(d->align & (d->align - 1));
	}
	if (strcmp(key, "granule") == 0) {
		ld->why = why_granule;
		return parse_granule(v, &d->granule) == 0;
	}
	if (strcmp(key, "allow") == 0) {
		ld->why = why_allow;
		return parse_allow(d, v) == 0;
	}
	return 0;
}

/* The NAME of a [space NAME], [child NAME] or [reserve NAME] section,
 * with its kind in *sect; NULL for any other section. */
static const char *decl_section(const char *section, enum sect *sect)
{
	for (size_t i = 0; i < sizeof(sect_names) / sizeof(sect_names[0]);
	     i++) {
		size_t n = strlen(sect_names[i]);

		if (strncmp(section, sect_names[i], n) == 0 &&
		    section[n] == ' ' && section[n + 1]) {
			*sect = (enum sect)i;
			return section + n + 1;
		}
	}
	return NULL;
}

static int on_key(void *user, const char *section, const char *key,
		  const char *value)
{
	struct loader *ld = user;
	struct potad_space_decl *d;
	const char *name;
	enum sect sect;
	int ok;

	ld->why = NULL;
	if (strcmp(section, "daemon") == 0) {
		ok = daemon_key(ld, key, value);
	} else if ((name = decl_section(section, &sect))) {
		d = decl_for(ld, sect, name);
		if (!d)
			return 0;
		ok = sect == SECT_SPACE ? space_key(ld, d, key, value)
					: child_key(ld, d, key, value);
	} else {
		ok = 0;
	}
	if (!ok)
		log_err("%s: [%s] %s = %s: %s", ld->file, section, key, value,
			ld->why ? ld->why : "unknown key or bad value");
	return ok;
}

/* What a kind reads its space from, for the checks below. */
static bool kind_has_path(int kind)
{
	return kind == POTAD__V1__SPACE_KIND__FILE ||
	       kind == POTAD__V1__SPACE_KIND__SWAP ||
	       kind == POTAD__V1__SPACE_KIND__BLOCKDEV ||
	       kind == POTAD__V1__SPACE_KIND__DEVDAX;
}

/* potad discards only files (a punched hole) and block devices
 * (BLKDISCARD): a swap area is the kernel's to discard when it swaps on
 * it, and device-DAX and PCI BARs have no discard to call. */
/* Log why declaration i is refused, naming the file, section and key. */
static int bad(const struct loader *ld, size_t i, const char *key,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(const struct loader *ld, size_t i, const char *key,
	       const char *fmt, ...)
{
	char m[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	log_err("%s: [%s %s] %s: %s", ld->file, sect_names[ld->sects[i]],
		ld->decls[i].name, key, m);
	return -EINVAL;
}

/*
 * The checks that need a whole section.  Each names the file, the section
 * and the key at fault, so that an admin can go straight to the line.
 * Returns 0 or -EINVAL.
 */
static int check_decl(const struct loader *ld, size_t i)
{
	const struct potad_space_decl *d = &ld->decls[i];
	const char *sn = sect_names[ld->sects[i]];
	const char *kn = kind_word(d->kind);

	if (ld->sects[i] != SECT_SPACE) {
		if (!d->parent)
			return bad(ld, i, "parent",
				   "a %s space needs the parent it is carved "
				   "from",
				   sn);
		if (strcmp(d->parent, d->name) == 0)
			return bad(ld, i, "parent",
				   "a space cannot be its own parent");
		if (!d->size)
			return bad(ld, i, "size", "a %s space needs a size",
				   sn);
		return 0;
	}
	if (!d->kind)
		return bad(ld, i, "kind",
			   "a space needs a kind: range, file, swap, "
			   "blockdev, devdax or pcibar");
	if (d->kind == POTAD__V1__SPACE_KIND__RANGE && !d->size)
		return bad(ld, i, "size", "a range needs a size");
	if (d->kind != POTAD__V1__SPACE_KIND__RANGE && (d->size || d->base))
		return bad(
		    ld, i, d->size ? "size" : "base",
		    "a %s space takes its size from the %s; base and size "
		    "are for ranges",
		    kn,
		    d->kind == POTAD__V1__SPACE_KIND__FILE ? "file" : "device");
	if (kind_has_path(d->kind) && !d->path)
		return bad(ld, i, "path", "a %s space needs a path", kn);
	if (!kind_has_path(d->kind) && d->path)
		return bad(ld, i, "path", "a %s space has no path", kn);
	if (d->kind == POTAD__V1__SPACE_KIND__PCIBAR && !d->pci)
		return bad(ld, i, "pci",
			   "a pcibar space needs the PCI function "
			   "(DDDD:BB:DD.F) and its bar");
	if (d->kind != POTAD__V1__SPACE_KIND__PCIBAR && (d->pci || d->bar))
		return bad(ld, i, d->pci ? "pci" : "bar",
			   "pci and bar are for pcibar "
			   "spaces, not %s",
			   kn);
	if (d->force && d->kind != POTAD__V1__SPACE_KIND__BLOCKDEV)
		return bad(
		    ld, i, "force",
		    "force is for blockdev spaces (a filesystem or "
		    "partition table on the device); a %s space has no use "
		    "for it",
		    kn);
	if (d->discard && !potad__kind_can_discard(d->kind))
		return bad(ld, i, "discard",
			   "a %s space cannot discard: only file and "
			   "blockdev spaces can",
			   kn);
	if (d->isolate && !d->discard)
		return bad(ld, i, "isolate",
			   "isolate needs discard: without it freed space "
			   "never becomes clean again");
	return 0;
}

int potad__config_load(struct potad_config *cfg, const char *file,
		       struct potad_space_decl **decls, size_t *ndecls)
{
	struct loader ld = { .cfg = cfg, .file = file };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->socket_path = strdup("/run/potad.sock");
	cfg->state_dir = strdup("/var/lib/potad");
	cfg->sysfs_root = strdup("/sys");
	cfg->socket_mode = 0660;
	cfg->max_frame = 1u << 20;
	cfg->max_conns = 1024;
	cfg->max_queue = 4u << 20;
	cfg->stall_ms = 30000;
	cfg->low_water = 10;
	cfg->log_level = POTAD_LOG_INFO;
	cfg->journal = true;
	cfg->checkpoint_bytes = 64ull << 20;
	cfg->checkpoint_fork = true;
	cfg->journal_chunk = 8ull << 20;
	*decls = NULL;
	*ndecls = 0;
	if (!cfg->socket_path || !cfg->state_dir || !cfg->sysfs_root) {
		rc = -ENOMEM;
		goto err;
	}
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
		for (size_t i = 0; i < ld.ndecls; i++) {
			rc = check_decl(&ld, i);
			if (rc < 0)
				goto err;
		}
	}
	if (!file) {
		struct potad_space_decl *d =
		    decl_for(&ld, SECT_SPACE, "default");

		if (!d) {
			rc = -ENOMEM;
			goto err;
		}
		d->kind = POTAD__V1__SPACE_KIND__RANGE;
		d->size = 1ull << 30;
		d->allow_all = true;
	}
	/* Ranges and files have always had 4K units unless told otherwise;
	 * the device kinds and children keep 0 so that the daemon picks the
	 * device's own unit or the parent's. */
	for (size_t i = 0; i < ld.ndecls; i++)
		if (!ld.decls[i].granule && !ld.decls[i].parent &&
		    (ld.decls[i].kind == POTAD__V1__SPACE_KIND__RANGE ||
		     ld.decls[i].kind == POTAD__V1__SPACE_KIND__FILE))
			ld.decls[i].granule = 4096;
	free(ld.sects);
	*decls = ld.decls;
	*ndecls = ld.ndecls;
	return 0;
err:
	free(ld.sects);
	potad__config_free(cfg, ld.decls, ld.ndecls);
	memset(cfg, 0, sizeof(*cfg));
	return rc;
}

void potad__config_free(struct potad_config *cfg,
			struct potad_space_decl *decls, size_t ndecls)
{
	for (size_t i = 0; i < ndecls; i++) {
		free(decls[i].name);
		free(decls[i].path);
		free(decls[i].pci);
		free(decls[i].parent);
		free(decls[i].uids);
		free(decls[i].gids);
	}
	free(decls);
	if (cfg) {
		free(cfg->socket_path);
		free(cfg->state_dir);
		free(cfg->admin_group);
		free(cfg->sysfs_root);
	}
}
