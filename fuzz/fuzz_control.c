/* libFuzzer target: control-socket request parsing and the fields handlers read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "api.h"
#include "ctlproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum ctl_cmd cmd;
	json_object *req, *ids;
	char err[256];
	if (ctlproto_parse((const char *)data, size, &cmd, &req, err, sizeof(err)) < 0)
		return 0;
	if ((unsigned)cmd >= CTL__MAX)
		abort();
	(void)ctlproto_str(req, "batch");
	(void)ctlproto_str(req, "status");
	if (json_object_object_get_ex(req, "ids", &ids) && json_object_is_type(ids, json_type_array))
		for (size_t i = 0; i < json_object_array_length(ids); i++)
			(void)api_id_valid(json_object_get_string(json_object_array_get_idx(ids, i)));
	json_object_put(req);
	return 0;
}
