/*
 * Unit tests for common/: errors, atomic files, bounded reads, hex, names,
 * times and the DER certificate helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cert.h"
#include "der.h"
#include "fileio.h"
#include "hex.h"
#include "pt_error.h"
#include "rmtree.h"

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pt-unit-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return pt_test_rmtree(tmpdir) == 0 ? 0 : -1;
}

static void test_error_detail_and_context(void **state)
{
    (void)state;
    pt_err_clear();
    assert_string_equal(pt_err_message(), "");
    assert_int_equal(pt_fail(PT_ERR_FORMAT, "offset %d: bad", 12), PT_ERR_FORMAT);
    assert_string_equal(pt_err_message(), "offset 12: bad");
    assert_int_equal(pt_err_context(PT_ERR_FORMAT, "reading %s", "x.tlv"), PT_ERR_FORMAT);
    assert_string_equal(pt_err_message(), "reading x.tlv: offset 12: bad");
    pt_err_clear();
    pt_err_context(PT_ERR_NOMEM, "building");
    assert_string_equal(pt_err_message(), "building: out of memory");
    assert_int_equal(pt_fail_ckr(PT_ERR_CKR, 0xa0, "login"), PT_ERR_CKR);
    assert_int_equal(pt_err_ckr(), 0xa0);
    for (int code = 0; code >= PT_ERR_INTERNAL; code--)
        assert_string_not_equal(pt_err_name((pt_err)code), "unknown error");
}

static void test_atomic_write_replaces_whole_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/out.bin", tmpdir);
    assert_int_equal(pt_file_write_atomic(path, "first", 5, 0640), PT_OK);
    assert_int_equal(pt_file_write_atomic(path, "second!", 7, 0644), PT_OK);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(pt_file_read(path, 100, &data, &len), PT_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "second!", 7);
    OPENSSL_free(data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* No temporary file is left behind. */
    assert_int_equal(pt_test_count_entries(tmpdir), 1);
}

static void test_atomic_write_failure_leaves_nothing(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/missing-dir/out.bin", tmpdir);
    assert_int_equal(pt_file_write_atomic(path, "x", 1, 0644), PT_ERR_ERRNO);
    assert_non_null(strstr(pt_err_message(), "missing-dir"));
    assert_int_not_equal(access(path, F_OK), 0);
}

static void test_file_read_limits(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/big.bin", tmpdir);
    char buf[1000];
    memset(buf, 'a', sizeof buf);
    assert_int_equal(pt_file_write_atomic(path, buf, sizeof buf, 0600), PT_OK);
    uint8_t *data = (uint8_t *)1;
    size_t len = 1;
    assert_int_equal(pt_file_read(path, 999, &data, &len), PT_ERR_LIMIT);
    assert_null(data);
    assert_int_equal(pt_file_read(path, 1000, &data, &len), PT_OK);
    assert_int_equal(len, 1000);
    OPENSSL_free(data);
    assert_int_equal(pt_file_read(tmpdir, 1000, &data, &len), PT_ERR_IO);
    snprintf(path, sizeof path, "%s/nope", tmpdir);
    assert_int_equal(pt_file_read(path, 1000, &data, &len), PT_ERR_ERRNO);
}

static void test_hex_round_trip(void **state)
{
    (void)state;
    const uint8_t in[] = {0x00, 0xab, 0x7f, 0xff};
    char *s = pt_hex_encode(in, sizeof in, ':');
    assert_string_equal(s, "00:AB:7F:FF");
    OPENSSL_free(s);
    s = pt_hex_encode(in, sizeof in, 0);
    assert_string_equal(s, "00AB7FFF");
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(pt_hex_decode("00:ab:7F ff", &out, &len), PT_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(out, in, 4);
    OPENSSL_free(out);
    OPENSSL_free(s);
    char lower[9];
    pt_hex_lower(in, sizeof in, lower);
    assert_string_equal(lower, "00ab7fff");
    assert_int_equal(pt_hex_decode("abc", &out, &len), PT_ERR_FORMAT);
    assert_int_equal(pt_hex_decode("zz", &out, &len), PT_ERR_FORMAT);
}

static char *name_oneline(const X509_NAME *n)
{
    X509 *x = X509_new();
    X509_set_subject_name(x, n);
    pt_cert_info ci;
    /* Only the subject is used; fill what pt_cert_info_get needs. */
    EVP_PKEY *k = EVP_RSA_gen(1024);
    X509_set_pubkey(x, k);
    X509_set_issuer_name(x, n);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 60);
    X509_sign(x, k, EVP_sha256());
    assert_int_equal(pt_cert_info_get(x, &ci), PT_OK);
    char *s = strdup(ci.subject);
    assert_string_equal(ci.key, "RSA 1024");
    pt_cert_info_free(&ci);
    X509_free(x);
    EVP_PKEY_free(k);
    return s;
}

static void test_name_parse_forms(void **state)
{
    (void)state;
    X509_NAME *n = NULL;
    assert_int_equal(pt_name_parse("CN=SAST-1,O=Example,OU=VoIP,C=NZ", &n), PT_OK);
    assert_int_equal(X509_NAME_entry_count(n), 4);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(n, 0))),
                     NID_commonName);
    char *s = name_oneline(n);
    assert_string_equal(s, "CN=SAST-1,O=Example,OU=VoIP,C=NZ");
    free(s);
    X509_NAME_free(n);

    assert_int_equal(pt_name_parse("/CN=a\\/b/O=x, y", &n), PT_OK);
    s = name_oneline(n);
    assert_string_equal(s, "CN=a/b,O=x\\, y");
    free(s);
    X509_NAME_free(n);

    assert_int_equal(pt_name_parse("CN=A\\,B, O = Org ", &n), PT_OK);
    assert_int_equal(X509_NAME_entry_count(n), 2);
    X509_NAME_free(n);

    assert_int_equal(pt_name_parse("", &n), PT_ERR_USAGE);
    assert_int_equal(pt_name_parse("CN", &n), PT_ERR_USAGE);
    assert_int_equal(pt_name_parse("XX=1", &n), PT_ERR_USAGE);
    assert_int_equal(pt_name_parse("CN=a,,O=b", &n), PT_ERR_USAGE);
    assert_int_equal(pt_name_parse("CN=", &n), PT_ERR_USAGE);
    assert_int_equal(pt_name_parse("C=NZL", &n), PT_ERR_USAGE); /* countries are 2 letters */
    assert_null(n);
}

static void test_time_parse(void **state)
{
    (void)state;
    time_t t;
    assert_int_equal(pt_time_parse_iso8601("1970-01-02", &t), PT_OK);
    assert_int_equal(t, 86400);
    assert_int_equal(pt_time_parse_iso8601("2026-11-23T12:30:15Z", &t), PT_OK);
    char buf[21];
    pt_time_iso8601(t, buf);
    assert_string_equal(buf, "2026-11-23T12:30:15Z");
    assert_int_equal(pt_time_parse_iso8601("2026-11-23T12:30", &t), PT_OK);
    pt_time_iso8601(t, buf);
    assert_string_equal(buf, "2026-11-23T12:30:00Z");
    assert_int_equal(pt_time_parse_iso8601("2026-02-31", &t), PT_ERR_USAGE);
    assert_int_equal(pt_time_parse_iso8601("2026-11-23T25:00", &t), PT_ERR_USAGE);
    assert_int_equal(pt_time_parse_iso8601("2026-11-23X", &t), PT_ERR_USAGE);
    assert_int_equal(pt_time_parse_iso8601("tomorrow", &t), PT_ERR_USAGE);
    assert_int_equal(pt_time_parse_iso8601("2026-11-23T12:30:15+02", &t), PT_ERR_USAGE);
}

static void test_time_add_years(void **state)
{
    (void)state;
    time_t t;
    char buf[21];
    assert_int_equal(pt_time_parse_iso8601("2026-11-23T12:30:15Z", &t), PT_OK);
    pt_time_iso8601(pt_time_add_years(t, 5), buf);
    assert_string_equal(buf, "2031-11-23T12:30:15Z");
    assert_int_equal(pt_time_parse_iso8601("2024-02-29T00:00:00Z", &t), PT_OK);
    pt_time_iso8601(pt_time_add_years(t, 1), buf);
    assert_string_equal(buf, "2025-03-01T00:00:00Z");
    pt_time_iso8601(pt_time_add_years(t, 4), buf);
    assert_string_equal(buf, "2028-02-29T00:00:00Z");
}

/* A TBS made by OpenSSL, re-signed through pt_der_* and checked by OpenSSL. */
static void test_der_tbs_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(1024);
    X509 *x = X509_new();
    X509_NAME *n = NULL;
    assert_int_equal(pt_name_parse("CN=test", &n), PT_OK);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    uint8_t *tbs = NULL;
    int tbs_len = i2d_re_X509_tbs(x, &tbs);
    assert_true(tbs_len > 0);

    X509 *parsed = NULL;
    assert_int_equal(pt_der_tbs_to_x509(tbs, (size_t)tbs_len, &parsed), PT_OK);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(parsed), n), 0);
    X509_free(parsed);

    X509 *signed_again = NULL;
    assert_int_equal(pt_der_tbs_sign_local(tbs, (size_t)tbs_len, key, EVP_sha256(), &signed_again),
                     PT_OK);
    assert_int_equal(X509_verify(signed_again, key), 1);
    X509_free(signed_again);

    /* Hostile TBS: truncated, trailing byte, not a SEQUENCE. */
    assert_int_equal(pt_der_tbs_to_x509(tbs, (size_t)tbs_len - 1, &parsed), PT_ERR_FORMAT);
    uint8_t *longer = OPENSSL_malloc((size_t)tbs_len + 1);
    memcpy(longer, tbs, (size_t)tbs_len);
    longer[tbs_len] = 0;
    assert_int_equal(pt_der_tbs_to_x509(longer, (size_t)tbs_len + 1, &parsed), PT_ERR_FORMAT);
    longer[0] = 0x31;
    assert_int_equal(pt_der_tbs_to_x509(longer, (size_t)tbs_len, &parsed), PT_ERR_FORMAT);
    for (int cut = 0; cut < tbs_len; cut++)
        assert_int_not_equal(pt_der_tbs_to_x509(tbs, (size_t)cut, &parsed), PT_OK);
    OPENSSL_free(longer);
    OPENSSL_free(tbs);
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_der_length_forms(void **state)
{
    (void)state;
    /* Non-minimal long form and an oversized length are refused. */
    const uint8_t nonminimal[] = {0x30, 0x81, 0x05, 1, 2, 3, 4, 5};
    const uint8_t oversized[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0};
    const uint8_t ok_long[] = {0x04, 0x81, 0x80};
    pt_reader r, c;
    uint8_t tag;
    pt_reader_init(&r, nonminimal, sizeof nonminimal);
    assert_int_equal(pt_der_read(&r, &tag, &c, NULL, NULL), PT_ERR_FORMAT);
    pt_reader_init(&r, oversized, sizeof oversized);
    assert_int_equal(pt_der_read(&r, &tag, &c, NULL, NULL), PT_ERR_FORMAT);
    pt_reader_init(&r, ok_long, sizeof ok_long);
    assert_int_equal(pt_der_read(&r, &tag, &c, NULL, NULL), PT_ERR_FORMAT); /* 128 bytes missing */
}

/* The structural certificate check against certificates OpenSSL made. */
static void test_der_cert_check(void **state)
{
    (void)state;
    EVP_PKEY *keys[3] = {EVP_RSA_gen(1024), EVP_EC_gen("P-256"),
                         EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
    const pt_der_key_type want[3] = {PT_DER_KEY_RSA, PT_DER_KEY_EC, PT_DER_KEY_OTHER};
    for (int i = 0; i < 3; i++) {
        X509 *x = X509_new();
        X509_NAME *n = NULL;
        assert_int_equal(pt_name_parse("CN=check", &n), PT_OK);
        X509_set_version(x, X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
        X509_set_subject_name(x, n);
        X509_set_issuer_name(x, n);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 60);
        X509_set_pubkey(x, keys[i]);
        assert_true(X509_sign(x, keys[i], i == 2 ? NULL : EVP_sha256()) > 0);
        uint8_t *der = NULL;
        int len = i2d_X509(x, &der);
        pt_der_key_type kt;
        assert_int_equal(pt_der_cert_check(der, (size_t)len, &kt), PT_OK);
        assert_int_equal(kt, want[i]);
        for (int cut = 0; cut < len; cut++)
            assert_int_equal(pt_der_cert_check(der, (size_t)cut, &kt), PT_ERR_FORMAT);
        uint8_t *more = OPENSSL_malloc((size_t)len + 1);
        memcpy(more, der, (size_t)len);
        more[len] = 0;
        assert_int_equal(pt_der_cert_check(more, (size_t)len + 1, &kt), PT_ERR_FORMAT);
        OPENSSL_free(more);
        OPENSSL_free(der);
        X509_NAME_free(n);
        X509_free(x);
        EVP_PKEY_free(keys[i]);
    }
    const uint8_t empty_seq[] = {0x30, 0x00};
    pt_der_key_type kt;
    assert_int_equal(pt_der_cert_check(empty_seq, sizeof empty_seq, &kt), PT_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_detail_and_context),
        cmocka_unit_test(test_atomic_write_replaces_whole_file),
        cmocka_unit_test(test_atomic_write_failure_leaves_nothing),
        cmocka_unit_test(test_file_read_limits),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_name_parse_forms),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_add_years),
        cmocka_unit_test(test_der_tbs_round_trip),
        cmocka_unit_test(test_der_length_forms),
        cmocka_unit_test(test_der_cert_check),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, remove_tmpdir);
}
