#!/usr/bin/env bash
# Packs bench/scaling.sh for a machine without .NET (the lent GPU machine) into OUT (default .gpu/scale, which git
# ignores): the services and the CLI published framework-dependent, one .NET runtime for all of them (the host and the
# shared frameworks, less the large parts none of them uses: MVC, Razor, Blazor, SignalR, Identity, XML, data, mail;
# a trimmer's list of what they reach is not enough, as untrimmed code loads facades and more that it drops), the
# bench scripts, and with --baseline REV the shard worker built at REV, to compare with. Every call to the device
# carries the whole tracked tree too, so what a call carries must stay small: the runtime, which seldom changes, is an
# xz archive split into parts of at most 12 MiB (runtime-1, runtime-2, ...: carry them in consecutive calls, each
# appended there to one file), and the apps and scripts are an archive of their own (apps, a few MiB), carried with the
# call that runs. See bench/scaling-on-device.sh.
#   bash bench/scaling-pack.sh [--out DIR] [--baseline REV] [--apps-only]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.gpu/scale"; baseline=""; apps_only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    --apps-only) apps_only=1; shift ;;
    *) echo "error: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
work="$(mktemp -d)"; trap 'rm -rf "$work"; [[ -n "$baseline" ]] && git -C "$root" worktree remove --force "$work-baseline" 2>/dev/null || true' EXIT
projects=(services/Exo.Registry services/Exo.Planner services/Exo.ShardWorker services/Exo.Api src/Exo.Cli)
publish() { nice -n 10 dotnet publish "$1" -c Release -r linux-x64 --nologo -v quiet -p:DebugType=none "${@:2}"; }

stage="$work/apps"; mkdir -p "$stage/bin" "$stage/bench"
for project in "${projects[@]}"; do
  name="$(basename "$project")"
  echo "publishing $name"
  publish "$root/$project" --self-contained false -o "$stage/bin/$name"
done
if [[ -n "$baseline" ]]; then
  echo "publishing the shard worker at $baseline (the baseline)"
  git -C "$root" worktree add --detach "$work-baseline" "$baseline" >/dev/null
  publish "$work-baseline/services/Exo.ShardWorker" --self-contained false -o "$stage/baseline/Exo.ShardWorker"
fi

cp "$root/bench/scaling.sh" "$root/bench/scaling.py" "$root/bench/sse.py" "$stage/bench/"
mkdir -p "$out"; rm -rf "$out/apps"; mkdir -p "$out/apps"
(cd "$work" && tar cf - apps | xz -9e -T0 > "$out/apps/bundle")
cp "$root/bench/scaling-on-device.sh" "$out/on-device.sh"
echo "apps: $(du -sb "$out/apps/bundle" | cut -f1) bytes"
if [[ -n "$apps_only" ]]; then exit 0; fi

echo "copying the runtime ($dotnet_root) less what the services never load"
runtime="$work/runtime/dotnet"; mkdir -p "$runtime"
cp "$dotnet_root/dotnet" "$runtime/"
cp -r "$dotnet_root/host" "$runtime/"
for framework in "$dotnet_root"/shared/Microsoft.NETCore.App/* "$dotnet_root"/shared/Microsoft.AspNetCore.App/*; do
  target="$runtime/shared/$(basename "$(dirname "$framework")")/$(basename "$framework")"; mkdir -p "$target"
  for file in "$framework"/*; do
    name="$(basename "$file")"
    case "$name" in
      # The debugger's and the alternative GCs' libraries, and frameworks the services do not use (checked by running
      # bench/scaling.sh on the packed runtime: ASP.NET's defaults load Server.IIS, so it stays).
      libmscordaccore.so|libmscordbi.so|libclrgc.so|libclrgcexp.so|createdump) continue ;;
      Microsoft.AspNetCore.Mvc*|Microsoft.AspNetCore.Razor*|Microsoft.AspNetCore.Components*|Microsoft.AspNetCore.SignalR*) continue ;;
      Microsoft.AspNetCore.Identity*|Microsoft.Extensions.Identity*|Microsoft.VisualBasic*|Microsoft.AspNetCore.Server.HttpSys.dll) continue ;;
      Microsoft.AspNetCore.Rewrite.dll|Microsoft.AspNetCore.OutputCaching.dll|System.Private.Xml*|System.Private.DataContractSerialization.dll) continue ;;
      System.Data.Common.dll|System.Security.Cryptography.Xml.dll|System.Security.Cryptography.Pkcs.dll|System.Net.Mail.dll) continue ;;
      System.Net.HttpListener.dll|System.Text.Encoding.CodePages.dll|System.Transactions.Local.dll|System.Formats.Tar.dll) continue ;;
    esac
    cp "$file" "$target/"
  done
done
rm -rf "$out"/runtime-*
(cd "$work/runtime" && tar cf - dotnet | xz -9e -T0 > "$work/runtime.tar.xz")
split -b 12M -d -a 1 "$work/runtime.tar.xz" "$work/runtime-"
for part in "$work"/runtime-?; do n=$(( ${part##*-} + 1 )); mkdir -p "$out/runtime-$n"; mv "$part" "$out/runtime-$n/bundle"; done
echo "runtime: $(du -sb "$work/runtime.tar.xz" | cut -f1) bytes in $(ls -d "$out"/runtime-* | wc -l) part(s) under $out"
