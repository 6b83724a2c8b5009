#!/bin/sh
# run_all.sh — runs every test program, sums their "N passed, N failed"
# lines and exits non-zero if any program failed.
LB=$1; UNIT=$2; BROKEN=$3
total_p=0; total_f=0; status=0
run() {
  name=$1; shift
  echo "== $name: $*"
  start=$(date +%s)
  "$@" >/tmp/latbench-test.$$ 2>&1; rc=$?
  cat /tmp/latbench-test.$$
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' /tmp/latbench-test.$$ | tail -1)
  p=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
  f=$(echo "$summary" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_p=$((total_p+p)); total_f=$((total_f+f))
  [ "$rc" -ne 0 ] && status=1
  echo "== $name: exit $rc, $(( $(date +%s) - start )) s"
  rm -f /tmp/latbench-test.$$
}
run unit     "$UNIT"
run cli      sh tests/cli.sh "$LB"
run sweep    sh tests/sweep.sh "$LB"
run faults   sh tests/faults.sh "$LB"
run report   sh tests/report.sh "$LB"
run check    "$LB" check --quiet --long 65536
run negative sh tests/negative.sh "$LB" "$BROKEN"
run determinism sh tests/determinism.sh "$LB"
run claims   env FUZZ=50 sh tests/claims.sh "$LB"
BIN_DIR=$(dirname "$LB")
for h in suite cli claims; do  # committed fuzz corpora (seeds + every past crash)
  run "fuzz-corpus-$h" "$BIN_DIR/fuzz_replay_$h" "tests/fuzz/corpus_$h"
done
run crosscheck /usr/bin/python3 scripts/crosscheck.py --latbench "$LB"  # numpy, from the papers' equations
run mq_grad "$BIN_DIR/mq_grad"  # every trainable mixer's backward vs finite differences
run mqar-gradcheck "$LB" mqar --gradcheck   # whole model vs finite differences, loss falls, thread determinism
run mqar-tiny sh -c 'd=$(mktemp -d) && "$1" mqar --tier tiny --out "$d/run" && test -s "$d/run/mqar.csv" && test -s "$d/run/mqar.md"; rc=$?; rm -rf "$d"; exit $rc' sh "$LB"
echo "$total_p passed, $total_f failed"
exit $status
