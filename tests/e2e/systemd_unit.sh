#!/usr/bin/env bash
# config/peernetd.service is a valid unit and stays hardened: systemd-analyze's exposure score
# must stay at or under 2.0 ("OK") on a scale where 10 is an unprotected service.
set -euo pipefail
: "${PEERNETD:?}" "${PEERNET_SOURCE_DIR:?}"
unit_dir=$(mktemp -d)
trap 'rm -rf "$unit_dir"' EXIT
# systemd-analyze checks that ExecStart exists: point it at the binary just built.
sed "s|/usr/local/bin/peernetd|$PEERNETD|" "$PEERNET_SOURCE_DIR/config/peernetd.service" >"$unit_dir/peernetd.service"
systemd-analyze verify "$unit_dir/peernetd.service"
systemd-analyze security --offline=true --threshold=20 "$unit_dir/peernetd.service" | tail -n 1
echo "systemd unit: 2 passed, 0 failed"
