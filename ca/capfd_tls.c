#include "capfd_tls.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cert.h"
#include "fileio.h"
#include "key.h"
#include "log.h"
#include "login.h"

/* Most certificates read from one trust directory. */
#define TRUST_DIR_MAX_FILES 1024

struct capfd_key_holder {
    token *tok;
    token_key *key;
};

struct capfd_tls {
    SSL_CTX *ctx;
    X509 *cert;
    capfd_key_holder *holder;
};

void capfd_tls_key_release(capfd_key_holder *h)
{
    if (h == NULL)
        return;
    token_key_free(h->key);
    token_close(h->tok);
    OPENSSL_free(h);
}

static pt_err key_from_token(const char *uri_text, const char *module, EVP_PKEY **key,
                             capfd_key_holder **holder)
{
    token_uri *u = NULL;
    token_pin_source pin;
    capfd_key_holder *h = OPENSSL_zalloc(sizeof *h);
    if (h == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc = token_uri_parse(uri_text, &u);
    if (rc == PT_OK && token_uri_pin_source(u) == NULL)
        rc = pt_fail(PT_ERR_USAGE, "[tls] key: a pkcs11: URI needs pin-source=file:PATH (capfd "
                                   "runs without a terminal)");
    if (rc == PT_OK)
        rc = token_pin_source_from_uri(token_uri_pin_source(u), &pin);
    token_login_opts lo = {&pin, NULL, false};
    if (rc == PT_OK)
        rc = token_open(uri_text, module, &h->tok);
    if (rc == PT_OK)
        rc = token_login(h->tok, &lo);
    if (rc == PT_OK)
        rc = token_key_find(h->tok, u, &h->key);
    token_uri_free(u);
    if (rc != PT_OK) {
        capfd_tls_key_release(h);
        return pt_err_context(rc, "TLS key on a token");
    }
    *key = token_key_pkey(h->key);
    EVP_PKEY_up_ref(*key);
    *holder = h;
    return PT_OK;
}

static pt_err key_from_file(const char *path, EVP_PKEY **key)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pt_fail_errno("TLS key %s", path);
    if ((st.st_mode & 0077) != 0)
        pt_log_warn("TLS key %s can be read by other users (mode %03o): chmod 600 it", path,
                    (unsigned)(st.st_mode & 0777));
    uint8_t *data = NULL;
    size_t len = 0;
    pt_err rc = pt_file_read(path, 64 * 1024, &data, &len);
    if (rc != PT_OK)
        return rc;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_clear_free(data, len);
    if (*key == NULL)
        return pt_fail_openssl(PT_ERR_FORMAT, "TLS key %s is not an unencrypted PEM private key",
                               path);
    return PT_OK;
}

pt_err capfd_tls_key_load(const char *spec, const char *module, EVP_PKEY **key,
                          capfd_key_holder **holder)
{
    *key = NULL;
    *holder = NULL;
    if (strncmp(spec, "pkcs11:", 7) == 0)
        return key_from_token(spec, module, key, holder);
    return key_from_file(spec, key);
}

void capfd_tls_free(capfd_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    X509_free(t->cert);
    capfd_tls_key_release(t->holder);
    OPENSSL_free(t);
}

SSL_CTX *capfd_tls_ctx(capfd_tls *t)
{
    return t->ctx;
}

X509 *capfd_tls_cert(capfd_tls *t)
{
    return t->cert;
}

bool capfd_tls_key_on_token(const capfd_tls *t)
{
    return t->holder != NULL;
}

static pt_err ctx_setup(const capfd_config *c, capfd_tls *t, EVP_PKEY *key)
{
    SSL_CTX *ctx = t->ctx;
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1)
        return pt_fail_openssl(PT_ERR_FORMAT, "[tls] certificate %s: not a PEM certificate chain",
                               c->tls_cert);
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (leaf == NULL || !X509_up_ref(leaf))
        return pt_fail_openssl(PT_ERR_OPENSSL, "[tls] certificate %s", c->tls_cert);
    t->cert = leaf;
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        return pt_fail_openssl(
            PT_ERR_VERIFY, "[tls] key %s does not belong to certificate %s",
            strncmp(c->tls_key, "pkcs11:", 7) == 0 ? "(on the token)" : c->tls_key, c->tls_cert);
    int max = c->tls_max_version;
    if (t->holder != NULL && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        /* TLS 1.3 needs RSA-PSS, which libp11 0.4.12 cannot do with a token's key. */
        if (max == 0 || max > TLS1_2_VERSION)
            max = TLS1_2_VERSION;
        if (SSL_CTX_set1_sigalgs_list(ctx, "RSA+SHA256:RSA+SHA384:RSA+SHA512") != 1)
            return pt_fail_openssl(PT_ERR_OPENSSL, "TLS signature algorithms");
        if (c->tls_min_version > TLS1_2_VERSION)
            return pt_fail(PT_ERR_USAGE, "[tls] min-version TLSv1.3 needs RSA-PSS, which an RSA "
                                         "key on a token cannot do here: use TLSv1.2");
    }
    if (SSL_CTX_set_min_proto_version(ctx, c->tls_min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max) != 1)
        return pt_fail_openssl(PT_ERR_USAGE, "[tls] min-version/max-version");
    if (SSL_CTX_set_cipher_list(ctx, c->tls_ciphers) != 1)
        return pt_fail_openssl(PT_ERR_USAGE, "[tls] ciphers '%s'", c->tls_ciphers);
    if (c->tls_suites != NULL && SSL_CTX_set_ciphersuites(ctx, c->tls_suites) != 1)
        return pt_fail_openssl(PT_ERR_USAGE, "[tls] ciphersuites '%s'", c->tls_suites);
    /* Phones are authenticated inside the protocol (§1.2): no client certificate. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    /* One session per connection, nothing to resume: no tickets, no cache. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return PT_OK;
}

pt_err capfd_tls_new(const capfd_config *c, capfd_tls **out)
{
    *out = NULL;
    capfd_tls *t = OPENSSL_zalloc(sizeof *t);
    if (t == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    EVP_PKEY *key = NULL;
    pt_err rc = capfd_tls_key_load(c->tls_key, c->tls_module, &key, &t->holder);
    if (rc == PT_OK) {
        t->ctx = SSL_CTX_new(TLS_server_method());
        rc = t->ctx ? ctx_setup(c, t, key) : pt_fail_openssl(PT_ERR_OPENSSL, "SSL_CTX_new");
    }
    EVP_PKEY_free(key);
    if (rc != PT_OK) {
        capfd_tls_free(t);
        return rc;
    }
    *out = t;
    return PT_OK;
}

/* ---- trust directories ----------------------------------------------------------- */

static int file_certs_load(const char *path, STACK_OF(X509) * trust)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int n = 0;
    if (pt_file_read(path, PT_CERT_FILE_MAX, &data, &len) != PT_OK)
        return -1;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    X509 *x = NULL;
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(trust, x)) {
            X509_free(x);
            break;
        }
        n++;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (n == 0) {
        const unsigned char *p = data;
        x = d2i_X509(NULL, &p, (long)len);
        if (x != NULL && p == data + len && sk_X509_push(trust, x))
            n = 1;
        else
            X509_free(x);
        ERR_clear_error();
    }
    OPENSSL_free(data);
    return n;
}

pt_err capfd_trust_dir_load(const char *dir, STACK_OF(X509) * trust, int *count)
{
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return pt_fail_errno("trust directory %s", dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (++files > TRUST_DIR_MAX_FILES) {
            pt_log_warn("trust directory %s: more than %d files, the rest are ignored", dir,
                        TRUST_DIR_MAX_FILES);
            break;
        }
        int n = file_certs_load(path, trust);
        if (n <= 0)
            pt_log_warn("trust directory %s: %s holds no certificate; ignored", dir, e->d_name);
        else
            *count += n;
    }
    closedir(d);
    return PT_OK;
}
