#!/bin/bash
# Installs the Exo shard worker on this Mac as a launchd agent that starts at login, restarts if it stops, and joins
# the cluster whose registry and planner run on CLUSTER_HOST (e.g. the machine that runs `dotnet run --project Exo.AppHost -- --public`).
#   deploy/macos/install-worker.sh CLUSTER_HOST [--port 52418]      install or update
#   deploy/macos/install-worker.sh --uninstall                      stop and remove (the data directory stays)
set -euo pipefail
label=com.exo.shardworker
agent="$HOME/Library/LaunchAgents/$label.plist"
app="$HOME/Library/Application Support/Exo/worker"
data="$HOME/.exo/worker"
here="$(cd "$(dirname "$0")" && pwd)"

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
[[ $# -ge 1 ]] || usage 2
if [[ "$1" == "--help" || "$1" == "-h" ]]; then usage 0; fi
if [[ "$1" == "--uninstall" ]]; then
  launchctl bootout "gui/$(id -u)/$label" 2>/dev/null || true
  rm -f "$agent"
  rm -rf "$app"
  echo "removed $label; the node id and models in $data are kept"
  exit 0
fi

cluster="$1"; shift
port=52418
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    *) echo "error: unknown option $1" >&2; usage 2 ;;
  esac
done
[[ "$port" =~ ^[0-9]+$ ]] || { echo "error: --port must be a number" >&2; exit 2; }
dotnet="$(command -v dotnet || true)"
[[ -n "$dotnet" ]] || { echo "error: the .NET 10 SDK is needed: brew install --cask dotnet-sdk" >&2; exit 2; }

echo "building the shard worker into $app"
"$dotnet" publish "$here/../../services/Exo.ShardWorker" -c Release -o "$app" --nologo -v quiet
mkdir -p "$data/models" "$(dirname "$agent")"
host="$(scutil --get LocalHostName 2>/dev/null || hostname -s).local"
sed -e "s|@DOTNET@|$dotnet|g" -e "s|@APP@|$app|g" -e "s|@CLUSTER@|$cluster|g" -e "s|@DATA@|$data|g" \
    -e "s|@PORT@|$port|g" -e "s|@HOST@|$host|g" "$here/$label.plist.in" > "$agent"
launchctl bootout "gui/$(id -u)/$label" 2>/dev/null || true
launchctl bootstrap "gui/$(id -u)" "$agent"
echo "installed $label: it joins the cluster at $cluster as http://$host:$port"
echo "put model folders in $data/models (the same folder name the cluster serves); log: $data/worker.log"
