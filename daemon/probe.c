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
#include "probe_int.h"

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

int potad__pr_say(char *msg, size_t len, int err, const char *fmt, ...)
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
void potad__pr_fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, len, f, ap);
	va_end(ap);
}

/* Append tail to id, cutting id short if need be: the size at the end is
 * what notices a device replaced by a larger or smaller one. */
void potad__pr_append_tail(char *id, size_t cap, const char *tail)
{
	size_t n = strlen(id), t = strlen(tail);

	if (t >= cap)
		return;
	if (n + t >= cap)
		n = cap - 1 - t;
	memcpy(id + n, tail, t + 1);
}

/* strerror() may share one buffer between threads. */
const char *potad__pr_errstr(int err, char *buf, size_t len)
{
	return strerror_r(err, buf, len);
}

/* A failed system call on path, as -errno and "what path: reason". */
int potad__pr_sys_failed(char *msg, size_t len, const char *what,
			 const char *path)
{
	int err = errno;
	char eb[64];

	return potad__pr_say(msg, len, -err, "%s %s: %s", what, path,
			     potad__pr_errstr(err, eb, sizeof(eb)));
}

/* A failed open or stat of a path the caller gave us, as -errno and a
 * line that says what to do about it. */
int potad__pr_open_failed(char *msg, size_t len, const char *path, int err)
{
	char eb[64];

	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return potad__pr_say(msg, len, -ENOENT,
				     "%s does not exist; check the path", path);
	case EROFS:
		return potad__pr_say(
		    msg, len, -EACCES,
		    "%s is read-only; potad needs to open it for "
		    "writing: make it writable (blockdev --setrw)",
		    path);
	case EACCES:
	case EPERM:
		return potad__pr_say(
		    msg, len, -EACCES,
		    "%s: permission denied (%s); potad needs read and "
		    "write access to it: run it as root or grant access",
		    path, potad__pr_errstr(err, eb, sizeof(eb)));
	default:
		return potad__pr_say(msg, len, -err, "cannot open %s: %s", path,
				     potad__pr_errstr(err, eb, sizeof(eb)));
	}
}

/* Replace control characters, so that strings read from devices and
 * sysfs keep messages and identities on one line. */
void potad__pr_clean(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* Read the small file the printf-style path names into buf (NUL
 * terminated, surrounding white space removed, control characters
 * replaced).  Returns its length or -errno. */
int potad__pr_readf(char *buf, size_t len, const char *fmt, ...)
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
	potad__pr_clean(buf);
	return (int)((size_t)n - skip);
}

/* Parse all of s as an unsigned number in base (0: C prefixes). */
int potad__pr_parse_u64(const char *s, int base, uint64_t *v)
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

bool potad__pr_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The granule: req, or def when req is 0.  It must be a power of two (the
 * engine's unit) and a multiple of unit, the device's own block, so that
 * no extent splits a block the device reads and writes whole. */
int potad__pr_pick_granule(uint64_t req, uint64_t unit, uint64_t def,
			   unsigned *shift)
{
	uint64_t g = req ? req : def;

	if (!potad__pr_pow2(g) || !potad__pr_pow2(unit) || g < unit)
		return -EINVAL;
	*shift = (unsigned)__builtin_ctzll(g);
	return 0;
}

static void sig_value(blkid_probe pr, const char *name, char *buf, size_t len)
{
	const char *v;

	if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0) {
		snprintf(buf, len, "%s", v);
		potad__pr_clean(buf);
	}
}

/* Ask libblkid which superblocks (and, with parts, partition tables) fd
 * carries.  Returns 0 or -errno. */
int potad__pr_blkid_scan(int fd, bool parts, struct sig *s)
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
void potad__pr_sig_describe(const struct sig *s, char *buf, size_t len)
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
		return potad__pr_say(msg, len, -EINVAL,
				     "%s is not a regular file", path);
	if (fd < 0)
		return potad__pr_open_failed(msg, len, path, errno);
	if (fstat(fd, &st)) {
		rc = potad__pr_open_failed(msg, len, path, errno);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = potad__pr_say(msg, len, -EINVAL,
				   "%s is not a regular file", path);
		goto out_close;
	}
	size = (uint64_t)st.st_size;
	if (potad__pr_pick_granule(rq->granule, 1, 4096, &out->granule_shift)) {
		rc = potad__pr_say(msg, len, -EINVAL,
				   "granule %" PRIu64
				   " for %s is not a power of two",
				   rq->granule, path);
		goto out_close;
	}
	if (size < (1ull << out->granule_shift)) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
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
		return potad__pr_say(msg, len, -EINVAL,
				     "no path given to probe");
	switch (rq->kind) {
	case POTAD__V1__SPACE_KIND__SWAP:
		rc = potad__probe_swap(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__BLOCKDEV:
		rc = potad__probe_blockdev(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__DEVDAX:
		rc = potad__probe_devdax(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__PCIBAR:
		rc = potad__probe_pcibar(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__FILE:
		rc = probe_file(rq, out, msg, len);
		break;
	case POTAD__V1__SPACE_KIND__RANGE:
		rc = potad__pr_say(msg, len, -EINVAL,
				   "a range space is given, not probed");
		break;
	default:
		rc = potad__pr_say(msg, len, -EINVAL, "unknown space kind %d",
				   rq->kind);
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
