#!/usr/bin/env bash
# Packs what bench/gpu/run-on-device.sh needs on the lent GPU machine into .gpu/one of the main checkout (ignored by git): a trimmed,
# self-contained build of `exo` (the machine has no .NET), llama.cpp's prebuilt Vulkan llama-bench and the Vulkan
# loader from ../shared/bench/gpu/blobs, and the synthetic-model writer. The tracked tree (about 50 MiB, the shipped
# model included) travels with every call, so this folder must stay under about 13 MiB: the runtime's debugging
# libraries are left out, and the builds are xz-compressed with the x86 filter (which packs machine code tighter).
#   bash bench/gpu/pack.sh        then, with the device tool:  run  command="bash .gpu/one/run-on-device.sh"  carry=[".gpu/one"]
set -euo pipefail
# The device tool sends the main checkout (not a worktree), so the pack goes there, found through git's common dir.
root="$(cd "$(dirname "$0")/../.." && pwd)"; shared="$root/../shared/bench"; work="$(mktemp -d)"
main="$(cd "$(git -C "$root" rev-parse --path-format=absolute --git-common-dir)/.." && pwd)"; out="$main/.gpu/one"
trap 'rm -rf "$work"' EXIT
grep -qx '/.gpu/' "$main/.git/info/exclude" 2>/dev/null || { mkdir -p "$main/.git/info"; echo '/.gpu/' >> "$main/.git/info/exclude"; }
[[ -f "$shared/gpu/blobs/vk.tar.xz" ]] || { echo "error: $shared/gpu/blobs is missing: ../shared must sit beside the checkout" >&2; exit 2; }
echo "publishing exo (linux-x64, self-contained, trimmed)"
dotnet publish "$root/src/Exo.Cli" -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TreatWarningsAsErrors=false \
  -p:SuppressTrimAnalysisWarnings=true -p:DebugType=none -o "$work/exo" --nologo -v quiet
(cd "$work/exo" && rm -f libmscordaccore.so libmscordbi.so libclrgcexp.so libclrgc.so libcoreclrtraceptprovider.so createdump libSystem.IO.Compression.Native.so)
rm -rf "$out" && mkdir -p "$out/bench/gpu/blobs" "$out/bench/llamacpp"
# Only the Vulkan loader and the glvnd libraries NVIDIA's ICD links against; llama.cpp's build stripped, with its x64
# CPU backend alone (the others are variants of it for other processors).
cp "$shared"/gpu/blobs/{libvulkan1,libglvnd0,libglx0}_*.deb "$out/bench/gpu/blobs/"
tar xJf "$shared/gpu/blobs/vk.tar.xz" -C "$work"
rm -f "$work"/vk-build/lib/libggml-cpu-{zen4,sapphirerapids}.so
strip --strip-unneeded "$work"/vk-build/lib/*.so "$work/vk-build/llama-bench"
(cd "$work" && tar cf - vk-build | xz --x86 --lzma2=preset=9e -T0 > "$out/bench/gpu/blobs/vk.tar.xz")
cp "$shared/llamacpp/make_gguf.py" "$out/bench/llamacpp/"
cp "$root/bench/gpu/run-on-device.sh" "$out/"
(cd "$work" && tar cf - exo | xz --x86 --lzma2=preset=9e -T0 > "$out/exo.tar.xz")
echo "$(du -sb "$out" | cut -f1) bytes in $out"
