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

const char *ctl_sock_path;
bool ctl_json_out;
int ctl_fd = -1;
struct buf ctl_rbuf;

void ctl_die_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "embedwatchctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'embedwatchctl --help'.\n");
	exit(EXIT_USAGE);
}

void ctl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(ctl_sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "embedwatchctl: socket path too long: %s\n", ctl_sock_path);
		exit(EXIT_USAGE);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl_sock_path);
	ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl_fd < 0 || connect(ctl_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "embedwatchctl: cannot reach embedwatchd at %s: %s\n", ctl_sock_path, strerror(errno));
		exit(EXIT_UNREACHABLE);
	}
}

/* Sends one request and reads one answer line; timeout_ms < 0 waits for ever. 0 on timeout. */
json_object *ctl_request(json_object *req, int timeout_ms)
{
	/* req NULL: only read the answer to a request already sent. */
	const char *s = req ? json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN) : "";
	size_t n = strlen(s), off = 0;
	struct buf out = { 0 };
	if (req) {
		buf_append(&out, s, n);
		buf_append(&out, "\n", 1);
	}
	while (off < out.len) {
		ssize_t w = write(ctl_fd, out.data + off, out.len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "embedwatchctl: lost the connection to embedwatchd: %s\n", strerror(errno));
			exit(EXIT_UNREACHABLE);
		}
		off += (size_t)w;
	}
	buf_free(&out);
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		char *nl = ctl_rbuf.data ? memchr(ctl_rbuf.data, '\n', ctl_rbuf.len) : NULL;
		if (nl) {
			*nl = '\0';
			json_object *ans = json_tokener_parse(ctl_rbuf.data);
			size_t used = (size_t)(nl - ctl_rbuf.data) + 1;
			memmove(ctl_rbuf.data, ctl_rbuf.data + used, ctl_rbuf.len - used);
			ctl_rbuf.len -= used;
			if (!ans) {
				fprintf(stderr, "embedwatchctl: embedwatchd sent an answer that is not JSON\n");
				exit(EXIT_UNREACHABLE);
			}
			/* A standby's answer to a change: written for the active, which applies it (said once, on stderr). */
			static bool told;
			json_object *fw;
			if (!told && json_object_object_get_ex(ans, "forwarded", &fw) && json_object_get_boolean(fw)) {
				fprintf(stderr, "embedwatchctl: this daemon is a standby: the request is written to the shared "
					"state and the active daemon applies it\n");
				told = true;
			}
			return ans;
		}
		int wait = -1;
		if (timeout_ms >= 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
			if (el >= timeout_ms)
				return NULL;
			wait = (int)(timeout_ms - el);
		}
		struct pollfd p = { .fd = ctl_fd, .events = POLLIN };
		int pr = poll(&p, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			return NULL;
		char tmp[65536];
		ssize_t r = read(ctl_fd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "embedwatchctl: embedwatchd closed the connection\n");
			exit(EXIT_UNREACHABLE);
		}
		buf_append(&ctl_rbuf, tmp, (size_t)r);
	}
}

const char *ctl_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return "";
	return json_object_get_string(v);
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
	fprintf(stderr, "embedwatchctl: %s\n", ctl_str(ans, "error"));
	json_object_put(ans);
	exit(EXIT_REFUSED);
}

void ctl_print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

json_object *ctl_ask(json_object *req)
{
	ctl_connect();
	json_object *ans = ctl_request(req, -1);
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
				fprintf(stderr, "embedwatchctl: stdin line %lu contains a NUL byte; ids are text\n", lineno);
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
