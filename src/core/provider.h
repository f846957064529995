/*
 * The provider layer: one table of operations per batch API (URLs, auth
 * header lines, ids, parsing a job and a list page into one normalized
 * observation, the status mapping, paging and the sweep's cut-off rule,
 * default rates). Pure (json-c only): no I/O, no logging, no key kept.
 */
#ifndef EW_PROVIDER_H
#define EW_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

enum provider { PROV_COHERE = 0, PROV_OPENAI, PROV_ANTHROPIC, PROV_GEMINI, PROV_MISTRAL, PROV__MAX };

/* "cohere", "openai", "anthropic", "gemini", "mistral"; "?" out of range. */
const char *provider_name(enum provider p);
/* Parses a name provider_name() returns; -1 when it is none. */
int provider_parse(const char *s);

/* A count, a time or a total that the document does not say. */
#define PROV_UNKNOWN (-1)

/* Requests of a batch as its provider counts them; PROV_UNKNOWN where it does not say. */
struct prov_records {
	int64_t total;
	int64_t succeeded;
	int64_t failed;         /* errored requests: on a complete batch, its partial failures */
};

/*
 * Where the results are, in the provider's terms. Owned strings, NULL when
 * absent. results_url may be a link that grants access by itself (a signed
 * URL): it is never put in a log line; provider_obs_describe() shows only
 * whether it is set.
 */
struct prov_output {
	char *file_id;          /* OpenAI output_file_id, Mistral output_file, Gemini responsesFile */
	char *error_file_id;    /* OpenAI error_file_id, Mistral error_file */
	char *results_url;      /* Anthropic results_url: secret, never logged */
	bool inlined;           /* Gemini: the responses are inlined in the document */
};

/*
 * One observed batch, normalized. status is the project's; status_raw the
 * provider's own word ("" when the document has none).
 *
 * The provider's expiry (OpenAI expired, Mistral TIMEOUT_EXCEEDED, Gemini
 * BATCH_STATE_EXPIRED, Anthropic ended with expired requests) is status
 * JOB_FAILED with provider_expired set, never JOB_EXPIRED: JOB_EXPIRED means
 * the daemon watched the job longer than max_age, and the two must not be
 * confused. JOB_FAILED keeps job.h and job_transition() unchanged (the job
 * ends, as a failure); the flag is what lets the event layer name it apart.
 *
 * mapping is NULL when status is the plain meaning of the word, else a
 * static sentence saying how the status was derived (Anthropic's "ended" by
 * its counts, Gemini's finished Operation): the "say so" of the event.
 * Strings are owned; provider_obs_clear() frees them.
 */
struct prov_obs {
	enum provider provider;
	char *id;                   /* the provider's id (Gemini: the bare id of batches/ID); NULL if absent */
	char *status_raw;
	enum job_status status;
	bool provider_expired;
	const char *mapping;
	struct prov_records records;
	struct prov_output output;
	int64_t created_at;         /* epoch seconds, or PROV_UNKNOWN */
	int64_t expires_at;         /* when the provider ends it unfinished; epoch seconds or PROV_UNKNOWN */
	char *doc;                  /* the document as received (re-serialized, plain) */
	size_t doc_len;
};

/* Frees what an observation holds; accepts NULL and a zeroed one. */
void provider_obs_clear(struct prov_obs *o);

/* One page of a list: its items, owned, and where the next page starts. */
struct prov_page {
	struct prov_obs *items;
	size_t n;
	char *next_cursor;          /* owned; NULL when there is no next page */
	bool has_more;
};
/* Frees a page; accepts NULL and a zeroed one. */
void provider_page_clear(struct prov_page *pg);

/* The auth header lines of one request ("Name: value"), built from a key the caller owns and wipes. */
#define PROV_HDR_MAX 2
#define PROV_HDR_LEN 512
struct prov_headers {
	char line[PROV_HDR_MAX][PROV_HDR_LEN];
	size_t n;
};

/* The shape of a list answer: where its items and its next page are. */
struct prov_list_shape {
	const char *items;          /* the array of batches */
	const char *cursor;         /* the next page's token, or the last item's id (NULL: numbered pages) */
	const char *more;           /* the has_more boolean; NULL: a cursor alone says there is more */
	const char *total;          /* numbered pages: the count of all batches */
};

struct json_object;

/*
 * One provider: a row of data and two pieces of code (its status words and
 * its batch object). The functions below read it; each says its contract.
 */
struct provider_ops {
	enum provider provider;
	const char *default_base;   /* scheme and host, no path */
	unsigned rate_per_min;      /* a conservative default for get, list and cancel together */
	unsigned page_max;          /* the largest page size the list serves */
	bool newest_first;          /* the list is ordered by creation, newest first: the cut-off applies */

	const char *job_path;       /* GET base + job_path + id */
	const char *cancel_suffix;  /* POST base + job_path + id + cancel_suffix */
	const char *list_path;      /* GET base + list_path (may hold a fixed query) */
	const char *size_param;     /* the page size's query parameter */
	const char *cursor_param;   /* the next page's query parameter (a page number for numbered pages) */
	const char *id_prefix;      /* a prefix an id may carry and the URL drops (Gemini "batches/"), or NULL */
	const char *auth_header;    /* the key's header, */
	const char *auth_prefix;    /* and what precedes the key in it */
	const char *extra_header;   /* one more fixed line ("anthropic-version: 2023-06-01"), or NULL */
	const char *wrap;           /* a get answer's member that holds the batch (Cohere "batch"), or NULL */
	struct prov_list_shape list;

	/*
	 * The status a word means on its own (NULL or unknown: JOB_UNKNOWN);
	 * *ret_expired (may be NULL) is set for the provider's expiry. A word
	 * that needs the rest of the document (Anthropic's ended) is refined by
	 * item from it.
	 */
	enum job_status (*status)(const char *word, bool *ret_expired);
	/*
	 * Fills ret (prepared: provider, unknowns) from one batch object
	 * (borrowed). -EINVAL with err only when it is no batch at all.
	 */
	int (*item)(struct json_object *o, struct prov_obs *ret, char *err, size_t errlen);
};

/* The table of provider p (borrowed, static); NULL out of range. */
const struct provider_ops *provider_ops(enum provider p);

/* True for an id this provider can have: [A-Za-z0-9_-]{1,128}, after its id_prefix if any. */
bool provider_id_valid(const struct provider_ops *ops, const char *id);

/*
 * URLs into buf: 0, -EINVAL for an id the provider cannot have (refused,
 * never escaped), a page size out of [1, page_max] or a page number that is
 * none, -ENOSPC when buf is too small.
 * GET: the URL of one batch.
 */
int provider_job_url(const struct provider_ops *ops, const char *base, const char *id, char *buf, size_t len);
/* POST: the URL that cancels it. */
int provider_cancel_url(const struct provider_ops *ops, const char *base, const char *id, char *buf, size_t len);
/* GET: a list page of page_size; cursor NULL (or "") for the first, else a page's next_cursor (percent-encoded). */
int provider_list_url(const struct provider_ops *ops, const char *base, unsigned page_size, const char *cursor,
		      char *buf, size_t len);

/* The auth header lines for key: 0, -EINVAL for an empty key or one with a control byte, -ENOSPC. */
int provider_auth_headers(const struct provider_ops *ops, const char *key, struct prov_headers *ret);

/*
 * Parsers: 0, or -EINVAL with a reason in err for what is not a document at
 * all (malformed JSON, not an object, an id that is not a string, items
 * that are no array); every other odd answer (a field absent, null or of
 * another type, an unknown status) has a defined outcome: PROV_UNKNOWN,
 * NULL, JOB_UNKNOWN. On error ret holds nothing to free.
 */
/* A get (or cancel) answer: one batch. */
int provider_parse_job(const struct provider_ops *ops, const char *body, size_t len, struct prov_obs *ret,
		       char *err, size_t errlen);
/* A list answer to provider_list_url(page_size, cursor): its items, next cursor and has_more. */
int provider_parse_page(const struct provider_ops *ops, const char *body, size_t len, unsigned page_size,
			const char *cursor, struct prov_page *ret, char *err, size_t errlen);

/*
 * The sweep's cut-off rule: true when a sweep may stop after this page, for
 * a list ordered newest first, because the page reaches a batch created
 * before oldest_open (the created_at, epoch seconds, of the oldest unfinished
 * watched job of this provider): every later page is older still. False
 * when the list is not so ordered, oldest_open is PROV_UNKNOWN, or no item of
 * the page says when it was created before it; the caller then follows
 * has_more.
 */
bool provider_page_past(const struct provider_ops *ops, const struct prov_page *pg, int64_t oldest_open);

/*
 * A one-line description of o for a log line: provider, id, word, status,
 * records and output ids, "results_url=set" in place of the URL. Appended to
 * *out (util.h's struct buf).
 */
struct buf;
void provider_obs_describe(const struct prov_obs *o, struct buf *out);

/*
 * An observation as the rest of the daemon takes one (api_v2.h's struct
 * api_obs, which the caller clears): the status, the provider's word and the
 * records in ret->job (job_id: the provider's id), and in ret->doc the
 * provider's document with the normalized members added beside its own:
 * "provider_status" (its word), "records" {total, succeeded, failed} (null
 * where unknown), "output" {file_id, error_file_id, results_url, inlined},
 * "expired_by_provider", "expires_at" (epoch s or null), "mapping" (how the
 * status was derived, when not plain) and "id" when the document has none.
 */
struct api_obs;
void provider_obs_to_api(const struct prov_obs *o, struct api_obs *ret);

/*
 * The daemon's key of a job: the id itself for the account "cohere" (as
 * every key was before accounts), "ACCOUNT:ID" for any other account. An id
 * never holds ':', so the key names the account without a lookup.
 */
/* True for a name an account may have: [a-z0-9_-]{1,32}. */
bool provider_account_valid(const char *name);
/* The key of id in account into buf: 0, -EINVAL for an account or id that cannot be, -ENOSPC. */
int provider_job_key(const char *account, const char *id, char *buf, size_t len);
/* The id in a key (a pointer into it). */
const char *provider_key_id(const char *key);
/* The account of a key into buf ("cohere" when it names none); 0, or -EINVAL when the key is no key. */
int provider_key_account(const char *key, char *buf, size_t len);

#endif
