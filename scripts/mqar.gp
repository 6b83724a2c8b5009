# mqar.gp — MQAR accuracy against the mixer's decode state (bytes, log
# scale), one line per method, one panel per test slice (L, K pairs) of one
# tier: tradeoff when the run has it, else core, else the first one found.
# Each point: the best learning rate of that (method, size), mean over seeds,
# error bar ± sd (latbench mqar writes these numbers to mqar_summary.csv).
#   gnuplot -e "run='results/X'" scripts/mqar.gp → results/X/plots/mqar.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "mqar"
load sdir."/common.gpi"

F = "mqar_summary.csv"
if (!has(F)) { print name.": no mqar_summary.csv in ".run." (latbench mqar --out ".run.")"; exit }
tiers = lst(F, "tier", "task=mqar")
if (words(tiers) == 0) { print name.": no MQAR rows in mqar_summary.csv"; exit }
tier = windex(tiers, "tradeoff") ? "tradeoff" : (windex(tiers, "core") ? "core" : word(tiers, 1))
WT = "task=mqar;tier=".tier

# colours for the mixers (common.gpi knows only the methods of the benchmark CSVs)
do for [m in lst(F, "method", WT)] { if (windex(methods, m) == 0) { methods = methods." ".m } }
do for [x in lst(F, "form", WT)] { if (windex(forms, x) == 0) { forms = forms." ".x } }

# the test slices "L:K", by L then K
slices = ""
do for [l in lstn(F, "L", WT)] {
    do for [k in lstn(F, "pairs", WT.";L=".l)] { slices = slices." ".l.":".k }
}
ns = words(slices)
sL(s) = s[1:strstrt(s, ":") - 1]
sK(s) = s[strstrt(s, ":") + 1:]

nser = words(lst(F, "series", WT))
KX = nser > 22 ? 0.70 : 0.80
key_right = sprintf("set key at screen %.2f, 0.90 left top Left reverse font ',9' samplen 2.5 spacing 0.95 maxrows %d box lc rgb '#cccccc'", \
                    KX + 0.01, nser > 22 ? int((nser + 2) / 2) : 48)

set logscale x 2
set format x "%.0s%c"
set xlabel "mixer state (bytes, fp32; Zoology formula at the slice's L)"
set ylabel "accuracy (fraction of queries, argmax over all V)"
set yrange [0:1.05]
set ytics 0.1
set format y "%.1f"
set mxtics 1

do for [fmt in "png pdf"] {
    eval out(fmt)
    set multiplot layout 1, ns title sprintf("MQAR accuracy vs state size, tier %s (best LR per method and size; mean ± sd over seeds)", tier) \
        margins 0.07, KX, 0.14, 0.88 spacing 0.05, 0.1
    do for [i=1:ns] {
        S = word(slices, i)
        W_ = WT.";L=".sL(S).";pairs=".sK(S)
        ser = lst(F, "series", W_)
        set title sprintf("L = %s, %s pairs", sL(S), sK(S))
        eval xr_log(lstn(F, "state_bytes", WT))
        if (i == 1) { eval key_right; eval footer_on } else { unset key; eval footer_off }
        if (i > 1) { unset ylabel }
        plot for [s in ser] dat(F, "state_bytes,acc_mean,acc_sd", W_, s) u 1:2:3 \
                 w yerrorlines lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 title mpart(s)
        set ylabel "accuracy (fraction of queries, argmax over all V)"
    }
    unset multiplot
    set output
}
