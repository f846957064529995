/*
 * ctl-torture: drives the control socket as no polite client would.
 *
 *   ctl-torture torture SOCKET [SEED]
 *       every request of the protocol cut at every byte (two writes), sent
 *       twice in one write, interleaved between two clients, with random junk
 *       lines between; every line must get exactly one JSON answer with a
 *       boolean "ok", and the daemon must answer "status" at the end.
 *   ctl-torture idle SOCKET N RELEASE-FILE
 *       opens N connections that send nothing, holds them until RELEASE-FILE
 *       exists (the test says when it has checked what it needed), then prints
 *       "open=A closed=B": how many the daemon had closed by then.
 *
 * Exits 0 when every expectation held, 1 otherwise (with a message).
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path;
static unsigned long answers, failures;

static const char *const requests[] = {
	"{\"cmd\":\"status\"}",
	"{\"cmd\":\"list\",\"status\":\"processing\"}",
	"{\"cmd\":\"watch\",\"ids\":[\"torture-1\",\"torture-2\"],\"batch\":\"t\"}",
	"{\"cmd\":\"show\",\"id\":\"torture-1\"}",
	"{\"cmd\":\"batches\"}",
	"{\"cmd\":\"metrics\"}",
	"{\"cmd\":\"deliveries\",\"state\":\"dead\"}",
	"{\"cmd\":\"wait\",\"ids\":[\"never-watched\"]}",
	"{\"cmd\":\"redeliver\",\"event_id\":\"evt_00000000000000000000000000000000\"}",
	"{\"cmd\":\"unwatch\",\"ids\":[\"torture-2\",\"not-watched\"]}",
	"{\"cmd\":\"watch\",\"ids\":[\"bad id\",\"torture-\\u0000x\"]}",
	"{\"cmd\":\"frobnicate\"}",
	"[\"not\",\"an\",\"object\"]",
	"{\"cmd\":",
};
#define N_REQ (sizeof(requests) / sizeof(requests[0]))

static int dial(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "ctl-torture: connect %s: %s\n", sock_path, strerror(errno));
		exit(1);
	}
	return fd;
}

static void put(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "ctl-torture: write: %s\n", strerror(errno));
			exit(1);
		}
		s += w;
		n -= (size_t)w;
	}
}

/* Lets the daemon read what was written so far as its own chunk. */
static void pause_briefly(void)
{
	struct timespec ts = { 0, 300 * 1000 };
	nanosleep(&ts, NULL);
}

/* Reads one answer line (10 s at most) and checks it is a JSON object with a boolean "ok". */
static void expect_answer(int fd, const char *what)
{
	char line[1 << 16];
	size_t n = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10000) <= 0) {
			fprintf(stderr, "ctl-torture: no answer within 10 s to %s\n", what);
			exit(1);
		}
		/* One byte at a time: the next answer stays in the socket for the next call. */
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0) {
			fprintf(stderr, "ctl-torture: connection closed before the answer to %s\n", what);
			exit(1);
		}
		if (line[n] == '\n')
			break;
		if (++n == sizeof(line) - 1) {
			/* A long answer (metrics, list): only its start is checked. */
			n = sizeof(line) - 1;
			char c;
			do {
				if (read(fd, &c, 1) <= 0)
					exit(1);
			} while (c != '\n');
			break;
		}
	}
	line[n] = '\0';
	json_object *o = json_tokener_parse(line), *ok;
	if (!o && n < sizeof(line) - 1) {
		fprintf(stderr, "ctl-torture: answer to %s is not JSON: %.200s\n", what, line);
		failures++;
	} else if (o && (!json_object_object_get_ex(o, "ok", &ok) || !json_object_is_type(ok, json_type_boolean))) {
		fprintf(stderr, "ctl-torture: answer to %s has no boolean ok: %.200s\n", what, line);
		failures++;
	}
	json_object_put(o);
	answers++;
}

static int torture(unsigned seed)
{
	char buf[4096];

	/* 1. Each request cut at every byte, the newline included: two writes, one answer. */
	for (size_t i = 0; i < N_REQ; i++) {
		size_t len = strlen(requests[i]);
		snprintf(buf, sizeof(buf), "%s\n", requests[i]);
		for (size_t k = 1; k <= len; k++) {
			int fd = dial();
			put(fd, buf, k);
			pause_briefly();
			put(fd, buf + k, len + 1 - k);
			expect_answer(fd, requests[i]);
			close(fd);
		}
	}
	/* 2. Each request twice in one write: two answers. */
	for (size_t i = 0; i < N_REQ; i++) {
		int fd = dial();
		int n = snprintf(buf, sizeof(buf), "%s\n%s\n", requests[i], requests[i]);
		put(fd, buf, (size_t)n);
		expect_answer(fd, requests[i]);
		expect_answer(fd, requests[i]);
		close(fd);
	}
	/* 3. Interleaved: A sends half a request, B a whole one, A the rest. */
	for (size_t i = 0; i < N_REQ; i++) {
		const char *ra = requests[i], *rb = requests[(i + 3) % N_REQ];
		size_t la = strlen(ra);
		int a = dial(), b = dial();
		put(a, ra, la / 2);
		pause_briefly();
		put(b, rb, strlen(rb));
		put(b, "\n", 1);
		pause_briefly();
		put(a, ra + la / 2, la - la / 2);
		put(a, "\n", 1);
		expect_answer(b, rb);
		expect_answer(a, ra);
		close(a);
		close(b);
	}
	/* 4. Random junk lines (any byte but newline, NUL included) around real requests. */
	srand(seed);
	for (int round = 0; round < 200; round++) {
		int fd = dial();
		size_t n = 0;
		size_t jl = 1 + (size_t)(rand() % 200);
		for (size_t j = 0; j < jl; j++) {
			char c = (char)(rand() % 256);
			buf[n++] = c == '\n' ? 'x' : c;
		}
		buf[n++] = '\n';
		const char *r = requests[(size_t)rand() % N_REQ];
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\n", r);
		jl = 1 + (size_t)(rand() % 50);
		for (size_t j = 0; j < jl; j++)
			buf[n++] = (char)('!' + rand() % 90);
		buf[n++] = '\n';
		put(fd, buf, n);
		expect_answer(fd, "a junk line");
		expect_answer(fd, r);
		expect_answer(fd, "a junk line");
		close(fd);
	}
	/* 5. Still up and answering. */
	int fd = dial();
	put(fd, "{\"cmd\":\"status\"}\n", 17);
	expect_answer(fd, "the final status");
	close(fd);
	printf("ctl-torture: %lu answers, %lu bad\n", answers, failures);
	return failures ? 1 : 0;
}

static int idle(int n, const char *release)
{
	int *fds = calloc((size_t)n, sizeof(int));
	for (int i = 0; i < n; i++)
		fds[i] = dial();
	/* Held until the test is done with them, however long a loaded machine takes to get there. */
	while (access(release, F_OK) != 0) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	int closed = 0;
	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		char c;
		/* Closed by the daemon: readable with EOF (an error message may come first). */
		if (poll(&p, 1, 0) > 0) {
			ssize_t r;
			while ((r = recv(fds[i], &c, 1, MSG_DONTWAIT)) > 0)
				;
			if (r == 0 || (r < 0 && errno != EAGAIN))
				closed++;
		}
		close(fds[i]);
	}
	free(fds);
	printf("open=%d closed=%d\n", n - closed, closed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "torture") == 0) {
		sock_path = argv[2];
		return torture(argc > 3 ? (unsigned)atoi(argv[3]) : 1);
	}
	if (argc == 5 && strcmp(argv[1], "idle") == 0) {
		sock_path = argv[2];
		return idle(atoi(argv[3]), argv[4]);
	}
	fprintf(stderr, "usage: ctl-torture torture SOCKET [SEED] | idle SOCKET N RELEASE-FILE\n");
	return 2;
}
