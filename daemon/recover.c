/* SPDX-License-Identifier: MIT */
/* Start-up recovery: load the snapshot, replay the logs after it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "journal.h"
#include "journal/journal.h"

/*
 * A state directory holds at most one snapshot and a run of logs named by
 * their first seq.  Recovery reads the snapshot (every record must be
 * valid: it was synced before it was renamed into place), then each log in
 * seq order, applying records the snapshot does not cover.  Each log must
 * continue the previous one's seqs exactly.  Only the newest log may end
 * in a torn tail; damage anywhere else stops start-up with the file and
 * offset, since guessing could lose or double an extent.
 *
 * Records are applied through the same registry and engine calls the
 * daemon uses, except that allocations are put back where the record says
 * (potad_place) with the handles clients hold, so replay does not depend
 * on the allocator's policy.  Session extents come back owned by a dead
 * connection; the daemon frees them once the journal is open.
 */

/* The connection number session owners get back: none is ever this. */
#define ORPHAN UINT64_MAX

struct file {
	char *path;
	const uint8_t *map;
	size_t len;
};

struct rstate {
	struct potad_recovery *r;
	const char *dir;
	struct file f;       /* being read */
	char *scratch;
	size_t scratchlen;
	uint64_t snap_seq;   /* first seq the snapshot does not cover */
	bool in_snapshot, ended;
	uint64_t end_spaces, end_extents;
};

static int damage(struct rstate *s, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int damage(struct rstate *s, size_t off, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(s->r->error, sizeof(s->r->error), "%s: damaged at offset %zu: %s",
		 s->f.path, off, why);
	return -EUCLEAN;
}

static int map_file(struct file *f)
{
	struct stat sb;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);

	f->map = NULL;
	f->len = 0;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	f->len = (size_t)sb.st_size;
	if (f->len) {
		void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);

		if (m == MAP_FAILED) {
			close(fd);
			return -errno;
		}
		madvise(m, f->len, MADV_SEQUENTIAL);
		f->map = m;
	}
	close(fd);
	return 0;
}

static void unmap_file(struct file *f)
{
	if (f->map)
		munmap((void *)f->map, f->len);
	f->map = NULL;
}

static char *scratch(struct rstate *s, size_t n)
{
	if (n + 64 > s->scratchlen) {
		char *t = realloc(s->scratch, n + 64);

		if (!t)
			return NULL;
		s->scratch = t;
		s->scratchlen = n + 64;
	}
	return s->scratch;
}

/*
 * A handle's slot indexes the engine's descriptor slab, which
 * potad_place() grows to reach it: a record naming slot 2^31 would make
 * recovery ask for tens of gigabytes.  Refuse slots no daemon could have
 * made.  The engine makes a slot only when every slot it has is live, and
 * each live extent holds a unit, so a space never has more slots than
 * units.  Each slot is made by an allocation, which is a record of its
 * own, or by a discard's claim, which follows a free or a completed
 * discard in the same space (at most one per space is left over from
 * before a restart): fewer than twice the seqs so far, plus the spaces.
 * r->slot_max, when set, is a lower limit still (the fuzz targets keep
 * to their memory).
 */
static int check_slot(struct rstate *s, size_t off, const struct pspace *ps,
		      uint64_t handle, uint64_t seq)
{
	uint64_t slot = POTAD_HANDLE_SLOT(handle);
	uint64_t n = potad__space_count();
	struct potad_stats st;

	potad_space_stats(ps->eng, &st);
	if (slot >= st.units)
		return damage(s, off, "extent %#llx of %s names slot %llu, but "
			      "a space of %llu units never has that many",
			      (unsigned long long)handle, ps->name,
			      (unsigned long long)slot,
			      (unsigned long long)st.units);
	if (slot >= n && (slot - n) / 2 >= seq)
		return damage(s, off, "extent %#llx of %s names slot %llu, "
			      "more than %llu records could have made",
			      (unsigned long long)handle, ps->name,
			      (unsigned long long)slot, (unsigned long long)seq);
	if (s->r->slot_max && slot > s->r->slot_max)
		return damage(s, off, "extent %#llx of %s names slot %llu, past "
			      "the limit of %u", (unsigned long long)handle,
			      ps->name, (unsigned long long)slot,
			      s->r->slot_max);
	return 0;
}

/* Put back one extent of ps as a is recorded. */
static int put_extent(struct pspace *ps, const struct potad_jalloc *a)
{
	int64_t owner = potad__owner_get(a->uid, a->label,
					 a->flags & POTAD_JA_SESSION ? ORPHAN
								     : 0);
	/* A snapshot holds a child's host extent with the CHILD type bits;
	 * it goes back as an extent, and the child's space record makes it
	 * a host again. */
	struct potad_extent e = {
		.offset = a->offset,
		.length = a->length,
		.handle = (a->handle & ~(0xfull << 60)) |
			  (uint64_t)POTAD_TYPE_EXTENT << 60,
		.tag = a->tag,
		.type = POTAD_TYPE_EXTENT,
	};

	if (owner < 0)
		return (int)owner;
	e.owner = (uint32_t)owner;
	return potad_place(ps->eng, &e);
}

static int apply_extents(struct rstate *s, const struct potad_jrec *rec,
			 size_t off)
{
	struct potad_jcur c = {.r = rec->payload, .left = rec->len};
	uint64_t id = potad__jget_u64(&c);
	uint32_t n = potad__jget_u32(&c);
	struct pspace *ps = potad__space_by_id(id);
	char *sc = scratch(s, rec->len);

	if (!sc)
		return -ENOMEM;
	if (!ps)
		return damage(s, off, "extents for unknown space %llu",
			      (unsigned long long)id);
	for (uint32_t i = 0; i < n; i++) {
		struct potad_jalloc a;
		int rc = potad__jdec_extent(&c, &a, sc);

		if (rc == 0) {
			rc = check_slot(s, off, ps, a.handle, s->snap_seq);
			if (rc < 0)
				return rc;
			rc = put_extent(ps, &a);
		}
		if (rc < 0)
			return damage(s, off,
				      "extent %u of %u ([%#llx, +%llu) in %s) "
				      "cannot be put back: %s",
				      i, n, (unsigned long long)a.offset,
				      (unsigned long long)a.length, ps->name,
				      strerror(-rc));
		s->r->extents++;
	}
	if (c.left)
		return damage(s, off, "trailing bytes after %u extents", n);
	return 0;
}

static int apply(struct rstate *s, const struct potad_jrec *rec, size_t off)
{
	char *sc = scratch(s, rec->len);
	struct potad_jspace js;
	struct potad_jalloc a;
	struct pspace *ps;
	uint64_t x, y, z;
	int rc = 0;

	if (!sc)
		return -ENOMEM;
	switch (rec->type) {
	case POTAD_J_SPACE:
		if (potad__jdec_space(rec, &js, sc) < 0)
			return damage(s, off, "malformed space record");
		rc = potad__space_restore(&js, &ps);
		if (rc < 0)
			return damage(s, off, "space '%s' (id %llu) cannot be "
				      "registered: %s", js.name,
				      (unsigned long long)js.id,
				      strerror(-rc));
		s->r->spaces++;
		return 0;
	case POTAD_J_SPACE_DEL: {
		struct potad_stats st;

		if (potad__jdec_ids(rec, &x, &y, &z) < 0 || !(ps = potad__space_by_id(x)))
			return damage(s, off, "removal of an unknown space");
		/* Its extents go with it, and a child's host extent too. */
		potad_space_stats(ps->eng, &st);
		y = st.extents + (ps->parent != NULL);
		rc = potad__space_remove(ps);
		if (rc < 0)
			return damage(s, off, "space %llu cannot be removed: %s",
				      (unsigned long long)x, strerror(-rc));
		s->r->spaces--;
		s->r->extents -= y;
		return 0;
	}
	case POTAD_J_ACL:
		if (potad__jdec_acl(rec, &js, sc) < 0 || !(ps = potad__space_by_id(js.id)))
			return damage(s, off, "malformed ACL record");
		rc = potad__space_set_acl(ps, js.flags & POTAD_JS_ALLOW_ALL,
					  (const uid_t *)js.uids, js.nuids,
					  (const gid_t *)js.gids, js.ngids);
		break;
	case POTAD_J_ALLOC:
	case POTAD_J_TOKEN:
		if (potad__jdec_alloc(rec, &a, sc) < 0 || !(ps = potad__space_by_id(a.space)))
			return damage(s, off, "malformed %s record",
				      potad__jtype_name(rec->type));
		if (rec->type == POTAD_J_ALLOC) {
			rc = check_slot(s, off, ps, a.handle, rec->seq);
			if (rc < 0)
				return rc;
			rc = put_extent(ps, &a);
			if (rc < 0)
				return damage(s, off,
					      "extent [%#llx, +%llu) in %s "
					      "cannot be put back: %s",
					      (unsigned long long)a.offset,
					      (unsigned long long)a.length,
					      ps->name, strerror(-rc));
			s->r->extents++;
		}
		if (*a.token)
			rc = potad__token_add(a.uid, a.token, ps, a.handle);
		break;
	case POTAD_J_FREE:
		if (potad__jdec_ids(rec, &x, &y, &z) < 0 || !(ps = potad__space_by_id(x)))
			return damage(s, off, "free in an unknown space");
		rc = potad__space_free(ps, y, NULL);
		if (rc < 0)
			return damage(s, off, "extent %#llx of %s cannot be "
				      "freed: %s", (unsigned long long)y,
				      ps->name, strerror(-rc));
		potad__token_forget(ps, y);
		s->r->extents--;
		return 0;
	case POTAD_J_SHRINK:
		if (potad__jdec_ids(rec, &x, &y, &z) < 0 || !(ps = potad__space_by_id(x)))
			return damage(s, off, "shrink in an unknown space");
		rc = potad__space_shrink(ps, y, z, NULL);
		if (rc < 0)
			return damage(s, off, "extent %#llx of %s cannot keep "
				      "%llu bytes: %s", (unsigned long long)y,
				      ps->name, (unsigned long long)z,
				      strerror(-rc));
		return 0;
	case POTAD_J_POISON:
		if (potad__jdec_ids(rec, &x, &y, &z) < 0 || !(ps = potad__space_by_id(x)))
			return damage(s, off, "poison in an unknown space");
		rc = potad_poison(ps->eng, y, z, NULL, NULL);
		if (rc < 0)
			return damage(s, off, "[%#llx, +%llu) in %s cannot be "
				      "poisoned: %s", (unsigned long long)y,
				      (unsigned long long)z, ps->name,
				      strerror(-rc));
		return 0;
	case POTAD_J_CLEAN: {
		struct potad_jcur cur;
		uint32_t n;
		bool clean;

		if (potad__jdec_clean(rec, &x, &clean, &n, &cur) < 0 ||
		    !(ps = potad__space_by_id(x)))
			return damage(s, off, "malformed clean record");
		for (uint32_t i = 0; i < n; i++) {
			y = potad__jget_u64(&cur);
			z = potad__jget_u64(&cur);
			rc = potad_set_clean(ps->eng, y, z, clean);
			if (rc < 0)
				return damage(s, off, "[%#llx, +%llu) in %s "
					      "cannot be marked %s: %s",
					      (unsigned long long)y,
					      (unsigned long long)z, ps->name,
					      clean ? "clean" : "dirty",
					      strerror(-rc));
		}
		return 0;
	}
	case POTAD_J_EXTENTS:
		if (!s->in_snapshot)
			break;
		return apply_extents(s, rec, off);
	case POTAD_J_END:
		if (!s->in_snapshot || potad__jdec_ids(rec, &x, &y, &z) < 0)
			break;
		s->ended = true;
		s->end_spaces = x;
		s->end_extents = y;
		return 0;
	default:
		return damage(s, off, "unknown record type %u", rec->type);
	}
	if (rc < 0 && rc != -ENOMEM)
		return damage(s, off, "%s record cannot be applied: %s",
			      potad__jtype_name(rec->type), strerror(-rc));
	if (rc == 0 && (rec->type == POTAD_J_EXTENTS || rec->type == POTAD_J_END))
		return damage(s, off, "%s record in a log",
			      potad__jtype_name(rec->type));
	return rc;
}

static void show(struct rstate *s, const struct potad_jrec *rec, size_t off)
{
	const char *base = strrchr(s->f.path, '/');

	if (s->r->verbose)
		printf("%s %zu seq=%llu type=%s len=%u\n",
		       base ? base + 1 : s->f.path, off,
		       (unsigned long long)rec->seq,
		       potad__jtype_name(rec->type), rec->len);
}

static int load_snapshot(struct rstate *s)
{
	struct potad_jfile h;
	struct potad_jscan sc;
	struct potad_jrec rec;
	int rc;

	rc = map_file(&s->f);
	if (rc < 0) {
		snprintf(s->r->error, sizeof(s->r->error), "%s: cannot read: %s",
			 s->f.path, strerror(-rc));
		return rc;
	}
	rc = potad__jfile_decode(s->f.map, s->f.len, &h);
	if (rc < 0 || !h.snapshot) {
		rc = damage(s, 0, rc == -EPROTO ? "unknown format version"
						: "not a potad snapshot header");
		goto out;
	}
	s->snap_seq = h.seq;
	s->in_snapshot = true;
	potad__jscan_init(&sc, s->f.map, s->f.len, h.salt, 1);
	for (;;) {
		size_t off = sc.off;

		if (!potad__jscan_next(&sc, &rec))
			break;
		show(s, &rec, off);
		rc = apply(s, &rec, off);
		if (rc < 0)
			goto out;
		if (s->ended)
			break;
	}
	if (!s->ended) {
		rc = damage(s, sc.bad_off, "%s before the end record",
			    sc.why ? sc.why : "the file ends");
		goto out;
	}
	if (s->end_spaces != s->r->spaces || s->end_extents != s->r->extents) {
		rc = damage(s, sc.off, "the end record counts %llu spaces and "
			    "%llu extents, the snapshot held %llu and %llu",
			    (unsigned long long)s->end_spaces,
			    (unsigned long long)s->end_extents,
			    (unsigned long long)s->r->spaces,
			    (unsigned long long)s->r->extents);
		goto out;
	}
	rc = 0;
out:
	s->in_snapshot = false;
	unmap_file(&s->f);
	return rc;
}

/* Replay one log; last says whether it is the newest. */
static int replay_log(struct rstate *s, uint64_t start, bool last)
{
	struct potad_jfile h;
	struct potad_jscan sc;
	struct potad_jrec rec;
	uint64_t expect = s->r->next_seq;
	int rc;

	rc = map_file(&s->f);
	if (rc < 0) {
		snprintf(s->r->error, sizeof(s->r->error), "%s: cannot read: %s",
			 s->f.path, strerror(-rc));
		return rc;
	}
	rc = potad__jfile_decode(s->f.map, s->f.len, &h);
	if (rc < 0 || h.snapshot || h.seq != start) {
		rc = damage(s, 0, rc == -EPROTO ? "unknown format version"
				  : h.seq != start && rc == 0
				      ? "its header names another first seq"
				      : "not a potad log header");
		goto out;
	}
	if (start > expect) {
		rc = damage(s, 0, "it starts at seq %llu but seq %llu is the "
			    "next one expected: records are missing",
			    (unsigned long long)start,
			    (unsigned long long)expect);
		goto out;
	}
	potad__jscan_init(&sc, s->f.map, s->f.len, h.salt, start);
	for (;;) {
		size_t off = sc.off;

		if (!potad__jscan_next(&sc, &rec))
			break;
		show(s, &rec, off);
		if (rec.seq < expect)
			continue; /* covered by the snapshot */
		rc = apply(s, &rec, off);
		if (rc < 0)
			goto out;
		s->r->records++;
		expect = rec.seq + 1;
	}
	if (sc.end == POTAD_JEND_DAMAGED ||
	    (sc.end == POTAD_JEND_TORN && !last)) {
		rc = damage(s, sc.bad_off, "%s%s", sc.why,
			    sc.end == POTAD_JEND_TORN ? " in a log that is not "
							"the newest" : "");
		goto out;
	}
	if (sc.end == POTAD_JEND_TORN) {
		snprintf(s->r->torn_file, sizeof(s->r->torn_file), "%s",
			 s->f.path);
		s->r->torn_off = sc.bad_off;
		s->r->dirty_end = sc.dirty_end;
		log_warn("journal: %s: torn tail at offset %zu (%s); %s",
			 s->f.path, sc.bad_off, sc.why,
			 s->r->check ? "start-up would cut it off"
				     : "cut off: the change it held was never "
				       "acknowledged");
	}
	if (expect < s->r->next_seq) {
		rc = damage(s, sc.bad_off, "it ends at seq %llu, before the "
			    "snapshot's seq %llu",
			    (unsigned long long)expect,
			    (unsigned long long)s->r->next_seq);
		goto out;
	}
	s->r->next_seq = expect;
	if (last) {
		s->r->last_log = strdup(s->f.path);
		s->r->last_start = start;
		s->r->last_salt = h.salt;
		s->r->append_off = sc.bad_off;
		s->r->last_end = sc.next_seq;
		rc = s->r->last_log ? 0 : -ENOMEM;
	}
out:
	unmap_file(&s->f);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The logs in dir, sorted by first seq; whether a snapshot is there. */
static int list_dir(const char *dir, bool check, uint64_t **logs,
		    size_t *nlogs, bool *snap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 0;

	*logs = NULL;
	*nlogs = 0;
	*snap = false;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		unsigned long long v;
		char *end;

		if (strcmp(e->d_name, "snapshot") == 0) {
			*snap = true;
			continue;
		}
		if ((strcmp(e->d_name, "snapshot.tmp") == 0 ||
		     strcmp(e->d_name, "journal.new") == 0) && !check) {
			/* A checkpoint or a log that did not finish. */
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (strncmp(e->d_name, "journal.", 8) || strlen(e->d_name) != 24)
			continue;
		v = strtoull(e->d_name + 8, &end, 16);
		if (*end)
			continue;
		if (*nlogs == cap) {
			uint64_t *t;

			cap = cap ? cap * 2 : 8;
			t = realloc(*logs, cap * sizeof(*t));
			if (!t) {
				closedir(d);
				return -ENOMEM;
			}
			*logs = t;
		}
		(*logs)[(*nlogs)++] = v;
	}
	closedir(d);
	/* No logs: *logs is NULL, which qsort() must not be given. */
	if (*nlogs)
		qsort(*logs, *nlogs, sizeof(**logs), cmp_u64);
	return 0;
}

int potad__recover(const char *dir, struct potad_recovery *r)
{
	struct rstate s = {.r = r, .dir = dir};
	uint64_t *logs, t0 = uv_hrtime();
	size_t nlogs;
	bool snap;
	int rc;

	r->next_seq = 1;
	rc = list_dir(dir, r->check, &logs, &nlogs, &snap);
	if (rc < 0) {
		snprintf(r->error, sizeof(r->error), "%s: cannot list: %s", dir,
			 strerror(-rc));
		return rc;
	}
	if (snap) {
		if (asprintf(&s.f.path, "%s/snapshot", dir) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		rc = load_snapshot(&s);
		free(s.f.path);
		s.f.path = NULL;
		if (rc < 0)
			goto out;
		r->next_seq = s.snap_seq;
	} else if (nlogs && logs[0] != 1) {
		snprintf(r->error, sizeof(r->error),
			 "%s: no snapshot, and the oldest log "
			 "journal.%016llx starts at seq %llu, not 1: the "
			 "snapshot is missing", dir,
			 (unsigned long long)logs[0],
			 (unsigned long long)logs[0]);
		rc = -EUCLEAN;
		goto out;
	}
	for (size_t i = 0; i < nlogs; i++) {
		/* Logs the snapshot covers whole wait for the next
		 * checkpoint to remove them. */
		if (i + 1 < nlogs && logs[i + 1] <= r->next_seq)
			continue;
		if (asprintf(&s.f.path, "%s/journal.%016llx", dir,
			     (unsigned long long)logs[i]) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		rc = replay_log(&s, logs[i], i + 1 == nlogs);
		free(s.f.path);
		s.f.path = NULL;
		if (rc < 0)
			goto out;
	}
	log_info("journal: recovered %llu space(s) and %llu extent(s) from %s%s"
		 " and %llu log record(s) in %.1f ms; next seq %llu",
		 (unsigned long long)r->spaces, (unsigned long long)r->extents,
		 dir, snap ? "/snapshot" : " (no snapshot yet)",
		 (unsigned long long)r->records,
		 (double)(uv_hrtime() - t0) / 1e6,
		 (unsigned long long)r->next_seq);
	rc = 0;
out:
	if (rc < 0 && !r->error[0])
		snprintf(r->error, sizeof(r->error), "%s: %s", dir,
			 strerror(-rc));
	free(logs);
	free(s.scratch);
	return rc;
}

/* Free what session owners of dead connections held; records the frees.
 * A space that is not available keeps them, untouched, with their owners,
 * until it serves again. */
size_t potad__recover_sessions(void)
{
	size_t freed = 0, kept = 0;

	for (size_t i = 0; i < potad__space_count(); i++) {
		struct pspace *ps = potad__space_at(i);
		bool frozen = potad__space_unavailable(ps) != NULL;
		struct potad_extent e;
		uint64_t off = 0;

		while (potad_extent_next(ps->eng, off, &e) == 0) {
			const struct powner *o = potad__owner(e.owner);

			off = e.offset + 1;
			if (!o || o->conn != ORPHAN ||
			    e.type != POTAD_TYPE_EXTENT)
				continue;
			if (frozen || potad__journal_room(64) < 0) {
				kept++;
				continue;
			}
			if (potad__space_free(ps, e.handle, NULL) == 0) {
				potad__token_forget(ps, e.handle);
				potad__jr_free(ps, e.handle);
				freed++;
			}
		}
	}
	/* An owner number must not be reused while an extent still names
	 * it. */
	if (!kept)
		potad__owner_drop_conn(ORPHAN);
	return freed;
}
