#!/usr/bin/env bash
# Benchmark: the orchestrator driving 500 simulated hosts (the in-memory Transport double of
# Tests/ShipperTests/SimulatedTransport.swift) in batches of 10%: controller wall time and the
# test process's peak RSS, as printed by the scale test. Repeats RUNS times (default 3).
set -euo pipefail
runs=${1:-3}
cd "$(dirname "$0")/.."
swift build --build-tests >/dev/null
for _ in $(seq "$runs"); do
  swift test --skip-build --filter "OrchestrationTests/scale" 2>&1 | grep "^scale:"
done
