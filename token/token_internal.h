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
    void *dl;                 /* our reference to the library libp11 loaded */
    CK_FUNCTION_LIST_PTR fl;  /* our function list (p11-kit's proxy gives each caller its own) */
    bool fl_initialised_here; /* we called C_Initialize on fl, so we finalize it */
    PKCS11_SLOT *slots;       /* libp11's slots, enumerated once, when the module is opened */
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

/* The one private key labelled label, found on session h of t (not_found, ambiguous). */
pt_err token_private_key_find(token *t, CK_SESSION_HANDLE h, const char *label,
                              CK_OBJECT_HANDLE *key);

/* Fill info from a fresh C_GetTokenInfo of slot_id (a slot id of m->fl). */
pt_err token_info_read(token_module *m, CK_SLOT_ID slot_id, token_info *info);

/*
 * The slots of m->fl that hold a token (C_GetSlotList), at most max; *n is
 * how many. Slot ids of m->fl may differ from libp11's (p11-kit's proxy
 * numbers each instance's slots itself): never mix the two.
 */
pt_err token_module_raw_slots(token_module *m, CK_SLOT_ID *slots, CK_ULONG max, CK_ULONG *n);

/* libp11's slot holding the token described by ti, or NULL. */
PKCS11_SLOT *token_module_libp11_slot(token_module *m, const CK_TOKEN_INFO *ti);

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
