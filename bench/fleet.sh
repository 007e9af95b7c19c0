#!/usr/bin/env bash
# Benchmark: the ssh path on real hosts. A deployment to HOSTS real OpenSSH sandbox hosts
# (scripts/sandbox.sh: Debian 12 root filesystems with curl, deploying as `deploy`) of a revision
# holding SIZE MB that does not compress, once with the bundle pushed over ssh and once with
# `artifacts:` (moto's S3 on loopback, each host fetching it), for each SIZE. Every byte the
# controller sends a host goes through a relaying ProxyCommand that counts it
# (scripts/ssh-relay.py), so the table gives the controller's bytes per host beside the wall time.
#   bench/fleet.sh [HOSTS] [SIZE_MB...]      default: 50 hosts; 1, 10 and 50 MB
# Needs root (the sandbox), scripts/setup.sh --test (moto); SHIP_BENCH_CONCURRENCY sets
# max_concurrency (default 32); batch is 100% (one step: every host at once, up to the limit).
set -euo pipefail
hosts=${1:-50}
shift || true
sizes=${*:-1 10 50}
concurrency=${SHIP_BENCH_CONCURRENCY:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
moto=${SHIP_MOTO_SERVER:-/opt/ship-test/venv/bin/moto_server}
cd "$root"
swift build --product ship >/dev/null
scripts/build-agent.sh >/dev/null
ship=$root/.build/debug/ship

work=$(mktemp -d /tmp/ship-bench-fleet.XXXXXX)
cleanup() {
  scripts/sandbox.sh stop "$work/pool" >/dev/null 2>&1 || true
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
SANDBOX_OS=bookworm+curl scripts/sandbox.sh start "$work/pool" "$hosts" 11 127.0.160 >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.2; done
curl -s -X PUT "http://127.0.0.1:$port/fleet-bench" >/dev/null

# Every host through the counting relay.
mkdir -p "$work/counts"
{ printf 'Host web*\n  ProxyCommand /usr/bin/python3 %s/scripts/ssh-relay.py %%h %%p %s/counts/%%n\n\n' "$root" "$work"
  cat "$work/pool/ssh_config"; } > "$work/ssh_config"

app=$work/app
mkdir -p "$app/public"
git -C "$app" init -q
list=$(seq -s, -f 'web%g' 1 "$hosts")
cat > "$app/ship.yml" <<YML
app: shop
ssh: { user: deploy, config_file: $work/ssh_config }
environments:
  push:
    deploy_to: /srv/push
    hosts: [$list]
    batch: "100%"
    max_concurrency: $concurrency
  store:
    deploy_to: /srv/store
    hosts: [$list]
    batch: "100%"
    max_concurrency: $concurrency
    artifacts: { store: s3://fleet-bench, endpoint: "http://127.0.0.1:$port" }
YML
printf 'version: 1\nhooks:\n  validate: [{ run: test -f public/big.bin }]\n' > "$app/appspec.yml"

sent() {  # bytes the controller sent, per host: average and largest
  python3 - "$work/counts" "$hosts" <<'PY'
import os, sys, collections
totals = collections.Counter()
for name in os.listdir(sys.argv[1]):
    if name.endswith(".tmp"): continue
    host = name.rsplit(".", 1)[0]
    totals[host] += int(open(os.path.join(sys.argv[1], name)).read() or 0)
values = [totals.get("web%d" % i, 0) for i in range(1, int(sys.argv[2]) + 1)]
print("%d %d" % (sum(values) // len(values), max(values)))
PY
}

deploy() {  # ENV: one deployment, its output kept for a failure
  if ! (cd "$app" && AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench "$ship" deploy "$1" --json >"$work/deploy.log" 2>&1); then
    tail -20 "$work/deploy.log" >&2
    exit 1
  fi
}

# A first deployment of each environment installs the agent on every host (15 MB once per
# deploy_to, not per deployment); the figures are of the deployments after it.
echo "warm-up" > "$app/public/big.bin"
git -C "$app" add -A
git -C "$app" -c user.name=bench -c user.email=bench@example.com commit -q -m "warm-up"
deploy push
deploy store

printf '%-8s %-10s %9s %16s %16s\n' "bundle" "path" "wall (s)" "bytes/host avg" "bytes/host max"
for size in $sizes; do
  head -c "$((size * 1024 * 1024))" /dev/urandom > "$app/public/big.bin"
  git -C "$app" add -A
  git -C "$app" -c user.name=bench -c user.email=bench@example.com commit -q -m "$size MB"
  for environment in push store; do
    rm -f "$work/counts"/*
    start=$(date +%s.%N)
    deploy "$environment"
    end=$(date +%s.%N)
    read -r average largest < <(sent)
    label=$([ "$environment" = push ] && echo "ssh push" || echo "artifacts")
    printf '%-8s %-10s %9.1f %16s %16s\n' "${size} MB" "$label" "$(awk "BEGIN { print $end - $start }")" "$average" "$largest"
  done
done
