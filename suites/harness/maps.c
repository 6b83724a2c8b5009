/* maps.c — `latbench maps`: attention-map diagnostics that are not a
 * throughput or an output error, computed in fp64 by the methods' reference
 * files and written to RUN/maps.csv for the claims:
 *   FL1 (FLatten): on an N = 196 (14×14) token grid, d = 64, Q, K ~ N(0, 1):
 *       numerical rank of the focused linear map φ(Q)φ(K)ᵀ (≤ d), of the
 *       softmax map (full), of the focused map plus the depthwise conv as an
 *       N×N matrix, and the mean row entropies (focused p = 3, ReLU, softmax);
 *   AG1b (Agent attention): the gap to exact softmax attention at n = N
 *       agents with identity pooling and the bias routing each query to its
 *       own agent (the exact limit), without that bias, and at n = 49.
 * reference/flatten.c (ref_flatten_rank_entropy) and reference/agent.c
 * (ref_agent_identity_gap) hold the math; this file only writes rows. */
#include "cell.h"
#include "harness.h"
#include "maps.h"
#include "../../reference/reference.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *maps_header =
    "run_id,method,T,D,seed,rank,rank_relu,rank_dwc,rank_dwc_alone,entropy_focused,entropy_relu,entropy_softmax,"
    "max_abs_identity,max_abs_no_bias,rel_err_no_bias,rel_err_49\n";

int lat_cmd_maps(int argc, char **argv)
{
    const char *out = NULL;
    long seed = 42;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: latbench maps [--out DIR] [--seed n]\n"
                   "  Attention-map diagnostics (fp64): FLatten's map ranks and row entropies at N = 196,\n"
                   "  d = 64 (claim FL1) and Agent attention's gap to softmax at n = N (claim AG1b),\n"
                   "  into DIR/maps.csv.\n");
            return 0;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (lat_parse_int(argv[++i], &seed) || seed < 0)
                lat_die(2, "maps: --seed must be a non-negative integer, not '%s'", argv[i]);
        } else
            lat_die(2, "maps: bad argument '%s' (allowed: --out DIR, --seed n)", argv[i]);
    }
    char dir[4096], id[4096], path[8192];
    if (!out) {
        lat_run_id(id, sizeof id);
        snprintf(dir, sizeof dir, "results/%.200s", id);
        out = dir;
    }
    if (lat_mkdir_p(out) != 0 || !lat_dir_writable(out))
        lat_die(2, "maps: --out %s: cannot create the folder or it is not writable", out);
    const char *slash = strrchr(out, '/');
    snprintf(id, sizeof id, "%s", slash ? slash + 1 : out);
    double fl[8], ag[4];
    const int N = 196, d = 64;
    if (ref_flatten_rank_entropy(N, d, 3, (uint64_t)seed, fl) != 0 ||
        ref_agent_identity_gap(14, d, (uint64_t)seed, ag) != 0)
        lat_die(2, "maps: out of memory");
    char rows[3][512];
    snprintf(rows[0], sizeof rows[0], "%.200s,flatten,%d,%d,%ld,%.0f,%.0f,%.0f,%.0f,%.6g,%.6g,%.6g,,,,\n", id, N, d, seed,
             fl[0], fl[6], fl[2], fl[7], fl[3], fl[4], fl[5]);
    snprintf(rows[1], sizeof rows[1], "%.200s,softmax,%d,%d,%ld,%.0f,,,,,,%.6g,,,,\n", id, N, d, seed, fl[1], fl[5]);
    snprintf(rows[2], sizeof rows[2], "%.200s,agent,%d,%d,%ld,,,,,,,,%.6g,%.6g,%.6g,%.6g\n", id, N, d, seed, ag[0], ag[1],
             ag[2], ag[3]);
    snprintf(path, sizeof path, "%s/maps.csv", out);
    /* recomputed from scratch each time: replace the file whole */
    char tmp[8300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    remove(tmp);
    for (int r = 0; r < 3; r++)
        if (lat_csv_append_line(tmp, maps_header, rows[r]) != 0 || (r == 2 && rename(tmp, path) != 0)) {
            remove(tmp);
            lat_die(2, "maps: cannot write %s: %s", path, strerror(errno));
        }
    printf("FL1: rank focused %.0f (d = %d), softmax %.0f, focused + DWC %.0f; row entropy focused %.3f, ReLU "
           "%.3f, softmax %.3f nats\n",
           fl[0], d, fl[1], fl[2], fl[3], fl[4], fl[5]);
    printf("AG1b: max |agent - softmax| at n = N with identity routing %.3g (without the bias %.3g; n = 49: rel %.3g)\n",
           ag[0], ag[1], ag[3]);
    printf("wrote %s\n", path);
    return 0;
}
