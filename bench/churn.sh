#!/usr/bin/env bash
# Memory of peernetd across create->knock->expire churn: is it flat?
#
#   bash bench/churn.sh [cycles] [seconds] [processes] [threads]     (defaults: 1000000 600 4 8)
#
# Starts build/dev's peernetd on 127.0.0.1 with 1-second TTLs, records VmRSS right after start
# and after a warm-up of 10,000 cycles that have all expired, then drives `cycles` cycles (a
# server with a random id registered, one knock on it, both left to expire) with
# bench/churn_load.py (Python stdlib, `processes` × `threads` kept-alive connections). Bounded:
# the load stops at `cycles` cycles or after `seconds` seconds, and expiry is awaited at most
# 60 s. Prints VmRSS at start, after the warm-up, after the churn, the difference and cycles/s.
# Loopback only; stops the daemon by its own PID.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cycles=${1:-1000000}
seconds=${2:-600}
processes=${3:-4}
threads=${4:-8}
warmup=$(( cycles < 10000 ? cycles : 10000 ))
peernetd="$root/build/dev/src/peernetd"
[[ -x $peernetd ]] || { echo "build peernetd first: cmake --preset dev && cmake --build --preset dev" >&2; exit 2; }

work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }

metric() {  # metric NAME -> value in GET /metrics
  curl -sf "$pn/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# Waits (at most 60 s) until no server and no knock is left: everything the cycles made expired.
wait_for_expiry() {
  for _ in $(seq 1 600); do
    [[ $(metric peernetd_servers) == 0 && $(metric peernetd_knocks) == 0 ]] && return 0
    sleep 0.1
  done
  echo "servers/knocks still alive after 60 s: $(metric peernetd_servers)/$(metric peernetd_knocks)" >&2
  return 1
}

"$peernetd" --listen 127.0.0.1 --port 0 --port-file "$work/port" --log-level warn \
  --server-ttl-min 1 --server-ttl 1 --knock-ttl 1 --knock-linger 1 \
  --max-servers 1000000 --max-servers-per-room 1000000 >"$work/log" 2>&1 &
pid=$!
wait_for_file "$work/port"
pn="http://127.0.0.1:$(cat "$work/port")"
rss_start=$(rss_kib)

python3 "$root/bench/churn_load.py" --port "$(cat "$work/port")" --cycles "$warmup" \
  --seconds "$seconds" --processes "$processes" --threads "$threads" >/dev/null
wait_for_expiry
rss_before=$(rss_kib)

result=$(python3 "$root/bench/churn_load.py" --port "$(cat "$work/port")" --cycles "$cycles" \
  --seconds "$seconds" --processes "$processes" --threads "$threads")
peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
wait_for_expiry
rss_after=$(rss_kib)
done_cycles=$(sed -n 's/.*cycles=\([0-9]*\).*/\1/p' <<<"$result")
errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$result")
elapsed=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$result")

echo "peernetd churn: $done_cycles create->knock->expire cycles (asked $cycles, limit ${seconds}s), $processes processes x $threads connections"
printf '%-34s %10s KiB\n' "VmRSS right after start" "$rss_start"
printf '%-34s %10s KiB\n' "VmRSS after warm-up ($warmup cycles)" "$rss_before"
printf '%-34s %10s KiB\n' "VmRSS after churn and expiry" "$rss_after"
printf '%-34s %10s KiB\n' "difference (after - warm-up)" "$((rss_after - rss_before))"
printf '%-34s %10s KiB\n' "peak VmHWM" "$peak"
printf '%-34s %10s\n' "servers expired (total)" "$(metric peernetd_servers_expired_total)"
printf '%-34s %10s\n' "knocks expired (total)" "$(metric peernetd_knocks_expired_total)"
printf '%-34s %10s\n' "failed cycles" "$errors"
awk -v c="$done_cycles" -v s="$elapsed" 'BEGIN { printf "%-34s %10.0f (%s cycles in %s s)\n", "cycles/s", c / s, c, s }'
echo "rerun: bash bench/churn.sh $cycles $seconds $processes $threads"
