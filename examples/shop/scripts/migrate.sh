#!/bin/sh
# migrate: runs once per deployment. Applies migrations/*.sql in order to a schema log kept in
# the shared dir (a real app runs `drush updatedb -y` or `wp core update-db` here).
set -eu
state="$SHIP_DEPLOY_TO/shared/var/schema_version"
current=$(cat "$state" 2>/dev/null || echo 0)
for migration in migrations/*.sql; do
  version=$(basename "$migration" | cut -d_ -f1 | sed 's/^0*//')
  if [ "${version:-0}" -gt "$current" ]; then
    echo "applying $migration"
    current=$version
  fi
done
printf '%s\n' "$current" > "$state.tmp" && mv "$state.tmp" "$state"
echo "schema at version $current"
