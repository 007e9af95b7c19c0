#!/usr/bin/env bash
# Benchmark: what making a release from a base costs per method, one file at a time as the agent
# does: hard links (what rsync --link-dest and cp -al do), copy_file_range, read/write, and
# FICLONE reflinks, on ext4 (this machine's /tmp) and on XFS with reflinks (a loop device; needs
# root and xfsprogs). The tree is the benchmark app of bench/peers.sh at HEAD.
#   bench/copies.sh [REPS]
set -euo pipefail
reps=${1:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=/var/cache/ship-bench
[ -d "$cache/app/.git" ] || python3 "$root/bench/generate-repo.py" "$cache/app" >/dev/null
work=$(mktemp -d /tmp/ship-bench-copies-XXXXXX)
trap 'umount "$work/xfs" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/copy.py" <<'PY'
import fcntl, os, sys, time
src, method, dst = sys.argv[1:4]
files = []
for top, dirs, names in os.walk(src):
    for d in dirs: os.makedirs(os.path.join(dst, os.path.relpath(os.path.join(top, d), src)), exist_ok=True)
    files += [os.path.relpath(os.path.join(top, n), src) for n in names]
os.sync()
start = time.time()
for rel in files:
    s, d = os.path.join(src, rel), os.path.join(dst, rel)
    if method == "link":
        os.link(s, d)
        continue
    fi = os.open(s, os.O_RDONLY)
    st = os.fstat(fi)
    fo = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o777)
    if method == "reflink":
        fcntl.ioctl(fo, 0x40049409, fi)  # FICLONE
    elif method == "copy_file_range":
        left = st.st_size
        while left > 0: left -= os.copy_file_range(fi, fo, left)
    else:
        while chunk := os.read(fi, 262144): os.write(fo, chunk)
    os.close(fi)
    os.close(fo)
print(f"{sys.argv[4]:5} {method:16} {len(files)} files in {time.time() - start:.2f} s")
PY
mkdir -p "$work/ext4"
git -C "$cache/app" archive --format=tar HEAD | tar -x -C "$work/ext4" --one-top-level=src
run() { # FS DIR METHOD...
  local fs=$1 dir=$2; shift 2
  for _ in $(seq "$reps"); do for method in "$@"; do
    rm -rf "$dir/$method"; python3 "$work/copy.py" "$dir/src" "$method" "$dir/$method" "$fs"
  done; done
}
run ext4 "$work/ext4" link copy_file_range readwrite
if command -v mkfs.xfs >/dev/null; then
  truncate -s 2G "$work/xfs.img"
  mkfs.xfs -q -m reflink=1 "$work/xfs.img"
  mkdir -p "$work/xfs"
  mount -o loop "$work/xfs.img" "$work/xfs"
  cp -a "$work/ext4/src" "$work/xfs/src"
  run xfs "$work/xfs" link copy_file_range reflink
else
  echo "xfs: mkfs.xfs not installed (apt-get install xfsprogs)"
fi
