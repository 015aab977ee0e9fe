/* SPDX-License-Identifier: MIT */
/* The daemon's journal: what the dispatcher records, what the server
 * waits for, and start-up recovery. */
#ifndef POTAD_DAEMON_JOURNAL_H
#define POTAD_DAEMON_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "daemon.h"

struct uv_loop_s;

/*
 * Start-up (recover.c): lock the state directory, load the snapshot,
 * replay the logs into the registry.  Returns 0, or -errno after logging
 * why (damage names the file and offset).  With check set nothing is
 * written or locked: it only reads and reports (potad --check).
 */
struct potad_recovery {
	bool check;            /* in: read only (potad --check) */
	bool verbose;          /* in: print every record */
	uint32_t slot_max;     /* in: refuse handles with higher slots (0:
				* only the limits of recover.c) */
	int lock_fd;           /* in: the state directory's lock, which a
				* checkpoint's child keeps while it lives */
	uint64_t next_seq;     /* the seq the next record gets */
	char *last_log;        /* path of the newest log, or NULL */
	uint64_t last_start;   /* its first seq */
	uint64_t last_salt;
	uint64_t append_off;   /* where its valid records end */
	uint64_t last_end;     /* the seq a record there would need: below
				* next_seq when the snapshot covers records
				* the log never got */
	uint64_t dirty_end;    /* torn tail: garbage to zero up to here */
	uint64_t records;      /* log records replayed */
	uint64_t spaces, extents;
	char torn_file[4096];  /* torn tail found: file and offset */
	uint64_t torn_off;
	char error[512];       /* damage: what and where */
};

int potad__recover(const char *dir, struct potad_recovery *r);
/* After the journal is open: free the extents that session owners of
 * connections from before the restart held, journaling the frees.
 * Returns how many. */
size_t potad__recover_sessions(void);

/*
 * The writer (journal.c).
 */
/* Open the log for appending after recovery and start the writer on
 * loop.  Returns 0 or -errno (logged). */
int potad__journal_start(const struct potad_config *cfg,
			 struct potad_recovery *rec, struct uv_loop_s *loop);
/* Finish what is in flight, then release the loop's handles. */
void potad__journal_stop(void);
/* Whether changes are journaled (false with --memory-only). */
bool potad__journal_on(void);
/* Make room for records with payloads of up to n bytes in all; call
 * before changing state so the records cannot fail.  0 or -ENOMEM. */
int potad__journal_room(size_t n);
/* The seq of the last record made, and the last one known durable; a
 * reply made now may go out once durable >= made. */
uint64_t potad__journal_made(void);
uint64_t potad__journal_durable(void);
/* The first seq of the batch still being filled (no write yet); replies
 * waiting on seqs at or past it all go out together. */
uint64_t potad__journal_filling(void);

/* When the newest snapshot was written (this run's last checkpoint, or
 * the one found at start); 0 when there is none (checkpoint.c). */
time_t potad__journal_checkpointed(void);
/* A checkpoint ended; err 0 if its snapshot is in place (journal.c). */
void potad__journal_ckpt_done(int err);

/*
 * Checkpoints (checkpoint.c), started by the journal.
 */
void potad__ckpt_init(struct uv_loop_s *loop, const char *dir, int dirfd,
		      int lockfd, bool fork_ok);
/* Write the state at snap_seq as the snapshot, which makes every log
 * older than new_start unneeded: they are removed once it is in place.
 * t0 is when the loop began the checkpoint (uv_hrtime), for the log.
 * 0: it started, and potad__journal_ckpt_done() tells its end, on the
 * loop.  -errno: it could not start, and nothing is under way. */
int potad__ckpt_start(uint64_t snap_seq, uint64_t new_start,
		      const char *log_path, uint64_t t0);
/* Whether a checkpoint is under way (its writer not yet reaped too). */
bool potad__ckpt_busy(void);

/* Records.  Each encodes from the registry's view of the change. */
void potad__jr_space(const struct pspace *ps);
/* A space just registered: its record, and the poison it starts with
 * (a swap header's bad pages). */
void potad__jr_new_space(const struct pspace *ps);
void potad__jr_space_del(uint64_t id);
void potad__jr_acl(const struct pspace *ps);
void potad__jr_alloc(const struct pspace *ps, const struct potad_extent *e,
		     const char *token);
void potad__jr_free(const struct pspace *ps, uint64_t handle);
/* The extent keeps its first keep bytes; the rest was freed. */
void potad__jr_shrink(const struct pspace *ps, uint64_t handle, uint64_t keep);
/* The free units of [offset, offset + length) became clean (a discard
 * completed) or dirty (a child carved from used space). */
void potad__jr_clean(const struct pspace *ps, uint64_t offset,
		     uint64_t length, bool clean);
void potad__jr_poison(const struct pspace *ps, uint64_t offset,
		      uint64_t length);

/* Called by the journal when records up to seq are durable (conn.c). */
void potad__server_durable(uint64_t seq);

/*
 * Snapshots (snapshot.c): the whole state as records, ready to write.
 */
int potad__snapshot_build(uint64_t next_seq, uint8_t **buf, size_t *len,
			  uint64_t *extents);
/* Fill a potad_jspace for ps (arrays point into ps). */
struct potad_jspace;
void potad__jspace_of(const struct pspace *ps, struct potad_jspace *js);

#endif /* POTAD_DAEMON_JOURNAL_H */
