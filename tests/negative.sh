#!/bin/sh
# negative.sh — the checker must fail a wrong kernel: (1) a deliberately broken
# method (tests/broken_method.c, built into build/latbench-broken); (2) a
# correct kernel whose output is perturbed by 1e-2 in one element.
LB=${1:-build/latbench}
LBB=${2:-build/latbench-broken}
pass=0; fail=0
expect_fail() {
  name=$1; shift
  "$@" --quiet >/tmp/latbench-neg.out 2>&1; rc=$?
  if [ "$rc" -eq 1 ] && grep -q FAIL /tmp/latbench-neg.out; then
    pass=$((pass+1)); echo "ok   $name: check exited 1 ($(grep -c FAIL /tmp/latbench-neg.out) failing cases)"
  else
    fail=$((fail+1)); echo "FAIL $name: check exited $rc"; tail -3 /tmp/latbench-neg.out
  fi
}
expect_fail "broken kernel"     "$LBB" check --methods broken_linear_attn
expect_fail "perturbed output"  "$LB" check --methods linear_attn --perturb 1e-2
rm -f /tmp/latbench-neg.out
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
