#!/usr/bin/env bash
# The scaling benchmark of issue 18 (see bench/scaling.py for what it runs and the goals it reports):
#   bash bench/scaling.sh [scaling.py options...]          e.g. --suites fit --workers 1,2 --streams 1,8 --tokens 16
# The services come from EXO_BIN (a folder with Exo.Registry/, Exo.Planner/, Exo.ShardWorker/, Exo.Api/ and Exo.Cli/, as
# bench/scaling-pack.sh publishes them) run by EXO_DOTNET (default: dotnet on PATH); without EXO_BIN they are built from
# this checkout. The model is EXO_SCALING_MODEL, made when missing with `exo synth` (random f16 weights, 16 layers of
# dim 1024, about 0.5 GB: larger than a CPU's L3 cache; a vocabulary of 1024, so that
# logit_bias can keep the output to printable ASCII, one streamed character a token). Results: scaling.json (or --out) and a table.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dotnet="${EXO_DOTNET:-dotnet}"
model="${EXO_SCALING_MODEL:-${TMPDIR:-/tmp}/exo-scaling/synth-500m}"
if [[ -z "${EXO_BIN:-}" ]]; then
  EXO_BIN="$root/.scaling-bin"
  for project in services/Exo.Registry services/Exo.Planner services/Exo.ShardWorker services/Exo.Api src/Exo.Cli; do
    name="$(basename "$project")"
    nice -n 10 "$dotnet" build "$root/$project" -c Release -o "$EXO_BIN/$name" --nologo -v quiet >/dev/null
  done
fi
for dll in Exo.Registry/Exo.Registry Exo.Planner/Exo.Planner Exo.ShardWorker/Exo.ShardWorker Exo.Api/Exo.Api Exo.Cli/exo; do
  [[ -f "$EXO_BIN/$dll.dll" ]] || { echo "error: $EXO_BIN/$dll.dll is missing" >&2; exit 2; }
done
if [[ ! -f "$model/config.json" ]]; then
  mkdir -p "$(dirname "$model")"
  "$dotnet" "$EXO_BIN/Exo.Cli/exo.dll" synth --format hf --type f16 --dim 1024 --layers 16 --ffn 4096 --heads 16 --kv-heads 4 --vocab 1024 \
    --out "$model.partial"
  mv "$model.partial" "$model"
fi
exec python3 "$root/bench/scaling.py" --model "$model" --bin "$EXO_BIN" --dotnet "$dotnet" "$@"
