#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

int pt_cli_usage_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", pt_log_progname(), msg,
            pt_log_progname());
    return PT_EXIT_USAGE;
}

int pt_cli_exit_code(pt_err rc)
{
    if (rc == PT_OK)
        return PT_EXIT_OK;
    return rc == PT_ERR_USAGE ? PT_EXIT_USAGE : PT_EXIT_FAIL;
}

int pt_cli_report(pt_err rc, const char *context)
{
    if (rc == PT_OK)
        return PT_EXIT_OK;
    const char *detail = pt_err_message();
    if (detail[0] == '\0')
        detail = pt_err_name(rc);
    if (context != NULL && context[0] != '\0')
        fprintf(stderr, "%s: %s: %s\n", pt_log_progname(), context, detail);
    else
        fprintf(stderr, "%s: %s\n", pt_log_progname(), detail);
    return pt_cli_exit_code(rc);
}

bool pt_cli_parse_long(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}
