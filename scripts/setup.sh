#!/usr/bin/env bash
# Installs the Debian packages ship needs to build (idempotent; apt runs only when something is
# missing). With --test, also what the test suite starts: MariaDB, PostgreSQL, and moto's
# S3-compatible server in a virtualenv at /opt/ship-test/venv. Needs root or sudo. Swift 6
# itself must already be on PATH.
set -euo pipefail

with_tests=false
[ "${1:-}" = "--test" ] && with_tests=true

packages=(
  git pkg-config
  libgit2-dev            # packaging revisions (libgit2)
  libcurl4-openssl-dev   # HTTP: health checks, S3, webhooks
  zlib1g-dev             # gzip bundles
  openssh-client openssh-server   # the controller's transport; test and sandbox hosts
  util-linux iproute2 procps      # unshare/nsenter for sandbox hosts, ps for tests
)
if $with_tests; then
  packages+=(
    mariadb-server mariadb-client   # backup tests: a MariaDB server the suite starts on loopback
    postgresql postgresql-client    # backup tests: a PostgreSQL server, likewise
    python3-venv                    # moto's S3-compatible server for the S3 store tests
    debootstrap                     # the sandbox hosts' own Debian root filesystems (scripts/rootfs.sh)
    composer                        # the build step's test: composer install of a local path package, offline
  )
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "error: swift is not on PATH; install Swift 6 (https://www.swift.org/install/linux/) first" >&2
  exit 1
fi

moto_version=5.2.5
venv=/opt/ship-test/venv
installed=$("$venv/bin/pip" show moto 2>/dev/null || true)
if $with_tests && ! grep -qx "Version: $moto_version" <<<"$installed"; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing moto $moto_version into $venv"
  $sudo /usr/bin/python3 -m venv "$venv"
  # PyPI over a busy network fails now and then: three tries before giving up.
  for attempt in 1 2 3; do
    $sudo "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$moto_version" && break
    [ "$attempt" -lt 3 ] || exit 1
    echo "pip failed; trying again in $((attempt * 5)) s"
    sleep $((attempt * 5))
  done
fi
