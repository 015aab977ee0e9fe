/* SPDX-License-Identifier: MIT */
/* Replays fuzz inputs without libFuzzer: a main that feeds every file
 * under the directories (or files) named on the command line to the
 * target's LLVMFuzzerTestOneInput, so `make check` keeps running the seed
 * corpus and every crash ever found, with any compiler.  Without
 * arguments it replays $srcdir/tests/fuzz/{corpus,regress}/FUZZ_TARGET. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET='\"name\"'"
#endif

static const char *prog = "fuzz-" FUZZ_TARGET;
static unsigned long replayed;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0)
		goto out;
	/* One byte more than needed, so an empty file is not a NULL. */
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto out;
	/* The target traps on a failed check, so getting back is a pass. */
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	replayed++;
	rc = 0;
out:
	if (rc < 0)
		fprintf(stderr, "%s: cannot read %s\n", prog, path);
	free(buf);
	fclose(f);
	return rc;
}

/* Files of dir in name order, so a run is reproducible. */
static int replay_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), rc = 0;

	if (n < 0) {
		/* A target with no regressions yet has no directory. */
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *path;

		if (names[i]->d_name[0] != '.' &&
		    asprintf(&path, "%s/%s", dir, names[i]->d_name) >= 0) {
			struct stat sb;

			if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
			    replay_file(path) < 0)
				rc = -1;
			free(path);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *srcdir = getenv("srcdir");
	char *dirs[2] = {NULL, NULL};
	struct stat sb;
	int rc = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc == 1) {
		if (!srcdir)
			srcdir = ".";
		if (asprintf(&dirs[0], "%s/tests/fuzz/corpus/%s", srcdir,
			     FUZZ_TARGET) < 0 ||
		    asprintf(&dirs[1], "%s/tests/fuzz/regress/%s", srcdir,
			     FUZZ_TARGET) < 0)
			return 1;
		rc |= replay_dir(dirs[0]) | replay_dir(dirs[1]);
		free(dirs[0]);
		free(dirs[1]);
		/* The seed corpus must be there: replaying nothing is not a
		 * pass. */
		if (!replayed) {
			fprintf(stderr, "%s: no inputs under %s/tests/fuzz\n",
				prog, srcdir);
			rc = -1;
		}
	}
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &sb) == 0 && S_ISREG(sb.st_mode))
			rc |= replay_file(argv[i]);
		else
			rc |= replay_dir(argv[i]);
	}
	printf("%s: %lu inputs replayed\n", prog, replayed);
	return rc ? 1 : 0;
}
