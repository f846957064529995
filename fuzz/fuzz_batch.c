/* libFuzzer target: the v2 documents (getBatch answers, listBatches pages and their Batches, getDataset answers). */
#include <stddef.h>
#include <stdint.h>
#include "api_v2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct api_obs o;
	struct api_batch_page pg;
	struct api_dataset d;
	char err[256];

	if (api_batch_answer_parse(s, size, &o, err, sizeof(err)) == 0) {
		(void)api_records_percent(&o.job);
		api_obs_clear(&o);
	}
	if (api_batch_page_parse(s, size, &pg, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < pg.n; i++)
			if (api_batch_from_json(json_object_array_get_idx(pg.batches, i), &o, err, sizeof(err)) == 0)
				api_obs_clear(&o);
		api_batch_page_clear(&pg);
	}
	if (api_dataset_parse(s, size, "ds-1", &d, err, sizeof(err)) == 0)
		api_dataset_clear(&d);
	return 0;
}
