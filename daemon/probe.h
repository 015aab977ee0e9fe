/* SPDX-License-Identifier: MIT */
/* Probing what a space is made of: swap areas, block devices, device-DAX,
 * PCI BARs and files.  Every call here blocks (opens devices, reads sysfs
 * and headers), so the daemon runs them off its event loop: on the libuv
 * thread pool while serving, or before it serves at start-up. */
#ifndef POTAD_DAEMON_PROBE_H
#define POTAD_DAEMON_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What to probe. */
struct potad_probe_req {
	int kind;         /* POTAD__V1__SPACE_KIND__* (not RANGE) */
	const char *path; /* swap, blockdev, devdax ("/dev/daxX.Y" or
			   * "daxX.Y"), file */
	const char *pci;  /* pcibar: "DDDD:BB:DD.F" */
	unsigned bar;     /* pcibar: 0..5 */
	uint64_t granule; /* bytes, a power of two; 0: the kind's default */
	bool force;       /* blockdev: accept a filesystem or partition table */
	bool discard;     /* the space will discard: require support and keep a
			   * writable descriptor in fd */
	const char *sysfs_root; /* NULL: "/sys" */
	const char *proc_swaps; /* NULL: "/proc/swaps" */
};

/* What a probe found.  base, size and granule_shift describe the space to
 * create; bad lists byte ranges to poison at registration. */
struct potad_probe {
	uint64_t base, size;
	unsigned granule_shift;
	char identity[256]; /* stable across restarts: compared at start */
	char info[256];     /* device facts for people, e.g. "logical 512,
			     * physical 4096, io_min 4096, io_opt 0,
			     * discard yes" */
	uint64_t (*bad)[2]; /* [offset, length) pairs in bytes, sorted */
	size_t nbad;
	int fd;             /* -1, or held open: a block device (O_EXCL, so
			     * no one mounts it under us) or a file or device
			     * to discard on */
	bool can_discard;
};

/* Probe rq; on success fill *out (release it with potad__probe_release()).
 * Returns 0, or -errno with a one-line reason in msg naming the path:
 * -ENOENT (no such path or device), -EINVAL (wrong type, a granule that
 * does not fit, an empty BAR), -EBUSY (a swap area the kernel uses, a
 * mounted or otherwise held block device, a filesystem or partition table
 * without force), -EOPNOTSUPP (discard asked of a device that cannot),
 * -EACCES, -ENOMEM. */
int potad__probe(const struct potad_probe_req *rq, struct potad_probe *out,
		 char *msg, size_t len);
void potad__probe_release(struct potad_probe *p);

/* Discard [off, off + len) bytes of the space's backing through fd: for a
 * block device BLKDISCARD, for a file fallocate(PUNCH_HOLE | KEEP_SIZE).
 * Offsets are the space's own addresses (base included).  Blocks. */
int potad__discard(int kind, int fd, uint64_t off, uint64_t len);

#endif /* POTAD_DAEMON_PROBE_H */
