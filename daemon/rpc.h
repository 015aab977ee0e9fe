/* SPDX-License-Identifier: MIT */
/* What the dispatcher's files share: the per-request context, refusals,
 * and the handlers that live outside rpc.c. */
#ifndef POTAD_DAEMON_RPC_H
#define POTAD_DAEMON_RPC_H

#include "daemon.h"

struct ctx {
	struct potad_conn *conn;
	const struct potad_peer *peer;
	struct potad_arena *a;
	size_t base; /* arena bytes before the replies (the request's) */
	struct potad_prep *prep; /* what was prepared off the loop, or NULL */
	size_t op;               /* the op being dispatched */
};

/* Zeroed memory from the request's arena, or NULL. */
void *potad__rpc_zalloc(struct ctx *x, size_t n);
/* Refuse r with the status for err and a message. */
void potad__rpc_refuse(struct ctx *x, Potad__V1__Result *r, int err,
		       const char *f, ...)
    __attribute__((format(printf, 4, 5)));
/* The space named name, or NULL after refusing r with NOT_FOUND. */
struct pspace *potad__rpc_space(struct ctx *x, Potad__V1__Result *r,
				const char *name);
/* Whether the caller is an admin; refuses r (PERMISSION) if not. */
bool potad__rpc_admin(struct ctx *x, Potad__V1__Result *r, const char *what);
/* The space named name if it serves now; else refuse r (NOT_FOUND, or
 * UNAVAILABLE with the reason) and return NULL. */
struct pspace *potad__rpc_live_space(struct ctx *x, Potad__V1__Result *r,
				     const char *name);
/* e as a wire Extent, from the request's arena; NULL without memory. */
Potad__V1__Extent *potad__rpc_extent_msg(struct ctx *x,
					 const struct pspace *ps,
					 const struct potad_extent *e);
/* The child space hosted by the extent named by the engine handle. */
struct pspace *potad__rpc_child_hosted_by(const struct pspace *ps,
					  uint64_t handle);

/* Space and child-space administration (rpc_spaces.c). */
struct potad_prep;
/* Start probing the devices req's SpaceAdd ops name, on the thread pool;
 * done(c) runs on the loop when the probes are done.  NULL with *err 0
 * when nothing needs probing (or the caller is no admin), NULL with *err
 * -ENOMEM. */
struct potad_prep *potad__prep_start(struct potad_conn *c,
				     const Potad__V1__Request *req,
				     void (*done)(struct potad_conn *c),
				     int *err);
/* The connection has gone: p frees itself when its work is done. */
void potad__prep_orphan(struct potad_prep *p);
void potad__prep_free(struct potad_prep *p);
void potad__op_list_spaces(struct ctx *x, Potad__V1__Result *r);
void potad__op_space_stat(struct ctx *x, const Potad__V1__SpaceStat *m,
			  Potad__V1__Result *r);
void potad__op_space_add(struct ctx *x, const Potad__V1__SpaceAdd *m,
			 Potad__V1__Result *r);
void potad__op_space_remove(struct ctx *x, const Potad__V1__SpaceRemove *m,
			    Potad__V1__Result *r);
void potad__op_child_add(struct ctx *x, const Potad__V1__ChildAdd *m,
			 Potad__V1__Result *r);
void potad__op_child_remove(struct ctx *x, const Potad__V1__ChildRemove *m,
			    Potad__V1__Result *r);

/* Events (rpc_events.c).  A connection's subscription, kept in its
 * dispatcher state; zeroed means not subscribed. */
struct potad_sub {
	bool on;
	char *space; /* NULL: every space */
	unsigned low_water;
	bool notified; /* told of the current crossing */
	struct potad_conn *conn;
	size_t index; /* position among the subscribers */
};
void potad__events_init(const struct potad_config *cfg);
/* Subscribe, replacing sub's subscription; sub NULL: out of memory. */
void potad__op_subscribe(struct ctx *x, const Potad__V1__Subscribe *m,
			 Potad__V1__Result *r, struct potad_sub *sub);
/* End sub's subscription, if any. */
void potad__sub_drop(struct potad_sub *sub);
/* Tell subscribers of ps whose watermark it just crossed. */
void potad__low_water(struct pspace *ps);
/* Poison a range, and tell the owners of the extents it hits. */
void potad__op_poison(struct ctx *x, const Potad__V1__Poison *m,
		      Potad__V1__Result *r);

#endif /* POTAD_DAEMON_RPC_H */
