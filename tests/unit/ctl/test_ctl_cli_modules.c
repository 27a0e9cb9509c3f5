/*
 * The ctlclient command's own modules: CERT arguments (certarg), the -o
 * locations and their atomic writes (output), and the record list and option
 * parsers shared by create, update and itl build (ctlbuild).
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
#include <openssl/pem.h>

#include "certarg.h"
#include "ctlbuild.h"
#include "output.h"
#include "rmtree.h"
#include "tlv_testutil.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ctl-cli-modules.XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tt_cleanup();
    return pt_test_rmtree(tmpdir);
}

static void path_in_tmp(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* --- certarg -------------------------------------------------------------------- */

static void test_certarg_plain_path(void **state)
{
    (void)state;
    ctl_cert_arg a;
    assert_int_equal(ctl_cert_arg_parse("/etc/certs/ccm.pem", &a), PT_OK);
    assert_string_equal(a.path, "/etc/certs/ccm.pem");
    assert_null(a.tls_host);
    assert_null(a.dns_name);
    assert_false(a.has_ipv4);
    assert_false(a.has_sha256);
    ctl_cert_arg_free(&a);
    /* A comma that does not start an option belongs to the path. */
    assert_int_equal(ctl_cert_arg_parse("a,b.pem,host=x.example", &a), PT_OK);
    assert_string_equal(a.path, "a,b.pem");
    assert_string_equal(a.dns_name, "x.example");
    ctl_cert_arg_free(&a);
}

static void test_certarg_options(void **state)
{
    (void)state;
    ctl_cert_arg a;
    char text[200];
    snprintf(text, sizeof text, "c.der,ip=192.0.2.7,host=cucm.example.com,sha256=%s",
             "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:"
             "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF");
    assert_int_equal(ctl_cert_arg_parse(text, &a), PT_OK);
    assert_string_equal(a.path, "c.der");
    assert_string_equal(a.dns_name, "cucm.example.com");
    assert_true(a.has_ipv4);
    static const uint8_t ip[4] = {192, 0, 2, 7};
    assert_memory_equal(a.ipv4, ip, 4);
    assert_true(a.has_sha256);
    assert_int_equal(a.sha256[0], 0x00);
    assert_int_equal(a.sha256[10], 0xaa);
    assert_int_equal(a.sha256[31], 0xff);
    ctl_cert_arg_free(&a);
}

static void test_certarg_tls(void **state)
{
    (void)state;
    ctl_cert_arg a;
    assert_int_equal(ctl_cert_arg_parse("tls://cucm.example.com:443,host=cucm", &a), PT_OK);
    assert_null(a.path);
    assert_string_equal(a.tls_host, "cucm.example.com");
    assert_string_equal(a.tls_port, "443");
    assert_string_equal(a.dns_name, "cucm");
    ctl_cert_arg_free(&a);
    assert_int_equal(ctl_cert_arg_parse("tls://[::1]:8443", &a), PT_OK);
    assert_string_equal(a.tls_host, "::1");
    assert_string_equal(a.tls_port, "8443");
    ctl_cert_arg_free(&a);
}

static void test_certarg_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        ",host=x",
        "c.pem,ip=::1",
        "c.pem,ip=10.0.0",
        "c.pem,ip=1.2.3.4,ip=1.2.3.5",
        "c.pem,host=a,host=b",
        "c.pem,host=",
        "c.pem,host=with space",
        "c.pem,host=x,color=red",
        "c.pem,sha256=abcd",
        "c.pem,sha256=zz",
        "tls://host",
        "tls://:443",
        "tls://h:",
        "tls://h:0",
        "tls://h:65536",
        "tls://h:44x",
        "tls://[::1]443",
        "tls://[::1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ctl_cert_arg a;
        pt_err rc = ctl_cert_arg_parse(bad[i], &a);
        if (rc != PT_ERR_USAGE)
            fail_msg("'%s' was not refused (%d)", bad[i], rc);
        assert_null(a.path);
        assert_null(a.dns_name);
    }
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void test_certarg_load_fingerprint(void **state)
{
    (void)state;
    char path[128], text[256], hex[65];
    X509 *x = tt_cert(tt_ec_key("P-256"), "/CN=capf", 42), *got = NULL;
    path_in_tmp(path, sizeof path, "capf.pem");
    write_cert(path, x);
    uint8_t md[32];
    unsigned int n = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);

    ctl_cert_arg a;
    snprintf(text, sizeof text, "%s,sha256=%s", path, hex);
    assert_int_equal(ctl_cert_arg_parse(text, &a), PT_OK);
    assert_int_equal(ctl_cert_arg_load(&a, 0, &got), PT_OK);
    assert_int_equal(X509_cmp(got, x), 0);
    X509_free(got);
    ctl_cert_arg_free(&a);

    hex[0] = hex[0] == '0' ? '1' : '0';
    snprintf(text, sizeof text, "%s,sha256=%s", path, hex);
    assert_int_equal(ctl_cert_arg_parse(text, &a), PT_OK);
    assert_int_equal(ctl_cert_arg_load(&a, 0, &got), PT_ERR_VERIFY);
    assert_null(got);
    assert_non_null(strstr(pt_err_message(), "sha256="));
    ctl_cert_arg_free(&a);

    path_in_tmp(path, sizeof path, "missing.pem");
    assert_int_equal(ctl_cert_arg_parse(path, &a), PT_OK);
    assert_int_not_equal(ctl_cert_arg_load(&a, 0, &got), PT_OK);
    assert_null(got);
    ctl_cert_arg_free(&a);
    X509_free(x);
}

/* --- output --------------------------------------------------------------------- */

static void test_output_check(void **state)
{
    (void)state;
    const char *base = NULL;
    const char *same[] = {"/a/CTLFile.tlv", "/b/c/CTLFile.tlv", "CTLFile.tlv"};
    assert_int_equal(ctl_output_check(same, 3, &base), PT_OK);
    assert_string_equal(base, "CTLFile.tlv");
    assert_int_equal(ctl_output_check(same, 0, &base), PT_ERR_USAGE);
    assert_null(base);
    const char *differ[] = {"/a/CTLFile.tlv", "/b/ITLFile.tlv"};
    assert_int_equal(ctl_output_check(differ, 2, &base), PT_ERR_USAGE);
    assert_non_null(strstr(pt_err_message(), "different file names"));
    const char *twice[] = {"/a/CTLFile.tlv", "/a/CTLFile.tlv"};
    assert_int_equal(ctl_output_check(twice, 2, &base), PT_ERR_USAGE);
    const char *dir[] = {"/a/"};
    assert_int_equal(ctl_output_check(dir, 1, &base), PT_ERR_USAGE);
    const char *dots[] = {"/a/.."};
    assert_int_equal(ctl_output_check(dots, 1, &base), PT_ERR_USAGE);
}

static void test_output_write_partial(void **state)
{
    (void)state;
    char d1[128], d2[128], plain[128], p1[160], p2[160], p3[160];
    path_in_tmp(d1, sizeof d1, "loc1");
    path_in_tmp(d2, sizeof d2, "loc2");
    path_in_tmp(plain, sizeof plain, "plain");
    assert_int_equal(mkdir(d1, 0700), 0);
    assert_int_equal(mkdir(d2, 0700), 0);
    assert_true(tt_write_file(plain, (const uint8_t *)"x", 1));
    snprintf(p1, sizeof p1, "%s/ITLFile.tlv", d1);
    snprintf(p2, sizeof p2, "%s/ITLFile.tlv", plain);
    snprintf(p3, sizeof p3, "%s/ITLFile.tlv", d2);
    const char *paths[] = {p1, p2, p3};
    char report[2048] = "";
    FILE *r = fmemopen(report, sizeof report - 1, "w");
    assert_non_null(r);
    static const uint8_t data[] = "new file";
    assert_int_equal(ctl_output_write(paths, 3, data, sizeof data, r), PT_ERR_IO);
    fclose(r);
    assert_non_null(strstr(report, "wrote "));
    assert_non_null(strstr(report, "FAILED "));
    assert_non_null(strstr(pt_err_message(), "1 of 3 locations"));
    assert_int_equal(pt_test_count_entries(d1), 1);
    assert_int_equal(pt_test_count_entries(d2), 1);
    struct stat st;
    assert_int_equal(stat(p3, &st), 0);
    assert_int_equal((size_t)st.st_size, sizeof data);

    const char *only_bad[] = {p2};
    r = fmemopen(report, sizeof report - 1, "w");
    assert_int_equal(ctl_output_write(only_bad, 1, data, sizeof data, r), PT_ERR_IO);
    fclose(r);
    assert_non_null(strstr(pt_err_message(), "no location could be written"));
}

/* --- ctlbuild helpers ------------------------------------------------------------ */

static void test_records(void **state)
{
    (void)state;
    X509 *a = tt_cert(tt_rsa_key(1024), "/CN=a", 1), *b = tt_cert(tt_ec_key("P-256"), "/CN=b", 2);
    ctl_records r;
    ctl_records_init(&r);
    static const uint8_t ip[4] = {10, 0, 0, 1};
    assert_int_equal(ctl_records_add(&r, TLV_ROLE_SAST, a, NULL, false, NULL), PT_OK);
    assert_int_equal(ctl_records_add(&r, TLV_ROLE_CCM_TFTP, b, "cucm", true, ip), PT_OK);
    assert_int_equal(ctl_records_add(&r, TLV_ROLE_TFTP, b, NULL, false, NULL), PT_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.v[1].dns_name, "cucm");
    assert_memory_equal(r.v[1].ipv4, ip, 4);
    assert_int_equal(ctl_records_count_role(&r, TLV_ROLE_SAST), 1);
    assert_int_equal(ctl_records_find(&r, TLV_ROLE_CCM_TFTP, b), 1);
    assert_int_equal(ctl_records_find(&r, TLV_ROLE_CCM_TFTP, a), -1);
    assert_int_equal(ctl_records_find(&r, TLV_ROLE_TFTP, b), 2);
    ctl_records_remove(&r, 1);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[1].role, TLV_ROLE_TFTP);
    assert_null(r.v[1].dns_name);
    ctl_records_remove(&r, 5); /* out of range: nothing happens */
    assert_int_equal(r.n, 2);
    char rb[16];
    assert_string_equal(ctl_role_text(TLV_ROLE_CCM_TFTP, rb), "CCM+TFTP");
    assert_string_equal(ctl_role_text(9, rb), "role 9");
    ctl_records_free(&r);
    X509_free(a);
    X509_free(b);
}

static void test_option_parsers(void **state)
{
    (void)state;
    uint8_t d = 0;
    bool ns = true;
    uint32_t ts = 0;
    assert_true(ctl_digest_parse("sha1", &d));
    assert_int_equal(d, TLV_DIGEST_SHA1);
    assert_true(ctl_digest_parse("SHA512", &d));
    assert_int_equal(d, TLV_DIGEST_SHA512);
    assert_false(ctl_digest_parse("sha256", &d)); /* readers refuse code 2 */
    assert_false(ctl_digest_parse("md5", &d));
    assert_true(ctl_mode_parse("mixed", &ns));
    assert_false(ns);
    assert_true(ctl_mode_parse("nonsecure", &ns));
    assert_true(ns);
    assert_false(ctl_mode_parse("secure", &ns));
    assert_true(ctl_timestamp_parse("4294967295", &ts));
    assert_int_equal(ts, 4294967295u);
    assert_false(ctl_timestamp_parse("4294967296", &ts));
    assert_false(ctl_timestamp_parse("-1", &ts));
    assert_false(ctl_timestamp_parse("12x", &ts));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certarg_plain_path),
        cmocka_unit_test(test_certarg_options),
        cmocka_unit_test(test_certarg_tls),
        cmocka_unit_test(test_certarg_refusals),
        cmocka_unit_test(test_certarg_load_fingerprint),
        cmocka_unit_test(test_output_check),
        cmocka_unit_test(test_output_write_partial),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_option_parsers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
