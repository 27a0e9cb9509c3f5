/*
 * phonetrust-softhsm: provision SoftHSM2 token stores and tokens for tests,
 * demos and CI, without putting a PIN on a command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fileio.h"
#include "harden.h"
#include "log.h"
#include "pin.h"
#include "provision.h"
#include "pt_config.h"
#include "tty.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: phonetrust-softhsm [--module PATH] init DIR\n"
            "       phonetrust-softhsm [--module PATH] [--dir DIR] add-token LABEL\n"
            "                          [--pin-file FILE | --pin-fd N]\n"
            "                          [--so-pin-file FILE | --so-pin-fd N]\n"
            "\n"
            "Provision SoftHSM2 tokens for phonetrust tests, demos and CI.\n"
            "\n"
            "Commands:\n"
            "  init DIR         Create a token store of its own in DIR (DIR/softhsm2.conf and\n"
            "                   DIR/tokens) and print the line that selects it:\n"
            "                     export SOFTHSM2_CONF=DIR/softhsm2.conf\n"
            "  add-token LABEL  Create a token labelled LABEL in the store named by\n"
            "                   $SOFTHSM2_CONF (or --dir DIR) and print its PKCS#11 URI.\n"
            "\n"
            "Options:\n"
            "  --dir DIR            use the store created by 'init DIR'\n"
            "  --pin-file FILE      user PIN: the first line of FILE\n"
            "  --pin-fd N           user PIN: the next line read from descriptor N\n"
            "  --so-pin-file FILE   security officer PIN: the first line of FILE\n"
            "  --so-pin-fd N        security officer PIN: the next line from descriptor N\n"
            "  --module PATH        SoftHSM2 module (default %s)\n"
            "  -h, --help           show this help\n"
            "\n"
            "Without a PIN option the PIN is asked twice at the terminal. PINs are never\n"
            "taken from the command line or the environment.\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            PT_SOFTHSM_MODULE_PATH);
}

static int cmd_init(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return pt_cli_report(pt_fail_errno("%s", dir), "cannot create the store");
    char *abs = realpath(dir, NULL);
    if (abs == NULL)
        return pt_cli_report(pt_fail_errno("%s", dir), "cannot resolve the store directory");
    char tokens[4096], conf[4096], text[8192];
    int rc = PT_EXIT_FAIL;
    if (snprintf(tokens, sizeof tokens, "%s/tokens", abs) >= (int)sizeof tokens ||
        snprintf(conf, sizeof conf, "%s/softhsm2.conf", abs) >= (int)sizeof conf) {
        pt_cli_report(pt_fail(PT_ERR_LIMIT, "path too long"), dir);
        goto out;
    }
    if (mkdir(tokens, 0700) != 0 && errno != EEXIST) {
        pt_cli_report(pt_fail_errno("%s", tokens), "cannot create the token directory");
        goto out;
    }
    snprintf(text, sizeof text,
             "# SoftHSM2 token store created by phonetrust-softhsm\n"
             "directories.tokendir = %s\n"
             "objectstore.backend = file\n"
             "log.level = ERROR\n"
             "slots.removable = false\n",
             tokens);
    pt_err e = pt_file_write_atomic(conf, text, strlen(text), 0600);
    if (e != PT_OK) {
        pt_cli_report(e, "cannot write the SoftHSM2 configuration");
        goto out;
    }
    printf("export SOFTHSM2_CONF=%s\n", conf);
    rc = PT_EXIT_OK;
out:
    free(abs);
    return rc;
}

/* A PIN from its source; at the terminal it is asked twice. */
static pt_err read_pin_confirmed(const token_pin_source *src, const char *what, char **out)
{
    char prompt[128];
    snprintf(prompt, sizeof prompt, "%s: ", what);
    pt_err rc = token_pin_read(src, prompt, out);
    if (rc != PT_OK || !token_pin_source_is_prompt(src))
        return rc;
    char *again = NULL;
    snprintf(prompt, sizeof prompt, "%s again: ", what);
    rc = token_pin_read(src, prompt, &again);
    if (rc == PT_OK && strcmp(*out, again) != 0)
        rc = pt_fail(PT_ERR_USAGE, "the two %ss differ", what);
    token_pin_free(again);
    if (rc != PT_OK) {
        token_pin_free(*out);
        *out = NULL;
    }
    return rc;
}

static int cmd_add_token(const char *module, const char *label, const token_pin_source *pin_src,
                         const token_pin_source *so_src)
{
    if (getenv("SOFTHSM2_CONF") == NULL)
        return pt_cli_usage_error("no token store: set SOFTHSM2_CONF or give --dir DIR");
    char *pin = NULL, *so_pin = NULL;
    token_module *m = NULL;
    token_info info;
    pt_err rc = read_pin_confirmed(pin_src, "User PIN", &pin);
    if (rc == PT_OK)
        rc = read_pin_confirmed(so_src, "SO PIN", &so_pin);
    if (rc == PT_OK)
        rc = token_module_open(module, &m);
    if (rc == PT_OK)
        rc = token_provision(m, label, so_pin, pin, &info);
    token_pin_free(pin);
    token_pin_free(so_pin);
    token_module_close(m);
    if (rc != PT_OK)
        return pt_cli_report(rc, "cannot create the token");
    fprintf(stderr, "phonetrust-softhsm: created token '%s', serial %s\n", info.label, info.serial);
    printf("pkcs11:token=%s;serial=%s\n", info.label, info.serial);
    return PT_EXIT_OK;
}

int main(int argc, char **argv)
{
    pt_log_init(argv[0], PT_LOG_WARN);
    pt_secure_heap_init();
    (void)pt_harden_process();

    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"module", required_argument, NULL, 'm'},
        {"pin-file", required_argument, NULL, 'p'},
        {"pin-fd", required_argument, NULL, 'P'},
        {"so-pin-file", required_argument, NULL, 's'},
        {"so-pin-fd", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *module = PT_SOFTHSM_MODULE_PATH;
    token_pin_source pin = {TOKEN_PIN_FROM_PROMPT, NULL, -1};
    token_pin_source so_pin = {TOKEN_PIN_FROM_PROMPT, NULL, -1};
    char conf[4096];
    int c;
    /* Options may come before or after the command (getopt moves them forward). */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        pt_err rc = PT_OK;
        switch (c) {
        case 'd':
            if (snprintf(conf, sizeof conf, "%s/softhsm2.conf", optarg) >= (int)sizeof conf)
                return pt_cli_usage_error("--dir: path too long");
            setenv("SOFTHSM2_CONF", conf, 1);
            break;
        case 'm':
            module = optarg;
            break;
        case 'p':
            rc = token_pin_source_from_uri(optarg, &pin);
            break;
        case 'P':
            rc = token_pin_source_from_fd(optarg, &pin);
            break;
        case 's':
            rc = token_pin_source_from_uri(optarg, &so_pin);
            break;
        case 'S':
            rc = token_pin_source_from_fd(optarg, &so_pin);
            break;
        case 'h':
            usage(stdout);
            return PT_EXIT_OK;
        default:
            return pt_cli_usage_error("unknown option");
        }
        if (rc != PT_OK)
            return pt_cli_usage_error("%s", pt_err_message());
    }
    if (optind >= argc)
        return pt_cli_usage_error("a command is needed: init or add-token");
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    if (strcmp(cmd, "init") == 0) {
        if (nargs != 1)
            return pt_cli_usage_error("usage: init DIR");
        return cmd_init(argv[optind + 1]);
    }
    if (strcmp(cmd, "add-token") == 0) {
        if (nargs != 1)
            return pt_cli_usage_error("usage: add-token LABEL");
        return cmd_add_token(module, argv[optind + 1], &pin, &so_pin);
    }
    return pt_cli_usage_error("unknown command '%s'", cmd);
}
