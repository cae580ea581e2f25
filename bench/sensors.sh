#!/usr/bin/env bash
# `peernet sensors export` beside curl from nginx in the same run: 48 hours of history of two
# sensors (one reading each 5 s), fetched as raw CSV and as 5-minute rollups, against nginx
# serving the same CSV text from a file. Also how long `serve` takes to load that history.
#
#   bash bench/sensors.sh [rounds]          (default 5)
#
# Loopback only, bounded: `rounds` × two exports and two curls, run alternately (A B A B ...);
# the verdicts are the medians of the per-round ratios. Needs a built build/dev
# (bash .ci/build test) and installs nginx-light.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-5}
build="$root/build/dev"
peernetd="$build/src/peernetd"
peernet="$build/src/cli/peernet"
[[ -x $peernetd && -x $peernet ]] || { echo "build first: bash .ci/build test" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { sed -n '6p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2; }
bash "$root/.ci/install-deps" --bench

source "$root/bench/lib.sh"
make_work_dir

# 48 hours of history up to the last 5-second mark, in serve's own day files.
python3 - "$work/history" <<'PY'
import math, os, sys, time
folder = sys.argv[1]
os.makedirs(folder, mode=0o700)
step = 5000
end = int(time.time() * 1000) // step * step
files = {}
for t in range(end - 48 * 3600 * 1000, end, step):
    day = time.strftime("%Y-%m-%d", time.gmtime(t / 1000))
    out = files.get(day) or files.setdefault(day, open(f"{folder}/raw-{day}.log", "w"))
    phase = 2 * math.pi * (t % 86_400_000) / 86_400_000
    out.write(f"{t} sim-humidity {65 - 15 * math.sin(phase):.1f}\n")
    out.write(f"{t} sim-temperature {15 + 5 * math.sin(phase):.1f}\n")
for f in files.values():
    f.close()
PY
readings=$(cat "$work/history"/raw-*.log | wc -l)

"$peernetd" --listen 127.0.0.1 --port 0 --port-file "$work/port" --log-level warn &
pids+=($!)
wait_for_file "$work/port"
export PEERNET_DAEMON="http://127.0.0.1:$(cat "$work/port")"

now() { date +%s.%N; }
started=$(now)
"$peernet" --loopback sensors serve --simulate --sysfs "$work/none" --history-dir "$work/history" \
  --state-dir "$work/state" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 1 3000); do grep -q Ctrl-C "$work/serve.log" && break; sleep 0.01; done
grep -q Ctrl-C "$work/serve.log" || { cat "$work/serve.log" >&2; exit 1; }
load_ms=$(echo "($(now) - $started) * 1000" | bc)

# The reference: the same CSV text, from nginx.
mkdir -p "$work/www"
"$peernet" --loopback sensors export --from -49h -o "$work/www/raw.csv" 2>/dev/null
"$peernet" --loopback sensors export --from -49h --resolution 5m -o "$work/www/5m.csv" 2>/dev/null
chmod a+r "$work/www"/*
start_nginx "$work/www" "$work"
base="http://127.0.0.1:$nginx_port"

# seconds COMMAND...: the wall time of one run.
seconds() {
  local begin
  begin=$(now)
  "$@" >/dev/null 2>&1
  echo "$(now) - $begin" | bc
}

raw_ratios=()
rollup_ratios=()
printf '%-6s %12s %12s %12s %12s\n' round "raw export" "raw curl" "5m export" "5m curl"
for round in $(seq 1 "$rounds"); do
  pe=$(seconds "$peernet" --loopback sensors export --from -49h -o "$work/raw.out")
  ce=$(seconds curl -sf -o "$work/raw.curl" "$base/raw.csv")
  pr=$(seconds "$peernet" --loopback sensors export --from -49h --resolution 5m -o "$work/5m.out")
  cr=$(seconds curl -sf -o "$work/5m.curl" "$base/5m.csv")
  printf '%-6s %10.0f ms %10.0f ms %10.0f ms %10.0f ms\n' "$round" "$(echo "$pe * 1000" | bc)" \
    "$(echo "$ce * 1000" | bc)" "$(echo "$pr * 1000" | bc)" "$(echo "$cr * 1000" | bc)"
  raw_ratios+=("$(echo "scale=4; $pe / $ce" | bc)")
  rollup_ratios+=("$(echo "scale=4; $pr / $cr" | bc)")
done
rows=$(($(wc -l <"$work/raw.out") - 1))
[[ $rows -ge $((readings - 2)) ]] || { echo "the raw export has $rows of $readings rows" >&2; exit 1; }
echo
echo "history: $readings readings ($(du -sk "$work/history" | cut -f1) KiB on disk); serve loaded it and registered in ${load_ms%.*} ms"
echo "raw export: $rows rows, $(($(wc -c <"$work/raw.out") / 1024)) KiB of CSV; 5m: $(($(wc -l <"$work/5m.out") - 1)) rows"
median_ratio "raw export / curl (time)" "${raw_ratios[@]}"
median_ratio "5m export / curl (time)" "${rollup_ratios[@]}"
