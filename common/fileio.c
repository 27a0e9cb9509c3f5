#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

pt_err pt_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return pt_fail_errno("write");
        }
        p += n;
        len -= (size_t)n;
    }
    return PT_OK;
}

static char *parent_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return NULL;
    char *dir = strdup(dirname(copy));
    free(copy);
    return dir;
}

pt_err pt_fsync_parent_dir(const char *path)
{
    char *dir = parent_dir_of(path);
    if (dir == NULL)
        return pt_fail(PT_ERR_NOMEM, "out of memory");
    pt_err rc = PT_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = pt_fail_errno("%s: cannot open directory to sync it", dir);
    } else {
        if (fsync(fd) != 0 && errno != EINVAL)
            rc = pt_fail_errno("%s: fsync of directory failed", dir);
        close(fd);
    }
    free(dir);
    return rc;
}

pt_err pt_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char *dir = parent_dir_of(path);
    char *base_copy = strdup(path);
    char *tmp = NULL;
    int fd = -1;
    pt_err rc = PT_OK;

    if (dir == NULL || base_copy == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, basename(base_copy)) < 0) {
        tmp = NULL;
        rc = pt_fail(PT_ERR_NOMEM, "out of memory");
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = pt_fail_errno("%s: cannot create a temporary file in %s", path, dir);
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto out;
    }
    if (fchmod(fd, mode) != 0) {
        rc = pt_fail_errno("%s: cannot set mode %04o", tmp, (unsigned)mode);
        goto out;
    }
    rc = pt_write_all(fd, data, len);
    if (rc != PT_OK) {
        rc = pt_err_context(rc, "%s", tmp);
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = pt_fail_errno("%s: fsync failed", tmp);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = pt_fail_errno("%s: close failed", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = pt_fail_errno("%s: cannot rename temporary file into place", path);
        goto out;
    }
    free(tmp);
    tmp = NULL; /* renamed: nothing to remove */
    rc = pt_fsync_parent_dir(path);

out:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    free(base_copy);
    return rc;
}

pt_err pt_file_read(const char *path, size_t max, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    bool use_stdin = strcmp(path, "-") == 0;
    int fd = use_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pt_fail_errno("%s", path);

    pt_err rc = PT_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = pt_fail_errno("%s", path);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = pt_fail(PT_ERR_IO, "%s: is a directory", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
        rc = pt_fail(PT_ERR_LIMIT, "%s: %jd bytes is over the limit of %zu bytes", path,
                     (intmax_t)st.st_size, max);
        goto out;
    }

    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    if (cap > max + 1)
        cap = max + 1;
    uint8_t *buf = OPENSSL_malloc(cap);
    if (buf == NULL) {
        rc = pt_fail(PT_ERR_NOMEM, "out of memory reading %s", path);
        goto out;
    }
    size_t used = 0;
    for (;;) {
        if (used == cap) {
            if (cap > max) {
                OPENSSL_clear_free(buf, cap);
                rc = pt_fail(PT_ERR_LIMIT, "%s: over the limit of %zu bytes", path, max);
                goto out;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            uint8_t *nb = OPENSSL_clear_realloc(buf, cap, ncap);
            if (nb == NULL) {
                OPENSSL_clear_free(buf, cap);
                rc = pt_fail(PT_ERR_NOMEM, "out of memory reading %s", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            OPENSSL_clear_free(buf, cap);
            rc = pt_fail_errno("%s: read failed", path);
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (used > max) {
        OPENSSL_clear_free(buf, cap);
        rc = pt_fail(PT_ERR_LIMIT, "%s: over the limit of %zu bytes", path, max);
        goto out;
    }
    *out = buf;
    *len = used;
out:
    if (!use_stdin)
        close(fd);
    return rc;
}
