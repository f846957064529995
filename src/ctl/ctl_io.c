/* embedwatchctl's plumbing: the connection, one request and its answer, reading answers and ids. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "provider.h"

const char *ctl_sock_path;
bool ctl_json_out;
int ctl_fd = -1;
struct buf ctl_rbuf;

int ctl_timeout_ms = CTL_TIMEOUT_DEFAULT_MS;

void ctl_die_usage(const char *fmt, ...)
{
	va_list ap;
	char msg[1024];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The message may quote an argument: it is printed escaped like everything else. */
	ctl_error("%s\nTry 'embedwatchctl --help'.", ctl_text(msg));
	exit(EXIT_USAGE);
}

void ctl_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "embedwatchctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* Escaped copies handed out by ctl_text: each stays valid until RING more have been made. */
#define RING 32
static struct buf ring[RING];
static unsigned ring_pos;

const char *ctl_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p >= 0x20 && *p < 0x7f)
		p++;
	if (!*p)
		return s;   /* plain ASCII: nothing to escape */
	struct buf *b = &ring[ring_pos++ % RING];
	buf_reset(b);
	util_escape_text(b, s);
	return b->data ? b->data : "";
}

/* Milliseconds left until deadline (monotonic ms); 0 when it has passed. */
static int left_ms(int64_t deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t n = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	return deadline > n ? (int)(deadline - n) : 0;
}

static int64_t deadline_in(int ms)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + ms;
}

void ctl_die_no_answer(void)
{
	ctl_error("the daemon did not answer within %d s (--timeout or EMBEDWATCH_TIMEOUT to wait longer)",
		  (ctl_timeout_ms + 999) / 1000);
	exit(EXIT_NO_ANSWER);
}

int ctl_try_connect(int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl_sock_path);
	/* Non-blocking: a daemon whose listen queue is full makes connect() fail with EAGAIN, not hang. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int64_t deadline = deadline_in(timeout_ms);
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		if (e != EAGAIN || left_ms(deadline) == 0) {
			close(fd);
			return e == EAGAIN ? -ETIMEDOUT : -e;
		}
		poll(NULL, 0, 10);   /* the daemon accepts as its loop turns */
	}
	return fd;
}

void ctl_connect(void)
{
	struct sockaddr_un sa;
	if (strlen(ctl_sock_path) >= sizeof(sa.sun_path)) {
		ctl_error("socket path too long: %s", ctl_text(ctl_sock_path));
		exit(EXIT_USAGE);
	}
	ctl_fd = ctl_try_connect(ctl_timeout_ms);
	if (ctl_fd == -ETIMEDOUT) {
		ctl_error("embedwatchd at %s did not accept the connection within %d s", ctl_text(ctl_sock_path),
			  (ctl_timeout_ms + 999) / 1000);
		exit(EXIT_NO_ANSWER);
	}
	if (ctl_fd < 0) {
		ctl_error("cannot reach embedwatchd at %s: %s", ctl_text(ctl_sock_path), strerror(-ctl_fd));
		exit(EXIT_UNREACHABLE);
	}
}

/* Sends one request and reads one answer line; timeout_ms < 0 waits for ever. NULL on timeout. */
json_object *ctl_request(json_object *req, int timeout_ms)
{
	/* req NULL: only read the answer to a request already sent. */
	const char *s = req ? json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN) : "";
	size_t n = strlen(s), off = 0;
	struct buf out = { 0 };
	int64_t deadline = timeout_ms >= 0 ? deadline_in(timeout_ms) : 0;
	if (req) {
		buf_append(&out, s, n);
		buf_append(&out, "\n", 1);
	}
	while (off < out.len) {
		ssize_t w = write(ctl_fd, out.data + off, out.len - off);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* The daemon reads one request at a time: wait until it takes more. */
			struct pollfd p = { .fd = ctl_fd, .events = POLLOUT };
			if (poll(&p, 1, timeout_ms >= 0 ? left_ms(deadline) : -1) == 0) {
				buf_free(&out);
				return NULL;
			}
			continue;
		}
		if (w < 0) {
			/* SIGPIPE is ignored: a daemon that closed the connection is an EPIPE, said here. */
			ctl_error("lost the connection to embedwatchd: %s", strerror(errno));
			exit(EXIT_UNREACHABLE);
		}
		off += (size_t)w;
	}
	buf_free(&out);
	for (;;) {
		char *nl = ctl_rbuf.data ? memchr(ctl_rbuf.data, '\n', ctl_rbuf.len) : NULL;
		if (nl) {
			*nl = '\0';
			json_object *ans = json_tokener_parse(ctl_rbuf.data);
			size_t used = (size_t)(nl - ctl_rbuf.data) + 1;
			memmove(ctl_rbuf.data, ctl_rbuf.data + used, ctl_rbuf.len - used);
			ctl_rbuf.len -= used;
			if (!ans) {
				ctl_error("embedwatchd sent an answer that is not JSON");
				exit(EXIT_UNREACHABLE);
			}
			/* A standby's answer to a change: written for the active, which applies it (said once, on stderr). */
			static bool told;
			json_object *fw;
			if (!told && json_object_object_get_ex(ans, "forwarded", &fw) && json_object_get_boolean(fw)) {
				ctl_error("this daemon is a standby: the request is written to the shared state and the "
					  "active daemon applies it");
				told = true;
			}
			return ans;
		}
		int wait = timeout_ms >= 0 ? left_ms(deadline) : -1;
		if (wait == 0)
			return NULL;
		struct pollfd p = { .fd = ctl_fd, .events = POLLIN };
		int pr = poll(&p, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			return NULL;
		char tmp[65536];
		ssize_t r = read(ctl_fd, tmp, sizeof(tmp));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			ctl_error("lost the connection to embedwatchd: %s", strerror(errno));
			exit(EXIT_UNREACHABLE);
		}
		if (r == 0) {
			ctl_error("embedwatchd closed the connection");
			exit(EXIT_UNREACHABLE);
		}
		buf_append(&ctl_rbuf, tmp, (size_t)r);
	}
}

json_object *ctl_call(json_object *req)
{
	json_object *ans = ctl_request(req, ctl_timeout_ms);
	if (!ans)
		ctl_die_no_answer();
	return ans;
}

const char *ctl_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return "";
	return ctl_text(json_object_get_string(v));
}

int64_t ctl_num(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* Checks ok; prints the error and exits 3 if not. */
void ctl_check(json_object *ans)
{
	json_object *ok;
	if (json_object_object_get_ex(ans, "ok", &ok) && json_object_get_boolean(ok))
		return;
	ctl_error("%s", ctl_str(ans, "error"));
	json_object_put(ans);
	exit(EXIT_REFUSED);
}

void ctl_json_text(const char *s, FILE *f)
{
	/*
	 * json-c writes C0 controls as \u00XX but DEL, C1 controls and bytes that are not UTF-8 as they
	 * are. Outside strings JSON text is ASCII, so these bytes are in strings: written as escapes, or
	 * U+FFFD for what is not UTF-8, the document stays valid and safe on a terminal.
	 */
	const unsigned char *p = (const unsigned char *)s, *run = p;
	while (*p) {
		if (*p < 0x7f) {
			p++;
			continue;
		}
		fwrite(run, 1, (size_t)(p - run), f);
		size_t n = util_utf8_len((const char *)p);
		if (*p == 0x7f) {
			fputs("\\u007f", f);
			n = 1;
		} else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
			fprintf(f, "\\u%04x", p[1]);
		} else if (n == 0) {
			fputs("\\ufffd", f);
			n = 1;
		} else {
			fwrite(p, 1, n, f);
		}
		p += n;
		run = p;
	}
	fwrite(run, 1, (size_t)(p - run), f);
}

void ctl_print_json(json_object *o)
{
	ctl_json_text(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	putchar('\n');
	ctl_check_output();
}

void ctl_check_output(void)
{
	/* Called right after the write that failed, whose errno this still is (or fflush's). */
	int e = errno;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return;
	if (errno)
		e = errno;
	/* SIGPIPE is ignored: a reader that went away (embedwatchctl list | head) is an EPIPE, said here. */
	ctl_error("cannot write the output: %s", strerror(e ? e : EIO));
	exit(EXIT_OUTPUT);
}

json_object *ctl_ask(json_object *req)
{
	ctl_connect();
	json_object *ans = ctl_call(req);
	json_object_put(req);
	ctl_check(ans);
	if (!ctl_json_out)
		return ans;
	json_object_object_del(ans, "ok");
	ctl_print_json(ans);
	json_object_put(ans);
	return NULL;
}

json_object *ctl_new_req(const char *cmd)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	return o;
}

const char *ctl_account_arg(const char *cmd, const char *name)
{
	/* Checked here, as the daemon's config checks [account NAME]: a typo is a usage error, not a refusal. */
	if (!provider_account_valid(name))
		ctl_die_usage("%s: --account expects an account name of 1 to 32 characters a-z, 0-9, '_' and '-' "
			      "(cohere, or an [account NAME] of the config), got \"%s\"", cmd, name);
	return name;
}

void ctl_add_account(json_object *req, const char *account)
{
	if (account)
		json_object_object_add(req, "account", json_object_new_string(account));
}

/* Ids from argv, or from stdin with "-": separated by any whitespace or commas, lines of any length. */
json_object *ctl_read_ids(int argc, char **argv)
{
	json_object *ids = json_object_new_array();
	if (argc == 1 && strcmp(argv[0], "-") == 0) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		unsigned long lineno = 0;
		while ((n = getline(&line, &cap, stdin)) >= 0) {
			lineno++;
			/* A NUL would silently cut an id short: refuse the input instead. */
			if (memchr(line, '\0', (size_t)n)) {
				ctl_error("stdin line %lu contains a NUL byte; ids are text", lineno);
				exit(EXIT_USAGE);
			}
			char *save = NULL;
			for (char *t = strtok_r(line, " \t\r\n\v\f,", &save); t; t = strtok_r(NULL, " \t\r\n\v\f,", &save))
				json_object_array_add(ids, json_object_new_string(t));
		}
		free(line);
	} else {
		for (int i = 0; i < argc; i++)
			json_object_array_add(ids, json_object_new_string(argv[i]));
	}
	return ids;
}
