#!/usr/bin/env bash
# Fake hosts for Open MPI on one machine: each "host" is a network namespace with its own address
# and hostname, joined to the others by a bridge in the root namespace, and mpiexec reaches it
# through a remote agent (in place of ssh) that enters the namespace. Issue 16 point 6 tests
# mproc::mpi across machines with it.
#
#   mpi_hosts.sh up N        make hosts h1..hN (removing what a crashed run left first)
#   mpi_hosts.sh down        remove everything up made; safe to run when nothing is there
#   mpi_hosts.sh run N [mpiexec options --] prog args...
#                            up N, mpiexec prog across h1..hN (one rank per host unless the
#                            options say -n), down whatever happens; exits with mpiexec's status
#
# Every rank, rank 0 included, runs on a fake host; mpiexec itself stays in the root namespace and
# starts an orted on each host through the agent, as from a cluster's login node. Rank 0 in the
# root namespace works as well (-H 10.219.16.1,h1 makes it local to mpiexec), but then it sees the
# machine's hostname and all its interfaces; on fake hosts every rank's processor name is hI, which
# tests assert on, and a rank local to mpiexec is what a plain `mpiexec -n` test already covers.
#
# One rank per host is the default for a second reason: under --enable-recovery, Open MPI 4.1.4's
# orted never counts a SIGKILLed rank as terminated, so when that rank shared its host (its orted)
# with another rank of the job, mpiexec waits for ever after every rank has exited. A rank alone on
# its host, or local to mpiexec, dies without that (measured: issue 16's notes).
#
# Exits 77 (CTest's SKIP_RETURN_CODE), saying why, where this cannot work: not root, no ip or
# unshare or mpiexec, or the kernel refuses namespaces. One run at a time per machine (a lock).
set -euo pipefail

readonly bridge=mprocmpi0
readonly subnet=10.219.16            # /24; the bridge is .1, host hI is .(10+I)
readonly ns_prefix=mproc-            # namespace of host hI: mproc-hI (its hostname is hI)
readonly state=/run/mproc-mpi-hosts  # the agent and the session directories, while hosts are up
readonly lock=/run/mproc-mpi-hosts.lock
readonly max_hosts=9                # the agent knows hosts by one digit

skip() {
  echo "mpi_hosts.sh: skipped: $*" >&2
  exit 77
}

usage() {
  echo "usage: $0 up N | down | run N [mpiexec options --] prog args..." >&2
  exit 2
}

check_host_count() {
  if ! [[ "$1" =~ ^[1-9]$ ]]; then
    echo "mpi_hosts.sh: host count must be 1..$max_hosts, not '$1'" >&2
    exit 2
  fi
}

preflight() {
  [[ $EUID -eq 0 ]] || skip "network namespaces need root, and this runs as uid $EUID"
  local tool
  for tool in ip unshare flock setpriv "$@"; do
    command -v "$tool" >/dev/null 2>&1 || skip "'$tool' is not installed"
  done
}

# The lock stays held by this shell (fd 9) until it exits, so up/run/down of two callers (ctest -j,
# say) never interleave on the one bridge and subnet.
take_lock() {
  exec 9>"$lock"
  flock -w 300 9 || { echo "mpi_hosts.sh: another run held $lock for 300 s" >&2; exit 1; }
}

namespaces() {
  ip netns list 2>/dev/null | awk -v p="$ns_prefix" 'index($1, p "h") == 1 { print $1 }'
}

do_down() {
  local ns i
  for ns in $(namespaces); do
    # An orted or rank left by a killed run: while one lives, the namespace (and its veth) outlives
    # its name, and the next up finds the veth's name taken.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break
      sleep 0.1
    done
    ip netns del "$ns" 2>/dev/null || true
  done
  for ((i = 1; i <= max_hosts; i++)); do
    ip link del "mpih$i" 2>/dev/null || true  # either end deletes the pair
  done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$state"
}

write_agent() {
  local n=$1
  mkdir -p "$state"
  # mpiexec calls the agent as it would call ssh: options, then the host as given in -H, then
  # the command line to run there (one string or several words; sh -c gets them joined).
  cat >"$state/agent.sh" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift;; *) break;; esac; done
host="\$1"; shift
i=""
case "\$host" in
  h[1-9]) i="\${host#h}";;
  $subnet.1[1-9]) i="\${host#$subnet.1}";;
esac
if [ -z "\$i" ] || [ "\$i" -gt $n ]; then echo "mpi_hosts agent: no fake host '\$host'" >&2; exit 255; fi
# Its own hostname and TMPDIR per host, as real hosts have: Open MPI names its session directory
# by hostname under TMPDIR, and orteds of one name in one directory collide there and hang. The
# shared-memory transport's files go there too instead of /dev/shm: under the state directory,
# what a killed job leaves goes with down.
mkdir -p "$state/tmp/h\$i"
exec ip netns exec "$ns_prefix""h\$i" unshare --uts env TMPDIR="$state/tmp/h\$i" \
  OMPI_MCA_btl_vader_backing_directory="$state/tmp/h\$i" sh -c "hostname h\$i; \$*"
EOF
  chmod 755 "$state/agent.sh"
}

do_up() {
  local n=$1 i ns
  do_down  # what a crashed or killed run left
  ip link add "$bridge" type bridge 2>/dev/null || skip "this machine cannot make a bridge (ip link add type bridge failed)"
  ip addr add "$subnet.1/24" dev "$bridge"
  ip link set "$bridge" up
  for ((i = 1; i <= n; i++)); do
    ns="${ns_prefix}h$i"
    ip netns add "$ns" 2>/dev/null || { do_down; skip "this machine cannot make network namespaces (ip netns add failed)"; }
    ip link add "mpih$i" type veth peer name eth0 netns "$ns"
    ip link set "mpih$i" master "$bridge" up
    ip -n "$ns" addr add "$subnet.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
  write_agent "$n"
  echo "$state/agent.sh"
}

mpiexec_pid=""
# Stopped from outside (ctest's timeout, ^C): mpiexec gets the chance to stop its ranks, then down
# ends whatever is left in the namespaces.
on_signal() {
  if [[ -n "$mpiexec_pid" ]]; then
    kill -TERM "$mpiexec_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$mpiexec_pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  exit 143
}

do_run() {
  local n=$1
  shift
  local opts=() prog=() seen_dashes=0 a
  for a in "$@"; do
    if ((seen_dashes == 0)) && [[ "$a" == -- ]]; then seen_dashes=1; fi
  done
  if ((seen_dashes)); then
    while [[ "$1" != -- ]]; do opts+=("$1"); shift; done
    shift
  fi
  prog=("$@")
  ((${#prog[@]})) || usage

  trap do_down EXIT
  trap on_signal INT TERM HUP
  do_up "$n" >/dev/null

  local hosts="" i
  # By name: mpiexec hands the name to the agent without resolving it, and names its hosts in
  # its messages as the ranks' processor names read.
  for ((i = 1; i <= n; i++)); do hosts+="${hosts:+,}h$i"; done
  # mpiexec refuses an MCA parameter given twice: the caller's options win over these defaults.
  local -A given=()
  local prev=""
  for a in "${opts[@]}"; do
    case "$prev" in --mca | -mca | --gmca | -gmca) given[$a]=1 ;; esac
    case "$a" in -n | -np | --np | -c | --n) given[-n]=1 ;; esac
    prev=$a
  done
  local args=(--mca plm_rsh_agent "$state/agent.sh" -H "$hosts"
    --bind-to none --oversubscribe)  # 2 cores; bound, two polling ranks share core 0 and crawl
  # shellcheck disable=SC2054  # commas inside mpiexec's values, not between array elements
  [[ -v given[btl] ]] || args+=(--mca btl tcp,self,vader)
  [[ -v given[btl_tcp_if_include] ]] || args+=(--mca btl_tcp_if_include "$subnet.0/24")
  [[ -v given[oob_tcp_if_include] ]] || args+=(--mca oob_tcp_if_include "$subnet.0/24")
  [[ $EUID -eq 0 ]] && args+=(--allow-run-as-root)
  [[ -v given[-n] ]] || args+=(-n "$n")

  # In the background and waited for, so a TERM from ctest's timeout reaches this shell's trap
  # at once instead of after mpiexec; and TERMed should this shell be killed outright, so no
  # mpiexec outlives it. Its session directory goes under the state directory, as the hosts' do.
  # Without the lock's descriptor: an orted left by a killed run must not hold the next run off.
  mkdir -p "$state/tmp/mpiexec"
  TMPDIR="$state/tmp/mpiexec" setpriv --pdeathsig TERM mpiexec "${args[@]}" "${opts[@]}" "${prog[@]}" 9>&- &
  mpiexec_pid=$!
  local status=0
  wait "$mpiexec_pid" || status=$?
  mpiexec_pid=""
  exit "$status"
}

(($# >= 1)) || usage
case "$1" in
  up)
    (($# == 2)) || usage
    check_host_count "$2"
    preflight
    take_lock
    do_up "$2"
    ;;
  down)
    (($# == 1)) || usage
    preflight
    take_lock
    do_down
    ;;
  run)
    (($# >= 3)) || usage
    check_host_count "$2"
    preflight mpiexec
    take_lock
    shift
    do_run "$@"
    ;;
  *) usage ;;
esac
