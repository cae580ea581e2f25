#!/usr/bin/env bash
# Builds the fuzz preset, replays the saved reproducers, then fuzzes each libFuzzer target for a
# while on a copy of its seed corpus (in build/fuzz/tests/fuzz/runs; the repository is never
# written). This is what CI runs.
#   bash tests/fuzz/run.sh [seconds]     seconds of fuzzing per target (default 20)
# Exits non-zero when a target crashed or a reproducer still fails; crash inputs are left in
# build/fuzz/tests/fuzz/runs/<target>/artifacts/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-20}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  sed -n '5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
cd "$root"

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz  # the preset builds with 2 jobs

fuzz_dir=$root/tests/fuzz
bin_dir=$root/build/fuzz/tests/fuzz
failed=()
for target in request_fuzz json_fuzz proto_fuzz files_wire_fuzz sensors_wire_fuzz; do
  args=(-DFUZZER="$bin_dir/$target" -DSECONDS="$seconds" -DSEEDS="$fuzz_dir/corpus/$target"
        -DREGRESSIONS="$fuzz_dir/regressions/$target")
  if [[ -f $fuzz_dir/$target.dict ]]; then
    args+=(-DDICT="$fuzz_dir/$target.dict")
  fi
  if [[ $target == request_fuzz ]]; then
    args+=(-DEXTRA=-detect_leaks=0)  # state kept across inputs is not a leak; LSan checks at exit
  fi
  echo "== $target: saved reproducers"
  if ! UBSAN_OPTIONS=print_stacktrace=1 cmake "${args[@]}" -DMODE=regressions \
      -DWORK="$bin_dir/runs/$target-regressions" -P "$fuzz_dir/run_target.cmake"; then
    failed+=("$target (a reproducer)")
  fi
  echo "== $target: fuzzing for ${seconds}s"
  if ! UBSAN_OPTIONS=print_stacktrace=1 cmake "${args[@]}" -DMODE=fuzz \
      -DWORK="$bin_dir/runs/$target" -P "$fuzz_dir/run_target.cmake"; then
    failed+=("$target (fuzzing)")
  fi
done

if ((${#failed[@]})); then
  printf 'failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzzing passed"
