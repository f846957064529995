/* libFuzzer target: Retry-After parsing (both forms). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	int64_t secs;
	memcpy(s, data, size);
	s[size] = '\0';
	if (api_retry_after(s, 1700000000, API_RETRY_AFTER_CAP_S, &secs) == 0 && (secs < 0 || secs > API_RETRY_AFTER_CAP_S))
		abort();
	free(s);
	return 0;
}
