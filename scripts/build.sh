#!/usr/bin/env bash
# Configures and builds mproc: the library, and (on a first configure) the tests, examples and
# benchmarks, which a plain CMake build leaves out.
# Usage: scripts/build.sh [build-dir] [extra cmake arguments...] [--target T...]
#   --target T   build only T (and what it needs); may be given more than once
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
configure=()
targets=()
while (($#)); do
  if [[ "$1" == "--target" ]]; then
    targets+=(--target "$2")
    shift 2
  else
    configure+=("$1")
    shift
  fi
done
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths under the source tree are hashed relative to it, so a fresh clone elsewhere (CI's)
  # reuses what an earlier build compiled; the debug info's directory may then name the other
  # tree, which only a debugger notices.
  export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-12G}
fi
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_WERROR=ON \
        -DMPROC_BUILD_TESTS=ON -DMPROC_BUILD_EXAMPLES=ON -DMPROC_BUILD_BENCH=ON ${configure[@]+"${configure[@]}"}
else
  cmake -S "$root" -B "$dir" ${configure[@]+"${configure[@]}"} >/dev/null
fi
cmake --build "$dir" --parallel "$(nproc)" ${targets[@]+"${targets[@]}"}
