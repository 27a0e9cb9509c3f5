/*
 * ctlclient show FILE [--json] and ctlclient verify FILE [--previous OLD].
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cert.h"
#include "cli.h"
#include "cmd.h"
#include "fileio.h"
#include "hex.h"
#include "log.h"
#include "tlv.h"

static void show_usage(FILE *out)
{
    fprintf(out, "Usage: ctlclient show FILE [--json]\n"
                 "\n"
                 "Show every header field and record of a CTLFile.tlv or ITLFile.tlv: version,\n"
                 "signer, digest, time stamp, file name, which record signed the file and whether\n"
                 "the signature is valid; for each record its role, subject, issuer, serial,\n"
                 "SHA-256 fingerprint, validity, DNS name and IP address.\n"
                 "\n"
                 "  --json    one JSON object: version, signer, digest, timestamp, filename,\n"
                 "            signature_valid, records (role, subject, issuer, serial, sha256,\n"
                 "            dns_name, ip_address, ...)\n"
                 "\n"
                 "Records without a certificate (a CTL written in non-secure mode) show none.\n"
                 "Exit status: 0 shown (whatever the signature), 1 unreadable or malformed file,\n"
                 "2 usage error.\n");
}

static void verify_usage(FILE *out)
{
    fprintf(out,
            "Usage: ctlclient verify FILE [--previous OLD]\n"
            "\n"
            "Check a CTLFile.tlv or ITLFile.tlv signature, as a phone does: the signer must be\n"
            "a SAST record of the file and the signature must be valid. With --previous, the\n"
            "signer must also be a SAST record of OLD, holding the same certificate: a phone\n"
            "that has OLD accepts FILE only then.\n"
            "\n"
            "Exit status: 0 valid, 1 not valid or unreadable (with a one-line reason),\n"
            "2 usage error.\n");
}

static void print_warnings(const char *path, const tlv_file *f)
{
    for (size_t i = 0; i < f->n_warnings; i++)
        pt_log_warn("%s: %s", path, f->warnings[i]);
}

static char *hex_or_null(const uint8_t *p, size_t n)
{
    return p != NULL && n > 0 ? pt_hex_encode(p, n, 0) : NULL;
}

static void ip_text(const tlv_record *r, char *buf, size_t len)
{
    buf[0] = '\0';
    if (r->ip_address == NULL || r->ip_address_len == 0)
        return;
    if (r->ip_address_len == 4) {
        snprintf(buf, len, "%u.%u.%u.%u", r->ip_address[0], r->ip_address[1], r->ip_address[2],
                 r->ip_address[3]);
        return;
    }
    char *h = pt_hex_encode(r->ip_address, r->ip_address_len, ':');
    snprintf(buf, len, "%s", h != NULL ? h : "?");
    OPENSSL_free(h);
}

static const char *role_text(const tlv_record *r, char buf[16])
{
    if (!r->has_role)
        return "none";
    const char *n = tlv_role_name(r->role);
    if (n != NULL)
        return n;
    snprintf(buf, 16, "%u", (unsigned)r->role);
    return buf;
}

/* The record's certificate summary, when it carries a certificate that parses. */
static bool record_cert_info(const tlv_record *r, pt_cert_info *ci)
{
    X509 *x = NULL;
    if (r->certificate == NULL || pt_cert_parse(r->certificate, r->certificate_len, &x) != PT_OK)
        return false;
    bool ok = pt_cert_info_get(x, ci) == PT_OK;
    X509_free(x);
    return ok;
}

static long signer_index(const tlv_file *f, const tlv_record *signer)
{
    return signer != NULL ? (long)(signer - f->records) : -1;
}

static json_object *jstr(const char *s)
{
    return s != NULL ? json_object_new_string(s) : NULL;
}

static json_object *record_json(const tlv_file *f, size_t i, const tlv_record *signer)
{
    const tlv_record *r = &f->records[i];
    json_object *o = json_object_new_object();
    char rb[16], ip[64];
    pt_cert_info ci;
    bool have = record_cert_info(r, &ci);
    char *serial = hex_or_null(r->serial, r->serial_len);
    ip_text(r, ip, sizeof ip);
    json_object_object_add(o, "index", json_object_new_int64((int64_t)i + 1));
    json_object_object_add(o, "role", json_object_new_string(role_text(r, rb)));
    json_object_object_add(o, "role_code", r->has_role ? json_object_new_int(r->role) : NULL);
    json_object_object_add(o, "subject", jstr(r->subject));
    json_object_object_add(o, "issuer", jstr(r->issuer));
    json_object_object_add(o, "serial", jstr(serial));
    json_object_object_add(o, "sha256", have ? jstr(ci.sha256) : NULL);
    json_object_object_add(o, "dns_name", jstr(r->dns_name));
    json_object_object_add(o, "ip_address", ip[0] ? jstr(ip) : NULL);
    json_object_object_add(o, "has_certificate", json_object_new_boolean(r->certificate != NULL));
    json_object_object_add(o, "key", have ? jstr(ci.key) : NULL);
    json_object_object_add(o, "not_before", have ? jstr(ci.not_before) : NULL);
    json_object_object_add(o, "not_after", have ? jstr(ci.not_after) : NULL);
    json_object_object_add(o, "signer", json_object_new_boolean(r == signer));
    OPENSSL_free(serial);
    if (have)
        pt_cert_info_free(&ci);
    return o;
}

static void show_json(const char *path, const tlv_file *f, const tlv_verify_result *res,
                      const char *why)
{
    json_object *o = json_object_new_object();
    char v[16], ts[21];
    snprintf(v, sizeof v, "%u.%u", f->version_major, f->version_minor);
    char *sserial = hex_or_null(f->signer_serial, f->signer_serial_len);
    json_object *signer = json_object_new_object();
    long si = signer_index(f, res->signer);
    json_object_object_add(signer, "name", jstr(f->signer_name));
    json_object_object_add(signer, "issuer", jstr(f->signer_issuer));
    json_object_object_add(signer, "serial", jstr(sserial));
    json_object_object_add(signer, "record", si >= 0 ? json_object_new_int64(si + 1) : NULL);
    json_object_object_add(o, "file", json_object_new_string(path));
    json_object_object_add(o, "size", json_object_new_int64((int64_t)f->raw_len));
    json_object_object_add(o, "version", json_object_new_string(v));
    json_object_object_add(o, "header_length", json_object_new_int(f->header_length));
    if (f->has_signer_version) {
        snprintf(v, sizeof v, "%u.%u", f->signer_version_major, f->signer_version_minor);
        json_object_object_add(o, "signer_version", json_object_new_string(v));
    }
    json_object_object_add(o, "signer", signer);
    json_object_object_add(o, "digest", jstr(tlv_digest_name(f->digest)));
    json_object_object_add(o, "signature_bits",
                           json_object_new_int64((int64_t)f->signature_len * 8));
    json_object_object_add(o, "timestamp",
                           f->has_timestamp ? json_object_new_int64(f->timestamp) : NULL);
    if (f->has_timestamp) {
        pt_time_iso8601((time_t)f->timestamp, ts);
        json_object_object_add(o, "timestamp_utc", json_object_new_string(ts));
    }
    json_object_object_add(o, "filename", jstr(f->filename));
    json_object_object_add(o, "signature_valid", json_object_new_boolean(res->signature_valid));
    json_object_object_add(o, "signature_error", res->signature_valid ? NULL : jstr(why));
    json_object *recs = json_object_new_array();
    for (size_t i = 0; i < f->n_records; i++)
        json_object_array_add(recs, record_json(f, i, res->signer));
    json_object_object_add(o, "records", recs);
    json_object *warn = json_object_new_array();
    for (size_t i = 0; i < f->n_warnings; i++)
        json_object_array_add(warn, json_object_new_string(f->warnings[i]));
    json_object_object_add(o, "warnings", warn);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    OPENSSL_free(sserial);
}

static void show_record_text(const tlv_file *f, size_t i, const tlv_record *signer)
{
    const tlv_record *r = &f->records[i];
    char rb[16], ip[64];
    pt_cert_info ci;
    bool have = record_cert_info(r, &ci);
    char *serial = hex_or_null(r->serial, r->serial_len);
    ip_text(r, ip, sizeof ip);
    printf("\nRecord %zu: %s%s\n", i + 1, role_text(r, rb),
           r == signer ? "  (signed this file)" : "");
    printf("  subject:     %s\n", r->subject != NULL ? r->subject : "(none)");
    printf("  issuer:      %s\n", r->issuer != NULL ? r->issuer : "(none)");
    printf("  serial:      %s\n", serial != NULL ? serial : "(none)");
    if (have) {
        printf("  SHA-256:     %s\n", ci.sha256);
        printf("  key:         %s\n", ci.key);
        printf("  valid:       %s to %s%s\n", ci.not_before, ci.not_after,
               ci.not_after_t < time(NULL) ? " (EXPIRED)" : "");
    } else {
        printf("  certificate: none%s\n", r->certificate == NULL ? " (non-secure mode)" : "");
    }
    if (r->dns_name != NULL)
        printf("  DNS name:    %s\n", r->dns_name);
    if (ip[0])
        printf("  IP address:  %s\n", ip);
    OPENSSL_free(serial);
    if (have)
        pt_cert_info_free(&ci);
}

static void show_text(const char *path, const tlv_file *f, const tlv_verify_result *res,
                      const char *why)
{
    char ts[21];
    char *sserial = hex_or_null(f->signer_serial, f->signer_serial_len);
    long si = signer_index(f, res->signer);
    printf("%s (%zu bytes)\n", path, f->raw_len);
    printf("  version:         %u.%u\n", f->version_major, f->version_minor);
    printf("  header length:   %u\n", f->header_length);
    if (f->has_signer_version)
        printf("  signer version:  %u.%u\n", f->signer_version_major, f->signer_version_minor);
    printf("  signer:          %s\n", f->signer_name != NULL ? f->signer_name : "(none)");
    printf("  signer issuer:   %s\n", f->signer_issuer != NULL ? f->signer_issuer : "(none)");
    printf("  signer serial:   %s\n", sserial != NULL ? sserial : "(none)");
    printf("  digest:          %s\n", tlv_digest_name(f->digest));
    printf("  signature:       RSA PKCS#1 v1.5, %zu bits\n", f->signature_len * 8);
    printf("  file name:       %s\n", f->filename != NULL ? f->filename : "(none)");
    if (f->has_timestamp) {
        pt_time_iso8601((time_t)f->timestamp, ts);
        printf("  time stamp:      %s (%u)\n", ts, f->timestamp);
    }
    if (si >= 0)
        printf("  signed by:       record %ld (SAST)\n", si + 1);
    else
        printf("  signed by:       no SAST record has the signer's serial\n");
    printf("  signature valid: %s\n", res->signature_valid ? "yes" : why);
    printf("  records:         %zu\n", f->n_records);
    for (size_t i = 0; i < f->n_records; i++)
        show_record_text(f, i, res->signer);
    OPENSSL_free(sserial);
}

int ctl_cmd_show(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, CTL_OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            show_usage(stdout);
            return PT_EXIT_OK;
        }
        if (c != CTL_OPT_JSON)
            return pt_cli_usage_error("unknown option for 'show'");
        json = true;
    }
    if (argc - optind != 1)
        return pt_cli_usage_error("usage: ctlclient show FILE [--json]");
    const char *path = argv[optind];
    tlv_file *f = NULL;
    pt_err rc = tlv_file_load(path, &f);
    if (rc != PT_OK)
        return pt_cli_report(rc, "cannot show");
    print_warnings(path, f);
    tlv_verify_result res;
    char why[512] = "";
    if (tlv_file_verify(f, NULL, &res) != PT_OK)
        snprintf(why, sizeof why, "NO: %s", pt_err_message());
    if (json)
        show_json(path, f, &res, why[0] ? why + 4 : NULL);
    else
        show_text(path, f, &res, why);
    tlv_file_free(f);
    return PT_EXIT_OK;
}

int ctl_cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"previous", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *previous = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            verify_usage(stdout);
            return PT_EXIT_OK;
        }
        if (c != 'p')
            return pt_cli_usage_error("unknown option for 'verify'");
        previous = optarg;
    }
    if (argc - optind != 1)
        return pt_cli_usage_error("usage: ctlclient verify FILE [--previous OLD]");
    const char *path = argv[optind];
    tlv_file *f = NULL, *old = NULL;
    pt_err rc = tlv_file_load(path, &f);
    if (rc == PT_OK && previous != NULL)
        rc = tlv_file_load(previous, &old);
    if (rc != PT_OK) {
        tlv_file_free(f);
        return pt_cli_report(rc, "not verified");
    }
    print_warnings(path, f);
    tlv_verify_result res;
    rc = tlv_file_verify(f, old, &res);
    if (rc == PT_OK) {
        printf("%s: signature valid (%s), signed by %s", path, tlv_digest_name(f->digest),
               res.signer->subject != NULL ? res.signer->subject : "(no subject)");
        if (old != NULL)
            printf(", a security token listed in %s", previous);
        printf("\n");
    } else {
        fprintf(stderr, "%s: %s: %s\n", pt_log_progname(), path, pt_err_message());
    }
    tlv_file_free(f);
    tlv_file_free(old);
    return rc == PT_OK ? PT_EXIT_OK : PT_EXIT_FAIL;
}
