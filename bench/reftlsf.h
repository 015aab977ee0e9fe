/* SPDX-License-Identifier: MIT */
/* A reference allocator for the benchmarks: two-level segregated fit over
 * free runs with neighbour links (the design of TLSF and OffsetAllocator). */
#ifndef POTAD_BENCH_REFTLSF_H
#define POTAD_BENCH_REFTLSF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes fall in bins of 8 per power of two (3 mantissa bits): 64 groups of
 * 8 bins cover every 64-bit length. */
#define REFTLSF_BINS 512
#define REFTLSF_NIL UINT32_MAX

/* One run of units, free or held: a handle names a node. */
struct reftlsf_node {
	uint64_t off, len;
	uint32_t bin_prev, bin_next; /* in its bin's list, while free */
	uint32_t prev, next;	     /* address-order neighbours */
	bool used;
};

struct reftlsf {
	struct reftlsf_node *node;
	uint32_t *spare; /* stack of unused node numbers */
	uint32_t nspare, cap;
	uint64_t units;
	uint64_t groups; /* bit g: some bin of group g is non-empty */
	uint8_t binmask[REFTLSF_BINS / 8];
	uint32_t head[REFTLSF_BINS];
};

/* A free space of `units` units able to hold `cap` runs (free or held);
 * -ENOMEM. */
int reftlsf_init(struct reftlsf *t, uint64_t units, uint32_t cap);
void reftlsf_fini(struct reftlsf *t);
/* A run of len units (len > 0): its node, or REFTLSF_NIL when no free run
 * is long enough or no node is left. */
uint32_t reftlsf_alloc(struct reftlsf *t, uint64_t len);
/* Free a node reftlsf_alloc() returned, merging with free neighbours. */
void reftlsf_free(struct reftlsf *t, uint32_t n);
/* Bytes of nodes in use and of the bins. */
uint64_t reftlsf_bytes(const struct reftlsf *t);
/* Whether the runs tile the space, no two free runs touch, and every free
 * run is in the bin of its length: NULL, or what is wrong. */
const char *reftlsf_check(const struct reftlsf *t);

#endif /* POTAD_BENCH_REFTLSF_H */
