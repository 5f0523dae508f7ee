#!/usr/bin/env bash
# Builds the libFuzzer target for the safetensors header parser with clang
# (ASan + UBSan, the library instrumented for coverage too) and runs it.
#
#   scripts/fuzz.sh [SECONDS=180] [extra libFuzzer flags...]
#   STRATA_FUZZ_DIRECT=1 scripts/fuzz.sh 60   # skip the CMake build
#
# Build dir: build-fuzz/ (ignored by git). Seeds are made from the
# stories260K header; the corpus grows in build-fuzz/corpus and anything
# found lands in build-fuzz/artifacts (crash-*, leak-*, timeout-*).
set -euo pipefail

SECONDS_TO_RUN=${1:-180}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_FUZZ_BUILD:-$ROOT/build-fuzz}
TESTDATA=${STRATA_TESTDATA_DIR:-$ROOT/../shared/testdata}
CXX=${CXX:-clang++}
case "$CXX" in *clang*) ;; *) CXX=clang++ ;; esac
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$BUILD"

# The project's CMake build when the whole library compiles with clang;
# otherwise only the files this target needs, compiled directly.
BIN=$BUILD/fuzz_safetensors
if [ -z "${STRATA_FUZZ_DIRECT:-}" ] &&
   CXX=$CXX cmake -S "$ROOT" -B "$BUILD" -DSTRATA_FUZZ=ON -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_BENCH=OFF \
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $SAN" >"$BUILD/cmake.log" 2>&1 &&
   cmake --build "$BUILD" -j2 --target fuzz_safetensors >>"$BUILD/cmake.log" 2>&1; then
  echo "built $BIN with CMake"
else
  [ -z "${STRATA_FUZZ_DIRECT:-}" ] && echo "CMake build failed (see $BUILD/cmake.log); compiling the parser directly" >&2
  BIN=$BUILD/fuzz_safetensors_direct
  "$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer $SAN -I "$ROOT/src" \
    "$ROOT/src/core/dtype.cpp" "$ROOT/src/formats/safetensors.cpp" "$ROOT/fuzz/fuzz_safetensors.cpp" -o "$BIN"
  echo "built $BIN directly"
fi

# Seeds: the real header with its data cut off, and small complete files
# with the same structure (all dtypes, metadata, empty and scalar tensors).
SEEDS=$BUILD/seeds
rm -rf "$SEEDS" && mkdir -p "$SEEDS" "$BUILD/corpus" "$BUILD/artifacts"
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

echo "fuzzing for $SECONDS_TO_RUN s"
"$BIN" "$BUILD/corpus" "$SEEDS" -dict="$BUILD/safetensors.dict" -max_len=16384 \
  -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$@"
