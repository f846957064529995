/*
 * libFuzzer target: webhook secrets ("whsec_<base64>") and the signature header.
 *
 * The input is "SECRET\nID\nBODY". The secret parser is checked against a
 * plain RFC 4648 decoder written here: both accept the same texts and give
 * the same key bytes (a mismatch aborts). A secret that parses then signs
 * ID and BODY, and the header must be "v1,<44 base64 chars>".
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* The reference: padded base64, '=' only as the last one or two characters, 1..SIGN_SECRET_MAX bytes. */
static bool reference(const char *t, unsigned char *out, size_t *ret_len)
{
	size_t n = strlen(t), len = 0;
	if (strncmp(t, "whsec_", 6) == 0)
		t += 6, n -= 6;
	if (n == 0 || n % 4 != 0)
		return false;
	size_t pad = t[n - 1] == '=' ? (t[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			bool is_pad = i + (size_t)k >= n - pad;
			v[k] = is_pad ? 0 : b64_value(t[i + (size_t)k]);
			if (v[k] < 0)
				return false;
		}
		unsigned char b[3] = { (unsigned char)(v[0] << 2 | v[1] >> 4), (unsigned char)(v[1] << 4 | v[2] >> 2),
				       (unsigned char)(v[2] << 6 | v[3]) };
		for (int k = 0; k < 3; k++) {
			if (len == SIGN_SECRET_MAX + 3)
				return false;
			out[len++] = b[k];
		}
	}
	len -= pad;
	if (len == 0 || len > SIGN_SECRET_MAX)
		return false;
	*ret_len = len;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	char *id = strchr(in, '\n');
	const char *body = in + size;
	if (id) {
		*id++ = '\0';
		char *b = strchr(id, '\n');
		if (b) {
			*b++ = '\0';
			body = b;
		}
	} else {
		id = in + size;
	}
	struct sign_secret s[2];
	unsigned char want[SIGN_SECRET_MAX + 3];
	size_t want_len = 0;
	bool ref = reference(in, want, &want_len);
	int r = sign_secret_parse(in, &s[0]);
	if ((r == 0) != ref || (r == 0 && (s[0].len != want_len || memcmp(s[0].key, want, want_len) != 0))) {
		fprintf(stderr, "sign: parse %d, reference %s (%zu bytes)\n", r, ref ? "accepts" : "refuses", want_len);
		abort();
	}
	if (r == 0) {
		char hdr[256];
		s[1] = s[0];
		size_t body_len = (size_t)(in + size - body);
		r = sign_header(s, 2, id, 1700000000, body, body_len, hdr, sizeof(hdr));
		if (r == 0 && (strlen(hdr) != 2 * 47 + 1 || strncmp(hdr, "v1,", 3) != 0 || hdr[47] != ' ' ||
			       strncmp(hdr + 3, hdr + 51, 44) != 0))
			abort();
		if (r != 0 && r != -ENOSPC)
			abort();
	}
	free(in);
	return 0;
}
