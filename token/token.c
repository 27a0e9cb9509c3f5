#include "token.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "p11.h"
#include "token_internal.h"

void token_field_copy(char *dst, size_t dstlen, const unsigned char *src, size_t srclen)
{
    size_t n = srclen < dstlen - 1 ? srclen : dstlen - 1;
    memcpy(dst, src, n);
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        n--;
    dst[n] = '\0';
}

token_pin_state token_pin_state_from_flags(unsigned long flags)
{
    if (flags & CKF_USER_PIN_LOCKED)
        return TOKEN_PIN_STATE_LOCKED;
    if (flags & CKF_USER_PIN_FINAL_TRY)
        return TOKEN_PIN_STATE_FINAL_TRY;
    if (flags & CKF_USER_PIN_TO_BE_CHANGED)
        return TOKEN_PIN_STATE_TO_BE_CHANGED;
    if (flags & CKF_USER_PIN_COUNT_LOW)
        return TOKEN_PIN_STATE_COUNT_LOW;
    return TOKEN_PIN_STATE_OK;
}

const char *token_pin_state_name(token_pin_state s)
{
    switch (s) {
    case TOKEN_PIN_STATE_OK:
        return "ok";
    case TOKEN_PIN_STATE_COUNT_LOW:
        return "count-low";
    case TOKEN_PIN_STATE_FINAL_TRY:
        return "final-try";
    case TOKEN_PIN_STATE_LOCKED:
        return "locked";
    case TOKEN_PIN_STATE_TO_BE_CHANGED:
        return "to-be-changed";
    }
    return "unknown";
}

static void info_from_ck(const CK_TOKEN_INFO *ti, CK_SLOT_ID slot_id, token_info *info)
{
    memset(info, 0, sizeof *info);
    info->slot_id = slot_id;
    token_field_copy(info->label, sizeof info->label, ti->label, sizeof ti->label);
    token_field_copy(info->manufacturer, sizeof info->manufacturer, ti->manufacturerID,
                     sizeof ti->manufacturerID);
    token_field_copy(info->model, sizeof info->model, ti->model, sizeof ti->model);
    token_field_copy(info->serial, sizeof info->serial, ti->serialNumber, sizeof ti->serialNumber);
    info->flags = ti->flags;
    info->initialized = (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
}

static pt_err read_ck_token_info(token_module *m, CK_SLOT_ID slot_id, CK_TOKEN_INFO *ti)
{
    memset(ti, 0, sizeof *ti);
    CK_RV rv = m->fl->C_GetTokenInfo(slot_id, ti);
    if (rv != CKR_OK)
        return token_ckr_fail(rv, "C_GetTokenInfo", "reading the token's state");
    return PT_OK;
}

pt_err token_info_read(token_module *m, CK_SLOT_ID slot_id, token_info *info)
{
    CK_TOKEN_INFO ti;
    pt_err rc = read_ck_token_info(m, slot_id, &ti);
    if (rc == PT_OK)
        info_from_ck(&ti, slot_id, info);
    return rc;
}

enum { TOKEN_MAX_SLOTS = 256 };

pt_err token_list(token_module *m, token_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    CK_SLOT_ID slots[TOKEN_MAX_SLOTS];
    CK_ULONG count = 0;
    pt_err rc = token_module_raw_slots(m, slots, TOKEN_MAX_SLOTS, &count);
    if (rc != PT_OK)
        return rc;
    token_info *list = OPENSSL_zalloc(sizeof *list * (count ? count : 1));
    if (list == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    size_t used = 0;
    for (CK_ULONG i = 0; i < count; i++)
        /* A token pulled out since the slots were listed is simply not listed. */
        if (token_info_read(m, slots[i], &list[used]) == PT_OK)
            used++;
    pt_err_clear();
    *out = list;
    *n = used;
    return PT_OK;
}

const char *token_describe(const token *t, char *buf, size_t len)
{
    snprintf(buf, len, "token '%s' (serial %s)", t->info.label, t->info.serial);
    return buf;
}

/* List what is there, for "no token matches" and "several match" messages. */
static void describe_candidates(token_module *m, char *buf, size_t len)
{
    size_t used = 0;
    token_info *infos = NULL;
    size_t n = 0;
    buf[0] = '\0';
    if (token_list(m, &infos, &n) != PT_OK)
        return;
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        if (!infos[i].initialized)
            continue;
        int w = snprintf(buf + used, len - used, "%s'%s' serial %s", used ? ", " : "",
                         infos[i].label, infos[i].serial);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    OPENSSL_free(infos);
}

pt_err token_select(token_module *m, const token_uri *uri, token **out)
{
    *out = NULL;
    CK_SLOT_ID slots[TOKEN_MAX_SLOTS];
    CK_ULONG count = 0;
    pt_err rc = token_module_raw_slots(m, slots, TOKEN_MAX_SLOTS, &count);
    if (rc != PT_OK)
        return rc;
    CK_TOKEN_INFO found_ti;
    token_info found_info;
    unsigned matches = 0;
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO ti;
        if (read_ck_token_info(m, slots[i], &ti) != PT_OK)
            continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED) || !token_uri_matches_token(uri, &ti, slots[i]))
            continue;
        matches++;
        found_ti = ti;
        info_from_ck(&ti, slots[i], &found_info);
    }
    pt_err_clear();
    char what[1024];
    if (matches == 0) {
        describe_candidates(m, what, sizeof what);
        return pt_fail(PT_ERR_NOT_FOUND, "no token matches %s (tokens present: %s)",
                       token_uri_text(uri), what[0] ? what : "none");
    }
    if (matches > 1) {
        describe_candidates(m, what, sizeof what);
        return pt_fail(PT_ERR_AMBIGUOUS,
                       "%u tokens match %s: %s; add token= or serial= to the URI to choose one",
                       matches, token_uri_text(uri), what);
    }
    PKCS11_SLOT *slot = token_module_libp11_slot(m, &found_ti);
    if (slot == NULL)
        return pt_fail(PT_ERR_NOT_FOUND,
                       "token '%s' (serial %s) appeared while the module was being opened; run "
                       "the command again",
                       found_info.label, found_info.serial);
    token *t = OPENSSL_zalloc(sizeof *t);
    if (t == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    t->module = m;
    t->slot = slot;
    t->slot_id = found_info.slot_id;
    t->info = found_info;
    *out = t;
    return PT_OK;
}

pt_err token_open(const char *uri_text, const char *module_override, token **out)
{
    *out = NULL;
    token_uri *uri = NULL;
    token_module *m = NULL;
    pt_err rc = token_uri_parse(uri_text, &uri);
    if (rc != PT_OK)
        return rc;
    const char *path = token_uri_module_path(uri);
    if (path == NULL)
        path = module_override;
    token *t = NULL;
    rc = token_module_open(path, &m);
    if (rc == PT_OK)
        rc = token_select(m, uri, &t);
    if (rc == PT_OK && t != NULL) {
        t->owns_module = true;
        m = NULL;
        *out = t;
    }
    token_module_close(m);
    token_uri_free(uri);
    return rc;
}

const token_info *token_get_info(const token *t)
{
    return &t->info;
}

bool token_is_logged_in(const token *t)
{
    return t->logged_in;
}

pt_err token_note_failure(token *t, pt_err rc)
{
    if (rc == PT_ERR_TOKEN_GONE)
        t->gone = true;
    return rc;
}

pt_err token_refresh(token *t)
{
    if (t->gone)
        return pt_fail(PT_ERR_TOKEN_GONE, "token '%s' was removed or failed earlier in this run",
                       t->info.label);
    token_info info;
    pt_err rc = token_info_read(t->module, t->slot_id, &info);
    if (rc != PT_OK)
        return token_note_failure(t, rc);
    if (strcmp(info.serial, t->info.serial) != 0) {
        t->gone = true;
        return pt_fail(PT_ERR_TOKEN_GONE,
                       "a different token (serial %s) is now in the slot of token '%s' (serial %s)",
                       info.serial, t->info.label, t->info.serial);
    }
    t->info = info;
    return PT_OK;
}

pt_err token_check_present(token *t, const char *what)
{
    pt_err rc = token_refresh(t);
    if (rc != PT_OK)
        return pt_err_context(rc, "%s", what);
    return PT_OK;
}

pt_err token_session_ensure(token *t)
{
    if (t->session != CK_INVALID_HANDLE)
        return PT_OK;
    CK_RV rv = t->module->fl->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                            NULL, &t->session);
    if (rv == CKR_TOKEN_WRITE_PROTECTED)
        rv = t->module->fl->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION, NULL, NULL, &t->session);
    if (rv != CKR_OK) {
        t->session = CK_INVALID_HANDLE;
        return token_note_failure(t, token_ckr_fail(rv, "C_OpenSession", "opening a session"));
    }
    return PT_OK;
}

void token_close(token *t)
{
    if (t == NULL)
        return;
    if (t->session != CK_INVALID_HANDLE && !t->gone) {
        if (t->logged_in)
            (void)t->module->fl->C_Logout(t->session);
        (void)t->module->fl->C_CloseSession(t->session);
    }
    if (t->owns_module)
        token_module_close(t->module);
    OPENSSL_free(t);
}
