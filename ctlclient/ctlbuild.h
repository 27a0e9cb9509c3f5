/*
 * What create, update and itl build share: the list of records being put
 * together, the options that shape a file (digest, mode, timestamp), and the
 * last steps (build, sign, write to every location).
 */
#ifndef CTL_CTLBUILD_H
#define CTL_CTLBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "certarg.h"
#include "cmd.h"
#include "pt_error.h"
#include "signer.h"
#include "tlv.h"

/* Records in file order; each owns a reference to its certificate and a copy of its DNS name. */
typedef struct ctl_records {
    tlv_build_record *v;
    char **dns; /* dns[i] is v[i].dns_name, owned */
    size_t n, cap;
} ctl_records;

void ctl_records_init(ctl_records *r);
void ctl_records_free(ctl_records *r);
/* Append a record; cert gains a reference, dns (may be NULL) is copied. */
pt_err ctl_records_add(ctl_records *r, uint16_t role, X509 *cert, const char *dns, bool has_ipv4,
                       const uint8_t ipv4[4]);
void ctl_records_remove(ctl_records *r, size_t i);
size_t ctl_records_count_role(const ctl_records *r, uint16_t role);
/* Index of the record with this role whose certificate has cert's serial number; -1 if none. */
long ctl_records_find(const ctl_records *r, uint16_t role, X509 *cert);
/* "CCM+TFTP" or the number, for messages. */
const char *ctl_role_text(uint16_t role, char buf[16]);

/* A CERT option waiting to be loaded: its role and parsed argument. */
typedef struct ctl_cert_opt {
    uint16_t role;
    const char *option; /* "--capf", for messages */
    ctl_cert_arg arg;
} ctl_cert_opt;

/* Parse one CERT option's argument into opts (at most max). Usage errors print and return 2. */
int ctl_cert_opt_add(ctl_cert_opt *opts, size_t *n, size_t max, uint16_t role, const char *option,
                     const char *text);
void ctl_cert_opts_free(ctl_cert_opt *opts, size_t n);
/*
 * Load every CERT option's certificate (files, or TLS fetches with their
 * fingerprint check) and append the records. A certificate already listed
 * with the same role is refused ("entry already exists").
 */
pt_err ctl_cert_opts_load(const ctl_cert_opt *opts, size_t n, int timeout_ms, ctl_records *r);

/* --digest sha1|sha512; --mode mixed|nonsecure; --timestamp UNIX. false on bad text. */
bool ctl_digest_parse(const char *text, uint8_t *out);
bool ctl_mode_parse(const char *text, bool *nonsecure);
bool ctl_timestamp_parse(const char *text, uint32_t *out);

typedef struct ctl_build_job {
    const ctl_records *records;
    ctl_signer *signer;
    uint8_t digest;
    bool nonsecure;
    bool itl;           /* ITL: warn over 64 KB; CTL: at most 100 records and 75 KB */
    bool has_timestamp; /* else the current time */
    uint32_t timestamp;
    const char *const *outputs;
    size_t n_outputs;
} ctl_build_job;

/*
 * Build the file, sign it (a token asks for its PIN only now), and write it
 * to every location. Nothing is written anywhere unless the signature was
 * made and checked. Prints a summary and one line per location on stdout.
 */
pt_err ctl_build_sign_write(const ctl_build_job *job, const ctl_common_opts *o);

#endif
