#!/bin/sh
# faults.sh — a full disk and an unwritable folder give one clear error and
# leave every finished row intact; --resume then completes the run exactly.
#  1. disk full mid-sweep: a small tmpfs (root) or a file size limit
#     (ulimit -f, anyone; FAULTS_NO_MOUNT=1 forces this path): exit 2, one line naming the file and the cause,
#     every CSV row complete; after space is freed --resume gives the same
#     cells as an uninterrupted run;
#  2. unwritable folder: --out on a read-only tmpfs (root) or a chmod 555
#     folder (non-root): exit 2, one line, nothing written;
#  3. a run folder that turns read-only between sittings: --resume refuses
#     with one line and the existing rows are unchanged byte for byte.
# Usage: tests/faults.sh [path/to/latbench]
LB=${1:-build/latbench}
SUITE=tests/suites/tiny.suite
tmp=$(mktemp -d /tmp/latbench-faults-XXXXXX)
mnt=$tmp/mnt
mounted=0
cleanup() {
  [ "$mounted" = 1 ] && umount "$mnt" 2>/dev/null
  chmod -R u+w "$tmp" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   $*"; }
bad() { fail=$((fail+1)); echo "FAIL $*"; }

keys() {
  for f in "$1"/bench.csv "$1"/decode.csv "$1"/accuracy.csv; do
    [ -f "$f" ] && awk -F, 'NR==1 { for (i=1;i<=NF;i++) if ($i=="cell_key") c=i; next } { print $c }' "$f"
  done | sort
}
wellformed() { # complete rows only: header's field count, final newline; samples.jsonl lines closed
  for f in "$1"/bench.csv "$1"/decode.csv "$1"/accuracy.csv; do
    [ -f "$f" ] || continue
    [ ! -s "$f" ] || [ -z "$(tail -c1 "$f")" ] || return 1
    awk -F, 'NR==1 { n=NF; next } NF != n { exit 1 }' "$f" || return 1
  done
  if [ -s "$1/samples.jsonl" ]; then
    [ -z "$(tail -c1 "$1/samples.jsonl")" ] || return 1
    grep -qv ']}$' "$1/samples.jsonl" && return 1
  fi
  return 0
}
rows() { cat "$1"/bench.csv "$1"/decode.csv "$1"/accuracy.csv 2>/dev/null | wc -l; }

"$LB" sweep $SUITE --out "$tmp/ref" 2>/dev/null || bad "uninterrupted sweep exited $?"
keys "$tmp/ref" >"$tmp/ref.keys"
n=$(wc -l <"$tmp/ref.keys")
ref_bytes=$(du -sk "$tmp/ref" | cut -f1)

# Can we mount a tmpfs here (root in a VM or a privileged container)?
mkdir -p "$mnt"
if [ "$(id -u)" = 0 ] && [ -z "${FAULTS_NO_MOUNT:-}" ] && mount -t tmpfs -o size=64k,mode=0777 tmpfs "$mnt" 2>/dev/null; then
  mounted=1; how="a 64 KiB tmpfs (the full run needs ${ref_bytes} KiB)"
else
  how="a file size limit (ulimit -f 8: 8 KiB per file)"
fi

# ---- 1. disk full mid-sweep -----------------------------------------------------------
run=$mnt/run
if [ "$mounted" = 1 ]; then
  "$LB" sweep $SUITE --out "$run" >/dev/null 2>"$tmp/err"; rc=$?
else
  (ulimit -f 8; exec "$LB" sweep $SUITE --out "$run") >/dev/null 2>"$tmp/err"; rc=$?
fi
err=$(grep -vE '^\[|: sweep [^:]*: [0-9]+ cells' "$tmp/err")  # minus progress and the plan line
if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] \
   && printf '%s' "$err" | grep -qE 'No space left|File too large'; then
  ok "disk full via $how: exit 2, one line: $err"
else
  bad "disk full via $how: rc=$rc, stderr: $err"
fi
wellformed "$run" && ok "disk full: every row written is complete ($(rows "$run") lines kept)" \
  || bad "disk full: a truncated row was left behind"
[ "$(rows "$run")" -gt 1 ] && ok "disk full: the rows finished before the disk filled are kept" \
  || bad "disk full: no finished row kept"
# free space, resume
if [ "$mounted" = 1 ]; then
  mount -o remount,size=16m "$mnt" || bad "cannot grow the tmpfs"
  "$LB" sweep $SUITE --out "$run" --resume >/dev/null 2>&1; rc=$?
else
  "$LB" sweep $SUITE --out "$run" --resume >/dev/null 2>&1; rc=$?
fi
[ "$rc" -eq 0 ] && ok "resume after freeing space: exit 0" || bad "resume after freeing space: exit $rc"
keys "$run" >"$tmp/run.keys"
if cmp -s "$tmp/ref.keys" "$tmp/run.keys"; then ok "disk full + resume = uninterrupted run ($n cells, no duplicate)"
else bad "disk full + resume differs: $(uniq -d "$tmp/run.keys" | wc -l) duplicates, $(wc -l <"$tmp/run.keys") vs $n"; fi

# ---- 2. unwritable --out ------------------------------------------------------------------
if [ "$mounted" = 0 ] && [ "$(id -u)" = 0 ]; then
  # root ignores file permissions: without a mount there is no unwritable folder to test
  echo "skip unwritable-folder tests: running as root without mount"
  echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit
fi
if [ "$mounted" = 1 ]; then
  umount "$mnt"; mount -t tmpfs -o size=64k,ro tmpfs "$mnt" || bad "cannot mount a read-only tmpfs"
  target=$mnt/run2; what="read-only tmpfs"
else
  mkdir -p "$tmp/ro"; chmod 555 "$tmp/ro"; target=$tmp/ro/run2; what="chmod 555 folder"
fi
"$LB" sweep $SUITE --out "$target" >/dev/null 2>"$tmp/err"; rc=$?
if [ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -e "$target/bench.csv" ]; then
  ok "unwritable --out ($what): exit 2, one line: $(cat "$tmp/err")"
else
  bad "unwritable --out ($what): rc=$rc, stderr: $(cat "$tmp/err")"
fi

# ---- 3. a run folder that became read-only -----------------------------------------------
part=$tmp/part
"$LB" sweep $SUITE --out "$part" 2>/dev/null &
pid=$!
sleep 0.5; kill -INT "$pid"; wait "$pid"
if [ "$mounted" = 1 ]; then
  umount "$mnt"; mount -t tmpfs -o size=16m tmpfs "$mnt"; cp -r "$part" "$mnt/part"
  mount -o remount,ro "$mnt"; part=$mnt/part
else
  chmod -R a-w "$part"
fi
before=$(cat "$part"/*.csv | cksum)
"$LB" sweep $SUITE --out "$part" --resume >/dev/null 2>"$tmp/err"; rc=$?
after=$(cat "$part"/*.csv | cksum)
if [ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "resume into a read-only run folder: exit 2, one line: $(cat "$tmp/err")"
else bad "resume into a read-only run folder: rc=$rc, stderr: $(cat "$tmp/err")"; fi
[ "$before" = "$after" ] && ok "read-only run folder: finished rows unchanged" || bad "read-only run folder: rows changed"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
