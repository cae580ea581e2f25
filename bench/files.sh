#!/usr/bin/env bash
# `peernet files get` beside loopback TCP (curl from nginx) in the same run: throughput of a large
# file, the time to fetch a small one, and knock-to-open beside a TCP connect.
#
#   bash bench/files.sh [rounds] [MiB]          (defaults: 5 200)
#
# Loopback only, bounded: `rounds` × (one large and one small fetch each way). PeerNet and curl
# run alternately (A B A B ...) so that machine noise hits both; the verdicts are the medians of
# the per-round ratios. Needs a built build/dev (bash .ci/build test) and installs nginx-light.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-5}
mib=${2:-200}
build="$root/build/dev"
peernetd="$build/src/peernetd"
peernet="$build/src/cli/peernet"
[[ -x $peernetd && -x $peernet ]] || { echo "build first: bash .ci/build test" >&2; exit 2; }
bash "$root/.ci/install-deps" --bench

source "$root/bench/lib.sh"
make_work_dir

mkdir -p "$work/share" "$work/out"
head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/share/big.bin"
head -c 1024 /dev/urandom >"$work/share/small.bin"
chmod a+r "$work/share"/*

"$peernetd" --listen 127.0.0.1 --port 0 --port-file "$work/port" --log-level warn &
pids+=($!)
wait_for_file "$work/port"
export PEERNET_DAEMON="http://127.0.0.1:$(cat "$work/port")"
"$peernet" --loopback files serve "$work/share" --name bench --state-dir "$work/state" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 1 500); do grep -q sharing "$work/serve.log" && break; sleep 0.01; done
start_nginx "$work/share" "$work"
base="http://127.0.0.1:$nginx_port"

now() { date +%s.%N; }
# peernet_get FILE -> "seconds knock_ms" (the whole command; knock to open channel from its log)
peernet_get() {
  local t0 t1
  t0=$(now)
  "$peernet" --loopback -v files get "$1" -o "$work/out" --overwrite 2>"$work/get.log"
  t1=$(now)
  local knock
  knock=$(sed -n 's/.*knock to open channel \([0-9]*\) ms.*/\1/p' "$work/get.log")
  awk -v a="$t0" -v b="$t1" -v k="$knock" 'BEGIN { printf "%.4f %s\n", b - a, k }'
}
# curl_get FILE -> "seconds connect_ms" (the whole command; TCP connect from curl)
curl_get() {
  local t0 t1 connect
  t0=$(now)
  connect=$(curl -sf -o "$work/out/curl.bin" -w '%{time_connect}' "$base/$1")
  t1=$(now)
  awk -v a="$t0" -v b="$t1" -v c="$connect" 'BEGIN { printf "%.4f %.3f\n", b - a, c * 1000 }'
}

"$peernet" --loopback files get big.bin -o "$work/out" --overwrite 2>/dev/null  # warm the page cache
cmp -s "$work/out/big.bin" "$work/share/big.bin" || { echo "peernet fetched a different file" >&2; exit 1; }

echo "peernet files get vs curl from nginx on loopback; $mib MiB and 1 KiB files, $rounds rounds"
printf '%-5s %10s %10s %7s | %9s %9s %7s | %9s %9s\n' round pn_MiB/s tcp_MiB/s ratio pn_small tcp_small ratio knock_ms tcp_ms
throughput=() small=() knock=()
for round in $(seq 1 "$rounds"); do
  read -r pn_big pn_knock < <(peernet_get big.bin)
  read -r tcp_big _ < <(curl_get big.bin)
  read -r pn_small _ < <(peernet_get small.bin)
  read -r tcp_small tcp_connect < <(curl_get small.bin)
  pn_rate=$(awk -v s="$pn_big" -v m="$mib" 'BEGIN { printf "%.1f", m / s }')
  tcp_rate=$(awk -v s="$tcp_big" -v m="$mib" 'BEGIN { printf "%.1f", m / s }')
  throughput+=("$(awk -v a="$pn_rate" -v b="$tcp_rate" 'BEGIN { printf "%.4f", a / b }')")
  small+=("$(awk -v a="$pn_small" -v b="$tcp_small" 'BEGIN { printf "%.2f", a / b }')")
  knock+=("$pn_knock")
  printf '%-5s %10s %10s %7s | %8.0fms %8.1fms %7s | %9s %9s\n' "$round" "$pn_rate" "$tcp_rate" \
    "${throughput[-1]}" "$(awk -v s="$pn_small" 'BEGIN { print s * 1000 }')" \
    "$(awk -v s="$tcp_small" 'BEGIN { print s * 1000 }')" "${small[-1]}" "$pn_knock" "$tcp_connect"
done
median_ratio "throughput peernet/tcp" "${throughput[@]}"
median_ratio "time for a 1 KiB file peernet/tcp" "${small[@]}"
printf '%s\n' "${knock[@]}" | sort -n | awk '{ k[NR] = $1 } END {
  printf "knock to open channel: median %d ms (min %d, max %d)\n", k[int((NR + 1) / 2)], k[1], k[NR] }'
