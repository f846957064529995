/*
 * The v1 Embed Jobs API: GET /v1/embed-jobs[/{id}], POST /v1/embed-jobs/{id}/cancel.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

enum MHD_Result sim_v1_handle(struct MHD_Connection *c, const char *method, const char *url)
{
	const char *rest = url + strlen("/v1/embed-jobs");
	int64_t now = sim_now();
	struct sim_fault f;
	enum MHD_Result ret;
	char id[API_ID_MAX + 2] = "";
	bool is_cancel = false, is_list = false;
	enum sim_ep ep;
	int status;

	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		is_list = true;
	} else if (rest[0] == '/') {
		const char *p = rest + 1;
		size_t n = strcspn(p, "/");
		if (n > API_ID_MAX) {
			pthread_mutex_lock(&sim_st.mu);
			sim_st.req_other++;
			sim_count_status(404);
			pthread_mutex_unlock(&sim_st.mu);
			return sim_send_text(c, 404, "job not found");
		}
		memcpy(id, p, n);
		id[n] = '\0';
		if (p[n] == '/') {
			if (strcmp(p + n, "/cancel") != 0) {
				pthread_mutex_lock(&sim_st.mu);
				sim_count_status(404);
				pthread_mutex_unlock(&sim_st.mu);
				return sim_send_text(c, 404, "no such endpoint");
			}
			is_cancel = true;
		}
	}
	if ((is_cancel && strcmp(method, "POST") != 0) || (!is_cancel && strcmp(method, "GET") != 0)) {
		pthread_mutex_lock(&sim_st.mu);
		sim_count_status(405);
		pthread_mutex_unlock(&sim_st.mu);
		return sim_send_text(c, 405, "method %s not allowed here", method);
	}

	ep = is_list ? EP_LIST : is_cancel ? EP_CANCEL : EP_POLL;
	pthread_mutex_lock(&sim_st.mu);
	if (is_list)
		sim_st.req_list++;
	else if (is_cancel)
		sim_st.req_cancel++;
	else
		sim_st.req_poll++;
	sim_note_client(c);
	struct sim_job *j = id[0] ? sim_job_lookup(id, now) : NULL;
	if (j) {
		j->requests++;
		/* Not "first_ms == 0": manual time 0 is a real time. */
		if (j->requests == 1)
			j->first_ms = now;
		j->last_ms = now;
	}
	bool faulted = sim_fault_take(is_list ? T_LIST : T_API, id[0] ? id : NULL, now, &f);
	pthread_mutex_unlock(&sim_st.mu);

	if (faulted && f.kind == F_DELAY) {
		sim_fault_apply(c, &f, id, &ret);
		/* A delay fault delays; the answer is the normal one. */
		faulted = false;
	}
	if (faulted && !FAULT_SHAPES_BODY(f.kind)) {
		status = f.kind == F_STATUS ? f.status : (f.kind == F_DROP ? 0 : 200);
		pthread_mutex_lock(&sim_st.mu);
		sim_count_status(status);
		sim_log_request(now, status, id, ep);
		pthread_mutex_unlock(&sim_st.mu);
		sim_fault_apply(c, &f, id, &ret);
		return ret;
	}

	int auth = sim_check_auth(c);
	if (auth) {
		pthread_mutex_lock(&sim_st.mu);
		sim_count_status(auth);
		sim_log_request(now, auth, id, ep);
		pthread_mutex_unlock(&sim_st.mu);
		return sim_send_text(c, auth, auth == 401 ? "no api key" : "invalid api token");
	}

	struct buf b = { 0 };
	char warning[256] = "";
	struct sim_answer ans = { .kind = is_list ? K_LIST : is_cancel ? K_CANCEL : K_POLL, .made_ms = now, .warning = warning };
	pthread_mutex_lock(&sim_st.mu);
	if (is_list) {
		buf_printf(&b, "{\"embed_jobs\":[");
		for (size_t i = 0; i < sim_st.n_jobs; i++) {
			if (i)
				buf_append(&b, ",", 1);
			sim_job_render(&b, sim_st.job_list[i], now);
		}
		/* The key's history: jobs that ended long ago, as a real account's list has thousands. */
		if (sim_st.history_json.len)
			buf_append(&b, sim_st.history_json.data + (sim_st.n_jobs ? 0 : 1), sim_st.history_json.len - (sim_st.n_jobs ? 0 : 1));
		buf_printf(&b, "]}");
		status = 200;
		ans.changed_ms = sim_list_changed_at(now);
	} else if (!j) {
		status = 404;
	} else if (is_cancel) {
		if (job_status_ended(sim_job_status_at(j, now))) {
			status = 400;
		} else {
			if (!j->cancel_requested) {
				j->cancel_requested = true;
				j->cancel_ms = now;
			}
			buf_printf(&b, "{}");
			status = 200;
		}
	} else {
		sim_job_render(&b, j, now);
		status = 200;
		ans.changed_ms = sim_job_changed_at(j, now);
		if (j->api_warning)
			snprintf(warning, sizeof(warning), "%s", j->api_warning);
	}
	if (!(faulted && FAULT_SHAPES_BODY(f.kind)))
		status = sim_answer_check(c, status, &b, &ans);
	if (faulted && f.kind == F_TRICKLE && status == 200) {
		/* Sent as it is, uncompressed: counted here, as sim_answer_send would. */
		sim_st.bytes_sent[ans.kind] += b.len;
		sim_st.bytes_identity[ans.kind] += b.len;
	}
	sim_count_status(status);
	sim_log_request(now, status, id, ep);
	pthread_mutex_unlock(&sim_st.mu);

	if (status == 404) {
		buf_free(&b);
		return sim_send_text(c, 404, "embed job %s not found", id);
	}
	if (status == 400) {
		buf_free(&b);
		return sim_send_text(c, 400, "embed job %s has already ended", id);
	}
	if (faulted && f.kind == F_TRUNCATED)
		return sim_answer_truncated(c, &b);
	if (faulted && f.kind == F_TRICKLE)
		return sim_answer_trickle(c, status, &b, f.bytes_per_s);
	return sim_answer_send(c, status, &b, &ans);
}
