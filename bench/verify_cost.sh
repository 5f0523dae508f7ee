#!/usr/bin/env bash
# The cost of speculative verification on a streamed model (issue 18): time
# per decode pass with K+1 = 1, 5 and 9 rows of one sequence. The drafts come
# from a random-weight draft model with the target's vocabulary, so nearly
# every draft is rejected and every pass carries exactly K+1 rows (the worst
# case: all the verification cost, none of the gain). The draft gets its own
# memory on top of the target's budget, so the target's plan (resident units,
# streaming slots) is the same in every run. Medians over the decode passes.
#
#   bench/verify_cost.sh TARGET_DIR DRAFT_DIR [TARGET_BUDGET] [DRAFT_EXTRA]
#   e.g. strata synth --preset llama3-8b -o /tmp/l8; strata synth --preset llama3.2-1b --layers 1 -o /tmp/d1
#        bench/verify_cost.sh /tmp/l8 /tmp/d1 2GiB 640MiB
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${STRATA_BIN:-$root/build/strata}"
target="$1" draft="$2" budget="${3:-2GiB}" extra="${4:-640MiB}"
n="${TOKENS:-12}"
bytes() { python3 -c "
import re,sys
u={'KiB':1<<10,'MiB':1<<20,'GiB':1<<30}
m=re.fullmatch(r'([0-9.]+)(KiB|MiB|GiB)', sys.argv[1]); print(int(float(m[1])*u[m[2]]))" "$1"; }
total=$(( $(bytes "$budget") + $(bytes "$extra") ))
summary() {
  python3 -c '
import json, statistics, sys
j = json.load(sys.stdin)
p = j["passes"][1:]  # decode passes (the first is the prompt)
full = max(x["rows"] for x in p)  # near the end of -n fewer drafts fit: keep the passes with all K+1 rows
p = [x for x in p if x["rows"] == full]
print("%d | %.2f | %.3f | %.3f | %.3f | %d | %.2f | %d" % (
  statistics.median(x["rows"] for x in p), statistics.median(x["wall_s"] for x in p),
  statistics.median(x["io_wait_s"] for x in p), statistics.median(x["compute_s"] for x in p),
  statistics.median(x["bytes_read"] for x in p) / 2**30, j["memory"]["streaming_slots"],
  len(j["output_ids"]) / len(j["passes"]), len(p)))'
}
echo "date: $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| rows per pass (K+1) | s per pass | I/O wait s | compute s | GiB read per pass | streaming slots | tokens per pass | passes in the median |"
echo "|---|---|---|---|---|---|---|---|"
echo "| $("$bin" run "$target" --prompt-ids 128000,1000 -n "$n" --max-memory "$budget" --profile --format json 2>/dev/null | summary) |"
for k in 4 8; do
  echo "| $("$bin" run "$target" --prompt-ids 128000,1000 -n "$n" --max-memory "${total}B" --draft "$draft" \
      --draft-tokens $k --profile --format json 2>/dev/null | summary) |"
done
