#include "hsmd_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hsmd_queue.h"
#include "log.h"

#define PT_STR_(x) #x
#define PT_STR(x)  PT_STR_(x)

/* epoll tags for the descriptors that are not connections. */
#define TAG_LISTEN UINT64_MAX
#define TAG_EVENT  (UINT64_MAX - 1)
#define TAG_SIGNAL (UINT64_MAX - 2)

/*
 * A connection. The I/O thread owns it while it is not busy: it reads the
 * frame into it, and it alone closes it. A worker owns it while busy (it
 * reads peer and fd only). busy, in_use and deadline change under
 * srv->lock. The descriptor stays in epoll with EPOLLONESHOT: an event
 * disarms it, and whoever hands the connection back to reading re-arms it.
 */
typedef struct conn {
    bool in_use;
    bool busy; /* a worker holds it */
    int fd;
    unsigned index;
    hsmd_peer peer;
    uint8_t prefix[HSMD_FRAME_PREFIX_LEN];
    size_t prefix_have;
    uint8_t *body;
    uint32_t body_len;
    size_t body_have;
    int64_t deadline; /* the frame's while one is arriving, else the idle deadline */
} conn;

typedef struct job {
    conn *c;
    uint8_t *body;
    size_t len;
    char *frame_error; /* a bad length prefix: what was wrong */
} job;

struct hsmd_server {
    const hsmd_config *cfg;
    hsmd_service *svc;
    int listen_fd, epoll_fd, event_fd;
    char *socket_path;
    dev_t socket_dev;
    ino_t socket_ino;
    conn *conns;
    atomic_uint n_conns;
    hsmd_queue *sign_q, *ctl_q;
    pthread_t *workers;
    unsigned n_workers;
    pthread_t ctl_thread;
    bool ctl_started;
    atomic_uint in_progress;
    /* Connection state (see conn), and the ones workers want closed. */
    pthread_mutex_t lock;
    unsigned *done; /* indexes of connections to close */
    unsigned n_done;
    bool accepting; /* the listening socket is in epoll (not: every slot is taken) */
    int64_t last_full_log;
};

/* ---- socket ---- */

static pt_err socket_path_free_check(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? PT_OK : pt_fail_errno("%s", path);
    if (!S_ISSOCK(st.st_mode))
        return pt_fail(PT_ERR_EXISTS,
                       "%s exists and is not a socket; remove it or choose another "
                       "'socket ='",
                       path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pt_fail_errno("socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    int r = connect(fd, (const struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (r == 0)
        return pt_fail(PT_ERR_EXISTS, "another process (another hsmd?) listens on %s", path);
    if (e != ECONNREFUSED)
        return pt_fail(PT_ERR_IO, "%s: %s", path, strerror(e));
    pt_log_info("removing the stale socket %s", path);
    if (unlink(path) != 0)
        return pt_fail_errno("cannot remove the stale socket %s", path);
    return PT_OK;
}

static pt_err socket_create(hsmd_server *srv)
{
    const hsmd_config *cfg = srv->cfg;
    pt_err rc = socket_path_free_check(cfg->socket_path);
    if (rc != PT_OK)
        return rc;
    srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->listen_fd < 0)
        return pt_fail_errno("socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, cfg->socket_path, strlen(cfg->socket_path));
    /* Created owner-only, then opened up to the configured mode once the group is right. */
    mode_t old = umask(0177);
    int r = bind(srv->listen_fd, (const struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (r != 0)
        return pt_fail_errno("cannot create the socket %s", cfg->socket_path);
    struct stat st;
    if (stat(cfg->socket_path, &st) != 0)
        return pt_fail_errno("%s", cfg->socket_path);
    srv->socket_path = OPENSSL_strdup(cfg->socket_path);
    srv->socket_dev = st.st_dev;
    srv->socket_ino = st.st_ino;
    if (srv->socket_path == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (cfg->has_socket_group && chown(cfg->socket_path, (uid_t)-1, cfg->socket_group) != 0)
        return pt_fail_errno("cannot give the socket %s to group %u", cfg->socket_path,
                             (unsigned)cfg->socket_group);
    if (chmod(cfg->socket_path, cfg->socket_mode) != 0)
        return pt_fail_errno("cannot set the mode of %s", cfg->socket_path);
    int backlog = cfg->max_clients < SOMAXCONN ? (int)cfg->max_clients : SOMAXCONN;
    if (listen(srv->listen_fd, backlog) != 0)
        return pt_fail_errno("listen on %s", cfg->socket_path);
    return PT_OK;
}

/* Remove the socket file if it is still the one we made. */
static void socket_remove(hsmd_server *srv)
{
    struct stat st;
    if (srv->socket_path != NULL && lstat(srv->socket_path, &st) == 0 &&
        st.st_dev == srv->socket_dev && st.st_ino == srv->socket_ino)
        unlink(srv->socket_path);
}

/* ---- connections ---- */

static void conn_reset_frame(conn *c)
{
    OPENSSL_free(c->body);
    c->body = NULL;
    c->body_len = 0;
    c->body_have = 0;
    c->prefix_have = 0;
}

static void accept_resume(hsmd_server *srv);

/* Close a connection the I/O thread owns (called with srv->lock held). */
static void conn_close_locked(hsmd_server *srv, conn *c)
{
    if (!c->in_use)
        return;
    epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conn_reset_frame(c);
    c->in_use = false;
    c->busy = false;
    atomic_fetch_sub(&srv->n_conns, 1);
    accept_resume(srv);
}

static void conn_close(hsmd_server *srv, conn *c)
{
    pthread_mutex_lock(&srv->lock);
    conn_close_locked(srv, c);
    pthread_mutex_unlock(&srv->lock);
}

/* Wait for the next bytes of c: add it to epoll (op ADD) or re-arm it (op MOD). */
static pt_err conn_watch(hsmd_server *srv, conn *c, int op)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = c->index};
    if (epoll_ctl(srv->epoll_fd, op, c->fd, &ev) != 0)
        return pt_fail_errno("epoll_ctl");
    return PT_OK;
}

static void peer_read(int fd, hsmd_peer *p)
{
    memset(p, 0, sizeof *p);
    struct ucred uc;
    socklen_t len = sizeof uc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
        p->uid = uc.uid;
        p->gid = uc.gid;
        p->pid = uc.pid;
    } else {
        /* Nobody: no credentials means no rights. */
        p->uid = (uid_t)-1;
        p->gid = (gid_t)-1;
    }
    socklen_t glen = sizeof p->groups;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &glen) == 0) {
        p->n_groups = glen / sizeof p->groups[0];
    } else {
        p->n_groups = 0;
        pt_log_warn("uid %u pid %d: its supplementary groups cannot be read (%s): only its uid "
                    "and primary group count",
                    (unsigned)p->uid, (int)p->pid,
                    errno == ERANGE ? "more than " PT_STR(HSMD_PEER_GROUPS_MAX) : strerror(errno));
    }
}

/*
 * A free connection slot, or NULL (called with srv->lock held). Only the I/O
 * thread takes and frees slots, so one found here stays free until it takes it.
 */
static conn *slot_free_locked(hsmd_server *srv)
{
    for (unsigned i = 0; i < srv->cfg->max_clients; i++)
        if (!srv->conns[i].in_use)
            return &srv->conns[i];
    return NULL;
}

/*
 * Every slot taken: stop accepting. Further clients wait in the listen
 * queue (their connect succeeds, their request waits) until a connection
 * closes, rather than being turned away.
 */
static void accept_pause(hsmd_server *srv)
{
    if (!srv->accepting)
        return;
    epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
    srv->accepting = false;
    hsmd_service_count_accept_pause(srv->svc);
    int64_t now = hsmd_now_ms();
    if (now - srv->last_full_log > 10000) {
        srv->last_full_log = now;
        pt_log_warn("%u clients are connected (max-clients): new connections wait until one "
                    "closes",
                    srv->cfg->max_clients);
    }
}

static void accept_resume(hsmd_server *srv)
{
    if (srv->accepting || srv->listen_fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
    if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listen_fd, &ev) == 0)
        srv->accepting = true;
    else
        pt_log_error("cannot watch the listening socket again: %s", strerror(errno));
}

static void accept_all(hsmd_server *srv)
{
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        conn *c = slot_free_locked(srv);
        pthread_mutex_unlock(&srv->lock);
        if (c == NULL) {
            accept_pause(srv);
            return;
        }
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                pt_log_warn("accept: %s", strerror(errno));
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        pthread_mutex_lock(&srv->lock);
        unsigned index = (unsigned)(c - srv->conns);
        memset(c, 0, sizeof *c);
        c->index = index;
        c->fd = fd;
        c->in_use = true;
        pthread_mutex_unlock(&srv->lock);
        peer_read(fd, &c->peer);
        c->deadline = hsmd_now_ms() + srv->cfg->idle_timeout_ms;
        atomic_fetch_add(&srv->n_conns, 1);
        if (conn_watch(srv, c, EPOLL_CTL_ADD) != PT_OK) {
            pt_log_warn("%s", pt_err_message());
            conn_close(srv, c);
        }
    }
}

/* Hand a finished frame (or a bad prefix) to a queue. */
static void dispatch(hsmd_server *srv, conn *c, char *frame_error)
{
    job *j = OPENSSL_zalloc(sizeof *j);
    if (j == NULL) {
        OPENSSL_free(frame_error);
        conn_close(srv, c);
        return;
    }
    j->c = c;
    j->body = c->body;
    j->len = c->body_len;
    j->frame_error = frame_error;
    c->body = NULL;
    conn_reset_frame(c);
    bool signing = j->body != NULL && j->len > 5 &&
                   (j->body[5] == HSMD_MSG_ISSUE || j->body[5] == HSMD_MSG_SIGN_TLV);
    pthread_mutex_lock(&srv->lock);
    c->busy = true;
    pthread_mutex_unlock(&srv->lock);
    if (hsmd_queue_push(signing ? srv->sign_q : srv->ctl_q, j))
        return;
    /* Full: answer busy now; nothing is kept. */
    hsmd_reply reply;
    hsmd_service_busy(srv->svc, j->body, j->len, &reply);
    bool ok =
        !reply.close && hsmd_frame_write(c->fd, hsmd_now_ms(), reply.body, reply.len) == PT_OK;
    OPENSSL_free(reply.body);
    OPENSSL_free(j->body);
    OPENSSL_free(j->frame_error);
    OPENSSL_free(j);
    pthread_mutex_lock(&srv->lock);
    c->busy = false;
    c->deadline = hsmd_now_ms() + srv->cfg->idle_timeout_ms;
    if (!ok || conn_watch(srv, c, EPOLL_CTL_MOD) != PT_OK)
        conn_close_locked(srv, c);
    pthread_mutex_unlock(&srv->lock);
}

static bool errno_again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Read what is there of the current frame; dispatch it when complete. */
static void conn_readable(hsmd_server *srv, conn *c)
{
    for (;;) { /* every way out returns: the connection may be another thread's after */
        ssize_t n;
        if (c->prefix_have < HSMD_FRAME_PREFIX_LEN) {
            n = recv(c->fd, c->prefix + c->prefix_have, HSMD_FRAME_PREFIX_LEN - c->prefix_have,
                     MSG_DONTWAIT);
        } else {
            n = recv(c->fd, c->body + c->body_have, c->body_len - c->body_have, MSG_DONTWAIT);
        }
        if (n < 0 && errno_again()) {
            /* Nothing more for now: wait for the rest. */
            if (conn_watch(srv, c, EPOLL_CTL_MOD) != PT_OK)
                conn_close(srv, c);
            return;
        }
        if (n <= 0) {
            if (c->prefix_have > 0)
                pt_log_debug("uid %u pid %d left in the middle of a frame", (unsigned)c->peer.uid,
                             (int)c->peer.pid);
            conn_close(srv, c);
            return;
        }
        if (c->prefix_have < HSMD_FRAME_PREFIX_LEN) {
            if (c->prefix_have == 0)
                c->deadline = hsmd_now_ms() + srv->cfg->frame_timeout_ms;
            c->prefix_have += (size_t)n;
            if (c->prefix_have < HSMD_FRAME_PREFIX_LEN)
                continue;
            uint32_t len = 0;
            if (hsmd_frame_length_check(c->prefix, &len) != PT_OK) {
                /* Refused before any of the body is read or buffered. */
                char *detail = OPENSSL_strdup(pt_err_message());
                dispatch(srv, c, detail != NULL ? detail : OPENSSL_strdup("bad length"));
                return;
            }
            c->body = OPENSSL_malloc(len);
            if (c->body == NULL) {
                pt_log_warn("out of memory for a %u-byte frame", len);
                conn_close(srv, c);
                return;
            }
            c->body_len = len;
            c->body_have = 0;
            continue;
        }
        c->body_have += (size_t)n;
        if (c->body_have == c->body_len) {
            dispatch(srv, c, NULL);
            return;
        }
    }
}

/* Connections the workers want closed. */
static void take_back(hsmd_server *srv)
{
    uint64_t v;
    if (read(srv->event_fd, &v, sizeof v) < 0 && errno != EAGAIN)
        pt_log_warn("eventfd: %s", strerror(errno));
    pthread_mutex_lock(&srv->lock);
    for (unsigned i = 0; i < srv->n_done; i++) {
        conn *c = &srv->conns[srv->done[i]];
        c->busy = false;
        conn_close_locked(srv, c);
    }
    srv->n_done = 0;
    pthread_mutex_unlock(&srv->lock);
}

static void expire(hsmd_server *srv, int64_t now)
{
    pthread_mutex_lock(&srv->lock);
    for (unsigned i = 0; i < srv->cfg->max_clients; i++) {
        conn *c = &srv->conns[i];
        if (!c->in_use || c->busy || c->deadline > now)
            continue;
        bool mid_frame = c->prefix_have > 0;
        pt_log_debug("closing the connection of uid %u pid %d: %s", (unsigned)c->peer.uid,
                     (int)c->peer.pid, mid_frame ? "frame not complete in time" : "idle");
        if (mid_frame)
            hsmd_service_count_timeout(srv->svc);
        conn_close_locked(srv, c);
    }
    pthread_mutex_unlock(&srv->lock);
}

static int next_timeout(hsmd_server *srv, int64_t now)
{
    int64_t soonest = INT64_MAX;
    pthread_mutex_lock(&srv->lock);
    for (unsigned i = 0; i < srv->cfg->max_clients; i++) {
        const conn *c = &srv->conns[i];
        if (c->in_use && !c->busy && c->deadline < soonest)
            soonest = c->deadline;
    }
    pthread_mutex_unlock(&srv->lock);
    if (soonest == INT64_MAX)
        return -1;
    int64_t left = soonest - now;
    return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* ---- workers ---- */

/*
 * A worker is done with c: re-arm it for the next request itself (no need to
 * wake the I/O thread), or ask the I/O thread to close it.
 */
static void give_back(hsmd_server *srv, conn *c, bool close_it)
{
    pthread_mutex_lock(&srv->lock);
    if (!close_it) {
        c->busy = false;
        c->deadline = hsmd_now_ms() + srv->cfg->idle_timeout_ms;
        if (conn_watch(srv, c, EPOLL_CTL_MOD) == PT_OK) {
            pthread_mutex_unlock(&srv->lock);
            return;
        }
        c->busy = true; /* the I/O thread closes it below */
    }
    srv->done[srv->n_done++] = c->index;
    pthread_mutex_unlock(&srv->lock);
    uint64_t one = 1;
    if (write(srv->event_fd, &one, sizeof one) < 0)
        pt_log_warn("eventfd: %s", strerror(errno));
}

/* Has the client closed its end? Then nobody will read the answer. */
static bool peer_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

static void work(hsmd_server *srv, job *j)
{
    conn *c = j->c;
    bool close_it = false;
    if (peer_gone(c->fd)) {
        hsmd_service_count_abandoned(srv->svc);
        pt_log_debug("uid %u pid %d left before its request was worked on", (unsigned)c->peer.uid,
                     (int)c->peer.pid);
        close_it = true;
    } else {
        hsmd_reply reply;
        if (j->frame_error != NULL)
            hsmd_service_frame_error(srv->svc, &c->peer, j->frame_error, &reply);
        else
            hsmd_service_handle(srv->svc, &c->peer, j->body, j->len, &reply);
        if (reply.body != NULL &&
            hsmd_frame_write(c->fd, hsmd_deadline_after(srv->cfg->frame_timeout_ms), reply.body,
                             reply.len) != PT_OK) {
            pt_log_debug("cannot answer uid %u pid %d: %s", (unsigned)c->peer.uid, (int)c->peer.pid,
                         pt_err_message());
            close_it = true;
        }
        close_it = close_it || reply.close || reply.body == NULL;
        OPENSSL_free(reply.body);
    }
    OPENSSL_free(j->body);
    OPENSSL_free(j->frame_error);
    OPENSSL_free(j);
    give_back(srv, c, close_it);
}

static void *sign_worker(void *arg)
{
    hsmd_server *srv = arg;
    void *item = NULL;
    while (hsmd_queue_pop(srv->sign_q, &item)) {
        atomic_fetch_add(&srv->in_progress, 1);
        work(srv, item);
        atomic_fetch_sub(&srv->in_progress, 1);
    }
    return NULL;
}

static void *ctl_worker(void *arg)
{
    hsmd_server *srv = arg;
    void *item = NULL;
    while (hsmd_queue_pop(srv->ctl_q, &item))
        work(srv, item);
    return NULL;
}

static void load_report(void *ctx, hsmd_load *out)
{
    hsmd_server *srv = ctx;
    out->connections = atomic_load(&srv->n_conns);
    out->max_clients = srv->cfg->max_clients;
    out->queued = hsmd_queue_length(srv->sign_q);
    out->queue_capacity = hsmd_queue_capacity(srv->sign_q);
    out->in_progress = atomic_load(&srv->in_progress);
    out->workers = srv->n_workers;
}

/* ---- life ---- */

static pt_err threads_start(hsmd_server *srv)
{
    srv->workers = OPENSSL_zalloc(sizeof *srv->workers * srv->cfg->workers);
    if (srv->workers == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    int e = pthread_create(&srv->ctl_thread, NULL, ctl_worker, srv);
    if (e == 0)
        srv->ctl_started = true;
    for (unsigned i = 0; e == 0 && i < srv->cfg->workers; i++) {
        e = pthread_create(&srv->workers[i], NULL, sign_worker, srv);
        if (e == 0)
            srv->n_workers++;
    }
    if (e != 0) {
        errno = e;
        return pt_fail_errno("cannot start the worker threads");
    }
    return PT_OK;
}

static void threads_stop(hsmd_server *srv)
{
    if (srv->sign_q != NULL)
        hsmd_queue_close(srv->sign_q);
    if (srv->ctl_q != NULL)
        hsmd_queue_close(srv->ctl_q);
    for (unsigned i = 0; i < srv->n_workers; i++)
        pthread_join(srv->workers[i], NULL);
    srv->n_workers = 0;
    if (srv->ctl_started)
        pthread_join(srv->ctl_thread, NULL);
    srv->ctl_started = false;
}

pt_err hsmd_server_new(const hsmd_config *cfg, hsmd_service *svc, hsmd_server **out)
{
    *out = NULL;
    hsmd_server *srv = OPENSSL_zalloc(sizeof *srv);
    if (srv == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    srv->cfg = cfg;
    srv->svc = svc;
    srv->listen_fd = srv->epoll_fd = srv->event_fd = -1;
    pthread_mutex_init(&srv->lock, NULL);
    srv->conns = OPENSSL_zalloc(sizeof *srv->conns * cfg->max_clients);
    srv->done = OPENSSL_zalloc(sizeof *srv->done * cfg->max_clients);
    pt_err rc =
        srv->conns != NULL && srv->done != NULL ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
    /* Each connection has at most one request queued, so the control queue never fills. */
    if (rc == PT_OK)
        rc = hsmd_queue_new(cfg->queue, &srv->sign_q);
    if (rc == PT_OK)
        rc = hsmd_queue_new(cfg->max_clients, &srv->ctl_q);
    if (rc == PT_OK && (srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        rc = pt_fail_errno("epoll_create1");
    if (rc == PT_OK && (srv->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        rc = pt_fail_errno("eventfd");
    if (rc == PT_OK)
        rc = socket_create(srv);
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
    struct epoll_event eev = {.events = EPOLLIN, .data.u64 = TAG_EVENT};
    if (rc == PT_OK && (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->listen_fd, &lev) != 0 ||
                        epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->event_fd, &eev) != 0))
        rc = pt_fail_errno("epoll_ctl");
    if (rc == PT_OK)
        srv->accepting = true;
    if (rc == PT_OK)
        rc = threads_start(srv);
    if (rc != PT_OK) {
        hsmd_server_free(srv);
        return rc;
    }
    hsmd_service_set_load_fn(svc, load_report, srv);
    *out = srv;
    return PT_OK;
}

/* Is c open and not with a worker (so the I/O thread may read it)? */
static bool conn_ours(hsmd_server *srv, const conn *c)
{
    pthread_mutex_lock(&srv->lock);
    bool ours = c->in_use && !c->busy;
    pthread_mutex_unlock(&srv->lock);
    return ours;
}

/* Returns true when the server should stop. */
static bool signal_read(int signal_fd, hsmd_server_hup_fn on_hup, void *ctx)
{
    struct signalfd_siginfo si;
    bool stop = false;
    while (read(signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            if (on_hup != NULL)
                on_hup(ctx);
        } else {
            pt_log_info("signal %u: stopping", si.ssi_signo);
            stop = true;
        }
    }
    return stop;
}

pt_err hsmd_server_run(hsmd_server *srv, int signal_fd, hsmd_server_hup_fn on_hup, void *ctx)
{
    struct epoll_event sev = {.events = EPOLLIN, .data.u64 = TAG_SIGNAL};
    if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, signal_fd, &sev) != 0)
        return pt_fail_errno("epoll_ctl");
    bool stop = false;
    pt_err rc = PT_OK;
    while (!stop) {
        struct epoll_event ev[64];
        int n = epoll_wait(srv->epoll_fd, ev, 64, next_timeout(srv, hsmd_now_ms()));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pt_fail_errno("epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = ev[i].data.u64;
            if (tag == TAG_LISTEN)
                accept_all(srv);
            else if (tag == TAG_EVENT)
                take_back(srv);
            else if (tag == TAG_SIGNAL)
                stop = signal_read(signal_fd, on_hup, ctx) || stop;
            else if (tag < srv->cfg->max_clients && conn_ours(srv, &srv->conns[tag]))
                conn_readable(srv, &srv->conns[tag]);
        }
        expire(srv, hsmd_now_ms());
    }
    epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, signal_fd, NULL);
    /* Stop taking requests; the queued ones are still answered. */
    socket_remove(srv);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    srv->listen_fd = -1;
    threads_stop(srv);
    return rc;
}

void hsmd_server_free(hsmd_server *srv)
{
    if (srv == NULL)
        return;
    threads_stop(srv);
    if (srv->conns != NULL)
        for (unsigned i = 0; i < srv->cfg->max_clients; i++)
            conn_close(srv, &srv->conns[i]);
    if (srv->listen_fd >= 0) {
        socket_remove(srv);
        close(srv->listen_fd);
    }
    if (srv->epoll_fd >= 0)
        close(srv->epoll_fd);
    if (srv->event_fd >= 0)
        close(srv->event_fd);
    hsmd_queue_free(srv->sign_q);
    hsmd_queue_free(srv->ctl_q);
    pthread_mutex_destroy(&srv->lock);
    OPENSSL_free(srv->socket_path);
    OPENSSL_free(srv->conns);
    OPENSSL_free(srv->done);
    OPENSSL_free(srv->workers);
    OPENSSL_free(srv);
}
