/*
 * Unit tests of the eToken simulator's state file and configuration
 * (esim_state.c). No token is needed.
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
#include <openssl/crypto.h>

#include "esim_state.h"

static esim_token make_token(const char *serial, unsigned long wrong, bool locked, bool default_pin,
                             esim_fault fault)
{
    esim_token t;
    esim_token_init(&t, (const uint8_t *)serial, strlen(serial));
    t.wrong = wrong;
    t.locked = locked;
    t.default_pin = default_pin;
    t.fault = fault;
    return t;
}

static void assert_token_equal(const esim_token *a, const esim_token *b)
{
    assert_int_equal(a->serial_len, b->serial_len);
    assert_memory_equal(a->serial, b->serial, a->serial_len);
    assert_int_equal(a->wrong, b->wrong);
    assert_int_equal(a->locked, b->locked);
    assert_int_equal(a->default_pin, b->default_pin);
    assert_int_equal(a->fault, b->fault);
}

static pt_err parse_text(const char *text, esim_state *st)
{
    esim_state_init(st);
    return esim_state_parse((const uint8_t *)text, strlen(text), st);
}

static void assert_parse_fails(const char *text, pt_err expected)
{
    esim_state st;
    pt_err rc = parse_text(text, &st);
    if (rc != expected)
        print_error("parsing <<%s>> gave %d (%s), expected %d\n", text, rc, pt_err_message(),
                    expected);
    assert_int_equal(rc, expected);
    assert_int_equal(st.ntokens, 0);
    esim_state_free(&st);
}

static void test_round_trip(void **unused)
{
    (void)unused;
    esim_state st, back;
    uint8_t *data = NULL;
    size_t len = 0;
    esim_token a = make_token("0123456789abcdef", 3, false, true, ESIM_FAULT_NONE);
    esim_token b = make_token("tok en=%", 16, true, false, ESIM_FAULT_REMOVE_ON_SIGN);
    esim_token got;

    esim_state_init(&st);
    assert_int_equal(esim_state_put(&st, &a), PT_OK);
    assert_int_equal(esim_state_put(&st, &b), PT_OK);
    assert_int_equal(esim_state_format(&st, &data, &len), PT_OK);
    assert_non_null(strstr((const char *)data, "token serial=tok%20en%3D%25 wrong=16 "
                                               "locked=yes default-pin=no "
                                               "fault=remove-on-sign\n"));
    esim_state_init(&back);
    assert_int_equal(esim_state_parse(data, len, &back), PT_OK);
    assert_int_equal(back.ntokens, 2);
    esim_state_get(&back, b.serial, b.serial_len, &got);
    assert_token_equal(&got, &b);
    esim_state_get(&back, a.serial, a.serial_len, &got);
    assert_token_equal(&got, &a);
    OPENSSL_free(data);
    esim_state_free(&st);
    esim_state_free(&back);
}

static void test_put_fresh_removes(void **unused)
{
    (void)unused;
    esim_state st;
    esim_token a = make_token("A1", 2, false, false, ESIM_FAULT_NONE);
    esim_token b = make_token("B2", 0, false, false, ESIM_FAULT_REMOVED);
    esim_token got;

    esim_state_init(&st);
    assert_int_equal(esim_state_put(&st, &a), PT_OK);
    assert_int_equal(esim_state_put(&st, &b), PT_OK);
    assert_int_equal(st.ntokens, 2);
    a.wrong = 0;
    assert_int_equal(esim_state_put(&st, &a), PT_OK);
    assert_int_equal(st.ntokens, 1);
    esim_state_get(&st, a.serial, a.serial_len, &got);
    assert_true(esim_token_is_fresh(&got));
    esim_state_get(&st, b.serial, b.serial_len, &got);
    assert_int_equal(got.fault, ESIM_FAULT_REMOVED);
    /* An unknown token is fresh. */
    esim_state_get(&st, (const uint8_t *)"C3", 2, &got);
    assert_true(esim_token_is_fresh(&got));
    assert_int_equal(got.serial_len, 2);
    esim_token none;
    esim_token_init(&none, NULL, 0);
    none.wrong = 1;
    assert_int_equal(esim_state_put(&st, &none), PT_ERR_INTERNAL);
    esim_state_free(&st);
}

static void test_parse_good(void **unused)
{
    (void)unused;
    esim_state st;
    esim_token got;

    assert_int_equal(parse_text("", &st), PT_OK);
    assert_int_equal(st.ntokens, 0);
    esim_state_free(&st);

    assert_int_equal(parse_text("# comment\n\n" ESIM_STATE_MAGIC "\n", &st), PT_OK);
    assert_int_equal(st.ntokens, 0);
    esim_state_free(&st);

    /* Fields in any order, runs of blanks, no final newline. */
    assert_int_equal(parse_text(ESIM_STATE_MAGIC "\ntoken  fault=sign-device-error "
                                                 "default-pin=no locked=no wrong=15 "
                                                 "serial=%41b",
                                &st),
                     PT_OK);
    assert_int_equal(st.ntokens, 1);
    esim_state_get(&st, (const uint8_t *)"Ab", 2, &got);
    assert_int_equal(got.wrong, 15);
    assert_int_equal(got.fault, ESIM_FAULT_SIGN_DEVICE_ERROR);
    esim_state_free(&st);
}

static void test_parse_bad(void **unused)
{
    (void)unused;
    const char *rec = "serial=S1 wrong=1 locked=no default-pin=no fault=none";
    char text[2048];

    assert_parse_fails("token serial=S1\n", PT_ERR_FORMAT);
    assert_parse_fails("etoken-sim-state 2\n", PT_ERR_FORMAT);
    assert_parse_fails("# only a comment\n", PT_ERR_FORMAT);
    assert_parse_fails(ESIM_STATE_MAGIC "\nslot serial=S1\n", PT_ERR_FORMAT);
    assert_parse_fails(ESIM_STATE_MAGIC "\ntoken serial=S1 wrong=1 locked=no default-pin=no\n",
                       PT_ERR_FORMAT);
    assert_parse_fails(ESIM_STATE_MAGIC "\ntoken serial=S1 wrong=1 wrong=2 locked=no "
                                        "default-pin=no fault=none\n",
                       PT_ERR_FORMAT);
    assert_parse_fails(ESIM_STATE_MAGIC "\ntoken serial=S1 wrong=1 locked=no default-pin=no "
                                        "fault=none colour=red\n",
                       PT_ERR_FORMAT);
    assert_parse_fails(ESIM_STATE_MAGIC "\ntoken serial=S1 wrong=1 locked=no default-pin=no "
                                        "fault=none stray\n",
                       PT_ERR_FORMAT);

    static const char *const bad_values[] = {
        "serial= wrong=1 locked=no default-pin=no fault=none",
        "serial=%4 wrong=1 locked=no default-pin=no fault=none",
        "serial=%G1 wrong=1 locked=no default-pin=no fault=none",
        "serial=0123456789abcdefX wrong=1 locked=no default-pin=no fault=none",
        "serial=S1 wrong=-1 locked=no default-pin=no fault=none",
        "serial=S1 wrong=+1 locked=no default-pin=no fault=none",
        "serial=S1 wrong= locked=no default-pin=no fault=none",
        "serial=S1 wrong=1000001 locked=no default-pin=no fault=none",
        "serial=S1 wrong=99999999999999999999999 locked=no default-pin=no fault=none",
        "serial=S1 wrong=1 locked=maybe default-pin=no fault=none",
        "serial=S1 wrong=1 locked=no default-pin=1 fault=none",
        "serial=S1 wrong=1 locked=no default-pin=no fault=melted",
    };
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        snprintf(text, sizeof text, ESIM_STATE_MAGIC "\ntoken %s\n", bad_values[i]);
        assert_parse_fails(text, PT_ERR_FORMAT);
    }

    /* The same token twice. */
    snprintf(text, sizeof text, ESIM_STATE_MAGIC "\ntoken %s\ntoken %s\n", rec, rec);
    assert_parse_fails(text, PT_ERR_FORMAT);
    /* Control characters, bytes over 0x7e, a line over the limit. */
    assert_parse_fails(ESIM_STATE_MAGIC "\r\n", PT_ERR_FORMAT);
    assert_parse_fails(ESIM_STATE_MAGIC "\n# caf\xc3\xa9\n", PT_ERR_FORMAT);
    size_t magic_len = strlen(ESIM_STATE_MAGIC "\n");
    static char long_line[sizeof ESIM_STATE_MAGIC + ESIM_STATE_LINE_MAX + 2];
    memcpy(long_line, ESIM_STATE_MAGIC "\n", magic_len);
    memset(long_line + magic_len, '#', ESIM_STATE_LINE_MAX + 1);
    long_line[magic_len + ESIM_STATE_LINE_MAX + 1] = '\0';
    assert_parse_fails(long_line, PT_ERR_FORMAT);
    long_line[magic_len + ESIM_STATE_LINE_MAX] = '\0';
    esim_state st;
    assert_int_equal(parse_text(long_line, &st), PT_OK); /* exactly the limit is fine */
    esim_state_free(&st);
    /* A NUL inside. */
    static const uint8_t with_nul[] = "etoken-sim-state 1\n\0";
    esim_state_init(&st);
    assert_int_equal(esim_state_parse(with_nul, sizeof with_nul - 1, &st), PT_ERR_FORMAT);
    esim_state_free(&st);
}

static void test_serial_text(void **unused)
{
    (void)unused;
    uint8_t serial[ESIM_SERIAL_MAX];
    size_t len = 99;
    char text[ESIM_SERIAL_TEXT_MAX];

    assert_true(esim_serial_trim("d0d52ac55a4fb17c", 16, serial, &len));
    assert_int_equal(len, 16);
    assert_true(esim_serial_trim("1234\0\0   ", 9, serial, &len));
    assert_int_equal(len, 4);
    assert_true(esim_serial_trim("                ", 16, serial, &len));
    assert_int_equal(len, 0);
    assert_false(esim_serial_trim("0123456789abcdef0", 17, serial, &len));
    assert_true(esim_serial_trim("0123456789abcdef   ", 19, serial, &len));
    assert_int_equal(len, 16);

    esim_serial_encode((const uint8_t *)"a b=c%\x01\xff", 8, text);
    assert_string_equal(text, "a%20b%3Dc%25%01%FF");
    memset(serial, 0xff, sizeof serial);
    esim_serial_encode(serial, sizeof serial, text);
    assert_int_equal(strlen(text), ESIM_SERIAL_TEXT_MAX - 1);
}

static void test_pin_state(void **unused)
{
    (void)unused;
    esim_token t = make_token("S", 0, false, false, ESIM_FAULT_NONE);
    assert_string_equal(esim_token_pin_state(&t, 15), "ok");
    t.wrong = 1;
    assert_string_equal(esim_token_pin_state(&t, 15), "count-low");
    t.wrong = 14;
    assert_string_equal(esim_token_pin_state(&t, 15), "count-low");
    t.wrong = 15;
    assert_string_equal(esim_token_pin_state(&t, 15), "final-try");
    assert_false(esim_token_is_locked(&t, 15));
    t.wrong = 16;
    assert_string_equal(esim_token_pin_state(&t, 15), "locked");
    assert_true(esim_token_is_locked(&t, 15));
    t.wrong = 0;
    t.locked = true;
    assert_true(esim_token_is_locked(&t, 15));

    esim_fault f;
    assert_true(esim_fault_parse("remove-on-sign", &f));
    assert_int_equal(f, ESIM_FAULT_REMOVE_ON_SIGN);
    assert_false(esim_fault_parse("Removed", &f));
    assert_string_equal(esim_fault_name(ESIM_FAULT_SIGN_DEVICE_ERROR), "sign-device-error");
}

static void test_config(void **unused)
{
    (void)unused;
    char *path = NULL;
    unsigned long m = 0;

    setenv("ETOKEN_SIM_STATE", "/some/where/state", 1);
    setenv("SOFTHSM2_CONF", "/etc/x/softhsm2.conf", 1);
    assert_int_equal(esim_config_state_path(&path), PT_OK);
    assert_string_equal(path, "/some/where/state");
    free(path);
    unsetenv("ETOKEN_SIM_STATE");
    assert_int_equal(esim_config_state_path(&path), PT_OK);
    assert_string_equal(path, "/etc/x/etoken-sim.state");
    free(path);
    setenv("SOFTHSM2_CONF", "", 1);
    assert_int_equal(esim_config_state_path(&path), PT_ERR_USAGE);
    assert_null(path);
    unsetenv("SOFTHSM2_CONF");
    assert_int_equal(esim_config_state_path(&path), PT_ERR_USAGE);

    unsetenv("ETOKEN_SIM_MAX_TRIES");
    assert_int_equal(esim_config_max_tries(&m), PT_OK);
    assert_int_equal(m, 15);
    setenv("ETOKEN_SIM_MAX_TRIES", "3", 1);
    assert_int_equal(esim_config_max_tries(&m), PT_OK);
    assert_int_equal(m, 3);
    static const char *const bad[] = {"0", "-1", "1001", "3x", " 3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("ETOKEN_SIM_MAX_TRIES", bad[i], 1);
        assert_int_equal(esim_config_max_tries(&m), PT_ERR_USAGE);
    }
    unsetenv("ETOKEN_SIM_MAX_TRIES");

    setenv("ETOKEN_SIM_BACKEND", "/nowhere/libx.so", 1);
    assert_int_equal(esim_config_backend_path(&path), PT_OK);
    assert_string_equal(path, "/nowhere/libx.so");
    free(path);
    unsetenv("ETOKEN_SIM_BACKEND");
}

static void test_files(void **unused)
{
    (void)unused;
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300], lock_path[320];
    esim_state st, back;
    esim_token t = make_token("F1", 7, false, false, ESIM_FAULT_NONE), got;
    int fd = -1;

    snprintf(dir, sizeof dir, "%s/esim-state-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state", dir);
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);

    esim_state_init(&st);
    assert_int_equal(esim_state_load(path, &st), PT_OK); /* missing: empty */
    assert_int_equal(st.ntokens, 0);
    assert_int_equal(esim_state_lock(path, &fd), PT_OK);
    assert_true(fd >= 0);
    assert_int_equal(esim_state_put(&st, &t), PT_OK);
    assert_int_equal(esim_state_save(path, &st), PT_OK);
    esim_state_unlock(fd);

    esim_state_init(&back);
    assert_int_equal(esim_state_load(path, &back), PT_OK);
    esim_state_get(&back, t.serial, t.serial_len, &got);
    assert_int_equal(got.wrong, 7);
    esim_state_free(&back);

    /* A damaged file is an error, not an empty state. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("garbage\n", f);
    fclose(f);
    assert_int_equal(esim_state_load(path, &back), PT_ERR_FORMAT);
    assert_non_null(strstr(pt_err_message(), path));

    esim_state_free(&st);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(unlink(lock_path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_put_fresh_removes),
        cmocka_unit_test(test_parse_good),  cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_serial_text), cmocka_unit_test(test_pin_state),
        cmocka_unit_test(test_config),      cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests_name("esim_state", tests, NULL, NULL);
}
