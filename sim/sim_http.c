/*
 * The HTTP helpers every endpoint uses: answering (a buffer, JSON, a
 * message), the HTTP date, auth, the client-name count and the request log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

void sim_http_date(int64_t wall_s, char *buf, size_t len)
{
	time_t t = (time_t)wall_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

enum MHD_Result sim_send_buf(struct MHD_Connection *c, int status, const char *ctype,
				char *data, size_t len, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	if (ctype)
		MHD_add_response_header(r, "Content-Type", ctype);
	if (retry_after && *retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result sim_send_json(struct MHD_Connection *c, int status, struct buf *b)
{
	char *d = b->data ? b->data : xstrdup("");
	size_t n = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return sim_send_buf(c, status, "application/json", d, n, NULL);
}

enum MHD_Result sim_send_text(struct MHD_Connection *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string(msg));
	char *d = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return sim_send_buf(c, status, "application/json", d, strlen(d), NULL);
}

void sim_count_status(int status)
{
	if (status >= 0 && status < 600)
		sim_st.status_count[status]++;
}

const char *const sim_ep_names[EP__MAX] = {
	"poll", "list", "cancel", "v2_poll", "v2_list", "v2_cancel", "dataset",
	/* EP_PROV_FIRST: get, list, cancel of each provider, in enum sim_prov's order */
	"openai_get", "openai_list", "openai_cancel", "anthropic_get", "anthropic_list", "anthropic_cancel",
	"gemini_get", "gemini_list", "gemini_cancel", "mistral_get", "mistral_list", "mistral_cancel",
};

void sim_log_request(int64_t now, int status, const char *id, enum sim_ep ep)
{
	if (!sim_st.log_requests)
		return;
	if (sim_st.n_log == sim_st.cap_log) {
		if (sim_st.cap_log >= 4000000)
			return;
		sim_st.cap_log = sim_st.cap_log ? sim_st.cap_log * 2 : 4096;
		sim_st.log = xrealloc(sim_st.log, sim_st.cap_log * sizeof(*sim_st.log));
	}
	struct sim_log_rec *l = &sim_st.log[sim_st.n_log++];
	l->t_ms = now;
	l->status = status;
	l->ep = ep;
	snprintf(l->id, sizeof(l->id), "%s", id ? id : "");
}

int sim_check_auth(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!a || strncmp(a, "Bearer ", 7) != 0)
		return 401;
	if (strcmp(a + 7, sim_st.token) != 0)
		return 403;
	return 0;
}

void sim_note_client(struct MHD_Connection *c)
{
	const char *n = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Client-Name");
	if (!n)
		n = "";
	struct sim_client_name *cn = strmap_get(&sim_st.client_names, n);
	if (!cn) {
		if (sim_st.client_names.len >= 64)
			return;
		cn = xcalloc(1, sizeof(*cn));
		cn->name = xstrdup(n);
		strmap_put(&sim_st.client_names, cn->name, cn);
	}
	cn->count++;
}

void sim_add_each(json_object *doc, const char *key, const char *(*add)(void *arg, json_object *spec), void *arg,
		  struct buf *b, const char **err, int *status)
{
	json_object *list;
	size_t n = 0;
	if (json_object_object_get_ex(doc, key, &list) && json_object_is_type(list, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(list) && !*err; i++, n++)
			*err = add(arg, json_object_array_get_idx(list, i));
	} else {
		*err = add(arg, doc);
		n = 1;
	}
	if (*err)
		*status = 400;
	else
		buf_printf(b, "{\"ok\":true,\"created\":%zu}", n);
}

const char *sim_batch_spec_id(json_object *spec, const char **err)
{
	json_object *v;
	if (!json_object_is_type(spec, json_type_object)) {
		*err = "a batch is a JSON object";
		return NULL;
	}
	if (!json_object_object_get_ex(spec, "id", &v) || !json_object_is_type(v, json_type_string) ||
	    !api_id_valid(json_object_get_string(v))) {
		*err = "a batch needs \"id\": 1 to 128 characters of A-Z a-z 0-9 _ -";
		return NULL;
	}
	return json_object_get_string(v);
}
