#!/usr/bin/env bash
# Packs what bench/gpu/run-on-device.sh needs on the lent GPU machine into .gpu/one of the main checkout (ignored by
# git; the device tool sends the main checkout, not a worktree): common/ (the script, the Vulkan loader and the
# synthetic-model writer), llama/ (llama.cpp's prebuilt Vulkan llama-bench) and exo/ (a trimmed, self-contained build of
# `exo`: the machine has no .NET). The tracked tree (about 52 MiB on disk, the shipped model included) travels with
# every call under a 64 MiB limit counted in disk blocks, so llama/ and exo/ go in separate calls on the same warm
# machine (the models it writes stay in its /tmp): common plus either is under 8 MiB.
#   bash bench/gpu/pack.sh [--exo-as NAME] [PART...]   PART: common llama exo (default all three)
#   then, with the device tool:  run  command="bash .gpu/one/common/run-on-device.sh"  carry=[".gpu/one/common", ".gpu/one/llama"]
#   and at once (the machine is kept 30 s):  the same with carry=[".gpu/one/common", ".gpu/one/exo"]
# --exo-as NAME packs this checkout's exo as .gpu/one/NAME instead (exo-base: a baseline build to run beside a new one).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"; shared="$root/../shared/bench"; work="$(mktemp -d)"
main="$(cd "$(git -C "$root" rev-parse --path-format=absolute --git-common-dir)/.." && pwd)"; out="$main/.gpu/one"
trap 'rm -rf "$work"' EXIT
exoName=exo
if [[ "${1:-}" == "--exo-as" ]]; then exoName="${2:?--exo-as takes a folder name}"; shift 2; fi
parts=("$@"); [[ ${#parts[@]} -gt 0 ]] || parts=(common llama exo)
grep -qx '/.gpu/' "$main/.git/info/exclude" 2>/dev/null || { mkdir -p "$main/.git/info"; echo '/.gpu/' >> "$main/.git/info/exclude"; }
[[ -f "$shared/gpu/blobs/vk.tar.xz" ]] || { echo "error: $shared/gpu/blobs is missing: ../shared must sit beside the checkout" >&2; exit 2; }
pack() { (cd "$work" && tar cf - "$1" | xz --x86 --lzma2=preset=9e -T0 > "$2"); } # the x86 filter packs machine code tighter
for part in "${parts[@]}"; do
  case $part in
    common)
      # The Vulkan loader and all of glvnd: without libEGL and the rest, NVIDIA's ICD fails to create an instance
      # (ErrorIncompatibleDriver, seen on the H200 on 2026-12-07).
      rm -rf "$out/common" && mkdir -p "$out/common"
      cp "$shared"/gpu/blobs/*.deb "$shared/llamacpp/make_gguf.py" "$root/bench/gpu/run-on-device.sh" "$out/common/" ;;
    llama)
      # With its x64 CPU backend alone (the others are variants of it for other processors).
      rm -rf "$out/llama" && mkdir -p "$out/llama"
      tar xJf "$shared/gpu/blobs/vk.tar.xz" -C "$work"
      rm -f "$work"/vk-build/lib/libggml-cpu-{zen4,sapphirerapids}.so
      pack vk-build "$out/llama/vk.tar.xz" ;;
    exo)
      echo "publishing exo (linux-x64, self-contained, trimmed) as $exoName"
      dotnet publish "$root/src/Exo.Cli" -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TreatWarningsAsErrors=false \
        -p:SuppressTrimAnalysisWarnings=true -p:DebugType=none -o "$work/exo" --nologo -v quiet
      # The runtime's debugging and tracing libraries are not needed to run.
      (cd "$work/exo" && rm -f libmscordaccore.so libmscordbi.so libclrgcexp.so libclrgc.so libcoreclrtraceptprovider.so createdump libSystem.IO.Compression.Native.so)
      rm -rf "$out/$exoName" && mkdir -p "$out/$exoName"
      git -C "$root" log --oneline -1 > "$out/$exoName/commit.txt"
      pack exo "$out/$exoName/exo.tar.xz" ;;
    *) echo "error: unknown part '$part' (common, llama, exo)" >&2; exit 2 ;;
  esac
  echo "$(du -s --block-size=1 "$out/${part/exo/$exoName}" | cut -f1) bytes on disk in $out/${part/exo/$exoName}"
done
