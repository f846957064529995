/* Leveled logging: journald with structured fields when stderr is the journal, else stderr. */
#ifndef EW_LOG_H
#define EW_LOG_H

#include <syslog.h>

/* Structured context of a log line; any field may be NULL. */
struct log_ctx {
	const char *job_id;
	const char *event_id;
	const char *event;
	const char *hook;
};

/* Detects the journal (JOURNAL_STREAM) and sets the level (a syslog priority). */
void log_init(int level);
void log_set_level(int level);

void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_ctx(int prio, const struct log_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define log_job(prio, jid, ...) log_ctx((prio), &(struct log_ctx){ .job_id = (jid) }, __VA_ARGS__)

/* Start-up failures only: logs and exits 1. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * For libuv calls that fail only when an invariant is broken (starting a timer
 * that is initialised and not closing): a failure is logged with the call and
 * the process aborts, rather than running on with a handle that does nothing.
 */
#define UV_CHECK(call) log_uv_check((call), #call, __FILE__, __LINE__)
void log_uv_check(int r, const char *call, const char *file, int line);

#endif
