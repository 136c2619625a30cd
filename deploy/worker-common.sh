# Steps both install scripts share; sourced by them after they set: app, data, here, sdk_hint, glslc_hint.
# Reads [CLUSTER_HOST] [--cluster NAME] [--port N] [--secret SECRET] from "$@" (asking for the secret when it is not
# given), checks them and the SDK, publishes the worker into $app and sets cluster (where it joins, for messages), join
# (the worker's joining options), port, secret and dotnet.

cluster_host=""
if [[ $# -gt 0 && "$1" != -* ]]; then cluster_host="$1"; shift; fi
name=""
port=52418
secret=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cluster) name="${2:-}"; shift 2 || true ;;
    --port) port="${2:-}"; shift 2 || true ;;
    --secret) secret="${2:-}"; shift 2 || true ;;
    *) echo "error: unknown option $1" >&2; usage 2 ;;
  esac
done
[[ "$port" =~ ^[0-9]+$ && "$port" -ge 1 && "$port" -le 65535 ]] || { echo "error: --port must be a port number" >&2; exit 2; }
# With a host, the worker goes straight to its registry and planner; without one it finds the cluster on the local
# network over mDNS (the one named by --cluster when the network holds several).
if [[ -n "$cluster_host" ]]; then
  [[ "$cluster_host" =~ ^[A-Za-z0-9.:_-]+$ ]] || { echo "error: '$cluster_host' is not a host name or address" >&2; exit 2; }
  [[ -z "$name" ]] || { echo "error: give CLUSTER_HOST or --cluster NAME, not both" >&2; exit 2; }
  join=(--registry "http://$cluster_host:52416" --planner "http://$cluster_host:52417")
  cluster="the cluster at $cluster_host"
elif [[ -n "$name" ]]; then
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ ]] || { echo "error: --cluster '$name' is not a cluster name (letters, digits, _ and -)" >&2; exit 2; }
  join=(--cluster "$name")
  cluster="cluster $name, found on the local network"
else
  join=()
  cluster="the cluster it finds on the local network"
fi
# The registry, the planner and every worker refuse a node without the cluster's join secret. Asked for rather than
# passed, it stays out of the shell's history and the process list.
where="the cluster-secret file in the AppHost's data directory (.exo/ of its checkout by default) on the cluster's machine"
if [[ -z "$secret" && -t 0 ]]; then read -rsp "the cluster's join secret ($where): " secret; echo; fi
[[ -n "$secret" ]] || { echo "error: the cluster's join secret is needed: pass --secret SECRET, from $where" >&2; exit 2; }
[[ "$secret" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || { echo "error: a join secret holds only letters, digits and . _ ~ + / = -" >&2; exit 2; }
dotnet="$(command -v dotnet || true)"
[[ -n "$dotnet" ]] || { echo "error: the .NET 10 SDK is needed: $sdk_hint" >&2; exit 2; }
command -v glslc >/dev/null || { echo "error: glslc is needed to build the GPU kernels: $glslc_hint" >&2; exit 2; }

echo "building the shard worker into $app"
"$dotnet" publish "$here/../../services/Exo.ShardWorker" -c Release -o "$app" --nologo -v quiet
# The exo command in a folder of its own: `exo devices` shows which GPU the worker will use.
"$dotnet" publish "$here/../../src/Exo.Cli" -c Release -o "$app/cli" --nologo -v quiet
mkdir -p "$data/models"

# Fills a service template's @NAME@ fields: @JOIN@ is the joining options on one line (systemd), @JOIN_STRINGS@ the same as
# plist <string> elements. The result holds the join secret: callers write it readable by its owner only.
render() {
  local strings=""
  for a in ${join[@]+"${join[@]}"}; do strings+="<string>$a</string>"; done
  sed -e "s|@DOTNET@|$dotnet|g" -e "s|@APP@|$app|g" -e "s|@CLUSTER@|$cluster|g" -e "s|@DATA@|$data|g" \
      -e "s|@JOIN@|${join[*]+${join[*]}}|g" -e "s|@JOIN_STRINGS@|$strings|g" \
      -e "s|@PORT@|$port|g" -e "s|@HOST@|$host|g" -e "s|@SECRET@|$secret|g" "$1"
}
