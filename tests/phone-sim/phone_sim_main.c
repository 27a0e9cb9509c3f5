/*
 * phone-sim: a simulated IP phone that enrolls with a CAPF server (capfd),
 * for tests, the demo and the benchmark.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "capf_msg.h"
#include "capfd_conn.h"
#include "cert.h"
#include "cli.h"
#include "fileio.h"
#include "log.h"
#include "phone_sim.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: phone-sim --server HOST:PORT --capf-cert FILE --device NAME [OPTIONS]\n"
            "       phone-sim --server HOST:PORT --capf-cert FILE --bench N --parallel P\n"
            "                 --device-prefix PREFIX [--key-dir DIR]\n"
            "       phone-sim --server HOST:PORT --capf-cert FILE --handshakes N\n"
            "\n"
            "A simulated IP phone for the CAPF protocol: it connects over TLS, verifies the\n"
            "server against the CAPF certificate, authenticates, generates the key the\n"
            "server asks for, stores the LSC it receives, and answers fetch and delete.\n"
            "It prints what happened (session-id, end-session, lsc-serial, ...).\n"
            "\n"
            "Authentication:\n"
            "  --password-file FILE     send the authentication string on its first line\n"
            "  --no-password            send no PASSWORD element (default: the empty string)\n"
            "  --auth-cert FILE --auth-key FILE\n"
            "                           sign with this certificate (an LSC or MIC) and key\n"
            "  --sudi-cert FILE --sudi-key FILE\n"
            "                           also send SUDI data signed with this MIC\n"
            "  --version-send N         VERSION in AUTH_RESPONSE (default 3)\n"
            "What the phone holds and does:\n"
            "  --lsc FILE               its current LSC (fetch returns it, delete deletes it)\n"
            "  --mic FILE               its MIC (fetch returns it when there is no LSC)\n"
            "  --key-dir DIR            pre-generated keys (rsa-2048.pem, ec-P-256.pem, ...);\n"
            "                           keys not found there are generated\n"
            "  --no-ec                  cannot generate EC keys\n"
            "  --keygen-fail N          fail the first N key generations\n"
            "  --in-progress N          REQUEST_IN_PROGRESS messages before the key (1)\n"
            "  --store-fail             report that the LSC could not be stored\n"
            "  --out-lsc FILE           write the LSC received\n"
            "  --out-key FILE           write its private key\n"
            "Misbehaving (for tests):\n"
            "  --misbehave KIND         garbage, bad-header, oversized, malformed, truncated,\n"
            "                           wrong-sid, silent, vanish-auth, vanish-keygen,\n"
            "                           slow-keygen, unexpected\n"
            "Checks and output:\n"
            "  --dump FILE              every message both ways as hex lines (S->C, C->S)\n"
            "  --strict-records         fail unless each server message came in one TLS record\n"
            "  --tls-max VERSION        highest TLS version offered (TLSv1.2 or TLSv1.3)\n"
            "  --timeout SECONDS        give up after this long (30)\n"
            "Benchmark:\n"
            "  --bench N                N enrollments of devices named PREFIX and the index\n"
            "                           (from 1) in 12 hex digits (--device-prefix SEP:\n"
            "                           SEP000000000001, ...)\n"
            "  --parallel P             P phones at once (1)\n"
            "  --handshakes N           N TLS handshakes only, one after the other\n"
            "\n"
            "Exit status: 0 when the server ended the session (END_SESSION or RETRY_LATER)\n"
            "and the checks held, 1 otherwise, 2 usage error.\n");
}

enum {
    OPT_SERVER = 1000,
    OPT_CAPF_CERT,
    OPT_DEVICE,
    OPT_PASSWORD_FILE,
    OPT_NO_PASSWORD,
    OPT_AUTH_CERT,
    OPT_AUTH_KEY,
    OPT_SUDI_CERT,
    OPT_SUDI_KEY,
    OPT_VERSION_SEND,
    OPT_LSC,
    OPT_MIC,
    OPT_KEY_DIR,
    OPT_NO_EC,
    OPT_KEYGEN_FAIL,
    OPT_IN_PROGRESS,
    OPT_STORE_FAIL,
    OPT_OUT_LSC,
    OPT_OUT_KEY,
    OPT_MISBEHAVE,
    OPT_DUMP,
    OPT_STRICT,
    OPT_TLS_MAX,
    OPT_TIMEOUT,
    OPT_BENCH,
    OPT_PARALLEL,
    OPT_DEVICE_FORMAT,
    OPT_HANDSHAKES,
};

typedef struct cli {
    char host[256];
    char port[16];
    const char *capf_cert;
    const char *key_dir;
    const char *out_lsc, *out_key, *dump_path;
    const char *device_format;
    bool strict;
    long bench, parallel, handshakes;
    int tls_max;
    psim_opts o;
    char password[64];
} cli;

static EVP_PKEY *load_key(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (pt_file_read(path, 64 * 1024, &data, &len) != PT_OK)
        return NULL;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_clear_free(data, len);
    if (k == NULL)
        pt_fail_openssl(PT_ERR_FORMAT, "%s is not a PEM private key", path);
    return k;
}

static bool load_cert(const char *path, X509 **x)
{
    X509_free(*x);
    *x = NULL;
    return pt_cert_load_file(path, x) == PT_OK;
}

static bool read_password(const char *path, char *out, size_t outlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (pt_file_read(path, 256, &data, &len) != PT_OK)
        return false;
    size_t n = 0;
    while (n < len && data[n] != '\n' && data[n] != '\r')
        n++;
    bool ok = n < outlen;
    if (ok) {
        memcpy(out, data, n);
        out[n] = '\0';
    }
    OPENSSL_clear_free(data, len);
    return ok;
}

static pt_err write_key(const char *path, EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        return pt_fail_openssl(PT_ERR_OPENSSL, "PEM");
    }
    long len = BIO_get_mem_data(bio, &data);
    pt_err rc = pt_file_write_atomic(path, data, (size_t)len, 0600);
    BIO_free(bio);
    return rc;
}

static int one_session(cli *c, SSL_CTX *ctx)
{
    psim_result r;
    FILE *dump = NULL;
    if (c->dump_path != NULL) {
        dump = fopen(c->dump_path, "w");
        if (dump == NULL) {
            pt_fail_errno("%s", c->dump_path);
            return pt_cli_report(PT_ERR_ERRNO, "--dump");
        }
        c->o.dump = dump;
    }
    pt_err rc = psim_session(ctx, c->host, c->port, &c->o, &r);
    if (dump != NULL)
        fclose(dump);
    printf("session-id: %u\n", r.sid);
    printf("keygen-requests: %u\n", r.keygen_requests);
    printf("max-records-per-message: %u\n", r.max_records);
    if (r.retry_later)
        printf("retry-later: yes\n");
    if (r.end_reason >= 0)
        printf("end-session: %d (%s)\n", r.end_reason, capf_reason_name((uint8_t)r.end_reason));
    if (r.fetched)
        printf("fetched: yes\n");
    if (r.deleted)
        printf("deleted: yes\n");
    int status = rc == PT_OK ? PT_EXIT_OK : PT_EXIT_FAIL;
    if (rc != PT_OK)
        printf("error: %s\n", r.error);
    if (r.new_lsc != NULL) {
        pt_cert_info ci;
        if (pt_cert_info_get(r.new_lsc, &ci) == PT_OK) {
            printf("lsc-serial: %s\nlsc-subject: %s\nlsc-key: %s\n", ci.serial, ci.subject, ci.key);
            pt_cert_info_free(&ci);
        }
        if (c->out_lsc != NULL && pt_cert_write_pem_file(c->out_lsc, r.new_lsc) != PT_OK)
            status = pt_cli_report(PT_ERR_IO, "--out-lsc");
        if (c->out_key != NULL && write_key(c->out_key, r.new_key) != PT_OK)
            status = pt_cli_report(PT_ERR_IO, "--out-key");
    }
    if (c->strict && r.max_records > 1) {
        printf("error: a server message took %u TLS records (the writing rule says one)\n",
               r.max_records);
        status = PT_EXIT_FAIL;
    }
    psim_result_free(&r);
    return status;
}

/* ---- benchmark ------------------------------------------------------------------------- */

typedef struct bench {
    cli *c;
    SSL_CTX *ctx;
    pthread_mutex_t lock;
    long next, done, failed;
} bench;

static void *bench_worker(void *arg)
{
    bench *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        long i = b->next <= b->c->bench ? b->next++ : 0;
        pthread_mutex_unlock(&b->lock);
        if (i == 0)
            break;
        char device[80];
        snprintf(device, sizeof device, "%s%012lX", b->c->device_format, (unsigned long)i);
        psim_opts o = b->c->o;
        o.device = device;
        psim_result r;
        pt_err rc = psim_session(b->ctx, b->c->host, b->c->port, &o, &r);
        bool ok = rc == PT_OK && r.end_reason == CAPF_REASON_OK && r.new_lsc != NULL;
        if (!ok)
            fprintf(stderr, "phone-sim: %s: %s\n", device,
                    r.error[0] ? r.error : "no LSC received");
        psim_result_free(&r);
        pthread_mutex_lock(&b->lock);
        b->done++;
        b->failed += !ok;
        pthread_mutex_unlock(&b->lock);
    }
    OPENSSL_thread_stop();
    return NULL;
}

static int run_bench(cli *c, SSL_CTX *ctx)
{
    if (c->device_format == NULL)
        return pt_cli_usage_error("--bench needs --device-prefix, e.g. SEP");
    bench b = {c, ctx, PTHREAD_MUTEX_INITIALIZER, 1, 0, 0};
    pthread_t th[256];
    long p = c->parallel;
    int64_t t0 = capfd_now_ms();
    for (long i = 0; i < p; i++)
        pthread_create(&th[i], NULL, bench_worker, &b);
    for (long i = 0; i < p; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(capfd_now_ms() - t0) / 1000.0;
    printf("enrollments: %ld parallel: %ld seconds: %.3f per-second: %.2f failed: %ld\n", b.done, p,
           secs, secs > 0 ? (double)(b.done - b.failed) / secs : 0.0, b.failed);
    return b.failed == 0 ? PT_EXIT_OK : PT_EXIT_FAIL;
}

static int run_handshakes(cli *c, SSL_CTX *ctx)
{
    int64_t t0 = capfd_now_ms();
    long failed = 0;
    for (long i = 0; i < c->handshakes; i++)
        if (psim_handshake(ctx, c->host, c->port, 10000) != PT_OK)
            failed++;
    double secs = (double)(capfd_now_ms() - t0) / 1000.0;
    printf("handshakes: %ld seconds: %.3f per-second: %.2f failed: %ld\n", c->handshakes, secs,
           secs > 0 ? (double)(c->handshakes - failed) / secs : 0.0, failed);
    return failed == 0 ? PT_EXIT_OK : PT_EXIT_FAIL;
}

/* ---- options --------------------------------------------------------------------------- */

static int parse_server(cli *c, const char *text)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || strlen(colon + 1) >= sizeof c->port ||
        (size_t)(colon - text) >= sizeof c->host)
        return pt_cli_usage_error("--server HOST:PORT, e.g. 127.0.0.1:3804");
    memcpy(c->host, text, (size_t)(colon - text));
    c->host[colon - text] = '\0';
    snprintf(c->port, sizeof c->port, "%s", colon + 1);
    return PT_EXIT_OK;
}

static int parse_option(cli *c, int opt, const char *arg)
{
    long n = 0;
    switch (opt) {
    case OPT_SERVER:
        return parse_server(c, arg);
    case OPT_CAPF_CERT:
        c->capf_cert = arg;
        break;
    case OPT_DEVICE:
        c->o.device = arg;
        break;
    case OPT_PASSWORD_FILE:
        if (!read_password(arg, c->password, sizeof c->password))
            return pt_cli_usage_error("--password-file %s cannot be read", arg);
        c->o.password = c->password;
        break;
    case OPT_NO_PASSWORD:
        c->o.password = NULL;
        break;
    case OPT_AUTH_CERT:
        if (!load_cert(arg, &c->o.auth_cert))
            return pt_cli_usage_error("--auth-cert: %s", pt_err_message());
        break;
    case OPT_AUTH_KEY:
        EVP_PKEY_free(c->o.auth_key);
        if ((c->o.auth_key = load_key(arg)) == NULL)
            return pt_cli_usage_error("--auth-key: %s", pt_err_message());
        break;
    case OPT_SUDI_CERT:
        if (!load_cert(arg, &c->o.sudi_cert))
            return pt_cli_usage_error("--sudi-cert: %s", pt_err_message());
        break;
    case OPT_SUDI_KEY:
        EVP_PKEY_free(c->o.sudi_key);
        if ((c->o.sudi_key = load_key(arg)) == NULL)
            return pt_cli_usage_error("--sudi-key: %s", pt_err_message());
        break;
    case OPT_VERSION_SEND:
        if (!pt_cli_parse_long(arg, 0, 255, &n))
            return pt_cli_usage_error("--version-send 0..255");
        c->o.version = (uint8_t)n;
        break;
    case OPT_LSC:
        if (!load_cert(arg, &c->o.lsc))
            return pt_cli_usage_error("--lsc: %s", pt_err_message());
        break;
    case OPT_MIC:
        if (!load_cert(arg, &c->o.mic))
            return pt_cli_usage_error("--mic: %s", pt_err_message());
        break;
    case OPT_KEY_DIR:
        c->key_dir = arg;
        break;
    case OPT_NO_EC:
        c->o.no_ec = true;
        break;
    case OPT_KEYGEN_FAIL:
    case OPT_IN_PROGRESS:
        if (!pt_cli_parse_long(arg, 0, 1000, &n))
            return pt_cli_usage_error("a count 0..1000 is needed");
        if (opt == OPT_KEYGEN_FAIL)
            c->o.keygen_fail = (unsigned)n;
        else
            c->o.in_progress = (unsigned)n;
        break;
    case OPT_STORE_FAIL:
        c->o.store_fail = true;
        break;
    case OPT_OUT_LSC:
        c->out_lsc = arg;
        break;
    case OPT_OUT_KEY:
        c->out_key = arg;
        break;
    case OPT_MISBEHAVE: {
        int m = psim_misbehave_parse(arg);
        if (m < 0)
            return pt_cli_usage_error("--misbehave: unknown kind '%s'", arg);
        c->o.misbehave = (psim_misbehave)m;
        break;
    }
    case OPT_DUMP:
        c->dump_path = arg;
        break;
    case OPT_STRICT:
        c->strict = true;
        break;
    case OPT_TLS_MAX:
        if (strcmp(arg, "TLSv1.2") == 0)
            c->tls_max = TLS1_2_VERSION;
        else if (strcmp(arg, "TLSv1.3") == 0)
            c->tls_max = TLS1_3_VERSION;
        else
            return pt_cli_usage_error("--tls-max TLSv1.2 or TLSv1.3");
        break;
    case OPT_TIMEOUT:
        if (!pt_cli_parse_long(arg, 1, 3600, &n))
            return pt_cli_usage_error("--timeout 1..3600 seconds");
        c->o.timeout_ms = (int)n * 1000;
        break;
    case OPT_BENCH:
    case OPT_HANDSHAKES:
        if (!pt_cli_parse_long(arg, 1, 1000000, &n))
            return pt_cli_usage_error("a count 1..1000000 is needed");
        if (opt == OPT_BENCH)
            c->bench = n;
        else
            c->handshakes = n;
        break;
    case OPT_PARALLEL:
        if (!pt_cli_parse_long(arg, 1, 256, &c->parallel))
            return pt_cli_usage_error("--parallel 1..256");
        break;
    case OPT_DEVICE_FORMAT:
        c->device_format = arg;
        break;
    default:
        return pt_cli_usage_error("unknown option");
    }
    return PT_EXIT_OK;
}

static void cli_free(cli *c)
{
    X509_free(c->o.auth_cert);
    EVP_PKEY_free(c->o.auth_key);
    X509_free(c->o.sudi_cert);
    EVP_PKEY_free(c->o.sudi_key);
    X509_free(c->o.lsc);
    X509_free(c->o.mic);
    psim_keys_free(c->o.keys);
    OPENSSL_cleanse(c->password, sizeof c->password);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, OPT_SERVER},
        {"capf-cert", required_argument, NULL, OPT_CAPF_CERT},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"no-password", no_argument, NULL, OPT_NO_PASSWORD},
        {"auth-cert", required_argument, NULL, OPT_AUTH_CERT},
        {"auth-key", required_argument, NULL, OPT_AUTH_KEY},
        {"sudi-cert", required_argument, NULL, OPT_SUDI_CERT},
        {"sudi-key", required_argument, NULL, OPT_SUDI_KEY},
        {"version-send", required_argument, NULL, OPT_VERSION_SEND},
        {"lsc", required_argument, NULL, OPT_LSC},
        {"mic", required_argument, NULL, OPT_MIC},
        {"key-dir", required_argument, NULL, OPT_KEY_DIR},
        {"no-ec", no_argument, NULL, OPT_NO_EC},
        {"keygen-fail", required_argument, NULL, OPT_KEYGEN_FAIL},
        {"in-progress", required_argument, NULL, OPT_IN_PROGRESS},
        {"store-fail", no_argument, NULL, OPT_STORE_FAIL},
        {"out-lsc", required_argument, NULL, OPT_OUT_LSC},
        {"out-key", required_argument, NULL, OPT_OUT_KEY},
        {"misbehave", required_argument, NULL, OPT_MISBEHAVE},
        {"dump", required_argument, NULL, OPT_DUMP},
        {"strict-records", no_argument, NULL, OPT_STRICT},
        {"tls-max", required_argument, NULL, OPT_TLS_MAX},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"bench", required_argument, NULL, OPT_BENCH},
        {"parallel", required_argument, NULL, OPT_PARALLEL},
        {"device-prefix", required_argument, NULL, OPT_DEVICE_FORMAT},
        {"handshakes", required_argument, NULL, OPT_HANDSHAKES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    cli c;
    memset(&c, 0, sizeof c);
    c.o.password = "";
    c.o.version = CAPF_VERSION;
    c.o.in_progress = 1;
    c.o.timeout_ms = 30000;
    c.parallel = 1;
    pt_log_init("phone-sim", PT_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    int o, status = PT_EXIT_OK;
    while (status == PT_EXIT_OK && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'h') {
            usage(stdout);
            cli_free(&c);
            return PT_EXIT_OK;
        }
        status = o == '?' ? pt_cli_usage_error("unknown option") : parse_option(&c, o, optarg);
    }
    if (status == PT_EXIT_OK && (c.host[0] == '\0' || c.capf_cert == NULL))
        status = pt_cli_usage_error("--server and --capf-cert are required");
    if (status == PT_EXIT_OK && c.bench == 0 && c.handshakes == 0 && c.o.device == NULL)
        status = pt_cli_usage_error("--device NAME is required");
    if (status == PT_EXIT_OK && (c.o.auth_cert == NULL) != (c.o.auth_key == NULL))
        status = pt_cli_usage_error("--auth-cert and --auth-key go together");
    if (status == PT_EXIT_OK && (c.o.sudi_cert == NULL) != (c.o.sudi_key == NULL))
        status = pt_cli_usage_error("--sudi-cert and --sudi-key go together");
    SSL_CTX *ctx = NULL;
    if (status == PT_EXIT_OK && psim_keys_new(c.key_dir, &c.o.keys) != PT_OK)
        status = pt_cli_report(PT_ERR_NOMEM, "keys");
    if (status == PT_EXIT_OK) {
        pt_err rc = psim_tls_ctx(c.capf_cert, c.tls_max, &ctx);
        if (rc != PT_OK)
            status = pt_cli_report(rc, "--capf-cert");
    }
    if (status == PT_EXIT_OK) {
        if (c.handshakes > 0)
            status = run_handshakes(&c, ctx);
        else if (c.bench > 0)
            status = run_bench(&c, ctx);
        else
            status = one_session(&c, ctx);
    }
    SSL_CTX_free(ctx);
    cli_free(&c);
    return status;
}
