/* SPDX-License-Identifier: MIT */
/*
 * libpotad: the client library that talks to the potad daemon over its Unix
 * socket, one synchronous call per operation plus pipelined requests and
 * events.
 *
 * Every function returns >= 0 on success and a negative errno value on
 * failure.  An operation the daemon refuses returns its status mapped to an
 * errno (NO_SPACE -ENOSPC, INVALID -EINVAL, NOT_FOUND -ENOENT, BUSY -EBUSY,
 * PERMISSION -EPERM, STALE -ESTALE, EXISTS -EEXIST, TOO_LARGE -E2BIG,
 * UNAVAILABLE -EAGAIN, INTERNAL -EIO, OUT_OF_RANGE -ERANGE) and keeps the
 * daemon's message for potad_client_errmsg().  A failure of the connection
 * itself (-EPIPE, -ECONNRESET, -EPROTO, -EMSGSIZE, -ETIMEDOUT) is sticky:
 * potad_client_error() reports it and every later call returns it.
 *
 * Results that carry strings or arrays are returned as one heap object each
 * (strings never NULL, "" when unset); release it with
 * potad_client_free_result().  A client is not thread-safe: use one per
 * thread or lock around it.
 */
#ifndef POTAD_CLIENT_H
#define POTAD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef POTAD_API
#define POTAD_API __attribute__((visibility("default")))
#endif

/* The socket used when neither the caller nor $POTAD_SOCKET names one. */
#define POTAD_CLIENT_SOCKET "/run/potad.sock"
/* The default cap on one frame, in either direction. */
#define POTAD_CLIENT_FRAME_MAX (1u << 20)
/* The protocol version this library speaks. */
#define POTAD_CLIENT_PROTOCOL 1
/* Events kept while nobody reads them; older ones are dropped first. */
#define POTAD_CLIENT_EVENTS_MAX 1024

struct potad_client;

/* Kinds of space; the numbers are the wire's SpaceKind. */
enum potad_client_kind {
	POTAD_CLIENT_KIND_UNSPECIFIED = 0,
	POTAD_CLIENT_KIND_RANGE = 1,
	POTAD_CLIENT_KIND_FILE = 2,
	POTAD_CLIENT_KIND_SWAP = 3,
	POTAD_CLIENT_KIND_BLOCKDEV = 4,
	POTAD_CLIENT_KIND_DEVDAX = 5,
	POTAD_CLIENT_KIND_PCIBAR = 6,
};

/* What hello tells about the daemon and about the caller. */
struct potad_client_hello {
	uint32_t protocol;
	const char *server_version;
	size_t n_capabilities;
	const char *const *capabilities;
	uint32_t uid; /* who the daemon thinks the caller is */
	uint32_t gid;
	bool admin;
	bool durable; /* false while the daemon keeps state in memory only */
};

/* One space and its counters. */
struct potad_client_space {
	const char *name;
	enum potad_client_kind kind;
	const char *source; /* path or PCI address, if any */
	uint64_t base;	    /* the first address */
	uint64_t size;
	uint64_t granule;
	const char *parent; /* for child spaces */
	bool reserve;
	bool available;
	const char *reason; /* why not available */
	uint64_t free_bytes;
	uint64_t used_bytes;
	uint64_t poisoned_bytes;
	uint64_t extents;
	uint64_t free_blocks;
	uint64_t largest_free_block;
	uint64_t meta_bytes;
	size_t n_free_per_order;
	const uint64_t *free_per_order; /* free blocks of each order */
	/* Only from potad_client_space_stat() with frag. */
	double fragmentation;
	uint64_t largest_free_run;
	/* What the space is made of, as the daemon recorded and probed it. */
	const char *identity; /* UUID, serial, PCI ids or inode; checked at
			       * every start */
	const char *device;   /* device facts, for people */
	uint32_t bar;	      /* PCIBAR */
	/* Its policy and what awaits a discard. */
	bool discard; /* freed extents are discarded, then counted clean */
	bool isolate; /* only clean units are handed out */
	/* Free, but holding a former owner's data. */
	uint64_t dirty_bytes;
	uint64_t discarding_bytes; /* being discarded now */
};

/* One extent, as alloc, lookup, list and poison events report it. */
struct potad_client_extent {
	const char *space;
	uint64_t offset;
	uint64_t length;
	uint64_t handle;
	uint32_t owner_uid;
	uint32_t tag;
	const char *label;
	const char *child; /* the child space it hosts, if any */
	bool poisoned;
	bool session;
};

/* Arguments of potad_client_space_add(); zero-initialise, then fill. */
struct potad_client_space_args {
	const char *name;
	enum potad_client_kind kind;
	const char *path; /* FILE and the device kinds */
	const char *pci;  /* PCIBAR: domain:bus:device.function */
	uint32_t bar;
	uint64_t base;	  /* RANGE */
	uint64_t size;	  /* RANGE */
	uint64_t granule; /* 0: the kind's default */
	size_t n_allow_uids;
	const uint32_t *allow_uids;
	size_t n_allow_gids;
	const uint32_t *allow_gids;
	bool allow_all;
	bool force;   /* BLOCKDEV: take it although it holds a filesystem or a
		       * partition table */
	bool discard; /* discard freed extents, then count them clean */
	bool isolate; /* hand out only clean units (needs discard) */
};

/* Allocation flags (struct potad_client_alloc_args.flags). */
#define POTAD_CLIENT_ALLOC_TOPDOWN (1u << 0) /* highest fitting address */
#define POTAD_CLIENT_ALLOC_WHOLE (1u << 1)   /* keep the whole 2^k block */
#define POTAD_CLIENT_ALLOC_FIXED (1u << 2)   /* exactly at .at */
#define POTAD_CLIENT_ALLOC_SESSION (1u << 3) /* freed when we disconnect */
/* Only units no owner has used since registration or discard. */
#define POTAD_CLIENT_ALLOC_CLEAN (1u << 4)

/* Arguments of potad_client_alloc(); zero-initialise, then fill. */
struct potad_client_alloc_args {
	const char *space;
	uint64_t size;
	uint64_t align; /* 0: the granule */
	uint64_t min;	/* [min, max): 0 means the space's edge */
	uint64_t max;
	uint64_t at;	/* with POTAD_CLIENT_ALLOC_FIXED */
	unsigned flags; /* POTAD_CLIENT_ALLOC_* */
	uint32_t tag;
	const char *label;   /* owner label, or NULL */
	const char *token;   /* idempotency token, or NULL */
	const char *reserve; /* reserve to fall back to, or NULL */
};

/* Arguments of potad_client_child_add(); zero-initialise, then fill. */
struct potad_client_child_args {
	const char *parent;
	const char *name;
	uint64_t size;
	uint64_t align;
	uint64_t granule; /* 0: the parent's */
	bool reserve;	  /* a strict reserve */
	size_t n_allow_uids;
	const uint32_t *allow_uids;
	size_t n_allow_gids;
	const uint32_t *allow_gids;
};

/* Event types (struct potad_client_event.type). */
enum potad_client_event_type {
	POTAD_CLIENT_EVENT_POISON = 1,
	POTAD_CLIENT_EVENT_LOW_SPACE = 2,
};

/* One event from a subscription. */
struct potad_client_event {
	enum potad_client_event_type type;
	const char *space;
	/* POISON: the poisoned range and the owner's extent it hit (NULL if
	 * the daemon named none). */
	uint64_t offset;
	uint64_t length;
	const struct potad_client_extent *extent;
	/* LOW_SPACE: the space's free bytes against its size. */
	uint64_t free_bytes;
	uint64_t size;
	uint32_t low_water_percent;
};

/* The outcome of one operation of a pipelined request. */
struct potad_client_result {
	int status;	     /* 0 or a negative errno */
	const char *message; /* the daemon's message, "" when OK */
	const struct potad_client_extent *extent; /* alloc, lookup; or NULL */
};

/* The answer to one pipelined request. */
struct potad_client_reply {
	uint64_t id;
	int status; /* not 0 when the whole request was refused */
	const char *message;
	size_t n_results; /* one per operation unless status is not 0 */
	const struct potad_client_result *results;
};

/* Connecting. */

/* Connect to path; NULL means $POTAD_SOCKET, or else POTAD_CLIENT_SOCKET. */
POTAD_API int potad_client_connect(const char *path, struct potad_client **out);
/* Close the connection and release everything the client holds. */
POTAD_API void potad_client_close(struct potad_client *c);
/* The socket, for poll(): readable when messages may be waiting. */
POTAD_API int potad_client_fd(const struct potad_client *c);
/* Cap the size of one frame in both directions (default 1 MiB). */
POTAD_API int potad_client_set_frame_max(struct potad_client *c, size_t max);
/* Bound each synchronous call in milliseconds; -1 (default) waits forever.
 * A call that times out breaks the connection with -ETIMEDOUT. */
POTAD_API int potad_client_set_timeout(struct potad_client *c, int ms);
/* The daemon's message for the last refused call, "" if it gave none. */
POTAD_API const char *potad_client_errmsg(const struct potad_client *c);
/* The error that broke the connection, or 0 while it is usable. */
POTAD_API int potad_client_error(const struct potad_client *c);
/* A short name for a negative errno a call returned ("no space", ...). */
POTAD_API const char *potad_client_strerror(int err);
/* Release a result object a call returned (NULL is ignored). */
POTAD_API void potad_client_free_result(const void *result);

/* Synchronous calls: each sends one request and waits for its answer. */

/* Say hello; client names the caller in the daemon's log (may be NULL). */
POTAD_API int potad_client_hello(struct potad_client *c, const char *client,
				 struct potad_client_hello **out);
/* List every space; returns the number of entries in *out. */
POTAD_API int potad_client_spaces(struct potad_client *c,
				  struct potad_client_space **out);
/* Register a space; *out (if out is not NULL) gets it, or NULL. */
POTAD_API int potad_client_space_add(struct potad_client *c,
				     const struct potad_client_space_args *a,
				     struct potad_client_space **out);
/* Unregister a space; force removes it even with live extents. */
POTAD_API int potad_client_space_rm(struct potad_client *c, const char *name,
				    bool force);
/* One space's counters; frag also walks the free space (linear time). */
POTAD_API int potad_client_space_stat(struct potad_client *c, const char *name,
				      bool frag,
				      struct potad_client_space **out);
/* Allocate an extent; *out (if out is not NULL) gets it. */
POTAD_API int potad_client_alloc(struct potad_client *c,
				 const struct potad_client_alloc_args *a,
				 struct potad_client_extent **out);
/* Free the extent named by handle; *out gets the freed extent or NULL. */
POTAD_API int potad_client_free(struct potad_client *c, const char *space,
				uint64_t handle,
				struct potad_client_extent **out);
/* Free the tail of the extent named by handle: keep its first keep bytes
 * (a shorter multiple of the granule) under the same handle; *out gets
 * the extent as it is now. */
POTAD_API int potad_client_shrink(struct potad_client *c, const char *space,
				  uint64_t handle, uint64_t keep,
				  struct potad_client_extent **out);
/* Free the extent covering offset (admins). */
POTAD_API int potad_client_free_offset(struct potad_client *c,
				       const char *space, uint64_t offset,
				       struct potad_client_extent **out);
/* The extent that covers offset. */
POTAD_API int potad_client_lookup(struct potad_client *c, const char *space,
				  uint64_t offset,
				  struct potad_client_extent **out);
/* List extents in address order, only owner_uid's when by_owner, only
 * label's when label is not NULL; returns the number in *out.  All in one
 * reply: -E2BIG when they do not fit the daemon's max_queue. */
POTAD_API int potad_client_list_extents(struct potad_client *c,
					const char *space, bool by_owner,
					uint32_t owner_uid, const char *label,
					struct potad_client_extent **out);
/* One page of that list: at most limit extents starting at or after
 * offset from, fewer when a reply would outgrow max_queue; *more (may be
 * NULL) says whether more follow, from *next (may be NULL).  A limit of 0
 * asks for all of them in one reply, as potad_client_list_extents(). */
POTAD_API int potad_client_list_extents_page(
    struct potad_client *c, const char *space, bool by_owner,
    uint32_t owner_uid, const char *label, uint64_t from, uint32_t limit,
    struct potad_client_extent **out, bool *more, uint64_t *next);
/* Report [offset, offset + length) bad; *extents_hit (may be NULL) gets
 * the number of owners' extents it touched. */
POTAD_API int potad_client_poison(struct potad_client *c, const char *space,
				  uint64_t offset, uint64_t length,
				  uint32_t *extents_hit);
/* Carve a child space out of an extent of its parent; *out (if out is
 * not NULL) gets it, or NULL. */
POTAD_API int potad_client_child_add(struct potad_client *c,
				     const struct potad_client_child_args *a,
				     struct potad_client_space **out);
/* Remove a child space, giving its extent back to the parent. */
POTAD_API int potad_client_child_rm(struct potad_client *c, const char *name);
/* Ask for events about space (NULL: every space); low_water_percent 0
 * takes the daemon's default watermark. */
POTAD_API int potad_client_subscribe(struct potad_client *c, const char *space,
				     uint32_t low_water_percent);

/* Events. */

/* The next event: waits up to timeout_ms (-1 forever, 0 not at all), then
 * -ETIMEDOUT.  Before poll()ing the fd again, call until -ETIMEDOUT: events
 * already read from the socket do not make it readable. */
POTAD_API int potad_client_next_event(struct potad_client *c, int timeout_ms,
				      struct potad_client_event **out);

/* Pipelining: queue operations into one request, send it, and send more
 * before reading any answer; answers come back in the order sent. */

/* Queue an alloc into the request being built; returns its index. */
POTAD_API int potad_client_queue_alloc(struct potad_client *c,
				       const struct potad_client_alloc_args *a);
/* Queue a free by handle; returns its index. */
POTAD_API int potad_client_queue_free(struct potad_client *c, const char *space,
				      uint64_t handle);
/* Queue a free by offset (admins); returns its index. */
POTAD_API int potad_client_queue_free_offset(struct potad_client *c,
					     const char *space,
					     uint64_t offset);
/* Queue a lookup; returns its index. */
POTAD_API int potad_client_queue_lookup(struct potad_client *c,
					const char *space, uint64_t offset);
/* Drop the operations queued and not sent. */
POTAD_API void potad_client_queue_discard(struct potad_client *c);
/* Send the queued operations as one request; *id (may be NULL) gets its
 * id.  Returns the number of operations sent. */
POTAD_API int potad_client_send(struct potad_client *c, uint64_t *id);
/* Requests sent and not yet returned by potad_client_recv(). */
POTAD_API unsigned potad_client_in_flight(const struct potad_client *c);
/* The answer to the oldest request in flight: waits up to timeout_ms (-1
 * forever), then -ETIMEDOUT; -ENOMSG when nothing is in flight. */
POTAD_API int potad_client_recv(struct potad_client *c, int timeout_ms,
				struct potad_client_reply **out);

#ifdef __cplusplus
}
#endif

#endif /* POTAD_CLIENT_H */
