#!/usr/bin/env bash
# How long a translation unit that uses Pool::map takes to compile, beside one that uses
# std::async for the same work (issue 18: within 2x). Each is compiled RUNS times (default 3),
# alternating, with the flags of a RelWithDebInfo build; prints each one's median CPU time
# (user + system: what the compiler spent, steady on a busy machine), median wall time, peak
# memory, and the ratio of the CPU medians.
#   bench/compile_time.sh [RUNS]       CXX=clang++ bench/compile_time.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
cxx=${CXX:-g++}
flags=(-std=c++20 -O2 -g -I"$root/include" -c -o /dev/null)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 0; i < runs; i++)); do
  for tu in std_async pool_map; do
    /usr/bin/time -f "%U %S %e %M" -o "$tmp/t" "$cxx" "${flags[@]}" "$root/bench/compile_time/$tu.cpp"
    echo "$tu $(cat "$tmp/t")" >>"$tmp/all"
  done
done
"${PYTHON:-python3}" - "$tmp/all" "$cxx" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tu, u, s, e, m = line.split()
    rows.setdefault(tu, []).append((float(u) + float(s), float(e), int(m)))
med = {tu: statistics.median(r[0] for r in rs) for tu, rs in rows.items()}
print(f"compile time, {sys.argv[2]} -O2 -g, median of {len(rows['pool_map'])}:")
for tu, rs in rows.items():
    print(f"  {tu:10s} cpu {med[tu]:5.2f} s   wall {statistics.median(r[1] for r in rs):5.2f} s   "
          f"peak {max(r[2] for r in rs) / 1024:4.0f} MB   (cpu runs: {', '.join(f'{r[0]:.2f}' for r in rs)})")
print(f"  Pool::map / std::async: {med['pool_map'] / med['std_async']:.2f}x (goal: 2x or less)")
PY
