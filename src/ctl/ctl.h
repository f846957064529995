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

extern const char *ctl_sock_path;   /* the control socket */
extern bool ctl_json_out;           /* --json */
extern int ctl_fd;                  /* the connection, -1 before ctl_connect() */
extern struct buf ctl_rbuf;         /* bytes read and not yet an answer */

/* Prints a usage error and exits 64. */
void ctl_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Connects ctl_fd to ctl_sock_path; exits 4 when the daemon cannot be reached. */
void ctl_connect(void);
/* Sends req (NULL: send nothing) and reads one answer line; NULL after timeout_ms (< 0: no limit). */
json_object *ctl_request(json_object *req, int timeout_ms);
/* Member key of o as a string ("" when absent), or as a number (0). */
const char *ctl_str(json_object *o, const char *key);
int64_t ctl_num(json_object *o, const char *key);
/* Checks ok; prints the daemon's error and exits 3 if not. */
void ctl_check(json_object *ans);
void ctl_print_json(json_object *o);
/*
 * Connects, sends req (taken) and checks the answer (exits 3 when refused).
 * With --json prints the answer and returns NULL; else returns it (the caller puts it).
 */
json_object *ctl_ask(json_object *req);
/* A new request object {"cmd": cmd}; the caller puts it. */
json_object *ctl_new_req(const char *cmd);
/* Ids from argv, or from stdin with "-" (any whitespace or commas, lines of any length; NUL refused). */
json_object *ctl_read_ids(int argc, char **argv);

int ctl_wait(int argc, char **argv);
/* The delivery commands (ctl_hooks.c): argv[0] is the command. Return the exit code. */
int ctl_deliveries(int argc, char **argv);
int ctl_redeliver(int argc, char **argv);
int ctl_hooks(int argc, char **argv);

#endif
