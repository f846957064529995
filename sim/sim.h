/*
 * Private to embedwatch-sim, the sim/ directory: its state and each layer's functions.
 * The layers call downward only: clock, jobs, HTTP helpers, encoding, faults,
 * the APIs (v1, v2, the other providers), the admin interface, then main.
 */
#ifndef EW_SIM_H
#define EW_SIM_H

#include <json-c/json.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "job.h"
#include "strmap.h"
#include "util.h"

#define SIM_MAX_STEPS 8
#define SIM_UPLOAD_MAX (64 * 1024 * 1024)

struct sim_step {
	enum job_status status;
	uint64_t at_ms;         /* since the job's start */
};

struct sim_job {
	char *id;
	char *name_json;        /* pre-escaped JSON strings (with quotes) */
	char *model_json;
	char *input_json;
	char *truncate_json;
	int64_t created_ms;     /* sim clock */
	bool cancel_requested;
	int64_t cancel_ms;      /* sim clock, when cancel_requested */
	struct sim_step steps[SIM_MAX_STEPS];
	int n_steps;
	bool automatic;
	char *warnings_json;    /* meta.warnings array, or NULL */
	char *api_warning;      /* X-API-Warning header, or NULL */
	char *answer_as;        /* answers name this job_id instead of its own, or NULL */
	uint32_t warning_flood; /* > 0: every answer carries a new meta.warnings entry this long */
	uint64_t requests;
	int64_t first_ms, last_ms;
};

enum sim_fault_kind { F_STATUS = 1, F_DELAY, F_DROP, F_MALFORMED, F_TRUNCATED, F_OVERSIZED, F_CONTENT_TYPE, F_BOMB, F_TRICKLE };
/* F_TRUNCATED and F_TRICKLE shape the normal answer's body; the others replace or delay the answer. */
#define FAULT_SHAPES_BODY(k) ((k) == F_TRUNCATED || (k) == F_TRICKLE)
/* T_V2: v2 per-id GET and :cancel; T_V2_LIST: GET /v2/batches; T_DATASETS: GET /v1/datasets/{id} (sim_v2.c). */
enum sim_fault_target { T_API = 1, T_SINK = 2, T_LIST = 4, T_V2 = 8, T_V2_LIST = 16, T_DATASETS = 32 };
/* The other providers' batch APIs (sim_providers.c), in the order of their targets and log names. */
enum sim_prov { SIM_OPENAI, SIM_ANTHROPIC, SIM_GEMINI, SIM_MISTRAL, SIM_PROV__MAX };
/* Provider p's per-id GET and cancel, its list, and every provider's endpoints, as fault targets. */
#define T_PROV_ITEM(p) (64u << (2 * (p)))
#define T_PROV_LIST(p) (128u << (2 * (p)))
#define T_PROV_LISTS (T_PROV_LIST(SIM_OPENAI) | T_PROV_LIST(SIM_ANTHROPIC) | T_PROV_LIST(SIM_GEMINI) | T_PROV_LIST(SIM_MISTRAL))
#define T_PROV_ALL (T_PROV_ITEM(SIM_PROV__MAX) - T_PROV_ITEM(0))

struct sim_fault {
	enum sim_fault_kind kind;
	unsigned targets;
	int status;
	char retry_after[64];   /* literal header value */
	int retry_after_date;   /* > 0: HTTP-date this many seconds ahead, rendered when answering */
	char *job;              /* NULL: every request */
	int64_t remaining;      /* < 0: unlimited */
	bool has_until;
	int64_t until_ms;       /* sim clock, when has_until */
	uint64_t delay_ms;
	uint64_t size;          /* bomb: decoded bytes */
	uint64_t bytes_per_s;   /* trickle: body bytes per second after the headers */
	uint64_t hits;
	struct sim_fault *next;
};

struct sim_sink_rec {
	int64_t t_ms;
	char *path;
	json_object *headers;
	char *body;
	int status;
};

/* The API endpoints, as the request log names them (sim_ep_names). */
/* Each provider's get, list and cancel follow from EP_PROV_FIRST, three a provider ("openai_get", ...). */
enum sim_ep { EP_POLL, EP_LIST, EP_CANCEL, EP_V2_POLL, EP_V2_LIST, EP_V2_CANCEL, EP_DATASET, EP_PROV_FIRST,
	      EP__MAX = EP_PROV_FIRST + 3 * SIM_PROV__MAX };
extern const char *const sim_ep_names[EP__MAX];

struct sim_log_rec {
	int64_t t_ms;
	int status;
	enum sim_ep ep;
	char id[API_ID_MAX + 1];
};

/* Per-request state; lives from the first handler call to the completion notice. */
struct sim_req {
	bool started;
	struct buf body;
	bool too_big;
};

/* What an API answer is, for the byte counters and validators (sim_encode.c). */
enum sim_kind { K_POLL, K_LIST, K_CANCEL, K__MAX };
/* --etag: which validators answers carry. */
enum sim_etag_mode { ETAG_BOTH = 0, ETAG_ONLY, ETAG_LAST_MODIFIED };

struct sim_answer {
	enum sim_kind kind;
	int64_t changed_ms;     /* sim clock: when what the body shows last changed (Last-Modified) */
	int64_t made_ms;        /* sim clock: when the body was made (Date, which validators are read against) */
	const char *warning;    /* X-API-Warning, or NULL */
	/* set by sim_answer_check */
	bool validators;
	char etag[40];
	char last_modified[40];
};

struct sim_client_name {
	char *name;
	uint64_t count;
};

struct sim_state {
	pthread_mutex_t mu;
	char *token;
	char *auto_prefix;
	uint64_t auto_min_ms, auto_max_ms;
	uint64_t cancel_delay_ms;
	int sink_status;
	bool log_requests;
	uint64_t history;        /* ended jobs of long ago in the list */
	struct buf history_json; /* their entries, rendered once, each with a leading comma */
	bool gzip;               /* gzip answers when Accept-Encoding allows (default) */
	int gzip_level;
	bool etag;               /* --etag: validators and 304s */
	enum sim_etag_mode etag_mode;
	uint64_t bytes_sent[K__MAX], bytes_identity[K__MAX];   /* API answer bodies: as sent, and before encoding */
	struct strmap jobs;
	struct sim_job **job_list;
	size_t n_jobs, cap_jobs;
	struct sim_fault *faults;
	struct sim_sink_rec *sink;
	size_t n_sink, cap_sink;
	struct sim_log_rec *log;
	size_t n_log, cap_log;
	/* counters */
	uint64_t req_poll, req_list, req_cancel, req_sink, req_admin, req_other;
	uint64_t status_count[600];
	uint64_t conn_opened, conn_current, conn_peak;
	struct strmap client_names;   /* name -> (uintptr_t) count, keys owned */
	int64_t wall0;
	uint64_t mono0;
	/* --clock manual: sim time is manual_ms, moved only by POST /_sim/clock.
	 * Atomic because the API handlers read the clock before taking sim_st.mu. */
	bool manual_clock;
	_Atomic int64_t manual_ms;
};
extern struct sim_state sim_st;

/* ---- the clock (sim_clock.c) ---- */

/* The sim clock in ms: the wall clock (real mode), or ms since start moved only by an advance (manual mode). */
int64_t sim_now(void);
/* The wall-clock ms a client is shown for sim time t: t itself (real), the wall clock at start plus t (manual). */
int64_t sim_wall_ms(int64_t t);
/* Moves the manual clock forward by ms; -EPERM in real mode, -ERANGE on overflow; *ret_now is the new time.
 * Caller holds sim_st.mu, so an advance is ordered with the timeline reads and writes made under it. */
int sim_clock_advance(uint64_t ms, int64_t *ret_now);

/* ---- the job model (sim_jobs.c) ---- */

/* s as a JSON string literal, quotes included; the caller frees it. */
char *sim_json_str(const char *s);
/* Adds j to the job map and list, which own it. Caller holds sim_st.mu. */
void sim_job_index(struct sim_job *j);
void sim_job_free(struct sim_job *j);
/* Job j's status at sim time now (its timeline, then a cancel). */
enum job_status sim_job_status_at(const struct sim_job *j, int64_t now);
/* Appends j's EmbedJob document at now to b. */
void sim_job_render(struct buf *b, const struct sim_job *j, int64_t now);
/* The job of that id, made (and indexed) in auto mode when the id has the auto prefix; NULL if none. Caller holds sim_st.mu. */
struct sim_job *sim_job_lookup(const char *id, int64_t now);

/* ---- HTTP helpers (sim_http.c) ---- */

/* Formats wall_s as an HTTP date (RFC 7231). */
void sim_http_date(int64_t wall_s, char *buf, size_t len);
/* Queues an answer of data (taken: freed by the server), with Content-Type and Retry-After when given. */
enum MHD_Result sim_send_buf(struct MHD_Connection *c, int status, const char *ctype, char *data, size_t len,
			     const char *retry_after);
/* Queues b's data (taken) as a JSON answer. */
enum MHD_Result sim_send_json(struct MHD_Connection *c, int status, struct buf *b);
/* Queues {"message": ...} with the formatted text. */
enum MHD_Result sim_send_text(struct MHD_Connection *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Counts an answer's status. Caller holds sim_st.mu. */
void sim_count_status(int status);
/* The API's shared answers: auth (0, 401 or 403), the X-Client-Name count, the request log (time, status, id and
 * endpoint of each API request). Caller holds sim_st.mu for the last two. */
int sim_check_auth(struct MHD_Connection *c);
void sim_note_client(struct MHD_Connection *c);
void sim_log_request(int64_t now, int status, const char *id, enum sim_ep ep);
/* An admin POST that adds things: add(arg, spec) for each element of doc's array member key, or for doc itself;
 * {"ok":true,"created":N} into b, or the first error in *err with *status 400. */
void sim_add_each(json_object *doc, const char *key, const char *(*add)(void *arg, json_object *spec), void *arg,
		  struct buf *b, const char **err, int *status);
/* The "id" of an admin batch spec (borrowed from spec), or NULL with *err saying what a spec needs. */
const char *sim_batch_spec_id(json_object *spec, const char **err);

/* ---- encoding (sim_encode.c) ---- */

/* The history, rendered once (deterministic from seed). */
void sim_history_render(uint64_t n, uint64_t seed);
/* When what the list, or job j, shows last changed (sim clock), at or before now. Caller holds sim_st.mu. */
int64_t sim_list_changed_at(int64_t now);
int64_t sim_job_changed_at(const struct sim_job *j, int64_t now);
/* Under sim_st.mu, the body rendered: with --etag the validators, and 304 when the request's match; else status. */
int sim_answer_check(struct MHD_Connection *c, int status, const struct buf *b, struct sim_answer *a);
/* Sends an API answer (gzip when accepted, validators, warning) and counts its bytes; takes b's data. */
enum MHD_Result sim_answer_send(struct MHD_Connection *c, int status, struct buf *b, struct sim_answer *a);
/* The gzip bomb: a small gzip answer that inflates to size bytes of valid JSON (made once, kept). */
enum MHD_Result sim_answer_bomb(struct MHD_Connection *c, bool list, uint64_t size);
/* Makes the bombs a fault will send now, so answering one costs no time. */
void sim_bomb_prepare(bool list, uint64_t size);
void sim_bombs_free(void);

/* ---- faults (sim_faults.c) ---- */

/* Finds and consumes the first fault that applies; copies it to *ret. Caller holds sim_st.mu. */
bool sim_fault_take(unsigned target, const char *job, int64_t now, struct sim_fault *ret);
/* The Retry-After value a status fault answers with ("" for none): its literal or an HTTP date ahead. */
void sim_fault_retry_after(const struct sim_fault *f, char *buf, size_t len);
/* Applies f: true when it made the answer itself (*ret set), false when the normal answer follows. */
bool sim_fault_apply(struct MHD_Connection *c, const struct sim_fault *f, const char *id, enum MHD_Result *ret);
/* The truncated fault: b's data (taken) cut at half, the connection then broken. */
enum MHD_Result sim_answer_truncated(struct MHD_Connection *c, struct buf *b);
/* The trickle fault: the headers (with the whole Content-Length) at once, then b's data at bytes_per_s; takes b's data. */
enum MHD_Result sim_answer_trickle(struct MHD_Connection *c, int status, struct buf *b, uint64_t bytes_per_s);

/* ---- the v1 API (sim_v1.c) ---- */

/* GET /v1/embed-jobs[/{id}], POST /v1/embed-jobs/{id}/cancel. */
enum MHD_Result sim_v1_handle(struct MHD_Connection *c, const char *method, const char *url);

/* ---- sim_v2.c: v2 Batches (GET /v2/batches[/{id}], POST /v2/batches/{id}:cancel) and GET /v1/datasets/{id} ---- */
enum { SIM_OPT_V2_HISTORY = 40, SIM_OPT_V2_ORDER, SIM_OPT_DATASET_PARTS };
enum MHD_Result sim_v2_batches(struct MHD_Connection *c, const char *method, const char *url);
enum MHD_Result sim_v2_dataset(struct MHD_Connection *c, const char *method, const char *url);
/* /_sim/batches (POST: add, GET /_sim/batches/ID); true when p was one of them. Caller holds sim_st.mu. */
bool sim_v2_admin(const char *p, const char *method, json_object *doc, int64_t now, struct buf *b, const char **err,
		  int *status);
/* Appends ",\"v2\":{...}" (counters, and each batch with with_jobs) to the stats object. Caller holds sim_st.mu. */
void sim_v2_stats(struct buf *b, bool with_jobs);
void sim_v2_reset(void);
/* --v2-history N, --v2-order asc|desc, --dataset-parts N. 0, or -EINVAL with a message on stderr. */
int sim_v2_option(int opt, const char *arg);
void sim_v2_free(void);

/* ---- sim_providers.c: OpenAI /v1/batches, Anthropic /v1/messages/batches, Gemini /v1beta/batches and
 * Mistral /v1/batch/jobs, each in its provider's shapes (objects, pages, auth, errors) ---- */
enum { SIM_OPT_PROV_HISTORY = 50, SIM_OPT_PROV_TOKEN };
/* The provider whose API url is under, or -1. */
int sim_prov_route(const char *url);
/* GET the list, GET one, POST its cancel, of provider prov (sim_prov_route's answer). */
enum MHD_Result sim_prov_handle(struct MHD_Connection *c, const char *method, const char *url, int prov);
/* /_sim/providers/NAME/batches (POST: add, GET .../ID); true when p was one of them. Caller holds sim_st.mu. */
bool sim_prov_admin(const char *p, const char *method, json_object *doc, int64_t now, struct buf *b, const char **err,
		    int *status);
/* A fault target's bits for "openai", "openai_list", "openai_all" (and the others'), "providers"; 0 for none. */
unsigned sim_prov_fault_target(const char *name);
/* Appends ",\"providers\":{...}" (counters, and each batch with with_jobs) to the stats object. Caller holds sim_st.mu. */
void sim_prov_stats(struct buf *b, bool with_jobs);
void sim_prov_reset(void);
/* --provider-history N, --provider-token NAME=KEY. 0, or -EINVAL with a message on stderr. */
int sim_prov_option(int opt, const char *arg);
/* Makes the history, once the clock runs. */
void sim_prov_init(void);
void sim_prov_free(void);

/* ---- the admin interface (sim_admin.c): /_sim/... ---- */

enum MHD_Result sim_admin_handle(struct MHD_Connection *c, const char *method, const char *url, struct sim_req *rq);
void sim_admin_clear_sink(void);
void sim_admin_clear_faults(void);

#endif
