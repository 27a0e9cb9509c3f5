/*
 * hsmctl: the key ceremony and administration of the HSM that holds the CAPF
 * CA key and the ITLRecovery key; checking hsmd's audit log; and one request
 * to hsmd by hand.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <p11-kit/pkcs11.h>

#include "audit.h"
#include "cert.h"
#include "ceremony.h"
#include "cli.h"
#include "fileio.h"
#include "harden.h"
#include "hsm_client.h"
#include "hsmd_proto.h"
#include "key.h"
#include "keygen.h"
#include "log.h"
#include "login.h"
#include "pt_config.h"

typedef struct hsmctl_opts {
    const char *token_uri;
    const char *module;
    token_pin_source pin;
    bool pin_fd_given;
    bool allow_final_try;
    bool json;
    bool yes;
    const char *subject;
    const char *itlr_subject;
    const char *out_dir;
    token_keygen_spec capf_key;
    token_keygen_spec itlr_key;
    long capf_years;
    long itlr_years;
    const char *socket;
    const char *output;
    long timeout_ms;
} hsmctl_opts;

enum {
    OPT_TOKEN = 1000,
    OPT_MODULE,
    OPT_PIN_FD,
    OPT_ALLOW_FINAL_TRY,
    OPT_JSON,
    OPT_YES,
    OPT_SUBJECT,
    OPT_ITLR_SUBJECT,
    OPT_OUT,
    OPT_CAPF_KEY,
    OPT_ITLR_KEY,
    OPT_CAPF_YEARS,
    OPT_ITLR_YEARS,
    OPT_SOCKET,
    OPT_TIMEOUT,
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: hsmctl init --token URI --subject DN --out DIR [--capf-key SPEC]\n"
            "              [--capf-years N] [--itlrecovery-key SPEC] [--itlrecovery-years N]\n"
            "              [--itlrecovery-subject DN]\n"
            "       hsmctl regenerate capf|itlrecovery --token URI [--yes] [--out DIR]\n"
            "              [--capf-key SPEC] [--capf-years N] [--itlrecovery-key SPEC]\n"
            "              [--itlrecovery-years N]\n"
            "       hsmctl list --token URI [--json]\n"
            "       hsmctl audit verify LOG\n"
            "       hsmctl call [--socket PATH] [-o FILE] status | cert LABEL |\n"
            "              issue LABEL TBS.der | sign-tlv LABEL FILE\n"
            "\n"
            "The key ceremony and administration of the HSM holding the CAPF CA key and the\n"
            "ITLRecovery key. Keys are generated inside the HSM (sensitive, never\n"
            "extractable) and never leave it; their certificates are made with the keys in\n"
            "the HSM. hsmd serves them afterwards (hsm/README.md).\n"
            "\n"
            "Commands:\n"
            "  init         generate the CAPF CA key and the ITLRecovery key, labelled CAPF\n"
            "               and ITLRecovery, store their self-signed certificates on the\n"
            "               token and write them to DIR/CAPF.pem and DIR/ITLRecovery.pem;\n"
            "               refused when either key exists\n"
            "  regenerate   replace one key and its certificate (same subject); without\n"
            "               --yes only explains what would break\n"
            "  list         keys and certificates on the token\n"
            "  audit verify\n"
            "               check hsmd's audit log: every record's hash, sequence and link\n"
            "               to the one before; reports the first broken or missing record\n"
            "  call         send one request to hsmd and print the answer: status (JSON),\n"
            "               cert (PEM), issue (the signed certificate, PEM; TBS.der is a\n"
            "               DER TBSCertificate), sign-tlv (the signed CTL/ITL file, to -o\n"
            "               FILE). A refusal is printed with hsmd's code and reason\n"
            "\n"
            "Options:\n"
            "  --token URI              the HSM token, e.g.\n"
            "                           'pkcs11:token=phonetrust-hsm?pin-source=file:/etc/pin'\n"
            "  --module PATH            PKCS#11 module of the HSM when the URI has no\n"
            "                           module-path= (default: p11-kit's proxy, else\n"
            "                           OpenSC's module)\n"
            "  --pin-fd N               read the PIN from file descriptor N\n"
            "  --allow-final-try        accept the token's final PIN try\n"
            "  --subject DN             CAPF subject, e.g. 'CN=CAPF-1,O=Example,OU=VoIP,C=NZ'\n"
            "  --capf-key SPEC          rsa:BITS (2048 to 4096; default rsa:2048), ec:P-256\n"
            "                           or ec:P-384\n"
            "  --capf-years N           CAPF certificate validity (default 5)\n"
            "  --itlrecovery-key SPEC   rsa:2048 (default) or rsa:4096\n"
            "  --itlrecovery-years N    ITLRecovery certificate validity (default 20)\n"
            "  --itlrecovery-subject DN default: the CAPF subject with CN=ITLRECOVERY_<CN>\n"
            "  --out DIR                where the certificates are written as PEM\n"
            "  --yes                    regenerate: really replace the key\n"
            "  --json                   list: JSON output\n"
            "  --socket PATH            call: hsmd's socket (default " HSM_CLIENT_DEFAULT_SOCKET
            ")\n"
            "  -o, --output FILE        call: write the answer to FILE (sign-tlv needs it)\n"
            "  --timeout MS             call: give up after MS milliseconds (default 10000)\n"
            "  -v, --verbose            show debug messages (PKCS#11 calls and their results)\n"
            "  --version                show the version\n"
            "  -h, --help               show this help\n"
            "\n"
            "Exit status: 0 success, 1 failure (a refusal by hsmd, a broken audit log),\n"
            "2 usage error.\n");
}

static pt_err open_token(const hsmctl_opts *o, token **out)
{
    *out = NULL;
    token_uri *u = NULL;
    token *t = NULL;
    token_pin_source from_uri;
    token_login_opts lo = {NULL, NULL, o->allow_final_try};
    pt_err rc = token_uri_parse(o->token_uri, &u);
    if (rc == PT_OK && o->pin_fd_given) {
        lo.pin = &o->pin;
    } else if (rc == PT_OK && token_uri_pin_source(u) != NULL) {
        rc = token_pin_source_from_uri(token_uri_pin_source(u), &from_uri);
        lo.pin = &from_uri;
    }
    if (rc == PT_OK)
        rc = token_open(o->token_uri, o->module, &t);
    if (rc == PT_OK)
        rc = token_login(t, &lo);
    token_uri_free(u);
    if (rc != PT_OK) {
        token_close(t);
        return rc;
    }
    *out = t;
    return PT_OK;
}

static void print_cert(const char *label, X509 *x)
{
    pt_cert_info ci;
    if (pt_cert_info_get(x, &ci) != PT_OK)
        return;
    printf("%s\n  subject:  %s\n  key:      %s\n  serial:   %s\n  SHA-256:  %s\n"
           "  valid:    %s to %s\n",
           label, ci.subject, ci.key, ci.serial, ci.sha256, ci.not_before, ci.not_after);
    pt_cert_info_free(&ci);
}

static pt_err ensure_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return pt_fail_errno("%s: cannot create the output directory", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pt_fail(PT_ERR_IO, "%s is not a directory", dir);
    return PT_OK;
}

static pt_err write_pem(const char *dir, const char *label, X509 *x)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.pem", dir, label) >= (int)sizeof path)
        return pt_fail(PT_ERR_LIMIT, "output path too long");
    pt_err rc = pt_cert_write_pem_file(path, x);
    if (rc == PT_OK)
        printf("  written:  %s\n", path);
    return rc;
}

static int cmd_init(const hsmctl_opts *o)
{
    X509_NAME *capf_name = NULL, *itlr_name = NULL;
    pt_err rc = pt_name_parse(o->subject, &capf_name);
    if (rc != PT_OK)
        return pt_cli_usage_error("--subject: %s", pt_err_message());
    rc = o->itlr_subject ? pt_name_parse(o->itlr_subject, &itlr_name)
                         : hsm_itlrecovery_subject(capf_name, &itlr_name);
    if (rc != PT_OK) {
        X509_NAME_free(capf_name);
        return pt_cli_usage_error("--itlrecovery-subject: %s", pt_err_message());
    }
    token *t = NULL;
    X509 *capf = NULL, *itlr = NULL;
    bool capf_exists = false, itlr_exists = false;
    rc = ensure_dir(o->out_dir);
    if (rc == PT_OK)
        rc = open_token(o, &t);
    if (rc == PT_OK)
        rc = hsm_key_exists(t, HSM_KEY_CAPF, &capf_exists);
    if (rc == PT_OK)
        rc = hsm_key_exists(t, HSM_KEY_ITLRECOVERY, &itlr_exists);
    if (rc == PT_OK && (capf_exists || itlr_exists))
        rc = pt_fail(PT_ERR_EXISTS,
                     "the HSM token already holds %s%s%s; nothing was changed (use 'hsmctl "
                     "regenerate' to replace one key)",
                     capf_exists ? "a CAPF key" : "", capf_exists && itlr_exists ? " and " : "",
                     itlr_exists ? "an ITLRecovery key" : "");
    hsm_key_params capf_p = {capf_name, o->capf_key, (int)o->capf_years};
    hsm_key_params itlr_p = {itlr_name, o->itlr_key, (int)o->itlr_years};
    if (rc == PT_OK)
        rc = hsm_key_create(t, HSM_KEY_CAPF, &capf_p, false, &capf);
    if (rc == PT_OK)
        rc = hsm_key_create(t, HSM_KEY_ITLRECOVERY, &itlr_p, false, &itlr);
    if (rc == PT_OK) {
        print_cert("CAPF key and certificate (label CAPF)", capf);
        rc = write_pem(o->out_dir, HSM_LABEL_CAPF, capf);
    }
    if (rc == PT_OK) {
        print_cert("ITLRecovery key and certificate (label ITLRecovery)", itlr);
        rc = write_pem(o->out_dir, HSM_LABEL_ITLRECOVERY, itlr);
    }
    X509_free(capf);
    X509_free(itlr);
    X509_NAME_free(capf_name);
    X509_NAME_free(itlr_name);
    token_close(t);
    if (rc != PT_OK)
        return pt_cli_report(rc, "key ceremony failed");
    printf("\nThe keys are in the HSM and cannot leave it. Next: list CAPF.pem and\n"
           "ITLRecovery.pem in the CTL and ITL, and configure hsmd to serve the keys.\n");
    return PT_EXIT_OK;
}

static const char *regenerate_warning(hsm_key_role role)
{
    if (role == HSM_KEY_CAPF)
        return "Replacing the CAPF key makes every LSC issued so far untrusted by capfd's\n"
               "certificate authentication, and phones must receive a CTL and ITL that list\n"
               "the new CAPF certificate before they will enrol again.";
    return "Replacing the ITLRecovery key breaks recovery for every phone that holds an ITL\n"
           "listing the old ITLRecovery certificate: every phone's ITL must be re-signed and\n"
           "trusted again before the new key can recover it. Do this rarely, and only with\n"
           "a plan for the whole fleet.";
}

static int cmd_regenerate(const hsmctl_opts *o, hsm_key_role role)
{
    const char *label = hsm_key_label(role);
    printf("WARNING: regenerating the %s key.\n%s\n", label, regenerate_warning(role));
    if (!o->yes) {
        fprintf(stderr, "hsmctl: nothing was changed; run again with --yes to replace the %s key\n",
                label);
        return PT_EXIT_FAIL;
    }
    token *t = NULL;
    token_key *old = NULL;
    X509 *cert = NULL;
    pt_err rc = o->out_dir ? ensure_dir(o->out_dir) : PT_OK;
    if (rc == PT_OK)
        rc = open_token(o, &t);
    if (rc == PT_OK)
        rc = token_key_find_by_label(t, label, NULL, 0, &old);
    if (rc == PT_OK && token_key_cert(old) == NULL)
        rc = pt_fail(PT_ERR_NOT_FOUND, "the %s key has no certificate to take the subject from",
                     label);
    if (rc == PT_ERR_NOT_FOUND)
        rc = pt_err_context(rc, "no %s key to regenerate (use 'hsmctl init')", label);
    if (rc == PT_OK) {
        token_keygen_spec spec = role == HSM_KEY_CAPF ? o->capf_key : o->itlr_key;
        int years = (int)(role == HSM_KEY_CAPF ? o->capf_years : o->itlr_years);
        hsm_key_params p = {X509_get_subject_name(token_key_cert(old)), spec, years};
        X509_NAME *keep = X509_NAME_dup(p.subject); /* the old certificate goes away */
        p.subject = keep;
        token_key_free(old);
        old = NULL;
        rc = keep ? hsm_key_create(t, role, &p, true, &cert)
                  : pt_fail(PT_ERR_NOMEM, "out of memory");
        X509_NAME_free(keep);
    }
    if (rc == PT_OK) {
        print_cert(label, cert);
        if (o->out_dir != NULL)
            rc = write_pem(o->out_dir, label, cert);
    }
    token_key_free(old);
    X509_free(cert);
    token_close(t);
    if (rc != PT_OK)
        return pt_cli_report(rc, "regeneration failed");
    return PT_EXIT_OK;
}

static const char *key_type_name(unsigned long kt)
{
    return kt == CKK_RSA ? "RSA" : kt == CKK_EC ? "EC" : "other";
}

static int cmd_list(const hsmctl_opts *o)
{
    token *t = NULL;
    char **labels = NULL;
    size_t n = 0;
    pt_err rc = open_token(o, &t);
    if (rc == PT_OK)
        rc = token_private_key_labels(t, &labels, &n);
    if (rc != PT_OK) {
        token_close(t);
        return pt_cli_report(rc, "cannot list the keys");
    }
    json_object *arr = o->json ? json_object_new_array() : NULL;
    int exit_code = PT_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        token_key_attrs a;
        token_key *k = NULL;
        pt_cert_info ci;
        bool have_cert = false;
        if (token_key_attrs_read(t, labels[i], &a) != PT_OK ||
            token_key_find_by_label(t, labels[i], NULL, 0, &k) != PT_OK) {
            pt_log_warn("key '%s': %s", labels[i], pt_err_message());
            exit_code = PT_EXIT_FAIL;
            continue;
        }
        char desc[32];
        pt_pkey_describe(token_key_pkey(k), desc, sizeof desc);
        if (token_key_cert(k) != NULL)
            have_cert = pt_cert_info_get(token_key_cert(k), &ci) == PT_OK;
        bool protected_key =
            a.sensitive && a.never_extractable && !a.extractable && !a.secret_readable;
        if (arr != NULL) {
            json_object *jo = json_object_new_object();
            json_object_object_add(jo, "label", json_object_new_string(labels[i]));
            json_object_object_add(jo, "algorithm", json_object_new_string(desc));
            json_object_object_add(jo, "key_type",
                                   json_object_new_string(key_type_name(a.key_type)));
            json_object_object_add(jo, "sensitive", json_object_new_boolean(a.sensitive));
            json_object_object_add(jo, "never_extractable",
                                   json_object_new_boolean(a.never_extractable));
            json_object_object_add(jo, "extractable", json_object_new_boolean(a.extractable));
            json_object *jc = NULL;
            if (have_cert) {
                jc = json_object_new_object();
                json_object_object_add(jc, "subject", json_object_new_string(ci.subject));
                json_object_object_add(jc, "serial", json_object_new_string(ci.serial));
                json_object_object_add(jc, "sha256", json_object_new_string(ci.sha256));
                json_object_object_add(jc, "not_before", json_object_new_string(ci.not_before));
                json_object_object_add(jc, "not_after", json_object_new_string(ci.not_after));
            }
            json_object_object_add(jo, "certificate", jc);
            json_object_array_add(arr, jo);
        } else {
            printf("%skey '%s': %s, %s\n", i ? "\n" : "", labels[i], desc,
                   protected_key ? "sensitive, never extractable"
                                 : "NOT PROTECTED: extractable or readable");
            if (have_cert)
                printf("  certificate: %s\n  serial:      %s\n  SHA-256:     %s\n"
                       "  valid:       %s to %s%s\n",
                       ci.subject, ci.serial, ci.sha256, ci.not_before, ci.not_after,
                       ci.not_after_t < time(NULL) ? " (EXPIRED)" : "");
            else
                printf("  certificate: none\n");
        }
        if (have_cert)
            pt_cert_info_free(&ci);
        token_key_free(k);
    }
    if (arr != NULL) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    } else if (n == 0) {
        printf("no keys on token '%s'\n", token_get_info(t)->label);
    }
    token_labels_free(labels, n);
    token_close(t);
    return exit_code;
}

static int cmd_audit_verify(const char *path)
{
    audit_verify_report rep;
    pt_err rc = audit_log_verify_file(path, &rep);
    if (rc == PT_OK) {
        printf("%s: intact, %" PRIu64 " records\n  last:   seq %" PRIu64 ", hash %s\n"
               "  anchor: %s\n",
               path, rep.good_records, rep.last_seq, rep.last_hash, rep.anchor);
        return PT_EXIT_OK;
    }
    if (rc != PT_ERR_VERIFY)
        return pt_cli_report(rc, "cannot verify the audit log");
    printf("%s: BROKEN at line %" PRIu64 " (record seq %" PRIu64 " expected there): %s: %s\n"
           "  the %" PRIu64 " records before it verify (last good seq %" PRIu64 ", hash %s)\n",
           path, rep.line, rep.seq, audit_problem_name(rep.problem), rep.detail, rep.good_records,
           rep.last_seq, rep.last_hash);
    fprintf(stderr, "hsmctl: the audit log %s does not verify from line %" PRIu64 "\n", path,
            rep.line);
    return PT_EXIT_FAIL;
}

/* A certificate from hsmd: PEM to -o FILE or standard output, with a summary on stderr. */
static pt_err call_print_cert(const hsmctl_opts *o, const uint8_t *der, size_t len)
{
    X509 *x = NULL;
    char *pem = NULL;
    pt_err rc = pt_cert_parse(der, len, &x);
    if (rc == PT_OK)
        rc = pt_cert_to_pem(x, &pem);
    if (rc == PT_OK && o->output != NULL)
        rc = pt_file_write_atomic(o->output, pem, strlen(pem), 0644);
    else if (rc == PT_OK)
        fputs(pem, stdout);
    pt_cert_info ci;
    if (rc == PT_OK && pt_cert_info_get(x, &ci) == PT_OK) {
        fprintf(stderr, "certificate %s, serial %s, valid %s to %s\n", ci.subject, ci.serial,
                ci.not_before, ci.not_after);
        pt_cert_info_free(&ci);
    }
    OPENSSL_free(pem);
    X509_free(x);
    return rc;
}

static int cmd_call(const hsmctl_opts *o, int nargs, char **args)
{
    const char *op = nargs > 0 ? args[0] : "";
    hsmd_request req;
    memset(&req, 0, sizeof req);
    int want = strcmp(op, "status") == 0     ? 1
               : strcmp(op, "cert") == 0     ? 2
               : strcmp(op, "issue") == 0    ? 3
               : strcmp(op, "sign-tlv") == 0 ? 3
                                             : -1;
    if (want < 0 || nargs != want)
        return pt_cli_usage_error("usage: hsmctl call [--socket PATH] [-o FILE] status | cert "
                                  "LABEL | issue LABEL TBS.der | sign-tlv LABEL FILE");
    req.type = strcmp(op, "status") == 0  ? HSMD_MSG_STATUS
               : strcmp(op, "cert") == 0  ? HSMD_MSG_CERT
               : strcmp(op, "issue") == 0 ? HSMD_MSG_ISSUE
                                          : HSMD_MSG_SIGN_TLV;
    if (req.type == HSMD_MSG_SIGN_TLV && o->output == NULL)
        return pt_cli_usage_error("'call sign-tlv' writes the signed file to -o FILE");
    if (nargs >= 2) {
        if (!hsmd_label_valid(args[1]))
            return pt_cli_usage_error("'%s' is not a key label (1..%d printable characters, no "
                                      "spaces)",
                                      args[1], HSMD_LABEL_MAX);
        snprintf(req.label, sizeof req.label, "%s", args[1]);
    }
    uint8_t *data = NULL, *body = NULL;
    size_t data_len = 0;
    pt_err rc = PT_OK;
    if (nargs == 3) {
        rc = pt_file_read(args[2], req.type == HSMD_MSG_ISSUE ? HSMD_TBS_MAX : HSMD_FILE_MAX, &data,
                          &data_len);
        if (rc != PT_OK)
            return pt_cli_report(rc, "cannot read the input");
        req.data = data;
        req.data_len = data_len;
    }
    hsmd_response resp;
    hsm_client *c = NULL;
    rc = hsm_client_connect(o->socket, (int)o->timeout_ms, &c);
    if (rc == PT_OK)
        rc = hsm_client_exchange(c, &req, &resp, &body);
    hsm_client_close(c);
    OPENSSL_free(data);
    if (rc != PT_OK)
        return pt_cli_report(rc, "no answer from hsmd");
    int exit_code = PT_EXIT_OK;
    if (resp.type == HSMD_MSG_ERROR) {
        fprintf(stderr, "hsmctl: hsmd refused: %s (code %u): %s\n", hsmd_error_code_name(resp.code),
                resp.code, resp.reason);
        exit_code = PT_EXIT_FAIL;
    } else if (req.type == HSMD_MSG_STATUS) {
        if (o->output != NULL)
            rc = pt_file_write_atomic(o->output, resp.payload, resp.payload_len, 0644);
        else
            printf("%.*s\n", (int)resp.payload_len, (const char *)resp.payload);
    } else if (req.type == HSMD_MSG_SIGN_TLV) {
        rc = pt_file_write_atomic(o->output, resp.payload, resp.payload_len, 0644);
        if (rc == PT_OK)
            fprintf(stderr, "signed file written to %s (%zu bytes)\n", o->output, resp.payload_len);
    } else {
        rc = call_print_cert(o, resp.payload, resp.payload_len);
    }
    OPENSSL_free(body);
    if (rc != PT_OK)
        return pt_cli_report(rc, "cannot write the answer");
    return exit_code;
}

int main(int argc, char **argv)
{
    pt_log_init("hsmctl", PT_LOG_INFO);
    pt_secure_heap_init();
    if (pt_harden_process() != PT_OK)
        pt_log_warn("%s", pt_err_message());
    static const struct option longopts[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"module", required_argument, NULL, OPT_MODULE},
        {"pin-fd", required_argument, NULL, OPT_PIN_FD},
        {"allow-final-try", no_argument, NULL, OPT_ALLOW_FINAL_TRY},
        {"json", no_argument, NULL, OPT_JSON},
        {"yes", no_argument, NULL, OPT_YES},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"itlrecovery-subject", required_argument, NULL, OPT_ITLR_SUBJECT},
        {"out", required_argument, NULL, OPT_OUT},
        {"capf-key", required_argument, NULL, OPT_CAPF_KEY},
        {"itlrecovery-key", required_argument, NULL, OPT_ITLR_KEY},
        {"capf-years", required_argument, NULL, OPT_CAPF_YEARS},
        {"itlrecovery-years", required_argument, NULL, OPT_ITLR_YEARS},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"output", required_argument, NULL, 'o'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    hsmctl_opts o;
    memset(&o, 0, sizeof o);
    o.capf_key = (token_keygen_spec){EVP_PKEY_RSA, 2048, 0};
    o.itlr_key = (token_keygen_spec){EVP_PKEY_RSA, 2048, 0};
    o.capf_years = 5;
    o.itlr_years = 20;
    o.socket = HSM_CLIENT_DEFAULT_SOCKET;
    o.timeout_ms = HSM_CLIENT_DEFAULT_TIMEOUT_MS;
    int c;
    while ((c = getopt_long(argc, argv, "hvo:", longopts, NULL)) != -1) {
        pt_err rc = PT_OK;
        switch (c) {
        case OPT_TOKEN:
            o.token_uri = optarg;
            break;
        case OPT_MODULE:
            o.module = optarg;
            break;
        case OPT_PIN_FD:
            rc = token_pin_source_from_fd(optarg, &o.pin);
            o.pin_fd_given = true;
            break;
        case OPT_ALLOW_FINAL_TRY:
            o.allow_final_try = true;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_YES:
            o.yes = true;
            break;
        case OPT_SUBJECT:
            o.subject = optarg;
            break;
        case OPT_ITLR_SUBJECT:
            o.itlr_subject = optarg;
            break;
        case OPT_OUT:
            o.out_dir = optarg;
            break;
        case OPT_CAPF_KEY:
            rc = token_keygen_spec_parse(optarg, &o.capf_key);
            if (rc == PT_OK && o.capf_key.type == EVP_PKEY_EC &&
                o.capf_key.curve_nid == NID_secp521r1)
                rc = pt_fail(PT_ERR_USAGE, "--capf-key: use rsa:2048, rsa:4096, ec:P-256 or "
                                           "ec:P-384");
            break;
        case OPT_ITLR_KEY:
            rc = token_keygen_spec_parse(optarg, &o.itlr_key);
            if (rc == PT_OK && (o.itlr_key.type != EVP_PKEY_RSA ||
                                (o.itlr_key.bits != 2048 && o.itlr_key.bits != 4096)))
                rc = pt_fail(PT_ERR_USAGE, "--itlrecovery-key: the ITLRecovery key signs ITL "
                                           "files, which need rsa:2048 or rsa:4096");
            break;
        case OPT_CAPF_YEARS:
            if (!pt_cli_parse_long(optarg, 1, 30, &o.capf_years))
                rc = pt_fail(PT_ERR_USAGE, "--capf-years takes 1 to 30");
            break;
        case OPT_ITLR_YEARS:
            if (!pt_cli_parse_long(optarg, 1, 40, &o.itlr_years))
                rc = pt_fail(PT_ERR_USAGE, "--itlrecovery-years takes 1 to 40");
            break;
        case OPT_SOCKET:
            o.socket = optarg;
            break;
        case 'o':
            o.output = optarg;
            break;
        case OPT_TIMEOUT:
            if (!pt_cli_parse_long(optarg, 1, 3600000, &o.timeout_ms))
                rc = pt_fail(PT_ERR_USAGE, "--timeout takes 1 to 3600000 milliseconds");
            break;
        case 'v':
            pt_log_init("hsmctl", PT_LOG_DEBUG);
            break;
        case 'V':
            printf("hsmctl %s\n", PT_VERSION);
            return PT_EXIT_OK;
        case 'h':
            usage(stdout);
            return PT_EXIT_OK;
        default:
            return pt_cli_usage_error("unknown option");
        }
        if (rc != PT_OK)
            return pt_cli_usage_error("%s", pt_err_message());
    }
    if (optind >= argc)
        return pt_cli_usage_error("a command is needed: init, regenerate, list, audit or call");
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    bool needs_token =
        strcmp(cmd, "init") == 0 || strcmp(cmd, "regenerate") == 0 || strcmp(cmd, "list") == 0;
    if (needs_token && o.token_uri == NULL)
        return pt_cli_usage_error("'%s' needs --token URI", cmd);
    if (strcmp(cmd, "init") == 0) {
        if (nargs != 0)
            return pt_cli_usage_error("'init' takes no arguments");
        if (o.subject == NULL || o.out_dir == NULL)
            return pt_cli_usage_error("'init' needs --subject DN and --out DIR");
        return cmd_init(&o);
    }
    if (strcmp(cmd, "regenerate") == 0) {
        if (nargs != 1 ||
            (strcmp(argv[optind + 1], "capf") != 0 && strcmp(argv[optind + 1], "itlrecovery") != 0))
            return pt_cli_usage_error("usage: hsmctl regenerate capf|itlrecovery --token URI");
        return cmd_regenerate(&o, strcmp(argv[optind + 1], "capf") == 0 ? HSM_KEY_CAPF
                                                                        : HSM_KEY_ITLRECOVERY);
    }
    if (strcmp(cmd, "list") == 0) {
        if (nargs != 0)
            return pt_cli_usage_error("'list' takes no arguments");
        return cmd_list(&o);
    }
    if (strcmp(cmd, "audit") == 0) {
        if (nargs != 2 || strcmp(argv[optind + 1], "verify") != 0)
            return pt_cli_usage_error("usage: hsmctl audit verify LOG");
        return cmd_audit_verify(argv[optind + 2]);
    }
    if (strcmp(cmd, "call") == 0)
        return cmd_call(&o, nargs, argv + optind + 1);
    return pt_cli_usage_error("unknown command '%s'", cmd);
}
