/*
 * capfctl add | set | show | delete | unlock | certs | find: one device at a
 * time, or a search.
 */
#include <getopt.h>
#include <string.h>

#include <openssl/crypto.h>

#include "capfctl.h"
#include "cert.h"
#include "cli.h"
#include "log.h"

/* ---- add and set ---------------------------------------------------------- */

static void device_usage(FILE *out, const char *cmd)
{
    fprintf(out,
            "Usage: capfctl %s DEVICE [--description TEXT]\n"
            "           [--operation install|delete|troubleshoot|none]\n"
            "           [--auth null|string|lsc|mic]\n"
            "           [--auth-string DIGITS | --auth-string-fd N | --generate-string\n"
            "            [--string-length N]]\n"
            "           [--key SPEC] [--deadline TIME | --no-deadline]\n"
            "\n"
            "%s\n"
            "\n"
            "DEVICE is SEP or ATA and the 12 hex digits of a MAC address (SEP58971ECC97C1),\n"
            "or CSF, BOT, TCT or TAB and 1 to 12 letters, digits, '.', '_' or '-' (a Jabber\n"
            "softphone); at most 15 characters, letters in any case (stored in upper case).\n"
            "\n"
            "Options:\n"
            "  --description TEXT    free text, up to 128 bytes of UTF-8\n"
            "  --operation OP        what capfd does when the phone connects: install (or\n"
            "                        upgrade) an LSC, delete it, troubleshoot (fetch the\n"
            "                        phone's LSC or MIC) or none. Changing it sets the status\n"
            "                        to '<operation> pending'.\n"
            "  --auth MODE           how the phone authenticates: null (not at all), string\n"
            "                        (a one-time authentication string), lsc or mic (its\n"
            "                        existing certificate). Default null.\n"
            "  --auth-string DIGITS  the authentication string, 4 to 10 digits (implies\n"
            "                        --auth string). A command line is visible to other\n"
            "                        local users: prefer --generate-string or\n"
            "                        --auth-string-fd.\n"
            "  --auth-string-fd N    read the authentication string from file descriptor N\n"
            "  --generate-string     generate a random authentication string and print it\n"
            "                        once (implies --auth string)\n"
            "  --string-length N     digits to generate, 4 to 10 (default 8)\n"
            "  --key SPEC            the key the phone generates: default (capfd's setting),\n"
            "                        rsa:1024, rsa:2048, rsa:3072, rsa:4096, ec:P-256,\n"
            "                        ec:P-384, ec:P-521 or ec-preferred:P-256/rsa:2048\n"
            "  --deadline TIME       the operation completes by TIME (ISO 8601 UTC,\n"
            "                        2026-11-23 or 2026-11-23T12:00:00Z) or not at all\n"
            "  --no-deadline         remove the deadline\n"
            "  --db URL              the device store\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            cmd,
            strcmp(cmd, "add") == 0
                ? "Add a device. Its operation is none and its authentication null unless\n"
                  "given; with --operation it is pending at once."
                : "Change some of a device's settings; the others stay as they are.");
}

#define DEVICE_LONGOPTS                                                                            \
    {"db", required_argument, NULL, CAPFCTL_OPT_DB},                                               \
        {"description", required_argument, NULL, CAPFCTL_OPT_DESCRIPTION},                         \
        {"operation", required_argument, NULL, CAPFCTL_OPT_OPERATION},                             \
        {"auth", required_argument, NULL, CAPFCTL_OPT_AUTH},                                       \
        {"auth-string", required_argument, NULL, CAPFCTL_OPT_AUTH_STRING},                         \
        {"auth-string-fd", required_argument, NULL, CAPFCTL_OPT_AUTH_STRING_FD},                   \
        {"generate-string", no_argument, NULL, CAPFCTL_OPT_GENERATE_STRING},                       \
        {"string-length", required_argument, NULL, CAPFCTL_OPT_STRING_LENGTH},                     \
        {"key", required_argument, NULL, CAPFCTL_OPT_KEY},                                         \
        {"deadline", required_argument, NULL, CAPFCTL_OPT_DEADLINE},                               \
        {"no-deadline", no_argument, NULL, CAPFCTL_OPT_NO_DEADLINE},                               \
        {"help", no_argument, NULL, 'h'},                                                          \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }

/* What add and set read from their options. */
typedef struct device_opts {
    capf_store_update u;
    bool string_given; /* --auth-string or --auth-string-fd */
    bool generate;
    long length;
    bool any; /* some setting was given */
    char string[CAPF_DEVICE_AUTH_STRING_MAX + 6];
} device_opts;

/* One option of add/set; returns -1 to go on or an exit code. */
static int device_opt(capfctl_ctx *ctx, device_opts *o, int c, const char *arg)
{
    capf_store_update *u = &o->u;
    o->any = o->any || (c != CAPFCTL_OPT_DB);
    switch (c) {
    case CAPFCTL_OPT_DB:
        ctx->db = arg;
        return -1;
    case CAPFCTL_OPT_DESCRIPTION:
        u->description = arg;
        return capf_device_description_check(arg) == PT_OK
                   ? -1
                   : pt_cli_usage_error("--description: %s", pt_err_message());
    case CAPFCTL_OPT_OPERATION:
        u->set_operation = true;
        return capf_device_op_parse(arg, &u->operation) == PT_OK
                   ? -1
                   : pt_cli_usage_error("--operation: %s", pt_err_message());
    case CAPFCTL_OPT_AUTH:
        u->set_auth = true;
        return capf_device_auth_parse(arg, &u->auth) == PT_OK
                   ? -1
                   : pt_cli_usage_error("--auth: %s", pt_err_message());
    case CAPFCTL_OPT_AUTH_STRING:
        if (o->string_given || capf_device_auth_string_check(arg) != PT_OK)
            return pt_cli_usage_error("--auth-string: %s",
                                      o->string_given ? "given twice" : pt_err_message());
        snprintf(o->string, sizeof o->string, "%s", arg);
        o->string_given = true;
        return -1;
    case CAPFCTL_OPT_AUTH_STRING_FD:
        if (o->string_given || capfctl_read_string_fd(arg, o->string, sizeof o->string) != PT_OK)
            return pt_cli_usage_error("--auth-string-fd: %s", o->string_given
                                                                  ? "a string was given already"
                                                                  : pt_err_message());
        o->string_given = true;
        return -1;
    case CAPFCTL_OPT_GENERATE_STRING:
        o->generate = true;
        return -1;
    case CAPFCTL_OPT_STRING_LENGTH:
        return pt_cli_parse_long(arg, CAPF_DEVICE_AUTH_STRING_MIN, CAPF_DEVICE_AUTH_STRING_MAX,
                                 &o->length)
                   ? -1
                   : pt_cli_usage_error("--string-length needs a number from 4 to 10");
    case CAPFCTL_OPT_KEY:
        u->set_key = true;
        return capf_device_key_parse(arg, &u->key) == PT_OK
                   ? -1
                   : pt_cli_usage_error("--key: %s", pt_err_message());
    case CAPFCTL_OPT_DEADLINE:
        u->set_deadline = u->has_deadline = true;
        return pt_time_parse_iso8601(arg, &u->deadline) == PT_OK
                   ? -1
                   : pt_cli_usage_error("--deadline: %s", pt_err_message());
    case CAPFCTL_OPT_NO_DEADLINE:
        u->set_deadline = true;
        u->has_deadline = false;
        return -1;
    default:
        return pt_cli_usage_error("unknown option (see 'capfctl add --help')");
    }
}

/* Checks across options, and the string: generated now, or given. */
static int device_opts_finish(device_opts *o, bool adding)
{
    capf_store_update *u = &o->u;
    if (o->generate && o->string_given)
        return pt_cli_usage_error("give --auth-string, --auth-string-fd or --generate-string, "
                                  "not two of them");
    if (o->length != 0 && !o->generate)
        return pt_cli_usage_error("--string-length goes with --generate-string");
    if (o->generate && capf_device_auth_string_generate(o->length ? (size_t)o->length
                                                                  : CAPF_DEVICE_AUTH_STRING_DEFAULT,
                                                        o->string, sizeof o->string) != PT_OK)
        return pt_cli_report(PT_ERR_OPENSSL, "cannot generate a string");
    if (o->generate || o->string_given) {
        u->auth_string = o->string;
        if (!u->set_auth) {
            u->set_auth = true;
            u->auth = CAPF_DEVICE_AUTH_STRING;
        }
        if (u->auth != CAPF_DEVICE_AUTH_STRING)
            return pt_cli_usage_error("an authentication string goes with --auth string, not "
                                      "--auth %s",
                                      capf_device_auth_name(u->auth));
    }
    if (adding && u->set_auth && u->auth == CAPF_DEVICE_AUTH_STRING && u->auth_string == NULL)
        return pt_cli_usage_error("--auth string needs --auth-string DIGITS, --auth-string-fd N "
                                  "or --generate-string");
    if (!adding && !o->any)
        return pt_cli_usage_error("nothing to change: give at least one option (see 'capfctl "
                                  "set --help')");
    if (u->set_deadline && u->has_deadline && u->deadline < time(NULL))
        pt_log_warn("the deadline is in the past: capfd will not perform the operation");
    return -1;
}

static int device_change_cmd(capfctl_ctx *ctx, int argc, char **argv, bool adding)
{
    static const struct option longopts[] = {DEVICE_LONGOPTS};
    device_opts o;
    memset(&o, 0, sizeof o);
    int c, code = -1;
    optind = 1;
    while (code < 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            device_usage(stdout, argv[0]);
            return PT_EXIT_OK;
        }
        code = c == '?' ? PT_EXIT_USAGE : device_opt(ctx, &o, c, optarg);
    }
    char name[CAPF_DEVICE_NAME_ADMIN_MAX + 1];
    if (code < 0 && argc - optind != 1)
        code = pt_cli_usage_error("'%s' needs one DEVICE", argv[0]);
    if (code < 0 && capfctl_device_arg(argv[optind], name) != PT_EXIT_OK)
        code = PT_EXIT_USAGE;
    if (code < 0)
        code = device_opts_finish(&o, adding);
    if (code >= 0) {
        OPENSSL_cleanse(o.string, sizeof o.string);
        return code;
    }
    capf_store *st = NULL;
    pt_err rc = capfctl_store_open(ctx, adding, &st);
    if (rc == PT_OK)
        rc = adding ? capf_store_device_add(st, name, &o.u, &ctx->who)
                    : capf_store_device_set(st, name, &o.u, &ctx->who);
    capf_store_close(st);
    if (rc == PT_OK) {
        printf("device %s %s\n", name, adding ? "added" : "changed");
        if (o.generate)
            printf("authentication string for %s: %s\n"
                   "(shown only now: give it to the phone's user for this one operation)\n",
                   name, o.string);
    }
    OPENSSL_cleanse(o.string, sizeof o.string);
    return pt_cli_report(rc, adding ? "device not added" : "device not changed");
}

int capfctl_cmd_add(capfctl_ctx *ctx, int argc, char **argv)
{
    return device_change_cmd(ctx, argc, argv, true);
}

int capfctl_cmd_set(capfctl_ctx *ctx, int argc, char **argv)
{
    return device_change_cmd(ctx, argc, argv, false);
}

/* ---- commands on one DEVICE with few options ------------------------------ */

typedef struct simple_opts {
    bool json;
    bool pem;
    const char *name; /* canonical DEVICE */
    char buf[CAPF_DEVICE_NAME_ADMIN_MAX + 1];
} simple_opts;

/*
 * Parse "COMMAND DEVICE [--json] [--pem] [--db URL]" (allowed says which of
 * --json and --pem the command takes). Returns -1 to go on or an exit code.
 */
static int simple_parse(capfctl_ctx *ctx, int argc, char **argv, const char *help, bool json_ok,
                        bool pem_ok, simple_opts *o)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, CAPFCTL_OPT_DB},
        {"json", no_argument, NULL, CAPFCTL_OPT_JSON},
        {"pem", no_argument, NULL, CAPFCTL_OPT_PEM},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            fputs("\n  --db URL    the device store (default: $CAPFCTL_DB, "
                  "else " CAPF_STORE_DEFAULT_URL
                  ")\n\nExit status: 0 success, 1 failure, 2 usage error.\n",
                  stdout);
            return PT_EXIT_OK;
        } else if (c == CAPFCTL_OPT_DB) {
            ctx->db = optarg;
        } else if (c == CAPFCTL_OPT_JSON && json_ok) {
            o->json = true;
        } else if (c == CAPFCTL_OPT_PEM && pem_ok) {
            o->pem = true;
        } else {
            return pt_cli_usage_error("unknown option for '%s' (see 'capfctl %s --help')", argv[0],
                                      argv[0]);
        }
    }
    if (argc - optind != 1)
        return pt_cli_usage_error("'%s' needs one DEVICE", argv[0]);
    int code = capfctl_device_arg(argv[optind], o->buf);
    o->name = o->buf;
    return code == PT_EXIT_OK ? -1 : code;
}

json_object *capfctl_device_json(const capf_store_device *d)
{
    char key[CAPF_DEVICE_KEY_TEXT_MAX], status[CAPF_DEVICE_STATUS_TEXT_MAX];
    capf_device_key_format(&d->key, key);
    capfctl_status_text(d, status);
    bool has_status = d->status_state != CAPF_DEVICE_STATE_NONE;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(d->name));
    json_object_object_add(o, "description", json_object_new_string(d->description));
    json_object_object_add(o, "operation",
                           json_object_new_string(capf_device_op_name(d->operation)));
    json_object_object_add(o, "auth_mode", json_object_new_string(capf_device_auth_name(d->auth)));
    json_object_object_add(o, "auth_string_set", json_object_new_boolean(d->auth_string[0]));
    json_object_object_add(o, "auth_failures", json_object_new_int64(d->auth_failures));
    json_object_object_add(o, "locked", json_object_new_boolean(d->locked));
    json_object_object_add(o, "key", json_object_new_string(key));
    json_object_object_add(o, "deadline", capfctl_json_time(d->deadline, d->has_deadline));
    json_object *s = json_object_new_object();
    json_object_object_add(s, "text", json_object_new_string(status));
    json_object_object_add(s, "operation",
                           has_status ? json_object_new_string(capf_device_op_name(d->status_op))
                                      : NULL);
    json_object_object_add(s, "state",
                           json_object_new_string(capf_device_state_name(d->status_state)));
    json_object_object_add(s, "reason", json_object_new_string(d->status_reason));
    json_object_object_add(s, "time", capfctl_json_time(d->status_time, has_status));
    json_object_object_add(o, "status", s);
    json_object_object_add(o, "created", capfctl_json_time(d->created, true));
    json_object_object_add(o, "changed", capfctl_json_time(d->changed, true));
    json_object *lsc = NULL;
    if (d->has_lsc) {
        lsc = json_object_new_object();
        json_object_object_add(lsc, "serial", json_object_new_string(d->lsc.serial));
        json_object_object_add(lsc, "key_type", json_object_new_string(d->lsc.key_type));
        json_object_object_add(lsc, "subject", json_object_new_string(d->lsc.subject));
        json_object_object_add(lsc, "issuer", json_object_new_string(d->lsc.issuer));
        json_object_object_add(lsc, "not_before", capfctl_json_time(d->lsc.not_before, true));
        json_object_object_add(lsc, "not_after", capfctl_json_time(d->lsc.not_after, true));
        json_object_object_add(lsc, "issued_at", capfctl_json_time(d->lsc.at, true));
        if (d->lsc.pem != NULL)
            json_object_object_add(lsc, "pem", json_object_new_string(d->lsc.pem));
    }
    json_object_object_add(o, "lsc", lsc);
    return o;
}

static json_object *events_json(const capf_store_event *ev, size_t n)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "at", capfctl_json_time(ev[i].at, true));
        json_object_object_add(e, "event", json_object_new_string(ev[i].event));
        json_object_object_add(e, "detail", json_object_new_string(ev[i].detail));
        json_object_object_add(e, "actor", json_object_new_string(ev[i].actor));
        json_object_object_add(e, "user", ev[i].user ? json_object_new_string(ev[i].user) : NULL);
        json_object_object_add(e, "session",
                               ev[i].session ? json_object_new_string(ev[i].session) : NULL);
        json_object_object_add(e, "peer", ev[i].peer ? json_object_new_string(ev[i].peer) : NULL);
        json_object_array_add(arr, e);
    }
    return arr;
}

static void device_print_auth(const capf_store_device *d)
{
    printf("authentication: %s", capf_device_auth_name(d->auth));
    if (d->auth == CAPF_DEVICE_AUTH_STRING)
        printf(" (string %s)", d->auth_string[0] ? "set" : "not set or used");
    if (d->locked)
        printf(", LOCKED after %u wrong strings (capfctl unlock %s)", d->auth_failures, d->name);
    else if (d->auth_failures > 0)
        printf(", %u wrong string%s in a row", d->auth_failures, d->auth_failures == 1 ? "" : "s");
    printf("\n");
}

static void device_print(const capf_store_device *d)
{
    char key[CAPF_DEVICE_KEY_TEXT_MAX], status[CAPF_DEVICE_STATUS_TEXT_MAX], t1[21], t2[21];
    capf_device_key_format(&d->key, key);
    capfctl_status_text(d, status);
    printf("device:         %s\n", d->name);
    printf("description:    %s\n", d->description);
    printf("operation:      %s\n", capf_device_op_name(d->operation));
    device_print_auth(d);
    printf("key:            %s\n", key);
    capfctl_time_text(d->deadline, d->has_deadline, t1);
    printf("deadline:       %s\n", d->has_deadline ? t1 : "none");
    capfctl_time_text(d->status_time, d->status_state != CAPF_DEVICE_STATE_NONE, t1);
    printf("status:         %s%s%s\n", status, t1[0] ? " since " : "", t1);
    capfctl_time_text(d->created, true, t1);
    capfctl_time_text(d->changed, true, t2);
    printf("created:        %s\nlast change:    %s\n", t1, t2);
    if (!d->has_lsc) {
        printf("LSC:            none\n");
        return;
    }
    capfctl_time_text(d->lsc.not_before, true, t1);
    capfctl_time_text(d->lsc.not_after, true, t2);
    printf("LSC:            serial %s, %s\n                valid %s to %s%s\n", d->lsc.serial,
           d->lsc.key_type, t1, t2, d->lsc.not_after < time(NULL) ? " (EXPIRED)" : "");
}

static void events_print(const capf_store_event *ev, size_t n, size_t limit)
{
    printf("history%s:\n", n == limit ? " (latest events)" : "");
    for (size_t i = 0; i < n; i++) {
        char at[21];
        capfctl_time_text(ev[i].at, true, at);
        printf("  %s  %-13s %s", at, ev[i].event, ev[i].actor);
        if (ev[i].user)
            printf(" %s", ev[i].user);
        if (ev[i].session)
            printf(" session %s", ev[i].session);
        if (ev[i].peer)
            printf(" from %s", ev[i].peer);
        printf(": %s\n", ev[i].detail);
    }
}

int capfctl_cmd_show(capfctl_ctx *ctx, int argc, char **argv)
{
    enum { SHOW_HISTORY = 20 };
    simple_opts o;
    int code = simple_parse(ctx, argc, argv,
                            "Usage: capfctl show DEVICE [--json]\n\n"
                            "A device's settings, the status of its last operation, its LSC and\n"
                            "its history (the latest 20 events; all of them with --json). The\n"
                            "authentication string itself is shown only by 'capfctl report'.\n",
                            true, false, &o);
    if (code >= 0)
        return code;
    capf_store *st = NULL;
    capf_store_device d;
    capf_store_event *ev = NULL;
    size_t n = 0;
    memset(&d, 0, sizeof d);
    pt_err rc = capfctl_store_open(ctx, false, &st);
    if (rc == PT_OK)
        rc = capf_store_device_get(st, o.name, &d);
    if (rc == PT_OK)
        rc = capf_store_history_list(st, o.name, o.json ? 0 : SHOW_HISTORY, &ev, &n);
    capf_store_close(st);
    if (rc == PT_OK && o.json) {
        json_object *j = capfctl_device_json(&d);
        json_object_object_add(j, "history", events_json(ev, n));
        capfctl_json_print(j);
        json_object_put(j);
    } else if (rc == PT_OK) {
        device_print(&d);
        events_print(ev, n, SHOW_HISTORY);
    }
    capf_store_events_free(ev, n);
    capf_store_device_free(&d);
    return pt_cli_report(rc, NULL);
}

int capfctl_cmd_delete(capfctl_ctx *ctx, int argc, char **argv)
{
    simple_opts o;
    int code = simple_parse(ctx, argc, argv,
                            "Usage: capfctl delete DEVICE\n\n"
                            "Delete a device. The certificates issued to it and its history\n"
                            "are kept ('capfctl certs DEVICE' still lists them).\n",
                            false, false, &o);
    if (code >= 0)
        return code;
    capf_store *st = NULL;
    pt_err rc = capfctl_store_open(ctx, false, &st);
    if (rc == PT_OK)
        rc = capf_store_device_delete(st, o.name, &ctx->who);
    capf_store_close(st);
    if (rc == PT_OK)
        printf("device %s deleted (its certificates and history are kept)\n", o.name);
    return pt_cli_report(rc, "device not deleted");
}

int capfctl_cmd_unlock(capfctl_ctx *ctx, int argc, char **argv)
{
    simple_opts o;
    int code = simple_parse(ctx, argc, argv,
                            "Usage: capfctl unlock DEVICE\n\n"
                            "Clear the lock capfd sets after too many wrong authentication\n"
                            "strings in a row, and the count of wrong strings. Consider giving\n"
                            "the device a new string as well (capfctl set --generate-string).\n",
                            false, false, &o);
    if (code >= 0)
        return code;
    capf_store *st = NULL;
    pt_err rc = capfctl_store_open(ctx, false, &st);
    if (rc == PT_OK)
        rc = capf_store_device_unlock(st, o.name, &ctx->who);
    capf_store_close(st);
    if (rc == PT_OK)
        printf("device %s unlocked\n", o.name);
    return pt_cli_report(rc, "device not unlocked");
}

static const char *cert_kind_name(capf_store_cert_kind kind)
{
    return kind == CAPF_STORE_CERT_ISSUED        ? "issued"
           : kind == CAPF_STORE_CERT_FETCHED_LSC ? "fetched-lsc"
                                                 : "fetched-mic";
}

static json_object *cert_json(const capf_store_cert *c)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string(cert_kind_name(c->kind)));
    json_object_object_add(o, "serial", json_object_new_string(c->serial));
    json_object_object_add(o, "subject", json_object_new_string(c->subject));
    json_object_object_add(o, "issuer", json_object_new_string(c->issuer));
    json_object_object_add(o, "key_type", json_object_new_string(c->key_type));
    json_object_object_add(o, "not_before", capfctl_json_time(c->not_before, true));
    json_object_object_add(o, "not_after", capfctl_json_time(c->not_after, true));
    json_object_object_add(o, "at", capfctl_json_time(c->at, true));
    json_object_object_add(o, "current", json_object_new_boolean(c->current));
    json_object_object_add(o, "superseded_at",
                           capfctl_json_time(c->superseded_at, c->superseded_at != 0));
    json_object_object_add(o, "pem", json_object_new_string(c->pem));
    return o;
}

static void cert_print(const capf_store_cert *c, bool pem)
{
    char nb[21], na[21], at[21], sup[21];
    capfctl_time_text(c->not_before, true, nb);
    capfctl_time_text(c->not_after, true, na);
    capfctl_time_text(c->at, true, at);
    capfctl_time_text(c->superseded_at, c->superseded_at != 0, sup);
    printf("%-11s serial %s, %s\n", cert_kind_name(c->kind), c->serial, c->key_type);
    printf("            subject %s\n            issuer  %s\n", c->subject, c->issuer);
    printf("            valid %s to %s; %s %s", nb, na,
           c->kind == CAPF_STORE_CERT_ISSUED ? "issued" : "fetched", at);
    if (c->current)
        printf("; current LSC");
    else if (sup[0])
        printf("; superseded %s", sup);
    printf("\n");
    if (pem)
        printf("%s", c->pem);
}

int capfctl_cmd_certs(capfctl_ctx *ctx, int argc, char **argv)
{
    simple_opts o;
    int code = simple_parse(ctx, argc, argv,
                            "Usage: capfctl certs DEVICE [--json] [--pem]\n\n"
                            "Every certificate recorded for DEVICE: the LSCs capfd issued to it\n"
                            "(current and superseded), then the LSCs and MICs fetched from it on\n"
                            "troubleshoot. Also for a deleted device. --pem prints each\n"
                            "certificate too (--json always has it).\n",
                            true, true, &o);
    if (code >= 0)
        return code;
    capf_store *st = NULL;
    capf_store_cert *certs = NULL;
    size_t n = 0;
    pt_err rc = capfctl_store_open(ctx, false, &st);
    if (rc == PT_OK)
        rc = capf_store_certs_list(st, o.name, &certs, &n);
    capf_store_close(st);
    if (rc == PT_OK && o.json) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(arr, cert_json(&certs[i]));
        capfctl_json_print(arr);
        json_object_put(arr);
    } else if (rc == PT_OK) {
        if (n == 0)
            printf("no certificate recorded for %s\n", o.name);
        for (size_t i = 0; i < n; i++)
            cert_print(&certs[i], o.pem);
    }
    capf_store_certs_free(certs, n);
    return pt_cli_report(rc, NULL);
}

/* ---- find ------------------------------------------------------------------ */

static void find_usage(FILE *out)
{
    fprintf(out, "Usage: capfctl find [--lsc-status STATUS] [--operation OP]\n"
                 "                    [--auth-string DIGITS | --auth-string-fd N] [--json]\n"
                 "\n"
                 "Devices that match every option given (all devices without options), in\n"
                 "name order.\n"
                 "\n"
                 "  --lsc-status STATUS   the status of the last operation: pending, success,\n"
                 "                        failed or none, optionally after the operation it is\n"
                 "                        about: 'install failed', install-failed, delete-success\n"
                 "  --operation OP        the scheduled operation: install, delete, troubleshoot\n"
                 "                        or none\n"
                 "  --auth-string DIGITS  the device with this authentication string\n"
                 "  --auth-string-fd N    the same, the string read from file descriptor N\n"
                 "  --json                as a JSON array\n"
                 "  --db URL              the device store\n");
}

/* "failed", "install failed" or "install-failed". */
static int lsc_status_parse(const char *text, capf_store_filter *f)
{
    const char *sep = strpbrk(text, " -");
    const char *state = sep ? sep + 1 : text;
    if (sep != NULL) {
        char op[32];
        snprintf(op, sizeof op, "%.*s", (int)(sep - text < 31 ? sep - text : 31), text);
        if (capf_device_op_parse(op, &f->status_op) != PT_OK)
            return pt_cli_usage_error("--lsc-status: %s", pt_err_message());
        f->by_status_op = true;
    }
    if (capf_device_state_parse(state, &f->state) != PT_OK)
        return pt_cli_usage_error("--lsc-status: %s", pt_err_message());
    f->by_state = true;
    return -1;
}

static void find_print(const capf_store_device *list, size_t n)
{
    printf("%-15s %-7s %-12s %-32s %s\n", "DEVICE", "AUTH", "OPERATION", "STATUS", "LSC EXPIRY");
    for (size_t i = 0; i < n; i++) {
        char status[CAPF_DEVICE_STATUS_TEXT_MAX], expiry[21];
        capfctl_status_text(&list[i], status);
        capfctl_time_text(list[i].lsc.not_after, list[i].has_lsc, expiry);
        printf("%-15s %-7s %-12s %-32s %s\n", list[i].name, capf_device_auth_name(list[i].auth),
               capf_device_op_name(list[i].operation), status, expiry[0] ? expiry : "-");
    }
}

static int find_opts(capfctl_ctx *ctx, int argc, char **argv, capf_store_filter *f, bool *json,
                     char *string, size_t string_len)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, CAPFCTL_OPT_DB},
        {"json", no_argument, NULL, CAPFCTL_OPT_JSON},
        {"lsc-status", required_argument, NULL, CAPFCTL_OPT_LSC_STATUS},
        {"operation", required_argument, NULL, CAPFCTL_OPT_OPERATION},
        {"auth-string", required_argument, NULL, CAPFCTL_OPT_AUTH_STRING},
        {"auth-string-fd", required_argument, NULL, CAPFCTL_OPT_AUTH_STRING_FD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, code = -1;
    optind = 1;
    while (code < 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            find_usage(stdout);
            code = PT_EXIT_OK;
        } else if (c == CAPFCTL_OPT_DB) {
            ctx->db = optarg;
        } else if (c == CAPFCTL_OPT_JSON) {
            *json = true;
        } else if (c == CAPFCTL_OPT_LSC_STATUS) {
            code = lsc_status_parse(optarg, f);
        } else if (c == CAPFCTL_OPT_OPERATION) {
            f->by_operation = true;
            if (capf_device_op_parse(optarg, &f->operation) != PT_OK)
                code = pt_cli_usage_error("--operation: %s", pt_err_message());
        } else if (c == CAPFCTL_OPT_AUTH_STRING || c == CAPFCTL_OPT_AUTH_STRING_FD) {
            pt_err rc = c == CAPFCTL_OPT_AUTH_STRING
                            ? capf_device_auth_string_check(optarg)
                            : capfctl_read_string_fd(optarg, string, string_len);
            if (rc == PT_OK && c == CAPFCTL_OPT_AUTH_STRING)
                snprintf(string, string_len, "%s", optarg);
            f->auth_string = string;
            if (rc != PT_OK)
                code = pt_cli_usage_error(
                    "%s: %s", c == CAPFCTL_OPT_AUTH_STRING ? "--auth-string" : "--auth-string-fd",
                    pt_err_message());
        } else {
            code = pt_cli_usage_error("unknown option for 'find' (see 'capfctl find --help')");
        }
    }
    if (code < 0 && optind != argc)
        code = pt_cli_usage_error("'find' takes no arguments, only options");
    return code;
}

int capfctl_cmd_find(capfctl_ctx *ctx, int argc, char **argv)
{
    capf_store_filter f;
    bool json = false;
    char string[CAPF_DEVICE_AUTH_STRING_MAX + 6] = "";
    memset(&f, 0, sizeof f);
    int code = find_opts(ctx, argc, argv, &f, &json, string, sizeof string);
    if (code >= 0) {
        OPENSSL_cleanse(string, sizeof string);
        return code;
    }
    capf_store *st = NULL;
    capf_store_device *list = NULL;
    size_t n = 0;
    pt_err rc = capfctl_store_open(ctx, false, &st);
    if (rc == PT_OK)
        rc = capf_store_device_find(st, &f, &list, &n);
    capf_store_close(st);
    OPENSSL_cleanse(string, sizeof string);
    if (rc == PT_OK && json) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(arr, capfctl_device_json(&list[i]));
        capfctl_json_print(arr);
        json_object_put(arr);
    } else if (rc == PT_OK && n == 0) {
        fprintf(stderr, "no device matches\n");
    } else if (rc == PT_OK) {
        find_print(list, n);
    }
    capf_store_devices_free(list, n);
    return pt_cli_report(rc, NULL);
}
