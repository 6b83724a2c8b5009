#!/bin/sh
# run_all.sh — the main job (make run-all): test gate → roofline → sweeps →
# decode → budget → accuracy → MQAR smoke → tables → figures → claims, all into one run folder.
#   scripts/run_all.sh BIN SUITE [RUN_DIR]
# Giving an existing RUN_DIR resumes it: finished cells are not re-run.
set -u
LB=$1; SUITE=${2:-quick}; RUN=${3:-}
if [ -z "$RUN" ]; then
  RUN="results/$(date -u +%Y%m%dT%H%M%SZ)_$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  [ -n "$(git status --porcelain 2>/dev/null)" ] && RUN="$RUN-dirty"
fi
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start )) s)"; }
fail() { echo "run-all: $*" >&2; exit 1; }
mkdir -p "$RUN" || fail "cannot create $RUN"

step "correctness gate: every method and form against its fp64 reference"
"$LB" check --quiet --out "$RUN" || fail "the correctness gate failed: no numbers from a failing build (see $RUN/check.csv)"
step "roofline: this machine's ceilings"
[ -s "$RUN/roofline.csv" ] || "$LB" roofline --out "$RUN" || fail "roofline failed"
step "sweep $SUITE"
"$LB" sweep "$SUITE" --out "$RUN" --resume || fail "sweep $SUITE stopped (rerun: make run-all RUN=$RUN)"
if [ "$SUITE" != decode ]; then
  step "decode"
  "$LB" sweep decode --out "$RUN" --resume || fail "decode sweep stopped (rerun: make run-all RUN=$RUN)"
fi
step "attention-map diagnostics"
"$LB" maps --out "$RUN" || fail "maps failed"
step "memory-budgeted generation throughput"
"$LB" budget --out "$RUN" --resume || fail "budget stopped (rerun: make run-all RUN=$RUN)"
if [ "$SUITE" != accuracy ]; then
  step "accuracy"
  "$LB" sweep accuracy --out "$RUN" --resume || fail "accuracy sweep stopped (rerun: make run-all RUN=$RUN)"
fi
step "task accuracy: MQAR smoke tier (make mqar runs the full tier)"
"$LB" mqar --tier smoke --out "$RUN" --resume || fail "mqar smoke tier failed (rerun: make run-all RUN=$RUN)"
step "tables"
"$LB" report "$RUN" || fail "report failed"
step "figures"
if command -v gnuplot >/dev/null 2>&1; then "$LB" plots "$RUN" || fail "plots failed"
else echo "gnuplot not installed: no figures (sudo apt-get install gnuplot-nox)"; fi
step "claims"
"$LB" claims "$RUN" || fail "claims failed"
step "done"
echo "run folder: $RUN"
[ -f "$RUN/tables/summary.md" ] && sed -n '1,40p' "$RUN/tables/summary.md"
[ -f "$RUN/claims.md" ] && grep -m1 -E '^[0-9]+ claims from' "$RUN/claims.md"
exit 0
