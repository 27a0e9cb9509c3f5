#include "capfd_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "capf_auth.h"
#include "cert.h"
#include "log.h"
#include "lsc.h"

/* REQUEST_IN_PROGRESS messages accepted while one key is generated (§10.2 step 6, CAPF-U6). */
#define SESSION_MAX_IN_PROGRESS 64
/* How long END_SESSION may take to go out after a failure. */
#define SESSION_END_WRITE_MS 2000

typedef struct sess {
    const capfd_ctx *ctx;
    const capfd_config *cfg;
    capfd_conn *conn;
    uint32_t sid;
    capfd_session_result *res;
    capf_store_actor who;
    char sid_text[12];
    int64_t deadline; /* the whole session, key generation aside */
    bool peer_gone;   /* nothing more can be sent */
    capf_store_device dev;
    bool op_started;  /* "<op> pending" was recorded: a failure is recorded too */
    bool op_recorded; /* the outcome was recorded already */
} sess;

/* Record the first failure as the session's outcome; returns false for `return fail(...)`. */
__attribute__((format(printf, 2, 3))) static bool fail(sess *s, const char *fmt, ...)
{
    if (strcmp(s->res->result, "failed") == 0)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->reason, sizeof s->res->reason, fmt, ap);
    va_end(ap);
    s->res->result = "failed";
    return false;
}

static void outcome(sess *s, const char *result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void outcome(sess *s, const char *result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->reason, sizeof s->res->reason, fmt, ap);
    va_end(ap);
    s->res->result = result;
}

static int64_t io_deadline(const sess *s)
{
    int64_t d = capfd_now_ms() + s->cfg->io_timeout_ms;
    return d < s->deadline ? d : s->deadline;
}

static bool send_buf(sess *s, uint8_t *buf, size_t len, int64_t deadline)
{
    uint8_t cmd = len > 1 ? buf[1] : 0;
    pt_err rc = capfd_conn_write(s->conn, buf, len, deadline);
    capf_msg_buf_free(buf, len);
    if (rc != PT_OK) {
        s->peer_gone = true;
        return fail(s, "cannot send %s: %s", capf_cmd_name(cmd), pt_err_message());
    }
    return true;
}

/* Send a message a builder made (rc is the builder's result). */
static bool send_built(sess *s, pt_err rc, uint8_t *buf, size_t len)
{
    if (rc != PT_OK)
        return fail(s, "internal error: %s", pt_err_message());
    return send_buf(s, buf, len, io_deadline(s));
}

static void end_session(sess *s, uint8_t reason)
{
    if (s->peer_gone)
        return;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (capf_msg_build_end_session(s->sid, reason, &buf, &len) != PT_OK)
        return;
    int64_t d = capfd_now_ms() + SESSION_END_WRITE_MS;
    pt_err rc = capfd_conn_write(s->conn, buf, len, d);
    capf_msg_buf_free(buf, len);
    if (rc == PT_OK)
        s->res->end_reason = reason;
}

/* Read the next message; what says what was awaited, for the reason. */
static bool recv_msg(sess *s, int64_t deadline, const char *what, capf_msg **m)
{
    capfd_read_fail why = CAPFD_READ_OK;
    pt_err rc = capfd_conn_msg_read(s->conn, true, s->sid, deadline, m, &why);
    if (rc == PT_OK) {
        char notes[256];
        capf_msg_notes_format(*m, notes, sizeof notes);
        if (notes[0] != '\0')
            pt_log_info("session=%u: %s: %s", s->sid, capf_cmd_name(capf_msg_command(*m)), notes);
        return true;
    }
    switch (why) {
    case CAPFD_READ_CLOSED:
        s->peer_gone = true;
        return fail(s, "the phone closed the connection while waiting for %s", what);
    case CAPFD_READ_TIMEOUT:
        return fail(s, "timed out waiting for %s (silent or slow client)", what);
    case CAPFD_READ_IO:
        s->peer_gone = true;
        return fail(s, "connection failed while waiting for %s: %s", what, pt_err_message());
    case CAPFD_READ_WRONG_SID:
        return fail(s, "wrong session ID: %s", pt_err_message());
    case CAPFD_READ_TOO_LONG:
        return fail(s, "oversized message: %s", pt_err_message());
    case CAPFD_READ_BAD_HEADER:
        return fail(s, "not a CAPF message: %s", pt_err_message());
    case CAPFD_READ_MALFORMED:
    case CAPFD_READ_OK:
        break;
    }
    return fail(s, "malformed message: %s", pt_err_message());
}

static bool expect_cmd(sess *s, const capf_msg *m, uint8_t want)
{
    uint8_t got = capf_msg_command(m);
    if (got == want)
        return true;
    return fail(s, "expected %s, got command %u (%s)", capf_cmd_name(want), got,
                capf_cmd_name(got));
}

/* The REASON of a response, or -1 when it has none. */
static int msg_reason(const capf_msg *m)
{
    uint8_t r = 0;
    return capf_msg_get_u8(m, CAPF_EL_REASON, &r) == PT_OK ? r : -1;
}

/* ---- authentication (§10.1 step 4, §9) ------------------------------------- */

static bool auth_string(sess *s, const capf_msg *m)
{
    const uint8_t *pw = NULL;
    size_t len = 0;
    /* A missing PASSWORD is the empty string (§9.2); the NUL is not compared. */
    if (capf_msg_get_bytes(m, CAPF_EL_PASSWORD, &pw, &len) != PT_OK)
        len = 0;
    if (len > 0 && pw[len - 1] == 0)
        len--;
    capf_store_auth_result r = CAPF_STORE_AUTH_REJECTED;
    pt_err rc = capf_store_auth_attempt(s->ctx->store, s->dev.name, len ? pw : NULL, len,
                                        s->cfg->max_auth_failures, &s->who, &r);
    if (rc != PT_OK)
        return fail(s, "store: %s", pt_err_message());
    switch (r) {
    case CAPF_STORE_AUTH_ACCEPTED:
        return true;
    case CAPF_STORE_AUTH_LOCKED:
        return fail(s, "authentication failed: the device is locked after wrong authentication "
                       "strings (capfctl unlock)");
    case CAPF_STORE_AUTH_REJECTED:
        break;
    }
    if (s->dev.auth_string[0] == '\0')
        return fail(s, "authentication failed: no authentication string is set (it was used; "
                       "set a new one with capfctl set)");
    return fail(s, "authentication failed: wrong authentication string");
}

static bool auth_certificate(sess *s, const capf_msg *m)
{
    const capfd_ctx *ctx = s->ctx;
    bool lsc_mode = s->dev.auth == CAPF_DEVICE_AUTH_LSC;
    if (!capf_msg_has(m, CAPF_EL_CERTIFICATE))
        return fail(s,
                    "authentication failed: %s authentication needs a certificate and the "
                    "phone sent none",
                    lsc_mode ? "LSC" : "MIC");
    capf_trust_opts opts = {s->cfg->check_validity, 0};
    capf_auth_result ar;
    pt_err rc = capf_auth_verify_response(m, ctx->trust, &opts, &ar);
    if (rc != PT_OK)
        return fail(s, "authentication failed: %s", pt_err_message());
    bool is_lsc = ar.trust_index < ctx->n_lsc_trust;
    if (ar.sudi_checked && ar.sudi_trust_index < ctx->n_lsc_trust)
        return fail(s, "authentication failed: the SUDI certificate is not issued by a "
                       "manufacturing CA");
    if (is_lsc && !ar.cn_is_device)
        return fail(s, "authentication failed: the LSC presented names another device");
    if (lsc_mode && !is_lsc && s->dev.has_lsc)
        return fail(s,
                    "authentication failed: LSC precedence: the device has an LSC (serial %s) "
                    "but authenticated with its MIC",
                    s->dev.lsc.serial ? s->dev.lsc.serial : "?");
    if (!lsc_mode && is_lsc && ar.sudi_present)
        return fail(s, "authentication failed: MIC precedence: the phone holds a MIC (it sent "
                       "SUDI data) but authenticated with its LSC");
    pt_log_debug("session=%u: %s authentication (%s, %s)", s->sid, is_lsc ? "LSC" : "MIC",
                 capf_sig_form_name(ar.signed_data_form),
                 capf_sig_form_name(ar.sha2_signed_data_form));
    return true;
}

static bool authenticate(sess *s, const capf_msg *m)
{
    switch (s->dev.auth) {
    case CAPF_DEVICE_AUTH_NULL:
        return true;
    case CAPF_DEVICE_AUTH_STRING:
        return auth_string(s, m);
    case CAPF_DEVICE_AUTH_LSC:
    case CAPF_DEVICE_AUTH_MIC:
        return auth_certificate(s, m);
    }
    return fail(s, "internal error: unknown authentication mode");
}

/* ---- install / upgrade (§10.2, §10.3, §11) --------------------------------- */

typedef struct key_ask {
    uint8_t type;  /* CAPF_KEY_RSA or CAPF_KEY_EC */
    unsigned bits; /* RSA */
    uint8_t curve; /* EC: CAPF_CURVE_* */
} key_ask;

static const char *curve_name(uint8_t curve)
{
    static const char *const names[] = {"P-256", "P-384", "P-521"};
    return curve < 3 ? names[curve] : "?";
}

static void key_ask_text(const key_ask *k, char *out, size_t len)
{
    if (k->type == CAPF_KEY_RSA)
        snprintf(out, len, "RSA %u", k->bits);
    else
        snprintf(out, len, "EC %s", curve_name(k->curve));
}

/* Ask for a key and wait for it: the public key DER in *spki (pointing into *m). */
static bool keygen_once(sess *s, const key_ask *k, capf_msg **m, const uint8_t **spki,
                        size_t *spki_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err rc = k->type == CAPF_KEY_RSA
                    ? capf_msg_build_key_generate_request_rsa(s->sid, k->bits, &buf, &len)
                    : capf_msg_build_key_generate_request_ec(s->sid, k->curve, &buf, &len);
    if (!send_built(s, rc, buf, len))
        return false;
    int64_t start = capfd_now_ms();
    int64_t deadline = start + s->cfg->keygen_timeout_ms;
    bool ok = false;
    for (int in_progress = 0;; in_progress++) {
        if (!recv_msg(s, deadline, "KEY_GENERATE_RESPONSE", m))
            break;
        if (capf_msg_command(*m) != CAPF_CMD_REQUEST_IN_PROGRESS) {
            ok = expect_cmd(s, *m, CAPF_CMD_KEY_GENERATE_RESPONSE);
            break;
        }
        capf_msg_free(*m);
        *m = NULL;
        if (in_progress == SESSION_MAX_IN_PROGRESS) {
            fail(s, "more than %d REQUEST_IN_PROGRESS messages", SESSION_MAX_IN_PROGRESS);
            break;
        }
    }
    /* Waiting for the phone's key does not count against the session's own time. */
    s->deadline += capfd_now_ms() - start;
    if (!ok)
        return false;
    *spki = NULL;
    *spki_len = 0;
    if (capf_msg_get_bytes(*m, CAPF_EL_PUBLIC_KEY, spki, spki_len) != PT_OK)
        *spki = NULL;
    return true;
}

/* The key to ask for first, and the fallback ("EC preferred, RSA backup"). */
static void key_plan(const sess *s, key_ask *first, key_ask *backup, bool *has_backup)
{
    capf_device_key k = s->dev.key;
    if (k.kind == CAPF_DEVICE_KEY_DEFAULT)
        k = s->cfg->default_key;
    *has_backup = k.kind == CAPF_DEVICE_KEY_EC_PREFERRED;
    /* capf_device_curve and the protocol's CURVE codes are in the same order (§7.5). */
    *first = (key_ask){k.kind == CAPF_DEVICE_KEY_RSA ? CAPF_KEY_RSA : CAPF_KEY_EC, k.rsa_bits,
                       (uint8_t)k.curve};
    *backup = (key_ask){CAPF_KEY_RSA, k.rsa_bits, 0};
}

/* Ask for keys until the phone sends one or the attempts run out (CAPF-U8). */
static bool keygen(sess *s, capf_msg **m, const uint8_t **spki, size_t *spki_len, key_ask *got)
{
    key_ask ask, backup;
    bool has_backup = false;
    key_plan(s, &ask, &backup, &has_backup);
    char text[32];
    int last_reason = -1;
    for (unsigned attempt = 1; attempt <= s->cfg->keygen_attempts; attempt++) {
        if (!keygen_once(s, &ask, m, spki, spki_len))
            return false;
        if (*spki != NULL) {
            *got = ask;
            return true;
        }
        last_reason = msg_reason(*m);
        capf_msg_free(*m);
        *m = NULL;
        key_ask_text(&ask, text, sizeof text);
        pt_log_info("session=%u: device %s could not generate an %s key (reason %d), attempt %u "
                    "of %u",
                    s->sid, s->dev.name, text, last_reason, attempt, s->cfg->keygen_attempts);
        if (has_backup && ask.type == CAPF_KEY_EC)
            ask = backup;
    }
    key_ask_text(&ask, text, sizeof text);
    return fail(s,
                "the phone could not generate a key (last asked %s, reason %d) after %u "
                "attempt(s)",
                text, last_reason, s->cfg->keygen_attempts);
}

/* Build, issue (through hsmd), check and record the LSC. */
static bool issue_lsc(sess *s, const uint8_t *spki, size_t spki_len, X509 **cert)
{
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    lsc_params p = {s->ctx->issuer_cert, s->dev.name, spki, spki_len, 0, 0, NULL, 0};
    p.not_before = time(NULL);
    p.not_after = pt_time_add_years(p.not_before, (int)s->cfg->validity_years);
    pt_err rc = lsc_tbs_build(&p, &tbs, &tbs_len);
    if (rc != PT_OK)
        return fail(s, "%s", pt_err_message());
    rc = capfd_issuer_issue(s->ctx->issuer, tbs, tbs_len, cert);
    OPENSSL_free(tbs);
    if (rc != PT_OK)
        return fail(s, "issuing the LSC failed: %s", pt_err_message());
    /* What comes back is checked as if it came from outside. */
    char why[256] = "";
    EVP_PKEY *ca_key = X509_get0_pubkey(s->ctx->issuer_cert);
    if (ca_key == NULL || X509_verify(*cert, ca_key) != 1)
        return fail(s, "the issued LSC does not verify with the issuing certificate's key");
    if (lsc_profile_check(*cert, s->ctx->issuer_cert, s->dev.name, why, sizeof why) != PT_OK)
        return fail(s, "the issued LSC does not match the profile: %s", why);
    /* Recorded before it is sent (§13). */
    rc = capf_store_cert_issued(s->ctx->store, s->dev.name, *cert, &s->who);
    if (rc != PT_OK)
        return fail(s, "the LSC was not recorded, so it is not sent: %s", pt_err_message());
    return true;
}

static bool op_install(sess *s)
{
    capf_msg *m = NULL;
    const uint8_t *spki = NULL;
    size_t spki_len = 0;
    key_ask got = {CAPF_KEY_RSA, 0, 0};
    X509 *cert = NULL;
    bool ok = keygen(s, &m, &spki, &spki_len, &got);
    if (ok) {
        pt_err rc = lsc_public_key_check(spki, spki_len, got.type, got.bits, got.curve);
        if (rc != PT_OK)
            ok = fail(s, "the phone's key is not the one asked for: %s", pt_err_message());
    }
    if (ok)
        ok = issue_lsc(s, spki, spki_len, &cert);
    capf_msg_free(m);
    m = NULL;
    pt_cert_info ci;
    memset(&ci, 0, sizeof ci);
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (ok && (pt_cert_info_get(cert, &ci) != PT_OK || pt_cert_to_der(cert, &der, &der_len)))
        ok = fail(s, "internal error: %s", pt_err_message());
    if (ok) {
        uint8_t *buf = NULL;
        size_t len = 0;
        pt_err rc = capf_msg_build_store_certificate_request(s->sid, der, der_len, &buf, &len);
        ok = send_built(s, rc, buf, len);
    }
    if (ok)
        ok = recv_msg(s, io_deadline(s), "STORE_CERTIFICATE_RESPONSE", &m) &&
             expect_cmd(s, m, CAPF_CMD_STORE_CERTIFICATE_RESPONSE);
    if (ok) {
        int r = msg_reason(m);
        if (r == CAPF_REASON_OK) {
            pt_err rc = capf_store_op_succeeded(s->ctx->store, s->dev.name, CAPF_DEVICE_OP_INSTALL,
                                                &s->who);
            s->op_recorded = true;
            if (rc != PT_OK)
                pt_log_error("session=%u: store: %s", s->sid, pt_err_message());
            outcome(s, "success", "LSC serial %s (%s) issued and stored by the phone", ci.serial,
                    ci.key);
        } else {
            /* Known servers end with 1 here too and only log it (§10.2 step 11). */
            fail(s, "the phone did not store the LSC serial %s (reason %d)", ci.serial, r);
        }
        end_session(s, CAPF_REASON_OK);
    }
    pt_cert_info_free(&ci);
    OPENSSL_free(der);
    X509_free(cert);
    capf_msg_free(m);
    return ok;
}

/* ---- troubleshoot (§10.4) and delete (§10.5) ---------------------------------- */

/* Is cert an LSC (issued by a certificate that issues LSCs) rather than a MIC? */
static bool cert_is_lsc(const capfd_ctx *ctx, X509 *cert)
{
    STACK_OF(X509) *lsc = sk_X509_new_null();
    bool yes = false;
    for (int i = 0; lsc != NULL && i < ctx->n_lsc_trust; i++)
        sk_X509_push(lsc, sk_X509_value(ctx->trust, i));
    if (lsc != NULL)
        yes = capf_auth_trust_check(cert, lsc, NULL, NULL) == PT_OK;
    sk_X509_free(lsc);
    pt_err_clear();
    return yes;
}

static bool op_fetch(sess *s)
{
    capf_msg *m = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err rc = capf_msg_build_fetch_request(s->sid, &buf, &len);
    bool ok = send_built(s, rc, buf, len) &&
              recv_msg(s, io_deadline(s), "FETCH_CERTIFICATE_RESPONSE", &m) &&
              expect_cmd(s, m, CAPF_CMD_FETCH_CERTIFICATE_RESPONSE);
    int r = ok ? msg_reason(m) : -1;
    const uint8_t *der = NULL;
    size_t der_len = 0;
    X509 *cert = NULL;
    if (ok && r == CAPF_REASON_OK) {
        rc = capf_msg_get_certificate(m, &der, &der_len);
        if (rc == PT_OK)
            rc = pt_cert_parse_der(der, der_len, &cert);
        if (rc != PT_OK)
            ok = fail(s, "the phone's certificate is malformed: %s", pt_err_message());
    } else if (ok) {
        fail(s, "the phone has no certificate to fetch (reason %d)", r);
        end_session(s, CAPF_REASON_NO_ACTION);
        ok = false;
    }
    if (ok) {
        bool lsc = cert_is_lsc(s->ctx, cert);
        rc = capf_store_cert_fetched(
            s->ctx->store, s->dev.name, cert,
            lsc ? CAPF_STORE_CERT_FETCHED_LSC : CAPF_STORE_CERT_FETCHED_MIC, &s->who);
        if (rc == PT_OK)
            rc = capf_store_op_succeeded(s->ctx->store, s->dev.name, CAPF_DEVICE_OP_TROUBLESHOOT,
                                         &s->who);
        if (rc != PT_OK) {
            ok = fail(s, "store: %s", pt_err_message());
        } else {
            s->op_recorded = true;
            pt_cert_info ci;
            if (pt_cert_info_get(cert, &ci) == PT_OK) {
                outcome(s, "success", "fetched the phone's %s serial %s (%s), issuer %s",
                        lsc ? "LSC" : "MIC", ci.serial, ci.key, ci.issuer);
                pt_cert_info_free(&ci);
            } else {
                outcome(s, "success", "fetched the phone's %s", lsc ? "LSC" : "MIC");
            }
            end_session(s, CAPF_REASON_NO_ACTION);
        }
    }
    X509_free(cert);
    capf_msg_free(m);
    return ok;
}

static bool op_delete(sess *s)
{
    capf_msg *m = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err rc = capf_msg_build_delete_request(s->sid, &buf, &len);
    bool ok = send_built(s, rc, buf, len) &&
              recv_msg(s, io_deadline(s), "DELETE_CERTIFICATE_RESPONSE", &m) &&
              expect_cmd(s, m, CAPF_CMD_DELETE_CERTIFICATE_RESPONSE);
    if (ok) {
        int r = msg_reason(m);
        if (r == CAPF_REASON_OK) {
            rc = capf_store_lsc_deleted(s->ctx->store, s->dev.name, &s->who);
            if (rc == PT_OK)
                rc = capf_store_op_succeeded(s->ctx->store, s->dev.name, CAPF_DEVICE_OP_DELETE,
                                             &s->who);
            if (rc == PT_OK) {
                s->op_recorded = true;
                outcome(s, "success", "the phone deleted its LSC");
            } else {
                ok = fail(s, "store: %s", pt_err_message());
            }
        } else {
            ok = fail(s, "the phone had no LSC to delete (reason %d)", r);
        }
        /* 1 in both cases, as known servers do (§10.5 step 7). */
        end_session(s, CAPF_REASON_OK);
    }
    capf_msg_free(m);
    return ok;
}

/* ---- the session ------------------------------------------------------------------ */

/* §10.1 step 4.1-4.4: the AUTH_RESPONSE and the device it names. */
static bool opening(sess *s, capf_msg **m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err rc = capfd_conn_handshake(s->conn, io_deadline(s));
    if (rc != PT_OK) {
        s->peer_gone = true;
        return fail(s, "%s", pt_err_message());
    }
    rc = capf_msg_build_auth_request(s->sid, &buf, &len);
    if (!send_built(s, rc, buf, len) || !recv_msg(s, io_deadline(s), "AUTH_RESPONSE", m) ||
        !expect_cmd(s, *m, CAPF_CMD_AUTH_RESPONSE))
        return false;
    uint8_t version = 0;
    if (capf_msg_get_u8(*m, CAPF_EL_VERSION, &version) != PT_OK)
        return fail(s, "AUTH_RESPONSE has no VERSION");
    /* 3 from phones; 2 was seen from a softphone and accepted by a vendor server (CAPF-U4). */
    if (version != 2 && version != CAPF_VERSION)
        return fail(s, "AUTH_RESPONSE has VERSION %u; 2 and 3 are accepted", version);
    const char *name = NULL;
    size_t name_len = 0;
    rc = capf_msg_get_string(*m, CAPF_EL_DEVICE_NAME, &name, &name_len);
    if (rc == PT_ERR_NOT_FOUND)
        return fail(s, "AUTH_RESPONSE has no DEVICE_NAME");
    if (rc != PT_OK || !capf_device_name_acceptable(name, name_len)) {
        /* A name that cannot exist is not known; it is not repeated in the log. */
        outcome(s, "unknown-device", "the device name is not 1 to %d printable characters",
                CAPF_DEVICE_NAME_MAX);
        end_session(s, CAPF_REASON_UNKNOWN_DEVICE);
        return false;
    }
    snprintf(s->res->device, sizeof s->res->device, "%s", name);
    rc = capf_store_device_get_for_session(s->ctx->store, s->res->device, &s->dev);
    if (rc == PT_ERR_NOT_FOUND) {
        outcome(s, "unknown-device", "no such device in the store");
        end_session(s, CAPF_REASON_UNKNOWN_DEVICE);
        return false;
    }
    if (rc != PT_OK)
        return fail(s, "store: %s", pt_err_message());
    return true;
}

/* §10.1 step 4.5-4.6. */
static void dispatch(sess *s, const capf_msg *m)
{
    capf_device_op op = s->dev.operation;
    s->res->op = op;
    if (!authenticate(s, m)) {
        if (op != CAPF_DEVICE_OP_NONE)
            s->op_started = true; /* the failure is the operation's status */
        return;
    }
    if (op == CAPF_DEVICE_OP_NONE) {
        outcome(s, "none", "no operation is scheduled");
        end_session(s, CAPF_REASON_NO_ACTION);
        return;
    }
    pt_err rc = capf_store_op_started(s->ctx->store, s->dev.name, op, &s->who);
    if (rc == PT_ERR_TIMEOUT) {
        s->op_recorded = true; /* "failed: expired" is the store's own record */
        fail(s, "expired: the operation was to complete by its deadline");
        return;
    }
    if (rc != PT_OK) {
        fail(s, "store: %s", pt_err_message());
        return;
    }
    s->op_started = true;
    switch (op) {
    case CAPF_DEVICE_OP_INSTALL:
        op_install(s);
        break;
    case CAPF_DEVICE_OP_TROUBLESHOOT:
        op_fetch(s);
        break;
    case CAPF_DEVICE_OP_DELETE:
        op_delete(s);
        break;
    case CAPF_DEVICE_OP_NONE:
        break;
    }
}

void capfd_session_run(const capfd_ctx *ctx, capfd_conn *conn, uint32_t sid, const char *peer,
                       capfd_session_result *res)
{
    sess s;
    memset(&s, 0, sizeof s);
    memset(res, 0, sizeof *res);
    snprintf(res->device, sizeof res->device, "-");
    res->result = "";
    res->end_reason = -1;
    s.ctx = ctx;
    s.cfg = ctx->cfg;
    s.conn = conn;
    s.sid = sid;
    s.res = res;
    snprintf(s.sid_text, sizeof s.sid_text, "%08X", sid);
    s.who = (capf_store_actor){"capfd", NULL, s.sid_text, peer};
    s.deadline = capfd_now_ms() + s.cfg->session_timeout_ms;

    capf_msg *m = NULL;
    if (opening(&s, &m))
        dispatch(&s, m);
    capf_msg_free(m);
    if (strcmp(res->result, "failed") == 0) {
        if (s.op_started && !s.op_recorded) {
            pt_err rc = capf_store_op_failed(ctx->store, s.dev.name, res->op, res->reason, &s.who);
            if (rc != PT_OK)
                pt_log_error("session=%u: store: %s", sid, pt_err_message());
        }
        if (res->end_reason < 0)
            end_session(&s, CAPF_REASON_INVALID_ELEMENT);
    }
    capf_store_device_free(&s.dev); /* zeroed, or the device read: wiped either way */
    pt_err_clear();
}

void capfd_session_log(uint32_t sid, const char *peer, const capfd_session_result *res)
{
    char reason[sizeof res->reason];
    size_t i = 0;
    for (; i < sizeof reason - 1 && res->reason[i] != '\0'; i++) {
        char ch = res->reason[i];
        reason[i] = (ch == '"' || (unsigned char)ch < 0x20) ? '\'' : ch;
    }
    reason[i] = '\0';
    char end[16] = "-";
    if (res->end_reason >= 0)
        snprintf(end, sizeof end, "%d", res->end_reason);
    pt_log_info("session=%u peer=%s device=%s operation=%s result=%s end=%s reason=\"%s\"", sid,
                peer, res->device, capf_device_op_name(res->op), res->result, end, reason);
}
