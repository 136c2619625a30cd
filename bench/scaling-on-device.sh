#!/usr/bin/env bash
# Runs on the lent machine from what bench/scaling-pack.sh packed (it is copied there as .gpu/scale/on-device.sh):
#   bash .gpu/scale/on-device.sh add                    appends the runtime parts this call carries to $HOME/scale
#   bash .gpu/scale/on-device.sh run [scaling options]  appends them too, unpacks the runtime (once) and the apps this
#                                                       call carries, makes the model (once), runs bench/scaling.sh
# Between calls the machine keeps $HOME while it stays warm. Results and logs go to $OUT (or ./scaling-out).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; home="$HOME/scale"; out="${OUT:-$PWD/scaling-out}"
mkdir -p "$home" "$out"
for part in $(ls -d "$here"/runtime-* 2>/dev/null | sort -V); do
  n="${part##*-}"
  # A part already appended (a call repeated) is not appended twice.
  [[ -f "$home/appended-$n" ]] && continue
  cat "$part/bundle" >> "$home/runtime.tar.xz" && touch "$home/appended-$n"
  echo "appended runtime part $n"
done
[[ "${1:-}" == run ]] || exit 0
shift
# Unpacked aside and moved in whole, so a call cut off mid-way leaves no half runtime that looks complete.
[[ -x "$home/dotnet/dotnet" ]] || (cd "$home" && rm -rf unpack && mkdir unpack && xz -dc runtime.tar.xz | tar xf - -C unpack && mv unpack/dotnet dotnet && rm -rf unpack)
rm -rf "$home/apps" && (cd "$home" && xz -dc "$here/apps/bundle" | tar xf -)
export EXO_BIN="$home/apps/bin" EXO_DOTNET="$home/dotnet/dotnet" DOTNET_ROOT="$home/dotnet"
export EXO_SCALING_MODEL="${EXO_SCALING_MODEL:-$home/model/synth-500m}" DOTNET_CLI_TELEMETRY_OPTOUT=1 PYTHONUNBUFFERED=1
nproc; lscpu | grep -E 'Model name|L3|NUMA node' || true
baseline=(); [[ -d "$home/apps/baseline/Exo.ShardWorker" ]] && baseline=(--baseline-bin "$home/apps/baseline/Exo.ShardWorker")
status=0
rm -rf "$home/work"
bash "$home/apps/bench/scaling.sh" "${baseline[@]}" --out "$out/scaling.json" --work "$home/work" "$@" 2>&1 | tee "$out/scaling.log" || status=$?
# The services' logs, for whatever went wrong.
tar cf - -C "$home" work 2>/dev/null | xz -T0 > "$out/logs.tar.xz" || true
exit $status
