#include "hsmd_service.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "bytes.h"
#include "cert.h"
#include "hsmd_audit.h"
#include "hsmd_policy.h"
#include "log.h"
#include "pt_config.h"
#include "tlv_codes.h"

typedef struct counters {
    atomic_uint_fast64_t requests, ok, refused, errors, busy, abandoned, accept_pauses, timeouts,
        audit_failures;
} counters;

struct hsmd_service {
    const hsmd_config *cfg;
    hsmd_hsm *hsm;
    audit_log *audit;
    hsmd_audit *committer; /* group commit in front of audit */
    hsmd_issue_policy issue[HSMD_CONFIG_MAX_KEYS];
    hsmd_tlv_policy tlv[HSMD_CONFIG_MAX_KEYS];
    counters n;
    hsmd_load_fn load_fn;
    void *load_ctx;
    time_t started;
};

/* What one request came to, before it is audited and encoded. */
typedef struct outcome {
    hsmd_error_code code; /* 0: OK */
    char reason[HSMD_REASON_MAX + 1];
    uint8_t *payload;
    size_t payload_len;
    char serial[64];
    char note[AUDIT_NOTE_MAX + 1];
    bool close;
} outcome;

/* ---- set-up ---- */

static pt_err check_issue_key(const hsmd_key *k)
{
    X509 *c = k->cert;
    if (X509_check_ca(c) < 1)
        return pt_fail(PT_ERR_USAGE,
                       "[key %s] serves issue, but its certificate is not a CA certificate "
                       "(basicConstraints CA:TRUE): what it issued would not verify",
                       k->cfg->name);
    uint32_t ku = X509_get_key_usage(c);
    if (ku != UINT32_MAX && !(ku & KU_KEY_CERT_SIGN))
        return pt_fail(PT_ERR_USAGE,
                       "[key %s] serves issue, but its certificate's keyUsage lacks keyCertSign",
                       k->cfg->name);
    return PT_OK;
}

pt_err hsmd_service_new(const hsmd_config *cfg, hsmd_hsm *hsm, audit_log *audit, hsmd_service **out)
{
    *out = NULL;
    hsmd_service *s = OPENSSL_zalloc(sizeof *s);
    if (s == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    s->cfg = cfg;
    s->hsm = hsm;
    s->audit = audit;
    s->started = time(NULL);
    pt_err rc = hsmd_audit_new(audit, &s->committer);
    for (size_t i = 0; rc == PT_OK && i < hsmd_hsm_key_count(hsm); i++) {
        const hsmd_key *k = hsmd_hsm_key_at(hsm, i);
        if (k->cfg->op == HSMD_OP_ISSUE) {
            rc = check_issue_key(k);
            s->issue[i] = (hsmd_issue_policy){k->cert, k->key_type, k->cfg->digests,
                                              k->cfg->max_validity_days};
        } else {
            rc = hsmd_tlv_policy_init(&s->tlv[i], k->cert, k->key_type, k->key_bits,
                                      k->cfg->digests);
            if (rc != PT_OK)
                rc = pt_fail(PT_ERR_USAGE, "[key %s] serves sign-tlv: %s", k->cfg->name,
                             pt_err_message());
        }
        if (rc == PT_OK && X509_cmp_current_time(X509_get0_notAfter(k->cert)) < 0)
            pt_log_warn("key %s: its certificate has expired; what it signs will not verify",
                        k->cfg->name);
    }
    if (rc != PT_OK) {
        hsmd_service_free(s);
        return rc;
    }
    *out = s;
    return PT_OK;
}

void hsmd_service_free(hsmd_service *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < HSMD_CONFIG_MAX_KEYS; i++)
        hsmd_tlv_policy_clear(&s->tlv[i]);
    hsmd_audit_free(s->committer);
    OPENSSL_free(s);
}

void hsmd_service_set_load_fn(hsmd_service *s, hsmd_load_fn fn, void *ctx)
{
    s->load_fn = fn;
    s->load_ctx = ctx;
}

void hsmd_service_count_abandoned(hsmd_service *s)
{
    atomic_fetch_add(&s->n.abandoned, 1);
}

void hsmd_service_count_accept_pause(hsmd_service *s)
{
    atomic_fetch_add(&s->n.accept_pauses, 1);
}

void hsmd_service_count_timeout(hsmd_service *s)
{
    atomic_fetch_add(&s->n.timeouts, 1);
}

/* ---- outcomes ---- */

static void refuse(outcome *o, hsmd_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(outcome *o, hsmd_error_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->reason, sizeof o->reason, fmt, ap);
    va_end(ap);
    o->code = code;
    OPENSSL_free(o->payload);
    o->payload = NULL;
    o->payload_len = 0;
}

/* The answer for a failure rc with the detail in pt_err_message(). */
static void refuse_rc(outcome *o, pt_err rc)
{
    hsmd_error_code code;
    switch (rc) {
    case PT_ERR_FORMAT:
    case PT_ERR_LIMIT:
        code = HSMD_ERR_BAD_REQUEST;
        break;
    case PT_ERR_REFUSED:
        code = HSMD_ERR_REFUSED_BY_POLICY;
        break;
    case PT_ERR_BUSY:
        code = HSMD_ERR_BUSY;
        break;
    case PT_ERR_TOKEN_GONE:
    case PT_ERR_CKR:
    case PT_ERR_PIN_INCORRECT:
    case PT_ERR_PIN_LOCKED:
    case PT_ERR_PIN_FINAL_TRY:
    case PT_ERR_PIN_CHANGE:
        code = HSMD_ERR_HSM_UNAVAILABLE;
        break;
    default:
        code = HSMD_ERR_INTERNAL;
        break;
    }
    refuse(o, code, "%s", pt_err_message());
}

static bool is_refusal(hsmd_error_code c)
{
    return c == HSMD_ERR_BAD_REQUEST || c == HSMD_ERR_UNKNOWN_KEY || c == HSMD_ERR_NOT_ALLOWED ||
           c == HSMD_ERR_REFUSED_BY_POLICY || c == HSMD_ERR_UNSUPPORTED_VERSION;
}

static void count(hsmd_service *s, hsmd_error_code c)
{
    if (c == 0)
        atomic_fetch_add(&s->n.ok, 1);
    else if (is_refusal(c))
        atomic_fetch_add(&s->n.refused, 1);
    else if (c == HSMD_ERR_BUSY)
        atomic_fetch_add(&s->n.busy, 1);
    else
        atomic_fetch_add(&s->n.errors, 1);
}

/* ---- who may ask ---- */

static bool peer_may_use(const hsmd_key_config *k, const hsmd_peer *p)
{
    return hsmd_ids_allow(&k->users, &k->groups, p->uid, p->gid, p->groups, p->n_groups);
}

/* status: the status users and groups, and everyone who may use some key. */
static bool peer_may_see_status(const hsmd_config *cfg, const hsmd_peer *p)
{
    if (hsmd_ids_allow(&cfg->status_users, &cfg->status_groups, p->uid, p->gid, p->groups,
                       p->n_groups))
        return true;
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (peer_may_use(&cfg->keys[i], p))
            return true;
    return false;
}

/* ---- status ---- */

static json_object *jstr(const char *s)
{
    return json_object_new_string(s != NULL ? s : "");
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, json_object_new_uint64(v));
}

static json_object *status_keys(hsmd_service *s)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < hsmd_hsm_key_count(s->hsm); i++) {
        const hsmd_key *k = hsmd_hsm_key_at(s->hsm, i);
        json_object *jk = json_object_new_object();
        json_object_object_add(jk, "name", jstr(k->cfg->name));
        json_object_object_add(jk, "label", jstr(k->cfg->label));
        json_object_object_add(jk, "operation", jstr(hsmd_op_name(k->cfg->op)));
        json_object_object_add(jk, "algorithm", jstr(k->algorithm));
        pt_cert_info ci;
        if (pt_cert_info_get(k->cert, &ci) == PT_OK) {
            json_object *jc = json_object_new_object();
            json_object_object_add(jc, "subject", jstr(ci.subject));
            json_object_object_add(jc, "serial", jstr(ci.serial));
            json_object_object_add(jc, "sha256", jstr(ci.sha256));
            json_object_object_add(jc, "not_after", jstr(ci.not_after));
            json_object_object_add(jk, "certificate", jc);
            pt_cert_info_free(&ci);
        }
        json_object_array_add(arr, jk);
    }
    return arr;
}

pt_err hsmd_service_status_json(hsmd_service *s, char **json)
{
    *json = NULL;
    hsmd_hsm_status hs;
    hsmd_hsm_get_status(s->hsm, &hs);
    hsmd_load load;
    memset(&load, 0, sizeof load);
    if (s->load_fn != NULL)
        s->load_fn(s->load_ctx, &load);
    uint64_t seq = 0;
    char head[AUDIT_HASH_HEX];
    audit_log_head(s->audit, &seq, head);
    char since[21];
    pt_time_iso8601(hs.since, since);

    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", jstr(hs.state == HSMD_HSM_READY ? "ok" : "degraded"));
    json_object_object_add(o, "version", jstr(PT_VERSION));
    add_u64(o, "uptime_seconds", (uint64_t)(time(NULL) - s->started));
    json_object *jh = json_object_new_object();
    json_object_object_add(jh, "state", jstr(hsmd_hsm_state_name(hs.state)));
    json_object_object_add(jh, "detail", jstr(hs.detail));
    json_object_object_add(jh, "since", jstr(since));
    json_object_object_add(jh, "token", jstr(hs.token_label));
    json_object_object_add(jh, "serial", jstr(hs.token_serial));
    add_u64(jh, "recoveries", hs.recoveries);
    add_u64(jh, "recovery_attempts", hs.attempts);
    json_object_object_add(o, "hsm", jh);
    json_object_object_add(o, "keys", status_keys(s));
    json_object *jl = json_object_new_object();
    add_u64(jl, "connections", load.connections);
    add_u64(jl, "max_clients", load.max_clients);
    add_u64(jl, "queued", load.queued);
    add_u64(jl, "queue_capacity", load.queue_capacity);
    add_u64(jl, "in_progress", load.in_progress);
    add_u64(jl, "workers", load.workers);
    add_u64(jl, "sessions_per_key", s->cfg->sessions);
    json_object_object_add(o, "load", jl);
    json_object *jc = json_object_new_object();
    add_u64(jc, "requests", atomic_load(&s->n.requests));
    add_u64(jc, "ok", atomic_load(&s->n.ok));
    add_u64(jc, "refused", atomic_load(&s->n.refused));
    add_u64(jc, "errors", atomic_load(&s->n.errors));
    add_u64(jc, "busy", atomic_load(&s->n.busy));
    add_u64(jc, "abandoned", atomic_load(&s->n.abandoned));
    add_u64(jc, "accept_pauses", atomic_load(&s->n.accept_pauses));
    add_u64(jc, "timeouts", atomic_load(&s->n.timeouts));
    add_u64(jc, "audit_failures", atomic_load(&s->n.audit_failures));
    json_object_object_add(o, "counters", jc);
    uint64_t records = 0, flushes = 0;
    hsmd_audit_counts(s->committer, &records, &flushes);
    json_object *ja = json_object_new_object();
    add_u64(ja, "records_written", records);
    add_u64(ja, "fdatasyncs", flushes);
    add_u64(ja, "seq", seq);
    json_object_object_add(ja, "head", jstr(head));
    json_object_object_add(o, "audit", ja);

    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    *json = text != NULL ? OPENSSL_strdup(text) : NULL;
    json_object_put(o);
    return *json != NULL ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
}

/* ---- operations ---- */

static void do_status(hsmd_service *s, const hsmd_peer *peer, outcome *o)
{
    if (!peer_may_see_status(s->cfg, peer)) {
        refuse(o, HSMD_ERR_NOT_ALLOWED, "uid %u may not ask for hsmd's status",
               (unsigned)peer->uid);
        return;
    }
    char *json = NULL;
    pt_err rc = hsmd_service_status_json(s, &json);
    if (rc != PT_OK || json == NULL) {
        refuse_rc(o, rc != PT_OK ? rc : PT_ERR_INTERNAL);
        return;
    }
    o->payload = (uint8_t *)json;
    o->payload_len = strlen(json);
}

/* Find the key and check the peer may use it for this operation; NULL after a refusal. */
static const hsmd_key *key_for(hsmd_service *s, const hsmd_peer *peer, const hsmd_request *req,
                               size_t *index, outcome *o)
{
    const hsmd_key *k = hsmd_hsm_key_find(s->hsm, req->label, index);
    if (k == NULL) {
        refuse(o, HSMD_ERR_UNKNOWN_KEY, "no key called '%s' is configured", req->label);
        return NULL;
    }
    bool cert_only = req->type == HSMD_MSG_CERT;
    if (!peer_may_use(k->cfg, peer) &&
        !(cert_only && hsmd_ids_allow(&s->cfg->status_users, &s->cfg->status_groups, peer->uid,
                                      peer->gid, peer->groups, peer->n_groups))) {
        refuse(o, HSMD_ERR_NOT_ALLOWED, "uid %u may not use key %s", (unsigned)peer->uid,
               k->cfg->name);
        return NULL;
    }
    hsmd_op want = req->type == HSMD_MSG_ISSUE ? HSMD_OP_ISSUE : HSMD_OP_SIGN_TLV;
    if (!cert_only && k->cfg->op != want) {
        refuse(o, HSMD_ERR_NOT_ALLOWED, "key %s serves %s, not %s", k->cfg->name,
               hsmd_op_name(k->cfg->op), hsmd_op_name(want));
        return NULL;
    }
    return k;
}

static void do_cert(hsmd_service *s, const hsmd_peer *peer, const hsmd_request *req, outcome *o)
{
    size_t i = 0;
    const hsmd_key *k = key_for(s, peer, req, &i, o);
    if (k == NULL)
        return;
    pt_err rc = pt_cert_to_der(k->cert, &o->payload, &o->payload_len);
    if (rc != PT_OK)
        refuse_rc(o, rc);
}

static void do_issue(hsmd_service *s, const hsmd_peer *peer, const hsmd_request *req, outcome *o)
{
    size_t i = 0;
    if (key_for(s, peer, req, &i, o) == NULL)
        return;
    const hsmd_issue_policy *p = &s->issue[i];
    hsmd_issue_info info;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    pt_err rc = hsmd_issue_check(p, req->data, req->data_len, time(NULL), &info);
    if (rc == PT_OK) {
        snprintf(o->serial, sizeof o->serial, "%s", info.serial);
        snprintf(o->note, sizeof o->note, "subject %s", info.subject);
        rc = hsmd_hsm_sign(s->hsm, i, info.md, req->data, req->data_len, &sig, &sig_len);
    }
    if (rc == PT_OK)
        rc = hsmd_issue_finish(p, req->data, req->data_len, info.md, sig, sig_len, &o->payload,
                               &o->payload_len);
    OPENSSL_free(sig);
    if (rc != PT_OK) {
        o->serial[0] = '\0';
        refuse_rc(o, rc);
    }
}

static void do_sign_tlv(hsmd_service *s, const hsmd_peer *peer, const hsmd_request *req, outcome *o)
{
    size_t i = 0;
    if (key_for(s, peer, req, &i, o) == NULL)
        return;
    tlv_file *f = NULL;
    uint8_t *covered = NULL, *sig = NULL;
    size_t covered_len = 0, sig_len = 0;
    pt_err rc = hsmd_tlv_check(&s->tlv[i], req->data, req->data_len, &f);
    if (rc == PT_OK) {
        snprintf(o->note, sizeof o->note, "%s, %zu records, %s",
                 f->filename != NULL ? f->filename : "(no FILENAME)", f->n_records,
                 tlv_digest_name(f->digest));
        rc = tlv_file_covered_bytes(f, &covered, &covered_len);
    }
    if (rc == PT_OK)
        rc = hsmd_hsm_sign(s->hsm, i, hsmd_policy_md(EVP_MD_get_type(tlv_digest_md(f->digest))),
                           covered, covered_len, &sig, &sig_len);
    if (rc == PT_OK)
        rc = hsmd_tlv_finish(f, sig, sig_len, &o->payload, &o->payload_len);
    OPENSSL_free(covered);
    OPENSSL_free(sig);
    tlv_file_free(f);
    if (rc != PT_OK)
        refuse_rc(o, rc);
}

/* ---- audit and answer ---- */

static void sha256_of(const uint8_t *p, size_t n, uint8_t out[SHA256_DIGEST_LENGTH])
{
    SHA256(p, n, out);
}

/* Write the record; a result that cannot be recorded is not returned. */
static void audit_and_reply(hsmd_service *s, const hsmd_peer *peer, const char *op, const char *key,
                            const uint8_t *input, size_t input_len, uint32_t id, outcome *o,
                            hsmd_reply *reply)
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    if (input != NULL)
        sha256_of(input, input_len, h);
    audit_entry e = {
        .uid = peer->uid,
        .pid = peer->pid,
        .op = op,
        .key = key != NULL && key[0] != '\0' ? key : NULL,
        .input_sha256 = input != NULL ? h : NULL,
        .result = o->code == 0          ? AUDIT_RESULT_OK
                  : is_refusal(o->code) ? AUDIT_RESULT_REFUSED
                                        : AUDIT_RESULT_ERROR,
        .refusal = is_refusal(o->code) ? hsmd_error_code_name(o->code) : NULL,
        .serial = o->code == 0 && o->serial[0] != '\0' ? o->serial : NULL,
        .note = o->code == 0 ? (o->note[0] ? o->note : NULL) : o->reason,
    };
    pt_err rc = hsmd_audit_record(s->committer, &e);
    if (rc != PT_OK) {
        atomic_fetch_add(&s->n.audit_failures, 1);
        pt_log_error("audit log: %s; the answer to uid %u pid %d (%s) is withheld",
                     pt_err_message(), (unsigned)peer->uid, (int)peer->pid, op);
        refuse(o, HSMD_ERR_INTERNAL,
               "hsmd could not write its audit log, so the result is withheld; see hsmd's log");
    }
    count(s, o->code);
    if (o->code != 0)
        pt_log_info("uid %u pid %d %s%s%s: %s: %s", (unsigned)peer->uid, (int)peer->pid, op,
                    key ? " " : "", key ? key : "", hsmd_error_code_name(o->code), o->reason);
    else
        pt_log_debug("uid %u pid %d %s%s%s: ok", (unsigned)peer->uid, (int)peer->pid, op,
                     key ? " " : "", key ? key : "");

    hsmd_response resp;
    memset(&resp, 0, sizeof resp);
    if (o->code == 0) {
        resp.type = HSMD_MSG_OK;
        resp.id = id;
        resp.payload = o->payload;
        resp.payload_len = o->payload_len;
    } else {
        hsmd_response_set_error(&resp, id, o->code, o->reason);
    }
    rc = hsmd_response_encode(&resp, &reply->body, &reply->len);
    if (rc != PT_OK) {
        pt_log_error("cannot encode an answer: %s", pt_err_message());
        hsmd_response_set_error(&resp, id, HSMD_ERR_INTERNAL, "hsmd could not encode its answer");
        if (hsmd_response_encode(&resp, &reply->body, &reply->len) != PT_OK)
            reply->close = true;
    }
    reply->close = reply->close || o->close;
    OPENSSL_free(o->payload);
    o->payload = NULL;
}

void hsmd_service_handle(hsmd_service *s, const hsmd_peer *peer, const uint8_t *body, size_t len,
                         hsmd_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    atomic_fetch_add(&s->n.requests, 1);
    outcome o;
    memset(&o, 0, sizeof o);
    hsmd_request req;
    pt_err rc = hsmd_request_parse(body, len, &req);
    if (rc != PT_OK) {
        /* A client that sends what it should not has lost track: answer and hang up. */
        o.close = true;
        if (rc == PT_ERR_UNSUPPORTED)
            refuse(&o, HSMD_ERR_UNSUPPORTED_VERSION,
                   "protocol version %u is not supported: this hsmd speaks version %d", req.version,
                   HSMD_PROTO_VERSION);
        else
            refuse(&o, HSMD_ERR_BAD_REQUEST, "malformed request: %s", pt_err_message());
        audit_and_reply(s, peer, "invalid", NULL, body, len, req.id, &o, reply);
        return;
    }
    switch (req.type) {
    case HSMD_MSG_STATUS:
        do_status(s, peer, &o);
        break;
    case HSMD_MSG_CERT:
        do_cert(s, peer, &req, &o);
        break;
    case HSMD_MSG_ISSUE:
        do_issue(s, peer, &req, &o);
        break;
    case HSMD_MSG_SIGN_TLV:
        do_sign_tlv(s, peer, &req, &o);
        break;
    default:
        o.close = true;
        refuse(&o, HSMD_ERR_BAD_REQUEST, "message type %u is not a request", (unsigned)req.type);
        break;
    }
    audit_and_reply(s, peer, hsmd_msg_type_name(req.type), req.label, req.data, req.data_len,
                    req.id, &o, reply);
}

void hsmd_service_frame_error(hsmd_service *s, const hsmd_peer *peer, const char *detail,
                              hsmd_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    atomic_fetch_add(&s->n.requests, 1);
    outcome o;
    memset(&o, 0, sizeof o);
    o.close = true;
    refuse(&o, HSMD_ERR_BAD_REQUEST, "bad frame: %s", detail);
    audit_and_reply(s, peer, "invalid", NULL, NULL, 0, 0, &o, reply);
}

void hsmd_service_busy(hsmd_service *s, const uint8_t *body, size_t len, hsmd_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    atomic_fetch_add(&s->n.requests, 1);
    atomic_fetch_add(&s->n.busy, 1);
    /* Only the fixed header is looked at: magic, version and type (6 bytes), then the id. */
    uint32_t id = 0;
    pt_reader r;
    pt_reader_init(&r, body, len);
    if (!pt_reader_skip(&r, 6) || !pt_reader_u32(&r, &id))
        id = 0;
    hsmd_response resp;
    hsmd_response_set_error(&resp, id, HSMD_ERR_BUSY, "hsmd's queue is full: try again shortly");
    if (hsmd_response_encode(&resp, &reply->body, &reply->len) != PT_OK)
        reply->close = true;
}
