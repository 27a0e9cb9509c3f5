/*
 * capfctl: the administrator's command for the CAPF server's devices.
 */
#include "capfctl.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cert.h"
#include "cli.h"
#include "harden.h"
#include "log.h"
#include "pt_config.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: capfctl [--db URL] COMMAND [OPTIONS]\n"
            "\n"
            "Devices of the CAPF server (capfd): the certificate operation scheduled for each\n"
            "phone, how it authenticates, and every certificate issued to it.\n"
            "\n"
            "Commands:\n"
            "  add DEVICE      add a device\n"
            "  set DEVICE      change a device's settings\n"
            "  show DEVICE     a device's settings, status, LSC and history\n"
            "  delete DEVICE   delete a device (its certificates and history are kept)\n"
            "  unlock DEVICE   clear the lock set after too many wrong authentication strings\n"
            "  certs DEVICE    every certificate issued to or fetched from a device\n"
            "  find            devices by status, scheduled operation or authentication string\n"
            "  report          every device as CSV, for a spreadsheet\n"
            "  import FILE     add or change devices from a CSV file: all of it or nothing\n"
            "\n"
            "Run 'capfctl COMMAND --help' for the options of a command.\n"
            "\n"
            "Options:\n"
            "  --db URL     the device store (default: $CAPFCTL_DB, else\n"
            "               %s)\n"
            "  --version    show the version\n"
            "  -h, --help   show this help\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            CAPF_STORE_DEFAULT_URL);
}

pt_err capfctl_store_open(const capfctl_ctx *ctx, bool create, capf_store **st)
{
    pt_err rc = create ? capf_store_open(ctx->db, st) : capf_store_open_existing(ctx->db, st);
    if (rc == PT_ERR_NOT_FOUND)
        return rc;
    return rc == PT_OK ? rc : pt_err_context(rc, "cannot open the CAPF store");
}

int capfctl_device_arg(const char *text, char out[CAPF_DEVICE_NAME_ADMIN_MAX + 1])
{
    if (capf_device_name_normalize(text, out) != PT_OK)
        return pt_cli_usage_error("%s", pt_err_message());
    return PT_EXIT_OK;
}

pt_err capfctl_read_string_fd(const char *text, char *out, size_t outlen)
{
    long fd = -1;
    out[0] = '\0';
    if (!pt_cli_parse_long(text, 0, 1024, &fd))
        return pt_fail(PT_ERR_USAGE, "--auth-string-fd needs a file descriptor number");
    char buf[64];
    size_t used = 0;
    /* One byte at a time: stop at the end of the line, leave the rest for others. */
    while (used < sizeof buf) {
        ssize_t n = read((int)fd, buf + used, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            OPENSSL_cleanse(buf, sizeof buf);
            return pt_fail_errno("cannot read the authentication string from descriptor %ld", fd);
        }
        if (n == 0 || buf[used] == '\n')
            break;
        used++;
    }
    if (used > 0 && buf[used - 1] == '\r')
        used--;
    pt_err rc = PT_OK;
    if (used >= outlen || used == sizeof buf) {
        rc = pt_fail(PT_ERR_USAGE, "the authentication string from descriptor %ld is too long", fd);
    } else {
        memcpy(out, buf, used);
        out[used] = '\0';
        rc = capf_device_auth_string_check(out);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    if (rc != PT_OK)
        OPENSSL_cleanse(out, outlen);
    return rc;
}

void capfctl_time_text(time_t t, bool present, char out[21])
{
    if (!present) {
        out[0] = '\0';
        return;
    }
    pt_time_iso8601(t, out);
}

json_object *capfctl_json_time(time_t t, bool present)
{
    char text[21];
    if (!present)
        return NULL;
    pt_time_iso8601(t, text);
    return json_object_new_string(text);
}

void capfctl_json_print(json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
}

void capfctl_status_text(const capf_store_device *d, char out[CAPF_DEVICE_STATUS_TEXT_MAX])
{
    capf_device_status_format(d->status_op, d->status_state, d->status_reason, out);
}

/* "alice (uid 1000)", with the sudo user when there is one, for the history. */
static void actor_init(capfctl_ctx *ctx)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    uid_t uid = getuid();
    const char *name = "unknown";
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL)
        name = found->pw_name;
    const char *sudo = getenv("SUDO_USER");
    if (sudo != NULL && uid == 0)
        snprintf(ctx->user, sizeof ctx->user, "%.64s (uid %u) via sudo by %.64s", name,
                 (unsigned)uid, sudo);
    else
        snprintf(ctx->user, sizeof ctx->user, "%.64s (uid %u)", name, (unsigned)uid);
    ctx->who.program = "capfctl";
    ctx->who.user = ctx->user;
    ctx->who.session = NULL;
    ctx->who.peer = NULL;
}

typedef struct capfctl_command {
    const char *name;
    int (*run)(capfctl_ctx *ctx, int argc, char **argv);
} capfctl_command;

static const capfctl_command commands[] = {
    {"add", capfctl_cmd_add},       {"set", capfctl_cmd_set},       {"show", capfctl_cmd_show},
    {"delete", capfctl_cmd_delete}, {"unlock", capfctl_cmd_unlock}, {"certs", capfctl_cmd_certs},
    {"find", capfctl_cmd_find},     {"report", capfctl_cmd_report}, {"import", capfctl_cmd_import},
};

int main(int argc, char **argv)
{
    capfctl_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    pt_log_init("capfctl", PT_LOG_INFO);
    const char *env = getenv("CAPFCTL_DB");
    ctx.db = env != NULL && env[0] != '\0' ? env : CAPF_STORE_DEFAULT_URL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return PT_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("capfctl %s\n", PT_VERSION);
            return PT_EXIT_OK;
        } else if (strcmp(argv[i], "--db") == 0) {
            if (i + 1 == argc)
                return pt_cli_usage_error("--db needs a store URL (e.g. %s)",
                                          CAPF_STORE_DEFAULT_URL);
            ctx.db = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            ctx.db = argv[i] + 5;
        } else {
            return pt_cli_usage_error("unknown option '%s'", argv[i]);
        }
    }
    if (i >= argc) {
        usage(stderr);
        return PT_EXIT_USAGE;
    }
    /* Authentication strings pass through this process: keep them out of core files. */
    if (pt_harden_process() != PT_OK)
        pt_log_warn("%s", pt_err_message());
    actor_init(&ctx);
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(argv[i], commands[c].name) == 0)
            return commands[c].run(&ctx, argc - i, argv + i);
    return pt_cli_usage_error("unknown command '%s'", argv[i]);
}
