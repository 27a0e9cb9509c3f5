#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Set once at start-up, read-only afterwards. */
static const char *log_progname = "phonetrust";
static pt_log_level log_max = PT_LOG_INFO;

void pt_log_init(const char *progname, pt_log_level level)
{
    if (progname != NULL) {
        const char *slash = strrchr(progname, '/');
        log_progname = slash ? slash + 1 : progname;
    }
    log_max = level;
}

const char *pt_log_progname(void)
{
    return log_progname;
}

int pt_log_level_parse(const char *name)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void pt_log(pt_log_level level, const char *fmt, ...)
{
    static const char *const prefixes[] = {"error: ", "warning: ", "", "debug: "};
    if (level > log_max)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line so that concurrent threads do not interleave. */
    fprintf(stderr, "%s: %s%s\n", log_progname, prefixes[level], line);
}
