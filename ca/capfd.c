/*
 * capfd: the on-line CAPF server. Phones connect over TLS (port 3804),
 * authenticate and have their LSC installed, fetched or deleted; every LSC is
 * signed by hsmd. See ca/README.md and ca/capfd.conf.example.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "capfd_config.h"
#include "capfd_issuer.h"
#include "capfd_server.h"
#include "capfd_session.h"
#include "capfd_tls.h"
#include "cert.h"
#include "cli.h"
#include "der.h"
#include "fileio.h"
#include "harden.h"
#include "log.h"
#include "lsc.h"
#include "pt_config.h"

#if PT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

static void usage(FILE *out)
{
    fprintf(out, "Usage: capfd --config FILE [--check-config]\n"
                 "       capfd --config FILE --issue-tls-cert NAME\n"
                 "             [--new-key rsa:2048|rsa:3072|ec:P-256]\n"
                 "\n"
                 "The on-line CAPF server: phones connect over TLS (port 3804 by default),\n"
                 "authenticate, and have their Locally Significant Certificate (LSC) installed,\n"
                 "fetched or deleted as capfctl scheduled it. Every LSC is signed by hsmd.\n"
                 "capfd runs in the foreground and logs to standard error, one line per session.\n"
                 "\n"
                 "Options:\n"
                 "  --config FILE          the configuration (see capfd.conf(5))\n"
                 "  --check-config         check the configuration, the TLS certificate and key,\n"
                 "                         the trust directories, the store and hsmd, then exit\n"
                 "  --issue-tls-cert NAME  have hsmd issue capfd's TLS certificate for NAME with\n"
                 "                         the CAPF CA key and write it (then the CA certificate)\n"
                 "                         to [tls] certificate; the key is [tls] key\n"
                 "  --new-key SPEC         with --issue-tls-cert: first generate [tls] key as a\n"
                 "                         new PEM file: rsa:2048, rsa:3072 or ec:P-256\n"
                 "  --version              show the version\n"
                 "  -h, --help             show this help\n"
                 "\n"
                 "Signals: SIGTERM and SIGINT end running sessions and stop.\n"
                 "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static capfd_server *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running != NULL)
        capfd_server_stop(running);
}

static void notify(const char *state)
{
#if PT_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

typedef struct capfd_app {
    capfd_config cfg;
    capf_store *store;
    capfd_issuer *issuer;
    capfd_tls *tls;
    capfd_ctx ctx;
} capfd_app;

static void app_free(capfd_app *a)
{
    capfd_tls_free(a->tls);
    capfd_issuer_free(a->issuer);
    capf_store_close(a->store);
    X509_free(a->ctx.issuer_cert);
    sk_X509_pop_free(a->ctx.trust, X509_free);
    capfd_config_free(&a->cfg);
}

/* hsmd and the issuing certificate it holds. */
static pt_err issuer_open(capfd_app *a)
{
    const capfd_config *c = &a->cfg;
    pt_err rc = capfd_issuer_hsmd(c->hsmd_socket, c->issuer_label, c->hsmd_timeout_ms, &a->issuer);
    a->ctx.issuer = a->issuer;
    if (rc == PT_OK)
        rc = capfd_issuer_cert(a->issuer, &a->ctx.issuer_cert);
    if (rc != PT_OK)
        return pt_err_context(rc, "the issuing certificate from hsmd");
    return PT_OK;
}

/* The certificates trusted for authentication: the issuing CA, [auth] lsc-trust-dir, then
 * mic-trust-dir. */
static pt_err trust_load(capfd_app *a)
{
    a->ctx.trust = sk_X509_new_null();
    if (a->ctx.trust == NULL || !X509_up_ref(a->ctx.issuer_cert))
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (!sk_X509_push(a->ctx.trust, a->ctx.issuer_cert)) {
        X509_free(a->ctx.issuer_cert);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    pt_err rc = PT_OK;
    if (a->cfg.lsc_trust_dir != NULL)
        rc = capfd_trust_dir_load(a->cfg.lsc_trust_dir, a->ctx.trust, &n);
    a->ctx.n_lsc_trust = sk_X509_num(a->ctx.trust);
    if (rc == PT_OK && a->cfg.mic_trust_dir != NULL)
        rc = capfd_trust_dir_load(a->cfg.mic_trust_dir, a->ctx.trust, &n);
    if (rc != PT_OK)
        return pt_err_context(rc, "[auth]");
    return PT_OK;
}

static pt_err app_open(capfd_app *a)
{
    a->ctx.cfg = &a->cfg;
    pt_err rc = capf_store_open(a->cfg.store_url, &a->store);
    if (rc != PT_OK)
        return pt_err_context(rc, "[store] url");
    a->ctx.store = a->store;
    rc = issuer_open(a);
    if (rc == PT_OK)
        rc = trust_load(a);
    if (rc == PT_OK)
        rc = capfd_tls_new(&a->cfg, &a->tls);
    return rc;
}

static void print_summary(capfd_app *a)
{
    pt_cert_info tls, ca;
    char key[CAPF_DEVICE_KEY_TEXT_MAX];
    if (pt_cert_info_get(capfd_tls_cert(a->tls), &tls) != PT_OK)
        return;
    if (pt_cert_info_get(a->ctx.issuer_cert, &ca) != PT_OK) {
        pt_cert_info_free(&tls);
        return;
    }
    printf("configuration OK\n"
           "  listen:        %s port %u\n"
           "  TLS:           %s (%s, key %s), valid to %s\n"
           "  issuing CA:    %s (%s) through hsmd %s, key %s\n"
           "  trust:         %d LSC issuer(s), %d manufacturing CA(s)\n"
           "  store:         %s\n"
           "  service:       %s keys, LSCs valid %u years, %u session(s) at once\n",
           a->cfg.listen, a->cfg.port, tls.subject, tls.key,
           capfd_tls_key_on_token(a->tls) ? "on a token" : "in a file", tls.not_after, ca.subject,
           ca.key, a->cfg.hsmd_socket, a->cfg.issuer_label, a->ctx.n_lsc_trust,
           sk_X509_num(a->ctx.trust) - a->ctx.n_lsc_trust, a->cfg.store_url,
           capfd_key_text(&a->cfg.default_key, key), a->cfg.validity_years, a->cfg.max_sessions);
    if (X509_check_issued(a->ctx.issuer_cert, capfd_tls_cert(a->tls)) != X509_V_OK &&
        X509_cmp(a->ctx.issuer_cert, capfd_tls_cert(a->tls)) != 0)
        printf("  note: the TLS certificate is not issued by the CAPF CA: phones that check it "
               "against the CTL/ITL CAPF record may refuse it (see capfd --issue-tls-cert)\n");
    pt_cert_info_free(&tls);
    pt_cert_info_free(&ca);
}

static int serve(capfd_app *a)
{
    capfd_server *srv = NULL;
    pt_err rc = capfd_server_new(&a->ctx, capfd_tls_ctx(a->tls), &srv);
    if (rc != PT_OK)
        return pt_cli_report(rc, "cannot start");
    unsigned port = capfd_server_port(srv);
    if (a->cfg.port_file != NULL) {
        char text[16];
        int n = snprintf(text, sizeof text, "%u\n", port);
        rc = pt_file_write_atomic(a->cfg.port_file, text, (size_t)n, 0644);
        if (rc != PT_OK) {
            capfd_server_free(srv);
            return pt_cli_report(rc, "[server] port-file");
        }
    }
    running = srv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pt_cert_info ca;
    if (pt_cert_info_get(a->ctx.issuer_cert, &ca) == PT_OK) {
        pt_log_info("listening on %s port %u; LSCs issued by %s through hsmd (key %s)",
                    a->cfg.listen, port, ca.subject, a->cfg.issuer_label);
        pt_cert_info_free(&ca);
    }
    notify("READY=1");
    rc = capfd_server_run(srv);
    notify("STOPPING=1");
    running = NULL;
    capfd_server_free(srv);
    pt_log_info("stopped");
    return rc == PT_OK ? PT_EXIT_OK : pt_cli_report(rc, "server");
}

/* ---- --issue-tls-cert -------------------------------------------------------------- */

static pt_err new_key_file(const char *path, const char *spec)
{
    EVP_PKEY *k = NULL;
    if (access(path, F_OK) == 0)
        return pt_fail(PT_ERR_EXISTS, "%s exists already; remove it or drop --new-key", path);
    if (strcmp(spec, "rsa:2048") == 0)
        k = EVP_RSA_gen(2048);
    else if (strcmp(spec, "rsa:3072") == 0)
        k = EVP_RSA_gen(3072);
    else if (strcmp(spec, "ec:P-256") == 0)
        k = EVP_EC_gen("P-256");
    else
        return pt_fail(PT_ERR_USAGE, "--new-key is rsa:2048, rsa:3072 or ec:P-256");
    if (k == NULL)
        return pt_fail_openssl(PT_ERR_OPENSSL, "key generation");
    BIO *bio = BIO_new(BIO_s_mem());
    pt_err rc = PT_OK;
    char *data = NULL;
    long len = 0;
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1)
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "PEM encoding");
    else
        len = BIO_get_mem_data(bio, &data);
    if (rc == PT_OK)
        rc = pt_file_write_atomic(path, data, (size_t)len, 0600);
    BIO_free(bio);
    EVP_PKEY_free(k);
    return rc;
}

static int issue_tls_cert(capfd_app *a, const char *name, const char *new_key)
{
    const capfd_config *c = &a->cfg;
    pt_err rc = lsc_device_name_check(name);
    if (rc != PT_OK)
        return pt_cli_usage_error("--issue-tls-cert: %s", pt_err_message());
    if (new_key != NULL && strncmp(c->tls_key, "pkcs11:", 7) == 0)
        return pt_cli_usage_error("--new-key makes a PEM file; [tls] key is a pkcs11: URI");
    if (new_key != NULL && (rc = new_key_file(c->tls_key, new_key)) != PT_OK)
        return pt_cli_report(rc, "--new-key");
    EVP_PKEY *key = NULL;
    capfd_key_holder *holder = NULL;
    uint8_t *spki = NULL, *tbs = NULL;
    size_t tbs_len = 0;
    X509 *cert = NULL;
    char *pem = NULL, *ca_pem = NULL;
    rc = capfd_tls_key_load(c->tls_key, c->tls_module, &key, &holder);
    if (rc == PT_OK)
        rc = issuer_open(a);
    int spki_len = rc == PT_OK ? i2d_PUBKEY(key, &spki) : 0;
    if (rc == PT_OK && spki_len <= 0)
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "the TLS key's public key");
    if (rc == PT_OK) {
        /* The LSC profile: an end-entity certificate hsmd's policy for the CAPF key accepts,
         * with serverAuth and keyEncipherment for TLS. */
        lsc_params p = {a->ctx.issuer_cert, name, spki, (size_t)spki_len, 0, 0, NULL, 0};
        p.not_before = time(NULL);
        p.not_after = pt_time_add_years(p.not_before, (int)c->validity_years);
        rc = lsc_tbs_build(&p, &tbs, &tbs_len);
    }
    if (rc == PT_OK)
        rc = capfd_issuer_issue(a->issuer, tbs, tbs_len, &cert);
    if (rc == PT_OK && X509_verify(cert, X509_get0_pubkey(a->ctx.issuer_cert)) != 1)
        rc = pt_fail(PT_ERR_VERIFY, "the certificate from hsmd does not verify");
    if (rc == PT_OK)
        rc = pt_cert_to_pem(cert, &pem);
    if (rc == PT_OK)
        rc = pt_cert_to_pem(a->ctx.issuer_cert, &ca_pem);
    if (rc == PT_OK) {
        size_t l1 = strlen(pem), l2 = strlen(ca_pem);
        char *chain = OPENSSL_malloc(l1 + l2 + 1);
        if (chain == NULL) {
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        } else {
            snprintf(chain, l1 + l2 + 1, "%s%s", pem, ca_pem);
            rc = pt_file_write_atomic(c->tls_cert, chain, l1 + l2, 0644);
            OPENSSL_free(chain);
        }
    }
    if (rc == PT_OK) {
        pt_cert_info ci;
        if (pt_cert_info_get(cert, &ci) == PT_OK) {
            printf("TLS certificate issued by the CAPF CA through hsmd\n  subject:  %s\n"
                   "  issuer:   %s\n  serial:   %s\n  key:      %s\n  valid to: %s\n"
                   "  written:  %s (the certificate, then the CA certificate)\n",
                   ci.subject, ci.issuer, ci.serial, ci.key, ci.not_after, c->tls_cert);
            pt_cert_info_free(&ci);
        }
    }
    OPENSSL_free(pem);
    OPENSSL_free(ca_pem);
    OPENSSL_free(tbs);
    OPENSSL_free(spki);
    X509_free(cert);
    EVP_PKEY_free(key);
    capfd_tls_key_release(holder);
    return rc == PT_OK ? PT_EXIT_OK : pt_cli_report(rc, "--issue-tls-cert");
}

enum { OPT_CONFIG = 1000, OPT_CHECK, OPT_ISSUE_TLS, OPT_NEW_KEY, OPT_VERSION };

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, OPT_CONFIG},
                                         {"check-config", no_argument, NULL, OPT_CHECK},
                                         {"issue-tls-cert", required_argument, NULL, OPT_ISSUE_TLS},
                                         {"new-key", required_argument, NULL, OPT_NEW_KEY},
                                         {"version", no_argument, NULL, OPT_VERSION},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *tls_name = NULL, *new_key = NULL;
    bool check = false;
    pt_log_init("capfd", PT_LOG_INFO);
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_ISSUE_TLS:
            tls_name = optarg;
            break;
        case OPT_NEW_KEY:
            new_key = optarg;
            break;
        case OPT_VERSION:
            printf("capfd %s\n", PT_VERSION);
            return PT_EXIT_OK;
        case 'h':
            usage(stdout);
            return PT_EXIT_OK;
        default:
            return pt_cli_usage_error("unknown option");
        }
    }
    if (optind < argc)
        return pt_cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (config == NULL)
        return pt_cli_usage_error("--config FILE is required");
    if (new_key != NULL && tls_name == NULL)
        return pt_cli_usage_error("--new-key goes with --issue-tls-cert");
    if (check && tls_name != NULL)
        return pt_cli_usage_error("--check-config and --issue-tls-cert do not go together");

    /* Authentication strings and session state live here: no core dumps, no ptrace. */
    if (pt_harden_process() != PT_OK)
        pt_log_warn("%s", pt_err_message());
    signal(SIGPIPE, SIG_IGN);

    capfd_app a;
    memset(&a, 0, sizeof a);
    pt_err rc = capfd_config_defaults(&a.cfg);
    if (rc == PT_OK)
        rc = capfd_config_load(config, &a.cfg);
    if (rc != PT_OK) {
        capfd_config_free(&a.cfg);
        return pt_cli_usage_error("%s", pt_err_message());
    }
    pt_log_init("capfd", a.cfg.log_level);
    int status;
    if (tls_name != NULL) {
        status = issue_tls_cert(&a, tls_name, new_key);
    } else {
        rc = app_open(&a);
        if (rc != PT_OK) {
            notify("STATUS=failed to start");
            status = pt_cli_report(rc, check ? "configuration check failed" : "cannot start");
        } else if (check) {
            print_summary(&a);
            status = PT_EXIT_OK;
        } else {
            status = serve(&a);
        }
    }
    app_free(&a);
    return status;
}
