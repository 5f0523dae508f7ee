#!/usr/bin/env bash
# strata and llama.cpp on the same GGUF files, in one sitting (issue 16):
# prompt processing of a 128-token prompt (pp128) and generation of 32 tokens
# (tg32), tokens per second, at the same thread count. The two programs
# alternate repetition by repetition so a change in the machine's load hits
# both; the table gives the median of each program's repetitions and the
# ratio strata / llama.cpp. llama.cpp is built outside the repository.
#
#   bench/llamacpp_side_by_side.sh LLAMA_CPP_BIN_DIR FILE.gguf [FILE.gguf ...]
#   env: REPS (default 6), THREADS (default 2), STRATA_BIN (default build/strata)
#
# What is compared: llama-bench's pp128 (a 128-token prompt in one batch) and
# tg32 (32 tokens from an empty context); strata `run --prompt-ids <128 ids> -n 1`
# for pp (128 / prefill_s) and `run --prompt-ids <1 id> -n 33` for tg
# (decode_tokens_per_s over the 32 decoded tokens), both with the whole model
# resident (no --max-memory: the default budget holds these files).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 2 ] || { sed -n 2,16p "$0"; exit 2; }
llama_bin="$1"; shift
bin="${STRATA_BIN:-$root/build/strata}"
reps="${REPS:-6}" threads="${THREADS:-2}"
[ -x "$llama_bin/llama-bench" ] || { echo "error: no llama-bench in $llama_bin" >&2; exit 2; }
[ -x "$bin" ] || { echo "error: no strata binary at $bin (build first)" >&2; exit 2; }
ids=$(python3 -c 'print(",".join(str(1000 + 7 * i) for i in range(128)))')

echo "date: $(date -u '+%F %H:%M') UTC, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "STRATA_FORCE_ISA=${STRATA_FORCE_ISA:-(unset)}, threads $threads, $reps repetitions"
echo
echo "| GGUF | llama.cpp pp128 | llama.cpp tg32 | strata pp128 | strata tg32 | strata ÷ llama.cpp pp | tg | load avg |"
echo "|---|---|---|---|---|---|---|---|"
for f in "$@"; do
  lpp=() ltg=() spp=() stg=()
  for _ in $(seq "$reps"); do
    j=$("$llama_bin/llama-bench" -m "$f" -p 128 -n 32 -t "$threads" -r 1 -o json 2>/dev/null)
    read -r a b < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1]); pp = [x["avg_ts"] for x in r if x["n_prompt"] > 0]; tg = [x["avg_ts"] for x in r if x["n_gen"] > 0]
print(pp[0], tg[0])' "$j")
    lpp+=("$a") ltg+=("$b")
    spp+=("$("$bin" run "$f" --prompt-ids "$ids" -n 1 --threads "$threads" --format json 2>/dev/null |
      python3 -c 'import json,sys; print(128 / json.load(sys.stdin)["timings"]["prefill_s"])')")
    stg+=("$("$bin" run "$f" --prompt-ids 1000 -n 33 --threads "$threads" --format json 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["timings"]["decode_tokens_per_s"])')")
  done
  python3 - "$(basename "$f")" "$(cut -d' ' -f1 /proc/loadavg)" "${lpp[*]}" "${ltg[*]}" "${spp[*]}" "${stg[*]}" <<'EOF'
import statistics, sys
name, load = sys.argv[1], sys.argv[2]
lpp, ltg, spp, stg = (statistics.median(map(float, a.split())) for a in sys.argv[3:7])
print(f"| {name} | {lpp:.1f} | {ltg:.2f} | {spp:.1f} | {stg:.2f} | {spp / lpp:.2f} | {stg / ltg:.2f} | {load} |")
EOF
done
