#include "capf_msg.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bytes.h"
#include "der.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Names                                                                    */

static const char *const cmd_names[] = {
    [CAPF_CMD_AUTH_REQUEST] = "AUTH_REQUEST",
    [CAPF_CMD_AUTH_RESPONSE] = "AUTH_RESPONSE",
    [CAPF_CMD_KEY_GENERATE_REQUEST] = "KEY_GENERATE_REQUEST",
    [CAPF_CMD_KEY_GENERATE_RESPONSE] = "KEY_GENERATE_RESPONSE",
    [CAPF_CMD_ENCRYPT_RESPONSE] = "ENCRYPT_RESPONSE",
    [CAPF_CMD_ENCRYPT_REQUEST] = "ENCRYPT_REQUEST",
    [CAPF_CMD_DECRYPT_REQUEST] = "DECRYPT_REQUEST",
    [CAPF_CMD_DECRYPT_RESPONSE] = "DECRYPT_RESPONSE",
    [CAPF_CMD_STORE_CERTIFICATE_REQUEST] = "STORE_CERTIFICATE_REQUEST",
    [CAPF_CMD_STORE_CERTIFICATE_RESPONSE] = "STORE_CERTIFICATE_RESPONSE",
    [CAPF_CMD_FETCH_CERTIFICATE_REQUEST] = "FETCH_CERTIFICATE_REQUEST",
    [CAPF_CMD_FETCH_CERTIFICATE_RESPONSE] = "FETCH_CERTIFICATE_RESPONSE",
    [CAPF_CMD_DELETE_CERTIFICATE_REQUEST] = "DELETE_CERTIFICATE_REQUEST",
    [CAPF_CMD_DELETE_CERTIFICATE_RESPONSE] = "DELETE_CERTIFICATE_RESPONSE",
    [CAPF_CMD_END_SESSION] = "END_SESSION",
    [CAPF_CMD_RETRY_LATER] = "RETRY_LATER",
    [CAPF_CMD_REQUEST_IN_PROGRESS] = "REQUEST_IN_PROGRESS",
    [CAPF_CMD_STATUS_REQUEST] = "STATUS_REQUEST",
    [CAPF_CMD_STATUS_RESPONSE] = "STATUS_RESPONSE",
    [CAPF_CMD_ABORT_REQUEST] = "ABORT_REQUEST",
    [CAPF_CMD_ABORT_RESPONSE] = "ABORT_RESPONSE",
    [CAPF_CMD_SIGN_CERTIFICATE_REQUEST] = "SIGN_CERTIFICATE_REQUEST",
    [CAPF_CMD_SIGN_CERTIFICATE_RESPONSE] = "SIGN_CERTIFICATE_RESPONSE",
};

static const char *const el_names[] = {
    [CAPF_EL_REASON] = "REASON",
    [CAPF_EL_REASON_INFO] = "REASON_INFO",
    [CAPF_EL_CERTIFICATE_TYPE] = "CERTIFICATE_TYPE",
    [CAPF_EL_CERTIFICATE] = "CERTIFICATE",
    [CAPF_EL_CERTIFICATE_ID] = "CERTIFICATE_ID",
    [CAPF_EL_SIGNED_DATA] = "SIGNED_DATA",
    [CAPF_EL_VERSION] = "VERSION",
    [CAPF_EL_AUTH_TYPE] = "AUTH_TYPE",
    [CAPF_EL_PUBLIC_KEY] = "PUBLIC_KEY",
    [CAPF_EL_KEY_SIZE] = "KEY_SIZE",
    [CAPF_EL_PASSWORD] = "PASSWORD",
    [CAPF_EL_RETRY_DELAY] = "RETRY_DELAY",
    [CAPF_EL_DEVICE_NAME] = "DEVICE_NAME",
    [CAPF_EL_SUDI_DATA] = "SUDI_DATA",
    [CAPF_EL_KEY_TYPE] = "KEY_TYPE",
    [CAPF_EL_CURVE] = "CURVE",
    [CAPF_EL_DIGEST_TYPE] = "DIGEST_TYPE",
    [CAPF_EL_SHA2_SIGNED_DATA] = "SHA2_SIGNED_DATA",
};

const char *capf_cmd_name(uint8_t command)
{
    if (command < COUNT(cmd_names) && cmd_names[command] != NULL)
        return cmd_names[command];
    return "?";
}

const char *capf_el_name(uint8_t tag)
{
    if (tag < COUNT(el_names) && el_names[tag] != NULL)
        return el_names[tag];
    return "?";
}

bool capf_el_is_known(uint8_t tag)
{
    return tag < COUNT(el_names) && el_names[tag] != NULL;
}

const char *capf_reason_name(uint8_t reason)
{
    switch (reason) {
    case CAPF_REASON_NO_ACTION:
        return "NO_ACTION";
    case CAPF_REASON_OK:
        return "OK";
    case CAPF_REASON_INVALID_ELEMENT:
        return "INVALID_ELEMENT";
    case CAPF_REASON_UNKNOWN_DEVICE:
        return "UNKNOWN_DEVICE";
    default:
        return "?";
    }
}

/* Size of a fixed-size element's value (§6), 0 for variable-size ones. */
static size_t el_fixed_size(uint8_t tag)
{
    switch (tag) {
    case CAPF_EL_REASON:
    case CAPF_EL_CERTIFICATE_TYPE:
    case CAPF_EL_VERSION:
    case CAPF_EL_AUTH_TYPE:
    case CAPF_EL_KEY_TYPE:
    case CAPF_EL_CURVE:
        return 1;
    case CAPF_EL_KEY_SIZE:
        return 2;
    default:
        /* DIGEST_TYPE is only "presumably u8" (CAPF-U13): not enforced. */
        return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Layouts: the one declaration of every message (§4 order, §10 sets)       */

/* Rules are listed in §4 write order for their direction. */
/* Clients must not require AUTH_TYPE (§10.1). */
static const capf_el_rule auth_request_rules[] = {
    {CAPF_EL_VERSION, true},
    {CAPF_EL_AUTH_TYPE, false},
};
static const capf_el_rule auth_response_rules[] = {
    {CAPF_EL_REASON, true},
    {CAPF_EL_CERTIFICATE, false}, /* certificate authentication only */
    {CAPF_EL_SIGNED_DATA, false},
    {CAPF_EL_VERSION, true},
    {CAPF_EL_PASSWORD, false}, /* a missing one means "" (§9.2) */
    {CAPF_EL_DEVICE_NAME, true},
    {CAPF_EL_SUDI_DATA, false},
    {CAPF_EL_SHA2_SIGNED_DATA, false},
};
/* KEY_SIZE for RSA, CURVE for EC; the builders send the right one. */
static const capf_el_rule key_generate_request_rules[] = {
    {CAPF_EL_KEY_SIZE, false},
    {CAPF_EL_KEY_TYPE, true}, /* known clients abort without it (§10.2 step 5) */
    {CAPF_EL_CURVE, false},
};
/* PUBLIC_KEY is absent when key generation failed. */
static const capf_el_rule key_generate_response_rules[] = {
    {CAPF_EL_REASON, false},
    {CAPF_EL_PUBLIC_KEY, false},
};
static const capf_el_rule store_request_rules[] = {
    {CAPF_EL_CERTIFICATE_TYPE, true},
    {CAPF_EL_CERTIFICATE, true},
};
static const capf_el_rule reason_only_rules[] = {
    {CAPF_EL_REASON, true},
};
/* CERTIFICATE is absent when the phone has none. */
static const capf_el_rule fetch_response_rules[] = {
    {CAPF_EL_REASON, true},
    {CAPF_EL_CERTIFICATE, false},
};

/* The rules, n_rules and open fields of a layout. */
#define RULES(r)    (r), COUNT(r), false
#define NO_ELEMENTS NULL, 0, false
#define CALLER_SET  NULL, 0, true

static const capf_msg_layout layouts[] = {
    {CAPF_CMD_AUTH_REQUEST, CAPF_DIR_SERVER_TO_CLIENT, RULES(auth_request_rules)},
    {CAPF_CMD_AUTH_RESPONSE, CAPF_DIR_CLIENT_TO_SERVER, RULES(auth_response_rules)},
    {CAPF_CMD_KEY_GENERATE_REQUEST, CAPF_DIR_SERVER_TO_CLIENT, RULES(key_generate_request_rules)},
    {CAPF_CMD_KEY_GENERATE_RESPONSE, CAPF_DIR_CLIENT_TO_SERVER, RULES(key_generate_response_rules)},
    {CAPF_CMD_STORE_CERTIFICATE_REQUEST, CAPF_DIR_SERVER_TO_CLIENT, RULES(store_request_rules)},
    {CAPF_CMD_STORE_CERTIFICATE_RESPONSE, CAPF_DIR_CLIENT_TO_SERVER, RULES(reason_only_rules)},
    {CAPF_CMD_FETCH_CERTIFICATE_REQUEST, CAPF_DIR_SERVER_TO_CLIENT, NO_ELEMENTS},
    {CAPF_CMD_FETCH_CERTIFICATE_RESPONSE, CAPF_DIR_CLIENT_TO_SERVER, RULES(fetch_response_rules)},
    {CAPF_CMD_DELETE_CERTIFICATE_REQUEST, CAPF_DIR_SERVER_TO_CLIENT, NO_ELEMENTS},
    {CAPF_CMD_DELETE_CERTIFICATE_RESPONSE, CAPF_DIR_CLIENT_TO_SERVER, RULES(reason_only_rules)},
    {CAPF_CMD_END_SESSION, CAPF_DIR_SERVER_TO_CLIENT, RULES(reason_only_rules)},
    /* Direction presumed, elements unknown (CAPF-U13): the caller chooses them. */
    {CAPF_CMD_RETRY_LATER, CAPF_DIR_SERVER_TO_CLIENT, CALLER_SET},
    {CAPF_CMD_REQUEST_IN_PROGRESS, CAPF_DIR_CLIENT_TO_SERVER, NO_ELEMENTS},
};

const capf_msg_layout *capf_msg_layout_find(uint8_t command)
{
    for (size_t i = 0; i < COUNT(layouts); i++)
        if (layouts[i].command == command)
            return &layouts[i];
    return NULL;
}

static const capf_el_rule *layout_rule(const capf_msg_layout *lay, uint8_t tag)
{
    for (size_t i = 0; i < lay->n_rules; i++)
        if (lay->rules[i].tag == tag)
            return &lay->rules[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

/* A set of tags that remembers the order of first insertion. */
typedef struct tag_list {
    uint8_t tags[256];
    uint16_t n;
    bool seen[256];
} tag_list;

static void tag_list_add(tag_list *l, uint8_t tag)
{
    if (l->seen[tag])
        return;
    l->seen[tag] = true;
    l->tags[l->n++] = tag;
}

typedef struct el_slot {
    bool present;
    uint16_t len;
    size_t off; /* into body */
} el_slot;

struct capf_msg {
    capf_header hdr;
    uint8_t *body;
    size_t body_len;
    el_slot el[256];
    tag_list unknown, unexpected, oversized, repeated;
};

pt_err capf_msg_header_parse(const uint8_t hdr[CAPF_HEADER_LEN], capf_header *out)
{
    pt_reader r;
    uint8_t proto = 0;
    memset(out, 0, sizeof *out);
    pt_reader_init(&r, hdr, CAPF_HEADER_LEN);
    pt_reader_u8(&r, &proto);
    pt_reader_u8(&r, &out->command);
    pt_reader_u32(&r, &out->session_id);
    pt_reader_u16(&r, &out->length);
    if (proto != CAPF_PROTOCOL_ID)
        return pt_fail(PT_ERR_PROTOCOL,
                       "CAPF header: PROTOCOL_ID is 0x%02x, not 0x55; the peer does not speak "
                       "CAPF, end the session",
                       proto);
    if (out->length > CAPF_MSG_READ_MAX - CAPF_HEADER_LEN)
        return pt_fail(PT_ERR_LIMIT,
                       "CAPF header: %s announces %u bytes of elements, more than the %d "
                       "accepted; end the session",
                       capf_cmd_name(out->command), out->length,
                       CAPF_MSG_READ_MAX - CAPF_HEADER_LEN);
    return PT_OK;
}

/* Record one element that has passed the bounds checks. */
static pt_err msg_accept_element(capf_msg *m, const capf_msg_layout *lay, uint8_t tag, size_t off,
                                 uint16_t len)
{
    if (!capf_el_is_known(tag)) {
        tag_list_add(&m->unknown, tag); /* §4: skip by length, log */
        return PT_OK;
    }
    size_t fixed = el_fixed_size(tag);
    if (len < fixed)
        return pt_fail(PT_ERR_FORMAT, "offset %zu: element %s has %u byte(s), needs %zu",
                       CAPF_HEADER_LEN + off - 3, capf_el_name(tag), len, fixed);
    if (fixed != 0 && len > fixed)
        tag_list_add(&m->oversized, tag);
    if (lay != NULL && !lay->open && layout_rule(lay, tag) == NULL)
        tag_list_add(&m->unexpected, tag);
    if (m->el[tag].present)
        tag_list_add(&m->repeated, tag);
    m->el[tag] = (el_slot){.present = true, .len = len, .off = off};
    return PT_OK;
}

static pt_err msg_parse_elements(capf_msg *m)
{
    const capf_msg_layout *lay = capf_msg_layout_find(m->hdr.command);
    pt_reader r;
    pt_reader_init(&r, m->body, m->body_len);
    while (pt_reader_remaining(&r) > 0) {
        size_t at = pt_reader_offset(&r);
        size_t left = pt_reader_remaining(&r);
        uint8_t tag = 0;
        uint16_t len = 0;
        const uint8_t *value = NULL;
        if (!pt_reader_u8(&r, &tag) || !pt_reader_u16(&r, &len))
            return pt_fail(PT_ERR_FORMAT, "offset %zu: %zu byte(s) left, too few for an element",
                           CAPF_HEADER_LEN + at, left);
        if (!pt_reader_bytes(&r, len, &value))
            return pt_fail(PT_ERR_FORMAT,
                           "offset %zu: element %u (%s) of %u bytes crosses the end of the "
                           "message (%zu bytes left)",
                           CAPF_HEADER_LEN + at, tag, capf_el_name(tag), len, left - 3);
        pt_err rc = msg_accept_element(m, lay, tag, at + 3, len);
        if (rc != PT_OK)
            return rc;
    }
    return PT_OK;
}

pt_err capf_msg_parse_body(const capf_header *hdr, const uint8_t *body, size_t len, capf_msg **out)
{
    *out = NULL;
    if (len != hdr->length)
        return pt_fail(PT_ERR_FORMAT, "CAPF %s: header says %u bytes of elements, got %zu",
                       capf_cmd_name(hdr->command), hdr->length, len);
    if (len > CAPF_MSG_READ_MAX - CAPF_HEADER_LEN)
        return pt_fail(PT_ERR_LIMIT, "CAPF message body of %zu bytes is over the limit", len);
    capf_msg *m = OPENSSL_zalloc(sizeof *m);
    if (m == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    m->hdr = *hdr;
    m->body_len = len;
    m->body = OPENSSL_malloc(len ? len : 1);
    if (m->body == NULL) {
        capf_msg_free(m);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    if (len > 0)
        memcpy(m->body, body, len);
    pt_err rc = msg_parse_elements(m);
    if (rc != PT_OK) {
        capf_msg_free(m);
        return pt_err_context(rc, "CAPF %s", capf_cmd_name(hdr->command));
    }
    *out = m;
    return PT_OK;
}

pt_err capf_msg_parse(const uint8_t *data, size_t len, capf_msg **out)
{
    capf_header hdr;
    *out = NULL;
    if (len < CAPF_HEADER_LEN)
        return pt_fail(PT_ERR_FORMAT, "CAPF message of %zu bytes is shorter than its header", len);
    pt_err rc = capf_msg_header_parse(data, &hdr);
    if (rc != PT_OK)
        return rc;
    return capf_msg_parse_body(&hdr, data + CAPF_HEADER_LEN, len - CAPF_HEADER_LEN, out);
}

void capf_msg_free(capf_msg *m)
{
    if (m == NULL)
        return;
    OPENSSL_clear_free(m->body, m->body_len ? m->body_len : 1);
    OPENSSL_free(m);
}

uint8_t capf_msg_command(const capf_msg *m)
{
    return m->hdr.command;
}

uint32_t capf_msg_session_id(const capf_msg *m)
{
    return m->hdr.session_id;
}

bool capf_msg_has(const capf_msg *m, uint8_t tag)
{
    return m->el[tag].present;
}

const uint8_t *capf_msg_unknown_tags(const capf_msg *m, size_t *n)
{
    *n = m->unknown.n;
    return m->unknown.tags;
}

const uint8_t *capf_msg_unexpected_tags(const capf_msg *m, size_t *n)
{
    *n = m->unexpected.n;
    return m->unexpected.tags;
}

const uint8_t *capf_msg_oversized_tags(const capf_msg *m, size_t *n)
{
    *n = m->oversized.n;
    return m->oversized.tags;
}

const uint8_t *capf_msg_repeated_tags(const capf_msg *m, size_t *n)
{
    *n = m->repeated.n;
    return m->repeated.tags;
}

static void notes_append(char *out, size_t outlen, const char *label, const tag_list *l)
{
    if (l->n == 0)
        return;
    size_t used = strlen(out);
    int w = snprintf(out + used, outlen - used, "%s%s ", used ? "; " : "", label);
    for (uint16_t i = 0; i < l->n && w >= 0; i++) {
        used = strlen(out);
        w = snprintf(out + used, outlen - used, "%s%u", i ? "," : "", l->tags[i]);
    }
}

char *capf_msg_notes_format(const capf_msg *m, char *out, size_t outlen)
{
    if (outlen == 0)
        return out;
    out[0] = '\0';
    notes_append(out, outlen, "unknown tags skipped", &m->unknown);
    notes_append(out, outlen, "unexpected tags", &m->unexpected);
    notes_append(out, outlen, "fixed-size tags longer than their type", &m->oversized);
    notes_append(out, outlen, "repeated tags (last kept)", &m->repeated);
    return out;
}

/* The value of an element, or PT_ERR_NOT_FOUND. */
static pt_err msg_value(const capf_msg *m, uint8_t tag, const uint8_t **p, size_t *len)
{
    *p = NULL;
    *len = 0;
    if (!m->el[tag].present)
        return pt_fail(PT_ERR_NOT_FOUND, "CAPF %s has no %s element", capf_cmd_name(m->hdr.command),
                       capf_el_name(tag));
    *p = m->body + m->el[tag].off;
    *len = m->el[tag].len;
    return PT_OK;
}

pt_err capf_msg_get_bytes(const capf_msg *m, uint8_t tag, const uint8_t **p, size_t *len)
{
    return msg_value(m, tag, p, len);
}

pt_err capf_msg_get_u8(const capf_msg *m, uint8_t tag, uint8_t *v)
{
    const uint8_t *p;
    size_t len;
    *v = 0;
    pt_err rc = msg_value(m, tag, &p, &len);
    if (rc != PT_OK)
        return rc;
    if (len < 1)
        return pt_fail(PT_ERR_FORMAT, "CAPF element %s is empty, expected 1 byte",
                       capf_el_name(tag));
    *v = p[0]; /* a longer value was reported at parse; known readers use byte 0 */
    return PT_OK;
}

pt_err capf_msg_get_u16(const capf_msg *m, uint8_t tag, uint16_t *v)
{
    const uint8_t *p;
    size_t len;
    *v = 0;
    pt_err rc = msg_value(m, tag, &p, &len);
    if (rc != PT_OK)
        return rc;
    if (len < 2)
        return pt_fail(PT_ERR_FORMAT, "CAPF element %s has %zu byte(s), expected 2",
                       capf_el_name(tag), len);
    *v = (uint16_t)((unsigned)p[0] << 8 | p[1]);
    return PT_OK;
}

pt_err capf_msg_get_string(const capf_msg *m, uint8_t tag, const char **s, size_t *len)
{
    const uint8_t *p;
    size_t n;
    *s = NULL;
    *len = 0;
    pt_err rc = msg_value(m, tag, &p, &n);
    if (rc != PT_OK)
        return rc;
    /* The NUL is part of what is signed (§9.3 blob), so it must be there. */
    if (n == 0 || p[n - 1] != 0x00)
        return pt_fail(PT_ERR_FORMAT, "CAPF element %s is not NUL-terminated", capf_el_name(tag));
    if (memchr(p, 0x00, n - 1) != NULL)
        return pt_fail(PT_ERR_FORMAT, "CAPF element %s has a NUL inside the string",
                       capf_el_name(tag));
    *s = (const char *)p;
    *len = n - 1;
    return PT_OK;
}

enum { CERT_WRAPPER_LEN = 5 };

pt_err capf_msg_get_certificate(const capf_msg *m, const uint8_t **der, size_t *len)
{
    const uint8_t *p;
    size_t n;
    *der = NULL;
    *len = 0;
    pt_err rc = msg_value(m, CAPF_EL_CERTIFICATE, &p, &n);
    if (rc != PT_OK)
        return rc;
    if (n <= CERT_WRAPPER_LEN)
        return pt_fail(PT_ERR_FORMAT, "CAPF CERTIFICATE of %zu bytes holds no certificate", n);
    /* Bytes 0-4 (inner tag, length, type) are ignored like known readers do (CAPF-U9). */
    pt_reader r, contents;
    uint8_t tag;
    pt_reader_init(&r, p + CERT_WRAPPER_LEN, n - CERT_WRAPPER_LEN);
    rc = pt_der_read(&r, &tag, &contents, NULL, NULL);
    if (rc != PT_OK)
        return pt_err_context(rc, "CAPF CERTIFICATE");
    if (tag != 0x30 || !pt_reader_done(&r))
        return pt_fail(PT_ERR_FORMAT,
                       "CAPF CERTIFICATE: value[5..] is not exactly one DER SEQUENCE");
    *der = p + CERT_WRAPPER_LEN;
    *len = n - CERT_WRAPPER_LEN;
    return PT_OK;
}

pt_err capf_msg_get_sha2_signed_data(const capf_msg *m, capf_sha2_signed *out)
{
    const uint8_t *p;
    size_t n;
    uint16_t sig_len = 0;
    memset(out, 0, sizeof *out);
    pt_err rc = msg_value(m, CAPF_EL_SHA2_SIGNED_DATA, &p, &n);
    if (rc != PT_OK)
        return rc;
    pt_reader r;
    pt_reader_init(&r, p, n);
    pt_reader_u8(&r, &out->digest);
    pt_reader_u16(&r, &sig_len);
    pt_reader_bytes(&r, sig_len, &out->sig);
    if (!pt_reader_done(&r)) {
        memset(out, 0, sizeof *out);
        return pt_fail(PT_ERR_FORMAT,
                       "CAPF SHA2_SIGNED_DATA of %zu bytes is not `code, u16 L, L bytes`", n);
    }
    out->sig_len = sig_len;
    return PT_OK;
}

/* One SUDI item: u8 type, u16 length, bytes. */
static bool sudi_item(pt_reader *r, uint8_t *type, const uint8_t **p, size_t *len)
{
    uint16_t n = 0;
    bool ok = pt_reader_u8(r, type) && pt_reader_u16(r, &n) && pt_reader_bytes(r, n, p);
    *len = ok ? n : 0;
    return ok;
}

pt_err capf_msg_get_sudi(const capf_msg *m, capf_sudi *out)
{
    const uint8_t *p;
    size_t n;
    memset(out, 0, sizeof *out);
    pt_err rc = msg_value(m, CAPF_EL_SUDI_DATA, &p, &n);
    if (rc != PT_OK)
        return rc;
    pt_reader r;
    pt_reader_init(&r, p, n);
    bool ok = sudi_item(&r, &out->cert_type, &out->cert, &out->cert_len) &&
              sudi_item(&r, &out->sha1_type, &out->sha1_sig, &out->sha1_sig_len) &&
              sudi_item(&r, &out->sha512_type, &out->sha512_sig, &out->sha512_sig_len);
    if (!ok || !pt_reader_done(&r)) {
        memset(out, 0, sizeof *out);
        return pt_fail(PT_ERR_FORMAT, "CAPF SUDI_DATA of %zu bytes is not exactly three items", n);
    }
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

void capf_msg_buf_free(uint8_t *buf, size_t len)
{
    OPENSSL_clear_free(buf, len ? len : 1);
}

static const capf_el *els_find(const capf_el *els, size_t n, uint8_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (els[i].tag == tag)
            return &els[i];
    return NULL;
}

/* Strict in what we write: every element allowed, sized right, at most once. */
static pt_err encode_check(const capf_msg_layout *lay, const capf_el *els, size_t n)
{
    const char *cmd = capf_cmd_name(lay->command);
    for (size_t i = 0; i < n; i++) {
        uint8_t tag = els[i].tag;
        bool allowed = lay->open ? capf_el_is_known(tag) : layout_rule(lay, tag) != NULL;
        if (!allowed)
            return pt_fail(PT_ERR_USAGE, "CAPF %s may not carry element %u (%s)", cmd, tag,
                           capf_el_name(tag));
        if (els_find(els, i, tag) != NULL)
            return pt_fail(PT_ERR_USAGE, "CAPF %s: element %s given twice", cmd, capf_el_name(tag));
        if (els[i].len > CAPF_EL_VALUE_MAX)
            return pt_fail(PT_ERR_LIMIT, "CAPF %s: element %s of %zu bytes exceeds %d", cmd,
                           capf_el_name(tag), els[i].len, CAPF_EL_VALUE_MAX);
        if (els[i].value == NULL && els[i].len > 0)
            return pt_fail(PT_ERR_USAGE, "CAPF %s: element %s has no value", cmd,
                           capf_el_name(tag));
        size_t fixed = el_fixed_size(tag);
        if (fixed != 0 && els[i].len != fixed)
            return pt_fail(PT_ERR_USAGE, "CAPF %s: element %s must be %zu byte(s), not %zu", cmd,
                           capf_el_name(tag), fixed, els[i].len);
    }
    for (size_t i = 0; i < lay->n_rules; i++)
        if (lay->rules[i].required && els_find(els, n, lay->rules[i].tag) == NULL)
            return pt_fail(PT_ERR_USAGE, "CAPF %s needs element %s", cmd,
                           capf_el_name(lay->rules[i].tag));
    return PT_OK;
}

static void write_element(pt_writer *w, const capf_el *el)
{
    pt_writer_u8(w, el->tag);
    pt_writer_u16(w, (uint16_t)el->len);
    pt_writer_bytes(w, el->value, el->len);
}

pt_err capf_msg_encode(uint8_t command, uint32_t session_id, const capf_el *els, size_t n,
                       uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (els == NULL && n > 0)
        return pt_fail(PT_ERR_USAGE, "CAPF message: %zu elements but no array", n);
    const capf_msg_layout *lay = capf_msg_layout_find(command);
    if (lay == NULL)
        return pt_fail(PT_ERR_UNSUPPORTED, "CAPF command %u (%s) has no known layout", command,
                       capf_cmd_name(command));
    pt_err rc = encode_check(lay, els, n);
    if (rc != PT_OK)
        return rc;

    pt_writer w;
    size_t len_at = 0;
    pt_writer_init(&w, CAPF_MSG_MAX);
    pt_writer_u8(&w, CAPF_PROTOCOL_ID);
    pt_writer_u8(&w, command);
    pt_writer_u32(&w, session_id);
    pt_writer_reserve(&w, 2, &len_at);
    if (lay->open) {
        for (size_t i = 0; i < n; i++)
            write_element(&w, &els[i]);
    } else {
        for (size_t i = 0; i < lay->n_rules; i++) {
            const capf_el *el = els_find(els, n, lay->rules[i].tag);
            if (el != NULL)
                write_element(&w, el);
        }
    }
    /* Cannot overflow u16: the writer stops at CAPF_MSG_MAX. */
    pt_writer_patch_u16(&w, len_at, (uint16_t)(pt_writer_len(&w) - CAPF_HEADER_LEN));
    rc = pt_writer_finish(&w, buf, len);
    if (rc != PT_OK)
        return pt_err_context(rc, "CAPF %s", capf_cmd_name(command));
    return PT_OK;
}

pt_err capf_cert_wrap(const uint8_t *der, size_t der_len, uint16_t type, uint8_t **out,
                      size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (der == NULL || der_len == 0)
        return pt_fail(PT_ERR_USAGE, "no certificate to wrap");
    if (der_len > CAPF_EL_VALUE_MAX - CERT_WRAPPER_LEN)
        return pt_fail(PT_ERR_LIMIT, "certificate of %zu bytes is too large for CAPF", der_len);
    pt_writer w;
    pt_writer_init(&w, CAPF_EL_VALUE_MAX);
    pt_writer_u8(&w, 0x01);                     /* inner tag */
    pt_writer_u16(&w, (uint16_t)(der_len + 2)); /* N + 2 */
    pt_writer_u16(&w, type);                    /* `00 01` for an LSC */
    pt_writer_bytes(&w, der, der_len);
    return pt_writer_finish(&w, out, out_len);
}

/* ---- server → client builders ---- */

pt_err capf_msg_build_auth_request(uint32_t sid, uint8_t **buf, size_t *len)
{
    const uint8_t version = CAPF_VERSION, auth_type = CAPF_AUTH_NONE;
    const capf_el els[] = {
        {CAPF_EL_VERSION, &version, 1},
        {CAPF_EL_AUTH_TYPE, &auth_type, 1}, /* servers send 0 (§7.2) */
    };
    return capf_msg_encode(CAPF_CMD_AUTH_REQUEST, sid, els, COUNT(els), buf, len);
}

pt_err capf_msg_build_key_generate_request_rsa(uint32_t sid, unsigned bits, uint8_t **buf,
                                               size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (bits != 512 && bits != 1024 && bits != 2048 && bits != 3072 && bits != 4096)
        return pt_fail(PT_ERR_USAGE,
                       "RSA key size %u is not one of 512, 1024, 2048, 3072, 4096 bits", bits);
    const uint8_t size[2] = {(uint8_t)(bits >> 8), (uint8_t)bits};
    const uint8_t type = CAPF_KEY_RSA;
    const capf_el els[] = {
        {CAPF_EL_KEY_SIZE, size, 2},
        {CAPF_EL_KEY_TYPE, &type, 1},
    };
    return capf_msg_encode(CAPF_CMD_KEY_GENERATE_REQUEST, sid, els, COUNT(els), buf, len);
}

pt_err capf_msg_build_key_generate_request_ec(uint32_t sid, uint8_t curve, uint8_t **buf,
                                              size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (curve > CAPF_CURVE_P521)
        return pt_fail(PT_ERR_USAGE, "curve code %u is not P-256 (0), P-384 (1) or P-521 (2)",
                       curve);
    const uint8_t type = CAPF_KEY_EC;
    const capf_el els[] = {
        {CAPF_EL_KEY_TYPE, &type, 1},
        {CAPF_EL_CURVE, &curve, 1},
    };
    return capf_msg_encode(CAPF_CMD_KEY_GENERATE_REQUEST, sid, els, COUNT(els), buf, len);
}

pt_err capf_msg_build_store_certificate_request(uint32_t sid, const uint8_t *der, size_t der_len,
                                                uint8_t **buf, size_t *len)
{
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    *buf = NULL;
    *len = 0;
    pt_err rc = capf_cert_wrap(der, der_len, CAPF_CERT_LSC, &wrapped, &wrapped_len);
    if (rc != PT_OK)
        return rc;
    const uint8_t type = CAPF_CERT_LSC;
    const capf_el els[] = {
        {CAPF_EL_CERTIFICATE_TYPE, &type, 1},
        {CAPF_EL_CERTIFICATE, wrapped, wrapped_len},
    };
    rc = capf_msg_encode(CAPF_CMD_STORE_CERTIFICATE_REQUEST, sid, els, COUNT(els), buf, len);
    OPENSSL_free(wrapped);
    return rc;
}

pt_err capf_msg_build_fetch_request(uint32_t sid, uint8_t **buf, size_t *len)
{
    return capf_msg_encode(CAPF_CMD_FETCH_CERTIFICATE_REQUEST, sid, NULL, 0, buf, len);
}

pt_err capf_msg_build_delete_request(uint32_t sid, uint8_t **buf, size_t *len)
{
    return capf_msg_encode(CAPF_CMD_DELETE_CERTIFICATE_REQUEST, sid, NULL, 0, buf, len);
}

static pt_err build_reason_only(uint8_t command, uint32_t sid, uint8_t reason, uint8_t **buf,
                                size_t *len)
{
    const capf_el el = {CAPF_EL_REASON, &reason, 1};
    return capf_msg_encode(command, sid, &el, 1, buf, len);
}

pt_err capf_msg_build_end_session(uint32_t sid, uint8_t reason, uint8_t **buf, size_t *len)
{
    return build_reason_only(CAPF_CMD_END_SESSION, sid, reason, buf, len);
}

pt_err capf_msg_build_retry_later(uint32_t sid, const capf_el *els, size_t n, uint8_t **buf,
                                  size_t *len)
{
    return capf_msg_encode(CAPF_CMD_RETRY_LATER, sid, els, n, buf, len);
}

/* ---- client → server builders ---- */

/* §9.1: names are printable; 64 characters is what servers must accept. */
static pt_err check_device_name(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 64)
        return pt_fail(PT_ERR_USAGE, "device name must have 1 to 64 characters");
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x20 || name[i] > 0x7e)
            return pt_fail(PT_ERR_USAGE, "device name has a non-printable character at %zu", i);
    return PT_OK;
}

/* The elements both AUTH_RESPONSE forms share; returns how many were set. */
static size_t auth_response_common(capf_el *els, const uint8_t *reason, const uint8_t *version,
                                   const char *device_name, const char *password)
{
    size_t n = 0;
    els[n++] = (capf_el){CAPF_EL_REASON, reason, 1};
    els[n++] = (capf_el){CAPF_EL_VERSION, version, 1};
    els[n++] =
        (capf_el){CAPF_EL_DEVICE_NAME, (const uint8_t *)device_name, strlen(device_name) + 1};
    if (password != NULL)
        els[n++] = (capf_el){CAPF_EL_PASSWORD, (const uint8_t *)password, strlen(password) + 1};
    return n;
}

pt_err capf_msg_build_auth_response(uint32_t sid, const char *device_name, const char *password,
                                    uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    pt_err rc = check_device_name(device_name);
    if (rc != PT_OK)
        return rc;
    const uint8_t reason = CAPF_REASON_OK, version = CAPF_VERSION;
    capf_el els[4];
    size_t n = auth_response_common(els, &reason, &version, device_name, password);
    return capf_msg_encode(CAPF_CMD_AUTH_RESPONSE, sid, els, n, buf, len);
}

/* SHA2_SIGNED_DATA value (§8.2): 03, u16 L, signature. */
static pt_err sha2_value(const uint8_t *sig, size_t sig_len, uint8_t **out, size_t *out_len)
{
    pt_writer w;
    pt_writer_init(&w, CAPF_EL_VALUE_MAX);
    if (sig_len > CAPF_EL_VALUE_MAX - 3)
        pt_writer_set_failed(&w);
    pt_writer_u8(&w, CAPF_DIGEST_SHA512);
    pt_writer_u16(&w, (uint16_t)sig_len);
    pt_writer_bytes(&w, sig, sig_len);
    return pt_writer_finish(&w, out, out_len);
}

/* SUDI_DATA value (§8.3): items 00 cert, 01 SHA-1 signature, 03 SHA-512 signature. */
static pt_err sudi_value(const capf_cert_auth *a, uint8_t **out, size_t *out_len)
{
    const struct {
        uint8_t type;
        const uint8_t *p;
        size_t n;
    } items[] = {
        {0x00, a->sudi_cert, a->sudi_cert_len},
        {CAPF_DIGEST_SHA1, a->sudi_sha1_sig, a->sudi_sha1_sig_len},
        {CAPF_DIGEST_SHA512, a->sudi_sha512_sig, a->sudi_sha512_sig_len},
    };
    pt_writer w;
    pt_writer_init(&w, CAPF_EL_VALUE_MAX);
    for (size_t i = 0; i < COUNT(items); i++) {
        if (items[i].n > CAPF_EL_VALUE_MAX)
            pt_writer_set_failed(&w);
        pt_writer_u8(&w, items[i].type);
        pt_writer_u16(&w, (uint16_t)items[i].n);
        pt_writer_bytes(&w, items[i].p, items[i].n);
    }
    return pt_writer_finish(&w, out, out_len);
}

static pt_err check_cert_auth(const capf_cert_auth *a)
{
    pt_err rc = check_device_name(a->device_name);
    if (rc != PT_OK)
        return rc;
    if (a->cert == NULL || a->cert_len == 0 || a->signed_data == NULL || a->signed_data_len == 0 ||
        a->sha2_sig == NULL || a->sha2_sig_len == 0)
        return pt_fail(PT_ERR_USAGE, "certificate authentication needs the certificate, "
                                     "SIGNED_DATA and SHA2_SIGNED_DATA (§9.3)");
    if (a->sudi_cert != NULL &&
        (a->sudi_cert_len == 0 || a->sudi_sha1_sig == NULL || a->sudi_sha1_sig_len == 0 ||
         a->sudi_sha512_sig == NULL || a->sudi_sha512_sig_len == 0))
        return pt_fail(PT_ERR_USAGE, "SUDI_DATA needs the SUDI certificate and both signatures");
    return PT_OK;
}

pt_err capf_msg_build_auth_response_cert(uint32_t sid, const capf_cert_auth *a, uint8_t **buf,
                                         size_t *len)
{
    uint8_t *cert = NULL, *sha2 = NULL, *sudi = NULL;
    size_t cert_len = 0, sha2_len = 0, sudi_len = 0;
    *buf = NULL;
    *len = 0;
    pt_err rc = check_cert_auth(a);
    if (rc == PT_OK)
        rc = capf_cert_wrap(a->cert, a->cert_len, CAPF_CERT_LSC, &cert, &cert_len);
    if (rc == PT_OK)
        rc = sha2_value(a->sha2_sig, a->sha2_sig_len, &sha2, &sha2_len);
    if (rc == PT_OK && a->sudi_cert != NULL)
        rc = sudi_value(a, &sudi, &sudi_len);
    if (rc != PT_OK)
        goto out;

    const uint8_t reason = CAPF_REASON_OK, version = CAPF_VERSION;
    capf_el els[8];
    size_t n = auth_response_common(els, &reason, &version, a->device_name, a->password);
    els[n++] = (capf_el){CAPF_EL_CERTIFICATE, cert, cert_len};
    els[n++] = (capf_el){CAPF_EL_SIGNED_DATA, a->signed_data, a->signed_data_len};
    els[n++] = (capf_el){CAPF_EL_SHA2_SIGNED_DATA, sha2, sha2_len};
    if (sudi != NULL)
        els[n++] = (capf_el){CAPF_EL_SUDI_DATA, sudi, sudi_len};
    rc = capf_msg_encode(CAPF_CMD_AUTH_RESPONSE, sid, els, n, buf, len);
out:
    OPENSSL_free(cert);
    OPENSSL_free(sha2);
    OPENSSL_free(sudi);
    return rc;
}

pt_err capf_msg_build_request_in_progress(uint32_t sid, uint8_t **buf, size_t *len)
{
    return capf_msg_encode(CAPF_CMD_REQUEST_IN_PROGRESS, sid, NULL, 0, buf, len);
}

pt_err capf_msg_build_key_generate_response(uint32_t sid, const uint8_t *spki, size_t spki_len,
                                            int reason, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (reason != CAPF_NO_REASON && (reason < 0 || reason > 255))
        return pt_fail(PT_ERR_USAGE, "reason %d is not a byte", reason);
    const uint8_t reason_byte = (uint8_t)reason;
    capf_el els[2];
    size_t n = 0;
    if (reason != CAPF_NO_REASON)
        els[n++] = (capf_el){CAPF_EL_REASON, &reason_byte, 1};
    if (spki != NULL)
        els[n++] = (capf_el){CAPF_EL_PUBLIC_KEY, spki, spki_len};
    return capf_msg_encode(CAPF_CMD_KEY_GENERATE_RESPONSE, sid, els, n, buf, len);
}

pt_err capf_msg_build_store_certificate_response(uint32_t sid, uint8_t reason, uint8_t **buf,
                                                 size_t *len)
{
    return build_reason_only(CAPF_CMD_STORE_CERTIFICATE_RESPONSE, sid, reason, buf, len);
}

pt_err capf_msg_build_fetch_response(uint32_t sid, uint8_t reason, const uint8_t *der,
                                     size_t der_len, uint8_t **buf, size_t *len)
{
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    *buf = NULL;
    *len = 0;
    capf_el els[2];
    size_t n = 0;
    els[n++] = (capf_el){CAPF_EL_REASON, &reason, 1};
    if (der != NULL) {
        /* Known peers write `00 01` whatever the certificate is (CAPF-U9). */
        pt_err rc = capf_cert_wrap(der, der_len, CAPF_CERT_LSC, &wrapped, &wrapped_len);
        if (rc != PT_OK)
            return rc;
        els[n++] = (capf_el){CAPF_EL_CERTIFICATE, wrapped, wrapped_len};
    }
    pt_err rc = capf_msg_encode(CAPF_CMD_FETCH_CERTIFICATE_RESPONSE, sid, els, n, buf, len);
    OPENSSL_free(wrapped);
    return rc;
}

pt_err capf_msg_build_delete_response(uint32_t sid, uint8_t reason, uint8_t **buf, size_t *len)
{
    return build_reason_only(CAPF_CMD_DELETE_CERTIFICATE_RESPONSE, sid, reason, buf, len);
}
