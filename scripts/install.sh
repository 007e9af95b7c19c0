#!/usr/bin/env bash
# Builds ship for release and installs it:
#   PREFIX/bin/ship                    the controller (Swift standard library linked in)
#   PREFIX/libexec/ship/ship-agent     the fully static agent ship uploads to hosts
#   PREFIX/share/bash-completion/completions/ship, PREFIX/share/zsh/site-functions/_ship
#                                      shell completion (bash-completion and zsh find them there)
#
#   scripts/install.sh [PREFIX]        default PREFIX: /usr/local
#
# Run it from a clone of ship, with Swift 6 on PATH; it installs the Debian packages the build
# needs first (scripts/setup.sh). Agents for other architectures go to
# PREFIX/libexec/ship/linux-ARCH/ship-agent (built on such a machine with scripts/build-agent.sh).
set -euo pipefail
prefix=${1:-/usr/local}
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product ship --static-swift-stdlib
agent=$(scripts/build-agent.sh)
install -d "$prefix/bin" "$prefix/libexec/ship"
install -m 755 -s .build/release/ship "$prefix/bin/ship.new"
mv -f "$prefix/bin/ship.new" "$prefix/bin/ship"
install -m 755 "$agent" "$prefix/libexec/ship/ship-agent.new"
mv -f "$prefix/libexec/ship/ship-agent.new" "$prefix/libexec/ship/ship-agent"
# Completion scripts, as ship's own argument parser writes them.
install -d "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions"
"$prefix/bin/ship" --generate-completion-script bash > "$prefix/share/bash-completion/completions/ship"
"$prefix/bin/ship" --generate-completion-script zsh > "$prefix/share/zsh/site-functions/_ship"
echo "installed $prefix/bin/ship and $prefix/libexec/ship/ship-agent ($(du -h "$prefix/libexec/ship/ship-agent" | cut -f1), fully static)"
"$prefix/bin/ship" --version
