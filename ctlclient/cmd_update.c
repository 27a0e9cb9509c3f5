/*
 * ctlclient update: a new CTL from a verified old one, signed by a token the
 * old one lists. Adding and removing tokens and servers, and the lost-token
 * procedure (add a new token, remove the lost one, sign with a remaining one).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cert.h"
#include "cli.h"
#include "cmd.h"
#include "ctlbuild.h"
#include "fileio.h"
#include "hex.h"
#include "log.h"
#include "output.h"
#include "signer.h"

#define UPDATE_MAX_LIST  32
#define UPDATE_MAX_CERTS 128
#define UPDATE_MAX_BARE  128

static void update_usage(FILE *out)
{
    fprintf(out,
            "Usage: ctlclient update -i OLD -o PATH [-o PATH...] --sign-with URI\n"
            "                 [--add-sast URI]... [--remove-sast SERIAL]... [--add-tftp CERT]...\n"
            "                 [--tftp CERT]...\n"
            "                 [--remove SERIAL]... [--ccm-tftp CERT]... [--ccm CERT]... [--capf "
            "CERT]...\n"
            "                 [--tvs CERT]... [--app-server CERT]... [--mode mixed|nonsecure]\n"
            "                 [--digest sha1|sha512] [--timestamp UNIX] [--tls-timeout SECS]\n"
            "                 [--module PATH] [--pin-fd N] [--allow-final-try]\n"
            "\n"
            "Build a new CTL file from OLD (which must verify), with the changes asked for,\n"
            "signed by a security token that OLD lists: phones holding OLD accept the new file\n"
            "only from such a token.\n"
            "\n"
            "  -i, --input OLD       the CTL file the phones have now\n"
            "  -o, --output PATH     where to write (repeat for every TFTP location); atomic\n"
            "  --sign-with URI       the signing token (PKCS#11 URI, or hsmd:SOCKET#LABEL); it\n"
            "                        must already be a security token of OLD\n"
            "  --add-sast URI        add a security token (its SAST certificate, no PIN needed)\n"
            "  --remove-sast SERIAL  remove the security token whose certificate has this serial\n"
            "                        (hex, as 'ctlclient show' prints it); at least 2 remain\n"
            "  --add-tftp CERT       add an alternate TFTP server (also --tftp)\n"
            "  --remove SERIAL       remove a server record: alternate TFTP servers freely, other\n"
            "                        servers only when replaced in the same update (e.g. a new\n"
            "                        --ccm-tftp certificate for a --remove'd CCM+TFTP record)\n"
            "  --ccm-tftp, --ccm, --capf, --tvs, --app-server CERT\n"
            "                        add a server record (CERT as for 'ctlclient create')\n"
            "  --mode MODE           mixed or nonsecure (default: as OLD); nonsecure records\n"
            "                        carry no certificate except the SAST records\n"
            "  --digest ALG          sha1 or sha512 (default: as OLD)\n"
            "  --timestamp UNIX      creation time (default: now); for reproducible builds only\n"
            "  --tls-timeout SECS    bound on fetching a tls:// certificate (default 10)\n"
            "  --module PATH, --pin-fd N, --allow-final-try\n"
            "                        as for 'ctlclient token check'\n"
            "\n"
            "Lost token: 'update -i OLD --sign-with REMAINING --add-sast NEW --remove-sast LOST'.\n"
            "The server records of a non-secure OLD carry no certificate, so they cannot be\n"
            "rebuilt from OLD: give each again with its CERT option (or --remove it).\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

enum {
    OPT_SIGN_WITH = CTL_OPT_FIRST_COMMAND_OPT,
    OPT_ADD_SAST,
    OPT_REMOVE_SAST,
    OPT_REMOVE,
    OPT_ADD_TFTP,
    OPT_CCM_TFTP,
    OPT_CCM,
    OPT_CAPF,
    OPT_TVS,
    OPT_APP_SERVER,
    OPT_MODE,
};

typedef struct update_args {
    const char *input;
    const char *outputs[CTL_OUTPUT_MAX];
    size_t n_outputs;
    const char *sign_with;
    const char *add_sast[UPDATE_MAX_LIST];
    size_t n_add_sast;
    const char *remove_sast[UPDATE_MAX_LIST];
    size_t n_remove_sast;
    const char *remove[UPDATE_MAX_LIST];
    size_t n_remove;
    ctl_cert_opt certs[UPDATE_MAX_CERTS];
    size_t n_certs;
    bool has_mode, nonsecure;
    ctl_file_opts file;
} update_args;

/* OLD's records that carry no certificate (non-secure mode): kept only if given again. */
typedef struct certless {
    uint16_t role;
    const uint8_t *serial;
    size_t serial_len;
    const char *subject;
    bool resolved;
} certless;

typedef struct update_state {
    tlv_file *old;
    ctl_records recs;
    certless bare[UPDATE_MAX_BARE];
    size_t n_bare;
    bool old_nonsecure;
    ctl_modules *mods;
    ctl_signer *signer;
    ctl_signer *added[UPDATE_MAX_LIST];
} update_state;

static int cert_option_role(int opt, const char **name)
{
    switch (opt) {
    case OPT_ADD_TFTP:
        *name = "--add-tftp";
        return TLV_ROLE_TFTP;
    case OPT_CCM_TFTP:
        *name = "--ccm-tftp";
        return TLV_ROLE_CCM_TFTP;
    case OPT_CCM:
        *name = "--ccm";
        return TLV_ROLE_CCM;
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

static bool cert_serial_is(X509 *x, const uint8_t *serial, size_t len)
{
    uint8_t *mine = NULL;
    size_t n = 0;
    bool eq = tlv_serial_encode(X509_get0_serialNumber(x), &mine, &n) == PT_OK &&
              tlv_serial_equal(mine, n, serial, len);
    OPENSSL_free(mine);
    return eq;
}

static pt_err load_old(const char *path, update_state *st)
{
    tlv_verify_result res;
    pt_err rc = tlv_file_load(path, &st->old);
    if (rc != PT_OK)
        return rc;
    if (tlv_file_verify(st->old, NULL, &res) != PT_OK)
        return pt_err_context(PT_ERR_VERIFY,
                              "%s does not verify, so phones would not have accepted it; "
                              "refusing to update it (build a new CTL with 'ctlclient create' "
                              "only if phones never loaded it)",
                              path);
    for (size_t i = 0; i < st->old->n_records; i++) {
        const tlv_record *r = &st->old->records[i];
        if (!r->has_role)
            return pt_fail(PT_ERR_FORMAT, "%s: record %zu has no role", path, i + 1);
        if (r->certificate == NULL) {
            if (st->n_bare == sizeof st->bare / sizeof st->bare[0])
                return pt_fail(PT_ERR_LIMIT, "%s: too many records without a certificate", path);
            st->bare[st->n_bare++] =
                (certless){r->role, r->serial, r->serial_len, r->subject, false};
            st->old_nonsecure = st->old_nonsecure || r->role != TLV_ROLE_SAST;
            continue;
        }
        X509 *x = NULL;
        rc = pt_cert_parse(r->certificate, r->certificate_len, &x);
        if (rc == PT_OK) {
            const uint8_t *ip = r->ip_address_len == 4 ? r->ip_address : NULL;
            rc = ctl_records_add(&st->recs, r->role, x, r->dns_name, ip != NULL, ip);
        }
        X509_free(x);
        if (rc != PT_OK)
            return pt_err_context(rc, "%s: record %zu", path, i + 1);
    }
    return PT_OK;
}

static pt_err check_signer(const update_args *a, update_state *st)
{
    pt_err rc = ctl_signer_open(st->mods, a->sign_with, NULL, &st->signer);
    if (rc != PT_OK)
        return pt_err_context(rc, "--sign-with %s", a->sign_with);
    for (size_t i = 0; i < st->recs.n; i++)
        if (st->recs.v[i].role == TLV_ROLE_SAST &&
            X509_cmp(st->recs.v[i].cert, ctl_signer_cert(st->signer)) == 0)
            return PT_OK;
    return pt_fail(PT_ERR_REFUSED,
                   "The Security Token cannot be used to sign the CTL File. The token must "
                   "already exist in the CTL file: %s is not a security token of %s; sign with "
                   "one of the tokens 'ctlclient show %s' lists as SAST",
                   ctl_signer_describe(st->signer), a->input, a->input);
}

static pt_err serial_arg(const char *option, const char *text, uint8_t **out, size_t *len)
{
    if (pt_hex_decode(text, out, len) != PT_OK || *len == 0) {
        OPENSSL_free(*out);
        *out = NULL;
        return pt_fail(PT_ERR_USAGE, "%s %s: expected a serial number in hex", option, text);
    }
    return PT_OK;
}

static pt_err remove_sast(const update_args *a, update_state *st)
{
    for (size_t k = 0; k < a->n_remove_sast; k++) {
        uint8_t *serial = NULL;
        size_t len = 0;
        pt_err rc = serial_arg("--remove-sast", a->remove_sast[k], &serial, &len);
        if (rc != PT_OK)
            return rc;
        long found = -1;
        for (size_t i = 0; i < st->recs.n && found < 0; i++)
            if (st->recs.v[i].role == TLV_ROLE_SAST &&
                cert_serial_is(st->recs.v[i].cert, serial, len))
                found = (long)i;
        OPENSSL_free(serial);
        if (found < 0)
            return pt_fail(PT_ERR_NOT_FOUND,
                           "--remove-sast %s: %s lists no security token with that serial "
                           "('ctlclient show %s' lists them)",
                           a->remove_sast[k], a->input, a->input);
        if (X509_cmp(st->recs.v[found].cert, ctl_signer_cert(st->signer)) == 0)
            return pt_fail(PT_ERR_REFUSED,
                           "--remove-sast %s: that is the token signing this update; sign with "
                           "another security token of the CTL to remove it",
                           a->remove_sast[k]);
        ctl_records_remove(&st->recs, (size_t)found);
    }
    return PT_OK;
}

static bool replaced(const update_args *a, uint16_t role)
{
    for (size_t i = 0; i < a->n_certs; i++)
        if (a->certs[i].role == role)
            return true;
    return false;
}

static pt_err refuse_unreplaced(const char *text, uint16_t role)
{
    char rb[16];
    return pt_fail(PT_ERR_REFUSED,
                   "--remove %s: that is a %s record; only security tokens and alternate TFTP "
                   "servers can simply be removed, other records only when they are replaced: "
                   "give the new %s certificate in the same update",
                   text, ctl_role_text(role, rb), ctl_role_text(role, rb));
}

static pt_err remove_one(const update_args *a, update_state *st, const char *text)
{
    uint8_t *serial = NULL;
    size_t len = 0;
    pt_err rc = serial_arg("--remove", text, &serial, &len);
    if (rc != PT_OK)
        return rc;
    size_t hits = 0;
    bool sast = false;
    for (size_t i = st->recs.n; rc == PT_OK && i-- > 0;) {
        if (!cert_serial_is(st->recs.v[i].cert, serial, len))
            continue;
        uint16_t role = st->recs.v[i].role;
        if (role == TLV_ROLE_SAST) {
            sast = true;
            continue;
        }
        if (role != TLV_ROLE_TFTP && !replaced(a, role))
            rc = refuse_unreplaced(text, role);
        else
            ctl_records_remove(&st->recs, i);
        hits++;
    }
    for (size_t i = 0; rc == PT_OK && i < st->n_bare; i++) {
        certless *b = &st->bare[i];
        if (b->resolved || b->role == TLV_ROLE_SAST ||
            !tlv_serial_equal(b->serial, b->serial_len, serial, len))
            continue;
        if (b->role != TLV_ROLE_TFTP && !replaced(a, b->role))
            rc = refuse_unreplaced(text, b->role);
        b->resolved = true;
        hits++;
    }
    OPENSSL_free(serial);
    if (rc == PT_OK && hits == 0)
        rc = sast ? pt_fail(PT_ERR_USAGE,
                            "--remove %s: that is a security token: use --remove-sast", text)
                  : pt_fail(PT_ERR_NOT_FOUND,
                            "--remove %s: %s has no record with that serial ('ctlclient show "
                            "%s' lists them)",
                            text, a->input, a->input);
    return rc;
}

static pt_err add_sast(const update_args *a, update_state *st)
{
    for (size_t k = 0; k < a->n_add_sast; k++) {
        pt_err rc = ctl_signer_open(st->mods, a->add_sast[k], NULL, &st->added[k]);
        if (rc != PT_OK)
            return pt_err_context(rc, "--add-sast %s", a->add_sast[k]);
        X509 *x = ctl_signer_cert(st->added[k]);
        if (ctl_records_find(&st->recs, TLV_ROLE_SAST, x) >= 0)
            return pt_fail(PT_ERR_EXISTS,
                           "--add-sast %s: The Security Token you have inserted already exists "
                           "in the CTL File (%s); add a token the CTL does not list yet",
                           a->add_sast[k], ctl_signer_describe(st->added[k]));
        rc = ctl_records_add(&st->recs, TLV_ROLE_SAST, x, NULL, false, NULL);
        if (rc != PT_OK)
            return rc;
        printf("adding security token %s\n", ctl_signer_describe(st->added[k]));
    }
    return PT_OK;
}

/* A new certificate that restores a certificate-less record of OLD resolves it. */
static void resolve_bare(update_state *st, size_t from)
{
    for (size_t i = from; i < st->recs.n; i++) {
        for (size_t j = 0; j < st->n_bare; j++) {
            certless *b = &st->bare[j];
            if (!b->resolved && b->role == st->recs.v[i].role &&
                cert_serial_is(st->recs.v[i].cert, b->serial, b->serial_len))
                b->resolved = true;
        }
    }
}

static pt_err final_checks(update_state *st)
{
    for (size_t j = 0; j < st->n_bare; j++) {
        const certless *b = &st->bare[j];
        if (b->resolved)
            continue;
        char rb[16];
        char *hex = pt_hex_encode(b->serial, b->serial_len, 0);
        pt_err rc = pt_fail(PT_ERR_REFUSED,
                            "the %s record %s (serial %s) of the old CTL carries no certificate "
                            "(non-secure mode), so it cannot be carried over: give its "
                            "certificate again (e.g. --ccm-tftp CERT), or --remove it",
                            ctl_role_text(b->role, rb), b->subject ? b->subject : "",
                            hex != NULL ? hex : "?");
        OPENSSL_free(hex);
        return rc;
    }
    size_t n = ctl_records_count_role(&st->recs, TLV_ROLE_SAST);
    if (n < 2)
        return pt_fail(PT_ERR_REFUSED,
                       "You must have at least 2 security tokens in the CTL File: this update "
                       "would leave %zu; add another token with --add-sast URI (in the same "
                       "update) before removing one",
                       n);
    if (ctl_records_count_role(&st->recs, TLV_ROLE_CCM) +
            ctl_records_count_role(&st->recs, TLV_ROLE_CCM_TFTP) ==
        0)
        return pt_fail(PT_ERR_REFUSED, "the CTL file would have no CallManager (CCM or CCM+TFTP) "
                                       "record; give its replacement with --ccm-tftp CERT");
    return PT_OK;
}

/* base: the file name every -o location shares (checked by ctl_output_check). */
static int update_run(const update_args *a, const ctl_common_opts *o, const char *base)
{
    update_state st;
    memset(&st, 0, sizeof st);
    ctl_records_init(&st.recs);
    pt_err rc = load_old(a->input, &st);
    if (rc == PT_OK)
        rc = ctl_modules_new(o->module, &st.mods);
    if (rc == PT_OK)
        rc = check_signer(a, &st);
    if (rc == PT_OK)
        rc = remove_sast(a, &st);
    for (size_t i = 0; rc == PT_OK && i < a->n_remove; i++)
        rc = remove_one(a, &st, a->remove[i]);
    if (rc == PT_OK)
        rc = add_sast(a, &st);
    size_t before = st.recs.n;
    /* A record that restores a certificate-less one of OLD is not "already there". */
    if (rc == PT_OK)
        rc = ctl_cert_opts_load(a->certs, a->n_certs, a->file.tls_timeout_ms, &st.recs);
    if (rc == PT_OK) {
        resolve_bare(&st, before);
        rc = final_checks(&st);
    }
    if (rc == PT_OK) {
        if (st.old->filename != NULL && strcmp(st.old->filename, base) != 0)
            pt_log_warn("%s is named %s inside, the new file %s", a->input, st.old->filename, base);
        ctl_build_job job = {.records = &st.recs,
                             .signer = st.signer,
                             .digest = a->file.has_digest ? a->file.digest : st.old->digest,
                             .nonsecure = a->has_mode ? a->nonsecure : st.old_nonsecure,
                             .has_timestamp = a->file.has_timestamp,
                             .timestamp = a->file.timestamp,
                             .outputs = a->outputs,
                             .n_outputs = a->n_outputs};
        rc = ctl_build_sign_write(&job, o);
    }
    ctl_records_free(&st.recs);
    for (size_t i = 0; i < a->n_add_sast; i++)
        ctl_signer_close(st.added[i]);
    ctl_signer_close(st.signer);
    ctl_modules_free(st.mods);
    tlv_file_free(st.old);
    if (rc == PT_ERR_USAGE)
        return pt_cli_usage_error("%s", pt_err_message());
    return rc == PT_OK ? PT_EXIT_OK : pt_cli_report(rc, "CTL file not updated");
}

static int list_add(const char **v, size_t *n, const char *arg, const char *option)
{
    if (*n == UPDATE_MAX_LIST)
        return pt_cli_usage_error("%s given too often (at most %d)", option, UPDATE_MAX_LIST);
    v[(*n)++] = arg;
    return PT_EXIT_OK;
}

static int update_option(int c, update_args *a)
{
    switch (c) {
    case 'i':
        a->input = optarg;
        return PT_EXIT_OK;
    case 'o':
        return list_add(a->outputs, &a->n_outputs, optarg, "-o");
    case OPT_SIGN_WITH:
        a->sign_with = optarg;
        return PT_EXIT_OK;
    case OPT_ADD_SAST:
        return list_add(a->add_sast, &a->n_add_sast, optarg, "--add-sast");
    case OPT_REMOVE_SAST:
        return list_add(a->remove_sast, &a->n_remove_sast, optarg, "--remove-sast");
    case OPT_REMOVE:
        return list_add(a->remove, &a->n_remove, optarg, "--remove");
    case OPT_MODE:
        a->has_mode = true;
        return ctl_mode_parse(optarg, &a->nonsecure)
                   ? PT_EXIT_OK
                   : pt_cli_usage_error("--mode takes mixed or nonsecure");
    default:
        return pt_cli_usage_error("unknown option for 'update'");
    }
}

/* The checks that need the whole command line, then the update itself. */
static int update_check_run(int argc, char **argv, const update_args *a, const ctl_common_opts *o)
{
    if (optind < argc)
        return pt_cli_usage_error("'update' takes no arguments ('%s'?)", argv[optind]);
    if (a->input == NULL)
        return pt_cli_usage_error("'update' needs -i OLD, the CTL file the phones have now");
    if (a->sign_with == NULL)
        return pt_cli_usage_error("'update' needs --sign-with URI, a security token of OLD");
    const char *base = NULL;
    if (ctl_output_check(a->outputs, a->n_outputs, &base) != PT_OK)
        return pt_cli_usage_error("%s", pt_err_message());
    return update_run(a, o, base);
}

int ctl_cmd_update(int argc, char **argv)
{
    static const struct option longopts[] = {
        CTL_COMMON_LONGOPTS,
        {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"sign-with", required_argument, NULL, OPT_SIGN_WITH},
        {"add-sast", required_argument, NULL, OPT_ADD_SAST},
        {"remove-sast", required_argument, NULL, OPT_REMOVE_SAST},
        {"remove", required_argument, NULL, OPT_REMOVE},
        {"add-tftp", required_argument, NULL, OPT_ADD_TFTP},
        {"tftp", required_argument, NULL, OPT_ADD_TFTP},
        {"ccm-tftp", required_argument, NULL, OPT_CCM_TFTP},
        {"ccm", required_argument, NULL, OPT_CCM},
        {"capf", required_argument, NULL, OPT_CAPF},
        {"tvs", required_argument, NULL, OPT_TVS},
        {"app-server", required_argument, NULL, OPT_APP_SERVER},
        {"mode", required_argument, NULL, OPT_MODE},
        CTL_FILE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    update_args a;
    ctl_common_opts o;
    memset(&a, 0, sizeof a);
    ctl_file_opts_init(&a.file);
    memset(&o, 0, sizeof o);
    int c, code = PT_EXIT_OK;
    optind = 1;
    while (code == PT_EXIT_OK && (c = getopt_long(argc, argv, "hi:o:", longopts, NULL)) != -1) {
        const char *name = NULL;
        int role = cert_option_role(c, &name);
        if (ctl_common_opt(&o, c, optarg, &code) || ctl_file_opt(&a.file, c, optarg, &code))
            continue;
        if (c == 'h') {
            update_usage(stdout);
            ctl_cert_opts_free(a.certs, a.n_certs);
            return PT_EXIT_OK;
        }
        code = role >= 0 ? ctl_cert_opt_add(a.certs, &a.n_certs, UPDATE_MAX_CERTS, (uint16_t)role,
                                            name, optarg)
                         : update_option(c, &a);
    }
    if (code == PT_EXIT_OK)
        code = update_check_run(argc, argv, &a, &o);
    ctl_cert_opts_free(a.certs, a.n_certs);
    return code;
}
