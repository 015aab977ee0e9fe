/* SPDX-License-Identifier: MIT */
/* The probes that sysfs answers: block devices (with their ioctls),
 * device-DAX namespaces and PCI BARs. */
#define _GNU_SOURCE
#include <blkid.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "potad.pb-c.h"
#include "probe_int.h"

/* <linux/ioport.h> flags in a PCI device's resource file. */
#define IORESOURCE_IO 0x100
#define IORESOURCE_MEM 0x200
#define IORESOURCE_PREFETCH 0x2000
#define IORESOURCE_MEM_64 0x100000

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
	potad__pr_fmt(name, nlen, "%s", base ? base + 1 : link);
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
		if (potad__pr_readf(v, sizeof(v), "%s/%s", disk, attr[i][0]) >
		    0) {
			potad__pr_fmt(buf, len, "blockdev %s=%s", attr[i][1],
				      v);
			return;
		}
	}
	if (disk &&
	    potad__pr_readf(v, sizeof(v), "%s/loop/backing_file", disk) > 0) {
		if (stat(v, &st) == 0)
			potad__pr_fmt(buf, len,
				      "blockdev loop backing=%s ino=%llu", v,
				      (unsigned long long)st.st_ino);
		else
			potad__pr_fmt(buf, len, "blockdev loop backing=%s", v);
		return;
	}
	snprintf(buf, len, "blockdev dev=%u:%u", major(rdev), minor(rdev));
}

int potad__probe_blockdev(const struct potad_probe_req *rq,
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
		return potad__pr_open_failed(msg, len, path, errno);
	if (!S_ISBLK(st.st_mode))
		return potad__pr_say(msg, len, -EINVAL,
				     "%s is not a block device", path);
	/* O_EXCL on a block device fails while it is mounted or claimed
	 * by device-mapper, md or another exclusive opener, and keeps
	 * them all off while we hold it. */
	fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0 && errno == EBUSY)
		return potad__pr_say(
		    msg, len, -EBUSY,
		    "%s is in use (mounted, or held by another "
		    "exclusive opener such as device-mapper, md or "
		    "another space); unmount or release it first",
		    path);
	if (fd < 0)
		return potad__pr_open_failed(msg, len, path, errno);
	if (fstat(fd, &st)) {
		rc = potad__pr_open_failed(msg, len, path, errno);
		goto out_close;
	}
	if (!S_ISBLK(st.st_mode)) {
		rc = potad__pr_say(msg, len, -EINVAL,
				   "%s is not a block device", path);
		goto out_close;
	}
	if (ioctl(fd, BLKGETSIZE64, &size) || ioctl(fd, BLKSSZGET, &lbs)) {
		rc = potad__pr_sys_failed(msg, len, "cannot size", path);
		goto out_close;
	}
	/* Facts for people only: a kernel without them reports 0. */
	ioctl(fd, BLKPBSZGET, &pbsz);
	ioctl(fd, BLKIOMIN, &iomin);
	ioctl(fd, BLKIOOPT, &ioopt);
	if (potad__pr_pick_granule(rq->granule, (uint64_t)lbs, (uint64_t)lbs,
				   &out->granule_shift)) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "granule %" PRIu64 " does not suit %s: it must be a "
		    "power-of-two multiple of its %d-byte logical sector",
		    rq->granule, path, lbs);
		goto out_close;
	}
	if (size < (1ull << out->granule_shift)) {
		rc = potad__pr_say(msg, len, -EINVAL,
				   "%s is %" PRIu64
				   " bytes, less than one %llu-byte "
				   "granule",
				   path, size, 1ull << out->granule_shift);
		goto out_close;
	}

	rc = potad__pr_blkid_scan(fd, true, &sig);
	if (rc) {
		rc = potad__pr_say(msg, len, rc,
				   "libblkid could not read %s: %s", path,
				   potad__pr_errstr(-rc, eb, sizeof(eb)));
		goto out_close;
	}
	potad__pr_sig_describe(&sig, found, sizeof(found));
	if (sig.found && !rq->force) {
		rc = potad__pr_say(
		    msg, len, -EBUSY,
		    "%s holds %s%s%s%s; pass --force to take it anyway", path,
		    found, sig.uuid[0] ? " (UUID " : "", sig.uuid,
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
		rc = potad__pr_say(
		    msg, len, -EBUSY,
		    "%s (%s) has partitions (%s, ...); take a partition "
		    "instead, or pass --force to take the whole disk",
		    path, name, first);
		goto out_close;
	}
	if (sys && !rq->force) {
		char h[PATH_MAX + 16];

		snprintf(h, sizeof(h), "%s/holders", dir);
		if (dir_count(h, NULL, first, sizeof(first)) > 0) {
			rc = potad__pr_say(
			    msg, len, -EBUSY,
			    "%s (%s) is held by %s (device-mapper, md "
			    "or bcache on top of it); release it first "
			    "or pass --force",
			    path, name, first);
			goto out_close;
		}
	}
	if (sys && potad__pr_readf(v, sizeof(v), "%s/queue/discard_max_bytes",
				   disk) > 0)
		potad__pr_parse_u64(v, 10, &dmax);
	out->can_discard = dmax > 0;
	if (rq->discard && !out->can_discard) {
		rc = potad__pr_say(
		    msg, len, -EOPNOTSUPP,
		    "%s does not support discard (queue/"
		    "discard_max_bytes is 0%s); leave discard off",
		    path, sys ? "" : " or not in sysfs");
		goto out_close;
	}

	blk_identity(sys ? disk : NULL, st.st_rdev, out->identity,
		     sizeof(out->identity));
	/* A partition: the disk's name and which partition of it. */
	if (part && potad__pr_readf(v, sizeof(v), "%s/partition", dir) > 0)
		potad__pr_fmt(tail, sizeof(tail), " part=%s size=%" PRIu64, v,
			      size);
	else
		potad__pr_fmt(tail, sizeof(tail), " size=%" PRIu64, size);
	potad__pr_append_tail(out->identity, sizeof(out->identity), tail);
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

int potad__probe_devdax(const struct potad_probe_req *rq,
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
		return potad__pr_say(msg, len, -EINVAL,
				     "%s is not a device-DAX name (daxX.Y or "
				     "/dev/daxX.Y)",
				     rq->path);
	w = snprintf(dir, sizeof(dir), "%s/bus/dax/devices/%s", root, name);
	if (w < 0 || (size_t)w >= sizeof(dir))
		return potad__pr_say(msg, len, -ENAMETOOLONG,
				     "sysfs path too long");
	if (stat(dir, &st)) {
		if (errno == ENOENT)
			return potad__pr_say(
			    msg, len, -ENOENT,
			    "no device-DAX device %s (looked in "
			    "%s/bus/dax/devices)",
			    name, root);
		return potad__pr_sys_failed(msg, len, "cannot read", dir);
	}
	rc = potad__pr_readf(v, sizeof(v), "%s/size", dir);
	if (rc < 0 || potad__pr_parse_u64(v, 10, &size))
		return potad__pr_say(msg, len, rc < 0 ? rc : -EINVAL,
				     "cannot read the size of %s from %s/size",
				     name, dir);
	if (!size)
		return potad__pr_say(
		    msg, len, -EINVAL,
		    "%s has size 0: give it capacity first "
		    "(daxctl create-device or reconfigure-device)",
		    name);
	rc = potad__pr_readf(v, sizeof(v), "%s/align", dir);
	if (rc == -ENOENT)
		/* Kernels before 5.10 have no align attribute and fault
		 * device-DAX in 2 MiB pages by default. */
		no_align = true;
	else if (rc < 0 || potad__pr_parse_u64(v, 10, &align) ||
		 !potad__pr_pow2(align))
		return potad__pr_say(
		    msg, len, rc < 0 ? rc : -EINVAL,
		    "cannot read a power-of-two alignment for %s from "
		    "%s/align",
		    name, dir);
	if (potad__pr_pick_granule(rq->granule, align, align,
				   &out->granule_shift))
		return potad__pr_say(
		    msg, len, -EINVAL,
		    "granule %" PRIu64 " does not suit %s: it must be "
		    "a power-of-two multiple of its alignment %" PRIu64,
		    rq->granule, name, align);
	if (size < (1ull << out->granule_shift))
		return potad__pr_say(msg, len, -EINVAL,
				     "%s is %" PRIu64
				     " bytes, less than one %llu-byte "
				     "granule",
				     name, size, 1ull << out->granule_shift);
	if (rq->discard)
		return potad__pr_say(
		    msg, len, -EOPNOTSUPP,
		    "device-DAX has no discard (%s); leave discard off", name);

	/* The device's own uuid, else its namespace's: a device-DAX on a
	 * pmem namespace sits inside the nd_dax device that holds it. */
	if (potad__pr_readf(uuid, sizeof(uuid), "%s/uuid", dir) <= 0 &&
	    potad__pr_readf(uuid, sizeof(uuid), "%s/device/uuid", dir) <= 0)
		potad__pr_readf(uuid, sizeof(uuid), "%s/../uuid", dir);
	snprintf(out->identity, sizeof(out->identity),
		 "devdax %s%s%s size=%" PRIu64, name, uuid[0] ? " uuid=" : "",
		 uuid, size);
	used = (size_t)snprintf(out->info, sizeof(out->info),
				"align %" PRIu64 "%s", align,
				no_align ? " (default: no align file)" : "");
	if (potad__pr_readf(v, sizeof(v), "%s/target_node", dir) > 0 &&
	    used < sizeof(out->info))
		used +=
		    (size_t)snprintf(out->info + used, sizeof(out->info) - used,
				     ", target_node %s", v);
	if (potad__pr_readf(v, sizeof(v), "%s/resource", dir) > 0 &&
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

int potad__probe_pcibar(const struct potad_probe_req *rq,
			struct potad_probe *out, char *msg, size_t len)
{
	const char *root = rq->sysfs_root ? rq->sysfs_root : "/sys";
	char pci[32], dir[PATH_MAX], file[PATH_MAX + 16], eb[64];
	char vendor[32] = "unknown", device[32] = "unknown";
	uint64_t r[3], base, size;
	int rc, w;

	if (!rq->pci || !pci_name(rq->pci, pci, sizeof(pci)))
		return potad__pr_say(
		    msg, len, -EINVAL,
		    "\"%s\" is not a PCI address (DDDD:BB:DD.F, as "
		    "lspci -D prints it)",
		    rq->pci ? rq->pci : "");
	if (rq->bar > 5)
		return potad__pr_say(
		    msg, len, -EINVAL,
		    "BAR %u of %s: a PCI device has BARs 0 to 5", rq->bar, pci);
	w = snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", root, pci);
	if (w < 0 || (size_t)w >= sizeof(dir))
		return potad__pr_say(msg, len, -ENAMETOOLONG,
				     "sysfs path too long");
	snprintf(file, sizeof(file), "%s/resource", dir);
	rc = pci_resource(file, rq->bar, r);
	if (rc == -ENOENT && access(dir, F_OK))
		return potad__pr_say(
		    msg, len, -ENOENT,
		    "no PCI device %s (looked in %s/bus/pci/devices)", pci,
		    root);
	/* The kernel lists an unassigned or unimplemented BAR as zeros. */
	if (rc == -ERANGE ||
	    (!rc && (r[1] < r[0] || (!r[0] && !r[1]) ||
		     !(r[2] & (IORESOURCE_MEM | IORESOURCE_IO)))))
		return potad__pr_say(msg, len, -EINVAL, "BAR %u of %s is empty",
				     rq->bar, pci);
	if (rc)
		return potad__pr_say(msg, len, rc, "cannot read %s: %s", file,
				     potad__pr_errstr(-rc, eb, sizeof(eb)));
	base = r[0];
	size = r[1] - r[0] + 1;
	if (potad__pr_pick_granule(rq->granule, 1, 4096, &out->granule_shift))
		return potad__pr_say(msg, len, -EINVAL,
				     "granule %" PRIu64
				     " for BAR %u of %s is not a "
				     "power of two",
				     rq->granule, rq->bar, pci);
	if (base & ((1ull << out->granule_shift) - 1))
		return potad__pr_say(
		    msg, len, -EINVAL,
		    "BAR %u of %s starts at 0x%" PRIx64 ", not a "
		    "multiple of the %llu-byte granule; pass a smaller "
		    "granule",
		    rq->bar, pci, base, 1ull << out->granule_shift);
	if (size < (1ull << out->granule_shift))
		return potad__pr_say(
		    msg, len, -EINVAL,
		    "BAR %u of %s is 0x%" PRIx64 " bytes, less than one "
		    "%llu-byte granule; pass a smaller granule",
		    rq->bar, pci, size, 1ull << out->granule_shift);
	if (rq->discard)
		return potad__pr_say(
		    msg, len, -EOPNOTSUPP,
		    "a PCI BAR has no discard (BAR %u of %s); leave "
		    "discard off",
		    rq->bar, pci);

	potad__pr_readf(vendor, sizeof(vendor), "%s/vendor", dir);
	potad__pr_readf(device, sizeof(device), "%s/device", dir);
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
