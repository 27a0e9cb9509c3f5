/*
 * Helpers for the store's unit tests: a temporary directory, a store in it
 * with a clock the test sets, and certificates to record.
 */
#ifndef TEST_STORE_UTIL_H
#define TEST_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "store.h"

/* The directory every test of the executable works in (made by the group setup). */
extern char test_store_dir[128];
/* The time the store sees. */
extern time_t test_store_now;

int test_store_dir_make(void **state);
int test_store_dir_remove(void **state);

/* A path in the test directory, unique per call: "<dir>/<stem>-<n>.db". */
void test_store_path(const char *stem, char *out, size_t len);
/* A new store at a fresh path, on the test clock; its URL in url (when not NULL). */
capf_store *test_store_new(char *url, size_t url_len);

/*
 * A self-signed EC P-256 certificate with the given serial bytes (big-endian,
 * as written in the DER INTEGER, leading zero bytes included) and validity.
 */
X509 *test_store_cert(const uint8_t *serial, size_t serial_len, time_t not_before, time_t not_after,
                      const char *cn);

/* Run one SQL query on the store file with SQLite directly; the first column of its first row. */
long long test_store_sql_int(const char *path, const char *sql);

extern const capf_store_actor test_store_admin;
extern const capf_store_actor test_store_capfd;

#endif
