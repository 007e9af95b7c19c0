#!/usr/bin/env bash
# Runs ship's whole test suite: unit tests, real Git repositories, and end-to-end tests against
# real sshd hosts, MariaDB, PostgreSQL and an S3-compatible server, all started by the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
swift build --build-tests
swift test --skip-build "$@"
