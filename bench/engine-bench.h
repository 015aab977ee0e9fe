/* SPDX-License-Identifier: MIT */
/* What the engine benchmark's files share: its streams, clock, counters and
 * the calls that stop the program on an unexpected engine error. */
#ifndef POTAD_BENCH_ENGINE_H
#define POTAD_BENCH_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <potad/engine.h>

#include "engine/radix.h"

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TIB (1ull << 40)

#define GRANULE_SHIFT 12
#define GRANULE (1ull << GRANULE_SHIFT)
#define SIZE_SEED 42
#define PICK_SEED 43
#define SAMPLE_EVERY 4096
#define STREAM_LEN 4096
#define MAX_RUNS 101

/* One xorshift64* generator whose output is drawn ahead into a buffer, so
 * that the log2/exp2 arithmetic of the size mix stays out of the clock. */
struct stream {
	uint64_t x;
	int sizes; /* 1: the buffer holds sizes; 0: raw 64-bit values */
	unsigned pos;
	uint64_t buf[STREAM_LEN];
};

/* What one run of one workload measured. */
struct result {
	double ns_per_op;
	uint64_t ops;
	uint64_t extent_bytes;
	uint64_t extents;
	uint64_t used;
	uint64_t size;
	/* Workload-specific results. */
	uint64_t enospc;
	uint64_t largest_free;
	double frag;
	double util_256m;
	double total_ms;
	double first_alloc_ms;
	double next_ns;
	double indexed_ns;
	uint64_t same_steps;
	double aligned_ns;
	double aging_ns;
	uint64_t aging_enospc;
	double aging_util_256m;
	double aging_bpe;
	uint64_t same_mixed;
	uint64_t same_clean;
	uint64_t discards;
};

/* The state of one run: the space, its streams, the clock. */
struct run {
	const char *wl;	   /* "W1 churn", for messages */
	int runno;	   /* 1-based */
	const char *phase; /* "setup", "measure" ... */
	struct potad_space *s;
	struct stream *sz;
	struct stream *pk;
	uint64_t ops;	  /* operations in the current phase */
	uint64_t all_ops; /* operations since the space was made */
	uint64_t meta_peak;
	uint64_t ns; /* accumulated time of the measured phase */
	uint64_t t0;
	int timing;
	uint64_t used; /* bytes held by extents, kept by the caller */
};

struct workload {
	const char *id;
	const char *name;
	void (*fn)(struct run *r, struct result *res, int quick);
};

/* A set of live extents that supports removing a random member. */
struct liveset {
	uint64_t *h;
	uint64_t *len;
	size_t n, cap;
};

/* Print "potad-bench-engine: " and the message, and exit with failure. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* CLOCK_MONOTONIC in ns. */
uint64_t now_ns(void);
/* A stream of sizes (sizes != 0: W1's mix, in bytes) or raw values. */
void stream_init(struct stream *st, uint64_t seed, int sizes);
/* Refill a stream with the clock paused: the generator is not the engine. */
void stream_refill(struct run *r, struct stream *st);

/* The measured phase's clock: start, stop, and a pause around work that
 * is not the engine's. */
void clock_start(struct run *r);
void clock_stop(struct run *r);
void clock_pause(struct run *r);
void clock_resume(struct run *r);

/* Name the phase for messages and count its operations from zero. */
void set_phase(struct run *r, const char *phase);
/* Take the engine's memory into meta_peak (every SAMPLE_EVERY ops). */
void sample_meta(struct run *r);
/* Stop the program, naming workload, run, phase, operation and errno. */
void engine_error(struct run *r, const char *call, int rc)
    __attribute__((noreturn));
/* A fresh space for the run; any failure stops the program. */
void space_new(struct run *r, uint64_t base, uint64_t size);
/* Check the run's space and let it go. */
void space_check_destroy(struct run *r);
/* Record the end-of-measured-phase counters shared by every workload. */
void finish_measure(struct run *r, struct result *res);
/* calloc() that stops the program when it fails. */
void *xcalloc(size_t n, size_t sz);
/* For qsort(): doubles in ascending order. */
int cmp_double(const void *a, const void *b);

/* A set of live extents that supports freeing a random member. */
void live_push(struct liveset *l, const struct potad_extent *e);
void live_free_random(struct run *r, struct liveset *l);
void live_release(struct liveset *l);

/* W1's population: live extents of the size mix, their handles in h, their
 * lengths in len and (if start is not NULL) their first units in start. */
void w1_fill(struct run *r, uint64_t live, uint64_t *h, uint64_t *len,
	     uint64_t *start);
/* Put key (with value val) in a radix map of the index's kind. */
void index_put(struct run *r, struct rtree *t, struct rpool *nodes,
	       struct rpool *vals, uint64_t key, uint32_t val);

static inline uint64_t next_size(struct run *r)
{
	if (r->sz->pos == STREAM_LEN)
		stream_refill(r, r->sz);
	return r->sz->buf[r->sz->pos++];
}

/* A victim index in [0, n). */
static inline uint64_t next_pick(struct run *r, uint64_t n)
{
	if (r->pk->pos == STREAM_LEN)
		stream_refill(r, r->pk);
	return r->pk->buf[r->pk->pos++] % n;
}

/* Counts an operation and samples the metadata every SAMPLE_EVERY of them,
 * with the clock paused. */
static inline void count_op(struct run *r)
{
	r->ops++;
	if (++r->all_ops % SAMPLE_EVERY == 0) {
		clock_pause(r);
		sample_meta(r);
		clock_resume(r);
	}
}

/* Allocates size bytes at align.  Returns 0, or -ENOSPC when enospc_ok;
 * any other failure ends the program. */
static inline int do_alloc(struct run *r, uint64_t size, uint64_t align,
			   int enospc_ok, struct potad_extent *e)
{
	struct potad_alloc_req req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.size = size;
	req.align = align;
	rc = potad_alloc(r->s, &req, e);
	count_op(r);
	if (rc == -ENOSPC && enospc_ok)
		return rc;
	if (rc < 0) {
		char call[96];

		snprintf(call, sizeof(call),
			 "potad_alloc(size %llu, align %llu)",
			 (unsigned long long)size, (unsigned long long)align);
		engine_error(r, call, rc);
	}
	r->used += e->length;
	return 0;
}

static inline void do_free(struct run *r, uint64_t handle, uint64_t length)
{
	int rc;

	rc = potad_free(r->s, handle, NULL);
	count_op(r);
	if (rc < 0) {
		char call[64];

		snprintf(call, sizeof(call), "potad_free(%#llx)",
			 (unsigned long long)handle);
		engine_error(r, call, rc);
	}
	r->used -= length;
}

/* One W1 step: free a random extent of the arrays w1_fill() filled and
 * allocate one in its place.  With start, *freed gets the first unit of
 * the extent freed and *made that of the one allocated. */
static inline void w1_step(struct run *r, uint64_t live, uint64_t *h,
			   uint64_t *len, uint64_t *start, uint64_t *freed,
			   uint64_t *made)
{
	uint64_t v = next_pick(r, live);
	struct potad_extent e;

	do_free(r, h[v], len[v]);
	do_alloc(r, next_size(r), 0, 0, &e);
	h[v] = e.handle;
	len[v] = e.length;
	if (start) {
		*freed = start[v];
		*made = start[v] = e.offset >> GRANULE_SHIFT;
	}
}

/* The workloads beyond W1-W4 (engine-restore.c, engine-yardsticks.c). */
void wl_restore(struct run *r, struct result *res, int quick);
void wl_list(struct run *r, struct result *res, int quick);
void wl_index(struct run *r, struct result *res, int quick);
void wl_reference(struct run *r, struct result *res, int quick);
void wl_segments(struct run *r, struct result *res, int quick);

#endif /* POTAD_BENCH_ENGINE_H */
