/* The Cohere Embed Jobs contract: ids, URLs, EmbedJob parsing, answer classes. Pure. */
#ifndef EW_API_H
#define EW_API_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "job.h"

#define API_ID_MAX 128
#define API_BODY_MAX (1024 * 1024)
/* The longest Retry-After the daemon honours: a wrong header must not stop it for days. */
#define API_RETRY_AFTER_CAP_S 3600

/* One EmbedJob; strings are owned and freed by api_job_clear(). */
struct api_job {
	char *job_id;
	char *name;
	char *status_raw;
	enum job_status status;
	char *created_at;
	char *input_dataset_id;
	char *output_dataset_id;
	char *model;
	char *truncate;
	char **warnings;    /* meta.warnings */
	size_t n_warnings;
	/* Records done so far, as a v2 Batch reports them (api_v2.h); a v1 EmbedJob has none. */
	bool has_records;
	int64_t num_records, num_successful, num_failed;
	int64_t expires_at;     /* when the provider ends it unfinished (epoch s), 0: not said */
};

/* True when id matches [A-Za-z0-9_-]{1,128}. */
bool api_id_valid(const char *id);

/*
 * Checks a base URL: https://host[:port][/path], or http:// only to a loopback
 * host. On error returns -EINVAL and a reason in err.
 */
int api_base_check(const char *base, char *err, size_t errlen);

/* "{base}/v1/embed-jobs/{id}" into buf. Returns 0, -EINVAL for a bad id, -ENOSPC. */
int api_job_url(const char *base, const char *id, char *buf, size_t len);

/*
 * One JSON document of at most cap bytes: no NUL, nothing after it but white space, an object.
 * Owned by the caller (json_object_put); NULL with a reason in err that names `what`.
 */
struct json_object *api_json_root(const char *body, size_t len, size_t cap, const char *what, char *err, size_t errlen);

/*
 * Parses an EmbedJob document. Required fields (job_id, status, created_at,
 * input_dataset_id, model, truncate) must be present with the right type;
 * unknown fields are ignored. Returns 0, or -EINVAL with a reason in err.
 */
int api_job_parse(const char *body, size_t len, struct api_job *ret, char *err, size_t errlen);
void api_job_clear(struct api_job *j);

/* The DESIGN table: what an HTTP status means (0 = no answer at all: transient). */
enum api_class api_classify(long http_status);
const char *api_class_name(enum api_class c);

/*
 * Parses a Retry-After value (delta-seconds or an HTTP-date) into seconds from
 * now_s, clamped to [0, cap_s]. Returns 0, or -EINVAL when it is neither form.
 */
int api_retry_after(const char *value, int64_t now_s, int64_t cap_s, int64_t *ret_s);

/* True when s is an RFC 3339 date-time ("2024-05-06T07:08:09Z", fraction and offset allowed). */
bool api_rfc3339_valid(const char *s);

#endif
