#include "ctlbuild.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cert.h"
#include "cli.h"
#include "log.h"
#include "output.h"

void ctl_records_init(ctl_records *r)
{
    memset(r, 0, sizeof *r);
}

void ctl_records_free(ctl_records *r)
{
    for (size_t i = 0; i < r->n; i++) {
        X509_free(r->v[i].cert);
        OPENSSL_free(r->dns[i]);
    }
    OPENSSL_free(r->v);
    OPENSSL_free(r->dns);
    ctl_records_init(r);
}

pt_err ctl_records_add(ctl_records *r, uint16_t role, X509 *cert, const char *dns, bool has_ipv4,
                       const uint8_t ipv4[4])
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        tlv_build_record *v = OPENSSL_realloc(r->v, cap * sizeof *v);
        if (v == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
        r->v = v;
        char **d = OPENSSL_realloc(r->dns, cap * sizeof *d);
        if (d == NULL)
            return pt_fail(PT_ERR_NOMEM, "out of memory");
        r->dns = d;
        r->cap = cap;
    }
    char *copy = NULL;
    if (dns != NULL && (copy = OPENSSL_strdup(dns)) == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    tlv_build_record *rec = &r->v[r->n];
    memset(rec, 0, sizeof *rec);
    X509_up_ref(cert);
    rec->role = role;
    rec->cert = cert;
    rec->dns_name = copy;
    rec->has_ipv4 = has_ipv4;
    if (has_ipv4)
        memcpy(rec->ipv4, ipv4, 4);
    r->dns[r->n] = copy;
    r->n++;
    return PT_OK;
}

void ctl_records_remove(ctl_records *r, size_t i)
{
    if (i >= r->n)
        return;
    X509_free(r->v[i].cert);
    OPENSSL_free(r->dns[i]);
    memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof r->v[0]);
    memmove(&r->dns[i], &r->dns[i + 1], (r->n - i - 1) * sizeof r->dns[0]);
    r->n--;
}

size_t ctl_records_count_role(const ctl_records *r, uint16_t role)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->v[i].role == role;
    return n;
}

long ctl_records_find(const ctl_records *r, uint16_t role, X509 *cert)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].role == role && ASN1_INTEGER_cmp(X509_get0_serialNumber(r->v[i].cert),
                                                     X509_get0_serialNumber(cert)) == 0)
            return (long)i;
    return -1;
}

const char *ctl_role_text(uint16_t role, char buf[16])
{
    const char *name = tlv_role_name(role);
    if (name != NULL)
        return name;
    snprintf(buf, 16, "role %u", (unsigned)role);
    return buf;
}

int ctl_cert_opt_add(ctl_cert_opt *opts, size_t *n, size_t max, uint16_t role, const char *option,
                     const char *text)
{
    if (*n >= max)
        return pt_cli_usage_error("too many certificates (at most %zu)", max);
    ctl_cert_opt *c = &opts[*n];
    if (ctl_cert_arg_parse(text, &c->arg) != PT_OK)
        return pt_cli_usage_error("%s: %s", option, pt_err_message());
    c->role = role;
    c->option = option;
    (*n)++;
    return PT_EXIT_OK;
}

void ctl_cert_opts_free(ctl_cert_opt *opts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ctl_cert_arg_free(&opts[i].arg);
}

pt_err ctl_cert_opts_load(const ctl_cert_opt *opts, size_t n, int timeout_ms, ctl_records *r)
{
    for (size_t i = 0; i < n; i++) {
        const ctl_cert_opt *c = &opts[i];
        X509 *x = NULL;
        pt_err rc = ctl_cert_arg_load(&c->arg, timeout_ms, &x);
        if (rc != PT_OK)
            return pt_err_context(rc, "%s", c->option);
        char rb[16];
        if (ctl_records_find(r, c->role, x) >= 0) {
            pt_cert_info ci;
            bool have = pt_cert_info_get(x, &ci) == PT_OK;
            rc = pt_fail(PT_ERR_EXISTS,
                         "%s: entry already exists: a %s record with serial %s (%s) is already "
                         "in the file; give each certificate once",
                         c->option, ctl_role_text(c->role, rb), have ? ci.serial : "?",
                         have ? ci.subject : "?");
            if (have)
                pt_cert_info_free(&ci);
        } else {
            rc = ctl_records_add(r, c->role, x, c->arg.dns_name, c->arg.has_ipv4, c->arg.ipv4);
        }
        X509_free(x);
        if (rc != PT_OK)
            return rc;
    }
    return PT_OK;
}

bool ctl_digest_parse(const char *text, uint8_t *out)
{
    if (strcasecmp(text, "sha1") == 0 || strcasecmp(text, "sha-1") == 0)
        *out = TLV_DIGEST_SHA1;
    else if (strcasecmp(text, "sha512") == 0 || strcasecmp(text, "sha-512") == 0)
        *out = TLV_DIGEST_SHA512;
    else
        return false;
    return true;
}

bool ctl_mode_parse(const char *text, bool *nonsecure)
{
    if (strcmp(text, "mixed") == 0)
        *nonsecure = false;
    else if (strcmp(text, "nonsecure") == 0 || strcmp(text, "non-secure") == 0)
        *nonsecure = true;
    else
        return false;
    return true;
}

bool ctl_timestamp_parse(const char *text, uint32_t *out)
{
    long v = 0;
    if (!pt_cli_parse_long(text, 0, 0xffffffffL, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static pt_err limits_check(const ctl_build_job *job)
{
    if (!job->itl && job->records->n > TLV_CTL_MAX_RECORDS)
        return pt_fail(PT_ERR_LIMIT,
                       "Total number of CTL Records has exceeded the Maximum: %zu records, at "
                       "most %d are allowed; remove records (or leave out servers phones do not "
                       "need) and try again",
                       job->records->n, TLV_CTL_MAX_RECORDS);
    return PT_OK;
}

pt_err ctl_build_sign_write(const ctl_build_job *job, const ctl_common_opts *o)
{
    const char *base = NULL;
    pt_err rc = ctl_output_check(job->outputs, job->n_outputs, &base);
    if (rc == PT_OK)
        rc = limits_check(job);
    if (rc != PT_OK)
        return rc;
    bool over = false;
    tlv_build_params p;
    memset(&p, 0, sizeof p);
    p.signer_cert = ctl_signer_cert(job->signer);
    p.digest = job->digest;
    p.filename = base;
    p.timestamp = job->has_timestamp ? job->timestamp : (uint32_t)time(NULL);
    p.nonsecure = job->nonsecure;
    p.records = job->records->v;
    p.n_records = job->records->n;
    if (job->itl) {
        p.warn_bytes = TLV_ITL_WARN_BYTES;
        p.over_warn_bytes = &over;
    } else {
        p.max_records = TLV_CTL_MAX_RECORDS;
        p.max_bytes = TLV_CTL_MAX_BYTES;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = tlv_build_unsigned(&p, &buf, &len);
    if (rc == PT_ERR_LIMIT)
        return pt_err_context(rc, "the file cannot be built (remove records and try again)");
    if (rc != PT_OK)
        return pt_err_context(rc, "the file cannot be built");
    if (over)
        pt_log_warn("the ITL is %zu bytes, over %d KB (more than about 40 certificates): phones "
                    "fail to load such an ITL and stop registering; list fewer TVS/CAPF "
                    "certificates",
                    len, TLV_ITL_WARN_BYTES / 1024);
    printf("%s: %zu records, %zu bytes, %s, signed by %s\n", p.filename, p.n_records, len,
           tlv_digest_name(p.digest), ctl_signer_describe(job->signer));
    fflush(stdout);
    rc = ctl_signer_sign(job->signer, o, buf, len);
    if (rc != PT_OK)
        rc = pt_err_context(rc, "nothing was written");
    if (rc == PT_OK)
        rc = ctl_output_write(job->outputs, job->n_outputs, buf, len, stdout);
    OPENSSL_free(buf);
    return rc;
}
