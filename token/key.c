#include "key.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "p11.h"
#include "token_internal.h"

struct token_key {
    token *tok;
    char *label;
    EVP_PKEY *pkey;
    X509 *cert;
};

void token_key_free(token_key *k)
{
    if (k == NULL)
        return;
    OPENSSL_free(k->label);
    EVP_PKEY_free(k->pkey);
    X509_free(k->cert);
    OPENSSL_free(k);
}

const char *token_key_label(const token_key *k)
{
    return k->label ? k->label : "";
}

X509 *token_key_cert(const token_key *k)
{
    return k->cert;
}

EVP_PKEY *token_key_pkey(const token_key *k)
{
    return k->pkey;
}

static bool id_equal(const unsigned char *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool key_matches(const PKCS11_KEY *key, const char *label, const uint8_t *id, size_t id_len,
                        bool have_id)
{
    if (!key->isPrivate)
        return false;
    if (label != NULL && (key->label == NULL || strcmp(key->label, label) != 0))
        return false;
    if (have_id && !id_equal(key->id, key->id_len, id, id_len))
        return false;
    return true;
}

/* The certificate that belongs to key: same CKA_ID, else same label. */
static X509 *cert_for_key(PKCS11_TOKEN *tok, const PKCS11_KEY *key)
{
    PKCS11_CERT *certs = NULL;
    unsigned int n = 0;
    if (PKCS11_enumerate_certs(tok, &certs, &n) != 0) {
        token_libp11_fail("PKCS11_enumerate_certs", "listing certificates");
        return NULL;
    }
    for (unsigned i = 0; i < n; i++)
        if (key->id_len > 0 && id_equal(certs[i].id, certs[i].id_len, key->id, key->id_len))
            return certs[i].x509 ? X509_dup(certs[i].x509) : NULL;
    for (unsigned i = 0; i < n; i++)
        if (key->label != NULL && certs[i].label != NULL && strcmp(certs[i].label, key->label) == 0)
            return certs[i].x509 ? X509_dup(certs[i].x509) : NULL;
    return NULL;
}

static pt_err key_wrap(token *t, PKCS11_KEY *key, token_key **out)
{
    token_key *k = OPENSSL_zalloc(sizeof *k);
    if (k == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    k->tok = t;
    k->label = OPENSSL_strdup(key->label ? key->label : "");
    if (k->label == NULL) {
        token_key_free(k);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    k->pkey = PKCS11_get_private_key(key);
    if (k->pkey == NULL) {
        pt_err rc = token_libp11_fail("PKCS11_get_private_key", "opening the private key");
        token_key_free(k);
        return token_note_failure(t, rc);
    }
    k->cert = cert_for_key(t->slot->token, key);
    *out = k;
    return PT_OK;
}

static pt_err find_key(token *t, const char *label, const uint8_t *id, size_t id_len, bool have_id,
                       const char *what, token_key **out)
{
    *out = NULL;
    pt_err rc = token_check_present(t, "looking for the private key");
    if (rc != PT_OK)
        return rc;
    if (!t->logged_in)
        return pt_fail(PT_ERR_INTERNAL, "looking for a private key before logging in");
    PKCS11_KEY *keys = NULL;
    unsigned int n = 0;
    if (PKCS11_enumerate_keys(t->slot->token, &keys, &n) != 0)
        return token_note_failure(
            t, token_libp11_fail("PKCS11_enumerate_keys", "listing the private keys"));
    PKCS11_KEY *match = NULL;
    unsigned matches = 0;
    char labels[512] = "";
    size_t used = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!keys[i].isPrivate)
            continue;
        int w = snprintf(labels + used, sizeof labels - used, "%s'%s'", used ? ", " : "",
                         keys[i].label ? keys[i].label : "");
        if (w > 0 && (size_t)w < sizeof labels - used)
            used += (size_t)w;
        if (key_matches(&keys[i], label, id, id_len, have_id)) {
            match = &keys[i];
            matches++;
        }
    }
    char d[128];
    token_describe(t, d, sizeof d);
    if (matches == 0)
        return pt_fail(PT_ERR_NOT_FOUND, "%s holds no private key %s (private keys: %s)", d, what,
                       used ? labels : "none");
    if (matches > 1)
        return pt_fail(PT_ERR_AMBIGUOUS,
                       "%s holds %u private keys %s (%s); add object= or id= to the URI", d,
                       matches, what, labels);
    return key_wrap(t, match, out);
}

pt_err token_key_find(token *t, const token_uri *uri, token_key **out)
{
    const char *label = uri ? token_uri_object_label(uri) : NULL;
    const uint8_t *id = NULL;
    size_t id_len = 0;
    bool have_id = uri != NULL && token_uri_object_id(uri, &id, &id_len);
    unsigned long cls;
    if (uri != NULL && token_uri_object_class(uri, &cls) && cls != CKO_PRIVATE_KEY &&
        cls != CKO_CERTIFICATE && cls != CKO_PUBLIC_KEY)
        return pt_fail(PT_ERR_USAGE, "%s names an object type that is not a key or certificate",
                       token_uri_text(uri));
    char what[160];
    if (label != NULL)
        snprintf(what, sizeof what, "labelled '%s'%s", label, have_id ? " with that id" : "");
    else
        snprintf(what, sizeof what, "%s", have_id ? "with that id" : "to choose from");
    return find_key(t, label, id, id_len, have_id, what, out);
}

pt_err token_key_find_by_label(token *t, const char *label, const uint8_t *id, size_t id_len,
                               token_key **out)
{
    char what[160];
    snprintf(what, sizeof what, "labelled '%s'", label);
    return find_key(t, label, id, id_len, id_len > 0, what, out);
}

pt_err token_key_find_default(token *t, const token_uri *uri, token_key **out)
{
    const uint8_t *id = NULL;
    size_t id_len = 0;
    if (uri != NULL &&
        (token_uri_object_label(uri) != NULL || token_uri_object_id(uri, &id, &id_len)))
        return token_key_find(t, uri, out);
    pt_err rc = token_key_find_by_label(t, TOKEN_SAST_LABEL, NULL, 0, out);
    if (rc == PT_ERR_NOT_FOUND)
        rc = token_key_find(t, NULL, out);
    return rc;
}

pt_err token_key_sign(token_key *k, const EVP_MD *md, const uint8_t *data, size_t len,
                      uint8_t **sig, size_t *sig_len)
{
    *sig = NULL;
    *sig_len = 0;
    pt_err rc = token_check_present(k->tok, "signing");
    if (rc != PT_OK)
        return rc;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    uint8_t *buf = NULL;
    size_t n = 0;
    if (mctx == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    char what[160];
    snprintf(what, sizeof what, "signing with key '%s' on token '%s'", token_key_label(k),
             k->tok->info.label);
    if (EVP_DigestSignInit(mctx, NULL, md, NULL, k->pkey) != 1 ||
        EVP_DigestSign(mctx, NULL, &n, data, len) != 1) {
        rc = token_libp11_fail("EVP_DigestSignInit", what);
        goto out;
    }
    buf = OPENSSL_malloc(n);
    if (buf == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestSign(mctx, buf, &n, data, len) != 1) {
        rc = token_libp11_fail("C_Sign", what);
        goto out;
    }
    *sig = buf;
    *sig_len = n;
    buf = NULL;
out:
    OPENSSL_free(buf);
    EVP_MD_CTX_free(mctx);
    return token_note_failure(k->tok, rc);
}

pt_err token_sast_cert(token *t, X509 **out)
{
    *out = NULL;
    pt_err rc = token_check_present(t, "reading the certificates");
    if (rc != PT_OK)
        return rc;
    if (!t->info.initialized)
        return PT_OK;
    PKCS11_CERT *certs = NULL;
    unsigned int n = 0;
    if (PKCS11_enumerate_certs(t->slot->token, &certs, &n) != 0)
        return token_note_failure(
            t, token_libp11_fail("PKCS11_enumerate_certs", "listing the certificates"));
    PKCS11_CERT *pick = NULL;
    for (unsigned i = 0; i < n && pick == NULL; i++)
        if (certs[i].label != NULL && strcmp(certs[i].label, TOKEN_SAST_LABEL) == 0)
            pick = &certs[i];
    if (pick == NULL && n > 0)
        pick = &certs[0];
    if (pick != NULL && pick->x509 != NULL) {
        *out = X509_dup(pick->x509);
        if (*out == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    return PT_OK;
}

void token_labels_free(char **labels, size_t n)
{
    for (size_t i = 0; labels != NULL && i < n; i++)
        OPENSSL_free(labels[i]);
    OPENSSL_free(labels);
}

pt_err token_private_key_labels(token *t, char ***labels, size_t *n)
{
    *labels = NULL;
    *n = 0;
    pt_err rc = token_check_present(t, "listing the private keys");
    if (rc != PT_OK)
        return rc;
    PKCS11_KEY *keys = NULL;
    unsigned int count = 0;
    if (PKCS11_enumerate_keys(t->slot->token, &keys, &count) != 0)
        return token_note_failure(
            t, token_libp11_fail("PKCS11_enumerate_keys", "listing the private keys"));
    char **out = OPENSSL_zalloc(sizeof *out * (count ? count : 1));
    if (out == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    size_t used = 0;
    for (unsigned i = 0; i < count; i++) {
        if (!keys[i].isPrivate)
            continue;
        out[used] = OPENSSL_strdup(keys[i].label ? keys[i].label : "");
        if (out[used++] == NULL) {
            token_labels_free(out, used);
            return pt_fail(PT_ERR_NOMEM, "out of memory");
        }
    }
    *labels = out;
    *n = used;
    return PT_OK;
}
