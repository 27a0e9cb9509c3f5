/*
 * The token layer on real SoftHSM2 tokens: key generation attributes, signing
 * through libp11's EVP_PKEY and through the session pool from many threads,
 * every signature verified by OpenSSL with the public key, and the private
 * key refusing to be read.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "key.h"
#include "keygen.h"
#include "login.h"
#include "signer.h"
#include "test_store.h"

static pt_test_store store;

static int setup(void **state)
{
    (void)state;
    if (!pt_test_store_init(&store))
        return -1;
    return pt_test_store_add_token(&store, "HSM") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pt_test_store_cleanup(&store);
    return 0;
}

static bool verify(EVP_PKEY *pub, const EVP_MD *md, const uint8_t *data, size_t len,
                   const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(c, NULL, md, NULL, pub) == 1 &&
              EVP_DigestVerify(c, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* Generate a key, check its attributes, sign with libp11's EVP_PKEY for each digest. */
static void check_generated_key(const char *spec_text, const char *label)
{
    token *t = pt_test_store_login(&store, "HSM");
    assert_non_null(t);
    token_keygen_spec spec;
    uint8_t id[8];
    assert_int_equal(token_keygen_spec_parse(spec_text, &spec), PT_OK);
    assert_int_equal(token_random_id(id, sizeof id), PT_OK);
    assert_int_equal(token_keypair_generate(t, &spec, label, id, sizeof id), PT_OK);

    token_key_attrs a;
    assert_int_equal(token_key_attrs_read(t, label, &a), PT_OK);
    assert_true(a.sensitive);
    assert_false(a.extractable);
    assert_true(a.always_sensitive);
    assert_true(a.never_extractable);
    assert_true(a.on_token);
    assert_true(a.is_private);
    assert_true(a.can_sign);
    assert_false(a.secret_readable);

    token_key *k = NULL;
    assert_int_equal(token_key_find_by_label(t, label, id, sizeof id, &k), PT_OK);
    assert_null(token_key_cert(k)); /* no certificate stored yet */
    const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256(), EVP_sha512()};
    const uint8_t msg[] = "the bytes a CTL signature covers";
    for (size_t i = 0; i < 3; i++) {
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        assert_int_equal(token_key_sign(k, mds[i], msg, sizeof msg, &sig, &sig_len), PT_OK);
        assert_true(verify(token_key_pkey(k), mds[i], msg, sizeof msg, sig, sig_len));
        sig[sig_len / 2] ^= 1;
        assert_false(verify(token_key_pkey(k), mds[i], msg, sizeof msg, sig, sig_len));
        OPENSSL_free(sig);
    }
    token_key_free(k);
    token_close(t);
}

static void test_rsa_keys(void **state)
{
    (void)state;
    check_generated_key("rsa:2048", "rsa2048");
    check_generated_key("rsa:3072", "rsa3072");
}

static void test_ec_keys(void **state)
{
    (void)state;
    check_generated_key("ec:P-256", "p256");
    check_generated_key("ec:P-384", "p384");
    check_generated_key("ec:P-521", "p521");
}

static void test_duplicate_labels_are_ambiguous(void **state)
{
    (void)state;
    token *t = pt_test_store_login(&store, "HSM");
    token_keygen_spec spec;
    uint8_t id1[2] = {1, 1}, id2[2] = {2, 2};
    token_keygen_spec_parse("ec:P-256", &spec);
    assert_int_equal(token_keypair_generate(t, &spec, "twice", id1, 2), PT_OK);
    assert_int_equal(token_keypair_generate(t, &spec, "twice", id2, 2), PT_OK);
    token_key *k = NULL;
    assert_int_equal(token_key_find_by_label(t, "twice", NULL, 0, &k), PT_ERR_AMBIGUOUS);
    assert_int_equal(token_key_find_by_label(t, "twice", id2, 2, &k), PT_OK);
    token_key_free(k);
    assert_int_equal(token_key_find_by_label(t, "absent", NULL, 0, &k), PT_ERR_NOT_FOUND);
    assert_non_null(strstr(pt_err_message(), "'twice'"));
    unsigned removed = 0;
    assert_int_equal(token_objects_destroy(t, "twice", &removed), PT_OK);
    assert_int_equal(removed, 4); /* two private and two public keys */
    token_close(t);
}

struct sign_job {
    token_signer *signer;
    EVP_PKEY *pub;
    int ok;
};

static void *sign_many(void *arg)
{
    struct sign_job *job = arg;
    for (int i = 0; i < 20; i++) {
        uint8_t msg[32];
        memset(msg, i, sizeof msg);
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        if (token_signer_sign(job->signer, EVP_sha256(), msg, sizeof msg, 5000, &sig, &sig_len) ==
                PT_OK &&
            verify(job->pub, EVP_sha256(), msg, sizeof msg, sig, sig_len))
            job->ok++;
        OPENSSL_free(sig);
    }
    return NULL;
}

static void check_signer_pool(const char *spec_text, const char *label, int bits)
{
    token *t = pt_test_store_login(&store, "HSM");
    token_keygen_spec spec;
    uint8_t id[4] = {9, 9, 9, 9};
    token_keygen_spec_parse(spec_text, &spec);
    assert_int_equal(token_keypair_generate(t, &spec, label, id, sizeof id), PT_OK);
    token_key *k = NULL;
    assert_int_equal(token_key_find_by_label(t, label, NULL, 0, &k), PT_OK);

    assert_non_null(k);
    token_signer *s = NULL;
    assert_int_equal(token_signer_open(t, label, 3, &s), PT_OK);
    assert_int_equal(token_signer_key_bits(s), bits);
    enum { THREADS = 6 };
    pthread_t th[THREADS];
    struct sign_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct sign_job){s, token_key_pkey(k), 0};
        assert_int_equal(pthread_create(&th[i], NULL, sign_many, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].ok, 20);
    }
    token_signer_close(s);
    assert_int_equal(token_signer_open(t, "nope", 1, &s), PT_ERR_NOT_FOUND);
    token_key_free(k);
    token_close(t);
}

static void test_signer_pool_rsa(void **state)
{
    (void)state;
    check_signer_pool("rsa:2048", "pool-rsa", 2048);
}

static void test_signer_pool_ec(void **state)
{
    (void)state;
    check_signer_pool("ec:P-384", "pool-ec", 384);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_keys),
        cmocka_unit_test(test_ec_keys),
        cmocka_unit_test(test_duplicate_labels_are_ambiguous),
        cmocka_unit_test(test_signer_pool_rsa),
        cmocka_unit_test(test_signer_pool_ec),
    };
    const char *softhsm = getenv("PT_SOFTHSM_MODULE");
    if (softhsm == NULL || access(softhsm, R_OK) != 0)
        return 77;
    return cmocka_run_group_tests(tests, setup, teardown);
}
