/*
 * capfd's TLS context and trust directories: a certificate chain and its key,
 * a key that does not belong to the certificate, versions; several PEM
 * certificates in a file, DER, and files that hold none.
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

#include <openssl/pem.h>

#include "ca_testutil.h"
#include "capfd_tls.h"
#include "rmtree.h"

static char dir[64];
static EVP_PKEY *ca_key, *tls_key, *other_key;
static X509 *ca, *tls;

static void path_of(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void write_pem_cert(const char *name, X509 *x, const char *mode)
{
    char p[128];
    path_of(name, p, sizeof p);
    FILE *f = fopen(p, mode);
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k)
{
    char p[128];
    path_of(name, p, sizeof p);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    chmod(p, 0600);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pt-capfd-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    ca_key = tu_key_rsa(2048);
    tls_key = tu_key_ec("P-256");
    other_key = tu_key_ec("P-256");
    ca = tu_cert_make(&(tu_cert_opts){
        .subject = "CN=CAPF-1,O=Example", .key = ca_key, .signer = ca_key, .ca = true});
    tls = tu_cert_make(&(tu_cert_opts){.subject = "CN=capfd.test,O=Example",
                                       .issuer = "CN=CAPF-1,O=Example",
                                       .key = tls_key,
                                       .signer = ca_key});
    write_pem_cert("chain.pem", tls, "w");
    write_pem_cert("chain.pem", ca, "a");
    write_key("tls.key", tls_key);
    write_key("other.key", other_key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_free(ca);
    X509_free(tls);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(tls_key);
    EVP_PKEY_free(other_key);
    return pt_test_rmtree(dir);
}

static void config(capfd_config *c, const char *key)
{
    char p[128];
    assert_int_equal(capfd_config_defaults(c), PT_OK);
    path_of("chain.pem", p, sizeof p);
    assert_int_equal(capfd_config_set(c, "tls", "certificate", p), PT_OK);
    path_of(key, p, sizeof p);
    assert_int_equal(capfd_config_set(c, "tls", "key", p), PT_OK);
}

static void test_context(void **state)
{
    (void)state;
    capfd_config c;
    capfd_tls *t = NULL;
    config(&c, "tls.key");
    assert_int_equal(capfd_tls_new(&c, &t), PT_OK);
    assert_int_equal(X509_cmp(capfd_tls_cert(t), tls), 0);
    assert_false(capfd_tls_key_on_token(t));
    SSL_CTX *ctx = capfd_tls_ctx(t);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
    assert_true((SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION) != 0);
    /* The chain file's second certificate goes out as the chain. */
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
    assert_int_equal(sk_X509_num(chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), ca), 0);
    capfd_tls_free(t);
    capfd_config_free(&c);
}

static void test_wrong_key(void **state)
{
    (void)state;
    capfd_config c;
    capfd_tls *t = NULL;
    config(&c, "other.key");
    assert_int_equal(capfd_tls_new(&c, &t), PT_ERR_VERIFY);
    assert_null(t);
    assert_non_null(strstr(pt_err_message(), "does not belong to certificate"));
    capfd_config_free(&c);
    config(&c, "missing.key");
    assert_int_equal(capfd_tls_new(&c, &t), PT_ERR_ERRNO);
    capfd_config_free(&c);
    config(&c, "chain.pem"); /* a certificate where the key should be */
    assert_int_equal(capfd_tls_new(&c, &t), PT_ERR_FORMAT);
    capfd_config_free(&c);
}

static void test_bad_ciphers(void **state)
{
    (void)state;
    capfd_config c;
    capfd_tls *t = NULL;
    config(&c, "tls.key");
    assert_int_equal(capfd_config_set(&c, "tls", "ciphers", "NO-SUCH-CIPHER"), PT_OK);
    assert_int_equal(capfd_tls_new(&c, &t), PT_ERR_USAGE);
    capfd_config_free(&c);
}

static void test_trust_dir(void **state)
{
    (void)state;
    char sub[128], p[160];
    path_of("trust", sub, sizeof sub);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_pem_cert("trust/two.pem", ca, "w");
    write_pem_cert("trust/two.pem", tls, "a");
    snprintf(p, sizeof p, "%s/one.der", sub);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    i2d_X509_fp(f, ca);
    fclose(f);
    snprintf(p, sizeof p, "%s/README", sub);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    STACK_OF(X509) *trust = sk_X509_new_null();
    int n = 0;
    assert_int_equal(capfd_trust_dir_load(sub, trust, &n), PT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(sk_X509_num(trust), 3);
    sk_X509_pop_free(trust, X509_free);
    trust = sk_X509_new_null();
    path_of("no-such-dir", p, sizeof p);
    assert_int_equal(capfd_trust_dir_load(p, trust, &n), PT_ERR_ERRNO);
    sk_X509_free(trust);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_bad_ciphers),
        cmocka_unit_test(test_trust_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
