/*
 * Unit tests of hsmd's request service on a SoftHSM2 token, without a
 * socket: who may use which key (uid, primary group, supplementary groups,
 * status users), that every answer is audited first, and that a signature
 * whose audit record cannot be written is withheld.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "ceremony.h"
#include "cert.h"
#include "fileio.h"
#include "hsmd_config.h"
#include "hsmd_hsm.h"
#include "hsmd_service.h"
#include "login.h"
#include "test_store.h"
#include "test_tbs.h"

typedef struct fixture {
    pt_test_store store;
    char audit_path[400];
    hsmd_config *cfg;
    audit_log *audit;
    hsmd_hsm *hsm;
    hsmd_service *svc;
    X509 *capf;
    EVP_PKEY *dummy;
} fixture;

static bool ceremony(fixture *f)
{
    if (!pt_test_store_add_token(&f->store, "HSM"))
        return false;
    token *t = pt_test_store_login(&f->store, "HSM");
    X509_NAME *name = NULL;
    X509 *itlr = NULL;
    bool ok = t != NULL && pt_name_parse("CN=CAPF-T,O=Example", &name) == PT_OK;
    X509_NAME *itlr_name = NULL;
    ok = ok && hsm_itlrecovery_subject(name, &itlr_name) == PT_OK;
    hsm_key_params capf = {name, {EVP_PKEY_RSA, 2048, 0}, 5};
    hsm_key_params ir = {itlr_name, {EVP_PKEY_RSA, 2048, 0}, 20};
    ok = ok && hsm_key_create(t, HSM_KEY_CAPF, &capf, false, &f->capf) == PT_OK &&
         hsm_key_create(t, HSM_KEY_ITLRECOVERY, &ir, false, &itlr) == PT_OK;
    X509_free(itlr);
    X509_NAME_free(name);
    X509_NAME_free(itlr_name);
    /* hsm_key_create's certificate holds the token's key object: keep a plain copy. */
    f->capf = pt_test_cert_detach(f->capf);
    token_close(t);
    return ok && f->capf != NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    if (!pt_test_store_init(&f->store))
        return 0; /* the tests skip */
    if (!ceremony(f))
        return -1;
    snprintf(f->audit_path, sizeof f->audit_path, "%s/audit.log", f->store.dir);
    char text[2048];
    snprintf(text, sizeof text,
             "[hsmd]\nmodule = %s\ntoken = pkcs11:token=HSM?pin-source=file:%s\n"
             "audit-log = %s\nsessions = 2\nstatus-users = 7777\n"
             "[key CAPF]\noperation = issue\nallow-users = 4242\nallow-groups = 5151\n"
             "[key ITLRecovery]\noperation = sign-tlv\nallow-users = 4242\n",
             f->store.module, f->store.pin_file, f->audit_path);
    if (hsmd_config_parse(text, strlen(text), "test", &f->cfg) != PT_OK ||
        audit_log_open(f->audit_path, AUDIT_OPEN_EXISTING, &f->audit) != PT_OK ||
        hsmd_hsm_open(f->cfg, &f->hsm) != PT_OK ||
        hsmd_service_new(f->cfg, f->hsm, f->audit, &f->svc) != PT_OK) {
        fprintf(stderr, "set-up: %s\n", pt_err_message());
        return -1;
    }
    f->dummy = pt_test_key("rsa");
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    hsmd_service_free(f->svc);
    hsmd_hsm_close(f->hsm);
    audit_log_close(f->audit);
    hsmd_config_free(f->cfg);
    X509_free(f->capf);
    EVP_PKEY_free(f->dummy);
    pt_test_store_cleanup(&f->store);
    free(f);
    return 0;
}

static fixture *ready(void **state)
{
    fixture *f = *state;
    if (f->svc == NULL)
        skip();
    return f;
}

/* Send one request as peer; returns the parsed answer (body kept in *keep). */
static hsmd_response ask(fixture *f, const hsmd_peer *peer, hsmd_msg_type type, const char *label,
                         const uint8_t *data, size_t len, hsmd_reply *keep)
{
    hsmd_request req;
    memset(&req, 0, sizeof req);
    req.type = type;
    req.id = 99;
    if (label != NULL)
        snprintf(req.label, sizeof req.label, "%s", label);
    req.data = data;
    req.data_len = len;
    uint8_t *body = NULL;
    size_t blen = 0;
    assert_int_equal(hsmd_request_encode(&req, &body, &blen), PT_OK);
    hsmd_service_handle(f->svc, peer, body, blen, keep);
    OPENSSL_free(body);
    hsmd_response resp;
    assert_non_null(keep->body);
    assert_int_equal(hsmd_response_parse(keep->body, keep->len, &resp), PT_OK);
    assert_int_equal(resp.id, 99);
    return resp;
}

static uint8_t *good_tbs(fixture *f, size_t *len)
{
    pt_test_tbs t;
    memset(&t, 0, sizeof t);
    t.issuer = X509_get_subject_name(f->capf);
    t.sig_key = f->dummy;
    uint8_t *tbs = pt_test_tbs_build(&t, len);
    assert_non_null(tbs);
    return tbs;
}

static int issue_code(fixture *f, const hsmd_peer *peer)
{
    size_t len = 0;
    uint8_t *tbs = good_tbs(f, &len);
    hsmd_reply r;
    hsmd_response resp = ask(f, peer, HSMD_MSG_ISSUE, "CAPF", tbs, len, &r);
    int code = resp.type == HSMD_MSG_OK ? 0 : resp.code;
    if (code == 0) {
        X509 *x = NULL;
        assert_int_equal(pt_cert_parse(resp.payload, resp.payload_len, &x), PT_OK);
        assert_int_equal(X509_verify(x, X509_get0_pubkey(f->capf)), 1);
        X509_free(x);
    }
    OPENSSL_free(r.body);
    OPENSSL_free(tbs);
    return code;
}

static void test_who_may_issue(void **state)
{
    fixture *f = ready(state);
    hsmd_peer by_uid = {.uid = 4242, .gid = 1, .pid = 10};
    hsmd_peer by_gid = {.uid = 1, .gid = 5151, .pid = 11};
    hsmd_peer by_sup = {.uid = 1, .gid = 1, .pid = 12, .n_groups = 2, .groups = {9, 5151}};
    hsmd_peer nobody = {.uid = 1, .gid = 1, .pid = 13, .n_groups = 1, .groups = {9}};
    hsmd_peer status_only = {.uid = 7777, .gid = 1, .pid = 14};
    assert_int_equal(issue_code(f, &by_uid), 0);
    assert_int_equal(issue_code(f, &by_gid), 0);
    assert_int_equal(issue_code(f, &by_sup), 0);
    assert_int_equal(issue_code(f, &nobody), HSMD_ERR_NOT_ALLOWED);
    assert_int_equal(issue_code(f, &status_only), HSMD_ERR_NOT_ALLOWED);

    hsmd_reply r;
    hsmd_response resp = ask(f, &status_only, HSMD_MSG_STATUS, NULL, NULL, 0, &r);
    assert_int_equal(resp.type, HSMD_MSG_OK);
    assert_non_null(memmem(resp.payload, resp.payload_len, "\"state\":\"ready\"", 15));
    OPENSSL_free(r.body);
    resp = ask(f, &status_only, HSMD_MSG_CERT, "CAPF", NULL, 0, &r);
    assert_int_equal(resp.type, HSMD_MSG_OK); /* status users may fetch certificates */
    OPENSSL_free(r.body);
    resp = ask(f, &nobody, HSMD_MSG_STATUS, NULL, NULL, 0, &r);
    assert_int_equal(resp.code, HSMD_ERR_NOT_ALLOWED);
    assert_non_null(strstr(resp.reason, "uid 1 may not ask for hsmd's status"));
    OPENSSL_free(r.body);
    resp = ask(f, &nobody, HSMD_MSG_CERT, "CAPF", NULL, 0, &r);
    assert_int_equal(resp.code, HSMD_ERR_NOT_ALLOWED);
    OPENSSL_free(r.body);
    resp = ask(f, &by_gid, HSMD_MSG_CERT, "ITLRecovery", NULL, 0, &r);
    assert_int_equal(resp.code, HSMD_ERR_NOT_ALLOWED); /* group 5151 has CAPF only */
    OPENSSL_free(r.body);

    /* Every answer above is in the audit log, refusals with the peer's uid and pid. */
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->audit_path, &rep), PT_OK);
    uint8_t *log = NULL;
    size_t len = 0;
    assert_int_equal(pt_file_read(f->audit_path, 1 << 20, &log, &len), PT_OK);
    assert_non_null(memmem(log, len, "uid=1 pid=13 op=issue key=CAPF", 30));
    assert_non_null(memmem(log, len, "result=refused:not-allowed", 26));
    assert_non_null(memmem(log, len, "uid=4242 pid=10 op=issue key=CAPF", 33));
    OPENSSL_free(log);
}

/* A signature whose audit record cannot be written never leaves hsmd. */
static void test_audit_failure_withholds(void **state)
{
    fixture *f = ready(state);
    hsmd_peer peer = {.uid = 4242, .gid = 1, .pid = 20};
    struct stat st;
    assert_int_equal(stat(f->audit_path, &st), 0);
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = (rlim_t)st.st_size + 20; /* far less than one record */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    size_t len = 0;
    uint8_t *tbs = good_tbs(f, &len);
    hsmd_reply r;
    hsmd_response resp = ask(f, &peer, HSMD_MSG_ISSUE, "CAPF", tbs, len, &r);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(resp.type, HSMD_MSG_ERROR);
    assert_int_equal(resp.code, HSMD_ERR_INTERNAL);
    assert_non_null(strstr(resp.reason, "could not write its audit log"));
    assert_null(resp.payload); /* no certificate in the answer */
    OPENSSL_free(r.body);
    /* The cut record is gone again; the log verifies and the next answer is audited. */
    audit_verify_report rep;
    assert_int_equal(audit_log_verify_file(f->audit_path, &rep), PT_OK);
    uint64_t before = rep.good_records;
    resp = ask(f, &peer, HSMD_MSG_ISSUE, "CAPF", tbs, len, &r);
    assert_int_equal(resp.type, HSMD_MSG_OK);
    OPENSSL_free(r.body);
    assert_int_equal(audit_log_verify_file(f->audit_path, &rep), PT_OK);
    assert_int_equal(rep.good_records, before + 1);
    OPENSSL_free(tbs);
}

static void test_frames_and_busy(void **state)
{
    fixture *f = ready(state);
    hsmd_peer peer = {.uid = 4242, .gid = 1, .pid = 30};
    hsmd_reply r;
    hsmd_service_frame_error(f->svc, &peer, "frame of 9999999 bytes is over the limit", &r);
    assert_true(r.close);
    hsmd_response resp;
    assert_int_equal(hsmd_response_parse(r.body, r.len, &resp), PT_OK);
    assert_int_equal(resp.code, HSMD_ERR_BAD_REQUEST);
    assert_int_equal(resp.id, 0);
    OPENSSL_free(r.body);

    static const uint8_t issue_hdr[] = {'H', 'S', 'M', 'D', 1, HSMD_MSG_ISSUE, 0, 0, 1, 2};
    hsmd_service_busy(f->svc, issue_hdr, sizeof issue_hdr, &r);
    assert_false(r.close);
    assert_int_equal(hsmd_response_parse(r.body, r.len, &resp), PT_OK);
    assert_int_equal(resp.code, HSMD_ERR_BUSY);
    assert_int_equal(resp.id, 0x0102);
    OPENSSL_free(r.body);

    static const uint8_t v2[] = {'H', 'S', 'M', 'D', 2, HSMD_MSG_STATUS, 0, 0, 0, 5};
    hsmd_service_handle(f->svc, &peer, v2, sizeof v2, &r);
    assert_true(r.close);
    assert_int_equal(hsmd_response_parse(r.body, r.len, &resp), PT_OK);
    assert_int_equal(resp.code, HSMD_ERR_UNSUPPORTED_VERSION);
    assert_int_equal(resp.id, 5);
    OPENSSL_free(r.body);

    char *json = NULL;
    assert_int_equal(hsmd_service_status_json(f->svc, &json), PT_OK);
    assert_non_null(strstr(json, "\"busy\":1"));
    OPENSSL_free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_who_may_issue),
        cmocka_unit_test(test_audit_failure_withholds),
        cmocka_unit_test(test_frames_and_busy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
