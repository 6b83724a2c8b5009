#!/bin/sh
# cli.sh — bad input gets one clear line on stderr, exit status 2, and no
# partial file. Usage: tests/cli.sh [path/to/latbench]
LB=${1:-build/latbench}
tmp=$(mktemp -d /tmp/latbench-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0

# expect_err NAME PATTERN ARGS... : exit 2, exactly one stderr line matching PATTERN, no run folder
expect_err() {
  name=$1; pat=$2; shift 2
  out="$tmp/out-$pass-$fail"
  "$LB" "$@" >"$tmp/stdout" 2>"$tmp/stderr"; rc=$?
  lines=$(wc -l <"$tmp/stderr")
  if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && grep -q -- "$pat" "$tmp/stderr" \
     && [ ! -e "$tmp/run/bench.csv" ]; then
    pass=$((pass+1)); echo "ok   $name: $(cat "$tmp/stderr")"
  else
    fail=$((fail+1)); echo "FAIL $name: rc=$rc lines=$lines stderr: $(cat "$tmp/stderr")"
  fi
}

R="run --out $tmp/run"
expect_err "unknown command"     "allowed: list, run, check, sweep, merge, roofline" frobnicate
expect_err "unknown method"      "known: softmax"            $R --method nosuch --form x --B 1 --T 8 --H 1 --D 8
expect_err "unknown form"        "it has:"                   $R --method gla --form nosuch --B 1 --T 8 --H 1 --D 8
expect_err "missing method"      "--method is required"      $R --form chunk --B 1 --T 8 --H 1 --D 8
expect_err "missing size"        "are all required"          $R --method gla --form chunk --B 1 --H 1 --D 8
expect_err "non-numeric size"    "--T must be an integer"    $R --method gla --form chunk --B 1 --T abc --H 1 --D 8
expect_err "zero size"           "--B must be an integer"    $R --method gla --form chunk --B 0 --T 8 --H 1 --D 8
expect_err "negative size"       "--H must be an integer"    $R --method gla --form chunk --B 1 --T 8 --H -3 --D 8
expect_err "missing value"       "needs a value"             $R --method gla --form chunk --B 1 --T 8 --H 1 --D
expect_err "unknown option"      "unknown option --frob"     $R --method gla --form chunk --B 1 --T 8 --H 1 --D 8 --frob 3
expect_err "knob out of range"   "unsupported: chunk=0"      $R --method gla --form chunk --B 1 --T 8 --H 1 --D 8 --chunk 0
expect_err "causal out of range" "unsupported: causal=7"             $R --method softmax --form tiled --B 1 --T 8 --H 1 --D 8 --causal 7
expect_err "too much memory"     "GiB is available"          $R --method gla --form chunk --B 16 --T 1048576 --H 16 --D 256
expect_err "unwritable --out"    "cannot create the folder"  run --out /proc/latbench-no --method gla --form chunk --B 1 --T 8 --H 1 --D 8
touch "$tmp/afile"
expect_err "--out is a file"     "cannot create the folder"  run --out "$tmp/afile/x" --method gla --form chunk --B 1 --T 8 --H 1 --D 8
expect_err "unwritable --dump"   "--dump"                    $R --dump /proc/latbench-no --method gla --form chunk --B 1 --T 8 --H 1 --D 8
expect_err "bad check option"    "bad option"                check --frob
expect_err "check unknown method" "unknown method 'nosuch'"  check --methods gla,nosuch
expect_err "bad --accuracy"      "takes on or off"           $R --method gla --form chunk --B 1 --T 8 --H 1 --D 8 --accuracy maybe

# and a good run writes the row, meta.json and a parseable dump
if "$LB" run --out "$tmp/good" --dump "$tmp/dump" --method gla --form chunk --B 1 --T 70 --H 2 --D 16 \
     --reps 2 --min-time 0 >"$tmp/stdout" 2>"$tmp/stderr" \
   && [ -s "$tmp/good/bench.csv" ] && [ -s "$tmp/good/meta.json" ] && [ -s "$tmp/dump/out.npy" ] \
   && [ "$(wc -l <"$tmp/good/bench.csv")" -eq 2 ]; then
  pass=$((pass+1)); echo "ok   good run writes bench.csv, meta.json and the dump"
else
  fail=$((fail+1)); echo "FAIL good run: $(cat "$tmp/stderr")"
fi
# the dump loads in numpy and reproduces the printed errors, for every method
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  for m in $("$LB" list --names); do
    form=$("$LB" list | awk -v m="$m" '/^[^ ]/ && $1 == m { print $4 }')
    rm -rf "$tmp/d"
    "$LB" run --out "$tmp/good" --dump "$tmp/d" --method "$m" --form "$form" --B 1 --T 77 --H 2 --D 16 \
        --reps 1 --min-time 0 >"$tmp/stdout" 2>"$tmp/stderr"
    printed=$(sed -n 's/.* rel_rmse \([^ ]*\) .*/\1/p' "$tmp/stdout")
    if /usr/bin/python3 - "$tmp/d" "$printed" <<'PY'
import sys, numpy as np
d, printed = sys.argv[1], float(sys.argv[2])
o, r = np.load(d + "/out.npy"), np.load(d + "/ref_out.npy")
e = np.linalg.norm(o.astype(np.float64) - r) / np.linalg.norm(r)
sys.exit(0 if o.dtype == np.float32 and r.dtype == np.float64 and abs(e - printed) <= 1e-2 * printed + 1e-30 else 1)
PY
    then pass=$((pass+1)); echo "ok   $m.$form dump: numpy rel_rmse matches the printed $printed"
    else fail=$((fail+1)); echo "FAIL $m.$form dump: numpy disagrees with the printed '$printed'"; fi
  done
else
  echo "skip dump check: /usr/bin/python3 with numpy not installed"
fi
# budget: bad points, unknown method, unknown option, rows without --resume
expect_err "budget bad points"   "PROMPT:GENERATED"          budget --out "$tmp/bud" --points 2048:x
expect_err "budget unknown method" "known: softmax"          budget --out "$tmp/bud" --methods nosuch
expect_err "budget unknown option" "unknown option"          budget --out "$tmp/bud" --frob 1
expect_err "budget bad budget"   "--budget-gib"              budget --out "$tmp/bud" --budget-gib -1
mkdir -p "$tmp/bud2"; echo "run_id,method" > "$tmp/bud2/budget.csv"
expect_err "budget existing rows" "use --resume"             budget --out "$tmp/bud2" --methods gla
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
