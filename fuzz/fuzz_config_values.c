/*
 * libFuzzer target: the configuration values parsed on their own, and the
 * API base URL. The first byte chooses the parser, the rest is the value.
 * Results are checked against their contracts (ranges), and command lines
 * and listen addresses round-trip: quoting what was split, or printing what
 * was parsed, and parsing again gives the same thing, or the run aborts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Quotes every word so config_split_argv reads it back as it is: '...' with each ' as '\''. */
static void quote_argv(char **argv, struct buf *out)
{
	for (char **a = argv; *a; a++) {
		buf_append(out, a == argv ? "'" : " '", a == argv ? 1 : 2);
		for (const char *p = *a; *p; p++) {
			if (*p == '\'')
				buf_append(out, "'\\''", 4);
			else
				buf_append(out, p, 1);
		}
		buf_append(out, "'", 1);
	}
}

static void argv_round_trip(const char *s)
{
	char **argv, **again;
	if (config_split_argv(s, &argv) < 0)
		return;
	if (!argv[0])
		abort();
	struct buf q = { 0 };
	quote_argv(argv, &q);
	if (config_split_argv(q.data, &again) < 0)
		abort();
	size_t i = 0;
	for (; argv[i] && again[i]; i++)
		if (strcmp(argv[i], again[i]) != 0)
			abort();
	if (argv[i] || again[i])
		abort();
	buf_free(&q);
	config_free_argv(argv);
	config_free_argv(again);
}

static void listen_round_trip(const char *s)
{
	struct sockaddr_storage a, b;
	char host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 16];
	if (config_parse_listen(s, &a) < 0)
		return;
	if (a.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a;
		if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) || in->sin_port == 0)
			abort();
		snprintf(text, sizeof(text), "%s:%u", host, ntohs(in->sin_port));
	} else if (a.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a;
		if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) || in6->sin6_port == 0)
			abort();
		snprintf(text, sizeof(text), "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		abort();
	}
	if (config_parse_listen(text, &b) < 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	char err[512], buf[256];
	uint64_t u;
	double d;
	switch (data[0] % 8) {
	case 0:
		if (config_parse_duration(s, &u) == 0 && u > 365ULL * 86400000)
			abort();
		break;
	case 1:
		if (config_parse_rate(s, &d) == 0 && !(d > 0 && d <= 1e6))
			abort();
		break;
	case 2:
		if (config_parse_size(s, &u) == 0 && u > (uint64_t)1e15)
			abort();
		break;
	case 3:
		argv_round_trip(s);
		break;
	case 4:
		listen_round_trip(s);
		break;
	case 5:
		if (config_check_proxy(s, err, sizeof(err)) < 0 && !err[0])
			abort();
		break;
	case 6: {
		/* "RULE\nNAME": the batch a discovered job joins. */
		char *name = strchr(s, '\n');
		if (name)
			*name++ = '\0';
		const char *b = config_discover_batch(s, name ? name : "", buf, sizeof(buf));
		if (b && (b != buf || !b[0] || strlen(b) >= sizeof(buf)))
			abort();
		break;
	}
	default: {
		/* "BASE\nID": the base URL check and the job URL built on it. */
		char *id = strchr(s, '\n');
		if (id)
			*id++ = '\0';
		err[0] = '\0';
		if (api_base_check(s, err, sizeof(err)) < 0 && !err[0])
			abort();
		if (id && api_job_url(s, id, buf, sizeof(buf)) == 0 && (!api_id_valid(id) || !strstr(buf, id)))
			abort();
		break;
	}
	}
	free(s);
	return 0;
}
