#!/usr/bin/env bash
# Runs the whole test suite: the Release build's tests, then the unit tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer. Run
# scripts/setup.sh once first (it installs the dependencies).
#
#   scripts/test.sh            # everything
#   STRATA_SKIP_SANITIZE=1 scripts/test.sh   # Release only
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

echo "== Release build and tests"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j2
(cd "$root/build" && ctest --output-on-failure -j2 --timeout 900)

if [ "${STRATA_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
  cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=ON \
    -DSTRATA_BUILD_BENCH=OFF >/dev/null
  cmake --build "$root/build-asan" -j2
  # Large-model tests measure peak memory, which the sanitizer's shadow
  # memory distorts; they run in the Release pass above.
  (cd "$root/build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2 --timeout 900 -LE large)
fi
