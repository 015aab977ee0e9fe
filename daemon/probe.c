/* SPDX-License-Identifier: MIT */
/* Probes: what a swap area, block device, device-DAX device, PCI BAR or
 * file offers as a space, and whether it is safe to take. */
#define _GNU_SOURCE
#include <blkid.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "potad.pb-c.h"
#include "probe.h"

/*
 * A probe only reads: headers through libblkid and pread, sizes through
 * ioctls, facts through sysfs.  It never writes to what it probes, so a
 * refused probe leaves the device as it was.
 *
 * Each kind answers three questions.  What space does it offer (base,
 * size, a granule no finer than the device's own unit)?  Is someone else
 * using it (the kernel swapping to it, a mount or device-mapper holding it
 * exclusively, a filesystem on it)?  And how will we know it again after a
 * restart (identity: the most stable name the kernel gives, a UUID or a
 * WWID before a device number, and the size, so that a device swapped
 * for another of a different size is noticed)?
 *
 * Everything here runs on the daemon's thread pool, several probes at
 * once: no static buffers, strerror_r rather than strerror, and every
 * descriptor and blkid probe released on every path.
 */

#define MiB ((uint64_t)1 << 20)

/* Linux's swap header (union swap_header in <linux/swap.h>): the
 * signature ends the first page, the fields start 1 KiB in. */
#define SWAP_MAGIC "SWAPSPACE2"
#define SWAP_MAGIC_LEN 10
#define SWAP_VERSION 1024
#define SWAP_LAST_PAGE 1028
#define SWAP_NR_BAD 1032
#define SWAP_LABEL 1052
#define SWAP_BADPAGES 1536

/* <linux/ioport.h> flags in a PCI device's resource file. */
#define IORESOURCE_IO 0x100
#define IORESOURCE_MEM 0x200
#define IORESOURCE_PREFETCH 0x2000
#define IORESOURCE_MEM_64 0x100000

static int say(char *msg, size_t len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	if (msg && len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* snprintf for fields where a cut is expected and harmless (a long path
 * in a 256-byte identity is cut the same way at every probe). */
static void fmt(char *buf, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, len, f, ap);
	va_end(ap);
}

/* Append tail to id, cutting id short if need be: the size at the end is
 * what notices a device replaced by a larger or smaller one. */
static void append_tail(char *id, size_t cap, const char *tail)
{
	size_t n = strlen(id), t = strlen(tail);

	if (t >= cap)
		return;
	if (n + t >= cap)
		n = cap - 1 - t;
	memcpy(id + n, tail, t + 1);
}

/* strerror() may share one buffer between threads. */
static const char *errstr(int err, char *buf, size_t len)
{
	return strerror_r(err, buf, len);
}

/* A failed system call on path, as -errno and "what path: reason". */
static int sys_failed(char *msg, size_t len, const char *what, const char *path)
{
	int err = errno;
	char eb[64];

	return say(msg, len, -err, "%s %s: %s", what, path,
		   errstr(err, eb, sizeof(eb)));
}

/* A failed open or stat of a path the caller gave us, as -errno and a
 * line that says what to do about it. */
static int open_failed(char *msg, size_t len, const char *path, int err)
{
	char eb[64];

	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return say(msg, len, -ENOENT,
			   "%s does not exist; check the path", path);
	case EROFS:
		return say(msg, len, -EACCES,
			   "%s is read-only; potad needs to open it for "
			   "writing: make it writable (blockdev --setrw)",
			   path);
	case EACCES:
	case EPERM:
		return say(msg, len, -EACCES,
			   "%s: permission denied (%s); potad needs read and "
			   "write access to it: run it as root or grant access",
			   path, errstr(err, eb, sizeof(eb)));
	default:
		return say(msg, len, -err, "cannot open %s: %s", path,
			   errstr(err, eb, sizeof(eb)));
	}
}

/* Replace control characters, so that strings read from devices and
 * sysfs keep messages and identities on one line. */
static void clean(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* Read the small file the printf-style path names into buf (NUL
 * terminated, surrounding white space removed, control characters
 * replaced).  Returns its length or -errno. */
static int readf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int readf(char *buf, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	ssize_t n;
	size_t skip = 0;
	int fd, n2, rc;

	va_start(ap, fmt);
	n2 = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n2 < 0 || (size_t)n2 >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	buf[n] = 0;
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = 0;
	while (isspace((unsigned char)buf[skip]))
		skip++;
	memmove(buf, buf + skip, (size_t)n - skip + 1);
	clean(buf);
	return (int)((size_t)n - skip);
}

/* Parse all of s as an unsigned number in base (0: C prefixes). */
static int parse_u64(const char *s, int base, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, base);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The granule: req, or def when req is 0.  It must be a power of two (the
 * engine's unit) and a multiple of unit, the device's own block, so that
 * no extent splits a block the device reads and writes whole. */
static int pick_granule(uint64_t req, uint64_t unit, uint64_t def,
			unsigned *shift)
{
	uint64_t g = req ? req : def;

	if (!pow2(g) || !pow2(unit) || g < unit)
		return -EINVAL;
	*shift = (unsigned)__builtin_ctzll(g);
	return 0;
}

/* What libblkid found on a device or file. */
struct sig {
	bool found, ambivalent;
	char type[32], usage[32], pttype[32], uuid[64];
};

static void sig_value(blkid_probe pr, const char *name, char *buf, size_t len)
{
	const char *v;

	if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0) {
		snprintf(buf, len, "%s", v);
		clean(buf);
	}
}

/* Ask libblkid which superblocks (and, with parts, partition tables) fd
 * carries.  Returns 0 or -errno. */
static int blkid_scan(int fd, bool parts, struct sig *s)
{
	blkid_probe pr;
	int rc;

	memset(s, 0, sizeof(*s));
	pr = blkid_new_probe();
	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, 0, 0)) {
		rc = -EIO;
		goto out_free;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(
	    pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID | BLKID_SUBLKS_USAGE);
	blkid_probe_enable_partitions(pr, parts);
	rc = blkid_do_safeprobe(pr);
	if (rc == -2) {
		/* Signatures of two different kinds: libblkid will not
		 * choose, and neither will we. */
		s->found = s->ambivalent = true;
		rc = 0;
		goto out_free;
	}
	if (rc < 0) {
		rc = -EIO;
		goto out_free;
	}
	if (rc == 0) {
		sig_value(pr, "TYPE", s->type, sizeof(s->type));
		sig_value(pr, "USAGE", s->usage, sizeof(s->usage));
		sig_value(pr, "PTTYPE", s->pttype, sizeof(s->pttype));
		sig_value(pr, "UUID", s->uuid, sizeof(s->uuid));
		s->found = s->type[0] || s->pttype[0];
	}
	rc = 0;
out_free:
	blkid_free_probe(pr);
	return rc;
}

/* "an ext4 filesystem", "a crypto_LUKS signature", "a dos partition
 * table": what a refusal names. */
static void sig_describe(const struct sig *s, char *buf, size_t len)
{
	const char *what = s->type[0] ? s->type : s->pttype;
	const char *an = strchr("aeiouAEIOU", what[0]) ? "an" : "a";

	if (s->ambivalent)
		snprintf(buf, len, "several conflicting signatures");
	else if (!s->type[0])
		snprintf(buf, len, "a %s partition table", s->pttype);
	else if (!strcmp(s->usage, "filesystem"))
		snprintf(buf, len, "%s %s filesystem", an, what);
	else
		snprintf(buf, len, "%s %s signature", an, what);
}

/* Undo the octal escapes (\040 for a space) of a /proc/swaps path. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				    (s[3] - '0'));
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = 0;
}

/* Whether the kernel swaps to what st describes: 1 yes, 0 no, or -errno.
 * Compared by identity, not by name, as the kernel may list another path
 * to the same file or device. */
static int swap_in_use(const char *proc, const struct stat *st)
{
	char *line = NULL;
	size_t cap = 0;
	bool header = true;
	int rc = 0;
	FILE *f;

	f = fopen(proc, "re");
	if (!f)
		/* No /proc/swaps: a kernel built without swap. */
		return errno == ENOENT ? 0 : -errno;
	while (getline(&line, &cap, f) > 0) {
		struct stat s;
		char *p = line;

		if (header) {
			header = false;
			continue;
		}
		p[strcspn(p, " \t\n")] = 0;
		unescape(p);
		if (!*p || stat(p, &s))
			continue;
		if (S_ISBLK(st->st_mode)
			? S_ISBLK(s.st_mode) && s.st_rdev == st->st_rdev
			: S_ISREG(s.st_mode) && s.st_dev == st->st_dev &&
			      s.st_ino == st->st_ino) {
			rc = 1;
			break;
		}
	}
	if (!rc && ferror(f))
		rc = -EIO;
	free(line);
	fclose(f);
	return rc;
}

static uint32_t get32(const uint8_t *p, bool swapped)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return swapped ? __builtin_bswap32(v) : v;
}

static int cmp32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Turn the header's bad page numbers (checked: 1..last_page) into sorted
 * byte ranges, one per run of adjacent pages. */
static int swap_bad_ranges(uint32_t *pages, uint32_t n, uint64_t psz,
			   struct potad_probe *out)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(pages, n, sizeof(*pages), cmp32);
	out->bad = calloc(n, sizeof(*out->bad));
	if (!out->bad)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = pages[i] * psz;

		if (k && out->bad[k - 1][0] + out->bad[k - 1][1] >= off) {
			/* Adjacent (or listed twice): extend the last. */
			out->bad[k - 1][1] = off + psz - out->bad[k - 1][0];
			continue;
		}
		out->bad[k][0] = off;
		out->bad[k][1] = psz;
		k++;
	}
	out->nbad = k;
	return 0;
}

static int probe_swap(const struct potad_probe_req *rq, struct potad_probe *out,
		      char *msg, size_t len)
{
	const char *path = rq->path;
	uint64_t psz = (uint64_t)sysconf(_SC_PAGESIZE), devsize;
	uint32_t version, last, nbad, *pages = NULL;
	uint64_t maxbad = (psz - SWAP_MAGIC_LEN - SWAP_BADPAGES) / 4;
	char label[17], eb[64], found[96];
	bool swapped;
	uint8_t *page = NULL;
	struct stat st;
	struct sig sig;
	ssize_t n;
	int fd, rc;

	if (rq->discard)
		return say(msg, len, -EOPNOTSUPP,
			   "%s is a swap area, which potad never discards "
			   "(punching holes in a swap file breaks it); leave "
			   "discard off",
			   path);
	/* O_NONBLOCK: a FIFO given by mistake must not hang the probe. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return open_failed(msg, len, path, errno);
	if (fstat(fd, &st)) {
		rc = open_failed(msg, len, path, errno);
		goto out_close;
	}
	if (S_ISREG(st.st_mode)) {
		devsize = (uint64_t)st.st_size;
		if (devsize < 2 * psz) {
			rc = say(msg, len, -EINVAL,
				 "%s is %" PRIu64 " bytes, too small to hold "
				 "a swap area; make it larger and run mkswap",
				 path, devsize);
			goto out_close;
		}
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &devsize)) {
			rc = sys_failed(msg, len, "cannot size", path);
			goto out_close;
		}
	} else {
		rc = say(msg, len, -EINVAL,
			 "%s is neither a file nor a block device, so it "
			 "cannot hold a swap area",
			 path);
		goto out_close;
	}

	rc = blkid_scan(fd, false, &sig);
	if (rc) {
		rc = say(msg, len, rc, "libblkid could not read %s: %s", path,
			 errstr(-rc, eb, sizeof(eb)));
		goto out_close;
	}
	if (sig.found && !strcmp(sig.type, "swsuspend")) {
		rc = say(msg, len, -EINVAL,
			 "%s holds a hibernation image (swsuspend signature), "
			 "not a free swap area; resume from it, or run mkswap "
			 "on it if the image is not wanted",
			 path);
		goto out_close;
	}
	if (!sig.found || strcmp(sig.type, "swap")) {
		if (sig.found)
			sig_describe(&sig, found, sizeof(found));
		rc = say(msg, len, -EINVAL,
			 "%s is not a swap area: blkid found %s on it; run "
			 "mkswap on it first",
			 path, sig.found ? found : "no signature");
		goto out_close;
	}

	/* libblkid said swap; read the header ourselves for the fields it
	 * does not report (last_page and the bad pages). */
	page = malloc(psz);
	if (!page) {
		rc = say(msg, len, -ENOMEM, "out of memory probing %s", path);
		goto out_close;
	}
	n = pread(fd, page, psz, 0);
	if (n < 0) {
		rc = sys_failed(msg, len, "cannot read", path);
		goto out_free;
	}
	if ((uint64_t)n < psz ||
	    memcmp(page + psz - SWAP_MAGIC_LEN, SWAP_MAGIC, SWAP_MAGIC_LEN)) {
		rc = say(msg, len, -EINVAL,
			 "%s has no " SWAP_MAGIC " signature at the end of "
			 "its first %" PRIu64 "-byte page (made for another "
			 "page size?); run mkswap on it on this machine",
			 path, psz);
		goto out_free;
	}
	version = get32(page + SWAP_VERSION, false);
	/* mkswap writes native byte order; a header from a machine of the
	 * other endianness reads as version 0x01000000. */
	swapped = version == 0x01000000;
	version = get32(page + SWAP_VERSION, swapped);
	last = get32(page + SWAP_LAST_PAGE, swapped);
	nbad = get32(page + SWAP_NR_BAD, swapped);
	if (version != 1) {
		rc = say(msg, len, -EINVAL,
			 "%s has swap header version %" PRIu32
			 ", only version 1 is supported; run mkswap on it",
			 path, version);
		goto out_free;
	}
	if (last < 1) {
		rc = say(msg, len, -EINVAL,
			 "%s's swap header has no usable page (last_page 0); "
			 "run mkswap on it",
			 path);
		goto out_free;
	}
	if (nbad > maxbad) {
		rc = say(msg, len, -EINVAL,
			 "%s's swap header lists %" PRIu32 " bad pages, more "
			 "than the %" PRIu64 " a header can hold: it is "
			 "damaged; run mkswap on it",
			 path, nbad, maxbad);
		goto out_free;
	}
	if (((uint64_t)last + 1) * psz > devsize) {
		rc = say(msg, len, -EINVAL,
			 "%s's swap header says last_page %" PRIu32 " (%" PRIu64
			 " bytes) but it is only %" PRIu64
			 " bytes: it was truncated or the header is damaged; "
			 "run mkswap on it",
			 path, last, ((uint64_t)last + 1) * psz, devsize);
		goto out_free;
	}
	if (nbad && !(pages = malloc(nbad * sizeof(*pages)))) {
		rc = say(msg, len, -ENOMEM, "out of memory probing %s", path);
		goto out_free;
	}
	for (uint32_t i = 0; i < nbad; i++) {
		pages[i] = get32(page + SWAP_BADPAGES + 4 * i, swapped);
		if (pages[i] < 1 || pages[i] > last) {
			rc = say(msg, len, -EINVAL,
				 "%s's swap header lists bad page %" PRIu32
				 ", outside pages 1..%" PRIu32
				 ": it is damaged; run mkswap on it",
				 path, pages[i], last);
			goto out_free;
		}
	}
	if (pick_granule(rq->granule, psz, psz, &out->granule_shift)) {
		rc = say(msg, len, -EINVAL,
			 "granule %" PRIu64 " does not suit the swap area "
			 "%s: it must be a power-of-two multiple of the page "
			 "size %" PRIu64,
			 rq->granule, path, psz);
		goto out_free;
	}
	rc = swap_in_use(rq->proc_swaps ? rq->proc_swaps : "/proc/swaps", &st);
	if (rc < 0) {
		rc = say(msg, len, rc,
			 "cannot read %s to check whether %s is in use: %s",
			 rq->proc_swaps ? rq->proc_swaps : "/proc/swaps", path,
			 errstr(-rc, eb, sizeof(eb)));
		goto out_free;
	}
	if (rc) {
		rc = say(msg, len, -EBUSY,
			 "%s is in use as swap by the kernel (listed in %s); "
			 "swapoff it first",
			 path, rq->proc_swaps ? rq->proc_swaps : "/proc/swaps");
		goto out_free;
	}
	rc = swap_bad_ranges(pages, nbad, psz, out);
	if (rc) {
		rc = say(msg, len, rc, "out of memory probing %s", path);
		goto out_free;
	}

	out->base = psz;
	out->size = last * psz;
	out->fd = -1;
	if (sig.uuid[0])
		snprintf(out->identity, sizeof(out->identity), "swap uuid=%s",
			 sig.uuid);
	else if (S_ISBLK(st.st_mode))
		/* A device node's inode lives in devtmpfs and changes at
		 * every boot; the device number is what stays. */
		snprintf(out->identity, sizeof(out->identity), "swap dev=%u:%u",
			 major(st.st_rdev), minor(st.st_rdev));
	else
		snprintf(out->identity, sizeof(out->identity),
			 "swap dev=%u:%u ino=%llu", major(st.st_dev),
			 minor(st.st_dev), (unsigned long long)st.st_ino);
	memcpy(label, page + SWAP_LABEL, 16);
	label[16] = 0;
	clean(label);
	snprintf(out->info, sizeof(out->info),
		 "pagesize %" PRIu64 ", last_page %" PRIu32 ", %" PRIu32
		 " bad pages%s%s%s",
		 psz, last, nbad, label[0] ? ", label " : "", label,
		 swapped ? ", byte-swapped header" : "");
	rc = 0;
out_free:
	free(pages);
	free(page);
out_close:
	close(fd);
	return rc;
}

/* The sysfs directory of a block device, by device number (robust
 * against renamed or duplicated nodes under /dev), and its kernel name.
 * Returns 0, or -errno when sysfs does not know it. */
static int blk_sysfs(const char *root, dev_t rdev, char *dir, size_t dlen,
		     char *name, size_t nlen)
{
	char link[PATH_MAX];
	const char *base;
	ssize_t n;
	int w;

	w = snprintf(dir, dlen, "%s/dev/block/%u:%u", root, major(rdev),
		     minor(rdev));
	if (w < 0 || (size_t)w >= dlen)
		return -ENAMETOOLONG;
	n = readlink(dir, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	base = strrchr(link, '/');
	fmt(name, nlen, "%s", base ? base + 1 : link);
	return 0;
}

/* Entries of dir other than . and .. that pass keep (NULL: all), the
 * first one's name in first.  Returns the count, or -errno. */
static int dir_count(const char *dir, bool (*keep)(const char *, const char *),
		     char *first, size_t flen)
{
	struct dirent *e;
	int n = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (keep && !keep(dir, e->d_name))
			continue;
		if (!n++)
			snprintf(first, flen, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

/* A partition's sysfs directory sits inside its disk's and holds a
 * "partition" file. */
static bool is_partition(const char *dir, const char *name)
{
	char p[PATH_MAX];
	int w = snprintf(p, sizeof(p), "%s/%s/partition", dir, name);

	return w > 0 && (size_t)w < sizeof(p) && access(p, F_OK) == 0;
}

/* The most stable name sysfs gives the disk at dir (a partition's disk is
 * its parent): a WWID, a serial number, a loop device's backing file, or
 * failing those the device number. */
static void blk_identity(const char *disk, dev_t rdev, char *buf, size_t len)
{
	static const char *const attr[][2] = {{"device/wwid", "wwid"},
					      {"wwid", "wwid"},
					      {"device/serial", "serial"},
					      {"serial", "serial"}};
	char v[PATH_MAX];
	struct stat st;

	for (size_t i = 0; disk && i < sizeof(attr) / sizeof(attr[0]); i++) {
		if (readf(v, sizeof(v), "%s/%s", disk, attr[i][0]) > 0) {
			fmt(buf, len, "blockdev %s=%s", attr[i][1], v);
			return;
		}
	}
	if (disk && readf(v, sizeof(v), "%s/loop/backing_file", disk) > 0) {
		if (stat(v, &st) == 0)
			fmt(buf, len, "blockdev loop backing=%s ino=%llu", v,
			    (unsigned long long)st.st_ino);
		else
			fmt(buf, len, "blockdev loop backing=%s", v);
		return;
	}
	snprintf(buf, len, "blockdev dev=%u:%u", major(rdev), minor(rdev));
}

static int probe_blockdev(const struct potad_probe_req *rq,
			  struct potad_probe *out, char *msg, size_t len)
{
	const char *path = rq->path;
	const char *root = rq->sysfs_root ? rq->sysfs_root : "/sys";
	char dir[PATH_MAX], disk[PATH_MAX + 16], name[NAME_MAX + 1] = "";
	char v[64], eb[64], found[96], first[NAME_MAX + 1] = "", tail[128];
	char forced[64] = "";
	unsigned pbsz = 0, iomin = 0, ioopt = 0;
	uint64_t size, dmax = 0;
	bool sys, part = false;
	struct stat st;
	struct sig sig;
	int fd, lbs, rc;

	/* Check the type before opening: opening some character devices
	 * has side effects. */
	if (stat(path, &st))
		return open_failed(msg, len, path, errno);
	if (!S_ISBLK(st.st_mode))
		return say(msg, len, -EINVAL, "%s is not a block device", path);
	/* O_EXCL on a block device fails while it is mounted or claimed
	 * by device-mapper, md or another exclusive opener, and keeps
	 * them all off while we hold it. */
	fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0 && errno == EBUSY)
		return say(msg, len, -EBUSY,
			   "%s is in use (mounted, or held by another "
			   "exclusive opener such as device-mapper, md or "
			   "another space); unmount or release it first",
			   path);
	if (fd < 0)
		return open_failed(msg, len, path, errno);
	if (fstat(fd, &st)) {
		rc = open_failed(msg, len, path, errno);
		goto out_close;
	}
	if (!S_ISBLK(st.st_mode)) {
		rc = say(msg, len, -EINVAL, "%s is not a block device", path);
		goto out_close;
	}
	if (ioctl(fd, BLKGETSIZE64, &size) || ioctl(fd, BLKSSZGET, &lbs)) {
		rc = sys_failed(msg, len, "cannot size", path);
		goto out_close;
	}
	/* Facts for people only: a kernel without them reports 0. */
	ioctl(fd, BLKPBSZGET, &pbsz);
	ioctl(fd, BLKIOMIN, &iomin);
	ioctl(fd, BLKIOOPT, &ioopt);
	if (pick_granule(rq->granule, (uint64_t)lbs, (uint64_t)lbs,
			 &out->granule_shift)) {
		rc = say(msg, len, -EINVAL,
			 "granule %" PRIu64 " does not suit %s: it must be a "
			 "power-of-two multiple of its %d-byte logical sector",
			 rq->granule, path, lbs);
		goto out_close;
	}
	if (size < (1ull << out->granule_shift)) {
		rc = say(msg, len, -EINVAL,
			 "%s is %" PRIu64 " bytes, less than one %llu-byte "
			 "granule",
			 path, size, 1ull << out->granule_shift);
		goto out_close;
	}

	rc = blkid_scan(fd, true, &sig);
	if (rc) {
		rc = say(msg, len, rc, "libblkid could not read %s: %s", path,
			 errstr(-rc, eb, sizeof(eb)));
		goto out_close;
	}
	sig_describe(&sig, found, sizeof(found));
	if (sig.found && !rq->force) {
		rc = say(msg, len, -EBUSY,
			 "%s holds %s%s%s%s; pass --force to take it anyway",
			 path, found, sig.uuid[0] ? " (UUID " : "", sig.uuid,
			 sig.uuid[0] ? ")" : "");
		goto out_close;
	}

	sys = blk_sysfs(root, st.st_rdev, dir, sizeof(dir), name,
			sizeof(name)) == 0;
	if (sys) {
		snprintf(disk, sizeof(disk), "%s/partition", dir);
		part = access(disk, F_OK) == 0;
		snprintf(disk, sizeof(disk), part ? "%s/.." : "%s", dir);
	}
	if (sys && !part && !rq->force &&
	    dir_count(dir, is_partition, first, sizeof(first)) > 0) {
		rc = say(msg, len, -EBUSY,
			 "%s (%s) has partitions (%s, ...); take a partition "
			 "instead, or pass --force to take the whole disk",
			 path, name, first);
		goto out_close;
	}
	if (sys && !rq->force) {
		char h[PATH_MAX + 16];

		snprintf(h, sizeof(h), "%s/holders", dir);
		if (dir_count(h, NULL, first, sizeof(first)) > 0) {
			rc = say(msg, len, -EBUSY,
				 "%s (%s) is held by %s (device-mapper, md "
				 "or bcache on top of it); release it first "
				 "or pass --force",
				 path, name, first);
			goto out_close;
		}
	}
	if (sys && readf(v, sizeof(v), "%s/queue/discard_max_bytes", disk) > 0)
		parse_u64(v, 10, &dmax);
	out->can_discard = dmax > 0;
	if (rq->discard && !out->can_discard) {
		rc = say(msg, len, -EOPNOTSUPP,
			 "%s does not support discard (queue/"
			 "discard_max_bytes is 0%s); leave discard off",
			 path, sys ? "" : " or not in sysfs");
		goto out_close;
	}

	blk_identity(sys ? disk : NULL, st.st_rdev, out->identity,
		     sizeof(out->identity));
	/* A partition: the disk's name and which partition of it. */
	if (part && readf(v, sizeof(v), "%s/partition", dir) > 0)
		fmt(tail, sizeof(tail), " part=%s size=%" PRIu64, v, size);
	else
		fmt(tail, sizeof(tail), " size=%" PRIu64, size);
	append_tail(out->identity, sizeof(out->identity), tail);
	if (sig.ambivalent)
		snprintf(forced, sizeof(forced),
			 ", conflicting signatures (forced)");
	else if (sig.type[0])
		snprintf(forced, sizeof(forced), ", fs %s (forced)", sig.type);
	else if (sig.pttype[0])
		snprintf(forced, sizeof(forced), ", pt %s (forced)",
			 sig.pttype);
	snprintf(out->info, sizeof(out->info),
		 "logical %d, physical %u, io_min %u, io_opt %u, discard %s%s",
		 lbs, pbsz, iomin, ioopt, out->can_discard ? "yes" : "no",
		 forced);
	out->base = 0;
	out->size = size;
	/* Held until release: the O_EXCL claim is what keeps a mount off
	 * the device while the space exists. */
	out->fd = fd;
	return 0;
out_close:
	close(fd);
	return rc;
}

static int probe_devdax(const struct potad_probe_req *rq,
			struct potad_probe *out, char *msg, size_t len)
{
	const char *root = rq->sysfs_root ? rq->sysfs_root : "/sys";
	const char *name = strrchr(rq->path, '/');
	char dir[PATH_MAX], v[128], uuid[128] = "";
	uint64_t size, align = 2 * MiB;
	bool no_align = false;
	unsigned a, b;
	size_t used;
	struct stat st;
	int rc, w;

	/* Only the sysfs attributes are read, for a real device as for a
	 * test's fake tree; the character device is never opened. */
	name = name ? name + 1 : rq->path;
	if (sscanf(name, "dax%u.%u%n", &a, &b, &w) != 2 || name[w])
		return say(msg, len, -EINVAL,
			   "%s is not a device-DAX name (daxX.Y or "
			   "/dev/daxX.Y)",
			   rq->path);
	w = snprintf(dir, sizeof(dir), "%s/bus/dax/devices/%s", root, name);
	if (w < 0 || (size_t)w >= sizeof(dir))
		return say(msg, len, -ENAMETOOLONG, "sysfs path too long");
	if (stat(dir, &st)) {
		if (errno == ENOENT)
			return say(msg, len, -ENOENT,
				   "no device-DAX device %s (looked in "
				   "%s/bus/dax/devices)",
				   name, root);
		return sys_failed(msg, len, "cannot read", dir);
	}
	rc = readf(v, sizeof(v), "%s/size", dir);
	if (rc < 0 || parse_u64(v, 10, &size))
		return say(msg, len, rc < 0 ? rc : -EINVAL,
			   "cannot read the size of %s from %s/size", name,
			   dir);
	if (!size)
		return say(msg, len, -EINVAL,
			   "%s has size 0: give it capacity first "
			   "(daxctl create-device or reconfigure-device)",
			   name);
	rc = readf(v, sizeof(v), "%s/align", dir);
	if (rc == -ENOENT)
		/* Kernels before 5.10 have no align attribute and fault
		 * device-DAX in 2 MiB pages by default. */
		no_align = true;
	else if (rc < 0 || parse_u64(v, 10, &align) || !pow2(align))
		return say(msg, len, rc < 0 ? rc : -EINVAL,
			   "cannot read a power-of-two alignment for %s from "
			   "%s/align",
			   name, dir);
	if (pick_granule(rq->granule, align, align, &out->granule_shift))
		return say(msg, len, -EINVAL,
			   "granule %" PRIu64 " does not suit %s: it must be "
			   "a power-of-two multiple of its alignment %" PRIu64,
			   rq->granule, name, align);
	if (size < (1ull << out->granule_shift))
		return say(msg, len, -EINVAL,
			   "%s is %" PRIu64 " bytes, less than one %llu-byte "
			   "granule",
			   name, size, 1ull << out->granule_shift);
	if (rq->discard)
		return say(msg, len, -EOPNOTSUPP,
			   "device-DAX has no discard (%s); leave discard off",
			   name);

	/* The device's own uuid, else its namespace's: a device-DAX on a
	 * pmem namespace sits inside the nd_dax device that holds it. */
	if (readf(uuid, sizeof(uuid), "%s/uuid", dir) <= 0 &&
	    readf(uuid, sizeof(uuid), "%s/device/uuid", dir) <= 0)
		readf(uuid, sizeof(uuid), "%s/../uuid", dir);
	snprintf(out->identity, sizeof(out->identity),
		 "devdax %s%s%s size=%" PRIu64, name, uuid[0] ? " uuid=" : "",
		 uuid, size);
	used = (size_t)snprintf(out->info, sizeof(out->info),
				"align %" PRIu64 "%s", align,
				no_align ? " (default: no align file)" : "");
	if (readf(v, sizeof(v), "%s/target_node", dir) > 0 &&
	    used < sizeof(out->info))
		used +=
		    (size_t)snprintf(out->info + used, sizeof(out->info) - used,
				     ", target_node %s", v);
	if (readf(v, sizeof(v), "%s/resource", dir) > 0 &&
	    used < sizeof(out->info))
		snprintf(out->info + used, sizeof(out->info) - used,
			 ", resource %s", v);
	out->base = 0;
	out->size = size;
	out->fd = -1;
	return 0;
}

/* Check a PCI address and write it as sysfs names it (lower case, the
 * domain four digits or more: VMD domains are wider). */
static bool pci_name(const char *s, char *buf, size_t len)
{
	unsigned long dom;
	unsigned bus, dev, fn;
	size_t i = 0;

	while (isxdigit((unsigned char)s[i]))
		i++;
	if (i < 4 || i > 8 || s[i] != ':')
		return false;
	dom = strtoul(s, NULL, 16);
	s += i + 1;
	if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isxdigit((unsigned char)s[3]) ||
	    !isxdigit((unsigned char)s[4]) || s[5] != '.' || s[6] < '0' ||
	    s[6] > '7' || s[7])
		return false;
	if (sscanf(s, "%2x:%2x.%1u", &bus, &dev, &fn) != 3 || dev > 0x1f)
		return false;
	snprintf(buf, len, "%04lx:%02x:%02x.%u", dom, bus, dev, fn);
	return true;
}

/* BAR bar's line of a resource file: 0, -ERANGE (no such line) or
 * -errno. */
static int pci_resource(const char *file, unsigned bar, uint64_t r[3])
{
	char *line = NULL;
	size_t cap = 0;
	unsigned i = 0;
	int rc = -ERANGE;
	FILE *f;

	f = fopen(file, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (i++ != bar)
			continue;
		rc = sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64, &r[0],
			    &r[1], &r[2]) == 3
			 ? 0
			 : -EINVAL;
		break;
	}
	free(line);
	fclose(f);
	return rc;
}

static int probe_pcibar(const struct potad_probe_req *rq,
			struct potad_probe *out, char *msg, size_t len)
{
	const char *root = rq->sysfs_root ? rq->sysfs_root : "/sys";
	char pci[32], dir[PATH_MAX], file[PATH_MAX + 16], eb[64];
	char vendor[32] = "unknown", device[32] = "unknown";
	uint64_t r[3], base, size;
	int rc, w;

	if (!rq->pci || !pci_name(rq->pci, pci, sizeof(pci)))
		return say(msg, len, -EINVAL,
			   "\"%s\" is not a PCI address (DDDD:BB:DD.F, as "
			   "lspci -D prints it)",
			   rq->pci ? rq->pci : "");
	if (rq->bar > 5)
		return say(msg, len, -EINVAL,
			   "BAR %u of %s: a PCI device has BARs 0 to 5",
			   rq->bar, pci);
	w = snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", root, pci);
	if (w < 0 || (size_t)w >= sizeof(dir))
		return say(msg, len, -ENAMETOOLONG, "sysfs path too long");
	snprintf(file, sizeof(file), "%s/resource", dir);
	rc = pci_resource(file, rq->bar, r);
	if (rc == -ENOENT && access(dir, F_OK))
		return say(msg, len, -ENOENT,
			   "no PCI device %s (looked in %s/bus/pci/devices)",
			   pci, root);
	/* The kernel lists an unassigned or unimplemented BAR as zeros. */
	if (rc == -ERANGE ||
	    (!rc && (r[1] < r[0] || (!r[0] && !r[1]) ||
		     !(r[2] & (IORESOURCE_MEM | IORESOURCE_IO)))))
		return say(msg, len, -EINVAL, "BAR %u of %s is empty", rq->bar,
			   pci);
	if (rc)
		return say(msg, len, rc, "cannot read %s: %s", file,
			   errstr(-rc, eb, sizeof(eb)));
	base = r[0];
	size = r[1] - r[0] + 1;
	if (pick_granule(rq->granule, 1, 4096, &out->granule_shift))
		return say(msg, len, -EINVAL,
			   "granule %" PRIu64 " for BAR %u of %s is not a "
			   "power of two",
			   rq->granule, rq->bar, pci);
	if (base & ((1ull << out->granule_shift) - 1))
		return say(msg, len, -EINVAL,
			   "BAR %u of %s starts at 0x%" PRIx64 ", not a "
			   "multiple of the %llu-byte granule; pass a smaller "
			   "granule",
			   rq->bar, pci, base, 1ull << out->granule_shift);
	if (size < (1ull << out->granule_shift))
		return say(msg, len, -EINVAL,
			   "BAR %u of %s is 0x%" PRIx64 " bytes, less than one "
			   "%llu-byte granule; pass a smaller granule",
			   rq->bar, pci, size, 1ull << out->granule_shift);
	if (rq->discard)
		return say(msg, len, -EOPNOTSUPP,
			   "a PCI BAR has no discard (BAR %u of %s); leave "
			   "discard off",
			   rq->bar, pci);

	readf(vendor, sizeof(vendor), "%s/vendor", dir);
	readf(device, sizeof(device), "%s/device", dir);
	snprintf(out->identity, sizeof(out->identity),
		 "pci %s vendor=%s device=%s bar=%u start=0x%" PRIx64
		 " size=0x%" PRIx64,
		 pci, vendor, device, rq->bar, base, size);
	snprintf(out->info, sizeof(out->info), "%s, prefetchable %s, 64-bit %s",
		 r[2] & IORESOURCE_MEM ? "memory" : "io",
		 r[2] & IORESOURCE_PREFETCH ? "yes" : "no",
		 r[2] & IORESOURCE_MEM_64 ? "yes" : "no");
	out->base = base;
	out->size = size;
	out->fd = -1;
	return 0;
}

static int probe_file(const struct potad_probe_req *rq, struct potad_probe *out,
		      char *msg, size_t len)
{
	const char *path = rq->path;
	int flags = rq->discard ? O_RDWR : O_RDONLY;
	struct stat st;
	uint64_t size;
	int fd, rc;

	/* O_NONBLOCK: a FIFO given by mistake must not hang the probe. */
	fd = open(path, flags | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == EISDIR)
		return say(msg, len, -EINVAL, "%s is not a regular file", path);
	if (fd < 0)
		return open_failed(msg, len, path, errno);
	if (fstat(fd, &st)) {
		rc = open_failed(msg, len, path, errno);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = say(msg, len, -EINVAL, "%s is not a regular file", path);
		goto out_close;
	}
	size = (uint64_t)st.st_size;
	if (pick_granule(rq->granule, 1, 4096, &out->granule_shift)) {
		rc = say(msg, len, -EINVAL,
			 "granule %" PRIu64 " for %s is not a power of two",
			 rq->granule, path);
		goto out_close;
	}
	if (size < (1ull << out->granule_shift)) {
		rc = say(msg, len, -EINVAL,
			 "%s is %" PRIu64 " bytes, less than one %llu-byte "
			 "granule; grow it (truncate -s) or pass a smaller "
			 "granule",
			 path, size, 1ull << out->granule_shift);
		goto out_close;
	}
	snprintf(out->identity, sizeof(out->identity),
		 "file dev=%u:%u ino=%llu size=%" PRIu64, major(st.st_dev),
		 minor(st.st_dev), (unsigned long long)st.st_ino, size);
	snprintf(out->info, sizeof(out->info),
		 "512-byte blocks allocated %llu of %" PRIu64,
		 (unsigned long long)st.st_blocks, (size + 511) / 512);
	/* Trying a punch would change the file; ext4, xfs, btrfs and tmpfs
	 * all punch, and a file system that cannot makes discard fail
	 * with -EOPNOTSUPP, which frees the extent all the same. */
	out->can_discard = true;
	out->base = 0;
	out->size = size;
	out->fd = -1;
	if (rq->discard) {
		out->fd = fd;
		return 0;
	}
	rc = 0;
out_close:
	close(fd);
	return rc;
}

int potad__probe(const struct potad_probe_req *rq, struct potad_probe *out,
		 char *msg, size_t len)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (msg && len)
		msg[0] = 0;
	if (rq->kind != POTAD__V1__SPACE_KIND__PCIBAR &&
	    rq->kind != POTAD__V1__SPACE_KIND__RANGE &&
	    (!rq->path || !rq->path[0]))
		return say(msg, len, -EINVAL, "no path given to probe");
	switch (rq->kind) {
	case POTAD__V1__SPACE_KIND__SWAP:
		rc = probe_swap(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__BLOCKDEV:
		rc = probe_blockdev(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__DEVDAX:
		rc = probe_devdax(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__PCIBAR:
		rc = probe_pcibar(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__FILE:
		rc = probe_file(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__RANGE:
		rc = say(msg, len, -EINVAL,
			 "a range space is given, not probed");
		break;
	default:
		rc = say(msg, len, -EINVAL, "unknown space kind %d", rq->kind);
		break;
	}
	if (rc < 0)
		potad__probe_release(out);
	return rc;
}

void potad__probe_release(struct potad_probe *p)
{
	if (p->fd >= 0)
		close(p->fd);
	free(p->bad);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

int potad__discard(int kind, int fd, uint64_t off, uint64_t len)
{
	uint64_t range[2] = {off, len};

	if (fd < 0)
		return -EBADF;
	if (!len)
		return 0;
	switch (kind) {
	case POTAD__V1__SPACE_KIND__BLOCKDEV:
		return ioctl(fd, BLKDISCARD, range) ? -errno : 0;
	case POTAD__V1__SPACE_KIND__FILE:
		if (off > INT64_MAX || len > INT64_MAX - off)
			return -EINVAL;
		return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 (off_t)off, (off_t)len)
			   ? -errno
			   : 0;
	default:
		return -EOPNOTSUPP;
	}
}
