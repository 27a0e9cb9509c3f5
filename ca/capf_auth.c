#include "capf_auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "bytes.h"
#include "cert.h"
#include "der.h"

/* Largest blob we sign or verify: a name and a certificate (or a SUDI). */
#define AUTH_BLOB_MAX (CAPF_EL_VALUE_MAX + 8)

pt_err capf_auth_blob(const char *device_name, const uint8_t *cert, size_t cert_len, uint8_t **blob,
                      size_t *len)
{
    pt_writer w;
    pt_writer_init(&w, AUTH_BLOB_MAX);
    *blob = NULL;
    *len = 0;
    if (device_name == NULL || cert == NULL)
        return pt_fail(PT_ERR_USAGE, "authentication blob needs a device name and a certificate");
    /* The name's NUL terminator is part of the blob (§9.3). */
    pt_writer_bytes(&w, device_name, strlen(device_name) + 1);
    pt_writer_bytes(&w, cert, cert_len);
    return pt_writer_finish(&w, blob, len);
}

pt_err capf_sudi_blob(uint32_t session_id, const uint8_t *sudi, size_t sudi_len, uint8_t **blob,
                      size_t *len)
{
    pt_writer w;
    pt_writer_init(&w, AUTH_BLOB_MAX);
    *blob = NULL;
    *len = 0;
    if (sudi == NULL)
        return pt_fail(PT_ERR_USAGE, "SUDI blob needs the SUDI certificate");
    /* Little-endian on purpose: the vendor builds it in x86 host order (§9.4). */
    pt_writer_u32le(&w, session_id);
    pt_writer_bytes(&w, sudi, sudi_len);
    return pt_writer_finish(&w, blob, len);
}

const char *capf_sig_form_name(capf_sig_form form)
{
    switch (form) {
    case CAPF_SIG_RSA_RAW:
        return "RSA raw digest";
    case CAPF_SIG_RSA_DIGEST_INFO:
        return "RSA PKCS#1 v1.5 DigestInfo";
    case CAPF_SIG_ECDSA_DER:
        return "ECDSA DER";
    case CAPF_SIG_ECDSA_RAW:
        return "ECDSA r||s";
    case CAPF_SIG_NONE:
        break;
    }
    return "none";
}

/* ------------------------------------------------------------------------ */
/* Digests                                                                  */

typedef struct digest_info {
    uint8_t code;
    const char *name;
    const EVP_MD *(*md)(void);
    const uint8_t *prefix; /* DER DigestInfo up to the hash (RFC 8017 §9.2 note 1) */
    size_t prefix_len;
} digest_info;

static const uint8_t sha1_prefix[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                      0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t sha512_prefix[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

static const digest_info digests[] = {
    {CAPF_DIGEST_SHA1, "SHA-1", EVP_sha1, sha1_prefix, sizeof sha1_prefix},
    {CAPF_DIGEST_SHA256, "SHA-256", EVP_sha256, sha256_prefix, sizeof sha256_prefix},
    {CAPF_DIGEST_SHA512, "SHA-512", EVP_sha512, sha512_prefix, sizeof sha512_prefix},
};

static const digest_info *digest_find(uint8_t code)
{
    for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++)
        if (digests[i].code == code)
            return &digests[i];
    pt_fail(PT_ERR_UNSUPPORTED, "digest code %u is not SHA-1 (1), SHA-256 (2) or SHA-512 (3)",
            code);
    return NULL;
}

static pt_err digest_blob(const digest_info *d, const uint8_t *blob, size_t blob_len,
                          uint8_t h[EVP_MAX_MD_SIZE], size_t *hlen)
{
    unsigned int n = 0;
    if (EVP_Digest(blob, blob_len, h, &n, d->md(), NULL) != 1)
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot compute %s", d->name);
    *hlen = n;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* RSA                                                                      */

/* Is em exactly 00 01 FF..FF 00 prefix H, with at least 8 FF (PKCS#1 type 1)? */
static bool rsa_em_is(const uint8_t *em, size_t k, const uint8_t *prefix, size_t prefix_len,
                      const uint8_t *h, size_t hlen)
{
    size_t t_len = prefix_len + hlen;
    if (k < t_len + 11 || em[0] != 0x00 || em[1] != 0x01 || em[k - t_len - 1] != 0x00)
        return false;
    for (size_t i = 2; i < k - t_len - 1; i++)
        if (em[i] != 0xff)
            return false;
    return CRYPTO_memcmp(em + k - t_len, prefix, prefix_len) == 0 &&
           CRYPTO_memcmp(em + k - hlen, h, hlen) == 0;
}

/* s^e mod n as a k-byte string (no padding check: that is ours to do). */
static pt_err rsa_recover(EVP_PKEY *key, const uint8_t *sig, size_t sig_len, uint8_t *em, size_t k)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    size_t out_len = k;
    pt_err rc = PT_OK;
    if (ctx == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    /* Shorter signatures (leading zeros dropped) are fine; longer ones are not. */
    if (sig_len == 0 || sig_len > k) {
        rc =
            pt_fail(PT_ERR_VERIFY, "RSA signature of %zu bytes for a %zu-byte modulus", sig_len, k);
    } else if (EVP_PKEY_verify_recover_init(ctx) != 1 ||
               EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) != 1 ||
               EVP_PKEY_verify_recover(ctx, em, &out_len, sig, sig_len) != 1 || out_len != k) {
        rc = pt_fail_openssl(PT_ERR_VERIFY, "RSA signature is not a value below the modulus");
    }
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static pt_err rsa_verify(EVP_PKEY *key, const digest_info *d, const uint8_t *h, size_t hlen,
                         const uint8_t *sig, size_t sig_len, capf_sig_form *form)
{
    int size = EVP_PKEY_get_size(key);
    if (size <= 0 || size > 2048)
        return pt_fail(PT_ERR_UNSUPPORTED, "RSA key of unusable size");
    size_t k = (size_t)size;
    uint8_t em[2048] = {0};
    pt_err rc = rsa_recover(key, sig, sig_len, em, k);
    if (rc != PT_OK)
        return rc;
    /* The raw form is what clients must send (§9.3); DigestInfo is tolerated. */
    if (rsa_em_is(em, k, NULL, 0, h, hlen))
        *form = CAPF_SIG_RSA_RAW;
    else if (rsa_em_is(em, k, d->prefix, d->prefix_len, h, hlen))
        *form = CAPF_SIG_RSA_DIGEST_INFO;
    else
        rc = pt_fail(PT_ERR_VERIFY, "%s RSA signature does not verify", d->name);
    OPENSSL_cleanse(em, sizeof em);
    return rc;
}

static pt_err rsa_sign_raw(EVP_PKEY *key, const digest_info *d, const uint8_t *h, size_t hlen,
                           uint8_t **sig, size_t *sig_len)
{
    int size = EVP_PKEY_get_size(key);
    if (size <= 0 || (size_t)size < hlen + 11)
        return pt_fail(PT_ERR_UNSUPPORTED, "a %d-bit RSA key is too small to sign a %s digest",
                       EVP_PKEY_get_bits(key), d->name);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    size_t n = (size_t)size;
    uint8_t *out = OPENSSL_malloc(n);
    pt_err rc = PT_OK;
    if (ctx == NULL || out == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* No signature md: OpenSSL pads H itself, as RSA_private_encrypt would. */
    if (EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_sign(ctx, out, &n, h, hlen) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "RSA raw-digest signing failed");
        goto out;
    }
    *sig = out;
    *sig_len = n;
    out = NULL;
out:
    OPENSSL_free(out);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* ECDSA                                                                    */

static bool ecdsa_verify_der(EVP_PKEY *key, const digest_info *d, const uint8_t *blob,
                             size_t blob_len, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    bool ok = mctx != NULL && EVP_DigestVerifyInit(mctx, NULL, d->md(), NULL, key) == 1 &&
              EVP_DigestVerify(mctx, sig, sig_len, blob, blob_len) == 1;
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    return ok;
}

static pt_err ecdsa_verify(EVP_PKEY *key, const digest_info *d, const uint8_t *blob,
                           size_t blob_len, const uint8_t *sig, size_t sig_len, capf_sig_form *form)
{
    if (ecdsa_verify_der(key, d, blob, blob_len, sig, sig_len)) {
        *form = CAPF_SIG_ECDSA_DER;
        return PT_OK;
    }
    /* The EC encoding real phones use is unverified (CAPF-U15): accept r || s too. */
    size_t half = ((size_t)EVP_PKEY_get_bits(key) + 7) / 8;
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (half > 0 && sig_len == 2 * half &&
        pt_der_ecdsa_sig_from_raw(sig, sig_len, &der, &der_len) == PT_OK) {
        bool ok = ecdsa_verify_der(key, d, blob, blob_len, der, der_len);
        OPENSSL_free(der);
        if (ok) {
            *form = CAPF_SIG_ECDSA_RAW;
            return PT_OK;
        }
    }
    return pt_fail(PT_ERR_VERIFY, "%s ECDSA signature does not verify", d->name);
}

static pt_err ecdsa_sign(EVP_PKEY *key, const digest_info *d, const uint8_t *blob, size_t blob_len,
                         uint8_t **sig, size_t *sig_len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    uint8_t *out = NULL;
    size_t n = 0;
    pt_err rc = PT_OK;
    if (mctx == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (EVP_DigestSignInit(mctx, NULL, d->md(), NULL, key) != 1 ||
        EVP_DigestSign(mctx, NULL, &n, blob, blob_len) != 1 || (out = OPENSSL_malloc(n)) == NULL ||
        EVP_DigestSign(mctx, out, &n, blob, blob_len) != 1) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "ECDSA %s signing failed", d->name);
        OPENSSL_free(out);
    } else {
        *sig = out;
        *sig_len = n;
    }
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Public sign / verify                                                     */

pt_err capf_auth_verify(EVP_PKEY *key, uint8_t digest, const uint8_t *blob, size_t blob_len,
                        const uint8_t *sig, size_t sig_len, capf_sig_form *form)
{
    uint8_t h[EVP_MAX_MD_SIZE];
    size_t hlen = 0;
    *form = CAPF_SIG_NONE;
    const digest_info *d = digest_find(digest);
    if (d == NULL)
        return PT_ERR_UNSUPPORTED;
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
        pt_err rc = digest_blob(d, blob, blob_len, h, &hlen);
        return rc != PT_OK ? rc : rsa_verify(key, d, h, hlen, sig, sig_len, form);
    }
    case EVP_PKEY_EC:
        return ecdsa_verify(key, d, blob, blob_len, sig, sig_len, form);
    default:
        return pt_fail(PT_ERR_UNSUPPORTED, "authentication key is neither RSA nor EC");
    }
}

pt_err capf_auth_sign(EVP_PKEY *key, uint8_t digest, const uint8_t *blob, size_t blob_len,
                      uint8_t **sig, size_t *sig_len)
{
    uint8_t h[EVP_MAX_MD_SIZE];
    size_t hlen = 0;
    *sig = NULL;
    *sig_len = 0;
    const digest_info *d = digest_find(digest);
    if (d == NULL)
        return PT_ERR_UNSUPPORTED;
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
        pt_err rc = digest_blob(d, blob, blob_len, h, &hlen);
        return rc != PT_OK ? rc : rsa_sign_raw(key, d, h, hlen, sig, sig_len);
    }
    case EVP_PKEY_EC:
        return ecdsa_sign(key, d, blob, blob_len, sig, sig_len);
    default:
        return pt_fail(PT_ERR_UNSUPPORTED, "signing key is neither RSA nor EC");
    }
}

/* ------------------------------------------------------------------------ */
/* Trust check (§9.5)                                                       */

/* Compare two attribute values as text, so that the string type does not matter. */
static bool name_value_equal(const ASN1_STRING *a, const ASN1_STRING *b)
{
    unsigned char *ua = NULL, *ub = NULL;
    int na = ASN1_STRING_to_UTF8(&ua, a);
    int nb = ASN1_STRING_to_UTF8(&ub, b);
    bool eq;
    if (na < 0 || nb < 0)
        eq = ASN1_STRING_cmp(a, b) == 0; /* not a string type: compare type and bytes */
    else
        eq = na == nb && memcmp(ua, ub, (size_t)na) == 0;
    OPENSSL_free(ua);
    OPENSSL_free(ub);
    ERR_clear_error();
    return eq;
}

bool capf_auth_name_equal(const X509_NAME *a, const X509_NAME *b)
{
    int n = X509_NAME_entry_count(a);
    if (n != X509_NAME_entry_count(b))
        return false;
    for (int i = 0; i < n; i++) {
        const X509_NAME_ENTRY *ea = X509_NAME_get_entry(a, i);
        const X509_NAME_ENTRY *eb = X509_NAME_get_entry(b, i);
        /* Same RDN grouping, same attribute type, same value. */
        if (X509_NAME_ENTRY_set(ea) != X509_NAME_ENTRY_set(eb) ||
            OBJ_cmp(X509_NAME_ENTRY_get_object(ea), X509_NAME_ENTRY_get_object(eb)) != 0 ||
            !name_value_equal(X509_NAME_ENTRY_get_data(ea), X509_NAME_ENTRY_get_data(eb)))
            return false;
    }
    return true;
}

/* RSA PKCS#1 v1.5 or ECDSA with SHA-1..SHA-512, as §9.5 allows. */
static bool cert_sigalg_allowed(X509 *cert)
{
    int md = NID_undef, pk = NID_undef;
    if (X509_get_signature_info(cert, &md, &pk, NULL, NULL) != 1)
        return false;
    bool md_ok = md == NID_sha1 || md == NID_sha224 || md == NID_sha256 || md == NID_sha384 ||
                 md == NID_sha512;
    return md_ok && (pk == NID_rsaEncryption || pk == NID_X9_62_id_ecPublicKey);
}

static pt_err validity_check(X509 *cert, const capf_trust_opts *opts)
{
    time_t now = opts->now != 0 ? opts->now : time(NULL);
    if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0)
        return pt_fail(PT_ERR_VERIFY, "certificate is not valid yet");
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0)
        return pt_fail(PT_ERR_VERIFY, "certificate has expired");
    return PT_OK;
}

pt_err capf_auth_trust_check(X509 *cert, STACK_OF(X509) * trust, const capf_trust_opts *opts,
                             int *index)
{
    bool name_matched = false;
    if (index != NULL)
        *index = -1;
    if (!cert_sigalg_allowed(cert))
        return pt_fail(PT_ERR_VERIFY,
                       "certificate is not signed with RSA PKCS#1 v1.5 or ECDSA and SHA-1..512");
    for (int i = 0; i < sk_X509_num(trust); i++) {
        X509 *t = sk_X509_value(trust, i);
        if (!capf_auth_name_equal(X509_get_issuer_name(cert), X509_get_subject_name(t)))
            continue;
        name_matched = true;
        EVP_PKEY *tkey = X509_get0_pubkey(t);
        if (tkey == NULL || X509_verify(cert, tkey) != 1) {
            ERR_clear_error();
            continue;
        }
        if (opts != NULL && opts->check_validity) {
            pt_err rc = validity_check(cert, opts);
            if (rc != PT_OK)
                return rc;
        }
        if (index != NULL)
            *index = i;
        return PT_OK;
    }
    char issuer[256];
    X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof issuer);
    if (name_matched)
        return pt_fail(PT_ERR_VERIFY,
                       "certificate names trusted issuer %s but its signature does not verify "
                       "with that issuer's key",
                       issuer);
    return pt_fail(PT_ERR_VERIFY,
                   "certificate issuer %s is not the subject of any trusted certificate; add "
                   "the issuing CA to the trust set if it should be trusted",
                   issuer);
}

/* ------------------------------------------------------------------------ */
/* AUTH_RESPONSE verification (§9.3, §9.4)                                  */

static bool key_is_rsa_or_ec(EVP_PKEY *key)
{
    int id = key != NULL ? EVP_PKEY_get_base_id(key) : NID_undef;
    return id == EVP_PKEY_RSA || id == EVP_PKEY_EC;
}

static bool cn_equals(X509 *cert, const char *name, size_t name_len)
{
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    return n >= 0 && (size_t)n == name_len && memcmp(cn, name, name_len) == 0;
}

/* A signature pair: SHA-1 and SHA-512 over one blob with one key (§9.3 steps 4-5). */
typedef struct sig_pair {
    const char *what1, *what512; /* names for messages */
    const uint8_t *sig1, *sig512;
    size_t sig1_len, sig512_len;
} sig_pair;

static pt_err verify_pair(EVP_PKEY *key, const uint8_t *blob, size_t blob_len, const sig_pair *s,
                          capf_sig_form *form1, capf_sig_form *form512)
{
    pt_err rc =
        capf_auth_verify(key, CAPF_DIGEST_SHA1, blob, blob_len, s->sig1, s->sig1_len, form1);
    if (rc != PT_OK)
        return pt_err_context(rc, "%s", s->what1);
    rc = capf_auth_verify(key, CAPF_DIGEST_SHA512, blob, blob_len, s->sig512, s->sig512_len,
                          form512);
    if (rc != PT_OK)
        return pt_err_context(rc, "%s", s->what512);
    return PT_OK;
}

/* §9.4: the optional SUDI data. */
static pt_err verify_sudi(const capf_msg *m, STACK_OF(X509) * trust, const capf_trust_opts *opts,
                          capf_auth_result *res)
{
    capf_sudi sudi;
    X509 *cert = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    pt_err rc = capf_msg_get_sudi(m, &sudi);
    if (rc != PT_OK)
        return rc;
    if (sudi.sha512_type != CAPF_DIGEST_SHA512)
        return pt_fail(PT_ERR_VERIFY, "SUDI item 3 has digest code %u, not 3 (SHA-512)",
                       sudi.sha512_type);
    rc = pt_cert_parse_der(sudi.cert, sudi.cert_len, &cert);
    if (rc != PT_OK)
        return pt_err_context(rc, "SUDI_DATA certificate");
    /* Known servers accept a non-RSA SUDI unchecked (§9.4 step 2). */
    if (EVP_PKEY_get_base_id(X509_get0_pubkey(cert)) != EVP_PKEY_RSA)
        goto out;
    rc = capf_auth_trust_check(cert, trust, opts, &res->sudi_trust_index);
    if (rc == PT_OK)
        rc = capf_sudi_blob(capf_msg_session_id(m), sudi.cert, sudi.cert_len, &blob, &blob_len);
    const sig_pair sigs = {"item 2",        "item 3",          sudi.sha1_sig,
                           sudi.sha512_sig, sudi.sha1_sig_len, sudi.sha512_sig_len};
    if (rc == PT_OK)
        rc = verify_pair(X509_get0_pubkey(cert), blob, blob_len, &sigs, &res->sudi_sha1_form,
                         &res->sudi_sha512_form);
    if (rc == PT_OK)
        res->sudi_checked = true;
    else
        rc = pt_err_context(rc, "SUDI_DATA");
out:
    OPENSSL_free(blob);
    X509_free(cert);
    return rc;
}

/* §9.3 step 1: everything present and well formed. */
typedef struct auth_parts {
    const char *device;
    size_t device_len;
    const uint8_t *der;
    size_t der_len;
    const uint8_t *sig1;
    size_t sig1_len;
    capf_sha2_signed sha2;
} auth_parts;

static pt_err auth_parts_get(const capf_msg *m, auth_parts *p)
{
    pt_err rc = capf_msg_get_string(m, CAPF_EL_DEVICE_NAME, &p->device, &p->device_len);
    if (rc == PT_OK)
        rc = capf_msg_get_certificate(m, &p->der, &p->der_len);
    if (rc == PT_OK)
        rc = capf_msg_get_bytes(m, CAPF_EL_SIGNED_DATA, &p->sig1, &p->sig1_len);
    if (rc == PT_OK)
        rc = capf_msg_get_sha2_signed_data(m, &p->sha2);
    if (rc != PT_OK)
        return rc;
    if (p->sha2.digest != CAPF_DIGEST_SHA512)
        return pt_fail(PT_ERR_VERIFY, "SHA2_SIGNED_DATA has digest code %u, not 3 (SHA-512)",
                       p->sha2.digest);
    return PT_OK;
}

pt_err capf_auth_verify_response(const capf_msg *m, STACK_OF(X509) * trust,
                                 const capf_trust_opts *opts, capf_auth_result *res)
{
    auth_parts p;
    X509 *cert = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    memset(res, 0, sizeof *res);
    memset(&p, 0, sizeof p);
    res->trust_index = res->sudi_trust_index = -1;

    pt_err rc = auth_parts_get(m, &p);
    if (rc == PT_OK)
        rc = pt_cert_parse_der(p.der, p.der_len, &cert);
    if (rc == PT_OK && !key_is_rsa_or_ec(X509_get0_pubkey(cert)))
        rc = pt_fail(PT_ERR_UNSUPPORTED, "certificate key is neither RSA nor EC");
    if (rc == PT_OK)
        rc = capf_auth_trust_check(cert, trust, opts, &res->trust_index);
    if (rc == PT_OK)
        rc = capf_auth_blob(p.device, p.der, p.der_len, &blob, &blob_len);
    const sig_pair sigs = {"SIGNED_DATA", "SHA2_SIGNED_DATA", p.sig1,
                           p.sha2.sig,    p.sig1_len,         p.sha2.sig_len};
    if (rc == PT_OK)
        rc = verify_pair(X509_get0_pubkey(cert), blob, blob_len, &sigs, &res->signed_data_form,
                         &res->sha2_signed_data_form);
    if (rc == PT_OK) {
        res->cn_is_device = cn_equals(cert, p.device, p.device_len);
        res->sudi_present = capf_msg_has(m, CAPF_EL_SUDI_DATA);
        if (res->sudi_present)
            rc = verify_sudi(m, trust, opts, res);
    }
    OPENSSL_free(blob);
    X509_free(cert);
    if (rc != PT_OK)
        return pt_err_context(rc, "certificate authentication");
    return PT_OK;
}
