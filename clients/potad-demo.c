/* SPDX-License-Identifier: MIT */
/* potad-demo: walks the POTAD engine through a short session and prints
 * what it does, until the daemon can show the same over its socket. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "potad/engine.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: potad-demo [--size BYTES] [--granule-shift G]\n"
		"\n"
		"Creates one in-memory POTAD space, allocates exact, whole,\n"
		"aligned and fixed extents, looks one up, poisons a range,\n"
		"frees everything and prints the per-order free table\n"
		"(like /proc/buddyinfo) after each step.  Nothing is kept:\n"
		"this is an engine demo, not the daemon.\n"
		"\n"
		"  --size BYTES        space size (default 1073741824, 1 GiB)\n"
		"  --granule-shift G   unit is 2^G bytes (default 12, 4 KiB)\n"
		"  --help              this text\n");
}

static void buddyinfo(const struct potad_space *s, const char *when)
{
	struct potad_stats st;
	uint64_t run;
	double score;
	unsigned top;

	potad_space_stats(s, &st);
	potad_space_frag(s, &run, &score);
	printf("\n-- %s: %" PRIu64 " extents, %" PRIu64 " of %" PRIu64
	       " units free, %" PRIu64 " poisoned, largest run %" PRIu64
	       " bytes, fragmentation %.3f, metadata %" PRIu64 " bytes\n",
	       when, st.extents, st.free_units, st.units, st.poison_units, run,
	       score, st.meta_bytes);
	for (top = st.max_order; top > 0 && !st.free_per_order[top]; top--)
		;
	printf("   order:");
	for (unsigned k = 0; k <= top; k++)
		printf(" %4u", k);
	printf("\n   free: ");
	for (unsigned k = 0; k <= top; k++)
		printf(" %4" PRIu64, st.free_per_order[k]);
	printf("\n");
}

static void show(const char *what, int rc, const struct potad_extent *e)
{
	if (rc < 0)
		printf("%-34s -> %s\n", what, strerror(-rc));
	else
		printf("%-34s -> offset %#12" PRIx64 " length %#10" PRIx64
		       " handle %#018" PRIx64 "\n",
		       what, e->offset, e->length, e->handle);
}

static void on_poison(struct potad_space *s, const struct potad_extent *e,
		      void *arg)
{
	printf("   poison hits extent %#" PRIx64 "+%#" PRIx64 " of owner %u\n",
	       e->offset, e->length, e->owner);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "granule-shift", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 1ull << 30;
	unsigned g = 12;
	struct potad_space *s;
	struct potad_extent e[6], f;
	char msg[256];
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			size = strtoull(optarg, NULL, 0);
			break;
		case 'g':
			g = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	rc = potad_space_new(&s, 0, size, g);
	if (rc < 0) {
		fprintf(stderr, "potad-demo: cannot create the space: %s\n",
			strerror(-rc));
		return 1;
	}
	printf("space [0, %#" PRIx64 ") with %u-byte units (in memory only)\n",
	       size, 1u << g);
	buddyinfo(s, "fresh");

	struct potad_alloc_req r[6] = {
		{ .size = 12 << 10, .owner = 1 },
		{ .size = 12 << 10, .owner = 1, .flags = POTAD_ALLOC_WHOLE },
		{ .size = 8 << 20, .align = 1 << 20, .owner = 2 },
		{ .size = 100 << 10, .owner = 2, .flags = POTAD_ALLOC_TOPDOWN },
		{ .size = 64 << 10, .owner = 3, .min = 256 << 20,
		  .max = 512 << 20 },
		{ .size = 4 << 10, .owner = 3, .at = 3 << 20,
		  .flags = POTAD_ALLOC_FIXED },
	};
	const char *what[6] = {
		"alloc 12K (exact)",
		"alloc 12K --whole",
		"alloc 8M --align 1M",
		"alloc 100K --top-down",
		"alloc 64K --min 256M --max 512M",
		"alloc 4K --at 3M",
	};
	for (int i = 0; i < 6; i++) {
		rc = potad_alloc(s, &r[i], &e[i]);
		show(what[i], rc, &e[i]);
	}
	show("alloc 4K --at 3M (again)", potad_alloc(s, &r[5], &f), &f);
	buddyinfo(s, "after allocating");

	rc = potad_lookup(s, e[2].offset + 12345, &f);
	printf("lookup %#" PRIx64 " -> ", e[2].offset + 12345);
	if (rc == 0)
		printf("extent %#" PRIx64 "+%#" PRIx64 " owner %u\n", f.offset,
		       f.length, f.owner);
	else
		printf("%s\n", strerror(-rc));
	rc = potad_poison(s, e[2].offset + (1 << 20), 1 << g, on_poison, NULL);
	printf("poison 1 unit inside the 8M extent -> %d extent(s) hit\n", rc);

	for (int i = 0; i < 6; i++)
		if (potad_free(s, e[i].handle, NULL) < 0)
			printf("free %#" PRIx64 " failed\n", e[i].handle);
	rc = potad_free(s, e[0].handle, NULL);
	printf("free the first handle again -> %s\n", strerror(-rc));
	buddyinfo(s, "after freeing everything (one unit stays poisoned)");

	rc = potad_space_check(s, msg, sizeof(msg));
	printf("\ninvariant check: %s\n", rc ? msg : "ok");
	potad_space_destroy(s);
	return rc ? 1 : 0;
}
