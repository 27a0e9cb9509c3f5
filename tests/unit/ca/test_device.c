/*
 * Unit tests for ca/device: device names, authentication strings and their
 * generator, descriptions, and the names of operations, modes, keys and
 * states.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device.h"

typedef struct name_case {
    const char *in;
    const char *want; /* NULL: refused */
} name_case;

static void test_device_names(void **state)
{
    (void)state;
    static const name_case cases[] = {
        {"SEP58971ECC97C1", "SEP58971ECC97C1"},
        {"sep58971ecc97c1", "SEP58971ECC97C1"}, /* folded to upper case */
        {"SeP001122aabbCC", "SEP001122AABBCC"},
        {"ATA0023EBA1C501", "ATA0023EBA1C501"},
        {"CSFJSMITH", "CSFJSMITH"},
        {"csfjsmith", "CSFJSMITH"},
        {"BOTJ.SMITH_2-X", "BOTJ.SMITH_2-X"},
        {"TCTA", "TCTA"},
        {"TABABCDEFGHIJKL", "TABABCDEFGHIJKL"}, /* 15 characters */
        {"TABABCDEFGHIJKLM", NULL},             /* 16 */
        {"SEP58971ECC97C", NULL},               /* 11 hex digits */
        {"SEP58971ECC97C1F", NULL},             /* 13 */
        {"SEP58971ECC97CG", NULL},              /* not hex */
        {"SEP58971ECC97C ", NULL},
        {"CSF", NULL}, /* prefix alone */
        {"CSFJ SMITH", NULL},
        {"CSFJ/SMITH", NULL},
        {"CSFJSMITH\xc3\xa9", NULL},
        {"XYZ001122334455", NULL}, /* unknown prefix */
        {"", NULL},
        {"58971ECC97C1", NULL},
        {"SEP58971ECC97C1\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[CAPF_DEVICE_NAME_ADMIN_MAX + 1];
        pt_err rc = capf_device_name_normalize(cases[i].in, out);
        if (cases[i].want == NULL) {
            assert_int_equal(rc, PT_ERR_USAGE);
            assert_string_equal(out, "");
            assert_non_null(strstr(pt_err_message(), "is not a device name"));
        } else {
            assert_int_equal(rc, PT_OK);
            assert_string_equal(out, cases[i].want);
        }
    }
    /* A hostile name is not echoed back. */
    char out[CAPF_DEVICE_NAME_ADMIN_MAX + 1];
    assert_int_equal(capf_device_name_normalize("SEP\x1b[2J0011223344", out), PT_ERR_USAGE);
    assert_null(strchr(pt_err_message(), '\x1b'));
}

static void test_device_name_acceptable(void **state)
{
    (void)state;
    char long_name[80];
    memset(long_name, 'A', sizeof long_name);
    assert_true(capf_device_name_acceptable("SEP58971ECC97C1", 15));
    assert_true(capf_device_name_acceptable("anything~printable", 18));
    assert_true(capf_device_name_acceptable(long_name, CAPF_DEVICE_NAME_MAX));
    assert_false(capf_device_name_acceptable(long_name, CAPF_DEVICE_NAME_MAX + 1));
    assert_false(capf_device_name_acceptable("", 0));
    assert_false(capf_device_name_acceptable(NULL, 3));
    assert_false(capf_device_name_acceptable("a b", 3));
    assert_false(capf_device_name_acceptable("a\0b", 3));
    assert_false(capf_device_name_acceptable("a\x7f", 2));
    assert_false(capf_device_name_acceptable("\xc3\xa9", 2));
}

static void test_auth_string_check(void **state)
{
    (void)state;
    static const char *const good[] = {"1234", "0000", "12345678", "0123456789"};
    static const char *const bad[] = {"",      "123",   "01234567890",
                                      "12a4",  "12 34", "\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4",
                                      "-1234", "+123"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(capf_device_auth_string_check(good[i]), PT_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(capf_device_auth_string_check(bad[i]), PT_ERR_USAGE);
        /* The message never repeats what was typed. */
        if (bad[i][0] != '\0')
            assert_null(strstr(pt_err_message(), bad[i]));
    }
}

static void test_auth_string_generate(void **state)
{
    (void)state;
    unsigned counts[10] = {0};
    char prev[16] = "";
    enum { ROUNDS = 3000 };
    for (int i = 0; i < ROUNDS; i++) {
        char s[16];
        size_t len = 4 + (size_t)i % 7;
        assert_int_equal(capf_device_auth_string_generate(len, s, sizeof s), PT_OK);
        assert_int_equal(strlen(s), len);
        assert_int_equal(capf_device_auth_string_check(s), PT_OK);
        for (size_t k = 0; k < len; k++)
            counts[s[k] - '0']++;
        if (len == 10)
            assert_string_not_equal(s, prev); /* 1 in 10^10 of failing by chance */
        if (len == 10)
            memcpy(prev, s, sizeof prev);
    }
    /*
     * Every digit about equally often: 3000 strings average 7 digits, so
     * about 2100 of each; a bias of the kind a plain "% 10" would give
     * (6 of 256 values, +2.3%) is below this bound, a stuck or missing digit
     * far above it. The bound is > 8 standard deviations: no flaky failures.
     */
    unsigned total = 0;
    for (int d = 0; d < 10; d++)
        total += counts[d];
    for (int d = 0; d < 10; d++) {
        assert_true(counts[d] > total / 10 - 350);
        assert_true(counts[d] < total / 10 + 350);
    }
    char s[16];
    assert_int_equal(capf_device_auth_string_generate(3, s, sizeof s), PT_ERR_USAGE);
    assert_int_equal(capf_device_auth_string_generate(11, s, sizeof s), PT_ERR_USAGE);
    assert_int_equal(capf_device_auth_string_generate(8, s, 8), PT_ERR_USAGE); /* no room for NUL */
}

static void test_description_check(void **state)
{
    (void)state;
    char longest[CAPF_DEVICE_DESCRIPTION_MAX + 2];
    memset(longest, 'x', sizeof longest);
    longest[CAPF_DEVICE_DESCRIPTION_MAX] = '\0';
    assert_int_equal(capf_device_description_check(""), PT_OK);
    assert_int_equal(capf_device_description_check("Lobby phone, 2nd floor \"east\""), PT_OK);
    assert_int_equal(
        capf_device_description_check("R\303\251ception \342\202\254 \360\237\223\236"), PT_OK);
    assert_int_equal(capf_device_description_check(longest), PT_OK);
    longest[CAPF_DEVICE_DESCRIPTION_MAX] = 'x';
    longest[CAPF_DEVICE_DESCRIPTION_MAX + 1] = '\0';
    assert_int_equal(capf_device_description_check(longest), PT_ERR_USAGE);
    static const char *const bad[] = {
        "tab\there",
        "new\nline",
        "del\x7f",
        "esc\x1b[0m",
        "\xc3",
        "\xc3\x28",
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xc2\x85",         /* C1 control NEL */
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(capf_device_description_check(bad[i]), PT_ERR_USAGE);
}

static void test_operation_and_auth_names(void **state)
{
    (void)state;
    static const char *const ops[] = {"none", "install", "delete", "troubleshoot"};
    static const char *const modes[] = {"null", "string", "lsc", "mic"};
    static const char *const states[] = {"none", "pending", "success", "failed"};
    for (int i = 0; i < 4; i++) {
        capf_device_op op;
        capf_device_auth mode;
        capf_device_state st;
        assert_int_equal(capf_device_op_parse(ops[i], &op), PT_OK);
        assert_int_equal(op, i);
        assert_string_equal(capf_device_op_name(op), ops[i]);
        assert_int_equal(capf_device_auth_parse(modes[i], &mode), PT_OK);
        assert_string_equal(capf_device_auth_name(mode), modes[i]);
        assert_int_equal(capf_device_state_parse(states[i], &st), PT_OK);
        assert_string_equal(capf_device_state_name(st), states[i]);
    }
    static const char *const bad[] = {"", "Install", "fetch", "install ", "password", "none\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        capf_device_op op;
        capf_device_auth mode;
        capf_device_state st;
        assert_int_equal(capf_device_op_parse(bad[i], &op), PT_ERR_USAGE);
        assert_int_equal(capf_device_auth_parse(bad[i], &mode), PT_ERR_USAGE);
        assert_int_equal(capf_device_state_parse(bad[i], &st), PT_ERR_USAGE);
    }
    assert_string_equal(capf_device_op_name((capf_device_op)42), "unknown");
}

typedef struct key_case {
    const char *text;
    capf_device_key_kind kind;
    unsigned bits;
    capf_device_curve curve;
} key_case;

static void test_key_specs(void **state)
{
    (void)state;
    static const key_case good[] = {
        {"default", CAPF_DEVICE_KEY_DEFAULT, 0, 0},
        {"rsa:1024", CAPF_DEVICE_KEY_RSA, 1024, 0},
        {"rsa:2048", CAPF_DEVICE_KEY_RSA, 2048, 0},
        {"rsa:3072", CAPF_DEVICE_KEY_RSA, 3072, 0},
        {"rsa:4096", CAPF_DEVICE_KEY_RSA, 4096, 0},
        {"ec:P-256", CAPF_DEVICE_KEY_EC, 0, CAPF_DEVICE_CURVE_P256},
        {"ec:P-384", CAPF_DEVICE_KEY_EC, 0, CAPF_DEVICE_CURVE_P384},
        {"ec:P-521", CAPF_DEVICE_KEY_EC, 0, CAPF_DEVICE_CURVE_P521},
        {"ec-preferred:P-256/rsa:2048", CAPF_DEVICE_KEY_EC_PREFERRED, 2048, CAPF_DEVICE_CURVE_P256},
        {"ec-preferred:P-384/rsa:4096", CAPF_DEVICE_KEY_EC_PREFERRED, 4096, CAPF_DEVICE_CURVE_P384},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        capf_device_key k;
        char text[CAPF_DEVICE_KEY_TEXT_MAX];
        assert_int_equal(capf_device_key_parse(good[i].text, &k), PT_OK);
        assert_int_equal(k.kind, good[i].kind);
        assert_int_equal(k.rsa_bits, good[i].bits);
        assert_int_equal(k.curve, good[i].curve);
        capf_device_key_format(&k, text);
        assert_string_equal(text, good[i].text); /* canonical text round-trips */
    }
    static const char *const bad[] = {
        "",
        "rsa",
        "rsa:512",
        "rsa:2047",
        "rsa:20480",
        "RSA:2048",
        "rsa:2048 ",
        "ec:P-224",
        "ec:secp256r1",
        "ec:p-256",
        "ec:",
        "ec-preferred",
        "ec-preferred:P-256",
        "ec-preferred:P-256/",
        "ec-preferred:P-256/rsa:512",
        "ec-preferred:/rsa:2048",
        "ec-preferred:P-256/ec:P-384",
        "ec-preferred:P-256/rsa:2048/x",
        "defaults",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        capf_device_key k;
        assert_int_equal(capf_device_key_parse(bad[i], &k), PT_ERR_USAGE);
        assert_int_equal(k.kind, CAPF_DEVICE_KEY_DEFAULT);
    }
}

static void test_status_format(void **state)
{
    (void)state;
    char out[CAPF_DEVICE_STATUS_TEXT_MAX];
    capf_device_status_format(CAPF_DEVICE_OP_NONE, CAPF_DEVICE_STATE_NONE, NULL, out);
    assert_string_equal(out, "none");
    capf_device_status_format(CAPF_DEVICE_OP_INSTALL, CAPF_DEVICE_STATE_PENDING, "x", out);
    assert_string_equal(out, "install pending");
    capf_device_status_format(CAPF_DEVICE_OP_DELETE, CAPF_DEVICE_STATE_SUCCESS, NULL, out);
    assert_string_equal(out, "delete success");
    capf_device_status_format(CAPF_DEVICE_OP_INSTALL, CAPF_DEVICE_STATE_FAILED, "expired", out);
    assert_string_equal(out, "install failed: expired");
    capf_device_status_format(CAPF_DEVICE_OP_TROUBLESHOOT, CAPF_DEVICE_STATE_FAILED, "", out);
    assert_string_equal(out, "troubleshoot failed");
    char longest[CAPF_DEVICE_REASON_MAX * 2];
    memset(longest, 'r', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    capf_device_status_format(CAPF_DEVICE_OP_TROUBLESHOOT, CAPF_DEVICE_STATE_FAILED, longest, out);
    assert_int_equal(strlen(out), strlen("troubleshoot failed: ") + CAPF_DEVICE_REASON_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_names),      cmocka_unit_test(test_device_name_acceptable),
        cmocka_unit_test(test_auth_string_check), cmocka_unit_test(test_auth_string_generate),
        cmocka_unit_test(test_description_check), cmocka_unit_test(test_operation_and_auth_names),
        cmocka_unit_test(test_key_specs),         cmocka_unit_test(test_status_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
