#!/bin/sh
# start: leave maintenance mode.
set -eu
rm -f "$SHIP_DEPLOY_TO/shared/var/maintenance.flag"
echo "maintenance off ($SHIP_HOST)"
