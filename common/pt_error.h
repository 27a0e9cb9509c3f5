/*
 * The project's error type.
 *
 * Functions return a pt_err: PT_OK (0) or a negative code. A function that
 * fails records a human-readable detail with pt_fail() (thread-local, like
 * errno) so that the caller can show what went wrong and what to do next
 * without every function carrying a message buffer.
 */
#ifndef PT_ERROR_H
#define PT_ERROR_H

#include <stdarg.h>

typedef enum pt_err {
    PT_OK = 0,
    PT_ERR_ERRNO = -1,          /* a system call failed; see the detail */
    PT_ERR_CKR = -2,            /* a PKCS#11 call failed; see pt_err_ckr() */
    PT_ERR_OPENSSL = -3,        /* an OpenSSL call failed; detail holds its queue */
    PT_ERR_NOMEM = -4,          /* out of memory */
    PT_ERR_USAGE = -5,          /* bad argument or option from the caller or user */
    PT_ERR_FORMAT = -6,         /* malformed input (file, message, certificate) */
    PT_ERR_LIMIT = -7,          /* input or output over a limit */
    PT_ERR_NOT_FOUND = -8,      /* no token, key, record, device, ... matched */
    PT_ERR_AMBIGUOUS = -9,      /* more than one matched where one is needed */
    PT_ERR_EXISTS = -10,        /* the thing to create exists already */
    PT_ERR_REFUSED = -11,       /* refused by policy */
    PT_ERR_PIN_INCORRECT = -12, /* the token rejected the PIN */
    PT_ERR_PIN_LOCKED = -13,    /* the token's user PIN is locked for good */
    PT_ERR_PIN_FINAL_TRY = -14, /* one more wrong PIN would lock the token */
    PT_ERR_PIN_CHANGE = -15,    /* the token's PIN must be changed first */
    PT_ERR_TOKEN_GONE = -16,    /* token removed or device error */
    PT_ERR_VERIFY = -17,        /* a signature or chain did not verify */
    PT_ERR_IO = -18,            /* reading or writing a file or socket failed */
    PT_ERR_PROTOCOL = -19,      /* a peer broke the protocol */
    PT_ERR_TIMEOUT = -20,       /* a deadline passed */
    PT_ERR_BUSY = -21,          /* at capacity; try again later */
    PT_ERR_CANCELLED = -22,     /* the user declined */
    PT_ERR_UNSUPPORTED = -23,   /* algorithm, size or feature not supported */
    PT_ERR_INTERNAL = -24,      /* a bug: an invariant did not hold */
} pt_err;

/* A short, static description of a code ("malformed input"). */
const char *pt_err_name(pt_err code);

/*
 * Record a detail for code and return code, so a failure reads
 *     return pt_fail(PT_ERR_FORMAT, "offset %zu: record length %u crosses end of file", ...);
 * The detail must never contain a PIN or key material.
 */
pt_err pt_fail(pt_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
pt_err pt_failv(pt_err code, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Like pt_fail(PT_ERR_ERRNO, ...) with ": strerror(errno)" appended. */
pt_err pt_fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Like pt_fail(code, ...) with the first entry of OpenSSL's error queue
 * appended; the queue is cleared.
 */
pt_err pt_fail_openssl(pt_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record a PKCS#11 return value with the detail (used by token/ only). */
pt_err pt_fail_ckr(pt_err code, unsigned long ckr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Put context in front of the current detail: "context: previous detail".
 * Returns code unchanged, so callers can write `return pt_err_context(rc, "...")`.
 */
pt_err pt_err_context(pt_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The detail recorded by the last pt_fail* on this thread, or "" when none. */
const char *pt_err_message(void);

/* The CK_RV saved by the last pt_fail_ckr on this thread (0 when none). */
unsigned long pt_err_ckr(void);

/* Forget the current detail. */
void pt_err_clear(void);

#endif
