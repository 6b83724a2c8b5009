# threads.gp — thread scaling: speed-up t(1 thread) / t(n threads) and
# parallel efficiency against the thread count, one line per method.form, at
# the largest T measured on 1 thread (D = 64 when measured), from the
# `scaling` grid when the run has one. Dashed black: ideal. Error bars: the
# speed-up at the p80 and p20 times of n threads; hollow: noisy cells.
#   gnuplot -e "run='results/X'" scripts/threads.gp → results/X/plots/threads.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "threads"
load sdir."/common.gpi"

if (!has("bench.csv")) { print name.": no bench.csv in ".run; exit }
G = (windex(lst("bench.csv", "grid", "threads=1"), "scaling") ? "grid=scaling;" : "")
Ds = lstn("bench.csv", "V", G."threads=1")
if (words(Ds) == 0) { print name.": no 1-thread rows in bench.csv (run latbench sweep scaling)"; exit }
D = windex(Ds, "64") ? "64" : word(Ds, 1)
T = lastword(lstn("bench.csv", "T", G."threads=1;V=".D))
W_ = G."V=".D.";T=".T
thr = lstn("bench.csv", "threads", W_)
if (words(thr) < 2) { print name.": only one thread count measured at T = ".T.", D = ".D; exit }
ser = lst("bench.csv", "series", W_)
tmax = lastword(thr) + 0

# threads, speed-up, its p20–p80 range, noisy; nothing when the 1-thread row is missing
SPEED = " | awk 'NR == 1 && $1 != 1 { exit } NR == 1 { t1 = $2 } { print $1, t1 / $2, t1 / $4, t1 / $3, $5 }'"
sp(s) = dat("bench.csv", "threads,t_med_ns,t_p20_ns,t_p80_ns,noisy", W_, s).SPEED

set xrange [0.8 : tmax + 0.2]
set xtics 1
set xlabel "OpenMP threads (pinned to cores)"

do for [fmt in "png pdf"] {
    eval out(fmt)
    set multiplot layout 1, 2 title sprintf("Thread scaling at T = %s, D = %s, B = 1; threads pinned (OMP_PLACES=cores, OMP_PROC_BIND=close)%s", T, D, G eq "" ? "" : " (scaling grid)") \
        margins 0.07, KX, 0.14, 0.88 spacing 0.08, 0.1
    set title "speed-up over 1 thread"
    set ylabel "speed-up t(1) / t(n)"
    set yrange [0 : tmax + 0.5]
    eval key_right
    eval footer_on
    plot x w l lc rgb "black" dt 2 lw 1.5 title "ideal", \
         for [s in ser] sp(s) u 1:2:3:4 w yerrorbars lc rgb scol(s) pt 7 ps 0 notitle, \
         for [s in ser] sp(s) u 1:2 w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 title s, \
         for [s in ser] sp(s) u 1:($5 == 1 ? $2 : NaN) w p lc rgb "white" pt spt(s) ps 0.9 notitle, \
         for [s in ser] sp(s) u 1:($5 == 1 ? $2 : NaN) w p lc rgb scol(s) pt hpt(s) ps 0.9 lw 1.5 notitle
    unset key
    eval footer_off
    set title "parallel efficiency"
    set ylabel "speed-up / threads"
    set yrange [0 : 1.3]
    plot 1 w l lc rgb "black" dt 2 lw 1.5 notitle, \
         for [s in ser] sp(s) u 1:($2 / $1) w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 notitle
    unset multiplot
    set output
}
