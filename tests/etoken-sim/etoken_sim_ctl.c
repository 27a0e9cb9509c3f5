/*
 * etoken-sim-ctl: show and change the eToken simulator's state file, which
 * libetoken-sim.so reads on every call (README.md).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "esim_state.h"
#include "log.h"

static const char esim_ctl_usage[] =
    "Usage: etoken-sim-ctl [--state FILE] COMMAND [ARGUMENTS]\n"
    "\n"
    "Show or change what the eToken simulator (libetoken-sim.so) reports for a token.\n"
    "SERIAL is the token's serial number as the backend shows it (trailing blanks removed).\n"
    "\n"
    "Commands:\n"
    "  show [SERIAL]        print the state of one token, or of every token in the file\n"
    "  set-tries SERIAL N   set the count of consecutive wrong PINs to N (0 to max tries)\n"
    "  lock SERIAL          lock the token for good, as a wrong PIN after the last try does\n"
    "  reset SERIAL         back to a fresh token: unlocked, no wrong PIN, no fault,\n"
    "                       no default PIN\n"
    "  default-pin SERIAL on|off\n"
    "                       the PIN must be changed (C_SetPIN) before signing or creating\n"
    "                       keys and objects\n"
    "  fault SERIAL none|removed|sign-device-error|remove-on-sign\n"
    "                       removed: the token is out of its slot; sign-device-error:\n"
    "                       signing fails with CKR_DEVICE_ERROR; remove-on-sign: the next\n"
    "                       C_Sign or C_SignFinal removes the token\n"
    "\n"
    "Options:\n"
    "  --state FILE         the state file (default: $ETOKEN_SIM_STATE, else\n"
    "                       etoken-sim.state next to $SOFTHSM2_CONF)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Environment: ETOKEN_SIM_STATE, SOFTHSM2_CONF, ETOKEN_SIM_MAX_TRIES (default 15; must\n"
    "match the one the module sees).\n"
    "Each change prints the token's new state. Exit status: 0 done, 1 failed, 2 bad usage.\n";

/* One line of output: the record as in the state file, plus what it means. */
static void esim_ctl_print(const esim_token *t, unsigned long max_tries)
{
    char serial[ESIM_SERIAL_TEXT_MAX];
    esim_serial_encode(t->serial, t->serial_len, serial);
    printf("serial=%s wrong=%lu max=%lu locked=%s default-pin=%s fault=%s pin=%s\n", serial,
           t->wrong, max_tries, esim_token_is_locked(t, max_tries) ? "yes" : "no",
           t->default_pin ? "yes" : "no", esim_fault_name(t->fault),
           esim_token_pin_state(t, max_tries));
}

static int esim_ctl_show(const char *path, const char *serial_arg, unsigned long max_tries)
{
    esim_state st;
    esim_state_init(&st);
    pt_err rc = esim_state_load(path, &st);
    if (rc != PT_OK)
        return pt_cli_report(rc, NULL);
    if (serial_arg != NULL) {
        uint8_t serial[ESIM_SERIAL_MAX];
        size_t len;
        esim_token t;
        if (!esim_serial_trim(serial_arg, strlen(serial_arg), serial, &len) || len == 0) {
            esim_state_free(&st);
            return pt_cli_usage_error("'%s' is not a token serial number (1 to %d characters)",
                                      serial_arg, ESIM_SERIAL_MAX);
        }
        esim_state_get(&st, serial, len, &t);
        esim_ctl_print(&t, max_tries);
    } else {
        for (size_t i = 0; i < st.ntokens; i++)
            esim_ctl_print(&st.tokens[i], max_tries);
        if (st.ntokens == 0)
            fprintf(stderr, "%s: no token in %s: every token is fresh (no wrong PIN, no fault)\n",
                    pt_log_progname(), path);
    }
    esim_state_free(&st);
    return PT_EXIT_OK;
}

typedef enum esim_ctl_op {
    ESIM_CTL_SET_TRIES,
    ESIM_CTL_LOCK,
    ESIM_CTL_RESET,
    ESIM_CTL_DEFAULT_PIN,
    ESIM_CTL_FAULT,
} esim_ctl_op;

typedef struct esim_ctl_change {
    esim_ctl_op op;
    unsigned long tries;
    bool default_pin;
    esim_fault fault;
} esim_ctl_change;

/* Apply a change to one token under the state lock. */
static int esim_ctl_update(const char *path, const uint8_t *serial, size_t serial_len,
                           const esim_ctl_change *change, unsigned long max_tries)
{
    esim_state st;
    esim_token t;
    int lock_fd = -1;

    esim_state_init(&st);
    pt_err rc = esim_state_lock(path, &lock_fd);
    if (rc == PT_OK)
        rc = esim_state_load(path, &st);
    if (rc != PT_OK)
        goto out;
    esim_state_get(&st, serial, serial_len, &t);
    switch (change->op) {
    case ESIM_CTL_SET_TRIES:
        t.wrong = change->tries;
        break;
    case ESIM_CTL_LOCK:
        t.locked = true;
        t.wrong = max_tries + 1;
        break;
    case ESIM_CTL_RESET:
        esim_token_init(&t, serial, serial_len);
        break;
    case ESIM_CTL_DEFAULT_PIN:
        t.default_pin = change->default_pin;
        break;
    case ESIM_CTL_FAULT:
        t.fault = change->fault;
        break;
    }
    rc = esim_state_put(&st, &t);
    if (rc == PT_OK)
        rc = esim_state_save(path, &st);
out:
    esim_state_unlock(lock_fd);
    esim_state_free(&st);
    if (rc != PT_OK)
        return pt_cli_report(rc, NULL);
    esim_ctl_print(&t, max_tries);
    return PT_EXIT_OK;
}

static bool esim_ctl_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"state", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *state_opt = NULL;
    char *state_path = NULL;
    unsigned long max_tries = 0;
    esim_ctl_change change = {0};
    int ret = PT_EXIT_OK;
    int c;

    pt_log_init(argv[0], PT_LOG_INFO);
    opterr = 0; /* reported below, with the hint to --help */
    /* '+': options end at the command, whose own arguments follow it. */
    while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (c) {
        case 's':
            state_opt = optarg;
            break;
        case 'h':
            fputs(esim_ctl_usage, stdout);
            return PT_EXIT_OK;
        default:
            return pt_cli_usage_error("unknown option or missing argument: '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return pt_cli_usage_error("no command given");
    const char *cmd = argv[optind];
    char **args = argv + optind + 1;
    int nargs = argc - optind - 1;
    for (int i = 0; i < nargs; i++) {
        if (esim_ctl_is_help(args[i])) {
            fputs(esim_ctl_usage, stdout);
            return PT_EXIT_OK;
        }
    }

    pt_err rc = esim_config_max_tries(&max_tries);
    if (rc != PT_OK)
        return pt_cli_report(rc, NULL);

    if (strcmp(cmd, "show") == 0) {
        if (nargs > 1)
            return pt_cli_usage_error("show takes at most one SERIAL");
    } else if (strcmp(cmd, "set-tries") == 0) {
        long n;
        if (nargs != 2)
            return pt_cli_usage_error("usage: set-tries SERIAL N");
        if (!pt_cli_parse_long(args[1], 0, (long)max_tries, &n))
            return pt_cli_usage_error("'%s' is not a number of wrong PINs from 0 to %lu (use "
                                      "'lock' to lock the token)",
                                      args[1], max_tries);
        change.op = ESIM_CTL_SET_TRIES;
        change.tries = (unsigned long)n;
    } else if (strcmp(cmd, "lock") == 0 || strcmp(cmd, "reset") == 0) {
        if (nargs != 1)
            return pt_cli_usage_error("usage: %s SERIAL", cmd);
        change.op = strcmp(cmd, "lock") == 0 ? ESIM_CTL_LOCK : ESIM_CTL_RESET;
    } else if (strcmp(cmd, "default-pin") == 0) {
        if (nargs != 2 || (strcmp(args[1], "on") != 0 && strcmp(args[1], "off") != 0))
            return pt_cli_usage_error("usage: default-pin SERIAL on|off");
        change.op = ESIM_CTL_DEFAULT_PIN;
        change.default_pin = strcmp(args[1], "on") == 0;
    } else if (strcmp(cmd, "fault") == 0) {
        if (nargs != 2 || !esim_fault_parse(args[1], &change.fault))
            return pt_cli_usage_error(
                "usage: fault SERIAL none|removed|sign-device-error|remove-on-sign");
        change.op = ESIM_CTL_FAULT;
    } else {
        return pt_cli_usage_error("unknown command '%s'", cmd);
    }

    if (state_opt != NULL) {
        state_path = strdup(state_opt);
        if (state_path == NULL)
            return pt_cli_report(pt_fail(PT_ERR_NOMEM, "out of memory"), NULL);
    } else {
        rc = esim_config_state_path(&state_path);
        if (rc != PT_OK)
            return pt_cli_usage_error("%s (or use --state FILE)", pt_err_message());
    }

    if (strcmp(cmd, "show") == 0) {
        ret = esim_ctl_show(state_path, nargs == 1 ? args[0] : NULL, max_tries);
    } else {
        uint8_t serial[ESIM_SERIAL_MAX];
        size_t len;
        if (!esim_serial_trim(args[0], strlen(args[0]), serial, &len) || len == 0)
            ret = pt_cli_usage_error("'%s' is not a token serial number (1 to %d characters)",
                                     args[0], ESIM_SERIAL_MAX);
        else
            ret = esim_ctl_update(state_path, serial, len, &change, max_tries);
    }
    free(state_path);
    return ret;
}
