/*
 * The LSC certificate profile (../shared/spec/capf-protocol.md §11): build the
 * TBSCertificate that the CAPF CA key signs (through hsmd), check that a
 * certificate matches the profile, and check a phone's public key.
 */
#ifndef LSC_H
#define LSC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pt_error.h"

#define LSC_SERIAL_LEN   16  /* random bytes in a serial number */
#define LSC_DAYS_DEFAULT 365 /* validity known servers use by default */
#define LSC_DAYS_MAX     3560
#define LSC_NAME_MAX     64 /* ub-common-name; the device name is also the SAN URI */

typedef struct lsc_params {
    /* The issuing certificate: the LSC's issuer is its SUBJECT (CAPF-U18), and
     * its key type chooses the signature algorithm (SHA-256 with RSA or ECDSA). */
    X509 *issuer;
    const char *device_name; /* 1-64 printable ASCII characters, no space */
    /* The phone's key: DER SubjectPublicKeyInfo or bare PKCS#1 RSAPublicKey. */
    const uint8_t *public_key;
    size_t public_key_len;
    time_t not_before; /* UTC seconds */
    time_t not_after;  /* after not_before */
    /* Serial as unsigned big-endian bytes (1-16, not zero), or NULL for
     * LSC_SERIAL_LEN random bytes from RAND_bytes. */
    const uint8_t *serial;
    size_t serial_len;
} lsc_params;

/*
 * Build the DER TBSCertificate of an LSC for p (§11): v3, serial, signature
 * algorithm, issuer, validity (UTCTime before 2050, GeneralizedTime from
 * 2050), subject CN=<device> then the CA's O, OU, L, ST, C, the phone's key,
 * and the four extensions of the profile in order. Free with OPENSSL_free.
 */
pt_err lsc_tbs_build(const lsc_params *p, uint8_t **tbs, size_t *len);

/*
 * Does cert (or a TBS turned into an X509 with pt_der_tbs_to_x509) match the
 * profile for device under issuer? Checks version, serial, signature
 * algorithm, issuer, validity encoding, subject, key type and the exact
 * extensions. It does not verify the signature, so that it can check a TBS
 * before it is signed; verify that separately. PT_OK, or PT_ERR_REFUSED with
 * the first mismatch in why (and in the error detail).
 */
pt_err lsc_profile_check(X509 *cert, X509 *issuer, const char *device, char *why, size_t whylen);

/* Check a device name for use in an LSC (CN and SAN URI). */
pt_err lsc_device_name_check(const char *name);

/*
 * Parse a phone's public key (DER SubjectPublicKeyInfo, or a bare PKCS#1
 * RSAPublicKey as known servers accept, §10.2 step 7): RSA, or EC on P-256,
 * P-384 or P-521 by name. key and spki may be NULL; *spki gets the DER
 * SubjectPublicKeyInfo (free with OPENSSL_free).
 */
pt_err lsc_public_key_parse(const uint8_t *der, size_t len, EVP_PKEY **key, uint8_t **spki,
                            size_t *spki_len);

/*
 * §10.2 step 7 SHOULD: is the key what was asked for? key_type CAPF_KEY_RSA
 * with rsa_bits, or CAPF_KEY_EC with curve (CAPF_CURVE_*). Also rejects RSA
 * keys with an even modulus or an exponent below 3 or even, and EC points
 * that fail OpenSSL's public key check. PT_ERR_REFUSED on a mismatch.
 */
pt_err lsc_public_key_check(const uint8_t *der, size_t len, uint8_t key_type, unsigned rsa_bits,
                            uint8_t curve);

#endif
