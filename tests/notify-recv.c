/*
 * A NOTIFY_SOCKET for tests: binds a datagram socket at argv[1] and prints
 * every message it receives, each followed by a line "--", until SIGTERM.
 * With NOTIFY_RECV_TIME set, each message is preceded by "@<wall-clock ms>".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[8192];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify-recv PATH\n");
		return 2;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("notify-recv");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			continue;
		buf[n] = '\0';
		if (getenv("NOTIFY_RECV_TIME")) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			printf("@%lld\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		}
		printf("%s\n--\n", buf);
	}
}
