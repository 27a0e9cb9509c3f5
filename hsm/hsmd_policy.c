#include "hsmd_policy.h"

#include <pthread.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "der.h"
#include "hsmd_config.h"
#include "tlv_codes.h"
#include "tlv_encode.h"
#include "tlv_verify.h"

/* ---- issue: the TBSCertificate, parsed with the key kept as bytes ---- */

/* SubjectPublicKeyInfo, undecoded: OpenSSL's X509_PUBKEY decodes the key as it parses. */
typedef struct hsmd_spki_st {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *public_key;
} HSMD_SPKI;

/* RFC 5280 TBSCertificate. */
typedef struct hsmd_tbs_st {
    ASN1_INTEGER *version;
    ASN1_INTEGER *serial;
    X509_ALGOR *signature;
    X509_NAME *issuer;
    X509_VAL *validity;
    X509_NAME *subject;
    HSMD_SPKI *key;
    ASN1_BIT_STRING *issuer_uid;
    ASN1_BIT_STRING *subject_uid;
    STACK_OF(X509_EXTENSION) * extensions;
} HSMD_TBS;

ASN1_SEQUENCE(HSMD_SPKI) =
    {
        ASN1_SIMPLE(HSMD_SPKI, algor, X509_ALGOR),
        ASN1_SIMPLE(HSMD_SPKI, public_key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(HSMD_SPKI) // cppcheck-suppress unknownMacro

    ASN1_SEQUENCE(HSMD_TBS) =
        {
            ASN1_EXP_OPT(HSMD_TBS, version, ASN1_INTEGER, 0),
            ASN1_SIMPLE(HSMD_TBS, serial, ASN1_INTEGER),
            ASN1_SIMPLE(HSMD_TBS, signature, X509_ALGOR),
            ASN1_SIMPLE(HSMD_TBS, issuer, X509_NAME),
            ASN1_SIMPLE(HSMD_TBS, validity, X509_VAL),
            ASN1_SIMPLE(HSMD_TBS, subject, X509_NAME),
            ASN1_SIMPLE(HSMD_TBS, key, HSMD_SPKI),
            ASN1_IMP_OPT(HSMD_TBS, issuer_uid, ASN1_BIT_STRING, 1),
            ASN1_IMP_OPT(HSMD_TBS, subject_uid, ASN1_BIT_STRING, 2),
            ASN1_EXP_SEQUENCE_OF_OPT(HSMD_TBS, extensions, X509_EXTENSION, 3),
} static_ASN1_SEQUENCE_END(HSMD_TBS) // cppcheck-suppress unknownMacro

    static void tbs_free(HSMD_TBS * t)
{
    ASN1_item_free((ASN1_VALUE *)t, ASN1_ITEM_rptr(HSMD_TBS));
}

/* Parse, and insist on DER: the bytes must be exactly what the structure encodes to. */
static pt_err tbs_parse(const uint8_t *der, size_t len, HSMD_TBS **out)
{
    *out = NULL;
    if (len == 0 || len > PT_DER_CERT_MAX)
        return pt_fail(PT_ERR_FORMAT, "not a DER TBSCertificate: %zu bytes", len);
    const unsigned char *p = der;
    HSMD_TBS *t = (HSMD_TBS *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(HSMD_TBS));
    if (t == NULL) {
        ERR_clear_error();
        return pt_fail(PT_ERR_FORMAT, "not a DER TBSCertificate (it does not parse)");
    }
    if (p != der + len) {
        tbs_free(t);
        return pt_fail(PT_ERR_FORMAT, "not a DER TBSCertificate: bytes after its end");
    }
    unsigned char *again = NULL;
    int n = ASN1_item_i2d((const ASN1_VALUE *)t, &again, ASN1_ITEM_rptr(HSMD_TBS));
    bool same = n > 0 && again != NULL && (size_t)n == len && memcmp(again, der, len) == 0;
    OPENSSL_free(again);
    if (!same) {
        tbs_free(t);
        ERR_clear_error();
        return pt_fail(PT_ERR_FORMAT, "the TBSCertificate is not in DER (its re-encoding differs)");
    }
    *out = t;
    return PT_OK;
}

/* Digests fetched once: an implicit fetch (EVP_sha256()) looks the digest up on every use. */
static EVP_MD *fetched[4];
static pthread_once_t fetched_once = PTHREAD_ONCE_INIT;
static const struct {
    int nid;
    const char *name;
} fetch_names[4] = {
    {NID_sha1, "SHA1"}, {NID_sha256, "SHA256"}, {NID_sha384, "SHA384"}, {NID_sha512, "SHA512"}};

static void fetch_digests(void)
{
    for (size_t i = 0; i < 4; i++)
        fetched[i] = EVP_MD_fetch(NULL, fetch_names[i].name, NULL);
}

const EVP_MD *hsmd_policy_md(int md_nid)
{
    pthread_once(&fetched_once, fetch_digests);
    for (size_t i = 0; i < 4; i++)
        if (fetch_names[i].nid == md_nid && fetched[i] != NULL)
            return fetched[i];
    return EVP_get_digestbynid(md_nid);
}

static const char *key_type_name(int type)
{
    return type == EVP_PKEY_RSA ? "RSA" : type == EVP_PKEY_EC ? "EC" : "unknown";
}

static void digests_text(unsigned set, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned bit = 1; bit <= HSMD_DIGEST_SHA512 && used < len; bit <<= 1) {
        if (!(set & bit))
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", hsmd_digest_name(bit));
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void name_text(const X509_NAME *n, char *buf, size_t len)
{
    if (X509_NAME_oneline(n, buf, (int)len) == NULL)
        snprintf(buf, len, "(unprintable)");
}

static pt_err check_version(const HSMD_TBS *t)
{
    long v = t->version != NULL ? ASN1_INTEGER_get(t->version) : 0;
    if (v != 2)
        return pt_fail(PT_ERR_REFUSED, "version %ld certificate: only X.509 v3 is issued", v + 1);
    return PT_OK;
}

static pt_err check_signature_algorithm(const hsmd_issue_policy *p, const HSMD_TBS *t,
                                        const EVP_MD **md)
{
    const ASN1_OBJECT *oid = NULL;
    int ptype = V_ASN1_UNDEF;
    X509_ALGOR_get0(&oid, &ptype, NULL, t->signature);
    int sig_nid = OBJ_obj2nid(oid);
    int md_nid = NID_undef, pk_nid = NID_undef;
    char name[80];
    OBJ_obj2txt(name, sizeof name, oid, 0);
    if (sig_nid == NID_undef || !OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid))
        return pt_fail(PT_ERR_REFUSED, "signature algorithm %s is not one hsmd signs with", name);
    int want_pk = p->key_type == EVP_PKEY_RSA ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey;
    if (pk_nid != want_pk)
        return pt_fail(
            PT_ERR_REFUSED, "signature algorithm %s does not match the key, which is %s (use %s)",
            name, key_type_name(p->key_type),
            p->key_type == EVP_PKEY_RSA ? "sha256WithRSAEncryption" : "ecdsa-with-SHA256");
    unsigned bit = hsmd_digest_bit_from_nid(md_nid);
    if (bit == 0 || !(p->digests & bit)) {
        char allowed[64];
        digests_text(p->digests, allowed, sizeof allowed);
        return pt_fail(PT_ERR_REFUSED,
                       "signature algorithm %s uses a digest this key does not sign with "
                       "(allowed: %s)",
                       name, allowed);
    }
    /* RFC 4055: NULL parameters with RSA (absent is tolerated); RFC 5758: none with ECDSA. */
    bool params_ok = p->key_type == EVP_PKEY_RSA ? ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF
                                                 : ptype == V_ASN1_UNDEF;
    if (!params_ok)
        return pt_fail(PT_ERR_REFUSED, "signature algorithm %s has unexpected parameters", name);
    *md = hsmd_policy_md(md_nid);
    if (*md == NULL)
        return pt_fail(PT_ERR_REFUSED, "digest of %s is not available", name);
    return PT_OK;
}

static pt_err check_names(const hsmd_issue_policy *p, const HSMD_TBS *t)
{
    char got[256], want[256];
    const X509_NAME *ca = X509_get_subject_name(p->ca_cert);
    if (X509_NAME_cmp(t->issuer, ca) != 0) {
        name_text(t->issuer, got, sizeof got);
        name_text(ca, want, sizeof want);
        return pt_fail(PT_ERR_REFUSED, "issuer %s is not this key's certificate subject %s", got,
                       want);
    }
    if (X509_NAME_cmp(t->subject, ca) == 0)
        return pt_fail(PT_ERR_REFUSED,
                       "the subject is the issuing CA's own name: not an end-entity certificate");
    return PT_OK;
}

static void ext_name(X509_EXTENSION *e, char *buf, size_t len)
{
    OBJ_obj2txt(buf, (int)len, X509_EXTENSION_get_object(e), 0);
}

/* Does value, decoded from e by m, encode back to exactly e's bytes (DER)? */
static bool ext_value_is_der(const X509V3_EXT_METHOD *m, X509_EXTENSION *e, void *value)
{
    if (m->it == NULL)
        return true; /* an old-style method: OpenSSL has no item to re-encode with */
    unsigned char *again = NULL;
    int n = ASN1_item_i2d(value, &again, ASN1_ITEM_ptr(m->it));
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
    bool same = n > 0 && n == ASN1_STRING_length(v) &&
                memcmp(again, ASN1_STRING_get0_data(v), (size_t)n) == 0;
    OPENSSL_free(again);
    ERR_clear_error();
    return same;
}

/*
 * No extension twice, every extension OpenSSL knows decodable and in DER
 * (the TBS's own DER check sees extension values as opaque octets), none
 * unknown and critical.
 */
static pt_err check_extension_list(const STACK_OF(X509_EXTENSION) * exts)
{
    int n = sk_X509_EXTENSION_num(exts);
    char name[80];
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        for (int j = 0; j < i; j++) {
            if (OBJ_cmp(X509_EXTENSION_get_object(e),
                        X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j))) == 0) {
                ext_name(e, name, sizeof name);
                return pt_fail(PT_ERR_REFUSED, "%s appears more than once", name);
            }
        }
        const X509V3_EXT_METHOD *m = X509V3_EXT_get(e);
        if (m == NULL) {
            if (X509_EXTENSION_get_critical(e)) {
                ext_name(e, name, sizeof name);
                return pt_fail(PT_ERR_REFUSED, "extension %s is critical and unknown to hsmd",
                               name);
            }
            continue;
        }
        void *value = X509V3_EXT_d2i(e);
        if (value == NULL) {
            ERR_clear_error();
            ext_name(e, name, sizeof name);
            return pt_fail(PT_ERR_REFUSED, "%s cannot be decoded", name);
        }
        bool der = ext_value_is_der(m, e, value);
        if (m->it != NULL)
            ASN1_item_free(value, ASN1_ITEM_ptr(m->it));
        else if (m->ext_free != NULL)
            m->ext_free(value);
        if (!der) {
            ext_name(e, name, sizeof name);
            return pt_fail(PT_ERR_REFUSED, "%s is not in DER (its re-encoding differs)", name);
        }
    }
    return PT_OK;
}

/*
 * A keyUsage value must be a DER BIT STRING: its unused trailing bits zero.
 * OpenSSL clears such bits when it decodes, so a value with them set would be
 * read differently by a stricter or a looser verifier: refuse it.
 */
static pt_err check_key_usage_der(const STACK_OF(X509_EXTENSION) * exts)
{
    int i = X509v3_get_ext_by_NID(exts, NID_key_usage, -1);
    if (i < 0)
        return PT_OK;
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(X509v3_get_ext(exts, i));
    const uint8_t *p = ASN1_STRING_get0_data(v);
    int n = ASN1_STRING_length(v);
    /* 03 LEN UNUSED BYTES...; anything else is left to check_extension_list. */
    if (n >= 4 && p[0] == 0x03 && p[1] == n - 2 && p[2] < 8 &&
        (p[n - 1] & ((1u << p[2]) - 1u)) != 0)
        return pt_fail(PT_ERR_REFUSED, "keyUsage sets bits it declares unused (not DER)");
    return PT_OK;
}

/* basicConstraints absent or CA:FALSE; keyUsage without keyCertSign and cRLSign. */
static pt_err check_end_entity(const HSMD_TBS *t)
{
    pt_err rc =
        check_key_usage_der(t->extensions); /* names the problem; the list check would too */
    if (rc == PT_OK)
        rc = check_extension_list(t->extensions);
    if (rc != PT_OK)
        return rc;
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509V3_get_d2i(t->extensions, NID_basic_constraints, &crit, NULL);
    bool ca = bc != NULL && bc->ca, path_len = bc != NULL && bc->pathlen != NULL;
    BASIC_CONSTRAINTS_free(bc);
    if (ca)
        return pt_fail(PT_ERR_REFUSED,
                       "basicConstraints says CA:TRUE: this key issues end-entity certificates "
                       "only");
    if (path_len)
        return pt_fail(PT_ERR_REFUSED, "basicConstraints has a pathLenConstraint without CA:TRUE");
    ASN1_BIT_STRING *ku = X509V3_get_d2i(t->extensions, NID_key_usage, &crit, NULL);
    bool cert_sign = ku != NULL && ASN1_BIT_STRING_get_bit(ku, 5);
    bool crl_sign = ku != NULL && ASN1_BIT_STRING_get_bit(ku, 6);
    bool empty = true;
    for (int b = 0; ku != NULL && b < 9; b++)
        if (ASN1_BIT_STRING_get_bit(ku, b))
            empty = false;
    ASN1_BIT_STRING_free(ku);
    if (ku != NULL && empty)
        return pt_fail(PT_ERR_REFUSED, "keyUsage is present but empty (RFC 5280 4.2.1.3)");
    if (cert_sign || crl_sign)
        return pt_fail(PT_ERR_REFUSED,
                       "keyUsage includes %s: only a CA uses it, and this key issues end-entity "
                       "certificates only",
                       cert_sign ? "keyCertSign" : "cRLSign");
    return PT_OK;
}

static pt_err asn1_time_get(const ASN1_TIME *t, const char *what, time_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_check(t) != 1 || ASN1_TIME_to_tm(t, &tm) != 1)
        return pt_fail(PT_ERR_REFUSED, "%s is not a valid time", what);
    *out = timegm(&tm);
    return PT_OK;
}

static pt_err check_validity(const hsmd_issue_policy *p, const HSMD_TBS *t, time_t now)
{
    time_t nb = 0, na = 0;
    pt_err rc = asn1_time_get(t->validity->notBefore, "notBefore", &nb);
    if (rc == PT_OK)
        rc = asn1_time_get(t->validity->notAfter, "notAfter", &na);
    if (rc != PT_OK)
        return rc;
    char nbs[21], nas[21];
    pt_time_iso8601(nb, nbs);
    pt_time_iso8601(na, nas);
    if (nb < now - HSMD_MAX_BACKDATE_SECONDS)
        return pt_fail(PT_ERR_REFUSED,
                       "notBefore %s is more than one day in the past: a certificate starts now "
                       "or later",
                       nbs);
    if (na <= nb)
        return pt_fail(PT_ERR_REFUSED, "notAfter %s is not after notBefore %s", nas, nbs);
    if (na - nb > (time_t)p->max_validity_days * 86400)
        return pt_fail(PT_ERR_REFUSED,
                       "validity %s to %s is longer than this key's maximum of %ld days", nbs, nas,
                       p->max_validity_days);
    return PT_OK;
}

/* An RSA key (NULL parameters) or an EC key on a named curve, with some key bits. */
static pt_err check_subject_key(const HSMD_TBS *t)
{
    const ASN1_OBJECT *oid = NULL;
    int ptype = V_ASN1_UNDEF;
    const void *pval = NULL;
    X509_ALGOR_get0(&oid, &ptype, &pval, t->key->algor);
    int nid = OBJ_obj2nid(oid);
    bool ok = (nid == NID_rsaEncryption && ptype == V_ASN1_NULL) ||
              (nid == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT &&
               OBJ_obj2nid(pval) != NID_undef);
    if (!ok || ASN1_STRING_length(t->key->public_key) < 1)
        return pt_fail(PT_ERR_REFUSED,
                       "the subject public key is not an RSA key or an EC key on a named curve");
    return PT_OK;
}

static pt_err check_serial(const HSMD_TBS *t, hsmd_issue_info *info)
{
    const ASN1_INTEGER *serial = t->serial;
    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER)
        return pt_fail(PT_ERR_REFUSED, "the serial number is negative");
    const unsigned char *d = ASN1_STRING_get0_data(serial);
    int n = ASN1_STRING_length(serial);
    bool zero = true;
    for (int i = 0; i < n; i++)
        zero = zero && d[i] == 0;
    if (zero)
        return pt_fail(PT_ERR_REFUSED, "the serial number is zero");
    if (n > 20)
        return pt_fail(PT_ERR_REFUSED, "the serial number is longer than 20 bytes (RFC 5280)");
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    bool fits = hex != NULL && strlen(hex) < sizeof info->serial;
    if (fits)
        memcpy(info->serial, hex, strlen(hex) + 1);
    OPENSSL_free(hex);
    BN_free(bn);
    return fits ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
}

pt_err hsmd_issue_check(const hsmd_issue_policy *p, const uint8_t *tbs, size_t len, time_t now,
                        hsmd_issue_info *info)
{
    memset(info, 0, sizeof *info);
    HSMD_TBS *t = NULL;
    const EVP_MD *md = NULL;
    pt_err rc = tbs_parse(tbs, len, &t);
    if (rc != PT_OK || t == NULL)
        return rc != PT_OK ? rc : PT_ERR_INTERNAL;
    rc = check_version(t);
    if (rc == PT_OK)
        rc = check_signature_algorithm(p, t, &md);
    if (rc == PT_OK)
        rc = check_names(p, t);
    if (rc == PT_OK)
        rc = check_end_entity(t);
    if (rc == PT_OK)
        rc = check_validity(p, t, now);
    if (rc == PT_OK)
        rc = check_subject_key(t);
    if (rc == PT_OK)
        rc = check_serial(t, info);
    if (rc == PT_OK) {
        info->md = md;
        name_text(t->subject, info->subject, sizeof info->subject);
    } else {
        memset(info, 0, sizeof *info);
    }
    tbs_free(t);
    return rc;
}

pt_err hsmd_issue_finish(const hsmd_issue_policy *p, const uint8_t *tbs, size_t tbs_len,
                         const EVP_MD *md, const uint8_t *sig, size_t sig_len, uint8_t **cert,
                         size_t *cert_len)
{
    *cert = NULL;
    *cert_len = 0;
    EVP_PKEY *ca_key = X509_get0_pubkey(p->ca_cert);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = ca_key != NULL && m != NULL && EVP_DigestVerifyInit(m, NULL, md, NULL, ca_key) == 1 &&
             EVP_DigestVerify(m, sig, sig_len, tbs, tbs_len) == 1;
    EVP_MD_CTX_free(m);
    if (!ok)
        return pt_fail_openssl(PT_ERR_VERIFY,
                               "the signature made by the HSM does not verify with the key's "
                               "certificate");
    return pt_der_cert_assemble(tbs, tbs_len, sig, sig_len, cert, cert_len);
}

/* ---- sign-tlv ---- */

void hsmd_tlv_policy_clear(hsmd_tlv_policy *p)
{
    OPENSSL_free(p->name);
    OPENSSL_free(p->issuer);
    OPENSSL_free(p->serial);
    OPENSSL_free(p->cert_der);
    memset(p, 0, sizeof *p);
}

pt_err hsmd_tlv_policy_init(hsmd_tlv_policy *p, X509 *signer_cert, int key_type, int key_bits,
                            unsigned digests)
{
    memset(p, 0, sizeof *p);
    if (key_type != EVP_PKEY_RSA || tlv_modulus_code((size_t)key_bits / 8) < 0 || key_bits % 8 != 0)
        return pt_fail(PT_ERR_UNSUPPORTED,
                       "CTL/ITL files are signed with RSA keys of 512, 1024, 2048 or 4096 bits; "
                       "this key is %s %d",
                       key_type_name(key_type), key_bits);
    p->signer_cert = signer_cert;
    p->key_bits = key_bits;
    p->digests = digests;
    pt_err rc = tlv_name_render(X509_get_subject_name(signer_cert), &p->name);
    if (rc == PT_OK)
        rc = tlv_name_render(X509_get_issuer_name(signer_cert), &p->issuer);
    if (rc == PT_OK)
        rc = tlv_serial_encode(X509_get0_serialNumber(signer_cert), &p->serial, &p->serial_len);
    if (rc == PT_OK)
        rc = pt_cert_to_der(signer_cert, &p->cert_der, &p->cert_der_len);
    if (rc != PT_OK) {
        hsmd_tlv_policy_clear(p);
        return pt_err_context(rc, "the key's certificate cannot be named in a CTL/ITL");
    }
    return PT_OK;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static pt_err check_tlv_signature_info(const hsmd_tlv_policy *p, const tlv_file *f)
{
    unsigned bit = f->digest == TLV_DIGEST_SHA1     ? HSMD_DIGEST_SHA1
                   : f->digest == TLV_DIGEST_SHA512 ? HSMD_DIGEST_SHA512
                                                    : 0;
    if (bit == 0 || !(p->digests & bit))
        return pt_fail(PT_ERR_REFUSED, "digest %s is not allowed for this key",
                       tlv_digest_name(f->digest) ? tlv_digest_name(f->digest) : "(unknown)");
    if (f->signature_algorithm != 0)
        return pt_fail(PT_ERR_REFUSED,
                       "SIGNATURE_ALGORITHM is %u; only 0 (RSA PKCS#1 v1.5) is "
                       "signed",
                       f->signature_algorithm);
    size_t k = (size_t)p->key_bits / 8;
    if (f->signature_len != k)
        return pt_fail(PT_ERR_REFUSED,
                       "the SIGNATURE placeholder is %zu bytes but the key's %d-bit modulus "
                       "needs %zu: phones could not verify the file",
                       f->signature_len, p->key_bits, k);
    if (tlv_modulus_code(k) != (int)f->modulus_code)
        return pt_fail(PT_ERR_REFUSED, "SIGNATURE_MODULUS code %u does not match a %d-bit key",
                       f->modulus_code, p->key_bits);
    if (!all_zero(f->raw + f->signature_offset + 3, k))
        return pt_fail(PT_ERR_REFUSED, "the SIGNATURE placeholder is not zero-filled");
    return PT_OK;
}

static pt_err check_tlv_signer(const hsmd_tlv_policy *p, const tlv_file *f)
{
    if (f->signer_name == NULL || strcmp(f->signer_name, p->name) != 0)
        return pt_fail(PT_ERR_REFUSED, "SIGNER_NAME %s is not this key's certificate subject %s",
                       f->signer_name ? f->signer_name : "(absent)", p->name);
    if (f->signer_issuer == NULL || strcmp(f->signer_issuer, p->issuer) != 0)
        return pt_fail(PT_ERR_REFUSED, "SIGNER_ISSUER %s is not this key's certificate issuer %s",
                       f->signer_issuer ? f->signer_issuer : "(absent)", p->issuer);
    /* Phones compare serials byte for byte: only the minimal form (§7.4.2) will do. */
    if (f->signer_serial == NULL || f->signer_serial_len != p->serial_len ||
        memcmp(f->signer_serial, p->serial, p->serial_len) != 0)
        return pt_fail(PT_ERR_REFUSED, "SIGNER_SERIAL is not this key's certificate serial");
    const tlv_record *r = tlv_file_signer_record(f);
    if (r == NULL)
        return pt_fail(PT_ERR_REFUSED, "no SAST record carries the signer's serial: phones could "
                                       "not find the signing certificate");
    if (r->serial_len != p->serial_len || memcmp(r->serial, p->serial, p->serial_len) != 0)
        return pt_fail(PT_ERR_REFUSED, "the signer's SAST record writes the serial in another "
                                       "form than SIGNER_SERIAL");
    if (r->certificate == NULL || r->certificate_len != p->cert_der_len ||
        memcmp(r->certificate, p->cert_der, p->cert_der_len) != 0)
        return pt_fail(PT_ERR_REFUSED,
                       "the signer's SAST record does not carry this key's certificate");
    return PT_OK;
}

pt_err hsmd_tlv_check(const hsmd_tlv_policy *p, const uint8_t *file, size_t len, tlv_file **parsed)
{
    *parsed = NULL;
    tlv_file *f = NULL;
    pt_err rc = tlv_file_parse(file, len, &f);
    if (rc != PT_OK)
        return pt_fail(PT_ERR_FORMAT, "not a well-formed CTL/ITL file: %s", pt_err_message());
    if (f->n_warnings > 0)
        rc = pt_fail(PT_ERR_REFUSED, "the file is not strictly well-formed: %s%s", f->warnings[0],
                     f->n_warnings > 1 ? " (and more)" : "");
    if (rc == PT_OK)
        rc = check_tlv_signature_info(p, f);
    if (rc == PT_OK)
        rc = check_tlv_signer(p, f);
    if (rc != PT_OK) {
        tlv_file_free(f);
        return rc;
    }
    *parsed = f;
    return PT_OK;
}

pt_err hsmd_tlv_finish(const tlv_file *parsed, const uint8_t *sig, size_t sig_len, uint8_t **out,
                       size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t k = parsed->signature_len;
    if (sig_len == 0 || sig_len > k)
        return pt_fail(PT_ERR_INTERNAL, "a %zu-byte signature for a %zu-byte SIGNATURE", sig_len,
                       k);
    uint8_t *buf = OPENSSL_memdup(parsed->raw, parsed->raw_len);
    if (buf == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    uint8_t *dst = buf + parsed->signature_offset + 3;
    memset(dst, 0, k - sig_len);
    memcpy(dst + (k - sig_len), sig, sig_len);
    tlv_file *f = NULL;
    tlv_verify_result res;
    pt_err rc = tlv_file_parse(buf, parsed->raw_len, &f);
    if (rc == PT_OK)
        rc = tlv_file_verify(f, NULL, &res);
    tlv_file_free(f);
    if (rc != PT_OK) {
        OPENSSL_free(buf);
        return pt_fail(PT_ERR_VERIFY, "the signed file does not verify: %s", pt_err_message());
    }
    *out = buf;
    *out_len = parsed->raw_len;
    return PT_OK;
}
