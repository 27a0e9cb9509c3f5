/*
 * CAPF certificate authentication (../shared/spec/capf-protocol.md §9.3-§9.5):
 * the signed blobs, the "raw digest" RSA and ECDSA signatures over them, the
 * SUDI checks and the one-level trust check on authentication certificates.
 *
 * Verification is for the server, signing for clients (the phone simulator).
 */
#ifndef CAPF_AUTH_H
#define CAPF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "capf_msg.h"
#include "pt_error.h"

/*
 * §9.3 authentication blob: DEVICE_NAME bytes, 0x00, certificate DER.
 * Free *blob with OPENSSL_free.
 */
pt_err capf_auth_blob(const char *device_name, const uint8_t *cert, size_t cert_len, uint8_t **blob,
                      size_t *len);
/* §9.4 SUDI blob: session ID as u32 LITTLE-endian, SUDI certificate DER. */
pt_err capf_sudi_blob(uint32_t session_id, const uint8_t *sudi, size_t sudi_len, uint8_t **blob,
                      size_t *len);

/* The form a verified signature had. */
typedef enum capf_sig_form {
    CAPF_SIG_NONE = 0,
    CAPF_SIG_RSA_RAW,         /* 00 01 FF..FF 00 H: the form clients must send (§9.3) */
    CAPF_SIG_RSA_DIGEST_INFO, /* 00 01 FF..FF 00 DigestInfo(H): standard PKCS#1 v1.5 */
    CAPF_SIG_ECDSA_DER,       /* Ecdsa-Sig-Value */
    CAPF_SIG_ECDSA_RAW,       /* r || s, tolerated (CAPF-U15) */
} capf_sig_form;

const char *capf_sig_form_name(capf_sig_form form);

/*
 * Verify sig over blob with key and digest (CAPF_DIGEST_SHA1/SHA256/SHA512).
 * RSA: s^e mod n must be exactly the raw form or the DigestInfo form, prefix
 * `00 01 FF..FF 00` included (known servers compare only the trailing |H|
 * bytes, which lets a small exponent forge signatures). EC: ECDSA.
 * PT_ERR_VERIFY when it does not verify; *form says which form matched.
 */
pt_err capf_auth_verify(EVP_PKEY *key, uint8_t digest, const uint8_t *blob, size_t blob_len,
                        const uint8_t *sig, size_t sig_len, capf_sig_form *form);

/*
 * Sign blob as a client must: RSA in the raw form (EVP_PKEY_sign with
 * RSA_PKCS1_PADDING over H, no DigestInfo), EC as DER ECDSA. An RSA key needs
 * k >= |H| + 11 bytes (so no SHA-512 with RSA-512: PT_ERR_UNSUPPORTED).
 * Free *sig with OPENSSL_free.
 */
pt_err capf_auth_sign(EVP_PKEY *key, uint8_t digest, const uint8_t *blob, size_t blob_len,
                      uint8_t **sig, size_t *sig_len);

/* Options of the trust check. */
typedef struct capf_trust_opts {
    /* Also require notBefore <= now <= notAfter (known servers do not, §9.5). */
    bool check_validity;
    time_t now; /* 0: the current time */
} capf_trust_opts;

/*
 * §9.5: cert is trusted when, for some T in trust, cert's issuer DN equals
 * T's subject DN attribute by attribute and cert's signature (RSA PKCS#1 v1.5
 * or ECDSA, SHA-1 to SHA-512) verifies with T's key. One level only.
 * opts may be NULL (no validity check). *index (may be NULL) gets T's index.
 * PT_ERR_VERIFY otherwise, saying whether no name matched or no key did.
 */
pt_err capf_auth_trust_check(X509 *cert, STACK_OF(X509) * trust, const capf_trust_opts *opts,
                             int *index);

/* True when the two names have the same attributes, RDN by RDN, in order. */
bool capf_auth_name_equal(const X509_NAME *a, const X509_NAME *b);

/* What capf_auth_verify_response found (for the log). */
typedef struct capf_auth_result {
    capf_sig_form signed_data_form;      /* SIGNED_DATA, SHA-1 */
    capf_sig_form sha2_signed_data_form; /* SHA2_SIGNED_DATA, SHA-512 */
    int trust_index;                     /* trust certificate that issued CERTIFICATE */
    bool cn_is_device;                   /* informative: known servers do not check it */
    bool sudi_present;
    bool sudi_checked; /* false when absent or when the SUDI key is not RSA (§9.4 step 2) */
    capf_sig_form sudi_sha1_form;
    capf_sig_form sudi_sha512_form;
    int sudi_trust_index;
} capf_auth_result;

/*
 * The server's certificate authentication of an AUTH_RESPONSE (§9.3 steps
 * 1-5, then §9.4 when SUDI_DATA is present), using m's session ID for the
 * SUDI blob. PT_OK only when everything verified; otherwise the detail says
 * what failed (the server then ends the session with reason 7).
 */
pt_err capf_auth_verify_response(const capf_msg *m, STACK_OF(X509) * trust,
                                 const capf_trust_opts *opts, capf_auth_result *res);

#endif
