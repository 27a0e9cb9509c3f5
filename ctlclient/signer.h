/*
 * Who signs a CTL or ITL file: a key on a PKCS#11 token (an eToken, or any
 * token holding the TFTP key), named by an RFC 7512 URI, or a key held by
 * hsmd, named "hsmd:SOCKET#LABEL".
 *
 * Opening a signer reads its certificate without logging in (a token's SAST
 * certificate, or hsmd's CERT answer). Only ctl_signer_sign logs in to a
 * token, so a PIN is asked for only when a file is really signed.
 */
#ifndef CTL_SIGNER_H
#define CTL_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "cmd.h"
#include "module.h"
#include "pt_error.h"

typedef struct ctl_signer ctl_signer;

/*
 * The PKCS#11 modules of one command, each loaded once: every token the
 * command opens on a module shares that module's one initialisation (a second
 * load of the same module would be finalised under the first one's feet when
 * either is closed). Free it after every signer that uses it is closed.
 */
typedef struct ctl_modules ctl_modules;

/* override is --module (may be NULL): used for URIs without module-path=. */
pt_err ctl_modules_new(const char *override, ctl_modules **out);
void ctl_modules_free(ctl_modules *m);
/* The module for a URI's module-path (NULL: the override, else the default), loaded once. */
pt_err ctl_modules_get(ctl_modules *m, const char *path, token_module **out);

/*
 * Open spec (a PKCS#11 URI or "hsmd:SOCKET#LABEL"); tokens are reached through
 * mods (may be NULL for hsmd signers). cert, when not NULL, is the signer's certificate as given by
 * the user (a reference is taken); otherwise it is read from the token (the certificate labelled
 * SAST, else the only one) or from hsmd. A token without any certificate is PT_ERR_NOT_FOUND, with
 * what to do.
 */
pt_err ctl_signer_open(ctl_modules *mods, const char *spec, X509 *cert, ctl_signer **out);
void ctl_signer_close(ctl_signer *s);

/* The signer's certificate (owned by s). */
X509 *ctl_signer_cert(const ctl_signer *s);
/* True for "hsmd:" signers. */
bool ctl_signer_is_hsmd(const ctl_signer *s);
/* The token's serial number; NULL for hsmd signers. */
const char *ctl_signer_token_serial(const ctl_signer *s);
/* The token's PIN state flags as read when it was opened (0 for hsmd). */
unsigned long ctl_signer_token_flags(const ctl_signer *s);
/* "token 'SAST-1' (serial 1234)" or "hsmd key 'ITLRecovery' at /run/...". */
const char *ctl_signer_describe(const ctl_signer *s);

/*
 * Sign a file built by tlv_build_unsigned in place. For a token: log in
 * under the retry-lockout policy (o's --pin-fd, else the URI's pin-source,
 * else the prompt), find the key (the URI's object=/id=, else the key
 * labelled SAST, else the only key), check that it is the key of the
 * signer's certificate, sign, and check the signature. For hsmd: send the
 * file and check that the answer is the same file with a valid signature.
 * On failure buf is unchanged (its signature stays zero-filled).
 */
pt_err ctl_signer_sign(ctl_signer *s, const ctl_common_opts *o, uint8_t *buf, size_t len);

#endif
