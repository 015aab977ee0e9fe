/* SPDX-License-Identifier: MIT */
/* libFuzzer target: bytes from a client, cut into frames, decoded,
 * validated and dispatched by the daemon's own conn.c and rpc.c against
 * fresh daemon state, without a socket. */

/*
 * conn.c is included whole (a white-box test, as STYLE.md allows) so
 * that process(), handle_frame() and the reply queue run exactly as they
 * do for a socket.  The connection is a real struct potad_conn that never
 * had a pipe: process() touches the pipe only through set_reading(),
 * which does nothing while the connection is not reading, and through
 * conn_close() on an allocation failure.  Its output is drained after
 * each read, as conn_flush() would, and every reply must decode as a
 * potad.v1.ServerMessage whose strings are valid UTF-8.
 *
 * Limits: SpaceAdd of a probed kind (file, swap, blockdev, devdax,
 * pcibar) is never prepared, so no device or path named by the input is
 * ever opened; the dispatcher then refuses it as it refuses an unknown
 * kind.  Only range spaces are added.  The journal is off, as with
 * --memory-only: durability waits, the writer and the records' encoding
 * are not exercised here (fuzz_replay.c covers the format).
 */
#define _GNU_SOURCE /* as conn.c, whose headers daemon.h pulls in first */
#include "daemon.h"

static int fuzz_prepare(struct potad_conn *c, const Potad__V1__Request *req,
			void (*done)(struct potad_conn *c));
#define potad__rpc_prepare fuzz_prepare
#include "conn.c"
#undef potad__rpc_prepare

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz-rpc: %s:%d: %s\n", __FILE__,    \
				__LINE__, #cond);                             \
			__builtin_trap();                                     \
		}                                                             \
	} while (0)

static struct potad_config cfg;

static int fuzz_prepare(struct potad_conn *c, const Potad__V1__Request *req,
			void (*done)(struct potad_conn *c))
{
	for (size_t i = 0; i < req->n_ops; i++)
		if (req->ops[i]->op_case == POTAD__V1__OP__OP_SPACE_ADD &&
		    req->ops[i]->space_add->kind !=
			    POTAD__V1__SPACE_KIND__RANGE)
			return 0;
	return potad__rpc_prepare(c, req, done);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct potad_space_decl *decls = NULL;
	size_t ndecls = 0;

	if (potad__config_load(&cfg, NULL, &decls, &ndecls) < 0)
		abort();
	potad__config_free(NULL, decls, ndecls);
	cfg.journal = false;
	/* Small limits, so that inputs reach them. */
	cfg.max_frame = 2048;
	cfg.max_queue = 16384;
	potad__log_set_level(POTAD_LOG_ERR - 1);
	return 0;
}

/* Two range spaces: one anyone may use, one only uid 4242 (and admins). */
static void add_spaces(void)
{
	static uid_t only[] = {4242};
	struct potad_space_decl d[2] = {
		{.name = "a", .kind = POTAD__V1__SPACE_KIND__RANGE,
		 .base = 0x100000, .size = 1 << 24, .granule = 4096,
		 .allow_all = true},
		{.name = "b", .kind = POTAD__V1__SPACE_KIND__RANGE,
		 .base = 0, .size = 1 << 20, .granule = 512, .uids = only,
		 .nuids = 1},
	};
	struct pspace *ps;
	char msg[512];

	for (int i = 0; i < 2; i++)
		CHECK(potad__space_declare_now(&d[i], &ps, msg,
					       sizeof(msg)) == 0);
}

/* Take what the connection would send, checking every message. */
static void drain(struct potad_conn *c)
{
	size_t off = 0;

	while (off < c->olen) {
		Potad__V1__ServerMessage *m;
		uint64_t len;
		int k = potad__varint_get(c->obuf + off, c->olen - off, &len);

		CHECK(k > 0 && len <= c->olen - off - (size_t)k);
		m = potad__v1__server_message__unpack(NULL, (size_t)len,
						      c->obuf + off + k);
		CHECK(m != NULL);
		CHECK(potad__strings_ok(&m->base));
		CHECK(m->msg_case != POTAD__V1__SERVER_MESSAGE__MSG_RESPONSE ||
		      m->response->status != POTAD__V1__STATUS__INTERNAL);
		potad__v1__server_message__free_unpacked(m, NULL);
		off += (size_t)k + (size_t)len;
	}
	c->olen = 0;
	c->free_len = 0;
	c->nhold = 0;
	c->dirty = false;
	srv.dirty = NULL;
}

/* Bytes arrive as reads of a size the input picks, as from a socket. */
static void feed(struct potad_conn *c, const uint8_t *p, size_t n,
		 size_t chunk)
{
	while (n && !c->close_after_flush) {
		size_t k = n < chunk ? n : chunk, before;

		if (c->rlen + k > c->rcap) {
			c->rcap = c->rlen + k;
			c->rbuf = realloc(c->rbuf, c->rcap);
			CHECK(c->rbuf != NULL);
		}
		memcpy(c->rbuf + c->rlen, p, k);
		c->rlen += k;
		p += k;
		n -= k;
		/* process() stops at half the queue limit; draining is what
		 * conn_flush() does before it calls back in. */
		do {
			before = c->rlen;
			process(c);
			drain(c);
		} while (c->rlen && c->rlen != before &&
			 !c->close_after_flush);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct potad_conn *c;
	size_t chunk;

	if (size < 2)
		return 0;
	potad__rpc_init(&cfg);
	CHECK(potad__registry_init(&cfg) == 0);
	srv.cfg = &cfg;
	add_spaces();

	c = calloc(1, sizeof(*c));
	CHECK(c != NULL);
	c->id = ++srv.next_id;
	c->peer.admin = data[0] & 1;
	c->peer.uid = c->peer.admin ? 0 : 1000;
	c->peer.gid = c->peer.uid;
	c->peer.pid = 1;
	srv.conns = c;
	srv.nconns = 1;
	chunk = data[1] < 128 ? (size_t)data[1] + 1 : size;
	feed(c, data + 2, size - 2, chunk);

	/* What on_closed() does, less the pipe. */
	potad__rpc_conn_closed(c);
	drain(c);
	srv.conns = NULL;
	srv.nconns = 0;
	conn_free(c);
	potad__registry_fini();
	return 0;
}
