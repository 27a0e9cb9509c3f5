/*
 * Unit tests for the token layer's pure parts: the retry-lockout decision,
 * PIN states, PIN sources, PKCS#11 URIs and key specifications.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <p11-kit/pkcs11.h>

#include "keygen.h"
#include "login.h"
#include "p11.h"
#include "pin.h"
#include "token.h"
#include "uri.h"

static void test_pin_state_precedence(void **state)
{
    (void)state;
    assert_int_equal(token_pin_state_from_flags(0), TOKEN_PIN_STATE_OK);
    assert_int_equal(token_pin_state_from_flags(CKF_USER_PIN_COUNT_LOW), TOKEN_PIN_STATE_COUNT_LOW);
    assert_int_equal(token_pin_state_from_flags(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY),
                     TOKEN_PIN_STATE_FINAL_TRY);
    assert_int_equal(token_pin_state_from_flags(CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED),
                     TOKEN_PIN_STATE_LOCKED);
    assert_int_equal(
        token_pin_state_from_flags(CKF_USER_PIN_TO_BE_CHANGED | CKF_USER_PIN_COUNT_LOW),
        TOKEN_PIN_STATE_TO_BE_CHANGED);
    assert_string_equal(token_pin_state_name(TOKEN_PIN_STATE_OK), "ok");
    assert_string_equal(token_pin_state_name(TOKEN_PIN_STATE_COUNT_LOW), "count-low");
    assert_string_equal(token_pin_state_name(TOKEN_PIN_STATE_FINAL_TRY), "final-try");
    assert_string_equal(token_pin_state_name(TOKEN_PIN_STATE_LOCKED), "locked");
    assert_string_equal(token_pin_state_name(TOKEN_PIN_STATE_TO_BE_CHANGED), "to-be-changed");
}

/* Every combination of the three counter flags, interactive or not, allowed or not. */
static void test_login_decision_table(void **state)
{
    (void)state;
    const unsigned long flags[] = {CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY,
                                   CKF_USER_PIN_LOCKED};
    for (unsigned mask = 0; mask < 8; mask++) {
        unsigned long f = 0;
        for (int i = 0; i < 3; i++)
            if (mask & (1u << i))
                f |= flags[i];
        for (int interactive = 0; interactive < 2; interactive++) {
            for (int allow = 0; allow < 2; allow++) {
                token_login_verdict v = token_login_decide(f, interactive, allow);
                if (f & CKF_USER_PIN_LOCKED)
                    assert_int_equal(v, TOKEN_LOGIN_REFUSE_LOCKED);
                else if ((f & CKF_USER_PIN_FINAL_TRY) && allow)
                    assert_int_equal(v, TOKEN_LOGIN_GO_WARN);
                else if (f & CKF_USER_PIN_FINAL_TRY)
                    assert_int_equal(v, interactive ? TOKEN_LOGIN_CONFIRM_FINAL
                                                    : TOKEN_LOGIN_REFUSE_FINAL);
                else if (f & CKF_USER_PIN_COUNT_LOW)
                    assert_int_equal(v, TOKEN_LOGIN_GO_WARN);
                else
                    assert_int_equal(v, TOKEN_LOGIN_GO);
            }
        }
    }
    /* A default PIN does not stop the login itself: the change follows it. */
    assert_int_equal(token_login_decide(CKF_USER_PIN_TO_BE_CHANGED, false, false), TOKEN_LOGIN_GO);
}

static void test_ckr_mapping(void **state)
{
    (void)state;
    assert_int_equal(token_ckr_fail(CKR_PIN_INCORRECT, "C_Login", "x"), PT_ERR_PIN_INCORRECT);
    assert_int_equal(pt_err_ckr(), CKR_PIN_INCORRECT);
    assert_int_equal(token_ckr_fail(CKR_PIN_LOCKED, "C_Login", "x"), PT_ERR_PIN_LOCKED);
    assert_int_equal(token_ckr_fail(CKR_PIN_EXPIRED, "C_Sign", "x"), PT_ERR_PIN_CHANGE);
    const CK_RV gone[] = {CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_ERROR,
                          CKR_SESSION_HANDLE_INVALID};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        assert_int_equal(token_ckr_fail(gone[i], "C_Sign", "signing"), PT_ERR_TOKEN_GONE);
        assert_true(token_ckr_is_gone(gone[i]));
        assert_non_null(strstr(pt_err_message(), token_ckr_name(gone[i])));
    }
    assert_false(token_ckr_is_gone(CKR_PIN_INCORRECT));
    assert_string_equal(token_ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    assert_string_equal(token_ckr_name(0x80001234UL), "CKR_0x80001234");
}

static void test_pin_sources(void **state)
{
    (void)state;
    token_pin_source s;
    char d[64];
    assert_int_equal(token_pin_source_from_uri("file:/run/pin", &s), PT_OK);
    assert_int_equal(s.kind, TOKEN_PIN_FROM_FILE);
    assert_string_equal(s.path, "/run/pin");
    assert_int_equal(token_pin_source_from_uri("file:///run/pin", &s), PT_OK);
    assert_string_equal(s.path, "/run/pin");
    assert_int_equal(token_pin_source_from_uri("/abs/pin", &s), PT_OK);
    assert_string_equal(token_pin_source_describe(&s, d, sizeof d), "file /abs/pin");
    assert_int_equal(token_pin_source_from_uri("env:PIN", &s), PT_ERR_USAGE);
    assert_int_equal(token_pin_source_from_uri("file:", &s), PT_ERR_USAGE);
    assert_int_equal(token_pin_source_from_fd("3", &s), PT_OK);
    assert_int_equal(s.fd, 3);
    assert_string_equal(token_pin_source_describe(&s, d, sizeof d), "file descriptor 3");
    assert_int_equal(token_pin_source_from_fd("three", &s), PT_ERR_USAGE);
    assert_int_equal(token_pin_source_from_fd("-1", &s), PT_ERR_USAGE);
    assert_true(token_pin_source_is_prompt(NULL));
}

static void test_pin_read_fd_lines(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    const char input[] = "old-pin\r\nnew\n";
    assert_int_equal(write(p[1], input, sizeof input - 1), (ssize_t)(sizeof input - 1));
    close(p[1]);
    token_pin_source s = {TOKEN_PIN_FROM_FD, NULL, p[0]};
    char *pin = NULL;
    assert_int_equal(token_pin_read(&s, "x", &pin), PT_OK);
    assert_string_equal(pin, "old-pin");
    token_pin_free(pin);
    assert_int_equal(token_pin_read(&s, "x", &pin), PT_OK);
    assert_string_equal(pin, "new");
    token_pin_free(pin);
    assert_int_equal(token_pin_read(&s, "x", &pin), PT_ERR_IO); /* nothing left */
    assert_null(pin);
    close(p[0]);
}

static void test_pin_read_limits(void **state)
{
    (void)state;
    int p[2];
    char big[TOKEN_PIN_MAX + 2];
    memset(big, '7', sizeof big);
    big[sizeof big - 1] = '\n';
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], big, sizeof big), (ssize_t)sizeof big);
    assert_int_equal(write(p[1], "\n", 1), 1);
    close(p[1]);
    token_pin_source s = {TOKEN_PIN_FROM_FD, NULL, p[0]};
    char *pin = NULL;
    assert_int_equal(token_pin_read(&s, "x", &pin), PT_ERR_LIMIT);
    close(p[0]);

    char path[] = "/tmp/pt-pin-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\nsecond\n", 8), 8);
    close(fd);
    token_pin_source f = {TOKEN_PIN_FROM_FILE, path, -1};
    assert_int_equal(token_pin_read(&f, "x", &pin), PT_ERR_FORMAT); /* first line empty */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "4321\r\nignored\n", 14), 14);
    close(fd);
    assert_int_equal(token_pin_read(&f, "x", &pin), PT_OK);
    assert_string_equal(pin, "4321");
    token_pin_free(pin);
    unlink(path);
}

static void test_uri_parse_and_match(void **state)
{
    (void)state;
    token_uri *u = NULL;
    assert_int_equal(token_uri_parse("pkcs11:token=SAST-1;serial=abc;object=SAST;id=%01%02;"
                                     "type=private?pin-source=file:/p&module-path=/m.so",
                                     &u),
                     PT_OK);
    assert_string_equal(token_uri_object_label(u), "SAST");
    assert_string_equal(token_uri_pin_source(u), "file:/p");
    assert_string_equal(token_uri_module_path(u), "/m.so");
    const uint8_t *id;
    size_t id_len;
    assert_true(token_uri_object_id(u, &id, &id_len));
    assert_int_equal(id_len, 2);
    assert_int_equal(id[1], 2);
    unsigned long cls;
    assert_true(token_uri_object_class(u, &cls));
    assert_int_equal(cls, CKO_PRIVATE_KEY);
    assert_false(token_uri_matches_any_token(u));

    CK_TOKEN_INFO ti;
    memset(&ti, ' ', sizeof ti);
    memcpy(ti.label, "SAST-1", 6);
    memcpy(ti.serialNumber, "abc", 3);
    assert_true(token_uri_matches_token(u, &ti, 7));
    memcpy(ti.label, "SAST-2", 6);
    assert_false(token_uri_matches_token(u, &ti, 7));
    token_uri_free(u);

    assert_int_equal(token_uri_parse("pkcs11:slot-id=7", &u), PT_OK);
    memcpy(ti.label, "SAST-2", 6);
    assert_true(token_uri_matches_token(u, &ti, 7));
    assert_false(token_uri_matches_token(u, &ti, 8));
    assert_false(token_uri_matches_any_token(u));
    token_uri_free(u);

    assert_int_equal(token_uri_parse("pkcs11:", &u), PT_OK);
    assert_true(token_uri_matches_any_token(u));
    assert_null(token_uri_object_label(u));
    token_uri_free(u);

    assert_int_equal(token_uri_parse("pkcs11:token=x?pin-value=1234", &u), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "pin-value is not accepted"));
    assert_int_equal(token_uri_parse("pkcs11:token=x;bogus=1", &u), PT_ERR_USAGE);
    assert_int_equal(token_uri_parse("file:///x", &u), PT_ERR_USAGE);
    assert_int_equal(token_uri_parse("pkcs11:token=%zz", &u), PT_ERR_USAGE);
    assert_null(u);
}

static void test_keygen_spec(void **state)
{
    (void)state;
    token_keygen_spec s;
    char name[32];
    assert_int_equal(token_keygen_spec_parse("rsa:2048", &s), PT_OK);
    assert_int_equal(s.type, EVP_PKEY_RSA);
    assert_int_equal(s.bits, 2048);
    assert_int_equal(token_keygen_spec_parse("rsa:4096", &s), PT_OK);
    assert_int_equal(token_keygen_spec_parse("ec:P-384", &s), PT_OK);
    assert_int_equal(s.curve_nid, NID_secp384r1);
    assert_string_equal(token_keygen_spec_name(&s, name, sizeof name), "ec:P-384");
    assert_int_equal(token_keygen_spec_parse("rsa:1024", &s), PT_ERR_USAGE);
    assert_int_equal(token_keygen_spec_parse("rsa:8192", &s), PT_ERR_USAGE);
    assert_int_equal(token_keygen_spec_parse("rsa:2049", &s), PT_ERR_USAGE);
    assert_int_equal(token_keygen_spec_parse("ec:P-192", &s), PT_ERR_USAGE);
    assert_int_equal(token_keygen_spec_parse("dsa:1024", &s), PT_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_state_precedence), cmocka_unit_test(test_login_decision_table),
        cmocka_unit_test(test_ckr_mapping),          cmocka_unit_test(test_pin_sources),
        cmocka_unit_test(test_pin_read_fd_lines),    cmocka_unit_test(test_pin_read_limits),
        cmocka_unit_test(test_uri_parse_and_match),  cmocka_unit_test(test_keygen_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
