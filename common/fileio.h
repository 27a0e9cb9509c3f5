/*
 * Files that must never be half-written or read without a bound.
 */
#ifndef PT_FILEIO_H
#define PT_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pt_error.h"

/*
 * Replace path with data atomically and durably: write a temporary file in the
 * same directory, fsync it, rename it over path, fsync the directory. On
 * failure path is untouched and no temporary file is left behind.
 */
pt_err pt_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Read a whole file of at most max bytes into a new buffer (free with
 * OPENSSL_free; OPENSSL_clear_free for secrets). A larger file is refused
 * before it is read (PT_ERR_LIMIT). "-" reads standard input.
 */
pt_err pt_file_read(const char *path, size_t max, uint8_t **out, size_t *len);

/* write(2) all of len bytes, retrying on EINTR and short writes. */
pt_err pt_write_all(int fd, const void *data, size_t len);

/* fsync the directory that holds path (after a rename or create in it). */
pt_err pt_fsync_parent_dir(const char *path);

#endif
