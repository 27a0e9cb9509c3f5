#include "hsm_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bytes.h"
#include "der.h"
#include "hsmd_proto.h"

struct hsm_client {
    int fd;
    int timeout_ms;
    uint32_t last_id;
    bool broken; /* a transport or protocol failure: the stream position is unknown */
    char *name;  /* socket path, for messages */
};

/* What the user should check, said once for every "hsmd is not there" failure. */
#define HINT_RUNNING "is hsmd running? (systemctl status hsmd; journalctl -u hsmd)"

static int timeout_or_default(int timeout_ms)
{
    return timeout_ms > 0 ? timeout_ms : HSM_CLIENT_DEFAULT_TIMEOUT_MS;
}

pt_err hsm_client_from_fd(int fd, const char *name, int timeout_ms, hsm_client **out)
{
    *out = NULL;
    hsm_client *c = OPENSSL_zalloc(sizeof *c);
    char *n = OPENSSL_strdup(name != NULL ? name : "(socket)");
    if (c == NULL || n == NULL) {
        OPENSSL_free(c);
        OPENSSL_free(n);
        close(fd);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    c->fd = fd;
    c->timeout_ms = timeout_or_default(timeout_ms);
    c->name = n;
    *out = c;
    return PT_OK;
}

static pt_err connect_failure(const char *path, int err, int timeout_ms)
{
    switch (err) {
    case ENOENT:
        return pt_fail(PT_ERR_IO, "hsmd socket %s does not exist: %s", path, HINT_RUNNING);
    case ECONNREFUSED:
        return pt_fail(PT_ERR_IO, "nothing is listening on %s: %s", path, HINT_RUNNING);
    case EACCES:
    case EPERM:
        return pt_fail(PT_ERR_IO,
                       "permission denied connecting to %s: run as a user hsmd allows "
                       "(see its allowed users and the socket's group)",
                       path);
    case EAGAIN:
    case ETIMEDOUT:
    case EINPROGRESS:
        return pt_fail(PT_ERR_BUSY,
                       "hsmd at %s did not accept the connection within %d ms: it may be "
                       "overloaded (hsmctl status; journalctl -u hsmd)",
                       path, timeout_ms);
    default:
        return pt_fail(PT_ERR_IO, "cannot connect to hsmd at %s: %s: %s", path, strerror(err),
                       HINT_RUNNING);
    }
}

pt_err hsm_client_connect(const char *socket_path, int timeout_ms, hsm_client **out)
{
    *out = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (socket_path == NULL || socket_path[0] == '\0')
        return pt_fail(PT_ERR_USAGE, "no hsmd socket path given (default %s)",
                       HSM_CLIENT_DEFAULT_SOCKET);
    if (strlen(socket_path) >= sizeof sa.sun_path)
        return pt_fail(PT_ERR_USAGE, "hsmd socket path %s is longer than %zu bytes", socket_path,
                       sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, socket_path, strlen(socket_path));
    timeout_ms = timeout_or_default(timeout_ms);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pt_fail_errno("socket");
    /* A blocking connect to a Unix socket waits for room in the listen queue up to SO_SNDTIMEO. */
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        pt_err rc = pt_fail_errno("setsockopt SO_SNDTIMEO");
        close(fd);
        return rc;
    }
    int r;
    do {
        r = connect(fd, (const struct sockaddr *)&sa, sizeof sa);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        pt_err rc = connect_failure(socket_path, errno, timeout_ms);
        close(fd);
        return rc;
    }
    return hsm_client_from_fd(fd, socket_path, timeout_ms, out);
}

void hsm_client_close(hsm_client *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    OPENSSL_free(c->name);
    OPENSSL_free(c);
}

/* A transport or protocol failure: say what happened, where, and what to check. */
static pt_err call_failure(hsm_client *c, const char *op, pt_err rc)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s", pt_err_message());
    c->broken = true;
    switch (rc) {
    case PT_ERR_TIMEOUT:
        return pt_fail(rc, "no answer from hsmd at %s to %s within %d ms: %s", c->name, op,
                       c->timeout_ms, HINT_RUNNING);
    case PT_ERR_IO:
    case PT_ERR_PROTOCOL:
    case PT_ERR_ERRNO:
        return pt_fail(rc,
                       "hsmd at %s failed to answer %s (%s): check hsmd's log (journalctl -u "
                       "hsmd)",
                       c->name, op, detail);
    case PT_ERR_UNSUPPORTED:
        return pt_fail(rc,
                       "hsmd at %s answered %s in another protocol version (%s): install "
                       "matching phonetrust versions of hsmd and its clients",
                       c->name, op, detail);
    default:
        return pt_fail(rc, "%s to hsmd at %s: %s", op, c->name, detail);
    }
}

static pt_err call_refused(const hsm_client *c, const hsmd_request *req, const hsmd_response *resp)
{
    char code[32];
    const char *name = hsmd_error_code_name(resp->code);
    if (strcmp(name, "unknown") == 0)
        snprintf(code, sizeof code, "code %u", resp->code);
    else
        snprintf(code, sizeof code, "%s", name);
    const char *op = hsmd_msg_type_name(req->type);
    const char *reason = resp->reason[0] != '\0' ? resp->reason : "no reason given";
    pt_err rc = hsmd_error_code_to_pt_err(resp->code);
    if (req->label[0] != '\0')
        return pt_fail(rc, "hsmd at %s refused %s with key '%s': %s: %s", c->name, op, req->label,
                       code, reason);
    return pt_fail(rc, "hsmd at %s refused %s: %s: %s", c->name, op, code, reason);
}

pt_err hsm_client_exchange(hsm_client *c, hsmd_request *req, hsmd_response *resp, uint8_t **body)
{
    *body = NULL;
    memset(resp, 0, sizeof *resp);
    const char *op = hsmd_msg_type_name(req->type);
    if (c->broken)
        return pt_fail(PT_ERR_IO,
                       "the connection to hsmd at %s failed earlier: close the client and "
                       "connect again",
                       c->name);
    req->id = ++c->last_id;
    uint8_t *out = NULL;
    size_t len = 0;
    pt_err rc = hsmd_request_encode(req, &out, &len);
    if (rc != PT_OK)
        return pt_err_context(rc, "%s request", op);

    int64_t deadline = hsmd_deadline_after(c->timeout_ms);
    rc = hsmd_frame_write(c->fd, deadline, out, len);
    OPENSSL_free(out);
    if (rc == PT_OK)
        rc = hsmd_frame_read(c->fd, deadline, body, &len);
    if (rc == PT_OK)
        rc = hsmd_response_parse(*body, len, resp);
    if (rc == PT_OK && resp->id != req->id)
        rc = pt_fail(PT_ERR_PROTOCOL, "answer carries request id %u, expected %u", resp->id,
                     req->id);
    if (rc != PT_OK) {
        rc = call_failure(c, op, rc);
        OPENSSL_free(*body);
        *body = NULL;
    }
    return rc;
}

/*
 * Send req and read its answer. On PT_OK, resp is an OK response whose payload
 * points into *body (free with OPENSSL_free); an ERROR answer is a failure.
 */
static pt_err client_call(hsm_client *c, hsmd_request *req, hsmd_response *resp, uint8_t **body)
{
    pt_err rc = hsm_client_exchange(c, req, resp, body);
    if (rc == PT_OK && resp->type == HSMD_MSG_ERROR) {
        rc = call_refused(c, req, resp);
        OPENSSL_free(*body);
        *body = NULL;
    }
    return rc;
}

static pt_err label_check(const char *label)
{
    if (!hsmd_label_valid(label))
        return pt_fail(PT_ERR_USAGE,
                       "key label '%s' must be 1..%d printable ASCII characters without spaces",
                       label != NULL ? label : "", HSMD_LABEL_MAX);
    return PT_OK;
}

static void request_init(hsmd_request *req, hsmd_msg_type type, const char *label,
                         const uint8_t *data, size_t len)
{
    memset(req, 0, sizeof *req);
    req->type = type;
    if (label != NULL)
        snprintf(req->label, sizeof req->label, "%s", label);
    req->data = data;
    req->data_len = len;
}

pt_err hsm_client_status(hsm_client *c, char **json)
{
    *json = NULL;
    hsmd_request req;
    hsmd_response resp;
    uint8_t *body = NULL;
    request_init(&req, HSMD_MSG_STATUS, NULL, NULL, 0);
    pt_err rc = client_call(c, &req, &resp, &body);
    if (rc != PT_OK)
        return rc;
    if (resp.payload_len > 0 && memchr(resp.payload, '\0', resp.payload_len) != NULL) {
        rc = pt_fail(PT_ERR_PROTOCOL, "hsmd at %s sent a status report with a NUL byte", c->name);
    } else {
        *json = OPENSSL_strndup((const char *)resp.payload, resp.payload_len);
        if (*json == NULL)
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    OPENSSL_free(body);
    return rc;
}

/* Exactly one DER certificate, nothing after it. */
static pt_err cert_from_der(const hsm_client *c, const uint8_t *der, size_t len, X509 **out)
{
    const unsigned char *p = der;
    X509 *x = len <= PT_DER_CERT_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (x == NULL || p != der + len) {
        X509_free(x);
        return pt_fail_openssl(PT_ERR_PROTOCOL, "hsmd at %s sent a certificate that does not parse",
                               c->name);
    }
    *out = x;
    return PT_OK;
}

pt_err hsm_client_cert(hsm_client *c, const char *label, X509 **out)
{
    *out = NULL;
    hsmd_request req;
    hsmd_response resp;
    uint8_t *body = NULL;
    pt_err rc = label_check(label);
    if (rc != PT_OK)
        return rc;
    request_init(&req, HSMD_MSG_CERT, label, NULL, 0);
    rc = client_call(c, &req, &resp, &body);
    if (rc != PT_OK)
        return rc;
    rc = cert_from_der(c, resp.payload, resp.payload_len, out);
    OPENSSL_free(body);
    return rc;
}

/* Whether the certificate's first inner element is byte for byte the TBS that was sent. */
static bool cert_has_tbs(const uint8_t *der, size_t len, const uint8_t *tbs, size_t tbs_len)
{
    pt_reader r, cert, tbs_contents;
    uint8_t tag = 0;
    const uint8_t *elem = NULL;
    size_t elem_len = 0;
    pt_reader_init(&r, der, len);
    if (pt_der_read(&r, &tag, &cert, NULL, NULL) != PT_OK || tag != 0x30)
        return false;
    if (pt_der_read(&cert, &tag, &tbs_contents, &elem, &elem_len) != PT_OK)
        return false;
    return elem_len == tbs_len && memcmp(elem, tbs, tbs_len) == 0;
}

pt_err hsm_client_issue(hsm_client *c, const char *label, const uint8_t *tbs, size_t tbs_len,
                        X509 **cert)
{
    *cert = NULL;
    hsmd_request req;
    hsmd_response resp;
    uint8_t *body = NULL;
    pt_err rc = label_check(label);
    if (rc != PT_OK)
        return rc;
    request_init(&req, HSMD_MSG_ISSUE, label, tbs, tbs_len);
    rc = client_call(c, &req, &resp, &body);
    if (rc != PT_OK)
        return rc;
    rc = cert_from_der(c, resp.payload, resp.payload_len, cert);
    if (rc == PT_OK && !cert_has_tbs(resp.payload, resp.payload_len, tbs, tbs_len)) {
        X509_free(*cert);
        *cert = NULL;
        rc = pt_fail(PT_ERR_PROTOCOL,
                     "hsmd at %s returned a certificate for another TBSCertificate than the one "
                     "sent: not using it",
                     c->name);
    }
    OPENSSL_free(body);
    return rc;
}

pt_err hsm_client_sign_tlv(hsm_client *c, const char *label, const uint8_t *file, size_t len,
                           uint8_t **signed_file, size_t *signed_len)
{
    *signed_file = NULL;
    *signed_len = 0;
    hsmd_request req;
    hsmd_response resp;
    uint8_t *body = NULL;
    pt_err rc = label_check(label);
    if (rc != PT_OK)
        return rc;
    request_init(&req, HSMD_MSG_SIGN_TLV, label, file, len);
    rc = client_call(c, &req, &resp, &body);
    if (rc != PT_OK)
        return rc;
    if (resp.payload_len != len) {
        rc = pt_fail(PT_ERR_PROTOCOL,
                     "hsmd at %s returned a signed file of %zu bytes for a file of %zu bytes",
                     c->name, resp.payload_len, len);
    } else {
        *signed_file = OPENSSL_memdup(resp.payload, len);
        if (*signed_file == NULL)
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        else
            *signed_len = len;
    }
    OPENSSL_free(body);
    return rc;
}

bool hsm_client_is_signer(const char *spec)
{
    return spec != NULL &&
           strncmp(spec, HSM_CLIENT_SIGNER_PREFIX, strlen(HSM_CLIENT_SIGNER_PREFIX)) == 0;
}

pt_err hsm_client_parse_signer(const char *spec, char **socket_path, char **label)
{
    static const char form[] = "expected hsmd:SOCKET#LABEL, e.g. "
                               "hsmd:" HSM_CLIENT_DEFAULT_SOCKET "#ITLRecovery";
    *socket_path = NULL;
    *label = NULL;
    if (!hsm_client_is_signer(spec))
        return pt_fail(PT_ERR_USAGE, "'%s' is not an hsmd signer: %s", spec ? spec : "", form);
    const char *rest = spec + strlen(HSM_CLIENT_SIGNER_PREFIX);
    const char *hash = strrchr(rest, '#');
    if (hash == NULL)
        return pt_fail(PT_ERR_USAGE, "'%s' names no key ('#LABEL' missing): %s", spec, form);
    if (!hsmd_label_valid(hash + 1))
        return pt_fail(PT_ERR_USAGE,
                       "'%s': the key label must be 1..%d printable ASCII characters without "
                       "spaces: %s",
                       spec, HSMD_LABEL_MAX, form);
    size_t path_len = (size_t)(hash - rest);
    if (path_len >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return pt_fail(PT_ERR_USAGE, "'%s': the socket path is too long", spec);
    *socket_path =
        path_len == 0 ? OPENSSL_strdup(HSM_CLIENT_DEFAULT_SOCKET) : OPENSSL_strndup(rest, path_len);
    *label = OPENSSL_strdup(hash + 1);
    if (*socket_path == NULL || *label == NULL) {
        OPENSSL_free(*socket_path);
        OPENSSL_free(*label);
        *socket_path = *label = NULL;
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    return PT_OK;
}
