#!/usr/bin/env bash
# TLS for real, with curl: HTTPS and HTTP on one port, HTTPS only, a generated certificate kept
# across restarts with its fingerprint logged, a configured certificate, and a bad configuration.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

passed=0
failed=0
check() {  # check NAME COMMAND...: passes when the command succeeds
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name" >&2
  fi
}
logged_fingerprint() { sed -n 's/.*SHA-256 fingerprint \([0-9A-F:]*\).*/\1/p' "$e2e_dir/log" | tail -n 1; }
file_fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
https() { curl -sS --cacert "$cert" "https://localhost:${PEERNET##*:}$1" "${@:2}"; }

state="$e2e_dir/state"
cert="$state/tls/peernetd.crt"

# 1. optional: a certificate is generated on first start, HTTPS and HTTP share the port.
start_daemon --tls-mode optional --state-directory "$state" --log-level info 2>"$e2e_dir/log"
check "certificate generated" test -s "$cert"
check "key readable by the daemon's user only" test "$(stat -c %a "$state/tls/peernetd.key")" = 600
first=$(logged_fingerprint)
check "fingerprint logged is the certificate's" test "$first" = "$(file_fingerprint "$cert")"
check "https healthz" test "$(https /healthz)" = ok
check "plain http on the same port" test "$(curl -sS "$PEERNET/healthz")" = ok
token=$(https /servers -X POST -d '{"unique_id": "tls-cam", "services": [{"protocol": "p"}]}' | jq -r .token)
# A long-poll over TLS wakes when a knock arrives over plain HTTP.
https "/servers/tls-cam/knocks?wait=10" -H "Authorization: Bearer $token" >"$e2e_dir/poll.json" &
poll=$!
curl -sS -X POST "$PEERNET/servers/tls-cam/knocks" -d '{"protocol": "p", "offer": "v=0"}' >/dev/null
wait $poll
check "long-poll over TLS" test "$(jq -r '.knocks[0].offer' "$e2e_dir/poll.json")" = "v=0"
pin=$(openssl x509 -in "$cert" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
check "public key pinning (curl --pinnedpubkey)" test "$(curl -sS -k --pinnedpubkey "sha256//$pin" "https://127.0.0.1:${PEERNET##*:}/healthz")" = ok
stop_daemon

# 2. Restart: the same certificate is kept, not made again.
start_daemon --tls-mode optional --state-directory "$state" --log-level info 2>"$e2e_dir/log"
check "certificate kept across restarts" test "$(logged_fingerprint)" = "$first"
check "not generated again" grep -q "with the certificate" "$e2e_dir/log"
stop_daemon

# 3. required: plain HTTP is refused with a message that says what to do.
start_daemon --tls-mode required --state-directory "$state" 2>"$e2e_dir/log"
reply=$(curl -sS "$PEERNET/healthz" -w ' %{http_code}')
check "plain http refused with 400" test "${reply##* }" = 400
check "the refusal names https" grep -q "https://" <<<"$reply"
check "https still served" test "$(https /healthz)" = ok
stop_daemon

# 4. A configured certificate and key (here made with openssl).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$e2e_dir/own.key" -out "$e2e_dir/own.crt" 2>/dev/null
cert="$e2e_dir/own.crt"
start_daemon --tls-mode required --tls-certificate "$cert" --tls-private-key "$e2e_dir/own.key" \
  --log-level info 2>"$e2e_dir/log"
check "configured certificate served" test "$(https /healthz)" = ok
check "its fingerprint logged" test "$(logged_fingerprint)" = "$(file_fingerprint "$cert")"
stop_daemon

# 5. A certificate without its key is a configuration error, said plainly.
if "$PEERNETD" --port 0 --tls-mode optional --tls-certificate "$cert" 2>"$e2e_dir/log"; then
  check "half a configuration refused" false
else
  check "half a configuration refused" grep -q "tls_certificate and tls_private_key go together" "$e2e_dir/log"
fi

echo "tls: $passed passed, $failed failed"
((failed == 0))
