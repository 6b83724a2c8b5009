/* table.h — read a results CSV (bench.csv, decode.csv, accuracy.csv,
 * check.csv, roofline.csv) into memory and look columns up by name. Readers
 * ignore columns they do not know, so files of a newer schema still load. */
#ifndef LAT_TABLE_H
#define LAT_TABLE_H

#include <stddef.h>

typedef struct lat_table {
    int ncol, nrow;
    char **col;   /* header names */
    char ***cell; /* cell[row][col], "" when missing */
} lat_table;

/* Loads path; complete lines only (a truncated last line is ignored).
 * Returns 0, or -1 (missing/unreadable file: t is an empty table). */
int lat_table_load(const char *path, lat_table *t);
void lat_table_free(lat_table *t);
int lat_table_col(const lat_table *t, const char *name);            /* index or -1 */
const char *lat_table_get(const lat_table *t, int row, const char *name); /* "" if absent */
double lat_table_num(const lat_table *t, int row, const char *name);      /* NaN if absent/empty */

/* Least-squares slope and intercept of y on x (n ≥ 2); returns the slope,
 * NaN when undefined. r2 (may be NULL) receives the coefficient of determination. */
double lat_fit_slope(const double *x, const double *y, int n, double *intercept, double *r2);

#endif
