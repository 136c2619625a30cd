#!/usr/bin/env bash
# The GPU-machine half of making models/exo-tiny (prepare_corpus.sh made ./corpus beforehand):
# trains three schedules side by side on one GPU (the model is too small to fill it), keeps the one with the lowest
# validation loss, writes its reference files, builds the extra test fixtures, and packs everything into $OUT.
#
#   OUT=/some/dir tools/train-default-model/train_all.sh [STEPS...]      (default steps: 1000 1300 1600)
set -euo pipefail
export PYTHONUNBUFFERED=1
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:?set OUT to a folder for the results}"
WORK="$(mktemp -d)"
STEPS=("${@:-1000 1300 1600}")
read -r -a STEPS <<< "${STEPS[*]}"

for s in "${STEPS[@]}"; do
  python3 "$HERE/train.py" --corpus "$HERE/corpus" --out "$WORK/run$s" --steps "$s" --eval-every 100 \
    > "$OUT/train_$s.log" 2>&1 &
done
wait
best="$(python3 - "$WORK" <<'PY'
import glob, json, os, sys
runs = sorted(glob.glob(os.path.join(sys.argv[1], "run*", "train_log.json")))
if not runs:
    raise SystemExit("no run finished")
logs = [(json.load(open(r))["best_val_loss"], os.path.dirname(r)) for r in runs]
for v, d in logs:
    print(f"{d}: best val {v:.4f}", file=sys.stderr)
print(min(logs)[1])
PY
)"
echo "chosen: $best"
mkdir -p "$WORK/pack"
cp -r "$best" "$WORK/pack/exo-tiny"
python3 "$HERE/make_reference.py" "$WORK/pack/exo-tiny"
for d in "$WORK"/run*; do mkdir -p "$WORK/pack/runs/$(basename "$d")"; cp "$d"/train_log.json "$d"/samples.json "$WORK/pack/runs/$(basename "$d")/"; done
python3 "$HERE/../make-extra-fixtures/make_extra.py" "$HERE/corpus" "$WORK/pack/extra"
tar czf - -C "$WORK/pack" . | split -b 15M - "$OUT/pack.tgz.part-"
ls -la "$OUT"
