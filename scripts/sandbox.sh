#!/usr/bin/env bash
# A local pool of real OpenSSH hosts for tests and the demo. Each host is an sshd in its own
# mount and UTS namespace (unshare) with a private /srv (tmpfs) and its own hostname, listening
# on its own loopback address 127.0.0.N. Needs root (unshare, mount).
#
#   scripts/sandbox.sh start DIR COUNT [FIRST [NET]]   start COUNT hosts web1..webCOUNT on NET.FIRST..
#                                                 (default 127.0.0.11..)
#   scripts/sandbox.sh stop DIR                  stop the hosts started in DIR and remove DIR
#   scripts/sandbox.sh pid DIR NAME              the pid of host NAME's sshd (for nsenter -t PID -m)
#
# DIR receives ssh_config (aliases web1.., keys, known_hosts pinned), id_ed25519, known_hosts.
set -euo pipefail
command=${1:-}; dir=${2:-}
[ -n "$command" ] && [ -n "$dir" ] || { sed -n '2,10p' "$0"; exit 2; }
port=2222

start() {
  local count=$1 first=${2:-11} net=${3:-127.0.0}
  mkdir -p "$dir" /run/sshd
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C "ship-sandbox" -f "$dir/id_ed25519"
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  : > "$dir/known_hosts"
  : > "$dir/ssh_config"
  for i in $(seq 1 "$count"); do
    local name="web$i" ip="$net.$((first + i - 1))" hostdir="$dir/web$i"
    mkdir -p "$hostdir"
    [ -f "$hostdir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$hostdir/ssh_host_ed25519_key"
    cat > "$hostdir/sshd_config" <<CFG
ListenAddress $ip:$port
HostKey $hostdir/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 64
MaxStartups 64:30:128
AcceptEnv LANG LC_*
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
    # A mount namespace with a private /srv and a UTS namespace with the host's own name.
    # setsid: the host outlives the shell that started it, and stop kills its whole session.
    setsid unshare --mount --uts --propagation private --fork \
      sh -c "hostname $name && mount -t tmpfs -o mode=755 tmpfs /srv && exec /usr/sbin/sshd -D -e -f $hostdir/sshd_config" \
      > "$hostdir/sshd.log" 2>&1 < /dev/null &
    echo $! > "$hostdir/session.pid"
  done
  # Ready when each host answers over ssh (its sshd logs nothing on success at LogLevel ERROR).
  for i in $(seq 1 "$count"); do
    local tries=0
    until ssh -F "$dir/ssh_config" -o ConnectTimeout=2 "web$i" true 2>/dev/null; do
      tries=$((tries + 1))
      if [ $tries -gt 100 ]; then
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
    # The host's whole session: unshare, sshd and every process a hook left behind on it.
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
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
