/*
 * tlv_build: the §11 worked example against bytes written out by hand from the
 * spec, round trips through the parser, and every refusal the builder makes.
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

#define CN_SAST 'C', 'N', '=', 'S', 'A', 'S', 'T', 0x00

/* spec/tlv-files.md §11, offsets 0x0000-0x0042: everything before the signature bytes. */
static const uint8_t example_head[] = {
    0x01, 0x00, 0x02, 0x01,    0x02,       /* 0000 VERSION 1.2 */
    0x02, 0x00, 0x02, 0x00,    0xDC,       /* 0005 HEADER_LENGTH 220 */
    0x1C, 0x00, 0x02, 0x01,    0x00,       /* 000A SIGNER_VERSION 1.0 */
    0x03, 0x00, 0x1C,                      /* 000F SIGNER_INFO, 28 bytes */
    0x04, 0x00, 0x08, CN_SAST,             /* 0012 SIGNER_NAME */
    0x06, 0x00, 0x08, CN_SAST,             /* 001D SIGNER_ISSUER */
    0x05, 0x00, 0x03, 0x12,    0x34, 0x56, /* 0028 SIGNER_SERIAL */
    0x07, 0x00, 0x0F,                      /* 002E SIGNATURE_INFO (15) */
    0x08, 0x00, 0x01, 0x01,                /* 0031 DIGEST_ALGORITHM SHA-1 */
    0x09, 0x00, 0x08,                      /* 0035 SIGNATURE_ALGORITHM_INFO (8) */
    0x0A, 0x00, 0x01, 0x00,                /* 0038 SIGNATURE_ALGORITHM 0 */
    0x0B, 0x00, 0x01, 0x01,                /* 003C SIGNATURE_MODULUS 1 */
    0x0C, 0x00, 0x80,                      /* 0040 SIGNATURE, 128 bytes follow */
};

/* §11, offsets 0x00C3-0x00DB. */
static const uint8_t example_tail[] = {
    0x0E, 0x00, 0x0C, 'I',  'T',  'L',  'F',  'i', 'l', 'e', '.', 't', 'l', 'v', 0x00, /* 00C3 */
    0x0F, 0x00, 0x04, 0x60, 0x00, 0x00, 0x00, /* 00D2 TIMESTAMP */
    0x0D, 0x0D, 0x0D,                         /* 00D9 padding */
};

/* §11 record framing: offset and the bytes expected there. */
static const struct {
    size_t off;
    uint8_t bytes[16];
    size_t n;
} example_record[] = {
    {0x00DC, {0x01, 0x00, 0x02, 0x02, 0xEB}, 5},
    {0x00E1, {0x03, 0x00, 0x08, CN_SAST}, 11},
    {0x00EC, {0x05, 0x00, 0x08, CN_SAST}, 11},
    {0x00F7, {0x06, 0x00, 0x03, 0x12, 0x34, 0x56}, 6},
    {0x00FD, {0x04, 0x00, 0x02, 0x00, 0x00}, 5},
    {0x0102, {0x07, 0x00, 0x8C, 0x30, 0x81, 0x89, 0x02, 0x81, 0x81, 0x00}, 10},
    {0x0191, {0x08, 0x00, 0x80}, 3},
    {0x0214, {0x09, 0x01, 0xB0}, 3},
};

static tlv_build_params example_params(X509 *cert, tlv_build_record *rec)
{
    *rec = (tlv_build_record){.role = TLV_ROLE_SAST, .cert = cert};
    return (tlv_build_params){.signer_cert = cert,
                              .digest = TLV_DIGEST_SHA1,
                              .filename = "ITLFile.tlv",
                              .timestamp = 0x60000000,
                              .records = rec,
                              .n_records = 1};
}

static void example_check_layout(const uint8_t *f, size_t len, const uint8_t *der)
{
    assert_int_equal(len, 0x03C7);
    assert_memory_equal(f, example_head, sizeof example_head);
    assert_int_equal(sizeof example_head, 0x43);
    assert_memory_equal(f + 0xC3, example_tail, sizeof example_tail);
    for (size_t i = 0; i < sizeof example_record / sizeof example_record[0]; i++)
        assert_memory_equal(f + example_record[i].off, example_record[i].bytes,
                            example_record[i].n);
    /* The CERTIFICATE runs to EOF; the record's SIGNATURE is the certificate's last 128 bytes. */
    assert_memory_equal(f + 0x217, der, 432);
    assert_memory_equal(f + 0x194, der + 432 - 128, 128);
}

static void test_worked_example(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key_new(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 0x123456);
    uint8_t *der = NULL;
    int der_len = i2d_X509(cert, &der);
    assert_int_equal(der_len, 432); /* the §11 certificate size */
    tlv_build_record rec;
    tlv_build_params p = example_params(cert, &rec);

    uint8_t *u = NULL, *s = NULL;
    size_t ulen = 0, slen = 0;
    assert_int_equal(tlv_build_unsigned(&p, &u, &ulen), PT_OK);
    example_check_layout(u, ulen, der);
    static const uint8_t zeros[128];
    assert_memory_equal(u + 0x43, zeros, sizeof zeros);

    assert_int_equal(tlv_build_signed(&p, tlv_sign_with_pkey, key, &s, &slen), PT_OK);
    example_check_layout(s, slen, der);
    /* Signing changes only the 128 signature bytes. */
    assert_memory_equal(s + 0xC3, u + 0xC3, slen - 0xC3);
    assert_memory_not_equal(s + 0x43, zeros, sizeof zeros);

    /* §11: covered = 0x0000-0x003F then 0x00C3-EOF. */
    tlv_file *f = NULL;
    uint8_t *cov = NULL;
    size_t cov_len = 0;
    assert_int_equal(tlv_file_parse(s, slen, &f), PT_OK);
    assert_int_equal(f->signature_offset, 0x40);
    assert_int_equal(f->signature_len, 128);
    assert_int_equal(tlv_file_covered_bytes(f, &cov, &cov_len), PT_OK);
    assert_int_equal(cov_len, slen - 131);
    assert_memory_equal(cov, s, 0x40);
    assert_memory_equal(cov + 0x40, s + 0xC3, slen - 0xC3);
    tlv_verify_result res;
    assert_int_equal(tlv_file_verify(f, NULL, &res), PT_OK);

    OPENSSL_free(cov);
    tlv_file_free(f);
    OPENSSL_free(u);
    OPENSSL_free(s);
    OPENSSL_free(der);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* Compare a parsed record with what the encoders make of its certificate. */
static void record_check(const tlv_record *r, const tlv_build_record *b, bool full)
{
    char *subject = NULL, *issuer = NULL;
    uint8_t *serial = NULL, *pk = NULL, *sig = NULL, *der = NULL;
    size_t serial_len = 0, pk_len = 0, sig_len = 0;
    int der_len = i2d_X509(b->cert, &der);
    assert_int_equal(tlv_name_render(X509_get_subject_name(b->cert), &subject), PT_OK);
    assert_int_equal(tlv_name_render(X509_get_issuer_name(b->cert), &issuer), PT_OK);
    assert_int_equal(tlv_serial_encode(X509_get0_serialNumber(b->cert), &serial, &serial_len),
                     PT_OK);
    assert_int_equal(tlv_public_key_encode(X509_get0_pubkey(b->cert), &pk, &pk_len), PT_OK);
    assert_int_equal(tlv_cert_signature(b->cert, &sig, &sig_len), PT_OK);

    assert_true(r->has_role);
    assert_int_equal(r->role, b->role);
    assert_string_equal(r->subject, subject);
    assert_string_equal(r->issuer, issuer);
    assert_int_equal(r->serial_len, serial_len);
    assert_memory_equal(r->serial, serial, serial_len);
    if (full) {
        assert_int_equal(r->public_key_len, pk_len);
        assert_memory_equal(r->public_key, pk, pk_len);
        assert_int_equal(r->cert_signature_len, sig_len);
        assert_memory_equal(r->cert_signature, sig, sig_len);
        assert_int_equal(r->certificate_len, der_len);
        assert_memory_equal(r->certificate, der, (size_t)der_len);
    } else {
        assert_null(r->public_key);
        assert_null(r->cert_signature);
        assert_null(r->certificate);
    }
    if (b->dns_name != NULL)
        assert_string_equal(r->dns_name, b->dns_name);
    else
        assert_null(r->dns_name);
    if (b->has_ipv4) {
        assert_int_equal(r->ip_address_len, 4);
        assert_memory_equal(r->ip_address, b->ipv4, 4);
    } else {
        assert_null(r->ip_address);
    }
    assert_int_equal(r->n_unknown, 0);
    OPENSSL_free(subject);
    OPENSSL_free(issuer);
    OPENSSL_free(serial);
    OPENSSL_free(pk);
    OPENSSL_free(sig);
    OPENSSL_free(der);
}

static void header_check(const tlv_file *f, const tlv_build_params *p, size_t k)
{
    char *name = NULL, *issuer = NULL;
    uint8_t *serial = NULL;
    size_t serial_len = 0;
    assert_int_equal(tlv_name_render(X509_get_subject_name(p->signer_cert), &name), PT_OK);
    assert_int_equal(tlv_name_render(X509_get_issuer_name(p->signer_cert), &issuer), PT_OK);
    assert_int_equal(
        tlv_serial_encode(X509_get0_serialNumber(p->signer_cert), &serial, &serial_len), PT_OK);
    assert_int_equal(f->version_major, 1);
    assert_int_equal(f->version_minor, 2);
    assert_int_equal(f->header_length % 4, 0);
    assert_true(f->has_signer_version);
    assert_int_equal(f->signer_version_major, 1);
    assert_int_equal(f->signer_version_minor, p->signer_version_minor);
    assert_string_equal(f->signer_name, name);
    assert_string_equal(f->signer_issuer, issuer);
    assert_int_equal(f->signer_serial_len, serial_len);
    assert_memory_equal(f->signer_serial, serial, serial_len);
    assert_int_equal(f->digest, p->digest);
    assert_int_equal(f->signature_algorithm, 0);
    assert_int_equal(f->modulus_code, tlv_modulus_code(k));
    assert_int_equal(f->signature_len, k);
    assert_string_equal(f->filename, p->filename);
    assert_true(f->has_timestamp);
    assert_int_equal(f->timestamp, p->timestamp);
    assert_int_equal(f->n_warnings, 0);
    OPENSSL_free(name);
    OPENSSL_free(issuer);
    OPENSSL_free(serial);
}

/* Build, parse, compare every field, verify. */
static void round_trip(const tlv_build_params *p, EVP_PKEY *key)
{
    size_t len = 0;
    uint8_t *buf = tt_build(p, key, &len);
    assert_non_null(buf);
    tlv_file *f = NULL;
    assert_int_equal(tlv_file_parse(buf, len, &f), PT_OK);
    header_check(f, p, (size_t)EVP_PKEY_get_size(key));
    assert_int_equal(f->n_records, p->n_records);
    for (size_t i = 0; i < p->n_records; i++) {
        bool full = !p->nonsecure || p->records[i].role == TLV_ROLE_SAST;
        record_check(&f->records[i], &p->records[i], full);
    }
    assert_int_equal(f->records[0].offset, f->header_length);
    assert_int_equal(f->records[p->n_records - 1].offset + f->records[p->n_records - 1].length,
                     len);
    tlv_verify_result res;
    assert_int_equal(tlv_file_verify(f, NULL, &res), PT_OK);
    assert_true(res.signature_valid);
    assert_non_null(res.signer);
    assert_int_equal(res.signer->role, TLV_ROLE_SAST);
    tlv_file_free(f);
    OPENSSL_free(buf);
}

/* A CTL with RSA and EC records, DNS names and an IP address. */
typedef struct mixed {
    X509 *certs[6];
    tlv_build_record recs[6];
} mixed;

static void mixed_make(mixed *m, EVP_PKEY *signer_key)
{
    static const uint8_t big_serial[16] = {0x86, 0x99, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                           0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e};
    m->certs[0] = tt_cert_ex(signer_key, "/CN=SAST-1/O=Example/OU=VoIP/C=NZ", NULL, big_serial,
                             sizeof big_serial, NULL, NULL);
    m->certs[1] = tt_cert(tt_rsa_key(1024), "/CN=SAST-2/O=Example", 2);
    m->certs[2] = tt_cert(tt_rsa_key(2048), "/CN=cucm.example.com", 3);
    m->certs[3] = tt_cert(tt_ec_key("P-256"), "/CN=capf.example.com", 4);
    m->certs[4] = tt_cert_ex(tt_ec_key("P-384"), "/CN=tvs.example.com", "/CN=Issuing CA",
                             (const uint8_t *)"\x05", 1, tt_rsa_key(1024), EVP_sha512());
    m->certs[5] = tt_cert(tt_ec_key("P-521"), "/CN=app.example.com", 6);
    const uint16_t roles[6] = {TLV_ROLE_SAST, TLV_ROLE_SAST, TLV_ROLE_CCM_TFTP,
                               TLV_ROLE_CAPF, TLV_ROLE_TVS,  TLV_ROLE_APP_SERVER};
    for (size_t i = 0; i < 6; i++)
        m->recs[i] = (tlv_build_record){.role = roles[i], .cert = m->certs[i]};
    m->recs[2].dns_name = "cucm.example.com";
    m->recs[4].dns_name = "tvs.example.com";
    m->recs[4].has_ipv4 = true;
    memcpy(m->recs[4].ipv4, "\xC0\x00\x02\x0A", 4);
    m->recs[5].dns_name = ""; /* written as a lone NUL */
}

static void mixed_free(mixed *m)
{
    for (size_t i = 0; i < 6; i++)
        X509_free(m->certs[i]);
}

static void test_round_trip_sha1_sha512(void **state)
{
    (void)state;
    mixed m;
    EVP_PKEY *key = tt_rsa_key(2048);
    mixed_make(&m, key);
    tlv_build_params p = {.signer_cert = m.certs[0],
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .timestamp = 1700000000,
                          .records = m.recs,
                          .n_records = 6,
                          .max_records = TLV_CTL_MAX_RECORDS,
                          .max_bytes = TLV_CTL_MAX_BYTES};
    round_trip(&p, key);
    p.digest = TLV_DIGEST_SHA512;
    p.signer_version_minor = 1;
    round_trip(&p, key);
    mixed_free(&m);
}

static void test_round_trip_nonsecure(void **state)
{
    (void)state;
    mixed m;
    EVP_PKEY *key = tt_rsa_key(2048);
    mixed_make(&m, key);
    tlv_build_params p = {.signer_cert = m.certs[0],
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .timestamp = 1,
                          .nonsecure = true,
                          .records = m.recs,
                          .n_records = 6};
    round_trip(&p, key);
    mixed_free(&m);
}

/* Every listed modulus size signs, with the right code and k. */
static void test_signer_sizes(void **state)
{
    (void)state;
    static const int sizes[] = {512, 1024, 2048, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        EVP_PKEY *key = tt_rsa_key(sizes[i]);
        X509 *cert = tt_cert(key, "/CN=ITLRecovery", 0x42);
        tlv_build_record recs[2] = {{.role = TLV_ROLE_SAST, .cert = cert},
                                    {.role = TLV_ROLE_TFTP, .cert = cert}};
        tlv_build_params p = {.signer_cert = cert,
                              .digest = TLV_DIGEST_SHA1,
                              .filename = "ITLFile.tlv",
                              .timestamp = 2,
                              .records = recs,
                              .n_records = 2};
        round_trip(&p, key);
        if (sizes[i] > 512) {
            p.digest = TLV_DIGEST_SHA512;
            round_trip(&p, key);
        }
        X509_free(cert);
    }
}

static pt_err build_expect(const tlv_build_params *p, pt_err want, const char *fragment)
{
    uint8_t *out = (uint8_t *)"not touched";
    size_t len = 1;
    pt_err rc = tlv_build_unsigned(p, &out, &len);
    if (rc != want || strstr(pt_err_message(), fragment) == NULL)
        fail_msg("want %d '%s', got %d '%s'", want, fragment, rc, pt_err_message());
    assert_null(out);
    assert_int_equal(len, 0);
    return rc;
}

static void test_refuse_signer(void **state)
{
    (void)state;
    EVP_PKEY *k3072 = tt_rsa_key(3072), *k512 = tt_rsa_key(512), *ec = tt_ec_key("P-256");
    X509 *c3072 = tt_cert(k3072, "/CN=SAST-3072", 1);
    X509 *c512 = tt_cert(k512, "/CN=SAST-512", 2);
    X509 *cec = tt_cert(ec, "/CN=SAST-EC", 3);
    tlv_build_record rec = {.role = TLV_ROLE_SAST, .cert = c3072};
    tlv_build_params p = {.signer_cert = c3072,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .records = &rec,
                          .n_records = 1};
    build_expect(&p, PT_ERR_UNSUPPORTED, "3072-bit");
    rec.cert = p.signer_cert = cec;
    build_expect(&p, PT_ERR_UNSUPPORTED, "not RSA");
    /* cppcheck-suppress redundantAssignment ; p.records points at rec */
    rec.cert = p.signer_cert = c512;
    p.digest = TLV_DIGEST_SHA512;
    build_expect(&p, PT_ERR_UNSUPPORTED, "512-bit");
    static const uint8_t bad_digests[] = {0, TLV_DIGEST_SHA256, 4, 255};
    for (size_t i = 0; i < sizeof bad_digests; i++) {
        p.digest = bad_digests[i];
        build_expect(&p, PT_ERR_UNSUPPORTED, "cannot be written");
    }
    X509_free(c3072);
    X509_free(c512);
    X509_free(cec);
}

static void test_refuse_params(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 1), *other = tt_cert(key, "/CN=Other", 2);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    X509 *edcert = tt_cert_ex(ed, "/CN=ed", "/CN=SAST", (const uint8_t *)"\x07", 1, key, NULL);
    tlv_build_record recs[2] = {{.role = TLV_ROLE_CCM, .cert = cert},
                                {.role = TLV_ROLE_SAST, .cert = other}};
    tlv_build_params p = {.signer_cert = cert,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .records = recs,
                          .n_records = 2};
    /* Listed, but not as SAST; and another SAST does not count. */
    build_expect(&p, PT_ERR_USAGE, "SAST record");
    recs[0].role = TLV_ROLE_SAST;
    recs[1].cert = edcert;
    build_expect(&p, PT_ERR_UNSUPPORTED, "not RSA or EC");
    /* cppcheck-suppress redundantAssignment ; p.records points at recs */
    recs[1].cert = NULL;
    build_expect(&p, PT_ERR_USAGE, "no certificate");
    p.n_records = 1;
    p.signer_version_minor = 2;
    build_expect(&p, PT_ERR_USAGE, "1.2");
    p.signer_version_minor = 0;
    p.filename = NULL;
    build_expect(&p, PT_ERR_USAGE, "file name");
    p.filename = "CTLFile.tlv";
    p.n_records = 0;
    build_expect(&p, PT_ERR_USAGE, "no records");
    X509_free(cert);
    X509_free(other);
    X509_free(edcert);
    EVP_PKEY_free(ed);
}

static void test_limits_records(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 1);
    tlv_build_record recs[101];
    for (size_t i = 0; i < 101; i++)
        recs[i] = (tlv_build_record){.role = i == 0 ? TLV_ROLE_SAST : TLV_ROLE_CCM, .cert = cert};
    tlv_build_params p = {.signer_cert = cert,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .records = recs,
                          .n_records = 101,
                          .max_records = TLV_CTL_MAX_RECORDS,
                          .nonsecure = true};
    build_expect(&p, PT_ERR_LIMIT, "Total number of CTL Records has exceeded the Maximum (100)");
    p.n_records = 100;
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(tlv_build_unsigned(&p, &out, &len), PT_OK);
    OPENSSL_free(out);
    X509_free(cert);
}

static void test_limits_bytes(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(2048);
    X509 *cert = tt_cert(key, "/CN=SAST", 1);
    tlv_build_record recs[70];
    for (size_t i = 0; i < 70; i++)
        recs[i] = (tlv_build_record){.role = i == 0 ? TLV_ROLE_SAST : TLV_ROLE_CCM, .cert = cert};
    tlv_build_params p = {.signer_cert = cert,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .records = recs,
                          .n_records = 70,
                          .max_records = TLV_CTL_MAX_RECORDS,
                          .max_bytes = TLV_CTL_MAX_BYTES};
    build_expect(&p, PT_ERR_LIMIT, "CTL file size");
    assert_non_null(strstr(pt_err_message(), "Maximum (76800 bytes)"));

    /* An ITL over 64 KB is built, and both the builder and the parser say so. */
    bool over = false;
    p.filename = "ITLFile.tlv";
    p.max_records = p.max_bytes = 0;
    p.warn_bytes = TLV_ITL_WARN_BYTES;
    p.over_warn_bytes = &over;
    size_t len = 0;
    uint8_t *buf = tt_build(&p, key, &len);
    assert_non_null(buf);
    assert_true(len > TLV_ITL_WARN_BYTES);
    assert_true(over);
    tlv_file *f = NULL;
    assert_int_equal(tlv_file_parse(buf, len, &f), PT_OK);
    assert_int_equal(f->n_warnings, 1);
    assert_non_null(strstr(f->warnings[0], "64 KB"));
    tlv_file_free(f);
    OPENSSL_free(buf);

    p.n_records = 20; /* well under 64 KB */
    buf = tt_build(&p, key, &len);
    assert_non_null(buf);
    assert_false(over);
    OPENSSL_free(buf);
    X509_free(cert);
}

static void test_limits_16bit(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 1);
    char *dns = malloc(70001);
    assert_non_null(dns);
    memset(dns, 'a', 70000);
    dns[70000] = '\0';
    tlv_build_record recs[2] = {{.role = TLV_ROLE_SAST, .cert = cert},
                                {.role = TLV_ROLE_CCM, .cert = cert, .dns_name = dns}};
    tlv_build_params p = {.signer_cert = cert,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .records = recs,
                          .n_records = 2};
    build_expect(&p, PT_ERR_LIMIT, "DNS_NAME of 70001 bytes");
    dns[65000] = '\0'; /* the element fits, the record does not */
    build_expect(&p, PT_ERR_LIMIT, "record 2 (CN=SAST): the record is over the 65535 bytes");
    free(dns);
    X509_free(cert);
}

static pt_err sign_short(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len, uint8_t *sig,
                         size_t *sig_len)
{
    (void)ctx;
    (void)md;
    (void)data;
    (void)len;
    memset(sig, 0x5A, *sig_len);
    *sig_len -= 1;
    return PT_OK;
}

static pt_err sign_long(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len, uint8_t *sig,
                        size_t *sig_len)
{
    (void)ctx;
    (void)md;
    (void)data;
    (void)len;
    (void)sig;
    *sig_len += 1;
    return PT_OK;
}

static pt_err sign_fails(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len, uint8_t *sig,
                         size_t *sig_len)
{
    (void)ctx;
    (void)md;
    (void)data;
    (void)len;
    (void)sig;
    (void)sig_len;
    return pt_fail(PT_ERR_TOKEN_GONE, "token removed");
}

/* A signature that does not verify never lands in the file. */
static void test_sign_in_place_checks(void **state)
{
    (void)state;
    EVP_PKEY *key = tt_rsa_key(1024), *wrong = tt_rsa_key_new(1024);
    X509 *cert = tt_cert(key, "/CN=SAST", 1);
    tlv_build_record rec = {.role = TLV_ROLE_SAST, .cert = cert};
    tlv_build_params p = {.signer_cert = cert,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .records = &rec,
                          .n_records = 1};
    uint8_t *u = NULL, *copy = NULL;
    size_t len = 0;
    assert_int_equal(tlv_build_unsigned(&p, &u, &len), PT_OK);
    copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, u, len);

    assert_int_equal(tlv_file_sign_in_place(u, len, tlv_sign_with_pkey, wrong), PT_ERR_VERIFY);
    assert_non_null(strstr(pt_err_message(), "does the signing key match"));
    assert_memory_equal(u, copy, len);
    assert_int_equal(tlv_file_sign_in_place(u, len, sign_short, NULL), PT_ERR_VERIFY);
    assert_memory_equal(u, copy, len);
    assert_int_equal(tlv_file_sign_in_place(u, len, sign_long, NULL), PT_ERR_INTERNAL);
    assert_int_equal(tlv_file_sign_in_place(u, len, sign_fails, NULL), PT_ERR_TOKEN_GONE);
    assert_non_null(strstr(pt_err_message(), "token removed"));
    assert_memory_equal(u, copy, len);
    assert_int_equal(tlv_file_sign_in_place(u, len - 1, tlv_sign_with_pkey, key), PT_ERR_FORMAT);

    /* Re-signing a signed file works and gives the same bytes (PKCS#1 v1.5 is deterministic). */
    assert_int_equal(tlv_file_sign_in_place(u, len, tlv_sign_with_pkey, key), PT_OK);
    memcpy(copy, u, len);
    assert_int_equal(tlv_file_sign_in_place(u, len, tlv_sign_with_pkey, key), PT_OK);
    assert_memory_equal(u, copy, len);

    free(copy);
    OPENSSL_free(u);
    X509_free(cert);
    EVP_PKEY_free(wrong);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),       cmocka_unit_test(test_round_trip_sha1_sha512),
        cmocka_unit_test(test_round_trip_nonsecure), cmocka_unit_test(test_signer_sizes),
        cmocka_unit_test(test_refuse_signer),        cmocka_unit_test(test_refuse_params),
        cmocka_unit_test(test_limits_records),       cmocka_unit_test(test_limits_bytes),
        cmocka_unit_test(test_limits_16bit),         cmocka_unit_test(test_sign_in_place_checks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tt_cleanup();
    return rc;
}
