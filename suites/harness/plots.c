/* plots.c — `latbench plots RUN`: runs every scripts/NAME.gp on the run folder
 *   gnuplot -e "run='RUN'" scripts/NAME.gp   → RUN/plots/NAME.png and NAME.pdf
 * and says which figures were written. A script that finds nothing to draw
 * prints why and writes no figure (not an error); the gnuplot messages of a
 * script that fails are kept in RUN/plots/NAME.log. The scripts are found in ./scripts, then next
 * to the executable (<dir of exe>/../scripts), or where --scripts says. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "report.h"

static int has_gp_scripts(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        found = n > 3 && !strcmp(e->d_name + n - 3, ".gp");
    }
    closedir(d);
    return found;
}

static int find_scripts(char *out, size_t len)
{
    if (has_gp_scripts("scripts")) {
        snprintf(out, len, "scripts");
        return 0;
    }
    char exe[PATH_MAX - 32]; /* room for "/../scripts" in out */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, len, "%s/../scripts", exe);
            if (has_gp_scripts(out))
                return 0;
        }
    }
    return -1;
}

static int gnuplot_on_path(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char *copy = strdup(path), *save = NULL;
    int found = 0;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/gnuplot", *d ? d : ".");
        found = access(p, X_OK) == 0;
    }
    free(copy);
    return found;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The *.gp names in dir, sorted; returns the count (array malloc'd). */
static int list_scripts(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    int n = 0, cap = 16;
    *names = malloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 3 || strcmp(e->d_name + len - 3, ".gp") || e->d_name[0] == '.')
            continue;
        if (n == cap)
            *names = realloc(*names, sizeof(char *) * (size_t)(cap *= 2));
        (*names)[n++] = strndup(e->d_name, len - 3);
    }
    if (d)
        closedir(d);
    qsort(*names, (size_t)n, sizeof(char *), cmp_str);
    return n;
}

/* Runs gnuplot on one script, its stdout and stderr into log; exit status or -1. */
static int run_gnuplot(const char *script, const char *run_dir, const char *log)
{
    char arg[4200];
    snprintf(arg, sizeof arg, "run='%s'", run_dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp("gnuplot", "gnuplot", "-e", arg, script, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int fresh(const char *path, time_t since)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0 && sb.st_mtime >= since;
}

/* The last non-empty line of the log (the script's reason or gnuplot's error). */
static void last_line(const char *path, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[strspn(line, " \t")])
            snprintf(out, len, "%s", line + strspn(line, " \t"));
    }
    if (f)
        fclose(f);
}

int lat_plots(const char *run_dir, const char *scripts_dir)
{
    struct stat sb;
    if (stat(run_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        lat_die(2, "plots: no run folder '%s' (give results/<run>, made by latbench sweep)", run_dir);
    if (strchr(run_dir, '\'') || strchr(run_dir, '"'))
        lat_die(2, "plots: the run folder name must not contain quotes: %s", run_dir);
    char dir[PATH_MAX];
    if (scripts_dir) {
        if (!has_gp_scripts(scripts_dir))
            lat_die(2, "plots: no *.gp scripts in %s", scripts_dir);
        snprintf(dir, sizeof dir, "%s", scripts_dir);
    } else if (find_scripts(dir, sizeof dir) != 0) {
        lat_die(2, "plots: cannot find the gnuplot scripts (looked in ./scripts and next to the executable; "
                   "use --scripts DIR)");
    }
    if (!gnuplot_on_path())
        lat_die(2, "plots: gnuplot not found: install gnuplot-nox (sudo apt-get install gnuplot-nox)");
    int have = 0;
    for (const char *const *n = (const char *const[]){"bench.csv", "decode.csv", "accuracy.csv", "roofline.csv", "mqar.csv", 0};
         *n; n++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", run_dir, *n);
        have |= access(p, R_OK) == 0;
    }
    if (!have)
        lat_die(2, "plots: %s has no bench.csv, decode.csv, accuracy.csv or roofline.csv (run latbench sweep "
                   "SUITE --out %s first)", run_dir, run_dir);
    char out[4200];
    snprintf(out, sizeof out, "%s/plots", run_dir);
    if (lat_mkdir_p(out) != 0)
        lat_die(2, "plots: cannot create %s: %s", out, strerror(errno));

    char **names;
    int n = list_scripts(dir, &names), written = 0, skipped = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        char script[PATH_MAX + 64], log[4400], png[4400], pdf[4400], why[1024];
        snprintf(script, sizeof script, "%s/%s.gp", dir, names[i]);
        snprintf(log, sizeof log, "%s/%s.log", out, names[i]);
        snprintf(png, sizeof png, "%s/%s.png", out, names[i]);
        snprintf(pdf, sizeof pdf, "%s/%s.pdf", out, names[i]);
        time_t start = time(NULL);
        int rc = run_gnuplot(script, run_dir, log);
        last_line(log, why, sizeof why);
        const char *msg = why;
        size_t nl = strlen(names[i]);
        if (!strncmp(msg, names[i], nl) && !strncmp(msg + nl, ": ", 2)) /* the script names itself */
            msg += nl + 2;
        if (rc != 0) {
            printf("FAILED  %s.gp (exit %d): %s  [log: %s]\n", names[i], rc, *msg ? msg : "no message", log);
            failed++;
        } else if (fresh(png, start) && fresh(pdf, start)) {
            printf("wrote   %s, %s.pdf\n", png, names[i]);
            written++;
            unlink(log);
        } else {
            printf("skipped %s: %s\n", names[i], *msg ? msg : "no figure written");
            skipped++;
            unlink(log);
        }
        free(names[i]);
    }
    free(names);
    printf("plots: %d figure%s written, %d skipped, %d failed (scripts in %s)\n", written, written == 1 ? "" : "s",
           skipped, failed, dir);
    return failed ? 1 : 0;
}
