#!/usr/bin/env bash
# Runs the whole test suite: the Release build's tests, then the unit tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer, then the threaded
# ones under ThreadSanitizer. Run
# scripts/setup.sh once first (it installs the dependencies).
#
#   scripts/test.sh            # everything
#   STRATA_SKIP_SANITIZE=1 scripts/test.sh   # Release only
#   STRATA_SKIP_TSAN=1 scripts/test.sh       # without the ThreadSanitizer pass
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

if [ "${STRATA_SKIP_SANITIZE:-0}" != "1" ] && [ "${STRATA_SKIP_TSAN:-0}" != "1" ]; then
  # The code many threads call at once (submit, cancel, callbacks, the
  # decode loop, the batch driver, the I/O threads, tokenizers shared by
  # threads) under ThreadSanitizer. -O1 -g1: a faster build with line numbers.
  echo "== ThreadSanitizer build and threaded tests"
  cmake -S "$root" -B "$root/build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DSTRATA_TSAN=ON -DSTRATA_BUILD_BENCH=OFF -DSTRATA_BUILD_PYTHON=OFF >/dev/null
  cmake --build "$root/build-tsan" -j2 --target strata_tests
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$root/build-tsan/strata_tests" \
    --gtest_filter='Scheduler.*:SpeculativeEngine.GreedyIdsEqualThePlainRunForEveryReferenceCase:SpeculativeEngine.RollbackLeavesLaterLogitsBitwiseEqual:Batch.GreedyEqualsSingleSequenceAtEveryBatchSize:Batch.TextPromptsGiveTheReferenceContinuations:Stories.StreamingReadsEveryUnitEachPassAndResidentReadsNone:TokenizerThreads.*:IoEngines.*:ThreadPool.*:ExpertCache.*:MoeStreaming.*:IoFile.ReadGroups*:-Scheduler.LongPrompt*'
fi
