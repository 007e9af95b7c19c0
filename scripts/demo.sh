#!/usr/bin/env bash
# The main job: set up, build ship, start a local sandbox pool of three real sshd hosts, and
# deploy the example app (examples/shop) to it in rolling order, with its hooks.
# Needs root: the sandbox hosts live in Linux namespaces.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
echo "==> building ship (release)"
swift build -c release --product ship 2>&1 | tail -1
swift build -c release --product ship-agent 2>&1 | tail -1
ship="$root/.build/release/ship"
sandbox="$root/.sandbox"
hosts="$sandbox/hosts"
app="$sandbox/shop"

echo "==> starting 3 sandbox hosts (web1..web3 on 127.0.0.11-13, each with a private /srv)"
scripts/sandbox.sh stop "$hosts"
scripts/sandbox.sh start "$hosts" 3
# Provisioning a real server puts the app's secrets in place once; here, the shared settings file.
for host in web1 web2 web3; do
  ssh -F "$hosts/ssh_config" "$host" \
    'mkdir -p /srv/shop/shared/config && printf "[database]\nhost = db1\n" > /srv/shop/shared/config/settings.local.ini'
done

echo "==> example app repository: $app"
rm -rf "$app"
mkdir -p "$app/sandbox"
(cd examples/shop && tar -cf - .) | (cd "$app" && tar -xf -)
ln -s "$hosts/ssh_config" "$app/sandbox/ssh_config"
git -C "$app" init -q -b main
git -C "$app" add -A
git -C "$app" -c user.name="ship demo" -c user.email="demo@ship.invalid" commit -q -m "shop example"

cd "$app"
echo "==> ship check --hosts"
"$ship" check --hosts
echo "==> ship deploy"
"$ship" deploy sandbox
echo "==> what landed on web1"
ssh -F "$hosts/ssh_config" web1 'cd /srv/shop && ls -l && echo "current -> $(readlink current)" && cat current/public/build-info.txt'
echo "==> ship status"
"$ship" status
echo "==> ship history"
"$ship" history
echo "==> ship backup assets (the deployment already took a database backup before migrating)"
"$ship" backup assets
echo "==> ship backup list"
"$ship" backup list

cat <<TXT

Deployed. Next:
  cd $app
  echo '<p>new</p>' >> public/index.html && git commit -qam edit && $ship deploy   # deploy again
  $ship rollback                                  # back to the previous release
  $ship status && $ship history                   # what runs where, what happened
  $ship backup db && $ship backup list            # take a database backup, list the backups
  $ship restore assets ID --yes                   # put uploaded files back as they were in backup ID
  $ship unlock                                    # remove a stale lock
  ssh -F $hosts/ssh_config web2                   # look around a host
  $root/scripts/sandbox.sh stop $hosts            # stop the sandbox
TXT
