/*
 * The certificate-derived values of CTL/ITL files (spec/tlv-files.md §7.4):
 * names as text, serial numbers, public keys and certificate signatures.
 * The header's SIGNER_* values use the same encodings (§5.4).
 *
 * Every function sets its outputs to NULL/0 on entry and returns a new buffer
 * to be freed with OPENSSL_free.
 */
#ifndef TLV_ENCODE_H
#define TLV_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pt_error.h"

/*
 * §7.4.1: "TYPE=value" pairs in the order they are encoded (first RDN first,
 * multi-valued RDNs flattened), joined with ','. Short names only for CN, L,
 * ST, O, OU, C, STREET, DC and UID, dotted OIDs otherwise; values escaped as
 * RFC 4514 §2.4, never in #hex form. *out is NUL-terminated; the element
 * stores it with that NUL. PT_ERR_UNSUPPORTED for a value that is not a
 * character string, PT_ERR_LIMIT when the text would not fit an element.
 */
pt_err tlv_name_render(const X509_NAME *name, char **out);

/*
 * §7.4.2: the serial as an unsigned big-endian integer in the fewest bytes,
 * without the leading 0x00 DER adds when the top bit is set (zero is one 0x00
 * byte). Negative serials are refused (PT_ERR_UNSUPPORTED).
 */
pt_err tlv_serial_encode(const ASN1_INTEGER *serial, uint8_t **out, size_t *len);

/*
 * §7.4.3: RSA as DER RSAPublicKey (PKCS#1); EC as the uncompressed point
 * 04 || X || Y with coordinates padded to the field size, whatever form the
 * certificate used. Other key types: PT_ERR_UNSUPPORTED.
 */
pt_err tlv_public_key_encode(EVP_PKEY *pkey, uint8_t **out, size_t *len);

/*
 * The same bytes for the key of certificate x, copied from its
 * subjectPublicKey when they are already in the §7.4.3 form (an RSA key's
 * DER RSAPublicKey; an EC key's uncompressed point), which spares OpenSSL
 * 3.0's encoder (~60 µs a key); otherwise as tlv_public_key_encode.
 */
pt_err tlv_cert_public_key_encode(X509 *x, uint8_t **out, size_t *len);

/*
 * §7.4.4: the certificate's signatureValue BIT STRING without its
 * unused-bits octet (the RSA signature, or the DER Ecdsa-Sig-Value).
 */
pt_err tlv_cert_signature(const X509 *x, uint8_t **out, size_t *len);

#endif
