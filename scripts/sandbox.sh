#!/usr/bin/env bash
# A local pool of real OpenSSH hosts for tests and the demo, each a small machine of its own: its
# own Debian root filesystem (scripts/rootfs.sh: no Swift, users root, deploy and www-data), its
# own /proc, /tmp, /run and /dev, its own hostname, and sshd listening on its own loopback
# address 127.0.0.N. Each host runs in a mount + PID + UTS namespace whose root is an overlay of
# the cached tree, so what a deployment writes stays on that host. Needs root.
#
#   scripts/sandbox.sh start DIR COUNT [FIRST [NET]]   start COUNT hosts web1..webCOUNT on NET.FIRST..
#                                                 (default 127.0.0.11..)
#   scripts/sandbox.sh stop DIR                  stop the hosts started in DIR and remove DIR
#   scripts/sandbox.sh pid DIR NAME              the pid of host NAME's sshd (for nsenter -t PID)
#
# SANDBOX_OS picks each host's system, a comma-separated list given out in turn (default bookworm):
# a Debian suite (bookworm = Debian 12, bullseye = Debian 11), or `shared` for a host that shares
# this machine's root filesystem with a private /srv (only for hosts that must run this machine's
# own tools, such as the database clients of the backup tests).
# DIR receives ssh_config (aliases web1.., User root unless ship.yml says otherwise; every host
# also accepts the same key for `deploy`), id_ed25519 and known_hosts (host keys pinned).
# Each rootfs host allows `deploy` to run the agent as www-data through sudo, with the narrow
# sudoers line docs/installing.md gives (scripts/sandbox.sh writes it to /etc/sudoers.d/ship).
set -euo pipefail
command=${1:-}; dir=${2:-}
[ -n "$command" ] && [ -n "$dir" ] || { sed -n '2,21p' "$0"; exit 2; }
port=2222
here=$(cd "$(dirname "$0")" && pwd)

# What runs as PID 1 of a rootfs host's namespaces: mounts its filesystems, then becomes sshd.
# Arguments: host directory, tree, name, address.
host_init='
set -e
hostdir=$1; tree=$2; name=$3; ip=$4; root=$hostdir/root
mount -t overlay overlay -o "lowerdir=$tree,upperdir=$hostdir/upper,workdir=$hostdir/work" "$root"
hostname "$name"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
mkdir -m 755 "$root/run/sshd" "$root/run/lock"
mount -t tmpfs -o mode=755,nosuid tmpfs "$root/dev"
for device in null zero full random urandom tty; do
  touch "$root/dev/$device"; mount --bind "/dev/$device" "$root/dev/$device"
done
mkdir -m 755 "$root/dev/pts"; mkdir -m 1777 "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"; ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"
install -m 600 "$hostdir/ssh_host_ed25519_key" "$root/etc/ssh/ssh_host_ed25519_key"
install -m 644 "$hostdir/sshd_config" "$root/etc/ssh/sshd_config_ship"
install -m 644 "$hostdir/../authorized_keys" "$root/etc/ssh/ship_authorized_keys"
install -m 440 "$hostdir/sudoers" "$root/etc/sudoers.d/ship"
echo "$name" > "$root/etc/hostname"
printf "127.0.0.1 localhost\n%s %s\n" "$ip" "$name" > "$root/etc/hosts"
exec chroot "$root" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config_ship
'

start() {
  local count=$1 first=${2:-11} net=${3:-127.0.0}
  local systems; IFS=, read -r -a systems <<< "${SANDBOX_OS:-bookworm}"
  mkdir -p "$dir" /run/sshd
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C "ship-sandbox" -f "$dir/id_ed25519"
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  : > "$dir/known_hosts"
  : > "$dir/ssh_config"
  for i in $(seq 1 "$count"); do
    local name="web$i" ip="$net.$((first + i - 1))" hostdir="$dir/web$i"
    local os=${systems[$(( (i - 1) % ${#systems[@]} ))]}
    mkdir -p "$hostdir"
    [ -f "$hostdir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$hostdir/ssh_host_ed25519_key"
    local keys=$dir/authorized_keys hostkey=$hostdir/ssh_host_ed25519_key
    if [ "$os" != shared ]; then keys=/etc/ssh/ship_authorized_keys; hostkey=/etc/ssh/ssh_host_ed25519_key; fi
    cat > "$hostdir/sshd_config" <<CFG
ListenAddress $ip:$port
HostKey $hostkey
PidFile none
AuthorizedKeysFile $keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 64
MaxStartups 64:30:128
AcceptEnv LANG LC_* AWS_EC2_METADATA_SERVICE_ENDPOINT
Subsystem sftp internal-sftp
LogLevel ERROR
CFG
    echo "[$ip]:$port $(cut -d' ' -f1-2 "$hostdir/ssh_host_ed25519_key.pub")" >> "$dir/known_hosts"
    cat >> "$dir/ssh_config" <<CFG
Host $name
  HostName $ip
  Port $port
  User root
  IdentityFile $dir/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR

CFG
    echo "$os" > "$hostdir/os"
    # setsid: the host outlives the shell that started it, and stop kills its whole session.
    if [ "$os" = shared ]; then
      # This machine's root filesystem with a private /srv, in a mount and UTS namespace.
      setsid unshare --mount --uts --propagation private --fork \
        sh -c "hostname $name && mount -t tmpfs -o mode=755 tmpfs /srv && exec /usr/sbin/sshd -D -e -f $hostdir/sshd_config" \
        > "$hostdir/sshd.log" 2>&1 < /dev/null &
    else
      local tree; tree=$("$here/rootfs.sh" "$os")
      mkdir -p "$hostdir/upper" "$hostdir/work" "$hostdir/root"
      # The deploy user may run the agent (and nothing else) as www-data: docs/installing.md.
      echo 'deploy ALL=(www-data) NOPASSWD: /srv/*/.ship/bin/ship-agent exec-hook' > "$hostdir/sudoers"
      setsid unshare --mount --uts --pid --fork --propagation private \
        sh -c "$host_init" host-init "$hostdir" "$tree" "$name" "$ip" \
        > "$hostdir/sshd.log" 2>&1 < /dev/null &
    fi
    echo $! > "$hostdir/session.pid"
  done
  # Ready when each host answers over ssh (its sshd logs nothing on success at LogLevel ERROR).
  for i in $(seq 1 "$count"); do
    local tries=0
    until ssh -F "$dir/ssh_config" -o ConnectTimeout=2 "web$i" true 2>/dev/null; do
      tries=$((tries + 1))
      if [ $tries -gt 150 ] || ! kill -0 "$(cat "$dir/web$i/session.pid")" 2>/dev/null; then
        echo "sandbox: web$i did not come up:" >&2; cat "$dir/web$i/sshd.log" >&2; exit 1
      fi
      sleep 0.1
    done
  done
}

stop() {
  [ -d "$dir" ] || exit 0
  for pidfile in "$dir"/web*/session.pid; do
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    # The host's whole session: unshare, sshd and every process a hook left behind on it (a
    # rootfs host's PID namespace ends with its sshd, which is its PID 1).
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  rm -rf "$dir"
}

pid() {
  # The sshd inside host NAME's namespaces: the child of its unshare process.
  local session; session=$(cat "$dir/$1/session.pid")
  pgrep -P "$session" | head -1
}

case "$command" in
  start) start "${3:?count}" "${4:-11}" "${5:-127.0.0}" ;;
  stop) stop ;;
  pid) pid "${3:?name}" ;;
  *) sed -n '2,21p' "$0"; exit 2 ;;
esac
