/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes as a state directory (a snapshot and
 * logs), recovered as `potad --check` does, then checkpointed and
 * recovered again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "journal.h"
#include "journal/journal.h"

/*
 * The input is cut at each "@@FILE@@" into sections: the first is the
 * snapshot (none if empty), the next up to three are logs, each named
 * journal.<seq> after the first seq its own header gives, so that the
 * fuzzer need not keep a name and a header in step.  The first byte of
 * the input holds flags:
 *
 *   bit 0: reseal: recompute the CRC of every file header and of every
 *          record that fits in its file;
 *   bit 1: leave the last resealed record of each file as it was (a torn
 *          or damaged tail);
 *   bit 2: name the logs 1, 2, 3 instead of after their headers.
 *
 * Why reseal here rather than build the fuzz binaries with CRC checks
 * off: every mutation of a record would otherwise fail its CRC, and a
 * build flag would make an input mean one thing to the fuzzer and another
 * to the gcc-built replay in `make check`.  Resealing in the target keeps
 * the code under test the code that ships, and a saved crash replays the
 * same everywhere.  Unsealed inputs still test the CRC paths.
 *
 * After recovery succeeds every space must pass potad_space_check(), and
 * a snapshot of the recovered state must load again with the same counts:
 * the daemon checkpoints exactly so, and one that did not load would stop
 * the next start.  Recovery errors are fine; crashes, leaks and hangs
 * are not.
 */

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz-replay: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                             \
			__builtin_trap();                                     \
		}                                                             \
	} while (0)

/* A state directory whose header claims a long history may still name
 * slots that need more memory than libFuzzer allows (-rss_limit_mb):
 * recovery takes a lower limit for them (2^20 slots, 28 MiB a space). */
#define SLOT_MAX (1u << 20)

#define SEP "@@FILE@@"
#define SEPLEN 8

static struct potad_config cfg;
static char dir[64], dir2[80];

static void clear(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *e;

	if (!dp)
		return;
	while ((e = readdir(dp)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(dp), e->d_name, 0);
	closedir(dp);
}

static void cleanup(void)
{
	clear(dir2);
	rmdir(dir2);
	clear(dir);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct potad_space_decl *decls = NULL;
	size_t ndecls = 0;

	if (potad__config_load(&cfg, NULL, &decls, &ndecls) < 0)
		abort();
	potad__config_free(NULL, decls, ndecls);
	cfg.journal = false;
	potad__log_set_level(POTAD_LOG_ERR - 1);
	snprintf(dir, sizeof(dir), "/tmp/potad-fuzz-replay.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(dir2, sizeof(dir2), "%s/again", dir);
	atexit(cleanup);
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the sums that format.c checks (see potad-journal(5)). */
static void reseal(uint8_t *p, size_t n, bool keep_last)
{
	uint64_t salt;
	uint32_t seed;
	size_t off = POTAD_J_HDR, last = 0;
	static const uint8_t zero[POTAD_J_REC_HDR];

	if (n < POTAD_J_HDR)
		return;
	wr32(p + 12, 0);
	wr32(p + 12, potad__crc32c(0, p, POTAD_J_HDR));
	salt = rd64(p + 24);
	seed = (uint32_t)salt ^ (uint32_t)(salt >> 32);
	while (n - off >= POTAD_J_REC_HDR) {
		uint32_t len = rd32(p + off);

		/* Zeros end a log: leave the clean end alone. */
		if (!memcmp(p + off, zero, POTAD_J_REC_HDR) ||
		    len > n - off - POTAD_J_REC_HDR)
			break;
		last = off;
		wr32(p + off + 4, potad__crc32c(seed, p + off + 8,
						POTAD_J_REC_HDR - 8 + len));
		off += potad__jrec_size(len);
		if (off > n)
			break;
	}
	if (keep_last && last)
		wr32(p + last + 4, rd32(p + last + 4) ^ 1);
}

static void put_file(const char *d, const char *name, const uint8_t *p,
		     size_t n)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", d, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
	close(fd);
}

/* Write the input's sections into dir as a state directory. */
static void lay_out(const uint8_t *data, size_t size)
{
	unsigned flags = data[0];
	const uint8_t *p = data + 1, *end = data + size;
	uint8_t *copy;

	clear(dir);
	for (unsigned i = 0; i < 4 && p <= end; i++) {
		const uint8_t *q = memmem(p, (size_t)(end - p), SEP, SEPLEN);
		size_t n = (size_t)((q ? q : end) - p);
		char name[32];
		uint64_t seq = i;

		copy = malloc(n + 1);
		CHECK(copy != NULL);
		memcpy(copy, p, n);
		if (flags & 1)
			reseal(copy, n, flags & 2);
		if (i == 0) {
			if (n)
				put_file(dir, "snapshot", copy, n);
		} else {
			if (!(flags & 4) && n >= POTAD_J_HDR)
				seq = rd64(copy + 16);
			snprintf(name, sizeof(name), "journal.%016llx",
				 (unsigned long long)seq);
			put_file(dir, name, copy, n);
		}
		free(copy);
		if (!q)
			break;
		p = q + SEPLEN;
	}
}

static void check_spaces(void)
{
	char msg[256];

	for (size_t i = 0; i < potad__space_count(); i++) {
		if (potad_space_check(potad__space_at(i)->eng, msg,
				      sizeof(msg)) < 0) {
			fprintf(stderr, "fuzz-replay: space %s: %s\n",
				potad__space_at(i)->name, msg);
			__builtin_trap();
		}
	}
}

/* Checkpoint the recovered state and load it again. */
static void round_trip(const struct potad_recovery *r)
{
	struct potad_recovery r2 = {.check = true, .slot_max = SLOT_MAX};
	uint8_t *buf;
	size_t len;
	uint64_t extents;

	CHECK(potad__snapshot_build(r->next_seq, &buf, &len, &extents) == 0);
	CHECK(extents == r->extents);
	potad__registry_fini();
	CHECK(potad__registry_init(&cfg) == 0);
	CHECK(mkdir(dir2, 0700) == 0 || errno == EEXIST);
	clear(dir2);
	put_file(dir2, "snapshot", buf, len);
	free(buf);
	if (potad__recover(dir2, &r2) < 0) {
		fprintf(stderr, "fuzz-replay: the snapshot of a recovered "
			"state does not load: %s\n", r2.error);
		__builtin_trap();
	}
	CHECK(r2.spaces == r->spaces && r2.extents == r->extents);
	CHECK(r2.next_seq == r->next_seq);
	free(r2.last_log);
	clear(dir2);
	rmdir(dir2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct potad_recovery r = {.check = true, .slot_max = SLOT_MAX};
	int rc;

	if (size < 1)
		return 0;
	lay_out(data, size);
	CHECK(potad__registry_init(&cfg) == 0);
	rc = potad__recover(dir, &r);
	/* FUZZ_VERBOSE=1: say what recovery made of it (seeds, triage). */
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz-replay: %s: %llu space(s), %llu "
			"extent(s), next seq %llu%s%s\n",
			rc == 0 ? "recovered" : "refused",
			(unsigned long long)r.spaces,
			(unsigned long long)r.extents,
			(unsigned long long)r.next_seq, rc ? ": " : "",
			rc ? r.error : "");
	if (rc == 0) {
		check_spaces();
		round_trip(&r);
		check_spaces();
		potad__recover_sessions();
		check_spaces();
	}
	free(r.last_log);
	potad__registry_fini();
	clear(dir);
	return 0;
}
