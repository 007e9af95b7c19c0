#!/bin/sh
# install: build the release in place (a real app runs composer install / npm ci here).
set -eu
printf '%s\n' "$SHIP_REVISION" > public/version.txt
printf 'release %s of %s built on %s\n' "$SHIP_RELEASE" "$SHIP_APP" "$SHIP_HOST" > public/build-info.txt
echo "installed release $SHIP_RELEASE"
