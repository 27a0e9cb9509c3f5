/*
 * Tokens: listing them, selecting one by PKCS#11 URI, and reading their
 * state fresh from the module (never from a cache, so the PIN flags are
 * always current).
 */
#ifndef TOKEN_TOKEN_H
#define TOKEN_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "module.h"
#include "pt_error.h"
#include "uri.h"

typedef struct token token;

typedef enum token_pin_state {
    TOKEN_PIN_STATE_OK = 0,
    TOKEN_PIN_STATE_COUNT_LOW,     /* a wrong PIN was entered since the last good one */
    TOKEN_PIN_STATE_FINAL_TRY,     /* one more wrong PIN locks the token for good */
    TOKEN_PIN_STATE_LOCKED,        /* locked for good */
    TOKEN_PIN_STATE_TO_BE_CHANGED, /* the PIN is a default one and must be changed */
} token_pin_state;

typedef struct token_info {
    unsigned long slot_id;
    char label[33];
    char manufacturer[33];
    char model[17];
    char serial[17];
    unsigned long flags; /* CK_TOKEN_INFO flags, as read */
    bool initialized;
} token_info;

/* The state the flags say, the most serious first: locked, final-try, to-be-changed, count-low. */
token_pin_state token_pin_state_from_flags(unsigned long flags);
/* "ok", "count-low", "final-try", "locked", "to-be-changed" */
const char *token_pin_state_name(token_pin_state s);

/* Every slot that holds a token, with fresh info. Free with OPENSSL_free. */
pt_err token_list(token_module *m, token_info **out, size_t *n);

/*
 * Select the one initialised token that uri matches. No match or several
 * matches is an error that lists what is there.
 */
pt_err token_select(token_module *m, const token_uri *uri, token **out);

/*
 * Parse uri_text, load the module it names (module-path=), else
 * module_override, else the default, and select the token. The returned
 * token owns the module.
 */
pt_err token_open(const char *uri_text, const char *module_override, token **out);

/* Log out, close the session, release. */
void token_close(token *t);

/* The info read when the token was selected or last refreshed. */
const token_info *token_get_info(const token *t);
/* Read the token's info again (fresh flags). PT_ERR_TOKEN_GONE when it is no longer there. */
pt_err token_refresh(token *t);
bool token_is_logged_in(const token *t);

/* "token 'SAST-1' (serial 1234ABCD)" for messages. */
const char *token_describe(const token *t, char *buf, size_t len);

#endif
