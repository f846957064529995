/* libFuzzer target: EmbedJob parsing. */
#include <stddef.h>
#include <stdint.h>
#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_job j;
	char err[256];
	if (api_job_parse((const char *)data, size, &j, err, sizeof(err)) == 0) {
		(void)job_status_name(j.status);
		api_job_clear(&j);
	}
	return 0;
}
