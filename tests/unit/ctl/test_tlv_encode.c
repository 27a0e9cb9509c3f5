/*
 * tlv_encode and tlv_codes: §7.4 encodings checked against expected text and
 * bytes written out by hand, or against the certificate's own DER bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>

#include "tlv_testutil.h"

static void name_expect(const X509_NAME *name, const char *want)
{
    char *text = NULL;
    assert_int_equal(tlv_name_render(name, &text), PT_OK);
    assert_string_equal(text, want);
    OPENSSL_free(text);
}

static void spec_expect(const char *spec, const char *want)
{
    X509_NAME *name = tt_name(spec);
    name_expect(name, want);
    X509_NAME_free(name);
}

/* §7.4.1 step 1: encoded order (first RDN first), not RFC 4514's reversed order. */
static void test_name_order(void **state)
{
    (void)state;
    spec_expect("/CN=SAST-1/O=Example/OU=VoIP/C=NZ", "CN=SAST-1,O=Example,OU=VoIP,C=NZ");
    spec_expect("/C=NZ/O=Example/CN=SAST-1", "C=NZ,O=Example,CN=SAST-1");
    spec_expect("/CN=SAST", "CN=SAST");
    X509_NAME *empty = X509_NAME_new();
    name_expect(empty, "");
    X509_NAME_free(empty);
}

/* The nine short names, given by OID so the test does not lean on OpenSSL's names. */
static void test_name_short_names(void **state)
{
    (void)state;
    spec_expect("/2.5.4.3=a/2.5.4.7=b/2.5.4.8=c/2.5.4.10=d/2.5.4.11=e/2.5.4.6=NZ/2.5.4.9=g"
                "/0.9.2342.19200300.100.1.25=h/0.9.2342.19200300.100.1.1=i",
                "CN=a,L=b,ST=c,O=d,OU=e,C=NZ,STREET=g,DC=h,UID=i");
}

static void test_name_dotted_oids(void **state)
{
    (void)state;
    spec_expect("/CN=x/emailAddress=user@example.com",
                "CN=x,1.2.840.113549.1.9.1=user@example.com");
    spec_expect("/serialNumber=ABC/title=Boss/1.3.6.1.4.1.32473.1=private",
                "2.5.4.5=ABC,2.5.4.12=Boss,1.3.6.1.4.1.32473.1=private");
}

static void escape_expect(const char *value, size_t len, const char *want)
{
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "1.3.6.1.4.1.32473.2", MBSTRING_UTF8,
                                                (const unsigned char *)value, (int)len, -1, 0),
                     1);
    name_expect(name, want);
    X509_NAME_free(name);
}

/* RFC 4514 §2.4 as §7.4.1 restricts it: every escape, and what is left alone. */
static void test_name_escapes(void **state)
{
    (void)state;
    static const char p[] = "1.3.6.1.4.1.32473.2=";
    char want[128];
#define ESC(v, w)                                                                                  \
    do {                                                                                           \
        snprintf(want, sizeof want, "%s%s", p, w);                                                 \
        escape_expect(v, sizeof(v) - 1, want);                                                     \
    } while (0)
    ESC("a\\b", "a\\\\b");
    ESC("a\"b", "a\\\"b");
    ESC("a+b", "a\\+b");
    ESC("a,b", "a\\,b");
    ESC("a;b", "a\\;b");
    ESC("a<b>", "a\\<b\\>");
    ESC("a\0b", "a\\00b");
    ESC("#a#b", "\\#a#b");
    ESC(" a b ", "\\ a b\\ ");
    ESC(" ", "\\ ");
    ESC("a=b", "a=b");
    ESC("\xC3\x9C"
        "ber",
        "\xC3\x9C"
        "ber");
    ESC("", "");
#undef ESC
    /* A BMPString comes out as UTF-8. */
    X509_NAME *name = X509_NAME_new();
    static const unsigned char bmp[] = {0x00, 'A', 0x00, 0xDC};
    assert_int_equal(
        X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_BMPSTRING, bmp, sizeof bmp, -1, 0),
        1);
    name_expect(name, "CN=A\xC3\x9C");
    X509_NAME_free(name);
}

/* A multi-valued RDN written by hand, its two values deliberately not in DER SET order:
   SEQUENCE { SET { OU=VoIP, CN=abc }, SET { C=NZ } }. */
static const uint8_t multi_rdn_der[] = {
    0x30, 0x28,                                                               /* Name */
    0x31, 0x19,                                                               /* RDN 1 */
    0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x0b, 0x0c, 0x04, 'V', 'o', 'I', 'P', /* OU */
    0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, 'a', 'b', 'c',      /* CN */
    0x31, 0x0b,                                                               /* RDN 2 */
    0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, 'N', 'Z',           /* C */
};

static void test_name_multi_valued(void **state)
{
    (void)state;
    const unsigned char *p = multi_rdn_der;
    X509_NAME *name = d2i_X509_NAME(NULL, &p, sizeof multi_rdn_der);
    assert_non_null(name);
    assert_int_equal(X509_NAME_entry_count(name), 3);
    name_expect(name, "OU=VoIP,CN=abc,C=NZ");
    X509_NAME_free(name);
}

static void serial_expect(const uint8_t *in, size_t in_len, const uint8_t *want, size_t want_len)
{
    BIGNUM *bn = BN_bin2bn(in, (int)in_len, NULL);
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(tlv_serial_encode(ai, &out, &len), PT_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, want_len);
    OPENSSL_free(out);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
}

static void test_serials(void **state)
{
    (void)state;
    serial_expect((const uint8_t *)"\x12\x34\x56", 3, (const uint8_t *)"\x12\x34\x56", 3);
    /* Top bit set: DER content would be 00 86 99 ... (17 bytes); the file has 16. */
    static const uint8_t s128[16] = {0x86, 0x99, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    serial_expect(s128, sizeof s128, s128, sizeof s128);
    serial_expect((const uint8_t *)"\x80", 1, (const uint8_t *)"\x80", 1);
    serial_expect((const uint8_t *)"\x00\x00\xff", 3, (const uint8_t *)"\xff", 1);
    serial_expect((const uint8_t *)"\x00", 1, (const uint8_t *)"\x00", 1);

    /* The same through a certificate: the DER INTEGER has the leading 00, the encoding not. */
    X509 *cert = tt_cert_ex(tt_rsa_key(1024), "/CN=x", NULL, s128, sizeof s128, NULL, NULL);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    uint8_t *der = NULL;
    assert_int_equal(i2d_ASN1_INTEGER(serial, &der), 19);
    assert_memory_equal(der, "\x02\x11\x00\x86\x99", 5);
    serial_expect(der + 3, 16, s128, sizeof s128);
    OPENSSL_free(der);
    X509_free(cert);

    ASN1_INTEGER *neg = ASN1_INTEGER_new();
    ASN1_INTEGER_set(neg, -5);
    uint8_t *out = (uint8_t *)"x";
    size_t len = 7;
    assert_int_equal(tlv_serial_encode(neg, &out, &len), PT_ERR_UNSUPPORTED);
    assert_null(out);
    assert_int_equal(len, 0);
    ASN1_INTEGER_free(neg);
}

/* The encoding compared with the subjectPublicKey bytes of a certificate holding the key. */
static void public_key_expect(EVP_PKEY *key, size_t want_len, const uint8_t *prefix,
                              size_t prefix_len)
{
    X509 *cert = tt_cert(key, "/CN=pk", 9);
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(cert);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(tlv_public_key_encode(X509_get0_pubkey(cert), &out, &len), PT_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, prefix, prefix_len);
    assert_int_equal(ASN1_STRING_length(bits), want_len);
    assert_memory_equal(out, ASN1_STRING_get0_data(bits), len);
    /* The fast path from the certificate gives the very same bytes. */
    uint8_t *fast = NULL;
    size_t fast_len = 0;
    assert_int_equal(tlv_cert_public_key_encode(cert, &fast, &fast_len), PT_OK);
    assert_int_equal(fast_len, len);
    assert_memory_equal(fast, out, len);
    OPENSSL_free(fast);
    OPENSSL_free(out);
    X509_free(cert);
}

static void test_public_keys_rsa(void **state)
{
    (void)state;
    public_key_expect(tt_rsa_key(1024), 140, (const uint8_t *)"\x30\x81\x89\x02\x81\x81\x00", 7);
    public_key_expect(tt_rsa_key(2048), 270,
                      (const uint8_t *)"\x30\x82\x01\x0A\x02\x82\x01\x01\x00", 9);
    public_key_expect(tt_rsa_key(4096), 526,
                      (const uint8_t *)"\x30\x82\x02\x0A\x02\x82\x02\x01\x00", 9);
}

static void test_public_keys_ec(void **state)
{
    (void)state;
    public_key_expect(tt_ec_key("P-256"), 65, (const uint8_t *)"\x04", 1);
    public_key_expect(tt_ec_key("P-384"), 97, (const uint8_t *)"\x04", 1);
    public_key_expect(tt_ec_key("P-521"), 133, (const uint8_t *)"\x04", 1);
}

/* A certificate with a compressed point still gives 04 || X || Y. */
static void test_public_key_ec_compressed(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    uint8_t full[65];
    size_t full_len = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, full,
                                                     sizeof full, &full_len),
                     1);
    assert_int_equal(full_len, 65);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                    "compressed"),
                     1);
    X509 *cert = tt_cert(key, "/CN=compressed", 10);
    uint8_t *der = NULL;
    int der_len = i2d_X509(cert, &der);
    const unsigned char *p = der;
    X509 *back = d2i_X509(NULL, &p, der_len);
    assert_int_equal(ASN1_STRING_length(X509_get0_pubkey_bitstr(back)), 33);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(tlv_public_key_encode(X509_get0_pubkey(back), &out, &len), PT_OK);
    assert_int_equal(len, 65);
    assert_memory_equal(out, full, 65);
    OPENSSL_free(out);
    /* From the certificate too: the compressed point is not copied but expanded. */
    assert_int_equal(tlv_cert_public_key_encode(back, &out, &len), PT_OK);
    assert_int_equal(len, 65);
    assert_memory_equal(out, full, 65);
    OPENSSL_free(out);
    OPENSSL_free(der);
    X509_free(back);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void test_public_key_other_types(void **state)
{
    (void)state;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    uint8_t *out = (uint8_t *)"x";
    size_t len = 3;
    assert_int_equal(tlv_public_key_encode(ed, &out, &len), PT_ERR_UNSUPPORTED);
    assert_null(out);
    assert_int_equal(len, 0);
    EVP_PKEY_free(ed);
}

/* §7.4.4: the bytes after the BIT STRING's unused-bits octet, which end the DER. */
static void cert_signature_expect(EVP_PKEY *sign_key, size_t want_len)
{
    X509 *cert = tt_cert_ex(tt_rsa_key(1024), "/CN=sig", "/CN=issuer", (const uint8_t *)"\x01", 1,
                            sign_key, NULL);
    uint8_t *der = NULL, *sig = NULL;
    size_t len = 0;
    int der_len = i2d_X509(cert, &der);
    assert_int_equal(tlv_cert_signature(cert, &sig, &len), PT_OK);
    if (want_len != 0)
        assert_int_equal(len, want_len);
    assert_memory_equal(der + der_len - (int)len, sig, len);
    assert_int_equal(der[der_len - (int)len - 1], 0x00);
    OPENSSL_free(der);
    OPENSSL_free(sig);
    X509_free(cert);
}

static void test_cert_signature_rsa(void **state)
{
    (void)state;
    cert_signature_expect(tt_rsa_key(2048), 256);
    cert_signature_expect(tt_rsa_key(1024), 128);
}

static void test_cert_signature_ecdsa(void **state)
{
    (void)state;
    cert_signature_expect(tt_ec_key("P-256"), 0);
    X509 *cert = tt_cert_ex(tt_rsa_key(1024), "/CN=sig", "/CN=issuer", (const uint8_t *)"\x01", 1,
                            tt_ec_key("P-384"), NULL);
    uint8_t *sig = NULL;
    size_t len = 0;
    assert_int_equal(tlv_cert_signature(cert, &sig, &len), PT_OK);
    /* A DER Ecdsa-Sig-Value: SEQUENCE { r, s }, nothing after. */
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    assert_non_null(es);
    assert_ptr_equal(p, sig + len);
    assert_int_equal(sig[0], 0x30);
    ECDSA_SIG_free(es);
    OPENSSL_free(sig);
    X509_free(cert);
}

static void test_roles_and_codes(void **state)
{
    (void)state;
    static const struct {
        uint16_t code;
        const char *name;
    } roles[] = {{0, "SAST"}, {1, "CCM"},  {2, "CCM+TFTP"},   {3, "TFTP"},
                 {4, "CAPF"}, {5, "SRST"}, {7, "APP-SERVER"}, {21, "TVS"}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        assert_string_equal(tlv_role_name(roles[i].code), roles[i].name);
        assert_int_equal(tlv_role_parse(roles[i].name), roles[i].code);
    }
    assert_int_equal(tlv_role_parse("ccm+tftp"), TLV_ROLE_CCM_TFTP);
    assert_null(tlv_role_name(6));
    assert_null(tlv_role_name(8));
    assert_null(tlv_role_name(22));
    assert_int_equal(tlv_role_parse("HTTPS"), -1);
    assert_int_equal(tlv_role_parse(NULL), -1);

    assert_ptr_equal(tlv_digest_md(TLV_DIGEST_SHA1), EVP_sha1());
    assert_ptr_equal(tlv_digest_md(TLV_DIGEST_SHA512), EVP_sha512());
    assert_null(tlv_digest_md(4));
    assert_string_equal(tlv_digest_name(TLV_DIGEST_SHA256), "SHA-256");
    static const size_t k[] = {64, 128, 256, 512};
    for (uint8_t c = 0; c < 4; c++) {
        assert_int_equal(tlv_modulus_code(k[c]), c);
        assert_int_equal(tlv_modulus_bytes(c), k[c]);
    }
    assert_int_equal(tlv_modulus_code(384), -1);
    assert_int_equal(tlv_modulus_bytes(4), 0);
    assert_true(tlv_serial_equal((const uint8_t *)"\x00\x86", 2, (const uint8_t *)"\x86", 1));
    assert_false(tlv_serial_equal((const uint8_t *)"\x86", 1, (const uint8_t *)"\x86\x00", 2));
    assert_false(tlv_serial_equal((const uint8_t *)"", 0, (const uint8_t *)"", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_order),
        cmocka_unit_test(test_name_short_names),
        cmocka_unit_test(test_name_dotted_oids),
        cmocka_unit_test(test_name_escapes),
        cmocka_unit_test(test_name_multi_valued),
        cmocka_unit_test(test_serials),
        cmocka_unit_test(test_public_keys_rsa),
        cmocka_unit_test(test_public_keys_ec),
        cmocka_unit_test(test_public_key_ec_compressed),
        cmocka_unit_test(test_public_key_other_types),
        cmocka_unit_test(test_cert_signature_rsa),
        cmocka_unit_test(test_cert_signature_ecdsa),
        cmocka_unit_test(test_roles_and_codes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tt_cleanup();
    return rc;
}
