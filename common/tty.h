/*
 * Questions asked at the user's terminal (/dev/tty), never on stdin/stdout,
 * so that prompts work while output is redirected and are driven by a
 * pseudo-terminal in tests.
 */
#ifndef PT_TTY_H
#define PT_TTY_H

#include <stdbool.h>
#include <stddef.h>

#include "pt_error.h"

/* True when a controlling terminal can be opened for questions. */
bool pt_tty_available(void);

/*
 * Print prompt on the terminal and read one line into buf (without the line
 * end). With echo false the typed characters are not shown (PINs). A line
 * longer than len-1 is refused (PT_ERR_LIMIT) and wiped; end of input or
 * Ctrl-C gives PT_ERR_CANCELLED.
 */
pt_err pt_tty_read_line(const char *prompt, bool echo, char *buf, size_t len);

/* Write text to the terminal (falls back to stderr when there is none). */
void pt_tty_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
