/* SPDX-License-Identifier: MIT */
/* potad: the space-allocation daemon's entry point. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "journal.h"
#include "notify.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: potad [--config FILE] [--socket PATH] [--state-dir DIR]\n"
"             [--journal-io auto|uring|sync] [--memory-only]\n"
"             [--foreground] [--log-level LEVEL]\n"
"       potad --check [--state-dir DIR] [--json] [--verbose]\n"
"       potad --unit-dropin [--config FILE] [--state-dir DIR]\n"
"\n"
"Serve POTAD space allocation to local clients over a Unix socket\n"
"(protobuf, see proto/potad.proto and potad(8)).\n"
"\n"
"Every change is written to a journal in the state directory and synced\n"
"before it is acknowledged, so extents survive restarts, crashes and power\n"
"loss (see potad-journal(5)).  Without --config it serves one built-in\n"
"space, \"default\": a 1 GiB range with 4 KiB units that anyone may\n"
"allocate from.\n"
"\n"
"  --config FILE      read daemon settings and spaces from FILE (potad.conf(5))\n"
"  --socket PATH      listen on PATH (default /run/potad.sock)\n"
"  --state-dir DIR    journal and snapshot directory (default /var/lib/potad)\n"
"  --journal-io MODE  auto (io_uring, else pwrite+fdatasync), uring or sync\n"
"  --memory-only      keep no journal: state is lost when potad stops\n"
"  --foreground       stay in the foreground (otherwise detach once serving)\n"
"  --log-level LEVEL  error, warn, info (default) or debug\n"
"  --check            inspect the state directory offline and exit: 0 if\n"
"                     potad would start from it, 1 if it is damaged\n"
"  --json             with --check: print one JSON object\n"
"  --verbose          with --check: list every record\n"
"  --unit-dropin      print the potad.service drop-in (DeviceAllow=,\n"
"                     ReadWritePaths=) the configured and journaled\n"
"                     spaces need, and exit\n"
"  --version          print the version\n"
"  --help             this text\n");
}

/*
 * Declared spaces are registered when absent.  One the journal already
 * holds keeps its extents; if the declaration now differs in kind, source,
 * geometry or policy it is reported, never overwritten, and an admin
 * decides.  A device that cannot be probed (a missing disk, a swap area in
 * use) is reported and skipped: the other spaces are still served.
 */
static int register_decls(const struct potad_space_decl *d, size_t n)
{
	char msg[512];

	for (size_t i = 0; i < n; i++) {
		struct pspace *ps = potad__space_find(d[i].name), *parent;
		int rc;

		if (ps) {
			if (!d[i].parent &&
			    potad__space_differs(ps, &d[i], msg, sizeof(msg)))
				log_warn("space %s: the configuration declares "
					 "%s; the journal's record is kept "
					 "(remove the space to re-declare it)",
					 d[i].name, msg);
			else if (!potad__space_acl_is(ps, &d[i]) &&
				 potad__journal_room(4096) == 0 &&
				 potad__space_set_acl(ps, d[i].allow_all,
						      d[i].uids, d[i].nuids,
						      d[i].gids,
						      d[i].ngids) == 0)
				potad__jr_acl(ps);
			continue;
		}
		if (d[i].parent) {
			parent = potad__space_find(d[i].parent);
			if (!parent) {
				log_err("%s %s: no parent space '%s'; not "
					"carved", d[i].reserve ? "reserve"
							       : "child",
					d[i].name, d[i].parent);
				continue;
			}
			rc = potad__child_carve(parent, &d[i], &ps, msg,
						sizeof(msg));
			if (rc == -ENOMEM)
				return rc;
			if (rc < 0)
				log_err("space %s: %s", d[i].name, msg);
			else
				log_info("%s", msg);
			continue;
		}
		if (potad__journal_room(8192) < 0)
			return -ENOMEM;
		if (potad__decl_probes(&d[i]))
			log_info("space %s: probing %s %s", d[i].name,
				 potad__kind_name(d[i].kind),
				 d[i].path ? d[i].path : d[i].pci);
		rc = potad__space_declare_now(&d[i], &ps, msg, sizeof(msg));
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			log_err("space %s is not registered: %s", d[i].name,
				msg);
			continue;
		}
		potad__jr_new_space(ps);
		log_info("space %s: %s", d[i].name, msg);
	}
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* potad --check: recover into memory, run the engine checker, report. */
static int check_dir(const char *dir, bool json, bool verbose)
{
	struct potad_recovery r = {.check = true, .verbose = verbose};
	char msg[256] = "";
	int rc = potad__recover(dir, &r);

	for (size_t i = 0; rc == 0 && i < potad__space_count(); i++) {
		struct pspace *ps = potad__space_at(i);

		if (potad_space_check(ps->eng, msg, sizeof(msg)) < 0) {
			snprintf(r.error, sizeof(r.error),
				 "space %s fails the engine check: %s",
				 ps->name, msg);
			rc = -EUCLEAN;
		}
	}
	if (json) {
		printf("{\"ok\":%s,\"spaces\":%llu,\"extents\":%llu,"
		       "\"records\":%llu,\"next_seq\":%llu,\"torn\":",
		       rc == 0 ? "true" : "false",
		       (unsigned long long)r.spaces,
		       (unsigned long long)r.extents,
		       (unsigned long long)r.records,
		       (unsigned long long)r.next_seq);
		if (r.torn_file[0]) {
			printf("{\"file\":");
			json_str(r.torn_file);
			printf(",\"offset\":%llu}",
			       (unsigned long long)r.torn_off);
		} else {
			printf("null");
		}
		printf(",\"error\":");
		if (rc < 0)
			json_str(r.error);
		else
			printf("null");
		printf("}\n");
	} else if (rc == 0) {
		printf("%s: OK: %llu space(s), %llu extent(s), %llu log "
		       "record(s) after the snapshot, next seq %llu%s%s\n",
		       dir, (unsigned long long)r.spaces,
		       (unsigned long long)r.extents,
		       (unsigned long long)r.records,
		       (unsigned long long)r.next_seq,
		       r.torn_file[0] ? "; torn tail in " : "",
		       r.torn_file[0] ? r.torn_file : "");
	} else {
		printf("%s: DAMAGED: %s\n", dir, r.error);
	}
	free(r.last_log);
	potad__registry_fini();
	return rc == 0 ? 0 : 1;
}

/* One daemon per state directory. */
static int lock_dir(const char *dir)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		log_err("%s is locked: another potad uses this state directory",
			dir);
		close(fd);
		return -EBUSY;
	}
	return fd; /* held until exit */
}

/* Recover the state directory and open the journal. */
static int open_state(const struct potad_config *cfg)
{
	struct potad_recovery r = {0};
	size_t freed;
	int rc;

	if (mkdir(cfg->state_dir, 0750) < 0 && errno != EEXIST) {
		log_err("cannot create state directory %s: %s", cfg->state_dir,
			strerror(errno));
		return -errno;
	}
	rc = lock_dir(cfg->state_dir);
	if (rc < 0)
		return rc;
	r.lock_fd = rc;
	rc = potad__recover(cfg->state_dir, &r);
	if (rc < 0) {
		log_err("journal: %s; not starting (inspect it with potad "
			"--check --state-dir %s)", r.error, cfg->state_dir);
		free(r.last_log);
		return rc;
	}
	rc = potad__journal_start(cfg, &r, uv_default_loop());
	free(r.last_log);
	if (rc < 0)
		return rc;
	/* Before the sessions: an unavailable space keeps its extents. */
	potad__spaces_verify();
	freed = potad__recover_sessions();
	if (freed)
		log_info("journal: freed %zu session extent(s) of connections "
			 "from before the restart", freed);
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
		{ "journal-io", required_argument, NULL, 'j' },
		{ "memory-only", no_argument, NULL, 'm' },
		{ "check", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'J' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "unit-dropin", no_argument, NULL, 'U' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *sock = NULL, *state = NULL, *level = NULL;
	struct potad_config cfg;
	struct potad_space_decl *decls = NULL;
	size_t ndecls = 0;
	bool fg = false, memonly = false, check = false, json = false;
	bool verbose = false, dropin = false;
	int c, rc, lvl, jio = -1;

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
		case 'j':
			jio = potad__parse_journal_io(optarg);
			if (jio < 0) {
				fprintf(stderr, "potad: --journal-io takes auto, "
					"uring or sync, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'm':
			memonly = true;
			break;
		case 'k':
			check = true;
			break;
		case 'J':
			json = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'U':
			dropin = true;
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
	potad__log_set_level((check || dropin) && !level ? POTAD_LOG_WARN
							 : lvl);
	cfg.foreground = fg;
	if (jio >= 0)
		cfg.journal_io = jio;
	if (memonly)
		cfg.journal = false;
	if (dropin) {
		rc = potad__print_dropin(&cfg, config, decls, ndecls);
		potad__config_free(&cfg, decls, ndecls);
		return rc;
	}
	if (check) {
		rc = check_dir(cfg.state_dir, json, verbose);
		potad__config_free(&cfg, decls, ndecls);
		return rc;
	}
	if (cfg.admin_group) {
		struct group *g = getgrnam(cfg.admin_group);

		if (!g) {
			log_err("admin group %s does not exist", cfg.admin_group);
			return 1;
		}
		cfg.admin_gid = g->gr_gid;
		cfg.has_admin_gid = true;
	}
	if (cfg.journal)
		log_info("potad %s starting; state directory %s",
			 PACKAGE_VERSION, cfg.state_dir);
	else
		log_warn("potad %s starting with --memory-only: no journal, "
			 "extents do not survive a restart", PACKAGE_VERSION);
	potad__notify_init();
	potad__rpc_init(&cfg);
	rc = potad__registry_init(&cfg);
	if (rc == 0 && cfg.journal)
		rc = open_state(&cfg);
	if (rc == 0)
		rc = register_decls(decls, ndecls);
	if (rc == 0)
		rc = potad__listen(&cfg, uv_default_loop());
	if (rc < 0) {
		potad__registry_fini();
		potad__config_free(&cfg, decls, ndecls);
		return 1;
	}
	/* systemd tracks the process it started (Type=notify, socket
	 * activation): under it, detaching would look like an exit. */
	if (!fg && potad__notify_managed())
		log_info("started by systemd: staying in the foreground");
	if (!fg && !potad__notify_managed()) {
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
	/* After the fork: the thread pool must start in the process that
	 * serves. */
	potad__discard_kick_all();
	potad__notify_ready(uv_default_loop());
	rc = potad__serve(&cfg);
	log_info("stopped");
	potad__registry_fini();
	potad__config_free(&cfg, decls, ndecls);
	uv_loop_close(uv_default_loop());
	return rc < 0 ? 1 : 0;
}
