/*
 * The job model: scripted and automatic timelines, a job's status at a time,
 * and its EmbedJob document. Calls only the clock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

char *sim_json_str(const char *s)
{
	json_object *o = json_object_new_string(s);
	char *r = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return r;
}

void sim_job_index(struct sim_job *j)
{
	strmap_put(&sim_st.jobs, j->id, j);
	if (sim_st.n_jobs == sim_st.cap_jobs) {
		sim_st.cap_jobs = sim_st.cap_jobs ? sim_st.cap_jobs * 2 : 256;
		sim_st.job_list = xrealloc(sim_st.job_list, sim_st.cap_jobs * sizeof(*sim_st.job_list));
	}
	sim_st.job_list[sim_st.n_jobs++] = j;
}

void sim_job_free(struct sim_job *j)
{
	if (!j)
		return;
	free(j->id);
	free(j->name_json);
	free(j->model_json);
	free(j->input_json);
	free(j->truncate_json);
	free(j->warnings_json);
	free(j->api_warning);
	free(j->answer_as);
	free(j);
}

/* FNV-1a: stable across runs, unlike the keyed hash of the maps. */
static uint32_t stable_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Auto mode: the timeline is a function of the id alone (its stable hash). */
static struct sim_job *auto_job(const char *id, int64_t now)
{
	uint32_t h = stable_hash(id);
	uint64_t span = sim_st.auto_max_ms > sim_st.auto_min_ms ? sim_st.auto_max_ms - sim_st.auto_min_ms : 0;
	uint64_t d = sim_st.auto_min_ms + (span ? (h % (span + 1)) : 0);
	unsigned pick = (h >> 16) % 100;
	struct sim_job *j = xcalloc(1, sizeof(*j));
	char name[160];

	j->id = xstrdup(id);
	snprintf(name, sizeof(name), "auto %s", id);
	j->name_json = sim_json_str(name);
	j->model_json = sim_json_str("embed-english-v3.0");
	j->input_json = sim_json_str("ds-auto-input");
	j->truncate_json = sim_json_str("END");
	j->created_ms = now;
	j->automatic = true;
	j->steps[0] = (struct sim_step){ JOB_PROCESSING, 0 };
	if (pick < 80) {
		j->steps[1] = (struct sim_step){ JOB_COMPLETE, d };
		j->n_steps = 2;
	} else if (pick < 90) {
		j->steps[1] = (struct sim_step){ JOB_FAILED, d };
		j->n_steps = 2;
	} else {
		j->steps[1] = (struct sim_step){ JOB_CANCELLING, d > 1000 ? d - 1000 : 0 };
		j->steps[2] = (struct sim_step){ JOB_CANCELLED, d };
		j->n_steps = 3;
	}
	return j;
}

enum job_status sim_job_status_at(const struct sim_job *j, int64_t now)
{
	int64_t el = now - j->created_ms;
	enum job_status st = JOB_PROCESSING;
	for (int i = 0; i < j->n_steps; i++)
		if (el >= (int64_t)j->steps[i].at_ms)
			st = j->steps[i].status;
	if (j->cancel_requested && !job_status_ended(st)) {
		st = now - j->cancel_ms >= (int64_t)sim_st.cancel_delay_ms ? JOB_CANCELLED : JOB_CANCELLING;
	}
	return st;
}

/* The EmbedJob document, as the contract specifies it. */
void sim_job_render(struct buf *b, const struct sim_job *j, int64_t now)
{
	char created[40];
	enum job_status st = sim_job_status_at(j, now);

	util_rfc3339(sim_wall_ms(j->created_ms), created, sizeof(created));
	buf_printf(b, "{\"job_id\":\"%s\",\"name\":%s,\"status\":\"%s\",\"created_at\":\"%s\","
		   "\"input_dataset_id\":%s,", j->answer_as ? j->answer_as : j->id, j->name_json, job_status_name(st),
		   created, j->input_json);
	if (st == JOB_COMPLETE)
		buf_printf(b, "\"output_dataset_id\":\"ds-out-%s\",", j->id);
	uint32_t units = stable_hash(j->id);
	buf_printf(b, "\"model\":%s,\"truncate\":%s,\"meta\":{\"api_version\":{\"version\":\"1\"},"
		   "\"billed_units\":{\"input_tokens\":%u}%s%s", j->model_json, j->truncate_json,
		   (unsigned)(units % 100000), j->warnings_json ? ",\"warnings\":" : "",
		   j->warnings_json ? j->warnings_json : "");
	if (j->warning_flood && !j->warnings_json) {
		/* A warning never seen before, with a line break in it: the daemon must bound and escape it. */
		buf_printf(b, ",\"warnings\":[\"flood %llu\\nforged line ", (unsigned long long)j->requests);
		for (uint32_t i = 0; i < j->warning_flood; i++)
			buf_append(b, "w", 1);
		buf_append(b, "\"]", 2);
	}
	buf_append(b, "}}", 2);
}

struct sim_job *sim_job_lookup(const char *id, int64_t now)
{
	struct sim_job *j = strmap_get(&sim_st.jobs, id);
	if (!j && sim_st.auto_prefix && strncmp(id, sim_st.auto_prefix, strlen(sim_st.auto_prefix)) == 0 && api_id_valid(id)) {
		j = auto_job(id, now);
		sim_job_index(j);
	}
	return j;
}
