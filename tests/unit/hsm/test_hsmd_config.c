/*
 * Unit tests of hsmd's configuration parser: defaults, every setting, and
 * hostile files (unknown or repeated settings and sections, indented and
 * over-long lines, NUL bytes, bad modes, users, groups, URIs and numbers),
 * each refused with its line number.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "fileio.h"
#include "hsmd_config.h"

#define HSMD_OK_HEAD                                                                               \
    "[hsmd]\n"                                                                                     \
    "module = /usr/lib/softhsm/libsofthsm2.so\n"                                                   \
    "token = pkcs11:token=HSM?pin-source=file:/etc/pin\n"
#define KEY_CAPF                                                                                   \
    "[key CAPF]\n"                                                                                 \
    "operation = issue\n"                                                                          \
    "allow-users = 0\n"

static hsmd_config *parse_ok(const char *text)
{
    hsmd_config *cfg = NULL;
    pt_err rc = hsmd_config_parse(text, strlen(text), "t.conf", &cfg);
    if (rc != PT_OK)
        fail_msg("expected success, got: %s", pt_err_message());
    return cfg;
}

/* The text must be refused, with a message containing want. */
static void parse_fails(const char *text, size_t len, const char *want)
{
    hsmd_config *cfg = NULL;
    pt_err rc = hsmd_config_parse(text, len, "t.conf", &cfg);
    assert_int_not_equal(rc, PT_OK);
    assert_null(cfg);
    if (strstr(pt_err_message(), want) == NULL)
        fail_msg("message '%s' does not contain '%s'", pt_err_message(), want);
}

static void fails(const char *text, const char *want)
{
    parse_fails(text, strlen(text), want);
}

static void test_defaults(void **state)
{
    (void)state;
    hsmd_config *cfg = parse_ok(HSMD_OK_HEAD "\n" KEY_CAPF "\n[key ITLRecovery]\n"
                                             "operation = sign-tlv\nallow-groups = 0\n");
    assert_string_equal(cfg->module, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(cfg->socket_path, HSMD_DEFAULT_SOCKET);
    assert_string_equal(cfg->audit_log, HSMD_DEFAULT_AUDIT_LOG);
    assert_int_equal(cfg->socket_mode, 0660);
    assert_false(cfg->has_socket_group);
    assert_int_equal(cfg->sessions, 4);
    assert_int_equal(cfg->workers, 8);
    assert_int_equal(cfg->queue, 64);
    assert_int_equal(cfg->max_clients, 128);
    assert_int_equal(cfg->frame_timeout_ms, 10000);
    assert_int_equal(cfg->idle_timeout_ms, 60000);
    assert_int_equal(cfg->recovery_interval_ms, 1000);
    assert_int_equal(cfg->log_level, -1);
    assert_int_equal(cfg->n_keys, 2);
    const hsmd_key_config *capf = hsmd_config_key(cfg, "CAPF");
    assert_non_null(capf);
    assert_string_equal(capf->label, "CAPF");
    assert_int_equal(capf->op, HSMD_OP_ISSUE);
    assert_null(capf->certificate);
    assert_int_equal(capf->max_validity_days, 1827);
    assert_int_equal(capf->digests, HSMD_DIGEST_SHA256 | HSMD_DIGEST_SHA384 | HSMD_DIGEST_SHA512);
    assert_int_equal(capf->users.n, 1);
    assert_int_equal(capf->users.ids[0], 0);
    assert_int_equal(capf->line, 5);
    const hsmd_key_config *itlr = hsmd_config_key(cfg, "ITLRecovery");
    assert_non_null(itlr);
    assert_int_equal(itlr->op, HSMD_OP_SIGN_TLV);
    assert_int_equal(itlr->digests, HSMD_DIGEST_SHA1 | HSMD_DIGEST_SHA512);
    assert_int_equal(itlr->groups.n, 1);
    assert_null(hsmd_config_key(cfg, "capf"));
    hsmd_config_free(cfg);
}

static void test_every_setting(void **state)
{
    (void)state;
    hsmd_config *cfg = parse_ok("; a comment\n"
                                "# another\n"
                                "[hsmd] ; the daemon\n"
                                "module = /opt/hsm/lib.so\n"
                                "token = pkcs11:token=X;serial=1?pin-source=file:/p\n"
                                "socket = /tmp/h.sock\n"
                                "socket-mode = 600\n"
                                "socket-group = 0\n"
                                "audit-log = /var/log/a.log\n"
                                "sessions = 64\n"
                                "workers = 2\n"
                                "queue = 1\n"
                                "max-clients = 3\n"
                                "frame-timeout-ms = 100\n"
                                "idle-timeout-ms = 1000\n"
                                "recovery-interval-ms = 250\n"
                                "log-level = debug\n"
                                "status-users = root, 42 ,43\n"
                                "status-groups = 0 7\n"
                                "\n"
                                "[key A-1]\n"
                                "label = CAPF key\n"
                                "operation = issue\n"
                                "certificate = /etc/capf.pem\n"
                                "allow-users = 1000,1000\n"
                                "allow-groups = 0\n"
                                "max-validity-days = 30 ; a month\n"
                                "digests = sha384,sha512\n");
    assert_string_equal(cfg->socket_path, "/tmp/h.sock");
    assert_int_equal(cfg->socket_mode, 0600);
    assert_true(cfg->has_socket_group);
    assert_int_equal(cfg->socket_group, 0);
    assert_string_equal(cfg->audit_log, "/var/log/a.log");
    assert_int_equal(cfg->sessions, 64);
    assert_int_equal(cfg->workers, 2);
    assert_int_equal(cfg->queue, 1);
    assert_int_equal(cfg->max_clients, 3);
    assert_int_equal(cfg->frame_timeout_ms, 100);
    assert_int_equal(cfg->idle_timeout_ms, 1000);
    assert_int_equal(cfg->recovery_interval_ms, 250);
    assert_int_equal(cfg->log_level, 3);
    assert_int_equal(cfg->status_users.n, 3);
    assert_int_equal(cfg->status_users.ids[0], 0);
    assert_int_equal(cfg->status_users.ids[2], 43);
    assert_int_equal(cfg->status_groups.n, 2);
    const hsmd_key_config *k = hsmd_config_key(cfg, "A-1");
    assert_non_null(k);
    assert_string_equal(k->label, "CAPF key");
    assert_string_equal(k->certificate, "/etc/capf.pem");
    assert_int_equal(k->users.n, 1); /* the repeated uid is kept once */
    assert_int_equal(k->max_validity_days, 30);
    assert_int_equal(k->digests, HSMD_DIGEST_SHA384 | HSMD_DIGEST_SHA512);
    hsmd_config_free(cfg);
}

static void test_line_endings_and_bom(void **state)
{
    (void)state;
    hsmd_config *cfg = parse_ok("\xEF\xBB\xBF[hsmd]\r\n"
                                "module = /m.so\r\n"
                                "token = pkcs11:token=HSM?pin-source=file:/p\r\n"
                                "[key CAPF]\r\n"
                                "operation = issue\r\n"
                                "allow-users = 0"); /* no final newline */
    assert_string_equal(cfg->module, "/m.so");
    assert_int_equal(cfg->n_keys, 1);
    hsmd_config_free(cfg);
}

static void test_unknown_names(void **state)
{
    (void)state;
    fails(HSMD_OK_HEAD KEY_CAPF "[keys]\nx = 1\n", "t.conf:7: unknown section [keys]");
    fails(HSMD_OK_HEAD KEY_CAPF "[bogus]\n", "t.conf:7: unknown section [bogus]");
    fails(HSMD_OK_HEAD "sockets = /x\n" KEY_CAPF, "t.conf:4: unknown setting 'sockets' in [hsmd]");
    fails(HSMD_OK_HEAD KEY_CAPF "max-validity = 3\n",
          "t.conf:7: unknown setting 'max-validity' in [key CAPF]");
    fails(HSMD_OK_HEAD "Module = /x\n" KEY_CAPF, "t.conf:4: unknown setting 'Module'");
    fails("module = /x\n" HSMD_OK_HEAD KEY_CAPF, "t.conf:1: 'module' is outside any section");
    fails(HSMD_OK_HEAD KEY_CAPF "[key]\n", "t.conf:7: unknown section [key]");
    fails(HSMD_OK_HEAD KEY_CAPF "[key a b]\n", "t.conf:7: [key a b]: a key name is printable");
    fails(HSMD_OK_HEAD KEY_CAPF
          "[key "
          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA]\n",
          "t.conf:7: [key NAME]: NAME is longer than 64");
    fails(HSMD_OK_HEAD KEY_CAPF "[hsmd] extra\n", "t.conf:7: text after a section header");
}

static void test_repeats(void **state)
{
    (void)state;
    fails(HSMD_OK_HEAD "module = /y\n" KEY_CAPF,
          "t.conf:4: 'module' is given twice in [hsmd] (first on line 2)");
    fails(HSMD_OK_HEAD KEY_CAPF "operation = sign-tlv\n",
          "t.conf:7: 'operation' is given twice in [key CAPF] (first on line 5)");
    fails(HSMD_OK_HEAD KEY_CAPF "[hsmd]\n", "t.conf:7: [hsmd] appears twice (first on line 1)");
    fails(HSMD_OK_HEAD KEY_CAPF KEY_CAPF, "t.conf:7: [key CAPF] appears twice (first on line 4)");
    fails(HSMD_OK_HEAD KEY_CAPF
          "[key Other]\nlabel = CAPF\noperation = sign-tlv\nallow-users = 0\n",
          "t.conf:7: [key Other] uses the token key 'CAPF' that [key CAPF] (line 4) uses too");
}

static void test_missing(void **state)
{
    (void)state;
    fails("", "t.conf: no [hsmd] section");
    fails(KEY_CAPF, "no [hsmd] section");
    fails("[hsmd]\ntoken = pkcs11:token=HSM?pin-source=file:/p\n" KEY_CAPF,
          "t.conf:1: [hsmd] needs 'module = PATH'");
    fails("[hsmd]\nmodule = /m.so\n" KEY_CAPF, "t.conf:1: [hsmd] needs 'token = ");
    fails(HSMD_OK_HEAD, "no [key NAME] section");
    fails(HSMD_OK_HEAD "[key CAPF]\nallow-users = 0\n", "t.conf:4: [key CAPF] needs 'operation");
    fails(HSMD_OK_HEAD "[key CAPF]\noperation = issue\n",
          "t.conf:4: [key CAPF] lets nobody use it");
    fails(HSMD_OK_HEAD "[key CAPF]\n", "t.conf:4: [key CAPF] needs 'operation");
}

static void test_values(void **state)
{
    (void)state;
    fails(HSMD_OK_HEAD "socket =\n" KEY_CAPF, "t.conf:4: 'socket' has an empty value");
    fails("[hsmd]\nmodule = libsofthsm2.so\n", "t.conf:2: module must be an absolute path");
    fails(HSMD_OK_HEAD "audit-log = audit.log\n" KEY_CAPF,
          "t.conf:4: audit-log must be an absolute");
    fails(HSMD_OK_HEAD
          "socket = /"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n" KEY_CAPF,
          "t.conf:4: socket path is longer than 107 bytes");
    fails(HSMD_OK_HEAD "sessions = 0\n" KEY_CAPF,
          "t.conf:4: sessions takes a whole number from 1 to 64");
    fails(HSMD_OK_HEAD "sessions = 65\n" KEY_CAPF, "from 1 to 64, not '65'");
    fails(HSMD_OK_HEAD "workers = 4x\n" KEY_CAPF, "t.conf:4: workers takes a whole number");
    fails(HSMD_OK_HEAD "queue = -1\n" KEY_CAPF, "t.conf:4: queue takes");
    fails(HSMD_OK_HEAD "max-clients = 99999\n" KEY_CAPF, "t.conf:4: max-clients takes");
    fails(HSMD_OK_HEAD "frame-timeout-ms = 10\n" KEY_CAPF, "t.conf:4: frame-timeout-ms takes");
    fails(HSMD_OK_HEAD "log-level = loud\n" KEY_CAPF, "t.conf:4: log-level is error, warn");
    fails(HSMD_OK_HEAD KEY_CAPF "operation2 = x\n", "unknown setting 'operation2'");
    fails(HSMD_OK_HEAD "[key CAPF]\noperation = sign\nallow-users = 0\n",
          "t.conf:5: operation is issue or sign-tlv, not 'sign'");
    fails(HSMD_OK_HEAD KEY_CAPF "max-validity-days = 0\n", "t.conf:7: max-validity-days takes");
    fails(HSMD_OK_HEAD KEY_CAPF "certificate = capf.pem\n",
          "t.conf:7: certificate must be an absolute");
}

static void test_modes(void **state)
{
    (void)state;
    fails(HSMD_OK_HEAD "socket-mode = 999\n" KEY_CAPF, "t.conf:4: socket-mode takes an octal mode");
    fails(HSMD_OK_HEAD "socket-mode = rw\n" KEY_CAPF,
          "socket-mode takes an octal mode like 0660, not 'rw'");
    fails(HSMD_OK_HEAD "socket-mode = 01777\n" KEY_CAPF, "socket-mode takes an octal mode");
    fails(HSMD_OK_HEAD "socket-mode = 1660\n" KEY_CAPF, "socket-mode takes an octal mode");
    fails(HSMD_OK_HEAD "socket-mode = 66\n" KEY_CAPF, "socket-mode takes an octal mode");
    fails(HSMD_OK_HEAD "socket-mode = 0400\n" KEY_CAPF,
          "socket-mode 0400 does not let hsmd's own user read and write");
    fails(HSMD_OK_HEAD "socket-mode = 0666\n" KEY_CAPF, "socket-mode 0666 lets every local user");
    fails(HSMD_OK_HEAD "socket-mode = 0662\n" KEY_CAPF, "lets every local user");
    hsmd_config *cfg = parse_ok(HSMD_OK_HEAD "socket-mode = 0640\n" KEY_CAPF);
    assert_int_equal(cfg->socket_mode, 0640);
    hsmd_config_free(cfg);
}

static void test_users_and_groups(void **state)
{
    (void)state;
    fails(HSMD_OK_HEAD "[key CAPF]\noperation = issue\nallow-users = root, no-such-user-hsmd\n",
          "t.conf:6: allow-users: no user 'no-such-user-hsmd' on this system");
    fails(HSMD_OK_HEAD "[key CAPF]\noperation = issue\nallow-groups = no-such-group-hsmd\n",
          "t.conf:6: allow-groups: no group 'no-such-group-hsmd'");
    fails(HSMD_OK_HEAD "[key CAPF]\noperation = issue\nallow-users = , ,\n",
          "t.conf:6: allow-users lists nobody");
    fails(HSMD_OK_HEAD "[key CAPF]\noperation = issue\nallow-users = 99999999999\n",
          "user id 99999999999 is out of range");
    fails(HSMD_OK_HEAD "socket-group = no-such-group-hsmd\n" KEY_CAPF,
          "t.conf:4: socket-group: no group 'no-such-group-hsmd'");
    fails(HSMD_OK_HEAD "status-users = no-such-user-hsmd\n" KEY_CAPF, "t.conf:4: status-users:");

    hsmd_config *cfg = parse_ok(HSMD_OK_HEAD "[key CAPF]\noperation = issue\n"
                                             "allow-users = root\nallow-groups = 5,6\n");
    const hsmd_key_config *k = hsmd_config_key(cfg, "CAPF");
    gid_t none[1] = {0};
    gid_t sup[2] = {9, 6};
    assert_true(hsmd_ids_allow(&k->users, &k->groups, 0, 100, none, 0));    /* the uid */
    assert_true(hsmd_ids_allow(&k->users, &k->groups, 1000, 5, none, 0));   /* primary group */
    assert_true(hsmd_ids_allow(&k->users, &k->groups, 1000, 100, sup, 2));  /* supplementary */
    assert_false(hsmd_ids_allow(&k->users, &k->groups, 1000, 100, sup, 1)); /* 9 only */
    assert_false(hsmd_ids_allow(&k->users, &k->groups, 65534, 65534, none, 0));
    hsmd_config_free(cfg);
}

static void test_tokens(void **state)
{
    (void)state;
    fails("[hsmd]\nmodule = /m.so\ntoken = pkcs11:token=HSM\n",
          "t.conf:3: token: the URI needs ?pin-source=file:PATH");
    fails("[hsmd]\nmodule = /m.so\ntoken = pkcs11:token=HSM?pin-source=file:/p&module-path=/x.so\n",
          "t.conf:3: token: give the module with 'module ='");
    fails("[hsmd]\nmodule = /m.so\ntoken = https://example.com/\n", "t.conf:3: token:");
    fails("[hsmd]\nmodule = /m.so\ntoken = pkcs11:token=HSM?pin-value=1234\n", "t.conf:3: token:");
}

static void test_digests(void **state)
{
    (void)state;
    fails(HSMD_OK_HEAD KEY_CAPF "digests = sha1 sha256\n",
          "t.conf:7: digests: issue keys take sha256, sha384 and sha512, not sha1");
    fails(HSMD_OK_HEAD "[key ITLR]\noperation = sign-tlv\nallow-users = 0\ndigests = sha256\n",
          "t.conf:7: digests: sign-tlv keys take sha1 and sha512, not sha256");
    fails(HSMD_OK_HEAD KEY_CAPF "digests = md5\n", "t.conf:7: digests: unknown digest 'md5'");
    fails(HSMD_OK_HEAD "[key ITLR]\noperation = sign-tlv\nallow-users = 0\nmax-validity-days = 5\n",
          "t.conf:7: max-validity-days applies to issue keys only");
}

static void test_hostile_lines(void **state)
{
    (void)state;
    /* inih would take an indented line as the continuation of the value above. */
    fails(HSMD_OK_HEAD "  socket = /x\n" KEY_CAPF, "t.conf:4: line starts with a blank");
    fails(HSMD_OK_HEAD "socket = /x\n\tmore\n" KEY_CAPF, "t.conf:5: line starts with a blank");
    fails(HSMD_OK_HEAD " [key CAPF]\n", "t.conf:4: line starts with a blank");
    fails(HSMD_OK_HEAD "just words\n" KEY_CAPF, "t.conf:4: expected 'name = value'");
    fails(HSMD_OK_HEAD "[key CAPF\n", "t.conf:4: expected 'name = value'");

    char as[241], long_line[400];
    memset(as, 'a', sizeof as - 1);
    as[sizeof as - 1] = '\0';
    snprintf(long_line, sizeof long_line, "socket = /%s\n", as);
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s", HSMD_OK_HEAD, long_line, KEY_CAPF);
    fails(text, "t.conf:4: line is longer than 198 characters");

    static const char with_nul[] = HSMD_OK_HEAD "socket = /x\0y\n" KEY_CAPF;
    parse_fails(with_nul, sizeof with_nul - 1, "t.conf:4: line holds a NUL byte");
    /* Blank lines of spaces only are fine. */
    hsmd_config *cfg = parse_ok(HSMD_OK_HEAD "   \n\t\n" KEY_CAPF);
    hsmd_config_free(cfg);

    size_t big = HSMD_CONFIG_MAX_BYTES + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, '\n', big);
    hsmd_config *none = NULL;
    assert_int_equal(hsmd_config_parse(huge, big, "t.conf", &none), PT_ERR_LIMIT);
    free(huge);
}

static void test_load_file(void **state)
{
    (void)state;
    hsmd_config *cfg = NULL;
    assert_int_not_equal(hsmd_config_load("/nonexistent/hsmd.conf", &cfg), PT_OK);
    assert_non_null(strstr(pt_err_message(), "/nonexistent/hsmd.conf"));
    char path[] = "/tmp/hsmd-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = HSMD_OK_HEAD KEY_CAPF "oops\n";
    assert_int_equal(pt_write_all(fd, text, strlen(text)), PT_OK);
    close(fd);
    assert_int_equal(hsmd_config_load(path, &cfg), PT_ERR_USAGE);
    char want[64];
    snprintf(want, sizeof want, "%s:7:", path);
    assert_non_null(strstr(pt_err_message(), want));
    unlink(path);
}

/* The example shipped with hsmd parses, once its user and group names exist. */
static void test_example(void **state)
{
    (void)state;
    const char *src = getenv("PT_SOURCE_ROOT");
    if (src == NULL)
        skip();
    char path[512];
    snprintf(path, sizeof path, "%s/hsm/hsmd.conf.example", src);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(pt_file_read(path, HSMD_CONFIG_MAX_BYTES, &data, &len), PT_OK);
    /* Names of the example that a test machine may not have become uid/gid 0. */
    char *text = OPENSSL_zalloc(len + 1);
    assert_non_null(text);
    memcpy(text, data, len);
    static const char *names[] = {"capfd", "phonetrust-admin", "phonetrust"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        for (char *p = strstr(text, names[i]); p != NULL; p = strstr(p + n, names[i])) {
            if (p > text && p[-1] == ' ' && (p[n] == '\n' || p[n] == '\0')) {
                memset(p, ' ', n);
                p[0] = '0';
            }
        }
    }
    hsmd_config *cfg = parse_ok(text);
    assert_int_equal(cfg->n_keys, 2);
    assert_int_equal(hsmd_config_key(cfg, "CAPF")->op, HSMD_OP_ISSUE);
    assert_int_equal(hsmd_config_key(cfg, "ITLRecovery")->op, HSMD_OP_SIGN_TLV);
    hsmd_config_free(cfg);
    OPENSSL_free(text);
    OPENSSL_free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_setting),
        cmocka_unit_test(test_line_endings_and_bom),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_users_and_groups),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_hostile_lines),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
