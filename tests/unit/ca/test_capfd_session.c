/*
 * capfd sessions over a socketpair (no TLS): the server side runs on a thread,
 * the test plays the phone with hand-made messages. Issuance goes through a
 * local-key issuer (this test's stand-in for hsmd) that can also fail, sign
 * with the wrong key or alter what it signs, to show that capfd checks what
 * comes back before it records or sends anything.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "ca_testutil.h"
#include "capf_msg.h"
#include "capfd_conn.h"
#include "capfd_session.h"
#include "cert.h"
#include "der.h"
#include "lsc.h"
#include "rmtree.h"

#define DEV "SEP001122334455"
#define SID 0x01020304u

typedef enum issuer_mode {
    ISSUE_OK = 0,
    ISSUE_DOWN,      /* hsmd not there */
    ISSUE_WRONG_KEY, /* signed by a key that is not the issuing certificate's */
    ISSUE_ALTERED,   /* the subject changed after the TBS was built */
} issuer_mode;

typedef struct local_issuer {
    X509 *cert;
    EVP_PKEY *key;
    EVP_PKEY *other;
    issuer_mode mode;
    int calls;
} local_issuer;

static pt_err local_issue(void *impl, const uint8_t *tbs, size_t tbs_len, X509 **cert)
{
    local_issuer *li = impl;
    li->calls++;
    if (li->mode == ISSUE_DOWN)
        return pt_fail(PT_ERR_IO, "hsmd socket /nonexistent does not exist");
    EVP_PKEY *k = li->mode == ISSUE_WRONG_KEY ? li->other : li->key;
    pt_err rc = pt_der_tbs_sign_local(tbs, tbs_len, k, EVP_sha256(), cert);
    if (rc == PT_OK && li->mode == ISSUE_ALTERED) {
        X509_NAME *n = tu_name("CN=SEP999999999999,O=Example");
        X509_set_subject_name(*cert, n);
        X509_NAME_free(n);
        X509_sign(*cert, li->key, EVP_sha256());
    }
    return rc;
}

static pt_err local_cert(void *impl, X509 **cert)
{
    local_issuer *li = impl;
    X509_up_ref(li->cert);
    *cert = li->cert;
    return PT_OK;
}

static void local_free(void *impl)
{
    (void)impl;
}

static const capfd_issuer_ops local_ops = {local_issue, local_cert, local_free};

typedef struct fixture {
    char dir[64];
    EVP_PKEY *root_key, *sub_key, *other_key, *phone_rsa, *phone_ec;
    X509 *root, *sub;
    local_issuer li;
    capfd_issuer *issuer;
    capfd_config cfg;
    capf_store *store;
    capfd_ctx ctx;
} fixture;

static fixture fx;

static int setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/pt-capfd-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    fx.root_key = tu_key_rsa(2048);
    fx.sub_key = tu_key_rsa(2048);
    fx.other_key = tu_key_rsa(2048);
    fx.phone_rsa = tu_key_rsa(2048);
    fx.phone_ec = tu_key_ec("P-256");
    fx.root = tu_cert_make(&(tu_cert_opts){
        .subject = "CN=Root,O=Example", .key = fx.root_key, .signer = fx.root_key, .ca = true});
    /* A subordinate issuing CA: the LSC's issuer is its subject, not its issuer (CAPF-U18). */
    fx.sub = tu_cert_make(
        &(tu_cert_opts){.subject = "CN=CAPF-SUB,O=Example,OU=VoIP,L=Wellington,ST=WGN,C=NZ",
                        .issuer = "CN=Root,O=Example",
                        .key = fx.sub_key,
                        .signer = fx.root_key,
                        .ca = true});
    fx.li = (local_issuer){fx.sub, fx.sub_key, fx.other_key, ISSUE_OK, 0};
    if (capfd_issuer_new(&local_ops, &fx.li, &fx.issuer) != PT_OK)
        return -1;
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/capf.db", fx.dir);
    if (capfd_config_defaults(&fx.cfg) != PT_OK || capf_store_open(url, &fx.store) != PT_OK)
        return -1;
    fx.cfg.io_timeout_ms = 5000;
    fx.cfg.keygen_timeout_ms = 5000;
    fx.ctx.cfg = &fx.cfg;
    fx.ctx.store = fx.store;
    fx.ctx.issuer = fx.issuer;
    fx.ctx.issuer_cert = fx.sub;
    fx.ctx.trust = sk_X509_new_null();
    sk_X509_push(fx.ctx.trust, fx.sub);
    fx.ctx.n_lsc_trust = 1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sk_X509_free(fx.ctx.trust);
    capf_store_close(fx.store);
    capfd_config_free(&fx.cfg);
    capfd_issuer_free(fx.issuer);
    X509_free(fx.root);
    X509_free(fx.sub);
    EVP_PKEY *keys[] = {fx.root_key, fx.sub_key, fx.other_key, fx.phone_rsa, fx.phone_ec};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EVP_PKEY_free(keys[i]);
    return pt_test_rmtree(fx.dir);
}

/* ---- the server on a thread, the phone here -------------------------------------------------- */

typedef struct server_run {
    pthread_t th;
    capfd_conn *conn;
    capfd_session_result res;
} server_run;

static void *server_main(void *arg)
{
    server_run *s = arg;
    capfd_session_run(&fx.ctx, s->conn, SID, "192.0.2.1:5000", &s->res);
    capfd_conn_close(s->conn);
    return NULL;
}

/* Start a session; *phone is the phone's end. */
static void session_start(server_run *s, capfd_conn **phone)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(capfd_conn_plain(sv[0], &s->conn), PT_OK);
    assert_int_equal(capfd_conn_plain(sv[1], phone), PT_OK);
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
}

static void session_join(server_run *s, capfd_conn *phone)
{
    capfd_conn_close(phone);
    pthread_join(s->th, NULL);
}

static capf_msg *recv_msg(capfd_conn *phone)
{
    capf_msg *m = NULL;
    capfd_read_fail why;
    assert_int_equal(capfd_conn_msg_read(phone, true, SID, capfd_now_ms() + 10000, &m, &why),
                     PT_OK);
    return m;
}

static void send_raw(capfd_conn *phone, const void *b, size_t len)
{
    assert_int_equal(capfd_conn_write(phone, b, len, capfd_now_ms() + 5000), PT_OK);
}

/* Send what a builder made: SEND(phone, capf_msg_build_...(SID, ..., &buf, &len)). */
#define SEND(phone, call)                                                                          \
    do {                                                                                           \
        uint8_t *buf = NULL;                                                                       \
        size_t len = 0;                                                                            \
        assert_int_equal((call), PT_OK);                                                           \
        send_raw((phone), buf, len);                                                               \
        capf_msg_buf_free(buf, len);                                                               \
    } while (0)

static void expect_cmd(capfd_conn *phone, uint8_t cmd)
{
    capf_msg *m = recv_msg(phone);
    assert_int_equal(capf_msg_command(m), cmd);
    capf_msg_free(m);
}

static void expect_end(capfd_conn *phone, uint8_t reason)
{
    capf_msg *m = recv_msg(phone);
    uint8_t r = 0xff;
    assert_int_equal(capf_msg_command(m), CAPF_CMD_END_SESSION);
    assert_int_equal(capf_msg_get_u8(m, CAPF_EL_REASON, &r), PT_OK);
    assert_int_equal(r, reason);
    capf_msg_free(m);
}

static void auth(capfd_conn *phone, const char *device)
{
    expect_cmd(phone, CAPF_CMD_AUTH_REQUEST);
    SEND(phone, capf_msg_build_auth_response(SID, device, "", &buf, &len));
}

static void send_key(capfd_conn *phone, EVP_PKEY *key)
{
    uint8_t *spki = NULL, *buf = NULL;
    size_t spki_len = 0, len = 0;
    spki = tu_spki_der(key, &spki_len);
    assert_int_equal(
        capf_msg_build_key_generate_response(SID, spki, spki_len, CAPF_NO_REASON, &buf, &len),
        PT_OK);
    send_raw(phone, buf, len);
    capf_msg_buf_free(buf, len);
    OPENSSL_free(spki);
}

static void device_add(const char *name, capf_device_op op)
{
    capf_store_update u = {.set_operation = true, .operation = op};
    capf_store_actor who = {"test", "tester", NULL, NULL};
    assert_int_equal(capf_store_device_add(fx.store, name, &u, &who), PT_OK);
}

static void device_get(const char *name, capf_store_device *d)
{
    assert_int_equal(capf_store_device_get(fx.store, name, d), PT_OK);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_install_subordinate_ca(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    device_add("SEP0000000000A1", CAPF_DEVICE_OP_INSTALL);
    fx.li.mode = ISSUE_OK;
    session_start(&s, &phone);
    auth(phone, "SEP0000000000A1");
    expect_cmd(phone, CAPF_CMD_KEY_GENERATE_REQUEST);
    /* No REQUEST_IN_PROGRESS at all, as a softphone does (CAPF-U6). */
    send_key(phone, fx.phone_rsa);
    capf_msg *m = recv_msg(phone);
    assert_int_equal(capf_msg_command(m), CAPF_CMD_STORE_CERTIFICATE_REQUEST);
    const uint8_t *der = NULL;
    size_t der_len = 0;
    X509 *lsc = NULL;
    assert_int_equal(capf_msg_get_certificate(m, &der, &der_len), PT_OK);
    assert_int_equal(pt_cert_parse(der, der_len, &lsc), PT_OK);
    capf_msg_free(m);
    SEND(phone, capf_msg_build_store_certificate_response(SID, 1, &buf, &len));
    expect_end(phone, CAPF_REASON_OK);
    session_join(&s, phone);
    assert_string_equal(s.res.result, "success");

    /* Issuer = the subordinate's subject; subject = CN, then its O, OU, L, ST, C. */
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(lsc), X509_get_subject_name(fx.sub)), 0);
    X509_NAME *want = tu_name("CN=SEP0000000000A1,O=Example,OU=VoIP,L=Wellington,ST=WGN,C=NZ");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(lsc), want), 0);
    X509_NAME_free(want);
    assert_int_equal(X509_verify(lsc, fx.sub_key), 1);
    char why[128];
    assert_int_equal(lsc_profile_check(lsc, fx.sub, "SEP0000000000A1", why, sizeof why), PT_OK);
    /* The chain root -> sub -> LSC verifies with OpenSSL's own verifier. */
    X509_STORE *xs = X509_STORE_new();
    X509_STORE_CTX *xc = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE_add_cert(xs, fx.root);
    sk_X509_push(chain, fx.sub);
    X509_STORE_CTX_init(xc, xs, lsc, chain);
    assert_int_equal(X509_verify_cert(xc), 1);
    X509_STORE_CTX_free(xc);
    X509_STORE_free(xs);
    sk_X509_free(chain);

    capf_store_device d;
    device_get("SEP0000000000A1", &d);
    assert_true(d.has_lsc);
    pt_cert_info ci;
    assert_int_equal(pt_cert_info_get(lsc, &ci), PT_OK);
    assert_string_equal(d.lsc.serial, ci.serial);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_SUCCESS);
    pt_cert_info_free(&ci);
    capf_store_device_free(&d);
    X509_free(lsc);
}

static void test_install_many_in_progress(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    device_add("SEP0000000000A2", CAPF_DEVICE_OP_INSTALL);
    session_start(&s, &phone);
    auth(phone, "SEP0000000000A2");
    expect_cmd(phone, CAPF_CMD_KEY_GENERATE_REQUEST);
    for (int i = 0; i < 5; i++)
        SEND(phone, capf_msg_build_request_in_progress(SID, &buf, &len));
    send_key(phone, fx.phone_rsa);
    expect_cmd(phone, CAPF_CMD_STORE_CERTIFICATE_REQUEST);
    SEND(phone, capf_msg_build_store_certificate_response(SID, 1, &buf, &len));
    expect_end(phone, CAPF_REASON_OK);
    session_join(&s, phone);
    assert_string_equal(s.res.result, "success");
}

static void test_in_progress_flood(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    device_add("SEP0000000000A3", CAPF_DEVICE_OP_INSTALL);
    session_start(&s, &phone);
    auth(phone, "SEP0000000000A3");
    expect_cmd(phone, CAPF_CMD_KEY_GENERATE_REQUEST);
    for (int i = 0; i < 65; i++)
        SEND(phone, capf_msg_build_request_in_progress(SID, &buf, &len));
    expect_end(phone, CAPF_REASON_INVALID_ELEMENT);
    session_join(&s, phone);
    assert_non_null(strstr(s.res.reason, "more than 64 REQUEST_IN_PROGRESS"));
}

static void test_key_mismatch(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    device_add("SEP0000000000A4", CAPF_DEVICE_OP_INSTALL);
    fx.li.calls = 0;
    session_start(&s, &phone);
    auth(phone, "SEP0000000000A4");
    expect_cmd(phone, CAPF_CMD_KEY_GENERATE_REQUEST);
    send_key(phone, fx.phone_ec); /* RSA 2048 was asked for */
    expect_end(phone, CAPF_REASON_INVALID_ELEMENT);
    session_join(&s, phone);
    assert_non_null(strstr(s.res.reason, "not the one asked for"));
    assert_int_equal(fx.li.calls, 0);
    capf_store_device d;
    device_get("SEP0000000000A4", &d);
    assert_false(d.has_lsc);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_FAILED);
    capf_store_device_free(&d);
}

/* The issuer misbehaves: nothing is recorded or sent, the phone gets END_SESSION 7. */
static void issuer_failure(const char *device, issuer_mode mode, const char *reason)
{
    server_run s;
    capfd_conn *phone = NULL;
    device_add(device, CAPF_DEVICE_OP_INSTALL);
    fx.li.mode = mode;
    session_start(&s, &phone);
    auth(phone, device);
    expect_cmd(phone, CAPF_CMD_KEY_GENERATE_REQUEST);
    send_key(phone, fx.phone_rsa);
    expect_end(phone, CAPF_REASON_INVALID_ELEMENT);
    session_join(&s, phone);
    fx.li.mode = ISSUE_OK;
    assert_string_equal(s.res.result, "failed");
    assert_non_null(strstr(s.res.reason, reason));
    capf_store_device d;
    device_get(device, &d);
    assert_false(d.has_lsc);
    assert_int_equal(d.operation, CAPF_DEVICE_OP_INSTALL); /* still to do */
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_FAILED);
    assert_non_null(strstr(d.status_reason, reason));
    capf_store_device_free(&d);
    capf_store_cert *certs = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_certs_list(fx.store, device, &certs, &n), PT_OK);
    assert_int_equal(n, 0);
    capf_store_certs_free(certs, n);
}

static void test_issuer_down(void **state)
{
    (void)state;
    issuer_failure("SEP0000000000B1", ISSUE_DOWN, "issuing the LSC failed: hsmd socket");
}

static void test_issuer_wrong_key(void **state)
{
    (void)state;
    issuer_failure("SEP0000000000B2", ISSUE_WRONG_KEY,
                   "does not verify with the issuing certificate's key");
}

static void test_issuer_altered(void **state)
{
    (void)state;
    issuer_failure("SEP0000000000B3", ISSUE_ALTERED, "does not match the profile");
}

static void test_wrong_session_id(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    session_start(&s, &phone);
    expect_cmd(phone, CAPF_CMD_AUTH_REQUEST);
    SEND(phone, capf_msg_build_auth_response(SID + 1, DEV, "", &buf, &len));
    expect_end(phone, CAPF_REASON_INVALID_ELEMENT); /* carrying the session's own ID */
    session_join(&s, phone);
    assert_non_null(strstr(s.res.reason, "wrong session ID"));
    assert_int_equal(s.res.end_reason, 7);
}

static void test_oversized_refused_from_header(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    /* The server must not wait for 32 KB that will never come. */
    fx.cfg.io_timeout_ms = 60000;
    session_start(&s, &phone);
    expect_cmd(phone, CAPF_CMD_AUTH_REQUEST);
    const uint8_t hdr[] = {0x55, 0x02, 0x01, 0x02, 0x03, 0x04, 0x7F, 0xF9};
    send_raw(phone, hdr, sizeof hdr);
    expect_end(phone, CAPF_REASON_INVALID_ELEMENT);
    session_join(&s, phone);
    fx.cfg.io_timeout_ms = 5000;
    assert_non_null(strstr(s.res.reason, "oversized message"));
}

static void test_unknown_tags_tolerated(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    device_add("SEP0000000000C1", CAPF_DEVICE_OP_NONE);
    session_start(&s, &phone);
    expect_cmd(phone, CAPF_CMD_AUTH_REQUEST);
    /* AUTH_RESPONSE{REASON, VERSION, tag 0x30 (unknown), DEVICE_NAME}: no PASSWORD either. */
    const char *name = "SEP0000000000C1";
    uint8_t m[64] = {0x55, 0x02, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01,
                     0x07, 0x00, 0x01, 0x03, 0x30, 0x00, 0x02, 0xAB, 0xCD, 0x0D, 0x00, 0x10};
    memcpy(m + 24, name, 16);
    m[7] = 24 + 16 - 8;
    send_raw(phone, m, 24 + 16);
    expect_end(phone, CAPF_REASON_NO_ACTION);
    session_join(&s, phone);
    assert_string_equal(s.res.result, "none");
}

static void test_session_timeout(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    fx.cfg.session_timeout_ms = 300; /* the whole session, whatever io-timeout says */
    fx.cfg.io_timeout_ms = 60000;
    session_start(&s, &phone);
    expect_cmd(phone, CAPF_CMD_AUTH_REQUEST);
    expect_end(phone, CAPF_REASON_INVALID_ELEMENT);
    session_join(&s, phone);
    fx.cfg.session_timeout_ms = CAPFD_DEFAULT_SESSION_MS;
    fx.cfg.io_timeout_ms = 5000;
    assert_non_null(strstr(s.res.reason, "timed out waiting for AUTH_RESPONSE"));
}

static void test_keygen_timeout(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    device_add("SEP0000000000D1", CAPF_DEVICE_OP_INSTALL);
    fx.cfg.keygen_timeout_ms = 300;
    session_start(&s, &phone);
    auth(phone, "SEP0000000000D1");
    expect_cmd(phone, CAPF_CMD_KEY_GENERATE_REQUEST);
    SEND(phone, capf_msg_build_request_in_progress(SID, &buf, &len));
    expect_end(phone, CAPF_REASON_INVALID_ELEMENT);
    session_join(&s, phone);
    fx.cfg.keygen_timeout_ms = 5000;
    assert_non_null(strstr(s.res.reason, "timed out waiting for KEY_GENERATE_RESPONSE"));
    capf_store_device d;
    device_get("SEP0000000000D1", &d);
    assert_int_equal(d.status_state, CAPF_DEVICE_STATE_FAILED);
    capf_store_device_free(&d);
}

static void test_bad_device_name(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    session_start(&s, &phone);
    expect_cmd(phone, CAPF_CMD_AUTH_REQUEST);
    /* A name with a control character can be no device's: unknown (9), not echoed. */
    const uint8_t m[] = {0x55, 0x02, 0x01, 0x02, 0x03, 0x04, 0x00, 0x0F, 0x01, 0x00, 0x01, 0x01,
                         0x07, 0x00, 0x01, 0x03, 0x0D, 0x00, 0x04, 'S',  0x1B, 'P',  0x00};
    send_raw(phone, m, sizeof m);
    expect_end(phone, CAPF_REASON_UNKNOWN_DEVICE);
    session_join(&s, phone);
    assert_string_equal(s.res.device, "-");
    assert_string_equal(s.res.result, "unknown-device");
}

/* A fetched certificate is DER: text in it that looks like PEM is just text. */
static void test_fetch_der_with_pem_text(void **state)
{
    (void)state;
    server_run s;
    capfd_conn *phone = NULL;
    X509 *mic = tu_cert_make(&(tu_cert_opts){.subject = "CN=-----BEGIN CERTIFICATE-----,O=Example",
                                             .key = fx.phone_rsa,
                                             .signer = fx.other_key});
    size_t der_len = 0;
    uint8_t *der = tu_cert_der(mic, &der_len);
    device_add("SEP0000000000F1", CAPF_DEVICE_OP_TROUBLESHOOT);
    session_start(&s, &phone);
    auth(phone, "SEP0000000000F1");
    expect_cmd(phone, CAPF_CMD_FETCH_CERTIFICATE_REQUEST);
    SEND(phone, capf_msg_build_fetch_response(SID, CAPF_REASON_OK, der, der_len, &buf, &len));
    expect_end(phone, CAPF_REASON_NO_ACTION);
    session_join(&s, phone);
    assert_string_equal(s.res.result, "success");
    capf_store_cert *certs = NULL;
    size_t n = 0;
    assert_int_equal(capf_store_certs_list(fx.store, "SEP0000000000F1", &certs, &n), PT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(certs[0].kind, CAPF_STORE_CERT_FETCHED_MIC);
    pt_cert_info ci;
    assert_int_equal(pt_cert_info_get(mic, &ci), PT_OK);
    assert_string_equal(certs[0].serial, ci.serial);
    pt_cert_info_free(&ci);
    capf_store_certs_free(certs, n);
    OPENSSL_free(der);
    X509_free(mic);
}

/* An authentication string read from the phone does not stay in the connection's buffer. */
static void test_auth_string_wiped(void **state)
{
    (void)state;
    static const char secret[] = "wipe-me-483920";
    int sv[2];
    capfd_conn *capf = NULL, *phone = NULL;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(capfd_conn_plain(sv[0], &capf), PT_OK);
    assert_int_equal(capfd_conn_plain(sv[1], &phone), PT_OK);
    SEND(phone, capf_msg_build_auth_response(SID, DEV, secret, &buf, &len));
    SEND(phone, capf_msg_build_request_in_progress(SID, &buf, &len));

    capf_msg *m = recv_msg(capf);
    size_t raw_len = 0;
    const uint8_t *raw = capfd_conn_last_raw(capf, &raw_len);
    assert_non_null(memmem(raw, raw_len, secret, strlen(secret))); /* read, as the session needs */
    capf_msg_free(m);
    m = recv_msg(capf);
    assert_int_equal(capf_msg_command(m), CAPF_CMD_REQUEST_IN_PROGRESS);
    capf_msg_free(m);
    /* The buffer is CAPF_MSG_READ_MAX bytes whatever the last message's length. */
    raw = capfd_conn_last_raw(capf, &raw_len);
    assert_null(memmem(raw, CAPF_MSG_READ_MAX, secret, strlen(secret)));
    capfd_conn_close(phone);
    capfd_conn_close(capf);
}

static void test_log_line(void **state)
{
    (void)state;
    capfd_session_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.device, sizeof r.device, "%s", DEV);
    r.op = CAPF_DEVICE_OP_INSTALL;
    r.result = "failed";
    snprintf(r.reason, sizeof r.reason, "a \"quoted\"\nreason");
    r.end_reason = 7;
    /* One line whatever the reason holds: quotes and line ends are replaced. */
    char path[] = "/tmp/pt-capfd-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    capfd_session_log(5, "192.0.2.1:5000", &r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[512] = "";
    assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    unlink(path);
    assert_non_null(strstr(buf, "session=5 peer=192.0.2.1:5000 device=SEP001122334455 "
                                "operation=install result=failed end=7 "
                                "reason=\"a 'quoted''reason\"\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_subordinate_ca),
        cmocka_unit_test(test_install_many_in_progress),
        cmocka_unit_test(test_in_progress_flood),
        cmocka_unit_test(test_key_mismatch),
        cmocka_unit_test(test_issuer_down),
        cmocka_unit_test(test_issuer_wrong_key),
        cmocka_unit_test(test_issuer_altered),
        cmocka_unit_test(test_wrong_session_id),
        cmocka_unit_test(test_oversized_refused_from_header),
        cmocka_unit_test(test_unknown_tags_tolerated),
        cmocka_unit_test(test_session_timeout),
        cmocka_unit_test(test_keygen_timeout),
        cmocka_unit_test(test_bad_device_name),
        cmocka_unit_test(test_fetch_der_with_pem_text),
        cmocka_unit_test(test_auth_string_wiped),
        cmocka_unit_test(test_log_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
