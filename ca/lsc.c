#include "lsc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "bytes.h"
#include "capf_msg.h"
#include "der.h"

/* ------------------------------------------------------------------------ */
/* Small DER helpers                                                        */

/* Append the DER of obj (an OpenSSL ASN.1 object of type it); a failure fails w. */
static void put_item(pt_writer *w, const void *obj, const ASN1_ITEM *it)
{
    unsigned char *der = NULL;
    int n = ASN1_item_i2d((const ASN1_VALUE *)obj, &der, it);
    if (n <= 0 || der == NULL)
        pt_writer_set_failed(w);
    else
        pt_writer_bytes(w, der, (size_t)n);
    OPENSSL_free(der);
}

/* Do two ASN.1 objects of type it have the same DER? A failed encoding is "no". */
static bool item_der_equal(const void *a, const void *b, const ASN1_ITEM *it)
{
    unsigned char *da = NULL, *db = NULL;
    int na = ASN1_item_i2d((const ASN1_VALUE *)a, &da, it);
    int nb = ASN1_item_i2d((const ASN1_VALUE *)b, &db, it);
    bool eq = na > 0 && na == nb && da != NULL && db != NULL && memcmp(da, db, (size_t)na) == 0;
    OPENSSL_free(da);
    OPENSSL_free(db);
    return eq;
}

/* Append tag, length and the contents written so far in inner. */
static void put_framed(pt_writer *w, uint8_t tag, const pt_writer *inner)
{
    if (pt_writer_failed(inner))
        pt_writer_set_failed(w);
    pt_writer_u8(w, tag);
    pt_der_write_length(w, pt_writer_len(inner));
    pt_writer_bytes(w, pt_writer_data(inner), pt_writer_len(inner));
}

/* ------------------------------------------------------------------------ */
/* The parts of the profile                                                 */

pt_err lsc_device_name_check(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > LSC_NAME_MAX)
        return pt_fail(PT_ERR_USAGE, "device name must have 1 to %d characters", LSC_NAME_MAX);
    /* It becomes an IA5String URI, so printable ASCII without spaces. */
    for (size_t i = 0; i < n; i++)
        if (name[i] <= 0x20 || name[i] > 0x7e)
            return pt_fail(PT_ERR_USAGE, "device name has an unusable character at %zu", i);
    return PT_OK;
}

/* sha256WithRSAEncryption (NULL parameters) or ecdsa-with-SHA256 (none). */
static pt_err sigalg_make(X509 *issuer, X509_ALGOR **out)
{
    *out = NULL;
    EVP_PKEY *key = X509_get0_pubkey(issuer);
    int id = key != NULL ? EVP_PKEY_get_base_id(key) : NID_undef;
    int nid = id == EVP_PKEY_RSA  ? NID_sha256WithRSAEncryption
              : id == EVP_PKEY_EC ? NID_ecdsa_with_SHA256
                                  : NID_undef;
    if (nid == NID_undef)
        return pt_fail(PT_ERR_UNSUPPORTED, "issuing certificate's key is neither RSA nor EC");
    X509_ALGOR *alg = X509_ALGOR_new();
    if (alg == NULL || !X509_ALGOR_set0(alg, OBJ_nid2obj(nid),
                                        id == EVP_PKEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL)) {
        X509_ALGOR_free(alg);
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    }
    *out = alg;
    return PT_OK;
}

static pt_err serial_make(const lsc_params *p, ASN1_INTEGER **out)
{
    uint8_t rnd[LSC_SERIAL_LEN];
    const uint8_t *bytes = p->serial;
    size_t n = p->serial_len;
    *out = NULL;
    if (bytes == NULL) {
        /* An all-zero draw (2^-128) would be a zero serial: draw again. */
        do {
            if (RAND_bytes(rnd, sizeof rnd) != 1)
                return pt_fail_openssl(PT_ERR_OPENSSL, "no random bytes for the serial number");
        } while (memcmp(rnd, (const uint8_t[LSC_SERIAL_LEN]){0}, sizeof rnd) == 0);
        bytes = rnd;
        n = sizeof rnd;
    } else if (n == 0 || n > LSC_SERIAL_LEN) {
        return pt_fail(PT_ERR_USAGE, "serial number must have 1 to %d bytes", LSC_SERIAL_LEN);
    }
    BIGNUM *bn = BN_bin2bn(bytes, (int)n, NULL);
    if (bn != NULL && BN_is_zero(bn)) {
        BN_free(bn);
        return pt_fail(PT_ERR_USAGE, "serial number must not be zero");
    }
    /* Unsigned: BN_to_ASN1_INTEGER adds the 00 that keeps it positive. */
    *out = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    return *out != NULL ? PT_OK : pt_fail(PT_ERR_NOMEM, "out of memory");
}

static int utc_year(time_t t)
{
    struct tm tm;
    return gmtime_r(&t, &tm) != NULL ? tm.tm_year + 1900 : -1;
}

/* RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
static pt_err time_make(time_t t, ASN1_TIME **out)
{
    int year = utc_year(t);
    *out = NULL;
    if (year < 1950 || year > 9999)
        return pt_fail(PT_ERR_USAGE, "certificate time outside 1950-9999");
    *out = year < 2050 ? ASN1_UTCTIME_set(NULL, t) : ASN1_GENERALIZEDTIME_set(NULL, t);
    return *out != NULL ? PT_OK : pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode a time");
}

/* The CA subject attributes an LSC subject copies (§11). */
static bool subject_copies(int nid)
{
    return nid == NID_organizationName || nid == NID_organizationalUnitName ||
           nid == NID_localityName || nid == NID_stateOrProvinceName || nid == NID_countryName;
}

static pt_err subject_make(X509 *issuer, const char *device, X509_NAME **out)
{
    const X509_NAME *ca = X509_get_subject_name(issuer);
    X509_NAME *name = X509_NAME_new();
    *out = NULL;
    /* A plain type (not MBSTRING_*) keeps UTF8String whatever the string mask. */
    bool ok =
        name != NULL && X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                                   (const unsigned char *)device, -1, -1, 0) == 1;
    for (int i = 0; ok && i < X509_NAME_entry_count(ca); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(ca, i);
        /* set 0 with loc -1: a new RDN each, original string type kept. */
        if (subject_copies(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e))))
            ok = X509_NAME_add_entry(name, e, -1, 0) == 1;
    }
    if (!ok) {
        X509_NAME_free(name);
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot build the LSC subject");
    }
    *out = name;
    return PT_OK;
}

static bool exts_push(STACK_OF(X509_EXTENSION) * exts, int nid, int crit, void *value)
{
    X509_EXTENSION *e = value != NULL ? X509V3_EXT_i2d(nid, crit, value) : NULL;
    if (e == NULL || !sk_X509_EXTENSION_push(exts, e)) {
        X509_EXTENSION_free(e);
        return false;
    }
    return true;
}

static bool ext_basic_constraints(STACK_OF(X509_EXTENSION) * exts)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new(); /* CA FALSE: empty SEQUENCE */
    bool ok = exts_push(exts, NID_basic_constraints, 1, bc);
    BASIC_CONSTRAINTS_free(bc);
    return ok;
}

static bool ext_key_usage(STACK_OF(X509_EXTENSION) * exts)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    bool ok = ku != NULL && ASN1_BIT_STRING_set_bit(ku, 0, 1) && /* digitalSignature */
              ASN1_BIT_STRING_set_bit(ku, 2, 1) &&               /* keyEncipherment */
              exts_push(exts, NID_key_usage, 1, ku);
    ASN1_BIT_STRING_free(ku);
    return ok;
}

static bool ext_ext_key_usage(STACK_OF(X509_EXTENSION) * exts)
{
    static const int nids[] = {NID_server_auth, NID_client_auth, NID_ipsecEndSystem};
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    bool ok = eku != NULL;
    for (size_t i = 0; ok && i < sizeof nids / sizeof nids[0]; i++)
        ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(nids[i])) > 0;
    ok = ok && exts_push(exts, NID_ext_key_usage, 0, eku);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ok;
}

static bool ext_subject_alt_name(STACK_OF(X509_EXTENSION) * exts, const char *device)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
    bool ok = gens != NULL && gen != NULL && uri != NULL && ASN1_STRING_set(uri, device, -1);
    if (ok) {
        GENERAL_NAME_set0_value(gen, GEN_URI, uri);
        uri = NULL;
        ok = sk_GENERAL_NAME_push(gens, gen) > 0;
        if (ok)
            gen = NULL;
    }
    ok = ok && exts_push(exts, NID_subject_alt_name, 0, gens);
    ASN1_IA5STRING_free(uri);
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(gens);
    return ok;
}

/* The four extensions of §11, in order. */
static pt_err extensions_make(const char *device, STACK_OF(X509_EXTENSION) * *out)
{
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    *out = NULL;
    if (exts == NULL || !ext_basic_constraints(exts) || !ext_key_usage(exts) ||
        !ext_ext_key_usage(exts) || !ext_subject_alt_name(exts, device)) {
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot build the LSC extensions");
    }
    *out = exts;
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Public keys                                                              */

static const struct {
    uint8_t code;
    int nid;
} curves[] = {
    {CAPF_CURVE_P256, NID_X9_62_prime256v1},
    {CAPF_CURVE_P384, NID_secp384r1},
    {CAPF_CURVE_P521, NID_secp521r1},
};

/* The CAPF curve code of an EC key on a named curve, or -1. */
static int key_curve(const EVP_PKEY *key)
{
    char group[64] = "";
    size_t glen = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1)
        return -1;
    int nid = OBJ_sn2nid(group);
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++)
        if (curves[i].nid == nid)
            return curves[i].code;
    return -1;
}

/* RSA, or EC on one of the §7.5 curves with the curve named in the SPKI. */
static pt_err key_supported(const EVP_PKEY *key, const X509_PUBKEY *xpk)
{
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_RSA)
        return PT_OK;
    if (id != EVP_PKEY_EC)
        return pt_fail(PT_ERR_UNSUPPORTED, "public key is neither RSA nor EC");
    X509_ALGOR *alg = NULL;
    int ptype = V_ASN1_UNDEF;
    X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg, xpk);
    if (alg != NULL)
        X509_ALGOR_get0(NULL, &ptype, NULL, alg);
    if (ptype != V_ASN1_OBJECT || key_curve(key) < 0)
        return pt_fail(PT_ERR_UNSUPPORTED, "EC key is not on a named P-256, P-384 or P-521 curve");
    return PT_OK;
}

/* Decode exactly len bytes of SubjectPublicKeyInfo or PKCS#1 RSAPublicKey. */
static X509_PUBKEY *pubkey_decode(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509_PUBKEY *xpk = d2i_X509_PUBKEY(NULL, &p, (long)len);
    if (xpk != NULL && p == der + len && X509_PUBKEY_get0(xpk) != NULL)
        return xpk;
    X509_PUBKEY_free(xpk);
    ERR_clear_error();
    /* Known servers fall back to a bare RSAPublicKey (§10.2 step 7). */
    p = der;
    EVP_PKEY *rsa = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
    xpk = NULL;
    if (rsa != NULL && p == der + len && X509_PUBKEY_set(&xpk, rsa) != 1)
        xpk = NULL;
    EVP_PKEY_free(rsa);
    ERR_clear_error();
    return xpk;
}

pt_err lsc_public_key_parse(const uint8_t *der, size_t len, EVP_PKEY **key, uint8_t **spki,
                            size_t *spki_len)
{
    if (key != NULL)
        *key = NULL;
    if (spki != NULL) {
        *spki = NULL;
        *spki_len = 0;
    }
    if (der == NULL || len == 0 || len > PT_DER_CERT_MAX)
        return pt_fail(PT_ERR_FORMAT, "no public key, or one of an impossible size");
    X509_PUBKEY *xpk = pubkey_decode(der, len);
    if (xpk == NULL)
        return pt_fail(PT_ERR_FORMAT,
                       "public key is neither a DER SubjectPublicKeyInfo nor an RSAPublicKey");
    EVP_PKEY *pkey = X509_PUBKEY_get0(xpk);
    pt_err rc = key_supported(pkey, xpk);
    if (rc == PT_OK && spki != NULL) {
        /* Re-encoded, so that a BER input still gives a DER certificate. */
        unsigned char *out = NULL;
        int n = i2d_X509_PUBKEY(xpk, &out);
        if (n <= 0)
            rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode the public key");
        *spki = out;
        *spki_len = n > 0 ? (size_t)n : 0;
    }
    if (rc == PT_OK && key != NULL && EVP_PKEY_up_ref(pkey) == 1)
        *key = pkey;
    X509_PUBKEY_free(xpk);
    return rc;
}

static pt_err rsa_key_check(EVP_PKEY *key, unsigned want_bits)
{
    BIGNUM *n = NULL, *e = NULL;
    pt_err rc = PT_OK;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
        rc = pt_fail_openssl(PT_ERR_FORMAT, "cannot read the RSA key");
    else if ((unsigned)BN_num_bits(n) != want_bits)
        rc = pt_fail(PT_ERR_REFUSED, "RSA key has %d bits, %u were requested", BN_num_bits(n),
                     want_bits);
    else if (!BN_is_odd(n) || !BN_is_odd(e) || BN_cmp(e, BN_value_one()) <= 0)
        rc = pt_fail(PT_ERR_REFUSED, "RSA key has an even modulus or an unusable exponent");
    BN_free(n);
    BN_free(e);
    return rc;
}

static pt_err ec_key_check(EVP_PKEY *key, uint8_t want_curve)
{
    int curve = key_curve(key);
    if (curve != want_curve)
        return pt_fail(PT_ERR_REFUSED, "EC key is on curve code %d, curve %u was requested", curve,
                       want_curve);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int ok = ctx != NULL ? EVP_PKEY_public_check(ctx) : 0;
    EVP_PKEY_CTX_free(ctx);
    if (ok != 1)
        return pt_fail_openssl(PT_ERR_REFUSED, "EC public key fails the point check");
    return PT_OK;
}

pt_err lsc_public_key_check(const uint8_t *der, size_t len, uint8_t key_type, unsigned rsa_bits,
                            uint8_t curve)
{
    EVP_PKEY *key = NULL;
    pt_err rc = lsc_public_key_parse(der, len, &key, NULL, NULL);
    if (rc != PT_OK)
        return rc;
    int id = EVP_PKEY_get_base_id(key);
    if (key_type == CAPF_KEY_RSA)
        rc = id == EVP_PKEY_RSA ? rsa_key_check(key, rsa_bits)
                                : pt_fail(PT_ERR_REFUSED, "an RSA key was requested, got EC");
    else if (key_type == CAPF_KEY_EC)
        rc = id == EVP_PKEY_EC ? ec_key_check(key, curve)
                               : pt_fail(PT_ERR_REFUSED, "an EC key was requested, got RSA");
    else
        rc = pt_fail(PT_ERR_USAGE, "key type %u is not RSA (0) or EC (1)", key_type);
    EVP_PKEY_free(key);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* TBSCertificate                                                           */

/* Everything a TBS is made of, as OpenSSL objects ready for i2d. */
typedef struct tbs_parts {
    ASN1_INTEGER *serial;
    X509_ALGOR *sigalg;
    ASN1_TIME *not_before, *not_after;
    X509_NAME *subject;
    uint8_t *spki;
    size_t spki_len;
    STACK_OF(X509_EXTENSION) * exts;
} tbs_parts;

static void tbs_parts_free(tbs_parts *t)
{
    ASN1_INTEGER_free(t->serial);
    X509_ALGOR_free(t->sigalg);
    ASN1_TIME_free(t->not_before);
    ASN1_TIME_free(t->not_after);
    X509_NAME_free(t->subject);
    OPENSSL_free(t->spki);
    sk_X509_EXTENSION_pop_free(t->exts, X509_EXTENSION_free);
    memset(t, 0, sizeof *t);
}

static pt_err tbs_params_check(const lsc_params *p)
{
    if (p->issuer == NULL)
        return pt_fail(PT_ERR_USAGE, "no issuing certificate");
    pt_err rc = lsc_device_name_check(p->device_name);
    if (rc != PT_OK)
        return rc;
    if (p->not_after <= p->not_before)
        return pt_fail(PT_ERR_USAGE, "notAfter must be later than notBefore");
    return PT_OK;
}

static pt_err tbs_parts_make(const lsc_params *p, tbs_parts *t)
{
    pt_err rc = tbs_params_check(p);
    if (rc == PT_OK)
        rc = serial_make(p, &t->serial);
    if (rc == PT_OK)
        rc = sigalg_make(p->issuer, &t->sigalg);
    if (rc == PT_OK)
        rc = time_make(p->not_before, &t->not_before);
    if (rc == PT_OK)
        rc = time_make(p->not_after, &t->not_after);
    if (rc == PT_OK)
        rc = subject_make(p->issuer, p->device_name, &t->subject);
    if (rc == PT_OK)
        rc = lsc_public_key_parse(p->public_key, p->public_key_len, NULL, &t->spki, &t->spki_len);
    if (rc == PT_OK)
        rc = extensions_make(p->device_name, &t->exts);
    return rc;
}

/* The TBS body in field order (RFC 5280 §4.1), framed by the caller. */
static void tbs_body_write(pt_writer *w, const tbs_parts *t, X509 *issuer)
{
    static const uint8_t version_v3[] = {0x02, 0x01, 0x02}; /* INTEGER 2 */
    pt_writer part;

    pt_writer_init(&part, PT_DER_CERT_MAX);
    pt_writer_bytes(&part, version_v3, sizeof version_v3);
    put_framed(w, 0xa0, &part); /* [0] EXPLICIT Version */
    pt_writer_free(&part);

    put_item(w, t->serial, ASN1_ITEM_rptr(ASN1_INTEGER));
    put_item(w, t->sigalg, ASN1_ITEM_rptr(X509_ALGOR));
    /* Copied as the CA encoded it: OpenSSL re-emits a parsed name's bytes. */
    put_item(w, X509_get_subject_name(issuer), ASN1_ITEM_rptr(X509_NAME));

    pt_writer_init(&part, PT_DER_CERT_MAX);
    put_item(&part, t->not_before, ASN1_ITEM_rptr(ASN1_TIME));
    put_item(&part, t->not_after, ASN1_ITEM_rptr(ASN1_TIME));
    put_framed(w, 0x30, &part); /* Validity */
    pt_writer_free(&part);

    put_item(w, t->subject, ASN1_ITEM_rptr(X509_NAME));
    pt_writer_bytes(w, t->spki, t->spki_len);

    pt_writer_init(&part, PT_DER_CERT_MAX);
    put_item(&part, t->exts, ASN1_ITEM_rptr(X509_EXTENSIONS));
    put_framed(w, 0xa3, &part); /* [3] EXPLICIT Extensions */
    pt_writer_free(&part);
}

pt_err lsc_tbs_build(const lsc_params *p, uint8_t **tbs, size_t *len)
{
    tbs_parts t;
    pt_writer body, out;
    *tbs = NULL;
    *len = 0;
    memset(&t, 0, sizeof t);
    pt_err rc = tbs_parts_make(p, &t);
    if (rc != PT_OK) {
        tbs_parts_free(&t);
        /* The name may be what a phone sent: it is not echoed before it is checked. */
        return pt_err_context(rc, "cannot build the LSC");
    }
    pt_writer_init(&body, PT_DER_CERT_MAX);
    tbs_body_write(&body, &t, p->issuer);
    tbs_parts_free(&t);
    pt_writer_init(&out, PT_DER_CERT_MAX);
    put_framed(&out, 0x30, &body); /* TBSCertificate ::= SEQUENCE */
    pt_writer_free(&body);
    rc = pt_writer_finish(&out, tbs, len);
    if (rc != PT_OK)
        return pt_err_context(rc, "LSC TBSCertificate");
    return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Profile check                                                            */

typedef struct check_ctx {
    X509 *cert;
    X509 *issuer;
    const char *device;
    char *why;
    size_t whylen;
} check_ctx;

__attribute__((format(printf, 2, 3))) static bool mismatch(check_ctx *c, const char *fmt, ...)
{
    if (c->whylen == 0)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
    return false;
}

static bool check_serial(check_ctx *c)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(c->cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
    bool ok =
        bn != NULL && !BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bytes(bn) <= LSC_SERIAL_LEN;
    BN_free(bn);
    return ok || mismatch(c, "serial number is not a positive number of at most %d bytes",
                          LSC_SERIAL_LEN);
}

static bool check_sigalg(check_ctx *c)
{
    X509_ALGOR *want = NULL;
    if (sigalg_make(c->issuer, &want) != PT_OK)
        return mismatch(c, "issuing certificate's key is neither RSA nor EC");
    const X509_ALGOR *sig_outer = NULL;
    X509_get0_signature(NULL, &sig_outer, c->cert);
    bool ok = item_der_equal(want, X509_get0_tbs_sigalg(c->cert), ASN1_ITEM_rptr(X509_ALGOR)) &&
              item_der_equal(want, sig_outer, ASN1_ITEM_rptr(X509_ALGOR));
    X509_ALGOR_free(want);
    return ok || mismatch(c, "signature algorithm is not SHA-256 with the issuing key's type");
}

static bool check_issuer(check_ctx *c)
{
    bool ok = item_der_equal(X509_get_issuer_name(c->cert), X509_get_subject_name(c->issuer),
                             ASN1_ITEM_rptr(X509_NAME));
    return ok || mismatch(c, "issuer is not exactly the issuing certificate's subject");
}

/* A time is valid and uses UTCTime before 2050, GeneralizedTime from then. */
static bool time_encoding_ok(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    int want = tm.tm_year + 1900 < 2050 ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME;
    return ASN1_STRING_type(t) == want;
}

static bool check_validity(check_ctx *c)
{
    const ASN1_TIME *nb = X509_get0_notBefore(c->cert), *na = X509_get0_notAfter(c->cert);
    if (!time_encoding_ok(nb) || !time_encoding_ok(na))
        return mismatch(c, "validity times are not UTCTime before 2050 / GeneralizedTime after");
    int day = 0, sec = 0;
    if (ASN1_TIME_diff(&day, &sec, nb, na) != 1 || (day <= 0 && sec <= 0))
        return mismatch(c, "notAfter is not later than notBefore");
    return true;
}

static bool check_subject(check_ctx *c)
{
    X509_NAME *want = NULL;
    if (subject_make(c->issuer, c->device, &want) != PT_OK)
        return mismatch(c, "cannot build the expected subject");
    bool ok = item_der_equal(want, X509_get_subject_name(c->cert), ASN1_ITEM_rptr(X509_NAME));
    X509_NAME_free(want);
    return ok ||
           mismatch(c, "subject is not CN=%s followed by the CA's O, OU, L, ST, C", c->device);
}

static bool check_key(check_ctx *c)
{
    EVP_PKEY *key = X509_get0_pubkey(c->cert);
    bool ok = key != NULL && key_supported(key, X509_get_X509_PUBKEY(c->cert)) == PT_OK;
    return ok || mismatch(c, "public key is not RSA or EC on P-256, P-384 or P-521");
}

static bool check_extensions(check_ctx *c)
{
    static const char *const names[] = {"basicConstraints", "keyUsage", "extKeyUsage",
                                        "subjectAltName"};
    STACK_OF(X509_EXTENSION) *want = NULL;
    const STACK_OF(X509_EXTENSION) *have = X509_get0_extensions(c->cert);
    if (extensions_make(c->device, &want) != PT_OK)
        return mismatch(c, "cannot build the expected extensions");
    bool ok = sk_X509_EXTENSION_num(have) == sk_X509_EXTENSION_num(want) ||
              mismatch(c, "has %d extensions, the profile has %d", sk_X509_EXTENSION_num(have),
                       sk_X509_EXTENSION_num(want));
    for (int i = 0; ok && i < sk_X509_EXTENSION_num(want); i++) {
        ok = item_der_equal(sk_X509_EXTENSION_value(want, i), sk_X509_EXTENSION_value(have, i),
                            ASN1_ITEM_rptr(X509_EXTENSION)) ||
             mismatch(c, "extension %d is not the profile's %s", i + 1, names[i]);
    }
    sk_X509_EXTENSION_pop_free(want, X509_EXTENSION_free);
    return ok;
}

static bool check_shape(check_ctx *c)
{
    const ASN1_BIT_STRING *iuid = NULL, *suid = NULL;
    if (X509_get_version(c->cert) != X509_VERSION_3)
        return mismatch(c, "not a version 3 certificate");
    X509_get0_uids(c->cert, &iuid, &suid);
    if (iuid != NULL || suid != NULL)
        return mismatch(c, "has unique identifiers");
    return true;
}

pt_err lsc_profile_check(X509 *cert, X509 *issuer, const char *device, char *why, size_t whylen)
{
    check_ctx c = {cert, issuer, device, why, whylen};
    if (whylen > 0)
        why[0] = '\0';
    if (cert == NULL || issuer == NULL || lsc_device_name_check(device) != PT_OK) {
        mismatch(&c, "no certificate, no issuer or an unusable device name");
        return pt_fail(PT_ERR_USAGE, "LSC profile check: %s", whylen ? why : "bad arguments");
    }
    bool ok = check_shape(&c) && check_serial(&c) && check_sigalg(&c) && check_issuer(&c) &&
              check_validity(&c) && check_subject(&c) && check_key(&c) && check_extensions(&c);
    ERR_clear_error();
    if (!ok)
        return pt_fail(PT_ERR_REFUSED, "certificate does not match the LSC profile: %s",
                       whylen ? why : "mismatch");
    return PT_OK;
}
