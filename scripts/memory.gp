# memory.gp — memory against sequence length T (log–log), one line per
# method.form at D = 64 (or the run's most common D) and the largest thread
# count: analytic (the form's traffic model + workspace), allocator peak, and
# peak RSS of the cell's own process.
#   gnuplot -e "run='results/X'" scripts/memory.gp → results/X/plots/memory.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "memory"
load sdir."/common.gpi"

if (!has("bench.csv")) { print name.": no bench.csv in ".run; exit }
thr = lastword(lstn("bench.csv", "threads", ""))
Ds = lstn("bench.csv", "V", HW."threads=".thr)
if (words(Ds) == 0) { print name.": no ok/noisy rows in bench.csv"; exit }
D = windex(Ds, "64") ? "64" : word(Ds, 1)
W_ = HW."threads=".thr.";V=".D
ser = lst("bench.csv", "series", W_)
eval xr_log(lstn("bench.csv", "T", W_))
xl = lstn("bench.csv", "T", W_); load sdir."/xtics.gpi"

set logscale x 2
set logscale y 2
set format x "%.0f"
set format y "%.0b %BB"
set xlabel "sequence length T (tokens)"
set ylabel "bytes"

do for [fmt in "png pdf"] {
    eval out(fmt)
    set multiplot layout 1, 3 title sprintf("Memory vs sequence length — D = %s, %s threads, B = 1", D, thr) \
        margins 0.07, KX, 0.14, 0.88 spacing 0.06, 0.1
    set title "analytic: traffic model + workspace"
    eval key_right
    eval footer_on
    plot for [s in ser] dat("bench.csv", "T,bytes_model,workspace_bytes", W_, s) u 1:($2 + $3) \
         w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 title s
    unset key
    eval footer_off
    unset ylabel
    set title "measured: allocator peak"
    plot for [s in ser] dat("bench.csv", "T,alloc_peak_bytes", W_, s) u 1:2 \
         w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 notitle
    set title "measured: peak RSS of the cell process"
    plot for [s in ser] dat("bench.csv", "T,peak_rss_bytes", W_, s) u 1:2 \
         w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 notitle
    set ylabel "bytes"
    unset multiplot
    set output
}
