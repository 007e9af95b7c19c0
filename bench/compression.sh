#!/usr/bin/env bash
# Benchmark: ship's first deploy of the bench/peers.sh app (68 MB as tar) to HOSTS sandbox hosts
# with each `compression:` (gzip, fast, none), interleaved, RUNS times; the bundle is packaged
# inside each timing and every host's releases are removed before it.
#   bench/compression.sh [RUNS] [HOSTS]        needs root and a release build
set -euo pipefail
runs=${1:-2}
count=${2:-16}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build -c release --product ship >/dev/null
export SHIP_AGENT
SHIP_AGENT=$(scripts/build-agent.sh | tail -1)
cache=/var/cache/ship-bench
[ -d "$cache/app/.git" ] || python3 bench/generate-repo.py "$cache/app" >/dev/null
work=$(mktemp -d /tmp/ship-bench-compression-XXXXXX)
trap '"$root/scripts/sandbox.sh" stop "$work/hosts" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
SANDBOX_OS=bookworm scripts/sandbox.sh start "$work/hosts" "$count" 40 >/dev/null
hosts=$(seq -f "web%g" 1 "$count")
each_host() { local h; for h in $hosts; do ssh -F "$work/hosts/ssh_config" -l root "$h" "$1" & done; wait; }
each_host "install -d -o deploy -g deploy /srv/ship"
git clone -q "$cache/app" "$work/app"
cd "$work/app"
printf 'app: bench\ndeploy_to: /srv/ship\nssh: { config_file: %s, user: deploy }\nenvironments:\n  bench:\n    hosts: [%s]\n    batch: 100%%\n' \
  "$work/hosts/ssh_config" "$(echo $hosts | sed 's/ /, /g')" > ship.yml
export XDG_CACHE_HOME=$work/cache
"$root/.build/release/ship" deploy bench >/dev/null # installs the agent
echo "$count hosts, $(nproc) cores, first deploy of $(git ls-files | wc -l) files, wall seconds"
for _ in $(seq "$runs"); do
  for compression in gzip fast none; do
    each_host "rm -rf /srv/ship/releases /srv/ship/current /srv/ship/.ship/releases /srv/ship/.ship/bundles /srv/ship/.ship/trash"
    sync
    sed -i '/^compression:/d' ship.yml
    echo "compression: $compression" >> ship.yml
    rm -rf "$XDG_CACHE_HOME"
    start=$(date +%s.%N)
    "$root/.build/release/ship" deploy bench >/dev/null
    printf 'compression: %-5s %6.2f s\n' "$compression" "$(echo "$(date +%s.%N) - $start" | bc)"
  done
done
