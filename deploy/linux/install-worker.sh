#!/bin/bash
# Installs the Exo shard worker as a systemd user service that starts at boot (with lingering), restarts if it stops,
# and joins the cluster whose registry and planner run on CLUSTER_HOST, or without it the one it finds on the network.
#   deploy/linux/install-worker.sh [CLUSTER_HOST | --cluster NAME] [--port 52418] [--secret SECRET]   install or update
#   deploy/linux/install-worker.sh --uninstall                      stop and remove (the data directory stays)
set -euo pipefail
unit=exo-shardworker
target="$HOME/.config/systemd/user/$unit.service"
app="$HOME/.local/share/exo/worker"
data="$HOME/.exo/worker"
here="$(cd "$(dirname "$0")" && pwd)"

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then usage 0; fi
if [[ "${1:-}" == "--uninstall" ]]; then
  systemctl --user disable --now "$unit" 2>/dev/null || true
  rm -f "$target"; rm -rf "$app"
  systemctl --user daemon-reload
  echo "removed $unit; the node id and models in $data are kept"
  exit 0
fi

sdk_hint="https://dot.net"
glslc_hint="sudo apt-get install glslc libvulkan1 (Debian/Ubuntu; Fedora: sudo dnf install glslc vulkan-loader), plus your GPU's Vulkan driver"
source "$here/../worker-common.sh"
mkdir -p "$(dirname "$target")"
host="$(hostname -f 2>/dev/null || hostname)"
rm -f "$target"
(umask 077; render "$here/$unit.service.in" > "$target")
systemctl --user daemon-reload
systemctl --user enable --now "$unit"
loginctl enable-linger "$USER" 2>/dev/null || echo "note: run 'loginctl enable-linger $USER' so the worker starts at boot without a login"
echo "installed $unit: it joins $cluster as http://$host:$port"
echo "GPU: $("$dotnet" "$app/cli/exo.dll" devices 2>&1 | head -3 || true)"
# Mesa's and most vendors' Linux drivers open /dev/dri/renderD*, which the render (or video) group may use.
if ls /dev/dri/renderD* >/dev/null 2>&1 && ! id -nG | grep -qwE "render|video"; then
  echo "note: add $USER to the render group (sudo usermod -aG render $USER, then log in again) so the worker can use the GPU"
fi
echo "models: put model folders in $data/models, or let it copy the layers it is given from a worker that has them; log: journalctl --user -u $unit -f"
