#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>

static void oom(size_t n)
{
	fprintf(stderr, "out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
	if (!p)
		oom(nmemb * n);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int64_t util_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t util_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void util_rfc3339(int64_t wall_ms, char *buf, size_t len)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;
	char tmp[32];

	gmtime_r(&t, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", tmp, (int)(wall_ms % 1000));
}

int util_parse_rfc3339(const char *s, int64_t *ret_ms)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	int64_t ms = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		if (!digits)
			return -EINVAL;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	int64_t off_s = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
		   p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off_s = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off_s = -off_s;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret_ms = ((int64_t)t - off_s) * 1000 + ms;
	return 0;
}

void util_format_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct { uint64_t ms; const char *unit; } units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
	};
	size_t n = 0;
	buf[0] = '\0';
	if (ms < 1000) {
		snprintf(buf, len, "%llums", (unsigned long long)ms);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units) && n < len; i++) {
		if (ms >= units[i].ms) {
			int w = snprintf(buf + n, len - n, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
			if (w < 0)
				break;
			n += (size_t)w;
			ms %= units[i].ms;
		}
	}
}

static uint64_t rng_state[2];

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t util_rand(void)
{
	if (rng_state[0] == 0 && rng_state[1] == 0) {
		if (getrandom(rng_state, sizeof(rng_state), 0) != sizeof(rng_state))
			rng_state[0] = (uint64_t)util_wall_ms() | 1;
		rng_state[1] |= 1;
	}
	uint64_t s0 = rng_state[0], s1 = rng_state[1];
	uint64_t r = s0 + s1;
	s1 ^= s0;
	rng_state[0] = rotl(s0, 55) ^ s1 ^ (s1 << 14);
	rng_state[1] = rotl(s1, 36);
	return r;
}

double util_rand_unit(void)
{
	return (double)(util_rand() >> 11) * (1.0 / 9007199254740992.0);
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		buf_append(b, small, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_append(b, big, (size_t)n);
	free(big);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int util_read_private_file(const char *path, const char *what, bool owner_only, char *buf, size_t cap,
			   char *err, size_t errlen)
{
	struct stat st;
	/* Non-blocking and not through a symlink: a FIFO or a device must not stall the loop, only be refused. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			snprintf(err, errlen, "%s %s: is a symbolic link; give the file itself", what, path);
		else
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s %s: not a regular file (a FIFO, device or directory is refused)", what, path);
		return -EINVAL;
	}
	if (owner_only && (st.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "%s %s is readable by group or others (mode %04o); chmod 600 it", what, path,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	ssize_t n = read(fd, buf, cap - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -EIO;
	}
	buf[n] = '\0';
	return (int)n;
}

void util_cloexec_from(int lowfd)
{
#if defined(SYS_close_range) && defined(CLOSE_RANGE_CLOEXEC)
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	/* Older kernels: walk the fd table. */
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (fd >= lowfd && fd != self && e->d_name[0] != '.')
			fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	}
	closedir(d);
}

int util_write_file(const char *path, const void *data, size_t len, unsigned mode, bool durable)
{
	/* The temporary sits in the target's directory (rename stays in one file system), named .NAME.XXXXXX. */
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	char *tmp = xmalloc(strlen(path) + 9);
	snprintf(tmp, strlen(path) + 9, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return -e;
	}
	const char *p = data;
	size_t off = 0;
	int e = 0;
	if (fchmod(fd, (mode_t)mode) < 0)
		e = errno;
	while (!e && off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			e = errno;
		else
			off += (size_t)w;
	}
	if (!e && durable && fsync(fd) < 0)
		e = errno;
	if (close(fd) < 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) < 0)
		e = errno;
	if (e)
		unlink(tmp);
	free(tmp);
	return -e;
}

static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

size_t util_utf8_len(const char *s)
{
	return utf8_len((const unsigned char *)s);
}

/* True when the sequence of n bytes at s is a control character: C0, DEL or C1 (U+0080..U+009F). */
static bool is_control(const unsigned char *s, size_t n)
{
	return (n == 1 && (s[0] < 0x20 || s[0] == 0x7f)) || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0);
}

bool util_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 128)
		return false;
	for (const unsigned char *s = (const unsigned char *)name; *s;) {
		size_t n = utf8_len(s);
		if (n == 0 || is_control(s, n))
			return false;
		s += n;
	}
	return true;
}

void util_escape_text(struct buf *b, const char *text)
{
	const unsigned char *s = (const unsigned char *)text, *run = s;
	while (*s) {
		size_t n = utf8_len(s);
		if (n && !is_control(s, n)) {
			s += n;
			continue;
		}
		buf_append(b, run, (size_t)(s - run));
		for (size_t i = 0; i < (n ? n : 1); i++)
			buf_printf(b, "\\x%02x", s[i]);
		s += n ? n : 1;
		run = s;
	}
	buf_append(b, run, (size_t)(s - run));
}
