/* libFuzzer target: configuration parsing. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ew_config c;
	char err[512];
	if (size == 0)
		return 0;
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	if (config_load_stream(f, "fuzz.conf", &c, err, sizeof(err)) == 0)
		config_clear(&c);
	fclose(f);
	return 0;
}
