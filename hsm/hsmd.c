/*
 * hsmd: the signing service in front of the HSM that holds the CAPF CA key
 * and the ITLRecovery key. The only process that opens that HSM. It runs in
 * the foreground (for systemd, Type=notify), logs to standard error, and
 * serves authorised local clients over a Unix socket (hsm/PROTOCOL.md),
 * checking every request against its key's policy and recording every
 * answer in a hash-chained audit log (hsm/AUDIT.md) before giving it.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "harden.h"
#include "hsmd_config.h"
#include "hsmd_hsm.h"
#include "hsmd_server.h"
#include "hsmd_service.h"
#include "log.h"
#include "pt_config.h"

#if PT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* Exit codes beyond common/cli.h's: the unit does not restart hsmd on these. */
enum {
    HSMD_EXIT_PIN = 3,   /* the HSM refused the PIN (or is locked): a restart would try it again */
    HSMD_EXIT_AUDIT = 4, /* the audit log's chain is broken */
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: hsmd [--config FILE] [--new-audit-chain] [--check-config] [-v]\n"
                 "\n"
                 "The signing service in front of the HSM that holds the CAPF CA key and the\n"
                 "ITLRecovery key. It opens the HSM, listens on a Unix socket and signs what\n"
                 "authorised local clients ask for, when each key's policy allows it, recording\n"
                 "every request in a hash-chained audit log. It runs in the foreground and logs\n"
                 "to standard error (run it from systemd: hsm/hsmd.service).\n"
                 "\n"
                 "Options:\n"
                 "  --config FILE      configuration (default " HSMD_CONFIG_DEFAULT_PATH ");\n"
                 "                     see hsmd.conf(5) for every setting\n"
                 "  --new-audit-chain  when the audit log's chain is broken, move the log aside\n"
                 "                     (LOG.broken-TIME) and start a new one linked to its last\n"
                 "                     good record; without it hsmd refuses to start\n"
                 "  --check-config     read the configuration, print what it says and exit\n"
                 "  -v, --verbose      log every request\n"
                 "  -V, --version      print the version\n"
                 "  -h, --help         show this help\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT stop (queued requests are still answered); SIGHUP\n"
                 "makes one new login attempt after the HSM refused the PIN.\n"
                 "\n"
                 "Exit status: 0 stopped by a signal, 1 failure (e.g. HSM missing at start),\n"
                 "2 configuration error, 3 the HSM refused the PIN, 4 broken audit log.\n");
}

static void notify_state(void *ctx, hsmd_hsm_state state, const char *detail)
{
    (void)ctx;
#if PT_HAVE_SYSTEMD
    if (state == HSMD_HSM_READY)
        sd_notify(0, "STATUS=serving; HSM ready");
    else
        sd_notifyf(0, "STATUS=serving; HSM %s: %.200s", hsmd_hsm_state_name(state), detail);
#else
    (void)state;
    (void)detail;
#endif
}

static void on_hup(void *ctx)
{
    hsmd_hsm_retry(ctx);
}

static void print_config(const hsmd_config *cfg)
{
    printf("module:      %s\ntoken:       %s\nsocket:      %s (mode %04o", cfg->module,
           cfg->token_uri, cfg->socket_path, (unsigned)cfg->socket_mode);
    if (cfg->has_socket_group)
        printf(", group %u", (unsigned)cfg->socket_group);
    printf(")\naudit log:   %s\nsessions:    %u per key; workers %u; queue %u; max-clients %u\n",
           cfg->audit_log, cfg->sessions, cfg->workers, cfg->queue, cfg->max_clients);
    for (size_t i = 0; i < cfg->n_keys; i++) {
        const hsmd_key_config *k = &cfg->keys[i];
        printf("key %s:  token label '%s', %s, %zu users, %zu groups", k->name, k->label,
               hsmd_op_name(k->op), k->users.n, k->groups.n);
        if (k->op == HSMD_OP_ISSUE)
            printf(", at most %ld days", k->max_validity_days);
        printf("\n");
    }
}

/* SIGTERM, SIGINT and SIGHUP arrive on a descriptor; every thread inherits the mask. */
static int signals_take(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int exit_code_for(pt_err rc)
{
    switch (rc) {
    case PT_ERR_USAGE:
        return PT_EXIT_USAGE;
    case PT_ERR_PIN_INCORRECT:
    case PT_ERR_PIN_LOCKED:
    case PT_ERR_PIN_FINAL_TRY:
    case PT_ERR_PIN_CHANGE:
        return HSMD_EXIT_PIN;
    default:
        return PT_EXIT_FAIL;
    }
}

int main(int argc, char **argv)
{
    pt_log_init("hsmd", PT_LOG_INFO);
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"new-audit-chain", no_argument, NULL, 'n'},
        {"check-config", no_argument, NULL, 'k'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = HSMD_CONFIG_DEFAULT_PATH;
    bool new_chain = false, check_only = false, verbose = false;
    int c;
    while ((c = getopt_long(argc, argv, "vVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'n':
            new_chain = true;
            break;
        case 'k':
            check_only = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'V':
            printf("hsmd %s\n", PT_VERSION);
            return PT_EXIT_OK;
        case 'h':
            usage(stdout);
            return PT_EXIT_OK;
        default:
            return pt_cli_usage_error("unknown option");
        }
    }
    if (optind != argc)
        return pt_cli_usage_error("unexpected argument '%s'", argv[optind]);

    /* Before any secret is in memory: no core dumps, no ptrace. */
    if (pt_harden_process() != PT_OK)
        return pt_cli_report(PT_ERR_ERRNO, "cannot harden the process");
    pt_secure_heap_init();

    hsmd_config *cfg = NULL;
    pt_err rc = hsmd_config_load(config_path, &cfg);
    if (rc != PT_OK) {
        fprintf(stderr, "hsmd: %s\n", pt_err_message());
        return PT_EXIT_USAGE;
    }
    if (check_only) {
        print_config(cfg);
        hsmd_config_free(cfg);
        return PT_EXIT_OK;
    }
    pt_log_init("hsmd", verbose               ? PT_LOG_DEBUG
                        : cfg->log_level >= 0 ? (pt_log_level)cfg->log_level
                                              : PT_LOG_INFO);

    int exit_code = PT_EXIT_OK;
    audit_log *audit = NULL;
    hsmd_hsm *hsm = NULL;
    hsmd_service *svc = NULL;
    hsmd_server *srv = NULL;
    int sfd = signals_take();
    if (sfd < 0) {
        rc = pt_fail_errno("cannot set up signal handling");
        exit_code = pt_cli_report(rc, "start-up");
        goto out;
    }
    rc = audit_log_open(cfg->audit_log, new_chain ? AUDIT_OPEN_NEW_CHAIN : AUDIT_OPEN_EXISTING,
                        &audit);
    if (rc == PT_ERR_VERIFY) {
        fprintf(stderr,
                "hsmd: %s\nhsmd: the audit log's chain is broken, so hsmd will not add to it. "
                "Keep the file for investigation (hsmctl audit verify %s), then start hsmd with "
                "--new-audit-chain to move it aside and begin a new chain linked to its last "
                "good record.\n",
                pt_err_message(), cfg->audit_log);
        exit_code = HSMD_EXIT_AUDIT;
        goto out;
    }
    if (rc != PT_OK) {
        exit_code = pt_cli_report(rc, "cannot open the audit log");
        goto out;
    }
    rc = hsmd_hsm_open(cfg, &hsm);
    if (rc != PT_OK) {
        fprintf(stderr, "hsmd: cannot open the HSM: %s\n", pt_err_message());
        exit_code = exit_code_for(rc);
        goto out;
    }
    rc = hsmd_service_new(cfg, hsm, audit, &svc);
    if (rc == PT_OK)
        rc = hsmd_server_new(cfg, svc, &srv);
    if (rc == PT_OK)
        rc = hsmd_hsm_start(hsm, notify_state, NULL);
    if (rc != PT_OK) {
        fprintf(stderr, "hsmd: %s\n", pt_err_message());
        exit_code = exit_code_for(rc);
        goto out;
    }
    for (size_t i = 0; i < hsmd_hsm_key_count(hsm); i++) {
        const hsmd_key *k = hsmd_hsm_key_at(hsm, i);
        pt_log_info("key %s: %s, %s", k->cfg->name, k->algorithm, hsmd_op_name(k->cfg->op));
    }
    pt_log_info("serving on %s (audit log %s)", cfg->socket_path, cfg->audit_log);
#if PT_HAVE_SYSTEMD
    sd_notify(0, "READY=1\nSTATUS=serving; HSM ready");
#endif
    rc = hsmd_server_run(srv, sfd, on_hup, hsm);
#if PT_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    if (rc != PT_OK)
        exit_code = pt_cli_report(rc, "server");
    else
        pt_log_info("stopped");
out:
    hsmd_server_free(srv);
    hsmd_service_free(svc);
    hsmd_hsm_close(hsm);
    audit_log_close(audit);
    hsmd_config_free(cfg);
    if (sfd >= 0)
        close(sfd);
    return exit_code;
}
