#!/usr/bin/env bash
# Regenerates docs/charts: runs the whole benchmark (every section of mproc-bench, the mpi one
# too where mproc is built with MPI: it launches its own mpiexec jobs), which writes its figures to
# docs/charts/bench.json, then draws one PNG chart per section from them (scripts/charts.py).
#   scripts/charts.sh [--quick] [build-dir]     (default build dir: build/)
# A benchmark: run it on a machine doing nothing else.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quick=()
if [[ "${1:-}" == "--quick" ]]; then
  quick=(--quick)
  shift
fi
dir=${1:-$root/build}
"$root/scripts/setup.sh"
if [[ -f "$dir/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$dir" -DMPROC_BUILD_BENCH=ON >/dev/null
  cmake --build "$dir" --target mproc-bench
else
  # The library and the benchmark alone: tests and examples are not needed here.
  "$root/scripts/build.sh" "$dir" -DMPROC_BUILD_TESTS=OFF -DMPROC_BUILD_EXAMPLES=OFF
fi
# The source the figures were measured on, named in every chart.
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- include src bench 2>/dev/null || commit+=" with uncommitted changes"
out=$root/docs/charts
mkdir -p "$out"
"$dir/bin/mproc-bench" "${quick[@]}" --data "$out/bench.json" --commit "$commit"
/usr/bin/python3 "$root/scripts/charts.py" "$out/bench.json" -o "$out"
