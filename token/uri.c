#include "uri.h"

#include <string.h>

#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

struct token_uri {
    P11KitUri *uri;
    char *text;
    char *object_label; /* NUL-terminated copy of CKA_LABEL */
};

pt_err token_uri_parse(const char *text, token_uri **out)
{
    *out = NULL;
    if (strncmp(text, "pkcs11:", 7) != 0)
        return pt_fail(PT_ERR_USAGE,
                       "'%s' is not a PKCS#11 URI (expected pkcs11:token=...;object=...)", text);
    token_uri *u = OPENSSL_zalloc(sizeof *u);
    if (u == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc = PT_OK;
    u->uri = p11_kit_uri_new();
    u->text = OPENSSL_strdup(text);
    if (u->uri == NULL || u->text == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int r = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, u->uri);
    if (r != P11_KIT_URI_OK) {
        rc = pt_fail(PT_ERR_USAGE, "invalid PKCS#11 URI '%s': %s", text, p11_kit_uri_message(r));
        goto fail;
    }
    if (p11_kit_uri_any_unrecognized(u->uri)) {
        rc = pt_fail(PT_ERR_USAGE,
                     "PKCS#11 URI '%s' has an attribute phonetrust does not know: use token, "
                     "manufacturer, serial, model, slot-id, object, id and type before '?', and "
                     "pin-source and module-path after it (pkcs11:token=X?pin-source=file:P)",
                     text);
        goto fail;
    }
    if (p11_kit_uri_get_pin_value(u->uri) != NULL) {
        rc = pt_fail(PT_ERR_USAGE,
                     "pin-value is not accepted in a PKCS#11 URI: a PIN on the command line can be "
                     "seen by other users; use pin-source=file:PATH, --pin-fd N or the prompt");
        goto fail;
    }
    CK_ATTRIBUTE_PTR label = p11_kit_uri_get_attribute(u->uri, CKA_LABEL);
    if (label != NULL && label->pValue != NULL) {
        u->object_label = OPENSSL_strndup(label->pValue, label->ulValueLen);
        if (u->object_label == NULL) {
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    *out = u;
    return PT_OK;
fail:
    token_uri_free(u);
    return rc;
}

void token_uri_free(token_uri *u)
{
    if (u == NULL)
        return;
    if (u->uri != NULL)
        p11_kit_uri_free(u->uri);
    OPENSSL_free(u->text);
    OPENSSL_free(u->object_label);
    OPENSSL_free(u);
}

const char *token_uri_text(const token_uri *u)
{
    return u->text;
}

const char *token_uri_module_path(const token_uri *u)
{
    return p11_kit_uri_get_module_path(u->uri);
}

const char *token_uri_pin_source(const token_uri *u)
{
    return p11_kit_uri_get_pin_source(u->uri);
}

const char *token_uri_object_label(const token_uri *u)
{
    return u->object_label;
}

bool token_uri_object_id(const token_uri *u, const uint8_t **id, size_t *len)
{
    CK_ATTRIBUTE_PTR a = p11_kit_uri_get_attribute(u->uri, CKA_ID);
    if (a == NULL || a->pValue == NULL)
        return false;
    *id = a->pValue;
    *len = a->ulValueLen;
    return true;
}

bool token_uri_object_class(const token_uri *u, unsigned long *cls)
{
    CK_ATTRIBUTE_PTR a = p11_kit_uri_get_attribute(u->uri, CKA_CLASS);
    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(CK_OBJECT_CLASS))
        return false;
    CK_OBJECT_CLASS c;
    memcpy(&c, a->pValue, sizeof c);
    *cls = c;
    return true;
}

bool token_uri_matches_token(const token_uri *u, const void *info, unsigned long slot_id)
{
    /* p11_kit_uri_match_token_info takes a non-const pointer but does not modify it. */
    CK_TOKEN_INFO copy;
    memcpy(&copy, info, sizeof copy);
    if (!p11_kit_uri_match_token_info(u->uri, &copy))
        return false;
    CK_SLOT_ID want = p11_kit_uri_get_slot_id(u->uri);
    return want == (CK_SLOT_ID)-1 || want == slot_id;
}

bool token_uri_matches_any_token(const token_uri *u)
{
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u->uri);
    static const CK_TOKEN_INFO empty;
    bool no_token_attrs =
        ti == NULL ||
        (memcmp(ti->label, empty.label, sizeof ti->label) == 0 &&
         memcmp(ti->manufacturerID, empty.manufacturerID, sizeof ti->manufacturerID) == 0 &&
         memcmp(ti->model, empty.model, sizeof ti->model) == 0 &&
         memcmp(ti->serialNumber, empty.serialNumber, sizeof ti->serialNumber) == 0);
    return no_token_attrs && p11_kit_uri_get_slot_id(u->uri) == (CK_SLOT_ID)-1;
}
