/* The daemon's secrets: the API key, the proxy's credentials, the state database's password. */
#ifndef EW_SECRETS_H
#define EW_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

struct ew_config;

/* Wipes s (NUL-terminated) and frees it; NULL is fine. */
void secrets_wipe_free(char *s);
/* The API key into *ret (the caller wipes it): the credential cohere-api-key, else api_key_file, else CO_API_KEY
 * (then removed from the environment), else current when the running key came from CO_API_KEY; -ENOKEY when none. */
int secrets_load_key(const struct ew_config *cfg, const char *current, char **ret, char *err, size_t errlen);
/* Whether the last key loaded came from CO_API_KEY (a restart puts it back there). */
bool secrets_key_from_env(void);
/*
 * The key of every [account NAME] into a new array of cfg->n_accounts (the
 * caller frees it with secrets_free_keys): the credential NAME-api-key, else
 * the account's key_file. -ENOKEY naming the account when it has neither.
 */
int secrets_load_account_keys(const struct ew_config *cfg, char ***ret, char *err, size_t errlen);
/* Wipes and frees n keys and the array; NULL is fine. */
void secrets_free_keys(char **keys, size_t n);
/* Proxy credentials: the credential proxy-credentials, else proxy_credentials_file; *ret NULL when neither. */
int secrets_load_proxy(const struct ew_config *cfg, char **ret, char *err, size_t errlen);
/* PostgreSQL's password: the credential state-password, else state_password_file; *ret NULL when neither. */
int secrets_load_state_password(const struct ew_config *cfg, char **ret, char *err, size_t errlen);

#endif
