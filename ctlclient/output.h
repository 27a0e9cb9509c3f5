/*
 * Writing a finished CTL or ITL to every TFTP location at once: each one
 * atomically (temporary file, fsync, rename, fsync of the directory), with a
 * result line per location, so a location is either the new file or what it
 * was before, never half-written.
 */
#ifndef CTL_OUTPUT_H
#define CTL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pt_error.h"

/* Largest number of -o locations. */
#define CTL_OUTPUT_MAX 32

/*
 * Check the locations before anything is built: at least one, none twice,
 * each naming a file, all with the same base name (it is written into the
 * file's header as FILENAME). *base points into paths[0]. PT_ERR_USAGE.
 */
pt_err ctl_output_check(const char *const *paths, size_t n, const char **base);

/*
 * Write data to every location; report one line per location on report
 * ("wrote PATH (N bytes)" / "FAILED PATH: reason"). PT_OK only when every
 * location was written; otherwise PT_ERR_IO saying how many failed.
 */
pt_err ctl_output_write(const char *const *paths, size_t n, const uint8_t *data, size_t len,
                        FILE *report);

#endif
