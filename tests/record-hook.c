/*
 * The tests' recording exec hook: records one line per delivery and the payload, then exits 0.
 * Usage: record-hook DIR. Writes DIR/payloads/EVENT_ID.HOOK.ATTEMPT (the standard input),
 * appends "EVENT_ID EVENT JOB STATUS BATCH ATTEMPT" to DIR/events (one write, O_APPEND, so
 * hooks running at once never interleave a line), and replaces DIR/env.last with the
 * environment it got. Its exit status is the number in DIR/exit when that file exists.
 * One process per delivery: a test of 1,000 jobs runs it 1,000 times (a shell script with
 * cat, env and mv was four processes, most of a test's CPU).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static const char *need(const char *name)
{
	const char *v = getenv(name);

	if (!v) {
		fprintf(stderr, "record-hook: %s is not set\n", name);
		exit(2);
	}
	return v;
}

static const char *or_dash(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : "-";
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "record-hook: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	char path[4096], tmp[4096], line[8192], buf[65536];
	const char *dir, *id, *hook, *attempt;
	int fd, n;
	ssize_t r;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: record-hook DIR\n");
		return 2;
	}
	dir = argv[1];
	id = need("EMBEDWATCH_EVENT_ID");
	hook = need("EMBEDWATCH_HOOK");
	attempt = need("EMBEDWATCH_ATTEMPT");

	snprintf(path, sizeof(path), "%s/payloads", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("cannot create", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("cannot create", path);
	snprintf(path, sizeof(path), "%s/payloads/%s.%s.%s", dir, id, hook, attempt);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("cannot write", path);
	while ((r = read(0, buf, sizeof(buf))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("cannot read the payload for", path);
		}
		if (write_all(fd, buf, (size_t)r) < 0)
			die("cannot write", path);
	}
	close(fd);

	n = snprintf(line, sizeof(line), "%s %s %s %s %s %s\n", id, need("EMBEDWATCH_EVENT"),
		     or_dash("EMBEDWATCH_JOB_ID"), need("EMBEDWATCH_STATUS"), or_dash("EMBEDWATCH_BATCH"),
		     attempt);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		fprintf(stderr, "record-hook: the event line is too long\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/events", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, line, (size_t)n) < 0)
		die("cannot append to", path);
	close(fd);

	snprintf(tmp, sizeof(tmp), "%s/env.%ld", dir, (long)getpid());
	snprintf(path, sizeof(path), "%s/env.last", dir);
	f = fopen(tmp, "we");
	if (!f)
		die("cannot write", tmp);
	for (char **e = environ; *e; e++)
		fprintf(f, "%s\n", *e);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		die("cannot write", path);

	snprintf(path, sizeof(path), "%s/exit", dir);
	f = fopen(path, "re");
	if (f) {
		int code = 0;

		if (fscanf(f, "%d", &code) != 1)
			code = 2;
		fclose(f);
		return code;
	}
	return 0;
}
