/*
 * ctlclient create: a new CTLFile.tlv from at least two security tokens and
 * the cluster's server certificates, signed by one of the tokens.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "cli.h"
#include "cmd.h"
#include "ctlbuild.h"
#include "log.h"
#include "output.h"
#include "signer.h"
#include "token.h"
#include "wizard.h"

#define CREATE_MAX_SAST  16
#define CREATE_MAX_CERTS 128

static void create_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: ctlclient create -o PATH [-o PATH...] --sast URI --sast URI [--sast URI...]\n"
        "                 [--sign-with URI] [--ccm-tftp CERT]... [--ccm CERT]... [--tftp CERT]...\n"
        "                 [--capf CERT]... [--tvs CERT]... [--app-server CERT]...\n"
        "                 [--mode mixed|nonsecure] [--digest sha1|sha512] [--timestamp UNIX]\n"
        "                 [--tls-timeout SECS] [--module PATH] [--pin-fd N] [--allow-final-try]\n"
        "\n"
        "Build a new CTL file listing at least 2 security tokens (SAST) and the cluster's\n"
        "servers, signed with one of the tokens, and write it to every -o location.\n"
        "Without --sast, the tokens are asked for at the terminal, one at a time.\n"
        "\n"
        "  -o, --output PATH    where to write (repeat for every TFTP location); each is\n"
        "                       written atomically; every PATH must have the same file name\n"
        "                       (normally CTLFile.tlv), which is written into the file\n"
        "  --sast URI           a security token (PKCS#11 URI, e.g. 'pkcs11:token=SAST-1'\n"
        "                       or 'pkcs11:serial=...'; or hsmd:SOCKET#LABEL); its SAST\n"
        "                       certificate is read without a PIN. At least 2 distinct tokens\n"
        "  --sign-with URI      the token that signs (one of the --sast tokens; default: the\n"
        "                       first). Its PIN is asked for only when the file is signed\n"
        "  --ccm-tftp CERT      a CallManager that is also the TFTP server (CCM+TFTP)\n"
        "  --ccm CERT           a CallManager (CCM); a CTL needs at least one CCM or CCM+TFTP\n"
        "  --tftp CERT          a TFTP or alternate TFTP server\n"
        "  --capf CERT          a CAPF server\n"
        "  --tvs CERT           a TVS server\n"
        "  --app-server CERT    an application server\n"
        "  --mode MODE          mixed (default): every record carries its certificate;\n"
        "                       nonsecure: the cluster's non-secure mode, records carry no\n"
        "                       certificate, except the SAST records, which keep theirs\n"
        "                       because phones need them to verify the next CTL\n"
        "  --digest ALG         sha1 (default) or sha512\n"
        "  --timestamp UNIX     the creation time written into the file (default: now); for\n"
        "                       reproducible builds only\n"
        "  --tls-timeout SECS   bound on fetching a tls:// certificate (default 10)\n"
        "  --module PATH        PKCS#11 module for tokens whose URI has no module-path=\n"
        "                       (default: p11-kit's proxy, else OpenSC's module)\n"
        "  --pin-fd N           read the PIN from file descriptor N (else pin-source= in the\n"
        "                       URI, else a prompt at the terminal)\n"
        "  --allow-final-try    accept a token's final PIN try (a wrong PIN then locks it)\n"
        "\n"
        "CERT is a PEM or DER certificate file, or tls://HOST:PORT to fetch the certificate\n"
        "a server presents; either may be followed by ,host=NAME (the record's DNS name),\n"
        ",ip=ADDR (its IPv4 address) and ,sha256=HEX (the expected SHA-256 fingerprint).\n"
        "A tls:// certificate is used only when it matches sha256= or is confirmed at the\n"
        "terminal after its fingerprint is shown.\n"
        "\n"
        "Limits: at most 100 records and 75 KB per CTL file.\n"
        "Exit status: 0 success, 1 failure (no location or some locations written: see the\n"
        "per-location lines), 2 usage error.\n");
}

enum {
    OPT_SAST = CTL_OPT_FIRST_COMMAND_OPT,
    OPT_SIGN_WITH,
    OPT_CCM_TFTP,
    OPT_CCM,
    OPT_TFTP,
    OPT_CAPF,
    OPT_TVS,
    OPT_APP_SERVER,
    OPT_MODE,
};

typedef struct create_args {
    const char *outputs[CTL_OUTPUT_MAX];
    size_t n_outputs;
    const char *sast[CREATE_MAX_SAST];
    size_t n_sast;
    const char *sign_with;
    ctl_cert_opt certs[CREATE_MAX_CERTS];
    size_t n_certs;
    bool nonsecure;
    ctl_file_opts file;
} create_args;

/* The role a CERT option gives its record, or -1 when opt is not a CERT option. */
static int cert_option_role(int opt, const char **name)
{
    switch (opt) {
    case OPT_CCM_TFTP:
        *name = "--ccm-tftp";
        return TLV_ROLE_CCM_TFTP;
    case OPT_CCM:
        *name = "--ccm";
        return TLV_ROLE_CCM;
    case OPT_TFTP:
        *name = "--tftp";
        return TLV_ROLE_TFTP;
    case OPT_CAPF:
        *name = "--capf";
        return TLV_ROLE_CAPF;
    case OPT_TVS:
        *name = "--tvs";
        return TLV_ROLE_TVS;
    case OPT_APP_SERVER:
        *name = "--app-server";
        return TLV_ROLE_APP_SERVER;
    default:
        return -1;
    }
}

static bool has_callmanager(const create_args *a)
{
    for (size_t i = 0; i < a->n_certs; i++)
        if (a->certs[i].role == TLV_ROLE_CCM || a->certs[i].role == TLV_ROLE_CCM_TFTP)
            return true;
    return false;
}

/* Print one token's line, and warn about a token that could never sign. */
static void sast_report(size_t i, ctl_signer *s)
{
    pt_cert_info ci;
    if (pt_cert_info_get(ctl_signer_cert(s), &ci) != PT_OK)
        return;
    token_pin_state st = token_pin_state_from_flags(ctl_signer_token_flags(s));
    printf("security token %zu: %s, PIN state %s\n  certificate %s, serial %s, SHA-256 %s\n", i + 1,
           ctl_signer_describe(s), ctl_signer_is_hsmd(s) ? "n/a" : token_pin_state_name(st),
           ci.subject, ci.serial, ci.sha256);
    if (st == TOKEN_PIN_STATE_LOCKED)
        pt_log_warn("%s is locked for good: it can never sign a CTL file; list another token",
                    ctl_signer_describe(s));
    if (EVP_PKEY_get_base_id(X509_get0_pubkey(ctl_signer_cert(s))) != EVP_PKEY_RSA)
        pt_log_warn("%s has a %s key: CTL files are signed with RSA keys only, so it can never "
                    "sign one",
                    ctl_signer_describe(s), ci.key);
    pt_cert_info_free(&ci);
}

/* Two SAST entries that are the same token, or hold the same certificate. */
static pt_err sast_distinct(ctl_signer *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            const char *a = ctl_signer_token_serial(v[i]), *b = ctl_signer_token_serial(v[j]);
            bool same = (a != NULL && b != NULL && strcmp(a, b) == 0) ||
                        X509_cmp(ctl_signer_cert(v[i]), ctl_signer_cert(v[j])) == 0;
            if (same)
                return pt_fail(PT_ERR_EXISTS,
                               "The Security Token you have inserted already exists in the CTL "
                               "File: --sast %zu and --sast %zu are the same token (%s); at "
                               "least 2 distinct security tokens are needed",
                               j + 1, i + 1, ctl_signer_describe(v[i]));
        }
    }
    return PT_OK;
}

/* --sign-with names a --sast token: the same token serial, or the same certificate for hsmd. */
static pt_err pick_signer(ctl_modules *mods, const create_args *a, ctl_signer **sast,
                          ctl_signer **extra, ctl_signer **signer)
{
    *signer = sast[0];
    if (a->sign_with == NULL)
        return PT_OK;
    for (size_t i = 0; i < a->n_sast; i++) {
        if (strcmp(a->sast[i], a->sign_with) == 0) {
            *signer = sast[i];
            return PT_OK;
        }
    }
    pt_err rc = ctl_signer_open(mods, a->sign_with, NULL, extra);
    if (rc != PT_OK)
        return rc;
    for (size_t i = 0; i < a->n_sast; i++) {
        if (X509_cmp(ctl_signer_cert(sast[i]), ctl_signer_cert(*extra)) == 0) {
            *signer = *extra;
            return PT_OK;
        }
    }
    return pt_fail(PT_ERR_REFUSED,
                   "The Security Token cannot be used to sign the CTL File: %s is not one of the "
                   "--sast tokens. The token must be in the CTL file: name one of the --sast "
                   "tokens with --sign-with",
                   ctl_signer_describe(*extra));
}

static int create_run(const create_args *a, const ctl_common_opts *o)
{
    ctl_modules *mods = NULL;
    ctl_signer *sast[CREATE_MAX_SAST] = {NULL};
    ctl_signer *extra = NULL, *signer = NULL;
    ctl_records recs;
    ctl_records_init(&recs);
    pt_err rc = ctl_modules_new(o->module, &mods);
    for (size_t i = 0; rc == PT_OK && i < a->n_sast; i++) {
        rc = ctl_signer_open(mods, a->sast[i], NULL, &sast[i]);
        if (rc != PT_OK)
            rc = pt_err_context(rc, "--sast %s", a->sast[i]);
    }
    if (rc == PT_OK)
        rc = sast_distinct(sast, a->n_sast);
    for (size_t i = 0; rc == PT_OK && i < a->n_sast; i++) {
        sast_report(i, sast[i]);
        rc = ctl_records_add(&recs, TLV_ROLE_SAST, ctl_signer_cert(sast[i]), NULL, false, NULL);
    }
    if (rc == PT_OK)
        rc = pick_signer(mods, a, sast, &extra, &signer);
    if (rc == PT_OK)
        rc = ctl_cert_opts_load(a->certs, a->n_certs, a->file.tls_timeout_ms, &recs);
    if (rc == PT_OK) {
        ctl_build_job job = {.records = &recs,
                             .signer = signer,
                             .digest = a->file.digest,
                             .nonsecure = a->nonsecure,
                             .has_timestamp = a->file.has_timestamp,
                             .timestamp = a->file.timestamp,
                             .outputs = a->outputs,
                             .n_outputs = a->n_outputs};
        rc = ctl_build_sign_write(&job, o);
    }
    ctl_records_free(&recs);
    ctl_signer_close(extra);
    for (size_t i = 0; i < a->n_sast; i++)
        ctl_signer_close(sast[i]);
    ctl_modules_free(mods);
    return rc == PT_OK ? PT_EXIT_OK : pt_cli_report(rc, "CTL file not created");
}

/* Without --sast: the tokens are inserted one at a time at the terminal. */
static int create_wizard(const create_args *a, const ctl_common_opts *o)
{
    ctl_wizard_token *toks = NULL;
    size_t n = 0;
    ctl_modules *mods = NULL;
    ctl_signer *signer = NULL;
    ctl_records recs;
    ctl_records_init(&recs);
    pt_err rc = ctl_wizard_collect(o->module, CREATE_MAX_SAST, &toks, &n);
    for (size_t i = 0; rc == PT_OK && i < n; i++)
        rc = ctl_records_add(&recs, TLV_ROLE_SAST, toks[i].cert, NULL, false, NULL);
    if (rc == PT_OK)
        rc = ctl_cert_opts_load(a->certs, a->n_certs, a->file.tls_timeout_ms, &recs);
    if (rc == PT_OK)
        rc = ctl_wizard_await(o->module, &toks[0], "again to sign the CTL file");
    if (rc == PT_OK)
        rc = ctl_modules_new(o->module, &mods);
    if (rc == PT_OK) {
        char uri[64];
        snprintf(uri, sizeof uri, "pkcs11:serial=%s", toks[0].serial);
        rc = ctl_signer_open(mods, uri, toks[0].cert, &signer);
    }
    if (rc == PT_OK) {
        ctl_build_job job = {.records = &recs,
                             .signer = signer,
                             .digest = a->file.digest,
                             .nonsecure = a->nonsecure,
                             .has_timestamp = a->file.has_timestamp,
                             .timestamp = a->file.timestamp,
                             .outputs = a->outputs,
                             .n_outputs = a->n_outputs};
        rc = ctl_build_sign_write(&job, o);
    }
    ctl_records_free(&recs);
    ctl_signer_close(signer);
    ctl_modules_free(mods);
    ctl_wizard_tokens_free(toks, n);
    if (rc == PT_ERR_USAGE)
        return pt_cli_usage_error("%s", pt_err_message());
    return rc == PT_OK ? PT_EXIT_OK : pt_cli_report(rc, "CTL file not created");
}

static int create_parse(int argc, char **argv, create_args *a, ctl_common_opts *o, bool *done)
{
    static const struct option longopts[] = {
        CTL_COMMON_LONGOPTS,
        {"output", required_argument, NULL, 'o'},
        {"sast", required_argument, NULL, OPT_SAST},
        {"sign-with", required_argument, NULL, OPT_SIGN_WITH},
        {"ccm-tftp", required_argument, NULL, OPT_CCM_TFTP},
        {"ccm", required_argument, NULL, OPT_CCM},
        {"tftp", required_argument, NULL, OPT_TFTP},
        {"capf", required_argument, NULL, OPT_CAPF},
        {"tvs", required_argument, NULL, OPT_TVS},
        {"app-server", required_argument, NULL, OPT_APP_SERVER},
        {"mode", required_argument, NULL, OPT_MODE},
        CTL_FILE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int c, code;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        if (ctl_common_opt(o, c, optarg, &code) || ctl_file_opt(&a->file, c, optarg, &code)) {
            if (code != PT_EXIT_OK)
                return code;
            continue;
        }
        const char *name = NULL;
        int role = cert_option_role(c, &name);
        if (role >= 0) {
            code = ctl_cert_opt_add(a->certs, &a->n_certs, CREATE_MAX_CERTS, (uint16_t)role, name,
                                    optarg);
            if (code != PT_EXIT_OK)
                return code;
            continue;
        }
        switch (c) {
        case 'h':
            create_usage(stdout);
            *done = true;
            return PT_EXIT_OK;
        case 'o':
            if (a->n_outputs == CTL_OUTPUT_MAX)
                return pt_cli_usage_error("too many -o locations");
            a->outputs[a->n_outputs++] = optarg;
            break;
        case OPT_SAST:
            if (a->n_sast == CREATE_MAX_SAST)
                return pt_cli_usage_error("at most %d --sast tokens", CREATE_MAX_SAST);
            a->sast[a->n_sast++] = optarg;
            break;
        case OPT_SIGN_WITH:
            a->sign_with = optarg;
            break;
        case OPT_MODE:
            if (!ctl_mode_parse(optarg, &a->nonsecure))
                return pt_cli_usage_error("--mode takes mixed or nonsecure");
            break;
        default:
            return pt_cli_usage_error("unknown option for 'create'");
        }
    }
    if (optind < argc)
        return pt_cli_usage_error("'create' takes no arguments ('%s'?)", argv[optind]);
    return PT_EXIT_OK;
}

int ctl_cmd_create(int argc, char **argv)
{
    create_args a;
    ctl_common_opts o;
    memset(&a, 0, sizeof a);
    memset(&o, 0, sizeof o);
    ctl_file_opts_init(&a.file);
    bool done = false;
    int code = create_parse(argc, argv, &a, &o, &done);
    if (code == PT_EXIT_OK && !done) {
        const char *base = NULL;
        if (ctl_output_check(a.outputs, a.n_outputs, &base) != PT_OK)
            code = pt_cli_usage_error("%s", pt_err_message());
        else if (a.n_sast == 1)
            code = pt_cli_usage_error(
                "You must have at least 2 security tokens in the CTL File: at least 2 security "
                "tokens are needed, give --sast URI for each (losing the only token would leave "
                "every phone unable to accept a new CTL)");
        else if (!has_callmanager(&a))
            code = pt_cli_usage_error("a CTL file needs a CallManager record: give --ccm-tftp "
                                      "CERT (or --ccm CERT) for the CallManager server");
        else if (a.n_sast == 0 && a.sign_with != NULL)
            code = pt_cli_usage_error("--sign-with needs the tokens given with --sast");
        else
            code = a.n_sast == 0 ? create_wizard(&a, &o) : create_run(&a, &o);
    }
    ctl_cert_opts_free(a.certs, a.n_certs);
    return code;
}
