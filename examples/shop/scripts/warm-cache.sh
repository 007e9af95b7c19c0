#!/bin/sh
# install, as the web server's user (runas: www-data): what a PHP app does as www-data, such as
# warming its cache, writes files the web server owns. Uploaded files (shared/public/files) are
# www-data's too. Needs the sudoers line of docs/installing.md when ship deploys as a non-root user.
set -eu
cache="$SHIP_DEPLOY_TO/shared/var/cache"
mkdir -p "$cache"
printf 'cache of release %s warmed by %s\n' "$SHIP_RELEASE" "$(id -un)" > "$cache/$SHIP_RELEASE.txt"
echo "cache warmed as $(id -un)"
