#!/bin/sh
# claims.sh — `latbench claims`: the predicate evaluator on hand-written data
# and the real claims table on a real small run.
#  1. a synthetic run folder (softmax ∝ T², gla ∝ T, linear_attn ∝ T^1.5, …)
#     and a small claims TSV: every verdict (holds / does not hold / not
#     measurable here / method not yet implemented), analytic rows, joins,
#     status and threads=max filters, crossover, integral, at, min_step;
#  2. malformed TSVs: one line "file:line: reason" per error, exit 2, nothing
#     written;
#  3. mutated copies of data/claims.tsv: never a crash (exit 0 or 2 only);
#  4. data/claims.tsv on a real tiny sweep: every row gets a verdict.
LB=${1:-build/latbench}
FUZZ=${FUZZ:-150}
tmp=$(mktemp -d /tmp/latbench-claims-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   $*"; }
bad() { fail=$((fail+1)); echo "FAIL $*"; }
"$LB" claims --help >/dev/null 2>&1 || { echo "FAIL $LB claims --help does not run"; echo "0 passed, 1 failed"; exit 1; }

# ---- 1. synthetic run ---------------------------------------------------------------
run=$tmp/run
mkdir -p "$run"
cat >"$run/meta.json" <<'EOF'
{
  "schema_version": 1,
  "run_id": "synthetic",
  "cpu_model": "Test CPU",
  "cores": 2,
  "compiler": "cc test",
  "git_commit": "abc123"
}
EOF
awk 'BEGIN {
  print "schema_version,run_id,grid,method,form,B,T,H,K,V,knobs,threads,status,t_med_ns,workspace_bytes,state_bytes,alloc_peak_bytes"
  for (T = 512; T <= 8192; T *= 2) {
    printf "1,s,throughput,softmax,parallel,1,%d,8,64,64,causal=1,2,ok,%.0f,%.0f,0,0\n", T, 0.06 * T * T, 8 * T * T
    printf "1,s,throughput,softmax,tiled,1,%d,8,64,64,causal=1,2,noisy,%.0f,4096,0,0\n", T, 0.05 * T * T
    printf "1,s,throughput,softmax,tiled,1,%d,8,64,64,causal=1,1,ok,7,4096,0,0\n", T
    printf "1,s,throughput,gla,chunk,1,%d,8,64,64,chunk=64,2,ok,%.0f,0,131072,0\n", T, 50 * T
    printf "1,s,throughput,gla,recurrent,1,%d,8,64,64,chunk=64,2,ok,%.0f,0,131072,0\n", T, 200 * T
    printf "1,s,throughput,linear_attn,chunk,1,%d,8,64,64,chunk=64,2,ok,%.0f,0,0,0\n", T, 30 * T ^ 1.5
  }
  print "1,s,throughput,gla,chunk,1,16384,8,64,64,chunk=64,2,failed,1,0,0,0"
  print "1,s,gla_C16,gla,chunk,1,4096,8,64,64,chunk=16,2,ok,1000,0,0,0"
  print "1,s,gla_C64,gla,chunk,1,4096,8,64,64,chunk=64,2,ok,1200,0,0,0"
}' >"$run/bench.csv"
awk 'BEGIN {
  print "schema_version,run_id,grid,method,form,B,H,K,V,knobs,threads,ctx,status,t_med_ns,state_bytes,state_bytes_measured"
  for (c = 256; c <= 8192; c *= 2) {
    printf "1,s,decode,gla,recurrent,1,8,64,64,chunk=64;pos=%d,1,%d,ok,%d,131072,131072\n", c, c, 1000 + (c % 3)
    printf "1,s,decode,softmax,tiled,1,8,64,64,causal=1;pos=%d,1,%d,ok,%d,%d,%d\n", c, c, 10 * c, 4*8*(c+1)*128, 4*8*(c+1)*128
  }
}' >"$run/decode.csv"
cat >"$run/check.csv" <<'EOF'
method,form,cmp,B,T,H,K,V,knobs,threads,inputs,pos,rel_rmse,max_abs,worst_row,state_rel_rmse,nonfinite,tol,passed
gla,chunk,form:recurrent,1,64,2,64,64,chunk=64,1,typical,0,1e-7,1e-6,2e-7,0,0,1e-5,1
gla,chunk,form:recurrent,1,1000,2,64,64,chunk=64,1,harsh,0,1e-6,2e-4,1e-5,0,0,1e-5,1
linear_attn,chunk,form:recurrent,1,64,2,64,64,chunk=64,1,typical,0,0.1,0.5,0.1,0,0,1e-5,0
EOF

# two planned methods that are not registered yet (the registry grows: pick them now)
names=$("$LB" list --names)
NYI=; NYI2=
for m in softmax sliding_window block_local sparse_strided longformer performer rfa flatten agent efficientvit slab \
         based based_hybrid linear_attn gla retnet deltanet gated_deltanet hgrn2 mamba mamba2 rwkv6 s4d mlstm; do
  printf '%s\n' "$names" | grep -qx "$m" && continue
  if [ -z "$NYI" ]; then NYI=$m; elif [ -z "$NYI2" ]; then NYI2=$m; fi
done
if [ -z "$NYI2" ]; then  # every planned method is registered: two test-only planned names
  NYI=nyi_alpha; NYI2=nyi_beta
  LATBENCH_TEST_PLANNED=$NYI,$NYI2; export LATBENCH_TEST_PLANNED
  [ -n "$(printf '%s\n' "$names" | grep -x "$NYI")" ] && NYI=
fi
T=$(printf '\t')
row() { printf '%s\n' "$1${T}$2${T}src${T}claim $1${T}reported${T}setting${T}$3${T}V${T}note $1"; }
{
  printf '# a comment line\n'
  printf 'id\tmethod\tsource\tclaim\treported\tsetting\tpredicate\tprovenance\tnote\n'
  row S1 softmax 'slope(bench{grid=throughput,method=softmax,threads=max}, T, t_med_ns) in [1.8, 2.2]'
  row S2 gla 'slope(bench{grid=throughput,method=gla,D=64,threads=max}, T, t_med_ns) in [0.9, 1.15]'
  row S3 linear_attn 'slope(bench{grid=throughput,method=linear_attn,threads=max}, T, t_med_ns) in [0.9, 1.15]'
  row S4 $NYI "slope(bench{grid=throughput,method=$NYI}, T, t_med_ns) in [0.9, 1.15]"
  row S5 gla 'S := decode{method=gla,threads=1}; at(S, ctx, t_med_ns, 32768) / at(S, ctx, t_med_ns, 256) in [0.8, 1.25]'
  row S6 - 'na("GPU only: A100 kernels")'
  row S7 - 'x := 2; x + x == 4 and 2^10 >= 1000'
  row S8 gla 'max(mqar{method=gla}, acc) >= 0.9'
  row S9 gla 'S := decode{method=gla,threads=1}; at(S, ctx, t_med_ns, 8192) / at(S, ctx, t_med_ns, 256) in [0.8, 1.25]'
  row S10 softmax 'S := decode{method=softmax,threads=1}; at(S, ctx, t_med_ns, 8192) / at(S, ctx, t_med_ns, 256) >= 10'
  row S11 gla\|softmax 'crossover(bench{grid=throughput,method=gla,form=chunk,threads=max}, bench{grid=throughput,method=softmax,form=tiled,threads=max}, T, t_med_ns) <= 4096'
  row S12 gla\|linear_attn 'max(check{method=gla|linear_attn,cmp=form:recurrent}, min(max_abs / 1e-4, worst_row / 1e-3), method) <= 1'
  row S13 gla 'R := bench{grid=throughput,form=recurrent,method=gla|linear_attn,threads=max}; C := bench{grid=throughput,form=chunk,method=gla|linear_attn,threads=max}; value(R, t_med_ns) / value(C, t_med_ns) >= 2'
  row S14 "gla|$NYI" "slope(bench{grid=throughput,method=gla|$NYI,threads=max}, T, t_med_ns) in [0.9, 1.15]"
  row S15 gla "max(bench{method=$NYI|$NYI2}, t_med_ns) >= 0"
  row S16 gla 'integral(decode{method=gla,threads=1}, ctx, t_med_ns, 0, 4096) in [4.0e6, 4.2e6]'
  row S17 gla 'S := bench{grid=gla_C*,method=gla,T=4096}; at(S, chunk, t_med_ns, 64) / at(S, chunk, t_med_ns, 16) <= 1.25'
  row S18 softmax 'min(bench{grid=throughput,method=softmax,form=parallel,threads=max}, workspace_bytes / (4*T*T)) >= 1 and slope(bench{grid=throughput,method=softmax,form=tiled,threads=max}, T, workspace_bytes) <= 1.15'
  row S19 gla 'min_step(bench{grid=throughput,method=gla,threads=max}, T, t_med_ns) > 0'
  row S20 softmax 'max(decode{method=softmax}, abs(state_bytes_measured / (4*B*H*(ctx+1)*(K+V)) - 1)) <= 0'
  row S21 gla\|softmax 'value(bench{grid=throughput,method=softmax,form=tiled,T=4096,threads=max}, t_med_ns) / value(bench{grid=throughput,method=gla,form=chunk,T=4096,threads=max}, t_med_ns) >= 2'
  row S22 gla 'count(bench{grid=throughput,method=gla,status=failed}) == 1'
  row S23 "$NYI|softmax" "value(bench{method=softmax,grid=vision}, t_med_ns) / value(bench{method=$NYI,grid=vision}, t_med_ns) >= 2"
} >"$tmp/t.tsv"

"$LB" claims "$run" --tsv "$tmp/t.tsv" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" -eq 0 ] && ok "claims on the synthetic run: exit 0" || bad "claims on the synthetic run: exit $rc: $(cat "$tmp/err")"
verdict() { awk -F, -v id="$1" 'NR > 1 && $3 == id { print $7 }' "$run/claims.csv"; }
expect() { # ID VERDICT [PATTERN in the claims.csv row]
  v=$(verdict "$1")
  line=$(awk -F, -v id="$1" 'NR > 1 && $3 == id' "$run/claims.csv")
  if [ "$v" = "$2" ] && { [ -z "$3" ] || printf '%s' "$line" | grep -q -- "$3"; }; then ok "$1: $2${3:+ ($3)}"
  else bad "$1: expected '$2'${3:+ with /$3/}, got: $line"; fi
}
expect S1 holds "softmax.parallel 2 (R² 1.000; 5 pts"
expect S2 holds "gla.chunk 1 "
expect S3 "does not hold" "1.5 .*✗"
expect S4 "method not yet implemented" "not yet implemented: $NYI"
expect S5 "not measurable here" "no row with ctx = 32768"
expect S6 "not measurable here" "GPU only: A100 kernels"
expect S7 holds "analytic"
expect S8 "not measurable here" "no mqar.csv in the run"
expect S9 holds
expect S10 holds "softmax.tiled 32"
expect S11 holds "softmax.tiled 1024 (slower at 512; faster from 1024 to 8192)"
expect S12 "does not hold" "gla.chunk 0.01 (max of 2 rows); linear_attn.chunk 100 ✗"
expect S13 holds "gla.recurrent / gla.chunk T=512 4; .*unpaired; left out: linear_attn.chunk"
expect S14 holds "1 of 2 methods; not yet implemented: $NYI"
expect S15 "method not yet implemented" "not yet implemented: $NYI; $NYI2"
expect S16 holds "gla.recurrent 4102016"
expect S17 holds "1.2"
expect S18 holds
expect S19 holds
expect S20 holds
expect S21 holds
expect S22 holds
expect S23 "method not yet implemented" "$NYI"
grep -q '^| S1 | softmax |' "$run/claims.md" && grep -q '^Machine: Test CPU, 2 cores' "$run/claims.md" \
  && ok "claims.md: table row and machine line" || bad "claims.md lacks the table row or machine line"
n_md=$(grep -c '^| S[0-9]' "$run/claims.md"); n_csv=$(($(wc -l <"$run/claims.csv") - 1))
[ "$n_md" -eq 23 ] && [ "$n_csv" -eq 23 ] && ok "claims.md and claims.csv: one row per claim (23)" \
  || bad "claims.md has $n_md rows, claims.csv $n_csv (expected 23)"
awk -F, 'NR==1 { n=NF; next } NF != n { exit 1 }' "$run/claims.csv" && ok "claims.csv: every row has the header's field count" \
  || bad "claims.csv has a row with a wrong field count"
grep -q '^23 claims: 15 hold, 2 do not hold, 3 not measurable here, 3 method not yet implemented' "$tmp/out" \
  && ok "summary line" || bad "summary line: $(tail -2 "$tmp/out" | head -1)"

# ---- 2. malformed TSVs --------------------------------------------------------------------
bad_tsv() { # NAME LINE PATTERN CONTENT
  printf '%b' "$4" >"$tmp/bad.tsv"
  rm -f "$tmp/badrun/claims.md"; mkdir -p "$tmp/badrun"
  "$LB" claims "$tmp/badrun" --tsv "$tmp/bad.tsv" >/dev/null 2>"$tmp/err"; rc=$?
  if [ "$rc" -eq 2 ] && grep -q "bad.tsv:$2: .*$3" "$tmp/err" && [ ! -e "$tmp/badrun/claims.md" ]; then
    ok "malformed TSV, $1: $(head -1 "$tmp/err")"
  else bad "malformed TSV, $1: rc=$rc $(cat "$tmp/err")"; fi
}
H='id\tmethod\tsource\tclaim\treported\tsetting\tpredicate\tprovenance\tnote\n'
r() { printf '%s\\tgla\\ts\\tc\\tr\\tst\\t%s\\tV\\tn\\n' "$1" "$2"; }
bad_tsv "syntax"          3 "X2: predicate, column 27: expected ','" "$H$(r X1 '1 <= 2')$(r X2 'slope(bench{method=gla}, T')"
bad_tsv "unknown table"   2 "unknown name 'benc'" "$H$(r X1 'max(benc{method=gla}, T) <= 1')"
bad_tsv "unknown field"   2 "unknown field 'methd' of bench" "$H$(r X1 'max(bench{methd=gla}, T) <= 1')"
bad_tsv "unknown column"  2 "unknown field 't_median' of decode" "$H$(r X1 'max(decode{method=gla}, t_median) <= 1')"
bad_tsv "unknown method"  2 "unknown method 'glaa'" "$H$(r X1 'max(bench{method=glaa}, T) <= 1')"
bad_tsv "unknown function" 2 "unknown name 'median'" "$H$(r X1 'median(bench{method=gla}, T) <= 1')"
bad_tsv "not a comparison" 2 "expected a comparison" "$H$(r X1 'max(bench{method=gla}, T)')"
bad_tsv "selector as number" 2 "is rows, not a number" "$H$(r X1 'bench{method=gla} <= 1')"
bad_tsv "field count"     3 "expected 9 tab-separated fields, found 8" "${H}X1\tgla\ts\tc\tr\tst\t1 <= 2\tV\tn\nX2\tgla\ts\tc\tr\tst\t1 <= 2\tV\n"
bad_tsv "duplicate id"    3 "id 'X1' already used on line 2" "$H$(r X1 '1 <= 2')$(r X1 '1 <= 2')"
bad_tsv "header"          1 "lacks column 'note'" "id\tmethod\tsource\tclaim\treported\tsetting\tpredicate\tprovenance\n"
bad_tsv "method column"   2 "unknown method 'nope'" "${H}X1\tgla|nope\ts\tc\tr\tst\t1 <= 2\tV\tn\n"
bad_tsv "na not whole"    2 "must be the whole predicate" "$H$(r X1 "na(\"x\") and 1 <= 2")"
bad_tsv "deep nesting"    2 "nested more than" "$H$(r X1 "$(printf '%0.s(' $(seq 60))1$(printf '%0.s)' $(seq 60)) <= 2")"
bad_tsv "expansion bomb"  2 "expression too large" "$H$(r X1 'a := 1+1; b := a+a; c := b+b; d := c+c; e := d+d; f := e+e; g := f+f; h := g+g; i := h+h; j := i+i; k := j+j; l := k+k; m := l+l; n := m+m; o := n+n; o <= 1')"
printf "${H}$(r X1 'slope(bench{method=gla}, T')$(r X2 'max(bench{x=1}, T) <= 1')" >"$tmp/two.tsv"
"$LB" claims --check --tsv "$tmp/two.tsv" 2>"$tmp/err" >/dev/null; rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 2 ] && grep -q 'two.tsv:2:' "$tmp/err" && grep -q 'two.tsv:3:' "$tmp/err" \
  && ok "--check reports every bad line (2 errors, exit 2)" || bad "--check: rc=$rc $(cat "$tmp/err")"
"$LB" claims --check --tsv data/claims.tsv >/dev/null 2>"$tmp/err" && ok "data/claims.tsv parses" \
  || bad "data/claims.tsv: $(cat "$tmp/err")"

# ---- 3. mutated TSVs never crash -----------------------------------------------------------
i=0; crashes=0; parsed=0
while [ $i -lt "$FUZZ" ]; do
  size=$(wc -c <data/claims.tsv)
  awk -v seed="$i" -v size="$size" 'BEGIN { srand(seed); n = 1 + int(rand() * 8)
      for (k = 0; k < n; k++) pos[int(rand() * size)] = substr("(){}[],;|=<>*\"\t\n#:-0123456789eaxT", 1 + int(rand() * 36), 1) }
    { line = $0 "\n"; out = ""
      for (j = 1; j <= length(line); j++) { p = off + j - 1; out = out ((p in pos) ? pos[p] : substr(line, j, 1)) }
      off += length(line); printf "%s", out }' data/claims.tsv >"$tmp/mut.tsv"
  "$LB" claims --check --tsv "$tmp/mut.tsv" >/dev/null 2>&1; rc=$?
  if [ "$rc" -eq 0 ]; then
    parsed=$((parsed+1))
    "$LB" claims "$run" --tsv "$tmp/mut.tsv" --quiet >/dev/null 2>&1; rc=$?
  fi
  [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || { crashes=$((crashes+1)); cp "$tmp/mut.tsv" "/tmp/latbench-claims-crash-$i.tsv"; }
  i=$((i+1))
done
[ "$crashes" -eq 0 ] && ok "$FUZZ mutated claims.tsv files: no crash ($parsed still parsed and were evaluated)" \
  || bad "$crashes of $FUZZ mutated TSVs crashed the parser (kept as /tmp/latbench-claims-crash-*.tsv)"
head -c 3000 data/claims.tsv >"$tmp/trunc.tsv"
"$LB" claims --check --tsv "$tmp/trunc.tsv" >/dev/null 2>&1; rc=$?
{ [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]; } && ok "truncated claims.tsv: exit $rc" || bad "truncated claims.tsv: exit $rc"
head -c 4000 /dev/urandom >"$tmp/rand.tsv"
"$LB" claims --check --tsv "$tmp/rand.tsv" >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] && ok "random bytes: exit 2" || bad "random bytes: exit $rc"

# ---- 4. the real table on a real tiny run -------------------------------------------------------
real=$tmp/tiny
"$LB" sweep tests/suites/tiny.suite --out "$real" >/dev/null 2>&1 || bad "tiny sweep exited $?"
"$LB" check --quiet --methods softmax,gla --out "$real" >/dev/null 2>&1
"$LB" claims "$real" >"$tmp/out" 2>"$tmp/err"; rc=$?
n_tsv=$(grep -v '^#' data/claims.tsv | grep -c .); n_tsv=$((n_tsv - 1))
n_csv=$(($(wc -l <"$real/claims.csv") - 1))
n_md=$(grep -c '^| [A-Z]' "$real/claims.md")
[ "$rc" -eq 0 ] && [ "$n_csv" -eq "$n_tsv" ] && [ "$n_md" -eq "$n_tsv" ] \
  && ok "data/claims.tsv on a tiny sweep: $n_tsv claims, each in claims.md and claims.csv" \
  || bad "tiny sweep: rc=$rc, $n_tsv claims, claims.csv $n_csv rows, claims.md $n_md rows: $(cat "$tmp/err")"
bad_v=$(awk -F, 'NR > 1 && $7 != "holds" && $7 != "does not hold" && $7 != "not measurable here" && $7 != "method not yet implemented"' "$real/claims.csv" | wc -l)
[ "$bad_v" -eq 0 ] && ok "every verdict is one of the four: $(tail -2 "$tmp/out" | head -1)" || bad "$bad_v rows without a verdict"
awk -F, 'NR > 1 && ($7 == "not measurable here" || $7 == "method not yet implemented") && $9 == ""' "$real/claims.csv" | grep -q . \
  && bad "a not-measurable / not-implemented verdict without a reason" || ok "every not-measurable / not-implemented verdict gives a reason"
grep -q '^| G4d |.*holds\*\* (analytic)' "$real/claims.md" && ok "G4d evaluated analytically" || bad "G4d is not an analytic holds"
grep -q '^| SM1a |.*\*\*holds\*\*' "$real/claims.md" && ok "SM1a holds from this run's check.csv" || bad "SM1a: $(grep '^| SM1a' "$real/claims.md")"

# ---- 5. MQAR published reference points (data/mqar_refpoints.tsv beside the claims file) ----------
mq=$tmp/mq; mkdir -p "$mq/data" "$mq/run"
printf '# no claims\nid\tmethod\tsource\tclaim\treported\tsetting\tpredicate\tprovenance\tnote\n' >"$mq/data/claims.tsv"
{
  printf '# test references\nid\tsource\tmodel\tmethod\ttier\tL\tpairs\tD\tmatch\tstate_bytes\tacc\ttol\n'
  printf 'R1\tzoo-fig2\tAttention\tsoftmax\tcore|tradeoff\t128\t8\t64\tsize=64\t-\t0.98\t0.03\n'
  printf 'R2\tzoo-fig2\tAttention\tsoftmax\tcore|tradeoff\t64\t4\t64\tsize=64\t-\t0.97\t0.03\n'
  printf 'R3\tzoo-readme\tGLA\tgla\ttradeoff\t-\t-\t64\tstate\t1.8e4\t0.77\t0.03\n'
  printf 'R4\tzoo-readme\tGLA\tgla\ttradeoff\t-\t-\t64\tstate\t6.8e4\t0.95\t0.03\n'
  printf 'R5\tzoo-readme\tH3\t-\ttradeoff\t-\t-\t64\t-\t8e3\t0.19\t0.03\n'
  printf 'R6\tzoo-readme\tAttention\tsoftmax\ttradeoff\t-\t-\t128\tsize=128\t1.05e6\t1.00\t0.03\n'
} >"$mq/data/mqar_refpoints.tsv"
{
  echo 'task,tier,method,form,size_knob,size,state_bytes,L,pairs,lr,n_seeds,acc_mean,acc_sd,acc_all_mean'
  echo 'mqar,core,softmax,core,D,64,65536,128,8,0.003,3,0.990000,0.005000,0.990000'
  echo 'mqar,tradeoff,softmax,tradeoff,D,64,32768,64,4,0.003,1,0.900000,0.000000,0.950000'
  echo 'mqar,tradeoff,softmax,tradeoff,D,64,262144,512,128,0.003,1,0.990000,0.000000,0.950000'
  echo 'mqar,tradeoff,gla,tradeoff,dk,16,4096,512,128,0.003,1,0.500000,0.000000,0.600000'
  echo 'mqar,tradeoff,gla,tradeoff,dk,32,8192,512,128,0.003,1,0.700000,0.000000,0.700000'
  echo 'mqar,tradeoff,gla,tradeoff,dk,64,16384,512,128,0.003,1,0.700000,0.000000,0.750000'
} >"$mq/run/mqar_summary.csv"
"$LB" claims "$mq/run" --tsv "$mq/data/claims.tsv" >"$tmp/out" 2>"$tmp/err"; rc=$?
refrow() { grep "^| $1 |" "$mq/run/claims.md"; }
[ "$rc" -eq 0 ] && grep -q 'MQAR reference points (spec B.2): 2 agree, 1 differ, 3 not comparable' "$tmp/out" \
  && ok "MQAR reference points: 2 agree, 1 differs, 3 not comparable" \
  || bad "MQAR reference points: rc=$rc $(grep MQAR "$tmp/out") $(cat "$tmp/err")"
refrow R1 | grep -q '0.990 ± 0.005 (core, D=64; 3 seeds).*agrees' && ok "R1: the core slice, mean ± sd over seeds, agrees" || bad "R1: $(refrow R1)"
refrow R2 | grep -q '0.900 (tradeoff, D=64).*differs by -0.070' && ok "R2: falls back to the trade-off tier's slice, differs by -0.070" || bad "R2: $(refrow R2)"
refrow R3 | grep -q '0.750 (tradeoff, dk=64) | 1.64e+04 | -0.020 | agrees' && ok "R3: nearest state (dk=64), overall accuracy, agrees" || bad "R3: $(refrow R3)"
refrow R4 | grep -q 'not comparable: our nearest gla state is 1.64e+04 bytes (dk=64), more than 2× away' && ok "R4: a state more than 2× away is not comparable" || bad "R4: $(refrow R4)"
refrow R5 | grep -q 'not comparable: latbench has no H3 mixer' && ok "R5: no such mixer" || bad "R5: $(refrow R5)"
refrow R6 | grep -q 'not comparable: no softmax run with its size knob = 128' && ok "R6: no run at that width" || bad "R6: $(refrow R6)"
printf 'id\tsource\tmodel\nR1\tx\n' >"$mq/data/mqar_refpoints.tsv"
"$LB" claims "$mq/run" --tsv "$mq/data/claims.tsv" >"$tmp/out" 2>"$tmp/err"; rc=$?
grep -q "mqar_refpoints.tsv:1: the header has no column 'method'" "$tmp/err" && ok "malformed reference file: one line saying what is wrong" \
  || bad "malformed reference file: rc=$rc $(cat "$tmp/err")"
awk -F'\t' '!/^#/ && NF && NF != 12 { exit 1 }' data/mqar_refpoints.tsv \
  && ok "data/mqar_refpoints.tsv: 12 tab-separated fields on every line" || bad "data/mqar_refpoints.tsv is malformed"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
