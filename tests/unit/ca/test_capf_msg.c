/*
 * The CAPF message codec against the captured bytes of
 * ../shared/spec/capf-protocol.md §10 and §12, and against hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ca_testutil.h"
#include "capf_msg.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static void assert_hex(const uint8_t *got, size_t got_len, const char *hex)
{
    size_t want_len;
    uint8_t *want = tu_hex(hex, &want_len);
    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
        fprintf(stderr, "want %s\n got ", hex);
        for (size_t i = 0; i < got_len; i++)
            fprintf(stderr, "%02X ", got[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(want);
}

static capf_msg *parse_hex(const char *hex)
{
    size_t len;
    uint8_t *buf = tu_hex(hex, &len);
    capf_msg *m = NULL;
    pt_err rc = capf_msg_parse(buf, len, &m);
    if (rc != PT_OK)
        fprintf(stderr, "parse: %s\n", pt_err_message());
    assert_int_equal(rc, PT_OK);
    free(buf);
    return m;
}

static pt_err parse_hex_rc(const char *hex)
{
    size_t len;
    uint8_t *buf = tu_hex(hex, &len);
    capf_msg *m = NULL;
    pt_err rc = capf_msg_parse(buf, len, &m);
    assert_true(rc == PT_OK ? m != NULL : m == NULL);
    capf_msg_free(m);
    free(buf);
    return rc;
}

static uint8_t get_u8(const capf_msg *m, uint8_t tag)
{
    uint8_t v = 0xEE;
    assert_int_equal(capf_msg_get_u8(m, tag, &v), PT_OK);
    return v;
}

static void assert_string_el(const capf_msg *m, uint8_t tag, const char *want)
{
    const char *s = NULL;
    size_t n = 0;
    assert_int_equal(capf_msg_get_string(m, tag, &s, &n), PT_OK);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
    assert_int_equal(s[n], '\0');
}

static void assert_tags(const uint8_t *tags, size_t n, const char *hex)
{
    size_t want_len;
    uint8_t *want = tu_hex(hex, &want_len);
    assert_int_equal(n, want_len);
    if (n > 0)
        assert_memory_equal(tags, want, n);
    free(want);
}

/* A stand-in for the transcript's 894-byte LSC: one DER SEQUENCE `30 82 03 7A ...`. */
static uint8_t *fake_cert_894(size_t *len)
{
    uint8_t *c = malloc(894);
    c[0] = 0x30;
    c[1] = 0x82;
    c[2] = 0x03;
    c[3] = 0x7a;
    for (size_t i = 4; i < 894; i++)
        c[i] = (uint8_t)(i * 7);
    *len = 894;
    return c;
}

static uint8_t *fake_sig(size_t n, uint8_t seed)
{
    uint8_t *s = malloc(n);
    for (size_t i = 0; i < n; i++)
        s[i] = (uint8_t)(seed + i);
    return s;
}

/* ------------------------------------------------------------------------ */
/* §12 transcript: server messages byte for byte                            */

static void test_transcript_auth_request(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_auth_request(1, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 01 00 00 00 01 00 08  07 00 01 03  08 00 01 00");
    capf_msg_buf_free(buf, len);
}

static void test_transcript_key_generate_rsa(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_key_generate_request_rsa(1, 2048, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 03 00 00 00 01 00 09  0A 00 02 08 00  11 00 01 00");
    capf_msg_buf_free(buf, len);
}

static void test_transcript_store_certificate(void **state)
{
    (void)state;
    size_t cert_len, len;
    uint8_t *cert = fake_cert_894(&cert_len), *buf;
    assert_int_equal(capf_msg_build_store_certificate_request(1, cert, cert_len, &buf, &len),
                     PT_OK);
    assert_int_equal(len, 8 + 906);
    assert_hex(buf, 24,
               "55 09 00 00 00 01 03 8A  03 00 01 01  04 03 83  01 03 80 00 01 "
               "30 82 03 7A");
    assert_memory_equal(buf + 20, cert, cert_len);

    /* The certificate getter undoes the wrapper. */
    capf_msg *m = NULL;
    const uint8_t *der;
    size_t der_len;
    assert_int_equal(capf_msg_parse(buf, len, &m), PT_OK);
    assert_int_equal(get_u8(m, CAPF_EL_CERTIFICATE_TYPE), CAPF_CERT_LSC);
    assert_int_equal(capf_msg_get_certificate(m, &der, &der_len), PT_OK);
    assert_int_equal(der_len, cert_len);
    assert_memory_equal(der, cert, cert_len);
    capf_msg_free(m);
    capf_msg_buf_free(buf, len);
    free(cert);
}

/* The same wrapper arithmetic with a real certificate of another size. */
static void test_store_certificate_real_cert(void **state)
{
    (void)state;
    EVP_PKEY *key = tu_key_ec("P-256");
    tu_cert_opts o = {.subject = "CN=SEP001122334455,O=Example", .key = key, .signer = key};
    X509 *x = tu_cert_make(&o);
    size_t n, len;
    uint8_t *der = tu_cert_der(x, &n), *buf;
    assert_int_equal(capf_msg_build_store_certificate_request(7, der, n, &buf, &len), PT_OK);
    assert_int_equal(len, 8 + 4 + 3 + 5 + n);
    assert_int_equal(buf[6] << 8 | buf[7], 4 + 3 + 5 + n);
    assert_int_equal(buf[12], CAPF_EL_CERTIFICATE);
    assert_int_equal(buf[13] << 8 | buf[14], n + 5);
    assert_int_equal(buf[15], 0x01);
    assert_int_equal(buf[16] << 8 | buf[17], n + 2);
    assert_int_equal(buf[18], 0x00);
    assert_int_equal(buf[19], 0x01);
    assert_memory_equal(buf + 20, der, n);
    capf_msg_buf_free(buf, len);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_transcript_end_session(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_end_session(1, CAPF_REASON_OK, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0F 00 00 00 01 00 04  01 00 01 01");
    capf_msg_buf_free(buf, len);
}

static void test_other_openings(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_key_generate_request_ec(2, CAPF_CURVE_P384, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 03 00 00 00 02 00 08 11 00 01 01 12 00 01 01");
    capf_msg_buf_free(buf, len);

    assert_int_equal(capf_msg_build_end_session(3, CAPF_REASON_UNKNOWN_DEVICE, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0F 00 00 00 03 00 04 01 00 01 09");
    capf_msg_buf_free(buf, len);

    assert_int_equal(capf_msg_build_fetch_request(4, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0B 00 00 00 04 00 00");
    capf_msg_buf_free(buf, len);

    assert_int_equal(capf_msg_build_end_session(4, CAPF_REASON_NO_ACTION, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0F 00 00 00 04 00 04 01 00 01 00");
    capf_msg_buf_free(buf, len);

    assert_int_equal(capf_msg_build_end_session(5, CAPF_REASON_INVALID_ELEMENT, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0F 00 00 00 05 00 04 01 00 01 07");
    capf_msg_buf_free(buf, len);

    /* §10.5 and §10.2 step 6 */
    assert_int_equal(capf_msg_build_delete_request(6, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0D 00 00 00 06 00 00");
    capf_msg_buf_free(buf, len);
    assert_int_equal(capf_msg_build_request_in_progress(6, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 11 00 00 00 06 00 00");
    capf_msg_buf_free(buf, len);
}

/* A vendor server sends VERSION only (§10.1); a vendor RSA request KEY_SIZE only. */
static void test_vendor_server_messages_parse(void **state)
{
    (void)state;
    capf_msg *m = parse_hex("55 01 00 00 00 09 00 04 07 00 01 03");
    uint8_t v;
    assert_int_equal(capf_msg_command(m), CAPF_CMD_AUTH_REQUEST);
    assert_int_equal(capf_msg_session_id(m), 9);
    assert_int_equal(get_u8(m, CAPF_EL_VERSION), 3);
    assert_int_equal(capf_msg_get_u8(m, CAPF_EL_AUTH_TYPE, &v), PT_ERR_NOT_FOUND);
    capf_msg_free(m);

    m = parse_hex("55 03 00 00 00 09 00 05 0A 00 02 08 00");
    uint16_t bits;
    assert_int_equal(capf_msg_get_u16(m, CAPF_EL_KEY_SIZE, &bits), PT_OK);
    assert_int_equal(bits, 2048);
    assert_false(capf_msg_has(m, CAPF_EL_KEY_TYPE));
    capf_msg_free(m);
}

/* ------------------------------------------------------------------------ */
/* §12 transcript: client messages                                          */

#define AUTH_RESPONSE_HEX                                                                          \
    "55 02 00 00 00 01 00 25  01 00 01 01  07 00 01 03  0B 00 07 31 32 33 34 35 36 00 "            \
    "0D 00 10 53 45 50 30 30 31 31 32 32 33 33 34 34 35 35 00"

static void test_transcript_auth_response(void **state)
{
    (void)state;
    capf_msg *m = parse_hex(AUTH_RESPONSE_HEX);
    assert_int_equal(capf_msg_command(m), CAPF_CMD_AUTH_RESPONSE);
    assert_int_equal(capf_msg_session_id(m), 1);
    assert_int_equal(get_u8(m, CAPF_EL_REASON), CAPF_REASON_OK);
    assert_int_equal(get_u8(m, CAPF_EL_VERSION), 3);
    assert_string_el(m, CAPF_EL_PASSWORD, "123456");
    assert_string_el(m, CAPF_EL_DEVICE_NAME, "SEP001122334455");
    size_t n;
    capf_msg_unknown_tags(m, &n);
    assert_int_equal(n, 0);
    capf_msg_unexpected_tags(m, &n);
    assert_int_equal(n, 0);
    capf_msg_free(m);

    /* and the client builder writes exactly those bytes */
    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_auth_response(1, "SEP001122334455", "123456", &buf, &len),
                     PT_OK);
    assert_hex(buf, len, AUTH_RESPONSE_HEX);
    capf_msg_buf_free(buf, len);
}

static void test_transcript_request_in_progress(void **state)
{
    (void)state;
    capf_msg *m = parse_hex("55 11 00 00 00 01 00 00");
    assert_int_equal(capf_msg_command(m), CAPF_CMD_REQUEST_IN_PROGRESS);
    for (int tag = 0; tag < 256; tag++)
        assert_false(capf_msg_has(m, (uint8_t)tag));
    capf_msg_free(m);
}

static void test_transcript_key_generate_response(void **state)
{
    (void)state;
    EVP_PKEY *key = tu_key_rsa(2048);
    size_t spki_len, len;
    uint8_t *spki = tu_spki_der(key, &spki_len), *buf;
    assert_int_equal(spki_len, 294);
    assert_hex(spki, 33,
               "30 82 01 22 30 0D 06 09 2A 86 48 86 F7 0D 01 01 01 05 00 03 82 01 0F "
               "00 30 82 01 0A 02 82 01 01 00");

    assert_int_equal(
        capf_msg_build_key_generate_response(1, spki, spki_len, CAPF_NO_REASON, &buf, &len), PT_OK);
    assert_hex(buf, 11, "55 04 00 00 00 01 01 29 09 01 26");
    assert_int_equal(len, 8 + 297);
    assert_memory_equal(buf + 11, spki, spki_len);

    capf_msg *m = NULL;
    const uint8_t *pk;
    size_t pk_len;
    assert_int_equal(capf_msg_parse(buf, len, &m), PT_OK);
    assert_int_equal(capf_msg_command(m), CAPF_CMD_KEY_GENERATE_RESPONSE);
    assert_int_equal(capf_msg_get_bytes(m, CAPF_EL_PUBLIC_KEY, &pk, &pk_len), PT_OK);
    assert_int_equal(pk_len, spki_len);
    assert_memory_equal(pk, spki, spki_len);
    assert_false(capf_msg_has(m, CAPF_EL_REASON));
    capf_msg_free(m);
    capf_msg_buf_free(buf, len);
    OPENSSL_free(spki);
    EVP_PKEY_free(key);
}

static void test_transcript_store_response(void **state)
{
    (void)state;
    capf_msg *m = parse_hex("55 0A 00 00 00 01 00 04 01 00 01 01");
    assert_int_equal(capf_msg_command(m), CAPF_CMD_STORE_CERTIFICATE_RESPONSE);
    assert_int_equal(get_u8(m, CAPF_EL_REASON), CAPF_REASON_OK);
    capf_msg_free(m);

    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_store_certificate_response(1, CAPF_REASON_OK, &buf, &len),
                     PT_OK);
    assert_hex(buf, len, "55 0A 00 00 00 01 00 04 01 00 01 01");
    capf_msg_buf_free(buf, len);
}

static void test_transcript_fetch_response(void **state)
{
    (void)state;
    size_t cert_len, len;
    uint8_t *cert = fake_cert_894(&cert_len), *buf;
    assert_int_equal(capf_msg_build_fetch_response(4, CAPF_REASON_OK, cert, cert_len, &buf, &len),
                     PT_OK);
    assert_hex(buf, 22, "55 0C 00 00 00 04 03 8A 01 00 01 01 04 03 83 01 03 80 00 01 30 82");

    capf_msg *m = NULL;
    const uint8_t *der;
    size_t der_len;
    assert_int_equal(capf_msg_parse(buf, len, &m), PT_OK);
    assert_int_equal(capf_msg_session_id(m), 4);
    assert_int_equal(get_u8(m, CAPF_EL_REASON), CAPF_REASON_OK);
    assert_int_equal(capf_msg_get_certificate(m, &der, &der_len), PT_OK);
    assert_int_equal(der_len, 894);
    assert_memory_equal(der, cert, 894);
    capf_msg_free(m);
    capf_msg_buf_free(buf, len);
    free(cert);

    /* no certificate on the phone: REASON 7 only */
    assert_int_equal(
        capf_msg_build_fetch_response(4, CAPF_REASON_INVALID_ELEMENT, NULL, 0, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0C 00 00 00 04 00 04 01 00 01 07");
    capf_msg_buf_free(buf, len);
    assert_int_equal(capf_msg_build_delete_response(4, CAPF_REASON_OK, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 0E 00 00 00 04 00 04 01 00 01 01");
    capf_msg_buf_free(buf, len);
}

/* §12 last paragraph: the elements certificate authentication adds, in §4 order. */
static void test_cert_auth_response_layout(void **state)
{
    (void)state;
    size_t cert_len, len;
    uint8_t *cert = fake_cert_894(&cert_len), *buf;
    uint8_t *sig1 = fake_sig(256, 1), *sig2 = fake_sig(256, 2), *s1 = fake_sig(256, 3),
            *s2 = fake_sig(256, 4);
    uint8_t sudi_cert[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    capf_cert_auth a = {
        .device_name = "SEP001122334455",
        .password = "",
        .cert = cert,
        .cert_len = cert_len,
        .signed_data = sig1,
        .signed_data_len = 256,
        .sha2_sig = sig2,
        .sha2_sig_len = 256,
        .sudi_cert = sudi_cert,
        .sudi_cert_len = sizeof sudi_cert,
        .sudi_sha1_sig = s1,
        .sudi_sha1_sig_len = 256,
        .sudi_sha512_sig = s2,
        .sudi_sha512_sig_len = 256,
    };
    assert_int_equal(capf_msg_build_auth_response_cert(1, &a, &buf, &len), PT_OK);

    /* Walk the elements: tags in §4 order and the composite headers of §12. */
    static const uint8_t order[] = {1, 4, 6, 7, 11, 13, 16, 20};
    size_t off = 8;
    for (size_t i = 0; i < sizeof order; i++) {
        assert_true(off + 3 <= len);
        assert_int_equal(buf[off], order[i]);
        size_t n = (size_t)buf[off + 1] << 8 | buf[off + 2];
        const uint8_t *v = buf + off + 3;
        if (order[i] == 4)
            assert_hex(v, 5, "01 03 80 00 01");
        if (order[i] == 6)
            assert_int_equal(n, 256);
        if (order[i] == 11)
            assert_hex(v, n, "00");
        if (order[i] == 16) {
            assert_hex(v, 3, "00 00 05");
            assert_hex(v + 8, 3, "01 01 00");
            assert_hex(v + 8 + 3 + 256, 3, "03 01 00");
            assert_int_equal(n, 3 + 5 + 2 * (3 + 256));
        }
        if (order[i] == 20) {
            assert_hex(buf + off, 6, "14 01 03 03 01 00");
        }
        off += 3 + n;
    }
    assert_int_equal(off, len);

    /* and the getters read it back */
    capf_msg *m = NULL;
    capf_sha2_signed sha2;
    capf_sudi sudi;
    const uint8_t *p;
    size_t n;
    assert_int_equal(capf_msg_parse(buf, len, &m), PT_OK);
    assert_int_equal(capf_msg_get_sha2_signed_data(m, &sha2), PT_OK);
    assert_int_equal(sha2.digest, 3);
    assert_int_equal(sha2.sig_len, 256);
    assert_memory_equal(sha2.sig, sig2, 256);
    assert_int_equal(capf_msg_get_sudi(m, &sudi), PT_OK);
    assert_int_equal(sudi.cert_type, 0);
    assert_int_equal(sudi.cert_len, sizeof sudi_cert);
    assert_int_equal(sudi.sha1_type, 1);
    assert_memory_equal(sudi.sha1_sig, s1, 256);
    assert_int_equal(sudi.sha512_type, 3);
    assert_memory_equal(sudi.sha512_sig, s2, 256);
    assert_int_equal(capf_msg_get_bytes(m, CAPF_EL_SIGNED_DATA, &p, &n), PT_OK);
    assert_memory_equal(p, sig1, 256);
    assert_string_el(m, CAPF_EL_PASSWORD, "");
    capf_msg_free(m);

    /* without SUDI and without PASSWORD (softphone) */
    a.sudi_cert = NULL;
    a.password = NULL;
    capf_msg_buf_free(buf, len);
    assert_int_equal(capf_msg_build_auth_response_cert(1, &a, &buf, &len), PT_OK);
    assert_int_equal(capf_msg_parse(buf, len, &m), PT_OK);
    assert_false(capf_msg_has(m, CAPF_EL_SUDI_DATA));
    assert_false(capf_msg_has(m, CAPF_EL_PASSWORD));
    capf_msg_free(m);
    capf_msg_buf_free(buf, len);

    /* certificate authentication without its signatures is refused */
    a.sha2_sig = NULL;
    assert_int_equal(capf_msg_build_auth_response_cert(1, &a, &buf, &len), PT_ERR_USAGE);
    assert_null(buf);
    free(cert);
    free(sig1);
    free(sig2);
    free(s1);
    free(s2);
}

/* ------------------------------------------------------------------------ */
/* Layouts and the encoder                                                  */

/* §4 write orders per direction. */
static size_t order_index(capf_dir dir, uint8_t tag)
{
    static const uint8_t s2c[] = {1, 3, 4, 7, 8, 10, 17, 18};
    static const uint8_t c2s[] = {1, 3, 4, 6, 7, 11, 13, 16, 9, 20};
    const uint8_t *o = dir == CAPF_DIR_SERVER_TO_CLIENT ? s2c : c2s;
    size_t n = dir == CAPF_DIR_SERVER_TO_CLIENT ? sizeof s2c : sizeof c2s;
    for (size_t i = 0; i < n; i++)
        if (o[i] == tag)
            return i;
    fail_msg("tag %u not writable in this direction", tag);
    return 0;
}

static void test_layouts_follow_write_order(void **state)
{
    (void)state;
    int found = 0;
    for (int cmd = 0; cmd < 256; cmd++) {
        const capf_msg_layout *lay = capf_msg_layout_find((uint8_t)cmd);
        if (lay == NULL)
            continue;
        found++;
        assert_int_equal(lay->command, cmd);
        assert_int_not_equal(lay->dir, CAPF_DIR_UNKNOWN);
        for (size_t i = 1; i < lay->n_rules; i++)
            assert_true(order_index(lay->dir, lay->rules[i - 1].tag) <
                        order_index(lay->dir, lay->rules[i].tag));
    }
    /* 1-4, 9-17 */
    assert_int_equal(found, 13);
    assert_null(capf_msg_layout_find(CAPF_CMD_STATUS_REQUEST));
    assert_null(capf_msg_layout_find(0));
}

static void test_encode_checks(void **state)
{
    (void)state;
    uint8_t one = 1, *buf = (uint8_t *)"x";
    size_t len = 99;
    const uint8_t two[2] = {0, 1};

    /* not allowed in END_SESSION */
    capf_el bad[] = {{CAPF_EL_REASON, &one, 1}, {CAPF_EL_VERSION, &one, 1}};
    assert_int_equal(capf_msg_encode(CAPF_CMD_END_SESSION, 1, bad, 2, &buf, &len), PT_ERR_USAGE);
    assert_null(buf);
    assert_int_equal(len, 0);
    /* required REASON missing */
    assert_int_equal(capf_msg_encode(CAPF_CMD_END_SESSION, 1, NULL, 0, &buf, &len), PT_ERR_USAGE);
    /* twice */
    capf_el dup[] = {{CAPF_EL_REASON, &one, 1}, {CAPF_EL_REASON, &one, 1}};
    assert_int_equal(capf_msg_encode(CAPF_CMD_END_SESSION, 1, dup, 2, &buf, &len), PT_ERR_USAGE);
    /* fixed size written with the wrong length */
    capf_el wide[] = {{CAPF_EL_REASON, two, 2}};
    assert_int_equal(capf_msg_encode(CAPF_CMD_END_SESSION, 1, wide, 1, &buf, &len), PT_ERR_USAGE);
    /* no layout known */
    assert_int_equal(capf_msg_encode(CAPF_CMD_STATUS_REQUEST, 1, NULL, 0, &buf, &len),
                     PT_ERR_UNSUPPORTED);
    /* KEY_TYPE is required in KEY_GENERATE_REQUEST */
    capf_el size_only[] = {{CAPF_EL_KEY_SIZE, two, 2}};
    assert_int_equal(capf_msg_encode(CAPF_CMD_KEY_GENERATE_REQUEST, 1, size_only, 1, &buf, &len),
                     PT_ERR_USAGE);

    /* given out of order, written in layout order */
    const uint8_t ver = 3, auth = 0;
    capf_el rev[] = {{CAPF_EL_AUTH_TYPE, &auth, 1}, {CAPF_EL_VERSION, &ver, 1}};
    assert_int_equal(capf_msg_encode(CAPF_CMD_AUTH_REQUEST, 1, rev, 2, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 01 00 00 00 01 00 08 07 00 01 03 08 00 01 00");
    capf_msg_buf_free(buf, len);
}

static void test_encode_limits(void **state)
{
    (void)state;
    uint8_t *buf, *big = calloc(1, 70000);
    size_t len;
    big[0] = 0x30; /* a fake certificate header is enough for the encoder */
    /* 16384 - 8 - 4 - 3 - 5 = 16364 bytes of certificate fit exactly */
    assert_int_equal(capf_msg_build_store_certificate_request(1, big, 16364, &buf, &len), PT_OK);
    assert_int_equal(len, CAPF_MSG_MAX);
    capf_msg_buf_free(buf, len);
    assert_int_equal(capf_msg_build_store_certificate_request(1, big, 16365, &buf, &len),
                     PT_ERR_LIMIT);
    assert_null(buf);
    /* an element value over 65535 bytes */
    capf_el huge = {CAPF_EL_PUBLIC_KEY, big, 65536};
    assert_int_equal(capf_msg_encode(CAPF_CMD_KEY_GENERATE_RESPONSE, 1, &huge, 1, &buf, &len),
                     PT_ERR_LIMIT);
    assert_int_equal(capf_msg_build_store_certificate_request(1, big, 65531, &buf, &len),
                     PT_ERR_LIMIT);
    free(big);
}

static void test_builder_argument_checks(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_key_generate_request_rsa(1, 1000, &buf, &len), PT_ERR_USAGE);
    assert_int_equal(capf_msg_build_key_generate_request_ec(1, 3, &buf, &len), PT_ERR_USAGE);
    assert_int_equal(capf_msg_build_auth_response(1, "", "1", &buf, &len), PT_ERR_USAGE);
    assert_int_equal(capf_msg_build_auth_response(1, "SEP\n1", "1", &buf, &len), PT_ERR_USAGE);
    char long_name[66];
    memset(long_name, 'A', 65);
    long_name[65] = '\0';
    assert_int_equal(capf_msg_build_auth_response(1, long_name, "1", &buf, &len), PT_ERR_USAGE);
    assert_int_equal(capf_msg_build_key_generate_response(1, NULL, 0, 256, &buf, &len),
                     PT_ERR_USAGE);
    assert_int_equal(capf_msg_build_store_certificate_request(1, NULL, 0, &buf, &len),
                     PT_ERR_USAGE);
    for (unsigned bits = 512; bits <= 4096; bits *= 2) {
        assert_int_equal(capf_msg_build_key_generate_request_rsa(1, bits, &buf, &len), PT_OK);
        capf_msg_buf_free(buf, len);
    }
}

static void test_key_generate_response_failure(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    /* generation failed, with and without a reason (CAPF-U7) */
    assert_int_equal(
        capf_msg_build_key_generate_response(3, NULL, 0, CAPF_REASON_INVALID_ELEMENT, &buf, &len),
        PT_OK);
    assert_hex(buf, len, "55 04 00 00 00 03 00 04 01 00 01 07");
    capf_msg_buf_free(buf, len);
    assert_int_equal(capf_msg_build_key_generate_response(3, NULL, 0, CAPF_NO_REASON, &buf, &len),
                     PT_OK);
    assert_hex(buf, len, "55 04 00 00 00 03 00 00");
    capf_msg_buf_free(buf, len);
    /* both: REASON first (§4) */
    const uint8_t k[] = {0x30, 0x00};
    assert_int_equal(capf_msg_build_key_generate_response(3, k, 2, CAPF_REASON_OK, &buf, &len),
                     PT_OK);
    assert_hex(buf, len, "55 04 00 00 00 03 00 09 01 00 01 01 09 00 02 30 00");
    capf_msg_buf_free(buf, len);
}

static void test_retry_later(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    const uint8_t delay[2] = {0x00, 0x3c}, reason = 1;
    /* the caller's set, in the caller's order */
    capf_el els[] = {{CAPF_EL_RETRY_DELAY, delay, 2}, {CAPF_EL_REASON, &reason, 1}};
    assert_int_equal(capf_msg_build_retry_later(8, els, 2, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 10 00 00 00 08 00 09 0C 00 02 00 3C 01 00 01 01");
    capf_msg_buf_free(buf, len);
    assert_int_equal(capf_msg_build_retry_later(8, NULL, 0, &buf, &len), PT_OK);
    assert_hex(buf, len, "55 10 00 00 00 08 00 00");
    capf_msg_buf_free(buf, len);
    /* undefined tags are not written */
    capf_el undefined = {14, &reason, 1};
    assert_int_equal(capf_msg_build_retry_later(8, &undefined, 1, &buf, &len), PT_ERR_USAGE);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(capf_cmd_name(CAPF_CMD_AUTH_REQUEST), "AUTH_REQUEST");
    assert_string_equal(capf_cmd_name(CAPF_CMD_SIGN_CERTIFICATE_RESPONSE),
                        "SIGN_CERTIFICATE_RESPONSE");
    assert_string_equal(capf_cmd_name(24), "?");
    assert_string_equal(capf_el_name(CAPF_EL_SHA2_SIGNED_DATA), "SHA2_SIGNED_DATA");
    assert_string_equal(capf_el_name(14), "?");
    assert_string_equal(capf_reason_name(9), "UNKNOWN_DEVICE");
    assert_false(capf_el_is_known(0));
    assert_false(capf_el_is_known(15));
    assert_true(capf_el_is_known(16));
    assert_false(capf_el_is_known(21));
    assert_int_equal(CAPF_CMD_SIGN_CERTIFICATE_RESPONSE, 23);
    assert_int_equal(CAPF_PORT, 3804);
}

/* ------------------------------------------------------------------------ */
/* Hostile input                                                            */

static void test_header_parse(void **state)
{
    (void)state;
    const uint8_t ok[8] = {0x55, 0x02, 0x01, 0x02, 0x03, 0x04, 0x7f, 0xf8};
    capf_header h;
    assert_int_equal(capf_msg_header_parse(ok, &h), PT_OK);
    assert_int_equal(h.command, 2);
    assert_int_equal(h.session_id, 0x01020304);
    assert_int_equal(h.length, CAPF_MSG_READ_MAX - CAPF_HEADER_LEN);

    const uint8_t over[8] = {0x55, 0x02, 0, 0, 0, 1, 0x7f, 0xf9};
    assert_int_equal(capf_msg_header_parse(over, &h), PT_ERR_LIMIT);
    const uint8_t max[8] = {0x55, 0x02, 0, 0, 0, 1, 0xff, 0xff};
    assert_int_equal(capf_msg_header_parse(max, &h), PT_ERR_LIMIT);
    const uint8_t proto[8] = {0x56, 0x02, 0, 0, 0, 1, 0, 0};
    assert_int_equal(capf_msg_header_parse(proto, &h), PT_ERR_PROTOCOL);
    const uint8_t tls[8] = {0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00};
    assert_int_equal(capf_msg_header_parse(tls, &h), PT_ERR_PROTOCOL);
}

static void test_framing_errors(void **state)
{
    (void)state;
    capf_msg *m = (capf_msg *)1;
    /* wrong protocol id */
    assert_int_equal(parse_hex_rc("54 0F 00 00 00 01 00 04 01 00 01 01"), PT_ERR_PROTOCOL);
    /* truncated header */
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00"), PT_ERR_FORMAT);
    assert_int_equal(capf_msg_parse(NULL, 0, &m), PT_ERR_FORMAT);
    assert_null(m);
    /* truncated body, and a body longer than LENGTH */
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00 04 01 00 01"), PT_ERR_FORMAT);
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00 04 01 00 01 01 00"), PT_ERR_FORMAT);
    /* the body parse alone checks the length against the header */
    capf_header h = {CAPF_CMD_END_SESSION, 1, 4};
    const uint8_t body[] = {0x01, 0x00, 0x01, 0x01};
    assert_int_equal(capf_msg_parse_body(&h, body, 3, &m), PT_ERR_FORMAT);
    assert_int_equal(capf_msg_parse_body(&h, body, 4, &m), PT_OK);
    assert_int_equal(get_u8(m, CAPF_EL_REASON), 1);
    capf_msg_free(m);
}

static void test_element_errors(void **state)
{
    (void)state;
    /* element crossing the end */
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00 04 01 00 02 01"), PT_ERR_FORMAT);
    /* element header cut */
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00 06 01 00 01 01 01 00"), PT_ERR_FORMAT);
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00 05 01 00 01 01 01"), PT_ERR_FORMAT);
    /* fixed-size elements shorter than their type */
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00 03 01 00 00"), PT_ERR_FORMAT);
    assert_int_equal(parse_hex_rc("55 03 00 00 00 01 00 04 0A 00 01 08"), PT_ERR_FORMAT);
    assert_int_equal(parse_hex_rc("55 01 00 00 00 01 00 03 07 00 00"), PT_ERR_FORMAT);
    /* a short unknown tag is fine: it is skipped */
    assert_int_equal(parse_hex_rc("55 0F 00 00 00 01 00 07 0E 00 00 01 00 01 01"), PT_OK);
}

static void test_fixed_size_longer_is_reported(void **state)
{
    (void)state;
    const uint8_t *tags;
    capf_msg *m = parse_hex("55 0F 00 00 00 01 00 05 01 00 02 07 00");
    size_t n;
    assert_int_equal(get_u8(m, CAPF_EL_REASON), 7);
    tags = capf_msg_oversized_tags(m, &n);
    assert_tags(tags, n, "01");
    capf_msg_free(m);
}

static void test_repeated_tags_last_wins(void **state)
{
    (void)state;
    const uint8_t *tags;
    capf_msg *m = parse_hex("55 0F 00 00 00 01 00 0C 01 00 01 00 01 00 01 09 01 00 01 07");
    size_t n;
    assert_int_equal(get_u8(m, CAPF_EL_REASON), 7);
    tags = capf_msg_repeated_tags(m, &n);
    assert_tags(tags, n, "01");
    capf_msg_free(m);
}

static void test_unknown_tags_skipped(void **state)
{
    (void)state;
    const uint8_t *tags;
    /* tags 14, 0 and 200 around a REASON; KEY_SIZE does not belong in END_SESSION */
    capf_msg *m = parse_hex("55 0F 00 00 00 01 00 1A 0E 00 02 AA BB 01 00 01 01 00 00 00 "
                            "C8 00 03 01 02 03 0A 00 02 08 00 0E 00 00");
    size_t n;
    char notes[200];
    assert_int_equal(get_u8(m, CAPF_EL_REASON), 1);
    tags = capf_msg_unknown_tags(m, &n);
    assert_tags(tags, n, "0E 00 C8");
    tags = capf_msg_unexpected_tags(m, &n);
    assert_tags(tags, n, "0A");
    assert_false(capf_msg_has(m, 14));
    assert_false(capf_msg_has(m, 200));
    assert_true(capf_msg_has(m, CAPF_EL_KEY_SIZE));
    capf_msg_notes_format(m, notes, sizeof notes);
    /* unknown tags are not stored, so the second 14 is not "repeated" */
    assert_string_equal(notes, "unknown tags skipped 14,0,200; unexpected tags 10");
    tags = capf_msg_repeated_tags(m, &n);
    assert_tags(tags, n, "");
    capf_msg_free(m);
}

static void test_passwords(void **state)
{
    (void)state;
    const char *s;
    size_t n;
    /* empty PASSWORD `00` */
    capf_msg *m = parse_hex("55 02 00 00 00 01 00 0C 01 00 01 01 07 00 01 03 0B 00 01 00");
    assert_string_el(m, CAPF_EL_PASSWORD, "");
    assert_int_equal(capf_msg_get_string(m, CAPF_EL_DEVICE_NAME, &s, &n), PT_ERR_NOT_FOUND);
    assert_null(s);
    capf_msg_free(m);
    /* missing PASSWORD */
    m = parse_hex("55 02 00 00 00 01 00 0D 01 00 01 01 07 00 01 03 0D 00 02 41 00");
    assert_int_equal(capf_msg_get_string(m, CAPF_EL_PASSWORD, &s, &n), PT_ERR_NOT_FOUND);
    assert_string_el(m, CAPF_EL_DEVICE_NAME, "A");
    capf_msg_free(m);
    /* strings must end with their only NUL */
    m = parse_hex("55 02 00 00 00 01 00 11 0B 00 00 0D 00 02 41 42 0B 00 00 0D 00 03 41 00 42");
    assert_int_equal(capf_msg_get_string(m, CAPF_EL_PASSWORD, &s, &n), PT_ERR_FORMAT);
    assert_int_equal(capf_msg_get_string(m, CAPF_EL_DEVICE_NAME, &s, &n), PT_ERR_FORMAT);
    capf_msg_free(m);
    /* and the builder writes "" as `0B 00 01 00` */
    uint8_t *buf;
    size_t len;
    assert_int_equal(capf_msg_build_auth_response(2, "SEPAABBCCDDEEFF", "", &buf, &len), PT_OK);
    assert_hex(buf, len,
               "55 02 00 00 00 02 00 1F 01 00 01 01 07 00 01 03 0B 00 01 00 0D 00 10 "
               "53 45 50 41 41 42 42 43 43 44 44 45 45 46 46 00");
    capf_msg_buf_free(buf, len);
    assert_int_equal(capf_msg_build_auth_response(2, "SEPAABBCCDDEEFF", NULL, &buf, &len), PT_OK);
    assert_int_equal(len, 0x1F + 8 - 4);
    capf_msg_buf_free(buf, len);
}

static void test_composite_errors(void **state)
{
    (void)state;
    const uint8_t *p;
    size_t n;
    capf_sha2_signed sha2;
    capf_sudi sudi;
    uint16_t v16;
    /* CERTIFICATE: too short, not DER, trailing bytes after the DER */
    capf_msg *m = parse_hex("55 0C 00 00 00 01 00 0C 01 00 01 01 04 00 05 01 00 02 00 01");
    assert_int_equal(capf_msg_get_certificate(m, &p, &n), PT_ERR_FORMAT);
    capf_msg_free(m);
    m = parse_hex("55 0C 00 00 00 01 00 0E 01 00 01 01 04 00 07 01 00 04 00 01 31 00");
    assert_int_equal(capf_msg_get_certificate(m, &p, &n), PT_ERR_FORMAT);
    capf_msg_free(m);
    m = parse_hex("55 0C 00 00 00 01 00 0F 01 00 01 01 04 00 08 01 00 05 00 01 30 00 00");
    assert_int_equal(capf_msg_get_certificate(m, &p, &n), PT_ERR_FORMAT);
    capf_msg_free(m);
    /* wrapper fields other than the DER are ignored (CAPF-U9) */
    m = parse_hex("55 0C 00 00 00 01 00 0E 01 00 01 01 04 00 07 09 FF FF 00 02 30 00");
    assert_int_equal(capf_msg_get_certificate(m, &p, &n), PT_OK);
    assert_hex(p, n, "30 00");
    assert_int_equal(capf_msg_get_u16(m, CAPF_EL_REASON, &v16), PT_ERR_FORMAT);
    capf_msg_free(m);

    /* SHA2_SIGNED_DATA whose inner length disagrees */
    m = parse_hex("55 02 00 00 00 01 00 07 14 00 04 03 00 02 AA");
    assert_int_equal(capf_msg_get_sha2_signed_data(m, &sha2), PT_ERR_FORMAT);
    assert_null(sha2.sig);
    capf_msg_free(m);
    m = parse_hex("55 02 00 00 00 01 00 08 14 00 05 02 00 02 AA BB");
    assert_int_equal(capf_msg_get_sha2_signed_data(m, &sha2), PT_OK);
    assert_int_equal(sha2.digest, 2); /* returned, judged by capf_auth */
    capf_msg_free(m);

    /* SUDI_DATA with two items, and with trailing bytes */
    m = parse_hex("55 02 00 00 00 01 00 0B 10 00 08 00 00 01 AA 01 00 01 BB");
    assert_int_equal(capf_msg_get_sudi(m, &sudi), PT_ERR_FORMAT);
    capf_msg_free(m);
    m = parse_hex("55 02 00 00 00 01 00 10 10 00 0D 00 00 01 AA 01 00 01 BB 03 00 01 CC 00");
    assert_int_equal(capf_msg_get_sudi(m, &sudi), PT_ERR_FORMAT);
    assert_null(sudi.cert);
    capf_msg_free(m);
}

/* ------------------------------------------------------------------------ */
/* Every truncation and deterministic mutations                             */

/* Call every getter; each must answer OK, NOT_FOUND or FORMAT. */
static void exercise_getters(const capf_msg *m)
{
    for (int t = 0; t < 256; t++) {
        uint8_t tag = (uint8_t)t, v8;
        uint16_t v16;
        const uint8_t *p;
        const char *s;
        size_t n;
        pt_err rcs[] = {capf_msg_get_u8(m, tag, &v8), capf_msg_get_u16(m, tag, &v16),
                        capf_msg_get_bytes(m, tag, &p, &n), capf_msg_get_string(m, tag, &s, &n)};
        for (size_t i = 0; i < 4; i++)
            assert_true(rcs[i] == PT_OK || rcs[i] == PT_ERR_NOT_FOUND || rcs[i] == PT_ERR_FORMAT);
    }
    const uint8_t *der;
    size_t n;
    capf_sha2_signed sha2;
    capf_sudi sudi;
    char notes[512];
    pt_err rc = capf_msg_get_certificate(m, &der, &n);
    assert_true(rc == PT_OK || rc == PT_ERR_NOT_FOUND || rc == PT_ERR_FORMAT);
    rc = capf_msg_get_sha2_signed_data(m, &sha2);
    assert_true(rc == PT_OK || rc == PT_ERR_NOT_FOUND || rc == PT_ERR_FORMAT);
    rc = capf_msg_get_sudi(m, &sudi);
    assert_true(rc == PT_OK || rc == PT_ERR_NOT_FOUND || rc == PT_ERR_FORMAT);
    capf_msg_notes_format(m, notes, sizeof notes);
    assert_true(strlen(notes) < sizeof notes);
}

typedef struct seed {
    uint8_t *buf;
    size_t len;
} seed;

/* Valid messages of every kind, from the builders. */
static size_t make_seeds(seed *s, size_t max)
{
    size_t n = 0, cert_len;
    uint8_t *cert = fake_cert_894(&cert_len), *sig = fake_sig(128, 9);
    uint8_t sudi_cert[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    capf_cert_auth a = {"SEP001122334455", "",  cert, cert_len, sig, 128, sig, 128, sudi_cert,
                        sizeof sudi_cert,  sig, 64,   sig,      64};
    assert_true(max >= 12);
    capf_msg_build_auth_request(1, &s[n].buf, &s[n].len), n++;
    capf_msg_build_auth_response(1, "SEP001122334455", "123456", &s[n].buf, &s[n].len), n++;
    capf_msg_build_auth_response_cert(1, &a, &s[n].buf, &s[n].len), n++;
    capf_msg_build_key_generate_request_rsa(1, 2048, &s[n].buf, &s[n].len), n++;
    capf_msg_build_key_generate_request_ec(2, 1, &s[n].buf, &s[n].len), n++;
    capf_msg_build_key_generate_response(1, cert, 300, 1, &s[n].buf, &s[n].len), n++;
    capf_msg_build_store_certificate_request(1, cert, cert_len, &s[n].buf, &s[n].len), n++;
    capf_msg_build_fetch_response(4, 1, cert, cert_len, &s[n].buf, &s[n].len), n++;
    capf_msg_build_end_session(1, 1, &s[n].buf, &s[n].len), n++;
    capf_msg_build_request_in_progress(1, &s[n].buf, &s[n].len), n++;
    capf_msg_build_fetch_request(4, &s[n].buf, &s[n].len), n++;
    capf_msg_build_delete_response(4, 7, &s[n].buf, &s[n].len), n++;
    for (size_t i = 0; i < n; i++)
        assert_non_null(s[i].buf);
    free(cert);
    free(sig);
    return n;
}

static void test_every_truncation(void **state)
{
    (void)state;
    seed s[16];
    size_t n = make_seeds(s, 16);
    for (size_t i = 0; i < n; i++) {
        for (size_t cut = 0; cut < s[i].len; cut++) {
            /* exact-size copy so ASan sees any read past the cut */
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, s[i].buf, cut);
            capf_msg *m = NULL;
            assert_int_not_equal(capf_msg_parse(copy, cut, &m), PT_OK);
            assert_null(m);
            /* and with LENGTH patched to what is left, parse or fail cleanly */
            if (cut >= CAPF_HEADER_LEN) {
                copy[6] = (uint8_t)((cut - 8) >> 8);
                copy[7] = (uint8_t)(cut - 8);
                if (capf_msg_parse(copy, cut, &m) == PT_OK) {
                    exercise_getters(m);
                    capf_msg_free(m);
                }
            }
            free(copy);
        }
        capf_msg *m = NULL;
        assert_int_equal(capf_msg_parse(s[i].buf, s[i].len, &m), PT_OK);
        exercise_getters(m);
        capf_msg_free(m);
    }
    for (size_t i = 0; i < n; i++)
        capf_msg_buf_free(s[i].buf, s[i].len);
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap, uint32_t *rng)
{
    uint32_t r = tu_rand(rng);
    size_t at = len ? tu_rand(rng) % len : 0;
    switch (r % 6) {
    case 0: /* flip a bit */
        buf[at] ^= (uint8_t)(1u << (tu_rand(rng) % 8));
        break;
    case 1: /* random byte */
        buf[at] = (uint8_t)tu_rand(rng);
        break;
    case 2: /* an interesting length byte */
        buf[at] = (const uint8_t[]){0x00, 0x01, 0x02, 0x7f, 0x80, 0xff}[tu_rand(rng) % 6];
        break;
    case 3: /* cut */
        len = at;
        break;
    case 4: /* insert a few random bytes */
        if (len + 4 <= cap) {
            memmove(buf + at + 4, buf + at, len - at);
            for (int i = 0; i < 4; i++)
                buf[at + i] = (uint8_t)tu_rand(rng);
            len += 4;
        }
        break;
    default: /* remove a byte */
        if (len > 0) {
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
        }
        break;
    }
    /* Mostly keep LENGTH consistent so that mutations reach the element parser. */
    if (len >= CAPF_HEADER_LEN && (r >> 8) % 4 != 0) {
        buf[6] = (uint8_t)((len - 8) >> 8);
        buf[7] = (uint8_t)(len - 8);
    }
    return len;
}

static void test_mutations(void **state)
{
    (void)state;
    seed s[16];
    size_t n = make_seeds(s, 16);
    uint32_t rng = 0x2545F491;
    unsigned parsed = 0, rejected = 0;
    for (int iter = 0; iter < 6000; iter++) {
        const seed *from = &s[iter % n];
        size_t cap = from->len + 64;
        uint8_t *buf = malloc(cap);
        memcpy(buf, from->buf, from->len);
        size_t len = from->len;
        int rounds = 1 + (int)(tu_rand(&rng) % 4);
        for (int i = 0; i < rounds; i++)
            len = mutate(buf, len, cap, &rng);
        uint8_t *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        capf_msg *m = NULL;
        pt_err rc = capf_msg_parse(exact, len, &m);
        if (rc == PT_OK) {
            parsed++;
            exercise_getters(m);
            capf_msg_free(m);
        } else {
            rejected++;
            assert_true(rc == PT_ERR_FORMAT || rc == PT_ERR_PROTOCOL || rc == PT_ERR_LIMIT);
            assert_null(m);
            assert_true(strlen(pt_err_message()) > 0);
        }
        free(exact);
        free(buf);
    }
    /* Both outcomes must be well represented, or the mutations test nothing. */
    assert_true(parsed > 1000);
    assert_true(rejected > 1000);
    for (size_t i = 0; i < n; i++)
        capf_msg_buf_free(s[i].buf, s[i].len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcript_auth_request),
        cmocka_unit_test(test_transcript_key_generate_rsa),
        cmocka_unit_test(test_transcript_store_certificate),
        cmocka_unit_test(test_store_certificate_real_cert),
        cmocka_unit_test(test_transcript_end_session),
        cmocka_unit_test(test_other_openings),
        cmocka_unit_test(test_vendor_server_messages_parse),
        cmocka_unit_test(test_transcript_auth_response),
        cmocka_unit_test(test_transcript_request_in_progress),
        cmocka_unit_test(test_transcript_key_generate_response),
        cmocka_unit_test(test_transcript_store_response),
        cmocka_unit_test(test_transcript_fetch_response),
        cmocka_unit_test(test_cert_auth_response_layout),
        cmocka_unit_test(test_layouts_follow_write_order),
        cmocka_unit_test(test_encode_checks),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_builder_argument_checks),
        cmocka_unit_test(test_key_generate_response_failure),
        cmocka_unit_test(test_retry_later),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_header_parse),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_element_errors),
        cmocka_unit_test(test_fixed_size_longer_is_reported),
        cmocka_unit_test(test_repeated_tags_last_wins),
        cmocka_unit_test(test_unknown_tags_skipped),
        cmocka_unit_test(test_passwords),
        cmocka_unit_test(test_composite_errors),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
