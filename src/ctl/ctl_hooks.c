/* embedwatchctl: the delivery commands (deliveries, redeliver, hooks). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *or_dash(json_object *o, const char *key)
{
	const char *s = ctl_str(o, key);
	return *s ? s : "-";
}

int ctl_deliveries(int argc, char **argv)
{
	static const struct option opts[] = { { "state", required_argument, NULL, 's' },
					      { "hook", required_argument, NULL, 'H' },
					      { "since", required_argument, NULL, 'S' }, { 0 } };
	json_object *req = ctl_new_req("deliveries");
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "s:H:S:", opts, NULL)) != -1) {
		const char *key = o == 's' ? "state" : o == 'H' ? "hook" : o == 'S' ? "since" : NULL;
		if (!key)
			ctl_die_usage("deliveries: unknown option (expected --state, --hook, --since)");
		json_object_object_add(req, key, json_object_new_string(optarg));
	}
	if (optind != argc)
		ctl_die_usage("deliveries: unexpected argument \"%s\"", argv[optind]);
	json_object *ans = ctl_ask(req), *ds;
	if (!ans)
		return 0;
	json_object_object_get_ex(ans, "deliveries", &ds);
	printf("%-36s %-20s %-12s %-8s %-8s %-24s %s\n", "EVENT_ID", "EVENT", "HOOK", "STATE", "ATTEMPTS", "UPDATED",
	       "LAST_ERROR");
	for (size_t i = 0; i < json_object_array_length(ds); i++) {
		json_object *d = json_object_array_get_idx(ds, i);
		printf("%-36s %-20s %-12s %-8s %-8lld %-24s %s\n", ctl_str(d, "event_id"), ctl_str(d, "event"), ctl_str(d, "hook"),
		       ctl_str(d, "state"), (long long)ctl_num(d, "attempts"), ctl_str(d, "updated"), or_dash(d, "last_error"));
	}
	json_object *tr;
	if (json_object_object_get_ex(ans, "truncated", &tr) && json_object_get_boolean(tr))
		fprintf(stderr, "embedwatchctl: the newest %lld deliveries shown, there are more: narrow with --state, "
			"--hook or --since\n", (long long)ctl_num(ans, "limit"));
	json_object_put(ans);
	return 0;
}

int ctl_redeliver(int argc, char **argv)
{
	static const struct option opts[] = { { "hook", required_argument, NULL, 'H' },
					      { "dead", no_argument, NULL, 'd' },
					      { "since", required_argument, NULL, 'S' },
					      { "event", required_argument, NULL, 'e' }, { 0 } };
	json_object *req = ctl_new_req("redeliver");
	bool dead = false, filtered = false;
	int o;
	optind = 0;
	while ((o = getopt_long(argc, argv, "H:dS:e:", opts, NULL)) != -1) {
		switch (o) {
		case 'H': json_object_object_add(req, "hook", json_object_new_string(optarg)); break;
		case 'd': dead = true; break;
		case 'S': json_object_object_add(req, "since", json_object_new_string(optarg)); filtered = true; break;
		case 'e': json_object_object_add(req, "event", json_object_new_string(optarg)); filtered = true; break;
		default: ctl_die_usage("redeliver: unknown option (expected --hook, --dead, --since, --event)");
		}
	}
	if (dead) {
		if (optind != argc)
			ctl_die_usage("redeliver --dead takes filters, not an event id");
		json_object_object_add(req, "dead", json_object_new_boolean(1));
	} else {
		if (filtered)
			ctl_die_usage("redeliver: --since and --event filter a replay of dead deliveries: add --dead");
		if (optind != argc - 1)
			ctl_die_usage("redeliver: give one event id, or --dead [--hook NAME] [--since DURATION|TIME] [--event TYPE]");
		json_object_object_add(req, "event_id", json_object_new_string(argv[optind]));
	}
	json_object *ans = ctl_ask(req);
	if (!ans)
		return 0;
	printf("queued %lld deliveries", (long long)ctl_num(ans, "queued"));
	if (ctl_num(ans, "skipped"))
		printf("; skipped %lld (%s)", (long long)ctl_num(ans, "skipped"), ctl_str(ans, "note"));
	printf("\n");
	json_object_put(ans);
	return 0;
}

static void print_hooks(json_object *ans)
{
	json_object *hs;
	json_object_object_get_ex(ans, "hooks", &hs);
	for (size_t i = 0; i < json_object_array_length(hs); i++) {
		json_object *h = json_object_array_get_idx(hs, i);
		printf("%s (%s): %s", ctl_str(h, "name"), ctl_str(h, "type"), ctl_str(h, "state"));
		if (strcmp(ctl_str(h, "state"), "disabled") == 0)
			printf(" since %s: %s", ctl_str(h, "since"), ctl_str(h, "why"));
		printf("\n  pending %lld, running %lld, dead %lld, delivered in the last hour %lld\n",
		       (long long)ctl_num(h, "pending"), (long long)ctl_num(h, "running"), (long long)ctl_num(h, "dead"),
		       (long long)ctl_num(h, "delivered_last_hour"));
		printf("  last success: %s\n", or_dash(h, "last_success"));
		if (*ctl_str(h, "last_error"))
			printf("  last error:   %s: %s\n", ctl_str(h, "last_error_at"), ctl_str(h, "last_error"));
		if (*ctl_str(h, "failing_since"))
			printf("  failing since %s\n", ctl_str(h, "failing_since"));
		if (*ctl_str(h, "paused_until"))
			printf("  paused until %s (Retry-After)\n", ctl_str(h, "paused_until"));
	}
}

int ctl_hooks(int argc, char **argv)
{
	json_object *req = ctl_new_req("hooks");
	if (argc > 1) {
		const char *action = argv[1];
		if (strcmp(action, "enable") != 0 && strcmp(action, "disable") != 0)
			ctl_die_usage("hooks: expected enable NAME or disable NAME, got \"%s\"", action);
		if (argc != 3)
			ctl_die_usage("hooks %s: give one hook name", action);
		json_object_object_add(req, "action", json_object_new_string(action));
		json_object_object_add(req, "name", json_object_new_string(argv[2]));
		json_object *ans = ctl_ask(req);
		if (!ans)
			return 0;
		printf("hook %s %s%s\n", ctl_str(ans, "name"), ctl_str(ans, "state"),
		       json_object_get_boolean(json_object_object_get(ans, "changed")) ? "" : " (it already was)");
		json_object_put(ans);
		return 0;
	}
	json_object *ans = ctl_ask(req);
	if (!ans)
		return 0;
	print_hooks(ans);
	json_object_put(ans);
	return 0;
}
