#!/usr/bin/env bash
# The main job: set up, build ship, start a local sandbox pool of three real sshd hosts (each its
# own Debian root filesystem without Swift: web1 and web2 Debian 12, web3 Debian 11), and deploy
# the example app (examples/shop) to it as the non-root user `deploy`, in rolling order, with its
# hooks (one of them as www-data). Needs root: the sandbox hosts live in Linux namespaces.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
echo "==> building ship (release) and its fully static agent"
swift build -c release --product ship 2>&1 | tail -1
scripts/build-agent.sh
ship="$root/.build/release/ship"
"$ship" --version
sandbox="$root/.sandbox"
hosts="$sandbox/hosts"
app="$sandbox/shop"

echo "==> starting 3 sandbox hosts (web1..web3 on 127.0.0.11-13: Debian 12, 12, 11; no Swift)"
scripts/rootfs.sh bookworm >/dev/null
scripts/rootfs.sh bullseye >/dev/null
scripts/sandbox.sh stop "$hosts"
SANDBOX_OS=bookworm,bookworm,bullseye scripts/sandbox.sh start "$hosts" 3
# Provisioning a real server, as root, once: deploy_to owned by the deploy user, the directories
# the web server writes owned by www-data, the app's secrets in place (docs/installing.md).
for host in web1 web2 web3; do
  ssh -F "$hosts/ssh_config" -l root "$host" '
    install -d -o deploy -g deploy /srv/shop /srv/shop/shared /srv/shop/shared/config /srv/shop/shared/var /srv/shop/shared/public
    install -d -o www-data -g www-data /srv/shop/shared/var/cache /srv/shop/shared/public/files
    printf "[database]\nhost = db1\n" > /srv/shop/shared/config/settings.local.ini
    chown deploy:deploy /srv/shop/shared/config/settings.local.ini && chmod 600 /srv/shop/shared/config/settings.local.ini'
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
ssh -F "$hosts/ssh_config" -l deploy web1 'cd /srv/shop && ls -l && echo "current -> $(readlink current)" && cat current/public/build-info.txt && ls -l shared/var/cache'
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
  echo '<p>new</p>' >> public/index.html && git commit -qam edit && $ship deploy --dry-run   # the plan, nothing changed
  $ship deploy                                    # deploy again
  $ship rollback                                  # back to the previous release
  $ship exec -- cat REVISION                      # a command in current on every host
  $ship logs                                      # the last deployment's hook output, per host
  $ship ssh web3                                  # a shell in current on web3 (Debian 11)
  $ship status && $ship history                   # what runs where, what happened
  $ship backup db && $ship backup list            # take a database backup, list the backups
  $ship restore assets ID --yes                   # put uploaded files back as they were in backup ID
  $ship unlock                                    # remove a stale lock
  $root/scripts/sandbox.sh stop $hosts            # stop the sandbox
TXT
