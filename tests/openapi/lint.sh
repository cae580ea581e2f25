#!/usr/bin/env bash
# Lints proto/peernet.openapi.yaml with the Redocly CLI pinned in docs/openapi-lint.
#
# Installs the pinned linter with `npm ci` when docs/openapi-lint/node_modules is missing or
# does not match package.json/package-lock.json, then lints. Exits non-zero on any error or
# warning. Works from any current directory; CTest runs it.
#
# Network: only `npm ci` talks to the npm registry. The linter itself runs offline: telemetry
# is off (redocly.yaml and REDOCLY_TELEMETRY) and the update check is suppressed.
set -euo pipefail

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
repo_root=$(cd -- "$script_dir/../.." && pwd -P)
lint_dir="$repo_root/docs/openapi-lint"
config="$lint_dir/redocly.yaml"
# Relative to the repo root, so that problems are reported as proto/peernet.openapi.yaml:LINE.
spec="${PEERNET_OPENAPI_SPEC:-proto/peernet.openapi.yaml}"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "lint.sh: '$tool' not found; install Node.js (20.19+ or 22.12+) with npm" >&2
    exit 1
  fi
done

export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_SUPPRESS_NOTIFICATIONS=true
export NO_UPDATE_NOTIFIER=1
export npm_config_update_notifier=false

redocly="$lint_dir/node_modules/.bin/redocly"
stamp="$lint_dir/node_modules/.peernet-openapi-lint.stamp"

# Serialize installs between concurrent runs (the lock is on the folder, no file is created).
if command -v flock >/dev/null 2>&1; then
  exec 9<"$lint_dir"
  flock 9
fi

want=$(cat "$lint_dir/package.json" "$lint_dir/package-lock.json" | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [[ ! -x "$redocly" || "$have" != "$want" ]]; then
  echo "lint.sh: installing the pinned linter (npm ci in docs/openapi-lint)"
  (cd "$lint_dir" && npm ci --no-audit --no-fund)
  printf '%s\n' "$want" >"$stamp"
fi

if command -v flock >/dev/null 2>&1; then
  flock -u 9
fi

cd "$repo_root"

# 1. Human-readable report (code frames with line numbers).
status=0
"$redocly" lint --config "$config" --lint-config error "$spec" || status=$?

# 2. Machine-readable totals: fail on warnings too, not only on errors.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json_status=0
"$redocly" lint --config "$config" --lint-config error --format json "$spec" \
  >"$tmp/report.json" 2>"$tmp/stderr.txt" || json_status=$?

if ! totals=$(node -e '
  const fs = require("fs");
  const report = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const t = report.totals;
  if (!t || typeof t.errors !== "number" || typeof t.warnings !== "number") process.exit(2);
  console.log(`${t.errors} ${t.warnings}`);
' "$tmp/report.json"); then
  echo "lint.sh: could not read the linter's JSON report" >&2
  cat "$tmp/stderr.txt" >&2
  exit 1
fi
read -r errors warnings <<<"$totals"

echo "openapi lint: $spec: $errors errors, $warnings warnings"
if ((status != 0 || json_status != 0 || errors != 0 || warnings != 0)); then
  echo "openapi lint: FAILED" >&2
  exit 1
fi
echo "openapi lint: passed"
