/*
 * Unit tests of the hsmd client library against a fake hsmd: a thread on the
 * other end of a socketpair (or of a Unix socket in a temporary directory)
 * that answers each request as the test scripts it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hsm_client.h"
#include "hsmd_proto.h"

typedef enum step_action {
    STEP_OK,        /* answer OK with payload */
    STEP_ERROR,     /* answer ERROR with code and reason */
    STEP_CLOSE_MID, /* send part of a frame, then close */
    STEP_WRONG_ID,  /* answer OK for another request id */
    STEP_SILENT,    /* answer nothing; wait for the client to go */
    STEP_GARBAGE,   /* answer with a frame whose body is no hsmd message */
    STEP_VERSION2,  /* answer in protocol version 2 */
} step_action;

typedef struct step {
    step_action action;
    const uint8_t *payload;
    size_t payload_len;
    int code;
    const char *reason;
} step;

enum { STEPS_MAX = 4 };

typedef struct fake_server {
    int fd; /* connected socket, or listening when listening is set */
    bool listening;
    step steps[STEPS_MAX];
    int n_steps;
    /* What the server saw, for the test to check. */
    int seen_type[STEPS_MAX];
    char seen_label[STEPS_MAX][HSMD_LABEL_MAX + 1];
    uint8_t *seen_data[STEPS_MAX];
    size_t seen_len[STEPS_MAX];
    int served;
    pthread_t thread;
} fake_server;

/*
 * The server runs in its own thread, where cmocka's assertions must not be
 * used (they jump back into the main thread): a failure there ends the
 * conversation, and the client side of the test sees that.
 */
static bool send_body(int fd, const uint8_t *body, size_t len)
{
    return hsmd_frame_write(fd, hsmd_deadline_after(5000), body, len) == PT_OK;
}

static bool send_response(int fd, const hsmd_response *resp)
{
    uint8_t *body = NULL;
    size_t len = 0;
    if (hsmd_response_encode(resp, &body, &len) != PT_OK)
        return false;
    bool ok = send_body(fd, body, len);
    OPENSSL_free(body);
    return ok;
}

/* Answer one request; false when the connection is to be closed. */
static bool serve_step(fake_server *s, const step *st, const hsmd_request *req)
{
    hsmd_response resp = {.type = HSMD_MSG_OK, .id = req->id};
    switch (st->action) {
    case STEP_OK:
    case STEP_WRONG_ID:
        resp.payload = st->payload;
        resp.payload_len = st->payload_len;
        resp.id += st->action == STEP_WRONG_ID;
        return send_response(s->fd, &resp);
    case STEP_ERROR:
        hsmd_response_set_error(&resp, req->id, st->code, st->reason);
        return send_response(s->fd, &resp);
    case STEP_CLOSE_MID: {
        static const uint8_t part[] = {0, 0, 0, 100, 0x48, 0x53, 0x4d, 0x44, 1, 0x81};
        send(s->fd, part, sizeof part, MSG_NOSIGNAL);
        return false;
    }
    case STEP_SILENT: {
        uint8_t *body = NULL;
        size_t len = 0;
        /* Returns when the client closes its end. */
        if (hsmd_frame_read(s->fd, HSMD_NO_DEADLINE, &body, &len) == PT_OK)
            OPENSSL_free(body);
        return false;
    }
    case STEP_GARBAGE: {
        static const uint8_t junk[] = "this is no hsmd message";
        return send_body(s->fd, junk, sizeof junk);
    }
    case STEP_VERSION2: {
        uint8_t v2[] = {0x48, 0x53, 0x4d, 0x44, 2, 0x81, 0, 0, 0, 0};
        v2[9] = (uint8_t)req->id;
        return send_body(s->fd, v2, sizeof v2);
    }
    }
    return false;
}

static void *server_main(void *p)
{
    fake_server *s = p;
    if (s->listening) {
        int lfd = s->fd;
        s->fd = accept(lfd, NULL, NULL);
        close(lfd);
        if (s->fd < 0)
            return NULL;
    }
    for (int i = 0; i < s->n_steps; i++) {
        uint8_t *body = NULL;
        size_t len = 0;
        hsmd_request req;
        if (hsmd_frame_read(s->fd, hsmd_deadline_after(10000), &body, &len) != PT_OK)
            break;
        if (hsmd_request_parse(body, len, &req) != PT_OK) {
            OPENSSL_free(body);
            break;
        }
        s->seen_type[i] = req.type;
        snprintf(s->seen_label[i], sizeof s->seen_label[i], "%s", req.label);
        s->seen_data[i] = req.data_len ? OPENSSL_memdup(req.data, req.data_len) : NULL;
        s->seen_len[i] = req.data_len;
        s->served++;
        bool more = serve_step(s, &s->steps[i], &req);
        OPENSSL_free(body);
        if (!more)
            break;
    }
    close(s->fd);
    return NULL;
}

static void server_start(fake_server *s)
{
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

/* Start a fake hsmd on a socketpair and connect a client to it. */
static hsm_client *client_with_server(fake_server *s, int timeout_ms)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s->fd = sv[1];
    server_start(s);
    hsm_client *c = NULL;
    assert_int_equal(hsm_client_from_fd(sv[0], "/test/hsmd.sock", timeout_ms, &c), PT_OK);
    return c;
}

static void server_finish(fake_server *s, hsm_client *c)
{
    hsm_client_close(c);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < STEPS_MAX; i++)
        OPENSSL_free(s->seen_data[i]);
}

/* A self-signed P-256 certificate, standing in for what hsmd would return. */
static X509 *make_cert(const char *cn, long serial)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return x;
}

static uint8_t *cert_der(X509 *x, size_t *len)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static uint8_t *cert_tbs(X509 *x, size_t *len)
{
    uint8_t *der = NULL;
    int n = i2d_re_X509_tbs(x, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static void test_status_ok(void **state)
{
    (void)state;
    static const char json[] = "{\"hsm\":\"ok\",\"keys\":[\"CAPF-CA\",\"ITLRecovery\"]}";
    fake_server s = {.n_steps = 1};
    s.steps[0] = (step){STEP_OK, (const uint8_t *)json, strlen(json), 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    char *got = NULL;
    assert_int_equal(hsm_client_status(c, &got), PT_OK);
    assert_string_equal(got, json);
    assert_int_equal(s.seen_type[0], HSMD_MSG_STATUS);
    OPENSSL_free(got);
    server_finish(&s, c);
}

static void test_cert_ok(void **state)
{
    (void)state;
    X509 *x = make_cert("ITLRecovery", 1);
    size_t len = 0;
    uint8_t *der = cert_der(x, &len);
    fake_server s = {.n_steps = 1};
    s.steps[0] = (step){STEP_OK, der, len, 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    X509 *got = NULL;
    assert_int_equal(hsm_client_cert(c, "ITLRecovery", &got), PT_OK);
    assert_int_equal(X509_cmp(got, x), 0);
    assert_int_equal(s.seen_type[0], HSMD_MSG_CERT);
    assert_string_equal(s.seen_label[0], "ITLRecovery");
    X509_free(got);
    server_finish(&s, c);
    OPENSSL_free(der);
    X509_free(x);
}

static void test_issue_ok(void **state)
{
    (void)state;
    X509 *x = make_cert("SEP001122334455", 0x1234);
    size_t len = 0, tbs_len = 0;
    uint8_t *der = cert_der(x, &len);
    uint8_t *tbs = cert_tbs(x, &tbs_len);
    fake_server s = {.n_steps = 1};
    s.steps[0] = (step){STEP_OK, der, len, 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    X509 *got = NULL;
    assert_int_equal(hsm_client_issue(c, "CAPF-CA", tbs, tbs_len, &got), PT_OK);
    assert_int_equal(X509_cmp(got, x), 0);
    assert_int_equal(s.seen_type[0], HSMD_MSG_ISSUE);
    assert_int_equal(s.seen_len[0], tbs_len);
    assert_memory_equal(s.seen_data[0], tbs, tbs_len);
    X509_free(got);
    server_finish(&s, c);
    OPENSSL_free(der);
    OPENSSL_free(tbs);
    X509_free(x);
}

static void test_issue_other_tbs(void **state)
{
    (void)state;
    X509 *asked = make_cert("SEP001122334455", 1);
    X509 *other = make_cert("SEP665544332211", 2);
    size_t len = 0, tbs_len = 0;
    uint8_t *der = cert_der(other, &len);
    uint8_t *tbs = cert_tbs(asked, &tbs_len);
    fake_server s = {.n_steps = 1};
    s.steps[0] = (step){STEP_OK, der, len, 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    X509 *got = NULL;
    assert_int_equal(hsm_client_issue(c, "CAPF-CA", tbs, tbs_len, &got), PT_ERR_PROTOCOL);
    assert_null(got);
    assert_non_null(strstr(pt_err_message(), "another TBSCertificate"));
    server_finish(&s, c);
    OPENSSL_free(der);
    OPENSSL_free(tbs);
    X509_free(asked);
    X509_free(other);
}

static void test_cert_garbled(void **state)
{
    (void)state;
    static const uint8_t not_der[] = {0x30, 0x03, 0x02, 0x01};
    fake_server s = {.n_steps = 2};
    s.steps[0] = (step){STEP_OK, not_der, sizeof not_der, 0, NULL};
    s.steps[1] = (step){STEP_OK, (const uint8_t *)"{}", 2, 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    X509 *got = NULL;
    assert_int_equal(hsm_client_cert(c, "CAPF-CA", &got), PT_ERR_PROTOCOL);
    assert_null(got);
    assert_non_null(strstr(pt_err_message(), "does not parse"));
    /* The exchange itself was sound: the connection stays usable. */
    char *json = NULL;
    assert_int_equal(hsm_client_status(c, &json), PT_OK);
    OPENSSL_free(json);
    server_finish(&s, c);
}

static void test_sign_tlv_ok(void **state)
{
    (void)state;
    uint8_t file[3000], signed_file[3000];
    for (size_t i = 0; i < sizeof file; i++)
        file[i] = i < 2800 ? (uint8_t)i : 0;
    memcpy(signed_file, file, sizeof file);
    memset(signed_file + 2800, 0xa5, 200);
    fake_server s = {.n_steps = 2};
    s.steps[0] = (step){STEP_OK, signed_file, sizeof signed_file, 0, NULL};
    s.steps[1] = (step){STEP_OK, signed_file, 100, 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(hsm_client_sign_tlv(c, "ITLRecovery", file, sizeof file, &out, &out_len),
                     PT_OK);
    assert_int_equal(out_len, sizeof file);
    assert_memory_equal(out, signed_file, out_len);
    assert_memory_equal(s.seen_data[0], file, sizeof file);
    OPENSSL_free(out);
    /* A signed file of another length is not what signing in place gives. */
    assert_int_equal(hsm_client_sign_tlv(c, "ITLRecovery", file, sizeof file, &out, &out_len),
                     PT_ERR_PROTOCOL);
    assert_null(out);
    assert_int_equal(out_len, 0);
    server_finish(&s, c);
}

static void test_error_codes(void **state)
{
    (void)state;
    static const struct {
        int code;
        pt_err rc;
        const char *name;
    } cases[] = {
        {HSMD_ERR_BAD_REQUEST, PT_ERR_FORMAT, "bad-request"},
        {HSMD_ERR_UNKNOWN_KEY, PT_ERR_NOT_FOUND, "unknown-key"},
        {HSMD_ERR_NOT_ALLOWED, PT_ERR_REFUSED, "not-allowed"},
        {HSMD_ERR_REFUSED_BY_POLICY, PT_ERR_REFUSED, "refused-by-policy"},
        {HSMD_ERR_HSM_UNAVAILABLE, PT_ERR_TOKEN_GONE, "hsm-unavailable"},
        {HSMD_ERR_BUSY, PT_ERR_BUSY, "busy"},
        {HSMD_ERR_INTERNAL, PT_ERR_INTERNAL, "internal"},
        {HSMD_ERR_UNSUPPORTED_VERSION, PT_ERR_UNSUPPORTED, "unsupported-version"},
        {77, PT_ERR_REFUSED, "code 77"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_server s = {.n_steps = 2};
        s.steps[0] = (step){STEP_ERROR, NULL, 0, cases[i].code, "the reason from hsmd"};
        s.steps[1] = (step){STEP_OK, (const uint8_t *)"{}", 2, 0, NULL};
        hsm_client *c = client_with_server(&s, 5000);
        X509 *got = NULL;
        assert_int_equal(hsm_client_cert(c, "CAPF-CA", &got), cases[i].rc);
        assert_null(got);
        const char *msg = pt_err_message();
        assert_non_null(strstr(msg, "the reason from hsmd"));
        assert_non_null(strstr(msg, cases[i].name));
        assert_non_null(strstr(msg, "'CAPF-CA'"));
        /* A refusal leaves the connection usable. */
        char *json = NULL;
        assert_int_equal(hsm_client_status(c, &json), PT_OK);
        assert_string_equal(json, "{}");
        OPENSSL_free(json);
        server_finish(&s, c);
    }
}

/* A failure that leaves the stream unusable: the next call must fail at once. */
static void check_broken(hsm_client *c)
{
    char *json = NULL;
    assert_int_equal(hsm_client_status(c, &json), PT_ERR_IO);
    assert_null(json);
    assert_non_null(strstr(pt_err_message(), "connect again"));
}

static void test_server_closes_mid_response(void **state)
{
    (void)state;
    fake_server s = {.n_steps = 1};
    s.steps[0] = (step){STEP_CLOSE_MID, NULL, 0, 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    char *json = NULL;
    assert_int_equal(hsm_client_status(c, &json), PT_ERR_PROTOCOL);
    assert_null(json);
    const char *msg = pt_err_message();
    assert_non_null(strstr(msg, "/test/hsmd.sock"));
    assert_non_null(strstr(msg, "journalctl"));
    check_broken(c);
    server_finish(&s, c);
}

static void test_server_silent(void **state)
{
    (void)state;
    fake_server s = {.n_steps = 1};
    s.steps[0] = (step){STEP_SILENT, NULL, 0, 0, NULL};
    hsm_client *c = client_with_server(&s, 100);
    int64_t start = hsmd_now_ms();
    char *json = NULL;
    assert_int_equal(hsm_client_status(c, &json), PT_ERR_TIMEOUT);
    assert_true(hsmd_now_ms() - start >= 100);
    assert_non_null(strstr(pt_err_message(), "is hsmd running"));
    assert_non_null(strstr(pt_err_message(), "/test/hsmd.sock"));
    check_broken(c);
    server_finish(&s, c);
}

static void test_server_wrong_answers(void **state)
{
    (void)state;
    static const step_action actions[] = {STEP_WRONG_ID, STEP_GARBAGE, STEP_VERSION2};
    static const pt_err expected[] = {PT_ERR_PROTOCOL, PT_ERR_PROTOCOL, PT_ERR_UNSUPPORTED};
    for (size_t i = 0; i < 3; i++) {
        fake_server s = {.n_steps = 1};
        s.steps[0] = (step){actions[i], (const uint8_t *)"{}", 2, 0, NULL};
        hsm_client *c = client_with_server(&s, 5000);
        char *json = NULL;
        assert_int_equal(hsm_client_status(c, &json), expected[i]);
        assert_null(json);
        check_broken(c);
        server_finish(&s, c);
    }
}

static void test_bad_label_not_sent(void **state)
{
    (void)state;
    fake_server s = {.n_steps = 1};
    s.steps[0] = (step){STEP_OK, (const uint8_t *)"{}", 2, 0, NULL};
    hsm_client *c = client_with_server(&s, 5000);
    X509 *x = NULL;
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(hsm_client_cert(c, "CAPF CA", &x), PT_ERR_USAGE);
    assert_int_equal(hsm_client_issue(c, "", (const uint8_t *)"x", 1, &x), PT_ERR_USAGE);
    assert_int_equal(hsm_client_sign_tlv(c, NULL, (const uint8_t *)"x", 1, &out, &len),
                     PT_ERR_USAGE);
    /* Nothing went out, so the connection is fine. */
    char *json = NULL;
    assert_int_equal(hsm_client_status(c, &json), PT_OK);
    OPENSSL_free(json);
    server_finish(&s, c);
    assert_int_equal(s.served, 1);
}

/* A temporary directory for a socket; removed by the caller. */
static void temp_socket_path(char *dir, size_t dirlen, char *path, size_t pathlen)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, dirlen, "%s/hsmclient.XXXXXX", tmp);
    assert_non_null(mkdtemp(dir));
    snprintf(path, pathlen, "%s/hsmd.sock", dir);
}

static int listen_on(const char *path, bool do_listen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 4), 0);
    return fd;
}

static void test_connect_unix_socket(void **state)
{
    (void)state;
    char dir[256], path[300];
    temp_socket_path(dir, sizeof dir, path, sizeof path);
    fake_server s = {.n_steps = 1, .listening = true};
    s.fd = listen_on(path, true);
    s.steps[0] = (step){STEP_OK, (const uint8_t *)"{\"ok\":true}", 11, 0, NULL};
    server_start(&s);
    hsm_client *c = NULL;
    assert_int_equal(hsm_client_connect(path, 5000, &c), PT_OK);
    char *json = NULL;
    assert_int_equal(hsm_client_status(c, &json), PT_OK);
    assert_string_equal(json, "{\"ok\":true}");
    OPENSSL_free(json);
    server_finish(&s, c);
    unlink(path);
    rmdir(dir);
}

static void test_connect_failures(void **state)
{
    (void)state;
    char dir[256], path[300];
    temp_socket_path(dir, sizeof dir, path, sizeof path);
    hsm_client *c = NULL;

    assert_int_equal(hsm_client_connect(path, 1000, &c), PT_ERR_IO);
    assert_null(c);
    assert_non_null(strstr(pt_err_message(), path));
    assert_non_null(strstr(pt_err_message(), "does not exist"));
    assert_non_null(strstr(pt_err_message(), "is hsmd running?"));

    /* A socket file nobody listens on (hsmd died without removing it). */
    int fd = listen_on(path, false);
    assert_int_equal(hsm_client_connect(path, 1000, &c), PT_ERR_IO);
    assert_non_null(strstr(pt_err_message(), "nothing is listening"));
    assert_non_null(strstr(pt_err_message(), "is hsmd running?"));
    close(fd);
    unlink(path);
    rmdir(dir);

    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal(hsm_client_connect(longpath, 1000, &c), PT_ERR_USAGE);
    assert_int_equal(hsm_client_connect("", 1000, &c), PT_ERR_USAGE);
}

static void test_parse_signer(void **state)
{
    (void)state;
    char *path = NULL, *label = NULL;
    assert_true(hsm_client_is_signer("hsmd:/x#y"));
    assert_false(hsm_client_is_signer("pkcs11:token=SAST1"));
    assert_false(hsm_client_is_signer(NULL));

    assert_int_equal(
        hsm_client_parse_signer("hsmd:/run/phonetrust/hsmd.sock#ITLRecovery", &path, &label),
        PT_OK);
    assert_string_equal(path, "/run/phonetrust/hsmd.sock");
    assert_string_equal(label, "ITLRecovery");
    OPENSSL_free(path);
    OPENSSL_free(label);

    assert_int_equal(hsm_client_parse_signer("hsmd:#CAPF-CA", &path, &label), PT_OK);
    assert_string_equal(path, HSM_CLIENT_DEFAULT_SOCKET);
    assert_string_equal(label, "CAPF-CA");
    OPENSSL_free(path);
    OPENSSL_free(label);

    /* Split at the last '#': a path may hold one. */
    assert_int_equal(hsm_client_parse_signer("hsmd:/tmp/a#b/hsmd.sock#K", &path, &label), PT_OK);
    assert_string_equal(path, "/tmp/a#b/hsmd.sock");
    assert_string_equal(label, "K");
    OPENSSL_free(path);
    OPENSSL_free(label);

    static const char *const bad[] = {
        "hsmd:/run/phonetrust/hsmd.sock",
        "hsmd:/run/hsmd.sock#",
        "hsmd:/run/hsmd.sock#two words",
        "pkcs11:token=x",
        "HSMD:/x#y",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(hsm_client_parse_signer(bad[i], &path, &label), PT_ERR_USAGE);
        assert_null(path);
        assert_null(label);
        assert_non_null(strstr(pt_err_message(), "hsmd:SOCKET#LABEL"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_ok),
        cmocka_unit_test(test_cert_ok),
        cmocka_unit_test(test_issue_ok),
        cmocka_unit_test(test_issue_other_tbs),
        cmocka_unit_test(test_cert_garbled),
        cmocka_unit_test(test_sign_tlv_ok),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_server_closes_mid_response),
        cmocka_unit_test(test_server_silent),
        cmocka_unit_test(test_server_wrong_answers),
        cmocka_unit_test(test_bad_label_not_sent),
        cmocka_unit_test(test_connect_unix_socket),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_parse_signer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
