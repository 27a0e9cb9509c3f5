/*
 * Logging in without ever locking a token by accident.
 *
 * Before every login (and every PIN change, which also counts wrong PINs)
 * the token's flags are read fresh from the module:
 *   locked        -> refused: the token is locked for good;
 *   final try     -> refused unless the user allowed it (--allow-final-try,
 *                    or an explicit confirmation typed at the terminal);
 *   count low     -> a warning before the PIN is asked;
 *   to be changed -> after logging in, the PIN is changed before anything else.
 * A wrong PIN from a file or descriptor stops at once; at the terminal the
 * user gets at most three attempts per run, with the token's state shown
 * each time. A PIN is never retried automatically.
 */
#ifndef TOKEN_LOGIN_H
#define TOKEN_LOGIN_H

#include <stdbool.h>

#include "pin.h"
#include "pt_error.h"
#include "token.h"

/* Attempts at the terminal per run. */
#define TOKEN_LOGIN_MAX_PROMPTS 3
/* What the user types to use a token's final PIN try at the terminal. */
#define TOKEN_FINAL_TRY_CONFIRMATION "final try"

typedef struct token_login_opts {
    /* Where the PIN comes from; NULL or TOKEN_PIN_FROM_PROMPT: the terminal. */
    const token_pin_source *pin;
    /* Where a new PIN comes from when one is needed; NULL: the same descriptor as pin, else the
     * terminal. */
    const token_pin_source *new_pin;
    /* The user explicitly allowed the final try (--allow-final-try). */
    bool allow_final_try;
} token_login_opts;

typedef enum token_login_verdict {
    TOKEN_LOGIN_GO = 0,        /* ask for the PIN and log in */
    TOKEN_LOGIN_GO_WARN,       /* the same, after warning that wrong PINs were entered */
    TOKEN_LOGIN_CONFIRM_FINAL, /* only after an explicit confirmation at the terminal */
    TOKEN_LOGIN_REFUSE_FINAL,  /* final try, not allowed: refuse without touching the token */
    TOKEN_LOGIN_REFUSE_LOCKED, /* locked for good: refuse */
} token_login_verdict;

/* The policy itself: what to do with a token whose flags are these. */
token_login_verdict token_login_decide(unsigned long flags, bool interactive, bool allow_final_try);

/* Log in as the token's user under the policy above. */
pt_err token_login(token *t, const token_login_opts *opts);

/*
 * Change the user PIN under the same policy: the old PIN (as for a login),
 * then the new PIN twice (from the terminal, or once more each from a
 * descriptor or new_pin).
 */
pt_err token_pin_change(token *t, const token_login_opts *opts);

#endif
