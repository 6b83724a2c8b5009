# decode.gp — one decode step (T = 1, state updated in place) against the
# context length (log–log), one line per method.form: per-token latency at
# the largest thread count and at 1 thread (bars: p20–p80; hollow: noisy),
# and the bytes each method keeps per sequence against a KV cache of the
# same context (black dashed).
#   gnuplot -e "run='results/X'" scripts/decode.gp → results/X/plots/decode.{png,pdf}
sdir = system("dirname '".ARG0."'"); name = "decode"
load sdir."/common.gpi"

if (!has("decode.csv")) { print name.": no decode.csv in ".run." (latbench sweep decode --out ".run.")"; exit }
thrs = lstn("decode.csv", "threads", "")
if (words(thrs) == 0) { print name.": no ok/noisy rows in decode.csv"; exit }
tmax = lastword(thrs)
# latency panels: all threads, then 1 thread when measured separately
lat = tmax.(windex(thrs, "1") && tmax ne "1" ? " 1" : "")
npan = words(lat) + 1
ctxs = lstn("decode.csv", "ctx", "")
Wall = "threads=".tmax
ser = lst("decode.csv", "series", Wall)
kvs = windex(ser, "softmax.tiled") ? "softmax.tiled" : word(ser, 1)

# y range of the state panel: the smallest state to the largest cache, padded
sts = lstn("decode.csv", "state_bytes", Wall.";state_bytes>=1")
kvb = lstn("decode.csv", "kv_cache_bytes_equiv", Wall)
ylo = (words(sts) ? word(sts, 1) : word(kvb, 1)) / 3.0
yhi = (lastword(kvb) + 0 > lastword(sts) + 0 ? lastword(kvb) : lastword(sts)) * 3.0
COLS = "ctx,t_med_ns,t_p20_ns,t_p80_ns,B,noisy"
set logscale x 2
set logscale y 10
set format x "%.0f"
eval xr_log(ctxs)
xl = ctxs; load sdir."/xtics.gpi"
set xlabel "context length (tokens already seen)"

do for [fmt in "png pdf"] {
    eval out(fmt)
    set multiplot layout 1, npan title "Decode: one token with the state (or KV cache) of a context — B = 1" \
        margins 0.07, KX, 0.14, 0.88 spacing 0.07, 0.1
    eval ytics_time
    set ylabel "per-token latency (median time / B)"
    do for [i=1:words(lat)] {
        t = word(lat, i)
        W_ = "threads=".t
        set title sprintf("latency, %s thread%s", t, t eq "1" ? "" : "s")
        if (i == 1) { eval key_right; eval footer_on } else { unset key; eval footer_off }
        plot for [s in ser] dat("decode.csv", COLS, W_, s) u 1:($2 / $5 * 1e-9):($4 / $5 * 1e-9):($3 / $5 * 1e-9) \
                 w yerrorbars lc rgb scol(s) pt 7 ps 0 notitle, \
             for [s in ser] dat("decode.csv", COLS, W_, s) u 1:($2 / $5 * 1e-9) \
                 w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 title s, \
             for [s in ser] dat("decode.csv", COLS, W_, s) u 1:($6 == 1 ? $2 / $5 * 1e-9 : NaN) \
                 w p lc rgb "white" pt spt(s) ps 0.9 notitle, \
             for [s in ser] dat("decode.csv", COLS, W_, s) u 1:($6 == 1 ? $2 / $5 * 1e-9 : NaN) \
                 w p lc rgb scol(s) pt hpt(s) ps 0.9 lw 1.5 notitle
    }
    unset key
    eval footer_off
    set title "state kept per sequence"
    set ylabel "bytes"
    set ytics auto
    set format y "%.0b %BB"
    set logscale y 2
    set yrange [ylo : yhi]
    set key at graph 0.98, 0.02 right bottom Left reverse font ",8" samplen 2 width -4 box lc rgb "#cccccc" opaque
    plot for [s in ser] dat("decode.csv", "ctx,state_bytes", Wall, s) u 1:($2 > 0 ? $2 : NaN) \
             w lp lc rgb scol(s) dt sdt(s) pt spt(s) ps 0.9 lw 1.5 notitle, \
         dat("decode.csv", "ctx,kv_cache_bytes_equiv", Wall, kvs) u 1:2 w l lc rgb "black" dt 2 lw 2 \
             title "KV cache of the same context"
    set logscale y 10
    set autoscale y
    unset multiplot
    set output
}
