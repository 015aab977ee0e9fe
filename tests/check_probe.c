/* SPDX-License-Identifier: MIT */
/* Tests of the space probes: swap files made by the real mkswap, loop
 * devices (as root), fake sysfs trees for device-DAX and PCI, the real
 * sysfs's PCI BARs, and plain files. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "potad.pb-c.h"
#include "../daemon/probe.h"

#define MiB ((uint64_t)1 << 20)
#define SWAP_UUID "0b9a4c9e-6d2c-4f1e-9a51-3c3e2d7f8a10"
#define DAX_UUID "5c3d6e2a-1f4b-4c8d-9e0a-7b6c5d4e3f21"

/* The scratch directory, made before the tests fork and removed after. */
static char tmp[256];

/* Probe rq into *p and expect want (0 or -errno); a message must mention
 * sub (when not NULL), and a failed probe must hold nothing. */
#define EXPECT(rq, p, want, sub)                                               \
	do {                                                                   \
		const char *s_ = (sub);                                        \
		char m_[512];                                                  \
		int r_ = potad__probe((rq), (p), m_, sizeof(m_));              \
		ck_assert_msg(r_ == (want), "probe: expected %d, got %d (%s)", \
			      (want), r_, m_);                                 \
		if (s_)                                                        \
			ck_assert_msg(strstr(m_, s_),                          \
				      "message should mention \"%s\": %s", s_, \
				      m_);                                     \
		if (r_ < 0)                                                    \
			ck_assert_msg((p)->fd == -1 && !(p)->bad &&            \
					  !(p)->nbad,                          \
				      "a failed probe holds fd %d, %zu bad",   \
				      (p)->fd, (p)->nbad);                     \
	} while (0)

#define CONTAINS(s, sub)                                                       \
	ck_assert_msg(strstr((s), (sub)), "\"%s\" should contain \"%s\"", (s), \
		      (sub))

static void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void skip(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Run a shell command; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2 * PATH_MAX];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have(const char *tool)
{
	return sh("command -v %s >/dev/null 2>&1", tool) == 0;
}

static void tpath(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmp, name);
}

/* Write a file (parents made as needed) holding the formatted text. */
static void put(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(const char *path, const char *fmt, ...)
{
	char dir[PATH_MAX];
	va_list ap;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	ck_assert_int_eq(sh("mkdir -p '%s'", dir), 0);
	f = fopen(path, "w");
	ck_assert_msg(f, "cannot create %s", path);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* A file of size bytes filled with byte c, synced. */
static void fill(const char *path, uint64_t size, int c)
{
	char buf[65536];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_msg(fd >= 0, "cannot create %s", path);
	memset(buf, c, sizeof(buf));
	for (uint64_t off = 0; off < size; off += sizeof(buf))
		ck_assert_int_eq(write(fd, buf, sizeof(buf)), sizeof(buf));
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
}

static void pwrite_all(const char *path, const void *buf, size_t len, off_t off)
{
	int fd = open(path, O_WRONLY);

	ck_assert_msg(fd >= 0, "cannot open %s", path);
	ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
}

static uint64_t blocks(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_blocks;
}

/* --- swap -------------------------------------------------------------- */

static uint64_t psz(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

/* An 8 MiB swap file made by mkswap under a name with a space (as
 * /proc/swaps escapes it); false when mkswap is missing. */
static bool make_swap(char *path, size_t len, const char *name)
{
	if (!have("mkswap")) {
		skip("mkswap not found (Debian package util-linux)");
		return false;
	}
	tpath(path, len, name);
	fill(path, 8 * MiB, 0);
	ck_assert_int_eq(sh("mkswap -U " SWAP_UUID " -L lbl '%s' "
			    ">/dev/null 2>&1",
			    path),
			 0);
	return true;
}

static void swap_req(struct potad_probe_req *rq, const char *path,
		     const char *proc)
{
	memset(rq, 0, sizeof(*rq));
	rq->kind = POTAD__V1__SPACE_KIND__SWAP;
	rq->path = path;
	rq->proc_swaps = proc;
}

START_TEST(swap_clean)
{
	char path[PATH_MAX], noswaps[PATH_MAX];
	struct potad_probe_req rq;
	struct potad_probe p;
	uint64_t last = 8 * MiB / psz() - 1;

	if (!make_swap(path, sizeof(path), "my swap"))
		return;
	tpath(noswaps, sizeof(noswaps), "noswaps");
	put(noswaps, "Filename\tType\tSize\tUsed\tPriority\n");

	/* The real /proc/swaps first: this file is not in it. */
	swap_req(&rq, path, NULL);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.base, psz());
	ck_assert_uint_eq(p.size, last * psz());
	ck_assert_uint_eq(1ull << p.granule_shift, psz());
	ck_assert_uint_eq(p.nbad, 0);
	ck_assert_ptr_null(p.bad);
	ck_assert_int_eq(p.fd, -1);
	ck_assert(!p.can_discard);
	CONTAINS(p.identity, "swap uuid=" SWAP_UUID);
	CONTAINS(p.info, "label lbl");
	CONTAINS(p.info, "0 bad pages");
	potad__probe_release(&p);
	ck_assert_int_eq(p.fd, -1);

	/* Granules: power-of-two multiples of the page only. */
	swap_req(&rq, path, noswaps);
	rq.granule = 4 * psz();
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(1ull << p.granule_shift, 4 * psz());
	potad__probe_release(&p);
	rq.granule = psz() / 2;
	EXPECT(&rq, &p, -EINVAL, "page size");
	rq.granule = 3 * psz();
	EXPECT(&rq, &p, -EINVAL, "page size");

	/* Never discarded. */
	swap_req(&rq, path, noswaps);
	rq.discard = true;
	EXPECT(&rq, &p, -EOPNOTSUPP, "discard");
}
END_TEST

/* Write nbad bad page numbers into a swap header. */
static void set_bad(const char *path, const uint32_t *pages, uint32_t n)
{
	pwrite_all(path, &n, 4, 1032);
	if (n)
		pwrite_all(path, pages, n * 4, 1536);
}

START_TEST(swap_bad_pages)
{
	static const uint32_t pages[] = {9, 5, 6};
	char path[PATH_MAX];
	struct potad_probe_req rq;
	struct potad_probe p;
	uint64_t ps = psz(), last = 8 * MiB / ps - 1;
	uint32_t beyond[] = {7, (uint32_t)last + 1}, zero[] = {0};

	if (!make_swap(path, sizeof(path), "bad"))
		return;
	swap_req(&rq, path, NULL);

	/* Unsorted, two adjacent: two ranges, sorted, the pair merged. */
	set_bad(path, pages, 3);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.nbad, 2);
	ck_assert_uint_eq(p.bad[0][0], 5 * ps);
	ck_assert_uint_eq(p.bad[0][1], 2 * ps);
	ck_assert_uint_eq(p.bad[1][0], 9 * ps);
	ck_assert_uint_eq(p.bad[1][1], ps);
	CONTAINS(p.info, "3 bad pages");
	potad__probe_release(&p);
	ck_assert_ptr_null(p.bad);
	ck_assert_uint_eq(p.nbad, 0);

	/* The last page may be bad; the one after it does not exist, and
	 * page 0 is the header. */
	beyond[1] = (uint32_t)last;
	set_bad(path, beyond, 2);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.bad[1][0], last * ps);
	potad__probe_release(&p);
	beyond[1] = (uint32_t)last + 1;
	set_bad(path, beyond, 2);
	EXPECT(&rq, &p, -EINVAL, "outside pages");
	set_bad(path, zero, 1);
	EXPECT(&rq, &p, -EINVAL, "outside pages");
	/* More bad pages than a header holds. */
	set_bad(path, zero, 0);
	{
		uint32_t n = (uint32_t)ps;

		pwrite_all(path, &n, 4, 1032);
	}
	EXPECT(&rq, &p, -EINVAL, "bad pages");
}
END_TEST

START_TEST(swap_byteswapped)
{
	char path[PATH_MAX];
	struct potad_probe_req rq;
	struct potad_probe p;
	uint64_t ps = psz(), last = 8 * MiB / ps - 1;
	uint32_t v[3] = {__builtin_bswap32(1),
			 __builtin_bswap32((uint32_t)last),
			 __builtin_bswap32(1)};
	uint32_t bad = __builtin_bswap32(3);

	if (!make_swap(path, sizeof(path), "swapped"))
		return;
	/* What mkswap writes on a machine of the other byte order. */
	pwrite_all(path, v, sizeof(v), 1024);
	pwrite_all(path, &bad, 4, 1536);
	swap_req(&rq, path, NULL);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.size, last * ps);
	ck_assert_uint_eq(p.nbad, 1);
	ck_assert_uint_eq(p.bad[0][0], 3 * ps);
	CONTAINS(p.info, "byte-swapped");
	potad__probe_release(&p);
}
END_TEST

START_TEST(swap_refused)
{
	char path[PATH_MAX], zeros[PATH_MAX], proc[PATH_MAX];
	struct potad_probe_req rq;
	struct potad_probe p;
	uint64_t last = 8 * MiB / psz() - 1;

	if (!make_swap(path, sizeof(path), "in use"))
		return;

	/* Listed by the kernel, under its escaped name and with another
	 * spelling of the path: compared by inode, not by name. */
	tpath(proc, sizeof(proc), "proc_swaps");
	put(proc,
	    "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	    "/dev/zram0                              partition\t4194300\t\t0"
	    "\t\t100\n"
	    "%s/./in\\040use                         file\t\t%" PRIu64
	    "\t\t0\t\t-2\n",
	    tmp, last * psz() / 1024);
	swap_req(&rq, path, proc);
	EXPECT(&rq, &p, -EBUSY, "swapoff");
	/* A missing /proc/swaps is a kernel without swap: nothing in use. */
	tpath(proc, sizeof(proc), "no_such_proc_swaps");
	swap_req(&rq, path, proc);
	EXPECT(&rq, &p, 0, NULL);
	potad__probe_release(&p);

	/* A hibernation image. */
	pwrite_all(path, "S1SUSPEND", 9, (off_t)(psz() - 10));
	swap_req(&rq, path, NULL);
	EXPECT(&rq, &p, -EINVAL, "hibernation");

	/* Not swap at all. */
	tpath(zeros, sizeof(zeros), "zeros");
	fill(zeros, 8 * MiB, 0);
	swap_req(&rq, zeros, NULL);
	EXPECT(&rq, &p, -EINVAL, "no signature");
	/* Something else. */
	if (have("mkfs.ext4") &&
	    sh("mkfs.ext4 -q -F '%s' >/dev/null 2>&1", zeros) == 0)
		EXPECT(&rq, &p, -EINVAL, "ext4");

	/* A directory, a missing path. */
	swap_req(&rq, tmp, NULL);
	EXPECT(&rq, &p, -EINVAL, "neither a file nor a block device");
	tpath(zeros, sizeof(zeros), "missing");
	swap_req(&rq, zeros, NULL);
	EXPECT(&rq, &p, -ENOENT, "missing");
}
END_TEST

/* --- blockdev (root, loop devices) ------------------------------------- */

static bool loop_usable(void)
{
	if (geteuid() != 0) {
		skip("block device probes need root for loop devices");
		return false;
	}
	if (access("/dev/loop-control", F_OK) || !have("losetup")) {
		skip("no loop devices (/dev/loop-control, losetup)");
		return false;
	}
	return true;
}

/* Attach a loop device to file and note it for main() to detach, even if
 * this test fails half-way. */
static bool loop_attach(const char *file, char *dev, size_t len)
{
	char cmd[PATH_MAX + 32], list[PATH_MAX];
	FILE *f;
	bool ok;

	snprintf(cmd, sizeof(cmd), "losetup -f --show '%s'", file);
	f = popen(cmd, "r");
	ok = f && fgets(dev, (int)len, f);
	if (f)
		pclose(f);
	if (!ok || strncmp(dev, "/dev/", 5)) {
		skip("losetup -f --show %s failed", file);
		return false;
	}
	dev[strcspn(dev, "\n")] = 0;
	tpath(list, sizeof(list), "loops");
	f = fopen(list, "a");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", dev);
	fclose(f);
	return true;
}

static void blk_req(struct potad_probe_req *rq, const char *dev)
{
	memset(rq, 0, sizeof(*rq));
	rq->kind = POTAD__V1__SPACE_KIND__BLOCKDEV;
	rq->path = dev;
}

START_TEST(blockdev_plain)
{
	char file[PATH_MAX], dev[64], want[PATH_MAX + 32];
	struct potad_probe_req rq;
	struct potad_probe p, q;
	struct stat st;

	if (!loop_usable())
		return;
	tpath(file, sizeof(file), "disk0");
	put(file, "%s", "");
	ck_assert_int_eq(truncate(file, (off_t)(64 * MiB)), 0);
	if (!loop_attach(file, dev, sizeof(dev)))
		return;
	ck_assert_int_eq(stat(file, &st), 0);

	blk_req(&rq, dev);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.base, 0);
	ck_assert_uint_eq(p.size, 64 * MiB);
	ck_assert_uint_eq(p.granule_shift, 9);
	ck_assert_int_ge(p.fd, 0);
	snprintf(want, sizeof(want), "blockdev loop backing=%s ino=%llu", file,
		 (unsigned long long)st.st_ino);
	CONTAINS(p.identity, want);
	CONTAINS(p.identity, " size=67108864");
	CONTAINS(p.info, "logical 512, physical ");
	/* The held descriptor is an O_EXCL claim: a second probe of the
	 * same device is refused while the first holds it. */
	EXPECT(&rq, &q, -EBUSY, "in use");
	potad__probe_release(&p);
	ck_assert_int_eq(p.fd, -1);
	EXPECT(&rq, &q, 0, NULL);
	potad__probe_release(&q);

	/* Granules: power-of-two multiples of the 512-byte sector. */
	rq.granule = 256;
	EXPECT(&rq, &p, -EINVAL, "512-byte logical sector");
	rq.granule = 4096;
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.granule_shift, 12);
	potad__probe_release(&p);
	rq.granule = 3 * 512;
	EXPECT(&rq, &p, -EINVAL, "512-byte logical sector");

	/* Not a block device. */
	blk_req(&rq, file);
	EXPECT(&rq, &p, -EINVAL, "not a block device");
	blk_req(&rq, "/dev/no-such-device");
	EXPECT(&rq, &p, -ENOENT, "/dev/no-such-device");
}
END_TEST

START_TEST(blockdev_signatures)
{
	char file[PATH_MAX], dev[64], mnt[PATH_MAX];
	static char zeros[1 << 20];
	struct potad_probe_req rq;
	struct potad_probe p;

	if (!loop_usable())
		return;
	if (!have("mkfs.ext4")) {
		skip("mkfs.ext4 not found (Debian package e2fsprogs)");
		return;
	}
	tpath(file, sizeof(file), "disk1");
	put(file, "%s", "");
	ck_assert_int_eq(truncate(file, (off_t)(64 * MiB)), 0);
	if (!loop_attach(file, dev, sizeof(dev)))
		return;
	ck_assert_int_eq(sh("mkfs.ext4 -q -F -U " SWAP_UUID " %s", dev), 0);

	blk_req(&rq, dev);
	EXPECT(&rq, &p, -EBUSY,
	       "holds an ext4 filesystem (UUID " SWAP_UUID ")");
	EXPECT(&rq, &p, -EBUSY, "--force");
	rq.force = true;
	EXPECT(&rq, &p, 0, NULL);
	CONTAINS(p.info, "fs ext4 (forced)");
	potad__probe_release(&p);

	/* Mounted: refused even with force, as the kernel holds it. */
	tpath(mnt, sizeof(mnt), "mnt");
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	if (mount(dev, mnt, "ext4", 0, NULL) == 0) {
		EXPECT(&rq, &p, -EBUSY, "in use (mounted");
		ck_assert_int_eq(umount(mnt), 0);
		EXPECT(&rq, &p, 0, NULL);
		potad__probe_release(&p);
	} else {
		skip("cannot mount %s here (%s): mounted case untested", dev,
		     strerror(errno));
	}

	/* A partition table. */
	pwrite_all(dev, zeros, sizeof(zeros), 0);
	rq.force = false;
	EXPECT(&rq, &p, 0, NULL);
	potad__probe_release(&p);
	if (!have("sfdisk")) {
		skip("sfdisk not found (Debian package fdisk)");
		return;
	}
	ck_assert_int_eq(sh("echo 'start=2048, type=83' | sfdisk -q "
			    "--no-reread --no-tell-kernel %s >/dev/null 2>&1",
			    dev),
			 0);
	EXPECT(&rq, &p, -EBUSY, "a dos partition table");
	rq.force = true;
	EXPECT(&rq, &p, 0, NULL);
	CONTAINS(p.info, "pt dos (forced)");
	potad__probe_release(&p);
}
END_TEST

START_TEST(blockdev_discard)
{
	char file[PATH_MAX], dev[64], data[1 << 16];
	struct potad_probe_req rq;
	struct potad_probe p;
	uint64_t before, after;
	int fd;

	if (!loop_usable())
		return;
	tpath(file, sizeof(file), "disk2");
	put(file, "%s", "");
	ck_assert_int_eq(truncate(file, (off_t)(64 * MiB)), 0);
	if (!loop_attach(file, dev, sizeof(dev)))
		return;
	/* 8 MiB of data through the device, flushed into the backing
	 * file. */
	memset(data, 0xab, sizeof(data));
	fd = open(dev, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	for (size_t off = 0; off < 8 * MiB; off += sizeof(data))
		ck_assert_int_eq(write(fd, data, sizeof(data)), sizeof(data));
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	before = blocks(file);
	ck_assert_uint_ge(before, 8 * MiB / 512);

	blk_req(&rq, dev);
	rq.discard = true;
	{
		char m[512];
		int rc = potad__probe(&rq, &p, m, sizeof(m));

		if (rc == -EOPNOTSUPP) {
			skip("%s", m);
			return;
		}
		ck_assert_msg(rc == 0, "probe: expected 0, got %d (%s)", rc, m);
	}
	ck_assert(p.can_discard);
	CONTAINS(p.info, "discard yes");
	ck_assert_int_ge(p.fd, 0);
	ck_assert_int_eq(potad__discard(POTAD__V1__SPACE_KIND__BLOCKDEV, p.fd,
					1 * MiB, 4 * MiB),
			 0);
	after = blocks(file);
	/* The loop driver punches the discarded range out of its backing
	 * file. */
	ck_assert_msg(before - after >= 4 * MiB / 512,
		      "backing file blocks: expected at most %" PRIu64
		      ", got %" PRIu64,
		      before - 4 * MiB / 512, after);
	potad__probe_release(&p);
}
END_TEST

/* A real loop device seen through a fake sysfs tree at root, as a disk
 * (part 0) or as partition part of a disk: what sysfs says of holders,
 * partitions, discard and names, which loop devices here cannot show. */
static void fake_blk(const char *root, const char *dev, int part,
		     const char *disk_files[][2])
{
	char d[1024], p[PATH_MAX];
	struct stat st;

	ck_assert_int_eq(stat(dev, &st), 0);
	ck_assert_int_eq(sh("rm -rf '%s'", root), 0);
	snprintf(d, sizeof(d), "%s/devices/virtual/block/fakedisk", root);
	for (size_t i = 0; disk_files[i][0]; i++) {
		snprintf(p, sizeof(p), "%s/%s", d, disk_files[i][0]);
		put(p, "%s\n", disk_files[i][1]);
	}
	snprintf(p, sizeof(p), "%s/holders/.keep", d);
	put(p, "%s", "");
	unlink(p);
	if (part) {
		snprintf(p, sizeof(p), "%s/fakedisk%d/partition", d, part);
		put(p, "%d\n", part);
		snprintf(d + strlen(d), sizeof(d) - strlen(d), "/fakedisk%d",
			 part);
	}
	snprintf(p, sizeof(p), "%s/dev/block", root);
	ck_assert_int_eq(sh("mkdir -p '%s'", p), 0);
	snprintf(p, sizeof(p), "%s/dev/block/%u:%u", root, major(st.st_rdev),
		 minor(st.st_rdev));
	ck_assert_int_eq(symlink(d, p), 0);
}

START_TEST(blockdev_sysfs)
{
	static const char *plain[][2] = {{"queue/discard_max_bytes", "0"},
					 {NULL, NULL}};
	static const char *wwid[][2] = {
	    {"queue/discard_max_bytes", "2147450880"},
	    {"device/wwid", "naa.600508b1001c4d1e"},
	    {"device/serial", "S3Z9NB0K"},
	    {NULL, NULL}};
	static const char *serial[][2] = {{"queue/discard_max_bytes", "0"},
					  {"serial", "S3Z9NB0K"},
					  {"fakedisk2/partition", "2"},
					  {NULL, NULL}};
	static const char *held[][2] = {{"queue/discard_max_bytes", "0"},
					{"holders/dm-0", ""},
					{NULL, NULL}};
	char file[PATH_MAX], dev[64], root[512];
	struct potad_probe_req rq;
	struct potad_probe p;

	if (!loop_usable())
		return;
	tpath(file, sizeof(file), "disk3");
	put(file, "%s", "");
	ck_assert_int_eq(truncate(file, (off_t)(16 * MiB)), 0);
	if (!loop_attach(file, dev, sizeof(dev)))
		return;
	tpath(root, sizeof(root), "sys-blk");
	blk_req(&rq, dev);
	rq.sysfs_root = root;

	/* Nothing known but the device number; no discard. */
	fake_blk(root, dev, 0, plain);
	EXPECT(&rq, &p, 0, NULL);
	CONTAINS(p.identity, "blockdev dev=7:");
	CONTAINS(p.identity, " size=16777216");
	CONTAINS(p.info, "discard no");
	ck_assert(!p.can_discard);
	potad__probe_release(&p);
	rq.discard = true;
	EXPECT(&rq, &p, -EOPNOTSUPP, "does not support discard");
	rq.discard = false;

	/* A WWID comes before a serial number. */
	fake_blk(root, dev, 0, wwid);
	rq.discard = true;
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_str_eq(p.identity,
			 "blockdev wwid=naa.600508b1001c4d1e size=16777216");
	ck_assert(p.can_discard);
	potad__probe_release(&p);
	rq.discard = false;

	/* A disk with partitions, and a disk held by device-mapper. */
	fake_blk(root, dev, 0, serial);
	EXPECT(&rq, &p, -EBUSY, "has partitions (fakedisk2");
	rq.force = true;
	EXPECT(&rq, &p, 0, NULL);
	potad__probe_release(&p);
	rq.force = false;
	fake_blk(root, dev, 0, held);
	EXPECT(&rq, &p, -EBUSY, "is held by dm-0");

	/* As partition 2 of a disk: the disk's name and the number. */
	fake_blk(root, dev, 2, serial);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_str_eq(p.identity,
			 "blockdev serial=S3Z9NB0K part=2 size=16777216");
	potad__probe_release(&p);
}
END_TEST

/* --- devdax (fake sysfs) ----------------------------------------------- */

static void dax_tree(char *root, size_t len)
{
	char p[PATH_MAX];

	tpath(root, len, "sys-dax");
	snprintf(p, sizeof(p), "%s/bus/dax/devices/dax0.0/size", root);
	put(p, "1073741824\n");
	snprintf(p, sizeof(p), "%s/bus/dax/devices/dax0.0/align", root);
	put(p, "2097152\n");
	snprintf(p, sizeof(p), "%s/bus/dax/devices/dax0.0/target_node", root);
	put(p, "1\n");
	snprintf(p, sizeof(p), "%s/bus/dax/devices/dax0.0/resource", root);
	put(p, "0x380000000\n");
	snprintf(p, sizeof(p), "%s/bus/dax/devices/dax0.0/uuid", root);
	put(p, DAX_UUID "\n");
	/* An older kernel: no align; the uuid on the namespace. */
	snprintf(p, sizeof(p), "%s/bus/dax/devices/dax1.0/size", root);
	put(p, "536870912\n");
	snprintf(p, sizeof(p), "%s/bus/dax/devices/dax1.0/device/uuid", root);
	put(p, "ns-uuid\n");
}

static void dax_req(struct potad_probe_req *rq, const char *path,
		    const char *root)
{
	memset(rq, 0, sizeof(*rq));
	rq->kind = POTAD__V1__SPACE_KIND__DEVDAX;
	rq->path = path;
	rq->sysfs_root = root;
}

START_TEST(devdax_fake)
{
	char root[512];
	struct potad_probe_req rq;
	struct potad_probe p;

	dax_tree(root, sizeof(root));
	dax_req(&rq, "/dev/dax0.0", root);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.base, 0);
	ck_assert_uint_eq(p.size, 1073741824);
	ck_assert_uint_eq(p.granule_shift, 21);
	ck_assert_int_eq(p.fd, -1);
	ck_assert_str_eq(p.identity,
			 "devdax dax0.0 uuid=" DAX_UUID " size=1073741824");
	ck_assert_str_eq(p.info,
			 "align 2097152, target_node 1, resource 0x380000000");
	potad__probe_release(&p);

	/* The bare name works as well; granules at or above align. */
	dax_req(&rq, "dax0.0", root);
	rq.granule = 1ull << 30;
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.granule_shift, 30);
	potad__probe_release(&p);
	rq.granule = 4096;
	EXPECT(&rq, &p, -EINVAL, "alignment 2097152");
	rq.granule = 0;
	rq.discard = true;
	EXPECT(&rq, &p, -EOPNOTSUPP, "device-DAX has no discard");

	dax_req(&rq, "/dev/dax1.0", root);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.size, 536870912);
	ck_assert_uint_eq(p.granule_shift, 21);
	ck_assert_str_eq(p.identity,
			 "devdax dax1.0 uuid=ns-uuid size=536870912");
	CONTAINS(p.info, "(default: no align file)");
	potad__probe_release(&p);

	dax_req(&rq, "/dev/dax9.9", root);
	EXPECT(&rq, &p, -ENOENT, "no device-DAX device dax9.9 (looked in");
	dax_req(&rq, "/dev/sda", root);
	EXPECT(&rq, &p, -EINVAL, "not a device-DAX name");
	dax_req(&rq, "/dev/dax0.0/..", root);
	EXPECT(&rq, &p, -EINVAL, "not a device-DAX name");
}
END_TEST

/* --- pcibar ------------------------------------------------------------ */

static void pci_req(struct potad_probe_req *rq, const char *pci, unsigned bar,
		    const char *root)
{
	memset(rq, 0, sizeof(*rq));
	rq->kind = POTAD__V1__SPACE_KIND__PCIBAR;
	rq->pci = pci;
	rq->bar = bar;
	rq->sysfs_root = root;
}

START_TEST(pcibar_fake)
{
	static const char *const bad[] = {
	    "0:01:00.0",   "0000:01:00",    "0000:01:00.8", "0000:01:20.0",
	    "0000:1:00.0", "0000:01:00.0 ", "000g:01:00.0", ""};
	char root[512], p[PATH_MAX];
	struct potad_probe_req rq;
	struct potad_probe pr;

	tpath(root, sizeof(root), "sys-pci");
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:01:00.0/resource",
		 root);
	/* BAR 0: 256 MiB, prefetchable, 64-bit; BAR 1 the upper half of
	 * BAR 0 (empty); BAR 2 I/O ports; the rest empty; the ROM. */
	put(p, "0x000000f000000000 0x000000f00fffffff 0x000000000014220c\n"
	       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
	       "0x000000000000e000 0x000000000000e07f 0x0000000000040101\n"
	       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
	       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
	       "0x00000000fb000000 0x00000000fbffffff 0x0000000000040200\n"
	       "0x00000000fc000000 0x00000000fc07ffff 0x0000000000046200\n");
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:01:00.0/vendor", root);
	put(p, "0x10de\n");
	snprintf(p, sizeof(p), "%s/bus/pci/devices/0000:01:00.0/device", root);
	put(p, "0x2330\n");

	pci_req(&rq, "0000:01:00.0", 0, root);
	EXPECT(&rq, &pr, 0, NULL);
	ck_assert_uint_eq(pr.base, 0xf000000000ull);
	ck_assert_uint_eq(pr.size, 0x10000000ull);
	ck_assert_uint_eq(pr.granule_shift, 12);
	ck_assert_int_eq(pr.fd, -1);
	ck_assert_str_eq(pr.identity,
			 "pci 0000:01:00.0 vendor=0x10de device=0x2330 bar=0 "
			 "start=0xf000000000 size=0x10000000");
	ck_assert_str_eq(pr.info, "memory, prefetchable yes, 64-bit yes");
	potad__probe_release(&pr);

	/* A 2 MiB granule divides base. */
	pci_req(&rq, "0000:01:00.0", 0, root);
	rq.granule = 2 * MiB;
	EXPECT(&rq, &pr, 0, NULL);
	ck_assert_uint_eq(pr.granule_shift, 21);
	potad__probe_release(&pr);
	rq.granule = 3;
	EXPECT(&rq, &pr, -EINVAL, "power of two");
	rq.granule = 0;
	rq.discard = true;
	EXPECT(&rq, &pr, -EOPNOTSUPP, "no discard");

	pci_req(&rq, "0000:01:00.0", 1, root);
	EXPECT(&rq, &pr, -EINVAL, "BAR 1 of 0000:01:00.0 is empty");
	pci_req(&rq, "0000:01:00.0", 3, root);
	EXPECT(&rq, &pr, -EINVAL, "is empty");
	pci_req(&rq, "0000:01:00.0", 6, root);
	EXPECT(&rq, &pr, -EINVAL, "BARs 0 to 5");

	/* I/O ports: 128 of them, too few for a 4 KiB granule. */
	pci_req(&rq, "0000:01:00.0", 2, root);
	EXPECT(&rq, &pr, -EINVAL, "smaller granule");
	rq.granule = 16;
	EXPECT(&rq, &pr, 0, NULL);
	ck_assert_uint_eq(pr.base, 0xe000);
	ck_assert_uint_eq(pr.size, 0x80);
	CONTAINS(pr.info, "io, prefetchable no, 64-bit no");
	potad__probe_release(&pr);

	/* A BAR whose start the granule does not divide. */
	pci_req(&rq, "0000:01:00.0", 5, root);
	rq.granule = 1ull << 30;
	EXPECT(&rq, &pr, -EINVAL, "not a multiple");

	pci_req(&rq, "0000:02:00.0", 0, root);
	EXPECT(&rq, &pr, -ENOENT, "no PCI device 0000:02:00.0");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pci_req(&rq, bad[i], 0, root);
		EXPECT(&rq, &pr, -EINVAL, "is not a PCI address");
	}
	pci_req(&rq, NULL, 0, root);
	EXPECT(&rq, &pr, -EINVAL, "is not a PCI address");
}
END_TEST

/* The first memory BAR of the real sysfs that a 4 KiB granule fits. */
static bool real_bar(char *pci, size_t len, unsigned *bar, uint64_t *base,
		     uint64_t *size)
{
	FILE *ls = popen("ls /sys/bus/pci/devices 2>/dev/null", "r");
	char name[256], file[PATH_MAX], line[256];
	bool found = false;

	if (!ls)
		return false;
	while (!found && fgets(name, sizeof(name), ls)) {
		FILE *f;

		name[strcspn(name, "\n")] = 0;
		snprintf(file, sizeof(file), "/sys/bus/pci/devices/%s/resource",
			 name);
		f = fopen(file, "r");
		for (unsigned i = 0; f && i < 6 && fgets(line, sizeof(line), f);
		     i++) {
			uint64_t s, e, fl;

			if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64, &s,
				   &e, &fl) != 3 ||
			    !(fl & 0x200) || e <= s || s % 4096 ||
			    e - s + 1 < 4096)
				continue;
			snprintf(pci, len, "%s", name);
			*bar = i;
			*base = s;
			*size = e - s + 1;
			found = true;
			break;
		}
		if (f)
			fclose(f);
	}
	pclose(ls);
	return found;
}

START_TEST(pcibar_real)
{
	char pci[256], want[512];
	struct potad_probe_req rq;
	struct potad_probe p;
	uint64_t base, size;
	unsigned bar;

	if (!real_bar(pci, sizeof(pci), &bar, &base, &size)) {
		skip("no PCI device with a memory BAR in /sys/bus/pci/devices");
		return;
	}
	pci_req(&rq, pci, bar, NULL);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.base, base);
	ck_assert_uint_eq(p.size, size);
	snprintf(want, sizeof(want),
		 "bar=%u start=0x%" PRIx64 " size=0x%" PRIx64, bar, base, size);
	CONTAINS(p.identity, want);
	CONTAINS(p.info, "memory");
	printf("pcibar: %s -> %s; %s\n", pci, p.identity, p.info);
	potad__probe_release(&p);
}
END_TEST

/* --- file and the rest ------------------------------------------------- */

static void file_req(struct potad_probe_req *rq, const char *path)
{
	memset(rq, 0, sizeof(*rq));
	rq->kind = POTAD__V1__SPACE_KIND__FILE;
	rq->path = path;
}

START_TEST(file_space)
{
	char path[PATH_MAX], want[128];
	struct potad_probe_req rq;
	struct potad_probe p;
	uint64_t before, after;
	struct stat st;

	tpath(path, sizeof(path), "container");
	fill(path, 1 * MiB, 0x5a);
	ck_assert_int_eq(stat(path, &st), 0);

	file_req(&rq, path);
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_uint_eq(p.base, 0);
	ck_assert_uint_eq(p.size, 1 * MiB);
	ck_assert_uint_eq(p.granule_shift, 12);
	ck_assert_int_eq(p.fd, -1);
	snprintf(want, sizeof(want), "ino=%llu size=1048576",
		 (unsigned long long)st.st_ino);
	CONTAINS(p.identity, want);
	CONTAINS(p.identity, "file dev=");
	CONTAINS(p.info, "blocks allocated");
	potad__probe_release(&p);

	rq.granule = 2 * MiB;
	EXPECT(&rq, &p, -EINVAL, "less than one");
	rq.granule = 3;
	EXPECT(&rq, &p, -EINVAL, "power of two");

	/* Discard keeps a writable descriptor that punches holes. */
	file_req(&rq, path);
	rq.discard = true;
	EXPECT(&rq, &p, 0, NULL);
	ck_assert_int_ge(p.fd, 0);
	ck_assert(p.can_discard);
	before = blocks(path);
	ck_assert_int_eq(potad__discard(POTAD__V1__SPACE_KIND__FILE, p.fd,
					256 * 1024, 512 * 1024),
			 0);
	after = blocks(path);
	ck_assert_msg(before - after >= 512 * 1024 / 512,
		      "blocks after the punch: expected at most %" PRIu64
		      ", got %" PRIu64,
		      before - 512 * 1024 / 512, after);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 1 * MiB);
	ck_assert_int_eq(
	    potad__discard(POTAD__V1__SPACE_KIND__SWAP, p.fd, 0, 4096),
	    -EOPNOTSUPP);
	potad__probe_release(&p);
	ck_assert_int_eq(
	    potad__discard(POTAD__V1__SPACE_KIND__FILE, -1, 0, 4096), -EBADF);

	file_req(&rq, tmp);
	EXPECT(&rq, &p, -EINVAL, "not a regular file");
	rq.discard = true;
	EXPECT(&rq, &p, -EINVAL, "not a regular file");
	tpath(path, sizeof(path), "missing");
	file_req(&rq, path);
	EXPECT(&rq, &p, -ENOENT, "does not exist");
	file_req(&rq, "/dev/null");
	EXPECT(&rq, &p, -EINVAL, "not a regular file");
}
END_TEST

START_TEST(other_kinds)
{
	struct potad_probe_req rq = {.kind = POTAD__V1__SPACE_KIND__RANGE};
	struct potad_probe p;

	EXPECT(&rq, &p, -EINVAL, "range");
	rq.kind = 99;
	rq.path = "/tmp";
	EXPECT(&rq, &p, -EINVAL, "unknown space kind 99");
	rq.kind = POTAD__V1__SPACE_KIND__FILE;
	rq.path = NULL;
	EXPECT(&rq, &p, -EINVAL, "no path");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("probe");
	TCase *tc = tcase_create("probe");

	tcase_add_test(tc, swap_clean);
	tcase_add_test(tc, swap_bad_pages);
	tcase_add_test(tc, swap_byteswapped);
	tcase_add_test(tc, swap_refused);
	tcase_add_test(tc, blockdev_plain);
	tcase_add_test(tc, blockdev_signatures);
	tcase_add_test(tc, blockdev_discard);
	tcase_add_test(tc, blockdev_sysfs);
	tcase_add_test(tc, devdax_fake);
	tcase_add_test(tc, pcibar_fake);
	tcase_add_test(tc, pcibar_real);
	tcase_add_test(tc, file_space);
	tcase_add_test(tc, other_kinds);
	suite_add_tcase(s, tc);
	return s;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

/* Detach what the tests attached, even after a failure, then remove the
 * scratch directory. */
static void cleanup(void)
{
	char list[PATH_MAX], mnt[PATH_MAX], dev[64];
	FILE *f;

	tpath(mnt, sizeof(mnt), "mnt");
	umount2(mnt, MNT_DETACH);
	tpath(list, sizeof(list), "loops");
	f = fopen(list, "r");
	while (f && fgets(dev, sizeof(dev), f)) {
		dev[strcspn(dev, "\n")] = 0;
		if (sh("losetup -d %s", dev))
			fprintf(stderr, "check_probe: could not detach %s\n",
				dev);
	}
	if (f)
		fclose(f);
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const char *dir = getenv("TMPDIR");
	SRunner *sr;
	int failed;

	snprintf(tmp, sizeof(tmp), "%s/check_probe.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	if (!mkdtemp(tmp)) {
		printf("SKIP: cannot make a scratch directory %s: %s\n", tmp,
		       strerror(errno));
		return 77;
	}
	sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
