#!/usr/bin/env bash
# Makes, once, a WordPress site tree from Debian's own `wordpress` package, as a team would commit
# it to their application repository, and prints its path (the test suite's real WordPress).
#
#   scripts/wordpress.sh
#
# Debian's package keeps its configuration in /etc/wordpress and links a few libraries from other
# packages (getID3, underscore.js, cropper, the CA bundle). Here the package and those libraries
# are fetched with `apt-get download` from the archive apt already uses and unpacked, the links
# are replaced by the files they point at, and Debian's wp-config.php is dropped (a site's
# wp-config.php is a shared file of each host). Nothing is installed on this machine. Cached under
# $SHIP_ROOTFS_CACHE (default /var/cache/ship-sandbox); rebuilt when this recipe changes.
set -euo pipefail
cache=${SHIP_ROOTFS_CACHE:-/var/cache/ship-sandbox}
recipe=1
tree=$cache/wordpress
ready=$tree/.ship-wordpress-$recipe
[ -f "$ready" ] && { echo "$tree"; exit 0; }
mkdir -p "$cache"
exec 9>"$cache/wordpress.lock"
flock 9
[ -f "$ready" ] && { echo "$tree"; exit 0; }

work=$cache/.wordpress.building
rm -rf "$work" "$tree"
mkdir -p "$work/debs" "$work/root"
packages="wordpress php-getid3 libjs-underscore libjs-cropper"
# apt's sandbox user must be able to write where the packages go.
chmod 777 "$work/debs"
if ! (cd "$work/debs" && apt-get download $packages > "$work/apt.log" 2>&1); then
  echo "wordpress: apt-get download $packages failed (is 'apt-get update' done?):" >&2
  tail -5 "$work/apt.log" >&2
  exit 1
fi
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
site=$work/root/usr/share/wordpress
# Each link becomes what it points at (in the unpacked packages, or on this machine for the CA
# bundle); one that points at nothing is dropped.
find "$site" -type l | while read -r link; do
  target=$(readlink "$link")
  case "$target" in
    /*) resolved=$target ;;
    *) resolved=$(cd "$(dirname "$link")" && realpath -m "$target") ;;
  esac
  # Relative links point into /usr/share of the installed system: the unpacked tree here.
  case "$resolved" in "$work/root"/*) ;; /*) [ -e "$work/root$resolved" ] && resolved=$work/root$resolved ;; esac
  rm "$link"
  if [ -e "$resolved" ]; then cp -L "$resolved" "$link"; fi
done
rm -f "$site/wp-config.php"
mv "$site" "$work/site"
touch "$work/site/.ship-wordpress-$recipe"
mv "$work/site" "$tree"
rm -rf "$work"
echo "$tree"
