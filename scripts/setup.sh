#!/usr/bin/env bash
# Installs strata's dependencies from Debian's packages (idempotent), builds
# it in Release, and runs it on a model: ../shared/testdata/stories260K by
# default, or the model directory given as the first argument.
#
#   scripts/setup.sh [MODEL_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:-$root/../shared/testdata/stories260K}"

packages=(build-essential cmake pkg-config libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  libcli11-dev libfmt-dev libpcre2-dev libutf8proc-dev liburing-dev libopenblas-dev clang libclang-rt-14-dev
  libcurl4-openssl-dev libssl-dev libcpp-httplib-dev
  python3-dev pybind11-dev python3-pybind11 python3-pytest python3-numpy)
# The server's end-to-end tests run the openai npm package under node
# (installed into the build directory by the tests' setup step).
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

echo "== building (Release) in $root/build"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j2

echo "== Python package: import strata in new shells (python3 on PATH and /usr/bin/python3)"
"$root/scripts/install_python.sh"

echo "== strata info $model"
"$root/build/strata" info "$model"
# A story from a text prompt when the model has a tokenizer, else from BOS.
if [ -f "$model/tokenizer.json" ] || [[ "$model" == *.gguf ]]; then
  echo "== strata run $model \"Once upon a time\" -n 120"
  printf 'Once upon a time'
  "$root/build/strata" run "$model" "Once upon a time" -n 120
else
  echo "== strata run $model --prompt-ids 1 -n 32"
  "$root/build/strata" run "$model" --prompt-ids 1 -n 32
fi
