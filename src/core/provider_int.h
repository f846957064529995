/* Private to the provider modules (provider*.c): the tables and the helpers their batch readers share. */
#ifndef EW_PROVIDER_INT_H
#define EW_PROVIDER_INT_H

#include <json-c/json.h>

#include "provider.h"
#include "util.h"

extern const struct provider_ops provider_cohere_ops;
extern const struct provider_ops provider_openai_ops;
extern const struct provider_ops provider_anthropic_ops;
extern const struct provider_ops provider_gemini_ops;
extern const struct provider_ops provider_mistral_ops;

/* One word of a provider's status vocabulary. */
struct prov_word {
	const char *word;
	enum job_status status;
	bool expired;               /* the provider's expiry */
};
/* The row of words[] for word (case-insensitive): its status and expiry; JOB_UNKNOWN when none. */
enum job_status prov_word_status(const struct prov_word *words, size_t n, const char *word, bool *ret_expired);

/* Members of an object (o may be NULL): NULL, false or PROV_UNKNOWN when absent, null or of another type. */
const char *prov_str(json_object *o, const char *key);          /* borrowed */
json_object *prov_obj(json_object *o, const char *key);         /* borrowed */
bool prov_bool(json_object *o, const char *key);                /* true only for true */
bool prov_present(json_object *o, const char *key);             /* any value but null */
int64_t prov_count(json_object *o, const char *key);            /* api_json_count's forms */
/* A time: epoch seconds as an integer, or an RFC 3339 string; PROV_UNKNOWN otherwise. */
int64_t prov_time(json_object *o, const char *key);
/* An owned copy of a string member, or NULL. */
char *prov_strdup(json_object *o, const char *key);
/* The id member key as an owned string into *ret: 0, or -EINVAL with err when it is there and not a string. */
int prov_id(json_object *o, const char *key, char **ret, char *err, size_t errlen);

#endif
