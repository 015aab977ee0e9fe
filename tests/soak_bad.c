/* SPDX-License-Identifier: MIT */
/* The soak test's misbehaving clients: silent, half a frame, never
 * reading, bad frames, hanging up at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "soak.h"
#include "wire/frame.h"

/*
 * Each kind, and what the daemon must do about it:
 *
 * - silent: connects and sends nothing; served nothing, harms no one;
 * - half-frame: sends half of a frame (some of a large one) and stalls;
 *   the daemon waits for the rest without answering or blocking others,
 *   and drops it once it has sent nothing for stall_timeout;
 * - deaf: pipelines ListSpaces (and a few session-scoped allocations)
 *   and never reads; the daemon must stop reading it once its replies
 *   back up, then drop it after stall_timeout (the hang-up is what this
 *   side sees) and free its session extents;
 * - garbage: a varint that never ends, a length over the frame limit (both
 *   refused, then closed), bytes no protobuf decodes and a label that is
 *   not UTF-8 (refused, the connection stays);
 * - churn: connects and hangs up at once, sometimes after one request.
 *
 * The first two reconnect every few seconds and deaf ones once dropped,
 * so connections come and go for the whole run.
 */

#define HALF_BIG 60000 /* the large frame a half-frame client starts */

/* One request of one op (freed here), framed at buf. */
static size_t frame_op(uint8_t *buf, size_t cap, Potad__V1__Op *op)
{
	uint8_t *b = NULL;
	size_t len = 0, bcap = 0;
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;

	req.id = 1;
	req.ops = &op;
	req.n_ops = 1;
	frame_req(&b, &len, &bcap, &req);
	free_op(op);
	EXPECT(len <= cap, "frame of %zu bytes", len);
	memcpy(buf, b, len);
	free(b);
	return len;
}

/* The next bad frame: what the daemon must answer, and whether it then
 * closes the connection. */
static void send_garbage(struct client *c)
{
	static const uint8_t endless[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0x01};
	/* Field 1 with wire type 7, which no protobuf has. */
	static const uint8_t badwire[9] = {8, 0x0f, 1, 2, 3, 4, 5, 6, 7};
	uint8_t big[POTAD_VARINT_MAX];

	switch (c->garbage++ % 4) {
	case 0:
		queue_bytes(c, endless, sizeof(endless));
		c->want_eof = true;
		break;
	case 1:
		queue_bytes(c, big, potad__varint_put(64 * MiB, big));
		c->want_eof = true;
		break;
	case 2:
		queue_bytes(c, badwire, sizeof(badwire));
		c->want_eof = false;
		break;
	default:
		/* An overlong UTF-8 form in a label: refused, not allocated. */
		queue_op(c, op_alloc((struct aa){.space = "soak-a",
						 .size = GRANULE,
						 .label = "\xc0\xaf"}));
		c->want_eof = false;
		break;
	}
}

void bad_open(struct client *c, long now)
{
	/* The start of a large frame; the rest is zeros, never sent. */
	static uint8_t big[POTAD_VARINT_MAX + HALF_BIG];
	size_t k;
	int rc;

	c_close(c);
	c->fd = soak_connect();
	c->answered = false;
	c->next_at = now + 1000 + (long)(rnd() % 5000);
	switch (c->kind) {
	case HALF:
		/* Half of a real frame, or half of a large one (the daemon
		 * holds what it has of it), then nothing. */
		if (c->n % 2) {
			k = potad__varint_put(HALF_BIG, big);
			queue_bytes(c, big, k + HALF_BIG / 2);
		} else {
			queue_bytes(c, soak.deaf_blob, soak.frame_len / 2);
		}
		break;
	case DEAF:
		c->next_at = now + 100;
		break;
	case GARBAGE:
		send_garbage(c);
		c->next_at = now + IO_TIMEOUT_MS;
		break;
	default:
		break;
	}
	rc = flush_out(c);
	EXPECT(rc == 0, "%s: write: %s", who(c), strerror(-rc));
}

/* A non-reader: send until the socket takes no more. */
static void deaf_push(struct client *c)
{
	for (;;) {
		ssize_t n = write(c->fd, soak.deaf_blob, soak.deaf_len);

		if (n > 0) {
			soak.deaf_bytes += (uint64_t)n;
			if ((size_t)n == soak.deaf_len)
				continue;
		}
		if (n < 0 && errno != EAGAIN) {
			/* EPIPE, ECONNRESET: dropped, seen from this side. */
			soak.drops++;
			c_close(c);
		}
		return;
	}
}

static void garbage_io(struct client *c, long now)
{
	Potad__V1__ServerMessage *m;
	size_t pos = 0;
	int k = (c->garbage - 1) % 4; /* the bad frame sent last */
	int rc = fill_in(c);

	while ((m = next_msg(c, &pos))) {
		const Potad__V1__Response *r = m->response;
		Potad__V1__Status want = k == 1 ? POTAD__V1__STATUS__TOO_LARGE
						: POTAD__V1__STATUS__INVALID;

		EXPECT(m->msg_case == POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE &&
			   r->status == want && !c->answered,
		       "%s: bad frame %d: expected one %s refusal, got %s",
		       who(c), k, status_name(want),
		       r ? status_name(r->status) : "an event");
		c->answered = true;
		soak.refusals++;
		potad__v1__server_message__free_unpacked(m, NULL);
	}
	drop_consumed(c, pos);
	if (rc > 0 && !(c->answered && !c->want_eof))
		return;
	EXPECT(c->answered, "%s: bad frame %d: closed without a refusal",
	       who(c), k);
	c_close(c);
	c->next_at = now + 20;
}

/* A connection that should hear nothing: any bytes are a failure.  A
 * silent client must be left alone; a half frame left for stall_timeout
 * is dropped (counted). */
static void quiet_io(struct client *c)
{
	int rc = fill_in(c);

	EXPECT(c->ilen == 0,
	       "%s: the daemon sent %zu bytes to a client that "
	       "asked nothing",
	       who(c), c->ilen);
	if (rc > 0)
		return;
	EXPECT(c->kind == HALF, "%s: the daemon dropped a client that sent "
	       "nothing (%s)", who(c), rc ? strerror(-rc) : "end of file");
	soak.half_drops++;
	c_close(c);
}

void bad_tick(struct client *c, long now)
{
	int fd;

	/* Once the run is over, non-readers keep pushing until the daemon
	 * drops them: a full socket means it stopped reading, so its
	 * replies wait unsent and stall_timeout must come. */
	if (now < c->next_at || (soak.draining && c->kind != DEAF))
		return;
	switch (c->kind) {
	case SILENT:
	case HALF:
		soak.reconnects++;
		bad_open(c, now);
		break;
	case DEAF:
		if (c->fd < 0 && !soak.draining)
			bad_open(c, now);
		if (c->fd >= 0)
			deaf_push(c);
		c->next_at = now + 100;
		break;
	case GARBAGE:
		EXPECT(c->fd < 0, "%s: no reply to bad frame %d within %d ms",
		       who(c), (c->garbage - 1) % 4, IO_TIMEOUT_MS);
		bad_open(c, now);
		break;
	case CHURN:
		/* Connect, maybe ask, hang up at once. */
		fd = soak_connect();
		if (rnd() % 2 && write(fd, soak.deaf_blob, soak.frame_len) < 0)
			FAIL("%s: write: %s", who(c), strerror(errno));
		close(fd);
		soak.churns++;
		c->next_at = now + 2;
		break;
	default:
		break;
	}
}

void bad_io(struct client *c, short revents, long now)
{
	if (c->kind == DEAF) {
		/* It never reads: a hang-up is the daemon dropping it. */
		if (revents & (POLLHUP | POLLERR)) {
			soak.drops++;
			c_close(c);
			c->next_at = now + 50;
		}
	} else if (c->kind == GARBAGE) {
		garbage_io(c, now);
	} else {
		quiet_io(c);
	}
}

/*
 * What non-readers send: ListSpaces, and one in 64 a session-scoped Alloc,
 * so that some of what they leave behind when dropped is state the daemon
 * must undo (and journal) as it closes them, replies still unsent.
 * Half-frame clients and churners send the first ListSpaces.
 */
void bad_init(void)
{
	uint8_t *b = soak.deaf_blob;
	size_t cap = sizeof(soak.deaf_blob);

	soak.frame_len = frame_op(b, cap, op_list());
	soak.deaf_len = soak.frame_len;
	for (int i = 1; i < 63; i++)
		soak.deaf_len +=
		    frame_op(b + soak.deaf_len, cap - soak.deaf_len, op_list());
	soak.deaf_len += frame_op(b + soak.deaf_len, cap - soak.deaf_len,
				  op_alloc((struct aa){.space = "soak-a",
						       .size = GRANULE,
						       .session = true,
						       .label = "deaf"}));
	while (soak.deaf_len * 2 <= sizeof(soak.deaf_blob)) {
		memcpy(soak.deaf_blob + soak.deaf_len, soak.deaf_blob,
		       soak.deaf_len);
		soak.deaf_len *= 2;
	}
}
