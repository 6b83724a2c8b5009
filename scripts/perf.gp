# perf.gp — each method's fraction of this machine's FMA peak (measured in the
# same run) at T = 8192, D = 64, H = 8, all threads: every form as a bar, the
# best form of each method outlined; the dashed lines are the goals of issue 6
# (recurrent forms 50 %, chunk/tiled forms 60 %). Data: perf.csv (latbench perf).
#   gnuplot -e "run='results/X'" scripts/perf.gp → results/X/plots/perf.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "perf"
load sdir."/common.gpi"

if (!has("perf.csv")) { print name.": no perf.csv in ".run." (latbench perf)"; exit }
thr = lastword(lstn("perf.csv", "threads", "H=8"))
W_ = "T=8192;V=64;H=8;threads=".thr
if (words(lst("perf.csv", "method", W_)) == 0) { print name.": no ok rows at T = 8192, D = 64, H = 8 in perf.csv"; exit }
# one row per method.form: label, % of FMA peak, % of sgemm, best flag
tab = "< ".AWK." -v dedupe=0 -v cols='series,frac_fma_peak,frac_sgemm,best_form' -v where='".W_."' '".csv("perf.csv")."'"
peak = mnum("max_threads")

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border lc rgb "#333333"
set boxwidth 0.9
set yrange [0:70<*]
set ylabel "fraction of the same-run peak (%)"
set xtics rotate by -50 left font ",8" nomirror
set key at screen 0.98, 0.92 right top font ",9" box lc rgb "#cccccc"
set grid noxtics ytics
do for [fmt in "png pdf"] {
    eval out(fmt)
    set title sprintf("Fraction of this machine's peak — T = 8192, D = 64, H = 8, B = 1, %s threads (analytic FLOPs)", thr)
    set bmargin 9
    eval footer_on
    set arrow 1 from graph 0, first 50 to graph 1, first 50 nohead dt 2 lc rgb "#d62728" lw 1
    set arrow 2 from graph 0, first 60 to graph 1, first 60 nohead dt 2 lc rgb "#2ca02c" lw 1
    plot tab u (100 * $2):xtic(1) lc rgb "#1f77b4" title "FMA peak (same run)", \
         ''  u (100 * $3) lc rgb "#ff7f0e" title "OpenBLAS sgemm (same run)", \
         NaN w l dt 2 lc rgb "#d62728" title "goal: recurrent 50 %", \
         NaN w l dt 2 lc rgb "#2ca02c" title "goal: chunk/tiled 60 %"
    eval footer_off
    set output
}
