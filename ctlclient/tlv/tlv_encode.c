#include "tlv_encode.h"

#include "der.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>

#include "bytes.h"
#include "tlv_codes.h"

/* Attribute types written by short name (§7.4.1); every other type as a dotted OID. */
static const struct {
    int nid;
    const char *name;
} name_types[] = {
    {NID_commonName, "CN"},
    {NID_localityName, "L"},
    {NID_stateOrProvinceName, "ST"},
    {NID_organizationName, "O"},
    {NID_organizationalUnitName, "OU"},
    {NID_countryName, "C"},
    {NID_streetAddress, "STREET"},
    {NID_domainComponent, "DC"},
    {NID_userId, "UID"},
};

static pt_err name_type_write(pt_writer *w, const ASN1_OBJECT *obj)
{
    int nid = OBJ_obj2nid(obj);
    for (size_t i = 0; nid != NID_undef && i < sizeof name_types / sizeof name_types[0]; i++) {
        if (name_types[i].nid == nid) {
            pt_writer_bytes(w, name_types[i].name, strlen(name_types[i].name));
            return PT_OK;
        }
    }
    /* OBJ_obj2txt returns the full length even when the buffer is too small. */
    char small[128];
    int n = OBJ_obj2txt(small, sizeof small, obj, 1);
    if (n <= 0)
        return pt_fail_openssl(PT_ERR_UNSUPPORTED, "name attribute type has no OID");
    if ((size_t)n < sizeof small) {
        pt_writer_bytes(w, small, (size_t)n);
        return PT_OK;
    }
    char *big = OPENSSL_malloc((size_t)n + 1);
    if (big == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    OBJ_obj2txt(big, n + 1, obj, 1);
    pt_writer_bytes(w, big, (size_t)n);
    OPENSSL_free(big);
    return PT_OK;
}

/* RFC 4514 §2.4 escaping, restricted as §7.4.1 says (no #hex form, no escaping of non-ASCII). */
static void name_value_escape(pt_writer *w, const unsigned char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = v[i];
        if (c == '\0') {
            pt_writer_bytes(w, "\\00", 3);
            continue;
        }
        bool special = strchr("\\\"+,;<>", c) != NULL;
        bool leading = i == 0 && (c == '#' || c == ' ');
        bool trailing = i == n - 1 && c == ' ';
        if (special || leading || trailing)
            pt_writer_u8(w, '\\');
        pt_writer_u8(w, c);
    }
}

static pt_err name_entry_write(pt_writer *w, const X509_NAME_ENTRY *e)
{
    pt_err rc = name_type_write(w, X509_NAME_ENTRY_get_object(e));
    if (rc != PT_OK)
        return rc;
    pt_writer_u8(w, '=');
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (n < 0) {
        char oid[80];
        OBJ_obj2txt(oid, sizeof oid, X509_NAME_ENTRY_get_object(e), 1);
        return pt_fail_openssl(PT_ERR_UNSUPPORTED,
                               "name attribute %s does not hold a character string", oid);
    }
    name_value_escape(w, utf8, (size_t)n);
    OPENSSL_free(utf8);
    return PT_OK;
}

pt_err tlv_name_render(const X509_NAME *name, char **out)
{
    *out = NULL;
    if (name == NULL)
        return pt_fail(PT_ERR_USAGE, "no name to render");
    pt_writer w;
    /* The text and its NUL must fit one element. */
    pt_writer_init(&w, TLV_MAX_ELEMENT);
    /* X509_NAME keeps entries in encoding order, one per attribute, so multi-valued RDNs
       come out flattened without looking at X509_NAME_ENTRY_set. */
    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        if (i > 0)
            pt_writer_u8(&w, ',');
        pt_err rc = name_entry_write(&w, X509_NAME_get_entry(name, i));
        if (rc != PT_OK) {
            pt_writer_free(&w);
            return rc;
        }
    }
    pt_writer_u8(&w, '\0');
    uint8_t *buf = NULL;
    size_t len = 0;
    pt_err rc = pt_writer_finish(&w, &buf, &len);
    if (rc == PT_ERR_LIMIT)
        return pt_fail(rc, "name text is longer than %u bytes", TLV_MAX_ELEMENT - 1);
    if (rc == PT_OK)
        *out = (char *)buf;
    return rc;
}

pt_err tlv_serial_encode(const ASN1_INTEGER *serial, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (serial == NULL)
        return pt_fail(PT_ERR_USAGE, "no serial number to encode");
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    if (bn == NULL)
        return pt_fail_openssl(PT_ERR_FORMAT, "invalid serial number");
    pt_err rc = PT_OK;
    int n = BN_num_bytes(bn);
    if (BN_is_negative(bn)) {
        rc = pt_fail(PT_ERR_UNSUPPORTED, "negative serial numbers cannot be written");
    } else if ((unsigned)n > TLV_MAX_ELEMENT) {
        rc = pt_fail(PT_ERR_LIMIT, "serial number of %d bytes does not fit an element", n);
    } else {
        /* Zero has no bytes in minimal form; write it as one 0x00 so the element is not empty. */
        size_t outlen = n > 0 ? (size_t)n : 1;
        *out = OPENSSL_zalloc(outlen);
        if (*out == NULL) {
            rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        } else {
            BN_bn2bin(bn, *out);
            *len = outlen;
        }
    }
    BN_free(bn);
    return rc;
}

static pt_err rsa_public_key_der(EVP_PKEY *pkey, uint8_t **out, size_t *len)
{
    int n = i2d_PublicKey(pkey, NULL);
    if (n <= 0)
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode RSA public key");
    uint8_t *buf = OPENSSL_malloc((size_t)n);
    if (buf == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    unsigned char *p = buf;
    if (i2d_PublicKey(pkey, &p) != n) {
        OPENSSL_free(buf);
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot encode RSA public key");
    }
    *out = buf;
    *len = (size_t)n;
    return PT_OK;
}

/* Field size in bytes of a named-curve EC key (what each coordinate is padded to). */
static pt_err ec_field_bytes(EVP_PKEY *pkey, size_t *bytes)
{
    char group[64] = "";
    size_t glen = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1)
        return pt_fail_openssl(PT_ERR_UNSUPPORTED, "EC key without a named curve");
    EC_GROUP *g = EC_GROUP_new_by_curve_name(OBJ_sn2nid(group));
    if (g == NULL)
        return pt_fail_openssl(PT_ERR_UNSUPPORTED, "unknown EC curve %s", group);
    *bytes = ((size_t)EC_GROUP_get_degree(g) + 7) / 8;
    EC_GROUP_free(g);
    return PT_OK;
}

static pt_err ec_point_uncompressed(EVP_PKEY *pkey, uint8_t **out, size_t *len)
{
    size_t flen = 0;
    pt_err rc = ec_field_bytes(pkey, &flen);
    if (rc != PT_OK)
        return rc;
    BIGNUM *x = NULL, *y = NULL;
    uint8_t *buf = OPENSSL_malloc(1 + 2 * flen);
    if (buf == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
    } else if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
               EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
               BN_bn2binpad(x, buf + 1, (int)flen) < 0 ||
               BN_bn2binpad(y, buf + 1 + flen, (int)flen) < 0) {
        rc = pt_fail_openssl(PT_ERR_OPENSSL, "cannot read EC public point");
    } else {
        buf[0] = 0x04; /* uncompressed point, X9.62 */
        *out = buf;
        *len = 1 + 2 * flen;
        buf = NULL;
    }
    OPENSSL_free(buf);
    BN_free(x);
    BN_free(y);
    return rc;
}

pt_err tlv_public_key_encode(EVP_PKEY *pkey, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (pkey == NULL)
        return pt_fail(PT_ERR_USAGE, "no public key to encode");
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        return rsa_public_key_der(pkey, out, len);
    case EVP_PKEY_EC:
        return ec_point_uncompressed(pkey, out, len);
    default:
        return pt_fail(PT_ERR_UNSUPPORTED, "%s keys cannot be written (only RSA and EC)",
                       OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
    }
}

/* A DER INTEGER in minimal form (no redundant leading 00 or FF byte). */
static bool der_integer_minimal(pt_reader *r)
{
    pt_reader v;
    uint8_t tag = 0, b0 = 0, b1 = 0;
    if (pt_der_read(r, &tag, &v, NULL, NULL) != PT_OK || tag != 0x02 ||
        pt_reader_remaining(&v) == 0)
        return false;
    if (pt_reader_remaining(&v) == 1)
        return true;
    pt_reader_u8(&v, &b0);
    pt_reader_u8(&v, &b1);
    return !(b0 == 0x00 && b1 < 0x80) && !(b0 == 0xff && b1 >= 0x80);
}

/* Is an RSA subjectPublicKey exactly one DER RSAPublicKey { INTEGER, INTEGER }? */
static bool rsa_bits_are_der(const uint8_t *p, size_t n)
{
    pt_reader r, seq;
    uint8_t tag = 0;
    pt_reader_init(&r, p, n);
    pt_err_clear();
    return pt_der_read(&r, &tag, &seq, NULL, NULL) == PT_OK && tag == 0x30 && pt_reader_done(&r) &&
           der_integer_minimal(&seq) && der_integer_minimal(&seq) && pt_reader_done(&seq);
}

pt_err tlv_cert_public_key_encode(X509 *x, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    EVP_PKEY *pkey = X509_get0_pubkey(x);
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
    if (pkey == NULL || bits == NULL)
        return pt_fail(PT_ERR_FORMAT, "certificate without a usable public key");
    const uint8_t *p = ASN1_STRING_get0_data(bits);
    size_t n = (size_t)ASN1_STRING_length(bits);
    bool as_is = false;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        as_is = rsa_bits_are_der(p, n);
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        size_t field = 0;
        as_is =
            n > 0 && p[0] == 0x04 && ec_field_bytes(pkey, &field) == PT_OK && n == 1 + 2 * field;
    }
    if (!as_is)
        return tlv_public_key_encode(pkey, out, len);
    if (n > TLV_MAX_ELEMENT)
        return pt_fail(PT_ERR_LIMIT, "public key does not fit an element");
    *out = OPENSSL_memdup(p, n);
    if (*out == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    *len = n;
    return PT_OK;
}

pt_err tlv_cert_signature(const X509 *x, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (x == NULL)
        return pt_fail(PT_ERR_USAGE, "no certificate");
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *alg = NULL;
    X509_get0_signature(&sig, &alg, x);
    if (sig == NULL)
        return pt_fail(PT_ERR_FORMAT, "certificate has no signature");
    /* A signature is whole octets; unused bits would make "the bytes" ambiguous. */
    if ((sig->flags & ASN1_STRING_FLAG_BITS_LEFT) != 0 && (sig->flags & 0x07) != 0)
        return pt_fail(PT_ERR_FORMAT, "certificate signature is not a whole number of bytes");
    int n = ASN1_STRING_length(sig);
    if (n < 0 || (unsigned)n > TLV_MAX_ELEMENT)
        return pt_fail(PT_ERR_LIMIT, "certificate signature does not fit an element");
    *out = OPENSSL_malloc(n > 0 ? (size_t)n : 1);
    if (*out == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    if (n > 0)
        memcpy(*out, ASN1_STRING_get0_data(sig), (size_t)n);
    *len = (size_t)n;
    return PT_OK;
}
