/*
 * The key ceremony: the CAPF CA key and the ITLRecovery key generated inside
 * the HSM (sensitive, never extractable), their self-signed certificates
 * made with the keys in the HSM and stored next to them.
 */
#ifndef HSM_CEREMONY_H
#define HSM_CEREMONY_H

#include <openssl/x509.h>

#include "keygen.h"
#include "pt_error.h"
#include "token.h"

#define HSM_LABEL_CAPF        "CAPF"
#define HSM_LABEL_ITLRECOVERY "ITLRecovery"

typedef enum hsm_key_role {
    HSM_KEY_CAPF,        /* the CA that signs every LSC */
    HSM_KEY_ITLRECOVERY, /* signs ITL files when phones no longer trust the TFTP key */
} hsm_key_role;

typedef struct hsm_key_params {
    const X509_NAME *subject;
    token_keygen_spec spec; /* the key to generate */
    int years;              /* certificate validity */
} hsm_key_params;

/* "CAPF" or "ITLRecovery" */
const char *hsm_key_label(hsm_key_role role);

/* The ITLRecovery subject made from the CAPF subject: its CN prefixed with "ITLRECOVERY_". */
pt_err hsm_itlrecovery_subject(const X509_NAME *capf_subject, X509_NAME **out);

/*
 * Generate the key for role on a logged-in token, make and store its
 * certificate (CAPF: CA:TRUE, keyCertSign, cRLSign, digitalSignature;
 * ITLRecovery: digitalSignature). Refuses (PT_ERR_EXISTS) when a key or
 * certificate with that label exists unless replace is set, in which case
 * the old objects are destroyed first.
 */
pt_err hsm_key_create(token *t, hsm_key_role role, const hsm_key_params *p, bool replace,
                      X509 **cert);

/* Does the token hold a key or certificate for role? */
pt_err hsm_key_exists(token *t, hsm_key_role role, bool *exists);

/* Days from now until the same date years later. */
long hsm_days_for_years(int years);

#endif
