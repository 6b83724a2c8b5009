# accuracy.gp — error of each fp32 form against its fp64 reference (rel_rmse,
# log scale) against sequence length T, one line per method.form, one panel
# per input set (typical, harsh gates), at input sharpness 1 (else the lowest).
#   gnuplot -e "run='results/X'" scripts/accuracy.gp → results/X/plots/accuracy.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "accuracy"
load sdir."/common.gpi"

if (!has("accuracy.csv")) { print name.": no accuracy.csv in ".run." (latbench sweep accuracy --out ".run.")"; exit }
shs = lstn("accuracy.csv", "sharpness", "")
sh = windex(shs, "1") ? "1" : word(shs, 1)      # unscaled inputs when measured
if (sh eq "") { print name.": no ok rows in accuracy.csv"; exit }
ins = lst("accuracy.csv", "inputs", "sharpness=".sh)
nin = words(ins)
kp = 1; kn = 0
do for [i=1:nin] { n = words(lst("accuracy.csv", "series", "sharpness=".sh.";inputs=".word(ins, i))); if (n > kn) { kn = n; kp = i } }

set logscale x 2
set logscale y 10
set format x "%.0f"
set format y "%.0e"
ylo = 0; yhi = 0                       # one y range for every panel
do for [is_ in ins] {
    r_ = rng("accuracy.csv", "T", "rel_rmse", "sharpness=".sh.";inputs=".is_)
    if (words(r_) == 2) {
        ylo = (ylo == 0 || word(r_, 1) + 0 < ylo) ? word(r_, 1) + 0 : ylo
        yhi = (word(r_, 2) + 0 > yhi) ? word(r_, 2) + 0 : yhi
    }
}
load sdir."/ytics.gpi"
set xlabel "sequence length T (tokens)"
set ylabel "rel_rmse vs fp64 reference  (‖out − ref‖ / ‖ref‖)"

do for [fmt in "png pdf"] {
    eval out(fmt)
    set multiplot layout 1, nin title sprintf("fp32 error vs the fp64 reference by sequence length (input sharpness %s; open symbols: above the method's tolerance)", sh) \
        margins 0.08, KX, 0.14, 0.88 spacing 0.07, 0.1
    do for [i=1:nin] {
        W_ = "sharpness=".sh.";inputs=".word(ins, i)
        ser = lst("accuracy.csv", "series", W_)
        set title sprintf("%s inputs", word(ins, i))
        eval xr_log(lstn("accuracy.csv", "T", W_))
        xl = lstn("accuracy.csv", "T", W_); load sdir."/xtics.gpi"
        if (i == kp) { eval key_right } else { unset key }
        if (i == 1) { eval footer_on } else { eval footer_off }
        if (i > 1) { unset ylabel }
        plot for [s in ser] dat("accuracy.csv", "T,rel_rmse,passed", W_, s) u 1:($2 > 0 ? $2 : NaN) \
                 w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 title s, \
             for [s in ser] dat("accuracy.csv", "T,rel_rmse,passed", W_, s) u 1:($3 == 0 && $2 > 0 ? $2 : NaN) \
                 w p lc rgb "white" pt spt(s) ps 1.4 notitle, \
             for [s in ser] dat("accuracy.csv", "T,rel_rmse,passed", W_, s) u 1:($3 == 0 && $2 > 0 ? $2 : NaN) \
                 w p lc rgb scol(s) pt hpt(s) ps 1.4 lw 1.5 notitle
        set ylabel "rel_rmse vs fp64 reference  (‖out − ref‖ / ‖ref‖)"
    }
    unset multiplot
    set output
}
