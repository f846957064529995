#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

static int log_level = LOG_INFO;
static bool to_journal;
static bool to_tty;

void log_init(int level)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;

	log_level = level;
	to_tty = isatty(STDERR_FILENO);
	if (js && fstat(STDERR_FILENO, &st) == 0) {
		unsigned long long dev, ino;
		if (sscanf(js, "%llu:%llu", &dev, &ino) == 2 && dev == (unsigned long long)st.st_dev &&
		    ino == (unsigned long long)st.st_ino)
			to_journal = true;
	}
}

void log_set_level(int level)
{
	log_level = level;
}

static const char *prio_name(int prio)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug" };
	return prio >= 0 && prio <= 7 ? names[prio] : "info";
}

/*
 * Copies src into dst with control characters (C0, DEL, C1) and bytes that
 * are not UTF-8 written as \xNN (util_escape_text's rule): text from outside
 * (an API warning, a hook's output, an id, a name) cannot start a new log
 * line or a journal field, nor send escape sequences to a terminal.
 */
static void escape(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (const unsigned char *s = (const unsigned char *)src; *s;) {
		size_t n = util_utf8_len((const char *)s);
		bool control = n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7f)) || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0);
		if (n == 0)
			n = 1;
		if (o + 4 * n + 1 > cap)
			break;
		for (size_t i = 0; i < n; i++, s++) {
			if (control) {
				dst[o++] = '\\';
				dst[o++] = 'x';
				dst[o++] = hex[*s >> 4];
				dst[o++] = hex[*s & 15];
			} else {
				dst[o++] = (char)*s;
			}
		}
	}
	dst[o] = '\0';
}

static void emit(int prio, const struct log_ctx *c, const char *fmt, va_list ap)
{
	char raw[2048], msg[2048];

	if (prio > log_level)
		return;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	escape(msg, sizeof(msg), raw);
	if (to_journal) {
		/* Only the fields this line has: MESSAGE, PRIORITY and any of the context. */
		char f[6][2100];
		struct iovec iov[6];
		int n = 0;
		snprintf(f[n++], sizeof(f[0]), "MESSAGE=%s", msg);
		snprintf(f[n++], sizeof(f[0]), "PRIORITY=%d", prio);
		if (c && c->job_id)
			snprintf(f[n++], sizeof(f[0]), "JOB_ID=%s", c->job_id);
		if (c && c->event_id)
			snprintf(f[n++], sizeof(f[0]), "EVENT_ID=%s", c->event_id);
		if (c && c->event)
			snprintf(f[n++], sizeof(f[0]), "EVENT=%s", c->event);
		if (c && c->hook)
			snprintf(f[n++], sizeof(f[0]), "HOOK=%s", c->hook);
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = f[i];
			iov[i].iov_len = strlen(f[i]);
		}
		sd_journal_sendv(iov, n);
		return;
	}
	char ctx[512] = "";
	if (c) {
		size_t n = 0;
		if (c->job_id)
			n += (size_t)snprintf(ctx + n, sizeof(ctx) - n, " job=%s", c->job_id);
		if (c->event && n < sizeof(ctx))
			n += (size_t)snprintf(ctx + n, sizeof(ctx) - n, " event=%s", c->event);
		if (c->event_id && n < sizeof(ctx))
			n += (size_t)snprintf(ctx + n, sizeof(ctx) - n, " event_id=%s", c->event_id);
		if (c->hook && n < sizeof(ctx))
			snprintf(ctx + n, sizeof(ctx) - n, " hook=%s", c->hook);
	}
	if (to_tty)
		fprintf(stderr, "embedwatchd: %s: %s%s%s\n", prio_name(prio), msg, ctx[0] ? " --" : "", ctx);
	else
		fprintf(stderr, "<%d>%s%s%s\n", prio, msg, ctx[0] ? " --" : "", ctx);
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(prio, NULL, fmt, ap);
	va_end(ap);
}

void log_ctx(int prio, const struct log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(prio, ctx, fmt, ap);
	va_end(ap);
}

void log_uv_check(int r, const char *call, const char *file, int line)
{
	if (r >= 0)
		return;
	log_msg(LOG_CRIT, "%s:%d: %s failed: %s", file, line, call, uv_strerror(r));
	abort();
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(LOG_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
