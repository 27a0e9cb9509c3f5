#include "login.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "p11.h"
#include "token_internal.h"
#include "tty.h"

token_login_verdict token_login_decide(unsigned long flags, bool interactive, bool allow_final_try)
{
    token_pin_state s = token_pin_state_from_flags(flags);
    if (s == TOKEN_PIN_STATE_LOCKED)
        return TOKEN_LOGIN_REFUSE_LOCKED;
    if (s == TOKEN_PIN_STATE_FINAL_TRY) {
        if (allow_final_try)
            return TOKEN_LOGIN_GO_WARN;
        return interactive ? TOKEN_LOGIN_CONFIRM_FINAL : TOKEN_LOGIN_REFUSE_FINAL;
    }
    if (flags & CKF_USER_PIN_COUNT_LOW)
        return TOKEN_LOGIN_GO_WARN;
    return TOKEN_LOGIN_GO;
}

static bool opts_interactive(const token_login_opts *o)
{
    return o == NULL || token_pin_source_is_prompt(o->pin);
}

static pt_err fail_locked(const token *t)
{
    char d[128];
    return pt_fail(PT_ERR_PIN_LOCKED,
                   "%s is locked for good: its PIN was entered wrongly too many times and it "
                   "cannot be unlocked. Add a new token to the CTL with another token that is "
                   "listed in it (ctlclient update --sign-with OTHER --add-sast NEW --remove-sast "
                   "SERIAL-OF-THIS-TOKEN'S-CERTIFICATE), then retire this one",
                   token_describe(t, d, sizeof d));
}

static pt_err fail_final_try(const token *t)
{
    char d[128];
    return pt_fail(PT_ERR_PIN_FINAL_TRY,
                   "%s allows one more PIN attempt: one more wrong PIN locks it permanently. "
                   "Nothing was sent to the token. If you are certain of the PIN, run again with "
                   "--allow-final-try",
                   token_describe(t, d, sizeof d));
}

static void warn_state(const token *t, bool interactive)
{
    char d[128];
    token_pin_state s = token_pin_state_from_flags(t->info.flags);
    token_describe(t, d, sizeof d);
    if (s == TOKEN_PIN_STATE_FINAL_TRY)
        pt_log_warn("%s: FINAL TRY. One more wrong PIN locks this token permanently.", d);
    else if (t->info.flags & CKF_USER_PIN_COUNT_LOW)
        pt_log_warn("%s: wrong PINs were entered since the last correct one (PIN state "
                    "count-low); a correct PIN resets the count. Check the PIN before %s it.",
                    d, interactive ? "typing" : "using");
}

/* At the terminal, the final try needs the user to type the confirmation phrase. */
static pt_err confirm_final_try(const token *t)
{
    char d[128];
    char answer[64];
    pt_tty_printf("\n%s allows ONE more PIN attempt.\n"
                  "If the next PIN is wrong the token is locked for good and cannot sign again.\n",
                  token_describe(t, d, sizeof d));
    pt_err rc = pt_tty_read_line("Type '" TOKEN_FINAL_TRY_CONFIRMATION
                                 "' to use the last attempt, anything else to stop: ",
                                 true, answer, sizeof answer);
    if (rc != PT_OK)
        return rc;
    if (strcmp(answer, TOKEN_FINAL_TRY_CONFIRMATION) != 0)
        return pt_fail(PT_ERR_CANCELLED, "final try not confirmed; %s was not touched", d);
    return PT_OK;
}

/*
 * Read the flags fresh and apply the policy before a PIN is sent to the token.
 * Returns PT_OK when a PIN may be asked for and sent.
 */
static pt_err login_precheck(token *t, const token_login_opts *o)
{
    pt_err rc = token_refresh(t);
    if (rc != PT_OK)
        return rc;
    bool interactive = opts_interactive(o);
    switch (token_login_decide(t->info.flags, interactive, o != NULL && o->allow_final_try)) {
    case TOKEN_LOGIN_REFUSE_LOCKED:
        return fail_locked(t);
    case TOKEN_LOGIN_REFUSE_FINAL:
        return fail_final_try(t);
    case TOKEN_LOGIN_CONFIRM_FINAL:
        return confirm_final_try(t);
    case TOKEN_LOGIN_GO_WARN:
        warn_state(t, interactive);
        return PT_OK;
    case TOKEN_LOGIN_GO:
        return PT_OK;
    }
    return pt_fail(PT_ERR_INTERNAL, "unknown login verdict");
}

/* After a wrong PIN: tell the user what the token says now. */
static pt_err after_wrong_pin(token *t, const token_login_opts *o, int attempt)
{
    char d[128], src[160];
    token_describe(t, d, sizeof d);
    pt_err rc = token_refresh(t);
    const char *state =
        rc == PT_OK ? token_pin_state_name(token_pin_state_from_flags(t->info.flags)) : "unknown";
    if (rc == PT_OK && token_pin_state_from_flags(t->info.flags) == TOKEN_PIN_STATE_LOCKED)
        return fail_locked(t);
    if (!opts_interactive(o))
        return pt_fail(PT_ERR_PIN_INCORRECT,
                       "%s rejected the PIN from %s; it was not retried (PIN state now: %s). "
                       "Correct the PIN source before running again: eTokens lock for good after "
                       "15 wrong PINs in a row",
                       d, token_pin_source_describe(o->pin, src, sizeof src), state);
    if (attempt >= TOKEN_LOGIN_MAX_PROMPTS)
        return pt_fail(PT_ERR_PIN_INCORRECT,
                       "%d wrong PINs for %s in this run; stopping so that the token is not "
                       "locked (PIN state now: %s)",
                       attempt, d, state);
    pt_tty_printf("Wrong PIN for %s. PIN state now: %s. Attempt %d of %d in this run.\n", d, state,
                  attempt + 1, TOKEN_LOGIN_MAX_PROMPTS);
    return PT_OK;
}

static pt_err call_login(token *t, const char *pin)
{
    size_t len = pin != NULL ? strlen(pin) : 0;
    CK_RV rv = t->module->fl->C_Login(t->session, CKU_USER, token_ck_input(pin), (CK_ULONG)len);
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        t->logged_in = true;
        return PT_OK;
    }
    return token_note_failure(t, token_ckr_fail(rv, "C_Login", "logging in to the token"));
}

static bool has_pinpad(const token *t)
{
    return (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
}

/* Ask for a PIN once, from the configured source (or nothing with a PIN pad). */
static pt_err read_pin(const token *t, const token_pin_source *src, const char *what, char **pin)
{
    *pin = NULL;
    if (has_pinpad(t)) {
        pt_tty_printf("Enter the PIN on the reader's PIN pad for token '%s'.\n", t->info.label);
        return PT_OK;
    }
    char prompt[128];
    snprintf(prompt, sizeof prompt, "%s for token '%s': ", what, t->info.label);
    return token_pin_read(src, prompt, pin);
}

static const token_pin_source *new_pin_source(const token_login_opts *o)
{
    if (o != NULL && o->new_pin != NULL)
        return o->new_pin;
    if (o != NULL && o->pin != NULL && o->pin->kind == TOKEN_PIN_FROM_FD)
        return o->pin; /* old, new and repeated new PIN follow each other */
    return NULL;
}

/* Read the new PIN twice and check the copies agree and fit the token's limits. */
static pt_err read_new_pin(token *t, const token_login_opts *o, char **out)
{
    *out = NULL;
    if (has_pinpad(t))
        return PT_OK; /* C_SetPIN with no PINs: the reader's PIN pad asks for both */
    const token_pin_source *src = new_pin_source(o);
    if (src == NULL && !pt_tty_available())
        return pt_fail(PT_ERR_PIN_CHANGE,
                       "a new PIN is needed for token '%s' but there is no terminal; give "
                       "--new-pin-fd N (or the new PIN twice on --pin-fd after the old one)",
                       t->info.label);
    CK_TOKEN_INFO ti;
    bool have_limits = t->module->fl->C_GetTokenInfo(t->slot_id, &ti) == CKR_OK;
    for (int attempt = 1; attempt <= TOKEN_LOGIN_MAX_PROMPTS; attempt++) {
        char *first = NULL, *second = NULL;
        pt_err rc = read_pin(t, src, "New PIN", &first);
        if (rc == PT_OK)
            rc = read_pin(t, src, "New PIN again", &second);
        if (rc != PT_OK || first == NULL || second == NULL) {
            token_pin_free(first);
            token_pin_free(second);
            return rc != PT_OK ? rc : pt_fail(PT_ERR_INTERNAL, "no new PIN was read");
        }
        size_t len = strlen(first);
        if (strcmp(first, second) != 0)
            rc = pt_fail(PT_ERR_REFUSED, "the two new PINs differ; the PIN was not changed");
        else if (have_limits && (len < ti.ulMinPinLen || len > ti.ulMaxPinLen))
            rc = pt_fail(PT_ERR_REFUSED, "the token needs a PIN of %lu to %lu characters",
                         (unsigned long)ti.ulMinPinLen, (unsigned long)ti.ulMaxPinLen);
        token_pin_free(second);
        if (rc == PT_OK) {
            *out = first;
            return PT_OK;
        }
        token_pin_free(first);
        if (!token_pin_source_is_prompt(src))
            return rc;
        pt_tty_printf("%s; try again.\n", pt_err_message());
    }
    return pt_fail(PT_ERR_REFUSED, "no matching new PIN after %d attempts",
                   TOKEN_LOGIN_MAX_PROMPTS);
}

/* C_SetPIN; on success log it and read the token's new flags. */
static pt_err call_set_pin(token *t, const char *old_pin, const char *new_pin)
{
    CK_RV rv = t->module->fl->C_SetPIN(
        t->session, token_ck_input(old_pin), old_pin ? (CK_ULONG)strlen(old_pin) : 0,
        token_ck_input(new_pin), new_pin ? (CK_ULONG)strlen(new_pin) : 0);
    if (rv != CKR_OK)
        return token_note_failure(t, token_ckr_fail(rv, "C_SetPIN", "changing the token's PIN"));
    char d[128];
    pt_log_info("the PIN of %s was changed", token_describe(t, d, sizeof d));
    return token_refresh(t);
}

/* The token still has its default PIN: change it before anything else. */
static pt_err change_default_pin(token *t, const token_login_opts *o, const char *old_pin)
{
    char d[128];
    token_describe(t, d, sizeof d);
    pt_log_warn("%s still has a default PIN, which must be changed before the token is used", d);
    char *new_pin = NULL;
    pt_err rc = read_new_pin(t, o, &new_pin);
    if (rc == PT_OK)
        rc = call_set_pin(t, old_pin, new_pin);
    token_pin_free(new_pin);
    return rc;
}

/* One try of an operation that sends the user's PIN; PT_ERR_PIN_INCORRECT may be retried. */
typedef pt_err (*pin_try_fn)(token *t, const token_login_opts *o);

/*
 * Run try_once under the retry-lockout policy: the flags are read and judged
 * before every try, and a wrong PIN is retried only at a terminal, a bounded
 * number of times, never at the final try without consent.
 */
static pt_err with_pin_policy(token *t, const token_login_opts *o, pin_try_fn try_once)
{
    pt_err rc = token_session_ensure(t);
    if (rc != PT_OK)
        return rc;
    for (int attempt = 1;; attempt++) {
        rc = login_precheck(t, o);
        if (rc != PT_OK)
            return rc;
        rc = try_once(t, o);
        if (rc == PT_ERR_PIN_LOCKED)
            return fail_locked(t);
        if (rc != PT_ERR_PIN_INCORRECT)
            return rc;
        rc = after_wrong_pin(t, o, attempt);
        if (rc != PT_OK)
            return rc;
    }
}

static pt_err try_login(token *t, const token_login_opts *o)
{
    char *pin = NULL;
    pt_err rc = read_pin(t, o != NULL ? o->pin : NULL, "PIN", &pin);
    if (rc == PT_OK)
        rc = call_login(t, pin);
    if (rc == PT_OK) {
        /* Fresh flags: the default-PIN mark shows only now on some tokens. */
        rc = token_refresh(t);
        if (rc == PT_OK && (t->info.flags & CKF_USER_PIN_TO_BE_CHANGED))
            rc = change_default_pin(t, o, pin);
        if (rc != PT_OK) {
            (void)t->module->fl->C_Logout(t->session);
            t->logged_in = false;
        }
    }
    token_pin_free(pin);
    return rc;
}

static pt_err try_pin_change(token *t, const token_login_opts *o)
{
    char *old_pin = NULL, *new_pin = NULL;
    pt_err rc = read_pin(t, o != NULL ? o->pin : NULL, "Current PIN", &old_pin);
    if (rc == PT_OK)
        rc = read_new_pin(t, o, &new_pin);
    if (rc == PT_OK)
        rc = call_set_pin(t, old_pin, new_pin);
    token_pin_free(old_pin);
    token_pin_free(new_pin);
    return rc;
}

pt_err token_login(token *t, const token_login_opts *opts)
{
    return t->logged_in ? PT_OK : with_pin_policy(t, opts, try_login);
}

pt_err token_pin_change(token *t, const token_login_opts *opts)
{
    return with_pin_policy(t, opts, try_pin_change);
}
