/*
 * Initialising tokens: a free slot (SoftHSM2 always offers one) becomes a
 * token with a label, an SO PIN and a user PIN. Used by phonetrust-softhsm,
 * the documented way to provision SoftHSM2 tokens for tests, demos and CI.
 */
#ifndef TOKEN_PROVISION_H
#define TOKEN_PROVISION_H

#include "module.h"
#include "pt_error.h"
#include "token.h"

/*
 * Initialise the first slot holding an uninitialised token: set its label
 * and SO PIN (C_InitToken), then its user PIN (C_InitPIN as SO). A label
 * already used by another token is refused. On success *out describes the
 * new token (its slot id may differ from the free slot's: SoftHSM2 moves it).
 */
pt_err token_provision(token_module *m, const char *label, const char *so_pin, const char *user_pin,
                       token_info *out);

#endif
