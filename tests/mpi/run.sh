#!/bin/sh
# tests/mpi/run.sh N PROGRAM [ARGS...]: runs PROGRAM on N ranks of one MPI job on this machine,
# as the MPI tests need it: --oversubscribe (more ranks than the 2 cores), --bind-to none
# (else every rank is bound to core 0 and the polling ranks take turns on it), and
# --allow-run-as-root only when run as root (Open MPI refuses root otherwise).
# MPROC_MPIEXEC_FLAGS adds flags (a test of a rank's death passes recovery flags).
set -eu
# Under AddressSanitizer (scripts/test.sh --sanitize): Open MPI keeps allocations until exit,
# some from components it loads and unloads; LeakSanitizer can tell them (scripts/lsan.supp)
# only with whole stacks and with the components still loaded.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
  export OMPI_MCA_mca_base_component_disable_dlclose=1
fi
n=$1
shift
root=""
if [ "$(id -u)" = 0 ]; then root=--allow-run-as-root; fi
# shellcheck disable=SC2086
exec mpiexec $root --oversubscribe --bind-to none ${MPROC_MPIEXEC_FLAGS:-} -n "$n" "$@"
