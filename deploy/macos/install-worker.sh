#!/bin/bash
# Installs the Exo shard worker on this Mac as a launchd agent that starts at login, restarts if it stops, and joins
# the cluster whose registry and planner run on CLUSTER_HOST (the machine that runs `dotnet run --project Exo.AppHost -- --public`), or without it the one it finds on the network.
#   deploy/macos/install-worker.sh [CLUSTER_HOST | --cluster NAME] [--port 52418] [--secret SECRET]   install or update
#   deploy/macos/install-worker.sh --uninstall                      stop and remove (the data directory stays)
set -euo pipefail
label=com.exo.shardworker
agent="$HOME/Library/LaunchAgents/$label.plist"
app="$HOME/Library/Application Support/Exo/worker"
data="$HOME/.exo/worker"
here="$(cd "$(dirname "$0")" && pwd)"

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then usage 0; fi
if [[ "${1:-}" == "--uninstall" ]]; then
  launchctl bootout "gui/$(id -u)/$label" 2>/dev/null || true
  rm -f "$agent"
  rm -rf "$app"
  echo "removed $label; the node id and models in $data are kept"
  exit 0
fi

sdk_hint="brew install --cask dotnet-sdk"
glslc_hint="brew install shaderc"
# The GPU: Vulkan on Metal through MoltenVK, from Homebrew: the loader (libvulkan), MoltenVK (its driver) and shaderc
# (glslc, which compiles the GPU kernels when the worker is built).
# A host is checked before anything is installed (worker-common.sh checks every argument again).
[[ "${1:-}" == -* || "${1:-}" =~ ^[A-Za-z0-9.:_-]*$ ]] || { echo "error: '$1' is not a host name or address" >&2; exit 2; }
# launchd and ssh shells often lack Homebrew's PATH: look where it installs itself too.
brew="$(command -v brew || true)"
for candidate in /opt/homebrew/bin/brew /usr/local/bin/brew; do [[ -n "$brew" || ! -x "$candidate" ]] || brew="$candidate"; done
[[ -n "$brew" ]] || { echo "error: Homebrew is needed for the GPU libraries (Vulkan loader, MoltenVK, shaderc): https://brew.sh" >&2; exit 2; }
for formula in vulkan-loader molten-vk shaderc; do
  "$brew" list --formula "$formula" >/dev/null 2>&1 || { echo "installing $formula (Homebrew)"; "$brew" install "$formula"; }
done
brew_prefix="$("$brew" --prefix)"
icd="$("$brew" --prefix molten-vk)/share/vulkan/icd.d/MoltenVK_icd.json"
[[ -f "$icd" ]] || { echo "error: MoltenVK's driver manifest is not at $icd: brew reinstall molten-vk" >&2; exit 2; }
export PATH="$brew_prefix/bin:$PATH"
source "$here/../worker-common.sh"
mkdir -p "$(dirname "$agent")"
host="$(scutil --get LocalHostName 2>/dev/null || hostname -s).local"
rm -f "$agent"
(umask 077; render "$here/$label.plist.in" | sed -e "s|@BREW_LIB@|$brew_prefix/lib|g" -e "s|@ICD@|$icd|g" > "$agent")
launchctl bootout "gui/$(id -u)/$label" 2>/dev/null || true
launchctl bootstrap "gui/$(id -u)" "$agent"
echo "installed $label: it joins $cluster as http://$host:$port"
echo "GPU: $(DYLD_FALLBACK_LIBRARY_PATH="$brew_prefix/lib" VK_DRIVER_FILES="$icd" "$dotnet" "$app/cli/exo.dll" devices 2>&1 | head -3 || true)"
echo "models: put model folders in $data/models, or let it copy the layers it is given from a worker that has them; log: $data/worker.log"
