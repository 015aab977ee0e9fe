/* SPDX-License-Identifier: MIT */
/* Real address spaces through the real daemon: swap areas, files, block
 * devices, device-DAX and PCI BARs, their identity across restarts and
 * their clean and dirty books (see daemon_harness.h for the harness). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "daemon_harness.h"

/*
 * What is covered, by test:
 *
 * - swap_bad_pages: a swap file made by mkswap with bad pages patched
 *   into its header: base, size, granule, the bad pages poisoned and
 *   never handed out, the UUID as identity, and all of it after a
 *   restart.
 * - swap_refusals: no swap signature, discard on swap, a missing path.
 * - file_new_inode, file_new_size: a file space whose file was replaced
 *   or resized while the daemon was down is listed unavailable with a
 *   reason; allocating, freeing and poisoning in it are refused; its
 *   extents are kept, potad --check accepts the state, and a forced
 *   remove drops it.
 * - clean_dirty_file: freed units of a file space are dirty, a clean
 *   allocation avoids them, a range space stays clean, and the books
 *   survive a stop, a kill -9 and checkpoints (checked against a model).
 * - discard_file, isolate_file: discard punches the freed extent out of
 *   the file and counts it clean; with isolate nothing dirty is handed
 *   out.
 * - blockdev_loop (root and a loop device): size, granule and identity
 *   of a loop device, held exclusively, a filesystem refused unless
 *   forced, and BLKDISCARD reaching the backing file.
 * - pcibar_real (a PCI function with a memory BAR): base and size from
 *   sysfs; bad addresses and BARs refused.
 * - devdax_fake: a device-DAX device in a fake sysfs (sysfs_root), a
 *   child space in it, and a size change making both unavailable until
 *   the device is put back.
 * - policy_refusals: isolate without discard, force on a file, discard
 *   on a range, an unknown kind.
 *
 * Tests that need root, a tool or hardware they cannot find print a
 * "SKIP:" line and pass.
 */

#define ST(x) POTAD__V1__STATUS__##x
#define KIND(x) POTAD__V1__SPACE_KIND__##x

/* A discard in the background must be done within this. */
#define CLEAN_TIMEOUT_MS 10000

/*
 * Failing with the daemon's log.
 */
static void fail_log_at(const char *file, int line, const struct daemon *d,
			const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

static void fail_log_at(const char *file, int line, const struct daemon *d,
			const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_at(file, line, "%s\n--- daemon log (%s):\n%s", msg, d->log,
		log_tail(d));
}

#define EXPECT_D(d, cond, ...)                                                 \
	do {                                                                   \
		if (!(cond))                                                   \
			fail_log_at(__FILE__, __LINE__, (d), __VA_ARGS__);     \
	} while (0)
#define EXPECT_ST_D(d, r, want)                                                \
	do {                                                                   \
		const struct res *r_ = &(r);                                   \
		int w_ = (want);                                               \
		if (r_->status != w_)                                          \
			fail_log_at(__FILE__, __LINE__, (d),                   \
				    "%s: expected status %s, got %s (\"%s\")", \
				    #r, status_name(w_),                       \
				    status_name(r_->status), r_->msg);         \
	} while (0)
#define EXPECT_EQ_D(d, actual, expected)                                       \
	do {                                                                   \
		uint64_t a_ = (uint64_t)(actual);                              \
		uint64_t e_ = (uint64_t)(expected);                            \
		if (a_ != e_)                                                  \
			fail_log_at(__FILE__, __LINE__, (d),                   \
				    "%s: expected %" PRIu64 " (%#" PRIx64      \
				    "), got %" PRIu64 " (%#" PRIx64 ")",       \
				    #actual, e_, e_, a_, a_);                  \
	} while (0)

static void skip(const char *test, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void skip(const char *test, const char *fmt, ...)
{
	va_list ap;

	printf("SKIP: %s: ", test);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static bool has(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

/* Configuration: an admin for non-root runs, the given [daemon] keys and
 * the default space. */
static const char *sconf(const char *keys)
{
	static char buf[2048];
	char admin[160] = "";

	if (geteuid() != 0) {
		struct group *g = getgrgid(getegid());

		EXPECT(g != NULL, "getgrgid(%u): no name for my group",
		       (unsigned)getegid());
		snprintf(admin, sizeof(admin), "admin_group = %s\n",
			 g->gr_name);
	}
	snprintf(buf, sizeof(buf),
		 "[daemon]\n%s%s\n"
		 "[space default]\nkind = range\nsize = 1G\ngranule = 4K\n"
		 "allow = all\n",
		 admin, keys ? keys : "");
	return buf;
}

/*
 * Files and commands.
 */

/* Make path size bytes long: sparse when fill < 0, else every byte fill,
 * written and synced. */
static void make_file(const char *path, uint64_t size, int fill)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	EXPECT(fd >= 0, "create %s: %s", path, strerror(errno));
	if (fill < 0) {
		EXPECT(ftruncate(fd, (off_t)size) == 0, "truncate %s: %s",
		       path, strerror(errno));
	} else {
		size_t chunk = MiB;
		char *buf = xcalloc(chunk);

		memset(buf, fill, chunk);
		for (uint64_t done = 0; done < size;) {
			size_t n = size - done < chunk ? size - done : chunk;
			ssize_t k = write(fd, buf, n);

			EXPECT(k > 0, "write %s: %s", path, strerror(errno));
			done += (uint64_t)k;
		}
		free(buf);
	}
	EXPECT(fsync(fd) == 0, "fsync %s: %s", path, strerror(errno));
	close(fd);
}

static struct stat stat_of(const char *path)
{
	struct stat sb;

	EXPECT(stat(path, &sb) == 0, "stat %s: %s", path, strerror(errno));
	return sb;
}

static uint32_t rd32(const char *path, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint32_t v = 0;

	EXPECT(fd >= 0, "open %s: %s", path, strerror(errno));
	EXPECT(pread(fd, &v, 4, off) == 4, "read %s at %lld: %s", path,
	       (long long)off, strerror(errno));
	close(fd);
	return v;
}

static void wr32(const char *path, off_t off, uint32_t v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	EXPECT(fd >= 0, "open %s: %s", path, strerror(errno));
	EXPECT(pwrite(fd, &v, 4, off) == 4, "write %s at %lld: %s", path,
	       (long long)off, strerror(errno));
	EXPECT(fsync(fd) == 0, "fsync %s: %s", path, strerror(errno));
	close(fd);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	EXPECT(f != NULL, "create %s: %s", path, strerror(errno));
	fputs(text, f);
	EXPECT(fclose(f) == 0, "write %s: %s", path, strerror(errno));
}

/* Run a shell command with its stdout and stderr in out (NUL-terminated):
 * its exit status, or -1 when it did not exit. */
static int sh(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sh(char *out, size_t n, const char *fmt, ...)
{
	char cmd[1024];
	size_t len = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 24, fmt, ap);
	va_end(ap);
	/* No command may wait for an answer on the terminal. */
	strcat(cmd, " </dev/null 2>&1");
	fflush(stdout);
	p = popen(cmd, "r");
	EXPECT(p != NULL, "popen %s: %s", cmd, strerror(errno));
	out[0] = '\0';
	while (len < n - 1) {
		size_t k = fread(out + len, 1, n - 1 - len, p);

		if (!k)
			break;
		len += k;
	}
	out[len] = '\0';
	/* Drain what did not fit so the command does not block. */
	while (len == n - 1 && fgetc(p) != EOF)
		;
	st = pclose(p);
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have_tool(const char *name)
{
	char out[256];

	return sh(out, sizeof(out), "command -v %s", name) == 0;
}

/*
 * Loop devices, detached at exit whatever happens to the test.
 */
static char loops[4][64];
static pid_t loops_owner;

static void loops_detach(void)
{
	char out[256];

	if (loops_owner != getpid())
		return;
	for (size_t i = 0; i < 4; i++) {
		if (!loops[i][0])
			continue;
		/* With the device still open (a daemon killed at exit) this
		 * sets autoclear, which detaches it at the last close. */
		sh(out, sizeof(out), "losetup -d %s", loops[i]);
		loops[i][0] = '\0';
	}
}

/* losetup -f --show file: 0 with the device in dev, or -1 with why. */
static int loop_attach(const char *file, char *dev, size_t n, char *why,
		       size_t wn)
{
	char out[512];
	size_t i;
	int st;

	for (i = 0; i < 4 && loops[i][0]; i++)
		;
	EXPECT(i < 4, "more than 4 loop devices in one test");
	if (loops_owner != getpid()) {
		loops_owner = getpid();
		atexit(loops_detach);
	}
	st = sh(out, sizeof(out), "losetup -f --show %s", file);
	out[strcspn(out, "\n")] = '\0';
	if (st != 0 || strncmp(out, "/dev/loop", 9) != 0) {
		snprintf(why, wn, "losetup -f --show %s: exit %d: %s", file, st,
			 out);
		return -1;
	}
	snprintf(loops[i], sizeof(loops[i]), "%.63s", out);
	snprintf(dev, n, "%.63s", out);
	return 0;
}

/* Check may end a failed test with _exit(), past atexit(): detach what
 * is still attached to a file under the temporary root (a device the
 * daemon still holds goes at its last close). */
static void loops_sweep(void)
{
	size_t rootlen = strlen(harness_root());
	char line[1024], cmd[1200], out[256];
	FILE *p, *q;

	p = popen("losetup -l -n --raw -O NAME,BACK-FILE 2>/dev/null", "r");
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		char *back = strchr(line, ' ');

		if (!back)
			continue;
		*back++ = '\0';
		if (strncmp(back, harness_root(), rootlen) ||
		    back[rootlen] != '/')
			continue;
		snprintf(cmd, sizeof(cmd), "losetup -d %s 2>&1", line);
		fprintf(stderr, "check_spaces: detaching %s, left attached "
				"by a failed test\n", line);
		q = popen(cmd, "r");
		if (q) {
			while (fgets(out, sizeof(out), q))
				;
			pclose(q);
		}
	}
	pclose(p);
}

static void loop_detach(const char *dev)
{
	char out[512];
	int st;

	for (size_t i = 0; i < 4; i++)
		if (!strcmp(loops[i], dev))
			loops[i][0] = '\0';
	st = sh(out, sizeof(out), "losetup -d %s", dev);
	EXPECT(st == 0, "losetup -d %s: exit %d: %s", dev, st, out);
}

/*
 * Operations on the daemon.
 */

/* Allocate size-byte extents in space until NO_SPACE; their copies in
 * out[0..max): the count. */
static size_t fill_space(const struct daemon *d, struct cl *c,
			 const char *space, uint64_t size, struct ext *out,
			 size_t max)
{
	enum { B = 64 };
	Potad__V1__Op *ops[B];
	struct res *r = xcalloc(B * sizeof(*r));
	size_t n = 0;
	bool full = false;

	while (!full) {
		for (size_t i = 0; i < B; i++)
			ops[i] = op_alloc(
			    (struct aa){.space = space, .size = size});
		call_ops(c, ops, B, r);
		for (size_t i = 0; i < B; i++) {
			if (r[i].status == ST(NO_SPACE)) {
				full = true;
				continue;
			}
			EXPECT_ST_D(d, r[i], ST(OK));
			EXPECT_D(d, !full,
				 "%s: an allocation succeeded after one "
				 "failed with NO_SPACE in the same request",
				 space);
			EXPECT_D(d, n < max,
				 "%s: more than %zu extents of %" PRIu64
				 " bytes fit",
				 space, max, size);
			out[n++] = r[i].ext;
		}
	}
	free(r);
	return n;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Expect every listed field of a space to match an earlier stat. */
static void expect_same_books(const struct daemon *d, const struct sinfo *a,
			      const struct sinfo *b, const char *what)
{
#define SAME(f)                                                                \
	EXPECT_D(d, a->f == b->f,                                              \
		 "after %s: %s." #f " changed: before %" PRIu64               \
		 ", after %" PRIu64,                                           \
		 what, a->name, (uint64_t)a->f, (uint64_t)b->f)
	SAME(base);
	SAME(size);
	SAME(granule);
	SAME(free_bytes);
	SAME(used_bytes);
	SAME(poisoned_bytes);
	SAME(extents);
	SAME(dirty_bytes);
	SAME(available);
	SAME(discard);
	SAME(isolate);
#undef SAME
	EXPECT_D(d, !strcmp(a->identity, b->identity),
		 "after %s: %s's identity changed from \"%s\" to \"%s\"", what,
		 a->name, a->identity, b->identity);
}

static struct sinfo space_of(const struct daemon *d, const struct res *r)
{
	EXPECT_D(d, r->body == POTAD__V1__RESULT__BODY_SPACE,
		 "SpaceAdd: OK without a SpaceInfo (body %d)", r->body);
	return r->space;
}

/*
 * Swap.
 */

/* The swap header (union swap_header's info) starts at byte 1024:
 * version, last_page, nr_badpages, a 16-byte UUID, a 16-byte label, 117
 * words of padding, then the bad page numbers. */
#define SWH_LAST_PAGE (1024 + 4)
#define SWH_NR_BAD (1024 + 8)
#define SWH_BADPAGES (1024 + 12 + 16 + 16 + 117 * 4)

static const char swap_uuid[] = "11111111-2222-3333-4444-555555555555";

/* A swap file of size bytes made with mkswap; its last_page. */
static uint32_t make_swap(const char *path, uint64_t size)
{
	char out[1024];
	int st;

	make_file(path, size, 0);
	st = sh(out, sizeof(out), "mkswap -U %s %s", swap_uuid, path);
	EXPECT(st == 0, "mkswap -U %s %s: exit %d: %s", swap_uuid, path, st,
	       out);
	return rd32(path, SWH_LAST_PAGE);
}

START_TEST(swap_bad_pages)
{
	static const uint32_t bad[3] = {5, 6, 100};
	uint64_t psz = (uint64_t)sysconf(_SC_PAGESIZE);
	size_t max = 16 * MiB / psz, n;
	struct ext *ex;
	char path[256];
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s, s2;
	uint32_t last;

	if (!have_tool("mkswap")) {
		skip("swap_bad_pages", "no mkswap");
		return;
	}
	daemon_start(&d, sconf(NULL));
	snprintf(path, sizeof(path), "%s/swapfile", d.dir);
	last = make_swap(path, 16 * MiB);
	EXPECT(last == 16 * MiB / psz - 1,
	       "mkswap on 16 MiB: expected last_page %" PRIu64 ", got %u",
	       16 * MiB / psz - 1, last);
	wr32(path, SWH_NR_BAD, 3);
	for (int i = 0; i < 3; i++)
		wr32(path, SWH_BADPAGES + 4 * i, bad[i]);

	cl_open(&c, &d);
	r = SPACE_ADD(&c, .name = "swap", .kind = KIND(SWAP), .path = path,
		      .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_EQ_D(&d, s.kind, KIND(SWAP));
	EXPECT_EQ_D(&d, s.base, psz);
	EXPECT_EQ_D(&d, s.size, (uint64_t)last * psz);
	EXPECT_EQ_D(&d, s.granule, psz);
	EXPECT_EQ_D(&d, s.poisoned_bytes, 3 * psz);
	EXPECT_D(&d, s.available, "a fresh swap space is unavailable: %s",
		 s.reason);
	EXPECT_D(&d, has(s.identity, swap_uuid),
		 "swap identity \"%s\" should hold the UUID %s", s.identity,
		 swap_uuid);
	EXPECT_D(&d, !s.discard && !s.isolate, "swap: discard %d isolate %d",
		 s.discard, s.isolate);
	/* The listing carries the same. */
	r = call(&c, op_list());
	EXPECT_OK(r);
	for (size_t i = 0; i < r.n && i < RES_LIST_MAX; i++)
		if (!strcmp(r.spaces[i].name, "swap"))
			EXPECT_D(&d, !strcmp(r.spaces[i].identity, s.identity),
				 "list: identity \"%s\", stat: \"%s\"",
				 r.spaces[i].identity, s.identity);

	ex = xcalloc(max * sizeof(*ex));
	n = fill_space(&d, &c, "swap", psz, ex, max);
	EXPECT_EQ_D(&d, n, last - 3);
	for (size_t i = 0; i < n; i++) {
		EXPECT_D(&d,
			 ex[i].offset >= psz &&
			     ex[i].offset + ex[i].length <= psz + last * psz,
			 "extent [%#" PRIx64 ", +%#" PRIx64
			 ") outside pages 1..%u",
			 ex[i].offset, ex[i].length, last);
		for (int k = 0; k < 3; k++)
			EXPECT_D(&d,
				 !overlaps(ex[i].offset, ex[i].length,
					   bad[k] * psz, psz),
				 "extent [%#" PRIx64 ", +%#" PRIx64
				 ") covers bad page %u",
				 ex[i].offset, ex[i].length, bad[k]);
	}
	for (int k = 0; k < 3; k++) {
		r = call(&c, op_lookup("swap", bad[k] * psz));
		EXPECT_ST_D(&d, r, ST(NOT_FOUND));
	}
	s = stat_ok(&c, "swap");
	EXPECT_EQ_D(&d, s.extents, last - 3);
	EXPECT_EQ_D(&d, s.poisoned_bytes, 3 * psz);
	EXPECT_EQ_D(&d, s.free_bytes, 0);

	cl_close(&c);
	daemon_stop(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s2 = stat_ok(&c, "swap");
	expect_same_books(&d, &s, &s2, "a restart");
	EXPECT_D(&d, s2.available, "after a restart: unavailable: %s",
		 s2.reason);
	for (int k = 0; k < 3; k++) {
		r = call(&c, op_lookup("swap", bad[k] * psz));
		EXPECT_ST_D(&d, r, ST(NOT_FOUND));
	}
	r = call(&c, op_lookup("swap", ex[n / 2].offset));
	EXPECT_ST_D(&d, r, ST(OK));
	EXPECT_EQ_D(&d, r.ext.handle, ex[n / 2].handle);
	free(ex);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(swap_refusals)
{
	struct daemon d;
	struct cl c;
	struct res r;
	char zero[256], swp[256], gone[256];
	size_t n0;

	daemon_start(&d, sconf(NULL));
	cl_open(&c, &d);
	n0 = count_spaces(&c);
	snprintf(zero, sizeof(zero), "%s/zeroes", d.dir);
	snprintf(swp, sizeof(swp), "%s/swapfile", d.dir);
	snprintf(gone, sizeof(gone), "%s/no-such-file", d.dir);
	make_file(zero, 4 * MiB, 0);

	r = SPACE_ADD(&c, .name = "z", .kind = KIND(SWAP), .path = zero);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);

	r = SPACE_ADD(&c, .name = "g", .kind = KIND(SWAP), .path = gone);
	EXPECT_ST_D(&d, r, ST(NOT_FOUND));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);
	r = call(&c, op_stat("g"));
	EXPECT_ST_D(&d, r, ST(NOT_FOUND));

	if (have_tool("mkswap")) {
		make_swap(swp, 4 * MiB);
		r = SPACE_ADD(&c, .name = "sd", .kind = KIND(SWAP),
			      .path = swp, .discard = true);
		EXPECT_EQ_D(&d, count_spaces(&c), n0);
		/* A request that contradicts itself, like discard on a
		 * range: INVALID, not a device that cannot serve. */
		EXPECT_ST_D(&d, r, ST(INVALID));
		/* Without discard the same file is a swap space. */
		r = SPACE_ADD(&c, .name = "sd", .kind = KIND(SWAP),
			      .path = swp);
		EXPECT_ST_D(&d, r, ST(OK));
		r = call(&c, op_space_rm("sd", false));
		EXPECT_ST_D(&d, r, ST(OK));
	} else {
		skip("swap_refusals", "no mkswap: discard on swap not tried");
	}

	ALLOC_OK(&c, .size = 4096);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/*
 * Files whose identity changed while the daemon was down.
 */
static void file_changed(const char *test, bool same_inode)
{
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s;
	struct ext e[3];
	char path[256], tmp[256], out[4096], err[4096];
	struct stat before, after;
	int st;

	daemon_start(&d, sconf(NULL));
	snprintf(path, sizeof(path), "%s/data.img", d.dir);
	make_file(path, 4 * MiB, -1);
	before = stat_of(path);
	cl_open(&c, &d);
	r = SPACE_ADD(&c, .name = "f", .kind = KIND(FILE), .path = path,
		      .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_EQ_D(&d, s.size, 4 * MiB);
	EXPECT_EQ_D(&d, s.granule, 4096);
	EXPECT_D(&d, has(s.identity, "ino="),
		 "file identity \"%s\" should name the inode", s.identity);
	for (int i = 0; i < 3; i++)
		e[i] = ALLOC_OK(&c, .space = "f", .size = 64 * KiB,
				.label = "kept");
	cl_close(&c);
	daemon_stop(&d);

	if (same_inode) {
		EXPECT(truncate(path, 8 * MiB) == 0, "truncate %s: %s", path,
		       strerror(errno));
	} else {
		/* Made while the old one still exists, so it cannot get its
		 * inode number; then renamed over it. */
		snprintf(tmp, sizeof(tmp), "%s/data.new", d.dir);
		make_file(tmp, 4 * MiB, -1);
		EXPECT(rename(tmp, path) == 0, "rename %s: %s", tmp,
		       strerror(errno));
	}
	after = stat_of(path);
	EXPECT(same_inode == (after.st_ino == before.st_ino),
	       "test set-up: inode %llu before, %llu after",
	       (unsigned long long)before.st_ino,
	       (unsigned long long)after.st_ino);

	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "f");
	EXPECT_D(&d, !s.available,
		 "%s: a file space whose file was %s is still available "
		 "(identity \"%s\")",
		 test, same_inode ? "resized" : "replaced", s.identity);
	EXPECT_D(&d, s.reason[0], "%s: unavailable without a reason", test);
	EXPECT_D(&d,
		 has(s.reason, "identity") ||
		     has(s.reason, same_inode ? "size" : "ino"),
		 "%s: the reason should say what changed (%s): \"%s\"", test,
		 same_inode ? "size" : "inode", s.reason);
	EXPECT_EQ_D(&d, s.extents, 3);
	r = call(&c, op_alloc((struct aa){.space = "f", .size = 4096}));
	EXPECT_ST_D(&d, r, ST(UNAVAILABLE));
	EXPECT_D(&d, r.msg[0], "Alloc refused UNAVAILABLE without a reason");
	r = call(&c, op_free("f", e[0].handle));
	EXPECT_ST_D(&d, r, ST(UNAVAILABLE));
	r = call(&c, op_poison("f", e[1].offset, 4096));
	EXPECT_ST_D(&d, r, ST(UNAVAILABLE));
	r = call(&c, op_extents("f"));
	EXPECT_ST_D(&d, r, ST(OK));
	EXPECT_EQ_D(&d, r.n, 3);
	for (int i = 0; i < 3; i++) {
		r = call(&c, op_lookup("f", e[i].offset));
		EXPECT_ST_D(&d, r, ST(OK));
		EXPECT_EQ_D(&d, r.ext.handle, e[i].handle);
		EXPECT_EQ_D(&d, r.ext.length, e[i].length);
	}
	/* The rest of the daemon is served. */
	ALLOC_OK(&c, .size = 4096);
	cl_close(&c);
	daemon_stop(&d);

	st = potad_run(out, sizeof(out), err, sizeof(err), 60000, "--check",
		       "--state-dir", d.state, (char *)NULL);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "%s: potad --check on a state with an unavailable space: "
	       "expected exit 0, got status %#x\nstdout:\n%s\nstderr:\n%s",
	       test, st, out, err);

	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "f");
	EXPECT_D(&d, !s.available, "%s: available after a second restart",
		 test);
	r = call(&c, op_space_rm("f", true));
	EXPECT_ST_D(&d, r, ST(OK));
	r = call(&c, op_stat("f"));
	EXPECT_ST_D(&d, r, ST(NOT_FOUND));
	cl_close(&c);
	daemon_stop(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	r = call(&c, op_stat("f"));
	EXPECT_ST_D(&d, r, ST(NOT_FOUND));
	cl_close(&c);
	daemon_stop(&d);
}

START_TEST(file_new_inode)
{
	file_changed("file_new_inode", false);
}
END_TEST

START_TEST(file_new_size)
{
	file_changed("file_new_size", true);
}
END_TEST

/*
 * Clean and dirty books, against a model: a unit is dirty once handed
 * out, and counted dirty while it is free.
 */
#define MUNITS 4096 /* 16 MiB of 4 KiB units */

struct model {
	uint64_t base;
	bool dirty[MUNITS], used[MUNITS];
};

static void model_mark(struct model *m, const struct ext *e, bool used)
{
	for (uint64_t u = (e->offset - m->base) / 4096;
	     u < (e->offset - m->base + e->length) / 4096; u++) {
		EXPECT(u < MUNITS, "extent [%#" PRIx64 ", +%#" PRIx64
				   ") outside the model",
		       e->offset, e->length);
		m->used[u] = used;
		m->dirty[u] = true;
	}
}

static uint64_t model_dirty(const struct model *m)
{
	uint64_t n = 0;

	for (size_t u = 0; u < MUNITS; u++)
		n += m->dirty[u] && !m->used[u];
	return n * 4096;
}

static bool model_touches_dirty(const struct model *m, const struct ext *e)
{
	for (uint64_t u = (e->offset - m->base) / 4096;
	     u < (e->offset - m->base + e->length) / 4096 && u < MUNITS; u++)
		if (m->dirty[u])
			return true;
	return false;
}

static uint64_t rnd(uint64_t *x)
{
	*x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
	return *x >> 33;
}

/* Allocate and free pseudo-randomly in space, keeping the model: about
 * rounds allocations, some of them clean, some freed again. */
static void churn(const struct daemon *d, struct cl *c, const char *space,
		  struct model *m, struct ext *live, size_t *nlive,
		  size_t maxlive, int rounds, uint64_t *seed)
{
	for (int i = 0; i < rounds; i++) {
		uint64_t size = 4096ULL << rnd(seed) % 6;
		bool clean = rnd(seed) % 4 == 0;
		struct res r;

		if (*nlive && (rnd(seed) % 3 == 0 || *nlive == maxlive)) {
			size_t k = rnd(seed) % *nlive;

			free_ok(c, space, live[k].handle);
			model_mark(m, &live[k], false);
			live[k] = live[--*nlive];
			continue;
		}
		r = call(c, op_alloc((struct aa){
				.space = space, .size = size, .clean = clean}));
		if (r.status == ST(NO_SPACE))
			continue;
		EXPECT_ST_D(d, r, ST(OK));
		if (clean)
			EXPECT_D(d, !model_touches_dirty(m, &r.ext),
				 "a clean allocation got [%#" PRIx64
				 ", +%#" PRIx64 "), which holds units freed "
				 "before",
				 r.ext.offset, r.ext.length);
		model_mark(m, &r.ext, true);
		live[(*nlive)++] = r.ext;
	}
}

/* The sequence number the oldest log in a state directory starts at: past
 * 1 once a checkpoint has happened. */
static uint64_t oldest_log(const char *state)
{
	DIR *dir = opendir(state);
	struct dirent *de;
	uint64_t oldest = UINT64_MAX;

	EXPECT(dir != NULL, "opendir %s: %s", state, strerror(errno));
	while ((de = readdir(dir))) {
		unsigned long long seq;
		char tail;

		if (strlen(de->d_name) == 24 &&
		    sscanf(de->d_name, "journal.%16llx%c", &seq, &tail) == 1 &&
		    seq < oldest)
			oldest = seq;
	}
	closedir(dir);
	return oldest;
}

START_TEST(clean_dirty_file)
{
	static struct model m;
	struct ext live[64];
	size_t nlive = 0;
	uint64_t seed = 0x5eedc1ea;
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s, s2;
	struct ext a, b, e;
	char path[256], keys[64];
	bool reused;

	daemon_start(&d, sconf(NULL));
	snprintf(path, sizeof(path), "%s/data.img", d.dir);
	make_file(path, 16 * MiB, -1);
	cl_open(&c, &d);
	r = SPACE_ADD(&c, .name = "f", .kind = KIND(FILE), .path = path,
		      .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_EQ_D(&d, s.dirty_bytes, 0);
	EXPECT_EQ_D(&d, s.discarding_bytes, 0);
	EXPECT_D(&d, !s.discard && !s.isolate, "discard %d isolate %d",
		 s.discard, s.isolate);

	a = ALLOC_OK(&c, .space = "f", .size = MiB, .label = "A");
	free_ok(&c, "f", a.handle);
	s = stat_ok(&c, "f");
	EXPECT_EQ_D(&d, s.dirty_bytes, MiB);
	EXPECT_EQ_D(&d, s.free_bytes, 16 * MiB);
	EXPECT_EQ_D(&d, s.discarding_bytes, 0);
	b = ALLOC_OK(&c, .space = "f", .size = MiB, .clean = true);
	EXPECT_D(&d, !overlaps(a.offset, a.length, b.offset, b.length),
		 "a clean allocation [%#" PRIx64 ", +%#" PRIx64
		 ") overlaps the freed, dirty [%#" PRIx64 ", +%#" PRIx64 ")",
		 b.offset, b.length, a.offset, a.length);
	/* Handing out clean units leaves the dirty ones dirty. */
	EXPECT_EQ_D(&d, stat_ok(&c, "f").dirty_bytes, MiB);
	free_ok(&c, "f", b.handle);
	EXPECT_EQ_D(&d, stat_ok(&c, "f").dirty_bytes, 2 * MiB);
	/* A plain allocation may reuse dirty units: no longer free, so no
	 * longer counted; freed, dirty again. */
	e = ALLOC_OK(&c, .space = "f", .size = MiB);
	reused = overlaps(e.offset, e.length, a.offset, a.length) ||
		 overlaps(e.offset, e.length, b.offset, b.length);
	s = stat_ok(&c, "f");
	EXPECT_EQ_D(&d, s.dirty_bytes, reused ? MiB : 2 * MiB);
	free_ok(&c, "f", e.handle);
	model_mark(&m, &a, false);
	model_mark(&m, &b, false);
	model_mark(&m, &e, false);
	EXPECT_EQ_D(&d, stat_ok(&c, "f").dirty_bytes, model_dirty(&m));

	/* A range space names resources, not storage: always clean. */
	r = call(&c, op_space_add("r", 4 * MiB));
	EXPECT_ST_D(&d, r, ST(OK));
	e = ALLOC_OK(&c, .space = "r", .size = MiB);
	free_ok(&c, "r", e.handle);
	EXPECT_EQ_D(&d, stat_ok(&c, "r").dirty_bytes, 0);
	e = ALLOC_OK(&c, .space = "r", .size = 4 * MiB, .clean = true);
	free_ok(&c, "r", e.handle);

	churn(&d, &c, "f", &m, live, &nlive, 64, 300, &seed);
	s = stat_ok(&c, "f");
	EXPECT_EQ_D(&d, s.dirty_bytes, model_dirty(&m));
	cl_close(&c);
	daemon_stop(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s2 = stat_ok(&c, "f");
	expect_same_books(&d, &s, &s2, "a stop and a restart");
	churn(&d, &c, "f", &m, live, &nlive, 64, 100, &seed);
	s = stat_ok(&c, "f");
	EXPECT_EQ_D(&d, s.dirty_bytes, model_dirty(&m));
	cl_close(&c);
	daemon_kill(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s2 = stat_ok(&c, "f");
	expect_same_books(&d, &s, &s2, "kill -9 and a restart");
	cl_close(&c);
	daemon_stop(&d);

	/* Again with a checkpoint every few records, so the books must be
	 * in the snapshot as well as in the log. */
	memset(&m, 0, sizeof(m));
	nlive = 0;
	snprintf(keys, sizeof(keys), "checkpoint_bytes = 4K\n");
	daemon_start(&d, sconf(keys));
	snprintf(path, sizeof(path), "%s/data.img", d.dir);
	make_file(path, 16 * MiB, -1);
	cl_open(&c, &d);
	r = SPACE_ADD(&c, .name = "f", .kind = KIND(FILE), .path = path,
		      .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	churn(&d, &c, "f", &m, live, &nlive, 64, 400, &seed);
	s = stat_ok(&c, "f");
	EXPECT_EQ_D(&d, s.dirty_bytes, model_dirty(&m));
	EXPECT_D(&d, s.dirty_bytes > 0, "churn left nothing dirty");
	EXPECT_D(&d, oldest_log(d.state) > 1,
		 "no checkpoint in %s after 400 operations with "
		 "checkpoint_bytes = 4K",
		 d.state);
	cl_close(&c);
	daemon_stop(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s2 = stat_ok(&c, "f");
	expect_same_books(&d, &s, &s2, "checkpoints and a restart");
	churn(&d, &c, "f", &m, live, &nlive, 64, 200, &seed);
	s = stat_ok(&c, "f");
	EXPECT_EQ_D(&d, s.dirty_bytes, model_dirty(&m));
	cl_close(&c);
	daemon_kill(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s2 = stat_ok(&c, "f");
	expect_same_books(&d, &s, &s2, "checkpoints, kill -9 and a restart");
	/* And the recovered books still steer clean allocations. */
	for (int i = 0; i < 8; i++) {
		r = call(&c, op_alloc((struct aa){
				 .space = "f", .size = 64 * KiB, .clean = true}));
		if (r.status == ST(NO_SPACE))
			break;
		EXPECT_ST_D(&d, r, ST(OK));
		EXPECT_D(&d, !model_touches_dirty(&m, &r.ext),
			 "after recovery a clean allocation got [%#" PRIx64
			 ", +%#" PRIx64 "), which holds units freed before",
			 r.ext.offset, r.ext.length);
		model_mark(&m, &r.ext, true);
	}
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/*
 * Discard.
 */

/* Expect [off, off + len) of path to read back as zeroes. */
static void expect_zeroes(const struct daemon *d, const char *path,
			  uint64_t off, uint64_t len)
{
	char *buf = xcalloc(len);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	EXPECT(fd >= 0, "open %s: %s", path, strerror(errno));
	EXPECT(pread(fd, buf, len, (off_t)off) == (ssize_t)len,
	       "read %s: %s", path, strerror(errno));
	close(fd);
	for (uint64_t i = 0; i < len; i++)
		EXPECT_D(d, !buf[i],
			 "%s: byte %#" PRIx64 " reads %#x after a discard, "
			 "expected 0",
			 path, off + i, (unsigned char)buf[i]);
	free(buf);
}

/* Poll until space is clean; fail with the last stat and the log. */
static struct sinfo expect_clean(const struct daemon *d, struct cl *c,
				 const char *space)
{
	struct sinfo s = poll_clean(c, space, CLEAN_TIMEOUT_MS);

	EXPECT_D(d, !s.dirty_bytes && !s.discarding_bytes,
		 "%s: still %" PRIu64 " dirty bytes, %" PRIu64
		 " being discarded, %d ms after a free",
		 space, s.dirty_bytes, s.discarding_bytes, CLEAN_TIMEOUT_MS);
	return s;
}

START_TEST(discard_file)
{
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s;
	struct ext a;
	char path[256];
	struct stat b0, b1;

	daemon_start(&d, sconf(NULL));
	snprintf(path, sizeof(path), "%s/data.img", d.dir);
	make_file(path, 8 * MiB, 0x5a);
	b0 = stat_of(path);
	cl_open(&c, &d);
	r = SPACE_ADD(&c, .name = "f", .kind = KIND(FILE), .path = path,
		      .discard = true, .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_D(&d, s.discard && !s.isolate, "discard %d isolate %d",
		 s.discard, s.isolate);
	EXPECT_EQ_D(&d, s.dirty_bytes, 0);

	a = ALLOC_OK(&c, .space = "f", .size = 4 * MiB, .label = "A");
	free_ok(&c, "f", a.handle);
	s = expect_clean(&d, &c, "f");
	EXPECT_EQ_D(&d, s.free_bytes, 8 * MiB);
	EXPECT_EQ_D(&d, s.extents, 0);
	b1 = stat_of(path);
	EXPECT_D(&d, b0.st_blocks - b1.st_blocks >= (blkcnt_t)(3 * MiB / 512),
		 "%s: %lld 512-byte blocks before the discard of 4 MiB, "
		 "%lld after: expected at least %llu fewer",
		 path, (long long)b0.st_blocks, (long long)b1.st_blocks,
		 (unsigned long long)(3 * MiB / 512));
	EXPECT_EQ_D(&d, b1.st_size, 8 * MiB);
	expect_zeroes(&d, path, a.offset, a.length);
	/* A clean allocation may now have the discarded units. */
	a = ALLOC_OK(&c, .space = "f", .size = 8 * MiB, .clean = true);
	free_ok(&c, "f", a.handle);
	expect_clean(&d, &c, "f");

	cl_close(&c);
	daemon_stop(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "f");
	EXPECT_D(&d, s.available, "after a restart: unavailable: %s",
		 s.reason);
	EXPECT_EQ_D(&d, s.dirty_bytes, 0);
	EXPECT_EQ_D(&d, s.discarding_bytes, 0);
	EXPECT_D(&d, s.discard, "after a restart: discard off");
	/* And the policy still works after a restart. */
	a = ALLOC_OK(&c, .space = "f", .size = 2 * MiB);
	free_ok(&c, "f", a.handle);
	expect_clean(&d, &c, "f");
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

START_TEST(isolate_file)
{
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s;
	struct ext ex[16], e;
	Potad__V1__Op *ops[2];
	struct res two[2];
	char path[256], path2[256];
	size_t n0, n;

	daemon_start(&d, sconf(NULL));
	snprintf(path, sizeof(path), "%s/iso.img", d.dir);
	snprintf(path2, sizeof(path2), "%s/noiso.img", d.dir);
	make_file(path, 8 * MiB, 0x5a);
	make_file(path2, MiB, -1);
	cl_open(&c, &d);
	n0 = count_spaces(&c);
	r = SPACE_ADD(&c, .name = "bad", .kind = KIND(FILE), .path = path2,
		      .isolate = true);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);

	r = SPACE_ADD(&c, .name = "iso", .kind = KIND(FILE), .path = path,
		      .discard = true, .isolate = true, .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_D(&d, s.discard && s.isolate, "discard %d isolate %d",
		 s.discard, s.isolate);

	/* Full, then one extent freed and an allocation in the same
	 * request, which the daemon handles before a background discard can
	 * finish: the allocation finds nothing (still dirty) or, had the
	 * discard been done already, gets it clean; handing it out dirty
	 * is the bug. */
	n = fill_space(&d, &c, "iso", MiB, ex, 16);
	EXPECT_EQ_D(&d, n, 8);
	ops[0] = op_free("iso", ex[3].handle);
	ops[1] = op_alloc((struct aa){.space = "iso", .size = MiB});
	call_ops(&c, ops, 2, two);
	EXPECT_ST_D(&d, two[0], ST(OK));
	r = two[1];
	printf("isolate_file: right after the free the allocation got %s\n",
	       status_name(r.status));
	fflush(stdout);
	if (r.status == ST(NO_SPACE)) {
		expect_clean(&d, &c, "iso");
		e = ALLOC_OK(&c, .space = "iso", .size = MiB);
	} else {
		EXPECT_ST_D(&d, r, ST(OK));
		e = r.ext;
		s = stat_ok(&c, "iso");
		EXPECT_D(&d, !s.dirty_bytes && !s.discarding_bytes,
			 "isolate: an allocation got [%#" PRIx64
			 ", +%#" PRIx64 ") while %" PRIu64 " bytes were still "
			 "dirty and %" PRIu64 " being discarded",
			 e.offset, e.length, s.dirty_bytes,
			 s.discarding_bytes);
	}
	EXPECT_EQ_D(&d, e.offset, ex[3].offset);
	expect_zeroes(&d, path, e.offset, e.length);
	s = stat_ok(&c, "iso");
	EXPECT_EQ_D(&d, s.extents, 8);
	EXPECT_EQ_D(&d, s.free_bytes, 0);
	cl_close(&c);
	daemon_stop(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "iso");
	EXPECT_D(&d, s.discard && s.isolate,
		 "after a restart: discard %d isolate %d", s.discard,
		 s.isolate);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/*
 * Block devices: loop devices.
 */
START_TEST(blockdev_loop)
{
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s;
	struct ext a;
	char img[256], img2[256], dev[64], dev2[64], why[1024], out[2048];
	struct stat b0, b1;
	int st;

	if (geteuid() != 0) {
		skip("blockdev_loop", "not root: no loop devices");
		return;
	}
	if (!have_tool("losetup") || !have_tool("mkfs.ext4")) {
		skip("blockdev_loop", "no losetup or mkfs.ext4");
		return;
	}
	daemon_start(&d, sconf(NULL));
	snprintf(img, sizeof(img), "%s/disk.img", d.dir);
	make_file(img, 64 * MiB, -1);
	if (loop_attach(img, dev, sizeof(dev), why, sizeof(why)) < 0) {
		skip("blockdev_loop", "%s", why);
		daemon_stop(&d);
		return;
	}
	cl_open(&c, &d);
	r = SPACE_ADD(&c, .name = "bd", .kind = KIND(BLOCKDEV), .path = dev,
		      .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_EQ_D(&d, s.kind, KIND(BLOCKDEV));
	EXPECT_EQ_D(&d, s.base, 0);
	EXPECT_EQ_D(&d, s.size, 64 * MiB);
	EXPECT_EQ_D(&d, s.granule, 512);
	EXPECT_D(&d, has(s.identity, "loop backing="),
		 "loop device identity \"%s\" should hold \"loop backing=\"",
		 s.identity);
	EXPECT_D(&d, s.device[0], "no device facts for %s", dev);
	a = ALLOC_OK(&c, .space = "bd", .size = MiB);
	free_ok(&c, "bd", a.handle);
	EXPECT_EQ_D(&d, stat_ok(&c, "bd").dirty_bytes, MiB);

	/* The daemon holds it exclusively: not twice. */
	r = SPACE_ADD(&c, .name = "bd-again", .kind = KIND(BLOCKDEV),
		      .path = dev);
	EXPECT_D(&d, r.status == ST(BUSY) || r.status == ST(EXISTS),
		 "registering %s twice: expected BUSY or EXISTS, got %s "
		 "(\"%s\")",
		 dev, status_name(r.status), r.msg);
	r = call(&c, op_stat("bd-again"));
	EXPECT_ST_D(&d, r, ST(NOT_FOUND));
	/* Nor can anyone else open it exclusively meanwhile. */
	st = sh(out, sizeof(out), "mkfs.ext4 -q %s", dev);
	EXPECT_D(&d, st != 0,
		 "mkfs.ext4 succeeded on %s while the daemon held it", dev);

	r = call(&c, op_space_rm("bd", false));
	EXPECT_ST_D(&d, r, ST(OK));
	/* Released: a filesystem can be made on it now. */
	st = sh(out, sizeof(out), "mkfs.ext4 -q -F %s", dev);
	EXPECT_D(&d, st == 0,
		 "mkfs.ext4 %s after the space was removed: exit %d: %s "
		 "(does the daemon still hold the device?)",
		 dev, st, out);
	r = SPACE_ADD(&c, .name = "bd", .kind = KIND(BLOCKDEV), .path = dev);
	EXPECT_ST_D(&d, r, ST(BUSY));
	EXPECT_D(&d, has(r.msg, "ext4"),
		 "refusing a device with ext4 on it, the message should "
		 "name it: \"%s\"",
		 r.msg);
	r = SPACE_ADD(&c, .name = "bd", .kind = KIND(BLOCKDEV), .path = dev,
		      .force = true);
	EXPECT_ST_D(&d, r, ST(OK));
	EXPECT_EQ_D(&d, r.space.size, 64 * MiB);
	r = call(&c, op_space_rm("bd", true));
	EXPECT_ST_D(&d, r, ST(OK));

	/* Discard through the loop device into its backing file. */
	snprintf(img2, sizeof(img2), "%s/disk2.img", d.dir);
	make_file(img2, 64 * MiB, 0xa5);
	b0 = stat_of(img2);
	if (loop_attach(img2, dev2, sizeof(dev2), why, sizeof(why)) < 0)
		FAIL("a second loop device: %s", why);
	r = SPACE_ADD(&c, .name = "bdd", .kind = KIND(BLOCKDEV), .path = dev2,
		      .discard = true, .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_D(&d, s.discard, "%s: discard off in SpaceInfo", dev2);
	a = ALLOC_OK(&c, .space = "bdd", .size = 16 * MiB);
	free_ok(&c, "bdd", a.handle);
	s = expect_clean(&d, &c, "bdd");
	EXPECT_EQ_D(&d, s.free_bytes, 64 * MiB);
	b1 = stat_of(img2);
	EXPECT_D(&d,
		 b0.st_blocks - b1.st_blocks >= (blkcnt_t)(12 * MiB / 512),
		 "%s behind %s: %lld 512-byte blocks before the discard of "
		 "16 MiB, %lld after: expected at least %llu fewer",
		 img2, dev2, (long long)b0.st_blocks, (long long)b1.st_blocks,
		 (unsigned long long)(12 * MiB / 512));
	expect_zeroes(&d, img2, a.offset, a.length);
	cl_close(&c);
	daemon_stop(&d);
	loop_detach(dev);
	loop_detach(dev2);
}
END_TEST

/*
 * PCI BARs: a real one, read-only (the daemon never opens the device).
 */

/* The first memory BAR of at least 4 KiB under /sys/bus/pci/devices. */
static bool find_bar(char *pci, size_t n, unsigned *bar, uint64_t *start,
		     uint64_t *end)
{
	struct dirent **ents;
	int k = scandir("/sys/bus/pci/devices", &ents, NULL, alphasort);
	bool found = false;

	for (int i = 0; i < k; i++) {
		char file[512], line[256];
		FILE *f;
		unsigned b = 0;

		if (!found && ents[i]->d_name[0] != '.') {
			snprintf(file, sizeof(file),
				 "/sys/bus/pci/devices/%s/resource",
				 ents[i]->d_name);
			f = fopen(file, "re");
			while (f && !found && b < 6 &&
			       fgets(line, sizeof(line), f)) {
				uint64_t s, e, fl;

				if (sscanf(line,
					   "%" SCNx64 " %" SCNx64 " %" SCNx64,
					   &s, &e, &fl) == 3 &&
				    s && e > s && (fl & 0x200) &&
				    e - s + 1 >= 4096 && !(s & 4095)) {
					snprintf(pci, n, "%s", ents[i]->d_name);
					*bar = b;
					*start = s;
					*end = e;
					found = true;
				}
				b++;
			}
			if (f)
				fclose(f);
		}
		free(ents[i]);
	}
	if (k >= 0)
		free(ents);
	return found;
}

START_TEST(pcibar_real)
{
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s;
	struct ext a;
	char pci[256];
	unsigned bar = 0;
	uint64_t start = 0, end = 0;
	size_t n0;

	if (!find_bar(pci, sizeof(pci), &bar, &start, &end)) {
		skip("pcibar_real", "no PCI function with a memory BAR in "
				    "/sys/bus/pci/devices");
		return;
	}
	printf("pcibar_real: %s BAR %u [%#" PRIx64 ", %#" PRIx64 "]\n", pci,
	       bar, start, end);
	fflush(stdout);
	daemon_start(&d, sconf(NULL));
	cl_open(&c, &d);
	n0 = count_spaces(&c);
	r = SPACE_ADD(&c, .name = "bar", .kind = KIND(PCIBAR), .pci = pci,
		      .bar = bar, .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_EQ_D(&d, s.kind, KIND(PCIBAR));
	EXPECT_EQ_D(&d, s.base, start);
	EXPECT_EQ_D(&d, s.size, end - start + 1);
	EXPECT_EQ_D(&d, s.bar, bar);
	EXPECT_D(&d, has(s.identity, "vendor="),
		 "PCI BAR identity \"%s\" should hold \"vendor=\"",
		 s.identity);
	a = ALLOC_OK(&c, .space = "bar", .size = 4096);
	EXPECT_D(&d, a.offset >= start && a.offset + a.length <= end + 1,
		 "extent [%#" PRIx64 ", +%#" PRIx64 ") outside the BAR",
		 a.offset, a.length);

	r = SPACE_ADD(&c, .name = "badpci", .kind = KIND(PCIBAR),
		      .pci = "zz:00");
	EXPECT_ST_D(&d, r, ST(INVALID));
	r = SPACE_ADD(&c, .name = "badbar", .kind = KIND(PCIBAR), .pci = pci,
		      .bar = 7);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0 + 1);

	cl_close(&c);
	daemon_stop(&d);
	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "bar");
	EXPECT_D(&d, s.available, "after a restart: unavailable: %s",
		 s.reason);
	EXPECT_EQ_D(&d, s.extents, 1);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

/*
 * Device-DAX in a fake sysfs tree.
 */
static const char dax_uuid[] = "6a3b2c1d-0000-4e5f-8a9b-0c1d2e3f4a5b";

START_TEST(devdax_fake)
{
	struct daemon d;
	struct cl c;
	struct res r;
	struct sinfo s, k;
	struct ext in_kid, in_dax;
	char root[256], dir[512], f[640], keys[400], out[512];
	uint32_t tenant = 4242;
	size_t nparent, nkid;

	snprintf(root, sizeof(root), "%s/sysfs.%d", harness_root(),
		 (int)getpid());
	snprintf(dir, sizeof(dir), "%s/bus/dax/devices/dax0.0", root);
	EXPECT(sh(out, sizeof(out), "mkdir -p %s", dir) == 0, "mkdir -p %s: %s",
	       dir, out);
#define PUT(name, text)                                                        \
	do {                                                                   \
		snprintf(f, sizeof(f), "%s/%s", dir, name);                    \
		write_text(f, text);                                           \
	} while (0)
	PUT("size", "1073741824\n");
	PUT("align", "2097152\n");
	PUT("uuid", "6a3b2c1d-0000-4e5f-8a9b-0c1d2e3f4a5b\n");
	PUT("target_node", "0\n");
	PUT("resource", "0x100000000\n");
	snprintf(keys, sizeof(keys), "sysfs_root = %s\n", root);
	daemon_start(&d, sconf(keys));
	cl_open(&c, &d);
	r = SPACE_ADD(&c, .name = "pmem", .kind = KIND(DEVDAX),
		      .path = "/dev/dax0.0", .allow_all = true);
	EXPECT_ST_D(&d, r, ST(OK));
	s = space_of(&d, &r);
	EXPECT_EQ_D(&d, s.kind, KIND(DEVDAX));
	EXPECT_EQ_D(&d, s.size, GiB);
	EXPECT_EQ_D(&d, s.granule, 2 * MiB);
	EXPECT_D(&d, has(s.identity, dax_uuid),
		 "device-DAX identity \"%s\" should hold the uuid %s",
		 s.identity, dax_uuid);
	r = call(&c, op_child_add("pmem", "tenant", 256 * MiB, false, &tenant,
				  1));
	EXPECT_ST_D(&d, r, ST(OK));
	k = stat_ok(&c, "tenant");
	EXPECT_EQ_D(&d, k.size, 256 * MiB);
	EXPECT_D(&d, !strcmp(k.parent, "pmem"), "tenant's parent \"%s\"",
		 k.parent);
	in_kid = ALLOC_OK(&c, .space = "tenant", .size = 2 * MiB);
	in_dax = ALLOC_OK(&c, .space = "pmem", .size = 4 * MiB);
	r = call(&c, op_extents("pmem"));
	EXPECT_ST_D(&d, r, ST(OK));
	nparent = r.n;
	r = call(&c, op_extents("tenant"));
	EXPECT_ST_D(&d, r, ST(OK));
	nkid = r.n;
	EXPECT_EQ_D(&d, nkid, 1);
	cl_close(&c);
	daemon_stop(&d);

	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "pmem");
	EXPECT_D(&d, s.available, "after a restart: pmem unavailable: %s",
		 s.reason);
	k = stat_ok(&c, "tenant");
	EXPECT_D(&d, k.available, "after a restart: tenant unavailable: %s",
		 k.reason);
	cl_close(&c);
	daemon_stop(&d);

	/* The device was reconfigured while the daemon was down. */
	PUT("size", "2147483648\n");
	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "pmem");
	EXPECT_D(&d, !s.available,
		 "pmem grew from 1 GiB to 2 GiB while the daemon was down, "
		 "yet it is available (identity \"%s\")",
		 s.identity);
	EXPECT_D(&d, s.reason[0], "pmem: unavailable without a reason");
	EXPECT_EQ_D(&d, s.size, GiB);
	k = stat_ok(&c, "tenant");
	EXPECT_D(&d, !k.available,
		 "the child of an unavailable space is available");
	r = call(&c, op_alloc((struct aa){.space = "tenant", .size = 2 * MiB}));
	EXPECT_ST_D(&d, r, ST(UNAVAILABLE));
	r = call(&c, op_alloc((struct aa){.space = "pmem", .size = 2 * MiB}));
	EXPECT_ST_D(&d, r, ST(UNAVAILABLE));
	r = call(&c, op_free("tenant", in_kid.handle));
	EXPECT_ST_D(&d, r, ST(UNAVAILABLE));
	r = call(&c, op_extents("pmem"));
	EXPECT_ST_D(&d, r, ST(OK));
	EXPECT_EQ_D(&d, r.n, nparent);
	r = call(&c, op_extents("tenant"));
	EXPECT_ST_D(&d, r, ST(OK));
	EXPECT_EQ_D(&d, r.n, nkid);
	r = call(&c, op_lookup("pmem", in_dax.offset));
	EXPECT_ST_D(&d, r, ST(OK));
	EXPECT_EQ_D(&d, r.ext.handle, in_dax.handle);
	cl_close(&c);
	daemon_stop(&d);

	/* Put back, it is served again with what it held. */
	PUT("size", "1073741824\n");
	daemon_restart(&d);
	cl_open(&c, &d);
	s = stat_ok(&c, "pmem");
	EXPECT_D(&d, s.available, "pmem put back, still unavailable: %s",
		 s.reason);
	free_ok(&c, "tenant", in_kid.handle);
	free_ok(&c, "pmem", in_dax.handle);
	ALLOC_OK(&c, .space = "tenant", .size = 2 * MiB);
	cl_close(&c);
	daemon_stop(&d);
#undef PUT
}
END_TEST

/*
 * Policies that make no sense for a kind.
 */
/* A request that waits for a probe holds back the ones behind it on its
 * connection, and only those: replies come in order, other connections
 * are served, and a client that leaves mid-probe harms nothing. */
START_TEST(probe_pipelined)
{
	Potad__V1__Op *ops1[2], *ops2[1], *ops3[1];
	Potad__V1__Request rq[3] = {POTAD__V1__REQUEST__INIT,
				    POTAD__V1__REQUEST__INIT,
				    POTAD__V1__REQUEST__INIT};
	char swap[256], file[256];
	struct daemon d;
	struct cl c, c2;
	struct res r;

	if (!have_tool("mkswap")) {
		skip("probe_pipelined", "no mkswap");
		return;
	}
	daemon_start(&d, sconf(NULL));
	snprintf(swap, sizeof(swap), "%s/swapfile", d.dir);
	snprintf(file, sizeof(file), "%s/data", d.dir);
	make_swap(swap, 8 * MiB);
	make_file(file, 4 * MiB, 0);
	cl_open(&c, &d);
	ops1[0] = op_space_add_ex((struct sa){.name = "sw", .kind = KIND(SWAP),
					      .path = swap});
	ops1[1] = op_alloc((struct aa){.size = 4 * KiB});
	ops2[0] = op_alloc((struct aa){.size = 8 * KiB});
	ops3[0] = op_space_add_ex((struct sa){.name = "f", .kind = KIND(FILE),
					      .path = file});
	rq[0].ops = ops1;
	rq[0].n_ops = 2;
	rq[1].ops = ops2;
	rq[1].n_ops = 1;
	rq[2].ops = ops3;
	rq[2].n_ops = 1;
	for (int i = 0; i < 3; i++) {
		rq[i].id = 100 + (uint64_t)i;
		cl_send(&c, &rq[i]);
	}
	/* Another connection is answered meanwhile. */
	cl_open(&c2, &d);
	r = call(&c2, op_hello());
	EXPECT_OK(r);
	for (int i = 0; i < 3; i++) {
		Potad__V1__ServerMessage *keep = NULL;
		Potad__V1__Response *resp = cl_response(&c, &keep);

		EXPECT_EQ_D(&d, resp->id, 100 + (uint64_t)i);
		EXPECT_EQ_D(&d, resp->n_results, rq[i].n_ops);
		for (size_t j = 0; j < resp->n_results; j++)
			EXPECT_D(&d, resp->results[j]->status ==
					 POTAD__V1__STATUS__OK,
				 "request %d op %zu: %s (\"%s\")", i, j,
				 status_name(resp->results[j]->status),
				 resp->results[j]->message);
		potad__v1__server_message__free_unpacked(keep, NULL);
	}
	for (int i = 0; i < 2; i++)
		free_op(ops1[i]);
	free_op(ops2[0]);
	free_op(ops3[0]);
	cl_close(&c);

	/* A client that sends a probing request and leaves at once. */
	cl_open(&c, &d);
	ops3[0] = op_space_add_ex((struct sa){.name = "gone", .kind = KIND(FILE),
					      .path = file});
	rq[2].id = 7;
	cl_send(&c, &rq[2]);
	free_op(ops3[0]);
	cl_close(&c);
	r = call(&c2, op_hello());
	EXPECT_OK(r);
	r = call(&c2, op_stat("sw"));
	EXPECT_OK(r);
	cl_close(&c2);
	daemon_stop(&d);
}
END_TEST

START_TEST(policy_refusals)
{
	struct daemon d;
	struct cl c;
	struct res r;
	char path[256];
	size_t n0;

	daemon_start(&d, sconf(NULL));
	snprintf(path, sizeof(path), "%s/data.img", d.dir);
	make_file(path, MiB, -1);
	cl_open(&c, &d);
	n0 = count_spaces(&c);

	r = SPACE_ADD(&c, .name = "x", .kind = KIND(FILE), .path = path,
		      .isolate = true);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);
	r = SPACE_ADD(&c, .name = "x", .kind = KIND(FILE), .path = path,
		      .force = true);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);
	r = SPACE_ADD(&c, .name = "x", .kind = KIND(RANGE), .size = MiB,
		      .granule = 4096, .discard = true);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);
	r = SPACE_ADD(&c, .name = "x", .kind = KIND(RANGE), .size = MiB,
		      .granule = 4096, .discard = true, .isolate = true);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);
	r = SPACE_ADD(&c, .name = "x", .kind = 99, .path = path, .size = MiB);
	EXPECT_ST_D(&d, r, ST(INVALID));
	EXPECT_EQ_D(&d, count_spaces(&c), n0);
	r = call(&c, op_stat("x"));
	EXPECT_ST_D(&d, r, ST(NOT_FOUND));

	/* The same file without the bad flags is a space. */
	r = SPACE_ADD(&c, .name = "x", .kind = KIND(FILE), .path = path);
	EXPECT_ST_D(&d, r, ST(OK));
	EXPECT_EQ_D(&d, count_spaces(&c), n0 + 1);
	cl_close(&c);
	daemon_stop(&d);
}
END_TEST

static Suite *spaces_suite(void)
{
	Suite *s = suite_create("spaces");
	TCase *tc;

	tc = tcase_create("swap");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, swap_bad_pages);
	tcase_add_test(tc, swap_refusals);
	tcase_add_test(tc, probe_pipelined);
	suite_add_tcase(s, tc);

	tc = tcase_create("identity");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, file_new_inode);
	tcase_add_test(tc, file_new_size);
	tcase_add_test(tc, devdax_fake);
	suite_add_tcase(s, tc);

	tc = tcase_create("clean");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, clean_dirty_file);
	tcase_add_test(tc, discard_file);
	tcase_add_test(tc, isolate_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("devices");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, blockdev_loop);
	tcase_add_test(tc, pcibar_real);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, policy_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed, rc;

	if (access(daemon_path(), X_OK) != 0) {
		printf("SKIP: check_spaces: no daemon binary at %s\n",
		       daemon_path());
		return 77;
	}
	rc = harness_init();
	if (rc < 0) {
		fprintf(stderr, "check_spaces: no temporary directory: %s\n",
			strerror(-rc));
		return 99;
	}
	sr = srunner_create(spaces_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (geteuid() == 0)
		loops_sweep();
	harness_fini();
	return failed ? 1 : 0;
}
