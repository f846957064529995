/*
 * embedwatch-sim: a local Embed Jobs API for the demo, the tests and the
 * benchmarks. Scripted job timelines, an auto mode for any number of ids,
 * fault injection, a webhook sink and counters, all over HTTP on loopback.
 * Here the server (routing each request to its API, connections) and main.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "sim.h"

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct sim_req *rq = *con_cls;

	if (!rq) {
		/* First call: only headers are in. Answering now would close the connection. */
		rq = xcalloc(1, sizeof(*rq));
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->body.len + *upload_size > SIM_UPLOAD_MAX)
			rq->too_big = true;
		else
			buf_append(&rq->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (strncmp(url, "/v1/embed-jobs", 14) == 0 && (url[14] == '\0' || url[14] == '/'))
		return sim_v1_handle(c, method, url);
	if (strncmp(url, "/_sim/", 6) == 0)
		return sim_admin_handle(c, method, url, rq);
	/* v2 Batches and Datasets live in sim_v2.c. */
	if (strncmp(url, "/v2/batches", 11) == 0 && (url[11] == '\0' || url[11] == '/'))
		return sim_v2_batches(c, method, url);
	if (strncmp(url, "/v1/datasets/", 13) == 0)
		return sim_v2_dataset(c, method, url);
	/* OpenAI, Anthropic, Gemini and Mistral batches live in sim_providers.c. */
	int prov = sim_prov_route(url);
	if (prov >= 0)
		return sim_prov_handle(c, method, url, prov);
	pthread_mutex_lock(&sim_st.mu);
	sim_st.req_other++;
	sim_count_status(404);
	pthread_mutex_unlock(&sim_st.mu);
	return sim_send_text(c, 404, "no such endpoint: %s", url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct sim_req *rq = *con_cls;
	if (rq) {
		buf_free(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	pthread_mutex_lock(&sim_st.mu);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		sim_st.conn_opened++;
		if (++sim_st.conn_current > sim_st.conn_peak)
			sim_st.conn_peak = sim_st.conn_current;
	} else if (sim_st.conn_current) {
		sim_st.conn_current--;
	}
	pthread_mutex_unlock(&sim_st.mu);
}

/* A whole small file, NUL-terminated; NULL with errno on failure. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	struct buf b = { 0 };
	char chunk[4096];
	size_t n;
	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	if (!b.data)
		buf_append(&b, "", 0);
	return b.data;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: embedwatch-sim [OPTIONS]\n"
		"A local Embed Jobs API for embedwatch's demo, tests and benchmarks.\n\n"
		"  -p, --port N           port on 127.0.0.1 (0: any free port; default 0)\n"
		"  -f, --port-file FILE   write the bound port to FILE once listening\n"
		"  -t, --token TOKEN      the API key it accepts (default: test-key)\n"
		"  -a, --auto PREFIX      answer any id starting with PREFIX with a timeline derived from the id\n"
		"      --auto-min DUR     shortest auto timeline (default 10s)\n"
		"      --auto-max DUR     longest auto timeline (default 60s)\n"
		"      --cancel-delay DUR cancelling -> cancelled after a cancel request (default 2s)\n"
		"      --sink-status N    status the webhook sink answers (default 200)\n"
		"      --no-log           do not keep the per-request log (/_sim/log)\n"
		"      --history N        the list also holds N jobs that ended long ago (hist-<uuid>, deterministic)\n"
		"      --no-gzip          never compress (default: gzip when Accept-Encoding allows it)\n"
		"      --gzip-level N     zlib level 1 (fast) to 9 (small), default 6\n"
		"      --etag[=WHICH]     validators on the list and per-id answers, 304 to a matching If-None-Match or\n"
		"                         If-Modified-Since; WHICH: both (default), etag, last-modified\n"
		"      --tls-cert FILE    serve HTTPS with this PEM certificate (chain) ...\n"
		"      --tls-key FILE     ... and this PEM private key\n"
		"      --clock MODE       real (default): timelines follow the wall clock; manual: the clock starts\n"
		"                         at 0 and moves only by POST /_sim/clock {\"advance\":\"2s\"} (or \"advance_ms\")\n"
		"      --v2-history N     the v2 list also holds N batches that ended long ago (hb-0000000 ...)\n"
		"      --v2-order DIR     desc (default): GET /v2/batches lists the newest first; asc: the oldest\n"
		"      --dataset-parts N  parts of each dataset GET /v1/datasets/{id} serves (default 2)\n"
		"      --provider-history N  each other provider's list also holds N batches that ended long ago\n"
		"      --provider-token NAME=KEY  the key provider NAME (openai, anthropic, gemini, mistral) accepts\n"
		"                         (default: --token)\n"
		"  -h, --help             this text\n\n"
		"API:   GET /v1/embed-jobs/{id}, GET /v1/embed-jobs, POST /v1/embed-jobs/{id}/cancel,\n"
		"       GET /v2/batches/{id}, GET /v2/batches, POST /v2/batches/{id}:cancel, GET /v1/datasets/{id}\n"
		"       OpenAI GET /v1/batches[/{id}], POST /v1/batches/{id}/cancel; Anthropic GET /v1/messages/batches[/{id}],\n"
		"       POST /v1/messages/batches/{id}/cancel; Gemini GET /v1beta/batches[/{id}], POST /v1beta/batches/{id}:cancel;\n"
		"       Mistral GET /v1/batch/jobs[/{id}], POST /v1/batch/jobs/{id}/cancel\n"
		"Admin: POST /_sim/jobs, GET /_sim/jobs/{id}, POST /_sim/batches, GET /_sim/batches/{id},\n"
		"       POST /_sim/providers/{provider}/batches, GET /_sim/providers/{provider}/batches/{id},\n"
		"       POST|DELETE /_sim/faults, GET /_sim/stats,\n"
		"       GET /_sim/log, POST /_sim/sink/..., GET|DELETE /_sim/sink, POST /_sim/reset,\n"
		"       GET|POST /_sim/clock\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "token", required_argument, NULL, 't' },
		{ "auto", required_argument, NULL, 'a' },
		{ "auto-min", required_argument, NULL, 1 },
		{ "auto-max", required_argument, NULL, 2 },
		{ "cancel-delay", required_argument, NULL, 3 },
		{ "sink-status", required_argument, NULL, 4 },
		{ "no-log", no_argument, NULL, 5 },
		{ "tls-cert", required_argument, NULL, 6 },
		{ "history", required_argument, NULL, 8 },
		{ "tls-key", required_argument, NULL, 7 },
		{ "clock", required_argument, NULL, 9 },
		{ "no-gzip", no_argument, NULL, 20 },
		{ "gzip-level", required_argument, NULL, 21 },
		{ "etag", optional_argument, NULL, 22 },
		{ "v2-history", required_argument, NULL, SIM_OPT_V2_HISTORY },
		{ "v2-order", required_argument, NULL, SIM_OPT_V2_ORDER },
		{ "dataset-parts", required_argument, NULL, SIM_OPT_DATASET_PARTS },
		{ "provider-history", required_argument, NULL, SIM_OPT_PROV_HISTORY },
		{ "provider-token", required_argument, NULL, SIM_OPT_PROV_TOKEN },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned port = 0;
	const char *port_file = NULL, *tls_cert = NULL, *tls_key = NULL;
	int o;

	sim_st.token = "test-key";
	sim_st.auto_min_ms = 10000;
	sim_st.auto_max_ms = 60000;
	sim_st.cancel_delay_ms = 2000;
	sim_st.sink_status = 200;
	sim_st.log_requests = true;
	sim_st.gzip = true;
	sim_st.gzip_level = 6;
	while ((o = getopt_long(argc, argv, "p:f:t:a:h", opts, NULL)) != -1) {
		switch (o) {
		case 'p': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v > 65535) {
				fprintf(stderr, "embedwatch-sim: --port: expected 0 to 65535, got \"%s\"\n", optarg);
				return 2;
			}
			port = (unsigned)v;
			break;
		}
		case 'f': port_file = optarg; break;
		case 't': sim_st.token = optarg; break;
		case 'a': sim_st.auto_prefix = optarg; break;
		case 1:
		case 2:
		case 3: {
			uint64_t ms;
			if (config_parse_duration(optarg, &ms) < 0) {
				fprintf(stderr, "embedwatch-sim: expected a duration like 30s, got \"%s\"\n", optarg);
				return 2;
			}
			if (o == 1)
				sim_st.auto_min_ms = ms;
			else if (o == 2)
				sim_st.auto_max_ms = ms;
			else
				sim_st.cancel_delay_ms = ms;
			break;
		}
		case 4: sim_st.sink_status = atoi(optarg); break;
		case 5: sim_st.log_requests = false; break;
		case 6: tls_cert = optarg; break;
		case 8: sim_st.history = strtoull(optarg, NULL, 10); break;
		case 7: tls_key = optarg; break;
		case 9:
			if (strcmp(optarg, "real") == 0) {
				sim_st.manual_clock = false;
			} else if (strcmp(optarg, "manual") == 0) {
				sim_st.manual_clock = true;
			} else {
				fprintf(stderr, "embedwatch-sim: --clock: expected real or manual, got \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 20: sim_st.gzip = false; break;
		case 21: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 9) {
				fprintf(stderr, "embedwatch-sim: --gzip-level: expected 1 to 9, got \"%s\"\n", optarg);
				return 2;
			}
			sim_st.gzip_level = (int)v;
			break;
		}
		case 22:
			sim_st.etag = true;
			if (!optarg || strcmp(optarg, "both") == 0) {
				sim_st.etag_mode = ETAG_BOTH;
			} else if (strcmp(optarg, "etag") == 0) {
				sim_st.etag_mode = ETAG_ONLY;
			} else if (strcmp(optarg, "last-modified") == 0) {
				sim_st.etag_mode = ETAG_LAST_MODIFIED;
			} else {
				fprintf(stderr, "embedwatch-sim: --etag: expected both, etag or last-modified, got \"%s\"\n", optarg);
				return 2;
			}
			break;
		case SIM_OPT_V2_HISTORY:
		case SIM_OPT_V2_ORDER:
		case SIM_OPT_DATASET_PARTS:
			if (sim_v2_option(o, optarg) < 0)
				return 2;
			break;
		case SIM_OPT_PROV_HISTORY:
		case SIM_OPT_PROV_TOKEN:
			if (sim_prov_option(o, optarg) < 0)
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	sim_st.wall0 = util_wall_ms();
	sim_st.mono0 = util_mono_ms();
	sim_history_render(sim_st.history, 1);
	sim_prov_init();

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	/* HTTPS: libmicrohttpd's TLS (GnuTLS), certificate and key in memory. */
	char *cert_pem = NULL, *key_pem = NULL;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls_opts[3] = { { MHD_OPTION_END, 0, NULL }, { MHD_OPTION_END, 0, NULL },
					      { MHD_OPTION_END, 0, NULL } };
	if (!!tls_cert != !!tls_key) {
		fprintf(stderr, "embedwatch-sim: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (tls_cert) {
		if (!(cert_pem = read_file(tls_cert)) || !(key_pem = read_file(tls_key))) {
			fprintf(stderr, "embedwatch-sim: cannot read %s: %s\n", cert_pem ? tls_key : tls_cert, strerror(errno));
			return 1;
		}
		flags |= MHD_USE_TLS;
		tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, cert_pem };
		tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, key_pem };
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, NULL,
		MHD_OPTION_ARRAY, tls_opts,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
		MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "embedwatch-sim: cannot listen on 127.0.0.1:%u: %s\n", port, strerror(errno));
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = info ? info->port : port;
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *pf = fopen(tmp, "w");
		if (!pf || fprintf(pf, "%u\n", bound) < 0 || fclose(pf) != 0 || rename(tmp, port_file) != 0) {
			fprintf(stderr, "embedwatch-sim: cannot write %s: %s\n", port_file, strerror(errno));
			MHD_stop_daemon(d);
			return 1;
		}
	}
	printf("embedwatch-sim listening on %s://127.0.0.1:%u\n", tls_cert ? "https" : "http", bound);
	fflush(stdout);

	int sig;
	do {
		sigwait(&set, &sig);
	} while (sig == SIGPIPE);
	MHD_stop_daemon(d);
	free(cert_pem);
	free(key_pem);

	sim_admin_clear_sink();
	sim_admin_clear_faults();
	for (size_t i = 0; i < sim_st.n_jobs; i++)
		sim_job_free(sim_st.job_list[i]);
	free(sim_st.job_list);
	strmap_free(&sim_st.jobs);
	sim_v2_free();
	sim_prov_free();
	for (size_t i = 0; i < sim_st.client_names.cap; i++)
		if (sim_st.client_names.slots[i].key) {
			struct sim_client_name *cn = sim_st.client_names.slots[i].val;
			free(cn->name);
			free(cn);
		}
	strmap_free(&sim_st.client_names);
	free(sim_st.sink);
	free(sim_st.log);
	buf_free(&sim_st.history_json);
	sim_bombs_free();
	return 0;
}
