/* Internal to embedwatchctl: shared by ctl.c (commands), ctl_io.c (plumbing) and ctl_wait.c. */
#ifndef EW_CTL_H
#define EW_CTL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define EXIT_PARTIAL 1
#define EXIT_TIMEOUT 2
#define EXIT_REFUSED 3
#define EXIT_UNREACHABLE 4
#define EXIT_NO_ANSWER 5            /* the daemon did not answer (or accept) within the timeout */
#define EXIT_OUTPUT 6               /* the output could not be written (a closed pipe: EPIPE) */
#define EXIT_USAGE 64

/* How long a command other than wait waits for each answer: --timeout, EMBEDWATCH_TIMEOUT, or 30 s. */
#define CTL_TIMEOUT_DEFAULT_MS 30000
extern int ctl_timeout_ms;

extern const char *ctl_sock_path;   /* the control socket */
extern bool ctl_json_out;           /* --json */
extern int ctl_fd;                  /* the connection, -1 before ctl_connect() */
extern struct buf ctl_rbuf;         /* bytes read and not yet an answer */

/* Prints a usage error (escaped) and exits 64. */
void ctl_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints "embedwatchctl: MESSAGE" on stderr; text from outside in it must have gone through ctl_text. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Says the daemon did not answer within ctl_timeout_ms and exits 5. */
void ctl_die_no_answer(void) __attribute__((noreturn));
/*
 * s as printable text: control characters and bytes that are not UTF-8 as \xNN
 * (util_escape_text). The result is s itself or a buffer valid for 32 more calls.
 */
const char *ctl_text(const char *s);
/* A connection to ctl_sock_path within timeout_ms: the fd, or a negative errno (-ETIMEDOUT). */
int ctl_try_connect(int timeout_ms);
/* Connects ctl_fd to ctl_sock_path; exits 4 when the daemon cannot be reached, 5 when it does not accept in time. */
void ctl_connect(void);
/*
 * Sends req (NULL: send nothing) and reads one answer line; NULL after
 * timeout_ms (< 0: no limit). Exits 4 when the connection is lost (EPIPE included).
 */
json_object *ctl_request(json_object *req, int timeout_ms);
/* ctl_request within ctl_timeout_ms; exits 5 when no answer came. */
json_object *ctl_call(json_object *req);
/* Member key of o as printable text (ctl_text; "" when absent), or as a number (0). */
const char *ctl_str(json_object *o, const char *key);
int64_t ctl_num(json_object *o, const char *key);
/* Checks ok; prints the daemon's error and exits 3 if not. */
void ctl_check(json_object *ans);
/* Prints o pretty (ctl_json_text) and checks the output. */
void ctl_print_json(json_object *o);
/* Writes JSON text s to f with DEL and C1 controls as \u escapes and bytes that are not UTF-8 as \ufffd. */
void ctl_json_text(const char *s, FILE *f);
/* Flushes stdout; says why and exits 6 when the output could not be written (EPIPE: the reader went away). */
void ctl_check_output(void);
/*
 * Connects, sends req (taken) and checks the answer (exits 3 when refused).
 * With --json prints the answer and returns NULL; else returns it (the caller puts it).
 */
json_object *ctl_ask(json_object *req);
/* A new request object {"cmd": cmd}; the caller puts it. */
json_object *ctl_new_req(const char *cmd);
/* --account's value for cmd: NAME when it is [a-z0-9_-]{1,32}, else a usage error saying so. */
const char *ctl_account_arg(const char *cmd, const char *name);
/* Adds "account": account to req unless account is NULL. */
void ctl_add_account(json_object *req, const char *account);
/* Ids from argv, or from stdin with "-" (any whitespace or commas, lines of any length; NUL refused). */
json_object *ctl_read_ids(int argc, char **argv);

int ctl_wait(int argc, char **argv);
/* The delivery commands (ctl_hooks.c): argv[0] is the command. Return the exit code. */
int ctl_deliveries(int argc, char **argv);
int ctl_redeliver(int argc, char **argv);
int ctl_hooks(int argc, char **argv);

#endif
