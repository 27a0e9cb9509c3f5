/*
 * The thin layer every PKCS#11 and libp11 call goes through: it names the
 * function and the CK_RV in the log and turns the CK_RV into the project's
 * error with a message a user can act on.
 */
#ifndef TOKEN_P11_H
#define TOKEN_P11_H

#include <p11-kit/pkcs11.h>

#include "pt_error.h"

/* "CKR_PIN_INCORRECT", or "CKR_0x..." for an unknown value (static or thread-local text). */
const char *token_ckr_name(CK_RV rv);

/* True for the return values that mean the token is gone or broken. */
int token_ckr_is_gone(CK_RV rv);

/*
 * Map rv from a call of function (e.g. "C_Sign") while doing what (e.g.
 * "signing with key 'SAST'") to a pt_err, record the detail and the CK_RV,
 * and log the call at debug level.
 */
pt_err token_ckr_fail(CK_RV rv, const char *function, const char *what);

/*
 * Same for a failed libp11 call: the CK_RV is taken from OpenSSL's error
 * queue where libp11 put it (0 when it did not); the queue is cleared.
 */
pt_err token_libp11_fail(const char *function, const char *what);

/*
 * PKCS#11 takes its inputs (PINs, labels, ids, templates) through non-const
 * pointers that it never writes through; this says so in one place.
 */
static inline void *token_ck_input(const void *p)
{
    union {
        const void *in;
        void *out;
    } u = {.in = p};
    return u.out;
}

#endif
