/*
 * Fuzz target for what capfd reads from a phone: the input is the whole byte
 * stream a phone sends in one session (session ID 1), played into a capfd
 * session over a socketpair; the session reads it message by message (header
 * first, then the body, then the flow's checks) and must end cleanly with an
 * outcome whatever the bytes are. The device SEP001122334455 has an install
 * scheduled before every input (null authentication, EC P-256 keys), and
 * LSCs are signed with a local key (hsmd has no place in a fuzzer).
 *
 * Seed corpus (corpus-capfd-session/): a complete install, an install that
 * stops after REQUEST_IN_PROGRESS, an unknown device, and a wrong session ID.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "capfd_conn.h"
#include "capfd_session.h"
#include "cert.h"
#include "der.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEVICE "SEP001122334455"
/* More than this would fill the socket before the session reads it. */
#define INPUT_MAX (64 * 1024)

static EVP_PKEY *ca_key;
static X509 *ca_cert;
static capfd_config cfg;
static capf_store *store;
static capfd_issuer *issuer;
static capfd_ctx ctx;

static pt_err local_issue(void *impl, const uint8_t *tbs, size_t tbs_len, X509 **cert)
{
    (void)impl;
    return pt_der_tbs_sign_local(tbs, tbs_len, ca_key, EVP_sha256(), cert);
}

static pt_err local_cert(void *impl, X509 **cert)
{
    (void)impl;
    X509_up_ref(ca_cert);
    *cert = ca_cert;
    return PT_OK;
}

static void local_free(void *impl)
{
    (void)impl;
}

static const capfd_issuer_ops local_ops = {local_issue, local_cert, local_free};

static char store_dir[64];

/* The store lives in a temporary directory for the life of the process. */
static void cleanup(void)
{
    static const char *const files[] = {"capf.db", "capf.db-wal", "capf.db-shm", "capf.db-journal"};
    char path[128];
    capf_store_close(store);
    store = NULL;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", store_dir, files[i]);
        unlink(path);
    }
    rmdir(store_dir);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz-capfd-session: %s: %s\n", what, pt_err_message());
    abort();
}

static void init(void)
{
    pt_log_init("fuzz-capfd-session", PT_LOG_ERROR); /* sessions' notes are noise here */
    ca_key = EVP_EC_gen("P-256");
    X509_NAME *name = NULL;
    pt_cert_profile prof = {true, -1, "critical,keyCertSign,digitalSignature", 3650};
    if (ca_key == NULL || pt_name_parse("CN=CAPF-FUZZ,O=Example,C=NZ", &name) != PT_OK ||
        pt_cert_self_signed(ca_key, name, &prof, &ca_cert) != PT_OK)
        die("CA");
    X509_NAME_free(name);
    char url[128];
    snprintf(store_dir, sizeof store_dir, "/tmp/pt-fuzz-capfd-XXXXXX");
    if (mkdtemp(store_dir) == NULL)
        die("mkdtemp");
    atexit(cleanup);
    snprintf(url, sizeof url, "sqlite:%s/capf.db", store_dir);
    if (capfd_config_defaults(&cfg) != PT_OK || capf_store_open(url, &store) != PT_OK ||
        capfd_issuer_new(&local_ops, NULL, &issuer) != PT_OK)
        die("setup");
    cfg.default_key = (capf_device_key){CAPF_DEVICE_KEY_EC, 2048, CAPF_DEVICE_CURVE_P256};
    cfg.io_timeout_ms = 200;
    cfg.keygen_timeout_ms = 200;
    cfg.session_timeout_ms = 2000;
    capf_store_actor who = {"fuzz", NULL, NULL, NULL};
    capf_store_update u = {.set_operation = true, .operation = CAPF_DEVICE_OP_INSTALL};
    if (capf_store_device_add(store, DEVICE, &u, &who) != PT_OK)
        die("device");
    ctx = (capfd_ctx){&cfg, store, issuer, ca_cert, sk_X509_new_null(), 1};
    sk_X509_push(ctx.trust, ca_cert);
}

typedef struct phone_end {
    int fd;
    const uint8_t *data;
    size_t size;
} phone_end;

/* The phone: send everything, say so, and read what comes back until the server closes. */
static void *phone_main(void *arg)
{
    phone_end *p = arg;
    size_t off = 0;
    while (off < p->size) {
        ssize_t n = send(p->fd, p->data + off, p->size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(p->fd, SHUT_WR);
    uint8_t buf[4096];
    while (recv(p->fd, buf, sizeof buf, 0) > 0)
        ;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    if (size > INPUT_MAX)
        return 0;
    capf_store_actor who = {"fuzz", NULL, NULL, NULL};
    capf_store_update u = {.set_operation = true, .operation = CAPF_DEVICE_OP_INSTALL};
    if (capf_store_device_set(store, DEVICE, &u, &who) != PT_OK)
        die("reset");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    capfd_conn *conn = NULL;
    if (capfd_conn_plain(sv[0], &conn) != PT_OK)
        die("conn");
    phone_end p = {sv[1], data, size};
    pthread_t th;
    if (pthread_create(&th, NULL, phone_main, &p) != 0)
        die("thread");
    capfd_session_result res;
    capfd_session_run(&ctx, conn, 1, "fuzz", &res);
    capfd_conn_close(conn);
    pthread_join(th, NULL);
    close(sv[1]);
    /* Every session ends with an outcome. */
    if (res.result == NULL || res.result[0] == '\0')
        abort();
    return 0;
}
