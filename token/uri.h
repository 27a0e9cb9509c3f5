/*
 * RFC 7512 PKCS#11 URIs, parsed by p11-kit: which token (token, manufacturer,
 * serial, model, slot-id), which object (object, id, type), where the PIN
 * comes from (pin-source) and which module (module-path).
 */
#ifndef TOKEN_URI_H
#define TOKEN_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_error.h"

typedef struct token_uri token_uri;

pt_err token_uri_parse(const char *text, token_uri **out);
void token_uri_free(token_uri *u);

/* The text the URI was parsed from. */
const char *token_uri_text(const token_uri *u);
/* module-path, pin-source and object (label) values, or NULL when absent. */
const char *token_uri_module_path(const token_uri *u);
const char *token_uri_pin_source(const token_uri *u);
const char *token_uri_object_label(const token_uri *u);
/* id attribute; false when absent. */
bool token_uri_object_id(const token_uri *u, const uint8_t **id, size_t *len);
/* type attribute as a CKO_* class; false when absent. */
bool token_uri_object_class(const token_uri *u, unsigned long *cls);

/*
 * Whether the token in slot_id with this CK_TOKEN_INFO matches the URI's
 * token attributes (and slot-id, when given). info is a CK_TOKEN_INFO *.
 */
bool token_uri_matches_token(const token_uri *u, const void *info, unsigned long slot_id);

/* True when the URI names no token attribute at all (matches every token). */
bool token_uri_matches_any_token(const token_uri *u);

#endif
