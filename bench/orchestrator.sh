#!/usr/bin/env bash
# Benchmark: the orchestrator driving simulated hosts (the in-memory Transport double of
# Tests/ShipperTests/SimulatedTransport.swift) in batches of 10%: controller wall time, the test
# process's peak RSS, and its peak threads and open descriptors, as printed by the scale test.
#   bench/orchestrator.sh [RUNS] [HOSTS...]     default: 1 run each of 100, 500 and 1000 hosts
# SHIP_SCALE_CONCURRENCY sets the environment's max_concurrency (default 32).
set -euo pipefail
runs=${1:-1}
shift || true
sizes=${*:-100 500 1000}
cd "$(dirname "$0")/.."
swift build --build-tests >/dev/null
for hosts in $sizes; do
  for _ in $(seq "$runs"); do
    SHIP_SCALE_HOSTS=$hosts swift test --skip-build --filter "OrchestrationTests/scale" 2>&1 | grep "^scale:"
  done
done
