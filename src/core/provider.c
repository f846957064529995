/*
 * The provider table and what every provider module shares: the parse
 * skeleton of a document and of a list page, typed members, URLs, header
 * lines, and the sweep's cut-off rule.
 */
#include "provider_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_v2.h"

static const struct provider_ops *const tables[PROV__MAX] = {
	[PROV_COHERE] = &provider_cohere_ops,
	[PROV_OPENAI] = &provider_openai_ops,
	[PROV_ANTHROPIC] = &provider_anthropic_ops,
	[PROV_GEMINI] = &provider_gemini_ops,
	[PROV_MISTRAL] = &provider_mistral_ops,
};

static const char *const names[PROV__MAX] = {
	[PROV_COHERE] = "cohere", [PROV_OPENAI] = "openai", [PROV_ANTHROPIC] = "anthropic",
	[PROV_GEMINI] = "gemini", [PROV_MISTRAL] = "mistral",
};

const char *provider_name(enum provider p)
{
	return (unsigned)p < PROV__MAX ? names[p] : "?";
}

int provider_parse(const char *s)
{
	for (int p = 0; s && p < PROV__MAX; p++)
		if (strcmp(s, names[p]) == 0)
			return p;
	return -1;
}

const struct provider_ops *provider_ops(enum provider p)
{
	return (unsigned)p < PROV__MAX ? tables[p] : NULL;
}

enum job_status prov_word_status(const struct prov_word *words, size_t n, const char *word, bool *ret_expired)
{
	if (ret_expired)
		*ret_expired = false;
	for (size_t i = 0; word && i < n; i++) {
		if (strcasecmp(word, words[i].word) == 0) {
			if (ret_expired)
				*ret_expired = words[i].expired;
			return words[i].status;
		}
	}
	return JOB_UNKNOWN;
}

/* ---- typed members ---- */

static json_object *member(json_object *o, const char *key, enum json_type t)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

const char *prov_str(json_object *o, const char *key)
{
	json_object *v = member(o, key, json_type_string);
	return v ? json_object_get_string(v) : NULL;
}

json_object *prov_obj(json_object *o, const char *key)
{
	return member(o, key, json_type_object);
}

bool prov_bool(json_object *o, const char *key)
{
	json_object *v = member(o, key, json_type_boolean);
	return v && json_object_get_boolean(v);
}

bool prov_present(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && v;
}

int64_t prov_count(json_object *o, const char *key)
{
	int64_t n;
	return o && api_json_count(o, key, &n) ? n : PROV_UNKNOWN;
}

int64_t prov_time(json_object *o, const char *key)
{
	int64_t ms;
	const char *s = prov_str(o, key);
	if (s)
		return util_parse_rfc3339(s, &ms) == 0 ? ms / 1000 : PROV_UNKNOWN;
	json_object *v = member(o, key, json_type_int);
	return v && json_object_get_int64(v) >= 0 ? json_object_get_int64(v) : PROV_UNKNOWN;
}

char *prov_strdup(json_object *o, const char *key)
{
	const char *s = prov_str(o, key);
	return s ? xstrdup(s) : NULL;
}

int prov_id(json_object *o, const char *key, char **ret, char *err, size_t errlen)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "batch: field \"%s\" must be a string, got %s", key,
			 json_type_to_name(json_object_get_type(v)));
		return -EINVAL;
	}
	*ret = xstrdup(json_object_get_string(v));
	return 0;
}

/* ---- documents and pages ---- */

static void obs_prepare(struct prov_obs *o, enum provider p)
{
	memset(o, 0, sizeof(*o));
	o->provider = p;
	o->status = JOB_UNKNOWN;
	o->records.total = o->records.succeeded = o->records.failed = PROV_UNKNOWN;
	o->created_at = o->expires_at = PROV_UNKNOWN;
}

/* One batch object into ret: prepared, filled by the provider's item, the status word never NULL, the object kept. */
static int obs_from(const struct provider_ops *ops, json_object *o, struct prov_obs *ret, char *err, size_t errlen)
{
	obs_prepare(ret, ops->provider);
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "%s batch: expected a JSON object, got %s", provider_name(ops->provider),
			 json_type_to_name(json_object_get_type(o)));
		return -EINVAL;
	}
	if (ops->item(o, ret, err, errlen) < 0) {
		provider_obs_clear(ret);
		return -EINVAL;
	}
	if (!ret->status_raw)
		ret->status_raw = xstrdup("");
	const char *doc = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	ret->doc_len = strlen(doc);
	ret->doc = xstrndup(doc, ret->doc_len);
	return 0;
}

int provider_parse_job(const struct provider_ops *ops, const char *body, size_t len, struct prov_obs *ret,
		       char *err, size_t errlen)
{
	json_object *o;
	obs_prepare(ret, ops->provider);
	json_object *root = api_json_root(body, len, API_BODY_MAX, provider_name(ops->provider), err, errlen);
	if (!root)
		return -EINVAL;
	o = root;
	if (ops->wrap && (!json_object_object_get_ex(root, ops->wrap, &o) || !json_object_is_type(o, json_type_object))) {
		snprintf(err, errlen, "%s answer: expected {\"%s\": {...}}", provider_name(ops->provider), ops->wrap);
		json_object_put(root);
		return -EINVAL;
	}
	int r = obs_from(ops, o, ret, err, errlen);
	json_object_put(root);
	return r;
}

/* The page number a cursor names (NULL or "": the first, 0); -1 for anything but decimal digits. */
static long page_number(const char *cursor)
{
	char *end;
	if (!cursor || !*cursor)
		return 0;
	if (!isdigit((unsigned char)*cursor))
		return -1;
	errno = 0;
	long n = strtol(cursor, &end, 10);
	return errno || *end || n > 1000000000L ? -1 : n;
}

/* Where the next page starts: a cursor member (or the last item's id), or the next page number. */
static void page_next(const struct prov_list_shape *sh, json_object *root, unsigned page_size, long page,
		      struct prov_page *pg)
{
	char num[24];
	const char *next = NULL;

	if (sh->cursor) {
		/* The SDKs page on the last item's id, which the list's last_id repeats. */
		next = prov_str(root, sh->cursor);
		if ((!next || !*next) && sh->more && pg->n)
			next = pg->items[pg->n - 1].id;
		pg->has_more = next && *next && (!sh->more || prov_bool(root, sh->more));
	} else {
		/* Numbered pages: more while the pages so far hold fewer than the total. */
		int64_t total = prov_count(root, sh->total);
		pg->has_more = pg->n > 0 && total != PROV_UNKNOWN && (int64_t)(page + 1) * page_size < total;
		snprintf(num, sizeof(num), "%ld", page + 1);
		next = num;
	}
	if (pg->has_more)
		pg->next_cursor = xstrdup(next);
}

int provider_parse_page(const struct provider_ops *ops, const char *body, size_t len, unsigned page_size,
			const char *cursor, struct prov_page *ret, char *err, size_t errlen)
{
	const char *name = provider_name(ops->provider);
	const char *key = ops->list.items;
	long page = page_number(cursor);
	json_object *arr;

	memset(ret, 0, sizeof(*ret));
	if (!ops->list.cursor && (page < 0 || page_size < 1)) {
		snprintf(err, errlen, "%s list: page number or page size out of range", name);
		return -EINVAL;
	}
	/* The transfer caps the body; a page is one tree of at most page_max batches. */
	json_object *root = api_json_root(body, len, SIZE_MAX, name, err, errlen);
	if (!root)
		return -EINVAL;
	/* An empty account may leave the array out, or null. */
	if (json_object_object_get_ex(root, key, &arr) && arr && !json_object_is_type(arr, json_type_array)) {
		snprintf(err, errlen, "%s list: \"%s\" must be an array, got %s", name, key,
			 json_type_to_name(json_object_get_type(arr)));
		json_object_put(root);
		return -EINVAL;
	}
	size_t n = arr ? json_object_array_length(arr) : 0;
	ret->items = n ? xcalloc(n, sizeof(*ret->items)) : NULL;
	for (size_t i = 0; i < n; i++, ret->n++) {
		if (obs_from(ops, json_object_array_get_idx(arr, i), &ret->items[i], err, errlen) < 0) {
			provider_page_clear(ret);
			json_object_put(root);
			return -EINVAL;
		}
	}
	page_next(&ops->list, root, page_size, page, ret);
	json_object_put(root);
	return 0;
}

void provider_obs_clear(struct prov_obs *o)
{
	if (!o)
		return;
	free(o->id);
	free(o->status_raw);
	free(o->output.file_id);
	free(o->output.error_file_id);
	free(o->output.results_url);
	free(o->doc);
	memset(o, 0, sizeof(*o));
}

void provider_page_clear(struct prov_page *pg)
{
	if (!pg)
		return;
	for (size_t i = 0; i < pg->n; i++)
		provider_obs_clear(&pg->items[i]);
	free(pg->items);
	free(pg->next_cursor);
	memset(pg, 0, sizeof(*pg));
}

/* ---- URLs and headers ---- */

/* The id without the prefix the provider's names carry ("batches/ID" -> "ID"). */
static const char *bare_id(const struct provider_ops *ops, const char *id)
{
	size_t n = ops->id_prefix ? strlen(ops->id_prefix) : 0;
	return id && n && strncmp(id, ops->id_prefix, n) == 0 ? id + n : id;
}

bool provider_id_valid(const struct provider_ops *ops, const char *id)
{
	return api_id_valid(bare_id(ops, id));
}

static void url_base(struct buf *b, const char *base)
{
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	buf_append(b, base, n);
}

/* Copies b into out (0 or -ENOSPC) and frees b. */
static int url_finish(struct buf *b, char *out, size_t len)
{
	int r = 0;
	if (b->len >= len)
		r = -ENOSPC;
	else
		memcpy(out, b->data ? b->data : "", b->len + 1);
	buf_free(b);
	return r;
}

static int id_url(const struct provider_ops *ops, const char *base, const char *id, const char *suffix,
		  char *out, size_t len)
{
	struct buf b = { 0 };
	/* Ids are checked, not escaped: one that would need escaping is none the provider gives. */
	if (!provider_id_valid(ops, id))
		return -EINVAL;
	url_base(&b, base);
	buf_printf(&b, "%s%s%s", ops->job_path, bare_id(ops, id), suffix);
	return url_finish(&b, out, len);
}

int provider_job_url(const struct provider_ops *ops, const char *base, const char *id, char *buf, size_t len)
{
	return id_url(ops, base, id, "", buf, len);
}

int provider_cancel_url(const struct provider_ops *ops, const char *base, const char *id, char *buf, size_t len)
{
	return id_url(ops, base, id, ops->cancel_suffix, buf, len);
}

int provider_list_url(const struct provider_ops *ops, const char *base, unsigned page_size, const char *cursor,
		      char *buf, size_t len)
{
	struct buf b = { 0 };
	if (page_size < 1 || page_size > ops->page_max || (!ops->list.cursor && page_number(cursor) < 0))
		return -EINVAL;
	url_base(&b, base);
	buf_printf(&b, "%s%c%s=%u", ops->list_path, strchr(ops->list_path, '?') ? '&' : '?', ops->size_param, page_size);
	if (cursor && *cursor) {
		buf_printf(&b, "&%s=", ops->cursor_param);
		/* RFC 3986 unreserved bytes stay; every other byte of an opaque cursor is percent-encoded. */
		for (const unsigned char *p = (const unsigned char *)cursor; *p; p++) {
			bool plain = *p < 128 && (isalnum(*p) || strchr("-._~", *p));
			buf_printf(&b, plain ? "%c" : "%%%02X", *p);
		}
	}
	return url_finish(&b, buf, len);
}

/* One line "name: value" into ret: -ENOSPC when there is no room. */
static int header_line(struct prov_headers *ret, const char *name, const char *prefix, const char *value)
{
	if (ret->n >= PROV_HDR_MAX)
		return -ENOSPC;
	int n = snprintf(ret->line[ret->n], PROV_HDR_LEN, "%s%s%s%s", name, *name ? ": " : "", prefix, value);
	if (n < 0 || n >= PROV_HDR_LEN) {
		memset(ret->line[ret->n], 0, PROV_HDR_LEN);
		return -ENOSPC;
	}
	ret->n++;
	return 0;
}

int provider_auth_headers(const struct provider_ops *ops, const char *key, struct prov_headers *ret)
{
	ret->n = 0;
	if (!key || !*key)
		return -EINVAL;
	/* A CR or LF in a key would end the header and start another: refuse every control byte. */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	int r = header_line(ret, ops->auth_header, ops->auth_prefix, key);
	if (r == 0 && ops->extra_header)
		r = header_line(ret, "", "", ops->extra_header);
	return r;
}

/* ---- the sweep and logs ---- */

bool provider_page_past(const struct provider_ops *ops, const struct prov_page *pg, int64_t oldest_open)
{
	if (!ops || !ops->newest_first || oldest_open == PROV_UNKNOWN)
		return false;
	/* Strictly before: batches created in the same second as the oldest open one may sit on the next page. */
	for (size_t i = 0; i < pg->n; i++)
		if (pg->items[i].created_at != PROV_UNKNOWN && pg->items[i].created_at < oldest_open)
			return true;
	return false;
}

/* Text from the provider, escaped: a status word or an id must not forge a log line. */
static void describe_field(struct buf *out, const char *label, const char *s)
{
	if (!s)
		return;
	buf_printf(out, "%s", label);
	util_escape_text(out, s);
}

void provider_obs_describe(const struct prov_obs *o, struct buf *out)
{
	buf_printf(out, "%s batch ", provider_name(o->provider));
	describe_field(out, "", o->id ? o->id : "(no id)");
	buf_printf(out, ": %s", job_status_name(o->status));
	describe_field(out, " (", o->status_raw ? o->status_raw : "");
	buf_printf(out, "%s)", o->provider_expired ? ", expired at the provider" : "");
	if (o->mapping)
		buf_printf(out, " [%s]", o->mapping);
	buf_printf(out, " records total=%" PRId64 " succeeded=%" PRId64 " failed=%" PRId64,
		   o->records.total, o->records.succeeded, o->records.failed);
	describe_field(out, " output=", o->output.file_id);
	describe_field(out, " errors=", o->output.error_file_id);
	if (o->output.results_url)
		buf_printf(out, " results_url=set");
	if (o->output.inlined)
		buf_printf(out, " output=inlined");
}

bool provider_account_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 32)
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-' && *p != '_')
			return false;
	return true;
}

int provider_job_key(const char *account, const char *id, char *buf, size_t len)
{
	if (!provider_account_valid(account) || !api_id_valid(id))
		return -EINVAL;
	int n = strcmp(account, "cohere") == 0 ? snprintf(buf, len, "%s", id) : snprintf(buf, len, "%s:%s", account, id);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

const char *provider_key_id(const char *key)
{
	const char *c = strchr(key, ':');
	return c ? c + 1 : key;
}

int provider_key_account(const char *key, char *buf, size_t len)
{
	const char *c = strchr(key, ':');
	if (!c) {
		snprintf(buf, len, "cohere");
		return api_id_valid(key) ? 0 : -EINVAL;
	}
	if ((size_t)(c - key) >= len)
		return -EINVAL;
	memcpy(buf, key, (size_t)(c - key));
	buf[c - key] = '\0';
	return provider_account_valid(buf) && api_id_valid(c + 1) ? 0 : -EINVAL;
}

static json_object *count_or_null(int64_t v)
{
	return v == PROV_UNKNOWN ? NULL : json_object_new_int64(v);
}

static json_object *str_or_null(const char *v)
{
	return v ? json_object_new_string(v) : NULL;
}

void provider_obs_to_api(const struct prov_obs *o, struct api_obs *ret)
{
	memset(ret, 0, sizeof(*ret));
	struct api_job *j = &ret->job;
	j->job_id = o->id ? xstrdup(o->id) : NULL;
	j->status_raw = xstrdup(o->status_raw ? o->status_raw : "");
	j->status = o->status;
	j->has_records = o->records.total != PROV_UNKNOWN || o->records.succeeded != PROV_UNKNOWN ||
			 o->records.failed != PROV_UNKNOWN;
	j->num_records = o->records.total == PROV_UNKNOWN ? 0 : o->records.total;
	j->num_successful = o->records.succeeded == PROV_UNKNOWN ? 0 : o->records.succeeded;
	j->num_failed = o->records.failed == PROV_UNKNOWN ? 0 : o->records.failed;
	j->expires_at = o->expires_at > 0 ? o->expires_at : 0;

	json_object *d = o->doc ? json_tokener_parse(o->doc) : NULL;
	if (!json_object_is_type(d, json_type_object)) {
		json_object_put(d);
		d = json_object_new_object();
	}
	if (!json_object_object_get_ex(d, "id", NULL) && o->id)
		json_object_object_add(d, "id", json_object_new_string(o->id));
	json_object_object_add(d, "provider_status", json_object_new_string(o->status_raw ? o->status_raw : ""));
	json_object *r = json_object_new_object();
	json_object_object_add(r, "total", count_or_null(o->records.total));
	json_object_object_add(r, "succeeded", count_or_null(o->records.succeeded));
	json_object_object_add(r, "failed", count_or_null(o->records.failed));
	json_object_object_add(d, "records", r);
	json_object *out = json_object_new_object();
	json_object_object_add(out, "file_id", str_or_null(o->output.file_id));
	json_object_object_add(out, "error_file_id", str_or_null(o->output.error_file_id));
	json_object_object_add(out, "results_url", str_or_null(o->output.results_url));
	json_object_object_add(out, "inlined", json_object_new_boolean(o->output.inlined));
	json_object_object_add(d, "output", out);
	json_object_object_add(d, "expired_by_provider", json_object_new_boolean(o->provider_expired));
	json_object_object_add(d, "expires_at", count_or_null(o->expires_at));
	if (o->mapping)
		json_object_object_add(d, "mapping", json_object_new_string(o->mapping));
	const char *doc = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	ret->doc_len = strlen(doc);
	ret->doc = xstrndup(doc, ret->doc_len);
	json_object_put(d);
}
