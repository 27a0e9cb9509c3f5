#include "test_store_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include "rmtree.h"
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sqlite3.h>

char test_store_dir[128];
time_t test_store_now = 1767225600; /* 2026-01-01T00:00:00Z */

const capf_store_actor test_store_admin = {"capfctl", "tester (uid 1000)", NULL, NULL};
const capf_store_actor test_store_capfd = {"capfd", NULL, "1A2B3C4D", "192.0.2.7:50123"};

int test_store_dir_make(void **state)
{
    (void)state;
    snprintf(test_store_dir, sizeof test_store_dir, "/tmp/pt-store-XXXXXX");
    return mkdtemp(test_store_dir) ? 0 : -1;
}

int test_store_dir_remove(void **state)
{
    (void)state;
    return pt_test_rmtree(test_store_dir) == 0 ? 0 : -1;
}

void test_store_path(const char *stem, char *out, size_t len)
{
    static unsigned counter;
    snprintf(out, len, "%s/%s-%u.db", test_store_dir, stem, counter++);
}

static time_t test_clock(void *arg)
{
    (void)arg;
    return test_store_now;
}

capf_store *test_store_new(char *url, size_t url_len)
{
    char path[256], u[300];
    test_store_path("store", path, sizeof path);
    snprintf(u, sizeof u, "sqlite:%s", path);
    capf_store *st = NULL;
    assert_int_equal(capf_store_open(u, &st), PT_OK);
    capf_store_set_clock(st, test_clock, NULL);
    if (url != NULL)
        snprintf(url, url_len, "%s", u);
    return st;
}

X509 *test_store_cert(const uint8_t *serial, size_t serial_len, time_t not_before, time_t not_after,
                      const char *cn)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    assert_non_null(key);
    assert_non_null(x);
    /* The serial's content octets exactly as given, so tests control its DER form. */
    assert_int_equal(ASN1_STRING_set(sn, serial, (int)serial_len), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(X509_set_serialNumber(x, sn), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), not_after));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    ASN1_INTEGER_free(sn);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return x;
}

long long test_store_sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}
