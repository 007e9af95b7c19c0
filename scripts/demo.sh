#!/usr/bin/env bash
# The main job: set up, build ship, make a Git repository of the example app (examples/shop),
# validate it and package a release bundle of it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
echo "==> building ship"
swift build -c release --product ship 2>&1 | tail -1
ship="$root/.build/release/ship"

app="$root/.sandbox/shop"
echo "==> example app repository: $app"
mkdir -p "$app"
copy_example() { (cd examples/shop && tar -cf - .) | (cd "$app" && tar -xf -); }
copy_example
if [ ! -d "$app/.git" ]; then
  git -C "$app" init -q -b main
fi
git -C "$app" add -A
if ! git -C "$app" diff --cached --quiet 2>/dev/null || ! git -C "$app" rev-parse -q --verify HEAD >/dev/null; then
  git -C "$app" -c user.name="ship demo" -c user.email="demo@ship.invalid" commit -q -m "shop example $(date -u +%FT%TZ)"
fi

cd "$app"
echo "==> ship check"
"$ship" check
echo "==> ship package"
"$ship" package --output "$root/.sandbox/shop.tar.gz"
echo "==> bundle contents"
tar -tvzf "$root/.sandbox/shop.tar.gz"
cat <<TXT

Done. Try:
  (cd $app && $ship package HEAD --json)   # package again: byte-identical for the same commit
  $ship --help                                # every command
TXT
