#!/bin/sh
# report.sh — `latbench report` and `latbench plots` on a small real run:
#  1. every table (.md, .tex), summary.md and scaling.csv are written; the
#     .tex are booktabs tabulars with escaped underscores and a constant
#     number of columns; scaling.csv has a finite slope for every method.form;
#  2. every figure (.png, .pdf) is written;
#  3. bad run folders (missing, empty, partial, not a CSV, gnuplot missing)
#     give one clear line and exit 2, or skip what is missing — never a crash.
# Usage: sh tests/report.sh [build/latbench]
LB=${1:-build/latbench}
case "$LB" in /*) ;; *) LB="$(pwd)/$LB" ;; esac
SUITE=tests/suites/tiny.suite
tmp=$(mktemp -d /tmp/latbench-report-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()   { pass=$((pass+1)); echo "ok   $*"; }
bad()  { fail=$((fail+1)); echo "FAIL $*"; }

R="$tmp/run"
"$LB" sweep $SUITE --out "$R" >/dev/null 2>&1 || bad "tiny sweep exited $?"
"$LB" roofline --out "$R" >/dev/null 2>&1 || bad "roofline exited $?"
[ -s "$R/bench.csv" ] && [ -s "$R/roofline.csv" ] && ok "tiny run folder made" || bad "no tiny run folder"

# ---- 1. tables -------------------------------------------------------------------
"$LB" report "$R" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && ok "report exits 0" || bad "report exit $rc: $(cat "$tmp/err")"
missing=""
for t in throughput memory accuracy decode scaling; do
  for ext in md tex; do [ -s "$R/tables/$t.$ext" ] || missing="$missing $t.$ext"; done
done
[ -s "$R/tables/summary.md" ] || missing="$missing summary.md"
[ -s "$R/scaling.csv" ] || missing="$missing scaling.csv"
[ -z "$missing" ] && ok "report wrote every table, summary.md and scaling.csv" || bad "report did not write:$missing"

texbad=""
for f in "$R"/tables/*.tex; do
  grep -q '\\toprule' "$f" && grep -q '\\midrule' "$f" && grep -q '\\bottomrule' "$f" || texbad="$texbad $(basename "$f"):no-booktabs"
  [ "$(grep -c '\\begin{tabular}' "$f")" -eq "$(grep -c '\\end{tabular}' "$f")" ] || texbad="$texbad $(basename "$f"):unbalanced"
  # an underscore not preceded by a backslash, outside % comments
  grep -v '^%' "$f" | grep -q '[^\\]_' && texbad="$texbad $(basename "$f"):unescaped_"
  # every row of a tabular has as many & as its header
  awk '/\\begin\{tabular\}/ { n = -1; next }
       /\\end\{tabular\}/ { n = -2; next }
       n != -2 && /\\\\$/ { c = gsub(/[^\\]&/, "&"); if (n < 0) n = c; else if (c != n) bad = 1 }
       END { exit bad }' "$f" || texbad="$texbad $(basename "$f"):ragged"
done
[ -z "$texbad" ] && ok "every .tex is a booktabs tabular (toprule, midrule, bottomrule), escaped, rectangular" \
  || bad "tex problems:$texbad"

cpu=$(awk -F'"' '$2 == "cpu_model" { print $4; exit }' "$R/meta.json")
head -1 "$R/tables/summary.md" | grep -qF "$cpu |" && ok "summary.md starts with the machine line ($cpu | …)" \
  || bad "summary.md first line: $(head -1 "$R/tables/summary.md")"

series=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
                  $c["status"] == "ok" || $c["status"] == "noisy" { print $c["method"] "." $c["form"] }' \
         "$R/bench.csv" | sort -u)
nofit=""
for s in $series; do
  awk -F, -v s="$s" 'NR > 1 && $1 "." $2 == s && $5 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ { found = 1 } END { exit !found }' \
    "$R/scaling.csv" || nofit="$nofit $s"
done
[ -n "$series" ] && [ -z "$nofit" ] && ok "scaling.csv: a finite slope for each of $(echo $series | wc -w) method.form" \
  || bad "scaling.csv lacks a finite slope for:$nofit"
head -1 "$R/scaling.csv" | grep -q '^method,form,D,threads,slope,r2,n_points,T_min,T_max' \
  && ok "scaling.csv header" || bad "scaling.csv header: $(head -1 "$R/scaling.csv")"
grep -q 'softmax' "$R/tables/throughput.md" && grep -q '× softmax' "$R/tables/throughput.md" \
  && ok "throughput table has the × softmax column" || bad "throughput table lacks × softmax"
cp -r "$R/tables" "$tmp/tables1"
"$LB" report "$R" >/dev/null 2>&1 && diff -r "$tmp/tables1" "$R/tables" >/dev/null \
  && ok "report is repeatable (same tables twice)" || bad "second report differs"

# ---- 2. figures -------------------------------------------------------------------------
if command -v gnuplot >/dev/null 2>&1; then
  "$LB" plots "$R" >"$tmp/out" 2>&1; rc=$?
  [ "$rc" -eq 0 ] && ok "plots exits 0" || bad "plots exit $rc: $(tail -3 "$tmp/out")"
  missing=""
  for fig in throughput memory threads decode accuracy roofline sharpness; do
    for ext in png pdf; do [ -s "$R/plots/$fig.$ext" ] || missing="$missing $fig.$ext"; done
    head -c 8 "$R/plots/$fig.png" 2>/dev/null | grep -q PNG || missing="$missing $fig.png(not-a-PNG)"
    head -c 5 "$R/plots/$fig.pdf" 2>/dev/null | grep -q '%PDF' || missing="$missing $fig.pdf(not-a-PDF)"
  done
  [ -z "$missing" ] && ok "plots wrote every figure as PNG and PDF" || bad "plots did not write:$missing"
  grep -q "figures written" "$tmp/out" && ok "plots reports what it wrote" || bad "plots output: $(tail -1 "$tmp/out")"
  (cd "$tmp" && gnuplot -e "run='$R'" "$OLDPWD/scripts/throughput.gp" >/dev/null 2>&1) \
    && ok "a script runs on its own from another directory" || bad "scripts/throughput.gp alone failed"
else
  bad "gnuplot is not installed: figures untested (install gnuplot-nox)"
fi
env PATH=/nonexistent "$LB" plots "$R" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "gnuplot-nox" "$tmp/err" \
  && ok "no gnuplot: $(cat "$tmp/err")" || bad "no gnuplot: rc=$rc $(cat "$tmp/err")"

# ---- 3. bad run folders ------------------------------------------------------------------
one_line() { # NAME EXPECTED-RC PATTERN CMD…
  name=$1; want=$2; pat=$3; shift 3
  "$@" >/dev/null 2>"$tmp/err"; rc=$?
  if [ "$rc" -eq "$want" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "$pat" "$tmp/err"; then ok "$name: $(cat "$tmp/err")"
  else bad "$name: rc=$rc (want $want) $(cat "$tmp/err")"; fi
}
one_line "report, no such folder" 2 "no run folder" "$LB" report "$tmp/nosuch"
one_line "plots, no such folder"  2 "no run folder" "$LB" plots "$tmp/nosuch"
mkdir -p "$tmp/empty"; cp "$R/meta.json" "$tmp/empty/"
one_line "report, no CSV at all" 2 "no bench.csv, decode.csv or accuracy.csv" "$LB" report "$tmp/empty"
one_line "plots, no CSV at all"  2 "no bench.csv" "$LB" plots "$tmp/empty"
mkdir -p "$tmp/junk"; printf 'foo,bar\n1,2\n' >"$tmp/junk/bench.csv"
one_line "report, not a latbench CSV" 2 "not a latbench bench.csv" "$LB" report "$tmp/junk"
mkdir -p "$tmp/dir/bench.csv"
one_line "report, CSV is a directory" 2 "cannot read" "$LB" report "$tmp/dir"
one_line "report, no argument" 2 "run folder" "$LB" report

# only bench.csv (no meta.json, no roofline): tables for it, the rest skipped
mkdir -p "$tmp/partial"; cp "$R/bench.csv" "$tmp/partial/"
"$LB" report "$tmp/partial" >/dev/null 2>"$tmp/err"; rc=$?
if [ "$rc" -eq 0 ] && [ -s "$tmp/partial/tables/throughput.md" ] && [ ! -e "$tmp/partial/tables/decode.md" ] \
   && grep -q "no decode.csv" "$tmp/err"; then ok "report, only bench.csv: its tables, the others skipped with a message"
else bad "report, only bench.csv: rc=$rc $(cat "$tmp/err")"; fi
grep -q "unknown" "$tmp/partial/tables/summary.md" && ok "report without meta.json: machine line says unknown" \
  || bad "report without meta.json: $(head -1 "$tmp/partial/tables/summary.md")"
if command -v gnuplot >/dev/null 2>&1; then
  "$LB" plots "$tmp/partial" >"$tmp/out" 2>&1; rc=$?
  [ "$rc" -eq 0 ] && [ -s "$tmp/partial/plots/throughput.png" ] && grep -q "skipped decode" "$tmp/out" \
    && ok "plots, only bench.csv: throughput drawn, decode skipped" || bad "plots, only bench.csv: rc=$rc $(cat "$tmp/out")"
fi
# a header-only CSV and a truncated last line
mkdir -p "$tmp/cut"; head -1 "$R/bench.csv" >"$tmp/cut/bench.csv"
head -3 "$R/decode.csv" >"$tmp/cut/decode.csv"; printf '1,x,tiny_decode,gla' >>"$tmp/cut/decode.csv"
"$LB" report "$tmp/cut" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && [ -s "$tmp/cut/tables/decode.md" ] && ok "report, header-only bench.csv and a cut decode.csv: no crash" \
  || bad "report, cut CSVs: rc=$rc $(cat "$tmp/err")"
"$LB" report --help | grep -q "usage: latbench report" && "$LB" plots --help | grep -q "usage: latbench plots" \
  && ok "report --help, plots --help" || bad "--help"

# latbench perf --table-only on a synthetic run: perf.csv's ratios and tables/perf.md
P=$tmp/perf; mkdir -p "$P"
printf 'threads,fma_peak_gflops,sgemm_gflops\n1,100,80\n2,200,160\n' >"$P/roofline.csv"
{
  echo 'grid,method,form,B,T,H,K,V,knobs,threads,status,tokens_per_s,gflops,t_med_ns'
  echo 'perf_main,gla,recurrent,1,8192,8,64,64,chunk=64,1,ok,500000,60,16384000'
  echo 'perf_main,gla,recurrent,1,8192,8,64,64,chunk=64,2,ok,1000000,120,8192000'
  echo 'perf_main,gla,chunk,1,8192,8,64,64,chunk=64,1,ok,250000,60,32768000'
  echo 'perf_main,gla,chunk,1,8192,8,64,64,chunk=64,2,noisy,400000,96,20480000'
  echo 'other,gla,recurrent,1,8192,8,64,64,chunk=64,2,ok,1,1,1'
} >"$P/bench.csv"
printf 'method\tsource\tB\tT\tH\tK\tV\tknobs\tthreads\ttokens_per_s\tnote\n' >"$P/base.tsv"
printf 'gla\tquoted\t1\t8192\t8\t64\t64\t-\t2\t600000\tx\ngla\tbeside\t1\t8192\t8\t0\t0\t-\t2\t250000\ty\n' >>"$P/base.tsv"
"$LB" perf "$P" --table-only --baselines "$P/base.tsv" >"$tmp/out" 2>&1; rc=$?
row=$(awk -F, '$1 == "gla" && $2 == "recurrent" && $9 == 2' "$P/perf.csv")
[ "$rc" -eq 0 ] && [ "$(wc -l <"$P/perf.csv")" -eq 5 ] \
  && echo "$row" | grep -q '^gla,recurrent,1,8192,8,64,64,chunk=64,2,ok,1e+06,120,0.6000,0.7500,recurrent,1,2,1,quoted,600000,1.667,beside,250000,4$' \
  && ok "perf --table-only: fraction of peak, sgemm, scaling 2×, best form, two baselines (1.667×, 4×)" \
  || bad "perf --table-only: rc=$rc $(cat "$tmp/out") row: $row"
awk -F, '$2 == "chunk" && $9 == 2' "$P/perf.csv" | grep -q ',noisy,400000,96,0.4800,0.6000,recurrent,0.4,1.6,0,' \
  && ok "perf.csv: the slower chunk form is not best, 0.4× the recurrence" || bad "perf.csv chunk row: $(awk -F, '$2 == "chunk" && $9 == 2' "$P/perf.csv")"
grep -q '^| `gla` | `recurrent` | 1.00M | 120.0 | 60% | 75% | `met` | 2.00× | 1.00× |' "$P/tables/perf.md" \
  && grep -q 'ours / it' "$P/tables/perf.md" && [ -s "$P/tables/perf.tex" ] \
  && ok "tables/perf.md and .tex: best form per method, goal met, baselines" || bad "tables/perf.md: $(cat "$P/tables/perf.md")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
