#!/usr/bin/env bash
# Benchmark: `ship backup db` streaming a 512 MiB SQL-like dump (engine: command, `cat` of a
# generated file) into a local store, on this machine (`host: local`), the same encrypted
# (`backup.encryption`), and from a sandbox sshd host over ssh, against the single-threaded
# baseline `gzip -6 | sha256sum` of the same bytes. Median wall time of RUNS runs (default 3).
# Needs root (sandbox host) and a release build.
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build -c release --product ship >/dev/null
export SHIP_AGENT
SHIP_AGENT=$(scripts/build-agent.sh | tail -1)
ship="$root/.build/release/ship"
export BENCH_BACKUP_KEY
BENCH_BACKUP_KEY=$(head -c 32 /dev/urandom | base64)
work=$(mktemp -d /tmp/ship-bench-backup-XXXXXX)
trap 'scripts/sandbox.sh stop "$work/hosts" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
python3 - "$work/dump.sql" <<'PY'
import random, sys
random.seed(7)
words = ["alpha", "beta", "gamma", "delta", "shop", "order", "customer", "product", "price", "stock"]
with open(sys.argv[1], "w") as out:
    size, n = 0, 0
    while size < 512 << 20:
        n += 1
        line = "INSERT INTO `orders` VALUES (%d,'%s','%s',%d.%02d,'2026-%02d-%02d');\n" % (
            n, " ".join(random.choice(words) for _ in range(6)), "%032x" % random.getrandbits(128),
            random.randint(1, 9999), random.randint(0, 99), random.randint(1, 12), random.randint(1, 28))
        out.write(line)
        size += len(line)
PY
# The dump file is on this machine: the host shares its files (SANDBOX_OS=shared).
SANDBOX_OS=shared scripts/sandbox.sh start "$work/hosts" 1 31 >/dev/null
for variant in local local-encrypted web1; do
  site=${variant%-encrypted}
  encryption=""
  [ "$variant" = local-encrypted ] && encryption="encryption: { key_env: BENCH_BACKUP_KEY }"
  mkdir -p "$work/$variant"
  cat > "$work/$variant/ship.yml" <<YML
app: bench
deploy_to: /srv/bench
ssh: { config_file: $work/hosts/ssh_config }
environments:
  bench:
    hosts: [web1]
    backup:
      store: backups
      keep: 1
      $encryption
      db: { host: $site, engine: command, dump_command: "cat $work/dump.sql", restore_command: "cat >/dev/null" }
YML
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); echo "$end - $start" | bc; }
bytes=$(stat -c %s "$work/dump.sql")
echo "dump: $((bytes >> 20)) MiB; $(nproc) cores; median of $runs"
baseline=$(for _ in $(seq "$runs"); do measure sh -c "gzip -6 < '$work/dump.sql' | sha256sum"; done | median)
echo "gzip -6 | sha256sum (baseline):   ${baseline} s"
for variant in local local-encrypted web1; do
  t=$(for _ in $(seq "$runs"); do (cd "$work/$variant" && measure "$ship" backup db); done | median)
  stored=$(stat -c %s "$work/$variant"/backups/bench/bench/*.dump.gz*)
  echo "ship backup db, $(printf '%-16s' "$variant"): $(printf '%6s' "$t") s  ($((stored >> 20)) MiB stored)"
done
