/*
 * Writing CTL/ITL files byte-exactly as spec/tlv-files.md §5.2, §6.3 and §7,
 * and signing them through a callback (a token, hsmd, or a local key).
 */
#ifndef TLV_BUILD_H
#define TLV_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pt_error.h"
#include "tlv_codes.h"

typedef struct tlv_build_record {
    uint16_t role;
    X509 *cert;           /* required; RSA or EC key */
    const char *dns_name; /* optional, written as DNS_NAME when not NULL */
    bool has_ipv4;
    uint8_t ipv4[4]; /* optional IP_ADDRESS (4 bytes, network order; TLV-U9) */
} tlv_build_record;

typedef struct tlv_build_params {
    X509 *signer_cert;            /* RSA 512/1024/2048/4096; must also be a SAST record */
    uint8_t digest;               /* TLV_DIGEST_SHA1 or TLV_DIGEST_SHA512 */
    const char *filename;         /* "CTLFile.tlv" / "ITLFile.tlv" */
    uint32_t timestamp;           /* Unix seconds, UTC */
    uint8_t signer_version_minor; /* 0 (default) or 1 */
    bool nonsecure; /* records other than SAST carry no PUBLIC_KEY, cert SIGNATURE or CERTIFICATE */
    const tlv_build_record *records;
    size_t n_records;
    size_t max_records, max_bytes; /* 0 = no limit; CTL: TLV_CTL_MAX_RECORDS / TLV_CTL_MAX_BYTES */
    /*
     * Soft size limit (0 = none; ITL: TLV_ITL_WARN_BYTES). A larger file is still built;
     * *over_warn_bytes (when not NULL) is set to whether the file is larger, so the
     * caller can warn that phones may fail to register. tlv_file_parse notes the same.
     */
    size_t warn_bytes;
    bool *over_warn_bytes;
} tlv_build_params;

/*
 * Signs data (the covered bytes) with RSASSA-PKCS1-v1_5 and md. On entry *sig_len
 * is k, the size of sig; the callback writes the k-byte signature and sets
 * *sig_len = k (a shorter value is taken as a big-endian integer and left-padded).
 */
typedef pt_err (*tlv_sign_fn)(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len,
                              uint8_t *sig, size_t *sig_len);

/* A tlv_sign_fn for a key OpenSSL can use (a local key, or a token key from libp11):
   ctx is the EVP_PKEY *. */
pt_err tlv_sign_with_pkey(void *ctx, const EVP_MD *md, const uint8_t *data, size_t len,
                          uint8_t *sig, size_t *sig_len);

/*
 * The complete file with a zero-filled SIGNATURE element in place (what hsmd
 * receives). Header in exactly the §5.2 order; records in the order given, each
 * RECORD_LENGTH, SUBJECT_NAME, ISSUER_NAME, SERIAL_NUMBER, ROLE, PUBLIC_KEY,
 * SIGNATURE, CERTIFICATE, then DNS_NAME and IP_ADDRESS when given (after the
 * elements every writer emits, so readers that expect the current layout are
 * not disturbed). Refusals: PT_ERR_USAGE (missing or inconsistent
 * parameters, signer not listed as SAST), PT_ERR_UNSUPPORTED (signer key not
 * RSA 512/1024/2048/4096, record key neither RSA nor EC, digest other than 1
 * or 3, SHA-512 with a 512-bit key), PT_ERR_LIMIT (max_records, max_bytes, or a
 * length over 16 bits). Free *out with OPENSSL_free.
 */
pt_err tlv_build_unsigned(const tlv_build_params *p, uint8_t **out, size_t *len);

/*
 * Sign a file produced by tlv_build_unsigned (or any file tlv_file_parse
 * accepts) in place, then verify the result against the signer record's
 * certificate: a key that does not match it gives PT_ERR_VERIFY and leaves the
 * SIGNATURE bytes as they were.
 */
pt_err tlv_file_sign_in_place(uint8_t *buf, size_t len, tlv_sign_fn sign, void *ctx);

/* Both in one. */
pt_err tlv_build_signed(const tlv_build_params *p, tlv_sign_fn sign, void *ctx, uint8_t **out,
                        size_t *len);

#endif
