/*
 * The ctlclient subcommands and the options every one of them shares.
 */
#ifndef CTL_CMD_H
#define CTL_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "login.h"
#include "pin.h"

/* Options common to every subcommand, parsed by each from its own argv. */
typedef struct ctl_common_opts {
    const char *module;   /* --module PATH (NULL: the URI's or the default) */
    token_pin_source pin; /* --pin-fd N (else the URI's pin-source, else the prompt) */
    bool pin_fd_given;
    token_pin_source new_pin; /* --new-pin-fd N */
    bool new_pin_fd_given;
    bool allow_final_try; /* --allow-final-try */
    bool json;            /* --json */
} ctl_common_opts;

/* Long option values shared by the subcommands (above the range of short options). */
enum {
    CTL_OPT_MODULE = 1000,
    CTL_OPT_PIN_FD,
    CTL_OPT_NEW_PIN_FD,
    CTL_OPT_ALLOW_FINAL_TRY,
    CTL_OPT_JSON,
    CTL_OPT_DIGEST,
    CTL_OPT_TIMESTAMP,
    CTL_OPT_TLS_TIMEOUT,
    CTL_OPT_FIRST_COMMAND_OPT, /* commands number their own long options from here */
};

/* --digest, --timestamp and --tls-timeout: the options of every command that writes a file. */
typedef struct ctl_file_opts {
    uint8_t digest;     /* TLV_DIGEST_* (sha1 unless --digest) */
    bool has_digest;    /* --digest was given */
    uint32_t timestamp; /* --timestamp, for reproducible builds */
    bool has_timestamp;
    int tls_timeout_ms; /* --tls-timeout: bound on fetching a tls:// certificate (0: default) */
} ctl_file_opts;

#define CTL_FILE_LONGOPTS                                                                          \
    {"digest", required_argument, NULL, CTL_OPT_DIGEST},                                           \
        {"timestamp", required_argument, NULL, CTL_OPT_TIMESTAMP},                                 \
    {                                                                                              \
        "tls-timeout", required_argument, NULL, CTL_OPT_TLS_TIMEOUT                                \
    }

void ctl_file_opts_init(ctl_file_opts *f);
/* Handle one of the file options; returns false when opt is not one of them. */
bool ctl_file_opt(ctl_file_opts *f, int opt, const char *arg, int *exit_code);

/* The shared options in a getopt_long table (the last entry is --help). */
#define CTL_COMMON_LONGOPTS                                                                        \
    {"module", required_argument, NULL, CTL_OPT_MODULE},                                           \
        {"pin-fd", required_argument, NULL, CTL_OPT_PIN_FD},                                       \
        {"allow-final-try", no_argument, NULL, CTL_OPT_ALLOW_FINAL_TRY},                           \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* Handle one of the shared options; returns false when opt is not one of them. */
bool ctl_common_opt(ctl_common_opts *o, int opt, const char *arg, int *exit_code);

/*
 * The login options for a token selected by uri_pin_source (the URI's
 * pin-source value, or NULL): --pin-fd wins over the URI, the prompt is the
 * fallback. *storage receives the parsed pin-source.
 */
pt_err ctl_login_opts(const ctl_common_opts *o, const char *uri_pin_source,
                      token_pin_source *storage, token_login_opts *out);

int ctl_cmd_token(int argc, char **argv);
int ctl_cmd_create(int argc, char **argv);
int ctl_cmd_update(int argc, char **argv);
int ctl_cmd_show(int argc, char **argv);
int ctl_cmd_verify(int argc, char **argv);
int ctl_cmd_itl(int argc, char **argv);

#endif
