/*
 * The few DER operations OpenSSL has no public call for: wrapping a
 * TBSCertificate and a signature into a certificate, and walking the outer
 * layer of a DER element with bounds checks.
 */
#ifndef PT_DER_H
#define PT_DER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "bytes.h"
#include "pt_error.h"

/* Largest TBSCertificate or certificate handled. */
#define PT_DER_CERT_MAX (64 * 1024)

/*
 * Read one DER element (definite length, tag number < 31) from r: its tag
 * byte, the offset of the whole element, and a reader over its contents.
 */
pt_err pt_der_read(pt_reader *r, uint8_t *tag, pt_reader *contents, const uint8_t **elem,
                   size_t *elem_len);

/* Append a DER length. */
bool pt_der_write_length(pt_writer *w, size_t len);

/*
 * Build Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 * signatureValue } from a DER TBSCertificate and a signature. The
 * signatureAlgorithm is copied from the TBS's own signature field, so the two
 * always agree. sig may be empty (sig_len 0) to get a parseable placeholder.
 */
pt_err pt_der_cert_assemble(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig, size_t sig_len,
                            uint8_t **cert, size_t *cert_len);

/*
 * Parse a DER TBSCertificate into an X509 object (with an empty signature)
 * so that its fields can be inspected with OpenSSL's getters.
 */
pt_err pt_der_tbs_to_x509(const uint8_t *tbs, size_t tbs_len, X509 **out);

typedef enum pt_der_key_type {
    PT_DER_KEY_OTHER = 0,
    PT_DER_KEY_RSA,
    PT_DER_KEY_EC,
} pt_der_key_type;

/*
 * Check that der is exactly one Certificate ::= SEQUENCE { TBSCertificate,
 * AlgorithmIdentifier, BIT STRING } whose TBS has the fields of RFC 5280
 * §4.1 in order, and say which kind of key its subjectPublicKeyInfo holds.
 * A structural check only (microseconds, against d2i_X509's ~100 µs in
 * OpenSSL 3.0): signatures, times and key values are not decoded.
 */
pt_err pt_der_cert_check(const uint8_t *der, size_t len, pt_der_key_type *key);

/*
 * Sign a DER TBSCertificate with a local key and return the certificate.
 * For tests and simulators only: CA keys sign through hsmd.
 */
pt_err pt_der_tbs_sign_local(const uint8_t *tbs, size_t tbs_len, EVP_PKEY *key, const EVP_MD *md,
                             X509 **out);

/*
 * r || s, two halves of equal length (PKCS#11 ECDSA output, and the raw form
 * some phones may send), as a DER Ecdsa-Sig-Value. Free *out with OPENSSL_free.
 */
pt_err pt_der_ecdsa_sig_from_raw(const uint8_t *raw, size_t raw_len, uint8_t **out,
                                 size_t *out_len);

#endif
