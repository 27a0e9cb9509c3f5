#include "hsmd_proto.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bytes.h"

/* Field tags: one namespace for every message, so a tag means one thing. */
enum {
    TAG_KEY_LABEL = 0x01,
    TAG_TBS = 0x02,
    TAG_FILE = 0x03,
    TAG_PAYLOAD = 0x10,
    TAG_ERROR_CODE = 0x20,
    TAG_REASON = 0x21,
};

/* Bytes before a field's value: tag u8, length u32. */
enum { FIELD_HEADER_LEN = 5 };

typedef enum field_type {
    FIELD_LABEL, /* hsmd_label_valid */
    FIELD_BYTES, /* opaque */
    FIELD_TEXT,  /* UTF-8 without control characters */
    FIELD_U16,   /* big-endian, exactly 2 bytes */
} field_type;

typedef struct field_spec {
    uint8_t tag;
    field_type type;
    bool required;
    size_t min, max;
    const char *name;
} field_spec;

/* The most fields any message has; field_value arrays are this long. */
enum { MSG_FIELDS_MAX = 2 };

typedef struct msg_spec {
    uint8_t type;
    bool request;
    const field_spec *fields; /* ascending tags */
    size_t n_fields;
} msg_spec;

typedef struct field_value {
    bool present;
    const uint8_t *p;
    size_t len;
} field_value;

static const field_spec cert_fields[] = {
    {TAG_KEY_LABEL, FIELD_LABEL, true, 1, HSMD_LABEL_MAX, "key label"},
};
static const field_spec issue_fields[] = {
    {TAG_KEY_LABEL, FIELD_LABEL, true, 1, HSMD_LABEL_MAX, "key label"},
    {TAG_TBS, FIELD_BYTES, true, 1, HSMD_TBS_MAX, "TBSCertificate"},
};
static const field_spec sign_tlv_fields[] = {
    {TAG_KEY_LABEL, FIELD_LABEL, true, 1, HSMD_LABEL_MAX, "key label"},
    {TAG_FILE, FIELD_BYTES, true, 1, HSMD_FILE_MAX, "file"},
};
static const field_spec ok_fields[] = {
    {TAG_PAYLOAD, FIELD_BYTES, true, 0, HSMD_PAYLOAD_MAX, "payload"},
};
/* An empty reason is encoded by leaving the field out, so min is 1: one encoding per message. */
static const field_spec error_fields[] = {
    {TAG_ERROR_CODE, FIELD_U16, true, 2, 2, "error code"},
    {TAG_REASON, FIELD_TEXT, false, 1, HSMD_REASON_MAX, "reason"},
};

#define MSG(t, req, f)                                                                             \
    {                                                                                              \
        (t), (req), (f), sizeof(f) / sizeof((f)[0])                                                \
    }
static const msg_spec msg_specs[] = {
    {HSMD_MSG_STATUS, true, NULL, 0},        MSG(HSMD_MSG_CERT, true, cert_fields),
    MSG(HSMD_MSG_ISSUE, true, issue_fields), MSG(HSMD_MSG_SIGN_TLV, true, sign_tlv_fields),
    MSG(HSMD_MSG_OK, false, ok_fields),      MSG(HSMD_MSG_ERROR, false, error_fields),
};
#undef MSG

static const msg_spec *msg_spec_find(int type)
{
    for (size_t i = 0; i < sizeof msg_specs / sizeof msg_specs[0]; i++)
        if (msg_specs[i].type == type)
            return &msg_specs[i];
    return NULL;
}

const char *hsmd_msg_type_name(int type)
{
    switch (type) {
    case HSMD_MSG_STATUS:
        return "status";
    case HSMD_MSG_CERT:
        return "cert";
    case HSMD_MSG_ISSUE:
        return "issue";
    case HSMD_MSG_SIGN_TLV:
        return "sign-tlv";
    case HSMD_MSG_OK:
        return "ok";
    case HSMD_MSG_ERROR:
        return "error";
    }
    return "unknown";
}

const char *hsmd_error_code_name(int code)
{
    switch (code) {
    case HSMD_ERR_BAD_REQUEST:
        return "bad-request";
    case HSMD_ERR_UNKNOWN_KEY:
        return "unknown-key";
    case HSMD_ERR_NOT_ALLOWED:
        return "not-allowed";
    case HSMD_ERR_REFUSED_BY_POLICY:
        return "refused-by-policy";
    case HSMD_ERR_HSM_UNAVAILABLE:
        return "hsm-unavailable";
    case HSMD_ERR_BUSY:
        return "busy";
    case HSMD_ERR_INTERNAL:
        return "internal";
    case HSMD_ERR_UNSUPPORTED_VERSION:
        return "unsupported-version";
    }
    return "unknown";
}

pt_err hsmd_error_code_to_pt_err(int code)
{
    switch (code) {
    case HSMD_ERR_BAD_REQUEST:
        return PT_ERR_FORMAT;
    case HSMD_ERR_UNKNOWN_KEY:
        return PT_ERR_NOT_FOUND;
    case HSMD_ERR_HSM_UNAVAILABLE:
        return PT_ERR_TOKEN_GONE;
    case HSMD_ERR_BUSY:
        return PT_ERR_BUSY;
    case HSMD_ERR_INTERNAL:
        return PT_ERR_INTERNAL;
    case HSMD_ERR_UNSUPPORTED_VERSION:
        return PT_ERR_UNSUPPORTED;
    default: /* not-allowed, refused-by-policy, and codes newer than this client */
        return PT_ERR_REFUSED;
    }
}

hsmd_error_code hsmd_error_code_from_pt_err(pt_err rc)
{
    switch (rc) {
    case PT_ERR_FORMAT:
    case PT_ERR_PROTOCOL:
    case PT_ERR_LIMIT:
    case PT_ERR_USAGE:
        return HSMD_ERR_BAD_REQUEST;
    case PT_ERR_NOT_FOUND:
        return HSMD_ERR_UNKNOWN_KEY;
    case PT_ERR_REFUSED:
    case PT_ERR_VERIFY:
        return HSMD_ERR_REFUSED_BY_POLICY;
    case PT_ERR_CKR:
    case PT_ERR_TOKEN_GONE:
    case PT_ERR_PIN_INCORRECT:
    case PT_ERR_PIN_LOCKED:
    case PT_ERR_PIN_FINAL_TRY:
    case PT_ERR_PIN_CHANGE:
        return HSMD_ERR_HSM_UNAVAILABLE;
    case PT_ERR_BUSY:
        return HSMD_ERR_BUSY;
    case PT_ERR_UNSUPPORTED:
        return HSMD_ERR_UNSUPPORTED_VERSION;
    default:
        return HSMD_ERR_INTERNAL;
    }
}

/* ---- values ---- */

static bool label_bytes_valid(const uint8_t *p, size_t len)
{
    if (len < 1 || len > HSMD_LABEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    return true;
}

bool hsmd_label_valid(const char *label)
{
    return label != NULL && label_bytes_valid((const uint8_t *)label, strnlen(label, 256));
}

/*
 * Length of the well-formed UTF-8 character at p (1..4), or 0: no overlong
 * forms, no surrogates, nothing above U+10FFFF.
 */
static size_t utf8_char_len(const uint8_t *p, size_t avail, uint32_t *cp)
{
    uint8_t b = p[0];
    size_t n;
    uint32_t min, c;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
        n = 2, min = 0x80, c = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3, min = 0x800, c = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4, min = 0x10000, c = b & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* C0, DEL and C1 controls: a reason is shown on terminals and in logs as is. */
static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static bool text_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_char_len(p + i, len - i, &cp);
        if (n == 0 || is_control(cp))
            return false;
        i += n;
    }
    return true;
}

void hsmd_response_set_error(hsmd_response *resp, uint32_t id, hsmd_error_code code,
                             const char *reason)
{
    memset(resp, 0, sizeof *resp);
    resp->type = HSMD_MSG_ERROR;
    resp->id = id;
    resp->code = (uint16_t)code;
    resp->version = HSMD_PROTO_VERSION;
    const uint8_t *p = (const uint8_t *)(reason != NULL ? reason : "");
    size_t len = strlen((const char *)p), i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_char_len(p + i, len - i, &cp);
        bool ok = n != 0 && !is_control(cp);
        size_t out_n = ok ? n : 1;
        if (o + out_n > HSMD_REASON_MAX)
            break;
        if (ok)
            memcpy(resp->reason + o, p + i, n);
        else
            resp->reason[o] = '?';
        o += out_n;
        i += ok ? n : 1;
    }
    resp->reason[o] = '\0';
}

/* The one check of a field value, used by the encoder and the parser alike. */
static pt_err field_check(const msg_spec *m, const field_spec *f, const uint8_t *p, size_t len)
{
    const char *msg = hsmd_msg_type_name(m->type);
    if (len < f->min || len > f->max)
        return pt_fail(PT_ERR_FORMAT, "%s: %s of %zu bytes (allowed %zu..%zu)", msg, f->name, len,
                       f->min, f->max);
    if (f->type == FIELD_LABEL && !label_bytes_valid(p, len))
        return pt_fail(PT_ERR_FORMAT, "%s: %s must be printable ASCII without spaces (0x21..0x7E)",
                       msg, f->name);
    if (f->type == FIELD_TEXT && !text_valid(p, len))
        return pt_fail(PT_ERR_FORMAT, "%s: %s is not UTF-8 text without control characters", msg,
                       f->name);
    return PT_OK;
}

/* ---- encoding ---- */

static pt_err msg_encode(const msg_spec *m, uint32_t id, const field_value *v, uint8_t **body,
                         size_t *len)
{
    pt_writer w;
    pt_writer_init(&w, HSMD_FRAME_MAX);
    pt_writer_u32(&w, HSMD_PROTO_MAGIC);
    pt_writer_u8(&w, HSMD_PROTO_VERSION);
    pt_writer_u8(&w, m->type);
    pt_writer_u32(&w, id);
    for (size_t i = 0; i < m->n_fields; i++) {
        const field_spec *f = &m->fields[i];
        if (!v[i].present) {
            if (f->required) {
                pt_writer_free(&w);
                return pt_fail(PT_ERR_USAGE, "%s: %s is required", hsmd_msg_type_name(m->type),
                               f->name);
            }
            continue;
        }
        pt_err rc = field_check(m, f, v[i].p, v[i].len);
        if (rc != PT_OK) {
            pt_writer_free(&w);
            return pt_err_context(PT_ERR_USAGE, "cannot encode");
        }
        pt_writer_u8(&w, f->tag);
        pt_writer_u32(&w, (uint32_t)v[i].len);
        pt_writer_bytes(&w, v[i].p, v[i].len);
    }
    pt_err rc = pt_writer_finish(&w, body, len);
    if (rc != PT_OK)
        return pt_err_context(rc, "encoding %s", hsmd_msg_type_name(m->type));
    return PT_OK;
}

static void value_set(field_value *v, const void *p, size_t len)
{
    v->present = true;
    v->p = p;
    v->len = len;
}

pt_err hsmd_request_encode(const hsmd_request *req, uint8_t **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    const msg_spec *m = msg_spec_find(req->type);
    if (m == NULL || !m->request)
        return pt_fail(PT_ERR_USAGE, "message type 0x%02x is not a request", (unsigned)req->type);
    field_value v[MSG_FIELDS_MAX] = {0};
    if (req->type != HSMD_MSG_STATUS)
        value_set(&v[0], req->label, strnlen(req->label, sizeof req->label));
    if (req->type == HSMD_MSG_ISSUE || req->type == HSMD_MSG_SIGN_TLV)
        value_set(&v[1], req->data, req->data != NULL ? req->data_len : 0);
    return msg_encode(m, req->id, v, body, len);
}

pt_err hsmd_response_encode(const hsmd_response *resp, uint8_t **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    const msg_spec *m = msg_spec_find(resp->type);
    if (m == NULL || m->request)
        return pt_fail(PT_ERR_USAGE, "message type 0x%02x is not a response", (unsigned)resp->type);
    field_value v[MSG_FIELDS_MAX] = {0};
    /* Here, not in the branch below: v[0] points at it until msg_encode has run. */
    // cppcheck-suppress variableScope
    uint8_t code[2] = {(uint8_t)(resp->code >> 8), (uint8_t)resp->code};
    if (resp->type == HSMD_MSG_OK) {
        value_set(&v[0], resp->payload, resp->payload != NULL ? resp->payload_len : 0);
    } else {
        value_set(&v[0], code, sizeof code);
        size_t rlen = strnlen(resp->reason, sizeof resp->reason);
        if (rlen > 0)
            value_set(&v[1], resp->reason, rlen);
    }
    return msg_encode(m, resp->id, v, body, len);
}

/* ---- parsing ---- */

typedef struct msg_header {
    uint8_t version;
    uint8_t type;
    uint32_t id;
} msg_header;

static pt_err header_parse(pt_reader *r, msg_header *h)
{
    uint32_t magic = 0;
    if (pt_reader_remaining(r) < HSMD_HEADER_LEN)
        return pt_fail(PT_ERR_PROTOCOL, "message of %zu bytes is shorter than the %d-byte header",
                       pt_reader_remaining(r), HSMD_HEADER_LEN);
    pt_reader_u32(r, &magic);
    pt_reader_u8(r, &h->version);
    pt_reader_u8(r, &h->type);
    pt_reader_u32(r, &h->id);
    if (magic != HSMD_PROTO_MAGIC)
        return pt_fail(PT_ERR_PROTOCOL,
                       "not an hsmd message (magic 0x%08x, expected 0x%08x \"HSMD\")", magic,
                       HSMD_PROTO_MAGIC);
    if (h->version != HSMD_PROTO_VERSION)
        return pt_fail(PT_ERR_UNSUPPORTED,
                       "peer speaks hsmd protocol version %u; this side speaks version %d",
                       h->version, HSMD_PROTO_VERSION);
    return PT_OK;
}

static const field_spec *field_find(const msg_spec *m, uint8_t tag, size_t *index)
{
    for (size_t i = 0; i < m->n_fields; i++) {
        if (m->fields[i].tag == tag) {
            *index = i;
            return &m->fields[i];
        }
    }
    return NULL;
}

static pt_err field_parse(pt_reader *r, const msg_spec *m, int prev_tag, field_value *v,
                          uint8_t *tag_out)
{
    const char *msg = hsmd_msg_type_name(m->type);
    size_t off = pt_reader_offset(r), index = 0;
    uint8_t tag = 0;
    uint32_t len = 0;
    const uint8_t *p = NULL;
    if (!pt_reader_u8(r, &tag) || !pt_reader_u32(r, &len))
        return pt_fail(PT_ERR_FORMAT, "%s: offset %zu: truncated field header", msg, off);
    if ((int)tag <= prev_tag)
        return pt_fail(PT_ERR_FORMAT, "%s: offset %zu: field 0x%02x repeated or out of order", msg,
                       off, tag);
    const field_spec *f = field_find(m, tag, &index);
    if (f == NULL)
        return pt_fail(PT_ERR_FORMAT, "%s: offset %zu: unknown field 0x%02x", msg, off, tag);
    /* Check the declared length against the field's bound before taking any bytes. */
    if (len > f->max)
        return pt_fail(PT_ERR_FORMAT, "%s: offset %zu: %s of %u bytes is over the limit of %zu",
                       msg, off, f->name, len, f->max);
    if (!pt_reader_bytes(r, len, &p))
        return pt_fail(PT_ERR_FORMAT, "%s: offset %zu: %s of %u bytes crosses the end", msg, off,
                       f->name, len);
    pt_err rc = field_check(m, f, p, len);
    if (rc != PT_OK)
        return pt_err_context(rc, "offset %zu", off);
    value_set(&v[index], p, len);
    *tag_out = tag;
    return PT_OK;
}

static pt_err msg_parse(const uint8_t *body, size_t len, bool request, msg_header *h,
                        const msg_spec **spec, field_value *v)
{
    pt_reader r;
    pt_reader_init(&r, body, len);
    memset(h, 0, sizeof *h);
    pt_err rc = header_parse(&r, h);
    if (rc != PT_OK)
        return rc;
    const msg_spec *m = msg_spec_find(h->type);
    if (m == NULL || m->request != request)
        return pt_fail(PT_ERR_FORMAT, "message type 0x%02x is not a known %s", h->type,
                       request ? "request" : "response");
    int prev = -1;
    while (pt_reader_remaining(&r) > 0) {
        uint8_t tag = 0;
        rc = field_parse(&r, m, prev, v, &tag);
        if (rc != PT_OK)
            return rc;
        prev = tag;
    }
    for (size_t i = 0; i < m->n_fields; i++)
        if (m->fields[i].required && !v[i].present)
            return pt_fail(PT_ERR_FORMAT, "%s: required field %s (0x%02x) is missing",
                           hsmd_msg_type_name(m->type), m->fields[i].name, m->fields[i].tag);
    if (!pt_reader_done(&r))
        return pt_fail(PT_ERR_INTERNAL, "%s: input not consumed exactly",
                       hsmd_msg_type_name(m->type));
    *spec = m;
    return PT_OK;
}

pt_err hsmd_request_parse(const uint8_t *body, size_t len, hsmd_request *req)
{
    memset(req, 0, sizeof *req);
    msg_header h;
    const msg_spec *m = NULL;
    field_value v[MSG_FIELDS_MAX] = {0};
    pt_err rc = msg_parse(body, len, true, &h, &m, v);
    req->type = h.type;
    req->id = h.id;
    req->version = h.version;
    if (rc != PT_OK)
        return rc;
    if (v[0].present && m->fields[0].tag == TAG_KEY_LABEL)
        memcpy(req->label, v[0].p, v[0].len); /* bounded by field_check; NUL from memset */
    if (v[1].present) {
        req->data = v[1].p;
        req->data_len = v[1].len;
    }
    return PT_OK;
}

pt_err hsmd_response_parse(const uint8_t *body, size_t len, hsmd_response *resp)
{
    memset(resp, 0, sizeof *resp);
    msg_header h;
    const msg_spec *m = NULL;
    field_value v[MSG_FIELDS_MAX] = {0};
    pt_err rc = msg_parse(body, len, false, &h, &m, v);
    resp->type = h.type;
    resp->id = h.id;
    resp->version = h.version;
    if (rc != PT_OK)
        return rc;
    if (resp->type == HSMD_MSG_OK) {
        resp->payload = v[0].p;
        resp->payload_len = v[0].len;
        return PT_OK;
    }
    pt_reader code;
    pt_reader_init(&code, v[0].p, v[0].len); /* exactly 2 bytes: checked against the table */
    pt_reader_u16(&code, &resp->code);
    if (v[1].present)
        memcpy(resp->reason, v[1].p, v[1].len); /* bounded by field_check */
    return PT_OK;
}

/* ---- frames over a file descriptor ---- */

int64_t hsmd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hsmd_deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? HSMD_NO_DEADLINE : hsmd_now_ms() + timeout_ms;
}

/*
 * Wait until fd is ready for events or the deadline passes. A deadline that
 * has passed still polls once without waiting, so that bytes already there
 * are taken rather than refused.
 */
static pt_err fd_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int timeout = -1;
        if (deadline != HSMD_NO_DEADLINE) {
            int64_t left = deadline - hsmd_now_ms();
            timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return pt_fail_errno("poll");
        if (n > 0 && (p.revents & POLLNVAL))
            return pt_fail(PT_ERR_USAGE, "file descriptor %d is not open", fd);
        if (n > 0)
            return PT_OK; /* ready, or hung up or failed: the read or write will say which */
        if (timeout == 0)
            return pt_fail(PT_ERR_TIMEOUT, "deadline passed waiting to %s",
                           events == POLLIN ? "read" : "write");
    }
}

/*
 * Reads and writes never block on a socket (MSG_DONTWAIT), so the deadline
 * holds whatever mode the descriptor is in, and never raise SIGPIPE
 * (MSG_NOSIGNAL); other descriptors fall back to read/write after poll.
 */
static ssize_t fd_read_once(int fd, uint8_t *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK)
        n = read(fd, buf, len);
    return n;
}

static bool errno_is_retry(void)
{
    return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
}

/* Read exactly len bytes; *done says how many arrived (to tell a clean end from a cut). */
static pt_err fd_read_all(int fd, int64_t deadline, uint8_t *buf, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        pt_err rc = fd_wait(fd, POLLIN, deadline);
        if (rc != PT_OK)
            return rc;
        ssize_t n = fd_read_once(fd, buf + *done, len - *done);
        if (n < 0 && errno_is_retry())
            continue;
        if (n < 0)
            return pt_fail_errno("read");
        if (n == 0)
            return pt_fail(PT_ERR_IO, "peer closed the connection");
        *done += (size_t)n;
    }
    return PT_OK;
}

/*
 * Write the n buffers of iov whole: one system call (sendmsg, or writev on a
 * pipe) unless the peer's buffer is full, then wait for room until deadline.
 */
static pt_err fd_writev_all(int fd, int64_t deadline, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno_is_retry()) {
            pt_err rc = fd_wait(fd, POLLOUT, deadline);
            if (rc != PT_OK)
                return rc;
            continue;
        }
        if (w < 0)
            return pt_fail_errno("write");
        size_t left = (size_t)w;
        for (; n > 0 && left >= iov->iov_len; iov++, n--)
            left -= iov->iov_len;
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return PT_OK;
}

pt_err hsmd_frame_length_check(const uint8_t prefix[HSMD_FRAME_PREFIX_LEN], uint32_t *body_len)
{
    pt_reader r;
    pt_reader_init(&r, prefix, HSMD_FRAME_PREFIX_LEN);
    pt_reader_u32(&r, body_len);
    if (*body_len > HSMD_FRAME_MAX)
        return pt_fail(PT_ERR_LIMIT, "frame of %u bytes is over the limit of %d bytes", *body_len,
                       HSMD_FRAME_MAX);
    if (*body_len < HSMD_HEADER_LEN)
        return pt_fail(PT_ERR_PROTOCOL, "frame of %u bytes is shorter than the %d-byte header",
                       *body_len, HSMD_HEADER_LEN);
    return PT_OK;
}

pt_err hsmd_frame_read(int fd, int64_t deadline, uint8_t **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    uint8_t prefix[HSMD_FRAME_PREFIX_LEN];
    size_t done = 0;
    uint32_t body_len = 0;
    pt_err rc = fd_read_all(fd, deadline, prefix, sizeof prefix, &done);
    if (rc == PT_ERR_IO && done > 0)
        return pt_fail(PT_ERR_PROTOCOL, "connection closed inside a frame's length prefix");
    if (rc != PT_OK)
        return rc;
    rc = hsmd_frame_length_check(prefix, &body_len);
    if (rc != PT_OK)
        return rc;
    uint8_t *buf = OPENSSL_malloc(body_len);
    if (buf == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory for a frame of %u bytes", body_len);
    rc = fd_read_all(fd, deadline, buf, body_len, &done);
    if (rc == PT_ERR_IO)
        rc = pt_fail(PT_ERR_PROTOCOL, "connection closed after %zu of %u bytes of a frame", done,
                     body_len);
    if (rc != PT_OK) {
        OPENSSL_free(buf);
        return rc;
    }
    *body = buf;
    *len = body_len;
    return PT_OK;
}

pt_err hsmd_frame_write(int fd, int64_t deadline, const uint8_t *body, size_t len)
{
    if (len < HSMD_HEADER_LEN || len > HSMD_FRAME_MAX)
        return pt_fail(PT_ERR_LIMIT, "frame of %zu bytes is outside %d..%d bytes", len,
                       HSMD_HEADER_LEN, HSMD_FRAME_MAX);
    uint8_t prefix[HSMD_FRAME_PREFIX_LEN] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                                             (uint8_t)(len >> 8), (uint8_t)len};
    union {
        const uint8_t *in;
        void *out;
    } b = {.in = body}; /* only read through, by sendmsg or writev */
    struct iovec iov[2] = {{prefix, sizeof prefix}, {b.out, len}};
    return fd_writev_all(fd, deadline, iov, 2);
}
