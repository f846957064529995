/*
 * The values of the configuration file, parsed and checked on their own: no
 * inih, no file. Durations, rates, sizes, command lines, proxy URLs, listen
 * addresses and the discovery batch rule; config.c applies them to keys.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util.h"

int config_parse_duration(const char *s, uint64_t *ret_ms)
{
	char *end;
	double v, mul;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else if (strcmp(end, "d") == 0)
		mul = 86400000;
	else
		return -EINVAL;
	v *= mul;
	if (!isfinite(v) || v > 365.0 * 86400000)
		return -ERANGE;
	*ret_ms = (uint64_t)llround(v);
	return 0;
}

int config_parse_rate(const char *s, double *ret_per_s)
{
	char *end;
	double v, per;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '/')
		return -EINVAL;
	end++;
	if (strcmp(end, "s") == 0 || strcmp(end, "sec") == 0)
		per = 1;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		per = 60;
	else if (strcmp(end, "h") == 0)
		per = 3600;
	else
		return -EINVAL;
	if (!isfinite(v) || v <= 0 || v / per > 1e6)
		return -ERANGE;
	*ret_per_s = v / per;
	return 0;
}

void config_free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

int config_split_argv(const char *s, char ***ret_argv)
{
	size_t n = 0, cap = 4;
	char **argv = xcalloc(cap, sizeof(char *));
	struct buf w = { 0 };
	const char *p = s;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		bool have = false;
		buf_reset(&w);
		while (*p && *p != ' ' && *p != '\t') {
			have = true;
			if (*p == '\'') {
				const char *e = strchr(p + 1, '\'');
				if (!e)
					goto bad;
				buf_append(&w, p + 1, (size_t)(e - p - 1));
				p = e + 1;
			} else if (*p == '"') {
				p++;
				while (*p && *p != '"') {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					buf_append(&w, p, 1);
					p++;
				}
				if (*p != '"')
					goto bad;
				p++;
			} else if (*p == '\\') {
				if (!p[1])
					goto bad;
				buf_append(&w, p + 1, 1);
				p += 2;
			} else {
				buf_append(&w, p, 1);
				p++;
			}
		}
		if (have) {
			if (n + 2 > cap) {
				cap *= 2;
				argv = xrealloc(argv, cap * sizeof(char *));
			}
			argv[n++] = xstrdup(w.data ? w.data : "");
			argv[n] = NULL;
		}
	}
	buf_free(&w);
	if (n == 0) {
		free(argv);
		return -EINVAL;
	}
	*ret_argv = argv;
	return 0;
bad:
	buf_free(&w);
	config_free_argv(argv);
	return -EINVAL;
}

int config_parse_size(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	uint64_t mult = 1;
	if (!strcmp(end, "") || !strcmp(end, "B"))
		mult = 1;
	else if (!strcasecmp(end, "k") || !strcmp(end, "KiB") || !strcmp(end, "kB"))
		mult = 1ULL << 10;
	else if (!strcmp(end, "M") || !strcmp(end, "MiB") || !strcmp(end, "MB"))
		mult = 1ULL << 20;
	else if (!strcmp(end, "G") || !strcmp(end, "GiB") || !strcmp(end, "GB"))
		mult = 1ULL << 30;
	else
		return -EINVAL;
	if (v * (double)mult > 1e15)
		return -EINVAL;
	*ret = (uint64_t)(v * (double)mult);
	return 0;
}

const char *config_discover_batch(const char *rule, const char *name, char *buf, size_t len)
{
	if (!rule || !*rule)
		return NULL;
	if (!strcmp(rule, "{name}")) {
		snprintf(buf, len, "%s", name);
	} else if (!strcmp(rule, "{name-prefix}")) {
		const char *dash = strrchr(name, '-');
		snprintf(buf, len, "%.*s", dash && dash != name ? (int)(dash - name) : (int)strlen(name), name);
	} else {
		snprintf(buf, len, "%s", rule);
	}
	return buf[0] ? buf : NULL;
}

int config_check_proxy(const char *url, char *err, size_t errlen)
{
	static const char *const schemes[] = { "http://", "https://", "socks5://", "socks5h://" };
	const char *host = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
			host = url + strlen(schemes[i]);
	if (!host || !*host || *host == '/' || *host == ':') {
		snprintf(err, errlen, "expected a proxy URL like http://proxy.example:3128, got \"%.200s\"", url);
		return -EINVAL;
	}
	const char *end = host + strcspn(host, "/?#");
	if (memchr(host, '@', (size_t)(end - host))) {
		/* Credentials in the URL would end up in logs and in `ps`: they go in a file. */
		snprintf(err, errlen, "the proxy URL must not hold credentials; put \"user:password\" in "
			 "proxy_credentials_file (or the credential proxy-credentials)");
		return -EINVAL;
	}
	for (const char *p = url; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "the proxy URL contains spaces or control characters");
			return -EINVAL;
		}
	}
	return 0;
}

int config_parse_listen(const char *s, struct sockaddr_storage *ret)
{
	char host[64] = "127.0.0.1";
	const char *port = s, *colon = strrchr(s, ':');
	memset(ret, 0, sizeof(*ret));
	if (colon) {
		size_t n = (size_t)(colon - s);
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
		port = colon + 1;
	}
	char *end;
	unsigned long p = strtoul(port, &end, 10);
	if (!*port || *end || p == 0 || p > 65535)
		return -EINVAL;
	size_t hl = strlen(host);
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;
		host[hl - 1] = '\0';
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ret;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)p);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

int config_check_state_url(const char *url, char *err, size_t errlen)
{
	const char *p;
	if (strncmp(url, "postgresql://", 13) == 0)
		p = url + 13;
	else if (strncmp(url, "postgres://", 11) == 0)
		p = url + 11;
	else {
		/* Not echoed: a key=value connection string may hold a password. */
		snprintf(err, errlen, "expected a PostgreSQL URI like postgresql://embedwatch@db.example/embedwatch "
			 "(postgresql:// or postgres://)");
		return -EINVAL;
	}
	/* user:password@ in the authority, or password= among the parameters: secrets stay out of the config. */
	size_t auth = strcspn(p, "/?");
	const char *at = memchr(p, '@', auth);
	bool pw = at && memchr(p, ':', (size_t)(at - p));
	const char *q = strchr(p, '?');
	for (const char *o = q; o && !pw; o = strchr(o + 1, '&'))
		pw = strncmp(o + 1, "password=", 9) == 0;
	if (pw) {
		snprintf(err, errlen, "the password does not belong in the URL (nor in the config file): use the "
			 "credential state-password or state_password_file");
		return -EINVAL;
	}
	for (const char *c = url; *c; c++) {
		if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
			snprintf(err, errlen, "spaces and control characters must be percent-encoded");
			return -EINVAL;
		}
	}
	return 0;
}
