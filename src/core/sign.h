/* Standard Webhooks signatures: whsec_ secrets and v1 HMAC-SHA256. Pure, libcrypto only. */
#ifndef EW_SIGN_H
#define EW_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_SECRET_MAX 256
#define SIGN_MAX_SECRETS 4

struct sign_secret {
	unsigned char key[SIGN_SECRET_MAX];
	size_t len;
};

/* Decodes "whsec_<base64>" (the prefix is optional). Returns 0 or -EINVAL. */
int sign_secret_parse(const char *text, struct sign_secret *ret);

/*
 * Reads whitespace-separated secrets from a file (two during a rotation).
 * The file must not be readable by group or others. Returns the count, or a
 * negative errno with a message in err (never the secret).
 */
int sign_secrets_load(const char *path, struct sign_secret *ret, size_t max, char *err, size_t errlen);

/*
 * The webhook-signature header value for id, timestamp and body: one
 * "v1,<base64>" per secret, space-separated, into out. Returns 0 or -ENOSPC.
 */
int sign_header(const struct sign_secret *secrets, size_t n, const char *id, int64_t ts,
		const char *body, size_t len, char *out, size_t outlen);

#endif
