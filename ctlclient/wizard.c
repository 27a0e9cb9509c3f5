#include "wizard.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cert.h"
#include "key.h"
#include "module.h"
#include "token.h"
#include "tty.h"
#include "uri.h"

/* What is in the slots right now: the initialised tokens, read from a freshly loaded module. */
typedef struct wizard_look {
    token_info *infos;
    size_t n;
    X509 *cert; /* the single token's SAST certificate, when exactly one is present */
} wizard_look;

static void look_free(wizard_look *l)
{
    OPENSSL_free(l->infos);
    X509_free(l->cert);
    memset(l, 0, sizeof *l);
}

static pt_err look_at_slots(const char *module_path, wizard_look *l)
{
    memset(l, 0, sizeof *l);
    token_module *m = NULL;
    token_info *all = NULL;
    size_t n = 0;
    pt_err rc = token_module_open(module_path, &m);
    if (rc == PT_OK)
        rc = token_list(m, &all, &n);
    if (rc == PT_OK) {
        l->infos = all;
        for (size_t i = 0; i < n; i++)
            if (all[i].initialized)
                l->infos[l->n++] = all[i];
        all = NULL;
    }
    if (rc == PT_OK && l->n == 1) {
        char text[64];
        token_uri *u = NULL;
        token *t = NULL;
        snprintf(text, sizeof text, "pkcs11:serial=%s", l->infos[0].serial);
        rc = token_uri_parse(text, &u);
        if (rc == PT_OK)
            rc = token_select(m, u, &t);
        if (rc == PT_OK)
            rc = token_sast_cert(t, &l->cert);
        token_close(t);
        token_uri_free(u);
    }
    OPENSSL_free(all);
    token_module_close(m);
    if (rc != PT_OK)
        look_free(l);
    return rc;
}

static bool already_added(const ctl_wizard_token *v, size_t n, const char *serial)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].serial, serial) == 0)
            return true;
    return false;
}

static void show_token(size_t index, const token_info *ti, X509 *x)
{
    pt_cert_info ci;
    token_pin_state st = token_pin_state_from_flags(ti->flags);
    pt_tty_printf("Security token %zu: '%s' (serial %s), PIN state %s\n", index, ti->label,
                  ti->serial, token_pin_state_name(st));
    if (pt_cert_info_get(x, &ci) == PT_OK) {
        pt_tty_printf("  certificate: %s\n  issuer:      %s\n  serial:      %s\n"
                      "  SHA-256:     %s\n  key:         %s\n  valid:       %s to %s\n",
                      ci.subject, ci.issuer, ci.serial, ci.sha256, ci.key, ci.not_before,
                      ci.not_after);
        pt_cert_info_free(&ci);
    }
    if (st == TOKEN_PIN_STATE_COUNT_LOW || st == TOKEN_PIN_STATE_FINAL_TRY)
        pt_tty_printf("  warning: wrong PINs were entered on this token since its last good one; "
                      "test its PIN with 'ctlclient token check' before you rely on it\n");
}

/* Why the token now in the slot cannot be added, or NULL when it can. */
static const char *refusal(const wizard_look *l, const ctl_wizard_token *v, size_t n, char *buf,
                           size_t len)
{
    if (l->n == 0)
        return "No security token is inserted.";
    if (l->n > 1) {
        snprintf(buf, len,
                 "%zu security tokens are inserted at once: insert one security token at a "
                 "time. Remove all but one.",
                 l->n);
        return buf;
    }
    const token_info *ti = &l->infos[0];
    if (already_added(v, n, ti->serial)) {
        snprintf(buf, len,
                 "The Security Token you have inserted already exists in the CTL File ('%s', "
                 "serial %s). Remove it and insert another one.",
                 ti->label, ti->serial);
        return buf;
    }
    if (l->cert == NULL) {
        snprintf(buf, len,
                 "Security token '%s' (serial %s) holds no SAST certificate: enrol it first "
                 "with 'ctlclient token enroll', or insert another one.",
                 ti->label, ti->serial);
        return buf;
    }
    if (token_pin_state_from_flags(ti->flags) == TOKEN_PIN_STATE_LOCKED) {
        snprintf(buf, len,
                 "Security token '%s' (serial %s) is locked for good: it could never sign a "
                 "CTL file. Insert another one.",
                 ti->label, ti->serial);
        return buf;
    }
    return NULL;
}

/* Wait for Enter; "q" quits. */
static pt_err press_enter(const char *prompt)
{
    char line[64];
    pt_err rc = pt_tty_read_line(prompt, true, line, sizeof line);
    if (rc == PT_OK && (strcmp(line, "q") == 0 || strcmp(line, "quit") == 0))
        rc = pt_fail(PT_ERR_CANCELLED, "stopped at the user's request; nothing was written");
    return rc;
}

static pt_err add_one(const char *module_path, ctl_wizard_token *v, size_t n)
{
    char prompt[160], why[400];
    snprintf(prompt, sizeof prompt,
             "Insert security token %zu%s (only that one), then press Enter: ", n + 1,
             n < 2 ? " of at least 2" : "");
    for (;;) {
        pt_err rc = press_enter(prompt);
        wizard_look l;
        if (rc == PT_OK)
            rc = look_at_slots(module_path, &l);
        if (rc != PT_OK)
            return rc;
        const char *no = refusal(&l, v, n, why, sizeof why);
        if (no != NULL) {
            pt_tty_printf("%s\n", no);
            look_free(&l);
            continue;
        }
        show_token(n + 1, &l.infos[0], l.cert);
        memcpy(v[n].serial, l.infos[0].serial, sizeof v[n].serial);
        memcpy(v[n].label, l.infos[0].label, sizeof v[n].label);
        v[n].cert = l.cert;
        l.cert = NULL;
        look_free(&l);
        return PT_OK;
    }
}

pt_err ctl_wizard_collect(const char *module_path, size_t max, ctl_wizard_token **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!pt_tty_available())
        return pt_fail(PT_ERR_USAGE, "without --sast, create asks for the security tokens at a "
                                     "terminal, and there is none: give --sast URI at least twice");
    ctl_wizard_token *v = OPENSSL_zalloc(max * sizeof *v);
    if (v == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    size_t count = 0;
    pt_err rc = PT_OK;
    pt_tty_printf("A CTL file lists at least 2 security tokens. Insert them one at a time; type "
                  "q to stop.\n");
    while (rc == PT_OK && count < max) {
        rc = add_one(module_path, v, count);
        if (rc != PT_OK)
            break;
        count++;
        if (count < 2)
            continue;
        char answer[16];
        char prompt[160];
        snprintf(prompt, sizeof prompt,
                 "%zu security tokens added. Add another security token? [y/N]: ", count);
        rc = pt_tty_read_line(prompt, true, answer, sizeof answer);
        if (rc == PT_OK && strcmp(answer, "y") != 0 && strcmp(answer, "yes") != 0)
            break;
    }
    if (rc != PT_OK) {
        ctl_wizard_tokens_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return PT_OK;
}

pt_err ctl_wizard_await(const char *module_path, const ctl_wizard_token *t, const char *why)
{
    char prompt[200];
    snprintf(prompt, sizeof prompt,
             "Insert security token '%s' (serial %s) %s, then press Enter: ", t->label, t->serial,
             why);
    for (;;) {
        token_module *m = NULL;
        token_info *all = NULL;
        size_t n = 0;
        pt_err rc = token_module_open(module_path, &m);
        if (rc == PT_OK)
            rc = token_list(m, &all, &n);
        bool present = false;
        for (size_t i = 0; rc == PT_OK && i < n; i++)
            present = present || (all[i].initialized && strcmp(all[i].serial, t->serial) == 0);
        OPENSSL_free(all);
        token_module_close(m);
        if (rc != PT_OK || present)
            return rc;
        rc = press_enter(prompt);
        if (rc != PT_OK)
            return rc;
    }
}

void ctl_wizard_tokens_free(ctl_wizard_token *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        X509_free(v[i].cert);
    OPENSSL_free(v);
}
