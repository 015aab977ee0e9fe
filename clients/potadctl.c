/* SPDX-License-Identifier: MIT */
/* potadctl: the admin and scripting command line of the potad daemon. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "potad/client.h"

/* Exit statuses: the command line contract. */
#define EXIT_REFUSED 1	   /* the daemon refused the operation */
#define EXIT_USAGE 2	   /* bad command line */
#define EXIT_UNREACHABLE 3 /* no daemon, or the connection failed */

/* The most uids and gids one --allow list may name. */
#define ALLOW_MAX 256
/* Extents asked for per page by list (the daemon may send fewer). */
#define LIST_PAGE 4096

struct cmd {
	const char *name; /* "alloc", or two words: "space add" */
	int (*run)(int argc, char **argv, const struct cmd *me);
	const char *usage; /* synopsis and options, for --help */
};

static bool json;
static const char *socket_path;
static struct potad_client *cl;
static volatile sig_atomic_t stop;

/* The options every command takes besides its own. */
/* clang-format off */
#define COMMON_OPTIONS \
	{"help", no_argument, NULL, 'h'}, \
	{"json", no_argument, NULL, 'J'}, \
	{"socket", required_argument, NULL, 'S'}, \
	{NULL, 0, NULL, 0}
/* clang-format on */

static const struct cmd commands[];

/* Messages and exits. */

static int usage_err(const struct cmd *me, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "potadctl: %s: ", me->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'potadctl %s --help'.\n", me->name);
	return EXIT_USAGE;
}

/* Server strings go to terminals: control characters could rewrite what
 * an admin sees, so they are shown as '?'.  Returns one of a few rotating
 * buffers, enough for one printf. */
static const char *safe(const char *s)
{
	static char *ring[8];
	static unsigned next;
	size_t n = strlen(s);
	char *p;

	p = realloc(ring[next % 8], n + 1);
	if (!p)
		return "?";
	ring[next++ % 8] = p;
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)s[i];

		p[i] = ch && (ch < 0x20 || ch == 0x7f) ? '?' : s[i];
	}
	return p;
}

static int refused(const struct cmd *me, int rc)
{
	const char *msg = potad_client_errmsg(cl);

	/* A refusal may come just before the daemon hangs up (a request
	 * over its frame limit): the refusal is what to report. */
	if (rc == potad_client_error(cl)) {
		fprintf(stderr, "potadctl: %s: lost the daemon: %s\n", me->name,
			potad_client_strerror(rc));
		return EXIT_UNREACHABLE;
	}
	fprintf(stderr, "potadctl: %s: %s%s%s\n", me->name,
		potad_client_strerror(rc), *msg ? ": " : "", safe(msg));
	return EXIT_REFUSED;
}

static int open_client(const struct cmd *me)
{
	const char *path = socket_path;
	int rc;

	if (!path || !*path)
		path = getenv("POTAD_SOCKET");
	if (!path || !*path)
		path = POTAD_CLIENT_SOCKET;
	rc = potad_client_connect(path, &cl);
	if (rc < 0) {
		fprintf(stderr,
			"potadctl: %s: cannot reach the daemon at %s: %s\n",
			me->name, path, strerror(-rc));
		return EXIT_UNREACHABLE;
	}
	return 0;
}

/* Numbers and sizes. */

static const char units[] = "KMGTPE";

/* A size or offset: decimal or 0x hex, with an optional K M G T P E
 * suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	const char *u;
	char *end;
	int base = 10;

	if (s[0] < '0' || s[0] > '9')
		return false;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		if (!s[2] || s[2] == '-' || s[2] == '+' || s[2] == ' ')
			return false;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || end == s)
		return false;
	if (*end) {
		u = strchr(units, end[0] & ~0x20);
		if (!u || !*u || end[1])
			return false;
		for (const char *k = units; k <= u; k++) {
			if (v > UINT64_MAX / 1024)
				return false;
			v *= 1024;
		}
	}
	*out = v;
	return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (!parse_size(s, &v) || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* The way sizes are typed: the largest unit that divides exactly. */
static const char *fmt_size(uint64_t v)
{
	static char ring[8][24];
	static unsigned next;
	char *b = ring[next++ % 8];
	int k = -1;

	while (v && k < 5 && v % ((uint64_t)1024 << (10 * (k + 1))) == 0)
		k++;
	if (k < 0)
		snprintf(b, 24, "%" PRIu64, v);
	else
		snprintf(b, 24, "%" PRIu64 "%c", v >> (10 * (k + 1)), units[k]);
	return b;
}

static bool parse_user(const char *s, uint32_t *uid)
{
	struct passwd *pw;

	if (s[0] >= '0' && s[0] <= '9')
		return parse_u32(s, uid);
	pw = getpwnam(s);
	if (!pw)
		return false;
	*uid = pw->pw_uid;
	return true;
}

static bool parse_group(const char *s, uint32_t *gid)
{
	struct group *gr;

	if (s[0] >= '0' && s[0] <= '9')
		return parse_u32(s, gid);
	gr = getgrnam(s);
	if (!gr)
		return false;
	*gid = gr->gr_gid;
	return true;
}

struct allow {
	uint32_t uids[ALLOW_MAX];
	uint32_t gids[ALLOW_MAX];
	size_t n_uids;
	size_t n_gids;
};

/* One --allow value: a comma-separated list of users (a uid or a name)
 * and groups (@gid or @name). */
static bool parse_allow(const struct cmd *me, const char *arg, struct allow *a)
{
	char *copy = strdup(arg), *save = NULL, *w;
	bool ok = copy != NULL;

	for (w = ok ? strtok_r(copy, ",", &save) : NULL; w && ok;
	     w = strtok_r(NULL, ",", &save)) {
		if (w[0] == '@') {
			ok = a->n_gids < ALLOW_MAX &&
			     parse_group(w + 1, &a->gids[a->n_gids++]);
		} else {
			ok = a->n_uids < ALLOW_MAX &&
			     parse_user(w, &a->uids[a->n_uids++]);
		}
		if (!ok)
			usage_err(me, "--allow: no such user or group '%s'", w);
	}
	free(copy);
	return ok;
}

/* JSON output: one document per command, built as it is printed. */

static int jdepth;
static bool jmore[32]; /* the container at this depth has a member */
static bool jafter_key;

static void jsep(void)
{
	if (jafter_key) {
		jafter_key = false;
		return;
	}
	if (jmore[jdepth])
		putchar(',');
	jmore[jdepth] = true;
}

/* The length of the valid UTF-8 sequence at p, or 0. */
static int utf8_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static void jquote(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p) {
		int n;

		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p++);
		} else if (*p == '\n') {
			fputs("\\n", stdout), p++;
		} else if (*p == '\t') {
			fputs("\\t", stdout), p++;
		} else if (*p < 0x20) {
			printf("\\u%04x", *p++);
		} else if (*p < 0x80) {
			putchar(*p++);
		} else if ((n = utf8_len(p))) {
			fwrite(p, 1, (size_t)n, stdout);
			p += n;
		} else {
			/* Not UTF-8: JSON cannot carry the byte itself. */
			fputs("\\ufffd", stdout);
			p++;
		}
	}
	putchar('"');
}

static void jopen(char ch)
{
	jsep();
	putchar(ch);
	jmore[++jdepth] = false;
}

static void jclose(char ch)
{
	putchar(ch);
	jdepth--;
	/* The end of a document: the next one (watch) starts afresh. */
	if (!jdepth) {
		putchar('\n');
		jmore[0] = false;
	}
}

static void jkey(const char *k)
{
	jsep();
	jquote(k);
	putchar(':');
	jafter_key = true;
}

static void jstr(const char *k, const char *v)
{
	jkey(k);
	jsep();
	jquote(v);
}

static void ju64(const char *k, uint64_t v)
{
	if (k)
		jkey(k);
	jsep();
	printf("%" PRIu64, v);
}

static void jhex(const char *k, uint64_t v)
{
	jkey(k);
	jsep();
	printf("\"0x%" PRIx64 "\"", v);
}

static void jbool(const char *k, bool v)
{
	jkey(k);
	jsep();
	fputs(v ? "true" : "false", stdout);
}

static void jdouble(const char *k, double v)
{
	jkey(k);
	jsep();
	if (isfinite(v))
		printf("%.6g", v);
	else
		fputs("null", stdout);
}

/* Shared printers. */

static const char *const kind_names[] = {
	[POTAD_CLIENT_KIND_UNSPECIFIED] = "unspecified",
	[POTAD_CLIENT_KIND_RANGE] = "range",
	[POTAD_CLIENT_KIND_FILE] = "file",
	[POTAD_CLIENT_KIND_SWAP] = "swap",
	[POTAD_CLIENT_KIND_BLOCKDEV] = "blockdev",
	[POTAD_CLIENT_KIND_DEVDAX] = "devdax",
	[POTAD_CLIENT_KIND_PCIBAR] = "pcibar",
};

static const char *kind_name(enum potad_client_kind k)
{
	if ((unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]))
		return kind_names[k];
	return "unknown";
}

static void json_extent(const char *k, const struct potad_client_extent *e)
{
	if (k)
		jkey(k);
	jopen('{');
	jstr("space", e->space);
	ju64("offset", e->offset);
	ju64("length", e->length);
	jhex("handle", e->handle);
	ju64("owner_uid", e->owner_uid);
	jstr("label", e->label);
	ju64("tag", e->tag);
	jbool("poisoned", e->poisoned);
	jbool("session", e->session);
	jstr("child", e->child);
	jclose('}');
}

static const char *extent_flags(const struct potad_client_extent *e)
{
	static char b[64];

	snprintf(b, sizeof(b), "%s%s%s%s", e->poisoned ? "poisoned," : "",
		 e->session ? "session," : "", *e->child ? "child," : "",
		 e->poisoned || e->session || *e->child ? "" : "-");
	if (b[strlen(b) - 1] == ',')
		b[strlen(b) - 1] = '\0';
	return b;
}

/* A space's discard policy in a word: "discard,isolate", "discard" or
 * "-". */
static const char *policy(const struct potad_client_space *s)
{
	if (s->isolate)
		return s->discard ? "discard,isolate" : "isolate";
	return s->discard ? "discard" : "-";
}

/* Where a space lives: its parent, its path, or its PCI function and BAR
 * (a pcibar's source alone would not say which of six BARs). */
static const char *where(const struct potad_client_space *s)
{
	static char b[256];

	if (*s->parent)
		snprintf(b, sizeof(b), "%s%s", safe(s->parent),
			 s->reserve ? " (reserve)" : "");
	else if (s->kind == POTAD_CLIENT_KIND_PCIBAR)
		snprintf(b, sizeof(b), "%s bar %" PRIu32, safe(s->source),
			 s->bar);
	else
		snprintf(b, sizeof(b), "%s%s", safe(s->source),
			 s->reserve ? " (reserve)" : "");
	return *b ? b : "-";
}

static void json_space(const struct potad_client_space *s, bool frag)
{
	jopen('{');
	jstr("name", s->name);
	jstr("kind", kind_name(s->kind));
	jstr("source", s->source);
	ju64("base", s->base);
	ju64("size", s->size);
	ju64("granule", s->granule);
	jstr("parent", s->parent);
	jbool("reserve", s->reserve);
	jbool("available", s->available);
	jstr("reason", s->reason);
	jstr("identity", s->identity);
	jstr("device", s->device);
	ju64("bar", s->bar);
	jbool("discard", s->discard);
	jbool("isolate", s->isolate);
	ju64("free_bytes", s->free_bytes);
	ju64("used_bytes", s->used_bytes);
	ju64("dirty_bytes", s->dirty_bytes);
	ju64("discarding_bytes", s->discarding_bytes);
	ju64("poisoned_bytes", s->poisoned_bytes);
	ju64("extents", s->extents);
	ju64("free_blocks", s->free_blocks);
	ju64("largest_free_block", s->largest_free_block);
	ju64("meta_bytes", s->meta_bytes);
	if (frag) {
		jdouble("fragmentation", s->fragmentation);
		ju64("largest_free_run", s->largest_free_run);
	}
	jkey("free_per_order");
	jopen('[');
	for (size_t k = 0; k < s->n_free_per_order; k++)
		ju64(NULL, s->free_per_order[k]);
	jclose(']');
	jclose('}');
}

/* What space add and child add print: the new space as the daemon
 * describes it, when it does. */
static void print_added(const char *name, const struct potad_client_space *s)
{
	if (json) {
		jopen('{');
		jstr("name", name);
		jbool("added", true);
		if (s) {
			jkey("space");
			json_space(s, false);
		}
		jclose('}');
	} else if (s) {
		printf("space %s added: %s, %s at 0x%" PRIx64
		       ", granule %s%s%s%s%s%s\n",
		       safe(name), kind_name(s->kind), fmt_size(s->size),
		       s->base, fmt_size(s->granule), *s->parent ? ", in " : "",
		       safe(s->parent), s->reserve ? ", a reserve" : "",
		       s->discard ? ", discard" : "",
		       s->isolate ? ", isolate" : "");
		if (*s->identity)
			printf("identity %s\n", safe(s->identity));
	} else {
		printf("space %s added\n", safe(name));
	}
}

/* Commands. */

static int cmd_common(int o, char **argv, const struct cmd *me)
{
	switch (o) {
	case 'h':
		fputs(me->usage, stdout);
		return 0;
	case 'J':
		json = true;
		return -1;
	case 'S':
		socket_path = optarg;
		return -1;
	case ':':
		return usage_err(me, "option '%s' needs a value",
				 argv[optind - 1]);
	default:
		return usage_err(me, "unknown option '%s'", argv[optind - 1]);
	}
}

/* Parse options with getopt_long; own() handles the command's own ones
 * and returns -1 to go on or an exit status. */
#define PARSE_OPTIONS(argc, argv, me, longopts, own)                           \
	do {                                                                   \
		int o_, r_;                                                    \
		optind = 0;                                                    \
		opterr = 0;                                                    \
		while ((o_ = getopt_long(argc, argv, ":h", longopts, NULL)) != \
		       -1) {                                                   \
			r_ = own(o_, argv, me);                                \
			if (r_ >= 0)                                           \
				return r_;                                     \
		}                                                              \
	} while (0)

static int no_options(int o, char **argv, const struct cmd *me)
{
	return cmd_common(o, argv, me);
}

static int cmd_hello(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {COMMON_OPTIONS};
	struct potad_client_hello *h;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, no_options);
	if (argc - optind != 0)
		return usage_err(me, "takes no arguments");
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_hello(cl, "potadctl", &h);
	if (rc < 0)
		return refused(me, rc);
	if (json) {
		jopen('{');
		ju64("protocol", h->protocol);
		jstr("server_version", h->server_version);
		jkey("capabilities");
		jopen('[');
		for (size_t i = 0; i < h->n_capabilities; i++) {
			jsep();
			jquote(h->capabilities[i]);
		}
		jclose(']');
		ju64("uid", h->uid);
		ju64("gid", h->gid);
		jbool("admin", h->admin);
		jbool("durable", h->durable);
		jclose('}');
	} else {
		printf("server        %s\n", safe(h->server_version));
		printf("protocol      %" PRIu32 "\n", h->protocol);
		printf("uid           %" PRIu32 "\n", h->uid);
		printf("gid           %" PRIu32 "\n", h->gid);
		printf("admin         %s\n", h->admin ? "yes" : "no");
		printf("durable       %s\n", h->durable ? "yes" : "no");
		printf("capabilities ");
		for (size_t i = 0; i < h->n_capabilities; i++)
			printf(" %s", safe(h->capabilities[i]));
		printf("%s\n", h->n_capabilities ? "" : " -");
	}
	potad_client_free_result(h);
	return 0;
}

static int cmd_spaces(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {COMMON_OPTIONS};
	struct potad_client_space *s;
	int n, w = 4;

	PARSE_OPTIONS(argc, argv, me, lo, no_options);
	if (argc - optind != 0)
		return usage_err(me, "takes no arguments");
	n = open_client(me);
	if (n)
		return n;
	n = potad_client_spaces(cl, &s);
	if (n < 0)
		return refused(me, n);
	if (json) {
		jopen('{');
		jkey("spaces");
		jopen('[');
		for (int i = 0; i < n; i++)
			json_space(&s[i], false);
		jclose(']');
		jclose('}');
		goto out;
	}
	for (int i = 0; i < n; i++)
		if ((int)strlen(s[i].name) > w)
			w = (int)strlen(s[i].name);
	printf("%-*s  %-8s  %8s  %8s  %8s  %8s  %7s  %7s  %-5s  %-15s  %s\n", w,
	       "NAME", "KIND", "SIZE", "FREE", "USED", "DIRTY", "EXTENTS",
	       "GRANULE", "AVAIL", "POLICY", "PARENT/SOURCE");
	/* One row per space; what does not fit a column (identity, device
	 * facts, a discard in flight, why a space is not served) follows on
	 * indented lines, only when there is something to say. */
	for (int i = 0; i < n; i++) {
		const struct potad_client_space *x = &s[i];

		printf("%-*s  %-8s  %8s  %8s  %8s  %8s  %7" PRIu64
		       "  %7s  %-5s  %-15s  %s\n",
		       w, safe(x->name), kind_name(x->kind), fmt_size(x->size),
		       fmt_size(x->free_bytes), fmt_size(x->used_bytes),
		       fmt_size(x->dirty_bytes), x->extents,
		       fmt_size(x->granule), x->available ? "yes" : "no",
		       policy(x), where(x));
		if (*x->identity)
			printf("%*s  identity %s\n", w, "", safe(x->identity));
		if (*x->device)
			printf("%*s  device %s\n", w, "", safe(x->device));
		if (x->discarding_bytes)
			printf("%*s  discarding %s\n", w, "",
			       fmt_size(x->discarding_bytes));
		if (!x->available)
			printf("%*s  UNAVAILABLE: %s\n", w, "",
			       *x->reason ? safe(x->reason) : "no reason");
	}
out:
	potad_client_free_result(s);
	return 0;
}

static const char *const kind_words[] = {"range",    "file",   "swap",
					 "blockdev", "devdax", "pcibar"};

struct space_add_opts {
	struct potad_client_space_args a;
	struct allow allow;
	bool path, pci, bar, range;
};

static struct space_add_opts sao;

static int space_add_option(int o, char **argv, const struct cmd *me)
{
	switch (o) {
	case 'k':
		for (unsigned i = 0; i < 6; i++)
			if (!strcasecmp(optarg, kind_words[i]))
				sao.a.kind = (enum potad_client_kind)(i + 1);
		if (!sao.a.kind)
			return usage_err(me,
					 "unknown kind '%s' (range, file, "
					 "swap, blockdev, devdax, pcibar)",
					 optarg);
		return -1;
	case 'p':
		sao.a.path = optarg;
		sao.path = true;
		return -1;
	case 'P':
		sao.a.pci = optarg;
		sao.pci = true;
		return -1;
	case 'b':
		if (!parse_u32(optarg, &sao.a.bar))
			return usage_err(me, "bad BAR number '%s'", optarg);
		sao.bar = true;
		return -1;
	case 'B':
		if (!parse_size(optarg, &sao.a.base))
			return usage_err(me, "bad base '%s'", optarg);
		sao.range = true;
		return -1;
	case 's':
		if (!parse_size(optarg, &sao.a.size))
			return usage_err(me, "bad size '%s'", optarg);
		sao.range = true;
		return -1;
	case 'g':
		if (!parse_size(optarg, &sao.a.granule))
			return usage_err(me, "bad granule '%s'", optarg);
		return -1;
	case 'a':
		return parse_allow(me, optarg, &sao.allow) ? -1 : EXIT_USAGE;
	case 'A':
		sao.a.allow_all = true;
		return -1;
	case 'f':
		sao.a.force = true;
		return -1;
	case 'D':
		sao.a.discard = true;
		return -1;
	case 'I':
		sao.a.isolate = true;
		return -1;
	default:
		return cmd_common(o, argv, me);
	}
}

static int cmd_space_add(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {
	    {"kind", required_argument, NULL, 'k'},
	    {"path", required_argument, NULL, 'p'},
	    {"pci", required_argument, NULL, 'P'},
	    {"bar", required_argument, NULL, 'b'},
	    {"base", required_argument, NULL, 'B'},
	    {"size", required_argument, NULL, 's'},
	    {"granule", required_argument, NULL, 'g'},
	    {"allow", required_argument, NULL, 'a'},
	    {"allow-all", no_argument, NULL, 'A'},
	    {"force", no_argument, NULL, 'f'},
	    {"discard", no_argument, NULL, 'D'},
	    {"isolate", no_argument, NULL, 'I'},
	    COMMON_OPTIONS};
	struct potad_client_space *s;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, space_add_option);
	if (argc - optind != 1)
		return usage_err(me, "expects one NAME");
	if (!sao.a.kind)
		return usage_err(me, "--kind is required");
	if (sao.path + (sao.pci || sao.bar) + sao.range > 1)
		return usage_err(me, "give only one of --path, --pci/--bar, "
				     "--base/--size");
	sao.a.name = argv[optind];
	sao.a.allow_uids = sao.allow.uids;
	sao.a.n_allow_uids = sao.allow.n_uids;
	sao.a.allow_gids = sao.allow.gids;
	sao.a.n_allow_gids = sao.allow.n_gids;
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_space_add(cl, &sao.a, &s);
	if (rc < 0)
		return refused(me, rc);
	print_added(sao.a.name, s);
	potad_client_free_result(s);
	return 0;
}

static bool opt_force, opt_frag;

static int force_option(int o, char **argv, const struct cmd *me)
{
	if (o != 'f')
		return cmd_common(o, argv, me);
	opt_force = true;
	return -1;
}

static int cmd_space_rm(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {{"force", no_argument, NULL, 'f'},
					   COMMON_OPTIONS};
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, force_option);
	if (argc - optind != 1)
		return usage_err(me, "expects one NAME");
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_space_rm(cl, argv[optind], opt_force);
	if (rc < 0)
		return refused(me, rc);
	if (json) {
		jopen('{');
		jstr("name", argv[optind]);
		jbool("removed", true);
		jclose('}');
	} else {
		printf("space %s removed\n", safe(argv[optind]));
	}
	return 0;
}

static int frag_option(int o, char **argv, const struct cmd *me)
{
	if (o != 'F')
		return cmd_common(o, argv, me);
	opt_frag = true;
	return -1;
}

static int cmd_space_stat(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {{"frag", no_argument, NULL, 'F'},
					   COMMON_OPTIONS};
	struct potad_client_space *s;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, frag_option);
	if (argc - optind != 1)
		return usage_err(me, "expects one NAME");
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_space_stat(cl, argv[optind], opt_frag, &s);
	if (rc < 0)
		return refused(me, rc);
	if (json) {
		json_space(s, opt_frag);
		goto out;
	}
	/* First, so that nobody reads the counters below as a space that
	 * serves. */
	if (!s->available)
		printf("UNAVAILABLE: %s\n",
		       *s->reason ? safe(s->reason) : "no reason");
	printf("name                %s\n", safe(s->name));
	printf("kind                %s\n", kind_name(s->kind));
	printf("source              %s\n", *s->source ? safe(s->source) : "-");
	if (s->kind == POTAD_CLIENT_KIND_PCIBAR)
		printf("bar                 %" PRIu32 "\n", s->bar);
	printf("parent              %s\n", *s->parent ? safe(s->parent) : "-");
	printf("reserve             %s\n", s->reserve ? "yes" : "no");
	printf("available           %s%s%s\n", s->available ? "yes" : "no",
	       *s->reason ? ": " : "", safe(s->reason));
	printf("identity            %s\n",
	       *s->identity ? safe(s->identity) : "-");
	printf("device              %s\n", *s->device ? safe(s->device) : "-");
	printf("discard             %s\n", s->discard ? "yes" : "no");
	printf("isolate             %s\n", s->isolate ? "yes" : "no");
	printf("base                0x%" PRIx64 "\n", s->base);
	printf("size                %s\n", fmt_size(s->size));
	printf("granule             %s\n", fmt_size(s->granule));
	printf("free                %s\n", fmt_size(s->free_bytes));
	printf("used                %s\n", fmt_size(s->used_bytes));
	printf("dirty               %s\n", fmt_size(s->dirty_bytes));
	printf("discarding          %s\n", fmt_size(s->discarding_bytes));
	printf("poisoned            %s\n", fmt_size(s->poisoned_bytes));
	printf("extents             %" PRIu64 "\n", s->extents);
	printf("free blocks         %" PRIu64 "\n", s->free_blocks);
	printf("largest free block  %s\n", fmt_size(s->largest_free_block));
	printf("metadata            %s\n", fmt_size(s->meta_bytes));
	if (opt_frag) {
		printf("largest free run    %s\n",
		       fmt_size(s->largest_free_run));
		printf("fragmentation       %.3f\n", s->fragmentation);
	}
out:
	potad_client_free_result(s);
	return 0;
}

static struct potad_client_alloc_args aa;

static int alloc_option(int o, char **argv, const struct cmd *me)
{
	uint64_t *num = NULL;
	const char *what = NULL;

	switch (o) {
	case 'a':
		num = &aa.align, what = "alignment";
		break;
	case 'm':
		num = &aa.min, what = "--min";
		break;
	case 'M':
		num = &aa.max, what = "--max";
		break;
	case '@':
		num = &aa.at, what = "offset";
		aa.flags |= POTAD_CLIENT_ALLOC_FIXED;
		break;
	case 'd':
		aa.flags |= POTAD_CLIENT_ALLOC_TOPDOWN;
		return -1;
	case 'w':
		aa.flags |= POTAD_CLIENT_ALLOC_WHOLE;
		return -1;
	case 'e':
		aa.flags |= POTAD_CLIENT_ALLOC_SESSION;
		return -1;
	case 'c':
		aa.flags |= POTAD_CLIENT_ALLOC_CLEAN;
		return -1;
	case 'l':
		aa.label = optarg;
		return -1;
	case 'k':
		aa.token = optarg;
		return -1;
	case 'r':
		aa.reserve = optarg;
		return -1;
	case 't':
		if (!parse_u32(optarg, &aa.tag))
			return usage_err(me, "bad tag '%s'", optarg);
		return -1;
	default:
		return cmd_common(o, argv, me);
	}
	if (!parse_size(optarg, num))
		return usage_err(me, "bad %s '%s'", what, optarg);
	return -1;
}

/* The extent an alloc or a shrink left held: one line, or a JSON object;
 * what (if not NULL) says what was done, first on the line and as a true
 * JSON key. */
static void print_held(const char *space, const struct potad_client_extent *e,
		       const char *what)
{
	if (json) {
		jopen('{');
		jstr("space", space);
		ju64("offset", e->offset);
		ju64("length", e->length);
		jhex("handle", e->handle);
		if (what)
			jbool(what, true);
		jclose('}');
	} else {
		printf("%s%sspace %s offset 0x%" PRIx64
		       " length %s handle 0x%" PRIx64 "\n",
		       what ? what : "", what ? " " : "", safe(space),
		       e->offset, fmt_size(e->length), e->handle);
	}
}

static int cmd_alloc(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {
	    {"align", required_argument, NULL, 'a'},
	    {"min", required_argument, NULL, 'm'},
	    {"max", required_argument, NULL, 'M'},
	    {"top-down", no_argument, NULL, 'd'},
	    {"whole", no_argument, NULL, 'w'},
	    {"at", required_argument, NULL, '@'},
	    {"label", required_argument, NULL, 'l'},
	    {"tag", required_argument, NULL, 't'},
	    {"token", required_argument, NULL, 'k'},
	    {"session", no_argument, NULL, 'e'},
	    {"clean", no_argument, NULL, 'c'},
	    {"reserve", required_argument, NULL, 'r'},
	    COMMON_OPTIONS};
	struct potad_client_extent *e;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, alloc_option);
	if (argc - optind != 2)
		return usage_err(me, "expects SPACE and SIZE");
	aa.space = argv[optind];
	if (!parse_size(argv[optind + 1], &aa.size))
		return usage_err(me, "bad size '%s'", argv[optind + 1]);
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_alloc(cl, &aa, &e);
	if (rc < 0)
		return refused(me, rc);
	print_held(*e->space ? e->space : aa.space, e, NULL);
	potad_client_free_result(e);
	return 0;
}

static bool opt_by_offset;
static uint64_t opt_offset;

static int free_option(int o, char **argv, const struct cmd *me)
{
	if (o != 'o')
		return cmd_common(o, argv, me);
	if (!parse_size(optarg, &opt_offset))
		return usage_err(me, "bad offset '%s'", optarg);
	opt_by_offset = true;
	return -1;
}

static int cmd_free(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {
	    {"offset", required_argument, NULL, 'o'}, COMMON_OPTIONS};
	struct potad_client_extent *e;
	const char *space;
	uint64_t handle = 0;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, free_option);
	if (argc - optind != (opt_by_offset ? 1 : 2))
		return usage_err(me, opt_by_offset
					 ? "expects SPACE with --offset"
					 : "expects SPACE and HANDLE");
	space = argv[optind];
	if (!opt_by_offset && !parse_size(argv[optind + 1], &handle))
		return usage_err(me, "bad handle '%s'", argv[optind + 1]);
	rc = open_client(me);
	if (rc)
		return rc;
	if (opt_by_offset)
		rc = potad_client_free_offset(cl, space, opt_offset, &e);
	else
		rc = potad_client_free(cl, space, handle, &e);
	if (rc < 0)
		return refused(me, rc);
	if (e)
		handle = e->handle;
	if (json) {
		jopen('{');
		jstr("space", space);
		if (e) {
			ju64("offset", e->offset);
			ju64("length", e->length);
		} else if (opt_by_offset) {
			ju64("offset", opt_offset);
		}
		if (handle)
			jhex("handle", handle);
		jbool("freed", true);
		jclose('}');
	} else if (e) {
		printf("freed space %s offset 0x%" PRIx64 " length %s handle "
		       "0x%" PRIx64 "\n",
		       safe(space), e->offset, fmt_size(e->length), handle);
	} else if (opt_by_offset) {
		printf("freed space %s offset 0x%" PRIx64 "\n", safe(space),
		       opt_offset);
	} else {
		printf("freed space %s handle 0x%" PRIx64 "\n", safe(space),
		       handle);
	}
	potad_client_free_result(e);
	return 0;
}

static int cmd_shrink(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {COMMON_OPTIONS};
	struct potad_client_extent *e;
	uint64_t handle, keep;
	const char *space;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, cmd_common);
	if (argc - optind != 3)
		return usage_err(me, "expects SPACE, HANDLE and SIZE");
	space = argv[optind];
	if (!parse_size(argv[optind + 1], &handle))
		return usage_err(me, "bad handle '%s'", argv[optind + 1]);
	if (!parse_size(argv[optind + 2], &keep) || !keep)
		return usage_err(me, "bad size '%s' (the bytes to keep, not 0)",
				 argv[optind + 2]);
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_shrink(cl, space, handle, keep, &e);
	if (rc < 0)
		return refused(me, rc);
	print_held(space, e, "shrunk");
	potad_client_free_result(e);
	return 0;
}

static void print_extent_row(const struct potad_client_extent *e)
{
	printf("0x%-16" PRIx64 "  %8s  0x%016" PRIx64 "  %6" PRIu32
	       "  %6" PRIu32 "  %-16s  %s%s%s\n",
	       e->offset, fmt_size(e->length), e->handle, e->owner_uid, e->tag,
	       extent_flags(e), *e->label ? safe(e->label) : "-",
	       *e->child ? " child " : "", safe(e->child));
}

static void print_extent_header(void)
{
	printf("%-18s  %8s  %-18s  %6s  %6s  %-16s  %s\n", "OFFSET", "LENGTH",
	       "HANDLE", "OWNER", "TAG", "FLAGS", "LABEL");
}

static int cmd_lookup(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {COMMON_OPTIONS};
	struct potad_client_extent *e;
	uint64_t off;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, no_options);
	if (argc - optind != 2)
		return usage_err(me, "expects SPACE and OFFSET");
	if (!parse_size(argv[optind + 1], &off))
		return usage_err(me, "bad offset '%s'", argv[optind + 1]);
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_lookup(cl, argv[optind], off, &e);
	if (rc < 0)
		return refused(me, rc);
	if (json) {
		json_extent(NULL, e);
	} else {
		print_extent_header();
		print_extent_row(e);
	}
	potad_client_free_result(e);
	return 0;
}

static bool opt_by_owner;
static uint32_t opt_owner;
static const char *opt_label;

static int list_option(int o, char **argv, const struct cmd *me)
{
	switch (o) {
	case 'o':
		if (!parse_user(optarg, &opt_owner))
			return usage_err(me, "no such user '%s'", optarg);
		opt_by_owner = true;
		return -1;
	case 'l':
		opt_label = optarg;
		return -1;
	default:
		return cmd_common(o, argv, me);
	}
}

static int cmd_list(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {
	    {"owner", required_argument, NULL, 'o'},
	    {"label", required_argument, NULL, 'l'},
	    COMMON_OPTIONS};
	struct potad_client_extent *e;
	uint64_t from = 0;
	bool more = true;
	int n;

	PARSE_OPTIONS(argc, argv, me, lo, list_option);
	if (argc - optind != 1)
		return usage_err(me, "expects one SPACE");
	n = open_client(me);
	if (n)
		return n;
	/* Page by page, so that a space with more extents than one reply may
	 * hold is listed whole; each page is printed as it comes. */
	for (bool first = true; more; first = false) {
		n = potad_client_list_extents_page(
		    cl, argv[optind], opt_by_owner, opt_owner, opt_label, from,
		    LIST_PAGE, &e, &more, &from);
		if (n < 0) {
			/* After the first page the output is cut short; the
			 * exit status says so. */
			if (json && !first)
				putchar('\n');
			return refused(me, n);
		}
		if (first && json) {
			jopen('{');
			jstr("space", argv[optind]);
			jkey("extents");
			jopen('[');
		} else if (first) {
			print_extent_header();
		}
		for (int i = 0; i < n; i++) {
			if (json)
				json_extent(NULL, &e[i]);
			else
				print_extent_row(&e[i]);
		}
		potad_client_free_result(e);
	}
	if (json) {
		jclose(']');
		jclose('}');
	}
	return 0;
}

static int cmd_poison(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {COMMON_OPTIONS};
	uint64_t off, len;
	uint32_t hit;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, no_options);
	if (argc - optind != 3)
		return usage_err(me, "expects SPACE, OFFSET and LENGTH");
	if (!parse_size(argv[optind + 1], &off))
		return usage_err(me, "bad offset '%s'", argv[optind + 1]);
	if (!parse_size(argv[optind + 2], &len))
		return usage_err(me, "bad length '%s'", argv[optind + 2]);
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_poison(cl, argv[optind], off, len, &hit);
	if (rc < 0)
		return refused(me, rc);
	if (json) {
		jopen('{');
		jstr("space", argv[optind]);
		ju64("offset", off);
		ju64("length", len);
		ju64("extents_hit", hit);
		jclose('}');
	} else {
		printf("poisoned space %s offset 0x%" PRIx64
		       " length %s: %" PRIu32 " extent%s hit\n",
		       safe(argv[optind]), off, fmt_size(len), hit,
		       hit == 1 ? "" : "s");
	}
	return 0;
}

static struct potad_client_child_args ca;
static struct allow child_allow;

static int child_option(int o, char **argv, const struct cmd *me)
{
	switch (o) {
	case 'a':
		if (!parse_size(optarg, &ca.align))
			return usage_err(me, "bad alignment '%s'", optarg);
		return -1;
	case 'g':
		if (!parse_size(optarg, &ca.granule))
			return usage_err(me, "bad granule '%s'", optarg);
		return -1;
	case 'r':
		ca.reserve = true;
		return -1;
	case 'A':
		return parse_allow(me, optarg, &child_allow) ? -1 : EXIT_USAGE;
	default:
		return cmd_common(o, argv, me);
	}
}

static int cmd_child_add(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {
	    {"align", required_argument, NULL, 'a'},
	    {"granule", required_argument, NULL, 'g'},
	    {"reserve", no_argument, NULL, 'r'},
	    {"allow", required_argument, NULL, 'A'},
	    COMMON_OPTIONS};
	struct potad_client_space *s;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, child_option);
	if (argc - optind != 3)
		return usage_err(me, "expects PARENT, NAME and SIZE");
	ca.parent = argv[optind];
	ca.name = argv[optind + 1];
	if (!parse_size(argv[optind + 2], &ca.size))
		return usage_err(me, "bad size '%s'", argv[optind + 2]);
	ca.allow_uids = child_allow.uids;
	ca.n_allow_uids = child_allow.n_uids;
	ca.allow_gids = child_allow.gids;
	ca.n_allow_gids = child_allow.n_gids;
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_child_add(cl, &ca, &s);
	if (rc < 0)
		return refused(me, rc);
	print_added(ca.name, s);
	potad_client_free_result(s);
	return 0;
}

static int cmd_child_rm(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {COMMON_OPTIONS};
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, no_options);
	if (argc - optind != 1)
		return usage_err(me, "expects one NAME");
	rc = open_client(me);
	if (rc)
		return rc;
	rc = potad_client_child_rm(cl, argv[optind]);
	if (rc < 0)
		return refused(me, rc);
	if (json) {
		jopen('{');
		jstr("name", argv[optind]);
		jbool("removed", true);
		jclose('}');
	} else {
		printf("child space %s removed\n", safe(argv[optind]));
	}
	return 0;
}

static int cmd_buddyinfo(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {COMMON_OPTIONS};
	struct potad_client_space *s = NULL, **each = NULL;
	size_t top = 0;
	int n, w = 5, rc = 0;

	PARSE_OPTIONS(argc, argv, me, lo, no_options);
	if (argc - optind > 1)
		return usage_err(me, "expects at most one SPACE");
	n = open_client(me);
	if (n)
		return n;
	if (argc - optind == 1) {
		n = potad_client_space_stat(cl, argv[optind], false, &s);
		n = n < 0 ? n : 1;
	} else {
		n = potad_client_spaces(cl, &s);
	}
	if (n < 0)
		return refused(me, n);
	each = calloc((size_t)n + 1, sizeof(*each));
	if (!each) {
		rc = refused(me, -ENOMEM);
		goto out_spaces;
	}
	/* A listing may leave the per-order counts out; ask each space. */
	for (int i = 0; i < n; i++) {
		each[i] = &s[i];
		if (s[i].n_free_per_order || !s[i].free_bytes)
			continue;
		rc = potad_client_space_stat(cl, s[i].name, false, &each[i]);
		if (rc < 0) {
			each[i] = NULL;
			rc = refused(me, rc);
			goto out_each;
		}
	}
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < each[i]->n_free_per_order; k++)
			if (each[i]->free_per_order[k] && k > top)
				top = k;
		if ((int)strlen(each[i]->name) > w)
			w = (int)strlen(each[i]->name);
	}
	if (json) {
		jopen('{');
		jkey("spaces");
		jopen('[');
		for (int i = 0; i < n; i++) {
			jopen('{');
			jstr("name", each[i]->name);
			ju64("granule", each[i]->granule);
			jkey("free_per_order");
			jopen('[');
			for (size_t k = 0; k < each[i]->n_free_per_order; k++)
				ju64(NULL, each[i]->free_per_order[k]);
			jclose(']');
			jclose('}');
		}
		jclose(']');
		jclose('}');
		goto out_each;
	}
	printf("%-*s  %7s ", w, "SPACE", "GRANULE");
	for (size_t k = 0; k <= top; k++)
		printf(" %6zu", k);
	printf("\n");
	for (int i = 0; i < n; i++) {
		printf("%-*s  %7s ", w, safe(each[i]->name),
		       fmt_size(each[i]->granule));
		for (size_t k = 0; k <= top; k++)
			printf(" %6" PRIu64, k < each[i]->n_free_per_order
						 ? each[i]->free_per_order[k]
						 : 0);
		printf("\n");
	}
out_each:
	for (int i = 0; i < n; i++)
		if (each[i] != &s[i])
			potad_client_free_result(each[i]);
	free(each);
out_spaces:
	potad_client_free_result(s);
	return rc;
}

static uint32_t opt_low_water;

static int watch_option(int o, char **argv, const struct cmd *me)
{
	if (o != 'w')
		return cmd_common(o, argv, me);
	if (!parse_u32(optarg, &opt_low_water) || opt_low_water > 100)
		return usage_err(me, "bad percentage '%s'", optarg);
	return -1;
}

static void on_signal(int sig)
{
	stop = 1;
}

static void print_event(const struct potad_client_event *ev)
{
	const struct potad_client_extent *e = ev->extent;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	if (json) {
		jopen('{');
		if (ev->type == POTAD_CLIENT_EVENT_POISON) {
			jstr("event", "poison");
			jstr("space", ev->space);
			ju64("offset", ev->offset);
			ju64("length", ev->length);
			if (e)
				json_extent("extent", e);
		} else {
			jstr("event", "low_space");
			jstr("space", ev->space);
			ju64("free_bytes", ev->free_bytes);
			ju64("size", ev->size);
			ju64("low_water_percent", ev->low_water_percent);
		}
		jclose('}');
		return;
	}
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (ev->type == POTAD_CLIENT_EVENT_POISON) {
		printf("%s poison space=%s offset=0x%" PRIx64 " length=%s",
		       when, safe(ev->space), ev->offset, fmt_size(ev->length));
		if (e)
			printf(" extent=0x%" PRIx64 "+%s handle=0x%" PRIx64
			       " owner=%" PRIu32 " label=%s",
			       e->offset, fmt_size(e->length), e->handle,
			       e->owner_uid, *e->label ? safe(e->label) : "-");
		printf("\n");
	} else {
		printf(
		    "%s low-space space=%s free=%s size=%s low-water=%" PRIu32
		    "%%\n",
		    when, safe(ev->space), fmt_size(ev->free_bytes),
		    fmt_size(ev->size), ev->low_water_percent);
	}
}

static int cmd_watch(int argc, char **argv, const struct cmd *me)
{
	static const struct option lo[] = {
	    {"low-water", required_argument, NULL, 'w'}, COMMON_OPTIONS};
	struct sigaction sa = {.sa_handler = on_signal};
	struct potad_client_event *ev;
	int rc;

	PARSE_OPTIONS(argc, argv, me, lo, watch_option);
	if (argc - optind > 1)
		return usage_err(me, "expects at most one SPACE");
	rc = open_client(me);
	if (rc)
		return rc;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = potad_client_subscribe(cl, argc - optind ? argv[optind] : NULL,
				    opt_low_water);
	if (rc < 0)
		return refused(me, rc);
	/* The library retries poll() after a signal, so wake up now and
	 * then to see whether one came. */
	while (!stop) {
		rc = potad_client_next_event(cl, 200, &ev);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0)
			return refused(me, rc);
		print_event(ev);
		potad_client_free_result(ev);
	}
	return 0;
}

static const char u_hello[] =
	"Usage: potadctl hello\n"
	"\n"
	"Say hello to the daemon: its version and protocol, the uid and gid\n"
	"it sees for the caller, whether that caller is an admin, and whether\n"
	"its state is durable.\n";

static const char u_spaces[] =
	"Usage: potadctl spaces\n"
	"\n"
	"List every space: kind, size, free, used and dirty bytes, extents,\n"
	"granule, whether it is served, its discard policy and where it "
	"lives;\n"
	"below a row, its identity, device facts, bytes being discarded and,\n"
	"for a space not served, UNAVAILABLE and why.\n";

static const char u_space_add[] =
	"Usage: potadctl space add NAME --kind KIND [--path P | --pci ADDR "
	"--bar N |\n"
	"           --base B --size S] [--granule G] [--allow UID|@GROUP ...]"
	"\n"
	"           [--allow-all] [--force] [--discard [--isolate]]\n"
	"\n"
	"Register a space (admins).\n"
	"  --kind KIND          range, file, swap, blockdev, devdax or pcibar\n"
	"  --path P             the file or device (file, swap, blockdev, "
	"devdax)\n"
	"  --pci ADDR --bar N   the PCI function and BAR number (pcibar)\n"
	"  --base B --size S    the first address and size (range)\n"
	"  --granule G          the unit, a power of two (default: the "
	"kind's)\n"
	"  --allow WHO          who may allocate: a user (uid or name) or "
	"@GROUP\n"
	"                       (gid or name); repeat it or separate with "
	"commas\n"
	"  --allow-all          anyone may allocate\n"
	"  --force              blockdev: take it although it holds a "
	"filesystem\n"
	"                       or a partition table\n"
	"  --discard            discard freed extents (file, blockdev), then "
	"count\n"
	"                       them clean\n"
	"  --isolate            hand out only clean units, so that what one "
	"owner\n"
	"                       freed reaches no one before it is discarded "
	"(needs\n"
	"                       --discard)\n";

static const char u_space_rm[] =
	"Usage: potadctl space rm NAME [--force]\n"
	"\n"
	"Unregister a space (admins).\n"
	"  --force   remove it even while it holds extents\n";

static const char u_space_stat[] =
	"Usage: potadctl space stat NAME [--frag]\n"
	"\n"
	"Show a space's identity, device facts, policy and counters (dirty\n"
	"and being discarded included); UNAVAILABLE and why first if it is\n"
	"not served.\n"
	"  --frag    also walk the free space (linear time) for the largest "
	"free\n"
	"            run and the fragmentation score\n";

static const char u_alloc[] =
	"Usage: potadctl alloc SPACE SIZE [--align A] [--min X] [--max Y] "
	"[--top-down]\n"
	"           [--whole] [--at OFFSET] [--label L] [--tag T] [--token K]\n"
	"           [--session] [--clean] [--reserve R]\n"
	"\n"
	"Allocate SIZE bytes and print the extent and its handle.\n"
	"  --align A      alignment, a power of two (default: the granule)\n"
	"  --min X        lowest acceptable address\n"
	"  --max Y        end of the acceptable range [X, Y)\n"
	"  --top-down     take the highest fitting address\n"
	"  --whole        keep the whole power-of-two block\n"
	"  --at OFFSET    exactly at OFFSET\n"
	"  --label L      an owner label, e.g. vm-17\n"
	"  --tag T        a number kept with the extent\n"
	"  --token K      idempotency token: a retry returns the same extent\n"
	"  --session      free it when this connection closes (at exit)\n"
	"  --clean        only units no owner has used since registration or\n"
	"                 discard\n"
	"  --reserve R    fall back to the reserve R (privileged)\n";

static const char u_free[] =
	"Usage: potadctl free SPACE HANDLE\n"
	"       potadctl free SPACE --offset OFFSET\n"
	"\n"
	"Free an extent by the handle alloc printed (0x...), or (admins) the\n"
	"extent covering OFFSET.\n";

static const char u_shrink[] =
	"Usage: potadctl shrink SPACE HANDLE SIZE\n"
	"\n"
	"Keep the first SIZE bytes of the extent HANDLE names (fewer than it\n"
	"has, a multiple of the granule) under the same handle, and free the\n"
	"rest.\n";

static const char u_lookup[] =
	"Usage: potadctl lookup SPACE OFFSET\n"
	"\n"
	"Show the extent covering OFFSET and who owns it.\n";

static const char u_list[] =
	"Usage: potadctl list SPACE [--owner UID] [--label L]\n"
	"\n"
	"List the extents of SPACE in address order.\n"
	"  --owner UID   only those of this user (uid or name)\n"
	"  --label L     only those with this label\n";

static const char u_poison[] =
	"Usage: potadctl poison SPACE OFFSET LENGTH\n"
	"\n"
	"Report [OFFSET, OFFSET+LENGTH) bad: never handed out again; owners\n"
	"are told.\n";

static const char u_child_add[] =
	"Usage: potadctl child add PARENT NAME SIZE [--align A] [--granule G]"
	"\n"
	"           [--reserve] [--allow UID|@GROUP ...]\n"
	"\n"
	"Carve a child space NAME of SIZE bytes out of PARENT.\n"
	"  --align A     alignment of the child's extent in PARENT\n"
	"  --granule G   the child's unit (default: the parent's)\n"
	"  --reserve     a strict reserve: only its ACL, only by request\n"
	"  --allow WHO   who may allocate: a user (uid or name) or @GROUP\n";

static const char u_child_rm[] =
	"Usage: potadctl child rm NAME\n"
	"\n"
	"Remove a child space, giving its extent back to the parent.\n";

static const char u_buddyinfo[] =
	"Usage: potadctl buddyinfo [SPACE]\n"
	"\n"
	"Free blocks of each order, like /proc/buddyinfo: one line per space,\n"
	"every space if none is named.\n";

static const char u_watch[] =
	"Usage: potadctl watch [SPACE] [--low-water PERCENT]\n"
	"\n"
	"Subscribe to events (poison, low space) of SPACE or of every space "
	"and\n"
	"print one line each (a JSON object each with --json) until "
	"interrupted.\n"
	"  --low-water PERCENT   warn below this share of free space\n"
	"                        (default: the daemon's)\n";

static const struct cmd commands[] = {
	{"spaces", cmd_spaces, u_spaces},
	{"space add", cmd_space_add, u_space_add},
	{"space rm", cmd_space_rm, u_space_rm},
	{"space stat", cmd_space_stat, u_space_stat},
	{"alloc", cmd_alloc, u_alloc},
	{"free", cmd_free, u_free},
	{"shrink", cmd_shrink, u_shrink},
	{"lookup", cmd_lookup, u_lookup},
	{"list", cmd_list, u_list},
	{"poison", cmd_poison, u_poison},
	{"child add", cmd_child_add, u_child_add},
	{"child rm", cmd_child_rm, u_child_rm},
	{"buddyinfo", cmd_buddyinfo, u_buddyinfo},
	{"watch", cmd_watch, u_watch},
	{"hello", cmd_hello, u_hello},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fputs(
	    "Usage: potadctl [--socket PATH] [--json] COMMAND\n"
	    "  spaces\n"
	    "  space add NAME --kind KIND [--path P | --pci ADDR --bar N |\n"
	    "            --base B --size S] [--granule G]\n"
	    "            [--allow UID|@GROUP ...] [--allow-all] [--force]\n"
	    "            [--discard [--isolate]]\n"
	    "  space rm NAME [--force]\n"
	    "  space stat NAME [--frag]\n"
	    "  alloc SPACE SIZE [--align A] [--min X] [--max Y] [--top-down]\n"
	    "        [--whole] [--at OFFSET] [--label L] [--tag T] [--token "
	    "K]\n"
	    "        [--session] [--clean] [--reserve R]\n"
	    "  free SPACE HANDLE | free SPACE --offset OFFSET\n"
	    "  shrink SPACE HANDLE SIZE\n"
	    "  lookup SPACE OFFSET\n"
	    "  list SPACE [--owner UID] [--label L]\n"
	    "  poison SPACE OFFSET LENGTH\n"
	    "  child add PARENT NAME SIZE [--align A] [--granule G] "
	    "[--reserve]\n"
	    "            [--allow UID|@GROUP ...]\n"
	    "  child rm NAME\n"
	    "  buddyinfo [SPACE]\n"
	    "  watch [SPACE] [--low-water PERCENT]\n"
	    "  hello\n"
	    "\n"
	    "Sizes: decimal, 0x hex, or with K M G T (powers of 1024).\n"
	    "  --socket PATH   the daemon's socket (default: $POTAD_SOCKET, "
	    "else\n"
	    "                  " POTAD_CLIENT_SOCKET ")\n"
	    "  --json          print one JSON document (sizes in bytes)\n"
	    "  --help          this text; COMMAND --help for one command\n"
	    "Exit status: 0 done, 1 refused by the daemon, 2 usage, 3 no "
	    "daemon.\n",
	    f);
}

/* Find the command named by argv[0] (and argv[1] for two-word ones). */
static const struct cmd *find_command(int argc, char **argv, int *words)
{
	size_t len = strlen(argv[0]);

	for (const struct cmd *c = commands; c->name; c++) {
		if (strncmp(c->name, argv[0], len) ||
		    (c->name[len] && c->name[len] != ' '))
			continue;
		if (!c->name[len]) {
			*words = 1;
			return c;
		}
		if (argc > 1 && !strcmp(c->name + len + 1, argv[1])) {
			*words = 2;
			return c;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const struct cmd *me;
	int i, words = 0, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--socket")) {
			if (i + 1 == argc) {
				fprintf(stderr, "potadctl: option '--socket' "
						"needs a value\n");
				return EXIT_USAGE;
			}
			socket_path = argv[++i];
		} else if (!strncmp(argv[i], "--socket=", 9)) {
			socket_path = argv[i] + 9;
		} else if (!strcmp(argv[i], "--help") ||
			   !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr,
				"potadctl: unknown option '%s'\n"
				"Try 'potadctl --help'.\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[i], "help")) {
		usage(stdout);
		return 0;
	}
	me = find_command(argc - i, argv + i, &words);
	if (!me) {
		bool group =
		    !strcmp(argv[i], "space") || !strcmp(argv[i], "child");

		if (group && i + 1 < argc &&
		    (!strcmp(argv[i + 1], "--help") ||
		     !strcmp(argv[i + 1], "-h"))) {
			for (const struct cmd *c = commands; c->name; c++)
				if (!strncmp(c->name, argv[i],
					     strlen(argv[i])) &&
				    c->name[strlen(argv[i])] == ' ')
					printf("%s\n", c->usage);
			return 0;
		}
		if (group)
			fprintf(stderr, "potadctl: %s: expects %s\n", argv[i],
				!strcmp(argv[i], "space") ? "add, rm or stat"
							  : "add or rm");
		else
			fprintf(stderr, "potadctl: unknown command '%s'\n",
				argv[i]);
		fprintf(stderr, "Try 'potadctl --help'.\n");
		return EXIT_USAGE;
	}
	rc = me->run(argc - i - words + 1, argv + i + words - 1, me);
	potad_client_close(cl);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "potadctl: %s: cannot write the output: %s\n",
			me->name, strerror(errno));
		if (!rc)
			rc = EXIT_REFUSED;
	}
	return rc;
}
