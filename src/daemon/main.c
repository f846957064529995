/*
 * embedwatchd: argv, start-up order, signals, the sd_notify lifecycle.
 * Everything else lives in its module.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "ew.h"
#include "ha.h"
#include "hooks.h"
#include "http.h"
#include "jobtable.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "outbox.h"
#include "poller.h"
#include "secrets.h"
#include "store.h"
#include "turn.h"
#include "util.h"
#include "watch.h"

/* How long a stop keeps retrying the last commit before giving up on it. */
#define STOP_COMMIT_TRIES 20

#define DEFAULT_CONFIG SYSCONFDIR "/embedwatch/embedwatch.conf"

static struct ew the_ew;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t watchdog_timer, status_timer, stop_timer;
static uint64_t watchdog_usec;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: embedwatchd [-c FILE] [--check-config | --print-config]\n"
		"Watches Cohere embed jobs until they end and runs hooks for them.\n\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"      --check-config  validate the configuration and exit (0 valid, 1 not)\n"
		"      --print-config  print the effective configuration, defaults included, and exit\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n\n"
		"The API key comes from $CREDENTIALS_DIRECTORY/cohere-api-key, api_key_file, or CO_API_KEY.\n",
		DEFAULT_CONFIG);
}


static void write_metrics_file(struct ew *ew)
{
	if (!ew->cfg.metrics_file[0])
		return;
	struct buf b = { 0 };
	metrics_text(&ew->m, ew->jobs.counts, &b);
	/*
	 * A fresh temporary (O_EXCL: a symlink planted in the collector's directory is never followed),
	 * renamed over the file. Metrics are not secret, and a textfile collector usually runs as another
	 * user: 0644. Not fsynced: the next write, seconds later, replaces it anyway.
	 */
	int r = util_write_file(ew->cfg.metrics_file, b.data ? b.data : "", b.len, 0644, false);
	static bool warned;
	if (r < 0 && !warned)
		log_msg(LOG_WARNING, "cannot write metrics file %s: %s", ew->cfg.metrics_file, strerror(-r));
	warned = r < 0;
	buf_free(&b);
}

static void on_status_timer(uv_timer_t *t)
{
	char line[512];
	metrics_status_line(&the_ew.m, the_ew.jobs.counts, line, sizeof(line));
	sd_notifyf(0, "STATUS=%s", line);
	write_metrics_file(&the_ew);
}

static void on_watchdog(uv_timer_t *t)
{
	sd_notify(0, "WATCHDOG=1");
}

static void reload(struct ew *ew)
{
	struct ew_config cfg;
	char err[1024];
	char *key = NULL, *proxy_userpwd = NULL;
	char **account_keys = NULL;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		   (unsigned long long)util_mono_ms() * 1000, ew->config_path);
	log_msg(LOG_NOTICE, "reloading %s", ew->config_path);
	if (config_load(ew->config_path, &cfg, err, sizeof(err)) < 0) {
		log_msg(LOG_ERR, "reload rejected, keeping the running configuration: %s", err);
		goto done;
	}
	if (secrets_load_key(&cfg, ew->api_key, &key, err, sizeof(err)) < 0 || hooks_check_secrets(&cfg, err, sizeof(err)) < 0 ||
	    secrets_load_proxy(&cfg, &proxy_userpwd, err, sizeof(err)) < 0 ||
	    secrets_load_account_keys(&cfg, &account_keys, err, sizeof(err)) < 0) {
		log_msg(LOG_ERR, "reload rejected, keeping the running configuration: %s", err);
		config_clear(&cfg);
		secrets_wipe_free(key);
		secrets_wipe_free(proxy_userpwd);
		goto done;
	}
	if (strcmp(cfg.state_dir, ew->cfg.state_dir) || strcmp(cfg.control_socket, ew->cfg.control_socket) ||
	    strcmp(cfg.state_url ? cfg.state_url : "", ew->cfg.state_url ? ew->cfg.state_url : "") ||
	    cfg.lease_ttl_ms != ew->cfg.lease_ttl_ms || cfg.lease_renew_ms != ew->cfg.lease_renew_ms ||
	    cfg.max_in_flight != ew->cfg.max_in_flight || cfg.max_connections != ew->cfg.max_connections ||
	    strcmp(cfg.metrics_listen ? cfg.metrics_listen : "", ew->cfg.metrics_listen ? ew->cfg.metrics_listen : ""))
		log_msg(LOG_WARNING, "reload: state_dir, state_url, lease_ttl, lease_renew, control_socket, metrics_listen, "
			"max_in_flight and max_connections take effect at the next restart");
	/* Keep what cannot change while running. */
	free(cfg.state_dir);
	cfg.state_dir = xstrdup(ew->cfg.state_dir);
	free(cfg.control_socket);
	cfg.control_socket = xstrdup(ew->cfg.control_socket);
	free(cfg.state_url);
	cfg.state_url = ew->cfg.state_url ? xstrdup(ew->cfg.state_url) : NULL;
	cfg.lease_ttl_ms = ew->cfg.lease_ttl_ms;
	cfg.lease_renew_ms = ew->cfg.lease_renew_ms;
	cfg.max_in_flight = ew->cfg.max_in_flight;
	free(cfg.metrics_listen);
	cfg.metrics_listen = ew->cfg.metrics_listen ? xstrdup(ew->cfg.metrics_listen) : NULL;
	cfg.max_connections = ew->cfg.max_connections;
	secrets_free_keys(ew->account_keys, ew->cfg.n_accounts);
	config_clear(&ew->cfg);
	ew->cfg = cfg;
	ew->account_keys = account_keys;
	secrets_wipe_free(ew->api_key);
	ew->api_key = key;
	secrets_wipe_free(ew->proxy_userpwd);
	ew->proxy_userpwd = proxy_userpwd;
	log_set_level(ew->cfg.log_level);
	poller_configure(ew->poller);
	hooks_reconfigure(ew);
	watch_reconfigure(ew);
	/* A standby does not poll: its poller starts when it takes over. */
	if (ha_active(ew))
		poller_resume(ew->poller);
	log_msg(LOG_NOTICE, "reloaded: %zu hooks, rate %.3f/s", ew->cfg.n_hooks, ew->cfg.rate_per_s);
done:
	sd_notify(0, "READY=1");
	on_status_timer(&status_timer);
}

/* Start-up: the role and, when active, the restore (the store may answer later than the call: store_wait() then). */
struct start_state {
	int r;
	bool done;
	char err[1024];
};

static void on_started(int r, const char *err, void *arg)
{
	struct start_state *st = arg;
	st->r = r;
	st->done = true;
	snprintf(st->err, sizeof(st->err), "%s", err);
}

static void close_all(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static unsigned stop_commit_tries;

/* Runs every 50 ms while stopping: waits for the hooks, commits the last changes, closes. */
static void on_stop_timer(uv_timer_t *t)
{
	struct ew *ew = &the_ew;
	if (!hooks_idle(ew))
		return;
	/* Every delivery result is durable before exit; a failing commit is retried at the next tick. */
	if (ew->stepping_down) {
		/* Nothing more can be written: the new active re-detects what this one had not committed. */
	} else if (outbox_run(ew) < 0 || outbox_has_writes(ew)) {
		if (++stop_commit_tries < STOP_COMMIT_TRIES)
			return;
		log_msg(LOG_ERR, "could not write the last changes; they are re-detected after the restart");
	} else if (store_busy(ew->store) && ++stop_commit_tries < STOP_COMMIT_TRIES) {
		return;     /* reads for clients: answered before the socket closes */
	}
	uv_timer_stop(t);
	ha_close(ew);
	hooks_close(ew);
	poller_free(ew->poller);
	ew->poller = NULL;
	http_close(ew->http);
	control_close(ew);
	metrics_http_close(ew);
	outbox_close(ew);
	watch_close(ew);
	store_detach(ew->store);
	uv_walk(ew->loop, close_all, NULL);
}

static void stop(struct ew *ew, int sig)
{
	if (ew->stopping)
		return;
	ew->stopping = true;
	if (ew->stepping_down) {
		/* Not a stop for systemd: the same process comes back as a standby (READY=1 again). */
		sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=stepping down to standby",
			   (unsigned long long)util_mono_ms() * 1000);
		log_msg(LOG_NOTICE, "stepping down: no new hook starts; running ones get %llu ms to finish",
			(unsigned long long)ew->cfg.shutdown_grace_ms);
	} else {
		sd_notify(0, "STOPPING=1\nSTATUS=stopping");
		log_msg(LOG_NOTICE, "signal %d: stopping (hooks get %llu ms to finish)", sig,
			(unsigned long long)ew->cfg.shutdown_grace_ms);
	}
	poller_stop(ew->poller);
	hooks_stop(ew);
	uv_timer_stop(&status_timer);
	UV_CHECK(uv_timer_start(&stop_timer, on_stop_timer, 0, 50));
}

/* ha: the lease is lost. This process stops as on SIGTERM and starts again (exec) as a standby. */
static void step_down(struct ew *ew, const char *why)
{
	ew->stepping_down = true;
	stop(ew, 0);
}

/* Starts this program again, as it was started, with the key where it found it (a step-down). */
static void restart_self(char **argv)
{
	/* Nothing of this process but stdin, stdout and stderr goes on. */
	util_cloexec_from(3);
	execv("/proc/self/exe", argv);
	log_msg(LOG_ERR, "cannot start again as a standby: %s", strerror(errno));
}

static void on_signal(uv_signal_t *h, int sig)
{
	if (sig == SIGHUP)
		reload(&the_ew);
	else
		stop(&the_ew, sig);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 1 },
		{ "print-config", no_argument, NULL, 2 },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ew *ew = &the_ew;
	const char *path = DEFAULT_CONFIG;
	bool check = false, print = false;
	char err[1024];
	int o, r;

	while ((o = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': path = optarg; break;
		case 1: check = true; break;
		case 2: print = true; break;
		case 'V': printf("embedwatchd %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "embedwatchd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (config_load(path, &ew->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "embedwatchd: %s\n", err);
		return 1;
	}
	if (check || print) {
		if (print)
			config_print(&ew->cfg, stdout);
		else
			printf("%s: configuration valid (%zu hooks)\n", path, ew->cfg.n_hooks);
		config_clear(&ew->cfg);
		return 0;
	}
	log_init(ew->cfg.log_level);
	ew->config_path = xstrdup(path);
	/* Files the daemon creates (the database, the metrics file) are its own, also outside systemd. */
	umask(077);
	/* No core dump, no ptrace by the same user: the process holds the API key and webhook secrets. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_msg(LOG_WARNING, "cannot make the process non-dumpable: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Every waiting control client holds a descriptor (max_waiters, 4096 by default, beside 256
	 * others): the soft limit goes up to the hard one (libuv uses epoll, not select).
	 */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	if (http_global_init() < 0)
		log_fatal("cannot initialise libcurl");
	if ((r = secrets_load_key(&ew->cfg, NULL, &ew->api_key, err, sizeof(err))) == -ENOKEY) {
		/* A configuration to finish, not a crash: EX_CONFIG, which the unit does not restart on. */
		log_msg(LOG_ERR, "%s", err);
		sd_notifyf(0, "STATUS=%s", err);
		return EX_CONFIG;
	}
	if (r < 0 || secrets_load_proxy(&ew->cfg, &ew->proxy_userpwd, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if ((r = secrets_load_account_keys(&ew->cfg, &ew->account_keys, err, sizeof(err))) == -ENOKEY) {
		log_msg(LOG_ERR, "%s", err);
		sd_notifyf(0, "STATUS=%s", err);
		return EX_CONFIG;
	}
	if (r < 0)
		log_fatal("%s", err);

	ew->loop = uv_default_loop();
	ew->m.start_ms = util_wall_ms();
	char *state_password = NULL;
	if (secrets_load_state_password(&ew->cfg, &state_password, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	struct store_config sc = { .loop = ew->loop, .dir = ew->cfg.state_dir, .url = ew->cfg.state_url,
				   .password = state_password };
	r = store_open(&sc, &ew->store, err, sizeof(err));
	secrets_wipe_free(state_password);
	if (r < 0)
		log_fatal("%s", err);
	if (http_new(ew->loop, ew->cfg.max_connections, &ew->http) < 0)
		log_fatal("cannot set up HTTP");
	if (poller_new(ew, &ew->poller) < 0)
		log_fatal("cannot set up the poller");
	if (hooks_init(ew) < 0)
		log_fatal("cannot set up hooks (see above)");
	if ((r = outbox_init(ew)) < 0 || (r = watch_init(ew)) < 0)
		log_fatal("cannot set up the event loop: %s", uv_strerror(r));
	if ((r = ha_init(ew, step_down)) < 0)
		log_fatal("cannot set up the event loop: %s", uv_strerror(r));
	uint64_t t0 = util_mono_ms();
	struct start_state ss = { 0 };
	ha_start(ew, on_started, &ss);
	/* Start-up reads may wait: the loop does not run yet. */
	store_wait(ew->store);
	if (ss.r < 0 || !ss.done)
		log_fatal("%s", ss.done ? ss.err : "the state database did not answer");
	outbox_run(ew);
	store_wait(ew->store);
	if (ew->m.store_failing)
		log_fatal("state database %s is not writable: %s", store_describe(ew->store), store_error(ew->store));
	if (control_init(ew, err, sizeof(err)) < 0 || metrics_http_init(ew, err, sizeof(err)) < 0)
		log_fatal("%s", err);

	if ((r = uv_signal_init(ew->loop, &sig_term)) < 0 || (r = uv_signal_init(ew->loop, &sig_int)) < 0 ||
	    (r = uv_signal_init(ew->loop, &sig_hup)) < 0 || (r = uv_signal_start(&sig_term, on_signal, SIGTERM)) < 0 ||
	    (r = uv_signal_start(&sig_int, on_signal, SIGINT)) < 0 || (r = uv_signal_start(&sig_hup, on_signal, SIGHUP)) < 0 ||
	    (r = uv_timer_init(ew->loop, &status_timer)) < 0 || (r = uv_timer_init(ew->loop, &stop_timer)) < 0 ||
	    (r = uv_timer_init(ew->loop, &watchdog_timer)) < 0)
		log_fatal("cannot set up signals and timers: %s", uv_strerror(r));
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec >= 2000)
		UV_CHECK(uv_timer_start(&watchdog_timer, on_watchdog, 0, watchdog_usec / 2000));
	UV_CHECK(uv_timer_start(&status_timer, on_status_timer, 0, 5000));

	log_msg(LOG_NOTICE, "embedwatchd %s ready: %zu jobs restored in %llu ms, %u deliveries pending, "
		"control socket %s, API %s", PACKAGE_VERSION, ew->jobs.jobs.len,
		(unsigned long long)(util_mono_ms() - t0), ew->m.deliveries_pending, ew->cfg.control_socket, ew->cfg.api_base);
	char line[512];
	metrics_status_line(&ew->m, ew->jobs.counts, line, sizeof(line));
	sd_notifyf(0, "READY=1\nSTATUS=%s", line);
	/* What standbys were asked while no daemon was active is read after the first commit (ha marked it). */
	if (ha_active(ew))
		poller_kick(ew->poller);

	uv_run(ew->loop, UV_RUN_DEFAULT);

	r = uv_loop_close(ew->loop);
	if (r != 0)
		log_msg(LOG_ERR, "event loop did not close cleanly: %s", uv_strerror(r));
	/* A clean stop gives the lease up: a standby takes over at once, not after lease_ttl. */
	if (!ew->stepping_down)
		store_lease_release(ew->store);
	/* First: what is still in flight calls back (cancelled) while the jobs it holds exist. */
	store_close(ew->store);
	turn_free(&ew->turn);
	jobtable_free(&ew->jobs);
	secrets_free_keys(ew->account_keys, ew->cfg.n_accounts);
	ew->account_keys = NULL;
	config_clear(&ew->cfg);
	/* The key goes back where it was found (the new process reads it and removes it again). */
	if (ew->stepping_down && secrets_key_from_env() && ew->api_key)
		setenv("CO_API_KEY", ew->api_key, 1);
	secrets_wipe_free(ew->api_key);
	secrets_wipe_free(ew->proxy_userpwd);
	free(ew->config_path);
	http_global_cleanup();
	if (ew->stepping_down) {
		log_msg(LOG_NOTICE, "starting again as a standby");
		restart_self(argv);
	}
	log_msg(LOG_NOTICE, "stopped");
	return r == 0 ? 0 : 1;
}
