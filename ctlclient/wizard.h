/*
 * The interactive side of `ctlclient create` without --sast: the security
 * tokens are inserted one at a time, as with the classic CTL client.
 *
 * How a token is detected: when the user presses Enter, the module is loaded
 * afresh and its slots are listed, so whatever is in the slots at that moment
 * is seen (a token plugged in or pulled out since the last look included).
 * Exactly one initialised token must be present; it must not be one already
 * added, and it must hold a SAST certificate. Its certificate and PIN state
 * are shown; no PIN is asked here (only when the file is signed).
 */
#ifndef CTL_WIZARD_H
#define CTL_WIZARD_H

#include <stddef.h>

#include <openssl/x509.h>

#include "pt_error.h"

typedef struct ctl_wizard_token {
    char serial[17];
    char label[33];
    X509 *cert;
} ctl_wizard_token;

/*
 * Ask for tokens until at least 2 are added and the user wants no more
 * (at most max). module_path is --module (NULL: the default module).
 * PT_ERR_CANCELLED when the user quits or the terminal closes.
 */
pt_err ctl_wizard_collect(const char *module_path, size_t max, ctl_wizard_token **out, size_t *n);

/* Ask for t to be inserted again (unless it is present) before it signs. */
pt_err ctl_wizard_await(const char *module_path, const ctl_wizard_token *t, const char *why);

void ctl_wizard_tokens_free(ctl_wizard_token *v, size_t n);

#endif
