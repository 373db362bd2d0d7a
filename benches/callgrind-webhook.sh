#!/usr/bin/env bash
# Instructions per signed SMS webhook request, counted by callgrind over the whole service (every
# thread) while `concierge load` drives it. Wall-clock runs on a shared 2-CPU VM drift by 10-20 %
# from one run to the next; this count moves by about 1 %, so it tells a change on the request
# path from the noise. It counts user-space instructions only: system calls, waiting and cache
# misses are not in it (and SHA-1 runs without SHA-NI under valgrind, so the signature check
# weighs more here than on the CPU).
#
#   benches/callgrind-webhook.sh [BINARY] [SECONDS]
#
# BINARY: default target/release/concierge (build it first); SECONDS measured, default 10.
# Needs valgrind and faketime (`apt-get install valgrind faketime`). Prints the count, and keeps
# callgrind's output for `callgrind_annotate` if CALLGRIND_OUT is set to a file name.
#
# The service runs at a fixed hour (faketime, from AT: default 10:40 in the morning of the demo
# conference's first day, which it places on "today"): what is next, and so what a reply lists,
# depends on the time of day, and on the real clock the count moved by 3 % from one quarter of an
# hour to the next (97,100 at 19:27 UTC, 94,500 at 19:40, the same binary; BENCHMARKS.md, step 69).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/concierge}")
secs=${2:-10}
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || {
  echo "error: needs valgrind (apt-get install valgrind)" >&2
  exit 1
}
libfaketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
[ -n "$libfaketime" ] || {
  echo "error: needs faketime (apt-get install faketime)" >&2
  exit 1
}
# 18:40 UTC is 10:40 in Los Angeles, the demo's zone. The clock starts there and runs on; the
# monotonic clock (timers, timeouts) is left alone.
at=${AT:-2026-12-08 18:40:00}

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=callgrind-auth-token
account=AC10ad000000000000000000000000000a
cat >"$work/config.toml" <<EOF
bind = "127.0.0.1:$port"
metrics_bind = "off"
public_url = "http://127.0.0.1:$port"
data_dir = "$work/data"
workers = 1

[twilio]
account_sid = "$account"
auth_token = "$token"
sender = "+15550000000"
api_base = "http://127.0.0.1:9"
EOF

# --fair-sched: valgrind runs one thread at a time, and without a fair lock a thread spinning in
# sled's lazy thread-pool start can keep the one it waits for from ever running (the service then
# never starts; seen in session 21).
# (libfaketime preloaded by hand: the `faketime` wrapper would stand between this script and
# valgrind's pid, which callgrind_control needs.)
RUST_LOG=warn LD_PRELOAD="$libfaketime" FAKETIME="@$at" FAKETIME_DONT_FAKE_MONOTONIC=1 \
  valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file="$work/callgrind.out" \
  "$bin" --config "$work/config.toml" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 240); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || {
  echo "error: the service did not start under valgrind:" >&2
  cat "$work/serve.log" >&2
  exit 1
}

drive() {
  "$bin" load --url "http://127.0.0.1:$port" --auth-token "$token" --account-sid "$account" \
    --no-baseline --connections 8 --warmup 0 --duration "$1" 2>&1
}
drive 3 >/dev/null # warm: caches, the allocator, the first pages of every journal
callgrind_control -z "$pid" >/dev/null 2>&1
report=$(drive "$secs")
callgrind_control -d "$pid" >/dev/null 2>&1

requests=$(sed -nE 's/^concierge .* ok ([0-9]+) +errors ([0-9]+).*/\1 \2/p' <<<"$report")
read -r ok errors <<<"$requests"
if [ -z "${ok:-}" ] || [ "$ok" -eq 0 ] || [ "$errors" -ne 0 ]; then
  echo "error: the load run failed:" >&2
  echo "$report" >&2
  exit 1
fi
dump=$(ls "$work"/callgrind.out.* | head -n 1)
instructions=$(sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$dump" | head -n 1)
echo "$ok requests, $instructions instructions: $((instructions / ok)) instructions per request"
if [ -n "${CALLGRIND_OUT:-}" ]; then
  cp "$dump" "$CALLGRIND_OUT"
  echo "callgrind output in $CALLGRIND_OUT (callgrind_annotate --inclusive=yes $CALLGRIND_OUT)"
fi
