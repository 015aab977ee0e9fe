/* SPDX-License-Identifier: MIT */
/* A client's connection: framing, replies held until durable, backpressure. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "daemon.h"
#include "conn.h"
#include "journal.h"
#include "wire/frame.h"

/*
 * One thread runs the loop and owns every space.  A connection's bytes are
 * cut into frames (varint length, then a potad.v1.Request); each complete
 * frame is answered at once, in order, into the connection's output buffer,
 * and everything answered in one read is sent with one write.  A length
 * over the frame limit is refused before any buffer of that size exists.
 *
 * Durability: a reply (or event) made while journal records are not yet
 * durable waits in the output buffer until they are: nothing goes out
 * that a crash could take back, and the replies keep their order.  The
 * waiting bytes are kept as groups, each with the seq it needs; the
 * journal calls potad__server_durable() after every commit.
 *
 * Backpressure: while a connection has more than half its queue limit
 * unsent, the daemon stops reading from it, so a client that pipelines
 * faster than it reads only slows itself down.  If its unsent bytes still
 * pass the limit (events keep coming), it is dropped.  Others never wait.
 */

struct potad_conn {
	uv_pipe_t pipe;
	uint64_t id;
	struct potad_peer peer;
	void *state;
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *obuf; /* being filled */
	size_t olen, ocap;
	uint8_t *wbuf; /* being written */
	size_t wlen, wcap;
	uv_write_t wreq;
	bool writing, reading, closing, close_after_flush;
	bool processing; /* in process(): an event it raises must not re-enter */
	/* A request waiting for work off the loop (a device probe): nothing
	 * after it is read or answered until it has been. */
	const Potad__V1__Request *parked;
	bool dirty;      /* on the dirty list: has output to send */
	struct potad_conn *dirty_next;
	uint64_t write_since; /* loop time the current write started */
	uint64_t read_at;     /* loop time bytes last arrived */
	/* obuf[0, free_len) may go now; group i ends at hold_off[i] and
	 * waits for seq hold_seq[i] to be durable. */
	size_t free_len;
	uint64_t hold_seq[4];
	size_t hold_off[4];
	unsigned nhold;
	struct potad_arena arena;
	struct potad_conn *prev, *next;
};

/*
 * Every open connection, and what they need of the daemon: the listener
 * hands them over (potad__conn_accept()) and asks them to finish; its
 * own handles are server.c's.
 */
static struct {
	uv_loop_t *loop;
	const struct potad_config *cfg;
	struct potad_conn *conns;
	struct potad_conn *dirty; /* connections with events to send */
	size_t nconns;
	uint64_t next_id;
	bool stopping;
	void (*drained)(void); /* once stopping: the last one has closed */
} srv;

uint64_t potad__conn_id(const struct potad_conn *c)
{
	return c->id;
}

const struct potad_peer *potad__conn_peer(const struct potad_conn *c)
{
	return &c->peer;
}

void **potad__conn_state(struct potad_conn *c)
{
	return &c->state;
}

static void conn_close(struct potad_conn *c);
static void conn_flush(struct potad_conn *c);
static void flush_dirty(void);

/* The message just put at the end of obuf waits for every record made so
 * far, and for whatever waits before it. */
static void hold(struct potad_conn *c)
{
	uint64_t need = potad__journal_made();
	unsigned last = c->nhold - 1;

	if (!c->nhold) {
		if (need <= potad__journal_durable()) {
			c->free_len = c->olen;
			return;
		}
	} else if (c->hold_seq[last] >= potad__journal_filling() ||
		   need <= c->hold_seq[last] || c->nhold == 4) {
		/* Same commit as the last group (or no later): join it. */
		if (need > c->hold_seq[last])
			c->hold_seq[last] = need;
		c->hold_off[last] = c->olen;
		return;
	}
	c->hold_seq[c->nhold] = need;
	c->hold_off[c->nhold++] = c->olen;
}

/* Bytes of obuf that may go now. */
static size_t sendable(const struct potad_conn *c)
{
	return c->nhold ? c->free_len : c->olen;
}

/* Drop the first n bytes of obuf (they are sent or being sent). */
static void consume(struct potad_conn *c, size_t n)
{
	memmove(c->obuf, c->obuf + n, c->olen - n);
	c->olen -= n;
	c->free_len -= n;
	for (unsigned i = 0; i < c->nhold; i++)
		c->hold_off[i] -= n;
}

void potad__server_durable(uint64_t seq)
{
	for (struct potad_conn *c = srv.conns; c; c = c->next) {
		unsigned k = 0;

		while (k < c->nhold && c->hold_seq[k] <= seq)
			k++;
		if (!k)
			continue;
		c->free_len = c->hold_off[k - 1];
		memmove(c->hold_seq, c->hold_seq + k,
			(c->nhold - k) * sizeof(c->hold_seq[0]));
		memmove(c->hold_off, c->hold_off + k,
			(c->nhold - k) * sizeof(c->hold_off[0]));
		c->nhold -= k;
		if (!c->processing)
			conn_flush(c);
	}
	flush_dirty();
}

/* Append one framed ServerMessage to c's output. */
static int conn_put(struct potad_conn *c, const Potad__V1__ServerMessage *m)
{
	size_t size = potad__v1__server_message__get_packed_size(m);
	size_t need = c->olen + POTAD_VARINT_MAX + size;

	if (need > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 4096;
		uint8_t *t;

		while (cap < need)
			cap *= 2;
		t = realloc(c->obuf, cap);
		if (!t)
			return -ENOMEM;
		c->obuf = t;
		c->ocap = cap;
	}
	c->olen += potad__varint_put(size, c->obuf + c->olen);
	c->olen += potad__v1__server_message__pack(m, c->obuf + c->olen);
	hold(c);
	return 0;
}

static void put_response(struct potad_conn *c, Potad__V1__Response *resp)
{
	Potad__V1__ServerMessage m = POTAD__V1__SERVER_MESSAGE__INIT;

	m.msg_case = POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE;
	m.response = resp;
	if (conn_put(c, &m) < 0) {
		log_err("out of memory queueing a reply; dropping connection "
			"%llu", (unsigned long long)c->id);
		conn_close(c);
	}
}

/* A reply to a request that could not be read: id 0, a status, a message. */
static void put_refusal(struct potad_conn *c, Potad__V1__Status st,
			const char *msg)
{
	Potad__V1__Response r = POTAD__V1__RESPONSE__INIT;

	r.status = st;
	r.message = (char *)msg;
	put_response(c, &r);
}

void potad__conn_event(struct potad_conn *c, const Potad__V1__Event *ev)
{
	Potad__V1__ServerMessage m = POTAD__V1__SERVER_MESSAGE__INIT;

	if (c->closing)
		return;
	m.msg_case = POTAD__V1__SERVER_MESSAGE__MSG_EVENT;
	m.event = (Potad__V1__Event *)ev;
	if (conn_put(c, &m) < 0) {
		conn_close(c);
		return;
	}
	/*
	 * Not flushed here: an event is raised while another connection's
	 * request is being dispatched, and flushing could start dispatching
	 * this connection's buffered requests in the middle of that one.
	 * flush_dirty() sends it once the dispatch is over.
	 */
	if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = srv.dirty;
		srv.dirty = c;
	}
}

/* Send what events left behind; called from the loop's callbacks, after
 * any dispatch has finished. */
static void flush_dirty(void)
{
	while (srv.dirty) {
		struct potad_conn *c = srv.dirty;

		srv.dirty = c->dirty_next;
		c->dirty = false;
		conn_flush(c);
	}
}

/* Release a connection's memory, once it is off every list. */
static void conn_free(struct potad_conn *c)
{
	potad__arena_free(&c->arena);
	free(c->rbuf);
	free(c->obuf);
	free(c->wbuf);
	free(c);
}

static void on_closed(uv_handle_t *h)
{
	struct potad_conn *c = h->data;

	potad__rpc_conn_closed(c);
	for (struct potad_conn **p = &srv.dirty; *p; p = &(*p)->dirty_next) {
		if (*p == c) {
			*p = c->dirty_next;
			break;
		}
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv.nconns--;
	log_debug("connection %llu closed", (unsigned long long)c->id);
	conn_free(c);
	/* Freeing its session extents may have raised events for others. */
	flush_dirty();
	if (srv.stopping && srv.nconns == 0)
		srv.drained();
}

static void conn_close(struct potad_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->pipe, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void process(struct potad_conn *c);

static void set_reading(struct potad_conn *c, bool on)
{
	if (c->closing || c->reading == on)
		return;
	c->reading = on;
	if (on) {
		/* A half frame's clock starts again: the pause was ours. */
		c->read_at = uv_now(srv.loop);
		uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
	} else {
		uv_read_stop((uv_stream_t *)&c->pipe);
	}
}

static void on_written(uv_write_t *w, int status)
{
	struct potad_conn *c = w->data;

	c->writing = false;
	c->wlen = 0;
	if (c->closing)
		return;
	if (status < 0) {
		log_debug("connection %llu: write failed: %s",
			  (unsigned long long)c->id, uv_strerror(status));
		conn_close(c);
		return;
	}
	conn_flush(c);
	flush_dirty();
}

/* Hand wbuf from `from` to its end to libuv; false, with the connection
 * closed, if libuv refuses it. */
static bool write_wbuf(struct potad_conn *c, size_t from)
{
	uv_buf_t b = uv_buf_init((char *)c->wbuf + from,
				 (unsigned)(c->wlen - from));

	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, on_written) <
	    0) {
		conn_close(c);
		return false;
	}
	c->writing = true;
	c->write_since = uv_now(srv.loop);
	return true;
}

static void conn_flush(struct potad_conn *c)
{
	uv_buf_t b;
	uint8_t *t;
	size_t tc, sent = 0, lim = sendable(c);
	int rc;

	if (c->closing)
		return;
	if (!c->writing && lim) {
		/* Most replies fit the socket buffer: write them now, and
		 * leave libuv only what did not fit (a queued write costs
		 * an extra epoll_ctl even when it completes at once). */
		b = uv_buf_init((char *)c->obuf, (unsigned)lim);
		rc = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
		if (rc < 0 && rc != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		sent = rc > 0 ? (size_t)rc : 0;
	}
	if (!c->writing && lim > sent && lim == c->olen) {
		/* Swap the buffers: fill one while the other is written. */
		t = c->wbuf;
		tc = c->wcap;
		c->wbuf = c->obuf;
		c->wcap = c->ocap;
		c->wlen = c->olen;
		c->obuf = t;
		c->ocap = tc;
		c->olen = 0;
		c->free_len = 0;
		if (!write_wbuf(c, sent))
			return;
	} else if (!c->writing && lim > sent) {
		/* Part of obuf still waits for the journal: copy out what
		 * may go. */
		if (c->wcap < lim - sent) {
			t = realloc(c->wbuf, lim - sent);
			if (!t) {
				conn_close(c);
				return;
			}
			c->wbuf = t;
			c->wcap = lim - sent;
		}
		memcpy(c->wbuf, c->obuf + sent, lim - sent);
		c->wlen = lim - sent;
		consume(c, lim);
		if (!write_wbuf(c, 0))
			return;
	} else if (sent) {
		consume(c, sent);
	}
	if (c->writing && c->olen > srv.cfg->max_queue) {
		potad__log_client("client pid %d uid %u is not reading its "
				  "replies; dropping connection %llu",
				  (int)c->peer.pid, (unsigned)c->peer.uid,
				  (unsigned long long)c->id);
		conn_close(c);
		return;
	}
	if (!c->writing && !c->olen && c->close_after_flush && !c->parked) {
		conn_close(c);
		return;
	}
	if (srv.stopping || c->close_after_flush)
		return;
	if (c->olen + c->wlen <= srv.cfg->max_queue / 2) {
		/* Room again: answer what arrived while we held back. */
		if (c->rlen && !c->processing) {
			process(c);
			if (sendable(c) && !c->writing && !c->closing) {
				conn_flush(c);
				return;
			}
		}
		set_reading(c, !c->parked);
	} else {
		set_reading(c, false);
	}
}

static void answer(struct potad_conn *c, const Potad__V1__Request *req)
{
	Potad__V1__Response *resp = potad__rpc_handle(c, req, &c->arena);

	if (!resp) {
		put_refusal(c, POTAD__V1__STATUS__INTERNAL,
			    "out of memory building the reply");
		return;
	}
	put_response(c, resp);
}

static void resume(struct potad_conn *c);

static void handle_frame(struct potad_conn *c, const uint8_t *p, size_t n)
{
	ProtobufCAllocator pa;
	Potad__V1__Request *req;

	potad__arena_reset(&c->arena);
	potad__arena_allocator(&c->arena, &pa);
	req = potad__v1__request__unpack(&pa, n, p);
	if (!req) {
		log_debug("connection %llu: malformed request frame",
			  (unsigned long long)c->id);
		put_refusal(c, POTAD__V1__STATUS__INVALID,
			    "malformed frame: not a potad.v1.Request");
		return;
	}
	if (!potad__strings_ok(&req->base)) {
		Potad__V1__Response r = POTAD__V1__RESPONSE__INIT;

		r.id = req->id;
		r.status = POTAD__V1__STATUS__INVALID;
		r.message = "a string field is not valid UTF-8";
		put_response(c, &r);
		return;
	}
	switch (potad__rpc_prepare(c, req, resume)) {
	case 0:
		answer(c, req);
		break;
	case 1:
		c->parked = req;
		set_reading(c, false);
		break;
	default:
		put_refusal(c, POTAD__V1__STATUS__INTERNAL,
			    "out of memory preparing the request");
		break;
	}
}

/* The work a parked request waited for is done: answer it, then what
 * arrived behind it. */
static void resume(struct potad_conn *c)
{
	const Potad__V1__Request *req = c->parked;

	c->parked = NULL;
	answer(c, req);
	process(c);
	conn_flush(c);
	flush_dirty();
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct potad_conn *c = h->data;
	size_t want = c->rlen + 65536;

	if (want > c->rcap) {
		/* Never beyond one frame of the largest size allowed. */
		size_t cap = srv.cfg->max_frame + POTAD_VARINT_MAX;
		uint8_t *t;

		if (want < cap)
			cap = want;
		if (cap < c->rlen + 1)
			cap = c->rlen + 1;
		t = cap > c->rcap ? realloc(c->rbuf, cap) : c->rbuf;
		if (t) {
			c->rbuf = t;
			c->rcap = cap;
		}
	}
	*buf = uv_buf_init((char *)c->rbuf + c->rlen,
			   (unsigned)(c->rcap - c->rlen));
}

/*
 * Answer the complete frames in c's read buffer, stopping while the unsent
 * replies fill more than half the queue limit; conn_flush() calls back in
 * when they drain, so buffered requests are never stranded.
 */
static void process(struct potad_conn *c)
{
	c->processing = true;

	size_t off = 0;

	while (off < c->rlen && !c->close_after_flush && !c->closing &&
	       !c->parked &&
	       c->olen + c->wlen <= srv.cfg->max_queue / 2) {
		uint64_t len;
		int k = potad__varint_get(c->rbuf + off, c->rlen - off, &len);

		if (k == 0)
			break;
		if (k < 0) {
			put_refusal(c, POTAD__V1__STATUS__INVALID,
				    "bad frame length prefix (not a varint)");
			c->close_after_flush = true;
			break;
		}
		if (len > srv.cfg->max_frame) {
			char msg[128];

			snprintf(msg, sizeof(msg),
				 "frame of %llu bytes is over the %zu-byte "
				 "limit",
				 (unsigned long long)len, srv.cfg->max_frame);
			potad__log_client("connection %llu (pid %d uid %u): %s; "
					  "closing", (unsigned long long)c->id,
					  (int)c->peer.pid,
					  (unsigned)c->peer.uid, msg);
			put_refusal(c, POTAD__V1__STATUS__TOO_LARGE, msg);
			c->close_after_flush = true;
			break;
		}
		if (c->rlen - off - (size_t)k < len)
			break;
		handle_frame(c, c->rbuf + off + k, (size_t)len);
		off += (size_t)k + (size_t)len;
	}
	c->processing = false;
	if (c->closing)
		return;
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	if (c->close_after_flush)
		set_reading(c, false);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct potad_conn *c = s->data;

	if (n < 0) {
		if (n != UV_EOF)
			log_debug("connection %llu: read: %s",
				  (unsigned long long)c->id, uv_strerror((int)n));
		else if (c->rlen)
			log_debug("connection %llu closed mid-frame (%zu bytes "
				  "dropped)", (unsigned long long)c->id, c->rlen);
		/* Answer what was answered, then go. */
		c->close_after_flush = true;
		set_reading(c, false);
		conn_flush(c);
		return;
	}
	c->rlen += (size_t)n;
	c->read_at = uv_now(srv.loop);
	process(c);
	conn_flush(c);
	flush_dirty();
}

/* Who is on the other end, and whether they are an admin. */
static void identify(struct potad_conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;
	struct passwd pw, *pwp = NULL;
	char buf[4096];

	c->peer.uid = (uid_t)-1;
	c->peer.gid = (gid_t)-1;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->peer.uid = cred.uid;
		c->peer.gid = cred.gid;
		c->peer.pid = cred.pid;
	}
	if (getpwuid_r(c->peer.uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp) {
		int n = (int)(sizeof(c->peer.groups) / sizeof(c->peer.groups[0]));

		if (getgrouplist(pw.pw_name, c->peer.gid, c->peer.groups, &n) < 0)
			n = (int)(sizeof(c->peer.groups) /
				  sizeof(c->peer.groups[0]));
		c->peer.ngroups = n;
	}
	c->peer.admin = c->peer.uid == 0;
	if (srv.cfg->has_admin_gid) {
		if (c->peer.gid == srv.cfg->admin_gid)
			c->peer.admin = true;
		for (int i = 0; i < c->peer.ngroups; i++)
			if (c->peer.groups[i] == srv.cfg->admin_gid)
				c->peer.admin = true;
	}
}

void potad__conn_accept(uv_stream_t *l)
{
	struct potad_conn *c;

	c = calloc(1, sizeof(*c));
	if (!c) {
		log_err("out of memory accepting a connection");
		return;
	}
	uv_pipe_init(srv.loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) < 0) {
		free(c);
		return;
	}
	c->id = ++srv.next_id;
	c->next = srv.conns;
	if (srv.conns)
		srv.conns->prev = c;
	srv.conns = c;
	srv.nconns++;
	identify(c);
	if (srv.nconns > srv.cfg->max_conns) {
		potad__log_client("connection limit %zu reached; refusing pid "
				  "%d uid %u", srv.cfg->max_conns,
				  (int)c->peer.pid, (unsigned)c->peer.uid);
		put_refusal(c, POTAD__V1__STATUS__UNAVAILABLE,
			    "too many connections; try again later");
		c->close_after_flush = true;
		conn_flush(c);
		return;
	}
	log_debug("connection %llu from pid %d uid %u%s",
		  (unsigned long long)c->id, (int)c->peer.pid,
		  (unsigned)c->peer.uid, c->peer.admin ? " (admin)" : "");
	set_reading(c, true);
}

/*
 * A client that stops reading is no longer read from (backpressure), so
 * it cannot make us buffer more; but it would hold its connection for
 * ever.  One whose replies have not moved for stall_timeout (cfg->stall_ms,
 * 30 s by default; the soak test makes it short) is dropped.  So is one
 * that sent part of a frame and then nothing for as long: it holds up to
 * a frame's worth of buffer.  A client that sends nothing at all (an
 * event subscriber waiting) costs no buffer and is left alone.
 */
static bool half_frame_stalled(const struct potad_conn *c, uint64_t now)
{
	/* Bytes left in the read buffer are a frame still arriving, unless
	 * reading stopped for the client's own sake (backpressure, a probe,
	 * a close): those cases wait on us, not on it. */
	return c->rlen && c->reading && !c->parked && !c->closing &&
	       !c->close_after_flush && now - c->read_at > srv.cfg->stall_ms;
}

void potad__conns_drop_stalled(void)
{
	uint64_t now = uv_now(srv.loop);

	for (struct potad_conn *c = srv.conns, *n; c; c = n) {
		n = c->next;
		if (c->writing && !c->closing &&
		    now - c->write_since > srv.cfg->stall_ms) {
			potad__log_client("client pid %d uid %u has not read "
					  "its replies for %u s; dropping "
					  "connection %llu",
					  (int)c->peer.pid,
					  (unsigned)c->peer.uid,
					  srv.cfg->stall_ms / 1000,
					  (unsigned long long)c->id);
			conn_close(c);
		} else if (half_frame_stalled(c, now)) {
			potad__log_client("client pid %d uid %u sent %zu "
					  "byte(s) of a frame and nothing for "
					  "%u s; dropping connection %llu",
					  (int)c->peer.pid,
					  (unsigned)c->peer.uid, c->rlen,
					  srv.cfg->stall_ms / 1000,
					  (unsigned long long)c->id);
			conn_close(c);
		}
	}
}

void potad__conns_init(const struct potad_config *cfg, uv_loop_t *loop)
{
	srv.cfg = cfg;
	srv.loop = loop;
}

size_t potad__conns_count(void)
{
	return srv.nconns;
}

void potad__conns_finish(void (*drained)(void))
{
	srv.stopping = true;
	srv.drained = drained;
	for (struct potad_conn *c = srv.conns; c; c = c->next) {
		c->close_after_flush = true;
		set_reading(c, false);
		conn_flush(c);
	}
	if (srv.nconns == 0)
		drained();
}

void potad__conns_close_all(void)
{
	for (struct potad_conn *c = srv.conns; c; c = c->next)
		conn_close(c);
}
