/*
 * pty-run: drive an interactive command on a pseudo-terminal, for tests of
 * prompts (PINs, confirmations, the ctlclient wizard).
 *
 *   pty-run [-t SECONDS] SCRIPT -- COMMAND [ARGS...]
 *
 * SCRIPT holds lines "expect TEXT" (wait until TEXT has appeared in the
 * command's output since the last match) and "send TEXT" (type TEXT and a
 * newline), "sendraw TEXT" (type TEXT without newline) and "eof" (type
 * Ctrl-D). Everything the command writes to the terminal is copied to
 * standard output. The exit status is the command's, or 124 when an expect
 * timed out (default 20 s each), 125 on a usage or system error.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { BUF_MAX = 1 << 20 };

static char seen[BUF_MAX];
static size_t seen_len, match_from;

static void drain(int fd, int wait_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, wait_ms) > 0) {
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        fwrite(buf, 1, (size_t)n, stdout);
        fflush(stdout);
        if (seen_len + (size_t)n < sizeof seen - 1) {
            memcpy(seen + seen_len, buf, (size_t)n);
            seen_len += (size_t)n;
            seen[seen_len] = '\0';
        }
        wait_ms = 0;
    }
}

static int expect_text(int fd, const char *text, int timeout_s)
{
    time_t end = time(NULL) + timeout_s;
    for (;;) {
        char *hit = strstr(seen + match_from, text);
        if (hit != NULL) {
            match_from = (size_t)(hit - seen) + strlen(text);
            return 0;
        }
        if (time(NULL) >= end)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN))
                return -1;
            drain(fd, 0);
        }
    }
}

int main(int argc, char **argv)
{
    int timeout_s = 20, i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
        char *end = NULL;
        long v = strtol(argv[i + 1], &end, 10);
        if (end == argv[i + 1] || *end != '\0' || v < 1 || v > 3600) {
            fprintf(stderr, "pty-run: -t takes 1 to 3600 seconds\n");
            return 125;
        }
        timeout_s = (int)v;
        i += 2;
    }
    if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0) {
        fprintf(stderr, "usage: pty-run [-t SECONDS] SCRIPT -- COMMAND [ARGS...]\n");
        return 125;
    }
    FILE *script = fopen(argv[i], "r");
    if (script == NULL) {
        fprintf(stderr, "pty-run: %s: %s\n", argv[i], strerror(errno));
        return 125;
    }
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    if (pid < 0) {
        fclose(script);
        fprintf(stderr, "pty-run: forkpty: %s\n", strerror(errno));
        return 125;
    }
    if (pid == 0) {
        execvp(argv[i + 2], argv + i + 2);
        fprintf(stderr, "pty-run: %s: %s\n", argv[i + 2], strerror(errno));
        _exit(125);
    }
    char line[4096];
    int result = 0;
    while (result == 0 && fgets(line, sizeof line, script) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "expect ", 7) == 0) {
            if (expect_text(master, line + 7, timeout_s) != 0) {
                fprintf(stderr, "\npty-run: timed out waiting for '%s'\n", line + 7);
                result = 124;
            }
        } else if (strncmp(line, "send ", 5) == 0 || strcmp(line, "send") == 0) {
            const char *text = line[4] ? line + 5 : "";
            if (write(master, text, strlen(text)) < 0 || write(master, "\n", 1) < 0)
                result = 125;
        } else if (strncmp(line, "sendraw ", 8) == 0) {
            if (write(master, line + 8, strlen(line + 8)) < 0)
                result = 125;
        } else if (strcmp(line, "eof") == 0) {
            if (write(master, "\004", 1) < 0)
                result = 125;
        } else if (line[0] != '\0' && line[0] != '#') {
            fprintf(stderr, "pty-run: bad script line '%s'\n", line);
            result = 125;
        }
    }
    fclose(script);
    if (result != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return result;
    }
    /* Copy the rest of the output until the command ends. */
    int status = 0;
    for (;;) {
        drain(master, 100);
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
    }
    drain(master, 0);
    close(master);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
