# Shared by the end-to-end scripts: start the real peernetd on an ephemeral loopback port and
# stop it by its PID. Needs PEERNETD (the binary) in the environment.
set -euo pipefail

: "${PEERNETD:?PEERNETD must name the peernetd binary}"
e2e_dir=$(mktemp -d)
daemon_pid=""

cleanup() {
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || true
  fi
  rm -rf "$e2e_dir"
}
trap cleanup EXIT

# start_daemon [flags...]: sets PEERNET (its base URL).
start_daemon() {
  rm -f "$e2e_dir/port"  # a port file left by an earlier start must not be mistaken for this one
  "$PEERNETD" --listen 127.0.0.1 --port 0 --port-file "$e2e_dir/port" --log-level warn "$@" &
  daemon_pid=$!
  for _ in $(seq 1 500); do
    if [[ -s $e2e_dir/port ]]; then
      PEERNET="http://127.0.0.1:$(cat "$e2e_dir/port")"
      export PEERNET
      return 0
    fi
    kill -0 "$daemon_pid" 2>/dev/null || { echo "peernetd exited before listening" >&2; return 1; }
    sleep 0.01
  done
  echo "peernetd did not write its port file within 5 s" >&2
  return 1
}

# stop_daemon: SIGTERM, and the exit status must be 0.
stop_daemon() {
  kill -TERM "$daemon_pid"
  local status=0
  wait "$daemon_pid" || status=$?
  daemon_pid=""
  if ((status != 0)); then
    echo "peernetd exited with status $status after SIGTERM" >&2
    return 1
  fi
}
