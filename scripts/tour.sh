#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs mproc-tour (every seed scenario built
# so far, then a short speed comparison with Python's multiprocessing on this machine).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
exec "$root/build/bin/mproc-tour" "$@"
