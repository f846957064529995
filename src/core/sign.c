#include "sign.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int sign_secret_parse(const char *text, struct sign_secret *ret)
{
	size_t n;
	unsigned char tmp[SIGN_SECRET_MAX + 4];

	if (strncmp(text, "whsec_", 6) == 0)
		text += 6;
	n = strlen(text);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(tmp))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		/* '=' is padding: the last character, or the one before a last '='. */
		bool pad = c == '=' && (i == n - 1 || (i == n - 2 && text[n - 1] == '='));
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      pad))
			return -EINVAL;
	}
	int len = EVP_DecodeBlock(tmp, (const unsigned char *)text, (int)n);
	if (len < 0)
		return -EINVAL;
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if (text[n - 1] == '=')
		len--;
	if (text[n - 2] == '=')
		len--;
	if (len <= 0 || (size_t)len > SIGN_SECRET_MAX)
		return -EINVAL;
	memcpy(ret->key, tmp, (size_t)len);
	ret->len = (size_t)len;
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 0;
}

int sign_secrets_load(const char *path, struct sign_secret *ret, size_t max, char *err, size_t errlen)
{
	char text[4096];
	int n = util_read_private_file(path, "secret file", true, text, sizeof(text), err, errlen);
	if (n < 0)
		return n;
	size_t count = 0;
	char *save = NULL;
	for (char *t = strtok_r(text, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (count == max) {
			snprintf(err, errlen, "secret file %s: more than %zu secrets", path, max);
			OPENSSL_cleanse(text, sizeof(text));
			return -EINVAL;
		}
		if (sign_secret_parse(t, &ret[count]) < 0) {
			snprintf(err, errlen, "secret file %s: secret %zu is not whsec_<base64>", path, count + 1);
			OPENSSL_cleanse(text, sizeof(text));
			return -EINVAL;
		}
		count++;
	}
	OPENSSL_cleanse(text, sizeof(text));
	if (count == 0) {
		snprintf(err, errlen, "secret file %s: no secret in it", path);
		return -EINVAL;
	}
	return (int)count;
}

int sign_header(const struct sign_secret *secrets, size_t n, const char *id, int64_t ts,
		const char *body, size_t len, char *out, size_t outlen)
{
	char prefix[128];
	size_t used = 0;
	int pl = snprintf(prefix, sizeof(prefix), "%s.%lld.", id, (long long)ts);

	if (pl < 0 || (size_t)pl >= sizeof(prefix))
		return -ENOSPC;
	out[0] = '\0';
	struct buf msg = { 0 };
	buf_append(&msg, prefix, (size_t)pl);
	buf_append(&msg, body, len);
	for (size_t i = 0; i < n; i++) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;
		char b64[EVP_MAX_MD_SIZE * 2];
		if (!HMAC(EVP_sha256(), secrets[i].key, (int)secrets[i].len, (const unsigned char *)msg.data, msg.len,
			  mac, &maclen)) {
			buf_free(&msg);
			return -EIO;
		}
		EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
		int w = snprintf(out + used, outlen - used, "%sv1,%s", i ? " " : "", b64);
		if (w < 0 || (size_t)w >= outlen - used) {
			buf_free(&msg);
			return -ENOSPC;
		}
		used += (size_t)w;
	}
	buf_free(&msg);
	return 0;
}
