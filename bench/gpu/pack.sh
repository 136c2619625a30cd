#!/usr/bin/env bash
# Packs what bench/gpu/run-on-device.sh needs on the lent GPU machine into .gpu/one (ignored by git): a trimmed,
# self-contained build of `exo` (the machine has no .NET), llama.cpp's prebuilt Vulkan llama-bench and the Vulkan
# loader from ../shared/bench/gpu/blobs, and the synthetic-model writer. The tracked tree (about 50 MiB, the shipped
# model included) travels with every call, so this folder must stay under about 14 MiB: the runtime's debugging
# libraries are left out and the build is xz-compressed.
#   bash bench/gpu/pack.sh        then, with the device tool:  run  command="bash .gpu/one/run-on-device.sh"  carry=[".gpu/one"]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"; shared="$root/../shared/bench"; out="$root/.gpu/one"; work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grep -qx '/.gpu/' "$root/.git/info/exclude" 2>/dev/null || { mkdir -p "$root/.git/info"; echo '/.gpu/' >> "$root/.git/info/exclude"; }
[[ -f "$shared/gpu/blobs/vk.tar.xz" ]] || { echo "error: $shared/gpu/blobs is missing: ../shared must sit beside the checkout" >&2; exit 2; }
echo "publishing exo (linux-x64, self-contained, trimmed)"
dotnet publish "$root/src/Exo.Cli" -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TreatWarningsAsErrors=false \
  -p:SuppressTrimAnalysisWarnings=true -p:DebugType=none -o "$work/exo" --nologo -v quiet
(cd "$work/exo" && rm -f libmscordaccore.so libmscordbi.so libclrgcexp.so libclrgc.so libcoreclrtraceptprovider.so createdump libSystem.IO.Compression.Native.so)
rm -rf "$out" && mkdir -p "$out/bench/gpu/blobs" "$out/bench/llamacpp"
cp "$shared"/gpu/blobs/*.deb "$shared/gpu/blobs/vk.tar.xz" "$out/bench/gpu/blobs/"
cp "$shared/llamacpp/make_gguf.py" "$out/bench/llamacpp/"
cp "$root/bench/gpu/run-on-device.sh" "$out/"
(cd "$work" && tar cf - exo | xz -9e -T0 > "$out/exo.tar.xz")
echo "$(du -sb "$out" | cut -f1) bytes in $out"
