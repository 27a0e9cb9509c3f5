#include "provision.h"

#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "p11.h"
#include "token_internal.h"

enum { PROVISION_MAX_SLOTS = 256 };

static pt_err slot_list(token_module *m, CK_SLOT_ID *slots, CK_ULONG *n)
{
    *n = PROVISION_MAX_SLOTS;
    CK_RV rv = m->fl->C_GetSlotList(CK_TRUE, slots, n);
    if (rv != CKR_OK)
        return token_ckr_fail(rv, "C_GetSlotList", "listing slots");
    return PT_OK;
}

/* The slot of the initialised token labelled label, or (CK_SLOT_ID)-1. */
static pt_err find_labelled(token_module *m, const char *label, CK_SLOT_ID *found)
{
    CK_SLOT_ID slots[PROVISION_MAX_SLOTS];
    CK_ULONG n = 0;
    *found = (CK_SLOT_ID)-1;
    pt_err rc = slot_list(m, slots, &n);
    for (CK_ULONG i = 0; rc == PT_OK && i < n; i++) {
        token_info info;
        if (token_info_read(m, slots[i], &info) == PT_OK && info.initialized &&
            strcmp(info.label, label) == 0)
            *found = slots[i];
    }
    return rc;
}

static pt_err find_free(token_module *m, CK_SLOT_ID *found)
{
    CK_SLOT_ID slots[PROVISION_MAX_SLOTS];
    CK_ULONG n = 0;
    pt_err rc = slot_list(m, slots, &n);
    for (CK_ULONG i = 0; rc == PT_OK && i < n; i++) {
        token_info info;
        if (token_info_read(m, slots[i], &info) == PT_OK && !info.initialized) {
            *found = slots[i];
            return PT_OK;
        }
    }
    if (rc == PT_OK)
        rc = pt_fail(PT_ERR_NOT_FOUND, "module %s has no free slot for a new token",
                     token_module_path(m));
    return rc;
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
    CK_SLOT_ID existing = (CK_SLOT_ID)-1, free_slot = 0;
    pt_err rc = find_labelled(m, label, &existing);
    if (rc != PT_OK)
        return rc;
    if (existing != (CK_SLOT_ID)-1)
        return pt_fail(PT_ERR_EXISTS, "a token labelled '%s' exists already", label);
    rc = find_free(m, &free_slot);
    if (rc != PT_OK)
        return rc;

    /* PKCS#11 labels are blank-padded, not NUL-terminated. */
    CK_UTF8CHAR padded[32];
    memset(padded, ' ', sizeof padded);
    memcpy(padded, label, label_len); // NOLINT(bugprone-not-null-terminated-result)
    CK_RV rv =
        m->fl->C_InitToken(free_slot, token_ck_input(so_pin), (CK_ULONG)strlen(so_pin), padded);
    if (rv != CKR_OK)
        return token_ckr_fail(rv, "C_InitToken", "initialising the token");

    CK_SLOT_ID slot;
    rc = find_labelled(m, label, &slot);
    if (rc == PT_OK && slot == (CK_SLOT_ID)-1)
        rc = pt_fail(PT_ERR_NOT_FOUND, "the new token '%s' cannot be found after initialising it",
                     label);
    if (rc == PT_OK)
        rc = set_user_pin(m, slot, so_pin, user_pin);
    if (rc == PT_OK)
        rc = token_info_read(m, slot, out);
    return rc;
}
