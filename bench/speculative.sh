#!/usr/bin/env bash
# Speculative decoding on stories260K (issue 18): tokens per pass and tokens/s
# with the model's own Q4_0 copy as draft at K = 2, 4, 8 against plain
# decoding, streamed at the smallest budget that holds the draft resident and
# one streaming slot for the target; and prompt lookup on a copy-heavy prompt.
# Medians of 3 runs. Usage: bench/speculative.sh [build-dir]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/build}/strata"
model="$root/../shared/testdata/stories260K"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin" convert "$model" -o "$tmp/q4.gguf" --compression 4bit >/dev/null 2>&1

field() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The smallest budget (in 64 KiB steps) at which the run works.
min_budget() {
  local kib=1024
  until "$bin" run "$model" "Once upon a time" -n 200 --max-memory "${kib}KiB" "$@" >/dev/null 2>&1; do
    kib=$((kib + 64))
    [ $kib -lt 65536 ] || { echo "no budget found" >&2; exit 1; }
  done
  echo "${kib}KiB"
}

run() {  # label, budget, args...
  local label="$1" budget="$2"; shift 2
  local tps=() out
  for i in 1 2 3; do
    out=$("$bin" run "$model" "Once upon a time" -n 200 --max-memory "$budget" --format json "$@")
    tps+=("$(echo "$out" | field "len(j['output_ids'])/max(j['timings']['prefill_s']+j['timings']['decode_s'],1e-9)")")
  done
  local passes per_pass
  passes=$(echo "$out" | field "j['passes']")
  per_pass=$(echo "$out" | field "j.get('speculative', {}).get('tokens_per_pass', len(j['output_ids'])/j['passes'])")
  printf "| %s | %s | %s | %.2f | %.0f |\n" "$label" "$budget" "$passes" "$per_pass" \
    "$(printf '%s\n' "${tps[@]}" | median)"
}

echo "date: $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo
echo "| run | --max-memory | passes (200 tokens) | tokens per pass | tokens/s (median of 3) |"
echo "|---|---|---|---|---|"
plain_budget=$(min_budget)
run "plain, streamed" "$plain_budget"
for k in 2 4 8; do
  b=$(min_budget --draft "$tmp/q4.gguf" --draft-tokens $k)
  run "Q4_0 draft, K=$k" "$b" --draft "$tmp/q4.gguf" --draft-tokens $k
done

# Copy-heavy: a story, then BOS and its first words: the model retells it.
story=$("$bin" run "$model" --prompt-ids 1,403,407,261,378 -n 200 --format json | field "','.join(map(str, j['prompt_ids']+j['output_ids']))")
prompt="$story,1,403,407,261,378"
echo
echo "| copy-heavy prompt ($(echo "$prompt" | tr ',' '\n' | wc -l) tokens), 150 new | passes | tokens per pass | acceptance |"
echo "|---|---|---|---|"
for k in 0 2 4 8; do
  if [ $k -eq 0 ]; then args=(); else args=(--lookup 3 --draft-tokens $k); fi
  out=$("$bin" run "$model" --prompt-ids "$prompt" -n 150 --format json "${args[@]}")
  printf "| %s | %s | %.2f | %s |\n" "$([ $k -eq 0 ] && echo plain || echo "--lookup 3, K=$k")" \
    "$(echo "$out" | field "j['passes']")" \
    "$(echo "$out" | field "j.get('speculative', {}).get('tokens_per_pass', len(j['output_ids'])/j['passes'])")" \
    "$(echo "$out" | field "round(j.get('speculative', {}).get('acceptance_rate', 0), 3)")"
done
