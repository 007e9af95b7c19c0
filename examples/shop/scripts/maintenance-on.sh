#!/bin/sh
# stop: put the site in maintenance mode (the web server serves maintenance.html while the flag exists).
set -eu
mkdir -p "$SHIP_DEPLOY_TO/shared/var"
printf 'maintenance since %s for deployment %s\n' "$(date -u +%FT%TZ)" "$SHIP_DEPLOYMENT_ID" > "$SHIP_DEPLOY_TO/shared/var/maintenance.flag"
echo "maintenance on ($SHIP_HOST)"
