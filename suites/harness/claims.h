/* claims.h — `latbench claims RUN`: one verdict per row of data/claims.tsv,
 * computed from the run folder's own CSVs (bench, decode, accuracy, check,
 * roofline; later mqar, budget, maps).
 *
 * data/claims.tsv — one claim per line, tab-separated, '#' lines are comments.
 * The first other line is the header; columns (any order, all required):
 *   id  method  source  claim  reported  setting  predicate  provenance  note
 * `method` is "-" or registry names separated by '|'. `predicate` is a small
 * expression language (summary; the full grammar is in claims.c):
 *
 *   name := expr;  …             definitions (a selector or a number), first
 *   na("reason")                 not measurable here, for the stated reason
 *   A and B                      every part must hold
 *   x <= y, x >= y, x < y, x > y, x == y, x != y,   x in [lo, hi]
 *   + - * / ^, abs log log2 exp sqrt floor, max(a, b), min(a, b), numbers (1e-4)
 *   table{field=a|b, field!=c, T>=512, grid=perf_*, threads=max}   rows
 *   value(S, e)                  e per row (e: arithmetic on the row's fields)
 *   max|min|mean|sum(S, e [, by…])  reduce rows (per group of the by fields)
 *   max|min|mean|sum(x)          reduce a vector to one number
 *   count(S [, by…])
 *   slope(S, X, Y [, by…])       log–log least-squares exponent per series
 *   at(S, X, Y, x0 [, by…])      Y at X = x0 per series
 *   min_step(S, X, Y [, by…])    smallest Y(x_{i+1}) − Y(x_i) per series
 *   integral(S, X, Y, lo, hi [, by…])  ∫ Y dX, piecewise linear
 *   crossover(A, B, X, Y)        first X from which A's Y stays below B's
 *
 * Values are vectors with one element per row or series; elements pair up
 * across operators by the identity columns both sides leave free. A
 * comparison holds when it holds for every element.
 *
 * Verdicts: holds, does not hold, not measurable here (with the reason),
 * method not yet implemented (no listed method is registered, or a selector
 * names only unregistered methods). A predicate that reads no table is
 * evaluated all the same and labelled analytic.
 *
 * Errors in the TSV (syntax, unknown table, field, function or method name,
 * wrong field count) are reported as "file:line: reason", one line each,
 * and nothing is evaluated (`latbench claims` exits 2): the TSV is data
 * under review, a typo must not turn into a quiet verdict. */
#ifndef LAT_CLAIMS_H
#define LAT_CLAIMS_H

#include <stddef.h>
#include <stdio.h>

typedef struct lat_claims lat_claims;

typedef enum {
    LAT_CLAIM_HOLDS = 0,
    LAT_CLAIM_FAILS = 1, /* does not hold */
    LAT_CLAIM_NA = 2,    /* not measurable here */
    LAT_CLAIM_NYI = 3,   /* method not yet implemented */
} lat_verdict;

const char *lat_verdict_name(lat_verdict v);

/* Parses a claims TSV held in memory (any bytes). Each error is written to
 * err (NULL: silent) as "name:line: reason". Returns the number of errors;
 * *out is the parsed set when there were none, NULL otherwise. */
int lat_claims_parse(const char *text, size_t len, const char *name, lat_claims **out, FILE *err);
/* Same from a file; -1 (and one error line) when it cannot be read. */
int lat_claims_load(const char *path, lat_claims **out, FILE *err);
int lat_claims_count(const lat_claims *c);
void lat_claims_free(lat_claims *c);

typedef struct lat_claim_result {
    const char *id;
    lat_verdict verdict;
    int analytic;        /* reads no measurement */
    char measured[2048]; /* the values that decided the verdict */
    char reason[1024];   /* why not measurable / not implemented */
    char coverage[512];  /* e.g. "2 of 9 methods; not yet implemented: …" */
} lat_claim_result;

/* Evaluates claim i against the run folder. */
void lat_claims_eval(const lat_claims *c, int i, const char *run_dir, lat_claim_result *r);

/* Evaluates every claim and writes run_dir/claims.md and run_dir/claims.csv;
 * one line per claim on log (NULL: quiet). counts[4] (may be NULL) receives
 * the number of each verdict. Returns 0, or -1 when a file cannot be written
 * (errno set). */
int lat_claims_report(const lat_claims *c, const char *run_dir, const char *tsv_name, FILE *log, int counts[4]);

#endif
