# csv2dat.awk — select rows and columns of a latbench CSV (bench.csv,
# decode.csv, accuracy.csv, roofline.csv) by column name, for gnuplot.
#
#   awk -f csv2dat.awk -v cols="T,t_med_ns,noisy" -v where="V=64;threads=2" \
#       -v series="gla.chunk" results/X/bench.csv
#       → "T t_med_ns noisy" rows, space-separated, sorted by the first column
#   awk -f csv2dat.awk -v list="series" -v where="V=64" results/X/bench.csv
#       → the distinct values of a column (or of "series" = method.form) on one
#         line, space-separated, in order of first appearance (-v sort=1: numeric)
#
# Rules:
#   - rows whose status is not ok/noisy are skipped (files without a status
#     column, e.g. roofline.csv, keep every row);
#   - where: ';'-separated conditions col=value, col!=value, col>=value,
#     col<=value (numeric when both sides are numbers); all must hold;
#   - pseudo-columns: series (method.form), noisy (1 when status is noisy);
#   - a row with an empty requested column is skipped;
#   - dedupe=1 (default): one row per distinct first column, the first seen
#     (e.g. the same T measured by two grids), or with best=COL the one with
#     the largest COL (e.g. best=draws); dedupe=0 keeps every row.
#   awk -f csv2dat.awk -v cols="T" -v range="rel_rmse" -v where=… file.csv
#       → "min max" of the positive values of a column over the rows that
#         the same cols/where would plot for every series (a log axis range)
BEGIN { FS = ","; if (dedupe == "") dedupe = 1 }

NR == 1 {
    for (i = 1; i <= NF; i++) col[$i] = i
    ncond = (where == "") ? 0 : split(where, conds, ";")
    for (k = 1; k <= ncond; k++) {
        if (match(conds[k], /(!=|>=|<=|=)/) == 0) { print "csv2dat.awk: bad condition '" conds[k] "'" > "/dev/stderr"; bad = 1; exit 2 }
        cname[k] = substr(conds[k], 1, RSTART - 1)
        cop[k] = substr(conds[k], RSTART, RLENGTH)
        cval[k] = substr(conds[k], RSTART + RLENGTH)
    }
    nout = (cols == "") ? 0 : split(cols, outc, ",")
    next
}

function get(name) {
    if (name == "series") return $col["method"] "." $col["form"]
    if (name == "noisy") return ($col["status"] == "noisy") ? 1 : 0
    return (name in col) ? $col[name] : ""
}

function isnum(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }

function holds(k,    v, w) {
    v = get(cname[k]); w = cval[k]
    if (isnum(v) && isnum(w)) { v += 0; w += 0 }
    if (cop[k] == "=")  return v == w
    if (cop[k] == "!=") return v != w
    if (cop[k] == ">=") return v >= w
    return v <= w
}

{
    if ("status" in col && $col["status"] != "ok" && $col["status"] != "noisy") next
    for (k = 1; k <= ncond; k++) if (!holds(k)) next
    if (series != "" && get("series") != series) next
    if (list != "") {
        v = get(list)
        if (v != "" && !(v in seen)) { seen[v] = 1; vals[++nv] = v }
        next
    }
    if (range != "") {
        k = get("series") SUBSEP get(outc[1]); v = get(range)
        if (!isnum(v) || v + 0 <= 0) next
        b = (best != "") ? get(best) + 0 : 0
        if (k in seen && b <= rbest[k]) next
        seen[k] = 1; rbest[k] = b; rval[k] = v + 0
        next
    }
    line = ""
    for (j = 1; j <= nout; j++) {
        v = get(outc[j])
        if (v == "") next
        line = line (j > 1 ? " " : "") v
    }
    key = get(outc[1])
    b = (best != "") ? get(best) + 0 : 0
    if (dedupe && (key in seen)) {
        if (b > kbest[key]) { rows[seen[key]] = line; kbest[key] = b }
        next
    }
    rows[++n] = line; keys[n] = key + 0
    seen[key] = n; kbest[key] = b
}

END {
    if (bad) exit 2
    if (range != "") {
        for (k in rval) { if (!nr++ || rval[k] < lo) lo = rval[k]; if (nr == 1 || rval[k] > hi) hi = rval[k] }
        if (nr) print lo, hi
        exit
    }
    if (list != "") {
        if (sort) for (i = 2; i <= nv; i++) for (j = i; j > 1 && vals[j - 1] + 0 > vals[j] + 0; j--) { t = vals[j]; vals[j] = vals[j - 1]; vals[j - 1] = t }
        s = ""
        for (i = 1; i <= nv; i++) s = s (i > 1 ? " " : "") vals[i]
        print s
        exit
    }
    for (i = 2; i <= n; i++)   # insertion sort on the first column
        for (j = i; j > 1 && keys[j - 1] > keys[j]; j--) {
            t = rows[j]; rows[j] = rows[j - 1]; rows[j - 1] = t
            t = keys[j]; keys[j] = keys[j - 1]; keys[j - 1] = t
        }
    for (i = 1; i <= n; i++) print rows[i]
}
