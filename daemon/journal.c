/* SPDX-License-Identifier: MIT */
/* The journal writer: group commit through io_uring (or pwrite+fdatasync),
 * preallocation, and when to checkpoint. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "journal.h"
#include "journal/journal.h"

/*
 * Group commit.  The dispatcher changes the engine first, then appends a
 * record to the batch being filled; its reply waits in the server until
 * the record is durable.  Once per loop turn (a check handle, after the
 * poll phase) the filled batch goes out as one write linked to one data
 * sync.  Up to NFLIGHT batches are in flight at once, so that a batch
 * does not wait a whole sync for the previous one; they become durable,
 * and their replies go out, in the order they were submitted.  Each
 * record carries how far it is ahead of what was durable when it was
 * written, which is what lets recovery tell a torn tail from damage (see
 * lib/journal/format.c).
 *
 * Lags and CRCs are set when a batch is submitted, not when its records
 * are made, because a checkpoint may move the batch to a new log file
 * whose salt seeds them.
 *
 * A failed write or sync is fatal: after a failed fdatasync the kernel may
 * have dropped the dirty pages, so retrying could report success for data
 * that is gone.  The daemon logs the file and offset and exits; nothing
 * that was not durable was acknowledged.
 */

/* Batches in flight at once.  Two let a batch start its sync while the
 * previous one finishes, but on this 2-CPU test machine the extra syncs
 * cost more than they overlap (32 clients: 36-37k ops/s with two, 38-39k
 * with one); the code and the on-disk format allow any number. */
#define NFLIGHT 1

struct batch {
	uint8_t *p;
	size_t len, cap;
	uint64_t first, last; /* seqs */
	uint32_t n;
	/* Once submitted: */
	uint64_t at;  /* file offset */
	size_t done;  /* bytes written */
	bool synced;  /* its data sync completed */
	uv_work_t work; /* the fallback writer's */
	int err;
	const char *what;
};

/* io_uring user data: the batch's slot and the operation. */
#define UD(slot, op) ((uint64_t)(slot) << 1 | (op))
enum { UD_WRITE = 0, UD_SYNC = 1 };

static struct {
	bool on, uring, stopping, closed;
	uv_loop_t *loop;
	char *dir;
	int dirfd;
	/* The log being appended to. */
	int fd;
	char *path;
	uint64_t salt, start;
	uint64_t off;       /* end of the durable records */
	uint64_t tail;      /* end of the submitted records */
	uint64_t alloc_end; /* preallocated up to here */
	uint64_t chunk, ckpt_bytes, ckpt_next;
	uint64_t next_seq, durable;
	struct batch fill;
	struct batch fl[NFLIGHT]; /* in flight: head, head + 1, ... */
	unsigned head, nfl;
	bool drain;         /* a checkpoint waits for nothing in flight */
	/* io_uring */
	struct io_uring ring;
	int efd;
	uv_poll_t poll;
	uv_check_t check;
	/* background preallocation */
	bool growing;
	uv_work_t gwork;
	int gfd, gerr;
	uint64_t gfrom, glen;
} J = {.fd = -1, .dirfd = -1, .efd = -1};

bool potad__journal_on(void)
{
	return J.on;
}

uint64_t potad__journal_made(void)
{
	return J.on ? J.next_seq - 1 : 0;
}

uint64_t potad__journal_durable(void)
{
	return J.on ? J.durable : 0;
}

uint64_t potad__journal_filling(void)
{
	return J.fill.n ? J.fill.first : J.next_seq;
}

static void __attribute__((noreturn)) fatal(const char *what, int err)
{
	log_err("journal: %s: %s; stopping now (no reply for unwritten "
		"changes was sent; restart to recover from the journal)",
		what, strerror(err));
	exit(1);
}

static int grow(struct batch *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 65536;
	uint8_t *t;

	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n)
		cap *= 2;
	t = realloc(b->p, cap);
	if (!t)
		return -ENOMEM;
	b->p = t;
	b->cap = cap;
	return 0;
}

int potad__journal_room(size_t n)
{
	if (!J.on)
		return 0;
	/* Headers and padding for a few records besides the payloads. */
	return grow(&J.fill, n + 8 * 32);
}

/* Frame a record of len payload bytes in the filling batch and return
 * where its payload goes.  Room was made before the change. */
static uint8_t *rec(unsigned type, size_t len)
{
	uint8_t *p;
	uint64_t seq = J.next_seq++;

	if (grow(&J.fill, potad__jrec_size(len)) < 0)
		fatal("out of memory for a record whose change is made", ENOMEM);
	p = J.fill.p + J.fill.len;
	J.fill.len += potad__jrec_frame(p, seq, type, (uint32_t)len);
	if (!J.fill.n)
		J.fill.first = seq;
	J.fill.last = seq;
	J.fill.n++;
	return p + POTAD_J_REC_HDR;
}

void potad__jr_space(const struct pspace *ps)
{
	struct potad_jspace js;

	if (!J.on)
		return;
	potad__jspace_of(ps, &js);
	potad__jenc_space(rec(POTAD_J_SPACE, potad__jenc_space(NULL, &js)),
			  &js);
}

void potad__jr_new_space(const struct pspace *ps)
{
	uint64_t off = 0, s, l;

	potad__jr_space(ps);
	while (potad_poison_next(ps->eng, off, &s, &l) == 0) {
		potad__jr_poison(ps, s, l);
		off = s + l;
	}
}

void potad__jr_space_del(uint64_t id)
{
	if (J.on)
		potad__jenc_ids(rec(POTAD_J_SPACE_DEL, 24), id, 0, 0);
}

void potad__jr_acl(const struct pspace *ps)
{
	struct potad_jspace js;

	if (!J.on)
		return;
	potad__jspace_of(ps, &js);
	potad__jenc_acl(rec(POTAD_J_ACL, potad__jenc_acl(NULL, &js)), &js);
}

void potad__jr_alloc(const struct pspace *ps, const struct potad_extent *e,
		     const char *token)
{
	const struct powner *o = potad__owner(e->owner);
	struct potad_jalloc a = {
		.space = ps->id,
		.handle = e->handle,
		.offset = e->offset,
		.length = e->length,
		.tag = e->tag,
		.uid = o ? (uint32_t)o->uid : 0,
		.flags = o && o->conn ? POTAD_JA_SESSION : 0,
		.label = o ? o->label : NULL,
		.token = token,
	};

	if (J.on)
		potad__jenc_alloc(rec(POTAD_J_ALLOC, potad__jenc_alloc(NULL, &a)),
				  &a);
}

void potad__jr_free(const struct pspace *ps, uint64_t handle)
{
	if (J.on)
		potad__jenc_ids(rec(POTAD_J_FREE, 24), ps->id, handle, 0);
}

void potad__jr_shrink(const struct pspace *ps, uint64_t handle, uint64_t keep)
{
	if (J.on)
		potad__jenc_ids(rec(POTAD_J_SHRINK, 24), ps->id, handle, keep);
}

void potad__jr_poison(const struct pspace *ps, uint64_t offset,
		      uint64_t length)
{
	if (J.on)
		potad__jenc_ids(rec(POTAD_J_POISON, 24), ps->id, offset, length);
}

void potad__jr_clean(const struct pspace *ps, uint64_t offset,
		     uint64_t length, bool clean)
{
	const uint64_t r[1][2] = {{offset, length}};

	if (J.on)
		potad__jenc_clean(rec(POTAD_J_CLEAN, potad__jenc_clean(
						     NULL, ps->id, clean, r, 1)),
				  ps->id, clean, r, 1);
}

/*
 * Files.
 */
static char *path_of(uint64_t start)
{
	char *p;

	if (asprintf(&p, "%s/journal.%016llx", J.dir,
		     (unsigned long long)start) < 0)
		return NULL;
	return p;
}

static uint64_t random64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^
		    (uint64_t)uv_hrtime();
	return v ? v : 1;
}

/* Create the log that starts at seq start, durable with its directory
 * entry, and make it the one appended to.  It is prepared under a
 * temporary name and renamed into place once its header is synced, so a
 * crash never leaves a log without a header for recovery to refuse. */
static int create_log(uint64_t start)
{
	struct potad_jfile h = {.seq = start, .salt = random64()};
	uint8_t hdr[POTAD_J_HDR];
	char *path = path_of(start);
	int fd, rc;

	if (!path)
		return -ENOMEM;
	fd = openat(J.dirfd, "journal.new",
		    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = -errno;
		log_err("journal: cannot create %s: %s", path, strerror(-rc));
		free(path);
		return rc;
	}
	potad__jfile_encode(&h, hdr);
	J.alloc_end = J.chunk;
	if (fallocate(fd, 0, 0, (off_t)J.chunk) < 0) {
		log_debug("journal: %s: no preallocation (%s)", path,
			  strerror(errno));
		J.alloc_end = POTAD_J_HDR;
	}
	errno = 0;
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    fdatasync(fd) < 0 ||
	    renameat2(J.dirfd, "journal.new", J.dirfd, strrchr(path, '/') + 1,
		      RENAME_NOREPLACE) < 0 ||
	    fsync(J.dirfd) < 0) {
		rc = errno ? -errno : -EIO;
		log_err("journal: cannot initialise %s: %s", path,
			strerror(-rc));
		close(fd);
		unlinkat(J.dirfd, "journal.new", 0);
		free(path);
		return rc;
	}
	if (J.fd >= 0)
		close(J.fd);
	free(J.path);
	J.fd = fd;
	J.path = path;
	J.salt = h.salt;
	J.start = start;
	J.off = J.tail = POTAD_J_HDR;
	return 0;
}

/* Continue the newest log after recovery, zeroing a torn tail first so
 * that its bytes can never be read as records again. */
static int open_log(const struct potad_recovery *r)
{
	struct stat sb;
	int fd = open(r->last_log, O_RDWR | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &sb) < 0) {
		log_err("journal: cannot open %s: %s", r->last_log,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	if (r->dirty_end > r->append_off) {
		size_t n = r->dirty_end - r->append_off;
		uint8_t *z = calloc(1, n);

		if (!z || pwrite(fd, z, n, (off_t)r->append_off) != (ssize_t)n ||
		    fdatasync(fd) < 0) {
			log_err("journal: cannot clear the torn tail of %s: %s",
				r->last_log, strerror(z ? errno : ENOMEM));
			free(z);
			close(fd);
			return -EIO;
		}
		free(z);
	}
	J.fd = fd;
	J.path = strdup(r->last_log);
	J.salt = r->last_salt;
	J.start = r->last_start;
	J.off = J.tail = r->append_off;
	J.alloc_end = (uint64_t)sb.st_size;
	return J.path ? 0 : -ENOMEM;
}

static void maybe_close(void);
static void maybe_checkpoint(void);
static void submit(void);

/*
 * Preallocation: keep at least half a chunk of allocated, zeroed space
 * ahead of the writes, so a data sync does not also have to commit a new
 * file size.  fallocate runs off the loop.
 */
static void grow_work(uv_work_t *w)
{
	J.gerr = fallocate(J.gfd, 0, (off_t)J.gfrom, (off_t)J.glen) < 0 ? errno
									 : 0;
}

static void grow_done(uv_work_t *w, int status)
{
	J.growing = false;
	if (J.gerr) {
		log_warn("journal: cannot preallocate %s past %llu: %s; writes "
			 "go on, each sync also commits the file size",
			 J.path, (unsigned long long)J.gfrom, strerror(J.gerr));
		J.alloc_end = UINT64_MAX; /* do not try again for this log */
		return;
	}
	if (J.gfd == J.fd)
		J.alloc_end = J.gfrom + J.glen;
	if (J.drain) {
		maybe_checkpoint();
		submit();
	}
}

static void maybe_grow(void)
{
	uint64_t end = J.tail + J.fill.len;

	if (J.growing || J.alloc_end == UINT64_MAX ||
	    end + J.chunk / 2 < J.alloc_end)
		return;
	J.growing = true;
	J.gfd = J.fd;
	J.gfrom = J.alloc_end;
	J.glen = J.chunk;
	uv_queue_work(J.loop, &J.gwork, grow_work, grow_done);
}

/*
 * Start a checkpoint between batches: new records go to a new log that
 * starts with the filling batch, and the state in memory (which already
 * holds the filling batch's changes) is written as a snapshot
 * (checkpoint.c) while serving goes on.  Until the snapshot is renamed
 * into place, recovery still has the old one and every log; after it, the
 * logs before the new one are removed.
 */
static void maybe_checkpoint(void)
{
	uint64_t t0 = uv_hrtime();
	uint64_t start = J.fill.n ? J.fill.first : J.next_seq;
	int rc;

	if (potad__ckpt_busy() || J.stopping || J.off < J.ckpt_next)
		return;
	/* The new log must start after everything submitted so far. */
	if (J.nfl || J.growing) {
		J.drain = true;
		return;
	}
	J.drain = false;
	/* The new log first: a snapshot written while records still went to
	 * a log older than new_start would have that log removed.  A
	 * snapshot that cannot be started leaves the new log in place: the
	 * old snapshot and every log still recover the state. */
	rc = create_log(start);
	if (rc == 0) {
		J.ckpt_next = J.ckpt_bytes;
		rc = potad__ckpt_start(J.next_seq, start, J.path, t0);
	}
	if (rc < 0) {
		log_err("journal: cannot start a checkpoint: %s; retrying later",
			strerror(-rc));
		J.ckpt_next = J.off + J.ckpt_bytes;
	}
}

void potad__journal_ckpt_done(int err)
{
	if (err)
		J.ckpt_next = J.off + J.ckpt_bytes;
	maybe_close();
}

/*
 * Writing batches.
 */
static void write_rest(unsigned slot);

/* Batches whose syncs completed become durable in submission order. */
static void advance(void)
{
	bool moved = false;

	while (J.nfl && J.fl[J.head].synced) {
		struct batch *b = &J.fl[J.head];

		J.off = b->at + b->len;
		J.durable = b->last;
		b->synced = false;
		J.head = (J.head + 1) % NFLIGHT;
		J.nfl--;
		moved = true;
	}
	if (!moved)
		return;
	if (J.uring && !J.nfl)
		uv_unref((uv_handle_t *)&J.poll);
	potad__server_durable(J.durable);
	maybe_checkpoint();
	submit();
	maybe_close();
}

static void on_cqe(uv_poll_t *h, int status, int events)
{
	struct io_uring_cqe *cqe;
	uint64_t v;
	char what[4200];

	if (read(J.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("journal: eventfd: %s", strerror(errno));
	/* advance() may close the ring when stopping: look no further. */
	while (!J.closed && io_uring_peek_cqe(&J.ring, &cqe) == 0) {
		unsigned slot = (unsigned)(cqe->user_data >> 1);
		struct batch *b = &J.fl[slot];
		int res = cqe->res;

		io_uring_cqe_seen(&J.ring, cqe);
		if ((cqe->user_data & 1) == UD_WRITE) {
			if (res <= 0) {
				snprintf(what, sizeof(what),
					 "write to %s at offset %llu", J.path,
					 (unsigned long long)(b->at + b->done));
				fatal(what, res ? -res : EIO);
			}
			b->done += (size_t)res;
			continue;
		}
		if (res < 0 && !(res == -ECANCELED && b->done < b->len)) {
			snprintf(what, sizeof(what),
				 "fdatasync of %s after writing up to offset "
				 "%llu", J.path,
				 (unsigned long long)(b->at + b->len));
			fatal(what, -res);
		}
		if (b->done < b->len) {
			/* A short write breaks the link: write the rest. */
			log_debug("journal: short write at %llu; resubmitting",
				  (unsigned long long)(b->at + b->done));
			write_rest(slot);
			continue;
		}
		b->synced = true;
		advance();
	}
}

static void sync_work(uv_work_t *w)
{
	struct batch *b = w->data;

	b->err = 0;
	while (b->done < b->len) {
		ssize_t n = pwrite(J.fd, b->p + b->done, b->len - b->done,
				   (off_t)(b->at + b->done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			b->err = n < 0 ? errno : EIO;
			b->what = "write to";
			return;
		}
		b->done += (size_t)n;
	}
	if (fdatasync(J.fd) < 0) {
		b->err = errno;
		b->what = "fdatasync of";
	}
}

static void sync_done(uv_work_t *w, int status)
{
	struct batch *b = w->data;
	char what[4200];

	if (b->err) {
		snprintf(what, sizeof(what), "%s %s at offset %llu", b->what,
			 J.path, (unsigned long long)(b->at + b->done));
		fatal(what, b->err);
	}
	b->synced = true;
	advance();
}

static void write_rest(unsigned slot)
{
	struct batch *b = &J.fl[slot];
	struct io_uring_sqe *w, *s;
	int rc;

	if (!J.uring) {
		b->work.data = b;
		uv_queue_work(J.loop, &b->work, sync_work, sync_done);
		return;
	}
	w = io_uring_get_sqe(&J.ring);
	s = io_uring_get_sqe(&J.ring);
	if (!w || !s)
		fatal("no free io_uring submission entries", EBUSY);
	io_uring_prep_write(w, J.fd, b->p + b->done,
			    (unsigned)(b->len - b->done), b->at + b->done);
	w->flags |= IOSQE_IO_LINK;
	w->user_data = UD(slot, UD_WRITE);
	io_uring_prep_fsync(s, J.fd, IORING_FSYNC_DATASYNC);
	s->user_data = UD(slot, UD_SYNC);
	do
		rc = io_uring_submit(&J.ring);
	while (rc == -EINTR);
	if (rc < 0)
		fatal("io_uring_submit", -rc);
}

static void submit(void)
{
	unsigned slot = (J.head + J.nfl) % NFLIGHT;
	struct batch *b = &J.fl[slot], t;

	if (J.nfl == NFLIGHT || J.drain || !J.fill.n)
		return;
	/* Swap buffers: the slot's old one becomes the next to fill. */
	t = *b;
	*b = J.fill;
	J.fill = t;
	J.fill.len = 0;
	J.fill.n = 0;
	for (size_t o = 0; o < b->len;)
		o += potad__jrec_sum(b->p + o, J.salt, J.durable);
	b->at = J.tail;
	b->done = 0;
	b->synced = false;
	J.tail += b->len;
	if (J.uring && !J.nfl)
		uv_ref((uv_handle_t *)&J.poll);
	J.nfl++;
	maybe_grow();
	write_rest(slot);
}

static void on_check(uv_check_t *h)
{
	submit();
}

/*
 * Setting up.
 */
static const char *uring_cause(int err)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	if (v)
		return "io_uring is disabled by the kernel.io_uring_disabled "
		       "sysctl";
	if (err == ENOSYS)
		return "this kernel has no io_uring, or a seccomp filter hides "
		       "it";
	if (err == EPERM || err == EACCES)
		return "io_uring is not permitted here (a seccomp filter or a "
		       "security policy)";
	return NULL;
}

static int uring_setup(char *why, size_t len)
{
	struct io_uring_probe *pr;
	int rc = io_uring_queue_init(64, &J.ring, 0);

	if (rc < 0) {
		const char *c = uring_cause(-rc);

		snprintf(why, len, "io_uring_queue_init: %s%s%s", strerror(-rc),
			 c ? ": " : "", c ? c : "");
		return rc;
	}
	pr = io_uring_get_probe_ring(&J.ring);
	if (!pr || !io_uring_opcode_supported(pr, IORING_OP_WRITE) ||
	    !io_uring_opcode_supported(pr, IORING_OP_FSYNC)) {
		snprintf(why, len, "this kernel's io_uring lacks write or fsync");
		if (pr)
			io_uring_free_probe(pr);
		io_uring_queue_exit(&J.ring);
		return -EOPNOTSUPP;
	}
	io_uring_free_probe(pr);
	J.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (J.efd < 0 || io_uring_register_eventfd(&J.ring, J.efd) < 0) {
		snprintf(why, len, "cannot register an eventfd: %s",
			 strerror(errno));
		if (J.efd >= 0)
			close(J.efd);
		J.efd = -1;
		io_uring_queue_exit(&J.ring);
		return -EIO;
	}
	return 0;
}

int potad__journal_start(const struct potad_config *cfg,
			 struct potad_recovery *rec, uv_loop_t *loop)
{
	char why[512];
	int rc;

	J.loop = loop;
	J.on = true;
	J.chunk = cfg->journal_chunk;
	J.ckpt_bytes = cfg->checkpoint_bytes;
	J.ckpt_next = J.ckpt_bytes;
	J.next_seq = rec->next_seq;
	J.durable = rec->next_seq - 1;
	J.dir = strdup(cfg->state_dir);
	J.dirfd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!J.dir || J.dirfd < 0) {
		log_err("journal: cannot open %s: %s", cfg->state_dir,
			strerror(J.dir ? errno : ENOMEM));
		return -EIO;
	}
	if (rec->last_log && rec->last_end != rec->next_seq) {
		/* A checkpoint starts a new log with the batch still filling
		 * and snapshots a state that holds it; a crash before the
		 * batch reached the log leaves the log behind the snapshot.
		 * Appending there would put the snapshot's next seq where the
		 * log's own belongs, so the log (all of it in the snapshot)
		 * goes, before a new one is made: a crash in between leaves
		 * the snapshot and the logs before it, which recover. */
		log_info("journal: %s ends before seq %llu, which the snapshot "
			 "already holds; starting a new log",
			 rec->last_log, (unsigned long long)rec->next_seq);
		if (unlink(rec->last_log) < 0) {
			log_err("journal: cannot remove %s: %s", rec->last_log,
				strerror(errno));
			return -EIO;
		}
		rc = create_log(rec->next_seq);
	} else {
		rc = rec->last_log ? open_log(rec) : create_log(rec->next_seq);
	}
	if (rc < 0)
		return rc;
	potad__ckpt_init(loop, J.dir, J.dirfd, rec->lock_fd,
			 cfg->checkpoint_fork);
	if (cfg->journal_io == POTAD_JIO_SYNC) {
		log_info("journal: using the pwrite+fdatasync writer (asked for "
			 "by journal_io = sync)");
	} else if (uring_setup(why, sizeof(why)) < 0) {
		if (cfg->journal_io == POTAD_JIO_URING) {
			log_err("journal: io_uring was asked for but %s", why);
			return -EOPNOTSUPP;
		}
		log_warn("journal: io_uring unavailable (%s); falling back to "
			 "pwrite+fdatasync on the thread pool", why);
	} else {
		J.uring = true;
		uv_poll_init(loop, &J.poll, J.efd);
		uv_poll_start(&J.poll, UV_READABLE, on_cqe);
		uv_unref((uv_handle_t *)&J.poll);
	}
	uv_check_init(loop, &J.check);
	uv_check_start(&J.check, on_check);
	uv_unref((uv_handle_t *)&J.check);
	log_info("journal: appending to %s at offset %llu (next seq %llu, "
		 "%s writer, checkpoint every %llu bytes, %s)",
		 J.path, (unsigned long long)J.off,
		 (unsigned long long)J.next_seq,
		 J.uring ? "io_uring" : "pwrite+fdatasync",
		 (unsigned long long)J.ckpt_bytes,
		 cfg->checkpoint_fork
			 ? "written by a forked copy"
			 : "built on the loop (checkpoint_fork = no)");
	return 0;
}

/* Once stopping and idle, let go of the loop. */
static void maybe_close(void)
{
	if (!J.stopping || J.closed || J.nfl || J.fill.n ||
	    potad__ckpt_busy() || J.growing)
		return;
	J.closed = true;
	uv_close((uv_handle_t *)&J.check, NULL);
	if (J.uring) {
		uv_close((uv_handle_t *)&J.poll, NULL);
		io_uring_queue_exit(&J.ring);
		close(J.efd);
	}
	close(J.fd);
	close(J.dirfd);
	free(J.fill.p);
	for (unsigned i = 0; i < NFLIGHT; i++)
		free(J.fl[i].p);
	free(J.path);
	free(J.dir);
	log_info("journal: closed at seq %llu",
		 (unsigned long long)J.durable);
}

void potad__journal_stop(void)
{
	if (!J.on || J.stopping)
		return;
	J.stopping = true;
	J.drain = false; /* no checkpoint now: the log is replayed at start */
	/* What the last turn made still goes out; the check handle must
	 * keep the loop turning until it has. */
	submit();
	maybe_close();
}
