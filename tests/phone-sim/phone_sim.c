#include "phone_sim.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "capf_auth.h"
#include "capf_msg.h"
#include "capfd_conn.h"
#include "cert.h"
#include "fileio.h"

/* ---- keys ------------------------------------------------------------------------ */

#define PSIM_KEY_SLOTS 8

struct psim_keys {
    pthread_mutex_t lock;
    char dir[512];
    struct {
        char name[16];
        EVP_PKEY *key;
    } slot[PSIM_KEY_SLOTS];
};

pt_err psim_keys_new(const char *dir, psim_keys **out)
{
    *out = OPENSSL_zalloc(sizeof **out);
    if (*out == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&(*out)->lock, NULL);
    if (dir != NULL)
        snprintf((*out)->dir, sizeof(*out)->dir, "%s", dir);
    return PT_OK;
}

void psim_keys_free(psim_keys *k)
{
    if (k == NULL)
        return;
    for (int i = 0; i < PSIM_KEY_SLOTS; i++)
        EVP_PKEY_free(k->slot[i].key);
    pthread_mutex_destroy(&k->lock);
    OPENSSL_free(k);
}

static EVP_PKEY *key_file_load(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (pt_file_read(path, 64 * 1024, &data, &len) != PT_OK) {
        pt_err_clear();
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_clear_free(data, len);
    ERR_clear_error();
    return k;
}

/* The key for a request (owned by k): pre-generated when there is one, else made now. */
static EVP_PKEY *keys_get(psim_keys *k, uint8_t type, unsigned bits, uint8_t curve)
{
    static const char *const curves[] = {"P-256", "P-384", "P-521"};
    char name[16];
    if (type == CAPF_KEY_RSA)
        snprintf(name, sizeof name, "rsa-%u", bits);
    else if (curve < 3)
        snprintf(name, sizeof name, "ec-%s", curves[curve]);
    else
        return NULL;
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&k->lock);
    int i = 0;
    for (; i < PSIM_KEY_SLOTS && k->slot[i].key != NULL; i++)
        if (strcmp(k->slot[i].name, name) == 0) {
            key = k->slot[i].key;
            break;
        }
    if (key == NULL && i < PSIM_KEY_SLOTS) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.pem", k->dir, name);
        key = k->dir[0] ? key_file_load(path) : NULL;
        if (key == NULL)
            key = type == CAPF_KEY_RSA ? EVP_RSA_gen(bits) : EVP_EC_gen(curves[curve]);
        if (key != NULL) {
            snprintf(k->slot[i].name, sizeof k->slot[i].name, "%s", name);
            k->slot[i].key = key;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return key;
}

int psim_misbehave_parse(const char *name)
{
    static const char *const names[] = {
        "none",      "garbage", "bad-header",  "oversized",     "malformed",   "truncated",
        "wrong-sid", "silent",  "vanish-auth", "vanish-keygen", "slow-keygen", "unexpected"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* ---- TLS --------------------------------------------------------------------------- */

pt_err psim_tls_ctx(const char *capf_cert, int max_version, SSL_CTX **out)
{
    *out = SSL_CTX_new(TLS_client_method());
    if (*out == NULL)
        return pt_fail_openssl(PT_ERR_OPENSSL, "SSL_CTX_new");
    SSL_CTX *ctx = *out;
    /* Known clients verify the server against the CAPF certificate, without a host name. */
    if (SSL_CTX_load_verify_locations(ctx, capf_cert, NULL) != 1) {
        SSL_CTX_free(ctx);
        *out = NULL;
        return pt_fail_openssl(PT_ERR_FORMAT, "CAPF certificate %s", capf_cert);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (max_version != 0)
        SSL_CTX_set_max_proto_version(ctx, max_version);
    return PT_OK;
}

/* Counts the TLS records that arrive with application data (type 23). */
static void record_counter(int write_p, int version, int content_type, const void *buf, size_t len,
                           SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    unsigned *n = arg;
    if (!write_p && content_type == SSL3_RT_HEADER && len >= 1 &&
        ((const uint8_t *)buf)[0] == SSL3_RT_APPLICATION_DATA)
        (*n)++;
}

static pt_err tcp_connect(const char *host, const char *port, int *fd)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    *fd = -1;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0)
        return pt_fail(PT_ERR_USAGE, "%s:%s: %s", host, port, gai_strerror(gai));
    pt_err rc = PT_OK;
    *fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        rc = pt_fail_errno("socket");
    else if (connect(*fd, ai->ai_addr, ai->ai_addrlen) != 0)
        rc = pt_fail_errno("cannot connect to %s:%s", host, port);
    int one = 1;
    /* Each message goes out at once (REQUEST_IN_PROGRESS is followed by the key). */
    if (rc == PT_OK)
        (void)setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(ai);
    if (rc != PT_OK && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

pt_err psim_handshake(SSL_CTX *ctx, const char *host, const char *port, int timeout_ms)
{
    int fd = -1;
    capfd_conn *c = NULL;
    pt_err rc = tcp_connect(host, port, &fd);
    if (rc == PT_OK)
        rc = capfd_conn_tls(ctx, fd, false, &c);
    if (rc == PT_OK)
        rc = capfd_conn_handshake(c, capfd_now_ms() + timeout_ms);
    capfd_conn_close(c);
    return rc;
}

/* ---- the session -------------------------------------------------------------------- */

typedef struct phone {
    const psim_opts *o;
    psim_result *r;
    capfd_conn *conn;
    uint32_t sid;
    int64_t deadline;
    unsigned records;
    unsigned key_failures_left;
} phone;

__attribute__((format(printf, 2, 3))) static pt_err phone_fail(phone *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->r->error, sizeof p->r->error, fmt, ap);
    va_end(ap);
    return pt_fail(PT_ERR_PROTOCOL, "%s", p->r->error);
}

static void dump(const phone *p, const char *dir, const uint8_t *b, size_t len)
{
    if (p->o->dump == NULL)
        return;
    flockfile(p->o->dump);
    if (p->o->dump_tag != NULL)
        fprintf(p->o->dump, "%s ", p->o->dump_tag);
    fprintf(p->o->dump, "%s", dir);
    for (size_t i = 0; i < len; i++)
        fprintf(p->o->dump, " %02X", b[i]);
    fputc('\n', p->o->dump);
    fflush(p->o->dump);
    funlockfile(p->o->dump);
}

static pt_err send_raw(phone *p, const uint8_t *b, size_t len)
{
    dump(p, "C->S", b, len);
    pt_err rc = capfd_conn_write(p->conn, b, len, p->deadline);
    if (rc != PT_OK)
        return phone_fail(p, "cannot send: %s", pt_err_message());
    return PT_OK;
}

static pt_err send_built(phone *p, pt_err rc, uint8_t *buf, size_t len)
{
    if (rc == PT_OK)
        rc = send_raw(p, buf, len);
    else
        rc = phone_fail(p, "cannot build a message: %s", pt_err_message());
    capf_msg_buf_free(buf, len);
    return rc;
}

static pt_err recv_msg(phone *p, bool first, capf_msg **m)
{
    unsigned before = p->records;
    capfd_read_fail why;
    pt_err rc = capfd_conn_msg_read(p->conn, !first, p->sid, p->deadline, m, &why);
    size_t raw_len = 0;
    const uint8_t *raw = capfd_conn_last_raw(p->conn, &raw_len);
    if (raw_len > 0)
        dump(p, "S->C", raw, raw_len);
    if (rc != PT_OK) {
        if (why == CAPFD_READ_CLOSED)
            return phone_fail(p, "the server closed the connection without END_SESSION");
        return phone_fail(p, "reading: %s", pt_err_message());
    }
    unsigned records = p->records - before;
    if (records > p->r->max_records)
        p->r->max_records = records;
    return PT_OK;
}

static pt_err auth_response(phone *p)
{
    const psim_opts *o = p->o;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (o->auth_cert == NULL) {
        pt_err rc = capf_msg_build_auth_response(p->sid, o->device, o->password, &buf, &len);
        if (rc == PT_OK && o->version != CAPF_VERSION && len > 15)
            buf[15] = o->version; /* VERSION follows REASON: 8 + 4 + 3 */
        return send_built(p, rc, buf, len);
    }
    uint8_t *der = NULL, *blob = NULL, *sig1 = NULL, *sig512 = NULL;
    uint8_t *sder = NULL, *sblob = NULL, *ssig1 = NULL, *ssig512 = NULL;
    size_t der_len = 0, blob_len = 0, sig1_len = 0, sig512_len = 0;
    size_t sder_len = 0, sblob_len = 0, ssig1_len = 0, ssig512_len = 0;
    pt_err rc = pt_cert_to_der(o->auth_cert, &der, &der_len);
    if (rc == PT_OK)
        rc = capf_auth_blob(o->device, der, der_len, &blob, &blob_len);
    if (rc == PT_OK)
        rc = capf_auth_sign(o->auth_key, CAPF_DIGEST_SHA1, blob, blob_len, &sig1, &sig1_len);
    if (rc == PT_OK)
        rc = capf_auth_sign(o->auth_key, CAPF_DIGEST_SHA512, blob, blob_len, &sig512, &sig512_len);
    if (rc == PT_OK && o->sudi_cert != NULL) {
        rc = pt_cert_to_der(o->sudi_cert, &sder, &sder_len);
        if (rc == PT_OK)
            rc = capf_sudi_blob(p->sid, sder, sder_len, &sblob, &sblob_len);
        if (rc == PT_OK)
            rc =
                capf_auth_sign(o->sudi_key, CAPF_DIGEST_SHA1, sblob, sblob_len, &ssig1, &ssig1_len);
        if (rc == PT_OK)
            rc = capf_auth_sign(o->sudi_key, CAPF_DIGEST_SHA512, sblob, sblob_len, &ssig512,
                                &ssig512_len);
    }
    capf_cert_auth a = {o->device, o->password, der,        der_len,    sig1,
                        sig1_len,  sig512,      sig512_len, sder,       sder_len,
                        ssig1,     ssig1_len,   ssig512,    ssig512_len};
    if (rc == PT_OK)
        rc = capf_msg_build_auth_response_cert(p->sid, &a, &buf, &len);
    rc = send_built(p, rc, buf, len);
    OPENSSL_free(der);
    OPENSSL_free(blob);
    OPENSSL_free(sig1);
    OPENSSL_free(sig512);
    OPENSSL_free(sder);
    OPENSSL_free(sblob);
    OPENSSL_free(ssig1);
    OPENSSL_free(ssig512);
    return rc;
}

/* Misbehaviour in place of AUTH_RESPONSE; PT_OK when the session should go on waiting. */
static pt_err misbehave_auth(phone *p, bool *done)
{
    uint8_t b[64];
    *done = true;
    switch (p->o->misbehave) {
    case PSIM_GARBAGE:
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)(0xA5 ^ (i * 37));
        return send_raw(p, b, sizeof b);
    case PSIM_BAD_HEADER: {
        const uint8_t m[] = {0x54, 0x02, 0, 0, 0, 0, 0, 0};
        memcpy(b, m, sizeof m);
        b[2] = (uint8_t)(p->sid >> 24), b[3] = (uint8_t)(p->sid >> 16);
        b[4] = (uint8_t)(p->sid >> 8), b[5] = (uint8_t)p->sid;
        return send_raw(p, b, sizeof m);
    }
    case PSIM_OVERSIZED:
    case PSIM_MALFORMED:
    case PSIM_TRUNCATED: {
        size_t n = 8;
        b[0] = 0x55, b[1] = CAPF_CMD_AUTH_RESPONSE;
        b[2] = (uint8_t)(p->sid >> 24), b[3] = (uint8_t)(p->sid >> 16);
        b[4] = (uint8_t)(p->sid >> 8), b[5] = (uint8_t)p->sid;
        if (p->o->misbehave == PSIM_OVERSIZED) {
            b[6] = 0xFF, b[7] = 0xFF;
        } else if (p->o->misbehave == PSIM_MALFORMED) {
            /* DEVICE_NAME says 16 bytes, 1 follows. */
            const uint8_t el[] = {0x0D, 0x00, 0x10, 0x53};
            b[6] = 0, b[7] = sizeof el;
            memcpy(b + 8, el, sizeof el);
            n += sizeof el;
        } else {
            b[6] = 0, b[7] = 37;
            memset(b + 8, 0x01, 10);
            n += 10;
        }
        return send_raw(p, b, n);
    }
    case PSIM_WRONG_SID: {
        uint32_t real = p->sid;
        p->sid = real + 1;
        pt_err rc = auth_response(p);
        p->sid = real;
        return rc;
    }
    case PSIM_SILENT:
        return PT_OK;
    case PSIM_VANISH_AUTH:
        capfd_conn_abort_fd(capfd_conn_fd(p->conn));
        *done = false;
        return phone_fail(p, "vanished after AUTH_REQUEST (as asked)");
    default:
        *done = false;
        return PT_OK;
    }
}

static pt_err on_keygen(phone *p, const capf_msg *m)
{
    const psim_opts *o = p->o;
    uint8_t type = CAPF_KEY_RSA, curve = 0;
    uint16_t bits = 0;
    p->r->keygen_requests++;
    if (o->misbehave == PSIM_VANISH_KEYGEN) {
        capfd_conn_abort_fd(capfd_conn_fd(p->conn));
        return phone_fail(p, "vanished after KEY_GENERATE_REQUEST (as asked)");
    }
    if (o->misbehave == PSIM_UNEXPECTED) {
        uint8_t *buf = NULL;
        size_t len = 0;
        pt_err brc = capf_msg_build_fetch_response(p->sid, 7, NULL, 0, &buf, &len);
        return send_built(p, brc, buf, len);
    }
    /* Clients should default to RSA when KEY_TYPE is absent (CAPF-U5). */
    (void)capf_msg_get_u8(m, CAPF_EL_KEY_TYPE, &type);
    (void)capf_msg_get_u16(m, CAPF_EL_KEY_SIZE, &bits);
    (void)capf_msg_get_u8(m, CAPF_EL_CURVE, &curve);
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err rc = PT_OK;
    for (unsigned i = 0; i < o->in_progress && rc == PT_OK; i++) {
        rc = capf_msg_build_request_in_progress(p->sid, &buf, &len);
        rc = send_built(p, rc, buf, len);
    }
    if (rc != PT_OK || o->misbehave == PSIM_SLOW_KEYGEN)
        return rc;
    bool cannot = (type == CAPF_KEY_EC && o->no_ec) || p->key_failures_left > 0;
    if (p->key_failures_left > 0 && !(type == CAPF_KEY_EC && o->no_ec))
        p->key_failures_left--;
    EVP_PKEY *key = cannot ? NULL : keys_get(o->keys, type, bits, curve);
    if (key == NULL) {
        rc = capf_msg_build_key_generate_response(p->sid, NULL, 0, 7, &buf, &len);
        return send_built(p, rc, buf, len);
    }
    uint8_t *spki = NULL;
    int spki_len = i2d_PUBKEY(key, &spki);
    if (spki_len <= 0)
        return phone_fail(p, "cannot encode the public key");
    EVP_PKEY_free(p->r->new_key);
    EVP_PKEY_up_ref(key);
    p->r->new_key = key;
    rc = capf_msg_build_key_generate_response(p->sid, spki, (size_t)spki_len, CAPF_NO_REASON, &buf,
                                              &len);
    OPENSSL_free(spki);
    return send_built(p, rc, buf, len);
}

static pt_err on_store(phone *p, const capf_msg *m)
{
    const uint8_t *der = NULL;
    size_t der_len = 0;
    X509 *x = NULL;
    uint8_t reason = CAPF_REASON_OK;
    if (capf_msg_get_certificate(m, &der, &der_len) != PT_OK ||
        pt_cert_parse(der, der_len, &x) != PT_OK || p->o->store_fail)
        reason = CAPF_REASON_INVALID_ELEMENT;
    if (reason == CAPF_REASON_OK) {
        X509_free(p->r->new_lsc);
        p->r->new_lsc = x;
    } else {
        X509_free(x);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err brc = capf_msg_build_store_certificate_response(p->sid, reason, &buf, &len);
    return send_built(p, brc, buf, len);
}

static pt_err on_fetch(phone *p)
{
    X509 *x = p->o->lsc != NULL ? p->o->lsc : p->o->mic;
    uint8_t *der = NULL, *buf = NULL;
    size_t der_len = 0, len = 0;
    pt_err rc = PT_OK;
    if (x == NULL) {
        rc = capf_msg_build_fetch_response(p->sid, 7, NULL, 0, &buf, &len);
        return send_built(p, rc, buf, len);
    }
    rc = pt_cert_to_der(x, &der, &der_len);
    if (rc == PT_OK)
        rc = capf_msg_build_fetch_response(p->sid, CAPF_REASON_OK, der, der_len, &buf, &len);
    OPENSSL_free(der);
    p->r->fetched = rc == PT_OK;
    return send_built(p, rc, buf, len);
}

static pt_err on_delete(phone *p)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint8_t reason = p->o->lsc != NULL ? CAPF_REASON_OK : CAPF_REASON_INVALID_ELEMENT;
    p->r->deleted = reason == CAPF_REASON_OK;
    pt_err brc = capf_msg_build_delete_response(p->sid, reason, &buf, &len);
    return send_built(p, brc, buf, len);
}

static pt_err run(phone *p)
{
    capf_msg *m = NULL;
    pt_err rc = capfd_conn_handshake(p->conn, p->deadline);
    if (rc != PT_OK)
        return phone_fail(p, "%s", pt_err_message());
    rc = recv_msg(p, true, &m);
    if (rc != PT_OK)
        return rc;
    p->sid = capf_msg_session_id(m);
    p->r->sid = p->sid;
    uint8_t cmd = capf_msg_command(m), version = 0;
    if (cmd == CAPF_CMD_RETRY_LATER) {
        p->r->retry_later = true;
        capf_msg_free(m);
        return PT_OK;
    }
    if (cmd != CAPF_CMD_AUTH_REQUEST || capf_msg_get_u8(m, CAPF_EL_VERSION, &version) != PT_OK ||
        version != CAPF_VERSION) {
        capf_msg_free(m);
        return phone_fail(p, "the first message is not AUTH_REQUEST with VERSION 3");
    }
    capf_msg_free(m);
    bool done = false;
    rc = misbehave_auth(p, &done);
    if (rc == PT_OK && !done)
        rc = auth_response(p);
    while (rc == PT_OK) {
        rc = recv_msg(p, false, &m);
        if (rc != PT_OK)
            break;
        switch (capf_msg_command(m)) {
        case CAPF_CMD_KEY_GENERATE_REQUEST:
            rc = on_keygen(p, m);
            break;
        case CAPF_CMD_STORE_CERTIFICATE_REQUEST:
            rc = on_store(p, m);
            break;
        case CAPF_CMD_FETCH_CERTIFICATE_REQUEST:
            rc = on_fetch(p);
            break;
        case CAPF_CMD_DELETE_CERTIFICATE_REQUEST:
            rc = on_delete(p);
            break;
        case CAPF_CMD_END_SESSION: {
            uint8_t reason = 0;
            if (capf_msg_get_u8(m, CAPF_EL_REASON, &reason) == PT_OK)
                p->r->end_reason = reason;
            else
                rc = phone_fail(p, "END_SESSION without REASON");
            capf_msg_free(m);
            return rc;
        }
        default:
            rc = phone_fail(p, "unexpected command %u (%s)", capf_msg_command(m),
                            capf_cmd_name(capf_msg_command(m)));
        }
        capf_msg_free(m);
        m = NULL;
    }
    return rc;
}

pt_err psim_session(SSL_CTX *ctx, const char *host, const char *port, const psim_opts *o,
                    psim_result *r)
{
    memset(r, 0, sizeof *r);
    r->end_reason = -1;
    phone p;
    memset(&p, 0, sizeof p);
    p.o = o;
    p.r = r;
    p.deadline = capfd_now_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 30000);
    p.key_failures_left = o->keygen_fail;
    int fd = -1;
    pt_err rc = tcp_connect(host, port, &fd);
    if (rc == PT_OK)
        rc = capfd_conn_tls(ctx, fd, false, &p.conn);
    if (rc != PT_OK) {
        snprintf(r->error, sizeof r->error, "%s", pt_err_message());
        return rc;
    }
    SSL_set_msg_callback(capfd_conn_ssl(p.conn), record_counter);
    SSL_set_msg_callback_arg(capfd_conn_ssl(p.conn), &p.records);
    rc = run(&p);
    capfd_conn_close(p.conn);
    ERR_clear_error();
    return rc;
}

void psim_result_free(psim_result *r)
{
    X509_free(r->new_lsc);
    EVP_PKEY_free(r->new_key);
    r->new_lsc = NULL;
    r->new_key = NULL;
}
