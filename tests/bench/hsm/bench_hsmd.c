/*
 * Benchmark: signatures per second through hsmd against the same signatures
 * made directly through PKCS#11, in the same run.
 *
 * It makes its own SoftHSM2 token with a CAPF key (RSA 2048, as hsmctl init
 * makes it), starts hsmd (argv[1]) on a socket in a temporary directory, and
 * for 1, 2 and 8 concurrent clients measures
 *   direct: threads signing TBSCertificates with a token_signer pool on the
 *           same token and key, with as many sessions as hsmd's pool;
 *   hsmd:   clients sending the same TBSCertificates as ISSUE requests and
 *           reading the certificate back (hsmd lints, signs, checks the
 *           signature, writes the audit record with fdatasync, answers);
 * in alternating rounds, so that other load on the machine hits both alike,
 * and prints both rates, their ratio, and p50/p99 latencies. The table is
 * made twice: with the audit log on the disk of the temporary directory, and
 * on tmpfs (/dev/shm), which separates the disk's fdatasync from hsmd's own
 * work. A last line shows hsm_client_issue, which also parses the returned
 * certificate into an X509 (OpenSSL 3.0 decodes its public key then).
 *
 *   bench-hsmd HSMD [SECONDS-PER-MEASUREMENT (default 3)] [SESSIONS (default 4)]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ceremony.h"
#include "cert.h"
#include "fileio.h"
#include "hsm_client.h"
#include "hsmd_proto.h"
#include "login.h"
#include "signer.h"
#include "test_store.h"
#include "test_tbs.h"

enum { N_TBS = 64, MAX_CLIENTS = 8, MAX_SAMPLES = 200000, ROUNDS = 3 };

typedef enum mode { DIRECT, HSMD, HSMD_CLIENT_LIB } mode;

typedef struct bench {
    const char *socket;
    pid_t hsmd_pid; /* while one runs */
    token_signer *signer;
    uint8_t *tbs[N_TBS];
    size_t tbs_len[N_TBS];
    double seconds;
} bench;

typedef struct worker {
    bench *b;
    mode how;
    int index;
    int64_t deadline_ns;
    uint64_t done;
    uint32_t *lat_us; /* one per request */
    size_t n_lat;
    pt_err rc;
    char error[256];
} worker;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1 < sizeof sa.sun_path ? strlen(path) : 0);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* One ISSUE exchange as any client makes it: encode, send, read, parse, check. */
static pt_err issue_raw(int fd, uint32_t id, const uint8_t *tbs, size_t len)
{
    hsmd_request req;
    memset(&req, 0, sizeof req);
    req.type = HSMD_MSG_ISSUE;
    req.id = id;
    snprintf(req.label, sizeof req.label, "%s", HSM_LABEL_CAPF);
    req.data = tbs;
    req.data_len = len;
    uint8_t *out = NULL, *in = NULL;
    size_t out_len = 0, in_len = 0;
    int64_t deadline = hsmd_deadline_after(30000);
    pt_err rc = hsmd_request_encode(&req, &out, &out_len);
    if (rc == PT_OK)
        rc = hsmd_frame_write(fd, deadline, out, out_len);
    if (rc == PT_OK)
        rc = hsmd_frame_read(fd, deadline, &in, &in_len);
    hsmd_response resp;
    memset(&resp, 0, sizeof resp);
    if (rc == PT_OK)
        rc = hsmd_response_parse(in, in_len, &resp);
    if (rc == PT_OK && (resp.type != HSMD_MSG_OK || resp.id != id || resp.payload_len <= len))
        rc = pt_fail(PT_ERR_PROTOCOL, "hsmd answered %s: %s", hsmd_msg_type_name(resp.type),
                     resp.type == HSMD_MSG_ERROR ? resp.reason : "");
    OPENSSL_free(out);
    OPENSSL_free(in);
    return rc;
}

static void *work(void *arg)
{
    worker *w = arg;
    hsm_client *c = NULL;
    int fd = -1;
    if (w->how == HSMD_CLIENT_LIB &&
        (w->rc = hsm_client_connect(w->b->socket, 30000, &c)) != PT_OK) {
        snprintf(w->error, sizeof w->error, "%s", pt_err_message());
        return NULL;
    }
    if (w->how == HSMD && (fd = connect_to(w->b->socket)) < 0) {
        w->rc = pt_fail_errno("connect %s", w->b->socket);
        snprintf(w->error, sizeof w->error, "%s", pt_err_message());
        return NULL;
    }
    for (unsigned i = (unsigned)w->index * 7; now_ns() < w->deadline_ns; i++) {
        const uint8_t *tbs = w->b->tbs[i % N_TBS];
        size_t len = w->b->tbs_len[i % N_TBS];
        int64_t t0 = now_ns();
        pt_err rc;
        if (w->how == HSMD) {
            rc = issue_raw(fd, i + 1, tbs, len);
        } else if (w->how == HSMD_CLIENT_LIB) {
            X509 *x = NULL;
            rc = hsm_client_issue(c, HSM_LABEL_CAPF, tbs, len, &x);
            X509_free(x);
        } else {
            uint8_t *sig = NULL;
            size_t sig_len = 0;
            rc = token_signer_sign(w->b->signer, EVP_sha256(), tbs, len, 10000, &sig, &sig_len);
            OPENSSL_free(sig);
        }
        if (rc != PT_OK) {
            w->rc = rc;
            snprintf(w->error, sizeof w->error, "%s", pt_err_message());
            break;
        }
        if (w->n_lat < MAX_SAMPLES)
            w->lat_us[w->n_lat++] = (uint32_t)((now_ns() - t0) / 1000);
        w->done++;
    }
    hsm_client_close(c);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Counts and latencies gathered over the rounds of one measurement. */
typedef struct result {
    uint64_t total;
    double seconds;
    double cpu_seconds; /* this process, plus hsmd for requests through it */
    uint32_t *lat;
    size_t n_lat;
    bool ok;
} result;

/* CPU time used so far by this process and, when pid > 0, by process pid. */
static double cpu_seconds(pid_t pid)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double t = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (pid <= 0)
        return t;
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    char *got = f != NULL ? fgets(line, sizeof line, f) : NULL;
    if (f != NULL)
        fclose(f);
    /* Fields 14 and 15 (utime, stime), counted after the command name in parentheses. */
    char *p = got != NULL ? strrchr(line, ')') : NULL;
    unsigned long v[2] = {0, 0};
    for (int field = 3; p != NULL && field <= 15; field++) {
        p = strchr(p + 1, ' '); /* the blank before field number `field` */
        if (p != NULL && field >= 14)
            v[field - 14] = strtoul(p + 1, NULL, 10);
    }
    t += (double)(v[0] + v[1]) / (double)sysconf(_SC_CLK_TCK);
    return t;
}

static void run_round(bench *b, mode how, int clients, double seconds, result *r)
{
    pid_t counted = how == DIRECT ? 0 : b->hsmd_pid;
    double cpu0 = cpu_seconds(counted);
    worker w[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    int64_t start = now_ns();
    int64_t deadline = start + (int64_t)(seconds * 1e9);
    for (int i = 0; i < clients; i++) {
        w[i] = (worker){b, how, i, deadline, 0, calloc(MAX_SAMPLES, 4), 0, PT_OK, ""};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        if (w[i].rc != PT_OK) {
            fprintf(stderr, "bench: %s client %d: %s\n", how == DIRECT ? "direct" : "hsmd", i,
                    w[i].error);
            r->ok = false;
        }
        r->total += w[i].done;
        size_t room = (size_t)MAX_SAMPLES * MAX_CLIENTS * ROUNDS - r->n_lat;
        size_t take = w[i].n_lat < room ? w[i].n_lat : room;
        memcpy(r->lat + r->n_lat, w[i].lat_us, take * 4);
        r->n_lat += take;
        free(w[i].lat_us);
    }
    r->seconds += (double)(now_ns() - start) / 1e9;
    r->cpu_seconds += cpu_seconds(counted) - cpu0;
}

/* CPU microseconds per signature. */
static double cpu_per_sig(const result *r)
{
    return r->total > 0 ? r->cpu_seconds * 1e6 / (double)r->total : 0;
}

static double percentile(result *r, int pct)
{
    if (r->n_lat == 0)
        return 0;
    qsort(r->lat, r->n_lat, 4, cmp_u32);
    size_t i = r->n_lat * (size_t)pct / 100;
    return r->lat[i < r->n_lat ? i : r->n_lat - 1] / 1000.0;
}

static double rate(const result *r)
{
    return r->seconds > 0 ? (double)r->total / r->seconds : 0;
}

static void result_init(result *r)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
    r->lat = calloc((size_t)MAX_SAMPLES * MAX_CLIENTS * ROUNDS, 4);
}

/* One row of the table: direct and hsmd in alternating rounds; returns the ratio. */
static double row(bench *b, int clients, bool *ok)
{
    result d, h;
    result_init(&d);
    result_init(&h);
    for (int round = 0; round < ROUNDS; round++) {
        run_round(b, DIRECT, clients, b->seconds / ROUNDS, &d);
        run_round(b, HSMD, clients, b->seconds / ROUNDS, &h);
    }
    *ok = *ok && d.ok && h.ok;
    double ratio = rate(&d) > 0 ? rate(&h) / rate(&d) : 0;
    char dl[32], hl[32];
    snprintf(dl, sizeof dl, "%.2f / %.2f", percentile(&d, 50), percentile(&d, 99));
    snprintf(hl, sizeof hl, "%.2f / %.2f", percentile(&h, 50), percentile(&h, 99));
    printf("%-8d %12.0f %12.0f %6.0f%%   %-18s %-18s %6.0f / %-6.0f\n", clients, rate(&d), rate(&h),
           ratio * 100, dl, hl, cpu_per_sig(&d), cpu_per_sig(&h));
    fflush(stdout);
    free(d.lat);
    free(h.lat);
    return ratio;
}

static pid_t hsmd_start(const char *hsmd, const char *conf, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *err = freopen(log, "w", stderr);
        (void)err;
        execl(hsmd, hsmd, "--config", conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static bool hsmd_ready(const char *socket, pid_t pid)
{
    for (int i = 0; i < 600; i++) {
        hsm_client *c = NULL;
        char *json = NULL;
        if (hsm_client_connect(socket, 1000, &c) == PT_OK && hsm_client_status(c, &json) == PT_OK) {
            OPENSSL_free(json);
            hsm_client_close(c);
            return true;
        }
        hsm_client_close(c);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return false;
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool make_key(pt_test_store *s, X509 **capf)
{
    token *t = NULL;
    X509_NAME *name = NULL;
    bool ok = pt_test_store_add_token(s, "HSM") && (t = pt_test_store_login(s, "HSM")) != NULL &&
              pt_name_parse("CN=CAPF-bench,O=Example", &name) == PT_OK;
    hsm_key_params p = {name, {EVP_PKEY_RSA, 2048, 0}, 5};
    ok = ok && hsm_key_create(t, HSM_KEY_CAPF, &p, false, capf) == PT_OK;
    /* hsm_key_create's certificate holds the token's key object: keep a plain copy. */
    if (ok)
        ok = (*capf = pt_test_cert_detach(*capf)) != NULL;
    if (!ok)
        fprintf(stderr, "bench: cannot create the CAPF key: %s\n", pt_err_message());
    X509_NAME_free(name);
    token_close(t);
    return ok;
}

/* Start hsmd with its audit log in audit_dir and print one table; false when it could not run. */
static bool table(bench *b, const pt_test_store *s, const char *hsmd, int sessions,
                  const char *audit_dir, const char *where, double *worst, bool *ok)
{
    char conf[512], text[2048], audit[512], log[512];
    snprintf(conf, sizeof conf, "%s/hsmd.conf", s->dir);
    snprintf(audit, sizeof audit, "%s/hsmd-bench-audit-%d.log", audit_dir, (int)getpid());
    snprintf(log, sizeof log, "%s/hsmd.log", s->dir);
    snprintf(text, sizeof text,
             "[hsmd]\nmodule = %s\ntoken = pkcs11:token=HSM?pin-source=file:%s\n"
             "socket = %s\naudit-log = %s\nsessions = %d\nworkers = %d\nlog-level = warn\n"
             "[key CAPF]\noperation = issue\nallow-users = %u\n",
             s->module, s->pin_file, b->socket, audit, sessions, 2 * sessions, (unsigned)getuid());
    if (pt_file_write_atomic(conf, text, strlen(text), 0600) != PT_OK)
        return false;
    pid_t pid = hsmd_start(hsmd, conf, log);
    if (pid < 0 || !hsmd_ready(b->socket, pid)) {
        fprintf(stderr, "bench: hsmd did not start (see %s)\n", log);
        return false;
    }
    b->hsmd_pid = pid;
    printf("\naudit log on %s (%s):\n", where, audit_dir);
    printf("%-8s %12s %12s %7s   %-18s %-18s %s\n", "clients", "direct sig/s", "hsmd sig/s",
           "ratio", "direct p50/p99 ms", "hsmd p50/p99 ms", "CPU us/sig direct / hsmd");
    static const int levels[] = {1, 2, 8};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        double r = row(b, levels[i], ok);
        if (r < worst[i])
            worst[i] = r;
    }
    result c;
    result_init(&c);
    run_round(b, HSMD_CLIENT_LIB, 8, b->seconds / ROUNDS, &c);
    printf("8 clients through hsm_client_issue (X509 parse of every answer): %.0f sig/s, "
           "p50/p99 %.2f / %.2f ms\n",
           rate(&c), percentile(&c, 50), percentile(&c, 99));
    *ok = *ok && c.ok;
    free(c.lat);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(audit);
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-hsmd HSMD [SECONDS] [SESSIONS]\n");
        return 2;
    }
    bench b;
    memset(&b, 0, sizeof b);
    b.seconds = argc > 2 ? strtod(argv[2], NULL) : 3.0;
    long sessions = argc > 3 ? strtol(argv[3], NULL, 10) : 4;
    if (b.seconds <= 0 || sessions < 1 || sessions > 32)
        return 2;
    pt_test_store s;
    if (!pt_test_store_init(&s))
        return 77;
    X509 *capf = NULL;
    if (!make_key(&s, &capf))
        return 1;
    char sock[400];
    snprintf(sock, sizeof sock, "%s/hsmd.sock", s.dir);
    b.socket = sock;

    EVP_PKEY *dummy = pt_test_key("rsa");
    pt_test_tbs t;
    memset(&t, 0, sizeof t);
    t.issuer = X509_get_subject_name(capf);
    t.sig_key = dummy;
    for (int i = 0; i < N_TBS; i++)
        if ((b.tbs[i] = pt_test_tbs_build(&t, &b.tbs_len[i])) == NULL)
            return 1;
    token *tok = pt_test_store_login(&s, "HSM");
    if (tok == NULL ||
        token_signer_open(tok, HSM_LABEL_CAPF, (unsigned)sessions, &b.signer) != PT_OK) {
        fprintf(stderr, "bench: %s\n", pt_err_message());
        return 1;
    }

    printf("hsmd benchmark: CAPF key RSA 2048 on SoftHSM2, %ld PKCS#11 sessions (the direct "
           "pool and hsmd's), %ld hsmd workers, %.1f s per measurement in %d alternating "
           "rounds, %ld CPUs\n",
           sessions, 2 * sessions, b.seconds, ROUNDS, sysconf(_SC_NPROCESSORS_ONLN));
    printf("direct = token_signer_sign of the TBS; hsmd = ISSUE request to certificate "
           "(lint, sign, verify, audit record and fdatasync, answer)\n");
    bool ok = true;
    double worst[3] = {1e9, 1e9, 1e9};
    struct stat st;
    bool ran =
        table(&b, &s, argv[1], (int)sessions, s.dir, "the test directory's disk", worst, &ok);
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        ran = table(&b, &s, argv[1], (int)sessions, "/dev/shm", "tmpfs", worst, &ok) && ran;
    printf("\ntarget: hsmd at least 90%% of the direct rate. Each fdatasync of the audit log "
           "is paid by the\nrequests it covers: a lone client pays one per signature, "
           "concurrent clients share them.\nCPU us/sig counts this process (and hsmd for "
           "hsmd's column): it does not depend on other load\non the machine, which the "
           "rates do.\n");

    token_signer_close(b.signer);
    token_close(tok);
    for (int i = 0; i < N_TBS; i++)
        OPENSSL_free(b.tbs[i]);
    EVP_PKEY_free(dummy);
    X509_free(capf);
    pt_test_store_cleanup(&s);
    return ok && ran ? 0 : 1;
}
