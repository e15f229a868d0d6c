#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs mproc-tour (every seed scenario built
# so far, then a short speed comparison with Python's multiprocessing on this machine). Builds
# only what the tour runs: mproc-tour, the scenario programs, mproc-bench; not the tests
# (scripts/test.sh builds those in the same build directory).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build" --target mproc-tour --target mproc-bench
exec "$root/build/bin/mproc-tour" "$@"
