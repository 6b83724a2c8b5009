/* util.c — small helpers: strict number parsing, directories, run ids,
 * fatal errors with one clear line. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "harness.h"

const char *lat_prog = "latbench";

static FILE *err_stream;
FILE *lat_errf(void) { return err_stream ? err_stream : stderr; }
void lat_set_errf(FILE *f) { err_stream = f; }

void lat_die(int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", lat_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

int lat_parse_int(const char *s, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s)
        return -1;
    *out = v;
    return 0;
}

int lat_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s)
        return -1;
    *out = v;
    return 0;
}

int lat_parse_int_list(const char *s, int *out, int max)
{
    char buf[1024];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    int n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        long v;
        if (n >= max || lat_parse_int(tok, &v) || v < 1 || v > (1L << 30))
            return -1;
        out[n++] = (int)v;
    }
    return n ? n : -1;
}

int lat_mkdir_p(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return -1;
    return 0;
}

int lat_dir_writable(const char *path)
{
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.latbench-write-probe-%d", path, (int)getpid());
    FILE *f = fopen(probe, "w");
    if (!f)
        return 0;
    int ok = fputs("ok\n", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    unlink(probe);
    return ok;
}

void lat_run_id(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(buf, len, "%s_%s", ts, lat_git_commit());
}

double lat_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Runs fn(arg, out) in a forked child and copies its `size`-byte result back.
 * Anything that starts OpenMP threads runs this way: a thread pool in the
 * parent would make every later fork (one per benchmark cell) deadlock in
 * libgomp. Returns 0, or -1 when the child failed. */
int lat_in_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t size)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        void *buf = calloc(1, size);
        fn(arg, buf);
        const char *p = buf;
        size_t left = size;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0)
                break;
            p += w;
            left -= (size_t)w;
        }
        free(buf);
        _exit(left ? 1 : 0);
    }
    close(fd[1]);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd[0], (char *)out + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return (got == size && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}
