#!/usr/bin/env bash
# Builds a libFuzzer target (the safetensors header parser, the GGUF
# header parser with STRATA_FUZZ_TARGET=gguf, or the chat-template Jinja
# interpreter with STRATA_FUZZ_TARGET=jinja) with clang (ASan + UBSan, the
# library instrumented for coverage too) and runs it.
#
#   scripts/fuzz.sh [SECONDS=180] [extra libFuzzer flags...]
#   STRATA_FUZZ_TARGET=gguf scripts/fuzz.sh 180
#   STRATA_FUZZ_DIRECT=1 scripts/fuzz.sh 60   # skip the CMake build
#
# Build dir: build-fuzz/ (ignored by git). Seeds are made from the
# stories260K header; the corpus grows in build-fuzz/corpus and anything
# found lands in build-fuzz/artifacts (crash-*, leak-*, timeout-*).
set -euo pipefail

SECONDS_TO_RUN=${1:-180}
shift || true
TARGET=${STRATA_FUZZ_TARGET:-safetensors}
case "$TARGET" in safetensors|gguf|jinja) ;; *) echo "STRATA_FUZZ_TARGET must be safetensors, gguf or jinja" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_FUZZ_BUILD:-$ROOT/build-fuzz}
TESTDATA=${STRATA_TESTDATA_DIR:-$ROOT/../shared/testdata}
CXX=${CXX:-clang++}
case "$CXX" in *clang*) ;; *) CXX=clang++ ;; esac
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$BUILD"

# The project's CMake build when the whole library compiles with clang;
# otherwise only the files this target needs, compiled directly.
BIN=$BUILD/fuzz_$TARGET
if [ -z "${STRATA_FUZZ_DIRECT:-}" ] &&
   CXX=$CXX cmake -S "$ROOT" -B "$BUILD" -DSTRATA_FUZZ=ON -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_BENCH=OFF \
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $SAN" >"$BUILD/cmake.log" 2>&1 &&
   cmake --build "$BUILD" -j2 --target fuzz_$TARGET >>"$BUILD/cmake.log" 2>&1; then
  echo "built $BIN with CMake"
else
  [ -z "${STRATA_FUZZ_DIRECT:-}" ] && echo "CMake build failed (see $BUILD/cmake.log); compiling the parser directly" >&2
  BIN=$BUILD/fuzz_${TARGET}_direct
  EXTRA_SRC=()
  EXTRA_LIBS=()
  if [ "$TARGET" = gguf ]; then
    # The parser, the architecture mapping and the tokenizer built from the metadata.
    EXTRA_SRC=("$ROOT/src/formats/gguf.cpp" "$ROOT/src/arch/arch.cpp" "$ROOT/src/arch/gguf_model.cpp"
               "$ROOT"/src/tokenizer/*.cpp)
    EXTRA_LIBS=(-lpcre2-8 -lutf8proc)
  fi
  if [ "$TARGET" = jinja ]; then
    "$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer $SAN -I "$ROOT/src" -I "$ROOT/include" "$ROOT"/src/tokenizer/jinja/*.cpp \
      "$ROOT/fuzz/fuzz_jinja.cpp" -lfmt -lutf8proc -o "$BIN"
  else
    "$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer $SAN -I "$ROOT/src" -I "$ROOT/include" \
      "$ROOT/src/core/dtype.cpp" "$ROOT/src/formats/safetensors.cpp" "${EXTRA_SRC[@]}" "$ROOT/fuzz/fuzz_$TARGET.cpp" \
      -lfmt "${EXTRA_LIBS[@]}" -o "$BIN"
  fi
  echo "built $BIN directly"
fi

# Seeds: the real header with its data cut off, and small complete files
# with the same structure (all dtypes, metadata, empty and scalar tensors).
SEEDS=$BUILD/seeds
rm -rf "$SEEDS" && mkdir -p "$SEEDS" "$BUILD/corpus" "$BUILD/corpus-gguf" "$BUILD/artifacts"
python3 - "$TESTDATA/stories260K/model.safetensors" "$SEEDS" "$BUILD/safetensors.dict" <<'PY'
import json, struct, sys
src, out, dict_path = sys.argv[1:4]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])

def file(header, data_size, pad=0):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * pad
    return struct.pack("<Q", len(text)) + text + bytes(data_size)

open(f"{out}/stories_header_only", "wb").write(raw[:8 + n])
# The stories structure with every tensor shrunk, contiguous.
small, off = {"__metadata__": hdr.get("__metadata__", {})}, 0
for i, (name, t) in enumerate(sorted((k, v) for k, v in hdr.items() if k != "__metadata__")):
    dt = ["F32", "F16", "BF16"][i % 3]
    shape = [i % 4 + 1, 2] if len(t["shape"]) == 2 else [i % 5 + 1]
    size = (4 if dt == "F32" else 2) * (shape[0] * (shape[1] if len(shape) > 1 else 1))
    small[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + size]}
    off += size
open(f"{out}/stories_small", "wb").write(file(small, off))
tiny = {"__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "BF16", "shape": [], "data_offsets": [32, 34]},
        "e": {"dtype": "F16", "shape": [0, 7], "data_offsets": [34, 34]}}
open(f"{out}/tiny", "wb").write(file(tiny, 40, pad=5))
open(f"{out}/empty", "wb").write(file({}, 0))
toks = ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"', '"F16"', '"BF16"', '"I8"',
        '"format"', '"pt"', "18446744073709551615", "9223372036854775807", "-1", "4294967296", "[", "]",
        "{", "}", ":", ",", '"', "0", "1e3", "\\u0000"]
with open(dict_path, "w") as f:
    for t in toks:
        f.write('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
PY

if [ "$TARGET" = jinja ]; then
  # Seeds: the real chat templates of the test data, and small templates
  # using each construct; the dictionary holds Jinja's keywords and operators.
  rm -rf "$SEEDS" && mkdir -p "$SEEDS" "$BUILD/corpus-jinja"
  cp "$TESTDATA"/chat_templates/*.jinja "$SEEDS"/
  python3 - "$SEEDS" "$BUILD/jinja.dict" <<'PY'
import sys
out, dict_path = sys.argv[1:3]
small = [
    "{% for m in messages %}{{ m.role|upper }}: {{ m['content']|trim }}{% if not loop.last %}\n{% endif %}{% endfor %}",
    "{%- set ns = namespace(a=1) -%}{% set ns.a = ns.a + 1 %}{{ ns.a ~ 'x' * 3 }}{{ [1,2,3][1:] | join(',') }}",
    "{% macro f(x, y=2) %}{{ x + y }}{{ caller() if caller is defined }}{% endmacro %}{% call f(1) %}c{% endcall %}{{ f(3, y=4) }}",
    "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list | tojson(indent=2) }}",
    "{% if x is defined %}{{ x.y }}{% elif 3 in [1, 2] %}no{% else %}{{ raise_exception('boom') }}{% endif %}",
    "{{ 'a,b'.split(',') }}{{ {'k': 'v'}.items() | list }}{{ strftime_now('%d %b %Y') }}{{ range(3) | sum }}",
    "{% raw %}{{ not parsed }}{% endraw %}{# comment #}  {%+ if true +%} x {%- endif %}",
]
for i, s in enumerate(small):
    open(f"{out}/small{i}.jinja", "w").write(s)
toks = ["{{", "}}", "{%", "%}", "{%-", "-%}", "{#", "#}", "for", "in", "endfor", "if", "elif", "else", "endif",
        "set", "endset", "macro", "endmacro", "call", "endcall", "filter", "endfilter", "namespace", "loop.index0",
        "loop.last", "break", "continue", "is defined", "is not none", "|tojson", "|trim", "|join", "|map",
        "|selectattr", "|items", "|length", "|default", "raise_exception", "messages", "message['content']",
        "~", "**", "//", "[::-1]", "range(", "caller()", ".split(", ".strip()"]
with open(dict_path, "w") as f:
    for t in toks:
        f.write('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
PY
  echo "fuzzing for $SECONDS_TO_RUN s"
  exec "$BIN" "$BUILD/corpus-jinja" "$SEEDS" -dict="$BUILD/jinja.dict" -max_len=8192 -timeout=10 \
    -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$@"
fi

if [ "$TARGET" = gguf ]; then
  # Seeds: small GGUF files with the structure of a converted model (every
  # metadata value type, every tensor type, tied and untied heads).
  rm -rf "$SEEDS" && mkdir -p "$SEEDS"
  STRATA_TESTDATA_DIR="$TESTDATA" python3 - "$SEEDS" "$BUILD/gguf.dict" <<'PY'
import struct, sys
out, dict_path = sys.argv[1:3]
def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b
def kv_u32(k, v): return s(k) + struct.pack("<II", 4, v)
def kv_f32(k, v): return s(k) + struct.pack("<If", 6, v)
def kv_str(k, v): return s(k) + struct.pack("<I", 8) + s(v)
def gguf(kvs, tensors, align=32):
    # tensors: (name, ne, type, nbytes)
    head, off, infos = b"", 0, b""
    for name, ne, ty, nb in tensors:
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", ty, off)
        off = (off + nb + align - 1) // align * align
    h = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    h += bytes((-len(h)) % align)
    return h + bytes(off)
kvs = [kv_str("general.architecture", "llama"), kv_u32("general.alignment", 32), kv_u32("llama.block_count", 1),
       kv_u32("llama.embedding_length", 32), kv_u32("llama.feed_forward_length", 64),
       kv_u32("llama.attention.head_count", 2), kv_u32("llama.attention.head_count_kv", 1),
       kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5), kv_f32("llama.rope.freq_base", 10000.0),
       s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("b"),
       s("tokenizer.ggml.token_type") + struct.pack("<IIQii", 9, 5, 2, 1, 3)]
T = [("token_embd.weight", [32, 8], 8, 8 * 34), ("blk.0.attn_norm.weight", [32], 0, 128),
     ("blk.0.attn_q.weight", [32, 32], 2, 32 * 18), ("blk.0.attn_k.weight", [32, 16], 1, 32 * 16 * 2),
     ("blk.0.attn_v.weight", [32, 16], 30, 32 * 16 * 2), ("blk.0.attn_output.weight", [32, 32], 8, 32 * 34),
     ("blk.0.ffn_norm.weight", [32], 0, 128), ("blk.0.ffn_gate.weight", [32, 64], 2, 64 * 18),
     ("blk.0.ffn_up.weight", [32, 64], 2, 64 * 18), ("blk.0.ffn_down.weight", [64, 32], 8, 32 * 2 * 34),
     ("output_norm.weight", [32], 0, 128)]
open(f"{out}/tiny_llama", "wb").write(gguf(kvs, T))
open(f"{out}/tiny_untied", "wb").write(gguf(kvs, T + [("output.weight", [32, 8], 0, 32 * 8 * 4)]))
open(f"{out}/empty", "wb").write(gguf([], []))
# Headers of files llama.cpp wrote (metadata, tokenizer arrays, tensor
# table), cut before their data.
import glob, os
for p in sorted(glob.glob(os.environ.get("STRATA_TESTDATA_DIR", "") + "/gguf/synthetic-d256-*.gguf"))[:3]:
    open(f"{out}/llamacpp_" + os.path.basename(p), "wb").write(open(p, "rb").read()[:16384])
toks = ["GGUF", "general.architecture", "general.alignment", "llama", "qwen2", "qwen3", ".block_count",
        "token_embd.weight", "blk.0.", "output.weight", "\xff\xff\xff\xff\xff\xff\xff\xff", "\x00\x10\x00\x00"]
with open(dict_path, "w") as f:
    for t in toks:  # libFuzzer dictionaries escape other bytes as \xNN
        f.write('"' + "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "\\x%02X" % ord(c) for c in t) + '"\n')
PY
  echo "fuzzing for $SECONDS_TO_RUN s"
  exec "$BIN" "$BUILD/corpus-gguf" "$SEEDS" -dict="$BUILD/gguf.dict" -max_len=16384 \
    -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$@"
fi

echo "fuzzing for $SECONDS_TO_RUN s"
"$BIN" "$BUILD/corpus" "$SEEDS" -dict="$BUILD/safetensors.dict" -max_len=16384 \
  -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$@"
