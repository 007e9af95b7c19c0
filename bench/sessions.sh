#!/usr/bin/env bash
# Benchmark: what one agent session per host saves. Deploys a small app (trivial hooks in every
# event) to N sandbox hosts (default 4; Debian 12, own root filesystem, deploying as `deploy`),
# each deployment a new revision, RUNS times (default 3, median), in two modes of the same ship:
#   session   one `ship-agent serve` session per host for the whole run (the default)
#   one-shot  each agent operation in an ssh session of its own (SHIP_ONE_SHOT_AGENT=1, ship 0.2's way)
# and with the deploy user's ~/.bashrc costing 0 s and 0.2 s per ssh session (servers whose rc
# files load rbenv, nvm or pyenv). Counts the ssh sessions each host saw per deployment.
#   bench/sessions.sh [RUNS] [HOSTS]        needs root (sandbox hosts) and a release build
set -euo pipefail
runs=${1:-3}
count=${2:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build -c release --product ship >/dev/null
export SHIP_AGENT
SHIP_AGENT=$(scripts/build-agent.sh | tail -1)
ship="$root/.build/release/ship"
work=$(mktemp -d /tmp/ship-bench-sessions-XXXXXX)
trap '"$root/scripts/sandbox.sh" stop "$work/hosts" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/rootfs.sh bookworm >/dev/null
SANDBOX_OS=bookworm scripts/sandbox.sh start "$work/hosts" "$count" 32 >/dev/null
hosts=$(seq -f "web%g" 1 "$count" | paste -sd, -)
on_hosts() { for host in ${hosts//,/ }; do ssh -F "$work/hosts/ssh_config" -l root "$host" "$1"; done; }
on_hosts 'install -d -o deploy -g deploy /srv/app'
mkdir -p "$work/app"
cd "$work/app"
git init -q -b main
cat > ship.yml <<YML
app: app
deploy_to: /srv/app
ssh: { config_file: $work/hosts/ssh_config, user: deploy }
keep_releases: 3
environments:
  bench:
    hosts: [${hosts//,/, }]
    batch: 100%
YML
cat > appspec.yml <<'YML'
version: 0.0
os: linux
hooks:
  ApplicationStop: [{ location: hooks/echo.sh }]
  BeforeInstall: [{ location: hooks/echo.sh }]
  ApplicationStart: [{ location: hooks/echo.sh }]
  ValidateService: [{ location: hooks/echo.sh }]
YML
mkdir -p hooks
printf '#!/bin/sh\necho "$LIFECYCLE_EVENT $SHIP_RELEASE"\n' > hooks/echo.sh
chmod +x hooks/echo.sh
revision=0
commit() { revision=$((revision + 1)); echo "$revision" > REVISION.txt; git add -A; git -c user.name=bench -c user.email=bench@ship.invalid commit -q -m "r$revision"; }
commit
"$ship" deploy bench >/dev/null 2>&1 # the first deploy installs the agent
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "$count hosts, $(nproc) cores, median of $runs deployments (each a new revision)"
for rc in 0 0.2; do
  on_hosts "printf 'echo x >> ~/.ssh-sessions\nsleep $rc\n' > /home/deploy/.bashrc; chown deploy /home/deploy/.bashrc"
  for mode in session one-shot; do
    times=()
    for _ in $(seq "$runs"); do
      commit
      on_hosts 'rm -f /home/deploy/.ssh-sessions'
      start=$(date +%s.%N)
      if [ "$mode" = one-shot ]; then SHIP_ONE_SHOT_AGENT=1 "$ship" deploy bench >/dev/null; else "$ship" deploy bench >/dev/null; fi
      end=$(date +%s.%N)
      times+=("$(echo "$end - $start" | bc)")
      sessions=$(ssh -F "$work/hosts/ssh_config" -l root web1 'wc -l < /home/deploy/.ssh-sessions')
    done
    t=$(printf '%s\n' "${times[@]}" | median)
    # A rollback to the previous release (on every host already): a switch and the hooks.
    start=$(date +%s.%N)
    if [ "$mode" = one-shot ]; then SHIP_ONE_SHOT_AGENT=1 "$ship" rollback bench >/dev/null; else "$ship" rollback bench >/dev/null; fi
    end=$(date +%s.%N)
    printf 'rc file %-4s s  %-9s deploy %6.2f s  (%s ssh sessions on each host)  rollback %6.2f s\n' \
      "$rc" "$mode" "$t" "$sessions" "$(echo "$end - $start" | bc)"
  done
done
