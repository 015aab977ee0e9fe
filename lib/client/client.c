/* SPDX-License-Identifier: MIT */
/* libpotad: the client side of potad's socket protocol. */

/*
 * How a connection works.
 *
 * Requests are numbered from 1 and the daemon answers them in the order they
 * were sent, so the answer to the oldest unanswered request is always the
 * next Response on the socket; events may come between any two frames.  All
 * reading goes through one pump (read_some): it reads what the socket has
 * into one buffer, cuts it into whole frames, and routes each frame: an
 * event to the event queue, a response to the queue of pipelined answers
 * while pipelined requests are unanswered, or else to the synchronous call
 * that is waiting.  A synchronous call is always the newest request (it
 * blocks until answered), so everything answered before it is pipelined.
 *
 * Writes never block while the daemon may be blocked writing to us: a write
 * that would block waits for the socket to be writable or readable and pumps
 * what arrives.  The read buffer grows only to the length a frame header
 * announces, and only after that length has been checked against the frame
 * cap.
 *
 * Operations are encoded one at a time as field 2 of a Request, which
 * protobuf allows to be concatenated: a request is its id field followed by
 * the operations queued for it, so queuing costs no copies of the caller's
 * strings.
 *
 * Results reach the caller as one heap block holding the decoded message
 * and the plain structs that point into it; free_result releases both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "potad.pb-c.h"
#include "potad/client.h"
#include "wire/frame.h"

/* The smallest read buffer: several small frames per read. */
#define RBUF_MIN 16384

struct buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

struct node {
	struct node *next;
	Potad__V1__ServerMessage *m;
};

struct queue {
	struct node *head;
	struct node *tail;
	unsigned n;
};

struct potad_client {
	int fd;
	int err;	/* the error that broke the connection */
	int timeout_ms; /* for synchronous calls; -1: none */
	size_t frame_max;
	uint64_t next_id; /* id of the next request sent */
	uint64_t ack_id;  /* id of the oldest request not answered */
	/* Pipelined requests the daemon has not answered. */
	unsigned unanswered;
	bool sync_waiting; /* a synchronous call waits for the next answer */
	Potad__V1__ServerMessage *sync_answer;
	/* Answers to pipelined requests, not yet recv'd. */
	struct queue replies;
	struct queue events;
	uint8_t *rbuf;
	size_t rlen;
	size_t rcap;
	size_t rneed;	   /* bytes the frame at the front of rbuf needs */
	struct buf queued; /* operations of the request being built */
	unsigned n_queued;
	struct buf wbuf;
	char errmsg[512];
};

/* The header in front of every result object handed to the caller. */
struct hold {
	Potad__V1__ServerMessage *m;
};
#define HOLD_SIZE                                                              \
	((sizeof(struct hold) + alignof(max_align_t) - 1) &                    \
	 ~(alignof(max_align_t) - 1))

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_in(int ms)
{
	return ms < 0 ? -1 : now_ms() + ms;
}

/* The connection cannot be trusted after an I/O or framing error: the
 * stream may be cut inside a frame. */
static int broken(struct potad_client *c, int err)
{
	if (!c->err)
		c->err = err;
	return err;
}

static int status_errno(Potad__V1__Status s)
{
	switch (s) {
	case POTAD__V1__STATUS__OK:
		return 0;
	case POTAD__V1__STATUS__NO_SPACE:
		return -ENOSPC;
	case POTAD__V1__STATUS__INVALID:
		return -EINVAL;
	case POTAD__V1__STATUS__NOT_FOUND:
		return -ENOENT;
	case POTAD__V1__STATUS__BUSY:
		return -EBUSY;
	case POTAD__V1__STATUS__PERMISSION:
		return -EPERM;
	case POTAD__V1__STATUS__STALE:
		return -ESTALE;
	case POTAD__V1__STATUS__EXISTS:
		return -EEXIST;
	case POTAD__V1__STATUS__TOO_LARGE:
		return -E2BIG;
	case POTAD__V1__STATUS__UNAVAILABLE:
		return -EAGAIN;
	case POTAD__V1__STATUS__OUT_OF_RANGE:
		return -ERANGE;
	case POTAD__V1__STATUS__INTERNAL:
	default:
		/* A status newer than this library is still a failure. */
		return -EIO;
	}
}

static const char *str(const char *s)
{
	return s ? s : "";
}

static void set_errmsg(struct potad_client *c, const char *msg)
{
	size_t n = strlen(str(msg));

	if (n >= sizeof(c->errmsg))
		n = sizeof(c->errmsg) - 1;
	memcpy(c->errmsg, str(msg), n);
	c->errmsg[n] = '\0';
}

/* Buffers and queues. */

static int buf_reserve(struct buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	uint8_t *p;

	if (more > SIZE_MAX - b->len)
		return -ENOMEM;
	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap = cap > SIZE_MAX / 2 ? b->len + more : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void queue_push(struct queue *q, struct node *n)
{
	n->next = NULL;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	q->n++;
}

static Potad__V1__ServerMessage *queue_pop(struct queue *q)
{
	struct node *n = q->head;
	Potad__V1__ServerMessage *m;

	if (!n)
		return NULL;
	q->head = n->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	m = n->m;
	free(n);
	return m;
}

static void queue_clear(struct queue *q)
{
	Potad__V1__ServerMessage *m;

	while ((m = queue_pop(q)))
		potad__v1__server_message__free_unpacked(m, NULL);
}

/* Reading. */

/* Wait for events on the socket until deadline (-1: forever). */
static int wait_fd(struct potad_client *c, short events, int64_t deadline)
{
	struct pollfd p = {.fd = c->fd, .events = events};
	int ms, n;

	for (;;) {
		ms = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();

			if (left > INT_MAX)
				left = INT_MAX;
			ms = left > 0 ? (int)left : 0;
		}
		n = poll(&p, 1, ms);
		if (n > 0)
			return p.revents;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int route(struct potad_client *c, Potad__V1__ServerMessage *m)
{
	Potad__V1__Response *r;
	struct node *n;

	switch (m->msg_case) {
	case POTAD__V1__SERVER_MESSAGE__MSG_EVENT:
		n = malloc(sizeof(*n));
		if (!n)
			goto err_message;
		n->m = m;
		queue_push(&c->events, n);
		/* Nobody may be reading events: keep the newest. */
		if (c->events.n > POTAD_CLIENT_EVENTS_MAX)
			potad__v1__server_message__free_unpacked(
			    queue_pop(&c->events), NULL);
		return 0;
	case POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE:
		r = m->response;
		/* A request refused before its id could be read is answered
		 * with id 0; any other id must be the oldest one. */
		if (r->id != c->ack_id &&
		    (r->id != 0 || r->status == POTAD__V1__STATUS__OK))
			goto err_protocol;
		if (c->unanswered) {
			n = malloc(sizeof(*n));
			if (!n)
				goto err_message;
			n->m = m;
			queue_push(&c->replies, n);
			c->unanswered--;
		} else if (c->sync_waiting && !c->sync_answer) {
			c->sync_answer = m;
		} else {
			goto err_protocol;
		}
		c->ack_id++;
		return 0;
	default:
		/* A message kind newer than this library. */
		potad__v1__server_message__free_unpacked(m, NULL);
		return 0;
	}

err_protocol:
	potad__v1__server_message__free_unpacked(m, NULL);
	return broken(c, -EPROTO);
err_message:
	potad__v1__server_message__free_unpacked(m, NULL);
	return broken(c, -ENOMEM);
}

/* Cut whole frames off the front of the read buffer and route them. */
static int parse(struct potad_client *c)
{
	size_t off = 0;
	int rc = 0;

	c->rneed = 0;
	while (off < c->rlen) {
		Potad__V1__ServerMessage *m;
		uint64_t len;
		int hl;

		hl = potad__varint_get(c->rbuf + off, c->rlen - off, &len);
		if (hl < 0) {
			rc = broken(c, -EPROTO);
			break;
		}
		if (hl == 0)
			break;
		if (len > c->frame_max) {
			rc = broken(c, -EMSGSIZE);
			break;
		}
		if (c->rlen - off - hl < len) {
			c->rneed = hl + len;
			break;
		}
		m = potad__v1__server_message__unpack(NULL, len,
						      c->rbuf + off + hl);
		if (!m) {
			rc = broken(c, -EPROTO);
			break;
		}
		off += hl + len;
		rc = route(c, m);
		if (rc < 0)
			break;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	return rc;
}

/* Read what the socket has (waiting until deadline for something) and
 * route every whole frame. */
static int read_some(struct potad_client *c, int64_t deadline)
{
	size_t want = c->rneed > RBUF_MIN ? c->rneed : RBUF_MIN;
	ssize_t n;
	int rc;

	if (c->err)
		return c->err;
	rc = wait_fd(c, POLLIN, deadline);
	if (rc < 0)
		return rc == -ETIMEDOUT ? rc : broken(c, rc);
	if (c->rcap < want) {
		uint8_t *p = realloc(c->rbuf, want);

		if (!p)
			return broken(c, -ENOMEM);
		c->rbuf = p;
		c->rcap = want;
	}
	n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
	if (n == 0)
		return broken(c, -ECONNRESET);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return broken(c, -errno);
	}
	c->rlen += (size_t)n;
	return parse(c);
}

/* Writing. */

static int write_all(struct potad_client *c, const uint8_t *p, size_t len,
		     int64_t deadline)
{
	int rc;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			rc = -errno;
			/* The daemon may have said why it hung up (a frame
			 * over its limit): keep what it sent before. */
			while (read_some(c, 0) >= 0)
				;
			return broken(c, rc);
		}
		rc = wait_fd(c, POLLOUT | POLLIN, deadline);
		if (rc < 0)
			return broken(c, rc);
		/* Drain answers so a daemon blocked on writing to us can go
		 * on reading. */
		if (rc & POLLIN) {
			rc = read_some(c, 0);
			if (rc < 0 && rc != -ETIMEDOUT)
				return rc;
		}
	}
	return 0;
}

/* Append one operation to a request body as field 2 (ops). */
static int put_op(struct potad_client *c, struct buf *b,
		  const Potad__V1__Op *op)
{
	size_t len = potad__v1__op__get_packed_size(op);
	size_t room = 1 + POTAD_VARINT_MAX + len;
	int rc;

	if (b->len + room > c->frame_max)
		return -EMSGSIZE;
	rc = buf_reserve(b, room);
	if (rc < 0)
		return rc;
	b->p[b->len++] = 2 << 3 | 2;
	b->len += potad__varint_put(len, b->p + b->len);
	b->len += potad__v1__op__pack(op, b->p + b->len);
	return 0;
}

/* Send one request made of the encoded operations in ops; a pipelined
 * one is counted as unanswered from the moment its first byte may go. */
static int send_request(struct potad_client *c, const struct buf *ops,
			bool pipelined, uint64_t *id, int64_t deadline)
{
	uint8_t idf[1 + POTAD_VARINT_MAX];
	size_t idlen, body;
	int rc;

	idf[0] = 1 << 3 | 0;
	idlen = 1 + potad__varint_put(c->next_id, idf + 1);
	body = idlen + ops->len;
	if (body > c->frame_max)
		return -EMSGSIZE;
	c->wbuf.len = 0;
	rc = buf_reserve(&c->wbuf, POTAD_VARINT_MAX + body);
	if (rc < 0)
		return rc;
	c->wbuf.len = potad__varint_put(body, c->wbuf.p);
	memcpy(c->wbuf.p + c->wbuf.len, idf, idlen);
	c->wbuf.len += idlen;
	memcpy(c->wbuf.p + c->wbuf.len, ops->p, ops->len);
	c->wbuf.len += ops->len;
	if (pipelined)
		c->unanswered++;
	rc = write_all(c, c->wbuf.p, c->wbuf.len, deadline);
	if (rc < 0)
		return rc;
	if (id)
		*id = c->next_id;
	c->next_id++;
	return 0;
}

/* Results. */

static void *hold_new(Potad__V1__ServerMessage *m, size_t size)
{
	char *p = calloc(1, HOLD_SIZE + size);

	if (!p)
		return NULL;
	((struct hold *)p)->m = m;
	return p + HOLD_SIZE;
}

static void conv_extent(const Potad__V1__Extent *e,
			struct potad_client_extent *o)
{
	o->space = str(e->space);
	o->offset = e->offset;
	o->length = e->length;
	o->handle = e->handle;
	o->owner_uid = e->owner_uid;
	o->tag = e->tag;
	o->label = str(e->label);
	o->child = str(e->child);
	o->poisoned = e->poisoned;
	o->session = e->session;
}

static void conv_space(const Potad__V1__SpaceInfo *s,
		       struct potad_client_space *o)
{
	o->name = str(s->name);
	o->kind = (enum potad_client_kind)s->kind;
	o->source = str(s->source);
	o->base = s->base_offset;
	o->size = s->size;
	o->granule = s->granule;
	o->parent = str(s->parent);
	o->reserve = s->reserve;
	o->available = s->available;
	o->reason = str(s->reason);
	o->free_bytes = s->free_bytes;
	o->used_bytes = s->used_bytes;
	o->poisoned_bytes = s->poisoned_bytes;
	o->extents = s->extents;
	o->free_blocks = s->free_blocks;
	o->largest_free_block = s->largest_free_block;
	o->meta_bytes = s->meta_bytes;
	o->n_free_per_order = s->n_free_per_order;
	o->free_per_order = s->free_per_order;
	o->fragmentation = s->fragmentation;
	o->largest_free_run = s->largest_free_run;
	o->identity = str(s->identity);
	o->device = str(s->device);
	o->bar = s->bar;
	o->discard = s->discard;
	o->isolate = s->isolate;
	o->dirty_bytes = s->dirty_bytes;
	o->discarding_bytes = s->discarding_bytes;
}

/* Synchronous calls. */

/*
 * Send op alone in a request and wait for its answer.  On success *mp owns
 * the answer and *rp is its one result, whose body is of kind want (or
 * absent, when absent_ok; or anything, when want is NOT_SET).
 */
static int call(struct potad_client *c, const Potad__V1__Op *op,
		Potad__V1__Result__BodyCase want, bool absent_ok,
		Potad__V1__ServerMessage **mp, Potad__V1__Result **rp)
{
	struct buf ops = {0};
	Potad__V1__ServerMessage *m = NULL;
	Potad__V1__Response *r;
	Potad__V1__Result *res;
	int64_t deadline = deadline_in(c->timeout_ms);
	int rc;

	c->errmsg[0] = '\0';
	if (c->err)
		return c->err;
	rc = put_op(c, &ops, op);
	if (rc < 0)
		goto out_ops;
	c->sync_waiting = true;
	rc = send_request(c, &ops, false, NULL, deadline);
	while (rc >= 0 && !c->sync_answer)
		rc = read_some(c, deadline);
	/* An answer that came before the connection failed still counts. */
	if (!c->sync_answer) {
		/* A late answer would be taken for the next one. */
		if (rc == -ETIMEDOUT)
			broken(c, rc);
		goto out_waiting;
	}
	m = c->sync_answer;
	c->sync_answer = NULL;
	r = m->response;
	if (r->status != POTAD__V1__STATUS__OK) {
		set_errmsg(c, r->message);
		rc = status_errno(r->status);
		goto out_message;
	}
	if (r->n_results != 1) {
		rc = broken(c, -EPROTO);
		goto out_message;
	}
	res = r->results[0];
	if (res->status != POTAD__V1__STATUS__OK) {
		set_errmsg(c, res->message);
		rc = status_errno(res->status);
		goto out_message;
	}
	/* A body where none is wanted is ignored, so that a daemon may say
	 * more than this library asks. */
	if (want != POTAD__V1__RESULT__BODY__NOT_SET &&
	    res->body_case != want &&
	    !(absent_ok &&
	      res->body_case == POTAD__V1__RESULT__BODY__NOT_SET)) {
		rc = -EPROTO;
		goto out_message;
	}
	*mp = m;
	*rp = res;
	m = NULL;
	rc = 0;
out_message:
	if (m)
		potad__v1__server_message__free_unpacked(m, NULL);
out_waiting:
	c->sync_waiting = false;
out_ops:
	free(ops.p);
	return rc;
}

/* A call whose answer carries no body the caller wants. */
static int call_plain(struct potad_client *c, const Potad__V1__Op *op)
{
	Potad__V1__ServerMessage *m;
	Potad__V1__Result *res;
	int rc;

	rc = call(c, op, POTAD__V1__RESULT__BODY__NOT_SET, true, &m, &res);
	if (rc < 0)
		return rc;
	potad__v1__server_message__free_unpacked(m, NULL);
	return 0;
}

/* A call answered with one extent; absent_ok for frees, which may not
 * say what they freed. */
static int call_extent(struct potad_client *c, const Potad__V1__Op *op,
		       bool absent_ok, struct potad_client_extent **out)
{
	Potad__V1__ServerMessage *m;
	Potad__V1__Result *res;
	struct potad_client_extent *e;
	int rc;

	if (out)
		*out = NULL;
	rc = call(c, op, POTAD__V1__RESULT__BODY_EXTENT, absent_ok, &m, &res);
	if (rc < 0)
		return rc;
	if (!out || res->body_case != POTAD__V1__RESULT__BODY_EXTENT) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return 0;
	}
	e = hold_new(m, sizeof(*e));
	if (!e) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	conv_extent(res->extent, e);
	*out = e;
	return 0;
}

/* A call answered with one space; absent_ok for adds, which may not
 * describe what they made. */
static int call_space(struct potad_client *c, const Potad__V1__Op *op,
		      bool absent_ok, struct potad_client_space **out)
{
	Potad__V1__ServerMessage *m;
	Potad__V1__Result *res;
	struct potad_client_space *o;
	int rc;

	if (out)
		*out = NULL;
	rc = call(c, op, POTAD__V1__RESULT__BODY_SPACE, absent_ok, &m, &res);
	if (rc < 0)
		return rc;
	if (!out || res->body_case != POTAD__V1__RESULT__BODY_SPACE) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return 0;
	}
	o = hold_new(m, sizeof(*o));
	if (!o) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	conv_space(res->space, o);
	*out = o;
	return 0;
}

int potad_client_connect(const char *path, struct potad_client **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct potad_client *c;
	int rc;

	if (!out)
		return -EINVAL;
	if (!path || !*path)
		path = secure_getenv("POTAD_SOCKET");
	if (!path || !*path)
		path = POTAD_CLIENT_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->timeout_ms = -1;
	c->frame_max = POTAD_CLIENT_FRAME_MAX;
	c->next_id = 1;
	c->ack_id = 1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		rc = -errno;
		goto err_client;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		socklen_t len = sizeof(rc);

		if (errno != EINTR) {
			rc = -errno;
			goto err_socket;
		}
		/* An interrupted connect goes on in the background. */
		rc = wait_fd(c, POLLOUT, -1);
		if (rc < 0)
			goto err_socket;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &rc, &len) < 0) {
			rc = -errno;
			goto err_socket;
		}
		if (rc) {
			rc = -rc;
			goto err_socket;
		}
	}
	*out = c;
	return 0;

err_socket:
	close(c->fd);
err_client:
	free(c);
	return rc;
}

void potad_client_close(struct potad_client *c)
{
	if (!c)
		return;
	close(c->fd);
	queue_clear(&c->replies);
	queue_clear(&c->events);
	if (c->sync_answer)
		potad__v1__server_message__free_unpacked(c->sync_answer, NULL);
	free(c->rbuf);
	free(c->queued.p);
	free(c->wbuf.p);
	free(c);
}

int potad_client_fd(const struct potad_client *c)
{
	return c->fd;
}

int potad_client_set_frame_max(struct potad_client *c, size_t max)
{
	/* Big enough for any answer a small request can get, small enough
	 * that a length plus its header cannot overflow. */
	if (max < 64 || max > (size_t)1 << 31)
		return -EINVAL;
	c->frame_max = max;
	return 0;
}

int potad_client_set_timeout(struct potad_client *c, int ms)
{
	if (ms < -1)
		return -EINVAL;
	c->timeout_ms = ms;
	return 0;
}

const char *potad_client_errmsg(const struct potad_client *c)
{
	return c->errmsg;
}

int potad_client_error(const struct potad_client *c)
{
	return c->err;
}

const char *potad_client_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -ENOSPC:
		return "no space";
	case -EINVAL:
		return "invalid";
	case -ENOENT:
		return "not found";
	case -EBUSY:
		return "busy";
	case -EPERM:
		return "permission denied";
	case -ESTALE:
		return "stale handle";
	case -EEXIST:
		return "exists";
	case -E2BIG:
		return "too large";
	case -EAGAIN:
		return "unavailable";
	case -EIO:
		return "internal error";
	case -ERANGE:
		return "out of range";
	case -EPROTO:
		return "protocol error";
	case -EMSGSIZE:
		return "frame over the size cap";
	case -ECONNRESET:
		return "connection closed by the daemon";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

void potad_client_free_result(const void *result)
{
	struct hold *h;

	if (!result)
		return;
	h = (struct hold *)((char *)result - HOLD_SIZE);
	if (h->m)
		potad__v1__server_message__free_unpacked(h->m, NULL);
	free(h);
}

int potad_client_hello(struct potad_client *c, const char *client,
		       struct potad_client_hello **out)
{
	Potad__V1__Hello h = POTAD__V1__HELLO__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;
	Potad__V1__ServerMessage *m;
	Potad__V1__Result *res;
	Potad__V1__HelloReply *hr;
	struct potad_client_hello *o;
	int rc;

	if (out)
		*out = NULL;
	h.protocol = POTAD_CLIENT_PROTOCOL;
	if (client)
		h.client = (char *)client;
	op.op_case = POTAD__V1__OP__OP_HELLO;
	op.hello = &h;
	rc = call(c, &op, POTAD__V1__RESULT__BODY_HELLO, false, &m, &res);
	if (rc < 0)
		return rc;
	if (!out) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return 0;
	}
	o = hold_new(m, sizeof(*o));
	if (!o) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	hr = res->hello;
	o->protocol = hr->protocol;
	o->server_version = str(hr->server_version);
	o->n_capabilities = hr->n_capabilities;
	o->capabilities = (const char *const *)hr->capabilities;
	o->uid = hr->uid;
	o->gid = hr->gid;
	o->admin = hr->admin;
	o->durable = hr->durable;
	*out = o;
	return 0;
}

int potad_client_spaces(struct potad_client *c, struct potad_client_space **out)
{
	Potad__V1__ListSpaces ls = POTAD__V1__LIST_SPACES__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;
	Potad__V1__ServerMessage *m;
	Potad__V1__Result *res;
	Potad__V1__SpaceList *sl;
	struct potad_client_space *o;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	op.op_case = POTAD__V1__OP__OP_LIST_SPACES;
	op.list_spaces = &ls;
	rc = call(c, &op, POTAD__V1__RESULT__BODY_SPACES, false, &m, &res);
	if (rc < 0)
		return rc;
	sl = res->spaces;
	/* The count is bounded by the frame cap, so it fits an int. */
	o = hold_new(m, sl->n_spaces * sizeof(*o));
	if (!o) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sl->n_spaces; i++)
		conv_space(sl->spaces[i], &o[i]);
	*out = o;
	return (int)sl->n_spaces;
}

int potad_client_space_add(struct potad_client *c,
			   const struct potad_client_space_args *a,
			   struct potad_client_space **out)
{
	Potad__V1__SpaceAdd sa = POTAD__V1__SPACE_ADD__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!a || !a->name)
		return -EINVAL;
	sa.name = (char *)a->name;
	sa.kind = (Potad__V1__SpaceKind)a->kind;
	if (a->path)
		sa.path = (char *)a->path;
	if (a->pci)
		sa.pci = (char *)a->pci;
	sa.bar = a->bar;
	sa.base_offset = a->base;
	sa.size = a->size;
	sa.granule = a->granule;
	sa.n_allow_uids = a->n_allow_uids;
	sa.allow_uids = (uint32_t *)a->allow_uids;
	sa.n_allow_gids = a->n_allow_gids;
	sa.allow_gids = (uint32_t *)a->allow_gids;
	sa.allow_all = a->allow_all;
	sa.force = a->force;
	sa.discard = a->discard;
	sa.isolate = a->isolate;
	op.op_case = POTAD__V1__OP__OP_SPACE_ADD;
	op.space_add = &sa;
	return call_space(c, &op, true, out);
}

int potad_client_space_rm(struct potad_client *c, const char *name, bool force)
{
	Potad__V1__SpaceRemove sr = POTAD__V1__SPACE_REMOVE__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!name)
		return -EINVAL;
	sr.name = (char *)name;
	sr.force = force;
	op.op_case = POTAD__V1__OP__OP_SPACE_REMOVE;
	op.space_remove = &sr;
	return call_plain(c, &op);
}

int potad_client_space_stat(struct potad_client *c, const char *name, bool frag,
			    struct potad_client_space **out)
{
	Potad__V1__SpaceStat ss = POTAD__V1__SPACE_STAT__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!name || !out)
		return -EINVAL;
	ss.name = (char *)name;
	ss.fragmentation = frag;
	op.op_case = POTAD__V1__OP__OP_SPACE_STAT;
	op.space_stat = &ss;
	return call_space(c, &op, false, out);
}

static void fill_alloc(Potad__V1__Alloc *al,
		       const struct potad_client_alloc_args *a)
{
	al->space = (char *)a->space;
	al->size = a->size;
	al->align = a->align;
	al->min = a->min;
	al->max = a->max;
	al->top_down = !!(a->flags & POTAD_CLIENT_ALLOC_TOPDOWN);
	al->whole = !!(a->flags & POTAD_CLIENT_ALLOC_WHOLE);
	al->fixed = !!(a->flags & POTAD_CLIENT_ALLOC_FIXED);
	al->at = a->at;
	if (a->label)
		al->label = (char *)a->label;
	al->tag = a->tag;
	if (a->token)
		al->token = (char *)a->token;
	al->session = !!(a->flags & POTAD_CLIENT_ALLOC_SESSION);
	al->clean = !!(a->flags & POTAD_CLIENT_ALLOC_CLEAN);
	if (a->reserve)
		al->reserve = (char *)a->reserve;
}

int potad_client_alloc(struct potad_client *c,
		       const struct potad_client_alloc_args *a,
		       struct potad_client_extent **out)
{
	Potad__V1__Alloc al = POTAD__V1__ALLOC__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!a || !a->space)
		return -EINVAL;
	fill_alloc(&al, a);
	op.op_case = POTAD__V1__OP__OP_ALLOC;
	op.alloc = &al;
	return call_extent(c, &op, false, out);
}

/* One Free: fr names the extent (by handle, or by offset) and how much of
 * it to keep. */
static int call_free(struct potad_client *c, const char *space,
		     Potad__V1__Free *fr, struct potad_client_extent **out)
{
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!space)
		return -EINVAL;
	fr->space = (char *)space;
	op.op_case = POTAD__V1__OP__OP_FREE;
	op.free = fr;
	return call_extent(c, &op, true, out);
}

int potad_client_free(struct potad_client *c, const char *space,
		      uint64_t handle, struct potad_client_extent **out)
{
	Potad__V1__Free fr = POTAD__V1__FREE__INIT;

	fr.handle = handle;
	return call_free(c, space, &fr, out);
}

int potad_client_shrink(struct potad_client *c, const char *space,
			uint64_t handle, uint64_t keep,
			struct potad_client_extent **out)
{
	Potad__V1__Free fr = POTAD__V1__FREE__INIT;

	if (!keep)
		return -EINVAL;
	fr.handle = handle;
	fr.keep = keep;
	return call_free(c, space, &fr, out);
}

int potad_client_free_offset(struct potad_client *c, const char *space,
			     uint64_t offset, struct potad_client_extent **out)
{
	Potad__V1__Free fr = POTAD__V1__FREE__INIT;

	fr.by_offset = true;
	fr.offset = offset;
	return call_free(c, space, &fr, out);
}

int potad_client_lookup(struct potad_client *c, const char *space,
			uint64_t offset, struct potad_client_extent **out)
{
	Potad__V1__Lookup lk = POTAD__V1__LOOKUP__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!space || !out)
		return -EINVAL;
	lk.space = (char *)space;
	lk.offset = offset;
	op.op_case = POTAD__V1__OP__OP_LOOKUP;
	op.lookup = &lk;
	return call_extent(c, &op, false, out);
}

int potad_client_list_extents_page(struct potad_client *c,
				   const char *space, bool by_owner,
				   uint32_t owner_uid, const char *label,
				   uint64_t from, uint32_t limit,
				   struct potad_client_extent **out, bool *more,
				   uint64_t *next)
{
	Potad__V1__ListExtents le = POTAD__V1__LIST_EXTENTS__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;
	Potad__V1__ServerMessage *m;
	Potad__V1__Result *res;
	Potad__V1__ExtentList *el;
	struct potad_client_extent *o;
	int rc;

	if (!space || !out)
		return -EINVAL;
	*out = NULL;
	le.space = (char *)space;
	le.by_owner = by_owner;
	le.owner_uid = owner_uid;
	if (label)
		le.label = (char *)label;
	le.from = from;
	le.limit = limit;
	op.op_case = POTAD__V1__OP__OP_LIST_EXTENTS;
	op.list_extents = &le;
	rc = call(c, &op, POTAD__V1__RESULT__BODY_EXTENTS, false, &m, &res);
	if (rc < 0)
		return rc;
	el = res->extents;
	o = hold_new(m, el->n_extents * sizeof(*o));
	if (!o) {
		potad__v1__server_message__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	for (size_t i = 0; i < el->n_extents; i++)
		conv_extent(el->extents[i], &o[i]);
	*out = o;
	if (more)
		*more = el->more;
	if (next)
		*next = el->more ? el->next : 0;
	return (int)el->n_extents;
}

int potad_client_list_extents(struct potad_client *c, const char *space,
			      bool by_owner, uint32_t owner_uid,
			      const char *label,
			      struct potad_client_extent **out)
{
	return potad_client_list_extents_page(c, space, by_owner, owner_uid,
					      label, 0, 0, out, NULL, NULL);
}

int potad_client_poison(struct potad_client *c, const char *space,
			uint64_t offset, uint64_t length, uint32_t *extents_hit)
{
	Potad__V1__Poison po = POTAD__V1__POISON__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;
	Potad__V1__ServerMessage *m;
	Potad__V1__Result *res;
	int rc;

	if (!space)
		return -EINVAL;
	po.space = (char *)space;
	po.offset = offset;
	po.length = length;
	op.op_case = POTAD__V1__OP__OP_POISON;
	op.poison = &po;
	rc = call(c, &op, POTAD__V1__RESULT__BODY_POISON, true, &m, &res);
	if (rc < 0)
		return rc;
	if (extents_hit)
		*extents_hit = res->body_case == POTAD__V1__RESULT__BODY_POISON
				   ? res->poison->extents_hit
				   : 0;
	potad__v1__server_message__free_unpacked(m, NULL);
	return 0;
}

int potad_client_child_add(struct potad_client *c,
			   const struct potad_client_child_args *a,
			   struct potad_client_space **out)
{
	Potad__V1__ChildAdd ca = POTAD__V1__CHILD_ADD__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!a || !a->parent || !a->name)
		return -EINVAL;
	ca.parent = (char *)a->parent;
	ca.name = (char *)a->name;
	ca.size = a->size;
	ca.align = a->align;
	ca.granule = a->granule;
	ca.reserve = a->reserve;
	ca.n_allow_uids = a->n_allow_uids;
	ca.allow_uids = (uint32_t *)a->allow_uids;
	ca.n_allow_gids = a->n_allow_gids;
	ca.allow_gids = (uint32_t *)a->allow_gids;
	op.op_case = POTAD__V1__OP__OP_CHILD_ADD;
	op.child_add = &ca;
	return call_space(c, &op, true, out);
}

int potad_client_child_rm(struct potad_client *c, const char *name)
{
	Potad__V1__ChildRemove cr = POTAD__V1__CHILD_REMOVE__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!name)
		return -EINVAL;
	cr.name = (char *)name;
	op.op_case = POTAD__V1__OP__OP_CHILD_REMOVE;
	op.child_remove = &cr;
	return call_plain(c, &op);
}

int potad_client_subscribe(struct potad_client *c, const char *space,
			   uint32_t low_water_percent)
{
	Potad__V1__Subscribe su = POTAD__V1__SUBSCRIBE__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (space)
		su.space = (char *)space;
	su.low_water_percent = low_water_percent;
	op.op_case = POTAD__V1__OP__OP_SUBSCRIBE;
	op.subscribe = &su;
	return call_plain(c, &op);
}

/* Events. */

static int conv_event(Potad__V1__ServerMessage *m,
		      struct potad_client_event **out)
{
	const Potad__V1__Event *ev = m->event;
	struct potad_client_event *o;
	struct potad_client_extent *e;

	o = hold_new(m, sizeof(*o) + sizeof(*e));
	if (!o)
		return -ENOMEM;
	e = (struct potad_client_extent *)(o + 1);
	o->space = "";
	switch (ev->event_case) {
	case POTAD__V1__EVENT__EVENT_POISON:
		o->type = POTAD_CLIENT_EVENT_POISON;
		o->offset = ev->poison->offset;
		o->length = ev->poison->length;
		if (ev->poison->extent) {
			conv_extent(ev->poison->extent, e);
			o->extent = e;
			o->space = e->space;
		}
		break;
	case POTAD__V1__EVENT__EVENT_LOW_SPACE:
		o->type = POTAD_CLIENT_EVENT_LOW_SPACE;
		o->space = str(ev->low_space->space);
		o->free_bytes = ev->low_space->free_bytes;
		o->size = ev->low_space->size;
		o->low_water_percent = ev->low_space->low_water_percent;
		break;
	default:
		/* Not reached: next_event skips kinds it does not know. */
		break;
	}
	*out = o;
	return 0;
}

int potad_client_next_event(struct potad_client *c, int timeout_ms,
			    struct potad_client_event **out)
{
	int64_t deadline = deadline_in(timeout_ms);
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	for (;;) {
		while (c->events.head) {
			Potad__V1__ServerMessage *m = c->events.head->m;
			Potad__V1__Event__EventCase k = m->event->event_case;

			/* Event kinds newer than this library are skipped. */
			if (k != POTAD__V1__EVENT__EVENT_POISON &&
			    k != POTAD__V1__EVENT__EVENT_LOW_SPACE) {
				potad__v1__server_message__free_unpacked(
				    queue_pop(&c->events), NULL);
				continue;
			}
			/* Taken off the queue only once converted. */
			rc = conv_event(m, out);
			if (rc == 0)
				queue_pop(&c->events);
			return rc;
		}
		rc = read_some(c, deadline);
		if (rc < 0)
			return rc;
	}
}

/* Pipelining. */

static int queue_op(struct potad_client *c, const Potad__V1__Op *op)
{
	int rc;

	if (c->err)
		return c->err;
	if (c->n_queued >= INT_MAX)
		return -EMSGSIZE;
	/* Leave room for the id field in front. */
	if (c->queued.len + 1 + POTAD_VARINT_MAX > c->frame_max)
		return -EMSGSIZE;
	rc = put_op(c, &c->queued, op);
	if (rc < 0)
		return rc;
	return (int)c->n_queued++;
}

int potad_client_queue_alloc(struct potad_client *c,
			     const struct potad_client_alloc_args *a)
{
	Potad__V1__Alloc al = POTAD__V1__ALLOC__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!a || !a->space)
		return -EINVAL;
	fill_alloc(&al, a);
	op.op_case = POTAD__V1__OP__OP_ALLOC;
	op.alloc = &al;
	return queue_op(c, &op);
}

int potad_client_queue_free(struct potad_client *c, const char *space,
			    uint64_t handle)
{
	Potad__V1__Free fr = POTAD__V1__FREE__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!space)
		return -EINVAL;
	fr.space = (char *)space;
	fr.handle = handle;
	op.op_case = POTAD__V1__OP__OP_FREE;
	op.free = &fr;
	return queue_op(c, &op);
}

int potad_client_queue_free_offset(struct potad_client *c, const char *space,
				   uint64_t offset)
{
	Potad__V1__Free fr = POTAD__V1__FREE__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!space)
		return -EINVAL;
	fr.space = (char *)space;
	fr.by_offset = true;
	fr.offset = offset;
	op.op_case = POTAD__V1__OP__OP_FREE;
	op.free = &fr;
	return queue_op(c, &op);
}

int potad_client_queue_lookup(struct potad_client *c, const char *space,
			      uint64_t offset)
{
	Potad__V1__Lookup lk = POTAD__V1__LOOKUP__INIT;
	Potad__V1__Op op = POTAD__V1__OP__INIT;

	if (!space)
		return -EINVAL;
	lk.space = (char *)space;
	lk.offset = offset;
	op.op_case = POTAD__V1__OP__OP_LOOKUP;
	op.lookup = &lk;
	return queue_op(c, &op);
}

void potad_client_queue_discard(struct potad_client *c)
{
	c->queued.len = 0;
	c->n_queued = 0;
}

int potad_client_send(struct potad_client *c, uint64_t *id)
{
	int n = (int)c->n_queued;
	int rc;

	if (c->err)
		return c->err;
	if (!n)
		return -EINVAL;
	rc = send_request(c, &c->queued, true, id, deadline_in(c->timeout_ms));
	if (rc < 0)
		return rc;
	potad_client_queue_discard(c);
	return n;
}

unsigned potad_client_in_flight(const struct potad_client *c)
{
	return c->unanswered + c->replies.n;
}

static int conv_reply(Potad__V1__ServerMessage *m,
		      struct potad_client_reply **out)
{
	const Potad__V1__Response *r = m->response;
	struct potad_client_reply *o;
	struct potad_client_result *res;
	struct potad_client_extent *ext;
	size_t n = r->n_results;

	o = hold_new(m, sizeof(*o) + n * (sizeof(*res) + sizeof(*ext)));
	if (!o)
		return -ENOMEM;
	res = (struct potad_client_result *)(o + 1);
	ext = (struct potad_client_extent *)(res + n);
	o->id = r->id;
	o->status = status_errno(r->status);
	o->message = str(r->message);
	o->n_results = n;
	o->results = res;
	for (size_t i = 0; i < n; i++) {
		const Potad__V1__Result *x = r->results[i];

		res[i].status = status_errno(x->status);
		res[i].message = str(x->message);
		if (x->body_case == POTAD__V1__RESULT__BODY_EXTENT) {
			conv_extent(x->extent, &ext[i]);
			res[i].extent = &ext[i];
		}
	}
	*out = o;
	return 0;
}

int potad_client_recv(struct potad_client *c, int timeout_ms,
		      struct potad_client_reply **out)
{
	int64_t deadline = deadline_in(timeout_ms);
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	while (!c->replies.n) {
		if (!c->unanswered)
			return -ENOMSG;
		rc = read_some(c, deadline);
		if (rc < 0)
			return rc;
	}
	/* Taken off the queue only once converted: out of memory loses
	 * nothing. */
	rc = conv_reply(c->replies.head->m, out);
	if (rc < 0)
		return rc;
	queue_pop(&c->replies);
	return 0;
}
