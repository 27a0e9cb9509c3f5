#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "fileio.h"

static int tty_open(void)
{
    return open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
}

bool pt_tty_available(void)
{
    int fd = tty_open();
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

void pt_tty_printf(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    int fd = tty_open();
    if (fd < 0) {
        fputs(text, stderr);
        return;
    }
    (void)pt_write_all(fd, text, strlen(text));
    close(fd);
}

/* Ctrl-C while a prompt is open only interrupts the read, so echo can be restored. */
static void on_interrupt(int sig)
{
    (void)sig;
}

pt_err pt_tty_read_line(const char *prompt, bool echo, char *buf, size_t len)
{
    if (len == 0)
        return pt_fail(PT_ERR_INTERNAL, "no room for the answer");
    buf[0] = '\0';
    int fd = tty_open();
    if (fd < 0)
        return pt_fail(PT_ERR_USAGE, "no terminal to ask on (/dev/tty: %s)", strerror(errno));

    struct termios saved, quiet;
    bool restore = false;
    if (!echo && tcgetattr(fd, &saved) == 0) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        if (tcsetattr(fd, TCSADRAIN, &quiet) == 0)
            restore = true;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt; /* no SA_RESTART: read() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    pt_err rc = pt_write_all(fd, prompt, strlen(prompt));
    size_t used = 0;
    bool overflow = false;
    while (rc == PT_OK) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR) {
            rc = pt_fail(PT_ERR_CANCELLED, "cancelled at the prompt");
            break;
        }
        if (n < 0) {
            rc = pt_fail_errno("reading from the terminal");
            break;
        }
        if (n == 0) {
            rc = pt_fail(PT_ERR_CANCELLED, "end of input at the prompt");
            break;
        }
        if (c == '\n' || c == '\r')
            break;
        if (used + 1 < len)
            buf[used++] = c;
        else
            overflow = true;
        c = 0;
    }
    buf[used] = '\0';
    if (rc == PT_OK && overflow)
        rc = pt_fail(PT_ERR_LIMIT, "answer longer than %zu characters", len - 1);
    if (rc != PT_OK)
        OPENSSL_cleanse(buf, len);

    if (restore) {
        tcsetattr(fd, TCSADRAIN, &saved);
        (void)pt_write_all(fd, "\n", 1); /* the typed newline was not echoed */
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    close(fd);
    return rc;
}
