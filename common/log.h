/*
 * Logging to standard error, for commands and for daemons run by systemd
 * (which timestamps stderr itself). Never log a PIN or key material.
 */
#ifndef PT_LOG_H
#define PT_LOG_H

typedef enum pt_log_level {
    PT_LOG_ERROR = 0,
    PT_LOG_WARN = 1,
    PT_LOG_INFO = 2,
    PT_LOG_DEBUG = 3,
} pt_log_level;

/* Set once at start-up: the program name prefixed to messages and the most verbose level shown. */
void pt_log_init(const char *progname, pt_log_level level);
/* Parse "error", "warn", "info" or "debug"; returns -1 for anything else. */
int pt_log_level_parse(const char *name);
const char *pt_log_progname(void);

void pt_log(pt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pt_log_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)
#define pt_log_warn(...)  pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_info(...)  pt_log(PT_LOG_INFO, __VA_ARGS__)
#define pt_log_debug(...) pt_log(PT_LOG_DEBUG, __VA_ARGS__)

#endif
