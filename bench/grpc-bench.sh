#!/usr/bin/env bash
# Runs the Exo.Grpc vs grpc-js loopback benchmark: bench/grpc-bench.sh [ping-pongs] [streamed-messages]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d tests/Exo.Grpc.Tests/interop/node_modules/@grpc/grpc-js ]; then
  npm ci --no-audit --no-fund --prefix tests/Exo.Grpc.Tests/interop
fi
dotnet run -c Release --project bench/Exo.Grpc.Bench -- "${1:-20000}" "${2:-100000}"
