#!/usr/bin/env bash
# Streaming benchmarks recorded in docs/PERFORMANCE.md: a synthetic
# llama3-8b (bf16, ~16 GB) at several budgets and batch sizes, its Q8_0 and
# Q4_0 conversions, and a ~1.2 GB model at 25% of its size. Every figure is
# printed by `strata bench` next to the disk and memory limits it measured
# in the same run. Models are written under $WORK (default /tmp/strata-bench)
# and deleted at the end.
#
#   bench/streaming.sh [REPEATS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
strata="$root/build/strata"
work="${WORK:-/tmp/strata-bench}"
repeats="${1:-2}"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

bench() { echo "== strata bench $*"; "$strata" bench "$@" --format json; }

"$strata" synth --preset llama3.2-1b --layers 6 -o "$work/small"
small_bytes=$("$strata" info "$work/small" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_bytes"])')
for r in $(seq "$repeats"); do bench "$work/small" --max-memory $((small_bytes / 4)) --tokens 8 --no-baselines; done
rm -rf "$work/small"

[ -d "$work/l8" ] || "$strata" synth --preset llama3-8b -o "$work/l8"
bench "$work/l8" --max-memory 2GiB --tokens 4
for r in $(seq 2 "$repeats"); do bench "$work/l8" --max-memory 2GiB --tokens 4 --no-baselines; done
for mem in 4GiB 8GiB; do
  for r in $(seq "$repeats"); do bench "$work/l8" --max-memory $mem --tokens 4 --no-baselines; done
done
for b in 4 16 64; do bench "$work/l8" --max-memory 2GiB --tokens 4 --batch $b --no-baselines; done
for t in q8_0 q4_0; do
  "$strata" convert "$work/l8" -o "$work/l8-$t.gguf" --type $t
  for r in $(seq "$repeats"); do bench "$work/l8-$t.gguf" --max-memory 2GiB --tokens 4 --no-baselines; done
  rm -f "$work/l8-$t.gguf"
done
