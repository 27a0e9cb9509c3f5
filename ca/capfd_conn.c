#include "capfd_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

struct capfd_conn {
    int fd;
    SSL *ssl;
    bool server;
    bool handshaken;
    uint8_t raw[CAPF_MSG_READ_MAX];
    size_t raw_len;
    size_t raw_dirty; /* bytes of raw a read may have written: wiped before the next read */
};

int64_t capfd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connection over fd (closed on failure, with the reason recorded), or NULL. */
static capfd_conn *conn_new(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        pt_fail_errno("cannot make the connection non-blocking");
        close(fd);
        return NULL;
    }
    capfd_conn *c = OPENSSL_zalloc(sizeof *c);
    if (c == NULL) {
        pt_fail(PT_ERR_NOMEM, "out of memory");
        close(fd);
        return NULL;
    }
    c->fd = fd;
    return c;
}

pt_err capfd_conn_plain(int fd, capfd_conn **out)
{
    *out = conn_new(fd);
    if (*out == NULL)
        return PT_ERR_IO;
    (*out)->handshaken = true;
    return PT_OK;
}

pt_err capfd_conn_tls(SSL_CTX *ctx, int fd, bool server, capfd_conn **out)
{
    pt_err rc = PT_OK;
    capfd_conn *c = *out = conn_new(fd);
    if (c == NULL)
        return PT_ERR_IO;
    c->server = server;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot set up TLS on the connection");
        capfd_conn_close(c);
        *out = NULL;
        return rc;
    }
    if (server)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    return PT_OK;
}

SSL *capfd_conn_ssl(capfd_conn *c)
{
    return c->ssl;
}

int capfd_conn_fd(const capfd_conn *c)
{
    return c->fd;
}

/* Wait until fd is ready for events or the deadline passes. */
static pt_err wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - capfd_now_ms();
        if (left <= 0)
            return pt_fail(PT_ERR_TIMEOUT, "timed out");
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return PT_OK;
        if (r < 0 && errno != EINTR)
            return pt_fail_errno("poll");
    }
}

/* After an SSL call returned n <= 0: wait and retry, or report why it failed. */
static pt_err ssl_retry(capfd_conn *c, int n, int64_t deadline, bool *closed, const char *what)
{
    int err = SSL_get_error(c->ssl, n);
    switch (err) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(c->fd, POLLIN, deadline);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(c->fd, POLLOUT, deadline);
    case SSL_ERROR_ZERO_RETURN:
        *closed = true;
        return pt_fail(PT_ERR_IO, "the peer closed the connection");
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        *closed = true;
        if (errno != 0 && n < 0)
            return pt_fail(PT_ERR_IO, "%s: %s", what, strerror(errno));
        return pt_fail(PT_ERR_IO, "the peer closed the connection");
    default:
        /* OpenSSL 3 reports a peer that closed without close_notify this way. */
        if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            *closed = true;
            return pt_fail(PT_ERR_IO, "the peer closed the connection");
        }
        return pt_fail_openssl(PT_ERR_IO, "%s", what);
    }
}

pt_err capfd_conn_handshake(capfd_conn *c, int64_t deadline)
{
    if (c->handshaken)
        return PT_OK;
    bool closed = false;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int n = c->server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
        if (n == 1)
            break;
        pt_err rc = ssl_retry(c, n, deadline, &closed, "TLS handshake");
        if (rc != PT_OK)
            return pt_err_context(rc, "TLS handshake");
    }
    c->handshaken = true;
    return PT_OK;
}

pt_err capfd_conn_write(capfd_conn *c, const void *data, size_t len, int64_t deadline)
{
    bool closed = false;
    pt_err rc = capfd_conn_handshake(c, deadline);
    if (rc != PT_OK)
        return rc;
    if (len > INT32_MAX)
        return pt_fail(PT_ERR_LIMIT, "message too long");
    if (c->ssl != NULL) {
        /* One SSL_write for the whole message; a retry repeats the same call. */
        for (;;) {
            ERR_clear_error();
            errno = 0;
            int n = SSL_write(c->ssl, data, (int)len);
            if (n == (int)len)
                return PT_OK;
            rc = ssl_retry(c, n, deadline, &closed, "TLS write");
            if (rc != PT_OK)
                return rc;
        }
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(c->fd, POLLOUT, deadline);
            if (rc != PT_OK)
                return rc;
            continue;
        }
        return pt_fail(PT_ERR_IO, "write: %s", strerror(errno));
    }
    return PT_OK;
}

pt_err capfd_conn_read(capfd_conn *c, void *buf, size_t len, int64_t deadline, bool *closed)
{
    *closed = false;
    pt_err rc = capfd_conn_handshake(c, deadline);
    if (rc != PT_OK)
        return rc;
    uint8_t *p = buf;
    while (len > 0) {
        if (c->ssl != NULL) {
            ERR_clear_error();
            errno = 0;
            int n = SSL_read(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
            if (n > 0) {
                p += n;
                len -= (size_t)n;
                continue;
            }
            rc = ssl_retry(c, n, deadline, closed, "TLS read");
            if (rc != PT_OK)
                return rc;
            continue;
        }
        ssize_t n = recv(c->fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            *closed = true;
            return pt_fail(PT_ERR_IO, "the peer closed the connection");
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = wait_fd(c->fd, POLLIN, deadline);
            if (rc != PT_OK)
                return rc;
            continue;
        }
        *closed = errno == ECONNRESET;
        return pt_fail(PT_ERR_IO, "read: %s", strerror(errno));
    }
    return PT_OK;
}

static capfd_read_fail read_fail_of(pt_err rc, bool closed)
{
    if (closed)
        return CAPFD_READ_CLOSED;
    if (rc == PT_ERR_TIMEOUT)
        return CAPFD_READ_TIMEOUT;
    return CAPFD_READ_IO;
}

pt_err capfd_conn_msg_read(capfd_conn *c, bool check_sid, uint32_t expect_sid, int64_t deadline,
                           capf_msg **out, capfd_read_fail *why)
{
    *out = NULL;
    *why = CAPFD_READ_OK;
    /* The previous message may hold an authentication string: it is gone once read past. */
    OPENSSL_cleanse(c->raw, c->raw_dirty);
    c->raw_len = 0;
    c->raw_dirty = CAPF_HEADER_LEN;
    bool closed = false;
    capf_header hdr;
    pt_err rc = capfd_conn_read(c, c->raw, CAPF_HEADER_LEN, deadline, &closed);
    if (rc != PT_OK) {
        *why = read_fail_of(rc, closed);
        return rc;
    }
    c->raw_len = CAPF_HEADER_LEN;
    rc = capf_msg_header_parse(c->raw, &hdr);
    if (rc != PT_OK) {
        *why = rc == PT_ERR_LIMIT ? CAPFD_READ_TOO_LONG : CAPFD_READ_BAD_HEADER;
        return rc;
    }
    if (check_sid && hdr.session_id != expect_sid) {
        *why = CAPFD_READ_WRONG_SID;
        return pt_fail(PT_ERR_PROTOCOL, "%s carries session ID %u, not %u",
                       capf_cmd_name(hdr.command), hdr.session_id, expect_sid);
    }
    c->raw_dirty = CAPF_HEADER_LEN + (size_t)hdr.length;
    rc = capfd_conn_read(c, c->raw + CAPF_HEADER_LEN, hdr.length, deadline, &closed);
    if (rc != PT_OK) {
        *why = read_fail_of(rc, closed);
        return pt_err_context(rc, "%s cut short", capf_cmd_name(hdr.command));
    }
    c->raw_len += hdr.length;
    rc = capf_msg_parse_body(&hdr, c->raw + CAPF_HEADER_LEN, hdr.length, out);
    if (rc != PT_OK)
        *why = CAPFD_READ_MALFORMED;
    return rc;
}

const uint8_t *capfd_conn_last_raw(const capfd_conn *c, size_t *len)
{
    *len = c->raw_len;
    return c->raw;
}

void capfd_conn_close(capfd_conn *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL) {
        if (c->handshaken) {
            ERR_clear_error();
            (void)SSL_shutdown(c->ssl); /* one try: a close_notify if it fits in the socket */
        }
        SSL_free(c->ssl);
    }
    ERR_clear_error();
    if (c->fd >= 0)
        close(c->fd);
    OPENSSL_cleanse(c->raw, c->raw_dirty);
    OPENSSL_free(c);
}

void capfd_conn_abort_fd(int fd)
{
    (void)shutdown(fd, SHUT_RDWR);
}
