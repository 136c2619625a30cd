#!/usr/bin/env bash
# Runs the shared llama.cpp benchmark harness (../shared/bench/llamacpp, see its README) with this engine plugged in
# through its ENGINE_CMD hook: llama-bench, node-llama-cpp and `exo bench` run on the same GGUF files in the same
# repetitions, and the harness's summary.md gets a table of exo's prefill/decode tok/s and ratios to llama-bench.
#
#   bench/llamacpp-compare.sh                      # everything (REPS=3), ~15 min
#   REPS=1 MODELS="bench-1b-q8_0" bench/llamacpp-compare.sh
#
# Every variable run_all.sh reads (REPS, THREADS, MODELS, MODELS_DIR, OUT, ...) passes through. Results go to
# bench/results/run-<UTC time>/ in this repository unless OUT says otherwise.
set -euo pipefail
source "$(dirname "$0")/harness.sh"
export ENGINE_CMD="$exo bench --json"
export OUT=${OUT:-$repo/bench/results/run-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
bash "$harness/run_all.sh"
echo "summary: $OUT/summary.md" >&2
