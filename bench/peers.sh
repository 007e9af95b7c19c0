#!/usr/bin/env bash
# Benchmark: ship against what teams deploy with otherwise, on the same hosts, interleaved rep by rep.
#
#   bench/peers.sh [RUNS] [HOSTS]        default 3 reps, 4 hosts; needs root and a release build
#
# The app is generated deterministically (bench/generate-repo.py: a PHP-app-shaped repository of
# about 5,000 files and 60 MB, cached in /var/cache/ship-bench) with a VERSION file; revision B
# changes 1% of its files. HOSTS sandbox hosts (Debian 12 on their own root filesystems, with
# rsync and python3 for the peers, deploying as `deploy`) each get, per tool, a first deploy of
# revision A onto an empty directory, then B; ship also a rollback to A and a redeploy of B (its
# release is still on the hosts). Every tool runs the same trivial hooks (stop, install, start,
# validate: one `echo` each into a log) and switches a `current` symlink:
#   ship     ship deploy / rollback (one agent session per host; deltas; the agent already installed)
#   tar      `git archive` (uncompressed, once) piped to `tar -x` over ssh on every host in
#            parallel, then one ssh session per hook and for the switch, as hand-made scripts do
#   rsync    the revision exported once (`git archive | tar -x`), `rsync -a --checksum
#            --link-dest=<previous release>` to every host in parallel, then the same ssh steps
#   ansible  ansible-core 2.14 (when BENCH_ANSIBLE=1: installed from PyPI into /opt/ship-bench/venv),
#            `git archive --format=tar.gz`, then unarchive, forks = HOSTS, pipelining, ControlPersist
# After each run it checks every host serves the right VERSION and that the hooks ran the right
# number of times, and fails loudly otherwise. Every tool packages what it deploys inside its timing
# (ship's bundle cache is emptied before each first and next deploy; the redeploy may use it).
# Prints wall seconds (median of RUNS) and ship's peak RSS. RC_SLEEP=0.2 makes the deploy user's
# ~/.bashrc sleep that long per ssh session; COMPRESSION=none|fast|gzip sets ship's.
set -euo pipefail
runs=${1:-3}
count=${2:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build -c release --product ship >/dev/null
export SHIP_AGENT
SHIP_AGENT=$(scripts/build-agent.sh | tail -1)
ship="$root/.build/release/ship"
cache=/var/cache/ship-bench
work=$(mktemp -d /tmp/ship-bench-peers-XXXXXX)
trap '"$root/scripts/sandbox.sh" stop "$work/hosts" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# The app, generated once.
mkdir -p "$cache"
[ -d "$cache/app/.git" ] || python3 bench/generate-repo.py "$cache/app" >/dev/null
if [ "${BENCH_ANSIBLE:-0}" = 1 ] && [ ! -x /opt/ship-bench/venv/bin/ansible-playbook ]; then
  python3 -m venv /opt/ship-bench/venv
  /opt/ship-bench/venv/bin/pip install -q 'ansible-core>=2.14,<2.15'
fi
ansible=""
[ "${BENCH_ANSIBLE:-0}" = 1 ] && ansible=/opt/ship-bench/venv/bin/ansible-playbook

SANDBOX_OS=bookworm+rsync+python3 scripts/sandbox.sh start "$work/hosts" "$count" 40 >/dev/null
hosts=$(seq -f "web%g" 1 "$count")
config=$work/hosts/ssh_config
each_host() { local h; for h in $hosts; do "$@" "$h" & done; wait; }
as_root() { ssh -F "$config" -l root "$2" "$1"; }
as_deploy() { ssh -F "$config" -l deploy "$@"; }
each_host as_root "install -d -o deploy -g deploy /srv/ship /srv/tar /srv/rsync /srv/ansible; printf 'sleep ${RC_SLEEP:-0}\n' > /home/deploy/.bashrc"

git clone -q "$cache/app" "$work/app"
cd "$work/app"
cat > ship.yml <<YML
app: bench
deploy_to: /srv/ship
ssh: { config_file: $config, user: deploy }
keep_releases: 5
compression: ${COMPRESSION:-gzip}
environments:
  bench:
    hosts: [$(echo $hosts | sed 's/ /, /g')]
    batch: 100%
YML
cat > appspec.yml <<'YML'
version: 0.0
os: linux
hooks:
  ApplicationStop: [{ location: hooks/log.sh }]
  BeforeInstall: [{ location: hooks/log.sh }]
  ApplicationStart: [{ location: hooks/log.sh }]
  ValidateService: [{ location: hooks/log.sh }]
YML
mkdir -p hooks
printf '#!/bin/sh\necho "$LIFECYCLE_EVENT" >> /srv/ship/hooks.log\n' > hooks/log.sh
chmod +x hooks/log.sh
commit() { git add -A; git -c user.name=bench -c user.email=bench@ship.invalid commit -q -m "$1"; git rev-parse HEAD; }
echo A > VERSION
A=$(commit A)
# Revision B: 1% of the files changed (every 100th, one line appended), and VERSION.
git ls-files | grep -v -e '^VERSION$' -e '^hooks/' -e '\.yml$' | awk 'NR % 100 == 0' | while read -r f; do echo "// B" >> "$f"; done
echo B > VERSION
B=$(commit B)
changed=$(git diff --name-only "$A" "$B" | wc -l)
files=$(git ls-files | wc -l)
git archive --format=tar "$A" > "$work/A.tar"; git archive --format=tar "$B" > "$work/B.tar"
gzip -c "$work/A.tar" > "$work/A.tar.gz"; gzip -c "$work/B.tar" > "$work/B.tar.gz"
export XDG_CACHE_HOME=$work/cache
"$ship" deploy bench --revision "$A" >/dev/null # installs the agent; every measured ship run finds it there
mkdir -p "$work/export"

# --- the peers -----------------------------------------------------------------------------
# The hook and switch steps hand-made scripts run, one ssh session each.
steps() { # TOOL RELEASE HOST [first]
  local tool=$1 rel=$2 host=$3 first=${4:-}
  [ -n "$first" ] || as_deploy "$host" "cd /srv/$tool/current && echo ApplicationStop >> /srv/$tool/hooks.log"
  as_deploy "$host" "cd /srv/$tool/releases/$rel && echo BeforeInstall >> /srv/$tool/hooks.log"
  as_deploy "$host" "ln -sfn releases/$rel /srv/$tool/current.tmp && mv -T /srv/$tool/current.tmp /srv/$tool/current"
  as_deploy "$host" "cd /srv/$tool/current && echo ApplicationStart >> /srv/$tool/hooks.log"
  as_deploy "$host" "cd /srv/$tool/current && echo ValidateService >> /srv/$tool/hooks.log"
}
tar_host() { # RELEASE FIRST HOST
  as_deploy "$3" "mkdir -p /srv/tar/releases/$1 && tar -x -C /srv/tar/releases/$1" < "$work/archive.tar"
  steps tar "$1" "$3" "$2"
}
deploy_tar() { # REV RELEASE [first]
  git -C "$work/app" archive --format=tar "$1" > "$work/archive.tar"
  each_host tar_host "$2" "${3:-}"
}
rsync_host() { # RELEASE PREVIOUS FIRST HOST
  local link=()
  [ -n "$2" ] && link=(--link-dest="/srv/rsync/releases/$2")
  rsync -a --checksum --mkpath "${link[@]}" -e "ssh -F $config -l deploy" "$work/export/" "$4:/srv/rsync/releases/$1/"
  steps rsync "$1" "$4" "$3"
}
deploy_rsync() { # REV RELEASE PREVIOUS [first]
  rm -rf "$work/export"; mkdir -p "$work/export"
  git -C "$work/app" archive --format=tar "$1" | tar -x -C "$work/export"
  each_host rsync_host "$2" "$3" "${4:-}"
}
cat > "$work/inventory" <<INV
[web]
$(echo "$hosts" | tr ' ' '\n')
[web:vars]
ansible_user=deploy
ansible_ssh_common_args=-F $config -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=$work/cm-%h
ansible_python_interpreter=/usr/bin/python3
INV
cat > "$work/deploy.yml" <<'YML'
- hosts: web
  gather_facts: false
  tasks:
    - { name: stop, shell: "echo ApplicationStop >> /srv/ansible/hooks.log", args: { chdir: /srv/ansible/current }, when: not (first | bool) }
    - { name: release, file: { path: "/srv/ansible/releases/{{ release }}", state: directory } }
    - { name: unpack, unarchive: { src: "{{ archive }}", dest: "/srv/ansible/releases/{{ release }}" } }
    - { name: install, shell: "echo BeforeInstall >> /srv/ansible/hooks.log", args: { chdir: "/srv/ansible/releases/{{ release }}" } }
    - { name: switch, file: { src: "releases/{{ release }}", dest: /srv/ansible/current, state: link, force: true } }
    - { name: start, shell: "echo ApplicationStart >> /srv/ansible/hooks.log", args: { chdir: /srv/ansible/current } }
    - { name: validate, shell: "echo ValidateService >> /srv/ansible/hooks.log", args: { chdir: /srv/ansible/current } }
YML
deploy_ansible() { # REV RELEASE [first]
  git -C "$work/app" archive --format=tar.gz "$1" > "$work/archive.tar.gz"
  ANSIBLE_PIPELINING=1 ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_FORKS=$count \
    "$ansible" -i "$work/inventory" "$work/deploy.yml" -e "archive=$work/archive.tar.gz release=$2 first=${3:-0}" >/dev/null
}

# --- checks --------------------------------------------------------------------------------
check() { # TOOL VERSION HOOKS: every host serves VERSION and logged HOOKS hook runs in all
  local tool=$1 version=$2 hooks=$3 h
  for h in $hosts; do
    got=$(as_deploy "$h" "cat /srv/$tool/current/VERSION; wc -l < /srv/$tool/hooks.log")
    if [ "$got" != "$(printf '%s\n%s' "$version" "$hooks")" ]; then
      echo "CHECK FAILED: $tool on $h: expected VERSION $version and $hooks hook runs, got: $got" >&2
      exit 1
    fi
  done
}
reset() { each_host as_root "rm -rf /srv/$1/releases /srv/$1/current /srv/$1/hooks.log /srv/$1/.ship/releases /srv/$1/.ship/bundles /srv/$1/.ship/journal.jsonl"; }
clock() { date +%s.%N; }
declare -A times
record() { times[$1]+="$2 "; }
timed() { local key=$1; shift; local s; s=$(clock); "$@"; record "$key" "$(echo "$(clock) - $s" | bc)"; }
rss=()

tools="ship tar rsync"
[ -n "$ansible" ] && tools="$tools ansible"
for rep in $(seq "$runs"); do
  for tool in $tools; do
    reset "$tool"
    case $tool in
      ship)
        rm -rf "$XDG_CACHE_HOME"
        s=$(clock); /usr/bin/time -f %M -o "$work/rss" "$ship" deploy bench --revision "$A" >/dev/null
        record ship-first "$(echo "$(clock) - $s" | bc)"; rss+=("$(cat "$work/rss")")
        check ship A 3
        rm -rf "$XDG_CACHE_HOME"
        timed ship-next "$ship" deploy bench --revision "$B" >/dev/null; check ship B 7
        timed ship-rollback "$ship" rollback bench >/dev/null; check ship A 10
        timed ship-redeploy "$ship" deploy bench --revision "$B" >/dev/null; check ship B 14 ;;
      tar)
        timed tar-first deploy_tar "$A" r1 first; check tar A 3
        timed tar-next deploy_tar "$B" r2; check tar B 7 ;;
      rsync)
        timed rsync-first deploy_rsync "$A" r1 "" first; check rsync A 3
        timed rsync-next deploy_rsync "$B" r2 r1; check rsync B 7 ;;
      ansible)
        timed ansible-first deploy_ansible "$A" r1 1; check ansible A 3
        timed ansible-next deploy_ansible "$B" r2 0; check ansible B 7 ;;
    esac
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}'; }
m() { echo "${times[$1]:-}" | median; }
echo "$count hosts, $(nproc) cores, $files files ($(du -m "$work/A.tar" | cut -f1) MB as tar, $(du -m "$work/A.tar.gz" | cut -f1) MB as tar.gz), $changed changed in B; median of $runs, wall seconds"
printf '| tool | first deploy | next revision | rollback | redeploy of a cached revision |\n| --- | --- | --- | --- | --- |\n'
printf '| plain tar over ssh | %s | %s | — | — |\n' "$(m tar-first)" "$(m tar-next)"
printf '| rsync --checksum --link-dest | %s | %s | — | — |\n' "$(m rsync-first)" "$(m rsync-next)"
[ -n "$ansible" ] && printf '| Ansible (unarchive) | %s | %s | — | — |\n' "$(m ansible-first)" "$(m ansible-next)"
printf '| ship | %s | %s | %s | %s |\n' "$(m ship-first)" "$(m ship-next)" "$(m ship-rollback)" "$(m ship-redeploy)"
echo
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "ship first / tar first:            $(ratio "$(m ship-first)" "$(m tar-first)")   (goal <= 1.2)"
echo "ship next / rsync next:            $(ratio "$(m ship-next)" "$(m rsync-next)")   (goal <= 0.5)"
echo "ship redeploy / ship first:        $(ratio "$(m ship-redeploy)" "$(m ship-first)")   (goal <= 0.3)"
if [ -n "$ansible" ]; then
  echo "ansible first / ship first:        $(ratio "$(m ansible-first)" "$(m ship-first)")   (goal >= 3)"
  echo "ansible next / ship next:          $(ratio "$(m ansible-next)" "$(m ship-next)")   (goal >= 5)"
fi
echo "ship peak RSS on first deploys:    $(printf '%s\n' "${rss[@]}" | sort -n | tail -1) KiB"
