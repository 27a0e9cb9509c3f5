#include "der.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ecdsa.h>

pt_err pt_der_read(pt_reader *r, uint8_t *tag, pt_reader *contents, const uint8_t **elem,
                   size_t *elem_len)
{
    size_t start = pt_reader_offset(r);
    size_t avail = pt_reader_remaining(r);
    pt_reader look = *r;
    uint8_t t = 0, first = 0;
    size_t len = 0;

    if (!pt_reader_u8(&look, &t) || !pt_reader_u8(&look, &first))
        return pt_fail(PT_ERR_FORMAT, "offset %zu: truncated DER element", start);
    if ((t & 0x1f) == 0x1f)
        return pt_fail(PT_ERR_FORMAT, "offset %zu: multi-byte DER tags are not supported", start);
    if (first < 0x80) {
        len = first;
    } else {
        unsigned n = first & 0x7f;
        if (n == 0 || n > 4)
            return pt_fail(PT_ERR_FORMAT, "offset %zu: unsupported DER length form", start);
        for (unsigned i = 0; i < n; i++) {
            uint8_t b;
            if (!pt_reader_u8(&look, &b))
                return pt_fail(PT_ERR_FORMAT, "offset %zu: truncated DER length", start);
            len = len << 8 | b;
        }
        if (len < 0x80 || (n > 1 && (len >> (8 * (n - 1))) == 0))
            return pt_fail(PT_ERR_FORMAT, "offset %zu: DER length is not minimal", start);
    }
    size_t header = avail - pt_reader_remaining(&look);
    if (!pt_reader_sub(&look, len, contents))
        return pt_fail(PT_ERR_FORMAT, "offset %zu: DER element of %zu bytes crosses the end", start,
                       len);
    *tag = t;
    if (elem != NULL)
        pt_reader_bytes(r, header + len, elem);
    else
        pt_reader_skip(r, header + len);
    if (elem_len != NULL)
        *elem_len = header + len;
    return PT_OK;
}

bool pt_der_write_length(pt_writer *w, size_t len)
{
    if (len < 0x80)
        return pt_writer_u8(w, (uint8_t)len);
    uint8_t buf[4];
    unsigned n = 0;
    for (size_t v = len; v != 0; v >>= 8)
        n++;
    if (n > 4) {
        pt_writer_set_failed(w);
        return false;
    }
    for (unsigned i = 0; i < n; i++)
        buf[i] = (uint8_t)(len >> (8 * (n - 1 - i)));
    return pt_writer_u8(w, (uint8_t)(0x80 | n)) && pt_writer_bytes(w, buf, n);
}

/* Find the AlgorithmIdentifier inside a TBSCertificate (its "signature" field). */
static pt_err tbs_find_sigalg(const uint8_t *tbs, size_t tbs_len, const uint8_t **alg,
                              size_t *alg_len)
{
    pt_reader r, body, inner;
    uint8_t tag = 0;
    pt_reader_init(&r, tbs, tbs_len);
    pt_err rc = pt_der_read(&r, &tag, &body, NULL, NULL);
    if (rc != PT_OK)
        return pt_err_context(rc, "TBSCertificate");
    if (tag != 0x30 || !pt_reader_done(&r))
        return pt_fail(PT_ERR_FORMAT, "TBSCertificate is not exactly one DER SEQUENCE");
    /* [0] EXPLICIT version is optional (v1 certificates omit it). */
    rc = pt_der_read(&body, &tag, &inner, NULL, NULL);
    if (rc == PT_OK && tag == 0xa0)
        rc = pt_der_read(&body, &tag, &inner, NULL, NULL); /* serialNumber */
    if (rc != PT_OK)
        return pt_err_context(rc, "TBSCertificate");
    if (tag != 0x02)
        return pt_fail(PT_ERR_FORMAT, "TBSCertificate: serialNumber is not an INTEGER");
    rc = pt_der_read(&body, &tag, &inner, alg, alg_len);
    if (rc != PT_OK)
        return pt_err_context(rc, "TBSCertificate");
    if (tag != 0x30)
        return pt_fail(PT_ERR_FORMAT, "TBSCertificate: signature is not an AlgorithmIdentifier");
    return PT_OK;
}

pt_err pt_der_cert_assemble(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig, size_t sig_len,
                            uint8_t **cert, size_t *cert_len)
{
    *cert = NULL;
    *cert_len = 0;
    if (tbs_len > PT_DER_CERT_MAX || sig_len > PT_DER_CERT_MAX)
        return pt_fail(PT_ERR_LIMIT, "certificate too large");
    const uint8_t *alg = NULL;
    size_t alg_len = 0;
    pt_err rc = tbs_find_sigalg(tbs, tbs_len, &alg, &alg_len);
    if (rc != PT_OK)
        return rc;

    pt_writer bits;
    pt_writer_init(&bits, PT_DER_CERT_MAX);
    pt_writer_u8(&bits, 0x03);
    pt_der_write_length(&bits, sig_len + 1);
    pt_writer_u8(&bits, 0x00); /* no unused bits */
    pt_writer_bytes(&bits, sig, sig_len);
    if (pt_writer_failed(&bits)) {
        pt_writer_free(&bits);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }

    size_t body_len = tbs_len + alg_len + pt_writer_len(&bits);
    pt_writer w;
    pt_writer_init(&w, 2 * PT_DER_CERT_MAX + 16);
    pt_writer_u8(&w, 0x30);
    pt_der_write_length(&w, body_len);
    pt_writer_bytes(&w, tbs, tbs_len);
    pt_writer_bytes(&w, alg, alg_len);
    pt_writer_bytes(&w, pt_writer_data(&bits), pt_writer_len(&bits));
    pt_writer_free(&bits);
    return pt_writer_finish(&w, cert, cert_len);
}

pt_err pt_der_tbs_to_x509(const uint8_t *tbs, size_t tbs_len, X509 **out)
{
    *out = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    pt_err rc = pt_der_cert_assemble(tbs, tbs_len, NULL, 0, &der, &der_len);
    if (rc != PT_OK)
        return rc;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    bool exact = x != NULL && p == der + der_len;
    OPENSSL_free(der);
    if (x == NULL)
        return pt_fail_openssl(PT_ERR_FORMAT, "not a valid TBSCertificate");
    if (!exact) {
        X509_free(x);
        return pt_fail(PT_ERR_FORMAT, "TBSCertificate has trailing bytes");
    }
    *out = x;
    return PT_OK;
}

pt_err pt_der_tbs_sign_local(const uint8_t *tbs, size_t tbs_len, EVP_PKEY *key, const EVP_MD *md,
                             X509 **out)
{
    *out = NULL;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    uint8_t *sig = NULL, *der = NULL;
    size_t sig_len = 0, der_len = 0;
    pt_err rc = PT_OK;
    if (mctx == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (EVP_DigestSignInit(mctx, NULL, md, NULL, key) != 1 ||
        EVP_DigestSign(mctx, NULL, &sig_len, tbs, tbs_len) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot sign certificate");
        goto out;
    }
    sig = OPENSSL_malloc(sig_len);
    if (sig == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestSign(mctx, sig, &sig_len, tbs, tbs_len) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot sign certificate");
        goto out;
    }
    rc = pt_der_cert_assemble(tbs, tbs_len, sig, sig_len, &der, &der_len);
    if (rc != PT_OK)
        goto out;
    const unsigned char *p = der;
    *out = d2i_X509(NULL, &p, (long)der_len);
    if (*out == NULL)
        rc = pt_fail_openssl(PT_ERR_FORMAT, "signed certificate does not parse");
out:
    OPENSSL_free(sig);
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* Read one element with the expected tag into contents (NULL: skip it). */
static pt_err der_expect(pt_reader *r, uint8_t want, pt_reader *contents, const char *what)
{
    pt_reader ignored;
    uint8_t tag = 0;
    pt_err rc = pt_der_read(r, &tag, contents ? contents : &ignored, NULL, NULL);
    if (rc != PT_OK)
        return pt_err_context(rc, "%s", what);
    if (tag != want)
        return pt_fail(PT_ERR_FORMAT, "%s: DER tag 0x%02x where 0x%02x belongs", what, tag, want);
    return PT_OK;
}

pt_err pt_der_cert_check(const uint8_t *der, size_t len, pt_der_key_type *key)
{
    static const uint8_t rsa_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    static const uint8_t ec_oid[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    pt_reader r, cert, tbs, spki, alg, oid;
    uint8_t tag = 0;
    *key = PT_DER_KEY_OTHER;
    pt_reader_init(&r, der, len);
    pt_err rc = der_expect(&r, 0x30, &cert, "certificate");
    if (rc == PT_OK && !pt_reader_done(&r))
        rc = pt_fail(PT_ERR_FORMAT, "certificate: bytes after the certificate");
    if (rc == PT_OK)
        rc = der_expect(&cert, 0x30, &tbs, "certificate: tbsCertificate");
    if (rc == PT_OK)
        rc = der_expect(&cert, 0x30, NULL, "certificate: signatureAlgorithm");
    if (rc == PT_OK)
        rc = der_expect(&cert, 0x03, NULL, "certificate: signatureValue");
    if (rc == PT_OK && !pt_reader_done(&cert))
        rc = pt_fail(PT_ERR_FORMAT, "certificate: more than three elements");
    if (rc != PT_OK)
        return rc;
    /* TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, spki.
     */
    if (pt_reader_peek_u8(&tbs, &tag) && tag == 0xa0)
        rc = der_expect(&tbs, 0xa0, NULL, "certificate: version");
    static const struct {
        uint8_t tag;
        const char *name;
    } fields[] = {{0x02, "serialNumber"},
                  {0x30, "signature"},
                  {0x30, "issuer"},
                  {0x30, "validity"},
                  {0x30, "subject"}};
    for (size_t i = 0; rc == PT_OK && i < sizeof fields / sizeof fields[0]; i++)
        rc = der_expect(&tbs, fields[i].tag, NULL, fields[i].name);
    if (rc == PT_OK)
        rc = der_expect(&tbs, 0x30, &spki, "subjectPublicKeyInfo");
    if (rc == PT_OK)
        rc = der_expect(&spki, 0x30, &alg, "subjectPublicKeyInfo algorithm");
    if (rc == PT_OK)
        rc = der_expect(&spki, 0x03, NULL, "subjectPublicKey");
    if (rc == PT_OK)
        rc = der_expect(&alg, 0x06, &oid, "subjectPublicKeyInfo algorithm OID");
    if (rc != PT_OK)
        return pt_err_context(rc, "not a DER X.509 certificate");
    size_t n = pt_reader_remaining(&oid);
    const uint8_t *p = NULL;
    pt_reader_bytes(&oid, n, &p);
    if (n == sizeof rsa_oid && memcmp(p, rsa_oid, n) == 0)
        *key = PT_DER_KEY_RSA;
    else if (n == sizeof ec_oid && memcmp(p, ec_oid, n) == 0)
        *key = PT_DER_KEY_EC;
    return PT_OK;
}

pt_err pt_der_ecdsa_sig_from_raw(const uint8_t *raw, size_t raw_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t half = raw_len / 2;
    if (half == 0 || raw_len != 2 * half || half > 66)
        return pt_fail(PT_ERR_FORMAT, "not a raw ECDSA signature: %zu bytes", raw_len);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(raw + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    unsigned char *der = NULL;
    int len = i2d_ECDSA_SIG(es, &der); /* es owns r and s */
    ECDSA_SIG_free(es);
    if (len <= 0)
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode the ECDSA signature");
    *out = der;
    *out_len = (size_t)len;
    return PT_OK;
}
