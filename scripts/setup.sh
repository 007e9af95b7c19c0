#!/usr/bin/env bash
# Installs the Debian packages ship needs to build and test (idempotent; apt runs only when
# something is missing). Needs root or sudo. Swift 6 itself must already be on PATH.
set -euo pipefail

packages=(
  git pkg-config
  libgit2-dev            # packaging revisions (libgit2)
  libcurl4-openssl-dev   # HTTP: health checks, S3, webhooks
  zlib1g-dev             # gzip bundles
  openssh-client openssh-server   # the controller's transport; test and sandbox hosts
  util-linux iproute2 procps      # unshare/nsenter for sandbox hosts, ps for tests
)

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
