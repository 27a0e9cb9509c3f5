/*
 * fake-hsmd: a stand-in for hsmd in capfd's tests, speaking the hsmd wire
 * protocol (hsm/PROTOCOL.md) with hsmd_proto.h on a Unix socket and signing
 * with a local PEM key, or with a key on a PKCS#11 token through the same
 * session pool hsmd uses (token_signer). It answers CERT and ISSUE for one
 * key label; it has none of hsmd's policy or audit log. Never for production.
 *
 * Usage: fake-hsmd SOCKET LABEL CA-CERT CA-KEY
 *   CA-KEY is a PEM file, or pkcs11:token=...;object=...?pin-source=file:...
 *   (the module is $PT_SOFTHSM_MODULE).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cert.h"
#include "der.h"
#include "fileio.h"
#include "hsmd_proto.h"
#include "key.h"
#include "login.h"
#include "signer.h"

static X509 *ca_cert;
static EVP_PKEY *ca_key;
static token_signer *ca_signer;
static const char *key_label;

static pt_err sign(const uint8_t *tbs, size_t len, X509 **x)
{
    if (ca_signer == NULL)
        return pt_der_tbs_sign_local(tbs, len, ca_key, EVP_sha256(), x);
    uint8_t *sig = NULL, *der = NULL;
    size_t sig_len = 0, der_len = 0;
    pt_err rc = token_signer_sign(ca_signer, EVP_sha256(), tbs, len, 5000, &sig, &sig_len);
    if (rc == PT_OK)
        rc = pt_der_cert_assemble(tbs, len, sig, sig_len, &der, &der_len);
    if (rc == PT_OK)
        rc = pt_cert_parse(der, der_len, x);
    OPENSSL_free(sig);
    OPENSSL_free(der);
    return rc;
}

/* A signer over the key a pkcs11: URI names. */
static pt_err signer_open(const char *uri_text)
{
    token_uri *u = NULL;
    token *t = NULL;
    token_pin_source pin;
    pt_err rc = token_uri_parse(uri_text, &u);
    if (rc == PT_OK)
        rc = token_pin_source_from_uri(token_uri_pin_source(u), &pin);
    token_login_opts lo = {&pin, NULL, false};
    if (rc == PT_OK)
        rc = token_open(uri_text, getenv("PT_SOFTHSM_MODULE"), &t);
    if (rc == PT_OK)
        rc = token_login(t, &lo);
    if (rc == PT_OK)
        rc = token_signer_open(t, token_uri_object_label(u), 8, &ca_signer);
    token_uri_free(u);
    return rc; /* the token stays open for the life of the process */
}

static void answer(int fd, const hsmd_request *req)
{
    hsmd_response resp;
    memset(&resp, 0, sizeof resp);
    uint8_t *der = NULL, *body = NULL;
    size_t der_len = 0, body_len = 0;
    X509 *x = NULL;
    if (strcmp(req->label, key_label) != 0) {
        hsmd_response_set_error(&resp, req->id, HSMD_ERR_UNKNOWN_KEY, "unknown key");
    } else if (req->type == HSMD_MSG_CERT) {
        if (pt_cert_to_der(ca_cert, &der, &der_len) == PT_OK)
            resp = (hsmd_response){
                .type = HSMD_MSG_OK, .id = req->id, .payload = der, .payload_len = der_len};
        else
            hsmd_response_set_error(&resp, req->id, HSMD_ERR_INTERNAL, "encoding");
    } else if (req->type == HSMD_MSG_ISSUE) {
        if (sign(req->data, req->data_len, &x) == PT_OK &&
            pt_cert_to_der(x, &der, &der_len) == PT_OK)
            resp = (hsmd_response){
                .type = HSMD_MSG_OK, .id = req->id, .payload = der, .payload_len = der_len};
        else
            hsmd_response_set_error(&resp, req->id, HSMD_ERR_REFUSED_BY_POLICY, pt_err_message());
    } else {
        hsmd_response_set_error(&resp, req->id, HSMD_ERR_NOT_ALLOWED, "not here");
    }
    if (hsmd_response_encode(&resp, &body, &body_len) == PT_OK)
        (void)hsmd_frame_write(fd, hsmd_deadline_after(5000), body, body_len);
    OPENSSL_free(body);
    OPENSSL_free(der);
    X509_free(x);
}

static void *serve(void *arg)
{
    int fd = *(int *)arg;
    free(arg);
    for (;;) {
        uint8_t *body = NULL;
        size_t len = 0;
        hsmd_request req;
        if (hsmd_frame_read(fd, HSMD_NO_DEADLINE, &body, &len) != PT_OK)
            break;
        if (hsmd_request_parse(body, len, &req) == PT_OK)
            answer(fd, &req);
        OPENSSL_free(body);
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: fake-hsmd SOCKET LABEL CA-CERT CA-KEY\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    key_label = argv[2];
    if (strncmp(argv[4], "pkcs11:", 7) == 0) {
        if (signer_open(argv[4]) != PT_OK) {
            fprintf(stderr, "fake-hsmd: %s\n", pt_err_message());
            return 1;
        }
    } else {
        FILE *f = fopen(argv[4], "r");
        ca_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f != NULL)
            fclose(f);
    }
    if (pt_cert_load_file(argv[3], &ca_cert) != PT_OK || (ca_key == NULL && ca_signer == NULL)) {
        fprintf(stderr, "fake-hsmd: cannot load the CA certificate or key\n");
        return 1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(argv[1]);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 64) != 0) {
        perror("fake-hsmd: listen");
        return 1;
    }
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_t th;
        int *arg = malloc(sizeof *arg);
        if (arg != NULL)
            *arg = fd;
        if (arg != NULL && pthread_create(&th, NULL, serve, arg) == 0) {
            pthread_detach(th);
        } else {
            free(arg);
            close(fd);
        }
    }
}
