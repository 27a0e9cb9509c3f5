/*
 * Unit tests of what hsmd agrees to sign. issue: TBSCertificates built with
 * OpenSSL, one for each rule, each refused for its reason (and the
 * boundaries accepted). sign-tlv: ITL files built with the project's codec,
 * then altered one way at a time. And the checks of a result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "hsmd_config.h"
#include "hsmd_policy.h"
#include "test_tbs.h"
#include "tlv.h"

typedef struct fixture {
    EVP_PKEY *ca_key; /* RSA */
    X509 *ca_cert;    /* CN=CAPF-1 */
    EVP_PKEY *ec_key; /* EC P-256 CA */
    X509 *ec_cert;
    EVP_PKEY *rsa_dummy, *ec_dummy;
    EVP_PKEY *itlr_key; /* RSA 1024 */
    X509 *itlr_cert;
    EVP_PKEY *other_key;
    X509 *other_cert; /* another signer */
    X509 *twin_cert;  /* the ITLRecovery names and serial, another key */
} fixture;

static X509 *self_signed(EVP_PKEY *key, const char *dn, bool ca)
{
    X509_NAME *name = NULL;
    X509 *x = NULL;
    pt_cert_profile p = {
        ca, -1, ca ? "critical,keyCertSign,cRLSign,digitalSignature" : "critical,digitalSignature",
        365};
    if (pt_name_parse(dn, &name) != PT_OK || pt_cert_self_signed(key, name, &p, &x) != PT_OK)
        x = NULL;
    X509_NAME_free(name);
    return x;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f->ca_cert = self_signed(f->ca_key, "CN=CAPF-1,O=Example", true);
    f->ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f->ec_cert = self_signed(f->ec_key, "CN=CAPF-EC,O=Example", true);
    f->rsa_dummy = pt_test_key("rsa");
    f->ec_dummy = pt_test_key("ec");
    f->itlr_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    f->itlr_cert = self_signed(f->itlr_key, "CN=ITLRECOVERY_CAPF-1,O=Example", false);
    f->other_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    f->other_cert = self_signed(f->other_key, "CN=Other,O=Example", false);
    /* Same subject, issuer and serial as the ITLRecovery certificate, another key. */
    f->twin_cert = self_signed(f->other_key, "CN=ITLRECOVERY_CAPF-1,O=Example", false);
    if (f->twin_cert != NULL && f->itlr_cert != NULL) {
        X509_set_serialNumber(f->twin_cert, X509_get_serialNumber(f->itlr_cert));
        X509_sign(f->twin_cert, f->other_key, EVP_sha256());
    }
    *state = f;
    return f->ca_cert && f->ec_cert && f->rsa_dummy && f->ec_dummy && f->itlr_cert &&
                   f->other_cert && f->twin_cert
               ? 0
               : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    EVP_PKEY_free(f->ca_key);
    X509_free(f->ca_cert);
    EVP_PKEY_free(f->ec_key);
    X509_free(f->ec_cert);
    EVP_PKEY_free(f->rsa_dummy);
    EVP_PKEY_free(f->ec_dummy);
    EVP_PKEY_free(f->itlr_key);
    X509_free(f->itlr_cert);
    EVP_PKEY_free(f->other_key);
    X509_free(f->other_cert);
    X509_free(f->twin_cert);
    free(f);
    return 0;
}

/* ---- issue ---- */

static hsmd_issue_policy rsa_policy(const fixture *f)
{
    return (hsmd_issue_policy){f->ca_cert, EVP_PKEY_RSA,
                               HSMD_DIGEST_SHA256 | HSMD_DIGEST_SHA384 | HSMD_DIGEST_SHA512, 1827};
}

static pt_test_tbs good_tbs(const fixture *f)
{
    pt_test_tbs t;
    memset(&t, 0, sizeof t);
    t.issuer = X509_get_subject_name(f->ca_cert);
    t.sig_key = f->rsa_dummy;
    t.subject_key = f->ec_dummy;
    return t;
}

/* Check t against p now; PT_OK, or the refusal whose message must contain want. */
static void expect(const hsmd_issue_policy *p, const pt_test_tbs *t, pt_err want_rc,
                   const char *want)
{
    size_t len = 0;
    uint8_t *tbs = pt_test_tbs_build(t, &len);
    assert_non_null(tbs);
    hsmd_issue_info info;
    pt_err rc = hsmd_issue_check(p, tbs, len, time(NULL), &info);
    OPENSSL_free(tbs);
    if (rc != want_rc)
        fail_msg("expected %d, got %d: %s", want_rc, rc, pt_err_message());
    if (rc == PT_OK) {
        assert_int_equal(EVP_MD_get_type(info.md),
                         EVP_MD_get_type(t->md != NULL ? t->md : EVP_sha256()));
        assert_true(info.serial[0] != '\0');
        assert_true(info.subject[0] == '/');
    } else {
        assert_null(info.md);
        assert_int_equal(info.serial[0], 0);
        if (want != NULL && strstr(pt_err_message(), want) == NULL)
            fail_msg("message '%s' does not contain '%s'", pt_err_message(), want);
    }
}

static void test_issue_good(void **state)
{
    fixture *f = *state;
    hsmd_issue_policy p = rsa_policy(f);
    pt_test_tbs t = good_tbs(f);
    expect(&p, &t, PT_OK, NULL);
    t.no_basic_constraints = true; /* absent is fine too */
    expect(&p, &t, PT_OK, NULL);
    t.md = EVP_sha512();
    expect(&p, &t, PT_OK, NULL);
    /* An EC CA signs with ECDSA. */
    hsmd_issue_policy pe = {f->ec_cert, EVP_PKEY_EC, HSMD_DIGEST_SHA256, 30};
    pt_test_tbs te = good_tbs(f);
    te.issuer = X509_get_subject_name(f->ec_cert);
    te.sig_key = f->ec_dummy;
    te.validity_seconds = 30L * 86400;
    expect(&pe, &te, PT_OK, NULL);
}

static void test_issue_end_entity_only(void **state)
{
    fixture *f = *state;
    hsmd_issue_policy p = rsa_policy(f);
    pt_test_tbs t = good_tbs(f);
    t.ca = true;
    expect(&p, &t, PT_ERR_REFUSED, "basicConstraints says CA:TRUE");
    t = good_tbs(f);
    t.key_cert_sign = true;
    expect(&p, &t, PT_ERR_REFUSED, "keyUsage includes keyCertSign");
    t = good_tbs(f);
    t.crl_sign = true;
    expect(&p, &t, PT_ERR_REFUSED, "keyUsage includes cRLSign");
    t = good_tbs(f);
    t.v1 = true;
    expect(&p, &t, PT_ERR_REFUSED, "only X.509 v3");
}

static void test_issue_names(void **state)
{
    fixture *f = *state;
    hsmd_issue_policy p = rsa_policy(f);
    pt_test_tbs t = good_tbs(f);
    t.issuer = X509_get_subject_name(f->other_cert);
    expect(&p, &t, PT_ERR_REFUSED,
           "issuer /CN=Other/O=Example is not this key's certificate "
           "subject /CN=CAPF-1/O=Example");
    t = good_tbs(f);
    t.subject = "CN=CAPF-1,O=Example";
    expect(&p, &t, PT_ERR_REFUSED, "the subject is the issuing CA's own name");
}

static void test_issue_validity(void **state)
{
    fixture *f = *state;
    hsmd_issue_policy p = rsa_policy(f);
    pt_test_tbs t = good_tbs(f);
    t.validity_seconds = 1827L * 86400; /* exactly the maximum */
    expect(&p, &t, PT_OK, NULL);
    t.validity_seconds = 1827L * 86400 + 1;
    expect(&p, &t, PT_ERR_REFUSED, "longer than this key's maximum of 1827 days");
    p.max_validity_days = 30;
    t.validity_seconds = 31L * 86400;
    expect(&p, &t, PT_ERR_REFUSED, "maximum of 30 days");
    p = rsa_policy(f);
    t = good_tbs(f);
    t.not_before_offset = -86400 + 60; /* within the day */
    expect(&p, &t, PT_OK, NULL);
    t.not_before_offset = -86400 - 60;
    expect(&p, &t, PT_ERR_REFUSED, "more than one day in the past");
    t.not_before_offset = -30L * 86400;
    expect(&p, &t, PT_ERR_REFUSED, "more than one day in the past");
    t = good_tbs(f);
    t.not_before_offset = 3600;
    t.validity_seconds = -60;
    expect(&p, &t, PT_ERR_REFUSED, "is not after notBefore");
}

static void test_issue_signature_algorithm(void **state)
{
    fixture *f = *state;
    hsmd_issue_policy p = rsa_policy(f);
    pt_test_tbs t = good_tbs(f);
    t.sig_key = f->ec_dummy;
    expect(&p, &t, PT_ERR_REFUSED, "ecdsa-with-SHA256 does not match the key, which is RSA");
    t = good_tbs(f);
    t.md = EVP_sha1();
    expect(&p, &t, PT_ERR_REFUSED,
           "uses a digest this key does not sign with (allowed: sha256, "
           "sha384, sha512)");
    p.digests = HSMD_DIGEST_SHA256;
    t.md = EVP_sha384();
    expect(&p, &t, PT_ERR_REFUSED, "allowed: sha256)");
    hsmd_issue_policy pe = {f->ec_cert, EVP_PKEY_EC, HSMD_DIGEST_SHA256, 1827};
    t = good_tbs(f);
    t.issuer = X509_get_subject_name(f->ec_cert);
    expect(&pe, &t, PT_ERR_REFUSED, "sha256WithRSAEncryption does not match the key, which is EC");
}

static void test_issue_serial_and_key(void **state)
{
    fixture *f = *state;
    hsmd_issue_policy p = rsa_policy(f);
    pt_test_tbs t = good_tbs(f);
    t.serial_set = true;
    t.serial = 0;
    expect(&p, &t, PT_ERR_REFUSED, "the serial number is zero");
    t.serial = -5;
    expect(&p, &t, PT_ERR_REFUSED, "the serial number is negative");
    t.serial = 1;
    expect(&p, &t, PT_OK, NULL);
    /* The serial goes to the audit record as upper-case hex. */
    t.serial = 0x5F3A9C0E11L;
    size_t len = 0;
    uint8_t *tbs = pt_test_tbs_build(&t, &len);
    hsmd_issue_info info;
    assert_int_equal(hsmd_issue_check(&p, tbs, len, time(NULL), &info), PT_OK);
    assert_string_equal(info.serial, "5F3A9C0E11");
    assert_string_equal(info.subject, "/CN=SEP001122334455/O=Example");
    OPENSSL_free(tbs);
    /* A subject key that is neither RSA nor EC. */
    t = good_tbs(f);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    t.subject_key = ed;
    expect(&p, &t, PT_ERR_REFUSED, "not an RSA key or an EC key on a named curve");
    EVP_PKEY_free(ed);
}

/* DER surgery on a good TBS: what no OpenSSL builder would write. */
static uint8_t *good_der(const fixture *f, size_t *len)
{
    pt_test_tbs t = good_tbs(f);
    uint8_t *tbs = pt_test_tbs_build(&t, len);
    assert_non_null(tbs);
    return tbs;
}

static void check_bytes(const fixture *f, const uint8_t *tbs, size_t len, pt_err want_rc,
                        const char *want)
{
    hsmd_issue_policy p = rsa_policy(f);
    hsmd_issue_info info;
    pt_err rc = hsmd_issue_check(&p, tbs, len, time(NULL), &info);
    if (rc != want_rc)
        fail_msg("expected %d, got %d: %s", want_rc, rc, pt_err_message());
    if (want != NULL && strstr(pt_err_message(), want) == NULL)
        fail_msg("message '%s' does not contain '%s'", pt_err_message(), want);
}

static void test_issue_malformed(void **state)
{
    fixture *f = *state;
    size_t len = 0;
    uint8_t *tbs = good_der(f, &len);
    check_bytes(f, tbs, len, PT_OK, NULL);
    check_bytes(f, tbs, len - 1, PT_ERR_FORMAT, "not a DER TBSCertificate");
    check_bytes(f, tbs, 10, PT_ERR_FORMAT, "not a DER TBSCertificate");
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    check_bytes(f, junk, sizeof junk, PT_ERR_FORMAT, "not a DER TBSCertificate");
    check_bytes(f, (const uint8_t *)"", 0, PT_ERR_FORMAT, NULL);
    uint8_t *longer = OPENSSL_malloc(len + 2);
    memcpy(longer, tbs, len);
    longer[len] = 0x05;
    longer[len + 1] = 0x00;
    check_bytes(f, longer, len + 2, PT_ERR_FORMAT, NULL);
    OPENSSL_free(longer);

    /* The same TBS with its outer length in a longer form than DER allows (BER). */
    assert_int_equal(tbs[0], 0x30);
    assert_int_equal(tbs[1], 0x82);
    uint8_t *ber = OPENSSL_malloc(len + 1);
    ber[0] = 0x30;
    ber[1] = 0x83;
    ber[2] = 0x00;
    memcpy(ber + 3, tbs + 2, len - 2);
    check_bytes(f, ber, len + 1, PT_ERR_FORMAT, NULL);
    OPENSSL_free(ber);
    OPENSSL_free(tbs);
}

/* A TBS for CN=odd whose extensions are exactly those given as (nid or 0, OID text, value). */
static uint8_t *tbs_with_extensions(const fixture *f, X509_EXTENSION **exts, size_t n, size_t *len)
{
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_set_issuer_name(x, X509_get_subject_name(f->ca_cert));
    X509_NAME *name = NULL;
    assert_int_equal(pt_name_parse("CN=odd", &name), PT_OK);
    X509_set_subject_name(x, name);
    X509_NAME_free(name);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, f->ec_dummy);
    for (size_t i = 0; i < n; i++) {
        X509_add_ext(x, exts[i], -1);
        X509_EXTENSION_free(exts[i]);
    }
    assert_true(X509_sign(x, f->rsa_dummy, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int l = i2d_re_X509_tbs(x, &der);
    assert_true(l > 0);
    X509_free(x);
    *len = (size_t)l;
    return der;
}

static X509_EXTENSION *ext_conf(int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
    assert_non_null(e);
    return e;
}

static X509_EXTENSION *ext_raw(const char *oid, bool critical, const uint8_t *der, size_t len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
    assert_int_equal(ASN1_OCTET_STRING_set(v, der, (int)len), 1);
    X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, critical, v);
    assert_non_null(e);
    ASN1_OBJECT_free(o);
    ASN1_OCTET_STRING_free(v);
    return e;
}

static void test_issue_extensions(void **state)
{
    fixture *f = *state;
    size_t len = 0;
    uint8_t *tbs;
    X509_EXTENSION *twice[2] = {ext_conf(NID_key_usage, "digitalSignature"),
                                ext_conf(NID_key_usage, "digitalSignature")};
    tbs = tbs_with_extensions(f, twice, 2, &len);
    check_bytes(f, tbs, len, PT_ERR_REFUSED, "Key Usage appears more than once");
    OPENSSL_free(tbs);

    static const uint8_t null_der[] = {0x05, 0x00};
    X509_EXTENSION *unknown[1] = {ext_raw("1.3.6.1.4.1.99999.1", true, null_der, 2)};
    tbs = tbs_with_extensions(f, unknown, 1, &len);
    check_bytes(f, tbs, len, PT_ERR_REFUSED, "1.3.6.1.4.1.99999.1 is critical and unknown");
    OPENSSL_free(tbs);
    X509_EXTENSION *unknown_ok[1] = {ext_raw("1.3.6.1.4.1.99999.1", false, null_der, 2)};
    tbs = tbs_with_extensions(f, unknown_ok, 1, &len);
    check_bytes(f, tbs, len, PT_OK, NULL); /* not critical: a verifier may ignore it */
    OPENSSL_free(tbs);

    /* keyUsage whose value is not a BIT STRING. */
    X509_EXTENSION *bad[1] = {ext_raw("2.5.29.15", true, null_der, 2)};
    tbs = tbs_with_extensions(f, bad, 1, &len);
    check_bytes(f, tbs, len, PT_ERR_REFUSED, "Key Usage cannot be decoded");
    OPENSSL_free(tbs);

    /* keyUsage with no bit set, and one setting bits it declares unused (keyCertSign among
       them): OpenSSL would mark the first invalid and read the second as empty. */
    static const uint8_t ku_empty[] = {0x03, 0x01, 0x00};
    X509_EXTENSION *empty[1] = {ext_raw("2.5.29.15", true, ku_empty, sizeof ku_empty)};
    tbs = tbs_with_extensions(f, empty, 1, &len);
    check_bytes(f, tbs, len, PT_ERR_REFUSED, "keyUsage is present but empty");
    OPENSSL_free(tbs);
    static const uint8_t ku_padding[] = {0x03, 0x02, 0x05, 0x1c};
    X509_EXTENSION *padding[1] = {ext_raw("2.5.29.15", true, ku_padding, sizeof ku_padding)};
    tbs = tbs_with_extensions(f, padding, 1, &len);
    check_bytes(f, tbs, len, PT_ERR_REFUSED, "keyUsage sets bits it declares unused");
    OPENSSL_free(tbs);

    /* basicConstraints with its DEFAULT cA FALSE written out: BER, not DER (X.690 11.5). */
    static const uint8_t bc_default[] = {0x30, 0x03, 0x01, 0x01, 0x00};
    X509_EXTENSION *bd[1] = {ext_raw("2.5.29.19", true, bc_default, sizeof bc_default)};
    tbs = tbs_with_extensions(f, bd, 1, &len);
    check_bytes(f, tbs, len, PT_ERR_REFUSED, "Basic Constraints is not in DER");
    OPENSSL_free(tbs);

    /* basicConstraints CA:FALSE with a path length: RFC 5280 forbids it. */
    static const uint8_t bc_pathlen[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    X509_EXTENSION *pl[1] = {ext_raw("2.5.29.19", true, bc_pathlen, sizeof bc_pathlen)};
    tbs = tbs_with_extensions(f, pl, 1, &len);
    check_bytes(f, tbs, len, PT_ERR_REFUSED, "pathLenConstraint without CA:TRUE");
    OPENSSL_free(tbs);

    tbs = tbs_with_extensions(f, NULL, 0, &len); /* no extensions at all */
    check_bytes(f, tbs, len, PT_OK, NULL);
    OPENSSL_free(tbs);
}

static void test_issue_finish(void **state)
{
    fixture *f = *state;
    hsmd_issue_policy p = rsa_policy(f);
    size_t len = 0;
    uint8_t *tbs = good_der(f, &len);
    /* Signed by the CA key: a certificate that verifies. */
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    uint8_t sig[512];
    size_t sig_len = sizeof sig;
    assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, f->ca_key), 1);
    assert_int_equal(EVP_DigestSign(m, sig, &sig_len, tbs, len), 1);
    EVP_MD_CTX_free(m);
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    assert_int_equal(hsmd_issue_finish(&p, tbs, len, EVP_sha256(), sig, sig_len, &cert, &cert_len),
                     PT_OK);
    X509 *x = NULL;
    assert_int_equal(pt_cert_parse(cert, cert_len, &x), PT_OK);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(f->ca_cert)), 1);
    X509_free(x);
    OPENSSL_free(cert);
    /* A signature that does not verify is never returned. */
    sig[10] ^= 1;
    assert_int_equal(hsmd_issue_finish(&p, tbs, len, EVP_sha256(), sig, sig_len, &cert, &cert_len),
                     PT_ERR_VERIFY);
    assert_null(cert);
    OPENSSL_free(tbs);
}

/* ---- sign-tlv ---- */

static uint8_t *build_itl(X509 *signer, X509 *sast, uint8_t digest, size_t *len)
{
    tlv_build_record recs[1] = {{TLV_ROLE_SAST, sast, NULL, false, {0}}};
    tlv_build_params p = {
        .signer_cert = signer,
        .digest = digest,
        .filename = "ITLFile.tlv",
        .timestamp = 1700000000u,
        .records = recs,
        .n_records = 1,
    };
    uint8_t *out = NULL;
    pt_err rc = tlv_build_unsigned(&p, &out, len);
    if (rc != PT_OK)
        fail_msg("tlv_build_unsigned: %s", pt_err_message());
    return out;
}

static void tlv_policy(const fixture *f, hsmd_tlv_policy *p, unsigned digests)
{
    assert_int_equal(hsmd_tlv_policy_init(p, f->itlr_cert, EVP_PKEY_RSA, 1024, digests), PT_OK);
}

static void tlv_expect(const hsmd_tlv_policy *p, const uint8_t *file, size_t len, pt_err want_rc,
                       const char *want)
{
    tlv_file *parsed = NULL;
    pt_err rc = hsmd_tlv_check(p, file, len, &parsed);
    if (rc != want_rc)
        fail_msg("expected %d, got %d: %s", want_rc, rc, pt_err_message());
    if (rc == PT_OK)
        assert_non_null(parsed);
    else
        assert_null(parsed);
    if (rc != PT_OK && want != NULL && strstr(pt_err_message(), want) == NULL)
        fail_msg("message '%s' does not contain '%s'", pt_err_message(), want);
    tlv_file_free(parsed);
}

/* Replace the first occurrence of from (n bytes) with to. */
static void patch(uint8_t *buf, size_t len, const uint8_t *from, const uint8_t *to, size_t n)
{
    uint8_t *p = memmem(buf, len, from, n);
    assert_non_null(p);
    memcpy(p, to, n);
}

static void test_tlv_good_and_signed(void **state)
{
    fixture *f = *state;
    hsmd_tlv_policy p;
    tlv_policy(f, &p, HSMD_DIGEST_SHA1 | HSMD_DIGEST_SHA512);
    for (int d = 0; d < 2; d++) {
        size_t len = 0;
        uint8_t *itl =
            build_itl(f->itlr_cert, f->itlr_cert, d ? TLV_DIGEST_SHA512 : TLV_DIGEST_SHA1, &len);
        tlv_file *parsed = NULL;
        assert_int_equal(hsmd_tlv_check(&p, itl, len, &parsed), PT_OK);
        uint8_t *covered = NULL, *signed_file = NULL;
        size_t covered_len = 0, signed_len = 0;
        assert_int_equal(tlv_file_covered_bytes(parsed, &covered, &covered_len), PT_OK);
        uint8_t sig[128];
        size_t sig_len = sizeof sig;
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        assert_int_equal(
            EVP_DigestSignInit(m, NULL, tlv_digest_md(parsed->digest), NULL, f->itlr_key), 1);
        assert_int_equal(EVP_DigestSign(m, sig, &sig_len, covered, covered_len), 1);
        EVP_MD_CTX_free(m);
        assert_int_equal(hsmd_tlv_finish(parsed, sig, sig_len, &signed_file, &signed_len), PT_OK);
        assert_int_equal(signed_len, len);
        tlv_file *g = NULL;
        tlv_verify_result res;
        assert_int_equal(tlv_file_parse(signed_file, signed_len, &g), PT_OK);
        assert_int_equal(tlv_file_verify(g, NULL, &res), PT_OK);
        /* Only the signature bytes differ from the request. */
        assert_memory_equal(signed_file, itl, parsed->signature_offset + 3);
        tlv_file_free(g);
        /* The signed file is refused as input: its placeholder is no longer zero. */
        tlv_expect(&p, signed_file, signed_len, PT_ERR_REFUSED, "not zero-filled");
        /* A bad signature is never returned. */
        sig[5] ^= 1;
        OPENSSL_free(signed_file);
        assert_int_equal(hsmd_tlv_finish(parsed, sig, sig_len, &signed_file, &signed_len),
                         PT_ERR_VERIFY);
        assert_null(signed_file);
        OPENSSL_free(covered);
        tlv_file_free(parsed);
        OPENSSL_free(itl);
    }
    hsmd_tlv_policy_clear(&p);
}

static void test_tlv_refusals(void **state)
{
    fixture *f = *state;
    hsmd_tlv_policy p;
    tlv_policy(f, &p, HSMD_DIGEST_SHA1);
    size_t len = 0;
    uint8_t *itl = build_itl(f->itlr_cert, f->itlr_cert, TLV_DIGEST_SHA512, &len);
    tlv_expect(&p, itl, len, PT_ERR_REFUSED, "digest SHA-512 is not allowed for this key");
    OPENSSL_free(itl);
    hsmd_tlv_policy_clear(&p);

    tlv_policy(f, &p, HSMD_DIGEST_SHA1 | HSMD_DIGEST_SHA512);
    /* Another signer entirely. */
    itl = build_itl(f->other_cert, f->other_cert, TLV_DIGEST_SHA1, &len);
    tlv_expect(&p, itl, len, PT_ERR_REFUSED, "SIGNER_NAME CN=Other,O=Example is not this key's");
    OPENSSL_free(itl);
    /* The right names and serial, but the SAST record holds another certificate. */
    itl = build_itl(f->twin_cert, f->twin_cert, TLV_DIGEST_SHA1, &len);
    tlv_expect(&p, itl, len, PT_ERR_REFUSED,
               "the signer's SAST record does not carry this key's certificate");
    OPENSSL_free(itl);
    /* Garbage and truncation. */
    static const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8};
    tlv_expect(&p, junk, sizeof junk, PT_ERR_FORMAT, "not a well-formed CTL/ITL file");
    itl = build_itl(f->itlr_cert, f->itlr_cert, TLV_DIGEST_SHA1, &len);
    tlv_expect(&p, itl, len, PT_OK, NULL);
    tlv_expect(&p, itl, len - 1, PT_ERR_FORMAT, "not a well-formed CTL/ITL file");
    OPENSSL_free(itl);
    hsmd_tlv_policy_clear(&p);

    /* A key whose modulus does not match the placeholder (a 2048-bit key, 128 bytes). */
    assert_int_equal(hsmd_tlv_policy_init(&p, f->itlr_cert, EVP_PKEY_RSA, 2048, HSMD_DIGEST_SHA1),
                     PT_OK);
    itl = build_itl(f->itlr_cert, f->itlr_cert, TLV_DIGEST_SHA1, &len);
    tlv_expect(&p, itl, len, PT_ERR_REFUSED,
               "the SIGNATURE placeholder is 128 bytes but the key's 2048-bit modulus needs 256");
    OPENSSL_free(itl);
    hsmd_tlv_policy_clear(&p);
}

static void test_tlv_surgery(void **state)
{
    fixture *f = *state;
    hsmd_tlv_policy p;
    tlv_policy(f, &p, HSMD_DIGEST_SHA1 | HSMD_DIGEST_SHA512);
    size_t len = 0;
    uint8_t *itl = build_itl(f->itlr_cert, f->itlr_cert, TLV_DIGEST_SHA1, &len);
    uint8_t *c = OPENSSL_memdup(itl, len);

    /* The signer listed only in a TFTP record: no SAST record for it. */
    static const uint8_t role_sast[] = {TLV_REC_ROLE, 0x00, 0x02, 0x00, TLV_ROLE_SAST};
    static const uint8_t role_tftp[] = {TLV_REC_ROLE, 0x00, 0x02, 0x00, TLV_ROLE_TFTP};
    patch(c, len, role_sast, role_tftp, sizeof role_sast);
    tlv_expect(&p, c, len, PT_ERR_REFUSED, "no SAST record carries the signer's serial");

    /* SIGNATURE_ALGORITHM other than 0. */
    memcpy(c, itl, len);
    static const uint8_t alg0[] = {TLV_HDR_SIGNATURE_ALGORITHM, 0x00, 0x01, 0x00};
    static const uint8_t alg1[] = {TLV_HDR_SIGNATURE_ALGORITHM, 0x00, 0x01, 0x01};
    patch(c, len, alg0, alg1, sizeof alg0);
    tlv_expect(&p, c, len, PT_ERR_REFUSED, "SIGNATURE_ALGORITHM is 1");

    /* A SIGNATURE_MODULUS code that disagrees with the placeholder (1024 bits: code 1). */
    memcpy(c, itl, len);
    static const uint8_t mod1[] = {TLV_HDR_SIGNATURE_MODULUS, 0x00, 0x01, 0x01};
    static const uint8_t mod2[] = {TLV_HDR_SIGNATURE_MODULUS, 0x00, 0x01, 0x02};
    patch(c, len, mod1, mod2, sizeof mod1);
    tlv_expect(&p, c, len, PT_ERR_REFUSED, NULL);

    /* VERSION 1.3: parsed leniently, with a note: not strictly well-formed. */
    memcpy(c, itl, len);
    static const uint8_t v12[] = {TLV_HDR_VERSION, 0x00, 0x02, 0x01, 0x02};
    static const uint8_t v13[] = {TLV_HDR_VERSION, 0x00, 0x02, 0x01, 0x03};
    patch(c, len, v12, v13, sizeof v12);
    tlv_expect(&p, c, len, PT_ERR_REFUSED, "not strictly well-formed");

    /* A non-zero byte in the placeholder. */
    memcpy(c, itl, len);
    tlv_file *parsed = NULL;
    assert_int_equal(tlv_file_parse(c, len, &parsed), PT_OK);
    c[parsed->signature_offset + 3 + 64] = 0x01;
    tlv_file_free(parsed);
    tlv_expect(&p, c, len, PT_ERR_REFUSED, "not zero-filled");

    OPENSSL_free(c);
    OPENSSL_free(itl);
    hsmd_tlv_policy_clear(&p);
}

static void test_tlv_policy_keys(void **state)
{
    fixture *f = *state;
    hsmd_tlv_policy p;
    assert_int_equal(hsmd_tlv_policy_init(&p, f->ec_cert, EVP_PKEY_EC, 256, HSMD_DIGEST_SHA1),
                     PT_ERR_UNSUPPORTED);
    assert_int_equal(hsmd_tlv_policy_init(&p, f->itlr_cert, EVP_PKEY_RSA, 3072, HSMD_DIGEST_SHA1),
                     PT_ERR_UNSUPPORTED);
    assert_non_null(strstr(pt_err_message(), "512, 1024, 2048 or 4096"));
    assert_int_equal(hsmd_tlv_policy_init(&p, f->itlr_cert, EVP_PKEY_RSA, 4096, HSMD_DIGEST_SHA1),
                     PT_OK);
    hsmd_tlv_policy_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_good),
        cmocka_unit_test(test_issue_end_entity_only),
        cmocka_unit_test(test_issue_names),
        cmocka_unit_test(test_issue_validity),
        cmocka_unit_test(test_issue_signature_algorithm),
        cmocka_unit_test(test_issue_serial_and_key),
        cmocka_unit_test(test_issue_malformed),
        cmocka_unit_test(test_issue_extensions),
        cmocka_unit_test(test_issue_finish),
        cmocka_unit_test(test_tlv_good_and_signed),
        cmocka_unit_test(test_tlv_refusals),
        cmocka_unit_test(test_tlv_surgery),
        cmocka_unit_test(test_tlv_policy_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
