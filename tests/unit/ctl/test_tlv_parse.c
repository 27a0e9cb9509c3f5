/*
 * tlv_file_parse on hostile and unusual input: every malformed case the
 * spec names (each with the message fragment it must produce), what the
 * reader must tolerate, every truncation, and thousands of deterministic
 * mutations. A mutated file must never parse *and* verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "tlv_testutil.h"

/* The file every test starts from: a CTL signed by an RSA-1024 SAST, with a second
   record holding an EC certificate, a DNS name and an IP address. */
static struct {
    EVP_PKEY *key;
    X509 *signer, *ec;
    uint8_t *file;
    size_t len;
} base;

static int base_setup(void **state)
{
    (void)state;
    base.key = tt_rsa_key(1024);
    base.signer = tt_cert(base.key, "/CN=SAST-1/O=Example", 0x1001);
    base.ec = tt_cert(tt_ec_key("P-256"), "/CN=cucm.example.com", 0x2002);
    tlv_build_record recs[2] = {
        {.role = TLV_ROLE_SAST, .cert = base.signer},
        {.role = TLV_ROLE_CCM_TFTP,
         .cert = base.ec,
         .dns_name = "cucm",
         .has_ipv4 = true,
         .ipv4 = {10, 0, 0, 1}},
    };
    tlv_build_params p = {.signer_cert = base.signer,
                          .digest = TLV_DIGEST_SHA1,
                          .filename = "CTLFile.tlv",
                          .timestamp = 1700000000,
                          .records = recs,
                          .n_records = 2};
    base.file = tt_build(&p, base.key, &base.len);
    return base.file != NULL ? 0 : -1;
}

static int base_teardown(void **state)
{
    (void)state;
    OPENSSL_free(base.file);
    X509_free(base.signer);
    X509_free(base.ec);
    tt_cleanup();
    return 0;
}

static size_t u16_at(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint8_t *base_copy(void)
{
    uint8_t *c = malloc(base.len);
    assert_non_null(c);
    memcpy(c, base.file, base.len);
    return c;
}

static void parse_fail(const uint8_t *buf, size_t len, pt_err want, const char *fragment)
{
    static tlv_file sentinel;
    tlv_file *f = &sentinel; /* must be reset to NULL */
    pt_err rc = tlv_file_parse(buf, len, &f);
    if (rc != want || strstr(pt_err_message(), fragment) == NULL)
        fail_msg("want %d '%s', got %d '%s'", want, fragment, rc, pt_err_message());
    assert_null(f);
}

static tlv_file *parse_ok(const uint8_t *buf, size_t len)
{
    tlv_file *f = NULL;
    pt_err rc = tlv_file_parse(buf, len, &f);
    if (rc != PT_OK)
        fail_msg("parse failed: %s", pt_err_message());
    return f;
}

/* Sign a hand-modified file, parse and verify it. */
static tlv_file *resign_parse_verify(uint8_t *buf, size_t len)
{
    pt_err rc = tlv_file_sign_in_place(buf, len, tlv_sign_with_pkey, base.key);
    if (rc != PT_OK)
        fail_msg("sign: %s", pt_err_message());
    tlv_file *f = parse_ok(buf, len);
    tlv_verify_result res;
    if (tlv_file_verify(f, NULL, &res) != PT_OK)
        fail_msg("verify: %s", pt_err_message());
    return f;
}

/* Base header elements, with element i replaced by e (or dropped when e.p == NULL). */
static uint8_t *header_variant(int i, tt_elem e, size_t *len)
{
    tt_elem h[TT_MAX_ELEMS], out[TT_MAX_ELEMS];
    size_t n = tt_header_split(base.file, base.len, h), m = 0;
    size_t hl = u16_at(base.file + 8);
    for (size_t j = 0; j < n; j++) {
        if ((int)j != i)
            out[m++] = h[j];
        else if (e.p != NULL)
            out[m++] = e;
    }
    return tt_header_join(out, m, base.file + hl, base.len - hl, len);
}

static int header_index(uint8_t tag)
{
    tt_elem h[TT_MAX_ELEMS];
    size_t n = tt_header_split(base.file, base.len, h);
    int i = tt_elem_find(h, n, tag);
    assert_true(i >= 0);
    return i;
}

static size_t header_offset(uint8_t tag)
{
    tt_elem h[TT_MAX_ELEMS];
    tt_header_split(base.file, base.len, h);
    return (size_t)(h[header_index(tag)].p - base.file);
}

static void test_valid_base(void **state)
{
    (void)state;
    tlv_file *f = parse_ok(base.file, base.len);
    assert_int_equal(f->n_records, 2);
    assert_int_equal(f->n_warnings, 0);
    assert_string_equal(f->records[1].dns_name, "cucm");
    tlv_verify_result res;
    assert_int_equal(tlv_file_verify(f, NULL, &res), PT_OK);
    tlv_file_free(f);
}

static void test_malformed_start(void **state)
{
    (void)state;
    uint8_t *c = base_copy();
    parse_fail(c, 0, PT_ERR_FORMAT, "offset 0: file is 0 bytes, too short");
    parse_fail(NULL, 0, PT_ERR_FORMAT, "too short");
    parse_fail(c, 9, PT_ERR_FORMAT, "too short");
    c[0] = 0x02;
    parse_fail(c, base.len, PT_ERR_FORMAT, "offset 0: first tag is 2, not VERSION (1)");
    c[0] = 0x01;
    c[2] = 0x03;
    parse_fail(c, base.len, PT_ERR_FORMAT, "VERSION has length 3, expected 2");
    c[2] = 0x02;
    c[5] = 0x1C;
    parse_fail(c, base.len, PT_ERR_FORMAT, "offset 5: second tag is 28, not HEADER_LENGTH (2)");
    c[5] = 0x02;
    size_t hl = u16_at(c + 8);
    put16(c + 8, hl + 1);
    parse_fail(c, base.len, PT_ERR_FORMAT, "is not a multiple of 4");
    put16(c + 8, hl + 2);
    parse_fail(c, base.len, PT_ERR_FORMAT, "is not a multiple of 4");
    put16(c + 8, 8);
    parse_fail(c, base.len, PT_ERR_FORMAT, "HEADER_LENGTH 8 is shorter than its own 10 bytes");
    put16(c + 8, 0xFFFC);
    char want[96];
    snprintf(want, sizeof want, "HEADER_LENGTH 65532 crosses end of file (file is %zu bytes)",
             base.len);
    parse_fail(c, base.len, PT_ERR_FORMAT, want);
    free(c);
}

static void test_malformed_header(void **state)
{
    (void)state;
    uint8_t *c = base_copy();
    size_t hl = u16_at(c + 8);
    char want[128];

    /* A header TLV crossing HEADER_LENGTH. */
    size_t fn = header_offset(TLV_HDR_FILENAME);
    size_t too_long = hl - fn - 3 + 1;
    put16(c + fn + 1, too_long);
    snprintf(want, sizeof want,
             "offset %zu: FILENAME (tag 14) of %zu bytes crosses HEADER_LENGTH (%zu)", fn, too_long,
             hl);
    parse_fail(c, base.len, PT_ERR_FORMAT, want);
    memcpy(c, base.file, base.len);

    /* A group whose declared length reaches past the header. */
    size_t si = header_offset(TLV_HDR_SIGNER_INFO);
    put16(c + si + 1, 0xFFFF);
    parse_fail(c, base.len, PT_ERR_FORMAT,
               "SIGNER_INFO group of 65535 bytes crosses HEADER_LENGTH");
    memcpy(c, base.file, base.len);

    /* Unknown header tags: undefined, and the .enc.sgn-only ones. */
    static const uint8_t unknown[] = {0, 16, 27, 29, 255};
    size_t ts = header_offset(TLV_HDR_TIMESTAMP);
    for (size_t i = 0; i < sizeof unknown; i++) {
        c[ts] = unknown[i];
        snprintf(want, sizeof want, "offset %zu: unknown header tag %u", ts, unknown[i]);
        parse_fail(c, base.len, PT_ERR_FORMAT, want);
    }
    memcpy(c, base.file, base.len);

    /* Digest codes: only 1 and 3. */
    size_t dg = header_offset(TLV_HDR_DIGEST_ALGORITHM) + 3;
    c[dg] = 2;
    parse_fail(c, base.len, PT_ERR_FORMAT, "digest code 2 (SHA-256) is not accepted");
    c[dg] = 4;
    parse_fail(c, base.len, PT_ERR_FORMAT, "digest code 4 is an early writer's withdrawn code");
    c[dg] = 0;
    parse_fail(c, base.len, PT_ERR_FORMAT, "unknown digest code 0");
    memcpy(c, base.file, base.len);

    /* A fixed-size value of the wrong size, and an empty SIGNATURE. */
    size_t sv = header_offset(TLV_HDR_SIGNER_VERSION);
    c[sv + 2] = 1;
    parse_fail(c, base.len, PT_ERR_FORMAT, "SIGNER_VERSION has length 1, expected 2");
    free(c);
}

static void test_missing_and_twice(void **state)
{
    (void)state;
    static const struct {
        uint8_t tag;
        const char *name;
    } required[] = {{TLV_HDR_SIGNATURE, "SIGNATURE"},
                    {TLV_HDR_SIGNER_SERIAL, "SIGNER_SERIAL"},
                    {TLV_HDR_DIGEST_ALGORITHM, "DIGEST_ALGORITHM"}};
    char want[96];
    size_t len = 0;
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        uint8_t *v = header_variant(header_index(required[i].tag), (tt_elem){0}, &len);
        snprintf(want, sizeof want, "has no %s element", required[i].name);
        parse_fail(v, len, PT_ERR_FORMAT, want);
        free(v);
    }
    /* FILENAME put in place of TIMESTAMP: the header holds it twice. */
    tt_elem h[TT_MAX_ELEMS];
    size_t n = tt_header_split(base.file, base.len, h);
    uint8_t *v = header_variant(header_index(TLV_HDR_TIMESTAMP),
                                h[tt_elem_find(h, n, TLV_HDR_FILENAME)], &len);
    parse_fail(v, len, PT_ERR_FORMAT, "FILENAME appears twice in the header");
    free(v);
    /* An empty SIGNATURE and an empty SIGNER_SERIAL. */
    v = header_variant(header_index(TLV_HDR_SIGNATURE),
                       (tt_elem){12, (const uint8_t *)"\x0C\0\0", 3}, &len);
    parse_fail(v, len, PT_ERR_FORMAT, "SIGNATURE is empty");
    free(v);
    v = header_variant(header_index(TLV_HDR_SIGNER_SERIAL),
                       (tt_elem){5, (const uint8_t *)"\x05\0\0", 3}, &len);
    parse_fail(v, len, PT_ERR_FORMAT, "SIGNER_SERIAL is empty");
    free(v);
}

static void test_malformed_records(void **state)
{
    (void)state;
    uint8_t *c = base_copy();
    size_t hl = u16_at(c + 8);
    size_t r1 = u16_at(c + hl + 3);
    size_t r2 = hl + r1; /* second record */
    char want[160];

    put16(c + hl + 3, 4);
    snprintf(want, sizeof want, "offset %zu: record length 4 is less than 5", hl);
    parse_fail(c, base.len, PT_ERR_FORMAT, want);
    put16(c + hl + 3, 0);
    parse_fail(c, base.len, PT_ERR_FORMAT, "record length 0 is less than 5");

    put16(c + hl + 3, base.len - hl + 1);
    snprintf(want, sizeof want,
             "offset %zu: record length %zu crosses end of file (file is %zu bytes)", hl,
             base.len - hl + 1, base.len);
    parse_fail(c, base.len, PT_ERR_FORMAT, want);
    memcpy(c, base.file, base.len);

    c[r2] = 0x03;
    snprintf(want, sizeof want, "offset %zu: record 2 starts with tag 3, not RECORD_LENGTH (1)",
             r2);
    parse_fail(c, base.len, PT_ERR_FORMAT, want);
    c[r2] = 0x01;
    c[r2 + 2] = 0x04;
    parse_fail(c, base.len, PT_ERR_FORMAT, "record 2: RECORD_LENGTH has length 4, expected 2");
    memcpy(c, base.file, base.len);

    /* The record ends one byte early: its last element crosses the record's end. */
    put16(c + hl + 3, r1 - 1);
    parse_fail(c, base.len, PT_ERR_FORMAT, "crosses the record's end");
    /* ... or ends two bytes into an element header. */
    tt_elem e[TT_MAX_ELEMS];
    size_t n = tt_record_split(base.file + hl, r1, e);
    size_t last = (size_t)(e[n - 1].p - base.file);
    put16(c + hl + 3, last - hl + 2);
    parse_fail(c, base.len, PT_ERR_FORMAT, "element cut short by the record's end");
    memcpy(c, base.file, base.len);

    /* Trailing bytes after the last record, and no records at all. */
    uint8_t *t = malloc(base.len + 3);
    memcpy(t, base.file, base.len);
    memset(t + base.len, 0, 3);
    snprintf(want, sizeof want, "offset %zu: 3 trailing bytes after the last record", base.len);
    parse_fail(t, base.len + 3, PT_ERR_FORMAT, want);
    parse_fail(t, hl + 4, PT_ERR_FORMAT, "4 trailing bytes after the header");
    parse_fail(t, hl, PT_ERR_FORMAT, "no records after the header");
    free(t);
    free(c);
}

/* Record 1 of the base with element i replaced by e (dropped when e.p == NULL; appended when
   i == -1), joined back into a whole file. */
static uint8_t *record_variant(int i, tt_elem e, size_t *len)
{
    size_t hl = u16_at(base.file + 8), r1 = u16_at(base.file + hl + 3);
    tt_elem in[TT_MAX_ELEMS], out[TT_MAX_ELEMS];
    size_t n = tt_record_split(base.file + hl, r1, in), m = 0;
    for (size_t j = 0; j < n; j++) {
        if ((int)j != i)
            out[m++] = in[j];
        else if (e.p != NULL)
            out[m++] = e;
    }
    if (i == -1)
        out[m++] = e;
    size_t rlen = 0;
    uint8_t *rec = tt_record_join(out, m, &rlen);
    *len = hl + rlen + (base.len - hl - r1);
    uint8_t *f = malloc(*len);
    memcpy(f, base.file, hl);
    memcpy(f + hl, rec, rlen);
    memcpy(f + hl + rlen, base.file + hl + r1, base.len - hl - r1);
    free(rec);
    return f;
}

static int record_index(uint8_t tag)
{
    size_t hl = u16_at(base.file + 8), r1 = u16_at(base.file + hl + 3);
    tt_elem e[TT_MAX_ELEMS];
    size_t n = tt_record_split(base.file + hl, r1, e);
    int i = tt_elem_find(e, n, tag);
    assert_true(i >= 0);
    return i;
}

static void test_malformed_record_values(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *v = record_variant(record_index(TLV_REC_ROLE),
                                (tt_elem){4, (const uint8_t *)"\x04\x00\x03\x00\x00\x00", 6}, &len);
    parse_fail(v, len, PT_ERR_FORMAT, "ROLE has length 3, expected 2");
    free(v);
    v = record_variant(-1, (tt_elem){4, (const uint8_t *)"\x04\x00\x02\x00\x01", 5}, &len);
    parse_fail(v, len, PT_ERR_FORMAT, "record 1 has a second ROLE");
    free(v);
    v = record_variant(record_index(TLV_REC_SUBJECT_NAME),
                       (tt_elem){3,
                                 (const uint8_t *)"\x03\x00\x04"
                                                  "a\0b\0",
                                 7},
                       &len);
    parse_fail(v, len, PT_ERR_FORMAT, "SUBJECT_NAME has a NUL byte inside its text");
    free(v);
    v = record_variant(record_index(TLV_REC_CERTIFICATE),
                       (tt_elem){9, (const uint8_t *)"\x09\x00\x02\x30\x00", 5}, &len);
    parse_fail(v, len, PT_ERR_FORMAT, "record 1: CERTIFICATE is not one DER X.509 certificate");
    free(v);

    /* A certificate with a key that is neither RSA nor EC. */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *x = tt_cert_ex(ed, "/CN=ed", "/CN=SAST-1/O=Example", (const uint8_t *)"\x03", 1, base.key,
                         NULL);
    uint8_t *der = NULL;
    int der_len = i2d_X509(x, &der);
    uint8_t *el = malloc((size_t)der_len + 3);
    el[0] = 9;
    put16(el + 1, (size_t)der_len);
    memcpy(el + 3, der, (size_t)der_len);
    v = record_variant(record_index(TLV_REC_CERTIFICATE), (tt_elem){9, el, (size_t)der_len + 3},
                       &len);
    parse_fail(v, len, PT_ERR_FORMAT, "certificate key is neither RSA nor EC");
    free(v);
    free(el);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(ed);
}

static void test_limits(void **state)
{
    (void)state;
    size_t big = TLV_FILE_MAX_BYTES + 1;
    uint8_t *b = calloc(1, big);
    assert_non_null(b);
    memcpy(b, base.file, base.len);
    parse_fail(b, big, PT_ERR_LIMIT, "over 1048576 bytes are refused");
    free(b);

    /* 4097 minimal records (5 bytes each) after a valid header. */
    size_t hl = u16_at(base.file + 8), n = TLV_PARSE_MAX_RECORDS + 1, len = hl + 5 * n;
    b = malloc(len);
    memcpy(b, base.file, hl);
    static const uint8_t empty_record[5] = {0x01, 0x00, 0x02, 0x00, 0x05};
    for (size_t i = 0; i < n; i++)
        memcpy(b + hl + 5 * i, empty_record, sizeof empty_record);
    parse_fail(b, len, PT_ERR_LIMIT, "more than 4096 records");
    tlv_file *f = parse_ok(b, len - 5);
    assert_int_equal(f->n_records, TLV_PARSE_MAX_RECORDS);
    assert_false(f->records[0].has_role);
    assert_null(tlv_file_signer_record(f));
    tlv_file_free(f);
    free(b);
}

/* TLV-U2: the earlier writers' SIGNER_INFO order 4, 5, 6 reads the same and verifies. */
static void test_lenient_signer_info_order(void **state)
{
    (void)state;
    tt_elem h[TT_MAX_ELEMS];
    size_t n = tt_header_split(base.file, base.len, h);
    int name = tt_elem_find(h, n, TLV_HDR_SIGNER_NAME);
    assert_int_equal(h[name + 1].tag, TLV_HDR_SIGNER_ISSUER);
    assert_int_equal(h[name + 2].tag, TLV_HDR_SIGNER_SERIAL);
    tt_elem issuer = h[name + 1];
    h[name + 1] = h[name + 2];
    h[name + 2] = issuer;
    size_t hl = u16_at(base.file + 8), len = 0;
    uint8_t *v = tt_header_join(h, n, base.file + hl, base.len - hl, &len);
    tlv_file *f = resign_parse_verify(v, len);
    assert_string_equal(f->signer_name, "CN=SAST-1,O=Example");
    assert_string_equal(f->signer_issuer, "CN=SAST-1,O=Example");
    assert_memory_equal(f->signer_serial, "\x10\x01", 2);
    tlv_file_free(f);
    free(v);
}

/* TLV-U12: SIGNATURE found by its tag wherever it is; padding between elements. */
static void test_lenient_signature_place(void **state)
{
    (void)state;
    tt_elem h[TT_MAX_ELEMS], out[TT_MAX_ELEMS];
    size_t n = tt_header_split(base.file, base.len, h), m = 0;
    tt_elem sig = h[tt_elem_find(h, n, TLV_HDR_SIGNATURE)];
    for (size_t i = 0; i < n; i++) {
        if (h[i].tag == TLV_HDR_SIGNATURE)
            continue;
        out[m++] = h[i];
        if (h[i].tag == TLV_HDR_FILENAME)
            out[m++] = (tt_elem){13, (const uint8_t *)"\x0D", 1};
    }
    out[m++] = sig;
    size_t hl = u16_at(base.file + 8), len = 0;
    uint8_t *v = tt_header_join(out, m, base.file + hl, base.len - hl, &len);
    tlv_file *f = resign_parse_verify(v, len);
    /* ... FILENAME, padding, TIMESTAMP, SIGNATURE. */
    assert_int_equal(v[f->signature_offset - 7], TLV_HDR_TIMESTAMP);
    assert_int_equal(v[f->signature_offset - 8], TLV_HDR_PADDING);
    assert_int_equal(f->n_warnings, 0);
    tlv_file_free(f);
    free(v);
}

/* TLV-U4: a serial stored as DER content octets (leading 00) still finds the signer. */
static void test_lenient_serial_leading_zero(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *v = header_variant(header_index(TLV_HDR_SIGNER_SERIAL),
                                (tt_elem){5, (const uint8_t *)"\x05\x00\x03\x00\x10\x01", 6}, &len);
    tlv_file *f = resign_parse_verify(v, len);
    assert_int_equal(f->signer_serial_len, 3);
    assert_ptr_equal(tlv_file_signer_record(f), &f->records[0]);
    assert_ptr_equal(tlv_file_find_serial(f, (const uint8_t *)"\x10\x01", 2, TLV_ROLE_SAST),
                     &f->records[0]);
    assert_null(tlv_file_find_serial(f, (const uint8_t *)"\x10\x01", 2, TLV_ROLE_TFTP));
    assert_ptr_equal(tlv_file_find_serial(f, (const uint8_t *)"\x00\x20\x02", 3, -1),
                     &f->records[1]);
    tlv_file_free(f);
    free(v);
}

/* The earlier writer's record order, both empty DNS_NAME forms (TLV-U13), unknown roles. */
static void test_lenient_record_order(void **state)
{
    (void)state;
    size_t hl = u16_at(base.file + 8), r1 = u16_at(base.file + hl + 3);
    tt_elem e[TT_MAX_ELEMS], out[TT_MAX_ELEMS];
    size_t n = tt_record_split(base.file + hl, r1, e);
    static const uint8_t order[] = {TLV_REC_SUBJECT_NAME,  TLV_REC_ROLE,       TLV_REC_ISSUER_NAME,
                                    TLV_REC_SERIAL_NUMBER, TLV_REC_PUBLIC_KEY, TLV_REC_SIGNATURE,
                                    TLV_REC_CERTIFICATE};
    static const struct {
        const uint8_t *bytes;
        size_t n;
    } dns[] = {{(const uint8_t *)"\x02\x00\x00", 3}, {(const uint8_t *)"\x02\x00\x01\x00", 4}};
    for (size_t d = 0; d < 2; d++) {
        size_t m = 0;
        out[m++] = (tt_elem){2, dns[d].bytes, dns[d].n};
        for (size_t i = 0; i < sizeof order; i++)
            out[m++] = e[tt_elem_find(e, n, order[i])];
        size_t rlen = 0;
        uint8_t *rec = tt_record_join(out, m, &rlen);
        size_t len = hl + rlen + base.len - hl - r1;
        uint8_t *v = malloc(len);
        memcpy(v, base.file, hl);
        memcpy(v + hl, rec, rlen);
        memcpy(v + hl + rlen, base.file + hl + r1, base.len - hl - r1);
        tlv_file *f = resign_parse_verify(v, len);
        assert_string_equal(f->records[0].dns_name, "");
        assert_string_equal(f->records[0].subject, "CN=SAST-1,O=Example");
        assert_int_equal(f->records[0].role, TLV_ROLE_SAST);
        assert_int_equal(f->n_warnings, 0);
        tlv_file_free(f);
        free(v);
        free(rec);
    }
    size_t len = 0;
    uint8_t *v = record_variant(record_index(TLV_REC_ROLE),
                                (tt_elem){4, (const uint8_t *)"\x04\x00\x02\x00\x63", 5}, &len);
    tlv_file *f = parse_ok(v, len);
    assert_int_equal(f->records[0].role, 99);
    assert_null(tlv_role_name(f->records[0].role));
    /* The signer is now role 99, not SAST: it no longer signs. */
    tlv_verify_result res;
    assert_int_equal(tlv_file_verify(f, NULL, &res), PT_ERR_VERIFY);
    assert_non_null(strstr(pt_err_message(), "no SAST record has the signer serial 10:01"));
    tlv_file_free(f);
    free(v);
}

/* Unknown record tags are skipped by length and reported; the unverified ones are kept. */
static void test_lenient_unknown_and_optional(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *v =
        record_variant(-1, (tt_elem){0x20, (const uint8_t *)"\x20\x00\x02\xAA\xBB", 5}, &len);
    tlv_file *f = resign_parse_verify(v, len);
    assert_int_equal(f->records[0].n_unknown, 1);
    assert_int_equal(f->records[0].unknown_tags[0], 0x20);
    assert_int_equal(f->n_warnings, 1);
    assert_non_null(strstr(f->warnings[0], "record 1: unknown tag 32 (2 bytes) skipped"));
    tlv_file_free(f);
    free(v);

    static const uint8_t extra[] = {
        0x0A, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* IPv6 */
        0x0B, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF,                                     /* hash */
        0x0C, 0x00, 0x01, 0x03,                                                       /* SHA-512 */
        0x0D, 0x00, 0x00, /* tag 13 means nothing in a record */
    };
    const tt_elem add[4] = {
        {10, extra, 19}, {11, extra + 19, 7}, {12, extra + 26, 4}, {13, extra + 30, 3}};
    size_t hl = u16_at(base.file + 8), r1 = u16_at(base.file + hl + 3);
    tt_elem e[TT_MAX_ELEMS];
    size_t n = tt_record_split(base.file + hl, r1, e);
    for (size_t i = 0; i < 4; i++)
        e[n++] = add[i];
    size_t rlen = 0;
    uint8_t *rec = tt_record_join(e, n, &rlen);
    len = hl + rlen + base.len - hl - r1;
    v = malloc(len);
    memcpy(v, base.file, hl);
    memcpy(v + hl, rec, rlen);
    memcpy(v + hl + rlen, base.file + hl + r1, base.len - hl - r1);
    f = resign_parse_verify(v, len);
    const tlv_record *r = &f->records[0];
    assert_int_equal(r->ip_address_len, 16);
    assert_int_equal(r->cert_hash_len, 4);
    assert_memory_equal(r->cert_hash, "\xDE\xAD\xBE\xEF", 4);
    assert_true(r->has_hash_algorithm);
    assert_int_equal(r->hash_algorithm, TLV_DIGEST_SHA512);
    assert_int_equal(r->n_unknown, 1);
    assert_int_equal(r->unknown_tags[0], 13);
    tlv_file_free(f);
    free(v);
    free(rec);
}

/* Oddities that are read, with a warning each. */
static void test_lenient_warnings(void **state)
{
    (void)state;
    uint8_t *c = base_copy();
    c[4] = 0; /* VERSION 1.0 */
    c[header_offset(TLV_HDR_SIGNATURE_MODULUS) + 3] = 3;
    c[header_offset(TLV_HDR_SIGNATURE_INFO) + 2] = 16;
    tlv_file *f = parse_ok(c, base.len);
    assert_int_equal(f->n_warnings, 3);
    assert_non_null(strstr(f->warnings[0], "VERSION is 1.0"));
    assert_non_null(strstr(f->warnings[1], "SIGNATURE_INFO group length is 16"));
    assert_non_null(strstr(f->warnings[2], "SIGNATURE_MODULUS code 3 does not match"));
    tlv_file_free(f);
    free(c);

    /* A string without its NUL, and a HASH_ALGORITHM that is not one byte. */
    size_t len = 0;
    uint8_t *v = record_variant(record_index(TLV_REC_SUBJECT_NAME),
                                (tt_elem){3,
                                          (const uint8_t *)"\x03\x00\x03"
                                                           "abc",
                                          6},
                                &len);
    f = parse_ok(v, len);
    assert_string_equal(f->records[0].subject, "abc");
    assert_int_equal(f->n_warnings, 1);
    assert_non_null(strstr(f->warnings[0], "SUBJECT_NAME is not NUL-terminated"));
    tlv_file_free(f);
    free(v);
    v = record_variant(-1, (tt_elem){12, (const uint8_t *)"\x0C\x00\x02\x00\x03", 5}, &len);
    f = parse_ok(v, len);
    assert_false(f->records[0].has_hash_algorithm);
    assert_non_null(strstr(f->warnings[0], "HASH_ALGORITHM of 2 bytes not understood"));
    tlv_file_free(f);
    free(v);

    /* Forty unknown elements: the warnings stop at TLV_FILE_MAX_WARNINGS + 1. */
    tt_elem many[40];
    for (size_t i = 0; i < 40; i++)
        many[i] = (tt_elem){0x30, (const uint8_t *)"\x30\x00\x00", 3};
    size_t rlen = 0;
    uint8_t *rec = tt_record_join(many, 40, &rlen);
    v = malloc(base.len + rlen);
    memcpy(v, base.file, base.len);
    memcpy(v + base.len, rec, rlen);
    f = parse_ok(v, base.len + rlen);
    assert_int_equal(f->n_warnings, TLV_FILE_MAX_WARNINGS + 1);
    assert_non_null(strstr(f->warnings[TLV_FILE_MAX_WARNINGS], "more than 32 warnings"));
    assert_int_equal(f->records[2].n_unknown, 16);
    tlv_file_free(f);
    free(v);
    free(rec);
}

/* Parse from an exact-size copy (so ASan sees over-reads); a file that parses must not
   verify, since every byte but the signature is covered and the signature is checked. */
static void hostile_check(const uint8_t *buf, size_t len)
{
    uint8_t *exact = malloc(len > 0 ? len : 1);
    assert_non_null(exact);
    if (len > 0)
        memcpy(exact, buf, len);
    tlv_file *f = NULL;
    if (tlv_file_parse(exact, len, &f) == PT_OK) {
        uint8_t *cov = NULL;
        size_t cov_len = 0;
        assert_int_equal(tlv_file_covered_bytes(f, &cov, &cov_len), PT_OK);
        assert_int_equal(cov_len, len - 3 - f->signature_len);
        OPENSSL_free(cov);
        tlv_verify_result res;
        if (tlv_file_verify(f, f, &res) == PT_OK)
            fail_msg("a modified file of %zu bytes verified", len);
        assert_false(res.signature_valid && res.signer_in_previous);
        tlv_file_free(f);
    } else {
        assert_null(f);
        assert_true(pt_err_message()[0] != '\0');
    }
    free(exact);
}

static void test_hostile_truncations(void **state)
{
    (void)state;
    for (size_t n = 0; n < base.len; n++)
        hostile_check(base.file, n);
}

static void test_hostile_byte_mutations(void **state)
{
    (void)state;
    uint8_t *c = base_copy();
    size_t count = 0;
    for (size_t i = 0; i < base.len; i++) {
        const uint8_t orig = c[i];
        const uint8_t values[] = {0x00, 0xFF, (uint8_t)(orig ^ 0x01), (uint8_t)(orig ^ 0x80), 0x0D};
        for (size_t v = 0; v < sizeof values; v++) {
            if (values[v] == orig)
                continue;
            c[i] = values[v];
            hostile_check(c, base.len);
            count++;
        }
        c[i] = orig;
    }
    assert_true(count > 4 * base.len);
    free(c);
}

static void test_hostile_length_fields(void **state)
{
    (void)state;
    size_t offs[256];
    size_t n = tt_length_fields(base.file, base.len, offs, 256);
    assert_true(n > 30);
    uint8_t *c = base_copy();
    for (size_t i = 0; i < n; i++) {
        size_t o = offs[i], l = u16_at(base.file + o);
        const size_t values[] = {0,
                                 1,
                                 2,
                                 3,
                                 4,
                                 5,
                                 l - 1,
                                 l + 1,
                                 l + 3,
                                 0x7FFF,
                                 0x8000,
                                 0xFFFF,
                                 base.len - o,
                                 base.len - o + 1};
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            if ((values[v] & 0xFFFF) == l)
                continue;
            put16(c + o, values[v] & 0xFFFF);
            hostile_check(c, base.len);
        }
        memcpy(c + o, base.file + o, 2);
    }
    free(c);
}

/* Several bytes at once, from a fixed-seed generator so failures reproduce. */
static void test_hostile_multi_mutations(void **state)
{
    (void)state;
    uint32_t seed = 0x7f4a7c15;
    uint8_t *c = base_copy();
    for (int round = 0; round < 3000; round++) {
        memcpy(c, base.file, base.len);
        int changes = 1 + round % 4;
        for (int j = 0; j < changes; j++) {
            seed = seed * 1664525u + 1013904223u;
            size_t pos = (seed >> 8) % base.len;
            seed = seed * 1664525u + 1013904223u;
            c[pos] = (uint8_t)(seed >> 24);
        }
        if (memcmp(c, base.file, base.len) != 0)
            hostile_check(c, base.len);
    }
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_base),
        cmocka_unit_test(test_malformed_start),
        cmocka_unit_test(test_malformed_header),
        cmocka_unit_test(test_missing_and_twice),
        cmocka_unit_test(test_malformed_records),
        cmocka_unit_test(test_malformed_record_values),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_lenient_signer_info_order),
        cmocka_unit_test(test_lenient_signature_place),
        cmocka_unit_test(test_lenient_serial_leading_zero),
        cmocka_unit_test(test_lenient_record_order),
        cmocka_unit_test(test_lenient_unknown_and_optional),
        cmocka_unit_test(test_lenient_warnings),
        cmocka_unit_test(test_hostile_truncations),
        cmocka_unit_test(test_hostile_byte_mutations),
        cmocka_unit_test(test_hostile_length_fields),
        cmocka_unit_test(test_hostile_multi_mutations),
    };
    return cmocka_run_group_tests(tests, base_setup, base_teardown);
}
