#!/usr/bin/env bash
# Throughput of peernetd's room listing beside nginx serving a static file of the same size.
#
#   bash bench/http_vs_nginx.sh [rounds] [seconds] [connections]     (defaults: 3 5 64)
#
# Loopback only, bounded: `rounds` × 2 runs of wrk (2 threads) for `seconds` each. peernetd and
# nginx run alternately (A B A B ...) in the same invocation so that machine noise hits both; the
# verdict is the median of the per-round ratios. Needs a built build/dev (bash .ci/build test or
# cmake --preset dev && cmake --build --preset dev) and installs wrk and nginx-light if missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-3}
seconds=${2:-5}
connections=${3:-64}
peernetd="$root/build/dev/src/peernetd"
[[ -x $peernetd ]] || { echo "build peernetd first: cmake --preset dev && cmake --build --preset dev" >&2; exit 2; }
bash "$root/.ci/install-deps" --bench

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_work_dir

# peernetd with a room of 3 servers, as a home would have: a camera, a sensor, a file share.
"$peernetd" --listen 127.0.0.1 --port 0 --port-file "$work/port" --log-level warn --threads 2 &
pids+=($!)
wait_for_file "$work/port"
pn="http://127.0.0.1:$(cat "$work/port")"
curl -sf -X POST "$pn/rooms" -d '{"unique_id": "home"}' >/dev/null
for s in 'garage-camera:peernet.camera:"[peernet.camera.codec]": "VP8", "[peernet.camera.width]": 640' \
         'porch-sensor:peernet.sensor:"[peernet.sensor.history_seconds]": 86400' \
         'footage:peernet.file:"[peernet.file.share_name]": "footage"'; do
  IFS=: read -r id protocol ext <<<"$s"
  curl -sf -X POST "$pn/servers" -d "{\"unique_id\": \"$id\", \"room\": \"home\", \"ttl_seconds\": 300,
    \"display_name\": \"$id\", \"services\": [{\"protocol\": \"$protocol\", \"version\": \"1\", $ext}]}" >/dev/null
done
curl -sf "$pn/rooms/home/servers" >"$work/listing.json"
size=$(stat -c %s "$work/listing.json")

# nginx: 2 workers, no access log, the same bytes as a static file.
mkdir -p "$work/www"
chmod a+r "$work/listing.json"
cp "$work/listing.json" "$work/www/servers"
start_nginx "$work/www" "$work"
cmp -s <(curl -sf "http://127.0.0.1:$nginx_port/servers") "$work/listing.json" || { echo "nginx does not serve the file" >&2; exit 1; }

rps() {  # rps URL -> requests per second
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1" | awk '/^Requests\/sec:/ { print $2 }'
}

echo "GET /rooms/home/servers ($size bytes, 3 servers) vs nginx static file; wrk -t2 -c$connections -d${seconds}s"
printf '%-6s %14s %14s %8s\n' round peernetd nginx ratio
ratios=()
for round in $(seq 1 "$rounds"); do
  a=$(rps "$pn/rooms/home/servers")
  b=$(rps "http://127.0.0.1:$nginx_port/servers")
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  printf '%-6s %14s %14s %8s\n' "$round" "$a" "$b" "$ratio"
done
median_ratio peernetd/nginx "${ratios[@]}"
