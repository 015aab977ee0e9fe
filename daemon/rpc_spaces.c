/* SPDX-License-Identifier: MIT */
/* Space and child-space administration: list, stat, register, remove,
 * carve and drop, with the checks on who may. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "rpc.h"

static Potad__V1__SpaceInfo *space_info(struct ctx *x, struct pspace *ps,
					bool frag)
{
	Potad__V1__SpaceInfo *m = potad__rpc_zalloc(x, sizeof(*m));
	struct potad_stats st;
	unsigned top;

	if (!m)
		return NULL;
	potad__v1__space_info__init(m);
	potad_space_stats(ps->eng, &st);
	m->name = ps->name;
	m->kind = ps->kind;
	m->source = ps->source ? ps->source : "";
	m->base_offset = st.base;
	m->size = st.size;
	m->granule = st.granule;
	m->parent = ps->parent ? ps->parent->name : "";
	m->reserve = ps->reserve;
	m->free_bytes = st.free_units * st.granule;
	m->used_bytes = st.used_units * st.granule;
	m->poisoned_bytes = st.poison_units * st.granule;
	m->extents = st.extents;
	m->free_blocks = st.free_blocks;
	m->largest_free_block = st.largest_free_block;
	for (top = st.max_order; top > 0 && !st.free_per_order[top]; top--)
		;
	m->n_free_per_order = top + 1;
	m->free_per_order = potad__rpc_zalloc(x, (top + 1) * sizeof(uint64_t));
	if (m->free_per_order)
		memcpy(m->free_per_order, st.free_per_order,
		       (top + 1) * sizeof(uint64_t));
	else
		m->n_free_per_order = 0;
	m->meta_bytes = st.meta_bytes;
	if (frag)
		potad_space_frag(ps->eng, &m->largest_free_run,
				 &m->fragmentation);
	m->available = true;
	m->reason = "";
	return m;
}

void potad__op_list_spaces(struct ctx *x, Potad__V1__Result *r)
{
	Potad__V1__SpaceList *l = potad__rpc_zalloc(x, sizeof(*l));
	size_t n = potad__space_count();

	if (l)
		potad__v1__space_list__init(l);
	if (!l ||
	    !(l->spaces = potad__rpc_zalloc(x, (n + 1) * sizeof(*l->spaces)))) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct pspace *ps = potad__space_at(i);

		if (!potad__space_allows(ps, x->peer))
			continue;
		l->spaces[l->n_spaces] = space_info(x, ps, false);
		if (l->spaces[l->n_spaces])
			l->n_spaces++;
	}
	r->body_case = POTAD__V1__RESULT__BODY_SPACES;
	r->spaces = l;
}

void potad__op_space_stat(struct ctx *x, const Potad__V1__SpaceStat *m,
			  Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_space(x, r, m->name);

	if (!ps)
		return;
	if (!potad__space_allows(ps, x->peer)) {
		potad__rpc_refuse(x, r, -EPERM, "not allowed on space '%s'",
				  ps->name);
		return;
	}
	r->space = space_info(x, ps, m->fragmentation);
	if (!r->space) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	r->body_case = POTAD__V1__RESULT__BODY_SPACE;
}

void potad__op_space_add(struct ctx *x, const Potad__V1__SpaceAdd *m,
			 Potad__V1__Result *r)
{
	struct potad_space_decl d = {
		.name = m->name,
		.kind = m->kind,
		.path = m->path,
		.base = m->base_offset,
		.size = m->size,
		.granule = m->granule,
		.allow_all = m->allow_all,
		.uids = m->allow_uids,
		.nuids = m->n_allow_uids,
		.gids = m->allow_gids,
		.ngids = m->n_allow_gids,
	};
	struct pspace *ps;
	char msg[256];
	int rc;

	if (!potad__rpc_admin(x, r, "registering a space"))
		return;
	if (potad__journal_room(8192 + 4 * (d.nuids + d.ngids)) < 0) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	rc = potad__space_declare(&d, &ps, msg, sizeof(msg));
	if (rc < 0) {
		potad__rpc_refuse(x, r, rc, "%s", msg);
		return;
	}
	potad__jr_space(ps);
	log_info("space %s registered by uid %u: %s", ps->name,
		 (unsigned)x->peer->uid, msg);
	r->space = space_info(x, ps, false);
	if (r->space)
		r->body_case = POTAD__V1__RESULT__BODY_SPACE;
}

void potad__op_space_remove(struct ctx *x, const Potad__V1__SpaceRemove *m,
			    Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_space(x, r, m->name);
	struct potad_stats st;
	uint64_t id;
	int rc;

	if (!ps || !potad__rpc_admin(x, r, "removing a space"))
		return;
	if (ps->parent) {
		potad__rpc_refuse(x, r, -EINVAL,
				  "'%s' is a child space: use child rm",
				  ps->name);
		return;
	}
	if (ps->nchildren) {
		potad__rpc_refuse(x, r, -EBUSY,
				  "'%s' has %u child space(s): remove them "
				  "first",
				  ps->name, ps->nchildren);
		return;
	}
	potad_space_stats(ps->eng, &st);
	if (st.extents && !m->force) {
		potad__rpc_refuse(
		    x, r, -EBUSY,
		    "'%s' holds %llu extent(s); free them or use --force",
		    ps->name, (unsigned long long)st.extents);
		return;
	}
	if (potad__journal_room(64) < 0) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	log_info("space %s removed by uid %u (%llu extents dropped)", ps->name,
		 (unsigned)x->peer->uid, (unsigned long long)st.extents);
	id = ps->id;
	rc = potad__space_remove(ps);
	if (rc < 0)
		potad__rpc_refuse(x, r, rc, "cannot remove: %s", strerror(-rc));
	else
		potad__jr_space_del(id);
}

void potad__op_child_add(struct ctx *x, const Potad__V1__ChildAdd *m,
			 Potad__V1__Result *r)
{
	struct pspace *parent = potad__rpc_space(x, r, m->parent), *c;
	struct potad_alloc_req q = {0};
	struct potad_extent e;
	unsigned g;
	int64_t owner;
	char label[80];
	int rc;

	if (!parent || !potad__rpc_admin(x, r, "creating a child space"))
		return;
	if (potad__space_find(m->name)) {
		potad__rpc_refuse(x, r, -EEXIST, "a space named '%s' exists",
				  m->name);
		return;
	}
	if (m->size == 0 || (m->align & (m->align - 1))) {
		potad__rpc_refuse(x, r, -EINVAL,
				  "a child needs a size > 0 and an "
				  "alignment that is a power of two");
		return;
	}
	if (m->granule && potad__granule_shift(m->granule, &g) < 0) {
		potad__rpc_refuse(x, r, -EINVAL,
				  "granule %llu is not a power of two",
				  (unsigned long long)m->granule);
		return;
	}
	if (!m->granule) {
		struct potad_stats st;

		potad_space_stats(parent->eng, &st);
		g = (unsigned)__builtin_ctzll(st.granule);
	}
	snprintf(label, sizeof(label), "child:%s", m->name);
	owner = potad__owner_get(0, label, 0);
	if (owner < 0) {
		potad__rpc_refuse(x, r, (int)owner, "out of memory");
		return;
	}
	q.size = m->size;
	q.align = m->align ? m->align : (1ull << g);
	q.owner = (uint32_t)owner;
	if (potad__journal_room(16384 + 4 * (m->n_allow_uids +
					     m->n_allow_gids)) < 0) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	rc = potad_alloc(parent->eng, &q, &e);
	if (rc < 0) {
		potad__rpc_refuse(
		    x, r, rc, "cannot carve %llu bytes from '%s': %s",
		    (unsigned long long)m->size, parent->name, strerror(-rc));
		return;
	}
	rc = potad__space_add_child(parent, m->name, e.handle, g, m->reserve,
				    &c);
	if (rc == 0)
		rc = potad__space_set_acl(c, false, m->allow_uids,
					  m->n_allow_uids, m->allow_gids,
					  m->n_allow_gids);
	if (rc < 0) {
		if (potad__space_find(m->name) == NULL)
			potad_free(parent->eng, e.handle, NULL);
		potad__rpc_refuse(x, r, rc, "cannot create child '%s': %s",
				  m->name, strerror(-rc));
		return;
	}
	potad__jr_alloc(parent, &e, NULL);
	potad__jr_space(c);
	log_info("%s %s carved from %s at [%#llx, +%#llx) by uid %u",
		 m->reserve ? "reserve" : "child space", c->name, parent->name,
		 (unsigned long long)e.offset, (unsigned long long)e.length,
		 (unsigned)x->peer->uid);
	r->space = space_info(x, c, false);
	if (r->space)
		r->body_case = POTAD__V1__RESULT__BODY_SPACE;
}

void potad__op_child_remove(struct ctx *x, const Potad__V1__ChildRemove *m,
			    Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_space(x, r, m->name);
	struct potad_stats st;
	uint64_t id;
	int rc;

	if (!ps || !potad__rpc_admin(x, r, "removing a child space"))
		return;
	if (!ps->parent) {
		potad__rpc_refuse(x, r, -EINVAL,
				  "'%s' is not a child space: use space rm",
				  ps->name);
		return;
	}
	potad_space_stats(ps->eng, &st);
	if (st.extents || ps->nchildren) {
		potad__rpc_refuse(x, r, -EBUSY,
				  "'%s' still holds %llu extent(s) and %u "
				  "child space(s)",
				  ps->name, (unsigned long long)st.extents,
				  ps->nchildren);
		return;
	}
	if (potad__journal_room(64) < 0) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	log_info("child space %s removed by uid %u", ps->name,
		 (unsigned)x->peer->uid);
	id = ps->id;
	rc = potad__space_remove(ps);
	if (rc == 0)
		potad__jr_space_del(id);
	if (rc < 0)
		potad__rpc_refuse(x, r, rc, "cannot remove: %s", strerror(-rc));
}
