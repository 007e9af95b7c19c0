#!/usr/bin/env bash
# Benchmark: `ship package` against `git archive --format=tar.gz` of the same commit of a
# generated repository (~5,000 files, ~60 MB), wall time and peak memory, side by side.
#
# usage: bench/package.sh [RUNS]      (default 5 runs of each, interleaved)
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/ship-bench}

swift build -c release --product ship --package-path "$root" >/dev/null
ship="$root/.build/release/ship"

if [ ! -d "$work/repo/.git" ]; then
  rm -rf "$work" && mkdir -p "$work"
  python3 "$root/bench/generate-repo.py" "$work/repo"
fi
files=$(git -C "$work/repo" ls-files | wc -l)
bytes=$(git -C "$work/repo" ls-files -z | (cd "$work/repo" && xargs -0 cat) | wc -c)
echo "repository: $files files, $((bytes / 1000000)) MB, $(nproc) cores, $(git --version), libgit2 $(pkg-config --modversion libgit2)"

measure() { # label command... -> appends "label seconds kilobytes" to $work/results
  local label=$1; shift
  /usr/bin/time -f "$label %e %M" -a -o "$work/results" "$@" >/dev/null 2>&1
}
: > "$work/results"
for _ in $(seq "$runs"); do
  rm -f "$work"/*.tar.gz
  (cd "$work/repo" && measure ship "$ship" package HEAD --output "$work/ship.tar.gz")
  (cd "$work/repo" && measure git-archive git archive --format=tar.gz -o "$work/git.tar.gz" HEAD)
done
echo "bundle sizes: ship $(stat -c %s "$work/ship.tar.gz") bytes, git archive $(stat -c %s "$work/git.tar.gz") bytes"
python3 - "$work/results" "$runs" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip() and line.split()[0] in ("ship", "git-archive")]
def stats(label):
    secs = [float(r[1]) for r in rows if r[0] == label]
    mem = [int(r[2]) for r in rows if r[0] == label]
    return statistics.median(secs), min(secs), max(secs), statistics.median(mem) / 1024
s, g = stats("ship"), stats("git-archive")
print(f"{'':12} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MiB':>9}   ({sys.argv[2]} runs each)")
print(f"{'ship':12} {s[0]:9.2f} {s[1]:7.2f} {s[2]:7.2f} {s[3]:9.1f}")
print(f"{'git archive':12} {g[0]:9.2f} {g[1]:7.2f} {g[2]:7.2f} {g[3]:9.1f}")
print(f"ship / git archive wall time: {s[0] / g[0]:.2f}")
PY
