/*
 * The one module that handles PINs. A PIN comes from a file (pin-source in
 * the URI), a file descriptor (--pin-fd N), or a no-echo prompt on the
 * terminal; never from argv or the environment. PINs live in OpenSSL's
 * secure heap, are never cached or logged, and are wiped when freed.
 */
#ifndef TOKEN_PIN_H
#define TOKEN_PIN_H

#include <stdbool.h>
#include <stddef.h>

#include "pt_error.h"

#define TOKEN_PIN_MAX 256

typedef enum token_pin_kind {
    TOKEN_PIN_FROM_PROMPT = 0,
    TOKEN_PIN_FROM_FILE = 1,
    TOKEN_PIN_FROM_FD = 2,
} token_pin_kind;

typedef struct token_pin_source {
    token_pin_kind kind;
    const char *path; /* TOKEN_PIN_FROM_FILE (borrowed) */
    int fd;           /* TOKEN_PIN_FROM_FD */
} token_pin_source;

/* A pin-source value: "file:PATH", "file:///PATH" or a plain path. */
pt_err token_pin_source_from_uri(const char *value, token_pin_source *out);
/* --pin-fd N */
pt_err token_pin_source_from_fd(const char *text, token_pin_source *out);
/* True when the source asks at the terminal. */
bool token_pin_source_is_prompt(const token_pin_source *s);
/* Describe the source for messages ("file /run/pin", "file descriptor 3", "the terminal"). */
const char *token_pin_source_describe(const token_pin_source *s, char *buf, size_t len);

/*
 * Read one PIN. From a file: its first line; from a descriptor: the next
 * line (several PINs can follow each other, e.g. old and new PIN); at the
 * prompt: one line without echo. Free with token_pin_free.
 */
pt_err token_pin_read(const token_pin_source *s, const char *prompt, char **pin);

/* Wipe and free a PIN (NULL is fine). */
void token_pin_free(char *pin);

#endif
