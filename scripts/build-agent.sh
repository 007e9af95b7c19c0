#!/usr/bin/env bash
# Builds ship-agent as a fully static, stripped executable (no Swift runtime, no shared C
# library: it runs on any x86-64 Linux with kernel >= 3.2 and /proc) and prints its path:
# .build-agent/release/ship-agent. Every build path uses this one: scripts/install.sh, the demo
# and the tests; a `ship` run from .build/ finds it there.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product ship-agent -Xswiftc -static-executable --build-path .build-agent >&2
agent=.build-agent/release/ship-agent
# strip in place only when the link is newer than the stripped copy's marker.
if [ ! -f "$agent.stripped" ] || [ "$agent" -nt "$agent.stripped" ]; then
  strip "$agent"
  touch "$agent.stripped"
fi
echo "$PWD/$agent"
