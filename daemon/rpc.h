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

#endif /* POTAD_DAEMON_RPC_H */
