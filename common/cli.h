/*
 * Conventions shared by every command: exit codes and usage errors.
 */
#ifndef PT_CLI_H
#define PT_CLI_H

#include <stdbool.h>

#include "pt_error.h"

enum {
    PT_EXIT_OK = 0,    /* success */
    PT_EXIT_FAIL = 1,  /* the operation failed */
    PT_EXIT_USAGE = 2, /* the command line was wrong */
};

/* Print "prog: message" and "Try 'prog --help'." to stderr; returns PT_EXIT_USAGE. */
int pt_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "prog: <context>: <detail of the last failure>" to stderr; returns the exit code for rc. */
int pt_cli_report(pt_err rc, const char *context);

/* The exit code for an error: PT_EXIT_USAGE for PT_ERR_USAGE, PT_EXIT_FAIL otherwise. */
int pt_cli_exit_code(pt_err rc);

/* Parse a decimal integer in [min, max]; false on anything else. */
bool pt_cli_parse_long(const char *text, long min, long max, long *out);

#endif
