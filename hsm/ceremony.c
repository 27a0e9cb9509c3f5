#include "ceremony.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cert.h"
#include "key.h"
#include "log.h"

const char *hsm_key_label(hsm_key_role role)
{
    return role == HSM_KEY_CAPF ? HSM_LABEL_CAPF : HSM_LABEL_ITLRECOVERY;
}

long hsm_days_for_years(int years)
{
    time_t now = time(NULL);
    return (long)((pt_time_add_years(now, years) - now) / 86400);
}

pt_err hsm_itlrecovery_subject(const X509_NAME *capf_subject, X509_NAME **out)
{
    *out = NULL;
    X509_NAME *result = X509_NAME_new();
    bool have_cn = false, ok = result != NULL;
    for (int i = 0; ok && i < X509_NAME_entry_count(capf_subject); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(capf_subject, i);
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
        if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) == NID_commonName && !have_cn) {
            char cn[256];
            snprintf(cn, sizeof cn, "ITLRECOVERY_%.*s", ASN1_STRING_length(v),
                     (const char *)ASN1_STRING_get0_data(v));
            ok = X509_NAME_add_entry_by_NID(result, NID_commonName, MBSTRING_UTF8,
                                            (const unsigned char *)cn, -1, -1, 0) == 1;
            have_cn = true;
        } else {
            ok = X509_NAME_add_entry(result, e, -1, 0) == 1;
        }
    }
    if (ok && !have_cn)
        ok = X509_NAME_add_entry_by_NID(result, NID_commonName, MBSTRING_UTF8,
                                        (const unsigned char *)"ITLRECOVERY", -1, 0, 0) == 1;
    if (!ok) {
        X509_NAME_free(result);
        return pt_fail_openssl(PT_ERR_OPENSSL, "cannot build the ITLRecovery subject");
    }
    *out = result;
    return PT_OK;
}

pt_err hsm_key_exists(token *t, hsm_key_role role, bool *exists)
{
    unsigned keys = 0, certs = 0;
    *exists = false;
    pt_err rc = token_objects_count(t, hsm_key_label(role), TOKEN_OBJECT_PRIVATE_KEY, &keys);
    if (rc == PT_OK)
        rc = token_objects_count(t, hsm_key_label(role), TOKEN_OBJECT_CERTIFICATE, &certs);
    *exists = keys > 0 || certs > 0;
    return rc;
}

static const pt_cert_profile *profile_for(hsm_key_role role, int years, pt_cert_profile *p)
{
    memset(p, 0, sizeof *p);
    p->days = hsm_days_for_years(years);
    if (role == HSM_KEY_CAPF) {
        p->ca = true;
        p->path_len = 0; /* it issues LSCs only, never another CA */
        p->key_usage = "critical,digitalSignature,keyCertSign,cRLSign";
    } else {
        p->ca = false;
        p->path_len = -1;
        p->key_usage = "critical,digitalSignature";
    }
    return p;
}

pt_err hsm_key_create(token *t, hsm_key_role role, const hsm_key_params *p, bool replace,
                      X509 **cert)
{
    *cert = NULL;
    const char *label = hsm_key_label(role);
    if (role == HSM_KEY_ITLRECOVERY &&
        (p->spec.type != EVP_PKEY_RSA || (p->spec.bits != 2048 && p->spec.bits != 4096)))
        return pt_fail(PT_ERR_USAGE, "the ITLRecovery key signs ITL files, which need an RSA key "
                                     "of 2048 or 4096 bits");
    bool exists = false;
    pt_err rc = hsm_key_exists(t, role, &exists);
    if (rc == PT_OK && exists && !replace)
        rc = pt_fail(PT_ERR_EXISTS,
                     "the HSM token already holds a %s key or certificate; nothing was changed "
                     "(use 'hsmctl regenerate' to replace it)",
                     label);
    if (rc == PT_OK && exists) {
        unsigned removed = 0;
        rc = token_objects_destroy(t, label, &removed);
        if (rc == PT_OK)
            pt_log_warn("destroyed %u object%s labelled '%s'", removed, removed == 1 ? "" : "s",
                        label);
    }
    uint8_t id[16];
    token_key *key = NULL;
    pt_cert_profile profile;
    if (rc == PT_OK)
        rc = token_random_id(id, sizeof id);
    if (rc == PT_OK)
        rc = token_keypair_generate(t, &p->spec, label, id, sizeof id);
    if (rc == PT_OK)
        rc = token_key_find_by_label(t, label, id, sizeof id, &key);
    if (rc == PT_OK)
        rc = pt_cert_self_signed(token_key_pkey(key), p->subject,
                                 profile_for(role, p->years, &profile), cert);
    if (rc == PT_OK)
        rc = token_cert_store(t, *cert, label, id, sizeof id);
    if (rc != PT_OK) {
        X509_free(*cert);
        *cert = NULL;
    }
    token_key_free(key);
    return rc;
}
