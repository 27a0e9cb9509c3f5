#include "provision.h"

#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "p11.h"
#include "token_internal.h"

#define NO_SLOT ((CK_SLOT_ID)-1)

/* Among the module's tokens: the slot of the initialised one labelled label, and the first slot
 * with an uninitialised token; NO_SLOT where there is none. */
static pt_err slots_scan(token_module *m, const char *label, CK_SLOT_ID *labelled,
                         CK_SLOT_ID *free_slot)
{
    *labelled = *free_slot = NO_SLOT;
    token_info *list = NULL;
    size_t n = 0;
    pt_err rc = token_list(m, &list, &n);
    if (rc != PT_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (list[i].initialized && strcmp(list[i].label, label) == 0)
            *labelled = list[i].slot_id;
        else if (!list[i].initialized && *free_slot == NO_SLOT)
            *free_slot = list[i].slot_id;
    }
    OPENSSL_free(list);
    return PT_OK;
}

static pt_err set_user_pin(token_module *m, CK_SLOT_ID slot, const char *so_pin,
                           const char *user_pin)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv = m->fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        return token_ckr_fail(rv, "C_OpenSession", "opening a session on the new token");
    pt_err rc = PT_OK;
    rv = m->fl->C_Login(s, CKU_SO, token_ck_input(so_pin), (CK_ULONG)strlen(so_pin));
    if (rv != CKR_OK) {
        rc = token_ckr_fail(rv, "C_Login", "logging in as SO on the new token");
    } else {
        rv = m->fl->C_InitPIN(s, token_ck_input(user_pin), (CK_ULONG)strlen(user_pin));
        if (rv != CKR_OK)
            rc = token_ckr_fail(rv, "C_InitPIN", "setting the user PIN of the new token");
        (void)m->fl->C_Logout(s);
    }
    (void)m->fl->C_CloseSession(s);
    return rc;
}

pt_err token_provision(token_module *m, const char *label, const char *so_pin, const char *user_pin,
                       token_info *out)
{
    memset(out, 0, sizeof *out);
    size_t label_len = strlen(label);
    if (label_len == 0 || label_len > 32)
        return pt_fail(PT_ERR_USAGE, "a token label has 1 to 32 characters");
    CK_SLOT_ID existing = NO_SLOT, free_slot = NO_SLOT;
    pt_err rc = slots_scan(m, label, &existing, &free_slot);
    if (rc != PT_OK)
        return rc;
    if (existing != NO_SLOT)
        return pt_fail(PT_ERR_EXISTS, "a token labelled '%s' exists already", label);
    if (free_slot == NO_SLOT)
        return pt_fail(PT_ERR_NOT_FOUND, "module %s has no free slot for a new token",
                       token_module_path(m));

    /* PKCS#11 labels are blank-padded, not NUL-terminated. */
    CK_UTF8CHAR padded[32];
    memset(padded, ' ', sizeof padded);
    memcpy(padded, label, label_len); // NOLINT(bugprone-not-null-terminated-result)
    CK_RV rv =
        m->fl->C_InitToken(free_slot, token_ck_input(so_pin), (CK_ULONG)strlen(so_pin), padded);
    if (rv != CKR_OK)
        return token_ckr_fail(rv, "C_InitToken", "initialising the token");

    CK_SLOT_ID slot = NO_SLOT, unused = NO_SLOT;
    rc = slots_scan(m, label, &slot, &unused);
    if (rc == PT_OK && slot == NO_SLOT)
        rc = pt_fail(PT_ERR_NOT_FOUND, "the new token '%s' cannot be found after initialising it",
                     label);
    if (rc == PT_OK)
        rc = set_user_pin(m, slot, so_pin, user_pin);
    if (rc == PT_OK)
        rc = token_info_read(m, slot, out);
    return rc;
}
