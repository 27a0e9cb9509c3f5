/*
 * tlv_file_verify: signatures checked independently with openssl(1), every
 * covered byte flipped, unusable signer records, and the chain of trust a
 * phone applies when a new CTL replaces the one it holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "tlv_testutil.h"

static uint8_t *build_one(X509 *signer, EVP_PKEY *key, uint8_t digest, size_t *len)
{
    tlv_build_record rec = {.role = TLV_ROLE_SAST, .cert = signer};
    tlv_build_params p = {.signer_cert = signer,
                          .digest = digest,
                          .filename = "CTLFile.tlv",
                          .timestamp = 1700000000,
                          .records = &rec,
                          .n_records = 1};
    uint8_t *buf = tt_build(&p, key, len);
    assert_non_null(buf);
    return buf;
}

static void openssl_check(const uint8_t *file, size_t len, X509 *cert, const char *dgst)
{
    tlv_file *f = NULL;
    uint8_t *cov = NULL;
    size_t cov_len = 0;
    char out[512];
    assert_int_equal(tlv_file_parse(file, len, &f), PT_OK);
    assert_int_equal(tlv_file_covered_bytes(f, &cov, &cov_len), PT_OK);
    const uint8_t *sig = file + f->signature_offset + 3;
    if (!tt_openssl_verify(cov, cov_len, sig, f->signature_len, cert, dgst, out, sizeof out))
        fail_msg("openssl dgst -%s: %s", dgst, out);
    /* The same check must fail on one changed covered byte: the checker can say no. */
    cov[cov_len / 2] ^= 0x01;
    assert_false(
        tt_openssl_verify(cov, cov_len, sig, f->signature_len, cert, dgst, out, sizeof out));
    assert_non_null(strstr(out, "Verification failure"));
    OPENSSL_free(cov);
    tlv_file_free(f);
}

static void test_openssl_independent(void **state)
{
    (void)state;
    static const struct {
        int bits;
        uint8_t digest;
        const char *dgst;
    } cases[] = {{1024, TLV_DIGEST_SHA1, "sha1"},
                 {2048, TLV_DIGEST_SHA1, "sha1"},
                 {2048, TLV_DIGEST_SHA512, "sha512"},
                 {4096, TLV_DIGEST_SHA512, "sha512"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EVP_PKEY *key = tt_rsa_key(cases[i].bits);
        X509 *cert = tt_cert(key, "/CN=SAST-1/O=Example", 0x77);
        size_t len = 0;
        uint8_t *buf = build_one(cert, key, cases[i].digest, &len);
        openssl_check(buf, len, cert, cases[i].dgst);
        OPENSSL_free(buf);
        X509_free(cert);
    }
}

/* One flipped bit anywhere in the covered bytes, or in the signature: never valid. */
static void test_flip_every_byte(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 0x123456);
    size_t len = 0;
    uint8_t *buf = build_one(cert, key, TLV_DIGEST_SHA1, &len);
    tlv_file *f = NULL;
    tlv_verify_result res;
    assert_int_equal(tlv_file_parse(buf, len, &f), PT_OK);
    assert_int_equal(tlv_file_verify(f, NULL, &res), PT_OK);
    size_t s = f->signature_offset, k = f->signature_len;
    tlv_file_free(f);
    size_t parsed = 0;
    for (size_t i = 0; i < len; i++) {
        if (i >= s && i < s + 3)
            continue; /* the SIGNATURE tag and length: not covered, not signature */
        buf[i] ^= 0x01;
        if (tlv_file_parse(buf, len, &f) == PT_OK) {
            parsed++;
            pt_err rc = tlv_file_verify(f, NULL, &res);
            assert_int_not_equal(rc, PT_OK);
            if (i >= s + 3 && i < s + 3 + k) {
                assert_int_equal(rc, PT_ERR_VERIFY);
                assert_false(res.signature_valid);
                assert_non_null(strstr(pt_err_message(), "signature does not verify"));
            }
            tlv_file_free(f);
        }
        buf[i] ^= 0x01;
    }
    /* Most flips leave a well-formed file: the signature is what catches them. */
    assert_true(parsed > len / 2);
    OPENSSL_free(buf);
    X509_free(cert);
}

static tlv_file *parse(const uint8_t *buf, size_t len)
{
    tlv_file *f = NULL;
    assert_int_equal(tlv_file_parse(buf, len, &f), PT_OK);
    return f;
}

static void verify_expect(const tlv_file *f, const tlv_file *prev, pt_err want, const char *frag)
{
    tlv_verify_result res;
    pt_err rc = tlv_file_verify(f, prev, &res);
    if (rc != want || strstr(pt_err_message(), frag) == NULL)
        fail_msg("want %d '%s', got %d '%s'", want, frag, rc, pt_err_message());
}

static size_t find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t m, size_t from)
{
    for (size_t i = from; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return i;
    fail_msg("bytes not found");
    return 0;
}

static void test_signer_record_problems(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 0x1001);
    size_t len = 0;
    uint8_t *buf = build_one(cert, key, TLV_DIGEST_SHA1, &len);
    tlv_file *f = parse(buf, len);
    size_t hl = f->header_length, role = find_bytes(buf, len, "\x04\x00\x02\x00\x00", 5, hl);
    size_t serial = find_bytes(buf, len, "\x06\x00\x02\x10\x01", 5, hl);
    size_t hserial = find_bytes(buf, len, "\x05\x00\x02\x10\x01", 5, 0);
    size_t sigalg = find_bytes(buf, len, "\x0A\x00\x01\x00", 4, 0);
    tlv_file_free(f);

    /* The signer listed only as CCM. */
    buf[role + 4] = TLV_ROLE_CCM;
    f = parse(buf, len);
    verify_expect(f, NULL, PT_ERR_VERIFY, "no SAST record has the signer serial 10:01");
    tlv_file_free(f);
    buf[role + 4] = TLV_ROLE_SAST;

    /* Header and record agree on a serial that is not the certificate's. */
    buf[serial + 4] = buf[hserial + 4] = 0x02;
    f = parse(buf, len);
    assert_non_null(tlv_file_signer_record(f));
    verify_expect(f, NULL, PT_ERR_VERIFY, "certificate has another serial than SIGNER_SERIAL");
    tlv_file_free(f);
    buf[serial + 4] = buf[hserial + 4] = 0x01;

    buf[sigalg + 3] = 1;
    f = parse(buf, len);
    verify_expect(f, NULL, PT_ERR_VERIFY, "SIGNATURE_ALGORITHM 1 is not supported");
    tlv_file_free(f);
    buf[sigalg + 3] = 0;

    f = parse(buf, len);
    verify_expect(f, NULL, PT_OK, "");
    tlv_file_free(f);

    /* No CERTIFICATE in the signer record: cut it off the end (it is the last element). */
    size_t cert_at = find_bytes(buf, len, "\x09", 1, len - (size_t)i2d_X509(cert, NULL) - 3);
    size_t cut = cert_at;
    size_t r = (size_t)buf[hl + 3] << 8 | buf[hl + 4];
    r -= len - cut;
    buf[hl + 3] = (uint8_t)(r >> 8);
    buf[hl + 4] = (uint8_t)r;
    f = parse(buf, cut);
    verify_expect(f, NULL, PT_ERR_FORMAT, "the signer's SAST record carries no CERTIFICATE");
    tlv_file_free(f);
    OPENSSL_free(buf);
    X509_free(cert);
}

/* A signature whose length does not match the signer's key. */
static void test_signature_length_mismatch(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 0x1001);
    size_t len = 0;
    uint8_t *buf = build_one(cert, key, TLV_DIGEST_SHA1, &len);
    tt_elem h[TT_MAX_ELEMS];
    size_t n = tt_header_split(buf, len, h);
    int s = tt_elem_find(h, n, TLV_HDR_SIGNATURE);
    static uint8_t short_sig[3 + 64] = {0x0C, 0x00, 0x40};
    h[s] = (tt_elem){12, short_sig, sizeof short_sig};
    size_t hl = (size_t)buf[8] << 8 | buf[9], vlen = 0;
    uint8_t *v = tt_header_join(h, n, buf + hl, len - hl, &vlen);
    tlv_file *f = parse(v, vlen);
    verify_expect(f, NULL, PT_ERR_VERIFY,
                  "the signature is 64 bytes but the signer's key is 1024-bit");
    tlv_file_free(f);
    free(v);
    OPENSSL_free(buf);
    X509_free(cert);
}

/* The trust chain a phone applies: a new file must be signed by a SAST the old one lists. */
typedef struct chain {
    EVP_PKEY *ka, *kb, *kc, *kimp;
    X509 *a, *b, *c, *imp, *server;
} chain;

static uint8_t *build_list(X509 *signer, EVP_PKEY *key, X509 **certs, const uint16_t *roles,
                           size_t n, size_t *len)
{
    tlv_build_record recs[8];
    for (size_t i = 0; i < n; i++)
        recs[i] = (tlv_build_record){.role = roles[i], .cert = certs[i]};
    tlv_build_params p = {.signer_cert = signer,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .timestamp = 1,
                          .records = recs,
                          .n_records = n};
    uint8_t *buf = tt_build(&p, key, len);
    assert_non_null(buf);
    return buf;
}

static tlv_file *list_file(X509 *signer, EVP_PKEY *key, X509 **certs, const uint16_t *roles,
                           size_t n)
{
    size_t len = 0;
    uint8_t *buf = build_list(signer, key, certs, roles, n, &len);
    tlv_file *f = parse(buf, len);
    OPENSSL_free(buf);
    return f;
}

static void test_previous_chain(void **state)
{
    (void)state;
    chain c;
    c.ka = tt_rsa_key_new(1024);
    c.kb = tt_rsa_key_new(1024);
    c.kc = tt_rsa_key_new(1024);
    c.kimp = tt_rsa_key_new(1024);
    c.a = tt_cert(c.ka, "/CN=SAST-A", 0xA);
    c.b = tt_cert(c.kb, "/CN=SAST-B", 0xB);
    c.c = tt_cert(c.kc, "/CN=SAST-C", 0xC);
    c.imp = tt_cert(c.kimp, "/CN=SAST-B", 0xB); /* B's name and serial, another key */
    c.server = tt_cert(tt_ec_key("P-256"), "/CN=cucm", 0xD);
    const uint16_t S = TLV_ROLE_SAST, T = TLV_ROLE_CCM_TFTP, M = TLV_ROLE_CCM;

    tlv_file *v1 = list_file(c.a, c.ka, (X509 *[]){c.a, c.b, c.server}, (uint16_t[]){S, S, T}, 3);
    tlv_file *v1_a = list_file(c.a, c.ka, (X509 *[]){c.a, c.server}, (uint16_t[]){S, T}, 2);
    tlv_file *v1_bccm = list_file(c.a, c.ka, (X509 *[]){c.a, c.b}, (uint16_t[]){S, M}, 2);
    /* v2 adds C, drops A, and is signed by B. */
    tlv_file *v2 = list_file(c.b, c.kb, (X509 *[]){c.b, c.c, c.server}, (uint16_t[]){S, S, T}, 3);
    tlv_file *v3 = list_file(c.c, c.kc, (X509 *[]){c.c, c.b}, (uint16_t[]){S, S}, 2);
    tlv_file *vimp = list_file(c.imp, c.kimp, (X509 *[]){c.imp}, (uint16_t[]){S}, 1);

    tlv_verify_result res;
    assert_int_equal(tlv_file_verify(v2, v1, &res), PT_OK);
    assert_true(res.signature_valid);
    assert_true(res.signer_in_previous);
    assert_string_equal(res.signer->subject, "CN=SAST-B");
    assert_int_equal(tlv_file_verify(v1, v1, &res), PT_OK);
    assert_int_equal(tlv_file_verify(v3, v2, &res), PT_OK);

    /* Signed by a token the phone's file does not list as SAST: refused, though valid. */
    assert_int_equal(tlv_file_verify(v2, v1_a, &res), PT_ERR_VERIFY);
    assert_true(res.signature_valid);
    assert_false(res.signer_in_previous);
    assert_non_null(strstr(pt_err_message(), "not a SAST certificate of the previous file"));
    verify_expect(v3, v1, PT_ERR_VERIFY, "not a SAST certificate of the previous file");
    verify_expect(v2, v1_bccm, PT_ERR_VERIFY, "not a SAST certificate of the previous file");
    /* Same name and serial as B, another key: the serial alone earns no trust. */
    assert_int_equal(tlv_file_verify(vimp, NULL, &res), PT_OK);
    assert_int_equal(tlv_file_verify(vimp, v1, &res), PT_ERR_VERIFY);
    assert_true(res.signature_valid);
    assert_false(res.signer_in_previous);

    tlv_file *all[] = {v1, v1_a, v1_bccm, v2, v3, vimp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tlv_file_free(all[i]);
    X509 *certs[] = {c.a, c.b, c.c, c.imp, c.server};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
        X509_free(certs[i]);
    EVP_PKEY *keys[] = {c.ka, c.kb, c.kc, c.kimp};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EVP_PKEY_free(keys[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_independent),
        cmocka_unit_test(test_flip_every_byte),
        cmocka_unit_test(test_signer_record_problems),
        cmocka_unit_test(test_signature_length_mismatch),
        cmocka_unit_test(test_previous_chain),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tt_cleanup();
    return rc;
}
