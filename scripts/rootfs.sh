#!/usr/bin/env bash
# Builds, once, the Debian root filesystem that sandbox hosts run on, and prints its path.
#
#   scripts/rootfs.sh SUITE        e.g. bookworm (Debian 12) or bullseye (Debian 11)
#   scripts/rootfs.sh SUITE+PKG..  the same with more Debian packages, e.g. bookworm+rsync+python3
#                                  (bench/peers.sh: the tools the peers need on their hosts)
#
# The tree is made with `debootstrap --variant=minbase` from the Debian mirror that apt on this
# machine already uses (read from apt's own source configuration), with openssh-server, sudo,
# GNU tar, coreutils and procps, and no Swift. It has its own users: root, `deploy` (uid 2000,
# the non-root deploy user, owner of /srv) and Debian's `www-data` (uid 33). Trees are cached
# under $SHIP_ROOTFS_CACHE (default /var/cache/ship-sandbox), so later runs start in seconds;
# a tree is rebuilt when this script's recipe changes. Needs root.
set -euo pipefail
name=${1:?usage: scripts/rootfs.sh SUITE[+PACKAGE...]}
case "$name" in *[!a-z0-9.+-]*|+*) echo "rootfs: not a Debian suite name: $name" >&2; exit 2 ;; esac
suite=${name%%+*}
extra=
[ "$suite" = "$name" ] || extra=,$(echo "${name#*+}" | tr + ,)
cache=${SHIP_ROOTFS_CACHE:-/var/cache/ship-sandbox}
# Bump when the recipe below changes: cached trees of another recipe are rebuilt.
recipe=3
tree=$cache/$name
ready=$tree/.ship-rootfs-$recipe

[ -f "$ready" ] && { echo "$tree"; exit 0; }
mkdir -p "$cache"
# One builder at a time per suite (tests start hosts in parallel).
exec 9>"$cache/$name.lock"
flock 9
[ -f "$ready" ] && { echo "$tree"; exit 0; }

# The mirror apt uses for Debian: deb822 sources first, then one-line sources.
mirror() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; debian = 0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { split($i, w, /[ \t]+/); uri = w[2] }
             if ($i ~ /^Suites:/ && $i !~ /security/) debian = 1
           }
           if (uri ~ /\/debian\/?$/ && debian) { print uri; exit } }' "$file"
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($i ~ /\/debian\/?$/) print $i; break } }' "$file"
  done
}
url=$(mirror | head -1)
[ -n "$url" ] || { echo "rootfs: no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "rootfs: debootstrap is not installed (scripts/setup.sh --test installs it)" >&2; exit 1; }

work=$cache/.$name.building
rm -rf "$work" "$tree"
echo "rootfs: building Debian $name from $url (once; cached in $tree)" >&2
if ! debootstrap --variant=minbase --include=openssh-server,sudo,tar,coreutils,procps,gzip$extra \
      "$suite" "$work" "$url" > "$cache/$name.log" 2>&1; then
  echo "rootfs: debootstrap failed; the end of $cache/$name.log:" >&2
  tail -20 "$cache/$name.log" >&2
  exit 1
fi

# The host's own users: a non-root deploy user who owns /srv (as an administrator prepares a
# server for deployments), and www-data, which Debian's base-passwd already has.
chroot "$work" /usr/sbin/useradd --uid 2000 --user-group --create-home --shell /bin/bash deploy
# Key-only logins: '*' (no password) rather than '!' (locked), which sshd refuses without PAM.
chroot "$work" /usr/sbin/usermod --password '*' deploy
chroot "$work" /bin/chown deploy:deploy /srv
# Host keys, sshd_config and authorized keys are per host (scripts/sandbox.sh writes them).
rm -f "$work"/etc/ssh/ssh_host_*
rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/*
mkdir -p "$work/run/sshd"

touch "$work/.ship-rootfs-$recipe"
mv "$work" "$tree"
echo "$tree"
