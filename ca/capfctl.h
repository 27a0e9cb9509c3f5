/*
 * capfctl's commands and the pieces they share (internal to capfctl).
 */
#ifndef CAPFCTL_H
#define CAPFCTL_H

#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

#include "store.h"

/* What every command gets from the command line before its own options. */
typedef struct capfctl_ctx {
    const char *db;       /* the store URL: --db, else $CAPFCTL_DB, else the default */
    capf_store_actor who; /* recorded with every change */
    char user[160];       /* storage for who.user */
} capfctl_ctx;

/* Long options shared by the commands (above the range of short options). */
enum {
    CAPFCTL_OPT_DB = 1000,
    CAPFCTL_OPT_JSON,
    CAPFCTL_OPT_DESCRIPTION,
    CAPFCTL_OPT_OPERATION,
    CAPFCTL_OPT_AUTH,
    CAPFCTL_OPT_AUTH_STRING,
    CAPFCTL_OPT_AUTH_STRING_FD,
    CAPFCTL_OPT_GENERATE_STRING,
    CAPFCTL_OPT_STRING_LENGTH,
    CAPFCTL_OPT_KEY,
    CAPFCTL_OPT_DEADLINE,
    CAPFCTL_OPT_NO_DEADLINE,
    CAPFCTL_OPT_LSC_STATUS,
    CAPFCTL_OPT_PEM,
};

/* Open the store for a command: creating it (changes) or not (reads). */
pt_err capfctl_store_open(const capfctl_ctx *ctx, bool create, capf_store **st);

/* The canonical device name for a command's DEVICE argument, or a usage error. */
int capfctl_device_arg(const char *text, char out[CAPF_DEVICE_NAME_ADMIN_MAX + 1]);

/*
 * Read an authentication string (one line) from file descriptor text, so
 * that it need not appear on a command line. out holds at least 16 bytes.
 */
pt_err capfctl_read_string_fd(const char *text, char *out, size_t outlen);

/* ISO 8601 UTC text of t, or "" when it is not present. */
void capfctl_time_text(time_t t, bool present, char out[21]);
/* A JSON string of ISO 8601 time, or null. */
json_object *capfctl_json_time(time_t t, bool present);
/* Print a JSON value, pretty and with '/' unescaped. */
void capfctl_json_print(json_object *o);
/* A device as JSON (no history). */
json_object *capfctl_device_json(const capf_store_device *d);
/* The status text of a device: "install failed: expired". */
void capfctl_status_text(const capf_store_device *d, char out[CAPF_DEVICE_STATUS_TEXT_MAX]);

int capfctl_cmd_add(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_set(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_show(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_delete(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_unlock(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_certs(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_find(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_report(capfctl_ctx *ctx, int argc, char **argv);
int capfctl_cmd_import(capfctl_ctx *ctx, int argc, char **argv);

#endif
