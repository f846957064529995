/*
 * v2 Batches and v1 Datasets: URLs, documents, the status mapping; and the
 * dispatch by kind that lets everything below the API layer stay kind-blind.
 */
#include "api_v2.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

enum job_status api_v2_status(const char *s)
{
	/* The documented spellings, and the ones "other spellings may appear" warns of. */
	static const struct { const char *name; enum job_status st; } map[] = {
		{ "QUEUED", JOB_PROCESSING }, { "IN_PROGRESS", JOB_PROCESSING },
		{ "CANCELING", JOB_CANCELLING }, { "CANCELLING", JOB_CANCELLING },
		{ "COMPLETED", JOB_COMPLETE }, { "COMPLETE", JOB_COMPLETE },
		{ "FAILED", JOB_FAILED },
		{ "CANCELED", JOB_CANCELLED }, { "CANCELLED", JOB_CANCELLED },
	};
	if (!s)
		return JOB_UNKNOWN;
	if (strncasecmp(s, "BATCH_STATUS_", 13) == 0)
		s += 13;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcasecmp(s, map[i].name) == 0)
			return map[i].st;
	return JOB_UNKNOWN;     /* UNSPECIFIED too: keep watching */
}

/* base without trailing slashes, then the parts of the path. */
static int url(char *buf, size_t len, const char *base, const char *a, const char *b, const char *c, const char *d)
{
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	int n = snprintf(buf, len, "%.*s%s%s%s%s", (int)bl, base, a, b, c, d);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int api_batch_url(const char *base, const char *id, bool cancel, char *buf, size_t len)
{
	if (!api_id_valid(id))
		return -EINVAL;
	/* The cancel path has a colon, not a slash: /v2/batches/ID:cancel. */
	return url(buf, len, base, "/v2/batches/", id, cancel ? ":cancel" : "", "");
}

int api_dataset_url(const char *base, const char *id, char *buf, size_t len)
{
	if (!api_id_valid(id))
		return -EINVAL;
	return url(buf, len, base, "/v1/datasets/", id, "", "");
}

int api_batches_url(const char *base, unsigned page_size, const char *page_token, char *buf, size_t len)
{
	char q[64];
	struct buf tok = { 0 };

	if (page_size < 1 || page_size > API_V2_PAGE_MAX)
		return -EINVAL;
	snprintf(q, sizeof(q), "%u", page_size);
	if (page_token && *page_token) {
		/* The token is opaque: every byte but the unreserved ones is percent-encoded. */
		buf_append(&tok, "&page_token=", 12);
		for (const unsigned char *p = (const unsigned char *)page_token; *p; p++) {
			if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
				buf_append(&tok, p, 1);
			else
				buf_printf(&tok, "%%%02X", *p);
		}
	}
	int r = url(buf, len, base, "/v2/batches?order_by=updated_at&page_size=", q, tok.data ? tok.data : "", "");
	buf_free(&tok);
	return r;
}

/* A string member: absent or null is fine (*ret stays NULL); another type is an error for strict members. */
static int opt_string(json_object *o, const char *key, bool strict, char **ret, char *err, size_t errlen)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		if (!strict)
			return 0;
		snprintf(err, errlen, "Batch: field \"%s\" must be a string, got %s", key,
			 json_type_to_name(json_object_get_type(v)));
		return -EINVAL;
	}
	*ret = xstrndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
	return 0;
}

/* A count: an integer, an integral number, or a string of digits ("numbers as strings"). False when none of those. */
bool api_json_count(json_object *o, const char *key, int64_t *ret)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return false;
	switch (json_object_get_type(v)) {
	case json_type_int:
		*ret = json_object_get_int64(v);
		return *ret >= 0;
	case json_type_double: {
		double d = json_object_get_double(v);
		if (!(d >= 0 && d < 9e15) || d != (double)(int64_t)d)
			return false;
		*ret = (int64_t)d;
		return true;
	}
	case json_type_string: {
		const char *s = json_object_get_string(v);
		char *end;
		if (!isdigit((unsigned char)*s))
			return false;
		errno = 0;
		long long n = strtoll(s, &end, 10);
		if (errno || *end)
			return false;
		*ret = n;
		return true;
	}
	default:
		return false;
	}
}

int api_batch_from_json(json_object *o, struct api_obs *ret, char *err, size_t errlen)
{
	struct api_job *j = &ret->job;

	memset(ret, 0, sizeof(*ret));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "Batch: expected a JSON object, got %s", json_type_to_name(json_object_get_type(o)));
		return -EINVAL;
	}
	if (opt_string(o, "id", true, &j->job_id, err, errlen) < 0 ||
	    opt_string(o, "name", true, &j->name, err, errlen) < 0 ||
	    opt_string(o, "status", true, &j->status_raw, err, errlen) < 0 ||
	    opt_string(o, "created_at", false, &j->created_at, err, errlen) < 0 ||
	    opt_string(o, "updated_at", false, &ret->updated_at, err, errlen) < 0 ||
	    opt_string(o, "input_dataset_id", false, &j->input_dataset_id, err, errlen) < 0 ||
	    opt_string(o, "output_dataset_id", false, &j->output_dataset_id, err, errlen) < 0 ||
	    opt_string(o, "model", false, &j->model, err, errlen) < 0) {
		api_obs_clear(ret);
		return -EINVAL;
	}
	if (!j->status_raw)
		j->status_raw = xstrdup("");
	j->status = api_v2_status(j->status_raw);
	bool a = api_json_count(o, "num_records", &j->num_records);
	bool b = api_json_count(o, "num_successful_records", &j->num_successful);
	bool c = api_json_count(o, "num_failed_records", &j->num_failed);
	j->has_records = a || b || c;
	const char *doc = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	ret->doc_len = strlen(doc);
	ret->doc = xstrndup(doc, ret->doc_len);
	return 0;
}

int api_batch_parse(const char *body, size_t len, struct api_obs *ret, char *err, size_t errlen)
{
	memset(ret, 0, sizeof(*ret));
	json_object *root = api_json_root(body, len, API_BODY_MAX, "Batch", err, errlen);
	if (!root)
		return -EINVAL;
	int r = api_batch_from_json(root, ret, err, errlen);
	json_object_put(root);
	return r;
}

int api_batch_answer_parse(const char *body, size_t len, struct api_obs *ret, char *err, size_t errlen)
{
	json_object *b;

	memset(ret, 0, sizeof(*ret));
	json_object *root = api_json_root(body, len, API_BODY_MAX, "getBatch answer", err, errlen);
	if (!root)
		return -EINVAL;
	if (!json_object_object_get_ex(root, "batch", &b) || !json_object_is_type(b, json_type_object)) {
		snprintf(err, errlen, "getBatch answer: expected {\"batch\": {...}}");
		json_object_put(root);
		return -EINVAL;
	}
	int r = api_batch_from_json(b, ret, err, errlen);
	json_object_put(root);
	return r;
}

void api_obs_clear(struct api_obs *o)
{
	if (!o)
		return;
	api_job_clear(&o->job);
	free(o->updated_at);
	free(o->doc);
	memset(o, 0, sizeof(*o));
}

int api_batch_page_parse(const char *body, size_t len, struct api_batch_page *ret, char *err, size_t errlen)
{
	json_object *v;

	memset(ret, 0, sizeof(*ret));
	/* The transfer capped the body already (list_max_bytes); a page is one tree of at most 1000 Batches. */
	ret->root = api_json_root(body, len, SIZE_MAX, "listBatches answer", err, errlen);
	if (!ret->root)
		return -EINVAL;
	if (!json_object_object_get_ex(ret->root, "batches", &ret->batches) || !ret->batches) {
		/* An empty account may leave the array out: every field may be absent. */
		ret->batches = NULL;
	} else if (!json_object_is_type(ret->batches, json_type_array)) {
		snprintf(err, errlen, "listBatches answer: \"batches\" must be an array");
		api_batch_page_clear(ret);
		return -EINVAL;
	}
	ret->n = ret->batches ? json_object_array_length(ret->batches) : 0;
	if (json_object_object_get_ex(ret->root, "next_page_token", &v) && v) {
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "listBatches answer: \"next_page_token\" must be a string");
			api_batch_page_clear(ret);
			return -EINVAL;
		}
		ret->next_page_token = json_object_get_string(v);
		if (!*ret->next_page_token)
			ret->next_page_token = NULL;
	}
	return 0;
}

void api_batch_page_clear(struct api_batch_page *p)
{
	json_object_put(p->root);
	memset(p, 0, sizeof(*p));
}

int api_dataset_parse(const char *body, size_t len, const char *want_id, struct api_dataset *ret,
		      char *err, size_t errlen)
{
	json_object *d, *v, *parts;

	memset(ret, 0, sizeof(*ret));
	json_object *root = api_json_root(body, len, API_BODY_MAX, "getDataset answer", err, errlen);
	if (!root)
		return -EINVAL;
	if (!json_object_object_get_ex(root, "dataset", &d) || !json_object_is_type(d, json_type_object)) {
		snprintf(err, errlen, "getDataset answer: expected {\"dataset\": {...}}");
		goto bad;
	}
	if (json_object_object_get_ex(d, "id", &v) && v) {
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "Dataset: field \"id\" must be a string");
			goto bad;
		}
		if (want_id && strcmp(json_object_get_string(v), want_id) != 0) {
			/* An id is no secret; quoted cut short and only when it is a valid id. */
			const char *got = json_object_get_string(v);
			snprintf(err, errlen, "Dataset: asked for \"%s\", the answer is about %s%.128s%s", want_id,
				 api_id_valid(got) ? "\"" : "another dataset", api_id_valid(got) ? got : "",
				 api_id_valid(got) ? "\"" : "");
			goto bad;
		}
	}
	if (json_object_object_get_ex(d, "dataset_parts", &parts) && parts) {
		if (!json_object_is_type(parts, json_type_array)) {
			snprintf(err, errlen, "Dataset: field \"dataset_parts\" must be an array");
			goto bad;
		}
		for (size_t i = 0; i < json_object_array_length(parts); i++) {
			json_object *p = json_object_array_get_idx(parts, i), *u;
			int64_t n;
			if (!json_object_is_type(p, json_type_object)) {
				snprintf(err, errlen, "Dataset: dataset_parts[%zu] must be an object", i);
				goto bad;
			}
			if (json_object_object_get_ex(p, "url", &u) && u && !json_object_is_type(u, json_type_string)) {
				snprintf(err, errlen, "Dataset: dataset_parts[%zu].url must be a string", i);
				goto bad;
			}
			if (api_json_count(p, "size_bytes", &n))
				ret->size_bytes += n;
			if (api_json_count(p, "num_rows", &n))
				ret->num_rows += n;
			ret->n_parts++;
		}
	}
	ret->dataset = json_object_get(d);
	json_object_put(root);
	return 0;
bad:
	json_object_put(root);
	memset(ret, 0, sizeof(*ret));
	return -EINVAL;
}

void api_dataset_clear(struct api_dataset *d)
{
	json_object_put(d->dataset);
	memset(d, 0, sizeof(*d));
}

int api_records_percent(const struct api_job *aj)
{
	if (!aj->has_records || aj->num_records <= 0)
		return -1;
	int64_t done = aj->num_successful + aj->num_failed;
	if (done <= 0)
		return 0;
	if (done >= aj->num_records)
		return 100;
	return (int)(done * 100 / aj->num_records);
}

int api_kind_url(enum job_kind k, const char *base, const char *id, bool cancel, char *buf, size_t len)
{
	if (k == JOB_KIND_BATCH)
		return api_batch_url(base, id, cancel, buf, len);
	int r = api_job_url(base, id, buf, len);
	if (r == 0 && cancel) {
		size_t n = strlen(buf);
		if (n + 8 > len)
			return -ENOSPC;
		memcpy(buf + n, "/cancel", 8);
	}
	return r;
}

int api_kind_parse_answer(enum job_kind k, const char *body, size_t len, struct api_obs *ret, char *err, size_t errlen)
{
	if (k == JOB_KIND_BATCH)
		return api_batch_answer_parse(body, len, ret, err, errlen);
	memset(ret, 0, sizeof(*ret));
	return api_job_parse(body, len, &ret->job, err, errlen);
}

int api_kind_parse_doc(enum job_kind k, const char *doc, size_t len, struct api_obs *ret, char *err, size_t errlen)
{
	if (k == JOB_KIND_BATCH)
		return api_batch_parse(doc, len, ret, err, errlen);
	memset(ret, 0, sizeof(*ret));
	return api_job_parse(doc, len, &ret->job, err, errlen);
}
