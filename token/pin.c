#include "pin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "fileio.h"
#include "tty.h"

pt_err token_pin_source_from_uri(const char *value, token_pin_source *out)
{
    memset(out, 0, sizeof *out);
    const char *path = value;
    if (strncmp(value, "file://", 7) == 0)
        path = value + 7;
    else if (strncmp(value, "file:", 5) == 0)
        path = value + 5;
    else if (strchr(value, ':') != NULL && value[0] != '/')
        return pt_fail(PT_ERR_USAGE, "pin-source '%s' is not supported; use pin-source=file:PATH",
                       value);
    if (path[0] == '\0')
        return pt_fail(PT_ERR_USAGE, "pin-source has an empty path");
    out->kind = TOKEN_PIN_FROM_FILE;
    out->path = path;
    out->fd = -1;
    return PT_OK;
}

pt_err token_pin_source_from_fd(const char *text, token_pin_source *out)
{
    memset(out, 0, sizeof *out);
    long fd;
    if (!pt_cli_parse_long(text, 0, 1 << 20, &fd))
        return pt_fail(PT_ERR_USAGE, "--pin-fd needs a file descriptor number, not '%s'", text);
    out->kind = TOKEN_PIN_FROM_FD;
    out->fd = (int)fd;
    out->path = NULL;
    return PT_OK;
}

bool token_pin_source_is_prompt(const token_pin_source *s)
{
    return s == NULL || s->kind == TOKEN_PIN_FROM_PROMPT;
}

const char *token_pin_source_describe(const token_pin_source *s, char *buf, size_t len)
{
    if (token_pin_source_is_prompt(s))
        snprintf(buf, len, "the terminal");
    else if (s->kind == TOKEN_PIN_FROM_FILE)
        snprintf(buf, len, "file %s", s->path);
    else
        snprintf(buf, len, "file descriptor %d", s->fd);
    return buf;
}

static char *pin_alloc(void)
{
    return OPENSSL_secure_zalloc(TOKEN_PIN_MAX + 1);
}

void token_pin_free(char *pin)
{
    if (pin != NULL)
        OPENSSL_secure_clear_free(pin, TOKEN_PIN_MAX + 1);
}

/* Read up to the next newline, one byte at a time so the next PIN stays in the descriptor. */
static pt_err pin_read_fd_line(int fd, char *pin)
{
    size_t used = 0;
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return pt_fail_errno("reading the PIN from file descriptor %d", fd);
        if (n == 0) {
            if (used == 0)
                return pt_fail(PT_ERR_IO, "no PIN could be read from file descriptor %d", fd);
            break;
        }
        if (c == '\n')
            break;
        if (used == TOKEN_PIN_MAX)
            return pt_fail(PT_ERR_LIMIT, "the PIN from file descriptor %d is over %d characters",
                           fd, TOKEN_PIN_MAX);
        pin[used++] = c;
    }
    if (used > 0 && pin[used - 1] == '\r')
        pin[--used] = '\0';
    return PT_OK;
}

static pt_err pin_read_file(const char *path, char *pin)
{
    uint8_t *data = NULL;
    size_t len = 0;
    pt_err rc = pt_file_read(path, 4096, &data, &len);
    if (rc != PT_OK)
        return pt_err_context(rc, "cannot read the PIN file");
    size_t n = 0;
    while (n < len && data[n] != '\n' && data[n] != '\r')
        n++;
    if (n == 0)
        rc = pt_fail(PT_ERR_FORMAT, "PIN file %s is empty", path);
    else if (n > TOKEN_PIN_MAX)
        rc = pt_fail(PT_ERR_LIMIT, "the PIN in %s is over %d characters", path, TOKEN_PIN_MAX);
    else
        memcpy(pin, data, n);
    OPENSSL_clear_free(data, len);
    return rc;
}

pt_err token_pin_read(const token_pin_source *s, const char *prompt, char **out)
{
    *out = NULL;
    char *pin = pin_alloc();
    if (pin == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc;
    if (token_pin_source_is_prompt(s)) {
        if (!pt_tty_available())
            rc = pt_fail(PT_ERR_USAGE, "a PIN is needed but there is no terminal to ask on; give "
                                       "pin-source=file:PATH in the URI or --pin-fd N");
        else
            rc = pt_tty_read_line(prompt, false, pin, TOKEN_PIN_MAX + 1);
    } else if (s->kind == TOKEN_PIN_FROM_FILE) {
        rc = pin_read_file(s->path, pin);
    } else {
        rc = pin_read_fd_line(s->fd, pin);
    }
    if (rc == PT_OK && pin[0] == '\0')
        rc = pt_fail(PT_ERR_FORMAT, "an empty PIN was given");
    if (rc != PT_OK) {
        token_pin_free(pin);
        return rc;
    }
    *out = pin;
    return PT_OK;
}
