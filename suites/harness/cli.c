/* cli.c — parsing shared by `run` and the sweep driver: strict numbers,
 * known names only, and one error line that says what is allowed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

void lat_cli_known_methods(char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; i < lat_method_count(); i++) {
        strncat(buf, i ? ", " : "", len - strlen(buf) - 1);
        strncat(buf, lat_method_at(i)->name, len - strlen(buf) - 1);
    }
}

void lat_cli_known_forms(const lat_method *m, char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; i < m->n_forms; i++) {
        strncat(buf, i ? ", " : "", len - strlen(buf) - 1);
        strncat(buf, m->forms[i].name, len - strlen(buf) - 1);
    }
}

int lat_cli_method_list(const char *csv, const lat_method **out, int max)
{
    int n = 0;
    if (!csv) {
        for (int i = 0; i < lat_method_count() && n < max; i++)
            out[n++] = lat_method_at(i);
        return n;
    }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", csv);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        const lat_method *m = lat_find_method(tok);
        if (!m) {
            char known[4096];
            lat_cli_known_methods(known, sizeof known);
            fprintf(lat_errf(), "%s: unknown method '%s' (known: %s)\n", lat_prog, tok, known);
            return -1;
        }
        if (n < max)
            out[n++] = m;
    }
    return n;
}

int lat_cli_prepare_dir(const char *dir, const char *what)
{
    if (lat_mkdir_p(dir) != 0) {
        fprintf(lat_errf(), "%s: %s %s: cannot create the folder: %s\n", lat_prog, what, dir, strerror(errno));
        return -1;
    }
    if (!lat_dir_writable(dir)) {
        fprintf(lat_errf(), "%s: %s %s: the folder is not writable\n", lat_prog, what, dir);
        return -1;
    }
    return 0;
}

int lat_cli_lock_dir(const char *dir, const char *what)
{
    enum { MAX_LOCKS = 8 };
    static struct {
        dev_t dev;
        ino_t ino;
    } held[MAX_LOCKS];
    static int nheld;
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(lat_errf(), "%s: %s %s: cannot open the folder: %s\n", lat_prog, what, dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (int i = 0; i < nheld; i++)
        if (held[i].dev == st.st_dev && held[i].ino == st.st_ino) {
            close(fd);
            return 0;
        }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            fprintf(lat_errf(),
                    "%s: %s %s: another latbench is writing this folder; wait for it or stop it (Ctrl-C keeps "
                    "its finished rows), then resume\n",
                    lat_prog, what, dir);
        else
            fprintf(lat_errf(), "%s: %s %s: cannot lock the folder: %s\n", lat_prog, what, dir, strerror(errno));
        close(fd);
        return -1;
    }
    if (nheld < MAX_LOCKS) { /* the descriptor stays open: the lock lasts until the process exits */
        held[nheld].dev = st.st_dev;
        held[nheld].ino = st.st_ino;
        nheld++;
    }
    return 0;
}

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(lat_errf(), "%s: ", lat_prog);
    fprintf(lat_errf(), fmt, a, b);
    fputc('\n', lat_errf());
    return 2;
}

static const lat_knob *find_knob(const lat_method *m, const char *name)
{
    for (int i = 0; i < m->n_knobs; i++)
        if (strcmp(m->knobs[i].name, name) == 0)
            return &m->knobs[i];
    return NULL;
}

int lat_cli_parse_cell(int argc, char **argv, lat_cli_cell *cc, void (*help)(void))
{
    memset(cc, 0, sizeof *cc);
    lat_cell *c = &cc->cell;
    const char *method = NULL, *form = NULL;
    long B = -1, T = -1, H = -1, D = -1, K = -1, V = -1;
    long threads = lat_max_threads(), seed = 42, reps = 5;
    double min_time = 0.3;
    int accuracy = 1;
    /* knob values given before the method is known: applied after defaults */
    const char *knob_name[32];
    long knob_val[32];
    int nknob = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 1;
        }
        if (!strcmp(a, "--harsh")) {
            c->harsh = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return bad("run: unexpected argument '%s'%s (options start with --; see --help)", a, "");
        if (i + 1 >= argc)
            return bad("run: option %s needs a value%s", a, "");
        const char *v = argv[++i];
        const char *name = a + 2;
        long n = 0;
        if (!strcmp(name, "method"))
            method = v;
        else if (!strcmp(name, "form"))
            form = v;
        else if (!strcmp(name, "dump"))
            c->dump_dir = v;
        else if (!strcmp(name, "out"))
            cc->out_dir = v;
        else if (!strcmp(name, "accuracy")) {
            if (strcmp(v, "on") && strcmp(v, "off"))
                return bad("run: --accuracy takes on or off, not '%s'%s", v, "");
            accuracy = !strcmp(v, "on");
        } else if (!strcmp(name, "min-time")) {
            if (lat_parse_double(v, &min_time) || min_time < 0 || min_time > 3600)
                return bad("run: --min-time must be a number of seconds in [0, 3600], not '%s'%s", v, "");
        } else {
            struct { const char *n; long *dst; long lo, hi; } nums[] = {
                {"B", &B, 1, 1 << 20}, {"T", &T, 1, 1 << 26}, {"H", &H, 1, 1 << 16},
                {"D", &D, 1, 1 << 16}, {"K", &K, 1, 1 << 16}, {"V", &V, 1, 1 << 16},
                {"threads", &threads, 1, 1024}, {"seed", &seed, 0, 1L << 62}, {"reps", &reps, 1, LAT_MAX_SAMPLES},
            };
            int found = 0;
            for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
                if (strcmp(name, nums[k].n))
                    continue;
                found = 1;
                if (lat_parse_int(v, &n) || n < nums[k].lo || n > nums[k].hi) {
                    char range[64];
                    snprintf(range, sizeof range, "an integer in [%ld, %ld]", nums[k].lo, nums[k].hi);
                    fprintf(lat_errf(), "%s: run: --%s must be %s, not '%s'\n", lat_prog, name, range, v);
                    return 2;
                }
                *nums[k].dst = n;
            }
            if (!found) { /* a knob: validated once the method is known */
                if (nknob >= 32 || lat_parse_int(v, &n))
                    return bad("run: unknown option or non-integer value: %s %s (see --help and latbench list)",
                               a, v);
                knob_name[nknob] = name;
                knob_val[nknob++] = n;
            }
        }
    }
    char known[4096];
    if (!method) {
        lat_cli_known_methods(known, sizeof known);
        return bad("run: --method is required (known: %s)%s", known, "");
    }
    c->m = lat_find_method(method);
    if (!c->m) {
        lat_cli_known_methods(known, sizeof known);
        fprintf(lat_errf(), "%s: run: unknown method '%s' (known: %s)\n", lat_prog, method, known);
        return 2;
    }
    lat_cli_known_forms(c->m, known, sizeof known);
    if (!form) {
        fprintf(lat_errf(), "%s: run: --form is required (%s has: %s)\n", lat_prog, c->m->name, known);
        return 2;
    }
    c->f = lat_find_form(c->m, form);
    if (!c->f) {
        fprintf(lat_errf(), "%s: run: %s has no form '%s' (it has: %s)\n", lat_prog, c->m->name, form, known);
        return 2;
    }
    if (B < 0 || T < 0 || H < 0 || (D < 0 && (K < 0 || V < 0)))
        return bad("run: --B, --T, --H and --D (or --K and --V) are all required%s%s", "", "");
    lat_shape *s = &c->s;
    memset(s, 0, sizeof *s);
    lat_shape_defaults(c->m, s);
    s->B = (int)B;
    s->T = (int)T;
    s->H = (int)H;
    if (D > 0) {
        s->K = s->V = (int)D;
        if (c->m->map_dim)
            c->m->map_dim(s, (int)D);
    }
    if (K > 0)
        s->K = (int)K;
    if (V > 0)
        s->V = (int)V;
    for (int k = 0; k < nknob; k++) {
        const lat_knob *kn = find_knob(c->m, knob_name[k]);
        if (!kn) {
            char kl[1024] = "";
            for (int j = 0; j < c->m->n_knobs; j++) {
                strncat(kl, j ? ", --" : "--", sizeof kl - strlen(kl) - 1);
                strncat(kl, c->m->knobs[j].name, sizeof kl - strlen(kl) - 1);
            }
            fprintf(lat_errf(), "%s: run: unknown option --%s (%s knobs: %s; see --help)\n", lat_prog, knob_name[k],
                    c->m->name, kl[0] ? kl : "none");
            return 2;
        }
        *(int *)((char *)s + kn->offset) = (int)knob_val[k];
    }
    /* a knob can change the dimension map (based: K = d' = --features): map
     * D again with the knobs set, then put the user's knobs and sizes back
     * over whatever the map derived (hgrn2 derives expand from D) */
    if (D > 0 && c->m->map_dim && nknob > 0) {
        c->m->map_dim(s, (int)D);
        for (int k = 0; k < nknob; k++)
            *(int *)((char *)s + find_knob(c->m, knob_name[k])->offset) = (int)knob_val[k];
        if (K > 0)
            s->K = (int)K;
        if (V > 0)
            s->V = (int)V;
    }
    char why[256];
    if (lat_shape_check(c->m, s, why, sizeof why) != LAT_OK) {
        fprintf(lat_errf(), "%s: run: %s: unsupported: %s\n", lat_prog, c->m->name, why);
        return 2;
    }
    /* the T = 1 edge of 1-byte-per-token sizes: guard the index arithmetic */
    double elems = (double)s->B * s->T * s->H * (s->K > s->V ? s->K : s->V);
    if (elems > 4e11)
        return bad("run: shape too large (%s%s)", "B·T·H·max(K,V) above 4e11 elements", "");
    c->threads = (int)threads;
    c->seed = (uint64_t)seed;
    c->min_reps = (int)reps;
    c->min_time_s = min_time;
    c->warmup_s = 0.05;
    c->accuracy = accuracy;
    return 0;
}
