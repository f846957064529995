/*
 * The command table: every command has a name the parser finds, a handler in
 * the daemon's column, and flags that agree (a standby forwards exactly what
 * changes the state, and reads only what it does not forward).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "control_int.h"

/* The handlers, as stubs: the table is what is tested, not the commands. */
#define HANDLER(name) void name(struct client *c, json_object *req) { (void)c; (void)req; }
#define READER(name) void name(struct client *c, enum ctl_cmd cmd, json_object *req) { (void)c; (void)cmd; (void)req; }
HANDLER(control_cmd_watch) HANDLER(control_cmd_unwatch) HANDLER(control_cmd_cancel) HANDLER(control_cmd_wait)
HANDLER(control_cmd_list) HANDLER(control_cmd_show) HANDLER(control_cmd_status) HANDLER(control_cmd_metrics)
HANDLER(control_cmd_batches) HANDLER(control_cmd_deliveries) HANDLER(control_cmd_redeliver) HANDLER(control_cmd_hooks)
READER(control_standby_list) READER(control_standby_counts) READER(control_standby_wait)

static void test_rows(void **state)
{
	(void)state;
	for (int i = 0; i < CTL__MAX; i++) {
		const struct ctlproto_cmd *k = &ctlproto_cmds[i];
		bool write = k->flags & CTLPROTO_WRITE, fwd = k->flags & CTLPROTO_FORWARD;
		if (!k->name || !*k->name)
			fail_msg("command %d has no name", i);
		for (int j = 0; j < i; j++)
			if (strcmp(ctlproto_cmds[j].name, k->name) == 0)
				fail_msg("%s: two rows", k->name);
		if (!control_cmds[i].handler)
			fail_msg("%s: no handler", k->name);
		if (write != fwd)
			fail_msg("%s: a standby forwards exactly what changes the state", k->name);
		if ((k->flags & (CTLPROTO_IDS | CTLPROTO_ACTION)) && !fwd)
			fail_msg("%s: ids or action without forwarding", k->name);
		if (fwd && control_cmds[i].standby)
			fail_msg("%s: forwarded and read by a standby", k->name);
	}
	assert_true(control_cmds_complete());
}

/* Each name parses to its own command. */
static void test_names(void **state)
{
	(void)state;
	for (int i = 0; i < CTL__MAX; i++) {
		char line[128], err[256];
		enum ctl_cmd cmd;
		json_object *req;
		int n = snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}", ctlproto_cmds[i].name);
		assert_int_equal(ctlproto_parse(line, (size_t)n, &cmd, &req, err, sizeof(err)), 0);
		assert_int_equal(cmd, i);
		json_object_put(req);
	}
}

static void test_forwards(void **state)
{
	static const struct { const char *req; enum ctl_cmd cmd; bool fwd; } cases[] = {
		{ "{\"cmd\":\"watch\",\"ids\":[\"a\"]}", CTL_WATCH, true },
		{ "{\"cmd\":\"cancel\",\"ids\":[\"a\"]}", CTL_CANCEL, true },
		{ "{\"cmd\":\"redeliver\",\"event_id\":\"e\"}", CTL_REDELIVER, true },
		{ "{\"cmd\":\"hooks\",\"action\":\"disable\",\"name\":\"h\"}", CTL_HOOKS, true },
		{ "{\"cmd\":\"hooks\"}", CTL_HOOKS, false },
		{ "{\"cmd\":\"list\"}", CTL_LIST, false },
		{ "{\"cmd\":\"deliveries\"}", CTL_DELIVERIES, false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object *req = json_tokener_parse(cases[i].req);
		if (ctlproto_forwards(cases[i].cmd, req) != cases[i].fwd)
			fail_msg("%s: forwarded %d, expected %d", cases[i].req, !cases[i].fwd, cases[i].fwd);
		json_object_put(req);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_forwards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
