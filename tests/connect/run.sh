#!/usr/bin/env bash
# Runs the Connect-ES client test against a real peernetd.
#   PEERNETD=/path/to/peernetd tests/connect/run.sh [extra node --test arguments]
# Installs the pinned npm packages when needed, generates gen/ from proto/*.proto with protoc and
# protoc-gen-es, then runs connect.test.mjs with node's test runner.
set -euo pipefail

if [[ -z ${PEERNETD:-} ]]; then
  echo "run.sh: PEERNETD is not set; it must name the peernetd binary to test" >&2
  exit 2
fi
# Keep a relative PEERNETD meaning what the caller meant before we change directory.
[[ $PEERNETD == /* ]] || PEERNETD=$PWD/$PEERNETD
export PEERNETD

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
proto_dir=$(cd -- "$here/../../proto" && pwd)
cd -- "$here"

# npm ci rewrites node_modules/.package-lock.json, so its age tells whether the install is current.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

# Generate into a fresh folder and swap it in, so a failed run leaves no half-written gen/.
tmp_gen=$(mktemp -d "$here/.gen.XXXXXX")
trap 'rm -rf -- "$tmp_gen"' EXIT
protoc -I"$proto_dir" \
  --plugin=protoc-gen-es="$here/node_modules/.bin/protoc-gen-es" \
  --es_out="$tmp_gen" \
  --es_opt=target=js+dts,import_extension=js \
  "$proto_dir/peernet.proto" "$proto_dir/camera.proto" "$proto_dir/sensor.proto" "$proto_dir/file.proto"
rm -rf -- gen
mv -- "$tmp_gen" gen

node --test "$@" connect.test.mjs
