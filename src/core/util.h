/* Small helpers shared by every program: checked allocation, containers, time. */
#ifndef EW_UTIL_H
#define EW_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that cannot fail: on out-of-memory the process aborts with a message. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Wall-clock time in milliseconds since the epoch. */
int64_t util_wall_ms(void);
/* Monotonic time in milliseconds. */
uint64_t util_mono_ms(void);
/* RFC 3339 UTC timestamp with milliseconds ("2026-01-02T03:04:05.678Z") into buf (>= 32). */
void util_rfc3339(int64_t wall_ms, char *buf, size_t len);
/* Parses an RFC 3339 time ("2026-01-02T03:04:05Z", fractions and +hh:mm offsets allowed) into ms. 0 or -EINVAL. */
int util_parse_rfc3339(const char *s, int64_t *ret_ms);
/* A duration for people: "3d", "2h30m", "45s", "250ms" into buf. */
void util_format_duration(uint64_t ms, char *buf, size_t len);

/* A fast non-cryptographic generator (xoshiro-style), seeded from getrandom. */
uint64_t util_rand(void);
/* Uniform double in [0, 1). */
double util_rand_unit(void);

/*
 * Reads a small file holding a secret (an API key, webhook secrets) into buf,
 * NUL-terminated. It must be a regular file; with owner_only, not readable by
 * group or others. Returns its length, or a negative errno with a message in
 * err that names `what` and the path, never the content.
 */
int util_read_private_file(const char *path, const char *what, bool owner_only, char *buf, size_t cap,
			   char *err, size_t errlen);

/*
 * Marks every open fd >= lowfd close-on-exec, whoever opened it (a library's
 * internal socketpair included): a child then inherits nothing above it.
 */
void util_cloexec_from(int lowfd);

/* A growable byte buffer; data is always NUL-terminated. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
void buf_append(struct buf *b, const void *p, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/*
 * Writes len bytes of data to path as a whole or not at all: a new temporary
 * in path's directory (mkostemp: O_CREAT|O_EXCL, so a symlink planted at any
 * name is never followed), fchmod to mode, fsync when durable, rename over
 * path (a symlink at path is replaced, not followed). Returns 0 or a negative
 * errno; the temporary is removed on failure.
 */
int util_write_file(const char *path, const void *data, size_t len, unsigned mode, bool durable);

/*
 * The rule for names from outside (batch names from the control socket and
 * from the API): 1 to 128 bytes of UTF-8 without control characters (C0,
 * DEL, C1), so a name cannot forge a line, an environment entry or a
 * terminal escape sequence.
 */
bool util_name_valid(const char *s);
/* Length of the UTF-8 sequence at s (1 to 4; 1 for ASCII, NUL included), or 0 when it is not UTF-8 (overlong, surrogate, cut short). */
size_t util_utf8_len(const char *s);
/*
 * Appends s to b with what a terminal or a line reader would act on written
 * as \xNN: control characters (C0, DEL, and C1 as their UTF-8 bytes) and
 * bytes that are not UTF-8. Printable text is appended as is.
 */
void util_escape_text(struct buf *b, const char *s);

#endif
