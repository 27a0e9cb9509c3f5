#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "ctlbuild.h"
#include "tlv_codes.h"

bool ctl_common_opt(ctl_common_opts *o, int opt, const char *arg, int *exit_code)
{
    pt_err rc = PT_OK;
    *exit_code = PT_EXIT_OK;
    switch (opt) {
    case CTL_OPT_MODULE:
        o->module = arg;
        break;
    case CTL_OPT_PIN_FD:
        rc = token_pin_source_from_fd(arg, &o->pin);
        o->pin_fd_given = true;
        break;
    case CTL_OPT_NEW_PIN_FD:
        rc = token_pin_source_from_fd(arg, &o->new_pin);
        o->new_pin_fd_given = true;
        break;
    case CTL_OPT_ALLOW_FINAL_TRY:
        o->allow_final_try = true;
        break;
    case CTL_OPT_JSON:
        o->json = true;
        break;
    default:
        return false;
    }
    if (rc != PT_OK)
        *exit_code = pt_cli_usage_error("%s", pt_err_message());
    return true;
}

pt_err ctl_login_opts(const ctl_common_opts *o, const char *uri_pin_source,
                      token_pin_source *storage, token_login_opts *out)
{
    memset(out, 0, sizeof *out);
    out->allow_final_try = o->allow_final_try;
    out->new_pin = o->new_pin_fd_given ? &o->new_pin : NULL;
    if (o->pin_fd_given) {
        out->pin = &o->pin;
    } else if (uri_pin_source != NULL) {
        pt_err rc = token_pin_source_from_uri(uri_pin_source, storage);
        if (rc != PT_OK)
            return rc;
        out->pin = storage;
    }
    return PT_OK;
}

void ctl_file_opts_init(ctl_file_opts *f)
{
    memset(f, 0, sizeof *f);
    f->digest = TLV_DIGEST_SHA1;
}

bool ctl_file_opt(ctl_file_opts *f, int opt, const char *arg, int *exit_code)
{
    long secs = 0;
    *exit_code = PT_EXIT_OK;
    switch (opt) {
    case CTL_OPT_DIGEST:
        f->has_digest = true;
        if (!ctl_digest_parse(arg, &f->digest))
            *exit_code = pt_cli_usage_error("--digest takes sha1 or sha512");
        return true;
    case CTL_OPT_TIMESTAMP:
        f->has_timestamp = true;
        if (!ctl_timestamp_parse(arg, &f->timestamp))
            *exit_code = pt_cli_usage_error("--timestamp takes Unix seconds (0 to 4294967295)");
        return true;
    case CTL_OPT_TLS_TIMEOUT:
        if (!pt_cli_parse_long(arg, 1, 600, &secs))
            *exit_code = pt_cli_usage_error("--tls-timeout takes 1 to 600 seconds");
        else
            f->tls_timeout_ms = (int)secs * 1000;
        return true;
    default:
        return false;
    }
}
