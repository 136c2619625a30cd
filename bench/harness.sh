# Sourced by the llama.cpp scripts here: sets $repo and $harness, the shared llama.cpp benchmark harness
# (../shared/bench/llamacpp, see its README). The harness installs npm packages and builds its tools inside its own
# folder; where ../shared is read-only it is used from a scratch copy (HARNESS_DIR, kept between runs so that the
# install and the builds happen once).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
harness=$repo/../shared/bench/llamacpp
[ -f "$harness/run_all.sh" ] || { echo "error: no benchmark harness at $harness" >&2; exit 2; }
if [ ! -w "$harness" ]; then
  copy=${HARNESS_DIR:-${TMPDIR:-/tmp}/exo-llamacpp-harness}
  mkdir -p "$copy"
  cp -r "$harness"/. "$copy"/
  chmod -R u+w "$copy"
  harness=$copy
fi
dotnet build "$repo/src/Exo.Cli/Exo.Cli.csproj" -c Release -nologo -v quiet >&2
exo="dotnet $repo/src/Exo.Cli/bin/Release/net10.0/exo.dll"
