/* SPDX-License-Identifier: MIT */
/* Real spaces: what a declaration asks for, the engine space made of what
 * the probe found, and the identity check at every start. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "journal.h"
#include "probe.h"

/*
 * Registering a space is the one operation that points potad at a real
 * device, so it goes in two steps: the probe (blocking: opens the device,
 * reads sysfs, headers and blkid) runs off the event loop, then
 * potad__space_declare() makes the engine space from what the probe found,
 * on the loop, in one step that either registers everything or nothing.
 *
 * The probe's identity string (a swap UUID, a disk's WWID or serial, PCI
 * ids, a file's inode) goes into the journal with the space.  At every
 * start the device is probed again; a space whose identity or size no
 * longer matches is kept exactly as the journal has it but not served, so
 * that pointing a path at a different disk never hands out its blocks as
 * if they were the old one's.
 */

bool potad__decl_probes(const struct potad_space_decl *d)
{
	return d->kind != POTAD__V1__SPACE_KIND__RANGE;
}

void potad__probe_req_of(const struct potad_space_decl *d,
			 struct potad_probe_req *rq)
{
	const struct potad_config *cfg = potad__cfg();

	memset(rq, 0, sizeof(*rq));
	rq->kind = d->kind;
	rq->path = d->path;
	rq->pci = d->pci;
	rq->bar = d->bar;
	rq->granule = d->granule;
	rq->force = d->force;
	rq->discard = d->discard;
	rq->sysfs_root = cfg ? cfg->sysfs_root : NULL;
}

struct pspace *potad__space_root(struct pspace *ps)
{
	while (ps->parent)
		ps = ps->parent;
	return ps;
}

bool potad__space_holds_data(const struct pspace *ps)
{
	return ps->kind != POTAD__V1__SPACE_KIND__RANGE;
}

int potad__space_free(struct pspace *ps, uint64_t handle,
		      struct potad_extent *out)
{
	return potad_free_ex(ps->eng, handle,
			     potad__space_holds_data(ps) ? POTAD_FREE_DIRTY
							 : 0,
			     out);
}

int potad__space_shrink(struct pspace *ps, uint64_t handle, uint64_t keep,
			struct potad_extent *out)
{
	return potad_shrink(ps->eng, handle, keep,
			    potad__space_holds_data(ps) ? POTAD_FREE_DIRTY : 0,
			    out);
}

const char *potad__space_unavailable(const struct pspace *ps)
{
	while (ps->parent)
		ps = ps->parent;
	return ps->available ? NULL : ps->reason ? ps->reason : "unavailable";
}

bool potad__kind_can_discard(int kind)
{
	return kind == POTAD__V1__SPACE_KIND__FILE ||
	       kind == POTAD__V1__SPACE_KIND__BLOCKDEV;
}

int potad__decl_check(const struct potad_space_decl *d, char *msg,
		      size_t len)
{
	if (d->kind < POTAD__V1__SPACE_KIND__RANGE ||
	    d->kind > POTAD__V1__SPACE_KIND__PCIBAR) {
		snprintf(msg, len, "unknown space kind %d", d->kind);
		return -EINVAL;
	}
	if (d->discard && !potad__kind_can_discard(d->kind)) {
		snprintf(msg, len, "a %s space cannot discard (only file and "
			 "blockdev spaces can)", potad__kind_name(d->kind));
		return -EINVAL;
	}
	if (d->isolate && !d->discard) {
		snprintf(msg, len, "isolate needs discard: without it freed "
			 "space never becomes clean again");
		return -EINVAL;
	}
	if (d->force && d->kind != POTAD__V1__SPACE_KIND__BLOCKDEV) {
		snprintf(msg, len, "force only applies to blockdev spaces");
		return -EINVAL;
	}
	if (d->kind == POTAD__V1__SPACE_KIND__RANGE && !d->size) {
		snprintf(msg, len, "a range needs a size");
		return -EINVAL;
	}
	if (d->kind == POTAD__V1__SPACE_KIND__PCIBAR
		? !d->pci || !*d->pci
		: d->kind != POTAD__V1__SPACE_KIND__RANGE &&
		      (!d->path || !*d->path)) {
		snprintf(msg, len, "a %s space needs %s",
			 potad__kind_name(d->kind),
			 d->kind == POTAD__V1__SPACE_KIND__PCIBAR
			     ? "a PCI address and a BAR"
			     : "a path");
		return -EINVAL;
	}
	return 0;
}

/* The space a probe's range makes with 2^g-byte units: swap's first usable
 * page need not sit on a larger granule, so it starts at the next one, and
 * the end is cut to whole units. */
static void geometry(const struct potad_probe *pr, unsigned g, uint64_t *base,
		     uint64_t *size)
{
	uint64_t up = ((pr->base + (1ull << g) - 1) >> g) << g;

	*base = up;
	*size = pr->size > up - pr->base ? pr->size - (up - pr->base) : 0;
	*size = *size >> g << g;
}

/* The registered top-level space with this identity, if any. */
static struct pspace *same_identity(const char *identity)
{
	if (!identity || !*identity)
		return NULL;
	for (size_t i = 0; i < potad__space_count(); i++) {
		struct pspace *ps = potad__space_at(i);

		if (!ps->parent && ps->identity &&
		    strcmp(ps->identity, identity) == 0)
			return ps;
	}
	return NULL;
}

int potad__space_declare(const struct potad_space_decl *d,
			 struct potad_probe *pr, struct pspace **out,
			 char *msg, size_t len)
{
	uint64_t base = d->base, size = d->size;
	const char *source = NULL;
	struct pspace *ps, *twin;
	unsigned g = 12;
	int rc;

	rc = potad__decl_check(d, msg, len);
	if (rc < 0)
		return rc;
	if (d->granule && potad__granule_shift(d->granule, &g) < 0) {
		snprintf(msg, len, "granule %llu is not a power of two from 1 "
			 "to 1G", (unsigned long long)d->granule);
		return -EINVAL;
	}
	if (potad__decl_probes(d)) {
		if (!pr) {
			snprintf(msg, len, "internal: %s space without a probe",
				 potad__kind_name(d->kind));
			return -EINVAL;
		}
		g = pr->granule_shift;
		geometry(pr, g, &base, &size);
		source = d->kind == POTAD__V1__SPACE_KIND__PCIBAR ? d->pci
								  : d->path;
		twin = same_identity(pr->identity);
		if (twin) {
			snprintf(msg, len, "%s is already registered as space "
				 "'%s' (%s)", source, twin->name,
				 pr->identity);
			return -EEXIST;
		}
	}
	rc = potad__space_add(d->name, d->kind, source, base, size, g, out);
	if (rc == -EEXIST) {
		snprintf(msg, len, "a space named '%s' exists", d->name);
		return rc;
	}
	if (rc < 0) {
		snprintf(msg, len, "cannot register [%#llx, +%#llx) granule %u: "
			 "%s (names are 1-64 of [A-Za-z0-9._-]; base must be a "
			 "multiple of the granule and the space at least one "
			 "granule)", (unsigned long long)base,
			 (unsigned long long)size, 1u << g, strerror(-rc));
		return rc;
	}
	ps = *out;
	ps->bar = d->bar;
	ps->force = d->force;
	ps->discard = d->discard;
	ps->isolate = d->isolate;
	rc = potad__space_set_acl(ps, d->allow_all, d->uids, d->nuids,
				  d->gids, d->ngids);
	if (rc == 0 && pr) {
		ps->identity = strdup(pr->identity);
		ps->device = strdup(pr->info);
		if (!ps->identity || !ps->device)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && pr && i < pr->nbad; i++) {
		/* Whole granules: a bad page poisons the unit holding it. */
		uint64_t a = pr->bad[i][0] >> g << g;
		uint64_t b = pr->bad[i][0] + pr->bad[i][1];

		b = (((b - 1) >> g) + 1) << g;
		if (a < base)
			a = base;
		if (b > a)
			rc = potad_poison(ps->eng, a, b - a, NULL, NULL);
		if (rc > 0)
			rc = 0;
	}
	if (rc < 0) {
		snprintf(msg, len, "cannot set up '%s': %s", d->name,
			 strerror(-rc));
		potad__space_remove(ps);
		*out = NULL;
		return rc;
	}
	if (pr) {
		ps->fd = pr->fd;
		pr->fd = -1;
	}
	snprintf(msg, len, "%s%s%s [%#llx, +%#llx), %u-byte units%s%s%s%s",
		 potad__kind_name(d->kind), source ? " " : "",
		 source ? source : "", (unsigned long long)base,
		 (unsigned long long)size, 1u << g,
		 d->allow_all ? ", open to all" : "",
		 d->discard ? ", discard" : "", d->isolate ? ", isolate" : "",
		 pr && pr->nbad ? ", bad pages poisoned" : "");
	return 0;
}

int potad__space_declare_now(const struct potad_space_decl *d,
			     struct pspace **out, char *msg, size_t len)
{
	struct potad_probe_req rq;
	struct potad_probe pr;
	int rc;

	if (!potad__decl_probes(d))
		return potad__space_declare(d, NULL, out, msg, len);
	rc = potad__decl_check(d, msg, len);
	if (rc < 0)
		return rc;
	potad__probe_req_of(d, &rq);
	rc = potad__probe(&rq, &pr, msg, len);
	if (rc < 0)
		return rc;
	rc = potad__space_declare(d, &pr, out, msg, len);
	potad__probe_release(&pr);
	return rc;
}

int potad__child_carve(struct pspace *parent,
		       const struct potad_space_decl *d, struct pspace **out,
		       char *msg, size_t len)
{
	struct potad_alloc_req q = {0};
	struct potad_extent e;
	const char *why;
	bool dirty = false;
	char label[80];
	int64_t owner;
	unsigned g;
	int rc;

	*out = NULL;
	if (potad__space_find(d->name)) {
		snprintf(msg, len, "a space named '%s' exists", d->name);
		return -EEXIST;
	}
	if (d->size == 0 || (d->align & (d->align - 1))) {
		snprintf(msg, len, "a child needs a size > 0 and an alignment "
			 "that is a power of two");
		return -EINVAL;
	}
	if (d->granule && potad__granule_shift(d->granule, &g) < 0) {
		snprintf(msg, len, "granule %llu is not a power of two",
			 (unsigned long long)d->granule);
		return -EINVAL;
	}
	if (!d->granule) {
		struct potad_stats st;

		potad_space_stats(parent->eng, &st);
		g = (unsigned)__builtin_ctzll(st.granule);
	}
	why = potad__space_unavailable(parent);
	if (why) {
		snprintf(msg, len, "space '%s' is not available: %s",
			 parent->name, why);
		return -ENODEV;
	}
	snprintf(label, sizeof(label), "child:%s", d->name);
	owner = potad__owner_get(0, label, 0);
	if (owner < 0 || potad__journal_room(16384 + 4 * (d->nuids +
							  d->ngids)) < 0) {
		snprintf(msg, len, "out of memory");
		return -ENOMEM;
	}
	q.size = d->size;
	q.align = d->align ? d->align : (1ull << g);
	q.owner = (uint32_t)owner;
	/* A tenant's space should not start with another's data in it:
	 * take clean units when there are, and remember when there were
	 * not. */
	q.flags = POTAD_ALLOC_CLEAN;
	rc = potad_alloc(parent->eng, &q, &e);
	if (rc == -ENOSPC && !potad__space_root(parent)->isolate) {
		q.flags = 0;
		rc = potad_alloc(parent->eng, &q, &e);
		dirty = rc == 0;
	}
	if (rc < 0) {
		snprintf(msg, len, "cannot carve %llu bytes from '%s': %s",
			 (unsigned long long)d->size, parent->name,
			 strerror(-rc));
		return rc;
	}
	rc = potad__space_add_child(parent, d->name, e.handle, g, d->reserve,
				    out);
	if (rc == 0)
		rc = potad__space_set_acl(*out, false, d->uids, d->nuids,
					  d->gids, d->ngids);
	if (rc == 0 && dirty)
		rc = potad_set_clean((*out)->eng, e.offset, e.length, 0);
	if (rc < 0) {
		snprintf(msg, len, "cannot create child '%s': %s", d->name,
			 strerror(-rc));
		if (*out)
			potad__space_remove(*out); /* frees the host too */
		else
			potad_free_ex(parent->eng, e.handle,
				      dirty ? POTAD_FREE_DIRTY : 0, NULL);
		*out = NULL;
		return rc;
	}
	potad__jr_alloc(parent, &e, NULL);
	potad__jr_space(*out);
	if (dirty)
		potad__jr_clean(*out, e.offset, e.length, false);
	snprintf(msg, len, "%s %s carved from %s at [%#llx, +%#llx)%s",
		 d->reserve ? "reserve" : "child space", d->name, parent->name,
		 (unsigned long long)e.offset, (unsigned long long)e.length,
		 dirty ? " (not clean: it holds former owners' data)" : "");
	return 0;
}

static void set_unavailable(struct pspace *ps, const char *why)
{
	char *r = strdup(why);

	free(ps->reason);
	ps->reason = r;
	ps->available = false;
	log_err("space %s is not served: %s; its extents are kept as they "
		"are until an admin removes it (potadctl space rm --force) or "
		"restores the device and restarts",
		ps->name, why);
}

/* Probe ps's device again and compare it with the journal's record. */
static void verify(struct pspace *ps)
{
	struct potad_space_decl d = {
		.name = ps->name,
		.kind = ps->kind,
		.path = ps->source,
		.pci = ps->source,
		.bar = ps->bar,
		.force = ps->force,
		.discard = ps->discard,
	};
	struct potad_probe_req rq;
	struct potad_probe pr;
	struct potad_stats st;
	char msg[512], why[1024];
	uint64_t base, size;

	potad_space_stats(ps->eng, &st);
	d.granule = st.granule;
	potad__probe_req_of(&d, &rq);
	if (potad__probe(&rq, &pr, msg, sizeof(msg)) < 0) {
		set_unavailable(ps, msg);
		return;
	}
	geometry(&pr, (unsigned)__builtin_ctzll(st.granule), &base, &size);
	if (strcmp(pr.identity, ps->identity ? ps->identity : "") != 0) {
		snprintf(why, sizeof(why), "%s is no longer what was "
			 "registered: the journal has \"%s\", the device now "
			 "says \"%s\"", ps->source ? ps->source : ps->name,
			 ps->identity ? ps->identity : "", pr.identity);
		set_unavailable(ps, why);
	} else if (base != st.base || size != st.size) {
		snprintf(why, sizeof(why), "%s changed size: the journal has "
			 "[%#llx, +%#llx), the device now has [%#llx, "
			 "+%#llx)", ps->source ? ps->source : ps->name,
			 (unsigned long long)st.base,
			 (unsigned long long)st.size,
			 (unsigned long long)base,
			 (unsigned long long)size);
		set_unavailable(ps, why);
	} else {
		char *dev = strdup(pr.info);

		if (dev) {
			free(ps->device);
			ps->device = dev;
		}
		ps->fd = pr.fd;
		pr.fd = -1;
		for (size_t i = 0; i < pr.nbad; i++)
			if (!potad_is_poisoned(ps->eng, pr.bad[i][0],
					       pr.bad[i][1]))
				log_warn("space %s: the swap header lists bad "
					 "pages at [%#llx, +%#llx) that the "
					 "journal has not poisoned; poison "
					 "them with potadctl poison",
					 ps->name,
					 (unsigned long long)pr.bad[i][0],
					 (unsigned long long)pr.bad[i][1]);
		log_info("space %s: %s %s verified (%s)", ps->name,
			 potad__kind_name(ps->kind), ps->source, pr.identity);
	}
	potad__probe_release(&pr);
}

void potad__spaces_verify(void)
{
	for (size_t i = 0; i < potad__space_count(); i++) {
		struct pspace *ps = potad__space_at(i);

		if (!ps->parent && ps->kind != POTAD__V1__SPACE_KIND__RANGE)
			verify(ps);
	}
}

bool potad__space_differs(const struct pspace *ps,
			  const struct potad_space_decl *d, char *msg,
			  size_t len)
{
	struct potad_stats st;
	unsigned g = 12;
	const char *src = d->kind == POTAD__V1__SPACE_KIND__PCIBAR ? d->pci
								   : d->path;

	potad_space_stats(ps->eng, &st);
	if (d->granule && potad__granule_shift(d->granule, &g) < 0)
		g = 0;
	if (d->kind != ps->kind) {
		snprintf(msg, len, "kind %s, the journal has %s",
			 potad__kind_name(d->kind), potad__kind_name(ps->kind));
		return true;
	}
	if (d->granule && st.granule != 1ull << g) {
		snprintf(msg, len, "granule %llu, the journal has %llu",
			 1ull << g, (unsigned long long)st.granule);
		return true;
	}
	if (d->kind == POTAD__V1__SPACE_KIND__RANGE) {
		if (!d->granule && st.granule != 1ull << g) {
			snprintf(msg, len, "granule %llu, the journal has %llu",
				 1ull << g, (unsigned long long)st.granule);
			return true;
		}
		if (d->base != st.base || (d->size >> g << g) != st.size) {
			snprintf(msg, len, "[%#llx, +%#llx), the journal has "
				 "[%#llx, +%#llx)", (unsigned long long)d->base,
				 (unsigned long long)d->size,
				 (unsigned long long)st.base,
				 (unsigned long long)st.size);
			return true;
		}
		return false;
	}
	if (strcmp(src ? src : "", ps->source ? ps->source : "") ||
	    (d->kind == POTAD__V1__SPACE_KIND__PCIBAR && d->bar != ps->bar)) {
		snprintf(msg, len, "source %s, the journal has %s",
			 src ? src : "", ps->source ? ps->source : "");
		return true;
	}
	if (d->discard != ps->discard || d->isolate != ps->isolate ||
	    d->force != ps->force) {
		snprintf(msg, len, "policy discard=%d isolate=%d force=%d, the "
			 "journal has discard=%d isolate=%d force=%d",
			 d->discard, d->isolate, d->force, ps->discard,
			 ps->isolate, ps->force);
		return true;
	}
	return false;
}
