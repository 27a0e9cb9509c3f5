/*
 * Verifying a CTL/ITL file's signature (spec/tlv-files.md §6.4, §8), alone or
 * as a phone that holds a previous file sees an update.
 */
#ifndef TLV_VERIFY_H
#define TLV_VERIFY_H

#include <stdbool.h>

#include "pt_error.h"
#include "tlv_file.h"

typedef struct tlv_verify_result {
    const tlv_record *signer; /* in f; NULL when no SAST record has the signer serial */
    bool signature_valid;
    bool signer_in_previous; /* only meaningful when previous != NULL */
} tlv_verify_result;

/*
 * PT_OK only when the signature is valid: RSASSA-PKCS1-v1_5 with the file's
 * digest over tlv_file_covered_bytes(), checked with the key of the CERTIFICATE
 * in the signer record (§8; its serial must be SIGNER_SERIAL). With previous,
 * the signer must also be a SAST record of previous holding the same
 * certificate, byte for byte: a serial alone proves nothing, since whoever
 * makes a certificate chooses its serial.
 * Otherwise PT_ERR_VERIFY (or PT_ERR_FORMAT for an unusable signer record),
 * with a one-line reason in pt_err_message(). res is filled either way.
 */
pt_err tlv_file_verify(const tlv_file *f, const tlv_file *previous, tlv_verify_result *res);

#endif
