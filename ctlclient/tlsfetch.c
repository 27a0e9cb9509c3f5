#include "tlsfetch.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes. */
static pt_err wait_fd(int fd, short events, long long deadline, const char *what)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return pt_fail(PT_ERR_TIMEOUT, "%s: no answer in time", what);
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return PT_OK;
        if (n < 0 && errno != EINTR)
            return pt_fail_errno("%s: poll", what);
    }
}

static pt_err connect_one(const struct addrinfo *ai, long long deadline, const char *what,
                          int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return pt_fail_errno("%s: socket", what);
    pt_err rc = PT_OK;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            rc = pt_fail_errno("%s: cannot connect", what);
        } else {
            rc = wait_fd(fd, POLLOUT, deadline, what);
            int err = 0;
            socklen_t elen = sizeof err;
            if (rc == PT_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
                rc = pt_fail_errno("%s: getsockopt", what);
            if (rc == PT_OK && err != 0) {
                errno = err;
                rc = pt_fail_errno("%s: cannot connect", what);
            }
        }
    }
    if (rc != PT_OK) {
        close(fd);
        return rc == PT_ERR_ERRNO ? PT_ERR_IO : rc;
    }
    *fd_out = fd;
    return PT_OK;
}

static pt_err tcp_connect(const char *host, const char *port, long long deadline, const char *what,
                          int *fd_out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0)
        return pt_fail(PT_ERR_IO, "%s: cannot resolve: %s", what, gai_strerror(g));
    pt_err rc = PT_ERR_IO;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(ai, deadline, what, fd_out);
        if (rc == PT_OK || rc == PT_ERR_TIMEOUT)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static pt_err handshake(SSL *ssl, int fd, long long deadline, const char *what)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1)
            return PT_OK;
        int e = SSL_get_error(ssl, r);
        pt_err rc;
        if (e == SSL_ERROR_WANT_READ)
            rc = wait_fd(fd, POLLIN, deadline, what);
        else if (e == SSL_ERROR_WANT_WRITE)
            rc = wait_fd(fd, POLLOUT, deadline, what);
        else
            return pt_fail_openssl(PT_ERR_PROTOCOL, "%s: TLS handshake failed", what);
        if (rc != PT_OK)
            return rc;
    }
}

pt_err ctl_tls_fetch_cert(const char *host, const char *port, int timeout_ms, X509 **out)
{
    *out = NULL;
    char what[300];
    snprintf(what, sizeof what, "tls://%s:%s", host, port);
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : CTL_TLS_TIMEOUT_MS);
    int fd = -1;
    pt_err rc = tcp_connect(host, port, deadline, what, &fd);
    if (rc != PT_OK)
        return rc;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "%s: cannot set up TLS", what);
        goto out;
    }
    /* Unverified on purpose: the fingerprint is the check (see tlsfetch.h). */
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    /* The macro casts its argument to void *: give it a copy it may treat as its own. */
    char sni[256];
    snprintf(sni, sizeof sni, "%s", host);
    if (!is_ip_literal(host) && SSL_set_tlsext_host_name(ssl, sni) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "%s: cannot set the server name", what);
        goto out;
    }
    if (SSL_set_fd(ssl, fd) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "%s: cannot set up TLS", what);
        goto out;
    }
    rc = handshake(ssl, fd, deadline, what);
    if (rc == PT_OK) {
        *out = SSL_get1_peer_certificate(ssl);
        if (*out == NULL)
            rc = pt_fail(PT_ERR_PROTOCOL, "%s: the server presented no certificate", what);
        else
            (void)SSL_shutdown(ssl); /* best effort: the socket is non-blocking */
    }
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}
