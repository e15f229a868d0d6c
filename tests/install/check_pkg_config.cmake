# pkg-config from a moved prefix: installs the built mproc, moves the whole tree elsewhere, and
# builds and runs a program with nothing but what `pkg-config --cflags --libs mproc` says (and
# mproc-mpi, where built). The .pc files find their prefix from where they lie (${pcfiledir}).
# With a static libmproc, plain `--libs` must be enough to link (issue 18: it lacked -lcrypto).
#   LIB_TYPE  STATIC_LIBRARY or SHARED_LIBRARY: how mproc was built
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
find_program(PKG_CONFIG pkg-config REQUIRED)
mproc_run("cmake --install" ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/installed)
set(prefix ${WORK_DIR}/moved)
file(RENAME ${WORK_DIR}/installed ${prefix})
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
# A shared libmproc is found at run time where it now lies.
set(ENV{LD_LIBRARY_PATH} "${prefix}/lib:$ENV{LD_LIBRARY_PATH}")

mproc_run("pkg-config --variable=includedir mproc" ${PKG_CONFIG} --variable=includedir mproc)
string(STRIP "${MPROC_OUT}" includedir)
if(NOT EXISTS ${includedir}/mproc/mproc.hpp)
  message(FATAL_ERROR "mproc.pc's includedir is not the moved tree's: ${includedir}")
endif()

mproc_run("pkg-config --static --libs mproc" ${PKG_CONFIG} --static --libs mproc)
if(NOT MPROC_OUT MATCHES "-lcrypto" OR NOT MPROC_OUT MATCHES "-pthread")
  message(FATAL_ERROR "pkg-config --static --libs mproc lacks -lcrypto or -pthread: ${MPROC_OUT}")
endif()
mproc_run("pkg-config --libs mproc" ${PKG_CONFIG} --libs mproc)
if(LIB_TYPE STREQUAL "STATIC_LIBRARY" AND NOT MPROC_OUT MATCHES "-lcrypto")
  message(FATAL_ERROR "a static libmproc, but pkg-config --libs mproc lacks -lcrypto: ${MPROC_OUT}")
endif()

# Compiles and links tests/install/<name>/main.cpp with the flags pkg-config gives for <package>,
# then runs it.
function(mproc_check_pkg_config name package expect)
  mproc_run("pkg-config --cflags --libs ${package}" ${PKG_CONFIG} --cflags --libs ${package})
  separate_arguments(flags UNIX_COMMAND "${MPROC_OUT}")
  mproc_run("building ${name} with pkg-config ${package}"
            ${COMPILER} ${SOURCE_DIR}/tests/install/${name}/main.cpp -o ${WORK_DIR}/${name} ${flags})
  mproc_run_consumer(${WORK_DIR}/${name} "${expect}")
endfunction()

mproc_check_pkg_config(consumer mproc "${MPROC_CONSUMER_SAYS}")
if(WITH_MPI)
  mproc_check_pkg_config(mpi_consumer mproc-mpi "${MPROC_MPI_CONSUMER_SAYS}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
