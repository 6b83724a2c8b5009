# roofline.gp — every benchmarked cell on the roofline of this machine:
# arithmetic intensity (analytic FLOPs / analytic compulsory bytes) against
# achieved GFLOP/s, one line per method.form (points in order of T) at D = 64
# (or the run's most common D) and the largest thread count. Ceilings at that
# thread count, measured by `latbench roofline` (roofline.csv, else meta.json):
# FMA peak, OpenBLAS sgemm (1024² and 64³ tiles), STREAM-triad bandwidth × AI.
#   gnuplot -e "run='results/X'" scripts/roofline.gp → results/X/plots/roofline.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "roofline"
load sdir."/common.gpi"

if (!has("bench.csv")) { print name.": no bench.csv in ".run; exit }
thr = lastword(lstn("bench.csv", "threads", ""))
Ds = lstn("bench.csv", "V", HW."threads=".thr)
if (words(Ds) == 0) { print name.": no ok/noisy rows in bench.csv"; exit }
D = windex(Ds, "64") ? "64" : word(Ds, 1)
W_ = HW."threads=".thr.";V=".D.";flop_per_byte>=0.000001;gflops>=0.000001"
ser = lst("bench.csv", "series", W_)

# ceilings at thr threads: roofline.csv, else the per-thread maps in meta.json
roof(c) = system(AWK." -v cols='".c."' -v where='threads=".thr."' '".csv("roofline.csv")."'")
METAMAP = "'index($0, k \":\") { n = split($0, a, /[{},]/); for (i = 1; i <= n; i++) " . \
          "{ split(a[i], kv, \":\"); gsub(/ /, \"\", kv[1]); if (kv[1] == t) print kv[2] + 0 } }'"
meta(k) = system("awk -v k='\"".k."\"' -v t='\"".thr."\"' ".METAMAP." '".run."/meta.json' 2>/dev/null")
ceiling(c) = has("roofline.csv") && roof(c) ne "" ? roof(c) + 0 : (meta(c) ne "" ? meta(c) + 0 : NaN)
fma = ceiling("fma_peak_gflops"); sgemm = ceiling("sgemm_gflops"); sgemm64 = ceiling("sgemm64_gflops"); triad = ceiling("triad_gbs")
src = has("roofline.csv") ? "roofline.csv" : "meta.json"
if (fma != fma && sgemm != sgemm) { print name.": no ceilings in this run (latbench roofline --out ".run.")"; exit }
peak = (fma == fma) ? fma : sgemm
bw(x) = (triad == triad) ? (triad * x < peak ? triad * x : NaN) : NaN
# x range: the cells' intensities and the ridge point (peak / bandwidth)
ais = lstn("bench.csv", "flop_per_byte", W_)
ridge = (triad == triad) ? peak / triad : word(ais, 1) + 0
xlo = (word(ais, 1) + 0 < ridge ? word(ais, 1) + 0 : ridge) / 4
xhi = lastword(ais) * 3

set logscale xy 10
set format x "%g"
set format y "%g"
set xlabel "arithmetic intensity (FLOP / byte, analytic models)"
set ylabel "achieved GFLOP/s"
set yrange [*: peak * 1.6]
set samples 400
set xrange [xlo : xhi]

do for [fmt in "png pdf"] {
    eval out(fmt)
    set lmargin at screen 0.07; set rmargin at screen KX; set bmargin at screen 0.14; set tmargin at screen 0.9
    set title sprintf("Roofline — D = %s, %s threads; ceilings measured at %s threads (%s); points along a line: increasing T", D, thr, thr, src)
    eval key_right
    eval footer_on
    set label 11 sprintf("FMA peak %.1f GFLOP/s", fma) at graph 0.98, first fma * 1.1 right font ",9" front
    set label 12 sprintf("sgemm 1024² %.1f GFLOP/s", sgemm) at graph 0.98, first sgemm * 0.88 right font ",9" front
    set label 13 sprintf("triad %.1f GB/s", triad) at first ridge / 3 * 1.2, first peak / 3 * 0.85 left font ",9" front
    plot (fma == fma ? fma : NaN) w l lc rgb "black" lw 2 title "FMA peak (measured)", \
         (sgemm == sgemm ? sgemm : NaN) w l lc rgb "#555555" dt 2 lw 1.5 title "OpenBLAS sgemm 1024²", \
         (sgemm64 == sgemm64 ? sgemm64 : NaN) w l lc rgb "#999999" dt 3 lw 1.5 title "OpenBLAS sgemm 64³", \
         bw(x) w l lc rgb "black" dt 4 lw 1.5 title "triad bandwidth × AI", \
         for [s in ser] dat("bench.csv", "T,flop_per_byte,gflops", W_, s) u 2:3 \
             w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 1.0 lw 1.2 title s
    unset label 11; unset label 12; unset label 13
    set output
}
