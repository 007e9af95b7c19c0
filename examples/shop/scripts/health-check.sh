#!/bin/sh
# validate: the release that `current` points at must serve its pages and know its revision.
set -eu
site="$SHIP_DEPLOY_TO/current/public"
test -s "$site/index.html" || { echo "index.html missing" >&2; exit 1; }
test "$(cat "$site/version.txt")" = "$SHIP_REVISION" || { echo "version.txt is not $SHIP_REVISION" >&2; exit 1; }
test -f "$SHIP_DEPLOY_TO/current/config/settings.local.ini" || { echo "settings.local.ini not linked" >&2; exit 1; }
echo "healthy: $(cat "$site/version.txt")"
