/*
 * Certificate authentication (§9.3-§9.5): blobs, raw-digest RSA, DigestInfo
 * tolerance, ECDSA, SUDI with its little-endian session ID, the trust check,
 * and the whole AUTH_RESPONSE verification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/rsa.h>

#include "ca_testutil.h"
#include "capf_auth.h"

#define CA_DN    "CN=CAPF-1,O=Example,OU=VoIP,C=NZ"
#define MFG_DN   "CN=Manufacturing CA,O=Phones Inc"
#define DEVICE   "SEP001122334455"
#define SID_SUDI 0x01020304u

/* Keys and certificates shared by all tests (RSA key generation is slow). */
typedef struct fixture {
    EVP_PKEY *ca_key, *phone_key, *phone_ec, *mfg_key, *sudi_key, *sudi_ec, *other_key;
    X509 *ca, *lsc, *lsc_ec, *mfg, *sudi, *sudi_ec_cert, *stranger, *impostor_ca, *impostor_issued;
    STACK_OF(X509) * trust;
} fixture;

static fixture fx;

static int setup(void **state)
{
    (void)state;
    fx.ca_key = tu_key_rsa(2048);
    fx.phone_key = tu_key_rsa(2048);
    fx.phone_ec = tu_key_ec("P-256");
    fx.mfg_key = tu_key_rsa(2048);
    fx.sudi_key = tu_key_rsa(2048);
    fx.sudi_ec = tu_key_ec("P-384");
    fx.other_key = tu_key_rsa(2048);

    fx.ca = tu_cert_make(
        &(tu_cert_opts){.subject = CA_DN, .key = fx.ca_key, .signer = fx.ca_key, .ca = true});
    fx.lsc = tu_cert_make(&(tu_cert_opts){.subject = "CN=" DEVICE ",O=Example,OU=VoIP,C=NZ",
                                          .issuer = CA_DN,
                                          .key = fx.phone_key,
                                          .signer = fx.ca_key});
    fx.lsc_ec = tu_cert_make(&(tu_cert_opts){
        .subject = "CN=" DEVICE, .issuer = CA_DN, .key = fx.phone_ec, .signer = fx.ca_key});
    fx.mfg = tu_cert_make(
        &(tu_cert_opts){.subject = MFG_DN, .key = fx.mfg_key, .signer = fx.mfg_key, .ca = true});
    /* MICs of older phones are signed with SHA-1 */
    fx.sudi = tu_cert_make(&(tu_cert_opts){.subject = "CN=CP-8865-" DEVICE,
                                           .issuer = MFG_DN,
                                           .key = fx.sudi_key,
                                           .signer = fx.mfg_key,
                                           .md = EVP_sha1()});
    fx.sudi_ec_cert = tu_cert_make(&(tu_cert_opts){
        .subject = "CN=EC-SUDI", .issuer = "CN=Nobody", .key = fx.sudi_ec, .signer = fx.sudi_ec});
    fx.stranger = tu_cert_make(
        &(tu_cert_opts){.subject = "CN=" DEVICE, .key = fx.other_key, .signer = fx.other_key});
    /* same DN as the CAPF CA, different key */
    fx.impostor_ca = tu_cert_make(
        &(tu_cert_opts){.subject = CA_DN, .key = fx.other_key, .signer = fx.other_key, .ca = true});
    fx.impostor_issued = tu_cert_make(&(tu_cert_opts){
        .subject = "CN=" DEVICE, .issuer = CA_DN, .key = fx.phone_key, .signer = fx.other_key});

    fx.trust = sk_X509_new_null();
    sk_X509_push(fx.trust, fx.ca);
    sk_X509_push(fx.trust, fx.mfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sk_X509_free(fx.trust);
    X509 *certs[] = {fx.ca,       fx.lsc,         fx.lsc_ec,
                     fx.mfg,      fx.sudi,        fx.sudi_ec_cert,
                     fx.stranger, fx.impostor_ca, fx.impostor_issued};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
        X509_free(certs[i]);
    EVP_PKEY *keys[] = {fx.ca_key,   fx.phone_key, fx.phone_ec, fx.mfg_key,
                        fx.sudi_key, fx.sudi_ec,   fx.other_key};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static buf cert_der(X509 *x)
{
    buf b;
    b.p = tu_cert_der(x, &b.n);
    return b;
}

static buf auth_blob(const char *name, X509 *cert)
{
    buf der = cert_der(cert), b;
    assert_int_equal(capf_auth_blob(name, der.p, der.n, &b.p, &b.n), PT_OK);
    OPENSSL_free(der.p);
    return b;
}

static buf sign(EVP_PKEY *key, uint8_t digest, buf blob)
{
    buf s;
    assert_int_equal(capf_auth_sign(key, digest, blob.p, blob.n, &s.p, &s.n), PT_OK);
    return s;
}

/* Standard RSASSA-PKCS1-v1_5 (DigestInfo), which servers should tolerate. */
static buf sign_digest_info(EVP_PKEY *key, const EVP_MD *md, buf blob)
{
    buf s;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, NULL, &s.n, blob.p, blob.n), 1);
    s.p = OPENSSL_malloc(s.n);
    assert_int_equal(EVP_DigestSign(ctx, s.p, &s.n, blob.p, blob.n), 1);
    EVP_MD_CTX_free(ctx);
    return s;
}

/* k bytes of em raised to d: lets a test choose any padding. */
static buf sign_em(EVP_PKEY *key, const uint8_t *em, size_t k)
{
    buf s = {OPENSSL_malloc(k), k};
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, s.p, &s.n, em, k), 1);
    EVP_PKEY_CTX_free(ctx);
    return s;
}

static void buf_free(buf b)
{
    OPENSSL_free(b.p);
}

static pt_err verify(EVP_PKEY *key, uint8_t digest, buf blob, buf sig, capf_sig_form *form)
{
    return capf_auth_verify(key, digest, blob.p, blob.n, sig.p, sig.n, form);
}

/* What a phone sends: an AUTH_RESPONSE signed over its own name and certificate. */
typedef struct response_opts {
    uint32_t sid;
    const char *signed_name; /* name in the signed blob */
    const char *sent_name;   /* name in DEVICE_NAME; NULL: signed_name */
    X509 *cert;
    EVP_PKEY *key;
    bool digest_info; /* standard PKCS#1 v1.5 in place of the raw form */
    X509 *sudi;       /* optional */
    EVP_PKEY *sudi_key;
    bool sudi_big_endian; /* the mistake §9.4 warns about */
} response_opts;

static buf make_response(const response_opts *o)
{
    buf der = cert_der(o->cert), blob = auth_blob(o->signed_name, o->cert), s1, s512;
    buf sudi_der = {0}, sudi_blob = {0}, u1 = {0}, u512 = {0}, msg;
    if (o->digest_info) {
        s1 = sign_digest_info(o->key, EVP_sha1(), blob);
        s512 = sign_digest_info(o->key, EVP_sha512(), blob);
    } else {
        s1 = sign(o->key, CAPF_DIGEST_SHA1, blob);
        s512 = sign(o->key, CAPF_DIGEST_SHA512, blob);
    }
    capf_cert_auth a = {
        .device_name = o->sent_name ? o->sent_name : o->signed_name,
        .password = "",
        .cert = der.p,
        .cert_len = der.n,
        .signed_data = s1.p,
        .signed_data_len = s1.n,
        .sha2_sig = s512.p,
        .sha2_sig_len = s512.n,
    };
    if (o->sudi != NULL) {
        sudi_der = cert_der(o->sudi);
        uint32_t sid = o->sudi_big_endian ? __builtin_bswap32(o->sid) : o->sid;
        assert_int_equal(capf_sudi_blob(sid, sudi_der.p, sudi_der.n, &sudi_blob.p, &sudi_blob.n),
                         PT_OK);
        u1 = sign(o->sudi_key, CAPF_DIGEST_SHA1, sudi_blob);
        u512 = sign(o->sudi_key, CAPF_DIGEST_SHA512, sudi_blob);
        a.sudi_cert = sudi_der.p;
        a.sudi_cert_len = sudi_der.n;
        a.sudi_sha1_sig = u1.p;
        a.sudi_sha1_sig_len = u1.n;
        a.sudi_sha512_sig = u512.p;
        a.sudi_sha512_sig_len = u512.n;
    }
    assert_int_equal(capf_msg_build_auth_response_cert(o->sid, &a, &msg.p, &msg.n), PT_OK);
    buf all[] = {der, blob, s1, s512, sudi_der, sudi_blob, u1, u512};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        buf_free(all[i]);
    return msg;
}

static pt_err verify_msg(buf msg, capf_auth_result *res)
{
    capf_msg *m = NULL;
    assert_int_equal(capf_msg_parse(msg.p, msg.n, &m), PT_OK);
    pt_err rc = capf_auth_verify_response(m, fx.trust, NULL, res);
    if (rc != PT_OK)
        fprintf(stderr, "  verify_response: %s\n", pt_err_message());
    capf_msg_free(m);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Blobs                                                                    */

static void test_blobs(void **state)
{
    (void)state;
    const uint8_t der[] = {0x30, 0x01, 0xAA};
    buf b;
    assert_int_equal(capf_auth_blob("SEP1", der, sizeof der, &b.p, &b.n), PT_OK);
    assert_int_equal(b.n, 8);
    assert_memory_equal(b.p, "SEP1\0\x30\x01\xAA", 8);
    buf_free(b);

    assert_int_equal(capf_sudi_blob(SID_SUDI, der, sizeof der, &b.p, &b.n), PT_OK);
    assert_int_equal(b.n, 7);
    assert_memory_equal(b.p, "\x04\x03\x02\x01\x30\x01\xAA", 7);
    buf_free(b);
    assert_int_equal(capf_sudi_blob(1, der, sizeof der, &b.p, &b.n), PT_OK);
    assert_memory_equal(b.p, "\x01\x00\x00\x00", 4);
    buf_free(b);
}

/* ------------------------------------------------------------------------ */
/* RSA                                                                      */

/* s^e mod n of a raw signature is exactly 00 01 FF.. 00 H (checked by hand). */
static void check_raw_em(EVP_PKEY *key, const EVP_MD *md, buf blob, buf sig)
{
    uint8_t h[64], em[512];
    unsigned int hlen = 0;
    size_t k = sizeof em;
    assert_int_equal(EVP_Digest(blob.p, blob.n, h, &hlen, md, NULL), 1);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    assert_int_equal(EVP_PKEY_verify_recover_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 1);
    assert_int_equal(EVP_PKEY_verify_recover(ctx, em, &k, sig.p, sig.n), 1);
    EVP_PKEY_CTX_free(ctx);
    assert_int_equal(k, 256);
    assert_int_equal(em[0], 0x00);
    assert_int_equal(em[1], 0x01);
    for (size_t i = 2; i < k - hlen - 1; i++)
        assert_int_equal(em[i], 0xff);
    assert_int_equal(em[k - hlen - 1], 0x00);
    assert_memory_equal(em + k - hlen, h, hlen);
}

static void test_rsa_raw(void **state)
{
    (void)state;
    buf blob = auth_blob(DEVICE, fx.lsc);
    capf_sig_form form;
    buf s1 = sign(fx.phone_key, CAPF_DIGEST_SHA1, blob);
    buf s512 = sign(fx.phone_key, CAPF_DIGEST_SHA512, blob);
    assert_int_equal(s1.n, 256);
    check_raw_em(fx.phone_key, EVP_sha1(), blob, s1); /* 233 x FF */
    check_raw_em(fx.phone_key, EVP_sha512(), blob, s512);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, s1, &form), PT_OK);
    assert_int_equal(form, CAPF_SIG_RSA_RAW);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA512, blob, s512, &form), PT_OK);
    assert_int_equal(form, CAPF_SIG_RSA_RAW);
    assert_string_equal(capf_sig_form_name(form), "RSA raw digest");
    /* a SHA-1 signature is not a SHA-512 one */
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA512, blob, s1, &form), PT_ERR_VERIFY);
    assert_int_equal(form, CAPF_SIG_NONE);
    buf_free(s1);
    buf_free(s512);
    buf_free(blob);
}

static void test_rsa_digest_info_tolerated(void **state)
{
    (void)state;
    buf blob = auth_blob(DEVICE, fx.lsc);
    capf_sig_form form;
    buf s1 = sign_digest_info(fx.phone_key, EVP_sha1(), blob);
    buf s512 = sign_digest_info(fx.phone_key, EVP_sha512(), blob);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, s1, &form), PT_OK);
    assert_int_equal(form, CAPF_SIG_RSA_DIGEST_INFO);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA512, blob, s512, &form), PT_OK);
    assert_int_equal(form, CAPF_SIG_RSA_DIGEST_INFO);
    buf_free(s1);
    buf_free(s512);
    buf_free(blob);
}

static void test_rsa_failures(void **state)
{
    (void)state;
    buf blob = auth_blob(DEVICE, fx.lsc);
    capf_sig_form form;
    buf s1 = sign(fx.phone_key, CAPF_DIGEST_SHA1, blob);

    /* wrong device name */
    buf other_name = auth_blob("SEP001122334456", fx.lsc);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, other_name, s1, &form), PT_ERR_VERIFY);
    /* wrong certificate in the blob */
    buf other_cert = auth_blob(DEVICE, fx.stranger);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, other_cert, s1, &form), PT_ERR_VERIFY);
    /* wrong key */
    assert_int_equal(verify(fx.other_key, CAPF_DIGEST_SHA1, blob, s1, &form), PT_ERR_VERIFY);
    /* every single flipped byte */
    for (size_t i = 0; i < s1.n; i++) {
        s1.p[i] ^= 0x01;
        assert_int_not_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, s1, &form), PT_OK);
        s1.p[i] ^= 0x01;
    }
    /* lengths */
    buf longer = {OPENSSL_zalloc(257), 257}, empty = {s1.p, 0};
    memcpy(longer.p + 1, s1.p, 256);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, longer, &form), PT_ERR_VERIFY);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, empty, &form), PT_ERR_VERIFY);
    /* unknown digest code */
    assert_int_equal(verify(fx.phone_key, 4, blob, s1, &form), PT_ERR_UNSUPPORTED);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, s1, &form), PT_OK);
    buf_free(longer);
    buf_free(other_name);
    buf_free(other_cert);
    buf_free(s1);
    buf_free(blob);
}

/*
 * Known servers compare only the trailing |H| bytes. A block with the right
 * tail but another prefix must fail here (with e = 3 such blocks can be forged).
 */
static void test_rsa_prefix_is_checked(void **state)
{
    (void)state;
    buf blob = auth_blob(DEVICE, fx.lsc);
    uint8_t h[20], em[256];
    unsigned int hlen;
    capf_sig_form form;
    assert_int_equal(EVP_Digest(blob.p, blob.n, h, &hlen, EVP_sha1(), NULL), 1);

    struct {
        const char *what;
        size_t at;
        uint8_t value;
    } breaks[] = {
        {"block type 2", 1, 0x02},          {"a padding byte", 100, 0xfe},
        {"the separator", 235, 0xff},       {"the first byte", 0, 0x01},
        {"a zero in the padding", 9, 0x00},
    };
    for (size_t b = 0; b < sizeof breaks / sizeof breaks[0]; b++) {
        em[0] = 0x00;
        em[1] = 0x01;
        memset(em + 2, 0xff, 256 - 2 - 21);
        em[235] = 0x00;
        memcpy(em + 236, h, 20);
        em[breaks[b].at] = breaks[b].value; /* 01 01 FF.. is still below n */
        buf s = sign_em(fx.phone_key, em, sizeof em);
        assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, s, &form), PT_ERR_VERIFY);
        buf_free(s);
    }
    /* the intact block verifies: the breaks above are what failed */
    em[0] = 0x00;
    em[1] = 0x01;
    memset(em + 2, 0xff, 233);
    em[235] = 0x00;
    memcpy(em + 236, h, 20);
    buf s = sign_em(fx.phone_key, em, sizeof em);
    assert_int_equal(verify(fx.phone_key, CAPF_DIGEST_SHA1, blob, s, &form), PT_OK);
    assert_int_equal(form, CAPF_SIG_RSA_RAW);
    buf_free(s);
    buf_free(blob);
}

static void test_rsa512_and_sha512(void **state)
{
    (void)state;
    EVP_PKEY *small = tu_key_rsa(512);
    buf blob = {(uint8_t *)"abc", 3}, s;
    capf_sig_form form;
    /* k = 64 < 64 + 11: SHA2_SIGNED_DATA is impossible with RSA-512 (§9.3) */
    assert_int_equal(capf_auth_sign(small, CAPF_DIGEST_SHA512, blob.p, blob.n, &s.p, &s.n),
                     PT_ERR_UNSUPPORTED);
    assert_null(s.p);
    s = sign(small, CAPF_DIGEST_SHA1, blob);
    assert_int_equal(s.n, 64);
    assert_int_equal(verify(small, CAPF_DIGEST_SHA1, blob, s, &form), PT_OK);
    buf_free(s);
    EVP_PKEY_free(small);
}

/* ------------------------------------------------------------------------ */
/* ECDSA                                                                    */

static void test_ecdsa(void **state)
{
    (void)state;
    buf blob = auth_blob(DEVICE, fx.lsc_ec);
    capf_sig_form form;
    buf s1 = sign(fx.phone_ec, CAPF_DIGEST_SHA1, blob);
    buf s512 = sign(fx.phone_ec, CAPF_DIGEST_SHA512, blob);
    assert_int_equal(s1.p[0], 0x30); /* DER Ecdsa-Sig-Value */
    assert_int_equal(verify(fx.phone_ec, CAPF_DIGEST_SHA1, blob, s1, &form), PT_OK);
    assert_int_equal(form, CAPF_SIG_ECDSA_DER);
    assert_int_equal(verify(fx.phone_ec, CAPF_DIGEST_SHA512, blob, s512, &form), PT_OK);
    assert_int_equal(verify(fx.phone_ec, CAPF_DIGEST_SHA512, blob, s1, &form), PT_ERR_VERIFY);

    /* r || s is tolerated (CAPF-U15) */
    const unsigned char *p = s1.p;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)s1.n);
    buf raw = {OPENSSL_zalloc(64), 64};
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw.p, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw.p + 32, 32);
    ECDSA_SIG_free(es);
    assert_int_equal(verify(fx.phone_ec, CAPF_DIGEST_SHA1, blob, raw, &form), PT_OK);
    assert_int_equal(form, CAPF_SIG_ECDSA_RAW);
    raw.p[10] ^= 0x40;
    assert_int_equal(verify(fx.phone_ec, CAPF_DIGEST_SHA1, blob, raw, &form), PT_ERR_VERIFY);

    s1.p[s1.n - 1] ^= 0x01;
    assert_int_equal(verify(fx.phone_ec, CAPF_DIGEST_SHA1, blob, s1, &form), PT_ERR_VERIFY);
    buf other = auth_blob("SEP001122334456", fx.lsc_ec);
    assert_int_equal(verify(fx.phone_ec, CAPF_DIGEST_SHA512, other, s512, &form), PT_ERR_VERIFY);
    buf_free(other);
    buf_free(raw);
    buf_free(s1);
    buf_free(s512);
    buf_free(blob);
}

/* ------------------------------------------------------------------------ */
/* Trust check                                                              */

static void test_trust_check(void **state)
{
    (void)state;
    int index = 99;
    assert_int_equal(capf_auth_trust_check(fx.lsc, fx.trust, NULL, &index), PT_OK);
    assert_int_equal(index, 0);
    assert_int_equal(capf_auth_trust_check(fx.sudi, fx.trust, NULL, &index), PT_OK);
    assert_int_equal(index, 1);
    assert_int_equal(capf_auth_trust_check(fx.lsc_ec, fx.trust, NULL, NULL), PT_OK);

    /* a self-signed stranger */
    assert_int_equal(capf_auth_trust_check(fx.stranger, fx.trust, NULL, &index), PT_ERR_VERIFY);
    assert_int_equal(index, -1);
    assert_non_null(strstr(pt_err_message(), "not the subject of any trusted"));
    /* issued by a CA with the same DN as ours but another key */
    assert_int_equal(capf_auth_trust_check(fx.impostor_issued, fx.trust, NULL, &index),
                     PT_ERR_VERIFY);
    assert_non_null(strstr(pt_err_message(), "signature does not verify"));
    /* the impostor CA itself names itself as issuer and is self-signed: still refused */
    assert_int_equal(capf_auth_trust_check(fx.impostor_ca, fx.trust, NULL, &index), PT_ERR_VERIFY);
    /* and an empty trust set trusts nothing */
    STACK_OF(X509) *none = sk_X509_new_null();
    assert_int_equal(capf_auth_trust_check(fx.lsc, none, NULL, &index), PT_ERR_VERIFY);
    sk_X509_free(none);
}

static void test_trust_check_validity(void **state)
{
    (void)state;
    X509 *expired = tu_cert_make(&(tu_cert_opts){.subject = "CN=" DEVICE,
                                                 .issuer = CA_DN,
                                                 .key = fx.phone_key,
                                                 .signer = fx.ca_key,
                                                 .not_before_offset = -400L * 86400,
                                                 .days = 30});
    capf_trust_opts strict = {.check_validity = true};
    /* known servers do not check validity: neither do we by default */
    assert_int_equal(capf_auth_trust_check(expired, fx.trust, NULL, NULL), PT_OK);
    assert_int_equal(capf_auth_trust_check(expired, fx.trust, &strict, NULL), PT_ERR_VERIFY);
    assert_non_null(strstr(pt_err_message(), "expired"));
    assert_int_equal(capf_auth_trust_check(fx.lsc, fx.trust, &strict, NULL), PT_OK);
    /* a fixed "now" before notBefore */
    capf_trust_opts past = {.check_validity = true, .now = time(NULL) - 86400 * 10};
    assert_int_equal(capf_auth_trust_check(fx.lsc, fx.trust, &past, NULL), PT_ERR_VERIFY);
    X509_free(expired);
}

static void test_name_equal(void **state)
{
    (void)state;
    X509_NAME *a = X509_NAME_new(), *b = X509_NAME_new(), *c = tu_name("CN=CAPF-1,O=Example");
    /* same text, PrintableString vs UTF8String: the same name */
    X509_NAME_add_entry_by_NID(a, NID_commonName, V_ASN1_PRINTABLESTRING,
                               (const unsigned char *)"CAPF-1", -1, -1, 0);
    X509_NAME_add_entry_by_NID(a, NID_organizationName, V_ASN1_PRINTABLESTRING,
                               (const unsigned char *)"Example", -1, -1, 0);
    X509_NAME_add_entry_by_NID(b, NID_commonName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"CAPF-1", -1, -1, 0);
    X509_NAME_add_entry_by_NID(b, NID_organizationName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"Example", -1, -1, 0);
    assert_true(capf_auth_name_equal(a, b));
    assert_true(capf_auth_name_equal(b, c));
    /* case, order, grouping and count all matter */
    X509_NAME *d = tu_name("CN=capf-1,O=Example"), *e = tu_name("O=Example,CN=CAPF-1"),
              *f = tu_name("CN=CAPF-1"), *g = X509_NAME_new();
    X509_NAME_add_entry_by_NID(g, NID_commonName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"CAPF-1", -1, -1, 0);
    X509_NAME_add_entry_by_NID(g, NID_organizationName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"Example", -1, 0, 1); /* same RDN */
    assert_false(capf_auth_name_equal(c, d));
    assert_false(capf_auth_name_equal(c, e));
    assert_false(capf_auth_name_equal(c, f));
    assert_false(capf_auth_name_equal(c, g));
    X509_NAME *all[] = {a, b, c, d, e, f, g};
    for (size_t i = 0; i < 7; i++)
        X509_NAME_free(all[i]);
}

/* ------------------------------------------------------------------------ */
/* Whole AUTH_RESPONSE                                                      */

static void test_response_rsa_with_sudi(void **state)
{
    (void)state;
    capf_auth_result res;
    buf msg = make_response(&(response_opts){.sid = SID_SUDI,
                                             .signed_name = DEVICE,
                                             .cert = fx.lsc,
                                             .key = fx.phone_key,
                                             .sudi = fx.sudi,
                                             .sudi_key = fx.sudi_key});
    assert_int_equal(verify_msg(msg, &res), PT_OK);
    assert_int_equal(res.signed_data_form, CAPF_SIG_RSA_RAW);
    assert_int_equal(res.sha2_signed_data_form, CAPF_SIG_RSA_RAW);
    assert_int_equal(res.trust_index, 0);
    assert_true(res.cn_is_device);
    assert_true(res.sudi_present);
    assert_true(res.sudi_checked);
    assert_int_equal(res.sudi_sha1_form, CAPF_SIG_RSA_RAW);
    assert_int_equal(res.sudi_sha512_form, CAPF_SIG_RSA_RAW);
    assert_int_equal(res.sudi_trust_index, 1);

    /* item 3 of SUDI_DATA must say 3: it sits just before SHA2_SIGNED_DATA */
    size_t sha2_at = msg.n - (3 + 3 + 256);
    assert_int_equal(msg.p[sha2_at], CAPF_EL_SHA2_SIGNED_DATA);
    assert_int_equal(msg.p[sha2_at - 259], 0x03);
    msg.p[sha2_at - 259] = 0x02;
    assert_int_equal(verify_msg(msg, &res), PT_ERR_VERIFY);
    msg.p[sha2_at - 259] = 0x03;
    /* and SHA2_SIGNED_DATA's digest code must be 3 */
    assert_int_equal(msg.p[sha2_at + 3], 0x03);
    msg.p[sha2_at + 3] = 0x02;
    assert_int_equal(verify_msg(msg, &res), PT_ERR_VERIFY);
    assert_non_null(strstr(pt_err_message(), "digest code 2"));
    msg.p[sha2_at + 3] = 0x03;
    assert_int_equal(verify_msg(msg, &res), PT_OK);
    buf_free(msg);
}

static void test_response_sudi_session_id_is_little_endian(void **state)
{
    (void)state;
    capf_auth_result res;
    buf msg = make_response(&(response_opts){.sid = SID_SUDI,
                                             .signed_name = DEVICE,
                                             .cert = fx.lsc,
                                             .key = fx.phone_key,
                                             .sudi = fx.sudi,
                                             .sudi_key = fx.sudi_key,
                                             .sudi_big_endian = true});
    assert_int_equal(verify_msg(msg, &res), PT_ERR_VERIFY);
    assert_non_null(strstr(pt_err_message(), "SUDI"));
    buf_free(msg);
}

static void test_response_non_rsa_sudi_skipped(void **state)
{
    (void)state;
    capf_auth_result res;
    /* its issuer is not even trusted: known servers do not look (§9.4 step 2) */
    buf msg = make_response(&(response_opts){.sid = 2,
                                             .signed_name = DEVICE,
                                             .cert = fx.lsc,
                                             .key = fx.phone_key,
                                             .sudi = fx.sudi_ec_cert,
                                             .sudi_key = fx.sudi_ec});
    assert_int_equal(verify_msg(msg, &res), PT_OK);
    assert_true(res.sudi_present);
    assert_false(res.sudi_checked);
    buf_free(msg);
}

static void test_response_ec_and_digest_info(void **state)
{
    (void)state;
    capf_auth_result res;
    buf msg = make_response(
        &(response_opts){.sid = 3, .signed_name = DEVICE, .cert = fx.lsc_ec, .key = fx.phone_ec});
    assert_int_equal(verify_msg(msg, &res), PT_OK);
    assert_int_equal(res.signed_data_form, CAPF_SIG_ECDSA_DER);
    assert_int_equal(res.sha2_signed_data_form, CAPF_SIG_ECDSA_DER);
    assert_false(res.sudi_present);
    buf_free(msg);

    msg = make_response(&(response_opts){
        .sid = 3, .signed_name = DEVICE, .cert = fx.lsc, .key = fx.phone_key, .digest_info = true});
    assert_int_equal(verify_msg(msg, &res), PT_OK);
    assert_int_equal(res.signed_data_form, CAPF_SIG_RSA_DIGEST_INFO);
    assert_int_equal(res.sha2_signed_data_form, CAPF_SIG_RSA_DIGEST_INFO);
    buf_free(msg);
}

static void test_response_failures(void **state)
{
    (void)state;
    capf_auth_result res;
    /* signed for one name, sent with another */
    buf msg = make_response(&(response_opts){.sid = 4,
                                             .signed_name = DEVICE,
                                             .sent_name = "SEP001122334456",
                                             .cert = fx.lsc,
                                             .key = fx.phone_key});
    assert_int_equal(verify_msg(msg, &res), PT_ERR_VERIFY);
    buf_free(msg);
    /* a certificate nobody trusts, signed correctly */
    msg = make_response(&(response_opts){
        .sid = 4, .signed_name = DEVICE, .cert = fx.stranger, .key = fx.other_key});
    assert_int_equal(verify_msg(msg, &res), PT_ERR_VERIFY);
    buf_free(msg);
    /* a certificate from the same-DN impostor CA */
    msg = make_response(&(response_opts){
        .sid = 4, .signed_name = DEVICE, .cert = fx.impostor_issued, .key = fx.phone_key});
    assert_int_equal(verify_msg(msg, &res), PT_ERR_VERIFY);
    buf_free(msg);
    /* our certificate, someone else's key */
    msg = make_response(
        &(response_opts){.sid = 4, .signed_name = DEVICE, .cert = fx.lsc, .key = fx.other_key});
    assert_int_equal(verify_msg(msg, &res), PT_ERR_VERIFY);
    buf_free(msg);

    /* a password-only AUTH_RESPONSE has nothing to verify */
    uint8_t *p;
    size_t n;
    assert_int_equal(capf_msg_build_auth_response(4, DEVICE, "123456", &p, &n), PT_OK);
    msg = (buf){p, n};
    assert_int_equal(verify_msg(msg, &res), PT_ERR_NOT_FOUND);
    capf_msg_buf_free(p, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_rsa_raw),
        cmocka_unit_test(test_rsa_digest_info_tolerated),
        cmocka_unit_test(test_rsa_failures),
        cmocka_unit_test(test_rsa_prefix_is_checked),
        cmocka_unit_test(test_rsa512_and_sha512),
        cmocka_unit_test(test_ecdsa),
        cmocka_unit_test(test_trust_check),
        cmocka_unit_test(test_trust_check_validity),
        cmocka_unit_test(test_name_equal),
        cmocka_unit_test(test_response_rsa_with_sudi),
        cmocka_unit_test(test_response_sudi_session_id_is_little_endian),
        cmocka_unit_test(test_response_non_rsa_sudi_skipped),
        cmocka_unit_test(test_response_ec_and_digest_info),
        cmocka_unit_test(test_response_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
