/*
 * capfd's configuration: defaults, every kind of value, the RETRY_LATER
 * element list, and errors that name the line and key.
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

#include <openssl/ssl.h>

#include "capfd_config.h"
#include "pt_error.h"

static void test_defaults(void **state)
{
    (void)state;
    capfd_config c;
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(c.port, 3804);
    assert_string_equal(c.listen, "0.0.0.0");
    assert_string_equal(c.store_url, "sqlite:/var/lib/phonetrust-capf/capf.db");
    assert_string_equal(c.hsmd_socket, "/run/phonetrust/hsmd.sock");
    assert_string_equal(c.issuer_label, "CAPF");
    assert_int_equal(c.validity_years, 5);
    assert_int_equal(c.default_key.kind, CAPF_DEVICE_KEY_RSA);
    assert_int_equal(c.default_key.rsa_bits, 2048);
    assert_int_equal(c.keygen_timeout_ms, 30 * 60 * 1000);
    assert_int_equal(c.keygen_attempts, 3);
    assert_int_equal(c.max_auth_failures, 5);
    assert_int_equal(c.max_sessions, 64);
    assert_int_equal(c.io_timeout_ms, 10000);
    assert_int_equal(c.at_limit, CAPFD_AT_LIMIT_RETRY_LATER);
    assert_int_equal(c.tls_min_version, TLS1_2_VERSION);
    /* RETRY_LATER{RETRY_DELAY u16 60} by default. */
    assert_int_equal(c.retry_later.n, 1);
    assert_int_equal(c.retry_later.els[0].tag, CAPF_EL_RETRY_DELAY);
    assert_int_equal(c.retry_later.els[0].len, 2);
    assert_memory_equal(c.retry_later.els[0].value, "\x00\x3c", 2);
    /* TLS certificate and key have no default. */
    assert_int_equal(capfd_config_check(&c), PT_ERR_USAGE);
    capfd_config_free(&c);
}

static void test_durations(void **state)
{
    (void)state;
    int ms = 0;
    assert_int_equal(capfd_duration_parse("10s", 1000, &ms), PT_OK);
    assert_int_equal(ms, 10000);
    assert_int_equal(capfd_duration_parse("30", 60000, &ms), PT_OK);
    assert_int_equal(ms, 30 * 60000);
    assert_int_equal(capfd_duration_parse("500ms", 1000, &ms), PT_OK);
    assert_int_equal(ms, 500);
    assert_int_equal(capfd_duration_parse("2h", 1000, &ms), PT_OK);
    assert_int_equal(ms, 7200000);
    assert_int_equal(capfd_duration_parse("25h", 1000, &ms), PT_ERR_USAGE);
    assert_int_equal(capfd_duration_parse("0s", 1000, &ms), PT_ERR_USAGE);
    assert_int_equal(capfd_duration_parse("-1", 1000, &ms), PT_ERR_USAGE);
    assert_int_equal(capfd_duration_parse("10 s", 1000, &ms), PT_ERR_USAGE);
    assert_int_equal(capfd_duration_parse("10d", 1000, &ms), PT_ERR_USAGE);
    assert_int_equal(capfd_duration_parse("", 1000, &ms), PT_ERR_USAGE);
    assert_int_equal(capfd_duration_parse("99999999999999999999", 1000, &ms), PT_ERR_USAGE);
}

static void test_retry_later(void **state)
{
    (void)state;
    capfd_retry_later r;
    assert_int_equal(capfd_retry_later_parse("REASON=u8:7, 12=u32:300 RETRY_DELAY=u16:1", &r),
                     PT_ERR_USAGE); /* RETRY_DELAY twice (12 is its number) */
    assert_int_equal(capfd_retry_later_parse("REASON=u8:7, 12=u32:300", &r), PT_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.els[0].tag, CAPF_EL_REASON);
    assert_memory_equal(r.els[0].value, "\x07", 1);
    assert_int_equal(r.els[1].tag, CAPF_EL_RETRY_DELAY);
    assert_memory_equal(r.els[1].value, "\x00\x00\x01\x2c", 4);
    assert_int_equal(capfd_retry_later_parse("REASON_INFO=hex:4275737900", &r), PT_OK);
    assert_int_equal(r.els[0].len, 5);
    assert_memory_equal(r.els[0].value, "Busy", 5);
    assert_int_equal(capfd_retry_later_parse("none", &r), PT_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(capfd_retry_later_parse("", &r), PT_OK);
    assert_int_equal(r.n, 0);
    /* REASON is a u8 element: a u16 value does not fit it. */
    assert_int_equal(capfd_retry_later_parse("REASON=u16:7", &r), PT_ERR_USAGE);
    assert_int_equal(capfd_retry_later_parse("RETRY_DELAY=u8:256", &r), PT_ERR_USAGE);
    assert_int_equal(capfd_retry_later_parse("RETRY_DELAY=hex:0", &r), PT_ERR_USAGE);
    assert_int_equal(capfd_retry_later_parse("RETRY_DELAY=hex:zz", &r), PT_ERR_USAGE);
    assert_int_equal(capfd_retry_later_parse("RETRY_DELAY", &r), PT_ERR_USAGE);
    assert_int_equal(capfd_retry_later_parse("RETRY_DELAY=60", &r), PT_ERR_USAGE);
    assert_int_equal(capfd_retry_later_parse("BOGUS=u8:1", &r), PT_ERR_USAGE);
    assert_int_equal(capfd_retry_later_parse("14=u8:1", &r), PT_ERR_USAGE); /* undefined tag */
    assert_int_equal(capfd_retry_later_parse("RETRY_DELAY=i16:1", &r), PT_ERR_USAGE);
    char many[512] = "";
    size_t used = 0;
    for (int i = 1; i <= 9; i++)
        used += (size_t)snprintf(many + used, sizeof many - used, "%d=hex:00 ", i);
    assert_int_equal(capfd_retry_later_parse(many, &r), PT_ERR_LIMIT); /* 9 > 8 elements */
}

static void test_set(void **state)
{
    (void)state;
    capfd_config c;
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(capfd_config_set(&c, "server", "port", "0"), PT_OK);
    assert_int_equal(c.port, 0);
    assert_int_equal(capfd_config_set(&c, "server", "port", "65536"), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "[server] port"));
    assert_int_equal(capfd_config_set(&c, "service", "key", "ec-preferred:P-384/rsa:3072"), PT_OK);
    assert_int_equal(c.default_key.kind, CAPF_DEVICE_KEY_EC_PREFERRED);
    assert_int_equal(c.default_key.curve, CAPF_DEVICE_CURVE_P384);
    assert_int_equal(c.default_key.rsa_bits, 3072);
    assert_int_equal(capfd_config_set(&c, "service", "key", "default"), PT_ERR_USAGE);
    assert_int_equal(capfd_config_set(&c, "service", "validity-years", "9"), PT_OK);
    assert_int_equal(capfd_config_set(&c, "service", "validity-years", "10"), PT_ERR_USAGE);
    assert_int_equal(capfd_config_set(&c, "service", "keygen-timeout", "45"), PT_OK);
    assert_int_equal(c.keygen_timeout_ms, 45 * 60000);
    assert_int_equal(capfd_config_set(&c, "limits", "at-limit", "close"), PT_OK);
    assert_int_equal(c.at_limit, CAPFD_AT_LIMIT_CLOSE);
    assert_int_equal(capfd_config_set(&c, "limits", "at-limit", "drop"), PT_ERR_USAGE);
    assert_int_equal(capfd_config_set(&c, "limits", "io-timeout", "250ms"), PT_OK);
    assert_int_equal(c.io_timeout_ms, 250);
    assert_int_equal(capfd_config_set(&c, "auth", "check-validity", "yes"), PT_OK);
    assert_true(c.check_validity);
    assert_int_equal(capfd_config_set(&c, "auth", "check-validity", "maybe"), PT_ERR_USAGE);
    assert_int_equal(capfd_config_set(&c, "auth", "max-failures", "0"), PT_ERR_USAGE);
    assert_int_equal(capfd_config_set(&c, "tls", "min-version", "TLSv1.3"), PT_OK);
    assert_int_equal(capfd_config_set(&c, "tls", "max-version", "TLSv1.2"), PT_OK);
    assert_int_equal(capfd_config_set(&c, "tls", "certificate", "/x.pem"), PT_OK);
    assert_int_equal(capfd_config_set(&c, "tls", "key", "/x.key"), PT_OK);
    assert_int_equal(capfd_config_check(&c), PT_ERR_USAGE); /* max below min */
    assert_int_equal(capfd_config_set(&c, "tls", "min-version", "SSLv3"), PT_ERR_USAGE);
    assert_int_equal(capfd_config_set(&c, "hsmd", "key", "two words"), PT_ERR_USAGE);
    assert_int_equal(capfd_config_set(&c, "hsmd", "nope", "1"), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "unknown key 'nope'"));
    assert_int_equal(capfd_config_set(&c, "nosuch", "port", "1"), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "unknown section [nosuch]"));
    assert_int_equal(capfd_config_set(&c, "store", "url", ""), PT_ERR_USAGE);
    capfd_config_free(&c);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/pt-capfd-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    capfd_config c;
    write_file(path, "; a comment\n[server]\nlisten = ::1\nport = 13804\n\n[tls]\n"
                     "certificate = /etc/capfd/tls.pem\nkey = pkcs11:token=TLS\n"
                     "[limits]\nmax-sessions = 2\nretry-later-elements = none\n");
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(capfd_config_load(path, &c), PT_OK);
    assert_string_equal(c.listen, "::1");
    assert_int_equal(c.port, 13804);
    assert_string_equal(c.tls_key, "pkcs11:token=TLS");
    assert_int_equal(c.max_sessions, 2);
    assert_int_equal(c.retry_later.n, 0);
    capfd_config_free(&c);

    write_file(path, "[tls]\ncertificate = a\nkey = b\n[service]\nkeygen-attempts = 11\n");
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(capfd_config_load(path, &c), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "line 5: [service] keygen-attempts"));
    capfd_config_free(&c);

    write_file(path, "[tls]\ncertificate = a\nthis is not a key value line\n");
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(capfd_config_load(path, &c), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "line 3"));
    capfd_config_free(&c);

    write_file(path, "[server]\nport = 1\n");
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(capfd_config_load(path, &c), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "[tls] certificate and key are required"));
    capfd_config_free(&c);

    unlink(path);
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(capfd_config_load(path, &c), PT_ERR_ERRNO);
    capfd_config_free(&c);
}

/* The documented example is a valid configuration with the documented defaults (but the store). */
static void test_example(void **state)
{
    (void)state;
    const char *src = getenv("PT_SOURCE_ROOT");
    if (src == NULL)
        skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/ca/capfd.conf.example", src);
    capfd_config c, d;
    assert_int_equal(capfd_config_defaults(&c), PT_OK);
    assert_int_equal(capfd_config_defaults(&d), PT_OK);
    assert_int_equal(capfd_config_load(path, &c), PT_OK);
    assert_int_equal(c.port, d.port);
    assert_string_equal(c.listen, d.listen);
    assert_string_equal(c.tls_ciphers, d.tls_ciphers);
    assert_string_equal(c.hsmd_socket, d.hsmd_socket);
    assert_string_equal(c.issuer_label, d.issuer_label);
    assert_int_equal(c.hsmd_timeout_ms, d.hsmd_timeout_ms);
    /* The one value the example changes: capfd.service's own state directory. */
    assert_string_equal(c.store_url, "sqlite:/var/lib/phonetrust-capf/capf.db");
    assert_int_equal(c.check_validity, d.check_validity);
    assert_int_equal(c.max_auth_failures, d.max_auth_failures);
    assert_int_equal(c.max_sessions, d.max_sessions);
    assert_int_equal(c.io_timeout_ms, d.io_timeout_ms);
    assert_int_equal(c.session_timeout_ms, d.session_timeout_ms);
    assert_int_equal(c.at_limit, d.at_limit);
    assert_int_equal(c.retry_later.n, d.retry_later.n);
    assert_int_equal(c.validity_years, d.validity_years);
    assert_memory_equal(&c.default_key, &d.default_key, sizeof c.default_key);
    assert_int_equal(c.keygen_timeout_ms, d.keygen_timeout_ms);
    assert_int_equal(c.keygen_attempts, d.keygen_attempts);
    assert_int_equal(c.tls_min_version, d.tls_min_version);
    capfd_config_free(&c);
    capfd_config_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),    cmocka_unit_test(test_durations),
        cmocka_unit_test(test_retry_later), cmocka_unit_test(test_set),
        cmocka_unit_test(test_load),        cmocka_unit_test(test_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
