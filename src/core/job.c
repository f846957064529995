#include "job.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[JOB__MAX] = {
	[JOB_NONE] = "new",
	[JOB_PROCESSING] = "processing",
	[JOB_CANCELLING] = "cancelling",
	[JOB_COMPLETE] = "complete",
	[JOB_CANCELLED] = "cancelled",
	[JOB_FAILED] = "failed",
	[JOB_UNKNOWN] = "unknown",
	[JOB_NOT_FOUND] = "not_found",
	[JOB_ERROR] = "error",
	[JOB_EXPIRED] = "expired",
};

static const char *const event_names[EV__MAX] = {
	[EV_NONE] = "none",
	[EV_COMPLETE] = "embed_job.complete",
	[EV_FAILED] = "embed_job.failed",
	[EV_CANCELLED] = "embed_job.cancelled",
	[EV_CANCELLING] = "embed_job.cancelling",
	[EV_EXPIRED] = "embed_job.expired",
	[EV_NOT_FOUND] = "embed_job.not_found",
	[EV_ERROR] = "embed_job.error",
	[EV_BATCH_DONE] = "batch.done",
	[EV_HOOK_DISABLED] = "hook.disabled",
	[EV_HOOK_ENABLED] = "hook.enabled",
	[EV_BJ_COMPLETE] = "batch_job.complete",
	[EV_BJ_FAILED] = "batch_job.failed",
	[EV_BJ_CANCELLED] = "batch_job.cancelled",
	[EV_BJ_CANCELLING] = "batch_job.cancelling",
	[EV_BJ_EXPIRED] = "batch_job.expired",
	[EV_BJ_NOT_FOUND] = "batch_job.not_found",
	[EV_BJ_ERROR] = "batch_job.error",
	[EV_BJ_PROGRESS] = "batch_job.progress",
	[EV_STALLED] = "embed_job.stalled",
	[EV_BJ_STALLED] = "batch_job.stalled",
	[EV_BJ_EXPIRING] = "batch_job.expiring",
};

static const char *const kind_names[JOB_KIND__MAX] = {
	[JOB_KIND_EMBED] = "embed-job",
	[JOB_KIND_BATCH] = "batch-job",
};

const char *job_kind_name(enum job_kind k)
{
	return (unsigned)k < JOB_KIND__MAX ? kind_names[k] : "invalid";
}

int job_kind_parse(const char *s)
{
	for (int i = 0; i < JOB_KIND__MAX; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

/* EV_COMPLETE .. EV_ERROR and EV_BJ_COMPLETE .. EV_BJ_ERROR are in the same order. */
enum ew_event job_event_of_kind(enum ew_event e, enum job_kind k)
{
	if (k == JOB_KIND_BATCH && e >= EV_COMPLETE && e <= EV_ERROR)
		return (enum ew_event)(EV_BJ_COMPLETE + (e - EV_COMPLETE));
	if (k == JOB_KIND_BATCH && e == EV_STALLED)
		return EV_BJ_STALLED;
	return e;
}

enum ew_event job_event_base(enum ew_event e)
{
	if (e >= EV_BJ_COMPLETE && e <= EV_BJ_ERROR)
		return (enum ew_event)(EV_COMPLETE + (e - EV_BJ_COMPLETE));
	if (e == EV_BJ_STALLED)
		return EV_STALLED;
	return e;
}

int job_event_kind(enum ew_event e)
{
	if ((e >= EV_COMPLETE && e <= EV_ERROR) || e == EV_STALLED)
		return JOB_KIND_EMBED;
	if ((e >= EV_BJ_COMPLETE && e <= EV_BJ_PROGRESS) || e == EV_BJ_STALLED || e == EV_BJ_EXPIRING)
		return JOB_KIND_BATCH;
	return -1;
}

bool job_event_is_hook(enum ew_event e)
{
	return e == EV_HOOK_DISABLED || e == EV_HOOK_ENABLED;
}

const char *job_status_name(enum job_status s)
{
	return (unsigned)s < JOB__MAX ? status_names[s] : "invalid";
}

enum job_status job_status_parse(const char *s)
{
	/* Only the five values of the contract; the daemon's own states never come from the API. */
	for (int i = JOB_PROCESSING; i <= JOB_FAILED; i++)
		if (strcmp(s, status_names[i]) == 0)
			return (enum job_status)i;
	return JOB_UNKNOWN;
}

int job_status_from_name(const char *s)
{
	for (int i = 0; i < JOB__MAX; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return -1;
}

bool job_status_ended(enum job_status s)
{
	switch (s) {
	case JOB_COMPLETE:
	case JOB_CANCELLED:
	case JOB_FAILED:
	case JOB_NOT_FOUND:
	case JOB_ERROR:
	case JOB_EXPIRED:
		return true;
	default:
		return false;
	}
}

const char *job_event_name(enum ew_event e)
{
	return (unsigned)e < EV__MAX ? event_names[e] : "invalid";
}

enum ew_event job_event_parse(const char *s)
{
	for (int i = EV_NONE + 1; i < EV__MAX; i++)
		if (strcmp(s, event_names[i]) == 0)
			return (enum ew_event)i;
	return EV_NONE;
}

enum ew_event job_transition(enum job_status old, enum job_status seen, bool *ret_changed)
{
	*ret_changed = old != seen;
	/* An ended job never changes again: a later answer cannot re-fire or revive it. */
	if (job_status_ended(old)) {
		*ret_changed = false;
		return EV_NONE;
	}
	if (old == seen)
		return EV_NONE;
	switch (seen) {
	case JOB_COMPLETE:
		return EV_COMPLETE;
	case JOB_FAILED:
		return EV_FAILED;
	case JOB_CANCELLED:
		return EV_CANCELLED;
	case JOB_CANCELLING:
		return EV_CANCELLING;
	default:
		/* processing, unknown: a change, but nothing a hook waits for. */
		return EV_NONE;
	}
}

enum job_status job_event_end_status(enum ew_event e)
{
	switch (job_event_base(e)) {
	case EV_COMPLETE:
		return JOB_COMPLETE;
	case EV_FAILED:
		return JOB_FAILED;
	case EV_CANCELLED:
		return JOB_CANCELLED;
	case EV_EXPIRED:
		return JOB_EXPIRED;
	case EV_NOT_FOUND:
		return JOB_NOT_FOUND;
	case EV_ERROR:
		return JOB_ERROR;
	default:
		return JOB_NONE;
	}
}

void job_error_reset(struct job_errstate *st)
{
	st->kind = API_OK;
	st->count = 0;
}

enum ew_event job_error_record(struct job_errstate *st, int kind)
{
	if (st->kind != kind) {
		st->kind = (uint8_t)kind;
		st->count = 0;
	}
	if (st->count < UINT8_MAX)
		st->count++;
	if (st->count < JOB_ERROR_LIMIT)
		return EV_NONE;
	if (kind == API_NOT_FOUND)
		return EV_NOT_FOUND;
	if (kind == API_REJECTED || kind == JOB_RUN_OTHER_JOB)
		return EV_ERROR;
	return EV_NONE;
}

void job_event_id(const char *subject, enum ew_event e, char out[37])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const char *type = job_event_name(e);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, subject, strlen(subject) + 1);
	EVP_DigestUpdate(ctx, type, strlen(type));
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(out, "evt_", 4);
	for (int i = 0; i < 16; i++)
		snprintf(out + 4 + 2 * i, 3, "%02x", md[i]);
}
