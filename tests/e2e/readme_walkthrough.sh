#!/usr/bin/env bash
# Runs the README's walkthroughs (the ```sh blocks between walkthrough markers) exactly as written
# against a real peernetd, then checks what a reader would see.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${PEERNET_SOURCE_DIR:?}"

start_daemon
work="$e2e_dir/work"
mkdir -p "$work"
ln -s "$PEERNET_SOURCE_DIR/proto" "$work/proto"

# Each walkthrough becomes one script; the blocks run in the order the README gives them.
awk '
  /<!-- walkthrough:begin -->/ { n++; inside = 1; next }
  /<!-- walkthrough:end -->/ { inside = 0; next }
  inside && !/^```/ { print > (dir "/walkthrough" n ".sh") }
' dir="$work" "$PEERNET_SOURCE_DIR/README.md"

passed=0
failed=0
check() {  # check NAME FILE PATTERN
  if grep -qE -- "$3" "$2"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $1: no match for /$3/ in:" >&2
    cat "$2" >&2
  fi
}

(cd "$work" && bash -euo pipefail walkthrough1.sh) >"$work/out1.txt" 2>&1 || { cat "$work/out1.txt"; exit 1; }
check "room created" "$work/room.json" '"unique_id":"home"'
check "server registered with its extension" "$work/server.json" '"\[peernet.camera.codec\]":"VP8"'
check "listing" "$work/out1.txt" '"servers":\[\{"unique_id":"garage-camera","display_name":"Garage"'
check "listing hides tokens" <(grep -c token "$work/out1.txt" | sed 's/^/tokens in output: /') '^tokens in output: [0-9]+$'
check "poll returned the offer" "$work/poll.json" 'v=0 \(the viewer SDP offer\)'
check "knocker got the answer" "$work/out1.txt" '"answer": "v=0 \(the camera SDP answer\)"'
check "knocker state" "$work/out1.txt" '"state": "KNOCK_STATE_ANSWERED"'
check "deletes answered {}" "$work/out1.txt" '^\{\}\{\}$'

(cd "$work" && bash -euo pipefail walkthrough2.sh) >"$work/out2.txt" 2>&1 || { cat "$work/out2.txt"; exit 1; }
check "binary register decoded" "$work/out2.txt" '^  room: "default"$'
check "binary listing carries the extension" "$work/out2.txt" '\[peernet.sensor.history_seconds\]: 86400'
check "binary answer" "$work/out2.txt" 'answer: "v=0 \(answer\)"'
check "binary state" "$work/out2.txt" 'state: KNOCK_STATE_ANSWERED'

stop_daemon
echo "readme walkthrough: $passed passed, $failed failed"
((failed == 0))
