/* The daemon's column of the command table: the handlers, indexed like ctlproto_cmds. */
#include "control_int.h"

const struct control_cmd control_cmds[] = {
	[CTL_WATCH] = { control_cmd_watch, NULL },
	[CTL_UNWATCH] = { control_cmd_unwatch, NULL },
	[CTL_LIST] = { control_cmd_list, control_standby_list },
	[CTL_SHOW] = { control_cmd_show, control_standby_list },
	[CTL_STATUS] = { control_cmd_status, control_standby_counts },
	[CTL_METRICS] = { control_cmd_metrics, control_standby_counts },
	[CTL_WAIT] = { control_cmd_wait, control_standby_wait },
	[CTL_BATCHES] = { control_cmd_batches, control_standby_counts },
	[CTL_DELIVERIES] = { control_cmd_deliveries, NULL },
	[CTL_REDELIVER] = { control_cmd_redeliver, NULL },
	[CTL_CANCEL] = { control_cmd_cancel, NULL },
	[CTL_HOOKS] = { control_cmd_hooks, NULL },
};
_Static_assert(sizeof(control_cmds) / sizeof(control_cmds[0]) == CTL__MAX,
	       "a row in control_cmds for every command of ctlproto_cmds");

bool control_cmds_complete(void)
{
	for (int i = 0; i < CTL__MAX; i++)
		if (!control_cmds[i].handler || ((ctlproto_cmds[i].flags & CTLPROTO_FORWARD) && control_cmds[i].standby))
			return false;
	return true;
}
