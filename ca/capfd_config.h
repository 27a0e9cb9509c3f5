/*
 * capfd's configuration: an INI file (ca/capfd.conf.example documents every
 * key), its defaults and its checks. Loading checks values only; whether
 * files, sockets and the store can be opened is checked when they are opened.
 */
#ifndef CAPFD_CONFIG_H
#define CAPFD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capf_msg.h"
#include "device.h"
#include "log.h"
#include "pt_error.h"

/* What capfd does with a connection that arrives while max-sessions are running. */
typedef enum capfd_at_limit {
    CAPFD_AT_LIMIT_RETRY_LATER = 0, /* TLS, then RETRY_LATER (CAPF-U13), then close */
    CAPFD_AT_LIMIT_CLOSE,           /* close without sending anything (known servers) */
} capfd_at_limit;

/* Most elements a RETRY_LATER may carry, and their total size. */
#define CAPFD_RETRY_LATER_ELS_MAX   8
#define CAPFD_RETRY_LATER_BYTES_MAX 256

typedef struct capfd_retry_later {
    capf_el els[CAPFD_RETRY_LATER_ELS_MAX]; /* values point into bytes */
    size_t n;
    uint8_t bytes[CAPFD_RETRY_LATER_BYTES_MAX];
    size_t used;
} capfd_retry_later;

/* Defaults. */
#define CAPFD_DEFAULT_LISTEN          "0.0.0.0"
#define CAPFD_DEFAULT_MAX_SESSIONS    64
#define CAPFD_DEFAULT_IO_TIMEOUT_MS   10000  /* known servers' socket timeout (§1.5) */
#define CAPFD_DEFAULT_SESSION_MS      120000 /* a whole session, key generation aside */
#define CAPFD_DEFAULT_VALIDITY_YEARS  5
#define CAPFD_MAX_VALIDITY_YEARS      9 /* LSC_DAYS_MAX is 3560 days */
#define CAPFD_DEFAULT_KEYGEN_MS       (30 * 60 * 1000)
#define CAPFD_DEFAULT_KEYGEN_ATTEMPTS 3
#define CAPFD_DEFAULT_AUTH_FAILURES   5
#define CAPFD_DEFAULT_RETRY_LATER     "RETRY_DELAY=u16:60"
#define CAPFD_DEFAULT_ISSUER_LABEL    "CAPF"

typedef struct capfd_config {
    /* [server] */
    char *listen;    /* IPv4 or IPv6 address */
    unsigned port;   /* 0: any free port (tests); see port_file */
    char *port_file; /* NULL, or where the bound port is written once listening */
    pt_log_level log_level;
    /* [tls] */
    char *tls_cert;      /* PEM: the server certificate, then its chain */
    char *tls_key;       /* a PEM file or a pkcs11: URI */
    char *tls_module;    /* PKCS#11 module for a pkcs11: key (NULL: the default) */
    char *tls_ciphers;   /* TLS 1.2 cipher list */
    char *tls_suites;    /* TLS 1.3 cipher suites */
    int tls_min_version; /* TLS1_2_VERSION ... */
    int tls_max_version; /* 0: the highest OpenSSL has */
    /* [hsmd] */
    char *hsmd_socket;
    char *issuer_label;
    int hsmd_timeout_ms;
    /* [store] */
    char *store_url;
    /* [auth] */
    char *lsc_trust_dir; /* extra certificates that issue LSCs (the issuing CA is always in) */
    char *mic_trust_dir; /* manufacturing CA certificates */
    bool check_validity; /* also check the authentication certificate's validity period */
    unsigned max_auth_failures;
    /* [limits] */
    unsigned max_sessions;
    int io_timeout_ms;
    int session_timeout_ms;
    capfd_at_limit at_limit;
    capfd_retry_later retry_later;
    /* [service] */
    unsigned validity_years;
    capf_device_key default_key; /* kind RSA, EC or EC_PREFERRED, never DEFAULT */
    int keygen_timeout_ms;
    unsigned keygen_attempts;
} capfd_config;

/* Set every default (heap strings); free with capfd_config_free. */
pt_err capfd_config_defaults(capfd_config *c);

/*
 * Read path over the defaults. An unknown section or key, a bad value or a
 * missing required key (tls certificate and key) is PT_ERR_USAGE naming the
 * line's section and key.
 */
pt_err capfd_config_load(const char *path, capfd_config *c);

/* Apply one "section.key = value" (what the INI reader calls; also for tests). */
pt_err capfd_config_set(capfd_config *c, const char *section, const char *key, const char *value);

/* Check that the keys that have no default are set. */
pt_err capfd_config_check(const capfd_config *c);

void capfd_config_free(capfd_config *c);

/*
 * A duration: a number with a unit suffix ms, s, m or h, or a bare number in
 * default_unit_ms. 1 ms .. 24 h.
 */
pt_err capfd_duration_parse(const char *text, long default_unit_ms, int *ms);

/*
 * RETRY_LATER's elements (CAPF-U13: their layout is unknown, so it is the
 * operator's choice): a space- or comma-separated list of TAG=TYPE:VALUE,
 * TAG an element name (RETRY_DELAY, REASON, ...) or number (1-20), TYPE u8,
 * u16 or u32 with a decimal value, or hex with hex digits. "" or "none"
 * gives a message without elements. Fixed-size tags need their size.
 */
pt_err capfd_retry_later_parse(const char *text, capfd_retry_later *out);

/* "rsa:2048"-style text of the default key for logs. */
const char *capfd_key_text(const capf_device_key *k, char out[CAPF_DEVICE_KEY_TEXT_MAX]);

#endif
