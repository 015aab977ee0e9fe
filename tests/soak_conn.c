/* SPDX-License-Identifier: MIT */
/* The soak test's connections: non-blocking sockets to the daemon, framed
 * requests out, framed server messages in. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "soak.h"
#include "wire/frame.h"

/* Connect with a bounded wait (a full backlog blocks connect() on a Unix
 * socket), then make the socket non-blocking. */
int soak_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
	size_t len = strlen(soak.d.sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	EXPECT(fd >= 0, "socket: %s", strerror(errno));
	EXPECT(len < sizeof(sa.sun_path), "%s: too long", soak.d.sock);
	memcpy(sa.sun_path, soak.d.sock, len + 1);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	EXPECT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	       "connect %s: %s; daemon log:\n%s", soak.d.sock, strerror(errno),
	       log_tail(&soak.d));
	EXPECT(fcntl(fd, F_SETFL, O_NONBLOCK) == 0, "fcntl: %s",
	       strerror(errno));
	return fd;
}

void c_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->olen = 0;
	c->ilen = 0;
}

int flush_out(struct client *c)
{
	while (c->olen) {
		ssize_t n = write(c->fd, c->out, c->olen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		memmove(c->out, c->out + n, c->olen - (size_t)n);
		c->olen -= (size_t)n;
	}
	return 0;
}

void queue_bytes(struct client *c, const void *p, size_t n)
{
	if (c->ocap < c->olen + n) {
		c->ocap = c->olen + n;
		c->out = realloc(c->out, c->ocap);
		EXPECT(c->out != NULL, "out of memory");
	}
	memcpy(c->out + c->olen, p, n);
	c->olen += n;
}

uint64_t queue_op(struct client *c, Potad__V1__Op *op)
{
	Potad__V1__Request req = POTAD__V1__REQUEST__INIT;

	req.id = ++c->next_id;
	req.ops = &op;
	req.n_ops = 1;
	frame_req(&c->out, &c->olen, &c->ocap, &req);
	free_op(op);
	return req.id;
}

int fill_in(struct client *c)
{
	for (;;) {
		ssize_t n;

		if (c->icap - c->ilen < 65536) {
			c->icap = c->icap ? c->icap * 2 : 131072;
			c->in = realloc(c->in, c->icap);
			EXPECT(c->in != NULL, "out of memory");
		}
		n = read(c->fd, c->in + c->ilen, c->icap - c->ilen);
		if (n > 0) {
			c->ilen += (size_t)n;
			continue;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 1 : -errno;
	}
}

Potad__V1__ServerMessage *next_msg(struct client *c, size_t *pos)
{
	Potad__V1__ServerMessage *m;
	uint64_t len;
	int k = potad__varint_get(c->in + *pos, c->ilen - *pos, &len);

	if (k == 0)
		return NULL;
	EXPECT(k > 0 && len < (1u << 24), "%s: bad frame from the daemon",
	       who(c));
	if (c->ilen - *pos - (size_t)k < len)
		return NULL;
	m = potad__v1__server_message__unpack(NULL, len, c->in + *pos + k);
	EXPECT(m != NULL, "%s: undecodable frame from the daemon", who(c));
	*pos += (size_t)k + len;
	return m;
}

void drop_consumed(struct client *c, size_t pos)
{
	memmove(c->in, c->in + pos, c->ilen - pos);
	c->ilen -= pos;
}
