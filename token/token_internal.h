/*
 * What the token/ modules share among themselves. Not for use outside token/.
 */
#ifndef TOKEN_INTERNAL_H
#define TOKEN_INTERNAL_H

#include <stdbool.h>

#include <libp11.h>
#include <p11-kit/pkcs11.h>

#include "token.h"

struct token_module {
    char *path;
    PKCS11_CTX *ctx;
    void *dl;                /* our reference to the library libp11 loaded */
    CK_FUNCTION_LIST_PTR fl; /* the same function list libp11 uses */
    PKCS11_SLOT *slots;      /* enumerated once, when the module is opened */
    unsigned int nslots;
};

struct token {
    token_module *module;
    bool owns_module;
    PKCS11_SLOT *slot;
    CK_SLOT_ID slot_id;
    token_info info;
    CK_SESSION_HANDLE session; /* ours, kept open while logged in (0: none) */
    bool logged_in;
    bool gone; /* removed or failed: libp11 must not touch it again */
};

/* Fill info from a fresh C_GetTokenInfo of slot_id. */
pt_err token_info_read(token_module *m, CK_SLOT_ID slot_id, token_info *info);

/*
 * Check that t is still present and working before handing it to libp11
 * (libp11 0.4.12 waits forever when it cannot open a session). Marks t gone
 * and fails with PT_ERR_TOKEN_GONE otherwise.
 */
pt_err token_check_present(token *t, const char *what);

/* Open our session (read-write when the token allows) if none is open. */
pt_err token_session_ensure(token *t);

/* Record that an operation failed with rc; marks t gone for PT_ERR_TOKEN_GONE. */
pt_err token_note_failure(token *t, pt_err rc);

/* Copy a blank-padded PKCS#11 text field into a trimmed C string. */
void token_field_copy(char *dst, size_t dstlen, const unsigned char *src, size_t srclen);

#endif
