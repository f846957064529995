#include "api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

bool api_id_valid(const char *id)
{
	size_t n = 0;

	if (!id)
		return false;
	for (; id[n]; n++) {
		unsigned char c = (unsigned char)id[n];
		if (n >= API_ID_MAX)
			return false;
		if (!(isalnum(c) || c == '_' || c == '-') || c > 127)
			return false;
	}
	return n > 0;
}

/*
 * Loopback is decided by address, never by the look of the string: an IPv4
 * literal in 127.0.0.0/8 or the IPv6 literal ::1 (inet_pton: exactly four
 * decimal parts, so "127.1.1.1.1" or "127.1" are not addresses), or
 * "localhost", which libcurl always resolves to loopback itself.
 */
static bool host_is_loopback(const char *h, size_t n)
{
	char lit[INET6_ADDRSTRLEN + 2];
	struct in_addr a4;
	struct in6_addr a6;

	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return true;
	if (n >= sizeof(lit))
		return false;
	if (n > 2 && h[0] == '[' && h[n - 1] == ']') {
		memcpy(lit, h + 1, n - 2);
		lit[n - 2] = '\0';
		return inet_pton(AF_INET6, lit, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	memcpy(lit, h, n);
	lit[n] = '\0';
	return inet_pton(AF_INET, lit, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int api_base_check(const char *base, char *err, size_t errlen)
{
	const char *host;
	bool tls;

	if (strncmp(base, "https://", 8) == 0) {
		tls = true;
		host = base + 8;
	} else if (strncmp(base, "http://", 7) == 0) {
		tls = false;
		host = base + 7;
	} else {
		snprintf(err, errlen, "expected an https:// URL, got \"%s\"", base);
		return -EINVAL;
	}
	size_t n;
	if (host[0] == '[') {
		const char *e = strchr(host, ']');
		if (!e) {
			snprintf(err, errlen, "unterminated IPv6 address in \"%s\"", base);
			return -EINVAL;
		}
		n = (size_t)(e - host) + 1;
	} else {
		n = strcspn(host, ":/?#");
	}
	if (n == 0) {
		snprintf(err, errlen, "no host in \"%s\"", base);
		return -EINVAL;
	}
	if (strpbrk(base, "?#@ \t")) {
		snprintf(err, errlen, "a base URL carries no query, fragment, user or spaces: \"%s\"", base);
		return -EINVAL;
	}
	if (!tls && !host_is_loopback(host, n)) {
		snprintf(err, errlen, "plain http is allowed only to loopback (127.0.0.0/8, localhost, [::1]); use https for \"%s\"", base);
		return -EINVAL;
	}
	return 0;
}

int api_job_url(const char *base, const char *id, char *buf, size_t len)
{
	size_t bl = strlen(base);

	if (!api_id_valid(id))
		return -EINVAL;
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	int n = snprintf(buf, len, "%.*s/v1/embed-jobs/%s", (int)bl, base, id);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return 0;
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool api_rfc3339_valid(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2) ||
	    s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
		return false;
	int mo = atoi(s + 5), d = atoi(s + 8), h = atoi(s + 11), mi = atoi(s + 14), se = atoi(s + 17);
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) && p[6] == '\0')
		return true;
	return false;
}

/* Copies a string member; required members must exist, optional ones may be absent or null. */
static int take_string(json_object *obj, const char *key, bool required, char **ret,
		       char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
		if (!required)
			return 0;
		snprintf(err, errlen, "EmbedJob: required field \"%s\" is missing", key);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "EmbedJob: field \"%s\" must be a string, got %s", key,
			 json_type_to_name(json_object_get_type(v)));
		return -EINVAL;
	}
	*ret = xstrndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
	return 0;
}

/* Parses one JSON document: no NUL, nothing after it but whitespace, an object. NULL with err otherwise. */
json_object *api_json_root(const char *body, size_t len, size_t cap, const char *what, char *err, size_t errlen)
{
	if (len > cap) {
		snprintf(err, errlen, "%s: body of %zu bytes is over the %zu byte limit", what, len, cap);
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		snprintf(err, errlen, "%s: body contains a NUL byte", what);
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new_ex(32);
	if (!tok) {
		snprintf(err, errlen, "%s: out of memory", what);
		return NULL;
	}
	json_object *root = json_tokener_parse_ex(tok, body, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (!root || jerr != json_tokener_success) {
		snprintf(err, errlen, "%s: invalid JSON: %s", what,
			 jerr == json_tokener_continue ? "unexpected end of document" : json_tokener_error_desc(jerr));
		json_object_put(root);
		root = NULL;
	} else {
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
			if (!isspace((unsigned char)body[i])) {
				snprintf(err, errlen, "%s: trailing data after the JSON document", what);
				json_object_put(root);
				root = NULL;
				break;
			}
		}
	}
	if (root && !json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "%s: expected a JSON object, got %s", what, json_type_to_name(json_object_get_type(root)));
		json_object_put(root);
		root = NULL;
	}
	json_tokener_free(tok);
	return root;
}

int api_job_parse(const char *body, size_t len, struct api_job *ret, char *err, size_t errlen)
{
	int r = -EINVAL;

	memset(ret, 0, sizeof(*ret));
	json_object *root = api_json_root(body, len, API_BODY_MAX, "EmbedJob", err, errlen);
	if (!root)
		return -EINVAL;
	if (take_string(root, "job_id", true, &ret->job_id, err, errlen) < 0 ||
	    take_string(root, "status", true, &ret->status_raw, err, errlen) < 0 ||
	    take_string(root, "created_at", true, &ret->created_at, err, errlen) < 0 ||
	    take_string(root, "input_dataset_id", true, &ret->input_dataset_id, err, errlen) < 0 ||
	    take_string(root, "model", true, &ret->model, err, errlen) < 0 ||
	    take_string(root, "truncate", true, &ret->truncate, err, errlen) < 0 ||
	    take_string(root, "name", false, &ret->name, err, errlen) < 0 ||
	    take_string(root, "output_dataset_id", false, &ret->output_dataset_id, err, errlen) < 0)
		goto out;
	if (!api_rfc3339_valid(ret->created_at)) {
		snprintf(err, errlen, "EmbedJob: created_at \"%.40s\" is not an RFC 3339 date-time", ret->created_at);
		goto out;
	}
	ret->status = job_status_parse(ret->status_raw);

	json_object *meta, *warnings;
	if (json_object_object_get_ex(root, "meta", &meta) && meta) {
		if (!json_object_is_type(meta, json_type_object)) {
			snprintf(err, errlen, "EmbedJob: field \"meta\" must be an object");
			goto out;
		}
		if (json_object_object_get_ex(meta, "warnings", &warnings) && warnings &&
		    json_object_is_type(warnings, json_type_array)) {
			size_t n = json_object_array_length(warnings);
			ret->warnings = xcalloc(n, sizeof(char *));
			for (size_t i = 0; i < n; i++) {
				json_object *w = json_object_array_get_idx(warnings, i);
				if (json_object_is_type(w, json_type_string))
					ret->warnings[ret->n_warnings++] = xstrdup(json_object_get_string(w));
			}
		}
	}
	r = 0;
out:
	if (r < 0)
		api_job_clear(ret);
	json_object_put(root);
	return r;
}

void api_job_clear(struct api_job *j)
{
	if (!j)
		return;
	free(j->job_id);
	free(j->name);
	free(j->status_raw);
	free(j->created_at);
	free(j->input_dataset_id);
	free(j->output_dataset_id);
	free(j->model);
	free(j->truncate);
	for (size_t i = 0; i < j->n_warnings; i++)
		free(j->warnings[i]);
	free(j->warnings);
	memset(j, 0, sizeof(*j));
}

enum api_class api_classify(long s)
{
	switch (s) {
	case 200:
		return API_OK;
	case 400:
	case 422:
		return API_REJECTED;
	case 401:
	case 403:
		return API_AUTH;
	case 404:
		return API_NOT_FOUND;
	case 429:
	case 503:
		return API_THROTTLED;
	case 501:
		return API_BAD_BASE;
	default:
		/* 498, 499, 500, 502, 504, no answer, redirects (never followed), anything else. */
		return API_TRANSIENT;
	}
}

const char *api_class_name(enum api_class c)
{
	static const char *const names[] = {
		[API_OK] = "ok", [API_REJECTED] = "rejected", [API_AUTH] = "auth",
		[API_NOT_FOUND] = "not_found", [API_THROTTLED] = "throttled",
		[API_TRANSIENT] = "transient", [API_BAD_BASE] = "bad_base",
	};
	return (unsigned)c < ARRAY_SIZE(names) ? names[c] : "invalid";
}

int api_retry_after(const char *value, int64_t now_s, int64_t cap_s, int64_t *ret_s)
{
	const char *p = value;
	struct tm tm;
	int64_t s;

	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p)) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end != '\0')
			return -EINVAL;
		s = (errno == ERANGE || v > (unsigned long long)cap_s) ? cap_s : (int64_t)v;
	} else {
		/* IMF-fixdate, then the two obsolete forms RFC 9110 says to accept. */
		static const char *const fmts[] = {
			"%a, %d %b %Y %H:%M:%S GMT",
			"%A, %d-%b-%y %H:%M:%S GMT",
			"%a %b %e %H:%M:%S %Y",
		};
		const char *end = NULL;
		for (size_t i = 0; i < ARRAY_SIZE(fmts) && !end; i++) {
			memset(&tm, 0, sizeof(tm));
			end = strptime(p, fmts[i], &tm);
			if (end) {
				while (*end == ' ' || *end == '\t')
					end++;
				if (*end != '\0')
					end = NULL;
			}
		}
		if (!end)
			return -EINVAL;
		s = (int64_t)timegm(&tm) - now_s;
	}
	if (s < 0)
		s = 0;
	if (s > cap_s)
		s = cap_s;
	*ret_s = s;
	return 0;
}
