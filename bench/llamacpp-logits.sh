#!/usr/bin/env bash
# Cross-checks this engine against llama.cpp on the same GGUF files: the harness's dump_logits (built against the
# prebuilt libllama that npm ships) prints llama.cpp's logits for tokens t_i = (37i + 11) mod (vocab - 2), and
# `exo logits --compare` runs the same tokens through this engine and reports the difference position by position.
#
#   bench/llamacpp-logits.sh model.gguf [more.gguf ...]        TOKENS=16 THREADS=2 TOLERANCE=0.05
#
# Exits 1 if any file differs by more than the tolerance (max |Δ| / max |llama.cpp| at some position) or llama.cpp
# cannot run it. The library names are those of the node-llama-cpp release that the harness pins (linux-x64, v0.5.0).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 MODEL.gguf [MODEL.gguf ...]" >&2; exit 2; }
source "$(dirname "$0")/harness.sh"
bins=$harness/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
src=${LLAMA_SRC:-/tmp/llama.cpp-src}
if [ ! -x "$harness/bin/dump_logits" ]; then
  # The harness's own steps 1-3 (see its run_all.sh), for this one tool.
  (cd "$harness"
   [ -d node_modules/@node-llama-cpp/linux-x64 ] || npm install --omit=optional --ignore-scripts --no-audit --no-fund >&2
   [ -f "$src/include/llama.h" ] || git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle "$src"
   mkdir -p bin
   g++ -O2 -DNDEBUG -std=c++17 tools/dump_logits.cpp -o bin/dump_logits -I"$src/include" -I"$src/ggml/include" \
     -L"$bins" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so \
     -Wl,-rpath,"\$ORIGIN/../node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")
fi
status=0
dump=$(mktemp)
log=$(mktemp)
trap 'rm -f "$dump" "$log"' EXIT
for model in "$@"; do
  echo "== $model" >&2
  if ! "$harness/bin/dump_logits" "$model" "${TOKENS:-16}" "${THREADS:-2}" "$bins" > "$dump" 2> "$log"; then
    echo "dump_logits failed on $model:" >&2
    tail -5 "$log" >&2
    status=1
    continue
  fi
  $exo logits --model "$model" --compare "$dump" --tolerance "${TOLERANCE:-0.05}" | tail -1 || status=1
done
exit $status
