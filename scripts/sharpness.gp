# sharpness.gp — error against input sharpness (q and k multiplied by s):
# left, each fp32 form against its fp64 reference; right (when the run has
# methods that approximate softmax), the method against exact softmax, mean ±
# std over the random draws (where a cell was measured twice, the row with
# the most draws). At the T where the sharpness was swept, first input set.
#   gnuplot -e "run='results/X'" scripts/sharpness.gp → results/X/plots/sharpness.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "sharpness"
load sdir."/common.gpi"

if (!has("accuracy.csv")) { print name.": no accuracy.csv in ".run." (latbench sweep accuracy --out ".run.")"; exit }
# the T with the most sharpness values
T = ""; best = 1
do for [t in lstn("accuracy.csv", "T", "")] { n = words(lstn("accuracy.csv", "sharpness", "T=".t)); if (n > best) { best = n; T = t } }
if (T eq "") { print name.": accuracy.csv has no sharpness sweep (one sharpness per T)"; exit }
inp = word(lst("accuracy.csv", "inputs", "T=".T), 1)
W_ = "T=".T.";inputs=".inp
ser = lst("accuracy.csv", "series", W_)
WS = W_.";vs_softmax_rel_rmse>=0"
sms = lst("accuracy.csv", "series", WS)
npan = words(sms) ? 2 : 1
shs = lstn("accuracy.csv", "sharpness", W_)

set logscale x 10
set logscale y 10
set format x "%g"
set format y "%.0e"
errs0 = rng("accuracy.csv", "sharpness", "rel_rmse", W_)
set xrange [word(shs, 1) / 1.5 : lastword(shs) * 1.5]
XT = ""
do for [v in shs] { XT = XT.(XT eq "" ? "" : ", ").sprintf("\"%s\" %s", v, v) }
eval "set xtics (".XT.")"
set xlabel "input sharpness s (q, k multiplied by s)"

do for [fmt in "png pdf"] {
    eval out(fmt)
    set multiplot layout 1, npan title sprintf("Error vs input sharpness — T = %s, %s inputs%s", T, inp, \
        npan == 1 ? " (no method in this run approximates softmax)" : "") margins 0.08, KX, 0.14, 0.88 spacing 0.08, 0.1
    set title "fp32 form vs its fp64 reference"
    set ylabel "rel_rmse vs fp64 reference"
    ylo = word(errs0, 1) + 0; yhi = word(errs0, 2) + 0
    load sdir."/ytics.gpi"
    eval key_right
    eval footer_on
    plot for [s in ser] dat("accuracy.csv", "sharpness,rel_rmse", W_, s) u 1:($2 > 0 ? $2 : NaN) \
         w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 title s
    if (npan == 2) {
        unset key
        eval footer_off
        set title "method (fp64) vs exact softmax: mean ± std over draws"
        set ylabel "rel_rmse vs exact softmax"
        errs = rngd("accuracy.csv", "sharpness", "vs_softmax_rel_rmse", WS)
        ylo = word(errs, 1) / 1.5; yhi = word(errs, 2) * 1.5     # room for the ± std bars
        load sdir."/ytics.gpi"
        plot for [s in sms] datd("accuracy.csv", "sharpness,vs_softmax_rel_rmse,vs_softmax_rel_rmse_std", WS, s) \
                 u 1:2:($2 - $3 > 0 ? $2 - $3 : $2 / 10):($2 + $3) w yerrorbars lc rgb scol(s) pt 7 ps 0 notitle, \
             for [s in sms] datd("accuracy.csv", "sharpness,vs_softmax_rel_rmse", WS, s) u 1:2 \
                 w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 notitle
    }
    unset multiplot
    set output
}
