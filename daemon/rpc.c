/* SPDX-License-Identifier: MIT */
/* The request dispatcher: who may do what, then one engine call per op. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon.h"
#include "journal.h"
#include "rpc.h"

/*
 * Each operation is decoded, checked against the caller's identity and the
 * space's ACL, handed to the engine, and answered with a status and a
 * message.  The engine decides everything about space; this file decides
 * only who may ask.  A refused operation changes nothing.
 *
 * Per connection the dispatcher keeps its event subscription (events live
 * in rpc_events.c) and the session-scoped extents to free when the
 * connection closes.
 */

struct sess {
	uint64_t space_id; /* pspace.id: pointers may be reused */
	uint64_t handle;
};

struct cstate {
	struct potad_sub sub;
	struct sess *sess;
	size_t nsess, capsess;
	struct potad_prep *prep; /* probes for the request being answered */
};

/* What one request's replies may take: the queue limit.  Replies are built
 * in the arena after the request, so its growth is the measure. */
static size_t reply_budget = 4u << 20;

void potad__rpc_init(const struct potad_config *cfg)
{
	potad__events_init(cfg);
	reply_budget = cfg->max_queue;
}

Potad__V1__Status potad__status_of(int err)
{
	switch (-err) {
	case 0:
		return POTAD__V1__STATUS__OK;
	case ENOSPC:
		return POTAD__V1__STATUS__NO_SPACE;
	case EINVAL:
	case EBADMSG:
		return POTAD__V1__STATUS__INVALID;
	case ENOENT:
		return POTAD__V1__STATUS__NOT_FOUND;
	case EBUSY:
		return POTAD__V1__STATUS__BUSY;
	case EPERM:
	case EACCES:
		return POTAD__V1__STATUS__PERMISSION;
	case ESTALE:
		return POTAD__V1__STATUS__STALE;
	case EEXIST:
		return POTAD__V1__STATUS__EXISTS;
	case E2BIG:
	case EFBIG:
	case EMSGSIZE:
		return POTAD__V1__STATUS__TOO_LARGE;
	case EAGAIN:
	case ENODEV:
	case EOPNOTSUPP:
		return POTAD__V1__STATUS__UNAVAILABLE;
	case ERANGE:
		return POTAD__V1__STATUS__OUT_OF_RANGE;
	default:
		return POTAD__V1__STATUS__INTERNAL;
	}
}

static struct cstate *state(struct potad_conn *c)
{
	void **p = potad__conn_state(c);

	if (!*p)
		*p = calloc(1, sizeof(struct cstate));
	return *p;
}

/* The connection's subscription, or NULL if its state cannot be made. */
static struct potad_sub *sub_of(struct potad_conn *c)
{
	struct cstate *st = state(c);

	return st ? &st->sub : NULL;
}

void *potad__rpc_zalloc(struct ctx *x, size_t n)
{
	void *p = potad__arena_alloc(x->a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

void potad__rpc_refuse(struct ctx *x, Potad__V1__Result *r, int err,
		       const char *f, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	r->status = potad__status_of(err);
	r->message = potad__arena_strdup(x->a, buf);
	if (!r->message)
		r->message = "";
	log_debug("connection %llu (uid %u): op %zu refused: %s",
		  (unsigned long long)potad__conn_id(x->conn),
		  (unsigned)x->peer->uid, x->op, buf);
}

struct pspace *potad__rpc_space(struct ctx *x, Potad__V1__Result *r,
				const char *name)
{
	struct pspace *ps = potad__space_find(name ? name : "");

	if (!ps)
		potad__rpc_refuse(x, r, -ENOENT, "no space named '%s'",
				  name ? name : "");
	return ps;
}

/* The space named name if it serves now; else refuse r (NOT_FOUND or
 * UNAVAILABLE with the reason) and return NULL. */
struct pspace *potad__rpc_live_space(struct ctx *x, Potad__V1__Result *r,
				     const char *name)
{
	struct pspace *ps = potad__rpc_space(x, r, name);
	const char *why = ps ? potad__space_unavailable(ps) : NULL;

	if (why) {
		potad__rpc_refuse(x, r, -ENODEV, "space '%s' is not available: "
				  "%s", ps->name, why);
		return NULL;
	}
	return ps;
}

bool potad__rpc_admin(struct ctx *x, Potad__V1__Result *r, const char *what)
{
	if (x->peer->admin)
		return true;
	potad__rpc_refuse(x, r, -EPERM,
			  "%s needs an admin (root or the admin group)", what);
	return false;
}

struct pspace *potad__rpc_child_hosted_by(const struct pspace *ps,
					  uint64_t handle)
{
	for (size_t i = 0; i < potad__space_count(); i++) {
		struct pspace *c = potad__space_at(i);

		if (c->parent == ps &&
		    POTAD_HANDLE_SLOT(c->host_handle) ==
			POTAD_HANDLE_SLOT(handle) &&
		    POTAD_HANDLE_GEN(c->host_handle) ==
			POTAD_HANDLE_GEN(handle))
			return c;
	}
	return NULL;
}

Potad__V1__Extent *potad__rpc_extent_msg(struct ctx *x,
					 const struct pspace *ps,
					 const struct potad_extent *e)
{
	Potad__V1__Extent *m = potad__rpc_zalloc(x, sizeof(*m));
	const struct powner *o = potad__owner(e->owner);

	if (!m)
		return NULL;
	potad__v1__extent__init(m);
	/* A copy: a later op of the same request may remove the space
	 * before the reply is packed. */
	m->space = potad__arena_strdup(x->a, ps->name);
	if (!m->space)
		return NULL;
	m->offset = e->offset;
	m->length = e->length;
	m->handle = e->handle ^ ps->salt;
	m->tag = e->tag;
	m->poisoned = e->flags & POTAD_EXTENT_POISONED;
	if (o) {
		m->owner_uid = o->uid;
		/* The owner table keeps the label until the reply is sent. */
		m->label = (char *)o->label;
		m->session = o->conn != 0;
	}
	if (e->type == POTAD_TYPE_CHILD) {
		struct pspace *c = potad__rpc_child_hosted_by(ps, e->handle);

		if (c && !(m->child = potad__arena_strdup(x->a, c->name)))
			return NULL;
	}
	return m;
}

static bool may_see_extent(const struct ctx *x, const struct potad_extent *e)
{
	const struct powner *o = potad__owner(e->owner);

	return x->peer->admin || (o && o->uid == x->peer->uid);
}

/*
 * Operations.
 */
static void op_hello(struct ctx *x, const Potad__V1__Hello *m,
		     Potad__V1__Result *r)
{
	static char *caps[] = {"alloc",	  "aligned", "range", "top-down",
			       "fixed",	  "poison",  "child", "reserve",
			       "session", "events",  "batch", "token"};
	Potad__V1__HelloReply *h = potad__rpc_zalloc(x, sizeof(*h));

	if (!h) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	potad__v1__hello_reply__init(h);
	h->protocol = 1;
	h->server_version = PACKAGE_VERSION;
	h->n_capabilities = sizeof(caps) / sizeof(caps[0]);
	h->capabilities = caps;
	h->uid = x->peer->uid;
	h->gid = x->peer->gid;
	h->admin = x->peer->admin;
	h->durable = potad__journal_on();
	if (m->protocol > 1)
		log_debug("client speaks protocol %u; answering with 1",
			  m->protocol);
	r->body_case = POTAD__V1__RESULT__BODY_HELLO;
	r->hello = h;
}


/* Make room to remember one more session extent, before it is made: one
 * the close could not find would never be freed.  -ENOMEM if there is
 * none. */
static int sess_room(struct potad_conn *c)
{
	struct cstate *st = state(c);
	size_t keep = 0, cap;
	struct sess *t;

	if (!st)
		return -ENOMEM;
	if (st->nsess < st->capsess)
		return 0;
	/* Drop entries already freed before growing. */
	for (size_t i = 0; i < st->nsess; i++) {
		struct pspace *sp = potad__space_by_id(st->sess[i].space_id);

		if (sp && potad_get(sp->eng, st->sess[i].handle, NULL) == 0)
			st->sess[keep++] = st->sess[i];
	}
	st->nsess = keep;
	cap = st->capsess ? st->capsess * 2 : 8;
	if (st->nsess < st->capsess / 2)
		cap = st->capsess;
	t = realloc(st->sess, cap * sizeof(*t));
	if (!t)
		return st->nsess < st->capsess ? 0 : -ENOMEM;
	st->sess = t;
	st->capsess = cap;
	return 0;
}

/* Remember a session extent so the connection's close frees it; after
 * sess_room(). */
static void sess_add(struct potad_conn *c, struct pspace *ps, uint64_t h)
{
	struct cstate *st = state(c);

	st->sess[st->nsess].space_id = ps->id;
	st->sess[st->nsess++].handle = h;
}

/* No room: say how much is free, and for a clean request how much of
 * that is dirty and whether a discard is on its way. */
static void refuse_nospc(struct ctx *x, Potad__V1__Result *r,
			 const struct pspace *ps, uint64_t size, bool clean)
{
	struct potad_stats st;

	potad_space_stats(ps->eng, &st);
	if (!clean || !(st.dirty_units || ps->discard_handle)) {
		potad__rpc_refuse(x, r, -ENOSPC,
				  "no free extent of %llu bytes fits in '%s'",
				  (unsigned long long)size, ps->name);
		return;
	}
	potad__rpc_refuse(
	    x, r, -ENOSPC,
	    "no clean extent of %llu bytes fits in '%s': %llu free bytes are "
	    "dirty%s",
	    (unsigned long long)size, ps->name,
	    (unsigned long long)(st.dirty_units * st.granule +
				 ps->discard_len),
	    potad__space_root((struct pspace *)ps)->discard
		? " and being discarded; retry later"
		: " (the space does not discard)");
}

/* Draws from a reserve matter to an admin (the parent ran out), but on a
 * busy host they can come with every request: the first is logged, then
 * at most one line a minute sums up the draws since. */
#define RESERVE_LOG_S 60
static void reserve_drawn(struct pspace *rs, uid_t uid, uint64_t bytes)
{
	time_t now = time(NULL);

	rs->draws++;
	rs->draw_bytes += bytes;
	if (rs->draw_logged && now - rs->draw_logged < RESERVE_LOG_S)
		return;
	log_info("reserve %s: uid %u drew %llu bytes (%llu draw(s), %llu "
		 "bytes since the last report)", rs->name, (unsigned)uid,
		 (unsigned long long)bytes, (unsigned long long)rs->draws,
		 (unsigned long long)rs->draw_bytes);
	rs->draw_logged = now;
	rs->draws = rs->draw_bytes = 0;
}

static void op_alloc(struct ctx *x, const Potad__V1__Alloc *m,
		     Potad__V1__Result *r)
{
	struct potad_alloc_req q = {0};
	struct pspace *ps = potad__rpc_live_space(x, r, m->space), *rs = NULL;
	struct potad_extent e;
	int64_t owner;
	int rc;

	if (!ps)
		return;
	if (!potad__space_allows(ps, x->peer)) {
		potad__rpc_refuse(x, r, -EPERM,
				  "uid %u may not allocate in '%s'",
				  (unsigned)x->peer->uid, ps->name);
		return;
	}
	if (m->size == 0) {
		potad__rpc_refuse(x, r, -EINVAL, "size must be greater than 0");
		return;
	}
	if (m->align & (m->align - 1)) {
		potad__rpc_refuse(x, r, -EINVAL,
				  "alignment %llu is not a power of two",
				  (unsigned long long)m->align);
		return;
	}
	if (m->max && m->min >= m->max) {
		potad__rpc_refuse(
		    x, r, -EINVAL, "min %#llx is not below max %#llx",
		    (unsigned long long)m->min, (unsigned long long)m->max);
		return;
	}
	if (m->reserve && *m->reserve) {
		rs = potad__space_find(m->reserve);
		if (!rs || rs->parent != ps || !rs->reserve) {
			potad__rpc_refuse(x, r, -EINVAL,
					  "'%s' is not a reserve of '%s'",
					  m->reserve, ps->name);
			return;
		}
		if (!potad__space_allows(rs, x->peer)) {
			potad__rpc_refuse(x, r, -EPERM,
					  "uid %u may not use reserve '%s'",
					  (unsigned)x->peer->uid, rs->name);
			return;
		}
	}
	if ((m->label && strlen(m->label) > POTAD_LABEL_MAX) ||
	    (m->token && strlen(m->token) > POTAD_LABEL_MAX)) {
		potad__rpc_refuse(x, r, -EINVAL,
				  "labels and tokens are at most %d bytes",
				  POTAD_LABEL_MAX);
		return;
	}
	if (m->token && *m->token) {
		struct pspace *tps;
		uint64_t th;

		if (potad__token_find(x->peer->uid, m->token, &tps, &th) == 0 &&
		    potad_get(tps->eng, th, &e) == 0) {
			r->extent = potad__rpc_extent_msg(x, tps, &e);
			r->body_case = POTAD__V1__RESULT__BODY_EXTENT;
			return;
		}
	}
	owner = potad__owner_get(x->peer->uid, m->label,
				 m->session ? potad__conn_id(x->conn) : 0);
	if (owner < 0) {
		potad__rpc_refuse(x, r, (int)owner, "out of memory");
		return;
	}
	q.size = m->size;
	q.align = m->align;
	q.min = m->min;
	q.max = m->max;
	q.at = m->at;
	q.owner = (uint32_t)owner;
	q.tag = m->tag;
	q.flags = (m->top_down ? POTAD_ALLOC_TOPDOWN : 0) |
		  (m->whole ? POTAD_ALLOC_WHOLE : 0) |
		  (m->fixed ? POTAD_ALLOC_FIXED : 0) |
		  (m->clean || potad__space_root(ps)->isolate ? POTAD_ALLOC_CLEAN
							     : 0);
	if (potad__journal_room(256 + 2 * POTAD_LABEL_MAX) < 0 ||
	    (m->session && sess_room(x->conn) < 0)) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	rc = potad_alloc(ps->eng, &q, &e);
	if (rc == -ENOSPC && rs) {
		/* The reserve is only for when the parent cannot serve. */
		rc = potad_alloc(rs->eng, &q, &e);
		if (rc == 0) {
			reserve_drawn(rs, x->peer->uid, e.length);
			ps = rs;
		}
	}
	switch (rc) {
	case 0:
		break;
	case -ENOSPC:
		refuse_nospc(x, r, ps, m->size, q.flags & POTAD_ALLOC_CLEAN);
		return;
	case -E2BIG:
		potad__rpc_refuse(x, r, rc,
				  "%llu bytes is larger than '%s' or its range",
				  (unsigned long long)m->size, ps->name);
		return;
	case -EBUSY:
		potad__rpc_refuse(
		    x, r, rc, "part of [%#llx, +%llu) is taken or poisoned",
		    (unsigned long long)m->at, (unsigned long long)m->size);
		return;
	case -ERANGE:
		potad__rpc_refuse(x, r, rc, "[%#llx, +%llu) is outside '%s'",
				  (unsigned long long)m->at,
				  (unsigned long long)m->size, ps->name);
		return;
	case -EINVAL:
		potad__rpc_refuse(
		    x, r, rc,
		    "invalid request for '%s' (a fixed address must be a "
		    "multiple of the granule and the alignment; the range "
		    "must meet the space)",
		    ps->name);
		return;
	default:
		potad__rpc_refuse(x, r, rc, "allocation failed: %s",
				  strerror(-rc));
		return;
	}
	potad__jr_alloc(ps, &e, m->token);
	if (m->token && *m->token &&
	    potad__token_add(x->peer->uid, m->token, ps, e.handle) < 0)
		log_warn("out of memory remembering a token; a retry will "
			 "allocate again");
	if (m->session)
		sess_add(x->conn, ps, e.handle);
	r->extent = potad__rpc_extent_msg(x, ps, &e);
	if (!r->extent) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	r->body_case = POTAD__V1__RESULT__BODY_EXTENT;
	potad__low_water(ps);
}

/* The extent covering offset; a discard's hold is free space. */
static int lookup_at(const struct pspace *ps, uint64_t offset,
		     struct potad_extent *e)
{
	int rc = potad_lookup(ps->eng, offset, e);

	return rc == 0 && ps->discard_handle == e->handle ? -ENOENT : rc;
}

static void op_free(struct ctx *x, const Potad__V1__Free *m,
		    Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_live_space(x, r, m->space);
	struct potad_extent e;
	uint64_t handle = 0, wire = m->handle;
	int rc;

	if (!ps)
		return;
	handle = wire ^ ps->salt;
	if (m->by_offset) {
		if (!potad__rpc_admin(x, r, "freeing by offset"))
			return;
		rc = lookup_at(ps, m->offset, &e);
		if (rc < 0) {
			potad__rpc_refuse(
			    x, r, rc, "no extent at %#llx in '%s'",
			    (unsigned long long)m->offset, ps->name);
			return;
		}
		handle = e.handle;
		wire = handle ^ ps->salt;
	}
	rc = ps->discard_handle && handle == ps->discard_handle
		 ? -ESTALE
		 : potad_get(ps->eng, handle, &e);
	if (rc < 0) {
		potad__rpc_refuse(
		    x, r, rc,
		    rc == -ESTALE ? "handle %#llx names no live extent in '%s'"
				  : "handle %#llx is malformed for '%s'",
		    (unsigned long long)wire, ps->name);
		return;
	}
	if (!may_see_extent(x, &e)) {
		potad__rpc_refuse(x, r, -EPERM,
				  "extent %#llx belongs to another owner",
				  (unsigned long long)wire);
		return;
	}
	if (e.type == POTAD_TYPE_CHILD) {
		struct pspace *c = potad__rpc_child_hosted_by(ps, handle);

		potad__rpc_refuse(x, r, -EBUSY,
				  "extent %#llx hosts child space '%s'",
				  (unsigned long long)wire, c ? c->name : "?");
		return;
	}
	if (potad__journal_room(64) < 0) {
		potad__rpc_refuse(x, r, -ENOMEM, "out of memory");
		return;
	}
	rc = m->keep ? potad__space_shrink(ps, handle, m->keep, &e)
		     : potad__space_free(ps, handle, &e);
	if (rc == -EINVAL && m->keep) {
		potad__rpc_refuse(x, r, rc,
				  "cannot keep %llu bytes of extent %#llx "
				  "(%llu bytes): keep fewer, a multiple of "
				  "the granule of '%s', or free it all",
				  (unsigned long long)m->keep,
				  (unsigned long long)wire,
				  (unsigned long long)e.length, ps->name);
		return;
	}
	if (rc < 0) {
		potad__rpc_refuse(x, r, rc, "%s failed: %s",
				  m->keep ? "shrink" : "free", strerror(-rc));
		return;
	}
	if (m->keep) {
		/* The extent lives on: its token still names it. */
		potad__jr_shrink(ps, handle, m->keep);
	} else {
		potad__jr_free(ps, handle);
		potad__token_forget(ps, handle);
	}
	potad__discard_kick(ps);
	r->extent = potad__rpc_extent_msg(x, ps, &e);
	if (r->extent)
		r->body_case = POTAD__V1__RESULT__BODY_EXTENT;
	potad__low_water(ps);
}

static void op_lookup(struct ctx *x, const Potad__V1__Lookup *m,
		      Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_space(x, r, m->space);
	struct potad_extent e;
	int rc;

	if (!ps)
		return;
	rc = lookup_at(ps, m->offset, &e);
	if (rc == -ERANGE) {
		potad__rpc_refuse(x, r, rc, "%#llx is outside '%s'",
				  (unsigned long long)m->offset, ps->name);
		return;
	}
	if (rc < 0) {
		potad__rpc_refuse(x, r, rc, "no extent covers %#llx in '%s'",
				  (unsigned long long)m->offset, ps->name);
		return;
	}
	if (!may_see_extent(x, &e)) {
		potad__rpc_refuse(x, r, -EPERM,
				  "the extent at %#llx belongs to another "
				  "owner",
				  (unsigned long long)m->offset);
		return;
	}
	r->extent = potad__rpc_extent_msg(x, ps, &e);
	if (r->extent)
		r->body_case = POTAD__V1__RESULT__BODY_EXTENT;
}

/*
 * Listing walks the extents from `from` in address order, keeping the ones
 * the filter passes, until the reply budget (max_queue) or the page's
 * limit is reached.  Unpaged (limit 0), a list that outgrows the budget is
 * refused as a whole, as it always was, so a client that does not know
 * about pages never takes a partial list for the whole one.  Paged, the
 * budget only cuts the page short, and `next` is the first extent the page
 * did not take.
 */
struct lister {
	struct ctx *x;
	const struct pspace *ps;
	const Potad__V1__ListExtents *m;
	uid_t uid;
	bool by_uid;
	Potad__V1__Extent **v;
	size_t n, cap;
	bool oom, over;
	uint64_t next; /* with over: the offset of the first extent left */
};

/* 1 when e passes the filter and was added; 0 when it was skipped; -1 when
 * the list is full (over) or out of memory (oom). */
static int list_one(struct lister *l, const struct potad_extent *e)
{
	const struct powner *o = potad__owner(e->owner);

	if (!o || e->handle == l->ps->discard_handle ||
	    (l->by_uid && o->uid != l->uid) ||
	    (l->m->label && *l->m->label && strcmp(o->label, l->m->label)))
		return 0;
	/* A page always takes one extent, so that paging moves on even
	 * after other operations of the request used up the budget. */
	if ((l->m->limit && l->n == l->m->limit) ||
	    ((l->n || !l->m->limit) &&
	     potad__arena_bytes(l->x->a) - l->x->base > reply_budget)) {
		l->over = true;
		l->next = e->offset;
		return -1;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		Potad__V1__Extent **t =
		    potad__arena_alloc(l->x->a, cap * sizeof(*t));

		if (!t) {
			l->oom = true;
			return -1;
		}
		if (l->n)
			memcpy(t, l->v, l->n * sizeof(*t));
		l->v = t;
		l->cap = cap;
	}
	l->v[l->n] = potad__rpc_extent_msg(l->x, l->ps, e);
	if (!l->v[l->n]) {
		l->oom = true;
		return -1;
	}
	l->n++;
	return 1;
}

static int list_cb(const struct potad_extent *e, void *arg)
{
	return list_one(arg, e) < 0;
}

static void op_list_extents(struct ctx *x, const Potad__V1__ListExtents *m,
			    Potad__V1__Result *r)
{
	struct pspace *ps = potad__rpc_space(x, r, m->space);
	struct lister l = {.x = x, .ps = ps, .m = m};
	Potad__V1__ExtentList *el;

	if (!ps)
		return;
	l.by_uid = m->by_owner || !x->peer->admin;
	l.uid = m->by_owner ? m->owner_uid : x->peer->uid;
	if (!x->peer->admin && l.uid != x->peer->uid) {
		potad__rpc_refuse(x, r, -EPERM,
				  "only an admin may list uid %u's extents",
				  (unsigned)l.uid);
		return;
	}
	potad_extent_foreach_from(ps->eng, m->from, 0, 0, list_cb, &l);
	if (l.over && !m->limit) {
		potad__rpc_refuse(
		    x, r, -E2BIG,
		    "more than %zu bytes of extents to list (%zu so far); "
		    "narrow it by owner or label, or list it in pages "
		    "(limit; potadctl list does)",
		    reply_budget, l.n);
		return;
	}
	el = potad__rpc_zalloc(x, sizeof(*el));
	if (l.oom || !el) {
		potad__rpc_refuse(x, r, -ENOMEM,
				  "out of memory listing extents");
		return;
	}
	potad__v1__extent_list__init(el);
	el->n_extents = l.n;
	el->extents = l.v;
	el->more = l.over;
	el->next = l.over ? l.next : 0;
	r->extents = el;
	r->body_case = POTAD__V1__RESULT__BODY_EXTENTS;
}

static void dispatch(struct ctx *x, const Potad__V1__Op *op,
		     Potad__V1__Result *r)
{
	switch (op->op_case) {
	case POTAD__V1__OP__OP_HELLO:
		op_hello(x, op->hello, r);
		break;
	case POTAD__V1__OP__OP_LIST_SPACES:
		potad__op_list_spaces(x, r);
		break;
	case POTAD__V1__OP__OP_SPACE_ADD:
		potad__op_space_add(x, op->space_add, r);
		break;
	case POTAD__V1__OP__OP_SPACE_REMOVE:
		potad__op_space_remove(x, op->space_remove, r);
		break;
	case POTAD__V1__OP__OP_SPACE_STAT:
		potad__op_space_stat(x, op->space_stat, r);
		break;
	case POTAD__V1__OP__OP_ALLOC:
		op_alloc(x, op->alloc, r);
		break;
	case POTAD__V1__OP__OP_FREE:
		op_free(x, op->free, r);
		break;
	case POTAD__V1__OP__OP_LOOKUP:
		op_lookup(x, op->lookup, r);
		break;
	case POTAD__V1__OP__OP_LIST_EXTENTS:
		op_list_extents(x, op->list_extents, r);
		break;
	case POTAD__V1__OP__OP_POISON:
		potad__op_poison(x, op->poison, r);
		break;
	case POTAD__V1__OP__OP_CHILD_ADD:
		potad__op_child_add(x, op->child_add, r);
		break;
	case POTAD__V1__OP__OP_CHILD_REMOVE:
		potad__op_child_remove(x, op->child_remove, r);
		break;
	case POTAD__V1__OP__OP_SUBSCRIBE:
		potad__op_subscribe(x, op->subscribe, r, sub_of(x->conn));
		break;
	default:
		potad__rpc_refuse(x, r, -EINVAL, "unknown or empty operation");
		break;
	}
}

Potad__V1__Response *potad__rpc_handle(struct potad_conn *c,
				       const Potad__V1__Request *req,
				       struct potad_arena *a)
{
	struct cstate *st = *potad__conn_state(c);
	struct ctx x = {.conn = c,
			.peer = potad__conn_peer(c),
			.a = a,
			.base = potad__arena_bytes(a),
			.prep = st ? st->prep : NULL};
	Potad__V1__Response *resp;
	Potad__V1__Result *res = NULL;

	/* Here, between requests, no reply points at an owner's label. */
	potad__owner_sweep();
	resp = potad__rpc_zalloc(&x, sizeof(*resp));

	if (!resp)
		goto out;
	potad__v1__response__init(resp);
	resp->id = req->id;
	resp->message = "";
	resp->results =
	    potad__rpc_zalloc(&x, req->n_ops * sizeof(*resp->results) + 1);
	res = potad__rpc_zalloc(&x, req->n_ops * sizeof(*res) + 1);
	if (!resp->results || !res)
		goto out;
	for (size_t i = 0; i < req->n_ops; i++) {
		x.op = i;
		potad__v1__result__init(&res[i]);
		res[i].message = "";
		/* One small request must not make an unbounded reply. */
		if (potad__arena_bytes(a) - x.base > reply_budget)
			potad__rpc_refuse(
			    &x, &res[i], -E2BIG,
			    "the replies to this request passed %zu bytes; "
			    "operation not done, split the request",
			    reply_budget);
		else
			dispatch(&x, req->ops[i], &res[i]);
		resp->results[i] = &res[i];
	}
	resp->n_results = req->n_ops;
out:
	if (x.prep) {
		potad__prep_free(x.prep);
		st->prep = NULL;
	}
	return resp && resp->results && res ? resp : NULL;
}

int potad__rpc_prepare(struct potad_conn *c, const Potad__V1__Request *req,
		       void (*done)(struct potad_conn *c))
{
	struct potad_prep *p;
	struct cstate *st;
	int err;

	p = potad__prep_start(c, req, done, &err);
	if (!p)
		return err;
	/* The work runs already; it needs the state only when it is done,
	 * and the state is made here, on the loop, before that. */
	st = state(c);
	if (!st) {
		potad__prep_orphan(p);
		return -ENOMEM;
	}
	st->prep = p;
	return 1;
}

void potad__rpc_conn_closed(struct potad_conn *c)
{
	void **p = potad__conn_state(c);
	struct cstate *st = *p;
	size_t freed = 0;

	if (!st)
		return;
	if (st->prep)
		potad__prep_orphan(st->prep);
	potad__sub_drop(&st->sub);
	for (size_t i = 0; i < st->nsess; i++) {
		struct pspace *ps = potad__space_by_id(st->sess[i].space_id);

		if (ps && potad__journal_room(64) == 0 &&
		    potad__space_free(ps, st->sess[i].handle, NULL) == 0) {
			potad__jr_free(ps, st->sess[i].handle);
			potad__discard_kick(ps);
			potad__token_forget(ps, st->sess[i].handle);
			freed++;
			potad__low_water(ps);
		}
	}
	if (freed)
		log_debug("connection %llu closed: %zu session extent(s) freed",
			  (unsigned long long)potad__conn_id(c), freed);
	potad__owner_drop_conn(potad__conn_id(c));
	free(st->sess);
	free(st);
	*p = NULL;
}
