#!/usr/bin/env bash
# Installs what mproc needs to build, test and benchmark, from Debian's packages only, skipping
# what is already installed. Safe to run again. Needs root (or sudo) only when something is
# missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config   # the toolchain (C++20, CMake >= 3.25)
  ccache                             # compiler cache: rebuilds (and CI's three builds) reuse objects
  clang                              # the second supported compiler (CI builds with both)
  libcereal-dev                      # serialization (DESIGN.md)
  libssl-dev                         # HMAC for the authkey handshake (OpenSSL libcrypto)
  libgtest-dev                       # tests: GoogleTest under CTest
  libboost-dev                       # benchmarks only: Boost.Interprocess message_queue, the queue's rival
  libtbb-dev                         # benchmarks only: oneTBB task_group, the thread executor's rival
  iproute2                           # tests only: a manager's server and client in two network namespaces
  openmpi-bin                        # mproc::mpi: mpiexec and Open MPI's runtime (issue 16)
  libopenmpi-dev                     # mproc::mpi: Open MPI's headers and mpicxx
  python3-mpi4py                     # benchmarks only: mpi4py.futures, the MPI executor's rival (Debian's python3)
  python3-matplotlib                 # benchmark charts only: scripts/charts.py draws them (Debian's python3)
  time                               # benchmarks only: /usr/bin/time, bench/compile_time.sh's CPU time and peak memory
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# The Python side of the benchmarks and interop tests: any python3 on PATH will do (pyenv's,
# say); Debian's when there is none.
command -v python3 >/dev/null 2>&1 || missing+=(python3)

if ((${#missing[@]} == 0)); then
  echo "setup: everything mproc needs is installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
