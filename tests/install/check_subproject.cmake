# Another project builds mproc from source as part of itself (tests/install/subproject), by
# add_subdirectory or FetchContent (VIA), links mproc::mproc, and runs. It compiles the library
# again, so only the consumer's target is built (not the mpi component), with mproc's compiler
# launcher (ccache) where it had one.
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
set(args -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${COMPILER} -DMPROC_VIA=${VIA} -DMPROC_SOURCE_DIR=${SOURCE_DIR})
if(LAUNCHER)
  list(APPEND args -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
  # Paths under the source tree (this check's build directory too) are hashed relative to it,
  # as scripts/build.sh has them.
  set(ENV{CCACHE_BASEDIR} ${SOURCE_DIR})
  set(ENV{CCACHE_NOHASHDIR} 1)
endif()
set(build ${WORK_DIR}/build)
mproc_run("configuring the ${VIA} consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/subproject -B ${build} ${args})
mproc_run("building the ${VIA} consumer" ${CMAKE_COMMAND} --build ${build} --target consumer)
mproc_run_consumer(${build}/consumer "${MPROC_CONSUMER_SAYS}")
file(REMOVE_RECURSE ${WORK_DIR})
