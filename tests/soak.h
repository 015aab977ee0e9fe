/* SPDX-License-Identifier: MIT */
/* What the soak test's files share: its clients, its state, its figures
 * (tests/soak.c runs it, soak_conn.c talks to the daemon, soak_bad.c holds
 * the misbehaving clients). */
#ifndef POTAD_TESTS_SOAK_H
#define POTAD_TESTS_SOAK_H

#include <poll.h>

#include "daemon_harness.h"

#define NGOOD 200
#define NSILENT 50
#define NHALF 30
#define NDEAF 30
#define NGARBAGE 4
#define NCHURN 4
#define NCLIENTS (NGOOD + NSILENT + NHALF + NDEAF + NGARBAGE + NCHURN)

#define DEPTH 4	  /* requests in flight per good client */
#define MAXLIVE 6 /* extents a good client holds at most */
#define GRANULE (4 * KiB)
#define STALL_S 2	/* the daemon's stall_timeout for this run */
#define DEAF_BLOB 65536 /* requests a non-reader has ready to send */

enum kind { GOOD, SILENT, HALF, DEAF, GARBAGE, CHURN };

/* One of a good client's extents, as the model has it. */
struct live {
	uint64_t handle, offset, length;
	uint8_t sp;
	bool labeled, freeing, session;
	unsigned gen; /* the client's label generation when it was made */
};

/* A request in flight: what its response must say. */
struct pend {
	uint64_t id;
	int op; /* Potad__V1__Op__OpCase */
	uint8_t sp;
	bool labeled, session;
	uint64_t size, align, handle, offset;
};

struct client {
	enum kind kind;
	int n; /* its number among its kind */
	int fd;
	uint8_t *out, *in;
	size_t olen, ocap, ilen, icap;
	struct pend pend[DEPTH];
	unsigned head, npend, nallocs;
	struct live live[MAXLIVE];
	unsigned nlive;
	uint64_t next_id, ops, window_ops;
	long progress; /* last response, or first request after none */
	long next_at;  /* misbehaving ones: when to act again */
	int garbage;   /* bad frames sent so far */
	bool want_eof; /* a bad frame the daemon closes after refusing */
	bool answered;
	bool quiesce; /* good: hang up and come back once nothing is due */
	unsigned gen; /* good: connections so far; its label names it */
	char label[24];
};

struct soak {
	struct daemon d;
	struct client c[NCLIENTS];
	struct pollfd pfd[NCLIENTS];
	uint16_t *owner[2]; /* per unit: the good client holding it, plus 1 */
	uint8_t deaf_blob[DEAF_BLOB]; /* what non-readers send (bad_init) */
	size_t deaf_len, frame_len;   /* all of them, and one */
	uint64_t rng;
	long start, end, warm, drain_start, next_tick, next_window;
	bool draining;
	/* Figures for the summary. */
	uint64_t ops, allocs, nospace, frees, lookups, lists, stats, sessions;
	uint64_t good_reconnects;
	uint64_t drops, deaf_bytes, refusals, churns, reconnects, empty_windows;
	uint64_t half_drops; /* half-frame clients the daemon dropped */
	long rss_first, rss_base, rss_max, rss_last, max_gap;
	int idle_left; /* silent and half-frame clients at SIGTERM */
};

extern struct soak soak;

/* A random number from the run's seed (soak.c). */
uint64_t rnd(void);
/* "deaf client 7", for messages (soak.c). */
const char *who(const struct client *c);

/* soak_conn.c */
/* A non-blocking connection to the daemon (a bounded connect). */
int soak_connect(void);
/* Close c's connection and forget its buffers. */
void c_close(struct client *c);
/* Write what c has queued: 0, or -errno once the daemon has gone. */
int flush_out(struct client *c);
/* Queue bytes, or one Request of one op (freed here): its id. */
void queue_bytes(struct client *c, const void *p, size_t n);
uint64_t queue_op(struct client *c, Potad__V1__Op *op);
/* Read what has arrived: 0 at end of stream, -errno, else 1. */
int fill_in(struct client *c);
/* The next whole ServerMessage from *pos in c's input, or NULL; then
 * drop_consumed() forgets what was parsed. */
Potad__V1__ServerMessage *next_msg(struct client *c, size_t *pos);
void drop_consumed(struct client *c, size_t pos);

/* Prepare the frames misbehaving clients send. */
void bad_init(void);
/* (Re)connect a misbehaving client and start its misbehaviour. */
void bad_open(struct client *c, long now);
/* Its timed actions, and what it does when its socket wakes up. */
void bad_tick(struct client *c, long now);
void bad_io(struct client *c, short revents, long now);

#endif /* POTAD_TESTS_SOAK_H */
