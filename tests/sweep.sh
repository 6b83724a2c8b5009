#!/bin/sh
# sweep.sh — the sweep keeps every finished row and resumes exactly:
#  1. SIGKILL at random points (N times), then --resume: the same set of
#     cells as an uninterrupted run, no duplicate, no truncated row;
#  2. SIGINT: the current cell finishes, exit 130, --resume completes;
#  3. two shards merged = one unsharded run;
#  4. malformed suite files: one line "file:line: reason", exit 2.
LB=${1:-build/latbench}
KILLS=${KILLS:-20}
SUITE=tests/suites/tiny.suite
tmp=$(mktemp -d /tmp/latbench-sweep-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()   { pass=$((pass+1)); echo "ok   $*"; }
bad()  { fail=$((fail+1)); echo "FAIL $*"; }

keys() { # sorted cell keys of all CSVs in a run folder
  for f in "$1"/bench.csv "$1"/decode.csv "$1"/accuracy.csv; do
    [ -f "$f" ] && awk -F, 'NR==1 { for (i=1;i<=NF;i++) if ($i=="cell_key") c=i; next } { print $c }' "$f"
  done | sort
}
wellformed() { # every row has the header's field count and ends in a newline
  for f in "$1"/bench.csv "$1"/decode.csv "$1"/accuracy.csv; do
    [ -f "$f" ] || continue
    [ -z "$(tail -c1 "$f")" ] || return 1
    awk -F, 'NR==1 { n=NF; next } NF != n { exit 1 }' "$f" || return 1
  done
}

"$LB" sweep $SUITE --out "$tmp/ref" 2>/dev/null || bad "uninterrupted sweep exited $?"
keys "$tmp/ref" >"$tmp/ref.keys"
n=$(wc -l <"$tmp/ref.keys")
[ "$n" -gt 50 ] && ok "uninterrupted sweep: $n cells" || bad "uninterrupted sweep: only $n cells"

# 1. SIGKILL at random points, then resume
i=0
while [ $i -lt "$KILLS" ]; do
  setsid "$LB" sweep $SUITE --out "$tmp/killed" --resume 2>/dev/null &
  pid=$!
  sleep "0.$(( ($(od -An -N2 -tu2 /dev/urandom) % 9) + 1 ))"
  kill -KILL -- -"$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  wellformed "$tmp/killed" || { bad "kill $i left a malformed CSV"; break; }
  i=$((i+1))
done
ok "$KILLS SIGKILLs at random points, folder parsed after each"
"$LB" sweep $SUITE --out "$tmp/killed" --resume 2>/dev/null || bad "final resume exited $?"
keys "$tmp/killed" >"$tmp/killed.keys"
if cmp -s "$tmp/ref.keys" "$tmp/killed.keys"; then ok "killed + resumed = uninterrupted ($n cells, no duplicate)"
else bad "killed + resumed differs: $(sort "$tmp/killed.keys" | uniq -d | wc -l) duplicates, $(wc -l <"$tmp/killed.keys") vs $n rows"; fi
wellformed "$tmp/killed" && ok "no truncated row" || bad "truncated row after resume"

# 2. SIGINT finishes the current cell and exits 130
"$LB" sweep $SUITE --out "$tmp/int" 2>/dev/null &
pid=$!
sleep 0.4; kill -INT "$pid"; wait "$pid"; rc=$?
[ "$rc" -eq 130 ] && ok "SIGINT: exit 130" || bad "SIGINT: exit $rc (expected 130)"
wellformed "$tmp/int" && ok "SIGINT: rows intact" || bad "SIGINT: malformed CSV"
"$LB" sweep $SUITE --out "$tmp/int" 2>/dev/null; rc=$?
[ "$rc" -eq 2 ] && ok "re-running into a used folder without --resume is refused" || bad "no refusal (exit $rc)"
"$LB" sweep $SUITE --out "$tmp/int" --resume 2>/dev/null
keys "$tmp/int" | cmp -s - "$tmp/ref.keys" && ok "SIGINT + resume = uninterrupted" || bad "SIGINT + resume differs"

# 2b. a second writer on a folder in use is refused (it would rerun the same cells and append duplicates)
"$LB" sweep $SUITE --out "$tmp/busy" 2>/dev/null &
pid=$!
sleep 0.3
"$LB" sweep $SUITE --out "$tmp/busy" --resume >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "another latbench is writing" "$tmp/err" \
  && ok "second writer on a busy folder: exit 2, one line" || bad "second writer: exit $rc, $(cat "$tmp/err")"
"$LB" mqar --tier tiny --out "$tmp/busy" --resume >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "another latbench is writing" "$tmp/err" \
  && ok "mqar on a folder a sweep is writing: refused" || bad "mqar on a busy folder: exit $rc, $(cat "$tmp/err")"
kill -INT "$pid"; wait "$pid"
"$LB" sweep $SUITE --out "$tmp/busy" --resume 2>/dev/null
keys "$tmp/busy" | cmp -s - "$tmp/ref.keys" && ok "after the first writer stopped, resume completes it exactly" \
  || bad "busy folder: resume differs"

# 3. shards
"$LB" sweep $SUITE --out "$tmp/s1" --shard 1/2 2>/dev/null
"$LB" sweep $SUITE --out "$tmp/s2" --shard 2/2 2>/dev/null
"$LB" merge "$tmp/merged" "$tmp/s1" "$tmp/s2" >/dev/null
keys "$tmp/merged" | cmp -s - "$tmp/ref.keys" && ok "shards 1/2 + 2/2 merged = unsharded run" || bad "merged shards differ"
[ -s "$tmp/merged/meta.json" ] && [ -s "$tmp/merged/meta_shard2.json" ] && ok "merge keeps each shard's meta.json" \
  || bad "merge lost meta.json"

# 4. malformed suites
bad_suite() { # NAME EXPECTED-LINE PATTERN CONTENT
  printf '%b' "$4" >"$tmp/bad.suite"
  "$LB" sweep "$tmp/bad.suite" --out "$tmp/badrun" >/dev/null 2>"$tmp/err"; rc=$?
  if [ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "bad.suite:$2: .*$3" "$tmp/err" \
     && [ ! -e "$tmp/badrun/bench.csv" ]; then ok "malformed suite, $1: $(cat "$tmp/err")"
  else bad "malformed suite, $1: rc=$rc $(cat "$tmp/err")"; fi
}
bad_suite "unknown directive"  3 "unknown directive 'frob'"   "grid bench g\n methods all\n frob 3\n T 8\nend\n"
bad_suite "unknown method"     2 "unknown method 'nosuch'"    "grid bench g\n methods gla nosuch\n T 8\nend\n"
bad_suite "unknown form"       2 "has no form 'nope'"         "grid bench g\n methods gla.nope\n T 8\nend\n"
bad_suite "bad number"         3 "not an integer"             "grid bench g\n methods all\n T 8 x9\nend\n"
bad_suite "negative size"      3 "not an integer"             "grid bench g\n methods all\n B -1\n T 8\nend\n"
bad_suite "unclosed grid"      4 "not closed"                 "grid bench g\n methods all\n T 8\n"
bad_suite "outside a grid"     1 "outside a grid"             "T 8\ngrid bench g\n methods all\n T 8\nend\n"
bad_suite "no methods"         2 "no 'methods' line"          "grid bench g\nend\n"
bad_suite "unknown knob"       3 "has no knob 'nope'"         "grid bench g\n methods all\n knob gla nope=3\n T 8\nend\n"
bad_suite "knob out of range"  3 "outside"                    "grid bench g\n methods all\n knob gla chunk=0\n T 8\nend\n"
bad_suite "bad grid kind"      1 "unknown grid kind"          "grid speed g\nend\n"
bad_suite "binary junk"        1 "non-printable"              "\001\002grid\n"
bad_suite "empty file"         1 "no grid"                    ""
"$LB" sweep "$tmp/nonexistent.suite" >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "cannot read suite" "$tmp/err" && ok "missing suite file" || bad "missing suite: rc=$rc"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
