#!/usr/bin/env bash
# Runs ship's whole test suite: unit tests, real Git repositories, and end-to-end tests against
# real sshd hosts, MariaDB, PostgreSQL and an S3-compatible server, all started by the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# The sandbox hosts' own root filesystems (Debian 12 and 11), built once and cached.
scripts/rootfs.sh bookworm >/dev/null
scripts/rootfs.sh bullseye >/dev/null
# Hosts with nginx, HAProxy, PHP-FPM and the MariaDB client, for the load-balancer tests and the
# real WordPress (Tests/ShipperTests/WordPressEndToEndTests.swift, WordPressEndToEndTests.system);
# with python3, for hooks that ask moto's target group about their host.
scripts/rootfs.sh bookworm+nginx-light+haproxy+php8.2-fpm+php8.2-cli+php8.2-mysql+php8.2-xml+mariadb-client >/dev/null
scripts/wordpress.sh >/dev/null
scripts/rootfs.sh bookworm+rsync+python3 >/dev/null
# Hosts with curl, which fetch bundles from an artifact store themselves.
scripts/rootfs.sh bookworm+curl >/dev/null
# ship as users install it: the end-to-end tests run PREFIX/bin/ship from PATH.
prefix=$(mktemp -d /tmp/ship-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
scripts/install.sh "$prefix" >/dev/null
export SHIP_TEST_PREFIX=$prefix
swift build --build-tests
# The agent the tests deploy: the fully static build, as users get it.
scripts/build-agent.sh >/dev/null
swift test --skip-build "$@"
