#!/usr/bin/env bash
# tests/mpi/scenarios.sh SCENARIO BINDIR: launches one whole-job scenario of mpi_scenarios
# (tests/mpi/mpi_scenarios.cpp) and checks how the job ends: its exit status, what it printed,
# and how long it took.
set -u
# Under AddressSanitizer (scripts/test.sh --sanitize): Open MPI keeps allocations until exit,
# some from components it loads and unloads; LeakSanitizer can tell them (scripts/lsan.supp)
# only with whole stacks and with the components still loaded.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
  export OMPI_MCA_mca_base_component_disable_dlclose=1
fi
scenario=$1
bin=$2
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
root=()
if [[ $(id -u) -eq 0 ]]; then root=(--allow-run-as-root); fi
mpiexec_=(mpiexec "${root[@]}" --oversubscribe --bind-to none)

expect() {  # expect WHAT: the output has WHAT, else fail
  if ! grep -q -- "$1" "$out"; then
    echo "scenarios: $scenario: the output lacks '$1'"; cat "$out"; exit 1
  fi
}

start=$(date +%s%N)
case "$scenario" in
  rank-death)
    # Open MPI 4.1 ends the whole job when a rank dies, unless told otherwise: these flags let
    # the other ranks live on and the job end normally (docs/mpi.md).
    "${mpiexec_[@]}" --enable-recovery --mca async_mpi_finalize 1 \
      -n 3 "$bin/mpi_scenarios" rank-death >"$out" 2>&1
    status=$?
    cat "$out"
    [[ $status -eq 0 ]] || { echo "scenarios: $scenario: mpiexec exited $status"; exit 1; }
    expect "rank-death: OK"
    expect "rank 1 on host"
    ;;
  rank-death-default)
    # With mpiexec's defaults a dead rank ends the job: within 10 s, naming the rank and host.
    "${mpiexec_[@]}" -n 3 "$bin/mpi_scenarios" rank-death >"$out" 2>&1
    status=$?
    cat "$out"
    [[ $status -ne 0 ]] || { echo "scenarios: $scenario: the job did not end with an error"; exit 1; }
    expect "rank 1"
    expect "$(hostname)"
    took_ms=$((($(date +%s%N) - start) / 1000000))
    ((took_ms < 10000)) || { echo "scenarios: $scenario: the job took ${took_ms} ms to end"; exit 1; }
    ;;
  local-n1)
    "${mpiexec_[@]}" -n 1 "$bin/mpi_scenarios" local >"$out" 2>&1 || { cat "$out"; exit 1; }
    cat "$out"
    expect "local: OK"
    expect "no worker rank (mpiexec -n 1)"
    ;;
  local-no-mpiexec)
    "$bin/mpi_scenarios" local >"$out" 2>&1 || { cat "$out"; exit 1; }
    cat "$out"
    expect "local: OK"
    expect "not started by mpiexec"
    ;;
  other-build)
    "${mpiexec_[@]}" -n 2 "$bin/mpi_scenarios" other-build : -n 1 "$bin/mpi_scenarios_other" other-build >"$out" 2>&1
    status=$?
    cat "$out"
    [[ $status -ne 0 ]] || { echo "scenarios: $scenario: the job was not refused"; exit 1; }
    expect "MPI rank 2 on host .* runs another build of the program"
    if grep -q "other-build: FAILED" "$out"; then exit 1; fi
    ;;
  garbage)
    "${mpiexec_[@]}" -n 3 "$bin/mpi_scenarios" garbage >"$out" 2>&1 || { cat "$out"; exit 1; }
    cat "$out"
    expect "garbage: OK"
    expect "rank 1 on host .* sent a malformed message"
    ;;
  hosts)
    # Across fake hosts (network namespaces): rank 0 on h1, a worker rank on each of h2 and h3.
    # Open MPI 4.1.4's TCP transport sometimes fails its own connection between two ranks on a
    # loaded machine ("failed to TCP connect to a peer MPI process ... Operation now in progress
    # (115)", open-mpi/ompi#10734; twice in this suite's CI runs, sessions 9 and 13), and the
    # ranks then take each other for lost. Such a job is run once more, saying so; any other
    # failure fails at once.
    for attempt in 1 2; do
      "$here/../../scripts/mpi_hosts.sh" run 3 --enable-recovery --mca async_mpi_finalize 1 -- \
        "$bin/mpi_scenarios" hosts >"$out" 2>&1
      status=$?
      if [[ $attempt -eq 1 ]] && ! grep -q "hosts: OK" "$out" &&
         grep -q "Open MPI failed to TCP connect to a peer MPI process" "$out"; then
        cat "$out"
        echo "scenarios: hosts: Open MPI's TCP connect between ranks failed (not mproc's); running the job once more"
        continue
      fi
      break
    done
    cat "$out"
    [[ $status -ne 77 ]] || exit 77
    [[ $status -eq 0 ]] || { echo "scenarios: $scenario: the job exited $status"; exit 1; }
    expect "hosts: OK"
    ;;
  comm)
    "${mpiexec_[@]}" -n 3 "$bin/mpi_scenarios" comm >"$out" 2>&1 || { cat "$out"; exit 1; }
    cat "$out"
    expect "comm: OK (root 2, 2 worker ranks)"
    ;;
  large)
    "${mpiexec_[@]}" -n 2 "$bin/mpi_scenarios" large >"$out" 2>&1 || { cat "$out"; exit 1; }
    cat "$out"
    expect "large: OK"
    ;;
  *) echo "scenarios: unknown scenario $scenario"; exit 2 ;;
esac
took_ms=$((($(date +%s%N) - start) / 1000000))
echo "scenarios: $scenario: passed in ${took_ms} ms"
