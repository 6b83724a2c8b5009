/* table.c — CSV tables of a run folder, loaded whole (they are small). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

static char **split(const char *line, int *n)
{
    int cap = 16;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    *n = 0;
    const char *p = line;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (*n == cap)
            v = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
        v[*n] = malloc(len + 1);
        memcpy(v[*n], p, len);
        v[*n][len] = 0;
        (*n)++;
        if (!e)
            break;
        p = e + 1;
    }
    return v;
}

int lat_table_load(const char *path, lat_table *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rcap = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n')
            break; /* truncated last line */
        line[--len] = 0;
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (!t->col) {
            t->col = split(line, &t->ncol);
            continue;
        }
        if (len == 0)
            continue;
        int n;
        char **v = split(line, &n);
        if (n < t->ncol) { /* pad short rows */
            v = realloc(v, sizeof(char *) * (size_t)t->ncol);
            for (int i = n; i < t->ncol; i++)
                v[i] = calloc(1, 1);
        }
        for (int i = t->ncol; i < n; i++)
            free(v[i]);
        if (t->nrow == rcap)
            t->cell = realloc(t->cell, sizeof(char **) * (size_t)(rcap = rcap ? 2 * rcap : 256));
        t->cell[t->nrow++] = v;
    }
    free(line);
    fclose(f);
    return t->col ? 0 : -1;
}

void lat_table_free(lat_table *t)
{
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++)
            free(t->cell[r][c]);
        free(t->cell[r]);
    }
    for (int c = 0; c < t->ncol; c++)
        free(t->col[c]);
    free(t->col);
    free(t->cell);
    memset(t, 0, sizeof *t);
}

int lat_table_col(const lat_table *t, const char *name)
{
    for (int c = 0; c < t->ncol; c++)
        if (!strcmp(t->col[c], name))
            return c;
    return -1;
}

const char *lat_table_get(const lat_table *t, int row, const char *name)
{
    int c = lat_table_col(t, name);
    return (c < 0 || row < 0 || row >= t->nrow) ? "" : t->cell[row][c];
}

double lat_table_num(const lat_table *t, int row, const char *name)
{
    const char *s = lat_table_get(t, row, name);
    if (!*s)
        return NAN;
    char *end;
    double v = strtod(s, &end);
    return *end ? NAN : v;
}

double lat_fit_slope(const double *x, const double *y, int n, double *intercept, double *r2)
{
    if (n < 2)
        return NAN;
    double sx = 0, sy = 0;
    for (int i = 0; i < n; i++) {
        sx += x[i];
        sy += y[i];
    }
    double mx = sx / n, my = sy / n, sxx = 0, sxy = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx == 0)
        return NAN;
    double b = sxy / sxx;
    if (intercept)
        *intercept = my - b * mx;
    if (r2)
        *r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1.0;
    return b;
}
