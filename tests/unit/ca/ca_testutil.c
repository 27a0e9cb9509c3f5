#include "ca_testutil.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

EVP_PKEY *tu_key_rsa(int bits)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

EVP_PKEY *tu_key_ec(const char *group)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
}

X509_NAME *tu_name(const char *text)
{
    X509_NAME *name = X509_NAME_new();
    char *copy = strdup(text);
    char *save = NULL;
    for (char *part = strtok_r(copy, ",", &save); part != NULL && name != NULL;
         part = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(part, '=');
        if (eq == NULL)
            abort();
        *eq = '\0';
        if (X509_NAME_add_entry_by_txt(name, part, MBSTRING_ASC, (unsigned char *)eq + 1, -1, -1,
                                       0) != 1)
            abort();
    }
    free(copy);
    return name;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL || X509_add_ext(x, e, -1) != 1)
        abort();
    X509_EXTENSION_free(e);
}

X509 *tu_cert_make(const tu_cert_opts *o)
{
    X509 *x = X509_new();
    X509_NAME *subject = tu_name(o->subject);
    X509_NAME *issuer = tu_name(o->issuer != NULL ? o->issuer : o->subject);
    BIGNUM *bn = BN_new();
    long days = o->days != 0 ? o->days : 365;
    if (x == NULL || bn == NULL || !BN_rand(bn, 64, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY))
        abort();
    X509_set_version(x, X509_VERSION_3);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_subject_name(x, subject);
    X509_set_issuer_name(x, issuer);
    X509_gmtime_adj(X509_getm_notBefore(x), o->not_before_offset);
    X509_gmtime_adj(X509_getm_notAfter(x), o->not_before_offset + days * 86400L);
    X509_set_pubkey(x, o->key);
    if (o->ca) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    }
    if (X509_sign(x, o->signer, o->md != NULL ? o->md : EVP_sha256()) <= 0)
        abort();
    X509_NAME_free(subject);
    X509_NAME_free(issuer);
    return x;
}

uint8_t *tu_cert_der(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    *len = n > 0 ? (size_t)n : 0;
    return der;
}

uint8_t *tu_spki_der(EVP_PKEY *k, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    *len = n > 0 ? (size_t)n : 0;
    return der;
}

uint8_t *tu_hex(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1, n = 0;
    uint8_t *out = malloc(cap);
    int hi = -1;
    for (const char *p = hex; *p != '\0'; p++) {
        if (isspace((unsigned char)*p))
            continue;
        int v = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        if (v < 0 || v > 15)
            abort();
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        abort();
    *len = n;
    return out;
}

uint32_t tu_rand(uint32_t *state)
{
    /* xorshift32: reproducible across runs and platforms. */
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}
