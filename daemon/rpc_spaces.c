/* SPDX-License-Identifier: MIT */
/* Space and child-space administration: list, stat, register, remove,
 * carve and drop, with the checks on who may. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "journal.h"
#include "probe.h"
#include "rpc.h"

static Potad__V1__SpaceInfo *space_info(struct ctx *x, struct pspace *ps,
					bool frag)
{
	Potad__V1__SpaceInfo *m = potad__rpc_zalloc(x, sizeof(*m));
	struct pspace *root;
	struct potad_stats st;
	unsigned top;

	if (!m)
		return NULL;
	potad__v1__space_info__init(m);
	/* The per-order counts and the walk want the free lists whole: the
	 * cache's extents go back to them (nothing a client sees changes). */
	potad_space_drain(ps->eng);
	potad_space_stats(ps->eng, &st);
	m->name = potad__arena_strdup(x->a, ps->name);
	m->kind = ps->kind;
	m->source = potad__arena_strdup(x->a, ps->source ? ps->source : "");
	m->base_offset = st.base;
	m->size = st.size;
	m->granule = st.granule;
	m->parent = potad__arena_strdup(x->a,
					ps->parent ? ps->parent->name : "");
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
	root = potad__space_root(ps);
	m->reason = (char *)potad__space_unavailable(ps);
	m->available = !m->reason;
	m->reason = potad__arena_strdup(x->a, m->reason ? m->reason : "");
	m->identity = potad__arena_strdup(x->a,
					  root->identity ? root->identity : "");
	m->device = potad__arena_strdup(x->a, root->device ? root->device : "");
	/*
	 * The strings are copies in the request's arena: a later op of the
	 * same request may remove ps (SpaceRemove, ChildRemove) before the
	 * reply is packed, and the reply must not point into it.
	 */
	if (!m->name || !m->source || !m->parent || !m->reason ||
	    !m->identity || !m->device)
		return NULL;
	m->discard = root->discard;
	m->isolate = root->isolate;
	m->bar = root->bar;
	m->dirty_bytes = st.dirty_units * st.granule;
	if (ps->discard_handle) {
		/* The hold is no one's extent: count it as dirty free. */
		m->discarding_bytes = ps->discard_len;
		m->dirty_bytes += ps->discard_len;
		m->free_bytes += ps->discard_len;
		m->used_bytes -= ps->discard_len;
		m->extents--;
	}
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

/*
 * Registering a device kind is prepared off the loop: potad__prep_start()
 * copies what each SpaceAdd of the request names and probes it on the
 * thread pool while the connection waits (others are served); the request
 * is then dispatched as usual and op_space_add takes the probe's result.
 */
struct pslot {
	size_t op; /* index in the request */
	char *path, *pci;
	struct potad_probe_req rq;
	struct potad_probe pr;
	bool skip;
	int rc;
	char msg[512];
};

struct potad_prep {
	uv_work_t w;
	struct potad_conn *conn; /* NULL once the connection has gone */
	void (*done)(struct potad_conn *c);
	size_t n;
	struct pslot slot[];
};

void potad__prep_free(struct potad_prep *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		potad__probe_release(&p->slot[i].pr);
		free(p->slot[i].path);
		free(p->slot[i].pci);
	}
	free(p);
}

static void prep_work(uv_work_t *w)
{
	struct potad_prep *p = w->data;

	for (size_t i = 0; i < p->n; i++) {
		struct pslot *sl = &p->slot[i];

		if (sl->skip)
			continue;
		sl->rc = potad__probe(&sl->rq, &sl->pr, sl->msg,
				      sizeof(sl->msg));
	}
}

static void prep_done(uv_work_t *w, int status)
{
	struct potad_prep *p = w->data;

	(void)status;
	if (!p->conn) {
		potad__prep_free(p);
		return;
	}
	p->done(p->conn);
}

void potad__prep_orphan(struct potad_prep *p)
{
	p->conn = NULL;
}

static bool needs_probe(const Potad__V1__Op *op)
{
	return op->op_case == POTAD__V1__OP__OP_SPACE_ADD &&
	       op->space_add->kind > POTAD__V1__SPACE_KIND__RANGE &&
	       op->space_add->kind <= POTAD__V1__SPACE_KIND__PCIBAR;
}

struct potad_prep *potad__prep_start(struct potad_conn *c,
				     const Potad__V1__Request *req,
				     void (*done)(struct potad_conn *c),
				     int *err)
{
	struct potad_prep *p;
	size_t n = 0;

	*err = 0;
	/* Only admins may register, so only they may make us open
	 * devices; others are refused by the dispatcher as usual. */
	if (!potad__conn_peer(c)->admin)
		return NULL;
	for (size_t i = 0; i < req->n_ops; i++)
		n += needs_probe(req->ops[i]);
	if (!n)
		return NULL;
	p = calloc(1, sizeof(*p) + n * sizeof(p->slot[0]));
	if (!p)
		goto err_nomem;
	for (size_t i = 0; i < req->n_ops; i++) {
		const Potad__V1__SpaceAdd *m = req->ops[i]->space_add;
		struct pslot *sl = &p->slot[p->n];
		struct potad_space_decl d = {0};

		if (!needs_probe(req->ops[i]))
			continue;
		p->n++;
		sl->pr.fd = -1;
		sl->op = i;
		sl->path = strdup(m->path ? m->path : "");
		sl->pci = strdup(m->pci ? m->pci : "");
		if (!sl->path || !sl->pci)
			goto err_free;
		d.kind = m->kind;
		d.path = sl->path;
		d.pci = sl->pci;
		d.bar = m->bar;
		d.granule = m->granule;
		d.force = m->force;
		d.discard = m->discard;
		d.isolate = m->isolate;
		potad__probe_req_of(&d, &sl->rq);
		/* Refused anyway: do not touch the device. */
		sl->skip = potad__decl_check(&d, sl->msg, sizeof(sl->msg)) < 0;
	}
	p->conn = c;
	p->done = done;
	p->w.data = p;
	if (uv_queue_work(uv_default_loop(), &p->w, prep_work, prep_done) < 0)
		goto err_free;
	return p;
err_free:
	potad__prep_free(p);
err_nomem:
	*err = -ENOMEM;
	return NULL;
}

void potad__op_space_add(struct ctx *x, const Potad__V1__SpaceAdd *m,
			 Potad__V1__Result *r)
{
	struct potad_space_decl d = {
		.name = m->name,
		.kind = m->kind,
		.path = m->path,
		.pci = m->pci,
		.bar = m->bar,
		.base = m->base_offset,
		.size = m->size,
		.granule = m->granule,
		.allow_all = m->allow_all,
		.uids = m->allow_uids,
		.nuids = m->n_allow_uids,
		.gids = m->allow_gids,
		.ngids = m->n_allow_gids,
		.force = m->force,
		.discard = m->discard,
		.isolate = m->isolate,
	};
	struct potad_probe *pr = NULL;
	struct pspace *ps;
	char msg[512];
	int rc;

	if (!potad__rpc_admin(x, r, "registering a space"))
		return;
	rc = potad__decl_check(&d, msg, sizeof(msg));
	if (rc < 0) {
		potad__rpc_refuse(x, r, rc, "%s", msg);
		return;
	}
	if (potad__decl_probes(&d)) {
		struct pslot *sl = NULL;

		for (size_t i = 0; x->prep && i < x->prep->n; i++)
			if (x->prep->slot[i].op == x->op)
				sl = &x->prep->slot[i];
		if (!sl) {
			potad__rpc_refuse(x, r, -EINVAL,
					  "unknown space kind %d", d.kind);
			return;
		}
		if (sl->rc < 0) {
			potad__rpc_refuse(x, r, sl->rc, "%s", sl->msg);
			return;
		}
		pr = &sl->pr;
	}
	if (potad__journal_room(8192 + 4 * (d.nuids + d.ngids)) < 0) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	rc = potad__space_declare(&d, pr, &ps, msg, sizeof(msg));
	if (rc < 0) {
		potad__rpc_refuse(x, r, rc, "%s", msg);
		return;
	}
	potad__jr_new_space(ps);
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
	struct potad_space_decl d = {
		.name = m->name,
		.size = m->size,
		.align = m->align,
		.granule = m->granule,
		.reserve = m->reserve,
		.uids = m->allow_uids,
		.nuids = m->n_allow_uids,
		.gids = m->allow_gids,
		.ngids = m->n_allow_gids,
	};
	char msg[512];
	int rc;

	if (!parent || !potad__rpc_admin(x, r, "creating a child space"))
		return;
	rc = potad__child_carve(parent, &d, &c, msg, sizeof(msg));
	if (rc < 0) {
		potad__rpc_refuse(x, r, rc, "%s", msg);
		return;
	}
	log_info("%s by uid %u", msg, (unsigned)x->peer->uid);
	r->space = space_info(x, c, false);
	if (r->space)
		r->body_case = POTAD__V1__RESULT__BODY_SPACE;
}

void potad__op_child_remove(struct ctx *x, const Potad__V1__ChildRemove *m,
			    Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_space(x, r, m->name), *parent;
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
	if (ps->discard_handle)
		st.extents--; /* a discard's hold goes with the space */
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
	parent = ps->parent;
	rc = potad__space_remove(ps);
	if (rc == 0) {
		potad__jr_space_del(id);
		potad__discard_kick(parent);
	}
	if (rc < 0)
		potad__rpc_refuse(x, r, rc, "cannot remove: %s", strerror(-rc));
}
