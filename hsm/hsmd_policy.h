/*
 * What hsmd agrees to sign: the checks ("lint") a request passes before any
 * key is used, and the checks of the result before it is returned. Nothing
 * here touches the HSM, so every rule is tested with local keys.
 *
 * issue: a DER TBSCertificate for an end-entity certificate issued by the
 * key's certificate (hsm/README.md lists the rules). sign-tlv: a CTL/ITL file
 * (spec/tlv-files.md) with a zero-filled signature that names the key's
 * certificate as its signer.
 *
 * Refusals are PT_ERR_REFUSED (hsmd answers refused-by-policy) and input that
 * is not what the operation takes at all is PT_ERR_FORMAT (bad-request); the
 * reason is in pt_err_message().
 */
#ifndef HSMD_POLICY_H
#define HSMD_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pt_error.h"
#include "tlv_file.h"

/* A certificate may start at most this long before the request (clock skew, time zones). */
#define HSMD_MAX_BACKDATE_SECONDS 86400

typedef struct hsmd_issue_policy {
    X509 *ca_cert;          /* the key's certificate (borrowed) */
    int key_type;           /* EVP_PKEY_RSA or EVP_PKEY_EC: the signing key's type */
    unsigned digests;       /* HSMD_DIGEST_* the key may sign with */
    long max_validity_days; /* notAfter - notBefore at most this */
} hsmd_issue_policy;

/*
 * The digest for an EVP_MD type (NID_sha256, ...), fetched once from the
 * default provider and kept for the life of the process.
 */
const EVP_MD *hsmd_policy_md(int md_nid);

/* What a TBSCertificate that passed says, for signing and for the audit record. */
typedef struct hsmd_issue_info {
    const EVP_MD *md;  /* the digest its signature algorithm names */
    char serial[48];   /* upper-case hex */
    char subject[200]; /* one line, "/CN=.../O=..." (cut when longer) */
} hsmd_issue_info;

/*
 * Check a TBSCertificate against the policy at time now; on PT_OK, info says
 * what it is. The TBS is parsed with a template of its own that keeps the
 * subject public key as bytes: OpenSSL 3.0 decodes the key of every X509 it
 * parses, through a decoder set up afresh each time, and that cost more than
 * the rest of a request.
 */
pt_err hsmd_issue_check(const hsmd_issue_policy *p, const uint8_t *tbs, size_t len, time_t now,
                        hsmd_issue_info *info);

/*
 * Check a signature made by the key over tbs with md against p->ca_cert's
 * public key (PT_ERR_VERIFY when it does not verify) and put them together
 * into a certificate: DER in *cert (free with OPENSSL_free).
 */
pt_err hsmd_issue_finish(const hsmd_issue_policy *p, const uint8_t *tbs, size_t tbs_len,
                         const EVP_MD *md, const uint8_t *sig, size_t sig_len, uint8_t **cert,
                         size_t *cert_len);

/* The key's certificate as a CTL/ITL names it, computed once. */
typedef struct hsmd_tlv_policy {
    X509 *signer_cert; /* borrowed */
    int key_bits;      /* RSA modulus size of the signing key */
    unsigned digests;  /* HSMD_DIGEST_SHA1 and/or HSMD_DIGEST_SHA512 */
    char *name, *issuer;
    uint8_t *serial;
    size_t serial_len;
    uint8_t *cert_der;
    size_t cert_der_len;
} hsmd_tlv_policy;

/* Fill p from the key's certificate. PT_ERR_UNSUPPORTED for a key that cannot sign CTL/ITL files.
 */
pt_err hsmd_tlv_policy_init(hsmd_tlv_policy *p, X509 *signer_cert, int key_type, int key_bits,
                            unsigned digests);
void hsmd_tlv_policy_clear(hsmd_tlv_policy *p);

/* Check a file to sign; on PT_OK *parsed is the parsed file (tlv_file_free). */
pt_err hsmd_tlv_check(const hsmd_tlv_policy *p, const uint8_t *file, size_t len, tlv_file **parsed);

/*
 * Put a PKCS#1 v1.5 signature (at most k bytes, left-padded to k) into a copy
 * of the checked file and verify the result as a phone would (tlv_file_verify
 * against the signer record's certificate). The signed file is in *out (free
 * with OPENSSL_free); PT_ERR_VERIFY when the signature does not verify.
 */
pt_err hsmd_tlv_finish(const tlv_file *parsed, const uint8_t *sig, size_t sig_len, uint8_t **out,
                       size_t *out_len);

#endif
