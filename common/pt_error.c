#include "pt_error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

enum { PT_ERR_DETAIL_MAX = 1024 };

/* Thread-local like errno: each thread sees the detail of its own last failure. */
static _Thread_local char err_detail[PT_ERR_DETAIL_MAX];
static _Thread_local unsigned long err_ckr;

const char *pt_err_name(pt_err code)
{
    switch (code) {
    case PT_OK:
        return "success";
    case PT_ERR_ERRNO:
        return "system error";
    case PT_ERR_CKR:
        return "PKCS#11 error";
    case PT_ERR_OPENSSL:
        return "OpenSSL error";
    case PT_ERR_NOMEM:
        return "out of memory";
    case PT_ERR_USAGE:
        return "invalid usage";
    case PT_ERR_FORMAT:
        return "malformed input";
    case PT_ERR_LIMIT:
        return "limit exceeded";
    case PT_ERR_NOT_FOUND:
        return "not found";
    case PT_ERR_AMBIGUOUS:
        return "ambiguous match";
    case PT_ERR_EXISTS:
        return "already exists";
    case PT_ERR_REFUSED:
        return "refused by policy";
    case PT_ERR_PIN_INCORRECT:
        return "incorrect PIN";
    case PT_ERR_PIN_LOCKED:
        return "PIN locked";
    case PT_ERR_PIN_FINAL_TRY:
        return "final PIN try";
    case PT_ERR_PIN_CHANGE:
        return "PIN must be changed";
    case PT_ERR_TOKEN_GONE:
        return "token removed or failed";
    case PT_ERR_VERIFY:
        return "verification failed";
    case PT_ERR_IO:
        return "input/output error";
    case PT_ERR_PROTOCOL:
        return "protocol error";
    case PT_ERR_TIMEOUT:
        return "timed out";
    case PT_ERR_BUSY:
        return "busy";
    case PT_ERR_CANCELLED:
        return "cancelled";
    case PT_ERR_UNSUPPORTED:
        return "unsupported";
    case PT_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown error";
}

pt_err pt_failv(pt_err code, const char *fmt, va_list ap)
{
    /* Format aside first: an argument may be pt_err_message() itself. */
    char text[PT_ERR_DETAIL_MAX];
    vsnprintf(text, sizeof text, fmt, ap);
    memcpy(err_detail, text, sizeof err_detail);
    return code;
}

pt_err pt_fail(pt_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pt_failv(code, fmt, ap);
    va_end(ap);
    return code;
}

static void detail_append(const char *suffix)
{
    size_t used = strlen(err_detail);
    if (used < sizeof err_detail - 1)
        snprintf(err_detail + used, sizeof err_detail - used, "%s", suffix);
}

pt_err pt_fail_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    pt_failv(PT_ERR_ERRNO, fmt, ap);
    va_end(ap);
    detail_append(": ");
    detail_append(strerror(saved));
    errno = saved;
    return PT_ERR_ERRNO;
}

pt_err pt_fail_openssl(pt_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pt_failv(code, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        detail_append(" (");
        detail_append(buf);
        detail_append(")");
    }
    ERR_clear_error();
    return code;
}

pt_err pt_fail_ckr(pt_err code, unsigned long ckr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pt_failv(code, fmt, ap);
    va_end(ap);
    err_ckr = ckr;
    return code;
}

pt_err pt_err_context(pt_err code, const char *fmt, ...)
{
    char prefix[PT_ERR_DETAIL_MAX];
    char previous[PT_ERR_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(previous, err_detail, sizeof previous);
    snprintf(err_detail, sizeof err_detail, "%s", prefix);
    detail_append(": ");
    detail_append(previous[0] != '\0' ? previous : pt_err_name(code));
    return code;
}

const char *pt_err_message(void)
{
    return err_detail;
}

unsigned long pt_err_ckr(void)
{
    return err_ckr;
}

void pt_err_clear(void)
{
    err_detail[0] = '\0';
    err_ckr = 0;
}
