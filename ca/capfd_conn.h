/*
 * One CAPF connection: a non-blocking socket, with TLS (capfd, the phone
 * simulator) or without (unit tests over a socketpair), read and written
 * under absolute deadlines.
 *
 * Writing rule (spec §2): capfd_conn_write hands a whole message to TLS in
 * one SSL_write, so that the header and the elements travel in one record.
 * Reading rule: capfd_conn_msg_read reads the 8 header bytes, refuses a bad
 * PROTOCOL_ID, an over-limit LENGTH or a wrong session ID before it reads
 * the body, then parses the body with the codec.
 */
#ifndef CAPFD_CONN_H
#define CAPFD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "capf_msg.h"
#include "pt_error.h"

typedef struct capfd_conn capfd_conn;

/* Milliseconds of CLOCK_MONOTONIC, for deadlines. */
int64_t capfd_now_ms(void);

/* Wrap fd (made non-blocking; owned by the connection afterwards, also on failure). */
pt_err capfd_conn_plain(int fd, capfd_conn **out);
/* TLS over fd as a server (accept) or client (connect); the handshake runs on the first use. */
pt_err capfd_conn_tls(SSL_CTX *ctx, int fd, bool server, capfd_conn **out);

/* Run the TLS handshake (nothing for a plain connection). */
pt_err capfd_conn_handshake(capfd_conn *c, int64_t deadline);
/* The SSL object (NULL for plain connections). */
SSL *capfd_conn_ssl(capfd_conn *c);
int capfd_conn_fd(const capfd_conn *c);

/*
 * Write all of data in one TLS write. PT_ERR_TIMEOUT at the deadline,
 * PT_ERR_IO when the peer went away.
 */
pt_err capfd_conn_write(capfd_conn *c, const void *data, size_t len, int64_t deadline);
/*
 * Read exactly len bytes. PT_ERR_IO with *closed set when the peer closed the
 * connection (cleanly or not), PT_ERR_TIMEOUT at the deadline.
 */
pt_err capfd_conn_read(capfd_conn *c, void *buf, size_t len, int64_t deadline, bool *closed);

/* What capfd_conn_msg_read found when it failed. */
typedef enum capfd_read_fail {
    CAPFD_READ_OK = 0,
    CAPFD_READ_CLOSED,     /* the peer closed the connection */
    CAPFD_READ_TIMEOUT,    /* nothing (or not all of it) came before the deadline */
    CAPFD_READ_BAD_HEADER, /* PROTOCOL_ID is not 0x55 */
    CAPFD_READ_TOO_LONG,   /* LENGTH over the read limit: refused before buffering */
    CAPFD_READ_WRONG_SID,  /* SESSION_ID is not the session's */
    CAPFD_READ_MALFORMED,  /* the elements do not parse */
    CAPFD_READ_IO,         /* another transport failure */
} capfd_read_fail;

/*
 * Read one message. expect_sid is checked unless check_sid is false (a
 * client learns its session ID from the first message). The raw bytes of the
 * message (header and elements, as far as they were read) stay available
 * through capfd_conn_last_raw until the next read.
 */
pt_err capfd_conn_msg_read(capfd_conn *c, bool check_sid, uint32_t expect_sid, int64_t deadline,
                           capf_msg **out, capfd_read_fail *why);
const uint8_t *capfd_conn_last_raw(const capfd_conn *c, size_t *len);

/* Send a TLS close_notify when it can go out at once, then close the socket and free. */
void capfd_conn_close(capfd_conn *c);

/* Close the socket's both directions so that a blocked session ends (from another thread). */
void capfd_conn_abort_fd(int fd);

#endif
