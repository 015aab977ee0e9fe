/* SPDX-License-Identifier: MIT */
/* Inside the probes: the helpers every kind shares (probe.c) and each
 * kind's probe (probe_swap.c, probe_sysfs.c). */
#ifndef POTAD_DAEMON_PROBE_INT_H
#define POTAD_DAEMON_PROBE_INT_H

#include <blkid.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe.h"

#define MiB ((uint64_t)1 << 20)

/* What libblkid found on a device or file. */
struct sig {
	bool found, ambivalent;
	char type[32], usage[32], pttype[32], uuid[64];
};

/* Write the message to msg (if any) and return err. */
int potad__pr_say(char *msg, size_t len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* snprintf for fields where a cut is expected and harmless. */
void potad__pr_fmt(char *buf, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
/* Append tail to id, cutting id short if need be. */
void potad__pr_append_tail(char *id, size_t cap, const char *tail);
/* strerror_r: strerror() may share one buffer between threads. */
const char *potad__pr_errstr(int err, char *buf, size_t len);
/* A failed system call on path, as -errno and "what path: reason". */
int potad__pr_sys_failed(char *msg, size_t len, const char *what,
			 const char *path);
/* A failed open or stat of a path the caller gave, as -errno and a line
 * that says what to do about it. */
int potad__pr_open_failed(char *msg, size_t len, const char *path, int err);
/* Replace control characters, to keep messages on one line. */
void potad__pr_clean(char *s);
/* Read the small file the printf-style path names into buf, trimmed and
 * cleaned; its length or -errno. */
int potad__pr_readf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parse all of s as an unsigned number in base (0: C prefixes). */
int potad__pr_parse_u64(const char *s, int base, uint64_t *v);
bool potad__pr_pow2(uint64_t v);
/* The granule: req, or def when req is 0, a power of two and a multiple
 * of the device's own unit. */
int potad__pr_pick_granule(uint64_t req, uint64_t unit, uint64_t def,
			   unsigned *shift);
/* Ask libblkid which superblocks (and, with parts, partition tables) fd
 * holds. */
int potad__pr_blkid_scan(int fd, bool parts, struct sig *s);
/* "an ext4 filesystem", "a dos partition table", ... */
void potad__pr_sig_describe(const struct sig *s, char *buf, size_t len);

/* Each kind's probe, as potad__probe() describes. */
int potad__probe_swap(const struct potad_probe_req *rq, struct potad_probe *out,
		      char *msg, size_t len);
int potad__probe_blockdev(const struct potad_probe_req *rq,
			  struct potad_probe *out, char *msg, size_t len);
int potad__probe_devdax(const struct potad_probe_req *rq,
			struct potad_probe *out, char *msg, size_t len);
int potad__probe_pcibar(const struct potad_probe_req *rq,
			struct potad_probe *out, char *msg, size_t len);

#endif /* POTAD_DAEMON_PROBE_INT_H */
