# throughput.gp — tokens/s against sequence length T (log–log), one line per
# method.form, one panel per head dimension D (the V column), at the run's
# largest thread count. Error bars: tokens/s at the p80 and p20 times; hollow
# symbols: noisy cells (cv > 5%).
#   gnuplot -e "run='results/X'" scripts/throughput.gp
#   → results/X/plots/throughput.png and .pdf
sdir = system("dirname '".ARG0."'"); name = "throughput"
load sdir."/common.gpi"

if (!has("bench.csv")) { print name.": no bench.csv in ".run." (latbench sweep quick --out ".run.")"; exit }
thr = lastword(lstn("bench.csv", "threads", ""))
Ds = lstn("bench.csv", "V", HW."threads=".thr)
nD = words(Ds)
if (nD == 0) { print name.": no ok/noisy rows in bench.csv"; exit }
# the key goes into the panel with the most series
kp = 1; kn = 0
do for [i=1:nD] { n = words(lst("bench.csv", "series", "threads=".thr.";V=".word(Ds, i))); if (n > kn) { kn = n; kp = i } }

COLS = "T,tokens_per_s,t_p20_ns,t_p80_ns,B,noisy"
lo(s) = column(5) * column(1) / (column(4) * 1e-9)
hi(s) = column(5) * column(1) / (column(3) * 1e-9)

set logscale x 2
set logscale y 10
set format x "%.0f"
set xlabel "sequence length T (tokens)"
set ylabel "throughput (tokens/s, B·T / median time)"

do for [fmt in "png pdf"] {
    eval out(fmt)
    set multiplot layout 1, nD title sprintf("Throughput vs sequence length — %s threads, B = 1 (bars: p20–p80; hollow: noisy)", thr) \
        margins 0.07, KX, 0.14, 0.88 spacing 0.07, 0.1
    do for [i=1:nD] {
        D = word(Ds, i)
        W_ = HW."threads=".thr.";V=".D
        ser = lst("bench.csv", "series", W_)
        set title sprintf("D = %s", D)
        eval xr_log(lstn("bench.csv", "T", W_))
        xl = lstn("bench.csv", "T", W_); load sdir."/xtics.gpi"
        toks = rng("bench.csv", "T", "tokens_per_s", W_)
        ylo = word(toks, 1) + 0; yhi = word(toks, 2) + 0; yfmt = "%.0s%c"; ypad = 2.5
        load sdir."/ytics.gpi"
        if (i == kp) { eval key_right } else { unset key }
        if (i == 1) { eval footer_on } else { eval footer_off }
        if (i > 1) { unset ylabel }
        plot for [s in ser] dat("bench.csv", COLS, W_, s) u 1:2:(lo(s)):(hi(s)) w yerrorbars lc rgb scol(s) pt 7 ps 0 lw 1 notitle, \
             for [s in ser] dat("bench.csv", COLS, W_, s) u 1:2 w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 title s, \
             for [s in ser] dat("bench.csv", COLS, W_, s) u 1:($6 == 1 ? $2 : NaN) w p lc rgb "white" pt spt(s) ps 0.9 notitle, \
             for [s in ser] dat("bench.csv", COLS, W_, s) u 1:($6 == 1 ? $2 : NaN) w p lc rgb scol(s) pt hpt(s) ps 0.9 lw 1.5 notitle
        set ylabel "throughput (tokens/s, B·T / median time)"
    }
    unset multiplot
    set output
}
