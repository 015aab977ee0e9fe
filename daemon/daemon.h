/* SPDX-License-Identifier: MIT */
/* The daemon's internal interfaces: configuration, logging, connections,
 * the space registry and the request dispatcher. */
#ifndef POTAD_DAEMON_H
#define POTAD_DAEMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "potad.pb-c.h"
#include "potad/engine.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

/*
 * Configuration.
 */
struct potad_config {
	char *socket_path;
	unsigned socket_mode;
	char *state_dir;
	char *admin_group; /* NULL: root only */
	gid_t admin_gid;
	bool has_admin_gid;
	size_t max_frame;  /* largest request frame accepted */
	size_t max_conns;  /* connections served at once */
	size_t max_queue;  /* unsent reply bytes before a client is dropped,
			    * and the most one request's replies may take */
	unsigned stall_ms;  /* a client whose replies have not moved for this
			     * long is dropped */
	unsigned low_water; /* default low-space watermark, percent */
	int log_level;
	bool journal;       /* durability on (default) */
	int journal_io;     /* enum potad_jio */
	uint64_t checkpoint_bytes; /* log size that starts a checkpoint */
	bool checkpoint_fork; /* write snapshots from a forked copy */
	uint64_t journal_chunk;    /* preallocation step of a log */
	char *sysfs_root;   /* where devdax and pcibar probes read sysfs
			     * ("/sys"; tests point it at a fake tree) */
	bool foreground;
};

/* A space declared in the configuration file (or the built-in default),
 * or asked for by a SpaceAdd.  A declaration with a parent is a child
 * space ([child NAME] or, with reserve set, [reserve NAME]) carved from
 * that parent: size, align and granule (0: the parent's) describe it, and
 * kind, path, pci, bar, base and the policy flags are unused. */
struct potad_space_decl {
	char *name;
	int kind;   /* POTAD__V1__SPACE_KIND__* */
	char *path; /* file, swap, blockdev, devdax */
	char *pci;  /* pcibar: domain:bus:device.function */
	unsigned bar;
	uint64_t base, size, granule;
	bool allow_all;
	uid_t *uids;
	size_t nuids;
	gid_t *gids;
	size_t ngids;
	bool force;   /* blockdev: take it though it holds a filesystem or a
		       * partition table */
	bool discard; /* discard freed extents, then count them clean */
	bool isolate; /* hand out only clean units */
	char *parent; /* child and reserve declarations */
	uint64_t align;
	bool reserve;
};

/* Fill cfg with defaults; read FILE (NULL: none) into cfg and decls.
 * Returns 0 or -errno with a message already logged. */
int potad__config_load(struct potad_config *cfg, const char *file,
		       struct potad_space_decl **decls, size_t *ndecls);
void potad__config_free(struct potad_config *cfg,
			struct potad_space_decl *decls, size_t ndecls);
/* The writer named by s ("auto", "uring", "sync"), or -1. */
int potad__parse_journal_io(const char *s);
enum potad_jio { POTAD_JIO_AUTO, POTAD_JIO_URING, POTAD_JIO_SYNC };
/* potad --unit-dropin: print the systemd drop-in that lets potad.service
 * open the devices and files of the declared spaces and of those in
 * cfg's state directory.  Returns the exit status. */
int potad__print_dropin(const struct potad_config *cfg, const char *config,
			const struct potad_space_decl *decls, size_t ndecls);
/* Parse "4K", "2M", "1G", "1T", decimal or 0x hex; -EINVAL on junk. */
int potad__parse_size(const char *s, uint64_t *out);

/*
 * Logging: one line per event on stderr, "potad: LEVEL: message".
 */
enum { POTAD_LOG_ERR, POTAD_LOG_WARN, POTAD_LOG_INFO, POTAD_LOG_DEBUG };
void potad__log_set_level(int level);
int potad__log_level(void);
/* The level named by s ("error", "warn", "info", "debug"), or -1. */
int potad__log_parse_level(const char *s);
void potad__log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A warning caused by a client (a dropped connection, a bad frame):
 * at most ten a minute, then a count of those left out. */
void potad__log_client(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
#define log_err(...) potad__log(POTAD_LOG_ERR, __VA_ARGS__)
#define log_warn(...) potad__log(POTAD_LOG_WARN, __VA_ARGS__)
#define log_info(...) potad__log(POTAD_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
	do {                                                                  \
		if (potad__log_level() >= POTAD_LOG_DEBUG)                    \
			potad__log(POTAD_LOG_DEBUG, __VA_ARGS__);             \
	} while (0)

/*
 * A bump arena: a request is decoded into it and its response built in it,
 * then the whole lot is dropped at once.
 */
struct potad_arena {
	struct arena_chunk *head;
	size_t used;  /* in head */
	size_t total; /* bytes in all chunks */
};
void *potad__arena_alloc(struct potad_arena *a, size_t n);
char *potad__arena_strdup(struct potad_arena *a, const char *s);
/* Bytes the arena holds. */
size_t potad__arena_bytes(const struct potad_arena *a);
/* Drop everything but the first chunk, for reuse. */
void potad__arena_reset(struct potad_arena *a);
void potad__arena_free(struct potad_arena *a);
/* A protobuf-c allocator drawing on the arena. */
void potad__arena_allocator(struct potad_arena *a, ProtobufCAllocator *pa);

/*
 * Peers and connections (conn.c); listening and stopping (server.c).
 */
struct potad_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool admin;
	gid_t groups[64]; /* supplementary groups of uid, as far as known */
	int ngroups;
};

struct potad_conn;

uint64_t potad__conn_id(const struct potad_conn *c);
const struct potad_peer *potad__conn_peer(const struct potad_conn *c);
/* The dispatcher's own state for c (NULL until it sets one). */
void **potad__conn_state(struct potad_conn *c);
/* Queue an event for c (dropped, with a log line, if c is not reading). */
void potad__conn_event(struct potad_conn *c, const Potad__V1__Event *ev);
/* True when every string in m, and in the messages m holds, is valid
 * UTF-8 (utf8.c): a request that breaks the rule is refused. */
bool potad__strings_ok(const ProtobufCMessage *m);

struct uv_loop_s;
/* Listen on the socket systemd passed us, else bind cfg's (refusing to
 * take over a live one). */
int potad__listen(const struct potad_config *cfg, struct uv_loop_s *loop);
/* Serve until SIGTERM or SIGINT has let every connection finish. */
int potad__serve(const struct potad_config *cfg);

/*
 * The space registry and owners (registry.c).
 */
struct pspace {
	uint64_t id; /* unique for the daemon's lifetime */
	uint64_t salt; /* XORed into the generation bits of handles on the
			* wire, so a handle means nothing in another space */
	char *name;
	int kind;
	char *source; /* path or PCI address */
	struct potad_space *eng;
	struct pspace *parent; /* child spaces */
	uint64_t host_handle;  /* the parent's extent we live in */
	bool reserve;
	uint64_t draws, draw_bytes; /* reserve: since the last log line */
	time_t draw_logged;
	bool allow_all;
	uid_t *uids;
	size_t nuids;
	gid_t *gids;
	size_t ngids;
	unsigned nchildren;

	/* What the space is made of (spaces.c); a child shares its root's. */
	char *identity; /* as recorded in the journal; "" for a range */
	char *device;   /* facts the last probe read, for people */
	unsigned bar;   /* pcibar */
	int fd;         /* -1, or held open: O_EXCL claim, discard target */
	bool force, discard, isolate;
	bool available; /* false: identity or size changed; not served */
	char *reason;   /* why not available */
	/* Discard in flight (discard.c): the range is held in the engine
	 * by an extent of the discard owner. */
	uint64_t discard_handle, discard_off, discard_len;
	bool discard_failed; /* stop discarding until the next start (the
			      * policy itself stays as journaled) */
};

/* An owner is a peer uid plus an optional label; session owners also
 * carry the connection that made them, so its extents go with it. */
struct powner {
	uid_t uid;
	uint64_t conn; /* 0: not session-scoped */
	char *label;
};

int potad__registry_init(const struct potad_config *cfg);
/* The configuration the daemon runs with (set by potad__registry_init). */
const struct potad_config *potad__cfg(void);
void potad__registry_fini(void);
struct pspace *potad__space_find(const char *name);
struct pspace *potad__space_by_id(uint64_t id);
/* The id the next registered space gets. */
uint64_t potad__space_next_id(void);
/* Register a space exactly as a journal record describes it (id, salt,
 * ACL, parent and host extent); -EEXIST, -ENOENT (no parent), -errno. */
struct potad_jspace;
int potad__space_restore(const struct potad_jspace *js, struct pspace **out);
/* Spaces in registration order: index 0 .. count-1. */
size_t potad__space_count(void);
struct pspace *potad__space_at(size_t i);
/* Register a space; -EEXIST, -EINVAL (bad name or geometry), -ENOMEM. */
int potad__space_add(const char *name, int kind, const char *source,
		     uint64_t base, uint64_t size, unsigned granule_shift,
		     struct pspace **out);
/* Register a child space over the extent named by handle in parent. */
int potad__space_add_child(struct pspace *parent, const char *name,
			   uint64_t handle, unsigned granule_shift,
			   bool reserve, struct pspace **out);
/*
 * Real spaces (spaces.c): probing, registration, identity at start.
 */
struct potad_probe;
struct potad_probe_req;
/* The probe request declaration d needs (its strings point into d). */
void potad__probe_req_of(const struct potad_space_decl *d,
			 struct potad_probe_req *rq);
/* Whether spaces of this kind can discard (file and blockdev). */
bool potad__kind_can_discard(int kind);
/* Whether d asks for what its kind can do and names what it needs (a
 * path, a PCI address, a size), before anything is probed: 0, or -EINVAL
 * with the reason in msg. */
int potad__decl_check(const struct potad_space_decl *d, char *msg,
		      size_t len);
/* Whether d's kind is probed (everything but range). */
bool potad__decl_probes(const struct potad_space_decl *d);
/* Register the space d declares, made of what probe pr found (NULL for a
 * range; its fd and bad list are taken over), with its ACL and policy.
 * Returns 0 with a one-line description in msg, or -errno with the reason
 * there: -EINVAL (granule, kind, size, name, geometry, policy), -EEXIST,
 * -ENOMEM. */
int potad__space_declare(const struct potad_space_decl *d,
			 struct potad_probe *pr, struct pspace **out,
			 char *msg, size_t len);
/* Probe and register d in one blocking call (start-up, tests). */
int potad__space_declare_now(const struct potad_space_decl *d,
			     struct pspace **out, char *msg, size_t len);
/* Probe every restored top-level space and mark the ones whose identity
 * or size changed unavailable, logging why.  Blocks; start-up only. */
void potad__spaces_verify(void);
/* Why ps cannot serve now (NULL: it can): it or its root is unavailable. */
const char *potad__space_unavailable(const struct pspace *ps);
/* The top-level space ps belongs to. */
struct pspace *potad__space_root(struct pspace *ps);
/* Whether frees in ps leave dirty units (every kind but range). */
bool potad__space_holds_data(const struct pspace *ps);
/* Free an extent of ps: dirty where the space holds data. */
int potad__space_free(struct pspace *ps, uint64_t handle,
		      struct potad_extent *out);
/* Free all but the first keep bytes of an extent of ps, likewise. */
int potad__space_shrink(struct pspace *ps, uint64_t handle, uint64_t keep,
			struct potad_extent *out);
/* Carve child space d->name from parent as d describes (size, align,
 * granule, reserve, ACL) and journal it.  Returns 0 with a description in
 * msg, or -errno with the reason there. */
int potad__child_carve(struct pspace *parent,
		       const struct potad_space_decl *d, struct pspace **out,
		       char *msg, size_t len);

/* Discard (discard.c): start discarding ps's dirty free space if its
 * root has discard on and nothing is in flight for ps. */
void potad__discard_kick(struct pspace *ps);
void potad__discard_kick_all(void);
/* Whether engine owner o is the one discard holds are made for. */
bool potad__discard_owner(uint32_t o);
/* The shift of a power-of-two granule from 1 to 1G; -EINVAL otherwise. */
int potad__granule_shift(uint64_t granule, unsigned *shift);
const char *potad__kind_name(int kind);
/* Whether declaration d no longer matches ps (kind, granule, geometry or
 * path); says how in msg. */
bool potad__space_differs(const struct pspace *ps,
			  const struct potad_space_decl *d, char *msg,
			  size_t len);
/* Whether ps's ACL is the one d declares. */
bool potad__space_acl_is(const struct pspace *ps,
			 const struct potad_space_decl *d);
/* Unregister (children first); -EBUSY if it has children. */
int potad__space_remove(struct pspace *ps);
/* Set the ACL from arrays (copied). */
int potad__space_set_acl(struct pspace *ps, bool allow_all, const uid_t *uids,
			 size_t nuids, const gid_t *gids, size_t ngids);
/* Whether peer may allocate in ps. */
bool potad__space_allows(const struct pspace *ps, const struct potad_peer *p);

/* The owner number for (uid, label, session conn); -ENOMEM. */
int64_t potad__owner_get(uid_t uid, const char *label, uint64_t conn);
const struct powner *potad__owner(uint32_t id);
/* Forget the session owners of connection conn (its extents are gone). */
void potad__owner_drop_conn(uint64_t conn);
/* Forget the owners no extent names any more, once enough have piled up;
 * only between requests (a reply being built may point at a label). */
void potad__owner_sweep(void);

/* Longest owner label or idempotency token a client may give. */
#define POTAD_LABEL_MAX 1024
/* Idempotency tokens: (uid, token) -> the extent a first attempt made. */
int potad__token_find(uid_t uid, const char *token, struct pspace **ps,
		      uint64_t *handle);
int potad__token_add(uid_t uid, const char *token, struct pspace *ps,
		     uint64_t handle);
void potad__token_forget(struct pspace *ps, uint64_t handle);
typedef int (*potad__token_fn)(uid_t uid, const char *token,
			       const struct pspace *ps, uint64_t handle,
			       void *arg);
/* Call fn for every token until it returns non-zero; returns that. */
int potad__token_foreach(potad__token_fn fn, void *arg);

/*
 * Requests (rpc.c).
 */
void potad__rpc_init(const struct potad_config *cfg);
/* Build the response to req from c in arena a. */
Potad__V1__Response *potad__rpc_handle(struct potad_conn *c,
				       const Potad__V1__Request *req,
				       struct potad_arena *a);
/* Start the blocking work req needs before it can be answered (device
 * probes for SpaceAdd) on the thread pool.  Returns 1 when it started:
 * done(c) runs on the loop when it has finished, and req is answered
 * then; 0 when there is nothing to wait for; -ENOMEM. */
int potad__rpc_prepare(struct potad_conn *c, const Potad__V1__Request *req,
		       void (*done)(struct potad_conn *c));
/* c is gone: free its session extents and forget its subscription. */
void potad__rpc_conn_closed(struct potad_conn *c);
/* The schema's status for a negative errno from the engine. */
Potad__V1__Status potad__status_of(int err);

#endif /* POTAD_DAEMON_H */
