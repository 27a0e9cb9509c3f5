/*
 * ctlclient itl build: an ITLFile.tlv signed by the TFTP server's key (on any
 * PKCS#11 token), or re-signed through hsmd with the ITLRecovery key.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "ctlbuild.h"
#include "hsm_client.h"
#include "output.h"
#include "signer.h"

#define ITL_MAX_CERTS 256

static void itl_usage(FILE *out)
{
    fprintf(out,
            "Usage: ctlclient itl build -o PATH [-o PATH...] --signer SIGNER [--signer-cert CERT]\n"
            "                 [--signer-role tftp|ccm-tftp] [--tftp CERT]... [--ccm-tftp CERT]...\n"
            "                 [--tvs CERT]... [--capf CERT]... [--itlrecovery CERT]\n"
            "                 [--digest sha1|sha512] [--timestamp UNIX] [--tls-timeout SECS]\n"
            "                 [--module PATH] [--pin-fd N] [--allow-final-try]\n"
            "\n"
            "Build an Initial Trust List (ITLFile.tlv) and write it to every -o location.\n"
            "\n"
            "  --signer SIGNER      the signing key: a PKCS#11 URI for the TFTP server's key\n"
            "                       (e.g. a SoftHSM2 token on the TFTP server), or\n"
            "                       hsmd:SOCKET#LABEL for a key held by hsmd (the ITLRecovery\n"
            "                       key: this is how an ITL is re-signed to recover phones)\n"
            "  --signer-cert CERT   the signer's certificate (default: the certificate on the\n"
            "                       token, or the one hsmd holds for the key)\n"
            "  --signer-role ROLE   a PKCS#11 signer is the TFTP server: it is listed as SAST\n"
            "                       (so phones can verify the file) and as tftp (default) or\n"
            "                       ccm-tftp\n"
            "  --tftp, --ccm-tftp CERT\n"
            "                       the TFTP server's certificate, when the signer is not the\n"
            "                       TFTP server (needed with an hsmd signer)\n"
            "  --tvs CERT           a TVS server (repeat for each)\n"
            "  --capf CERT          a CAPF server (repeat for each)\n"
            "  --itlrecovery CERT   the ITLRecovery certificate, listed as SAST so that phones\n"
            "                       accept an ITL later signed with the ITLRecovery key\n"
            "  --digest ALG         sha1 (default) or sha512\n"
            "  --timestamp UNIX     creation time (default: now); for reproducible builds only\n"
            "  --tls-timeout SECS   bound on fetching a tls:// certificate (default 10)\n"
            "  --module PATH, --pin-fd N, --allow-final-try\n"
            "                       as for 'ctlclient token check'\n"
            "\n"
            "An hsmd signer is listed as SAST only: it signs, it is not the TFTP server.\n"
            "CERT is as for 'ctlclient create' (a file or tls://HOST:PORT, with ,host=, ,ip=,\n"
            ",sha256=). An ITL over 64 KB (more than about 40 certificates) is written with a\n"
            "warning: phones fail to load it.\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

enum {
    OPT_SIGNER = CTL_OPT_FIRST_COMMAND_OPT,
    OPT_SIGNER_CERT,
    OPT_SIGNER_ROLE,
    OPT_TFTP,
    OPT_CCM_TFTP,
    OPT_TVS,
    OPT_CAPF,
    OPT_ITLRECOVERY,
};

typedef struct itl_args {
    const char *outputs[CTL_OUTPUT_MAX];
    size_t n_outputs;
    const char *signer;
    ctl_cert_arg signer_cert;
    bool has_signer_cert;
    uint16_t signer_role;
    bool has_signer_role;
    ctl_cert_opt certs[ITL_MAX_CERTS];
    size_t n_certs;
    ctl_file_opts file;
} itl_args;

static bool has_tftp_cert(const itl_args *a)
{
    for (size_t i = 0; i < a->n_certs; i++)
        if (a->certs[i].role == TLV_ROLE_TFTP || a->certs[i].role == TLV_ROLE_CCM_TFTP)
            return true;
    return false;
}

static pt_err itl_records(const itl_args *a, ctl_signer *s, ctl_records *recs)
{
    X509 *sc = ctl_signer_cert(s);
    pt_err rc = ctl_records_add(recs, TLV_ROLE_SAST, sc, NULL, false, NULL);
    if (rc == PT_OK && !ctl_signer_is_hsmd(s))
        rc = ctl_records_add(recs, a->signer_role, sc, a->signer_cert.dns_name,
                             a->signer_cert.has_ipv4, a->signer_cert.ipv4);
    for (size_t i = 0; rc == PT_OK && i < a->n_certs; i++) {
        const ctl_cert_opt *c = &a->certs[i];
        X509 *x = NULL;
        rc = ctl_cert_arg_load(&c->arg, a->file.tls_timeout_ms, &x);
        if (rc != PT_OK) {
            rc = pt_err_context(rc, "%s", c->option);
            break;
        }
        /* The ITLRecovery certificate may be the signer's own (re-signing through hsmd). */
        if (ctl_records_find(recs, c->role, x) >= 0 && c->role == TLV_ROLE_SAST &&
            X509_cmp(x, sc) == 0) {
            X509_free(x);
            continue;
        }
        if (ctl_records_find(recs, c->role, x) >= 0)
            rc = pt_fail(PT_ERR_EXISTS,
                         "%s: entry already exists: that certificate is already "
                         "listed with that role; give it once",
                         c->option);
        else
            rc = ctl_records_add(recs, c->role, x, c->arg.dns_name, c->arg.has_ipv4, c->arg.ipv4);
        X509_free(x);
    }
    return rc;
}

static int itl_run(const itl_args *a, const ctl_common_opts *o)
{
    ctl_modules *mods = NULL;
    ctl_signer *s = NULL;
    X509 *cert = NULL;
    ctl_records recs;
    ctl_records_init(&recs);
    pt_err rc = ctl_modules_new(o->module, &mods);
    if (rc == PT_OK && a->has_signer_cert) {
        rc = ctl_cert_arg_load(&a->signer_cert, a->file.tls_timeout_ms, &cert);
        if (rc != PT_OK)
            rc = pt_err_context(rc, "--signer-cert");
    }
    if (rc == PT_OK) {
        rc = ctl_signer_open(mods, a->signer, cert, &s);
        if (rc != PT_OK)
            rc = pt_err_context(rc, "--signer %s", a->signer);
    }
    if (rc == PT_OK)
        rc = itl_records(a, s, &recs);
    if (rc == PT_OK) {
        ctl_build_job job = {.records = &recs,
                             .signer = s,
                             .digest = a->file.digest,
                             .itl = true,
                             .has_timestamp = a->file.has_timestamp,
                             .timestamp = a->file.timestamp,
                             .outputs = a->outputs,
                             .n_outputs = a->n_outputs};
        rc = ctl_build_sign_write(&job, o);
    }
    ctl_records_free(&recs);
    ctl_signer_close(s);
    ctl_modules_free(mods);
    X509_free(cert);
    return rc == PT_OK ? PT_EXIT_OK : pt_cli_report(rc, "ITL file not built");
}

static int itl_option(int c, itl_args *a)
{
    switch (c) {
    case 'o':
        if (a->n_outputs == CTL_OUTPUT_MAX)
            return pt_cli_usage_error("too many -o locations");
        a->outputs[a->n_outputs++] = optarg;
        return PT_EXIT_OK;
    case OPT_SIGNER:
        a->signer = optarg;
        return PT_EXIT_OK;
    case OPT_SIGNER_CERT:
        if (a->has_signer_cert)
            return pt_cli_usage_error("--signer-cert given twice");
        if (ctl_cert_arg_parse(optarg, &a->signer_cert) != PT_OK)
            return pt_cli_usage_error("--signer-cert: %s", pt_err_message());
        a->has_signer_cert = true;
        return PT_EXIT_OK;
    case OPT_SIGNER_ROLE:
        a->has_signer_role = true;
        if (strcmp(optarg, "tftp") == 0)
            a->signer_role = TLV_ROLE_TFTP;
        else if (strcmp(optarg, "ccm-tftp") == 0)
            a->signer_role = TLV_ROLE_CCM_TFTP;
        else
            return pt_cli_usage_error("--signer-role takes tftp or ccm-tftp");
        return PT_EXIT_OK;
    default:
        return pt_cli_usage_error("unknown option for 'itl build'");
    }
}

static int cert_option(int c, itl_args *a, bool *handled)
{
    static const struct {
        int opt;
        uint16_t role;
        const char *name;
    } map[] = {
        {OPT_TFTP, TLV_ROLE_TFTP, "--tftp"},
        {OPT_CCM_TFTP, TLV_ROLE_CCM_TFTP, "--ccm-tftp"},
        {OPT_TVS, TLV_ROLE_TVS, "--tvs"},
        {OPT_CAPF, TLV_ROLE_CAPF, "--capf"},
        {OPT_ITLRECOVERY, TLV_ROLE_SAST, "--itlrecovery"},
    };
    *handled = false;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].opt != c)
            continue;
        *handled = true;
        if (c == OPT_ITLRECOVERY) {
            for (size_t j = 0; j < a->n_certs; j++)
                if (a->certs[j].role == TLV_ROLE_SAST)
                    return pt_cli_usage_error("--itlrecovery given twice");
        }
        return ctl_cert_opt_add(a->certs, &a->n_certs, ITL_MAX_CERTS, map[i].role, map[i].name,
                                optarg);
    }
    return PT_EXIT_OK;
}

static int itl_check_run(int argc, char **argv, itl_args *a, const ctl_common_opts *o)
{
    const char *base = NULL;
    if (optind < argc)
        return pt_cli_usage_error("'itl build' takes no arguments ('%s'?)", argv[optind]);
    if (a->signer == NULL)
        return pt_cli_usage_error(
            "'itl build' needs --signer (a PKCS#11 URI or hsmd:SOCKET#LABEL)");
    if (ctl_output_check(a->outputs, a->n_outputs, &base) != PT_OK)
        return pt_cli_usage_error("%s", pt_err_message());
    bool hsmd = hsm_client_is_signer(a->signer);
    if (hsmd && a->has_signer_role)
        return pt_cli_usage_error("--signer-role is for a TFTP key on a token; an hsmd signer is "
                                  "listed as SAST only");
    if (hsmd && !has_tftp_cert(a))
        return pt_cli_usage_error("with an hsmd signer, give the TFTP server's certificate with "
                                  "--tftp CERT or --ccm-tftp CERT (phones need it to trust "
                                  "their configuration files)");
    return itl_run(a, o);
}

int ctl_cmd_itl(int argc, char **argv)
{
    if (argc < 2) {
        itl_usage(stderr);
        return PT_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        itl_usage(stdout);
        return PT_EXIT_OK;
    }
    if (strcmp(argv[1], "build") != 0)
        return pt_cli_usage_error("unknown itl command '%s' (build)", argv[1]);
    static const struct option longopts[] = {
        CTL_COMMON_LONGOPTS,
        {"output", required_argument, NULL, 'o'},
        {"signer", required_argument, NULL, OPT_SIGNER},
        {"signer-cert", required_argument, NULL, OPT_SIGNER_CERT},
        {"signer-role", required_argument, NULL, OPT_SIGNER_ROLE},
        {"tftp", required_argument, NULL, OPT_TFTP},
        {"ccm-tftp", required_argument, NULL, OPT_CCM_TFTP},
        {"tvs", required_argument, NULL, OPT_TVS},
        {"capf", required_argument, NULL, OPT_CAPF},
        {"itlrecovery", required_argument, NULL, OPT_ITLRECOVERY},
        CTL_FILE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    itl_args a;
    ctl_common_opts o;
    memset(&a, 0, sizeof a);
    memset(&o, 0, sizeof o);
    ctl_file_opts_init(&a.file);
    a.signer_role = TLV_ROLE_TFTP;
    int c, code = PT_EXIT_OK;
    optind = 2;
    while (code == PT_EXIT_OK && (c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        bool handled = false;
        if (ctl_common_opt(&o, c, optarg, &code) || ctl_file_opt(&a.file, c, optarg, &code))
            continue;
        if (c == 'h') {
            itl_usage(stdout);
            break;
        }
        code = cert_option(c, &a, &handled);
        if (!handled)
            code = itl_option(c, &a);
    }
    if (code == PT_EXIT_OK && c != 'h')
        code = itl_check_run(argc, argv, &a, &o);
    ctl_cert_opts_free(a.certs, a.n_certs);
    ctl_cert_arg_free(&a.signer_cert);
    return code;
}
