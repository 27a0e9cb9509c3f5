#include "capfd_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "log.h"

#define SERVER_BACKLOG      128
#define SERVER_THREAD_STACK (512 * 1024)
/* How long a connection over the limit may take to receive its RETRY_LATER. */
#define SERVER_REJECT_MS 5000

struct capfd_server {
    const capfd_ctx *ctx;
    SSL_CTX *tls;
    int listen_fd;
    int stop_pipe[2];
    unsigned port;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned active;    /* session threads */
    unsigned rejecting; /* threads answering connections over the limit */
    int *fds;           /* sockets of running threads (-1: free slot), to end them at stop */
    unsigned n_fds;
    uint32_t next_sid;
    bool stopping; /* running sessions are being ended */
};

typedef struct server_job {
    capfd_server *srv;
    int fd;
    unsigned slot;
    uint32_t sid;
    bool reject;
    char peer[80];
} server_job;

/* "address:port" ("[address]:port" for IPv6). */
static void peer_text(const struct sockaddr_storage *sa, socklen_t len, char *out, size_t outlen)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, outlen, "?");
        return;
    }
    snprintf(out, outlen, sa->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

pt_err capfd_server_new(const capfd_ctx *ctx, SSL_CTX *tls, capfd_server **out)
{
    *out = NULL;
    const capfd_config *cfg = ctx->cfg;
    capfd_server *srv = OPENSSL_zalloc(sizeof *srv);
    if (srv == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    srv->ctx = ctx;
    srv->tls = tls;
    srv->listen_fd = srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
    srv->next_sid = 1;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->changed, NULL);
    srv->n_fds = cfg->max_sessions + CAPFD_REJECT_THREADS;
    srv->fds = OPENSSL_malloc(sizeof *srv->fds * srv->n_fds);
    if (srv->fds == NULL) {
        capfd_server_free(srv);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    for (unsigned i = 0; i < srv->n_fds; i++)
        srv->fds[i] = -1;
    if (pipe2(srv->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        pt_err rc = pt_fail_errno("pipe");
        capfd_server_free(srv);
        return rc;
    }

    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", cfg->port);
    int gai = getaddrinfo(cfg->listen, port, &hints, &ai);
    if (gai != 0) {
        capfd_server_free(srv);
        return pt_fail(PT_ERR_USAGE, "[server] listen '%s' is not an IP address: %s", cfg->listen,
                       gai_strerror(gai));
    }
    pt_err rc = PT_OK;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        rc = pt_fail_errno("socket");
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        rc = pt_fail_errno("setsockopt SO_REUSEADDR");
    else if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        rc = pt_fail_errno("cannot listen on %s port %u", cfg->listen, cfg->port);
    else if (listen(fd, SERVER_BACKLOG) != 0)
        rc = pt_fail_errno("listen");
    freeaddrinfo(ai);
    srv->listen_fd = fd;
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    socklen_t sl = sizeof sa;
    if (rc == PT_OK && getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        rc = pt_fail_errno("getsockname");
    if (rc != PT_OK) {
        capfd_server_free(srv);
        return rc;
    }
    srv->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                               : ((struct sockaddr_in *)&sa)->sin_port);
    *out = srv;
    return PT_OK;
}

unsigned capfd_server_port(const capfd_server *srv)
{
    return srv->port;
}

void capfd_server_stop(capfd_server *srv)
{
    const char b = 's';
    ssize_t n = write(srv->stop_pipe[1], &b, 1);
    (void)n;
}

void capfd_server_free(capfd_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->stop_pipe[0] >= 0)
        close(srv->stop_pipe[0]);
    if (srv->stop_pipe[1] >= 0)
        close(srv->stop_pipe[1]);
    OPENSSL_free(srv->fds);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->changed);
    OPENSSL_free(srv);
}

/* A connection over the limit: RETRY_LATER in place of AUTH_REQUEST (§10.7, CAPF-U13). */
static void reject_run(server_job *job, capfd_conn *conn, capfd_session_result *res)
{
    const capfd_config *cfg = job->srv->ctx->cfg;
    int64_t deadline = capfd_now_ms() + SERVER_REJECT_MS;
    uint8_t *buf = NULL;
    size_t len = 0;
    res->result = "retry-later";
    pt_err rc = capfd_conn_handshake(conn, deadline);
    if (rc == PT_OK)
        rc = capf_msg_build_retry_later(job->sid, cfg->retry_later.els, cfg->retry_later.n, &buf,
                                        &len);
    if (rc == PT_OK)
        rc = capfd_conn_write(conn, buf, len, deadline);
    capf_msg_buf_free(buf, len);
    if (rc == PT_OK)
        snprintf(res->reason, sizeof res->reason, "at the session limit (%u): RETRY_LATER sent",
                 cfg->max_sessions);
    else
        snprintf(res->reason, sizeof res->reason,
                 "at the session limit (%u): RETRY_LATER not sent: %s", cfg->max_sessions,
                 pt_err_message());
}

static void *job_run(void *arg)
{
    server_job *job = arg;
    capfd_server *srv = job->srv;
    capfd_conn *conn = NULL;
    capfd_session_result res;
    memset(&res, 0, sizeof res);
    snprintf(res.device, sizeof res.device, "-");
    res.end_reason = -1;
    int fd = job->fd;
    pt_err rc = capfd_conn_tls(srv->tls, fd, true, &conn);
    if (rc != PT_OK) {
        res.result = "failed";
        snprintf(res.reason, sizeof res.reason, "%s", pt_err_message());
    } else if (job->reject) {
        reject_run(job, conn, &res);
    } else {
        capfd_session_run(srv->ctx, conn, job->sid, job->peer, &res);
    }
    pthread_mutex_lock(&srv->lock);
    srv->fds[job->slot] = -1;
    bool stopping = srv->stopping;
    pthread_mutex_unlock(&srv->lock);
    capfd_conn_close(conn);
    if (stopping && res.result != NULL && strcmp(res.result, "failed") == 0) {
        char why[sizeof res.reason];
        snprintf(why, sizeof why, "%s", res.reason);
        snprintf(res.reason, sizeof res.reason, "capfd is stopping: %.280s", why);
    }
    capfd_session_log(job->sid, job->peer, &res);
    pthread_mutex_lock(&srv->lock);
    if (job->reject)
        srv->rejecting--;
    else
        srv->active--;
    pthread_cond_broadcast(&srv->changed);
    pthread_mutex_unlock(&srv->lock);
    OPENSSL_free(job);
    OPENSSL_thread_stop();
    ERR_clear_error();
    return NULL;
}

static unsigned free_slot(const capfd_server *srv)
{
    for (unsigned i = 0; i < srv->n_fds; i++)
        if (srv->fds[i] < 0)
            return i;
    return srv->n_fds;
}

/* Start the thread for one accepted connection, or close it. */
static void accepted(capfd_server *srv, int fd, const char *peer)
{
    const capfd_config *cfg = srv->ctx->cfg;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    server_job *job = OPENSSL_zalloc(sizeof *job);
    pthread_mutex_lock(&srv->lock);
    uint32_t sid = srv->next_sid++;
    if (srv->next_sid == 0)
        srv->next_sid = 1;
    bool reject = srv->active >= cfg->max_sessions;
    bool room = !reject || (cfg->at_limit == CAPFD_AT_LIMIT_RETRY_LATER &&
                            srv->rejecting < CAPFD_REJECT_THREADS);
    unsigned slot = free_slot(srv);
    if (job != NULL && room && slot < srv->n_fds) {
        srv->fds[slot] = fd;
        if (reject)
            srv->rejecting++;
        else
            srv->active++;
    } else {
        room = false;
    }
    pthread_mutex_unlock(&srv->lock);
    if (job == NULL) {
        close(fd);
        pt_log_error("session=%u peer=%s: out of memory; connection closed", sid, peer);
        return;
    }
    if (!room) {
        close(fd);
        OPENSSL_free(job);
        pt_log_info("session=%u peer=%s device=- operation=none result=closed end=- "
                    "reason=\"at the session limit (%u): closed without an answer\"",
                    sid, peer, cfg->max_sessions);
        return;
    }
    *job = (server_job){srv, fd, slot, sid, reject, ""};
    snprintf(job->peer, sizeof job->peer, "%s", peer);
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, SERVER_THREAD_STACK);
    int err = pthread_create(&th, &attr, job_run, job);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        pt_log_error("session=%u peer=%s: cannot start a thread: %s", sid, peer, strerror(err));
        pthread_mutex_lock(&srv->lock);
        srv->fds[slot] = -1;
        if (reject)
            srv->rejecting--;
        else
            srv->active--;
        pthread_mutex_unlock(&srv->lock);
        close(fd);
        OPENSSL_free(job);
    }
}

pt_err capfd_server_run(capfd_server *srv)
{
    struct pollfd p[2] = {{.fd = srv->listen_fd, .events = POLLIN},
                          {.fd = srv->stop_pipe[0], .events = POLLIN}};
    for (;;) {
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return pt_fail_errno("poll");
        if (p[1].revents != 0)
            break;
        if ((p[0].revents & POLLIN) == 0)
            continue;
        struct sockaddr_storage sa;
        memset(&sa, 0, sizeof sa);
        socklen_t sl = sizeof sa;
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
                pt_log_warn("accept: %s", strerror(errno));
                /* Out of descriptors: give running sessions a moment to end. */
                (void)poll(NULL, 0, 100);
            }
            continue;
        }
        char peer[80];
        peer_text(&sa, sl, peer, sizeof peer);
        accepted(srv, fd, peer);
    }
    /* Stopping: end every running session and wait for its thread. */
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    for (unsigned i = 0; i < srv->n_fds; i++)
        if (srv->fds[i] >= 0)
            capfd_conn_abort_fd(srv->fds[i]);
    while (srv->active > 0 || srv->rejecting > 0)
        pthread_cond_wait(&srv->changed, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
    return PT_OK;
}
