#include "keygen.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include "cli.h"
#include "log.h"
#include "p11.h"
#include "token_internal.h"

enum { KEYGEN_RSA_MIN = 2048, KEYGEN_RSA_MAX = 4096, KEYGEN_MAX_OBJECTS = 64 };

pt_err token_keygen_spec_parse(const char *text, token_keygen_spec *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "rsa:", 4) == 0) {
        long bits;
        if (!pt_cli_parse_long(text + 4, KEYGEN_RSA_MIN, KEYGEN_RSA_MAX, &bits) || bits % 8 != 0)
            return pt_fail(PT_ERR_USAGE, "'%s': RSA keys must be 2048 to 4096 bits (e.g. rsa:2048)",
                           text);
        out->type = EVP_PKEY_RSA;
        out->bits = (int)bits;
        return PT_OK;
    }
    if (strncmp(text, "ec:", 3) == 0) {
        static const struct {
            const char *name;
            int nid;
        } curves[] = {
            {"P-256", NID_X9_62_prime256v1}, {"P-384", NID_secp384r1}, {"P-521", NID_secp521r1}};
        for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
            if (strcmp(text + 3, curves[i].name) == 0) {
                out->type = EVP_PKEY_EC;
                out->curve_nid = curves[i].nid;
                return PT_OK;
            }
        }
        return pt_fail(PT_ERR_USAGE, "'%s': EC keys must be on P-256, P-384 or P-521", text);
    }
    return pt_fail(PT_ERR_USAGE, "'%s' is not a key type; use rsa:BITS or ec:CURVE", text);
}

const char *token_keygen_spec_name(const token_keygen_spec *s, char *buf, size_t len)
{
    if (s->type == EVP_PKEY_RSA)
        snprintf(buf, len, "rsa:%d", s->bits);
    else
        snprintf(buf, len, "ec:%s", EC_curve_nid2nist(s->curve_nid));
    return buf;
}

pt_err token_random_id(uint8_t *id, size_t len)
{
    if (RAND_bytes(id, (int)len) != 1)
        return pt_fail_openssl(PT_ERR_OPENSSL, "no random bytes for a key id");
    return PT_OK;
}

static pt_err require_session(token *t, const char *what)
{
    pt_err rc = token_check_present(t, what);
    if (rc == PT_OK)
        rc = token_session_ensure(t);
    return rc;
}

/* DER of the curve's OID, for CKA_EC_PARAMS. */
static pt_err ec_params_der(int nid, uint8_t **der, int *len)
{
    *der = NULL;
    ASN1_OBJECT *obj = OBJ_nid2obj(nid);
    *len = obj ? i2d_ASN1_OBJECT(obj, der) : -1;
    if (*len <= 0)
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode the curve");
    return PT_OK;
}

static pt_err bool_attr(token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, bool *out)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {type, &v, sizeof v};
    CK_RV rv = t->module->fl->C_GetAttributeValue(t->session, h, &a, 1);
    if (rv != CKR_OK || a.ulValueLen != sizeof v)
        return token_note_failure(t,
                                  token_ckr_fail(rv ? rv : CKR_ATTRIBUTE_VALUE_INVALID,
                                                 "C_GetAttributeValue", "reading a key attribute"));
    *out = v == CK_TRUE;
    return PT_OK;
}

/* Refuse (and destroy) a private key the token did not keep sensitive and non-extractable. */
static pt_err check_private_key_protected(token *t, CK_OBJECT_HANDLE priv)
{
    bool sensitive = false, extractable = true, on_token = false;
    pt_err rc = bool_attr(t, priv, CKA_SENSITIVE, &sensitive);
    if (rc == PT_OK)
        rc = bool_attr(t, priv, CKA_EXTRACTABLE, &extractable);
    if (rc == PT_OK)
        rc = bool_attr(t, priv, CKA_TOKEN, &on_token);
    if (rc != PT_OK)
        return rc;
    if (!sensitive || extractable || !on_token)
        return pt_fail(PT_ERR_REFUSED,
                       "the token generated a key that is not sensitive, non-extractable and "
                       "permanent as asked; it was destroyed");
    return PT_OK;
}

pt_err token_keypair_generate(token *t, const token_keygen_spec *spec, const char *label,
                              const uint8_t *id, size_t id_len)
{
    pt_err rc = require_session(t, "generating a key pair");
    if (rc != PT_OK)
        return rc;
    if (!t->logged_in)
        return pt_fail(PT_ERR_INTERNAL, "generating a key before logging in");

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
    CK_KEY_TYPE key_type = spec->type == EVP_PKEY_RSA ? CKK_RSA : CKK_EC;
    CK_ULONG bits = (CK_ULONG)spec->bits;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    uint8_t *ec_params = NULL;
    int ec_params_len = 0;
    CK_ULONG label_len = (CK_ULONG)strlen(label);

    CK_ATTRIBUTE pub[12] = {
        {CKA_CLASS, &pub_class, sizeof pub_class},
        {CKA_KEY_TYPE, &key_type, sizeof key_type},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &no, sizeof no},
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_ENCRYPT, &no, sizeof no},
        {CKA_WRAP, &no, sizeof no},
        {CKA_LABEL, token_ck_input(label), label_len},
        {CKA_ID, token_ck_input(id), (CK_ULONG)id_len},
    };
    CK_ULONG npub = 9;
    CK_ATTRIBUTE priv[] = {
        {CKA_CLASS, &priv_class, sizeof priv_class},
        {CKA_KEY_TYPE, &key_type, sizeof key_type},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},
        {CKA_DECRYPT, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},
        {CKA_DERIVE, &no, sizeof no},
        {CKA_LABEL, token_ck_input(label), label_len},
        {CKA_ID, token_ck_input(id), (CK_ULONG)id_len},
    };
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    if (spec->type == EVP_PKEY_RSA) {
        pub[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
        CK_ATTRIBUTE e = {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent};
        pub[npub++] = e;
    } else {
        mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        rc = ec_params_der(spec->curve_nid, &ec_params, &ec_params_len);
        if (rc != PT_OK)
            return rc;
        pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, ec_params, (CK_ULONG)ec_params_len};
    }

    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    char spec_name[32];
    pt_log_debug("generating %s key pair '%s' on token '%s'",
                 token_keygen_spec_name(spec, spec_name, sizeof spec_name), label, t->info.label);
    CK_RV rv = t->module->fl->C_GenerateKeyPair(t->session, &mech, pub, npub, priv,
                                                sizeof priv / sizeof priv[0], &hpub, &hpriv);
    OPENSSL_free(ec_params);
    if (rv != CKR_OK)
        return token_note_failure(
            t, token_ckr_fail(rv, "C_GenerateKeyPair", "generating a key pair on the token"));
    rc = check_private_key_protected(t, hpriv);
    if (rc != PT_OK) {
        (void)t->module->fl->C_DestroyObject(t->session, hpriv);
        (void)t->module->fl->C_DestroyObject(t->session, hpub);
    }
    return rc;
}

pt_err token_cert_store(token *t, X509 *x, const char *label, const uint8_t *id, size_t id_len)
{
    pt_err rc = require_session(t, "storing a certificate");
    if (rc != PT_OK)
        return rc;
    uint8_t *der = NULL, *subject = NULL, *issuer = NULL, *serial = NULL;
    int der_len = i2d_X509(x, &der);
    int subject_len = i2d_X509_NAME(X509_get_subject_name(x), &subject);
    int issuer_len = i2d_X509_NAME(X509_get_issuer_name(x), &issuer);
    int serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &serial);
    if (der_len <= 0 || subject_len <= 0 || issuer_len <= 0 || serial_len <= 0) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode the certificate");
        goto out;
    }
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_CERTIFICATE_TYPE, &type, sizeof type},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &no, sizeof no},
        {CKA_MODIFIABLE, &yes, sizeof yes},
        {CKA_LABEL, token_ck_input(label), (CK_ULONG)strlen(label)},
        {CKA_ID, token_ck_input(id), (CK_ULONG)id_len},
        {CKA_SUBJECT, subject, (CK_ULONG)subject_len},
        {CKA_ISSUER, issuer, (CK_ULONG)issuer_len},
        {CKA_SERIAL_NUMBER, serial, (CK_ULONG)serial_len},
        {CKA_VALUE, der, (CK_ULONG)der_len},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = t->module->fl->C_CreateObject(t->session, tmpl, sizeof tmpl / sizeof tmpl[0], &h);
    if (rv != CKR_OK)
        rc = token_note_failure(
            t, token_ckr_fail(rv, "C_CreateObject", "storing the certificate on the token"));
out:
    OPENSSL_free(der);
    OPENSSL_free(subject);
    OPENSSL_free(issuer);
    OPENSSL_free(serial);
    return rc;
}

/* Handles of the objects labelled label (of class cls, or any when cls_set is false), on h. */
static pt_err find_objects(token *t, CK_SESSION_HANDLE h, const char *label, bool cls_set,
                           CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *n)
{
    *n = 0;
    CK_ATTRIBUTE tmpl[2] = {
        {CKA_LABEL, token_ck_input(label), (CK_ULONG)strlen(label)},
        {CKA_CLASS, &cls, sizeof cls},
    };
    CK_RV rv = t->module->fl->C_FindObjectsInit(h, tmpl, cls_set ? 2 : 1);
    if (rv != CKR_OK)
        return token_note_failure(t, token_ckr_fail(rv, "C_FindObjectsInit", "searching objects"));
    rv = t->module->fl->C_FindObjects(h, found, max, n);
    (void)t->module->fl->C_FindObjectsFinal(h);
    if (rv != CKR_OK)
        return token_note_failure(t, token_ckr_fail(rv, "C_FindObjects", "searching objects"));
    return PT_OK;
}

pt_err token_private_key_find(token *t, CK_SESSION_HANDLE h, const char *label,
                              CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    pt_err rc = find_objects(t, h, label, true, CKO_PRIVATE_KEY, found, 2, &n);
    if (rc != PT_OK)
        return rc;
    if (n == 0)
        return pt_fail(PT_ERR_NOT_FOUND, "no private key labelled '%s' on token '%s'", label,
                       t->info.label);
    if (n > 1)
        return pt_fail(PT_ERR_AMBIGUOUS, "several private keys labelled '%s' on token '%s'", label,
                       t->info.label);
    *key = found[0];
    return PT_OK;
}

pt_err token_objects_count(token *t, const char *label, token_object_kind kind, unsigned *count)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE};
    *count = 0;
    pt_err rc = require_session(t, "searching objects");
    if (rc != PT_OK)
        return rc;
    CK_OBJECT_HANDLE found[KEYGEN_MAX_OBJECTS];
    CK_ULONG n = 0;
    rc = find_objects(t, t->session, label, true, classes[kind], found, KEYGEN_MAX_OBJECTS, &n);
    *count = (unsigned)n;
    return rc;
}

pt_err token_objects_destroy(token *t, const char *label, unsigned *count)
{
    *count = 0;
    pt_err rc = require_session(t, "removing objects");
    if (rc != PT_OK)
        return rc;
    CK_OBJECT_HANDLE found[KEYGEN_MAX_OBJECTS];
    CK_ULONG n = 0;
    rc = find_objects(t, t->session, label, false, 0, found, KEYGEN_MAX_OBJECTS, &n);
    for (CK_ULONG i = 0; rc == PT_OK && i < n; i++) {
        CK_RV rv = t->module->fl->C_DestroyObject(t->session, found[i]);
        if (rv != CKR_OK)
            rc = token_note_failure(t, token_ckr_fail(rv, "C_DestroyObject", "removing an object"));
        else
            (*count)++;
    }
    return rc;
}

pt_err token_key_attrs_read(token *t, const char *label, token_key_attrs *out)
{
    memset(out, 0, sizeof *out);
    pt_err rc = require_session(t, "reading key attributes");
    if (rc != PT_OK)
        return rc;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    rc = token_private_key_find(t, t->session, label, &key);
    if (rc != PT_OK)
        return rc;
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
    CK_RV rv = t->module->fl->C_GetAttributeValue(t->session, key, &a, 1);
    if (rv != CKR_OK)
        return token_note_failure(t, token_ckr_fail(rv, "C_GetAttributeValue", "reading a key"));
    out->key_type = kt;
    struct {
        CK_ATTRIBUTE_TYPE type;
        bool *dst;
    } flags[] = {
        {CKA_SENSITIVE, &out->sensitive},
        {CKA_EXTRACTABLE, &out->extractable},
        {CKA_ALWAYS_SENSITIVE, &out->always_sensitive},
        {CKA_NEVER_EXTRACTABLE, &out->never_extractable},
        {CKA_TOKEN, &out->on_token},
        {CKA_PRIVATE, &out->is_private},
        {CKA_SIGN, &out->can_sign},
    };
    for (size_t i = 0; rc == PT_OK && i < sizeof flags / sizeof flags[0]; i++)
        rc = bool_attr(t, key, flags[i].type, flags[i].dst);
    /* Ask for the secret itself: a protected key answers CKR_ATTRIBUTE_SENSITIVE. */
    uint8_t secret[1024];
    CK_ATTRIBUTE v = {kt == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, secret, sizeof secret};
    rv = t->module->fl->C_GetAttributeValue(t->session, key, &v, 1);
    out->secret_readable = rv == CKR_OK && v.ulValueLen != CK_UNAVAILABLE_INFORMATION;
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
}
