/* mqar_ref.h — the published MQAR accuracy points of spec/claims.md B.2
 * (data/mqar_refpoints.tsv), compared one by one with a run's own MQAR
 * results (RUN/mqar_summary.csv from `latbench mqar`).
 *
 * For each published point: our run of the same mixer in the named tier —
 * the test slice (L, pairs) for a per-slice point, the mean over our test
 * slices for an overall point — at the size the row names ("size=N") or at
 * the size whose Zoology state bytes are nearest on a log scale ("state",
 * comparable only within a factor 2). Verdicts: agrees (|ours − published|
 * ≤ tol), differs (by how much), not comparable (no such mixer, no run at a
 * comparable state or width, the tier or slice not in the run). */
#ifndef LAT_MQAR_REF_H
#define LAT_MQAR_REF_H

#include <stdio.h>

enum { LAT_REF_AGREES = 0, LAT_REF_DIFFERS = 1, LAT_REF_NC = 2 };

/* Writes the markdown section for run_dir to f (nothing when the run has no
 * mqar_summary.csv). refs_tsv: the reference file. Returns the number of
 * points written, -1 when the reference file is missing or malformed (one
 * line on err saying why). counts[3] (may be NULL) receives agrees / differs /
 * not comparable. */
int lat_mqar_refpoints(FILE *f, const char *run_dir, const char *refs_tsv, int counts[3], FILE *err);

#endif
