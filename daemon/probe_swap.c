/* SPDX-License-Identifier: MIT */
/* The swap probe: a mkswap'd file or device, its header read by hand, its
 * bad pages, and whether the kernel swaps to it. */
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

/* Linux's swap header (union swap_header in <linux/swap.h>): the
 * signature ends the first page, the fields start 1 KiB in. */
#define SWAP_MAGIC "SWAPSPACE2"
#define SWAP_MAGIC_LEN 10
#define SWAP_VERSION 1024
#define SWAP_LAST_PAGE 1028
#define SWAP_NR_BAD 1032
#define SWAP_LABEL 1052
#define SWAP_BADPAGES 1536

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

int potad__probe_swap(const struct potad_probe_req *rq, struct potad_probe *out,
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
		return potad__pr_say(
		    msg, len, -EOPNOTSUPP,
		    "%s is a swap area, which potad never discards "
		    "(punching holes in a swap file breaks it); leave "
		    "discard off",
		    path);
	/* O_NONBLOCK: a FIFO given by mistake must not hang the probe. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return potad__pr_open_failed(msg, len, path, errno);
	if (fstat(fd, &st)) {
		rc = potad__pr_open_failed(msg, len, path, errno);
		goto out_close;
	}
	if (S_ISREG(st.st_mode)) {
		devsize = (uint64_t)st.st_size;
		if (devsize < 2 * psz) {
			rc = potad__pr_say(
			    msg, len, -EINVAL,
			    "%s is %" PRIu64 " bytes, too small to hold "
			    "a swap area; make it larger and run mkswap",
			    path, devsize);
			goto out_close;
		}
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &devsize)) {
			rc =
			    potad__pr_sys_failed(msg, len, "cannot size", path);
			goto out_close;
		}
	} else {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "%s is neither a file nor a block device, so it "
		    "cannot hold a swap area",
		    path);
		goto out_close;
	}

	rc = potad__pr_blkid_scan(fd, false, &sig);
	if (rc) {
		rc = potad__pr_say(msg, len, rc,
				   "libblkid could not read %s: %s", path,
				   potad__pr_errstr(-rc, eb, sizeof(eb)));
		goto out_close;
	}
	if (sig.found && !strcmp(sig.type, "swsuspend")) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "%s holds a hibernation image (swsuspend signature), "
		    "not a free swap area; resume from it, or run mkswap "
		    "on it if the image is not wanted",
		    path);
		goto out_close;
	}
	if (!sig.found || strcmp(sig.type, "swap")) {
		if (sig.found)
			potad__pr_sig_describe(&sig, found, sizeof(found));
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "%s is not a swap area: blkid found %s on it; run "
		    "mkswap on it first",
		    path, sig.found ? found : "no signature");
		goto out_close;
	}

	/* libblkid said swap; read the header ourselves for the fields it
	 * does not report (last_page and the bad pages). */
	page = malloc(psz);
	if (!page) {
		rc = potad__pr_say(msg, len, -ENOMEM,
				   "out of memory probing %s", path);
		goto out_close;
	}
	n = pread(fd, page, psz, 0);
	if (n < 0) {
		rc = potad__pr_sys_failed(msg, len, "cannot read", path);
		goto out_free;
	}
	if ((uint64_t)n < psz ||
	    memcmp(page + psz - SWAP_MAGIC_LEN, SWAP_MAGIC, SWAP_MAGIC_LEN)) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
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
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "%s has swap header version %" PRIu32
		    ", only version 1 is supported; run mkswap on it",
		    path, version);
		goto out_free;
	}
	if (last < 1) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "%s's swap header has no usable page (last_page 0); "
		    "run mkswap on it",
		    path);
		goto out_free;
	}
	if (nbad > maxbad) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "%s's swap header lists %" PRIu32 " bad pages, more "
		    "than the %" PRIu64 " a header can hold: it is "
		    "damaged; run mkswap on it",
		    path, nbad, maxbad);
		goto out_free;
	}
	if (((uint64_t)last + 1) * psz > devsize) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "%s's swap header says last_page %" PRIu32 " (%" PRIu64
		    " bytes) but it is only %" PRIu64
		    " bytes: it was truncated or the header is damaged; "
		    "run mkswap on it",
		    path, last, ((uint64_t)last + 1) * psz, devsize);
		goto out_free;
	}
	if (nbad && !(pages = malloc(nbad * sizeof(*pages)))) {
		rc = potad__pr_say(msg, len, -ENOMEM,
				   "out of memory probing %s", path);
		goto out_free;
	}
	for (uint32_t i = 0; i < nbad; i++) {
		pages[i] = get32(page + SWAP_BADPAGES + 4 * i, swapped);
		if (pages[i] < 1 || pages[i] > last) {
			rc = potad__pr_say(
			    msg, len, -EINVAL,
			    "%s's swap header lists bad page %" PRIu32
			    ", outside pages 1..%" PRIu32
			    ": it is damaged; run mkswap on it",
			    path, pages[i], last);
			goto out_free;
		}
	}
	if (potad__pr_pick_granule(rq->granule, psz, psz,
				   &out->granule_shift)) {
		rc = potad__pr_say(
		    msg, len, -EINVAL,
		    "granule %" PRIu64 " does not suit the swap area "
		    "%s: it must be a power-of-two multiple of the page "
		    "size %" PRIu64,
		    rq->granule, path, psz);
		goto out_free;
	}
	rc = swap_in_use(rq->proc_swaps ? rq->proc_swaps : "/proc/swaps", &st);
	if (rc < 0) {
		rc = potad__pr_say(
		    msg, len, rc,
		    "cannot read %s to check whether %s is in use: %s",
		    rq->proc_swaps ? rq->proc_swaps : "/proc/swaps", path,
		    potad__pr_errstr(-rc, eb, sizeof(eb)));
		goto out_free;
	}
	if (rc) {
		rc = potad__pr_say(
		    msg, len, -EBUSY,
		    "%s is in use as swap by the kernel (listed in %s); "
		    "swapoff it first",
		    path, rq->proc_swaps ? rq->proc_swaps : "/proc/swaps");
		goto out_free;
	}
	rc = swap_bad_ranges(pages, nbad, psz, out);
	if (rc) {
		rc = potad__pr_say(msg, len, rc, "out of memory probing %s",
				   path);
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
	potad__pr_clean(label);
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
