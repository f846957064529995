/* Internal to embedwatchctl: shared by ctl.c (commands), ctl_io.c (plumbing) and ctl_wait.c. */
#ifndef EW_CTL_H
#define EW_CTL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define EXIT_PARTIAL 1
#define EXIT_TIMEOUT 2
#define EXIT_REFUSED 3
#define EXIT_UNREACHABLE 4
#define EXIT_USAGE 64

extern const char *sock_path;   /* the control socket */
extern bool json_out;           /* --json */
extern int fd;                  /* the connection, -1 before connect_daemon() */
extern struct buf rbuf;         /* bytes read and not yet an answer */

/* Prints a usage error and exits 64. */
void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Connects fd to sock_path; exits 4 when the daemon cannot be reached. */
void connect_daemon(void);
/* Sends req (NULL: send nothing) and reads one answer line; NULL after timeout_ms (< 0: no limit). */
json_object *request(json_object *req, int timeout_ms);
/* Member key of o as a string ("" when absent), or as a number (0). */
const char *str(json_object *o, const char *key);
int64_t num(json_object *o, const char *key);
/* Checks ok; prints the daemon's error and exits 3 if not. */
void check(json_object *ans);
void print_json(json_object *o);
/* A new request object {"cmd": cmd}; the caller puts it. */
json_object *new_req(const char *cmd);
/* Ids from argv, or from stdin with "-" (any whitespace or commas, lines of any length; NUL refused). */
json_object *read_ids(int argc, char **argv);

int cmd_wait(int argc, char **argv);
/* The delivery commands (ctl_hooks.c): argv[0] is the command. Return the exit code. */
int ctl_deliveries(int argc, char **argv);
int ctl_redeliver(int argc, char **argv);
int ctl_hooks(int argc, char **argv);

#endif
