/*
 * ctlclient token list | pin | enroll: the first commands users run.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cert.h"
#include "cli.h"
#include "cmd.h"
#include "key.h"
#include "keygen.h"
#include "log.h"
#include "login.h"
#include "module.h"
#include "token.h"

static void token_usage(FILE *out)
{
    fprintf(out,
            "Usage: ctlclient token list [--json] [--module PATH]\n"
            "       ctlclient token pin URI [--pin-fd N] [--new-pin-fd N] [--allow-final-try]\n"
            "       ctlclient token check URI [--pin-fd N] [--new-pin-fd N] [--allow-final-try]\n"
            "       ctlclient token enroll URI --subject DN [--key rsa:2048|rsa:3072|rsa:4096]\n"
            "                 [--days N] [--label LABEL] [--force] [--pin-fd N]\n"
            "                 [--new-pin-fd N] [--allow-final-try]\n"
            "\n"
            "Security tokens (eTokens, or SoftHSM2 tokens for tests).\n"
            "\n"
            "  list     every slot with an initialised token: label, manufacturer, model,\n"
            "           serial, PIN state (ok, count-low, final-try, locked, to-be-changed)\n"
            "           and its SAST certificate, if any\n"
            "  pin      change a token's user PIN (the old PIN, then the new one twice)\n"
            "  check    log in (under the retry-lockout policy) and show the token's state\n"
            "           and its SAST key and certificate: a way to test a PIN before a\n"
            "           signing session; a correct PIN resets the token's wrong-PIN count\n"
            "  enroll   generate a non-extractable key on a blank token and store a\n"
            "           self-signed SAST certificate (digitalSignature) for it\n"
            "\n"
            "URI is an RFC 7512 PKCS#11 URI, e.g. 'pkcs11:token=SAST-1' or\n"
            "'pkcs11:serial=0123456789abcdef?pin-source=file:/run/pin'.\n"
            "\n"
            "Options:\n"
            "  --module PATH       PKCS#11 module for tokens whose URI has no module-path=\n"
            "                      (default: p11-kit's proxy, else OpenSC's module)\n"
            "  --pin-fd N          read the PIN from file descriptor N (else pin-source= in\n"
            "                      the URI, else a prompt at the terminal)\n"
            "  --new-pin-fd N      read the new PIN (twice) from file descriptor N\n"
            "  --allow-final-try   accept a token's final PIN try: a wrong PIN then locks\n"
            "                      the token for good\n"
            "  --subject DN        e.g. 'CN=SAST-1,O=Example,OU=VoIP,C=NZ' (first RDN first)\n"
            "  --key SPEC          key to generate (default rsa:2048; CTL files can be signed\n"
            "                      only with 512, 1024, 2048 or 4096-bit RSA keys)\n"
            "  --days N            certificate validity in days (default 3650)\n"
            "  --label LABEL       label of the key and certificate (default SAST)\n"
            "  --force             replace a key and certificate with that label\n"
            "  --json              list as JSON\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static json_object *cert_json(const pt_cert_info *ci)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "subject", json_object_new_string(ci->subject));
    json_object_object_add(o, "issuer", json_object_new_string(ci->issuer));
    json_object_object_add(o, "serial", json_object_new_string(ci->serial));
    json_object_object_add(o, "sha256", json_object_new_string(ci->sha256));
    json_object_object_add(o, "not_after", json_object_new_string(ci->not_after));
    return o;
}

static void print_cert_text(const pt_cert_info *ci)
{
    printf("  certificate:  %s\n", ci->subject);
    printf("    issuer:     %s\n", ci->issuer);
    printf("    serial:     %s\n", ci->serial);
    printf("    SHA-256:    %s\n", ci->sha256);
    printf("    key:        %s\n", ci->key);
    printf("    valid:      %s to %s%s\n", ci->not_before, ci->not_after,
           ci->not_after_t < time(NULL) ? " (EXPIRED)" : "");
}

static int token_list_cmd(const ctl_common_opts *o)
{
    token_module *m = NULL;
    token_info *infos = NULL;
    size_t n = 0;
    pt_err rc = token_module_open(o->module, &m);
    if (rc == PT_OK)
        rc = token_list(m, &infos, &n);
    if (rc != PT_OK) {
        token_module_close(m);
        return pt_cli_report(rc, "cannot list tokens");
    }
    json_object *arr = o->json ? json_object_new_array() : NULL;
    size_t shown = 0, blank = 0;
    int exit_code = PT_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (!infos[i].initialized) {
            blank++;
            continue;
        }
        /* A selected token reads its certificate without logging in. */
        char uri[128];
        snprintf(uri, sizeof uri, "pkcs11:serial=%s", infos[i].serial);
        token_uri *u = NULL;
        token *t = NULL;
        X509 *x = NULL;
        pt_cert_info ci;
        bool have_cert = false;
        pt_err e = token_uri_parse(uri, &u);
        if (e == PT_OK)
            e = token_select(m, u, &t);
        if (e == PT_OK)
            e = token_sast_cert(t, &x);
        if (e == PT_OK && x != NULL)
            have_cert = pt_cert_info_get(x, &ci) == PT_OK;
        if (e != PT_OK) {
            pt_log_warn("token '%s' (serial %s): %s", infos[i].label, infos[i].serial,
                        pt_err_message());
            exit_code = PT_EXIT_FAIL;
        }
        const char *state = token_pin_state_name(token_pin_state_from_flags(infos[i].flags));
        if (arr != NULL) {
            json_object *jo = json_object_new_object();
            json_object_object_add(jo, "slot", json_object_new_int64((int64_t)infos[i].slot_id));
            json_object_object_add(jo, "label", json_object_new_string(infos[i].label));
            json_object_object_add(jo, "manufacturer",
                                   json_object_new_string(infos[i].manufacturer));
            json_object_object_add(jo, "model", json_object_new_string(infos[i].model));
            json_object_object_add(jo, "serial", json_object_new_string(infos[i].serial));
            json_object_object_add(jo, "pin_state", json_object_new_string(state));
            json_object_object_add(jo, "certificate", have_cert ? cert_json(&ci) : NULL);
            json_object_array_add(arr, jo);
        } else {
            printf("%sslot %lu: token '%s'\n", shown ? "\n" : "", infos[i].slot_id, infos[i].label);
            printf("  manufacturer: %s\n  model:        %s\n  serial:       %s\n",
                   infos[i].manufacturer, infos[i].model, infos[i].serial);
            printf("  PIN state:    %s\n", state);
            if (have_cert)
                print_cert_text(&ci);
            else
                printf("  certificate:  none\n");
        }
        shown++;
        if (have_cert)
            pt_cert_info_free(&ci);
        X509_free(x);
        token_close(t);
        token_uri_free(u);
    }
    if (arr != NULL) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    } else if (shown == 0) {
        printf("no initialised token found in %s\n", token_module_path(m));
    }
    if (arr == NULL && blank > 0)
        fprintf(stderr, "(%zu slot%s with an uninitialised token not shown)\n", blank,
                blank == 1 ? "" : "s");
    OPENSSL_free(infos);
    token_module_close(m);
    return exit_code;
}

/* Select the token uri_text names and log in to it under the lockout policy. */
static pt_err open_and_login(const ctl_common_opts *o, const char *uri_text, bool login,
                             token **out)
{
    *out = NULL;
    token_uri *u = NULL;
    token *t = NULL;
    token_pin_source storage;
    token_login_opts lo;
    pt_err rc = token_uri_parse(uri_text, &u);
    if (rc == PT_OK)
        rc = ctl_login_opts(o, token_uri_pin_source(u), &storage, &lo);
    if (rc == PT_OK)
        rc = token_open(uri_text, o->module, &t);
    if (rc == PT_OK)
        rc = login ? token_login(t, &lo) : token_pin_change(t, &lo);
    token_uri_free(u);
    if (rc != PT_OK) {
        token_close(t);
        return rc;
    }
    *out = t;
    return PT_OK;
}

static int token_check_cmd(const ctl_common_opts *o, const char *uri)
{
    token *t = NULL;
    token_uri *u = NULL;
    token_key *k = NULL;
    pt_err rc = open_and_login(o, uri, true, &t);
    if (rc == PT_OK)
        rc = token_uri_parse(uri, &u);
    if (rc == PT_OK)
        rc = token_key_find_default(t, u, &k); /* the key signing would use */
    if (rc == PT_OK) {
        const token_info *ti = token_get_info(t);
        printf("token '%s' (serial %s): PIN accepted, PIN state now %s\n", ti->label, ti->serial,
               token_pin_state_name(token_pin_state_from_flags(ti->flags)));
        printf("  key:          '%s'\n", token_key_label(k));
        pt_cert_info ci;
        if (token_key_cert(k) != NULL && pt_cert_info_get(token_key_cert(k), &ci) == PT_OK) {
            print_cert_text(&ci);
            pt_cert_info_free(&ci);
        } else {
            printf("  certificate:  none\n");
        }
    }
    token_key_free(k);
    token_uri_free(u);
    token_close(t);
    return rc == PT_OK ? PT_EXIT_OK : pt_cli_report(rc, "check failed");
}

static int token_pin_cmd(const ctl_common_opts *o, const char *uri)
{
    token *t = NULL;
    pt_err rc = open_and_login(o, uri, false, &t);
    token_close(t);
    if (rc != PT_OK)
        return pt_cli_report(rc, "PIN not changed");
    printf("PIN changed\n");
    return PT_EXIT_OK;
}

typedef struct enroll_params {
    const char *subject;
    const char *label;
    token_keygen_spec spec;
    long days;
    bool force;
} enroll_params;

/* A self-signed SAST certificate for key, signed on the token. */
static pt_err make_sast_cert(token_key *key, const enroll_params *p, X509 **out)
{
    X509_NAME *name = NULL;
    pt_cert_profile profile = {false, -1, "critical,digitalSignature", p->days};
    pt_err rc = pt_name_parse(p->subject, &name);
    if (rc == PT_OK)
        rc = pt_cert_self_signed(token_key_pkey(key), name, &profile, out);
    X509_NAME_free(name);
    return rc;
}

static pt_err clear_label(token *t, const enroll_params *p)
{
    unsigned keys = 0, certs = 0, removed = 0;
    pt_err rc = token_objects_count(t, p->label, TOKEN_OBJECT_PRIVATE_KEY, &keys);
    if (rc == PT_OK)
        rc = token_objects_count(t, p->label, TOKEN_OBJECT_CERTIFICATE, &certs);
    if (rc != PT_OK || (keys == 0 && certs == 0))
        return rc;
    if (!p->force)
        return pt_fail(PT_ERR_EXISTS,
                       "token '%s' already holds a key labelled '%s'; use --force to replace it "
                       "(the old key is destroyed: update every CTL that lists it first)",
                       token_get_info(t)->label, p->label);
    rc = token_objects_destroy(t, p->label, &removed);
    if (rc == PT_OK)
        pt_log_warn("removed %u object%s labelled '%s' from token '%s'", removed,
                    removed == 1 ? "" : "s", p->label, token_get_info(t)->label);
    return rc;
}

static pt_err enroll(token *t, const enroll_params *p, X509 **cert)
{
    uint8_t id[16];
    token_key *key = NULL;
    pt_err rc = clear_label(t, p);
    if (rc == PT_OK)
        rc = token_random_id(id, sizeof id);
    if (rc == PT_OK)
        rc = token_keypair_generate(t, &p->spec, p->label, id, sizeof id);
    if (rc == PT_OK)
        rc = token_key_find_by_label(t, p->label, id, sizeof id, &key);
    if (rc == PT_OK)
        rc = make_sast_cert(key, p, cert);
    if (rc == PT_OK)
        rc = token_cert_store(t, *cert, p->label, id, sizeof id);
    token_key_free(key);
    if (rc != PT_OK) {
        X509_free(*cert);
        *cert = NULL;
    }
    return rc;
}

static int token_enroll_cmd(const ctl_common_opts *o, const char *uri, const enroll_params *p)
{
    X509_NAME *check = NULL;
    pt_err rc = pt_name_parse(p->subject, &check);
    X509_NAME_free(check);
    if (rc != PT_OK)
        return pt_cli_usage_error("--subject: %s", pt_err_message());
    if (p->spec.type == EVP_PKEY_RSA && p->spec.bits != 2048 && p->spec.bits != 4096)
        pt_log_warn("a %d-bit key cannot sign CTL files (the format knows 512, 1024, 2048 and "
                    "4096-bit keys); use rsa:2048 or rsa:4096 for a SAST token",
                    p->spec.bits);

    token *t = NULL;
    X509 *cert = NULL;
    rc = open_and_login(o, uri, true, &t);
    if (rc == PT_OK)
        rc = enroll(t, p, &cert);
    if (rc != PT_OK) {
        token_close(t);
        return pt_cli_report(rc, "enrolment failed");
    }
    pt_cert_info ci;
    if (pt_cert_info_get(cert, &ci) == PT_OK) {
        const token_info *ti = token_get_info(t);
        printf("token '%s' (serial %s) enrolled\n", ti->label, ti->serial);
        print_cert_text(&ci);
        printf("  URI:          pkcs11:serial=%s;object=%s\n", ti->serial, p->label);
        pt_cert_info_free(&ci);
    }
    X509_free(cert);
    token_close(t);
    return PT_EXIT_OK;
}

int ctl_cmd_token(int argc, char **argv)
{
    if (argc < 2) {
        token_usage(stderr);
        return PT_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        token_usage(stdout);
        return PT_EXIT_OK;
    }
    static const struct option longopts[] = {
        CTL_COMMON_LONGOPTS,
        {"new-pin-fd", required_argument, NULL, CTL_OPT_NEW_PIN_FD},
        {"json", no_argument, NULL, CTL_OPT_JSON},
        {"subject", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"days", required_argument, NULL, 'd'},
        {"label", required_argument, NULL, 'l'},
        {"force", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    ctl_common_opts o;
    memset(&o, 0, sizeof o);
    enroll_params p = {NULL, TOKEN_SAST_LABEL, {EVP_PKEY_RSA, 2048, 0}, 3650, false};
    bool key_given = false;
    int c, code;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ctl_common_opt(&o, c, optarg, &code)) {
            if (code != PT_EXIT_OK)
                return code;
            continue;
        }
        switch (c) {
        case 's':
            p.subject = optarg;
            break;
        case 'k':
            if (token_keygen_spec_parse(optarg, &p.spec) != PT_OK)
                return pt_cli_usage_error("--key: %s", pt_err_message());
            key_given = true;
            break;
        case 'd':
            if (!pt_cli_parse_long(optarg, 1, 36500, &p.days))
                return pt_cli_usage_error("--days needs a number of days from 1 to 36500");
            break;
        case 'l':
            p.label = optarg;
            break;
        case 'f':
            p.force = true;
            break;
        case 'h':
            token_usage(stdout);
            return PT_EXIT_OK;
        default:
            return pt_cli_usage_error("unknown option for 'token %s'", sub);
        }
    }
    int nargs = argc - optind;
    if (strcmp(sub, "list") == 0) {
        if (nargs != 0)
            return pt_cli_usage_error("'token list' takes no arguments");
        return token_list_cmd(&o);
    }
    if (strcmp(sub, "pin") == 0) {
        if (nargs != 1)
            return pt_cli_usage_error("usage: ctlclient token pin URI");
        return token_pin_cmd(&o, argv[optind]);
    }
    if (strcmp(sub, "check") == 0) {
        if (nargs != 1)
            return pt_cli_usage_error("usage: ctlclient token check URI");
        return token_check_cmd(&o, argv[optind]);
    }
    if (strcmp(sub, "enroll") == 0) {
        if (nargs != 1)
            return pt_cli_usage_error("usage: ctlclient token enroll URI --subject DN");
        if (p.subject == NULL)
            return pt_cli_usage_error("'token enroll' needs --subject DN");
        if (key_given && p.spec.type != EVP_PKEY_RSA)
            return pt_cli_usage_error("--key: a SAST key must be RSA (CTL files are RSA-signed)");
        return token_enroll_cmd(&o, argv[optind], &p);
    }
    return pt_cli_usage_error("unknown token command '%s' (list, check, pin or enroll)", sub);
}
