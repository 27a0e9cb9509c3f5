#include "test_tbs.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cert.h"

EVP_PKEY *pt_test_key(const char *type)
{
    if (strcmp(type, "rsa") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static bool add_extensions(X509 *x, const pt_test_tbs *t)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, NULL, x, NULL, NULL, 0);
    char ku[128];
    snprintf(ku, sizeof ku, "critical,digitalSignature,keyEncipherment%s%s",
             t->key_cert_sign ? ",keyCertSign" : "", t->crl_sign ? ",cRLSign" : "");
    const char *bc = t->ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
    struct {
        int nid;
        const char *value;
    } exts[] = {{NID_basic_constraints, t->no_basic_constraints ? NULL : bc},
                {NID_key_usage, ku},
                {NID_ext_key_usage, "clientAuth"}};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        if (exts[i].value == NULL)
            continue;
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        int ok = e != NULL && X509_add_ext(x, e, -1) == 1;
        X509_EXTENSION_free(e);
        if (!ok)
            return false;
    }
    return true;
}

uint8_t *pt_test_tbs_build(const pt_test_tbs *t, size_t *len)
{
    *len = 0;
    X509 *x = X509_new();
    X509_NAME *subject = NULL;
    uint8_t *out = NULL;
    bool ok = x != NULL && pt_name_parse(t->subject ? t->subject : "CN=SEP001122334455,O=Example",
                                         &subject) == PT_OK;
    long serial = t->serial;
    if (!t->serial_set) {
        unsigned char r[8] = {0};
        ok = ok && RAND_bytes(r, sizeof r) == 1;
        uint64_t u = 0;
        for (size_t i = 0; i < sizeof r; i++)
            u = (u << 8) | r[i];
        serial = (long)((u & 0x7fffffffffffffffULL) | 1);
    }
    time_t now = time(NULL);
    long validity = t->validity_seconds ? t->validity_seconds : 365L * 86400;
    ok =
        ok && X509_set_version(x, t->v1 ? X509_VERSION_1 : X509_VERSION_3) == 1 &&
        ASN1_INTEGER_set_int64(X509_get_serialNumber(x), serial) == 1 &&
        X509_set_issuer_name(x, t->issuer) == 1 && X509_set_subject_name(x, subject) == 1 &&
        X509_time_adj_ex(X509_getm_notBefore(x), 0, t->not_before_offset, &now) != NULL &&
        X509_time_adj_ex(X509_getm_notAfter(x), 0, t->not_before_offset + validity, &now) != NULL &&
        X509_set_pubkey(x, t->subject_key ? t->subject_key : t->sig_key) == 1;
    if (ok && !t->v1)
        ok = add_extensions(x, t);
    ok = ok && X509_sign(x, t->sig_key, t->md ? t->md : EVP_sha256()) > 0;
    unsigned char *der = NULL;
    int n = ok ? i2d_re_X509_tbs(x, &der) : -1;
    if (n > 0) {
        out = der;
        *len = (size_t)n;
    } else {
        fprintf(stderr, "cannot build a TBSCertificate\n");
        ERR_print_errors_fp(stderr);
    }
    X509_NAME_free(subject);
    X509_free(x);
    return out;
}

X509 *pt_test_cert_detach(X509 *x)
{
    uint8_t *der = NULL;
    size_t len = 0;
    X509 *copy = NULL;
    if (x != NULL && pt_cert_to_der(x, &der, &len) == PT_OK)
        (void)pt_cert_parse(der, len, &copy);
    OPENSSL_free(der);
    X509_free(x);
    return copy;
}
