# Installs the built mproc into a temporary prefix, then another CMake project finds it with
# find_package(mproc), links mproc::mproc, builds and runs; and, where mproc was built with MPI,
# find_package(mproc COMPONENTS mpi) and mproc::mpi.
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
set(prefix ${WORK_DIR}/prefix)
mproc_run("cmake --install" ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix})
mproc_expect_files(${prefix} include/mproc/mproc.hpp include/mproc/version.hpp lib/cmake/mproc/mprocConfig.cmake
                   lib/cmake/mproc/mprocConfigVersion.cmake lib/pkgconfig/mproc.pc)
mproc_check_find_package(consumer ${prefix} "${MPROC_CONSUMER_SAYS}")
if(WITH_MPI)
  mproc_expect_files(${prefix} lib/cmake/mproc/mprocMpiTargets.cmake lib/pkgconfig/mproc-mpi.pc
                     include/mproc/mpi.hpp include/mproc/detail/mpi_core.hpp)
  mproc_check_find_package(mpi_consumer ${prefix} "${MPROC_MPI_CONSUMER_SAYS}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
