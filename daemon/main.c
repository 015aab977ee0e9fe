/* SPDX-License-Identifier: MIT */
/* potad: the space-allocation daemon's entry point. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: potad [--config FILE] [--socket PATH] [--state-dir DIR]\n"
"             [--foreground] [--log-level LEVEL]\n"
"\n"
"Serve POTAD space allocation to local clients over a Unix socket\n"
"(protobuf, see proto/potad.proto and potad(8)).\n"
"\n"
"This build keeps all state in memory only: extents do not survive a\n"
"restart until the journal lands.  Without --config it serves one\n"
"built-in space, \"default\": a 1 GiB range with 4 KiB units that anyone\n"
"may allocate from.\n"
"\n"
"  --config FILE      read daemon settings and spaces from FILE (potad.conf(5))\n"
"  --socket PATH      listen on PATH (default /run/potad/potad.sock)\n"
"  --state-dir DIR    state directory (default /var/lib/potad; not written yet)\n"
"  --foreground       stay in the foreground (otherwise detach once serving)\n"
"  --log-level LEVEL  error, warn, info (default) or debug\n"
"  --version          print the version\n"
"  --help             this text\n");
}

static int register_decls(const struct potad_space_decl *d, size_t n)
{
	char msg[256];

	for (size_t i = 0; i < n; i++) {
		struct pspace *ps;
		int rc = potad__space_declare(&d[i], &ps, msg, sizeof(msg));

		if (rc < 0) {
			log_err("space %s: %s", d[i].name, msg);
			return rc;
		}
		log_info("space %s: %s", d[i].name, msg);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *sock = NULL, *state = NULL, *level = NULL;
	struct potad_config cfg;
	struct potad_space_decl *decls = NULL;
	size_t ndecls = 0;
	bool fg = false;
	int c, rc, lvl;

	while ((c = getopt_long(argc, argv, "c:s:d:fl:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'd':
			state = optarg;
			break;
		case 'f':
			fg = true;
			break;
		case 'l':
			level = optarg;
			break;
		case 'V':
			printf("potad %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "potad: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (level && potad__log_parse_level(level) < 0) {
		fprintf(stderr, "potad: unknown log level '%s'\n", level);
		return 2;
	}
	if (potad__config_load(&cfg, config, &decls, &ndecls) < 0)
		return 1;
	if (sock) {
		free(cfg.socket_path);
		cfg.socket_path = strdup(sock);
	}
	if (state) {
		free(cfg.state_dir);
		cfg.state_dir = strdup(state);
	}
	if (!cfg.socket_path || !cfg.state_dir) {
		log_err("out of memory");
		return 1;
	}
	lvl = level ? potad__log_parse_level(level) : cfg.log_level;
	potad__log_set_level(lvl);
	cfg.foreground = fg;
	if (cfg.admin_group) {
		struct group *g = getgrnam(cfg.admin_group);

		if (!g) {
			log_err("admin group %s does not exist", cfg.admin_group);
			return 1;
		}
		cfg.admin_gid = g->gr_gid;
		cfg.has_admin_gid = true;
	}
	log_info("potad %s starting; state is kept in memory only (no "
		 "journal in this build): extents do not survive a restart, "
		 "and %s is not written",
		 PACKAGE_VERSION, cfg.state_dir);
	if (mkdir(cfg.state_dir, 0750) < 0 && errno != EEXIST)
		log_warn("cannot create state directory %s: %s", cfg.state_dir,
			 strerror(errno));
	potad__rpc_init(&cfg);
	rc = potad__registry_init(&cfg);
	if (rc == 0)
		rc = register_decls(decls, ndecls);
	if (rc == 0)
		rc = potad__listen(&cfg, uv_default_loop());
	if (rc < 0) {
		potad__registry_fini();
		potad__config_free(&cfg, decls, ndecls);
		return 1;
	}
	if (!fg) {
		pid_t pid = fork();

		if (pid < 0) {
			log_err("fork: %s", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			printf("potad: serving on %s (pid %d)\n", cfg.socket_path,
			       (int)pid);
			fflush(stdout);
			_exit(0);
		}
		setsid();
		/* Let go of the caller's terminal or pipe: a script that
		 * reads our output must not wait for us to exit.  Standard
		 * error stays, for the log. */
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			if (null > STDERR_FILENO)
				close(null);
		}
		/* libuv's loop must be told about the fork. */
		uv_loop_fork(uv_default_loop());
	}
	rc = potad__serve(&cfg);
	log_info("stopped");
	potad__registry_fini();
	potad__config_free(&cfg, decls, ndecls);
	uv_loop_close(uv_default_loop());
	return rc < 0 ? 1 : 0;
}
