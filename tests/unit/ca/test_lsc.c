/*
 * The LSC profile (§11), checked with the openssl command where it can be:
 * argv[1] is the path of openssl (tests that need it skip without it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_testutil.h"
#include "capf_msg.h"
#include "der.h"
#include "lsc.h"

#define DEVICE "SEP001122334455"

/* §11 extension table, DER for SEP001122334455. */
#define EXT_BC "30 0C 06 03 55 1D 13 01 01 FF 04 02 30 00"
#define EXT_KU "30 0E 06 03 55 1D 0F 01 01 FF 04 04 03 02 05 A0"
#define EXT_EKU                                                                                    \
    "30 27 06 03 55 1D 25 04 20 30 1E 06 08 2B 06 01 05 05 07 03 01 06 08 2B 06 01 05 05 07 03 "   \
    "02 06 08 2B 06 01 05 05 07 03 05"
#define EXT_SAN                                                                                    \
    "30 1A 06 03 55 1D 11 04 13 30 11 86 0F 53 45 50 30 30 31 31 32 32 33 33 34 34 35 35"

typedef struct fixture {
    EVP_PKEY *rsa_ca_key, *ec_ca_key, *phone_rsa, *phone_ec;
    X509 *rsa_ca, *ec_ca;
    const char *openssl;
    char dir[64];
} fixture;

static fixture fx;

static int setup(void **state)
{
    (void)state;
    fx.rsa_ca_key = tu_key_rsa(2048);
    fx.ec_ca_key = tu_key_ec("P-256");
    fx.phone_rsa = tu_key_rsa(2048);
    fx.phone_ec = tu_key_ec("P-256");
    fx.rsa_ca = tu_cert_make(&(tu_cert_opts){.subject = "CN=CAPF-1,O=Example,OU=VoIP,C=NZ",
                                             .key = fx.rsa_ca_key,
                                             .signer = fx.rsa_ca_key,
                                             .ca = true});
    fx.ec_ca = tu_cert_make(&(tu_cert_opts){.subject = "CN=CAPF-EC,O=Example,OU=VoIP,C=NZ",
                                            .key = fx.ec_ca_key,
                                            .signer = fx.ec_ca_key,
                                            .ca = true});
    const char *tmp = getenv("TMPDIR");
    snprintf(fx.dir, sizeof fx.dir, "%s/pt-lsc-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    return mkdtemp(fx.dir) != NULL ? 0 : -1;
}

static void remove_file(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", fx.dir, name);
    unlink(path);
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {"ca.pem", "lsc.pem", "root.pem", "sub.pem"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        remove_file(files[i]);
    rmdir(fx.dir);
    X509_free(fx.rsa_ca);
    X509_free(fx.ec_ca);
    EVP_PKEY_free(fx.rsa_ca_key);
    EVP_PKEY_free(fx.ec_ca_key);
    EVP_PKEY_free(fx.phone_rsa);
    EVP_PKEY_free(fx.phone_ec);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static lsc_params params(X509 *ca, EVP_PKEY *phone, buf *spki)
{
    spki->p = tu_spki_der(phone, &spki->n);
    time_t now = time(NULL);
    return (lsc_params){.issuer = ca,
                        .device_name = DEVICE,
                        .public_key = spki->p,
                        .public_key_len = spki->n,
                        .not_before = now,
                        .not_after = now + LSC_DAYS_DEFAULT * 86400L};
}

static buf build_tbs(const lsc_params *p)
{
    buf tbs;
    pt_err rc = lsc_tbs_build(p, &tbs.p, &tbs.n);
    if (rc != PT_OK)
        fprintf(stderr, "lsc_tbs_build: %s\n", pt_err_message());
    assert_int_equal(rc, PT_OK);
    return tbs;
}

static X509 *sign_tbs(buf tbs, EVP_PKEY *ca_key)
{
    X509 *x = NULL;
    assert_int_equal(pt_der_tbs_sign_local(tbs.p, tbs.n, ca_key, EVP_sha256(), &x), PT_OK);
    return x;
}

static X509 *make_lsc(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *phone)
{
    buf spki;
    lsc_params p = params(ca, phone, &spki);
    buf tbs = build_tbs(&p);
    X509 *x = sign_tbs(tbs, ca_key);
    OPENSSL_free(tbs.p);
    OPENSSL_free(spki.p);
    return x;
}

static void write_pem(const char *name, X509 *x)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", fx.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    assert_int_equal(fclose(f), 0);
}

/* Run the openssl command in the test directory; its output goes to out. */
__attribute__((format(printf, 3, 4))) static int openssl_run(char *out, size_t outlen,
                                                             const char *fmt, ...)
{
    char args[512], cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", fx.dir, fx.openssl, args);
    /* The openssl command line is the independent check this test wants. */
    FILE *p = popen(cmd, "r"); // NOLINT(cert-env33-c)
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void need_openssl(void)
{
    if (fx.openssl == NULL) {
        fprintf(stderr, "openssl command not found: skipping the independent check\n");
        skip();
    }
}

/* openssl verify says OK and prints the subject we expect. */
static void openssl_accepts(X509 *ca, X509 *lsc, const char *subject)
{
    char out[2048];
    write_pem("ca.pem", ca);
    write_pem("lsc.pem", lsc);
    int rc = openssl_run(out, sizeof out, "verify -CAfile ca.pem lsc.pem");
    if (rc != 0 || strcmp(out, "lsc.pem: OK\n") != 0)
        fprintf(stderr, "openssl verify: %s", out);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "lsc.pem: OK\n");
    assert_int_equal(openssl_run(out, sizeof out, "x509 -noout -subject -in lsc.pem"), 0);
    assert_string_equal(out, subject);
}

static void assert_ext(X509 *x, int i, const char *hex)
{
    size_t want_len;
    uint8_t *want = tu_hex(hex, &want_len);
    unsigned char *der = NULL;
    int n = i2d_X509_EXTENSION(X509_get_ext(x, i), &der);
    assert_int_equal(n, want_len);
    assert_memory_equal(der, want, want_len);
    OPENSSL_free(der);
    free(want);
}

static bool contains(buf hay, const char *hex)
{
    size_t n;
    uint8_t *needle = tu_hex(hex, &n);
    bool found = false;
    for (size_t i = 0; !found && i + n <= hay.n; i++)
        found = memcmp(hay.p + i, needle, n) == 0;
    free(needle);
    return found;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static void test_rsa_ca(void **state)
{
    (void)state;
    char why[256];
    X509 *lsc = make_lsc(fx.rsa_ca, fx.rsa_ca_key, fx.phone_rsa);
    assert_int_equal(X509_get_signature_nid(lsc), NID_sha256WithRSAEncryption);
    assert_int_equal(lsc_profile_check(lsc, fx.rsa_ca, DEVICE, why, sizeof why), PT_OK);
    assert_string_equal(why, "");
    assert_int_equal(X509_verify(lsc, fx.rsa_ca_key), 1);
    for (int i = 0; i < 4; i++)
        assert_ext(lsc, i, (const char *[]){EXT_BC, EXT_KU, EXT_EKU, EXT_SAN}[i]);
    assert_int_equal(X509_get_ext_count(lsc), 4);
    need_openssl();
    openssl_accepts(fx.rsa_ca, lsc,
                    "subject=CN = SEP001122334455, O = Example, OU = VoIP, C = NZ\n");
    X509_free(lsc);
}

static void test_ec_ca(void **state)
{
    (void)state;
    char why[256];
    X509 *lsc = make_lsc(fx.ec_ca, fx.ec_ca_key, fx.phone_ec);
    assert_int_equal(X509_get_signature_nid(lsc), NID_ecdsa_with_SHA256);
    assert_int_equal(lsc_profile_check(lsc, fx.ec_ca, DEVICE, why, sizeof why), PT_OK);
    /* an RSA phone key under the EC CA is fine too */
    X509 *mixed = make_lsc(fx.ec_ca, fx.ec_ca_key, fx.phone_rsa);
    assert_int_equal(lsc_profile_check(mixed, fx.ec_ca, DEVICE, why, sizeof why), PT_OK);
    need_openssl();
    openssl_accepts(fx.ec_ca, lsc,
                    "subject=CN = SEP001122334455, O = Example, OU = VoIP, C = NZ\n");
    openssl_accepts(fx.ec_ca, mixed,
                    "subject=CN = SEP001122334455, O = Example, OU = VoIP, C = NZ\n");
    X509_free(mixed);
    X509_free(lsc);
}

/* The TBS ends with [3] { SEQUENCE { the four extensions of the table } }. */
static void test_extension_bytes(void **state)
{
    (void)state;
    buf spki;
    lsc_params p = params(fx.rsa_ca, fx.phone_rsa, &spki);
    buf tbs = build_tbs(&p);
    size_t n;
    uint8_t *exts = tu_hex(EXT_BC EXT_KU EXT_EKU EXT_SAN, &n);
    assert_int_equal(n, 99); /* so: A3 65 30 63 <the four extensions> */
    assert_true(tbs.n > n + 4);
    const uint8_t *tail = tbs.p + tbs.n - n - 4;
    assert_int_equal(tail[0], 0xA3);
    assert_int_equal(tail[1], n + 2);
    assert_int_equal(tail[2], 0x30);
    assert_int_equal(tail[3], n);
    assert_memory_equal(tail + 4, exts, n);
    free(exts);
    /* no subjectKeyIdentifier or authorityKeyIdentifier anywhere */
    assert_false(contains(tbs, "06 03 55 1D 0E"));
    assert_false(contains(tbs, "06 03 55 1D 23"));
    OPENSSL_free(tbs.p);
    OPENSSL_free(spki.p);
}

static void test_validity_encoding(void **state)
{
    (void)state;
    buf spki;
    lsc_params p = params(fx.rsa_ca, fx.phone_rsa, &spki);
    p.not_before = 2524607999; /* 2049-12-31T23:59:59Z */
    p.not_after = 2524608000;  /* 2050-01-01T00:00:00Z */
    buf tbs = build_tbs(&p);
    /* Validity ::= SEQUENCE { UTCTime "491231235959Z", GeneralizedTime "20500101000000Z" } */
    assert_true(contains(tbs, "30 20 17 0D 34 39 31 32 33 31 32 33 35 39 35 39 5A "
                              "18 0F 32 30 35 30 30 31 30 31 30 30 30 30 30 30 5A"));
    OPENSSL_free(tbs.p);

    /* issued now, valid past 2050: openssl verifies it and reads 2051 */
    p.not_before = time(NULL);
    p.not_after = 2556144000; /* 2051-01-01 */
    tbs = build_tbs(&p);
    X509 *lsc = sign_tbs(tbs, fx.rsa_ca_key);
    char why[256];
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(lsc)), V_ASN1_GENERALIZEDTIME);
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(lsc)), V_ASN1_UTCTIME);
    assert_int_equal(lsc_profile_check(lsc, fx.rsa_ca, DEVICE, why, sizeof why), PT_OK);
    OPENSSL_free(tbs.p);
    OPENSSL_free(spki.p);
    need_openssl();
    char out[512];
    openssl_accepts(fx.rsa_ca, lsc,
                    "subject=CN = SEP001122334455, O = Example, OU = VoIP, C = NZ\n");
    assert_int_equal(openssl_run(out, sizeof out, "x509 -noout -enddate -in lsc.pem"), 0);
    assert_string_equal(out, "notAfter=Jan  1 00:00:00 2051 GMT\n");
    X509_free(lsc);
}

static void test_serial(void **state)
{
    (void)state;
    buf spki;
    lsc_params p = params(fx.rsa_ca, fx.phone_rsa, &spki);
    uint8_t first[32];
    int first_len = -1, with_pad = 0;
    /* random: positive, non-zero, 16 bytes (17 DER content bytes with a 00 in front) */
    for (int i = 0; i < 48; i++) {
        buf tbs = build_tbs(&p);
        /* 30 82 LL LL A0 03 02 01 02 02 <len> <content> */
        assert_int_equal(tbs.p[9], 0x02);
        int len = tbs.p[10];
        const uint8_t *c = tbs.p + 11;
        assert_true(len >= 1 && len <= 17);
        assert_true((c[0] & 0x80) == 0); /* positive */
        if (len == 17) {
            assert_int_equal(c[0], 0x00);
            assert_true(c[1] & 0x80);
            with_pad++;
        }
        if (first_len < 0) {
            first_len = len;
            memcpy(first, c, (size_t)len);
        } else if (i == 1) {
            assert_false(len == first_len && memcmp(first, c, (size_t)len) == 0);
        }
        OPENSSL_free(tbs.p);
    }
    assert_true(with_pad > 0); /* half of them have the top bit set */

    /* given by the caller */
    const uint8_t top[16] = {0x80, [15] = 0x01};
    p.serial = top;
    p.serial_len = sizeof top;
    buf tbs = build_tbs(&p);
    assert_true(contains(tbs, "02 11 00 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"));
    OPENSSL_free(tbs.p);
    const uint8_t zero[4] = {0};
    p.serial = zero;
    p.serial_len = sizeof zero;
    assert_int_equal(lsc_tbs_build(&p, &tbs.p, &tbs.n), PT_ERR_USAGE);
    const uint8_t big[17] = {1};
    p.serial = big;
    p.serial_len = sizeof big;
    assert_int_equal(lsc_tbs_build(&p, &tbs.p, &tbs.n), PT_ERR_USAGE);
    assert_null(tbs.p);
    OPENSSL_free(spki.p);
}

static void test_subject_types_and_subordinate_ca(void **state)
{
    (void)state;
    /* A subordinate CA with a PrintableString O, L, ST, an email and a multi-valued RDN. */
    EVP_PKEY *sub_key = tu_key_ec("P-256");
    X509 *root = fx.rsa_ca;
    X509 *sub = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_NID(name, NID_countryName, V_ASN1_PRINTABLESTRING,
                               (const unsigned char *)"NZ", -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_stateOrProvinceName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"Otago", -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_localityName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"Dunedin", -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_organizationName, V_ASN1_PRINTABLESTRING,
                               (const unsigned char *)"Example", -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"VoIP", -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                               (const unsigned char *)"CAPF-SUB", -1, 4, 1); /* joins OU's RDN */
    X509_NAME_add_entry_by_NID(name, NID_pkcs9_emailAddress, MBSTRING_ASC,
                               (const unsigned char *)"pki@example.nz", -1, -1, 0);
    X509_set_version(sub, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(sub), 2);
    X509_set_subject_name(sub, name);
    X509_set_issuer_name(sub, X509_get_subject_name(root));
    X509_gmtime_adj(X509_getm_notBefore(sub), 0);
    X509_gmtime_adj(X509_getm_notAfter(sub), 86400L * 3650);
    X509_set_pubkey(sub, sub_key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, root, sub, NULL, NULL, 0);
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(sub, bc, -1);
    X509_EXTENSION_free(bc);
    assert_true(X509_sign(sub, fx.rsa_ca_key, EVP_sha256()) > 0);
    X509_NAME_free(name);

    X509 *lsc = make_lsc(sub, sub_key, fx.phone_ec);
    char why[256];
    assert_int_equal(lsc_profile_check(lsc, sub, DEVICE, why, sizeof why), PT_OK);
    /* issuer = the sub-CA's subject, not its issuer (CAPF-U18) */
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(lsc), X509_get_subject_name(sub)), 0);
    assert_int_not_equal(X509_NAME_cmp(X509_get_issuer_name(lsc), X509_get_issuer_name(sub)), 0);
    /* subject: CN, then C, ST, L, O, OU in the CA's order, one per RDN, types kept */
    const X509_NAME *s = X509_get_subject_name(lsc);
    static const int nids[] = {NID_commonName,   NID_countryName,      NID_stateOrProvinceName,
                               NID_localityName, NID_organizationName, NID_organizationalUnitName};
    static const int types[] = {V_ASN1_UTF8STRING, V_ASN1_PRINTABLESTRING, V_ASN1_UTF8STRING,
                                V_ASN1_UTF8STRING, V_ASN1_PRINTABLESTRING, V_ASN1_UTF8STRING};
    assert_int_equal(X509_NAME_entry_count(s), 6);
    for (int i = 0; i < 6; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(s, i);
        assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nids[i]);
        assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(e)), types[i]);
        assert_int_equal(X509_NAME_ENTRY_set(e), i);
    }
    if (fx.openssl != NULL) {
        char out[1024];
        write_pem("root.pem", root);
        write_pem("sub.pem", sub);
        write_pem("lsc.pem", lsc);
        assert_int_equal(
            openssl_run(out, sizeof out, "verify -CAfile root.pem -untrusted sub.pem lsc.pem"), 0);
        assert_string_equal(out, "lsc.pem: OK\n");
    }
    X509_free(lsc);
    X509_free(sub);
    EVP_PKEY_free(sub_key);
}

static void test_pkcs1_public_key(void **state)
{
    (void)state;
    buf spki;
    lsc_params p = params(fx.rsa_ca, fx.phone_rsa, &spki);
    unsigned char *pkcs1 = NULL;
    int n = i2d_PublicKey(fx.phone_rsa, &pkcs1);
    assert_true(n > 0 && (size_t)n < spki.n);
    assert_int_equal(lsc_public_key_check(pkcs1, (size_t)n, CAPF_KEY_RSA, 2048, 0), PT_OK);
    p.public_key = pkcs1;
    p.public_key_len = (size_t)n;
    buf tbs = build_tbs(&p);
    X509 *x = NULL;
    assert_int_equal(pt_der_tbs_to_x509(tbs.p, tbs.n, &x), PT_OK);
    /* the certificate carries the SubjectPublicKeyInfo form */
    unsigned char *got = NULL;
    int got_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got);
    assert_int_equal(got_len, spki.n);
    assert_memory_equal(got, spki.p, spki.n);
    /* an unsigned TBS passes the profile check too: capfd checks before hsmd signs */
    char why[256];
    assert_int_equal(lsc_profile_check(x, fx.rsa_ca, DEVICE, why, sizeof why), PT_OK);
    OPENSSL_free(got);
    X509_free(x);
    OPENSSL_free(tbs.p);
    OPENSSL_free(pkcs1);
    OPENSSL_free(spki.p);
}

/* Re-sign lsc after replacing basicConstraints with CA:TRUE. */
static X509 *make_ca_true(X509 *lsc)
{
    X509 *x = X509_dup(lsc);
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    bc->ca = 0xff;
    assert_int_equal(X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_REPLACE), 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_true(X509_sign(x, fx.rsa_ca_key, EVP_sha256()) > 0);
    return x;
}

static void test_profile_check_rejects(void **state)
{
    (void)state;
    char why[256];
    X509 *lsc = make_lsc(fx.rsa_ca, fx.rsa_ca_key, fx.phone_rsa);

    X509 *ca_true = make_ca_true(lsc);
    assert_int_equal(lsc_profile_check(ca_true, fx.rsa_ca, DEVICE, why, sizeof why),
                     PT_ERR_REFUSED);
    assert_non_null(strstr(why, "basicConstraints"));
    X509_free(ca_true);

    assert_int_equal(lsc_profile_check(lsc, fx.ec_ca, DEVICE, why, sizeof why), PT_ERR_REFUSED);
    assert_non_null(strstr(why, "signature algorithm")); /* the EC CA would not sign RSA */
    X509 *ec_lsc = make_lsc(fx.ec_ca, fx.ec_ca_key, fx.phone_ec);
    X509 *other_ec = tu_cert_make(&(tu_cert_opts){
        .subject = "CN=Other,O=Example", .key = fx.ec_ca_key, .signer = fx.ec_ca_key, .ca = true});
    assert_int_equal(lsc_profile_check(ec_lsc, other_ec, DEVICE, why, sizeof why), PT_ERR_REFUSED);
    assert_non_null(strstr(why, "issuer"));
    assert_int_equal(lsc_profile_check(lsc, fx.rsa_ca, "SEP001122334456", why, sizeof why),
                     PT_ERR_REFUSED);
    assert_non_null(strstr(why, "subject"));
    /* a certificate made without the profile */
    X509 *plain = tu_cert_make(&(tu_cert_opts){.subject = "CN=" DEVICE ",O=Example,OU=VoIP,C=NZ",
                                               .issuer = "CN=CAPF-1,O=Example,OU=VoIP,C=NZ",
                                               .key = fx.phone_rsa,
                                               .signer = fx.rsa_ca_key});
    assert_int_equal(lsc_profile_check(plain, fx.rsa_ca, DEVICE, why, sizeof why), PT_ERR_REFUSED);
    assert_int_equal(lsc_profile_check(lsc, fx.rsa_ca, "bad name", why, sizeof why), PT_ERR_USAGE);
    assert_int_equal(lsc_profile_check(lsc, fx.rsa_ca, DEVICE, why, sizeof why), PT_OK);
    X509_free(plain);
    X509_free(other_ec);
    X509_free(ec_lsc);
    X509_free(lsc);
}

static void test_public_key_check(void **state)
{
    (void)state;
    buf rsa, ec;
    rsa.p = tu_spki_der(fx.phone_rsa, &rsa.n);
    ec.p = tu_spki_der(fx.phone_ec, &ec.n);
    assert_int_equal(lsc_public_key_check(rsa.p, rsa.n, CAPF_KEY_RSA, 2048, 0), PT_OK);
    assert_int_equal(lsc_public_key_check(rsa.p, rsa.n, CAPF_KEY_RSA, 1024, 0), PT_ERR_REFUSED);
    assert_int_equal(lsc_public_key_check(rsa.p, rsa.n, CAPF_KEY_EC, 0, 0), PT_ERR_REFUSED);
    assert_int_equal(lsc_public_key_check(ec.p, ec.n, CAPF_KEY_EC, 0, CAPF_CURVE_P256), PT_OK);
    assert_int_equal(lsc_public_key_check(ec.p, ec.n, CAPF_KEY_EC, 0, CAPF_CURVE_P384),
                     PT_ERR_REFUSED);
    assert_int_equal(lsc_public_key_check(ec.p, ec.n, CAPF_KEY_RSA, 2048, 0), PT_ERR_REFUSED);
    assert_int_equal(lsc_public_key_check(ec.p, ec.n, 2, 0, 0), PT_ERR_USAGE);
    /* truncated, trailing byte, garbage */
    assert_int_equal(lsc_public_key_check(ec.p, ec.n - 1, CAPF_KEY_EC, 0, 0), PT_ERR_FORMAT);
    uint8_t *longer = OPENSSL_malloc(ec.n + 1);
    memcpy(longer, ec.p, ec.n);
    longer[ec.n] = 0;
    assert_int_equal(lsc_public_key_check(longer, ec.n + 1, CAPF_KEY_EC, 0, 0), PT_ERR_FORMAT);
    OPENSSL_free(longer);
    assert_int_equal(lsc_public_key_check((const uint8_t *)"\x30\x00", 2, CAPF_KEY_EC, 0, 0),
                     PT_ERR_FORMAT);
    /* an EC point off the curve */
    ec.p[ec.n - 1] ^= 0x01;
    assert_int_not_equal(lsc_public_key_check(ec.p, ec.n, CAPF_KEY_EC, 0, CAPF_CURVE_P256), PT_OK);
    /* a curve outside §7.5 */
    EVP_PKEY *k1 = tu_key_ec("secp256k1");
    buf k1der;
    k1der.p = tu_spki_der(k1, &k1der.n);
    assert_int_equal(lsc_public_key_check(k1der.p, k1der.n, CAPF_KEY_EC, 0, 0), PT_ERR_UNSUPPORTED);
    OPENSSL_free(k1der.p);
    EVP_PKEY_free(k1);
    OPENSSL_free(rsa.p);
    OPENSSL_free(ec.p);
}

static void test_tbs_argument_errors(void **state)
{
    (void)state;
    buf spki, tbs;
    lsc_params p = params(fx.rsa_ca, fx.phone_rsa, &spki), q;
    char long_name[LSC_NAME_MAX + 2];
    memset(long_name, 'A', LSC_NAME_MAX + 1);
    long_name[LSC_NAME_MAX + 1] = '\0';
    const char *bad_names[] = {"", "SEP 0011", "SEP\x01", long_name};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        q = p;
        q.device_name = bad_names[i];
        assert_int_equal(lsc_tbs_build(&q, &tbs.p, &tbs.n), PT_ERR_USAGE);
    }
    q = p;
    q.not_after = q.not_before;
    assert_int_equal(lsc_tbs_build(&q, &tbs.p, &tbs.n), PT_ERR_USAGE);
    q = p;
    q.not_before = -1000L * 86400 * 365; /* 1000 years before 1970 */
    assert_int_equal(lsc_tbs_build(&q, &tbs.p, &tbs.n), PT_ERR_USAGE);
    q = p;
    q.issuer = NULL;
    assert_int_equal(lsc_tbs_build(&q, &tbs.p, &tbs.n), PT_ERR_USAGE);
    q = p;
    q.public_key_len = 10;
    assert_int_equal(lsc_tbs_build(&q, &tbs.p, &tbs.n), PT_ERR_FORMAT);
    assert_null(tbs.p);
    assert_int_equal(tbs.n, 0);
    /* 64 characters is the longest name */
    q = p;
    q.device_name = "CSFAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_int_equal(strlen(q.device_name), 64);
    assert_int_equal(lsc_tbs_build(&q, &tbs.p, &tbs.n), PT_OK);
    OPENSSL_free(tbs.p);
    OPENSSL_free(spki.p);
}

int main(int argc, char **argv)
{
    fx.openssl = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_ca),
        cmocka_unit_test(test_ec_ca),
        cmocka_unit_test(test_extension_bytes),
        cmocka_unit_test(test_validity_encoding),
        cmocka_unit_test(test_serial),
        cmocka_unit_test(test_subject_types_and_subordinate_ca),
        cmocka_unit_test(test_pkcs1_public_key),
        cmocka_unit_test(test_profile_check_rejects),
        cmocka_unit_test(test_public_key_check),
        cmocka_unit_test(test_tbs_argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
