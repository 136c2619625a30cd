#!/usr/bin/env bash
# Runs the engine's Arm code (Vector128 on NEON, the sdot integer kernels) under qemu-aarch64 on an x86 machine and
# checks its logits against the x86 build's on the same small GGUF files, one per weight type. Both give the same
# integer block sums, so the logits may differ only by the float rounding of the other kernels' vector widths (about
# 1e-7). Two positions by default: over more, these tiny random models amplify such a one-ulp difference whenever it
# flips an activation's int8 rounding (seen with Q4_0 from position 2 on: 1e-2 between any two kernel sets, x86 ones
# included), which says nothing about the kernels. Correctness only: emulated speed means nothing.
#
#   bench/arm64-qemu.sh                 TYPES="q8_0 q4_0 q4_k q6_k f16" TOKENS=2 TOLERANCE=1e-4 WORK=/tmp/exo-arm64
#
# Needs qemu-user and Debian's arm64 C libraries (multiarch); as root it installs them itself.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-${TMPDIR:-/tmp}/exo-arm64}
packages="qemu-user libc6:arm64 libstdc++6:arm64 zlib1g:arm64"
if ! command -v qemu-aarch64 > /dev/null || [ ! -e /lib/ld-linux-aarch64.so.1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: needs qemu-aarch64 and arm64 libraries; as root: dpkg --add-architecture arm64 && apt-get update && apt-get install -y $packages" >&2
    exit 2
  fi
  echo "installing $packages" >&2
  dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages > /dev/null
fi

mkdir -p "$work"
cli=$repo/src/Exo.Cli/Exo.Cli.csproj
dotnet build "$cli" -c Release -nologo -v quiet >&2
# Its own artifacts folder, so the arm64 restore leaves the checkout's obj/ to the x86 build.
dotnet publish "$cli" -c Release -r linux-arm64 --self-contained --artifacts-path "$work/artifacts" -o "$work/arm64" -nologo -v quiet >&2
x86="dotnet $repo/src/Exo.Cli/bin/Release/net10.0/exo.dll"
# .NET writes JIT code through a second, writable mapping (W^X), behind qemu's back: qemu would then run stale
# translations of it (seen as crashes inside compiled regexes). There is no arm64 ICU here, hence invariant mode.
arm="env DOTNET_EnableWriteXorExecute=0 DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 qemu-aarch64 $work/arm64/exo"

status=0
for type in ${TYPES:-q8_0 q4_0 q4_k q6_k f16}; do
  model=$work/tiny-$type.gguf
  [ -f "$model" ] || $x86 synth --out "$model" --type "$type" --dim 256 --layers 2 --ffn 512 --heads 4 --kv-heads 2 --vocab 1024 > /dev/null
  $x86 logits --model "$model" --save "$work/x86-$type.json" --tokens "${TOKENS:-2}" > /dev/null
  echo "== $type: arm64 under qemu against x86" >&2
  $arm logits --model "$model" --compare "$work/x86-$type.json" --tolerance "${TOLERANCE:-1e-4}" | tail -1 || status=1
done
exit $status
