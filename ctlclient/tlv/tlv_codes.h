/*
 * Numbers of the CTL/ITL TLV format (spec/tlv-files.md): element tags, role
 * codes, digest and modulus codes, and the size limits phones impose.
 */
#ifndef TLV_CODES_H
#define TLV_CODES_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Role codes of a record (§7.3). Codes not listed here are kept and shown numerically. */
enum {
    TLV_ROLE_SAST = 0,
    TLV_ROLE_CCM = 1,
    TLV_ROLE_CCM_TFTP = 2,
    TLV_ROLE_TFTP = 3,
    TLV_ROLE_CAPF = 4,
    TLV_ROLE_SRST = 5,
    TLV_ROLE_APP_SERVER = 7,
    TLV_ROLE_TVS = 21
};

/* DIGEST_ALGORITHM codes (§5.4). Only 1 and 3 are written or accepted. */
enum { TLV_DIGEST_SHA1 = 1, TLV_DIGEST_SHA256 = 2, TLV_DIGEST_SHA512 = 3 };

/* Header tags (§5.1). */
enum {
    TLV_HDR_VERSION = 1,
    TLV_HDR_HEADER_LENGTH = 2,
    TLV_HDR_SIGNER_INFO = 3,
    TLV_HDR_SIGNER_NAME = 4,
    TLV_HDR_SIGNER_SERIAL = 5,
    TLV_HDR_SIGNER_ISSUER = 6,
    TLV_HDR_SIGNATURE_INFO = 7,
    TLV_HDR_DIGEST_ALGORITHM = 8,
    TLV_HDR_SIGNATURE_ALGORITHM_INFO = 9,
    TLV_HDR_SIGNATURE_ALGORITHM = 10,
    TLV_HDR_SIGNATURE_MODULUS = 11,
    TLV_HDR_SIGNATURE = 12,
    TLV_HDR_PADDING = 13,
    TLV_HDR_FILENAME = 14,
    TLV_HDR_TIMESTAMP = 15,
    TLV_HDR_SIGNER_VERSION = 28
};

/* Record tags (§7.2). */
enum {
    TLV_REC_RECORD_LENGTH = 1,
    TLV_REC_DNS_NAME = 2,
    TLV_REC_SUBJECT_NAME = 3,
    TLV_REC_ROLE = 4,
    TLV_REC_ISSUER_NAME = 5,
    TLV_REC_SERIAL_NUMBER = 6,
    TLV_REC_PUBLIC_KEY = 7,
    TLV_REC_SIGNATURE = 8,
    TLV_REC_CERTIFICATE = 9,
    TLV_REC_IP_ADDRESS = 10,
    TLV_REC_CERTIFICATE_HASH = 11,
    TLV_REC_HASH_ALGORITHM = 12
};

/* What phones accept in a CTL (design.md), and the ITL size that breaks registration. */
#define TLV_CTL_MAX_RECORDS 100
#define TLV_CTL_MAX_BYTES   (75 * 1024)
#define TLV_ITL_WARN_BYTES  (64 * 1024)

/* Every length in the format is a u16 (§10). */
#define TLV_MAX_ELEMENT 65535u

/* "SAST", "CCM+TFTP", ...; NULL for a code with no known name. */
const char *tlv_role_name(uint16_t role);
/* The code for a role name (case-insensitive, as tlv_role_name writes it); -1 if unknown. */
int tlv_role_parse(const char *name);

/* "SHA-1", "SHA-256", "SHA-512"; NULL for other codes. */
const char *tlv_digest_name(uint8_t code);
/* The digest for a code (including 2, which readers refuse); NULL for other codes. */
const EVP_MD *tlv_digest_md(uint8_t code);

/* SIGNATURE_MODULUS code for a signature of k bytes (64/128/256/512), -1 for other sizes. */
int tlv_modulus_code(size_t k);
/* Signature length k for a modulus code 0..3, 0 for other codes. */
size_t tlv_modulus_bytes(uint8_t code);

#endif
