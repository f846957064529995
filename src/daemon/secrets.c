/*
 * The daemon's secrets, read at start-up and on a reload: the API key (a
 * systemd credential, api_key_file, or CO_API_KEY, removed from the
 * environment once read), the proxy's credentials and the state database's
 * password. Files must be one line and, outside the credentials directory,
 * owner-only and not symlinks. No secret is ever logged; the caller wipes
 * each with secrets_wipe_free.
 */
#include "secrets.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define KEY_MAX 4096

void secrets_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Reads a key file: trimmed, one line, owner-only unless it is a systemd credential. */
static int read_secret_line(const char *path, const char *what, bool check_mode, char **ret, char *err, size_t errlen)
{
	char buf[KEY_MAX + 1];
	int n = util_read_private_file(path, what, check_mode, buf, sizeof(buf), err, errlen);
	if (n < 0)
		return n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	char *p = buf;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || strpbrk(p, "\r\n")) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "%s %s: expected one line", what, path);
		return -EINVAL;
	}
	*ret = xstrdup(p);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* True when the file holds nothing but whitespace (or cannot be read as a small file). */
static bool blank_file(const char *path)
{
	char buf[16], err[256];
	struct stat st;
	if (stat(path, &st) < 0 || st.st_size >= (off_t)sizeof(buf))
		return false;
	int n = util_read_private_file(path, "credential", false, buf, sizeof(buf), err, sizeof(err));
	for (int i = 0; i < n; i++)
		if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r')
			return false;
	return n >= 0;
}

/* The running key came from CO_API_KEY, which is removed once read: a reload keeps it. */
static bool key_from_env;

int secrets_load_key(const struct ew_config *cfg, const char *current, char **ret, char *err, size_t errlen)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];

	if (creds) {
		snprintf(path, sizeof(path), "%s/cohere-api-key", creds);
		/* Blank: the unit's SetCredential= fallback, i.e. there was no key file to load. */
		bool blank = blank_file(path);
		if (blank && !cfg->api_key_file[0] && !getenv("CO_API_KEY")) {
			snprintf(err, errlen, "no API key configured: put it in %s/embedwatch/cohere-api-key (mode 0600), "
				 "then systemctl restart embedwatchd", SYSCONFDIR);
			return -ENOKEY;
		}
		if (!blank && access(path, F_OK) == 0) {
			key_from_env = false;
			return read_secret_line(path, "API key file", false, ret, err, errlen);
		}
	}
	if (cfg->api_key_file[0]) {
		key_from_env = false;
		return read_secret_line(cfg->api_key_file, "API key file", true, ret, err, errlen);
	}
	const char *env = getenv("CO_API_KEY");
	if (env && *env) {
		for (const char *p = env; *p; p++) {
			if ((unsigned char)*p < 0x21 || *p == 0x7f) {
				snprintf(err, errlen, "CO_API_KEY contains spaces or control characters");
				return -EINVAL;
			}
		}
		*ret = xstrdup(env);
		/* Not left in the environment for anyone who reads /proc or forks from here. */
		OPENSSL_cleanse((char *)env, strlen(env));
		unsetenv("CO_API_KEY");
		key_from_env = true;
		return 0;
	}
	if (key_from_env && current) {
		*ret = xstrdup(current);
		return 0;
	}
	snprintf(err, errlen, "no API key: set LoadCredential=cohere-api-key:..., api_key_file in [embedwatch], "
		 "or CO_API_KEY");
	return -ENOKEY;
}

int secrets_load_account_keys(const struct ew_config *cfg, char ***ret, char *err, size_t errlen)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char **keys = xcalloc(cfg->n_accounts ? cfg->n_accounts : 1, sizeof(*keys));
	char path[4096];
	int r = 0;

	for (size_t i = 0; i < cfg->n_accounts && r == 0; i++) {
		const struct ew_account *a = &cfg->accounts[i];
		char what[80];
		snprintf(what, sizeof(what), "[account %s] key file", a->name);
		if (creds) {
			snprintf(path, sizeof(path), "%s/%s-api-key", creds, a->name);
			if (access(path, F_OK) == 0 && !blank_file(path)) {
				r = read_secret_line(path, what, false, &keys[i], err, errlen);
				continue;
			}
		}
		if (a->key_file) {
			r = read_secret_line(a->key_file, what, true, &keys[i], err, errlen);
		} else {
			snprintf(err, errlen, "[account %s]: no key: set key_file, or LoadCredential=%s-api-key:...",
				 a->name, a->name);
			r = -ENOKEY;
		}
	}
	if (r < 0) {
		secrets_free_keys(keys, cfg->n_accounts);
		keys = NULL;
	}
	*ret = keys;
	return r;
}

void secrets_free_keys(char **keys, size_t n)
{
	if (!keys)
		return;
	for (size_t i = 0; i < n; i++)
		secrets_wipe_free(keys[i]);
	free(keys);
}

/* Proxy credentials: the credential proxy-credentials, else proxy_credentials_file; NULL when neither. */
int secrets_load_proxy(const struct ew_config *cfg, char **ret, char *err, size_t errlen)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];
	int r;

	*ret = NULL;
	if (creds) {
		snprintf(path, sizeof(path), "%s/proxy-credentials", creds);
		if (access(path, F_OK) != 0)
			creds = NULL;
	}
	if (creds)
		r = read_secret_line(path, "proxy credentials", false, ret, err, errlen);
	else if (cfg->proxy_credentials_file)
		r = read_secret_line(cfg->proxy_credentials_file, "proxy credentials file", true, ret, err, errlen);
	else
		return 0;
	if (r == 0 && !strchr(*ret, ':')) {
		snprintf(err, errlen, "proxy credentials: expected \"user:password\" on one line");
		secrets_wipe_free(*ret);
		*ret = NULL;
		return -EINVAL;
	}
	return r;
}

/* PostgreSQL's password: the credential state-password, else state_password_file; NULL when neither (libpq's own sources then). */
int secrets_load_state_password(const struct ew_config *cfg, char **ret, char *err, size_t errlen)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];

	*ret = NULL;
	if (!cfg->state_url)
		return 0;
	if (creds) {
		snprintf(path, sizeof(path), "%s/state-password", creds);
		if (access(path, F_OK) == 0)
			return read_secret_line(path, "state database password", false, ret, err, errlen);
	}
	if (cfg->state_password_file)
		return read_secret_line(cfg->state_password_file, "state_password_file", true, ret, err, errlen);
	return 0;
}

bool secrets_key_from_env(void)
{
	return key_from_env;
}
