#!/usr/bin/env bash
# Runs ship's whole test suite: unit tests, real Git repositories, and (as later issues add
# them) end-to-end tests against real sshd, MariaDB and PostgreSQL servers the suite starts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
