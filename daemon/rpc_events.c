/* SPDX-License-Identifier: MIT */
/* Events: subscriptions, low-space watermarks and poison notices. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "journal.h"
#include "rpc.h"

/*
 * A connection subscribes with Subscribe (one space or all, and a
 * watermark); from then on it is told, as events among its replies, when a
 * space it may use falls below its watermark (once per crossing) and when
 * poison hits an extent it owns.  The subscribers sit in one array, each
 * knowing its place in it, so an unsubscribe is O(1).
 */

static struct potad_sub **subs;
static size_t nsubs, capsubs;
static unsigned default_low_water = 10;

void potad__events_init(const struct potad_config *cfg)
{
	default_low_water = cfg->low_water;
}

static void sub_add(struct potad_conn *c, struct potad_sub *sub)
{
	if (sub->on)
		return;
	if (nsubs == capsubs) {
		size_t cap = capsubs ? capsubs * 2 : 8;
		struct potad_sub **t = realloc(subs, cap * sizeof(*t));

		if (!t)
			return;
		subs = t;
		capsubs = cap;
	}
	sub->conn = c;
	sub->index = nsubs;
	subs[nsubs++] = sub;
	sub->on = true;
}

void potad__sub_drop(struct potad_sub *sub)
{
	if (!sub->on)
		return;
	subs[sub->index] = subs[--nsubs];
	if (sub->index < nsubs)
		subs[sub->index]->index = sub->index;
	sub->on = false;
	free(sub->space);
	sub->space = NULL;
}

static bool sub_wants(const struct potad_sub *sub, const struct pspace *ps)
{
	return !sub->space || strcmp(sub->space, ps->name) == 0;
}

void potad__low_water(struct pspace *ps)
{
	struct potad_stats stt;
	unsigned pct;

	if (!nsubs)
		return;
	potad_space_stats(ps->eng, &stt);
	pct = (unsigned)(stt.units ? 100.0 * stt.free_units / stt.units : 0);
	for (size_t i = 0; i < nsubs; i++) {
		struct potad_sub *sub = subs[i];
		Potad__V1__Event ev = POTAD__V1__EVENT__INIT;
		Potad__V1__LowSpaceEvent low = POTAD__V1__LOW_SPACE_EVENT__INIT;

		if (!sub_wants(sub, ps) ||
		    !potad__space_allows(ps, potad__conn_peer(sub->conn)))
			continue;
		if (pct >= sub->low_water) {
			sub->notified = false;
			continue;
		}
		if (sub->notified)
			continue;
		sub->notified = true;
		low.space = ps->name;
		low.free_bytes = stt.free_units * stt.granule;
		low.size = stt.size;
		low.low_water_percent = sub->low_water;
		ev.event_case = POTAD__V1__EVENT__EVENT_LOW_SPACE;
		ev.low_space = &low;
		potad__conn_event(sub->conn, &ev);
	}
}

struct hit {
	struct potad_space *eng;
	struct potad_extent e;
};

struct hits {
	struct hit *v;
	size_t n, cap;
};

static void on_hit(struct potad_space *s, const struct potad_extent *e,
		   void *arg)
{
	struct hits *h = arg;

	if (potad__discard_owner(e->owner))
		return; /* a discard's hold: no one to tell */
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct hit *t = realloc(h->v, cap * sizeof(*t));

		if (!t)
			return;
		h->v = t;
		h->cap = cap;
	}
	h->v[h->n].eng = s;
	h->v[h->n++].e = *e;
}

static struct pspace *pspace_of_engine(const struct potad_space *eng)
{
	for (size_t i = 0; i < potad__space_count(); i++)
		if (potad__space_at(i)->eng == eng)
			return potad__space_at(i);
	return NULL;
}

/* Tell each poisoned extent's owner, on every connection of theirs that
 * subscribed to that space. */
static void poison_events(struct ctx *x, const struct hits *h, uint64_t off,
			  uint64_t len)
{
	for (size_t i = 0; i < h->n; i++) {
		struct pspace *ps = pspace_of_engine(h->v[i].eng);
		const struct powner *o = potad__owner(h->v[i].e.owner);
		uid_t uid;

		if (!ps || !o)
			continue;
		uid = o->uid;
		for (size_t j = 0; j < nsubs; j++) {
			const struct potad_peer *p =
			    potad__conn_peer(subs[j]->conn);
			Potad__V1__Event ev = POTAD__V1__EVENT__INIT;
			Potad__V1__PoisonEvent pe =
			    POTAD__V1__POISON_EVENT__INIT;

			if (!sub_wants(subs[j], ps) ||
			    (p->uid != uid && !p->admin))
				continue;
			pe.extent = potad__rpc_extent_msg(x, ps, &h->v[i].e);
			pe.offset = off;
			pe.length = len;
			ev.event_case = POTAD__V1__EVENT__EVENT_POISON;
			ev.poison = &pe;
			potad__conn_event(subs[j]->conn, &ev);
		}
	}
}

void potad__op_poison(struct ctx *x, const Potad__V1__Poison *m,
		      Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_live_space(x, r, m->space);
	struct hits h = {0};
	Potad__V1__PoisonReply *pr;
	int rc;

	if (!ps || !potad__rpc_admin(x, r, "poisoning"))
		return;
	if (potad__journal_room(64) < 0) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	rc = potad_poison(ps->eng, m->offset, m->length, on_hit, &h);
	if (rc < 0) {
		free(h.v);
		potad__rpc_refuse(x, r, rc,
				  rc == -ERANGE
				      ? "[%#llx, +%llu) is outside '%s'"
				      : "cannot poison [%#llx, +%llu) in '%s' "
					"(the offset must be a multiple of the "
					"granule and the length not 0)",
				  (unsigned long long)m->offset,
				  (unsigned long long)m->length, ps->name);
		return;
	}
	potad__jr_poison(ps, m->offset, m->length);
	log_warn("poisoned [%#llx, +%llu) in %s: %d extent(s) hit",
		 (unsigned long long)m->offset, (unsigned long long)m->length,
		 ps->name, rc);
	poison_events(x, &h, m->offset, m->length);
	free(h.v);
	pr = potad__rpc_zalloc(x, sizeof(*pr));
	if (pr) {
		potad__v1__poison_reply__init(pr);
		pr->extents_hit = (uint32_t)rc;
		r->poison = pr;
		r->body_case = POTAD__V1__RESULT__BODY_POISON;
	}
}

void potad__op_subscribe(struct ctx *x, const Potad__V1__Subscribe *m,
			 Potad__V1__Result *r, struct potad_sub *sub)
{
	char *name = NULL;

	if (!sub) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	if (m->space && *m->space) {
		if (!potad__rpc_space(x, r, m->space))
			return;
		name = strdup(m->space);
		if (!name) {
			potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
			return;
		}
	}
	if (m->low_water_percent > 100) {
		free(name);
		potad__rpc_refuse(x, r, -EINVAL, "a watermark is a percentage");
		return;
	}
	potad__sub_drop(sub);
	sub_add(x->conn, sub);
	if (!sub->on) {
		free(name);
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	sub->space = name;
	sub->low_water =
	    m->low_water_percent ? m->low_water_percent : default_low_water;
	sub->notified = false;
}
