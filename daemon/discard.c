/* SPDX-License-Identifier: MIT */
/* Discarding dirty free space in the background, so it counts clean again. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "journal.h"
#include "probe.h"

/*
 * A space with discard on gets its dirty free space discarded one range at
 * a time, largest first by nothing cleverer than address order.  While the
 * discard runs on the thread pool the range is held in the engine by an
 * extent of a reserved owner, so no allocation can take units whose data
 * the device is about to drop; the hold is never journaled, and the
 * snapshot writes it as dirty free space.  When the discard completes the
 * hold is freed clean and a CLEAN record says so; if it fails the range
 * goes back dirty and the space stops discarding until the next start,
 * with one line in the log.
 *
 * The work gets its own duplicate of the device's descriptor: a space
 * removed meanwhile closes its own, and a reused descriptor number must
 * never receive a discard meant for another device.
 */

#define CHUNK (1ull << 30) /* most bytes one discard call covers */

struct dwork {
	uv_work_t w;
	uint64_t space; /* pspace.id */
	int kind, fd;
	uint64_t off, len;
	int rc;
};

static uint32_t owner;
static bool have_owner;

static void work(uv_work_t *w)
{
	struct dwork *d = w->data;

	d->rc = potad__discard(d->kind, d->fd, d->off, d->len);
}

static void done(uv_work_t *w, int status)
{
	struct dwork *d = w->data;
	struct pspace *ps = potad__space_by_id(d->space);
	unsigned flags = POTAD_FREE_DIRTY;

	close(d->fd);
	if (status < 0 && d->rc == 0)
		d->rc = status;
	if (ps && ps->discard_handle) {
		if (d->rc == 0 && potad__journal_room(64) < 0)
			d->rc = -ENOMEM; /* cannot record it: stays dirty */
		if (d->rc == 0) {
			flags = 0;
			potad__jr_clean(ps, d->off, d->len, true);
			log_debug("space %s: discarded [%#llx, +%#llx)",
				  ps->name, (unsigned long long)d->off,
				  (unsigned long long)d->len);
		} else {
			potad__space_root(ps)->discard_failed = true;
			log_warn("space %s: discard of [%#llx, +%#llx) failed: "
				 "%s; its dirty space stays dirty (discard is "
				 "off until the next start)",
				 ps->name, (unsigned long long)d->off,
				 (unsigned long long)d->len, strerror(-d->rc));
		}
		potad_free_ex(ps->eng, ps->discard_handle, flags, NULL);
		ps->discard_handle = 0;
		ps->discard_len = 0;
		potad__discard_kick(ps);
	}
	free(d);
}

void potad__discard_kick(struct pspace *ps)
{
	struct pspace *root = potad__space_root(ps);
	struct potad_extent e;
	struct dwork *d;
	uint64_t s, l;
	int64_t o;

	if (!root->discard || root->discard_failed || root->fd < 0 ||
	    !root->available ||
	    ps->discard_handle || potad_dirty_next(ps->eng, 0, &s, &l) < 0)
		return;
	if (!have_owner) {
		o = potad__owner_get(0, "(discard)", 0);
		if (o < 0)
			return;
		owner = (uint32_t)o;
		have_owner = true;
	}
	if (l > CHUNK)
		l = CHUNK;
	d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->fd = fcntl(root->fd, F_DUPFD_CLOEXEC, 0);
	if (d->fd < 0 || potad_claim(ps->eng, s, l, owner, 0, &e) < 0) {
		if (d->fd >= 0)
			close(d->fd);
		free(d);
		return;
	}
	d->w.data = d;
	d->space = ps->id;
	d->kind = root->kind;
	d->off = s;
	d->len = l;
	ps->discard_handle = e.handle;
	ps->discard_off = s;
	ps->discard_len = l;
	if (uv_queue_work(uv_default_loop(), &d->w, work, done) < 0) {
		potad_free_ex(ps->eng, e.handle, POTAD_FREE_DIRTY, NULL);
		ps->discard_handle = 0;
		ps->discard_len = 0;
		close(d->fd);
		free(d);
	}
}

bool potad__discard_owner(uint32_t o)
{
	return have_owner && o == owner;
}

void potad__discard_kick_all(void)
{
	for (size_t i = 0; i < potad__space_count(); i++)
		potad__discard_kick(potad__space_at(i));
}
