# Shared by the benchmark scripts.

# wait_for_file FILE: waits up to 5 s for FILE to be non-empty (a daemon's port file).
wait_for_file() {
  for _ in $(seq 1 500); do [[ -s $1 ]] && return 0; sleep 0.01; done
  echo "timed out waiting for $1" >&2
  return 1
}
