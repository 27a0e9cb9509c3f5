/*
 * ctlclient: build, update, show and verify CTLFile.tlv and ITLFile.tlv with
 * USB security tokens; and manage those tokens.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "harden.h"
#include "log.h"
#include "pt_config.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: ctlclient [-v] COMMAND [OPTIONS]\n"
            "\n"
            "Certificate Trust Lists for Cisco IP phones, signed with security tokens.\n"
            "\n"
            "Commands:\n"
            "  create                  a new CTLFile.tlv from at least 2 security tokens\n"
            "  update                  a new CTLFile.tlv from a verified old one (add or remove\n"
            "                          tokens and servers; the lost-token procedure)\n"
            "  show FILE               every header field and record of a CTL or ITL file\n"
            "  verify FILE             check a CTL or ITL signature (--previous OLD: as a phone\n"
            "                          holding OLD does)\n"
            "  itl build               an ITLFile.tlv signed by the TFTP key or through hsmd\n"
            "  token list|check|pin|enroll\n"
            "                          list tokens, test a PIN, change a PIN, enrol a blank token\n"
            "\n"
            "Run 'ctlclient COMMAND --help' for the options of a command.\n"
            "\n"
            "Options:\n"
            "  -v, --verbose   show debug messages (PKCS#11 calls and their results)\n"
            "  --version       show the version\n"
            "  -h, --help      show this help\n");
}

int main(int argc, char **argv)
{
    pt_log_level level = PT_LOG_INFO;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            level = PT_LOG_DEBUG;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return PT_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("ctlclient %s\n", PT_VERSION);
            return PT_EXIT_OK;
        } else {
            pt_log_init("ctlclient", level);
            return pt_cli_usage_error("unknown option '%s'", argv[i]);
        }
    }
    pt_log_init("ctlclient", level);
    /* PINs pass through this process: keep them out of core files and swap. */
    pt_secure_heap_init();
    /* A TLS peer (tls:// certificates) or hsmd that closes early is an error to report, not a
       signal that ends the process before it can say what happened. */
    signal(SIGPIPE, SIG_IGN);
    if (pt_harden_process() != PT_OK)
        pt_log_warn("%s", pt_err_message());
    if (i >= argc) {
        usage(stderr);
        return PT_EXIT_USAGE;
    }
    const char *cmd = argv[i];
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"token", ctl_cmd_token}, {"create", ctl_cmd_create}, {"update", ctl_cmd_update},
        {"show", ctl_cmd_show},   {"verify", ctl_cmd_verify}, {"itl", ctl_cmd_itl},
    };
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(cmd, commands[k].name) == 0)
            return commands[k].run(argc - i, argv + i);
    return pt_cli_usage_error("unknown command '%s'", cmd);
}
