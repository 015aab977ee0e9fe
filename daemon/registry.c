/* SPDX-License-Identifier: MIT */
/* The daemon's named spaces, their ACLs, owners and idempotency tokens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "journal/journal.h"

/*
 * The engine knows owners as small integers; the daemon maps each
 * (uid, label, session connection) to one, and back.  Tokens map
 * (uid, token) to the extent a first attempt produced, and a second map
 * leads from that extent (space, handle) back to its token, so that a
 * free forgets the token in constant time however many tokens are live.
 * A connection's session owners are linked from its entry in a fourth map,
 * so that its close drops them without a scan of every owner.  All four
 * live in the same chained hash keyed by two integers and a string.
 */
struct hent {
	uint64_t a, b;
	char *s;
	uint32_t next; /* index + 1 of the next entry in the bucket, 0: end */
	uint32_t live;
	union {
		struct {
			struct pspace *ps;
			uint64_t handle;
			uint32_t rev; /* its entry in tokrev */
		} tok;
		uint32_t tok_at; /* tokrev: the token's entry in tokens */
		uint32_t own;    /* conns: its first session owner, index + 1;
				  * owners: the next one of that connection */
	} v;
};

struct hmap {
	struct hent *ents;
	uint32_t n, cap;
	uint32_t *buckets; /* index + 1 of the first entry, 0: empty */
	uint32_t nbuckets;
	uint32_t freelist; /* index + 1 of a dead entry to reuse */
};

static struct pspace **spaces;
static size_t nspaces, capspaces;
static struct hmap owners, tokens, tokrev, conns;
static uint64_t next_id;

static uint64_t hash3(uint64_t a, uint64_t b, const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (a * 0x9e3779b97f4a7c15ull) ^
		     (b * 0xc2b2ae3d27d4eb4full);

	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static bool same(const struct hent *e, uint64_t a, uint64_t b, const char *s)
{
	return e->live && e->a == a && e->b == b &&
	       strcmp(e->s ? e->s : "", s ? s : "") == 0;
}

static int64_t hmap_find(const struct hmap *m, uint64_t a, uint64_t b,
			 const char *s)
{
	if (!m->nbuckets)
		return -1;
	for (uint32_t i = m->buckets[hash3(a, b, s) & (m->nbuckets - 1)]; i;
	     i = m->ents[i - 1].next)
		if (same(&m->ents[i - 1], a, b, s))
			return i - 1;
	return -1;
}

static int hmap_grow(struct hmap *m)
{
	uint32_t nb = m->nbuckets ? m->nbuckets * 2 : 64;
	uint32_t *b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n; i++) {
		struct hent *e = &m->ents[i];
		uint32_t h;

		if (!e->live)
			continue;
		h = hash3(e->a, e->b, e->s) & (nb - 1);
		e->next = b[h];
		b[h] = i + 1;
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
	return 0;
}

/* Add a new entry; returns its index or -ENOMEM. */
static int64_t hmap_add(struct hmap *m, uint64_t a, uint64_t b, const char *s)
{
	uint32_t i, h;
	char *copy = NULL;

	if (s && *s && !(copy = strdup(s)))
		return -ENOMEM;
	if (m->freelist) {
		i = m->freelist - 1;
		m->freelist = m->ents[i].next;
	} else {
		if (m->n == m->cap) {
			uint32_t cap = m->cap ? m->cap * 2 : 64;
			struct hent *t = realloc(m->ents, cap * sizeof(*t));

			if (!t) {
				free(copy);
				return -ENOMEM;
			}
			m->ents = t;
			m->cap = cap;
		}
		if (m->n >= m->nbuckets && hmap_grow(m) < 0) {
			free(copy);
			return -ENOMEM;
		}
		i = m->n++;
	}
	memset(&m->ents[i], 0, sizeof(m->ents[i]));
	m->ents[i].a = a;
	m->ents[i].b = b;
	m->ents[i].s = copy;
	m->ents[i].live = 1;
	h = hash3(a, b, s) & (m->nbuckets - 1);
	m->ents[i].next = m->buckets[h];
	m->buckets[h] = i + 1;
	return i;
}

static void hmap_del(struct hmap *m, uint32_t i)
{
	struct hent *e = &m->ents[i];
	uint32_t *p = &m->buckets[hash3(e->a, e->b, e->s) & (m->nbuckets - 1)];

	while (*p != i + 1)
		p = &m->ents[*p - 1].next;
	*p = e->next;
	free(e->s);
	e->s = NULL;
	e->live = 0;
	e->next = m->freelist;
	m->freelist = i + 1;
}

static void hmap_free(struct hmap *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		free(m->ents[i].s);
	free(m->ents);
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

int64_t potad__owner_get(uid_t uid, const char *label, uint64_t conn)
{
	int64_t i = hmap_find(&owners, uid, conn, label), c;

	if (i >= 0)
		return i;
	if (owners.n >= UINT32_MAX - 1)
		return -ENOMEM;
	i = hmap_add(&owners, uid, conn, label);
	if (i < 0 || !conn)
		return i;
	c = hmap_find(&conns, conn, 0, NULL);
	if (c < 0 && (c = hmap_add(&conns, conn, 0, NULL)) < 0) {
		hmap_del(&owners, (uint32_t)i);
		return c;
	}
	owners.ents[i].v.own = conns.ents[c].v.own;
	conns.ents[c].v.own = (uint32_t)i + 1;
	return i;
}

const struct powner *potad__owner(uint32_t id)
{
	static struct powner o;

	if (id >= owners.n || !owners.ents[id].live)
		return NULL;
	o.uid = (uid_t)owners.ents[id].a;
	o.conn = owners.ents[id].b;
	o.label = owners.ents[id].s ? owners.ents[id].s : "";
	return &o;
}

void potad__owner_drop_conn(uint64_t conn)
{
	int64_t c = hmap_find(&conns, conn, 0, NULL);

	if (c < 0)
		return;
	for (uint32_t i = conns.ents[c].v.own, next; i; i = next) {
		next = owners.ents[i - 1].v.own;
		hmap_del(&owners, i - 1);
	}
	hmap_del(&conns, (uint32_t)c);
}

/*
 * Owners are not counted: an extent keeps only the number.  Session
 * owners go with their connection, but the others stayed for ever, so a
 * client that labels each job afresh grew the table (and the scan above,
 * made at every close) without bound; the soak test's reconnecting
 * clients showed it.  So once the table has filled to twice what was in
 * use at the last sweep (and at least 4096), mark the owners that an
 * extent of any space names, and forget the other non-session ones.  The
 * discard owner is cached elsewhere and is kept.  Amortized, a sweep costs
 * a walk of the extents per few thousand new labels.
 */
static uint32_t sweep_at = 4096;

static int mark_owner(const struct potad_extent *e, void *arg)
{
	uint8_t *mark = arg;

	if (e->owner < owners.n)
		mark[e->owner] = 1;
	return 0;
}

void potad__owner_sweep(void)
{
	uint32_t kept = 0, n = owners.n;
	uint8_t *mark;

	if (owners.freelist || n < sweep_at || !(mark = calloc(n, 1)))
		return;
	for (size_t i = 0; i < nspaces; i++)
		if (spaces[i]->eng)
			potad_extent_foreach(spaces[i]->eng, 0, 0, mark_owner,
					     mark);
	for (uint32_t i = 0; i < n; i++) {
		if (!owners.ents[i].live)
			continue;
		if (mark[i] || owners.ents[i].b || potad__discard_owner(i))
			kept++;
		else
			hmap_del(&owners, i);
	}
	free(mark);
	sweep_at = kept * 2 > 4096 ? kept * 2 : 4096;
	log_debug("owners: %u of %u in use after a sweep", kept, n);
}

int potad__token_find(uid_t uid, const char *token, struct pspace **ps,
		      uint64_t *handle)
{
	int64_t i = hmap_find(&tokens, uid, 0, token);

	if (i < 0)
		return -ENOENT;
	*ps = tokens.ents[i].v.tok.ps;
	*handle = tokens.ents[i].v.tok.handle;
	return 0;
}

int potad__token_add(uid_t uid, const char *token, struct pspace *ps,
		     uint64_t handle)
{
	int64_t i = hmap_add(&tokens, uid, 0, token), r;

	if (i < 0)
		return (int)i;
	r = hmap_add(&tokrev, (uintptr_t)ps, handle, NULL);
	if (r < 0) {
		hmap_del(&tokens, (uint32_t)i);
		return (int)r;
	}
	tokens.ents[i].v.tok.ps = ps;
	tokens.ents[i].v.tok.handle = handle;
	tokens.ents[i].v.tok.rev = (uint32_t)r;
	tokrev.ents[r].v.tok_at = (uint32_t)i;
	return 0;
}

int potad__token_foreach(potad__token_fn fn, void *arg)
{
	for (uint32_t i = 0; i < tokens.n; i++) {
		const struct hent *e = &tokens.ents[i];
		int rc;

		if (!e->live)
			continue;
		rc = fn((uid_t)e->a, e->s ? e->s : "", e->v.tok.ps,
			e->v.tok.handle, arg);
		if (rc)
			return rc;
	}
	return 0;
}

static void token_del(uint32_t i)
{
	hmap_del(&tokrev, tokens.ents[i].v.tok.rev);
	hmap_del(&tokens, i);
}

void potad__token_forget(struct pspace *ps, uint64_t handle)
{
	int64_t r;

	/* A whole space goes rarely: that one may scan. */
	if (handle == 0) {
		for (uint32_t i = 0; i < tokens.n; i++)
			if (tokens.ents[i].live && tokens.ents[i].v.tok.ps == ps)
				token_del(i);
		return;
	}
	while ((r = hmap_find(&tokrev, (uintptr_t)ps, handle, NULL)) >= 0)
		token_del(tokrev.ents[r].v.tok_at);
}

/*
 * Spaces.
 */
static const struct potad_config *config;

int potad__registry_init(const struct potad_config *cfg)
{
	config = cfg;
	return 0;
}

const struct potad_config *potad__cfg(void)
{
	return config;
}

void potad__registry_fini(void)
{
	/* Children before parents: remove from the end, then retry. */
	while (nspaces) {
		size_t before = nspaces;

		for (size_t i = nspaces; i-- > 0;)
			if (spaces[i]->nchildren == 0)
				potad__space_remove(spaces[i]);
		if (nspaces == before)
			break;
	}
	free(spaces);
	spaces = NULL;
	nspaces = capspaces = 0;
	hmap_free(&owners);
	hmap_free(&conns);
	hmap_free(&tokens);
	hmap_free(&tokrev);
}

struct pspace *potad__space_by_id(uint64_t id)
{
	for (size_t i = 0; i < nspaces; i++)
		if (spaces[i]->id == id)
			return spaces[i];
	return NULL;
}

uint64_t potad__space_next_id(void)
{
	return next_id + 1;
}

struct pspace *potad__space_find(const char *name)
{
	for (size_t i = 0; i < nspaces; i++)
		if (strcmp(spaces[i]->name, name) == 0)
			return spaces[i];
	return NULL;
}

size_t potad__space_count(void)
{
	return nspaces;
}

struct pspace *potad__space_at(size_t i)
{
	return i < nspaces ? spaces[i] : NULL;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		      *p == '.'))
			return false;
	return true;
}

static int insert(const char *name, int kind, const char *source,
		  struct potad_space *eng, struct pspace **out)
{
	struct pspace *ps;
	struct potad_stats st;

	/* Every space runs with the engine's reuse cache at these limits
	 * (potad_space_set_cache(3)); only their memory can fail, and then
	 * the space does without. */
	potad_space_stats(eng, &st);
	if (potad_space_set_cache(eng, st.granule * POTAD_CACHE_UNITS,
				  POTAD_CACHE_ENTRIES) < 0)
		log_warn("space %s: no memory for the reuse cache; running "
			 "without it",
			 name);

	if (nspaces == capspaces) {
		size_t cap = capspaces ? capspaces * 2 : 8;
		struct pspace **t = realloc(spaces, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		spaces = t;
		capspaces = cap;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->name = strdup(name);
	ps->source = source ? strdup(source) : NULL;
	if (!ps->name || (source && !ps->source)) {
		free(ps->name);
		free(ps->source);
		free(ps);
		return -ENOMEM;
	}
	ps->kind = kind;
	ps->eng = eng;
	ps->fd = -1;
	ps->available = true;
	ps->id = ++next_id;
	ps->salt = (hash3(ps->id, 0x706f746164ull, name) & 0x0fffffffull) << 32;
	if (!ps->salt)
		ps->salt = 1ull << 32;
	spaces[nspaces++] = ps;
	*out = ps;
	return 0;
}

int potad__space_add(const char *name, int kind, const char *source,
		     uint64_t base, uint64_t size, unsigned granule_shift,
		     struct pspace **out)
{
	struct potad_space *eng;
	int rc;

	if (!name_ok(name))
		return -EINVAL;
	if (potad__space_find(name))
		return -EEXIST;
	rc = potad_space_new(&eng, base, size, granule_shift);
	if (rc < 0)
		return rc;
	rc = insert(name, kind, source, eng, out);
	if (rc < 0)
		potad_space_destroy(eng);
	return rc;
}

int potad__space_add_child(struct pspace *parent, const char *name,
			   uint64_t handle, unsigned granule_shift,
			   bool reserve, struct pspace **out)
{
	struct potad_space *eng;
	int rc;

	if (!name_ok(name))
		return -EINVAL;
	if (potad__space_find(name))
		return -EEXIST;
	rc = potad_child_new(parent->eng, handle, granule_shift, &eng);
	if (rc < 0)
		return rc;
	rc = insert(name, parent->kind, parent->source, eng, out);
	if (rc < 0) {
		potad_space_destroy(eng);
		return rc;
	}
	(*out)->parent = parent;
	(*out)->host_handle = handle;
	(*out)->reserve = reserve;
	(*out)->bar = parent->bar;
	parent->nchildren++;
	return 0;
}

int potad__space_restore(const struct potad_jspace *js, struct pspace **out)
{
	struct pspace *parent = NULL;
	struct potad_space *eng;
	int rc;

	*out = NULL;
	if (!name_ok(js->name) || potad__space_find(js->name) ||
	    potad__space_by_id(js->id) || js->id == 0)
		return -EEXIST;
	if (js->parent) {
		parent = potad__space_by_id(js->parent);
		if (!parent)
			return -ENOENT;
		rc = potad_child_new(parent->eng, js->host, js->granule_shift,
				     &eng);
	} else {
		rc = potad_space_new(&eng, js->base, js->size,
				     js->granule_shift);
	}
	if (rc < 0)
		return rc;
	potad_space_set_gen_floor(eng, js->genfloor);
	rc = insert(js->name, (int)js->kind, *js->source ? js->source : NULL,
		    eng, out);
	if (rc == 0)
		rc = potad__space_set_acl(*out, js->flags & POTAD_JS_ALLOW_ALL,
					  (const uid_t *)js->uids, js->nuids,
					  (const gid_t *)js->gids, js->ngids);
	if (rc < 0) {
		if (*out)
			potad__space_remove(*out);
		else
			potad_space_destroy(eng);
		return rc;
	}
	(*out)->id = js->id;
	(*out)->salt = js->salt;
	(*out)->bar = js->bar;
	(*out)->force = js->flags & POTAD_JS_FORCE;
	(*out)->discard = js->flags & POTAD_JS_DISCARD;
	(*out)->isolate = js->flags & POTAD_JS_ISOLATE;
	if (*js->identity && !((*out)->identity = strdup(js->identity))) {
		potad__space_remove(*out);
		return -ENOMEM;
	}
	if (js->id > next_id)
		next_id = js->id;
	if (parent) {
		(*out)->parent = parent;
		(*out)->host_handle = js->host;
		(*out)->reserve = js->flags & POTAD_JS_RESERVE;
		parent->nchildren++;
	}
	return 0;
}

int potad__space_remove(struct pspace *ps)
{
	int rc;

	if (ps->nchildren)
		return -EBUSY;
	rc = potad_space_destroy(ps->eng);
	if (rc < 0)
		return rc;
	if (ps->parent)
		ps->parent->nchildren--;
	potad__token_forget(ps, 0);
	for (size_t i = 0; i < nspaces; i++) {
		if (spaces[i] == ps) {
			memmove(&spaces[i], &spaces[i + 1],
				(nspaces - i - 1) * sizeof(spaces[0]));
			nspaces--;
			break;
		}
	}
	if (ps->fd >= 0)
		close(ps->fd);
	free(ps->name);
	free(ps->source);
	free(ps->identity);
	free(ps->device);
	free(ps->reason);
	free(ps->uids);
	free(ps->gids);
	free(ps);
	return 0;
}

const char *potad__kind_name(int kind)
{
	switch (kind) {
	case POTAD__V1__SPACE_KIND__RANGE:
		return "range";
	case POTAD__V1__SPACE_KIND__FILE:
		return "file";
	case POTAD__V1__SPACE_KIND__SWAP:
		return "swap";
	case POTAD__V1__SPACE_KIND__BLOCKDEV:
		return "blockdev";
	case POTAD__V1__SPACE_KIND__DEVDAX:
		return "devdax";
	case POTAD__V1__SPACE_KIND__PCIBAR:
		return "pcibar";
	default:
		return "unknown";
	}
}

int potad__granule_shift(uint64_t granule, unsigned *shift)
{
	if (granule == 0 || (granule & (granule - 1)) ||
	    granule > (1ull << POTAD_GRANULE_SHIFT_MAX))
		return -EINVAL;
	*shift = (unsigned)__builtin_ctzll(granule);
	return 0;
}

bool potad__space_acl_is(const struct pspace *ps,
			 const struct potad_space_decl *d)
{
	return ps->allow_all == d->allow_all && ps->nuids == d->nuids &&
	       ps->ngids == d->ngids &&
	       (!d->nuids ||
		memcmp(ps->uids, d->uids, d->nuids * sizeof(uid_t)) == 0) &&
	       (!d->ngids ||
		memcmp(ps->gids, d->gids, d->ngids * sizeof(gid_t)) == 0);
}

int potad__space_set_acl(struct pspace *ps, bool allow_all, const uid_t *uids,
			 size_t nuids, const gid_t *gids, size_t ngids)
{
	uid_t *u = NULL;
	gid_t *g = NULL;

	/* The journal keeps at most 65535 of each. */
	if (nuids > 4096 || ngids > 4096)
		return -E2BIG;
	if (nuids && !(u = malloc(nuids * sizeof(*u))))
		return -ENOMEM;
	if (ngids && !(g = malloc(ngids * sizeof(*g)))) {
		free(u);
		return -ENOMEM;
	}
	if (nuids)
		memcpy(u, uids, nuids * sizeof(*u));
	if (ngids)
		memcpy(g, gids, ngids * sizeof(*g));
	free(ps->uids);
	free(ps->gids);
	ps->uids = u;
	ps->nuids = nuids;
	ps->gids = g;
	ps->ngids = ngids;
	ps->allow_all = allow_all;
	return 0;
}

bool potad__space_allows(const struct pspace *ps, const struct potad_peer *p)
{
	if (p->admin || ps->allow_all)
		return true;
	for (size_t i = 0; i < ps->nuids; i++)
		if (ps->uids[i] == p->uid)
			return true;
	for (size_t i = 0; i < ps->ngids; i++) {
		if (ps->gids[i] == p->gid)
			return true;
		for (int j = 0; j < p->ngroups; j++)
			if (ps->gids[i] == p->groups[j])
				return true;
	}
	return false;
}
