#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite under CTest.
#   scripts/test.sh              the normal build (build/)
#   scripts/test.sh --sanitize   the same suite built with ASan+UBSan (build-sanitize/)
#   scripts/test.sh --clang      the same suite built with clang (build-clang/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
# Named here, not left to build.sh's first configure: a build directory that a plain CMake run
# configured (library only) gets the suite too.
suite=(-DMPROC_BUILD_TESTS=ON -DMPROC_BUILD_EXAMPLES=ON)
if [[ "${1:-}" == "--sanitize" ]]; then
  dir=$root/build-sanitize
  # Sanitized children start slower: every test's hard timeout is stretched.
  export MPROC_TEST_TIMEOUT_SCALE=4
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/scripts/lsan.supp:print_suppressions=0}
  "$root/scripts/build.sh" "$dir" "${suite[@]}" -DCMAKE_BUILD_TYPE=Debug -DMPROC_SANITIZE=ON -DMPROC_BUILD_BENCH=OFF
elif [[ "${1:-}" == "--clang" ]]; then
  dir=$root/build-clang
  "$root/scripts/build.sh" "$dir" "${suite[@]}" -DCMAKE_CXX_COMPILER=clang++ -DMPROC_BUILD_BENCH=OFF
else
  dir=$root/build
  "$root/scripts/build.sh" "$dir" "${suite[@]}"
fi
cd "$dir"
# The other two builds skip what would only repeat the first's run: the sanitizer build leaves
# out the tests whose work is compiling (compile_fail, the install consumers, the compile-time
# benchmark: the first build's compiler, and next to none of mproc runs in them); the clang build
# leaves out mpi.scenario.large (three minutes alone on the machine moving 4 GiB through code
# the other two builds' tests cover; the sanitizer build cannot hold it).
# A third of the first build's test time goes to the suites run under each start method (fork,
# spawn, forkserver: 1216 cases). The other two builds run those under one method each: fork
# in the sanitizer build (Python's default here: the most of mproc in one process for ASan to
# see), spawn in the clang build; except mp_tests (ProcessTest, ContextTest and the other suites
# of the start methods' own code), which every build runs under every method. CI's tests took
# 1575 s in its three stages before, 1125 s after (session 13). (CTest names a case by its
# method two ways: `.../fork  # GetParam() = "fork"` where the suite names its cases,
# `.../"fork"` where GoogleTest numbers them.)
run=(ctest --output-on-failure --parallel "$(nproc)" --no-tests=error)
if [[ "${1:-}" == "--sanitize" ]]; then
  "${run[@]}" -LE '^(compile_fail|install|bench|mp_tests)$' -E '^StartMethods/.*/"?(spawn|forkserver)("|  #)'
  "${run[@]}" -L '^mp_tests$'
elif [[ "${1:-}" == "--clang" ]]; then
  "${run[@]}" -LE '^mp_tests$' -E '^(mpi\.scenario\.large$|StartMethods/.*/"?(fork|forkserver)("|  #))'
  "${run[@]}" -L '^mp_tests$'
else
  "${run[@]}"
fi
