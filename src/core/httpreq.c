/* The request head reader: a bounded scan, no allocation, no copy. */
#include "httpreq.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define METHOD_MAX 16

/* RFC 9110 tchar: the characters of a method token. */
static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The length of the head (through its blank line) in buf[0..len), or 0 when it has not ended. */
static size_t head_end(const char *buf, size_t len)
{
	/* A blank line is "\r\n\r\n" or, from lenient clients, "\n\n" (also "\n\r\n"). */
	for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
		const char *q = p + 1;
		if (q < end && *q == '\r')
			q++;
		if (q < end && *q == '\n')
			return (size_t)(q + 1 - buf);
	}
	return 0;
}

int httpreq_parse(const char *buf, size_t len, size_t max, struct httpreq *ret)
{
	size_t head = head_end(buf, len < max ? len : max);
	if (!head)
		return len >= max ? -EMSGSIZE : 0;
	/* The request line: METHOD SP TARGET SP HTTP/1.x, then CRLF (or LF). */
	const char *p = buf, *line_end = memchr(buf, '\n', head);
	if (line_end > buf && line_end[-1] == '\r')
		line_end--;
	const char *m = p;
	while (p < line_end && tchar((unsigned char)*p))
		p++;
	size_t mlen = (size_t)(p - m);
	if (mlen == 0 || mlen > METHOD_MAX || p == line_end || *p != ' ')
		return -EINVAL;
	p++;
	const char *target = p;
	while (p < line_end && (unsigned char)*p > ' ' && *p != 0x7f)
		p++;
	if (p == target || p == line_end || *p != ' ')
		return -EINVAL;
	size_t tlen = (size_t)(p - target);
	p++;
	if ((size_t)(line_end - p) != 8 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9')
		return -EINVAL;
	ret->method = mlen == 3 && memcmp(m, "GET", 3) == 0 ? HTTPREQ_GET :
		      mlen == 4 && memcmp(m, "HEAD", 4) == 0 ? HTTPREQ_HEAD : HTTPREQ_OTHER;
	const char *query = memchr(target, '?', tlen);
	ret->path = target;
	ret->path_len = query ? (size_t)(query - target) : tlen;
	ret->head_len = head;
	return 1;
}
